/*
 * cli_sync.c: `tds sync` and `tds reconcile`.
 *
 *   tds sync stock [--dry-run] [--with-stock-only] [--all-items]
 *                  [--batch-size N] [--items ID,...] [--wait] [--json]
 *   tds sync ENTITY|all [--full|--incremental] [--wait] [--json]
 *   tds reconcile [ENTITY] [--wait] [--json]
 *
 * Without --wait the run is requested (tds.sync_runs, trigger "cli") for
 * the engines to pick up and its id printed.  With --wait it runs here: a
 * minimal in-process runner creates the run row already claimed by this
 * process (instance "cli-HOST-PID", so no engine takes it), keeps its
 * heartbeat and counters fresh from a progress thread (which also notices
 * `tds run cancel`), calls the same job code as the engines (sync_job_run),
 * shows progress on stderr (a bar with rate and ETA on a terminal, a plain
 * line every few seconds otherwise), prints the statistics and exits 1 if
 * the run failed.
 */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <sys/prctl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tds/budget.h"
#include "tds/cli.h"
#include "tds/db.h"
#include "tds/events.h"
#include "tds/log.h"
#include "tds/runs.h"
#include "tds/sync.h"

struct req {
    const char *run_type;
    const char *entity;     /* NULL: all */
    cJSON *config;
    bool wait, json;
    bool estimate; /* --estimate: print the cost preview only */
    const char *instance; /* --instance: the name usage and mints are recorded under */
};

/* ---- argument parsing ---- */

static int parse_items(const char *what, const char *list, cJSON *arr)
{
    char *copy = xstrdup(list), *save = NULL;
    int n = 0;
    for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        if (!str_is_digits(t)) {
            int rc = cli_usage_error("%s: --items: '%s' is not an item id (digits)", what, t);
            free(copy);
            return rc;
        }
        cJSON_AddItemToArray(arr, cJSON_CreateString(t));
        n++;
    }
    free(copy);
    if (n == 0)
        return cli_usage_error("%s: --items: no item id given", what);
    if (n > 10000)
        return cli_usage_error("%s: --items: at most 10000 ids", what);
    return 0;
}

const struct option cli_sync_options[] = {
    {"dry-run", no_argument, NULL, 'd'},
    {"with-stock-only", no_argument, NULL, 's'},
    {"all-items", no_argument, NULL, 'a'},
    {"batch-size", required_argument, NULL, 'b'},
    {"items", required_argument, NULL, 'i'},
    {"wait", no_argument, NULL, 'w'},
    {"json", no_argument, NULL, 'j'},
    {"full", no_argument, NULL, 'F'},
    {"incremental", no_argument, NULL, 'I'},
    {"estimate", no_argument, NULL, 'E'},
    {NULL, 0, NULL, 0},
};

