/*
 * frame.c: everything on screen around and over the panes: the title bar
 * (instance, database, engine state, LIVE/FROZEN, clock), the pane bar, the
 * message line, the hint bar generated from the keymap, the "terminal too
 * small" screen, and the overlays: help (generated from the keymap), the
 * text view of details, the sync dialog, confirmations and the prompt.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wchar.h>

#include "tds/entity.h"
#include "tui_internal.h"

#define MIN_COLS 80
#define MIN_ROWS 24

/* Where the prompt's cursor goes once everything is drawn. */
static int prompt_cy, prompt_cx;

static const char *pane_names[PANE_N] = {"Dashboard", "Runs", "Queue", "DLQ", "Alerts", "Events"};

const char *tui_health(struct tui *t, const struct tui_snapshot *s, char reasons[][128], int n,
                       int *nreasons)
{
    (void)t;
    *nreasons = 0;
    if (s == NULL)
        return "unknown";
    if (!s->ok) {
        snprintf(reasons[0], 128, "database unreachable");
        *nreasons = 1;
        return "down";
    }
    const struct tui_rs *h = s->rs[TQ_HEALTH];
    for (int i = 0; h && i < h->nrows && *nreasons < n; i++)
        if (!tui_rs_isnull(h, i, "reason"))
            snprintf(reasons[(*nreasons)++], 128, "%s", tui_rs_get(h, i, "reason"));
    const char *st = h && h->nrows ? tui_rs_get(h, 0, "status") : "unknown";
    return st[0] ? st : "unknown";
}

/* The engine state shown in the title. */
static void engine_state(struct tui *t, char *buf, size_t n, enum tui_role *role)
{
    const struct tui_snapshot *s = t->snap;
    const struct tui_rs *e = s ? s->rs[TQ_ENGINES] : NULL;
    *role = ROLE_TITLE;
    if (e == NULL) {
        snprintf(buf, n, "engine ?");
        return;
    }
    if (t->instance) {
        for (int i = 0; i < e->nrows; i++)
            if (strcmp(tui_rs_get(e, i, "instance"), t->instance) == 0) {
                const char *st = tui_rs_get(e, i, "state");
                bool paused = strcmp(tui_rs_get(s->rs[TQ_HEAD], 0, "paused"), "t") == 0;
                snprintf(buf, n, "engine %s", paused && strcmp(st, "running") == 0 ? "paused" : st);
                return;
            }
        snprintf(buf, n, "engine starting");
        return;
    }
    int alive = 0, draining = 0;
    for (int i = 0; i < e->nrows; i++) {
        if (strcmp(tui_rs_get(e, i, "alive"), "t") == 0)
            alive++;
        if (strcmp(tui_rs_get(e, i, "state"), "draining") == 0)
            draining++;
    }
    if (strcmp(tui_rs_get(s->rs[TQ_HEAD], 0, "paused"), "t") == 0)
        snprintf(buf, n, "fleet paused (%d engine%s)", alive, alive == 1 ? "" : "s");
    else if (draining)
        snprintf(buf, n, "%d draining", draining);
    else if (alive)
        snprintf(buf, n, "%d engine%s running", alive, alive == 1 ? "" : "s");
    else
        snprintf(buf, n, "no engine running");
}

static void draw_title(struct tui *t)
{
    attr_t a = tui_attr(ROLE_TITLE);
    tui_fill(0, 0, t->cols, a);
    char left[256], right[128], st[64], clock[16];
    enum tui_role role;
    engine_state(t, st, sizeof st, &role);
    const struct tui_rs *h = t->snap ? t->snap->rs[TQ_HEAD] : NULL;
    /* the version only where there is room for it */
    snprintf(left, sizeof left, " tds%s%s  %s  %s%s  %s@%s", t->cols >= 110 ? " " : "",
             t->cols >= 110 ? TDS_VERSION : "", t->label, st, t->read_only ? "  READ-ONLY" : "",
             h ? tui_rs_get(h, 0, "db") : "?", h ? tui_rs_get(h, 0, "host") : "?");
    time_t now = (time_t)t->now;
    struct tm tm;
    localtime_r(&now, &tm);
    strftime(clock, sizeof clock, "%H:%M:%S", &tm);
    snprintf(right, sizeof right, "%s  %s ", t->frozen ? "FROZEN" : "LIVE", clock);
    int rw = tui_width(right);
    tui_put(0, 0, left, t->cols - rw - 1, a, false);
    tui_put(0, t->cols - rw, right, rw, a | (t->frozen ? A_REVERSE : 0), false);
}

