/*
 * listener.c: the libmicrohttpd daemon: parses the listen address, enforces
 * the limits (connections, per-address connections, idle timeout, body
 * size), routes GET /health and GET /metrics, gathers a webhook request
 * (headers redacted as they are copied, body up to 1 MiB), asks webhook.c
 * for the verdict, suspends the connection while a writer (intake.c) stores
 * it, and answers once the writer resumes it.
 */
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "http_internal.h"
#include "tds/db.h"
#include "tds/log.h"
#include "tds/metrics.h"

long long http_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

void http_cond_init_mono(pthread_cond_t *cv)
{
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(cv, &ca);
    pthread_condattr_destroy(&ca);
}

struct timespec http_mono_after(long ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (ms % 1000) * 1000 * 1000;
    if (ts.tv_nsec >= 1000000000) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000;
    }
    return ts;
}

/* ---- GET connection pool ---- */

PGconn *http_pool_get(struct http_server *s)
{
    struct http_pool *p = &s->pool;
    pthread_mutex_lock(&p->mu);
    if (p->nidle > 0) {
        PGconn *c = p->idle[--p->nidle];
        pthread_mutex_unlock(&p->mu);
        return c;
    }
    bool wait = time_mono_ms() < p->retry_at_ms;
    pthread_mutex_unlock(&p->mu);
    if (wait)
        return NULL;
    char *err = NULL;
    PGconn *c = db_connect(s->cfg, &err);
    if (c == NULL) {
        log_warn("http: %s", err);
        free(err);
        pthread_mutex_lock(&p->mu);
        p->retry_at_ms = time_mono_ms() + 1000;
        pthread_mutex_unlock(&p->mu);
        return NULL;
    }
    if (db_cmd(c, "SET statement_timeout = '10s'", 0, NULL, NULL) != 0) {
        PQfinish(c);
        return NULL;
    }
    return c;
}

void http_pool_put(struct http_server *s, PGconn *c)
{
    if (c == NULL)
        return;
    struct http_pool *p = &s->pool;
    if (PQstatus(c) != CONNECTION_OK || PQtransactionStatus(c) != PQTRANS_IDLE) {
        PQfinish(c);
        return;
    }
    pthread_mutex_lock(&p->mu);
    if (p->nidle < HTTP_POOL_THREADS) {
        p->idle[p->nidle++] = c;
        c = NULL;
    }
    pthread_mutex_unlock(&p->mu);
    if (c)
        PQfinish(c);
}

/* ---- answers ---- */

static enum MHD_Result answer(struct MHD_Connection *c, int status, const char *ctype, char *body,
                              const char *allow)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(strlen(body), body, MHD_RESPMEM_MUST_FREE);
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    if (allow)
        MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, allow);
    enum MHD_Result ret = MHD_queue_response(c, (unsigned)status, r);
    MHD_destroy_response(r);
    return ret;
}

static char *json_error(const char *msg, long long inbox_id)
{
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "error", msg);
    if (inbox_id > 0)
        cJSON_AddNumberToObject(j, "inbox_id", (double)inbox_id);
    char *s = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    char *out = xstrdup(s);
    cJSON_free(s);
    return out;
}

static void count_result(const struct http_req *rq)
{
    if (rq->status == 202)
        metrics_count(rq->dup_of > 0 ? METRIC_WEBHOOK_DUPLICATE : METRIC_WEBHOOK_ACCEPTED, 1);
    else if (rq->status == 401)
        metrics_count(METRIC_WEBHOOK_UNAUTHORIZED, 1);
    else if (rq->status == 503)
        metrics_count(METRIC_WEBHOOK_UNAVAILABLE, 1);
    else
        metrics_count(METRIC_WEBHOOK_INVALID, 1);
}

