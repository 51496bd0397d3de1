/*
 * health.c: the fleet's health verdict from the database (see health.h for
 * the rules).  Each query walks an index; none scans the queue or events.
 */
#include <stdlib.h>
#include <string.h>

#include "tds/db.h"
#include "tds/health.h"

static const char *const status_names[] = {"healthy", "degraded", "down"};
static const char *const severities[] = {"info", "warning", "error", "critical"};

const char *health_status_name(enum health_status s)
{
    return (unsigned)s < TDS_ARRAY_LEN(status_names) ? status_names[s] : "?";
}

static void add_reason(struct health_report *r, enum health_status level, const char *fmt, ...)
    TDS_PRINTF(3, 4);
static void add_reason(struct health_report *r, enum health_status level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *msg = xvasprintf(fmt, ap);
    va_end(ap);
    r->reasons = xreallocarray(r->reasons, r->nreasons + 1, sizeof *r->reasons);
    r->reasons[r->nreasons++] = msg;
    if (level > r->status)
        r->status = level;
}

static long long ll(PGresult *res, int row, int col)
{
    return PQgetisnull(res, row, col) ? 0 : strtoll(PQgetvalue(res, row, col), NULL, 10);
}

/* Runs a query; on failure marks the report down and returns NULL. */
static PGresult *q(PGconn *c, struct health_report *r, const char *sql, int n,
                   const char *const *params)
{
    char *err = NULL;
    PGresult *res = db_exec(c, sql, n, params, &err);
    if (res == NULL) {
        add_reason(r, HEALTH_DOWN, "database query failed: %s", err);
        free(err);
    }
    return res;
}

