/*
 * cli.h: the subcommands of `tds` (scripting and cron) and the shared
 * plumbing they use: loading the configuration with errors printed the same
 * way everywhere, connecting, and the exit-status convention:
 *   0 ok, 1 failed, 2 usage or configuration error,
 *   3 degraded, 4 down (tds status only).
 */
#ifndef TDS_CLI_H
#define TDS_CLI_H

#include <libpq-fe.h>
#include <stdbool.h>

#include "tds/config.h"

enum {
    TDS_EXIT_OK = 0,
    TDS_EXIT_FAIL = 1,
    TDS_EXIT_USAGE = 2,
    TDS_EXIT_DEGRADED = 3,
    TDS_EXIT_DOWN = 4,
};

/* Options that come before the subcommand and apply to every mode. */
struct cli_globals {
    const char *config_path;    /* --config */
    const char *theme;          /* --theme */
    const char *instance;       /* --instance */
    bool read_only;             /* --read-only */
    bool attach;                /* --attach */
    bool daemon;                /* --daemon */
    bool demo;                  /* --demo */
};

/*
 * Loads the configuration for a subcommand: prints every error to stderr
 * and returns TDS_EXIT_USAGE, or returns 0 with *cl filled (free it with
 * config_loaded_free).  Applies the log settings and registers secrets.
 */
int cli_load_config(const struct cli_globals *g, struct config_loaded *cl) TDS_MUST_CHECK;

/*
 * Connects and checks the schema version: prints a one-line error and
 * returns NULL on failure (the caller exits TDS_EXIT_USAGE, as a database
 * that cannot be reached or is at a newer version is a setup error).
 */
PGconn *cli_connect(const struct tds_config *cfg, bool check_schema);

/* Subcommands: argc/argv start at the subcommand's own name. */
int cli_check_config(const struct cli_globals *g, int argc, char **argv);
int cli_migrate(const struct cli_globals *g, int argc, char **argv);

/* Prints "tds: MSG\nTry 'tds --help' for more information." and returns 2. */
int cli_usage_error(const char *fmt, ...) TDS_PRINTF(1, 2);

#endif
