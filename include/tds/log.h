/*
 * log.h: levelled logging to a file or stderr, one locked write per line,
 * with a per-thread context prefix (engine instance, worker, run id) in the
 * manner of PgBouncer's slog_*, and redaction of every registered secret and
 * of anything that looks like a token before a byte is written.
 */
#ifndef TDS_LOG_H
#define TDS_LOG_H

#include <stdbool.h>

#include "tds/util.h"

enum log_level {
    TDS_LOG_DEBUG = 0,
    TDS_LOG_INFO,
    TDS_LOG_WARN,
    TDS_LOG_ERROR,
};

/* Parses "debug", "info", "warn"/"warning", "error" (any case).  False if unknown. */
bool log_level_parse(const char *s, enum log_level *out) TDS_MUST_CHECK;
const char *log_level_name(enum log_level level);

/*
 * Sends log lines to path (appending, created 0640) or to stderr when path
 * is NULL or "".  Returns 0, or -1 with *err set (caller frees) when the file
 * cannot be opened; the previous destination stays in force then.
 */
int log_open(const char *path, char **err) TDS_MUST_CHECK;
/* Reopens the current file (logrotate, SIGHUP).  Same contract as log_open. */
int log_reopen(char **err) TDS_MUST_CHECK;
/* Closes a log file and goes back to stderr.  This function can't fail. */
void log_close(void);
void log_set_level(enum log_level level);
enum log_level log_get_level(void);
/* journald mode: "<N>" priority prefixes, no timestamps (journald adds them). */
void log_set_journal(bool on);
/* When true, lines are dropped instead of written to stderr (curses owns it). */
void log_set_quiet_stderr(bool on);

/*
 * Registers a secret value: it is replaced by <redacted> wherever it appears
 * in a log line or in text passed to log_redact().  Values shorter than 4
 * bytes are ignored (too likely to appear by chance).  Thread-safe; the
 * string is copied.
 */
void log_register_secret(const char *secret);
/* Forgets every registered secret (tests). */
void log_clear_secrets(void);

/*
 * Returns a copy of s (caller frees) with registered secrets and token-like
 * fragments (Zoho-oauthtoken X, access_token=X, "refresh_token":"X", ...)
 * replaced by <redacted>.  This function can't fail.
 */
char *log_redact(const char *s);

/* Sets this thread's context prefix, e.g. "worker 3"; NULL clears it. */
void log_set_context(const char *fmt, ...) TDS_PRINTF(1, 2);

void log_msg(enum log_level level, const char *fmt, ...) TDS_PRINTF(2, 3);

#define log_debug(...) log_msg(TDS_LOG_DEBUG, __VA_ARGS__)
#define log_info(...) log_msg(TDS_LOG_INFO, __VA_ARGS__)
#define log_warn(...) log_msg(TDS_LOG_WARN, __VA_ARGS__)
#define log_error(...) log_msg(TDS_LOG_ERROR, __VA_ARGS__)

#endif
