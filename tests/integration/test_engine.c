/*
 * test_engine.c: runs (handler, counters, events, failure, cancellation,
 * interruption by a stop and resumption by the janitor), three engines
 * with four workers each sharing the queue (every item applied exactly
 * once, counted by a trigger), and the scheduler (fires once across the
 * fleet, one catch-up after downtime, leadership moving on a stop; with
 * an injected clock, never before its slot).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdatomic.h>
#include <stdint.h>
#include <cmocka.h>

#include "engine_testlib.h"
#include "tds/runs.h"

static struct config_loaded cl;
static PGconn *db;

static int stock_handler(struct run_ctx *ctx, void *arg, char **err)
{
    (void)arg;
    for (int i = 0; i < 20; i++) {
        char *p = make_item(5000 + i, "2024-05-01T10:00:00+0000", "from run", i);
        char id[16];
        snprintf(id, sizeof id, "%d", 5000 + i);
        int rc = run_ctx_enqueue(ctx, "items", id, QOP_UPSERT, p, 5, NULL, err);
        free(p);
        if (rc != 0)
            return -1;
    }
    run_ctx_add(ctx, 20, 0, 0, 0, 3);
    run_ctx_set_expected(ctx, 20);
    return 0;
}

static int failing_handler(struct run_ctx *ctx, void *arg, char **err)
{
    (void)ctx;
    (void)arg;
    *err = xstrdup("Zoho said no (simulated)");
    return -1;
}

static int waiting_handler(struct run_ctx *ctx, void *arg, char **err)
{
    (void)arg;
    if (run_ctx_resumed_from(ctx) != 0)
        return 0;
    while (!run_ctx_cancelled(ctx))
        sleep_ms(20);
    *err = xstrdup("stopped");
    return -1;
}

static long long request(const char *type)
{
    long long id = 0;
    char *err = NULL;
    if (runs_request(db, type, NULL, "cli", "{\"x\":1}", "tester", &id, &err) != 0)
        fail_msg("runs_request: %s", err);
    return id;
}

static long long run_scalar(const char *fmt, long long id)
{
    char *sql = xasprintf(fmt, id);
    long long v = pgtest_scalar(db, sql);
    free(sql);
    return v;
}

static long long run_wait(const char *fmt, long long id, long long want, int ms)
{
    char *sql = xasprintf(fmt, id);
    long long v = wait_scalar(db, sql, want, ms);
    free(sql);
    return v;
}

static void test_runs(void **s)
{
    (void)s;
    engine_clear_handlers();
    engine_register_run_handler("stock", stock_handler, NULL);
    engine_register_run_handler("incremental", failing_handler, NULL);
    engine_register_run_handler("full", waiting_handler, NULL);
    struct engine *e = start_engine(&cl, "runs1");
    char *err = NULL;

    long long r1 = request("stock");
    assert_int_equal(
        run_wait("SELECT count(*) FROM tds.sync_runs WHERE id = %lld AND status = 'completed'", r1,
                 1, 10000),
        1);
    assert_int_equal(run_scalar("SELECT total FROM tds.sync_runs WHERE id = %lld", r1), 20);
    assert_int_equal(run_scalar("SELECT api_calls FROM tds.sync_runs WHERE id = %lld", r1), 3);
    assert_int_equal(run_scalar("SELECT expected_total FROM tds.sync_runs WHERE id = %lld", r1),
                     20);
    /* its items complete and count as the run's successes */
    assert_int_equal(run_wait("SELECT succeeded FROM tds.sync_runs WHERE id = %lld", r1, 20, 10000),
                     20);
    assert_int_equal(run_scalar("SELECT count(*) FROM tds.events WHERE run_id = %lld AND type IN"
                                " ('tds.sync.started', 'tds.sync.completed')",
                                r1),
                     2);
    assert_int_equal(run_scalar("SELECT count(*) FROM tds.events WHERE run_id = %lld AND type ="
                                " 'tds.entity.create'",
                                r1),
                     20);
    assert_int_equal(
        run_scalar("SELECT count(*) FROM tds.sync_runs WHERE id = %lld AND owner = 'runs1'"
                   " AND started_at IS NOT NULL AND finished_at >= started_at",
                   r1),
        1);

    long long r2 = request("incremental");
    assert_int_equal(
        run_wait("SELECT count(*) FROM tds.sync_runs WHERE id = %lld AND status = 'failed'"
                 " AND error LIKE 'Zoho said no%%'",
                 r2, 1, 10000),
        1);
    assert_int_equal(run_scalar("SELECT count(*) FROM tds.events WHERE run_id = %lld AND type ="
                                " 'tds.sync.failed'",
                                r2),
                     1);

    /* cancel a running run from "another console" */
    long long r3 = request("full");
    assert_int_equal(
        run_wait("SELECT count(*) FROM tds.sync_runs WHERE id = %lld AND status = 'running'", r3, 1,
                 10000),
        1);
    assert_int_equal(runs_cancel(db, r3, "bob", &err), 0);
    assert_int_equal(
        run_wait("SELECT count(*) FROM tds.sync_runs WHERE id = %lld AND status = 'cancelled'", r3,
                 1, 10000),
        1);
    assert_int_equal(runs_cancel(db, r3, "bob", &err), -1);
    free(err);
    err = NULL;
    /* a pending run of a type nobody handles: cancelled at once */
    long long r4 = request("reconcile");
    sleep_ms(300);
    assert_int_equal(
        run_scalar("SELECT count(*) FROM tds.sync_runs WHERE id = %lld AND status = 'pending'", r4),
        1);
    assert_int_equal(runs_cancel(db, r4, "bob", &err), 0);
    assert_int_equal(
        run_scalar("SELECT count(*) FROM tds.sync_runs WHERE id = %lld AND status = 'cancelled'",
                   r4),
        1);
    assert_int_equal(runs_request(db, "bogus", NULL, "cli", NULL, NULL, NULL, &err), -1);
    free(err);
    err = NULL;

    /* a stop interrupts a long run; the next engine's janitor resumes it */
    long long r5 = request("full");
    assert_int_equal(
        run_wait("SELECT count(*) FROM tds.sync_runs WHERE id = %lld AND status = 'running'", r5, 1,
                 10000),
        1);
    stop_engine(e);
    assert_int_equal(
        run_scalar("SELECT count(*) FROM tds.sync_runs WHERE id = %lld AND status = 'interrupted'",
                   r5),
        1);
    e = start_engine(&cl, "runs2");
    assert_int_equal(
        run_wait(
            "SELECT count(*) FROM tds.sync_runs WHERE resumed_from = %lld AND status = 'completed'"
            " AND trigger = 'heal'",
            r5, 1, 15000),
        1);
    assert_int_equal(run_scalar("SELECT count(*) FROM tds.sync_runs WHERE resumed_from = %lld", r5),
                     1);
    stop_engine(e);
    engine_clear_handlers();
}

