/*
 * runs.c: tds.sync_runs.  Requests and cancellation from any process; in
 * an engine, the claim (exactly one engine takes each pending run: an
 * UPDATE of the row picked with FOR UPDATE SKIP LOCKED), the job thread
 * that runs the handler, the heartbeat that keeps heartbeat_at fresh and
 * flushes the counters, and the janitor's healing (runs whose engine died
 * become interrupted and are resumed as new runs with resumed_from).
 */
#include "tds/runs.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine_internal.h"
#include "tds/alerts.h"
#include "tds/db.h"
#include "tds/log.h"

static const char *const run_status_names[RUN__COUNT] = {
    [RUN_PENDING] = "pending", [RUN_RUNNING] = "running",     [RUN_COMPLETED] = "completed",
    [RUN_FAILED] = "failed",   [RUN_CANCELLED] = "cancelled", [RUN_INTERRUPTED] = "interrupted",
    [RUN_COMPLETED_WITH_ERRORS] = "completed_with_errors",
};

const char *runs_status_name(enum run_status s)
{
    if ((int)s < 0 || s >= RUN__COUNT)
        return NULL;
    return run_status_names[s];
}

bool runs_status_parse(const char *s, enum run_status *out)
{
    for (int i = 0; i < RUN__COUNT; i++)
        if (str_eq(s, run_status_names[i])) {
            *out = (enum run_status)i;
            return true;
        }
    return false;
}

static int check_request(const char *run_type, const char *trigger, char **err)
{
    static const char *const types[] = {"full",  "incremental", "stock",
                                        "items", "webhook",     "reconcile"};
    static const char *const triggers[] = {"manual", "schedule", "webhook", "cli", "heal"};
    bool ok = false;
    for (size_t i = 0; i < TDS_ARRAY_LEN(types); i++)
        ok |= str_eq(run_type, types[i]);
    if (!ok) {
        if (err)
            *err = xasprintf("unknown run type \"%s\" (full, incremental, stock, items, webhook, "
                             "reconcile)",
                             run_type ? run_type : "");
        return -1;
    }
    ok = false;
    for (size_t i = 0; i < TDS_ARRAY_LEN(triggers); i++)
        ok |= str_eq(trigger, triggers[i]);
    if (!ok) {
        if (err)
            *err = xasprintf("unknown run trigger \"%s\"", trigger ? trigger : "");
        return -1;
    }
    return 0;
}

int runs_request_info(PGconn *c, const char *run_type, const char *entity_type,
                      const char *trigger, const char *config_json, const char *requested_by,
                      struct run_request_info *info, char **err)
{
    memset(info, 0, sizeof *info);
    if (check_request(run_type, trigger, err) != 0)
        return -1;
    const char *p[] = {run_type, str_empty(entity_type) ? NULL : entity_type, trigger,
                       config_json ? config_json : "{}", requested_by};
    /* Equal: same kind, entity and options ("source" only says who asked). */
    PGresult *r = db_exec(
        c,
        "WITH same AS (SELECT id FROM tds.sync_runs WHERE status IN ('pending', 'running')"
        "   AND run_type = $1 AND entity_type IS NOT DISTINCT FROM $2 AND $1 <> 'items'"
        "   AND config - 'source' = $4::jsonb - 'source' ORDER BY id LIMIT 1),"
        " ins AS (INSERT INTO tds.sync_runs (run_type, entity_type, trigger, config,"
        "   requested_by) SELECT $1, $2, $3, $4::jsonb, $5 WHERE NOT EXISTS (SELECT 1 FROM same)"
        "   RETURNING id)"
        " SELECT coalesce((SELECT id FROM ins), (SELECT id FROM same)),"
        " EXISTS (SELECT 1 FROM same), coalesce(tds.run_in_the_way($1, $2), 0),"
        " (SELECT count(*) FROM (SELECT pg_notify('tds_runs', id::text) FROM ins) n)",
        5, p, err);
    if (r == NULL)
        return -1;
    info->id = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    info->joined = PQgetvalue(r, 0, 1)[0] == 't';
    info->waits_for = strtoll(PQgetvalue(r, 0, 2), NULL, 10);
    if (info->waits_for == info->id)
        info->waits_for = 0;
    PQclear(r);
    return 0;
}

