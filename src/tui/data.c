/*
 * data.c: the console's data thread.  It owns one connection, LISTENs on
 * tds_events, runs the queries of the pane on screen (and the dashboard's
 * header figures), runs operations queued by the UI, and hands immutable
 * snapshots to the UI thread through a mutex and a wake pipe.  Every
 * snapshot carries the generation of the request it answers, so the UI
 * drops answers to a filter it no longer shows.  Nothing here touches
 * ncurses.  When the database goes away the thread says so in a snapshot,
 * reconnects by itself, and the UI keeps answering keys all along.
 *
 * Queries are parameterized, bounded (LIMIT, capped counts) and walk the
 * indexes of 0001_init.sql; lock_timeout and statement_timeout stop a
 * stalled server from holding the thread for long.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tds/db.h"
#include "tds/health.h"
#include "tds/log.h"
#include "tds/sanitize.h"
#include "tui_internal.h"

struct tui_data {
    pthread_t thread;
    pthread_mutex_t mu;
    const struct tds_config *cfg;
    char *instance;
    int wake_fd;            /* UI's pipe */
    int req_pipe[2];        /* UI -> thread */
    bool stop;
    struct tui_request req; /* current request (under mu) */
    bool req_new;
    struct tui_op_req *ops, **ops_tail;
    struct tui_snapshot *latest;
    struct result {
        char *msg;
        bool ok;
        struct result *next;
    } *results, **results_tail;
    PGcancel *cancel;       /* for stop while a query hangs */
    /* thread-only */
    PGconn *conn;
    int has_api, has_stats;  /* -1 unknown, 0/1 */
    FILE *bench;             /* tui_data_bench: per-query timings go here */
    double slow_ms;
};

static void poke(int fd)
{
    char b = 1;
    ssize_t rc = write(fd, &b, 1);
    (void)rc;
}

static void drain(int fd)
{
    char buf[64];
    while (read(fd, buf, sizeof buf) > 0)
        ;
}

/* ------------------------------------------------------------------ */
/* Filters */

static void cond(struct strbuf *sb, bool *first, const char *text)
{
    strbuf_puts(sb, *first ? " WHERE " : " AND ");
    strbuf_puts(sb, text);
    *first = false;
}

int tui_filter_where(enum tui_pane_id pane, const struct tui_request *rq, int first,
                     struct strbuf *sb, const char **params)
{
    int n = 0;
    bool w = true;
    char tmp[256];
#define P(v) (params[n] = (v), first + n++)
    switch (pane) {
    case PANE_RUNS:
        if (rq->status) {
            snprintf(tmp, sizeof tmp, "status = $%d", P(rq->status));
            cond(sb, &w, tmp);
        }
        if (rq->entity) {
            snprintf(tmp, sizeof tmp, "entity_type = $%d", P(rq->entity));
            cond(sb, &w, tmp);
        }
        if (rq->text) {
            int k = P(rq->text);
            snprintf(tmp, sizeof tmp,
                     "(run_type = $%d OR trigger = $%d OR owner = $%d OR id::text = $%d"
                     " OR error ILIKE '%%' || $%d || '%%')",
                     k, k, k, k, k);
            cond(sb, &w, tmp);
        }
        break;
    case PANE_QUEUE:
        if (rq->status && strcmp(rq->status, "active") == 0)
            cond(sb, &w, "status IN ('pending', 'processing', 'retry')");
        else if (rq->status) {
            snprintf(tmp, sizeof tmp, "status = $%d", P(rq->status));
            cond(sb, &w, tmp);
        }
        if (rq->entity) {
            snprintf(tmp, sizeof tmp, "entity_type = $%d", P(rq->entity));
            cond(sb, &w, tmp);
        }
        if (rq->text) {
            int k = P(rq->text);
            snprintf(tmp, sizeof tmp, "(zoho_id = $%d OR last_error ILIKE '%%' || $%d || '%%')", k,
                     k);
            cond(sb, &w, tmp);
        }
        break;
    case PANE_DLQ:
        cond(sb, &w, "NOT resolved");
        if (rq->entity) {
            snprintf(tmp, sizeof tmp, "entity_type = $%d", P(rq->entity));
            cond(sb, &w, tmp);
        }
        if (rq->text) {
            int k = P(rq->text);
            snprintf(tmp, sizeof tmp,
                     "(zoho_id = $%d OR failure_reason ILIKE '%%' || $%d || '%%')", k, k);
            cond(sb, &w, tmp);
        }
        break;
    case PANE_ALERTS:
        if (rq->status == NULL || strcmp(rq->status, "open") == 0)
            cond(sb, &w, "resolved_at IS NULL");
        else if (strcmp(rq->status, "unacknowledged") == 0)
            cond(sb, &w, "resolved_at IS NULL AND acknowledged_at IS NULL");
        else if (strcmp(rq->status, "all") != 0) {
            snprintf(tmp, sizeof tmp, "severity = $%d AND resolved_at IS NULL", P(rq->status));
            cond(sb, &w, tmp);
        }
        if (rq->entity) {
            snprintf(tmp, sizeof tmp, "entity_type = $%d", P(rq->entity));
            cond(sb, &w, tmp);
        }
        if (rq->text) {
            int k = P(rq->text);
            snprintf(tmp, sizeof tmp, "(alert_type = $%d OR title ILIKE '%%' || $%d || '%%')", k,
                     k);
            cond(sb, &w, tmp);
        }
        break;
    case PANE_EVENTS:
        if (rq->type) {
            snprintf(tmp, sizeof tmp, "type = $%d", P(rq->type));
            cond(sb, &w, tmp);
        }
        if (rq->entity) {
            snprintf(tmp, sizeof tmp, "entity_type = $%d", P(rq->entity));
            cond(sb, &w, tmp);
        }
        if (rq->text) {
            int k = P(rq->text);
            snprintf(tmp, sizeof tmp, "(entity_id = $%d OR run_id::text = $%d)", k, k);
            cond(sb, &w, tmp);
        }
        break;
    default:
        break;
    }
#undef P
    return n;
}

