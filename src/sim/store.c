/*
 * store.c: the simulator's records.  Each record is kept only as its JSON,
 * rendered once (and again when it changes) into an immutable, reference-
 * counted blob, so a list page is built by concatenation.  Per entity, the
 * records sit in id order, with index arrays by (id) and by
 * (last_modified_time, id) for "all" and for each status value, rebuilt after
 * every change.  One reader-writer lock (writers preferred) guards it all.
 */
#include "sim.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct table {
    struct sim_rec **recs; /* id order */
    size_t n, cap;
    uint64_t next_seq;
    int nst; /* 1 + number of status values */
    struct sim_rec **idx[2][SIM_MAX_STATUS];
    size_t idx_n[2][SIM_MAX_STATUS];
};

static struct table tables[SIM_ENTITIES];
static pthread_rwlock_t lock;
static const struct sim_config *cfg;
static uint64_t mutate_calls;

/* ---- JSON rendering ---- */

void sim_json_string(struct strbuf *sb, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    strbuf_putc(sb, '"');
    const char *run = s;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        strbuf_append(sb, run, (size_t)(s - run));
        run = s + 1;
        char esc[7] = {'\\', 0, 0, 0, 0, 0, 0};
        switch (c) {
        case '"':
        case '\\':
            esc[1] = (char)c;
            break;
        case '\n':
            esc[1] = 'n';
            break;
        case '\r':
            esc[1] = 'r';
            break;
        case '\t':
            esc[1] = 't';
            break;
        default:
            esc[1] = 'u';
            esc[2] = '0';
            esc[3] = '0';
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 15];
        }
        strbuf_puts(sb, esc);
    }
    strbuf_append(sb, run, (size_t)(s - run));
    strbuf_putc(sb, '"');
}

/* Quantities carry six decimals, as Zoho sends them. */
static bool is_quantity(const char *k)
{
    return k && (strstr(k, "stock") || strstr(k, "quantity") || !strcmp(k, "reorder_level"));
}

void sim_json_render(struct strbuf *sb, const cJSON *v, const char *key)
{
    char num[64];
    if (cJSON_IsString(v) && sim_shape_numeric_key(key) && v->valuestring[0] &&
        strspn(v->valuestring, "0123456789") == strlen(v->valuestring)) {
        strbuf_puts(sb, v->valuestring); /* numeric-ids: unquoted */
    } else if (cJSON_IsString(v)) {
        sim_json_string(sb, v->valuestring);
    } else if (cJSON_IsNumber(v)) {
        double d = v->valuedouble;
        if (!isfinite(d))
            d = 0;
        if (sim_shape_numeric_key(key))
            snprintf(num, sizeof(num), "%.0f", d);
        else if (is_quantity(key))
            snprintf(num, sizeof(num), "%.6f", d);
        else if (d == floor(d) && fabs(d) < 1e15)
            snprintf(num, sizeof(num), "%.0f", d);
        else
            snprintf(num, sizeof(num), "%.15g", d);
        strbuf_puts(sb, num);
    } else if (cJSON_IsTrue(v)) {
        strbuf_puts(sb, "true");
    } else if (cJSON_IsFalse(v)) {
        strbuf_puts(sb, "false");
    } else if (cJSON_IsArray(v)) {
        strbuf_putc(sb, '[');
        const cJSON *e;
        bool first = true;
        cJSON_ArrayForEach(e, v)
        {
            if (!first)
                strbuf_putc(sb, ',');
            first = false;
            sim_json_render(sb, e, key);
        }
        strbuf_putc(sb, ']');
    } else if (cJSON_IsObject(v)) {
        strbuf_putc(sb, '{');
        const cJSON *e;
        bool first = true;
        cJSON_ArrayForEach(e, v)
        {
            if (!first)
                strbuf_putc(sb, ',');
            first = false;
            sim_json_string(sb, e->string);
            strbuf_putc(sb, ':');
            sim_json_render(sb, e, e->string);
        }
        strbuf_putc(sb, '}');
    } else {
        strbuf_puts(sb, "\"\""); /* Zoho sends "" for empty values, never null */
    }
}

