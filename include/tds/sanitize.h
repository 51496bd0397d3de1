/*
 * sanitize.h: makes text from outside (Zoho data, webhook bodies, error
 * strings, payloads) safe to draw on a terminal or to print from the CLI,
 * whether or not stdout is a terminal.  Control characters (C0, DEL, C1),
 * Unicode bidirectional overrides and isolates, line and paragraph
 * separators and invalid UTF-8 never survive, and each is replaced VISIBLY,
 * so an operator sees what was there:
 *   ESC -> \x1b   TAB -> \t   LF -> \n   CR -> \r   other C0/DEL -> \xHH
 *   U+0080..U+009F (C2 80..C2 9F, the 8-bit CSI U+009B too) -> <U+009B>
 *   U+202A..U+202E, U+2066..U+2069, U+2028/9, U+200E/F, U+061C, U+FEFF -> <U+202E>
 *   a byte that is not part of valid UTF-8 (a raw 0x9b...) -> \x9b
 * The output is printable ASCII plus valid, harmless UTF-8, so a second
 * pass leaves it unchanged.  A backslash is not escaped (display text, not
 * an encoding: scripts that need the exact bytes use --json).
 */
#ifndef TDS_SANITIZE_H
#define TDS_SANITIZE_H

#include <stdbool.h>
#include <stddef.h>

#include "tds/util.h"

enum sanitize_flags {
    SANITIZE_MULTILINE = 1 << 0, /* a text block: keep '\n' (drop '\r' before it), '\t' -> ' ' */
    SANITIZE_ASCII = 1 << 1,     /* other non-ASCII characters -> '?' (non-UTF-8 terminals) */
};

/*
 * Returns a sanitized, NUL-terminated copy of the len bytes at s (caller
 * frees), with the replacements above; a NUL inside the len bytes shows as
 * \x00.  s may be NULL (returns "").  This function can't fail.
 */
char *sanitize_text(const char *s, size_t len, unsigned flags);

/* sanitize_text over a NUL-terminated string (NULL gives ""). */
char *sanitize_str(const char *s, unsigned flags);

/*
 * Makes printed JSON (cJSON's output) safe for a terminal while keeping it
 * valid JSON with the same meaning: DEL, C1 controls and the bidi/separator
 * characters above become \uXXXX escapes, and each byte of invalid UTF-8
 * becomes \ufffd (the replacement character), so the result always parses.
 * Returns a new string (caller frees); NULL gives "".  This function can't fail.
 */
char *sanitize_json(const char *json);

/* True when s (NUL-terminated) would come out of sanitize_str unchanged. */
bool sanitize_is_clean(const char *s, unsigned flags);

#endif
