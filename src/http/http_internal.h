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
#include <time.h>

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
    bool secret_ok;                 /* webhooks.secret matched (or none is set) */
    bool audit;                     /* not authenticated: an audit row, no body or headers */
    bool detached;                  /* a copy for the writer; nobody waits for it */
    bool unrecorded;                /* over the audit rate: no row, no log line */
    bool is_get;                    /* a GET /metrics, rendered by the metrics thread */
    char *answer_text;              /* its answer, once rendered */
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

/* What the guard knows of one connection (MHD's socket context). */
enum http_conn_phase {
    CONN_RECEIVING = 0,  /* a request (or the next one) is arriving */
    CONN_BUSY,           /* a whole request arrived: being handled or answered */
};

struct http_conn {
    struct http_conn *prev, *next;  /* oldest first */
    int fd;
    long long since_ms;             /* monotonic: when the current request began */
    int phase;                      /* enum http_conn_phase */
    bool closing;                   /* shut down by the guard */
};

/* Connection accounting, the request deadline, and log lines at a bounded rate. */
struct http_guard {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct http_conn *head, *tail;
    int nconn;
    int room_at;                    /* evict when this many connections are open */
    long long request_ms;           /* webhooks.request_timeout_seconds */
    bool stop;
    pthread_t timer;
    bool timer_started;
    /* Counted since the last summary line. */
    long long timed_out, evicted, audit_dropped;
    long long summary_at_ms;
    /* libmicrohttpd's messages: the first of each kind is logged, the rest counted. */
    struct {
        const char *fmt;
        char *first;
        long long count;
    } mhd_msgs[16];
    /* Audit rows of unauthenticated requests: a token bucket. */
    double audit_tokens;
    long long audit_at_ms;
};

struct http_health;
struct metrics_worker;

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
    struct http_guard guard;
    struct http_health *health;
    struct metrics_worker *metrics;
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
/* The thread that renders /metrics for suspended connections. */
int metrics_worker_start(struct http_server *s, char **err);
/* Joins the thread (the scrapes waiting are answered); free_it once
 * libmicrohttpd is stopped. */
void metrics_worker_stop(struct http_server *s, bool free_it);
/* Renders /metrics for rq (suspended), sets rq->answer_text, RQ_DONE, resumes. */
void metrics_submit(struct http_server *s, struct http_req *rq);

long long http_now_us(void);
/* A condition variable whose timed waits take CLOCK_MONOTONIC times. */
void http_cond_init_mono(pthread_cond_t *cv);
/* CLOCK_MONOTONIC now + ms, for pthread_cond_timedwait. */
struct timespec http_mono_after(long ms);
void http_req_free(struct http_req *rq);

/* guard.c */
#define HTTP_SUMMARY_MS 10000       /* one summary line per this many ms at most */
#define HTTP_EVICT_MIN_AGE_MS 500   /* a connection this young is never evicted */
#define HTTP_AUDIT_PER_S 10.0       /* audit rows of unauthenticated requests... */
#define HTTP_AUDIT_BURST 20.0       /* ...per second, and in a burst */
int guard_start(struct http_server *s, char **err);
void guard_stop(struct http_server *s);
/* MHD_OPTION_NOTIFY_CONNECTION */
void guard_notify(void *cls, struct MHD_Connection *c, void **socket_context,
                  enum MHD_ConnectionNotificationCode code);
/* The request on c has arrived whole (busy) or is done (receiving the next). */
void guard_set_phase(struct http_server *s, struct MHD_Connection *c, enum http_conn_phase ph);
/* True when an audit row may be written now (else it is counted and dropped). */
bool guard_audit_allowed(struct http_server *s);
/* libmicrohttpd's error log, at a bounded rate. */
void guard_mhd_log(struct http_server *s, const char *fmt, va_list ap) TDS_PRINTF(2, 0);

/* health_http.c: the background check behind /health. */
int http_health_start(struct http_server *s, char **err);
void http_health_stop(struct http_server *s);
#define HTTP_HEALTH_WAIT_MS 600     /* /health waits this long for a fresh check */

#endif