static enum MHD_Result answer_webhook(struct http_req *rq)
{
    char *body;
    if (rq->status == 202) {
        body = rq->dup_of > 0
                   ? xasprintf("{\"status\":\"accepted\",\"inbox_id\":%lld,\"duplicate\":true}",
                               rq->inbox_id)
                   : xasprintf("{\"status\":\"accepted\",\"inbox_id\":%lld}", rq->inbox_id);
    } else if (rq->status == 503) {
        body = json_error("database unavailable: try again later", 0);
    } else {
        body = json_error(rq->v.error ? rq->v.error : "rejected", rq->inbox_id);
    }
    rq->answered = true;
    count_result(rq);
    metrics_observe(METRIC_WEBHOOK_INTAKE, (double)(http_now_us() - rq->t0_us) / 1e6);
    if (rq->status != 202 && rq->status != 503 && !rq->unrecorded)
        log_info("webhook %s %s from %s: %d %s (inbox %lld)", rq->method, rq->path,
                 rq->remote_addr, rq->status, rq->v.error ? rq->v.error : "", rq->inbox_id);
    return answer(rq->conn, rq->status, "application/json", body,
                  rq->status == 405 ? "POST" : NULL);
}

/* ---- requests ---- */

/* A copy of s with bytes that are not UTF-8 (or are control characters other
 * than tab) replaced by '?', so it can go into text and jsonb columns. */
static char *clean_text(const char *s)
{
    size_t n = strlen(s);
    char *out = xstrdup(s);
    size_t i = 0;
    while (i < n) {
        unsigned char c = (unsigned char)out[i];
        if (c < 0x80) {
            if (c < 0x20 && c != '\t')
                out[i] = '?';
            i++;
            continue;
        }
        size_t len = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : 2;
        if (i + len > n || !webhook_utf8_valid((unsigned char *)out + i, len)) {
            out[i++] = '?';
            continue;
        }
        i += len;
    }
    return out;
}

/* True when value contains a configured secret. */
static bool contains_secret(const struct http_server *s, const char *value)
{
    return (!str_empty(s->auth.secret) && strstr(value, s->auth.secret)) ||
           (!str_empty(s->auth.hmac_secret) && strstr(value, s->auth.hmac_secret));
}

/* A copy of text with every configured secret in it replaced by <redacted>. */
static char *redact_secrets(const struct http_server *s, const char *text)
{
    char *out = xstrdup(text);
    const char *secs[2] = {s->auth.secret, s->auth.hmac_secret};
    for (int k = 0; k < 2; k++) {
        if (str_empty(secs[k]))
            continue;
        size_t sl = strlen(secs[k]);
        char *p;
        while ((p = strstr(out, secs[k])) != NULL) {
            char *n = xasprintf("%.*s<redacted>%s", (int)(p - out), out, p + sl);
            free(out);
            out = n;
        }
    }
    return out;
}

static enum MHD_Result header_cb(void *cls, enum MHD_ValueKind kind, const char *key,
                                 const char *value)
{
    (void)kind;
    struct http_req *rq = cls;
    if (key == NULL)
        return MHD_YES;
    if (value == NULL)
        value = "";
    if (strcasecmp(key, "X-TDS-Webhook-Secret") == 0 && rq->secret_header == NULL)
        rq->secret_header = xstrdup(value);
    else if (strcasecmp(key, "X-Zoho-Webhook-Signature") == 0 && rq->signature == NULL)
        rq->signature = xstrdup(value);
    else if (strcasecmp(key, MHD_HTTP_HEADER_CONTENT_TYPE) == 0 && rq->content_type == NULL)
        rq->content_type = clean_text(value);
    char *k = clean_text(key);
    if (webhook_header_is_secret(key) || contains_secret(rq->srv, value)) {
        cJSON_AddStringToObject(rq->headers, k, "<redacted>");
    } else {
        char *v = clean_text(value);
        cJSON_AddStringToObject(rq->headers, k, v);
        free(v);
    }
    free(k);
    return MHD_YES;
}

