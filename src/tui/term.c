/*
 * term.c: what the console needs from its terminal outside curses.  Before
 * curses starts, a check that the terminal can be driven at all: a stdin or
 * stdout that is not a terminal, TERM unset, a TERM terminfo cannot
 * describe, and a terminal that cannot move the cursor (TERM=dumb, a
 * hardcopy or generic type) get one clear message instead of garbage.  And
 * a terminal reset that is safe inside a signal handler for the fatal
 * signals (SIGSEGV...): the bytes are looked up while curses runs, the
 * handler only write()s them and tcsetattr()s the saved modes, so no curses
 * function ever runs in a signal handler (tests/tui/tmux_console.py checks
 * the handlers by reading app.c and this file).
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "tui_internal.h"

#include <term.h> /* last: its capability macros (lines, columns...) */

static struct termios saved_tio;
static volatile sig_atomic_t have_tio;
static char reset_seq[256];
static volatile sig_atomic_t reset_len;

int tui_term_check(char *why, size_t n)
{
    if (!isatty(STDIN_FILENO) || !isatty(STDOUT_FILENO)) {
        snprintf(why, n, "the console needs a terminal on stdin and stdout "
                         "(use a subcommand such as `tds status`, or --daemon)");
        return -1;
    }
    const char *term = getenv("TERM");
    if (str_empty(term)) {
        snprintf(why, n, "TERM is not set: the console cannot tell what the terminal can do "
                         "(set TERM, e.g. TERM=xterm-256color, or use a subcommand)");
        return -1;
    }
    int err = 0;
    if (setupterm(NULL, STDOUT_FILENO, &err) != OK) {
        if (err == -1)
            snprintf(why, n, "no terminfo database found to describe TERM=%.40s "
                             "(install ncurses-base, or use a subcommand)", term);
        else
            snprintf(why, n, "TERM=%.40s is not a terminal type terminfo knows "
                             "(set TERM to your terminal's type, e.g. TERM=xterm-256color, "
                             "or use a subcommand)", term);
        return -1;
    }
    const char *cup = tigetstr("cup");
    bool dumb = cup == NULL || cup == (const char *)-1 || tigetflag("hc") > 0 ||
                tigetflag("gn") > 0;
    del_curterm(cur_term);
    if (dumb) {
        snprintf(why, n, "TERM=%.40s cannot move the cursor, and the console needs a terminal "
                         "that can (set TERM, e.g. TERM=xterm-256color, or use a subcommand "
                         "such as `tds status`)", term);
        return -1;
    }
    return 0;
}

void tui_term_save(void)
{
    if (tcgetattr(STDIN_FILENO, &saved_tio) == 0)
        have_tio = 1;
}

/* Appends the terminfo capability cap to the reset bytes, if the terminal has it. */
static void add_cap(const char *cap, size_t *len)
{
    const char *s = tigetstr(cap);
    if (s == NULL || s == (const char *)-1)
        return;
    size_t l = strlen(s);
    if (*len + l < sizeof reset_seq) {
        memcpy(reset_seq + *len, s, l);
        *len += l;
    }
}

void tui_term_prepare_reset(void)
{
    size_t len = 0;
    add_cap("sgr0", &len);  /* attributes off */
    add_cap("cnorm", &len); /* cursor visible */
    add_cap("rmkx", &len);  /* keypad back to normal */
    add_cap("rmcup", &len); /* leave the alternate screen */
    if (len + 2 < sizeof reset_seq) {
        memcpy(reset_seq + len, "\r\n", 2);
        len += 2;
    }
    reset_len = (sig_atomic_t)len;
}

void tui_term_reset_async(void)
{
    size_t len = (size_t)reset_len;
    if (len > 0) {
        ssize_t rc = write(STDOUT_FILENO, reset_seq, len);
        (void)rc;
    }
    if (have_tio)
        tcsetattr(STDIN_FILENO, TCSANOW, &saved_tio);
}
