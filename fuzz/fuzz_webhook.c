/*
 * fuzz_webhook.c: the pure webhook evaluation of src/http/webhook.c
 * (webhook_evaluate, webhook_signature_ok, webhook_utf8_valid,
 * webhook_is_route, webhook_header_is_secret) on requests made of any bytes.
 *
 * Input: a request in a small text form, so the seeds read like what Zoho
 * sends:
 *
 *   POST /webhooks/zoho/items?secret=fz-secret     request line (query optional)
 *   Content-Type: application/json                 header lines, any order
 *   X-TDS-Webhook-Secret: fz-secret
 *   X-Zoho-Webhook-Signature: @good                @good/@GOOD: the right HMAC
 *   X-Fuzz-Auth: both                              none, secret, hmac or both (default both)
 *   X-Fuzz-Too-Large: 1
 *                                                  empty line
 *   {"item":{"item_id":"42"}}                      body: every byte up to the end
 *
 * Properties: the status is one of those documented; an error exactly when
 * not 202; a 202 has an entity, an id of at most 64 bytes and a hint that is
 * JSON; the error text is one line of valid UTF-8 (it is stored in
 * tds.inbox.reject_reason); nothing passes authentication without the right
 * credential; a signature is accepted only if it is the HMAC.
 */
#include <ctype.h>
#include <strings.h>

#include <cjson/cJSON.h>

#include "fuzz.h"
#include "tds/http.h"
#include "tds/sha256.h"

#define FZWH_SECRET "fz-secret"
#define FZWH_HMAC "fz-hmac-key"

/* Copies [s, s+n) without the trailing CR. */
static char *fzwh_take(const char *s, size_t n)
{
    if (n > 0 && s[n - 1] == '\r')
        n--;
    char *r = malloc(n + 1);
    FUZZ_CHECK(r != NULL, "oom");
    memcpy(r, s, n);
    r[n] = '\0';
    return r;
}

static void fzwh_hmac_hex(const char *key, const unsigned char *body, size_t len, char *hex)
{
    unsigned char mac[SHA256_DIGEST_LEN];
    hmac_sha256(key, strlen(key), body, len, mac);
    sha256_hex(mac, sizeof mac, hex);
}

