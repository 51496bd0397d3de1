/*
 * apply.c: the default item handler.  A group of queue items of one entity
 * and operation becomes ONE statement that (1) completes the items this
 * worker still holds, (2) upserts their mapped records into the entity's
 * zoho.* table, never letting an older last_modified_time overwrite a newer
 * one, (3) keeps zoho.item_locations in step for items, and (4) writes the
 * tds.entity.* events, with the old and new last_modified_time.  The
 * statement text is built once per descriptor from the static descriptor
 * table (identifiers only); every value is a parameter (text arrays).
 *
 * Parameters: $1 bigint[] queue ids to complete, $2 lease holder, $3
 * entity name, $4 bigint[] queue id per record, $5 bigint[] run id per
 * record, $6 text[] Zoho ids, then for upserts $7 text[] raw JSON (or the
 * singular name, queued) and $8.. one text[] per descriptor column.  The
 * bulk form (SQL_UPSERT_MAP) has no $8..: it maps the queued payloads in
 * the statement itself (put_col_expr).
 */
#include "tds/apply.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine_internal.h"
#include "tds/db.h"
#include "tds/log.h"

/* _Q: completes queue items; _QS: and applies only those it completed (the
 * per-item path, where a lost lease must skip the write); _DIRECT: no queue.
 * The fast path uses _Q and checks in C that every item was completed: a
 * filter on the completion inside the statement would hide the batch size
 * from the planner, which then picks nested loops over the batch. */
enum {
    SQL_UPSERT_MAP, /* queued, payloads mapped in SQL (apply_group_sql) */
    SQL_UPSERT_Q,
    SQL_UPSERT_QS,
    SQL_UPSERT_DIRECT,
    SQL_DELETE_Q,
    SQL_DELETE_QS,
    SQL_DELETE_DIRECT,
    SQL__COUNT
};

struct desc_sql {
    char *sql[SQL__COUNT];
};

static pthread_mutex_t sql_mu = PTHREAD_MUTEX_INITIALIZER;
static struct desc_sql *sql_cache; /* indexed like entity_all() */
static size_t sql_cache_n;

static const char *col_cast(enum entity_coltype t)
{
    switch (t) {
    case COL_NUMERIC:
        return "::numeric";
    case COL_BOOL:
        return "::boolean";
    case COL_TIMESTAMPTZ:
        return "::timestamptz";
    case COL_DATE:
        return "::date";
    case COL_TEXT:
    default:
        return "";
    }
}

/* The descriptor column last_modified_time, or -1. */
static ssize_t lmt_column(const struct entity_desc *d)
{
    for (size_t i = 0; i < entity_ncolumns(d); i++)
        if (str_eq(d->columns[i].column, "last_modified_time"))
            return (ssize_t)i;
    return -1;
}

/* The first CTEs: which items are ours to complete, and their records
 * (raw parsed once, as doc). */
