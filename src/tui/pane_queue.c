/*
 * pane_queue.c: the work queue, newest first (active items by default):
 * entity, Zoho id, operation, priority, status, attempts, next attempt, age,
 * last error.  Filter by status (f), entity (e) and text (/); Enter shows
 * the payload as indented JSON; r retries now, + and - change the priority,
 * d moves to the dead-letter queue.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tui_internal.h"

static const struct tui_column cols[] = {
    {"ID", "id", 7, true, 0},
    {"ENTITY", "entity_type", 10, false, 0},
    {"ZOHO ID", "zoho_id", 12, false, 0},
    {"OP", "operation", 6, false, 100},
    {"PRI", "priority", 3, true, 0},
    {"STATUS", "status", 10, false, 0},
    {"ATT", NULL, 4, true, 0},
    {"NEXT", "next_attempt", 8, false, 100},
    {"AGE", "created", 6, true, 0},
    {"LAST ERROR", "last_error", 0, false, 0},
};

static enum tui_role cell(struct tui *t, const struct tui_rs *rs, int row, int col, char *buf,
                          size_t n)
{
    switch (col) {
    case 5:
        snprintf(buf, n, "%s", tui_rs_get(rs, row, "status"));
        return tui_status_role(buf);
    case 6:
        snprintf(buf, n, "%lld/%lld", tui_rs_ll(rs, row, "attempts"),
                 tui_rs_ll(rs, row, "max_attempts"));
        return tui_rs_ll(rs, row, "attempts") > 0 ? ROLE_WARN : ROLE_NORMAL;
    case 7: {
        const char *st = tui_rs_get(rs, row, "status");
        if (strcmp(st, "pending") != 0 && strcmp(st, "retry") != 0) {
            snprintf(buf, n, "-");
            return ROLE_DIM;
        }
        long long d = tui_rs_ll(rs, row, "next_attempt") - t->now;
        if (d <= 0)
            snprintf(buf, n, "now");
        else {
            char a[16];
            tui_fmt_age(a, sizeof a, d);
            snprintf(buf, n, "in %s", a);
        }
        return ROLE_NORMAL;
    }
    case 8:
        tui_fmt_age(buf, n, t->now - tui_rs_ll(rs, row, "created"));
        return ROLE_DIM;
    case 9:
        snprintf(buf, n, "%s", tui_rs_get(rs, row, "last_error"));
        return ROLE_ERROR;
    default:
        snprintf(buf, n, "%s", tui_rs_get(rs, row, cols[col].field));
        return ROLE_NORMAL;
    }
}

static void open_(struct tui *t, struct pane *p)
{
    (void)t;
    tui_table_init(&p->table, cols, (int)TDS_ARRAY_LEN(cols), "id", cell);
    p->status = xstrdup("active");
}

static void close_(struct tui *t, struct pane *p)
{
    (void)t;
    tui_table_free(&p->table);
}

static void on_data(struct tui *t, struct pane *p, const struct tui_snapshot *s)
{
    (void)t;
    tui_table_set_rs(&p->table, s->rs[TQ_QUEUE]);
}

static void draw(struct tui *t, struct pane *p, int y, int x, int h, int w)
{
    tui_table_draw(t, &p->table, y, x, h, w);
}

static bool key(struct tui *t, struct pane *p, enum tui_action a)
{
    static const char *const statuses[] = {"active", "pending", "processing", "retry",
                                           "completed", "dead", NULL};
    char what[160];
    struct tui_op_req *op = NULL;
    switch (a) {
    case ACT_OPEN:
        if (tui_table_sel_id(&p->table))
            tui_open_detail(t, DETAIL_QUEUE, tui_table_sel_id(&p->table));
        return true;
    case ACT_STATUS_FILTER: {
        const char *next = statuses[0];
        for (int i = 0; statuses[i]; i++)
            if (p->status && strcmp(p->status, statuses[i]) == 0)
                next = statuses[i + 1];
        free(p->status);
        p->status = next ? xstrdup(next) : NULL;
        tui_refresh(t);
        return true;
    }
    case ACT_RETRY:
        op = tui_targets(t, p, &p->table, OP_QUEUE_RETRY, "queue item", what, sizeof what);
        if (op)
            tui_confirm(t, op, "Retry %s now?", what);
        return true;
    case ACT_PRIO_UP:
    case ACT_PRIO_DOWN:
        op = tui_targets(t, p, &p->table, a == ACT_PRIO_UP ? OP_QUEUE_PRIO_UP : OP_QUEUE_PRIO_DOWN,
                         "queue item", what, sizeof what);
        if (op)
            tui_confirm(t, op, "%s the priority of %s?", a == ACT_PRIO_UP ? "Raise" : "Lower", what);
        return true;
    case ACT_TO_DLQ:
        op = tui_targets(t, p, &p->table, OP_QUEUE_TO_DLQ, "queue item", what, sizeof what);
        if (op) {
            char q[200];
            snprintf(q, sizeof q, "Move %s to the dead-letter queue. Reason: ", what);
            tui_ask_reason(t, op, q);
        }
        return true;
    default:
        return false;
    }
}

static void summary(struct tui *t, struct pane *p, char *buf, size_t n)
{
    (void)t;
    snprintf(buf, n, "status: %s  entity: %s", p->status ? p->status : "any",
             p->entity ? p->entity : "any");
}

const struct pane_ops pane_queue_ops = {
    .name = "queue",
    .title = "Queue",
    .open = open_,
    .close = close_,
    .on_data = on_data,
    .draw = draw,
    .key = key,
    .summary = summary,
};
