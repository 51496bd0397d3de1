/*
 * http.c: the simulator's HTTP front on libmicrohttpd (internal thread pool,
 * epoll).  Routes the OAuth token endpoint, the Books (/books/v3) and
 * Inventory (/inventory/v1) APIs and the loopback-only control endpoint
 * (/_sim); checks tokens and the organization; enforces the three rate
 * limits; injects faults; counts every request by endpoint and status.
 * Slow answers and timeouts suspend the connection (a timer thread resumes
 * it), so they never hold a pool thread.
 */
#include "sim.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>

#define JSON_CTYPE "application/json;charset=UTF-8"
#define MAX_BODY (16u << 20)

static const struct sim_config *cfg;
static struct MHD_Daemon *daemon_;

/* ---- faults ---- */

enum fault {
    F_NONE = -1,
    F_500,
    F_429,
    F_TIMEOUT,
    F_TRUNCATE,
    F_MALFORMED,
    F_HTML,
    F_CTYPE,
    F_RESET,
    F_LONGERROR,
    F_BLOCK,
    F_502,
    F_SLOW,
    F_OAUTH500,
    F_TRUNCPAGE,
    F_KINDS
};

static const char *const fault_names[F_KINDS] = {
    "500",   "429",   "timeout",   "truncate", "malformed", "html",
    "ctype", "reset", "longerror", "block",    "502",       "slow",
    "oauth500", "truncpage"};

struct fault_spec {
    double share[F_KINDS];
    long param[F_KINDS]; /* ms for slow, timeout and block; the page for truncpage */
};

/*
 * The longerror fault's message: Zoho's code 4 ("invalid value") in Arabic,
 * with emoji, 397 bytes, so that byte 300 falls inside a character (the
 * four-byte U+1F4E6): a client that cuts it by bytes stores invalid UTF-8.
 */
#define LONG_PART "\u0642\u064a\u0645\u0629 \u063a\u064a\u0631 \u0635\u0627\u0644\u062d\u0629 \u0644\u0644\u062d\u0642\u0644 sku \U0001F4E6"
static const char long_error[] = "Invalid value passed: " LONG_PART " " LONG_PART " " LONG_PART
                                 " " LONG_PART " " LONG_PART " " LONG_PART " " LONG_PART
                                 " " LONG_PART;

static struct {
    pthread_mutex_t mu;
    struct fault_spec spec;
    struct sim_rng rng;
    long hits[F_KINDS];
} flt = {.mu = PTHREAD_MUTEX_INITIALIZER};

static bool fault_parse(const char *spec, struct fault_spec *out, char **err)
{
    memset(out, 0, sizeof(*out));
    out->param[F_SLOW] = 1500;
    out->param[F_TIMEOUT] = 60000;
    out->param[F_TRUNCPAGE] = 2;
    out->param[F_BLOCK] = 1800000;
    if (!spec || !*spec)
        return true;
    char *copy = xstrdup(spec), *save = NULL;
    for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(tok, '=');
        if (!eq) {
            *err = xasprintf("--faults: \"%s\" is not kind=share", tok);
            free(copy);
            return false;
        }
        *eq = '\0';
        int k = -1;
        for (int i = 0; i < F_KINDS; i++)
            if (!strcmp(tok, fault_names[i]))
                k = i;
        if (k < 0) {
            *err = xasprintf("--faults: unknown kind \"%s\" (500, 429, slow, timeout, truncate, "
                             "malformed, html, ctype, reset, longerror, block, 502, oauth500, "
                             "truncpage)",
                             tok);
            free(copy);
            return false;
        }
        char *colon = strchr(eq + 1, ':'), *end;
        if (colon)
            *colon = '\0';
        errno = 0;
        double share = strtod(eq + 1, &end);
        if (errno || end == eq + 1 || *end || share < 0 || share > 1) {
            *err = xasprintf("--faults: share of \"%s\" must be a number from 0 to 1", tok);
            free(copy);
            return false;
        }
        out->share[k] = share;
        if (colon) {
            long long ms;
            if (!str_to_ll(colon + 1, &ms) || ms < 0 || ms > 3600000) {
                *err = xasprintf("--faults: parameter of \"%s\" must be milliseconds (a page "
                                 "for truncpage)",
                                 tok);
                free(copy);
                return false;
            }
            out->param[k] = (long)ms;
        }
    }
    free(copy);
    return true;
}

bool sim_faults_check(const char *spec, char **err)
{
    struct fault_spec s;
    return fault_parse(spec, &s, err);
}

/* Draws the fault for one API request (always two draws: deterministic per request order). */
static enum fault fault_draw(bool *slow, long *slow_ms, long *timeout_ms)
{
    pthread_mutex_lock(&flt.mu);
    double u1 = sim_rng_unit(&flt.rng), u2 = sim_rng_unit(&flt.rng);
    *slow = u1 < flt.spec.share[F_SLOW];
    *slow_ms = flt.spec.param[F_SLOW];
    *timeout_ms = flt.spec.param[F_TIMEOUT];
    enum fault f = F_NONE;
    double acc = 0;
    for (int k = F_500; k <= F_502; k++) {
        acc += flt.spec.share[k];
        if (u2 < acc) {
            f = (enum fault)k;
            break;
        }
    }
    if (*slow)
        flt.hits[F_SLOW]++;
    if (f != F_NONE)
        flt.hits[f]++;
    pthread_mutex_unlock(&flt.mu);
    return f;
}

/* truncpage: whether this list page (always drawn on its own, and only
 * when the fault is on and the page is the one named) arrives truncated. */
static bool truncpage_fault(long page)
{
    pthread_mutex_lock(&flt.mu);
    bool hit = flt.spec.share[F_TRUNCPAGE] > 0 && page == flt.spec.param[F_TRUNCPAGE] &&
               sim_rng_unit(&flt.rng) < flt.spec.share[F_TRUNCPAGE];
    if (hit)
        flt.hits[F_TRUNCPAGE]++;
    pthread_mutex_unlock(&flt.mu);
    return hit;
}

static bool oauth_fault(void)
{
    pthread_mutex_lock(&flt.mu);
    bool hit = sim_rng_unit(&flt.rng) < flt.spec.share[F_OAUTH500];
    if (hit)
        flt.hits[F_OAUTH500]++;
    pthread_mutex_unlock(&flt.mu);
    return hit;
}

/* The token lacks the scope of the image endpoint (issue 17 point 1):
 * GET /items/{id}/image answers 401 code 57 to a valid token. */
static atomic_bool no_image_scope;

/* ---- tokens ---- */

struct token {
    char tok[80];
    long long expires;
};

