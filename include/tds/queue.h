/*
 * queue.h: the work queue (tds.sync_queue) and the dead-letter queue
 * (tds.dead_letter), usable from any process that holds a PGconn: the
 * engine's workers, the console and the CLI.  See DESIGN.md, "The queue".
 *
 * An item folds: enqueueing a change for a record that already has a
 * pending item replaces that item's payload (newest wins) instead of adding
 * a row.  Workers claim batches with FOR UPDATE SKIP LOCKED by priority then
 * age and hold a lease (locked_by, locked_until), not a lock.
 */
#ifndef TDS_QUEUE_H
#define TDS_QUEUE_H

#include <libpq-fe.h>
#include <stdbool.h>

#include "tds/config.h"
#include "tds/util.h"

/* Queue item states (tds.sync_queue.status). */
enum queue_status {
    QS_PENDING = 0, /* waiting; at most one per (entity_type, zoho_id) */
    QS_PROCESSING,  /* claimed under a lease by locked_by until locked_until */
    QS_RETRY,       /* failed or reclaimed; claimable again at next_attempt_at */
    QS_COMPLETED,   /* applied; pruned after engine.cleanup_after_days */
    QS_DEAD,        /* moved to tds.dead_letter */
    QS__COUNT
};
const char *queue_status_name(enum queue_status s);

enum queue_op {
    QOP_UPSERT = 0,
    QOP_DELETE,
};
const char *queue_op_name(enum queue_op op);
/* "upsert"/"delete" -> op; false if neither. */
bool queue_op_parse(const char *s, enum queue_op *op) TDS_MUST_CHECK;

/* One claimed item, as a handler sees it.  Strings are owned by the batch. */
struct queue_item {
    long long id;
    long long run_id; /* 0: none */
    const char *entity_type;
    const char *zoho_id;
    enum queue_op op;
    const char *payload; /* JSON text or NULL */
    int attempts;        /* failed attempts so far */
    int max_attempts;
    int priority;
};

/* The longest record queue_enqueue keeps in the queue row (bytes). */
#define QUEUE_INLINE_MAX 512

struct queue_enqueue_opts {
    long long run_id;   /* 0: none */
    long long inbox_id; /* 0: none */
    int priority;       /* 1-10, higher first; 0 means 5 */
    int max_attempts;   /* 0: the column default (5) */
};

/*
 * Adds a change for (entity_type, zoho_id), or folds it into the record's
 * pending item (newest payload and operation win, priority is the higher of
 * the two), and wakes the engines (NOTIFY tds_queue, delivered at commit).
 * payload_json may be NULL.  A record longer than QUEUE_INLINE_MAX bytes
 * is kept in tds.queue_payloads, not in the row, which the claim and the
 * completion would copy again; a refetch request stays in the row.  *id
 * (may be NULL) receives the item's id.
 * Returns 0, or -1 with *err (caller frees).
 */
int queue_enqueue(PGconn *c, const char *entity_type, const char *zoho_id, enum queue_op op,
                  const char *payload_json, const struct queue_enqueue_opts *opts, long long *id,
                  char **err) TDS_MUST_CHECK;

/* A refetch request: no payload, or {"refetch": true, ...} (the rule of
 * the claim's SQL too). */
bool queue_payload_is_refetch(const char *payload_json);

/* Sets the priority (1-10) of a pending or retrying item.  -1 with *err if
 * the item is not waiting or the value is out of range. */
int queue_set_priority(PGconn *c, long long id, int priority, char **err) TDS_MUST_CHECK;

/* Makes a retrying item claimable now.  -1 with *err if it is not retrying. */
int queue_retry_now(PGconn *c, long long id, char **err) TDS_MUST_CHECK;

/* Moves a waiting (pending or retry) item to the dead-letter queue with
 * reason (who is recorded in the history).  -1 with *err if not waiting. */
int queue_move_to_dlq(PGconn *c, long long id, const char *who, const char *reason,
                      char **err) TDS_MUST_CHECK;

