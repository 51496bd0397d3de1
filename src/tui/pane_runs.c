/*
 * pane_runs.c: sync runs, newest first: type, entity, trigger, status,
 * progress, counts, duration in words, start.  Filter by status (f) and
 * entity (e); Enter opens the run (configuration, statistics, rate, error,
 * its events); s starts a sync through the dialog; c cancels.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tui_internal.h"

static const struct tui_column cols[] = {
    {"ID", "id", 6, true, 0},
    {"TYPE", "run_type", 11, false, 0},
    {"ENTITY", "entity_type", 0, false, 0},
    {"TRIGGER", "trigger", 8, false, 100},
    {"STATUS", "status", 11, false, 0},
    {"PROGRESS", NULL, 10, false, 0},
    {"OK", "succeeded", 7, true, 0},
    {"FAILED", "failed", 6, true, 0},
    {"UNCHANGED", "unchanged", 9, true, 100},
    {"DURATION", NULL, 16, false, 90},
    {"STARTED", "started", 14, false, 120},
};

static enum tui_role cell(struct tui *t, const struct tui_rs *rs, int row, int col, char *buf,
                          size_t n)
{
    switch (col) {
    case 2:
        snprintf(buf, n, "%s", tui_rs_isnull(rs, row, "entity_type") ? "(all)"
                                                                     : tui_rs_get(rs, row, "entity_type"));
        return ROLE_NORMAL;
    case 4:
        snprintf(buf, n, "%s", tui_rs_get(rs, row, "status"));
        return tui_status_role(buf);
    case 5: {
        long long exp = tui_rs_ll(rs, row, "expected_total");
        long long done = tui_rs_ll(rs, row, "succeeded") + tui_rs_ll(rs, row, "failed") +
                         tui_rs_ll(rs, row, "unchanged");
        if (exp <= 0) {
            char c[24];
            tui_fmt_count(c, sizeof c, done);
            snprintf(buf, n, "%s", c);
            return ROLE_DIM;
        }
        int pct = (int)(done * 100 / exp);
        if (pct > 100)
            pct = 100;
        int full = pct / 20;
        buf[0] = 0;
        for (int i = 0; i < 5; i++)
            strncat(buf, i < full ? tui_g.bar_full : tui_g.bar_empty, n - strlen(buf) - 1);
        char p[16];
        snprintf(p, sizeof p, " %3d%%", pct);
        strncat(buf, p, n - strlen(buf) - 1);
        return ROLE_INFO;
    }
    case 6:
    case 7:
    case 8:
        tui_fmt_count(buf, n, tui_rs_ll(rs, row, cols[col].field));
        return col == 7 && tui_rs_ll(rs, row, "failed") > 0 ? ROLE_ERROR : ROLE_NORMAL;
    case 9: {
        long long st = tui_rs_ll(rs, row, "started");
        if (st <= 0) {
            snprintf(buf, n, "-");
            return ROLE_DIM;
        }
        long long end = tui_rs_isnull(rs, row, "finished") ? t->now : tui_rs_ll(rs, row, "finished");
        tui_fmt_duration_words(buf, n, end - st);
        return ROLE_NORMAL;
    }
    case 10: {
        char full[32];
        tui_fmt_time(full, sizeof full, tui_rs_ll(rs, row, "started"));
        snprintf(buf, n, "%s", strlen(full) > 5 ? full + 5 : full); /* MM-DD HH:MM:SS */
        if (strlen(buf) > 11)
            buf[11] = 0;
        return ROLE_DIM;
    }
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
    tui_table_set_rs(&p->table, s->rs[TQ_RUNS]);
}

static void draw(struct tui *t, struct pane *p, int y, int x, int h, int w)
{
    tui_table_draw(t, &p->table, y, x, h, w);
}

static bool key(struct tui *t, struct pane *p, enum tui_action a)
{
    static const char *const statuses[] = {"pending", "running", "completed", "failed",
                                           "cancelled", "interrupted", NULL};
    switch (a) {
    case ACT_OPEN:
        if (tui_table_sel_id(&p->table))
            tui_open_detail(t, DETAIL_RUN, tui_table_sel_id(&p->table));
        return true;
    case ACT_SYNC:
        tui_sync_dialog(t, p->entity);
        return true;
    case ACT_STATUS_FILTER: {
        const char *const *v = statuses;
        const char *next = v[0];
        for (int i = 0; v[i]; i++)
            if (p->status && strcmp(p->status, v[i]) == 0)
                next = v[i + 1];
        free(p->status);
        p->status = next ? xstrdup(next) : NULL;
        tui_refresh(t);
        return true;
    }
    case ACT_RUN_CANCEL: {
        char what[128];
        struct tui_op_req *op = tui_targets(t, p, &p->table, OP_RUN_CANCEL, "run", what, sizeof what);
        if (op)
            tui_confirm(t, op, "Cancel %s?", what);
        return true;
    }
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

const struct pane_ops pane_runs_ops = {
    .name = "runs",
    .title = "Runs",
    .open = open_,
    .close = close_,
    .on_data = on_data,
    .draw = draw,
    .key = key,
    .summary = summary,
};
