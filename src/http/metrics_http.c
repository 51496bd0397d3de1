/*
 * metrics_http.c: GET /metrics in the Prometheus text format 0.0.4.
 *
 * Fleet state comes from the database with a few cheap queries (queue
 * depth and oldest waiting item, dead letters, alerts, items synced from
 * tds.sync_runs and run-less queue items, API calls from tds.api_usage, the
 * last completed run of each entity, the token's expiry, the rate budget).
 * A fleet-wide figure is exported once: by the leading engine, or by a
 * process with no engine (a listener alone); every other engine leaves
 * those families without samples, so sum() over the fleet's scrapes counts
 * it once.  Fleet counters never go down: what the janitor prunes is folded
 * into tds.metric_totals (0017) and added back here.  Process figures come
 * from the in-process registry (metrics.h): webhooks, retries and the three
 * latency histograms; tds_engine_workers_busy and tds_leader from the engine
 * in this process (the fleet's busy sum in tds.engines when there is none).
 * tds_database_up says whether the database answered; tds_build_info names
 * the version.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "http_internal.h"
#include "tds/db.h"
#include "tds/log.h"
#include "tds/engine.h"
#include "tds/metrics.h"
#include "tds/zoho.h"

/* Weak: an engine or client object passed in ctx means its module is linked;
 * without them the listener links alone (tests, tools). */
#pragma weak engine_status
#pragma weak zoho_client_stats

static void label_value(struct strbuf *b, const char *v)
{
    for (; *v; v++) {
        if (*v == '\\')
            strbuf_puts(b, "\\\\");
        else if (*v == '"')
            strbuf_puts(b, "\\\"");
        else if (*v == '\n')
            strbuf_puts(b, "\\n");
        else
            strbuf_putc(b, *v);
    }
}

