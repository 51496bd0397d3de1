/*
 * config_schema.c: the one table that describes tds.yaml.  Every key of
 * every section has a row here (in the manner of PgBouncer's CF_ABS rows
 * and tmux's options-table.c): its dotted name, type, place in struct
 * tds_config, default written as it would be in YAML, bounds or choices,
 * whether SIGHUP applies it without a restart, its environment override
 * and one line of help.  The loader, `tds check-config`, config_diff and
 * the tests that keep tds.yaml.sample and man/tds.yaml.5 complete all walk
 * this table; adding a key is adding a row (and a field).
 */
#include <limits.h>
#include <stddef.h>

#include "tds/config.h"

/* clang-format off */
#define OFF(field) offsetof(struct tds_config, field)

/* Row builders: one per type, so each row reads as a sentence. */
#define STR(k, f, d, rel, env, help) {k, CFG_STRING, OFF(f), d, 0, 0, NULL, rel, env, help}
#define SECRET(k, f, env, help) {k, CFG_SECRET, OFF(f), "", 0, 0, NULL, false, env, help}
#define PATH(k, f, d, rel, help) {k, CFG_PATH, OFF(f), d, 0, 0, NULL, rel, NULL, help}
#define URL(k, f, rel, help) {k, CFG_URL, OFF(f), "", 0, 0, NULL, rel, NULL, help}
#define INT(k, f, d, lo, hi, rel, env, help) {k, CFG_INT, OFF(f), d, lo, hi, NULL, rel, env, help}
#define BOOL(k, f, d, rel, env, help) {k, CFG_BOOL, OFF(f), d, 0, 0, NULL, rel, env, help}
#define ENUM(k, f, d, ch, rel, env, help) {k, CFG_ENUM, OFF(f), d, 0, 0, ch, rel, env, help}
#define CRON(k, f, d, env, help) {k, CFG_CRON, OFF(f), d, 0, 0, NULL, true, env, help}
#define LISTEN(k, f, help) {k, CFG_LISTEN, OFF(f), "", 0, 0, NULL, false, NULL, help}

static const char *const data_centers[] = {"com", "eu", "in", "com.au", "jp",
                                           "ca",  "com.cn", "sa", NULL};
static const char *const plans[] = {"free",    "standard", "professional", "premium",
                                    "elite",   "ultimate", NULL};
static const char *const log_levels[] = {"debug", "info", "warn", "error", NULL};