static void test_three_engines_exactly_once(void **s)
{
    (void)s;
    pgtest_exec(db, "CREATE TABLE applied (item_id text, at timestamptz DEFAULT now())");
    pgtest_exec(db,
                "CREATE FUNCTION count_apply() RETURNS trigger LANGUAGE plpgsql AS $$"
                " BEGIN INSERT INTO applied (item_id) VALUES (NEW.item_id); RETURN NEW; END $$");
    pgtest_exec(db, "CREATE TRIGGER count_apply AFTER INSERT OR UPDATE ON zoho.items"
                    " FOR EACH ROW EXECUTE FUNCTION count_apply()");
    pgtest_exec(db, "TRUNCATE zoho.items CASCADE");
    cl.cfg.engine.workers = 4;
    cl.cfg.engine.batch_size = 25;
    struct engine *e[3];
    const char *names[3] = {"fleet-a", "fleet-b", "fleet-c"};
    for (int i = 0; i < 3; i++)
        e[i] = start_engine(&cl, names[i]);
    /* enqueue while they run */
    const int n = 3000;
    pgtest_exec(db, "BEGIN");
    for (int i = 0; i < n; i++) {
        char *p = make_item(100000 + i, "2024-06-01T10:00:00+0000", "fleet", i % 50);
        char id[16];
        snprintf(id, sizeof id, "%d", 100000 + i);
        char *err = NULL;
        if (queue_enqueue(db, "items", id, QOP_UPSERT, p, NULL, NULL, &err) != 0)
            fail_msg("%s", err);
        free(p);
        if (i % 500 == 499) {
            pgtest_exec(db, "COMMIT");
            pgtest_exec(db, "BEGIN");
        }
    }
    pgtest_exec(db, "COMMIT");
    assert_int_equal(wait_scalar(db,
                                 "SELECT count(*) FROM tds.sync_queue WHERE status = 'completed'"
                                 " AND zoho_id::bigint >= 100000",
                                 n, 60000),
                     n);
    assert_int_equal(pgtest_scalar(db, "SELECT count(*) FROM applied"), n);
    assert_int_equal(pgtest_scalar(db, "SELECT count(DISTINCT item_id) FROM applied"), n);
    assert_int_equal(
        pgtest_scalar(db, "SELECT count(*) FROM tds.events WHERE type = 'tds.entity.create'"
                          " AND entity_id::bigint >= 100000"),
        n);
    /* every engine visible, with its threads; all did some of the work */
    assert_int_equal(pgtest_scalar(db,
                                   "SELECT count(*) FROM tds.engines WHERE instance LIKE 'fleet-%'"
                                   " AND threads = 4 AND state = 'running'"
                                   " AND heartbeat_at > now() - interval '10 seconds'"),
                     3);
    long long total = 0;
    for (int i = 0; i < 3; i++) {
        struct engine_status st;
        engine_status(e[i], &st);
        total += st.items_ok;
    }
    assert_int_equal(total, n);
    sleep_ms(1500); /* stats flushed with the heartbeat */
    assert_int_equal(
        pgtest_scalar(db, "SELECT sum(ok) FROM tds.stats_minute WHERE instance LIKE 'fleet-%'"), n);
    for (int i = 0; i < 3; i++)
        stop_engine(e[i]);
    pgtest_exec(db, "DROP TRIGGER count_apply ON zoho.items");
    cl.cfg.engine.workers = 2;
    cl.cfg.engine.batch_size = 100;
}

