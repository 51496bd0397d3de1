/*
 * oauth.c: the access token, shared by every thread of the process and by
 * every engine of the fleet.
 *
 * In the process: one token under tok_mu; one thread refreshes at a time
 * while the others wait on tok_cv (or keep using the old token when it is
 * still valid: refreshing happens ahead of expiry, 5 minutes or a tenth of
 * the lifetime before).  A failed refresh is remembered for a cooldown so
 * the waiting threads get its error instead of trying again in a loop.
 *
 * In the fleet: tds.zoho_token holds the current token per client id.  The
 * refreshing thread takes a transaction-scoped advisory lock, reads the row
 * (another engine may have minted a fresh one: adopt it), else counts the
 * mints of the last ten minutes in tds.zoho_token_mints and mints only
 * below Zoho's limit (10 per 10 minutes), then writes the row and commits.
 * The engines waiting on the lock then read the new token.  Without a
 * database (or while it is down) the same rules apply within the process.
 *
 * Tokens and secrets never reach a log line or an error message: every new
 * token is registered with the log redaction, and buffers holding secrets
 * are wiped.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "tds/alerts.h"
#include "tds/db.h"
#include "tds/log.h"
#include "zoho_internal.h"
#include "tds/tokencrypt.h"

#define TOKEN_ENDPOINT "POST /oauth/v2/token"
#define TOKEN_ATTEMPTS 3

struct minted {
    char *token;
    char *api_domain;
    long long remaining_ms; /* lifetime left */
    long long ttl_ms;       /* full lifetime, for the refresh margin */
};

static void minted_free(struct minted *m)
{
    if (m->token != NULL) {
        explicit_bzero(m->token, strlen(m->token));
        free(m->token);
    }
    free(m->api_domain);
    memset(m, 0, sizeof *m);
}

void zoho_token_init(struct zoho_client *zc)
{
    pthread_mutex_init(&zc->tok_mu, NULL);
    pthread_cond_init(&zc->tok_cv, NULL);
}

void zoho_token_destroy(struct zoho_client *zc)
{
    if (zc->token != NULL) {
        explicit_bzero(zc->token, strlen(zc->token));
        free(zc->token);
    }
    zoho_error_clear(&zc->last_refresh_err);
    pthread_cond_destroy(&zc->tok_cv);
    pthread_mutex_destroy(&zc->tok_mu);
}

static long long refresh_margin_ms(long long ttl_ms)
{
    long long m = ttl_ms / 10;
    return m > 300000 ? 300000 : m;
}

/* Under tok_mu. */
static bool token_usable(const struct zoho_client *zc, long long now)
{
    return zc->token != NULL && !zc->token_bad && now + 1000 < zc->tok_expires_ms;
}

static bool token_fresh(const struct zoho_client *zc, long long now)
{
    return token_usable(zc, now) && now < zc->tok_refresh_ms;
}

/* Under tok_mu: gives c its own copy of the current token and base URLs. */
static void copy_to_conn(struct zoho_conn *c)
{
    struct zoho_client *zc = c->zc;
    if (c->token != NULL && c->tok_gen == zc->tok_gen)
        return;
    if (c->token != NULL) {
        explicit_bzero(c->token, strlen(c->token));
        free(c->token);
    }
    c->token = xstrdup(zc->token);
    if (c->auth.buf != NULL)
        explicit_bzero(c->auth.buf, c->auth.len);
    strbuf_reset(&c->auth);
    strbuf_printf(&c->auth, "Zoho-oauthtoken %s", zc->token);
    free(c->books_url);
    free(c->inventory_url);
    c->books_url = xstrdup(zc->books_url);
    c->inventory_url = xstrdup(zc->inventory_url);
    c->tok_gen = zc->tok_gen;
}

static void copy_error(struct zoho_error *dst, const struct zoho_error *src)
{
    zoho_error_clear(dst);
    dst->kind = src->kind;
    dst->http_status = src->http_status;
    dst->zoho_code = src->zoho_code;
    dst->page = src->page;
    dst->retry_after_ms = src->retry_after_ms;
    dst->message = src->message ? xstrdup(src->message) : NULL;
    dst->endpoint = src->endpoint ? xstrdup(src->endpoint) : NULL;
}

/* Is api_domain something we may send the token to?  One of Zoho's
 * data-centre API hosts or a configured base URL's origin (the accounts
 * server's too: the simulator serves both); any https host was
 * taken before, so a row written in tds.zoho_token could send every
 * engine's token anywhere. */
