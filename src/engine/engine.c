/*
 * engine.c: the engine object and its lifecycle (new, start, stop, join),
 * the process-wide handler registry, and two of its threads: the control
 * thread (LISTEN tds_queue/tds_runs/tds_control, heartbeat, pause, claiming
 * runs for job threads) and the leader thread (a lease row in tds.leases;
 * the holder runs the scheduler, the janitor and the notifier's sends).
 */
#include "tds/engine.h"

#include <curl/curl.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "engine_internal.h"
#include "tds/alerts.h"
#include "tds/crash.h"
#include "tds/db.h"
#include "tds/log.h"

static const char *const state_names[ENGINE__COUNT] = {
    [ENGINE_STARTING] = "starting", [ENGINE_RUNNING] = "running", [ENGINE_PAUSED] = "paused",
    [ENGINE_DRAINING] = "draining", [ENGINE_STOPPED] = "stopped",
};

const char *engine_state_name(enum engine_state s)
{
    if ((int)s < 0 || s >= ENGINE__COUNT)
        return NULL;
    return state_names[s];
}

/* --- handler registry --- */

struct run_reg {
    char *type;
    run_handler_fn fn;
    void *arg;
};
struct item_reg {
    char *entity, *op; /* NULL: any */
    item_handler_fn fn;
    void *arg;
};

static pthread_mutex_t reg_mu = PTHREAD_MUTEX_INITIALIZER;
static struct run_reg run_regs[32];
static int n_run_regs;
static struct item_reg item_regs[64];
static int n_item_regs;
static item_handler_fn refetch_fn;
static void *refetch_arg;

void engine_register_run_handler(const char *run_type, run_handler_fn fn, void *arg)
{
    pthread_mutex_lock(&reg_mu);
    int i;
    for (i = 0; i < n_run_regs; i++)
        if (str_eq(run_regs[i].type, run_type))
            break;
    if (i == n_run_regs) {
        if (n_run_regs == (int)TDS_ARRAY_LEN(run_regs)) {
            pthread_mutex_unlock(&reg_mu);
            log_error("engine: too many run handlers; %s ignored", run_type);
            return;
        }
        run_regs[n_run_regs++].type = xstrdup(run_type);
    }
    run_regs[i].fn = fn;
    run_regs[i].arg = arg;
    pthread_mutex_unlock(&reg_mu);
}

void engine_register_item_handler(const char *entity, const char *op, item_handler_fn fn, void *arg)
{
    pthread_mutex_lock(&reg_mu);
    int i;
    for (i = 0; i < n_item_regs; i++)
        if (str_eq(item_regs[i].entity, entity) && str_eq(item_regs[i].op, op))
            break;
    if (i == n_item_regs) {
        if (n_item_regs == (int)TDS_ARRAY_LEN(item_regs)) {
            pthread_mutex_unlock(&reg_mu);
            log_error("engine: too many item handlers; %s ignored", entity ? entity : "*");
            return;
        }
        item_regs[i].entity = entity ? xstrdup(entity) : NULL;
        item_regs[i].op = op ? xstrdup(op) : NULL;
        n_item_regs++;
    }
    item_regs[i].fn = fn;
    item_regs[i].arg = arg;
    pthread_mutex_unlock(&reg_mu);
}

void engine_register_refetch_handler(item_handler_fn fn, void *arg)
{
    pthread_mutex_lock(&reg_mu);
    refetch_fn = fn;
    refetch_arg = arg;
    pthread_mutex_unlock(&reg_mu);
}

static refetch_fetch_fn fetch_fn;
static void *fetch_arg;

void engine_register_refetch_fetcher(refetch_fetch_fn fn, void *arg)
{
    pthread_mutex_lock(&reg_mu);
    fetch_fn = fn;
    fetch_arg = arg;
    pthread_mutex_unlock(&reg_mu);
}

refetch_fetch_fn engine_find_refetch_fetcher(void **arg)
{
    pthread_mutex_lock(&reg_mu);
    refetch_fetch_fn fn = fetch_fn;
    *arg = fetch_arg;
    pthread_mutex_unlock(&reg_mu);
    return fn;
}

item_handler_fn engine_find_refetch_handler(void **arg)
{
    pthread_mutex_lock(&reg_mu);
    item_handler_fn fn = refetch_fn;
    *arg = refetch_arg;
    pthread_mutex_unlock(&reg_mu);
    return fn;
}

void engine_clear_handlers(void)
{
    pthread_mutex_lock(&reg_mu);
    refetch_fn = NULL;
    refetch_arg = NULL;
    fetch_fn = NULL;
    fetch_arg = NULL;
    for (int i = 0; i < n_run_regs; i++)
        free(run_regs[i].type);
    for (int i = 0; i < n_item_regs; i++) {
        free(item_regs[i].entity);
        free(item_regs[i].op);
    }
    n_run_regs = n_item_regs = 0;
    pthread_mutex_unlock(&reg_mu);
}

run_handler_fn engine_find_run_handler(const char *run_type, void **arg)
{
    run_handler_fn fn = NULL;
    pthread_mutex_lock(&reg_mu);
    for (int i = 0; i < n_run_regs; i++)
        if (str_eq(run_regs[i].type, run_type)) {
            fn = run_regs[i].fn;
            *arg = run_regs[i].arg;
        }
    pthread_mutex_unlock(&reg_mu);
    return fn;
}

