/*
 * reconcile.c: reconciliation (run type "reconcile"; the original's
 * "statistics comparison").  Per entity: list every record in Zoho and
 * compare with the local table.
 *   missing: in Zoho, not here (or marked deleted here)  -> written now
 *   stale:   here, but an older or different copy         -> written now
 *   extra:   here, not in the listing                     -> verified in
 *            batches: items through /itemdetails (100 ids a call); other
 *            entities by a GET each while they are fewer than the entity's
 *            listing pages, else by listing the entity once more (200 a
 *            call).  Gone -> marked deleted (deleted_at, never erased);
 *            still there -> written (the listing missed it while records
 *            shifted under it).
 * The counts go to the run's missing/extra/stale columns, and an alert
 * (type "drift") opens when they pass alerts.drift_percent of the entity.
 * A run makes at most reconcile.max_calls Zoho calls: reaching the cap
 * stops it, failed, with a message naming the cap and the entity.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sync_internal.h"
#include "tds/alerts.h"
#include "tds/apply.h"
#include "tds/db.h"
#include "tds/log.h"

#define LIST_PAGE 200 /* records per listing page */

static int mark_deleted(struct sync_job *j, const struct entity_desc *d, char *const *ids,
                        size_t n, long long *count, char **err)
{
    struct strbuf arr = {0};
    strbuf_putc(&arr, '{');
    for (size_t i = 0; i < n; i++) {
        if (i)
            strbuf_putc(&arr, ',');
        strbuf_puts(&arr, ids[i]); /* digits only */
    }
    strbuf_putc(&arr, '}');
    char run[32];
    snprintf(run, sizeof run, "%lld", j->run_id);
    const char *p[3] = {arr.buf, d->name, j->run_id ? run : NULL};
    char *q = xasprintf("WITH del AS (UPDATE %s t SET deleted_at = now() WHERE t.%s ="
                        " ANY ($1::text[]) AND t.deleted_at IS NULL RETURNING t.%s AS zid),"
                        " ev AS (INSERT INTO tds.events (type, run_id, entity_type, entity_id, data)"
                        " SELECT 'tds.entity.delete', $3::bigint, $2, zid,"
                        " jsonb_build_object('source', 'reconcile') FROM del)"
                        " SELECT count(*) FROM del",
                        d->table, d->id_field, d->id_field);
    PGresult *r = db_exec(j->conn, q, 3, p, err);
    free(q);
    strbuf_free(&arr);
    if (r == NULL)
        return -1;
    *count += strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    return 0;
}

/* Verifies extras of items through /itemdetails.  Writes the found, marks the gone. */
static int verify_items(struct sync_job *j, const struct entity_desc *d, struct zoho_conn *zc,
                        char **ids, size_t n, long long *gone, char **err)
{
    for (size_t at = 0; at < n && !sync_job_stopping(j);) {
        size_t k = n - at > ZOHO_ITEMDETAILS_MAX ? ZOHO_ITEMDETAILS_MAX : n - at;
        cJSON *items = NULL;
        struct zoho_error ze = {0};
        int rc = -1;
        for (int tries = 0; tries < 4; tries++) {
            rc = zoho_get_itemdetails(zc, (const char *const *)ids + at, k, &items, &ze);
            if (rc == 0 || !sync_zoho_again(&ze) || sync_job_stopping(j))
                break;
            zoho_error_clear(&ze);
        }
        sync_job_count(j, 0, 0, 0, 0, zoho_conn_take_calls(zc));
        if (rc != 0) {
            char *m = zoho_error_format(&ze);
            *err = xasprintf("verifying %s: %s", d->name, m);
            free(m);
            zoho_error_clear(&ze);
            return -1;
        }
        char **absent = xcalloc(k, sizeof *absent);
        size_t na = 0;
        for (size_t i = at; i < at + k; i++) {
            bool found = false;
            const cJSON *rec;
            cJSON_ArrayForEach(rec, items) {
                const cJSON *idv = cJSON_GetObjectItemCaseSensitive(rec, d->id_field);
                if (cJSON_IsString(idv) && str_eq(idv->valuestring, ids[i]))
                    found = true;
            }
            if (!found)
                absent[na++] = ids[i];
        }
        int wr = 0;
        if (cJSON_GetArraySize(items) > 0)
            wr = sync_bulk_write_records(j, d, items, err);
        cJSON_Delete(items);
        if (wr == 0 && na)
            wr = mark_deleted(j, d, absent, na, gone, err);
        free(absent);
        if (wr != 0)
            return -1;
        at += k;
    }
    return 0;
}