/* ---- blobs and records ---- */

void sim_blob_unref(struct sim_blob *b)
{
    if (b && atomic_fetch_sub(&b->ref, 1) == 1)
        free(b);
}

void sim_blob_detail(const struct sim_blob *b, struct strbuf *sb)
{
    if (b->suffix_len == 0) {
        strbuf_append(sb, b->data, b->list_len);
        return;
    }
    strbuf_append(sb, b->data, b->list_len - 1);
    strbuf_append(sb, b->data + b->list_len, b->suffix_len);
}

static bool is_detail_key(int ent, const char *k)
{
    const char *dk = sim_entities[ent].detail_key;
    if (!dk)
        return false;
    return !strcmp(k, dk) || (!strcmp(dk, "locations") && !strcmp(k, "warehouses"));
}

/* Renders o into a new blob (ref 1) and fills the record's metadata. */
static struct sim_blob *render(int ent, const cJSON *o, struct sim_rec *rec)
{
    struct strbuf list = {0}, suffix = {0};
    strbuf_putc(&list, '{');
    const cJSON *e;
    bool first = true;
    cJSON_ArrayForEach(e, o)
    {
        struct strbuf *sb = &list;
        if (is_detail_key(ent, e->string)) {
            sb = &suffix;
            strbuf_putc(sb, ',');
        } else if (!first) {
            strbuf_putc(sb, ',');
        }
        if (sb == &list)
            first = false;
        sim_json_string(sb, e->string);
        strbuf_putc(sb, ':');
        sim_json_render(sb, e, e->string);
    }
    strbuf_putc(&list, '}');
    if (suffix.len)
        strbuf_putc(&suffix, '}');

    struct sim_blob *b = xmalloc(sizeof(*b) + list.len + suffix.len + 1);
    atomic_init(&b->ref, 1);
    b->list_len = list.len;
    b->suffix_len = suffix.len;
    memcpy(b->data, list.buf, list.len);
    if (suffix.len)
        memcpy(b->data + list.len, suffix.buf, suffix.len);
    b->data[list.len + suffix.len] = '\0';
    strbuf_free(&list);
    strbuf_free(&suffix);

    const struct sim_entity *en = &sim_entities[ent];
    const char *id = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, en->id_field));
    rec->id = id ? strtoull(id, NULL, 10) : 0;
    snprintf(rec->idstr, sizeof(rec->idstr), "%llu", (unsigned long long)rec->id);
    const char *lmt =
        cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, "last_modified_time"));
    int64_t t = 0;
    if (lmt && sim_time_parse(lmt, &t))
        rec->lmt = t;
    else
        rec->lmt = 0;
    rec->st = 0;
    const char *st = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, "status"));
    for (int i = 0; en->statuses && en->statuses[i] && st; i++)
        if (!strcmp(en->statuses[i], st))
            rec->st = (uint8_t)(i + 1);
    const char *it = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, "image_type"));
    rec->image = 0;
    if (it && !strcmp(it, "png"))
        rec->image = 1;
    else if (it && (!strcmp(it, "jpg") || !strcmp(it, "jpeg")))
        rec->image = 2;
    return b;
}

static cJSON *parse_detail(const struct sim_blob *b)
{
    struct strbuf sb = {0};
    sim_blob_detail(b, &sb);
    cJSON *o = cJSON_ParseWithLength(sb.buf, sb.len);
    strbuf_free(&sb);
    if (!o)
        abort(); /* we rendered it ourselves */
    return o;
}

static char *detail_copy(const struct sim_blob *b)
{
    struct strbuf sb = {0};
    sim_blob_detail(b, &sb);
    return strbuf_detach(&sb);
}

/* ---- indexes ---- */

