/*
 * sync_bulk.c: the bulk pipeline every listing job drives (stock, full,
 * incremental, specific items, reconcile).
 *
 * Three threads.  The lister pulls pages from Zoho (the pager) and parses
 * them.  The fetch thread maps each record with the entity descriptor,
 * hashes it, and asks the database in one query per page which records are
 * stored exactly so already (zoho.*.row_hash, written by the last merge):
 * only the others are printed as COPY text (or /itemdetails answers for a
 * list of ids).  It hands finished pages to the writer through a small
 * bounded queue, so the next page is on the wire while the last one is
 * written.  The writer (the job's own thread) gathers pages into batches
 * and, per batch, in ONE transaction: COPYs the rows into a TEMP staging
 * table, merges them with one statement that touches only rows whose typed
 * values or hash changed and never lets an older last_modified_time
 * overwrite a newer one, writes the tds.entity.* events of the rows whose
 * typed values changed, moves unusable records to the DLQ and advances the
 * entity's cursor.  So a crash loses nothing and announces nothing twice:
 * the next run finds the committed rows unchanged.
 *
 * List pages carry no per-location stock, so for items that are to be
 * written (or all of them on a full-details pass) the fetch thread asks
 * /itemdetails, 100 ids at a time, holding the pages those ids came from
 * until then, and the writer merges zoho.item_locations in the same
 * transaction as the items.
 *
 * Statement text is built from the static descriptor table (identifiers
 * only); data reaches the server only as parameters or COPY data.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sync_internal.h"
#include "tds/db.h"
#include "tds/log.h"
#include "tds/queue.h"

/* ---- per-descriptor SQL ---- */

enum { BSQL_STAGE, BSQL_MERGE, BSQL_DRY, BSQL_COPY, BSQL__COUNT };

static pthread_mutex_t bsql_mu = PTHREAD_MUTEX_INITIALIZER;
static char *(*bsql_cache)[BSQL__COUNT];
static size_t bsql_n;

static const char *sql_type(enum entity_coltype t)
{
    switch (t) {
    case COL_NUMERIC:
        return "numeric";
    case COL_BOOL:
        return "boolean";
    case COL_TIMESTAMPTZ:
        return "timestamptz";
    case COL_DATE:
        return "date";
    case COL_TEXT:
    default:
        return "text";
    }
}

static bool is_items(const struct entity_desc *d)
{
    return str_eq(d->name, "items");
}

/* Index of column col in d, or -1. */
static int desc_col(const struct entity_desc *d, const char *col)
{
    for (size_t i = 0; i < entity_ncolumns(d); i++)
        if (str_eq(d->columns[i].column, col))
            return (int)i;
    return -1;
}

static bool desc_has(const struct entity_desc *d, const char *col)
{
    return desc_col(d, col) >= 0;
}

static char *build_stage(const struct entity_desc *d)
{
    struct strbuf sb = {0};
    strbuf_printf(&sb, "CREATE TEMP TABLE IF NOT EXISTS tds_stage_%s (zid text", d->name);
    for (size_t i = 0; i < entity_ncolumns(d); i++)
        strbuf_printf(&sb, ", %s %s", d->columns[i].column, sql_type(d->columns[i].type));
    strbuf_puts(&sb, ", raw text, rhash bigint) ON COMMIT DELETE ROWS");
    return strbuf_detach(&sb);
}

static char *build_copy(const struct entity_desc *d)
{
    struct strbuf sb = {0};
    strbuf_printf(&sb, "COPY pg_temp.tds_stage_%s (zid", d->name);
    for (size_t i = 0; i < entity_ncolumns(d); i++)
        strbuf_printf(&sb, ", %s", d->columns[i].column);
    strbuf_puts(&sb, ", raw, rhash) FROM STDIN");
    return strbuf_detach(&sb);
}

/* "(p.c1, p.c2, ...)" */
static void put_row(struct strbuf *sb, const struct entity_desc *d, const char *prefix)
{
    strbuf_putc(sb, '(');
    for (size_t i = 0; i < entity_ncolumns(d); i++)
        strbuf_printf(sb, "%s%s.%s", i ? ", " : "", prefix, d->columns[i].column);
    strbuf_putc(sb, ')');
}

/*
 * The CTEs s (the stage, one row per id: the newest) and w (the rows that
 * would change: absent here, marked deleted, or with a typed value that
 * differs, and not older than the stored copy; for items with
 * with_stock_only ($3), not without stock both there and here), with the
 * stored values the events need.  Unchanged rows stop here: they are
 * neither locked nor written, and their raw JSON is never parsed.
 */
static void put_common(struct strbuf *sb, const struct entity_desc *d)
{
    bool lmt = desc_has(d, "last_modified_time");
    bool items = is_items(d);
    strbuf_printf(sb, "WITH s AS (SELECT DISTINCT ON (zid) * FROM pg_temp.tds_stage_%s ORDER BY zid%s),",
                  d->name, lmt ? ", last_modified_time DESC NULLS LAST" : "");
    strbuf_printf(sb, " w AS (SELECT s.*, t.%s IS NULL OR t.deleted_at IS NOT NULL AS is_new, %s AS olmt",
                  d->id_field, lmt ? "t.last_modified_time" : "NULL::timestamptz");
    /* typed: a value the columns show changed (else only raw: no event) */
    strbuf_printf(sb, ", t.%s IS NULL OR t.deleted_at IS NOT NULL OR ", d->id_field);
    put_row(sb, d, "t");
    strbuf_puts(sb, " IS DISTINCT FROM ");
    put_row(sb, d, "s");
    strbuf_puts(sb, " AS typed");
    if (items)
        strbuf_puts(sb, ", t.item_id IS NOT NULL AS had, t.stock_on_hand AS osoh,"
                        " t.available_stock AS oavs, t.actual_available_stock AS oaas,"
                        " t.image_document_id AS oimg");
    strbuf_printf(sb, " FROM s LEFT JOIN %s t ON t.%s = s.zid WHERE (t.%s IS NULL OR"
                      " ((t.deleted_at IS NOT NULL OR ",
                  d->table, d->id_field, d->id_field);
    put_row(sb, d, "t");
    strbuf_puts(sb, " IS DISTINCT FROM ");
    put_row(sb, d, "s");
    strbuf_puts(sb, " OR t.row_hash IS DISTINCT FROM s.rhash)");
    if (lmt)
        strbuf_puts(sb, " AND (t.last_modified_time IS NULL OR s.last_modified_time IS NULL"
                        " OR s.last_modified_time >= t.last_modified_time)");
    strbuf_puts(sb, "))");
    if (items)
        strbuf_puts(sb, " AND (NOT $3::boolean OR coalesce(s.stock_on_hand, 0) <> 0"
                        " OR coalesce(t.stock_on_hand, 0) <> 0)");
    strbuf_puts(sb, "),");
}

/* The skipped count (with_stock_only: no stock there nor here). */
static void put_skipped(struct strbuf *sb, const struct entity_desc *d)
{
    if (is_items(d))
        strbuf_puts(sb, " CASE WHEN $3::boolean THEN (SELECT count(*) FROM s LEFT JOIN zoho.items t"
                        " ON t.item_id = s.zid WHERE coalesce(s.stock_on_hand, 0) = 0 AND"
                        " coalesce(t.stock_on_hand, 0) = 0) ELSE 0 END,");
    else
        strbuf_puts(sb, " CASE WHEN $3::boolean THEN 0 ELSE 0 END,");
}

