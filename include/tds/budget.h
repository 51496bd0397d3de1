/*
 * budget.h: Zoho's daily call budget, spent like money (issue 19).  The
 * planner projects the rest of the day's calls from the schedule, the size
 * of the organization (the rows of zoho.*) and what runs of each kind cost
 * lately (tds.sync_runs.api_calls); the governor, asked by the scheduler
 * before each slot, holds a job back when running it would eat into the
 * reserve kept for webhooks and manual actions: low-priority jobs (full
 * syncs, reconcile) first, as soon as they would leave too little for the
 * day's stock and incremental syncs; those only when the reserve itself is
 * at stake.  tds never spends the plan's last calls by itself.
 */
#ifndef TDS_BUDGET_H
#define TDS_BUDGET_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <time.h>

#include "tds/config.h"
#include "tds/util.h"

/* One scheduled job in the plan. */
struct budget_job {
    const char *name;     /* "stock_sync" ... (tds.schedules.name) */
    const char *run_type; /* "stock" ... */
    bool low_priority;    /* held back first */
    int runs_left;        /* slots from now to the end of the day */
    int runs_per_day;     /* slots in a whole day */
    long long per_run;    /* estimated calls of one run */
    char basis[64];       /* "median of 5 runs", "model: 10,000 items" */
};

#define BUDGET_MAX_JOBS 4

struct budget_plan {
    long long limit;          /* the day's calls: the plan's (zoho.plan, rate_limit.per_day)
                                 or Zoho's own X-Rate-Limit-Limit, whichever is lower */
    long long reserve;        /* kept for webhooks and manual actions */
    long long used;           /* calls spent today: tds.api_usage's count or Zoho's own
                                 (limit - remaining), whichever is higher */
    long long counted;        /* tds.api_usage's count of today */
    long long zoho_limit, zoho_used; /* Zoho's figures (tds.zoho_day); -1: none today */
    long long projected_rest; /* the schedule's calls from now to midnight */
    long long projected_day;  /* used + projected_rest */
    long long seconds_left;   /* to midnight (the database's day) */
    int njobs;
    struct budget_job jobs[BUDGET_MAX_JOBS];
};

/*
 * The calls one run of run_type on entity (NULL: every entity) is expected
 * to cost: the median of its kind's last completed runs in a week when
 * there are any, else a model from the row counts of zoho.* (pages of 200,
 * /itemdetails of 100).  basis (may be NULL, size n) says which.  Returns
 * the estimate (>= 1), or -1 with *err.
 */
long long budget_estimate(PGconn *c, const char *run_type, const char *entity, char *basis,
                          size_t n, char **err);

/* Fills *out from the schedule of cfg and the database.  0, or -1 with *err. */
int budget_plan(PGconn *c, const struct tds_config *cfg, struct budget_plan *out,
                char **err) TDS_MUST_CHECK;

/*
 * The governor: may the scheduled job `name` (run_type) start now?  1 yes;
 * 0 no, with *why (caller frees) saying why in one line; -1 with *err.
 */
int budget_allows(PGconn *c, const struct tds_config *cfg, const char *name,
                  const char *run_type, char **why, char **err) TDS_MUST_CHECK;

/*
 * The cost preview of a manual action: "about N Zoho calls (P% of the M
 * left today)" into buf.  calls < 0: unknown.  Can't fail.
 */
void budget_preview(PGconn *c, const struct tds_config *cfg, long long calls, char *buf,
                    size_t n);

#endif