static bool domain_acceptable(const struct zoho_client *zc, const char *d)
{
    return token_api_domain_allowed(zc->cfg, d);
}

/* ---- the token endpoint ---- */

static void form_add(struct strbuf *sb, const char *k, const char *v)
{
    if (sb->len > 0)
        strbuf_putc(sb, '&');
    strbuf_puts(sb, k);
    strbuf_putc(sb, '=');
    zoho_url_encode(sb, v);
}

/*
 * One mint over HTTP (with a few retries for transport failures and 5xx).
 * Returns 0 with *m filled, or -1 with *e.  *maybe_minted tells whether a
 * token may have been issued even though we got none (a lost answer): such
 * attempts count against the mint limit.
 */
static int mint_http(struct zoho_conn *c, struct minted *m, bool *maybe_minted,
                     struct zoho_error *e)
{
    struct zoho_client *zc = c->zc;
    const struct tds_config *cfg = zc->cfg;
    char *url = xasprintf("%s/oauth/v2/token", zc->accounts_url);
    struct strbuf form = {0};
    form_add(&form, "client_id", cfg->zoho.client_id);
    form_add(&form, "client_secret", cfg->zoho.client_secret);
    form_add(&form, "grant_type", "refresh_token");
    form_add(&form, "refresh_token", cfg->zoho.refresh_token);
    long timeout = atomic_load(&zc->timeout_s);
    int rc = -1;
    *maybe_minted = false;

    for (int attempt = 1; attempt <= TOKEN_ATTEMPTS; attempt++) {
        if (attempt > 1) {
            long long ms = zoho_backoff(zc, attempt - 1);
            if (!zoho_sleep(c, ms)) {
                zoho_error_set(e, ZOHO_ERR_CANCELLED, 0, -1, TOKEN_ENDPOINT, 0, "cancelled");
                break;
            }
        }
        struct zoho_http_resp r;
        zoho_http_resp_init(&r, 64 * 1024);
        int hr = zoho_http_perform(c->h, url, NULL, form.buf, timeout, &r);
        zoho_usage_count(zc, "oauth/token", hr == 0 ? (int)r.status : 0);
        if (hr != 0) {
            char *msg = zoho_outside_text(r.curl_err, 200);
            if (zoho_outage_curl(r.curl_code))
                zoho_outage_note(zc, true, false, 0, -1, msg);
            zoho_error_set(e, ZOHO_ERR_TOKEN, 0, -1, TOKEN_ENDPOINT, 0,
                           "token endpoint unreachable: %s", msg);
            free(msg);
            *maybe_minted = true;
            zoho_http_resp_free(&r);
            continue;
        }
        cJSON *doc = cJSON_ParseWithLength(r.body.buf, r.body.len);
        if (!cJSON_IsObject(doc)) {
            zoho_error_set(e, ZOHO_ERR_TOKEN, (int)r.status, -1, TOKEN_ENDPOINT, 0,
                           "token endpoint answered HTTP %ld with a body that is not JSON "
                           "(Content-Type %s)",
                           r.status, r.ctype[0] ? r.ctype : "none");
            cJSON_Delete(doc);
            bool retry = r.status >= 500 || r.status == 200;
            if (r.status == 200)
                *maybe_minted = true;
            if (r.body.buf)
                explicit_bzero(r.body.buf, r.body.len);
            zoho_http_resp_free(&r);
            if (retry)
                continue;
            break;
        }
        if (r.body.buf)
            explicit_bzero(r.body.buf, r.body.len);
        zoho_http_resp_free(&r);
        const cJSON *err = cJSON_GetObjectItemCaseSensitive(doc, "error");
        const cJSON *tok = cJSON_GetObjectItemCaseSensitive(doc, "access_token");
        if (err != NULL) {
            const char *code = cJSON_IsString(err) ? err->valuestring : "error";
            const cJSON *desc = cJSON_GetObjectItemCaseSensitive(doc, "error_description");
            if (str_eq(code, "invalid_code")) {
                zoho_error_set(e, ZOHO_ERR_AUTH, (int)r.status, -1, TOKEN_ENDPOINT, 0,
                               "refresh token rejected (invalid_code): generate a new "
                               "refresh token for zoho.refresh_token");
            } else if (str_eq(code, "invalid_client")) {
                zoho_error_set(e, ZOHO_ERR_AUTH, (int)r.status, -1, TOKEN_ENDPOINT, 0,
                               "client id/secret rejected or wrong data center "
                               "(invalid_client): check zoho.client_id, zoho.client_secret "
                               "and zoho.data_center");
            } else {
                char *c1 = zoho_outside_text(code, 160);
                char *c2 = zoho_outside_text(cJSON_IsString(desc) ? desc->valuestring : "", 160);
                bool too_many = strcasestr(code, "access denied") != NULL ||
                                strcasestr(c2, "too many") != NULL;
                zoho_error_set(e, too_many ? ZOHO_ERR_MINT_LIMIT : ZOHO_ERR_TOKEN,
                               (int)r.status, -1, TOKEN_ENDPOINT, 0,
                               "token endpoint refused the refresh: %s%s%s", c1,
                               c2[0] ? ": " : "", c2);
                if (too_many)
                    e->retry_after_ms = zc->opts.mint_window_s * 1000LL;
                free(c1);
                free(c2);
            }
            cJSON_Delete(doc);
            break;
        }
        if (!cJSON_IsString(tok) || str_empty(tok->valuestring)) {
            zoho_error_set(e, ZOHO_ERR_TOKEN, (int)r.status, -1, TOKEN_ENDPOINT, 0,
                           "token endpoint answered HTTP %ld without an access_token",
                           r.status);
            cJSON_Delete(doc);
            if (r.status >= 500)
                continue;
            break;
        }
        long long ttl_s = zoho_token_ttl_s(doc);
        const cJSON *dom = cJSON_GetObjectItemCaseSensitive(doc, "api_domain");
        m->token = xstrdup(tok->valuestring);
        log_register_secret(m->token);
        explicit_bzero(tok->valuestring, strlen(tok->valuestring));
        m->api_domain = cJSON_IsString(dom) && !str_empty(dom->valuestring)
                            ? xstrdup(dom->valuestring)
                            : NULL;
        m->ttl_ms = m->remaining_ms = ttl_s * 1000;
        cJSON_Delete(doc);
        rc = 0;
        break;
    }
    explicit_bzero(form.buf, form.len);
    strbuf_free(&form);
    free(url);
    if (rc == 0)
        zoho_error_clear(e);
    return rc;
}

