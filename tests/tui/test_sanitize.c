/*
 * test_sanitize.c: the sanitizer, table-driven: C0, DEL, C1, ESC sequences
 * of every kind, bidi overrides and invalid UTF-8 never pass, and each shows
 * visibly (\x1b, <U+202E>); ordinary text, including wide characters,
 * passes unchanged; sanitize_json keeps JSON valid and terminal-safe.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "tds/sanitize.h"

static const struct {
    const char *in;
    size_t len; /* 0: strlen */
    unsigned flags;
    const char *out;
} cases[] = {
    {"plain text", 0, 0, "plain text"},
    {"caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac", 0, 0, "caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac"},
    {"a\tb", 0, 0, "a\\tb"},
    {"line1\nline2", 0, 0, "line1\\nline2"},
    {"a\tb", 0, SANITIZE_MULTILINE, "a b"},
    {"line1\r\nline2", 0, SANITIZE_MULTILINE, "line1\nline2"},
    {"a\rb", 0, SANITIZE_MULTILINE, "a\\rb"},
    {"\x1b[31mred\x1b[0m", 0, 0, "\\x1b[31mred\\x1b[0m"},
    {"\x1b[2J" "\x1b[H", 0, 0, "\\x1b[2J\\x1b[H"},
    {"\x1b]52;c;aGk=\x07" "after", 0, 0, "\\x1b]52;c;aGk=\\x07after"},
    {"\x1b]8;;http://x\x1b\\link", 0, 0, "\\x1b]8;;http://x\\x1b\\link"},
    {"esc at end\x1b", 0, 0, "esc at end\\x1b"},
    {"del\x7f", 0, 0, "del\\x7f"},
    {"nul\0after", 9, 0, "nul\\x00after"},
    {"c1 csi \xc2\x9b" "31mX", 0, 0, "c1 csi <U+009B>31mX"},
    {"c1 nel \xc2\x85.", 0, 0, "c1 nel <U+0085>."},
    {"raw c1 byte \x9b" "2J", 0, 0, "raw c1 byte \\x9b2J"},
    {"bidi \xe2\x80\xae" "evil", 0, 0, "bidi <U+202E>evil"},
    {"embed \xe2\x80\xaa.\xe2\x80\xac", 0, 0, "embed <U+202A>.<U+202C>"},
    {"isolate \xe2\x81\xa6x\xe2\x81\xa9", 0, 0, "isolate <U+2066>x<U+2069>"},
    {"sep \xe2\x80\xa8.", 0, 0, "sep <U+2028>."},
    {"overlong \xc0\xaf", 0, 0, "overlong \\xc0\\xaf"},
    {"surrogate \xed\xa0\x80", 0, 0, "surrogate \\xed\\xa0\\x80"},
    {"truncated \xe6\x97", 0, 0, "truncated \\xe6\\x97"},
    {"too big \xf4\x90\x80\x80", 0, 0, "too big \\xf4\\x90\\x80\\x80"},
    {"ascii caf\xc3\xa9", 0, SANITIZE_ASCII, "ascii caf?"},
    {"ascii \x1b\xc2\x9b\xe2\x80\xae", 0, SANITIZE_ASCII, "ascii \\x1b<U+009B><U+202E>"},
    /* Already sanitized text passes unchanged (idempotent). */
    {"\\x1b[2J <U+202E> \\t", 0, 0, "\\x1b[2J <U+202E> \\t"},
};

static void test_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t len = cases[i].len ? cases[i].len : strlen(cases[i].in);
        char *got = sanitize_text(cases[i].in, len, cases[i].flags);
        if (strcmp(got, cases[i].out) != 0)
            fail_msg("case %zu: got \"%s\", want \"%s\"", i, got, cases[i].out);
        free(got);
    }
}

static void test_never_control(void **state)
{
    (void)state;
    unsigned seed = 42;
    char buf[256];
    for (int round = 0; round < 20000; round++) {
        size_t len = (size_t)(rand_r(&seed) % 64);
        for (size_t i = 0; i < len; i++)
            buf[i] = (char)(rand_r(&seed) % 4 == 0 ? 0x1b : rand_r(&seed) % 256);
        char *got = sanitize_text(buf, len, 0);
        for (const unsigned char *p = (const unsigned char *)got; *p; p++) {
            assert_true(*p >= 0x20 && *p != 0x7f);
            if (p[0] == 0xc2)
                assert_false(p[1] >= 0x80 && p[1] <= 0x9f);
        }
        assert_true(sanitize_is_clean(got, 0));
        free(got);
    }
}

static const struct {
    const char *in, *out;
} json_cases[] = {
    {"{\"a\": \"plain\"}", "{\"a\": \"plain\"}"},
    {"[\"\xc2\x9b" "2J\"]", "[\"\\u009b2J\"]"},
    {"[\"\x9b\xff\"]", "[\"\\ufffd\\ufffd\"]"},
    {"[\"\xe2\x80\xae" "x\xe2\x81\xa6\"]", "[\"\\u202ex\\u2066\"]"},
    {"[\"del\x7f\"]", "[\"del\\u007f\"]"},
    {"{\n\t\"k\": \"caf\xc3\xa9\"\n}", "{\n\t\"k\": \"caf\xc3\xa9\"\n}"},
};

static void test_json(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof json_cases / sizeof json_cases[0]; i++) {
        char *got = sanitize_json(json_cases[i].in);
        if (strcmp(got, json_cases[i].out) != 0)
            fail_msg("json case %zu: got \"%s\", want \"%s\"", i, got, json_cases[i].out);
        free(got);
    }
    char *e = sanitize_json(NULL);
    assert_string_equal(e, "");
    free(e);
}

static void test_null(void **state)
{
    (void)state;
    char *s = sanitize_str(NULL, 0);
    assert_string_equal(s, "");
    free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_never_control),
        cmocka_unit_test(test_json),
        cmocka_unit_test(test_null),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
