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
    static const char *const statuses[] = {"pending",   "running",     "completed",
                                           "completed_with_errors", "failed",
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

/* ------------------------------------------------------------------ */
/* The run detail (Enter on a run) */

/* "2026-11-22 05:03:18Z (3m ago)" or "-" for a missing time. */
static void when(struct strbuf *sb, const char *label, const struct tui_rs *rs, const char *col,
                 long long now)
{
    if (tui_rs_isnull(rs, 0, col) || tui_rs_get(rs, 0, col)[0] == 0) {
        strbuf_printf(sb, "%-18s -\n", label);
        return;
    }
    long long at = tui_rs_ll(rs, 0, col);
    char t[32], age[32];
    tui_fmt_time(t, sizeof t, at);
    tui_fmt_age(age, sizeof age, now >= at ? now - at : at - now);
    if (now >= at)
        strbuf_printf(sb, "%-18s %sZ (%s ago)\n", label, t, age);
    else
        strbuf_printf(sb, "%-18s %sZ (in %s)\n", label, t, age);
}

static void count(struct strbuf *sb, const char *label, const struct tui_rs *rs, const char *col)
{
    char c[32];
    tui_fmt_count(c, sizeof c, tui_rs_ll(rs, 0, col));
    strbuf_printf(sb, "%-18s %s\n", label, c);
}

char *pane_runs_detail_text(const struct tui_rs *run, const struct tui_rs *events)
{
    struct strbuf sb = {0};
    if (run == NULL || run->nrows == 0) {
        strbuf_puts(&sb, "this run no longer exists");
        return strbuf_detach(&sb);
    }
    long long now = tui_rs_ll(run, 0, "now");
    const char *entity = tui_rs_isnull(run, 0, "entity_type") ? "every entity"
                                                              : tui_rs_get(run, 0, "entity_type");
    strbuf_printf(&sb, "%s sync of %s, %s\n\n", tui_rs_get(run, 0, "run_type"), entity,
                  tui_rs_get(run, 0, "status"));
    strbuf_printf(&sb, "%-18s %s\n", "trigger", tui_rs_get(run, 0, "trigger"));
    strbuf_printf(&sb, "%-18s %s\n", "requested by",
                  tui_rs_isnull(run, 0, "requested_by") ? "-" : tui_rs_get(run, 0, "requested_by"));
    strbuf_printf(&sb, "%-18s %s\n", "owner",
                  tui_rs_isnull(run, 0, "owner") ? "-" : tui_rs_get(run, 0, "owner"));
    if (!tui_rs_isnull(run, 0, "resumed_from"))
        strbuf_printf(&sb, "%-18s run %s\n", "resumed from", tui_rs_get(run, 0, "resumed_from"));
    if (strcmp(tui_rs_get(run, 0, "cancel_requested"), "t") == 0)
        strbuf_printf(&sb, "%-18s yes\n", "cancel requested");
    when(&sb, "requested", run, "created", now);
    when(&sb, "started", run, "started", now);
    when(&sb, "finished", run, "finished", now);
    when(&sb, "heartbeat", run, "heartbeat", now);

    char buf[64];
    bool started = !tui_rs_isnull(run, 0, "started");
    long long secs = 0;
    if (started) {
        long long st = tui_rs_ll(run, 0, "started");
        long long end = tui_rs_isnull(run, 0, "finished") ? now : tui_rs_ll(run, 0, "finished");
        secs = end > st ? end - st : 0;
        tui_fmt_duration_words(buf, sizeof buf, secs);
        strbuf_printf(&sb, "%-18s %s%s\n", "duration", buf,
                      tui_rs_isnull(run, 0, "finished") ? " so far" : "");
    } else {
        strbuf_printf(&sb, "%-18s not started\n", "duration");
    }
    long long done = tui_rs_ll(run, 0, "succeeded") + tui_rs_ll(run, 0, "failed") +
                     tui_rs_ll(run, 0, "unchanged");
    if (started && secs > 0) {
        double rate = (double)done / (double)secs;
        strbuf_printf(&sb, "%-18s %.1f items/s (%.0f/min)\n", "rate", rate, rate * 60.0);
    } else {
        strbuf_printf(&sb, "%-18s -\n", "rate");
    }
    long long exp = tui_rs_ll(run, 0, "expected_total");
    char d[32], e[32];
    tui_fmt_count(d, sizeof d, done);
    if (exp > 0) {
        tui_fmt_count(e, sizeof e, exp);
        strbuf_printf(&sb, "%-18s %s of %s (%lld%%)\n", "progress", d, e,
                      done * 100 / exp > 100 ? 100 : done * 100 / exp);
    } else {
        strbuf_printf(&sb, "%-18s %s\n", "progress", d);
    }
    strbuf_puts(&sb, "\nstatistics:\n");
    count(&sb, "  read", run, "total");
    count(&sb, "  changed", run, "succeeded");
    count(&sb, "  unchanged", run, "unchanged");
    count(&sb, "  failed", run, "failed");
    count(&sb, "  API calls", run, "api_calls");
    if (strcmp(tui_rs_get(run, 0, "run_type"), "reconcile") == 0) {
        count(&sb, "  missing", run, "missing");
        count(&sb, "  extra", run, "extra");
        count(&sb, "  stale", run, "stale");
    }
    if (!tui_rs_isnull(run, 0, "error"))
        strbuf_printf(&sb, "\nerror:\n%s\n", tui_rs_get(run, 0, "error"));
    strbuf_printf(&sb, "\nconfig:\n%s\n",
                  tui_rs_isnull(run, 0, "config") ? "{}" : tui_rs_get(run, 0, "config"));
    if (!tui_rs_isnull(run, 0, "stats") && strcmp(tui_rs_get(run, 0, "stats"), "{}") != 0)
        strbuf_printf(&sb, "\nrun statistics (stats):\n%s\n", tui_rs_get(run, 0, "stats"));
    if (events) {
        strbuf_puts(&sb, "\nevents (newest first, at most 100):\n");
        for (int i = 0; i < events->nrows; i++) {
            char t[32];
            tui_fmt_time(t, sizeof t, tui_rs_ll(events, i, "at"));
            strbuf_printf(&sb, "  %-8s %sZ  %-24s %s %s  %s\n", tui_rs_get(events, i, "id"), t,
                          tui_rs_get(events, i, "type"), tui_rs_get(events, i, "entity_type"),
                          tui_rs_get(events, i, "entity_id"), tui_rs_get(events, i, "data"));
        }
        if (events->nrows == 0)
            strbuf_puts(&sb, "  none\n");
    }
    return strbuf_detach(&sb);
}
