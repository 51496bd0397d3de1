/*
 * main.c: argument parsing and mode dispatch, nothing else.
 *
 *   tds [OPTIONS]                   console with an embedded engine
 *   tds --attach [OPTIONS]          console alone, steering engines elsewhere
 *   tds --daemon [OPTIONS]          engine alone, headless
 *   tds --demo                      console on a private PostgreSQL + simulator
 *   tds [OPTIONS] SUBCOMMAND ...    scripting and cron
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tds/cli.h"
#include "tds/log.h"
#include "tds/sync.h"
#include "tds/tui.h"

struct command {
    const char *name;
    int (*run)(const struct cli_globals *g, int argc, char **argv);
    const char *summary;
    const struct option *opts; /* its long options (NULL: none) */
};

static const struct command commands[] = {
    {"check-config", cli_check_config,
     "print the effective configuration and where each value came from", NULL},
    {"migrate", cli_migrate, "create or upgrade the database schema", NULL},
    {"status", cli_status, "fleet health; exit 0 healthy, 3 degraded, 4 down", cli_ops_options},
    {"runs", cli_runs, "list sync runs", cli_ops_options},
    {"run", cli_run, "show one sync run with its recent events", cli_ops_options},
    {"queue", cli_queue, "list queue items", cli_ops_options},
    {"dlq", cli_dlq, "list, show, retry or discard dead-letter items", cli_ops_options},
    {"alerts", cli_alerts, "list or acknowledge alerts", cli_ops_options},
    {"engines", cli_engines, "list the engines of the fleet", cli_ops_options},
    {"budget", cli_budget, "the day's Zoho calls: used, projected per job, limit", cli_ops_options},
    {"pause", cli_pause, "pause the fleet (or one engine with --instance)", cli_ops_options},
    {"resume", cli_resume, "resume the fleet (or one engine with --instance)", cli_ops_options},
    {"sync", cli_sync, "sync stock, one entity or all (--wait runs it here)", cli_sync_options},
    {"reconcile", cli_reconcile, "compare Zoho with the local tables and fix the drift",
     cli_reconcile_options},
};

static void usage(FILE *out)
{
    fprintf(out,
            "Usage: tds [OPTIONS]                 console with an embedded engine\n"
            "       tds --attach [OPTIONS]        console for engines running elsewhere\n"
            "       tds --daemon [OPTIONS]        headless engine (systemd)\n"
            "       tds --demo                    console on a private demo database\n"
            "       tds [OPTIONS] COMMAND [ARGS]  scripting and cron\n"
            "\n"
            "Options:\n"
            "  -c, --config FILE   configuration file (default: $TDS_CONFIG,\n"
            "                      $XDG_CONFIG_HOME/tds/tds.yaml, /etc/tds/tds.yaml)\n"
            "      --attach        run the console without an engine\n"
            "      --daemon        run the engine without a console\n"
            "      --demo          private PostgreSQL and Zoho simulator, for a first look\n"
            "      --instance NAME engine instance name (default: host-pid)\n"
            "      --read-only     console refuses every action\n"
            "      --theme NAME    console colour theme\n"
            "  -h, --help          show this help and exit\n"
            "  -V, --version       show the version and exit\n"
            "\n"
            "Commands:\n");
    for (size_t i = 0; i < TDS_ARRAY_LEN(commands); i++)
        fprintf(out, "  %-14s %s\n", commands[i].name, commands[i].summary);
    fprintf(out, "\nSee tds(1) and tds.yaml(5).\n");
}

/*
 * The subcommand's option that the argument `a` ("--name" or an unambiguous
 * prefix, as getopt_long reads it) names, or NULL.
 */
static const struct option *sub_option(const struct option *opts, const char *a)
{
    if (opts == NULL || strncmp(a, "--", 2) != 0 || a[2] == '\0')
        return NULL;
    const char *name = a + 2;
    size_t len = strcspn(name, "=");
    const struct option *hit = NULL;
    int prefixes = 0;
    for (const struct option *o = opts; o->name != NULL; o++) {
        if (strncmp(o->name, name, len) != 0)
            continue;
        if (strlen(o->name) == len)
            return o;
        hit = o;
        prefixes++;
    }
    return prefixes == 1 ? hit : NULL;
}

