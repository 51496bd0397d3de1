/*
 * queue.c: tds.sync_queue from any process: enqueue (with folding), the
 * console's actions (priority, retry now, move to the DLQ) and the
 * janitor's (reclaim expired leases, prune).  The workers' claim and
 * completion live in worker.c; the failure bookkeeping they share with the
 * console is queue_fail_item here.
 */
#include "tds/entity.h"
#include "tds/metrics.h"
#include "tds/queue.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "engine_internal.h"
#include "tds/db.h"
#include "tds/log.h"

static const char *const status_names[QS__COUNT] = {
    [QS_PENDING] = "pending", [QS_PROCESSING] = "processing",
    [QS_RETRY] = "retry",     [QS_COMPLETED] = "completed",
    [QS_DEAD] = "dead",
};

const char *queue_status_name(enum queue_status s)
{
    if ((int)s < 0 || s >= QS__COUNT)
        return NULL;
    return status_names[s];
}

const char *queue_op_name(enum queue_op op)
{
    return op == QOP_DELETE ? "delete" : "upsert";
}

bool queue_op_parse(const char *s, enum queue_op *op)
{
    if (str_eq(s, "upsert")) {
        *op = QOP_UPSERT;
        return true;
    }
    if (str_eq(s, "delete")) {
        *op = QOP_DELETE;
        return true;
    }
    return false;
}

static void fmt_ll(char *buf, size_t n, long long v)
{
    snprintf(buf, n, "%lld", v);
}

int queue_enqueue(PGconn *c, const char *entity_type, const char *zoho_id, enum queue_op op,
                  const char *payload_json, const struct queue_enqueue_opts *opts, long long *id,
                  char **err)
{
    if (str_empty(entity_type) || str_empty(zoho_id)) {
        if (err)
            *err = xstrdup("queue: an item needs an entity type and a Zoho id");
        return -1;
    }
    /* One spelling per entity ("item" and "items" are the same record's
     * queue), so a new change always folds into a pending one. */
    const struct entity_desc *d = entity_find(entity_type);
    if (d != NULL)
        entity_type = d->name;
    int prio = opts && opts->priority ? opts->priority : 5;
    if (prio < 1 || prio > 10) {
        if (err)
            *err = xasprintf("queue: priority %d is out of range (1-10)", prio);
        return -1;
    }
    char ps[8], ma[16], rid[24], iid[24];
    snprintf(ps, sizeof ps, "%d", prio);
    snprintf(ma, sizeof ma, "%d", opts ? opts->max_attempts : 0);
    fmt_ll(rid, sizeof rid, opts ? opts->run_id : 0);
    fmt_ll(iid, sizeof iid, opts ? opts->inbox_id : 0);
    bool big = payload_json != NULL && strlen(payload_json) > QUEUE_INLINE_MAX &&
               !queue_payload_is_refetch(payload_json);
    const char *p[] = {entity_type,
                       zoho_id,
                       queue_op_name(op),
                       big ? NULL : payload_json,
                       ps,
                       opts && opts->max_attempts > 0 ? ma : NULL,
                       opts && opts->run_id > 0 ? rid : NULL,
                       opts && opts->inbox_id > 0 ? iid : NULL,
                       big ? payload_json : NULL};
    /* $4: a payload kept in the row, $9: one kept beside it.  A fold:
     * the newest wins, "none" included; writing the row's clears the
     * other place (trigger sync_queue_payload_in_row, 0011), pi and pd
     * the rest. */
    PGresult *r = db_exec(
        c,
        "WITH ins AS (INSERT INTO tds.sync_queue (entity_type, zoho_id, operation, payload,"
        "   priority, max_attempts, run_id, inbox_id)"
        " VALUES ($1, $2, $3, $4::jsonb, $5::smallint, coalesce($6::int, 5), $7::bigint, "
        "$8::bigint)"
        " ON CONFLICT (entity_type, zoho_id) WHERE status = 'pending' DO UPDATE SET"
        "   payload = EXCLUDED.payload, operation = EXCLUDED.operation,"
        "   priority = greatest(tds.sync_queue.priority, EXCLUDED.priority),"
        "   run_id = coalesce(EXCLUDED.run_id, tds.sync_queue.run_id),"
        "   inbox_id = coalesce(EXCLUDED.inbox_id, tds.sync_queue.inbox_id), updated_at = now()"
        " RETURNING id),"
        " pi AS (INSERT INTO tds.queue_payloads (queue_id, payload) SELECT id, $9::jsonb FROM ins"
        "   WHERE $9::jsonb IS NOT NULL"
        "   ON CONFLICT (queue_id) DO UPDATE SET payload = EXCLUDED.payload),"
        " pd AS (DELETE FROM tds.queue_payloads WHERE $9::jsonb IS NULL AND $4::jsonb IS NULL"
        "   AND queue_id = (SELECT id FROM ins))"
        " SELECT id, pg_notify('tds_queue', '') FROM ins",
        9, p, err);
    if (r == NULL)
        return -1;
    if (id)
        *id = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    return 0;
}

