/*
 * sync.h: the sync jobs: stock sync, full and incremental sync of every
 * entity of the descriptor table, specific items, webhook-triggered refresh,
 * product images and reconciliation, and the `tds sync` / `tds reconcile`
 * commands.
 *
 * A job works through a struct sync_job: the run's identity and request,
 * a database connection, the shared Zoho client and a few callbacks through
 * which it reports progress.  The engine's run handlers (sync_register.c)
 * fill one from a struct run_ctx; `tds sync --wait` fills one from its own
 * in-process runner (cli_sync.c).  So the same code runs in both places.
 *
 * Bulk writes (stock, full, incremental, reconcile) COPY each batch into a
 * TEMP staging table and merge it with one statement that touches only rows
 * whose typed values changed and never lets an older last_modified_time
 * overwrite a newer one; the tds.entity.* events of a batch commit with it,
 * so a crash can neither lose a change nor announce one twice.
 */
#ifndef TDS_SYNC_H
#define TDS_SYNC_H

#include <libpq-fe.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "tds/cli.h"
#include "tds/config.h"
#include "tds/entity.h"
#include "tds/events.h"
#include "tds/util.h"
#include "tds/zoho.h"

/* What a run did; every job adds to it (total = succeeded + unchanged + failed). */
struct sync_stats {
    long long total;        /* records read from Zoho (after filters) */
    long long succeeded;    /* written: created or changed ("changed") */
    long long created;      /* of succeeded: new rows */
    long long unchanged;    /* identical to the stored copy, or older than it */
    long long failed;       /* unusable records (kept in the DLQ) */
    long long skipped;      /* filtered out (with_stock_only), not in total */
    long long api_calls;    /* Zoho requests charged to the run */
    long long pages;        /* list pages */
    long long detail_calls; /* /itemdetails requests */
    long long locations;    /* item_locations rows written */
    long long events;       /* tds.entity.* events written */
    long long images;       /* images stored */
    long long image_failed; /* images refused or unreachable */
    long long images_pending; /* items whose image changed: left to an "images" run */
    long long missing, extra, stale; /* reconcile */
    long long enqueued;     /* queue items added for later fixes */
    long long duration_ms;
    long long write_ms;     /* writer: COPY + merge + commit */
    long long wait_ms;      /* writer: waiting for the next page from Zoho */
    long long details_ms;   /* writer: /itemdetails and their locations */
};

/* The context of one job.  Filled by the caller; the job never frees it. */
struct sync_job {
    long long run_id;               /* tds.sync_runs.id (0: none, tests) */
    const char *run_type;           /* stock full incremental items reconcile */
    const char *entity;             /* "" or NULL: all entities (full/incremental/reconcile) */
    const char *config_json;        /* the run's config jsonb (may be NULL) */
    const struct tds_config *cfg;
    PGconn *conn;                   /* autocommit; the job opens its own transactions */
    struct zoho_client *zc;         /* shared client */
    atomic_bool *stop;              /* raised: return soon (may be NULL) */
    bool images_inline;             /* fetch changed images in this job (tds sync --wait)
                                       instead of requesting an "images" run */
    const char *instance;           /* for DLQ "who" and logs (may be NULL) */

    /* Progress callbacks (each may be NULL).  add() receives deltas. */
    void (*add)(void *arg, long long total, long long succeeded, long long failed,
                long long unchanged, long long api_calls);
    void (*set_expected)(void *arg, long long expected_total);
    bool (*cancelled)(void *arg);
    void *arg;

    struct sync_stats stats;        /* accumulated by the job */
    long long call_cap;             /* Zoho calls the job may make (0: no cap); reaching it
                                       stops the job (cap_reached) */
    bool cap_reached;
};

/* True once the job should stop (stop flag or cancelled callback).  Can't fail. */
bool sync_job_stopping(struct sync_job *j);

/*
 * Runs the job j->run_type ("stock", "full", "incremental", "items",
 * "reconcile") and writes its statistics into tds.sync_runs.stats (when
 * j->run_id is set).  Returns 0 when the work is done (records that failed
 * are counted, not fatal), -1 with *err (caller frees) when the run failed:
 * Zoho unreachable after every retry, database errors, a bad run config.
 */
