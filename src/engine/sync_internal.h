/*
 * sync_internal.h: what the sync job files share: the bulk pipeline
 * (sync_bulk.c) that the stock, full, incremental, items and reconcile jobs
 * all drive, and small helpers for run configs and the job's Zoho conns.
 */
#ifndef TDS_SYNC_INTERNAL_H
#define TDS_SYNC_INTERNAL_H

#include <cjson/cJSON.h>

#include "tds/sync.h"

/* How one bulk pass reads and writes. */
struct bulk_opts {
    const struct entity_desc *d;
    /* source: a listing (pager) unless ids is set */
    const char *filter_by;          /* "Status.Active" or NULL */
    const char *changed_since;      /* incremental (Zoho time) or NULL */
    const char *const *seen_ids;
    size_t n_seen;
    char *const *ids;               /* items only: these ids through /itemdetails */
    size_t n_ids;
    /* writing */
    bool with_stock_only;           /* items: skip items with no stock, here and there */
    bool dry_run;                   /* compute, write nothing to zoho.* */
    int batch_size;                 /* records per transaction */
    bool all_details;               /* items: locations of every item, not only changed */
    bool collect_seen;              /* keep every listed id in TEMP tds_seen (reconcile) */
    bool save_cursor;               /* store the pager's cursor in tds.sync_state per batch */
    bool no_details;                /* items: never fetch /itemdetails (tests) */
};

/* Runs one bulk pass; adds to j->stats.  0, or -1 with *err. */
int sync_bulk_run(struct sync_job *j, const struct bulk_opts *o, char **err) TDS_MUST_CHECK;

/* Creates the TEMP tables of the connection if needed.  0 or -1 with *err. */
int sync_bulk_prepare(PGconn *c, const struct entity_desc *d, char **err) TDS_MUST_CHECK;

/*
 * Writes records (a cJSON array of full records, as /itemdetails or GET
 * /{entity}/{id} answer) through the same merge as a listing; for items the
 * locations in the records are written too.  Adds to j->stats.  0, or -1
 * with *err.
 */
int sync_bulk_write_records(struct sync_job *j, const struct entity_desc *d, const cJSON *records,
                            char **err) TDS_MUST_CHECK;

/* Run config helpers: value of key in the config JSON, or def. */
bool sync_cfg_bool(const cJSON *cfg, const char *key, bool def);
long long sync_cfg_int(const cJSON *cfg, const char *key, long long def);

/* Adds deltas to j->stats and reports them through j->add.  Can't fail. */
void sync_job_count(struct sync_job *j, long long total, long long succeeded, long long failed,
                    long long unchanged, long long api_calls);

/* Copies a failed record into the DLQ (enqueue + move) inside the caller's
 * transaction.  0 or -1 with *err. */
int sync_dlq_record(struct sync_job *j, const struct entity_desc *d, const char *zoho_id,
                    const char *payload, const char *reason, char **err) TDS_MUST_CHECK;

/* True when a Zoho call failed in a way that may pass with time (5xx,
 * network, truncated answers, 429 storms): asked again by a later run. */
bool sync_zoho_transient(const struct zoho_error *e);
/* True when the same call may be made again at once: transient, and not
 * retried by the client already (retries happen at one level, see
 * tds/zoho.h; so in practice only when the client made no attempt). */
bool sync_zoho_again(const struct zoho_error *e);

#endif
