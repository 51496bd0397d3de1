/*
 * theme.c: colour themes as YAML files (themes/NAME.yaml), one entry per
 * role (title, selected, warn, ...) with fg, bg and attrs.  Colours are
 * names or numbers 0-255; on an 8-colour terminal they fold to the nearest
 * of the eight, and with NO_COLOR (or a terminal without colours) only the
 * attributes stay, reverse video standing in for backgrounds.
 *
 * Themes are looked up in $TDS_THEME_DIR, then next to the binary
 * (BIN/../themes for a build tree inside the sources, BIN/../share/tds/themes
 * when installed), then /usr/local/share/tds/themes and /usr/share/tds/themes.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <yaml.h>

#include "tui_internal.h"

static const char *role_names[ROLE_N] = {
    "normal", "title",   "panebar", "pane_active", "header",   "selected", "marked",
    "dim",    "ok",      "info",    "warn",        "error",    "critical", "hint",
    "hint_key", "message", "border", "spark",      "dialog",
};

static attr_t role_attr[ROLE_N];
static char current_name[64] = "builtin";

/* The built-in default, used when no theme file can be found. */
static const struct role_style builtin[ROLE_N] = {
    [ROLE_NORMAL] = {-1, -1, 0},
    [ROLE_TITLE] = {COLOR_WHITE, COLOR_BLUE, A_BOLD},
    [ROLE_PANEBAR] = {-1, -1, 0},
    [ROLE_PANE_ACTIVE] = {COLOR_BLACK, COLOR_CYAN, A_BOLD},
    [ROLE_HEADER] = {COLOR_CYAN, -1, A_BOLD},
    [ROLE_SELECTED] = {COLOR_BLACK, COLOR_CYAN, 0},
    [ROLE_MARKED] = {COLOR_YELLOW, -1, A_BOLD},
    [ROLE_DIM] = {-1, -1, A_DIM},
    [ROLE_OK] = {COLOR_GREEN, -1, 0},
    [ROLE_INFO] = {COLOR_CYAN, -1, 0},
    [ROLE_WARN] = {COLOR_YELLOW, -1, 0},
    [ROLE_ERROR] = {COLOR_RED, -1, 0},
    [ROLE_CRITICAL] = {COLOR_WHITE, COLOR_RED, A_BOLD},
    [ROLE_HINT] = {-1, -1, 0},
    [ROLE_HINT_KEY] = {COLOR_BLACK, COLOR_CYAN, 0},
    [ROLE_MESSAGE] = {COLOR_YELLOW, -1, 0},
    [ROLE_BORDER] = {COLOR_BLUE, -1, 0},
    [ROLE_SPARK] = {COLOR_GREEN, -1, 0},
    [ROLE_DIALOG] = {COLOR_WHITE, COLOR_BLUE, 0},
};

static int parse_file(const char *path, struct role_style *st, char **err);
static char *find_theme(const char *name);

static bool colours_wanted(void)
{
    const char *nc = getenv("NO_COLOR");
    if (nc != NULL && nc[0] != '\0')
        return false;
    return has_colors();
}

/* Folds a 256-colour index to the nearest of the 8 basic colours. */
static short fold8(short c)
{
    if (c < 8)
        return c;
    if (c < 16)
        return (short)(c - 8);
    int r, g, b;
    if (c >= 232) {
        int l = (c - 232) * 10 + 8;
        r = g = b = l;
    } else {
        int i = c - 16;
        static const int lv[6] = {0, 95, 135, 175, 215, 255};
        r = lv[i / 36], g = lv[i / 6 % 6], b = lv[i % 6];
    }
    return (short)((r > 127 ? 1 : 0) | (g > 127 ? 2 : 0) | (b > 127 ? 4 : 0));
}

void tui_theme_resolve(const struct role_style *st, bool colour, int ncolours,
                       struct tui_style out[ROLE_N])
{
    for (int r = 0; r < ROLE_N; r++) {
        struct tui_style *o = &out[r];
        o->attrs = st[r].attrs;
        o->fg = o->bg = -1;
        o->pair = colour;
        if (colour) {
            short fg = st[r].fg, bg = st[r].bg;
            if (ncolours < 256) {
                fg = fg < 0 ? fg : fold8(fg);
                bg = bg < 0 ? bg : fold8(bg);
                /* greys on near-black fold to black on black: keep the text
                 * readable, the attribute (dim, bold) still says the role */
                if (fg >= 0 && fg == bg)
                    fg = bg == COLOR_BLACK || bg == COLOR_BLUE || bg == COLOR_RED ? COLOR_WHITE
                                                                                   : COLOR_BLACK;
            }
            o->fg = fg;
            o->bg = bg;
        } else if (st[r].bg >= 0 && r != ROLE_NORMAL && st[r].bg != st[ROLE_NORMAL].bg) {
            o->attrs |= A_REVERSE; /* a background of its own: reverse video stands in */
        }
    }
    /* A selection must show without colours too. */
    if (!colour)
        out[ROLE_SELECTED].attrs |= A_REVERSE;
}