static void draw_panebar(struct tui *t)
{
    tui_fill(1, 0, t->cols, tui_attr(ROLE_PANEBAR));
    int x = 1;
    const struct tui_rs *h = t->snap ? t->snap->rs[TQ_HEAD] : NULL;
    for (int i = 0; i < PANE_N; i++) {
        char label[64];
        long long badge = 0;
        if (h && i == PANE_DLQ)
            badge = tui_rs_ll(h, 0, "dlq_open");
        if (h && i == PANE_ALERTS)
            badge = tui_rs_ll(h, 0, "alerts_critical") + tui_rs_ll(h, 0, "alerts_error") +
                    tui_rs_ll(h, 0, "alerts_warning") + tui_rs_ll(h, 0, "alerts_info");
        if (badge > 0)
            snprintf(label, sizeof label, " %d %s (%lld) ", i + 1, pane_names[i], badge);
        else
            snprintf(label, sizeof label, " %d %s ", i + 1, pane_names[i]);
        attr_t a = i == t->cur ? tui_attr(ROLE_PANE_ACTIVE) : tui_attr(ROLE_PANEBAR);
        x += tui_put(1, x, label, t->cols - x, a, false) + 1;
        if (x >= t->cols)
            break;
    }
}

static void draw_message(struct tui *t)
{
    int y = t->rows - 2;
    tui_fill(y, 0, t->cols, tui_attr(ROLE_NORMAL));
    if (t->mode == MODE_PROMPT) {
        static const char *prefix[PROMPT_N] = {"/", ":", "", ""};
        char buf[1024];
        const char *pre = t->prompt_kind == PROMPT_REASON || t->prompt_kind == PROMPT_ITEMS
                              ? t->confirm_text
                              : prefix[t->prompt_kind];
        int pw = tui_put(y, 0, pre, t->cols - 1, tui_attr(ROLE_MESSAGE), false);
        wcstombs(buf, t->prompt_buf, sizeof buf);
        buf[sizeof buf - 1] = 0;
        tui_put(y, pw, buf, t->cols - pw - 1, tui_attr(ROLE_NORMAL), false);
        /* cursor position by width of the text before it */
        wchar_t tmp[256];
        wmemcpy(tmp, t->prompt_buf, (size_t)t->prompt_pos);
        tmp[t->prompt_pos] = 0;
        int cw = wcswidth(tmp, (size_t)t->prompt_pos);
        int cx = pw + (cw < 0 ? t->prompt_pos : cw);
        prompt_cy = y;
        prompt_cx = cx < t->cols ? cx : t->cols - 1;
        return;
    }
    char buf[512];
    if (t->snap && !t->snap->ok) {
        snprintf(buf, sizeof buf, "database unreachable, retrying%s%s",
                 t->snap->error ? " - " : "",
                 t->snap->error ? t->snap->error + (str_starts_with(t->snap->error,
                                                                    "database unreachable, retrying: ")
                                                        ? 32
                                                        : 0)
                                : "");
        tui_put(y, 1, buf, t->cols - 2, tui_attr(ROLE_ERROR), false);
        return;
    }
    if (t->msg[0] && (t->test_mode || time_mono_ms() < t->msg_until_ms)) {
        tui_put(y, 1, t->msg, t->cols - 2, tui_attr(t->msg_role), false);
        return;
    }
    struct pane *p = &t->panes[t->cur];
    char sum[256] = "";
    p->ops->summary(t, p, sum, sizeof sum);
    struct strbuf sb = {0};
    if (t->cur != PANE_DASHBOARD && t->snap && t->snap->rs[TQ_TOTAL]) {
        long long total = tui_rs_ll(t->snap->rs[TQ_TOTAL], 0, "n");
        struct tui_table *tb = t->cur == PANE_DLQ && p->dlq_grouped ? &p->table2 : &p->table;
        char n[32];
        tui_fmt_count(n, sizeof n, total > TUI_COUNT_CAP ? TUI_COUNT_CAP : total);
        if (t->cur == PANE_DLQ && p->dlq_grouped)
            strbuf_printf(&sb, "%d groups", tb->norder);
        else
            strbuf_printf(&sb, "row %d of %s%s%s", tb->norder ? tb->sel + 1 : 0, n,
                          total > TUI_COUNT_CAP ? "+" : "",
                          total > tb->norder ? " (newest shown)" : "");
        if (tb->nmarks)
            strbuf_printf(&sb, ", %zu marked", tb->nmarks);
        if (tb->mark_filter)
            strbuf_printf(&sb, ", ALL MATCHING targeted");
        strbuf_puts(&sb, "  ");
    }
    strbuf_puts(&sb, sum);
    if (p->text)
        strbuf_printf(&sb, "  filter: %s", p->text);
    if (t->snap && t->snap->error)
        strbuf_printf(&sb, "  [%s]", t->snap->error);
    tui_put(y, 1, sb.buf ? sb.buf : "", t->cols - 2,
            tui_attr(t->snap && t->snap->error ? ROLE_WARN : ROLE_DIM), false);
    strbuf_free(&sb);
}

