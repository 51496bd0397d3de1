/*
 * test_engine_procs.c: several engine PROCESSES (engine_proc) on one
 * database.  Three share 3000 items, each applied exactly once (the
 * "slow" handler records every application in a table inside the batch's
 * transaction).  Then the leader, owning a long run and holding batches in
 * flight, is killed with SIGKILL; another process starts: nothing is lost,
 * nothing is applied twice, the run is interrupted and resumed, and the
 * leadership moves within 30 s.  A poison run (it crashes every engine
 * that takes it) crashes engine.max_resumes + 1 engines, not the fleet: it
 * is failed with a critical alert, and each crash left a backtrace.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <signal.h>
#include <sys/wait.h>

#include "engine_testlib.h"
#include "tds/runs.h"

static struct config_loaded cl;
static PGconn *db;
static const char *dsn;

static pid_t spawn_logged(const char *name, const char *slow_ms, const char *errlog)
{
    pid_t pid = fork();
    if (pid == 0) {
        if (errlog != NULL && freopen(errlog, "a", stderr) == NULL)
            _exit(126);
        setenv("ENGINE_PROC_FAST", "1", 1);
        setenv("ENGINE_PROC_SLOW_MS", slow_ms, 1);
        setenv("ENGINE_PROC_BATCH", "20", 1);
        setenv("ENGINE_PROC_LOGLEVEL", "warn", 1);
        const char *bin = pgtest_build("tests/integration/engine_proc");
        execl(bin, bin, dsn, name, "3", (char *)NULL);
        perror("exec engine_proc");
        _exit(127);
    }
    return pid;
}

static pid_t spawn(const char *name, const char *slow_ms)
{
    return spawn_logged(name, slow_ms, NULL);
}

static int stop(pid_t pid)
{
    kill(pid, SIGTERM);
    int st = 0;
    waitpid(pid, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static void enqueue_slow(int from, int n)
{
    char *sql = xasprintf("INSERT INTO tds.sync_queue (entity_type, zoho_id, payload)"
                          " SELECT 'slow', g::text, '{}' FROM generate_series(%d, %d) g;"
                          " NOTIFY tds_queue",
                          from, from + n - 1);
    pgtest_exec(db, sql);
    free(sql);
}

static void test_three_processes(void **s)
{
    (void)s;
    pid_t p[3];
    const char *names[3] = {"proc-a", "proc-b", "proc-c"};
    for (int i = 0; i < 3; i++)
        p[i] = spawn(names[i], "0");
    assert_int_equal(wait_scalar(db,
                                 "SELECT count(*) FROM tds.engines WHERE instance LIKE 'proc-%'"
                                 " AND state = 'running'",
                                 3, 15000),
                     3);
    enqueue_slow(1, 3000);
    assert_int_equal(wait_scalar(db,
                                 "SELECT count(*) FROM tds.sync_queue WHERE status = 'completed'",
                                 3000, 60000),
                     3000);
    assert_int_equal(pgtest_scalar(db, "SELECT count(*) FROM tds_test_applied"), 3000);
    assert_int_equal(pgtest_scalar(db, "SELECT count(DISTINCT id) FROM tds_test_applied"), 3000);
    /* the work was shared */
    assert_true(pgtest_scalar(db, "SELECT count(DISTINCT instance) FROM tds.stats_minute") >= 2 ||
                wait_scalar(db, "SELECT count(DISTINCT instance) FROM tds.stats_minute", 3, 3000) >=
                    2);
    for (int i = 0; i < 3; i++)
        assert_int_equal(stop(p[i]), 0);
    assert_int_equal(pgtest_scalar(db,
                                   "SELECT count(*) FROM tds.engines WHERE instance LIKE 'proc-%'"
                                   " AND state = 'stopped'"),
                     3);
    pgtest_exec(db, "TRUNCATE tds_test_applied");
}