bool engine_has_run_handlers(void)
{
    pthread_mutex_lock(&reg_mu);
    bool any = n_run_regs > 0;
    pthread_mutex_unlock(&reg_mu);
    return any;
}

char *engine_run_types_literal(void)
{
    struct strbuf sb = {0};
    strbuf_putc(&sb, '{');
    pthread_mutex_lock(&reg_mu);
    for (int i = 0; i < n_run_regs; i++) {
        if (i)
            strbuf_putc(&sb, ',');
        strbuf_printf(&sb, "\"%s\"", run_regs[i].type);
    }
    pthread_mutex_unlock(&reg_mu);
    strbuf_putc(&sb, '}');
    return strbuf_detach(&sb);
}

item_handler_fn engine_find_item_handler(const char *entity, const char *op, void **arg)
{
    item_handler_fn fn = NULL;
    int best = -1;
    pthread_mutex_lock(&reg_mu);
    for (int i = 0; i < n_item_regs; i++) {
        const struct item_reg *r = &item_regs[i];
        if ((r->entity && !str_eq(r->entity, entity)) || (r->op && !str_eq(r->op, op)))
            continue;
        int score = (r->entity ? 2 : 0) + (r->op ? 1 : 0);
        if (score > best) {
            best = score;
            fn = r->fn;
            *arg = r->arg;
        }
    }
    pthread_mutex_unlock(&reg_mu);
    return fn;
}

/* --- settings --- */

void engine_settings_copy(struct tds_config *dst, const struct tds_config *src)
{
    memset(dst, 0, sizeof *dst);
    dst->engine = src->engine;
    dst->engine.instance = NULL;
    dst->alerts = src->alerts;
    dst->alerts.notify_url = xstrdup(src->alerts.notify_url ? src->alerts.notify_url : "");
    dst->schedule = src->schedule;
    dst->schedule.full_sync = xstrdup(src->schedule.full_sync ? src->schedule.full_sync : "");
    dst->schedule.incremental_sync =
        xstrdup(src->schedule.incremental_sync ? src->schedule.incremental_sync : "");
    dst->schedule.stock_sync = xstrdup(src->schedule.stock_sync ? src->schedule.stock_sync : "");
    dst->schedule.auto_heal = xstrdup(src->schedule.auto_heal ? src->schedule.auto_heal : "");
    dst->schedule.reconcile = xstrdup(src->schedule.reconcile ? src->schedule.reconcile : "");
    dst->zoho.rate_limit = src->zoho.rate_limit;
    dst->zoho.budget_reserve_percent = src->zoho.budget_reserve_percent;
    dst->zoho.timeout_seconds = src->zoho.timeout_seconds;
    dst->zoho.plan = xstrdup(src->zoho.plan ? src->zoho.plan : "");
    dst->stock = src->stock;
    dst->images.enabled = src->images.enabled;
    dst->reconcile = src->reconcile;
}

char *engine_instance_name(const struct tds_config *cfg, const char *instance)
{
    if (!str_empty(instance))
        return xstrdup(instance);
    if (!str_empty(cfg->engine.instance))
        return xstrdup(cfg->engine.instance);
    char host[256] = "localhost";
    gethostname(host, sizeof host - 1);
    host[sizeof host - 1] = '\0';
    return xasprintf("%s-%ld", host, (long)getpid());
}

void engine_settings_apply(struct tds_config *dst, const struct tds_config *set)
{
    char *instance = dst->engine.instance, *notify_url = dst->alerts.notify_url;
    dst->engine = set->engine;
    dst->engine.instance = instance;
    dst->alerts = set->alerts;
    dst->alerts.notify_url = notify_url; /* (set's strings go with a reload) */
    dst->zoho.rate_limit = set->zoho.rate_limit;
    dst->zoho.budget_reserve_percent = set->zoho.budget_reserve_percent;
    dst->zoho.timeout_seconds = set->zoho.timeout_seconds;
    dst->stock = set->stock;
    dst->images.enabled = set->images.enabled;
    dst->reconcile = set->reconcile;
}

void engine_settings_free(struct tds_config *s)
{
    free(s->alerts.notify_url);
    free(s->schedule.full_sync);
    free(s->schedule.incremental_sync);
    free(s->schedule.stock_sync);
    free(s->schedule.auto_heal);
    free(s->schedule.reconcile);
    free(s->zoho.plan);
    memset(s, 0, sizeof *s);
}

