/*
 * scheduler.c: the jobs of schedule.* (5-field cron, cron.h), run by the
 * leader only.  tds.schedules keeps each job's cron line, next and last
 * run.  A due job is fired by claiming its slot atomically
 * (UPDATE ... WHERE name = $1 AND next_run_at = $old), so neither a
 * boundary nor a leader change can fire it twice; the new next_run_at is
 * the first slot after now, so after downtime one catch-up run fires, not
 * one per missed slot.  A job whose previous run is still pending or
 * running is skipped for that slot.  A slot is due when the clock has
 * reached it: the clock's fraction is cut, never rounded, so a job never
 * fires early (at 11:59:59.6, 12:00 is not due).
 */
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine_internal.h"
#include "tds/alerts.h"
#include "tds/budget.h"
#include "tds/cron.h"
#include "tds/db.h"
#include "tds/log.h"

static const struct sched_job {
    const char *name;     /* tds.schedules.name and the schedule.* key */
    size_t offset;        /* of the cron line in struct tds_config */
    const char *run_type; /* NULL: auto_heal, a janitor pass */
} jobs[] = {
    {"full_sync", offsetof(struct tds_config, schedule.full_sync), "full"},
    {"incremental_sync", offsetof(struct tds_config, schedule.incremental_sync), "incremental"},
    {"stock_sync", offsetof(struct tds_config, schedule.stock_sync), "stock"},
    {"auto_heal", offsetof(struct tds_config, schedule.auto_heal), NULL},
    {"reconcile", offsetof(struct tds_config, schedule.reconcile), "reconcile"},
};

/* Fires job j whose slot is old_next (epoch s); 1 fired, 0 someone else did, -1 error. */
static int fire(struct engine *e, PGconn *c, const struct sched_job *j, long long old_next,
                long long new_next)
{
    char olds[24], news[24];
    snprintf(olds, sizeof olds, "%lld", old_next);
    snprintf(news, sizeof news, "%lld", new_next);
    char *err = NULL;
    if (db_begin(c, &err) != 0)
        goto fail;
    /* Fenced: a leader whose lease moved on (a stall) cannot fire. */
    int held = engine_leader_fence(e, c, &err);
    if (held < 0)
        goto fail;
    if (held == 0) {
        db_rollback(c);
        return 0;
    }
    const char *p[] = {j->name, olds, news};
    PGresult *r =
        db_exec(c,
                "UPDATE tds.schedules SET next_run_at = to_timestamp($3::bigint),"
                " last_run_at = now(), updated_at = now() WHERE name = $1 AND enabled"
                " AND extract(epoch FROM next_run_at)::bigint = $2::bigint RETURNING name",
                3, p, &err);
    if (r == NULL)
        goto fail;
    int claimed = PQntuples(r);
    PQclear(r);
    if (claimed == 0) {
        db_rollback(c);
        return 0;
    }
    char status[96] = "ok";
    long long run_id = 0;
    if (j->run_type == NULL) {
        engine_wake_leader(e); /* the janitor pass runs right after this tick */
        snprintf(status, sizeof status, "ok (janitor pass)");
    } else {
        const char *p2[] = {j->run_type};
        r = db_exec(c,
                    "SELECT id FROM tds.sync_runs WHERE run_type = $1 AND entity_type IS NULL"
                    " AND status IN ('pending', 'running') ORDER BY id LIMIT 1",
                    1, p2, &err);
        if (r == NULL)
            goto fail;
        if (PQntuples(r) > 0) {
            snprintf(status, sizeof status, "skipped: run %s still active", PQgetvalue(r, 0, 0));
            PQclear(r);
        } else {
            PQclear(r);
            /* The governor: a slot that would overspend the day is held back. */
            struct tds_config s;
            pthread_rwlock_rdlock(&e->cfg_lock);
            engine_settings_copy(&s, &e->set);
            pthread_rwlock_unlock(&e->cfg_lock);
            char *why = NULL;
            int ok = budget_allows(c, &s, j->name, j->run_type, &why, &err);
            engine_settings_free(&s);
            if (ok < 0)
                goto fail;
            char *key = xasprintf("budget_held:%s", j->name);
            if (ok == 0) {
                snprintf(status, sizeof status, "skipped: %.80s", why);
                char *title = xasprintf("schedule %s %s", j->name, why);
                struct alert_spec a = {.type = "budget_held", .severity = ALERT_WARNING,
                                       .title = title,
                                       .message = "data stays fresh only as far as the budget"
                                                  " allows; see tds budget",
                                       .affected = 1, .dedup_key = key};
                int arc = alerts_raise(c, &a, NULL, NULL, &err);
                free(title);
                free(why);
                free(key);
                if (arc != 0)
                    goto fail;
            } else {
                int rrc = alerts_resolve(c, key, NULL, &err);
                free(key);
                if (rrc != 0 ||
                    runs_request(c, j->run_type, NULL, "schedule", "{}", "scheduler", &run_id,
                                 &err) != 0)
                    goto fail;
                snprintf(status, sizeof status, "started run %lld", run_id);
            }
        }
    }
    char rid[24];
    snprintf(rid, sizeof rid, "%lld", run_id);
    const char *p3[] = {j->name, status, run_id ? rid : NULL};
    if (db_cmd(c,
               "UPDATE tds.schedules SET last_status = $2,"
               " last_run_id = coalesce($3::bigint, last_run_id) WHERE name = $1",
               3, p3, &err) != 0 ||
        db_commit(c, &err) != 0)
        goto fail;
    log_info("schedule %s fired: %s", j->name, status);
    return 1;
fail:
    log_warn("schedule %s: %s", j->name, err ? err : "?");
    free(err);
    db_rollback(c);
    return -1;
}

