/*
 * test_zoho_policy.c: the pure decisions of the Zoho client, table-driven:
 * classification of answers, the backoff schedule with a seeded jitter,
 * Retry-After, the pacing arithmetic of the limiter, Zoho times and
 * page_context parsing (over real-shaped fixtures); utf8_truncate and the
 * outside text of error messages (valid UTF-8, cut on characters).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "zoho_internal.h"

static const struct {
    bool transport_ok;
    long status;
    int code;
    bool body_ok;
    enum zoho_action act;
    enum zoho_err_kind kind;
} classify_rows[] = {
    {true, 200, 0, true, ZA_OK, ZOHO_ERR_NONE},
    {true, 200, -1, true, ZA_OK, ZOHO_ERR_NONE},
    {true, 200, -1, false, ZA_RETRY, ZOHO_ERR_BAD_RESPONSE},   /* HTML, truncated JSON */
    {true, 200, 2, true, ZA_FAIL, ZOHO_ERR_API},               /* code in a 200 */
    {false, 0, -1, false, ZA_RETRY, ZOHO_ERR_NETWORK},         /* reset, timeout */
    {true, 401, 57, true, ZA_REFRESH, ZOHO_ERR_AUTH},
    {true, 401, -1, false, ZA_REFRESH, ZOHO_ERR_AUTH},
    {true, 429, 44, true, ZA_WAIT_MINUTE, ZOHO_ERR_RATE_MINUTE},
    {true, 429, 45, true, ZA_FAIL_DAY, ZOHO_ERR_RATE_DAY},
    {true, 429, 1070, true, ZA_RETRY_SHORT, ZOHO_ERR_RATE_CONCURRENCY},
    {true, 429, -1, false, ZA_RETRY, ZOHO_ERR_RATE_MINUTE},    /* a proxy's 429 */
    {true, 500, 1000, true, ZA_RETRY, ZOHO_ERR_SERVER},
    {true, 502, -1, false, ZA_RETRY, ZOHO_ERR_SERVER},
    {true, 503, -1, false, ZA_RETRY, ZOHO_ERR_SERVER},
    {true, 408, -1, false, ZA_RETRY, ZOHO_ERR_NETWORK},
    {true, 400, 2, true, ZA_FAIL, ZOHO_ERR_API},
    {true, 400, 6041, true, ZA_FAIL, ZOHO_ERR_API},            /* wrong organization */
    {true, 400, 4, true, ZA_FAIL, ZOHO_ERR_API},               /* invalid value: permanent */
    {true, 404, 1002, true, ZA_FAIL, ZOHO_ERR_NOT_FOUND},
    {true, 404, -1, false, ZA_FAIL, ZOHO_ERR_API},             /* not Zoho's 404 */
    {true, 405, -1, true, ZA_FAIL, ZOHO_ERR_API},
    {true, 302, -1, false, ZA_FAIL, ZOHO_ERR_BAD_RESPONSE},
};

static const struct {
    const char *in;
    size_t max;
    const char *out;
    bool cut;
} utf8_rows[] = {
    {"plain", 10, "plain", false},
    {"plain", 3, "pla", true},
    {"", 5, "", false},
    {"\xd8\xb9\xd8\xb9", 3, "\xd8\xb9", true},                    /* not half a character */
    {"ab\xf0\x9f\x93\xa6", 5, "ab", true},                        /* nor a third of an emoji */
    {"ab\xf0\x9f\x93\xa6", 6, "ab\xf0\x9f\x93\xa6", false},
    {"a\xff" "b", 10, "a\xef\xbf\xbd" "b", false},                 /* a stray byte: U+FFFD */
    {"a\xd8", 10, "a\xef\xbf\xbd", false},                        /* cut short */
    {"\xc0\xaf", 10, "\xef\xbf\xbd\xef\xbf\xbd", false},           /* overlong "/" */
    {"\xed\xa0\x80", 10, "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd", false}, /* surrogate */
    {"\xf4\x90\x80\x80", 3, "\xef\xbf\xbd", true},                 /* above U+10FFFF */
    {"a\xff", 3, "a", true},                                     /* no room for U+FFFD */
};