static char *build_merge(const struct entity_desc *d)
{
    struct strbuf sb = {0};
    bool lmt = desc_has(d, "last_modified_time");
    bool items = is_items(d);
    size_t nc = entity_ncolumns(d);
    put_common(&sb, d);
    strbuf_printf(&sb, " up AS (INSERT INTO %s AS t (%s", d->table, d->id_field);
    for (size_t i = 0; i < nc; i++)
        strbuf_printf(&sb, ", %s", d->columns[i].column);
    strbuf_puts(&sb, ", raw, row_hash, synced_at, deleted_at) SELECT zid");
    for (size_t i = 0; i < nc; i++)
        strbuf_printf(&sb, ", %s", d->columns[i].column);
    strbuf_printf(&sb, ", raw::jsonb, rhash, now(), NULL FROM w ORDER BY zid ON CONFLICT (%s) DO UPDATE SET ",
                  d->id_field);
    for (size_t i = 0; i < nc; i++)
        strbuf_printf(&sb, "%s = EXCLUDED.%s, ", d->columns[i].column, d->columns[i].column);
    strbuf_puts(&sb, "raw = EXCLUDED.raw, row_hash = EXCLUDED.row_hash, synced_at = EXCLUDED.synced_at,"
                     " deleted_at = NULL WHERE (t.deleted_at IS NOT NULL OR ");
    put_row(&sb, d, "t");
    strbuf_puts(&sb, " IS DISTINCT FROM ");
    put_row(&sb, d, "EXCLUDED");
    strbuf_puts(&sb, " OR t.row_hash IS DISTINCT FROM EXCLUDED.row_hash)");
    if (lmt)
        strbuf_puts(&sb, " AND (t.last_modified_time IS NULL OR EXCLUDED.last_modified_time IS NULL"
                         " OR EXCLUDED.last_modified_time >= t.last_modified_time)");
    strbuf_printf(&sb, " RETURNING t.%s AS zid, %s AS lmt", d->id_field,
                  lmt ? "t.last_modified_time" : "NULL::timestamptz");
    if (items)
        strbuf_puts(&sb, ", t.stock_on_hand AS soh, t.available_stock AS avs,"
                         " t.actual_available_stock AS aas, t.image_document_id AS img");
    strbuf_puts(&sb, "),");
    strbuf_puts(&sb, " ev AS (INSERT INTO tds.events (type, run_id, entity_type, entity_id, data)"
                     " SELECT CASE WHEN w.is_new THEN 'tds.entity.create'"
                     " ELSE 'tds.entity.update' END, $1::bigint, $2, up.zid,"
                     " jsonb_build_object('source', 'sync', 'last_modified_time', up.lmt,"
                     " 'old_last_modified_time', w.olmt");
    if (items)
        strbuf_puts(&sb, ", 'old', CASE WHEN NOT w.had THEN NULL ELSE jsonb_build_object("
                         "'stock_on_hand', w.osoh, 'available_stock', w.oavs,"
                         " 'actual_available_stock', w.oaas) END,"
                         " 'new', jsonb_build_object('stock_on_hand', up.soh, 'available_stock',"
                         " up.avs, 'actual_available_stock', up.aas)");
    strbuf_puts(&sb, ") FROM up JOIN w ON w.zid = up.zid WHERE w.typed ORDER BY up.zid RETURNING 1),");
    /* the rows written for a typed change (others only refreshed raw) */
    strbuf_printf(&sb, " ch AS (SELECT up.*, w.is_new, %s AS newimg"
                       " FROM up JOIN w ON w.zid = up.zid WHERE w.typed)",
                  items ? "w.oimg IS DISTINCT FROM up.img" : "false");
    strbuf_puts(&sb, " SELECT (SELECT count(*) FROM s),");
    put_skipped(&sb, d);
    strbuf_puts(&sb, " (SELECT count(*) FROM ch),"
                     " (SELECT count(*) FROM ch WHERE is_new),"
                     " (SELECT count(*) FROM ev),"
                     " (SELECT count(*) FROM ch WHERE newimg)");
    return strbuf_detach(&sb);
}

static char *build_dry(const struct entity_desc *d)
{
    struct strbuf sb = {0};
    put_common(&sb, d);
    /* no statement after the CTEs may be empty: a harmless one */
    strbuf_puts(&sb, " nothing AS (SELECT 1)");
    strbuf_puts(&sb, " SELECT (SELECT count(*) FROM s),");
    put_skipped(&sb, d);
    strbuf_puts(&sb, " (SELECT count(*) FROM w WHERE typed), (SELECT count(*) FROM w WHERE is_new),"
                     " 0, 0 WHERE $1::bigint IS NULL OR $2::text IS NOT NULL");
    return strbuf_detach(&sb);
}

static const char *bulk_sql(const struct entity_desc *d, int which)
{
    size_t n;
    const struct entity_desc *all = entity_all(&n);
    size_t idx = (size_t)(d - all);
    if (idx >= n)
        return NULL;
    pthread_mutex_lock(&bsql_mu);
    if (bsql_cache == NULL) {
        bsql_cache = xcalloc(n, sizeof *bsql_cache);
        bsql_n = n;
    }
    if (bsql_cache[idx][0] == NULL) {
        bsql_cache[idx][BSQL_STAGE] = build_stage(d);
        bsql_cache[idx][BSQL_MERGE] = build_merge(d);
        bsql_cache[idx][BSQL_DRY] = build_dry(d);
        bsql_cache[idx][BSQL_COPY] = build_copy(d);
    }
    const char *s = bsql_cache[idx][which];
    pthread_mutex_unlock(&bsql_mu);
    return s;
}

/* The stock figures of a location row beyond its name and primary flag
 * (0019 added the last four: for sale and committed). */
#define LOC_FIGURES                                                                                \
    "stock_on_hand, available_stock, actual_available_stock, available_for_sale_stock,"            \
    " actual_available_for_sale_stock, committed_stock, actual_committed_stock"
#define LOC_FIGURES_S                                                                              \
    "s.stock_on_hand, s.available_stock, s.actual_available_stock, s.available_for_sale_stock,"    \
    " s.actual_available_for_sale_stock, s.committed_stock, s.actual_committed_stock"
#define LOC_FIGURES_T                                                                              \
    "t.stock_on_hand, t.available_stock, t.actual_available_stock, t.available_for_sale_stock,"    \
    " t.actual_available_for_sale_stock, t.committed_stock, t.actual_committed_stock"
#define LOC_FIGURES_EX                                                                             \
    "EXCLUDED.stock_on_hand, EXCLUDED.available_stock, EXCLUDED.actual_available_stock,"           \
    " EXCLUDED.available_for_sale_stock, EXCLUDED.actual_available_for_sale_stock,"                \
    " EXCLUDED.committed_stock, EXCLUDED.actual_committed_stock"
static const char SQL_LOC_STAGE[] =
    "CREATE TEMP TABLE IF NOT EXISTS tds_stage_locs (item_id text, location_id text,"
    " location_name text, is_primary boolean, stock_on_hand numeric, available_stock numeric,"
    " actual_available_stock numeric, available_for_sale_stock numeric,"
    " actual_available_for_sale_stock numeric, committed_stock numeric,"
    " actual_committed_stock numeric) ON COMMIT DELETE ROWS";
static const char SQL_LOCITEM_STAGE[] =
    "CREATE TEMP TABLE IF NOT EXISTS tds_stage_locitems_v2 (zid text, lmt timestamptz)"
    " ON COMMIT DELETE ROWS";
/* The locations of an item are those of its newest version: a copy older
 * than the stored item (a stale listing or refetch after a webhook) leaves
 * them alone, as the merge left the item. */
static const char SQL_LOC_MERGE[] =
    "WITH li AS (SELECT DISTINCT l.zid FROM pg_temp.tds_stage_locitems_v2 l"
    "   JOIN zoho.items i ON i.item_id = l.zid WHERE i.last_modified_time IS NULL"
    "   OR l.lmt IS NULL OR l.lmt >= i.last_modified_time),"
    " del AS (DELETE FROM zoho.item_locations x USING li WHERE x.item_id = li.zid"
    "   AND NOT EXISTS (SELECT 1 FROM pg_temp.tds_stage_locs s WHERE s.item_id = x.item_id"
    "   AND s.location_id = x.location_id) RETURNING 1),"
    " up AS (INSERT INTO zoho.item_locations AS t (item_id, location_id, location_name,"
    "   is_primary, " LOC_FIGURES ", synced_at)"
    "   SELECT DISTINCT ON (s.item_id, s.location_id) s.item_id, s.location_id, s.location_name,"
    "   s.is_primary, " LOC_FIGURES_S ", now()"
    "   FROM pg_temp.tds_stage_locs s JOIN li ON li.zid = s.item_id"
    "   ORDER BY s.item_id, s.location_id"
    "   ON CONFLICT (item_id, location_id) DO UPDATE SET (location_name, is_primary, "
    LOC_FIGURES ", synced_at) = (EXCLUDED.location_name, EXCLUDED.is_primary, " LOC_FIGURES_EX
    ", now())"
    "   WHERE (t.location_name, t.is_primary, " LOC_FIGURES_T ") IS DISTINCT FROM"
    "   (EXCLUDED.location_name, EXCLUDED.is_primary, " LOC_FIGURES_EX ")"
    "   RETURNING 1)"
    " SELECT (SELECT count(*) FROM del), (SELECT count(*) FROM up)";

