/*
 * test_zoho_anchor.c: the re-anchoring of changed-since scans over a
 * scripted list that changes between pages (records edited, deleted,
 * created), served the way Zoho does (filter inclusive, sorted ascending by
 * last_modified_time).  Whatever the script, a scan must return every
 * record that exists at its end with its final time, and never the same
 * (id, time) twice.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include "zoho_internal.h"

#define MAXREC 4000
#define BASE_T 1700000000LL

struct rec {
    int id;
    long long t;
    bool alive;
};

struct world {
    struct rec r[MAXREC];
    int n;
    long long clock; /* next edit time */
};

/* One step of a script: after page `after`, do `op` on `id`. */
enum op { EDIT, DEL, NEW, EDIT_SAME, NEW_SAME };
struct step {
    int after;
    enum op op;
    int id;
};

static int cmp_rec(const void *a, const void *b)
{
    const struct rec *x = *(const struct rec *const *)a, *y = *(const struct rec *const *)b;
    if (x->t != y->t)
        return x->t < y->t ? -1 : 1;
    return x->id - y->id;
}

static void fmt_time(long long t, char *buf, size_t n)
{
    /* Zoho style, in +0530. */
    time_t lt = (time_t)(t + 19800);
    struct tm tm;
    gmtime_r(&lt, &tm);
    strftime(buf, n, "%Y-%m-%dT%H:%M:%S+0530", &tm);
}

/* Serves a page of the filtered, sorted list as a cJSON array. */
static cJSON *serve(struct world *w, const char *since, int page, int per_page, bool *more)
{
    long long st = 0;
    if (since != NULL)
        assert_true(zoho_time_parse(since, &st));
    const struct rec **v = malloc(sizeof *v * (size_t)w->n);
    int m = 0;
    for (int i = 0; i < w->n; i++)
        if (w->r[i].alive && (since == NULL || w->r[i].t >= st))
            v[m++] = &w->r[i];
    qsort(v, (size_t)m, sizeof *v, cmp_rec);
    cJSON *arr = cJSON_CreateArray();
    int from = (page - 1) * per_page;
    for (int i = from; i < m && i < from + per_page; i++) {
        cJSON *o = cJSON_CreateObject();
        char id[32], t[40];
        snprintf(id, sizeof id, "%d", v[i]->id);
        fmt_time(v[i]->t, t, sizeof t);
        cJSON_AddStringToObject(o, "item_id", id);
        cJSON_AddStringToObject(o, "last_modified_time", t);
        cJSON_AddItemToArray(arr, o);
    }
    *more = from + per_page < m;
    free(v);
    return arr;
}

static void apply(struct world *w, const struct step *s)
{
    switch (s->op) {
    case EDIT:
        for (int i = 0; i < w->n; i++)
            if (w->r[i].id == s->id && w->r[i].alive)
                w->r[i].t = w->clock++;
        break;
    case DEL:
        for (int i = 0; i < w->n; i++)
            if (w->r[i].id == s->id)
                w->r[i].alive = false;
        break;
    case NEW:
        w->r[w->n++] = (struct rec){s->id, w->clock++, true};
        break;
    case EDIT_SAME: /* a coarse clock: the edit lands in the newest instant */
    case NEW_SAME: {
        long long newest = 0;
        for (int i = 0; i < w->n; i++)
            if (w->r[i].alive && w->r[i].t > newest)
                newest = w->r[i].t;
        if (s->op == NEW_SAME) {
            w->r[w->n++] = (struct rec){s->id, newest, true};
        } else {
            for (int i = 0; i < w->n; i++)
                if (w->r[i].id == s->id && w->r[i].alive)
                    w->r[i].t = newest;
        }
        break;
    }
    }
}

struct seen {
    int id;
    long long t;
};

/*
 * Runs a scan from since (NULL: the oldest time) and checks the two
 * properties.  Returns the number of pages asked.
 */