int sync_job_run(struct sync_job *j, char **err) TDS_MUST_CHECK;

/* The individual jobs (sync_job_run dispatches to them). */
int sync_stock_run(struct sync_job *j, char **err) TDS_MUST_CHECK;
int sync_items_run(struct sync_job *j, char **err) TDS_MUST_CHECK;
int sync_entity_run(struct sync_job *j, bool incremental, char **err) TDS_MUST_CHECK;
int reconcile_run(struct sync_job *j, char **err) TDS_MUST_CHECK;
/* (images_run is declared with the other image functions below.) */

/*
 * The text of the statements of the bulk writer for entity, for the
 * benchmark's COPY+merge floor: which is "stage" (CREATE TEMP TABLE),
 * "copy", "merge" (parameters: run id, entity, with_stock_only,
 * all_details), "loc_stage", "locitem_stage" or "loc_merge".  Caller
 * frees; NULL when entity or which is unknown.
 */
char *sync_bulk_sql_text(const char *entity, const char *which);

/* Statistics as a JSON object (caller frees). */
char *sync_stats_json(const struct sync_stats *s);

/*
 * Registers the run handlers ("stock", "full", "incremental", "items",
 * "reconcile") and the queue item handler of refetch items (webhook refresh
 * and reconciliation fixes: payload {"refetch":true}) with the engine's
 * registry.  zc is the Zoho client they use; NULL makes them create one
 * (process-wide, once) from cfg.  Call
 * before engine_start.  cfg must outlive the engine.  Can't fail.
 */
void sync_register_handlers(const struct tds_config *cfg, struct zoho_client *zc);

/* The process-wide client of the handlers: zc given at registration, or
 * one created once from cfg.  NULL with *err when it cannot be made. */
struct zoho_client *sync_shared_client(const struct tds_config *cfg, char **err);

/*
 * The refetch item handler, exposed for tests: fetches the record of the
 * queue item from Zoho and upserts it (apply_record), or marks it deleted
 * when Zoho answers 404.  An upsert without "refetch" applies its payload.
 */
struct queue_item;
int sync_refetch_item(PGconn *conn, struct zoho_conn *zconn, const struct queue_item *item,
                      char **err) TDS_MUST_CHECK;

/* --- images (images.c) --- */

/* "png", "jpg", "gif", "bmp", "webp" from the first bytes; NULL if none of them. */
const char *images_sniff(const unsigned char *data, size_t len);

/*
 * Downloads the image of each item id whose image_document_id changed and
 * stores it under cfg->images.dir as <sha256>.<ext> (written once: the same
 * bytes are never stored twice), then records image_path.  Items whose
 * image_document_id became empty get image_path NULL.  Failures are counted
 * in j->stats.image_failed and logged, never fatal.  Returns 0, 1 when Zoho
 * refuses images for a missing OAuth scope (ZOHO_ERR_SCOPE: the client
 * raised one alert naming it; the remaining items are left for a later run,
 * not given up), or -1 with *err on a database error.
 */
int images_sync(struct sync_job *j, struct zoho_conn *zconn, char *const *ids, size_t n,
                char **err) TDS_MUST_CHECK;

/*
 * The "images" run: fetches every image whose stored file is not the one of
 * the item's current image_document_id (zoho.items.image_fetched_document_id),
 * 100 items at a time, counting each item in the run's statistics.  Returns
 * 0, or -1 with *err on a database error.
 */
int images_run(struct sync_job *j, char **err) TDS_MUST_CHECK;

/*
 * Asks the engines for an "images" run after run parent_id (same trigger),
 * unless one is already pending or running.  *id (may be NULL) gets the new
 * run's id, 0 when none was needed.  Returns 0, or -1 with *err.
 */
int images_request_run(PGconn *c, long long parent_id, long long *id, char **err) TDS_MUST_CHECK;

/* --- CLI (cli_sync.c) --- */

/* `tds sync ...` and `tds reconcile ...`: see man tds(1).  Exit status per cli.h. */
int cli_sync(const struct cli_globals *g, int argc, char **argv);
int cli_reconcile(const struct cli_globals *g, int argc, char **argv);

#endif
