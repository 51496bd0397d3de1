/*
 * map.c: one Zoho JSON record to the typed column values of its table,
 * driven by the entity descriptor.  Tolerant of what Zoho really sends:
 * "" for empty values, numbers as strings, six-decimal quantities; strict
 * about what would corrupt data: a value that is not a number where a
 * number belongs is an error naming the record and the field.
 */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tds/entity.h"
#include "tds/log.h"

/* Shortest text that reads back as the same double (no 12.339999999...). */
static char *format_double(double v)
{
    char buf[40];
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(buf, sizeof buf, "%.*g", prec, v);
        if (strtod(buf, NULL) == v)
            break;
    }
    return xstrdup(buf);
}

static bool is_numeric_text(const char *s)
{
    const char *p = s;
    if (*p == '+' || *p == '-')
        p++;
    bool digits = false;
    while (isdigit((unsigned char)*p)) {
        p++;
        digits = true;
    }
    if (*p == '.') {
        p++;
        while (isdigit((unsigned char)*p)) {
            p++;
            digits = true;
        }
    }
    if (!digits)
        return false;
    if (*p == 'e' || *p == 'E') {
        p++;
        if (*p == '+' || *p == '-')
            p++;
        if (!isdigit((unsigned char)*p))
            return false;
        while (isdigit((unsigned char)*p))
            p++;
    }
    return *p == '\0';
}

static bool digits_n(const char *s, int n)
{
    for (int i = 0; i < n; i++)
        if (!isdigit((unsigned char)s[i]))
            return false;
    return true;
}

static int num2(const char *s)
{
    return (s[0] - '0') * 10 + (s[1] - '0');
}

/* The date at s (YYYY-MM-DD, digits already checked) exists, so PostgreSQL
 * takes it ("2013-02-30" would fail the whole statement). */
static bool date_exists(const char *s)
{
    static const int mdays[12] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int y = num2(s) * 100 + num2(s + 2), m = num2(s + 5), d = num2(s + 8);
    if (y < 1 || m < 1 || m > 12 || d < 1 || d > mdays[m - 1])
        return false;
    return m != 2 || d < 29 || (y % 4 == 0 && (y % 100 != 0 || y % 400 == 0));
}

/* YYYY-MM-DD */
static bool is_date(const char *s)
{
    return strlen(s) == 10 && digits_n(s, 4) && s[4] == '-' && digits_n(s + 5, 2) &&
           s[7] == '-' && digits_n(s + 8, 2) && date_exists(s);
}

/* YYYY-MM-DD[T ]HH:MM[:SS[.f+]][Z|(+|-)HH[:]MM] */
static bool is_timestamp(const char *s)
{
    if (strlen(s) < 16 || !digits_n(s, 4) || s[4] != '-' || !digits_n(s + 5, 2) || s[7] != '-' ||
        !digits_n(s + 8, 2) || (s[10] != 'T' && s[10] != ' ') || !digits_n(s + 11, 2) ||
        s[13] != ':' || !digits_n(s + 14, 2) || !date_exists(s) || num2(s + 11) > 23 ||
        num2(s + 14) > 59)
        return false;
    const char *p = s + 16;
    if (*p == ':') {
        if (!digits_n(p + 1, 2) || num2(p + 1) > 60)
            return false;
        p += 3;
        if (*p == '.') {
            p++;
            if (!isdigit((unsigned char)*p))
                return false;
            while (isdigit((unsigned char)*p))
                p++;
        }
    }
    if (*p == '\0' || strcmp(p, "Z") == 0)
        return true;
    if (*p != '+' && *p != '-')
        return false;
    p++;
    if (!digits_n(p, 2) || num2(p) > 15) /* PostgreSQL's limit for an offset */
        return false;
    p += 2;
    if (*p == ':')
        p++;
    return (*p == '\0') || (digits_n(p, 2) && num2(p) <= 59 && p[2] == '\0');
}

/* The offset ("+0530", "-04:00", "Z") of time s, or NULL if it has none. */
static const char *time_offset(const char *s)
{
    if (!is_timestamp(s))
        return NULL;
    const char *p = s + 16;
    while (*p && *p != '+' && *p != '-' && *p != 'Z')
        p++;
    return *p ? p : NULL;
}

/*
 * A date-only value where a time belongs ("2013-01-24", as Zoho writes
 * some created_time fields): midnight of that date in the organization's
 * time zone, which is the offset Zoho writes on the record's other times;
 * a record with none is read in the database session's time zone.
 */