static int scan(struct world *w, const char *since, const struct step *steps, size_t nsteps,
                int per_page)
{
    struct zoho_anchor a;
    char since_buf[40];
    if (since == NULL) {
        fmt_time(BASE_T - 86400, since_buf, sizeof since_buf);
        since = since_buf;
    }
    long long since_t;
    assert_true(zoho_time_parse(since, &since_t));
    zoho_anchor_init(&a, since, NULL, 0, per_page);
    struct seen *out = malloc(sizeof *out * 100000);
    size_t nout = 0;
    int pages = 0;
    for (;;) {
        bool more;
        cJSON *arr = serve(w, a.since, a.page, a.page_size, &more);
        pages++;
        assert_true(pages < 10000);
        size_t fresh;
        char *err = NULL;
        assert_int_equal(zoho_anchor_take(&a, arr, "item_id", more, &fresh, &err), 0);
        if (a.again) { /* as the pager does: a re-read goes on */
            a.again = false;
            more = true;
        }
        assert_int_equal((size_t)cJSON_GetArraySize(arr), fresh);
        const cJSON *o;
        cJSON_ArrayForEach(o, arr)
        {
            long long t;
            assert_true(zoho_time_parse(
                cJSON_GetObjectItemCaseSensitive(o, "last_modified_time")->valuestring, &t));
            int id = atoi(cJSON_GetObjectItemCaseSensitive(o, "item_id")->valuestring);
            for (size_t k = 0; k < nout; k++)
                if (out[k].id == id && out[k].t == t)
                    fail_msg("id %d at %lld returned twice (page %d)", id, t, pages);
            out[nout++] = (struct seen){id, t};
        }
        cJSON_Delete(arr);
        if (!more)
            break; /* changes after the last page cannot be seen */
        for (size_t s = 0; s < nsteps; s++)
            if (steps[s].after == pages)
                apply(w, &steps[s]);
    }
    /* No skip: every live record at or after since, with its final time. */
    for (int i = 0; i < w->n; i++) {
        if (!w->r[i].alive || w->r[i].t < since_t)
            continue;
        bool found = false;
        for (size_t k = 0; k < nout && !found; k++)
            found = out[k].id == w->r[i].id && out[k].t == w->r[i].t;
        if (!found)
            fail_msg("id %d (time %lld) skipped", w->r[i].id, w->r[i].t);
    }
    free(out);
    zoho_anchor_free(&a);
    return pages;
}

/* n records, `same` of them sharing each time. */
static void fill(struct world *w, int n, int same)
{
    memset(w, 0, sizeof *w);
    for (int i = 0; i < n; i++)
        w->r[i] = (struct rec){1000 + i, BASE_T + i / same, true};
    w->n = n;
    w->clock = BASE_T + 100000;
}

static void test_static_list(void **state)
{
    (void)state;
    static struct world w;
    static const struct {
        int n, same, per_page;
    } rows[] = {
        {0, 1, 200}, {1, 1, 200}, {200, 1, 200}, {201, 1, 200}, {1000, 1, 200},
        {1000, 7, 200}, {1000, 250, 200}, {1000, 1000, 200}, {450, 450, 200}, {999, 3, 10},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        fill(&w, rows[i].n, rows[i].same);
        scan(&w, NULL, NULL, 0, rows[i].per_page);
    }
}

static void test_changes_during_scan(void **state)
{
    (void)state;
    static struct world w;
    /* Edits of records already returned and not yet returned, deletions on
     * earlier and later pages, creations, on lists with ties. */
    static const struct step script[] = {
        {1, EDIT, 1000}, {1, DEL, 1001},  {1, EDIT, 1500}, {2, DEL, 1002},   {2, NEW, 9000},
        {2, EDIT, 1250}, {3, DEL, 1300},  {3, EDIT, 1003}, {3, EDIT, 1003},  {4, NEW, 9001},
        {4, DEL, 1800},  {5, EDIT, 1999}, {5, EDIT, 9000}, {6, DEL, 1600},   {7, EDIT, 1700},
        {8, NEW, 9002},  {9, DEL, 9001},  {9, EDIT, 1400}, {10, EDIT, 1401}, {11, DEL, 1402},
    };
    static const int sames[] = {1, 3, 50, 199, 200, 201};
    for (size_t s = 0; s < sizeof sames / sizeof sames[0]; s++) {
        fill(&w, 1000, sames[s]);
        scan(&w, NULL, script, sizeof script / sizeof script[0], 200);
        fill(&w, 1000, sames[s]);
        scan(&w, NULL, script, sizeof script / sizeof script[0], 50);
    }
}

