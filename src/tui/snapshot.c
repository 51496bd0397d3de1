/*
 * snapshot.c: result sets and snapshots, the immutable data the data thread
 * hands to the UI; and the fixture reader that lets screen tests build the
 * same snapshots from a text file, so panes are drawn by the real code from
 * fixed data.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tds/sanitize.h"
#include "tui_internal.h"

static const char *query_names[TQ_N] = {
#define X(e, n) n,
    TUI_QUERIES(X)
#undef X
};

const char *tui_query_name(enum tui_query q)
{
    return (unsigned)q < TQ_N ? query_names[q] : "?";
}

struct tui_rs *tui_rs_new(int ncols, int nrows)
{
    struct tui_rs *rs = xcalloc(1, sizeof *rs);
    rs->ncols = ncols;
    rs->nrows = nrows;
    rs->names = xcalloc((size_t)ncols + 1, sizeof *rs->names);
    rs->cell = xcalloc((size_t)ncols * (size_t)nrows + 1, sizeof *rs->cell);
    return rs;
}

void tui_rs_free(struct tui_rs *rs)
{
    if (rs == NULL)
        return;
    for (int i = 0; i < rs->ncols; i++)
        free(rs->names[i]);
    for (long i = 0; i < (long)rs->ncols * rs->nrows; i++)
        free(rs->cell[i]);
    free(rs->names);
    free(rs->cell);
    free(rs);
}

int tui_rs_col(const struct tui_rs *rs, const char *name)
{
    if (rs == NULL)
        return -1;
    for (int i = 0; i < rs->ncols; i++)
        if (strcmp(rs->names[i], name) == 0)
            return i;
    return -1;
}

static const char *cell(const struct tui_rs *rs, int row, const char *col)
{
    int c = tui_rs_col(rs, col);
    if (c < 0 || row < 0 || row >= rs->nrows)
        return NULL;
    return rs->cell[(long)row * rs->ncols + c];
}

const char *tui_rs_get(const struct tui_rs *rs, int row, const char *col)
{
    const char *v = cell(rs, row, col);
    return v ? v : "";
}

bool tui_rs_isnull(const struct tui_rs *rs, int row, const char *col)
{
    return cell(rs, row, col) == NULL;
}

long long tui_rs_ll(const struct tui_rs *rs, int row, const char *col)
{
    const char *v = cell(rs, row, col);
    return v ? strtoll(v, NULL, 10) : 0;
}

double tui_rs_f(const struct tui_rs *rs, int row, const char *col)
{
    const char *v = cell(rs, row, col);
    return v ? strtod(v, NULL) : 0.0;
}

void tui_snapshot_free(struct tui_snapshot *s)
{
    if (s == NULL)
        return;
    for (int i = 0; i < TQ_N; i++)
        tui_rs_free(s->rs[i]);
    free(s->error);
    free(s->detail_title);
    free(s->detail_text);
    free(s->detail_raw);
    free(s);
}

void tui_request_free(struct tui_request *r)
{
    free(r->text);
    free(r->status);
    free(r->entity);
    free(r->type);
    memset(r, 0, sizeof *r);
}

static char *dup_or_null(const char *s)
{
    return s ? xstrdup(s) : NULL;
}

void tui_request_copy(struct tui_request *dst, const struct tui_request *src)
{
    *dst = *src;
    dst->text = dup_or_null(src->text);
    dst->status = dup_or_null(src->status);
    dst->entity = dup_or_null(src->entity);
    dst->type = dup_or_null(src->type);
}

void tui_op_req_free(struct tui_op_req *r)
{
    if (r == NULL)
        return;
    free(r->ids);
    tui_request_free(&r->filter);
    free(r->reason);
    free(r->group_reason);
    free(r->entity);
    free(r->run_type);
    free(r->payload);
    free(r->config);
    free(r);
}

/* Splits line on '|' into at most max fields (in place). */
static int split(char *line, char **f, int max)
{
    int n = 0;
    char *p = line;
    while (n < max) {
        f[n++] = p;
        char *bar = strchr(p, '|');
        if (bar == NULL)
            break;
        *bar = 0;
        p = bar + 1;
    }
    return n;
}