char *sync_bulk_sql_text(const char *entity, const char *which)
{
    const struct entity_desc *d = entity_find(entity);
    if (d == NULL)
        return NULL;
    if (str_eq(which, "stage"))
        return xstrdup(bulk_sql(d, BSQL_STAGE));
    if (str_eq(which, "copy"))
        return xstrdup(bulk_sql(d, BSQL_COPY));
    if (str_eq(which, "merge"))
        return xstrdup(bulk_sql(d, BSQL_MERGE));
    if (str_eq(which, "loc_stage"))
        return xstrdup(SQL_LOC_STAGE);
    if (str_eq(which, "locitem_stage"))
        return xstrdup(SQL_LOCITEM_STAGE);
    if (str_eq(which, "loc_merge"))
        return xstrdup(SQL_LOC_MERGE);
    return NULL;
}

int sync_bulk_prepare(PGconn *c, const struct entity_desc *d, char **err)
{
    /* The staged raw text is compressed when a row is over ~2 KB: lz4, where
     * the server has it, costs half of what pglz does (see 0008_bulk_perf). */
    if (db_cmd(c,
               "SELECT set_config('default_toast_compression', 'lz4', false) FROM pg_settings"
               " WHERE name = 'default_toast_compression' AND 'lz4' = ANY (enumvals)",
               0, NULL, err) != 0)
        return -1;
    /* A batch's rows (~5 MB for 2,000 items) are sorted in memory, not on disk. */
    if (db_cmd(c, "SET work_mem = '64MB'", 0, NULL, err) != 0)
        return -1;
    if (db_cmd(c, bulk_sql(d, BSQL_STAGE), 0, NULL, err) != 0)
        return -1;
    if (is_items(d) && (db_cmd(c, SQL_LOC_STAGE, 0, NULL, err) != 0 ||
                        db_cmd(c, SQL_LOCITEM_STAGE, 0, NULL, err) != 0))
        return -1;
    return 0;
}

/* ---- COPY text ---- */

/* Appends v as one COPY text field (NULL: \N). */
static void copy_field(struct strbuf *sb, const char *v)
{
    if (v == NULL) {
        strbuf_puts(sb, "\\N");
        return;
    }
    const char *run = v;
    for (const char *p = v; *p; p++) {
        const char *esc = NULL;
        switch (*p) {
        case '\\': esc = "\\\\"; break;
        case '\n': esc = "\\n"; break;
        case '\r': esc = "\\r"; break;
        case '\t': esc = "\\t"; break;
        default: break;
        }
        if (esc) {
            strbuf_append(sb, run, (size_t)(p - run));
            strbuf_puts(sb, esc);
            run = p + 1;
        }
    }
    strbuf_puts(sb, run);
}

static int copy_send(PGconn *c, const char *sql, const char *data, size_t len, char **err)
{
    PGresult *r = PQexec(c, sql);
    if (PQresultStatus(r) != PGRES_COPY_IN) {
        *err = xasprintf("COPY: %s", PQresultErrorMessage(r));
        PQclear(r);
        return -1;
    }
    PQclear(r);
    int ok = 1;
    /* Send in chunks so a large batch does not sit in one libpq buffer twice. */
    size_t off = 0;
    while (ok == 1 && off < len) {
        size_t n = len - off > (1u << 20) ? (1u << 20) : len - off;
        ok = PQputCopyData(c, data + off, (int)n);
        off += n;
    }
    if (PQputCopyEnd(c, ok == 1 ? NULL : "send failed") != 1)
        ok = -1;
    r = PQgetResult(c);
    int rc = 0;
    if (ok != 1 || PQresultStatus(r) != PGRES_COMMAND_OK) {
        char *line = db_error_line(c);
        *err = xasprintf("COPY: %s", line);
        free(line);
        rc = -1;
    }
    PQclear(r);
    while ((r = PQgetResult(c)) != NULL)
        PQclear(r);
    return rc;
}

/* ---- JSON helpers ---- */

static char *fmt_double(double v)
{
    char buf[40];
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(buf, sizeof buf, "%.*g", prec, v);
        if (strtod(buf, NULL) == v)
            break;
    }
    return xstrdup(buf);
}

static bool numeric_text(const char *s)
{
    char *end;
    errno = 0;
    (void)strtod(s, &end);
    return end != s && *end == '\0' && strchr(s, 'x') == NULL && strchr(s, 'X') == NULL &&
           strpbrk(s, "iInN") == NULL;
}

/* A scalar as text: "" and missing are NULL.  *bad when not acceptable as kind. */
static char *json_text(const cJSON *o, const char *k1, const char *k2, char kind, bool *bad)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k1);
    if (v == NULL && k2)
        v = cJSON_GetObjectItemCaseSensitive(o, k2);
    if (v == NULL || cJSON_IsNull(v))
        return NULL;
    if (cJSON_IsString(v)) {
        if (v->valuestring[0] == '\0')
            return NULL;
        if (kind == 'n' && !numeric_text(v->valuestring))
            *bad = true;
        if (kind == 'b' && !str_eq(v->valuestring, "true") && !str_eq(v->valuestring, "false"))
            *bad = true;
        return *bad ? NULL : xstrdup(v->valuestring);
    }
    char *exact = entity_json_number(v); /* a number kept exactly */
    if (exact != NULL) {
        if (kind == 'b')
            *bad = true;
        if (*bad)
            free(exact);
        return *bad ? NULL : exact;
    }
    if (cJSON_IsNumber(v))
        return kind == 'b' ? xstrdup(v->valuedouble != 0 ? "true" : "false")
                           : fmt_double(v->valuedouble);
    if (cJSON_IsBool(v))
        return xstrdup(cJSON_IsTrue(v) ? "true" : "false");
    *bad = true;
    return NULL;
}

/* The text of an id however Zoho wrote it: a string, a number kept
 * exactly, or a number a double holds; NULL if none. */
static char *record_id_text(const cJSON *idv)
{
    char *exact = entity_json_number(idv);
    if (exact != NULL)
        return exact;
    if (cJSON_IsString(idv))
        return xstrdup(idv->valuestring);
    if (cJSON_IsNumber(idv) && idv->valuedouble >= 0 && idv->valuedouble < 9007199254740992.0)
        return xasprintf("%.0f", idv->valuedouble == 0 ? 0.0 : idv->valuedouble); /* -0: "0" */
    return NULL;
}

/*
 * Renders the locations (or legacy warehouses) of one item record as COPY
 * rows.  Returns 1 when the record carries such an array, 0 when not, -1
 * with *why when a location is unusable.
 */
static int render_locations(const cJSON *rec, const char *item_id, struct strbuf *locs,
                            char **why)
{
    const cJSON *arr = cJSON_GetObjectItemCaseSensitive(rec, "locations");
    bool legacy = false;
    if (!cJSON_IsArray(arr)) {
        arr = cJSON_GetObjectItemCaseSensitive(rec, "warehouses");
        legacy = true;
        if (!cJSON_IsArray(arr))
            return 0;
    }
    struct strbuf tmp = {0};
    const cJSON *l;
    cJSON_ArrayForEach(l, arr) {
        bool bad = false;
        char *id = json_text(l, legacy ? "warehouse_id" : "location_id",
                             legacy ? "location_id" : "warehouse_id", 't', &bad);
        if (id == NULL) {
            if (bad) {
                *why = xasprintf("item %s: a location has an unusable id", item_id);
                strbuf_free(&tmp);
                return -1;
            }
            continue;
        }
        /* name, primary, then the figures in LOC_FIGURES' order */
        static const char *const figs[] = {"stock_on_hand",
                                           "available_stock",
                                           "actual_available_stock",
                                           "available_for_sale_stock",
                                           "actual_available_for_sale_stock",
                                           "committed_stock",
                                           "actual_committed_stock"};
        enum { NV = 2 + TDS_ARRAY_LEN(figs) };
        char *v[NV];
        v[0] = json_text(l, legacy ? "warehouse_name" : "location_name",
                         legacy ? "location_name" : "warehouse_name", 't', &bad);
        v[1] = json_text(l, "is_primary", "is_primary_location", 'b', &bad);
        for (size_t f = 0; f < TDS_ARRAY_LEN(figs); f++) {
            char k1[64], k2[64];
            snprintf(k1, sizeof k1, "%s_%s", legacy ? "warehouse" : "location", figs[f]);
            snprintf(k2, sizeof k2, "%s_%s", legacy ? "location" : "warehouse", figs[f]);
            v[2 + f] = json_text(l, k1, k2, 'n', &bad);
        }
        if (!bad) {
            copy_field(&tmp, item_id);
            strbuf_putc(&tmp, '\t');
            copy_field(&tmp, id);
            for (int i = 0; i < NV; i++) {
                strbuf_putc(&tmp, '\t');
                copy_field(&tmp, v[i]);
            }
            strbuf_putc(&tmp, '\n');
        }
        for (int i = 0; i < NV; i++)
            free(v[i]);
        if (bad) {
            *why = xasprintf("item %s: location %s has an unusable value", item_id, id);
            free(id);
            strbuf_free(&tmp);
            return -1;
        }
        free(id);
    }
    if (tmp.len)
        strbuf_append(locs, tmp.buf, tmp.len);
    strbuf_free(&tmp);
    return 1;
}

