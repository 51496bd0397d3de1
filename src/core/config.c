/*
 * config.c: loading tds.yaml.  Everything here walks the schema table of
 * config_schema.c: defaults are its default texts run through the same
 * converter as the file's values, the YAML document is matched against its
 * dotted keys, the environment overrides come from its env column, and
 * check-config, config_diff and secret registration iterate it.
 *
 * Order of precedence: defaults, then the file, then the environment; the
 * *_file secrets are read last (an environment secret wins over a file).
 * Every problem is collected with its location, and the list is sorted so
 * messages come out in file order whatever pass found them, followed by
 * those about the environment.  No message ever contains a secret value.
 */
#include "tds/config.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>
#include <libpq-fe.h>
#include <yaml.h>

#include "tds/cron.h"
#include "tds/log.h"

#define CONFIG_MAX_BYTES (1024 * 1024) /* a config file is small */
#define SECRET_MAX_BYTES (64 * 1024)
#define QUOTE_MAX 60 /* longest value quoted in a message */
/* Deepest nesting of mappings and lists a file may have (tds.yaml(5)); a
 * configuration needs three.  libyaml's loader is quadratic in the depth:
 * 100,000 levels of "[" took 40 s before this limit. */
#define CONFIG_MAX_DEPTH 64
/* Problems reported at most; the rest are counted (a file of 100,000 bad
 * keys gets a readable answer, fast). */
#define CONFIG_MAX_PROBLEMS 100

/* One problem, kept with its place so the final list can be ordered. */
struct problem {
    int rank;      /* 0: about the file as a whole, 1: at a line, 2: elsewhere */
    int line, col; /* 1-based, rank 1 only */
    size_t seq;
    char *msg; /* complete line */
};

struct loader {
    const char *path; /* as given, for messages */
    char *dir;        /* directory of path, for relative *_file; NULL = cwd */
    const char *buf;  /* file contents */
    size_t len;
    struct config_loaded *cl;
    const struct config_key *schema;
    size_t n;
    int *cols; /* column of each key's value in the file */
    struct problem *probs;
    size_t nprobs;
    size_t dropped; /* beyond CONFIG_MAX_PROBLEMS */
};

union cvalue {
    long long i;
    bool b;
    char *s;
};

/* ---- small helpers ---------------------------------------------------- */

static void *field_ptr(const struct tds_config *c, const struct config_key *k)
{
    return (char *)c + k->offset;
}

static bool type_is_string(enum config_type t)
{
    return t != CFG_INT && t != CFG_BOOL;
}

/* Appends s to sb as a YAML double-quoted string, at most max bytes of s
 * (0: no limit; a cut string ends in "..."). */
static void quote_into(struct strbuf *sb, const char *s, size_t max)
{
    strbuf_putc(sb, '"');
    size_t i = 0;
    for (; s[i] != '\0' && (max == 0 || i < max); i++) {
        unsigned char c = (unsigned char)s[i];
        switch (c) {
        case '"':
            strbuf_puts(sb, "\\\"");
            break;
        case '\\':
            strbuf_puts(sb, "\\\\");
            break;
        case '\n':
            strbuf_puts(sb, "\\n");
            break;
        case '\t':
            strbuf_puts(sb, "\\t");
            break;
        case '\r':
            strbuf_puts(sb, "\\r");
            break;
        default:
            if (c < 0x20 || c == 0x7f)
                strbuf_printf(sb, "\\x%02x", c);
            else
                strbuf_putc(sb, (char)c);
        }
    }
    if (s[i] != '\0')
        strbuf_puts(sb, "...");
    strbuf_putc(sb, '"');
}

/* A quoted, escaped and shortened copy of s for a message.  Caller frees. */
static char *quote(const char *s)
{
    struct strbuf sb = {0};
    quote_into(&sb, s, QUOTE_MAX);
    return strbuf_detach(&sb);
}

static void add_problem(struct loader *L, int rank, int line, int col, const char *fmt, ...)
    TDS_PRINTF(5, 6);