static enum MHD_Result query_cb(void *cls, enum MHD_ValueKind kind, const char *key,
                                const char *value)
{
    (void)kind;
    struct http_req *rq = cls;
    if (key == NULL)
        return MHD_YES;
    if (strcmp(key, "secret") == 0 && value && rq->secret_query == NULL)
        rq->secret_query = xstrdup(value);
    cJSON *q = cJSON_GetObjectItemCaseSensitive(rq->headers, ":query");
    if (q == NULL)
        q = cJSON_AddObjectToObject(rq->headers, ":query");
    char *k0 = clean_text(key);
    char *k = redact_secrets(rq->srv, k0);
    free(k0);
    if (strcmp(key, "secret") == 0 || strcasecmp(key, "signature") == 0 ||
        (value && contains_secret(rq->srv, value))) {
        cJSON_AddStringToObject(q, k, "<redacted>");
    } else {
        char *v = clean_text(value ? value : "");
        cJSON_AddStringToObject(q, k, v);
        free(v);
    }
    free(k);
    return MHD_YES;
}

static char *peer_address(struct MHD_Connection *c)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    char buf[INET6_ADDRSTRLEN] = "?";
    if (ci && ci->client_addr) {
        const struct sockaddr *sa = ci->client_addr;
        if (sa->sa_family == AF_INET)
            inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, buf,
                      sizeof buf);
        else if (sa->sa_family == AF_INET6)
            inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr,
                      buf, sizeof buf);
    }
    return xstrdup(buf);
}

static struct http_req *req_new(struct http_server *s, struct MHD_Connection *c, const char *url,
                                const char *method)
{
    struct http_req *rq = xcalloc(1, sizeof *rq);
    rq->srv = s;
    rq->conn = c;
    rq->t0_us = http_now_us();
    rq->method = clean_text(method);
    /* A secret in the path (a webhook URL configured with it) is never kept:
     * not in tds.inbox.path, not in a log line, not in a reject reason. */
    char *path = clean_text(url);
    rq->path = redact_secrets(s, path);
    free(path);
    rq->remote_addr = peer_address(c);
    rq->headers = cJSON_CreateObject();
    MHD_get_connection_values(c, MHD_HEADER_KIND, header_cb, rq);
    MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, query_cb, rq);
    atomic_fetch_add(&s->inflight, 1);
    return rq;
}

static void wipe_free(char *p)
{
    if (p) {
        explicit_bzero(p, strlen(p));
        free(p);
    }
}

void http_req_free(struct http_req *rq)
{
    free(rq->method);
    free(rq->path);
    free(rq->content_type);
    free(rq->remote_addr);
    wipe_free(rq->secret_header);
    wipe_free(rq->secret_query);
    wipe_free(rq->signature);
    cJSON_Delete(rq->headers);
    free(rq->body);
    free(rq->answer_text);
    webhook_verdict_free(&rq->v);
    free(rq);
}

static void body_append(struct http_req *rq, const char *data, size_t n)
{
    rq->total += n;
    if (rq->total > WEBHOOK_MAX_BODY)
        rq->too_large = true;
    size_t room = rq->len < WEBHOOK_MAX_BODY ? WEBHOOK_MAX_BODY - rq->len : 0;
    if (n > room)
        n = room;
    if (n == 0)
        return;
    if (rq->len + n > rq->cap) {
        size_t cap = rq->cap ? rq->cap : 4096;
        while (cap < rq->len + n)
            cap *= 2;
        if (cap > WEBHOOK_MAX_BODY)
            cap = WEBHOOK_MAX_BODY;
        rq->body = xrealloc(rq->body, cap);
        rq->cap = cap;
    }
    memcpy(rq->body + rq->len, data, n);
    rq->len += n;
}

#define HTTP_AUDIT_PATH_MAX 256

/* Strips rq down to its audit row: time, peer, method, path (cut), size,
 * status; no headers, no content type, no body. */
