/*
 * sanitize.c: the one gate every outside string passes before it reaches a
 * terminal.  A hand-written UTF-8 decoder (strict: no overlongs, no
 * surrogates, nothing above U+10FFFF) so the result does not depend on the
 * process locale, and a small escape-sequence skipper so that "\e[2J" shows
 * as "?" rather than as "?[2J" with half the sequence still there.
 */
#include "tds/sanitize.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Decodes one UTF-8 character at s (n bytes left).  Returns its length and
 * sets *cp, or 0 when the bytes are not valid UTF-8. */
static size_t utf8_decode(const unsigned char *s, size_t n, uint32_t *cp)
{
    unsigned char c = s[0];
    size_t len;
    uint32_t v, min;
    if (c < 0x80) {
        *cp = c;
        return 1;
    } else if (c >= 0xc2 && c <= 0xdf) {
        len = 2, v = c & 0x1f, min = 0x80;
    } else if (c >= 0xe0 && c <= 0xef) {
        len = 3, v = c & 0x0f, min = 0x800;
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4, v = c & 0x07, min = 0x10000;
    } else {
        return 0;
    }
    if (n < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        v = (v << 6) | (s[i] & 0x3f);
    }
    if (v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
        return 0;
    *cp = v;
    return len;
}

/* Characters that are printable in UTF-8 but change how a terminal shows
 * what follows: bidi embeddings/overrides/isolates, line/paragraph
 * separators, and the byte-order mark in the middle of text. */
static bool unicode_dangerous(uint32_t cp)
{
    return (cp >= 0x202a && cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069) ||
           cp == 0x2028 || cp == 0x2029 || cp == 0x200e || cp == 0x200f || cp == 0x061c ||
           cp == 0xfeff;
}

/* Length of the escape sequence starting at s[0] == ESC (or a C1 CSI/OSC/
 * DCS introducer of cplen bytes), so the whole sequence can be dropped. */
static size_t escape_length(const unsigned char *s, size_t n, size_t introlen, int kind)
{
    size_t i = introlen;
    if (kind == 0) { /* ESC: look at the next byte */
        if (i >= n)
            return i;
        unsigned char c = s[i];
        if (c == '[')
            kind = '[', i++;
        else if (c == ']' || c == 'P' || c == '_' || c == '^' || c == 'X')
            kind = ']', i++;
        else if (c >= 0x20 && c <= 0x2f) { /* ESC intermediates final */
            while (i < n && s[i] >= 0x20 && s[i] <= 0x2f)
                i++;
            return i < n && s[i] >= 0x30 && s[i] <= 0x7e ? i + 1 : i;
        } else if (c >= 0x30 && c <= 0x7e)
            return i + 1;
        else
            return i;
    }
    if (kind == '[') { /* CSI: parameters, intermediates, one final byte */
        while (i < n && s[i] >= 0x20 && s[i] <= 0x3f)
            i++;
        while (i < n && s[i] >= 0x20 && s[i] <= 0x2f)
            i++;
        return i < n && s[i] >= 0x40 && s[i] <= 0x7e ? i + 1 : i;
    }
    /* OSC / DCS / APC / PM / SOS: up to BEL or ST (ESC \ or C1 0x9c) */
    while (i < n) {
        if (s[i] == 0x07)
            return i + 1;
        if (s[i] == 0x1b)
            return i + 1 < n && s[i + 1] == '\\' ? i + 2 : i + 1;
        if (i + 1 < n && s[i] == 0xc2 && s[i + 1] == 0x9c)
            return i + 2;
        i++;
    }
    return i;
}

char *sanitize_text(const char *src, size_t len, unsigned flags)
{
    struct strbuf sb = {0};
    const unsigned char *s = (const unsigned char *)src;
    if (s == NULL)
        return xstrdup("");
    size_t i = 0;
    while (i < len) {
        unsigned char c = s[i];
        if (c == '\t') {
            strbuf_putc(&sb, ' ');
            i++;
        } else if (c == '\n') {
            strbuf_putc(&sb, (flags & SANITIZE_MULTILINE) ? '\n' : ' ');
            i++;
        } else if (c == '\r' && (flags & SANITIZE_MULTILINE) && i + 1 < len && s[i + 1] == '\n') {
            i++;
        } else if (c == 0x1b) {
            strbuf_putc(&sb, '?');
            i += escape_length(s + i, len - i, 1, 0);
        } else if (c < 0x20 || c == 0x7f) {
            strbuf_putc(&sb, '?');
            i++;
        } else if (c < 0x80) {
            strbuf_putc(&sb, (char)c);
            i++;
        } else {
            uint32_t cp;
            size_t n = utf8_decode(s + i, len - i, &cp);
            if (n == 0) {
                strbuf_putc(&sb, '?');
                i++;
            } else if (cp >= 0x80 && cp <= 0x9f) { /* C1 controls */
                strbuf_putc(&sb, '?');
                if (cp == 0x9b)
                    i += escape_length(s + i, len - i, n, '[');
                else if (cp == 0x9d || cp == 0x90 || cp == 0x9e || cp == 0x9f || cp == 0x98)
                    i += escape_length(s + i, len - i, n, ']');
                else
                    i += n;
            } else if (unicode_dangerous(cp) || (flags & SANITIZE_ASCII)) {
                strbuf_putc(&sb, '?');
                i += n;
            } else {
                strbuf_append(&sb, (const char *)s + i, n);
                i += n;
            }
        }
    }
    return strbuf_detach(&sb);
}

char *sanitize_str(const char *s, unsigned flags)
{
    return sanitize_text(s, s ? strlen(s) : 0, flags);
}

bool sanitize_is_clean(const char *s, unsigned flags)
{
    char *t = sanitize_str(s, flags);
    bool same = strcmp(t, s ? s : "") == 0;
    free(t);
    return same;
}
