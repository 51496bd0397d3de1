/*
 * test_cron.c: cron expressions, table-driven: lines that parse (and what
 * they set), lines that fail (and the exact message), and cron_next over a
 * set of expressions in UTC so no daylight-saving change interferes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "tds/cron.h"

static const struct {
    const char *line;
    uint64_t minute;
    uint32_t hour;
    uint8_t dow;
} parse_ok[] = {
    {"*/15 * * * *", (1ull << 0) | (1ull << 15) | (1ull << 30) | (1ull << 45), 0xffffff, 0x7f},
    {"0 9 * * mon-fri", 1, 1u << 9, 0x3e},
    {"1-10/2 * * * *", (1ull << 1) | (1ull << 3) | (1ull << 5) | (1ull << 7) | (1ull << 9),
     0xffffff, 0x7f},
    {"0 0 * * 7", 1, 1, 0x01},
    {"0 0 * * 5-7", 1, 1, 0x61},
    {"@daily", 1, 1, 0x7f},
    {"@HOURLY", 1, 0xffffff, 0x7f},
    {"  0 2 * * *  ", 1, 1u << 2, 0x7f},
    {"0,30 8-17/3 * * SUN", 1 | (1ull << 30), (1u << 8) | (1u << 11) | (1u << 14) | (1u << 17),
     0x01},
    {"5/20 * * * *", (1ull << 5) | (1ull << 25) | (1ull << 45), 0xffffff, 0x7f},
};

static const struct {
    const char *line;
    const char *msg;
} parse_bad[] = {
    {"0 2 * * * *",
     "cron line has 6 fields, expected 5 (minute hour day-of-month month day-of-week)"},
    {"* * *", "cron line has 3 fields, expected 5 (minute hour day-of-month month day-of-week)"},
    {"", "cron line is empty"},
    {"   ", "cron line is empty"},
    {"61 * * * *", "minute: 61 is out of range (0-59)"},
    {"* 24 * * *", "hour: 24 is out of range (0-23)"},
    {"* * 0 * *", "day-of-month: 0 is out of range (1-31)"},
    {"* * * 13 *", "month: 13 is out of range (1-12)"},
    {"* * * * 8", "day-of-week: 8 is out of range (0-7)"},
    {"*/0 * * * *", "minute: step 0 is out of range (1-59)"},
    {"5-1 * * * *", "minute: range 5-1 goes backwards"},
    {"* * * foo *", "month: \"foo\" is not a month name"},
    {"* * * * funday", "day-of-week: \"funday\" is not a weekday name"},
    {"x * * * *", "minute: \"x\" is not a number"},
    {"1,,2 * * * *", "minute: empty item in list \"1,,2\""},
    {"1-2x * * * *", "minute: unexpected 'x' in \"1-2x\""},
    {"*/ * * * *", "minute: step after '/' must be a number"},
    {"@reboot", "unknown cron macro \"@reboot\" (use @yearly, @monthly, @weekly, @daily or "
                "@hourly)"},
    {"99999 * * * *", "minute: 99999 is out of range (0-59)"},
};

/* 2024-01-01 00:00:00 UTC, a Monday. */
#define JAN1 ((time_t)1704067200)

static const struct {
    const char *line;
    time_t after, want;
} next_cases[] = {
    {"*/15 * * * *", JAN1, JAN1 + 900},
    {"* * * * *", JAN1 + 30, JAN1 + 60},
    {"0 0 * * *", JAN1, JAN1 + 86400}, /* strictly after */
    {"0 2 * * *", JAN1, JAN1 + 7200},
    {"0 0 1 * *", JAN1, 1706745600},              /* 2024-02-01 */
    {"30 9 * * mon-fri", 1704499200, 1704706200}, /* Sat 6 Jan -> Mon 8 Jan 09:30 */
    {"0 0 29 2 *", JAN1, 1709164800},             /* leap day 2024 */
    {"0 0 13 * fri", JAN1, 1704412800},           /* either: Friday 5 Jan */
    {"0 0 */2 * sat", JAN1, 1705104000},          /* both (dom starts with *): Sat 13 */
    {"59 23 31 12 *", JAN1, 1735689540},
    {"0 0 31 2 *", JAN1, (time_t)-1},                   /* never */
    {"0 12 * * 0", JAN1, JAN1 + 6 * 86400 + 12 * 3600}, /* Sunday 7 Jan 12:00 */
};

