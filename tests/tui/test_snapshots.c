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

static void check(const char *pane, int w, int h)
{
    char *got = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&got, &len);
    assert_int_equal(tui_render_snapshot(pane, w, h, data, NOW, mem), 0);
    fclose(mem);
    for (const unsigned char *p = (const unsigned char *)got; *p; p++)
        if ((*p < 0x20 && *p != '\n') || *p == 0x7f) {
            fprintf(stderr, "%s %dx%d: control byte 0x%02x on screen\n", pane, w, h, *p);
            fail();
        }
    const char *root = getenv("TDS_SOURCE_ROOT");
    char *path = xasprintf("%s/tests/tui/snapshots/%s-%dx%d.txt", root ? root : ".", pane, w, h);
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
                                       cmocka_unit_test(test_too_small)};
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    tui_snapshot_free(data);
    return rc;
}
