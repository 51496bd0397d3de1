/*
 * table.c: the one table widget under the runs, queue, DLQ, alerts and
 * events panes (as tmux builds its choosers on mode-tree.c): columns with
 * widths (one flexible), a selection that survives refreshes by row id,
 * scrolling, marks kept by id, and client-side sorting of the loaded rows.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tui_internal.h"

void tui_table_init(struct tui_table *tb, const struct tui_column *cols, int ncols,
                    const char *id_field, tui_cell_fn cell)
{
    memset(tb, 0, sizeof *tb);
    tb->cols = cols;
    tb->ncols = ncols;
    tb->id_field = id_field;
    tb->cell = cell;
    tb->sort_col = -1;
    tb->page = 10;
}

void tui_table_free(struct tui_table *tb)
{
    free(tb->order);
    free(tb->marks);
    tb->order = NULL;
    tb->marks = NULL;
    tb->nmarks = tb->capmarks = 0;
}

static const struct tui_rs *sort_rs;
static const char *sort_field;
static bool sort_desc;

static int cmp_rows(const void *a, const void *b)
{
    const char *x = tui_rs_get(sort_rs, *(const int *)a, sort_field);
    const char *y = tui_rs_get(sort_rs, *(const int *)b, sort_field);
    char *ex, *ey;
    double dx = strtod(x, &ex), dy = strtod(y, &ey);
    int c;
    if (*x && *y && *ex == 0 && *ey == 0)
        c = dx < dy ? -1 : dx > dy;
    else
        c = strcmp(x, y);
    if (c == 0)
        c = *(const int *)a - *(const int *)b;
    return sort_desc ? -c : c;
}

static void build_order(struct tui_table *tb)
{
    int n = tb->rs ? tb->rs->nrows : 0;
    free(tb->order);
    tb->order = xcalloc((size_t)n + 1, sizeof *tb->order);
    tb->norder = n;
    for (int i = 0; i < n; i++)
        tb->order[i] = i;
    if (tb->sort_col >= 0 && tb->sort_col < tb->ncols && tb->cols[tb->sort_col].field) {
        sort_rs = tb->rs;
        sort_field = tb->cols[tb->sort_col].field;
        sort_desc = tb->sort_desc;
        qsort(tb->order, (size_t)n, sizeof *tb->order, cmp_rows);
    }
}

static long long row_id(const struct tui_table *tb, int disp)
{
    if (disp < 0 || disp >= tb->norder)
        return 0;
    return tui_rs_ll(tb->rs, tb->order[disp], tb->id_field);
}

static void clamp(struct tui_table *tb)
{
    if (tb->sel >= tb->norder)
        tb->sel = tb->norder - 1;
    if (tb->sel < 0)
        tb->sel = 0;
    tb->sel_id = row_id(tb, tb->sel);
}

void tui_table_set_rs(struct tui_table *tb, const struct tui_rs *rs)
{
    long long keep = tb->sel_id;
    int old_sel = tb->sel;
    tb->rs = rs;
    build_order(tb);
    tb->sel = old_sel;
    for (int i = 0; keep && i < tb->norder; i++)
        if (row_id(tb, i) == keep) {
            tb->sel = i;
            break;
        }
    clamp(tb);
}

long long tui_table_sel_id(const struct tui_table *tb)
{
    return row_id(tb, tb->sel);
}

int tui_table_sel_row(const struct tui_table *tb)
{
    return tb->sel >= 0 && tb->sel < tb->norder ? tb->order[tb->sel] : -1;
}

bool tui_table_marked(const struct tui_table *tb, long long id)
{
    for (size_t i = 0; i < tb->nmarks; i++)
        if (tb->marks[i] == id)
            return true;
    return false;
}

void tui_table_clear_marks(struct tui_table *tb)
{
    tb->nmarks = 0;
    tb->mark_filter = false;
}

static void toggle_mark(struct tui_table *tb, long long id)
{
    for (size_t i = 0; i < tb->nmarks; i++)
        if (tb->marks[i] == id) {
            tb->marks[i] = tb->marks[--tb->nmarks];
            return;
        }
    if (tb->nmarks == tb->capmarks) {
        tb->capmarks = tb->capmarks ? tb->capmarks * 2 : 16;
        tb->marks = xreallocarray(tb->marks, tb->capmarks, sizeof *tb->marks);
    }
    tb->marks[tb->nmarks++] = id;
}

bool tui_table_key(struct tui *t, struct tui_table *tb, enum tui_action a)
{
    int page = tb->page > 1 ? tb->page - 1 : 1;
    switch (a) {
    case ACT_UP: tb->sel--; break;
    case ACT_DOWN: tb->sel++; break;
    case ACT_PGUP: tb->sel -= page; break;
    case ACT_PGDN: tb->sel += page; break;
    case ACT_TOP: tb->sel = 0; break;
    case ACT_BOTTOM: tb->sel = tb->norder - 1; break;
    case ACT_MARK:
        if (tb->norder == 0)
            return true;
        tb->mark_filter = false;
        toggle_mark(tb, row_id(tb, tb->sel));
        tb->sel++;
        break;
    case ACT_MARK_FILTER:
        if (tb->mark_filter || tb->nmarks) {
            tui_table_clear_marks(tb);
            tui_message(t, ROLE_MESSAGE, "marks cleared");
        } else {
            tb->mark_filter = true;
            tui_message(t, ROLE_MESSAGE,
                        "the next action applies to every row matching the filter (* again: clear)");
        }
        break;
    case ACT_SORT:
        tb->sort_col++;
        while (tb->sort_col < tb->ncols && tb->cols[tb->sort_col].field == NULL)
            tb->sort_col++;
        if (tb->sort_col >= tb->ncols)
            tb->sort_col = -1;
        tui_message(t, ROLE_MESSAGE, "sorted by %s",
                    tb->sort_col < 0 ? "the default order" : tb->cols[tb->sort_col].title);
        tui_table_set_rs(tb, tb->rs);
        return true;
    case ACT_SORT_REV:
        tb->sort_desc = !tb->sort_desc;
        tui_table_set_rs(tb, tb->rs);
        return true;
    default:
        return false;
    }
    clamp(tb);
    return true;
}

/* Resolves column widths for a screen w columns wide; returns how many
 * columns are shown (those with min_screen above w are hidden). */
