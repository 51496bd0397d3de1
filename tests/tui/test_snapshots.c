/*
 * test_snapshots.c: every pane drawn by the real drawing code from fixed
 * data (fixture.txt) and a fixed clock, at 80x24 and 120x40, compared with
 * the expected screens in snapshots/.  TDS_UPDATE_SNAPSHOTS=1 rewrites them
 * (review the diff before committing).  Also checks that no control
 * character from the fixture's escape sequences reaches the screen.
 */
#include <locale.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "tds/tui.h"
#include "tds/util.h"
#include "tui_internal.h"

#define NOW ((time_t)1714564800) /* 2024-05-01 12:00:00 UTC */

static struct tui_snapshot *data;

static char *read_all(const char *path)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return NULL;
    struct strbuf sb = {0};
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0)
        strbuf_append(&sb, buf, n);
    fclose(f);
    return strbuf_detach(&sb);
}

static char *render(const char *pane, int w, int h)
{
    char *got = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&got, &len);
    assert_int_equal(tui_render_snapshot(pane, w, h, data, NOW, mem), 0);
    fclose(mem);
    return got;
}

/* Compares the screen of pane at w x h with snapshots/NAME-WxH.txt. */
static void check_as(const char *pane, const char *name, int w, int h)
{
    char *got = render(pane, w, h);
    for (const unsigned char *p = (const unsigned char *)got; *p; p++)
        if ((*p < 0x20 && *p != '\n') || *p == 0x7f) {
            fprintf(stderr, "%s %dx%d: control byte 0x%02x on screen\n", pane, w, h, *p);
            fail();
        }
    const char *root = getenv("TDS_SOURCE_ROOT");
    char *path = xasprintf("%s/tests/tui/snapshots/%s-%dx%d.txt", root ? root : ".", name, w, h);
    if (getenv("TDS_UPDATE_SNAPSHOTS")) {
        FILE *f = fopen(path, "w");
        assert_non_null(f);
        fputs(got, f);
        fclose(f);
    } else {
        char *want = read_all(path);
        if (want == NULL) {
            fprintf(stderr, "missing %s (run with TDS_UPDATE_SNAPSHOTS=1)\n", path);
            fail();
        }
        if (strcmp(want, got) != 0) {
            fprintf(stderr, "%s %dx%d differs from %s; got:\n%s\n", pane, w, h, path, got);
            fail();
        }
        free(want);
    }
    free(path);
    free(got);
}

static void check(const char *pane, int w, int h)
{
    check_as(pane, pane, w, h);
}

#define PANE_TESTS(X)                                                                              \
    X(dashboard) X(runs) X(queue) X(dlq) X(alerts) X(events) X(help) X(detail)
