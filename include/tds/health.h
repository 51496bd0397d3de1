/*
 * health.h: one verdict on the whole fleet, computed from the database, and
 * shared by `tds status`, GET /health and the console's dashboard so they
 * never disagree.  Cheap enough to poll every second: a handful of indexed
 * queries.
 *
 *   healthy   engines alive, nothing alarming
 *   degraded  working, but something needs a person: an open error or
 *             critical alert, an engine whose heartbeat stopped while others
 *             live, the fleet paused, a backlog or an old pending item
 *   down      the database is unreachable or unmigrated, or no engine is alive
 */
#ifndef TDS_HEALTH_H
#define TDS_HEALTH_H

#include <cjson/cJSON.h>
#include <libpq-fe.h>

#include "tds/config.h"

enum health_status {
    HEALTH_HEALTHY = 0,
    HEALTH_DEGRADED,
    HEALTH_DOWN,
};

const char *health_status_name(enum health_status s);

struct health_engine {
    char *instance, *host, *state, *version, *mode;
    int threads, busy;
    double heartbeat_age;   /* seconds */
    bool alive;
    bool leader;            /* holds the leader lease (scheduler, janitor) */
};

struct health_last_sync {
    char *entity;
    char *at;               /* ISO time of the last successful sync */
};

struct health_report {
    enum health_status status;
    char **reasons;         /* why not healthy; empty when healthy */
    size_t nreasons;
    struct health_engine *engines;
    size_t nengines;
    long long queue_pending, queue_retry, queue_processing, dlq_open;
    double oldest_pending_age;  /* seconds, 0 when none */
    bool paused;
    long long alerts[4];    /* open alerts by severity: info warning error critical */
    struct health_last_sync *last_sync;
    size_t nlast_sync;
    char *checked_at;
    /* Zoho's state for the fleet (tds.zoho_block), NULL when none: the end
     * of a block Zoho announced (UTC, "...Z") and why; since when Zoho has
     * been unreachable. */
    char *zoho_blocked_until;
    char *zoho_block_reason;
    char *zoho_unreachable_since;
};

/*
 * Computes the report.  c may be NULL or broken: the report is then "down"
 * with the reason.  Never fails; free with health_report_free.
 */
void health_compute(PGconn *c, const struct tds_config *cfg, struct health_report *out);
void health_report_free(struct health_report *r);

/* The report as the stable JSON of /health and `tds status --json`.
 * Caller frees with cJSON_Delete. */
cJSON *health_to_json(const struct health_report *r);

#endif
