/*
 * app.c: the console's application loop.  The main thread owns ncurses:
 * it polls stdin and a wake pipe (written by the data thread and by signal
 * handlers), adopts snapshots whose generation is current, maps keys to
 * named actions through the keymap and dispatches them to the pane on
 * screen or to the frame (prompts, dialogs, help).  It never waits on the
 * database: requests and operations go to the data thread.
 *
 * The terminal is restored on every way out: normal quit, exit(), fatal
 * signals (precomputed reset bytes, then the signal is raised again with
 * its default action), SIGINT/SIGTERM/SIGHUP (a graceful quit through the
 * self-pipe; a second one forces), and a terminal that goes away (hangup on
 * stdin ends the loop at once).  No curses call runs in a signal handler.
 */
#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <langinfo.h>
#include <locale.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>
#include <wchar.h>

#include "tds/entity.h"
#include "tds/log.h"
#include "tds/runtime.h"
#include "tds/sanitize.h"
#include "tui_internal.h"

static const struct pane_ops *const all_panes[PANE_N] = {
    &pane_dashboard_ops, &pane_runs_ops,   &pane_queue_ops,
    &pane_dlq_ops,       &pane_alerts_ops, &pane_events_ops,
};

static int wake_pipe[2] = {-1, -1};
static volatile sig_atomic_t curses_on;
static volatile sig_atomic_t quit_signal;

/* ------------------------------------------------------------------ */
/* Small services for the panes */

void tui_message(struct tui *t, enum tui_role role, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(t->msg, sizeof t->msg, fmt, ap);
    va_end(ap);
    t->msg_role = role;
    t->msg_until_ms = time_mono_ms() + 5000;
}

static void pane_request(struct tui *t, struct tui_request *rq)
{
    struct pane *p = &t->panes[t->cur];
    memset(rq, 0, sizeof *rq);
    rq->gen = t->gen;
    rq->pane = (enum tui_pane_id)t->cur;
    rq->frozen = t->frozen;
    rq->text = p->text;
    rq->status = p->status;
    rq->entity = p->entity;
    rq->type = p->type;
    rq->dlq_hours = p->dlq_hours;
    rq->dlq_grouped = p->dlq_grouped;
    if (t->mode == MODE_TEXT || t->want_edit) {
        rq->detail = t->text_kind;
        rq->detail_id = t->text_id;
    }
}

void tui_refresh(struct tui *t)
{
    t->gen++;
    if (t->data == NULL)
        return;
    struct tui_request rq;
    pane_request(t, &rq);
    tui_data_request(t->data, &rq); /* copied */
}

bool tui_refuse_read_only(struct tui *t, enum tui_action a)
{
    if (!t->read_only || !tui_action_mutating(a))
        return false;
    tui_message(t, ROLE_ERROR, "read-only console: %s is disabled (--read-only or console.read_only)",
                tui_action_name(a));
    return true;
}

void tui_confirm(struct tui *t, struct tui_op_req *op, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(t->confirm_text, sizeof t->confirm_text, fmt, ap);
    va_end(ap);
    tui_op_req_free(t->pending_op);
    t->pending_op = op;
    t->mode = MODE_CONFIRM;
}

static void prompt_open(struct tui *t, enum tui_prompt_kind kind, const char *initial)
{
    t->mode = MODE_PROMPT;
    t->prompt_kind = kind;
    t->prompt_len = 0;
    if (initial) {
        size_t n = mbstowcs(t->prompt_buf, initial, TDS_ARRAY_LEN(t->prompt_buf) - 1);
        t->prompt_len = n == (size_t)-1 ? 0 : (int)n;
    }
    t->prompt_buf[t->prompt_len] = 0;
    t->prompt_pos = t->prompt_len;
    t->hist_pos = t->hist[kind].n;
}

void tui_ask_reason(struct tui *t, struct tui_op_req *op, const char *question)
{
    snprintf(t->confirm_text, sizeof t->confirm_text, "%s", question);
    tui_op_req_free(t->pending_op);
    t->pending_op = op;
    prompt_open(t, PROMPT_REASON, NULL);
}

static void text_free(struct tui *t)
{
    for (int i = 0; i < t->text_n; i++)
        free(t->text_lines[i]);
    free(t->text_lines);
    free(t->text_title);
    t->text_lines = NULL;
    t->text_title = NULL;
    t->text_n = 0;
}

static void text_set(struct tui *t, const char *title, const char *text)
{
    text_free(t);
    t->text_title = xstrdup(title ? title : "");
    const char *p = text ? text : "";
    int cap = 16;
    t->text_lines = xcalloc((size_t)cap, sizeof *t->text_lines);
    for (;;) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        if (t->text_n == cap) {
            cap *= 2;
            t->text_lines = xreallocarray(t->text_lines, (size_t)cap, sizeof *t->text_lines);
        }
        t->text_lines[t->text_n++] = xstrndup(p, len);
        if (!nl)
            break;
        p = nl + 1;
    }
}

void tui_open_detail(struct tui *t, enum tui_detail_kind kind, long long id)
{
    t->text_kind = kind;
    t->text_id = id;
    t->text_top = 0;
    if (kind != DETAIL_DLQ_PAYLOAD) {
        t->mode = MODE_TEXT;
        text_set(t, "loading...", "");
        free(t->text_title);
        t->text_title = NULL;
    }
    tui_refresh(t);
}

