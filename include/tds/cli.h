/*
 * cli.h: the subcommands of `tds` (scripting and cron) and the shared
 * plumbing they use: loading the configuration with errors printed the same
 * way everywhere, connecting, and the exit-status convention:
 *   0 ok, 1 failed, 2 usage or configuration error,
 *   3 degraded, 4 down (tds status only).
 */
#ifndef TDS_CLI_H
#define TDS_CLI_H

#include <cjson/cJSON.h>
#include <libpq-fe.h>
#include <getopt.h>
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
int cli_status(const struct cli_globals *g, int argc, char **argv);
int cli_runs(const struct cli_globals *g, int argc, char **argv);
int cli_run(const struct cli_globals *g, int argc, char **argv);
int cli_queue(const struct cli_globals *g, int argc, char **argv);
int cli_dlq(const struct cli_globals *g, int argc, char **argv);
int cli_alerts(const struct cli_globals *g, int argc, char **argv);
int cli_engines(const struct cli_globals *g, int argc, char **argv);
int cli_pause(const struct cli_globals *g, int argc, char **argv);
/* `tds --daemon`: runs until SIGTERM; see daemon.c. */
int cli_daemon(const struct cli_globals *g);
/* `tds --demo`: the console on a private PostgreSQL and the simulator. */
int cli_demo(const struct cli_globals *g);
int cli_resume(const struct cli_globals *g, int argc, char **argv);
int cli_budget(const struct cli_globals *g, int argc, char **argv);

/* How rows are printed: see out.c. */
struct cli_fmt {
    bool json;
};

/* Prints a result as a table (terminal), TSV (piped) or a JSON array. */
void cli_print_rows(const PGresult *res, const struct cli_fmt *f);
/* One row as a JSON object keyed by column name, values typed.  Caller frees. */
cJSON *cli_row_json(const PGresult *res, int row);
/* Prints j, indented, and a newline; terminal-safe (sanitize_json). */
void cli_print_json(cJSON *j);
/*
 * s through the one sanitizer (sanitize_str, single line), for a printf of
 * data from the database or Zoho.  The result is owned by a small
 * ring of 8 slots (main thread only): valid until 8 more calls; never free
 * it.  NULL gives "".
 */
const char *cli_text(const char *s);
/* Prints "tds: MSG\n" to stderr, MSG formatted then sanitized (an error
 * string may carry Zoho or database text). */
void cli_err(const char *fmt, ...) TDS_PRINTF(1, 2);

/* Prints "tds: MSG\nTry 'tds --help' for more information." and returns 2. */
int cli_usage_error(const char *fmt, ...) TDS_PRINTF(1, 2);

/*
 * The id named `name` (e.g. "id", "--run") of subcommand `what`, strictly
 * (str_to_id): 0, or -1 after a usage error that names the argument and
 * shows the bad value through the sanitizer (the caller exits 2).
 */
int cli_parse_id(const char *what, const char *name, const char *s, long long *id)
    TDS_MUST_CHECK;
/* The same for a number in [lo, hi] (str_to_ll_in), e.g. --limit. */
int cli_parse_number(const char *what, const char *name, const char *s, long long lo,
                     long long hi, long long *v) TDS_MUST_CHECK;

/*
 * The long options of a subcommand, so that the pass that takes global
 * options (-c, --config, --instance) out of a subcommand's arguments (main.c)
 * leaves an option's value alone: `dlq discard 5 --reason -c` reasons "-c".
 */
extern const struct option cli_ops_options[];
extern const struct option cli_sync_options[];
extern const struct option cli_reconcile_options[];

#endif
