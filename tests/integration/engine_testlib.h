/*
 * engine_testlib.h: small helpers shared by the engine's integration tests
 * (header-only: each test program includes it once).
 */
#ifndef TDS_ENGINE_TESTLIB_H
#define TDS_ENGINE_TESTLIB_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "pgtest.h"
#include "tds/db.h"
#include "tds/engine.h"
#include "tds/util.h"

static inline void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Polls sql (a scalar) until it equals want or timeout_ms passes; returns the last value. */
static inline long long wait_scalar(PGconn *c, const char *sql, long long want, int timeout_ms)
{
    long long deadline = time_mono_ms() + timeout_ms, v = 0;
    for (;;) {
        v = pgtest_scalar(c, sql);
        if (v == want || time_mono_ms() > deadline)
            return v;
        sleep_ms(50);
    }
}

/* A realistic Zoho Inventory item record (JSON text, caller frees). */
static inline char *make_item(long long id, const char *lmt, const char *name, int stock)
{
    return xasprintf(
        "{\"item_id\":\"%lld\",\"name\":\"%s\",\"sku\":\"SKU-%lld\",\"status\":\"active\","
        "\"rate\":%d.50,\"item_type\":\"inventory\",\"product_type\":\"goods\",\"unit\":\"pcs\","
        "\"track_inventory\":true,\"stock_on_hand\":%d,\"available_stock\":%d,"
        "\"actual_available_stock\":%d,\"description\":\"A test item with a \\\"quote\\\"\","
        "\"created_time\":\"2024-01-02T10:00:00+0530\",\"last_modified_time\":\"%s\","
        "\"image_document_id\":\"\",\"image_name\":\"\",\"purchase_rate\":\"3.25\","
        "\"reorder_level\":\"\",\"tax_id\":\"\",\"custom_fields\":[],"
        "\"locations\":[{\"location_id\":\"900%lld\",\"location_name\":\"Main\","
        "\"is_primary\":true,\"location_stock_on_hand\":\"%d\",\"location_available_stock\":%d,"
        "\"location_actual_available_stock\":%d},{\"location_id\":\"901\",\"location_name\":"
        "\"Depot\",\"is_primary\":false,\"location_stock_on_hand\":0,"
        "\"location_available_stock\":0,\"location_actual_available_stock\":0}]}",
        id, name, id, 10 + (int)(id % 90), stock, stock, stock, lmt, id % 3, stock, stock, stock);
}

/* Makes the test database, migrates it, and fills cl with fast test settings. */
static inline void engine_test_setup(const char *dbname, struct config_loaded *cl)
{
    pgtest_create_db(dbname);
    pgtest_config(cl);
    char *err = NULL;
    PGconn *c = db_connect(&cl->cfg, &err);
    if (c == NULL || db_migrate(c, NULL, &err) != 0) {
        fprintf(stderr, "setup: %s\n", err);
        exit(1);
    }
    PQfinish(c);
    cl->cfg.engine.workers = 2;
    cl->cfg.engine.poll_interval_ms = 100;
    cl->cfg.engine.heartbeat_seconds = 1;
    cl->cfg.engine.retry.backoff_seconds = 1;
    cl->cfg.engine.retry.backoff_max_seconds = 1;
    cl->cfg.schedule.enabled = false;
}

static inline struct engine *start_engine(struct config_loaded *cl, const char *name)
{
    char *err = NULL;
    struct engine *e = engine_new(&cl->cfg, name, "cli", &err);
    if (e == NULL) {
        fprintf(stderr, "engine_new: %s\n", err);
        exit(1);
    }
    struct engine_timing t = {3000, 500, 300, 500, 300};
    engine_set_timing(e, &t);
    if (engine_start(e, &err) != 0) {
        fprintf(stderr, "engine_start: %s\n", err);
        exit(1);
    }
    return e;
}

static inline void stop_engine(struct engine *e)
{
    engine_request_stop(e);
    if (engine_join(e, 20000) != 0) {
        fprintf(stderr, "engine did not stop in 20 s\n");
        exit(1);
    }
    engine_free(e);
}

#endif