static void test_utf8_truncate(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof utf8_rows / sizeof utf8_rows[0]; i++) {
        bool cut = !utf8_rows[i].cut;
        char *t = utf8_truncate(utf8_rows[i].in, utf8_rows[i].max, &cut);
        if (strcmp(t, utf8_rows[i].out) != 0 || cut != utf8_rows[i].cut)
            fail_msg("row %zu: \"%s\" cut %d", i, t, cut);
        free(t);
    }
    /* The outside text of a Zoho message: cut at 300 bytes on a character
     * boundary (byte 300 is inside the emoji), controls as spaces. */
    struct strbuf sb = {0};
    strbuf_puts(&sb, "Invalid\tvalue: "); /* 15 bytes: the emoji at 297 */
    while (sb.len < 296)
        strbuf_puts(&sb, "\xd8\xb9");
    strbuf_puts(&sb, "\xf0\x9f\x93\xa6 tail");
    assert_int_equal(sb.len, 297 + 4 + 5);
    char *t = zoho_outside_text(sb.buf, 300);
    assert_int_equal(strlen(t), 297 + 3);
    assert_string_equal(t + 297, "...");
    assert_int_equal(strncmp(t, "Invalid value: ", 15), 0);
    free(t);
    strbuf_free(&sb);
}

static void test_classify(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof classify_rows / sizeof classify_rows[0]; i++) {
        enum zoho_err_kind kind = ZOHO_ERR_DB;
        enum zoho_action a = zoho_classify(classify_rows[i].transport_ok, classify_rows[i].status,
                                           classify_rows[i].code, classify_rows[i].body_ok,
                                           &kind);
        if (a != classify_rows[i].act || kind != classify_rows[i].kind)
            fail_msg("row %zu (HTTP %ld code %d): action %d kind %s", i, classify_rows[i].status,
                     classify_rows[i].code, a, zoho_err_kind_name(kind));
    }
}

static void test_backoff_schedule(void **state)
{
    (void)state;
    /* Caps double from the base and stop at the maximum. */
    static const long long caps[] = {500, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000};
    uint64_t rng = 42;
    long long sum[9] = {0};
    for (int round = 0; round < 2000; round++) {
        for (int a = 1; a <= 9; a++) {
            long long ms = zoho_backoff_ms(a, 500, 30000, &rng);
            assert_true(ms >= 0);
            assert_true(ms <= caps[a - 1]);
            sum[a - 1] += ms;
        }
    }
    /* Full jitter: the mean is about half the cap. */
    for (int a = 0; a < 9; a++) {
        double mean = (double)sum[a] / 2000.0;
        assert_true(mean > caps[a] * 0.4 && mean < caps[a] * 0.6);
    }
    /* Seeded: the same seed gives the same schedule. */
    uint64_t r1 = 7, r2 = 7;
    for (int a = 1; a <= 6; a++)
        assert_int_equal(zoho_backoff_ms(a, 500, 30000, &r1), zoho_backoff_ms(a, 500, 30000, &r2));
    uint64_t r3 = 7;
    long long first[6];
    for (int a = 1; a <= 6; a++)
        first[a - 1] = zoho_backoff_ms(a, 500, 30000, &r3);
    uint64_t r4 = 7;
    for (int a = 1; a <= 6; a++)
        assert_int_equal(first[a - 1], zoho_backoff_ms(a, 500, 30000, &r4));
    /* Degenerate inputs. */
    assert_int_equal(zoho_backoff_ms(1, 0, 0, &rng), 0);
    assert_true(zoho_backoff_ms(0, 100, 1000, &rng) <= 100);
    assert_true(zoho_backoff_ms(100, 100, 1000, &rng) <= 1000);
}

static void test_retry_after(void **state)
{
    (void)state;
    long long now = 1700000000000LL; /* 2023-11-14T22:13:20Z */
    assert_int_equal(zoho_parse_retry_after("3", now), 3000);
    assert_int_equal(zoho_parse_retry_after("0", now), 0);
    assert_int_equal(zoho_parse_retry_after("", now), -1);
    assert_int_equal(zoho_parse_retry_after(NULL, now), -1);
    assert_int_equal(zoho_parse_retry_after("soon", now), -1);
    assert_int_equal(zoho_parse_retry_after("-4", now), -1);
    assert_int_equal(zoho_parse_retry_after("Tue, 14 Nov 2023 22:13:30 GMT", now), 10000);
    assert_int_equal(zoho_parse_retry_after("Tue, 14 Nov 2023 22:00:00 GMT", now), 0);
}

