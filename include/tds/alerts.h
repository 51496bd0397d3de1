/*
 * alerts.h: tds.alerts.  An alert is keyed by a dedup key: raising one that
 * is already open bumps its occurrences and last_seen; resolving closes it,
 * and a later raise opens a new one.  The janitor evaluates the rules
 * (alerts_evaluate) and auto-resolves what has cleared; other modules raise
 * their own (the Zoho client: zoho_auth; the engine: db_unreachable).
 */
#ifndef TDS_ALERTS_H
#define TDS_ALERTS_H

#include <libpq-fe.h>
#include <stdbool.h>

#include "tds/config.h"
#include "tds/util.h"

enum alert_severity {
    ALERT_INFO = 0, /* worth knowing */
    ALERT_WARNING,  /* will become a problem if nobody looks */
    ALERT_ERROR,    /* something is failing now */
    ALERT_CRITICAL, /* sync is stopped or data is at risk */
    ALERT__COUNT
};

/* "info" "warning" "error" "critical"; NULL out of range. */
const char *alerts_severity_name(enum alert_severity s);

struct alert_spec {
    const char *type; /* "failure_rate", "zoho_auth", ... */
    enum alert_severity severity;
    const char *title;       /* one line */
    const char *message;     /* may be NULL */
    const char *entity_type; /* may be NULL */
    long long affected;      /* affected_count */
    const char *dedup_key;   /* NULL: same as type */
};

/*
 * Opens an alert or, when one with the same dedup key is open, bumps its
 * occurrences and last_seen and refreshes message, severity and count.  A
 * new alert also writes the event tds.alert.triggered (and is picked up by
 * the notifier).  *id and *is_new may be NULL.  Returns 0, or -1 with *err.
 */
int alerts_raise(PGconn *c, const struct alert_spec *a, long long *id, bool *is_new,
                 char **err) TDS_MUST_CHECK;

/* Resolves the open alert with this dedup key, if any.  *n (may be NULL)
 * gets 0 or 1.  Returns 0, or -1 with *err. */
int alerts_resolve(PGconn *c, const char *dedup_key, int *n, char **err) TDS_MUST_CHECK;

/* Acknowledges one alert (who, now).  Returns 0, or -1 with *err when it
 * does not exist or the database fails. */
int alerts_ack(PGconn *c, long long id, const char *who, char **err) TDS_MUST_CHECK;

/* Acknowledges every open, unacknowledged alert; *n (may be NULL) gets how many. */
int alerts_ack_all(PGconn *c, const char *who, int *n, char **err) TDS_MUST_CHECK;

/*
 * Evaluates every rule of the janitor against the database with the
 * thresholds of cfg->alerts (and cfg->engine, cfg->zoho for the API budget),
 * raising what fires and resolving what has cleared.  *raised (may be NULL)
 * gets the number of rules currently firing.  Returns 0, or -1 with *err on
 * a database error (rules evaluated before it stay applied).
 */
int alerts_evaluate(PGconn *c, const struct tds_config *cfg, int *raised,
                    char **err) TDS_MUST_CHECK;

/*
 * Sends pending notifications (new alerts not yet notified) to url as
 * Slack-compatible JSON ({"text": ...}) POSTs, at most max per call, each
 * with a timeout of timeout_ms; a failure is retried later with backoff
 * (alerts.notify_next_at).  Returns the number sent, or -1 with *err on a
 * database error.  Blocks on HTTP: call it from a thread of its own.
 */
int alerts_notify_pending(PGconn *c, const char *url, int max, long timeout_ms, char **err);

#endif
