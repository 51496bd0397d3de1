/*
 * keymap.c: the one keymap table.  Every named action is declared once in
 * TUI_ACTIONS (tui_internal.h) with its help text; this table binds keys to
 * actions, globally or per pane.  The key handler, the "?" help overlay, the
 * hint bar and the test that checks man/tds.1 all read this table.
 *
 * A pane binding shadows a global one: in the DLQ pane "g" opens the
 * grouped view, and Home goes to the first row there as everywhere.
 */
#include <stdio.h>

#include "tui_internal.h"

#define CTRL(c) ((c)&0x1f)
#define ANY (-1)

static const struct {
    const char *name;
    bool mutating;
    const char *help;
} actions[] = {
#define X(e, n, m, h) {n, m, h},
    TUI_ACTIONS(X)
#undef X
};

static const struct tui_binding keymap[] = {
    /* dashboard */
    {PANE_DASHBOARD, 's', "s", ACT_SYNC, "sync"},
    /* runs */
    {PANE_RUNS, 's', "s", ACT_SYNC, "sync"},
    {PANE_RUNS, 'c', "c", ACT_RUN_CANCEL, "cancel"},
    {PANE_RUNS, 'f', "f", ACT_STATUS_FILTER, "status"},
    {PANE_RUNS, 'e', "e", ACT_ENTITY_FILTER, "entity"},
    /* queue */
    {PANE_QUEUE, 'r', "r", ACT_RETRY, "retry"},
    {PANE_QUEUE, '+', "+", ACT_PRIO_UP, "prio+"},
    {PANE_QUEUE, '-', "-", ACT_PRIO_DOWN, "prio-"},
    {PANE_QUEUE, 'd', "d", ACT_TO_DLQ, "to DLQ"},
    {PANE_QUEUE, 'f', "f", ACT_STATUS_FILTER, "status"},
    {PANE_QUEUE, 'e', "e", ACT_ENTITY_FILTER, "entity"},
    /* dead-letter queue */
    {PANE_DLQ, 'g', "g", ACT_DLQ_GROUPS, "groups"},
    {PANE_DLQ, 'w', "w", ACT_DLQ_WINDOW, "window"},
    {PANE_DLQ, 'r', "r", ACT_RETRY, "retry"},
    {PANE_DLQ, 'E', "E", ACT_DLQ_EDIT, "edit+retry"},
    {PANE_DLQ, 'x', "x", ACT_DISCARD, "discard"},
    {PANE_DLQ, 'e', "e", ACT_ENTITY_FILTER, "entity"},
    /* alerts */
    {PANE_ALERTS, 'a', "a", ACT_ACK, "ack"},
    {PANE_ALERTS, 'A', "A", ACT_ACK_ALL, "ack all"},
    {PANE_ALERTS, 'f', "f", ACT_STATUS_FILTER, "show"},
    {PANE_ALERTS, 'e', "e", ACT_ENTITY_FILTER, "entity"},
    /* events */
    {PANE_EVENTS, 't', "t", ACT_TYPE_FILTER, "type"},
    {PANE_EVENTS, 'e', "e", ACT_ENTITY_FILTER, "entity"},
    /* everywhere */
    {ANY, '\n', "Enter", ACT_OPEN, "open"},
    {ANY, '\r', "Enter", ACT_OPEN, NULL},
    {ANY, KEY_ENTER, "Enter", ACT_OPEN, NULL},
    {ANY, ' ', "Space", ACT_MARK, "mark"},
    {ANY, '*', "*", ACT_MARK_FILTER, NULL},
    {ANY, '/', "/", ACT_FILTER, "filter"},
    {ANY, ':', ":", ACT_COMMAND, "cmd"},
    {ANY, 'z', "z", ACT_FREEZE, "freeze"},
    {ANY, '?', "?", ACT_HELP, "help"},
    {ANY, KEY_F(1), "F1", ACT_HELP, NULL},
    {ANY, 'q', "q", ACT_QUIT, "quit"},
    {ANY, 27, "Esc", ACT_QUIT, NULL},
    {ANY, CTRL('l'), "C-l", ACT_REDRAW, NULL},
    {ANY, '\t', "Tab", ACT_PANE_NEXT, NULL},
    {ANY, KEY_BTAB, "S-Tab", ACT_PANE_PREV, NULL},
    {ANY, '1', "1", ACT_PANE_1, NULL},
    {ANY, '2', "2", ACT_PANE_2, NULL},
    {ANY, '3', "3", ACT_PANE_3, NULL},
    {ANY, '4', "4", ACT_PANE_4, NULL},
    {ANY, '5', "5", ACT_PANE_5, NULL},
    {ANY, '6', "6", ACT_PANE_6, NULL},
    {ANY, 'j', "j", ACT_DOWN, NULL},
    {ANY, KEY_DOWN, "Down", ACT_DOWN, NULL},
    {ANY, 'k', "k", ACT_UP, NULL},
    {ANY, KEY_UP, "Up", ACT_UP, NULL},
    {ANY, KEY_NPAGE, "PgDn", ACT_PGDN, NULL},
    {ANY, CTRL('f'), "C-f", ACT_PGDN, NULL},
    {ANY, KEY_PPAGE, "PgUp", ACT_PGUP, NULL},
    {ANY, CTRL('b'), "C-b", ACT_PGUP, NULL},
    {ANY, 'g', "g", ACT_TOP, NULL},
    {ANY, KEY_HOME, "Home", ACT_TOP, NULL},
    {ANY, 'G', "G", ACT_BOTTOM, NULL},
    {ANY, KEY_END, "End", ACT_BOTTOM, NULL},
    {ANY, 'o', "o", ACT_SORT, NULL},
    {ANY, 'O', "O", ACT_SORT_REV, NULL},
};

const struct tui_binding *tui_keymap(size_t *n)
{
    *n = TDS_ARRAY_LEN(keymap);
    return keymap;
}

enum tui_action tui_keymap_lookup(int pane, int key)
{
    for (size_t i = 0; i < TDS_ARRAY_LEN(keymap); i++)
        if (keymap[i].pane == pane && keymap[i].key == key)
            return keymap[i].action;
    for (size_t i = 0; i < TDS_ARRAY_LEN(keymap); i++)
        if (keymap[i].pane == ANY && keymap[i].key == key)
            return keymap[i].action;
    return ACT_NONE;
}

const char *tui_action_name(enum tui_action a)
{
    return (unsigned)a < ACT_N ? actions[a].name : "?";
}

const char *tui_action_help(enum tui_action a)
{
    return (unsigned)a < ACT_N ? actions[a].help : "";
}

bool tui_action_mutating(enum tui_action a)
{
    return (unsigned)a < ACT_N && actions[a].mutating;
}

static const char *section_name(int pane)
{
    static const char *names[PANE_N] = {"dashboard", "runs", "queue", "dlq", "alerts", "events"};
    return pane < 0 ? "global" : names[pane];
}

void tui_keymap_dump(FILE *out)
{
    for (size_t i = 0; i < TDS_ARRAY_LEN(keymap); i++)
        fprintf(out, "%s\t%s\t%s\t%s\n", section_name(keymap[i].pane), keymap[i].keyname,
                tui_action_name(keymap[i].action), tui_action_help(keymap[i].action));
}