static void put_head(struct strbuf *sb, bool queued, bool strict, bool upsert, bool sqlmap,
                     const struct entity_desc *d)
{
    if (queued)
        strbuf_puts(sb, "WITH done AS (UPDATE tds.sync_queue SET status = 'completed',"
                        " completed_at = now(), updated_at = now(), locked_by = NULL,"
                        " locked_until = NULL WHERE id = ANY ($1::bigint[])"
                        " AND status = 'processing' AND locked_by = $2 RETURNING id),");
    else
        strbuf_puts(sb, "WITH done AS (SELECT unnest($1::bigint[]) AS id WHERE $2::text IS NULL),");
    size_t nc = sqlmap ? 0 : entity_ncolumns(d);
    /* Queued records come from the queued payload (already jsonb: not sent
     * again, not parsed again; one place holds it, 0011), unwrapped from
     * {"item": {...}} when wrapped ($7 = the singular name); direct ones
     * from $7 = raw text[]. */
    strbuf_puts(sb, " src AS (SELECT u.qid, u.run_id, u.zid");
    if (upsert) {
        if (queued)
            strbuf_puts(sb, ", CASE WHEN jsonb_typeof(q.payload -> $7::text) = 'object'"
                            " THEN q.payload -> $7::text ELSE q.payload END AS doc");
        else
            strbuf_puts(sb, ", u.raw::jsonb AS doc");
        for (size_t i = 0; i < nc; i++)
            strbuf_printf(sb, ", u.c%zu", i);
    }
    strbuf_puts(sb, " FROM unnest($4::bigint[], $5::bigint[], $6::text[]");
    if (upsert) {
        if (!queued)
            strbuf_puts(sb, ", $7::text[]");
        for (size_t i = 0; i < nc; i++)
            strbuf_printf(sb, ", $%zu::text[]", i + 8);
    }
    strbuf_puts(sb, ") AS u(qid, run_id, zid");
    if (upsert) {
        if (!queued)
            strbuf_puts(sb, ", raw");
        for (size_t i = 0; i < nc; i++)
            strbuf_printf(sb, ", c%zu", i);
    }
    strbuf_puts(sb, ")");
    if (upsert && queued)
        strbuf_puts(sb, " CROSS JOIN LATERAL (SELECT coalesce((SELECT p.payload"
                        " FROM tds.queue_payloads p WHERE p.queue_id = u.qid),"
                        " (SELECT r.payload FROM tds.sync_queue r WHERE r.id = u.qid))"
                        " AS payload) q");
    if (strict)
        strbuf_puts(sb, " WHERE u.qid IN (SELECT id FROM done)");
    strbuf_puts(sb, "),");
}

/*
 * The value of column col from the record (s.doc) in SQL, for the bulk
 * apply: only what is plain -- what zoho/map.c would store unchanged --
 * is taken; anything else calls tds.map_reject, which fails the statement
 * so the batch is replayed item by item through map.c.  Absent, null and
 * "" are NULL, as there.
 */
static void put_col_expr(struct strbuf *sb, const struct entity_column *col)
{
    const char *f = col->field; /* from the static descriptor table */
    char v[160], str[160], rej[200];
    snprintf(v, sizeof v, "(s.doc -> '%s')", f);
    snprintf(str, sizeof str, "(s.doc ->> '%s')", f);
    snprintf(rej, sizeof rej, "tds.map_reject($3, s.zid, '%s')", f);
    strbuf_printf(sb, "CASE coalesce(jsonb_typeof%s, 'null') WHEN 'null' THEN NULL", v);
    switch (col->type) {
    case COL_TEXT:
        strbuf_printf(sb, " WHEN 'string' THEN nullif(%s, '') ELSE %s END", str, rej);
        return;
    case COL_NUMERIC:
        /* A JSON number: map.c prints its double shortest, so 5.250 is
         * stored as 5.25 (trim_scale); a string: map.c's is_numeric_text,
         * with the blanks around it it forgives, stored as written. */
        strbuf_printf(sb,
                      " WHEN 'number' THEN trim_scale(%s::numeric) WHEN 'string' THEN CASE WHEN %s = ''"
                      " THEN NULL WHEN %s ~ '^[[:space:]]*[+-]?([0-9]+[.]?[0-9]*|[.][0-9]+)"
                      "([eE][+-]?[0-9]+)?[[:space:]]*$' THEN %s::numeric ELSE %s::numeric END"
                      " ELSE %s::numeric END",
                      v, str, str, str, rej, rej);
        return;
    case COL_BOOL:
        strbuf_printf(sb,
                      " WHEN 'boolean' THEN %s::boolean WHEN 'string' THEN CASE %s WHEN ''"
                      " THEN NULL WHEN 'true' THEN true WHEN 'false' THEN false ELSE"
                      " %s::boolean END WHEN 'number' THEN CASE %s::numeric WHEN 0 THEN false"
                      " WHEN 1 THEN true ELSE %s::boolean END ELSE %s::boolean END",
                      v, str, rej, v, rej, rej);
        return;
    case COL_TIMESTAMPTZ:
        /* The shapes Zoho sends, a subset of map.c's is_timestamp (others
         * go item by item), checked by their digits' positions (a regular
         * expression here cost 7% of a drain); an hour of 24 PostgreSQL
         * would take; every other range (a date that does not exist, an
         * offset past 15:59) PostgreSQL refuses, as map.c does. */
        strbuf_printf(sb,
                      " WHEN 'string' THEN CASE WHEN %s = '' THEN NULL WHEN"
                      " translate(%s, '0123456789', '9999999999') IN ("
                      "'9999-99-99T99:99:99+9999', '9999-99-99T99:99:99-9999',"
                      " '9999-99-99T99:99:99+99:99', '9999-99-99T99:99:99-99:99',"
                      " '9999-99-99T99:99:99Z', '9999-99-99T99:99:99',"
                      " '9999-99-99 99:99:99+9999', '9999-99-99 99:99:99-9999',"
                      " '9999-99-99 99:99:99+99:99', '9999-99-99 99:99:99-99:99',"
                      " '9999-99-99 99:99:99Z', '9999-99-99 99:99:99')"
                      " AND substr(%s, 12, 2) < '24'"
                      " THEN %s::timestamptz ELSE %s::timestamptz END ELSE %s::timestamptz END",
                      str, str, str, str, rej, rej);
        return;
    case COL_DATE:
        strbuf_printf(sb,
                      " WHEN 'string' THEN CASE WHEN %s = '' THEN NULL WHEN translate(%s,"
                      " '0123456789', '9999999999') = '9999-99-99' THEN %s::date ELSE %s::date END"
                      " ELSE %s::date END",
                      str, str, str, rej, rej);
        return;
    }
    strbuf_printf(sb, " ELSE %s END", rej);
}