static char *date_as_time(const char *date, const cJSON *rec)
{
    static const char *const siblings[] = {"last_modified_time", "created_time", "updated_time"};
    for (size_t i = 0; i < TDS_ARRAY_LEN(siblings); i++) {
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(rec, siblings[i]);
        const char *off = cJSON_IsString(t) ? time_offset(t->valuestring) : NULL;
        if (off != NULL)
            return xasprintf("%sT00:00:00%s", date, off);
    }
    return xasprintf("%sT00:00:00", date);
}

/* Converts one field of record rec; *out NULL for SQL NULL.  Returns NULL
 * or a message. */
static char *map_value(const struct entity_column *col, const cJSON *v, const cJSON *rec,
                       char **out)
{
    *out = NULL;
    if (v == NULL || cJSON_IsNull(v))
        return NULL;
    if (cJSON_IsString(v) && v->valuestring[0] == '\0')
        return NULL;
    /* A number kept exactly (entity_json_parse): its text is the value. */
    char *exact = entity_json_number(v);
    if (exact != NULL) {
        if (col->type == COL_TEXT || (col->type == COL_NUMERIC && is_numeric_text(exact))) {
            *out = exact;
            return NULL;
        }
        free(exact);
        return xstrdup(col->type == COL_NUMERIC ? "is not a number" : "is not of its type");
    }
    switch (col->type) {
    case COL_TEXT:
        if (cJSON_IsString(v))
            *out = xstrdup(v->valuestring);
        else if (cJSON_IsNumber(v))
            *out = format_double(v->valuedouble);
        else if (cJSON_IsBool(v))
            *out = xstrdup(cJSON_IsTrue(v) ? "true" : "false");
        else {
            char *js = cJSON_PrintUnformatted(v);
            *out = xstrdup(js ? js : "");
            cJSON_free(js);
        }
        return NULL;
    case COL_NUMERIC:
        if (cJSON_IsNumber(v)) {
            if (!isfinite(v->valuedouble))
                return xstrdup("is not a finite number");
            *out = format_double(v->valuedouble);
            return NULL;
        }
        if (cJSON_IsString(v)) {
            /* Zoho and proxies sometimes send " 12.50" or "1,234.00"? Only
             * surrounding blanks are forgiven; anything else is an error. */
            const char *s = v->valuestring;
            while (isspace((unsigned char)*s))
                s++;
            size_t n = strlen(s);
            while (n > 0 && isspace((unsigned char)s[n - 1]))
                n--;
            char *t = xstrndup(s, n);
            if (n > 0 && is_numeric_text(t)) {
                *out = t;
                return NULL;
            }
            free(t);
        }
        return xstrdup("is not a number");
    case COL_BOOL:
        if (cJSON_IsBool(v)) {
            *out = xstrdup(cJSON_IsTrue(v) ? "true" : "false");
            return NULL;
        }
        if (cJSON_IsString(v) &&
            (strcmp(v->valuestring, "true") == 0 || strcmp(v->valuestring, "false") == 0)) {
            *out = xstrdup(v->valuestring);
            return NULL;
        }
        if (cJSON_IsNumber(v) && (v->valuedouble == 0 || v->valuedouble == 1)) {
            *out = xstrdup(v->valuedouble != 0 ? "true" : "false");
            return NULL;
        }
        return xstrdup("is not a boolean");
    case COL_TIMESTAMPTZ:
        if (cJSON_IsString(v) && is_timestamp(v->valuestring)) {
            *out = xstrdup(v->valuestring);
            return NULL;
        }
        if (cJSON_IsString(v) && is_date(v->valuestring)) {
            *out = date_as_time(v->valuestring, rec);
            return NULL;
        }
        /* A time tds cannot read does not cost the record: NULL (the
         * caller warns). */
        return NULL;
    case COL_DATE:
        if (cJSON_IsString(v) && is_date(v->valuestring)) {
            *out = xstrdup(v->valuestring);
            return NULL;
        }
        return xstrdup("is not a date like 2013-08-05");
    }
    return xstrdup("has an unknown column type");
}

/* A short, printable rendering of a bad value for an error message. */
static char *show_value(const cJSON *v)
{
    char *js = cJSON_PrintUnformatted(v);
    /* cut on a character boundary, valid UTF-8 (the text goes to UTF-8 columns) */
    char *s = utf8_truncate(js ? js : "?", 40, NULL);
    cJSON_free(js);
    for (char *p = s; *p; p++)
        if ((unsigned char)*p < 0x20 || (unsigned char)*p == 0x7f)
            *p = '?';
    return s;
}