static void test_scheduler(void **s)
{
    (void)s;
    engine_clear_handlers();
    cl.cfg.schedule.enabled = true;
    free(cl.cfg.schedule.stock_sync);
    /* Every slot below is made due by hand; the cron's own (daily, at
     * midnight) do not fire during the test: an every-5-minutes one did,
     * between two checks, on a slow (TSan) run. */
    cl.cfg.schedule.stock_sync = xstrdup("0 0 * * *");
    free(cl.cfg.schedule.full_sync);
    cl.cfg.schedule.full_sync = xstrdup("");
    struct engine *e[3];
    const char *names[3] = {"sched-a", "sched-b", "sched-c"};
    for (int i = 0; i < 3; i++)
        e[i] = start_engine(&cl, names[i]);
    /* the leader registers the jobs */
    assert_int_equal(wait_scalar(db,
                                 "SELECT count(*) FROM tds.schedules WHERE name = 'stock_sync'"
                                 " AND enabled AND next_run_at > now()",
                                 1, 10000),
                     1);
    assert_int_equal(pgtest_scalar(db, "SELECT count(*) FROM tds.schedules WHERE name = 'full_sync'"
                                       " AND NOT enabled"),
                     1);
    assert_int_equal(pgtest_scalar(db, "SELECT count(*) FROM tds.leases WHERE name = 'leader'"
                                       " AND holder LIKE 'sched-%'"),
                     1);
    pgtest_exec(db, "DELETE FROM tds.sync_runs WHERE trigger = 'schedule'");
    /* a slot comes due: one run, whatever the number of engines */
    pgtest_exec(
        db,
        "UPDATE tds.schedules SET next_run_at = date_trunc('second', now()) - interval '1 second'"
        " WHERE name = 'stock_sync'");
    assert_int_equal(wait_scalar(db,
                                 "SELECT count(*) FROM tds.sync_runs WHERE trigger = 'schedule'"
                                 " AND run_type = 'stock'",
                                 1, 10000),
                     1);
    sleep_ms(1500);
    assert_int_equal(
        pgtest_scalar(db, "SELECT count(*) FROM tds.sync_runs WHERE trigger = 'schedule'"), 1);
    assert_int_equal(pgtest_scalar(db,
                                   "SELECT count(*) FROM tds.schedules WHERE name = 'stock_sync'"
                                   " AND next_run_at > now() AND last_run_at IS NOT NULL"
                                   " AND last_status LIKE 'started run %'"),
                     1);
    /* still pending (no handler): the next slot is skipped, not stacked */
    pgtest_exec(
        db,
        "UPDATE tds.schedules SET next_run_at = date_trunc('second', now()) - interval '1 second'"
        " WHERE name = 'stock_sync'");
    assert_int_equal(wait_scalar(db,
                                 "SELECT count(*) FROM tds.schedules WHERE name = 'stock_sync'"
                                 " AND last_status LIKE 'skipped%'",
                                 1, 10000),
                     1);
    assert_int_equal(
        pgtest_scalar(db, "SELECT count(*) FROM tds.sync_runs WHERE trigger = 'schedule'"), 1);
    pgtest_exec(db, "UPDATE tds.sync_runs SET status = 'cancelled', finished_at = now() WHERE "
                    "trigger = 'schedule'");
    /* after a long downtime (3 missed slots): one catch-up run */
    pgtest_exec(
        db,
        "UPDATE tds.schedules SET next_run_at = date_trunc('second', now()) - interval '3 days'"
        " WHERE name = 'stock_sync'");
    assert_int_equal(
        wait_scalar(db, "SELECT count(*) FROM tds.sync_runs WHERE trigger = 'schedule'", 2, 10000),
        2);
    sleep_ms(1500);
    assert_int_equal(
        pgtest_scalar(db, "SELECT count(*) FROM tds.sync_runs WHERE trigger = 'schedule'"), 2);
    /* the leader stops: another engine takes the lease and keeps scheduling */
    PGresult *r = PQexec(db, "SELECT holder FROM tds.leases WHERE name = 'leader'");
    char *leader = xstrdup(PQgetvalue(r, 0, 0));
    PQclear(r);
    int li = 0;
    for (int i = 0; i < 3; i++)
        if (strcmp(names[i], leader) == 0)
            li = i;
    stop_engine(e[li]);
    e[li] = NULL;
    char *sql = xasprintf(
        "SELECT count(*) FROM tds.leases WHERE name = 'leader' AND holder <> '%s'", leader);
    assert_int_equal(wait_scalar(db, sql, 1, 30000), 1);
    free(sql);
    free(leader);
    pgtest_exec(db, "UPDATE tds.sync_runs SET status = 'cancelled', finished_at = now() WHERE "
                    "trigger = 'schedule'");
    pgtest_exec(
        db,
        "UPDATE tds.schedules SET next_run_at = date_trunc('second', now()) - interval '1 second'"
        " WHERE name = 'stock_sync'");
    assert_int_equal(
        wait_scalar(db, "SELECT count(*) FROM tds.sync_runs WHERE trigger = 'schedule'", 3, 10000),
        3);
    /* disabling all schedules */
    for (int i = 0; i < 3; i++) {
        if (e[i] == NULL)
            continue;
        struct tds_config c2 = cl.cfg;
        c2.schedule.enabled = false;
        engine_reload(e[i], &c2);
    }
    assert_int_equal(wait_scalar(db, "SELECT count(*) FROM tds.schedules WHERE enabled", 0, 10000),
                     0);
    for (int i = 0; i < 3; i++)
        if (e[i])
            stop_engine(e[i]);
    cl.cfg.schedule.enabled = false;
}

