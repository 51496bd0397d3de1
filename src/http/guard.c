/*
 * guard.c: the listener under hostile clients (issue 18).  libmicrohttpd
 * only knows an idle timeout and a connection limit, so a client sending a
 * header byte every few seconds holds a slot for ever, and enough of them
 * hold all of them.  The guard follows every connection (its socket
 * context, MHD_OPTION_NOTIFY_CONNECTION) and a timer thread
 *
 *   - closes a connection whose request (headers and body) has not arrived
 *     within webhooks.request_timeout_seconds of its first byte (or of the
 *     end of the previous request on a kept-alive connection), however
 *     steadily it trickles;
 *   - keeps room: when more than room_at connections are open (all but one
 *     eighth of webhooks.max_connections, at least 2 kept back), the oldest
 *     that are still receiving a request and older than
 *     HTTP_EVICT_MIN_AGE_MS are closed, so a new client (Zoho, a health
 *     checker) always finds a free slot; a request that has arrived whole is
 *     never closed;
 *   - logs what it refused at a bounded rate: one summary line per
 *     HTTP_SUMMARY_MS with counts, and libmicrohttpd's messages (a refused
 *     connection is one each) once per kind and window, then counted.
 *
 * Connections are closed with shutdown(2) on their socket, under the
 * guard's mutex; libmicrohttpd notifies MHD_CONNECTION_NOTIFY_CLOSED (which
 * takes the same mutex) before it closes the socket, so the descriptor is
 * still the connection's.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "http_internal.h"
#include "tds/log.h"

static struct http_conn *conn_of(struct MHD_Connection *c)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return ci ? ci->socket_context : NULL;
}

static void shut(struct http_conn *hc)
{
    hc->closing = true;
    if (hc->fd >= 0)
        shutdown(hc->fd, SHUT_RDWR);
}

/* Closes the oldest receiving connections until at most room_at remain.
 * Under g->mu. */
static void make_room(struct http_guard *g, long long now)
{
    int live = 0;
    for (struct http_conn *hc = g->head; hc; hc = hc->next)
        live += !hc->closing;
    for (struct http_conn *hc = g->head; hc && live > g->room_at; hc = hc->next) {
        if (hc->closing || hc->phase != CONN_RECEIVING || now - hc->since_ms < HTTP_EVICT_MIN_AGE_MS)
            continue;
        shut(hc);
        live--;
        g->evicted++;
    }
}

void guard_notify(void *cls, struct MHD_Connection *c, void **socket_context,
                  enum MHD_ConnectionNotificationCode code)
{
    struct http_server *s = cls;
    struct http_guard *g = &s->guard;
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        struct http_conn *hc = xcalloc(1, sizeof *hc);
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
        hc->fd = ci ? (int)ci->connect_fd : -1;
        hc->since_ms = time_mono_ms();
        hc->phase = CONN_RECEIVING;
        pthread_mutex_lock(&g->mu);
        hc->prev = g->tail;
        if (g->tail)
            g->tail->next = hc;
        else
            g->head = hc;
        g->tail = hc;
        g->nconn++;
        if (g->nconn > g->room_at)
            make_room(g, hc->since_ms);
        pthread_mutex_unlock(&g->mu);
        *socket_context = hc;
        return;
    }
    struct http_conn *hc = *socket_context;
    if (hc == NULL)
        return;
    pthread_mutex_lock(&g->mu);
    if (hc->prev)
        hc->prev->next = hc->next;
    else
        g->head = hc->next;
    if (hc->next)
        hc->next->prev = hc->prev;
    else
        g->tail = hc->prev;
    g->nconn--;
    pthread_mutex_unlock(&g->mu);
    *socket_context = NULL;
    free(hc);
}

void guard_set_phase(struct http_server *s, struct MHD_Connection *c, enum http_conn_phase ph)
{
    struct http_conn *hc = conn_of(c);
    if (hc == NULL)
        return;
    pthread_mutex_lock(&s->guard.mu);
    hc->phase = ph;
    if (ph == CONN_RECEIVING)
        hc->since_ms = time_mono_ms();
    pthread_mutex_unlock(&s->guard.mu);
}

bool guard_audit_allowed(struct http_server *s)
{
    struct http_guard *g = &s->guard;
    long long now = time_mono_ms();
    pthread_mutex_lock(&g->mu);
    g->audit_tokens += (double)(now - g->audit_at_ms) * HTTP_AUDIT_PER_S / 1000.0;
    if (g->audit_tokens > HTTP_AUDIT_BURST)
        g->audit_tokens = HTTP_AUDIT_BURST;
    g->audit_at_ms = now;
    bool ok = g->audit_tokens >= 1.0;
    if (ok)
        g->audit_tokens -= 1.0;
    else
        g->audit_dropped++;
    pthread_mutex_unlock(&g->mu);
    return ok;
}

/* One line without its trailing newline. */
static char *chomp(char *m)
{
    size_t n = strlen(m);
    while (n > 0 && (m[n - 1] == '\n' || m[n - 1] == '\r'))
        m[--n] = '\0';
    return m;
}