int runs_request(PGconn *c, const char *run_type, const char *entity_type, const char *trigger,
                 const char *config_json, const char *requested_by, long long *id, char **err)
{
    struct run_request_info info;
    int rc = runs_request_info(c, run_type, entity_type, trigger, config_json, requested_by,
                               &info, err);
    if (rc == 0 && id)
        *id = info.id;
    return rc;
}

/* Serializes the starts of runs fleet-wide; in a statement of its own, so
 * that the statements after it see every start committed before. */
static int lock_starts(PGconn *c, char **err)
{
    return db_cmd(c, "SELECT pg_advisory_xact_lock(hashtext('tds.sync_runs start'))", 0, NULL,
                  err);
}

int runs_start_here(PGconn *c, const char *run_type, const char *entity_type,
                    const char *config_json, const char *owner, const char *requested_by,
                    int dead_after_s, long long *id, long long *in_the_way, char **err)
{
    *id = 0;
    *in_the_way = 0;
    if (check_request(run_type, "cli", err) != 0)
        return -1;
    if (db_begin(c, err) != 0)
        return -1;
    if (lock_starts(c, err) != 0)
        goto fail;
    char ds[16];
    snprintf(ds, sizeof ds, "%d", dead_after_s);
    const char *p[] = {run_type, str_empty(entity_type) ? NULL : entity_type,
                       config_json ? config_json : "{}", owner, requested_by, ds};
    PGresult *r = db_exec(c,
                          "WITH w AS (SELECT tds.run_in_the_way($1, $2, $6::int) AS id),"
                          " ins AS (INSERT INTO tds.sync_runs (run_type, entity_type, trigger,"
                          "   status, config, started_at, owner, heartbeat_at, requested_by)"
                          " SELECT $1, $2, 'cli', 'running', $3::jsonb, now(), $4, now(), $5"
                          " WHERE (SELECT id FROM w) IS NULL RETURNING id)"
                          " SELECT coalesce((SELECT id FROM ins), 0), coalesce((SELECT id FROM w), 0)",
                          6, p, err);
    if (r == NULL)
        goto fail;
    *id = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    *in_the_way = strtoll(PQgetvalue(r, 0, 1), NULL, 10);
    PQclear(r);
    if (db_commit(c, err) != 0)
        return -1;
    return *in_the_way != 0 ? 1 : 0;
fail:
    db_rollback(c);
    return -1;
}

int runs_cancel(PGconn *c, long long id, const char *who, char **err)
{
    char ids[24];
    snprintf(ids, sizeof ids, "%lld", id);
    const char *p[] = {ids, str_empty(who) ? "unknown" : who};
    PGresult *r = db_exec(
        c,
        "WITH u AS (UPDATE tds.sync_runs SET cancel_requested = true,"
        "   status = CASE WHEN status = 'pending' THEN 'cancelled' ELSE status END,"
        "   finished_at = CASE WHEN status = 'pending' THEN now() ELSE finished_at END,"
        "   error = CASE WHEN status = 'pending' THEN 'cancelled by ' || $2 ELSE error END"
        " WHERE id = $1::bigint AND status IN ('pending', 'running')"
        " RETURNING id, status, run_type, entity_type),"
        " ev AS (INSERT INTO tds.events (type, run_id, entity_type, data)"
        "   SELECT 'tds.sync.failed', id, entity_type, jsonb_build_object('status', 'cancelled',"
        "   'run_type', run_type, 'by', $2::text) FROM u WHERE status = 'cancelled')"
        " SELECT status, pg_notify('tds_control', 'cancel') FROM u",
        2, p, err);
    if (r == NULL)
        return -1;
    int n = PQntuples(r);
    PQclear(r);
    if (n == 0) {
        if (err)
            *err = xasprintf("run %lld does not exist or has already finished", id);
        return -1;
    }
    log_info("run %lld: cancel requested by %s", id, p[1]);
    return 0;
}

