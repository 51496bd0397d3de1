/*
 * outage.c: what Zoho says about itself beyond one answer (issue 17 points
 * 1, 2 and 8).
 *
 * Blocks.  A Retry-After on a 429 or a 503, an exhausted window whose
 * X-Rate-Limit-Reset is longer than a minute, a code 45: Zoho stops taking
 * calls until a time it names, however far.  The end is written to
 * tds.zoho_block (one row per organization, the latest end wins) so that
 * every engine of the fleet waits for it, not only the one that was told;
 * the zoho_blocked alert says "Zoho blocked until HH:MM UTC".  Before each
 * request the client reads the row (at most once a second, and every time
 * while a block is known) and sleeps until the end; a block that ends
 * later than zoho.max_wait_seconds from now fails the call at once with
 * ZOHO_ERR_BLOCKED (the run fails with that message rather than hang).
 * The first answer after the end clears the row and resolves the alert.
 *
 * Outages.  DNS failures, refused connections, TLS errors and a gateway's
 * HTML 502/503/504 are Zoho being unreachable: the client keeps backing off
 * (beyond its attempts, while the outage is younger than
 * zoho.max_wait_seconds), raises zoho_unreachable once the outage is older
 * than zoho.unreachable_alert_seconds, and resolves it by itself when Zoho
 * answers again (any engine: the row's unreachable_since tells the others).
 *
 * Scopes.  Zoho answers 401 code 57 both to an expired token and to a token
 * without the endpoint's OAuth scope.  A 57 on an endpoint that never
 * answered 2xx, with a token that other endpoints accept, is a missing
 * scope: no refresh (a refresh per image spent the 10 mints per 10 minutes
 * in seconds and stopped every sync), ZOHO_ERR_SCOPE, the endpoint refused
 * without a request for an hour, and one alert naming the scope.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tds/alerts.h"
#include "tds/db.h"
#include "tds/log.h"
#include "zoho_internal.h"

#define SCOPE_RECHECK_MS 3600000LL
#define READ_EVERY_MS 1000

void zoho_outage_init(struct zoho_client *zc)
{
    pthread_mutex_init(&zc->st_mu, NULL);
    zc->ok_gen = -1;
}

void zoho_outage_destroy(struct zoho_client *zc)
{
    pthread_mutex_destroy(&zc->st_mu);
}

/* "14:05 UTC" for a wall time in ms. */
static void hhmm(long long ms, char *buf, size_t size)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, size, "%H:%M UTC", &tm);
}

static void raise_alert(struct zoho_client *zc, const char *type, enum alert_severity sev,
                        const char *dedup, const char *title, const char *msg)
{
    if (zc->db_rl == NULL)
        return;
    struct alert_spec a = {
        .type = type, .severity = sev, .title = title, .message = msg, .dedup_key = dedup,
    };
    char *err = NULL;
    pthread_mutex_lock(&zc->rl_mu);
    if (alerts_raise(zc->db_rl, &a, NULL, NULL, &err) != 0) {
        log_warn("zoho: cannot raise the %s alert: %s", type, err);
        free(err);
    }
    pthread_mutex_unlock(&zc->rl_mu);
}

/* Under st_mu (takes rl_mu): re-reads the fleet's row. */
static void read_row(struct zoho_client *zc, long long now)
{
    if (zc->db_rl == NULL)
        return;
    zc->block_read_ms = now;
    const char *p[] = {zc->org};
    char *err = NULL;
    pthread_mutex_lock(&zc->rl_mu);
    PGresult *r = db_ok(zc->db_rl)
                      ? db_exec(zc->db_rl,
                                "SELECT coalesce(floor(extract(epoch FROM blocked_until) * 1000),"
                                " 0)::bigint, coalesce(zoho_code, -1),"
                                " unreachable_since IS NOT NULL"
                                " FROM tds.zoho_block WHERE org = $1",
                                1, p, &err)
                      : NULL;
    pthread_mutex_unlock(&zc->rl_mu);
    if (r == NULL) {
        zoho_db_warn(zc, "reading Zoho's block", err ? err : "connection lost");
        free(err);
        return; /* keep what this process knows */
    }
    if (PQntuples(r) == 1) {
        zc->block_row_ms = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
        zc->fleet_unreach = PQgetvalue(r, 0, 2)[0] == 't';
        /* The row is the fleet's truth: a block shortened there is short. */
        zc->block_until_ms = zc->block_row_ms;
        zc->block_code = atoi(PQgetvalue(r, 0, 1));
    } else {
        zc->block_row_ms = 0;
        zc->fleet_unreach = false;
        zc->block_until_ms = 0;
    }
    PQclear(r);
}