/* --- lifecycle --- */

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static void curl_init_once(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

struct engine *engine_new(const struct tds_config *cfg, const char *instance, const char *mode,
                          char **err)
{
    if (!str_eq(mode, "embedded") && !str_eq(mode, "daemon") && !str_eq(mode, "cli")) {
        *err = xasprintf("engine: unknown mode \"%s\" (embedded, daemon, cli)", mode ? mode : "");
        return NULL;
    }
    char host[256] = "localhost";
    gethostname(host, sizeof host - 1);
    host[sizeof host - 1] = '\0';
    char *inst = engine_instance_name(cfg, instance);
    if (strlen(inst) > 100 || strchr(inst, '/') != NULL) {
        *err = xasprintf("engine: instance name \"%.40s\" must be at most 100 bytes without '/'",
                         inst);
        free(inst);
        return NULL;
    }
    pthread_once(&curl_once, curl_init_once);
    struct engine *e = xcalloc(1, sizeof *e);
    e->cfg = cfg;
    e->dbcfg.database.dsn = xstrdup(cfg->database.dsn ? cfg->database.dsn : "");
    e->dbcfg.database.connect_timeout = cfg->database.connect_timeout;
    e->dbcfg.database.application_name = xasprintf(
        "%s %s", str_empty(cfg->database.application_name) ? "tds" : cfg->database.application_name,
        inst);
    pthread_rwlock_init(&e->cfg_lock, NULL);
    engine_settings_copy(&e->set, cfg);
    e->instance = inst;
    e->mode = xstrdup(mode);
    e->host = xstrdup(host);
    int ttl = cfg->engine.leader_lease_seconds > 0 ? cfg->engine.leader_lease_seconds * 1000
                                                   : 10000;
    e->timing = (struct engine_timing){ttl, ttl / 4, 5000, 15000, 5000};
    pthread_mutex_init(&e->mu, NULL);
    pthread_cond_init(&e->work_cv, NULL);
    pthread_cond_init(&e->leader_cv, NULL);
    pthread_cond_init(&e->lease_cv, NULL);
    pthread_cond_init(&e->done_cv, NULL);
    atomic_init(&e->state, ENGINE_STARTING);
    return e;
}

void engine_set_clock(struct engine *e, double (*now)(void *arg), void *arg)
{
    e->clock = now;
    e->clock_arg = arg;
}

void engine_set_timing(struct engine *e, const struct engine_timing *t)
{
    if (t->leader_ttl_ms > 0)
        e->timing.leader_ttl_ms = t->leader_ttl_ms;
    if (t->leader_renew_ms > 0)
        e->timing.leader_renew_ms = t->leader_renew_ms;
    if (t->sched_tick_ms > 0)
        e->timing.sched_tick_ms = t->sched_tick_ms;
    if (t->janitor_interval_ms > 0)
        e->timing.janitor_interval_ms = t->janitor_interval_ms;
    if (t->notify_poll_ms > 0)
        e->timing.notify_poll_ms = t->notify_poll_ms;
}

void engine_wake_workers(struct engine *e)
{
    pthread_mutex_lock(&e->mu);
    e->work_seq++;
    pthread_cond_broadcast(&e->work_cv);
    pthread_mutex_unlock(&e->mu);
}

void engine_wake_leader(struct engine *e)
{
    pthread_mutex_lock(&e->mu);
    e->leader_seq++;
    pthread_cond_broadcast(&e->leader_cv);
    pthread_mutex_unlock(&e->mu);
}

void engine_kick(struct engine *e)
{
    engine_wake_workers(e);
    engine_wake_leader(e);
    pthread_mutex_lock(&e->mu);
    pthread_cond_broadcast(&e->lease_cv);
    pthread_mutex_unlock(&e->mu);
}

void engine_wait(struct engine *e, pthread_cond_t *cv, unsigned long *seq, int timeout_ms)
{
    unsigned long never = *seq; /* other conditions: only stop or the timeout end the wait */
    unsigned long *cur = cv == &e->leader_cv ? &e->leader_seq
                         : cv == &e->work_cv ? &e->work_seq
                                             : &never;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += timeout_ms / 1000;
    ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&e->mu);
    while (*cur == *seq && !atomic_load(&e->stop))
        if (pthread_cond_timedwait(cv, &e->mu, &ts) == ETIMEDOUT)
            break;
    *seq = *cur;
    pthread_mutex_unlock(&e->mu);
}

PGconn *engine_connect(struct engine *e)
{
    char *err = NULL;
    PGconn *c = db_connect(&e->dbcfg, &err);
    if (c != NULL)
        return c;
    free(err);
    atomic_store(&e->db_down_since_ms, time_wall_ms());
    c = db_connect_retry(&e->dbcfg, &e->stop_sig);
    return engine_db_recover(e, c);
}

PGconn *engine_db_recover(struct engine *e, PGconn *c)
{
    if (c != NULL && PQstatus(c) == CONNECTION_OK) {
        long long since = atomic_exchange(&e->db_down_since_ms, 0);
        if (since != 0) {
            atomic_store(&e->db_reported_ms, time_wall_ms());
            long long secs = (time_wall_ms() - since) / 1000;
            char *title =
                xasprintf("Database was unreachable for %lld s (engine %s)", secs, e->instance);
            /* Written once the database is back: the outage is over, so the
             * alert is recorded (and notified) already resolved. */
            char *key = xasprintf("db_unreachable:%s", e->instance);
            struct alert_spec a = {"db_unreachable",
                                   ALERT_ERROR,
                                   title,
                                   "batches in flight were rolled back; their leases were "
                                   "released or expired and nothing was lost",
                                   NULL,
                                   0,
                                   key};
            char *err = NULL;
            if (alerts_raise(c, &a, NULL, NULL, &err) != 0 ||
                alerts_resolve(c, key, NULL, &err) != 0) {
                log_warn("cannot record the db_unreachable alert: %s", err);
                free(err);
            }
            free(key);
            free(title);
        }
        return c;
    }
    /* One outage, one report: a thread that finds its connection dead just
     * after another reported the outage over is in the same outage. */
    long long zero = 0;
    if (time_wall_ms() - atomic_load(&e->db_reported_ms) > 5000)
        atomic_compare_exchange_strong(&e->db_down_since_ms, &zero, time_wall_ms());
    log_warn("database connection lost; reconnecting");
    if (c != NULL)
        PQfinish(c);
    c = db_connect_retry(&e->dbcfg, &e->stop_sig);
    if (c == NULL)
        return NULL;
    return engine_db_recover(e, c);
}

