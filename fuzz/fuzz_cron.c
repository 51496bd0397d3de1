/*
 * fuzz_cron.c: the cron parser (src/core/cron.c).  The input is a cron line
 * (schedule.* in tds.yaml); when cron_parse accepts it, cron_next is asked
 * for the next few firings from fixed instants (one inside a daylight-saving
 * change of the time zone set below) and each answer must be later than the
 * instant, within five years, and match the expression.  A refusal must come
 * with a one-line message.  Bounded: cron_next gives up after five years.
 */
#include <time.h>

#include "fuzz.h"
#include "tds/cron.h"

FUZZ_ENTRY(cron)
{
    static bool tz_set;
    if (!tz_set) {
        /* A zone with daylight saving, so skipped and repeated hours occur. */
        setenv("TZ", "America/New_York", 1);
        tzset();
        tz_set = true;
    }
    if (size > 512)
        return 0;
    char *line = fuzz_strndup(data, size);
    struct cron_expr e;
    char *err = NULL;
    if (cron_parse(line, &e, &err) != 0) {
        FUZZ_CHECK(err != NULL, "refused without a message");
        FUZZ_CHECK(fuzz_one_line(err), "message is not one line: \"%s\"", err);
        free(err);
        free(line);
        return 0;
    }
    FUZZ_CHECK(err == NULL, "accepted with a message");
    FUZZ_CHECK(e.minute != 0 && e.hour != 0 && e.dom != 0 && e.month != 0 && e.dow != 0,
               "accepted an expression with an empty field: \"%s\"", line);
    FUZZ_CHECK((e.minute >> 60) == 0 && (e.hour >> 24) == 0 && (e.dom & 1u) == 0 &&
                   (e.month & 1u) == 0 && (e.month >> 13) == 0 && (e.dow >> 7) == 0,
               "bits out of range for \"%s\"", line);
    static const time_t starts[] = {
        1700000000,  /* 2023-11-14 */
        1710054000,  /* 2024-03-10 03:00 EDT, just after the spring change */
        1730613600,  /* 2024-11-03 02:00 EDT->EST, the autumn change */
        951782400,   /* 2000-02-29 */
    };
    for (size_t i = 0; i < sizeof starts / sizeof starts[0]; i++) {
        time_t t = starts[i];
        for (int k = 0; k < 3; k++) {
            time_t nx = cron_next(&e, t);
            if (nx == (time_t)-1)
                break;
            FUZZ_CHECK(nx > t, "cron_next went back for \"%s\"", line);
            FUZZ_CHECK(nx <= t + (time_t)5 * 366 * 86400 + 3600, "beyond five years");
            FUZZ_CHECK(nx % 60 == 0, "not on a minute");
            FUZZ_CHECK(cron_matches(&e, nx), "cron_next %lld does not match \"%s\"",
                       (long long)nx, line);
            t = nx;
        }
    }
    free(line);
    return 0;
}