void guard_mhd_log(struct http_server *s, const char *fmt, va_list ap)
{
    struct http_guard *g = &s->guard;
    char *m = chomp(xvasprintf(fmt, ap));
    bool print = false;
    pthread_mutex_lock(&g->mu);
    size_t n = TDS_ARRAY_LEN(g->mhd_msgs), i;
    for (i = 0; i < n && g->mhd_msgs[i].fmt != NULL && g->mhd_msgs[i].fmt != fmt; i++)
        ;
    if (i == n) {
        i = n - 1; /* table full: the last slot counts the rest */
        g->mhd_msgs[i].count++;
    } else if (g->mhd_msgs[i].fmt == NULL) {
        g->mhd_msgs[i].fmt = fmt;
        g->mhd_msgs[i].first = xstrdup(m);
        print = true;
    } else {
        g->mhd_msgs[i].count++;
    }
    pthread_mutex_unlock(&g->mu);
    if (print)
        log_warn("http: %s", m);
    free(m);
}

/* The summary of the window, or NULL when nothing happened.  Under g->mu. */
static char *take_summary(struct http_guard *g)
{
    struct strbuf b = {0};
    if (g->timed_out)
        strbuf_printf(&b, "%s%lld connection%s closed for not sending a whole request within "
                      "webhooks.request_timeout_seconds", b.len ? "; " : "", g->timed_out,
                      g->timed_out == 1 ? "" : "s");
    if (g->evicted)
        strbuf_printf(&b, "%s%lld slow connection%s closed to keep room for new clients "
                      "(webhooks.max_connections)", b.len ? "; " : "", g->evicted,
                      g->evicted == 1 ? "" : "s");
    if (g->audit_dropped)
        strbuf_printf(&b, "%s%lld rejected request%s answered without an inbox row or log "
                      "line (at most %.0f a second are recorded)", b.len ? "; " : "",
                      g->audit_dropped, g->audit_dropped == 1 ? "" : "s", HTTP_AUDIT_PER_S);
    for (size_t i = 0; i < TDS_ARRAY_LEN(g->mhd_msgs); i++) {
        if (g->mhd_msgs[i].fmt && g->mhd_msgs[i].count)
            strbuf_printf(&b, "%slibmicrohttpd said %lld more time%s: %s", b.len ? "; " : "",
                          g->mhd_msgs[i].count, g->mhd_msgs[i].count == 1 ? "" : "s",
                          g->mhd_msgs[i].first);
        free(g->mhd_msgs[i].first);
        g->mhd_msgs[i].first = NULL;
        g->mhd_msgs[i].fmt = NULL;
        g->mhd_msgs[i].count = 0;
    }
    g->timed_out = g->evicted = g->audit_dropped = 0;
    if (b.len == 0) {
        strbuf_free(&b);
        return NULL;
    }
    return b.buf;
}

static void flush_summary(struct http_guard *g)
{
    pthread_mutex_lock(&g->mu);
    char *line = take_summary(g);
    g->summary_at_ms = time_mono_ms();
    pthread_mutex_unlock(&g->mu);
    if (line)
        log_warn("http: in the last %d s: %s", HTTP_SUMMARY_MS / 1000, line);
    free(line);
}

static void *timer_main(void *arg)
{
    struct http_server *s = arg;
    struct http_guard *g = &s->guard;
    log_set_context("%s%shttp guard", s->instance, str_empty(s->instance) ? "" : " ");
    pthread_mutex_lock(&g->mu);
    while (!g->stop) {
        struct timespec ts = http_mono_after(200);
        pthread_cond_timedwait(&g->cv, &g->mu, &ts);
        if (g->stop)
            break;
        long long now = time_mono_ms();
        for (struct http_conn *hc = g->head; hc; hc = hc->next) {
            if (!hc->closing && hc->phase == CONN_RECEIVING &&
                now - hc->since_ms > g->request_ms) {
                shut(hc);
                g->timed_out++;
            }
        }
        make_room(g, now);
        if (now - g->summary_at_ms >= HTTP_SUMMARY_MS) {
            pthread_mutex_unlock(&g->mu);
            flush_summary(g);
            pthread_mutex_lock(&g->mu);
        }
    }
    pthread_mutex_unlock(&g->mu);
    return NULL;
}

int guard_start(struct http_server *s, char **err)
{
    struct http_guard *g = &s->guard;
    pthread_mutex_init(&g->mu, NULL);
    http_cond_init_mono(&g->cv);
    int maxc = s->cfg->webhooks.max_connections > 0 ? s->cfg->webhooks.max_connections : 64;
    int keep = maxc / 8 < 2 ? 2 : maxc / 8;
    g->room_at = maxc - keep < 1 ? 1 : maxc - keep;
    int rt = s->cfg->webhooks.request_timeout_seconds > 0
                 ? s->cfg->webhooks.request_timeout_seconds
                 : 30;
    g->request_ms = (long long)rt * 1000;
    g->audit_tokens = HTTP_AUDIT_BURST;
    g->audit_at_ms = g->summary_at_ms = time_mono_ms();
    int rc = pthread_create(&g->timer, NULL, timer_main, s);
    if (rc != 0) {
        *err = xasprintf("http: cannot start the guard thread: %s", strerror(rc));
        pthread_mutex_destroy(&g->mu);
        pthread_cond_destroy(&g->cv);
        return -1;
    }
    g->timer_started = true;
    return 0;
}

void guard_stop(struct http_server *s)
{
    struct http_guard *g = &s->guard;
    if (!g->timer_started)
        return;
    pthread_mutex_lock(&g->mu);
    g->stop = true;
    pthread_cond_broadcast(&g->cv);
    pthread_mutex_unlock(&g->mu);
    pthread_join(g->timer, NULL);
    g->timer_started = false;
    flush_summary(g);
    while (g->head) {
        struct http_conn *hc = g->head;
        g->head = hc->next;
        free(hc);
    }
    pthread_mutex_destroy(&g->mu);
    pthread_cond_destroy(&g->cv);
}