/* --- run context --- */

long long run_ctx_id(const struct run_ctx *ctx)
{
    return ctx->id;
}
const char *run_ctx_type(const struct run_ctx *ctx)
{
    return ctx->type;
}
const char *run_ctx_entity(const struct run_ctx *ctx)
{
    return ctx->entity;
}
const char *run_ctx_trigger(const struct run_ctx *ctx)
{
    return ctx->trigger;
}
const char *run_ctx_config_json(const struct run_ctx *ctx)
{
    return ctx->config_json;
}
long long run_ctx_resumed_from(const struct run_ctx *ctx)
{
    return ctx->resumed_from;
}
const struct tds_config *run_ctx_tds_config(const struct run_ctx *ctx)
{
    return &ctx->cfg;
}
PGconn *run_ctx_conn(struct run_ctx *ctx)
{
    return ctx->conn;
}
bool run_ctx_cancelled(const struct run_ctx *ctx)
{
    return atomic_load(&ctx->cancel) || atomic_load(&ctx->e->stop);
}

void run_ctx_add(struct run_ctx *ctx, long long total, long long succeeded, long long failed,
                 long long unchanged, long long api_calls)
{
    atomic_fetch_add(&ctx->d_total, total);
    atomic_fetch_add(&ctx->d_succeeded, succeeded);
    atomic_fetch_add(&ctx->d_failed, failed);
    atomic_fetch_add(&ctx->d_unchanged, unchanged);
    atomic_fetch_add(&ctx->d_api, api_calls);
}

void run_ctx_set_expected(struct run_ctx *ctx, long long expected_total)
{
    atomic_store(&ctx->expected, expected_total);
}

int run_ctx_enqueue(struct run_ctx *ctx, const char *entity_type, const char *zoho_id,
                    enum queue_op op, const char *payload_json, int priority, long long *id,
                    char **err)
{
    pthread_rwlock_rdlock(&ctx->e->cfg_lock);
    int max = ctx->e->set.engine.retry.max_attempts;
    pthread_rwlock_unlock(&ctx->e->cfg_lock);
    struct queue_enqueue_opts o = {.run_id = ctx->id, .priority = priority, .max_attempts = max};
    return queue_enqueue(ctx->conn, entity_type, zoho_id, op, payload_json, &o, id, err);
}

int run_ctx_emit(struct run_ctx *ctx, enum event_type type, const char *entity_type,
                 const char *entity_id, const char *data_json, char **err)
{
    return events_emit(ctx->conn, type, ctx->id, entity_type, entity_id, data_json, err);
}

void run_ctx_free(struct run_ctx *ctx)
{
    if (ctx == NULL)
        return;
    free(ctx->type);
    free(ctx->entity);
    free(ctx->trigger);
    free(ctx->config_json);
    if (ctx->conn)
        PQfinish(ctx->conn);
    free(ctx);
}

/* --- in the engine --- */

