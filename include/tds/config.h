/*
 * config.h: tds.yaml, loaded by libyaml and driven by one schema table
 * (src/core/config_schema.c) that holds every key of every section with its
 * type, default, bounds, reloadability, environment override and help text.
 * Parsing, validation, defaults, `tds check-config`, SIGHUP reload and the
 * tests that keep tds.yaml.sample and man/tds.yaml.5 complete all walk that
 * table.  See DESIGN.md, "Configuration".
 */
#ifndef TDS_CONFIG_H
#define TDS_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "tds/util.h"

/* Effective configuration.  Strings are owned by the struct (never NULL
 * after config_load: empty means unset).  Secrets are the resolved values,
 * read from the *_file keys when those are used. */
struct tds_config {
    struct {
        char *dsn;                  /* libpq conninfo or URI; "" = PG* variables */
        int connect_timeout;        /* seconds */
        char *application_name;
    } database;
    struct {
        char *data_center;          /* com eu in com.au jp ca com.cn sa */
        char *organization_id;
        char *client_id;
        char *client_secret;        /* secret */
        char *client_secret_file;
        char *refresh_token;        /* secret */
        char *refresh_token_file;
        char *token_key;            /* secret: seals the access token at rest */
        char *token_key_file;
        char *plan;                 /* free standard professional premium elite ultimate */
        struct {
            int per_minute;
            int per_day;            /* 0: from plan */
            int concurrency;        /* 0: from plan */
        } rate_limit;
        int budget_reserve_percent; /* left by the scheduler for webhooks, manual actions */
        char *accounts_url;         /* "" = from data_center */
        char *books_url;
        char *inventory_url;
        int timeout_seconds;        /* per HTTP request */
        int unreachable_alert_seconds; /* outage before the zoho_unreachable alert */
        int max_wait_seconds;       /* a call waits this long for a block/outage to end */
    } zoho;
    struct {
        char *instance;             /* "" = host-pid */
        int workers;
        int batch_size;
        int lease_seconds;
        int poll_interval_ms;
        int heartbeat_seconds;
        int dead_after_seconds;     /* heartbeat older than this: engine dead */
        int max_resumes;            /* resumes after a crash before a run fails */
        int leader_lease_seconds;   /* the scheduler/janitor lease */
        struct {
            int max_attempts;
            int backoff_seconds;
            int backoff_max_seconds;
        } retry;
        int dlq_auto_retry_after_hours;   /* 0: never */
        int cleanup_after_days;     /* queue items, resolved dead letters, stats */
        /* The retention.* keys: what the leader's janitor prunes, hourly.  Held
         * here so that the engine's copy of its reloadable settings carries them. */
        struct {
            int events_days;
            int inbox_days;
            int runs_days;
            int api_usage_days;
            int batch_size;         /* rows per DELETE */
            int max_batches;        /* DELETEs per table per pass */
        } retention;
    } engine;
    struct {
        bool enabled;
        char *full_sync;            /* 5-field cron; "" disables the job */
        char *incremental_sync;
        char *stock_sync;
        char *auto_heal;
        char *reconcile;
    } schedule;
    struct {
        bool active_only;
        bool with_stock_only;
        int page_size;
    } stock;
    struct {
        bool enabled;
        char *dir;
    } images;
    struct {
        int max_calls; /* Zoho calls one reconcile run may make; 0: no cap */
    } reconcile;
    struct {
        char *listen;               /* "host:port"; "" = off */
        char *secret;               /* secret */
        char *secret_file;
        char *hmac_secret;          /* secret */
        char *hmac_secret_file;
        int max_connections;
        int max_connections_per_peer;
        int request_timeout_seconds;
    } webhooks;
    struct {
        int failure_rate_percent;
        int failure_window_minutes;
        int queue_backlog;
        int oldest_pending_minutes;
        int processing_stuck_minutes;
        int dlq_growth_per_hour;
        int heartbeat_missing_seconds;
        int daily_budget_percent;
        int drift_percent;
        char *notify_url;
    } alerts;
    struct {
        char *theme;
        int refresh_ms;
        bool read_only;
    } console;
    struct {
        char *level;                /* debug info warn error */
        char *file;                 /* "" = stderr */
    } log;
};