#define DEF(name)                                                                                  \
    static void test_##name(void **state)                                                          \
    {                                                                                              \
        (void)state;                                                                               \
        check(#name, 80, 24);                                                                      \
        check(#name, 120, 40);                                                                     \
    }
PANE_TESTS(DEF)

static void test_dlq_groups(void **state)
{
    (void)state;
    check("dlq-groups", 80, 24);
    check("dlq-groups", 120, 40);
}

static void test_too_small(void **state)
{
    (void)state;
    check("queue", 60, 20);
}

/* Every overlay is drawn over every pane at every size: a modal that takes
 * the keys must never be hidden by what a pane draws. */
static void test_overlays(void **state)
{
    (void)state;
    static const char *panes[] = {"dashboard", "runs", "queue", "dlq", "alerts", "events"};
    static const struct {
        const char *name, *marker;
    } overlays[] = {
        {"help", "Help: keys"},
        {"confirm", "Start a stock sync of items (active only, dry run)?"},
        {"sync", "Start a sync"},
        {"prompt", ":sync stock"},
    };
    static const int sizes[][2] = {{80, 24}, {100, 30}, {120, 40}, {200, 60}, {81, 25}};
    for (size_t p = 0; p < TDS_ARRAY_LEN(panes); p++)
        for (size_t o = 0; o < TDS_ARRAY_LEN(overlays); o++)
            for (size_t z = 0; z < TDS_ARRAY_LEN(sizes); z++) {
                char *name = xasprintf("%s+%s", panes[p], overlays[o].name);
                char *got = render(name, sizes[z][0], sizes[z][1]);
                if (strstr(got, overlays[o].marker) == NULL) {
                    fprintf(stderr, "%s at %dx%d: \"%s\" not on screen:\n%s\n", name,
                            sizes[z][0], sizes[z][1], overlays[o].marker, got);
                    fail();
                }
                free(name);
                free(got);
            }
    check("dashboard+confirm", 80, 24);
    check("dashboard+confirm", 120, 40);
    check("runs+sync", 80, 24);
}

/* LANG=C: ASCII glyphs and outside text sanitized to ASCII. */
static void test_ascii(void **state)
{
    (void)state;
    assert_non_null(setlocale(LC_ALL, "C"));
    const char *root = getenv("TDS_SOURCE_ROOT");
    char *path = xasprintf("%s/tests/tui/fixture.txt", root ? root : ".");
    char *err = NULL;
    struct tui_snapshot *utf8 = data;
    data = tui_snapshot_load(path, &err);
    free(path);
    assert_non_null(data);
    static const char *panes[] = {"dashboard", "queue", "dashboard+confirm"};
    for (size_t i = 0; i < TDS_ARRAY_LEN(panes); i++) {
        char *got = render(panes[i], 80, 24);
        for (const unsigned char *p = (const unsigned char *)got; *p; p++)
            if (*p >= 0x80) {
                fprintf(stderr, "%s: non-ASCII byte 0x%02x in ASCII mode:\n%s\n", panes[i], *p,
                        got);
                fail();
            }
        free(got);
    }
    check_as("dashboard", "dashboard-ascii", 80, 24);
    check_as("queue", "queue-ascii", 80, 24);
    tui_snapshot_free(data);
    data = utf8;
    assert_non_null(setlocale(LC_ALL, "C.UTF-8"));
}

/* NO_COLOR and 8-colour terminals, from every theme file. */
static void test_themes(void **state)
{
    (void)state;
    static const char *themes[] = {"default", "mono", "dark", "high-contrast"};
    for (size_t i = 0; i < TDS_ARRAY_LEN(themes); i++) {
        struct role_style st[ROLE_N];
        char *err = NULL;
        if (tui_theme_load(themes[i], st, &err) != 0) {
            fprintf(stderr, "%s\n", err);
            fail();
        }
        struct tui_style out[ROLE_N];
        tui_theme_resolve(st, false, 256, out); /* NO_COLOR */
        for (int r = 0; r < ROLE_N; r++)
            assert_false(out[r].pair);
        assert_true(out[ROLE_SELECTED].attrs & A_REVERSE);
        assert_false(out[ROLE_NORMAL].attrs & A_REVERSE);
        assert_false(out[ROLE_DIM].attrs & A_REVERSE); /* same background as normal text */
        tui_theme_resolve(st, true, 8, out);
        for (int r = 0; r < ROLE_N; r++) {
            assert_true(out[r].pair);
            assert_true(out[r].fg >= -1 && out[r].fg <= 7);
            assert_true(out[r].bg >= -1 && out[r].bg <= 7);
            if (out[r].fg >= 0 && out[r].fg == out[r].bg) {
                fprintf(stderr, "theme %s, role %d: fg = bg = %d on 8 colours\n", themes[i], r,
                        out[r].fg);
                fail();
            }
        }
    }
}

static void test_item_ids(void **state)
{
    (void)state;
    char **ids, why[160];
    size_t n;
    assert_int_equal(tui_parse_item_ids("123, 456,123 789", &ids, &n, why, sizeof why), 0);
    assert_int_equal(n, 3);
    assert_string_equal(ids[0], "123");
    assert_string_equal(ids[2], "789");
    for (size_t i = 0; i < n; i++)
        free(ids[i]);
    free(ids);
    assert_int_equal(tui_parse_item_ids("123,4a5", &ids, &n, why, sizeof why), -1);
    assert_non_null(strstr(why, "\"4a5\" is not digits"));
    assert_null(ids);
    assert_int_equal(tui_parse_item_ids(" , ", &ids, &n, why, sizeof why), -1);
    assert_int_equal(tui_parse_item_ids("-1", &ids, &n, why, sizeof why), -1);
}

/* The run detail: times as "...Z (age ago)", duration in words, rate. */
static void test_run_detail(void **state)
{
    (void)state;
    static const char *names[] = {"id", "run_type", "entity_type", "trigger", "status",
                                  "requested_by", "created", "started", "finished", "now",
                                  "succeeded", "failed", "unchanged", "expected_total", "total",
                                  "api_calls", "cancel_requested", "config"};
    static const char *vals[] = {"42", "stock", "items", "manual", "completed", "root@host",
                                 "1714564500", "1714564502", "1714564622", "1714564800", "1000",
                                 "20", "180", "1200", "1200", "14", "f",
                                 "{\n    \"dry_run\": true\n}"};
    struct tui_rs *rs = tui_rs_new((int)TDS_ARRAY_LEN(names), 1);
    for (size_t c = 0; c < TDS_ARRAY_LEN(names); c++) {
        rs->names[c] = xstrdup(names[c]);
        rs->cell[c] = xstrdup(vals[c]);
    }
    char *text = pane_runs_detail_text(rs, NULL);
    const char *want[] = {"stock sync of items, completed",
                          "requested          2024-05-01 11:55:00Z (5m ago)",
                          "started            2024-05-01 11:55:02Z (4m ago)",
                          "finished           2024-05-01 11:57:02Z (2m ago)",
                          "duration           2 minutes 0 s",
                          "rate               10.0 items/s (600/min)",
                          "progress           1,200 of 1,200 (100%)",
                          "config:\n{\n    \"dry_run\": true\n}"};
    for (size_t i = 0; i < TDS_ARRAY_LEN(want); i++)
        if (strstr(text, want[i]) == NULL) {
            fprintf(stderr, "run detail lacks \"%s\":\n%s\n", want[i], text);
            fail();
        }
    assert_null(strstr(text, "+00"));
    free(text);
    tui_rs_free(rs);
}

int main(void)
{
    setenv("TZ", "UTC", 1);
    if (setlocale(LC_ALL, "C.UTF-8") == NULL) {
        fprintf(stderr, "no C.UTF-8 locale\n");
        return 77;
    }
    const char *root = getenv("TDS_SOURCE_ROOT");
    char *path = xasprintf("%s/tests/tui/fixture.txt", root ? root : ".");
    char *err = NULL;
    data = tui_snapshot_load(path, &err);
    if (data == NULL) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    free(path);
#define REG(name) cmocka_unit_test(test_##name),
    const struct CMUnitTest tests[] = {PANE_TESTS(REG) cmocka_unit_test(test_dlq_groups),
                                       cmocka_unit_test(test_too_small),
                                       cmocka_unit_test(test_overlays),
                                       cmocka_unit_test(test_ascii),
                                       cmocka_unit_test(test_themes),
                                       cmocka_unit_test(test_item_ids),
                                       cmocka_unit_test(test_run_detail)};
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    tui_snapshot_free(data);
    return rc;
}
