/*
 * tui_internal.h: what the console's files share.  The console is an app
 * loop (app.c) over six panes, each a struct pane_ops in its own file
 * (pane_*.c), four of them built on one table widget (table.c); keys map to
 * named actions through one keymap table (keymap.c); a data thread
 * (data.c) runs every query and hands immutable snapshots to the UI; actions
 * (actions.c) run on that thread too, through the engine's functions, and
 * are written to tds.audit (audit.c).  Only the main thread calls ncurses.
 */
#ifndef TDS_TUI_INTERNAL_H
#define TDS_TUI_INTERNAL_H

#ifndef NCURSES_WIDECHAR
#define NCURSES_WIDECHAR 1
#endif
#include <curses.h>
#include <libpq-fe.h>
#include <stdbool.h>
#include <time.h>

#include "tds/config.h"
#include "tds/tui.h"
#include "tds/util.h"

/* ------------------------------------------------------------------ */
/* Panes */

enum tui_pane_id {
    PANE_DASHBOARD = 0,
    PANE_RUNS,
    PANE_QUEUE,
    PANE_DLQ,
    PANE_ALERTS,
    PANE_EVENTS,
    PANE_N,
};

/* ------------------------------------------------------------------ */
/* Result sets: what a query returned, every cell sanitized already. */

struct tui_rs {
    int ncols, nrows;
    char **names; /* ncols */
    char **cell;  /* nrows * ncols; NULL is SQL NULL */
};

struct tui_rs *tui_rs_new(int ncols, int nrows);
void tui_rs_free(struct tui_rs *rs);
/* Column index by name, -1 if absent (rs may be NULL). */
int tui_rs_col(const struct tui_rs *rs, const char *name);
/* Cell by column name: "" for NULL, a missing column or row. */
const char *tui_rs_get(const struct tui_rs *rs, int row, const char *col);
bool tui_rs_isnull(const struct tui_rs *rs, int row, const char *col);
long long tui_rs_ll(const struct tui_rs *rs, int row, const char *col);
double tui_rs_f(const struct tui_rs *rs, int row, const char *col);

/* The queries of a snapshot.  X(enum, fixture section name) */
#define TUI_QUERIES(X)                                                                             \
    X(TQ_HEAD, "head")             /* now, db, host, paused, dlq_open, q_*, alerts_* */            \
    X(TQ_HEALTH, "health")         /* status, reason (health.h: the shared verdict) */             \
    X(TQ_ENGINES, "engines")                                                                       \
    X(TQ_QCOUNTS, "queue_counts")  /* status, entity_type, n */                                   \
    X(TQ_QDONE, "queue_done")      /* done_1h */                                                   \
    X(TQ_SPARK, "spark")           /* minute, items, failures */                                   \
    X(TQ_API, "api")               /* this_minute, today, throttled_today */                       \
    X(TQ_JOBS, "jobs")             /* schedules */                                                 \
    X(TQ_SYNCSTATE, "sync_state")                                                                  \
    X(TQ_ALERTCOUNTS, "alert_counts")                                                              \
    X(TQ_RUNS, "runs")                                                                             \
    X(TQ_QUEUE, "queue")                                                                           \
    X(TQ_DLQ, "dlq")                                                                               \
    X(TQ_DLQGROUPS, "dlq_groups")                                                                  \
    X(TQ_ALERTS, "alerts")                                                                         \
    X(TQ_EVENTS, "events")                                                                         \
    X(TQ_TOTAL, "total")           /* n: rows matching the pane's filter, capped */

enum tui_query {
#define X(e, n) e,
    TUI_QUERIES(X)
#undef X
        TQ_N
};
const char *tui_query_name(enum tui_query q);

/* How many matching rows are counted at most (counts stop there: "10,000+"). */
#define TUI_COUNT_CAP 10000
/* Rows fetched for a list pane. */
#define TUI_LIST_LIMIT 500

enum tui_detail_kind {
    DETAIL_NONE = 0,
    DETAIL_RUN,
    DETAIL_QUEUE,
    DETAIL_DLQ,
    DETAIL_ALERT,
    DETAIL_EVENT,
    DETAIL_DLQ_PAYLOAD, /* raw payload for $EDITOR */
};

