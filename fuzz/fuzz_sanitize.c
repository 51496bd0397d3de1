/*
 * fuzz_sanitize.c: the console's sanitizer (src/core/sanitize.c), the gate
 * between outside text and the terminal, with every flag combination.  The
 * output must hold no C0 control byte (but '\n' with SANITIZE_MULTILINE),
 * no DEL, no C1 control (U+0080..U+009F), no bidi override or line
 * separator, be valid UTF-8 (ASCII only with SANITIZE_ASCII), come out of
 * sanitize_is_clean as clean and be left unchanged by a second pass.  Text
 * without anything to neutralise passes unchanged.  sanitize_json (the
 * CLI's --json gate): the output holds no raw control but layout
 * whitespace, no C1, no bidi, is valid UTF-8; when the input is cJSON's
 * printing of a string made from the fuzz data, the output parses back as
 * JSON, to the same string whenever the data was valid UTF-8 and harmless.
 */
#include "fuzz.h"
#include "tds/sanitize.h"

#include <cjson/cJSON.h>

static unsigned long fzsan_cp(const unsigned char *s, size_t *len)
{
    unsigned char c = s[0];
    if (c < 0x80)
        return *len = 1, c;
    if ((c & 0xe0) == 0xc0)
        return *len = 2, ((c & 0x1fu) << 6) | (s[1] & 0x3fu);
    if ((c & 0xf0) == 0xe0)
        return *len = 3, ((c & 0x0fu) << 12) | ((s[1] & 0x3fu) << 6) | (s[2] & 0x3fu);
    return *len = 4, ((c & 0x07u) << 18) | ((s[1] & 0x3fu) << 12) | ((s[2] & 0x3fu) << 6) |
                     (s[3] & 0x3fu);
}

/* Checks the safety properties shared by both entry points on out. */
static void fzsan_check_safe(const char *out, bool json)
{
    size_t n = strlen(out);
    const unsigned char *o = (const unsigned char *)out;
    FUZZ_CHECK(fuzz_utf8_ok(o, n), "json %d: output is not UTF-8", json);
    for (size_t i = 0; i < n;) {
        size_t len;
        unsigned long cp = fzsan_cp(o + i, &len);
        FUZZ_CHECK(cp >= 0x20 || (json && (cp == '\n' || cp == '\t' || cp == '\r')),
                   "json %d: control 0x%02lx at %zu", json, cp, i);
        FUZZ_CHECK(cp != 0x7f && (cp < 0x80 || cp > 0x9f), "json %d: U+%04lX at %zu", json, cp, i);
        FUZZ_CHECK(!(cp >= 0x202a && cp <= 0x202e) && !(cp >= 0x2066 && cp <= 0x2069),
                   "json %d: bidi U+%04lX at %zu", json, cp, i);
        i += len;
    }
}

/* sanitize_json over cJSON's printing of the data as a string value. */
static void fzsan_json(const uint8_t *data, size_t size)
{
    char *s = fuzz_strndup(data, size);
    cJSON *arr = cJSON_CreateArray();
    cJSON_AddItemToArray(arr, cJSON_CreateString(s));
    char *printed = cJSON_PrintUnformatted(arr);
    char *out = sanitize_json(printed);
    fzsan_check_safe(out, true);
    cJSON *back = cJSON_Parse(out);
    FUZZ_CHECK(back != NULL, "sanitize_json output does not parse: %s", out);
    const char *v = cJSON_GetStringValue(cJSON_GetArrayItem(back, 0));
    FUZZ_CHECK(v != NULL, "sanitize_json lost the string");
    if (fuzz_utf8_ok((const unsigned char *)s, strlen(s)))
        FUZZ_CHECK(strcmp(v, s) == 0, "sanitize_json changed valid text");
    char *again = sanitize_json(out);
    FUZZ_CHECK(strcmp(again, out) == 0, "sanitize_json: second pass changed the text");
    free(again);
    cJSON_Delete(back);
    free(out);
    cJSON_free(printed);
    cJSON_Delete(arr);
    free(s);
}

FUZZ_ENTRY(sanitize)
{
    for (unsigned flags = 0; flags < 4; flags++) {
        char *out = sanitize_text((const char *)data, size, flags);
        FUZZ_CHECK(out != NULL, "NULL result");
        size_t n = strlen(out);
        const unsigned char *o = (const unsigned char *)out;
        FUZZ_CHECK(fuzz_utf8_ok(o, n), "flags %u: output is not UTF-8", flags);
        for (size_t i = 0; i < n;) {
            size_t len;
            unsigned long cp = fzsan_cp(o + i, &len);
            if (cp == '\n')
                FUZZ_CHECK(flags & SANITIZE_MULTILINE, "newline without MULTILINE");
            else
                FUZZ_CHECK(cp >= 0x20, "flags %u: control 0x%02lx at %zu", flags, cp, i);
            FUZZ_CHECK(cp != 0x7f, "flags %u: DEL at %zu", flags, i);
            FUZZ_CHECK(cp < 0x80 || cp > 0x9f, "flags %u: C1 U+%04lX at %zu", flags, cp, i);
            FUZZ_CHECK(!(cp >= 0x202a && cp <= 0x202e) && !(cp >= 0x2066 && cp <= 0x2069) &&
                           cp != 0x2028 && cp != 0x2029,
                       "flags %u: U+%04lX at %zu", flags, cp, i);
            if (flags & SANITIZE_ASCII)
                FUZZ_CHECK(cp < 0x80, "flags %u: non-ASCII U+%04lX", flags, cp);
            i += len;
        }
        FUZZ_CHECK(sanitize_is_clean(out, flags), "flags %u: output not clean", flags);
        char *again = sanitize_str(out, flags);
        FUZZ_CHECK(strcmp(again, out) == 0, "flags %u: second pass changed the text", flags);
        free(again);
        free(out);
    }
    /* The NUL-terminated entry point and the cleanliness test agree. */
    char *s = fuzz_strndup(data, size);
    for (unsigned flags = 0; flags < 4; flags++) {
        char *out = sanitize_str(s, flags);
        FUZZ_CHECK(sanitize_is_clean(s, flags) == (strcmp(out, s) == 0),
                   "flags %u: sanitize_is_clean disagrees with sanitize_str", flags);
        free(out);
    }
    free(s);

    /* Nothing to neutralise (printable ASCII and harmless UTF-8): unchanged. */
    bool harmless = fuzz_utf8_ok(data, size);
    for (size_t i = 0; i < size && harmless;) {
        size_t len;
        unsigned long cp = fzsan_cp(data + i, &len);
        harmless = cp >= 0x20 && cp != 0x7f && (cp < 0x80 || cp > 0x9f) &&
                   !(cp >= 0x2000 && cp <= 0x206f) && cp != 0x061c && cp != 0xfeff;
        i += len;
    }
    if (harmless) {
        char *out = sanitize_text((const char *)data, size, 0);
        FUZZ_CHECK(strlen(out) == size && memcmp(out, data, size) == 0,
                   "harmless text was changed");
        free(out);
    }
    fzsan_json(data, size);
    return 0;
}