/*
 * Global options may also follow the subcommand (`tds check-config --config
 * FILE`): takes --config/-c and --instance out of argv (up to a "--") and
 * returns the new argc, or -1 after a usage error.  The value of one of the
 * subcommand's own options is never taken for a global option: in
 * `dlq discard 5 --reason -c` the reason is "-c".
 */
static int take_global_options(struct cli_globals *g, int argc, char **argv,
                               const struct option *opts)
{
    int out = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char **slot = NULL;
        const char *value = NULL;
        if (strcmp(a, "--") == 0) {
            while (i < argc)
                argv[out++] = argv[i++];
            break;
        }
        if (strcmp(a, "-c") == 0 || strcmp(a, "--config") == 0)
            slot = &g->config_path;
        else if (strcmp(a, "--instance") == 0)
            slot = &g->instance;
        else if (strncmp(a, "--config=", 9) == 0) {
            slot = &g->config_path;
            value = a + 9;
        } else if (strncmp(a, "--instance=", 11) == 0) {
            slot = &g->instance;
            value = a + 11;
        }
        if (slot == NULL) {
            const struct option *o = sub_option(opts, a);
            argv[out++] = argv[i];
            /* "--reason VALUE": VALUE is the subcommand's, whatever it looks like. */
            if (o != NULL && o->has_arg == required_argument && strchr(a, '=') == NULL &&
                i + 1 < argc)
                argv[out++] = argv[++i];
            continue;
        }
        if (value == NULL) {
            if (i + 1 >= argc) {
                cli_usage_error("option '%s' needs a value", a);
                return -1;
            }
            value = argv[++i];
        }
        *slot = value;
    }
    argv[out] = NULL;
    return out;
}

int main(int argc, char **argv)
{
    enum { OPT_ATTACH = 256, OPT_DAEMON, OPT_DEMO, OPT_READ_ONLY, OPT_THEME, OPT_INSTANCE };
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},
        {"attach", no_argument, NULL, OPT_ATTACH},
        {"daemon", no_argument, NULL, OPT_DAEMON},
        {"demo", no_argument, NULL, OPT_DEMO},
        {"instance", required_argument, NULL, OPT_INSTANCE},
        {"read-only", no_argument, NULL, OPT_READ_ONLY},
        {"theme", required_argument, NULL, OPT_THEME},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    struct cli_globals g = {0};
    opterr = 0;
    int ch;
    /* "+": stop at the subcommand; its own options are its business. */
    while ((ch = getopt_long(argc, argv, "+:c:hV", opts, NULL)) != -1) {
        switch (ch) {
        case 'c': g.config_path = optarg; break;
        case OPT_ATTACH: g.attach = true; break;
        case OPT_DAEMON: g.daemon = true; break;
        case OPT_DEMO: g.demo = true; break;
        case OPT_INSTANCE: g.instance = optarg; break;
        case OPT_READ_ONLY: g.read_only = true; break;
        case OPT_THEME: g.theme = optarg; break;
        case 'h': usage(stdout); return TDS_EXIT_OK;
        case 'V': printf("tds %s\n", TDS_VERSION); return TDS_EXIT_OK;
        case ':':
            return cli_usage_error("option '%s' needs a value", argv[optind - 1]);
        default:
            return cli_usage_error("unknown option '%s'", argv[optind - 1]);
        }
    }
    if (g.attach + g.daemon + g.demo > 1)
        return cli_usage_error("--attach, --daemon and --demo cannot be combined");

    if (optind < argc) {
        const char *name = argv[optind];
        if (g.attach || g.daemon || g.demo)
            return cli_usage_error("'%s' cannot be combined with --attach, --daemon or --demo",
                                   name);
        const struct command *cmd = NULL;
        for (size_t i = 0; i < TDS_ARRAY_LEN(commands); i++)
            if (strcmp(commands[i].name, name) == 0)
                cmd = &commands[i];
        if (cmd == NULL)
            return cli_usage_error("unknown command '%s'", name);
        int sub_argc = take_global_options(&g, argc - optind, argv + optind, cmd->opts);
        if (sub_argc < 0)
            return TDS_EXIT_USAGE;
        return cmd->run(&g, sub_argc, argv + optind);
    }
    if (g.daemon)
        return cli_daemon(&g);
    if (g.demo)
        return cli_demo(&g);
    return tui_main(&g);
}
