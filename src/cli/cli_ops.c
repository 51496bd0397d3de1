/*
 * cli_ops.c: the subcommands for scripts and cron that look at and steer
 * the fleet through the database: status, runs, run, queue, dlq, alerts,
 * engines, pause, resume.  They act only through the engine's own functions
 * (queue_*, dlq_*, alerts_*, control_*), record every change in tds.audit,
 * and share one exit convention (cli.h): 0 ok, 1 failed, 2 usage or
 * configuration, 3 degraded, 4 down.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tds/alerts.h"
#include "tds/audit.h"
#include "tds/budget.h"
#include "tds/cli.h"
#include "tds/db.h"
#include "tds/engine.h"
#include "tds/entity.h"
#include "tds/health.h"
#include "tds/queue.h"
#include "tds/runs.h"
#include "tds/sanitize.h"

#define ISO(col) "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"

/* Options every listing understands; a subcommand says which it accepts. */
struct opts {
    bool json, all, estimate;
    long limit;
    const char *status, *entity, *reason, *instance;
};

enum { O_JSON = 1, O_ALL = 2, O_LIMIT = 4, O_STATUS = 8, O_ENTITY = 16, O_REASON = 32,
       O_INSTANCE = 64, O_ESTIMATE = 128 };

/*
 * Parses argv (argv[0] is the subcommand path for messages) for the options
 * in `allowed`; positional arguments are left in pos[] (at most npos).
 * Returns the number of positionals, or -1 after a usage error.
 */
const struct option cli_ops_options[] = {
    {"json", no_argument, NULL, 'j'},       {"all", no_argument, NULL, 'a'},
    {"limit", required_argument, NULL, 'n'}, {"status", required_argument, NULL, 's'},
    {"entity", required_argument, NULL, 'e'}, {"reason", required_argument, NULL, 'r'},
    {"instance", required_argument, NULL, 'i'}, {"estimate", no_argument, NULL, 'E'},
    {NULL, 0, NULL, 0},
};

static int parse(const char *what, int argc, char **argv, unsigned allowed, struct opts *o,
                 char **pos, int npos)
{
    static const struct { int ch; unsigned flag; const char *name; } map[] = {
        {'j', O_JSON, "--json"},     {'a', O_ALL, "--all"},       {'n', O_LIMIT, "--limit"},
        {'s', O_STATUS, "--status"}, {'e', O_ENTITY, "--entity"}, {'r', O_REASON, "--reason"},
        {'i', O_INSTANCE, "--instance"}, {'E', O_ESTIMATE, "--estimate"},
    };
    memset(o, 0, sizeof *o);
    o->limit = 50;
    optind = 0;
    opterr = 0;
    int ch;
    /* GNU permutation: options may follow the positionals (`dlq discard 5 --reason X`). */
    while ((ch = getopt_long(argc, argv, ":", cli_ops_options, NULL)) != -1) {
        if (ch == '?')
            return cli_usage_error("%s: unknown option '%s'", what, argv[optind - 1]), -1;
        if (ch == ':')
            return cli_usage_error("%s: option '%s' needs a value", what, argv[optind - 1]), -1;
        unsigned flag = 0;
        const char *name = "?";
        for (size_t i = 0; i < TDS_ARRAY_LEN(map); i++)
            if (map[i].ch == ch) {
                flag = map[i].flag;
                name = map[i].name;
            }
        if (!(allowed & flag))
            return cli_usage_error("%s: option '%s' does not apply here", what, name), -1;
        switch (ch) {
        case 'j': o->json = true; break;
        case 'a': o->all = true; break;
        case 'n': {
            long long v;
            if (cli_parse_number(what, "--limit", optarg, 1, 100000, &v) < 0)
                return -1;
            o->limit = (long)v;
            break;
        }
        case 's': o->status = optarg; break;
        case 'e':
            if (entity_find(optarg) == NULL)
                return cli_usage_error("%s: --entity: unknown entity '%s'", what, optarg), -1;
            o->entity = entity_find(optarg)->name;
            break;
        case 'r': o->reason = optarg; break;
        case 'i': o->instance = optarg; break;
        case 'E': o->estimate = true; break;
        }
    }
    int n = 0;
    for (int i = optind; i < argc; i++) {
        if (n >= npos)
            return cli_usage_error("%s: unexpected argument '%s'", what, argv[i]), -1;
        pos[n++] = argv[i];
    }
    return n;
}

