/*
 * cli_setup.c: `tds check-config` and `tds migrate`, the two subcommands an
 * operator runs before anything else.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include "tds/cli.h"
#include "tds/db.h"
#include "tds/log.h"

/* Rejects any argument after the subcommand name; returns 0 or 2. */
static int no_more_args(int argc, char **argv)
{
    if (argc > 1)
        return cli_usage_error("%s: unexpected argument '%s'", argv[0], argv[1]);
    return 0;
}

int cli_check_config(const struct cli_globals *g, int argc, char **argv)
{
    if (no_more_args(argc, argv))
        return TDS_EXIT_USAGE;
    struct config_loaded cl = {0};
    if (cli_load_config(g, &cl) != 0)
        return TDS_EXIT_USAGE;
    config_print(&cl, stdout);
    config_loaded_free(&cl);
    return TDS_EXIT_OK;
}

int cli_migrate(const struct cli_globals *g, int argc, char **argv)
{
    if (no_more_args(argc, argv))
        return TDS_EXIT_USAGE;
    struct config_loaded cl = {0};
    if (cli_load_config(g, &cl) != 0)
        return TDS_EXIT_USAGE;
    PGconn *c = cli_connect(&cl.cfg, false);
    config_loaded_free(&cl);
    if (c == NULL)
        return TDS_EXIT_USAGE;
    int applied = 0, version = 0;
    char *err = NULL;
    if (db_migrate(c, &applied, &err) != 0) {
        cli_err("migrate: %s", err);
        free(err);
        PQfinish(c);
        return TDS_EXIT_USAGE;
    }
    if (db_schema_version(c, &version, &err) != 0) {
        cli_err("migrate: %s", err);
        free(err);
        PQfinish(c);
        return TDS_EXIT_FAIL;
    }
    if (applied == 0)
        printf("schema is up to date (version %d)\n", version);
    else
        printf("applied %d migration%s; schema version %d\n", applied, applied == 1 ? "" : "s",
               version);
    PQfinish(c);
    return TDS_EXIT_OK;
}