/* Local (in-process) mint limit.  Under tok_mu or by the refreshing thread. */
static int local_mints_in_window(struct zoho_client *zc, long long now, long long *oldest)
{
    int n = 0;
    long long win = zc->opts.mint_window_s * 1000LL;
    *oldest = 0;
    for (size_t i = 0; i < TDS_ARRAY_LEN(zc->mint_ring); i++) {
        long long t = zc->mint_ring[i];
        if (t != 0 && t > now - win) {
            n++;
            if (*oldest == 0 || t < *oldest)
                *oldest = t;
        }
    }
    return n;
}

static void local_mint_note(struct zoho_client *zc, long long now)
{
    zc->mint_ring[zc->mint_head] = now;
    zc->mint_head = (zc->mint_head + 1) % (int)TDS_ARRAY_LEN(zc->mint_ring);
}

static int refresh_local(struct zoho_conn *c, struct minted *m, struct zoho_error *e)
{
    struct zoho_client *zc = c->zc;
    long long now = time_wall_ms(), oldest;
    int n = local_mints_in_window(zc, now, &oldest);
    if (n >= zc->opts.mint_limit) {
        zoho_error_set(e, ZOHO_ERR_MINT_LIMIT, 0, -1, TOKEN_ENDPOINT, 0,
                       "access token needed but %d were minted in the last %d s (Zoho's "
                       "limit): waiting",
                       n, zc->opts.mint_window_s);
        e->retry_after_ms = oldest + zc->opts.mint_window_s * 1000LL - now;
        return -1;
    }
    bool maybe;
    int rc = mint_http(c, m, &maybe, e);
    if (rc == 0 || maybe)
        local_mint_note(zc, now);
    if (rc == 0)
        atomic_fetch_add(&zc->minted, 1);
    return rc;
}

static bool db_row(PGresult *r, int col, long long *out)
{
    if (PQntuples(r) < 1 || PQgetisnull(r, 0, col))
        return false;
    return str_to_ll(PQgetvalue(r, 0, col), out);
}