FUZZ_ENTRY(webhook)
{
    const char *s = (const char *)data;
    const char *end = s + size;
    char *method = NULL, *target = NULL, *ctype = NULL, *sec_h = NULL, *sig = NULL;
    char *authmode = NULL, *hdr_names[16];
    size_t nhdr = 0;
    bool too_large = false;

    /* Request line. */
    const char *nl = memchr(s, '\n', size);
    const char *le = nl ? nl : end;
    const char *sp = memchr(s, ' ', (size_t)(le - s));
    if (sp) {
        method = fzwh_take(s, (size_t)(sp - s));
        target = fzwh_take(sp + 1, (size_t)(le - sp - 1));
    } else {
        method = fzwh_take(s, (size_t)(le - s));
        target = fzwh_take("", 0);
    }
    const char *p = nl ? nl + 1 : end;
    /* Headers, up to an empty line. */
    while (p < end) {
        nl = memchr(p, '\n', (size_t)(end - p));
        le = nl ? nl : end;
        char *line = fzwh_take(p, (size_t)(le - p));
        p = nl ? nl + 1 : end;
        if (line[0] == '\0') {
            free(line);
            break;
        }
        char *colon = strchr(line, ':');
        if (colon) {
            *colon = '\0';
            const char *v = colon + 1;
            while (*v == ' ' || *v == '\t')
                v++;
            char **slot = NULL;
            if (strcasecmp(line, "Content-Type") == 0)
                slot = &ctype;
            else if (strcasecmp(line, "X-TDS-Webhook-Secret") == 0)
                slot = &sec_h;
            else if (strcasecmp(line, "X-Zoho-Webhook-Signature") == 0)
                slot = &sig;
            else if (strcasecmp(line, "X-Fuzz-Auth") == 0)
                slot = &authmode;
            else if (strcasecmp(line, "X-Fuzz-Too-Large") == 0)
                too_large = v[0] == '1';
            if (slot && *slot == NULL)
                *slot = strdup(v);
            if (nhdr < 16)
                hdr_names[nhdr++] = strdup(line);
        }
        free(line);
    }
    const unsigned char *body = (const unsigned char *)p;
    size_t body_len = (size_t)(end - p);

    /* The query's secret parameter (the listener hands it over decoded). */
    char *path = target, *sec_q = NULL;
    char *q = strchr(target, '?');
    if (q) {
        *q++ = '\0';
        for (char *tok = q; tok && *tok;) {
            char *amp = strchr(tok, '&');
            if (amp)
                *amp = '\0';
            if (strncmp(tok, "secret=", 7) == 0 && sec_q == NULL)
                sec_q = strdup(tok + 7);
            tok = amp ? amp + 1 : NULL;
        }
    }

    /* Signature placeholders: the right HMAC, in lower or upper case. */
    char good[SHA256_HEX_LEN + 8];
    fzwh_hmac_hex(FZWH_HMAC, body, body_len, good);
    if (sig && (strcmp(sig, "@good") == 0 || strcmp(sig, "@GOOD") == 0)) {
        if (sig[1] == 'G')
            for (char *c = good; *c; c++)
                *c = (char)toupper((unsigned char)*c);
        free(sig);
        sig = strdup(good);
        fzwh_hmac_hex(FZWH_HMAC, body, body_len, good);
    }

    const char *mode = authmode ? authmode : "both";
    struct webhook_auth auth = {
        .secret = (!strcmp(mode, "secret") || !strcmp(mode, "both")) ? FZWH_SECRET : "",
        .hmac_secret = (!strcmp(mode, "hmac") || !strcmp(mode, "both")) ? FZWH_HMAC : NULL,
    };
    struct webhook_request rq = {
        .method = method,
        .path = path,
        .content_type = ctype,
        .secret_header = sec_h,
        .secret_query = sec_q,
        .signature = sig,
        .body = body,
        .body_len = body_len,
        .too_large = too_large,
    };
    struct webhook_verdict v;
    webhook_evaluate(&auth, &rq, &v);

    int st = v.http_status;
    FUZZ_CHECK(st == 202 || st == 400 || st == 401 || st == 404 || st == 405 || st == 413 ||
                   st == 415,
               "status %d", st);
    FUZZ_CHECK((st == 202) == (v.error == NULL), "status %d with error %s", st,
               v.error ? v.error : "(none)");
    if (v.error) {
        FUZZ_CHECK(fuzz_one_line(v.error), "error is not one line: \"%s\"", v.error);
        FUZZ_CHECK(fuzz_str_utf8_ok(v.error), "error is not UTF-8 (reject_reason): \"%s\"",
                   v.error);
    }
    if (st != 404 && st != 405)
        FUZZ_CHECK(webhook_is_route(path), "status %d for a path that is no route", st);
    if (st == 202) {
        FUZZ_CHECK(strcmp(method, "POST") == 0, "202 for method %s", method);
        FUZZ_CHECK(v.entity != NULL && v.zoho_id != NULL && v.hint != NULL,
                   "202 without entity, id or hint");
        FUZZ_CHECK(v.zoho_id[0] != '\0' && strlen(v.zoho_id) <= 64, "id \"%s\"", v.zoho_id);
        FUZZ_CHECK(!too_large && body_len <= WEBHOOK_MAX_BODY, "202 for a body too large");
        cJSON *h = cJSON_Parse(v.hint);
        FUZZ_CHECK(h != NULL, "hint is not JSON: %s", v.hint);
        cJSON_Delete(h);
        /* Authentication held. */
        if (auth.secret[0]) {
            const char *given = sec_h ? sec_h : sec_q;
            FUZZ_CHECK(given && strcmp(given, FZWH_SECRET) == 0, "202 without the secret");
        }
        if (auth.hmac_secret) {
            const char *g = sig;
            if (g && strncasecmp(g, "sha256=", 7) == 0)
                g += 7;
            FUZZ_CHECK(g && strcasecmp(g, good) == 0, "202 without the signature");
        }
        /* What goes into the database is valid UTF-8 (text and jsonb columns). */
        FUZZ_CHECK(fuzz_str_utf8_ok(v.zoho_id) && fuzz_str_utf8_ok(v.hint) &&
                       fuzz_str_utf8_ok(v.last_modified_time),
                   "202 with text that is not UTF-8");
    }
    webhook_verdict_free(&v);

    /* The signature check on its own, with any key and signature. */
    if (sig) {
        bool ok = webhook_signature_ok(FZWH_HMAC, body, body_len, sig);
        const char *g = sig;
        if (strncasecmp(g, "sha256=", 7) == 0)
            g += 7;
        FUZZ_CHECK(ok == (strcasecmp(g, good) == 0), "signature_ok %d for \"%s\"", ok, sig);
        /* The signature text as key, the body as signature: arbitrary lengths. */
        char *bs = fuzz_strndup(body, body_len);
        bool ok2 = webhook_signature_ok(sig, (const unsigned char *)method, strlen(method), bs);
        if (ok2) {
            char h2[SHA256_HEX_LEN + 1];
            fzwh_hmac_hex(sig, (const unsigned char *)method, strlen(method), h2);
            const char *g2 = strncasecmp(bs, "sha256=", 7) == 0 ? bs + 7 : bs;
            FUZZ_CHECK(strcasecmp(g2, h2) == 0, "signature_ok accepted a wrong signature");
        }
        free(bs);
    }
    FUZZ_CHECK(!webhook_signature_ok(NULL, body, body_len, "00"), "NULL key accepted");

    /* UTF-8 validation agrees with an independent decoder (NUL rejected). */
    bool u = webhook_utf8_valid(body, body_len);
    bool ref = fuzz_utf8_ok(body, body_len) && memchr(body, 0, body_len) == NULL;
    FUZZ_CHECK(u == ref, "webhook_utf8_valid %d, reference %d", u, ref);

    for (size_t i = 0; i < nhdr; i++) {
        bool secret = webhook_header_is_secret(hdr_names[i]);
        if (strcasecmp(hdr_names[i], "X-TDS-Webhook-Secret") == 0 ||
            strcasecmp(hdr_names[i], "X-Zoho-Webhook-Signature") == 0 ||
            strcasecmp(hdr_names[i], "Authorization") == 0)
            FUZZ_CHECK(secret, "header %s not treated as secret", hdr_names[i]);
        free(hdr_names[i]);
    }
    (void)webhook_is_route(path);

    free(method);
    free(target);
    free(ctype);
    free(sec_h);
    free(sec_q);
    free(sig);
    free(authmode);
    return 0;
}