static void apply(const struct role_style *st)
{
    bool colour = colours_wanted();
    if (colour) {
        start_color();
        use_default_colors();
    }
    struct tui_style res[ROLE_N];
    tui_theme_resolve(st, colour && COLOR_PAIRS > ROLE_N, COLORS, res);
    for (int r = 0; r < ROLE_N; r++) {
        attr_t a = res[r].attrs;
        if (res[r].pair) {
            init_pair((short)(r + 1), res[r].fg, res[r].bg);
            a |= COLOR_PAIR(r + 1);
        }
        role_attr[r] = a;
    }
    /* ROLE_NORMAL's pair is the background of everything drawn */
    bkgdset(res[ROLE_NORMAL].pair ? COLOR_PAIR(ROLE_NORMAL + 1) : 0);
}

int tui_theme_load(const char *name, struct role_style st[ROLE_N], char **err)
{
    if (str_empty(name))
        name = "default";
    for (const char *c = name; *c; c++)
        if (!(*c == '-' || *c == '_' || (*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9'))) {
            *err = xasprintf("theme name \"%s\": use letters, digits, - and _", name);
            return -1;
        }
    char *path = find_theme(name);
    if (path == NULL) {
        if (strcmp(name, "default") == 0) {
            memcpy(st, builtin, sizeof builtin);
            return 0;
        }
        *err = xasprintf("theme \"%s\" not found (themes/%s.yaml)", name, name);
        return -1;
    }
    int rc = parse_file(path, st, err);
    free(path);
    return rc;
}

attr_t tui_attr(enum tui_role r)
{
    return (unsigned)r < ROLE_N ? role_attr[r] : 0;
}

const char *tui_theme_name(void)
{
    return current_name;
}

void tui_theme_builtin(void)
{
    apply(builtin);
    snprintf(current_name, sizeof current_name, "builtin");
}

static bool parse_colour(const char *s, short *out)
{
    static const char *names[] = {"black", "red", "green", "yellow",
                                  "blue",  "magenta", "cyan", "white"};
    if (strcmp(s, "default") == 0 || strcmp(s, "none") == 0) {
        *out = -1;
        return true;
    }
    long long v;
    if (str_to_ll(s, &v)) {
        if (v < 0 || v > 255)
            return false;
        *out = (short)v;
        return true;
    }
    bool bright = str_starts_with(s, "bright-") || str_starts_with(s, "bright_");
    const char *base = bright ? s + 7 : s;
    for (short i = 0; i < 8; i++)
        if (strcmp(base, names[i]) == 0) {
            *out = (short)(bright ? i + 8 : i);
            return true;
        }
    return false;
}

static bool parse_attrs(const char *s, attr_t *out)
{
    static const struct {
        const char *name;
        attr_t a;
    } map[] = {{"bold", A_BOLD},       {"dim", A_DIM},         {"reverse", A_REVERSE},
               {"underline", A_UNDERLINE}, {"standout", A_STANDOUT}, {"italic", A_ITALIC},
               {"none", 0}};
    char *copy = xstrdup(s), *save = NULL;
    bool ok = true;
    for (char *w = strtok_r(copy, " ,", &save); w; w = strtok_r(NULL, " ,", &save)) {
        bool found = false;
        for (size_t i = 0; i < TDS_ARRAY_LEN(map); i++)
            if (strcmp(w, map[i].name) == 0) {
                *out |= map[i].a;
                found = true;
            }
        ok = ok && found;
    }
    free(copy);
    return ok;
}

/* Parses a theme file into st (starting from the built-in default).
 * Expected shape:  name: X / roles: {ROLE: {fg: C, bg: C, attrs: "bold"}} */
static int parse_file(const char *path, struct role_style *st, char **err)
{
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        *err = xasprintf("%s: %s", path, strerror(errno));
        return -1;
    }
    memcpy(st, builtin, sizeof builtin);
    yaml_parser_t p;
    yaml_parser_initialize(&p);
    yaml_parser_set_input_file(&p, f);
    int depth = 0, role = -1, rc = 0;
    char key1[64] = "", key3[64] = "";
    bool want_key[8] = {false};
    for (;;) {
        yaml_event_t ev;
        if (!yaml_parser_parse(&p, &ev)) {
            *err = xasprintf("%s:%zu:%zu: %s", path, p.problem_mark.line + 1,
                             p.problem_mark.column + 1, p.problem ? p.problem : "bad YAML");
            rc = -1;
            break;
        }
        yaml_event_type_t type = ev.type;
        if (type == YAML_MAPPING_START_EVENT) {
            if (depth < 7)
                want_key[depth + 1] = true;
            depth++;
        } else if (type == YAML_MAPPING_END_EVENT) {
            depth--;
            if (depth >= 0 && depth < 8)
                want_key[depth] = true;
        } else if (type == YAML_SCALAR_EVENT) {
            const char *v = (const char *)ev.data.scalar.value;
            size_t line = ev.start_mark.line + 1;
            if (depth >= 1 && depth < 8 && want_key[depth]) {
                if (depth == 1)
                    snprintf(key1, sizeof key1, "%s", v);
                else if (depth == 2 && strcmp(key1, "roles") == 0) {
                    role = -1;
                    for (int r = 0; r < ROLE_N; r++)
                        if (strcmp(role_names[r], v) == 0)
                            role = r;
                    if (role < 0) {
                        *err = xasprintf("%s:%zu: unknown role \"%s\"", path, line, v);
                        rc = -1;
                    }
                } else if (depth == 3)
                    snprintf(key3, sizeof key3, "%s", v);
                want_key[depth] = false;
            } else if (depth >= 1 && depth < 8) {
                if (depth == 3 && role >= 0) {
                    bool ok = true;
                    if (strcmp(key3, "fg") == 0)
                        ok = parse_colour(v, &st[role].fg);
                    else if (strcmp(key3, "bg") == 0)
                        ok = parse_colour(v, &st[role].bg);
                    else if (strcmp(key3, "attrs") == 0) {
                        st[role].attrs = 0;
                        ok = parse_attrs(v, &st[role].attrs);
                    } else
                        ok = false;
                    if (!ok && rc == 0) {
                        *err = xasprintf("%s:%zu: bad %s \"%s\" for %s", path, line, key3, v,
                                         role_names[role]);
                        rc = -1;
                    }
                }
                want_key[depth] = true;
            }
        }
        yaml_event_delete(&ev);
        if (type == YAML_STREAM_END_EVENT || rc != 0)
            break;
    }
    yaml_parser_delete(&p);
    fclose(f);
    return rc;
}

/* Finds NAME.yaml; returns a new path or NULL. */
static char *find_theme(const char *name)
{
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    char *bindir = NULL;
    if (n > 0) {
        exe[n] = 0;
        char *slash = strrchr(exe, '/');
        if (slash)
            *slash = 0;
        bindir = exe;
    }
    const char *env = getenv("TDS_THEME_DIR");
    const char *src = getenv("TDS_SOURCE_ROOT");
    char *cands[6] = {0};
    int nc = 0;
    if (env && *env)
        cands[nc++] = xasprintf("%s/%s.yaml", env, name);
    if (bindir) {
        cands[nc++] = xasprintf("%s/../themes/%s.yaml", bindir, name);
        cands[nc++] = xasprintf("%s/../share/tds/themes/%s.yaml", bindir, name);
    }
    if (src && *src)
        cands[nc++] = xasprintf("%s/themes/%s.yaml", src, name);
    cands[nc++] = xasprintf("/usr/local/share/tds/themes/%s.yaml", name);
    cands[nc++] = xasprintf("/usr/share/tds/themes/%s.yaml", name);
    char *found = NULL;
    for (int i = 0; i < nc; i++) {
        if (!found && access(cands[i], R_OK) == 0)
            found = cands[i];
        else
            free(cands[i]);
    }
    return found;
}

int tui_theme_apply(const char *name, char **err)
{
    struct role_style st[ROLE_N];
    if (tui_theme_load(name, st, err) != 0)
        return -1;
    apply(st);
    snprintf(current_name, sizeof current_name, "%s", str_empty(name) ? "default" : name);
    return 0;
}