static int parse_sync(int argc, char **argv, struct req *rq)
{
    bool dry = false, stock_only = false, all_items = false, full = false, incr = false;
    const char *items = NULL;
    long long batch = 0;
    bool batch_set = false;
    optind = 0;
    opterr = 0;
    int ch;
    while ((ch = getopt_long(argc, argv, ":", cli_sync_options, NULL)) != -1) {
        switch (ch) {
        case 'd': dry = true; break;
        case 's': stock_only = true; break;
        case 'a': all_items = true; break;
        case 'w': rq->wait = true; break;
        case 'j': rq->json = true; break;
        case 'F': full = true; break;
        case 'I': incr = true; break;
        case 'E': rq->estimate = true; break;
        case 'i': items = optarg; break;
        case 'b':
            if (cli_parse_number("sync", "--batch-size", optarg, 1, 100000, &batch) < 0)
                return TDS_EXIT_USAGE;
            batch_set = true;
            break;
        case ':':
            return cli_usage_error("sync: option '%s' needs a value", argv[optind - 1]);
        default:
            return cli_usage_error("sync: unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind >= argc)
        return cli_usage_error("sync: what to sync? stock, all, or an entity name");
    if (optind + 1 < argc)
        return cli_usage_error("sync: unexpected argument '%s'", argv[optind + 1]);
    const char *what = argv[optind];
    rq->config = cJSON_CreateObject();
    if (str_eq(what, "stock")) {
        if (full || incr)
            return cli_usage_error("sync stock: --%s applies to entity syncs, not to stock",
                                   full ? "full" : "incremental");
        if (items && all_items)
            return cli_usage_error("sync stock: --items and --all-items contradict each other");
        if (items && stock_only)
            return cli_usage_error("sync stock: --items and --with-stock-only contradict each other");
        if (stock_only && all_items)
            return cli_usage_error("sync stock: --with-stock-only and --all-items contradict each other");
        rq->run_type = "stock";
        rq->entity = "items";
        if (items) {
            cJSON *arr = cJSON_AddArrayToObject(rq->config, "items");
            int rc = parse_items("sync stock", items, arr);
            if (rc)
                return rc;
            rq->run_type = "items";
        }
        if (stock_only)
            cJSON_AddBoolToObject(rq->config, "with_stock_only", true);
        if (all_items) {
            cJSON_AddBoolToObject(rq->config, "with_stock_only", false);
            cJSON_AddBoolToObject(rq->config, "active_only", false);
        }
        if (dry)
            cJSON_AddBoolToObject(rq->config, "dry_run", true);
        if (batch_set)
            cJSON_AddNumberToObject(rq->config, "batch_size", (double)batch);
        return 0;
    }
    if (dry || stock_only || all_items || items)
        return cli_usage_error("sync %s: --%s applies to `tds sync stock` only", what,
                               dry ? "dry-run" : stock_only ? "with-stock-only"
                                                : all_items ? "all-items" : "items");
    if (full && incr)
        return cli_usage_error("sync %s: --full and --incremental contradict each other", what);
    if (!str_eq(what, "all")) {
        const struct entity_desc *d = entity_find(what);
        if (d == NULL || !str_eq(d->name, what)) {
            size_t n;
            const struct entity_desc *all = entity_all(&n);
            const char *best = NULL;
            size_t bd = 4;
            for (size_t i = 0; i < n; i++) {
                size_t dist = str_edit_distance(what, all[i].name);
                if (dist < bd) {
                    bd = dist;
                    best = all[i].name;
                }
            }
            if (best)
                return cli_usage_error("sync: unknown entity '%s' (did you mean '%s'?)", what,
                                       best);
            return cli_usage_error("sync: unknown entity '%s'", what);
        }
        rq->entity = d->name;
    }
    rq->run_type = full ? "full" : "incremental";
    if (batch_set)
        cJSON_AddNumberToObject(rq->config, "batch_size", (double)batch);
    return 0;
}

const struct option cli_reconcile_options[] = {
    {"wait", no_argument, NULL, 'w'},
    {"json", no_argument, NULL, 'j'},
    {"estimate", no_argument, NULL, 'E'},
    {NULL, 0, NULL, 0},
};

static int parse_reconcile(int argc, char **argv, struct req *rq)
{
    optind = 0;
    opterr = 0;
    int ch;
    while ((ch = getopt_long(argc, argv, ":", cli_reconcile_options, NULL)) != -1) {
        switch (ch) {
        case 'w': rq->wait = true; break;
        case 'j': rq->json = true; break;
        case 'E': rq->estimate = true; break;
        default:
            return cli_usage_error("reconcile: unknown option '%s'", argv[optind - 1]);
        }
    }
    rq->run_type = "reconcile";
    rq->config = cJSON_CreateObject();
    if (optind < argc) {
        if (optind + 1 < argc)
            return cli_usage_error("reconcile: unexpected argument '%s'", argv[optind + 1]);
        const char *what = argv[optind];
        if (!str_eq(what, "all")) {
            const struct entity_desc *d = entity_find(what);
            if (d == NULL || !str_eq(d->name, what))
                return cli_usage_error("reconcile: unknown entity '%s'", what);
            rq->entity = d->name;
        }
    }
    return 0;
}

/* ---- the in-process runner ---- */

static atomic_bool sig_stop;

static void on_signal(int sig)
{
    (void)sig;
    atomic_store(&sig_stop, true);
}

struct runner {
    const struct tds_config *cfg;
    long long run_id;
    char instance[160];
    atomic_llong total, succeeded, failed, unchanged, api;
    atomic_llong expected;
    atomic_bool stop;       /* the job's stop flag */
    atomic_bool done;
    bool tty;
    long long t0;
    const char *label;
    pthread_mutex_t mu;
    pthread_cond_t cv;
};

static void r_add(void *arg, long long total, long long succeeded, long long failed,
                  long long unchanged, long long api_calls)
{
    struct runner *r = arg;
    atomic_fetch_add(&r->total, total);
    atomic_fetch_add(&r->succeeded, succeeded);
    atomic_fetch_add(&r->failed, failed);
    atomic_fetch_add(&r->unchanged, unchanged);
    atomic_fetch_add(&r->api, api_calls);
}

static void r_expected(void *arg, long long n)
{
    struct runner *r = arg;
    atomic_store(&r->expected, n);
}

static bool r_cancelled(void *arg)
{
    struct runner *r = arg;
    if (atomic_load(&sig_stop))
        atomic_store(&r->stop, true);
    return atomic_load(&r->stop);
}

static int flush_counters(PGconn *c, struct runner *r, bool *cancel)
{
    char id[32], t[32], s[32], f[32], u[32], a[32], e[32];
    snprintf(id, sizeof id, "%lld", r->run_id);
    snprintf(t, sizeof t, "%lld", (long long)atomic_load(&r->total));
    snprintf(s, sizeof s, "%lld", (long long)atomic_load(&r->succeeded));
    snprintf(f, sizeof f, "%lld", (long long)atomic_load(&r->failed));
    snprintf(u, sizeof u, "%lld", (long long)atomic_load(&r->unchanged));
    snprintf(a, sizeof a, "%lld", (long long)atomic_load(&r->api));
    long long ex = atomic_load(&r->expected);
    snprintf(e, sizeof e, "%lld", ex);
    const char *p[7] = {id, t, s, f, u, a, ex > 0 ? e : NULL};
    char *err = NULL;
    PGresult *res = db_exec(c,
                            "UPDATE tds.sync_runs SET total = $2::bigint, succeeded = $3::bigint,"
                            " failed = $4::bigint, unchanged = $5::bigint, api_calls = $6::bigint,"
                            " expected_total = coalesce($7::bigint, expected_total),"
                            " heartbeat_at = now() WHERE id = $1::bigint RETURNING cancel_requested",
                            7, p, &err);
    if (res == NULL) {
        log_warn("run %lld: heartbeat: %s", r->run_id, err);
        free(err);
        return -1;
    }
    if (cancel && PQntuples(res) == 1 && PQgetvalue(res, 0, 0)[0] == 't')
        *cancel = true;
    PQclear(res);
    return 0;
}

static void human(long long n, char *buf, size_t size)
{
    if (n >= 10000000)
        snprintf(buf, size, "%.1fM", (double)n / 1e6);
    else if (n >= 100000)
        snprintf(buf, size, "%lldk", n / 1000);
    else
        snprintf(buf, size, "%lld", n);
}

static void show_progress(struct runner *r, bool last)
{
    long long n = atomic_load(&r->total), ex = atomic_load(&r->expected);
    double secs = (double)(time_mono_ms() - r->t0) / 1000.0;
    double rate = secs > 0 ? (double)n / secs : 0;
    char hn[32], hx[32];
    human(n, hn, sizeof hn);
    human(ex, hx, sizeof hx);
    if (!r->tty) {
        fprintf(stderr, "tds: %s: %lld records, %.0f/s, %.1f s%s\n", r->label, n, rate, secs,
                last ? " (done)" : "");
        return;
    }
    char bar[32];
    int width = 24;
    double frac = ex > 0 ? (double)n / (double)ex : 0;
    if (frac > 1)
        frac = 1;
    int fill = (int)(frac * width);
    for (int i = 0; i < width; i++)
        bar[i] = ex > 0 ? (i < fill ? '#' : '.') : (i == ((int)(secs * 4) % width) ? '#' : '.');
    bar[width] = '\0';
    char eta[32] = "";
    if (ex > n && rate > 0)
        snprintf(eta, sizeof eta, " ETA %.0fs", (double)(ex - n) / rate);
    if (ex > 0)
        fprintf(stderr, "\r\033[K%s [%s] %3.0f%% %s/%s %.0f/s%s", r->label, bar, frac * 100, hn,
                hx, rate, eta);
    else
        fprintf(stderr, "\r\033[K%s [%s] %s %.0f/s", r->label, bar, hn, rate);
    if (last)
        fputc('\n', stderr);
    fflush(stderr);
}

static void *progress_main(void *arg)
{
    struct runner *r = arg;
    char *err = NULL;
    PGconn *c = db_connect(r->cfg, &err);
    if (c == NULL) {
        log_warn("run %lld: progress connection: %s", r->run_id, err);
        free(err);
    }
    long long last_plain = time_mono_ms();
    int tick = 0;
    pthread_mutex_lock(&r->mu);
    while (!atomic_load(&r->done)) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 250 * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&r->cv, &r->mu, &ts);
        if (atomic_load(&r->done))
            break;
        pthread_mutex_unlock(&r->mu);
        if (atomic_load(&sig_stop))
            atomic_store(&r->stop, true);
        if (++tick % 4 == 0 && c != NULL) {
            bool cancel = false;
            if (flush_counters(c, r, &cancel) == 0 && cancel)
                atomic_store(&r->stop, true);
        }
        if (r->tty)
            show_progress(r, false);
        else if (time_mono_ms() - last_plain >= 5000) {
            show_progress(r, false);
            last_plain = time_mono_ms();
        }
        pthread_mutex_lock(&r->mu);
    }
    pthread_mutex_unlock(&r->mu);
    if (c)
        PQfinish(c);
    return NULL;
}

static void print_stats(const struct req *rq, long long run_id, const char *status,
                        const char *error, const struct sync_stats *st)
{
    if (rq->json) {
        char *js = sync_stats_json(st);
        cJSON *o = cJSON_Parse(js);
        free(js);
        cJSON_AddNumberToObject(o, "run_id", (double)run_id);
        cJSON_AddStringToObject(o, "run_type", rq->run_type);
        if (rq->entity)
            cJSON_AddStringToObject(o, "entity", rq->entity);
        else
            cJSON_AddNullToObject(o, "entity");
        cJSON_AddStringToObject(o, "status", status);
        if (error)
            cJSON_AddStringToObject(o, "error", error);
        cli_print_json(o);
        cJSON_Delete(o);
        return;
    }
    double secs = (double)st->duration_ms / 1000.0;
    printf("run %lld %s: %s%s%s\n", run_id, status, rq->run_type, rq->entity ? " " : "",
           rq->entity ? rq->entity : "");
    printf("  total %lld  changed %lld (new %lld)  unchanged %lld  failed %lld\n", st->total,
           st->succeeded, st->created, st->unchanged, st->failed);
    if (st->skipped)
        printf("  skipped by filters %lld\n", st->skipped);
    if (str_eq(rq->run_type, "reconcile"))
        printf("  missing %lld  extra %lld  stale %lld  queued %lld\n", st->missing, st->extra,
               st->stale, st->enqueued);
    printf("  api calls %lld (pages %lld, itemdetails %lld)  locations written %lld  events %lld\n",
           st->api_calls, st->pages, st->detail_calls, st->locations, st->events);
    if (st->images || st->image_failed)
        printf("  images stored %lld, failed %lld\n", st->images, st->image_failed);
    printf("  duration %.2f s  %.0f records/s\n", secs,
           secs > 0 ? (double)st->total / secs : 0.0);
    if (error)
        printf("  error: %s\n", cli_text(error));
}

/*
 * The run in the way belongs to a `tds sync --wait` of this host whose
 * process is gone (killed): it is interrupted now rather than when its
 * heartbeat is old enough for the janitor.  True when it was.
 */
static bool interrupt_if_local_dead(PGconn *conn, long long run, const char *host)
{
    char ids[24];
    snprintf(ids, sizeof ids, "%lld", run);
    const char *p[] = {ids};
    char *err = NULL;
    PGresult *r = db_exec(conn, "SELECT coalesce(owner, '') FROM tds.sync_runs WHERE id = $1::bigint",
                          1, p, &err);
    if (r == NULL) {
        free(err);
        return false;
    }
    char *owner = PQntuples(r) ? xstrdup(PQgetvalue(r, 0, 0)) : xstrdup("");
    PQclear(r);
    char *prefix = xasprintf("cli-%s-", host);
    bool dead = false;
    if (str_starts_with(owner, prefix) && str_is_digits(owner + strlen(prefix))) {
        long pid = strtol(owner + strlen(prefix), NULL, 10);
        dead = pid > 0 && kill((pid_t)pid, 0) != 0 && errno == ESRCH;
    }
    if (dead) {
        const char *p2[] = {ids, owner};
        dead = db_cmd(conn,
                      "UPDATE tds.sync_runs SET status = 'interrupted', finished_at = now(),"
                      " error = 'process ' || $2 || ' is gone' WHERE id = $1::bigint"
                      " AND status = 'running' AND owner = $2",
                      2, p2, &err) == 0;
        if (!dead)
            free(err);
        else
            log_info("run %lld: its process (%s) is gone: interrupted", run, owner);
    }
    free(prefix);
    free(owner);
    return dead;
}

static int run_here(const struct tds_config *cfg, PGconn *conn, struct req *rq,
                    const char *config_json)
{
    prctl(PR_SET_DUMPABLE, 0, 0, 0, 0); /* holds secrets: no core file, no same-user ptrace */
    struct runner r;
    memset(&r, 0, sizeof r);
    r.cfg = cfg;
    char host[64] = "host";
    gethostname(host, sizeof host - 1);
    /* Named as --instance names it; else this process, cli-HOST-PID. */
    if (!str_empty(rq->instance))
        snprintf(r.instance, sizeof r.instance, "%s", rq->instance);
    else
        snprintf(r.instance, sizeof r.instance, "cli-%s-%ld", host, (long)getpid());
    r.tty = isatty(2);
    r.label = rq->run_type;
    pthread_mutex_init(&r.mu, NULL);
    pthread_cond_init(&r.cv, NULL);

    char *err = NULL;
    /* TDS_SYNC_UNLIMITED=1: no client-side pacing, for benchmarks against a
     * simulator with its limits off (never against Zoho). */
    struct zoho_client_opts zo = {.instance = r.instance,
                                  .unlimited = str_eq(getenv("TDS_SYNC_UNLIMITED"), "1")};
    struct zoho_client *zc = zoho_client_new(cfg, &zo, &err);
    if (zc == NULL) {
        cli_err("%s: %s", rq->run_type, err);
        free(err);
        return TDS_EXIT_FAIL;
    }
    long long in_the_way = 0;
    int src = runs_start_here(conn, rq->run_type, rq->entity, config_json, r.instance,
                              getenv("USER"), cfg->engine.dead_after_seconds, &r.run_id,
                              &in_the_way, &err);
    if (src > 0 && interrupt_if_local_dead(conn, in_the_way, host))
        src = runs_start_here(conn, rq->run_type, rq->entity, config_json, r.instance,
                              getenv("USER"), cfg->engine.dead_after_seconds, &r.run_id,
                              &in_the_way, &err);
    if (src != 0) {
        if (src > 0)
            cli_err("%s: run %lld (%s%s%s) is running and overlaps this one: wait for it "
                    "(tds run %lld) or cancel it (console, Runs pane)",
                    rq->run_type, in_the_way, rq->run_type, rq->entity ? " " : "",
                    rq->entity ? rq->entity : "", in_the_way);
        else
            cli_err("%s: %s", rq->run_type, err);
        free(err);
        zoho_client_free(zc);
        return TDS_EXIT_FAIL;
    }
    log_set_context("run %lld", r.run_id);
    cJSON *started = cJSON_CreateObject();
    cJSON_AddStringToObject(started, "run_type", rq->run_type);
    cJSON_AddStringToObject(started, "owner", r.instance);
    char *data = cJSON_PrintUnformatted(started);
    cJSON_Delete(started);
    if (events_emit(conn, EV_SYNC_STARTED, r.run_id, rq->entity, NULL, data, &err) != 0) {
        log_warn("run %lld: %s", r.run_id, err);
        free(err);
        err = NULL;
    }
    cJSON_free(data);
    if (!rq->json || r.tty)
        fprintf(stderr, "tds: run %lld: %s%s%s started\n", r.run_id, rq->run_type,
                rq->entity ? " " : "", rq->entity ? rq->entity : "");

    struct sigaction sa, old_int, old_term;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);

    r.t0 = time_mono_ms();
    pthread_t th;
    bool have_th = pthread_create(&th, NULL, progress_main, &r) == 0;
    struct sync_job j = {
        .run_id = r.run_id,
        .run_type = rq->run_type,
        .entity = rq->entity,
        .config_json = config_json,
        .cfg = cfg,
        .conn = conn,
        .zc = zc,
        .stop = &r.stop,
        .images_inline = true, /* the caller waits for everything */
        .instance = r.instance,
        .add = r_add,
        .set_expected = r_expected,
        .cancelled = r_cancelled,
        .arg = &r,
    };
    int rc = sync_job_run(&j, &err);
    pthread_mutex_lock(&r.mu);
    atomic_store(&r.done, true);
    pthread_cond_broadcast(&r.cv);
    pthread_mutex_unlock(&r.mu);
    if (have_th)
        pthread_join(th, NULL);
    show_progress(&r, true);

    bool cancelled = rc != 0 && atomic_load(&r.stop) && !j.cap_reached;
    /* Records dead-lettered: the run did its work, but not all of it (issue
     * 17 point 4): completed_with_errors, the count in error, exit 1. */
    bool dead = rc == 0 && j.stats.failed > 0;
    if (dead) {
        free(err);
        err = xasprintf("%lld record%s dead-lettered (tds dlq list)", j.stats.failed,
                        j.stats.failed == 1 ? "" : "s");
    }
    const char *status = dead     ? "completed_with_errors"
                         : rc == 0 ? "completed"
                         : cancelled ? "cancelled"
                                     : "failed";
    const char *db_status = status;
    char *e2 = NULL;
    (void)flush_counters(conn, &r, NULL);
    char id[32];
    snprintf(id, sizeof id, "%lld", r.run_id);
    const char *fp[3] = {id, db_status, rc == 0 && !dead ? NULL : err};
    if (db_cmd(conn,
               "UPDATE tds.sync_runs SET status = $2, finished_at = now(), error = $3,"
               " heartbeat_at = now() WHERE id = $1::bigint",
               3, fp, &e2) != 0) {
        cli_err("run %lld: cannot record the end of the run: %s", r.run_id, e2);
        free(e2);
        e2 = NULL;
    }
    char *js = sync_stats_json(&j.stats);
    cJSON *ev = cJSON_Parse(js);
    free(js);
    cJSON_AddStringToObject(ev, "run_type", rq->run_type);
    cJSON_AddStringToObject(ev, "status", status);
    if ((rc != 0 || dead) && err)
        cJSON_AddStringToObject(ev, "error", err);
    char *evs = cJSON_PrintUnformatted(ev);
    cJSON_Delete(ev);
    if (events_emit(conn, rc == 0 ? EV_SYNC_COMPLETED : EV_SYNC_FAILED, r.run_id, rq->entity,
                    NULL, evs, &e2) != 0) {
        log_warn("run %lld: %s", r.run_id, e2);
        free(e2);
    }
    cJSON_free(evs);
    print_stats(rq, r.run_id, status, rc == 0 && !dead ? NULL : err, &j.stats);
    if ((rc != 0 || dead) && !rq->json)
        cli_err("run %lld %s: %s", r.run_id, status, err ? err : "?");
    free(err);
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    zoho_client_free(zc);
    pthread_mutex_destroy(&r.mu);
    pthread_cond_destroy(&r.cv);
    return rc == 0 && !dead ? TDS_EXIT_OK : TDS_EXIT_FAIL;
}