int zoho_block_wait(struct zoho_conn *c, const char *endpoint, int page, struct zoho_error *e)
{
    struct zoho_client *zc = c->zc;
    long long max_ms = (zc->cfg->zoho.max_wait_seconds > 0 ? zc->cfg->zoho.max_wait_seconds
                                                            : 3600) * 1000LL;
    bool said = false;
    for (;;) {
        long long now = time_wall_ms();
        pthread_mutex_lock(&zc->st_mu);
        if (zc->block_until_ms > now || now - zc->block_read_ms >= READ_EVERY_MS)
            read_row(zc, now);
        long long until = zc->block_until_ms;
        int code = zc->block_code;
        pthread_mutex_unlock(&zc->st_mu);
        now = time_wall_ms();
        if (until <= now)
            return 0;
        long long left = until - now;
        char at[32];
        hhmm(until, at, sizeof at);
        if (left > max_ms) {
            zoho_error_set(e, code == 45 ? ZOHO_ERR_RATE_DAY : ZOHO_ERR_BLOCKED, 429, code,
                           endpoint, page,
                           "Zoho blocked calls until %s (%lld min from now, longer than "
                           "zoho.max_wait_seconds %d): not calling",
                           at, (left + 59999) / 60000, zc->cfg->zoho.max_wait_seconds);
            e->retry_after_ms = left;
            e->retried = true;
            return -1;
        }
        if (!said) {
            log_info("zoho: %s: Zoho blocked calls until %s: waiting %lld s", endpoint, at,
                     (left + 999) / 1000);
            said = true;
        }
        if (!zoho_sleep(c, left < 2000 ? left : 2000)) {
            zoho_error_set(e, ZOHO_ERR_CANCELLED, 0, -1, endpoint, page, "cancelled");
            return -1;
        }
    }
}

void zoho_block_set(struct zoho_client *zc, long long until_ms, int status, int code,
                    const char *why)
{
    pthread_mutex_lock(&zc->st_mu);
    if (until_ms > zc->block_until_ms) {
        zc->block_until_ms = until_ms;
        zc->block_code = code;
    }
    until_ms = zc->block_until_ms;
    zc->block_row_ms = until_ms;
    pthread_mutex_unlock(&zc->st_mu);
    if (zc->db_rl != NULL) {
        char u[24], st[16], cd[16];
        snprintf(u, sizeof u, "%lld", until_ms);
        snprintf(st, sizeof st, "%d", status);
        snprintf(cd, sizeof cd, "%d", code);
        const char *p[] = {zc->org, u, why, st, cd, zc->instance};
        char *err = NULL;
        pthread_mutex_lock(&zc->rl_mu);
        /* The latest end wins (GREATEST skips a NULL or past end). */
        int rc = db_ok(zc->db_rl)
                     ? db_cmd(zc->db_rl,
                              "INSERT INTO tds.zoho_block AS b (org, blocked_until, reason,"
                              " http_status, zoho_code, set_by, set_at)"
                              " VALUES ($1, to_timestamp($2::bigint / 1000.0), $3, $4::int,"
                              " $5::int, $6, now())"
                              " ON CONFLICT (org) DO UPDATE SET"
                              " blocked_until = GREATEST(CASE WHEN b.blocked_until > now()"
                              " THEN b.blocked_until END, EXCLUDED.blocked_until),"
                              " reason = EXCLUDED.reason, http_status = EXCLUDED.http_status,"
                              " zoho_code = EXCLUDED.zoho_code, set_by = EXCLUDED.set_by,"
                              " set_at = EXCLUDED.set_at",
                              6, p, &err)
                     : -1;
        pthread_mutex_unlock(&zc->rl_mu);
        if (rc != 0) {
            zoho_db_warn(zc, "recording Zoho's block", err ? err : "connection lost");
            free(err);
        }
    }
    char at[32], title[96];
    hhmm(until_ms, at, sizeof at);
    snprintf(title, sizeof title, "Zoho blocked until %s", at);
    char *msg = xasprintf("%s; every engine waits until then (calls that would wait longer "
                          "than zoho.max_wait_seconds fail)",
                          why);
    raise_alert(zc, "zoho_blocked", ALERT_WARNING, "zoho_blocked", title, msg);
    free(msg);
    long long left = until_ms - time_wall_ms();
    log_warn("zoho: Zoho blocked calls until %s (%lld s): %s", at, left > 0 ? left / 1000 : 0,
             why);
}