static void test_rate_arithmetic(void **state)
{
    (void)state;
    static const struct {
        int per_minute, headroom;
        long long interval_us;
        int slice;
    } rows[] = {
        {100, 100, 600000, 1},  {100, 98, 612245, 1},   {1200, 100, 50000, 5},
        {1200, 98, 51021, 5},   {10000, 100, 6000, 10}, {1, 100, 60000000, 1},
        {240, 50, 500000, 1},   {0, 100, 60000000, 1},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        assert_int_equal(zoho_rate_interval_us(rows[i].per_minute, rows[i].headroom),
                         rows[i].interval_us);
        assert_int_equal(zoho_rate_slice(rows[i].per_minute), rows[i].slice);
    }
    /* 98% of 1,200 per minute: 1,176 slots in 60 s, never more. */
    long long iv = zoho_rate_interval_us(1200, 98);
    assert_true(60000000 / iv <= 1176);
    assert_true(60000000 / iv >= 1175);

    static const struct {
        int conc, live, share;
    } shares[] = {{10, 1, 10}, {10, 3, 3}, {10, 10, 1}, {10, 20, 1}, {5, 2, 2}, {10, 0, 10}};
    for (size_t i = 0; i < sizeof shares / sizeof shares[0]; i++)
        assert_int_equal(zoho_rate_share(shares[i].conc, shares[i].live), shares[i].share);
}

static void test_pacer(void **state)
{
    (void)state;
    /* Three engines reserving slices from one pacer: slots never closer
     * than the interval, and no burst after an idle period. */
    long long tat = 0, iv = 50000;
    long long t = zoho_pace_reserve(&tat, 1000000, iv, 5);
    assert_int_equal(t, 1000000);
    assert_int_equal(tat, 1250000);
    t = zoho_pace_reserve(&tat, 1000100, iv, 5); /* another engine, right after */
    assert_int_equal(t, 1250000);
    assert_int_equal(tat, 1500000);
    t = zoho_pace_reserve(&tat, 9000000, iv, 5); /* after an idle time: from now */
    assert_int_equal(t, 9000000);
    assert_int_equal(tat, 9250000);

    /* Simulate a minute of greedy reservations: at most limit*headroom. */
    long long piv = zoho_rate_interval_us(1200, 98);
    long long ptat = 0, now = 0;
    int n = 0;
    while (now < 60000000) {
        long long first = zoho_pace_reserve(&ptat, now, piv, 5);
        for (int k = 0; k < 5; k++) {
            long long slot = first + k * piv;
            if (slot < 60000000)
                n++;
        }
        now = ptat; /* ask again when the slice is spent */
    }
    assert_true(n <= 1176);
    assert_true(n >= 1170);
}

static void test_time_parse(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        bool ok;
        long long t;
    } rows[] = {
        {"2013-08-05T12:06:10+0530", true, 1375684570},
        {"2013-08-05T06:36:10Z", true, 1375684570},
        {"2013-08-05T12:06:10+05:30", true, 1375684570},
        {"2013-08-05T06:36:10", true, 1375684570},
        {"2013-08-05 12:06:10+0530", true, 1375684570},
        {"2025-01-01T00:00:00-0800", true, 1735718400},
        {"2013-08-05T06:36:10.123Z", true, 1375684570},
        {"2013-08-05", false, 0},
        {"", false, 0},
        {"2013-13-05T06:36:10Z", false, 0},
        {"2013-08-05T06:36:10+05", false, 0},
        {"2013-08-05T06:36:10Zjunk", false, 0},
        {"yesterday at noon, roughly", false, 0},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        long long t = 0;
        bool ok = zoho_time_parse(rows[i].in, &t);
        if (ok != rows[i].ok || (ok && t != rows[i].t))
            fail_msg("row %zu \"%s\": ok %d t %lld", i, rows[i].in, ok, t);
    }
}

static char *slurp(const char *rel)
{
    const char *root = getenv("TDS_SOURCE_ROOT");
    char path[1024];
    snprintf(path, sizeof path, "%s/tests/fixtures/zoho/%s", root ? root : ".", rel);
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        fail_msg("cannot open %s", path);
    struct strbuf sb = {0};
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0)
        strbuf_append(&sb, buf, n);
    fclose(f);
    return strbuf_detach(&sb);
}

