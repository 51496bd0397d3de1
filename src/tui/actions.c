/*
 * actions.c: what the console's keys do to shared state.  Every operation
 * goes through the engine's own functions (queue.h, runs.h, alerts.h,
 * engine.h): the console never writes queue, DLQ, run or alert SQL of its
 * own; it only reads which ids a filter matches.  Each operation is written
 * to tds.audit (audit.h) with the OS user, SSH_CONNECTION, host and
 * instance.  Runs on the console's data thread, never on the UI thread.
 */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tds/alerts.h"
#include "tds/audit.h"
#include "tds/db.h"
#include "tds/engine.h"
#include "tds/queue.h"
#include "tds/runs.h"
#include "tui_internal.h"

static const char *op_names[] = {
    [OP_QUEUE_RETRY] = "queue.retry_now",     [OP_QUEUE_PRIO_UP] = "queue.priority_up",
    [OP_QUEUE_PRIO_DOWN] = "queue.priority_down", [OP_QUEUE_TO_DLQ] = "queue.move_to_dlq",
    [OP_DLQ_RETRY] = "dlq.retry",             [OP_DLQ_DISCARD] = "dlq.discard",
    [OP_DLQ_EDIT_RETRY] = "dlq.edit_retry",   [OP_DLQ_GROUP_RETRY] = "dlq.group_retry",
    [OP_DLQ_GROUP_DISCARD] = "dlq.group_discard", [OP_RUN_START] = "run.request",
    [OP_RUN_CANCEL] = "run.cancel",           [OP_ALERT_ACK] = "alert.ack",
    [OP_ALERT_ACK_ALL] = "alert.ack_all",     [OP_PAUSE] = "fleet.pause",
    [OP_RESUME] = "fleet.resume",
};

const char *tui_op_name(enum tui_op op)
{
    return (unsigned)op < TDS_ARRAY_LEN(op_names) ? op_names[op] : "?";
}

/* The pane whose rows an operation acts on. */
static enum tui_pane_id op_pane(enum tui_op op)
{
    switch (op) {
    case OP_QUEUE_RETRY:
    case OP_QUEUE_PRIO_UP:
    case OP_QUEUE_PRIO_DOWN:
    case OP_QUEUE_TO_DLQ:
        return PANE_QUEUE;
    case OP_DLQ_RETRY:
    case OP_DLQ_DISCARD:
    case OP_DLQ_EDIT_RETRY:
    case OP_DLQ_GROUP_RETRY:
    case OP_DLQ_GROUP_DISCARD:
        return PANE_DLQ;
    case OP_RUN_CANCEL:
    case OP_RUN_START:
        return PANE_RUNS;
    default:
        return PANE_ALERTS;
    }
}

/* Reads the ids an operation targets when it goes by filter or by DLQ
 * group: a read-only query (the console's own), bounded by the cap. */
static int resolve_ids(PGconn *c, const struct tui_op_req *r, long long **ids, size_t *n,
                       char **err)
{
    static const char *tables[PANE_N] = {
        [PANE_RUNS] = "tds.sync_runs", [PANE_QUEUE] = "tds.sync_queue",
        [PANE_DLQ] = "tds.dead_letter", [PANE_ALERTS] = "tds.alerts", [PANE_EVENTS] = "tds.events"};
    PGresult *res;
    char cap[16];
    snprintf(cap, sizeof cap, "%d", TUI_COUNT_CAP + 1);
    if (r->op == OP_DLQ_GROUP_RETRY || r->op == OP_DLQ_GROUP_DISCARD) {
        char hours[16];
        snprintf(hours, sizeof hours, "%d", r->hours);
        const char *p[] = {r->group_reason, r->entity, hours, cap};
        res = db_exec(c,
                      "SELECT id FROM tds.dead_letter WHERE NOT resolved AND failure_reason = $1"
                      " AND entity_type = $2 AND created_at > now() - make_interval(hours => $3::int)"
                      " ORDER BY id LIMIT $4::int",
                      4, p, err);
    } else {
        enum tui_pane_id pane = op_pane(r->op);
        const char *params[10];
        struct strbuf sb = {0};
        strbuf_printf(&sb, "SELECT id FROM %s", tables[pane]);
        int np = tui_filter_where(pane, &r->filter, 1, &sb, params);
        strbuf_printf(&sb, " ORDER BY id LIMIT $%d::int", np + 1);
        params[np] = cap;
        res = db_exec(c, sb.buf, np + 1, params, err);
        strbuf_free(&sb);
    }
    if (res == NULL)
        return -1;
    *n = (size_t)PQntuples(res);
    *ids = xcalloc(*n + 1, sizeof **ids);
    for (size_t i = 0; i < *n; i++)
        (*ids)[i] = strtoll(PQgetvalue(res, (int)i, 0), NULL, 10);
    PQclear(res);
    return 0;
}

