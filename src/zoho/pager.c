/*
 * pager.c: streaming list iteration, one page in memory at a time.
 *
 * A full listing asks page 1, 2, 3... in Zoho's order.  A changed-since
 * listing (Inventory's last_modified_time filter, sorted ascending) cannot
 * page by offset alone on a list that changes under it: an edited record
 * jumps to the end, a deleted one shifts the rest onto earlier pages.  So
 * after each page the scan re-anchors on the newest last_modified_time seen
 * (the filter is inclusive) and starts again at page 1, dropping the ids
 * already returned at that instant; only when a whole page sits at the
 * anchor instant does it move to the next page.  Each step either moves the
 * anchor forward in time or the page forward, so it always ends.
 *
 * Zoho's page_context is checked rather than trusted: a page number that is
 * not the one asked for, has_more_page with an empty page, a page repeating
 * the previous one, or pages that bring nothing new for longer than the
 * known duplicates explain, all end in ZOHO_ERR_PAGING instead of a loop.
 */
#include <stdlib.h>
#include <string.h>

#include "tds/log.h"
#include "zoho_internal.h"

/* ---- the anchor (pure) ---- */

static void ids_add(struct zoho_anchor *a, const char *id)
{
    if (a->n_ids == a->cap_ids) {
        a->cap_ids = a->cap_ids ? a->cap_ids * 2 : 16;
        a->ids = xreallocarray(a->ids, a->cap_ids, sizeof *a->ids);
    }
    a->ids[a->n_ids++] = xstrdup(id);
}

static void ids_clear(struct zoho_anchor *a)
{
    for (size_t i = 0; i < a->n_ids; i++)
        free(a->ids[i]);
    a->n_ids = 0;
}

void zoho_anchor_init(struct zoho_anchor *a, const char *since, const char *const *ids, size_t n,
                      int per_page)
{
    memset(a, 0, sizeof *a);
    a->per_page = per_page > 0 && per_page <= 200 ? per_page : 200;
    a->page = 1;
    a->page_size = a->per_page;
    if (since != NULL) {
        a->active = true;
        a->since = xstrdup(since);
        if (!zoho_time_parse(since, &a->since_t))
            a->since_t = 0;
        for (size_t i = 0; i < n; i++)
            ids_add(a, ids[i]);
    }
}

void zoho_anchor_free(struct zoho_anchor *a)
{
    ids_clear(a);
    free(a->ids);
    free(a->since);
    memset(a, 0, sizeof *a);
}

bool zoho_anchor_seen(const struct zoho_anchor *a, const char *id)
{
    for (size_t i = 0; i < a->n_ids; i++)
        if (strcmp(a->ids[i], id) == 0)
            return true;
    return false;
}

/* The id of a record as text (Zoho sends strings; numbers are tolerated). */
static const char *record_id(const cJSON *rec, const char *id_field, char *buf, size_t bufsz)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(rec, id_field);
    if (cJSON_IsString(v) && !str_empty(v->valuestring))
        return v->valuestring;
    if (cJSON_IsRaw(v) && v->valuestring != NULL && strlen(v->valuestring) < bufsz) {
        snprintf(buf, bufsz, "%s", v->valuestring); /* a number kept exactly */
        return buf;
    }
    if (cJSON_IsNumber(v)) {
        snprintf(buf, bufsz, "%.0f", v->valuedouble);
        return buf;
    }
    return NULL;
}

/* id and time of a record; false when either is missing or unreadable. */
static bool id_and_time(cJSON *rec, const char *id_field, const char **id, long long *t)
{
    char nb[32];
    const char *s = record_id(rec, id_field, nb, sizeof nb);
    const cJSON *lmt = cJSON_GetObjectItemCaseSensitive(rec, "last_modified_time");
    if (s == NULL || !cJSON_IsString(lmt) || !zoho_time_parse(lmt->valuestring, t))
        return false;
    if (s == nb) {
        /* A numeric id: store it in the record as text so it can be pointed to. */
        cJSON_ReplaceItemInObjectCaseSensitive(rec, id_field, cJSON_CreateString(nb));
        s = cJSON_GetObjectItemCaseSensitive(rec, id_field)->valuestring;
    }
    *id = s;
    return true;
}

/*
 * The next (page, page_size) inside the anchor instant once k records of it
 * have been read: an offset a few records back (the overlap that shows a
 * shift), on a page boundary, with as much progress as possible.
 */