bool queue_payload_is_refetch(const char *payload_json)
{
    if (payload_json == NULL)
        return true;
    cJSON *pl = cJSON_Parse(payload_json);
    bool yes = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(pl, "refetch"));
    cJSON_Delete(pl);
    return yes;
}

/* Runs an UPDATE of one item; -1 with msg when it touched nothing. */
static int update_one(PGconn *c, const char *sql, int np, const char *const *p, const char *msg,
                      char **err)
{
    PGresult *r = db_exec(c, sql, np, p, err);
    if (r == NULL)
        return -1;
    int n = atoi(PQcmdTuples(r));
    PQclear(r);
    if (n == 0) {
        if (err)
            *err = xasprintf("queue item %s %s", p[0], msg);
        return -1;
    }
    return 0;
}

int queue_set_priority(PGconn *c, long long id, int priority, char **err)
{
    if (priority < 1 || priority > 10) {
        if (err)
            *err = xasprintf("queue: priority %d is out of range (1-10)", priority);
        return -1;
    }
    char ids[24], ps[8];
    fmt_ll(ids, sizeof ids, id);
    snprintf(ps, sizeof ps, "%d", priority);
    const char *p[] = {ids, ps};
    return update_one(c,
                      "UPDATE tds.sync_queue SET priority = $2::smallint, updated_at = now()"
                      " WHERE id = $1::bigint AND status IN ('pending', 'retry')",
                      2, p, "does not exist or is not waiting", err);
}

int queue_retry_now(PGconn *c, long long id, char **err)
{
    char ids[24];
    fmt_ll(ids, sizeof ids, id);
    const char *p[] = {ids};
    return update_one(
        c,
        "WITH u AS (UPDATE tds.sync_queue SET next_attempt_at = now(), updated_at = now()"
        " WHERE id = $1::bigint AND status = 'retry' RETURNING id)"
        " SELECT pg_notify('tds_queue', '') FROM u",
        1, p, "does not exist or is not waiting for a retry", err);
}

/*
 * The dead-lettering statement: the item leaves the queue as 'dead', its
 * history (plus this failure) and its payload (in its row or in
 * tds.queue_payloads, 0011) go to tds.dead_letter, and the event
 * tds.deadletter.added is written.  $1 id, $2 reason, $3 attempts to add
 * (1 for a failed attempt, 0 for a manual move), $4 lease holder or NULL.
 */
#define DLQ_MOVE_SQL(WHERE)                                                                        \
    "WITH q AS (UPDATE tds.sync_queue SET status = 'dead', attempts = attempts + $3::int,"         \
    "   last_error = $2, locked_by = NULL, locked_until = NULL, updated_at = now(),"               \
    "   error_history = error_history || jsonb_build_array(jsonb_build_object("                    \
    "     'at', now(), 'attempt', attempts + $3::int, 'error', $2::text))"                         \
    " WHERE id = $1::bigint AND " WHERE " RETURNING *),"                                           \
    " d AS (INSERT INTO tds.dead_letter (queue_id, run_id, entity_type, zoho_id, operation,"       \
    "   payload, failure_reason, attempts, error_history, auto_retried_at)"                        \
    " SELECT q.id, run_id, entity_type, zoho_id, operation, coalesce(q.payload, p.payload), $2,"   \
    "   attempts, error_history, CASE WHEN auto_retry THEN now() END"                              \
    "   FROM q LEFT JOIN tds.queue_payloads p ON p.queue_id = q.id"                                \
    "   RETURNING id, queue_id, run_id, entity_type, zoho_id),"                                    \
    " ev AS (INSERT INTO tds.events (type, run_id, entity_type, entity_id, data)"                  \
    " SELECT 'tds.deadletter.added', run_id, entity_type, zoho_id, jsonb_build_object("            \
    "   'dead_letter_id', id, 'queue_id', queue_id, 'reason', $2::text) FROM d)"                   \
    " SELECT id FROM d"