/* The record's values, as SELECT list items from src s: the id, then
 * one per descriptor column (named v0.. when named), then the record. */
static void put_values(struct strbuf *sb, const struct entity_desc *d, bool sqlmap, bool named)
{
    size_t nc = entity_ncolumns(d);
    if (sqlmap)
        /* The record's id must be the queued one (map.c's map_id for the
         * plain case: digits). */
        strbuf_printf(sb,
                      "CASE WHEN length(s.zid) BETWEEN 1 AND 40"
                      " AND translate(s.zid, '0123456789', '') = '' AND s.doc ->> '%s'"
                      " = s.zid THEN s.zid ELSE tds.map_reject($3, s.zid, '%s') END",
                      d->id_field, d->id_field);
    else
        strbuf_puts(sb, "s.zid");
    if (named)
        strbuf_puts(sb, " AS zid");
    for (size_t i = 0; i < nc; i++) {
        strbuf_puts(sb, ", ");
        if (sqlmap)
            put_col_expr(sb, &d->columns[i]);
        else
            strbuf_printf(sb, "s.c%zu%s", i, col_cast(d->columns[i].type));
        if (named)
            strbuf_printf(sb, " AS v%zu", i);
    }
    strbuf_puts(sb, ", s.doc");
}

/* The columns of a zoho.item_locations row from a location (l) of an
 * item (zid) of CTE locs; DISTINCT ON: a location listed twice is one. */
#define LOC_NUM(f)                                                                                 \
    "   nullif(coalesce(l ->> 'location_" f "', l ->> 'warehouse_" f "'), '')::numeric"
#define LOC_INSERT                                                                                 \
    "INSERT INTO zoho.item_locations (item_id, location_id, location_name,"                        \
    "   is_primary, stock_on_hand, available_stock, actual_available_stock,"                       \
    "   available_for_sale_stock, actual_available_for_sale_stock, committed_stock,"               \
    "   actual_committed_stock, synced_at)"                                                         \
    " SELECT DISTINCT ON (zid, coalesce(l ->> 'location_id', l ->> 'warehouse_id')) zid,"         \
    "   coalesce(l ->> 'location_id', l ->> 'warehouse_id'),"                                      \
    "   coalesce(l ->> 'location_name', l ->> 'warehouse_name'),"                                  \
    "   nullif(coalesce(l ->> 'is_primary', l ->> 'is_primary_location'), '')::boolean,"           \
    LOC_NUM("stock_on_hand") "," LOC_NUM("available_stock") "," LOC_NUM("actual_available_stock") \
    "," LOC_NUM("available_for_sale_stock") "," LOC_NUM("actual_available_for_sale_stock") ","     \
    LOC_NUM("committed_stock") "," LOC_NUM("actual_committed_stock") ", now() FROM locs"