static struct {
    pthread_mutex_t mu;
    struct token *v;
    size_t n, cap;
    long ttl;
    bool ttl_ms; /* expires_in in milliseconds beside expires_in_sec, as older endpoints */
    long mint_limit, mint_window;
    long long mint_start;
    long mint_count;
    long minted;
    char *refresh;
    bool revoked;
    struct sim_rng rng;
} tok = {.mu = PTHREAD_MUTEX_INITIALIZER};

static bool token_valid(const char *t)
{
    long long now = time_mono_ms();
    bool ok = false;
    pthread_mutex_lock(&tok.mu);
    for (size_t i = 0; i < tok.n; i++)
        if (!strcmp(tok.v[i].tok, t)) {
            ok = tok.v[i].expires > now;
            break;
        }
    pthread_mutex_unlock(&tok.mu);
    return ok;
}

/* ---- rate limits ---- */

struct rl_hdrs {
    bool on;
    long limit, remaining, reset;
};

static struct {
    pthread_mutex_t mu;
    long minute, day, concurrency;
    long long min_start, day_start;
    long min_used, day_used, inflight;
    long hits_minute, hits_day, hits_conc;
} lim = {.mu = PTHREAD_MUTEX_INITIALIZER};

static void rl_fill(struct rl_hdrs *h, long long now)
{
    h->on = lim.day > 0 || lim.minute > 0;
    if (lim.day > 0) {
        h->limit = lim.day;
        h->remaining = lim.day - lim.day_used;
        h->reset = lim.day_start ? (lim.day_start + 86400000 - now + 999) / 1000 : 86400;
    } else if (lim.minute > 0) {
        h->limit = lim.minute;
        h->remaining = lim.minute - lim.min_used;
        h->reset = lim.min_start ? (lim.min_start + 60000 - now + 999) / 1000 : 60;
    }
    if (h->remaining < 0)
        h->remaining = 0;
}

/* Admits one API request: 0, or the Zoho code of the limit it hit (44, 45, 1070). */
static int rl_admit(struct rl_hdrs *h)
{
    long long now = time_mono_ms();
    int code = 0;
    pthread_mutex_lock(&lim.mu);
    if (lim.min_start && now >= lim.min_start + 60000) {
        lim.min_start = 0;
        lim.min_used = 0;
    }
    if (lim.day_start && now >= lim.day_start + 86400000) {
        lim.day_start = 0;
        lim.day_used = 0;
    }
    if (lim.day > 0 && lim.day_used >= lim.day) {
        code = 45;
        lim.hits_day++;
    } else if (lim.minute > 0 && lim.min_used >= lim.minute) {
        code = 44;
        lim.hits_minute++;
    } else if (lim.concurrency > 0 && lim.inflight >= lim.concurrency) {
        code = 1070;
        lim.hits_conc++;
    } else {
        if (!lim.min_start)
            lim.min_start = now;
        if (!lim.day_start)
            lim.day_start = now;
        lim.min_used++;
        lim.day_used++;
        lim.inflight++;
    }
    rl_fill(h, now);
    pthread_mutex_unlock(&lim.mu);
    return code;
}

/* ---- counters ---- */

#define STAT_SLOTS 1024
#define STAT_CODES 16

struct stat_entry {
    char *key;
    int ncodes;
    int code[STAT_CODES]; /* HTTP status; 0 reset, 1 timeout */
    long n[STAT_CODES];
};

static struct {
    pthread_mutex_t mu;
    struct stat_entry slot[STAT_SLOTS];
} st = {.mu = PTHREAD_MUTEX_INITIALIZER};

static void stat_count(const char *key, int code)
{
    if (!key || !*key)
        return;
    uint32_t h = 2166136261u;
    for (const char *p = key; *p; p++)
        h = (h ^ (unsigned char)*p) * 16777619u;
    pthread_mutex_lock(&st.mu);
    for (unsigned i = 0; i < STAT_SLOTS; i++) {
        struct stat_entry *e = &st.slot[(h + i) % STAT_SLOTS];
        if (e->key && strcmp(e->key, key))
            continue;
        if (!e->key)
            e->key = xstrdup(key);
        int j;
        for (j = 0; j < e->ncodes; j++)
            if (e->code[j] == code)
                break;
        if (j == e->ncodes && j < STAT_CODES) {
            e->code[j] = code;
            e->n[j] = 0;
            e->ncodes++;
        }
        if (j < STAT_CODES)
            e->n[j]++;
        break;
    }
    pthread_mutex_unlock(&st.mu);
}

static void stats_reset(void)
{
    pthread_mutex_lock(&st.mu);
    for (unsigned i = 0; i < STAT_SLOTS; i++) {
        free(st.slot[i].key);
        memset(&st.slot[i], 0, sizeof(st.slot[i]));
    }
    pthread_mutex_unlock(&st.mu);
    pthread_mutex_lock(&tok.mu);
    tok.minted = 0;
    pthread_mutex_unlock(&tok.mu);
    pthread_mutex_lock(&lim.mu);
    lim.hits_minute = lim.hits_day = lim.hits_conc = 0;
    pthread_mutex_unlock(&lim.mu);
    pthread_mutex_lock(&flt.mu);
    memset(flt.hits, 0, sizeof(flt.hits));
    pthread_mutex_unlock(&flt.mu);
}

static char *stats_json(void)
{
    struct strbuf sb = {0};
    strbuf_puts(&sb, "{\"requests\":{");
    pthread_mutex_lock(&st.mu);
    bool first = true;
    for (unsigned i = 0; i < STAT_SLOTS; i++) {
        struct stat_entry *e = &st.slot[i];
        if (!e->key)
            continue;
        if (!first)
            strbuf_putc(&sb, ',');
        first = false;
        sim_json_string(&sb, e->key);
        strbuf_puts(&sb, ":{");
        for (int j = 0; j < e->ncodes; j++) {
            if (e->code[j] == 0)
                strbuf_printf(&sb, "%s\"reset\":%ld", j ? "," : "", e->n[j]);
            else if (e->code[j] == 1)
                strbuf_printf(&sb, "%s\"timeout\":%ld", j ? "," : "", e->n[j]);
            else
                strbuf_printf(&sb, "%s\"%d\":%ld", j ? "," : "", e->code[j], e->n[j]);
        }
        strbuf_putc(&sb, '}');
    }
    pthread_mutex_unlock(&st.mu);
    pthread_mutex_lock(&tok.mu);
    strbuf_printf(&sb, "},\"tokens_minted\":%ld", tok.minted);
    pthread_mutex_unlock(&tok.mu);
    pthread_mutex_lock(&lim.mu);
    strbuf_printf(&sb,
                  ",\"limit_hits\":{\"minute\":%ld,\"day\":%ld,\"concurrency\":%ld},"
                  "\"in_flight\":%ld",
                  lim.hits_minute, lim.hits_day, lim.hits_conc, lim.inflight);
    pthread_mutex_unlock(&lim.mu);
    strbuf_puts(&sb, ",\"faults\":{");
    pthread_mutex_lock(&flt.mu);
    for (int k = 0; k < F_KINDS; k++)
        strbuf_printf(&sb, "%s\"%s\":%ld", k ? "," : "", fault_names[k], flt.hits[k]);
    pthread_mutex_unlock(&flt.mu);
    long sent, failed, queued;
    sim_webhook_counts(&sent, &failed, &queued);
    strbuf_printf(&sb, "},\"webhooks\":{\"sent\":%ld,\"failed\":%ld,\"queued\":%ld}}", sent,
                  failed, queued);
    return strbuf_detach(&sb);
}

