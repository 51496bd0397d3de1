/*
 * test_config.c: the configuration loader and its schema table: defaults,
 * environment overrides, secrets read from files (and refused when others
 * can read them), the sample and the man page covering every key, that
 * config_print never shows a secret, config_diff and the URL helpers.
 * The exact messages for bad files are checked by tests/config/run-bad.sh.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "tds/config.h"
#include "tds/log.h"

#define SECRET_A "TOPSECRET-client-4f1a9c"
#define SECRET_B "TOPSECRET-refresh-77d0e2"
#define SECRET_C "TOPSECRET-webhook-0b3c5d"
#define DB_PASSWORD "TOPSECRET-dbpass-91ab"

static char tmpdir[] = "/tmp/tds-test-config-XXXXXX";

/* Clears every variable the loader reads, so the caller's shell cannot leak in. */
static void clear_env(void)
{
    size_t n;
    const struct config_key *s = config_schema(&n);
    for (size_t i = 0; i < n; i++)
        if (s[i].env != NULL)
            unsetenv(s[i].env);
    unsetenv("TDS_CONFIG");
}

static char *write_file(const char *name, const char *text, mode_t mode)
{
    char *path = xasprintf("%s/%s", tmpdir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    assert_int_equal(chmod(path, mode), 0);
    return path;
}

static ssize_t key_index(const char *key)
{
    size_t n;
    const struct config_key *s = config_schema(&n);
    for (size_t i = 0; i < n; i++)
        if (strcmp(s[i].key, key) == 0)
            return (ssize_t)i;
    fail_msg("no key %s", key);
    return -1;
}

/* Loads text as a config file; returns the status, errors joined by "\n". */
static int load_text(const char *text, struct config_loaded *cl, char **errors)
{
    char *path = write_file("t.yaml", text, 0600);
    struct config_errors errs = {0};
    int rc = config_load(path, cl, &errs);
    struct strbuf sb = {0};
    for (size_t i = 0; i < errs.n; i++)
        strbuf_printf(&sb, "%s%s", i ? "\n" : "", errs.msg[i]);
    *errors = strbuf_detach(&sb);
    config_errors_free(&errs);
    free(path);
    return rc;
}

static char *print_to_string(const struct config_loaded *cl)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    assert_non_null(f);
    config_print(cl, f);
    fclose(f);
    return buf;
}

static int setup(void **state)
{
    (void)state;
    clear_env();
    return 0;
}

static void test_schema_sane(void **state)
{
    (void)state;
    size_t n;
    const struct config_key *s = config_schema(&n);
    assert_true(n > 50);
    for (size_t i = 0; i < n; i++) {
        if (s[i].help == NULL || s[i].help[0] == '\0' || s[i].def == NULL)
            fail_msg("%s: help or default missing", s[i].key);
        for (size_t j = 0; j < i; j++)
            if (strcmp(s[i].key, s[j].key) == 0)
                fail_msg("%s: twice in the schema", s[i].key);
        if (s[i].type == CFG_ENUM && s[i].choices == NULL)
            fail_msg("%s: enum without choices", s[i].key);
        if (s[i].type == CFG_INT && s[i].min > s[i].max)
            fail_msg("%s: min > max", s[i].key);
        if (s[i].type == CFG_SECRET) {
            char *f = xasprintf("%s_file", s[i].key);
            key_index(f);
            free(f);
        }
    }
    assert_string_equal(config_type_name(CFG_INT), "integer");
}