/* One target of a per-id operation.  0 or -1 with *err. */
static int apply_one(PGconn *c, const struct tui_op_req *r, long long id, const char *who,
                     char **err)
{
    switch (r->op) {
    case OP_QUEUE_RETRY:
        return queue_retry_now(c, id, err);
    case OP_QUEUE_PRIO_UP:
    case OP_QUEUE_PRIO_DOWN: {
        char ids[24];
        snprintf(ids, sizeof ids, "%lld", id);
        const char *p[] = {ids};
        PGresult *res = db_exec(c, "SELECT priority FROM tds.sync_queue WHERE id = $1::bigint", 1,
                                p, err);
        if (res == NULL)
            return -1;
        if (PQntuples(res) == 0) {
            PQclear(res);
            *err = xasprintf("queue item %lld does not exist", id);
            return -1;
        }
        int prio = atoi(PQgetvalue(res, 0, 0)) + (r->op == OP_QUEUE_PRIO_UP ? 1 : -1);
        PQclear(res);
        if (prio < 1 || prio > 10) {
            *err = xasprintf("queue item %lld: priority stays within 1-10", id);
            return -1;
        }
        return queue_set_priority(c, id, prio, err);
    }
    case OP_QUEUE_TO_DLQ:
        return queue_move_to_dlq(c, id, who, r->reason ? r->reason : "moved from the console",
                                 err);
    case OP_DLQ_RETRY:
    case OP_DLQ_GROUP_RETRY:
        return dlq_retry(c, id, who, NULL, err);
    case OP_DLQ_DISCARD:
    case OP_DLQ_GROUP_DISCARD:
        return dlq_discard(c, id, who, r->reason ? r->reason : "discarded from the console", err);
    case OP_RUN_CANCEL:
        return runs_cancel(c, id, who, err);
    case OP_ALERT_ACK:
    case OP_ALERT_ACK_ALL:
        return alerts_ack(c, id, who, err);
    default:
        *err = xstrdup("not a per-item operation");
        return -1;
    }
}

/* Edit and retry: requeue the dead-letter row, then fold the edited payload
 * into the pending item (queue_enqueue: newest payload wins), in one
 * transaction so the old payload never runs. */
static int edit_retry(PGconn *c, const struct tui_op_req *r, const char *who, char **err)
{
    if (r->nids != 1 || r->payload == NULL) {
        *err = xstrdup("edit and retry needs one item and a payload");
        return -1;
    }
    char ids[24];
    snprintf(ids, sizeof ids, "%lld", r->ids[0]);
    const char *p[] = {ids};
    if (db_begin(c, err) != 0)
        return -1;
    PGresult *res = db_exec(c,
                            "SELECT entity_type, zoho_id, operation FROM tds.dead_letter"
                            " WHERE id = $1::bigint AND NOT resolved",
                            1, p, err);
    if (res == NULL)
        goto fail;
    if (PQntuples(res) == 0) {
        PQclear(res);
        *err = xasprintf("dead-letter item %lld does not exist or is already resolved", r->ids[0]);
        goto fail;
    }
    char *entity = xstrdup(PQgetvalue(res, 0, 0));
    char *zid = xstrdup(PQgetvalue(res, 0, 1));
    enum queue_op qop = QOP_UPSERT;
    bool parsed = queue_op_parse(PQgetvalue(res, 0, 2), &qop);
    (void)parsed;
    PQclear(res);
    int rc = dlq_retry(c, r->ids[0], who, NULL, err);
    if (rc == 0)
        rc = queue_enqueue(c, entity, zid, qop, r->payload, NULL, NULL, err);
    free(entity);
    free(zid);
    if (rc != 0)
        goto fail;
    return db_commit(c, err);
fail:
    db_rollback(c);
    return -1;
}

