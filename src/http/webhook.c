/*
 * webhook.c: what a webhook request deserves, decided without I/O: route,
 * method, size, secret and signature, content type, payload (Zoho's JSON
 * record or form fields), entity and id.  The listener (listener.c) stores
 * the request and the verdict; the fuzz and unit tests call this directly.
 */
#include <cjson/cJSON.h>
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "tds/http.h"
#include "tds/sha256.h"

static const char route_prefix[] = "/webhooks/zoho";

bool webhook_is_route(const char *path)
{
    size_t n = sizeof route_prefix - 1;
    return path && strncmp(path, route_prefix, n) == 0 && (path[n] == '\0' || path[n] == '/');
}

bool webhook_header_is_secret(const char *name)
{
    static const char *const names[] = {
        "X-TDS-Webhook-Secret", "X-Zoho-Webhook-Signature", "Authorization",
        "Proxy-Authorization",  "Cookie",                   "X-Api-Key",
    };
    for (size_t i = 0; i < TDS_ARRAY_LEN(names); i++)
        if (name && strcasecmp(name, names[i]) == 0)
            return true;
    return false;
}

bool webhook_utf8_valid(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        if (c == 0)
            return false;
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t len;
        unsigned cp;
        if (c >= 0xc2 && c <= 0xdf) {
            len = 2;
            cp = c & 0x1f;
        } else if (c >= 0xe0 && c <= 0xef) {
            len = 3;
            cp = c & 0x0f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            len = 4;
            cp = c & 0x07;
        } else {
            return false;
        }
        if (n - i < len)
            return false;
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                return false;
            cp = (cp << 6) | (s[i + k] & 0x3f);
        }
        if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) || cp > 0x10ffff ||
            (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        i += len;
    }
    return true;
}

bool webhook_signature_ok(const char *key, const unsigned char *body, size_t len,
                          const char *signature)
{
    if (key == NULL || signature == NULL)
        return false;
    if (strncasecmp(signature, "sha256=", 7) == 0)
        signature += 7;
    size_t slen = strlen(signature);
    if (slen != SHA256_HEX_LEN)
        return false;
    char given[SHA256_HEX_LEN + 1];
    for (size_t i = 0; i < slen; i++)
        given[i] = (char)tolower((unsigned char)signature[i]);
    given[slen] = '\0';
    unsigned char mac[SHA256_DIGEST_LEN];
    char want[SHA256_HEX_LEN + 1];
    hmac_sha256(key, strlen(key), body, len, mac);
    sha256_hex(mac, sizeof mac, want);
    return str_consttime_eq(want, SHA256_HEX_LEN, given, SHA256_HEX_LEN);
}

bool webhook_secret_ok(const struct webhook_auth *auth, const char *header, const char *query)
{
    if (auth == NULL || str_empty(auth->secret))
        return true;
    const char *given = header ? header : query;
    if (given == NULL)
        return false;
    return str_consttime_eq(auth->secret, strlen(auth->secret), given, strlen(given));
}

/*
 * Outside text (a path segment, a JSON key) for a one-line error message:
 * at most 64 bytes, cut at a character boundary, control characters and
 * broken UTF-8 as '?', so the message is valid UTF-8 for tds.inbox and one
 * line for the log.  Caller frees.
 */
static char *quoted_name(const char *s)
{
    size_t n = strlen(s), o = 0, i = 0;
    char *out = xmalloc(n < 64 ? n + 1 : 65);
    while (i < n) {
        unsigned char c = (unsigned char)s[i];
        size_t len = c < 0x80 ? 1 : c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : 2;
        bool ok = c >= 0x80 ? i + len <= n && webhook_utf8_valid((const unsigned char *)s + i, len)
                            : c >= 0x20 && c != 0x7f;
        if (!ok)
            len = 1;
        if (o + len > 64)
            break;
        if (ok)
            memcpy(out + o, s + i, len);
        else
            out[o] = '?';
        o += len;
        i += len;
    }
    out[o] = '\0';
    return out;
}

static void verdict(struct webhook_verdict *v, int status, const char *fmt, ...) TDS_PRINTF(3, 4);
static void verdict(struct webhook_verdict *v, int status, const char *fmt, ...)
{
    v->http_status = status;
    free(v->error);
    va_list ap;
    va_start(ap, fmt);
    v->error = xvasprintf(fmt, ap);
    va_end(ap);
}

