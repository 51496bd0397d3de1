/*
 * alerts.c: tds.alerts: raising with deduplication by key, resolving,
 * acknowledging, the janitor's rules (alerts_evaluate) and the webhook
 * notifications (alerts_notify_pending, Slack-compatible JSON over libcurl).
 *
 * A rule either fires (raise: a new alert, or one more occurrence of the
 * open one) or is clear (resolve the open one).  Thresholds of 0 disable
 * the rules that count things.
 */
#include "tds/alerts.h"

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tds/db.h"
#include "tds/log.h"

static const char *const severity_names[ALERT__COUNT] = {
    [ALERT_INFO] = "info",
    [ALERT_WARNING] = "warning",
    [ALERT_ERROR] = "error",
    [ALERT_CRITICAL] = "critical",
};

const char *alerts_severity_name(enum alert_severity s)
{
    if ((int)s < 0 || s >= ALERT__COUNT)
        return NULL;
    return severity_names[s];
}

int alerts_raise(PGconn *c, const struct alert_spec *a, long long *id, bool *is_new, char **err)
{
    const char *sev = alerts_severity_name(a->severity);
    if (sev == NULL || str_empty(a->type) || str_empty(a->title)) {
        if (err)
            *err = xstrdup("alerts: an alert needs a type, a severity and a title");
        return -1;
    }
    char affected[24];
    snprintf(affected, sizeof affected, "%lld", a->affected);
    const char *p[] = {a->type,
                       sev,
                       a->title,
                       a->message,
                       a->entity_type,
                       affected,
                       str_empty(a->dedup_key) ? a->type : a->dedup_key};
    PGresult *r = db_exec(
        c,
        "WITH a AS ("
        " INSERT INTO tds.alerts (alert_type, severity, title, message, entity_type,"
        "   affected_count, dedup_key)"
        " VALUES ($1, $2, $3, coalesce($4, ''), $5, $6::bigint, $7)"
        " ON CONFLICT (dedup_key) WHERE resolved_at IS NULL DO UPDATE SET"
        "   occurrences = tds.alerts.occurrences + 1, last_seen = now(),"
        "   severity = EXCLUDED.severity, title = EXCLUDED.title, message = EXCLUDED.message,"
        "   affected_count = EXCLUDED.affected_count"
        " RETURNING id, (xmax = 0) AS inserted),"
        " ev AS (INSERT INTO tds.events (type, entity_type, data)"
        "   SELECT 'tds.alert.triggered', $5, jsonb_build_object('alert_id', id, 'type', $1::text,"
        "     'severity', $2::text, 'title', $3::text, 'dedup_key', $7::text) FROM a WHERE "
        "inserted)"
        " SELECT id, inserted FROM a",
        7, p, err);
    if (r == NULL)
        return -1;
    bool fresh = PQgetvalue(r, 0, 1)[0] == 't';
    if (id)
        *id = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    if (is_new)
        *is_new = fresh;
    if (fresh)
        log_warn("alert %s (%s): %s", p[6], sev, a->title);
    PQclear(r);
    return 0;
}

int alerts_resolve(PGconn *c, const char *dedup_key, int *n, char **err)
{
    const char *p[] = {dedup_key};
    PGresult *r = db_exec(c,
                          "UPDATE tds.alerts SET resolved_at = now() "
                          "WHERE dedup_key = $1 AND resolved_at IS NULL",
                          1, p, err);
    if (r == NULL)
        return -1;
    int k = atoi(PQcmdTuples(r));
    if (k > 0)
        log_info("alert %s resolved", dedup_key);
    if (n)
        *n = k;
    PQclear(r);
    return 0;
}

int alerts_ack(PGconn *c, long long id, const char *who, char **err)
{
    char ids[24];
    snprintf(ids, sizeof ids, "%lld", id);
    const char *p[] = {ids, str_empty(who) ? "unknown" : who};
    PGresult *r =
        db_exec(c,
                "UPDATE tds.alerts SET acknowledged_at = coalesce(acknowledged_at, now()),"
                " acknowledged_by = coalesce(acknowledged_by, $2) WHERE id = $1::bigint",
                2, p, err);
    if (r == NULL)
        return -1;
    int k = atoi(PQcmdTuples(r));
    PQclear(r);
    if (k == 0) {
        if (err)
            *err = xasprintf("alert %lld does not exist", id);
        return -1;
    }
    return 0;
}

int alerts_ack_all(PGconn *c, const char *who, int *n, char **err)
{
    const char *p[] = {str_empty(who) ? "unknown" : who};
    PGresult *r = db_exec(c,
                          "UPDATE tds.alerts SET acknowledged_at = now(), acknowledged_by = $1 "
                          "WHERE resolved_at IS NULL AND acknowledged_at IS NULL",
                          1, p, err);
    if (r == NULL)
        return -1;
    if (n)
        *n = atoi(PQcmdTuples(r));
    PQclear(r);
    return 0;
}

