/*
 * sync_register.c: how the sync jobs plug into the engine.  One dispatcher
 * (sync_job_run) used by the engine's run handlers and by `tds sync
 * --wait`; the run handlers that fill a struct sync_job from a struct
 * run_ctx; the queue item handler of refetch items (a webhook or a
 * reconciliation asks for one record to be read again from Zoho: the body
 * of a webhook is only a hint); and the process-wide Zoho client they share.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sync_internal.h"
#include "tds/alerts.h"
#include "tds/apply.h"
#include "tds/db.h"
#include "tds/engine.h"
#include "tds/log.h"
#include "tds/queue.h"
#include "tds/runs.h"

/* ---- statistics ---- */

char *sync_stats_json(const struct sync_stats *s)
{
    cJSON *o = cJSON_CreateObject();
#define F(name) cJSON_AddNumberToObject(o, #name, (double)s->name)
    F(total);
    F(succeeded);
    cJSON_AddNumberToObject(o, "changed", (double)s->succeeded);
    F(created);
    F(unchanged);
    F(failed);
    F(skipped);
    F(api_calls);
    F(pages);
    F(detail_calls);
    F(locations);
    F(events);
    F(images);
    F(images_pending);
    F(image_failed);
    F(missing);
    F(extra);
    F(stale);
    F(enqueued);
    F(duration_ms);
    F(write_ms);
    F(wait_ms);
    F(details_ms);
#undef F
    double rate = s->duration_ms > 0 ? (double)s->total * 1000.0 / (double)s->duration_ms : 0;
    cJSON_AddNumberToObject(o, "items_per_second", (double)(long long)(rate + 0.5));
    char *t = cJSON_PrintUnformatted(o);
    char *out = xstrdup(t);
    cJSON_free(t);
    cJSON_Delete(o);
    return out;
}

static int save_stats(struct sync_job *j, char **err)
{
    if (j->run_id == 0)
        return 0;
    char run[32], mi[32], ex[32], st[32];
    snprintf(run, sizeof run, "%lld", j->run_id);
    snprintf(mi, sizeof mi, "%lld", j->stats.missing);
    snprintf(ex, sizeof ex, "%lld", j->stats.extra);
    snprintf(st, sizeof st, "%lld", j->stats.stale);
    char *js = sync_stats_json(&j->stats);
    bool rec = str_eq(j->run_type, "reconcile");
    const char *p[5] = {run, js, rec ? mi : NULL, rec ? ex : NULL, rec ? st : NULL};
    int rc = db_cmd(j->conn,
                    "UPDATE tds.sync_runs SET stats = $2::jsonb, missing = coalesce($3::bigint,"
                    " missing), extra = coalesce($4::bigint, extra), stale = coalesce($5::bigint,"
                    " stale) WHERE id = $1::bigint",
                    5, p, err);
    free(js);
    return rc;
}

/* A run that dead-lettered records did not plainly succeed: one alert per
 * entity (or run type), bumped by every such run (issue 17 point 4). */
static void alert_dead_letters(struct sync_job *j)
{
    const char *what = j->entity ? j->entity : j->run_type ? j->run_type : "sync";
    char *title = xasprintf("run %lld (%s): %lld record%s dead-lettered", j->run_id, what,
                            j->stats.failed, j->stats.failed == 1 ? "" : "s");
    char *key = xasprintf("sync_dead_letters:%s", what);
    struct alert_spec a = {.type = "sync_dead_letters",
                           .severity = ALERT_WARNING,
                           .title = title,
                           .message = "records Zoho sent that tds could not store are in the"
                                      " dead-letter queue: tds dlq list, then tds dlq retry",
                           .entity_type = j->entity,
                           .affected = j->stats.failed,
                           .dedup_key = key};
    char *e = NULL;
    if (alerts_raise(j->conn, &a, NULL, NULL, &e) != 0) {
        log_warn("run %lld: cannot raise the dead-letter alert: %s", j->run_id, e);
        free(e);
    }
    free(title);
    free(key);
}

