/*
 * intake.c: stores webhook requests in tds.inbox and turns accepted ones
 * into queue items: group commit.  Listener threads hand requests over and
 * suspend the connection; a writer takes every request waiting (up to
 * HTTP_BATCH_MAX) and stores the batch with one call of tds.webhook_intake
 * (0005_http.sql): one statement, one commit, then answers them all.  Under
 * load the batch grows while the previous commit is flushed, so throughput
 * follows the disk's flush rate times the batch, and no 202 is ever sent
 * before its row is committed.
 *
 * Failures: a batch that fails with a data error (SQLSTATE class 22 or 23:
 * one bad request) is retried request by request; a request that still
 * fails is stored as a bare 'rejected' row if possible and answered 503.
 * A lost connection is re-established and the batch retried once; any
 * other error (a timeout, an unmigrated schema) answers the batch 503.  When the database is unreachable every request
 * is answered 503 (nothing accepted, nothing lost: Zoho retries) and the
 * writer reconnects at most once a second.
 */
#include <stdlib.h>
#include <string.h>

#include "http_internal.h"
#include "tds/db.h"
#include "tds/log.h"

struct writer {
    struct http_server *srv;
    PGconn *conn;
    long long retry_at_ms;
    bool down_logged;
};

/* Connects if needed; NULL while the database is unreachable. */
static PGconn *writer_conn(struct writer *w)
{
    if (w->conn && PQstatus(w->conn) == CONNECTION_OK)
        return w->conn;
    if (w->conn) {
        PQfinish(w->conn);
        w->conn = NULL;
    }
    if (time_mono_ms() < w->retry_at_ms)
        return NULL;
    char *err = NULL;
    w->conn = db_connect(w->srv->cfg, &err);
    if (w->conn == NULL) {
        if (!w->down_logged)
            log_error("http intake: %s: answering webhooks 503 until it is back", err);
        w->down_logged = true;
        free(err);
        w->retry_at_ms = time_mono_ms() + 1000;
        return NULL;
    }
    if (db_cmd(w->conn, "SET statement_timeout = '15s'", 0, NULL, NULL) != 0) {
        PQfinish(w->conn);
        w->conn = NULL;
        w->retry_at_ms = time_mono_ms() + 1000;
        return NULL;
    }
    if (w->down_logged)
        log_info("http intake: database reachable again");
    w->down_logged = false;
    return w->conn;
}

static void add_str(cJSON *o, const char *k, const char *v)
{
    if (v)
        cJSON_AddStringToObject(o, k, v);
}

/* The metadata object of one request (see tds.webhook_intake). */
static cJSON *request_meta(const struct http_req *rq, int max_attempts)
{
    cJSON *o = cJSON_CreateObject();
    const struct webhook_verdict *v = &rq->v;
    if (v->entity)
        cJSON_AddStringToObject(o, "entity", v->entity->name);
    add_str(o, "zoho_id", v->zoho_id);
    add_str(o, "lmt", v->last_modified_time);
    add_str(o, "remote_addr", rq->remote_addr);
    add_str(o, "method", rq->method);
    add_str(o, "path", rq->path);
    add_str(o, "content_type", rq->content_type);
    cJSON_AddItemReferenceToObject(o, "headers", rq->headers);
    cJSON_AddNumberToObject(o, "body_size", (double)rq->total);
    cJSON_AddStringToObject(o, "status", v->http_status == 202 ? "queued" : "rejected");
    add_str(o, "reject_reason", v->error);
    cJSON_AddNumberToObject(o, "http_status", v->http_status);
    /* The queue item takes its attempts from engine.retry.max_attempts, as
     * every item the engine makes does. */
    if (max_attempts > 0)
        cJSON_AddNumberToObject(o, "max_attempts", max_attempts);
    if (v->http_status == 202 && v->hint)
        cJSON_AddItemToObject(o, "hint", cJSON_CreateRaw(v->hint));
    else
        cJSON_AddNullToObject(o, "hint");
    return o;
}