struct tui_op_req *tui_targets(struct tui *t, struct pane *p, struct tui_table *tb,
                               enum tui_op opk, const char *noun, char *what, size_t n)
{
    struct tui_op_req *op = xcalloc(1, sizeof *op);
    op->op = opk;
    char cnt[32];
    if (tb->mark_filter) {
        long long total = t->snap ? tui_rs_ll(t->snap->rs[TQ_TOTAL], 0, "n") : 0;
        if (total > TUI_COUNT_CAP) {
            tui_message(t, ROLE_WARN, "more than %d rows match: narrow the filter first",
                        TUI_COUNT_CAP);
            free(op);
            return NULL;
        }
        if (total == 0) {
            tui_message(t, ROLE_WARN, "nothing matches the filter");
            free(op);
            return NULL;
        }
        op->by_filter = true;
        op->expect = total;
        struct tui_request rq;
        pane_request(t, &rq);
        rq.detail = DETAIL_NONE;
        tui_request_copy(&op->filter, &rq);
        tui_fmt_count(cnt, sizeof cnt, total);
        snprintf(what, n, "ALL %s %s%s matching the filter", cnt, noun, total == 1 ? "" : "s");
    } else if (tb->nmarks > 0) {
        op->ids = xcalloc(tb->nmarks, sizeof *op->ids);
        memcpy(op->ids, tb->marks, tb->nmarks * sizeof *op->ids);
        op->nids = tb->nmarks;
        tui_fmt_count(cnt, sizeof cnt, (long long)tb->nmarks);
        snprintf(what, n, "%s marked %s%s", cnt, noun, tb->nmarks == 1 ? "" : "s");
    } else if (tui_table_sel_id(tb) != 0) {
        op->ids = xcalloc(1, sizeof *op->ids);
        op->ids[0] = tui_table_sel_id(tb);
        op->nids = 1;
        snprintf(what, n, "1 %s (id %lld)", noun, op->ids[0]);
    } else {
        tui_message(t, ROLE_WARN, "nothing selected");
        free(op);
        return NULL;
    }
    (void)p;
    return op;
}

/* ------------------------------------------------------------------ */
/* Panes and snapshots */

void tui_init_panes(struct tui *t)
{
    for (int i = 0; i < PANE_N; i++) {
        memset(&t->panes[i], 0, sizeof t->panes[i]);
        t->panes[i].ops = all_panes[i];
        t->panes[i].ops->open(t, &t->panes[i]);
    }
}

void tui_free_panes(struct tui *t)
{
    for (int i = 0; i < PANE_N; i++) {
        struct pane *p = &t->panes[i];
        p->ops->close(t, p);
        free(p->text);
        free(p->status);
        free(p->entity);
        free(p->type);
    }
}

void tui_adopt(struct tui *t, struct tui_snapshot *s)
{
    if (s->gen < t->gen && s->ok) { /* answers an older request: drop it */
        tui_snapshot_free(s);
        return;
    }
    if (!s->ok && t->snap) { /* keep the last data on screen, flag the outage */
        /* Reachability changed: repaint everything, so nothing drawn before
         * the outage (or written to the terminal behind curses' back by a
         * library) survives on screen. */
        if (t->snap->ok)
            clearok(curscr, TRUE);
        free(t->snap->error);
        t->snap->error = s->error;
        s->error = NULL;
        t->snap->ok = false;
        tui_snapshot_free(s);
        return;
    }
    if (t->frozen && t->snap && s->detail_kind == DETAIL_NONE && t->snap->ok) {
        tui_snapshot_free(s);
        return;
    }
    struct tui_snapshot *old = t->snap;
    if (old != NULL && !old->ok)
        clearok(curscr, TRUE); /* back from an outage: see above */
    t->snap = s;
    for (int i = 0; i < PANE_N; i++)
        t->panes[i].ops->on_data(t, &t->panes[i], s);
    tui_snapshot_free(old);
    if (s->detail_kind != DETAIL_NONE && s->detail_kind == t->text_kind &&
        s->detail_id == t->text_id) {
        if (s->detail_kind == DETAIL_DLQ_PAYLOAD && t->want_edit) {
            t->want_edit = false;
            if (s->detail_raw)
                tui_edit_payload(t, s->detail_id, s->detail_raw);
            else
                tui_message(t, ROLE_ERROR, "%s", s->detail_text ? s->detail_text : "no payload");
            t->text_kind = DETAIL_NONE;
        } else if (t->mode == MODE_TEXT) {
            int top = t->text_top;
            text_set(t, s->detail_title, s->detail_text);
            t->text_top = top;
        }
    }
}

/* ------------------------------------------------------------------ */
/* Commands, sync dialog, editor */

static char *trim(char *s)
{
    while (*s == ' ')
        s++;
    size_t n = strlen(s);
    while (n > 0 && s[n - 1] == ' ')
        s[--n] = 0;
    return s;
}

static void queue_op(struct tui *t, struct tui_op_req *op)
{
    if (t->data == NULL) {
        tui_op_req_free(op);
        tui_message(t, ROLE_WARN, "no database in this mode");
        return;
    }
    tui_data_op(t->data, op);
    tui_message(t, ROLE_MESSAGE, "working...");
}

/* Whether a run type honours {"dry_run":true} (sync_stock.c reads it for
 * stock and items runs; full and incremental runs have no dry mode). */
static bool kind_has_dry_run(const char *kind)
{
    return strcmp(kind, "stock") == 0 || strcmp(kind, "items") == 0;
}

int tui_parse_item_ids(const char *text, char ***ids, size_t *n, char *why, size_t whyn)
{
    *ids = NULL;
    *n = 0;
    char *copy = xstrdup(text ? text : ""), *save = NULL;
    int rc = 0;
    for (char *w = strtok_r(copy, ", ", &save); w; w = strtok_r(NULL, ", ", &save)) {
        if (!str_is_digits(w)) {
            char *clean = sanitize_str(w, SANITIZE_ASCII);
            snprintf(why, whyn, "item id \"%.40s\" is not digits", clean);
            free(clean);
            rc = -1;
            break;
        }
        bool dup = false;
        for (size_t i = 0; i < *n && !dup; i++)
            dup = strcmp((*ids)[i], w) == 0;
        if (dup)
            continue;
        *ids = xreallocarray(*ids, *n + 1, sizeof **ids);
        (*ids)[(*n)++] = xstrdup(w);
    }
    free(copy);
    if (rc == 0 && *n == 0) {
        snprintf(why, whyn, "no item ids given");
        rc = -1;
    }
    if (rc != 0) {
        for (size_t i = 0; i < *n; i++)
            free((*ids)[i]);
        free(*ids);
        *ids = NULL;
        *n = 0;
    }
    return rc;
}

/* Builds the run request and asks for confirmation.  The run config is
 * what the handlers read (sync.h, sync_stock.c): {"dry_run":..,
 * "items":[..]}; a stock or items sync is of the items entity. */