/* ------------------------------------------------------------------ */
/* Queries */

/* A result as an immutable row set, every cell sanitized with the
 * console's flags plus extra (SANITIZE_MULTILINE keeps indented JSON). */
static struct tui_rs *rs_from_pg_flags(PGresult *r, unsigned extra)
{
    int nc = PQnfields(r), nr = PQntuples(r);
    struct tui_rs *rs = tui_rs_new(nc, nr);
    for (int c = 0; c < nc; c++)
        rs->names[c] = xstrdup(PQfname(r, c));
    for (int i = 0; i < nr; i++)
        for (int c = 0; c < nc; c++)
            if (!PQgetisnull(r, i, c))
                rs->cell[(long)i * nc + c] =
                    sanitize_text(PQgetvalue(r, i, c), (size_t)PQgetlength(r, i, c),
                                  extra | tui_sanitize_flags());
    return rs;
}

static struct tui_rs *rs_from_pg(PGresult *r)
{
    return rs_from_pg_flags(r, 0);
}

/* rs_from_pg keeping line breaks (indented JSON). */
static struct tui_rs *rs_from_pg_multiline(PGresult *r)
{
    return rs_from_pg_flags(r, SANITIZE_MULTILINE);
}

/* Runs sql into snapshot slot q.  A failure is noted in s->error (the
 * first one) and leaves the slot empty; returns false when the connection
 * itself is gone. */
static bool run_q(struct tui_data *d, struct tui_snapshot *s, enum tui_query q, const char *sql,
                  int n, const char *const *params)
{
    char *err = NULL;
    long long t0 = time_mono_ms();
    PGresult *r = db_exec(d->conn, sql, n, params, &err);
    if (d->bench) {
        long long ms = time_mono_ms() - t0;
        fprintf(d->bench, "  %-14s %5lld ms%s\n", tui_query_name(q), ms,
                r ? "" : "  (failed)");
        if (ms >= d->slow_ms && r) { /* show how it ran */
            char *ex = xasprintf("EXPLAIN (ANALYZE, BUFFERS) %s", sql);
            char *e2 = NULL;
            PGresult *x = db_exec(d->conn, ex, n, params, &e2);
            for (int i = 0; x && i < PQntuples(x); i++)
                fprintf(d->bench, "      %s\n", PQgetvalue(x, i, 0));
            if (x)
                PQclear(x);
            free(e2);
            free(ex);
        }
    }
    if (r == NULL) {
        if (s->error == NULL) {
            char *m = xasprintf("%s: %s", tui_query_name(q), err ? err : "failed");
            s->error = sanitize_str(m, tui_sanitize_flags());
            free(m);
        }
        free(err);
        return PQstatus(d->conn) == CONNECTION_OK;
    }
    tui_rs_free(s->rs[q]);
    s->rs[q] = rs_from_pg(r);
    PQclear(r);
    return true;
}

static int table_exists(struct tui_data *d, const char *name)
{
    const char *p[] = {name};
    char *err = NULL;
    PGresult *r = db_exec(d->conn, "SELECT to_regclass($1) IS NOT NULL", 1, p, &err);
    free(err);
    if (r == NULL)
        return -1;
    int v = PQgetvalue(r, 0, 0)[0] == 't';
    PQclear(r);
    return v;
}