/* --- rules --- */

/* Raises spec when firing, else resolves its key.  Counts firing rules. */
static int rule_apply(PGconn *c, bool firing, const struct alert_spec *spec, int *raised,
                      char **err)
{
    if (firing) {
        (*raised)++;
        return alerts_raise(c, spec, NULL, NULL, err);
    }
    return alerts_resolve(c, str_empty(spec->dedup_key) ? spec->type : spec->dedup_key, NULL, err);
}

/* One row, columns as long long (NULL as 0). */
static int query_ll(PGconn *c, const char *sql, int np, const char *const *p, long long *out,
                    int nout, char **err)
{
    PGresult *r = db_exec(c, sql, np, p, err);
    if (r == NULL)
        return -1;
    for (int i = 0; i < nout; i++)
        out[i] = (PQntuples(r) > 0 && i < PQnfields(r) && !PQgetisnull(r, 0, i))
                     ? strtoll(PQgetvalue(r, 0, i), NULL, 10)
                     : 0;
    PQclear(r);
    return 0;
}

/* Minimum number of items in the window before a failure rate means anything. */
#define FAILURE_RATE_MIN_SAMPLE 10

static int rule_failure_rate(PGconn *c, const struct tds_config *cfg, int *raised, char **err)
{
    char win[16];
    snprintf(win, sizeof win, "%d", cfg->alerts.failure_window_minutes);
    const char *p[] = {win};
    long long v[2];
    if (query_ll(c,
                 "SELECT sum(ok), sum(failed) FROM tds.stats_minute "
                 "WHERE minute >= date_trunc('minute', now()) - make_interval(mins => $1::int)",
                 1, p, v, 2, err) != 0)
        return -1;
    long long total = v[0] + v[1];
    bool firing = total >= FAILURE_RATE_MIN_SAMPLE &&
                  v[1] * 100 > (long long)cfg->alerts.failure_rate_percent * total;
    char title[160];
    snprintf(title, sizeof title, "Failure rate %lld%% over the last %d minutes (threshold %d%%)",
             total ? v[1] * 100 / total : 0, cfg->alerts.failure_window_minutes,
             cfg->alerts.failure_rate_percent);
    char msg[128];
    snprintf(msg, sizeof msg, "%lld of %lld items failed", v[1], total);
    struct alert_spec s = {"failure_rate", ALERT_ERROR, title, msg, NULL, v[1], NULL};
    return rule_apply(c, firing, &s, raised, err);
}

static int rule_queue(PGconn *c, const struct tds_config *cfg, int *raised, char **err)
{
    char stuck[16];
    snprintf(stuck, sizeof stuck, "%d", cfg->alerts.processing_stuck_minutes);
    const char *p[] = {stuck};
    long long v[3];
    if (query_ll(c,
                 "SELECT count(*) FILTER (WHERE status IN ('pending', 'retry')),"
                 " extract(epoch FROM now() - min(created_at) FILTER (WHERE status = "
                 "'pending'))::bigint,"
                 " count(*) FILTER (WHERE status = 'processing'"
                 "   AND updated_at < now() - make_interval(mins => $1::int))"
                 " FROM tds.sync_queue WHERE status IN ('pending', 'retry', 'processing')",
                 1, p, v, 3, err) != 0)
        return -1;
    char title[160], msg[160];
    int thr = cfg->alerts.queue_backlog;
    snprintf(title, sizeof title, "Queue backlog of %lld items (threshold %d)", v[0], thr);
    struct alert_spec s1 = {"queue_backlog", ALERT_WARNING, title, NULL, NULL, v[0], NULL};
    if (rule_apply(c, thr > 0 && v[0] > thr, &s1, raised, err) != 0)
        return -1;

    int mins = cfg->alerts.oldest_pending_minutes;
    snprintf(title, sizeof title, "Oldest pending item waits for %lld minutes (threshold %d)",
             v[1] / 60, mins);
    struct alert_spec s2 = {"oldest_pending", ALERT_WARNING, title, NULL, NULL, 0, NULL};
    if (rule_apply(c, mins > 0 && v[1] > (long long)mins * 60, &s2, raised, err) != 0)
        return -1;

    mins = cfg->alerts.processing_stuck_minutes;
    snprintf(title, sizeof title, "%lld items processing for more than %d minutes", v[2], mins);
    snprintf(msg, sizeof msg, "their engine may be hung; leases are reclaimed when they expire");
    struct alert_spec s3 = {"processing_stuck", ALERT_ERROR, title, msg, NULL, v[2], NULL};
    return rule_apply(c, mins > 0 && v[2] > 0, &s3, raised, err);
}