/* True when pid is not a live process on this host. */
static bool pid_dead(long pid)
{
    return pid > 0 && kill((pid_t)pid, 0) != 0 && errno == ESRCH;
}

static int register_engine(struct engine *e, PGconn *c, char **err)
{
    if (db_begin(c, err) != 0)
        return -1;
    const char *p1[] = {e->instance};
    PGresult *r =
        db_exec(c,
                "SELECT host, pid, state, extract(epoch FROM now() - heartbeat_at)::bigint"
                " FROM tds.engines WHERE instance = $1 FOR UPDATE",
                1, p1, err);
    if (r == NULL)
        goto fail;
    if (PQntuples(r) == 1) {
        const char *host = PQgetvalue(r, 0, 0);
        long pid = atol(PQgetvalue(r, 0, 1));
        long long age = atoll(PQgetvalue(r, 0, 3));
        pthread_rwlock_rdlock(&e->cfg_lock);
        int dead_after = e->set.engine.dead_after_seconds;
        pthread_rwlock_unlock(&e->cfg_lock);
        bool live = !str_eq(PQgetvalue(r, 0, 2), "stopped") && age < dead_after &&
                    !(str_eq(host, e->host) && (pid == getpid() ? false : pid_dead(pid)));
        if (live) {
            *err = xasprintf("engine instance \"%s\" is already running (host %s, pid %ld, "
                             "heartbeat %lld s ago): stop it, or give this one another name "
                             "(engine.instance)",
                             e->instance, host, pid, age);
            PQclear(r);
            goto fail;
        }
    }
    PQclear(r);
    char pid[16], threads[16];
    snprintf(pid, sizeof pid, "%ld", (long)getpid());
    snprintf(threads, sizeof threads, "%d", e->nworkers);
    const char *p2[] = {e->instance, e->host, pid, TDS_VERSION, e->mode, threads};
    if (db_cmd(c,
               "INSERT INTO tds.engines (instance, host, pid, version, mode, threads, busy, state,"
               " pause_requested, started_at, heartbeat_at, stopped_at)"
               " VALUES ($1, $2, $3::int, $4, $5, $6::int, 0, 'running', false, now(), now(), NULL)"
               " ON CONFLICT (instance) DO UPDATE SET host = EXCLUDED.host, pid = EXCLUDED.pid,"
               " version = EXCLUDED.version, mode = EXCLUDED.mode, threads = EXCLUDED.threads,"
               " busy = 0, state = 'running', pause_requested = false, started_at = now(),"
               " heartbeat_at = now(), stopped_at = NULL",
               6, p2, err) != 0)
        goto fail;
    if (db_commit(c, err) != 0)
        goto fail;
    return 0;
fail:
    db_rollback(c);
    return -1;
}

static void spawn(struct engine *e, pthread_t *t, void *(*fn)(void *), void *arg)
{
    pthread_mutex_lock(&e->mu);
    e->live_threads++;
    pthread_mutex_unlock(&e->mu);
    if (pthread_create(t, NULL, fn, arg) != 0) {
        log_error("engine: cannot create a thread");
        abort();
    }
}

int engine_start(struct engine *e, char **err)
{
    if (e->started) {
        *err = xstrdup("engine: already started");
        return -1;
    }
    pthread_rwlock_rdlock(&e->cfg_lock);
    e->nworkers = e->set.engine.workers > 0 ? e->set.engine.workers : 1;
    pthread_rwlock_unlock(&e->cfg_lock);
    PGconn *c = db_connect(&e->dbcfg, err);
    if (c == NULL)
        return -1;
    if (db_check_schema(c, err) != 0 || register_engine(e, c, err) != 0) {
        PQfinish(c);
        return -1;
    }
    PQfinish(c);
    /* A crash in a run leaves a backtrace naming this engine in its log. */
    char *who = xasprintf("engine %s (%s)", e->instance, e->mode);
    crash_install(who);
    free(who);
    log_info("engine %s starting (%s, %d workers)", e->instance, e->mode, e->nworkers);
    atomic_store(&e->state, ENGINE_RUNNING);
    e->started = true;
    e->workers = xcalloc((size_t)e->nworkers, sizeof *e->workers);
    for (int i = 0; i < e->nworkers; i++)
        spawn(e, &e->workers[i], worker_main, worker_new(e, i + 1));
    spawn(e, &e->control_thread, control_main, e);
    spawn(e, &e->lease_thread, lease_main, e);
    spawn(e, &e->leader_thread, leader_main, e);
    spawn(e, &e->notify_thread, notify_main, e);
    return 0;
}

void engine_request_stop(struct engine *e)
{
    if (!e->started || atomic_exchange(&e->stop, true))
        return;
    e->stop_sig = 1;
    atomic_store(&e->state, ENGINE_DRAINING);
    log_info("engine %s: stop requested; draining", e->instance);
    engine_kick(e);
}

