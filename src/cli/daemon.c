/*
 * daemon.c: `tds --daemon`, the engine without a console, for systemd.
 *
 * It stays in the foreground (no double fork).  Signals are blocked in every
 * thread and taken synchronously here with sigtimedwait, so no work happens
 * in a signal handler:
 *   SIGTERM, SIGINT  drain: the batch in hand finishes, leases are released,
 *                    runs that cannot finish are marked interrupted; bounded
 *   SIGHUP           reload the reloadable keys and reopen the log file; a
 *                    configuration that fails to load leaves the old in force
 * Readiness (sd_notify READY=1, Type=notify) is sent once the database and
 * Zoho answer; until then it retries with backoff and says so.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "tds/cli.h"
#include "tds/db.h"
#include "tds/log.h"
#include "tds/runtime.h"

#define DRAIN_TIMEOUT_MS 30000

/* sd_notify(3) without libsystemd: one datagram to $NOTIFY_SOCKET. */
static void notify(const char *fmt, ...) TDS_PRINTF(1, 2);
static void notify(const char *fmt, ...)
{
    const char *path = getenv("NOTIFY_SOCKET");
    if (str_empty(path) || strlen(path) >= sizeof(((struct sockaddr_un *)0)->sun_path))
        return;
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    memcpy(sa.sun_path, path, strlen(path));
    if (sa.sun_path[0] == '@')
        sa.sun_path[0] = '\0'; /* abstract namespace */
    va_list ap;
    va_start(ap, fmt);
    char *msg = xvasprintf(fmt, ap);
    va_end(ap);
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd >= 0) {
        socklen_t len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(path));
        if (sendto(fd, msg, strlen(msg), MSG_NOSIGNAL, (struct sockaddr *)&sa, len) < 0)
            log_debug("sd_notify: %s", strerror(errno));
        close(fd);
    }
    free(msg);
}

/* Waits up to ms for one of the blocked signals; 0 when none came. */
static int wait_signal(const sigset_t *set, long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    int sig = sigtimedwait(set, NULL, &ts);
    return sig < 0 ? 0 : sig;
}

/* Logging for a service: journald priorities when stderr is the journal. */
static int setup_logging(const struct tds_config *cfg)
{
    if (!str_empty(getenv("JOURNAL_STREAM"))) {
        log_set_journal(true);
        return 0;
    }
    char *err = NULL;
    if (log_open(cfg->log.file, &err) != 0) {
        cli_err("%s", err);
        free(err);
        return -1;
    }
    return 0;
}

/*
 * Loads the configuration again and applies what can change without a
 * restart.  The runtime keeps the first configuration for everything else
 * (engine_reload copies what it takes), so only intermediate ones are freed.
 */
static void reload(const struct cli_globals *g, struct config_loaded *first,
                   struct config_loaded **cur, struct runtime *rt)
{
    log_info("SIGHUP: reloading the configuration");
    char *err = NULL;
    if (log_reopen(&err) != 0) {
        log_error("%s", err);
        free(err);
    }
    struct config_loaded *next = xcalloc(1, sizeof *next);
    struct config_errors errs = {0};
    char *path = config_find(g->config_path);
    int rc = config_load(path, next, &errs);
    free(path);
    if (rc != 0) {
        for (size_t i = 0; i < errs.n; i++)
            log_error("reload: %s", errs.msg[i]);
        log_error("reload failed: the previous configuration stays in force");
        config_errors_free(&errs);
        config_loaded_free(next);
        free(next);
        return;
    }
    config_errors_free(&errs);
    if (!str_eq((*cur)->cfg.log.file ? (*cur)->cfg.log.file : "",
                next->cfg.log.file ? next->cfg.log.file : "")) {
        const char *to = str_empty(next->cfg.log.file) ? "standard error" : next->cfg.log.file;
        log_info("reload: log.file changed: the log moves to %s", to);
        char *lerr = NULL;
        if (log_open(next->cfg.log.file, &lerr) != 0) {
            log_error("reload: log.file: %s; the log stays where it was", lerr);
            free(lerr);
        } else {
            log_info("reload: logging here from now on (was %s)",
                     str_empty((*cur)->cfg.log.file) ? "standard error" : (*cur)->cfg.log.file);
        }
    }
    struct strbuf changed = {0};
    config_diff(&(*cur)->cfg, &next->cfg, &changed);
    if (changed.len == 0)
        log_info("reload: nothing changed");
    else
        log_info("reload: changed: %s", changed.buf);
    strbuf_free(&changed);
    config_register_secrets(&next->cfg);
    enum log_level lvl;
    if (log_level_parse(next->cfg.log.level, &lvl))
        log_set_level(lvl);
    runtime_reload(rt, &next->cfg);
    if (*cur != first) {
        config_loaded_free(*cur);
        free(*cur);
    }
    *cur = next;
}

