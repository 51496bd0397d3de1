/*
 * policy.c: the pure decisions of the Zoho client, kept apart from I/O so
 * the unit tests can drive them with tables: how an answer is classified
 * (retry, refresh, wait for the next minute, give up), the backoff schedule
 * with full jitter, Retry-After, the pacing arithmetic of the rate limiter,
 * Zoho's time format and page_context.
 */
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "zoho_internal.h"

enum zoho_action zoho_classify(bool transport_ok, long http_status, int zoho_code, bool body_ok,
                               enum zoho_err_kind *kind)
{
    if (!transport_ok) {
        *kind = ZOHO_ERR_NETWORK;
        return ZA_RETRY;
    }
    if (http_status == 401) {
        *kind = ZOHO_ERR_AUTH;
        return ZA_REFRESH;
    }
    if (http_status == 429) {
        switch (zoho_code) {
        case 44: *kind = ZOHO_ERR_RATE_MINUTE; return ZA_WAIT_MINUTE;
        case 45: *kind = ZOHO_ERR_RATE_DAY; return ZA_FAIL_DAY;
        case 1070: *kind = ZOHO_ERR_RATE_CONCURRENCY; return ZA_RETRY_SHORT;
        default: *kind = ZOHO_ERR_RATE_MINUTE; return ZA_RETRY;
        }
    }
    if (http_status >= 500) {
        *kind = ZOHO_ERR_SERVER;
        return ZA_RETRY;
    }
    if (http_status == 408) {
        *kind = ZOHO_ERR_NETWORK;
        return ZA_RETRY;
    }
    if (http_status >= 200 && http_status < 300) {
        if (!body_ok) {
            *kind = ZOHO_ERR_BAD_RESPONSE;
            return ZA_RETRY;
        }
        if (zoho_code > 0) {
            *kind = ZOHO_ERR_API;
            return ZA_FAIL;
        }
        *kind = ZOHO_ERR_NONE;
        return ZA_OK;
    }
    if (http_status == 404) {
        /* A 404 without Zoho's JSON is a proxy or a wrong base URL, not a
         * missing record: report it as an API error. */
        *kind = body_ok ? ZOHO_ERR_NOT_FOUND : ZOHO_ERR_API;
        return ZA_FAIL;
    }
    if (http_status >= 400) {
        *kind = ZOHO_ERR_API;
        return ZA_FAIL;
    }
    /* 1xx/3xx: we follow no redirects; this is not Zoho. */
    *kind = ZOHO_ERR_BAD_RESPONSE;
    return ZA_FAIL;
}

uint64_t zoho_rng_next(uint64_t *rng)
{
    /* xorshift64* */
    uint64_t x = *rng ? *rng : 0x9E3779B97F4A7C15ull;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *rng = x;
    return x * 0x2545F4914F6CDD1Dull;
}

long long zoho_backoff_ms(int attempt, int base_ms, int max_ms, uint64_t *rng)
{
    if (attempt < 1)
        attempt = 1;
    long long cap = base_ms;
    for (int i = 1; i < attempt && cap < max_ms; i++)
        cap *= 2;
    if (cap > max_ms)
        cap = max_ms;
    if (cap <= 0)
        return 0;
    return (long long)(zoho_rng_next(rng) % (uint64_t)(cap + 1));
}

