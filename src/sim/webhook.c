/*
 * webhook.c: sends a webhook for every record the control endpoint changes,
 * as Zoho's workflow rules do: POST to one URL with the default JSON payload
 * ({"item":{...}}) or form-encoded fields, an optional secret header and an
 * optional X-Zoho-Webhook-Signature (hex HMAC-SHA256 of the raw body).  A
 * background thread with libcurl drains a queue, so no request ever waits.
 */
#include "sim.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "tds/log.h"
#include "tds/sha256.h"

struct hook {
    struct hook *next;
    char *body;
    const char *event;
    bool form;
};

static struct {
    char *url, *secret, *hmac;
    bool form, running, stopping;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct hook *head, *tail;
    long sent, failed, queued;
} wh = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

static void url_encode(struct strbuf *sb, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '_' || c == '.' || c == '~') {
            strbuf_putc(sb, (char)c);
        } else {
            strbuf_putc(sb, '%');
            strbuf_putc(sb, hex[c >> 4]);
            strbuf_putc(sb, hex[c & 15]);
        }
    }
}

/* Form payload: the record's top-level scalar fields, key=value&... */
static char *form_body(const char *detail)
{
    cJSON *o = cJSON_Parse(detail);
    struct strbuf sb = {0};
    const cJSON *f;
    cJSON_ArrayForEach(f, o)
    {
        if (cJSON_IsArray(f) || cJSON_IsObject(f))
            continue;
        if (sb.len)
            strbuf_putc(&sb, '&');
        url_encode(&sb, f->string);
        strbuf_putc(&sb, '=');
        if (cJSON_IsString(f)) {
            url_encode(&sb, f->valuestring);
        } else {
            struct strbuf v = {0};
            sim_json_render(&v, f, f->string);
            url_encode(&sb, v.buf);
            strbuf_free(&v);
        }
    }
    cJSON_Delete(o);
    return strbuf_detach(&sb);
}

static size_t discard(char *p, size_t size, size_t n, void *ud)
{
    (void)p;
    (void)ud;
    return size * n;
}

static void send_one(CURL *c, const struct hook *h)
{
    struct curl_slist *hdr = NULL;
    hdr = curl_slist_append(hdr, h->form ? "Content-Type: application/x-www-form-urlencoded"
                                         : "Content-Type: application/json;charset=UTF-8");
    char *line = xasprintf("X-Sim-Event: %s", h->event);
    hdr = curl_slist_append(hdr, line);
    free(line);
    if (wh.secret) {
        line = xasprintf("X-TDS-Webhook-Secret: %s", wh.secret);
        hdr = curl_slist_append(hdr, line);
        free(line);
    }
    if (wh.hmac) {
        unsigned char mac[SHA256_DIGEST_LEN];
        char hex[SHA256_HEX_LEN + 1];
        hmac_sha256(wh.hmac, strlen(wh.hmac), h->body, strlen(h->body), mac);
        sha256_hex(mac, sizeof(mac), hex);
        line = xasprintf("X-Zoho-Webhook-Signature: %s", hex);
        hdr = curl_slist_append(hdr, line);
        free(line);
    }
    curl_easy_setopt(c, CURLOPT_URL, wh.url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdr);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, h->body);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(h->body));
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 10L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
    CURLcode rc = curl_easy_perform(c);
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(hdr);
    pthread_mutex_lock(&wh.mu);
    if (rc == CURLE_OK && status >= 200 && status < 300)
        wh.sent++;
    else
        wh.failed++;
    pthread_mutex_unlock(&wh.mu);
    if (rc != CURLE_OK || status < 200 || status >= 300)
        log_warn("webhook to %s failed: %s (HTTP %ld)", wh.url,
                 rc != CURLE_OK ? curl_easy_strerror(rc) : "status", status);
}

static void *sender(void *arg)
{
    (void)arg;
    CURL *c = curl_easy_init();
    pthread_mutex_lock(&wh.mu);
    for (;;) {
        while (!wh.head && !wh.stopping)
            pthread_cond_wait(&wh.cv, &wh.mu);
        if (!wh.head)
            break;
        struct hook *h = wh.head;
        wh.head = h->next;
        if (!wh.head)
            wh.tail = NULL;
        wh.queued--;
        pthread_mutex_unlock(&wh.mu);
        if (c)
            send_one(c, h);
        free(h->body);
        free(h);
        pthread_mutex_lock(&wh.mu);
    }
    pthread_mutex_unlock(&wh.mu);
    if (c)
        curl_easy_cleanup(c);
    return NULL;
}

bool sim_webhook_start(const char *url, bool form, const char *secret, const char *hmac)
{
    if (!url)
        return true;
    if (!str_starts_with(url, "http://") && !str_starts_with(url, "https://"))
        return false;
    wh.url = xstrdup(url);
    wh.form = form;
    wh.secret = secret ? xstrdup(secret) : NULL;
    wh.hmac = hmac ? xstrdup(hmac) : NULL;
    if (pthread_create(&wh.thread, NULL, sender, NULL) != 0)
        return false;
    wh.running = true;
    return true;
}

void sim_webhook_queue(int ent, const char *event, const char *detail, size_t len)
{
    if (!wh.running)
        return;
    struct hook *h = xcalloc(1, sizeof(*h));
    h->event = event;
    h->form = wh.form;
    if (wh.form) {
        h->body = form_body(detail);
    } else {
        struct strbuf sb = {0};
        strbuf_putc(&sb, '{');
        sim_json_string(&sb, sim_entities[ent].singular);
        strbuf_putc(&sb, ':');
        strbuf_append(&sb, detail, len);
        strbuf_putc(&sb, '}');
        h->body = strbuf_detach(&sb);
    }
    pthread_mutex_lock(&wh.mu);
    if (wh.tail)
        wh.tail->next = h;
    else
        wh.head = h;
    wh.tail = h;
    wh.queued++;
    pthread_cond_signal(&wh.cv);
    pthread_mutex_unlock(&wh.mu);
}

void sim_webhook_stop(void)
{
    if (wh.running) {
        pthread_mutex_lock(&wh.mu);
        wh.stopping = true;
        /* Drop what was not sent: a stop is a stop. */
        while (wh.head) {
            struct hook *h = wh.head;
            wh.head = h->next;
            free(h->body);
            free(h);
        }
        wh.tail = NULL;
        wh.queued = 0;
        pthread_cond_signal(&wh.cv);
        pthread_mutex_unlock(&wh.mu);
        pthread_join(wh.thread, NULL);
        wh.running = false;
    }
    free(wh.url);
    free(wh.secret);
    free(wh.hmac);
    wh.url = wh.secret = wh.hmac = NULL;
}

void sim_webhook_counts(long *sent, long *failed, long *queued)
{
    pthread_mutex_lock(&wh.mu);
    *sent = wh.sent;
    *failed = wh.failed;
    *queued = wh.queued;
    pthread_mutex_unlock(&wh.mu);
}
