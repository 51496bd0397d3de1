/*
 * log.c: the one place that writes log lines.  A line is formatted and
 * redacted in a private buffer, then written with a single write(2) under a
 * mutex, so lines from many threads never interleave.
 */
#include "tds/log.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "tds/sanitize.h"

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static int log_fd = -1;          /* -1: stderr */
static char *log_path;
static enum log_level log_min = TDS_LOG_INFO;
static bool log_journal;
static bool log_quiet_stderr;

static pthread_mutex_t secret_lock = PTHREAD_MUTEX_INITIALIZER;
static char **secrets;
static size_t nsecrets;

static _Thread_local char log_ctx[96];

static const char *const level_names[] = {"debug", "info", "warn", "error"};
/* journald/syslog priorities: debug 7, info 6, warning 4, err 3 */
static const int level_prio[] = {7, 6, 4, 3};

bool log_level_parse(const char *s, enum log_level *out)
{
    if (s == NULL)
        return false;
    for (size_t i = 0; i < TDS_ARRAY_LEN(level_names); i++) {
        if (strcasecmp(s, level_names[i]) == 0) {
            *out = (enum log_level)i;
            return true;
        }
    }
    if (strcasecmp(s, "warning") == 0) {
        *out = TDS_LOG_WARN;
        return true;
    }
    return false;
}

const char *log_level_name(enum log_level level)
{
    if ((unsigned)level >= TDS_ARRAY_LEN(level_names))
        return "?";
    return level_names[level];
}

int log_open(const char *path, char **err)
{
    int fd = -1;
    if (!str_empty(path)) {
        fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
        if (fd < 0) {
            if (err)
                *err = xasprintf("%s: cannot open log file: %s", path, strerror(errno));
            return -1;
        }
    }
    pthread_mutex_lock(&log_lock);
    if (log_fd >= 0)
        close(log_fd);
    log_fd = fd;
    free(log_path);
    log_path = str_empty(path) ? NULL : xstrdup(path);
    pthread_mutex_unlock(&log_lock);
    return 0;
}

int log_reopen(char **err)
{
    pthread_mutex_lock(&log_lock);
    char *path = log_path ? xstrdup(log_path) : NULL;
    pthread_mutex_unlock(&log_lock);
    int rc = log_open(path, err);
    free(path);
    return rc;
}

void log_close(void)
{
    pthread_mutex_lock(&log_lock);
    if (log_fd >= 0)
        close(log_fd);
    log_fd = -1;
    free(log_path);
    log_path = NULL;
    pthread_mutex_unlock(&log_lock);
}

void log_set_level(enum log_level level)
{
    log_min = level;
}

enum log_level log_get_level(void)
{
    return log_min;
}

void log_set_journal(bool on)
{
    log_journal = on;
}

void log_set_quiet_stderr(bool on)
{
    log_quiet_stderr = on;
}

void log_register_secret(const char *secret)
{
    if (secret == NULL || strlen(secret) < 4)
        return;
    pthread_mutex_lock(&secret_lock);
    for (size_t i = 0; i < nsecrets; i++) {
        if (strcmp(secrets[i], secret) == 0) {
            pthread_mutex_unlock(&secret_lock);
            return;
        }
    }
    secrets = xreallocarray(secrets, nsecrets + 1, sizeof *secrets);
    secrets[nsecrets++] = xstrdup(secret);
    pthread_mutex_unlock(&secret_lock);
}

void log_clear_secrets(void)
{
    pthread_mutex_lock(&secret_lock);
    for (size_t i = 0; i < nsecrets; i++)
        free(secrets[i]);
    free(secrets);
    secrets = NULL;
    nsecrets = 0;
    pthread_mutex_unlock(&secret_lock);
}

/* Token-looking fragments: after one of these markers, the value is redacted. */
static const char *const token_markers[] = {
    "Zoho-oauthtoken ", "Bearer ",           "access_token=",   "refresh_token=",
    "client_secret=",   "secret=",           "password=",           "\"access_token\"", "\"refresh_token\"",
    "\"client_secret\"", "\"secret\"",       "X-TDS-Webhook-Secret:", "X-Zoho-Webhook-Signature:",
};