/* A positive id from text, or a usage error naming it. */
static int parse_id(const char *what, const char *s, long long *id)
{
    return cli_parse_id(what, "id", s, id);
}

/* Loads the configuration and connects (schema checked).  NULL: exit 2. */
static PGconn *open_db(const struct cli_globals *g, struct config_loaded *cl)
{
    if (cli_load_config(g, cl) != 0)
        return NULL;
    PGconn *c = cli_connect(&cl->cfg, true);
    if (c == NULL)
        config_loaded_free(cl);
    return c;
}

static void close_db(PGconn *c, struct config_loaded *cl)
{
    PQfinish(c);
    config_loaded_free(cl);
}

/* Runs a listing query and prints it.  Returns an exit status. */
static int list(PGconn *c, const char *sql, int n, const char *const *params, bool json)
{
    char *err = NULL;
    PGresult *r = db_exec(c, sql, n, params, &err);
    if (r == NULL) {
        cli_err("%s", err);
        free(err);
        return TDS_EXIT_FAIL;
    }
    struct cli_fmt f = {.json = json};
    cli_print_rows(r, &f);
    PQclear(r);
    return TDS_EXIT_OK;
}

/* Records an action; a failure to audit is reported but does not undo it. */
static void audit(PGconn *c, const char *action, const char *target, const char *detail)
{
    char *err = NULL;
    if (audit_record(c, NULL, action, target, detail, &err) != 0) {
        cli_err("warning: could not write the audit row: %s", err);
        free(err);
    }
}

static int fail(char *err)
{
    cli_err("%s", err);
    free(err);
    return TDS_EXIT_FAIL;
}

int cli_status(const struct cli_globals *g, int argc, char **argv)
{
    struct opts o;
    if (parse("status", argc, argv, O_JSON, &o, NULL, 0) < 0)
        return TDS_EXIT_USAGE;
    struct config_loaded cl = {0};
    if (cli_load_config(g, &cl) != 0)
        return TDS_EXIT_USAGE;
    /* An unreachable database is a verdict ("down"), not a usage error. */
    char *err = NULL;
    PGconn *c = db_connect(&cl.cfg, &err);
    struct health_report h;
    health_compute(c, &cl.cfg, &h);
    if (c == NULL) {
        free(h.reasons[0]);
        h.reasons[0] = xstrdup(err);
        free(err);
    }
    if (o.json) {
        cJSON *j = health_to_json(&h);
        cli_print_json(j);
        cJSON_Delete(j);
    } else {
        printf("status: %s\n", health_status_name(h.status));
        for (size_t i = 0; i < h.nreasons; i++)
            printf("  - %s\n", cli_text(h.reasons[i]));
        if (h.status != HEALTH_DOWN || h.nengines > 0) {
            printf("engines:\n");
            for (size_t i = 0; i < h.nengines; i++) {
                const struct health_engine *e = &h.engines[i];
                printf("  %-20s %-10s %-9s %d/%d busy, heartbeat %.0fs ago%s%s\n",
                       cli_text(e->instance), cli_text(e->host), cli_text(e->state), e->busy, e->threads, e->heartbeat_age,
                       e->alive ? "" : " (dead)", e->leader ? " (leader)" : "");
            }
            printf("queue: %lld pending, %lld retry, %lld processing; oldest pending %.0fs\n",
                   h.queue_pending, h.queue_retry, h.queue_processing, h.oldest_pending_age);
            printf("dead letters: %lld open\n", h.dlq_open);
            printf("alerts: %lld critical, %lld error, %lld warning, %lld info\n", h.alerts[3],
                   h.alerts[2], h.alerts[1], h.alerts[0]);
            for (size_t i = 0; i < h.nlast_sync; i++)
                printf("last sync: %-22s %s\n", cli_text(h.last_sync[i].entity),
                       cli_text(h.last_sync[i].at));
        }
    }
    int rc = h.status == HEALTH_HEALTHY    ? TDS_EXIT_OK
             : h.status == HEALTH_DEGRADED ? TDS_EXIT_DEGRADED
                                           : TDS_EXIT_DOWN;
    health_report_free(&h);
    if (c)
        PQfinish(c);
    config_loaded_free(&cl);
    return rc;
}