static void test_defaults(void **state)
{
    (void)state;
    struct config_loaded cl;
    struct config_errors errs = {0};
    int rc = config_load(NULL, &cl, &errs);
    if (rc != 0)
        fail_msg("defaults: %s", errs.msg[0]);
    assert_int_equal(errs.n, 0);
    const struct tds_config *c = &cl.cfg;
    assert_string_equal(c->database.dsn, "");
    assert_int_equal(c->database.connect_timeout, 10);
    assert_string_equal(c->database.application_name, "tds");
    assert_string_equal(c->zoho.data_center, "com");
    assert_string_equal(c->zoho.plan, "standard");
    assert_int_equal(c->zoho.rate_limit.per_minute, 100);
    assert_int_equal(c->zoho.timeout_seconds, 30);
    assert_int_equal(c->engine.workers, 4);
    assert_int_equal(c->engine.batch_size, 100);
    assert_int_equal(c->engine.lease_seconds, 300);
    assert_int_equal(c->engine.retry.max_attempts, 5);
    assert_int_equal(c->engine.retry.backoff_max_seconds, 3600);
    assert_int_equal(c->engine.dlq_auto_retry_after_hours, 24);
    assert_true(c->schedule.enabled);
    assert_string_equal(c->schedule.full_sync, "0 2 * * *");
    assert_string_equal(c->schedule.stock_sync, "*/15 * * * *");
    assert_true(c->stock.active_only);
    assert_false(c->stock.with_stock_only);
    assert_int_equal(c->stock.page_size, 200);
    assert_string_equal(c->images.dir, "/var/lib/tds/images");
    assert_string_equal(c->webhooks.listen, "");
    assert_int_equal(c->alerts.queue_backlog, 10000);
    assert_int_equal(c->console.refresh_ms, 1000);
    assert_string_equal(c->log.level, "info");
    assert_null(cl.path);
    assert_int_equal(cl.sources[key_index("engine.workers")], CONFIG_SRC_DEFAULT);
    assert_int_equal(config_rate_per_day(c), 2000);
    assert_int_equal(config_rate_concurrency(c), 10);
    config_loaded_free(&cl);
}

static void test_env_overrides(void **state)
{
    (void)state;
    setenv("TDS_WORKER_COUNT", "8", 1);
    setenv("TDS_ENABLE_AUTO_SYNC", "no", 1);
    setenv("TDS_STOCK_SYNC_INTERVAL_MINUTES", "5", 1);
    setenv("TDS_LOG_LEVEL", "DEBUG", 1);
    setenv("TDS_DATABASE_URL", "postgresql://tds@db/tds", 1);
    setenv("ZOHO_ORGANIZATION_ID", "12345", 1);
    setenv("TDS_BATCH_SIZE", "", 1); /* empty: ignored */
    struct config_loaded cl;
    char *errors;
    int rc = load_text("engine:\n  workers: 2\n  batch_size: 50\n", &cl, &errors);
    if (rc != 0)
        fail_msg("%s", errors);
    free(errors);
    assert_int_equal(cl.cfg.engine.workers, 8);
    assert_int_equal(cl.sources[key_index("engine.workers")], CONFIG_SRC_ENV);
    assert_int_equal(cl.cfg.engine.batch_size, 50);
    assert_int_equal(cl.sources[key_index("engine.batch_size")], CONFIG_SRC_FILE);
    assert_int_equal(cl.lines[key_index("engine.batch_size")], 3);
    assert_false(cl.cfg.schedule.enabled);
    assert_string_equal(cl.cfg.schedule.stock_sync, "*/5 * * * *");
    assert_string_equal(cl.cfg.log.level, "debug");
    assert_string_equal(cl.cfg.database.dsn, "postgresql://tds@db/tds");
    assert_string_equal(cl.cfg.zoho.organization_id, "12345");
    char *out = print_to_string(&cl);
    assert_non_null(strstr(out, "# env TDS_WORKER_COUNT"));
    assert_non_null(strstr(out, "t.yaml:3\n"));
    free(out);
    config_loaded_free(&cl);

    setenv("TDS_STOCK_SYNC_INTERVAL_MINUTES", "120", 1);
    rc = load_text("", &cl, &errors);
    assert_int_equal(rc, 0);
    free(errors);
    assert_string_equal(cl.cfg.schedule.stock_sync, "0 */2 * * *");
    config_loaded_free(&cl);
    clear_env();
}