static void make_audit(struct http_req *rq)
{
    rq->audit = true;
    rq->len = 0;
    cJSON_Delete(rq->headers);
    rq->headers = cJSON_CreateObject();
    free(rq->content_type);
    rq->content_type = NULL;
    if (rq->v.http_status == 202) { /* cannot happen: evaluate checks the same */
        rq->v.http_status = 401;
        free(rq->v.error);
        rq->v.error = xstrdup("bad signature");
    }
    if (rq->v.hint) {
        cJSON_free(rq->v.hint);
        rq->v.hint = NULL;
    }
    size_t n = strlen(rq->path);
    if (n > HTTP_AUDIT_PATH_MAX) {
        n = HTTP_AUDIT_PATH_MAX;
        while (n > 0 && ((unsigned char)rq->path[n] & 0xc0) == 0x80)
            n--;
        rq->path[n] = '\0';
    }
}

/* Hands a copy of rq's audit row to a writer (nobody waits for it), at most
 * HTTP_AUDIT_PER_S a second; rq is answered at once. */
static void submit_audit_copy(struct http_server *s, struct http_req *rq)
{
    if (!guard_audit_allowed(s)) {
        rq->unrecorded = true;
        return;
    }
    struct http_req *cp = xcalloc(1, sizeof *cp);
    cp->srv = s;
    cp->t0_us = rq->t0_us;
    cp->method = xstrdup(rq->method);
    cp->path = xstrdup(rq->path);
    cp->remote_addr = xstrdup(rq->remote_addr);
    cp->headers = cJSON_CreateObject();
    cp->total = rq->total;
    cp->v.http_status = rq->v.http_status;
    cp->v.error = xstrdup(rq->v.error ? rq->v.error : "rejected");
    cp->audit = true;
    cp->detached = true;
    make_audit(cp);
    intake_submit(s, cp);
}

/* Decides the verdict and redacts what will be stored. */
static void req_evaluate(struct http_req *rq)
{
    struct webhook_request in = {
        .method = rq->method,
        .path = rq->path,
        .content_type = rq->content_type,
        .secret_header = rq->secret_header,
        .secret_query = rq->secret_query,
        .signature = rq->signature,
        .body = rq->body,
        .body_len = rq->len,
        .too_large = rq->too_large,
    };
    webhook_evaluate(&rq->srv->auth, &in, &rq->v);
    if (rq->too_large && rq->len > WEBHOOK_KEEP_TOO_LARGE)
        rq->len = WEBHOOK_KEEP_TOO_LARGE;
    /* A secret inside the body (a misconfigured form field) is not stored. */
    const char *secs[2] = {rq->srv->auth.secret, rq->srv->auth.hmac_secret};
    for (int k = 0; k < 2; k++) {
        if (str_empty(secs[k]) || rq->len == 0)
            continue;
        size_t sl = strlen(secs[k]);
        unsigned char *p = rq->body;
        while ((p = memmem(p, rq->len - (size_t)(p - rq->body), secs[k], sl)) != NULL)
            memset(p, '*', sl);
    }
    if (rq->v.hint && (contains_secret(rq->srv, rq->v.hint))) {
        cJSON_free(rq->v.hint);
        rq->v.hint = NULL;
    }
    /* Authenticated: the secret matched and, with an HMAC key, the whole body
     * is signed.  Anything else keeps an audit row only. */
    const struct webhook_auth *a = &rq->srv->auth;
    bool authed;
    if (rq->too_large) /* a cut body cannot be checked against its signature */
        authed = rq->secret_ok && (str_empty(a->hmac_secret) || !str_empty(a->secret));
    else
        authed = rq->secret_ok &&
                 (str_empty(a->hmac_secret) ||
                  webhook_signature_ok(a->hmac_secret, rq->body, rq->len, rq->signature));
    if (!authed)
        make_audit(rq);
}

static enum MHD_Result serve_get(struct http_server *s, struct MHD_Connection *c, const char *url,
                                 const char *method)
{
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
        return answer(c, 405, "application/json", json_error("method not allowed: use GET", 0),
                      "GET, HEAD");
    if (strcmp(url, "/health") == 0) {
        char *body = NULL;
        int st = http_health(s, &body);
        return answer(c, st, "application/json", body, NULL);
    }
    return answer(c, 200, "text/plain; version=0.0.4; charset=utf-8", http_metrics(s), NULL);
}