#define RUN_COLUMNS                                                                          \
    "id, run_type, coalesce(entity_type, 'all') AS entity, trigger, status, total, succeeded," \
    " failed, unchanged, api_calls,"                                                          \
    " round(extract(epoch FROM coalesce(finished_at, now()) - started_at)::numeric, 1)"       \
    " AS duration_seconds, " ISO("created_at") " AS created_at, " ISO("started_at")            \
    " AS started_at, " ISO("finished_at") " AS finished_at, owner, error"

int cli_runs(const struct cli_globals *g, int argc, char **argv)
{
    struct opts o;
    if (parse("runs", argc, argv, O_JSON | O_LIMIT | O_STATUS | O_ENTITY, &o, NULL, 0) < 0)
        return TDS_EXIT_USAGE;
    enum run_status st;
    if (o.status && !runs_status_parse(o.status, &st))
        return cli_usage_error("runs: --status: unknown status '%s' (pending, running, "
                               "completed, failed, cancelled, interrupted)",
                               o.status);
    struct config_loaded cl = {0};
    PGconn *c = open_db(g, &cl);
    if (c == NULL)
        return TDS_EXIT_USAGE;
    char limit[24];
    snprintf(limit, sizeof limit, "%ld", o.limit);
    const char *p[] = {o.status, o.entity, limit};
    int rc = list(c,
                  "SELECT " RUN_COLUMNS " FROM tds.sync_runs"
                  " WHERE ($1::text IS NULL OR status = $1) AND ($2::text IS NULL OR entity_type = $2)"
                  " ORDER BY id DESC LIMIT $3::int",
                  3, p, o.json);
    close_db(c, &cl);
    return rc;
}

int cli_run(const struct cli_globals *g, int argc, char **argv)
{
    struct opts o;
    char *pos[1] = {NULL};
    long long id;
    if (parse("run", argc, argv, O_JSON, &o, pos, 1) < 0 || parse_id("run", pos[0], &id) < 0)
        return TDS_EXIT_USAGE;
    struct config_loaded cl = {0};
    PGconn *c = open_db(g, &cl);
    if (c == NULL)
        return TDS_EXIT_USAGE;
    char ids[24];
    snprintf(ids, sizeof ids, "%lld", id);
    const char *p[] = {ids};
    char *err = NULL;
    int rc = TDS_EXIT_OK;
    PGresult *r = db_exec(c,
                          "SELECT " RUN_COLUMNS ", expected_total, missing, extra, stale,"
                          " requested_by, resumed_from, config,"
                          " round((succeeded + failed + unchanged) / nullif(extract(epoch FROM"
                          " coalesce(finished_at, now()) - started_at), 0)::numeric, 1)"
                          " AS items_per_second"
                          " FROM tds.sync_runs WHERE id = $1::bigint",
                          1, p, &err);
    PGresult *ev = r ? db_exec(c,
                               "SELECT id, type, " ISO("at") " AS at, entity_type, entity_id, data"
                               " FROM tds.events WHERE run_id = $1::bigint ORDER BY id DESC LIMIT 20",
                               1, p, &err)
                     : NULL;
    if (r == NULL || ev == NULL) {
        rc = fail(err);
    } else if (PQntuples(r) == 0) {
        fprintf(stderr, "tds: run %lld does not exist\n", id);
        rc = TDS_EXIT_FAIL;
    } else if (o.json) {
        cJSON *j = cli_row_json(r, 0);
        cJSON *events = cJSON_AddArrayToObject(j, "recent_events");
        for (int i = 0; i < PQntuples(ev); i++)
            cJSON_AddItemToArray(events, cli_row_json(ev, i));
        cli_print_json(j);
        cJSON_Delete(j);
    } else {
        for (int f = 0; f < PQnfields(r); f++)
            printf("%-18s %s\n", PQfname(r, f),
                   PQgetisnull(r, 0, f) ? "-" : cli_text(PQgetvalue(r, 0, f)));
        if (PQntuples(ev) > 0) {
            printf("\nrecent events:\n");
            struct cli_fmt fm = {0};
            cli_print_rows(ev, &fm);
        }
    }
    PQclear(r);
    PQclear(ev);
    close_db(c, &cl);
    return rc;
}