/* An immutable answer of the data thread. */
struct tui_snapshot {
    unsigned gen;        /* generation of the request it answers */
    bool ok;             /* false: the database could not be reached */
    char *error;         /* why not, or a failed query's message (sanitized) */
    long long now;       /* server clock (epoch s) when fetched */
    struct tui_rs *rs[TQ_N];
    enum tui_detail_kind detail_kind;
    long long detail_id;
    char *detail_title;  /* sanitized */
    char *detail_text;   /* sanitized, multi-line */
    char *detail_raw;    /* DETAIL_DLQ_PAYLOAD: the payload as JSON (not for drawing) */
};

/* What the UI wants fetched now. */
struct tui_request {
    unsigned gen;
    enum tui_pane_id pane;
    bool frozen;             /* no periodic refresh */
    char *text;              /* "/" filter or NULL */
    char *status;            /* status/severity filter or NULL */
    char *entity;            /* entity filter or NULL */
    char *type;              /* event type filter or NULL */
    int dlq_hours;           /* DLQ group window */
    bool dlq_grouped;
    enum tui_detail_kind detail;
    long long detail_id;
};
void tui_request_free(struct tui_request *r);
void tui_request_copy(struct tui_request *dst, const struct tui_request *src);

/* ------------------------------------------------------------------ */
/* Actions run by the data thread (actions.c) */

enum tui_op {
    OP_QUEUE_RETRY,
    OP_QUEUE_PRIO_UP,
    OP_QUEUE_PRIO_DOWN,
    OP_QUEUE_TO_DLQ,
    OP_DLQ_RETRY,
    OP_DLQ_DISCARD,
    OP_DLQ_EDIT_RETRY,
    OP_DLQ_GROUP_RETRY,
    OP_DLQ_GROUP_DISCARD,
    OP_RUN_START,
    OP_RUN_CANCEL,
    OP_ALERT_ACK,
    OP_ALERT_ACK_ALL,
    OP_PAUSE,
    OP_RESUME,
};

struct tui_op_req {
    enum tui_op op;
    long long *ids;          /* explicit targets */
    size_t nids;
    bool by_filter;          /* targets: everything matching filter */
    struct tui_request filter;
    long long expect;        /* by_filter: the count the operator confirmed */
    char *reason;            /* discard / move-to-DLQ reason */
    char *group_reason;      /* DLQ group: the failure reason it matches */
    char *entity;            /* group entity; sync entity */
    char *run_type;          /* sync */
    bool dry_run;
    int hours;               /* group window */
    char *payload;           /* edited payload */
    char *config;            /* sync: the run config JSON (sync.h), or NULL: {} */
    struct tui_op_req *next;
};
void tui_op_req_free(struct tui_op_req *r);
const char *tui_op_name(enum tui_op op);

/*
 * Executes one operation on c through the engine's functions (queue.h,
 * runs.h, alerts.h, engine.h) and records it in tds.audit (audit.h) with
 * instance (NULL when attached).  Returns 0 with *msg (caller frees) saying
 * what was done, or -1 with *msg saying why not.
 */
int tui_action_run(PGconn *c, const char *instance, const struct tui_op_req *r, char **msg);

/* The SQL of the "what matches this filter" part of a list, shared by the
 * pane query, the capped count and by-filter actions.  Appends to sb a
 * WHERE clause over parameters $first.. and fills params (NULL = SQL NULL).
 * Returns the number of parameters used. */
int tui_filter_where(enum tui_pane_id pane, const struct tui_request *rq, int first,
                     struct strbuf *sb, const char **params);

/* ------------------------------------------------------------------ */
/* Data thread */

struct tui_data;
/* Starts the thread (connects in the background).  wake_fd is written one
 * byte whenever a snapshot or an op result is ready.  Can't fail (aborts on
 * thread creation failure). */
struct tui_data *tui_data_start(const struct tds_config *cfg, const char *instance, int wake_fd);
/* Replaces the current request (copied) and asks for a refresh now. */
void tui_data_request(struct tui_data *d, const struct tui_request *rq);
/* Queues an operation (ownership passes). */
void tui_data_op(struct tui_data *d, struct tui_op_req *op);
/* Takes the newest snapshot (NULL if none since last call); caller frees. */
struct tui_snapshot *tui_data_take(struct tui_data *d);
/* Takes one op result message (NULL if none); *ok tells success. */
char *tui_data_take_result(struct tui_data *d, bool *ok);
void tui_data_stop(struct tui_data *d);
/* Benchmark (bench/console): runs every pane's refresh queries rounds times
 * on a connection of its own, printing each query's time, and EXPLAIN
 * ANALYZE of those slower than slow_ms on the last round.  0 or -1. */