void health_compute(PGconn *c, const struct tds_config *cfg, struct health_report *r)
{
    memset(r, 0, sizeof *r);
    if (c == NULL || PQstatus(c) != CONNECTION_OK) {
        add_reason(r, HEALTH_DOWN, "database unreachable");
        return;
    }
    char *err = NULL;
    if (db_check_schema(c, &err) != 0) {
        add_reason(r, HEALTH_DOWN, "%s", err);
        free(err);
        return;
    }
    PGresult *res = q(c, r,
                      "SELECT instance, host, state, version, mode, threads, busy,"
                      " extract(epoch FROM now() - heartbeat_at)::float8,"
                      " EXISTS (SELECT 1 FROM tds.leases l WHERE l.name = 'leader'"
                      "   AND l.holder = instance AND l.expires_at > now())"
                      " FROM tds.engines"
                      " WHERE state <> 'stopped' OR heartbeat_at > now() - interval '1 hour'"
                      " ORDER BY instance",
                      0, NULL);
    if (res == NULL)
        return;
    int alive = 0, stale = 0;
    r->nengines = (size_t)PQntuples(res);
    r->engines = xcalloc(r->nengines ? r->nengines : 1, sizeof *r->engines);
    for (int i = 0; i < PQntuples(res); i++) {
        struct health_engine *e = &r->engines[i];
        e->instance = xstrdup(PQgetvalue(res, i, 0));
        e->host = xstrdup(PQgetvalue(res, i, 1));
        e->state = xstrdup(PQgetvalue(res, i, 2));
        e->version = xstrdup(PQgetvalue(res, i, 3));
        e->mode = xstrdup(PQgetvalue(res, i, 4));
        e->threads = (int)ll(res, i, 5);
        e->busy = (int)ll(res, i, 6);
        e->heartbeat_age = strtod(PQgetvalue(res, i, 7), NULL);
        e->leader = PQgetvalue(res, i, 8)[0] == 't';
        e->alive = strcmp(e->state, "stopped") != 0 &&
                   e->heartbeat_age <= cfg->engine.dead_after_seconds;
        if (e->alive)
            alive++;
        else if (strcmp(e->state, "stopped") != 0)
            stale++;
    }
    PQclear(res);

    res = q(c, r,
            "SELECT count(*) FILTER (WHERE status = 'pending'),"
            " count(*) FILTER (WHERE status = 'retry'),"
            " count(*) FILTER (WHERE status = 'processing'),"
            " coalesce(extract(epoch FROM now() - min(created_at) FILTER (WHERE status = 'pending')), 0)::float8"
            " FROM tds.sync_queue WHERE status IN ('pending', 'retry', 'processing')",
            0, NULL);
    if (res == NULL)
        return;
    r->queue_pending = ll(res, 0, 0);
    r->queue_retry = ll(res, 0, 1);
    r->queue_processing = ll(res, 0, 2);
    r->oldest_pending_age = strtod(PQgetvalue(res, 0, 3), NULL);
    PQclear(res);

    res = q(c, r,
            "SELECT (SELECT count(*) FROM tds.dead_letter WHERE NOT resolved),"
            " coalesce((SELECT value = 'true'::jsonb FROM tds.control WHERE key = 'paused'), false),"
            " to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')",
            0, NULL);
    if (res == NULL)
        return;
    r->dlq_open = ll(res, 0, 0);
    r->paused = PQgetvalue(res, 0, 1)[0] == 't';
    r->checked_at = xstrdup(PQgetvalue(res, 0, 2));
    PQclear(res);

    res = q(c, r,
            "SELECT severity, count(*) FROM tds.alerts WHERE resolved_at IS NULL"
            " GROUP BY severity",
            0, NULL);
    if (res == NULL)
        return;
    for (int i = 0; i < PQntuples(res); i++)
        for (size_t s = 0; s < TDS_ARRAY_LEN(severities); s++)
            if (strcmp(PQgetvalue(res, i, 0), severities[s]) == 0)
                r->alerts[s] = ll(res, i, 1);
    PQclear(res);

    res = q(c, r,
            "SELECT entity_type,"
            " to_char(last_success_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"
            " FROM tds.sync_state WHERE last_success_at IS NOT NULL ORDER BY entity_type",
            0, NULL);
    if (res == NULL)
        return;
    r->nlast_sync = (size_t)PQntuples(res);
    r->last_sync = xcalloc(r->nlast_sync ? r->nlast_sync : 1, sizeof *r->last_sync);
    for (int i = 0; i < PQntuples(res); i++) {
        r->last_sync[i].entity = xstrdup(PQgetvalue(res, i, 0));
        r->last_sync[i].at = xstrdup(PQgetvalue(res, i, 1));
    }
    PQclear(res);

    char block_at[16] = "", unreach_at[16] = "";
    res = q(c, r,
            "SELECT to_char(blocked_until AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'),"
            " reason,"
            " to_char(unreachable_since AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'),"
            " to_char(blocked_until AT TIME ZONE 'UTC', 'HH24:MI'),"
            " to_char(unreachable_since AT TIME ZONE 'UTC', 'HH24:MI')"
            " FROM tds.zoho_block WHERE (blocked_until > now() OR unreachable_since IS NOT NULL)"
            " AND org = $1",
            1, (const char *[]){cfg->zoho.organization_id ? cfg->zoho.organization_id : ""});
    if (res == NULL)
        return;
    if (PQntuples(res) > 0) {
        if (!PQgetisnull(res, 0, 0)) {
            r->zoho_blocked_until = xstrdup(PQgetvalue(res, 0, 0));
            r->zoho_block_reason = PQgetisnull(res, 0, 1) ? NULL : xstrdup(PQgetvalue(res, 0, 1));
            snprintf(block_at, sizeof block_at, "%s", PQgetvalue(res, 0, 3));
        }
        if (!PQgetisnull(res, 0, 2)) {
            r->zoho_unreachable_since = xstrdup(PQgetvalue(res, 0, 2));
            snprintf(unreach_at, sizeof unreach_at, "%s", PQgetvalue(res, 0, 4));
        }
    }
    PQclear(res);

    /* The verdict. */
    if (alive == 0)
        add_reason(r, HEALTH_DOWN, r->nengines == 0 ? "no engine has ever registered"
                                                    : "no engine is alive");
    if (stale > 0 && alive > 0)
        add_reason(r, HEALTH_DEGRADED, "%d engine%s stopped sending heartbeats", stale,
                   stale == 1 ? "" : "s");
    if (r->paused)
        add_reason(r, HEALTH_DEGRADED, "the fleet is paused");
    if (r->alerts[3] > 0)
        add_reason(r, HEALTH_DEGRADED, "%lld critical alert%s open", r->alerts[3],
                   r->alerts[3] == 1 ? "" : "s");
    if (r->alerts[2] > 0)
        add_reason(r, HEALTH_DEGRADED, "%lld error alert%s open", r->alerts[2],
                   r->alerts[2] == 1 ? "" : "s");
    if (r->queue_pending + r->queue_retry > cfg->alerts.queue_backlog)
        add_reason(r, HEALTH_DEGRADED, "queue backlog %lld over %d",
                   r->queue_pending + r->queue_retry, cfg->alerts.queue_backlog);
    if (r->oldest_pending_age > cfg->alerts.oldest_pending_minutes * 60.0)
        add_reason(r, HEALTH_DEGRADED, "oldest pending item waited %.0f min (limit %d)",
                   r->oldest_pending_age / 60.0, cfg->alerts.oldest_pending_minutes);
    if (block_at[0])
        add_reason(r, HEALTH_DEGRADED, "Zoho blocked calls until %s UTC", block_at);
    if (unreach_at[0])
        add_reason(r, HEALTH_DEGRADED, "Zoho unreachable since %s UTC", unreach_at);
}