/* Records a problem; rank 1 gets "FILE:LINE:COL: ", rank 0 "FILE: ". */
static void add_problem(struct loader *L, int rank, int line, int col, const char *fmt, ...)
{
    if (L->nprobs >= CONFIG_MAX_PROBLEMS) {
        L->dropped++;
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    char *body = xvasprintf(fmt, ap);
    va_end(ap);
    struct problem *p;
    L->probs = xreallocarray(L->probs, L->nprobs + 1, sizeof *L->probs);
    p = &L->probs[L->nprobs];
    p->rank = rank;
    p->line = line;
    p->col = col;
    p->seq = L->nprobs++;
    if (rank == 1)
        p->msg = xasprintf("%s:%d:%d: %s", L->path, line, col, body);
    else if (rank == 0)
        p->msg = xasprintf("%s: %s", L->path, body);
    else
        p->msg = xstrdup(body);
    free(body);
}

static void add_at_mark(struct loader *L, yaml_mark_t m, const char *fmt, ...) TDS_PRINTF(3, 4);

static void add_at_mark(struct loader *L, yaml_mark_t m, const char *fmt, ...)
{
    if (L->nprobs >= CONFIG_MAX_PROBLEMS) {
        L->dropped++;
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    char *body = xvasprintf(fmt, ap);
    va_end(ap);
    add_problem(L, 1, (int)m.line + 1, (int)m.column + 1, "%s", body);
    free(body);
}

static int problem_cmp(const void *a, const void *b)
{
    const struct problem *x = a, *y = b;
    if (x->rank != y->rank)
        return x->rank - y->rank;
    if (x->rank == 1 && x->line != y->line)
        return x->line - y->line;
    if (x->rank == 1 && x->col != y->col)
        return x->col - y->col;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static ssize_t schema_index(const struct loader *L, const char *key)
{
    for (size_t i = 0; i < L->n; i++)
        if (strcmp(L->schema[i].key, key) == 0)
            return (ssize_t)i;
    return -1;
}

/* True when some key lives under "prefix." (a section or subsection). */
static bool schema_is_section(const struct loader *L, const char *prefix)
{
    size_t len = strlen(prefix);
    for (size_t i = 0; i < L->n; i++)
        if (strncmp(L->schema[i].key, prefix, len) == 0 && L->schema[i].key[len] == '.')
            return true;
    return false;
}

/* ---- converting one value ------------------------------------------------ */

static bool parse_bool(const char *s, bool *out)
{
    static const char *const yes[] = {"true", "yes", "on"};
    static const char *const no[] = {"false", "no", "off"};
    for (size_t i = 0; i < TDS_ARRAY_LEN(yes); i++) {
        if (strcasecmp(s, yes[i]) == 0) {
            *out = true;
            return true;
        }
        if (strcasecmp(s, no[i]) == 0) {
            *out = false;
            return true;
        }
    }
    return false;
}

/* Checks "host:port" (host a name, an IPv4 address or a bracketed IPv6
 * address; port 1-65535).  Returns NULL or what is wrong. */
static const char *listen_problem(const char *s)
{
    const char *colon;
    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        if (close == NULL || close == s + 1)
            return "has an unterminated or empty [IPv6] address";
        for (const char *p = s + 1; p < close; p++)
            if (!isxdigit((unsigned char)*p) && *p != ':' && *p != '.')
                return "has a bad character in its [IPv6] address";
        if (close[1] != ':')
            return "has no port";
        colon = close + 1;
    } else {
        colon = strrchr(s, ':');
        if (colon == NULL)
            return str_is_digits(s) ? "has no host (use 0.0.0.0 for every interface)"
                                    : "has no port";
        if (colon == s)
            return "has no host (use 0.0.0.0 for every interface)";
        for (const char *p = s; p < colon; p++)
            if (!isalnum((unsigned char)*p) && *p != '.' && *p != '-' && *p != '_')
                return "has a bad character in its host name";
    }
    long long port;
    if (!str_is_digits(colon + 1) || !str_to_ll(colon + 1, &port))
        return "has no numeric port";
    if (port < 1 || port > 65535)
        return "has a port out of range (1..65535)";
    return NULL;
}

static bool url_ok(const char *s)
{
    const char *rest;
    if (strncasecmp(s, "https://", 8) == 0)
        rest = s + 8;
    else if (strncasecmp(s, "http://", 7) == 0)
        rest = s + 7;
    else
        return false;
    if (*rest == '\0' || *rest == '/')
        return false;
    for (const char *p = s; *p != '\0'; p++)
        if ((unsigned char)*p <= ' ' || *p == 0x7f)
            return false;
    return true;
}

/* Common names for data centers that Zoho spells differently. */
static const char *data_center_hint(const char *s)
{
    static const struct {
        const char *alias, *dc;
    } hints[] = {{"us", "com"},       {"usa", "com"},   {"au", "com.au"}, {"cn", "com.cn"},
                 {"china", "com.cn"}, {"europe", "eu"}, {"india", "in"},  {"japan", "jp"},
                 {"canada", "ca"},    {"uae", "sa"},    {"ksa", "sa"}};
    for (size_t i = 0; i < TDS_ARRAY_LEN(hints); i++)
        if (strcasecmp(s, hints[i].alias) == 0)
            return hints[i].dc;
    return NULL;
}

/* The closest of a NULL-terminated list, if close enough to be a typo. */
static const char *closest(const char *s, const char *const *choices, size_t maxd)
{
    const char *best = NULL;
    size_t bestd = maxd + 1;
    for (size_t i = 0; choices[i] != NULL; i++) {
        size_t d = str_edit_distance(s, choices[i]);
        if (d < bestd) {
            bestd = d;
            best = choices[i];
        }
    }
    return best;
}

static size_t typo_distance(const char *s)
{
    size_t len = strlen(s);
    return len <= 3 ? 1 : len <= 8 ? 2 : 3;
}

static void list_choices(struct strbuf *sb, const char *const *choices)
{
    for (size_t i = 0; choices[i] != NULL; i++)
        strbuf_printf(sb, "%s%s", i ? ", " : "", choices[i]);
}

/*
 * Converts text (the YAML scalar or environment value; is_null for a YAML
 * null) for key k.  Returns NULL with *v filled (v->s owned by the caller),
 * or an error message (caller frees) that starts with the key, or with
 * "environment: NAME" when env is not NULL.  Never quotes a secret.
 */
static char *convert(const struct config_key *k, const char *text, bool is_null, const char *env,
                     union cvalue *v)
{
    char *subj = env != NULL ? xasprintf("environment: %s", env) : xstrdup(k->key);
    char *q = quote(text);
    char *msg = NULL;
    struct strbuf sb = {0};
    v->s = NULL;

    switch (k->type) {
    case CFG_INT: {
        long long n;
        if (is_null)
            msg = xasprintf("%s: expected an integer, got an empty value", subj);
        else if (!str_to_ll(text, &n))
            msg = env != NULL ? xasprintf("%s: %s is not an integer", subj, q)
                              : xasprintf("%s: expected an integer, got %s", subj, q);
        else if (n < k->min || n > k->max)
            msg = xasprintf("%s: %lld is out of range (%lld..%lld)", subj, n, k->min, k->max);
        else
            v->i = n;
        break;
    }
    case CFG_BOOL:
        if (is_null)
            msg = xasprintf("%s: expected a boolean (true/false, yes/no, on/off), got an empty "
                            "value",
                            subj);
        else if (!parse_bool(text, &v->b))
            msg = env != NULL
                      ? xasprintf("%s: %s is not a boolean (true/false, yes/no, on/off)", subj, q)
                      : xasprintf("%s: expected a boolean (true/false, yes/no, on/off), got %s",
                                  subj, q);
        break;
    case CFG_ENUM: {
        const char *t = is_null ? "" : text;
        if (strcmp(k->key, "log.level") == 0 && strcasecmp(t, "warning") == 0)
            t = "warn";
        for (size_t i = 0; k->choices[i] != NULL; i++)
            if (strcasecmp(t, k->choices[i]) == 0)
                v->s = xstrdup(k->choices[i]);
        if (v->s != NULL)
            break;
        bool dc = strcmp(k->key, "zoho.data_center") == 0;
        strbuf_printf(&sb, "%s: %s is not %s", subj, q,
                      dc ? "a Zoho data center; use one of: " : "one of: ");
        list_choices(&sb, k->choices);
        const char *hint = dc ? data_center_hint(t) : NULL;
        if (hint == NULL && *t != '\0')
            hint = closest(t, k->choices, typo_distance(t));
        if (hint != NULL)
            strbuf_printf(&sb, " (did you mean \"%s\"?)", hint);
        msg = strbuf_detach(&sb);
        break;
    }
    case CFG_CRON: {
        struct cron_expr e;
        char *err = NULL;
        if (is_null || *text == '\0' || cron_parse(text, &e, &err) == 0)
            v->s = xstrdup(is_null ? "" : text);
        else
            msg = xasprintf("%s: %s", subj, err);
        free(err);
        break;
    }
    case CFG_LISTEN: {
        const char *why = is_null || *text == '\0' ? NULL : listen_problem(text);
        if (why == NULL)
            v->s = xstrdup(is_null ? "" : text);
        else
            msg = xasprintf("%s: %s %s; expected host:port such as \"127.0.0.1:8080\" or "
                            "\"[::1]:8080\"",
                            subj, q, why);
        break;
    }
    case CFG_URL:
        if (is_null || *text == '\0' || url_ok(text))
            v->s = xstrdup(is_null ? "" : text);
        else
            msg = xasprintf("%s: %s is not an http:// or https:// URL", subj, q);
        break;
    case CFG_STRING:
    case CFG_SECRET:
    case CFG_PATH:
        v->s = xstrdup(is_null ? "" : text);
        break;
    }
    free(subj);
    free(q);
    strbuf_free(&sb);
    return msg;
}

/* Stores a converted value into its field, freeing the old string. */
static void store(struct tds_config *c, const struct config_key *k, union cvalue *v)
{
    void *p = field_ptr(c, k);
    switch (k->type) {
    case CFG_INT:
        *(int *)p = (int)v->i;
        break;
    case CFG_BOOL:
        *(bool *)p = v->b;
        break;
    default:
        free(*(char **)p);
        *(char **)p = v->s;
        v->s = NULL;
    }
}

/* ---- defaults ----------------------------------------------------------------- */

static void load_defaults(struct loader *L)
{
    for (size_t i = 0; i < L->n; i++) {
        const struct config_key *k = &L->schema[i];
        union cvalue v;
        char *msg = convert(k, k->def, false, NULL, &v);
        if (msg != NULL) { /* a bug in the table; test_config catches it */
            add_problem(L, 2, 0, 0, "internal error: bad default: %s", msg);
            free(msg);
            continue;
        }
        store(&L->cl->cfg, k, &v);
    }
}

/* ---- the file ------------------------------------------------------------------ */

/* Reads a whole file of at most max bytes.  Returns the contents (caller
 * frees) or NULL with errno set (EFBIG when too large). */
static char *slurp(const char *path, size_t max, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0)
        return NULL;
    struct stat st;
    if (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
        close(fd);
        errno = EISDIR;
        return NULL;
    }
    char *buf = xmalloc(max + 1);
    size_t got = 0;
    for (;;) {
        ssize_t r = read(fd, buf + got, max + 1 - got);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            int e = errno;
            free(buf);
            close(fd);
            errno = e;
            return NULL;
        }
        if (r == 0)
            break;
        got += (size_t)r;
        if (got > max) {
            free(buf);
            close(fd);
            errno = EFBIG;
            return NULL;
        }
    }
    close(fd);
    buf[got] = '\0';
    *len = got;
    return buf;
}

/* Byte offset in the buffer of a libyaml mark (line, column in characters). */
static size_t mark_offset(const struct loader *L, size_t line, size_t col)
{
    size_t off = 0;
    for (size_t l = 0; l < line && off < L->len; off++)
        if (L->buf[off] == '\n')
            l++;
    for (size_t c = 0; c < col && off < L->len && L->buf[off] != '\n'; c++) {
        off++;
        while (off < L->len && ((unsigned char)L->buf[off] & 0xc0) == 0x80)
            off++;
    }
    return off;
}

/* True when the byte at off is preceded on its line by blanks only. */
static bool in_indentation(const struct loader *L, size_t off)
{
    while (off > 0 && L->buf[off - 1] != '\n') {
        off--;
        if (L->buf[off] != ' ' && L->buf[off] != '\t')
            return false;
    }
    return true;
}