int tui_data_bench(const struct tds_config *cfg, int rounds, double slow_ms, FILE *out);

/* ------------------------------------------------------------------ */
/* Keymap: named actions, one table (keymap.c) */

/* X(enum, name, mutating, help) */
#define TUI_ACTIONS(X)                                                                             \
    X(ACT_NONE, "none", false, "")                                                                   \
    X(ACT_QUIT, "quit", false, "go back; on the pane bar, quit (drains an embedded engine)")        \
    X(ACT_HELP, "help", false, "show the key bindings")                                               \
    X(ACT_REDRAW, "redraw", false, "redraw the screen")                                              \
    X(ACT_FREEZE, "freeze", false, "freeze or resume live refresh")                                   \
    X(ACT_FILTER, "filter", false, "filter rows; the text is sent to the database as a parameter")    \
    X(ACT_COMMAND, "command", false, "command prompt: sync, pause, resume, theme, q")               \
    X(ACT_PANE_NEXT, "next-pane", false, "next pane")                                                 \
    X(ACT_PANE_PREV, "prev-pane", false, "previous pane")                                             \
    X(ACT_PANE_1, "pane-dashboard", false, "dashboard")                                               \
    X(ACT_PANE_2, "pane-runs", false, "runs")                                                         \
    X(ACT_PANE_3, "pane-queue", false, "queue")                                                       \
    X(ACT_PANE_4, "pane-dlq", false, "dead-letter queue")                                             \
    X(ACT_PANE_5, "pane-alerts", false, "alerts")                                                     \
    X(ACT_PANE_6, "pane-events", false, "events")                                                     \
    X(ACT_UP, "up", false, "move up")                                                                 \
    X(ACT_DOWN, "down", false, "move down")                                                           \
    X(ACT_PGUP, "page-up", false, "one page up")                                                      \
    X(ACT_PGDN, "page-down", false, "one page down")                                                  \
    X(ACT_TOP, "top", false, "first row")                                                             \
    X(ACT_BOTTOM, "bottom", false, "last row")                                                        \
    X(ACT_MARK, "mark", false, "mark or unmark the row (actions apply to marked rows)")               \
    X(ACT_MARK_FILTER, "mark-matching", false,                                                       \
      "target every row matching the filter (again: clear marks)")                                  \
    X(ACT_OPEN, "open", false, "open the selected row")                                               \
    X(ACT_SORT, "sort", false, "sort by the next column")                                             \
    X(ACT_SORT_REV, "sort-reverse", false, "reverse the sort")                                        \
    X(ACT_STATUS_FILTER, "status-filter", false, "cycle the status filter")                         \
    X(ACT_ENTITY_FILTER, "entity-filter", false, "cycle the entity filter")                         \
    X(ACT_TYPE_FILTER, "type-filter", false, "cycle the event type filter")                         \
    X(ACT_SYNC, "sync", true, "start a sync (entity, kind, dry run)")                                 \
    X(ACT_RUN_CANCEL, "cancel-run", true, "cancel a pending or running run")                          \
    X(ACT_RETRY, "retry", true, "retry now")                                                          \
    X(ACT_PRIO_UP, "priority-up", true, "raise the priority")                                         \
    X(ACT_PRIO_DOWN, "priority-down", true, "lower the priority")                                     \
    X(ACT_TO_DLQ, "to-dlq", true, "move to the dead-letter queue")                                    \
    X(ACT_DLQ_GROUPS, "groups", false, "grouped view by failure reason and entity")                   \
    X(ACT_DLQ_WINDOW, "window", false, "cycle the grouped view's window: 1h, 24h, 7d")               \
    X(ACT_DLQ_EDIT, "edit-retry", true, "edit the payload in $EDITOR, then retry")                    \
    X(ACT_DISCARD, "discard", true, "discard, with a reason")                                         \
    X(ACT_ACK, "ack", true, "acknowledge")                                                            \
    X(ACT_ACK_ALL, "ack-all", true, "acknowledge every alert matching the filter")

enum tui_action {
#define X(e, n, m, h) e,
    TUI_ACTIONS(X)
#undef X
        ACT_N
};

const char *tui_action_name(enum tui_action a);
const char *tui_action_help(enum tui_action a);
bool tui_action_mutating(enum tui_action a);