/*
 * Items' locations (Inventory) or warehouses (older payloads), replaced as
 * a set for the items written (CTE up).  split: the new items (CTE ins)
 * have none yet, so theirs are plainly inserted (see build_upsert); the
 * others' are deleted where gone and upserted.
 */
static void put_locations(struct strbuf *sb, bool split)
{
    strbuf_puts(
        sb,
        " ls AS (SELECT s.zid, CASE WHEN jsonb_typeof(s.doc -> 'locations') = 'array'"
        "   THEN s.doc -> 'locations' WHEN jsonb_typeof(s.doc -> 'warehouses') = 'array'"
        "   THEN s.doc -> 'warehouses' END AS arr FROM src s"
        "   WHERE s.zid IN (SELECT zid FROM up)),"
        " locs AS (SELECT ls.zid, l FROM ls, jsonb_array_elements(ls.arr) AS l"
        "   WHERE ls.arr IS NOT NULL"
        "   AND coalesce(l ->> 'location_id', l ->> 'warehouse_id', '') <> ''),"
        /* x.item_id = ANY (ARRAY(subquery)): the planner cannot count
         * that array and assumes a few elements, so this is an index
         * scan of the batch's ids whatever the statistics say.  With a
         * literal list of 500 ids (or a join), a table never analyzed
         * -- a first load, before autovacuum's first look -- has its
         * rows estimated as many, and every batch read all of it. */
        " locdel AS (DELETE FROM zoho.item_locations x"
        "   WHERE x.item_id = ANY (ARRAY(SELECT zid FROM ls WHERE arr IS NOT NULL");
    if (split)
        strbuf_puts(sb, " AND zid IN (SELECT zid FROM upd)");
    strbuf_puts(sb, "))"
                    "   AND NOT EXISTS (SELECT 1 FROM locs WHERE locs.zid = x.item_id AND"
                    "     coalesce(locs.l ->> 'location_id', locs.l ->> 'warehouse_id')"
                    " = x.location_id)),");
    if (split)
        strbuf_puts(sb, " locnew AS (" LOC_INSERT " WHERE zid IN (SELECT zid FROM ins)),");
    strbuf_puts(sb, " locup AS (" LOC_INSERT);
    if (split)
        strbuf_puts(sb, " WHERE zid IN (SELECT zid FROM upd)");
    strbuf_puts(sb, " ON CONFLICT (item_id, location_id) DO UPDATE SET"
                    "   location_name = EXCLUDED.location_name,"
                    "   is_primary = EXCLUDED.is_primary, stock_on_hand = EXCLUDED.stock_on_hand,"
                    "   available_stock = EXCLUDED.available_stock,"
                    "   actual_available_stock = EXCLUDED.actual_available_stock,"
                    "   available_for_sale_stock = EXCLUDED.available_for_sale_stock,"
                    "   actual_available_for_sale_stock = EXCLUDED.actual_available_for_sale_stock,"
                    "   committed_stock = EXCLUDED.committed_stock,"
                    "   actual_committed_stock = EXCLUDED.actual_committed_stock,"
                    "   synced_at = now()),");
}

/*
 * The upsert.  The batch's fast path (queued, not strict) inserts the
 * records that are new (not in old) with a plain INSERT and updates the
 * others with an UPDATE: ON CONFLICT's speculative insertion (an extra
 * index probe and WAL record per row) cost ~8 us of server CPU per item
 * record with its two locations.  Should a record appear meanwhile (another
 * worker, a sync), the INSERT fails, the batch is rolled back and replayed
 * item by item with the ON CONFLICT form, which every other path uses.
 */