static int layout(const struct tui_table *tb, int w, int *widths, bool *shown)
{
    int fixed = 0, flex = -1;
    for (int c = 0; c < tb->ncols; c++) {
        shown[c] = tb->cols[c].min_screen <= w;
        if (!shown[c])
            continue;
        if (tb->cols[c].width == 0 && flex < 0)
            flex = c;
        else
            fixed += (tb->cols[c].width ? tb->cols[c].width : 8) + 1;
        widths[c] = tb->cols[c].width ? tb->cols[c].width : 8;
    }
    fixed += 2; /* mark column */
    if (flex >= 0)
        widths[flex] = w - fixed > 8 ? w - fixed : 8;
    return flex;
}

void tui_table_draw(struct tui *t, struct tui_table *tb, int y, int x, int h, int w)
{
    int widths[32];
    bool shown[32];
    layout(tb, w, widths, shown);
    /* header */
    int cx = x + 2;
    tui_fill(y, x, w, tui_attr(ROLE_HEADER));
    for (int c = 0; c < tb->ncols && cx < x + w; c++) {
        if (!shown[c])
            continue;
        char title[64];
        snprintf(title, sizeof title, "%s%s", tb->cols[c].title,
                 c == tb->sort_col ? (tb->sort_desc ? tui_g.down : tui_g.up) : "");
        int cw = widths[c] < x + w - cx ? widths[c] : x + w - cx;
        if (tb->cols[c].right && tui_width(title) < cw)
            tui_put(y, cx + cw - tui_width(title), title, cw, tui_attr(ROLE_HEADER), false);
        else
            tui_put(y, cx, title, cw, tui_attr(ROLE_HEADER), false);
        cx += widths[c] + 1;
    }
    int rows = h - 1;
    tb->page = rows;
    if (tb->sel < tb->top)
        tb->top = tb->sel;
    if (tb->sel >= tb->top + rows)
        tb->top = tb->sel - rows + 1;
    if (tb->top > tb->norder - rows)
        tb->top = tb->norder - rows;
    if (tb->top < 0)
        tb->top = 0;
    if (tb->norder == 0) {
        tui_put(y + 2, x + 2, tb->rs ? "(nothing matches)" : "(loading)", w - 4,
                tui_attr(ROLE_DIM), false);
        return;
    }
    for (int i = 0; i < rows; i++) {
        int disp = tb->top + i;
        if (disp >= tb->norder)
            break;
        int row = tb->order[disp];
        long long id = tui_rs_ll(tb->rs, row, tb->id_field);
        bool sel = disp == tb->sel;
        bool marked = tb->mark_filter || tui_table_marked(tb, id);
        attr_t base = sel ? tui_attr(ROLE_SELECTED) : tui_attr(ROLE_NORMAL);
        tui_fill(y + 1 + i, x, w, base);
        if (marked)
            tui_put(y + 1 + i, x, tui_g.mark, 1, sel ? base : tui_attr(ROLE_MARKED), false);
        cx = x + 2;
        for (int c = 0; c < tb->ncols && cx < x + w; c++) {
            if (!shown[c])
                continue;
            char buf[512];
            buf[0] = 0;
            enum tui_role role = ROLE_NORMAL;
            if (tb->cell)
                role = tb->cell(t, tb->rs, row, c, buf, sizeof buf);
            else if (tb->cols[c].field)
                snprintf(buf, sizeof buf, "%s", tui_rs_get(tb->rs, row, tb->cols[c].field));
            attr_t a = sel ? base : tui_attr(role);
            int cw = widths[c] < x + w - cx ? widths[c] : x + w - cx;
            int tw = tui_width(buf);
            if (tb->cols[c].right && tw < cw)
                tui_put(y + 1 + i, cx + cw - tw, buf, tw, a, false);
            else
                tui_put(y + 1 + i, cx, buf, cw, a, false);
            cx += widths[c] + 1;
        }
    }
}