static void start_sync(struct tui *t, const char *entity, const char *kind, bool dry,
                       char **ids, size_t nids)
{
    if (tui_refuse_read_only(t, ACT_SYNC))
        return;
    if (dry && !kind_has_dry_run(kind)) {
        tui_message(t, ROLE_ERROR, "a %s sync has no dry run (stock and items syncs do)", kind);
        return;
    }
    bool items_kind = strcmp(kind, "stock") == 0 || strcmp(kind, "items") == 0;
    struct tui_op_req *op = xcalloc(1, sizeof *op);
    op->op = OP_RUN_START;
    op->run_type = xstrdup(kind);
    op->entity = items_kind ? xstrdup("items") : entity ? xstrdup(entity) : NULL;
    op->dry_run = dry;
    cJSON *cfg = cJSON_CreateObject();
    if (kind_has_dry_run(kind))
        cJSON_AddBoolToObject(cfg, "dry_run", dry);
    cJSON_AddStringToObject(cfg, "source", "console");
    if (nids > 0) {
        cJSON *arr = cJSON_AddArrayToObject(cfg, "items");
        for (size_t i = 0; i < nids; i++)
            cJSON_AddItemToArray(arr, cJSON_CreateString(ids[i]));
    }
    char *json = cJSON_PrintUnformatted(cfg);
    cJSON_Delete(cfg);
    op->config = xstrdup(json);
    cJSON_free(json);

    char opts[160] = "";
    if (strcmp(kind, "stock") == 0) {
        bool active = t->cfg ? t->cfg->stock.active_only : true;
        bool with_stock = t->cfg ? t->cfg->stock.with_stock_only : false;
        snprintf(opts, sizeof opts, " (%s%s%s)", active ? "active only" : "active and inactive",
                 with_stock ? ", with stock only" : "", dry ? ", dry run" : "");
    } else if (dry) {
        snprintf(opts, sizeof opts, " (dry run)");
    }
    if (strcmp(kind, "items") == 0) {
        struct strbuf list = {0};
        for (size_t i = 0; i < nids && i < 5; i++)
            strbuf_printf(&list, "%s%s", i ? ", " : "", ids[i]);
        if (nids > 5)
            strbuf_printf(&list, ", +%zu more", nids - 5);
        tui_confirm(t, op, "Start an items sync of %zu item%s (%s)%s?", nids, nids == 1 ? "" : "s",
                    list.buf ? list.buf : "", opts);
        strbuf_free(&list);
    } else {
        tui_confirm(t, op, "Start a%s %s sync of %s%s?", kind[0] == 'i' ? "n" : "", kind,
                    op->entity ? op->entity : "every entity", opts);
    }
}

/* Opens the item ids prompt for an items sync (dry: the dialog's choice);
 * after a refusal, error says why on the prompt line, initial keeps the text. */
static void ask_item_ids(struct tui *t, bool dry, const char *error, const char *initial)
{
    t->sd_dry = dry;
    snprintf(t->confirm_text, sizeof t->confirm_text, "%s%sItem ids (comma-separated): ",
             error ? error : "", error ? "; " : "");
    prompt_open(t, PROMPT_ITEMS, initial);
}

void tui_sync_dialog(struct tui *t, const char *entity)
{
    if (tui_refuse_read_only(t, ACT_SYNC))
        return;
    size_t n;
    const struct entity_desc *e = entity_all(&n);
    t->sd_entity = 0;
    for (size_t i = 0; entity && i < n; i++)
        if (strcmp(e[i].name, entity) == 0)
            t->sd_entity = (int)i + 1;
    t->sd_field = 0;
    t->sd_kind = 0;
    t->sd_dry = false;
    t->mode = MODE_SYNC_DIALOG;
}

void tui_command(struct tui *t, const char *line)
{
    char *copy = xstrdup(line);
    char *cmd = trim(copy);
    char *words[8];
    int nw = 0;
    char *save = NULL;
    for (char *w = strtok_r(cmd, " ", &save); w && nw < 8; w = strtok_r(NULL, " ", &save))
        words[nw++] = w;
    if (nw == 0) {
        free(copy);
        return;
    }
    const char *c0 = words[0];
    if (strcmp(c0, "q") == 0 || strcmp(c0, "quit") == 0) {
        t->quit = true;
    } else if (strcmp(c0, "sync") == 0) {
        const char *entity = NULL, *kind = NULL, *idlist = NULL;
        bool dry = false, bad = false;
        for (int i = 1; i < nw; i++) {
            if (strcmp(words[i], "full") == 0 || strcmp(words[i], "incremental") == 0 ||
                strcmp(words[i], "stock") == 0)
                kind = words[i];
            else if (strcmp(words[i], "items") == 0 && kind == NULL && entity == NULL &&
                     i + 1 < nw && strspn(words[i + 1], "0123456789,") == strlen(words[i + 1]))
                kind = "items"; /* ":sync items 123,456": specific items */
            else if (strcmp(words[i], "dry") == 0 || strcmp(words[i], "--dry-run") == 0)
                dry = true;
            else if (kind && strcmp(kind, "items") == 0 && idlist == NULL &&
                     strspn(words[i], "0123456789,") == strlen(words[i]))
                idlist = words[i];
            else if (entity_find(words[i]))
                entity = entity_find(words[i])->name;
            else {
                tui_message(t, ROLE_ERROR, "sync: unknown entity or kind \"%s\"", words[i]);
                bad = true;
            }
        }
        if (!bad && kind && strcmp(kind, "items") == 0) {
            char **ids = NULL, why[160];
            size_t n = 0;
            if (tui_parse_item_ids(idlist, &ids, &n, why, sizeof why) != 0) {
                tui_message(t, ROLE_ERROR, "sync items: %s", why);
            } else {
                start_sync(t, "items", "items", dry, ids, n);
                for (size_t i = 0; i < n; i++)
                    free(ids[i]);
                free(ids);
            }
        } else if (!bad) {
            start_sync(t, entity, kind ? kind : "incremental", dry, NULL, 0);
        }
    } else if (strcmp(c0, "pause") == 0 || strcmp(c0, "resume") == 0) {
        if (!tui_refuse_read_only(t, ACT_SYNC)) {
            struct tui_op_req *op = xcalloc(1, sizeof *op);
            op->op = c0[0] == 'p' ? OP_PAUSE : OP_RESUME;
            tui_confirm(t, op, "%s every engine of the fleet?", c0[0] == 'p' ? "Pause" : "Resume");
        }
    } else if (strcmp(c0, "theme") == 0) {
        char *err = NULL;
        if (nw < 2)
            tui_message(t, ROLE_MESSAGE, "theme: %s (try default, mono, dark, high-contrast)",
                        tui_theme_name());
        else if (tui_theme_apply(words[1], &err) != 0) {
            tui_message(t, ROLE_ERROR, "%s", err);
            free(err);
        } else {
            tui_message(t, ROLE_MESSAGE, "theme %s", words[1]);
            clearok(curscr, TRUE);
        }
    } else if (strcmp(c0, "help") == 0) {
        t->mode = MODE_HELP;
    } else {
        tui_message(t, ROLE_ERROR, "unknown command \"%s\": try sync, pause, resume, theme, q", c0);
    }
    free(copy);
}