int queue_move_to_dlq(PGconn *c, long long id, const char *who, const char *reason, char **err)
{
    char ids[24];
    fmt_ll(ids, sizeof ids, id);
    char *why = xasprintf("%s (moved by %s)", str_empty(reason) ? "moved to the DLQ" : reason,
                          str_empty(who) ? "unknown" : who);
    const char *p[] = {ids, why, "0", NULL};
    PGresult *r =
        db_exec(c, DLQ_MOVE_SQL("status IN ('pending', 'retry') AND $4::text IS NULL"), 4, p, err);
    free(why);
    if (r == NULL)
        return -1;
    int n = PQntuples(r);
    PQclear(r);
    if (n == 0) {
        if (err)
            *err = xasprintf("queue item %lld does not exist or is not waiting", id);
        return -1;
    }
    return 0;
}

int queue_fail_item(PGconn *c, const struct queue_item *it, const char *holder, const char *error,
                    bool fatal, long long delay_ms, bool *dead, char **err)
{
    char ids[24], delay[24];
    fmt_ll(ids, sizeof ids, it->id);
    fmt_ll(delay, sizeof delay, delay_ms);
    bool to_dlq = fatal || it->attempts + 1 >= it->max_attempts;
    *dead = to_dlq;
    if (to_dlq) {
        char *reason =
            fatal ? xstrdup(error) : xasprintf("%s (after %d attempts)", error, it->attempts + 1);
        const char *p[] = {ids, reason, "1", holder};
        PGresult *r =
            db_exec(c, DLQ_MOVE_SQL("status = 'processing' AND locked_by = $4"), 4, p, err);
        free(reason);
        if (r == NULL)
            return -1;
        PQclear(r);
        return 0;
    }
    const char *p[] = {ids, error, delay, holder};
    metrics_count(METRIC_RETRIES, 1);
    return db_cmd(c,
                  "WITH q AS (UPDATE tds.sync_queue SET status = 'retry', attempts = attempts + 1,"
                  "   next_attempt_at = now() + make_interval(secs => $3::bigint / 1000.0),"
                  "   last_error = $2, locked_by = NULL, locked_until = NULL, updated_at = now(),"
                  "   error_history = error_history || jsonb_build_array(jsonb_build_object("
                  "     'at', now(), 'attempt', attempts + 1, 'error', $2::text))"
                  " WHERE id = $1::bigint AND status = 'processing' AND locked_by = $4"
                  " RETURNING id, run_id, entity_type, zoho_id, attempts, next_attempt_at)"
                  " INSERT INTO tds.events (type, run_id, entity_type, entity_id, data)"
                  " SELECT t, run_id, entity_type, zoho_id, jsonb_build_object('queue_id', id,"
                  "   'attempt', attempts, 'error', $2::text, 'next_attempt_at', next_attempt_at)"
                  " FROM q, unnest(ARRAY['tds.entity.sync_failed', 'tds.retry.scheduled']) AS t",
                  4, p, err);
}

int queue_reclaim_expired(PGconn *c, long long *count, char **err)
{
    PGresult *r = db_exec(
        c,
        "UPDATE tds.sync_queue SET status = 'retry', next_attempt_at = now(), updated_at = now(),"
        " error_history = error_history || jsonb_build_array(jsonb_build_object('at', now(),"
        "   'attempt', attempts, 'error', 'lease of ' || locked_by || ' expired; reclaimed')),"
        " locked_by = NULL, locked_until = NULL"
        " WHERE status = 'processing' AND locked_until < now() RETURNING id",
        0, NULL, err);
    if (r == NULL)
        return -1;
    *count = PQntuples(r);
    PQclear(r);
    if (*count > 0)
        PQclear(PQexec(c, "NOTIFY tds_queue"));
    return 0;
}

/* ---- retention ----
 * Each statement deletes at most $2 rows older than $1 days, picked by a
 * sub-select on an index (the ids or ctids of one batch), and answers how
 * many it deleted; what a deleted row counted in a /metrics counter goes to
 * tds.metric_totals in the same statement.  The outer WHERE repeats the
 * state the row must still be in, so a row that changed meanwhile stays. */

#define CUTOFF " now() - make_interval(days => $1::int)"
#define FOLD_TAIL                                                                    \
    " ON CONFLICT (metric, l1, l2) DO UPDATE SET value = tds.metric_totals.value" \
    " + EXCLUDED.value"