static char *build_upsert(const struct entity_desc *d, bool queued, bool strict, bool sqlmap)
{
    struct strbuf sb = {0};
    size_t nc = entity_ncolumns(d);
    ssize_t lc = lmt_column(d);
    bool lmt = lc >= 0, split = queued && !strict;
    const char *lmt_sql = lmt ? "t.last_modified_time" : "NULL::timestamptz";
    put_head(&sb, queued, strict, true, sqlmap, d);
    strbuf_printf(&sb,
                  " old AS (SELECT t.%s AS zid, %s AS lmt FROM %s t"
                  " WHERE t.%s = ANY ($6::text[]) AND t.%s IN (SELECT zid FROM src)),",
                  d->id_field, lmt_sql, d->table, d->id_field, d->id_field);
    strbuf_printf(&sb, " %s AS (INSERT INTO %s AS t (%s", split ? "ins" : "up", d->table,
                  d->id_field);
    for (size_t i = 0; i < nc; i++)
        strbuf_printf(&sb, ", %s", d->columns[i].column);
    strbuf_puts(&sb, ", raw, synced_at, deleted_at) SELECT ");
    put_values(&sb, d, sqlmap, false);
    strbuf_puts(&sb, ", now(), NULL FROM src s");
    if (split) {
        strbuf_puts(&sb, " WHERE s.zid NOT IN (SELECT zid FROM old)");
    } else {
        strbuf_printf(&sb, " ON CONFLICT (%s) DO UPDATE SET ", d->id_field);
        for (size_t i = 0; i < nc; i++)
            strbuf_printf(&sb, "%s = EXCLUDED.%s, ", d->columns[i].column,
                          d->columns[i].column);
        /* row_hash: the bulk merge's memory of a listing; NULL = compare again. */
        strbuf_puts(&sb, "raw = EXCLUDED.raw, row_hash = NULL, synced_at = EXCLUDED.synced_at,"
                         " deleted_at = NULL");
        if (lmt)
            strbuf_puts(&sb, " WHERE t.last_modified_time IS NULL"
                             " OR EXCLUDED.last_modified_time >= t.last_modified_time");
    }
    strbuf_printf(&sb, " RETURNING t.%s AS zid, %s AS lmt),", d->id_field, lmt_sql);
    if (split) {
        strbuf_printf(&sb, " upd AS (UPDATE %s AS t SET (", d->table);
        for (size_t i = 0; i < nc; i++)
            strbuf_printf(&sb, "%s, ", d->columns[i].column);
        strbuf_puts(&sb, "raw, row_hash, synced_at, deleted_at) = (");
        for (size_t i = 0; i < nc; i++)
            strbuf_printf(&sb, "x.v%zu, ", i);
        strbuf_puts(&sb, "x.doc, NULL, now(), NULL) FROM (SELECT ");
        put_values(&sb, d, sqlmap, true);
        strbuf_printf(&sb, " FROM src s WHERE s.zid IN (SELECT zid FROM old)) x"
                           " WHERE t.%s = x.zid AND t.%s = ANY ($6::text[])",
                      d->id_field, d->id_field);
        if (lmt)
            strbuf_printf(&sb, " AND (t.last_modified_time IS NULL"
                               " OR x.v%zd >= t.last_modified_time)",
                          lc);
        strbuf_printf(&sb, " RETURNING t.%s AS zid, %s AS lmt),", d->id_field, lmt_sql);
        strbuf_puts(&sb, " up AS (SELECT zid, lmt FROM ins UNION ALL SELECT zid, lmt FROM upd),");
    }
    if (str_eq(d->name, "items"))
        put_locations(&sb, split);
    strbuf_puts(&sb,
                " ev AS (INSERT INTO tds.events (type, run_id, entity_type, entity_id, data)"
                " SELECT CASE WHEN o.zid IS NULL THEN 'tds.entity.create' ELSE 'tds.entity.update'"
                " END, s.run_id, $3, up.zid, jsonb_build_object('queue_id', nullif(s.qid, 0),"
                " 'last_modified_time', up.lmt, 'old_last_modified_time', o.lmt)"
                " FROM up JOIN (SELECT qid, run_id, zid FROM src) s ON s.zid = up.zid"
                " LEFT JOIN old o ON o.zid = up.zid)"
                " SELECT (SELECT count(*) FROM done), (SELECT count(*) FROM up)");
    return strbuf_detach(&sb);
}

