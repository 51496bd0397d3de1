/*
 * tui.h: the console.  An ncurses application (main thread only) with a
 * data thread that runs every query on its own connection and hands the UI
 * immutable snapshots; see DESIGN.md, "Threads", and issue 7.
 */
#ifndef TDS_TUI_H
#define TDS_TUI_H

#include <stdbool.h>
#include <stdio.h>
#include <time.h>

#include "tds/cli.h"
#include "tds/util.h"

/*
 * Runs the console until the operator quits: with an embedded engine, or
 * alone when g->attach.  Loads the configuration itself.  Returns an exit
 * status of cli.h (TDS_EXIT_OK, TDS_EXIT_USAGE for a configuration or
 * terminal problem).  The terminal is restored on every path out.
 */
int tui_main(const struct cli_globals *g);

struct tds_config;

/*
 * Can the console drive this terminal?  Returns 0, or -1 with a message for
 * the operator in why (n bytes): stdin or stdout not a terminal, TERM
 * unset, a TERM terminfo does not know, or a terminal that cannot move the
 * cursor (TERM=dumb).  The caller prints it and exits TDS_EXIT_USAGE; call
 * before curses, and before starting anything that would need stopping.
 */
int tui_term_check(char *why, size_t n);

/* How tui_run runs the console (tui_main fills it from the command line). */
struct tui_opts {
    bool attach;            /* no embedded engine */
    bool read_only;         /* every action refused (also console.read_only) */
    const char *theme;      /* NULL: console.theme */
    const char *instance;   /* embedded engine's instance; NULL: from cfg or host-pid */
    const char *label;      /* shown in the title instead of the instance ("demo"), or NULL */
};

/*
 * Runs the console on an already loaded configuration (for `tds --demo`,
 * which prepares its own).  cfg must outlive the call.  Same return values
 * as tui_main; checks the terminal first (tui_term_check: message on
 * stderr, TDS_EXIT_USAGE).
 */
int tui_run(const struct tds_config *cfg, const struct tui_opts *o);

/* Fixed data for screen tests: a snapshot as the data thread would make it. */
struct tui_snapshot;

/*
 * Reads a snapshot from a fixture file (sections "== name" then a "|"-
 * separated header line and rows; "\N" is NULL).  Returns NULL with *err
 * (caller frees) on failure.  Free with tui_snapshot_free.
 */
struct tui_snapshot *tui_snapshot_load(const char *path, char **err) TDS_MUST_CHECK;
void tui_snapshot_free(struct tui_snapshot *s);

/*
 * Renders pane (by name: "dashboard", "runs", "queue", "dlq", "alerts",
 * "events"; "help" for the help overlay over the dashboard, "detail" for the
 * text view, "dlq-groups"), optionally followed by "+help", "+confirm" (the
 * confirmation of `:sync stock dry`), "+sync" (the sync dialog) or
 * "+prompt" (the command prompt holding "sync stock"), at width x height
 * with the given data and clock, through curses on a private screen whose
 * output goes to /dev/null, and writes the virtual screen as UTF-8 text, one
 * line per row with trailing blanks removed, to out.  The glyphs follow
 * the locale: Unicode in a UTF-8 locale, the ASCII fallback otherwise.
 * Returns 0, or -1 when pane is unknown or curses could not start.
 */
int tui_render_snapshot(const char *pane, int width, int height, const struct tui_snapshot *data,
                        time_t now, FILE *out);

/* Writes every key binding, one "SECTION\tKEY\tACTION\tHELP" line each
 * (SECTION is "global" or a pane name), for the man page test. */
void tui_keymap_dump(FILE *out);

#endif