int sync_job_run(struct sync_job *j, char **err)
{
    atomic_bool local_stop = false;
    if (j->stop == NULL)
        j->stop = &local_stop;
    long long t0 = time_mono_ms();
    int rc;
    const char *t = j->run_type ? j->run_type : "";
    if (str_eq(t, "stock"))
        rc = sync_stock_run(j, err);
    else if (str_eq(t, "items"))
        rc = sync_items_run(j, err);
    else if (str_eq(t, "full"))
        rc = sync_entity_run(j, false, err);
    else if (str_eq(t, "incremental"))
        rc = sync_entity_run(j, true, err);
    else if (str_eq(t, "reconcile"))
        rc = reconcile_run(j, err);
    else if (str_eq(t, "images"))
        rc = images_run(j, err);
    else {
        *err = xasprintf("no sync job for run type \"%s\"", t);
        rc = -1;
    }
    /* Changed images: here when the caller waits (tds sync --wait), else
     * in their own run, so pictures never hold the records' sync open. */
    if (rc == 0 && j->stats.images_pending > 0 && !str_eq(t, "images") && !sync_job_stopping(j)) {
        if (j->images_inline) {
            rc = images_run(j, err);
        } else {
            long long id = 0;
            char *e = NULL;
            if (images_request_run(j->conn, j->run_id, &id, &e) != 0) {
                log_warn("run %lld: cannot request the images run: %s", j->run_id, e);
                free(e);
            } else if (id > 0) {
                log_info("run %lld: %lld image%s changed: fetched by run %lld", j->run_id,
                         j->stats.images_pending, j->stats.images_pending == 1 ? "" : "s", id);
            }
        }
    }
    j->stats.duration_ms = time_mono_ms() - t0;
    char *e2 = NULL;
    if (save_stats(j, &e2) != 0) {
        log_warn("run %lld: cannot record statistics: %s", j->run_id, e2);
        free(e2);
    }
    if (rc == 0 && j->stats.failed > 0)
        alert_dead_letters(j);
    if (j->stop == &local_stop)
        j->stop = NULL;
    return rc;
}

/* ---- the shared client ---- */

static pthread_mutex_t client_mu = PTHREAD_MUTEX_INITIALIZER;
static struct zoho_client *client;
static const struct tds_config *client_cfg;

struct zoho_client *sync_shared_client(const struct tds_config *cfg, char **err)
{
    pthread_mutex_lock(&client_mu);
    if (client == NULL) {
        const struct tds_config *c = cfg ? cfg : client_cfg;
        if (c == NULL) {
            *err = xstrdup("no configuration to create the Zoho client from");
        } else {
            client = zoho_client_new(c, NULL, err);
        }
    }
    struct zoho_client *zc = client;
    pthread_mutex_unlock(&client_mu);
    return zc;
}

/* ---- run handlers ---- */

static void ctx_add(void *arg, long long total, long long succeeded, long long failed,
                    long long unchanged, long long api_calls)
{
    run_ctx_add(arg, total, succeeded, failed, unchanged, api_calls);
}

static void ctx_expected(void *arg, long long n)
{
    run_ctx_set_expected(arg, n);
}

static bool ctx_cancelled(void *arg)
{
    return run_ctx_cancelled(arg);
}

static int run_handler(struct run_ctx *ctx, void *arg, char **err)
{
    (void)arg;
    struct zoho_client *zc = sync_shared_client(run_ctx_tds_config(ctx), err);
    if (zc == NULL)
        return -1;
    atomic_bool stop = false;
    struct sync_job j = {
        .run_id = run_ctx_id(ctx),
        .run_type = run_ctx_type(ctx),
        .entity = run_ctx_entity(ctx),
        .config_json = run_ctx_config_json(ctx),
        .cfg = run_ctx_tds_config(ctx),
        .conn = run_ctx_conn(ctx),
        .zc = zc,
        .stop = &stop,
        .add = ctx_add,
        .set_expected = ctx_expected,
        .cancelled = ctx_cancelled,
        .arg = ctx,
    };
    return sync_job_run(&j, err);
}

/* ---- refetch items ---- */

static pthread_key_t conn_key;
static pthread_once_t conn_once = PTHREAD_ONCE_INIT;

static void conn_destroy(void *p)
{
    zoho_conn_free(p);
}

static void conn_key_init(void)
{
    (void)pthread_key_create(&conn_key, conn_destroy);
}

/* GETs the record item asks for: REFETCH_RECORD with *rec, REFETCH_GONE,
 * or ITEM_RETRY / ITEM_FATAL with *err. */
static int fetch_record(struct zoho_conn *zconn, const struct entity_desc *d,
                        const struct queue_item *item, cJSON **rec, char **err)
{
    if (!str_is_digits(item->zoho_id)) {
        *err = xasprintf("%s id \"%s\" is not digits", d->name, item->zoho_id);
        return ITEM_FATAL;
    }
    struct zoho_error ze = {0};
    if (zoho_get_record(zconn, d, item->zoho_id, rec, &ze) != 0) {
        if (ze.kind == ZOHO_ERR_NOT_FOUND) {
            zoho_error_clear(&ze);
            return REFETCH_GONE;
        }
        *err = zoho_error_format(&ze);
        bool fatal = ze.kind == ZOHO_ERR_ARG;
        zoho_error_clear(&ze);
        return fatal ? ITEM_FATAL : ITEM_RETRY;
    }
    return REFETCH_RECORD;
}

