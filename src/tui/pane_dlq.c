/*
 * pane_dlq.c: the dead-letter queue: open items newest first (entity, Zoho
 * id, reason, attempts, age), or grouped (g) by failure reason and entity
 * over 1 h / 24 h / 7 d (w), from where a whole group is retried or
 * discarded.  Enter shows the error history and the payload; r retries; E
 * edits the payload in $EDITOR and retries; x discards with a reason.
 * Here "g" is the grouped view; Home goes to the first row.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tui_internal.h"

static const struct tui_column cols[] = {
    {"ID", "id", 8, true, 0},
    {"ENTITY", "entity_type", 13, false, 0},
    {"ZOHO ID", "zoho_id", 14, false, 0},
    {"OP", "operation", 6, false, 100},
    {"REASON", "failure_reason", 0, false, 0},
    {"ATT", "attempts", 3, true, 0},
    {"AGE", "created", 7, true, 0},
};

static const struct tui_column gcols[] = {
    {"COUNT", "n", 7, true, 0},
    {"ENTITY", "entity_type", 13, false, 0},
    {"FAILURE REASON", "reason", 0, false, 0},
    {"FIRST", "first", 8, true, 0},
    {"LAST", "last", 8, true, 0},
};

static enum tui_role cell(struct tui *t, const struct tui_rs *rs, int row, int col, char *buf,
                          size_t n)
{
    if (col == 6) {
        tui_fmt_age(buf, n, t->now - tui_rs_ll(rs, row, "created"));
        return ROLE_DIM;
    }
    snprintf(buf, n, "%s", tui_rs_get(rs, row, cols[col].field));
    return col == 4 ? ROLE_ERROR : ROLE_NORMAL;
}

static enum tui_role gcell(struct tui *t, const struct tui_rs *rs, int row, int col, char *buf,
                           size_t n)
{
    if (col == 0) {
        tui_fmt_count(buf, n, tui_rs_ll(rs, row, "n"));
        return ROLE_WARN;
    }
    if (col >= 3) {
        tui_fmt_age(buf, n, t->now - tui_rs_ll(rs, row, gcols[col].field));
        return ROLE_DIM;
    }
    snprintf(buf, n, "%s", tui_rs_get(rs, row, gcols[col].field));
    return col == 2 ? ROLE_ERROR : ROLE_NORMAL;
}

static void open_(struct tui *t, struct pane *p)
{
    (void)t;
    tui_table_init(&p->table, cols, (int)TDS_ARRAY_LEN(cols), "id", cell);
    /* Groups have no id: the row number stands in (selection by position). */
    tui_table_init(&p->table2, gcols, (int)TDS_ARRAY_LEN(gcols), "n", gcell);
    p->dlq_hours = 24;
}

static void close_(struct tui *t, struct pane *p)
{
    (void)t;
    tui_table_free(&p->table);
    tui_table_free(&p->table2);
}

static void on_data(struct tui *t, struct pane *p, const struct tui_snapshot *s)
{
    (void)t;
    tui_table_set_rs(&p->table, s->rs[TQ_DLQ]);
    tui_table_set_rs(&p->table2, s->rs[TQ_DLQGROUPS]);
}

static const char *window_name(int hours)
{
    return hours <= 1 ? "1h" : hours <= 24 ? "24h" : "7d";
}

static void draw(struct tui *t, struct pane *p, int y, int x, int h, int w)
{
    if (!p->dlq_grouped) {
        tui_table_draw(t, &p->table, y, x, h, w);
        return;
    }
    char head[128];
    snprintf(head, sizeof head, "Open dead-letter items by failure reason and entity, last %s"
             "  (w: window, r: retry group, x: discard group, g: back)",
             window_name(p->dlq_hours));
    tui_put(y, x + 1, head, w - 1, tui_attr(ROLE_DIM), true);
    tui_table_draw(t, &p->table2, y + 1, x, h - 1, w);
}