static void test_parse_ok(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof parse_ok / sizeof parse_ok[0]; i++) {
        struct cron_expr e;
        char *err = NULL;
        if (cron_parse(parse_ok[i].line, &e, &err) != 0)
            fail_msg("\"%s\": %s", parse_ok[i].line, err);
        assert_null(err);
        if (e.minute != parse_ok[i].minute || e.hour != parse_ok[i].hour ||
            e.dow != parse_ok[i].dow)
            fail_msg("\"%s\": minute %llx hour %x dow %x", parse_ok[i].line,
                     (unsigned long long)e.minute, e.hour, e.dow);
    }
}

static void test_parse_bad(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof parse_bad / sizeof parse_bad[0]; i++) {
        struct cron_expr e;
        char *err = NULL;
        if (cron_parse(parse_bad[i].line, &e, &err) == 0)
            fail_msg("\"%s\" parsed but should not", parse_bad[i].line);
        assert_non_null(err);
        if (strcmp(err, parse_bad[i].msg) != 0)
            fail_msg("\"%s\": got <%s>, want <%s>", parse_bad[i].line, err, parse_bad[i].msg);
        free(err);
    }
}

static void test_star_flags(void **state)
{
    (void)state;
    struct cron_expr e;
    char *err = NULL;
    assert_int_equal(cron_parse("0 0 */2 * sat", &e, &err), 0);
    assert_true(e.dom_star);
    assert_false(e.dow_star);
    assert_int_equal(cron_parse("0 0 13 * fri", &e, &err), 0);
    assert_false(e.dom_star);
    assert_false(e.dow_star);
    assert_int_equal(cron_parse("0 0 * jan-mar *", &e, &err), 0);
    assert_int_equal(e.month, 0x0e);
    assert_int_equal(e.dom, 0xfffffffe);
}

static void test_next(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof next_cases / sizeof next_cases[0]; i++) {
        struct cron_expr e;
        char *err = NULL;
        assert_int_equal(cron_parse(next_cases[i].line, &e, &err), 0);
        time_t got = cron_next(&e, next_cases[i].after);
        if (got != next_cases[i].want)
            fail_msg("\"%s\" after %lld: got %lld, want %lld", next_cases[i].line,
                     (long long)next_cases[i].after, (long long)got, (long long)next_cases[i].want);
        if (got != (time_t)-1) {
            assert_true(cron_matches(&e, got));
            assert_false(cron_matches(&e, got - 60) && got - 60 > next_cases[i].after);
        }
    }
}

/* Every step of a year of "*\/7 3 * * mon": each result matches, and no
 * matching minute lies between consecutive results (spot-checked). */
static void test_next_walk(void **state)
{
    (void)state;
    struct cron_expr e;
    char *err = NULL;
    assert_int_equal(cron_parse("*/7 3 * * mon", &e, &err), 0);
    time_t t = JAN1;
    int n = 0;
    while ((t = cron_next(&e, t)) != (time_t)-1 && t < JAN1 + 366 * 86400) {
        assert_true(cron_matches(&e, t));
        struct tm tm;
        gmtime_r(&t, &tm);
        assert_int_equal(tm.tm_wday, 1);
        assert_int_equal(tm.tm_hour, 3);
        assert_int_equal(tm.tm_min % 7, 0);
        n++;
    }
    assert_int_equal(n, 53 * 9); /* 53 Mondays in 2024 from Jan 1, 9 minutes each */
}

int main(void)
{
    setenv("TZ", "UTC", 1);
    tzset();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_ok),   cmocka_unit_test(test_parse_bad),
        cmocka_unit_test(test_star_flags), cmocka_unit_test(test_next),
        cmocka_unit_test(test_next_walk),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