int runs_claim(struct engine *e, PGconn *c, struct run_ctx **out, char **err)
{
    *out = NULL;
    char *types = engine_run_types_literal();
    pthread_rwlock_rdlock(&e->cfg_lock);
    char ds[16];
    snprintf(ds, sizeof ds, "%d", e->set.engine.dead_after_seconds);
    pthread_rwlock_unlock(&e->cfg_lock);
    const char *p[] = {e->instance, types, ds};
    /* Only a run that overlaps no running run starts (it waits otherwise). */
    if (db_begin(c, err) != 0) {
        free(types);
        return -1;
    }
    if (lock_starts(c, err) != 0) {
        db_rollback(c);
        free(types);
        return -1;
    }
    PGresult *r = db_exec(
        c,
        "WITH u AS (UPDATE tds.sync_runs SET status = 'running', owner = $1, started_at = now(),"
        "   heartbeat_at = now()"
        " WHERE id = (SELECT id FROM tds.sync_runs p WHERE status = 'pending'"
        "   AND run_type = ANY ($2::text[])"
        "   AND tds.run_in_the_way(run_type, entity_type, $3::int) IS NULL"
        "   ORDER BY id FOR UPDATE SKIP LOCKED LIMIT 1)"
        " RETURNING id, run_type, entity_type, trigger, config, resumed_from),"
        " ev AS (INSERT INTO tds.events (type, run_id, entity_type, data)"
        "   SELECT 'tds.sync.started', id, entity_type, jsonb_build_object('run_type', run_type,"
        "   'trigger', trigger, 'owner', $1::text, 'resumed_from', resumed_from) FROM u)"
        " SELECT id, run_type, coalesce(entity_type, ''), trigger, config::text,"
        " coalesce(resumed_from, 0) FROM u",
        3, p, err);
    free(types);
    if (r == NULL) {
        db_rollback(c);
        return -1;
    }
    if (db_commit(c, err) != 0) {
        PQclear(r);
        return -1;
    }
    if (PQntuples(r) == 0) {
        PQclear(r);
        return 0;
    }
    struct run_ctx *ctx = xcalloc(1, sizeof *ctx);
    ctx->e = e;
    ctx->id = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    ctx->type = xstrdup(PQgetvalue(r, 0, 1));
    ctx->entity = xstrdup(PQgetvalue(r, 0, 2));
    ctx->trigger = xstrdup(PQgetvalue(r, 0, 3));
    ctx->config_json = xstrdup(PQgetvalue(r, 0, 4));
    ctx->resumed_from = strtoll(PQgetvalue(r, 0, 5), NULL, 10);
    /* What SIGHUP reloaded reaches the runs that start after it. */
    ctx->cfg = *e->cfg;
    pthread_rwlock_rdlock(&e->cfg_lock);
    engine_settings_apply(&ctx->cfg, &e->set);
    pthread_rwlock_unlock(&e->cfg_lock);
    atomic_init(&ctx->expected, -1);
    PQclear(r);
    *out = ctx;
    return 1;
}

/*
 * The run is no longer this engine's (a stall longer than dead_after: the
 * janitor interrupted it and another engine resumed it).  Its work stops;
 * the Zoho calls it made meanwhile are still counted on the run, and said.
 * Returns 2.
 */
static int run_lost(PGconn *c, struct run_ctx *ctx, long long calls)
{
    char ids[24], cs[24];
    snprintf(ids, sizeof ids, "%lld", ctx->id);
    snprintf(cs, sizeof cs, "%lld", calls);
    const char *p[] = {ids, cs};
    char *err = NULL;
    PGresult *r = db_exec(c,
                          "UPDATE tds.sync_runs SET api_calls = api_calls + $2::bigint"
                          " WHERE id = $1::bigint RETURNING status, coalesce(owner, '?')",
                          2, p, &err);
    if (!atomic_load(&ctx->lost))
        log_warn("run %lld is no longer this engine's (now %s, owner %s): its work stops here;"
                 " %lld Zoho calls since the last heartbeat are counted on it",
                 ctx->id, r && PQntuples(r) ? PQgetvalue(r, 0, 0) : "gone",
                 r && PQntuples(r) ? PQgetvalue(r, 0, 1) : "?", calls);
    if (r == NULL) {
        log_warn("run %lld: cannot count its last calls: %s", ctx->id, err);
        free(err);
    }
    PQclear(r);
    atomic_store(&ctx->lost, true);
    atomic_store(&ctx->cancel, true);
    return 2;
}

/* Writes the counters' deltas (and heartbeat); returns cancel_requested
 * (0 or 1), 2 when the run is no longer this engine's, or -1 on error. */