static const char *const prune_sql[PRUNE__COUNT] = {
    [PRUNE_QUEUE_COMPLETED] =
        "WITH d AS (DELETE FROM tds.sync_queue WHERE id = ANY (ARRAY("
        "  SELECT id FROM tds.sync_queue WHERE status = 'completed' AND completed_at <" CUTOFF
        "  ORDER BY completed_at LIMIT $2::int)) AND status = 'completed'"
        "  RETURNING entity_type, run_id),"
        " f AS (INSERT INTO tds.metric_totals (metric, l1, l2, value)"
        "  SELECT 'items_synced', entity_type, 'ok', count(*) FROM d WHERE run_id IS NULL"
        "  GROUP BY entity_type" FOLD_TAIL ")"
        " SELECT count(*) FROM d",
    [PRUNE_QUEUE_DEAD] =
        "WITH d AS (DELETE FROM tds.sync_queue WHERE id = ANY (ARRAY("
        "  SELECT id FROM tds.sync_queue WHERE status = 'dead' AND updated_at <" CUTOFF
        "  LIMIT $2::int)) AND status = 'dead'"
        "  RETURNING entity_type, run_id),"
        " f AS (INSERT INTO tds.metric_totals (metric, l1, l2, value)"
        "  SELECT 'items_synced', entity_type, 'failed', count(*) FROM d WHERE run_id IS NULL"
        "  GROUP BY entity_type" FOLD_TAIL ")"
        " SELECT count(*) FROM d",
    [PRUNE_DEAD_LETTER] =
        "WITH d AS (DELETE FROM tds.dead_letter WHERE id = ANY (ARRAY("
        "  SELECT id FROM tds.dead_letter WHERE resolved AND resolved_at <" CUTOFF
        "  ORDER BY resolved_at LIMIT $2::int)) AND resolved RETURNING 1),"
        " f AS (INSERT INTO tds.metric_totals (metric, l1, l2, value)"
        "  SELECT 'dlq_moves', '', '', count(*) FROM d HAVING count(*) > 0" FOLD_TAIL ")"
        " SELECT count(*) FROM d",
    [PRUNE_STATS_MINUTE] =
        "WITH d AS (DELETE FROM tds.stats_minute WHERE ctid = ANY (ARRAY("
        "  SELECT ctid FROM tds.stats_minute WHERE minute <" CUTOFF " LIMIT $2::int))"
        "  AND minute <" CUTOFF " RETURNING 1)"
        " SELECT count(*) FROM d",
    [PRUNE_EVENTS] =
        "WITH d AS (DELETE FROM tds.events WHERE id = ANY (ARRAY("
        "  SELECT e.id FROM tds.events e WHERE e.at <" CUTOFF
        "  AND NOT EXISTS (SELECT 1 FROM tds.sync_runs r WHERE r.id = e.run_id"
        "   AND r.status IN ('pending', 'running', 'interrupted'))"
        "  ORDER BY e.at LIMIT $2::int)) RETURNING 1)"
        " SELECT count(*) FROM d",
    [PRUNE_INBOX] =
        "WITH d AS (DELETE FROM tds.inbox WHERE id = ANY (ARRAY("
        "  SELECT i.id FROM tds.inbox i WHERE i.received_at <" CUTOFF " AND i.status <> 'new'"
        "  AND NOT EXISTS (SELECT 1 FROM tds.sync_queue q WHERE q.id = i.queue_id"
        "   AND q.status IN ('pending', 'processing', 'retry'))"
        "  AND NOT EXISTS (SELECT 1 FROM tds.sync_queue q WHERE q.inbox_id = i.id"
        "   AND q.status IN ('pending', 'processing', 'retry'))"
        "  ORDER BY i.received_at LIMIT $2::int)) AND status <> 'new' RETURNING 1)"
        " SELECT count(*) FROM d",
    [PRUNE_RUNS] =
        "WITH d AS (DELETE FROM tds.sync_runs WHERE id = ANY (ARRAY("
        "  SELECT r.id FROM tds.sync_runs r"
        "  WHERE ((r.status IN ('completed', 'completed_with_errors', 'failed', 'cancelled')"
        "    AND r.finished_at <" CUTOFF ")"
        "   OR (r.status = 'interrupted' AND r.resumed_at <" CUTOFF "))"
        "  AND NOT EXISTS (SELECT 1 FROM tds.sync_queue q WHERE q.run_id = r.id)"
        "  AND NOT EXISTS (SELECT 1 FROM tds.dead_letter dl WHERE dl.run_id = r.id"
        "   AND NOT dl.resolved)"
        "  AND NOT EXISTS (SELECT 1 FROM tds.sync_runs n WHERE n.resumed_from = r.id"
        "   AND n.status IN ('pending', 'running', 'interrupted'))"
        "  AND (r.status NOT IN ('completed', 'completed_with_errors') OR EXISTS (SELECT 1"
        "   FROM tds.sync_runs n WHERE n.run_type = r.run_type"
        "   AND n.entity_type IS NOT DISTINCT FROM r.entity_type"
        "   AND n.status IN ('completed', 'completed_with_errors') AND n.id > r.id))"
        "  ORDER BY r.id LIMIT $2::int))"
        "  AND status IN ('completed', 'completed_with_errors', 'failed', 'cancelled',"
        "   'interrupted')"
        "  RETURNING coalesce(entity_type, 'all') AS entity, succeeded, failed, unchanged),"
        " f AS (INSERT INTO tds.metric_totals (metric, l1, l2, value)"
        "  SELECT 'items_synced', entity, result, sum(n) FROM ("
        "   SELECT entity, 'ok' AS result, succeeded AS n FROM d"
        "   UNION ALL SELECT entity, 'failed', failed FROM d"
        "   UNION ALL SELECT entity, 'unchanged', unchanged FROM d) AS x"
        "  GROUP BY entity, result" FOLD_TAIL ")"
        " SELECT count(*) FROM d",
    [PRUNE_API_USAGE] =
        "WITH d AS (DELETE FROM tds.api_usage WHERE ctid = ANY (ARRAY("
        "  SELECT ctid FROM tds.api_usage WHERE minute <" CUTOFF " LIMIT $2::int))"
        "  AND minute <" CUTOFF " RETURNING endpoint, status, calls),"
        " f AS (INSERT INTO tds.metric_totals (metric, l1, l2, value)"
        "  SELECT 'api_calls', endpoint, status::text, sum(calls) FROM d GROUP BY endpoint, status"
        FOLD_TAIL ")"
        " SELECT count(*) FROM d",
};

