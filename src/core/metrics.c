/*
 * metrics.c: the in-process metrics registry: fixed-bucket histograms and
 * counters held in C11 atomics, so any thread (workers, the API client, the
 * HTTP listener) records without a lock and without setup.  The sum of a
 * histogram is kept in integer nanoseconds so it can be an atomic too.
 */
#include "tds/metrics.h"

#include <stdatomic.h>
#include <string.h>

const double metrics_buckets[METRICS_NBUCKETS] = {
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
    0.1,    0.25,  0.5,    1.0,   2.5,  5.0,   10.0,
};

struct hist {
    atomic_uint_fast64_t bucket[METRICS_NBUCKETS + 1]; /* last: +Inf only */
    atomic_uint_fast64_t sum_ns;
};

static struct hist hists[METRIC_HIST__COUNT];
static atomic_llong counters[METRIC_COUNTER__COUNT];

static const struct {
    const char *name;
    const char *help;
} hist_meta[METRIC_HIST__COUNT] = {
    [METRIC_ITEM_APPLY] = {"tds_item_apply_seconds", "Time to apply one queue item."},
    [METRIC_WEBHOOK_INTAKE] = {"tds_webhook_intake_seconds",
                               "Time from a webhook request's start to its answer."},
    [METRIC_API_CALL] = {"tds_api_call_seconds", "Duration of one Zoho API HTTP request."},
};

void metrics_observe(enum metric_hist h, double seconds)
{
    if ((unsigned)h >= METRIC_HIST__COUNT)
        return;
    if (!(seconds > 0)) /* negative or NaN */
        seconds = 0;
    size_t i = 0;
    while (i < METRICS_NBUCKETS && seconds > metrics_buckets[i])
        i++;
    atomic_fetch_add_explicit(&hists[h].bucket[i], 1, memory_order_relaxed);
    double ns = seconds * 1e9;
    if (ns > 1e18)
        ns = 1e18;
    atomic_fetch_add_explicit(&hists[h].sum_ns, (uint_fast64_t)ns, memory_order_relaxed);
}

void metrics_count(enum metric_counter c, long long n)
{
    if ((unsigned)c >= METRIC_COUNTER__COUNT || n <= 0)
        return;
    atomic_fetch_add_explicit(&counters[c], n, memory_order_relaxed);
}

void metrics_hist_get(enum metric_hist h, struct metrics_hist_snapshot *out)
{
    memset(out, 0, sizeof *out);
    if ((unsigned)h >= METRIC_HIST__COUNT)
        return;
    for (size_t i = 0; i <= METRICS_NBUCKETS; i++) {
        uint64_t v = atomic_load_explicit(&hists[h].bucket[i], memory_order_relaxed);
        if (i < METRICS_NBUCKETS)
            out->bucket[i] = v;
        out->count += v;
    }
    out->sum = (double)atomic_load_explicit(&hists[h].sum_ns, memory_order_relaxed) / 1e9;
}

long long metrics_counter_get(enum metric_counter c)
{
    if ((unsigned)c >= METRIC_COUNTER__COUNT)
        return 0;
    return atomic_load_explicit(&counters[c], memory_order_relaxed);
}

const char *metrics_hist_name(enum metric_hist h)
{
    return (unsigned)h < METRIC_HIST__COUNT ? hist_meta[h].name : "tds_unknown_seconds";
}

const char *metrics_hist_help(enum metric_hist h)
{
    return (unsigned)h < METRIC_HIST__COUNT ? hist_meta[h].help : "";
}

void metrics_reset(void)
{
    for (size_t h = 0; h < METRIC_HIST__COUNT; h++) {
        for (size_t i = 0; i <= METRICS_NBUCKETS; i++)
            atomic_store(&hists[h].bucket[i], 0);
        atomic_store(&hists[h].sum_ns, 0);
    }
    for (size_t c = 0; c < METRIC_COUNTER__COUNT; c++)
        atomic_store(&counters[c], 0);
}
