/*
 * client.c: the shared client and the per-thread connections, and the one
 * request loop every API call goes through: token, limiter, HTTP, then the
 * answer classified (policy.c) into use it, refresh the token once, wait for
 * the next minute, back off with full jitter and retry, or report.  Also the
 * single-record calls: a record, /itemdetails in batches, an item's image.
 */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "tds/db.h"
#include "tds/log.h"
#include "tds/alerts.h"
#include "zoho_internal.h"

#include <openssl/crypto.h>

#include "tds/tokencrypt.h"

#define JSON_MAX_BODY (64u * 1024u * 1024u)

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;

static void curl_init_once(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

/* ---- errors ---- */

void zoho_error_clear(struct zoho_error *e)
{
    if (e == NULL)
        return;
    free(e->message);
    free(e->endpoint);
    memset(e, 0, sizeof *e);
}

void zoho_error_set(struct zoho_error *e, enum zoho_err_kind kind, int http_status, int code,
                    const char *endpoint, int page, const char *fmt, ...)
{
    zoho_error_clear(e);
    va_list ap;
    va_start(ap, fmt);
    char *raw = xvasprintf(fmt, ap);
    va_end(ap);
    /* Stored as is (queue last_error, dead_letter, sync_runs.error): valid
     * UTF-8 whatever Zoho sent, cut on a character boundary. */
    char *red = log_redact(raw);
    free(raw);
    e->message = utf8_truncate(red, ZOHO_ERROR_MAX, NULL);
    free(red);
    e->kind = kind;
    e->http_status = http_status;
    e->zoho_code = code;
    e->endpoint = endpoint ? xstrdup(endpoint) : NULL;
    e->page = page;
}

char *zoho_error_format(const struct zoho_error *e)
{
    struct strbuf sb = {0};
    if (e->endpoint != NULL) {
        strbuf_puts(&sb, e->endpoint);
        if (e->page > 0)
            strbuf_printf(&sb, " page %d", e->page);
        strbuf_puts(&sb, ": ");
    }
    strbuf_puts(&sb, e->message ? e->message : zoho_err_kind_name(e->kind));
    return strbuf_detach(&sb);
}

char *zoho_outside_text(const char *s, size_t max)
{
    bool cut;
    char *t = utf8_truncate(s, max, &cut);
    for (char *p = t; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f) /* ASCII: never inside a character */
            *p = ' ';
    struct strbuf sb = {0};
    strbuf_puts(&sb, t);
    free(t);
    if (cut)
        strbuf_puts(&sb, "...");
    char *raw = strbuf_detach(&sb);
    char *red = log_redact(raw);
    free(raw);
    return red;
}

/* ---- time and randomness ---- */

bool zoho_sleep(struct zoho_conn *c, long long ms)
{
    long long end = time_mono_ms() + ms;
    for (;;) {
        if (c != NULL && c->stop != NULL && atomic_load(c->stop))
            return false;
        long long left = end - time_mono_ms();
        if (left <= 0)
            return true;
        if (left > 50)
            left = 50;
        struct timespec ts = {left / 1000, (left % 1000) * 1000000L};
        nanosleep(&ts, NULL);
    }
}

long long zoho_jitter(struct zoho_client *zc, long long max_ms)
{
    if (max_ms <= 0)
        return 0;
    pthread_mutex_lock(&zc->rng_mu);
    uint64_t x = zoho_rng_next(&zc->rng);
    pthread_mutex_unlock(&zc->rng_mu);
    return (long long)(x % (uint64_t)(max_ms + 1));
}

long long zoho_backoff(struct zoho_client *zc, int attempt)
{
    pthread_mutex_lock(&zc->rng_mu);
    long long ms =
        zoho_backoff_ms(attempt, zc->opts.backoff_base_ms, zc->opts.backoff_max_ms, &zc->rng);
    pthread_mutex_unlock(&zc->rng_mu);
    return ms;
}

/* ---- client and connections ---- */

static char *default_instance(void)
{
    char host[256];
    if (gethostname(host, sizeof host) != 0)
        snprintf(host, sizeof host, "localhost");
    host[sizeof host - 1] = '\0';
    return xasprintf("%s-%ld", host, (long)getpid());
}

struct zoho_client *zoho_client_new(const struct tds_config *cfg,
                                    const struct zoho_client_opts *opts, char **err)
{
    static const struct {
        size_t off;
        const char *key;
    } required[] = {
        {offsetof(struct tds_config, zoho.organization_id), "zoho.organization_id"},
        {offsetof(struct tds_config, zoho.client_id), "zoho.client_id"},
        {offsetof(struct tds_config, zoho.client_secret), "zoho.client_secret"},
        {offsetof(struct tds_config, zoho.refresh_token), "zoho.refresh_token"},
    };
    for (size_t i = 0; i < TDS_ARRAY_LEN(required); i++) {
        const char *v = *(char *const *)((const char *)cfg + required[i].off);
        if (str_empty(v)) {
            *err = xasprintf("zoho: %s is not set", required[i].key);
            return NULL;
        }
    }
    unsigned char key[TOKEN_KEY_LEN];
    if (token_key(cfg, key, err) != 0)
        return NULL;
    pthread_once(&curl_once, curl_init_once);
    config_register_secrets(cfg);

    struct zoho_client *zc = xcalloc(1, sizeof *zc);
    zc->cfg = cfg;
    memcpy(zc->token_key, key, sizeof zc->token_key);
    OPENSSL_cleanse(key, sizeof key);
    atomic_init(&zc->timeout_s, cfg->zoho.timeout_seconds > 0 ? cfg->zoho.timeout_seconds : 30);
    if (opts != NULL)
        zc->opts = *opts;
    if (zc->opts.max_attempts <= 0)
        zc->opts.max_attempts = ZOHO_DEFAULT_MAX_ATTEMPTS;
    if (zc->opts.backoff_base_ms <= 0)
        zc->opts.backoff_base_ms = 500;
    if (zc->opts.backoff_max_ms <= 0)
        zc->opts.backoff_max_ms = 30000;
    if (zc->opts.mint_limit <= 0)
        zc->opts.mint_limit = 10;
    if (zc->opts.mint_window_s <= 0)
        zc->opts.mint_window_s = 600;
    if (zc->opts.rate_headroom_pct <= 0 || zc->opts.rate_headroom_pct > 100)
        zc->opts.rate_headroom_pct = 98;
    if (zc->opts.usage_flush_ms <= 0)
        zc->opts.usage_flush_ms = 10000;
    zc->instance = zc->opts.instance ? xstrdup(zc->opts.instance) : default_instance();
    zc->opts.instance = NULL;
    zc->org = xstrdup(cfg->zoho.organization_id);
    zc->accounts_url = config_accounts_url(cfg);
    zc->books_url = config_books_url(cfg);
    zc->inventory_url = config_inventory_url(cfg);
    zc->books_override = !str_empty(cfg->zoho.books_url);
    zc->inventory_override = !str_empty(cfg->zoho.inventory_url);
    zc->rng = zc->opts.seed ? zc->opts.seed
                            : (uint64_t)time_wall_ms() * 2654435761u ^ (uint64_t)getpid();
    pthread_mutex_init(&zc->rng_mu, NULL);
    zoho_token_init(zc);
    zoho_outage_init(zc);

    if (!zc->opts.no_db) {
        zc->db_tok = db_connect(cfg, err);
        if (zc->db_tok != NULL && db_check_schema(zc->db_tok, err) == 0)
            zc->db_rl = db_connect(cfg, err);
        if (zc->db_rl == NULL) {
            char *inner = *err;
            *err = xasprintf("zoho client: %s", inner ? inner : "database unavailable");
            free(inner);
            if (zc->db_tok)
                PQfinish(zc->db_tok);
            zc->db_tok = NULL;
            zoho_token_destroy(zc);
            zoho_outage_destroy(zc);
            pthread_mutex_destroy(&zc->rng_mu);
            free(zc->books_url);
            free(zc->inventory_url);
            free(zc->accounts_url);
            free(zc->org);
            free(zc->instance);
            free(zc);
            return NULL;
        }
    }
    zoho_rate_init(zc);
    return zc;
}

void zoho_client_reload(struct zoho_client *zc, const struct tds_config *cfg)
{
    atomic_store(&zc->timeout_s, cfg->zoho.timeout_seconds > 0 ? cfg->zoho.timeout_seconds : 30);
    zoho_rate_reload(zc, cfg);
    log_info("zoho: now %d calls a minute, %d a day, %d in flight; %d s a request",
             cfg->zoho.rate_limit.per_minute > 0 ? cfg->zoho.rate_limit.per_minute : 100,
             config_rate_per_day(cfg), config_rate_concurrency(cfg),
             atomic_load(&zc->timeout_s));
}

void zoho_client_free(struct zoho_client *zc)
{
    if (zc == NULL)
        return;
    zoho_rate_destroy(zc);
    zoho_token_destroy(zc);
    zoho_outage_destroy(zc);
    pthread_mutex_destroy(&zc->rng_mu);
    if (zc->db_tok)
        PQfinish(zc->db_tok);
    if (zc->db_rl)
        PQfinish(zc->db_rl);
    free(zc->books_url);
    free(zc->inventory_url);
    free(zc->accounts_url);
    free(zc->org);
    free(zc->instance);
    free(zc);
}

void zoho_client_stats(struct zoho_client *zc, struct zoho_client_stats *out)
{
    out->requests = atomic_load(&zc->requests);
    out->retries = atomic_load(&zc->retries);
    out->status_429 = atomic_load(&zc->s429);
    out->status_401 = atomic_load(&zc->s401);
    out->tokens_minted = atomic_load(&zc->minted);
    out->tokens_adopted = atomic_load(&zc->adopted);
    out->day_remaining = atomic_load(&zc->day_remaining);
    out->day_reset_s = atomic_load(&zc->day_reset_s);
    pthread_mutex_lock(&zc->rl_mu);
    out->concurrency_share = zc->share;
    pthread_mutex_unlock(&zc->rl_mu);
}

struct zoho_conn *zoho_conn_new(struct zoho_client *zc, atomic_bool *stop)
{
    struct zoho_conn *c = xcalloc(1, sizeof *c);
    c->zc = zc;
    c->stop = stop;
    c->h = zoho_http_handle();
    c->tok_gen = -1;
    return c;
}

void zoho_conn_free(struct zoho_conn *c)
{
    if (c == NULL)
        return;
    curl_easy_cleanup(c->h);
    if (c->token != NULL) {
        explicit_bzero(c->token, strlen(c->token));
        free(c->token);
    }
    if (c->auth.buf != NULL)
        explicit_bzero(c->auth.buf, c->auth.len);
    strbuf_free(&c->auth);
    free(c->books_url);
    free(c->inventory_url);
    free(c);
}

long long zoho_conn_calls(const struct zoho_conn *c)
{
    return c->calls;
}

long long zoho_conn_take_calls(struct zoho_conn *c)
{
    long long n = c->calls;
    c->calls = 0;
    return n;
}

/* ---- the request loop ---- */

struct call {
    enum zoho_product product;
    const char *path;       /* "/items/123" (encoded) */
    const char *query;      /* NULL or "a=1&b=2" */
    const char *label;      /* tds.api_usage endpoint: "inventory/items/{id}" */
    int page;
    bool binary;            /* an image: no JSON expected on success */
    size_t max_body;
};

static int json_code(const cJSON *doc, const char **message)
{
    const cJSON *code = cJSON_GetObjectItemCaseSensitive(doc, "code");
    const cJSON *msg = cJSON_GetObjectItemCaseSensitive(doc, "message");
    *message = cJSON_IsString(msg) ? msg->valuestring : NULL;
    long long v;
    if (cJSON_IsNumber(code))
        return (int)code->valuedouble;
    if (cJSON_IsString(code) && str_to_ll(code->valuestring, &v))
        return (int)v;
    return -1;
}

static bool image_type(const char *ctype)
{
    static const char *const ok[] = {"image/gif", "image/png", "image/jpeg", "image/jpg",
                                     "image/bmp", "image/x-ms-bmp", "image/webp"};
    for (size_t i = 0; i < TDS_ARRAY_LEN(ok); i++) {
        size_t n = strlen(ok[i]);
        if (strncasecmp(ctype, ok[i], n) == 0 && (ctype[n] == '\0' || ctype[n] == ';'))
            return true;
    }
    return false;
}

/*
 * Describes why an answer was not usable, for the message of the last
 * attempt: "HTTP 500 code 1000: Internal error", "the body is HTML, not
 * JSON (Content-Type text/html)", "truncated or malformed JSON (parse
 * stopped at byte 812 of 4096)".
 */
static char *describe(const struct zoho_http_resp *r, int hr, const cJSON *doc, size_t parse_end,
                      int code, const char *zmsg, bool binary)
{
    if (hr != 0) {
        char *t = zoho_outside_text(r->curl_err, 200);
        char *s = xasprintf("no complete answer: %s", t);
        free(t);
        return s;
    }
    if (r->too_large)
        return xasprintf("HTTP %ld: the body exceeds %zu bytes", r->status, r->max_body);
    struct strbuf sb = {0};
    strbuf_printf(&sb, "HTTP %ld", r->status);
    if (code >= 0)
        strbuf_printf(&sb, " code %d", code);
    if (zmsg != NULL) {
        char *t = zoho_outside_text(zmsg, 300);
        strbuf_printf(&sb, ": %s", t);
        free(t);
        return strbuf_detach(&sb);
    }
    const char *ct = r->ctype[0] ? r->ctype : "none";
    if (doc == NULL && !(binary && r->status < 300)) {
        const char *b = r->body.buf;
        while (*b == ' ' || *b == '\n' || *b == '\r' || *b == '\t')
            b++;
        if (r->body.len == 0)
            strbuf_printf(&sb, ": empty body (Content-Type %s)", ct);
        else if (*b == '<')
            strbuf_printf(&sb, ": the body is HTML, not JSON (Content-Type %s)", ct);
        else if (*b == '{' || *b == '[')
            strbuf_printf(&sb,
                          ": truncated or malformed JSON (parse stopped at byte %zu of %zu, "
                          "Content-Type %s)",
                          parse_end, r->body.len, ct);
        else
            strbuf_printf(&sb, ": the body is not JSON (Content-Type %s)", ct);
    } else if (!binary && !zoho_http_is_json(r->ctype)) {
        strbuf_printf(&sb, ": wrong Content-Type %s for a JSON body", ct);
    } else if (binary) {
        strbuf_printf(&sb, ": Content-Type %s is not an image type tds accepts", ct);
    }
    return strbuf_detach(&sb);
}

/*
 * One API call with retries.  On success returns 0 and either *doc (JSON
 * calls) or *img (binary calls; the response with its body).  -1 with *e.
 */
static int call_api(struct zoho_conn *c, const struct call *q, cJSON **doc,
                    struct zoho_http_resp *img, struct zoho_error *e)
{
    struct zoho_client *zc = c->zc;
    char *endpoint = xasprintf("GET %s", q->path);
    bool refreshed = false;
    long timeout = atomic_load(&zc->timeout_s);
    int rc = -1;
    *doc = NULL;

    for (int attempt = 1;; attempt++) {
        if (c->stop != NULL && atomic_load(c->stop)) {
            zoho_error_set(e, ZOHO_ERR_CANCELLED, 0, -1, endpoint, q->page, "cancelled");
            break;
        }
        if (zoho_scope_denied(zc, q->label)) {
            char sc[96];
            zoho_scope_name(q->label, sc, sizeof sc);
            zoho_error_set(e, ZOHO_ERR_SCOPE, 401, 57, endpoint, q->page,
                           "the access token lacks the OAuth scope %s (401 code 57 here while "
                           "it works elsewhere): not called",
                           sc);
            e->retried = true;
            break;
        }
        if (zoho_block_wait(c, endpoint, q->page, e) != 0)
            break;
        int trc = zoho_token_current(c, e);
        if (trc != 0 && e->kind == ZOHO_ERR_TOKEN) {
            /* The accounts server unreachable: back off like an API outage. */
            long long age = zoho_outage_age_ms(zc);
            long long max_ms = (zc->cfg->zoho.max_wait_seconds > 0
                                    ? zc->cfg->zoho.max_wait_seconds
                                    : 3600) * 1000LL;
            if (age > 0 && age < max_ms) {
                zoho_error_clear(e);
                if (!zoho_sleep(c, zoho_backoff(zc, attempt))) {
                    zoho_error_set(e, ZOHO_ERR_CANCELLED, 0, -1, endpoint, q->page,
                                   "cancelled");
                    break;
                }
                continue;
            }
        }
        if (trc != 0 || zoho_rate_acquire(c, e) != 0) {
            free(e->endpoint);
            e->endpoint = xstrdup(endpoint);
            e->page = q->page;
            e->retried = true; /* the token layer retries (and the limiter waits) itself */
            break;
        }
        struct strbuf url = {0};
        strbuf_puts(&url, q->product == ZOHO_BOOKS ? c->books_url : c->inventory_url);
        strbuf_puts(&url, q->path);
        strbuf_puts(&url, "?organization_id=");
        zoho_url_encode(&url, zc->org);
        if (!str_empty(q->query)) {
            strbuf_putc(&url, '&');
            strbuf_puts(&url, q->query);
        }
        struct zoho_http_resp r;
        zoho_http_resp_init(&r, q->max_body);
        int hr = zoho_http_perform(c->h, url.buf, c->auth.buf, NULL, timeout, &r);
        strbuf_free(&url);
        zoho_rate_release(c, hr == 0 ? &r : NULL);
        c->calls++;
        atomic_fetch_add(&zc->requests, 1);
        zoho_usage_count(zc, q->label, hr == 0 ? (int)r.status : 0);

        bool transport_ok = hr == 0;
        if (r.too_large) {
            char *d = describe(&r, 0, NULL, 0, -1, NULL, q->binary);
            zoho_error_set(e, ZOHO_ERR_BAD_RESPONSE, (int)r.status, -1, endpoint, q->page, "%s",
                           d);
            free(d);
            zoho_http_resp_free(&r);
            break;
        }
        cJSON *j = NULL;
        const char *parse_end = NULL;
        const char *zmsg = NULL;
        int code = -1;
        bool is_json = zoho_http_is_json(r.ctype);
        bool body_ok;
        if (transport_ok && r.body.len > 0 && (!q->binary || is_json || r.status >= 300)) {
            j = entity_json_parse_opts(r.body.buf, r.body.len, &parse_end, false); /* exact numbers */
            if (j != NULL && !cJSON_IsObject(j)) {
                cJSON_Delete(j);
                j = NULL;
            }
            if (j != NULL)
                code = json_code(j, &zmsg);
        }
        if (q->binary)
            body_ok = r.status >= 300 ? j != NULL : (j == NULL && image_type(r.ctype));
        else
            body_ok = j != NULL && is_json;
        if (q->binary && r.status < 300 && j != NULL) {
            /* A JSON answer where an image was expected: Zoho's error. */
            body_ok = code > 0;
            if (code == 0)
                code = -1;
        }
        if (r.status >= 300 && j == NULL)
            body_ok = false;
        enum zoho_err_kind kind;
        enum zoho_action act = zoho_classify(transport_ok, r.status, code, body_ok, &kind);
        /* Unreachable: no connection (DNS, refused, TLS), or a gateway's
         * page instead of Zoho's JSON.  Zoho's own answer ends an outage. */
        bool outage = transport_ok ? (r.status == 502 || r.status == 503 || r.status == 504) &&
                                         j == NULL
                                   : zoho_outage_curl(r.curl_code);
        long long outage_ms = 0;
        if (act == ZA_OK || !outage) {
            zoho_outage_note(zc, false, transport_ok && (j != NULL || act == ZA_OK),
                             (int)r.status, c->tok_gen, NULL);
        } else {
            char *d = describe(&r, hr, NULL, 0, -1, NULL, q->binary);
            outage_ms = zoho_outage_note(zc, true, false, (int)r.status, c->tok_gen, d);
            free(d);
        }
        if (act == ZA_OK) {
            zoho_scope_note_ok(zc, q->label);
            if (q->binary) {
                *img = r;
            } else {
                *doc = j;
                j = NULL;
                zoho_http_resp_free(&r);
            }
            rc = 0;
            break;
        }
        char *why = describe(&r, hr, j, parse_end ? (size_t)(parse_end - r.body.buf) : 0, code,
                             zmsg, q->binary);
        long long retry_after = r.retry_after_ms;
        long long reset_s = r.rl_reset;
        long long remaining = r.rl_remaining;
        long status = r.status;
        cJSON_Delete(j);
        zoho_http_resp_free(&r);
        if (status == 429)
            atomic_fetch_add(&zc->s429, 1);

        if (act == ZA_REFRESH) {
            atomic_fetch_add(&zc->s401, 1);
            /* Code 57 is both "expired" and "not in your scope".  On an
             * endpoint that never answered while the same token works
             * elsewhere it is the scope: a refresh would not help and
             * would spend Zoho's 10 mints per 10 minutes. */
            if (code == 57 && !zoho_scope_seen_ok(zc, q->label) &&
                (zoho_token_proven(zc, c->tok_gen) ||
                 (refreshed && zoho_any_ok(zc)))) {
                const char *sc = zoho_scope_deny(zc, q->label);
                zoho_error_set(e, ZOHO_ERR_SCOPE, (int)status, code, endpoint, q->page,
                               "%s: the access token lacks the OAuth scope %s (it works on "
                               "other endpoints); no token refresh",
                               why, sc);
                e->retried = true;
                free(why);
                break;
            }
            if (!refreshed) {
                refreshed = true;
                zoho_token_invalidate(c);
                log_info("zoho: %s: %s: refreshing the access token once", endpoint, why);
                free(why);
                attempt--; /* the retry after a refresh is not a failed attempt */
                continue;
            }
            zoho_error_set(e, ZOHO_ERR_AUTH, (int)status, code, endpoint, q->page,
                           "%s: the access token was refused again after a refresh "
                           "(authorization or scope problem)",
                           why);
            free(why);
            zoho_auth_alert(zc, e);
            break;
        }
        if (act == ZA_FAIL_DAY) {
            zoho_rate_block_day(zc, reset_s);
            {
                long long now = time_wall_ms();
                zoho_block_set(zc,
                               now + (reset_s > 0 ? reset_s * 1000
                                                  : 86400000LL - now % 86400000LL),
                               (int)status, code, why);
            }
            zoho_error_set(e, ZOHO_ERR_RATE_DAY, (int)status, code, endpoint, q->page,
                           "%s: daily API limit of the organization reached; calls stop "
                           "until it resets",
                           why);
            long long now = time_wall_ms();
            e->retry_after_ms = reset_s > 0 ? reset_s * 1000 : 86400000LL - now % 86400000LL;
            free(why);
            break;
        }
        if (act == ZA_FAIL) {
            zoho_error_set(e, kind, (int)status, code, endpoint, q->page, "%s", why);
            free(why);
            break;
        }
        /* Retry-After (a 429, a 503) and an exhausted window's
         * X-Rate-Limit-Reset are honoured however long: the fleet's block. */
        long long block_ms = 0;
        if (retry_after > 0 && (status == 429 || status == 503))
            block_ms = retry_after;
        if (remaining == 0 && reset_s > 60 && reset_s * 1000 > block_ms)
            block_ms = reset_s * 1000;
        if (block_ms > 0) {
            zoho_block_set(zc, time_wall_ms() + block_ms, (int)status, code, why);
            retry_after = 0; /* zoho_block_wait waits (or fails) before the next request */
        }
        long long max_wait_ms = (zc->cfg->zoho.max_wait_seconds > 0
                                     ? zc->cfg->zoho.max_wait_seconds
                                     : 3600) * 1000LL;
        if (attempt >= zc->opts.max_attempts && outage && outage_ms < max_wait_ms) {
            /* Zoho unreachable: back off and keep trying (bounded by
             * zoho.max_wait_seconds), do not fail the run fast. */
        } else if (attempt >= zc->opts.max_attempts) {
            if (outage)
                zoho_error_set(e, kind, (int)status, code, endpoint, q->page,
                               "Zoho unreachable for %lld s, gave up after %d attempts: %s",
                               outage_ms / 1000, attempt, why);
            else
                zoho_error_set(e, kind, (int)status, code, endpoint, q->page,
                               "gave up after %d attempts: %s", attempt, why);
            e->retried = true;
            free(why);
            break;
        }
        atomic_fetch_add(&zc->retries, 1);
        long long wait;
        if (act == ZA_WAIT_MINUTE) {
            zoho_rate_pause_minute(c, reset_s); /* the next acquire waits for it */
            wait = 0;
        } else if (act == ZA_RETRY_SHORT) {
            wait = 1000 + zoho_jitter(zc, 1000);
        } else {
            wait = zoho_backoff(zc, attempt);
        }
        if (retry_after > wait)
            wait = retry_after > max_wait_ms ? max_wait_ms : retry_after;
        char pg[24] = "";
        if (q->page > 0)
            snprintf(pg, sizeof pg, " page %d", q->page);
        log_info("zoho: %s%s: %s: retry %d/%d in %lld ms", endpoint, pg, why, attempt,
                 zc->opts.max_attempts - 1, wait);
        free(why);
        if (!zoho_sleep(c, wait)) {
            zoho_error_set(e, ZOHO_ERR_CANCELLED, 0, -1, endpoint, q->page, "cancelled");
            break;
        }
    }
    free(endpoint);
    return rc;
}

static const char *product_name(enum zoho_product p)
{
    return p == ZOHO_BOOKS ? "books" : "inventory";
}

/* Interned usage labels ("inventory/items"), kept for the process's life. */
static const char *usage_label(enum zoho_product p, const char *tmpl)
{
    static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
    static char *labels[128];
    static size_t n;
    char buf[160];
    snprintf(buf, sizeof buf, "%s%s", product_name(p), tmpl);
    pthread_mutex_lock(&mu);
    const char *found = NULL;
    for (size_t i = 0; i < n && found == NULL; i++)
        if (strcmp(labels[i], buf) == 0)
            found = labels[i];
    if (found == NULL) {
        if (n < TDS_ARRAY_LEN(labels)) {
            labels[n] = xstrdup(buf);
            found = labels[n++];
        } else {
            found = "other";
        }
    }
    pthread_mutex_unlock(&mu);
    return found;
}

/* "/items/123" → "/items/{id}"; "/items/123/image" → "/items/{id}/image". */
static const char *label_for_path(enum zoho_product p, const char *path)
{
    char buf[128];
    size_t o = 0;
    for (const char *s = path; *s && o + 5 < sizeof buf;) {
        if (*s == '/') {
            buf[o++] = *s++;
            const char *seg = s;
            while (*s && *s != '/')
                s++;
            size_t n = (size_t)(s - seg);
            bool digits = n > 0;
            for (size_t i = 0; i < n; i++)
                if (seg[i] < '0' || seg[i] > '9')
                    digits = false;
            if (digits) {
                memcpy(buf + o, "{id}", 4);
                o += 4;
            } else {
                if (o + n >= sizeof buf - 1)
                    n = sizeof buf - 1 - o;
                memcpy(buf + o, seg, n);
                o += n;
            }
        } else {
            buf[o++] = *s++;
        }
    }
    buf[o] = '\0';
    return usage_label(p, buf);
}

int zoho_get_json(struct zoho_conn *c, enum zoho_product product, const char *path,
                  const char *query, int page, cJSON **doc, struct zoho_error *e)
{
    struct call q = {
        .product = product,
        .path = path,
        .query = query,
        .label = label_for_path(product, path),
        .page = page,
        .max_body = JSON_MAX_BODY,
    };
    return call_api(c, &q, doc, NULL, e);
}

int zoho_get_record(struct zoho_conn *c, const struct entity_desc *d, const char *id, cJSON **rec,
                    struct zoho_error *e)
{
    *rec = NULL;
    if (str_empty(id)) {
        zoho_error_set(e, ZOHO_ERR_ARG, 0, -1, d->list_path, 0, "%s: empty id", d->name);
        return -1;
    }
    struct strbuf path = {0};
    strbuf_printf(&path, "%s/", d->list_path);
    zoho_url_encode(&path, id);
    cJSON *doc = NULL;
    int rc = zoho_get_json(c, d->product, path.buf, NULL, 0, &doc, e);
    if (rc == 0) {
        cJSON *r = cJSON_DetachItemFromObjectCaseSensitive(doc, d->singular);
        if (!cJSON_IsObject(r)) {
            zoho_error_set(e, ZOHO_ERR_BAD_RESPONSE, 200, 0, NULL, 0,
                           "GET %s: the answer has no \"%s\" object", path.buf, d->singular);
            cJSON_Delete(r);
            rc = -1;
        } else {
            *rec = r;
        }
    }
    cJSON_Delete(doc);
    strbuf_free(&path);
    return rc;
}

int zoho_get_itemdetails(struct zoho_conn *c, const char *const *ids, size_t n, cJSON **items,
                         struct zoho_error *e)
{
    *items = NULL;
    if (n == 0 || n > ZOHO_ITEMDETAILS_MAX) {
        zoho_error_set(e, ZOHO_ERR_ARG, 0, -1, "GET /itemdetails", 0,
                       "%zu ids asked for; between 1 and %d per call", n, ZOHO_ITEMDETAILS_MAX);
        return -1;
    }
    struct strbuf q = {0};
    strbuf_puts(&q, "item_ids=");
    for (size_t i = 0; i < n; i++) {
        if (i)
            strbuf_puts(&q, "%2C");
        zoho_url_encode(&q, ids[i]);
    }
    cJSON *doc = NULL;
    int rc = zoho_get_json(c, ZOHO_INVENTORY, "/itemdetails", q.buf, 0, &doc, e);
    strbuf_free(&q);
    if (rc != 0)
        return -1;
    cJSON *arr = cJSON_DetachItemFromObjectCaseSensitive(doc, "items");
    cJSON_Delete(doc);
    if (!cJSON_IsArray(arr)) {
        cJSON_Delete(arr);
        zoho_error_set(e, ZOHO_ERR_BAD_RESPONSE, 200, 0, "GET /itemdetails", 0,
                       "the answer has no \"items\" array");
        return -1;
    }
    *items = arr;
    return 0;
}

int zoho_get_image(struct zoho_conn *c, const char *item_id, struct zoho_blob *out,
                   struct zoho_error *e)
{
    memset(out, 0, sizeof *out);
    struct strbuf path = {0};
    strbuf_puts(&path, "/items/");
    zoho_url_encode(&path, item_id);
    strbuf_puts(&path, "/image");
    struct call q = {
        .product = ZOHO_INVENTORY,
        .path = path.buf,
        .label = usage_label(ZOHO_INVENTORY, "/items/{id}/image"),
        .binary = true,
        .max_body = ZOHO_IMAGE_MAX,
    };
    struct zoho_http_resp r;
    memset(&r, 0, sizeof r);
    cJSON *doc = NULL;
    int rc = call_api(c, &q, &doc, &r, e);
    strbuf_free(&path);
    if (rc != 0)
        return -1;
    out->len = r.body.len;
    out->data = (unsigned char *)strbuf_detach(&r.body);
    snprintf(out->content_type, sizeof out->content_type, "%.*s",
             (int)strcspn(r.ctype, "; "), r.ctype);
    zoho_http_resp_free(&r);
    return 0;
}

void zoho_blob_free(struct zoho_blob *b)
{
    free(b->data);
    memset(b, 0, sizeof *b);
}

void zoho_auth_alert(struct zoho_client *zc, const struct zoho_error *e)
{
    if (zc->db_rl == NULL)
        return; /* no database (tests, benchmarks): the caller's error says it */
    char *msg = zoho_error_format(e);
    struct alert_spec a = {
        .type = "zoho_auth",
        .severity = ALERT_CRITICAL,
        .title = "Zoho authentication failing: every sync is stopped",
        .message = msg,
        .dedup_key = "zoho_auth",
    };
    char *err = NULL;
    pthread_mutex_lock(&zc->rl_mu);
    if (alerts_raise(zc->db_rl, &a, NULL, NULL, &err) != 0) {
        log_warn("zoho: cannot raise the zoho_auth alert: %s", err);
        free(err);
    }
    pthread_mutex_unlock(&zc->rl_mu);
    free(msg);
}