static void family(struct strbuf *b, const char *name, const char *type, const char *help)
{
    strbuf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* name{l1="v1",l2="v2"} value; labels may be NULL. */
static void sample(struct strbuf *b, const char *name, const char *l1, const char *v1,
                   const char *l2, const char *v2, double value)
{
    strbuf_puts(b, name);
    if (l1) {
        strbuf_printf(b, "{%s=\"", l1);
        label_value(b, v1 ? v1 : "");
        strbuf_putc(b, '"');
        if (l2) {
            strbuf_printf(b, ",%s=\"", l2);
            label_value(b, v2 ? v2 : "");
            strbuf_putc(b, '"');
        }
        strbuf_putc(b, '}');
    }
    if (isnan(value))
        strbuf_puts(b, " NaN\n");
    else if (value == floor(value) && fabs(value) < 1e15)
        strbuf_printf(b, " %.0f\n", value);
    else
        strbuf_printf(b, " %.9g\n", value);
}

static PGresult *query(PGconn *c, const char *sql)
{
    if (c == NULL)
        return NULL;
    return db_exec(c, sql, 0, NULL, NULL);
}

static double num(const PGresult *r, int row, int col)
{
    return PQgetisnull(r, row, col) ? 0 : strtod(PQgetvalue(r, row, col), NULL);
}

/* A family whose samples are the rows of sql: label l1 from column 0, l2
 * (when not NULL) from column 1, the value from the last column.  No
 * samples when run is false or the query fails. */
static void rows_family(struct strbuf *b, PGconn *c, bool run, const char *name,
                        const char *type, const char *help, const char *sql, const char *l1,
                        const char *l2)
{
    family(b, name, type, help);
    PGresult *r = run ? query(c, sql) : NULL;
    int vcol = l2 ? 2 : 1;
    for (int i = 0; r && i < PQntuples(r); i++)
        sample(b, name, l1, PQgetvalue(r, i, 0), l2, l2 ? PQgetvalue(r, i, 1) : NULL,
               num(r, i, vcol));
    PQclear(r);
}

static void histogram(struct strbuf *b, enum metric_hist h)
{
    struct metrics_hist_snapshot s;
    metrics_hist_get(h, &s);
    const char *name = metrics_hist_name(h);
    family(b, name, "histogram", metrics_hist_help(h));
    uint64_t cum = 0;
    for (int i = 0; i < METRICS_NBUCKETS; i++) {
        cum += s.bucket[i];
        char le[32];
        snprintf(le, sizeof le, "%g", metrics_buckets[i]);
        strbuf_printf(b, "%s_bucket{le=\"%s\"} %llu\n", name, le, (unsigned long long)cum);
    }
    strbuf_printf(b, "%s_bucket{le=\"+Inf\"} %llu\n", name, (unsigned long long)s.count);
    strbuf_printf(b, "%s_sum %.9g\n", name, s.sum);
    strbuf_printf(b, "%s_count %llu\n", name, (unsigned long long)s.count);
}

static const char core_sql[] =
    "SELECT (SELECT count(*) FROM tds.sync_queue WHERE status = 'pending'),"
    " (SELECT count(*) FROM tds.sync_queue WHERE status = 'retry'),"
    " (SELECT count(*) FROM tds.sync_queue WHERE status = 'processing'),"
    " (SELECT count(*) FROM tds.dead_letter WHERE NOT resolved),"
    " (SELECT count(*) FROM tds.dead_letter) + (SELECT coalesce(sum(value), 0)"
    "  FROM tds.metric_totals WHERE metric = 'dlq_moves'),"
    " (SELECT coalesce(sum(occurrences), 0) FROM tds.alerts),"
    " (SELECT count(*) FROM tds.alerts WHERE resolved_at IS NULL AND severity = 'info'),"
    " (SELECT count(*) FROM tds.alerts WHERE resolved_at IS NULL AND severity = 'warning'),"
    " (SELECT count(*) FROM tds.alerts WHERE resolved_at IS NULL AND severity = 'error'),"
    " (SELECT count(*) FROM tds.alerts WHERE resolved_at IS NULL AND severity = 'critical'),"
    " (SELECT coalesce(sum(busy), 0) FROM tds.engines WHERE state <> 'stopped')";

static const char items_sql[] =
    "SELECT entity, result, sum(n)::bigint FROM ("
    " SELECT coalesce(entity_type, 'all') AS entity, 'ok' AS result,"
    "  coalesce(sum(succeeded), 0) AS n FROM tds.sync_runs GROUP BY 1"
    " UNION ALL SELECT coalesce(entity_type, 'all'), 'failed', coalesce(sum(failed), 0)"
    "  FROM tds.sync_runs GROUP BY 1"
    " UNION ALL SELECT coalesce(entity_type, 'all'), 'unchanged', coalesce(sum(unchanged), 0)"
    "  FROM tds.sync_runs GROUP BY 1"
    " UNION ALL SELECT entity_type, CASE status WHEN 'completed' THEN 'ok' ELSE 'failed' END,"
    "  count(*) FROM tds.sync_queue WHERE run_id IS NULL AND status IN ('completed', 'dead')"
    "  GROUP BY 1, 2"
    " UNION ALL SELECT l1, l2, value FROM tds.metric_totals WHERE metric = 'items_synced')"
    " AS s GROUP BY 1, 2 ORDER BY 1, 2";

static const char api_sql[] =
    "SELECT endpoint, status, sum(calls)::bigint FROM ("
    " SELECT endpoint, status::text AS status, calls::bigint AS calls FROM tds.api_usage"
    " UNION ALL SELECT l1, l2, value FROM tds.metric_totals WHERE metric = 'api_calls')"
    " AS s GROUP BY 1, 2 ORDER BY 1, 2";

/* Items waiting (pending or retry), by entity: the oldest one's age. */
static const char oldest_sql[] =
    "SELECT entity_type, round(greatest(extract(epoch FROM now() - min(created_at)), 0))::float8"
    " FROM tds.sync_queue WHERE status IN ('pending', 'retry') GROUP BY 1 ORDER BY 1";

/* The last completed run of each entity and kind (retention keeps it). */
static const char success_sql[] =
    "SELECT coalesce(entity_type, 'all'), run_type, floor(extract(epoch FROM max(finished_at)))::float8"
    " FROM tds.sync_runs WHERE status IN ('completed', 'completed_with_errors')"
    " AND finished_at IS NOT NULL"
    " GROUP BY 1, 2 ORDER BY 1, 2";

char *http_metrics(struct http_server *s)
{
    PGconn *c = http_pool_get(s);
    struct strbuf b = {0};
    PGresult *core = query(c, core_sql);
    bool up = core != NULL;
    struct engine_status est;
    bool have_engine = s->ctx.engine && engine_status;
    if (have_engine)
        engine_status(s->ctx.engine, &est);
    /* Fleet-wide families: from one process of the fleet only. */
    bool fleet = up && (!have_engine || est.leader);

    family(&b, "tds_build_info", "gauge", "The tds build this process runs (always 1).");
    sample(&b, "tds_build_info", "version", TDS_VERSION, NULL, NULL, 1);
    family(&b, "tds_database_up", "gauge", "Whether the database answered this scrape.");
    sample(&b, "tds_database_up", NULL, NULL, NULL, NULL, up ? 1 : 0);
    if (have_engine) {
        family(&b, "tds_leader", "gauge",
               "1 on the engine that leads the fleet (scheduler, janitor), 0 on the others.");
        sample(&b, "tds_leader", NULL, NULL, NULL, NULL, est.leader ? 1 : 0);
    }

    /* Counters. */
    rows_family(&b, c, fleet, "tds_items_synced_total", "counter",
                "Records synced, by entity and result (fleet-wide, from runs and webhook"
                " items).",
                items_sql, "entity", "result");
    rows_family(&b, c, fleet, "tds_api_calls_total", "counter",
                "Zoho API calls by endpoint and HTTP status (fleet-wide, tds.api_usage).",
                api_sql, "endpoint", "status");

    family(&b, "tds_webhooks_total", "counter", "Webhook requests answered by this process.");
    static const struct {
        const char *result;
        enum metric_counter c;
    } wh[] = {
        {"accepted", METRIC_WEBHOOK_ACCEPTED},       {"duplicate", METRIC_WEBHOOK_DUPLICATE},
        {"unauthorized", METRIC_WEBHOOK_UNAUTHORIZED}, {"invalid", METRIC_WEBHOOK_INVALID},
        {"unavailable", METRIC_WEBHOOK_UNAVAILABLE},
    };
    for (size_t i = 0; i < TDS_ARRAY_LEN(wh); i++)
        sample(&b, "tds_webhooks_total", "result", wh[i].result, NULL, NULL,
               (double)metrics_counter_get(wh[i].c));

    family(&b, "tds_retries_total", "counter", "Retries scheduled by this process.");
    sample(&b, "tds_retries_total", NULL, NULL, NULL, NULL,
           (double)metrics_counter_get(METRIC_RETRIES));
    family(&b, "tds_queue_batches_replayed_total", "counter",
           "Queue batches this process replayed item by item (a bad or unusual payload, a lost"
           " lease).");
    sample(&b, "tds_queue_batches_replayed_total", NULL, NULL, NULL, NULL,
           (double)metrics_counter_get(METRIC_BATCHES_REPLAYED));
    family(&b, "tds_dlq_moves_total", "counter",
           "Items moved to the dead-letter queue (fleet-wide, rows of tds.dead_letter).");
    if (fleet)
        sample(&b, "tds_dlq_moves_total", NULL, NULL, NULL, NULL, num(core, 0, 4));
    family(&b, "tds_alerts_raised_total", "counter",
           "Alert occurrences raised (fleet-wide, tds.alerts).");
    if (fleet)
        sample(&b, "tds_alerts_raised_total", NULL, NULL, NULL, NULL, num(core, 0, 5));

    /* Gauges. */
    family(&b, "tds_queue_depth", "gauge", "Queue items waiting or in progress, by status.");
    if (fleet) {
        sample(&b, "tds_queue_depth", "status", "pending", NULL, NULL, num(core, 0, 0));
        sample(&b, "tds_queue_depth", "status", "retry", NULL, NULL, num(core, 0, 1));
        sample(&b, "tds_queue_depth", "status", "processing", NULL, NULL, num(core, 0, 2));
    }
    family(&b, "tds_dlq_size", "gauge", "Open dead-letter rows.");
    if (fleet)
        sample(&b, "tds_dlq_size", NULL, NULL, NULL, NULL, num(core, 0, 3));
    family(&b, "tds_alerts_active", "gauge", "Open alerts by severity.");
    static const char *const sev[] = {"info", "warning", "error", "critical"};
    for (int i = 0; fleet && i < 4; i++)
        sample(&b, "tds_alerts_active", "severity", sev[i], NULL, NULL, num(core, 0, 6 + i));

    family(&b, "tds_access_token_expiry_seconds", "gauge",
           "Seconds until the fleet's Zoho access token expires (negative: expired).");
    rows_family(&b, c, fleet, "tds_queue_oldest_pending_seconds", "gauge",
                "Age of the oldest queue item waiting (pending or retry), by entity; no sample"
                " when none waits.",
                oldest_sql, "entity", NULL);
    rows_family(&b, c, fleet, "tds_last_success_timestamp_seconds", "gauge",
                "When the last completed run of each entity and kind finished (Unix time).",
                success_sql, "entity", "kind");

    PGresult *r = fleet ? query(c, "SELECT extract(epoch FROM max(expires_at) - now())::float8"
                      " FROM tds.zoho_token")
           : NULL;
    if (r && PQntuples(r) == 1 && !PQgetisnull(r, 0, 0))
        sample(&b, "tds_access_token_expiry_seconds", NULL, NULL, NULL, NULL,
               round(num(r, 0, 0)));
    PQclear(r);

    family(&b, "tds_rate_budget_remaining", "gauge",
           "Zoho API calls left in the current minute and day.");
    r = fleet ? query(c, "SELECT coalesce(sum(calls), 0)::bigint FROM tds.api_usage"
                      " WHERE minute = date_trunc('minute', now())")
           : NULL;
    if (r && PQntuples(r) == 1) {
        double left = s->cfg->zoho.rate_limit.per_minute - num(r, 0, 0);
        sample(&b, "tds_rate_budget_remaining", "window", "minute", NULL, NULL,
               left < 0 ? 0 : left);
    }
    PQclear(r);
    double day_left = -1;
    if (fleet && s->ctx.zoho && zoho_client_stats) {
        struct zoho_client_stats st;
        zoho_client_stats(s->ctx.zoho, &st);
        day_left = (double)st.day_remaining;
    }
    if (day_left < 0 && fleet) {
        r = query(c, "SELECT coalesce(sum(used), 0)::bigint FROM tds.rate_windows"
                     " WHERE kind = 'day' AND window_start > now() - interval '1 day'");
        if (r && PQntuples(r) == 1) {
            day_left = config_rate_per_day(s->cfg) - num(r, 0, 0);
            if (day_left < 0)
                day_left = 0;
        }
        PQclear(r);
    }
    if (day_left >= 0)
        sample(&b, "tds_rate_budget_remaining", "window", "day", NULL, NULL, day_left);

    family(&b, "tds_engine_workers_busy", "gauge",
           "Workers of this engine in a batch now (the fleet's sum without an engine here).");
    if (have_engine)
        sample(&b, "tds_engine_workers_busy", NULL, NULL, NULL, NULL, est.busy);
    else if (up) {
        sample(&b, "tds_engine_workers_busy", NULL, NULL, NULL, NULL, num(core, 0, 10));
    }

    /* Histograms. */
    for (int h = 0; h < METRIC_HIST__COUNT; h++)
        histogram(&b, (enum metric_hist)h);

    PQclear(core);
    http_pool_put(s, c);
    return strbuf_detach(&b);
}

/* ---- /metrics off the listener threads ----
 * A scrape runs a few queries (statement timeout 10 s); on a listener thread
 * a stuck database would stall every connection that thread serves, /health
 * included.  The connection is suspended and handed to one worker thread,
 * which answers every scrape waiting with one rendering, then resumes them. */

struct metrics_worker {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct http_req *head;
    bool stop;
    bool joined;
    pthread_t th;
};

static void metrics_finish(struct http_req *rq, const char *text)
{
    rq->answer_text = xstrdup(text);
    atomic_store(&rq->state, RQ_DONE);
    MHD_resume_connection(rq->conn); /* rq may be freed from here on */
}

static void *metrics_main(void *arg)
{
    struct http_server *s = arg;
    struct metrics_worker *w = s->metrics;
    log_set_context("%s%shttp metrics", s->instance, str_empty(s->instance) ? "" : " ");
    pthread_mutex_lock(&w->mu);
    for (;;) {
        while (w->head == NULL && !w->stop)
            pthread_cond_wait(&w->cv, &w->mu);
        if (w->head == NULL)
            break;
        struct http_req *batch = w->head;
        w->head = NULL;
        pthread_mutex_unlock(&w->mu);
        char *text = http_metrics(s);
        while (batch) {
            struct http_req *next = batch->next;
            metrics_finish(batch, text);
            batch = next;
        }
        free(text);
        pthread_mutex_lock(&w->mu);
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

int metrics_worker_start(struct http_server *s, char **err)
{
    struct metrics_worker *w = xcalloc(1, sizeof *w);
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
    s->metrics = w;
    if (pthread_create(&w->th, NULL, metrics_main, s) != 0) {
        *err = xstrdup("http: cannot start the metrics thread");
        pthread_mutex_destroy(&w->mu);
        pthread_cond_destroy(&w->cv);
        free(w);
        s->metrics = NULL;
        return -1;
    }
    return 0;
}

void metrics_worker_stop(struct http_server *s, bool free_it)
{
    struct metrics_worker *w = s->metrics;
    if (w == NULL)
        return;
    if (!w->joined) {
        pthread_mutex_lock(&w->mu);
        w->stop = true;
        pthread_cond_broadcast(&w->cv);
        pthread_mutex_unlock(&w->mu);
        pthread_join(w->th, NULL); /* answers what was queued first */
        w->joined = true;
    }
    if (!free_it) /* a late scrape still finds w (and renders on its own thread) */
        return;
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->cv);
    free(w);
    s->metrics = NULL;
}

void metrics_submit(struct http_server *s, struct http_req *rq)
{
    struct metrics_worker *w = s->metrics;
    pthread_mutex_lock(&w->mu);
    if (w->stop) { /* shutting down: rendered here, as before */
        pthread_mutex_unlock(&w->mu);
        char *text = http_metrics(s);
        metrics_finish(rq, text);
        free(text);
        return;
    }
    rq->next = w->head;
    w->head = rq;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
}