int tui_action_run(PGconn *c, const char *instance, const struct tui_op_req *r, char **msg)
{
    const char *who = audit_actor("console");
    const char *name = tui_op_name(r->op);
    char *err = NULL;
    struct strbuf detail = {0};
    char target[96] = "";
    int rc = 0;
    long long done = 0, failed = 0;
    char *first_err = NULL;

    switch (r->op) {
    case OP_RUN_START: {
        long long id = 0;
        const char *cfgjson = r->config ? r->config : "{\"source\": \"console\"}";
        struct run_request_info info;
        rc = runs_request_info(c, r->run_type, r->entity, "manual", cfgjson, who, &info, &err);
        if (rc == 0) {
            id = info.id;
            snprintf(target, sizeof target, "sync_runs:%lld", id);
            if (info.joined)
                *msg = xasprintf("%s sync of %s%s is already active: joined run %lld",
                                 r->run_type, r->entity ? r->entity : "every entity",
                                 r->dry_run ? " (dry run)" : "", id);
            else if (info.waits_for != 0)
                *msg = xasprintf("requested %s sync of %s%s: run %lld, waiting for run %lld",
                                 r->run_type, r->entity ? r->entity : "every entity",
                                 r->dry_run ? " (dry run)" : "", id, info.waits_for);
            else
                *msg = xasprintf("requested %s sync of %s%s: run %lld", r->run_type,
                                 r->entity ? r->entity : "every entity",
                                 r->dry_run ? " (dry run)" : "", id);
        }
        cJSON *dj = cJSON_CreateObject();
        cJSON_AddStringToObject(dj, "run_type", r->run_type);
        if (r->entity)
            cJSON_AddStringToObject(dj, "entity", r->entity);
        cJSON *cj = cJSON_Parse(cfgjson);
        if (cj)
            cJSON_AddItemToObject(dj, "config", cj);
        char *ds = cJSON_PrintUnformatted(dj);
        cJSON_Delete(dj);
        strbuf_puts(&detail, ds);
        cJSON_free(ds);
        break;
    }
    case OP_PAUSE:
    case OP_RESUME:
        rc = control_set_paused(c, true, NULL, r->op == OP_PAUSE, who, &err);
        snprintf(target, sizeof target, "control:paused");
        if (rc == 0)
            *msg = xstrdup(r->op == OP_PAUSE ? "fleet paused: engines stop claiming work"
                                             : "fleet resumed");
        break;
    case OP_DLQ_EDIT_RETRY:
        rc = edit_retry(c, r, who, &err);
        snprintf(target, sizeof target, "dead_letter:%lld", r->nids ? r->ids[0] : 0LL);
        if (rc == 0)
            *msg = xasprintf("dead-letter item %lld requeued with the edited payload", r->ids[0]);
        break;
    case OP_ALERT_ACK_ALL:
        if (!r->by_filter && r->nids == 0) {
            int n = 0;
            rc = alerts_ack_all(c, who, &n, &err);
            if (rc == 0)
                *msg = xasprintf("acknowledged %d alert%s", n, n == 1 ? "" : "s");
            snprintf(target, sizeof target, "alerts:all");
            break;
        }
        /* by filter or marked: one by one, below */
        __attribute__((fallthrough));
    default: {
        long long *ids = r->ids;
        size_t n = r->nids;
        long long *owned = NULL;
        bool resolve = r->by_filter || r->op == OP_DLQ_GROUP_RETRY || r->op == OP_DLQ_GROUP_DISCARD;
        if (resolve) {
            if (resolve_ids(c, r, &owned, &n, &err) != 0) {
                rc = -1;
                break;
            }
            ids = owned;
            if ((long long)n != r->expect) {
                err = xasprintf("%zu rows match now, not the %lld you confirmed: nothing done;"
                                " look again and retry",
                                n, r->expect);
                free(owned);
                rc = -1;
                break;
            }
        }
        for (size_t i = 0; i < n; i++) {
            char *e = NULL;
            if (apply_one(c, r, ids[i], who, &e) == 0) {
                done++;
            } else {
                failed++;
                if (first_err == NULL)
                    first_err = e ? e : xstrdup("failed");
                else
                    free(e);
                if (PQstatus(c) != CONNECTION_OK)
                    break;
            }
        }
        if (n == 1)
            snprintf(target, sizeof target, "%s:%lld",
                     op_pane(r->op) == PANE_QUEUE  ? "sync_queue"
                     : op_pane(r->op) == PANE_DLQ  ? "dead_letter"
                     : op_pane(r->op) == PANE_RUNS ? "sync_runs"
                                                   : "alerts",
                     ids[0]);
        else
            snprintf(target, sizeof target, "%zu items", n);
        strbuf_printf(&detail, "{\"ids\": [");
        for (size_t i = 0; i < n && i < 1000; i++)
            strbuf_printf(&detail, "%s%lld", i ? ", " : "", ids[i]);
        strbuf_printf(&detail, "], \"done\": %lld, \"failed\": %lld}", done, failed);
        free(owned);
        if (failed > 0 && done == 0) {
            rc = -1;
            err = first_err;
            first_err = NULL;
        } else if (failed > 0) {
            *msg = xasprintf("%s: %lld done, %lld failed (first: %s)", name, done, failed,
                             first_err);
        } else {
            *msg = xasprintf("%s: %lld done", name, done);
        }
        break;
    }
    }
    free(first_err);
    /* The audit row, whatever happened (a refused action is worth knowing). */
    char *aerr = NULL;
    if (detail.buf == NULL)
        strbuf_puts(&detail, "{}");
    char *full = xasprintf("{\"result\": \"%s\", \"op\": %s}", rc == 0 ? "ok" : "failed",
                           detail.buf);
    if (audit_record(c, instance, name, target[0] ? target : NULL, full, &aerr) != 0) {
        if (rc == 0) {
            free(*msg);
            *msg = xasprintf("done, but the audit row failed: %s", aerr);
        }
        free(aerr);
    }
    free(full);
    strbuf_free(&detail);
    if (rc != 0) {
        *msg = xasprintf("%s failed: %s", name, err ? err : "unknown error");
        free(err);
        return -1;
    }
    return 0;
}