void tui_edit_payload(struct tui *t, long long id, const char *payload)
{
    if (tui_refuse_read_only(t, ACT_DLQ_EDIT))
        return;
    char path[] = "/tmp/tds-payload-XXXXXX.json";
    int fd = mkstemps(path, 5);
    if (fd < 0) {
        tui_message(t, ROLE_ERROR, "cannot create a temporary file: %s", strerror(errno));
        return;
    }
    FILE *f = fdopen(fd, "w");
    fputs(payload, f);
    fputc('\n', f);
    fclose(f);
    const char *editor = getenv("VISUAL");
    if (str_empty(editor))
        editor = getenv("EDITOR");
    if (str_empty(editor))
        editor = "vi";
    def_prog_mode();
    endwin();
    pid_t pid = fork();
    if (pid == 0) {
        execlp("sh", "sh", "-c", "exec $0 \"$1\"", editor, path, (char *)NULL);
        _exit(127);
    }
    int status = 0;
    while (pid > 0 && waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    reset_prog_mode();
    clearok(curscr, TRUE);
    refresh();
    if (pid < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        tui_message(t, ROLE_ERROR, "the editor failed (%s): nothing changed", editor);
        unlink(path);
        return;
    }
    f = fopen(path, "r");
    struct strbuf sb = {0};
    char buf[4096];
    size_t n;
    while (f && (n = fread(buf, 1, sizeof buf, f)) > 0)
        strbuf_append(&sb, buf, n);
    if (f)
        fclose(f);
    unlink(path);
    cJSON *j = cJSON_Parse(sb.buf ? sb.buf : "");
    if (j == NULL) {
        tui_message(t, ROLE_ERROR, "the edited payload is not valid JSON: nothing changed");
        strbuf_free(&sb);
        return;
    }
    char *compact = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    strbuf_free(&sb);
    if (strcmp(compact, payload) == 0) {
        /* unchanged text still goes through: the operator asked for a retry */
    }
    struct tui_op_req *op = xcalloc(1, sizeof *op);
    op->op = OP_DLQ_EDIT_RETRY;
    op->ids = xcalloc(1, sizeof *op->ids);
    op->ids[0] = id;
    op->nids = 1;
    op->payload = xstrdup(compact);
    cJSON_free(compact);
    tui_confirm(t, op, "Retry dead-letter item %lld with the edited payload?", id);
}

/* ------------------------------------------------------------------ */
/* Keys */

static void cycle_entity(struct tui *t, struct pane *p)
{
    size_t n;
    const struct entity_desc *e = entity_all(&n);
    const char *next = n ? e[0].name : NULL;
    for (size_t i = 0; i < n; i++)
        if (p->entity && strcmp(p->entity, e[i].name) == 0)
            next = i + 1 < n ? e[i + 1].name : NULL;
    free(p->entity);
    p->entity = next ? xstrdup(next) : NULL;
    tui_message(t, ROLE_MESSAGE, "entity: %s", next ? next : "any");
    tui_refresh(t);
}

static void switch_pane(struct tui *t, int to)
{
    if (to == t->cur)
        return;
    t->cur = (to + PANE_N) % PANE_N;
    tui_refresh(t);
}

static void key_normal(struct tui *t, int key)
{
    struct pane *p = &t->panes[t->cur];
    enum tui_action a = tui_keymap_lookup(t->cur, key);
    if (a == ACT_NONE)
        return;
    if (tui_refuse_read_only(t, a))
        return;
    switch (a) {
    case ACT_QUIT:
        t->quit = true;
        return;
    case ACT_HELP:
        t->mode = MODE_HELP;
        t->help_top = 0;
        return;
    case ACT_REDRAW:
        clearok(curscr, TRUE);
        return;
    case ACT_FREEZE:
        t->frozen = !t->frozen;
        tui_message(t, ROLE_MESSAGE, t->frozen ? "refresh frozen (z: live again)" : "live refresh");
        tui_refresh(t);
        return;
    case ACT_FILTER:
        if (t->cur == PANE_DASHBOARD) {
            tui_message(t, ROLE_WARN, "no filter on the dashboard");
            return;
        }
        prompt_open(t, PROMPT_FILTER, p->text);
        return;
    case ACT_COMMAND:
        prompt_open(t, PROMPT_COMMAND, NULL);
        return;
    case ACT_PANE_NEXT: switch_pane(t, t->cur + 1); return;
    case ACT_PANE_PREV: switch_pane(t, t->cur - 1); return;
    case ACT_PANE_1: case ACT_PANE_2: case ACT_PANE_3: case ACT_PANE_4: case ACT_PANE_5: case ACT_PANE_6:
        switch_pane(t, a - ACT_PANE_1);
        return;
    case ACT_ENTITY_FILTER:
        if (t->cur != PANE_DASHBOARD)
            cycle_entity(t, p);
        return;
    default:
        break;
    }
    if (p->ops->key(t, p, a))
        return;
    if (t->cur != PANE_DASHBOARD)
        tui_table_key(t, &p->table, a);
}

static void prompt_done(struct tui *t, bool accept)
{
    char line[1024];
    size_t n = wcstombs(line, t->prompt_buf, sizeof line - 1);
    line[n == (size_t)-1 ? 0 : n] = 0;
    enum tui_prompt_kind kind = t->prompt_kind;
    t->mode = MODE_NORMAL;
    if (accept && line[0] && kind != PROMPT_REASON) {
        struct tui_history *h = &t->hist[kind];
        if (h->n == 0 || strcmp(h->line[h->n - 1], line) != 0) {
            h->line = xreallocarray(h->line, h->n + 1, sizeof *h->line);
            h->line[h->n++] = xstrdup(line);
        }
    }
    struct pane *p = &t->panes[t->cur];
    switch (kind) {
    case PROMPT_FILTER:
        if (!accept)
            return;
        free(p->text);
        p->text = line[0] ? xstrdup(line) : NULL;
        tui_table_clear_marks(&p->table);
        tui_refresh(t);
        break;
    case PROMPT_COMMAND:
        if (accept)
            tui_command(t, line);
        break;
    case PROMPT_ITEMS: {
        if (!accept) {
            tui_message(t, ROLE_MESSAGE, "cancelled: nothing done");
            break;
        }
        char **ids = NULL, why[160];
        size_t nids = 0;
        if (tui_parse_item_ids(line, &ids, &nids, why, sizeof why) != 0) {
            tui_message(t, ROLE_ERROR, "%s", why);
            ask_item_ids(t, t->sd_dry, why, line); /* let the operator fix it */
            break;
        }
        start_sync(t, "items", "items", t->sd_dry, ids, nids);
        for (size_t i = 0; i < nids; i++)
            free(ids[i]);
        free(ids);
        break;
    }
    case PROMPT_REASON: {
        struct tui_op_req *op = t->pending_op;
        t->pending_op = NULL;
        char *r = trim(line);
        if (!accept || r[0] == 0) {
            tui_message(t, ROLE_MESSAGE, accept ? "a reason is required: nothing done" : "cancelled");
            tui_op_req_free(op);
            break;
        }
        op->reason = xstrdup(r);
        char q[600];
        snprintf(q, sizeof q, "%s%s?", t->confirm_text, r);
        tui_confirm(t, op, "%s", q);
        break;
    }
    default:
        break;
    }
}

static void key_prompt(struct tui *t, int key, bool is_code)
{
    struct tui_history *h = &t->hist[t->prompt_kind];
    if (!is_code && (key == '\n' || key == '\r')) {
        prompt_done(t, true);
    } else if (!is_code && key == 27) {
        prompt_done(t, false);
    } else if ((is_code && key == KEY_BACKSPACE) || (!is_code && (key == 127 || key == 8))) {
        if (t->prompt_pos > 0) {
            wmemmove(t->prompt_buf + t->prompt_pos - 1, t->prompt_buf + t->prompt_pos,
                     (size_t)(t->prompt_len - t->prompt_pos + 1));
            t->prompt_pos--;
            t->prompt_len--;
        } else if (t->prompt_len == 0) {
            prompt_done(t, false);
        }
    } else if (is_code && key == KEY_DC) {
        if (t->prompt_pos < t->prompt_len) {
            wmemmove(t->prompt_buf + t->prompt_pos, t->prompt_buf + t->prompt_pos + 1,
                     (size_t)(t->prompt_len - t->prompt_pos));
            t->prompt_len--;
        }
    } else if (is_code && key == KEY_LEFT) {
        if (t->prompt_pos > 0)
            t->prompt_pos--;
    } else if (is_code && key == KEY_RIGHT) {
        if (t->prompt_pos < t->prompt_len)
            t->prompt_pos++;
    } else if ((is_code && key == KEY_HOME) || (!is_code && key == 1)) {
        t->prompt_pos = 0;
    } else if ((is_code && key == KEY_END) || (!is_code && key == 5)) {
        t->prompt_pos = t->prompt_len;
    } else if (!is_code && key == 21) { /* C-u */
        t->prompt_len = t->prompt_pos = 0;
        t->prompt_buf[0] = 0;
    } else if (is_code && (key == KEY_UP || key == KEY_DOWN)) {
        if (key == KEY_UP && t->hist_pos > 0)
            t->hist_pos--;
        else if (key == KEY_DOWN && t->hist_pos < h->n)
            t->hist_pos++;
        const char *l = t->hist_pos < h->n ? h->line[t->hist_pos] : "";
        size_t n = mbstowcs(t->prompt_buf, l, TDS_ARRAY_LEN(t->prompt_buf) - 1);
        t->prompt_len = n == (size_t)-1 ? 0 : (int)n;
        t->prompt_buf[t->prompt_len] = 0;
        t->prompt_pos = t->prompt_len;
    } else if (!is_code && key >= 32 && key != 127 &&
               t->prompt_len < (int)TDS_ARRAY_LEN(t->prompt_buf) - 1) {
        wmemmove(t->prompt_buf + t->prompt_pos + 1, t->prompt_buf + t->prompt_pos,
                 (size_t)(t->prompt_len - t->prompt_pos + 1));
        t->prompt_buf[t->prompt_pos++] = (wchar_t)key;
        t->prompt_len++;
    }
}

static void key_sync_dialog(struct tui *t, int key)
{
    size_t ne;
    const struct entity_desc *e = entity_all(&ne);
    int nk = TUI_SYNC_KINDS;
    if (key == 27 || key == 'q') {
        t->mode = MODE_NORMAL;
    } else if (key == KEY_UP || key == 'k' || key == KEY_BTAB) {
        t->sd_field = (t->sd_field + 2) % 3;
    } else if (key == KEY_DOWN || key == 'j' || key == '\t') {
        t->sd_field = (t->sd_field + 1) % 3;
    } else if (key == KEY_LEFT || key == KEY_RIGHT || key == ' ' || key == 'h' || key == 'l') {
        int d = key == KEY_LEFT || key == 'h' ? -1 : 1;
        if (t->sd_field == 0)
            t->sd_entity = (t->sd_entity + d + (int)ne + 1) % ((int)ne + 1);
        else if (t->sd_field == 1)
            t->sd_kind = (t->sd_kind + d + nk) % nk;
        else
            t->sd_dry = !t->sd_dry;
    } else if (key == '\n' || key == '\r' || key == KEY_ENTER) {
        t->mode = MODE_NORMAL;
        const char *kind = tui_sync_kinds[t->sd_kind];
        if (strcmp(kind, "items") == 0)
            ask_item_ids(t, t->sd_dry, NULL, NULL);
        else
            start_sync(t, t->sd_entity ? e[t->sd_entity - 1].name : NULL, kind,
                       t->sd_dry && kind_has_dry_run(kind), NULL, 0);
    }
}

static void handle_key(struct tui *t, int key, bool is_code)
{
    if (key == KEY_RESIZE)
        return;
    if (t->cols < 80 || t->rows < 24) { /* the "too small" screen: only quit */
        if (!is_code && (key == 'q' || key == 27))
            t->quit = true;
        return;
    }
    switch (t->mode) {
    case MODE_PROMPT:
        key_prompt(t, key, is_code);
        return;
    case MODE_CONFIRM:
        if (!is_code && (key == 'y' || key == 'Y')) {
            struct tui_op_req *op = t->pending_op;
            t->pending_op = NULL;
            t->mode = MODE_NORMAL;
            struct pane *p = &t->panes[t->cur];
            tui_table_clear_marks(&p->table);
            queue_op(t, op);
        } else if (!is_code && (key == 'n' || key == 'N' || key == 27 || key == 'q')) {
            tui_op_req_free(t->pending_op);
            t->pending_op = NULL;
            t->mode = MODE_NORMAL;
            tui_message(t, ROLE_MESSAGE, "cancelled: nothing done");
        }
        return;
    case MODE_HELP: {
        enum tui_action a = tui_keymap_lookup(-1, key);
        if (a == ACT_QUIT || a == ACT_HELP)
            t->mode = MODE_NORMAL;
        else if (a == ACT_DOWN)
            t->help_top++;
        else if (a == ACT_UP)
            t->help_top--;
        else if (a == ACT_PGDN)
            t->help_top += 10;
        else if (a == ACT_PGUP)
            t->help_top -= 10;
        return;
    }
    case MODE_TEXT: {
        enum tui_action a = tui_keymap_lookup(-1, key);
        int page = t->rows - 6;
        if (a == ACT_QUIT || a == ACT_OPEN) {
            t->mode = MODE_NORMAL;
            t->text_kind = DETAIL_NONE;
            text_free(t);
        } else if (a == ACT_DOWN)
            t->text_top++;
        else if (a == ACT_UP)
            t->text_top--;
        else if (a == ACT_PGDN)
            t->text_top += page;
        else if (a == ACT_PGUP)
            t->text_top -= page;
        else if (a == ACT_TOP)
            t->text_top = 0;
        else if (a == ACT_BOTTOM)
            t->text_top = t->text_n;
        else if (a == ACT_REDRAW)
            clearok(curscr, TRUE);
        return;
    }
    case MODE_SYNC_DIALOG:
        key_sync_dialog(t, key);
        return;
    default:
        key_normal(t, key);
        return;
    }
}

/* ------------------------------------------------------------------ */
/* Terminal and signals */

static void restore_terminal(void)
{
    if (curses_on) {
        curses_on = 0;
        endwin();
    }
}

/*
 * Signal handlers.  No curses function runs in any of them (endwin() is
 * not async-signal-safe and corrupts the screen when a signal lands in the
 * middle of a refresh): a handler notes the signal and writes one byte to
 * the self-pipe, and the main loop, woken in its poll(), does the work
 * (quit, resize, suspend).  Only a fatal signal, or a second request to
 * quit, resets the terminal from the handler, with the precomputed bytes
 * of tui_term_reset_async() (write and tcsetattr only), then dies of it.
 */
static volatile sig_atomic_t winch_signal, tstp_signal;

static void wake_from_signal(char b)
{
    if (wake_pipe[1] >= 0) {
        ssize_t rc = write(wake_pipe[1], &b, 1);
        (void)rc;
    }
}

static void on_fatal(int sig)
{
    if (curses_on)
        tui_term_reset_async();
    signal(sig, SIG_DFL);
    raise(sig);
}

static void on_quit(int sig)
{
    if (quit_signal) { /* second time: no more patience */
        if (curses_on)
            tui_term_reset_async();
        signal(sig, SIG_DFL);
        raise(sig);
        return;
    }
    quit_signal = sig;
    wake_from_signal('q');
}

static void on_winch(int sig)
{
    (void)sig;
    winch_signal = 1;
    wake_from_signal('w');
}

static void on_tstp(int sig)
{
    (void)sig;
    tstp_signal = 1;
    wake_from_signal('z');
}

/* Installed BEFORE curses starts, so that ncurses, which only catches
 * signals still at their default action, installs none of its own handlers
 * (its SIGWINCH, SIGTSTP and SIGINT handlers call curses).  A SIGHUP that
 * was ignored when tds started (nohup) stays ignored: the loop still ends
 * when the terminal goes away, by the hangup it sees on stdin. */
static void install_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sigemptyset(&sa.sa_mask);
    sa.sa_handler = on_fatal;
    sa.sa_flags = SA_RESETHAND;
    int fatal[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT};
    for (size_t i = 0; i < TDS_ARRAY_LEN(fatal); i++)
        sigaction(fatal[i], &sa, NULL);
    sa.sa_handler = on_quit;
    sa.sa_flags = 0;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    struct sigaction old_hup;
    if (sigaction(SIGHUP, NULL, &old_hup) != 0 || old_hup.sa_handler != SIG_IGN)
        sigaction(SIGHUP, &sa, NULL);
    sa.sa_handler = on_winch;
    sa.sa_flags = SA_RESTART;
    sigaction(SIGWINCH, &sa, NULL);
    struct sigaction old_tstp;
    sa.sa_handler = on_tstp;
    if (sigaction(SIGTSTP, NULL, &old_tstp) != 0 || old_tstp.sa_handler != SIG_IGN)
        sigaction(SIGTSTP, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}

/* The main loop's side of SIGWINCH and SIGTSTP (see the handlers). */
static void handle_signals(struct tui *t)
{
    if (winch_signal) {
        winch_signal = 0;
        struct winsize ws;
        if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_row > 0 && ws.ws_col > 0)
            resizeterm(ws.ws_row, ws.ws_col);
        getmaxyx(stdscr, t->rows, t->cols);
        clearok(curscr, TRUE);
    }
    if (tstp_signal) { /* Ctrl-Z: give the terminal back, stop, take it again */
        tstp_signal = 0;
        def_prog_mode();
        endwin();
        signal(SIGTSTP, SIG_DFL);
        raise(SIGTSTP);
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sigemptyset(&sa.sa_mask);
        sa.sa_handler = on_tstp;
        sa.sa_flags = SA_RESTART;
        sigaction(SIGTSTP, &sa, NULL);
        reset_prog_mode();
        clearok(curscr, TRUE);
        refresh();
        winch_signal = 1; /* the size may have changed meanwhile */
    }
}