static int cmp_lmt(const void *a, const void *b)
{
    const struct sim_rec *x = *(struct sim_rec *const *)a, *y = *(struct sim_rec *const *)b;
    if (x->lmt != y->lmt)
        return x->lmt < y->lmt ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

static void reindex(int ent)
{
    struct table *t = &tables[ent];
    for (int o = 0; o < 2; o++)
        for (int s = 0; s < t->nst; s++) {
            t->idx[o][s] = xreallocarray(t->idx[o][s], t->n ? t->n : 1, sizeof(void *));
            t->idx_n[o][s] = 0;
        }
    for (size_t i = 0; i < t->n; i++) {
        struct sim_rec *r = t->recs[i];
        t->idx[0][0][t->idx_n[0][0]++] = r;
        if (r->st)
            t->idx[0][r->st][t->idx_n[0][r->st]++] = r;
    }
    struct sim_rec **tmp = xreallocarray(NULL, t->n ? t->n : 1, sizeof(void *));
    memcpy(tmp, t->recs, t->n * sizeof(void *));
    qsort(tmp, t->n, sizeof(void *), cmp_lmt);
    for (size_t i = 0; i < t->n; i++) {
        struct sim_rec *r = tmp[i];
        t->idx[1][0][t->idx_n[1][0]++] = r;
        if (r->st)
            t->idx[1][r->st][t->idx_n[1][r->st]++] = r;
    }
    free(tmp);
}

static void table_append(struct table *t, struct sim_rec *r)
{
    if (t->n == t->cap) {
        t->cap = t->cap ? t->cap * 2 : 64;
        t->recs = xreallocarray(t->recs, t->cap, sizeof(void *));
    }
    t->recs[t->n++] = r;
}

/* Generation of a range of records, run on a few threads for big data sets. */
#define GEN_THREADS 4

struct gen_job {
    int ent;
    long from, to;
    struct sim_rec **out;
};

static void *gen_range(void *arg)
{
    struct gen_job *j = arg;
    for (long s = j->from; s < j->to; s++) {
        cJSON *o = sim_generate(cfg, j->ent, (uint64_t)s, -1);
        struct sim_rec *r = xcalloc(1, sizeof(*r));
        r->blob = render(j->ent, o, r);
        cJSON_Delete(o);
        j->out[s] = r;
    }
    return NULL;
}

void sim_store_init(const struct sim_config *c)
{
    cfg = c;
    pthread_rwlockattr_t attr;
    pthread_rwlockattr_init(&attr);
    pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    pthread_rwlock_init(&lock, &attr);
    pthread_rwlockattr_destroy(&attr);
    for (int e = 0; e < SIM_ENTITIES; e++) {
        struct table *t = &tables[e];
        t->nst = 1;
        for (int i = 0; sim_entities[e].statuses && sim_entities[e].statuses[i]; i++)
            t->nst++;
        long n = c->counts[e];
        t->cap = n > 0 ? (size_t)n : 64;
        t->recs = xreallocarray(NULL, t->cap, sizeof(void *));
        struct gen_job jobs[GEN_THREADS];
        pthread_t th[GEN_THREADS];
        int nth = n >= 20000 ? GEN_THREADS : 1;
        for (int k = 0; k < nth; k++) {
            jobs[k] = (struct gen_job){e, n * k / nth, n * (k + 1) / nth, t->recs};
            if (nth == 1 || pthread_create(&th[k], NULL, gen_range, &jobs[k]) != 0) {
                gen_range(&jobs[k]);
                jobs[k].ent = -1;
            }
        }
        for (int k = 0; k < nth; k++)
            if (jobs[k].ent >= 0)
                pthread_join(th[k], NULL);
        t->n = (size_t)n;
        t->next_seq = (uint64_t)n;
        reindex(e);
    }
}

void sim_store_free(void)
{
    for (int e = 0; e < SIM_ENTITIES; e++) {
        struct table *t = &tables[e];
        for (size_t i = 0; i < t->n; i++) {
            sim_blob_unref(t->recs[i]->blob);
            free(t->recs[i]);
        }
        free(t->recs);
        for (int o = 0; o < 2; o++)
            for (int s = 0; s < t->nst; s++)
                free(t->idx[o][s]);
        memset(t, 0, sizeof(*t));
    }
    pthread_rwlock_destroy(&lock);
}

void sim_store_rdlock(void)
{
    pthread_rwlock_rdlock(&lock);
}

void sim_store_wrlock(void)
{
    pthread_rwlock_wrlock(&lock);
}

void sim_store_unlock(void)
{
    pthread_rwlock_unlock(&lock);
}

int64_t sim_now(void)
{
    static _Atomic int64_t last;
    int64_t now = (int64_t)time(NULL);
    int64_t prev = atomic_load(&last);
    while (now > prev && !atomic_compare_exchange_weak(&last, &prev, now))
        ;
    return now > prev ? now : prev;
}

/* ---- reading ---- */

static size_t find_index(int ent, const char *id, bool *found)
{
    struct table *t = &tables[ent];
    *found = false;
    if (!str_is_digits(id) || strlen(id) > 20)
        return 0;
    uint64_t want = strtoull(id, NULL, 10);
    size_t lo = 0, hi = t->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (t->recs[mid]->id < want)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = lo < t->n && t->recs[lo]->id == want && strcmp(t->recs[lo]->idstr, id) == 0;
    return lo;
}

struct sim_rec *sim_store_get(int ent, const char *id)
{
    bool found;
    size_t i = find_index(ent, id, &found);
    return found ? tables[ent].recs[i] : NULL;
}

void sim_store_page(const struct sim_list_query *q, struct strbuf *sb, bool *more)
{
    struct table *t = &tables[q->ent];
    int st = q->st < t->nst ? q->st : 0;
    struct sim_rec **arr = t->idx[q->by_lmt ? 1 : 0][st];
    size_t n = t->idx_n[q->by_lmt ? 1 : 0][st];
    struct sim_rec **filtered = NULL;
    size_t start = 0, count = n;

    if (q->has_since && q->by_lmt) {
        size_t lo = 0, hi = n;
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            if (arr[mid]->lmt < q->since)
                lo = mid + 1;
            else
                hi = mid;
        }
        start = lo;
        count = n - lo;
    } else if (q->has_since) {
        filtered = xreallocarray(NULL, n ? n : 1, sizeof(void *));
        count = 0;
        for (size_t i = 0; i < n; i++)
            if (arr[i]->lmt >= q->since)
                filtered[count++] = arr[i];
        arr = filtered;
    }
    unsigned long long off = (unsigned long long)(q->page - 1) * (unsigned long long)q->per_page;
    bool first = true;
    for (unsigned long long k = off; k < count && k < off + (unsigned long long)q->per_page; k++) {
        size_t i = q->desc ? start + count - 1 - k : start + k;
        const struct sim_blob *b = arr[i]->blob;
        if (!first)
            strbuf_putc(sb, ',');
        first = false;
        strbuf_append(sb, b->data, b->list_len);
    }
    *more = count > off + (unsigned long long)q->per_page;
    free(filtered);
}