/* A GET each: for a few extras (fewer than the entity's listing pages). */
static int verify_one_by_one(struct sync_job *j, const struct entity_desc *d,
                             struct zoho_conn *zc, char **ids, size_t n, long long *gone,
                             char **err)
{
    for (size_t i = 0; i < n; i++) {
        if (sync_job_stopping(j))
            return 0;
        cJSON *rec = NULL;
        struct zoho_error ze = {0};
        int rc = zoho_get_record(zc, d, ids[i], &rec, &ze);
        sync_job_count(j, 0, 0, 0, 0, zoho_conn_take_calls(zc));
        if (rc != 0 && ze.kind == ZOHO_ERR_NOT_FOUND) {
            zoho_error_clear(&ze);
            if (mark_deleted(j, d, &ids[i], 1, gone, err) != 0)
                return -1;
            continue;
        }
        if (rc != 0) {
            char *m = zoho_error_format(&ze);
            *err = xasprintf("verifying %s %s: %s", d->name, ids[i], m);
            free(m);
            zoho_error_clear(&ze);
            return -1;
        }
        cJSON *arr = cJSON_CreateArray();
        cJSON_AddItemToArray(arr, rec);
        int wr = sync_bulk_write_records(j, d, arr, err);
        cJSON_Delete(arr);
        if (wr != 0)
            return -1;
    }
    return 0;
}

static int cmp_id(const void *key, const void *elem)
{
    return strcmp(key, *(char *const *)elem);
}

/* Lists the entity once more: an extra seen now is written, one absent
 * from both listings is gone.  ids are in byte order (COLLATE "C"). */
static int verify_by_listing(struct sync_job *j, const struct entity_desc *d,
                             struct zoho_conn *zc, char **ids, size_t n, long long *gone,
                             char **err)
{
    bool *seen = xcalloc(n, sizeof *seen);
    struct zoho_pager_opts po = {.filter_by = entity_all_filter(d)};
    struct zoho_pager *pg = zoho_pager_new(zc, d, &po);
    int rc = 0;
    for (;;) {
        if (sync_job_stopping(j))
            break;
        cJSON *recs = NULL;
        struct zoho_error ze = {0};
        int got = zoho_pager_next(pg, &recs, NULL, &ze);
        sync_job_count(j, 0, 0, 0, 0, zoho_conn_take_calls(zc));
        if (got < 0) {
            char *m = zoho_error_format(&ze);
            *err = xasprintf("verifying %s (listing again): %s", d->name, m);
            free(m);
            zoho_error_clear(&ze);
            rc = -1;
            break;
        }
        if (got == 0)
            break;
        cJSON *found = cJSON_CreateArray();
        for (cJSON *rec = recs->child, *next; rec != NULL; rec = next) {
            next = rec->next;
            const cJSON *idv = cJSON_GetObjectItemCaseSensitive(rec, d->id_field);
            if (!cJSON_IsString(idv))
                continue;
            char **hit = bsearch(idv->valuestring, ids, n, sizeof *ids, cmp_id);
            if (hit == NULL || seen[hit - ids])
                continue;
            seen[hit - ids] = true;
            cJSON_AddItemToArray(found, cJSON_DetachItemViaPointer(recs, rec));
        }
        cJSON_Delete(recs);
        if (cJSON_GetArraySize(found) > 0)
            rc = sync_bulk_write_records(j, d, found, err);
        cJSON_Delete(found);
        if (rc != 0)
            break;
    }
    zoho_pager_free(pg);
    if (rc == 0 && !sync_job_stopping(j)) {
        char **absent = xcalloc(n, sizeof *absent);
        size_t na = 0;
        for (size_t i = 0; i < n; i++)
            if (!seen[i])
                absent[na++] = ids[i];
        for (size_t at = 0; rc == 0 && at < na; at += 1000)
            rc = mark_deleted(j, d, absent + at, na - at > 1000 ? 1000 : na - at, gone, err);
        free(absent);
    }
    free(seen);
    return rc;
}