int cli_queue(const struct cli_globals *g, int argc, char **argv)
{
    struct opts o;
    if (parse("queue", argc, argv, O_JSON | O_LIMIT | O_STATUS | O_ENTITY, &o, NULL, 0) < 0)
        return TDS_EXIT_USAGE;
    if (o.status) {
        bool known = false;
        for (int s = 0; s < QS__COUNT; s++)
            known |= strcmp(o.status, queue_status_name((enum queue_status)s)) == 0;
        if (!known)
            return cli_usage_error("queue: --status: unknown status '%s' (pending, processing, "
                                   "retry, completed, dead)",
                                   o.status);
    }
    struct config_loaded cl = {0};
    PGconn *c = open_db(g, &cl);
    if (c == NULL)
        return TDS_EXIT_USAGE;
    char limit[24];
    snprintf(limit, sizeof limit, "%ld", o.limit);
    const char *p[] = {o.status, o.entity, limit};
    /* Without --status: the work still to do, in claim order. */
    int rc = list(c,
                  "SELECT id, entity_type, zoho_id, operation, priority, status, attempts,"
                  " max_attempts, " ISO("next_attempt_at") " AS next_attempt_at, "
                  ISO("created_at") " AS created_at, locked_by, last_error"
                  " FROM tds.sync_queue"
                  " WHERE (CASE WHEN $1::text IS NULL THEN status IN ('pending', 'retry', 'processing')"
                  "        ELSE status = $1 END)"
                  " AND ($2::text IS NULL OR entity_type = $2)"
                  " ORDER BY priority DESC, id LIMIT $3::int",
                  3, p, o.json);
    close_db(c, &cl);
    return rc;
}

static int dlq_list(PGconn *c, const struct opts *o)
{
    char limit[24];
    snprintf(limit, sizeof limit, "%ld", o->limit);
    const char *p[] = {o->entity, o->reason, o->all ? "t" : "f", limit};
    return list(c,
                "SELECT id, entity_type, zoho_id, operation, failure_reason, attempts, "
                ISO("created_at") " AS created_at, resolved, resolution, resolved_by"
                " FROM tds.dead_letter"
                " WHERE ($3::bool OR NOT resolved) AND ($1::text IS NULL OR entity_type = $1)"
                " AND ($2::text IS NULL OR strpos(failure_reason, $2) > 0)"
                " ORDER BY id DESC LIMIT $4::int",
                4, p, o->json);
}

static int dlq_show(PGconn *c, long long id, bool json)
{
    char ids[24];
    snprintf(ids, sizeof ids, "%lld", id);
    const char *p[] = {ids};
    char *err = NULL;
    PGresult *r = db_exec(c,
                          "SELECT id, queue_id, run_id, entity_type, zoho_id, operation,"
                          " failure_reason, attempts, " ISO("created_at") " AS created_at,"
                          " resolved, " ISO("resolved_at") " AS resolved_at, resolved_by,"
                          " resolution, resolution_note, error_history, payload"
                          " FROM tds.dead_letter WHERE id = $1::bigint",
                          1, p, &err);
    if (r == NULL)
        return fail(err);
    int rc = TDS_EXIT_OK;
    if (PQntuples(r) == 0) {
        fprintf(stderr, "tds: dead-letter item %lld does not exist\n", id);
        rc = TDS_EXIT_FAIL;
    } else {
        cJSON *j = cli_row_json(r, 0);
        if (json) {
            cli_print_json(j);
        } else {
            for (int f = 0; f < PQnfields(r) - 2; f++)
                printf("%-16s %s\n", PQfname(r, f),
                       PQgetisnull(r, 0, f) ? "-" : cli_text(PQgetvalue(r, 0, f)));
            /* History and payload as indented JSON. */
            for (int f = PQnfields(r) - 2; f < PQnfields(r); f++) {
                char *s = cJSON_Print(cJSON_GetObjectItem(j, PQfname(r, f)));
                char *safe = sanitize_json(s ? s : "null");
                printf("%s:\n%s\n", PQfname(r, f), safe);
                free(safe);
                cJSON_free(s);
            }
        }
        cJSON_Delete(j);
    }
    PQclear(r);
    return rc;
}