/* ---- suspended connections (slow answers, timeouts) ---- */

struct delayed {
    struct delayed *next;
    struct MHD_Connection *conn;
    long long due;
};

static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct delayed *head;
    bool stopping;
    pthread_t thread;
} dl = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

static void delay_add(struct MHD_Connection *c, long ms)
{
    MHD_suspend_connection(c);
    struct delayed *d = xcalloc(1, sizeof(*d));
    d->conn = c;
    d->due = time_mono_ms() + ms;
    pthread_mutex_lock(&dl.mu);
    d->next = dl.head;
    dl.head = d;
    pthread_cond_signal(&dl.cv);
    pthread_mutex_unlock(&dl.mu);
}

static void *delay_thread(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&dl.mu);
    for (;;) {
        long long now = time_mono_ms(), next = now + 1000;
        for (struct delayed **pp = &dl.head; *pp;) {
            struct delayed *d = *pp;
            if (dl.stopping || d->due <= now) {
                *pp = d->next;
                MHD_resume_connection(d->conn);
                free(d);
                continue;
            }
            if (d->due < next)
                next = d->due;
            pp = &d->next;
        }
        if (dl.stopping)
            break;
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        long long wait = next - now;
        ts.tv_sec += wait / 1000;
        ts.tv_nsec += (wait % 1000) * 1000000;
        if (ts.tv_nsec >= 1000000000) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000;
        }
        pthread_cond_timedwait(&dl.cv, &dl.mu, &ts);
    }
    pthread_mutex_unlock(&dl.mu);
    return NULL;
}

/* ---- requests ---- */

enum stage { ST_NEW, ST_BODY, ST_SUSPENDED, ST_RESUMED };

struct req {
    enum stage stage;
    struct strbuf body;
    bool inflight;
    bool too_big;
    enum fault fault;
    struct rl_hdrs rl;
    long retry_after_s; /* > 0: a Retry-After header (the block fault) */
    char key[160];
};

static enum MHD_Result send_resp(struct MHD_Connection *c, struct req *rq, unsigned status,
                                 const char *ctype, char *body, size_t len)
{
    /* Faults that damage an answer that was otherwise right. */
    bool json = ctype && !strcmp(ctype, JSON_CTYPE);
    if (rq->fault == F_TRUNCATE && len > 1) {
        len /= 2;
    } else if (rq->fault == F_MALFORMED && json) {
        char *colon = memchr(body, ':', len);
        if (colon)
            *colon = ' ';
    } else if (rq->fault == F_CTYPE && json) {
        ctype = "text/plain;charset=UTF-8";
    }
    struct MHD_Response *r = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
    if (!r) {
        free(body);
        return MHD_NO;
    }
    if (ctype)
        MHD_add_response_header(r, "Content-Type", ctype);
    if (rq->rl.on) {
        char v[32];
        snprintf(v, sizeof(v), "%ld", rq->rl.limit);
        MHD_add_response_header(r, "X-Rate-Limit-Limit", v);
        snprintf(v, sizeof(v), "%ld", rq->rl.remaining);
        MHD_add_response_header(r, "X-Rate-Limit-Remaining", v);
        snprintf(v, sizeof(v), "%ld", rq->rl.reset);
        MHD_add_response_header(r, "X-Rate-Limit-Reset", v);
    }
    if (rq->retry_after_s > 0) {
        char v[32];
        snprintf(v, sizeof(v), "%ld", rq->retry_after_s);
        MHD_add_response_header(r, "Retry-After", v);
    }
    enum MHD_Result ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    stat_count(rq->key, (int)status);
    return ret;
}

static enum MHD_Result send_json(struct MHD_Connection *c, struct req *rq, unsigned status,
                                 struct strbuf *sb)
{
    size_t len = sb->len;
    return send_resp(c, rq, status, JSON_CTYPE, strbuf_detach(sb), len);
}

static enum MHD_Result send_error(struct MHD_Connection *c, struct req *rq, unsigned status,
                                  int code, const char *msg)
{
    struct strbuf sb = {0};
    strbuf_printf(&sb, "{\"code\":%d,\"message\":", code);
    sim_json_string(&sb, msg);
    strbuf_putc(&sb, '}');
    return send_json(c, rq, status, &sb);
}

static const char *arg(struct MHD_Connection *c, const char *k)
{
    return MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, k);
}

static void url_decode(char *s)
{
    char *o = s;
    for (char *p = s; *p; p++) {
        if (*p == '+') {
            *o++ = ' ';
        } else if (*p == '%' && p[1] && p[2]) {
            char h[3] = {p[1], p[2], 0};
            *o++ = (char)strtol(h, NULL, 16);
            p += 2;
        } else {
            *o++ = *p;
        }
    }
    *o = '\0';
}

/* The value of k in a form body (or the query), decoded; caller frees. */
static char *form_value(struct MHD_Connection *c, const struct strbuf *body, const char *k)
{
    if (body->len) {
        char *copy = xstrdup(body->buf), *save = NULL;
        for (char *kv = strtok_r(copy, "&", &save); kv; kv = strtok_r(NULL, "&", &save)) {
            char *eq = strchr(kv, '=');
            if (!eq)
                continue;
            *eq = '\0';
            url_decode(kv);
            if (!strcmp(kv, k)) {
                url_decode(eq + 1);
                char *v = xstrdup(eq + 1);
                free(copy);
                return v;
            }
        }
        free(copy);
    }
    const char *v = arg(c, k);
    return v ? xstrdup(v) : NULL;
}

/* ---- OAuth ---- */