/* The shared verdict (health.h) as result sets: head, health, engines. */
static void fetch_health(struct tui_data *d, struct tui_snapshot *s)
{
    struct health_report hr;
    health_compute(d->conn, d->cfg, &hr);
    struct tui_rs *h = tui_rs_new(2, hr.nreasons ? (int)hr.nreasons : 1);
    h->names[0] = xstrdup("status");
    h->names[1] = xstrdup("reason");
    h->cell[0] = xstrdup(health_status_name(hr.status));
    for (size_t i = 0; i < hr.nreasons; i++) {
        if (i > 0)
            h->cell[i * 2] = xstrdup(health_status_name(hr.status));
        h->cell[i * 2 + 1] = sanitize_str(hr.reasons[i], tui_sanitize_flags());
    }
    s->rs[TQ_HEALTH] = h;

    static const char *en[] = {"instance", "host", "mode", "state", "threads",
                               "busy", "heartbeat_age", "alive", "version", "leader"};
    struct tui_rs *e = tui_rs_new((int)TDS_ARRAY_LEN(en), (int)hr.nengines);
    for (size_t c = 0; c < TDS_ARRAY_LEN(en); c++)
        e->names[c] = xstrdup(en[c]);
    for (size_t i = 0; i < hr.nengines; i++) {
        struct health_engine *x = &hr.engines[i];
        char **row = e->cell + i * TDS_ARRAY_LEN(en);
        row[0] = sanitize_str(x->instance, tui_sanitize_flags());
        row[1] = sanitize_str(x->host, tui_sanitize_flags());
        row[2] = sanitize_str(x->mode, tui_sanitize_flags());
        row[3] = sanitize_str(x->state, tui_sanitize_flags());
        row[4] = xasprintf("%d", x->threads);
        row[5] = xasprintf("%d", x->busy);
        row[6] = xasprintf("%.0f", x->heartbeat_age);
        row[7] = xstrdup(x->alive ? "t" : "f");
        row[8] = sanitize_str(x->version, tui_sanitize_flags());
        row[9] = xstrdup(x->leader ? "t" : "f");
    }
    s->rs[TQ_ENGINES] = e;

    static const char *hn[] = {"paused", "dlq_open", "q_pending", "q_retry", "q_processing",
                               "oldest_pending_age", "alerts_info", "alerts_warning",
                               "alerts_error", "alerts_critical", "db", "host",
                               "zoho_blocked_until", "zoho_block_reason",
                               "zoho_unreachable_since"};
    struct tui_rs *hd = tui_rs_new((int)TDS_ARRAY_LEN(hn), 1);
    for (size_t c = 0; c < TDS_ARRAY_LEN(hn); c++)
        hd->names[c] = xstrdup(hn[c]);
    hd->cell[0] = xstrdup(hr.paused ? "t" : "f");
    hd->cell[1] = xasprintf("%lld", hr.dlq_open);
    hd->cell[2] = xasprintf("%lld", hr.queue_pending);
    hd->cell[3] = xasprintf("%lld", hr.queue_retry);
    hd->cell[4] = xasprintf("%lld", hr.queue_processing);
    hd->cell[5] = xasprintf("%.0f", hr.oldest_pending_age);
    for (int i = 0; i < 4; i++)
        hd->cell[6 + i] = xasprintf("%lld", hr.alerts[i]);
    hd->cell[10] = sanitize_str(PQdb(d->conn), tui_sanitize_flags());
    const char *host = PQhost(d->conn);
    hd->cell[11] = sanitize_str(host && host[0] != '/' ? host : "local", tui_sanitize_flags());
    hd->cell[12] = xstrdup(hr.zoho_blocked_until ? hr.zoho_blocked_until : "");
    hd->cell[13] = sanitize_str(hr.zoho_block_reason ? hr.zoho_block_reason : "",
                                tui_sanitize_flags());
    hd->cell[14] = xstrdup(hr.zoho_unreachable_since ? hr.zoho_unreachable_since : "");
    s->rs[TQ_HEAD] = hd;
    health_report_free(&hr);
}