/* An answer decided from the headers alone, before any body byte is read:
 * its audit row goes to a writer on the side (rate-limited) and the
 * connection is answered (and closed by libmicrohttpd) at once. */
static enum MHD_Result answer_early(struct http_server *s, struct http_req *rq, int status,
                                    const char *why)
{
    rq->v.http_status = status;
    free(rq->v.error);
    rq->v.error = xstrdup(why);
    make_audit(rq);
    submit_audit_copy(s, rq);
    rq->status = status;
    atomic_store(&rq->state, RQ_DONE);
    guard_set_phase(s, rq->conn, CONN_BUSY);
    return answer_webhook(rq);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size,
                                  void **con_cls)
{
    (void)version;
    struct http_server *s = cls;
    struct http_req *rq = *con_cls;
    if (rq == NULL) {
        bool get = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
        if (strcmp(url, "/metrics") == 0 && get && !atomic_load(&s->stopping)) {
            rq = xcalloc(1, sizeof *rq);
            rq->srv = s;
            rq->conn = c;
            rq->is_get = true;
            atomic_store(&rq->state, RQ_WAITING);
            atomic_fetch_add(&s->inflight, 1);
            *con_cls = rq;
            guard_set_phase(s, c, CONN_BUSY);
            MHD_suspend_connection(c);
            metrics_submit(s, rq);
            return MHD_YES;
        }
        if (strcmp(url, "/health") == 0 || strcmp(url, "/metrics") == 0) {
            guard_set_phase(s, c, CONN_BUSY);
            return serve_get(s, c, url, method);
        }
        rq = req_new(s, c, url, method);
        *con_cls = rq;
        const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                     MHD_HTTP_HEADER_CONTENT_LENGTH);
        char *end = NULL;
        unsigned long long declared = cl ? strtoull(cl, &end, 10) : 0;
        if (cl && end != cl)
            rq->total = declared;
        /* Authentication first: without the secret nothing of the body is
         * read or kept. */
        rq->secret_ok = webhook_secret_ok(&s->auth, rq->secret_header, rq->secret_query);
        if (!rq->secret_ok)
            return answer_early(s, rq, 401,
                                rq->secret_header || rq->secret_query ? "bad webhook secret"
                                                                      : "missing webhook secret");
        bool post_route = strcmp(method, "POST") == 0 && webhook_is_route(rq->path);
        if (post_route && !str_empty(s->auth.hmac_secret) && rq->signature == NULL)
            return answer_early(s, rq, 401, "missing signature");
        rq->total = 0;
        if (cl && end != cl && declared > WEBHOOK_MAX_BODY) {
            rq->declared_too_large = declared;
            const char *expect = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                             MHD_HTTP_HEADER_EXPECT);
            if (expect || declared > HTTP_READ_TOO_LARGE_MAX) {
                /* Refused before the body is sent (instead of "100 Continue") or
                 * read: the inbox row keeps the declared length, no bytes. */
                rq->too_large = true;
                rq->total = declared;
                req_evaluate(rq);
                if (rq->audit) /* signed bodies cannot be checked unread */
                    return answer_early(s, rq, rq->v.http_status,
                                        rq->v.error ? rq->v.error : "rejected");
                intake_store_now(s, rq);
                atomic_store(&rq->state, RQ_DONE);
                guard_set_phase(s, c, CONN_BUSY);
                return answer_webhook(rq);
            }
        }
        return MHD_YES;
    }
    if (rq->is_get) {
        if (*upload_data_size > 0 || atomic_load(&rq->state) != RQ_DONE || rq->answered) {
            *upload_data_size = 0;
            return MHD_YES;
        }
        rq->answered = true;
        char *text = rq->answer_text;
        rq->answer_text = NULL;
        return answer(c, 200, "text/plain; version=0.0.4; charset=utf-8", text, NULL);
    }
    int st = atomic_load(&rq->state);
    if (st == RQ_RECEIVING) {
        if (*upload_data_size > 0) {
            body_append(rq, upload_data, *upload_data_size);
            *upload_data_size = 0;
            return MHD_YES;
        }
        guard_set_phase(s, c, CONN_BUSY);
        if (rq->declared_too_large) {
            rq->too_large = true;
            rq->total = rq->declared_too_large > rq->total ? rq->declared_too_large : rq->total;
        }
        req_evaluate(rq);
        if (atomic_load(&s->stopping)) {
            rq->status = 503; /* not stored, not accepted: Zoho retries */
            atomic_store(&rq->state, RQ_DONE);
            return answer_webhook(rq);
        }
        if (rq->audit && !guard_audit_allowed(s)) {
            rq->unrecorded = true; /* a flood: answered, counted, not stored */
            rq->status = rq->v.http_status;
            atomic_store(&rq->state, RQ_DONE);
            return answer_webhook(rq);
        }
        atomic_store(&rq->state, RQ_WAITING);
        MHD_suspend_connection(c);
        intake_submit(s, rq);
        return MHD_YES;
    }
    *upload_data_size = 0;
    if (st == RQ_WAITING || rq->answered)
        return MHD_YES;
    return answer_webhook(rq);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)toe;
    struct http_server *s = cls;
    guard_set_phase(s, c, CONN_RECEIVING); /* kept alive: the next request's clock */
    struct http_req *rq = *con_cls;
    if (rq == NULL)
        return;
    *con_cls = NULL;
    http_req_free(rq);
    atomic_fetch_sub(&s->inflight, 1);
}