int cli_dlq(const struct cli_globals *g, int argc, char **argv)
{
    const char *sub = argc > 1 ? argv[1] : "list";
    if (argc > 1 && argv[1][0] == '-')
        sub = "list";
    struct opts o;
    char *pos[1] = {NULL};
    long long id = 0;
    int np;
    int sargc = argc > 1 && argv[1][0] != '-' ? argc - 1 : argc;
    char **sargv = argc > 1 && argv[1][0] != '-' ? argv + 1 : argv;
    if (strcmp(sub, "list") == 0) {
        if (parse("dlq list", sargc, sargv, O_JSON | O_LIMIT | O_ENTITY | O_REASON | O_ALL, &o,
                  NULL, 0) < 0)
            return TDS_EXIT_USAGE;
    } else if (strcmp(sub, "show") == 0) {
        if (parse("dlq show", sargc, sargv, O_JSON, &o, pos, 1) < 0 ||
            parse_id("dlq show", pos[0], &id) < 0)
            return TDS_EXIT_USAGE;
    } else if (strcmp(sub, "retry") == 0) {
        if ((np = parse("dlq retry", sargc, sargv, O_ALL | O_ENTITY | O_REASON | O_ESTIMATE, &o,
                        pos, 1)) < 0)
            return TDS_EXIT_USAGE;
        if (o.all && np > 0)
            return cli_usage_error("dlq retry: give an id or --all, not both");
        if (!o.all && (o.entity || o.reason))
            return cli_usage_error("dlq retry: --entity and --reason go with --all");
        if (!o.all && parse_id("dlq retry", pos[0], &id) < 0)
            return TDS_EXIT_USAGE;
    } else if (strcmp(sub, "discard") == 0) {
        if (parse("dlq discard", sargc, sargv, O_REASON, &o, pos, 1) < 0 ||
            parse_id("dlq discard", pos[0], &id) < 0)
            return TDS_EXIT_USAGE;
        if (str_empty(o.reason))
            return cli_usage_error("dlq discard: --reason TEXT is required (it is recorded)");
    } else {
        return cli_usage_error("dlq: unknown action '%s' (list, show, retry, discard)", sub);
    }
    struct config_loaded cl = {0};
    PGconn *c = open_db(g, &cl);
    if (c == NULL)
        return TDS_EXIT_USAGE;
    int rc = TDS_EXIT_OK;
    char *err = NULL;
    const char *who = audit_actor("cli");
    char target[48];
    snprintf(target, sizeof target, "dead_letter:%lld", id);
    if (strcmp(sub, "retry") == 0) {
        /* The cost preview: a retried item that asks for its record costs a
         * GET; one that carries it costs nothing (issue 19). */
        char ids[24];
        snprintf(ids, sizeof ids, "%lld", id);
        const char *p[] = {o.all ? NULL : ids, str_empty(o.entity) ? NULL : o.entity,
                           str_empty(o.reason) ? NULL : o.reason};
        PGresult *r = db_exec(c,
                              "SELECT count(*), count(*) FILTER (WHERE payload IS NULL"
                              " OR payload->>'refetch' = 'true') FROM tds.dead_letter"
                              " WHERE NOT resolved AND ($1::bigint IS NULL OR id = $1::bigint)"
                              " AND ($2::text IS NULL OR entity_type = $2)"
                              " AND ($3::text IS NULL OR strpos(lower(failure_reason),"
                              " lower($3)) > 0)",
                              3, p, &err);
        if (r == NULL) {
            rc = fail(err);
            close_db(c, &cl);
            return rc;
        }
        long long items = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
        long long calls = strtoll(PQgetvalue(r, 0, 1), NULL, 10);
        PQclear(r);
        char preview[160];
        budget_preview(c, &cl.cfg, calls, preview, sizeof preview);
        if (o.estimate) {
            printf("%lld item%s: %s\n", items, items == 1 ? "" : "s", preview);
            close_db(c, &cl);
            return TDS_EXIT_OK;
        }
        fprintf(stderr, "tds: dlq retry of %lld item%s: %s\n", items, items == 1 ? "" : "s",
                preview);
    }
    if (strcmp(sub, "list") == 0) {
        rc = dlq_list(c, &o);
    } else if (strcmp(sub, "show") == 0) {
        rc = dlq_show(c, id, o.json);
    } else if (strcmp(sub, "retry") == 0 && o.all) {
        long long n = 0;
        if (dlq_retry_matching(c, o.entity, o.reason, who, &n, &err) != 0) {
            rc = fail(err);
        } else {
            cJSON *d = cJSON_CreateObject();
            cJSON_AddStringToObject(d, "entity", o.entity ? o.entity : "");
            cJSON_AddStringToObject(d, "reason", o.reason ? o.reason : "");
            cJSON_AddNumberToObject(d, "count", (double)n);
            char *detail = cJSON_PrintUnformatted(d);
            audit(c, "dlq.retry_all", NULL, detail);
            cJSON_free(detail);
            cJSON_Delete(d);
            printf("requeued %lld dead-letter item%s\n", n, n == 1 ? "" : "s");
        }
    } else if (strcmp(sub, "retry") == 0) {
        long long qid = 0;
        if (dlq_retry(c, id, who, &qid, &err) != 0) {
            rc = fail(err);
        } else {
            audit(c, "dlq.retry", target, NULL);
            printf("dead-letter item %lld requeued as queue item %lld\n", id, qid);
        }
    } else {
        if (dlq_discard(c, id, who, o.reason, &err) != 0) {
            rc = fail(err);
        } else {
            cJSON *d = cJSON_CreateObject();
            cJSON_AddStringToObject(d, "reason", o.reason);
            char *detail = cJSON_PrintUnformatted(d);
            audit(c, "dlq.discard", target, detail);
            cJSON_free(detail);
            cJSON_Delete(d);
            printf("dead-letter item %lld discarded\n", id);
        }
    }
    close_db(c, &cl);
    return rc;
}