/* Reports every other line indented with a tab, after a syntax error at a tab. */
static void report_other_tabs(struct loader *L, size_t skip_line)
{
    size_t line = 0;
    for (size_t off = 0; off < L->len; line++) {
        size_t col = 0, tab_col = 0;
        bool tab = false;
        for (; off < L->len && (L->buf[off] == ' ' || L->buf[off] == '\t'); off++, col++)
            if (L->buf[off] == '\t' && !tab) {
                tab = true;
                tab_col = col;
            }
        bool content =
            off < L->len && L->buf[off] != '\n' && L->buf[off] != '\r' && L->buf[off] != '#';
        if (tab && content && line != skip_line)
            add_problem(L, 1, (int)line + 1, (int)tab_col + 1,
                        "tab character in indentation (use spaces)");
        while (off < L->len && L->buf[off] != '\n')
            off++;
        if (off < L->len)
            off++;
    }
}

/* libyaml's wording, made a little friendlier for the common cases. */
static void report_syntax_error(struct loader *L, const yaml_parser_t *p)
{
    if (p->error == YAML_MEMORY_ERROR) {
        fprintf(stderr, "tds: out of memory while parsing %s\n", L->path);
        abort();
    }
    if (p->error == YAML_READER_ERROR) {
        size_t line = 0, col = 0;
        for (size_t i = 0; i < p->problem_offset && i < L->len; i++) {
            if (L->buf[i] == '\n') {
                line++;
                col = 0;
            } else if (((unsigned char)L->buf[i] & 0xc0) != 0x80) {
                col++;
            }
        }
        add_problem(L, 1, (int)line + 1, (int)col + 1,
                    "YAML syntax error: %s (the file must be UTF-8 text)",
                    p->problem != NULL ? p->problem : "unreadable input");
        return;
    }
    yaml_mark_t m = p->problem_mark;
    const char *problem = p->problem != NULL ? p->problem : "syntax error";
    size_t off = mark_offset(L, m.line, m.column);
    char c = off < L->len ? L->buf[off] : '\0';

    if (c == '\t') {
        if (in_indentation(L, off)) {
            add_at_mark(L, m, "tab character in indentation (use spaces)");
            report_other_tabs(L, m.line);
        } else {
            add_at_mark(L, m, "tab character here; YAML separates with spaces");
        }
        return;
    }
    const char *ctx = p->context;
    if (strcmp(problem, "found character that cannot start any token") == 0 && c != '\0' &&
        (unsigned char)c >= 0x20 && (unsigned char)c < 0x7f) {
        add_at_mark(L, m, "YAML syntax error: '%c' cannot start a value (put the value in quotes)",
                    c);
        return;
    }
    if (strcmp(problem, "mapping values are not allowed in this context") == 0) {
        add_at_mark(L, m,
                    "YAML syntax error: unexpected ':' (check the indentation, or quote a "
                    "value that contains \": \")");
        return;
    }
    if (ctx != NULL && strstr(ctx, "quoted scalar") != NULL &&
        strstr(problem, "end of stream") != NULL) {
        add_at_mark(L, m, "YAML syntax error: unterminated quoted string (it starts at line %zu)",
                    p->context_mark.line + 1);
        return;
    }
    if (ctx != NULL && strcmp(problem, "did not find expected key") == 0 &&
        strstr(ctx, "block mapping") != NULL) {
        add_at_mark(L, m,
                    "YAML syntax error: bad indentation (this line does not line up with "
                    "the keys of the mapping that starts at line %zu)",
                    p->context_mark.line + 1);
        return;
    }
    if (ctx != NULL) {
        const char *what = ctx;
        if (str_starts_with(what, "while parsing "))
            what += strlen("while parsing ");
        else if (str_starts_with(what, "while scanning "))
            what += strlen("while scanning ");
        add_at_mark(L, m, "YAML syntax error: %s (in %s that starts at line %zu)", problem, what,
                    p->context_mark.line + 1);
    } else
        add_at_mark(L, m, "YAML syntax error: %s", problem);
}