static void next_in_instant(struct zoho_anchor *a, long long k)
{
    int pp = a->per_page;
    int m = pp / 20 > 0 ? pp / 20 : 1;
    long long best_o = -1;
    int best_q = pp;
    long long best_prog = 0;
    for (int q = pp; q > m && q >= pp / 2; q--) {
        long long base = k - m > 0 ? k - m : 0;
        long long o = base / q * q;
        long long prog = o + q - k;
        if (prog > best_prog) {
            best_prog = prog;
            best_o = o;
            best_q = q;
            if (prog * 2 >= q)
                break;
        }
    }
    if (best_o < 0) { /* no overlapping choice: plain next page */
        best_q = pp;
        best_o = k / pp * pp;
    }
    a->page_size = best_q;
    a->page = (int)(best_o / best_q) + 1;
}

/* Drops from records those with a time after the anchor instant. */
static void drop_after(struct zoho_anchor *a, cJSON *records, const char *id_field)
{
    const char *id;
    long long t;
    cJSON *rec = records->child;
    while (rec != NULL) {
        cJSON *next = rec->next;
        if (!id_and_time(rec, id_field, &id, &t) || t > a->since_t)
            cJSON_Delete(cJSON_DetachItemViaPointer(records, rec));
        rec = next;
    }
}

/* Starts another pass over the anchor instant from its first page. */
static void new_pass(struct zoho_anchor *a)
{
    a->restarts++;
    a->verifying = true;
    a->pass_fresh = 0;
    a->again = true;
    a->page = 1;
    a->page_size = a->per_page;
}

int zoho_anchor_take(struct zoho_anchor *a, cJSON *records, const char *id_field, bool has_more,
                     size_t *fresh, char **err)
{
    (void)err;
    long long offset = (long long)(a->page - 1) * a->page_size;
    long long count = cJSON_GetArraySize(records);
    const char *id;
    long long t;

    if (a->since != NULL && offset > 0) {
        a->walked = true;
        /* A page inside the instant must start with a record already taken. */
        cJSON *first = records->child;
        bool ok = first != NULL && id_and_time(first, id_field, &id, &t) && t == a->since_t &&
                  zoho_anchor_seen(a, id);
        if (!ok && a->restarts < ZOHO_ANCHOR_RESTARTS) {
            /* Something shifted: keep the new records at the instant only (the
             * rest is read again) and read the instant again from page 1. */
            cJSON *rec = records->child;
            while (rec != NULL) {
                cJSON *next = rec->next;
                if (id_and_time(rec, id_field, &id, &t) && t == a->since_t &&
                    !zoho_anchor_seen(a, id))
                    ids_add(a, id);
                else
                    cJSON_Delete(cJSON_DetachItemViaPointer(records, rec));
                rec = next;
            }
            *fresh = (size_t)cJSON_GetArraySize(records);
            new_pass(a);
            return 0;
        }
    }

    bool have_max = a->since != NULL;
    long long max_t = a->since_t;
    const char *max_s = NULL;
    const char **max_ids = NULL; /* ids at the newest instant (into records) */
    size_t n_max = 0, cap_max = 0;
    size_t at_anchor = 0; /* new records at the anchor instant */
    cJSON *rec = records->child;
    while (rec != NULL) {
        cJSON *next = rec->next;
        if (!id_and_time(rec, id_field, &id, &t)) {
            rec = next;
            continue;
        }
        if (a->since != NULL &&
            (t < a->since_t || (t == a->since_t && zoho_anchor_seen(a, id)))) {
            cJSON_Delete(cJSON_DetachItemViaPointer(records, rec));
            rec = next;
            continue;
        }
        if (a->since != NULL && t == a->since_t)
            at_anchor++;
        if (!have_max || t > max_t) {
            have_max = true;
            max_t = t;
            max_s = cJSON_GetObjectItemCaseSensitive(rec, "last_modified_time")->valuestring;
            n_max = 0;
        }
        if (t == max_t) {
            if (n_max == cap_max) {
                cap_max = cap_max ? cap_max * 2 : 16;
                max_ids = xreallocarray(max_ids, cap_max, sizeof *max_ids);
            }
            max_ids[n_max++] = id;
        }
        rec = next;
    }
    if (a->verifying)
        a->pass_fresh += at_anchor;
    bool beyond = max_s != NULL && (a->since == NULL || max_t > a->since_t);
    bool instant_done = beyond || !has_more;

    if (instant_done && a->walked &&
        (!a->verifying || a->pass_fresh > 0) && a->restarts < ZOHO_ANCHOR_RESTARTS) {
        /*
         * The instant took several pages, so records could have joined it
         * behind the pages already read (a coarse clock: edits within the
         * same second).  Read it once more before leaving it; again while a
         * pass still finds new ones.  Records after the instant wait.
         */
        cJSON *r2 = records->child;
        while (r2 != NULL) { /* remember what is returned at the instant */
            if (id_and_time(r2, id_field, &id, &t) && t == a->since_t && !zoho_anchor_seen(a, id))
                ids_add(a, id);
            r2 = r2->next;
        }
        drop_after(a, records, id_field);
        new_pass(a);
    } else if (beyond) {
        /* The page reached a newer instant: re-anchor there, page 1. */
        free(a->since);
        a->since = xstrdup(max_s);
        a->since_t = max_t;
        ids_clear(a);
        for (size_t i = 0; i < n_max; i++)
            ids_add(a, max_ids[i]);
        a->page = 1;
        a->page_size = a->per_page;
        a->restarts = 0;
        a->walked = a->verifying = false;
        a->pass_fresh = 0;
    } else {
        /* Still inside the anchor instant: remember what we took, go on. */
        for (size_t i = 0; i < n_max; i++)
            ids_add(a, max_ids[i]);
        next_in_instant(a, offset + count);
    }
    *fresh = (size_t)cJSON_GetArraySize(records);
    free(max_ids);
    return 0;
}