static enum MHD_Result handle_token(struct MHD_Connection *c, struct req *rq, const char *method)
{
    if (strcmp(method, "POST"))
        return send_error(c, rq, 405, 37, "The HTTP method is not allowed for this resource");
    if (oauth_fault())
        return send_error(c, rq, 500, 1000, "Internal error");
    char *cid = form_value(c, &rq->body, "client_id");
    char *secret = form_value(c, &rq->body, "client_secret");
    char *grant = form_value(c, &rq->body, "grant_type");
    char *refresh = form_value(c, &rq->body, "refresh_token");
    struct strbuf sb = {0};
    pthread_mutex_lock(&tok.mu);
    long long now = time_mono_ms();
    if (!str_eq(grant, "refresh_token")) {
        strbuf_puts(&sb, "{\"error\":\"unsupported_grant_type\"}");
    } else if (!str_eq(cid, cfg->client_id) || !str_eq(secret, cfg->client_secret)) {
        strbuf_puts(&sb, "{\"error\":\"invalid_client\"}");
    } else if (tok.revoked || !str_eq(refresh, tok.refresh)) {
        strbuf_puts(&sb, "{\"error\":\"invalid_code\"}");
    } else {
        if (tok.mint_limit > 0 &&
            (!tok.mint_start || now >= tok.mint_start + tok.mint_window * 1000LL)) {
            tok.mint_start = now;
            tok.mint_count = 0;
        }
        if (tok.mint_limit > 0 && tok.mint_count >= tok.mint_limit) {
            strbuf_puts(&sb, "{\"error\":\"Access Denied\",\"error_description\":\"You have made "
                             "too many requests continuously. Please try again after some "
                             "time.\"}");
        } else {
            tok.mint_count++;
            tok.minted++;
            /* Forget expired tokens, then add the new one. */
            size_t k = 0;
            for (size_t i = 0; i < tok.n; i++)
                if (tok.v[i].expires > now)
                    tok.v[k++] = tok.v[i];
            tok.n = k;
            if (tok.n == tok.cap) {
                tok.cap = tok.cap ? tok.cap * 2 : 16;
                tok.v = xreallocarray(tok.v, tok.cap, sizeof(*tok.v));
            }
            struct token *t = &tok.v[tok.n++];
            snprintf(t->tok, sizeof(t->tok), "1000.%016llx%016llx.%016llx%016llx",
                     (unsigned long long)sim_rng_next(&tok.rng),
                     (unsigned long long)sim_rng_next(&tok.rng),
                     (unsigned long long)sim_rng_next(&tok.rng),
                     (unsigned long long)sim_rng_next(&tok.rng));
            t->expires = now + tok.ttl * 1000LL;
            if (tok.ttl_ms)
                strbuf_printf(&sb,
                              "{\"access_token\":\"%s\",\"expires_in\":%ld,"
                              "\"expires_in_sec\":%ld,\"api_domain\":",
                              t->tok, tok.ttl * 1000, tok.ttl);
            else
                strbuf_printf(&sb,
                              "{\"access_token\":\"%s\",\"expires_in\":%ld,\"api_domain\":",
                              t->tok, tok.ttl);
            sim_json_string(&sb, cfg->base_url);
            strbuf_puts(&sb, ",\"token_type\":\"Bearer\"}");
        }
    }
    pthread_mutex_unlock(&tok.mu);
    free(cid);
    free(secret);
    free(grant);
    free(refresh);
    return send_json(c, rq, 200, &sb);
}

/* ---- the API ---- */

enum route_kind { R_LIST, R_ONE, R_IMAGE, R_DETAILS };

struct route {
    unsigned product;
    int ent;
    enum route_kind kind;
    char id[32];
};

/* Parses /books/v3/... or /inventory/v1/...; false when no such endpoint. */
static bool api_route(const char *url, struct route *r, char *key, size_t keysize,
                      const char *method)
{
    const char *rest, *base;
    if (str_starts_with(url, "/books/v3/")) {
        r->product = SIM_BOOKS;
        base = "/books/v3";
        rest = url + 9;
    } else if (str_starts_with(url, "/inventory/v1/")) {
        r->product = SIM_INVENTORY;
        base = "/inventory/v1";
        rest = url + 13;
    } else {
        return false;
    }
    char path[256];
    snprintf(path, sizeof(path), "%s", rest + 1);
    size_t pl = strlen(path);
    while (pl > 0 && path[pl - 1] == '/')
        path[--pl] = '\0';
    char *parts[4] = {0};
    int np = 0;
    char *save = NULL;
    for (char *p = strtok_r(path, "/", &save); p && np < 4; p = strtok_r(NULL, "/", &save))
        parts[np++] = p;
    if (np == 0 || strtok_r(NULL, "/", &save))
        return false;
    if (np == 1 && !strcmp(parts[0], "itemdetails")) {
        r->ent = sim_entity_find("items");
        r->kind = R_DETAILS;
        snprintf(key, keysize, "%s %s/itemdetails", method, base);
        return true;
    }
    r->ent = sim_entity_find(parts[0]);
    if (r->ent < 0 || !(sim_entities[r->ent].products & r->product))
        return false;
    if (np == 1) {
        r->kind = R_LIST;
        snprintf(key, keysize, "%s %s/%s", method, base, parts[0]);
        return true;
    }
    if (strlen(parts[1]) >= sizeof(r->id))
        return false;
    snprintf(r->id, sizeof(r->id), "%s", parts[1]);
    if (np == 2) {
        r->kind = R_ONE;
        snprintf(key, keysize, "%s %s/%s/{id}", method, base, parts[0]);
        return true;
    }
    if (np == 3 && !strcmp(parts[0], "items") && !strcmp(parts[2], "image")) {
        r->kind = R_IMAGE;
        snprintf(key, keysize, "%s %s/items/{id}/image", method, base);
        return true;
    }
    return false;
}

/* Matches "Status.PartiallyPaid" against "partially_paid": case and '_' ignored. */
static bool status_match(const char *want, const char *have)
{
    for (;;) {
        while (*have == '_')
            have++;
        while (*want == '_')
            want++;
        if (!*want || !*have)
            return !*want && !*have;
        if ((*want | 0x20) != (*have | 0x20))
            return false;
        want++;
        have++;
    }
}

static void not_found(const struct sim_entity *en, char *msg, size_t size)
{
    snprintf(msg, size, "%s does not exist.", en->label);
}

/* ---- shapes (README "Shapes"), apart from the rest ---- */

/* hide-inactive: a list asked without filter_by hides inactive records,
 * as Zoho's default filter does where it is Status.Active. */
static void shape_default_filter(const struct sim_entity *en, struct sim_list_query *q,
                                 char *applied, size_t size)
{
    if (!(sim_shapes & SIM_SHAPE_HIDE_INACTIVE) || !en->statuses)
        return;
    for (int i = 0; en->statuses[i]; i++)
        if (!strcmp(en->statuses[i], "active")) {
            q->st = i + 1;
            snprintf(applied, size, "Status.Active");
        }
}

