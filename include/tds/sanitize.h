/*
 * sanitize.h: makes text from outside (Zoho data, webhook bodies, error
 * strings, payloads) safe to draw on a terminal.  Control characters (C0,
 * DEL, C1), escape sequences, Unicode bidirectional overrides, line and
 * paragraph separators and invalid UTF-8 never survive: each offending
 * character becomes one '?', so an operator sees that something was there.
 */
#ifndef TDS_SANITIZE_H
#define TDS_SANITIZE_H

#include <stdbool.h>
#include <stddef.h>

#include "tds/util.h"

enum sanitize_flags {
    SANITIZE_MULTILINE = 1 << 0, /* keep '\n' (drop '\r' before it); else '\n' -> ' ' */
    SANITIZE_ASCII = 1 << 1,     /* non-ASCII characters -> '?' (non-UTF-8 terminals) */
};

/*
 * Returns a sanitized, NUL-terminated copy of the len bytes at s (caller
 * frees).  A tab becomes one space.  An ESC swallows the escape sequence it
 * starts (CSI/OSC/DCS/two-byte) and is shown as a single '?'.  s may be NULL
 * (returns "").  This function can't fail.
 */
char *sanitize_text(const char *s, size_t len, unsigned flags);

/* sanitize_text over a NUL-terminated string (NULL gives ""). */
char *sanitize_str(const char *s, unsigned flags);

/* True when s (NUL-terminated) would come out of sanitize_str unchanged. */
bool sanitize_is_clean(const char *s, unsigned flags);

#endif