struct sim_blob **sim_store_snapshot(int ent, size_t *n)
{
    sim_store_rdlock();
    struct table *t = &tables[ent];
    struct sim_blob **out = xreallocarray(NULL, t->n ? t->n : 1, sizeof(void *));
    for (size_t i = 0; i < t->n; i++) {
        out[i] = t->recs[i]->blob;
        atomic_fetch_add(&out[i]->ref, 1);
    }
    *n = t->n;
    sim_store_unlock();
    return out;
}

/* ---- changes ---- */

static void set_item(cJSON *o, const char *k, cJSON *v)
{
    if (cJSON_HasObjectItem(o, k))
        cJSON_ReplaceItemInObjectCaseSensitive(o, k, v);
    else
        cJSON_AddItemToObject(o, k, v);
}

static void set_time(cJSON *o, const char *k, int64_t t)
{
    char buf[64];
    sim_time_format(t, buf);
    set_item(o, k, cJSON_CreateString(buf));
}

static double num_of(const cJSON *v)
{
    if (cJSON_IsNumber(v))
        return v->valuedouble;
    if (cJSON_IsString(v))
        return strtod(v->valuestring, NULL);
    return 0;
}

/* The locations (or warehouses) array of an item and its field prefix. */
static cJSON *item_locations(cJSON *o, const char **prefix)
{
    cJSON *l = cJSON_GetObjectItemCaseSensitive(o, "locations");
    *prefix = "location_";
    if (!l) {
        l = cJSON_GetObjectItemCaseSensitive(o, "warehouses");
        *prefix = "warehouse_";
    }
    return cJSON_IsArray(l) ? l : NULL;
}

