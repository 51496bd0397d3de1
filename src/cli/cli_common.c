/*
 * cli_common.c: what every subcommand shares: configuration loading with
 * uniform error output, connecting with a schema check, usage errors.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

int cli_parse_id(const char *what, const char *name, const char *s, long long *id)
{
    if (s == NULL)
        return cli_usage_error("%s: %s is needed", what, name), -1;
    if (!str_to_id(s, strlen(s), id))
        return cli_usage_error("%s: %s: '%s' is not an id (a positive whole number, digits only)",
                               what, name, s),
               -1;
    return 0;
}

int cli_parse_number(const char *what, const char *name, const char *s, long long lo, long long hi,
                     long long *v)
{
    if (!str_to_ll_in(s, s != NULL ? strlen(s) : 0, lo, hi, v))
        return cli_usage_error("%s: %s: '%s' is not a number from %lld to %lld", what, name,
                               s != NULL ? s : "", lo, hi),
               -1;
    return 0;
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