static bool is_value_char(char c)
{
    return c != '\0' && c != '&' && c != '"' && c != '\'' && c != ',' && c != '}' &&
           !isspace((unsigned char)c);
}

/* Copies in to out, replacing the value that follows each marker. */
static void redact_markers(const char *in, struct strbuf *out)
{
    const char *p = in;
    while (*p) {
        const char *best = NULL;
        size_t best_len = 0;
        for (size_t i = 0; i < TDS_ARRAY_LEN(token_markers); i++) {
            const char *m = strcasestr(p, token_markers[i]);
            if (m && (best == NULL || m < best)) {
                best = m;
                best_len = strlen(token_markers[i]);
            }
        }
        if (best == NULL) {
            strbuf_puts(out, p);
            return;
        }
        strbuf_append(out, p, (size_t)(best - p) + best_len);
        const char *v = best + best_len;
        /* JSON form: "key" : "value" */
        if (best[0] == '"') {
            const char *q = v;
            while (*q == ' ' || *q == ':')
                q++;
            if (*q == '"') {
                strbuf_append(out, v, (size_t)(q - v) + 1);
                v = q + 1;
            } else {
                p = v;
                continue;
            }
        } else {
            while (*v == ' ') {
                strbuf_putc(out, ' ');
                v++;
            }
        }
        const char *e = v;
        while (is_value_char(*e))
            e++;
        if (e > v)
            strbuf_puts(out, "<redacted>");
        p = e;
    }
}

char *log_redact(const char *s)
{
    struct strbuf a = {0}, b = {0};
    strbuf_puts(&a, s ? s : "");
    pthread_mutex_lock(&secret_lock);
    for (size_t i = 0; i < nsecrets; i++) {
        const char *sec = secrets[i];
        size_t sl = strlen(sec);
        if (strstr(a.buf, sec) == NULL)
            continue;
        strbuf_reset(&b);
        const char *p = a.buf, *m;
        while ((m = strstr(p, sec)) != NULL) {
            strbuf_append(&b, p, (size_t)(m - p));
            strbuf_puts(&b, "<redacted>");
            p = m + sl;
        }
        strbuf_puts(&b, p);
        struct strbuf t = a;
        a = b;
        b = t;
    }
    pthread_mutex_unlock(&secret_lock);
    strbuf_reset(&b);
    redact_markers(a.buf, &b);
    strbuf_free(&a);
    return strbuf_detach(&b);
}

void log_set_context(const char *fmt, ...)
{
    if (fmt == NULL) {
        log_ctx[0] = '\0';
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(log_ctx, sizeof log_ctx, fmt, ap);
    va_end(ap);
}

void log_msg(enum log_level level, const char *fmt, ...)
{
    if (level < log_min)
        return;
    va_list ap;
    va_start(ap, fmt);
    char *msg = xvasprintf(fmt, ap);
    va_end(ap);
    char *redacted = log_redact(msg);
    free(msg);
    /* One line, through the one sanitizer: no newline, control, C1, bidi
     * or invalid UTF-8 from Zoho reaches a terminal showing the log. */
    char *clean = sanitize_str(redacted, 0);
    free(redacted);

    struct strbuf line = {0};
    if (log_journal && log_fd < 0) {
        strbuf_printf(&line, "<%d>", level_prio[level]);
    } else {
        struct timespec ts;
        struct tm tm;
        clock_gettime(CLOCK_REALTIME, &ts);
        gmtime_r(&ts.tv_sec, &tm);
        char when[32];
        strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
        strbuf_printf(&line, "%s.%03ldZ %-5s ", when, ts.tv_nsec / 1000000,
                      log_level_name(level));
    }
    if (log_ctx[0])
        strbuf_printf(&line, "[%s] ", log_ctx);
    strbuf_puts(&line, clean);
    strbuf_putc(&line, '\n');
    free(clean);

    pthread_mutex_lock(&log_lock);
    int fd = log_fd >= 0 ? log_fd : (log_quiet_stderr ? -1 : STDERR_FILENO);
    if (fd >= 0) {
        size_t off = 0;
        while (off < line.len) {
            ssize_t n = write(fd, line.buf + off, line.len - off);
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0)
                break;
            off += (size_t)n;
        }
    }
    pthread_mutex_unlock(&log_lock);
    strbuf_free(&line);
}