static int flush_run(PGconn *c, struct run_ctx *ctx, const char *final_status, const char *error)
{
    long long d[5] = {atomic_exchange(&ctx->d_total, 0), atomic_exchange(&ctx->d_succeeded, 0),
                      atomic_exchange(&ctx->d_failed, 0), atomic_exchange(&ctx->d_unchanged, 0),
                      atomic_exchange(&ctx->d_api, 0)};
    long long exp = atomic_load(&ctx->expected);
    char s[7][24];
    snprintf(s[0], sizeof s[0], "%lld", ctx->id);
    for (int i = 0; i < 5; i++)
        snprintf(s[i + 1], sizeof s[i + 1], "%lld", d[i]);
    snprintf(s[6], sizeof s[6], "%lld", exp);
    const char *p[] = {s[0],
                       s[1],
                       s[2],
                       s[3],
                       s[4],
                       s[5],
                       exp >= 0 ? s[6] : NULL,
                       final_status,
                       error,
                       ctx->e->instance};
    char *err = NULL;
    PGresult *r = db_exec(
        c,
        "WITH u AS (UPDATE tds.sync_runs SET heartbeat_at = now(), total = total + $2::bigint,"
        "   succeeded = succeeded + $3::bigint, failed = failed + $4::bigint,"
        "   unchanged = unchanged + $5::bigint, api_calls = api_calls + $6::bigint,"
        "   expected_total = coalesce($7::bigint, expected_total),"
        "   status = CASE WHEN $8 = 'completed' AND failed + $4::bigint > 0"
        "     THEN 'completed_with_errors' ELSE coalesce($8, status) END,"
        "   finished_at = CASE WHEN $8 IS NULL THEN finished_at ELSE now() END,"
        "   error = coalesce($9, error)"
        " WHERE id = $1::bigint AND status = 'running' AND owner = $10"
        " RETURNING id, run_type, entity_type, status, cancel_requested, total, succeeded, failed,"
        "   unchanged, api_calls, extract(epoch FROM finished_at - started_at) AS seconds),"
        " ev AS (INSERT INTO tds.events (type, run_id, entity_type, data)"
        "   SELECT CASE WHEN status IN ('completed', 'completed_with_errors')"
        "   THEN 'tds.sync.completed'"
        "   ELSE 'tds.sync.failed' END, id, entity_type, jsonb_build_object('run_type', run_type,"
        "   'status', status, 'total', total, 'succeeded', succeeded, 'failed', failed,"
        "   'unchanged', unchanged, 'api_calls', api_calls, 'seconds', seconds, 'error', $9::text)"
        "   FROM u WHERE $8 IS NOT NULL)"
        " SELECT cancel_requested FROM u",
        10, p, &err);
    if (r == NULL) {
        /* Keep the deltas for the next try. */
        atomic_fetch_add(&ctx->d_total, d[0]);
        atomic_fetch_add(&ctx->d_succeeded, d[1]);
        atomic_fetch_add(&ctx->d_failed, d[2]);
        atomic_fetch_add(&ctx->d_unchanged, d[3]);
        atomic_fetch_add(&ctx->d_api, d[4]);
        log_warn("run %lld: cannot update: %s", ctx->id, err);
        free(err);
        return -1;
    }
    if (PQntuples(r) == 0) {
        PQclear(r);
        return run_lost(c, ctx, d[4]);
    }
    int cancel = PQgetvalue(r, 0, 0)[0] == 't';
    PQclear(r);
    return cancel;
}

void runs_heartbeat(struct engine *e, PGconn *c)
{
    pthread_mutex_lock(&e->mu);
    int n = 0;
    for (struct run_ctx *r = e->runs; r; r = r->next)
        n++;
    struct run_ctx **list = xcalloc((size_t)n + 1, sizeof *list);
    n = 0;
    for (struct run_ctx *r = e->runs; r; r = r->next)
        if (!atomic_load(&r->finished))
            list[n++] = r;
    /* The job threads cannot free their ctx while we hold it: they are
     * reaped only by the control thread, which is us. */
    pthread_mutex_unlock(&e->mu);
    for (int i = 0; i < n; i++) {
        if (flush_run(c, list[i], NULL, NULL) == 1 && !atomic_load(&list[i]->user_cancel)) {
            log_info("run %lld: cancellation requested", list[i]->id);
            atomic_store(&list[i]->user_cancel, true);
            atomic_store(&list[i]->cancel, true);
        }
    }
    free(list);
}

