/*
 * budget.c: the planner and the governor of Zoho's daily call budget
 * (budget.h).  The model of a run's cost, when no run of its kind has
 * completed lately: a listing costs one call per 200 records; a stock sync
 * lists the items and asks /itemdetails (100 ids a call) for the ones that
 * changed (2% assumed); an incremental sync asks one page per entity; a
 * full sync and a reconcile list every entity.  The day is the database's
 * (date_trunc('day', now())), as the budget alert and the dashboard count it.
 */
#include "tds/budget.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tds/cron.h"
#include "tds/db.h"
#include "tds/entity.h"
#include "tds/log.h"

#define PAGE 200
#define DETAILS 100
#define CRON_MAX_SLOTS 2000 /* slots counted in a day at most (every minute: 1440) */

static const struct {
    const char *name, *run_type;
    size_t offset;
    bool low;
} jobs[BUDGET_MAX_JOBS] = {
    {"stock_sync", "stock", offsetof(struct tds_config, schedule.stock_sync), false},
    {"incremental_sync", "incremental", offsetof(struct tds_config, schedule.incremental_sync),
     false},
    {"full_sync", "full", offsetof(struct tds_config, schedule.full_sync), true},
    {"reconcile", "reconcile", offsetof(struct tds_config, schedule.reconcile), true},
};

static long long pages(long long rows)
{
    return rows <= 0 ? 1 : (rows + PAGE - 1) / PAGE;
}

/* Live rows of one entity's table, or -1 with *err. */
static long long rows_of(PGconn *c, const struct entity_desc *d, char **err)
{
    /* d->table comes from the descriptors, never from input. */
    char *q = xasprintf("SELECT count(*) FROM %s WHERE deleted_at IS NULL", d->table);
    PGresult *r = db_exec(c, q, 0, NULL, err);
    free(q);
    if (r == NULL)
        return -1;
    long long n = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    return n;
}

/* The model's calls for run_type over one entity (its rows known). */
static long long model_calls(const char *run_type, const struct entity_desc *d, long long rows)
{
    if (str_eq(run_type, "stock"))
        return pages(rows) + (rows * 2 / 100 + DETAILS - 1) / DETAILS;
    if (str_eq(run_type, "incremental"))
        return 1;
    if (str_eq(run_type, "full") || str_eq(run_type, "reconcile"))
        return pages(rows);
    (void)d;
    return 1;
}

long long budget_estimate(PGconn *c, const char *run_type, const char *entity, char *basis,
                          size_t n, char **err)
{
    /* A stock sync is of the items, whether it names them or not. */
    if (str_eq(run_type, "stock"))
        entity = NULL;
    const char *p[] = {run_type, str_empty(entity) ? NULL : entity};
    PGresult *r = db_exec(c,
                          "SELECT coalesce(percentile_disc(0.5) WITHIN GROUP (ORDER BY api_calls),"
                          " 0), count(*) FROM (SELECT api_calls FROM tds.sync_runs"
                          " WHERE run_type = $1 AND (entity_type IS NOT DISTINCT FROM $2"
                          "   OR ($1 = 'stock' AND entity_type = 'items'))"
                          " AND status IN ('completed', 'completed_with_errors')"
                          " AND api_calls > 0"
                          " AND finished_at > now() - interval '7 days'"
                          " ORDER BY id DESC LIMIT 5) r",
                          2, p, err);
    if (r == NULL)
        return -1;
    long long median = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    long long runs = strtoll(PQgetvalue(r, 0, 1), NULL, 10);
    PQclear(r);
    if (runs > 0) {
        if (basis)
            snprintf(basis, n, "median of the last %lld run%s", runs, runs == 1 ? "" : "s");
        return median > 0 ? median : 1;
    }
    /* The model: stock is of the items; the others of one entity or all. */
    size_t ne;
    const struct entity_desc *all = entity_all(&ne);
    const char *only = str_eq(run_type, "stock") ? "items" : entity;
    long long calls = 0, rows_total = 0;
    for (size_t i = 0; i < ne; i++) {
        if (!str_empty(only) && !str_eq(all[i].name, only))
            continue;
        long long rows = rows_of(c, &all[i], err);
        if (rows < 0)
            return -1;
        rows_total += rows;
        calls += model_calls(run_type, &all[i], rows);
    }
    if (basis)
        snprintf(basis, n, "model: %lld record%s here", rows_total, rows_total == 1 ? "" : "s");
    return calls > 0 ? calls : 1;
}

/* Slots of cron line `line` in [from, to). */
static int slots(const char *line, time_t from, time_t to)
{
    struct cron_expr e;
    char *cerr = NULL;
    if (str_empty(line) || cron_parse(line, &e, &cerr) != 0) {
        free(cerr);
        return 0;
    }
    int k = 0;
    for (time_t t = cron_next(&e, from - 1); t != (time_t)-1 && t < to && k < CRON_MAX_SLOTS;
         t = cron_next(&e, t))
        k++;
    return k;
}

