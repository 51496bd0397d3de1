/*
 * test_webhook_metrics.c: the in-process metrics registry: bucket placement,
 * sums, counters, and no lost update when many threads record at once.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "tds/metrics.h"

static void test_buckets(void **state)
{
    (void)state;
    metrics_reset();
    metrics_observe(METRIC_API_CALL, 0.0004);  /* bucket 0 (<= 0.0005) */
    metrics_observe(METRIC_API_CALL, 0.0005);  /* bucket 0: le is inclusive */
    metrics_observe(METRIC_API_CALL, 0.003);   /* bucket 3 (<= 0.005) */
    metrics_observe(METRIC_API_CALL, 99);      /* +Inf only */
    metrics_observe(METRIC_API_CALL, -1);      /* counts as 0 */
    struct metrics_hist_snapshot s;
    metrics_hist_get(METRIC_API_CALL, &s);
    assert_int_equal(s.count, 5);
    assert_int_equal(s.bucket[0], 3);
    assert_int_equal(s.bucket[3], 1);
    uint64_t in_buckets = 0;
    for (int i = 0; i < METRICS_NBUCKETS; i++)
        in_buckets += s.bucket[i];
    assert_int_equal(in_buckets, 4);
    assert_true(s.sum > 99.0038 && s.sum < 99.0040);
    metrics_hist_get(METRIC_ITEM_APPLY, &s);
    assert_int_equal(s.count, 0);
    assert_string_equal(metrics_hist_name(METRIC_WEBHOOK_INTAKE), "tds_webhook_intake_seconds");
}

static void *hammer(void *arg)
{
    (void)arg;
    for (int i = 0; i < 100000; i++) {
        metrics_observe(METRIC_ITEM_APPLY, 0.002);
        metrics_count(METRIC_RETRIES, 1);
    }
    return NULL;
}

static void test_threads(void **state)
{
    (void)state;
    metrics_reset();
    pthread_t t[8];
    for (int i = 0; i < 8; i++)
        pthread_create(&t[i], NULL, hammer, NULL);
    for (int i = 0; i < 8; i++)
        pthread_join(t[i], NULL);
    struct metrics_hist_snapshot s;
    metrics_hist_get(METRIC_ITEM_APPLY, &s);
    assert_int_equal(s.count, 800000);
    assert_int_equal(metrics_counter_get(METRIC_RETRIES), 800000);
    metrics_count(METRIC_RETRIES, -5); /* ignored */
    assert_int_equal(metrics_counter_get(METRIC_RETRIES), 800000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_buckets),
                                       cmocka_unit_test(test_threads)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
