/*
 * demo.h: the throwaway world of `tds --demo`: a private PostgreSQL cluster
 * under the user's state directory and a tds-zoho-sim with a realistic data
 * set, both started here and stopped on exit, so a new user sees a working
 * system with one command.
 */
#ifndef TDS_DEMO_H
#define TDS_DEMO_H

#include <sys/types.h>

#include "tds/config.h"

struct demo_env {
    char *state_dir;    /* $XDG_STATE_HOME/tds/demo, ~/.local/state/tds/demo, or
                           /var/lib/tds/demo as root */
    char *pg_bindir;
    char *pg_data;
    char *pg_socket_dir;
    char *dsn;          /* conninfo of the demo database */
    pid_t sim_pid;
    int sim_port;
    int webhook_port;
    int started_pg;     /* we started the server (so we stop it) */
};

/*
 * Starts (or reuses) the demo PostgreSQL, creates and migrates the demo
 * database, starts the simulator, and points cfg at both (dsn, Zoho URLs and
 * credentials, webhooks, images dir).  Progress lines go to stderr.  Returns
 * 0, or -1 with *err (caller frees); on failure whatever was started is
 * stopped again.
 */
int demo_start(struct demo_env *env, struct tds_config *cfg, char **err) TDS_MUST_CHECK;

/* Stops the simulator and the PostgreSQL server started by demo_start and
 * frees env.  Safe to call twice.  This function can't fail. */
void demo_stop(struct demo_env *env);

#endif