static void test_env_bad(void **state)
{
    (void)state;
    setenv("TDS_WORKER_COUNT", "abc", 1);
    setenv("TDS_RETRY_MAX_ATTEMPTS", "0", 1);
    setenv("TDS_ENABLE_AUTO_SYNC", "maybe", 1);
    setenv("TDS_STOCK_SYNC_INTERVAL_MINUTES", "90", 1);
    setenv("TDS_LOG_LEVEL", "loud", 1);
    struct config_loaded cl;
    char *errors;
    assert_int_equal(load_text("", &cl, &errors), -1);
    assert_string_equal(
        errors,
        "environment: TDS_WORKER_COUNT: \"abc\" is not an integer\n"
        "environment: TDS_RETRY_MAX_ATTEMPTS: 0 is out of range (1..100)\n"
        "environment: TDS_ENABLE_AUTO_SYNC: \"maybe\" is not a boolean (true/false, yes/no, "
        "on/off)\n"
        "environment: TDS_STOCK_SYNC_INTERVAL_MINUTES: 90 minutes cannot be a schedule (use 1 to "
        "59, or whole hours from 60 to 1380)\n"
        "environment: TDS_LOG_LEVEL: \"loud\" is not one of: debug, info, warn, error");
    free(errors);
    config_loaded_free(&cl);
    clear_env();
}

static void test_secret_files(void **state)
{
    (void)state;
    char *good = write_file("good.secret", SECRET_B "\n", 0600);
    char *open_ = write_file("open.secret", SECRET_B "\n", 0644);
    char *text = xasprintf("zoho:\n"
                           "  refresh_token_file: %s\n"
                           "  client_secret_file: good.secret\n", /* relative to the file */
                           good);
    struct config_loaded cl;
    char *errors;
    int rc = load_text(text, &cl, &errors);
    if (rc != 0)
        fail_msg("%s", errors);
    free(errors);
    free(text);
    assert_string_equal(cl.cfg.zoho.refresh_token, SECRET_B);
    assert_string_equal(cl.cfg.zoho.client_secret, SECRET_B);
    assert_int_equal(cl.sources[key_index("zoho.refresh_token")], CONFIG_SRC_FILE);
    config_loaded_free(&cl);

    text = xasprintf("zoho:\n  refresh_token_file: %s\n", open_);
    assert_int_equal(load_text(text, &cl, &errors), -1);
    char *want = xasprintf("%s/t.yaml:2:23: zoho.refresh_token_file: %s is readable by group or "
                           "others; run chmod 600 %s",
                           tmpdir, open_, open_);
    assert_string_equal(errors, want);
    assert_null(strstr(errors, SECRET_B));
    free(want);
    free(errors);
    free(text);
    config_loaded_free(&cl);

    assert_int_equal(load_text("webhooks:\n  hmac_secret_file: /nonexistent/x\n", &cl, &errors),
                     -1);
    want = xasprintf("%s/t.yaml:2:21: webhooks.hmac_secret_file: cannot read the file it names: "
                     "No such file or directory (the name is not shown: it may be the secret "
                     "itself)",
                     tmpdir);
    assert_string_equal(errors, want);
    free(want);
    free(errors);
    config_loaded_free(&cl);

    /* The environment wins over a secret file, which is then not read. */
    setenv("ZOHO_REFRESH_TOKEN", SECRET_A, 1);
    text = xasprintf("zoho:\n  refresh_token_file: %s\n", open_);
    assert_int_equal(load_text(text, &cl, &errors), 0);
    assert_string_equal(cl.cfg.zoho.refresh_token, SECRET_A);
    free(errors);
    free(text);
    config_loaded_free(&cl);
    clear_env();
    unlink(good);
    unlink(open_);
    free(good);
    free(open_);
}

static void test_print_hides_secrets(void **state)
{
    (void)state;
    char *sec = write_file("hook.secret", SECRET_C "\r\n", 0400);
    setenv("ZOHO_CLIENT_SECRET", SECRET_A, 1);
    char *text = xasprintf("database:\n"
                           "  dsn: \"postgresql://tds:%s@db:5432/tds?password=%s\"\n"
                           "zoho:\n"
                           "  refresh_token: %s\n"
                           "webhooks:\n"
                           "  secret_file: %s\n",
                           DB_PASSWORD, DB_PASSWORD, SECRET_B, sec);
    struct config_loaded cl;
    char *errors;
    int rc = load_text(text, &cl, &errors);
    if (rc != 0)
        fail_msg("%s", errors);
    free(errors);
    free(text);
    assert_string_equal(cl.cfg.webhooks.secret, SECRET_C);
    char *out = print_to_string(&cl);
    assert_null(strstr(out, "TOPSECRET"));
    assert_non_null(strstr(out, "<redacted>"));
    assert_non_null(strstr(out, "postgresql://tds:<redacted>@db:5432/tds?password=<redacted>"));
    assert_non_null(strstr(out, "webhooks.hmac_secret "));
    free(out);

    log_clear_secrets();
    config_register_secrets(&cl.cfg);
    char *red = log_redact("a=" SECRET_A " b=" SECRET_B " c=" SECRET_C " d=" DB_PASSWORD);
    assert_null(strstr(red, "TOPSECRET"));
    free(red);
    log_clear_secrets();
    config_loaded_free(&cl);
    clear_env();
    unlink(sec);
    free(sec);
}

