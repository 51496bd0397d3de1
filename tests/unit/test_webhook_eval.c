/*
 * test_webhook_eval.c: webhook_evaluate, table-driven: every answer the
 * intake gives without touching the database (route, method, size, secret,
 * signature, content type, JSON and form payloads, entity, id), UTF-8
 * validation and the signature check.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "tds/http.h"
#include "tds/sha256.h"

#define SECRET "s3cretTokenABC123"
#define HKEY "hmacKey0123456789"

static char *sign(const char *key, const char *body, size_t n)
{
    unsigned char mac[SHA256_DIGEST_LEN];
    static char hex[SHA256_HEX_LEN + 1];
    hmac_sha256(key, strlen(key), body, n, mac);
    sha256_hex(mac, sizeof mac, hex);
    return hex;
}

struct tcase {
    const char *name;
    const char *method, *path, *ctype, *secret_h, *secret_q, *body;
    int sig;            /* 0 none, 1 good, 2 wrong length, 3 wrong value, 4 upper case good */
    int status;
    const char *entity, *id, *lmt;
    const char *error_substr;
};

static const struct tcase cases[] = {
    {"json item by path", "POST", "/webhooks/zoho/items", "application/json", SECRET, NULL,
     "{\"item\":{\"item_id\":\"42\",\"name\":\"Bolt\",\"last_modified_time\":\"2025-01-01T10:00:00+0530\"}}",
     1, 202, "items", "42", "2025-01-01T10:00:00+0530", NULL},
    {"singular path", "POST", "/webhooks/zoho/item", "application/json; charset=UTF-8", SECRET,
     NULL, "{\"item\":{\"item_id\":43}}", 1, 202, "items", "43", NULL, NULL},
    {"flat record by path", "POST", "/webhooks/zoho/contacts", "application/json", SECRET, NULL,
     "{\"contact_id\":\"7\",\"contact_name\":\"A\"}", 1, 202, "contacts", "7", NULL, NULL},
    {"top key route", "POST", "/webhooks/zoho", "application/json", SECRET, NULL,
     "{\"invoice\":{\"invoice_id\":\"99\"}}", 1, 202, "invoices", "99", NULL, NULL},
    {"secret in query", "POST", "/webhooks/zoho", "application/json", NULL, SECRET,
     "{\"item\":{\"item_id\":\"1\"}}", 1, 202, "items", "1", NULL, NULL},
    {"form fields", "POST", "/webhooks/zoho/items", "application/x-www-form-urlencoded", SECRET,
     NULL, "item_id=55&name=Bolt+M8%20x&last_modified_time=2025-01-01T10%3A00%3A00%2B0530", 1,
     202, "items", "55", "2025-01-01T10:00:00+0530", NULL},
    {"form fields, entity from id field", "POST", "/webhooks/zoho",
     "application/x-www-form-urlencoded", SECRET, NULL, "salesorder_id=12&x=1", 1, 202,
     "salesorders", "12", NULL, NULL},
    {"form JSONString", "POST", "/webhooks/zoho", "application/x-www-form-urlencoded", SECRET,
     NULL, "JSONString=%7B%22item%22%3A%7B%22item_id%22%3A%2277%22%7D%7D", 1, 202, "items", "77",
     NULL, NULL},
    {"upper-case hex signature", "POST", "/webhooks/zoho/items", "application/json", SECRET, NULL,
     "{\"item_id\":\"5\"}", 4, 202, "items", "5", NULL, NULL},

    {"unknown path", "POST", "/webhooks/other", "application/json", SECRET, NULL, "{}", 1, 404,
     NULL, NULL, NULL, "no such path"},
    {"path too deep", "POST", "/webhooks/zoho/items/1", "application/json", SECRET, NULL, "{}", 1,
     404, NULL, NULL, NULL, "no such path"},
    {"GET", "GET", "/webhooks/zoho/items", NULL, SECRET, NULL, "", 1, 405, NULL, NULL, NULL,
     "POST"},
    {"PUT", "PUT", "/webhooks/zoho", "application/json", SECRET, NULL, "{}", 1, 405, NULL, NULL,
     NULL, NULL},
    {"missing secret", "POST", "/webhooks/zoho/items", "application/json", NULL, NULL,
     "{\"item_id\":\"1\"}", 1, 401, NULL, NULL, NULL, "missing webhook secret"},
    {"secret in wrong case", "POST", "/webhooks/zoho/items", "application/json",
     "S3CRETTOKENABC123", NULL, "{\"item_id\":\"1\"}", 1, 401, NULL, NULL, NULL, "bad webhook secret"},
    {"secret prefix", "POST", "/webhooks/zoho/items", "application/json", "s3cretToken", NULL,
     "{\"item_id\":\"1\"}", 1, 401, NULL, NULL, NULL, "bad webhook secret"},
    {"missing signature", "POST", "/webhooks/zoho/items", "application/json", SECRET, NULL,
     "{\"item_id\":\"1\"}", 0, 401, NULL, NULL, NULL, "missing signature"},
    {"signature of wrong length", "POST", "/webhooks/zoho/items", "application/json", SECRET, NULL,
     "{\"item_id\":\"1\"}", 2, 401, NULL, NULL, NULL, "bad signature"},
    {"wrong signature", "POST", "/webhooks/zoho/items", "application/json", SECRET, NULL,
     "{\"item_id\":\"1\"}", 3, 401, NULL, NULL, NULL, "bad signature"},
    {"text/plain", "POST", "/webhooks/zoho/items", "text/plain", SECRET, NULL, "{\"item_id\":\"1\"}",
     1, 415, NULL, NULL, NULL, "content type"},
    {"no content type", "POST", "/webhooks/zoho/items", NULL, SECRET, NULL, "{\"item_id\":\"1\"}",
     1, 415, NULL, NULL, NULL, NULL},
    {"unknown entity in path", "POST", "/webhooks/zoho/widgets", "application/json", SECRET, NULL,
     "{\"widget_id\":\"1\"}", 1, 404, NULL, NULL, NULL, "unknown entity \"widgets\""},
    {"unknown top key", "POST", "/webhooks/zoho", "application/json", SECRET, NULL,
     "{\"widget\":{\"widget_id\":\"1\"}}", 1, 404, NULL, NULL, NULL, "unknown entity"},
    {"empty body", "POST", "/webhooks/zoho/items", "application/json", SECRET, NULL, "", 1, 400,
     NULL, NULL, NULL, "empty body"},
    {"bad json", "POST", "/webhooks/zoho/items", "application/json", SECRET, NULL, "{\"item\":", 1,
     400, NULL, NULL, NULL, "not valid JSON"},
    {"json array", "POST", "/webhooks/zoho/items", "application/json", SECRET, NULL, "[1,2]", 1,
     400, NULL, NULL, NULL, "not a JSON object"},
    {"missing id", "POST", "/webhooks/zoho/items", "application/json", SECRET, NULL,
     "{\"item\":{\"name\":\"x\"}}", 1, 400, "items", NULL, NULL, "record has no item_id"},
    {"empty id", "POST", "/webhooks/zoho/items", "application/json", SECRET, NULL,
     "{\"item\":{\"item_id\":\"\"}}", 1, 400, "items", NULL, NULL, "record has no item_id"},
    {"invalid UTF-8", "POST", "/webhooks/zoho/items", "application/json", SECRET, NULL,
     "{\"item\":{\"item_id\":\"1\",\"name\":\"\xff\xfe\"}}", 1, 400, NULL, NULL, NULL, "UTF-8"},
    {"form bad escape", "POST", "/webhooks/zoho/items", "application/x-www-form-urlencoded", SECRET,
     NULL, "item_id=1%zz", 1, 400, NULL, NULL, NULL, "escape"},
    {"form NUL", "POST", "/webhooks/zoho/items", "application/x-www-form-urlencoded", SECRET, NULL,
     "item_id=1%00", 1, 400, NULL, NULL, NULL, "UTF-8"},
    {"form no id", "POST", "/webhooks/zoho/items", "application/x-www-form-urlencoded", SECRET, NULL,
     "name=x", 1, 400, NULL, NULL, NULL, "record has no item_id"},
};