/* The injected clock: milliseconds since the epoch. */
static _Atomic long long fake_ms;

static double fake_clock(void *arg)
{
    (void)arg;
    return (double)atomic_load(&fake_ms) / 1000.0;
}

static void test_scheduler_never_early(void **s)
{
    (void)s;
    engine_clear_handlers();
    pgtest_exec(db, "DELETE FROM tds.schedules; DELETE FROM tds.leases;"
                    " DELETE FROM tds.sync_runs WHERE trigger = 'schedule'");
    cl.cfg.schedule.enabled = true;
    free(cl.cfg.schedule.stock_sync);
    cl.cfg.schedule.stock_sync = xstrdup("* * * * *");
    /* 2030-01-01 00:00:10 UTC: the first slot is 00:01:00 in any zone of whole minutes */
    const long long t0 = 1893456010LL * 1000, slot = 1893456060LL;
    atomic_store(&fake_ms, t0);
    char *err = NULL;
    struct engine *e = engine_new(&cl.cfg, "clock", "cli", &err);
    assert_non_null(e);
    struct engine_timing t = {3000, 500, 100, 500, 300};
    engine_set_timing(e, &t);
    engine_set_clock(e, fake_clock, NULL);
    assert_int_equal(engine_start(e, &err), 0);
    char *next = xasprintf("SELECT count(*) FROM tds.schedules WHERE name = 'stock_sync'"
                           " AND extract(epoch FROM next_run_at) = %lld",
                           slot);
    assert_int_equal(wait_scalar(db, next, 1, 10000), 1);
    free(next);
    /* 0.4 s, then 1 ms before the slot: rounding made it due; it is not */
    const char *fired = "SELECT count(*) FROM tds.sync_runs WHERE trigger = 'schedule'";
    atomic_store(&fake_ms, slot * 1000 - 400);
    sleep_ms(800);
    atomic_store(&fake_ms, slot * 1000 - 1);
    sleep_ms(800);
    assert_int_equal(pgtest_scalar(db, fired), 0);
    /* the slot itself: it fires once, and the next slot is a minute on */
    atomic_store(&fake_ms, slot * 1000);
    assert_int_equal(wait_scalar(db, fired, 1, 5000), 1);
    sleep_ms(500);
    assert_int_equal(pgtest_scalar(db, fired), 1);
    next = xasprintf("SELECT count(*) FROM tds.schedules WHERE name = 'stock_sync'"
                     " AND extract(epoch FROM next_run_at) = %lld",
                     slot + 60);
    assert_int_equal(pgtest_scalar(db, next), 1);
    free(next);
    stop_engine(e);
    cl.cfg.schedule.enabled = false;
}

