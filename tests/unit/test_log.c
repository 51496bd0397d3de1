/*
 * test_log.c: log lines are single, prefixed, levelled, and never carry a
 * secret: registered values and token-shaped fragments are redacted.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "tds/log.h"

static const struct {
    const char *in;
    const char *out;
} redactions[] = {
    {"Authorization: Zoho-oauthtoken 1000.abc.def", "Authorization: Zoho-oauthtoken <redacted>"},
    {"POST refresh_token=1000.xyz&client_id=c&client_secret=s3cr3tvalue&grant_type=refresh_token",
     "POST refresh_token=<redacted>&client_id=c&client_secret=<redacted>&grant_type=refresh_token"},
    {"{\"access_token\":\"1000.tok\",\"expires_in\":3600}",
     "{\"access_token\":\"<redacted>\",\"expires_in\":3600}"},
    {"url /webhooks/zoho/items?secret=abcdEFGH1234 rejected",
     "url /webhooks/zoho/items?secret=<redacted> rejected"},
    {"postgresql://u@h/db password=hunter2 sslmode=require",
     "postgresql://u@h/db password=<redacted> sslmode=require"},
    {"nothing secret here", "nothing secret here"},
    {"registered sEcReT-VALUE-42 inside", "registered <redacted> inside"},
};

static void test_redaction_table(void **state)
{
    (void)state;
    log_register_secret("sEcReT-VALUE-42");
    for (size_t i = 0; i < sizeof redactions / sizeof redactions[0]; i++) {
        char *got = log_redact(redactions[i].in);
        assert_string_equal(got, redactions[i].out);
        free(got);
    }
    log_clear_secrets();
}

static void test_short_secrets_ignored(void **state)
{
    (void)state;
    log_register_secret("ab");
    char *got = log_redact("abc");
    assert_string_equal(got, "abc");
    free(got);
    log_clear_secrets();
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    static char buf[4096];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

static void test_file_lines(void **state)
{
    (void)state;
    char path[] = "/tmp/tds-log-test.XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    char *err = NULL;
    assert_int_equal(log_open(path, &err), 0);
    log_register_secret("topsecret-token");
    log_set_level(TDS_LOG_INFO);
    log_set_context("worker %d", 3);
    log_debug("hidden");
    log_info("two\nlines with topsecret-token");
    log_set_context(NULL);
    log_error("plain");
    log_close();
    const char *text = slurp(path);
    assert_null(strstr(text, "hidden"));
    assert_null(strstr(text, "topsecret-token"));
    assert_non_null(strstr(text, "info  [worker 3] two\\nlines with <redacted>\n"));
    assert_non_null(strstr(text, "error plain\n"));
    /* Exactly two lines. */
    int lines = 0;
    for (const char *p = text; *p; p++)
        lines += *p == '\n';
    assert_int_equal(lines, 2);
    unlink(path);
    log_clear_secrets();
}

static void test_open_failure_names_file(void **state)
{
    (void)state;
    char *err = NULL;
    assert_int_equal(log_open("/nonexistent-dir/tds.log", &err), -1);
    assert_non_null(strstr(err, "/nonexistent-dir/tds.log: cannot open log file"));
    free(err);
}

static void test_levels(void **state)
{
    (void)state;
    enum log_level l;
    assert_true(log_level_parse("WARNING", &l));
    assert_int_equal(l, TDS_LOG_WARN);
    assert_true(log_level_parse("debug", &l));
    assert_int_equal(l, TDS_LOG_DEBUG);
    assert_false(log_level_parse("loud", &l));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_redaction_table),
        cmocka_unit_test(test_short_secrets_ignored),
        cmocka_unit_test(test_file_lines),
        cmocka_unit_test(test_open_failure_names_file),
        cmocka_unit_test(test_levels),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