/* After every thread has ended: the engine's row and anything it still holds. */
static void finish_stop(struct engine *e)
{
    char *err = NULL;
    PGconn *c = db_connect(&e->dbcfg, &err);
    if (c == NULL) {
        log_warn("engine %s: cannot record the stop (%s); the heartbeat will lapse", e->instance,
                 err);
        free(err);
        return;
    }
    /* The worker names are instance/N: matched literally (a LIKE pattern
     * would take "_" and "%" of an instance name as wildcards). */
    char *prefix = xasprintf("%s/", e->instance);
    const char *p[] = {e->instance, prefix};
    static const char *const sql[] = {
        "UPDATE tds.sync_queue SET status = 'retry', next_attempt_at = now(), locked_by = NULL,"
        " locked_until = NULL, updated_at = now() WHERE status = 'processing'"
        " AND left(locked_by, length($2)) = $2 AND $1::text IS NOT NULL",
        "UPDATE tds.sync_runs SET status = 'interrupted', finished_at = now(),"
        " error = 'engine ' || $1 || ' stopped' WHERE status = 'running' AND owner = $1"
        " AND $2::text IS NOT NULL",
        "UPDATE tds.leases SET expires_at = least(expires_at, now() - interval '1 millisecond')"
        " WHERE holder = $1 AND $2::text IS NOT NULL",
        "UPDATE tds.engines SET state = 'stopped', stopped_at = now(), busy = 0,"
        " heartbeat_at = now() WHERE instance = $1 AND $2::text IS NOT NULL",
    };
    for (size_t i = 0; i < TDS_ARRAY_LEN(sql); i++) {
        if (db_cmd(c, sql[i], 2, p, &err) != 0) {
            log_warn("engine %s: stop: %s", e->instance, err);
            free(err);
            err = NULL;
        }
    }
    PQclear(PQexec(c, "NOTIFY tds_queue"));
    free(prefix);
    PQfinish(c);
    log_info("engine %s stopped (items ok %lld, failed %lld)", e->instance,
             atomic_load(&e->items_ok), atomic_load(&e->items_failed));
}

int engine_join(struct engine *e, int timeout_ms)
{
    if (!e->started || e->joined)
        return 0;
    long long deadline = time_mono_ms() + timeout_ms;
    pthread_mutex_lock(&e->mu);
    while (e->live_threads > 0) {
        if (timeout_ms < 0) {
            pthread_cond_wait(&e->done_cv, &e->mu);
            continue;
        }
        long long left = deadline - time_mono_ms();
        if (left <= 0)
            break;
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += left / 1000;
        ts.tv_nsec += (left % 1000) * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&e->done_cv, &e->mu, &ts);
    }
    int live = e->live_threads;
    pthread_mutex_unlock(&e->mu);
    if (live > 0)
        return -1;
    for (int i = 0; i < e->nworkers; i++)
        pthread_join(e->workers[i], NULL);
    pthread_join(e->control_thread, NULL);
    pthread_join(e->leader_thread, NULL);
    pthread_join(e->lease_thread, NULL);
    pthread_join(e->notify_thread, NULL);
    e->joined = true;
    finish_stop(e);
    atomic_store(&e->state, ENGINE_STOPPED);
    return 0;
}

void engine_free(struct engine *e)
{
    if (e == NULL)
        return;
    if (e->started && !e->joined) {
        engine_request_stop(e);
        engine_join(e, -1);
    }
    free(e->workers);
    free(e->instance);
    free(e->mode);
    free(e->host);
    free(e->dbcfg.database.dsn);
    free(e->dbcfg.database.application_name);
    engine_settings_free(&e->set);
    pthread_rwlock_destroy(&e->cfg_lock);
    pthread_mutex_destroy(&e->mu);
    pthread_cond_destroy(&e->work_cv);
    pthread_cond_destroy(&e->leader_cv);
    pthread_cond_destroy(&e->lease_cv);
    pthread_cond_destroy(&e->done_cv);
    free(e);
}

void engine_status(struct engine *e, struct engine_status *st)
{
    memset(st, 0, sizeof *st);
    st->state = (enum engine_state)atomic_load(&e->state);
    snprintf(st->instance, sizeof st->instance, "%s", e->instance);
    st->workers = e->nworkers;
    st->busy = atomic_load(&e->busy);
    st->runs_active = atomic_load(&e->runs_active);
    st->leader = engine_leads(e);
    st->paused_self = atomic_load(&e->paused_self);
    st->paused_fleet = atomic_load(&e->paused_fleet);
    st->items_ok = atomic_load(&e->items_ok);
    st->items_failed = atomic_load(&e->items_failed);
    st->batches = atomic_load(&e->batches);
}

void engine_reload(struct engine *e, const struct tds_config *newcfg)
{
    struct tds_config fresh;
    engine_settings_copy(&fresh, newcfg);
    pthread_rwlock_wrlock(&e->cfg_lock);
    fresh.engine.workers = e->set.engine.workers; /* needs a restart */
    struct tds_config old = e->set;
    e->set = fresh;
    pthread_rwlock_unlock(&e->cfg_lock);
    engine_settings_free(&old);
    log_info("engine %s: configuration reloaded", e->instance);
    engine_kick(e);
}

