/*
 * json.c: JSON parsed with numbers kept exactly (issue 17 point 5).  cJSON
 * reads every number as a double, so 12345678901234567890 or an 18-digit
 * id sent unquoted comes back rounded.  entity_json_parse parses with
 * cJSON, then walks the text beside the tree: a number whose token a double
 * does not hold exactly becomes a cJSON_Raw node holding the token's text
 * (valuedouble kept), which cJSON prints verbatim and map.c reads as the
 * number it is.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "tds/entity.h"

struct scan {
    const char *p, *end;
};

/* What cJSON takes for white space: every byte up to ' '. */
static void skip_ws(struct scan *s)
{
    while (s->p < s->end && (unsigned char)*s->p <= 32)
        s->p++;
}

static void skip_string(struct scan *s)
{
    s->p++; /* the opening quote */
    while (s->p < s->end && *s->p != '"') {
        if (*s->p == '\\' && s->p + 1 < s->end)
            s->p++;
        s->p++;
    }
    if (s->p < s->end)
        s->p++;
}

/* Whether a double holds the number token [a, a + n) exactly enough: at
 * most 15 significant digits (what a double always round-trips). */
static bool double_exact(const char *a, size_t n)
{
    size_t sig = 0;
    bool lead = true;
    for (size_t i = 0; i < n && a[i] != 'e' && a[i] != 'E'; i++) {
        if (!isdigit((unsigned char)a[i]))
            continue;
        if (a[i] != '0')
            lead = false;
        if (!lead)
            sig++;
    }
    return sig <= 15;
}

/* Walks the value at s beside node v. */
static void walk(struct scan *s, cJSON *v)
{
    skip_ws(s);
    if (v == NULL) {
        s->p = s->end; /* the text and the tree disagree: stop (numbers stay doubles) */
        return;
    }
    if (s->p >= s->end)
        return;
    char c = *s->p;
    if (c == '{' || c == '[') {
        s->p++;
        cJSON *child = v->child;
        for (;;) {
            skip_ws(s);
            if (s->p >= s->end)
                return;
            if (*s->p == '}' || *s->p == ']') {
                s->p++;
                return;
            }
            if (*s->p == ',') {
                s->p++;
                continue;
            }
            if (c == '{') {
                if (*s->p != '"') {
                    s->p = s->end; /* not a key: the text and the tree disagree */
                    return;
                }
                skip_string(s); /* the key */
                skip_ws(s);
                if (s->p < s->end && *s->p == ':')
                    s->p++;
            }
            const char *at = s->p;
            walk(s, child);
            if (s->p == at)
                s->p = s->end; /* no progress: stop rather than loop */
            if (child)
                child = child->next;
        }
    }
    if (c == '"') {
        skip_string(s);
        return;
    }
    const char *a = s->p;
    while (s->p < s->end && (isalnum((unsigned char)*s->p) || *s->p == '-' || *s->p == '+' ||
                             *s->p == '.'))
        s->p++;
    if (!cJSON_IsNumber(v) || double_exact(a, (size_t)(s->p - a)))
        return;
    char *text = cJSON_malloc((size_t)(s->p - a) + 1);
    if (text == NULL)
        return;
    memcpy(text, a, (size_t)(s->p - a));
    text[s->p - a] = '\0';
    v->type = cJSON_Raw;
    v->valuestring = text;
}

cJSON *entity_json_parse_opts(const char *text, size_t len, const char **end, bool require_null)
{
    const char *stop = NULL;
    cJSON *doc = cJSON_ParseWithLengthOpts(text, len, &stop, require_null);
    if (end)
        *end = stop;
    if (doc == NULL)
        return NULL;
    struct scan s = {text, stop ? stop : text + len};
    walk(&s, doc);
    return doc;
}

cJSON *entity_json_parse(const char *text)
{
    return entity_json_parse_opts(text, strlen(text), NULL, false);
}

char *entity_json_number(const cJSON *v)
{
    if (cJSON_IsRaw(v) && v->valuestring != NULL)
        return xstrdup(v->valuestring);
    return NULL;
}