static void test_random_scripts(void **state)
{
    (void)state;
    static struct world w;
    uint64_t rng = 12345;
    for (int round = 0; round < 200; round++) {
        int n = 200 + (int)(zoho_rng_next(&rng) % 800);
        int same = 1 + (int)(zoho_rng_next(&rng) % (round % 2 ? 40 : 400));
        fill(&w, n, same);
        struct step steps[60];
        int next_new = 50000;
        for (int i = 0; i < 60; i++) {
            steps[i].after = 1 + (int)(zoho_rng_next(&rng) % 12);
            steps[i].op = (enum op)(zoho_rng_next(&rng) % 5);
            steps[i].id = steps[i].op == NEW || steps[i].op == NEW_SAME
                              ? next_new++
                              : 1000 + (int)(zoho_rng_next(&rng) % (uint64_t)n);
        }
        scan(&w, NULL, steps, 60, 20 + (int)(zoho_rng_next(&rng) % 180));
    }
}

static void test_cursor_ids_dropped(void **state)
{
    (void)state;
    /* A resumed scan: ids already taken at the anchor instant are dropped. */
    cJSON *arr = cJSON_Parse("[{\"item_id\":\"1\",\"last_modified_time\":\"2024-01-01T10:00:00+0530\"},"
                             "{\"item_id\":\"2\",\"last_modified_time\":\"2024-01-01T10:00:00+0530\"},"
                             "{\"item_id\":\"3\",\"last_modified_time\":\"2024-01-01T10:00:00+0530\"},"
                             "{\"item_id\":\"4\",\"last_modified_time\":\"2024-01-01T10:00:05+0530\"},"
                             "{\"name\":\"no id\",\"last_modified_time\":\"2024-01-01T10:00:06+0530\"},"
                             "{\"item_id\":\"6\",\"last_modified_time\":\"not a time\"}]");
    const char *ids[] = {"1", "2"};
    struct zoho_anchor a;
    zoho_anchor_init(&a, "2024-01-01T10:00:00+0530", ids, 2, 200);
    size_t fresh;
    char *err = NULL;
    assert_int_equal(zoho_anchor_take(&a, arr, "item_id", true, &fresh, &err), 0);
    /* 3, 4 and the two bad records (kept for the mapping to report). */
    assert_int_equal(fresh, 4);
    assert_string_equal(cJSON_GetArrayItem(arr, 0)->child->valuestring, "3");
    assert_string_equal(a.since, "2024-01-01T10:00:05+0530");
    assert_int_equal(a.n_ids, 1);
    assert_string_equal(a.ids[0], "4");
    assert_int_equal(a.page, 1);
    cJSON_Delete(arr);

    /* A page entirely at the anchor instant moves to the next page. */
    arr = cJSON_Parse("[{\"item_id\":7,\"last_modified_time\":\"2024-01-01T10:00:05+0530\"}]");
    assert_int_equal(zoho_anchor_take(&a, arr, "item_id", true, &fresh, &err), 0);
    assert_int_equal(fresh, 1);
    assert_int_equal(a.page, 1); /* 1 record read: the instant ended */
    assert_int_equal(a.n_ids, 2);
    assert_true(zoho_anchor_seen(&a, "7"));
    cJSON_Delete(arr);
    zoho_anchor_free(&a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_static_list),
        cmocka_unit_test(test_changes_during_scan),
        cmocka_unit_test(test_random_scripts),
        cmocka_unit_test(test_cursor_ids_dropped),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
