/*
 * apply.h: the default item handler's writes: Zoho records mapped by the
 * entity descriptors (entity.h) into their zoho.* tables with idempotent
 * upserts that never let an older last_modified_time overwrite a newer one,
 * plus zoho.item_locations for items; deletes are marks (deleted_at).  One
 * statement per batch, which also completes the batch's queue items and
 * writes the tds.entity.* events.
 */
#ifndef TDS_APPLY_H
#define TDS_APPLY_H

#include <cjson/cJSON.h>
#include <libpq-fe.h>

#include "tds/entity.h"
#include "tds/util.h"

/*
 * Upserts one Zoho record of entity d (e.g. after a webhook re-fetch), with
 * its locations for items, and writes a tds.entity.create/update event
 * (run_id 0: none).  *changed (may be NULL) is 1 if written, 0 if the
 * stored copy was newer.  Returns 0; -1 with *err on a database error; -2
 * with *err when the record does not map (bad payload).
 */
int apply_record(PGconn *c, const struct entity_desc *d, const cJSON *record, long long run_id,
                 int *changed, char **err) TDS_MUST_CHECK;

/* Marks a record deleted (deleted_at = now()) and writes tds.entity.delete.
 * Returns 0 or -1 with *err. */
int apply_delete(PGconn *c, const struct entity_desc *d, const char *zoho_id, long long run_id,
                 char **err) TDS_MUST_CHECK;

#endif
