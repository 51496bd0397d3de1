/*
 * events.h: the event log (tds.events).  Every insert is announced by the
 * table's statement trigger with NOTIFY tds_events, so consoles refresh the
 * moment something happens.  The type names are those of DESIGN.md.
 */
#ifndef TDS_EVENTS_H
#define TDS_EVENTS_H

#include <libpq-fe.h>

#include "tds/util.h"

enum event_type {
    EV_SYNC_STARTED = 0,   /* a run went pending -> running */
    EV_SYNC_COMPLETED,     /* a run completed */
    EV_SYNC_FAILED,        /* a run failed, was cancelled or interrupted (data.status says) */
    EV_ENTITY_CREATE,      /* a record appeared in zoho.* */
    EV_ENTITY_UPDATE,      /* a record changed in zoho.* */
    EV_ENTITY_DELETE,      /* a record was marked deleted */
    EV_ENTITY_SYNC_FAILED, /* a queue item failed an attempt */
    EV_QUEUE_EMPTY,        /* a drain finished: nothing pending, retrying or processing */
    EV_DEADLETTER_ADDED,   /* an item moved to tds.dead_letter */
    EV_RETRY_SCHEDULED,    /* a failed item will be tried again at data.next_attempt_at */
    EV_ALERT_TRIGGERED,    /* a new alert opened */
    EV__COUNT
};

/* "tds.sync.started" ...; NULL for an out-of-range value. */
const char *events_type_name(enum event_type t);

/*
 * Inserts one event.  run_id 0 means none; entity_type, entity_id may be
 * NULL; data_json is a JSON object as text (NULL: {}).  Runs inside the
 * caller's transaction if one is open.  Returns 0, or -1 with *err (caller
 * frees; err may be NULL).
 */
int events_emit(PGconn *c, enum event_type type, long long run_id, const char *entity_type,
                const char *entity_id, const char *data_json, char **err) TDS_MUST_CHECK;

#endif