/* Unescapes "\n", "\e" (ESC), "\xHH" and "\\" in a fixture cell. */
static char *unescape(const char *s)
{
    struct strbuf sb = {0};
    for (; *s; s++) {
        if (*s != '\\' || s[1] == 0) {
            strbuf_putc(&sb, *s);
            continue;
        }
        s++;
        if (*s == 'n')
            strbuf_putc(&sb, '\n');
        else if (*s == 'e')
            strbuf_putc(&sb, 0x1b);
        else if (*s == 'x' && s[1] && s[2]) {
            char hex[3] = {s[1], s[2], 0};
            strbuf_putc(&sb, (char)strtol(hex, NULL, 16));
            s += 2;
        } else
            strbuf_putc(&sb, *s);
    }
    return strbuf_detach(&sb);
}

struct tui_snapshot *tui_snapshot_load(const char *path, char **err)
{
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        *err = xasprintf("%s: cannot open", path);
        return NULL;
    }
    struct tui_snapshot *s = xcalloc(1, sizeof *s);
    s->ok = true;
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    int q = -1, lineno = 0;
    char *rows[2048];
    int nrows = 0;
    char *header = NULL;
    bool done = false;
    while (!done) {
        len = getline(&line, &cap, f);
        if (len >= 0) {
            lineno++;
            while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
                line[--len] = 0;
        }
        bool section = len >= 0 && strncmp(line, "== ", 3) == 0;
        if (len < 0 || section) {
            if (q >= 0 && header) { /* close the previous section */
                char *hf[64];
                int nc = split(header, hf, 64);
                struct tui_rs *rs = tui_rs_new(nc, nrows);
                for (int c = 0; c < nc; c++)
                    rs->names[c] = xstrdup(hf[c]);
                for (int r = 0; r < nrows; r++) {
                    char *rf[64];
                    int n = split(rows[r], rf, 64);
                    for (int c = 0; c < nc && c < n; c++)
                        if (strcmp(rf[c], "\\N") != 0) {
                            char *raw = unescape(rf[c]);
                            rs->cell[(long)r * nc + c] = sanitize_str(raw, tui_sanitize_flags());
                            free(raw);
                        }
                    free(rows[r]);
                }
                tui_rs_free(s->rs[q]);
                s->rs[q] = rs;
            }
            free(header);
            header = NULL;
            nrows = 0;
            q = -1;
            if (len < 0) {
                done = true;
                continue;
            }
            const char *name = line + 3;
            if (strcmp(name, "detail") == 0) {
                q = -2;
                continue;
            }
            for (int i = 0; i < TQ_N; i++)
                if (strcmp(query_names[i], name) == 0)
                    q = i;
            if (q < 0) {
                *err = xasprintf("%s:%d: unknown section \"%s\"", path, lineno, name);
                free(line);
                fclose(f);
                tui_snapshot_free(s);
                return NULL;
            }
            continue;
        }
        if (q == -2) { /* "detail" section: kind|id|title then text lines */
            if (s->detail_title == NULL) {
                char *fld[3];
                if (split(line, fld, 3) == 3) {
                    s->detail_kind = (enum tui_detail_kind)atoi(fld[0]);
                    s->detail_id = atoll(fld[1]);
                    s->detail_title = xstrdup(fld[2]);
                }
            } else {
                char *raw = unescape(line);
                char *clean = sanitize_str(raw, SANITIZE_MULTILINE | tui_sanitize_flags());
                char *joined = xasprintf("%s%s%s", s->detail_text ? s->detail_text : "",
                                         s->detail_text ? "\n" : "", clean);
                free(s->detail_text);
                s->detail_text = joined;
                free(raw);
                free(clean);
            }
            continue;
        }
        if (q < 0 || line[0] == '#' || len == 0)
            continue;
        if (header == NULL)
            header = xstrdup(line);
        else if (nrows < (int)TDS_ARRAY_LEN(rows))
            rows[nrows++] = xstrdup(line);
    }
    free(line);
    fclose(f);
    return s;
}
