/*
 * test_alerts.c: every alert rule of the janitor firing, deduplicating
 * (occurrences, last_seen) and resolving when its condition clears;
 * acknowledgement; the Zoho client's zoho_auth alert; the database
 * unreachable alert; notifications to alerts.notify_url (a local HTTP
 * server that fails once, then accepts).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>

#include "engine_testlib.h"
#include "tds/alerts.h"

static struct config_loaded cl;
static PGconn *db;

static long long open_count(const char *key)
{
    char *sql = xasprintf("SELECT count(*) FROM tds.alerts WHERE dedup_key = '%s'"
                          " AND resolved_at IS NULL",
                          key);
    long long n = pgtest_scalar(db, sql);
    free(sql);
    return n;
}

static long long occurrences(const char *key)
{
    char *sql = xasprintf("SELECT coalesce(max(occurrences), 0) FROM tds.alerts"
                          " WHERE dedup_key = '%s' AND resolved_at IS NULL",
                          key);
    long long n = pgtest_scalar(db, sql);
    free(sql);
    return n;
}

static void evaluate(void)
{
    char *err = NULL;
    if (alerts_evaluate(db, &cl.cfg, NULL, &err) != 0)
        fail_msg("evaluate: %s", err);
}

/* Fires, repeats (one alert, two occurrences, one triggered event), clears. */
static void check_rule(const char *key, const char *make, const char *clear)
{
    evaluate();
    assert_int_equal(open_count(key), 0);
    pgtest_exec(db, make);
    evaluate();
    assert_int_equal(open_count(key), 1);
    evaluate();
    assert_int_equal(open_count(key), 1);
    assert_int_equal(occurrences(key), 2);
    char *sql = xasprintf("SELECT count(*) FROM tds.events WHERE type = 'tds.alert.triggered'"
                          " AND data->>'dedup_key' = '%s'",
                          key);
    assert_int_equal(pgtest_scalar(db, sql), 1);
    free(sql);
    pgtest_exec(db, clear);
    evaluate();
    assert_int_equal(open_count(key), 0);
    sql = xasprintf("SELECT count(*) FROM tds.alerts WHERE dedup_key = '%s'"
                    " AND resolved_at IS NOT NULL",
                    key);
    assert_int_equal(pgtest_scalar(db, sql), 1);
    free(sql);
}

static void test_failure_rate(void **s)
{
    (void)s;
    check_rule("failure_rate",
               "INSERT INTO tds.stats_minute VALUES (date_trunc('minute', now()), 'x', 50, 10)",
               "DELETE FROM tds.stats_minute");
    /* below the threshold (10%): 5 of 100 */
    pgtest_exec(db,
                "INSERT INTO tds.stats_minute VALUES (date_trunc('minute', now()), 'x', 95, 5)");
    evaluate();
    assert_int_equal(open_count("failure_rate"), 0);
    pgtest_exec(db, "DELETE FROM tds.stats_minute");
}

static void test_queue_rules(void **s)
{
    (void)s;
    cl.cfg.alerts.queue_backlog = 3;
    check_rule("queue_backlog",
               "INSERT INTO tds.sync_queue (entity_type, zoho_id) SELECT 'items', g::text"
               " FROM generate_series(1, 5) g",
               "UPDATE tds.sync_queue SET status = 'completed'");
    check_rule("oldest_pending",
               "INSERT INTO tds.sync_queue (entity_type, zoho_id, created_at)"
               " VALUES ('items', '77', now() - interval '2 hours')",
               "UPDATE tds.sync_queue SET status = 'completed'");
    check_rule("processing_stuck",
               "INSERT INTO tds.sync_queue (entity_type, zoho_id, status, locked_by, locked_until,"
               " updated_at) VALUES ('items', '78', 'processing', 'x/w1', now() + interval '1 day',"
               " now() - interval '2 hours')",
               "UPDATE tds.sync_queue SET status = 'completed', locked_by = NULL");
    cl.cfg.alerts.dlq_growth_per_hour = 2;
    check_rule("dlq_growth",
               "INSERT INTO tds.dead_letter (entity_type, zoho_id, operation, failure_reason)"
               " SELECT 'items', g::text, 'upsert', 'boom' FROM generate_series(1, 3) g",
               "UPDATE tds.dead_letter SET created_at = now() - interval '2 hours'");
}

static void test_engine_heartbeat(void **s)
{
    (void)s;
    check_rule("engine_heartbeat:ghost",
               "INSERT INTO tds.engines (instance, host, pid, version, state, heartbeat_at)"
               " VALUES ('ghost', 'h', 1, 'v', 'running', now() - interval '5 minutes')",
               "UPDATE tds.engines SET heartbeat_at = now() WHERE instance = 'ghost'");
    /* a stopped engine does not alert */
    pgtest_exec(
        db, "UPDATE tds.engines SET state = 'stopped', heartbeat_at = now() - interval '1 hour'");
    evaluate();
    assert_int_equal(open_count("engine_heartbeat:ghost"), 0);
}