/* small-pages: pages of at most 10 rows, whatever per_page asks (Zoho's
 * page sizes are its own: 10, 200 or 5,000), has_more_page telling. */
static void shape_page_size(struct sim_list_query *q)
{
    if ((sim_shapes & SIM_SHAPE_SMALL_PAGES) && q->per_page > 10)
        q->per_page = 10;
}

/* books-pc-array: Books writes page_context as a one-element array. */
static const char *shape_pc_open(const struct route *r)
{
    return (sim_shapes & SIM_SHAPE_BOOKS_PC_ARRAY) && r->product == SIM_BOOKS ? "[{" : "{";
}

static const char *shape_pc_close(const struct route *r)
{
    return (sim_shapes & SIM_SHAPE_BOOKS_PC_ARRAY) && r->product == SIM_BOOKS ? "}]" : "}";
}

static enum MHD_Result api_list(struct MHD_Connection *c, struct req *rq, const struct route *r)
{
    const struct sim_entity *en = &sim_entities[r->ent];
    struct sim_list_query q = {.ent = r->ent, .page = 1, .per_page = 200};
    long long v;
    const char *s = arg(c, "page");
    if (s) {
        if (!str_to_ll(s, &v) || v < 1 || v > 100000000)
            return send_error(c, rq, 400, 2, "Invalid value passed for page");
        q.page = (long)v;
    }
    s = arg(c, "per_page");
    if (s) {
        if (!str_to_ll(s, &v) || v < 1)
            return send_error(c, rq, 400, 2, "Invalid value passed for per_page");
        q.per_page = v > 200 ? 200 : (long)v; /* Zoho caps per_page at 200 */
    }
    shape_page_size(&q);
    const char *filter = arg(c, "filter_by");
    char applied[64] = "Status.All";
    if (filter && *filter && strcmp(filter, "Status.All")) {
        bool ok = false;
        if (str_starts_with(filter, "Status.") && en->statuses)
            for (int i = 0; en->statuses[i]; i++)
                if (status_match(filter + 7, en->statuses[i])) {
                    q.st = i + 1;
                    ok = true;
                }
        if (!ok)
            return send_error(c, rq, 400, 2, "Invalid value passed for filter_by");
        snprintf(applied, sizeof(applied), "%s", filter);
    } else if (!filter || !*filter) {
        shape_default_filter(en, &q, applied, sizeof(applied));
    }
    const char *sort = arg(c, "sort_column");
    q.by_lmt = sort && !strcmp(sort, "last_modified_time");
    const char *order = arg(c, "sort_order");
    if (order && strcmp(order, "A") && strcmp(order, "D"))
        return send_error(c, rq, 400, 2, "Invalid value passed for sort_order");
    q.desc = order && !strcmp(order, "D");
    s = arg(c, "last_modified_time");
    if (s && *s && (en->lmt_filter & r->product)) {
        if (!sim_time_parse(s, &q.since))
            return send_error(c, rq, 400, 2, "Invalid value passed for last_modified_time");
        q.has_since = true;
    }

    struct strbuf sb = {0};
    strbuf_printf(&sb, "{\"code\":0,\"message\":\"success\",\"%s\":[", en->name);
    bool more;
    sim_store_rdlock();
    sim_store_page(&q, &sb, &more);
    sim_store_unlock();
    strbuf_printf(&sb,
                  "],\"page_context\":%s\"page\":%ld,\"per_page\":%ld,\"has_more_page\":%s,"
                  "\"report_name\":\"%s\",\"applied_filter\":",
                  shape_pc_open(r), q.page, q.per_page, more ? "true" : "false", en->report);
    sim_json_string(&sb, applied);
    strbuf_printf(&sb, ",\"custom_fields\":[],\"sort_column\":\"%s\",\"sort_order\":\"%s\"%s}",
                  q.by_lmt ? "last_modified_time" : "created_time", q.desc ? "D" : "A",
                  shape_pc_close(r));
    if (truncpage_fault(q.page))
        rq->fault = F_TRUNCATE;
    return send_json(c, rq, 200, &sb);
}

static enum MHD_Result api_one(struct MHD_Connection *c, struct req *rq, const struct route *r)
{
    const struct sim_entity *en = &sim_entities[r->ent];
    struct strbuf sb = {0};
    strbuf_printf(&sb, "{\"code\":0,\"message\":\"success\",\"%s\":", en->singular);
    sim_store_rdlock();
    struct sim_rec *rec = sim_store_get(r->ent, r->id);
    if (rec)
        sim_blob_detail(rec->blob, &sb);
    sim_store_unlock();
    if (!rec) {
        strbuf_free(&sb);
        char msg[96];
        not_found(en, msg, sizeof(msg));
        return send_error(c, rq, 404, 1002, msg);
    }
    strbuf_putc(&sb, '}');
    return send_json(c, rq, 200, &sb);
}

static enum MHD_Result api_details(struct MHD_Connection *c, struct req *rq,
                                   const struct route *r)
{
    const char *ids = arg(c, "item_ids");
    if (!ids || !*ids)
        return send_error(c, rq, 400, 2, "Invalid value passed for item_ids");
    char *copy = xstrdup(ids), *save = NULL;
    char *list[101];
    int n = 0;
    for (char *p = strtok_r(copy, ",", &save); p; p = strtok_r(NULL, ",", &save)) {
        if (n == 100) {
            free(copy);
            return send_error(c, rq, 400, 2, "Invalid value passed for item_ids");
        }
        list[n++] = p;
    }
    struct strbuf sb = {0};
    strbuf_puts(&sb, "{\"code\":0,\"message\":\"success\",\"items\":[");
    bool first = true;
    sim_store_rdlock();
    for (int i = 0; i < n; i++) {
        struct sim_rec *rec = sim_store_get(r->ent, list[i]);
        if (!rec)
            continue; /* unknown ids are left out */
        if (!first)
            strbuf_putc(&sb, ',');
        first = false;
        sim_blob_detail(rec->blob, &sb);
    }
    sim_store_unlock();
    free(copy);
    strbuf_puts(&sb, "]}");
    return send_json(c, rq, 200, &sb);
}

static enum MHD_Result api_image(struct MHD_Connection *c, struct req *rq, const struct route *r)
{
    sim_store_rdlock();
    struct sim_rec *rec = sim_store_get(r->ent, r->id);
    int kind = rec ? rec->image : -1;
    uint64_t id = rec ? rec->id : 0;
    sim_store_unlock();
    if (atomic_load(&no_image_scope))
        return send_error(c, rq, 401, 57, "You are not authorized to perform this operation");
    if (kind < 0)
        return send_error(c, rq, 404, 1002, "Item does not exist.");
    if (kind == 0)
        return send_error(c, rq, 404, 1002, "The item does not have an image.");
    unsigned char *img;
    size_t len;
    sim_image_make(id, kind, &img, &len);
    return send_resp(c, rq, 200, kind == 1 ? "image/png" : "image/jpeg", (char *)img, len);
}