/* Adds delta to field suffix ("stock_on_hand") of location entry e. */
static void loc_add(cJSON *e, const char *prefix, const char *suffix, double delta)
{
    char k[80];
    snprintf(k, sizeof(k), "%s%s", prefix, suffix);
    double v = num_of(cJSON_GetObjectItemCaseSensitive(e, k));
    set_item(e, k, cJSON_CreateNumber(v + delta));
}

static void patch_locations(cJSON *o, const cJSON *arr)
{
    const char *prefix;
    cJSON *locs = item_locations(o, &prefix);
    if (!locs)
        return;
    const cJSON *pe;
    cJSON_ArrayForEach(pe, arr)
    {
        const char *id = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(pe, "location_id"));
        if (!id)
            id = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(pe, "warehouse_id"));
        if (!id)
            continue;
        char idk[64];
        snprintf(idk, sizeof(idk), "%sid", prefix);
        cJSON *e, *match = NULL;
        cJSON_ArrayForEach(e, locs)
        {
            if (str_eq(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(e, idk)), id))
                match = e;
        }
        if (!match)
            continue;
        bool avail_given = false;
        const cJSON *f;
        cJSON_ArrayForEach(f, pe)
        {
            if (f->string && strstr(f->string, "available_stock"))
                avail_given = true;
        }
        cJSON_ArrayForEach(f, pe)
        {
            const char *rest = f->string;
            if (!rest)
                continue;
            if (str_starts_with(rest, "location_"))
                rest += 9;
            else if (str_starts_with(rest, "warehouse_"))
                rest += 10;
            else if (strcmp(rest, "status") && strcmp(rest, "is_primary"))
                continue;
            if (!strcmp(rest, "id"))
                continue;
            char k[80];
            if (!strcmp(rest, "status") || !strcmp(rest, "is_primary"))
                snprintf(k, sizeof(k), "%s", rest);
            else
                snprintf(k, sizeof(k), "%s%s", prefix, rest);
            if (!strcmp(rest, "stock_on_hand") && !avail_given) {
                double delta = num_of(f) - num_of(cJSON_GetObjectItemCaseSensitive(match, k));
                loc_add(match, prefix, "available_stock", delta);
                loc_add(match, prefix, "actual_available_stock", delta);
            }
            if (cJSON_IsNumber(f) || !strstr(rest, "stock"))
                set_item(match, k, cJSON_Duplicate(f, true));
            else
                set_item(match, k, cJSON_CreateNumber(num_of(f)));
        }
    }
}

