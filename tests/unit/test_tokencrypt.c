/*
 * test_tokencrypt.c: the access token at rest (issue 18 point 7): sealed and
 * opened with AES-256-GCM, never stored in plaintext, refused when altered,
 * sealed with another key or for another client; the key from zoho.token_key
 * or derived from the client secret; api_domain only one of Zoho's hosts or
 * a configured base URL.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "tds/tokencrypt.h"

static void test_seal_open(void **s)
{
    (void)s;
    struct tds_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.zoho.client_secret = "secret-one";
    unsigned char k1[TOKEN_KEY_LEN], k2[TOKEN_KEY_LEN];
    char *err = NULL;
    assert_int_equal(token_key(&cfg, k1, &err), 0);
    cfg.zoho.client_secret = "secret-two";
    assert_int_equal(token_key(&cfg, k2, &err), 0);
    assert_memory_not_equal(k1, k2, TOKEN_KEY_LEN);
    const char *tok = "1000.3f9c0d4e8a7b6c5d4e3f2a1b0c9d8e7f.a1b2c3d4e5f60718293a4b5c6d7e8f90";
    char *a = token_seal(k1, "client-a", tok), *b = token_seal(k1, "client-a", tok);
    assert_non_null(a);
    assert_true(strncmp(a, "v1:", 3) == 0);
    assert_null(strstr(a, "3f9c0d4e")); /* not in plaintext */
    assert_string_not_equal(a, b);      /* a fresh nonce each time */
    char *p = NULL;
    assert_int_equal(token_open(k1, "client-a", a, &p), 0);
    assert_string_equal(p, tok);
    free(p);
    assert_int_equal(token_open(k2, "client-a", a, &p), -1); /* another key */
    assert_null(p);
    assert_int_equal(token_open(k1, "client-b", a, &p), -1); /* another client */
    a[10] = a[10] == 'A' ? 'B' : 'A';                         /* altered */
    assert_int_equal(token_open(k1, "client-a", a, &p), -1);
    assert_int_equal(token_open(k1, "client-a", tok, &p), -1); /* plaintext, as before */
    assert_int_equal(token_open(k1, "client-a", "v1:", &p), -1);
    assert_int_equal(token_open(k1, "client-a", "v1:@@@@", &p), -1);
    free(a);
    free(b);
}

static void test_configured_key(void **s)
{
    (void)s;
    struct tds_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.zoho.client_secret = "secret-one";
    cfg.zoho.token_key = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
    unsigned char k[TOKEN_KEY_LEN];
    char *err = NULL;
    assert_int_equal(token_key(&cfg, k, &err), 0);
    assert_int_equal(k[0], 0x00);
    assert_int_equal(k[5], 0x55);
    assert_int_equal(k[31], 0xff);
    cfg.zoho.token_key = "0011";
    assert_int_equal(token_key(&cfg, k, &err), -1);
    assert_non_null(strstr(err, "expected 64 hex digits"));
    assert_null(strstr(err, "0011")); /* a secret is never echoed */
    free(err);
    err = NULL;
    cfg.zoho.token_key = "zz112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
    assert_int_equal(token_key(&cfg, k, &err), -1);
    assert_null(strstr(err, "zz11"));
    free(err);
}

static void test_api_domain(void **s)
{
    (void)s;
    struct tds_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.zoho.books_url = "http://127.0.0.1:8123/books/v3";
    assert_true(token_api_domain_allowed(&cfg, "https://www.zohoapis.com"));
    assert_true(token_api_domain_allowed(&cfg, "https://www.zohoapis.com.au"));
    assert_true(token_api_domain_allowed(&cfg, "https://www.zohoapis.EU"));
    assert_true(token_api_domain_allowed(&cfg, "http://127.0.0.1:8123"));
    assert_false(token_api_domain_allowed(&cfg, "https://evil.example"));
    assert_false(token_api_domain_allowed(&cfg, "https://www.zohoapis.com.evil.example"));
    assert_false(token_api_domain_allowed(&cfg, "https://www.zohoapis.com/../x"));
    assert_false(token_api_domain_allowed(&cfg, "http://www.zohoapis.com"));
    assert_false(token_api_domain_allowed(&cfg, "http://127.0.0.1:8124"));
    assert_false(token_api_domain_allowed(&cfg, ""));
    assert_false(token_api_domain_allowed(&cfg, NULL));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_seal_open),
        cmocka_unit_test(test_configured_key),
        cmocka_unit_test(test_api_domain),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