static bool scalar_is_null(const yaml_node_t *n)
{
    if (n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return false;
    const char *s = (const char *)n->data.scalar.value;
    return *s == '\0' || strcmp(s, "~") == 0 || strcmp(s, "null") == 0 || strcmp(s, "Null") == 0 ||
           strcmp(s, "NULL") == 0;
}

/* Whether text names something secret (a key of it, or its value). */
static bool secret_like(const char *s)
{
    static const char *const words[] = {"secret", "token",      "password", "passwd",
                                        "dsn",    "credential", "postgres"};
    char *low = xstrdup(s);
    for (char *p = low; *p != '\0'; p++)
        *p = (char)tolower((unsigned char)*p);
    bool yes = false;
    for (size_t i = 0; i < TDS_ARRAY_LEN(words) && !yes; i++)
        yes = strstr(low, words[i]) != NULL;
    free(low);
    return yes;
}

/* Length of the name that starts s when s reads as "name:value" or
 * "name=value" (a key and its value without the blank between), else 0. */
static size_t glued_key(const char *s)
{
    size_t n = 0;
    while (isalnum((unsigned char)s[n]) || s[n] == '_' || s[n] == '-' || s[n] == '.')
        n++;
    return n > 0 && (s[n] == ':' || s[n] == '=') && s[n + 1] != '\0' ? n : 0;
}

/*
 * A scalar that stands where a mapping was expected, for a message: quoted
 * unless it may hold a secret.  `client_secret:VALUE` (no blank after the
 * colon) shows as "client_secret:..." with a hint, and any other text that
 * names a secret is not shown at all.  Caller frees.
 */
static char *describe_scalar(const char *s)
{
    size_t k = glued_key(s);
    if (k > 0)
        return xasprintf("\"%.*s%c...\" (a key and its value need a blank after the '%c'; "
                         "the rest is not shown)",
                         (int)(k < QUOTE_MAX ? k : QUOTE_MAX), s, s[k], s[k]);
    if (secret_like(s))
        return xstrdup("a value that is not shown (it may hold a secret)");
    return quote(s);
}

/* "a mapping", "a list" or the scalar (describe_scalar); caller frees. */
static char *describe_node(const yaml_node_t *n)
{
    if (n->type == YAML_MAPPING_NODE)
        return xstrdup("a mapping");
    if (n->type == YAML_SEQUENCE_NODE)
        return xstrdup("a list");
    if (scalar_is_null(n))
        return xstrdup("an empty value");
    return describe_scalar((const char *)n->data.scalar.value);
}

/* A key's name for a message: quoted, but only up to a ':', '=' or blank
 * glued into it (`client_secret:VALUE` as one key shows "client_secret:...").
 * Sets *cut to the length kept.  Caller frees. */
static char *quote_key(const char *name, size_t *cut)
{
    size_t n = strcspn(name, ":= \t");
    *cut = n;
    if (name[n] == '\0')
        return quote(name);
    char *head = xstrndup(name, n);
    struct strbuf sb = {0};
    quote_into(&sb, head, QUOTE_MAX);
    free(head);
    sb.buf[sb.len - 1] = '\0'; /* reopen the quotes */
    sb.len--;
    strbuf_printf(&sb, "%c...\"", name[n] == '\t' ? ' ' : name[n]);
    return strbuf_detach(&sb);
}

static const char *type_expectation(const struct config_key *k)
{
    switch (k->type) {
    case CFG_INT:
        return "an integer";
    case CFG_BOOL:
        return "a boolean";
    case CFG_ENUM:
        return "one of its values";
    case CFG_CRON:
        return "a cron line";
    case CFG_LISTEN:
        return "host:port";
    case CFG_URL:
        return "a URL";
    case CFG_PATH:
        return "a path";
    case CFG_STRING:
    case CFG_SECRET:
        return "a string";
    }
    return "a value";
}

/* Distinct next components of the keys under prefix ("" = top level), into
 * names (at most max); returns how many. */
static size_t children(const struct loader *L, const char *prefix, const char **names, size_t *lens,
                       size_t max)
{
    size_t plen = strlen(prefix), n = 0;
    for (size_t i = 0; i < L->n; i++) {
        const char *k = L->schema[i].key;
        if (plen > 0 && (strncmp(k, prefix, plen) != 0 || k[plen] != '.'))
            continue;
        const char *c = plen > 0 ? k + plen + 1 : k;
        size_t len = strcspn(c, ".");
        bool seen = false;
        for (size_t j = 0; j < n && !seen; j++)
            seen = lens[j] == len && strncmp(names[j], c, len) == 0;
        if (!seen && n < max) {
            names[n] = c;
            lens[n++] = len;
        }
    }
    return n;
}

/*
 * A "did you mean" for an unknown name under prefix: a sibling with a close
 * spelling, else any key or section elsewhere with that name or a close one,
 * as "NAME in SECTION".  Returns a new string or NULL.
 */
static char *suggest(const struct loader *L, const char *prefix, const char *name)
{
    const char *names[64];
    size_t lens[64];
    size_t n = children(L, prefix, names, lens, TDS_ARRAY_LEN(names));
    size_t maxd = typo_distance(name), bestd = SIZE_MAX;
    char *best = NULL;
    for (size_t i = 0; i < n; i++) {
        char *c = xstrndup(names[i], lens[i]);
        size_t d = str_edit_distance(name, c);
        if (d <= maxd && d < bestd) {
            free(best);
            best = c;
            bestd = d;
        } else {
            free(c);
        }
    }
    if (best != NULL) {
        char *r = xasprintf("\"%s\"", best);
        free(best);
        return r;
    }
    /* Elsewhere: every component of every key, closest first. */
    char *where = NULL;
    for (size_t i = 0; i < L->n; i++) {
        const char *k = L->schema[i].key;
        for (const char *c = k; c != NULL; c = strchr(c, '.') ? strchr(c, '.') + 1 : NULL) {
            size_t len = strcspn(c, ".");
            char *comp = xstrndup(c, len);
            size_t d = str_edit_distance(name, comp);
            if (d <= maxd && d < bestd && c != k) {
                free(best);
                free(where);
                best = comp;
                where = xstrndup(k, (size_t)(c - k - 1));
                bestd = d;
            } else {
                free(comp);
            }
        }
    }
    if (best == NULL)
        return NULL;
    char *r = xasprintf("\"%s\" in %s", best, where);
    free(best);
    free(where);
    return r;
}

static void walk_mapping(struct loader *L, yaml_document_t *doc, yaml_node_t *map,
                         const char *prefix);

static void unknown_key(struct loader *L, const yaml_node_t *kn, const char *prefix,
                        const char *name)
{
    if (L->nprobs >= CONFIG_MAX_PROBLEMS) { /* not worth a suggestion */
        L->dropped++;
        return;
    }
    size_t cut;
    char *q = quote_key(name, &cut);
    char *head = xstrndup(name, cut);
    char *s = cut > 0 ? suggest(L, prefix, head) : NULL;
    free(head);
    struct strbuf sb = {0};
    if (*prefix == '\0')
        strbuf_printf(&sb, "unknown section %s", q);
    else
        strbuf_printf(&sb, "unknown key %s in %s", q, prefix);
    if (name[cut] == ':' || name[cut] == '=') {
        strbuf_printf(&sb,
                      " (a key and its value need a blank after the '%c'; the rest is not "
                      "shown)",
                      name[cut]);
    } else if (s != NULL) {
        strbuf_printf(&sb, " (did you mean %s?)", s);
    } else if (*prefix == '\0') {
        const char *names[32];
        size_t lens[32];
        size_t n = children(L, "", names, lens, TDS_ARRAY_LEN(names));
        strbuf_puts(&sb, " (sections are");
        for (size_t i = 0; i < n; i++)
            strbuf_printf(&sb, "%s %.*s", i ? "," : "", (int)lens[i], names[i]);
        strbuf_putc(&sb, ')');
    }
    add_at_mark(L, kn->start_mark, "%s", sb.buf);
    strbuf_free(&sb);
    free(s);
    free(q);
}

/* One "key: value" pair whose dotted name is full. */
static void walk_pair(struct loader *L, yaml_document_t *doc, const yaml_node_t *kn,
                      yaml_node_t *vn, const char *prefix, const char *name)
{
    char *full = *prefix != '\0' ? xasprintf("%s.%s", prefix, name) : xstrdup(name);
    ssize_t idx = schema_index(L, full);
    if (idx >= 0) {
        const struct config_key *k = &L->schema[idx];
        if (vn->type != YAML_SCALAR_NODE) {
            char *d = describe_node(vn);
            add_at_mark(L, vn->start_mark, "%s: expected %s, got %s", full, type_expectation(k), d);
            free(d);
        } else {
            union cvalue v;
            char *msg =
                convert(k, (const char *)vn->data.scalar.value, scalar_is_null(vn), NULL, &v);
            if (msg != NULL) {
                add_at_mark(L, vn->start_mark, "%s", msg);
                free(msg);
            } else {
                store(&L->cl->cfg, k, &v);
                L->cl->sources[idx] = CONFIG_SRC_FILE;
                L->cl->lines[idx] = (int)vn->start_mark.line + 1;
                L->cols[idx] = (int)vn->start_mark.column + 1;
            }
        }
    } else if (schema_is_section(L, full)) {
        if (vn->type == YAML_MAPPING_NODE) {
            walk_mapping(L, doc, vn, full);
        } else if (!(vn->type == YAML_SCALAR_NODE && scalar_is_null(vn))) {
            char *d = describe_node(vn);
            add_at_mark(L, vn->start_mark, "%s is a section: expected a mapping of keys, got %s",
                        full, d);
            free(d);
        }
    } else {
        unknown_key(L, kn, prefix, name);
    }
    free(full);
}

struct key_ref {
    const char *name;
    size_t at;
    const yaml_node_t *node;
};

static int key_ref_cmp(const void *a, const void *b)
{
    const struct key_ref *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    return c != 0 ? c : x->at < y->at ? -1 : x->at > y->at;
}

/*
 * For each of the n pairs, the key node of an earlier pair with the same
 * name, or NULL: sorted, so a mapping of any width costs n log n (checking
 * each key against all before it took minutes for 100,000 keys).  Caller
 * frees.
 */
static const yaml_node_t **first_of_each_key(yaml_document_t *doc, yaml_node_pair_t *pairs,
                                             size_t n)
{
    const yaml_node_t **firsts = xcalloc(n + 1, sizeof *firsts);
    struct key_ref *refs = xcalloc(n + 1, sizeof *refs);
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        yaml_node_t *kn = yaml_document_get_node(doc, pairs[i].key);
        if (kn != NULL && kn->type == YAML_SCALAR_NODE)
            refs[m++] = (struct key_ref){(const char *)kn->data.scalar.value, i, kn};
    }
    qsort(refs, m, sizeof *refs, key_ref_cmp);
    for (size_t i = 1, g = 0; i < m; i++) {
        if (strcmp(refs[i].name, refs[g].name) != 0)
            g = i; /* a new name: refs[g] is its first place */
        else
            firsts[refs[i].at] = refs[g].node;
    }
    free(refs);
    return firsts;
}

static void walk_mapping(struct loader *L, yaml_document_t *doc, yaml_node_t *map,
                         const char *prefix)
{
    yaml_node_pair_t *start = map->data.mapping.pairs.start;
    yaml_node_pair_t *top = map->data.mapping.pairs.top;
    const yaml_node_t **firsts = first_of_each_key(doc, start, (size_t)(top - start));
    for (yaml_node_pair_t *pair = start; pair < top; pair++) {
        yaml_node_t *kn = yaml_document_get_node(doc, pair->key);
        yaml_node_t *vn = yaml_document_get_node(doc, pair->value);
        if (kn == NULL || vn == NULL)
            continue;
        if (kn->type != YAML_SCALAR_NODE) {
            char *d = describe_node(kn);
            add_at_mark(L, kn->start_mark, "a key must be a plain name, got %s", d);
            free(d);
            continue;
        }
        const char *name = (const char *)kn->data.scalar.value;
        const yaml_node_t *first = firsts[pair - start];
        if (first != NULL) {
            size_t cut;
            char *q = quote_key(name, &cut);
            if (*prefix == '\0')
                add_at_mark(L, kn->start_mark, "duplicate section %s (first at line %zu)", q,
                            first->start_mark.line + 1);
            else
                add_at_mark(L, kn->start_mark, "duplicate key %s in %s (first at line %zu)", q,
                            prefix, first->start_mark.line + 1);
            free(q);
            continue;
        }
        walk_pair(L, doc, kn, vn, prefix, name);
    }
    free(firsts);
}