/* True when stdin no longer has a terminal behind it: the pty was closed
 * (ssh or tmux went away).  poll() then reports POLLHUP/POLLERR at once,
 * or POLLIN with read() giving 0 or EIO, forever: the loop must end rather
 * than spin. */
static bool stdin_hung_up(short revents, bool got_key)
{
    if (revents & (POLLHUP | POLLERR | POLLNVAL))
        return true;
    struct termios tio;
    return (revents & POLLIN) && !got_key && tcgetattr(STDIN_FILENO, &tio) != 0;
}

static bool locale_utf8(void)
{
    const char *cs = nl_langinfo(CODESET);
    return cs && (strcmp(cs, "UTF-8") == 0 || strcmp(cs, "utf8") == 0);
}

static void start_curses(struct tui *t, const char *theme)
{
    set_escdelay(25);
    tui_term_save();
    install_signals();
    initscr();
    curses_on = 1;
    tui_term_prepare_reset();
    atexit(restore_terminal);
    cbreak();
    noecho();
    nonl();
    keypad(stdscr, TRUE);
    nodelay(stdscr, TRUE);
    curs_set(0);
    tui_glyphs_init(t->utf8);
    char *err = NULL;
    if (tui_theme_apply(theme, &err) != 0) {
        tui_theme_builtin();
        tui_message(t, ROLE_WARN, "%s: using the built-in theme", err);
        free(err);
    }
}

