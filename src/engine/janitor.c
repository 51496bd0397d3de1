/*
 * janitor.c: auto-healing, on the leader only, every janitor interval (and
 * when the auto_heal schedule fires): reclaims expired leases, interrupts
 * runs whose engine stopped heartbeating and resumes interrupted runs,
 * retries old dead-letter items once, prunes what is past its retention
 * (hourly, in bounded batches; queue.c's queue_prune), and
 * evaluates every alert rule.  What it does goes to the log; the runs,
 * queue and alerts it touches write their own events.
 */
#include <stdio.h>
#include <stdlib.h>

#include "engine_internal.h"
#include "tds/alerts.h"
#include "tds/db.h"
#include "tds/log.h"

void janitor_pass(struct engine *e, PGconn *c)
{
    static _Thread_local long long last_prune_ms;
    pthread_rwlock_rdlock(&e->cfg_lock);
    struct tds_config s;
    engine_settings_copy(&s, &e->set);
    pthread_rwlock_unlock(&e->cfg_lock);
    char *err = NULL;
    long long n = 0;

    if (queue_reclaim_expired(c, &n, &err) != 0)
        goto fail;
    if (n > 0)
        log_warn("janitor: reclaimed %lld queue items whose lease expired", n);

    struct runs_heal_result h;
    if (runs_heal(c, s.engine.dead_after_seconds, s.engine.max_resumes, &h, &err) != 0)
        goto fail;
    if (h.interrupted > 0)
        log_warn("janitor: %lld runs interrupted (their engine stopped heartbeating)",
                 h.interrupted);
    if (h.given_up > 0)
        log_error("janitor: %lld runs not resumed: they crashed more than %d engines",
                  h.given_up, s.engine.max_resumes);
    if (h.resumed > 0)
        log_info("janitor: resumed %lld interrupted runs", h.resumed);

    if (dlq_auto_retry(c, s.engine.dlq_auto_retry_after_hours, &n, &err) != 0)
        goto fail;
    if (n > 0)
        log_info("janitor: retried %lld dead-letter items once, automatically", n);

    /* Engines silent for a day are gone: mark them stopped (their alert resolves). */
    if (db_cmd(c,
               "UPDATE tds.engines SET state = 'stopped', stopped_at = heartbeat_at"
               " WHERE state <> 'stopped' AND heartbeat_at < now() - interval '1 day'",
               0, NULL, &err) != 0)
        goto fail;

    /* Retention, hourly; sooner again while a pass left rows behind (each
     * pass is bounded: retention.max_batches statements per table). */
    static _Thread_local bool prune_behind;
    if (last_prune_ms == 0 || prune_behind || time_mono_ms() - last_prune_ms > 3600 * 1000LL) {
        struct prune_policy pp;
        struct prune_result pr;
        prune_policy_from_config(&pp, &s);
        int rc = queue_prune(c, &pp, &pr, &err);
        last_prune_ms = time_mono_ms();
        prune_behind = rc == 0 && pr.more;
        for (int t = 0; t < PRUNE__COUNT; t++)
            if (pr.rows[t] > 0)
                log_info("janitor: pruned %lld %s past their retention", pr.rows[t],
                         prune_table_name((enum prune_table)t));
        if (rc != 0)
            goto fail;
        if (pr.more)
            log_info("janitor: retention left rows for the next pass (%lld statements of at"
                     " most %d rows)",
                     pr.statements, pp.batch_size);
    }

    int firing = 0;
    if (alerts_evaluate(c, &s, &firing, &err) != 0)
        goto fail;
    engine_settings_free(&s);
    return;
fail:
    log_warn("janitor: %s", err ? err : "?");
    free(err);
    engine_settings_free(&s);
}