enum config_source {
    CONFIG_SRC_DEFAULT = 0,
    CONFIG_SRC_FILE,
    CONFIG_SRC_ENV,
    CONFIG_SRC_CLI,
};

/* One problem found while loading; messages are complete lines such as
 * "tds.yaml:12:5: unknown key \"wokers\" in engine (did you mean \"workers\"?)". */
struct config_errors {
    char **msg;
    size_t n;
};

struct config_loaded {
    struct tds_config cfg;
    char *path;                     /* file actually read, or NULL if none */
    enum config_source *sources;    /* indexed like the schema table */
    int *lines;                     /* file line of each key's value, 0 if not from the file */
};

/*
 * Finds the configuration file: explicit (from --config) if not NULL, else
 * $TDS_CONFIG, $XDG_CONFIG_HOME/tds/tds.yaml (or ~/.config/tds/tds.yaml),
 * /etc/tds/tds.yaml.  Returns a new string or NULL when none exists (then
 * defaults and the environment apply).  An explicit path that does not
 * exist is still returned, so the loader reports it.
 */
char *config_find(const char *explicit_path);

/*
 * Loads defaults, then the file at path (may be NULL), then the environment
 * overrides; resolves *_file secrets (refusing files readable by group or
 * others); validates everything.  On success returns 0 and fills *out.  On
 * failure returns -1 and appends every error found to *errs (not only the
 * first); *out is still filled as far as it could be and must be freed.
 */
int config_load(const char *path, struct config_loaded *out, struct config_errors *errs)
    TDS_MUST_CHECK;
void config_loaded_free(struct config_loaded *cl);
void config_errors_free(struct config_errors *errs);

/* Registers every secret of cfg with the logger's redaction.  Can't fail. */
void config_register_secrets(const struct tds_config *cfg);
/*
 * NULL when dsn is empty, a database name or a connection string libpq can
 * parse; else why not, with every quoted piece of libpq's message that is
 * not a keyword hidden (it may be part of a password).  Caller frees.
 */
char *config_dsn_problem(const char *dsn);
/* libpq's message about a connection string with the quoted pieces that are
 * not connection keywords (or "=") shown as "<hidden>".  Caller frees. */
char *config_dsn_hide_fragments(const char *msg);

/*
 * Prints the effective configuration, one "key = value  # source" line per
 * schema key, secrets as <redacted>.  Used by `tds check-config`.
 */
void config_print(const struct config_loaded *cl, FILE *out);

/* Resolved endpoints: the override if set, else from data_center. Caller frees. */
char *config_accounts_url(const struct tds_config *cfg);
char *config_books_url(const struct tds_config *cfg);
char *config_inventory_url(const struct tds_config *cfg);
/* Limits after applying plan defaults (0 in the file means "from plan"). */
int config_rate_per_day(const struct tds_config *cfg);
int config_rate_concurrency(const struct tds_config *cfg);

/* Schema table access (check-config, the man page and sample coverage tests). */
enum config_type {
    CFG_STRING,
    CFG_SECRET,     /* string, never printed */
    CFG_PATH,
    CFG_URL,
    CFG_INT,
    CFG_BOOL,
    CFG_ENUM,
    CFG_CRON,
    CFG_LISTEN,     /* host:port */
};

struct config_key {
    const char *key;        /* dotted: "engine.retry.max_attempts" */
    enum config_type type;
    size_t offset;          /* into struct tds_config */
    const char *def;        /* default, as it would be written in YAML */
    long long min, max;     /* CFG_INT bounds */
    const char *const *choices; /* CFG_ENUM, NULL-terminated */
    bool reloadable;        /* takes effect on SIGHUP without restart */
    const char *env;        /* environment override, or NULL */
    const char *help;       /* one line */
};

const struct config_key *config_schema(size_t *n);
const char *config_type_name(enum config_type t);

/*
 * Compares two configurations and appends to *changed the keys whose values
 * differ, separated by ", ", "key (restart needed)" for non-reloadable ones.
 * For SIGHUP.  Never writes a value.
 */
void config_diff(const struct tds_config *a, const struct tds_config *b, struct strbuf *changed);

#endif
