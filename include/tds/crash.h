/*
 * crash.h: the crash reporter.  On SIGSEGV, SIGBUS, SIGFPE, SIGILL and
 * SIGABRT it writes one line naming the signal, the process and what it was
 * doing, and a backtrace, to stderr (the journal under systemd), with
 * async-signal-safe calls only, then lets the signal take its course (a core
 * where the system keeps them, the exit status of the signal).  A handler
 * that was installed before (AddressSanitizer's) still runs after it.
 */
#ifndef TDS_CRASH_H
#define TDS_CRASH_H

/* Installs the handlers once per process; who ("daemon web-1") names the
 * process in the report, copied.  Safe to call again (updates who). */
void crash_install(const char *who);

#endif
