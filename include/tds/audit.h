/*
 * audit.h: who did what, when, from a console or the CLI: every action that
 * changes shared state is written to tds.audit with the operating-system
 * user, SSH_CONNECTION, the host and the engine instance (if any).
 */
#ifndef TDS_AUDIT_H
#define TDS_AUDIT_H

#include <libpq-fe.h>

#include "tds/util.h"

/* "cli:alice", "console:alice": the actor recorded in resolved_by,
 * acknowledged_by and similar columns.  Static storage per origin. */
const char *audit_actor(const char *origin);

/*
 * Records one action (e.g. "dlq.retry") on target (e.g. "dead_letter:42",
 * may be NULL) with detail_json (a JSON object, may be NULL).  Returns 0,
 * or -1 with *err (caller frees).
 */
int audit_record(PGconn *c, const char *instance, const char *action, const char *target,
                 const char *detail_json, char **err) TDS_MUST_CHECK;

#endif
