/*
 * test_migrate.c: `tds migrate` against a real PostgreSQL: every table of
 * DESIGN.md, idempotence, two migrations at once, and refusal of a schema
 * newer than the binary.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "pgtest.h"
#include "tds/db.h"

static struct config_loaded cl;

static const char *const tables[] = {
    "tds.sync_runs", "tds.inbox",   "tds.sync_queue", "tds.queue_payloads", "tds.dead_letter",
    "tds.alerts",
    "tds.events",    "tds.engines", "tds.schedules",  "tds.sync_state",  "tds.audit",
    "tds.control",   "tds.leases",  "tds.schema_migrations",
    "zoho.items",    "zoho.item_locations", "zoho.contacts", "zoho.salesorders", "zoho.invoices",
    "zoho.customerpayments", "zoho.creditnotes", "zoho.bills", "zoho.vendorpayments",
    "zoho.users", "zoho.locations", "zoho.inventoryadjustments", "zoho.pricebooks",
    "zoho.purchaseorders",
};

static void *migrate_thread(void *arg)
{
    int *rc = arg;
    char *err = NULL;
    PGconn *c = db_connect(&cl.cfg, &err);
    if (c == NULL) {
        *rc = -1;
        free(err);
        return NULL;
    }
    int applied = 0;
    *rc = db_migrate(c, &applied, &err);
    if (*rc != 0) {
        fprintf(stderr, "migrate: %s\n", err);
        free(err);
    } else {
        rc[1] = applied;
    }
    PQfinish(c);
    return NULL;
}

static void test_concurrent_first_migration(void **state)
{
    (void)state;
    /* Two instances migrate an empty database at once. */
    int r1[2] = {1, -1}, r2[2] = {1, -1};
    pthread_t t1, t2;
    pthread_create(&t1, NULL, migrate_thread, r1);
    pthread_create(&t2, NULL, migrate_thread, r2);
    pthread_join(t1, NULL);
    pthread_join(t2, NULL);
    assert_int_equal(r1[0], 0);
    assert_int_equal(r2[0], 0);
    /* Exactly one of them applied the migrations. */
    /* (as many as there are: numbers may have gaps while branches merge) */
    PGconn *c = pgtest_connect();
    assert_int_equal(r1[1] + r2[1], pgtest_scalar(c, "SELECT count(*) FROM tds.schema_migrations"));
    PQfinish(c);
    assert_true(r1[1] == 0 || r2[1] == 0);
}

static void test_every_table_exists(void **state)
{
    (void)state;
    PGconn *c = pgtest_connect();
    for (size_t i = 0; i < sizeof tables / sizeof tables[0]; i++) {
        const char *p[] = {tables[i]};
        PGresult *r = PQexecParams(c, "SELECT to_regclass($1) IS NOT NULL", 1, NULL, p, NULL,
                                   NULL, 0);
        assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
        if (PQgetvalue(r, 0, 0)[0] != 't')
            fail_msg("table %s missing after migrate", tables[i]);
        PQclear(r);
    }
    /* The claim index is partial over claimable rows. */
    assert_int_equal(pgtest_scalar(c, "SELECT count(*) FROM pg_indexes WHERE indexname = "
                                      "'sync_queue_claim_idx' AND indexdef LIKE '%WHERE%'"),
                     1);
    PQfinish(c);
}

static void test_second_run_changes_nothing(void **state)
{
    (void)state;
    char *err = NULL;
    PGconn *c = db_connect(&cl.cfg, &err);
    assert_non_null(c);
    int applied = -1;
    assert_int_equal(db_migrate(c, &applied, &err), 0);
    assert_int_equal(applied, 0);
    assert_int_equal(db_check_schema(c, &err), 0);
    int v = 0;
    assert_int_equal(db_schema_version(c, &v, &err), 0);
    assert_int_equal(v, db_schema_version_known());
    PQfinish(c);
}

static void test_state_constraints(void **state)
{
    (void)state;
    PGconn *c = pgtest_connect();
    PGresult *r = PQexec(c, "INSERT INTO tds.sync_queue (entity_type, zoho_id, status) "
                            "VALUES ('items', '1', 'bogus')");
    assert_int_equal(PQresultStatus(r), PGRES_FATAL_ERROR);
    PQclear(r);
    r = PQexec(c, "INSERT INTO tds.sync_queue (entity_type, zoho_id, priority) "
                  "VALUES ('items', '1', 11)");
    assert_int_equal(PQresultStatus(r), PGRES_FATAL_ERROR);
    PQclear(r);
    /* Events are announced: LISTEN sees an insert. */
    pgtest_exec(c, "LISTEN tds_events");
    pgtest_exec(c, "INSERT INTO tds.events (type, data) VALUES ('tds.queue.empty', '{}')");
    PQconsumeInput(c);
    PGnotify *n = PQnotifies(c);
    assert_non_null(n);
    assert_string_equal(n->relname, "tds_events");
    PQfreemem(n);
    PQfinish(c);
}

static void test_newer_schema_refused(void **state)
{
    (void)state;
    PGconn *c = pgtest_connect();
    pgtest_exec(c, "INSERT INTO tds.schema_migrations (version, name) VALUES (9999, 'future')");
    char *err = NULL;
    assert_int_equal(db_check_schema(c, &err), -1);
    assert_non_null(strstr(err, "newer than this tds knows"));
    free(err);
    err = NULL;
    assert_int_equal(db_migrate(c, NULL, &err), -1);
    assert_non_null(strstr(err, "schema version 9999 is newer"));
    free(err);
    pgtest_exec(c, "DELETE FROM tds.schema_migrations WHERE version = 9999");
    PQfinish(c);
}

static void test_unreachable_server_message(void **state)
{
    (void)state;
    struct config_loaded bad;
    pgtest_config(&bad);
    free(bad.cfg.database.dsn);
    /* Port 1 on loopback: nothing listens there. */
    bad.cfg.database.dsn = xstrdup("postgresql://tds:hunter22@127.0.0.1:1/tds");
    char *err = NULL;
    assert_null(db_connect(&bad.cfg, &err));
    assert_non_null(strstr(err, "cannot connect to 127.0.0.1:1"));
    assert_null(strstr(err, "hunter22"));
    free(err);
    config_loaded_free(&bad);
}

int main(void)
{
    pgtest_create_db("migrate");
    pgtest_config(&cl);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_concurrent_first_migration),
        cmocka_unit_test(test_every_table_exists),
        cmocka_unit_test(test_second_run_changes_nothing),
        cmocka_unit_test(test_state_constraints),
        cmocka_unit_test(test_newer_schema_refused),
        cmocka_unit_test(test_unreachable_server_message),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    config_loaded_free(&cl);
    return rc;
}