/* Applies patch to record o; sets last_modified_time to now unless the patch sets it. */
static void apply_patch(int ent, cJSON *o, const cJSON *patch, int64_t now)
{
    const struct sim_entity *en = &sim_entities[ent];
    bool items = !strcmp(en->name, "items");
    const char *prefix = "location_";
    cJSON *locs = items ? item_locations(o, &prefix) : NULL;
    bool has_locs = locs && cJSON_GetArraySize(locs) > 0;
    bool avail_given = cJSON_HasObjectItem(patch, "available_stock");
    const cJSON *f;
    cJSON_ArrayForEach(f, patch)
    {
        if (!strcmp(f->string, en->id_field))
            continue;
        if (items && (!strcmp(f->string, "locations") || !strcmp(f->string, "warehouses"))) {
            if (cJSON_IsArray(f))
                patch_locations(o, f);
            continue;
        }
        if (items && has_locs &&
            (!strcmp(f->string, "stock_on_hand") || !strcmp(f->string, "available_stock") ||
             !strcmp(f->string, "actual_available_stock"))) {
            /* Totals are sums over locations: move the primary location. */
            cJSON *e, *primary = cJSON_GetArrayItem(locs, 0);
            cJSON_ArrayForEach(e, locs)
            {
                if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(e, "is_primary")))
                    primary = e;
            }
            double delta = num_of(f) - num_of(cJSON_GetObjectItemCaseSensitive(o, f->string));
            loc_add(primary, prefix, f->string, delta);
            if (!strcmp(f->string, "stock_on_hand") && !avail_given) {
                loc_add(primary, prefix, "available_stock", delta);
                loc_add(primary, prefix, "actual_available_stock", delta);
            }
            continue;
        }
        set_item(o, f->string, cJSON_Duplicate(f, true));
    }
    if (items)
        sim_item_totals(o);
    if (!cJSON_HasObjectItem(patch, "last_modified_time"))
        set_time(o, "last_modified_time", now);
}

char *sim_store_patch(int ent, const char *id, const cJSON *patch, const char **err)
{
    if (!cJSON_IsObject(patch)) {
        *err = "the body must be a JSON object of fields";
        return NULL;
    }
    sim_store_wrlock();
    struct sim_rec *rec = sim_store_get(ent, id);
    if (!rec) {
        sim_store_unlock();
        *err = "no such record";
        return NULL;
    }
    cJSON *o = parse_detail(rec->blob);
    apply_patch(ent, o, patch, sim_now());
    struct sim_blob *old = rec->blob;
    uint64_t keep = rec->id;
    rec->blob = render(ent, o, rec);
    rec->id = keep;
    snprintf(rec->idstr, sizeof(rec->idstr), "%llu", (unsigned long long)keep);
    sim_blob_unref(old);
    cJSON_Delete(o);
    reindex(ent);
    char *out = detail_copy(rec->blob);
    sim_store_unlock();
    sim_webhook_queue(ent, "update", out, strlen(out));
    return out;
}

/* Creates one record (caller holds the write lock); returns it, not yet indexed. */
static struct sim_rec *create_locked(int ent, const cJSON *fields)
{
    struct table *t = &tables[ent];
    int64_t now = sim_now();
    cJSON *o = sim_generate(cfg, ent, t->next_seq++, now);
    if (fields)
        apply_patch(ent, o, fields, now);
    struct sim_rec *r = xcalloc(1, sizeof(*r));
    r->blob = render(ent, o, r);
    cJSON_Delete(o);
    table_append(t, r);
    return r;
}

char *sim_store_create(int ent, const cJSON *fields, const char **err)
{
    if (fields && !cJSON_IsObject(fields)) {
        *err = "the body must be a JSON object of fields";
        return NULL;
    }
    sim_store_wrlock();
    struct sim_rec *r = create_locked(ent, fields);
    reindex(ent);
    char *out = detail_copy(r->blob);
    sim_store_unlock();
    sim_webhook_queue(ent, "create", out, strlen(out));
    return out;
}

static char *delete_locked(int ent, size_t i)
{
    struct table *t = &tables[ent];
    struct sim_rec *r = t->recs[i];
    char *detail = detail_copy(r->blob);
    memmove(t->recs + i, t->recs + i + 1, (t->n - i - 1) * sizeof(void *));
    t->n--;
    sim_blob_unref(r->blob);
    free(r);
    return detail;
}