static void run_case(const struct tcase *t, struct webhook_verdict *v)
{
    struct webhook_auth auth = {.secret = SECRET, .hmac_secret = HKEY};
    size_t blen = strlen(t->body);
    char sig[200] = "";
    if (t->sig == 1)
        snprintf(sig, sizeof sig, "%s", sign(HKEY, t->body, blen));
    else if (t->sig == 2)
        snprintf(sig, sizeof sig, "%.63s", sign(HKEY, t->body, blen));
    else if (t->sig == 3)
        snprintf(sig, sizeof sig, "%s", sign("otherkey", t->body, blen));
    else if (t->sig == 4) {
        snprintf(sig, sizeof sig, "sha256=%s", sign(HKEY, t->body, blen));
        for (char *p = sig + 7; *p; p++)
            if (*p >= 'a' && *p <= 'f')
                *p = (char)(*p - 'a' + 'A');
    }
    struct webhook_request rq = {
        .method = t->method,
        .path = t->path,
        .content_type = t->ctype,
        .secret_header = t->secret_h,
        .secret_query = t->secret_q,
        .signature = t->sig ? sig : NULL,
        .body = (const unsigned char *)t->body,
        .body_len = blen,
    };
    webhook_evaluate(&auth, &rq, v);
}

static void test_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const struct tcase *t = &cases[i];
        struct webhook_verdict v;
        run_case(t, &v);
        if (v.http_status != t->status)
            fail_msg("%s: status %d, want %d (%s)", t->name, v.http_status, t->status,
                     v.error ? v.error : "");
        if (t->status == 202) {
            assert_null(v.error);
            assert_non_null(v.hint);
        } else {
            assert_non_null(v.error);
        }
        if (t->entity && t->status == 202)
            assert_string_equal(v.entity->name, t->entity);
        if (t->id)
            assert_string_equal(v.zoho_id, t->id);
        if (t->lmt)
            assert_string_equal(v.last_modified_time, t->lmt);
        if (t->error_substr && strstr(v.error, t->error_substr) == NULL)
            fail_msg("%s: error \"%s\" lacks \"%s\"", t->name, v.error, t->error_substr);
        webhook_verdict_free(&v);
    }
}