static void test_sigkill_mid_batch(void **s)
{
    (void)s;
    pgtest_exec(db, "DELETE FROM tds.leases");
    /* The victim starts alone: it becomes the leader and owns the run. */
    pid_t victim = spawn("victim", "5");
    assert_int_equal(
        wait_scalar(db, "SELECT count(*) FROM tds.leases WHERE holder = 'victim'", 1, 15000), 1);
    long long run = 0;
    char *err = NULL;
    assert_int_equal(runs_request(db, "items", NULL, "cli", NULL, "tester", &run, &err), 0);
    char *sql =
        xasprintf("SELECT count(*) FROM tds.sync_runs WHERE id = %lld AND status = 'running'"
                  " AND owner = 'victim'",
                  run);
    assert_int_equal(wait_scalar(db, sql, 1, 10000), 1);
    free(sql);
    const int n = 1500;
    enqueue_slow(10001, n);
    /* kill it in the middle of the drain, batches in hand */
    assert_true(wait_scalar(db, "SELECT (count(*) >= 200)::int FROM tds_test_applied", 1, 20000) ==
                1);
    assert_true(
        pgtest_scalar(db, "SELECT count(*) FROM tds.sync_queue WHERE status = 'processing'") > 0);
    kill(victim, SIGKILL);
    waitpid(victim, NULL, 0);
    long long t0 = time_mono_ms();
    long long applied_at_kill = pgtest_scalar(db, "SELECT count(*) FROM tds_test_applied");
    assert_true(applied_at_kill < n);
    pid_t heir = spawn("heir", "0");
    /* leadership moves within 30 s (3 s lease here) */
    assert_int_equal(
        wait_scalar(db, "SELECT count(*) FROM tds.leases WHERE holder = 'heir'", 1, 30000), 1);
    assert_true(time_mono_ms() - t0 < 30000);
    /* nothing lost, nothing applied twice */
    char *q = xasprintf("SELECT count(*) FROM tds.sync_queue WHERE status = 'completed'"
                        " AND zoho_id::bigint >= 10001");
    assert_int_equal(wait_scalar(db, q, n, 60000), n);
    free(q);
    assert_int_equal(pgtest_scalar(db, "SELECT count(*) FROM tds_test_applied"), n);
    assert_int_equal(pgtest_scalar(db, "SELECT count(DISTINCT id) FROM tds_test_applied"), n);
    assert_true(pgtest_scalar(db, "SELECT count(*) FROM tds.sync_queue WHERE error_history::text"
                                  " LIKE '%lease of victim/%expired%'") > 0);
    /* the run: interrupted, then resumed and completed by the heir */
    sql = xasprintf("SELECT count(*) FROM tds.sync_runs WHERE id = %lld AND status = 'interrupted'",
                    run);
    assert_int_equal(wait_scalar(db, sql, 1, 20000), 1);
    free(sql);
    sql = xasprintf(
        "SELECT count(*) FROM tds.sync_runs WHERE resumed_from = %lld AND status = 'completed'"
        " AND owner = 'heir'",
        run);
    assert_int_equal(wait_scalar(db, sql, 1, 20000), 1);
    free(sql);
    /* the heartbeat alert names the dead engine */
    assert_int_equal(
        wait_scalar(db,
                    "SELECT count(*) FROM tds.alerts WHERE dedup_key = 'engine_heartbeat:victim'",
                    1, 20000),
        1);
    assert_int_equal(stop(heir), 0);
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return xstrdup("");
    struct strbuf b = {0};
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        strbuf_append(&b, chunk, n);
    fclose(f);
    return strbuf_detach(&b);
}

