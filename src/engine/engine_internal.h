/*
 * engine_internal.h: what the engine's files share: the engine object, the
 * run context, the handler registry, and the batch-level helpers of the
 * queue and of the default item handler.
 */
#ifndef TDS_ENGINE_INTERNAL_H
#define TDS_ENGINE_INTERNAL_H

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "tds/apply.h"
#include "tds/engine.h"
#include "tds/entity.h"
#include "tds/queue.h"
#include "tds/runs.h"

/* Reloadable settings: a private copy of the keys the engine reads while
 * running (strings owned; others NULL).  Guarded by engine.cfg_lock. */
void engine_settings_copy(struct tds_config *dst, const struct tds_config *src);
void engine_settings_free(struct tds_config *s);
/* Overwrites dst's reloadable settings without strings (engine, alerts,
 * stock, images.enabled, reconcile, zoho.rate_limit and timeout) with
 * set's: a run's view of the configuration as of its start. */
void engine_settings_apply(struct tds_config *dst, const struct tds_config *set);

struct run_ctx {
    struct engine *e;
    long long id, resumed_from;
    char *type, *entity, *trigger, *config_json;
    struct tds_config cfg; /* the caller's, with the reloadable settings as of the start */
    PGconn *conn;
    atomic_bool cancel;      /* cancel_requested seen, or engine stopping */
    atomic_bool user_cancel; /* cancel_requested (vs. engine stop) */
    atomic_bool lost;        /* no longer this engine's: taken over after a stall */
    atomic_llong d_total, d_succeeded, d_failed, d_unchanged, d_api; /* unflushed deltas */
    atomic_llong expected;                                           /* -1: unknown */
    pthread_t thread;
    atomic_bool finished;
    struct run_ctx *next;
};

#define ENGINE_MAX_RUNS 4

struct engine {
    const struct tds_config *cfg; /* the caller's, for handlers */
    struct tds_config dbcfg;      /* database.* only, owned */
    pthread_rwlock_t cfg_lock;
    struct tds_config set; /* reloadable settings, owned */
    char *instance, *mode, *host;
    struct engine_timing timing;
    double (*clock)(void *arg); /* the scheduler's clock; NULL: the database's */
    void *clock_arg;

    pthread_mutex_t mu;
    pthread_cond_t work_cv; /* workers wait here; broadcast on NOTIFY tds_queue */
    pthread_cond_t leader_cv;
    pthread_cond_t lease_cv; /* the lease thread's timer; broadcast on stop */
    pthread_cond_t done_cv; /* live_threads reached 0 */
    unsigned long work_seq; /* bumped on every wake-up (mu) */
    unsigned long leader_seq;
    int live_threads;     /* (mu) */
    struct run_ctx *runs; /* active job threads (mu) */

    atomic_int state; /* enum engine_state */
    atomic_bool stop;
    volatile sig_atomic_t stop_sig; /* the same, for db_connect_retry */
    atomic_bool paused_self, paused_fleet, leader;
    /* The leader lease, renewed by its own thread: held until (monotonic
     * ms) at the epoch it was taken at; leader means leader_until is ahead. */
    atomic_llong leader_until, leader_epoch;
    atomic_int busy, runs_active;
    atomic_llong items_ok, items_failed, batches;
    atomic_llong stat_ok, stat_failed; /* not yet flushed to tds.stats_minute */
    atomic_bool drained_dirty;         /* work done since the last tds.queue.empty */
    atomic_llong db_down_since_ms;     /* wall ms of the first failure, 0: reachable */
    atomic_llong db_reported_ms;       /* wall ms the last outage was reported over */

    pthread_t *workers;
    int nworkers;
    pthread_t control_thread, leader_thread, lease_thread, notify_thread;
    bool started, joined;
};

/* Registry lookups (engine.c). */
run_handler_fn engine_find_run_handler(const char *run_type, void **arg);
bool engine_has_run_handlers(void);
/* Fills a text[] literal of the registered run types ("{stock,full}"). */
char *engine_run_types_literal(void);
item_handler_fn engine_find_item_handler(const char *entity, const char *op, void **arg);
item_handler_fn engine_find_refetch_handler(void **arg);
refetch_fetch_fn engine_find_refetch_fetcher(void **arg);

