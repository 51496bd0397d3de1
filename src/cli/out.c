/*
 * out.c: how subcommands print rows.  On a terminal: an aligned table with a
 * header, long cells cut, control characters made harmless.  Piped: one
 * tab-separated line per row, no header, for cut and awk.  With --json: an
 * array of objects whose keys are the column names and whose values keep
 * their SQL types (numbers, booleans, JSON, null) — the stable form for
 * scripts, documented in tds(1).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <wchar.h>

#include "tds/cli.h"
#include "tds/sanitize.h"

enum { OID_BOOL = 16, OID_INT8 = 20, OID_INT2 = 21, OID_INT4 = 23, OID_JSON = 114,
       OID_FLOAT4 = 700, OID_FLOAT8 = 701, OID_NUMERIC = 1700, OID_JSONB = 3802 };

cJSON *cli_row_json(const PGresult *res, int row)
{
    cJSON *o = cJSON_CreateObject();
    for (int c = 0; c < PQnfields(res); c++) {
        const char *name = PQfname(res, c);
        if (PQgetisnull(res, row, c)) {
            cJSON_AddNullToObject(o, name);
            continue;
        }
        const char *v = PQgetvalue(res, row, c);
        switch (PQftype(res, c)) {
        case OID_BOOL:
            cJSON_AddBoolToObject(o, name, v[0] == 't');
            break;
        case OID_INT2:
        case OID_INT4:
        case OID_INT8:
        case OID_FLOAT4:
        case OID_FLOAT8:
        case OID_NUMERIC:
            cJSON_AddNumberToObject(o, name, strtod(v, NULL));
            break;
        case OID_JSON:
        case OID_JSONB: {
            cJSON *j = cJSON_Parse(v);
            cJSON_AddItemToObject(o, name, j ? j : cJSON_CreateString(v));
            break;
        }
        default:
            cJSON_AddStringToObject(o, name, v);
        }
    }
    return o;
}

void cli_print_json(cJSON *j)
{
    char *s = cJSON_Print(j);
    char *safe = sanitize_json(s ? s : "null");
    puts(safe);
    free(safe);
    cJSON_free(s);
}

const char *cli_text(const char *s)
{
    static char *slot[8]; /* the CLI prints from its main thread only */
    static unsigned next;
    unsigned k = next++ % TDS_ARRAY_LEN(slot);
    free(slot[k]);
    slot[k] = sanitize_str(s, 0);
    return slot[k];
}

void cli_err(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *msg = xvasprintf(fmt, ap);
    va_end(ap);
    char *safe = sanitize_str(msg, 0);
    fprintf(stderr, "tds: %s\n", safe);
    free(safe);
    free(msg);
}

/* Display width of a sanitized cell. */
static size_t width_of(const char *s)
{
    size_t n = strlen(s) + 1;
    wchar_t *w = xcalloc(n, sizeof *w);
    size_t len = mbstowcs(w, s, n);
    size_t width = 0;
    if (len == (size_t)-1)
        width = strlen(s);
    else
        for (size_t i = 0; i < len; i++) {
            int cw = wcwidth(w[i]);
            width += cw > 0 ? (size_t)cw : 0;
        }
    free(w);
    return width;
}

/* A cell for a terminal: sanitized, cut to max display columns. */
static char *tty_cell(const char *v, size_t max)
{
    char *s = sanitize_str(v, 0);
    if (width_of(s) <= max)
        return s;
    /* Cut by characters until it fits, then add an ellipsis. */
    size_t n = strlen(s);
    while (n > 0) {
        n--;
        while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
            n--;
        s[n] = '\0';
        if (width_of(s) + 1 <= max)
            break;
    }
    char *out = xasprintf("%s\xE2\x80\xA6", s);
    free(s);
    return out;
}

void cli_print_rows(const PGresult *res, const struct cli_fmt *f)
{
    int nrows = PQntuples(res), ncols = PQnfields(res);
    if (f->json) {
        cJSON *arr = cJSON_CreateArray();
        for (int r = 0; r < nrows; r++)
            cJSON_AddItemToArray(arr, cli_row_json(res, r));
        cli_print_json(arr);
        cJSON_Delete(arr);
        return;
    }
    if (!isatty(STDOUT_FILENO)) {
        for (int r = 0; r < nrows; r++) {
            for (int c = 0; c < ncols; c++) {
                /* A tab or newline in a value comes out as \t / \n. */
                char *cell = sanitize_str(PQgetisnull(res, r, c) ? "" : PQgetvalue(res, r, c), 0);
                printf("%s%s", c ? "\t" : "", cell);
                free(cell);
            }
            putchar('\n');
        }
        return;
    }
    char ***cells = xcalloc((size_t)nrows + 1, sizeof *cells);
    size_t *w = xcalloc((size_t)ncols + 1, sizeof *w);
    for (int r = -1; r < nrows; r++) {
        cells[r + 1] = xcalloc((size_t)ncols + 1, sizeof **cells);
        for (int c = 0; c < ncols; c++) {
            const char *v = r < 0 ? PQfname(res, c)
                                  : (PQgetisnull(res, r, c) ? "-" : PQgetvalue(res, r, c));
            cells[r + 1][c] = tty_cell(v, 48);
            size_t cw = width_of(cells[r + 1][c]);
            if (cw > w[c])
                w[c] = cw;
        }
    }
    for (int r = 0; r <= nrows; r++) {
        for (int c = 0; c < ncols; c++) {
            const char *cell = cells[r][c];
            if (c == ncols - 1)
                printf("%s", cell);
            else
                printf("%s%*s  ", cell, (int)(w[c] - width_of(cell)), "");
            free(cells[r][c]);
        }
        putchar('\n');
        free(cells[r]);
    }
    free(cells);
    free(w);
}