bool sim_store_delete(int ent, const char *id)
{
    sim_store_wrlock();
    bool found;
    size_t i = find_index(ent, id, &found);
    if (!found) {
        sim_store_unlock();
        return false;
    }
    char *detail = delete_locked(ent, i);
    reindex(ent);
    sim_store_unlock();
    sim_webhook_queue(ent, "delete", detail, strlen(detail));
    free(detail);
    return true;
}

static int cmp_pos_desc(const void *a, const void *b)
{
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    return x < y ? 1 : x > y ? -1 : 0;
}

struct pending {
    const char *event;
    char *detail;
};

char *sim_store_mutate(int ent, long update, long create, long del, bool has_seed, uint64_t seed)
{
    sim_store_wrlock();
    struct table *t = &tables[ent];
    struct sim_rng r = has_seed ? sim_rng_for(seed, 200 + ent, 0)
                                : sim_rng_for(cfg->seed, 300 + ent, ++mutate_calls);
    if (update < 0)
        update = 0;
    if (del < 0)
        del = 0;
    if (create < 0)
        create = 0;
    if ((size_t)update > t->n)
        update = (long)t->n;
    if ((size_t)del > t->n - (size_t)update)
        del = (long)(t->n - (size_t)update);
    /* A partial Fisher-Yates over positions picks distinct records. */
    size_t *pos = xreallocarray(NULL, t->n ? t->n : 1, sizeof(size_t));
    for (size_t i = 0; i < t->n; i++)
        pos[i] = i;
    size_t picks = (size_t)(update + del);
    for (size_t i = 0; i < picks; i++) {
        size_t j = i + (size_t)sim_rng_below(&r, t->n - i);
        size_t tmp = pos[i];
        pos[i] = pos[j];
        pos[j] = tmp;
    }
    size_t npend = 0;
    struct pending *pend = xreallocarray(NULL, picks + (size_t)create + 1, sizeof(*pend));
    cJSON *res = cJSON_CreateObject();
    cJSON_AddStringToObject(res, "entity", sim_entities[ent].name);
    cJSON *upd = cJSON_AddArrayToObject(res, "updated");
    cJSON *crt = cJSON_AddArrayToObject(res, "created");
    cJSON *dl = cJSON_AddArrayToObject(res, "deleted");
    int64_t now = sim_now();
    for (long i = 0; i < update; i++) {
        struct sim_rec *rec = t->recs[pos[i]];
        cJSON *o = parse_detail(rec->blob);
        sim_generate_change(cfg, ent, o, &r);
        set_time(o, "last_modified_time", now);
        struct sim_blob *old = rec->blob;
        rec->blob = render(ent, o, rec);
        sim_blob_unref(old);
        cJSON_Delete(o);
        cJSON_AddItemToArray(upd, cJSON_CreateString(rec->idstr));
        pend[npend++] = (struct pending){"update", detail_copy(rec->blob)};
    }
    /* Delete from the highest position down so earlier positions stay valid. */
    size_t *dpos = pos + update;
    qsort(dpos, (size_t)del, sizeof(size_t), cmp_pos_desc);
    for (long i = 0; i < del; i++) {
        cJSON_AddItemToArray(dl, cJSON_CreateString(t->recs[dpos[i]]->idstr));
        pend[npend++] = (struct pending){"delete", delete_locked(ent, dpos[i])};
    }
    for (long i = 0; i < create; i++) {
        struct sim_rec *rec = create_locked(ent, NULL);
        cJSON_AddItemToArray(crt, cJSON_CreateString(rec->idstr));
        pend[npend++] = (struct pending){"create", detail_copy(rec->blob)};
    }
    reindex(ent);
    sim_store_unlock();
    free(pos);
    for (size_t i = 0; i < npend; i++) {
        sim_webhook_queue(ent, pend[i].event, pend[i].detail, strlen(pend[i].detail));
        free(pend[i].detail);
    }
    free(pend);
    struct strbuf sb = {0};
    sim_json_render(&sb, res, NULL);
    cJSON_Delete(res);
    return strbuf_detach(&sb);
}
