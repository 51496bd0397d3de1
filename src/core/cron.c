/*
 * cron.c: 5-field cron expressions as Vixie cron reads them: "*", lists,
 * ranges, steps ("*\/15", "1-10/2"), month and weekday names, 7 for Sunday,
 * and the rule that when both day fields are restricted a day matching
 * either one matches.  A field counts as unrestricted when it starts with
 * "*" (as in Vixie cron, so "*\/2" in day-of-month is "star").  The macros
 * @yearly @annually @monthly @weekly @daily @midnight @hourly are accepted.
 * cron_next walks local time forward, skipping whole months, days and
 * hours that cannot match, so a search over five years stays cheap.
 */
#include "tds/cron.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct cron_field {
    const char *name;
    int lo, hi;               /* accepted values (dow: 0-7) */
    const char *const *names; /* names[i] is value lo+i, or NULL */
};

static const char *const month_names[] = {"jan", "feb", "mar", "apr", "may", "jun", "jul",
                                          "aug", "sep", "oct", "nov", "dec", NULL};
static const char *const dow_names[] = {"sun", "mon", "tue", "wed", "thu", "fri", "sat", NULL};

static const struct cron_field fields[5] = {
    {"minute", 0, 59, NULL},          {"hour", 0, 23, NULL},
    {"day-of-month", 1, 31, NULL},    {"month", 1, 12, month_names},
    {"day-of-week", 0, 7, dow_names},
};

static const struct {
    const char *name;
    const char *expr;
} macros[] = {
    {"@yearly", "0 0 1 1 *"}, {"@annually", "0 0 1 1 *"}, {"@monthly", "0 0 1 * *"},
    {"@weekly", "0 0 * * 0"}, {"@daily", "0 0 * * *"},    {"@midnight", "0 0 * * *"},
    {"@hourly", "0 * * * *"},
};

/* A copy of s[0..len) for a message: bytes other than printable ASCII
 * become '?', so a message never carries control characters or broken
 * UTF-8 to a terminal or a log (cron lines are ASCII).  Caller frees. */
static char *shown(const char *s, size_t len)
{
    char *r = xstrndup(s, len);
    for (char *q = r; *q; q++)
        if ((unsigned char)*q < 0x20 || (unsigned char)*q > 0x7e)
            *q = '?';
    return r;
}

/* Reads one value (number or name) at *p; returns 0 or -1 with *err set. */
static int parse_value(const struct cron_field *f, const char **p, int *out, char **err)
{
    const char *s = *p;
    if (isdigit((unsigned char)*s)) {
        long v = 0;
        while (isdigit((unsigned char)*s)) {
            if (v < 100000000)
                v = v * 10 + (*s - '0');
            s++;
        }
        if (v < f->lo || v > f->hi) {
            *err = xasprintf("%s: %ld is out of range (%d-%d)", f->name, v, f->lo, f->hi);
            return -1;
        }
        *out = (int)v;
        *p = s;
        return 0;
    }
    if (isalpha((unsigned char)*s) && f->names != NULL) {
        size_t len = 0;
        while (isalpha((unsigned char)s[len]))
            len++;
        for (int i = 0; f->names[i] != NULL; i++) {
            if (len == 3 && strncasecmp(s, f->names[i], 3) == 0) {
                *out = f->lo + i;
                *p = s + len;
                return 0;
            }
        }
        char *w = shown(s, len);
        *err = xasprintf("%s: \"%s\" is not a %s name", f->name, w,
                         f->names == month_names ? "month" : "weekday");
        free(w);
        return -1;
    }
    size_t len = strcspn(s, ",-/");
    if (len == 0)
        *err = xasprintf("%s: a number is missing", f->name);
    else {
        char *w = shown(s, len);
        *err = xasprintf("%s: \"%s\" is not a number%s", f->name, w,
                         f->names == NULL ? "" : " or name");
        free(w);
    }
    return -1;
}

/* Parses one field (text of length len) into *bits; 0 or -1 with *err. */
static int parse_field(const struct cron_field *f, const char *text, size_t len, uint64_t *bits,
                       char **err)
{
    char *buf = xstrndup(text, len);
    char *seen = shown(text, strlen(buf)); /* buf as a message shows it */
    int rc = -1;
    *bits = 0;
    const char *p = buf;
    for (;;) {
        int lo, hi, step = 1;
        if (*p == ',' || *p == '\0') {
            *err = xasprintf("%s: empty item in list \"%s\"", f->name, seen);
            goto out;
        }
        if (*p == '*') {
            lo = f->lo;
            hi = f->hi == 7 ? 6 : f->hi;
            p++;
        } else {
            if (parse_value(f, &p, &lo, err) != 0)
                goto out;
            hi = lo;
            if (*p == '-') {
                p++;
                if (parse_value(f, &p, &hi, err) != 0)
                    goto out;
                if (hi < lo) {
                    *err = xasprintf("%s: range %d-%d goes backwards", f->name, lo, hi);
                    goto out;
                }
            } else if (*p == '/') {
                /* "5/10": from 5 to the end, every 10 ("7/2" in day-of-week: Sunday) */
                hi = f->hi == 7 && lo < 7 ? 6 : f->hi;
            }
        }
        if (*p == '/') {
            p++;
            if (!isdigit((unsigned char)*p)) {
                *err = xasprintf("%s: step after '/' must be a number", f->name);
                goto out;
            }
            long v = 0;
            while (isdigit((unsigned char)*p)) {
                if (v < 100000000)
                    v = v * 10 + (*p - '0');
                p++;
            }
            if (v < 1 || v > f->hi) {
                *err = xasprintf("%s: step %ld is out of range (1-%d)", f->name, v, f->hi);
                goto out;
            }
            step = (int)v;
        }
        for (int v = lo; v <= hi; v += step)
            *bits |= (uint64_t)1 << (f->hi == 7 && v == 7 ? 0 : v);
        if (*p == '\0')
            break;
        if (*p != ',') {
            *err = xasprintf("%s: unexpected '%c' in \"%s\"", f->name,
                             seen[p - buf], seen);
            goto out;
        }
        p++;
    }
    rc = 0;
out:
    free(seen);
    free(buf);
    return rc;
}