int cli_alerts(const struct cli_globals *g, int argc, char **argv)
{
    bool has_sub = argc > 1 && argv[1][0] != '-';
    const char *sub = has_sub ? argv[1] : "list";
    int sargc = has_sub ? argc - 1 : argc;
    char **sargv = has_sub ? argv + 1 : argv;
    struct opts o;
    char *pos[1] = {NULL};
    long long id = 0;
    if (strcmp(sub, "list") == 0) {
        if (parse("alerts list", sargc, sargv, O_JSON | O_ALL | O_LIMIT, &o, NULL, 0) < 0)
            return TDS_EXIT_USAGE;
    } else if (strcmp(sub, "ack") == 0) {
        int np = parse("alerts ack", sargc, sargv, O_ALL, &o, pos, 1);
        if (np < 0)
            return TDS_EXIT_USAGE;
        if (o.all == (np > 0))
            return cli_usage_error("alerts ack: give an alert id or --all");
        if (!o.all && parse_id("alerts ack", pos[0], &id) < 0)
            return TDS_EXIT_USAGE;
    } else {
        return cli_usage_error("alerts: unknown action '%s' (list, ack)", sub);
    }
    struct config_loaded cl = {0};
    PGconn *c = open_db(g, &cl);
    if (c == NULL)
        return TDS_EXIT_USAGE;
    int rc = TDS_EXIT_OK;
    char *err = NULL;
    const char *who = audit_actor("cli");
    if (strcmp(sub, "list") == 0) {
        char limit[24];
        snprintf(limit, sizeof limit, "%ld", o.limit);
        const char *p[] = {o.all ? "t" : "f", limit};
        rc = list(c,
                  "SELECT id, severity, alert_type, title, occurrences, entity_type,"
                  " affected_count, " ISO("first_seen") " AS first_seen, " ISO("last_seen")
                  " AS last_seen, " ISO("acknowledged_at") " AS acknowledged_at, acknowledged_by, "
                  ISO("resolved_at") " AS resolved_at, message"
                  " FROM tds.alerts WHERE $1::bool OR resolved_at IS NULL"
                  " ORDER BY CASE severity WHEN 'critical' THEN 0 WHEN 'error' THEN 1"
                  " WHEN 'warning' THEN 2 ELSE 3 END, last_seen DESC LIMIT $2::int",
                  2, p, o.json);
    } else if (o.all) {
        int n = 0;
        if (alerts_ack_all(c, who, &n, &err) != 0) {
            rc = fail(err);
        } else {
            audit(c, "alerts.ack_all", NULL, NULL);
            printf("acknowledged %d alert%s\n", n, n == 1 ? "" : "s");
        }
    } else {
        char target[40];
        snprintf(target, sizeof target, "alert:%lld", id);
        if (alerts_ack(c, id, who, &err) != 0) {
            rc = fail(err);
        } else {
            audit(c, "alerts.ack", target, NULL);
            printf("alert %lld acknowledged\n", id);
        }
    }
    close_db(c, &cl);
    return rc;
}