/*
 * A DSN password in every spelling (issue 18, point 6): check-config shows
 * the DSN with each password as <redacted>, the logger redacts it as written,
 * decoded and as libpq reads it, and a DSN libpq cannot parse is refused
 * with a message that shows none of it.
 */
static void test_dsn_passwords(void **state)
{
    (void)state;
    static const struct {
        const char *dsn;
        const char *shown;    /* in check-config; NULL: refused */
        const char *meant[2]; /* what must never reach a log line */
    } cases[] = {
        {"postgresql://tds:TOPSECRET&one@db/tds", "\"postgresql://tds:<redacted>@db/tds\"",
         {"TOPSECRET&one"}},
        {"postgresql://tds:TOPSECRET?two@db/tds?sslmode=disable",
         "\"postgresql://tds:<redacted>@db/tds?sslmode=disable\"", {"TOPSECRET?two"}},
        {"postgresql://tds:TOPSECRET%40three%26@db/tds", "\"postgresql://tds:<redacted>@db/tds\"",
         {"TOPSECRET@three&", "TOPSECRET%40three%26"}},
        {"postgresql://tds@db/tds?sslmode=disable&password=TOPSECRET%3Ffour",
         "\"postgresql://tds@db/tds?sslmode=disable&password=<redacted>\"", {"TOPSECRET?four"}},
        {"postgresql://tds@db/tds?pass%77ord=TOPSECRET-five",
         "\"postgresql://tds@db/tds?pass%77ord=<redacted>\"", {"TOPSECRET-five"}},
        {"postgresql://tds:TOPSECRET/six@db/tds", "\"postgresql://tds:<redacted>@db/tds\"",
         {"TOPSECRET/six"}},
        {"postgresql://tds:TOPSECRET@seven@db/tds", "\"postgresql://tds:<redacted>@db/tds\"",
         {"TOPSECRET@seven"}},
        {"host=db password=TOPSECRET&eight dbname=tds", "\"host=db password=<redacted> dbname=tds\"",
         {"TOPSECRET&eight"}},
        {"host=db password = 'TOPSECRET nine \\' q' dbname=tds",
         "\"host=db password = <redacted> dbname=tds\"", {"TOPSECRET nine ' q"}},
        {"host=db password=TOPSECRET\\ ten dbname=tds", "\"host=db password=<redacted> dbname=tds\"",
         {"TOPSECRET ten"}},
        {"host=db password=\"TOPSECRET eleven\" dbname=tds", NULL, {"TOPSECRET eleven"}},
        {"host=db sslpassword=TOPSECRET-twelve", "\"host=db sslpassword=<redacted>\"",
         {"TOPSECRET-twelve"}},
        {"host=db password=TOPSECRET-a TOPSECRET-b", NULL, {"TOPSECRET-a", "TOPSECRET-b"}},
        {"host=db PASSWORD=TOPSECRET-upper", NULL, {"TOPSECRET-upper"}},
        {"postgresql://u:TOPSECRET-v6@[::1/x", NULL, {"TOPSECRET-v6"}},
        {"postgresql://u:TOP%zzSECRET-pct@db/x", NULL, {"TOP%zzSECRET-pct"}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        setenv("TDS_DATABASE_URL", cases[i].dsn, 1);
        struct config_loaded cl;
        char *errors;
        int rc = load_text("", &cl, &errors);
        if (strstr(errors, "TOPSECRET") != NULL || strstr(errors, "SECRET") != NULL)
            fail_msg("case %zu: a password in an error: %s", i, errors);
        if (cases[i].shown == NULL) {
            if (rc == 0)
                fail_msg("case %zu: %s was accepted", i, cases[i].dsn);
            assert_non_null(strstr(errors, "environment: TDS_DATABASE_URL: not a valid "
                                           "connection string"));
        } else {
            if (rc != 0)
                fail_msg("case %zu: %s", i, errors);
            char *out = print_to_string(&cl);
            if (strstr(out, "SECRET") != NULL || strstr(out, cases[i].shown) == NULL)
                fail_msg("case %zu: check-config shows %.120s", i, strstr(out, "database.dsn"));
            free(out);
            log_clear_secrets();
            config_register_secrets(&cl.cfg);
            for (size_t m = 0; m < 2 && cases[i].meant[m] != NULL; m++) {
                char *line = xasprintf("x %s y", cases[i].meant[m]);
                char *red = log_redact(line);
                if (strstr(red, "SECRET") != NULL)
                    fail_msg("case %zu: the log shows %s", i, red);
                free(red);
                free(line);
            }
            log_clear_secrets();
        }
        free(errors);
        config_loaded_free(&cl);
    }
    clear_env();
}

/* A key and its value glued together (`client_secret:VALUE`), or a section
 * given a scalar, never shows the value (issue 18, point 6). */
static void test_glued_secret_not_echoed(void **state)
{
    (void)state;
    static const char *const texts[] = {
        "zoho:\n  client_secret:TOPSECRET-glued-1\n",
        "client_secret:TOPSECRET-glued-2\n",
        "zoho: {refresh_token:TOPSECRET-glued-3}\n",
        "webhooks: {hmac_secret=TOPSECRET-glued-4, hmac_secret=TOPSECRET-glued-4}\n",
        "zoho: {\"client_secret TOPSECRET-glued-5\": x}\n",
        "zoho: my-token-TOPSECRET-glued-6\n",
        "zoho:\n  client_secret_file: TOPSECRET-glued-7\n",
    };
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        struct config_loaded cl;
        char *errors;
        assert_int_equal(load_text(texts[i], &cl, &errors), -1);
        if (strstr(errors, "SECRET-glued") != NULL)
            fail_msg("case %zu: %s", i, errors);
        free(errors);
        config_loaded_free(&cl);
    }
}

