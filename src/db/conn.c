/*
 * conn.c: opening PostgreSQL connections, reconnecting with backoff, and the
 * thin helpers over PQexecParams that the rest of tds uses.  Error messages
 * name the server but never carry a password.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tds/db.h"
#include "tds/log.h"

char *db_error_line(PGconn *c)
{
    const char *m = c ? PQerrorMessage(c) : "no connection";
    if (str_empty(m))
        m = "unknown error";
    /* libpq messages may span lines ("DETAIL:", "HINT:"): keep the first. */
    size_t n = strcspn(m, "\n");
    char *line = xstrndup(m, n);
    char *clean = log_redact(line);
    free(line);
    return clean;
}

/* "host:port" (or the socket directory) of a connection, for messages. */
static char *server_name(PGconn *c)
{
    const char *host = PQhost(c);
    const char *port = PQport(c);
    if (str_empty(host))
        host = "localhost";
    if (host[0] == '/')
        return xasprintf("socket %s/.s.PGSQL.%s", host, str_empty(port) ? "5432" : port);
    return xasprintf("%s:%s", host, str_empty(port) ? "5432" : port);
}

/* Server notices go to the log, not to stderr, where libpq would print
 * them by default: under the console that would scribble on the screen. */
static void notice_to_log(void *arg, const char *message)
{
    (void)arg;
    size_t n = strcspn(message, "\n");
    log_debug("database: %.*s", (int)n, message);
}

/* Timestamps are exchanged in UTC whatever the server's default. */
static void set_utc(PGconn *c)
{
    PQclear(PQexecParams(c, "SET TIME ZONE 'UTC'", 0, NULL, NULL, NULL, NULL, 0));
}

PGconn *db_connect(const struct tds_config *cfg, char **err)
{
    char timeout[16];
    snprintf(timeout, sizeof timeout, "%d", cfg->database.connect_timeout);
    /* dbname comes last so that what the dsn says wins over our defaults
     * (with expand_dbname, later keywords override earlier ones). */
    const char *keys[] = {"connect_timeout", "application_name", "dbname", NULL};
    const char *vals[] = {timeout,
                          str_empty(cfg->database.application_name) ? "tds"
                                                                    : cfg->database.application_name,
                          str_empty(cfg->database.dsn) ? NULL : cfg->database.dsn, NULL};
    PGconn *c = PQconnectdbParams(keys, vals, 1);
    if (c == NULL) {
        *err = xstrdup("database: out of memory");
        return NULL;
    }
    if (PQstatus(c) != CONNECTION_OK) {
        char *line = db_error_line(c);
        /* A malformed dsn fails before a host is known. */
        char *problem = config_dsn_problem(cfg->database.dsn);
        char *msg;
        if (problem != NULL) {
            msg = xasprintf("database.dsn: %s", problem);
        } else if (PQhost(c) == NULL || strstr(line, "connection info") || strstr(line, "URI")) {
            char *hidden = config_dsn_hide_fragments(line);
            msg = xasprintf("database.dsn: %s", hidden);
            free(hidden);
        } else {
            /* The host and port too: a mangled URI can put a password there. */
            char *srv = server_name(c);
            msg = xasprintf("database: cannot connect to %s: %s", srv, line);
            free(srv);
        }
        *err = log_redact(msg);
        free(msg);
        free(problem);
        free(line);
        PQfinish(c);
        return NULL;
    }
    PQsetNoticeProcessor(c, notice_to_log, NULL);
    set_utc(c);
    return c;
}

PGconn *db_connect_retry(const struct tds_config *cfg, volatile sig_atomic_t *stop)
{
    long delay_ms = 500;
    char *last = NULL;
    unsigned seed = (unsigned)time_mono_ms();
    for (;;) {
        char *err = NULL;
        PGconn *c = db_connect(cfg, &err);
        if (c != NULL) {
            if (last != NULL)
                log_info("database reachable again");
            free(last);
            return c;
        }
        if (last == NULL || strcmp(last, err) != 0)
            log_warn("%s; retrying with backoff", err);
        free(last);
        last = err;
        /* Sleep delay/2 + jitter in [0, delay/2], waking early on stop. */
        long sleep_ms = delay_ms / 2 + (long)(rand_r(&seed) % (unsigned)(delay_ms / 2 + 1));
        for (long slept = 0; slept < sleep_ms; slept += 50) {
            if (stop && *stop) {
                free(last);
                return NULL;
            }
            struct timespec ts = {0, 50 * 1000000L};
            nanosleep(&ts, NULL);
        }
        if (stop && *stop) {
            free(last);
            return NULL;
        }
        delay_ms = delay_ms * 2 > 30000 ? 30000 : delay_ms * 2;
    }
}

bool db_ok(PGconn *c)
{
    if (c == NULL)
        return false;
    if (PQstatus(c) == CONNECTION_OK)
        return true;
    PQreset(c);
    if (PQstatus(c) != CONNECTION_OK)
        return false;
    set_utc(c);
    return true;
}

PGresult *db_exec(PGconn *c, const char *sql, int nparams, const char *const *params, char **err)
{
    PGresult *r = PQexecParams(c, sql, nparams, NULL, params, NULL, NULL, 0);
    ExecStatusType st = PQresultStatus(r);
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK)
        return r;
    if (err) {
        const char *m = r ? PQresultErrorMessage(r) : NULL;
        if (str_empty(m)) {
            *err = db_error_line(c);
        } else {
            char *line = xstrndup(m, strcspn(m, "\n"));
            const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
            if (str_eq(state, "42501")) { /* insufficient_privilege: say what it means */
                char *hint = xasprintf("%s (the database role of this connection may not do"
                                       " this: acting needs tds_operator, see tds(1) ROLES)",
                                       line);
                free(line);
                line = hint;
            }
            *err = log_redact(line);
            free(line);
        }
    }
    PQclear(r);
    return NULL;
}

int db_cmd(PGconn *c, const char *sql, int nparams, const char *const *params, char **err)
{
    PGresult *r = db_exec(c, sql, nparams, params, err);
    if (r == NULL)
        return -1;
    PQclear(r);
    return 0;
}

int db_begin(PGconn *c, char **err)
{
    return db_cmd(c, "BEGIN", 0, NULL, err);
}

int db_commit(PGconn *c, char **err)
{
    return db_cmd(c, "COMMIT", 0, NULL, err);
}

void db_rollback(PGconn *c)
{
    PQclear(PQexecParams(c, "ROLLBACK", 0, NULL, NULL, NULL, NULL, 0));
}
