/*
 * sync_entity.c: full and incremental sync of every entity of the
 * descriptor table (run types "full" and "incremental"; entity NULL or ""
 * means all of them, in table order).
 *
 * Full: list everything and merge; nothing is marked deleted (that is
 * reconciliation's job).  Incremental: where the list can filter by
 * last_modified_time, resume from the cursor in tds.sync_state with the
 * pager's re-anchoring, the cursor advancing in the same transaction as the
 * batch it covers; elsewhere (or without a cursor yet) a full compare, which
 * writes only what changed.  After a full listing of such an entity the
 * cursor is set to the listing's start minus a safety margin for clocks.
 */
#include <stdlib.h>
#include <string.h>

#include "sync_internal.h"
#include "tds/db.h"
#include "tds/log.h"

#define CURSOR_MARGIN_S "300"

struct cursor {
    char *time;     /* Zoho form, or NULL */
    char **ids;
    size_t n;
};

static void cursor_free(struct cursor *c)
{
    free(c->time);
    for (size_t i = 0; i < c->n; i++)
        free(c->ids[i]);
    free(c->ids);
    memset(c, 0, sizeof *c);
}

static int cursor_load(PGconn *conn, const struct entity_desc *d, struct cursor *c, char **err)
{
    memset(c, 0, sizeof *c);
    const char *p[1] = {d->name};
    PGresult *r = db_exec(conn,
                          "SELECT to_char(cursor_time AT TIME ZONE 'UTC',"
                          " 'YYYY-MM-DD\"T\"HH24:MI:SS\"+0000\"'), cursor_ids::text"
                          " FROM tds.sync_state WHERE entity_type = $1 AND cursor_time IS NOT NULL",
                          1, p, err);
    if (r == NULL)
        return -1;
    if (PQntuples(r) == 1) {
        c->time = xstrdup(PQgetvalue(r, 0, 0));
        cJSON *a = cJSON_Parse(PQgetvalue(r, 0, 1));
        if (cJSON_IsArray(a)) {
            c->ids = xcalloc((size_t)cJSON_GetArraySize(a) + 1, sizeof *c->ids);
            const cJSON *v;
            cJSON_ArrayForEach(v, a) if (cJSON_IsString(v)) c->ids[c->n++] = xstrdup(v->valuestring);
        }
        cJSON_Delete(a);
    }
    PQclear(r);
    return 0;
}

/* Records the end of a pass: timestamps, and after a full listing of a
 * changed-since entity, a cursor at the start minus the margin. */
static int state_done(struct sync_job *j, const struct entity_desc *d, bool incremental,
                      bool full_listing, const char *started, char **err)
{
    char run[32];
    snprintf(run, sizeof run, "%lld", j->run_id);
    const char *p[5] = {d->name, incremental ? "t" : "f",
                        full_listing && d->changed_since ? "t" : "f", started,
                        j->run_id ? run : NULL};
    return db_cmd(
        j->conn,
        "INSERT INTO tds.sync_state AS s (entity_type, cursor_time, cursor_ids, last_full_at,"
        " last_incremental_at, last_success_at, last_run_id, updated_at)"
        " VALUES ($1, CASE WHEN $3::boolean THEN $4::timestamptz - interval '" CURSOR_MARGIN_S
        " seconds' END, '[]', CASE WHEN NOT $2::boolean THEN now() END,"
        " CASE WHEN $2::boolean THEN now() END, now(), $5::bigint, now())"
        " ON CONFLICT (entity_type) DO UPDATE SET"
        " cursor_time = CASE WHEN EXCLUDED.cursor_time IS NOT NULL AND (s.cursor_time IS NULL"
        "   OR EXCLUDED.cursor_time > s.cursor_time) THEN EXCLUDED.cursor_time ELSE s.cursor_time END,"
        " cursor_ids = CASE WHEN EXCLUDED.cursor_time IS NOT NULL AND (s.cursor_time IS NULL"
        "   OR EXCLUDED.cursor_time > s.cursor_time) THEN '[]'::jsonb ELSE s.cursor_ids END,"
        " last_full_at = coalesce(EXCLUDED.last_full_at, s.last_full_at),"
        " last_incremental_at = coalesce(EXCLUDED.last_incremental_at, s.last_incremental_at),"
        " last_success_at = now(), last_run_id = coalesce(EXCLUDED.last_run_id, s.last_run_id),"
        " updated_at = now()",
        5, p, err);
}

static int sync_one(struct sync_job *j, const struct entity_desc *d, bool incremental,
                    int batch_size, char **err)
{
    char *started = NULL;
    PGresult *r = db_exec(j->conn, "SELECT now()::text", 0, NULL, err);
    if (r == NULL)
        return -1;
    started = xstrdup(PQgetvalue(r, 0, 0));
    PQclear(r);
    struct cursor c = {0};
    if (incremental && d->changed_since && cursor_load(j->conn, d, &c, err) != 0) {
        free(started);
        return -1;
    }
    struct bulk_opts o = {
        .d = d,
        .filter_by = entity_all_filter(d), /* inactive records too */
        .batch_size = batch_size,
        .all_details = !incremental && str_eq(d->name, "items"),
    };
    bool full_listing = true;
    if (c.time) {
        o.changed_since = c.time;
        o.seen_ids = (const char *const *)c.ids;
        o.n_seen = c.n;
        o.save_cursor = true;
        full_listing = false;
    }
    log_info("run %lld: %s %s%s", j->run_id, incremental ? "incremental" : "full", d->name,
             c.time ? " (changed since the cursor)" : (incremental ? " (full compare)" : ""));
    int rc = sync_bulk_run(j, &o, err);
    if (rc == 0)
        rc = state_done(j, d, incremental, full_listing, started, err);
    cursor_free(&c);
    free(started);
    return rc;
}

int sync_entity_run(struct sync_job *j, bool incremental, char **err)
{
    cJSON *cfg = cJSON_Parse(str_empty(j->config_json) ? "{}" : j->config_json);
    int batch = (int)sync_cfg_int(cfg, "batch_size", 2000);
    cJSON_Delete(cfg);
    if (batch < 1 || batch > 100000) {
        *err = xasprintf("batch_size %d is out of range (1..100000)", batch);
        return -1;
    }
    if (!str_empty(j->entity)) {
        const struct entity_desc *d = entity_find(j->entity);
        if (d == NULL || !str_eq(d->name, j->entity)) {
            *err = xasprintf("unknown entity \"%s\"", j->entity);
            return -1;
        }
        return sync_one(j, d, incremental, batch, err);
    }
    size_t n;
    const struct entity_desc *all = entity_all(&n);
    for (size_t i = 0; i < n; i++) {
        if (sync_job_stopping(j)) {
            *err = xstrdup("cancelled");
            return -1;
        }
        if (sync_one(j, &all[i], incremental, batch, err) != 0)
            return -1;
    }
    return 0;
}
