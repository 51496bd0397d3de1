/*
 * dlq.c: the dead-letter queue (tds.dead_letter): retry one, retry many,
 * discard, and the janitor's one-time automatic retry.  A retried row is
 * resolved as 'retried' and its payload queued again with fresh attempts;
 * when the record already has a pending item, that newer item is kept.
 */
#include <stdio.h>
#include <stdlib.h>

#include "engine_internal.h"
#include "tds/db.h"
#include "tds/log.h"
#include "tds/queue.h"

/* Requeues the rows of CTE d (DISTINCT per record, newest first).  $auto: auto_retry flag. */
#define REQUEUE_FROM_D(AUTO)                                                                       \
    " q AS (INSERT INTO tds.sync_queue (entity_type, zoho_id, operation, payload, priority,"       \
    "   auto_retry)"                                                                               \
    " SELECT DISTINCT ON (entity_type, zoho_id) entity_type, zoho_id, operation, payload, "        \
    "5, " AUTO " FROM d ORDER BY entity_type, zoho_id, id DESC"                                    \
    " ON CONFLICT (entity_type, zoho_id) WHERE status = 'pending' DO UPDATE SET"                   \
    "   updated_at = tds.sync_queue.updated_at RETURNING id)"

int dlq_retry(PGconn *c, long long id, const char *who, long long *queue_id, char **err)
{
    char ids[24];
    snprintf(ids, sizeof ids, "%lld", id);
    const char *p[] = {ids, str_empty(who) ? "unknown" : who};
    PGresult *r = db_exec(c,
                          "WITH d AS (UPDATE tds.dead_letter SET resolved = true,"
                          " resolution = 'retried', resolved_at = now(), resolved_by = $2"
                          " WHERE id = $1::bigint AND NOT resolved RETURNING *)," REQUEUE_FROM_D(
                              "false") " SELECT q.id, pg_notify('tds_queue', '') FROM q",
                          2, p, err);
    if (r == NULL)
        return -1;
    int n = PQntuples(r);
    if (n > 0 && queue_id)
        *queue_id = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    if (n == 0) {
        if (err)
            *err = xasprintf("dead-letter item %lld does not exist or is already resolved", id);
        return -1;
    }
    return 0;
}

int dlq_retry_matching(PGconn *c, const char *entity_type, const char *reason_substr,
                       const char *who, long long *count, char **err)
{
    const char *p[] = {str_empty(entity_type) ? NULL : entity_type,
                       str_empty(reason_substr) ? NULL : reason_substr,
                       str_empty(who) ? "unknown" : who};
    PGresult *r = db_exec(
        c,
        "WITH d AS (UPDATE tds.dead_letter SET resolved = true, resolution = 'retried',"
        " resolved_at = now(), resolved_by = $3"
        " WHERE NOT resolved AND ($1::text IS NULL OR entity_type = $1)"
        " AND ($2::text IS NULL OR strpos(lower(failure_reason), lower($2)) > 0) RETURNING "
        "*)," REQUEUE_FROM_D("false") " SELECT (SELECT count(*) FROM d), (SELECT count(*) FROM q)",
        3, p, err);
    if (r == NULL)
        return -1;
    *count = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    if (*count > 0)
        PQclear(PQexec(c, "NOTIFY tds_queue"));
    return 0;
}

int dlq_discard(PGconn *c, long long id, const char *who, const char *reason, char **err)
{
    char ids[24];
    snprintf(ids, sizeof ids, "%lld", id);
    const char *p[] = {ids, str_empty(who) ? "unknown" : who, reason};
    PGresult *r = db_exec(c,
                          "UPDATE tds.dead_letter SET resolved = true, resolution = 'discarded',"
                          " resolved_at = now(), resolved_by = $2, resolution_note = $3"
                          " WHERE id = $1::bigint AND NOT resolved",
                          3, p, err);
    if (r == NULL)
        return -1;
    int n = atoi(PQcmdTuples(r));
    PQclear(r);
    if (n == 0) {
        if (err)
            *err = xasprintf("dead-letter item %lld does not exist or is already resolved", id);
        return -1;
    }
    return 0;
}

int dlq_auto_retry(PGconn *c, int hours, long long *count, char **err)
{
    *count = 0;
    if (hours <= 0)
        return 0;
    char hs[16];
    snprintf(hs, sizeof hs, "%d", hours);
    const char *p[] = {hs};
    PGresult *r = db_exec(
        c,
        "WITH d AS (UPDATE tds.dead_letter SET resolved = true, resolution = 'retried',"
        " resolved_at = now(), resolved_by = 'janitor (automatic retry)', auto_retried_at = now()"
        " WHERE id IN (SELECT id FROM tds.dead_letter WHERE NOT resolved"
        "   AND auto_retried_at IS NULL AND created_at < now() - make_interval(hours => $1::int)"
        "   ORDER BY id LIMIT 1000 FOR UPDATE SKIP LOCKED) RETURNING *)," REQUEUE_FROM_D(
            "true") " SELECT (SELECT count(*) FROM d), (SELECT count(*) FROM q)",
        1, p, err);
    if (r == NULL)
        return -1;
    *count = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    if (*count > 0)
        PQclear(PQexec(c, "NOTIFY tds_queue"));
    return 0;
}
