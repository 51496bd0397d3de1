/*
 * test_util.c: the one strict number and id parser (str_to_ll_in,
 * str_to_id) that every id of the CLI goes through, table-driven: what it
 * reads and everything it must refuse, an embedded NUL included (an HTTP
 * or console path can carry one where argv cannot).
 */
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "tds/util.h"

static void test_id_ok(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        long long v;
    } ok[] = {
        {"1", 1}, {"9", 9}, {"42", 42}, {"007", 7}, {"9223372036854775807", LLONG_MAX},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        long long v = -5;
        assert_true(str_to_id(ok[i].s, strlen(ok[i].s), &v));
        assert_int_equal(v, ok[i].v);
    }
}

static void test_id_refused(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",
        " 9",
        "9 ",
        "\t9",
        "9\n",
        "+9",
        "-1",
        "-0",
        "0",
        "00",
        "9x",
        "x9",
        "0x10",
        "1e3",
        "1.0",
        "1,000",
        "9223372036854775808",
        "99999999999999999999999",
        "-",
        "--1",
        "\xd9\xa3", /* ARABIC-INDIC DIGIT THREE */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        long long v = -5;
        assert_false(str_to_id(bad[i], strlen(bad[i]), &v));
        assert_int_equal(v, -5); /* untouched */
    }
    long long v = -5;
    assert_false(str_to_id(NULL, 0, &v));
    /* "9\0x": the NUL ends a C string early; the length says otherwise. */
    assert_false(str_to_id("9\0x", 3, &v));
    assert_false(str_to_id("9\0", 2, &v));
    /* A length that stops short of the string's end is refused too. */
    assert_false(str_to_id("91", 1, &v));
    assert_int_equal(v, -5);
}

static void test_range(void **state)
{
    (void)state;
    long long v = 0;
    assert_true(str_to_ll_in("100000", 6, 1, 100000, &v));
    assert_int_equal(v, 100000);
    assert_false(str_to_ll_in("100001", 6, 1, 100000, &v));
    assert_false(str_to_ll_in("0", 1, 1, 100000, &v));
    assert_true(str_to_ll_in("-3", 2, -5, 5, &v));
    assert_int_equal(v, -3);
    assert_false(str_to_ll_in("-6", 2, -5, 5, &v));
    assert_false(str_to_ll_in("+3", 2, -5, 5, &v));
    assert_false(str_to_ll_in("- 3", 3, -5, 5, &v));
    assert_true(str_to_ll_in("-9223372036854775808", 20, LLONG_MIN, LLONG_MAX, &v));
    assert_true(v == LLONG_MIN);
    assert_false(str_to_ll_in("-9223372036854775809", 20, LLONG_MIN, LLONG_MAX, &v));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_id_ok),
        cmocka_unit_test(test_id_refused),
        cmocka_unit_test(test_range),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