static char *source_file(const char *rel)
{
    const char *root = getenv("TDS_SOURCE_ROOT");
    if (root == NULL)
        root = ".";
    return xasprintf("%s/%s", root, rel);
}

static void test_sample_complete(void **state)
{
    (void)state;
    char *path = source_file("tds.yaml.sample");
    struct config_loaded cl;
    struct config_errors errs = {0};
    int rc = config_load(path, &cl, &errs);
    if (rc != 0)
        fail_msg("tds.yaml.sample: %s", errs.msg[0]);
    assert_int_equal(errs.n, 0);
    size_t n;
    const struct config_key *s = config_schema(&n);
    for (size_t i = 0; i < n; i++) {
        if (cl.sources[i] != CONFIG_SRC_FILE)
            fail_msg("tds.yaml.sample does not set %s", s[i].key);
    }
    /* The sample shows the defaults. */
    struct config_loaded d;
    struct config_errors e2 = {0};
    assert_int_equal(config_load(NULL, &d, &e2), 0);
    struct strbuf diff = {0};
    config_diff(&d.cfg, &cl.cfg, &diff);
    if (diff.len > 0)
        fail_msg("tds.yaml.sample differs from the defaults: %s", diff.buf);
    strbuf_free(&diff);
    config_loaded_free(&d);
    config_loaded_free(&cl);
    free(path);
}