static int reconcile_one(struct sync_job *j, const struct entity_desc *d, char **err)
{
    struct sync_stats before = j->stats;
    /* Every record whatever its status: where Zoho's default listing hides
     * inactive ones, they would look gone. */
    struct bulk_opts o = {.d = d, .collect_seen = true, .batch_size = 2000,
                          .filter_by = entity_all_filter(d)};
    log_info("run %lld: reconciling %s", j->run_id, d->name);
    if (sync_bulk_run(j, &o, err) != 0)
        return -1;
    long long listed = j->stats.total - before.total;
    long long missing = j->stats.created - before.created;
    long long stale = (j->stats.succeeded - before.succeeded) - missing;

    /* Extras: live here, absent from the listing. */
    char *q = xasprintf("SELECT t.%s FROM %s t WHERE t.deleted_at IS NULL AND NOT EXISTS"
                        " (SELECT 1 FROM pg_temp.tds_seen s WHERE s.zid = t.%s)"
                        " ORDER BY t.%s COLLATE \"C\"",
                        d->id_field, d->table, d->id_field, d->id_field);
    PGresult *r = db_exec(j->conn, q, 0, NULL, err);
    free(q);
    if (r == NULL)
        return -1;
    size_t n = (size_t)PQntuples(r);
    char **ids = xcalloc(n + 1, sizeof *ids);
    size_t nv = 0;
    for (size_t i = 0; i < n; i++) {
        const char *id = PQgetvalue(r, (int)i, 0);
        if (str_is_digits(id))
            ids[nv++] = xstrdup(id);
    }
    PQclear(r);
    long long gone = 0;
    struct zoho_conn *zc = zoho_conn_new(j->zc, j->stop);
    int rc = 0;
    long long pages = listed / LIST_PAGE + 1;
    if (nv == 0)
        ; /* nothing to verify */
    else if (str_eq(d->name, "items"))
        rc = verify_items(j, d, zc, ids, nv, &gone, err);
    else if ((long long)nv < pages)
        rc = verify_one_by_one(j, d, zc, ids, nv, &gone, err);
    else
        rc = verify_by_listing(j, d, zc, ids, nv, &gone, err);
    zoho_conn_free(zc);
    for (size_t i = 0; i < nv; i++)
        free(ids[i]);
    free(ids);
    if (rc != 0)
        return -1;
    long long extra = (long long)nv;
    j->stats.missing += missing;
    j->stats.stale += stale;
    j->stats.extra += extra;

    long long drift = missing + stale + extra;
    long long base = listed > 0 ? listed : 1;
    int pct = j->cfg ? j->cfg->alerts.drift_percent : 1;
    char *key = xasprintf("drift:%s", d->name);
    if (drift * 100 > (long long)pct * base && drift > 0) {
        char *title = xasprintf("%s drifted from Zoho: %lld of %lld records", d->name, drift,
                                listed);
        char *msg = xasprintf("missing %lld, extra %lld, stale %lld (threshold %d%%); repaired by"
                              " run %lld",
                              missing, extra, stale, pct, j->run_id);
        struct alert_spec a = {.type = "drift", .severity = ALERT_WARNING, .title = title,
                               .message = msg, .entity_type = d->name, .affected = drift,
                               .dedup_key = key};
        rc = alerts_raise(j->conn, &a, NULL, NULL, err);
        free(title);
        free(msg);
    } else {
        rc = alerts_resolve(j->conn, key, NULL, err);
    }
    free(key);
    log_info("run %lld: %s: %lld listed, missing %lld, extra %lld (gone %lld), stale %lld",
             j->run_id, d->name, listed, missing, extra, gone, stale);
    return rc;
}

/* The cap reached: the run's error says so, whatever stopped it. */
static int cap_stop(struct sync_job *j, const char *entity, char **err)
{
    free(*err);
    *err = xasprintf("stopped at %s: the run reached its cap of %lld Zoho calls"
                     " (reconcile.max_calls); what it repaired stays repaired",
                     entity, j->call_cap);
    return -1;
}

int reconcile_run(struct sync_job *j, char **err)
{
    if (j->cfg != NULL && j->call_cap == 0)
        j->call_cap = j->cfg->reconcile.max_calls;
    if (!str_empty(j->entity)) {
        const struct entity_desc *d = entity_find(j->entity);
        if (d == NULL || !str_eq(d->name, j->entity)) {
            *err = xasprintf("unknown entity \"%s\"", j->entity);
            return -1;
        }
        int rc = reconcile_one(j, d, err);
        return j->cap_reached ? cap_stop(j, d->name, err) : rc;
    }
    size_t n;
    const struct entity_desc *all = entity_all(&n);
    for (size_t i = 0; i < n; i++) {
        if (j->cap_reached)
            return cap_stop(j, all[i].name, err);
        if (sync_job_stopping(j)) {
            *err = xstrdup("cancelled");
            return -1;
        }
        if (reconcile_one(j, &all[i], err) != 0)
            return j->cap_reached ? cap_stop(j, all[i].name, err) : -1;
    }
    return j->cap_reached ? cap_stop(j, all[n - 1].name, err) : 0;
}