static char *map_id(const struct entity_desc *d, const cJSON *rec, char **err)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(rec, d->id_field);
    if (cJSON_IsString(v) && v->valuestring[0] != '\0') {
        if (!str_is_digits(v->valuestring) || strlen(v->valuestring) > 40) {
            char *shown = show_value(v);
            *err = xasprintf("%s record: %s %s is not a Zoho id (digits)", d->name, d->id_field,
                             shown);
            free(shown);
            return NULL;
        }
        return xstrdup(v->valuestring);
    }
    /* An id sent as a JSON number: exact when parsed so (entity_json_parse),
     * else only safe while a double holds it exactly. */
    char *exact = entity_json_number(v);
    if (exact != NULL) {
        if (str_is_digits(exact) && strlen(exact) <= 40)
            return exact;
        free(exact);
    }
    if (cJSON_IsNumber(v) && v->valuedouble >= 0 && v->valuedouble < 9007199254740992.0 &&
        floor(v->valuedouble) == v->valuedouble) {
        return xasprintf("%.0f", v->valuedouble == 0 ? 0.0 : v->valuedouble); /* -0: "0" */
    }
    if (v == NULL || cJSON_IsNull(v) || (cJSON_IsString(v) && v->valuestring[0] == '\0'))
        *err = xasprintf("%s record has no %s", d->name, d->id_field);
    else {
        char *shown = show_value(v);
        *err = xasprintf("%s record: %s %s is not a Zoho id (digits)", d->name, d->id_field,
                         shown);
        free(shown);
    }
    return NULL;
}

int entity_map_values(const struct entity_desc *d, const cJSON *rec, struct entity_record *out,
                      char **err)
{
    size_t n = entity_ncolumns(d);
    memset(out, 0, sizeof *out);
    out->desc = d;
    out->values = xcalloc(n ? n : 1, sizeof *out->values);
    if (!cJSON_IsObject(rec)) {
        *err = xasprintf("%s record is not a JSON object", d->name);
        return -1;
    }
    out->id = map_id(d, rec, err);
    if (out->id == NULL)
        return -1;
    for (size_t i = 0; i < n; i++) {
        const struct entity_column *col = &d->columns[i];
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(rec, col->field);
        char *problem = map_value(col, v, rec, &out->values[i]);
        if (problem == NULL && col->type == COL_TIMESTAMPTZ && out->values[i] == NULL &&
            cJSON_IsString(v) && v->valuestring[0] != '\0') {
            char *shown = show_value(v);
            log_warn("%s record %s: field %s: %s is not a time like 2013-08-05T12:06:10+0530;"
                     " stored as NULL",
                     d->name, out->id, col->field, shown);
            free(shown);
        }
        if (problem != NULL) {
            char *shown = show_value(v);
            *err = xasprintf("%s record %s: field %s: %s %s", d->name, out->id, col->field, shown,
                             problem);
            free(shown);
            free(problem);
            return -1;
        }
    }
    /* last_modified_time as stored (a date-only one at its midnight; one
     * that is not a time: none) */
    for (size_t i = 0; i < n; i++)
        if (str_eq(d->columns[i].column, "last_modified_time") && out->values[i] != NULL)
            out->last_modified_time = xstrdup(out->values[i]);
    return 0;
}

int entity_map_raw(struct entity_record *r, const cJSON *rec, char **err)
{
    char *raw = cJSON_PrintUnformatted(rec);
    if (raw == NULL) {
        *err = xasprintf("%s record %s: cannot serialise", r->desc->name, r->id);
        return -1;
    }
    r->raw = xstrdup(raw);
    cJSON_free(raw);
    return 0;
}

int entity_map_record(const struct entity_desc *d, const cJSON *rec, struct entity_record *out,
                      char **err)
{
    if (entity_map_values(d, rec, out, err) != 0)
        return -1;
    return entity_map_raw(out, rec, err);
}

void entity_record_free(struct entity_record *r)
{
    if (r->desc != NULL && r->values != NULL) {
        size_t n = entity_ncolumns(r->desc);
        for (size_t i = 0; i < n; i++)
            free(r->values[i]);
    }
    free(r->values);
    free(r->id);
    free(r->last_modified_time);
    free(r->raw);
    memset(r, 0, sizeof *r);
}