static bool fetch_dashboard(struct tui_data *d, struct tui_snapshot *s)
{
    bool ok = run_q(d, s, TQ_QCOUNTS,
                    "SELECT status, entity_type, count(*) AS n FROM tds.sync_queue"
                    " WHERE status IN ('pending', 'processing', 'retry', 'dead')"
                    " GROUP BY 1, 2 ORDER BY 1, 2",
                    0, NULL);
    ok = ok && run_q(d, s, TQ_QDONE,
                     "SELECT count(*) AS done_1h FROM tds.sync_queue WHERE status = 'completed'"
                     " AND completed_at > now() - interval '1 hour'",
                     0, NULL);
    if (d->has_stats < 0)
        d->has_stats = table_exists(d, "tds.stats_minute");
    if (ok && d->has_stats == 1)
        ok = run_q(d, s, TQ_SPARK,
                   "SELECT extract(epoch FROM minute)::bigint AS minute, sum(ok) AS items,"
                   " sum(failed) AS failures FROM tds.stats_minute"
                   " WHERE minute >= date_trunc('minute', now()) - interval '59 minutes'"
                   " GROUP BY 1 ORDER BY 1",
                   0, NULL);
    else if (ok)
        ok = run_q(d, s, TQ_SPARK,
                   "SELECT extract(epoch FROM date_trunc('minute', at))::bigint AS minute,"
                   " count(*) FILTER (WHERE type IN ('tds.entity.create', 'tds.entity.update',"
                   "   'tds.entity.delete')) AS items,"
                   " count(*) FILTER (WHERE type = 'tds.entity.sync_failed') AS failures"
                   " FROM tds.events WHERE at >= date_trunc('minute', now()) - interval '59 minutes'"
                   " GROUP BY 1 ORDER BY 1",
                   0, NULL);
    if (d->has_api < 0)
        d->has_api = table_exists(d, "tds.api_usage");
    if (ok && d->has_api == 1)
        ok = run_q(d, s, TQ_API,
                   "SELECT coalesce(sum(calls) FILTER (WHERE minute >= date_trunc('minute', now())), 0)"
                   "   AS this_minute,"
                   " coalesce(sum(calls), 0) AS today,"
                   " coalesce(sum(calls) FILTER (WHERE status = 429), 0) AS throttled_today"
                   " FROM tds.api_usage WHERE minute >= date_trunc('day', now())",
                   0, NULL);
    ok = ok && run_q(d, s, TQ_JOBS,
                     "SELECT name, cron, enabled, extract(epoch FROM last_run_at)::bigint AS last_run,"
                     " extract(epoch FROM next_run_at)::bigint AS next_run, last_status"
                     " FROM tds.schedules ORDER BY name LIMIT 50",
                     0, NULL);
    ok = ok && run_q(d, s, TQ_SYNCSTATE,
                     "SELECT entity_type, extract(epoch FROM last_success_at)::bigint AS last_success,"
                     " extract(epoch FROM last_full_at)::bigint AS last_full,"
                     " extract(epoch FROM last_incremental_at)::bigint AS last_incremental"
                     " FROM tds.sync_state ORDER BY entity_type LIMIT 100",
                     0, NULL);
    return ok;
}

static bool fetch_list(struct tui_data *d, struct tui_snapshot *s, const struct tui_request *rq)
{
    static const struct {
        enum tui_query q;
        const char *select, *from, *order;
    } lists[PANE_N] = {
        [PANE_RUNS] = {TQ_RUNS,
                       "SELECT id, run_type, entity_type, trigger, status, total, expected_total,"
                       " succeeded, failed, unchanged, api_calls, owner,"
                       " extract(epoch FROM created_at)::bigint AS created,"
                       " extract(epoch FROM started_at)::bigint AS started,"
                       " extract(epoch FROM finished_at)::bigint AS finished,"
                       " left(error, 300) AS error",
                       " FROM tds.sync_runs", " ORDER BY id DESC"},
        [PANE_QUEUE] = {TQ_QUEUE,
                        "SELECT id, entity_type, zoho_id, operation, priority, status, attempts,"
                        " max_attempts, extract(epoch FROM next_attempt_at)::bigint AS next_attempt,"
                        " extract(epoch FROM created_at)::bigint AS created,"
                        " left(last_error, 300) AS last_error",
                        " FROM tds.sync_queue", " ORDER BY id DESC"},
        [PANE_DLQ] = {TQ_DLQ,
                      "SELECT id, queue_id, entity_type, zoho_id, operation,"
                      " left(failure_reason, 300) AS failure_reason, attempts,"
                      " extract(epoch FROM created_at)::bigint AS created",
                      " FROM tds.dead_letter", " ORDER BY created_at DESC, id DESC"},
        [PANE_ALERTS] = {TQ_ALERTS,
                         "SELECT id, alert_type, severity, title, left(message, 300) AS message,"
                         " entity_type, occurrences, affected_count,"
                         " extract(epoch FROM first_seen)::bigint AS first_seen,"
                         " extract(epoch FROM last_seen)::bigint AS last_seen,"
                         " acknowledged_by, extract(epoch FROM acknowledged_at)::bigint AS acked,"
                         " extract(epoch FROM resolved_at)::bigint AS resolved",
                         " FROM tds.alerts", " ORDER BY last_seen DESC, id DESC"},
        [PANE_EVENTS] = {TQ_EVENTS,
                         "SELECT id, type, extract(epoch FROM at)::bigint AS at, run_id,"
                         " entity_type, entity_id, left(data::text, 300) AS data",
                         " FROM tds.events", " ORDER BY id DESC"},
    };
    if (rq->pane == PANE_DASHBOARD)
        return fetch_dashboard(d, s);
    const char *params[8];
    struct strbuf where = {0};
    int n = tui_filter_where(rq->pane, rq, 1, &where, params);
    char *sql = xasprintf("%s%s%s%s LIMIT %d", lists[rq->pane].select, lists[rq->pane].from,
                          where.buf ? where.buf : "", lists[rq->pane].order, TUI_LIST_LIMIT);
    bool ok = run_q(d, s, lists[rq->pane].q, sql, n, params);
    free(sql);
    if (ok) {
        sql = xasprintf("SELECT count(*) AS n FROM (SELECT 1%s%s LIMIT %d) s",
                        lists[rq->pane].from, where.buf ? where.buf : "", TUI_COUNT_CAP + 1);
        ok = run_q(d, s, TQ_TOTAL, sql, n, params);
        free(sql);
    }
    if (ok && rq->pane == PANE_DLQ && rq->dlq_grouped) {
        char hours[16];
        snprintf(hours, sizeof hours, "%d", rq->dlq_hours > 0 ? rq->dlq_hours : 24);
        const char *gp[] = {hours};
        ok = run_q(d, s, TQ_DLQGROUPS,
                   "SELECT failure_reason AS reason, entity_type, count(*) AS n,"
                   " extract(epoch FROM min(created_at))::bigint AS first,"
                   " extract(epoch FROM max(created_at))::bigint AS last"
                   " FROM tds.dead_letter WHERE NOT resolved"
                   " AND created_at > now() - make_interval(hours => $1::int)"
                   " GROUP BY 1, 2 ORDER BY n DESC, 1, 2 LIMIT 500",
                   1, gp);
    }
    strbuf_free(&where);
    return ok;
}