static const struct config_key schema[] = {
    /* database: where the engine state and the synced data live */
    STR("database.dsn", database.dsn, "", false, "TDS_DATABASE_URL",
        "libpq connection string or URI; empty uses the PG* environment variables"),
    INT("database.connect_timeout", database.connect_timeout, "10", 1, 3600, false, NULL,
        "seconds to wait for a connection to the server"),
    STR("database.application_name", database.application_name, "tds", false, NULL,
        "application_name reported to PostgreSQL (pg_stat_activity)"),

    /* zoho: the organization, its credentials and the API budget */
    ENUM("zoho.data_center", zoho.data_center, "com", data_centers, false, NULL,
         "Zoho data center of the organization: com eu in com.au jp ca com.cn sa"),
    STR("zoho.organization_id", zoho.organization_id, "", false, "ZOHO_ORGANIZATION_ID",
        "Zoho organization id"),
    STR("zoho.client_id", zoho.client_id, "", false, "ZOHO_CLIENT_ID",
        "OAuth client id from the Zoho API console"),
    SECRET("zoho.client_secret", zoho.client_secret, "ZOHO_CLIENT_SECRET",
           "OAuth client secret (prefer client_secret_file)"),
    PATH("zoho.client_secret_file", zoho.client_secret_file, "", false,
         "file whose first line is the client secret (mode 600)"),
    SECRET("zoho.refresh_token", zoho.refresh_token, "ZOHO_REFRESH_TOKEN",
           "OAuth refresh token (prefer refresh_token_file)"),
    PATH("zoho.refresh_token_file", zoho.refresh_token_file, "", false,
         "file whose first line is the refresh token (mode 600)"),
    SECRET("zoho.token_key", zoho.token_key, "TDS_ZOHO_TOKEN_KEY",
           "64 hex digits sealing the access token at rest; empty derives it from the client secret"),
    PATH("zoho.token_key_file", zoho.token_key_file, "", false,
         "file whose first line is the token key (mode 600)"),
    ENUM("zoho.plan", zoho.plan, "standard", plans, true, NULL,
         "Zoho subscription plan; sets the daily call budget and concurrency"),
    INT("zoho.rate_limit.per_minute", zoho.rate_limit.per_minute, "100", 1, 10000, true, NULL,
        "API calls per minute per organization"),
    INT("zoho.rate_limit.per_day", zoho.rate_limit.per_day, "0", 0, 10000000, true, NULL,
        "API calls per day; 0 takes it from the plan"),
    INT("zoho.rate_limit.concurrency", zoho.rate_limit.concurrency, "0", 0, 100, true, NULL,
        "API calls in flight at once; 0 takes it from the plan"),
    INT("zoho.budget_reserve_percent", zoho.budget_reserve_percent, "10", 0, 90, true, NULL,
        "share of the daily budget the scheduler leaves for webhooks and manual actions"),
    URL("zoho.accounts_url", zoho.accounts_url, false,
        "OAuth server override (proxy, simulator); empty derives it from data_center"),
    URL("zoho.books_url", zoho.books_url, false,
        "Zoho Books API base override; empty derives it from data_center"),
    URL("zoho.inventory_url", zoho.inventory_url, false,
        "Zoho Inventory API base override; empty derives it from data_center"),
    INT("zoho.timeout_seconds", zoho.timeout_seconds, "30", 1, 600, true, NULL,
        "seconds before one HTTP request to Zoho is abandoned"),
    INT("zoho.unreachable_alert_seconds", zoho.unreachable_alert_seconds, "300", 1, 86400, true,
        NULL, "seconds Zoho may stay unreachable before the zoho_unreachable alert"),
    INT("zoho.max_wait_seconds", zoho.max_wait_seconds, "3600", 1, 604800, true, NULL,
        "longest a call waits for a Zoho block or outage to end before failing"),

    /* engine: workers, the queue lease and retries */
    STR("engine.instance", engine.instance, "", false, NULL,
        "name of this engine in tds.engines; empty uses host-pid"),
    INT("engine.workers", engine.workers, "4", 1, 64, false, "TDS_WORKER_COUNT",
        "worker threads, each with its own database connection"),
    INT("engine.batch_size", engine.batch_size, "100", 1, 10000, true, "TDS_BATCH_SIZE",
        "queue items a worker claims and applies in one transaction"),
    INT("engine.lease_seconds", engine.lease_seconds, "300", 10, 86400, true, NULL,
        "seconds a claimed batch stays leased before another engine may reclaim it"),
    INT("engine.poll_interval_ms", engine.poll_interval_ms, "1000", 50, 60000, true, NULL,
        "milliseconds an idle worker waits before looking at the queue again"),
    INT("engine.heartbeat_seconds", engine.heartbeat_seconds, "5", 1, 3600, true, NULL,
        "seconds between heartbeats of this engine and its runs"),
    INT("engine.dead_after_seconds", engine.dead_after_seconds, "30", 2, 86400, true, NULL,
        "an engine whose heartbeat is older than this is dead; its runs are interrupted"),
    INT("engine.leader_lease_seconds", engine.leader_lease_seconds, "10", 3, 600, false, NULL,
        "seconds the leader lease lasts; renewed every quarter of it; a new leader within it"),
    INT("engine.max_resumes", engine.max_resumes, "3", 0, 100, true, NULL,
        "times a run is resumed after its engine crashed before it is failed instead"),
    INT("engine.retry.max_attempts", engine.retry.max_attempts, "5", 1, 100, true,
        "TDS_RETRY_MAX_ATTEMPTS", "attempts before a queue item goes to the dead-letter queue"),
    INT("engine.retry.backoff_seconds", engine.retry.backoff_seconds, "60", 1, 86400, true,
        "TDS_RETRY_BACKOFF_SECONDS", "first retry delay; doubles at each attempt, with jitter"),
    INT("engine.retry.backoff_max_seconds", engine.retry.backoff_max_seconds, "3600", 1, 604800,
        true, NULL, "longest retry delay"),
    INT("engine.dlq_auto_retry_after_hours", engine.dlq_auto_retry_after_hours, "24", 0, 8760,
        true, NULL, "hours after which dead letters are retried once automatically; 0 never"),
    INT("engine.cleanup_after_days", engine.cleanup_after_days, "30", 1, 3650, true, NULL,
        "days to keep completed and dead queue items, resolved dead letters and per-minute"
        " stats"),

    /* retention: what the leader's janitor prunes, hourly, in small batches */
    INT("retention.events_days", engine.retention.events_days, "30", 1, 3650, true, NULL,
        "days to keep events (those of a run still active are kept)"),
    INT("retention.inbox_days", engine.retention.inbox_days, "30", 1, 3650, true, NULL,
        "days to keep received webhooks (those not yet queued or still queued are kept)"),
    INT("retention.runs_days", engine.retention.runs_days, "90", 1, 3650, true, NULL,
        "days to keep finished sync runs (the last completed run of each entity and kind,"
        " and runs with queue items or open dead letters, are kept)"),
    INT("retention.api_usage_days", engine.retention.api_usage_days, "30", 2, 3650, true, NULL,
        "days to keep the per-minute API usage"),
    INT("retention.batch_size", engine.retention.batch_size, "5000", 1, 100000, true, NULL,
        "rows deleted per statement (each its own short transaction)"),
    INT("retention.max_batches", engine.retention.max_batches, "100", 1, 100000, true, NULL,
        "statements per table per pass; what is left waits for the next pass"),

    /* schedule: cron lines for the periodic jobs */
    BOOL("schedule.enabled", schedule.enabled, "true", true, "TDS_ENABLE_AUTO_SYNC",
         "run the scheduled jobs below; false leaves only manual and webhook syncs"),
    CRON("schedule.full_sync", schedule.full_sync, "0 2 * * *", NULL,
         "full sync of every entity; empty disables the job"),
    CRON("schedule.incremental_sync", schedule.incremental_sync, "0 * * * *", NULL,
         "incremental sync of what changed since the last run; empty disables"),
    CRON("schedule.stock_sync", schedule.stock_sync, "*/15 * * * *",
         "TDS_STOCK_SYNC_INTERVAL_MINUTES", "stock levels of items and locations; empty disables"),
    CRON("schedule.auto_heal", schedule.auto_heal, "*/15 * * * *", NULL,
         "reclaim expired leases, interrupt runs of dead engines; empty disables"),
    CRON("schedule.reconcile", schedule.reconcile, "0 3 * * *", NULL,
         "compare counts with Zoho and repair drift; empty disables"),

    /* stock: what a stock sync fetches */
    BOOL("stock.active_only", stock.active_only, "true", true, NULL,
         "fetch active items only"),
    BOOL("stock.with_stock_only", stock.with_stock_only, "false", true, NULL,
         "fetch only items that have stock on hand"),
    INT("stock.page_size", stock.page_size, "200", 1, 200, true, NULL,
        "items per Zoho page (Zoho allows at most 200)"),

    /* images: item images downloaded next to the data */
    BOOL("images.enabled", images.enabled, "true", true, NULL, "download item images (in their own \"images\" run)"),
    PATH("images.dir", images.dir, "/var/lib/tds/images", false,
         "directory where item images are stored"),

    /* reconcile: comparing Zoho with the local tables */
    INT("reconcile.max_calls", reconcile.max_calls, "2000", 0, 10000000, true, NULL,
        "Zoho calls one reconcile run may make before it stops; 0: no cap"),

    /* webhooks: the HTTP listener for Zoho webhooks, /health and /metrics */
    LISTEN("webhooks.listen", webhooks.listen,
           "host:port of the webhook, /health and /metrics listener; empty turns it off"),
    SECRET("webhooks.secret", webhooks.secret, NULL,
           "shared secret expected in the webhook URL or header (prefer secret_file)"),
    PATH("webhooks.secret_file", webhooks.secret_file, "", false,
         "file whose first line is the webhook secret (mode 600)"),
    SECRET("webhooks.hmac_secret", webhooks.hmac_secret, NULL,
           "key of the HMAC-SHA256 signature Zoho sends with each webhook"),
    PATH("webhooks.hmac_secret_file", webhooks.hmac_secret_file, "", false,
         "file whose first line is the HMAC key (mode 600)"),
    INT("webhooks.max_connections", webhooks.max_connections, "64", 1, 10000, false, NULL,
        "concurrent connections the listener accepts"),
    INT("webhooks.max_connections_per_peer", webhooks.max_connections_per_peer, "16", 1, 10000,
        false, NULL, "concurrent connections the listener accepts from one client address"),
    INT("webhooks.request_timeout_seconds", webhooks.request_timeout_seconds, "30", 1, 3600,
        false, NULL, "time a client has to send a whole request (headers and body)"),

    /* alerts: thresholds of the alert rules; 0 turns a rule off */
    INT("alerts.failure_rate_percent", alerts.failure_rate_percent, "10", 0, 100, true, NULL,
        "alert when this percentage of queue items fail within the window; 0 off"),
    INT("alerts.failure_window_minutes", alerts.failure_window_minutes, "15", 1, 1440, true, NULL,
        "window of the failure rate rule, in minutes"),
    INT("alerts.queue_backlog", alerts.queue_backlog, "10000", 0, 100000000, true, NULL,
        "alert when more items than this are pending; 0 off"),
    INT("alerts.oldest_pending_minutes", alerts.oldest_pending_minutes, "30", 0, 10080, true, NULL,
        "alert when the oldest pending item is older than this; 0 off"),
    INT("alerts.processing_stuck_minutes", alerts.processing_stuck_minutes, "60", 0, 10080, true,
        NULL, "alert when an item has been processing longer than this; 0 off"),
    INT("alerts.dlq_growth_per_hour", alerts.dlq_growth_per_hour, "10", 0, 1000000, true, NULL,
        "alert when more dead letters than this arrive in an hour; 0 off"),
    INT("alerts.heartbeat_missing_seconds", alerts.heartbeat_missing_seconds, "60", 0, 86400, true,
        NULL, "alert when an engine has not sent a heartbeat for this long; 0 off"),
    INT("alerts.daily_budget_percent", alerts.daily_budget_percent, "80", 0, 100, true, NULL,
        "alert when this share of the daily API budget is used; 0 off"),
    INT("alerts.drift_percent", alerts.drift_percent, "1", 0, 100, true, NULL,
        "alert when reconcile finds counts differing by more than this; 0 off"),
    URL("alerts.notify_url", alerts.notify_url, true,
        "URL that receives a JSON POST for every new alert; empty off"),

    /* console */
    STR("console.theme", console.theme, "default", true, NULL,
        "colour theme: a name from the themes directory or a path to a theme file"),
    INT("console.refresh_ms", console.refresh_ms, "1000", 100, 60000, true, NULL,
        "milliseconds between refreshes of the panes"),
    BOOL("console.read_only", console.read_only, "false", true, NULL,
         "the console shows but refuses every action"),

    /* log */
    ENUM("log.level", log.level, "info", log_levels, true, "TDS_LOG_LEVEL",
         "lowest level written: debug info warn error"),
    PATH("log.file", log.file, "", true, "log file (appended); empty writes to stderr"),
};
/* clang-format on */

/* Returns the schema table and stores its length in *n.  Can't fail. */
const struct config_key *config_schema(size_t *n)
{
    *n = TDS_ARRAY_LEN(schema);
    return schema;
}

/* Returns a short name of a type ("integer", "boolean"...), never NULL. */
const char *config_type_name(enum config_type t)
{
    switch (t) {
    case CFG_STRING:
        return "string";
    case CFG_SECRET:
        return "secret";
    case CFG_PATH:
        return "path";
    case CFG_URL:
        return "URL";
    case CFG_INT:
        return "integer";
    case CFG_BOOL:
        return "boolean";
    case CFG_ENUM:
        return "enum";
    case CFG_CRON:
        return "cron";
    case CFG_LISTEN:
        return "host:port";
    }
    return "?";
}
