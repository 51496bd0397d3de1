/*
 * cli_common.c: what every subcommand shares: configuration loading with
 * uniform error output, connecting with a schema check, usage errors.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "tds/cli.h"
#include "tds/db.h"
#include "tds/log.h"
#include "tds/sanitize.h"

int cli_usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *msg = xvasprintf(fmt, ap);
    va_end(ap);
    char *safe = sanitize_str(msg, 0); /* it may quote an argument */
    fprintf(stderr, "tds: %s\nTry 'tds --help' for more information.\n", safe);
    free(safe);
    free(msg);
    return TDS_EXIT_USAGE;
}

int cli_load_config(const struct cli_globals *g, struct config_loaded *cl)
{
    struct config_errors errs = {0};
    char *path = config_find(g->config_path);
    int rc = config_load(path, cl, &errs);
    free(path);
    if (rc != 0) {
        for (size_t i = 0; i < errs.n; i++)
            fprintf(stderr, "%s\n", cli_text(errs.msg[i]));
        config_errors_free(&errs);
        config_loaded_free(cl);
        return TDS_EXIT_USAGE;
    }
    config_errors_free(&errs);
    config_register_secrets(&cl->cfg);
    enum log_level lvl;
    if (log_level_parse(cl->cfg.log.level, &lvl))
        log_set_level(lvl);
    return 0;
}

PGconn *cli_connect(const struct tds_config *cfg, bool check_schema)
{
    char *err = NULL;
    PGconn *c = db_connect(cfg, &err);
    if (c == NULL) {
        cli_err("%s", err);
        free(err);
        return NULL;
    }
    if (check_schema && db_check_schema(c, &err) != 0) {
        cli_err("%s", err);
        free(err);
        PQfinish(c);
        return NULL;
    }
    return c;
}