/* Builds the detail text of a run, queue item, DLQ item, alert or event. */
static bool fetch_detail(struct tui_data *d, struct tui_snapshot *s, enum tui_detail_kind kind,
                         long long id)
{
    char ids[24];
    snprintf(ids, sizeof ids, "%lld", id);
    const char *p[] = {ids};
    char *err = NULL;
    struct strbuf sb = {0};
    PGresult *r = NULL;
    s->detail_kind = kind;
    s->detail_id = id;
    const char *sql = NULL, *title = NULL;
    switch (kind) {
    case DETAIL_RUN: {
        /* times as epoch seconds, formatted by pane_runs_detail_text; stats
         * through to_jsonb so a database without the column still answers */
        PGresult *rr = db_exec(
            d->conn,
            "SELECT r.id, r.run_type, r.entity_type, r.trigger, r.status, r.requested_by,"
            " r.owner, extract(epoch FROM r.created_at)::bigint AS created,"
            " extract(epoch FROM r.started_at)::bigint AS started,"
            " extract(epoch FROM r.finished_at)::bigint AS finished,"
            " extract(epoch FROM r.heartbeat_at)::bigint AS heartbeat,"
            " extract(epoch FROM now())::bigint AS now,"
            " r.total, r.expected_total, r.succeeded, r.failed, r.unchanged, r.api_calls,"
            " r.missing, r.extra, r.stale, r.resumed_from, r.cancel_requested, r.error,"
            " jsonb_pretty(r.config) AS config, jsonb_pretty(to_jsonb(r) -> 'stats') AS stats"
            " FROM tds.sync_runs r WHERE r.id = $1::bigint",
            1, p, &err);
        struct tui_rs *run = NULL, *ev = NULL;
        if (rr == NULL) {
            strbuf_printf(&sb, "cannot read run %lld: %s", id, err ? err : "?");
            free(err);
            err = NULL;
        } else {
            run = rs_from_pg_multiline(rr);
            PQclear(rr);
            rr = db_exec(d->conn,
                         "SELECT id, extract(epoch FROM at)::bigint AS at, type, entity_type,"
                         " entity_id, left(data::text, 200) AS data"
                         " FROM tds.events WHERE run_id = $1::bigint ORDER BY id DESC LIMIT 100",
                         1, p, &err);
            if (rr) {
                ev = rs_from_pg_multiline(rr);
                PQclear(rr);
            } else {
                free(err);
                err = NULL;
            }
            char *text = pane_runs_detail_text(run, ev);
            strbuf_puts(&sb, text);
            free(text);
        }
        tui_rs_free(run);
        tui_rs_free(ev);
        char *t = xasprintf("run %lld", id);
        s->detail_title = sanitize_str(t, tui_sanitize_flags());
        free(t);
        s->detail_text = xstrdup(sb.buf ? sb.buf : ""); /* cells sanitized already */
        strbuf_free(&sb);
        return PQstatus(d->conn) == CONNECTION_OK;
    }
    case DETAIL_QUEUE:
        title = "queue item";
        sql = "SELECT id, run_id, inbox_id, entity_type, zoho_id, operation, priority, status,"
              " attempts, max_attempts, next_attempt_at, locked_by, locked_until, created_at,"
              " updated_at, completed_at, last_error, jsonb_pretty(error_history) AS error_history,"
              " jsonb_pretty(coalesce(q.payload, (SELECT p.payload FROM tds.queue_payloads p"
              "   WHERE p.queue_id = q.id))) AS payload"
              " FROM tds.sync_queue q WHERE id = $1::bigint";
        break;
    case DETAIL_DLQ:
    case DETAIL_DLQ_PAYLOAD:
        title = "dead-letter item";
        sql = "SELECT id, queue_id, run_id, entity_type, zoho_id, operation, attempts, created_at,"
              " resolved, resolved_by, resolution, resolution_note, failure_reason,"
              " jsonb_pretty(error_history) AS error_history, jsonb_pretty(payload) AS payload"
              " FROM tds.dead_letter WHERE id = $1::bigint";
        break;
    case DETAIL_ALERT:
        title = "alert";
        sql = "SELECT id, alert_type, severity, title, entity_type, affected_count, dedup_key,"
              " occurrences, first_seen, last_seen, acknowledged_at, acknowledged_by,"
              " resolved_at, message FROM tds.alerts WHERE id = $1::bigint";
        break;
    case DETAIL_EVENT:
        title = "event";
        sql = "SELECT id, type, at, run_id, entity_type, entity_id, jsonb_pretty(data) AS data"
              " FROM tds.events WHERE id = $1::bigint";
        break;
    default:
        return true;
    }
    r = db_exec(d->conn, sql, 1, p, &err);
    if (r == NULL) {
        strbuf_printf(&sb, "cannot read %s %lld: %s", title, id, err ? err : "?");
        free(err);
    } else if (PQntuples(r) == 0) {
        strbuf_printf(&sb, "%s %lld no longer exists", title, id);
    } else {
        for (int c = 0; c < PQnfields(r); c++) {
            const char *name = PQfname(r, c);
            const char *v = PQgetisnull(r, 0, c) ? "-" : PQgetvalue(r, 0, c);
            if (strchr(v, '\n') || strcmp(name, "payload") == 0 || strcmp(name, "config") == 0 ||
                strcmp(name, "data") == 0 || strcmp(name, "error_history") == 0 ||
                strcmp(name, "message") == 0)
                strbuf_printf(&sb, "\n%s:\n%s\n", name, v);
            else
                strbuf_printf(&sb, "%-18s %s\n", name, v);
        }
        if (kind == DETAIL_DLQ_PAYLOAD) {
            int c = PQfnumber(r, "payload");
            s->detail_raw = xstrdup(PQgetisnull(r, 0, c) ? "null" : PQgetvalue(r, 0, c));
        }
    }
    if (r)
        PQclear(r);
    char *t = xasprintf("%s %lld", title, id);
    s->detail_title = sanitize_str(t, tui_sanitize_flags());
    free(t);
    s->detail_text =
        sanitize_text(sb.buf ? sb.buf : "", sb.len, SANITIZE_MULTILINE | tui_sanitize_flags());
    strbuf_free(&sb);
    return PQstatus(d->conn) == CONNECTION_OK;
}