static void load_document(struct loader *L, yaml_document_t *doc)
{
    yaml_node_t *root = yaml_document_get_root_node(doc);
    if (root == NULL || (root->type == YAML_SCALAR_NODE && scalar_is_null(root)))
        return; /* empty file: defaults */
    if (root->type != YAML_MAPPING_NODE) {
        char *d = describe_node(root);
        add_at_mark(L, root->start_mark,
                    "the top level must be a mapping of sections (database:, zoho:, engine: ...), "
                    "got %s",
                    d);
        free(d);
        return;
    }
    walk_mapping(L, doc, root, "");
}

/*
 * A pass over the parser's events before the document is built: refuses a
 * file nested deeper than CONFIG_MAX_DEPTH at the collection that goes too
 * deep, after reading only up to it.  Returns false after reporting; a
 * syntax error is left to the loader, which meets it at the same place.
 */
static bool depth_ok(struct loader *L)
{
    yaml_parser_t p;
    if (!yaml_parser_initialize(&p)) {
        fprintf(stderr, "tds: out of memory\n");
        abort();
    }
    yaml_parser_set_input_string(&p, (const unsigned char *)L->buf, L->len);
    int depth = 0;
    bool ok = true, done = false;
    while (ok && !done) {
        yaml_event_t ev;
        if (!yaml_parser_parse(&p, &ev))
            break;
        switch (ev.type) {
        case YAML_MAPPING_START_EVENT:
        case YAML_SEQUENCE_START_EVENT:
            if (++depth > CONFIG_MAX_DEPTH) {
                add_at_mark(L, ev.start_mark,
                            "nested deeper than %d levels of mappings and lists "
                            "(a configuration needs 3)",
                            CONFIG_MAX_DEPTH);
                ok = false;
            }
            break;
        case YAML_MAPPING_END_EVENT:
        case YAML_SEQUENCE_END_EVENT:
            depth--;
            break;
        case YAML_STREAM_END_EVENT:
            done = true;
            break;
        default:
            break;
        }
        yaml_event_delete(&ev);
    }
    yaml_parser_delete(&p);
    return ok;
}

static void load_file(struct loader *L)
{
    size_t len = 0;
    char *buf = slurp(L->path, CONFIG_MAX_BYTES, &len);
    if (buf == NULL) {
        if (errno == EFBIG)
            add_problem(L, 0, 0, 0, "cannot read: larger than %d bytes", CONFIG_MAX_BYTES);
        else
            add_problem(L, 0, 0, 0, "cannot read: %s", strerror(errno));
        return;
    }
    L->buf = buf;
    L->len = len;
    if (!depth_ok(L)) {
        free(buf);
        L->buf = NULL;
        L->len = 0;
        return;
    }

    yaml_parser_t parser;
    if (!yaml_parser_initialize(&parser)) {
        fprintf(stderr, "tds: out of memory\n");
        abort();
    }
    yaml_parser_set_input_string(&parser, (const unsigned char *)buf, len);
    yaml_document_t doc;
    if (!yaml_parser_load(&parser, &doc)) {
        report_syntax_error(L, &parser);
    } else {
        load_document(L, &doc);
        yaml_document_delete(&doc);
        /* A second document is a mistake (a stray "---"). */
        if (!yaml_parser_load(&parser, &doc)) {
            report_syntax_error(L, &parser);
        } else {
            yaml_node_t *r = yaml_document_get_root_node(&doc);
            if (r != NULL)
                add_at_mark(L, r->start_mark, "a second YAML document; tds.yaml holds exactly one");
            yaml_document_delete(&doc);
        }
    }
    yaml_parser_delete(&parser);
    free(buf);
    L->buf = NULL;
    L->len = 0;
}

/* ---- environment ----------------------------------------------------------- */

/* TDS_STOCK_SYNC_INTERVAL_MINUTES: N minutes as a cron line, or NULL with *msg. */
static char *interval_to_cron(const char *env, const char *text, char **msg)
{
    long long n;
    char *q = quote(text);
    char *r = NULL;
    if (!str_to_ll(text, &n))
        *msg = xasprintf("environment: %s: %s is not an integer", env, q);
    else if (n >= 1 && n <= 59)
        r = xasprintf("*/%lld * * * *", n);
    else if (n >= 60 && n % 60 == 0 && n / 60 <= 23)
        r = xasprintf("0 */%lld * * *", n / 60);
    else
        *msg = xasprintf("environment: %s: %lld minutes cannot be a schedule (use 1 to 59, or "
                         "whole hours from 60 to 1380)",
                         env, n);
    free(q);
    return r;
}

static void apply_env(struct loader *L)
{
    for (size_t i = 0; i < L->n; i++) {
        const struct config_key *k = &L->schema[i];
        if (k->env == NULL)
            continue;
        const char *text = getenv(k->env);
        if (str_empty(text))
            continue; /* unset or empty: the file or default stands */
        char *msg = NULL;
        char *cron = NULL;
        if (strcmp(k->env, "TDS_STOCK_SYNC_INTERVAL_MINUTES") == 0) {
            cron = interval_to_cron(k->env, text, &msg);
            if (cron == NULL) {
                add_problem(L, 2, 0, 0, "%s", msg);
                free(msg);
                continue;
            }
            text = cron;
        }
        union cvalue v;
        msg = convert(k, text, false, k->env, &v);
        free(cron);
        if (msg != NULL) {
            add_problem(L, 2, 0, 0, "%s", msg);
            free(msg);
            continue;
        }
        store(&L->cl->cfg, k, &v);
        L->cl->sources[i] = CONFIG_SRC_ENV;
        L->cl->lines[i] = 0;
    }
}

/* ---- secrets from files ----------------------------------------------------- */

static char *resolve_path(const struct loader *L, const char *p)
{
    if (p[0] == '/' || L->dir == NULL)
        return xstrdup(p);
    return xasprintf("%s/%s", L->dir, p);
}

/* Reads the first line of a secret file; NULL with *why set on failure. */
static char *read_secret_file(const char *path, char **why)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0 && (errno == ENOENT || errno == ENOTDIR || errno == ENAMETOOLONG)) {
        /* No such file: perhaps the secret itself was written here. */
        *why = xasprintf("cannot read the file it names: %s (the name is not shown: it may "
                         "be the secret itself)",
                         strerror(errno));
        return NULL;
    }
    if (fd < 0) {
        *why = xasprintf("cannot read %s: %s", path, strerror(errno));
        return NULL;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        *why = xasprintf("%s is not a regular file", path);
        close(fd);
        return NULL;
    }
    if (st.st_mode & (S_IRGRP | S_IROTH)) {
        *why = xasprintf("%s is readable by group or others; run chmod 600 %s", path, path);
        close(fd);
        return NULL;
    }
    char *buf = xmalloc(SECRET_MAX_BYTES + 1);
    size_t got = 0;
    while (got < SECRET_MAX_BYTES) {
        ssize_t r = read(fd, buf + got, SECRET_MAX_BYTES - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            *why = xasprintf("cannot read %s: %s", path, strerror(errno));
            free(buf);
            close(fd);
            return NULL;
        }
        if (r == 0)
            break;
        got += (size_t)r;
        if (memchr(buf, '\n', got) != NULL)
            break;
    }
    close(fd);
    buf[got] = '\0';
    buf[strcspn(buf, "\n")] = '\0';
    size_t len = strlen(buf);
    while (len > 0 && (buf[len - 1] == '\r' || buf[len - 1] == ' ' || buf[len - 1] == '\t'))
        buf[--len] = '\0';
    if (len == 0) {
        *why = xasprintf("%s is empty (the secret is its first line)", path);
        free(buf);
        return NULL;
    }
    return buf;
}

static void resolve_secrets(struct loader *L)
{
    struct tds_config *c = &L->cl->cfg;
    for (size_t i = 0; i < L->n; i++) {
        const struct config_key *k = &L->schema[i];
        if (k->type != CFG_SECRET)
            continue;
        char *fkey = xasprintf("%s_file", k->key);
        ssize_t fi = schema_index(L, fkey);
        free(fkey);
        if (fi < 0)
            continue;
        const struct config_key *fk = &L->schema[fi];
        const char *fpath = *(char **)field_ptr(c, fk);
        if (str_empty(fpath) || L->cl->sources[i] == CONFIG_SRC_ENV)
            continue; /* nothing to read, or the environment wins */
        int line = L->cl->lines[fi], col = L->cols[fi];
        if (L->cl->sources[i] == CONFIG_SRC_FILE && !str_empty(*(char **)field_ptr(c, k))) {
            add_problem(L, 1, line, col, "%s and %s are both set; keep only one", k->key, fk->key);
            continue;
        }
        char *path = resolve_path(L, fpath);
        char *why = NULL;
        char *secret = read_secret_file(path, &why);
        free(path);
        if (secret == NULL) {
            add_problem(L, line > 0 ? 1 : 2, line, col, "%s: %s", fk->key, why);
            free(why);
            continue;
        }
        char **dst = field_ptr(c, k);
        free(*dst);
        *dst = secret;
        L->cl->sources[i] = L->cl->sources[fi];
        L->cl->lines[i] = line;
    }
}