static int rule_dlq_growth(PGconn *c, const struct tds_config *cfg, int *raised, char **err)
{
    long long n;
    if (query_ll(
            c, "SELECT count(*) FROM tds.dead_letter WHERE created_at > now() - interval '1 hour'",
            0, NULL, &n, 1, err) != 0)
        return -1;
    int thr = cfg->alerts.dlq_growth_per_hour;
    char title[160];
    snprintf(title, sizeof title, "%lld items dead-lettered in the last hour (threshold %d)", n,
             thr);
    struct alert_spec s = {"dlq_growth", ALERT_ERROR, title, NULL, NULL, n, NULL};
    return rule_apply(c, thr > 0 && n > thr, &s, raised, err);
}

static int rule_heartbeats(PGconn *c, const struct tds_config *cfg, int *raised, char **err)
{
    int secs = cfg->alerts.heartbeat_missing_seconds;
    char s[16];
    snprintf(s, sizeof s, "%d", secs > 0 ? secs : 1000000000);
    const char *p[] = {s};
    PGresult *r = db_exec(c,
                          "SELECT instance, host, extract(epoch FROM now() - heartbeat_at)::bigint"
                          " FROM tds.engines WHERE state <> 'stopped'"
                          " AND heartbeat_at < now() - make_interval(secs => $1::int)"
                          " AND heartbeat_at > now() - interval '7 days' ORDER BY instance",
                          1, p, err);
    if (r == NULL)
        return -1;
    /* The keys firing now, as a text[] literal for the resolve below. */
    struct strbuf keys = {0};
    strbuf_putc(&keys, '{');
    int rc = 0;
    for (int i = 0; i < PQntuples(r) && rc == 0; i++) {
        char *key = xasprintf("engine_heartbeat:%s", PQgetvalue(r, i, 0));
        char *title = xasprintf("Engine %s (%s) has not sent a heartbeat for %s s",
                                PQgetvalue(r, i, 0), PQgetvalue(r, i, 1), PQgetvalue(r, i, 2));
        struct alert_spec sp = {"engine_heartbeat",
                                ALERT_CRITICAL,
                                title,
                                "its runs are interrupted and resumed elsewhere",
                                NULL,
                                1,
                                key};
        (*raised)++;
        rc = alerts_raise(c, &sp, NULL, NULL, err);
        if (i > 0)
            strbuf_putc(&keys, ',');
        strbuf_putc(&keys, '"');
        for (const char *k = key; *k; k++) {
            if (*k == '"' || *k == '\\')
                strbuf_putc(&keys, '\\');
            strbuf_putc(&keys, *k);
        }
        strbuf_putc(&keys, '"');
        free(key);
        free(title);
    }
    strbuf_putc(&keys, '}');
    PQclear(r);
    if (rc == 0) {
        const char *p2[] = {keys.buf};
        rc =
            db_cmd(c,
                   "UPDATE tds.alerts SET resolved_at = now() WHERE alert_type = 'engine_heartbeat'"
                   " AND resolved_at IS NULL AND NOT (dedup_key = ANY ($1::text[]))",
                   1, p2, err);
    }
    strbuf_free(&keys);
    return rc;
}

/* The rules that read tds.api_usage (written by the Zoho client). */
static int rule_api(PGconn *c, const struct tds_config *cfg, int *raised, char **err)
{
    long long exists;
    if (query_ll(c, "SELECT (to_regclass('tds.api_usage') IS NOT NULL)::int", 0, NULL, &exists, 1,
                 err) != 0)
        return -1;
    if (!exists)
        return 0;
    long long v[2];
    if (query_ll(
            c,
            "SELECT sum(calls) FILTER (WHERE minute >= date_trunc('day', now())),"
            " sum(calls) FILTER (WHERE status = 429 AND minute >= now() - interval '15 minutes')"
            " FROM tds.api_usage WHERE minute >= least(date_trunc('day', now()),"
            " now() - interval '15 minutes')",
            0, NULL, v, 2, err) != 0)
        return -1;
    long long per_day = config_rate_per_day(cfg);
    int pct = cfg->alerts.daily_budget_percent;
    char title[192];
    snprintf(title, sizeof title, "Zoho API budget: %lld of %lld calls used today (alert at %d%%)",
             v[0], per_day, pct);
    struct alert_spec s1 = {
        "api_budget", ALERT_WARNING,
        title,        "the daily limit resets at midnight in the organization's time zone",
        NULL,         v[0],
        NULL};
    if (rule_apply(c, pct > 0 && per_day > 0 && v[0] * 100 >= per_day * pct, &s1, raised, err) != 0)
        return -1;
    snprintf(title, sizeof title, "Zoho answered 429 (rate limited) %lld times in 15 minutes",
             v[1]);
    struct alert_spec s2 = {"zoho_rate_limited", ALERT_WARNING, title, NULL, NULL, v[1], NULL};
    if (rule_apply(c, v[1] > 0, &s2, raised, err) != 0)
        return -1;
    /* zoho_auth is raised by the client; it clears once calls succeed again. */
    return db_cmd(
        c,
        "UPDATE tds.alerts a SET resolved_at = now() WHERE alert_type = 'zoho_auth'"
        " AND resolved_at IS NULL AND EXISTS (SELECT 1 FROM tds.api_usage u"
        " WHERE u.status BETWEEN 200 AND 299 AND u.minute > date_trunc('minute', a.last_seen))",
        0, NULL, err);
}

