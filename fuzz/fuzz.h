/*
 * fuzz.h: what the libFuzzer targets in fuzz/ share.  Each target defines
 * FUZZ_ENTRY, which is LLVMFuzzerTestOneInput in a fuzz build and a named
 * function (fuzz_<target>_one) when tests/unit/test_fuzz_corpus.c includes
 * every target into one gcc-built program to replay the corpora in CI.
 */
#ifndef TDS_FUZZ_H
#define TDS_FUZZ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef FUZZ_NO_MAIN
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
#define FUZZ_ENTRY(name) int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
#else
#define FUZZ_ENTRY(name)                                          \
    int fuzz_##name##_one(const uint8_t *data, size_t size);      \
    int fuzz_##name##_one(const uint8_t *data, size_t size)
#endif

/* A property that must hold for every input: report it and abort, so
 * libFuzzer keeps the reproducer (and the replay test fails). */
#define FUZZ_CHECK(cond, ...)                                                   \
    do {                                                                        \
        if (!(cond)) {                                                          \
            fprintf(stderr, "%s:%d: property failed: %s: ", __FILE__, __LINE__, \
                    #cond);                                                     \
            fprintf(stderr, __VA_ARGS__);                                       \
            fputc('\n', stderr);                                                \
            abort();                                                            \
        }                                                                       \
    } while (0)

/* A NUL-terminated copy of the input (embedded NULs end the string early). */
static inline char *fuzz_strndup(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (s == NULL)
        abort();
    if (size)
        memcpy(s, data, size);
    s[size] = '\0';
    return s;
}

/*
 * An independent strict UTF-8 check (no overlongs, surrogates, code points
 * above U+10FFFF), written here so that the targets do not check tds's
 * decoders with themselves.  NUL bytes are allowed (callers pass lengths).
 */
static inline bool fuzz_utf8_ok(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned char c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t len;
        unsigned long cp;
        if ((c & 0xe0) == 0xc0)
            len = 2, cp = c & 0x1f;
        else if ((c & 0xf0) == 0xe0)
            len = 3, cp = c & 0x0f;
        else if ((c & 0xf8) == 0xf0)
            len = 4, cp = c & 0x07;
        else
            return false;
        if (n - i < len)
            return false;
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                return false;
            cp = (cp << 6) | (s[i + k] & 0x3f);
        }
        static const unsigned long min[5] = {0, 0, 0x80, 0x800, 0x10000};
        if (cp < min[len] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        i += len;
    }
    return true;
}

static inline bool fuzz_str_utf8_ok(const char *s)
{
    return s == NULL || fuzz_utf8_ok((const unsigned char *)s, strlen(s));
}

/* True when s has no C0 control (other than tab) and no DEL: safe for a
 * one-line message (log line, reject_reason, last_error). */
static inline bool fuzz_one_line(const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if ((*p < 0x20 && *p != '\t') || *p == 0x7f)
            return false;
    return true;
}

#endif