/* ---- rules between keys ------------------------------------------------------ */

/* Reports msg, about two keys, where key `at` was set in the file, else
 * where `other` was (the file caused it either way), else plain (both came
 * from the environment). */
static void add_about(struct loader *L, const char *at, const char *other, const char *msg)
{
    const char *keys[2] = {at, other};
    for (int k = 0; k < 2; k++) {
        ssize_t i = schema_index(L, keys[k]);
        if (i >= 0 && L->cl->sources[i] == CONFIG_SRC_FILE && L->cl->lines[i] > 0) {
            add_problem(L, 1, L->cl->lines[i], L->cols[i], "%s", msg);
            return;
        }
    }
    add_problem(L, 2, 0, 0, "%s", msg);
}

static void cross_checks(struct loader *L)
{
    const struct tds_config *c = &L->cl->cfg;
    char *dsn_problem = config_dsn_problem(c->database.dsn);
    if (dsn_problem != NULL) {
        ssize_t di = schema_index(L, "database.dsn");
        bool env = di >= 0 && L->cl->sources[di] == CONFIG_SRC_ENV;
        char *m = xasprintf("%s: %s", env ? "environment: TDS_DATABASE_URL" : "database.dsn",
                            dsn_problem);
        add_about(L, "database.dsn", "database.dsn", m);
        free(m);
        free(dsn_problem);
    }
    if (c->engine.retry.backoff_max_seconds < c->engine.retry.backoff_seconds) {
        char *m = xasprintf("engine.retry.backoff_max_seconds: %d is less than "
                            "engine.retry.backoff_seconds (%d)",
                            c->engine.retry.backoff_max_seconds, c->engine.retry.backoff_seconds);
        add_about(L, "engine.retry.backoff_max_seconds", "engine.retry.backoff_seconds", m);
        free(m);
    }
    if (c->engine.dead_after_seconds <= c->engine.heartbeat_seconds) {
        char *m = xasprintf("engine.dead_after_seconds: %d must be more than "
                            "engine.heartbeat_seconds (%d)",
                            c->engine.dead_after_seconds, c->engine.heartbeat_seconds);
        add_about(L, "engine.dead_after_seconds", "engine.heartbeat_seconds", m);
        free(m);
    }
}

/* ---- public ------------------------------------------------------------------ */

/*
 * Finds the configuration file (see config.h).  $TDS_CONFIG, like --config,
 * names a file on purpose, so it is returned even when missing and the
 * loader reports it; the default places are returned only if they exist.
 */
char *config_find(const char *explicit_path)
{
    if (explicit_path != NULL)
        return xstrdup(explicit_path);
    const char *env = getenv("TDS_CONFIG");
    if (!str_empty(env))
        return xstrdup(env);
    char *p = NULL;
    const char *xdg = getenv("XDG_CONFIG_HOME");
    const char *home = getenv("HOME");
    if (!str_empty(xdg))
        p = xasprintf("%s/tds/tds.yaml", xdg);
    else if (!str_empty(home))
        p = xasprintf("%s/.config/tds/tds.yaml", home);
    if (p != NULL && access(p, F_OK) == 0)
        return p;
    free(p);
    if (access("/etc/tds/tds.yaml", F_OK) == 0)
        return xstrdup("/etc/tds/tds.yaml");
    return NULL;
}

/*
 * Loads defaults, the file and the environment, resolves secrets and
 * validates (see config.h).  Returns 0, or -1 with every problem appended to
 * *errs in file order; *out must be freed with config_loaded_free either way.
 */
int config_load(const char *path, struct config_loaded *out, struct config_errors *errs)
{
    memset(out, 0, sizeof *out);
    struct loader L = {0};
    L.schema = config_schema(&L.n);
    L.cl = out;
    L.path = path;
    out->sources = xcalloc(L.n, sizeof *out->sources);
    out->lines = xcalloc(L.n, sizeof *out->lines);
    L.cols = xcalloc(L.n, sizeof *L.cols);

    load_defaults(&L);
    if (path != NULL) {
        out->path = xstrdup(path);
        const char *slash = strrchr(path, '/');
        if (slash != NULL)
            L.dir = slash == path ? xstrdup("/") : xstrndup(path, (size_t)(slash - path));
        load_file(&L);
    }
    apply_env(&L);
    resolve_secrets(&L);
    cross_checks(&L);

    if (L.nprobs > 1)
        qsort(L.probs, L.nprobs, sizeof *L.probs, problem_cmp);
    if (L.nprobs > 0)
        errs->msg = xreallocarray(errs->msg, errs->n + L.nprobs, sizeof *errs->msg);
    for (size_t i = 0; i < L.nprobs; i++)
        errs->msg[errs->n++] = L.probs[i].msg;
    if (L.dropped > 0) {
        errs->msg = xreallocarray(errs->msg, errs->n + 1, sizeof *errs->msg);
        errs->msg[errs->n++] = xasprintf("%s: %zu more problem%s not shown", path ? path : "",
                                         L.dropped, L.dropped == 1 ? "" : "s");
    }
    int rc = L.nprobs > 0 ? -1 : 0;
    free(L.probs);
    free(L.cols);
    free(L.dir);
    return rc;
}

/* Frees what config_load filled; safe on a zeroed struct.  Can't fail. */
void config_loaded_free(struct config_loaded *cl)
{
    size_t n;
    const struct config_key *schema = config_schema(&n);
    for (size_t i = 0; i < n; i++) {
        if (!type_is_string(schema[i].type))
            continue;
        char **p = field_ptr(&cl->cfg, &schema[i]);
        if (*p != NULL && schema[i].type == CFG_SECRET)
            memset(*p, 0, strlen(*p));
        free(*p);
        *p = NULL;
    }
    free(cl->path);
    free(cl->sources);
    free(cl->lines);
    cl->path = NULL;
    cl->sources = NULL;
    cl->lines = NULL;
}

/* Frees the messages; safe on a zeroed struct.  Can't fail. */
void config_errors_free(struct config_errors *errs)
{
    for (size_t i = 0; i < errs->n; i++)
        free(errs->msg[i]);
    free(errs->msg);
    errs->msg = NULL;
    errs->n = 0;
}

/*
 * ---- passwords in database.dsn ----
 *
 * A password may sit in a libpq URI (user:PASSWORD@, ?password=...) or in a
 * conninfo string (password=..., quoted or with backslash escapes), spelt
 * with '&', '?', '@', '/', quotes or %-escapes, under any keyword containing
 * "password" in any case (sslpassword too, and pass%77ord in a URI).  The
 * spans are found generously: where libpq would read a value differently
 * from what its author meant (a '/' in a URI password, "double quotes" in
 * conninfo), the span covers what was meant, so that neither check-config
 * nor a message shows any of it.
 */
struct dsn_span {
    size_t start, len;
    bool uri; /* %-encoded; else a conninfo value (quotes, backslashes) */
};

#define DSN_MAX_SPANS 16

/* s[0..n) with %XX decoded, lower-cased when asked; caller frees. */
static char *pct_decode(const char *s, size_t n, bool lower)
{
    struct strbuf sb = {0};
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '%' && i + 2 < n && isxdigit((unsigned char)s[i + 1]) &&
            isxdigit((unsigned char)s[i + 2])) {
            char hex[3] = {s[i + 1], s[i + 2], '\0'};
            c = (char)strtol(hex, NULL, 16);
            i += 2;
        }
        strbuf_putc(&sb, lower ? (char)tolower((unsigned char)c) : c);
    }
    return strbuf_detach(&sb);
}