/* `tds budget`: the day's Zoho calls, used and projected, per job (budget.h). */
int cli_budget(const struct cli_globals *g, int argc, char **argv)
{
    struct opts o;
    if (parse("budget", argc, argv, O_JSON, &o, NULL, 0) < 0)
        return TDS_EXIT_USAGE;
    struct config_loaded cl = {0};
    PGconn *c = open_db(g, &cl);
    if (c == NULL)
        return TDS_EXIT_USAGE;
    struct budget_plan p;
    char *err = NULL;
    if (budget_plan(c, &cl.cfg, &p, &err) != 0) {
        int rc = fail(err);
        close_db(c, &cl);
        return rc;
    }
    bool over = p.projected_day > p.limit - p.reserve;
    if (o.json) {
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "plan", cl.cfg.zoho.plan ? cl.cfg.zoho.plan : "");
        cJSON_AddNumberToObject(j, "limit", (double)p.limit);
        cJSON_AddNumberToObject(j, "reserve", (double)p.reserve);
        cJSON_AddNumberToObject(j, "used", (double)p.used);
        cJSON_AddNumberToObject(j, "counted", (double)p.counted);
        if (p.zoho_limit > 0) {
            cJSON_AddNumberToObject(j, "zoho_limit", (double)p.zoho_limit);
            cJSON_AddNumberToObject(j, "zoho_used", (double)p.zoho_used);
        } else {
            cJSON_AddNullToObject(j, "zoho_limit");
            cJSON_AddNullToObject(j, "zoho_used");
        }
        cJSON_AddNumberToObject(j, "projected_rest", (double)p.projected_rest);
        cJSON_AddNumberToObject(j, "projected_day", (double)p.projected_day);
        cJSON_AddNumberToObject(j, "seconds_left", (double)p.seconds_left);
        cJSON_AddBoolToObject(j, "over_budget", over);
        cJSON *arr = cJSON_AddArrayToObject(j, "jobs");
        for (int i = 0; i < p.njobs; i++) {
            const struct budget_job *b = &p.jobs[i];
            cJSON *x = cJSON_CreateObject();
            cJSON_AddStringToObject(x, "job", b->name);
            cJSON_AddStringToObject(x, "run_type", b->run_type);
            cJSON_AddBoolToObject(x, "low_priority", b->low_priority);
            cJSON_AddNumberToObject(x, "runs_left", b->runs_left);
            cJSON_AddNumberToObject(x, "runs_per_day", b->runs_per_day);
            cJSON_AddNumberToObject(x, "calls_per_run", (double)b->per_run);
            cJSON_AddNumberToObject(x, "calls_left_today", (double)b->per_run * b->runs_left);
            cJSON_AddNumberToObject(x, "calls_per_day", (double)b->per_run * b->runs_per_day);
            cJSON_AddStringToObject(x, "basis", b->basis);
            cJSON_AddItemToArray(arr, x);
        }
        cli_print_json(j);
        cJSON_Delete(j);
    } else {
        printf("Zoho API budget today: %lld calls (plan %s), %lld of them kept for webhooks and"
               " manual actions\n",
               p.limit, cli_text(cl.cfg.zoho.plan), p.reserve);
        if (p.zoho_limit > 0)
            printf("Zoho's own count: %lld of %lld used (tds counted %lld; the stricter figures"
                   " are used)\n",
                   p.zoho_used, p.zoho_limit, p.counted);
        printf("used %lld; projected %lld more by midnight (%lld h %02lld min): %lld of %lld%s\n",
               p.used, p.projected_rest, p.seconds_left / 3600, p.seconds_left % 3600 / 60,
               p.projected_day, p.limit,
               over ? "; over: the governor holds back full syncs and reconciles first" : "");
        printf("%-17s %-9s %9s %9s %10s %9s  %s\n", "JOB", "PRIORITY", "RUNS LEFT", "CALLS/RUN",
               "LEFT TODAY", "PER DAY", "BASIS");
        for (int i = 0; i < p.njobs; i++) {
            const struct budget_job *b = &p.jobs[i];
            printf("%-17s %-9s %9d %9lld %10lld %9lld  %s\n", b->name,
                   b->low_priority ? "low" : "high", b->runs_left, b->per_run,
                   b->per_run * b->runs_left, b->per_run * b->runs_per_day, b->basis);
        }
    }
    close_db(c, &cl);
    return over ? TDS_EXIT_DEGRADED : TDS_EXIT_OK;
}