/* Drains the embedded engine with visible progress; q again abandons the wait. */
static void drain_engine(struct tui *t)
{
    if (t->rt == NULL)
        return;
    runtime_request_stop(t->rt);
    struct engine *e = runtime_engine(t->rt);
    long long start = time_mono_ms();
    while (t->hangup) { /* no terminal to draw on or to read from: just wait */
        if (runtime_join(t->rt, 200) == 0) {
            runtime_free(t->rt);
            t->rt = NULL;
            return;
        }
        if (time_mono_ms() - start > 30000) {
            log_warn("console: stopped waiting for the engine to drain after the hangup");
            t->rt = NULL;
            return;
        }
    }
    for (;;) {
        struct engine_status st;
        engine_status(e, &st);
        erase();
        char buf[256];
        snprintf(buf, sizeof buf,
                 "Stopping the embedded engine %s: %s, %d of %d workers busy, %d run%s active"
                 " (%llds)",
                 st.instance, engine_state_name(st.state), st.busy, st.workers, st.runs_active,
                 st.runs_active == 1 ? "" : "s", (time_mono_ms() - start) / 1000);
        getmaxyx(stdscr, t->rows, t->cols);
        tui_put(t->rows / 2 - 1, 2, buf, t->cols - 4, tui_attr(ROLE_WARN) | A_BOLD, false);
        tui_put(t->rows / 2 + 1, 2,
                "finishing the batch in hand; leases of items not started are released."
                "  q: stop waiting",
                t->cols - 4, tui_attr(ROLE_DIM), false);
        refresh();
        if (runtime_join(t->rt, 200) == 0)
            break;
        wint_t wch;
        int rc;
        bool give_up = false;
        while ((rc = wget_wch(stdscr, &wch)) != ERR)
            if (rc == OK && (wch == 'q' || wch == 27))
                give_up = true;
        if (give_up || quit_signal == SIGTERM + 1000) {
            log_warn("console: stopped waiting for the engine to drain");
            t->rt = NULL; /* leave it: another engine's janitor takes over */
            return;
        }
    }
    runtime_free(t->rt);
    t->rt = NULL;
}