int budget_plan(PGconn *c, const struct tds_config *cfg, struct budget_plan *out, char **err)
{
    memset(out, 0, sizeof *out);
    out->limit = config_rate_per_day(cfg);
    out->reserve = out->limit * cfg->zoho.budget_reserve_percent / 100;
    /* Zoho's own figures count when they are of the window still open. */
    const char *p[] = {cfg->zoho.organization_id ? cfg->zoho.organization_id : ""};
    PGresult *r = db_exec(c,
                          "SELECT extract(epoch FROM now())::bigint,"
                          " extract(epoch FROM date_trunc('day', now()) + interval '1 day')::bigint,"
                          " coalesce((SELECT sum(calls) FROM tds.api_usage"
                          "   WHERE minute >= date_trunc('day', now())), 0),"
                          " coalesce((SELECT day_limit FROM tds.zoho_day WHERE org = $1"
                          "   AND reset_at > now()), -1),"
                          " coalesce((SELECT day_limit - remaining FROM tds.zoho_day WHERE org = $1"
                          "   AND reset_at > now()), -1)",
                          1, p, err);
    if (r == NULL)
        return -1;
    time_t now = (time_t)strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    time_t midnight = (time_t)strtoll(PQgetvalue(r, 0, 1), NULL, 10);
    out->counted = out->used = strtoll(PQgetvalue(r, 0, 2), NULL, 10);
    out->zoho_limit = strtoll(PQgetvalue(r, 0, 3), NULL, 10);
    out->zoho_used = strtoll(PQgetvalue(r, 0, 4), NULL, 10);
    PQclear(r);
    /* The stricter figure wins (the difference is shown by tds budget). */
    if (out->zoho_limit > 0 && out->zoho_limit < out->limit) {
        out->limit = out->zoho_limit;
        out->reserve = out->limit * cfg->zoho.budget_reserve_percent / 100;
    }
    if (out->zoho_used > out->used)
        out->used = out->zoho_used;
    out->seconds_left = (long long)(midnight - now);
    for (size_t i = 0; i < BUDGET_MAX_JOBS && cfg->schedule.enabled; i++) {
        const char *line = *(char *const *)((const char *)cfg + jobs[i].offset);
        struct budget_job *j = &out->jobs[out->njobs];
        j->runs_per_day = slots(line, midnight, midnight + 86400);
        if (j->runs_per_day == 0)
            continue;
        j->name = jobs[i].name;
        j->run_type = jobs[i].run_type;
        j->low_priority = jobs[i].low;
        j->runs_left = slots(line, now, midnight);
        j->per_run = budget_estimate(c, j->run_type, NULL, j->basis, sizeof j->basis, err);
        if (j->per_run < 0)
            return -1;
        out->projected_rest += (long long)j->runs_left * j->per_run;
        out->njobs++;
    }
    out->projected_day = out->used + out->projected_rest;
    return 0;
}

int budget_allows(PGconn *c, const struct tds_config *cfg, const char *name,
                  const char *run_type, char **why, char **err)
{
    struct budget_plan p;
    if (budget_plan(c, cfg, &p, err) != 0)
        return -1;
    if (p.zoho_used >= 0 && p.zoho_used != p.counted)
        log_info("budget: Zoho counts %lld of %lld calls used today, tds counted %lld; the"
                 " stricter figures are used",
                 p.zoho_used, p.zoho_limit, p.counted);
    long long avail = p.limit - p.reserve - p.used;
    const struct budget_job *self = NULL;
    long long needed = 0; /* the high-priority jobs' calls for the rest of the day */
    for (int i = 0; i < p.njobs; i++) {
        if (str_eq(p.jobs[i].name, name))
            self = &p.jobs[i];
        else if (!p.jobs[i].low_priority)
            needed += (long long)p.jobs[i].runs_left * p.jobs[i].per_run;
    }
    long long cost = self ? self->per_run : budget_estimate(c, run_type, NULL, NULL, 0, err);
    if (cost < 0)
        return -1;
    bool low = self ? self->low_priority : false;
    if (cost <= avail && (!low || cost + needed <= avail))
        return 1;
    if (!low || cost > avail)
        *why = xasprintf("held back by the budget: ~%lld calls, and %lld of today's %lld are used"
                         " (%lld kept for webhooks and manual actions)",
                         cost, p.used, p.limit, p.reserve);
    else
        *why = xasprintf("held back by the budget: ~%lld calls would leave too little of the"
                         " %lld left today (before the reserve of %lld) for the stock and"
                         " incremental syncs still due (~%lld)",
                         cost, avail > 0 ? avail : 0, p.reserve, needed);
    return 0;
}

void budget_preview(PGconn *c, const struct tds_config *cfg, long long calls, char *buf,
                    size_t n)
{
    char *err = NULL;
    struct budget_plan p;
    long long left = config_rate_per_day(cfg);
    struct tds_config none = *cfg;
    none.schedule.enabled = false; /* the day's figures only, not the projection */
    if (budget_plan(c, &none, &p, &err) == 0)
        left = p.limit - p.used;
    free(err);
    if (calls < 0)
        snprintf(buf, n, "an unknown number of Zoho calls (%lld left today)", left);
    else if (left <= 0)
        snprintf(buf, n, "about %lld Zoho call%s, and none are left today", calls,
                 calls == 1 ? "" : "s");
    else
        snprintf(buf, n, "about %lld Zoho call%s (%lld%% of the %lld left today)", calls,
                 calls == 1 ? "" : "s", (calls * 100 + left - 1) / left, left);
}