/* Whether a keyword (n bytes, %-encoded when uri) names a password. */
static bool password_keyword(const char *kw, size_t n, bool uri)
{
    char *k = uri ? pct_decode(kw, n, true) : xstrndup(kw, n);
    for (char *p = k; *p != '\0'; p++)
        *p = (char)tolower((unsigned char)*p);
    bool yes = strstr(k, "password") != NULL;
    free(k);
    return yes;
}

/* "scheme://": libpq knows postgresql:// and postgres://; any other spelling
 * of a URI is still treated as one here, so its password is still hidden. */
static const char *uri_authority(const char *dsn)
{
    const char *sep = strstr(dsn, "://");
    if (sep == NULL || sep == dsn)
        return NULL;
    for (const char *p = dsn; p < sep; p++)
        if (!isalnum((unsigned char)*p) && *p != '+' && *p != '-' && *p != '.')
            return NULL;
    return sep + 3;
}

static size_t uri_spans(const char *dsn, const char *auth, struct dsn_span *sp)
{
    size_t n = 0;
    const char *host = auth;
    const char *first_at = strchr(auth, '@');
    if (first_at != NULL) {
        /* The user part ends at the last '@' before the path: a password
         * may hold '@', '?', '&' or '/' (libpq stops at '/', and fails). */
        const char *slash = strchr(first_at, '/');
        const char *end = first_at;
        for (const char *p = first_at; p != NULL && (slash == NULL || p < slash);
             p = strchr(p + 1, '@'))
            end = p;
        const char *colon = memchr(auth, ':', (size_t)(end - auth));
        if (colon != NULL && colon + 1 < end)
            sp[n++] = (struct dsn_span){(size_t)(colon + 1 - dsn), (size_t)(end - colon - 1), true};
        host = end + 1;
    }
    const char *p = strchr(host, '?');
    while (p != NULL && n < DSN_MAX_SPANS) {
        p++;
        size_t plen = strcspn(p, "&");
        const char *eq = memchr(p, '=', plen);
        if (eq != NULL && password_keyword(p, (size_t)(eq - p), true) && eq + 1 < p + plen)
            sp[n++] = (struct dsn_span){(size_t)(eq + 1 - dsn), (size_t)(p + plen - eq - 1), true};
        p = p[plen] == '&' ? p + plen : NULL;
    }
    return n;
}

static size_t kv_spans(const char *dsn, struct dsn_span *sp)
{
    size_t n = 0;
    const char *p = dsn;
    while (n < DSN_MAX_SPANS) {
        while (isspace((unsigned char)*p))
            p++;
        if (*p == '\0')
            break;
        const char *kw = p;
        while (*p != '\0' && *p != '=' && !isspace((unsigned char)*p))
            p++;
        size_t kwlen = (size_t)(p - kw);
        while (isspace((unsigned char)*p))
            p++;
        if (*p != '=')
            continue; /* a word without '=' (libpq refuses it) */
        p++;
        while (isspace((unsigned char)*p))
            p++;
        const char *v = p;
        if (*p == '\'') {
            for (p++; *p != '\0' && *p != '\''; p++)
                if (*p == '\\' && p[1] != '\0')
                    p++;
            if (*p == '\'')
                p++;
        } else if (*p == '"') {
            /* Not libpq's quoting, but meant as quotes: up to the closing one. */
            const char *close = strchr(p + 1, '"');
            p = close != NULL ? close + 1 : p + strlen(p);
        }
        for (; *p != '\0' && !isspace((unsigned char)*p); p++)
            if (*p == '\\' && p[1] != '\0')
                p++;
        if (p > v && password_keyword(kw, kwlen, false))
            sp[n++] = (struct dsn_span){(size_t)(v - dsn), (size_t)(p - v), false};
    }
    return n;
}

/* The password spans of dsn, left to right; returns how many. */
static size_t dsn_spans(const char *dsn, struct dsn_span *sp)
{
    const char *auth = uri_authority(dsn);
    return auth != NULL ? uri_spans(dsn, auth, sp) : kv_spans(dsn, sp);
}

/*
 * A libpq message about a connection string it could not parse quotes
 * pieces of that string ("missing "=" after "...""), and where the string
 * is malformed the pieces may be parts of a password: each quoted piece
 * that is not a connection keyword (or "=") becomes "<hidden>".  Caller
 * frees.
 */
char *config_dsn_hide_fragments(const char *m)
{
    PQconninfoOption *defs = PQconndefaults();
    struct strbuf sb = {0};
    const char *p = m;
    for (const char *q; (q = strchr(p, '"')) != NULL;) {
        const char *e = strchr(q + 1, '"');
        if (e == NULL)
            break;
        /* The piece may itself end in a quote: take the last of a run. */
        while (e[1] == '"')
            e++;
        size_t n = (size_t)(e - q - 1);
        bool keep = n == 1 && q[1] == '=';
        for (PQconninfoOption *o = defs; o != NULL && o->keyword != NULL && !keep; o++)
            keep = strlen(o->keyword) == n && strncmp(o->keyword, q + 1, n) == 0;
        strbuf_append(&sb, p, (size_t)(q - p));
        if (keep)
            strbuf_append(&sb, q, n + 2);
        else
            strbuf_puts(&sb, "\"<hidden>\"");
        p = e + 1;
    }
    strbuf_puts(&sb, p);
    PQconninfoFree(defs);
    return strbuf_detach(&sb);
}

/* Whether libpq reads dsn as a connection string (a URI or keyword=value);
 * anything else is a database name. */
static bool dsn_is_conninfo(const char *dsn)
{
    return str_starts_with(dsn, "postgresql://") || str_starts_with(dsn, "postgres://") ||
           strchr(dsn, '=') != NULL;
}

char *config_dsn_problem(const char *dsn)
{
    if (str_empty(dsn) || !dsn_is_conninfo(dsn))
        return NULL;
    char *err = NULL;
    PQconninfoOption *opts = PQconninfoParse(dsn, &err);
    if (opts != NULL) {
        PQconninfoFree(opts);
        return NULL;
    }
    char *line =
        xstrndup(err != NULL ? err : "cannot be parsed", strcspn(err != NULL ? err : "", "\n"));
    PQfreemem(err);
    char *hidden = config_dsn_hide_fragments(line);
    free(line);
    char *msg = xasprintf("not a valid connection string: %s (the string is not shown: it may "
                          "hold a password)",
                          hidden);
    free(hidden);
    return msg;
}

/* The DSN with every password replaced by <redacted>; caller frees. */
static char *dsn_redact(const char *dsn)
{
    struct dsn_span sp[DSN_MAX_SPANS];
    size_t n = dsn_spans(dsn, sp), at = 0;
    struct strbuf sb = {0};
    for (size_t i = 0; i < n; i++) {
        strbuf_append(&sb, dsn + at, sp[i].start - at);
        strbuf_puts(&sb, "<redacted>");
        at = sp[i].start + sp[i].len;
    }
    strbuf_puts(&sb, dsn + at);
    return strbuf_detach(&sb);
}

/* A conninfo value without its quotes and backslash escapes; caller frees. */
static char *kv_unquote(const char *s, size_t n)
{
    struct strbuf sb = {0};
    size_t i = 0;
    if (n >= 2 && (s[0] == '\'' || s[0] == '"') && s[n - 1] == s[0]) {
        i = 1;
        n--;
    }
    for (; i < n; i++) {
        if (s[i] == '\\' && i + 1 < n)
            i++;
        strbuf_putc(&sb, s[i]);
    }
    return strbuf_detach(&sb);
}

/* Registers s and each of its pieces between separators (the logger keeps
 * those of 4 bytes or more), whole first so it is redacted whole. */
static void register_with_pieces(const char *s)
{
    log_register_secret(s);
    const char *sep = " \t/?&@:#'\"\\=";
    for (const char *p = s; *p != '\0';) {
        size_t len = strcspn(p, sep);
        if (len > 0 && p[len] != '\0') {
            char *piece = xstrndup(p, len);
            log_register_secret(piece);
            free(piece);
        } else if (len > 0 && p != s) {
            log_register_secret(p);
        }
        p += len;
        p += strspn(p, sep);
    }
}

/* Registers every password of the dsn, as written, decoded and as libpq
 * reads it, with the logger. */