int tui_run(const struct tds_config *cfg, const struct tui_opts *o)
{
    char why[320];
    if (tui_term_check(why, sizeof why) != 0) { /* before the engine starts */
        fprintf(stderr, "tds: %s\n", why);
        return TDS_EXIT_USAGE;
    }
    struct tui *t = xcalloc(1, sizeof *t);
    t->cfg = cfg;
    t->read_only = o->read_only || cfg->console.read_only;
    t->attached = o->attach;
    setlocale(LC_ALL, "");
    t->utf8 = locale_utf8();

    if (!t->attached) {
        char *err = NULL;
        t->rt = runtime_start(cfg, o->instance, "embedded", &err);
        if (t->rt == NULL) {
            fprintf(stderr, "tds: cannot start the embedded engine: %s\n"
                            "tds: run `tds --attach` to watch engines that run elsewhere\n",
                    err ? err : "unknown error");
            free(err);
            free(t);
            return 1;
        }
        struct engine_status st;
        engine_status(runtime_engine(t->rt), &st);
        t->instance = xstrdup(st.instance);
    }
    t->label = xstrdup(o->label ? o->label : t->instance ? t->instance : "attached");

    if (pipe2(wake_pipe, O_NONBLOCK | O_CLOEXEC) != 0) {
        fprintf(stderr, "tds: pipe: %s\n", strerror(errno));
        return 1;
    }
    log_set_quiet_stderr(true);
    tui_init_panes(t);
    start_curses(t, o->theme ? o->theme : cfg->console.theme);
    t->data = tui_data_start(cfg, t->instance, wake_pipe[1]);
    t->now = time(NULL);
    tui_refresh(t);

    while (!t->quit && !quit_signal) {
        t->now = time(NULL);
        tui_draw(t);
        refresh();
        struct pollfd pfd[2] = {{0, POLLIN, 0}, {wake_pipe[0], POLLIN, 0}};
        long long ms = time_wall_ms();
        int timeout = 1000 - (int)(ms % 1000) + 5; /* the clock ticks each second */
        int rc = poll(pfd, 2, timeout);
        if (rc < 0 && errno != EINTR)
            break;
        if (rc > 0 && (pfd[1].revents & POLLIN)) { /* data thread or a signal */
            char buf[64];
            while (read(wake_pipe[0], buf, sizeof buf) > 0)
                ;
        }
        if (quit_signal)
            break;
        handle_signals(t);
        struct tui_snapshot *s = tui_data_take(t->data);
        if (s)
            tui_adopt(t, s);
        bool ok;
        char *res;
        while ((res = tui_data_take_result(t->data, &ok)) != NULL) {
            tui_message(t, ok ? ROLE_OK : ROLE_ERROR, "%s", res);
            free(res);
        }
        wint_t wch;
        int kr;
        bool got_key = false;
        while ((kr = wget_wch(stdscr, &wch)) != ERR) {
            got_key = true;
            getmaxyx(stdscr, t->rows, t->cols);
            handle_key(t, (int)wch, kr == KEY_CODE_YES);
            if (t->quit)
                break;
        }
        if (rc > 0 && stdin_hung_up(pfd[0].revents, got_key)) {
            log_info("console: the terminal went away (hangup): quitting");
            t->hangup = true;
            break;
        }
    }
    tui_data_stop(t->data);
    t->data = NULL;
    drain_engine(t);
    restore_terminal();
    log_set_quiet_stderr(false);
    int sig = quit_signal;
    tui_free_panes(t);
    tui_snapshot_free(t->snap);
    tui_op_req_free(t->pending_op);
    text_free(t);
    for (int k = 0; k < PROMPT_N; k++) {
        for (size_t i = 0; i < t->hist[k].n; i++)
            free(t->hist[k].line[i]);
        free(t->hist[k].line);
    }
    free(t->instance);
    free(t->label);
    free(t);
    if (sig) { /* die of the signal that asked us to, now that all is clean */
        signal(sig, SIG_DFL);
        raise(sig);
    }
    return 0;
}