/* An engine named lit_a, stopping, releases its own leases, not those of
 * the engine litxa (LIKE 'lit_a/%' matched both). */
static void test_instance_names_literal(void **s)
{
    (void)s;
    engine_clear_handlers();
    pgtest_exec(db, "INSERT INTO tds.sync_queue (entity_type, zoho_id, payload, status, locked_by,"
                    " locked_until) VALUES ('items', 'foreign-1', '{}', 'processing', 'litxa/0',"
                    " now() + interval '1 hour')");
    struct engine *e = start_engine(&cl, "lit_a");
    stop_engine(e);
    assert_int_equal(pgtest_scalar(db, "SELECT count(*) FROM tds.sync_queue WHERE zoho_id ="
                                       " 'foreign-1' AND status = 'processing'"
                                       " AND locked_by = 'litxa/0'"),
                     1);
    pgtest_exec(db, "DELETE FROM tds.sync_queue WHERE zoho_id = 'foreign-1'");
}

/* Pausing the fleet reaches every engine through NOTIFY, in under a
 * second (not at their next heartbeat), and no item is claimed after it. */
static void test_pause_fleet_fast(void **s)
{
    (void)s;
    engine_clear_handlers();
    cl.cfg.engine.heartbeat_seconds = 30; /* a pause must not wait for a heartbeat */
    struct engine *e[2] = {start_engine(&cl, "pause-a"), start_engine(&cl, "pause-b")};
    const char *running = "SELECT count(*) FROM tds.engines WHERE instance LIKE 'pause-_'"
                          " AND state = 'running'";
    assert_int_equal(wait_scalar(db, running, 2, 10000), 2);
    sleep_ms(300);
    char *err = NULL;
    long long t0 = time_mono_ms();
    assert_int_equal(control_set_paused(db, true, NULL, true, "tester", &err), 0);
    const char *paused = "SELECT count(*) FROM tds.engines WHERE instance LIKE 'pause-_'"
                         " AND state = 'paused'";
    assert_int_equal(wait_scalar(db, paused, 2, 5000), 2);
    long long took = time_mono_ms() - t0;
    print_message("fleet paused in %lld ms\n", took);
    assert_true(took < 1000);
    for (int i = 0; i < 2; i++) {
        struct engine_status st;
        engine_status(e[i], &st);
        assert_true(st.paused_fleet);
    }
    assert_int_equal(control_set_paused(db, true, NULL, false, "tester", &err), 0);
    assert_int_equal(wait_scalar(db, running, 2, 2000), 2);
    for (int i = 0; i < 2; i++)
        stop_engine(e[i]);
    cl.cfg.engine.heartbeat_seconds = 1;
}

/* Runs of one kind never overlap: an equal request joins the active run, an
 * overlapping one waits for it (one engine could run both at once before),
 * and a run started here (sync --wait) is refused, naming the run. */