/* ---- pages ---- */

struct bfail {
    char *id, *payload, *reason;
};

struct bpage {
    struct strbuf rows, locs, locitems;
    int nrec;           /* rows rendered */
    int nsame;          /* listed, stored already exactly so: not staged */
    int nskip;          /* with_stock_only: no stock there nor here: not staged */
    struct bfail *fails;
    int nfail, capfail;
    char *ctime, *cids;  /* cursor after this page */
    long long api;
    long long zpages;   /* Zoho list pages it holds (pages are joined) */
    long long details;  /* /itemdetails requests made for this page */
    long long details_ms;
    cJSON *recs;        /* a listed page not mapped yet (lister -> fetch thread) */
    struct bpage *next;
};

static void page_free(struct bpage *p)
{
    if (p == NULL)
        return;
    strbuf_free(&p->rows);
    strbuf_free(&p->locs);
    strbuf_free(&p->locitems);
    for (int i = 0; i < p->nfail; i++) {
        free(p->fails[i].id);
        free(p->fails[i].payload);
        free(p->fails[i].reason);
    }
    free(p->fails);
    free(p->ctime);
    free(p->cids);
    cJSON_Delete(p->recs);
    free(p);
}

static void page_fail(struct bpage *p, const char *id, const cJSON *rec, char *reason)
{
    if (p->nfail == p->capfail) {
        p->capfail = p->capfail ? p->capfail * 2 : 4;
        p->fails = xreallocarray(p->fails, (size_t)p->capfail, sizeof *p->fails);
    }
    char *payload = rec ? cJSON_PrintUnformatted(rec) : NULL;
    p->fails[p->nfail].id = xstrdup(id ? id : "");
    p->fails[p->nfail].payload = payload ? xstrdup(payload) : NULL;
    p->fails[p->nfail].reason = reason;
    if (payload)
        cJSON_free(payload);
    p->nfail++;
}

/* A list of owned strings. */
struct idvec {
    char **v;
    size_t n, cap;
};

static void idvec_push(struct idvec *l, const char *s)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 64;
        l->v = xreallocarray(l->v, l->cap, sizeof *l->v);
    }
    l->v[l->n++] = xstrdup(s);
}

static void idvec_clear(struct idvec *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
    memset(l, 0, sizeof *l);
}

/* Moves one failure into p (f's strings now belong to p). */
static void page_fail_take(struct bpage *p, struct bfail *f)
{
    if (p->nfail == p->capfail) {
        p->capfail = p->capfail ? p->capfail * 2 : 4;
        p->fails = xreallocarray(p->fails, (size_t)p->capfail, sizeof *p->fails);
    }
    p->fails[p->nfail++] = *f;
    memset(f, 0, sizeof *f);
}

/* Where one rendered row sits in a page, and what the classification needs. */
struct rowmeta {
    struct entity_record r;     /* id and typed values (raw not yet) */
    const cJSON *rec;
    long long hash;
};

/* Frees the n entries of m (m may be NULL: nothing was kept, n ignored). */
static void rowmeta_free(struct rowmeta *m, int n)
{
    for (int i = 0; m != NULL && i < n; i++)
        entity_record_free(&m[i].r);
    free(m);
}

static unsigned long long fnv(unsigned long long h, const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= 1099511628211ULL;
    }
    return h;
}

/* FNV-1a over a JSON value's structure: types, keys, strings, numbers. */
static unsigned long long json_hash(unsigned long long h, const cJSON *v)
{
    unsigned char tag = (unsigned char)(v->type & 0xff);
    h = fnv(h, &tag, 1);
    if (v->string)
        h = fnv(h, v->string, strlen(v->string) + 1);
    if (cJSON_IsString(v) || cJSON_IsRaw(v))
        h = fnv(h, v->valuestring, strlen(v->valuestring) + 1);
    else if (cJSON_IsNumber(v))
        h = fnv(h, &v->valuedouble, sizeof v->valuedouble);
    else if (cJSON_IsArray(v) || cJSON_IsObject(v)) {
        for (const cJSON *c = v->child; c; c = c->next)
            h = json_hash(h, c);
        h = fnv(h, "]", 1);
    }
    return h;
}

/* The hash stored in row_hash for a record: signed, as a bigint holds it. */
static long long record_hash(const cJSON *rec)
{
    unsigned long long h = json_hash(14695981039346656037ULL, rec);
    long long v;
    memcpy(&v, &h, sizeof v);
    return v;
}

/* Appends a mapped record (raw included) as one COPY row of the stage. */
static void render_row(struct bpage *p, const struct entity_record *r, long long hash)
{
    size_t nc = entity_ncolumns(r->desc);
    copy_field(&p->rows, r->id);
    for (size_t i = 0; i < nc; i++) {
        strbuf_putc(&p->rows, '\t');
        copy_field(&p->rows, r->values[i]);
    }
    strbuf_putc(&p->rows, '\t');
    copy_field(&p->rows, r->raw);
    strbuf_printf(&p->rows, "\t%lld\n", hash);
    p->nrec++;
}

/*
 * Maps every record of arr into p.  with_locs: render locations carried by
 * the records.  metap (or NULL): the rows are not rendered yet, but left in
 * *metap (one per record counted in p->nrec, arr must outlive them) for
 * page_classify, which renders the ones to be written.
 */
static void page_render(struct bpage *p, const struct entity_desc *d, const cJSON *arr,
                        bool with_locs, struct rowmeta **metap)
{
    int cap = metap ? cJSON_GetArraySize(arr) : 0;
    if (metap)
        *metap = cap > 0 ? xcalloc((size_t)cap, sizeof **metap) : NULL;
    const cJSON *rec;
    cJSON_ArrayForEach(rec, arr) {
        struct entity_record r;
        char *err = NULL;
        memset(&r, 0, sizeof r);
        if (!cJSON_IsObject(rec)) {
            page_fail(p, NULL, rec, xasprintf("%s: a record is not a JSON object", d->name));
            continue;
        }
        if (entity_map_values(d, rec, &r, &err) != 0 ||
            (metap == NULL && entity_map_raw(&r, rec, &err) != 0)) {
            /* the record's own id, however it was written (a number too) */
            const cJSON *idv = cJSON_GetObjectItemCaseSensitive(rec, d->id_field);
            char *idtext = r.id ? xstrdup(r.id) : record_id_text(idv);
            page_fail(p, idtext, rec, err ? err : xstrdup("unmappable record"));
            free(idtext);
            entity_record_free(&r);
            continue;
        }
        if (!str_is_digits(r.id)) {
            page_fail(p, r.id, rec, xasprintf("%s record: %s \"%s\" is not digits", d->name,
                                              d->id_field, r.id));
            entity_record_free(&r);
            continue;
        }
        if (with_locs && is_items(d)) {
            char *why = NULL;
            size_t mark = p->locs.len;
            int lr = render_locations(rec, r.id, &p->locs, &why);
            if (lr < 0) {
                p->locs.len = mark;
                if (p->locs.buf)
                    p->locs.buf[mark] = '\0';
                page_fail(p, r.id, rec, why);
                entity_record_free(&r);
                continue;
            }
            if (lr > 0) {
                copy_field(&p->locitems, r.id);
                strbuf_putc(&p->locitems, '\t');
                copy_field(&p->locitems, r.last_modified_time);
                strbuf_putc(&p->locitems, '\n');
            }
        }
        if (metap && p->nrec < cap) {
            struct rowmeta *m = &(*metap)[p->nrec++];
            m->r = r;
            m->rec = rec;
            m->hash = record_hash(rec);
            continue;
        }
        render_row(p, &r, record_hash(rec));
        entity_record_free(&r);
    }
}

/* ---- the bounded page queue between the fetch thread and the writer ---- */

#define PIPE_CAP 4

struct pipe {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct bpage *head, *tail;
    int n;
    bool eof, abort;
    char *error;        /* fetch failure */
};

/* Queues p; false (p freed) once the consumer gave up. */
static bool pipe_push(struct pipe *q, struct bpage *p)
{
    pthread_mutex_lock(&q->mu);
    while (q->n >= PIPE_CAP && !q->abort)
        pthread_cond_wait(&q->cv, &q->mu);
    if (q->abort) {
        pthread_mutex_unlock(&q->mu);
        page_free(p);
        return false;
    }
    if (q->tail)
        q->tail->next = p;
    else
        q->head = p;
    q->tail = p;
    q->n++;
    pthread_cond_broadcast(&q->cv);
    pthread_mutex_unlock(&q->mu);
    return true;
}

