/*
 * http_proc.c: the HTTP listener alone in a process, for tests and
 * bench/webhooks that need to kill it or load it from outside.
 *
 *   TDS_DATABASE_URL   the database (migrated first when TDS_HTTP_MIGRATE=1)
 *   TDS_HTTP_LISTEN    host:port (default 127.0.0.1:0)
 *   TDS_HTTP_SECRET, TDS_HTTP_HMAC, TDS_HTTP_MAX_CONN   webhooks.* values
 *   TDS_HTTP_PER_PEER  webhooks.max_connections_per_peer (default: the
 *                      connection limit: a benchmark's clients share one address)
 *
 * Prints "port N" on stdout once listening, runs until SIGTERM or SIGINT,
 * then stops cleanly.  Exit 1 when it cannot start.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tds/db.h"
#include "tds/http.h"
#include "tds/log.h"

static void set_str(char **field, const char *v)
{
    if (v == NULL)
        return;
    free(*field);
    *field = xstrdup(v);
}

int main(void)
{
    struct config_loaded cl;
    struct config_errors errs = {0};
    memset(&cl, 0, sizeof cl);
    if (config_load(NULL, &cl, &errs) != 0) {
        for (size_t i = 0; i < errs.n; i++)
            fprintf(stderr, "http_proc: %s\n", errs.msg[i]);
        return 1;
    }
    config_errors_free(&errs);
    set_str(&cl.cfg.webhooks.listen, getenv("TDS_HTTP_LISTEN") ? getenv("TDS_HTTP_LISTEN")
                                                                 : "127.0.0.1:0");
    set_str(&cl.cfg.webhooks.secret, getenv("TDS_HTTP_SECRET"));
    set_str(&cl.cfg.webhooks.hmac_secret, getenv("TDS_HTTP_HMAC"));
    if (getenv("TDS_HTTP_MAX_CONN"))
        cl.cfg.webhooks.max_connections = atoi(getenv("TDS_HTTP_MAX_CONN"));
    cl.cfg.webhooks.max_connections_per_peer = getenv("TDS_HTTP_PER_PEER")
                                                   ? atoi(getenv("TDS_HTTP_PER_PEER"))
                                                   : cl.cfg.webhooks.max_connections;
    config_register_secrets(&cl.cfg);
    enum log_level lv;
    if (log_level_parse(cl.cfg.log.level, &lv))
        log_set_level(lv);
    char *err = NULL;
    if (getenv("TDS_HTTP_MIGRATE") && strcmp(getenv("TDS_HTTP_MIGRATE"), "1") == 0) {
        PGconn *c = db_connect(&cl.cfg, &err);
        if (c == NULL || db_migrate(c, NULL, &err) != 0) {
            fprintf(stderr, "http_proc: %s\n", err);
            return 1;
        }
        PQfinish(c);
    }
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL); /* threads inherit: only sigwait sees them */
    signal(SIGPIPE, SIG_IGN);
    struct http_context ctx = {.instance = "http_proc"};
    struct http_server *s = http_server_start(&cl.cfg, &ctx, &err);
    if (s == NULL) {
        fprintf(stderr, "http_proc: %s\n", err);
        return 1;
    }
    printf("port %d\n", http_server_port(s));
    fflush(stdout);
    int sig = 0;
    sigwait(&set, &sig);
    http_server_stop(s);
    config_loaded_free(&cl);
    return 0;
}