static void test_no_overlapping_runs(void **s)
{
    (void)s;
    engine_clear_handlers();
    engine_register_run_handler("full", waiting_handler, NULL);
    struct engine *e = start_engine(&cl, "overlap");
    char *err = NULL;
    struct run_request_info a, b, j, other;
    assert_int_equal(runs_request_info(db, "full", NULL, "cli", "{\"source\":\"cli\"}", "t", &a,
                                       &err),
                     0);
    assert_false(a.joined);
    assert_int_equal(
        run_wait("SELECT count(*) FROM tds.sync_runs WHERE id = %lld AND status = 'running'", a.id,
                 1, 10000),
        1);
    /* the same request (another source): joins it */
    assert_int_equal(runs_request_info(db, "full", NULL, "manual", "{\"source\":\"console\"}",
                                       "t", &j, &err),
                     0);
    assert_true(j.joined);
    assert_int_equal(j.id, a.id);
    /* full of items meets full of every entity: it waits, and says for which */
    assert_int_equal(runs_request_info(db, "full", "items", "cli", NULL, "t", &b, &err), 0);
    assert_false(b.joined);
    assert_true(b.id != a.id);
    assert_int_equal(b.waits_for, a.id);
    /* another kind does not overlap */
    assert_int_equal(runs_request_info(db, "incremental", "items", "cli", NULL, "t", &other, &err),
                     0);
    assert_int_equal(other.waits_for, 0);
    long long here = 0, way = 0;
    assert_int_equal(
        runs_start_here(db, "full", "contacts", NULL, "cli-test", "t", 30, &here, &way, &err), 1);
    assert_int_equal(way, a.id);
    assert_int_equal(here, 0);
    sleep_ms(1500);
    assert_int_equal(
        run_scalar("SELECT count(*) FROM tds.sync_runs WHERE id = %lld AND status = 'pending'",
                   b.id),
        1);
    assert_int_equal(pgtest_scalar(db, "SELECT count(*) FROM tds.sync_runs WHERE run_type = 'full'"
                                       " AND status = 'running'"),
                     1);
    /* the one in the way ends: the waiting run starts */
    assert_int_equal(runs_cancel(db, a.id, "t", &err), 0);
    assert_int_equal(
        run_wait("SELECT count(*) FROM tds.sync_runs WHERE id = %lld AND status = 'running'", b.id,
                 1, 10000),
        1);
    assert_int_equal(runs_cancel(db, b.id, "t", &err), 0);
    assert_int_equal(runs_cancel(db, other.id, "t", &err), 0);
    assert_int_equal(
        run_wait("SELECT count(*) FROM tds.sync_runs WHERE id = %lld AND status = 'cancelled'",
                 b.id, 1, 10000),
        1);
    assert_int_equal(
        runs_start_here(db, "full", "contacts", NULL, "cli-test", "t", 30, &here, &way, &err), 0);
    assert_true(here > 0);
    pgtest_exec(db, "UPDATE tds.sync_runs SET status = 'cancelled', finished_at = now()"
                    " WHERE owner = 'cli-test'");
    stop_engine(e);
    engine_clear_handlers();
}

static atomic_bool zombie_stopped;

/* Calls "Zoho" (counts a call) every 20 ms until it is told to stop. */
static int calling_handler(struct run_ctx *ctx, void *arg, char **err)
{
    (void)arg;
    while (!run_ctx_cancelled(ctx)) {
        run_ctx_add(ctx, 0, 0, 0, 0, 1);
        sleep_ms(20);
    }
    atomic_store(&zombie_stopped, true);
    *err = xstrdup("stopped");
    return -1;
}

/* A run taken over while its engine stalled: the stale engine notices at
 * its next heartbeat, stops the work, and counts the calls it made. */
static void test_zombie_run_stops(void **s)
{
    (void)s;
    engine_clear_handlers();
    engine_register_run_handler("stock", calling_handler, NULL);
    atomic_store(&zombie_stopped, false);
    pgtest_exec(db, "UPDATE tds.sync_runs SET status = 'cancelled', finished_at = now()"
                    " WHERE status IN ('pending', 'running')");
    struct engine *e = start_engine(&cl, "zombie");
    long long id = request("stock");
    assert_int_equal(
        run_wait("SELECT count(*) FROM tds.sync_runs WHERE id = %lld AND status = 'running'", id,
                 1, 10000),
        1);
    sleep_ms(1200);
    /* what the janitor of another engine does after a stall */
    char *sql = xasprintf("UPDATE tds.sync_runs SET status = 'interrupted', finished_at = now(),"
                          " error = 'engine zombie stopped sending heartbeats' WHERE id = %lld"
                          " RETURNING api_calls",
                          id);
    long long calls_then = pgtest_scalar(db, sql);
    free(sql);
    long long t0 = time_mono_ms();
    while (!atomic_load(&zombie_stopped) && time_mono_ms() - t0 < 5000)
        sleep_ms(20);
    assert_true(atomic_load(&zombie_stopped));
    sleep_ms(300);
    /* the row keeps what the janitor wrote; the calls made since are on it */
    assert_int_equal(
        run_scalar("SELECT count(*) FROM tds.sync_runs WHERE id = %lld AND status = 'interrupted'"
                   " AND error LIKE 'engine zombie stopped%%'",
                   id),
        1);
    assert_true(run_scalar("SELECT api_calls FROM tds.sync_runs WHERE id = %lld", id) >
                calls_then);
    long long final = run_scalar("SELECT api_calls FROM tds.sync_runs WHERE id = %lld", id);
    sleep_ms(500);
    assert_int_equal(run_scalar("SELECT api_calls FROM tds.sync_runs WHERE id = %lld", id), final);
    stop_engine(e);
    engine_clear_handlers();
}

/* The janitor stalls (a lock holds its first statement) on the leader:
 * the lease is renewed by its own thread, so leadership never splits;
 * sampled every 100 ms for 12 s, never two leaders (nor none for long). */