static void test_man_complete(void **state)
{
    (void)state;
    char *path = source_file("man/tds.yaml.5");
    FILE *f = fopen(path, "r");
    if (f == NULL)
        fail_msg("cannot open %s", path);
    struct strbuf sb = {0};
    char line[4096];
    while (fgets(line, sizeof line, f) != NULL)
        strbuf_puts(&sb, line);
    fclose(f);
    size_t n;
    const struct config_key *s = config_schema(&n);
    for (size_t i = 0; i < n; i++) {
        char *item = xasprintf(".It Cm %s\n", s[i].key);
        if (strstr(sb.buf, item) == NULL)
            fail_msg("man/tds.yaml.5 does not document %s", s[i].key);
        free(item);
        if (s[i].env != NULL) {
            char *ev = xasprintf(".Ev %s", s[i].env);
            if (strstr(sb.buf, ev) == NULL)
                fail_msg("man/tds.yaml.5 does not mention %s", s[i].env);
            free(ev);
        }
    }
    strbuf_free(&sb);
    free(path);
}

static void test_errors_in_file(void **state)
{
    (void)state;
    struct config_loaded cl;
    char *errors;
    assert_int_equal(load_text("engine:\n"
                               "  wokers: 4\n"
                               "  batch_size: many\n"
                               "  retry:\n"
                               "    backoff_seconds: 100\n"
                               "    backoff_max_seconds: 10\n"
                               "stock: {page_size: 500}\n",
                               &cl, &errors),
                     -1);
    char *want =
        xasprintf("%1$s/t.yaml:2:3: unknown key \"wokers\" in engine (did you mean \"workers\"?)\n"
                  "%1$s/t.yaml:3:15: engine.batch_size: expected an integer, got \"many\"\n"
                  "%1$s/t.yaml:6:26: engine.retry.backoff_max_seconds: 10 is less than "
                  "engine.retry.backoff_seconds (100)\n"
                  "%1$s/t.yaml:7:20: stock.page_size: 500 is out of range (1..200)",
                  tmpdir);
    assert_string_equal(errors, want);
    free(want);
    free(errors);
    config_loaded_free(&cl);

    struct config_errors errs = {0};
    assert_int_equal(config_load("/nonexistent/tds.yaml", &cl, &errs), -1);
    assert_int_equal(errs.n, 1);
    assert_string_equal(errs.msg[0],
                        "/nonexistent/tds.yaml: cannot read: No such file or directory");
    config_errors_free(&errs);
    config_loaded_free(&cl);

    /* Empty file and a comment-only file: defaults. */
    assert_int_equal(load_text("", &cl, &errors), 0);
    free(errors);
    config_loaded_free(&cl);
    assert_int_equal(load_text("# nothing\n---\n", &cl, &errors), 0);
    free(errors);
    config_loaded_free(&cl);
}

static void test_diff(void **state)
{
    (void)state;
    struct config_loaded a, b;
    char *errors;
    assert_int_equal(load_text("", &a, &errors), 0);
    free(errors);
    assert_int_equal(
        load_text("engine: {workers: 9}\nlog: {level: warn}\nzoho: {refresh_token: x}\n", &b,
                  &errors),
        0);
    free(errors);
    struct strbuf sb = {0};
    config_diff(&a.cfg, &a.cfg, &sb);
    assert_int_equal(sb.len, 0);
    config_diff(&a.cfg, &b.cfg, &sb);
    assert_string_equal(sb.buf,
                        "zoho.refresh_token (restart needed), engine.workers (restart needed), "
                        "log.level");
    strbuf_free(&sb);
    config_loaded_free(&a);
    config_loaded_free(&b);
}