void *runs_job_main(void *arg)
{
    struct run_ctx *ctx = arg;
    struct engine *e = ctx->e;
    log_set_context("%s run %lld", e->instance, ctx->id);
    ctx->conn = engine_connect(e);
    void *harg = NULL;
    run_handler_fn fn = engine_find_run_handler(ctx->type, &harg);
    char *err = NULL;
    int rc = -1;
    if (ctx->conn == NULL) {
        err = xstrdup("engine stopped before the run could connect");
    } else if (fn == NULL) {
        err = xasprintf("no handler for run type %s", ctx->type);
    } else {
        log_info("run %lld (%s%s%s) started", ctx->id, ctx->type, ctx->entity[0] ? " " : "",
                 ctx->entity);
        rc = fn(ctx, harg, &err);
    }
    const char *status;
    if (rc == 0 && !atomic_load(&ctx->user_cancel))
        status = "completed";
    else if (atomic_load(&ctx->user_cancel))
        status = "cancelled";
    else if (atomic_load(&e->stop))
        status = "interrupted";
    else if (ctx->conn != NULL && PQstatus(ctx->conn) != CONNECTION_OK)
        /* The database went away under the run (a restart, a failover):
         * nothing was wrong with the work itself, so the janitor resumes it
         * once the database is back, as for a run whose engine died. */
        status = "interrupted";
    else
        status = "failed";
    if (strcmp(status, "cancelled") == 0 && err == NULL)
        err = xstrdup("cancelled");
    if (strcmp(status, "interrupted") == 0 && err == NULL)
        err = xasprintf("engine %s stopped", e->instance);
    if (strcmp(status, "completed") == 0) {
        free(err);
        err = NULL;
    }
    if (atomic_load(&ctx->lost)) {
        free(err);
        err = xstrdup("taken over by another engine");
        status = "lost";
    }
    /* The outcome must reach the database: retry across a reconnect. */
    for (int tries = 0; ctx->conn != NULL && tries < 5 && !atomic_load(&ctx->lost); tries++) {
        if (flush_run(ctx->conn, ctx, status, err) >= 0)
            break;
        if (PQstatus(ctx->conn) != CONNECTION_OK) {
            PQfinish(ctx->conn);
            ctx->conn = db_connect_retry(&e->dbcfg, &e->stop_sig);
        }
    }
    if (atomic_load(&ctx->lost) && ctx->conn != NULL)
        (void)run_lost(ctx->conn, ctx, atomic_exchange(&ctx->d_api, 0));
    if (strcmp(status, "completed") == 0)
        log_info("run %lld completed", ctx->id);
    else
        log_warn("run %lld %s: %s", ctx->id, status, err ? err : "");
    free(err);
    atomic_fetch_sub(&e->runs_active, 1);
    atomic_store(&ctx->finished, true);
    engine_wake_leader(e);
    log_set_context(NULL);
    return NULL;
}

/* Raises the critical alert of a run that is not resumed again. */
static void alert_poison_run(PGconn *c, PGresult *r, int row, int max_resumes)
{
    const char *id = PQgetvalue(r, row, 0), *type = PQgetvalue(r, row, 1);
    const char *entity = PQgetisnull(r, row, 2) ? NULL : PQgetvalue(r, row, 2);
    const char *crashes = PQgetvalue(r, row, 3), *last = PQgetvalue(r, row, 4);
    char *key = xasprintf("run_poison:%s", id);
    char *title = xasprintf("run %s (%s%s%s) crashed %s engines: not resumed again", id, type,
                            entity ? " " : "", entity ? entity : "", crashes);
    char *msg = xasprintf("each engine that ran it stopped heartbeating (engine.max_resumes is "
                          "%d); the last crash: %s, at %s. Look for a backtrace in that "
                          "engine's log, then start the run again by hand",
                          max_resumes, last, PQgetvalue(r, row, 5));
    struct alert_spec a = {.type = "run_poison", .severity = ALERT_CRITICAL, .title = title,
                           .message = msg, .entity_type = entity, .affected = 1,
                           .dedup_key = key};
    char *err = NULL;
    if (alerts_raise(c, &a, NULL, NULL, &err) != 0) {
        log_warn("janitor: cannot raise the alert for run %s: %s", id, err);
        free(err);
    }
    log_error("%s; the last crash: %s", title, last);
    free(key);
    free(title);
    free(msg);
}

