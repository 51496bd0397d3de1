/*
 * crash.c: a backtrace on a fatal signal (issue 16: a run that crashes its
 * engine must leave a trace in the journal, as the count of crashes in
 * tds.sync_runs leaves one in the database).  Only async-signal-safe calls
 * in the handler: write(2), backtrace_symbols_fd(3) (backtrace(3) is called
 * once at install so that libgcc is loaded before any crash), sigaction(2),
 * raise(3).
 */
#include "tds/crash.h"

#include <execinfo.h>
#include <signal.h>
#include <stdbool.h>
#include <string.h>
#include <unistd.h>

static const int crash_signals[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT};
static struct sigaction crash_old[sizeof crash_signals / sizeof crash_signals[0]];
static char crash_who[128];
static volatile sig_atomic_t crash_installed, crash_active;

static void put(const char *s)
{
    size_t n = strlen(s);
    while (n > 0) {
        ssize_t w = write(STDERR_FILENO, s, n);
        if (w <= 0)
            return;
        s += w;
        n -= (size_t)w;
    }
}

static void put_num(long v)
{
    char b[24];
    int i = (int)sizeof b - 1;
    b[i] = '\0';
    bool neg = v < 0;
    unsigned long u = neg ? 0UL - (unsigned long)v : (unsigned long)v;
    do {
        b[--i] = (char)('0' + u % 10);
        u /= 10;
    } while (u > 0 && i > 1);
    if (neg)
        b[--i] = '-';
    put(b + i);
}

static const char *signame(int sig)
{
    switch (sig) {
    case SIGSEGV: return "SIGSEGV";
    case SIGBUS: return "SIGBUS";
    case SIGFPE: return "SIGFPE";
    case SIGILL: return "SIGILL";
    case SIGABRT: return "SIGABRT";
    default: return "signal";
    }
}

static void on_crash(int sig, siginfo_t *info, void *uctx)
{
    (void)uctx;
    size_t k = 0;
    while (k < sizeof crash_signals / sizeof crash_signals[0] && crash_signals[k] != sig)
        k++;
    if (!crash_active) {
        crash_active = 1;
        put("tds: fatal signal ");
        put(signame(sig));
        put(" in ");
        put(crash_who[0] ? crash_who : "tds");
        put(" (pid ");
        put_num((long)getpid());
        put(info != NULL && info->si_code <= 0 ? ", sent by pid " : ")");
        if (info != NULL && info->si_code <= 0) {
            put_num((long)info->si_pid);
            put(")");
        }
        put("; backtrace:\n");
        void *frames[64];
        int n = backtrace(frames, 64);
        backtrace_symbols_fd(frames, n, STDERR_FILENO);
        put("tds: end of backtrace\n");
    }
    /* Hand the signal on: to the handler before ours, or the default. */
    if (k < sizeof crash_signals / sizeof crash_signals[0])
        sigaction(sig, &crash_old[k], NULL);
    else
        signal(sig, SIG_DFL);
    /* A fault raised by an instruction happens again on return, now to the
     * old handler; a signal that was sent (kill, abort) must be raised. */
    if (info == NULL || info->si_code <= 0 || sig == SIGABRT)
        raise(sig);
}

void crash_install(const char *who)
{
    size_t n = strlen(who);
    if (n >= sizeof crash_who)
        n = sizeof crash_who - 1;
    /* Not atomic with a crash on another thread; it is a name, and short. */
    memcpy(crash_who, who, n);
    crash_who[n] = '\0';
    if (crash_installed)
        return;
    crash_installed = 1;
    void *warm[2];
    (void)backtrace(warm, 2);
    static char altstack[64 * 1024];
    stack_t ss = {.ss_sp = altstack, .ss_size = sizeof altstack, .ss_flags = 0};
    (void)sigaltstack(&ss, NULL);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_crash;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_NODEFER;
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < sizeof crash_signals / sizeof crash_signals[0]; i++)
        sigaction(crash_signals[i], &sa, &crash_old[i]);
}
