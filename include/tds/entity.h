/*
 * entity.h: entities are data.  One table of descriptors (src/zoho/entity.c)
 * drives full sync, incremental sync, webhook intake and reconciliation
 * alike: adding an entity is adding a row, not a file.  The mapping turns a
 * Zoho JSON record into the typed column values of its zoho.* table,
 * tolerant of what Zoho really sends ("" for empty, numbers as strings).
 */
#ifndef TDS_ENTITY_H
#define TDS_ENTITY_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>

#include "tds/util.h"

enum zoho_product {
    ZOHO_BOOKS = 1,
    ZOHO_INVENTORY = 2,
};

enum entity_coltype {
    COL_TEXT,
    COL_NUMERIC,
    COL_BOOL,
    COL_TIMESTAMPTZ,    /* Zoho "2013-08-05T12:06:10+0530" */
    COL_DATE,           /* Zoho "2013-08-05" */
};

struct entity_column {
    const char *column;     /* column of the zoho.* table */
    const char *field;      /* JSON field of the Zoho record */
    enum entity_coltype type;
};

#define ENTITY_MAX_COLUMNS 24

struct entity_desc {
    const char *name;       /* "items": CLI, queue entity_type, webhooks, table name */
    const char *singular;   /* "item": JSON key of a single record / webhook payload */
    enum zoho_product product;  /* which API lists it (the other may also have it) */
    const char *list_path;  /* "/items" under the product's base URL */
    const char *id_field;   /* "item_id": JSON field and primary key column */
    bool changed_since;     /* list supports last_modified_time filter + sort */
    const char *table;      /* "zoho.items" */
    struct entity_column columns[ENTITY_MAX_COLUMNS]; /* ends at column NULL;
                                                         excludes id, raw, synced_at */
};

/* The descriptor table; *n receives its length. This function can't fail. */
const struct entity_desc *entity_all(size_t *n);
/* By name ("items") or singular ("item"); NULL if unknown. */
const struct entity_desc *entity_find(const char *name);
/* The filter_by that lists every record of d, whatever its status
 * ("Status.All": Zoho's default hides inactive ones in places), or NULL
 * where the list has no status filter. */
const char *entity_all_filter(const struct entity_desc *d);
/* Number of columns in d->columns. */
size_t entity_ncolumns(const struct entity_desc *d);

/* One record mapped to column values (text form, ready for PQexecParams or
 * COPY).  values[i] belongs to d->columns[i]; NULL means SQL NULL. */
struct entity_record {
    const struct entity_desc *desc;
    char *id;                       /* never NULL after a successful map */
    char *last_modified_time;       /* as Zoho sent it, or NULL */
    char **values;                  /* entity_ncolumns(desc) entries */
    char *raw;                      /* the whole record, compact JSON */
};

/*
 * Maps one JSON record.  Returns 0, or -1 with *err (caller frees) naming
 * the field and what was wrong, e.g. "items record 12: field rate: \"abc\"
 * is not a number" or "record has no item_id".  Missing fields and "" map to
 * NULL; numbers sent as strings are accepted; booleans accept true/false and
 * "true"/"false".  out must be freed with entity_record_free either way.
 */
int entity_map_record(const struct entity_desc *d, const cJSON *rec, struct entity_record *out,
                      char **err) TDS_MUST_CHECK;
/* The two halves of entity_map_record: id and typed values (raw left
 * NULL), then raw for a record mapped so.  Same returns. */
int entity_map_values(const struct entity_desc *d, const cJSON *rec, struct entity_record *out,
                      char **err) TDS_MUST_CHECK;
int entity_map_raw(struct entity_record *r, const cJSON *rec, char **err) TDS_MUST_CHECK;
void entity_record_free(struct entity_record *r);

/*
 * JSON with its numbers exact (src/zoho/json.c): like cJSON_Parse /
 * cJSON_ParseWithLengthOpts, but a number a double cannot hold exactly
 * (more than 15 significant digits: an unquoted 19-digit id, a price past
 * 2^53) becomes a cJSON_Raw node with the number's text, printed verbatim
 * by cJSON and read as that number by the mapping.  Free with cJSON_Delete.
 */
cJSON *entity_json_parse(const char *text);
cJSON *entity_json_parse_opts(const char *text, size_t len, const char **end, bool require_null);
/* The exact text of such a number node (caller frees), or NULL. */
char *entity_json_number(const cJSON *v);

#endif