long long zoho_parse_retry_after(const char *v, long long now_wall_ms)
{
    long long s;
    if (v == NULL || *v == '\0')
        return -1;
    if (str_to_ll(v, &s))
        return s < 0 ? -1 : s * 1000;
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    const char *end = strptime(v, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    if (end == NULL || *end != '\0')
        return -1;
    long long at = (long long)timegm(&tm) * 1000;
    return at > now_wall_ms ? at - now_wall_ms : 0;
}

static long long json_ll(const cJSON *v)
{
    long long n = 0;
    if (cJSON_IsNumber(v) && v->valuedouble > 0 && v->valuedouble < 1e15)
        return (long long)v->valuedouble;
    if (cJSON_IsString(v) && str_to_ll(v->valuestring, &n) && n > 0)
        return n;
    return 0;
}

long long zoho_token_ttl_s(const cJSON *doc)
{
    long long s = json_ll(cJSON_GetObjectItemCaseSensitive(doc, "expires_in_sec"));
    if (s == 0) {
        s = json_ll(cJSON_GetObjectItemCaseSensitive(doc, "expires_in"));
        if (s > 86400)
            s /= 1000; /* milliseconds */
    }
    if (s == 0)
        return 3600;
    return s > 86400 ? 86400 : s;
}

long long zoho_rate_interval_us(int per_minute, int headroom_pct)
{
    if (per_minute < 1)
        per_minute = 1;
    if (headroom_pct < 1 || headroom_pct > 100)
        headroom_pct = 100;
    /* 60 s spread over per_minute * headroom% slots, rounded up. */
    long long num = 60LL * 1000000 * 100;
    long long den = (long long)per_minute * headroom_pct;
    return (num + den - 1) / den;
}

int zoho_rate_slice(int per_minute)
{
    /* A quarter second of the fleet's rate: few round trips, little waste. */
    int k = per_minute / 240;
    if (k < 1)
        k = 1;
    if (k > 10)
        k = 10;
    return k;
}

int zoho_rate_share(int concurrency, int live_engines)
{
    if (live_engines < 1)
        live_engines = 1;
    int s = concurrency / live_engines;
    return s < 1 ? 1 : s;
}

long long zoho_pace_reserve(long long *tat_us, long long now_us, long long interval_us, int k)
{
    long long first = *tat_us > now_us ? *tat_us : now_us;
    *tat_us = first + interval_us * (k < 1 ? 1 : k);
    return first;
}

static bool digits(const char *s, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return true;
}

bool zoho_time_parse(const char *s, long long *out)
{
    int Y, M, D, h, m, sec;
    if (s == NULL || strlen(s) < 19)
        return false;
    if (!digits(s, 4, &Y) || s[4] != '-' || !digits(s + 5, 2, &M) || s[7] != '-' ||
        !digits(s + 8, 2, &D) || (s[10] != 'T' && s[10] != ' ') || !digits(s + 11, 2, &h) ||
        s[13] != ':' || !digits(s + 14, 2, &m) || s[16] != ':' || !digits(s + 17, 2, &sec))
        return false;
    if (M < 1 || M > 12 || D < 1 || D > 31 || h > 23 || m > 59 || sec > 60)
        return false;
    const char *p = s + 19;
    if (*p == '.') { /* fractional seconds: ignored */
        p++;
        while (*p >= '0' && *p <= '9')
            p++;
    }
    long long off = 0;
    if (*p == 'Z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int oh, om;
        int sign = *p == '-' ? -1 : 1;
        p++;
        if (!digits(p, 2, &oh))
            return false;
        p += 2;
        if (*p == ':')
            p++;
        if (!digits(p, 2, &om))
            return false;
        p += 2;
        off = sign * (oh * 3600LL + om * 60LL);
    }
    if (*p != '\0')
        return false;
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    tm.tm_year = Y - 1900;
    tm.tm_mon = M - 1;
    tm.tm_mday = D;
    tm.tm_hour = h;
    tm.tm_min = m;
    tm.tm_sec = sec;
    *out = (long long)timegm(&tm) - off;
    return true;
}

static int json_int(const cJSON *o, const char *key, bool *present)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    long long x;
    *present = true;
    /* Clamped: a page_context that lies must not overflow an int (UB). */
    if (cJSON_IsNumber(v)) {
        double d = v->valuedouble;
        return d != d ? 0 : d >= INT_MAX ? INT_MAX : d <= INT_MIN ? INT_MIN : (int)d;
    }
    if (cJSON_IsString(v) && str_to_ll(v->valuestring, &x))
        return x >= INT_MAX ? INT_MAX : x <= INT_MIN ? INT_MIN : (int)x;
    *present = false;
    return 0;
}

void zoho_page_ctx_parse(const cJSON *doc, struct zoho_page_ctx *out)
{
    memset(out, 0, sizeof *out);
    const cJSON *pc = cJSON_GetObjectItemCaseSensitive(doc, "page_context");
    if (!cJSON_IsObject(pc))
        return;
    bool ok;
    out->present = true;
    out->page = json_int(pc, "page", &ok);
    out->per_page = json_int(pc, "per_page", &ok);
    const cJSON *hm = cJSON_GetObjectItemCaseSensitive(pc, "has_more_page");
    if (cJSON_IsBool(hm)) {
        out->has_more = cJSON_IsTrue(hm);
        out->has_more_present = true;
    } else if (cJSON_IsString(hm)) {
        out->has_more = strcasecmp(hm->valuestring, "true") == 0;
        out->has_more_present = true;
    } else if (cJSON_IsNumber(hm)) {
        out->has_more = hm->valuedouble != 0;
        out->has_more_present = true;
    }
}

const char *zoho_err_kind_name(enum zoho_err_kind kind)
{
    switch (kind) {
    case ZOHO_ERR_NONE: return "none";
    case ZOHO_ERR_AUTH: return "auth";
    case ZOHO_ERR_TOKEN: return "token";
    case ZOHO_ERR_MINT_LIMIT: return "mint_limit";
    case ZOHO_ERR_RATE_MINUTE: return "rate_minute";
    case ZOHO_ERR_RATE_DAY: return "rate_day";
    case ZOHO_ERR_RATE_CONCURRENCY: return "rate_concurrency";
    case ZOHO_ERR_NOT_FOUND: return "not_found";
    case ZOHO_ERR_API: return "api";
    case ZOHO_ERR_SERVER: return "server";
    case ZOHO_ERR_NETWORK: return "network";
    case ZOHO_ERR_BAD_RESPONSE: return "bad_response";
    case ZOHO_ERR_PAGING: return "paging";
    case ZOHO_ERR_DB: return "db";
    case ZOHO_ERR_CANCELLED: return "cancelled";
    case ZOHO_ERR_ARG: return "arg";
    case ZOHO_ERR_SCOPE: return "scope";
    case ZOHO_ERR_BLOCKED: return "blocked";
    }
    return "unknown";
}