int control_set_paused(PGconn *c, bool fleet, const char *instance, bool paused, const char *who,
                       char **err)
{
    const char *p[] = {paused ? "true" : "false", str_empty(who) ? "unknown" : who, instance};
    if (fleet)
        return db_cmd(
            c,
            "WITH u AS (INSERT INTO tds.control (key, value, updated_at, updated_by)"
            " VALUES ('paused', $1::jsonb, now(), $2) ON CONFLICT (key) DO UPDATE SET"
            " value = EXCLUDED.value, updated_at = now(), updated_by = EXCLUDED.updated_by"
            " RETURNING key) SELECT pg_notify('tds_control', 'pause') FROM u",
            2, p, err);
    if (str_empty(instance)) {
        if (err)
            *err = xstrdup("pause: name an engine instance, or pause the whole fleet");
        return -1;
    }
    PGresult *r = db_exec(c,
                          "WITH u AS (UPDATE tds.engines SET pause_requested = $1::boolean"
                          " WHERE instance = $3 AND $2::text IS NOT NULL RETURNING instance)"
                          " SELECT pg_notify('tds_control', 'pause') FROM u",
                          3, p, err);
    if (r == NULL)
        return -1;
    int n = PQntuples(r);
    PQclear(r);
    if (n == 0) {
        if (err)
            *err = xasprintf("no engine instance named \"%s\"", instance);
        return -1;
    }
    return 0;
}

/* The end of an engine thread: counted out, for engine_join. */
static void *thread_done(struct engine *e)
{
    pthread_mutex_lock(&e->mu);
    e->live_threads--;
    pthread_cond_broadcast(&e->done_cv);
    pthread_mutex_unlock(&e->mu);
    log_set_context(NULL);
    return NULL;
}

/* --- control thread --- */

static PGconn *control_connect(struct engine *e, PGconn *c)
{
    c = c ? engine_db_recover(e, c) : engine_connect(e);
    if (c != NULL)
        PQclear(PQexec(c, "LISTEN tds_queue; LISTEN tds_runs; LISTEN tds_control"));
    return c;
}

static void heartbeat(struct engine *e, PGconn *c)
{
    /* Running or paused: the row says which from the pause flags read in
     * the same statement, so a pause shows at once, not a heartbeat later. */
    enum engine_state st = (enum engine_state)atomic_load(&e->state);
    if (st == ENGINE_PAUSED)
        st = ENGINE_RUNNING;
    char busy[16], threads[16];
    snprintf(busy, sizeof busy, "%d", atomic_load(&e->busy));
    snprintf(threads, sizeof threads, "%d", e->nworkers);
    const char *p[] = {e->instance, engine_state_name(st), busy, threads};
    char *err = NULL;
    PGresult *r = db_exec(
        c,
        "WITH f AS (SELECT coalesce((SELECT value = 'true'::jsonb FROM tds.control"
        "   WHERE key = 'paused'), false) AS fleet),"
        " u AS (UPDATE tds.engines SET heartbeat_at = now(), busy = $3::int,"
        "   state = CASE WHEN $2 = 'running' AND (pause_requested OR (SELECT fleet FROM f))"
        "   THEN 'paused' ELSE $2 END,"
        " threads = $4::int WHERE instance = $1 RETURNING pause_requested)"
        " SELECT coalesce((SELECT pause_requested FROM u), false), (SELECT fleet FROM f)",
        4, p, &err);
    if (r == NULL) {
        log_warn("heartbeat failed: %s", err);
        free(err);
        return;
    }
    bool self = PQgetvalue(r, 0, 0)[0] == 't', fleet = PQgetvalue(r, 0, 1)[0] == 't';
    PQclear(r);
    bool was = atomic_load(&e->paused_self) || atomic_load(&e->paused_fleet);
    atomic_store(&e->paused_self, self);
    atomic_store(&e->paused_fleet, fleet);
    if (st != ENGINE_DRAINING && st != ENGINE_STOPPED)
        atomic_store(&e->state, (self || fleet) ? ENGINE_PAUSED : ENGINE_RUNNING);
    if (was != (self || fleet)) {
        log_info("engine %s %s%s", e->instance, (self || fleet) ? "paused" : "resumed",
                 fleet ? " (fleet-wide)" : "");
        engine_wake_workers(e);
    }
    long long ok = atomic_exchange(&e->stat_ok, 0), bad = atomic_exchange(&e->stat_failed, 0);
    if (ok || bad) {
        char oks[24], bads[24];
        snprintf(oks, sizeof oks, "%lld", ok);
        snprintf(bads, sizeof bads, "%lld", bad);
        const char *p2[] = {e->instance, oks, bads};
        if (db_cmd(c,
                   "INSERT INTO tds.stats_minute (minute, instance, ok, failed)"
                   " VALUES (date_trunc('minute', now()), $1, $2::bigint, $3::bigint)"
                   " ON CONFLICT (minute, instance) DO UPDATE SET"
                   " ok = tds.stats_minute.ok + EXCLUDED.ok,"
                   " failed = tds.stats_minute.failed + EXCLUDED.failed",
                   3, p2, &err) != 0) {
            atomic_fetch_add(&e->stat_ok, ok);
            atomic_fetch_add(&e->stat_failed, bad);
            free(err);
            err = NULL;
        }
    }
    runs_heartbeat(e, c);
}