static bool group_op(struct tui *t, struct pane *p, enum tui_op opk)
{
    int row = tui_table_sel_row(&p->table2);
    const struct tui_rs *rs = p->table2.rs;
    if (row < 0) {
        tui_message(t, ROLE_WARN, "no group selected");
        return true;
    }
    struct tui_op_req *op = xcalloc(1, sizeof *op);
    op->op = opk;
    op->group_reason = xstrdup(tui_rs_get(rs, row, "reason"));
    op->entity = xstrdup(tui_rs_get(rs, row, "entity_type"));
    op->hours = p->dlq_hours;
    op->expect = tui_rs_ll(rs, row, "n");
    char cnt[32];
    tui_fmt_count(cnt, sizeof cnt, op->expect);
    if (opk == OP_DLQ_GROUP_RETRY) {
        tui_confirm(t, op, "Retry %s %s item%s failing with \"%.60s\" (last %s)?", cnt, op->entity,
                    op->expect == 1 ? "" : "s", op->group_reason, window_name(p->dlq_hours));
    } else {
        char q[200];
        snprintf(q, sizeof q, "Discard %s %s item%s (last %s). Reason: ", cnt, op->entity,
                 op->expect == 1 ? "" : "s", window_name(p->dlq_hours));
        tui_ask_reason(t, op, q);
    }
    return true;
}

static bool key(struct tui *t, struct pane *p, enum tui_action a)
{
    char what[160];
    struct tui_op_req *op = NULL;
    struct tui_table *tb = p->dlq_grouped ? &p->table2 : &p->table;
    switch (a) {
    case ACT_DLQ_GROUPS:
        p->dlq_grouped = !p->dlq_grouped;
        tui_refresh(t);
        return true;
    case ACT_DLQ_WINDOW:
        p->dlq_hours = p->dlq_hours <= 1 ? 24 : p->dlq_hours <= 24 ? 168 : 1;
        if (!p->dlq_grouped)
            p->dlq_grouped = true;
        tui_message(t, ROLE_MESSAGE, "grouped view: last %s", window_name(p->dlq_hours));
        tui_refresh(t);
        return true;
    case ACT_OPEN:
        if (p->dlq_grouped) { /* a group opens as the list filtered to it */
            int row = tui_table_sel_row(&p->table2);
            if (row >= 0) {
                free(p->entity);
                free(p->text);
                p->entity = xstrdup(tui_rs_get(p->table2.rs, row, "entity_type"));
                p->text = xstrdup(tui_rs_get(p->table2.rs, row, "reason"));
                p->dlq_grouped = false;
                tui_refresh(t);
            }
        } else if (tui_table_sel_id(&p->table)) {
            tui_open_detail(t, DETAIL_DLQ, tui_table_sel_id(&p->table));
        }
        return true;
    case ACT_RETRY:
        if (p->dlq_grouped)
            return group_op(t, p, OP_DLQ_GROUP_RETRY);
        op = tui_targets(t, p, &p->table, OP_DLQ_RETRY, "dead-letter item", what, sizeof what);
        if (op)
            tui_confirm(t, op, "Retry %s?", what);
        return true;
    case ACT_DISCARD:
        if (p->dlq_grouped)
            return group_op(t, p, OP_DLQ_GROUP_DISCARD);
        op = tui_targets(t, p, &p->table, OP_DLQ_DISCARD, "dead-letter item", what, sizeof what);
        if (op) {
            char q[200];
            snprintf(q, sizeof q, "Discard %s. Reason: ", what);
            tui_ask_reason(t, op, q);
        }
        return true;
    case ACT_DLQ_EDIT:
        if (p->dlq_grouped || tui_table_sel_id(&p->table) == 0) {
            tui_message(t, ROLE_WARN, "select one dead-letter item to edit");
            return true;
        }
        t->want_edit = true;
        tui_open_detail(t, DETAIL_DLQ_PAYLOAD, tui_table_sel_id(&p->table));
        tui_message(t, ROLE_MESSAGE, "reading the payload...");
        return true;
    case ACT_MARK:
    case ACT_MARK_FILTER:
        if (p->dlq_grouped) {
            tui_message(t, ROLE_WARN, "in the grouped view, r and x act on the selected group");
            return true;
        }
        return false;
    case ACT_UP:
    case ACT_DOWN:
    case ACT_PGUP:
    case ACT_PGDN:
    case ACT_TOP:
    case ACT_BOTTOM:
    case ACT_SORT:
    case ACT_SORT_REV:
        return tui_table_key(t, tb, a);
    default:
        return false;
    }
}

static void summary(struct tui *t, struct pane *p, char *buf, size_t n)
{
    (void)t;
    if (p->dlq_grouped)
        snprintf(buf, n, "grouped, last %s", window_name(p->dlq_hours));
    else
        snprintf(buf, n, "entity: %s", p->entity ? p->entity : "any");
}

const struct pane_ops pane_dlq_ops = {
    .name = "dlq",
    .title = "DLQ",
    .open = open_,
    .close = close_,
    .on_data = on_data,
    .draw = draw,
    .key = key,
    .summary = summary,
};