/* The media type of a Content-Type value, lower-cased, without parameters. */
static char *media_type(const char *ct)
{
    if (ct == NULL)
        return xstrdup("");
    while (*ct == ' ' || *ct == '\t')
        ct++;
    size_t n = strcspn(ct, "; \t");
    char *m = xstrndup(ct, n);
    for (char *p = m; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    return m;
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = tolower(c);
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* Decodes one application/x-www-form-urlencoded token (+ is space).
 * Returns NULL when a %-escape is malformed.  *outlen gets the length. */
static char *form_decode(const char *s, size_t n, size_t *outlen)
{
    char *out = xmalloc(n + 1);
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '+') {
            out[o++] = ' ';
        } else if (s[i] == '%') {
            if (i + 2 >= n) {
                free(out);
                return NULL;
            }
            int a = hexval((unsigned char)s[i + 1]), b = hexval((unsigned char)s[i + 2]);
            if (a < 0 || b < 0) {
                free(out);
                return NULL;
            }
            out[o++] = (char)(a * 16 + b);
            i += 2;
        } else {
            out[o++] = s[i];
        }
    }
    out[o] = '\0';
    *outlen = o;
    return out;
}

/*
 * Parses a form body into a JSON object of string fields.  Returns NULL with
 * *why when a field is malformed or not UTF-8.
 */
static cJSON *form_parse(const unsigned char *body, size_t len, const char **why)
{
    cJSON *obj = cJSON_CreateObject();
    const char *s = (const char *)body;
    size_t i = 0;
    while (i < len) {
        size_t end = i;
        while (end < len && s[end] != '&')
            end++;
        if (end > i) {
            size_t eq = i;
            while (eq < end && s[eq] != '=')
                eq++;
            size_t kl, vl;
            char *k = form_decode(s + i, eq - i, &kl);
            char *val = eq < end ? form_decode(s + eq + 1, end - eq - 1, &vl) : xstrdup("");
            if (val && eq >= end)
                vl = 0;
            if (k == NULL || val == NULL) {
                free(k);
                free(val);
                cJSON_Delete(obj);
                *why = "malformed form field (bad %-escape)";
                return NULL;
            }
            if (!webhook_utf8_valid((unsigned char *)k, kl) ||
                !webhook_utf8_valid((unsigned char *)val, vl)) {
                free(k);
                free(val);
                cJSON_Delete(obj);
                *why = "form field is not valid UTF-8";
                return NULL;
            }
            if (kl > 0 && !cJSON_HasObjectItem(obj, k))
                cJSON_AddStringToObject(obj, k, val);
            free(k);
            free(val);
        }
        i = end + 1;
    }
    return obj;
}

/* An id or timestamp field as text: strings as they are, numbers printed. */
static char *field_text(const cJSON *rec, const char *field)
{
    const cJSON *f = cJSON_GetObjectItemCaseSensitive(rec, field);
    if (cJSON_IsString(f) && f->valuestring[0] != '\0')
        return xstrdup(f->valuestring);
    if (cJSON_IsNumber(f)) {
        double d = f->valuedouble;
        if (d >= 0 && d < 9.2e18 && d == (double)(long long)d)
            return xasprintf("%lld", (long long)d);
        return xasprintf("%.17g", d);
    }
    return NULL;
}

/* The entity whose id field the object carries (form bodies on /webhooks/zoho). */
static const struct entity_desc *entity_by_id_field(const cJSON *obj)
{
    size_t n;
    const struct entity_desc *all = entity_all(&n);
    for (size_t i = 0; i < n; i++)
        if (cJSON_GetObjectItemCaseSensitive(obj, all[i].id_field))
            return &all[i];
    return NULL;
}

/*
 * Finds the record in a parsed payload.  With an entity from the path, the
 * record is payload[singular] or payload[name] when that is an object, else
 * the payload itself.  Without one, the first top-level key naming an
 * entity decides; a flat object is matched by its id field.
 */
static void find_record(struct webhook_verdict *v, const struct entity_desc *path_entity,
                        const cJSON *payload, const cJSON **rec)
{
    *rec = NULL;
    if (!cJSON_IsObject(payload)) {
        verdict(v, 400, "payload is not a JSON object");
        return;
    }
    if (path_entity) {
        const cJSON *r = cJSON_GetObjectItemCaseSensitive(payload, path_entity->singular);
        if (!cJSON_IsObject(r))
            r = cJSON_GetObjectItemCaseSensitive(payload, path_entity->name);
        v->entity = path_entity;
        *rec = cJSON_IsObject(r) ? r : payload;
        return;
    }
    const char *first_key = NULL;
    for (const cJSON *c = payload->child; c; c = c->next) {
        if (!cJSON_IsObject(c) || c->string == NULL)
            continue;
        if (first_key == NULL)
            first_key = c->string;
        const struct entity_desc *d = entity_find(c->string);
        if (d) {
            v->entity = d;
            *rec = c;
            return;
        }
    }
    const struct entity_desc *d = entity_by_id_field(payload);
    if (d) {
        v->entity = d;
        *rec = payload;
        return;
    }
    if (first_key) {
        char *q = quoted_name(first_key);
        verdict(v, 404, "unknown entity \"%s\"", q);
        free(q);
    }
    else
        verdict(v, 400, "cannot tell the entity: no top-level key names one");
}

void webhook_evaluate(const struct webhook_auth *auth, const struct webhook_request *rq,
                      struct webhook_verdict *v)
{
    memset(v, 0, sizeof *v);
    v->http_status = 202;

