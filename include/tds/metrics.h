/*
 * metrics.h: the process's in-memory metrics: fixed-bucket latency
 * histograms and a few counters, lock-free (C11 atomics), callable from any
 * thread at any time without setup.  GET /metrics (src/http/metrics_http.c)
 * renders them next to the values it reads from the database.
 *
 *   metrics_observe(METRIC_API_CALL, seconds);      after each API call
 *   metrics_observe(METRIC_ITEM_APPLY, seconds);    after each item applied
 *   metrics_count(METRIC_RETRIES, 1);               when a retry is scheduled
 */
#ifndef TDS_METRICS_H
#define TDS_METRICS_H

#include <stdint.h>

#include "tds/util.h"

/* Histograms (seconds). */
enum metric_hist {
    METRIC_ITEM_APPLY = 0,      /* tds_item_apply_seconds: one queue item applied */
    METRIC_WEBHOOK_INTAKE,      /* tds_webhook_intake_seconds: request start to answer */
    METRIC_API_CALL,            /* tds_api_call_seconds: one Zoho HTTP request */
    METRIC_HIST__COUNT
};

/* Counters of this process. */
enum metric_counter {
    METRIC_RETRIES = 0,         /* tds_retries_total: retries scheduled */
    METRIC_WEBHOOK_ACCEPTED,    /* tds_webhooks_total{result="accepted"} */
    METRIC_WEBHOOK_DUPLICATE,   /* {result="duplicate"}: accepted, folded into an earlier one */
    METRIC_WEBHOOK_UNAUTHORIZED,/* {result="unauthorized"}: 401 */
    METRIC_WEBHOOK_INVALID,     /* {result="invalid"}: 400, 404, 405, 413, 415 */
    METRIC_WEBHOOK_UNAVAILABLE, /* {result="unavailable"}: 503, database unreachable */
    METRIC_BATCHES_REPLAYED,    /* tds_queue_batches_replayed_total: bulk apply fell back */
    METRIC_COUNTER__COUNT
};

/* The bucket upper bounds shared by every histogram (seconds, ascending;
 * +Inf is implicit). */
#define METRICS_NBUCKETS 14
extern const double metrics_buckets[METRICS_NBUCKETS];

/* Records one observation.  Negative values count as 0.  Thread-safe,
 * lock-free; this function can't fail. */
void metrics_observe(enum metric_hist h, double seconds);

/* Adds n (>= 0) to a counter.  Thread-safe, lock-free; can't fail. */
void metrics_count(enum metric_counter c, long long n);

/* A consistent-enough copy of one histogram: bucket[i] counts observations
 * <= metrics_buckets[i] (not cumulative); count includes the +Inf bucket. */
struct metrics_hist_snapshot {
    uint64_t bucket[METRICS_NBUCKETS];
    uint64_t count;
    double sum;
};
void metrics_hist_get(enum metric_hist h, struct metrics_hist_snapshot *out);
long long metrics_counter_get(enum metric_counter c);

/* Metric names: "tds_item_apply_seconds" ...; for the exposition. */
const char *metrics_hist_name(enum metric_hist h);
const char *metrics_hist_help(enum metric_hist h);

/* Zeroes everything (tests).  Not atomic with respect to concurrent updates. */
void metrics_reset(void);

#endif