/*
 * The fleet refresh.  Returns 0 (minted or adopted), -1 with *e for a
 * definite failure, -2 when the database failed (then *e is clear and the
 * caller falls back to refresh_local).
 */
static int refresh_db(struct zoho_conn *c, const char *bad, struct minted *m,
                      struct zoho_error *e)
{
    struct zoho_client *zc = c->zc;
    PGconn *db = zc->db_tok;
    char *err = NULL;
    const char *cid = zc->cfg->zoho.client_id;
    char win[24], *lockkey = xasprintf("tds.zoho_token:%s", cid);
    snprintf(win, sizeof win, "%d", zc->opts.mint_window_s);
    PGresult *r = NULL;
    int rc = -2;

    if (!db_ok(db) || db_begin(db, &err) != 0)
        goto dbfail;
    {
        const char *p[] = {lockkey};
        if (db_cmd(db, "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", 1, p, &err) != 0)
            goto dbfail_tx;
    }
    {
        const char *p[] = {cid};
        r = db_exec(db,
                    "SELECT access_token, api_domain,"
                    " floor(extract(epoch FROM expires_at - clock_timestamp()) * 1000)::bigint,"
                    " floor(extract(epoch FROM expires_at - minted_at) * 1000)::bigint"
                    " FROM tds.zoho_token WHERE client_id = $1",
                    1, p, &err);
        if (r == NULL)
            goto dbfail_tx;
        long long remaining, ttl;
        if (PQntuples(r) == 1 && !PQgetisnull(r, 0, 0) && db_row(r, 2, &remaining) &&
            db_row(r, 3, &ttl)) {
            /* Sealed at rest: a token that does not open (another key, the
             * plaintext of an older tds) is as good as none: mint one. */
            char *tok = NULL;
            if (token_open(zc->token_key, cid, PQgetvalue(r, 0, 0), &tok) != 0)
                tok = NULL;
            if (tok != NULL && !str_empty(tok) && !str_eq(tok, bad) &&
                remaining > refresh_margin_ms(ttl) + 1000) {
                m->token = tok;
                tok = NULL;
                log_register_secret(m->token);
                m->api_domain = PQgetisnull(r, 0, 1) ? NULL : xstrdup(PQgetvalue(r, 0, 1));
                m->remaining_ms = remaining;
                m->ttl_ms = ttl;
                PQclear(r);
                r = NULL;
                if (db_commit(db, &err) != 0) {
                    minted_free(m);
                    goto dbfail;
                }
                atomic_fetch_add(&zc->adopted, 1);
                free(lockkey);
                return 0;
            }
            if (tok != NULL) {
                explicit_bzero(tok, strlen(tok));
                free(tok);
            }
        }
        PQclear(r);
        r = NULL;
    }
    {
        const char *p[] = {cid, win};
        r = db_exec(db,
                    "SELECT count(*), coalesce(floor(extract(epoch FROM min(minted_at)"
                    " + make_interval(secs => $2::int) - clock_timestamp()) * 1000)::bigint, 0)"
                    " FROM tds.zoho_token_mints WHERE client_id = $1"
                    " AND minted_at > clock_timestamp() - make_interval(secs => $2::int)",
                    2, p, &err);
        if (r == NULL)
            goto dbfail_tx;
        long long n = 0, wait = 0;
        db_row(r, 0, &n);
        db_row(r, 1, &wait);
        PQclear(r);
        r = NULL;
        if (n >= zc->opts.mint_limit) {
            db_rollback(db);
            zoho_error_set(e, ZOHO_ERR_MINT_LIMIT, 0, -1, TOKEN_ENDPOINT, 0,
                           "access token needed but the fleet minted %lld in the last %d s "
                           "(Zoho's limit is %d): waiting",
                           n, zc->opts.mint_window_s, zc->opts.mint_limit);
            e->retry_after_ms = wait > 0 ? wait : 1000;
            free(lockkey);
            /* Held back: say so (one alert, bumped while it lasts). */
            char title[160];
            snprintf(title, sizeof title,
                     "Zoho token mint held back: the fleet minted %lld in %d s (limit %d)", n,
                     zc->opts.mint_window_s, zc->opts.mint_limit);
            char *msg = xasprintf("a new access token is needed but Zoho allows %d mints per "
                                  "%d s per refresh token; the next one is possible in %lld s",
                                  zc->opts.mint_limit, zc->opts.mint_window_s,
                                  (e->retry_after_ms + 999) / 1000);
            struct alert_spec a = {.type = "zoho_mint_limit", .severity = ALERT_WARNING,
                                   .title = title, .message = msg,
                                   .dedup_key = "zoho_mint_limit"};
            if (alerts_raise(db, &a, NULL, NULL, &err) != 0) {
                log_warn("zoho: cannot raise the zoho_mint_limit alert: %s", err);
                free(err);
            }
            free(msg);
            return -1;
        }
    }
    bool maybe;
    rc = mint_http(c, m, &maybe, e);
    if (rc == 0 || maybe) {
        const char *p[] = {cid, zc->instance, rc == 0 ? "true" : "false"};
        if (db_cmd(db,
                   "INSERT INTO tds.zoho_token_mints (client_id, instance, ok)"
                   " VALUES ($1, $2, $3::boolean)",
                   3, p, &err) != 0)
            goto dbfail_tx_minted;
    }
    if (rc == 0) {
        char ms[24];
        snprintf(ms, sizeof ms, "%lld", m->remaining_ms);
        char *sealed = token_seal(zc->token_key, cid, m->token);
        if (sealed == NULL) {
            err = xstrdup("cannot seal the access token (libcrypto)");
            goto dbfail_tx_minted;
        }
        const char *p[] = {cid, sealed, m->api_domain, ms, zc->instance};
        int stored = db_cmd(db,
                   "INSERT INTO tds.zoho_token AS t (client_id, access_token, api_domain,"
                   " minted_at, expires_at, minted_by, updated_at)"
                   " VALUES ($1, $2, $3, clock_timestamp(),"
                   " clock_timestamp() + make_interval(secs => $4::bigint / 1000.0), $5,"
                   " clock_timestamp())"
                   " ON CONFLICT (client_id) DO UPDATE SET access_token = EXCLUDED.access_token,"
                   " api_domain = EXCLUDED.api_domain, minted_at = EXCLUDED.minted_at,"
                   " expires_at = EXCLUDED.expires_at, minted_by = EXCLUDED.minted_by,"
                   " updated_at = EXCLUDED.updated_at",
                   5, p, &err);
        free(sealed);
        if (stored != 0)
            goto dbfail_tx_minted;
        atomic_fetch_add(&zc->minted, 1);
    }
    if (db_commit(db, &err) != 0)
        goto dbfail_minted;
    if (rc == 0 || maybe)
        local_mint_note(zc, time_wall_ms());
    if (rc == 0 && alerts_resolve(db, "zoho_mint_limit", NULL, &err) != 0) {
        log_warn("zoho: cannot resolve the zoho_mint_limit alert: %s", err);
        free(err);
    }
    free(lockkey);
    return rc;

dbfail_tx_minted:
    db_rollback(db);
dbfail_minted:
    /* The token is good; only the sharing failed. */
    zoho_db_warn(zc, "sharing the access token", err);
    free(err);
    free(lockkey);
    local_mint_note(zc, time_wall_ms());
    if (rc == 0)
        atomic_fetch_add(&zc->minted, 1);
    return rc;
dbfail_tx:
    PQclear(r);
    db_rollback(db);
dbfail:
    zoho_db_warn(zc, "reading the shared access token", err);
    free(err);
    free(lockkey);
    return -2;
}