int alerts_evaluate(PGconn *c, const struct tds_config *cfg, int *raised, char **err)
{
    int n = 0;
    int rc = 0;
    if (rule_failure_rate(c, cfg, &n, err) != 0 || rule_queue(c, cfg, &n, err) != 0 ||
        rule_dlq_growth(c, cfg, &n, err) != 0 || rule_heartbeats(c, cfg, &n, err) != 0 ||
        rule_api(c, cfg, &n, err) != 0)
        rc = -1;
    if (raised)
        *raised = n;
    return rc;
}

/* --- notifications --- */

static size_t discard_body(char *ptr, size_t size, size_t nmemb, void *ud)
{
    (void)ptr;
    (void)ud;
    return size * nmemb;
}

/* POSTs body to url; true on a 2xx answer. */
static bool post_json(const char *url, const char *body, long timeout_ms, char **why)
{
    CURL *h = curl_easy_init();
    if (h == NULL) {
        *why = xstrdup("curl_easy_init failed");
        return false;
    }
    struct curl_slist *hdr = curl_slist_append(NULL, "Content-Type: application/json");
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, discard_body);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "tds/" TDS_VERSION);
    CURLcode cc = curl_easy_perform(h);
    long status = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(hdr);
    curl_easy_cleanup(h);
    if (cc != CURLE_OK) {
        *why = xstrdup(curl_easy_strerror(cc));
        return false;
    }
    if (status < 200 || status > 299) {
        *why = xasprintf("HTTP %ld", status);
        return false;
    }
    return true;
}

int alerts_notify_pending(PGconn *c, const char *url, int max, long timeout_ms, char **err)
{
    if (str_empty(url))
        return 0;
    char maxs[16];
    snprintf(maxs, sizeof maxs, "%d", max);
    const char *p[] = {maxs};
    PGresult *r =
        db_exec(c,
                "SELECT id, severity, title, message, alert_type FROM tds.alerts"
                " WHERE notified_at IS NULL AND resolved_at IS NULL AND notify_attempts < 6"
                " AND (notify_next_at IS NULL OR notify_next_at <= now())"
                " ORDER BY id LIMIT $1::int",
                1, p, err);
    if (r == NULL)
        return -1;
    int sent = 0;
    for (int i = 0; i < PQntuples(r); i++) {
        char *up = xstrdup(PQgetvalue(r, i, 1));
        for (char *q = up; *q; q++)
            *q = (char)(*q >= 'a' && *q <= 'z' ? *q - 32 : *q);
        char *text =
            str_empty(PQgetvalue(r, i, 3))
                ? xasprintf("[tds] %s: %s", up, PQgetvalue(r, i, 2))
                : xasprintf("[tds] %s: %s\n%s", up, PQgetvalue(r, i, 2), PQgetvalue(r, i, 3));
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "text", text);
        cJSON_AddStringToObject(o, "alert_type", PQgetvalue(r, i, 4));
        cJSON_AddStringToObject(o, "severity", PQgetvalue(r, i, 1));
        char *body = cJSON_PrintUnformatted(o);
        char *why = NULL;
        bool ok = post_json(url, body, timeout_ms, &why);
        const char *up_p[] = {PQgetvalue(r, i, 0)};
        char *e2 = NULL;
        int urc = db_cmd(
            c,
            ok ? "UPDATE tds.alerts SET notified_at = now(),"
                 " notify_attempts = notify_attempts + 1 WHERE id = $1::bigint"
               : "UPDATE tds.alerts SET notify_attempts = notify_attempts + 1,"
                 " notify_next_at = now() + make_interval(secs => 15 * power(2, notify_attempts))"
                 " WHERE id = $1::bigint",
            1, up_p, &e2);
        if (ok)
            sent++;
        else
            log_warn("alert %s: notify_url POST failed: %s (will retry)", up_p[0], why);
        free(why);
        free(body);
        cJSON_Delete(o);
        free(text);
        free(up);
        if (urc != 0) {
            if (err)
                *err = e2;
            else
                free(e2);
            PQclear(r);
            return -1;
        }
    }
    PQclear(r);
    return sent;
}