static const char *const prune_names[PRUNE__COUNT] = {
    [PRUNE_QUEUE_COMPLETED] = "completed queue items",
    [PRUNE_QUEUE_DEAD] = "dead queue items",
    [PRUNE_DEAD_LETTER] = "resolved dead letters",
    [PRUNE_STATS_MINUTE] = "per-minute stats",
    [PRUNE_EVENTS] = "events",
    [PRUNE_INBOX] = "inbox webhooks",
    [PRUNE_RUNS] = "sync runs",
    [PRUNE_API_USAGE] = "API usage minutes",
};

const char *prune_table_name(enum prune_table t)
{
    return (unsigned)t < PRUNE__COUNT ? prune_names[t] : "?";
}

void prune_policy_from_config(struct prune_policy *p, const struct tds_config *cfg)
{
    p->queue_days = cfg->engine.cleanup_after_days;
    p->events_days = cfg->engine.retention.events_days;
    p->inbox_days = cfg->engine.retention.inbox_days;
    p->runs_days = cfg->engine.retention.runs_days;
    p->api_usage_days = cfg->engine.retention.api_usage_days;
    p->batch_size = cfg->engine.retention.batch_size;
    p->max_batches = cfg->engine.retention.max_batches;
}

int queue_prune(PGconn *c, const struct prune_policy *p, struct prune_result *out, char **err)
{
    memset(out, 0, sizeof *out);
    int batch = p->batch_size > 0 ? p->batch_size : 5000;
    int max_batches = p->max_batches > 0 ? p->max_batches : 1;
    char bs[16];
    snprintf(bs, sizeof bs, "%d", batch);
    for (int t = 0; t < PRUNE__COUNT; t++) {
        int days = t == PRUNE_EVENTS      ? p->events_days
                   : t == PRUNE_INBOX     ? p->inbox_days
                   : t == PRUNE_RUNS      ? p->runs_days
                   : t == PRUNE_API_USAGE ? p->api_usage_days
                                          : p->queue_days;
        if (days <= 0)
            continue; /* never pruned */
        char ds[16];
        snprintf(ds, sizeof ds, "%d", days);
        const char *params[] = {ds, bs};
        for (int i = 0; i < max_batches; i++) {
            PGresult *r = db_exec(c, prune_sql[t], 2, params, err);
            if (r == NULL)
                return -1;
            long long n = atoll(PQgetvalue(r, 0, 0));
            PQclear(r);
            out->statements++;
            out->rows[t] += n;
            out->total += n;
            if (n < batch)
                break;
            if (i == max_batches - 1)
                out->more = true;
        }
    }
    return 0;
}