int cli_engines(const struct cli_globals *g, int argc, char **argv)
{
    struct opts o;
    if (parse("engines", argc, argv, O_JSON | O_ALL, &o, NULL, 0) < 0)
        return TDS_EXIT_USAGE;
    struct config_loaded cl = {0};
    PGconn *c = open_db(g, &cl);
    if (c == NULL)
        return TDS_EXIT_USAGE;
    char dead[16];
    snprintf(dead, sizeof dead, "%d", cl.cfg.engine.dead_after_seconds);
    const char *p[] = {o.all ? "t" : "f", dead};
    int rc = list(c,
                  "SELECT instance, host, pid, version, mode, state, threads, busy,"
                  " pause_requested, listen, " ISO("started_at") " AS started_at, "
                  ISO("heartbeat_at") " AS heartbeat_at,"
                  " round(extract(epoch FROM now() - heartbeat_at)::numeric, 1)"
                  " AS heartbeat_age_seconds,"
                  " state <> 'stopped' AND heartbeat_at > now() - make_interval(secs => $2::int)"
                  " AS alive, EXISTS (SELECT 1 FROM tds.leases l WHERE l.name = 'leader'"
                  "   AND l.holder = instance AND l.expires_at > now()) AS leader"
                  " FROM tds.engines WHERE $1::bool OR state <> 'stopped'"
                  " ORDER BY instance",
                  2, p, o.json);
    close_db(c, &cl);
    return rc;
}

static int set_paused(const struct cli_globals *g, int argc, char **argv, bool paused)
{
    const char *what = paused ? "pause" : "resume";
    struct opts o;
    if (parse(what, argc, argv, O_INSTANCE, &o, NULL, 0) < 0)
        return TDS_EXIT_USAGE;
    const char *instance = o.instance ? o.instance : g->instance;
    struct config_loaded cl = {0};
    PGconn *c = open_db(g, &cl);
    if (c == NULL)
        return TDS_EXIT_USAGE;
    char *err = NULL;
    int rc = TDS_EXIT_OK;
    if (control_set_paused(c, instance == NULL, instance, paused, audit_actor("cli"), &err) != 0) {
        rc = fail(err);
    } else {
        audit(c, paused ? "engine.pause" : "engine.resume",
              instance ? instance : "fleet", NULL);
        printf("%s %s\n", instance ? cli_text(instance) : "fleet", paused ? "paused" : "resumed");
    }
    close_db(c, &cl);
    return rc;
}

int cli_pause(const struct cli_globals *g, int argc, char **argv)
{
    return set_paused(g, argc, argv, true);
}

int cli_resume(const struct cli_globals *g, int argc, char **argv)
{
    return set_paused(g, argc, argv, false);
}
