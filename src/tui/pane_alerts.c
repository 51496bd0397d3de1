/*
 * pane_alerts.c: alerts, most recent first, severity in colour: type,
 * title, occurrences, first and last seen, acknowledged by.  f cycles what
 * is shown (open, unacknowledged, by severity, all); a acknowledges the
 * selected or marked alerts; A every alert matching the filter.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tui_internal.h"

static const struct tui_column cols[] = {
    {"SEVERITY", "severity", 8, false, 0},
    {"TYPE", "alert_type", 16, false, 100},
    {"TITLE", "title", 0, false, 0},
    {"OCC", "occurrences", 5, true, 0},
    {"FIRST", "first_seen", 7, true, 100},
    {"LAST", "last_seen", 7, true, 0},
    {"ACKED BY", "acknowledged_by", 14, false, 0},
};

static enum tui_role cell(struct tui *t, const struct tui_rs *rs, int row, int col, char *buf,
                          size_t n)
{
    switch (col) {
    case 0:
        snprintf(buf, n, "%s", tui_rs_get(rs, row, "severity"));
        return tui_status_role(buf);
    case 4:
    case 5:
        tui_fmt_age(buf, n, t->now - tui_rs_ll(rs, row, cols[col].field));
        return ROLE_DIM;
    case 6:
        if (!tui_rs_isnull(rs, row, "resolved")) {
            snprintf(buf, n, "(resolved)");
            return ROLE_OK;
        }
        snprintf(buf, n, "%s", tui_rs_isnull(rs, row, "acknowledged_by")
                                   ? "-"
                                   : tui_rs_get(rs, row, "acknowledged_by"));
        return ROLE_DIM;
    default:
        snprintf(buf, n, "%s", tui_rs_get(rs, row, cols[col].field));
        return ROLE_NORMAL;
    }
}

static void open_(struct tui *t, struct pane *p)
{
    (void)t;
    tui_table_init(&p->table, cols, (int)TDS_ARRAY_LEN(cols), "id", cell);
}

static void close_(struct tui *t, struct pane *p)
{
    (void)t;
    tui_table_free(&p->table);
}

static void on_data(struct tui *t, struct pane *p, const struct tui_snapshot *s)
{
    (void)t;
    tui_table_set_rs(&p->table, s->rs[TQ_ALERTS]);
}

static void draw(struct tui *t, struct pane *p, int y, int x, int h, int w)
{
    tui_table_draw(t, &p->table, y, x, h, w);
}

static bool key(struct tui *t, struct pane *p, enum tui_action a)
{
    static const char *const shows[] = {"unacknowledged", "critical", "error", "warning",
                                        "info", "all", NULL};
    char what[160];
    switch (a) {
    case ACT_OPEN:
        if (tui_table_sel_id(&p->table))
            tui_open_detail(t, DETAIL_ALERT, tui_table_sel_id(&p->table));
        return true;
    case ACT_STATUS_FILTER: {
        const char *next = shows[0];
        for (int i = 0; shows[i]; i++)
            if (p->status && strcmp(p->status, shows[i]) == 0)
                next = shows[i + 1];
        free(p->status);
        p->status = next ? xstrdup(next) : NULL; /* NULL: open */
        tui_refresh(t);
        return true;
    }
    case ACT_ACK: {
        struct tui_op_req *op = tui_targets(t, p, &p->table, OP_ALERT_ACK, "alert", what, sizeof what);
        if (op)
            tui_confirm(t, op, "Acknowledge %s?", what);
        return true;
    }
    case ACT_ACK_ALL: {
        tui_table_clear_marks(&p->table);
        p->table.mark_filter = true;
        struct tui_op_req *op =
            tui_targets(t, p, &p->table, OP_ALERT_ACK_ALL, "alert", what, sizeof what);
        p->table.mark_filter = false;
        if (op)
            tui_confirm(t, op, "Acknowledge %s?", what);
        return true;
    }
    default:
        return false;
    }
}

static void summary(struct tui *t, struct pane *p, char *buf, size_t n)
{
    (void)t;
    snprintf(buf, n, "showing: %s", p->status ? p->status : "open");
}

const struct pane_ops pane_alerts_ops = {
    .name = "alerts",
    .title = "Alerts",
    .open = open_,
    .close = close_,
    .on_data = on_data,
    .draw = draw,
    .key = key,
    .summary = summary,
};