int tui_main(const struct cli_globals *g)
{
    prctl(PR_SET_DUMPABLE, 0, 0, 0, 0); /* holds secrets: no core file, no same-user ptrace */
    struct config_loaded cl;
    int rc = cli_load_config(g, &cl);
    if (rc != 0)
        return rc;
    struct tui_opts o = {
        .attach = g->attach,
        .read_only = g->read_only,
        .theme = g->theme,
        .instance = g->instance,
    };
    rc = tui_run(&cl.cfg, &o);
    config_loaded_free(&cl);
    return rc;
}

/* ------------------------------------------------------------------ */
/* Screen tests */

int tui_render_snapshot(const char *pane, int width, int height, const struct tui_snapshot *data,
                        time_t now, FILE *out)
{
    static const char *names[] = {"dashboard", "runs", "queue", "dlq", "alerts", "events"};
    int idx = -1;
    bool help = false, detail = false, grouped = false;
    char base[64];
    const char *overlay = strchr(pane, '+');
    snprintf(base, sizeof base, "%.*s", overlay ? (int)(overlay - pane) : (int)strlen(pane), pane);
    pane = base;
    if (overlay && strcmp(overlay + 1, "help") != 0 && strcmp(overlay + 1, "confirm") != 0 &&
        strcmp(overlay + 1, "sync") != 0 && strcmp(overlay + 1, "prompt") != 0)
        return -1;
    if (strcmp(pane, "help") == 0)
        idx = PANE_DASHBOARD, help = true;
    else if (strcmp(pane, "detail") == 0)
        idx = PANE_QUEUE, detail = true;
    else if (strcmp(pane, "dlq-groups") == 0)
        idx = PANE_DLQ, grouped = true;
    for (int i = 0; i < PANE_N; i++)
        if (strcmp(pane, names[i]) == 0)
            idx = i;
    if (idx < 0)
        return -1;
    FILE *fo = fopen("/dev/null", "w"), *fi = fopen("/dev/null", "r");
    if (!fo || !fi) {
        if (fo)
            fclose(fo);
        if (fi)
            fclose(fi);
        return -1;
    }
    SCREEN *scr = newterm("xterm-256color", fo, fi);
    if (scr == NULL)
        scr = newterm("vt100", fo, fi);
    if (scr == NULL) {
        fclose(fo);
        fclose(fi);
        return -1;
    }
    set_term(scr);
    resize_term(height, width);
    struct tui t;
    memset(&t, 0, sizeof t);
    t.test_mode = true;
    t.utf8 = locale_utf8();
    t.now = (long long)now;
    t.instance = xstrdup("test-host-1");
    t.label = xstrdup("test-host-1");
    struct config_loaded cl;
    struct config_errors errs = {0};
    bool have_cfg = config_load(NULL, &cl, &errs) == 0;
    config_errors_free(&errs);
    t.cfg = have_cfg ? &cl.cfg : NULL;
    tui_glyphs_init(t.utf8);
    tui_theme_builtin();
    tui_init_panes(&t);
    t.cur = idx;
    t.panes[PANE_DLQ].dlq_grouped = grouped;
    t.snap = (struct tui_snapshot *)data; /* borrowed */
    for (int i = 0; i < PANE_N; i++)
        t.panes[i].ops->on_data(&t, &t.panes[i], data);
    if (help)
        t.mode = MODE_HELP;
    if (overlay) { /* through the real code paths, as the keys would go */
        if (strcmp(overlay + 1, "help") == 0)
            t.mode = MODE_HELP;
        else if (strcmp(overlay + 1, "confirm") == 0)
            tui_command(&t, "sync stock dry");
        else if (strcmp(overlay + 1, "sync") == 0)
            tui_sync_dialog(&t, NULL);
        else
            prompt_open(&t, PROMPT_COMMAND, "sync stock");
    }
    if (detail) {
        t.mode = MODE_TEXT;
        text_set(&t, data->detail_title, data->detail_text);
    }
    tui_draw(&t);
    wchar_t wbuf[1024];
    for (int y = 0; y < height; y++) {
        int n = mvwinnwstr(stdscr, y, 0, wbuf, width < 1023 ? width : 1023);
        if (n < 0)
            n = 0;
        wbuf[n] = 0;
        char line[4096];
        size_t len = wcstombs(line, wbuf, sizeof line - 1);
        if (len == (size_t)-1)
            len = 0;
        line[len] = 0;
        while (len > 0 && line[len - 1] == ' ')
            line[--len] = 0;
        fprintf(out, "%s\n", line);
    }
    t.snap = NULL;
    tui_op_req_free(t.pending_op);
    tui_free_panes(&t);
    text_free(&t);
    free(t.instance);
    free(t.label);
    if (have_cfg)
        config_loaded_free(&cl);
    endwin();
    delscreen(scr);
    fclose(fo);
    fclose(fi);
    return 0;
}