static void draw_hints(struct tui *t)
{
    int y = t->rows - 1;
    tui_fill(y, 0, t->cols, tui_attr(ROLE_HINT));
    size_t n;
    const struct tui_binding *km = tui_keymap(&n);
    int x = 0;
    /* pane bindings first, then the global ones that carry a hint */
    for (int pass = 0; pass < 2; pass++)
        for (size_t i = 0; i < n; i++) {
            const struct tui_binding *b = &km[i];
            if (b->hint == NULL || (pass == 0 ? b->pane != t->cur : b->pane != -1))
                continue;
            if (pass == 1 && tui_keymap_lookup(t->cur, b->key) != b->action)
                continue; /* shadowed here */
            if (pass == 1 && t->cur == PANE_DASHBOARD &&
                (b->action == ACT_MARK || b->action == ACT_OPEN))
                continue;
            int need = tui_width(b->keyname) + tui_width(b->hint) + 2;
            if (x + need > t->cols)
                return;
            x += tui_put(y, x, b->keyname, t->cols - x, tui_attr(ROLE_HINT_KEY), false);
            x += 1;
            x += tui_put(y, x, b->hint, t->cols - x, tui_attr(ROLE_HINT), false);
            x += 1;
        }
}

/* A box with a border; returns the inner origin through *iy, *ix. */
static void draw_box(int y, int x, int h, int w, const char *title, attr_t a)
{
    for (int i = 0; i < h; i++)
        tui_fill(y + i, x, w, a);
    for (int i = 1; i < w - 1; i++) {
        tui_put(y, x + i, tui_g.hline, 1, a, false);
        tui_put(y + h - 1, x + i, tui_g.hline, 1, a, false);
    }
    for (int i = 1; i < h - 1; i++) {
        tui_put(y + i, x, tui_g.vline, 1, a, false);
        tui_put(y + i, x + w - 1, tui_g.vline, 1, a, false);
    }
    tui_put(y, x, tui_g.corner[0], 1, a, false);
    tui_put(y, x + w - 1, tui_g.corner[1], 1, a, false);
    tui_put(y + h - 1, x, tui_g.corner[2], 1, a, false);
    tui_put(y + h - 1, x + w - 1, tui_g.corner[3], 1, a, false);
    if (title) {
        char tt[128];
        snprintf(tt, sizeof tt, " %s ", title);
        tui_put(y, x + 2, tt, w - 4, a | A_BOLD, false);
    }
}