/* Next page, or NULL at the end (q->error says whether it failed). */
static struct bpage *pipe_pop(struct pipe *q)
{
    pthread_mutex_lock(&q->mu);
    while (q->head == NULL && !q->eof)
        pthread_cond_wait(&q->cv, &q->mu);
    struct bpage *p = q->head;
    if (p) {
        q->head = p->next;
        if (q->head == NULL)
            q->tail = NULL;
        q->n--;
        p->next = NULL;
        pthread_cond_broadcast(&q->cv);
    }
    pthread_mutex_unlock(&q->mu);
    return p;
}

static void pipe_finish(struct pipe *q, char *error)
{
    pthread_mutex_lock(&q->mu);
    q->eof = true;
    q->error = error;
    pthread_cond_broadcast(&q->cv);
    pthread_mutex_unlock(&q->mu);
}

/* ---- the fetch thread ---- */

/* Rounds of the client's own retries (each already several attempts with
 * backoff) before a page counts as failed: survives fault storms. */
#define OUTER_TRIES 3

static void nap_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

struct fetcher {
    struct sync_job *j;
    const struct bulk_opts *o;
    struct pipe *q;
    struct zoho_conn *zc;
    PGconn *db;         /* to see which listed records changed (page_classify) */
    char *classify_sql; /* prepared on db as tds_classify */
    long long calls_left;   /* API calls not yet handed over in a page */
};

/* Per-location stock is fetched by the fetch thread, for the items of each
 * page whose totals or last_modified_time differ from the stored copy, and
 * written in the same transaction as the page.  (Specific items come from
 * /itemdetails already; a dry run writes nothing.) */
static bool details_in_fetch(const struct bulk_opts *o)
{
    return is_items(o->d) && o->ids == NULL && !o->dry_run && !o->no_details;
}

/* Listed records stored exactly so already are dropped before staging
 * (see page_classify), except when every listed id must reach the stage
 * (reconciliation collects them). */
static bool skip_same(const struct bulk_opts *o)
{
    return o->ids == NULL && !o->collect_seen;
}

/* Appends one element to a text[] literal. */
static void arr_put(struct strbuf *sb, const char *v)
{
    if (sb->len > 1)
        strbuf_putc(sb, ',');
    if (v == NULL) {
        strbuf_puts(sb, "NULL");
        return;
    }
    strbuf_putc(sb, '"');
    for (const char *c = v; *c; c++) {
        if (*c == '"' || *c == '\\')
            strbuf_putc(sb, '\\');
        strbuf_putc(sb, *c);
    }
    strbuf_putc(sb, '"');
}

/* Renders the locations of ids (fetched from /itemdetails) as COPY rows. */
static int details_render(struct sync_job *j, struct zoho_conn *zc, char *const *ids, size_t nids,
                          struct strbuf *locs, struct strbuf *li, long long *calls, char **err)
{
    for (size_t at = 0; at < nids;) {
        if (sync_job_stopping(j))
            return 0;
        size_t n = nids - at > ZOHO_ITEMDETAILS_MAX ? ZOHO_ITEMDETAILS_MAX : nids - at;
        cJSON *items = NULL;
        struct zoho_error ze = {0};
        int rc = -1;
        for (int tries = 0; tries < OUTER_TRIES; tries++) {
            rc = zoho_get_itemdetails(zc, (const char *const *)ids + at, n, &items, &ze);
            if (rc == 0 || !sync_zoho_again(&ze) || sync_job_stopping(j))
                break;
            zoho_error_clear(&ze);
            nap_ms(1000L * (tries + 1));
        }
        (*calls)++;
        if (rc != 0) {
            char *m = zoho_error_format(&ze);
            zoho_error_clear(&ze);
            *err = xasprintf("itemdetails: %s", m);
            free(m);
            return -1;
        }
        const cJSON *rec;
        cJSON_ArrayForEach(rec, items) {
            /* a string id, or a number (Zoho's documented samples) */
            char *iid = record_id_text(cJSON_GetObjectItemCaseSensitive(rec, "item_id"));
            if (iid == NULL || !str_is_digits(iid)) {
                free(iid);
                continue;
            }
            char *why = NULL;
            size_t mark = locs->len;
            if (render_locations(rec, iid, locs, &why) < 0) {
                locs->len = mark;
                if (locs->buf)
                    locs->buf[mark] = '\0';
                log_warn("run %lld: %s", j->run_id, why);
                free(why);
                free(iid);
                continue;
            }
            /* An item without a locations array has none: clear what we had
             * (unless the answer is older than the stored item). */
            struct entity_record mr;
            char *merr = NULL;
            bool mapped = entity_map_values(entity_find("items"), rec, &mr, &merr) == 0;
            free(merr);
            copy_field(li, iid);
            strbuf_putc(li, '\t');
            copy_field(li, mapped ? mr.last_modified_time : NULL);
            strbuf_putc(li, '\n');
            entity_record_free(&mr);
            free(iid);
        }
        cJSON_Delete(items);
        at += n;
    }
    return 0;
}

/*
 * Classifies the rows of a listed page against the stored copies: 'w' to be
 * written (absent, marked deleted, or hashing differently from the record
 * the last merge stored, or never merged: row_hash NULL), 's' stored so
 * already, 'k' skipped (items with with_stock_only: no stock there nor
 * here).  With skip_same only the 'w' rows are rendered into the page, the
 * others are counted; without, all are.  For items whose per-location
 * stock is wanted, the ids of the 'w' rows (of all but 'k' with
 * all_details) are added to want.  0, or -1 with *err.
 *
 * Only the hash is compared: a row changed behind the engine's back (not
 * through tds) keeps its hash and is repaired by reconciliation, which
 * compares every row.
 */
static int page_classify(struct fetcher *f, struct bpage *p, struct rowmeta *meta,
                         struct idvec *want, char **err)
{
    const struct entity_desc *d = f->o->d;
    bool items = is_items(d);
    int n = p->nrec;
    if (n == 0)
        return 0;
    int soh = items ? desc_col(d, "stock_on_hand") : -1;
    struct strbuf a[3] = {{0}};
    for (int k = 0; k < 3; k++)
        strbuf_putc(&a[k], '{');
    for (int i = 0; i < n; i++) {
        arr_put(&a[0], meta[i].r.id);
        if (a[1].len > 1)
            strbuf_putc(&a[1], ',');
        strbuf_printf(&a[1], "%lld", meta[i].hash);
        arr_put(&a[2], soh >= 0 ? meta[i].r.values[soh] : NULL);
    }
    for (int k = 0; k < 3; k++)
        strbuf_putc(&a[k], '}');
    if (f->classify_sql == NULL) {
        f->classify_sql = xasprintf(
            "SELECT CASE WHEN %s THEN 'k' WHEN t.%s IS NULL OR t.deleted_at IS NOT NULL"
            " OR t.row_hash IS DISTINCT FROM s.h THEN 'w' ELSE 's' END"
            " FROM unnest($2::text[], $3::bigint[], $4::numeric[]) WITH ORDINALITY"
            " AS s(zid, h, soh, i) LEFT JOIN %s t ON t.%s = s.zid ORDER BY s.i",
            items ? "$1::boolean AND coalesce(s.soh, 0) = 0 AND coalesce(t.stock_on_hand, 0) = 0"
                  : "$1::boolean AND false",
            d->id_field, d->table, d->id_field);
        PGresult *pr = PQprepare(f->db, "tds_classify", f->classify_sql, 4, NULL);
        bool ok = PQresultStatus(pr) == PGRES_COMMAND_OK;
        PQclear(pr);
        if (!ok) {
            char *line = db_error_line(f->db);
            *err = xasprintf("classifying a page: %s", line);
            free(line);
            for (int k = 0; k < 3; k++)
                strbuf_free(&a[k]);
            return -1;
        }
    }
    const char *pp[4] = {f->o->with_stock_only ? "t" : "f", a[0].buf, a[1].buf, a[2].buf};
    PGresult *r = PQexecPrepared(f->db, "tds_classify", 4, pp, NULL, NULL, 0);
    for (int k = 0; k < 3; k++)
        strbuf_free(&a[k]);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        PQclear(r);
        char *line = db_error_line(f->db);
        *err = xasprintf("classifying a page: %s", line);
        free(line);
        return -1;
    }
    if (PQntuples(r) != n) {
        PQclear(r);
        *err = xstrdup("classifying a page: the row count does not match");
        return -1;
    }
    bool skip = skip_same(f->o);
    bool details = items && details_in_fetch(f->o);
    p->nrec = 0;
    for (int i = 0; i < n; i++) {
        char what = PQgetvalue(r, i, 0)[0];
        if (what == 'w' || !skip) {
            char *why = NULL;
            if (entity_map_raw(&meta[i].r, meta[i].rec, &why) != 0) {
                page_fail(p, meta[i].r.id, meta[i].rec, why);
                continue;
            }
            render_row(p, &meta[i].r, meta[i].hash);
        } else if (what == 's') {
            p->nsame++;
        } else {
            p->nskip++;
        }
        if (details && (what == 'w' || (what == 's' && f->o->all_details)))
            idvec_push(want, meta[i].r.id);
    }
    PQclear(r);
    return 0;
}