struct tui_binding {
    int pane;          /* -1: every pane */
    int key;           /* ncurses key code or character */
    const char *keyname;
    enum tui_action action;
    const char *hint;  /* short label for the hint bar, NULL: not shown */
};
/* The table; *n receives its length. */
const struct tui_binding *tui_keymap(size_t *n);
/* The action bound to key in pane (pane bindings first), ACT_NONE if none. */
enum tui_action tui_keymap_lookup(int pane, int key);

/* ------------------------------------------------------------------ */
/* Themes (theme.c) */

enum tui_role {
    ROLE_NORMAL = 0,
    ROLE_TITLE,
    ROLE_PANEBAR,
    ROLE_PANE_ACTIVE,
    ROLE_HEADER,
    ROLE_SELECTED,
    ROLE_MARKED,
    ROLE_DIM,
    ROLE_OK,
    ROLE_INFO,
    ROLE_WARN,
    ROLE_ERROR,
    ROLE_CRITICAL,
    ROLE_HINT,
    ROLE_HINT_KEY,
    ROLE_MESSAGE,
    ROLE_BORDER,
    ROLE_SPARK,
    ROLE_DIALOG,
    ROLE_N,
};

/* A role as a theme file gives it. */
struct role_style {
    short fg, bg; /* 0-255, -1: terminal default */
    attr_t attrs;
};
/* A role as the terminal will show it. */
struct tui_style {
    bool pair;     /* use a colour pair (fg, bg); false: attributes only */
    short fg, bg;  /* within the terminal's colours, -1: default */
    attr_t attrs;
};
/* Reads theme name (NAME.yaml in the theme directories; "default" falls
 * back to the built-in one) into st.  0, or -1 with *err (caller frees). */
int tui_theme_load(const char *name, struct role_style st[ROLE_N], char **err) TDS_MUST_CHECK;
/* Resolves st for a terminal: colour false (NO_COLOR, no colours) gives no
 * pair at all, backgrounds shown as reverse video; fewer than 256 colours
 * fold to the basic eight, never with fg equal to bg.  Pure; can't fail. */
void tui_theme_resolve(const struct role_style *st, bool colour, int ncolours,
                       struct tui_style out[ROLE_N]);
/* Loads theme name (a file NAME.yaml in the theme directories) and applies
 * it to curses colour pairs, honouring NO_COLOR and the terminal's colours.
 * Returns 0, or -1 with *err (the previous theme stays). */
int tui_theme_apply(const char *name, char **err) TDS_MUST_CHECK;
/* Applies the built-in default (no file needed).  Can't fail. */
void tui_theme_builtin(void);
attr_t tui_attr(enum tui_role r);
const char *tui_theme_name(void);

/* ------------------------------------------------------------------ */
/* Drawing helpers (draw.c) */

struct tui_glyphs {
    const char *hline, *vline, *mark, *spark[8], *bar_full, *bar_empty, *ellipsis, *up, *down;
    const char *corner[4]; /* top-left, top-right, bottom-left, bottom-right */
};
extern struct tui_glyphs tui_g;
/* Unicode glyphs when utf8, else plain ASCII (+ - | # . * ...).  Can't fail. */
void tui_glyphs_init(bool utf8);

/* term.c (tui_term_check is in tds/tui.h).  Saves the terminal modes of
 * stdin (before curses changes them). */
void tui_term_save(void);
/* Looks up the bytes that reset the terminal (curses must be running). */
void tui_term_prepare_reset(void);
/* Writes those bytes and restores the saved modes: async-signal-safe, for
 * the fatal-signal handlers (no curses call).  This function can't fail. */
void tui_term_reset_async(void);
/* The sanitize.h flags for text from outside in this locale: 0 for UTF-8,
 * SANITIZE_ASCII otherwise (each non-ASCII character becomes '?').  Reads
 * the locale only, so the data thread may call it too.  Can't fail. */
unsigned tui_sanitize_flags(void);

/* Display width of a UTF-8 string (sanitized text). */
int tui_width(const char *s);
/* Draws s at (y, x), at most w columns, padding with blanks to w when pad;
 * returns the columns drawn.  Clipped text ends with an ellipsis. */
int tui_put(int y, int x, const char *s, int w, attr_t a, bool pad);
void tui_fill(int y, int x, int w, attr_t a);
/* "3m", "2h 5m", "4d 2h" */
void tui_fmt_age(char *buf, size_t n, long long seconds);
/* "1,234,567" */
void tui_fmt_count(char *buf, size_t n, long long v);
/* "2 hours 5 minutes" */
void tui_fmt_duration_words(char *buf, size_t n, long long seconds);
/* "2024-05-01 12:00:01" (UTC) or "-" */
void tui_fmt_time(char *buf, size_t n, long long epoch);
/* Severity / status colour role. */
enum tui_role tui_status_role(const char *status);