static void test_size_limits(void **state)
{
    (void)state;
    struct webhook_auth auth = {.secret = SECRET};
    /* Exactly 1 MiB of valid JSON: accepted. */
    size_t n = WEBHOOK_MAX_BODY;
    char *body = malloc(n);
    const char *head = "{\"item\":{\"item_id\":\"9\",\"pad\":\"";
    memset(body, 'a', n);
    memcpy(body, head, strlen(head));
    memcpy(body + n - 4, "\"}}\n", 4);
    struct webhook_request rq = {.method = "POST", .path = "/webhooks/zoho/items",
                                 .content_type = "application/json", .secret_header = SECRET,
                                 .body = (unsigned char *)body, .body_len = n};
    struct webhook_verdict v;
    webhook_evaluate(&auth, &rq, &v);
    assert_int_equal(v.http_status, 202);
    webhook_verdict_free(&v);
    /* One byte more: 413 (even before authentication). */
    rq.too_large = true;
    rq.secret_header = NULL;
    webhook_evaluate(&auth, &rq, &v);
    assert_int_equal(v.http_status, 413);
    webhook_verdict_free(&v);
    free(body);
}

static void test_json_bomb(void **state)
{
    (void)state;
    struct webhook_auth auth = {.secret = SECRET};
    size_t depth = 100000;
    char *body = malloc(depth * 2 + 32);
    size_t o = 0;
    o += (size_t)sprintf(body, "{\"item\":");
    for (size_t i = 0; i < depth; i++)
        body[o++] = '[';
    for (size_t i = 0; i < depth; i++)
        body[o++] = ']';
    body[o++] = '}';
    struct webhook_request rq = {.method = "POST", .path = "/webhooks/zoho/items",
                                 .content_type = "application/json", .secret_header = SECRET,
                                 .body = (unsigned char *)body, .body_len = o};
    struct webhook_verdict v;
    webhook_evaluate(&auth, &rq, &v);
    assert_int_equal(v.http_status, 400);
    webhook_verdict_free(&v);
    free(body);
}

