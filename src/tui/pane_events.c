/*
 * pane_events.c: a live tail of tds.events, newest first, refreshed the
 * moment the engine announces one (LISTEN tds_events).  t cycles the type
 * filter (walks the (type, id) index), e the entity; z freezes it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tui_internal.h"

static const struct tui_column cols[] = {
    {"ID", "id", 9, true, 0},
    {"AT", "at", 8, false, 0},
    {"TYPE", "type", 22, false, 0},
    {"ENTITY", "entity_type", 13, false, 0},
    {"ENTITY ID", "entity_id", 14, false, 100},
    {"RUN", "run_id", 6, true, 100},
    {"DATA", "data", 0, false, 0},
};

static enum tui_role cell(struct tui *t, const struct tui_rs *rs, int row, int col, char *buf,
                          size_t n)
{
    (void)t;
    if (col == 1) {
        char full[32];
        tui_fmt_time(full, sizeof full, tui_rs_ll(rs, row, "at"));
        snprintf(buf, n, "%s", strlen(full) > 11 ? full + 11 : full);
        return ROLE_DIM;
    }
    snprintf(buf, n, "%s", tui_rs_get(rs, row, cols[col].field));
    if (col == 2) {
        if (strstr(buf, "failed") || strstr(buf, "deadletter"))
            return ROLE_ERROR;
        if (strstr(buf, "retry") || strstr(buf, "alert"))
            return ROLE_WARN;
        if (strstr(buf, "tds.sync."))
            return ROLE_INFO;
    }
    return col == 6 ? ROLE_DIM : ROLE_NORMAL;
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
    tui_table_set_rs(&p->table, s->rs[TQ_EVENTS]);
}

static void draw(struct tui *t, struct pane *p, int y, int x, int h, int w)
{
    tui_table_draw(t, &p->table, y, x, h, w);
}

static bool key(struct tui *t, struct pane *p, enum tui_action a)
{
    static const char *const types[] = {
        "tds.sync.started",       "tds.sync.completed",    "tds.sync.failed",
        "tds.entity.create",      "tds.entity.update",     "tds.entity.delete",
        "tds.entity.sync_failed", "tds.queue.empty",       "tds.deadletter.added",
        "tds.retry.scheduled",    "tds.alert.triggered",   NULL};
    switch (a) {
    case ACT_OPEN:
        if (tui_table_sel_id(&p->table))
            tui_open_detail(t, DETAIL_EVENT, tui_table_sel_id(&p->table));
        return true;
    case ACT_TYPE_FILTER: {
        const char *next = types[0];
        for (int i = 0; types[i]; i++)
            if (p->type && strcmp(p->type, types[i]) == 0)
                next = types[i + 1];
        free(p->type);
        p->type = next ? xstrdup(next) : NULL;
        tui_refresh(t);
        return true;
    }
    default:
        return false;
    }
}

static void summary(struct tui *t, struct pane *p, char *buf, size_t n)
{
    (void)t;
    snprintf(buf, n, "type: %s  entity: %s  (newest first)", p->type ? p->type : "any",
             p->entity ? p->entity : "any");
}

const struct pane_ops pane_events_ops = {
    .name = "events",
    .title = "Events",
    .open = open_,
    .close = close_,
    .on_data = on_data,
    .draw = draw,
    .key = key,
    .summary = summary,
};