/*
 * Stores n requests in one statement.  Returns 0 and fills each request's
 * result, or -1 (nothing stored; *conn_lost tells whether the connection
 * died).
 */
static int store_batch(PGconn *c, struct http_req **rqs, int n, int max_attempts,
                       bool *conn_lost, bool *data_error)
{
    *conn_lost = false;
    *data_error = false;
    cJSON *meta = cJSON_CreateArray();
    struct strbuf sql = {0};
    strbuf_puts(&sql, "SELECT out_inbox, out_queue, out_dup FROM tds.webhook_intake($1::jsonb, "
                      "ARRAY[");
    const char **vals = xcalloc((size_t)n + 1, sizeof *vals);
    int *lens = xcalloc((size_t)n + 1, sizeof *lens);
    int *fmts = xcalloc((size_t)n + 1, sizeof *fmts);
    for (int i = 0; i < n; i++) {
        cJSON_AddItemToArray(meta, request_meta(rqs[i], max_attempts));
        strbuf_printf(&sql, "%s$%d::bytea", i ? "," : "", i + 2);
        vals[i + 1] = rqs[i]->body ? (const char *)rqs[i]->body : "";
        lens[i + 1] = (int)rqs[i]->len;
        fmts[i + 1] = 1;
    }
    strbuf_puts(&sql, "]::bytea[])");
    char *mtext = cJSON_PrintUnformatted(meta);
    vals[0] = mtext;
    PGresult *r = PQexecParams(c, sql.buf, n + 1, NULL, vals, lens, fmts, 0);
    int rc = -1;
    if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == n) {
        for (int i = 0; i < n; i++) {
            struct http_req *rq = rqs[i];
            rq->inbox_id = strtoll(PQgetvalue(r, i, 0), NULL, 10);
            rq->queue_id = PQgetisnull(r, i, 1) ? 0 : strtoll(PQgetvalue(r, i, 1), NULL, 10);
            rq->dup_of = PQgetisnull(r, i, 2) ? 0 : strtoll(PQgetvalue(r, i, 2), NULL, 10);
            rq->status = rq->v.http_status;
        }
        rc = 0;
    } else {
        char *line = db_error_line(c);
        log_error("http intake: storing %d webhook request%s failed: %s", n, n == 1 ? "" : "s",
                  line);
        free(line);
        *conn_lost = PQstatus(c) != CONNECTION_OK;
        /* Data exceptions and integrity violations belong to one request;
         * anything else (timeouts, a missing function...) to all of them. */
        const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
        *data_error = state && (strncmp(state, "22", 2) == 0 || strncmp(state, "23", 2) == 0);
    }
    PQclear(r);
    cJSON_free(mtext);
    cJSON_Delete(meta);
    strbuf_free(&sql);
    free(vals);
    free(lens);
    free(fmts);
    return rc;
}

/* Last resort for a request the intake function refused: a bare row. */
static void store_bare(PGconn *c, struct http_req *rq)
{
    char bs[24];
    snprintf(bs, sizeof bs, "%llu", rq->total);
    const char *p[] = {rq->remote_addr, rq->method, rq->path, bs};
    PGresult *r = db_exec(c,
                          "INSERT INTO tds.inbox (remote_addr, method, path, body_size, status,"
                          " reject_reason, http_status) VALUES ($1, $2, $3, $4::bigint,"
                          " 'rejected', 'intake failed: see the engine log', 503) RETURNING id",
                          4, p, NULL);
    if (r) {
        rq->inbox_id = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
        PQclear(r);
    }
    rq->status = 503;
}