int runs_heal(PGconn *c, int dead_after_s, int max_resumes, struct runs_heal_result *out,
              char **err)
{
    memset(out, 0, sizeof *out);
    char ds[16], mr[16];
    snprintf(ds, sizeof ds, "%d", dead_after_s);
    snprintf(mr, sizeof mr, "%d", max_resumes);
    const char *p[] = {ds};
    PGresult *r = db_exec(
        c,
        "WITH i AS (UPDATE tds.sync_runs SET status = 'interrupted', finished_at = now(),"
        "   crashed = true,"
        "   error = 'engine ' || coalesce(owner, '?') || ' stopped sending heartbeats'"
        " WHERE status = 'running' AND coalesce(heartbeat_at, started_at)"
        "   < now() - make_interval(secs => $1::int)"
        " RETURNING id, run_type, entity_type, owner),"
        " ev AS (INSERT INTO tds.events (type, run_id, entity_type, data)"
        "   SELECT 'tds.sync.failed', id, entity_type, jsonb_build_object('run_type', run_type,"
        "   'status', 'interrupted', 'owner', owner) FROM i)"
        " SELECT count(*) FROM i",
        1, p, err);
    if (r == NULL)
        return -1;
    out->interrupted = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    /* A run whose chain has crashed engines more than max_resumes times is
     * poison: fail it rather than hand it to the next engine. */
    const char *pm[] = {mr};
    r = db_exec(c,
                "WITH g AS (UPDATE tds.sync_runs SET resumed_at = now(), status = 'failed',"
                "   error = 'not resumed: crashed ' || (crashes + 1) || ' engines"
                " (engine.max_resumes ' || $1::text || '); last: ' || coalesce(error, '?')"
                " WHERE id IN (SELECT id FROM tds.sync_runs WHERE status = 'interrupted'"
                "   AND resumed_at IS NULL AND crashed AND crashes + 1 > $1::int"
                "   ORDER BY id LIMIT 100 FOR UPDATE SKIP LOCKED)"
                " RETURNING id, run_type, entity_type, crashes + 1 AS n,"
                "   'engine ' || coalesce(owner, '?') || ' stopped sending heartbeats' AS last,"
                "   coalesce(heartbeat_at, started_at, finished_at) AS at),"
                " ev AS (INSERT INTO tds.events (type, run_id, entity_type, data)"
                "   SELECT 'tds.sync.failed', id, entity_type, jsonb_build_object('run_type',"
                "   run_type, 'status', 'failed', 'crashes', n, 'not_resumed', true) FROM g)"
                " SELECT id, run_type, entity_type, n, last,"
                "   to_char(at, 'YYYY-MM-DD HH24:MI:SS TZ') FROM g ORDER BY id",
                1, pm, err);
    if (r == NULL)
        return -1;
    out->given_up = PQntuples(r);
    for (int i = 0; i < PQntuples(r); i++)
        alert_poison_run(c, r, i, max_resumes);
    PQclear(r);
    /* The count is in the new run before any engine can claim it. */
    r = db_exec(c,
                "WITH r AS (UPDATE tds.sync_runs SET resumed_at = now()"
                " WHERE id IN (SELECT id FROM tds.sync_runs WHERE status = 'interrupted'"
                "   AND resumed_at IS NULL ORDER BY id LIMIT 100 FOR UPDATE SKIP LOCKED)"
                " AND resumed_at IS NULL RETURNING *),"
                " ins AS (INSERT INTO tds.sync_runs (run_type, entity_type, trigger, config,"
                "   requested_by, resumed_from, crashes)"
                " SELECT run_type, entity_type, 'heal', config, 'janitor', id,"
                "   crashes + crashed::int FROM r RETURNING id)"
                " SELECT count(*) FROM ins",
                0, NULL, err);
    if (r == NULL)
        return -1;
    out->resumed = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    if (out->resumed > 0)
        PQclear(PQexec(c, "NOTIFY tds_runs"));
    return 0;
}