static void register_dsn_passwords(const char *dsn)
{
    struct dsn_span sp[DSN_MAX_SPANS];
    size_t n = dsn_spans(dsn, sp);
    for (size_t i = 0; i < n; i++) {
        char *raw = xstrndup(dsn + sp[i].start, sp[i].len);
        char *dec = sp[i].uri ? pct_decode(raw, sp[i].len, false) : kv_unquote(raw, sp[i].len);
        register_with_pieces(raw);
        register_with_pieces(dec);
        free(dec);
        free(raw);
    }
    char *err = NULL;
    PQconninfoOption *opts = PQconninfoParse(dsn, &err);
    PQfreemem(err);
    for (PQconninfoOption *o = opts; o != NULL && o->keyword != NULL; o++)
        if (o->val != NULL && password_keyword(o->keyword, strlen(o->keyword), false))
            register_with_pieces(o->val);
    PQconninfoFree(opts);
}

/* Registers every secret value, and every password inside database.dsn,
 * with the logger.  Can't fail. */
void config_register_secrets(const struct tds_config *cfg)
{
    size_t n;
    const struct config_key *schema = config_schema(&n);
    for (size_t i = 0; i < n; i++) {
        if (schema[i].type != CFG_SECRET)
            continue;
        const char *v = *(char **)field_ptr(cfg, &schema[i]);
        if (!str_empty(v))
            log_register_secret(v);
    }
    if (!str_empty(cfg->database.dsn))
        register_dsn_passwords(cfg->database.dsn);
}

/* The value of key k as config_print shows it; caller frees. */
static char *render_value(const struct config_key *k, const struct tds_config *c)
{
    void *p = field_ptr(c, k);
    switch (k->type) {
    case CFG_INT:
        return xasprintf("%d", *(int *)p);
    case CFG_BOOL:
        return xstrdup(*(bool *)p ? "true" : "false");
    case CFG_SECRET:
        return xstrdup(str_empty(*(char **)p) ? "\"\"" : "<redacted>");
    default:
        break;
    }
    const char *s = *(char **)p != NULL ? *(char **)p : "";
    char *red = strcmp(k->key, "database.dsn") == 0 ? dsn_redact(s) : NULL;
    struct strbuf sb = {0};
    quote_into(&sb, red != NULL ? red : s, 0);
    free(red);
    return strbuf_detach(&sb);
}

/*
 * Prints "key = value  # source" for every schema key, aligned, secrets as
 * <redacted> (or "" when unset), a password in the DSN as <redacted>.
 */
void config_print(const struct config_loaded *cl, FILE *out)
{
    size_t n;
    const struct config_key *schema = config_schema(&n);
    char **vals = xcalloc(n, sizeof *vals);
    size_t kw = 0, vw = 0;
    for (size_t i = 0; i < n; i++) {
        vals[i] = render_value(&schema[i], &cl->cfg);
        size_t kl = strlen(schema[i].key), vl = strlen(vals[i]);
        if (kl > kw)
            kw = kl;
        if (vl > vw && vl <= 40)
            vw = vl;
    }
    if (cl->path != NULL)
        fprintf(out, "# configuration file: %s\n", cl->path);
    else
        fprintf(out, "# no configuration file: defaults and environment\n");
    for (size_t i = 0; i < n; i++) {
        enum config_source src = cl->sources != NULL ? cl->sources[i] : CONFIG_SRC_DEFAULT;
        fprintf(out, "%-*s = %-*s  # ", (int)kw, schema[i].key, (int)vw, vals[i]);
        switch (src) {
        case CONFIG_SRC_FILE:
            if (cl->lines != NULL && cl->lines[i] > 0)
                fprintf(out, "file %s:%d\n", cl->path != NULL ? cl->path : "?", cl->lines[i]);
            else
                fprintf(out, "file %s\n", cl->path != NULL ? cl->path : "?");
            break;
        case CONFIG_SRC_ENV:
            fprintf(out, "env %s\n", schema[i].env ? schema[i].env : "?");
            break;
        case CONFIG_SRC_CLI:
            fprintf(out, "command line\n");
            break;
        case CONFIG_SRC_DEFAULT:
        default:
            fprintf(out, "default\n");
            break;
        }
        free(vals[i]);
    }
    free(vals);
}

struct dc_hosts {
    const char *dc, *accounts, *api;
};

static const struct dc_hosts dc_table[] = {
    {"com", "accounts.zoho.com", "www.zohoapis.com"},
    {"eu", "accounts.zoho.eu", "www.zohoapis.eu"},
    {"in", "accounts.zoho.in", "www.zohoapis.in"},
    {"com.au", "accounts.zoho.com.au", "www.zohoapis.com.au"},
    {"jp", "accounts.zoho.jp", "www.zohoapis.jp"},
    {"ca", "accounts.zohocloud.ca", "www.zohoapis.ca"},
    {"com.cn", "accounts.zoho.com.cn", "www.zohoapis.com.cn"},
    {"sa", "accounts.zoho.sa", "www.zohoapis.sa"},
};

static const struct dc_hosts *dc_lookup(const char *dc)
{
    for (size_t i = 0; i < TDS_ARRAY_LEN(dc_table); i++)
        if (str_eq(dc, dc_table[i].dc))
            return &dc_table[i];
    return &dc_table[0];
}

/* An override without its trailing slashes. */
static char *trim_url(const char *s)
{
    size_t len = strlen(s);
    while (len > 0 && s[len - 1] == '/')
        len--;
    return xstrndup(s, len);
}

/* https://accounts.zoho.<tld> (zohocloud.ca for ca), or the override.  Caller frees. */
char *config_accounts_url(const struct tds_config *cfg)
{
    if (!str_empty(cfg->zoho.accounts_url))
        return trim_url(cfg->zoho.accounts_url);
    return xasprintf("https://%s", dc_lookup(cfg->zoho.data_center)->accounts);
}

/* https://www.zohoapis.<tld>/books/v3, or the override.  Caller frees. */
char *config_books_url(const struct tds_config *cfg)
{
    if (!str_empty(cfg->zoho.books_url))
        return trim_url(cfg->zoho.books_url);
    return xasprintf("https://%s/books/v3", dc_lookup(cfg->zoho.data_center)->api);
}

/* https://www.zohoapis.<tld>/inventory/v1, or the override.  Caller frees. */
char *config_inventory_url(const struct tds_config *cfg)
{
    if (!str_empty(cfg->zoho.inventory_url))
        return trim_url(cfg->zoho.inventory_url);
    return xasprintf("https://%s/inventory/v1", dc_lookup(cfg->zoho.data_center)->api);
}

/* Daily API budget: the setting, or the plan's (free 1000, standard 2000,
 * professional 5000, premium/elite/ultimate 10000).  Can't fail. */
int config_rate_per_day(const struct tds_config *cfg)
{
    if (cfg->zoho.rate_limit.per_day > 0)
        return cfg->zoho.rate_limit.per_day;
    if (str_eq(cfg->zoho.plan, "free"))
        return 1000;
    if (str_eq(cfg->zoho.plan, "standard"))
        return 2000;
    if (str_eq(cfg->zoho.plan, "professional"))
        return 5000;
    return 10000;
}

/* Concurrent calls: the setting, or the plan's (free 5, paid 10).  Can't fail. */
int config_rate_concurrency(const struct tds_config *cfg)
{
    if (cfg->zoho.rate_limit.concurrency > 0)
        return cfg->zoho.rate_limit.concurrency;
    return str_eq(cfg->zoho.plan, "free") ? 5 : 10;
}

/*
 * Appends to *changed the keys whose values differ between a and b,
 * separated by ", ", with " (restart needed)" after non-reloadable ones.
 * Values are never written (secrets among them).  Can't fail.
 */
void config_diff(const struct tds_config *a, const struct tds_config *b, struct strbuf *changed)
{
    size_t n;
    const struct config_key *schema = config_schema(&n);
    for (size_t i = 0; i < n; i++) {
        const struct config_key *k = &schema[i];
        const void *pa = field_ptr(a, k), *pb = field_ptr(b, k);
        bool same;
        switch (k->type) {
        case CFG_INT:
            same = *(const int *)pa == *(const int *)pb;
            break;
        case CFG_BOOL:
            same = *(const bool *)pa == *(const bool *)pb;
            break;
        default:
            same = str_eq(*(char *const *)pa, *(char *const *)pb);
            break;
        }
        if (same)
            continue;
        if (changed->len > 0)
            strbuf_puts(changed, ", ");
        strbuf_printf(changed, "%s%s", k->key, k->reloadable ? "" : " (restart needed)");
    }
}