/* Stores a batch, falling back as described at the top of the file. */
static void store(struct http_server *srv, struct writer *w, PGconn *fixed, struct http_req **rqs,
                  int n)
{
    int max_attempts = srv->cfg->engine.retry.max_attempts;
    for (int attempt = 0; attempt < 2; attempt++) {
        PGconn *c = fixed ? fixed : writer_conn(w);
        if (c == NULL)
            break;
        bool lost = false, data_error = false;
        if (store_batch(c, rqs, n, max_attempts, &lost, &data_error) == 0)
            return;
        if (!lost && !data_error)
            break;
        if (!lost) {
            if (n == 1) {
                store_bare(c, rqs[0]);
                return;
            }
            for (int i = 0; i < n; i++)
                store(srv, w, fixed, &rqs[i], 1);
            return;
        }
        if (fixed)
            break;
    }
    for (int i = 0; i < n; i++)
        rqs[i]->status = 503;
}

static void finish(struct http_req *rq)
{
    if (rq->detached) { /* an audit row nobody waits for */
        http_req_free(rq);
        return;
    }
    struct MHD_Connection *conn = rq->conn;
    atomic_store(&rq->state, RQ_DONE);
    MHD_resume_connection(conn); /* rq may be freed from here on */
}

static void *writer_main(void *arg)
{
    struct writer *w = arg;
    struct http_server *s = w->srv;
    if (str_empty(s->instance))
        log_set_context("http writer");
    else
        log_set_context("%s http writer", s->instance);
    struct http_req *batch[HTTP_BATCH_MAX];
    for (;;) {
        pthread_mutex_lock(&s->mu);
        while (s->head == NULL && !atomic_load(&s->stopping))
            pthread_cond_wait(&s->cv, &s->mu);
        if (s->head == NULL) {
            pthread_mutex_unlock(&s->mu);
            break;
        }
        int n = 0;
        size_t bytes = 0;
        while (s->head && n < HTTP_BATCH_MAX && (n == 0 || bytes + s->head->len <= HTTP_BATCH_BYTES)) {
            struct http_req *rq = s->head;
            s->head = rq->next;
            rq->next = NULL;
            bytes += rq->len;
            batch[n++] = rq;
        }
        if (s->head == NULL)
            s->tail = NULL;
        pthread_mutex_unlock(&s->mu);
        store(w->srv, w, NULL, batch, n);
        for (int i = 0; i < n; i++)
            finish(batch[i]);
    }
    if (w->conn)
        PQfinish(w->conn);
    free(w);
    return NULL;
}

int intake_start(struct http_server *s, char **err)
{
    for (int i = 0; i < HTTP_WRITERS; i++) {
        struct writer *w = xcalloc(1, sizeof *w);
        w->srv = s;
        if (pthread_create(&s->writers[i], NULL, writer_main, w) != 0) {
            free(w);
            *err = xstrdup("http intake: cannot start a writer thread");
            intake_stop(s);
            return -1;
        }
        s->nwriters++;
    }
    return 0;
}

void intake_stop(struct http_server *s)
{
    pthread_mutex_lock(&s->mu);
    atomic_store(&s->stopping, true);
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    for (int i = 0; i < s->nwriters; i++)
        pthread_join(s->writers[i], NULL);
    /* Anything handed over after the writers left: 503, not stored. */
    pthread_mutex_lock(&s->mu);
    s->nwriters = 0;
    struct http_req *rq = s->head;
    s->head = s->tail = NULL;
    pthread_mutex_unlock(&s->mu);
    while (rq) {
        struct http_req *next = rq->next;
        rq->status = 503;
        finish(rq);
        rq = next;
    }
}

void intake_submit(struct http_server *s, struct http_req *rq)
{
    pthread_mutex_lock(&s->mu);
    if (s->nwriters == 0) {
        pthread_mutex_unlock(&s->mu);
        rq->status = 503;
        finish(rq);
        return;
    }
    rq->next = NULL;
    if (s->tail)
        s->tail->next = rq;
    else
        s->head = rq;
    s->tail = rq;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

void intake_store_now(struct http_server *s, struct http_req *rq)
{
    PGconn *c = http_pool_get(s);
    if (c == NULL) {
        rq->status = 503;
        return;
    }
    store(s, NULL, c, &rq, 1);
    http_pool_put(s, c);
}