/* ---- the pager ---- */

struct zoho_pager {
    struct zoho_conn *c;
    const struct entity_desc *d;
    char *filter_by;
    char *extra;
    int per_page;
    bool changed;           /* changed-since mode */
    bool bad_since;
    struct zoho_anchor a;
    bool done;
    long long pages, records;
    char *prev_first, *prev_last;   /* full mode: repeated page detection */
    size_t stall;                   /* consecutive pages with nothing new */
};

struct zoho_pager *zoho_pager_new(struct zoho_conn *c, const struct entity_desc *d,
                                  const struct zoho_pager_opts *opts)
{
    struct zoho_pager *p = xcalloc(1, sizeof *p);
    p->c = c;
    p->d = d;
    p->per_page = 200;
    if (opts != NULL) {
        if (opts->per_page > 0 && opts->per_page <= 200)
            p->per_page = opts->per_page;
        p->filter_by = opts->filter_by ? xstrdup(opts->filter_by) : NULL;
        p->extra = opts->extra_query ? xstrdup(opts->extra_query) : NULL;
        if (opts->changed_since != NULL) {
            long long t;
            p->changed = true;
            p->bad_since = !zoho_time_parse(opts->changed_since, &t);
            zoho_anchor_init(&p->a, opts->changed_since, opts->seen_ids, opts->n_seen,
                             p->per_page);
        }
    }
    if (!p->changed)
        zoho_anchor_init(&p->a, NULL, NULL, 0, p->per_page);
    return p;
}

void zoho_pager_free(struct zoho_pager *p)
{
    if (p == NULL)
        return;
    zoho_anchor_free(&p->a);
    free(p->filter_by);
    free(p->extra);
    free(p->prev_first);
    free(p->prev_last);
    free(p);
}

long long zoho_pager_pages(const struct zoho_pager *p)
{
    return p->pages;
}

long long zoho_pager_records(const struct zoho_pager *p)
{
    return p->records;
}

void zoho_pager_cursor(const struct zoho_pager *p, char **time, char **ids_json)
{
    *time = p->a.since ? xstrdup(p->a.since) : NULL;
    cJSON *arr = cJSON_CreateArray();
    for (size_t i = 0; i < p->a.n_ids; i++)
        cJSON_AddItemToArray(arr, cJSON_CreateString(p->a.ids[i]));
    *ids_json = cJSON_PrintUnformatted(arr);
    cJSON_Delete(arr);
    if (*ids_json == NULL)
        *ids_json = xstrdup("[]");
}

static char *page_query(const struct zoho_pager *p)
{
    struct strbuf q = {0};
    strbuf_printf(&q, "page=%d&per_page=%d", p->a.page, p->a.page_size);
    if (p->filter_by != NULL) {
        strbuf_puts(&q, "&filter_by=");
        zoho_url_encode(&q, p->filter_by);
    }
    if (p->changed) {
        strbuf_puts(&q, "&last_modified_time=");
        zoho_url_encode(&q, p->a.since);
        strbuf_puts(&q, "&sort_column=last_modified_time&sort_order=A");
    }
    if (!str_empty(p->extra)) {
        strbuf_putc(&q, '&');
        strbuf_puts(&q, p->extra);
    }
    return strbuf_detach(&q);
}

/* Books writes page_context as a one-element array too ("page_context":
 * [{...}]): read it as the object it holds. */
static void page_ctx_unwrap(cJSON *doc)
{
    cJSON *pc = cJSON_GetObjectItemCaseSensitive(doc, "page_context");
    if (cJSON_IsArray(pc) && cJSON_IsObject(cJSON_GetArrayItem(pc, 0)))
        cJSON_ReplaceItemInObjectCaseSensitive(doc, "page_context",
                                               cJSON_DetachItemFromArray(pc, 0));
}

static char *id_text(const cJSON *rec, const char *field)
{
    char nb[32];
    const char *id = record_id(rec, field, nb, sizeof nb);
    return xstrdup(id ? id : "");
}