/* Help lines: one per action of a section, its keys joined with ", ". */
static int help_lines(struct tui *t, char lines[][160], int max)
{
    size_t n;
    const struct tui_binding *km = tui_keymap(&n);
    int nl = 0;
    for (int sec = 0; sec < 2; sec++) {
        int pane = sec == 0 ? t->cur : -1;
        if (nl < max)
            snprintf(lines[nl++], 160, "%s", sec == 0 ? "" : "");
        if (nl < max)
            snprintf(lines[nl++], 160, "%s",
                     sec == 0 ? (t->cur == PANE_DASHBOARD ? "Dashboard" : pane_names[t->cur])
                              : "Everywhere");
        bool seen[ACT_N] = {false};
        for (size_t i = 0; i < n && nl < max; i++) {
            if (km[i].pane != pane || seen[km[i].action])
                continue;
            if (sec == 1 && tui_keymap_lookup(t->cur, km[i].key) != km[i].action)
                continue;
            seen[km[i].action] = true;
            char keys[64] = "";
            for (size_t j = i; j < n; j++)
                if (km[j].pane == pane && km[j].action == km[i].action &&
                    !strstr(keys, km[j].keyname)) {
                    if (keys[0])
                        strncat(keys, ", ", sizeof keys - strlen(keys) - 1);
                    strncat(keys, km[j].keyname, sizeof keys - strlen(keys) - 1);
                }
            snprintf(lines[nl++], 160, "  %-16s %s%s", keys, tui_action_help(km[i].action),
                     tui_action_mutating(km[i].action) && t->read_only ? " (read-only: off)" : "");
        }
    }
    if (nl < max)
        snprintf(lines[nl++], 160, " ");
    if (nl < max)
        snprintf(lines[nl++], 160,
                 "Commands: :sync [ENTITY] [full|incremental|stock] [dry], :sync items ID,... [dry],");
    if (nl < max)
        snprintf(lines[nl++], 160,
                 "  :pause, :resume, :theme NAME, :q.  Actions apply to marked rows, else the selected one.");
    return nl;
}

static void draw_help(struct tui *t, int y, int h)
{
    char lines[128][160];
    int n = help_lines(t, lines, 128);
    int w = t->cols - 4 < 96 ? t->cols - 4 : 96;
    int x = (t->cols - w) / 2;
    draw_box(y, x, h, w, "Help: keys (j/k scroll, q close)", tui_attr(ROLE_DIALOG));
    int rows = h - 2;
    if (t->help_top > n - rows)
        t->help_top = n - rows;
    if (t->help_top < 0)
        t->help_top = 0;
    for (int i = 0; i < rows && t->help_top + i < n; i++) {
        const char *l = lines[t->help_top + i];
        bool head = l[0] != ' ' && l[0] != 0;
        tui_put(y + 1 + i, x + 2, l, w - 4, tui_attr(ROLE_DIALOG) | (head ? A_BOLD : 0), false);
    }
}

static void draw_text(struct tui *t, int y, int h)
{
    tui_fill(y, 0, t->cols, tui_attr(ROLE_HEADER));
    char title[256];
    snprintf(title, sizeof title, " %s  (j/k, PgUp/PgDn scroll, q back)",
             t->text_title ? t->text_title : "loading...");
    tui_put(y, 0, title, t->cols, tui_attr(ROLE_HEADER), false);
    int rows = h - 1;
    if (t->text_top > t->text_n - rows)
        t->text_top = t->text_n - rows;
    if (t->text_top < 0)
        t->text_top = 0;
    for (int i = 0; i < rows; i++) {
        tui_fill(y + 1 + i, 0, t->cols, tui_attr(ROLE_NORMAL));
        if (t->text_top + i < t->text_n)
            tui_put(y + 1 + i, 1, t->text_lines[t->text_top + i], t->cols - 2,
                    tui_attr(ROLE_NORMAL), false);
    }
}

const char *const tui_sync_kinds[TUI_SYNC_KINDS] = {"incremental", "full", "stock", "items"};

static void draw_sync(struct tui *t, int y, int h)
{
    size_t ne;
    const struct entity_desc *ents = entity_all(&ne);
    int w = t->cols - 4 < 64 ? t->cols - 4 : 64, bh = 11;
    int x = (t->cols - w) / 2, by = y + (h - bh) / 2;
    draw_box(by, x, bh, w, "Start a sync", tui_attr(ROLE_DIALOG));
    char buf[128];
    attr_t a = tui_attr(ROLE_DIALOG);
    attr_t sel = tui_attr(ROLE_SELECTED);
    const char *kind = tui_sync_kinds[t->sd_kind];
    bool of_items = strcmp(kind, "stock") == 0 || strcmp(kind, "items") == 0;
    bool has_dry = of_items;
    snprintf(buf, sizeof buf, "Entity:  < %s >",
             strcmp(kind, "stock") == 0   ? "items (stock levels)"
             : strcmp(kind, "items") == 0 ? "items (ids asked next)"
             : t->sd_entity == 0          ? "every entity"
                                          : ents[t->sd_entity - 1].name);
    tui_put(by + 2, x + 3, buf, w - 6, t->sd_field == 0 ? sel : a, false);
    snprintf(buf, sizeof buf, "Kind:    < %s >", kind);
    tui_put(by + 4, x + 3, buf, w - 6, t->sd_field == 1 ? sel : a, false);
    if (has_dry)
        snprintf(buf, sizeof buf, "Dry run: [%s]", t->sd_dry ? "x" : " ");
    else
        snprintf(buf, sizeof buf, "Dry run: n/a (stock and items syncs only)");
    tui_put(by + 6, x + 3, buf, w - 6, t->sd_field == 2 ? sel : a, false);
    tui_put(by + 8, x + 3, "Up/Down field, Left/Right change, Enter start, Esc cancel",
            w - 6, a, false);
}