/* ------------------------------------------------------------------ */
/* The thread */

static void post_snapshot(struct tui_data *d, struct tui_snapshot *s)
{
    pthread_mutex_lock(&d->mu);
    tui_snapshot_free(d->latest);
    d->latest = s;
    pthread_mutex_unlock(&d->mu);
    poke(d->wake_fd);
}

static void post_result(struct tui_data *d, char *msg, bool ok)
{
    struct result *r = xcalloc(1, sizeof *r);
    r->msg = msg;
    r->ok = ok;
    pthread_mutex_lock(&d->mu);
    *d->results_tail = r;
    d->results_tail = &r->next;
    pthread_mutex_unlock(&d->mu);
    poke(d->wake_fd);
}

static void disconnect(struct tui_data *d)
{
    pthread_mutex_lock(&d->mu);
    if (d->cancel)
        PQfreeCancel(d->cancel);
    d->cancel = NULL;
    pthread_mutex_unlock(&d->mu);
    if (d->conn)
        PQfinish(d->conn);
    d->conn = NULL;
}

static bool connect_db(struct tui_data *d, char **err)
{
    d->conn = db_connect(d->cfg, err);
    if (d->conn == NULL)
        return false;
    static const char *const setup[] = {
        "SET application_name = 'tds-console'", "SET lock_timeout = '2s'",
        "SET statement_timeout = '10s'", "LISTEN tds_events"};
    for (size_t i = 0; i < TDS_ARRAY_LEN(setup); i++) {
        char *e2 = NULL;
        if (db_cmd(d->conn, setup[i], 0, NULL, &e2) != 0) {
            *err = e2;
            disconnect(d);
            return false;
        }
    }
    d->has_api = d->has_stats = -1;
    pthread_mutex_lock(&d->mu);
    d->cancel = PQgetCancel(d->conn);
    pthread_mutex_unlock(&d->mu);
    return true;
}

