/*
 * demo.c: `tds --demo`.  A private PostgreSQL cluster under the user's state
 * directory (as root: /var/lib/tds/demo, run as the postgres user, since
 * PostgreSQL refuses root) and a tds-zoho-sim on loopback with a realistic
 * data set; both are stopped again on exit.  The cluster's data survives
 * between runs, so a second `tds --demo` starts where the first left off.
 */
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <grp.h>
#include <limits.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tds/db.h"
#include "tds/cli.h"
#include "tds/demo.h"
#include "tds/log.h"
#include "tds/runs.h"
#include "tds/tui.h"

#define DEMO_SIM_ITEMS "1000"
#define DEMO_SIM_SEED "7"
#define DEMO_WEBHOOK_SECRET "demo-webhook-secret-0001"

static void progress(const char *fmt, ...) TDS_PRINTF(1, 2);
static void progress(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("tds demo: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

static int mkdir_p(const char *path, mode_t mode)
{
    char *p = xstrdup(path);
    for (char *s = p + 1; *s; s++) {
        if (*s != '/')
            continue;
        *s = '\0';
        if (mkdir(p, mode) != 0 && errno != EEXIST) {
            free(p);
            return -1;
        }
        *s = '/';
    }
    int rc = (mkdir(p, mode) != 0 && errno != EEXIST) ? -1 : 0;
    free(p);
    return rc;
}

static char *state_dir(void)
{
    if (geteuid() == 0)
        return xstrdup("/var/lib/tds/demo");
    const char *xdg = getenv("XDG_STATE_HOME");
    if (!str_empty(xdg))
        return xasprintf("%s/tds/demo", xdg);
    const char *home = getenv("HOME");
    if (str_empty(home)) {
        struct passwd *pw = getpwuid(getuid());
        home = pw ? pw->pw_dir : "/tmp";
    }
    return xasprintf("%s/.local/state/tds/demo", home);
}

/* The newest PostgreSQL server binaries: Debian's layout, then PATH. */
static char *find_pg_bindir(void)
{
    glob_t g;
    char *found = NULL;
    if (glob("/usr/lib/postgresql/*/bin/pg_ctl", 0, NULL, &g) == 0 && g.gl_pathc > 0) {
        /* glob sorts lexically: pick the highest major version numerically. */
        long best = -1;
        for (size_t i = 0; i < g.gl_pathc; i++) {
            long v = strtol(g.gl_pathv[i] + strlen("/usr/lib/postgresql/"), NULL, 10);
            if (v > best) {
                best = v;
                free(found);
                found = xstrndup(g.gl_pathv[i], strlen(g.gl_pathv[i]) - strlen("/pg_ctl"));
            }
        }
    }
    globfree(&g);
    if (found)
        return found;
    const char *path = getenv("PATH");
    char *copy = xstrdup(path ? path : "/usr/bin:/bin");
    for (char *save = NULL, *d = strtok_r(copy, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
        char *cand = xasprintf("%s/pg_ctl", d);
        bool ok = access(cand, X_OK) == 0;
        free(cand);
        if (ok) {
            found = xstrdup(d);
            break;
        }
    }
    free(copy);
    return found;
}

/* The uid/gid that owns the cluster: postgres when we are root, else us. */
static int owner_ids(uid_t *uid, gid_t *gid)
{
    if (geteuid() != 0) {
        *uid = geteuid();
        *gid = getegid();
        return 0;
    }
    struct passwd *pw = getpwnam("postgres");
    if (pw == NULL)
        return -1;
    *uid = pw->pw_uid;
    *gid = pw->pw_gid;
    return 0;
}

/* Runs argv as the cluster owner with output to logpath; returns the exit
 * status, or -1 if it could not run. */
static int run_as_owner(char *const argv[], const char *logpath)
{
    uid_t uid;
    gid_t gid;
    if (owner_ids(&uid, &gid) != 0)
        return -1;
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        /* Drop to the owner first, so the log file is the owner's too
         * (pg_ctl -l appends to it as that user). */
        if (geteuid() == 0 && (setgroups(0, NULL) != 0 || setgid(gid) != 0 || setuid(uid) != 0))
            _exit(126);
        int fd = open(logpath, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
        int devnull = open("/dev/null", O_RDONLY);
        if (fd >= 0) {
            dup2(fd, STDOUT_FILENO);
            dup2(fd, STDERR_FILENO);
        }
        if (devnull >= 0)
            dup2(devnull, STDIN_FILENO);
        execv(argv[0], argv);
        _exit(127);
    }
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static int chown_owner(const char *path)
{
    uid_t uid;
    gid_t gid;
    if (owner_ids(&uid, &gid) != 0)
        return -1;
    return geteuid() == 0 ? chown(path, uid, gid) : 0;
}

static int pg_start(struct demo_env *env, char **err)
{
    env->pg_bindir = find_pg_bindir();
    if (env->pg_bindir == NULL) {
        *err = xstrdup("cannot find PostgreSQL's server programs (pg_ctl): "
                       "install the postgresql package (scripts/install-deps)");
        return -1;
    }
    if (geteuid() == 0 && getpwnam("postgres") == NULL) {
        *err = xstrdup("running as root needs a postgres user to own the demo cluster "
                       "(install the postgresql package)");
        return -1;
    }
    char *pgdir = xasprintf("%s/pg", env->state_dir);
    env->pg_data = xasprintf("%s/data", pgdir);
    env->pg_socket_dir = xstrdup(pgdir);
    char *log = xasprintf("%s/server.log", pgdir);
    char *version = xasprintf("%s/PG_VERSION", env->pg_data);
    int rc = -1;
    if (mkdir_p(pgdir, 0755) != 0 || chown_owner(pgdir) != 0) {
        *err = xasprintf("%s: cannot create: %s", pgdir, strerror(errno));
        goto out;
    }
    if (access(log, F_OK) == 0 && chown_owner(log) != 0) {
        *err = xasprintf("%s: cannot hand to the cluster owner: %s", log, strerror(errno));
        goto out;
    }
    if (access(version, F_OK) != 0) {
        progress("creating a private PostgreSQL cluster in %s", env->pg_data);
        char *initdb = xasprintf("%s/initdb", env->pg_bindir);
        char *const argv[] = {initdb, "-D", env->pg_data, "-U", "postgres", "--auth=trust",
                              "-E", "UTF8", "--locale=C", NULL};
        int st = run_as_owner(argv, log);
        free(initdb);
        if (st != 0) {
            *err = xasprintf("initdb failed (exit %d): see %s", st, log);
            goto out;
        }
        char *conf = xasprintf("%s/postgresql.conf", env->pg_data);
        FILE *f = fopen(conf, "a");
        if (f) {
            fprintf(f, "\n# tds demo: Unix socket only\nlisten_addresses = ''\n"
                       "unix_socket_directories = '%s'\nport = 5432\ntimezone = 'UTC'\n",
                    env->pg_socket_dir);
            fclose(f);
        }
        free(conf);
    }
    char *pg_ctl = xasprintf("%s/pg_ctl", env->pg_bindir);
    char *const status_argv[] = {pg_ctl, "-D", env->pg_data, "status", NULL};
    if (run_as_owner(status_argv, log) == 0) {
        /* Left behind by a demo that was killed: ours to stop at exit too.
         * (A second live demo cannot share it: its engine name is taken.) */
        progress("reusing the demo PostgreSQL left running in %s", env->pg_data);
        env->started_pg = 1;
    } else {
        progress("starting PostgreSQL (socket in %s)", env->pg_socket_dir);
        char *const start_argv[] = {pg_ctl, "-D", env->pg_data, "-l", log, "-w", "-t", "60",
                                    "start", NULL};
        int st = run_as_owner(start_argv, log);
        if (st != 0) {
            *err = xasprintf("PostgreSQL did not start (exit %d): see %s", st, log);
            free(pg_ctl);
            goto out;
        }
        env->started_pg = 1;
    }
    free(pg_ctl);
    rc = 0;
out:
    free(pgdir);
    free(log);
    free(version);
    return rc;
}

static int create_database(struct demo_env *env, char **err)
{
    char *admin = xasprintf("host=%s port=5432 user=postgres dbname=postgres", env->pg_socket_dir);
    PGconn *c = PQconnectdb(admin);
    free(admin);
    if (PQstatus(c) != CONNECTION_OK) {
        char *line = db_error_line(c);
        *err = xasprintf("cannot connect to the demo PostgreSQL: %s", line);
        free(line);
        PQfinish(c);
        return -1;
    }
    PGresult *r = db_exec(c, "SELECT 1 FROM pg_database WHERE datname = 'tds'", 0, NULL, err);
    if (r == NULL) {
        PQfinish(c);
        return -1;
    }
    bool exists = PQntuples(r) == 1;
    PQclear(r);
    if (!exists && db_cmd(c, "CREATE DATABASE tds", 0, NULL, err) != 0) {
        PQfinish(c);
        return -1;
    }
    PQfinish(c);
    env->dsn = xasprintf("host=%s port=5432 user=postgres dbname=tds", env->pg_socket_dir);
    return 0;
}

static int free_port(void)
{
    int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (s < 0)
        return -1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    int port = -1;
    if (bind(s, (struct sockaddr *)&a, sizeof a) == 0 &&
        getsockname(s, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    close(s);
    return port;
}

/* tds-zoho-sim next to this binary (build tree or install), else on PATH. */
static char *find_sim(void)
{
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n > 0) {
        self[n] = '\0';
        char *slash = strrchr(self, '/');
        if (slash)
            *slash = '\0';
        const char *rel[] = {"tds-zoho-sim", "src/sim/tds-zoho-sim"};
        for (size_t i = 0; i < TDS_ARRAY_LEN(rel); i++) {
            char *cand = xasprintf("%s/%s", self, rel[i]);
            if (access(cand, X_OK) == 0)
                return cand;
            free(cand);
        }
    }
    const char *path = getenv("PATH");
    char *copy = xstrdup(path ? path : "/usr/local/bin:/usr/bin");
    char *found = NULL;
    for (char *save = NULL, *d = strtok_r(copy, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
        char *cand = xasprintf("%s/tds-zoho-sim", d);
        if (access(cand, X_OK) == 0) {
            found = cand;
            break;
        }
        free(cand);
    }
    free(copy);
    return found;
}

static int sim_start(struct demo_env *env, char **err)
{
    char *sim = find_sim();
    if (sim == NULL) {
        *err = xstrdup("cannot find tds-zoho-sim next to tds or on PATH");
        return -1;
    }
    char *port_file = xasprintf("%s/sim.port", env->state_dir);
    char *log = xasprintf("%s/sim.log", env->state_dir);
    unlink(port_file);
    env->webhook_port = free_port();
    char *hook = xasprintf("http://127.0.0.1:%d/webhooks/zoho", env->webhook_port);
    progress("starting tds-zoho-sim with " DEMO_SIM_ITEMS " items");
    pid_t pid = fork();
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
        if (fd >= 0) {
            dup2(fd, STDOUT_FILENO);
            dup2(fd, STDERR_FILENO);
        }
        int devnull = open("/dev/null", O_RDONLY);
        if (devnull >= 0)
            dup2(devnull, STDIN_FILENO);
        char *const argv[] = {sim, "--listen", "127.0.0.1:0", "--port-file", port_file,
                              "--seed", DEMO_SIM_SEED, "--items", DEMO_SIM_ITEMS,
                              "--webhook-url", hook, "--webhook-secret", DEMO_WEBHOOK_SECRET,
                              NULL};
        execv(sim, argv);
        _exit(127);
    }
    free(hook);
    int rc = -1;
    if (pid < 0) {
        *err = xasprintf("cannot start tds-zoho-sim: %s", strerror(errno));
        goto out;
    }
    env->sim_pid = pid;
    for (int i = 0; i < 200; i++) {
        FILE *f = fopen(port_file, "r");
        if (f) {
            int port = 0;
            if (fscanf(f, "%d", &port) == 1 && port > 0)
                env->sim_port = port;
            fclose(f);
            if (env->sim_port > 0) {
                rc = 0;
                goto out;
            }
        }
        int status;
        if (waitpid(pid, &status, WNOHANG) == pid) {
            env->sim_pid = 0;
            *err = xasprintf("tds-zoho-sim exited at start: see %s", log);
            goto out;
        }
        struct timespec ts = {0, 50 * 1000000L};
        nanosleep(&ts, NULL);
    }
    *err = xasprintf("tds-zoho-sim did not report its port within 10 s: see %s", log);
out:
    free(sim);
    free(port_file);
    free(log);
    return rc;
}

static void set_str(char **field, char *value)
{
    free(*field);
    *field = value;
}

/* A new demo has nothing synced yet: ask for a stock sync and a full sync
 * of everything, so the first screen shows the engine at work. */
static void first_syncs(PGconn *c)
{
    char *err = NULL;
    PGresult *r = db_exec(c, "SELECT NOT EXISTS (SELECT 1 FROM tds.sync_runs)", 0, NULL, &err);
    if (r == NULL) {
        free(err);
        return;
    }
    bool fresh = PQgetvalue(r, 0, 0)[0] == 't';
    PQclear(r);
    if (!fresh)
        return;
    long long id = 0;
    if (runs_request(c, "stock", "items", "manual", "{\"source\":\"demo\"}", "demo", &id, &err) != 0 ||
        runs_request(c, "full", NULL, "manual", "{\"source\":\"demo\"}", "demo", &id, &err) != 0) {
        progress("could not request the first syncs: %s", err);
        free(err);
        return;
    }
    progress("first syncs requested: stock levels, then every entity");
}

int demo_start(struct demo_env *env, struct tds_config *cfg, char **err)
{
    memset(env, 0, sizeof *env);
    env->state_dir = state_dir();
    if (mkdir_p(env->state_dir, 0755) != 0) {
        *err = xasprintf("%s: cannot create: %s", env->state_dir, strerror(errno));
        demo_stop(env);
        return -1;
    }
    if (pg_start(env, err) != 0 || create_database(env, err) != 0 || sim_start(env, err) != 0) {
        demo_stop(env);
        return -1;
    }
    set_str(&cfg->database.dsn, xstrdup(env->dsn));
    char *base = xasprintf("http://127.0.0.1:%d", env->sim_port);
    set_str(&cfg->zoho.accounts_url, xstrdup(base));
    set_str(&cfg->zoho.books_url, xasprintf("%s/books/v3", base));
    set_str(&cfg->zoho.inventory_url, xasprintf("%s/inventory/v1", base));
    free(base);
    set_str(&cfg->zoho.organization_id, xstrdup("60000000001"));
    set_str(&cfg->zoho.client_id, xstrdup("sim-client-id"));
    set_str(&cfg->zoho.client_secret, xstrdup("sim-client-secret"));
    set_str(&cfg->zoho.refresh_token, xstrdup("sim-refresh-token"));
    set_str(&cfg->webhooks.listen, xasprintf("127.0.0.1:%d", env->webhook_port));
    set_str(&cfg->webhooks.secret, xstrdup(DEMO_WEBHOOK_SECRET));
    set_str(&cfg->images.dir, xasprintf("%s/images", env->state_dir));
    set_str(&cfg->engine.instance, xstrdup("demo"));
    config_register_secrets(cfg);

    char *e = NULL;
    PGconn *c = db_connect(cfg, &e);
    int applied = 0;
    if (c == NULL || db_migrate(c, &applied, &e) != 0) {
        *err = xasprintf("demo database: %s", e ? e : "cannot connect");
        free(e);
        PQfinish(c);
        demo_stop(env);
        return -1;
    }
    first_syncs(c);
    PQfinish(c);
    progress("database ready (%d migration%s applied); simulator on 127.0.0.1:%d", applied,
             applied == 1 ? "" : "s", env->sim_port);
    return 0;
}

void demo_stop(struct demo_env *env)
{
    if (env->sim_pid > 0) {
        kill(env->sim_pid, SIGTERM);
        for (int i = 0; i < 100; i++) {
            if (waitpid(env->sim_pid, NULL, WNOHANG) == env->sim_pid)
                break;
            if (i == 99) {
                kill(env->sim_pid, SIGKILL);
                waitpid(env->sim_pid, NULL, 0);
            }
            struct timespec ts = {0, 50 * 1000000L};
            nanosleep(&ts, NULL);
        }
        env->sim_pid = 0;
    }
    if (env->started_pg && env->pg_bindir) {
        char *pg_ctl = xasprintf("%s/pg_ctl", env->pg_bindir);
        char *log = xasprintf("%s/pg/server.log", env->state_dir);
        char *const argv[] = {pg_ctl, "-D", env->pg_data, "-m", "fast", "-w", "stop", NULL};
        if (run_as_owner(argv, log) == 0)
            fprintf(stderr, "tds demo: PostgreSQL stopped (data kept in %s)\n", env->pg_data);
        free(pg_ctl);
        free(log);
        env->started_pg = 0;
    }
    free(env->state_dir);
    free(env->pg_bindir);
    free(env->pg_data);
    free(env->pg_socket_dir);
    free(env->dsn);
    memset(env, 0, sizeof *env);
}

int cli_demo(const struct cli_globals *g)
{
    struct config_loaded cl = {0};
    if (cli_load_config(g, &cl) != 0)
        return TDS_EXIT_USAGE;
    char why[320];
    if (tui_term_check(why, sizeof why) != 0) { /* before PostgreSQL is started */
        fprintf(stderr, "tds demo: %s\n", why);
        config_loaded_free(&cl);
        return TDS_EXIT_USAGE;
    }
    struct demo_env env;
    char *err = NULL;
    if (demo_start(&env, &cl.cfg, &err) != 0) {
        fprintf(stderr, "tds demo: %s\n", err);
        free(err);
        config_loaded_free(&cl);
        return TDS_EXIT_FAIL;
    }
    /* The logs of the embedded engine go to a file: curses owns the screen. */
    char *logpath = xasprintf("%s/tds.log", env.state_dir);
    if (log_open(logpath, &err) != 0) {
        fprintf(stderr, "tds demo: %s\n", err);
        free(err);
    }
    struct tui_opts o = {
        .attach = false,
        .read_only = g->read_only,
        .theme = g->theme,
        .instance = "demo",
        .label = "demo",
    };
    int rc = tui_run(&cl.cfg, &o);
    log_close();
    fprintf(stderr, "tds demo: engine log kept in %s\n", logpath);
    free(logpath);
    demo_stop(&env);
    config_loaded_free(&cl);
    return rc;
}
