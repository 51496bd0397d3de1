/*
 * http.c: one HTTP exchange over libcurl for the Zoho client.  Each thread
 * owns an easy handle (struct zoho_conn) and reuses it, so the TCP and TLS
 * connection to Zoho stays open between calls.  TLS verification is always
 * on; there is no switch to turn it off.  The body is collected up to a cap
 * (a JSON page or a 7 MB image) and the headers the client cares about
 * (Content-Type, Retry-After, X-Rate-Limit-*) are picked on the way.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "tds/metrics.h"
#include "zoho_internal.h"

void zoho_http_resp_init(struct zoho_http_resp *r, size_t max_body)
{
    memset(r, 0, sizeof *r);
    r->max_body = max_body;
    r->retry_after_ms = -1;
    r->rl_limit = r->rl_remaining = r->rl_reset = -1;
}

void zoho_http_resp_free(struct zoho_http_resp *r)
{
    strbuf_free(&r->body);
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *arg)
{
    struct zoho_http_resp *r = arg;
    size_t n = size * nmemb;
    if (r->body.len + n > r->max_body) {
        r->too_large = true;
        return 0; /* makes curl fail with CURLE_WRITE_ERROR */
    }
    strbuf_append(&r->body, data, n);
    return n;
}

/* "name: value\r\n" → value trimmed into out, if the name matches. */
static bool header_value(const char *line, size_t len, const char *name, char *out, size_t outsz)
{
    size_t nl = strlen(name);
    if (len <= nl || strncasecmp(line, name, nl) != 0 || line[nl] != ':')
        return false;
    const char *v = line + nl + 1;
    const char *end = line + len;
    while (v < end && (*v == ' ' || *v == '\t'))
        v++;
    while (end > v && isspace((unsigned char)end[-1]))
        end--;
    size_t n = (size_t)(end - v);
    if (n >= outsz)
        n = outsz - 1;
    memcpy(out, v, n);
    out[n] = '\0';
    return true;
}

static long long header_ll(const char *v)
{
    long long x;
    return str_to_ll(v, &x) ? x : -1;
}

static size_t on_header(char *data, size_t size, size_t nmemb, void *arg)
{
    struct zoho_http_resp *r = arg;
    size_t n = size * nmemb;
    char v[128];
    if (n >= 5 && strncmp(data, "HTTP/", 5) == 0) {
        /* A new response (after a 100 Continue or a redirect): start over. */
        r->ctype[0] = '\0';
        r->retry_after_ms = -1;
        r->rl_limit = r->rl_remaining = r->rl_reset = -1;
    } else if (header_value(data, n, "Content-Type", r->ctype, sizeof r->ctype)) {
        /* stored */
    } else if (header_value(data, n, "Retry-After", v, sizeof v)) {
        r->retry_after_ms = zoho_parse_retry_after(v, time_wall_ms());
    } else if (header_value(data, n, "X-Rate-Limit-Limit", v, sizeof v)) {
        r->rl_limit = header_ll(v);
    } else if (header_value(data, n, "X-Rate-Limit-Remaining", v, sizeof v)) {
        r->rl_remaining = header_ll(v);
    } else if (header_value(data, n, "X-Rate-Limit-Reset", v, sizeof v)) {
        r->rl_reset = header_ll(v);
    }
    return n;
}

CURL *zoho_http_handle(void)
{
    CURL *h = curl_easy_init();
    if (h == NULL) {
        fprintf(stderr, "fatal: curl_easy_init failed\n");
        abort();
    }
    return h;
}

int zoho_http_perform(CURL *h, const char *url, const char *auth, const char *post,
                      long timeout_s, struct zoho_http_resp *r)
{
    struct curl_slist *hdrs = NULL;
    char *authline = NULL;
    if (auth != NULL) {
        authline = xasprintf("Authorization: %s", auth);
        hdrs = curl_slist_append(hdrs, authline);
    }
    hdrs = curl_slist_append(hdrs, "Expect:");
    if (hdrs == NULL) {
        fprintf(stderr, "fatal: out of memory\n");
        abort();
    }

    curl_easy_reset(h); /* keeps the connection cache; clears options */
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "tds/" TDS_VERSION);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(h, CURLOPT_ACCEPT_ENCODING, "");
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, timeout_s < 10 ? timeout_s : 10L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, timeout_s);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, r->curl_err);
    if (post != NULL) {
        curl_easy_setopt(h, CURLOPT_POST, 1L);
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, post);
    }
    r->curl_err[0] = '\0';
    long long t0 = time_mono_ms();
    CURLcode cc = curl_easy_perform(h);
    metrics_observe(METRIC_API_CALL, (double)(time_mono_ms() - t0) / 1000.0);
    r->curl_code = (int)cc;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r->status);
    /* The header list and the post body must not outlive this call. */
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, NULL);
    curl_slist_free_all(hdrs);
    if (authline != NULL) {
        explicit_bzero(authline, strlen(authline));
        free(authline);
    }
    if (r->body.buf == NULL)
        strbuf_append(&r->body, "", 0);
    if (cc != CURLE_OK) {
        if (r->curl_err[0] == '\0')
            snprintf(r->curl_err, sizeof r->curl_err, "%s", curl_easy_strerror(cc));
        return -1;
    }
    return 0;
}

bool zoho_http_is_json(const char *ctype)
{
    size_t n = strlen("application/json");
    if (strncasecmp(ctype, "application/json", n) != 0)
        return false;
    return ctype[n] == '\0' || ctype[n] == ';' || ctype[n] == ' ';
}

void zoho_url_encode(struct strbuf *sb, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (isalnum(*p) || *p == '-' || *p == '_' || *p == '.' || *p == '~') {
            strbuf_putc(sb, (char)*p);
        } else {
            char enc[3] = {'%', hex[*p >> 4], hex[*p & 15]};
            strbuf_append(sb, enc, 3);
        }
    }
}