int zoho_token_ensure(struct zoho_conn *c, struct zoho_error *e)
{
    return zoho_token_current(c, e);
}

int zoho_token_current(struct zoho_conn *c, struct zoho_error *e)
{
    struct zoho_client *zc = c->zc;
    pthread_mutex_lock(&zc->tok_mu);
    for (;;) {
        long long now = time_wall_ms();
        if (token_fresh(zc, now)) {
            copy_to_conn(c);
            pthread_mutex_unlock(&zc->tok_mu);
            return 0;
        }
        if (c->stop != NULL && atomic_load(c->stop)) {
            pthread_mutex_unlock(&zc->tok_mu);
            zoho_error_set(e, ZOHO_ERR_CANCELLED, 0, -1, TOKEN_ENDPOINT, 0, "cancelled");
            return -1;
        }
        if (zc->refreshing) {
            if (token_usable(zc, now)) {
                /* Someone refreshes ahead of expiry: the old one still works. */
                copy_to_conn(c);
                pthread_mutex_unlock(&zc->tok_mu);
                return 0;
            }
            long long seq = zc->refresh_seq;
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_nsec += 200 * 1000000L;
            if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
            }
            pthread_cond_timedwait(&zc->tok_cv, &zc->tok_mu, &ts);
            if (zc->refresh_seq != seq && !token_usable(zc, time_wall_ms()) &&
                zc->last_refresh_err.kind != ZOHO_ERR_NONE) {
                copy_error(e, &zc->last_refresh_err);
                pthread_mutex_unlock(&zc->tok_mu);
                return -1;
            }
            continue;
        }
        if (now < zc->refresh_block_until_ms) {
            if (token_usable(zc, now)) {
                copy_to_conn(c);
                pthread_mutex_unlock(&zc->tok_mu);
                return 0;
            }
            copy_error(e, &zc->last_refresh_err);
            pthread_mutex_unlock(&zc->tok_mu);
            return -1;
        }
        /* Our turn to refresh. */
        zc->refreshing = true;
        char *bad = zc->token_bad && zc->token ? xstrdup(zc->token) : NULL;
        pthread_mutex_unlock(&zc->tok_mu);

        struct minted m = {0};
        struct zoho_error e2 = {0};
        int rc = -2;
        if (zc->db_tok != NULL)
            rc = refresh_db(c, bad, &m, &e2);
        if (rc == -2)
            rc = refresh_local(c, &m, &e2);
        if (bad != NULL) {
            explicit_bzero(bad, strlen(bad));
            free(bad);
        }
        /* Rejected credentials stop every sync: say so where people look.
         * (One attempt a minute at most: the cooldown below.) */
        if (rc != 0 && e2.kind == ZOHO_ERR_AUTH)
            zoho_auth_alert(zc, &e2);

        pthread_mutex_lock(&zc->tok_mu);
        zc->refreshing = false;
        zc->refresh_seq++;
        now = time_wall_ms();
        if (rc == 0) {
            if (zc->token != NULL) {
                explicit_bzero(zc->token, strlen(zc->token));
                free(zc->token);
            }
            zc->token = m.token;
            m.token = NULL;
            zc->token_bad = false;
            zc->tok_gen++;
            zc->tok_expires_ms = now + m.remaining_ms;
            zc->tok_refresh_ms = zc->tok_expires_ms - refresh_margin_ms(m.ttl_ms);
            if (m.api_domain != NULL && domain_acceptable(zc, m.api_domain)) {
                if (!zc->books_override) {
                    free(zc->books_url);
                    zc->books_url = xasprintf("%s/books/v3", m.api_domain);
                }
                if (!zc->inventory_override) {
                    free(zc->inventory_url);
                    zc->inventory_url = xasprintf("%s/inventory/v1", m.api_domain);
                }
            }
            zoho_error_clear(&zc->last_refresh_err);
            zc->refresh_block_until_ms = 0;
            minted_free(&m);
            pthread_cond_broadcast(&zc->tok_cv);
            continue; /* loops to the fresh-token path */
        }
        minted_free(&m);
        long long cool = e2.kind == ZOHO_ERR_AUTH          ? 60000
                         : e2.kind == ZOHO_ERR_MINT_LIMIT ? e2.retry_after_ms
                         : e2.kind == ZOHO_ERR_CANCELLED  ? 0
                                                          : 2000;
        if (cool > 60000)
            cool = 60000;
        if (cool < 0)
            cool = 0;
        zc->refresh_block_until_ms = now + cool;
        copy_error(&zc->last_refresh_err, &e2);
        pthread_cond_broadcast(&zc->tok_cv);
        if (token_usable(zc, now)) {
            /* Refresh ahead failed; the current token still has time. */
            log_warn("zoho: %s (still using the current token)",
                     e2.message ? e2.message : "token refresh failed");
            copy_to_conn(c);
            pthread_mutex_unlock(&zc->tok_mu);
            zoho_error_clear(&e2);
            return 0;
        }
        pthread_mutex_unlock(&zc->tok_mu);
        zoho_error_clear(e);
        *e = e2;
        return -1;
    }
}

void zoho_token_invalidate(struct zoho_conn *c)
{
    struct zoho_client *zc = c->zc;
    pthread_mutex_lock(&zc->tok_mu);
    if (zc->token != NULL && c->token != NULL && str_eq(zc->token, c->token)) {
        zc->token_bad = true;
        zc->refresh_block_until_ms = 0;
    }
    pthread_mutex_unlock(&zc->tok_mu);
}
