/*
 * util.h: the small things every module uses: allocation that cannot fail
 * (it aborts, as tmux and htop do), a growable string buffer, string helpers.
 *
 * Two tiers of errors: running out of memory is not recoverable and aborts
 * inside x*(); everything that can really happen returns a status.
 */
#ifndef TDS_UTIL_H
#define TDS_UTIL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

#define TDS_PRINTF(a, b) __attribute__((format(printf, a, b)))
#define TDS_MUST_CHECK __attribute__((warn_unused_result))
#define TDS_UNUSED __attribute__((unused))
#define TDS_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* Allocation: abort with a message on failure; never return NULL. */
void *xmalloc(size_t size);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t size);
void *xreallocarray(void *p, size_t n, size_t size);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
/* Formatted allocation; the caller frees the result. */
char *xasprintf(const char *fmt, ...) TDS_PRINTF(1, 2);
char *xvasprintf(const char *fmt, va_list ap) TDS_PRINTF(1, 0);

/* A growable NUL-terminated byte buffer.  Zero-initialise to start empty. */
struct strbuf {
    char *buf;  /* NULL until the first append; always NUL-terminated after */
    size_t len;
    size_t cap;
};

void strbuf_append(struct strbuf *sb, const char *s, size_t n);
void strbuf_puts(struct strbuf *sb, const char *s);
void strbuf_putc(struct strbuf *sb, char c);
void strbuf_printf(struct strbuf *sb, const char *fmt, ...) TDS_PRINTF(2, 3);
void strbuf_reset(struct strbuf *sb);
/* Hands the buffer to the caller (never NULL; "" when empty) and empties sb. */
char *strbuf_detach(struct strbuf *sb);
void strbuf_free(struct strbuf *sb);

/* Strings. */
bool str_eq(const char *a, const char *b);           /* NULL-safe */
bool str_empty(const char *s);                       /* NULL or "" */
bool str_starts_with(const char *s, const char *prefix);
bool str_is_digits(const char *s);                   /* non-empty, [0-9]+ */
/* strtoll with full-string and range checks; false on any junk. */
bool str_to_ll(const char *s, long long *out);
/*
 * A decimal number in [lo, hi] given as the len bytes at s, strictly: ASCII
 * digits only (a leading '-' only when lo < 0), no blank, no '+', no NUL
 * within len and s[len] == '\0', no overflow.  False on anything else.
 */
bool str_to_ll_in(const char *s, size_t len, long long lo, long long hi, long long *out)
    TDS_MUST_CHECK;
/* An id (1..LLONG_MAX) by the same rules: the one id parser of tds. */
bool str_to_id(const char *s, size_t len, long long *out) TDS_MUST_CHECK;
/* Levenshtein distance, for "did you mean" suggestions. */
size_t str_edit_distance(const char *a, const char *b);
/* Constant-time comparison of two byte strings (lengths may differ). */
bool str_consttime_eq(const char *a, size_t alen, const char *b, size_t blen);

/*
 * UTF-8.  utf8_char_len: the length of the well-formed UTF-8 character at s
 * (n bytes left), or 0 when the bytes there are not one (a stray
 * continuation byte, an overlong form, a surrogate, above U+10FFFF, or cut
 * short).  utf8_truncate: the one way tds shortens a text it stores or
 * shows: a copy of s (NULL: "") of at most max bytes that is valid UTF-8,
 * every byte that does not begin a well-formed character replaced by
 * U+FFFD and the text cut on a character boundary; *cut (may be NULL) says
 * whether anything was left out.  Caller frees.  Can't fail.
 */
size_t utf8_char_len(const char *s, size_t n);
char *utf8_truncate(const char *s, size_t max, bool *cut);

/* Monotonic and wall clocks in milliseconds. */
long long time_mono_ms(void);
long long time_wall_ms(void);

#endif