static char *build_delete(const struct entity_desc *d, bool queued, bool strict)
{
    struct strbuf sb = {0};
    put_head(&sb, queued, strict, false, false, d);
    strbuf_printf(&sb,
                  " del AS (UPDATE %s t SET deleted_at = now() FROM src WHERE t.%s = src.zid"
                  " AND t.%s = ANY ($6::text[]) AND t.deleted_at IS NULL RETURNING t.%s AS zid),"
                  " ev AS (INSERT INTO tds.events (type, run_id, entity_type, entity_id, data)"
                  " SELECT DISTINCT ON (del.zid) 'tds.entity.delete', s.run_id, $3, del.zid,"
                  " jsonb_build_object('queue_id', nullif(s.qid, 0)) FROM del JOIN src s"
                  " ON s.zid = del.zid)"
                  " SELECT (SELECT count(*) FROM done), (SELECT count(*) FROM del)",
                  d->table, d->id_field, d->id_field, d->id_field);
    return strbuf_detach(&sb);
}

static const char *get_sql(const struct entity_desc *d, int which)
{
    size_t n;
    const struct entity_desc *all = entity_all(&n);
    size_t idx = (size_t)(d - all);
    if (idx >= n)
        return NULL;
    pthread_mutex_lock(&sql_mu);
    if (sql_cache == NULL) {
        sql_cache = xcalloc(n, sizeof *sql_cache);
        sql_cache_n = n;
    }
    struct desc_sql *ds = &sql_cache[idx];
    if (ds->sql[0] == NULL) {
        ds->sql[SQL_UPSERT_MAP] = build_upsert(d, true, false, true);
        ds->sql[SQL_UPSERT_Q] = build_upsert(d, true, false, false);
        ds->sql[SQL_UPSERT_QS] = build_upsert(d, true, true, false);
        ds->sql[SQL_UPSERT_DIRECT] = build_upsert(d, false, false, false);
        ds->sql[SQL_DELETE_Q] = build_delete(d, true, false);
        ds->sql[SQL_DELETE_QS] = build_delete(d, true, true);
        ds->sql[SQL_DELETE_DIRECT] = build_delete(d, false, false);
    }
    const char *s = ds->sql[which];
    pthread_mutex_unlock(&sql_mu);
    return s;
}

/* Appends one element to a text[] literal being built ("{" already put). */
static void arr_put(struct strbuf *sb, const char *v, bool first)
{
    if (!first)
        strbuf_putc(sb, ',');
    if (v == NULL) {
        strbuf_puts(sb, "NULL");
        return;
    }
    strbuf_putc(sb, '"');
    while (*v) {
        size_t run = strcspn(v, "\"\\");
        strbuf_append(sb, v, run);
        v += run;
        if (*v) {
            strbuf_putc(sb, '\\');
            strbuf_putc(sb, *v++);
        }
    }
    strbuf_putc(sb, '"');
}

static void arr_put_ll(struct strbuf *sb, long long v, bool null_if_zero, bool first)
{
    if (!first)
        strbuf_putc(sb, ',');
    if (null_if_zero && v == 0)
        strbuf_puts(sb, "NULL");
    else
        strbuf_printf(sb, "%lld", v);
}

static int exec_group(PGconn *c, const struct entity_desc *d, enum queue_op op, int mode,
                      const long long *complete_ids, int ncomplete, const long long *qids,
                      const long long *run_ids, const char *const *zids,
                      struct entity_record *const *recs, int n, const char *holder, long long *done,
                      long long *changed, char **err)
{
    bool upsert = op == QOP_UPSERT;
    size_t nc = entity_ncolumns(d);
    int np = upsert ? (int)(7 + nc) : 6;
    struct strbuf *arr = xcalloc((size_t)np, sizeof *arr);
    for (int k = 0; k < np; k++)
        strbuf_putc(&arr[k], '{');
    for (int i = 0; i < ncomplete; i++)
        arr_put_ll(&arr[0], complete_ids[i], false, i == 0);
    for (int i = 0; i < n; i++) {
        bool first = i == 0;
        arr_put_ll(&arr[3], qids[i], false, first);
        arr_put_ll(&arr[4], run_ids[i], true, first);
        arr_put(&arr[5], zids[i], first);
        if (upsert) {
            if (mode == SQL_UPSERT_DIRECT)
                arr_put(&arr[6], recs[i]->raw, first);
            for (size_t k = 0; k < nc; k++)
                arr_put(&arr[7 + k], recs[i]->values[k], first);
        }
    }
    for (int k = 0; k < np; k++)
        strbuf_putc(&arr[k], '}');
    const char **p = xcalloc((size_t)np, sizeof *p);
    for (int k = 0; k < np; k++)
        p[k] = arr[k].buf;
    p[1] = holder;
    p[2] = d->name;
    if (upsert && mode != SQL_UPSERT_DIRECT)
        p[6] = d->singular;
    const char *sql = get_sql(d, upsert ? mode : mode - SQL_UPSERT_Q + SQL_DELETE_Q);
    PGresult *r = db_exec(c, sql, np, p, err);
    for (int k = 0; k < np; k++)
        strbuf_free(&arr[k]);
    free(arr);
    free(p);
    if (r == NULL)
        return -1;
    *done = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    *changed = strtoll(PQgetvalue(r, 0, 1), NULL, 10);
    PQclear(r);
    return 0;
}