/* Appends page b to page a (b is freed): one transaction for both. */
static void page_join(struct bpage *a, struct bpage *b)
{
    strbuf_append(&a->rows, b->rows.buf ? b->rows.buf : "", b->rows.len);
    strbuf_append(&a->locs, b->locs.buf ? b->locs.buf : "", b->locs.len);
    strbuf_append(&a->locitems, b->locitems.buf ? b->locitems.buf : "", b->locitems.len);
    a->nrec += b->nrec;
    a->nsame += b->nsame;
    a->nskip += b->nskip;
    for (int i = 0; i < b->nfail; i++)
        page_fail_take(a, &b->fails[i]);
    b->nfail = 0;
    if (b->ctime) {
        free(a->ctime);
        free(a->cids);
        a->ctime = b->ctime;
        a->cids = b->cids;
        b->ctime = b->cids = NULL;
    }
    a->api += b->api;
    a->zpages += b->zpages;
    a->details += b->details;
    a->details_ms += b->details_ms;
    page_free(b);
}

bool sync_zoho_again(const struct zoho_error *e)
{
    return !e->retried && sync_zoho_transient(e);
}

bool sync_zoho_transient(const struct zoho_error *e)
{
    switch (e->kind) {
    case ZOHO_ERR_SERVER:
    case ZOHO_ERR_NETWORK:
    case ZOHO_ERR_BAD_RESPONSE:
    case ZOHO_ERR_RATE_MINUTE:
    case ZOHO_ERR_RATE_CONCURRENCY:
    case ZOHO_ERR_TOKEN:
        return true;
    default:
        return false;
    }
}


/*
 * The lister: a thread of its own that only pulls pages (HTTP and JSON
 * parsing), so the next page is on the wire and parsed while the fetch
 * thread maps, classifies and renders the last one.
 */
struct trash {
    cJSON *recs;
    struct trash *next;
};

struct lister {
    struct fetcher *f;
    struct zoho_pager *pg;
    struct pipe out;
    /* Pages the fetch thread is done with go back to the lister, which
     * parsed them, to be freed: glibc frees a chunk of another thread's
     * arena under that arena's lock, and two threads trading some 40,000
     * nodes a page that way fought over it. */
    struct trash *trash;    /* under out.mu */
};

static void lister_trash(struct lister *l, cJSON *recs)
{
    struct trash *t = xcalloc(1, sizeof *t);
    t->recs = recs;
    pthread_mutex_lock(&l->out.mu);
    t->next = l->trash;
    l->trash = t;
    pthread_mutex_unlock(&l->out.mu);
}

static void lister_empty_trash(struct lister *l)
{
    pthread_mutex_lock(&l->out.mu);
    struct trash *t = l->trash;
    l->trash = NULL;
    pthread_mutex_unlock(&l->out.mu);
    while (t) {
        struct trash *nx = t->next;
        cJSON_Delete(t->recs);
        free(t);
        t = nx;
    }
}

static void *list_main(void *arg)
{
    struct lister *l = arg;
    struct fetcher *f = l->f;
    log_set_context("run %lld list", f->j->run_id);
    char *error = NULL;
    int tries = 0;
    for (;;) {
        lister_empty_trash(l);
        if (sync_job_stopping(f->j)) {
            error = xstrdup("cancelled");
            break;
        }
        cJSON *recs = NULL;
        struct zoho_error ze = {0};
        int rc = zoho_pager_next(l->pg, &recs, NULL, &ze);
        if (rc < 0) {
            if (sync_zoho_again(&ze) && ++tries < OUTER_TRIES && !sync_job_stopping(f->j)) {
                char *m = zoho_error_format(&ze);
                log_warn("run %lld: %s (trying the page again)", f->j->run_id, m);
                free(m);
                zoho_error_clear(&ze);
                nap_ms(1000L * tries);
                continue;
            }
            error = zoho_error_format(&ze);
            zoho_error_clear(&ze);
            break;
        }
        tries = 0;
        if (rc == 0)
            break;
        struct bpage *p = xcalloc(1, sizeof *p);
        p->recs = recs;
        p->zpages = 1;
        if (f->o->save_cursor)
            zoho_pager_cursor(l->pg, &p->ctime, &p->cids);
        p->api = zoho_conn_take_calls(f->zc);
        if (!pipe_push(&l->out, p))
            break;
    }
    pipe_finish(&l->out, error);
    return NULL;
}

static char *fetch_listing(struct fetcher *f)
{
    const struct bulk_opts *o = f->o;
    struct zoho_pager_opts po = {
        .filter_by = o->filter_by,
        .changed_since = o->changed_since,
        .seen_ids = o->seen_ids,
        .n_seen = o->n_seen,
        .per_page = f->j->cfg ? f->j->cfg->stock.page_size : 200,
    };
    struct lister l = {.f = f, .pg = zoho_pager_new(f->zc, o->d, &po)};
    pthread_mutex_init(&l.out.mu, NULL);
    pthread_cond_init(&l.out.cv, NULL);
    pthread_t th;
    if (pthread_create(&th, NULL, list_main, &l) != 0) {
        zoho_pager_free(l.pg);
        pthread_mutex_destroy(&l.out.mu);
        pthread_cond_destroy(&l.out.cv);
        return xstrdup("cannot start the list thread");
    }
    /* Per-location stock is asked on a connection of this thread's own. */
    struct zoho_conn *dzc = zoho_conn_new(f->j->zc, f->j->stop);
    char *error = NULL;
    /* Pages are held (joined into acc) until their items want a full
     * /itemdetails request, or a batch's worth of records was listed: a
     * repeat sync asks for the few changed items 100 at a time, and each
     * held page still commits with the locations of its items. */
    struct bpage *acc = NULL;
    struct idvec want = {0};
    int cap = o->batch_size > 0 ? o->batch_size : 2000;
    for (;;) {
        struct bpage *p = pipe_pop(&l.out);
        if (p == NULL && l.out.error) {
            error = l.out.error;
            l.out.error = NULL;
            break;
        }
        if (p) {
            struct rowmeta *meta = NULL;
            cJSON *recs = p->recs;
            p->recs = NULL;
            page_render(p, o->d, recs, false, f->db ? &meta : NULL);
            /* Only a classified page keeps its rows in meta; an unclassified
             * one (no skip_same: reconcile of every entity but items) has
             * rendered them already and counted them in nrec too. */
            int nr = meta ? p->nrec : 0;
            int crc = f->db ? page_classify(f, p, meta, &want, &error) : 0;
            rowmeta_free(meta, nr);
            lister_trash(&l, recs);
            if (crc != 0) {
                page_free(p);
                break;
            }
            if (acc)
                page_join(acc, p);
            else
                acc = p;
        }
        if (acc && (p == NULL || want.n >= ZOHO_ITEMDETAILS_MAX ||
                    acc->nrec + acc->nsame + acc->nskip + acc->nfail >= cap)) {
            if (want.n > 0) {
                long long t0 = time_mono_ms();
                int dr = details_render(f->j, dzc, want.v, want.n, &acc->locs, &acc->locitems,
                                        &acc->details, &error);
                acc->details_ms += time_mono_ms() - t0;
                acc->api += zoho_conn_take_calls(dzc);
                idvec_clear(&want);
                if (dr != 0)
                    break;
            }
            bool taken = pipe_push(f->q, acc);
            acc = NULL;
            if (!taken)
                break;
        }
        if (p == NULL)
            break;
    }
    /* Stop the lister (if it is still going) and drop what it left. */
    pthread_mutex_lock(&l.out.mu);
    l.out.abort = true;
    pthread_cond_broadcast(&l.out.cv);
    pthread_mutex_unlock(&l.out.mu);
    pthread_join(th, NULL);
    lister_empty_trash(&l);
    for (struct bpage *p = l.out.head, *nx; p; p = nx) {
        nx = p->next;
        page_free(p);
    }
    free(l.out.error);
    page_free(acc);
    idvec_clear(&want);
    zoho_pager_free(l.pg);
    f->calls_left = zoho_conn_take_calls(dzc);   /* counted by the writer after the join */
    zoho_conn_free(dzc);
    pthread_mutex_destroy(&l.out.mu);
    pthread_cond_destroy(&l.out.cv);
    return error;
}