static void test_poison_run(void **s)
{
    (void)s;
    pgtest_exec(db, "DELETE FROM tds.leases");
    char errlog[] = "/tmp/tds-poison-XXXXXX";
    int fd = mkstemp(errlog);
    assert_true(fd >= 0);
    close(fd);
    /* Two engines, each restarted when it dies, as systemd would. */
    const char *names[2] = {"poison-a", "poison-b"};
    pid_t p[2];
    for (int i = 0; i < 2; i++)
        p[i] = spawn_logged(names[i], "0", errlog);
    assert_int_equal(wait_scalar(db,
                                 "SELECT count(*) FROM tds.engines WHERE instance LIKE 'poison-%'"
                                 " AND state = 'running'",
                                 2, 15000),
                     2);
    long long run = 0;
    char *err = NULL;
    assert_int_equal(runs_request(db, "reconcile", NULL, "cli", NULL, "tester", &run, &err), 0);
    int crashes = 0, other = 0;
    long long t0 = time_mono_ms();
    const char *done = "SELECT count(*) FROM tds.sync_runs WHERE status = 'failed'"
                       " AND run_type = 'reconcile' AND error LIKE 'not resumed: crashed 4 engines%'";
    while (pgtest_scalar(db, done) == 0 && time_mono_ms() - t0 < 90000) {
        for (int i = 0; i < 2; i++) {
            int st = 0;
            if (waitpid(p[i], &st, WNOHANG) != p[i])
                continue;
            /* SIGSEGV; under AddressSanitizer its report ends the process
             * instead (an exit status, or SIGABRT with abort_on_error) */
            if (WIFSIGNALED(st) || (WIFEXITED(st) && WEXITSTATUS(st) != 0))
                crashes++;
            else
                other++;
            p[i] = spawn_logged(names[i], "0", errlog);
        }
        sleep_ms(100);
    }
    assert_int_equal(pgtest_scalar(db, done), 1);
    /* max_resumes (3) resumes after the first crash, then no more */
    sleep_ms(2000);
    for (int i = 0; i < 2; i++) {
        int st = 0;
        if (waitpid(p[i], &st, WNOHANG) == p[i])
            crashes++;
        else
            assert_int_equal(stop(p[i]), 0);
    }
    assert_int_equal(crashes, 4);
    assert_int_equal(other, 0);
    assert_int_equal(pgtest_scalar(db, "SELECT count(*) FROM tds.sync_runs"
                                       " WHERE run_type = 'reconcile'"),
                     4);
    /* the chain: each resumed run counted the crash before anyone took it */
    assert_int_equal(pgtest_scalar(db, "SELECT count(*) FROM (SELECT crashes, status, crashed,"
                                       " row_number() OVER (ORDER BY id) - 1 AS i"
                                       " FROM tds.sync_runs WHERE run_type = 'reconcile') c"
                                       " WHERE crashes = i AND crashed AND status ="
                                       " CASE WHEN i < 3 THEN 'interrupted' ELSE 'failed' END"),
                     4);
    assert_int_equal(pgtest_scalar(db, "SELECT count(*) FROM tds.sync_runs WHERE run_type ="
                                       " 'reconcile' AND status IN ('pending', 'running')"),
                     0);
    /* one critical alert names the run that is not resumed again */
    assert_int_equal(pgtest_scalar(db, "SELECT count(*) FROM tds.alerts WHERE alert_type = 'run_poison'"
                                       " AND severity = 'critical' AND resolved_at IS NULL"
                                       " AND title LIKE 'run % (reconcile) crashed 4 engines%'"
                                       " AND message LIKE '%the last crash: engine poison-%'"),
                     1);
    /* each crash left a backtrace in the engine's log */
    char *log = slurp(errlog);
#if defined(__SANITIZE_ADDRESS__)
    /* AddressSanitizer keeps SIGSEGV to itself: its report is the backtrace */
    const char *mark = "AddressSanitizer: SEGV on unknown address", *frame = "poison_run";
#else
    const char *mark = "fatal signal SIGSEGV in engine poison-", *frame = "engine_proc(";
    assert_non_null(strstr(log, "tds: end of backtrace"));
#endif
    int reports = 0;
    for (const char *q = log; (q = strstr(q, mark)) != NULL; q++)
        reports++;
    if (reports != 4)
        fail_msg("%d crash reports, want 4; the log:\n%.3000s", reports, log);
    assert_non_null(strstr(log, frame)); /* a frame of the crash */
    free(log);
    unlink(errlog);
}

int main(void)
{
    engine_test_setup("procs", &cl);
    dsn = cl.cfg.database.dsn;
    db = pgtest_connect();
    pgtest_exec(db, "CREATE TABLE tds_test_applied (id text NOT NULL)");
    pgtest_exec(db, "UPDATE tds.control SET value = 'false'");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_three_processes),
        cmocka_unit_test(test_sigkill_mid_batch),
        cmocka_unit_test(test_poison_run),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    PQfinish(db);
    config_loaded_free(&cl);
    return rc;
}
