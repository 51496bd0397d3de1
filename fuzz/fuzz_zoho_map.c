/*
 * fuzz_zoho_map.c: Zoho JSON as the API might send it, through the mapping
 * (src/zoho/map.c: entity_map_record for every entity descriptor) and the
 * pure list-answer parsing of the client (src/zoho/policy.c:
 * zoho_page_ctx_parse, zoho_time_parse; src/zoho/pager.c: zoho_anchor_take).
 *
 * Input: a JSON document: a record, a list answer ({"code":0,"items":[...],
 * "page_context":{...}}) or a single-record answer ({"item":{...}}).  Every
 * object found at the top, under an entity's name or singular is mapped
 * with every descriptor.  Properties: a mapped record has an id of digits,
 * raw JSON that parses, and text that is valid UTF-8 when the input was
 * (what PostgreSQL text columns require); a refused record has one error
 * line, valid UTF-8 too (it goes to logs and tds.dlq.last_error).
 */
#include <cjson/cJSON.h>

#include "fuzz.h"
#include "tds/entity.h"
#include "zoho_internal.h"

static void fzmap_one(const struct entity_desc *d, const cJSON *rec, bool utf8_in)
{
    struct entity_record r;
    char *err = NULL;
    int rc = entity_map_record(d, rec, &r, &err);
    if (rc == 0) {
        FUZZ_CHECK(err == NULL, "success with an error");
        FUZZ_CHECK(r.id != NULL && r.id[0] != '\0', "no id");
        for (const char *c = r.id; *c; c++)
            FUZZ_CHECK(*c >= '0' && *c <= '9', "id \"%s\" is not digits", r.id);
        FUZZ_CHECK(r.raw != NULL, "no raw");
        cJSON *back = cJSON_Parse(r.raw);
        FUZZ_CHECK(back != NULL, "raw does not parse: %s", r.raw);
        cJSON_Delete(back);
        size_t n = entity_ncolumns(d);
        if (utf8_in) {
            FUZZ_CHECK(fuzz_str_utf8_ok(r.raw), "raw is not UTF-8");
            FUZZ_CHECK(fuzz_str_utf8_ok(r.last_modified_time), "last_modified_time not UTF-8");
            for (size_t i = 0; i < n; i++)
                FUZZ_CHECK(fuzz_str_utf8_ok(r.values[i]), "%s.%s is not UTF-8", d->name,
                           d->columns[i].column);
        }
    } else {
        FUZZ_CHECK(rc == -1 && err != NULL, "failure without an error");
        FUZZ_CHECK(fuzz_one_line(err), "error is not one line: \"%s\"", err);
        if (utf8_in)
            FUZZ_CHECK(fuzz_str_utf8_ok(err), "error is not UTF-8: \"%s\"", err);
        free(err);
    }
    entity_record_free(&r);
}

static void fzmap_all(const cJSON *rec, bool utf8_in)
{
    size_t n;
    const struct entity_desc *all = entity_all(&n);
    for (size_t i = 0; i < n; i++)
        fzmap_one(&all[i], rec, utf8_in);
}

FUZZ_ENTRY(zoho_map)
{
    /* The client hands the parser the body it received (length known). */
    cJSON *doc = cJSON_ParseWithLength((const char *)data, size);
    if (doc == NULL)
        return 0;
    bool utf8_in = fuzz_utf8_ok(data, size) && memchr(data, 0, size) == NULL;

    struct zoho_page_ctx pc;
    zoho_page_ctx_parse(doc, &pc);
    FUZZ_CHECK(pc.present || (!pc.has_more && pc.page == 0 && pc.per_page == 0),
               "page_context absent but fields set");

    fzmap_all(doc, utf8_in);
    /* The same body with its numbers exact (entity_json_parse): parses
     * whenever cJSON does, and maps under the same rules. */
    cJSON *exact = entity_json_parse_opts((const char *)data, size, NULL, false);
    FUZZ_CHECK(exact != NULL, "cJSON parses the body but entity_json_parse does not");
    FUZZ_CHECK(cJSON_GetArraySize(exact) == cJSON_GetArraySize(doc), "different top level");
    fzmap_all(exact, utf8_in);
    cJSON_Delete(exact);
    size_t n;
    const struct entity_desc *all = entity_all(&n);
    for (size_t i = 0; i < n; i++) {
        const struct entity_desc *d = &all[i];
        const cJSON *one = cJSON_GetObjectItemCaseSensitive(doc, d->singular);
        if (cJSON_IsObject(one))
            fzmap_one(d, one, utf8_in);
        const cJSON *list = cJSON_GetObjectItemCaseSensitive(doc, d->name);
        if (!cJSON_IsArray(list))
            continue;
        int k = 0;
        for (const cJSON *rec = list->child; rec && k < 64; rec = rec->next, k++) {
            fzmap_one(d, rec, utf8_in);
            const cJSON *lmt = cJSON_GetObjectItemCaseSensitive(rec, "last_modified_time");
            long long t;
            if (cJSON_IsString(lmt))
                (void)zoho_time_parse(lmt->valuestring, &t);
        }
        /* The changed-since re-anchoring on this page, fresh and mid-instant. */
        for (int pass = 0; pass < 2; pass++) {
            cJSON *copy = cJSON_Duplicate(list, 1);
            if (copy == NULL)
                break;
            int before = cJSON_GetArraySize(copy);
            struct zoho_anchor a;
            const cJSON *first = list->child;
            const cJSON *fl = first ? cJSON_GetObjectItemCaseSensitive(first, "last_modified_time")
                                    : NULL;
            const char *since =
                pass ? (fl != NULL && cJSON_IsString(fl) ? fl->valuestring : "2013-08-05T12:06:10+0530") : NULL;
            const cJSON *fid = first ? cJSON_GetObjectItemCaseSensitive(first, d->id_field) : NULL;
            const char *ids[1] = {fid != NULL && cJSON_IsString(fid) ? fid->valuestring : "1"};
            zoho_anchor_init(&a, since, ids, 1, pc.per_page > 0 && pc.per_page <= 200 ? pc.per_page
                                                                                       : 200);
            if (pass)
                a.page = 2;
            size_t fresh = 0;
            char *aerr = NULL;
            int rc = zoho_anchor_take(&a, copy, d->id_field, pc.has_more, &fresh, &aerr);
            FUZZ_CHECK(rc == 0 || aerr != NULL, "anchor_take failed without an error");
            free(aerr);
            FUZZ_CHECK(fresh == (size_t)cJSON_GetArraySize(copy), "fresh %zu, array %d", fresh,
                       cJSON_GetArraySize(copy));
            FUZZ_CHECK(cJSON_GetArraySize(copy) <= before, "anchor_take added records");
            FUZZ_CHECK(a.page >= 1 && a.page_size >= 1, "anchor page %d size %d", a.page,
                       a.page_size);
            zoho_anchor_free(&a);
            cJSON_Delete(copy);
        }
    }
    /* Retry-After values come from the same place (response headers). */
    const cJSON *ra = cJSON_GetObjectItemCaseSensitive(doc, "retry_after");
    if (cJSON_IsString(ra))
        (void)zoho_parse_retry_after(ra->valuestring, 1700000000000LL);
    cJSON_Delete(doc);
    return 0;
}