static void test_page_context(void **state)
{
    (void)state;
    static const struct {
        const char *file;
        bool present;
        int page, per_page;
        bool has_more, has_more_present;
        int records;
    } rows[] = {
        {"items_page1.json", true, 1, 200, true, true, 3},
        {"items_last_page.json", true, 4, 200, false, true, 2},
        {"contacts_strings.json", true, 2, 25, true, true, 1},
        {"no_page_context.json", false, 0, 0, false, false, 1},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        char *text = slurp(rows[i].file);
        cJSON *doc = cJSON_Parse(text);
        assert_non_null(doc);
        struct zoho_page_ctx pc;
        zoho_page_ctx_parse(doc, &pc);
        assert_int_equal(pc.present, rows[i].present);
        assert_int_equal(pc.page, rows[i].page);
        assert_int_equal(pc.per_page, rows[i].per_page);
        assert_int_equal(pc.has_more, rows[i].has_more);
        assert_int_equal(pc.has_more_present, rows[i].has_more_present);
        const cJSON *arr = doc->child;
        while (arr && !cJSON_IsArray(arr))
            arr = arr->next;
        assert_int_equal(cJSON_GetArraySize(arr), rows[i].records);
        cJSON_Delete(doc);
        free(text);
    }
}

static void test_err_names(void **state)
{
    (void)state;
    assert_string_equal(zoho_err_kind_name(ZOHO_ERR_AUTH), "auth");
    assert_string_equal(zoho_err_kind_name(ZOHO_ERR_RATE_DAY), "rate_day");
    assert_string_equal(zoho_err_kind_name(ZOHO_ERR_PAGING), "paging");
    struct zoho_error e = {0};
    zoho_error_set(&e, ZOHO_ERR_API, 400, 2, "GET /items", 3, "HTTP 400 code 2: %s",
                   "Invalid value passed for filter_by");
    char *s = zoho_error_format(&e);
    assert_string_equal(s, "GET /items page 3: HTTP 400 code 2: Invalid value passed for filter_by");
    free(s);
    /* Secrets never survive into a message. */
    zoho_error_set(&e, ZOHO_ERR_TOKEN, 0, -1, NULL, 0, "sent Zoho-oauthtoken %s",
                   "1000.deadbeef.cafe");
    assert_null(strstr(e.message, "deadbeef"));
    zoho_error_clear(&e);
    zoho_error_clear(&e);
}

static void test_url_encode(void **state)
{
    (void)state;
    struct strbuf sb = {0};
    zoho_url_encode(&sb, "2025-11-05T12:06:10+0530");
    assert_string_equal(sb.buf, "2025-11-05T12%3A06%3A10%2B0530");
    strbuf_reset(&sb);
    zoho_url_encode(&sb, "a b&c=d/é");
    assert_string_equal(sb.buf, "a%20b%26c%3Dd%2F%C3%A9");
    strbuf_free(&sb);
    assert_true(zoho_http_is_json("application/json;charset=UTF-8"));
    assert_true(zoho_http_is_json("application/json"));
    assert_true(zoho_http_is_json("Application/JSON; charset=utf-8"));
    assert_false(zoho_http_is_json("text/html"));
    assert_false(zoho_http_is_json("application/jsonp"));
    assert_false(zoho_http_is_json(""));
}

/* expires_in in seconds or, from older endpoints, milliseconds (issue 17
 * point 7: 3600000 read as seconds cached a token for 41 days). */
static void test_token_ttl(void **s)
{
    (void)s;
    static const struct {
        const char *body;
        long long want;
    } cases[] = {
        {"{\"expires_in\": 3600}", 3600},
        {"{\"expires_in\": 3600000, \"expires_in_sec\": 3600}", 3600},
        {"{\"expires_in\": 3600000}", 3600},
        {"{\"expires_in\": \"3599\"}", 3599},
        {"{\"expires_in_sec\": 30}", 30},
        {"{\"expires_in\": 999999999999}", 86400},
        {"{\"expires_in\": -5}", 3600},
        {"{\"expires_in\": \"soon\"}", 3600},
        {"{}", 3600},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cJSON *d = cJSON_Parse(cases[i].body);
        assert_non_null(d);
        if (zoho_token_ttl_s(d) != cases[i].want)
            fail_msg("%s: %lld, want %lld", cases[i].body, zoho_token_ttl_s(d), cases[i].want);
        cJSON_Delete(d);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_classify),     cmocka_unit_test(test_backoff_schedule),
        cmocka_unit_test(test_retry_after),  cmocka_unit_test(test_rate_arithmetic),
        cmocka_unit_test(test_pacer),        cmocka_unit_test(test_time_parse),
        cmocka_unit_test(test_page_context), cmocka_unit_test(test_err_names),
        cmocka_unit_test(test_url_encode),   cmocka_unit_test(test_utf8_truncate),
        cmocka_unit_test(test_token_ttl),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