int zoho_pager_next(struct zoho_pager *p, cJSON **records, bool *more, struct zoho_error *e)
{
    const struct entity_desc *d = p->d;
    char endpoint[160];
    snprintf(endpoint, sizeof endpoint, "GET %s", d->list_path);
    *records = NULL;
    if (more)
        *more = false;
    if (p->done)
        return 0;
    if (p->changed && !d->changed_since) {
        zoho_error_set(e, ZOHO_ERR_ARG, 0, -1, endpoint, 0,
                       "%s has no changed-since filter: use a full listing", d->name);
        return -1;
    }
    if (p->bad_since) {
        zoho_error_set(e, ZOHO_ERR_ARG, 0, -1, endpoint, 0,
                       "changed_since \"%s\" is not a time like 2025-11-05T12:06:10+0530",
                       p->a.since);
        return -1;
    }
    for (;;) {
        int page = p->a.page;
        char *query = page_query(p);
        cJSON *doc = NULL;
        int rc = zoho_get_json(p->c, d->product, d->list_path, query, page, &doc, e);
        free(query);
        if (rc != 0)
            return -1;
        cJSON *arr = cJSON_DetachItemFromObjectCaseSensitive(doc, d->name);
        struct zoho_page_ctx ctx;
        page_ctx_unwrap(doc);
        zoho_page_ctx_parse(doc, &ctx);
        cJSON_Delete(doc);
        if (!cJSON_IsArray(arr)) {
            cJSON_Delete(arr);
            zoho_error_set(e, ZOHO_ERR_BAD_RESPONSE, 200, 0, endpoint, page,
                           "the answer has no \"%s\" array", d->name);
            return -1;
        }
        int count = cJSON_GetArraySize(arr);
        if (ctx.present && ctx.page > 0 && ctx.page != page) {
            cJSON_Delete(arr);
            zoho_error_set(e, ZOHO_ERR_PAGING, 200, 0, endpoint, page,
                           "page_context.page is %d but page %d was asked for", ctx.page, page);
            return -1;
        }
        bool has_more = ctx.has_more_present ? ctx.has_more : count >= p->a.page_size;
        if (count == 0 && has_more) {
            cJSON_Delete(arr);
            zoho_error_set(e, ZOHO_ERR_PAGING, 200, 0, endpoint, page,
                           "page_context.has_more_page is true but the page is empty");
            return -1;
        }
        if (count > 0) {
            /* The same page again (a server ignoring page=): a lie. */
            char *first = id_text(cJSON_GetArrayItem(arr, 0), d->id_field);
            char *last = id_text(cJSON_GetArrayItem(arr, count - 1), d->id_field);
            bool repeat = !p->changed && page > 1 && p->prev_first != NULL && first[0] &&
                          str_eq(first, p->prev_first) && str_eq(last, p->prev_last);
            if (repeat) {
                free(first);
                free(last);
                cJSON_Delete(arr);
                zoho_error_set(e, ZOHO_ERR_PAGING, 200, 0, endpoint, page,
                               "page %d repeats page %d (first %s %s): page_context lies",
                               page, page - 1, d->id_field, p->prev_first);
                return -1;
            }
            free(p->prev_first);
            free(p->prev_last);
            p->prev_first = first;
            p->prev_last = last;
        }
        p->pages++;
        size_t fresh = (size_t)count;
        if (p->changed) {
            size_t known = p->a.n_ids; /* duplicates that may legitimately fill pages */
            char *err = NULL;
            if (zoho_anchor_take(&p->a, arr, d->id_field, has_more, &fresh, &err) != 0) {
                cJSON_Delete(arr);
                zoho_error_set(e, ZOHO_ERR_BAD_RESPONSE, 200, 0, endpoint, page, "%s", err);
                free(err);
                return -1;
            }
            /* A re-read of the instant goes on even after the last page. */
            if (p->a.again) {
                p->a.again = false;
                has_more = true;
            }
            if (fresh == 0 && has_more) {
                p->stall++;
                if (p->stall > 2 * known / (size_t)p->per_page + 3) {
                    cJSON_Delete(arr);
                    zoho_error_set(e, ZOHO_ERR_PAGING, 200, 0, endpoint, page,
                                   "page_context.has_more_page stays true but %zu pages in a "
                                   "row brought no new record",
                                   p->stall);
                    return -1;
                }
            } else {
                p->stall = 0;
            }
        } else {
            p->a.page++;
        }
        if (!has_more)
            p->done = true;
        if (fresh > 0) {
            p->records += (long long)fresh;
            *records = arr;
            if (more)
                *more = has_more;
            return 1;
        }
        cJSON_Delete(arr);
        if (p->done)
            return 0;
    }
}