/* ------------------------------------------------------------------ */
/* The table widget (table.c), shared by the list panes */

struct tui;
struct tui_table;

struct tui_column {
    const char *title;
    const char *field;   /* result column; NULL: formatted by cell() */
    int width;           /* columns; 0: takes the remaining width */
    bool right;          /* right-aligned */
    int min_screen;      /* shown only when the screen is at least this wide */
};

/* Formats cell (row, col) into buf; returns its colour role. */
typedef enum tui_role (*tui_cell_fn)(struct tui *t, const struct tui_rs *rs, int row, int col,
                                     char *buf, size_t n);

struct tui_table {
    const struct tui_column *cols;
    int ncols;
    const char *id_field;
    tui_cell_fn cell;
    const struct tui_rs *rs; /* borrowed from the current snapshot */
    int *order;              /* display order (sorting) */
    int norder;
    int sel, top, page;
    long long sel_id;
    int sort_col;            /* -1: as the database ordered */
    bool sort_desc;
    long long *marks;
    size_t nmarks, capmarks;
    bool mark_filter;        /* target: everything matching the filter */
};

void tui_table_init(struct tui_table *tb, const struct tui_column *cols, int ncols,
                    const char *id_field, tui_cell_fn cell);
void tui_table_free(struct tui_table *tb);
void tui_table_set_rs(struct tui_table *tb, const struct tui_rs *rs);
void tui_table_draw(struct tui *t, struct tui_table *tb, int y, int x, int h, int w);
/* Moves, marks, sorts for the generic actions; true if handled. */
bool tui_table_key(struct tui *t, struct tui_table *tb, enum tui_action a);
/* Id of the selected row, or 0. */
long long tui_table_sel_id(const struct tui_table *tb);
int tui_table_sel_row(const struct tui_table *tb); /* rs row or -1 */
bool tui_table_marked(const struct tui_table *tb, long long id);
void tui_table_clear_marks(struct tui_table *tb);

/* ------------------------------------------------------------------ */
/* Panes */

struct pane {
    const struct pane_ops *ops;
    struct tui_table table;
    char *text;          /* "/" filter */
    char *status;
    char *entity;
    char *type;
    int dlq_hours;
    bool dlq_grouped;
    struct tui_table table2; /* DLQ groups */
};

struct pane_ops {
    const char *name;    /* "queue": commands, snapshots, man page */
    const char *title;   /* "Queue" */
    void (*open)(struct tui *t, struct pane *p);
    void (*close)(struct tui *t, struct pane *p);
    /* Adopt a new snapshot (selection kept by id). */
    void (*on_data)(struct tui *t, struct pane *p, const struct tui_snapshot *s);
    void (*draw)(struct tui *t, struct pane *p, int y, int x, int h, int w);
    /* Pane-specific actions; true if handled. */
    bool (*key)(struct tui *t, struct pane *p, enum tui_action a);
    /* One-line summary for the message line ("1,234 items · filter: x"). */
    void (*summary)(struct tui *t, struct pane *p, char *buf, size_t n);
};

/*
 * The text of a run's detail view from its row (columns of data.c's run
 * detail query: epoch times created/started/finished/heartbeat and now,
 * counts, config and stats as indented JSON) and its events (id, at, type,
 * entity_type, entity_id, data; may be NULL).  Cells are sanitized already.
 * Times read "2026-11-22 05:03:18Z (3m ago)", the duration in words, the
 * rate in items per second.  Returns a new string (caller frees); can't fail.
 */
char *pane_runs_detail_text(const struct tui_rs *run, const struct tui_rs *events);

extern const struct pane_ops pane_dashboard_ops;
extern const struct pane_ops pane_runs_ops;
extern const struct pane_ops pane_queue_ops;
extern const struct pane_ops pane_dlq_ops;
extern const struct pane_ops pane_alerts_ops;
extern const struct pane_ops pane_events_ops;

/* ------------------------------------------------------------------ */
/* The application */

enum tui_mode {
    MODE_NORMAL = 0,
    MODE_HELP,
    MODE_PROMPT,
    MODE_CONFIRM,
    MODE_TEXT,
    MODE_SYNC_DIALOG,
};

