/*
 * fuzz_config.c: the configuration loader (src/core/config.c) on any bytes.
 * The input is written to a file and loaded with config_load; it must never
 * crash, leak or hang, and every error message must be one well-formed line
 * that starts with the file's name (the environment overrides are cleared,
 * so every problem comes from the file).  A successful load is printed
 * (`tds check-config`) and its endpoints resolved.
 */
#include <fcntl.h>
#include <unistd.h>

#include "fuzz.h"
#include "tds/config.h"

static char fzcfg_dir[64];
static char fzcfg_path[96];
static FILE *fzcfg_null;

static void fzcfg_cleanup(void)
{
    if (fzcfg_path[0])
        unlink(fzcfg_path);
    if (fzcfg_dir[0])
        rmdir(fzcfg_dir);
}

static void fzcfg_init(void)
{
    if (fzcfg_path[0])
        return;
    size_t n;
    const struct config_key *keys = config_schema(&n);
    for (size_t i = 0; i < n; i++)
        if (keys[i].env)
            unsetenv(keys[i].env);
    unsetenv("TDS_CONFIG");
    snprintf(fzcfg_dir, sizeof fzcfg_dir, "/tmp/tds-fuzz-config.XXXXXX");
    FUZZ_CHECK(mkdtemp(fzcfg_dir) != NULL, "mkdtemp");
    snprintf(fzcfg_path, sizeof fzcfg_path, "%s/tds.yaml", fzcfg_dir);
    fzcfg_null = fopen("/dev/null", "w");
    FUZZ_CHECK(fzcfg_null != NULL, "/dev/null");
    atexit(fzcfg_cleanup);
}

FUZZ_ENTRY(config)
{
    fzcfg_init();
    int fd = open(fzcfg_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    FUZZ_CHECK(fd >= 0, "cannot write %s", fzcfg_path);
    size_t off = 0;
    while (off < size) {
        ssize_t w = write(fd, data + off, size - off);
        FUZZ_CHECK(w > 0, "short write");
        off += (size_t)w;
    }
    close(fd);

    struct config_loaded cl;
    struct config_errors errs = {0};
    int rc = config_load(fzcfg_path, &cl, &errs);
    FUZZ_CHECK(rc == 0 || errs.n > 0, "config_load failed without a message");
    FUZZ_CHECK(rc != 0 || errs.n == 0, "config_load succeeded with %zu messages", errs.n);
    size_t plen = strlen(fzcfg_path);
    for (size_t i = 0; i < errs.n; i++) {
        const char *m = errs.msg[i];
        FUZZ_CHECK(m != NULL, "NULL message");
        FUZZ_CHECK(strncmp(m, fzcfg_path, plen) == 0 && m[plen] == ':',
                   "message does not start with the file name: \"%s\"", m);
        FUZZ_CHECK(fuzz_one_line(m), "message is not one printable line: \"%s\"", m);
        FUZZ_CHECK(fuzz_str_utf8_ok(m), "message is not UTF-8: \"%s\"", m);
    }
    /* Whatever was loaded is complete: strings are never NULL. */
    FUZZ_CHECK(cl.cfg.database.dsn && cl.cfg.zoho.client_secret && cl.cfg.log.level &&
                   cl.cfg.webhooks.listen && cl.cfg.schedule.full_sync,
               "a string of the configuration is NULL");
    if (rc == 0) {
        config_print(&cl, fzcfg_null);
        free(config_accounts_url(&cl.cfg));
        free(config_books_url(&cl.cfg));
        free(config_inventory_url(&cl.cfg));
        (void)config_rate_per_day(&cl.cfg);
        (void)config_rate_concurrency(&cl.cfg);
    }
    config_errors_free(&errs);
    config_loaded_free(&cl);
    return 0;
}