/* A statement that completed fewer items than it was given lost a lease
 * (reclaimed while we worked) and wrote records it no longer holds: -1, and
 * the caller rolls back and replays item by item, where only held items are
 * applied. */
static int lease_check(long long done, int n, char **err)
{
    if (done >= n)
        return 0;
    *err = xasprintf("%lld of %d items lost their lease", n - done, n);
    return -1;
}

/* Orders records of one id so the newest (then the latest queued) comes first. */
static int newer_first(const struct queue_item *a, const struct entity_record *ra,
                       const struct queue_item *b, const struct entity_record *rb)
{
    const char *la = ra ? ra->last_modified_time : NULL;
    const char *lb = rb ? rb->last_modified_time : NULL;
    /* Zoho times of one organization share a format: text order is time order. */
    int c = strcmp(la ? la : "", lb ? lb : "");
    if (c != 0)
        return c > 0 ? -1 : 1;
    return a->id > b->id ? -1 : 1;
}

int apply_group(PGconn *c, const struct entity_desc *d, enum queue_op op,
                const struct queue_item *const *items, struct entity_record *const *recs, int n,
                const char *holder, bool strict, long long *done, long long *changed, char **err)
{
    long long *complete_ids = xcalloc((size_t)n, sizeof *complete_ids);
    long long *qids = xcalloc((size_t)n, sizeof *qids);
    long long *run_ids = xcalloc((size_t)n, sizeof *run_ids);
    const char **zids = xcalloc((size_t)n, sizeof *zids);
    struct entity_record **rs = xcalloc((size_t)n, sizeof *rs);
    int m = 0;
    /* One record per Zoho id: ON CONFLICT cannot touch a row twice.  The
     * others are completed too (they are older news).  Groups are small
     * (a batch), so a quadratic scan is fine. */
    for (int i = 0; i < n; i++) {
        complete_ids[i] = items[i]->id;
        int j;
        for (j = 0; j < m; j++)
            if (strcmp(zids[j], items[i]->zoho_id) == 0)
                break;
        const struct entity_record *ri = op == QOP_UPSERT ? recs[i] : NULL;
        if (j < m) {
            /* keep whichever is newer */
            const struct queue_item *cur = NULL;
            for (int k = 0; k < n; k++)
                if (items[k]->id == qids[j])
                    cur = items[k];
            if (newer_first(items[i], ri, cur, rs[j]) < 0) {
                qids[j] = items[i]->id;
                run_ids[j] = items[i]->run_id;
                rs[j] = (struct entity_record *)ri;
            }
            continue;
        }
        qids[m] = items[i]->id;
        run_ids[m] = items[i]->run_id;
        zids[m] = items[i]->zoho_id;
        rs[m] = (struct entity_record *)ri;
        m++;
    }
    int rc = exec_group(c, d, op, strict ? SQL_UPSERT_QS : SQL_UPSERT_Q, complete_ids, n, qids,
                        run_ids, zids, rs, m, holder, done, changed, err);
    if (rc == 0 && !strict)
        rc = lease_check(*done, n, err);
    free(complete_ids);
    free(qids);
    free(run_ids);
    free(zids);
    free(rs);
    return rc;
}

