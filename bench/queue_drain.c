/*
 * queue_drain.c: the driver of bench/queue-drain.  Fills the queue of a
 * fresh database with N items, starts one engine with W workers, and
 * reports how fast it drains them.
 *
 *   queue_drain DSN items|noop N WORKERS BATCH
 *
 * items: realistic Zoho Inventory item records (about 40 fields, two
 * locations) upserted into zoho.items by the default handler (with their
 * locations and a tds.entity.create event each).  noop: items of entity
 * "noop" whose handler does nothing (claim + complete only).  Prints one
 * line: "<mode> <n> items in <s> s: <rate> items/s".
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tds/config.h"
#include "tds/db.h"
#include "tds/engine.h"
#include "tds/log.h"

static enum item_result noop(PGconn *c, const struct queue_item *it, void *arg, char **err)
{
    (void)c;
    (void)it;
    (void)arg;
    (void)err;
    return ITEM_OK;
}

/* Builds the payloads in SQL (fast), shaped like GET /items/{id} records,
 * kept beside their rows as queue_enqueue keeps records (tds/queue.h). */
static const char *const fill_items =
    "WITH q AS (INSERT INTO tds.sync_queue (entity_type, zoho_id)"
    "   SELECT 'items', (4600000000000 + g)::text FROM generate_series(1, $1::int) g"
    "   RETURNING id, zoho_id::bigint - 4600000000000 AS g)"
    " INSERT INTO tds.queue_payloads (queue_id, payload) SELECT id, jsonb_build_object("
    "  'item_id', (4600000000000 + g)::text, 'name', 'Widget model ' || g || ' (blue, 12 mm)',"
    "  'sku', 'WID-' || lpad(g::text, 8, '0'), 'status', 'active', 'rate', (g % 500) + 0.99,"
    "  'purchase_rate', (g % 300) + 0.49, 'item_type', 'inventory', 'product_type', 'goods',"
    "  'unit', 'pcs', 'track_inventory', true, 'is_combo_product', false,"
    "  'stock_on_hand', g % 1000, 'available_stock', g % 900, 'actual_available_stock', g % 800,"
    "  'reorder_level', '', 'description', 'A realistic description of item ' || g ||"
    "    ' with enough text to look like what shops really type in Zoho.',"
    "  'brand', 'Acme', 'manufacturer', 'Acme Manufacturing Ltd', 'upc', '', 'ean', '',"
    "  'isbn', '', 'part_number', 'PN-' || g, 'tax_id', '1234567000000012345',"
    "  'tax_name', 'VAT 15%', 'tax_percentage', 15, 'account_id', '1234567000000000388',"
    "  'account_name', 'Sales', 'purchase_account_id', '1234567000000034003',"
    "  'inventory_account_id', '1234567000000034001', 'vendor_id', '', 'vendor_name', '',"
    "  'image_document_id', '', 'image_name', '', 'source', 'user',"
    "  'created_time', '2023-01-15T09:30:00+0300',"
    "  'last_modified_time', to_char(timestamptz '2024-06-01 00:00:00+00' + g * interval '1 "
    "second',"
    "    'YYYY-MM-DD\"T\"HH24:MI:SS') || '+0000',"
    "  'custom_fields', jsonb_build_array(jsonb_build_object('customfield_id', '1',"
    "    'label', 'Color', 'value', 'blue')),"
    "  'locations', jsonb_build_array("
    "    jsonb_build_object('location_id', '1234567000000071001', 'location_name', 'Main store',"
    "      'is_primary', true, 'location_stock_on_hand', (g % 700)::text,"
    "      'location_available_stock', g % 600, 'location_actual_available_stock', g % 500),"
    "    jsonb_build_object('location_id', '1234567000000071002', 'location_name', 'Warehouse',"
    "      'is_primary', false, 'location_stock_on_hand', (g % 300)::text,"
    "      'location_available_stock', g % 300, 'location_actual_available_stock', g % 300)))"
    " FROM q";

static const char *const fill_noop =
    "INSERT INTO tds.sync_queue (entity_type, zoho_id, payload)"
    " SELECT 'noop', g::text, '{}' FROM generate_series(1, $1::int) g";

int main(int argc, char **argv)
{
    if (argc < 6) {
        fprintf(stderr, "usage: queue_drain DSN items|noop N WORKERS BATCH\n");
        return 2;
    }
    const char *mode = argv[2];
    long long n = atoll(argv[3]);
    struct config_loaded cl;
    struct config_errors errs = {0};
    memset(&cl, 0, sizeof cl);
    if (config_load(NULL, &cl, &errs) != 0) {
        fprintf(stderr, "config: %s\n", errs.n ? errs.msg[0] : "?");
        return 1;
    }
    free(cl.cfg.database.dsn);
    cl.cfg.database.dsn = xstrdup(argv[1]);
    cl.cfg.engine.workers = atoi(argv[4]);
    cl.cfg.engine.batch_size = atoi(argv[5]);
    cl.cfg.schedule.enabled = false;
    log_set_level(TDS_LOG_WARN);
    char *err = NULL;
    PGconn *c = db_connect(&cl.cfg, &err);
    if (c == NULL || db_migrate(c, NULL, &err) != 0) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    /* QD_PHASE=fill: fill the queue and exit; QD_PHASE=drain: drain a queue
     * filled before (profiling the drain alone, e.g. the server's CPU). */
    const char *phase = getenv("QD_PHASE");
    const char *p[] = {argv[3]};
    if ((phase == NULL || strcmp(phase, "drain") != 0) &&
        (db_cmd(c, strcmp(mode, "noop") == 0 ? fill_noop : fill_items, 1, p, &err) != 0 ||
         db_cmd(c, "VACUUM ANALYZE tds.sync_queue, tds.queue_payloads", 0, NULL, &err) != 0)) {
        fprintf(stderr, "fill: %s\n", err);
        return 1;
    }
    if (phase != NULL && strcmp(phase, "fill") == 0) {
        PQfinish(c);
        config_loaded_free(&cl);
        return 0;
    }
    engine_register_item_handler("noop", NULL, noop, NULL);
    struct engine *e = engine_new(&cl.cfg, "bench", "daemon", &err);
    long long t0 = time_mono_ms();
    if (e == NULL || engine_start(e, &err) != 0) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    struct engine_status st;
    for (;;) {
        engine_status(e, &st);
        if (st.items_ok + st.items_failed >= n)
            break;
        struct timespec ts = {0, 2 * 1000000L};
        nanosleep(&ts, NULL);
    }
    long long t1 = time_mono_ms();
    engine_request_stop(e);
    engine_join(e, -1);
    engine_free(e);
    double secs = (double)(t1 - t0) / 1000.0;
    long long applied = 0;
    PGresult *r = db_exec(c,
                          strcmp(mode, "noop") == 0
                              ? "SELECT count(*) FROM tds.sync_queue WHERE status = 'completed'"
                              : "SELECT count(*) FROM zoho.items",
                          0, NULL, &err);
    if (r) {
        applied = atoll(PQgetvalue(r, 0, 0));
        PQclear(r);
    }
    printf("%s %lld items in %.2f s: %.0f items/s (failed %lld, verified %lld)\n", mode, n, secs,
           (double)n / secs, st.items_failed, applied);
    PQfinish(c);
    config_loaded_free(&cl);
    return st.items_failed == 0 && applied == n ? 0 : 1;
}