void sched_tick(struct engine *e, PGconn *c)
{
    char *err = NULL;
    PGresult *r = db_exec(c,
                          "SELECT name, cron, enabled, coalesce(extract(epoch FROM next_run_at)"
                          "::bigint, 0), extract(epoch FROM now()) FROM tds.schedules",
                          0, NULL, &err);
    if (r == NULL) {
        log_warn("scheduler: %s", err);
        free(err);
        return;
    }
    /* The database's clock, shared by the fleet (or a test's). */
    double t = e->clock != NULL      ? e->clock(e->clock_arg)
               : PQntuples(r) > 0 ? strtod(PQgetvalue(r, 0, 4), NULL)
                                  : (double)time(NULL);
    time_t now = (time_t)floor(t);
    for (size_t k = 0; k < TDS_ARRAY_LEN(jobs); k++) {
        const struct sched_job *j = &jobs[k];
        pthread_rwlock_rdlock(&e->cfg_lock);
        char *line = xstrdup(*(char *const *)((const char *)&e->set + j->offset));
        bool enabled = e->set.schedule.enabled && !str_empty(line);
        pthread_rwlock_unlock(&e->cfg_lock);
        struct cron_expr expr;
        char *cerr = NULL;
        if (enabled && cron_parse(line, &expr, &cerr) != 0) {
            log_warn("schedule.%s: %s; job disabled", j->name, cerr);
            free(cerr);
            enabled = false;
        }
        int row = -1;
        for (int i = 0; i < PQntuples(r); i++)
            if (str_eq(PQgetvalue(r, i, 0), j->name))
                row = i;
        bool db_enabled = row >= 0 && PQgetvalue(r, row, 2)[0] == 't';
        long long next = row >= 0 ? atoll(PQgetvalue(r, row, 3)) : 0;
        bool changed = row < 0 || !str_eq(PQgetvalue(r, row, 1), line) || db_enabled != enabled ||
                       (enabled && next == 0);
        if (changed) {
            long long nn = enabled ? (long long)cron_next(&expr, now) : 0;
            char ns[24];
            snprintf(ns, sizeof ns, "%lld", nn);
            const char *p[] = {j->name, line, enabled ? "true" : "false", nn > 0 ? ns : NULL};
            if (db_cmd(c,
                       "INSERT INTO tds.schedules (name, cron, enabled, next_run_at)"
                       " VALUES ($1, $2, $3::boolean, to_timestamp($4::bigint))"
                       " ON CONFLICT (name) DO UPDATE SET cron = EXCLUDED.cron,"
                       " enabled = EXCLUDED.enabled, next_run_at = EXCLUDED.next_run_at,"
                       " updated_at = now()",
                       4, p, &err) != 0) {
                log_warn("scheduler: %s", err);
                free(err);
                err = NULL;
            }
            free(line);
            continue; /* a fresh or changed job waits for its first slot */
        }
        free(line);
        if (!enabled || next == 0 || next > (long long)now)
            continue;
        time_t nn = cron_next(&expr, now);
        if (nn == (time_t)-1)
            continue;
        if (fire(e, c, j, next, (long long)nn) < 0 && PQstatus(c) != CONNECTION_OK)
            break;
    }
    PQclear(r);
}