int sync_refetch_item(PGconn *conn, struct zoho_conn *zconn, const struct queue_item *item,
                      char **err)
{
    const struct entity_desc *d = entity_find(item->entity_type);
    if (d == NULL) {
        *err = xasprintf("unknown entity \"%s\"", item->entity_type);
        return ITEM_FATAL;
    }
    cJSON *pl = item->payload ? cJSON_Parse(item->payload) : NULL;
    bool refetch = pl == NULL || sync_cfg_bool(pl, "refetch", false);
    if (pl != NULL && sync_cfg_bool(pl, "tds_gone", false)) {
        /* The worker's fetch found it gone from Zoho. */
        cJSON_Delete(pl);
        return apply_delete(conn, d, item->zoho_id, item->run_id, err) == 0 ? ITEM_OK
                                                                            : ITEM_RETRY;
    }
    if (!refetch) {
        /* A payload that carries the record: apply it as the default handler would. */
        const cJSON *obj = cJSON_GetObjectItemCaseSensitive(pl, d->singular);
        if (!cJSON_IsObject(obj))
            obj = pl;
        int rc = apply_record(conn, d, obj, item->run_id, NULL, err);
        cJSON_Delete(pl);
        return rc == 0 ? ITEM_OK : rc == -2 ? ITEM_FATAL : ITEM_RETRY;
    }
    cJSON_Delete(pl);
    cJSON *rec = NULL;
    int got = fetch_record(zconn, d, item, &rec, err);
    if (got == REFETCH_GONE)
        return apply_delete(conn, d, item->zoho_id, item->run_id, err) == 0 ? ITEM_OK
                                                                            : ITEM_RETRY;
    if (got != REFETCH_RECORD)
        return got;
    int rc = apply_record(conn, d, rec, item->run_id, NULL, err);
    cJSON_Delete(rec);
    return rc == 0 ? ITEM_OK : rc == -2 ? ITEM_FATAL : ITEM_RETRY;
}

/* This thread's Zoho connection, made on first use; NULL with *err. */
static struct zoho_conn *thread_zconn(char **err)
{
    pthread_once(&conn_once, conn_key_init);
    struct zoho_conn *zc = pthread_getspecific(conn_key);
    if (zc == NULL) {
        struct zoho_client *cl = sync_shared_client(NULL, err);
        if (cl == NULL)
            return NULL;
        zc = zoho_conn_new(cl, NULL);
        (void)pthread_setspecific(conn_key, zc);
    }
    return zc;
}

static enum item_result refetch_handler(PGconn *conn, const struct queue_item *item, void *arg,
                                        char **err)
{
    (void)arg;
    struct zoho_conn *zc = thread_zconn(err);
    if (zc == NULL)
        return ITEM_RETRY;
    return (enum item_result)sync_refetch_item(conn, zc, item, err);
}

/* The fetch half, run by the worker outside any transaction. */
static int refetch_fetcher(const struct queue_item *item, void *arg, char **record, char **err)
{
    (void)arg;
    const struct entity_desc *d = entity_find(item->entity_type);
    if (d == NULL) {
        *err = xasprintf("unknown entity \"%s\"", item->entity_type);
        return ITEM_FATAL;
    }
    struct zoho_conn *zc = thread_zconn(err);
    if (zc == NULL)
        return ITEM_RETRY;
    cJSON *rec = NULL;
    int got = fetch_record(zc, d, item, &rec, err);
    if (got == REFETCH_RECORD) {
        *record = cJSON_PrintUnformatted(rec);
        cJSON_Delete(rec);
    }
    return got;
}

void sync_register_handlers(const struct tds_config *cfg, struct zoho_client *zc)
{
    pthread_mutex_lock(&client_mu);
    client_cfg = cfg;
    if (zc)
        client = zc;
    pthread_mutex_unlock(&client_mu);
    static const char *const types[] = {"stock", "full", "incremental", "items", "reconcile",
                                        "images"};
    for (size_t i = 0; i < TDS_ARRAY_LEN(types); i++)
        engine_register_run_handler(types[i], run_handler, NULL);
    engine_register_refetch_handler(refetch_handler, NULL);
    engine_register_refetch_fetcher(refetch_fetcher, NULL);
}