/* Answers an admitted API request, or the fault drawn for it. */
static enum MHD_Result api_serve(struct MHD_Connection *c, struct req *rq, const struct route *r)
{
    switch (rq->fault) {
    case F_500:
        return send_error(c, rq, 500, 1000, "Internal error");
    case F_429:
        return send_error(c, rq, 429, 44,
                          "For security reasons your organization has been blocked as it have "
                          "exceeded the maximum number of requests per minute that can "
                          "originate from an organization.");
    case F_LONGERROR:
        return send_error(c, rq, 400, 4, long_error);
    case F_BLOCK: {
        pthread_mutex_lock(&flt.mu);
        long ms = flt.spec.param[F_BLOCK];
        pthread_mutex_unlock(&flt.mu);
        rq->retry_after_s = ms < 1000 ? 1 : ms / 1000;
        return send_error(c, rq, 429, 44,
                          "For security reasons your organization has been blocked as it have "
                          "exceeded the maximum number of requests per minute that can "
                          "originate from an organization.");
    }
    case F_502: {
        /* The gateway in front of Zoho, not Zoho: HTML, no code. */
        const char *page = "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
                           "<center><h1>502 Bad Gateway</h1></center>\r\n</body>\r\n</html>\r\n";
        return send_resp(c, rq, 502, "text/html", xstrdup(page), strlen(page));
    }
    case F_HTML: {
        const char *page = "<!DOCTYPE html><html><head><title>Zoho</title></head><body>"
                           "<h1>Service temporarily unavailable</h1><p>We are performing "
                           "scheduled maintenance. Please try again later.</p></body></html>";
        return send_resp(c, rq, 200, "text/html;charset=UTF-8", xstrdup(page), strlen(page));
    }
    case F_RESET:
    case F_TIMEOUT: {
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
        if (rq->fault == F_RESET && ci) {
            struct linger lg = {1, 0};
            setsockopt(ci->connect_fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
        }
        stat_count(rq->key, rq->fault == F_RESET ? 0 : 1);
        return MHD_NO;
    }
    default:
        break;
    }
    switch (r->kind) {
    case R_LIST:
        return api_list(c, rq, r);
    case R_ONE:
        return api_one(c, rq, r);
    case R_DETAILS:
        return api_details(c, rq, r);
    default:
        return api_image(c, rq, r);
    }
}

static enum MHD_Result handle_api(struct MHD_Connection *c, struct req *rq, const char *url,
                                  const char *method)
{
    struct route r = {0};
    if (!api_route(url, &r, rq->key, sizeof(rq->key), method)) {
        snprintf(rq->key, sizeof(rq->key), "%s (unknown)", method);
        return send_error(c, rq, 404, 5, "Invalid URL Passed");
    }
    if (rq->stage == ST_RESUMED) {
        if (rq->fault == F_TIMEOUT) {
            stat_count(rq->key, 1);
            return MHD_NO;
        }
        return api_serve(c, rq, &r);
    }
    if (strcmp(method, "GET"))
        return send_error(c, rq, 405, 37, "The HTTP method is not allowed for this resource");
    const char *auth = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
    if (!auth || strncmp(auth, "Zoho-oauthtoken ", 16) || !token_valid(auth + 16))
        return send_error(c, rq, 401, 57, "You are not authorized to perform this operation");
    const char *org = arg(c, "organization_id");
    if (!org || !*org)
        return send_error(c, rq, 400, 2, "Invalid value passed for organization_id");
    if (strcmp(org, cfg->org)) {
        char msg[200];
        snprintf(msg, sizeof(msg), "This user is not associated with the CompanyID/CompanyName:%.100s.",
                 org);
        return send_error(c, rq, 400, 6041, msg);
    }
    int code = rl_admit(&rq->rl);
    if (code == 45)
        return send_error(c, rq, 429, 45,
                          "The API call for this organization has exceeded the maximum call rate "
                          "limit of 1000.");
    if (code == 44)
        return send_error(c, rq, 429, 44,
                          "For security reasons your organization has been blocked as it have "
                          "exceeded the maximum number of requests per minute that can "
                          "originate from an organization.");
    if (code == 1070)
        return send_error(c, rq, 429, 1070,
                          "You have reached the maximum number of in process requests allowed. "
                          "Kindly try again after some time.");
    rq->inflight = true;
    bool slow;
    long slow_ms, timeout_ms;
    rq->fault = fault_draw(&slow, &slow_ms, &timeout_ms);
    long delay = (slow ? slow_ms : 0) + (rq->fault == F_TIMEOUT ? timeout_ms : 0);
    if (delay > 0) {
        rq->stage = ST_SUSPENDED;
        delay_add(c, delay);
        return MHD_YES;
    }
    if (rq->fault == F_TIMEOUT) {
        stat_count(rq->key, 1);
        return MHD_NO;
    }
    return api_serve(c, rq, &r);
}

/* ---- control endpoint ---- */

struct truth {
    struct sim_blob **b;
    size_t n, i;
    struct strbuf cur;
    size_t off;
};

static ssize_t truth_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)pos;
    struct truth *t = cls;
    while (t->off == t->cur.len) {
        if (t->i == t->n)
            return MHD_CONTENT_READER_END_OF_STREAM;
        strbuf_reset(&t->cur);
        t->off = 0;
        sim_blob_detail(t->b[t->i], &t->cur);
        strbuf_putc(&t->cur, '\n');
        sim_blob_unref(t->b[t->i]);
        t->b[t->i++] = NULL;
    }
    size_t n = t->cur.len - t->off;
    if (n > max)
        n = max;
    memcpy(buf, t->cur.buf + t->off, n);
    t->off += n;
    return (ssize_t)n;
}

static void truth_free(void *cls)
{
    struct truth *t = cls;
    for (size_t i = t->i; i < t->n; i++)
        sim_blob_unref(t->b[i]);
    free(t->b);
    strbuf_free(&t->cur);
    free(t);
}