static char *fetch_ids(struct fetcher *f)
{
    const struct bulk_opts *o = f->o;
    char *error = NULL;
    for (size_t at = 0; at < o->n_ids;) {
        if (sync_job_stopping(f->j))
            return xstrdup("cancelled");
        size_t n = o->n_ids - at > ZOHO_ITEMDETAILS_MAX ? ZOHO_ITEMDETAILS_MAX : o->n_ids - at;
        cJSON *items = NULL;
        struct zoho_error ze = {0};
        int rc = -1;
        for (int tries = 0; tries < OUTER_TRIES; tries++) {
            rc = zoho_get_itemdetails(f->zc, (const char *const *)o->ids + at, n, &items, &ze);
            if (rc == 0 || !sync_zoho_again(&ze) || sync_job_stopping(f->j))
                break;
            zoho_error_clear(&ze);
            nap_ms(1000L * (tries + 1));
        }
        if (rc != 0) {
            error = zoho_error_format(&ze);
            zoho_error_clear(&ze);
            break;
        }
        struct bpage *p = xcalloc(1, sizeof *p);
        page_render(p, o->d, items, true, NULL);
        /* Ids Zoho did not return are not written (reconcile finds them). */
        cJSON_Delete(items);
        p->api = zoho_conn_take_calls(f->zc);
        if (!pipe_push(f->q, p))
            break;
        at += n;
    }
    return error;
}

static void *fetch_main(void *arg)
{
    struct fetcher *f = arg;
    log_set_context("run %lld fetch", f->j->run_id);
    char *error = NULL;
    if (details_in_fetch(f->o) || skip_same(f->o)) {
        f->db = db_connect(f->j->cfg, &error);
        if (f->db == NULL) {
            pipe_finish(f->q, error);
            return NULL;
        }
    }
    error = f->o->ids ? fetch_ids(f) : fetch_listing(f);
    if (f->db)
        PQfinish(f->db);
    free(f->classify_sql);
    pipe_finish(f->q, error);
    return NULL;
}

/* ---- the writer ---- */

void sync_job_count(struct sync_job *j, long long total, long long succeeded, long long failed,
                    long long unchanged, long long api_calls)
{
    j->stats.total += total;
    j->stats.succeeded += succeeded;
    j->stats.failed += failed;
    j->stats.unchanged += unchanged;
    j->stats.api_calls += api_calls;
    if (j->call_cap > 0 && j->stats.api_calls >= j->call_cap && !j->cap_reached) {
        j->cap_reached = true;
        if (j->stop)
            atomic_store(j->stop, true);
    }
    if (j->add)
        j->add(j->arg, total, succeeded, failed, unchanged, api_calls);
    /* Records a run handled count in the per-minute throughput the console
     * draws and the failure-rate alert reads, like the queue workers' items.
     * Called between batches (no transaction open); a failure costs only
     * the figure. */
    if (total > 0 && j->conn != NULL) {
        char ok[24], bad[24];
        snprintf(ok, sizeof ok, "%lld", succeeded + unchanged);
        snprintf(bad, sizeof bad, "%lld", failed);
        const char *p[3] = {j->instance ? j->instance : "tds", ok, bad};
        char *e = NULL;
        if (db_cmd(j->conn,
                   "INSERT INTO tds.stats_minute (minute, instance, ok, failed)"
                   " VALUES (date_trunc('minute', now()), $1, $2::bigint, $3::bigint)"
                   " ON CONFLICT (minute, instance) DO UPDATE SET"
                   " ok = tds.stats_minute.ok + EXCLUDED.ok,"
                   " failed = tds.stats_minute.failed + EXCLUDED.failed",
                   3, p, &e) != 0) {
            log_debug("run %lld: per-minute statistics: %s", j->run_id, e);
            free(e);
        }
    }
}

int sync_dlq_record(struct sync_job *j, const struct entity_desc *d, const char *zoho_id,
                    const char *payload, const char *reason, char **err)
{
    struct queue_enqueue_opts qo = {.run_id = j->run_id, .priority = 1, .max_attempts = 1};
    long long qid = 0;
    const char *zid = str_empty(zoho_id) ? "unknown" : zoho_id;
    char *pl = NULL;
    if (payload) {
        cJSON *check = cJSON_Parse(payload);
        if (check == NULL) {
            cJSON *w = cJSON_CreateObject();
            cJSON_AddStringToObject(w, "unparsed", payload);
            char *t = cJSON_PrintUnformatted(w);
            pl = xstrdup(t);
            cJSON_free(t);
            cJSON_Delete(w);
        }
        cJSON_Delete(check);
    }
    if (queue_enqueue(j->conn, d->name, zid, QOP_UPSERT, pl ? pl : payload, &qo, &qid, err) != 0) {
        free(pl);
        return -1;
    }
    free(pl);
    return queue_move_to_dlq(j->conn, qid, j->instance ? j->instance : "sync", reason, err);
}

/* What the merge of one batch reported. */
struct merge_out {
    long long staged, kept, written, created, events, images;
};

static int run_merge(struct sync_job *j, const struct bulk_opts *o, struct merge_out *m,
                     char **err)
{
    char run[32];
    snprintf(run, sizeof run, "%lld", j->run_id);
    const char *p[3] = {j->run_id ? run : NULL, o->d->name, o->with_stock_only ? "t" : "f"};
    PGresult *r = db_exec(j->conn, bulk_sql(o->d, o->dry_run ? BSQL_DRY : BSQL_MERGE), 3, p, err);
    if (r == NULL)
        return -1;
    if (PQntuples(r) == 1) {
        m->staged = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
        m->kept = m->staged - strtoll(PQgetvalue(r, 0, 1), NULL, 10);
        m->written = strtoll(PQgetvalue(r, 0, 2), NULL, 10);
        m->created = strtoll(PQgetvalue(r, 0, 3), NULL, 10);
        m->events = strtoll(PQgetvalue(r, 0, 4), NULL, 10);
        m->images = strtoll(PQgetvalue(r, 0, 5), NULL, 10);
    }
    PQclear(r);
    return 0;
}

static int merge_locations(struct sync_job *j, char **err)
{
    PGresult *r = db_exec(j->conn, SQL_LOC_MERGE, 0, NULL, err);
    if (r == NULL)
        return -1;
    j->stats.locations += strtoll(PQgetvalue(r, 0, 0), NULL, 10) +
                          strtoll(PQgetvalue(r, 0, 1), NULL, 10);
    PQclear(r);
    return 0;
}

static int save_cursor(struct sync_job *j, const struct entity_desc *d, const char *ctime,
                       const char *cids, char **err)
{
    char run[32];
    snprintf(run, sizeof run, "%lld", j->run_id);
    const char *p[4] = {d->name, ctime, cids ? cids : "[]", j->run_id ? run : NULL};
    return db_cmd(j->conn,
                  "INSERT INTO tds.sync_state AS s (entity_type, cursor_time, cursor_ids,"
                  " last_run_id, updated_at) VALUES ($1, $2::timestamptz, $3::jsonb, $4::bigint,"
                  " now()) ON CONFLICT (entity_type) DO UPDATE SET cursor_time ="
                  " EXCLUDED.cursor_time, cursor_ids = EXCLUDED.cursor_ids, last_run_id ="
                  " coalesce(EXCLUDED.last_run_id, s.last_run_id), updated_at = now()"
                  " WHERE s.cursor_time IS NULL OR EXCLUDED.cursor_time >= s.cursor_time",
                  4, p, err);
}