static struct tui_snapshot *error_snapshot(unsigned gen, const char *why)
{
    struct tui_snapshot *s = xcalloc(1, sizeof *s);
    s->gen = gen;
    s->ok = false;
    char *m = xasprintf("database unreachable, retrying: %s", why ? why : "");
    s->error = sanitize_str(m, tui_sanitize_flags());
    free(m);
    return s;
}

static void *data_main(void *arg)
{
    struct tui_data *d = arg;
    log_set_context("console data");
    long long next_connect = 0, last_refresh = 0;
    bool want_refresh = true;
    for (;;) {
        pthread_mutex_lock(&d->mu);
        bool stop = d->stop;
        if (d->req_new)
            want_refresh = true;
        pthread_mutex_unlock(&d->mu);
        if (stop)
            break;

        if (d->conn == NULL) {
            long long now = time_mono_ms();
            if (now >= next_connect) {
                char *err = NULL;
                if (!connect_db(d, &err)) {
                    pthread_mutex_lock(&d->mu);
                    unsigned gen = d->req.gen;
                    pthread_mutex_unlock(&d->mu);
                    post_snapshot(d, error_snapshot(gen, err));
                    free(err);
                    next_connect = time_mono_ms() + 2000;
                } else {
                    want_refresh = true;
                }
            }
        }

        if (d->conn != NULL) {
            /* Operations first: the refresh that follows shows their effect. */
            for (;;) {
                pthread_mutex_lock(&d->mu);
                struct tui_op_req *op = d->ops;
                if (op) {
                    d->ops = op->next;
                    if (d->ops == NULL)
                        d->ops_tail = &d->ops;
                }
                pthread_mutex_unlock(&d->mu);
                if (op == NULL)
                    break;
                char *msg = NULL;
                int rc = tui_action_run(d->conn, d->instance, op, &msg);
                tui_op_req_free(op);
                char *clean = sanitize_str(msg, tui_sanitize_flags());
                free(msg);
                post_result(d, clean, rc == 0);
                want_refresh = true;
            }
        }

        if (d->conn != NULL && want_refresh) {
            struct tui_request rq;
            pthread_mutex_lock(&d->mu);
            tui_request_copy(&rq, &d->req);
            d->req_new = false;
            pthread_mutex_unlock(&d->mu);
            struct tui_snapshot *s = xcalloc(1, sizeof *s);
            s->gen = rq.gen;
            s->ok = true;
            s->now = time(NULL);
            fetch_health(d, s);
            bool ok = PQstatus(d->conn) == CONNECTION_OK;
            if (ok)
                ok = fetch_list(d, s, &rq);
            if (ok && rq.detail != DETAIL_NONE)
                ok = fetch_detail(d, s, rq.detail, rq.detail_id);
            unsigned gen = rq.gen;
            tui_request_free(&rq);
            if (!ok) {
                char *why = db_error_line(d->conn);
                tui_snapshot_free(s);
                s = error_snapshot(gen, why);
                free(why);
                disconnect(d);
                next_connect = time_mono_ms() + 1000;
            }
            post_snapshot(d, s);
            want_refresh = false;
            last_refresh = time_mono_ms();
        }

        /* Wait: a request, a notification, or the refresh period. */
        struct pollfd pfd[2] = {{d->req_pipe[0], POLLIN, 0}, {-1, POLLIN, 0}};
        if (d->conn)
            pfd[1].fd = PQsocket(d->conn);
        pthread_mutex_lock(&d->mu);
        bool frozen = d->req.frozen;
        pthread_mutex_unlock(&d->mu);
        int period = d->cfg->console.refresh_ms > 0 ? d->cfg->console.refresh_ms : 1000;
        long long due = last_refresh + period - time_mono_ms();
        int timeout = d->conn == NULL ? 500 : frozen ? 1000 : (int)(due < 0 ? 0 : due);
        int rc = poll(pfd, pfd[1].fd >= 0 ? 2 : 1, timeout);
        if (rc > 0 && (pfd[0].revents & POLLIN))
            drain(d->req_pipe[0]);
        if (rc > 0 && pfd[1].fd >= 0 && (pfd[1].revents & (POLLIN | POLLERR | POLLHUP))) {
            if (!PQconsumeInput(d->conn)) {
                disconnect(d);
                continue;
            }
            PGnotify *nt;
            bool any = false;
            while ((nt = PQnotifies(d->conn)) != NULL) {
                any = true;
                PQfreemem(nt);
            }
            /* tds_events: refresh at once, at most 5 times a second. */
            if (any && !frozen && time_mono_ms() - last_refresh >= 200)
                want_refresh = true;
        }
        if (rc == 0 && !frozen && d->conn)
            want_refresh = true;
    }
    disconnect(d);
    return NULL;
}