static void test_open_auth(void **state)
{
    (void)state;
    /* No secret configured (loopback only, enforced by the listener): accepted. */
    struct webhook_auth auth = {0};
    const char *b = "{\"item\":{\"item_id\":\"1\"}}";
    struct webhook_request rq = {.method = "POST", .path = "/webhooks/zoho",
                                 .content_type = "application/json",
                                 .body = (const unsigned char *)b, .body_len = strlen(b)};
    struct webhook_verdict v;
    webhook_evaluate(&auth, &rq, &v);
    assert_int_equal(v.http_status, 202);
    webhook_verdict_free(&v);
}

static void test_utf8(void **state)
{
    (void)state;
    struct {
        const char *s;
        bool ok;
    } t[] = {
        {"plain", true},         {"\xc3\xa9t\xc3\xa9", true}, {"\xe2\x82\xac", true},
        {"\xf0\x9f\x98\x80", true}, {"\xc0\xaf", false},      {"\xe0\x80\xaf", false},
        {"\xed\xa0\x80", false},  {"\xf4\x90\x80\x80", false}, {"\xc3", false},
        {"\xff", false},          {"\x80", false},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
        if (webhook_utf8_valid((const unsigned char *)t[i].s, strlen(t[i].s)) != t[i].ok)
            fail_msg("case %zu", i);
    assert_false(webhook_utf8_valid((const unsigned char *)"a\0b", 3));
}

static void test_secret_headers(void **state)
{
    (void)state;
    assert_true(webhook_header_is_secret("x-tds-webhook-secret"));
    assert_true(webhook_header_is_secret("X-Zoho-Webhook-Signature"));
    assert_true(webhook_header_is_secret("authorization"));
    assert_false(webhook_header_is_secret("Content-Type"));
}

/* Random mutations of valid JSON and form bodies: any verdict is fine, a
 * crash or a sanitizer report is not; a 202 always carries an id. */
static void test_mutations(void **state)
{
    (void)state;
    static const char *const seeds[] = {
        "{\"item\":{\"item_id\":\"42\",\"name\":\"B\\u00e9\",\"rate\":1.5,"
        "\"last_modified_time\":\"2025-01-01T10:00:00+0530\",\"tags\":[1,{\"a\":null}]}}",
        "item_id=55&name=Bolt+M8%20x&JSONString=%7B%22item%22%3A%7B%22item_id%22%3A1%7D%7D",
    };
    static const char *const ctypes[] = {"application/json", "application/x-www-form-urlencoded"};
    struct webhook_auth auth = {0};
    unsigned seed = 12345;
    unsigned char buf[512];
    for (int iter = 0; iter < 20000; iter++) {
        int k = iter & 1;
        size_t n = strlen(seeds[k]);
        memcpy(buf, seeds[k], n);
        int edits = 1 + rand_r(&seed) % 4;
        for (int e = 0; e < edits; e++) {
            size_t at = (size_t)rand_r(&seed) % n;
            switch (rand_r(&seed) % 3) {
            case 0:
                buf[at] = (unsigned char)rand_r(&seed);
                break;
            case 1:
                if (n > 1) {
                    memmove(buf + at, buf + at + 1, n - at - 1);
                    n--;
                }
                break;
            default:
                if (n < sizeof buf - 1) {
                    memmove(buf + at + 1, buf + at, n - at);
                    buf[at] = "{}[]\":,%&=\\"[rand_r(&seed) % 11];
                    n++;
                }
            }
        }
        struct webhook_request rq = {.method = "POST",
                                     .path = k ? "/webhooks/zoho" : "/webhooks/zoho/items",
                                     .content_type = ctypes[k],
                                     .body = buf,
                                     .body_len = n};
        struct webhook_verdict v;
        webhook_evaluate(&auth, &rq, &v);
        if (v.http_status == 202) {
            assert_non_null(v.zoho_id);
            assert_non_null(v.entity);
            assert_true(webhook_utf8_valid((const unsigned char *)v.hint, strlen(v.hint)));
        } else {
            assert_non_null(v.error);
        }
        webhook_verdict_free(&v);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),      cmocka_unit_test(test_size_limits),
        cmocka_unit_test(test_json_bomb),  cmocka_unit_test(test_open_auth),
        cmocka_unit_test(test_utf8),       cmocka_unit_test(test_secret_headers),
        cmocka_unit_test(test_mutations),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
