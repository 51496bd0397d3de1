/*
 * engine_proc.c: runs one engine process until SIGTERM (graceful stop) or
 * SIGKILL, for the multi-process tests and the benchmark.
 *
 *   engine_proc DSN INSTANCE [WORKERS]
 *
 * Environment: ENGINE_PROC_BATCH (batch size), ENGINE_PROC_FAST=1 (short
 * leases, heartbeats and leader timings for tests), ENGINE_PROC_SLOW_MS
 * (the "slow" entity's handler sleeps this long per item).  Registers item
 * handlers "noop" (does nothing) and "slow" (records the item in
 * tds_test_applied, then sleeps), and a run handler for "items" that works
 * until it is cancelled, or completes at once when it is a resumed run, and
 * one for "reconcile" that is poison: it crashes the process (a real
 * SIGSEGV, a write through a null pointer), resumed or not.
 * Prints "ready" on stdout once started.
 */
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tds/config.h"
#include "tds/engine.h"
#include "tds/log.h"

static volatile sig_atomic_t got_term;

static void on_term(int sig)
{
    (void)sig;
    got_term = 1;
}

static enum item_result noop_item(PGconn *c, const struct queue_item *it, void *arg, char **err)
{
    (void)c;
    (void)it;
    (void)arg;
    (void)err;
    return ITEM_OK;
}

static int slow_ms;

static enum item_result slow_item(PGconn *c, const struct queue_item *it, void *arg, char **err)
{
    (void)arg;
    const char *p[] = {it->zoho_id};
    PGresult *r =
        PQexecParams(c, "INSERT INTO tds_test_applied (id) VALUES ($1)", 1, NULL, p, NULL, NULL, 0);
    int ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    if (!ok)
        *err = xstrdup(PQresultErrorMessage(r));
    PQclear(r);
    if (slow_ms > 0) {
        struct timespec ts = {slow_ms / 1000, (long)(slow_ms % 1000) * 1000000L};
        nanosleep(&ts, NULL);
    }
    return ok ? ITEM_OK : ITEM_RETRY;
}

static int long_run(struct run_ctx *ctx, void *arg, char **err)
{
    (void)arg;
    if (run_ctx_resumed_from(ctx) != 0) {
        run_ctx_add(ctx, 1, 1, 0, 0, 0);
        return 0;
    }
    while (!run_ctx_cancelled(ctx)) {
        run_ctx_add(ctx, 1, 1, 0, 0, 1);
        struct timespec ts = {0, 50 * 1000000L};
        nanosleep(&ts, NULL);
    }
    *err = xstrdup("stopped before the end");
    return -1;
}

static int poison_run(struct run_ctx *ctx, void *arg, char **err)
{
    (void)ctx;
    (void)err;
    /* An address no mapping holds (not NULL: UBSan would stop it first). */
    volatile int *volatile nowhere = (volatile int *)((uintptr_t)arg + 16);
    *nowhere = 1;
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: engine_proc DSN INSTANCE [WORKERS]\n");
        return 2;
    }
    struct config_loaded cl;
    struct config_errors errs = {0};
    memset(&cl, 0, sizeof cl);
    if (config_load(NULL, &cl, &errs) != 0) {
        for (size_t i = 0; i < errs.n; i++)
            fprintf(stderr, "config: %s\n", errs.msg[i]);
        return 1;
    }
    free(cl.cfg.database.dsn);
    cl.cfg.database.dsn = xstrdup(argv[1]);
    cl.cfg.engine.workers = argc > 3 ? atoi(argv[3]) : 4;
    cl.cfg.schedule.enabled = false;
    if (getenv("ENGINE_PROC_BATCH"))
        cl.cfg.engine.batch_size = atoi(getenv("ENGINE_PROC_BATCH"));
    if (getenv("ENGINE_PROC_SLOW_MS"))
        slow_ms = atoi(getenv("ENGINE_PROC_SLOW_MS"));
    bool fast = getenv("ENGINE_PROC_FAST") != NULL;
    if (fast) {
        cl.cfg.engine.lease_seconds = 3;
        cl.cfg.engine.heartbeat_seconds = 1;
        cl.cfg.engine.dead_after_seconds = 3;
        cl.cfg.engine.poll_interval_ms = 100;
        cl.cfg.engine.retry.backoff_seconds = 1;
        cl.cfg.engine.retry.backoff_max_seconds = 1;
        cl.cfg.alerts.heartbeat_missing_seconds = 5;
    }
    if (getenv("ENGINE_PROC_LOGLEVEL")) {
        enum log_level lv;
        if (log_level_parse(getenv("ENGINE_PROC_LOGLEVEL"), &lv))
            log_set_level(lv);
    }
    engine_register_item_handler("noop", NULL, noop_item, NULL);
    engine_register_item_handler("slow", NULL, slow_item, NULL);
    engine_register_run_handler("items", long_run, NULL);
    engine_register_run_handler("reconcile", poison_run, NULL);
    char *err = NULL;
    struct engine *e = engine_new(&cl.cfg, argv[2], "daemon", &err);
    if (e == NULL) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    if (fast) {
        struct engine_timing t = {3000, 500, 300, 500, 500};
        engine_set_timing(e, &t);
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_term;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    if (engine_start(e, &err) != 0) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    printf("ready\n");
    fflush(stdout);
    while (!got_term) {
        struct timespec ts = {0, 50 * 1000000L};
        nanosleep(&ts, NULL);
    }
    engine_request_stop(e);
    int rc = engine_join(e, 30000);
    struct engine_status st;
    engine_status(e, &st);
    printf("stopped ok=%lld failed=%lld\n", st.items_ok, st.items_failed);
    fflush(stdout);
    if (rc == 0)
        engine_free(e);
    config_loaded_free(&cl);
    return rc == 0 ? 0 : 1;
}