static void mhd_log(void *cls, const char *fmt, va_list ap) TDS_PRINTF(2, 0);
static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    guard_mhd_log(cls, fmt, ap);
}

/* ---- start / stop ---- */

/* Splits "host:port" / "[v6]:port" and resolves it.  0 or -1 with *err. */
static int resolve_listen(const char *listen, struct sockaddr_storage *ss, socklen_t *sslen,
                          char **err)
{
    const char *colon = listen ? strrchr(listen, ':') : NULL;
    if (str_empty(listen) || colon == NULL || colon == listen || colon[1] == '\0') {
        *err = xasprintf("webhooks.listen \"%s\" is not host:port", listen ? listen : "");
        return -1;
    }
    char *host = xstrndup(listen, (size_t)(colon - listen));
    if (host[0] == '[' && host[strlen(host) - 1] == ']') {
        memmove(host, host + 1, strlen(host));
        host[strlen(host) - 1] = '\0';
    }
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_NUMERICSERV | AI_PASSIVE};
    struct addrinfo *res = NULL;
    int rc = getaddrinfo(host, colon + 1, &hints, &res);
    if (rc != 0 || res == NULL) {
        *err = xasprintf("webhooks.listen \"%s\": %s", listen, gai_strerror(rc));
        free(host);
        return -1;
    }
    memcpy(ss, res->ai_addr, res->ai_addrlen);
    *sslen = res->ai_addrlen;
    freeaddrinfo(res);
    free(host);
    return 0;
}

static bool is_loopback(const struct sockaddr_storage *ss)
{
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)(const void *)ss;
        return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
    }
    if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)(const void *)ss;
        return IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr);
    }
    return false;
}

/* Stops what was started of s (each part tolerates "never started") and frees it. */
static void server_free(struct http_server *s)
{
    intake_stop(s);
    metrics_worker_stop(s, true);
    http_health_stop(s);
    guard_stop(s);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->pool.mu);
    free(s->instance);
    free(s);
}

