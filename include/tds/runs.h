/*
 * runs.h: sync runs (tds.sync_runs) as any process sees them, and the
 * context a run handler works in.  A run goes pending -> running ->
 * completed | failed | cancelled, or running -> interrupted when its engine
 * dies or stops; the janitor resumes interrupted runs as new runs whose
 * resumed_from points at them.  Exactly one engine claims each pending run.
 */
#ifndef TDS_RUNS_H
#define TDS_RUNS_H

#include <libpq-fe.h>
#include <stdbool.h>

#include "tds/config.h"
#include "tds/events.h"
#include "tds/queue.h"
#include "tds/util.h"

enum run_status {
    RUN_PENDING = 0, /* requested, waiting for an engine */
    RUN_RUNNING,     /* claimed by owner, heartbeat_at kept fresh */
    RUN_COMPLETED,   /* handler finished */
    RUN_FAILED,      /* handler gave up; error says why */
    RUN_CANCELLED,   /* someone cancelled it */
    RUN_INTERRUPTED, /* its engine died or stopped; resumed by a new run */
    RUN_COMPLETED_WITH_ERRORS, /* finished, but some records were dead-lettered */
    RUN__COUNT
};
const char *runs_status_name(enum run_status s);
/* Name -> status; false if unknown. */
bool runs_status_parse(const char *s, enum run_status *out) TDS_MUST_CHECK;

/*
 * Requests a run: run_type full|incremental|stock|items|webhook|reconcile,
 * entity_type (NULL: all), trigger manual|schedule|webhook|cli|heal,
 * config_json (NULL: {}), requested_by (may be NULL).  Wakes the engines
 * (NOTIFY tds_runs at commit).  *id (may be NULL) receives the run's id.
 * Returns 0, or -1 with *err naming what was wrong.
 */
int runs_request(PGconn *c, const char *run_type, const char *entity_type, const char *trigger,
                 const char *config_json, const char *requested_by, long long *id,
                 char **err) TDS_MUST_CHECK;

/*
 * Runs of one kind never overlap fleet-wide: two runs overlap when their
 * kind is the same and their entities meet (NULL: every entity).  A run
 * starts only when no overlapping run is running.  runs_request_info is
 * runs_request that says what happened: a request equal to an active run
 * (same kind, entity and options, not a specific-item sync) joins it
 * (joined, id is that run's); otherwise the new run is pending and, when an
 * overlapping run is running, waits_for names it.
 */
struct run_request_info {
    long long id;        /* the run to follow */
    bool joined;         /* id is an active run equal to the request */
    long long waits_for; /* a running run in the way; 0 none */
};
int runs_request_info(PGconn *c, const char *run_type, const char *entity_type,
                      const char *trigger, const char *config_json, const char *requested_by,
                      struct run_request_info *info, char **err) TDS_MUST_CHECK;

/*
 * Starts a run in this process (`tds sync --wait`): inserts it running,
 * owned by owner, unless an overlapping run is running (with a heartbeat
 * newer than dead_after_s: an older one is dead): then returns 1 and
 * *in_the_way gets that run's id.  Returns 0 with *id, or -1 with *err.
 */
int runs_start_here(PGconn *c, const char *run_type, const char *entity_type,
                    const char *config_json, const char *owner, const char *requested_by,
                    int dead_after_s, long long *id, long long *in_the_way,
                    char **err) TDS_MUST_CHECK;

/*
 * Cancels a run: a pending one at once, a running one by asking its engine
 * (cancel_requested, NOTIFY tds_control), which stops it at its next check.
 * Returns 0, or -1 with *err when the run does not exist or has finished.
 */
int runs_cancel(PGconn *c, long long id, const char *who, char **err) TDS_MUST_CHECK;

/* --- inside an engine: the context of a running run --- */

struct run_ctx;

/* The run's identity and request (strings owned by ctx, never NULL but entity may be ""). */
long long run_ctx_id(const struct run_ctx *ctx);
const char *run_ctx_type(const struct run_ctx *ctx);
const char *run_ctx_entity(const struct run_ctx *ctx); /* "" when NULL in the row */
const char *run_ctx_trigger(const struct run_ctx *ctx);
const char *run_ctx_config_json(const struct run_ctx *ctx); /* the run's config jsonb */
long long run_ctx_resumed_from(const struct run_ctx *ctx);  /* 0: a fresh run */
/* The engine's configuration (zoho credentials etc.), valid while the run lasts. */
const struct tds_config *run_ctx_tds_config(const struct run_ctx *ctx);
/* The job thread's own connection (autocommit between the handler's transactions). */
PGconn *run_ctx_conn(struct run_ctx *ctx);
/* True once someone cancelled the run or the engine is stopping: return soon. */
bool run_ctx_cancelled(const struct run_ctx *ctx);

/* Adds to the run's counters (flushed with every heartbeat and at the end).  Can't fail. */
void run_ctx_add(struct run_ctx *ctx, long long total, long long succeeded, long long failed,
                 long long unchanged, long long api_calls);
/* Sets expected_total (progress).  Can't fail. */
void run_ctx_set_expected(struct run_ctx *ctx, long long expected_total);

/* Enqueues an item linked to this run (see queue_enqueue; opts->run_id is set for you). */
int run_ctx_enqueue(struct run_ctx *ctx, const char *entity_type, const char *zoho_id,
                    enum queue_op op, const char *payload_json, int priority, long long *id,
                    char **err) TDS_MUST_CHECK;
/* Emits an event tagged with this run. */
int run_ctx_emit(struct run_ctx *ctx, enum event_type type, const char *entity_type,
                 const char *entity_id, const char *data_json, char **err) TDS_MUST_CHECK;

/*
 * A run handler: does the run's work on its own job thread.  Returns 0 when
 * the work is done (the run completes), -1 with *err (the run fails with
 * that message).  When run_ctx_cancelled() becomes true it should return
 * promptly (either value): the engine records cancelled or interrupted.
 */
typedef int (*run_handler_fn)(struct run_ctx *ctx, void *arg, char **err);

#endif