    /* Route. */
    const char *ent_part = NULL;
    if (!webhook_is_route(rq->path)) {
        verdict(v, 404, "no such path");
        return;
    }
    const char *rest = rq->path + sizeof route_prefix - 1;
    if (*rest == '/')
        rest++;
    if (*rest != '\0') {
        if (strchr(rest, '/') != NULL) {
            verdict(v, 404, "no such path");
            return;
        }
        ent_part = rest;
    }
    /* Method. */
    if (rq->method == NULL || strcmp(rq->method, "POST") != 0) {
        verdict(v, 405, "method not allowed: use POST");
        return;
    }
    /* Size. */
    if (rq->too_large || rq->body_len > WEBHOOK_MAX_BODY) {
        verdict(v, 413, "body larger than %d bytes", WEBHOOK_MAX_BODY);
        return;
    }
    /* Authentication: both checks always run, so timing does not tell which failed. */
    bool ok = true;
    const char *why = NULL;
    if (auth && !str_empty(auth->secret)) {
        const char *given = rq->secret_header ? rq->secret_header : rq->secret_query;
        size_t slen = strlen(auth->secret);
        if (given == NULL) {
            ok = false;
            why = "missing webhook secret";
        } else if (!str_consttime_eq(auth->secret, slen, given, strlen(given))) {
            ok = false;
            why = "bad webhook secret";
        }
    }
    if (auth && !str_empty(auth->hmac_secret)) {
        bool sig_ok = webhook_signature_ok(auth->hmac_secret, rq->body, rq->body_len,
                                           rq->signature);
        if (!sig_ok && ok) {
            ok = false;
            why = rq->signature == NULL ? "missing signature" : "bad signature";
        }
    }
    if (!ok) {
        verdict(v, 401, "%s", why);
        return;
    }
    /* Content type. */
    char *mt = media_type(rq->content_type);
    bool is_json = strcmp(mt, "application/json") == 0 || strcmp(mt, "text/json") == 0;
    bool is_form = strcmp(mt, "application/x-www-form-urlencoded") == 0;
    free(mt);
    if (!is_json && !is_form) {
        verdict(v, 415, "unsupported content type: send application/json or "
                        "application/x-www-form-urlencoded");
        return;
    }
    /* Entity named by the path. */
    const struct entity_desc *path_entity = NULL;
    if (ent_part) {
        path_entity = entity_find(ent_part);
        if (path_entity == NULL) {
            char *q = quoted_name(ent_part);
            verdict(v, 404, "unknown entity \"%s\"", q);
            free(q);
            return;
        }
    }
    /* Parse. */
    if (rq->body_len == 0) {
        verdict(v, 400, "empty body");
        return;
    }
    if (!webhook_utf8_valid(rq->body, rq->body_len) && is_json) {
        verdict(v, 400, "body is not valid UTF-8");
        return;
    }
    cJSON *payload = NULL;
    if (is_json) {
        payload = cJSON_ParseWithLength((const char *)rq->body, rq->body_len);
        if (payload == NULL) {
            verdict(v, 400, "body is not valid JSON (or nested too deeply)");
            return;
        }
    } else {
        const char *ferr = NULL;
        cJSON *form = form_parse(rq->body, rq->body_len, &ferr);
        if (form == NULL) {
            verdict(v, 400, "%s", ferr);
            return;
        }
        const cJSON *js = cJSON_GetObjectItemCaseSensitive(form, "JSONString");
        if (cJSON_IsString(js)) {
            payload = cJSON_Parse(js->valuestring);
            cJSON_Delete(form);
            if (payload == NULL) {
                verdict(v, 400, "field JSONString is not valid JSON (or nested too deeply)");
                return;
            }
        } else {
            payload = form;
        }
    }
    const cJSON *rec = NULL;
    find_record(v, path_entity, payload, &rec);
    if (rec == NULL) {
        cJSON_Delete(payload);
        return;
    }
    v->zoho_id = field_text(rec, v->entity->id_field);
    if (v->zoho_id == NULL) {
        verdict(v, 400, "record has no %s", v->entity->id_field);
        cJSON_Delete(payload);
        return;
    }
    if (strlen(v->zoho_id) > 64) {
        verdict(v, 400, "%s is longer than 64 characters", v->entity->id_field);
        cJSON_Delete(payload);
        return;
    }
    v->last_modified_time = field_text(rec, "last_modified_time");
    v->hint = cJSON_PrintUnformatted(rec);
    cJSON_Delete(payload);
    if (v->hint == NULL) {
        verdict(v, 400, "record cannot be re-encoded");
        return;
    }
}

void webhook_verdict_free(struct webhook_verdict *v)
{
    if (v == NULL)
        return;
    free(v->error);
    free(v->zoho_id);
    free(v->last_modified_time);
    if (v->hint)
        cJSON_free(v->hint);
    memset(v, 0, sizeof *v);
}