static void test_one_leader_while_janitor_stalls(void **s)
{
    (void)s;
    engine_clear_handlers();
    pgtest_exec(db, "DELETE FROM tds.leases");
    struct engine *e[2] = {start_engine(&cl, "lead-a"), NULL};
    assert_int_equal(
        wait_scalar(db, "SELECT count(*) FROM tds.leases WHERE holder = 'lead-a'", 1, 10000), 1);
    e[1] = start_engine(&cl, "lead-b");
    sleep_ms(1000);
    /* stall the janitor: its first statement updates tds.sync_queue */
    PGconn *locker = pgtest_connect();
    pgtest_exec(locker, "BEGIN; LOCK TABLE tds.sync_queue IN ACCESS EXCLUSIVE MODE");
    int two = 0, none = 0, samples = 0;
    long long t0 = time_mono_ms();
    while (time_mono_ms() - t0 < 12000) {
        int n = 0;
        for (int i = 0; i < 2; i++) {
            struct engine_status st;
            engine_status(e[i], &st);
            n += st.leader;
        }
        two += n > 1;
        none += n == 0;
        samples++;
        sleep_ms(100);
    }
    print_message("%d samples: %d with two leaders, %d with none\n", samples, two, none);
    assert_int_equal(two, 0);
    assert_true(none <= 2);
    /* the stalled janitor's engine still leads, by the database's word too */
    assert_int_equal(pgtest_scalar(db, "SELECT count(*) FROM tds.leases WHERE holder = 'lead-a'"),
                     1);
    pgtest_exec(locker, "COMMIT");
    PQfinish(locker);
    /* the leader stops: the other leads within the lease, at a new epoch */
    long long epoch = pgtest_scalar(db, "SELECT epoch FROM tds.leases WHERE name = 'leader'");
    stop_engine(e[0]);
    assert_int_equal(
        wait_scalar(db, "SELECT count(*) FROM tds.leases WHERE holder = 'lead-b'", 1, 5000), 1);
    assert_true(pgtest_scalar(db, "SELECT epoch FROM tds.leases WHERE name = 'leader'") > epoch);
    stop_engine(e[1]);
}

/* The governor (issue 19): a scheduled slot that would spend the reserve
 * is held back, said in the schedule's status and an alert; with budget
 * to spare the job runs again and the alert resolves. */
static void test_budget_governor(void **s)
{
    (void)s;
    engine_clear_handlers();
    pgtest_exec(db, "DELETE FROM tds.schedules; DELETE FROM tds.leases;"
                    " UPDATE tds.sync_runs SET status = 'cancelled', finished_at = now()"
                    " WHERE status IN ('pending', 'running'); TRUNCATE tds.api_usage");
    cl.cfg.schedule.enabled = true;
    const char *daily = "0 0 * * *"; /* made due by hand below */
    free(cl.cfg.schedule.reconcile);
    cl.cfg.schedule.reconcile = xstrdup(daily);
    free(cl.cfg.schedule.stock_sync);
    cl.cfg.schedule.stock_sync = xstrdup(daily);
    cl.cfg.zoho.rate_limit.per_day = 5000; /* a reserve of 500 */
    cl.cfg.zoho.budget_reserve_percent = 10;
    pgtest_exec(db, "CREATE TEMP TABLE IF NOT EXISTS gov_base AS SELECT 0 AS id;"
                    " UPDATE gov_base SET id = (SELECT coalesce(max(id), 0) FROM tds.sync_runs)");
    struct engine *e = start_engine(&cl, "governor");
    assert_int_equal(wait_scalar(db, "SELECT count(*) FROM tds.schedules WHERE name IN"
                                     " ('reconcile', 'stock_sync') AND enabled",
                                 2, 10000),
                     2);
    /* 4,490 used: 10 left before the reserve; a reconcile costs more (~26
     * calls, by the model), a stock sync less (3, the median of its runs) */
    pgtest_exec(db, "INSERT INTO tds.api_usage (minute, instance, endpoint, status, calls)"
                    " VALUES (date_trunc('minute', now()), 'x', 'GET /items', 200, 4490)");
    const char *due = "UPDATE tds.schedules SET next_run_at = date_trunc('second', now())"
                      " - interval '1 second' WHERE name IN ('reconcile', 'stock_sync')";
    pgtest_exec(db, due);
    assert_int_equal(wait_scalar(db, "SELECT count(*) FROM tds.schedules WHERE name ="
                                     " 'reconcile' AND last_status LIKE"
                                     " 'skipped: held back by the budget%'",
                                 1, 10000),
                     1);
    assert_int_equal(wait_scalar(db, "SELECT count(*) FROM tds.sync_runs WHERE trigger ="
                                     " 'schedule' AND run_type = 'stock' AND id > (SELECT id FROM gov_base)",
                                 1, 10000),
                     1);
    assert_int_equal(pgtest_scalar(db, "SELECT count(*) FROM tds.sync_runs WHERE trigger ="
                                       " 'schedule' AND run_type = 'reconcile' AND id > (SELECT id FROM gov_base)"),
                     0);
    assert_int_equal(pgtest_scalar(db, "SELECT count(*) FROM tds.alerts WHERE alert_type ="
                                       " 'budget_held' AND resolved_at IS NULL"
                                       " AND dedup_key = 'budget_held:reconcile'"),
                     1);
    /* 4,498 used: 2 left, less than even a stock sync: it is held too */
    pgtest_exec(db, "UPDATE tds.api_usage SET calls = 4498; UPDATE tds.sync_runs SET status ="
                    " 'cancelled', finished_at = now() WHERE status = 'pending';"
                    " UPDATE tds.schedules SET last_status = NULL");
    pgtest_exec(db, due);
    assert_int_equal(wait_scalar(db, "SELECT count(*) FROM tds.schedules WHERE last_status LIKE"
                                     " 'skipped: held back by the budget%'",
                                 2, 10000),
                     2);
    /* budget to spare again: the job runs, its alert resolves */
    pgtest_exec(db, "TRUNCATE tds.api_usage");
    pgtest_exec(db, due);
    assert_int_equal(wait_scalar(db, "SELECT count(*) FROM tds.sync_runs WHERE trigger ="
                                     " 'schedule' AND run_type = 'reconcile' AND id > (SELECT id FROM gov_base)",
                                 1, 10000),
                     1);
    assert_int_equal(wait_scalar(db, "SELECT count(*) FROM tds.alerts WHERE alert_type ="
                                     " 'budget_held' AND resolved_at IS NULL",
                                 0, 10000),
                     0);
    stop_engine(e);
    cl.cfg.schedule.enabled = false;
    cl.cfg.zoho.rate_limit.per_day = 0;
    pgtest_exec(db, "UPDATE tds.sync_runs SET status = 'cancelled', finished_at = now()"
                    " WHERE status IN ('pending', 'running')");
}