enum tui_prompt_kind {
    PROMPT_FILTER = 0,
    PROMPT_COMMAND,
    PROMPT_REASON,
    PROMPT_ITEMS,  /* item ids of an items sync */
    PROMPT_N,
};

struct tui_history {
    char **line;
    size_t n;
};

struct tui {
    const struct tds_config *cfg;
    bool attached, read_only, utf8;
    bool hangup;                     /* the terminal went away: draw nothing more */
    char *instance;                  /* embedded engine's instance, NULL attached */
    char *label;                     /* title: instance, "attached" or a --demo label */
    struct pane panes[PANE_N];
    int cur;
    struct tui_snapshot *snap;       /* current data (owned) */
    struct tui_data *data;           /* NULL in screen tests */
    struct runtime *rt;              /* embedded engine (runtime.h) or NULL */
    bool frozen, quit, test_mode;
    long long now;                   /* wall clock, epoch s (fixed in tests) */
    unsigned gen;                    /* request generation */
    char msg[512];
    enum tui_role msg_role;
    long long msg_until_ms;
    enum tui_mode mode;
    /* help overlay */
    int help_top;
    /* prompt */
    enum tui_prompt_kind prompt_kind;
    wchar_t prompt_buf[256];
    int prompt_len, prompt_pos;
    struct tui_history hist[PROMPT_N];
    size_t hist_pos;
    struct tui_op_req *pending_op;   /* waiting for a prompt or confirmation */
    /* confirm */
    char confirm_text[512];
    /* text view (details) */
    enum tui_detail_kind text_kind;
    long long text_id;
    char *text_title;
    char **text_lines;
    int text_n, text_top;
    bool want_edit;                  /* DLQ edit: open $EDITOR when the payload arrives */
    /* sync dialog */
    int sd_field, sd_entity, sd_kind;
    bool sd_dry;
    int rows, cols;
};

/* Shows a message on the message line for a few seconds. */
void tui_message(struct tui *t, enum tui_role role, const char *fmt, ...) TDS_PRINTF(3, 4);
/* Sends the current pane's request to the data thread (new generation). */
void tui_refresh(struct tui *t);
/* Queues op for the data thread after a confirmation showing text. */
void tui_confirm(struct tui *t, struct tui_op_req *op, const char *fmt, ...) TDS_PRINTF(3, 4);
/* Opens the reason prompt; op runs with the reason once given. */
void tui_ask_reason(struct tui *t, struct tui_op_req *op, const char *question);
/* Asks the data thread for a detail and opens the text view. */
void tui_open_detail(struct tui *t, enum tui_detail_kind kind, long long id);
/* Builds an op from the table's targets (marks, filter or selection);
 * returns NULL with a message when there is nothing to act on.  *what
 * receives a short description of the count ("3 marked items"). */
struct tui_op_req *tui_targets(struct tui *t, struct pane *p, struct tui_table *tb,
                               enum tui_op op, const char *noun, char *what, size_t n);
/* Refuses an action in read-only mode, with a message; true if refused. */
bool tui_refuse_read_only(struct tui *t, enum tui_action a);
/* The kinds of the sync dialog, in its order. */
#define TUI_SYNC_KINDS 4
extern const char *const tui_sync_kinds[TUI_SYNC_KINDS];
/*
 * Parses the item ids of an items sync: Zoho ids (digits) separated by
 * commas and/or blanks, duplicates dropped.  Returns 0 with *ids (n
 * strings, caller frees each and the array), or -1 with a message for the
 * operator in why (nothing allocated) when a word is not digits or none is
 * given.
 */
int tui_parse_item_ids(const char *text, char ***ids, size_t *n, char *why, size_t whyn);
/* Opens the sync dialog / runs a ':' command line. */
void tui_sync_dialog(struct tui *t, const char *entity);
void tui_command(struct tui *t, const char *line);
/* Runs $EDITOR on the DLQ payload, validates it, queues an edit-retry. */
void tui_edit_payload(struct tui *t, long long id, const char *payload);

/* Draws the whole screen (frame, pane, overlays). */
void tui_draw(struct tui *t);
/* Fills t for a pane set (both the app and screen tests). */
void tui_init_panes(struct tui *t);
void tui_free_panes(struct tui *t);
void tui_adopt(struct tui *t, struct tui_snapshot *s);

/* Health verdict from a snapshot: "healthy", "degraded" or "down" with up
 * to n reasons (dashboard and title). */
const char *tui_health(struct tui *t, const struct tui_snapshot *s, char reasons[][128], int n,
                       int *nreasons);

#endif