struct http_server *http_server_start(const struct tds_config *cfg,
                                      const struct http_context *ctx, char **err)
{
    struct sockaddr_storage ss;
    socklen_t sslen = 0;
    if (resolve_listen(cfg->webhooks.listen, &ss, &sslen, err) != 0)
        return NULL;
    bool open = str_empty(cfg->webhooks.secret) && str_empty(cfg->webhooks.hmac_secret);
    if (open && !is_loopback(&ss)) {
        *err = xasprintf("webhooks.listen is %s but neither webhooks.secret nor "
                         "webhooks.hmac_secret is set: refusing to accept unauthenticated "
                         "webhooks on a non-loopback address",
                         cfg->webhooks.listen);
        return NULL;
    }
    struct http_server *s = xcalloc(1, sizeof *s);
    s->cfg = cfg;
    if (ctx)
        s->ctx = *ctx;
    s->instance = xstrdup(ctx && ctx->instance ? ctx->instance : "");
    s->ctx.instance = s->instance;
    s->auth.secret = cfg->webhooks.secret;
    s->auth.hmac_secret = cfg->webhooks.hmac_secret;
    log_register_secret(cfg->webhooks.secret);
    log_register_secret(cfg->webhooks.hmac_secret);
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    pthread_mutex_init(&s->pool.mu, NULL);
    if (guard_start(s, err) != 0 || http_health_start(s, err) != 0 ||
        metrics_worker_start(s, err) != 0 || intake_start(s, err) != 0) {
        server_free(s);
        return NULL;
    }
    unsigned maxc = (unsigned)(cfg->webhooks.max_connections > 0 ? cfg->webhooks.max_connections
                                                                 : 64);
    unsigned per_ip = (unsigned)(cfg->webhooks.max_connections_per_peer > 0
                                     ? cfg->webhooks.max_connections_per_peer
                                     : 16);
    if (per_ip > maxc)
        per_ip = maxc;
    unsigned idle = ctx && ctx->idle_timeout_s > 0 ? (unsigned)ctx->idle_timeout_s : 10;
    unsigned flags = MHD_USE_AUTO_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
    if (ss.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    s->mhd = MHD_start_daemon(
        flags, 0, NULL, NULL, on_request, s, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, s,
        MHD_OPTION_THREAD_POOL_SIZE,
        (unsigned)HTTP_POOL_THREADS, MHD_OPTION_CONNECTION_LIMIT, maxc,
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, per_ip, MHD_OPTION_CONNECTION_TIMEOUT, idle,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, s, MHD_OPTION_NOTIFY_CONNECTION,
        guard_notify, s, MHD_OPTION_SOCK_ADDR,
        (struct sockaddr *)&ss, MHD_OPTION_LISTENING_ADDRESS_REUSE, (unsigned)1, MHD_OPTION_END);
    if (s->mhd == NULL) {
        *err = xasprintf("webhooks.listen %s: cannot listen (address in use or not local?)",
                         cfg->webhooks.listen);
        server_free(s);
        return NULL;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(s->mhd, MHD_DAEMON_INFO_BIND_PORT);
    s->port = di ? di->port : 0;
    log_info("http: listening on %s (port %d)%s", cfg->webhooks.listen, s->port,
             open ? "; no webhook secret set: accepting unauthenticated webhooks on loopback"
                  : "");
    return s;
}

int http_server_port(const struct http_server *s)
{
    return s ? s->port : 0;
}

void http_server_stop(struct http_server *s)
{
    if (s == NULL)
        return;
    MHD_socket lfd = MHD_quiesce_daemon(s->mhd); /* no new connections */
    atomic_store(&s->stopping, true);
    intake_stop(s);             /* stores and resumes everything handed over */
    metrics_worker_stop(s, false); /* answers the scrapes waiting */
    /* Let resumed connections send their answers. */
    for (int i = 0; i < 300 && atomic_load(&s->inflight) > 0; i++) {
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    MHD_stop_daemon(s->mhd);
    if (lfd != MHD_INVALID_SOCKET)
        close(lfd); /* ours after quiescing, closed only once MHD's threads are gone */
    for (int i = 0; i < s->pool.nidle; i++)
        PQfinish(s->pool.idle[i]);
    server_free(s);
}