/*
 * The retry delay before attempt `attempt` (1 = the first retry), in
 * milliseconds: exponential backoff with full jitter, uniform in
 * [0, min(cap_s, base_s * 2^(attempt-1))] seconds.  seed is the caller's
 * rand_r state (tests pass a fixed one).  This function can't fail.
 */
long long queue_backoff_ms(int attempt, int base_s, int cap_s, unsigned *seed);
/* The upper bound of that interval (no jitter), in milliseconds. */
long long queue_backoff_cap_ms(int attempt, int base_s, int cap_s);

/* --- dead-letter queue --- */

/*
 * Resolves dead-letter row id as "retried" by who and queues its payload
 * again (fresh attempts; folds into a pending item for the record).
 * *queue_id (may be NULL) receives the new item.  -1 with *err if the row
 * does not exist or is already resolved.
 */
int dlq_retry(PGconn *c, long long id, const char *who, long long *queue_id,
              char **err) TDS_MUST_CHECK;

/*
 * Retries every open dead-letter row whose entity is entity_type (NULL: any)
 * and whose failure reason contains reason_substr, case-insensitively (NULL
 * or "": any).  *count receives how many.  Returns 0, or -1 with *err.
 */
int dlq_retry_matching(PGconn *c, const char *entity_type, const char *reason_substr,
                       const char *who, long long *count, char **err) TDS_MUST_CHECK;

/* Resolves an open dead-letter row as "discarded" by who, for reason. */
int dlq_discard(PGconn *c, long long id, const char *who, const char *reason,
                char **err) TDS_MUST_CHECK;

/* Janitor: retries, once, open rows older than hours (0: never).  *count gets how many. */
int dlq_auto_retry(PGconn *c, int hours, long long *count, char **err) TDS_MUST_CHECK;

/* Janitor: retention.  What each table keeps (days), and how much one pass
 * may delete: at most max_batches statements of batch_size rows per table,
 * each statement its own short transaction (no long lock). */
struct prune_policy {
    int queue_days;     /* completed and dead queue rows, resolved dead letters, stats */
    int events_days;
    int inbox_days;
    int runs_days;
    int api_usage_days;
    int batch_size;
    int max_batches;
};
enum prune_table {
    PRUNE_QUEUE_COMPLETED = 0,
    PRUNE_QUEUE_DEAD,
    PRUNE_DEAD_LETTER,
    PRUNE_STATS_MINUTE,
    PRUNE_EVENTS,
    PRUNE_INBOX,
    PRUNE_RUNS,
    PRUNE_API_USAGE,
    PRUNE__COUNT
};
struct prune_result {
    long long rows[PRUNE__COUNT];       /* deleted, per table */
    long long total;                    /* sum of rows */
    long long statements;               /* DELETE statements run */
    bool more;                          /* a table hit max_batches: rows are left */
};
/* The policy of cfg's engine.cleanup_after_days and retention.* keys. */
void prune_policy_from_config(struct prune_policy *p, const struct tds_config *cfg);
/* "events", "inbox", ... (logs, tests). */
const char *prune_table_name(enum prune_table t);

/* Janitor: deletes what is older than the policy keeps, never what is still
 * needed: completed and dead queue rows, resolved dead letters and per-minute
 * statistics (queue_days); events (but a running run's); webhooks of the
 * inbox (but those not yet queued, or whose queue item still waits); finished
 * runs (but the last completed run of each entity and kind, runs a queue
 * row or an open dead letter names, and runs an active run resumed); per-minute
 * API usage.  What a deleted row counted in a /metrics counter is folded into
 * tds.metric_totals by the same statement.  On error the rows deleted so far
 * stay deleted and *out says how many. */
int queue_prune(PGconn *c, const struct prune_policy *p, struct prune_result *out,
                char **err) TDS_MUST_CHECK;

/* Janitor: puts processing items whose lease expired back to retry (no
 * attempt counted, the reclaim is recorded in error_history).  *count gets how many. */
int queue_reclaim_expired(PGconn *c, long long *count, char **err) TDS_MUST_CHECK;

#endif