int apply_group_sql(PGconn *c, const struct entity_desc *d, const struct queue_item *const *items,
                    int n, const char *holder, long long *done, long long *changed, char **err)
{
    /* Two items of one record (a retry and a newer change) need map.c's
     * newest-first choice: the caller replays such a batch item by item.
     * Rare, and small: a quadratic scan. */
    for (int i = 0; i < n; i++)
        for (int j = 0; j < i; j++)
            if (str_eq(items[i]->zoho_id, items[j]->zoho_id)) {
                *err = xasprintf("%s %s is queued twice in the batch", d->name, items[i]->zoho_id);
                return -1;
            }
    struct strbuf ids = {0}, runs = {0}, zids = {0};
    strbuf_putc(&ids, '{');
    strbuf_putc(&runs, '{');
    strbuf_putc(&zids, '{');
    for (int i = 0; i < n; i++) {
        arr_put_ll(&ids, items[i]->id, false, i == 0);
        arr_put_ll(&runs, items[i]->run_id, true, i == 0);
        arr_put(&zids, items[i]->zoho_id, i == 0);
    }
    strbuf_putc(&ids, '}');
    strbuf_putc(&runs, '}');
    strbuf_putc(&zids, '}');
    const char *p[] = {ids.buf, holder, d->name, ids.buf, runs.buf, zids.buf, d->singular};
    PGresult *r = db_exec(c, get_sql(d, SQL_UPSERT_MAP), 7, p, err);
    strbuf_free(&ids);
    strbuf_free(&runs);
    strbuf_free(&zids);
    if (r == NULL)
        return -1;
    *done = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    *changed = strtoll(PQgetvalue(r, 0, 1), NULL, 10);
    PQclear(r);
    return lease_check(*done, n, err);
}

int apply_map_payload(const struct entity_desc *d, const struct queue_item *it,
                      struct entity_record *rec, char **err)
{
    memset(rec, 0, sizeof *rec);
    if (str_empty(it->payload)) {
        *err = xasprintf("%s %s: upsert without a payload", d->name, it->zoho_id);
        return -1;
    }
    cJSON *root = entity_json_parse(it->payload); /* numbers exact */
    if (root == NULL) {
        *err = xasprintf("%s %s: payload is not valid JSON", d->name, it->zoho_id);
        return -1;
    }
    const cJSON *obj = root;
    const cJSON *inner = cJSON_GetObjectItemCaseSensitive(root, d->singular);
    if (cJSON_IsObject(inner))
        obj = inner;
    int rc = 0;
    if (!cJSON_IsObject(obj)) {
        *err = xasprintf("%s %s: payload is not a JSON object", d->name, it->zoho_id);
        rc = -1;
    } else if (entity_map_values(d, obj, rec, err) != 0) {
        /* (raw is not needed: the statement reads the queued payload) */
        rc = -1;
    } else if (!str_eq(rec->id, it->zoho_id)) {
        *err = xasprintf("%s %s: payload %s is %s, not the queued id", d->name, it->zoho_id,
                         d->id_field, rec->id);
        rc = -1;
    }
    cJSON_Delete(root);
    return rc;
}

int apply_record(PGconn *c, const struct entity_desc *d, const cJSON *record, long long run_id,
                 int *changed, char **err)
{
    struct entity_record rec;
    memset(&rec, 0, sizeof rec);
    if (entity_map_record(d, record, &rec, err) != 0) {
        entity_record_free(&rec);
        return -2;
    }
    long long zero = 0, done, ch;
    const char *zid = rec.id;
    struct entity_record *rp = &rec;
    int rc = exec_group(c, d, QOP_UPSERT, SQL_UPSERT_DIRECT, &zero, 1, &zero, &run_id, &zid, &rp, 1,
                        NULL, &done, &ch, err);
    if (rc == 0 && changed)
        *changed = (int)ch;
    entity_record_free(&rec);
    return rc;
}

int apply_delete(PGconn *c, const struct entity_desc *d, const char *zoho_id, long long run_id,
                 char **err)
{
    long long zero = 0, done, ch;
    return exec_group(c, d, QOP_DELETE, SQL_UPSERT_DIRECT, &zero, 1, &zero, &run_id, &zoho_id, NULL,
                      1, NULL, &done, &ch, err);
}