static void test_api_rules_and_zoho_auth(void **s)
{
    (void)s;
    if (pgtest_scalar(db, "SELECT (to_regclass('tds.api_usage') IS NOT NULL)::int") == 0) {
        /* without the Zoho client's table the rules stay quiet */
        evaluate();
        skip();
    }
    cl.cfg.zoho.rate_limit.per_day = 1000;
    cl.cfg.alerts.daily_budget_percent = 80;
    check_rule(
        "api_budget",
        "INSERT INTO tds.api_usage VALUES (date_trunc('minute', now()), 'x', '/items', 200, 850)",
        "DELETE FROM tds.api_usage");
    check_rule(
        "zoho_rate_limited",
        "INSERT INTO tds.api_usage VALUES (date_trunc('minute', now()), 'x', '/items', 429, 1)",
        "UPDATE tds.api_usage SET minute = minute - interval '1 hour'");
    pgtest_exec(db, "DELETE FROM tds.api_usage");
    /* zoho_auth: raised by the client, cleared by a later successful call */
    struct alert_spec a = {
        "zoho_auth", ALERT_CRITICAL, "Zoho rejected the refresh token", "invalid_code", NULL, 1,
        NULL};
    bool fresh = false;
    char *err = NULL;
    assert_int_equal(alerts_raise(db, &a, NULL, &fresh, &err), 0);
    assert_true(fresh);
    assert_int_equal(alerts_raise(db, &a, NULL, &fresh, &err), 0);
    assert_false(fresh);
    assert_int_equal(occurrences("zoho_auth"), 2);
    evaluate();
    assert_int_equal(open_count("zoho_auth"), 1);
    pgtest_exec(db, "UPDATE tds.alerts SET last_seen = now() - interval '5 minutes'"
                    " WHERE dedup_key = 'zoho_auth'");
    pgtest_exec(
        db,
        "INSERT INTO tds.api_usage VALUES (date_trunc('minute', now()), 'x', '/items', 200, 1)");
    evaluate();
    assert_int_equal(open_count("zoho_auth"), 0);
    pgtest_exec(db, "DELETE FROM tds.api_usage");
}

static void test_ack(void **s)
{
    (void)s;
    struct alert_spec a = {"custom", ALERT_WARNING, "Something", NULL, NULL, 0, "custom:1"};
    struct alert_spec b = {"custom", ALERT_INFO, "Something else", NULL, NULL, 0, "custom:2"};
    long long id = 0;
    char *err = NULL;
    assert_int_equal(alerts_raise(db, &a, &id, NULL, &err), 0);
    assert_int_equal(alerts_raise(db, &b, NULL, NULL, &err), 0);
    assert_int_equal(alerts_ack(db, id, "alice", &err), 0);
    assert_int_equal(alerts_ack(db, 999999, "alice", &err), -1);
    free(err);
    err = NULL;
    int n = 0;
    assert_int_equal(alerts_ack_all(db, "bob", &n, &err), 0);
    assert_int_equal(n, 1);
    assert_int_equal(pgtest_scalar(db,
                                   "SELECT count(*) FROM tds.alerts WHERE dedup_key = 'custom:1'"
                                   " AND acknowledged_by = 'alice'"),
                     1);
    assert_int_equal(pgtest_scalar(db,
                                   "SELECT count(*) FROM tds.alerts WHERE dedup_key = 'custom:2'"
                                   " AND acknowledged_by = 'bob'"),
                     1);
    /* resolve, then raise again: a new alert */
    assert_int_equal(alerts_resolve(db, "custom:1", &n, &err), 0);
    assert_int_equal(n, 1);
    bool fresh = false;
    assert_int_equal(alerts_raise(db, &a, NULL, &fresh, &err), 0);
    assert_true(fresh);
    assert_int_equal(
        pgtest_scalar(db, "SELECT count(*) FROM tds.alerts WHERE dedup_key = 'custom:1'"), 2);
}

/* --- notify_url: a one-thread HTTP server --- */
static int srv_fd, srv_port, srv_hits;
static char srv_body[4096];