/*
 * Parses a cron line into *out.  Returns 0, or -1 with *err (caller frees)
 * set to a message without location.
 */
int cron_parse(const char *s, struct cron_expr *out, char **err)
{
    *err = NULL;
    memset(out, 0, sizeof *out);
    if (s == NULL)
        s = "";
    while (isspace((unsigned char)*s))
        s++;
    if (*s == '@') {
        size_t len = strcspn(s, " \t");
        const char *rest = s + len;
        while (isspace((unsigned char)*rest))
            rest++;
        for (size_t i = 0; i < TDS_ARRAY_LEN(macros); i++)
            if (strlen(macros[i].name) == len && strncasecmp(s, macros[i].name, len) == 0 &&
                *rest == '\0')
                return cron_parse(macros[i].expr, out, err);
        char *w = shown(s, len);
        *err = xasprintf("unknown cron macro \"%s\" (use @yearly, @monthly, @weekly, @daily or "
                         "@hourly)",
                         w);
        free(w);
        return -1;
    }
    const char *start[6];
    size_t len[6];
    int n = 0;
    const char *p = s;
    while (*p != '\0') {
        const char *b = p;
        while (*p != '\0' && !isspace((unsigned char)*p))
            p++;
        if (n < 6) {
            start[n] = b;
            len[n] = (size_t)(p - b);
        }
        n++;
        while (isspace((unsigned char)*p))
            p++;
    }
    if (n == 0) {
        *err = xstrdup("cron line is empty");
        return -1;
    }
    if (n != 5) {
        *err = xasprintf("cron line has %d field%s, expected 5 (minute hour day-of-month month "
                         "day-of-week)",
                         n, n == 1 ? "" : "s");
        return -1;
    }
    uint64_t bits[5];
    for (int i = 0; i < 5; i++)
        if (parse_field(&fields[i], start[i], len[i], &bits[i], err) != 0)
            return -1;
    out->minute = bits[0];
    out->hour = (uint32_t)bits[1];
    out->dom = (uint32_t)bits[2];
    out->month = (uint16_t)bits[3];
    out->dow = (uint8_t)bits[4];
    out->dom_star = start[2][0] == '*';
    out->dow_star = start[4][0] == '*';
    return 0;
}

static bool day_matches(const struct cron_expr *e, const struct tm *tm)
{
    bool dom = (e->dom >> tm->tm_mday) & 1u;
    bool dow = (e->dow >> tm->tm_wday) & 1u;
    if (e->dom_star || e->dow_star)
        return dom && dow;
    return dom || dow;
}

/* True when t (rounded down to the minute) matches e.  Can't fail. */
bool cron_matches(const struct cron_expr *e, time_t t)
{
    struct tm tm;
    if (localtime_r(&t, &tm) == NULL)
        return false;
    return ((e->minute >> tm.tm_min) & 1u) && ((e->hour >> tm.tm_hour) & 1u) &&
           ((e->month >> (tm.tm_mon + 1)) & 1u) && day_matches(e, &tm);
}

/* Local midnight at the start of the day after tm's, or of the next month's
 * first day; falls back to the next hour boundary if mktime does not move
 * forward (it always should). */
static time_t skip_to(const struct tm *now, time_t t, bool next_month)
{
    struct tm n = *now;
    n.tm_sec = 0;
    n.tm_min = 0;
    n.tm_hour = 0;
    if (next_month) {
        n.tm_mday = 1;
        n.tm_mon++;
    } else {
        n.tm_mday++;
    }
    n.tm_isdst = -1;
    time_t r = mktime(&n);
    if (r == (time_t)-1 || r <= t)
        return t + (60 - now->tm_min) * 60;
    return r;
}

/*
 * Returns the first minute that matches e strictly after `after`, or
 * (time_t)-1 when none comes within five years.  Local time.
 */
time_t cron_next(const struct cron_expr *e, time_t after)
{
    struct tm tm;
    if (localtime_r(&after, &tm) == NULL)
        return (time_t)-1;
    time_t t = after - tm.tm_sec + 60;
    time_t end = after + (time_t)5 * 366 * 86400;
    while (t <= end) {
        if (localtime_r(&t, &tm) == NULL)
            return (time_t)-1;
        if (!((e->month >> (tm.tm_mon + 1)) & 1u)) {
            t = skip_to(&tm, t, true);
            continue;
        }
        if (!day_matches(e, &tm)) {
            t = skip_to(&tm, t, false);
            continue;
        }
        if (!((e->hour >> tm.tm_hour) & 1u)) {
            t += (60 - tm.tm_min) * 60 - tm.tm_sec;
            continue;
        }
        if (!((e->minute >> tm.tm_min) & 1u)) {
            t += 60 - tm.tm_sec;
            continue;
        }
        return t;
    }
    return (time_t)-1;
}