void health_report_free(struct health_report *r)
{
    for (size_t i = 0; i < r->nreasons; i++)
        free(r->reasons[i]);
    free(r->reasons);
    for (size_t i = 0; i < r->nengines; i++) {
        struct health_engine *e = &r->engines[i];
        free(e->instance);
        free(e->host);
        free(e->state);
        free(e->version);
        free(e->mode);
    }
    free(r->engines);
    for (size_t i = 0; i < r->nlast_sync; i++) {
        free(r->last_sync[i].entity);
        free(r->last_sync[i].at);
    }
    free(r->last_sync);
    free(r->checked_at);
    free(r->zoho_blocked_until);
    free(r->zoho_block_reason);
    free(r->zoho_unreachable_since);
    memset(r, 0, sizeof *r);
}

cJSON *health_to_json(const struct health_report *r)
{
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "status", health_status_name(r->status));
    cJSON *reasons = cJSON_AddArrayToObject(j, "reasons");
    for (size_t i = 0; i < r->nreasons; i++)
        cJSON_AddItemToArray(reasons, cJSON_CreateString(r->reasons[i]));
    if (r->checked_at)
        cJSON_AddStringToObject(j, "checked_at", r->checked_at);
    cJSON *engines = cJSON_AddArrayToObject(j, "engines");
    for (size_t i = 0; i < r->nengines; i++) {
        const struct health_engine *e = &r->engines[i];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "instance", e->instance);
        cJSON_AddStringToObject(o, "host", e->host);
        cJSON_AddStringToObject(o, "mode", e->mode);
        cJSON_AddStringToObject(o, "state", e->state);
        cJSON_AddStringToObject(o, "version", e->version);
        cJSON_AddNumberToObject(o, "threads", e->threads);
        cJSON_AddNumberToObject(o, "busy", e->busy);
        cJSON_AddNumberToObject(o, "heartbeat_age_seconds", (double)(long long)(e->heartbeat_age * 10) / 10);
        cJSON_AddBoolToObject(o, "alive", e->alive);
        cJSON_AddBoolToObject(o, "leader", e->leader);
        cJSON_AddItemToArray(engines, o);
    }
    cJSON *queue = cJSON_AddObjectToObject(j, "queue");
    cJSON_AddNumberToObject(queue, "pending", (double)r->queue_pending);
    cJSON_AddNumberToObject(queue, "retry", (double)r->queue_retry);
    cJSON_AddNumberToObject(queue, "processing", (double)r->queue_processing);
    cJSON_AddNumberToObject(queue, "oldest_pending_age_seconds", (double)(long long)r->oldest_pending_age);
    cJSON_AddNumberToObject(j, "dlq_size", (double)r->dlq_open);
    cJSON_AddBoolToObject(j, "paused", r->paused);
    cJSON *alerts = cJSON_AddObjectToObject(j, "alerts");
    for (size_t s = 0; s < TDS_ARRAY_LEN(severities); s++)
        cJSON_AddNumberToObject(alerts, severities[s], (double)r->alerts[s]);
    cJSON *z = cJSON_AddObjectToObject(j, "zoho");
    if (r->zoho_blocked_until)
        cJSON_AddStringToObject(z, "blocked_until", r->zoho_blocked_until);
    else
        cJSON_AddNullToObject(z, "blocked_until");
    if (r->zoho_block_reason)
        cJSON_AddStringToObject(z, "block_reason", r->zoho_block_reason);
    else
        cJSON_AddNullToObject(z, "block_reason");
    if (r->zoho_unreachable_since)
        cJSON_AddStringToObject(z, "unreachable_since", r->zoho_unreachable_since);
    else
        cJSON_AddNullToObject(z, "unreachable_since");
    cJSON *last = cJSON_AddObjectToObject(j, "last_successful_sync");
    for (size_t i = 0; i < r->nlast_sync; i++)
        cJSON_AddStringToObject(last, r->last_sync[i].entity, r->last_sync[i].at);
    return j;
}