static void *srv_main(void *arg)
{
    (void)arg;
    for (int i = 0; i < 2; i++) {
        int fd = accept(srv_fd, NULL, NULL);
        if (fd < 0)
            return NULL;
        char buf[8192];
        ssize_t n, tot = 0;
        /* read headers + body (small) */
        while ((n = read(fd, buf + tot, sizeof buf - 1 - (size_t)tot)) > 0) {
            tot += n;
            buf[tot] = '\0';
            char *hdr_end = strstr(buf, "\r\n\r\n");
            char *cl_h = strcasestr(buf, "content-length:");
            if (hdr_end && cl_h && tot - (hdr_end + 4 - buf) >= atoi(cl_h + 15))
                break;
        }
        char *hdr_end = strstr(buf, "\r\n\r\n");
        if (hdr_end)
            snprintf(srv_body, sizeof srv_body, "%s", hdr_end + 4);
        srv_hits++;
        const char *resp =
            i == 0 ? "HTTP/1.1 500 Oops\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                   : "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok";
        if (write(fd, resp, strlen(resp)) < 0)
            perror("write");
        close(fd);
    }
    return NULL;
}

static void test_notify(void **s)
{
    (void)s;
    srv_fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(srv_fd, (struct sockaddr *)&a, sizeof a), 0);
    socklen_t len = sizeof a;
    getsockname(srv_fd, (struct sockaddr *)&a, &len);
    srv_port = ntohs(a.sin_port);
    listen(srv_fd, 4);
    pthread_t t;
    pthread_create(&t, NULL, srv_main, NULL);
    pgtest_exec(db, "UPDATE tds.alerts SET notified_at = now()");
    struct alert_spec al = {
        "notify_test", ALERT_CRITICAL, "Paging someone", "details here", NULL, 0, NULL};
    char *err = NULL;
    assert_int_equal(alerts_raise(db, &al, NULL, NULL, &err), 0);
    char *url = xasprintf("http://127.0.0.1:%d/hook", srv_port);
    assert_int_equal(alerts_notify_pending(db, url, 10, 5000, &err), 0); /* 500: retried later */
    assert_int_equal(
        pgtest_scalar(db, "SELECT notify_attempts FROM tds.alerts WHERE dedup_key = 'notify_test'"),
        1);
    assert_int_equal(alerts_notify_pending(db, url, 10, 5000, &err), 0); /* backoff: not yet */
    pgtest_exec(db, "UPDATE tds.alerts SET notify_next_at = now() WHERE dedup_key = 'notify_test'");
    assert_int_equal(alerts_notify_pending(db, url, 10, 5000, &err), 1);
    pthread_join(t, NULL);
    close(srv_fd);
    assert_int_equal(srv_hits, 2);
    assert_non_null(strstr(srv_body, "\"text\":\"[tds] CRITICAL: Paging someone"));
    assert_int_equal(pgtest_scalar(db,
                                   "SELECT count(*) FROM tds.alerts WHERE dedup_key = 'notify_test'"
                                   " AND notified_at IS NOT NULL"),
                     1);
    free(url);
}

/* The engine records db_unreachable once the database is back, resolved
 * (the outage is over: it stayed open forever before). */
static void test_db_unreachable(void **s)
{
    (void)s;
    struct engine *e = start_engine(&cl, "dbdown");
    sleep_ms(500);
    /* Kill every connection of the engine: it reconnects and reports. */
    pgtest_exec(db, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE application_name LIKE '%dbdown%'");
    assert_int_equal(
        wait_scalar(db,
                    "SELECT count(*) FROM tds.alerts WHERE alert_type = 'db_unreachable'"
                    " AND dedup_key = 'db_unreachable:dbdown' AND resolved_at IS NOT NULL"
                    " AND title LIKE 'Database was unreachable for %'",
                    1, 15000),
        1);
    sleep_ms(500);
    assert_int_equal(pgtest_scalar(db, "SELECT count(*) FROM tds.alerts WHERE alert_type ="
                                       " 'db_unreachable' AND resolved_at IS NULL"),
                     0);
    /* still working */
    char *err = NULL;
    char *p = make_item(4242, "2024-03-01T10:00:00+0000", "after", 1);
    assert_int_equal(queue_enqueue(db, "items", "4242", QOP_UPSERT, p, NULL, NULL, &err), 0);
    free(p);
    assert_int_equal(
        wait_scalar(db, "SELECT count(*) FROM zoho.items WHERE item_id = '4242'", 1, 10000), 1);
    stop_engine(e);
}

int main(void)
{
    engine_test_setup("alerts", &cl);
    db = pgtest_connect();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_failure_rate),
        cmocka_unit_test(test_queue_rules),
        cmocka_unit_test(test_engine_heartbeat),
        cmocka_unit_test(test_api_rules_and_zoho_auth),
        cmocka_unit_test(test_ack),
        cmocka_unit_test(test_notify),
        cmocka_unit_test(test_db_unreachable),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    PQfinish(db);
    config_loaded_free(&cl);
    return rc;
}
