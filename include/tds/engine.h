/*
 * engine.h: the sync engine: a pool of worker threads draining the queue,
 * a control thread (LISTEN/NOTIFY, heartbeat, pause, claiming runs for job
 * threads), a leader thread (scheduler and janitor, on one engine of the
 * fleet at a time) and a notifier thread for alerts.notify_url.  Several
 * engines share one database; each is a row of tds.engines.
 *
 * Work is pluggable: run handlers by run type, item handlers by entity and
 * operation.  Handlers are registered process-wide, before engine_start.
 */
#ifndef TDS_ENGINE_H
#define TDS_ENGINE_H

#include <libpq-fe.h>
#include <stdbool.h>

#include "tds/config.h"
#include "tds/queue.h"
#include "tds/runs.h"
#include "tds/util.h"

/* Engine states (tds.engines.state). */
enum engine_state {
    ENGINE_STARTING = 0, /* registering */
    ENGINE_RUNNING,      /* claiming work */
    ENGINE_PAUSED,       /* paused by pause_requested or the fleet switch */
    ENGINE_DRAINING,     /* stop requested: finishing the batch in hand */
    ENGINE_STOPPED,      /* gone (cleanly) */
    ENGINE__COUNT
};
const char *engine_state_name(enum engine_state s);

struct engine;

/*
 * Makes an engine (not started).  instance NULL or "" uses
 * cfg->engine.instance, or "host-pid" when that is empty too; mode is
 * "embedded", "daemon" or "cli".  cfg must stay valid for the engine's
 * lifetime.  Returns the engine, or NULL with *err (bad mode/instance).
 */
/* The instance name of this process (malloc'd): instance (--instance) if
 * given, else engine.instance, else HOST-PID.  The engine, the Zoho
 * client's usage and token rows and the listener all use this one. */
char *engine_instance_name(const struct tds_config *cfg, const char *instance);

struct engine *engine_new(const struct tds_config *cfg, const char *instance, const char *mode,
                          char **err) TDS_MUST_CHECK;

/*
 * Timings that tests shorten (milliseconds; 0 keeps the default):
 * leader lease time-to-live (20000) and renewal (5000), scheduler tick
 * (5000), janitor pass interval (15000), notifier poll (5000).
 * Call before engine_start.
 */
struct engine_timing {
    int leader_ttl_ms;
    int leader_renew_ms;
    int sched_tick_ms;
    int janitor_interval_ms;
    int notify_poll_ms;
};
void engine_set_timing(struct engine *e, const struct engine_timing *t);

/*
 * The scheduler's clock, for tests: now(arg) returns the time in seconds
 * since the epoch, with its fraction.  By default the scheduler reads the
 * database's clock (shared by the fleet).  Call before engine_start.
 */
void engine_set_clock(struct engine *e, double (*now)(void *arg), void *arg);

/*
 * Connects, registers in tds.engines (refusing when a live engine already
 * uses this instance name), and starts the threads.  Returns 0, or -1 with
 * *err (caller frees) and nothing left running.
 */
int engine_start(struct engine *e, char **err) TDS_MUST_CHECK;

/* Asks the engine to stop gracefully; returns at once.  Workers finish the
 * batch in hand and release leases of items not started; runs that cannot
 * finish are marked interrupted.  Safe from a signal-handling thread, not
 * from a signal handler. */
void engine_request_stop(struct engine *e);

/* Waits up to timeout_ms (<0: forever) for every thread to end.  Returns 0
 * when stopped (engine row marked stopped), -1 on timeout. */
int engine_join(struct engine *e, int timeout_ms);

/* Stops (if needed, waiting), and frees.  NULL is fine. */
void engine_free(struct engine *e);

struct engine_status {
    enum engine_state state;
    char instance[128];
    int workers;
    int busy;        /* workers in a batch now */
    int runs_active; /* job threads running a run */
    bool leader;     /* holds the scheduler/janitor lease */
    bool paused_self, paused_fleet;
    long long items_ok, items_failed; /* since start */
    long long batches;
};
/* Fills *st from in-memory state.  This function can't fail. */
void engine_status(struct engine *e, struct engine_status *st);

/* Applies the reloadable keys of newcfg (batch size, lease, poll, retry,
 * alert thresholds and notify_url, schedule lines, ...).  newcfg is copied,
 * not retained. */
void engine_reload(struct engine *e, const struct tds_config *newcfg);

/* Wakes workers and the leader thread now (tests, `tds sync`).  Can't fail. */
void engine_kick(struct engine *e);

/* --- pluggable work (process-wide registry; register before engine_start) --- */

/* Registers the handler of one run type ("stock", ...), replacing any earlier one. */
void engine_register_run_handler(const char *run_type, run_handler_fn fn, void *arg);

/* What an item handler returns. */
enum item_result {
    ITEM_OK = 0,     /* applied */
    ITEM_RETRY = -1, /* failed; retried with backoff, then dead-lettered */
    ITEM_FATAL = -2, /* cannot ever succeed (bad payload): dead-lettered at once */
};

/*
 * An item handler runs inside the batch's transaction on conn (under a
 * savepoint when the batch falls back to per-item mode): its writes commit
 * together with the item's completion.  On failure it sets *err (malloc'd).
 */
typedef enum item_result (*item_handler_fn)(PGconn *conn, const struct queue_item *item, void *arg,
                                            char **err);

/*
 * Registers a handler for entity (NULL: any) and op ("upsert", "delete",
 * NULL: any).  The most specific registration wins; without one, known
 * entities get the default payload-based upsert / delete-mark (apply.h).
 */
void engine_register_item_handler(const char *entity, const char *op, item_handler_fn fn,
                                  void *arg);
/*
 * Registers the handler of upserts of known entities that ask for their
 * record to be fetched from Zoho: no payload, or {"refetch": true}.  An
 * upsert that carries its record is applied by the default handler, in
 * bulk (a handler registered for its entity still comes first).
 */
void engine_register_refetch_handler(item_handler_fn fn, void *arg);
/*
 * The fetch half of a refetch, which the worker runs BEFORE the batch's
 * transaction opens (no transaction is ever held across a Zoho call), the
 * batch's leases extended while it fetches.  fetch sets *record (malloc'd
 * JSON of the record) and returns REFETCH_RECORD, or REFETCH_GONE (Zoho no
 * longer has it), or an item_result failure with *err.  The fetched record
 * (or {"tds_gone": true}) becomes the item's payload for the refetch
 * handler, which then applies it without calling Zoho.
 */
enum { REFETCH_RECORD = 1, REFETCH_GONE = 2 };
typedef int (*refetch_fetch_fn)(const struct queue_item *item, void *arg, char **record,
                                char **err);
void engine_register_refetch_fetcher(refetch_fetch_fn fn, void *arg);
/* Forgets every registration (tests).  Not while an engine runs. */
void engine_clear_handlers(void);

/*
 * Pauses or resumes: the whole fleet (tds.control 'paused') when fleet is
 * true, else the engine named instance (tds.engines.pause_requested).  who
 * is recorded.  Engines react at once (NOTIFY tds_control).  Returns 0, or
 * -1 with *err (e.g. no engine of that name).
 */
int control_set_paused(PGconn *c, bool fleet, const char *instance, bool paused, const char *who,
                       char **err) TDS_MUST_CHECK;

#endif