bool zoho_outage_curl(int curl_code)
{
    switch ((CURLcode)curl_code) {
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_CONNECT:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_USE_SSL_FAILED:
        return true;
    default:
        return false;
    }
}

long long zoho_outage_note(struct zoho_client *zc, bool outage, bool answered, int status,
                           long long tok_gen, const char *why)
{
    long long now = time_wall_ms();
    if (outage) {
        pthread_mutex_lock(&zc->st_mu);
        if (zc->unreach_since_ms == 0)
            zc->unreach_since_ms = now;
        long long since = zc->unreach_since_ms;
        long long alert_ms = (zc->cfg->zoho.unreachable_alert_seconds > 0
                                  ? zc->cfg->zoho.unreachable_alert_seconds
                                  : 300) * 1000LL;
        bool raise = !zc->unreach_alerted && now - since >= alert_ms;
        if (raise)
            zc->unreach_alerted = true;
        pthread_mutex_unlock(&zc->st_mu);
        if (raise) {
            char at[32], title[96];
            hhmm(since, at, sizeof at);
            snprintf(title, sizeof title, "Zoho unreachable since %s", at);
            char *msg = xasprintf("no answer from Zoho for %lld s: %s; runs back off and "
                                  "resume when it answers",
                                  (now - since) / 1000, why);
            raise_alert(zc, "zoho_unreachable", ALERT_CRITICAL, "zoho_unreachable", title, msg);
            free(msg);
            if (zc->db_rl != NULL) {
                char s[24];
                snprintf(s, sizeof s, "%lld", since);
                const char *p[] = {zc->org, s, why};
                char *err = NULL;
                pthread_mutex_lock(&zc->rl_mu);
                if (!db_ok(zc->db_rl) ||
                    db_cmd(zc->db_rl,
                           "INSERT INTO tds.zoho_block AS b (org, unreachable_since,"
                           " unreachable_error) VALUES ($1, to_timestamp($2::bigint / 1000.0),"
                           " $3) ON CONFLICT (org) DO UPDATE SET unreachable_since ="
                           " coalesce(b.unreachable_since, EXCLUDED.unreachable_since),"
                           " unreachable_error = EXCLUDED.unreachable_error",
                           3, p, &err) != 0) {
                    zoho_db_warn(zc, "recording Zoho's outage", err);
                }
                free(err);
                pthread_mutex_unlock(&zc->rl_mu);
            }
        }
        return now - since;
    }
    if (!answered)
        return 0;
    pthread_mutex_lock(&zc->st_mu);
    bool ok = status >= 200 && status < 300;
    if (ok)
        zc->ok_gen = tok_gen;
    bool clear_unreach = zc->unreach_alerted || zc->fleet_unreach;
    bool clear_block = ok && zc->block_row_ms != 0 && zc->block_row_ms <= now;
    zc->unreach_since_ms = 0;
    zc->unreach_alerted = false;
    zc->fleet_unreach = false;
    if (clear_block)
        zc->block_row_ms = 0;
    pthread_mutex_unlock(&zc->st_mu);
    if ((clear_unreach || clear_block) && zc->db_rl != NULL) {
        char *err = NULL;
        const char *p[] = {zc->org};
        pthread_mutex_lock(&zc->rl_mu);
        if (clear_unreach &&
            (alerts_resolve(zc->db_rl, "zoho_unreachable", NULL, &err) != 0 ||
             db_cmd(zc->db_rl,
                    "UPDATE tds.zoho_block SET unreachable_since = NULL,"
                    " unreachable_error = NULL WHERE org = $1",
                    1, p, &err) != 0)) {
            zoho_db_warn(zc, "resolving Zoho's outage", err);
            free(err);
            err = NULL;
        }
        if (clear_block &&
            (alerts_resolve(zc->db_rl, "zoho_blocked", NULL, &err) != 0 ||
             db_cmd(zc->db_rl,
                    "UPDATE tds.zoho_block SET blocked_until = NULL"
                    " WHERE org = $1 AND blocked_until <= now()",
                    1, p, &err) != 0)) {
            zoho_db_warn(zc, "ending Zoho's block", err);
            free(err);
        }
        pthread_mutex_unlock(&zc->rl_mu);
        if (clear_unreach)
            log_info("zoho: Zoho answers again");
    }
    return 0;
}

long long zoho_outage_age_ms(struct zoho_client *zc)
{
    pthread_mutex_lock(&zc->st_mu);
    long long since = zc->unreach_since_ms;
    pthread_mutex_unlock(&zc->st_mu);
    return since ? time_wall_ms() - since : 0;
}