static void test_urls(void **state)
{
    (void)state;
    static const struct {
        const char *dc, *accounts, *books, *inventory;
    } cases[] = {
        {"com", "https://accounts.zoho.com", "https://www.zohoapis.com/books/v3",
         "https://www.zohoapis.com/inventory/v1"},
        {"eu", "https://accounts.zoho.eu", "https://www.zohoapis.eu/books/v3",
         "https://www.zohoapis.eu/inventory/v1"},
        {"com.au", "https://accounts.zoho.com.au", "https://www.zohoapis.com.au/books/v3",
         "https://www.zohoapis.com.au/inventory/v1"},
        {"ca", "https://accounts.zohocloud.ca", "https://www.zohoapis.ca/books/v3",
         "https://www.zohoapis.ca/inventory/v1"},
        {"com.cn", "https://accounts.zoho.com.cn", "https://www.zohoapis.com.cn/books/v3",
         "https://www.zohoapis.com.cn/inventory/v1"},
        {"sa", "https://accounts.zoho.sa", "https://www.zohoapis.sa/books/v3",
         "https://www.zohoapis.sa/inventory/v1"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct tds_config c = {0};
        c.zoho.data_center = (char *)cases[i].dc;
        c.zoho.accounts_url = c.zoho.books_url = c.zoho.inventory_url = (char *)"";
        char *a = config_accounts_url(&c), *b = config_books_url(&c), *v = config_inventory_url(&c);
        assert_string_equal(a, cases[i].accounts);
        assert_string_equal(b, cases[i].books);
        assert_string_equal(v, cases[i].inventory);
        free(a);
        free(b);
        free(v);
    }
    struct tds_config c = {0};
    c.zoho.data_center = (char *)"eu";
    c.zoho.accounts_url = (char *)"http://127.0.0.1:9999/";
    c.zoho.books_url = (char *)"http://127.0.0.1:9999/books/v3";
    c.zoho.inventory_url = (char *)"";
    c.zoho.plan = (char *)"free";
    char *a = config_accounts_url(&c), *b = config_books_url(&c);
    assert_string_equal(a, "http://127.0.0.1:9999");
    assert_string_equal(b, "http://127.0.0.1:9999/books/v3");
    free(a);
    free(b);
    assert_int_equal(config_rate_per_day(&c), 1000);
    assert_int_equal(config_rate_concurrency(&c), 5);
    c.zoho.plan = (char *)"professional";
    assert_int_equal(config_rate_per_day(&c), 5000);
    c.zoho.plan = (char *)"elite";
    assert_int_equal(config_rate_per_day(&c), 10000);
    c.zoho.rate_limit.per_day = 123;
    c.zoho.rate_limit.concurrency = 3;
    assert_int_equal(config_rate_per_day(&c), 123);
    assert_int_equal(config_rate_concurrency(&c), 3);
}

static void test_find(void **state)
{
    (void)state;
    char *p = config_find("/x/explicit.yaml");
    assert_string_equal(p, "/x/explicit.yaml");
    free(p);
    setenv("TDS_CONFIG", "/x/from-env.yaml", 1);
    p = config_find(NULL);
    assert_string_equal(p, "/x/from-env.yaml");
    free(p);
    unsetenv("TDS_CONFIG");
    char *xdg = xasprintf("%s/xdg", tmpdir);
    char *dir = xasprintf("%s/tds", xdg);
    assert_int_equal(mkdir(xdg, 0700), 0);
    assert_int_equal(mkdir(dir, 0700), 0);
    setenv("XDG_CONFIG_HOME", xdg, 1);
    char *file = xasprintf("%s/tds.yaml", dir);
    FILE *f = fopen(file, "w");
    assert_non_null(f);
    fclose(f);
    p = config_find(NULL);
    assert_string_equal(p, file);
    free(p);
    unlink(file);
    rmdir(dir);
    rmdir(xdg);
    unsetenv("XDG_CONFIG_HOME");
    free(file);
    free(dir);
    free(xdg);
}

static int group_setup(void **state)
{
    (void)state;
    if (mkdtemp(tmpdir) == NULL)
        return -1;
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    char *t = xasprintf("%s/t.yaml", tmpdir);
    unlink(t);
    free(t);
    rmdir(tmpdir);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_schema_sane, setup),
        cmocka_unit_test_setup(test_defaults, setup),
        cmocka_unit_test_setup(test_env_overrides, setup),
        cmocka_unit_test_setup(test_env_bad, setup),
        cmocka_unit_test_setup(test_secret_files, setup),
        cmocka_unit_test_setup(test_print_hides_secrets, setup),
        cmocka_unit_test_setup(test_dsn_passwords, setup),
        cmocka_unit_test_setup(test_glued_secret_not_echoed, setup),
        cmocka_unit_test_setup(test_sample_complete, setup),
        cmocka_unit_test_setup(test_man_complete, setup),
        cmocka_unit_test_setup(test_errors_in_file, setup),
        cmocka_unit_test_setup(test_diff, setup),
        cmocka_unit_test_setup(test_urls, setup),
        cmocka_unit_test_setup(test_find, setup),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
