/*
 * health_http.c: GET /health, the same verdict as `tds status` and the
 * console's dashboard (health_compute, health_to_json): 200 when healthy or
 * degraded, 503 when down (the database unreachable included).
 *
 * The check runs on a thread of its own with its own connection (statement
 * timeout 5 s), never on a listener thread: a request asks for a check newer
 * than itself and waits at most HTTP_HEALTH_WAIT_MS for it (concurrent
 * requests share one check).  When the database does not answer in time
 * (a lock, a hung server) the answer is "down", with the reason, within a
 * second instead of after the statement timeout.
 */
#include <stdlib.h>
#include <time.h>

#include "http_internal.h"
#include "tds/db.h"
#include "tds/health.h"
#include "tds/log.h"

struct http_health {
    pthread_mutex_t mu;
    pthread_cond_t want_cv, done_cv;
    unsigned long long wanted, done;  /* check generations */
    char *body;                       /* the last check's answer */
    int status;
    bool stop;
    pthread_t th;
    PGconn *conn;
    long long retry_at_ms;
};

static PGconn *health_conn(struct http_server *s, struct http_health *h)
{
    if (h->conn && PQstatus(h->conn) == CONNECTION_OK &&
        PQtransactionStatus(h->conn) == PQTRANS_IDLE)
        return h->conn;
    if (h->conn) {
        PQfinish(h->conn);
        h->conn = NULL;
    }
    if (time_mono_ms() < h->retry_at_ms)
        return NULL;
    char *err = NULL;
    PGconn *c = db_connect(s->cfg, &err);
    if (c == NULL) {
        free(err);
        h->retry_at_ms = time_mono_ms() + 1000;
        return NULL;
    }
    if (db_cmd(c, "SET statement_timeout = '5s'", 0, NULL, NULL) != 0) {
        PQfinish(c);
        h->retry_at_ms = time_mono_ms() + 1000;
        return NULL;
    }
    h->conn = c;
    return c;
}

static char *render(const struct health_report *r, int *status)
{
    cJSON *j = health_to_json(r);
    char *text = cJSON_PrintUnformatted(j);
    char *body = xstrdup(text ? text : "{}");
    cJSON_free(text);
    cJSON_Delete(j);
    *status = r->status == HEALTH_DOWN ? 503 : 200;
    return body;
}

static void *health_main(void *arg)
{
    struct http_server *s = arg;
    struct http_health *h = s->health;
    log_set_context("%s%shttp health", s->instance, str_empty(s->instance) ? "" : " ");
    pthread_mutex_lock(&h->mu);
    for (;;) {
        while (h->wanted == h->done && !h->stop)
            pthread_cond_wait(&h->want_cv, &h->mu);
        if (h->stop)
            break;
        unsigned long long gen = h->wanted;
        pthread_mutex_unlock(&h->mu);
        struct health_report r;
        health_compute(health_conn(s, h), s->cfg, &r);
        int status;
        char *body = render(&r, &status);
        health_report_free(&r);
        pthread_mutex_lock(&h->mu);
        free(h->body);
        h->body = body;
        h->status = status;
        h->done = gen;
        pthread_cond_broadcast(&h->done_cv);
    }
    pthread_mutex_unlock(&h->mu);
    return NULL;
}

int http_health_start(struct http_server *s, char **err)
{
    struct http_health *h = xcalloc(1, sizeof *h);
    pthread_mutex_init(&h->mu, NULL);
    http_cond_init_mono(&h->done_cv);
    pthread_cond_init(&h->want_cv, NULL);
    s->health = h;
    if (pthread_create(&h->th, NULL, health_main, s) != 0) {
        *err = xstrdup("http: cannot start the health thread");
        pthread_mutex_destroy(&h->mu);
        pthread_cond_destroy(&h->done_cv);
        pthread_cond_destroy(&h->want_cv);
        free(h);
        s->health = NULL;
        return -1;
    }
    return 0;
}

void http_health_stop(struct http_server *s)
{
    struct http_health *h = s->health;
    if (h == NULL)
        return;
    pthread_mutex_lock(&h->mu);
    h->stop = true;
    pthread_cond_broadcast(&h->want_cv);
    pthread_mutex_unlock(&h->mu);
    /* A check stuck on the database ends with its statement timeout. */
    pthread_join(h->th, NULL);
    if (h->conn)
        PQfinish(h->conn);
    free(h->body);
    pthread_mutex_destroy(&h->mu);
    pthread_cond_destroy(&h->done_cv);
    pthread_cond_destroy(&h->want_cv);
    free(h);
    s->health = NULL;
}

int http_health(struct http_server *s, char **body)
{
    struct http_health *h = s->health;
    struct timespec until = http_mono_after(HTTP_HEALTH_WAIT_MS);
    pthread_mutex_lock(&h->mu);
    unsigned long long mine = ++h->wanted;
    pthread_cond_signal(&h->want_cv);
    while (h->done < mine && !h->stop)
        if (pthread_cond_timedwait(&h->done_cv, &h->mu, &until) != 0)
            break;
    if (h->done >= mine && h->body) {
        *body = xstrdup(h->body);
        int st = h->status;
        pthread_mutex_unlock(&h->mu);
        return st;
    }
    pthread_mutex_unlock(&h->mu);
    /* No answer in time: down, and why. */
    struct health_report r;
    health_compute(NULL, s->cfg, &r);
    for (size_t i = 0; i < r.nreasons; i++) /* "unreachable": it is reachable but stuck */
        free(r.reasons[i]);
    r.nreasons = 0;
    r.reasons = xreallocarray(r.reasons, 1, sizeof *r.reasons);
    r.reasons[r.nreasons++] = xasprintf("database did not answer the health check within %d ms",
                                        HTTP_HEALTH_WAIT_MS);
    int st;
    *body = render(&r, &st);
    health_report_free(&r);
    return st;
}
