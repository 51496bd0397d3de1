/*
 * sanitize.c: the one gate every outside string passes before it reaches a
 * terminal.  A hand-written UTF-8 decoder (strict: no overlongs, no
 * surrogates, nothing above U+10FFFF) so the result does not depend on the
 * process locale.  What must not reach a terminal is shown, not hidden:
 * ESC as "\x1b" (so "\e[2J" shows as "\x1b[2J", harmless), the 8-bit CSI
 * U+009B as "<U+009B>", a stray byte as "\x9b", U+202E as "<U+202E>".  The
 * console and every CLI output path (src/cli/out.c) use this file only.
 */
#include "tds/sanitize.h"

#include <stdint.h>
#include <stdio.h>
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

/* Writes the visible stand-in for a code point that must not reach a
 * terminal as itself: "<U+202E>". */
static void put_codepoint(struct strbuf *sb, uint32_t cp)
{
    char buf[16];
    snprintf(buf, sizeof buf, "<U+%04X>", (unsigned)cp);
    strbuf_puts(sb, buf);
}

/* Writes the visible stand-in for one byte: "\t", "\n", "\r" or "\x1b". */
static void put_byte(struct strbuf *sb, unsigned char c)
{
    char buf[8];
    if (c == '\t')
        strbuf_puts(sb, "\\t");
    else if (c == '\n')
        strbuf_puts(sb, "\\n");
    else if (c == '\r')
        strbuf_puts(sb, "\\r");
    else {
        snprintf(buf, sizeof buf, "\\x%02x", c);
        strbuf_puts(sb, buf);
    }
}

char *sanitize_text(const char *src, size_t len, unsigned flags)
{
    struct strbuf sb = {0};
    const unsigned char *s = (const unsigned char *)src;
    if (s == NULL)
        return xstrdup("");
    bool multi = (flags & SANITIZE_MULTILINE) != 0;
    size_t i = 0;
    while (i < len) {
        unsigned char c = s[i];
        if (multi && c == '\n') {
            strbuf_putc(&sb, '\n');
            i++;
        } else if (multi && c == '\t') { /* layout whitespace in a text block */
            strbuf_putc(&sb, ' ');
            i++;
        } else if (multi && c == '\r' && i + 1 < len && s[i + 1] == '\n') {
            i++;
        } else if (c < 0x20 || c == 0x7f) {
            put_byte(&sb, c);
            i++;
        } else if (c < 0x80) {
            strbuf_putc(&sb, (char)c);
            i++;
        } else {
            uint32_t cp;
            size_t n = utf8_decode(s + i, len - i, &cp);
            if (n == 0) { /* invalid UTF-8, raw 0x9b included: one byte at a time */
                put_byte(&sb, c);
                i++;
            } else if ((cp >= 0x80 && cp <= 0x9f) || unicode_dangerous(cp)) {
                put_codepoint(&sb, cp); /* C1 controls (CSI U+009B...), bidi */
                i += n;
            } else if (flags & SANITIZE_ASCII) {
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

char *sanitize_json(const char *json)
{
    struct strbuf sb = {0};
    const unsigned char *s = (const unsigned char *)(json ? json : "");
    size_t len = strlen((const char *)s), i = 0;
    char buf[8];
    while (i < len) {
        unsigned char c = s[i];
        uint32_t cp;
        size_t n;
        if (c == '\n' || c == '\t' || c == '\r' || (c >= 0x20 && c < 0x7f)) {
            strbuf_putc(&sb, (char)c);
            i++;
        } else if (c < 0x80) { /* other C0, DEL */
            snprintf(buf, sizeof buf, "\\u%04x", c);
            strbuf_puts(&sb, buf);
            i++;
        } else if ((n = utf8_decode(s + i, len - i, &cp)) == 0) {
            strbuf_puts(&sb, "\\ufffd");
            i++;
        } else if ((cp >= 0x80 && cp <= 0x9f) || unicode_dangerous(cp)) {
            snprintf(buf, sizeof buf, "\\u%04x", (unsigned)cp);
            strbuf_puts(&sb, buf);
            i += n;
        } else {
            strbuf_append(&sb, (const char *)s + i, n);
            i += n;
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