/* A run that finished but dead-lettered records (its failed count) is
 * completed_with_errors, not plain completed (issue 17 point 4). */
static int lossy_handler(struct run_ctx *ctx, void *arg, char **err)
{
    (void)arg;
    (void)err;
    run_ctx_add(ctx, 10, 8, 2, 0, 1);
    return 0;
}

static void test_completed_with_errors(void **s)
{
    (void)s;
    engine_clear_handlers();
    engine_register_run_handler("incremental", lossy_handler, NULL);
    engine_register_run_handler("stock", stock_handler, NULL);
    pgtest_exec(db, "UPDATE tds.sync_runs SET status = 'cancelled', finished_at = now()"
                    " WHERE status IN ('pending', 'running')");
    struct engine *e = start_engine(&cl, "lossy");
    long long bad = request("incremental"), good = request("stock");
    assert_int_equal(run_wait("SELECT count(*) FROM tds.sync_runs WHERE id = %lld AND status ="
                              " 'completed_with_errors' AND failed = 2",
                              bad, 1, 10000),
                     1);
    assert_int_equal(
        run_wait("SELECT count(*) FROM tds.sync_runs WHERE id = %lld AND status = 'completed'",
                 good, 1, 10000),
        1);
    assert_int_equal(run_scalar("SELECT count(*) FROM tds.events WHERE run_id = %lld AND type ="
                                " 'tds.sync.completed' AND data->>'status' ="
                                " 'completed_with_errors'",
                                bad),
                     1);
    stop_engine(e);
    engine_clear_handlers();
}

int main(void)
{
    engine_test_setup("engine", &cl);
    db = pgtest_connect();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_runs),
        cmocka_unit_test(test_three_engines_exactly_once),
        cmocka_unit_test(test_scheduler),
        cmocka_unit_test(test_scheduler_never_early),
        cmocka_unit_test(test_instance_names_literal),
        cmocka_unit_test(test_pause_fleet_fast),
        cmocka_unit_test(test_no_overlapping_runs),
        cmocka_unit_test(test_zombie_run_stops),
        cmocka_unit_test(test_one_leader_while_janitor_stalls),
        cmocka_unit_test(test_budget_governor),
        cmocka_unit_test(test_completed_with_errors),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    PQfinish(db);
    config_loaded_free(&cl);
    return rc;
}