static char *config_json(void)
{
    struct strbuf sb = {0};
    pthread_mutex_lock(&lim.mu);
    strbuf_printf(&sb, "{\"code\":0,\"message\":\"success\",\"rate_minute\":%ld,\"rate_day\":%ld,"
                       "\"concurrency\":%ld",
                  lim.minute, lim.day, lim.concurrency);
    pthread_mutex_unlock(&lim.mu);
    pthread_mutex_lock(&tok.mu);
    strbuf_printf(&sb, ",\"token_ttl\":%ld,\"mint_limit\":%ld,\"mint_window\":%ld,"
                       "\"refresh_token_revoked\":%s",
                  tok.ttl, tok.mint_limit, tok.mint_window, tok.revoked ? "true" : "false");
    pthread_mutex_unlock(&tok.mu);
    strbuf_puts(&sb, ",\"faults\":\"");
    pthread_mutex_lock(&flt.mu);
    bool first = true;
    for (int k = 0; k < F_KINDS; k++) {
        if (flt.spec.share[k] <= 0)
            continue;
        strbuf_printf(&sb, "%s%s=%g", first ? "" : ",", fault_names[k], flt.spec.share[k]);
        if (k == F_SLOW || k == F_TIMEOUT || k == F_TRUNCPAGE || k == F_BLOCK)
            strbuf_printf(&sb, ":%ld", flt.spec.param[k]);
        first = false;
    }
    pthread_mutex_unlock(&flt.mu);
    strbuf_printf(&sb, "\",\"no_image_scope\":%s}",
                  atomic_load(&no_image_scope) ? "true" : "false");
    return strbuf_detach(&sb);
}

static bool json_long(const cJSON *o, const char *k, long *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    if (!cJSON_IsNumber(v) || v->valuedouble < 0 || v->valuedouble > 1e12)
        return false;
    *out = (long)v->valuedouble;
    return true;
}

static enum MHD_Result control_config(struct MHD_Connection *c, struct req *rq, const cJSON *b)
{
    const cJSON *f = cJSON_GetObjectItemCaseSensitive(b, "faults");
    if (f) {
        struct fault_spec spec;
        char *err = NULL;
        if (!cJSON_IsString(f) || !fault_parse(f->valuestring, &spec, &err)) {
            enum MHD_Result ret = send_error(c, rq, 400, 2, err ? err : "faults must be a string");
            free(err);
            return ret;
        }
        pthread_mutex_lock(&flt.mu);
        flt.spec = spec;
        pthread_mutex_unlock(&flt.mu);
    }
    long v;
    pthread_mutex_lock(&lim.mu);
    bool changed = false;
    if (json_long(b, "rate_minute", &v)) {
        lim.minute = v;
        changed = true;
    }
    if (json_long(b, "rate_day", &v)) {
        lim.day = v;
        changed = true;
    }
    if (json_long(b, "concurrency", &v))
        lim.concurrency = v;
    if (changed || cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(b, "reset_limits"))) {
        lim.min_start = lim.day_start = 0; /* a new limit starts fresh windows */
        lim.min_used = lim.day_used = 0;
    }
    pthread_mutex_unlock(&lim.mu);
    pthread_mutex_lock(&tok.mu);
    if (json_long(b, "token_ttl", &v))
        tok.ttl = v;
    const cJSON *tm = cJSON_GetObjectItemCaseSensitive(b, "token_ttl_ms");
    if (cJSON_IsBool(tm))
        tok.ttl_ms = cJSON_IsTrue(tm);
    if (json_long(b, "mint_limit", &v)) {
        tok.mint_limit = v;
        tok.mint_start = 0;
    }
    if (json_long(b, "mint_window", &v) && v > 0)
        tok.mint_window = v;
    if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(b, "revoke_refresh_token")))
        tok.revoked = true;
    const cJSON *rt = cJSON_GetObjectItemCaseSensitive(b, "refresh_token");
    if (cJSON_IsString(rt)) {
        free(tok.refresh);
        tok.refresh = xstrdup(rt->valuestring);
        tok.revoked = false;
    }
    const cJSON *nis = cJSON_GetObjectItemCaseSensitive(b, "no_image_scope");
    if (cJSON_IsBool(nis))
        atomic_store(&no_image_scope, cJSON_IsTrue(nis));
    if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(b, "expire_tokens")))
        for (size_t i = 0; i < tok.n; i++)
            tok.v[i].expires = 0;
    pthread_mutex_unlock(&tok.mu);
    char *out = config_json();
    return send_resp(c, rq, 200, JSON_CTYPE, out, strlen(out));
}

static bool peer_is_loopback(struct MHD_Connection *c)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    if (!ci || !ci->client_addr)
        return false;
    const struct sockaddr *sa = ci->client_addr;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)(const void *)sa;
        return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
    }
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)(const void *)sa;
        if (IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr))
            return true;
        return IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr) && in6->sin6_addr.s6_addr[12] == 127;
    }
    return false;
}

static enum MHD_Result send_record(struct MHD_Connection *c, struct req *rq, unsigned status,
                                   int ent, char *detail)
{
    struct strbuf sb = {0};
    strbuf_printf(&sb, "{\"code\":0,\"message\":\"success\",\"%s\":%s}",
                  sim_entities[ent].singular, detail);
    free(detail);
    return send_json(c, rq, status, &sb);
}

