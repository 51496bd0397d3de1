/*
 * http_internal.h: what the listener's files share (listener.c accepts and
 * answers, intake.c stores webhook requests in batches, health_http.c and
 * metrics_http.c render GET answers).  Not for use outside src/http.
 */
#ifndef TDS_HTTP_INTERNAL_H
#define TDS_HTTP_INTERNAL_H

#include <cjson/cJSON.h>
#include <libpq-fe.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdatomic.h>

#include "tds/http.h"

#define HTTP_POOL_THREADS 4     /* libmicrohttpd threads */
#define HTTP_WRITERS 2          /* inbox writer threads (group commit) */
#define HTTP_BATCH_MAX 256      /* requests per writer transaction */
#define HTTP_BATCH_BYTES (8 * 1024 * 1024)
/* A body declared over the limit is read (keeping the first bytes for the
 * inbox) up to this size; a larger one is refused before it is read. */
#define HTTP_READ_TOO_LARGE_MAX (16 * 1024 * 1024)

enum http_req_state {
    RQ_RECEIVING = 0,   /* headers read, body arriving */
    RQ_WAITING,         /* handed to a writer, connection suspended */
    RQ_DONE,            /* stored (or not, 503): answer ready */
};

/* One webhook request from its first byte to its answer. */
struct http_req {
    struct http_server *srv;
    struct MHD_Connection *conn;
    long long t0_us;                /* monotonic, for tds_webhook_intake_seconds */
    _Atomic int state;              /* enum http_req_state */
    bool answered;
    char *method, *path, *content_type, *remote_addr;
    char *secret_header, *secret_query, *signature; /* wiped before free */
    cJSON *headers;                 /* as stored: secrets redacted */
    unsigned char *body;            /* at most WEBHOOK_MAX_BODY bytes kept */
    size_t len, cap;
    unsigned long long total;       /* bytes the client sent or declared */
    bool too_large;
    unsigned long long declared_too_large; /* Content-Length over the limit */
    struct webhook_verdict v;
    /* Set by the writer. */
    int status;                     /* HTTP status of the answer */
    long long inbox_id, queue_id, dup_of;
    struct http_req *next;
};

/* A few idle database connections for GET handlers. */
struct http_pool {
    pthread_mutex_t mu;
    PGconn *idle[HTTP_POOL_THREADS];
    int nidle;
    long long retry_at_ms;          /* after a failed connect, fail fast until then */
};

struct http_server {
    struct MHD_Daemon *mhd;
    const struct tds_config *cfg;
    struct http_context ctx;
    char *instance;
    struct webhook_auth auth;
    int port;
    atomic_bool stopping;
    atomic_int inflight;            /* requests between first byte and completion */
    /* Intake queue, drained by the writers. */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct http_req *head, *tail;
    pthread_t writers[HTTP_WRITERS];
    int nwriters;
    struct http_pool pool;
};

/* intake.c */
int intake_start(struct http_server *s, char **err);
/* Writers store everything queued, then exit. */
void intake_stop(struct http_server *s);
/* Hands rq to a writer; the writer sets rq->status etc., marks it RQ_DONE
 * and resumes rq->conn.  The caller has suspended the connection. */
void intake_submit(struct http_server *s, struct http_req *rq);
/* Stores rq now on a pooled connection (rare paths, e.g. an early 413). */
void intake_store_now(struct http_server *s, struct http_req *rq);

/* listener.c: the GET pool */
PGconn *http_pool_get(struct http_server *s);
void http_pool_put(struct http_server *s, PGconn *c);

/* health_http.c: the /health answer; *body is malloc'd. */
int http_health(struct http_server *s, char **body);
/* metrics_http.c: the /metrics exposition; malloc'd. */
char *http_metrics(struct http_server *s);

long long http_now_us(void);

#endif