/* Joins finished job threads; returns how many remain. */
static int reap_runs(struct engine *e)
{
    int left = 0;
    pthread_mutex_lock(&e->mu);
    struct run_ctx **pp = &e->runs;
    while (*pp) {
        struct run_ctx *r = *pp;
        if (atomic_load(&r->finished)) {
            *pp = r->next;
            pthread_mutex_unlock(&e->mu);
            pthread_join(r->thread, NULL);
            run_ctx_free(r);
            pthread_mutex_lock(&e->mu);
            pp = &e->runs;
            left = 0;
            continue;
        }
        left++;
        pp = &r->next;
    }
    pthread_mutex_unlock(&e->mu);
    return left;
}

static void claim_runs(struct engine *e, PGconn *c)
{
    if (!engine_has_run_handlers() || atomic_load(&e->paused_self) || atomic_load(&e->paused_fleet))
        return;
    while (!atomic_load(&e->stop) && atomic_load(&e->runs_active) < ENGINE_MAX_RUNS) {
        struct run_ctx *ctx = NULL;
        char *err = NULL;
        int rc = runs_claim(e, c, &ctx, &err);
        if (rc < 0) {
            log_warn("claiming runs failed: %s", err);
            free(err);
            return;
        }
        if (rc == 0)
            return;
        atomic_fetch_add(&e->runs_active, 1);
        pthread_mutex_lock(&e->mu);
        ctx->next = e->runs;
        e->runs = ctx;
        pthread_mutex_unlock(&e->mu);
        if (pthread_create(&ctx->thread, NULL, runs_job_main, ctx) != 0) {
            log_error("engine: cannot create a job thread");
            abort();
        }
    }
}

void *control_main(void *arg)
{
    struct engine *e = arg;
    log_set_context("%s control", e->instance);
    PGconn *c = control_connect(e, NULL);
    long long next_hb = 0;
    bool claim_now = true;
    while (c != NULL) {
        bool stopping = atomic_load(&e->stop);
        pthread_rwlock_rdlock(&e->cfg_lock);
        int hb_ms = e->set.engine.heartbeat_seconds * 1000;
        int poll_ms = e->set.engine.poll_interval_ms;
        pthread_rwlock_unlock(&e->cfg_lock);
        long long now = time_mono_ms();
        if (now >= next_hb) {
            heartbeat(e, c);
            next_hb = now + hb_ms;
            claim_now = true;
        }
        int left = reap_runs(e);
        if (stopping && left == 0)
            break;
        if (!stopping && claim_now) {
            claim_runs(e, c);
            claim_now = false;
        }
        long long wait = next_hb - time_mono_ms();
        if (wait > poll_ms)
            wait = poll_ms;
        if (stopping)
            wait = 50;
        if (wait < 0)
            wait = 0;
        struct pollfd pfd = {PQsocket(c), POLLIN, 0};
        (void)poll(&pfd, 1, (int)wait);
        if (PQconsumeInput(c) == 0 || PQstatus(c) != CONNECTION_OK) {
            c = control_connect(e, c);
            next_hb = 0;
            continue;
        }
        PGnotify *n;
        while ((n = PQnotifies(c)) != NULL) {
            if (str_eq(n->relname, "tds_queue"))
                engine_wake_workers(e);
            else if (str_eq(n->relname, "tds_runs"))
                claim_now = true;
            else if (str_eq(n->relname, "tds_control"))
                next_hb = 0;
            PQfreemem(n);
        }
        if (!claim_now && !stopping && atomic_load(&e->runs_active) < ENGINE_MAX_RUNS)
            claim_now = (now / 1000) != (time_mono_ms() / 1000); /* once a second anyway */
    }
    if (c)
        PQfinish(c);
    return thread_done(e);
}

/* --- leader: the lease thread renews, the leader thread works --- */

bool engine_leads(struct engine *e)
{
    return atomic_load(&e->leader) && time_mono_ms() < atomic_load(&e->leader_until);
}

int engine_leader_fence(struct engine *e, PGconn *c, char **err)
{
    char ep[24];
    snprintf(ep, sizeof ep, "%lld", atomic_load(&e->leader_epoch));
    const char *p[] = {e->instance, ep};
    PGresult *r = db_exec(c,
                          "SELECT 1 FROM tds.leases WHERE name = 'leader' AND holder = $1"
                          " AND epoch = $2::bigint AND expires_at > now() FOR SHARE",
                          2, p, err);
    if (r == NULL)
        return -1;
    int held = PQntuples(r) == 1;
    PQclear(r);
    return held;
}

/* Takes or renews the lease: its epoch (> 0) when it is ours, 0 when
 * another engine holds it, -1 on a database error. */
static long long take_lease(struct engine *e, PGconn *c)
{
    char ttl[16];
    snprintf(ttl, sizeof ttl, "%d", e->timing.leader_ttl_ms);
    const char *p[] = {e->instance, ttl};
    char *err = NULL;
    PGresult *r =
        db_exec(c,
                "INSERT INTO tds.leases (name, holder, expires_at) VALUES ('leader', $1,"
                " now() + make_interval(secs => $2::int / 1000.0))"
                " ON CONFLICT (name) DO UPDATE SET holder = EXCLUDED.holder,"
                " expires_at = EXCLUDED.expires_at, acquired_at = CASE WHEN tds.leases.holder ="
                " EXCLUDED.holder THEN tds.leases.acquired_at ELSE now() END,"
                " epoch = CASE WHEN tds.leases.holder = EXCLUDED.holder THEN tds.leases.epoch"
                " ELSE tds.leases.epoch + 1 END"
                " WHERE tds.leases.holder = EXCLUDED.holder OR tds.leases.expires_at < now()"
                " RETURNING epoch",
                2, p, &err);
    if (r == NULL) {
        log_warn("leader lease: %s", err);
        free(err);
        return -1;
    }
    long long epoch = PQntuples(r) == 1 ? strtoll(PQgetvalue(r, 0, 0), NULL, 10) : 0;
    PQclear(r);
    return epoch;
}