/* The calls the request is expected to cost (budget.h); -1 unknown. */
static long long estimate_calls(PGconn *conn, const struct req *rq)
{
    const cJSON *items = cJSON_GetObjectItemCaseSensitive(rq->config, "items");
    if (cJSON_IsArray(items)) /* specific items: /itemdetails, 100 ids a call */
        return (cJSON_GetArraySize(items) + 99) / 100;
    char *err = NULL;
    long long n = budget_estimate(conn, rq->run_type, rq->entity, NULL, 0, &err);
    free(err);
    return n;
}

static int dispatch(const struct cli_globals *g, struct req *rq)
{
    struct config_loaded cl;
    int rc = cli_load_config(g, &cl);
    if (rc != 0) {
        cJSON_Delete(rq->config);
        return rc;
    }
    PGconn *conn = cli_connect(&cl.cfg, true);
    if (conn == NULL) {
        cJSON_Delete(rq->config);
        config_loaded_free(&cl);
        return TDS_EXIT_USAGE;
    }
    char *cj = cJSON_PrintUnformatted(rq->config);
    /* The cost preview, before anything is asked of Zoho (issue 19). */
    long long calls = estimate_calls(conn, rq);
    char preview[160];
    budget_preview(conn, &cl.cfg, calls, preview, sizeof preview);
    if (rq->estimate) {
        if (rq->json) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddNumberToObject(o, "estimated_calls", (double)calls);
            cJSON_AddStringToObject(o, "preview", preview);
            cli_print_json(o);
            cJSON_Delete(o);
        } else {
            printf("%s\n", preview);
        }
        cJSON_free(cj);
        cJSON_Delete(rq->config);
        PQfinish(conn);
        config_loaded_free(&cl);
        return TDS_EXIT_OK;
    }
    if (!rq->json || isatty(2))
        fprintf(stderr, "tds: %s%s%s: %s\n", rq->run_type, rq->entity ? " " : "",
                rq->entity ? rq->entity : "", preview);
    if (rq->wait) {
        rq->instance = g->instance;
        rc = run_here(&cl.cfg, conn, rq, cj);
    } else {
        struct run_request_info info;
        char *err = NULL;
        if (runs_request_info(conn, rq->run_type, rq->entity, "cli", cj, getenv("USER"), &info,
                              &err) != 0) {
            cli_err("sync: %s", err);
            free(err);
            rc = TDS_EXIT_FAIL;
        } else if (rq->json) {
            printf("{\"run_id\": %lld, \"status\": \"%s\", \"joined\": %s, \"waits_for\": %lld}\n",
                   info.id, info.joined ? "active" : "pending", info.joined ? "true" : "false",
                   info.waits_for);
        } else {
            printf("%lld\n", info.id);
            if (info.joined)
                fprintf(stderr, "tds: an equal run is active: joined run %lld\n", info.id);
            else if (info.waits_for != 0)
                fprintf(stderr, "tds: run %lld waits for run %lld, which overlaps it\n", info.id,
                        info.waits_for);
        }
    }
    cJSON_free(cj);
    cJSON_Delete(rq->config);
    PQfinish(conn);
    config_loaded_free(&cl);
    return rc;
}

int cli_sync(const struct cli_globals *g, int argc, char **argv)
{
    struct req rq = {0};
    int rc = parse_sync(argc, argv, &rq);
    if (rc != 0) {
        cJSON_Delete(rq.config);
        return rc;
    }
    return dispatch(g, &rq);
}

int cli_reconcile(const struct cli_globals *g, int argc, char **argv)
{
    struct req rq = {0};
    int rc = parse_reconcile(argc, argv, &rq);
    if (rc != 0) {
        cJSON_Delete(rq.config);
        return rc;
    }
    return dispatch(g, &rq);
}
