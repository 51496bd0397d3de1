/*
 * test_backoff.c: the retry delay schedule (exponential, capped, full
 * jitter), table-driven, with a fixed seed so jitter is reproducible.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <cmocka.h>

#include "tds/queue.h"

static const struct {
    int attempt, base, cap;
    long long want_cap_ms;
} caps[] = {
    {1, 60, 3600, 60000}, /* the original's defaults: 60 s base */
    {2, 60, 3600, 120000},
    {3, 60, 3600, 240000},
    {4, 60, 3600, 480000},
    {5, 60, 3600, 960000},
    {6, 60, 3600, 1920000},
    {7, 60, 3600, 3600000},  /* capped */
    {50, 60, 3600, 3600000}, /* no overflow far out */
    {1000, 1, 604800, 604800000},
    {0, 60, 3600, 60000}, /* attempt < 1 is treated as 1 */
    {3, 10, 5, 10000},    /* cap below base: base wins */
    {1, 0, 0, 0},
};

static void test_caps(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof caps / sizeof caps[0]; i++)
        assert_int_equal(queue_backoff_cap_ms(caps[i].attempt, caps[i].base, caps[i].cap),
                         caps[i].want_cap_ms);
}

static void test_full_jitter_bounds_and_spread(void **state)
{
    (void)state;
    unsigned seed = 42;
    for (size_t i = 0; i < sizeof caps / sizeof caps[0]; i++) {
        long long lo = -1, hi = -1, sum = 0;
        const int n = 2000;
        for (int k = 0; k < n; k++) {
            long long d = queue_backoff_ms(caps[i].attempt, caps[i].base, caps[i].cap, &seed);
            assert_true(d >= 0 && d <= caps[i].want_cap_ms);
            if (lo < 0 || d < lo)
                lo = d;
            if (d > hi)
                hi = d;
            sum += d;
        }
        if (caps[i].want_cap_ms >= 1000) {
            /* Full jitter: the draws cover the interval, mean near half of it. */
            assert_true(lo < caps[i].want_cap_ms / 20);
            assert_true(hi > caps[i].want_cap_ms - caps[i].want_cap_ms / 20);
            long long mean = sum / n;
            assert_true(mean > caps[i].want_cap_ms * 4 / 10 && mean < caps[i].want_cap_ms * 6 / 10);
        }
    }
}

static void test_seeded_reproducible(void **state)
{
    (void)state;
    unsigned a = 7, b = 7;
    for (int k = 1; k <= 10; k++)
        assert_int_equal(queue_backoff_ms(k, 60, 3600, &a), queue_backoff_ms(k, 60, 3600, &b));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_caps),
        cmocka_unit_test(test_full_jitter_bounds_and_spread),
        cmocka_unit_test(test_seeded_reproducible),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
