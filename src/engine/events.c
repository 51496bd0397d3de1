/*
 * events.c: writing tds.events.  The NOTIFY tds_events that announces each
 * insert is done by the table's statement trigger (0001_init.sql).
 */
#include "tds/events.h"

#include <stdio.h>

#include "tds/db.h"

static const char *const event_names[EV__COUNT] = {
    [EV_SYNC_STARTED] = "tds.sync.started",
    [EV_SYNC_COMPLETED] = "tds.sync.completed",
    [EV_SYNC_FAILED] = "tds.sync.failed",
    [EV_ENTITY_CREATE] = "tds.entity.create",
    [EV_ENTITY_UPDATE] = "tds.entity.update",
    [EV_ENTITY_DELETE] = "tds.entity.delete",
    [EV_ENTITY_SYNC_FAILED] = "tds.entity.sync_failed",
    [EV_QUEUE_EMPTY] = "tds.queue.empty",
    [EV_DEADLETTER_ADDED] = "tds.deadletter.added",
    [EV_RETRY_SCHEDULED] = "tds.retry.scheduled",
    [EV_ALERT_TRIGGERED] = "tds.alert.triggered",
};

const char *events_type_name(enum event_type t)
{
    if ((int)t < 0 || t >= EV__COUNT)
        return NULL;
    return event_names[t];
}

int events_emit(PGconn *c, enum event_type type, long long run_id, const char *entity_type,
                const char *entity_id, const char *data_json, char **err)
{
    const char *name = events_type_name(type);
    if (name == NULL) {
        if (err)
            *err = xasprintf("events: unknown event type %d", (int)type);
        return -1;
    }
    char rid[24];
    snprintf(rid, sizeof rid, "%lld", run_id);
    const char *p[] = {name, run_id > 0 ? rid : NULL, entity_type, entity_id,
                       data_json ? data_json : "{}"};
    return db_cmd(c,
                  "INSERT INTO tds.events (type, run_id, entity_type, entity_id, data) "
                  "VALUES ($1, $2::bigint, $3, $4, $5::jsonb)",
                  5, p, err);
}