int tui_data_bench(const struct tds_config *cfg, int rounds, double slow_ms, FILE *out)
{
    struct tui_data d;
    memset(&d, 0, sizeof d);
    d.cfg = cfg;
    d.has_api = d.has_stats = -1;
    pthread_mutex_init(&d.mu, NULL);
    char *err = NULL;
    if (!connect_db(&d, &err)) {
        fprintf(out, "cannot connect: %s\n", err);
        free(err);
        return -1;
    }
    static const char *names[PANE_N] = {"dashboard", "runs", "queue", "dlq", "alerts", "events"};
    for (int round = 0; round < rounds; round++) {
        d.bench = out;
        d.slow_ms = round == rounds - 1 ? slow_ms : 1e12; /* EXPLAIN once, on the last round */
        for (int p = 0; p < PANE_N; p++) {
            struct tui_request rq;
            memset(&rq, 0, sizeof rq);
            rq.pane = (enum tui_pane_id)p;
            if (p == PANE_QUEUE)
                rq.status = (char *)"active";
            rq.dlq_grouped = p == PANE_DLQ;
            rq.dlq_hours = 24;
            struct tui_snapshot *s = xcalloc(1, sizeof *s);
            fprintf(out, "round %d, pane %s:\n", round + 1, names[p]);
            long long t0 = time_mono_ms();
            fetch_health(&d, s);
            fprintf(out, "  %-14s %5lld ms\n", "health", time_mono_ms() - t0);
            fetch_list(&d, s, &rq);
            fprintf(out, "  %-14s %5lld ms  (whole refresh)\n", "REFRESH", time_mono_ms() - t0);
            tui_snapshot_free(s);
        }
    }
    disconnect(&d);
    pthread_mutex_destroy(&d.mu);
    return 0;
}

struct tui_data *tui_data_start(const struct tds_config *cfg, const char *instance, int wake_fd)
{
    struct tui_data *d = xcalloc(1, sizeof *d);
    d->cfg = cfg;
    d->instance = instance ? xstrdup(instance) : NULL;
    d->wake_fd = wake_fd;
    d->ops_tail = &d->ops;
    d->results_tail = &d->results;
    d->has_api = d->has_stats = -1;
    pthread_mutex_init(&d->mu, NULL);
    if (pipe2(d->req_pipe, O_NONBLOCK | O_CLOEXEC) != 0) {
        log_error("console: pipe: %s", strerror(errno));
        abort();
    }
    if (pthread_create(&d->thread, NULL, data_main, d) != 0) {
        log_error("console: cannot start the data thread");
        abort();
    }
    return d;
}

void tui_data_request(struct tui_data *d, const struct tui_request *rq)
{
    pthread_mutex_lock(&d->mu);
    tui_request_free(&d->req);
    tui_request_copy(&d->req, rq);
    d->req_new = true;
    pthread_mutex_unlock(&d->mu);
    poke(d->req_pipe[1]);
}

void tui_data_op(struct tui_data *d, struct tui_op_req *op)
{
    op->next = NULL;
    pthread_mutex_lock(&d->mu);
    *d->ops_tail = op;
    d->ops_tail = &op->next;
    pthread_mutex_unlock(&d->mu);
    poke(d->req_pipe[1]);
}

struct tui_snapshot *tui_data_take(struct tui_data *d)
{
    pthread_mutex_lock(&d->mu);
    struct tui_snapshot *s = d->latest;
    d->latest = NULL;
    pthread_mutex_unlock(&d->mu);
    return s;
}

char *tui_data_take_result(struct tui_data *d, bool *ok)
{
    pthread_mutex_lock(&d->mu);
    struct result *r = d->results;
    if (r) {
        d->results = r->next;
        if (d->results == NULL)
            d->results_tail = &d->results;
    }
    pthread_mutex_unlock(&d->mu);
    if (r == NULL)
        return NULL;
    char *m = r->msg;
    *ok = r->ok;
    free(r);
    return m;
}

void tui_data_stop(struct tui_data *d)
{
    if (d == NULL)
        return;
    pthread_mutex_lock(&d->mu);
    d->stop = true;
    if (d->cancel) { /* a query stuck on a stalled server */
        char buf[128];
        PQcancel(d->cancel, buf, sizeof buf);
    }
    pthread_mutex_unlock(&d->mu);
    poke(d->req_pipe[1]);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += 3;
    if (pthread_timedjoin_np(d->thread, NULL, &ts) != 0) {
        /* Still blocked (e.g. connecting): leave it; the process is ending. */
        pthread_detach(d->thread);
        return;
    }
    tui_snapshot_free(d->latest);
    while (d->results) {
        struct result *r = d->results;
        d->results = r->next;
        free(r->msg);
        free(r);
    }
    while (d->ops) {
        struct tui_op_req *o = d->ops;
        d->ops = o->next;
        tui_op_req_free(o);
    }
    tui_request_free(&d->req);
    close(d->req_pipe[0]);
    close(d->req_pipe[1]);
    pthread_mutex_destroy(&d->mu);
    free(d->instance);
    free(d);
}