/* ---- scopes ---- */

/* Under st_mu: the entry of label (created). */
static struct zoho_scope *scope_of(struct zoho_client *zc, const char *label)
{
    for (int i = 0; i < zc->n_scopes; i++)
        if (zc->scopes[i].label == label || str_eq(zc->scopes[i].label, label))
            return &zc->scopes[i];
    if (zc->n_scopes == (int)TDS_ARRAY_LEN(zc->scopes))
        return NULL;
    struct zoho_scope *s = &zc->scopes[zc->n_scopes++];
    memset(s, 0, sizeof *s);
    s->label = label;
    return s;
}

bool zoho_scope_denied(struct zoho_client *zc, const char *label)
{
    pthread_mutex_lock(&zc->st_mu);
    struct zoho_scope *s = scope_of(zc, label);
    bool d = s != NULL && s->denied_until_ms > time_wall_ms();
    pthread_mutex_unlock(&zc->st_mu);
    return d;
}

bool zoho_scope_seen_ok(struct zoho_client *zc, const char *label)
{
    pthread_mutex_lock(&zc->st_mu);
    struct zoho_scope *s = scope_of(zc, label);
    bool ok = s != NULL && s->ok;
    pthread_mutex_unlock(&zc->st_mu);
    return ok;
}

void zoho_scope_note_ok(struct zoho_client *zc, const char *label)
{
    pthread_mutex_lock(&zc->st_mu);
    struct zoho_scope *s = scope_of(zc, label);
    if (s != NULL) {
        s->ok = true;
        s->denied_until_ms = 0;
    }
    pthread_mutex_unlock(&zc->st_mu);
}

bool zoho_token_proven(struct zoho_client *zc, long long gen)
{
    pthread_mutex_lock(&zc->st_mu);
    bool p = zc->ok_gen >= 0 && zc->ok_gen == gen;
    pthread_mutex_unlock(&zc->st_mu);
    return p;
}

bool zoho_any_ok(struct zoho_client *zc)
{
    pthread_mutex_lock(&zc->st_mu);
    bool p = zc->ok_gen >= 0;
    pthread_mutex_unlock(&zc->st_mu);
    return p;
}

const char *zoho_scope_name(const char *label, char *buf, size_t size)
{
    /* label: "inventory/items/{id}/image", "books/invoices", ... */
    bool books = str_starts_with(label, "books");
    const char *seg = strchr(label, '/');
    seg = seg ? seg + 1 : "";
    size_t n = strcspn(seg, "/");
    char s[48];
    snprintf(s, sizeof s, "%.*s", (int)(n < sizeof s ? n : sizeof s - 1), seg);
    if (str_eq(s, "itemdetails"))
        snprintf(s, sizeof s, "items");
    /* Books keeps items, users and locations under its settings scope. */
    if (books && (str_eq(s, "items") || str_eq(s, "users") || str_eq(s, "locations")))
        snprintf(s, sizeof s, "settings");
    if (!books && (str_eq(s, "users") || str_eq(s, "locations")))
        snprintf(s, sizeof s, "settings");
    snprintf(buf, size, "%s.%s.READ", books ? "ZohoBooks" : "ZohoInventory", s);
    return buf;
}

const char *zoho_scope_deny(struct zoho_client *zc, const char *label)
{
    static __thread char name[96];
    zoho_scope_name(label, name, sizeof name);
    pthread_mutex_lock(&zc->st_mu);
    struct zoho_scope *s = scope_of(zc, label);
    bool first = s != NULL && s->denied_until_ms == 0;
    if (s != NULL)
        s->denied_until_ms = time_wall_ms() + SCOPE_RECHECK_MS;
    pthread_mutex_unlock(&zc->st_mu);
    if (first) {
        char dedup[128], title[200];
        snprintf(dedup, sizeof dedup, "zoho_scope:%s", name);
        snprintf(title, sizeof title,
                 "Zoho refuses %s: the OAuth grant lacks the scope %s", label, name);
        char *msg = xasprintf(
            "401 code 57 on %s while the same access token works elsewhere: the refresh "
            "token was granted without %s.  What needs it is switched off (tried again "
            "hourly); everything else goes on.  Grant the scope and generate a new "
            "refresh token for zoho.refresh_token.",
            label, name);
        raise_alert(zc, "zoho_scope", ALERT_ERROR, dedup, title, msg);
        free(msg);
        log_warn("zoho: %s: the token lacks the scope %s: not calling it for an hour", label,
                 name);
    }
    return name;
}
