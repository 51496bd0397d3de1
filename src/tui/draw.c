/*
 * draw.c: drawing helpers every pane uses: UTF-8 text clipped and padded by
 * display width (wcwidth, never bytes), the glyph set (Unicode or the ASCII
 * fallback for terminals whose locale is not UTF-8), and the formatting of
 * ages, counts and times.
 */
#include <langinfo.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wchar.h>

#include "tds/sanitize.h"
#include "tui_internal.h"

struct tui_glyphs tui_g;

void tui_glyphs_init(bool utf8)
{
    static const char *uspark[8] = {"\u2581", "\u2582", "\u2583", "\u2584",
                                    "\u2585", "\u2586", "\u2587", "\u2588"};
    static const char *aspark[8] = {"_", ".", "-", "=", "+", "*", "#", "#"};
    if (utf8) {
        tui_g = (struct tui_glyphs){.hline = "\u2500", .vline = "\u2502", .mark = "\u25cf",
                                    .bar_full = "\u2588", .bar_empty = "\u2591",
                                    .ellipsis = "\u2026", .up = "\u25b2", .down = "\u25bc"};
        memcpy(tui_g.spark, uspark, sizeof uspark);
        tui_g.corner[0] = "\u250c", tui_g.corner[1] = "\u2510";
        tui_g.corner[2] = "\u2514", tui_g.corner[3] = "\u2518";
    } else {
        tui_g = (struct tui_glyphs){.hline = "-", .vline = "|", .mark = "*", .bar_full = "#",
                                    .bar_empty = ".", .ellipsis = "...", .up = "^", .down = "v"};
        memcpy(tui_g.spark, aspark, sizeof aspark);
        tui_g.corner[0] = tui_g.corner[1] = tui_g.corner[2] = tui_g.corner[3] = "+";
    }
}

unsigned tui_sanitize_flags(void)
{
    const char *cs = nl_langinfo(CODESET);
    bool utf8 = cs && (strcmp(cs, "UTF-8") == 0 || strcmp(cs, "utf8") == 0);
    return utf8 ? 0 : SANITIZE_ASCII;
}

/* Decodes one character of sanitized UTF-8; returns bytes used (>= 1). */
static int next_wc(const char *s, wchar_t *wc)
{
    mbstate_t st;
    memset(&st, 0, sizeof st);
    size_t n = mbrtowc(wc, s, MB_CUR_MAX, &st);
    if (n == (size_t)-1 || n == (size_t)-2 || n == 0) {
        *wc = L'?';
        return 1;
    }
    return (int)n;
}

static int wc_width(wchar_t wc)
{
    int w = wcwidth(wc);
    return w < 0 ? 1 : w;
}

int tui_width(const char *s)
{
    int w = 0;
    while (s && *s) {
        wchar_t wc;
        s += next_wc(s, &wc);
        w += wc_width(wc);
    }
    return w;
}

int tui_put(int y, int x, const char *s, int w, attr_t a, bool pad)
{
    if (w <= 0)
        return 0;
    int total = tui_width(s);
    int ell = tui_width(tui_g.ellipsis);
    int budget = total > w ? w - ell : w;
    int used = 0;
    wchar_t buf[512];
    int nb = 0;
    const char *p = s ? s : "";
    while (*p && nb < (int)TDS_ARRAY_LEN(buf) - 1) {
        wchar_t wc;
        int n = next_wc(p, &wc);
        int cw = wc_width(wc);
        if (used + cw > budget)
            break;
        buf[nb++] = wc;
        used += cw;
        p += n;
    }
    buf[nb] = 0;
    attr_t old;
    short pair;
    attr_get(&old, &pair, NULL);
    attrset(a);
    mvaddnwstr(y, x, buf, nb);
    if (total > w && w >= ell) {
        addstr(tui_g.ellipsis);
        used += ell;
    }
    if (pad)
        for (; used < w; used++)
            addch(' ');
    attrset(old);
    return used;
}

void tui_fill(int y, int x, int w, attr_t a)
{
    attr_t old;
    short pair;
    attr_get(&old, &pair, NULL);
    attrset(a);
    move(y, x);
    for (int i = 0; i < w; i++)
        addch(' ');
    attrset(old);
}

void tui_fmt_age(char *buf, size_t n, long long s)
{
    if (s < 0)
        s = 0;
    if (s < 60)
        snprintf(buf, n, "%llds", s);
    else if (s < 3600)
        snprintf(buf, n, "%lldm", s / 60);
    else if (s < 86400)
        snprintf(buf, n, "%lldh %lldm", s / 3600, s % 3600 / 60);
    else
        snprintf(buf, n, "%lldd %lldh", s / 86400, s % 86400 / 3600);
}

void tui_fmt_count(char *buf, size_t n, long long v)
{
    char tmp[32];
    snprintf(tmp, sizeof tmp, "%lld", v < 0 ? -v : v);
    size_t len = strlen(tmp), o = 0;
    char out[48];
    if (v < 0)
        out[o++] = '-';
    for (size_t i = 0; i < len; i++) {
        if (i > 0 && (len - i) % 3 == 0)
            out[o++] = ',';
        out[o++] = tmp[i];
    }
    out[o] = 0;
    snprintf(buf, n, "%s", out);
}

void tui_fmt_duration_words(char *buf, size_t n, long long s)
{
    if (s < 0)
        s = 0;
#define PL(v) ((v) == 1 ? "" : "s")
    if (s < 60)
        snprintf(buf, n, "%lld second%s", s, PL(s));
    else if (s < 3600)
        snprintf(buf, n, "%lld minute%s %lld s", s / 60, PL(s / 60), s % 60);
    else if (s < 86400)
        snprintf(buf, n, "%lld hour%s %lld min", s / 3600, PL(s / 3600), s % 3600 / 60);
    else
        snprintf(buf, n, "%lld day%s %lld h", s / 86400, PL(s / 86400), s % 86400 / 3600);
#undef PL
}

void tui_fmt_time(char *buf, size_t n, long long epoch)
{
    if (epoch <= 0) {
        snprintf(buf, n, "-");
        return;
    }
    time_t t = (time_t)epoch;
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, n, "%Y-%m-%d %H:%M:%S", &tm);
}

enum tui_role tui_status_role(const char *s)
{
    static const struct {
        const char *name;
        enum tui_role role;
    } map[] = {
        {"completed", ROLE_OK},   {"running", ROLE_INFO},      {"pending", ROLE_NORMAL},
        {"completed_with_errors", ROLE_WARN},
        {"processing", ROLE_INFO}, {"retry", ROLE_WARN},       {"failed", ROLE_ERROR},
        {"dead", ROLE_ERROR},     {"cancelled", ROLE_DIM},     {"interrupted", ROLE_WARN},
        {"info", ROLE_INFO},      {"warning", ROLE_WARN},      {"error", ROLE_ERROR},
        {"critical", ROLE_CRITICAL}, {"paused", ROLE_WARN},    {"draining", ROLE_WARN},
        {"stopped", ROLE_DIM},    {"starting", ROLE_INFO},     {"healthy", ROLE_OK},
        {"degraded", ROLE_WARN},  {"down", ROLE_CRITICAL},
    };
    for (size_t i = 0; s && i < TDS_ARRAY_LEN(map); i++)
        if (strcmp(map[i].name, s) == 0)
            return map[i].role;
    return ROLE_NORMAL;
}