static enum MHD_Result handle_control(struct MHD_Connection *c, struct req *rq, const char *url,
                                      const char *method)
{
    rq->key[0] = '\0'; /* the control endpoint is not counted */
    if (!peer_is_loopback(c))
        return send_error(c, rq, 403, 14, "The control endpoint answers loopback peers only");
    const char *p = url + 6; /* after "/_sim/" */
    bool get = !strcmp(method, "GET"), post = !strcmp(method, "POST");
    if (get && !strcmp(p, "counters")) {
        char *s = stats_json();
        return send_resp(c, rq, 200, JSON_CTYPE, s, strlen(s));
    }
    if (post && !strcmp(p, "counters/reset")) {
        stats_reset();
        return send_error(c, rq, 200, 0, "success");
    }
    if (get && !strcmp(p, "config")) {
        char *s = config_json();
        return send_resp(c, rq, 200, JSON_CTYPE, s, strlen(s));
    }
    cJSON *body = NULL;
    if (rq->body.len) {
        body = cJSON_ParseWithLength(rq->body.buf, rq->body.len);
        if (!body)
            return send_error(c, rq, 400, 2, "The body is not valid JSON");
    }
    enum MHD_Result ret;
    if (post && !strcmp(p, "config")) {
        ret = body ? control_config(c, rq, body) : send_error(c, rq, 400, 2, "Send a JSON object");
        cJSON_Delete(body);
        return ret;
    }
    if (post && !strcmp(p, "mutate")) {
        const char *en = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(body, "entity"));
        int ent = sim_entity_find(en ? en : "items");
        long upd = 0, crt = 0, del = 0, seed = 0;
        json_long(body, "update", &upd);
        json_long(body, "create", &crt);
        json_long(body, "delete", &del);
        bool has_seed = json_long(body, "seed", &seed);
        cJSON_Delete(body);
        if (ent < 0)
            return send_error(c, rq, 404, 5, "Unknown entity");
        char *s = sim_store_mutate(ent, upd, crt, del, has_seed, (uint64_t)seed);
        return send_resp(c, rq, 200, JSON_CTYPE, s, strlen(s));
    }
    /* truth/ENTITY, ENTITY, ENTITY/ID */
    char path[128];
    snprintf(path, sizeof(path), "%s", p);
    char *slash = strchr(path, '/');
    if (slash)
        *slash = '\0';
    if (get && !strcmp(path, "truth") && slash) {
        cJSON_Delete(body);
        int ent = sim_entity_find(slash + 1);
        if (ent < 0)
            return send_error(c, rq, 404, 5, "Unknown entity");
        struct truth *t = xcalloc(1, sizeof(*t));
        t->b = sim_store_snapshot(ent, &t->n);
        struct MHD_Response *r =
            MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 64 * 1024, truth_read, t, truth_free);
        MHD_add_response_header(r, "Content-Type", "application/x-ndjson");
        ret = MHD_queue_response(c, 200, r);
        MHD_destroy_response(r);
        return ret;
    }
    int ent = sim_entity_find(path);
    if (ent < 0) {
        cJSON_Delete(body);
        return send_error(c, rq, 404, 5, "Invalid URL Passed");
    }
    const char *id = slash ? slash + 1 : NULL;
    const char *err = NULL;
    char msg[96];
    not_found(&sim_entities[ent], msg, sizeof(msg));
    if (post && !id) {
        char *d = sim_store_create(ent, body, &err);
        ret = d ? send_record(c, rq, 201, ent, d) : send_error(c, rq, 400, 2, err);
    } else if (id && !strcmp(method, "PATCH")) {
        char *d = body ? sim_store_patch(ent, id, body, &err) : NULL;
        if (!body)
            err = "send a JSON object of fields";
        if (d)
            ret = send_record(c, rq, 200, ent, d);
        else if (err && !strcmp(err, "no such record"))
            ret = send_error(c, rq, 404, 1002, msg);
        else
            ret = send_error(c, rq, 400, 2, err);
    } else if (id && !strcmp(method, "DELETE")) {
        ret = sim_store_delete(ent, id) ? send_error(c, rq, 200, 0, "The record has been deleted.")
                                        : send_error(c, rq, 404, 1002, msg);
    } else if (id && get) {
        struct strbuf sb = {0};
        sim_store_rdlock();
        struct sim_rec *rec = sim_store_get(ent, id);
        if (rec)
            sim_blob_detail(rec->blob, &sb);
        sim_store_unlock();
        ret = rec ? send_record(c, rq, 200, ent, strbuf_detach(&sb))
                  : send_error(c, rq, 404, 1002, msg);
        strbuf_free(&sb);
    } else {
        ret = send_error(c, rq, 405, 37, "The HTTP method is not allowed for this resource");
    }
    cJSON_Delete(body);
    return ret;
}

/* ---- MHD callbacks ---- */

static atomic_bool stopping;

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_size, void **con_cls)
{
    (void)cls;
    (void)version;
    struct req *rq = *con_cls;
    if (!rq) {
        rq = xcalloc(1, sizeof(*rq));
        rq->fault = F_NONE;
        *con_cls = rq;
        return MHD_YES;
    }
    if (*upload_size) {
        if (rq->body.len + *upload_size > MAX_BODY)
            rq->too_big = true;
        else
            strbuf_append(&rq->body, upload, *upload_size);
        *upload_size = 0;
        return MHD_YES;
    }
    if (rq->stage == ST_SUSPENDED) {
        rq->stage = ST_RESUMED;
        if (stopping)
            return MHD_NO;
    }
    if (rq->too_big)
        return send_error(c, rq, 413, 2, "The request body is too large");
    if (!strcmp(url, "/oauth/v2/token")) {
        snprintf(rq->key, sizeof(rq->key), "%s /oauth/v2/token", method);
        return handle_token(c, rq, method);
    }
    if (str_starts_with(url, "/_sim/"))
        return handle_control(c, rq, url, method);
    return handle_api(c, rq, url, method);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)c;
    (void)toe;
    struct req *rq = *con_cls;
    if (!rq)
        return;
    if (rq->inflight) {
        pthread_mutex_lock(&lim.mu);
        lim.inflight--;
        pthread_mutex_unlock(&lim.mu);
    }
    strbuf_free(&rq->body);
    free(rq);
    *con_cls = NULL;
}

bool sim_http_start(int fd, const struct sim_config *c, const struct sim_http_opts *o)
{
    cfg = c;
    char *err = NULL;
    if (!fault_parse(o->faults, &flt.spec, &err)) {
        free(err);
        return false;
    }
    flt.rng = sim_rng_for(c->seed, 500, 0);
    tok.ttl = o->token_ttl;
    tok.mint_limit = o->mint_limit;
    tok.mint_window = o->mint_window > 0 ? o->mint_window : 600;
    tok.refresh = xstrdup(c->refresh_token);
    uint64_t r = 0;
    int ufd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    if (ufd < 0 || read(ufd, &r, sizeof(r)) != (ssize_t)sizeof(r))
        r = (uint64_t)time_wall_ms() ^ (uint64_t)getpid() << 32;
    if (ufd >= 0)
        close(ufd);
    tok.rng.s = r;
    lim.minute = o->rate_minute;
    lim.day = o->rate_day;
    lim.concurrency = o->concurrency;
    if (pthread_create(&dl.thread, NULL, delay_thread, NULL) != 0)
        return false;
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME |
                     MHD_USE_TURBO;
    daemon_ = MHD_start_daemon(flags, 0, NULL, NULL, on_request, NULL, MHD_OPTION_LISTEN_SOCKET,
                               fd, MHD_OPTION_THREAD_POOL_SIZE, (unsigned)o->threads,
                               MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL,
                               MHD_OPTION_CONNECTION_TIMEOUT, 300u,
                               MHD_OPTION_CONNECTION_LIMIT, 4000u, MHD_OPTION_END);
    return daemon_ != NULL;
}

void sim_http_stop(void)
{
    pthread_mutex_lock(&dl.mu);
    dl.stopping = true;
    stopping = true;
    pthread_cond_signal(&dl.cv);
    pthread_mutex_unlock(&dl.mu);
    pthread_join(dl.thread, NULL);
    if (daemon_)
        MHD_stop_daemon(daemon_);
    daemon_ = NULL;
    for (unsigned i = 0; i < STAT_SLOTS; i++)
        free(st.slot[i].key);
    free(tok.v);
    free(tok.refresh);
}
