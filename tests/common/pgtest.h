/*
 * pgtest.h: helpers for integration tests that need PostgreSQL.  The server
 * is the private cluster started by tests/run (TDS_TEST_PG); each test
 * program creates its own database so suites never see each other's rows.
 */
#ifndef TDS_PGTEST_H
#define TDS_PGTEST_H

#include <libpq-fe.h>

#include "tds/config.h"

/* Exits 77 (meson: skipped) with a message when TDS_TEST_PG is not set. */
void pgtest_require(void);

/*
 * Creates a new empty database named after prefix and the pid, and returns
 * its conninfo (static storage, valid until pgtest_drop).  Aborts the test
 * program on failure.  The database is dropped at exit.
 */
const char *pgtest_create_db(const char *prefix);

/* A connection to the database made by pgtest_create_db; aborts on failure. */
PGconn *pgtest_connect(void);

/* Loads the default configuration (no file) pointed at the test database. */
void pgtest_config(struct config_loaded *cl);

/* Runs SQL without parameters (test setup only) and aborts on error. */
void pgtest_exec(PGconn *c, const char *sql);
/* Returns the first column of the first row as a long long; aborts on error. */
long long pgtest_scalar(PGconn *c, const char *sql);

/* Path of a file in the source tree / build tree (static buffer). */
const char *pgtest_src(const char *rel);
const char *pgtest_build(const char *rel);

#endif