/* Wakes waiting workers / the leader thread. */
void engine_wake_workers(struct engine *e);
void engine_wake_leader(struct engine *e);
/* Sleeps on cv until seq changes, stop, or timeout_ms. */
void engine_wait(struct engine *e, pthread_cond_t *cv, unsigned long *seq, int timeout_ms);

/* A database call failed on c: if the connection is gone, reconnects with
 * backoff (raising db_unreachable once back) and returns the new connection
 * (or NULL when stopping); if not, returns c. */
PGconn *engine_db_recover(struct engine *e, PGconn *c);
/* The first connection of a thread (retrying until stop). */
PGconn *engine_connect(struct engine *e);

/* Thread bodies. */
void *worker_main(void *arg);
void *control_main(void *arg);
void *leader_main(void *arg);
void *lease_main(void *arg);
/* This engine leads now (its lease has not run out unrenewed). */
bool engine_leads(struct engine *e);
/* In a transaction, before a leader-only write: locks the lease row
 * (FOR SHARE) if it is still this engine's at the epoch it took.  1 held,
 * 0 not (do not write), -1 with *err. */
int engine_leader_fence(struct engine *e, PGconn *c, char **err);
void *notify_main(void *arg);
/* A worker's state for worker_main (which frees it). */
void *worker_new(struct engine *e, int idx);

/* Scheduler and janitor passes (leader thread). */
void sched_tick(struct engine *e, PGconn *c);
void janitor_pass(struct engine *e, PGconn *c);

/* Runs (runs.c). */
int runs_claim(struct engine *e, PGconn *c, struct run_ctx **out, char **err);
void *runs_job_main(void *arg);
/* Heartbeat + counter flush of the engine's active runs; reads cancel_requested. */
void runs_heartbeat(struct engine *e, PGconn *c);
void run_ctx_free(struct run_ctx *ctx);
/* Janitor: marks runs of dead engines interrupted, resumes interrupted runs. */
struct runs_heal_result {
    long long interrupted; /* running runs whose engine stopped heartbeating */
    long long given_up;    /* crashed more than max_resumes engines: failed */
    long long resumed;     /* interrupted runs resumed as new runs */
};
int runs_heal(PGconn *c, int dead_after_s, int max_resumes, struct runs_heal_result *out,
              char **err);

/* The failure bookkeeping of one claimed item (queue.c). */
int queue_fail_item(PGconn *c, const struct queue_item *it, const char *holder, const char *error,
                    bool fatal, long long delay_ms, bool *dead, char **err);

/* The default handler over a group of items of one entity and operation
 * (apply.c).  recs[i] is the mapped record of items[i] (upsert only).
 * Completes the items still held by holder and applies them in one
 * statement; *done gets the items completed, *changed the rows written.
 * strict: apply only the items completed (per-item path); otherwise all
 * must be held, else -1 (the caller rolls back and replays strictly).
 * Returns 0, or -1 with *err (the caller rolls back). */
int apply_group(PGconn *c, const struct entity_desc *d, enum queue_op op,
                const struct queue_item *const *items, struct entity_record *const *recs, int n,
                const char *holder, bool strict, long long *done, long long *changed, char **err);
/* The bulk form of apply_group for upserts of d: the payloads are read
 * and mapped in SQL, where only plain values are taken (apply.c).  Every
 * item must be held and its record's id unique in the group; else -1 with
 * *err, and the caller rolls back and replays item by item. */
int apply_group_sql(PGconn *c, const struct entity_desc *d, const struct queue_item *const *items,
                    int n, const char *holder, long long *done, long long *changed, char **err);
/* Maps an upsert payload for d: id and typed values (raw stays NULL: the
 * statement reads the queued payload).  0, or -1 with *err (bad: fatal). */
int apply_map_payload(const struct entity_desc *d, const struct queue_item *it,
                      struct entity_record *rec, char **err);

#endif