/* Splits text into lines of at most w columns at blanks; returns the count. */
static int wrap(const char *text, int w, char lines[][512], int max)
{
    int n = 0;
    const char *p = text;
    while (*p && n < max) {
        while (*p == ' ')
            p++;
        size_t len = strlen(p);
        if (tui_width(p) <= w || n == max - 1) {
            snprintf(lines[n++], 512, "%s", p);
            break;
        }
        /* the longest prefix that fits, cut at the last blank */
        size_t cut = 0, last_blank = 0;
        char tmp[512];
        for (size_t i = 1; i <= len && i < sizeof tmp; i++) {
            memcpy(tmp, p, i);
            tmp[i] = 0;
            if (tui_width(tmp) > w)
                break;
            cut = i;
            if (p[i] == ' ')
                last_blank = i;
        }
        if (last_blank > 0)
            cut = last_blank;
        if (cut == 0)
            cut = 1;
        snprintf(lines[n++], 512, "%.*s", (int)cut, p);
        p += cut;
    }
    return n;
}

static void draw_confirm(struct tui *t)
{
    int w = t->cols - 10 < 90 ? t->cols - 10 : 90;
    char lines[4][512];
    int n = wrap(t->confirm_text, w - 4, lines, 4);
    int bh = n + 5;
    int x = (t->cols - w) / 2, y = (t->rows - bh) / 2;
    draw_box(y, x, bh, w, "Confirm", tui_attr(ROLE_DIALOG));
    for (int i = 0; i < n; i++)
        tui_put(y + 2 + i, x + 2, lines[i], w - 4, tui_attr(ROLE_DIALOG) | A_BOLD, false);
    tui_put(y + 2 + n, x + 2, "y: yes    n, Esc: no", w - 4, tui_attr(ROLE_DIALOG), false);
}

/* Everything modal, drawn after the pane, the hint bar and the message
 * line, so nothing a pane draws can hide a dialog that takes the keys. */
static void draw_overlays(struct tui *t, int y, int h)
{
    switch (t->mode) {
    case MODE_HELP:
        draw_help(t, y, h);
        break;
    case MODE_SYNC_DIALOG:
        draw_sync(t, y, h);
        break;
    case MODE_CONFIRM:
        draw_confirm(t);
        break;
    default: /* the prompt lives on the message line; the text view replaces the pane */
        break;
    }
}

void tui_draw(struct tui *t)
{
    getmaxyx(stdscr, t->rows, t->cols);
    erase();
    curs_set(t->mode == MODE_PROMPT ? 1 : 0);
    if (t->cols < MIN_COLS || t->rows < MIN_ROWS) {
        char buf[128];
        int y = t->rows / 2 - 1;
        snprintf(buf, sizeof buf, "terminal too small: %dx%d", t->cols, t->rows);
        tui_put(y > 0 ? y : 0, 0, buf, t->cols, tui_attr(ROLE_ERROR) | A_BOLD, false);
        snprintf(buf, sizeof buf, "tds needs at least %dx%d; q quits", MIN_COLS, MIN_ROWS);
        if (y + 1 < t->rows)
            tui_put(y + 1, 0, buf, t->cols, tui_attr(ROLE_NORMAL), false);
        return;
    }
    draw_title(t);
    draw_panebar(t);
    int y = 2, h = t->rows - 4;
    struct pane *p = &t->panes[t->cur];
    if (t->mode == MODE_TEXT)
        draw_text(t, y, h);
    else
        p->ops->draw(t, p, y, 0, h, t->cols);
    draw_hints(t);
    draw_message(t);
    draw_overlays(t, y, h);
    if (t->mode == MODE_PROMPT) /* the cursor last: every draw moves it */
        move(prompt_cy, prompt_cx);
}