/* Writes the pages of one batch.  Returns 0, or -1 with *err (rolled back). */
static int write_batch(struct sync_job *j, const struct bulk_opts *o, struct bpage **pages, int np,
                       char **err)
{
    struct strbuf rows = {0}, locs = {0}, li = {0};
    long long nrec = 0, nfail = 0, api = 0, nsame = 0, nskip = 0;
    const char *ctime = NULL, *cids = NULL;
    for (int i = 0; i < np; i++) {
        if (pages[i]->rows.len)
            strbuf_append(&rows, pages[i]->rows.buf, pages[i]->rows.len);
        if (pages[i]->locs.len)
            strbuf_append(&locs, pages[i]->locs.buf, pages[i]->locs.len);
        if (pages[i]->locitems.len)
            strbuf_append(&li, pages[i]->locitems.buf, pages[i]->locitems.len);
        nrec += pages[i]->nrec;
        nsame += pages[i]->nsame;
        nskip += pages[i]->nskip;
        nfail += pages[i]->nfail;
        api += pages[i]->api;
        if (pages[i]->ctime) {
            ctime = pages[i]->ctime;
            cids = pages[i]->cids;
        }
    }
    struct merge_out m;
    memset(&m, 0, sizeof m);
    long long t0 = time_mono_ms();
    int rc = db_begin(j->conn, err);
    if (rc == 0 && rows.len)
        rc = copy_send(j->conn, bulk_sql(o->d, BSQL_COPY), rows.buf, rows.len, err);
    if (rc == 0 && li.len)
        rc = copy_send(j->conn, "COPY pg_temp.tds_stage_locitems_v2 (zid, lmt) FROM STDIN", li.buf, li.len,
                       err);
    if (rc == 0 && locs.len)
        rc = copy_send(j->conn,
                       "COPY pg_temp.tds_stage_locs (item_id, location_id, location_name,"
                       " is_primary, " LOC_FIGURES ") FROM STDIN",
                       locs.buf, locs.len, err);
    if (rc == 0 && rows.len)
        rc = run_merge(j, o, &m, err);
    if (rc == 0 && li.len && !o->dry_run)
        rc = merge_locations(j, err);
    if (rc == 0 && o->collect_seen && rows.len) {
        char *q = xasprintf("INSERT INTO pg_temp.tds_seen (zid) SELECT DISTINCT zid FROM"
                            " pg_temp.tds_stage_%s ON CONFLICT DO NOTHING",
                            o->d->name);
        rc = db_cmd(j->conn, q, 0, NULL, err);
        free(q);
    }
    for (int i = 0; rc == 0 && i < np && !o->dry_run; i++)
        for (int k = 0; rc == 0 && k < pages[i]->nfail; k++)
            rc = sync_dlq_record(j, o->d, pages[i]->fails[k].id, pages[i]->fails[k].payload,
                                 pages[i]->fails[k].reason, err);
    if (rc == 0 && o->save_cursor && ctime && !o->dry_run)
        rc = save_cursor(j, o->d, ctime, cids, err);
    if (rc == 0) {
        if (o->dry_run) {
            db_rollback(j->conn);
        } else {
            rc = db_commit(j->conn, err);
        }
    } else {
        db_rollback(j->conn);
    }
    strbuf_free(&rows);
    strbuf_free(&locs);
    strbuf_free(&li);
    j->stats.write_ms += time_mono_ms() - t0;
    if (rc == 0) {
        for (int i = 0; i < np; i++)
            for (int k = 0; k < pages[i]->nfail; k++)
                log_warn("run %lld: %s record %s failed: %s", j->run_id, o->d->name,
                         pages[i]->fails[k].id, pages[i]->fails[k].reason);
        long long skipped = m.staged - m.kept + nskip;
        long long dups = nrec - m.staged;
        j->stats.skipped += skipped;
        j->stats.created += m.created;
        j->stats.events += m.events;
        sync_job_count(j, m.kept + dups + nfail + nsame, m.written, nfail,
                       m.kept - m.written + dups + nsame, api);
        /* Per-location stock was fetched with the pages (lists carry none). */
        for (int i = 0; i < np; i++) {
            j->stats.detail_calls += pages[i]->details;
            j->stats.details_ms += pages[i]->details_ms;
        }
        /* Images are fetched after the run (or by an "images" run): one
         * API call each must never hold the records' writes back. */
        if (rc == 0 && is_items(o->d) && !o->dry_run && j->cfg && j->cfg->images.enabled)
            j->stats.images_pending += m.images;
    }
    return rc;
}

int sync_bulk_run(struct sync_job *j, const struct bulk_opts *o, char **err)
{
    if (sync_bulk_prepare(j->conn, o->d, err) != 0)
        return -1;
    if (o->collect_seen &&
        (db_cmd(j->conn, "CREATE TEMP TABLE IF NOT EXISTS tds_seen (zid text PRIMARY KEY)", 0,
                NULL, err) != 0 ||
         db_cmd(j->conn, "TRUNCATE pg_temp.tds_seen", 0, NULL, err) != 0))
        return -1;
    int batch = o->batch_size > 0 ? o->batch_size : 2000;
    struct pipe q;
    memset(&q, 0, sizeof q);
    pthread_mutex_init(&q.mu, NULL);
    pthread_cond_init(&q.cv, NULL);
    struct fetcher f = {.j = j, .o = o, .q = &q, .zc = zoho_conn_new(j->zc, j->stop)};
    pthread_t th;
    int rc = 0;
    if (pthread_create(&th, NULL, fetch_main, &f) != 0) {
        *err = xstrdup("cannot start the fetch thread");
        zoho_conn_free(f.zc);
        return -1;
    }
    int cap = 16, np = 0;
    struct bpage **pages = xcalloc((size_t)cap, sizeof *pages);
    /* A batch closes at batch_size records to write, or at ten times that
     * listed: a repeat sync that finds little changed commits (and reports
     * progress) a few times, not once per 2,000 records unchanged. */
    long long pending = 0, listed = 0;
    for (;;) {
        long long tw = time_mono_ms();
        struct bpage *p = pipe_pop(&q);
        j->stats.wait_ms += time_mono_ms() - tw;
        if (p) {
            /* Zoho's list pages, however they were joined; an /itemdetails
             * answer (fetch by ids) counts as a page of its own */
            j->stats.pages += o->ids ? 1 : p->zpages;
            if (np == cap) {
                cap *= 2;
                pages = xreallocarray(pages, (size_t)cap, sizeof *pages);
            }
            pages[np++] = p;
            pending += p->nrec + p->nfail;
            listed += p->nrec + p->nfail + p->nsame + p->nskip;
        }
        if (np > 0 && (p == NULL || pending >= batch || listed >= 10LL * batch)) {
            if (rc == 0 && !sync_job_stopping(j))
                rc = write_batch(j, o, pages, np, err);
            for (int i = 0; i < np; i++)
                page_free(pages[i]);
            np = 0;
            pending = listed = 0;
            if (rc != 0 || sync_job_stopping(j)) {
                pthread_mutex_lock(&q.mu);
                q.abort = true;
                pthread_cond_broadcast(&q.cv);
                pthread_mutex_unlock(&q.mu);
                if (j->stop)
                    atomic_store(j->stop, true);
            }
        }
        if (p == NULL)
            break;
    }
    pthread_join(th, NULL);
    /* Drain what the fetcher left after an abort. */
    for (struct bpage *p = q.head, *nx; p; p = nx) {
        nx = p->next;
        page_free(p);
    }
    free(pages);
    sync_job_count(j, 0, 0, 0, 0,
                   zoho_conn_take_calls(f.zc) + f.calls_left);
    if (rc == 0 && q.error) {
        if (str_eq(q.error, "cancelled"))
            *err = xasprintf("%s: cancelled", o->d->name);
        else
            *err = xasprintf("%s: %s", o->d->name, q.error);
        rc = -1;
    } else if (rc == 0 && sync_job_stopping(j)) {
        *err = xasprintf("%s: cancelled", o->d->name);
        rc = -1;
    }
    free(q.error);
    zoho_conn_free(f.zc);
    pthread_mutex_destroy(&q.mu);
    pthread_cond_destroy(&q.cv);
    return rc;
}

int sync_bulk_write_records(struct sync_job *j, const struct entity_desc *d, const cJSON *records,
                            char **err)
{
    if (sync_bulk_prepare(j->conn, d, err) != 0)
        return -1;
    struct bpage *p = xcalloc(1, sizeof *p);
    page_render(p, d, records, true, NULL);
    struct bulk_opts o = {.d = d, .no_details = true, .ids = NULL};
    int rc = write_batch(j, &o, &p, 1, err);
    page_free(p);
    return rc;
}

/* ---- small shared helpers ---- */

bool sync_cfg_bool(const cJSON *cfg, const char *key, bool def)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(cfg, key);
    if (cJSON_IsBool(v))
        return cJSON_IsTrue(v);
    return def;
}

long long sync_cfg_int(const cJSON *cfg, const char *key, long long def)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(cfg, key);
    if (cJSON_IsNumber(v))
        return (long long)v->valuedouble;
    return def;
}

bool sync_job_stopping(struct sync_job *j)
{
    if (j->stop && atomic_load(j->stop))
        return true;
    if (j->cancelled && j->cancelled(j->arg)) {
        if (j->stop)
            atomic_store(j->stop, true);
        return true;
    }
    return false;
}
