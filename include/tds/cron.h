/*
 * cron.h: standard 5-field cron expressions (minute hour day-of-month month
 * day-of-week) with lists, ranges, steps, names (jan, mon) and the usual
 * rule that when both day fields are restricted, either may match.  Used to
 * validate schedule.* and by the scheduler.  Times are in the host's local
 * time zone (TZ).
 */
#ifndef TDS_CRON_H
#define TDS_CRON_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "tds/util.h"

struct cron_expr {
    uint64_t minute;    /* bit n: minute n (0-59) */
    uint32_t hour;      /* 0-23 */
    uint32_t dom;       /* 1-31 */
    uint16_t month;     /* 1-12 */
    uint8_t dow;        /* 0-6, Sunday 0 (7 accepted as Sunday) */
    bool dom_star;      /* day-of-month field was "*" */
    bool dow_star;
};

/*
 * Parses s.  Returns 0, or -1 with *err set to a message without location
 * (the caller adds file:line:col), e.g. "cron line has 6 fields, expected 5
 * (minute hour day month weekday)".  The caller frees *err.
 */
int cron_parse(const char *s, struct cron_expr *out, char **err) TDS_MUST_CHECK;

/* The first matching minute strictly after `after`; (time_t)-1 if none
 * within five years (e.g. "0 0 31 2 *"). */
time_t cron_next(const struct cron_expr *e, time_t after);

/* True when t (rounded down to the minute) matches e. */
bool cron_matches(const struct cron_expr *e, time_t t);

#endif