int cli_daemon(const struct cli_globals *g)
{
    prctl(PR_SET_DUMPABLE, 0, 0, 0, 0); /* holds secrets: no core file, no same-user ptrace */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    /* Blocked before any thread exists, so every thread inherits the mask. */
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    struct config_loaded *first = xcalloc(1, sizeof *first);
    if (cli_load_config(g, first) != 0) {
        free(first);
        return TDS_EXIT_USAGE;
    }
    struct tds_config *cfg = &first->cfg;
    if (setup_logging(cfg) != 0) {
        config_loaded_free(first);
        free(first);
        return TDS_EXIT_USAGE;
    }
    log_info("tds %s starting as a daemon (pid %ld)", TDS_VERSION, (long)getpid());
    notify("STATUS=connecting to the database");

    /* The database: wait for it (systemd keeps us "activating"). */
    long delay = 500;
    int rc = TDS_EXIT_OK;
    struct runtime *rt = NULL;
    for (;;) {
        char *err = NULL;
        PGconn *c = db_connect(cfg, &err);
        if (c != NULL) {
            int schema = db_check_schema(c, &err);
            PQfinish(c);
            if (schema != 0) {
                log_error("%s", err);
                cli_err("%s", err);
                free(err);
                rc = TDS_EXIT_USAGE;
                goto out;
            }
            break;
        }
        log_warn("%s; retrying in %ld ms", err, delay);
        notify("STATUS=database unreachable, retrying: %s", err);
        free(err);
        int sig = wait_signal(&set, delay);
        if (sig == SIGTERM || sig == SIGINT) {
            log_info("stopped before the database was reachable");
            goto out;
        }
        delay = delay * 2 > 30000 ? 30000 : delay * 2;
    }

    char *err = NULL;
    rt = runtime_start(cfg, g->instance, "daemon", &err);
    if (rt == NULL) {
        log_error("%s", err);
        cli_err("%s", err);
        free(err);
        rc = TDS_EXIT_USAGE;
        goto out;
    }

    /* Zoho: readiness waits for a valid token; rejected credentials end it. */
    delay = 1000;
    for (;;) {
        bool fatal = false;
        if (runtime_check_zoho(rt, &fatal, &err) == 0)
            break;
        log_error("Zoho check failed: %s", err);
        notify("STATUS=Zoho check failed, retrying: %s", err);
        free(err);
        err = NULL;
        if (fatal) {
            fprintf(stderr, "tds: Zoho rejected the credentials; check zoho.client_id, "
                            "client_secret, refresh_token and data_center\n");
            rc = TDS_EXIT_FAIL;
            goto stop;
        }
        int sig = wait_signal(&set, delay);
        if (sig == SIGTERM || sig == SIGINT)
            goto stop;
        delay = delay * 2 > 60000 ? 60000 : delay * 2;
    }

    struct engine_status st;
    engine_status(runtime_engine(rt), &st);
    log_info("ready: instance %s, %d workers", st.instance, st.workers);
    notify("READY=1\nSTATUS=running: instance %s, %d workers\nMAINPID=%ld", st.instance,
           st.workers, (long)getpid());

    const char *wd = getenv("WATCHDOG_USEC");
    long long wd_ms = str_empty(wd) ? 0 : strtoll(wd, NULL, 10) / 2000;
    struct config_loaded *cur = first;
    for (;;) {
        int sig = wait_signal(&set, wd_ms > 0 && wd_ms < 1000 ? wd_ms : 1000);
        if (wd_ms > 0)
            notify("WATCHDOG=1");
        if (sig == SIGHUP) {
            reload(g, first, &cur, rt);
            notify("RELOADING=0\nSTATUS=running (configuration reloaded)");
        } else if (sig == SIGTERM || sig == SIGINT) {
            log_info("%s: draining", sig == SIGTERM ? "SIGTERM" : "SIGINT");
            break;
        }
    }
    if (cur != first) {
        config_loaded_free(cur);
        free(cur);
    }
stop:
    notify("STOPPING=1\nSTATUS=draining");
    runtime_request_stop(rt);
    if (runtime_join(rt, DRAIN_TIMEOUT_MS) != 0)
        log_warn("drain did not finish within %d s: leases will expire and the runs left "
                 "are resumed by another engine",
                 DRAIN_TIMEOUT_MS / 1000);
    runtime_free(rt);
    log_info("stopped");
out:
    config_loaded_free(first);
    free(first);
    log_close();
    return rc;
}