/*
 * The lease thread: renews the leader lease on its own timer, whatever the
 * janitor is doing.  The engine leads until the monotonic time the renewal
 * started plus the lease, less a margin: that runs out before the
 * database's expires_at (set later, by the server), so a leader that cannot
 * renew stops leading before anyone else can take over.
 */
void *lease_main(void *arg)
{
    struct engine *e = arg;
    log_set_context("%s lease", e->instance);
    PGconn *c = engine_connect(e);
    unsigned long seen = 0;
    int ttl = e->timing.leader_ttl_ms;
    int margin = ttl / 10 < 1000 ? ttl / 10 : 1000;
    while (c != NULL && !atomic_load(&e->stop)) {
        long long t0 = time_mono_ms();
        long long epoch = take_lease(e, c);
        if (PQstatus(c) != CONNECTION_OK) {
            c = engine_db_recover(e, c);
            continue;
        }
        if (epoch > 0) {
            atomic_store(&e->leader_epoch, epoch);
            atomic_store(&e->leader_until, t0 + ttl - margin);
            if (!atomic_exchange(&e->leader, true))
                engine_wake_leader(e);
        } else if (epoch == 0) {
            atomic_store(&e->leader, false);
        }
        long long wait = t0 + e->timing.leader_renew_ms - time_mono_ms();
        if (wait > 0)
            engine_wait(e, &e->lease_cv, &seen, (int)wait);
    }
    if (c) {
        if (atomic_exchange(&e->leader, false)) {
            const char *p[] = {e->instance};
            char *err = NULL;
            /* Released, not deleted: the next leader's epoch follows this one's. */
            if (db_cmd(c,
                       "UPDATE tds.leases SET expires_at = now() - interval '1 millisecond'"
                       " WHERE name = 'leader' AND holder = $1",
                       1, p, &err) != 0)
                free(err);
        }
        PQfinish(c);
    }
    return thread_done(e);
}

void *leader_main(void *arg)
{
    struct engine *e = arg;
    log_set_context("%s leader", e->instance);
    PGconn *c = engine_connect(e);
    long long next_janitor = 0, next_sched = 0;
    unsigned long seen = 0;
    bool led = false;
    while (c != NULL && !atomic_load(&e->stop)) {
        bool leads = engine_leads(e);
        if (leads != led) {
            log_info("%s leadership (scheduler, janitor)", leads ? "took" : "lost");
            led = leads;
            next_janitor = next_sched = 0;
        }
        long long now = time_mono_ms();
        if (leads) {
            if (now >= next_sched) {
                sched_tick(e, c);
                next_sched = now + e->timing.sched_tick_ms;
            }
            if (now >= next_janitor && engine_leads(e)) {
                janitor_pass(e, c);
                next_janitor = time_mono_ms() + e->timing.janitor_interval_ms;
            }
            if (PQstatus(c) != CONNECTION_OK) {
                c = engine_db_recover(e, c);
                continue;
            }
        }
        /* Wake for the next job, or when the lease runs out unrenewed. */
        long long wake = time_mono_ms() + 1000;
        if (leads) {
            long long until = atomic_load(&e->leader_until);
            if (next_sched < wake)
                wake = next_sched;
            if (next_janitor < wake)
                wake = next_janitor;
            if (until < wake)
                wake = until;
        }
        long long wait = wake - time_mono_ms();
        if (wait > 0) {
            unsigned long before = seen;
            engine_wait(e, &e->leader_cv, &seen, (int)wait);
            if (seen != before)
                next_sched = 0; /* kicked: look at the schedules now */
        }
    }
    if (c)
        PQfinish(c);
    return thread_done(e);
}

/* --- notifier thread: alerts.notify_url, never blocking anything else --- */

void *notify_main(void *arg)
{
    struct engine *e = arg;
    log_set_context("%s notify", e->instance);
    PGconn *c = NULL;
    unsigned long seen = 0;
    while (!atomic_load(&e->stop)) {
        pthread_rwlock_rdlock(&e->cfg_lock);
        char *url = xstrdup(e->set.alerts.notify_url);
        pthread_rwlock_unlock(&e->cfg_lock);
        if (!str_empty(url) && engine_leads(e)) {
            if (c == NULL || PQstatus(c) != CONNECTION_OK) {
                if (c)
                    PQfinish(c);
                char *err = NULL;
                c = db_connect(&e->dbcfg, &err);
                free(err);
            }
            if (c != NULL) {
                char *err = NULL;
                if (alerts_notify_pending(c, url, 20, 10000, &err) < 0) {
                    log_warn("alert notifications: %s", err);
                    free(err);
                }
            }
        }
        free(url);
        /* Sleep on a private sequence: only stop wakes us early. */
        engine_wait(e, &e->done_cv, &seen, e->timing.notify_poll_ms);
    }
    if (c)
        PQfinish(c);
    return thread_done(e);
}
