/*
 * db.h: PostgreSQL connections (libpq) and the schema migrations embedded in
 * the binary at build time.  Everything tds knows lives in PostgreSQL: it is
 * the single source of truth and the only channel between processes.
 */
#ifndef TDS_DB_H
#define TDS_DB_H

#include <libpq-fe.h>
#include <signal.h>
#include <stdbool.h>

#include "tds/config.h"
#include "tds/util.h"

/*
 * Opens a connection from cfg->database (dsn, connect_timeout,
 * application_name; the usual PG* variables fill what the dsn leaves out).
 * Sets the session time zone to UTC.  Returns the connection, or NULL with
 * *err set (caller frees) to a message that names the server and never
 * contains a password, e.g. "database: cannot connect to host=... port=...:
 * Connection refused".
 */
PGconn *db_connect(const struct tds_config *cfg, char **err) TDS_MUST_CHECK;

/*
 * Like db_connect but retries with exponential backoff (0.5 s doubling to
 * 30 s, with jitter), logging each failure once, until it connects or *stop
 * becomes non-zero (then NULL).  stop may be NULL (retry forever).
 */
PGconn *db_connect_retry(const struct tds_config *cfg, volatile sig_atomic_t *stop);

/* True if the connection is usable; if not, tries one PQreset(). */
bool db_ok(PGconn *c);

/* The newest migration this binary carries. */
int db_schema_version_known(void);

/*
 * Reads the schema version recorded in the database (0 when tds was never
 * migrated there).  Returns 0 on success, -1 with *err on failure.
 */
int db_schema_version(PGconn *c, int *version, char **err) TDS_MUST_CHECK;

/*
 * Applies every migration newer than the database's version, each in its own
 * transaction and recorded in tds.schema_migrations, under an advisory lock
 * so that two instances migrating at once end with one schema (the second
 * waits, then finds nothing to do).  *applied (may be NULL) receives the
 * number applied.  Returns 0, or -1 with *err.  Refuses a database whose
 * version is newer than this binary knows.
 */
int db_migrate(PGconn *c, int *applied, char **err) TDS_MUST_CHECK;

/*
 * Checks that the database's schema is exactly the one this binary knows.
 * Returns 0, or -1 with *err: "not migrated: run `tds migrate`" or
 * "database schema version 7 is newer than this tds knows (5): upgrade tds".
 */
int db_check_schema(PGconn *c, char **err) TDS_MUST_CHECK;

/*
 * Helpers over PQexecParams.  All SQL in tds is parameterized; nothing is
 * pasted into a query string.  db_exec returns the result when its status is
 * PGRES_COMMAND_OK or PGRES_TUPLES_OK, else NULL with *err set (caller frees
 * both).  nparams may be 0 (params NULL).
 */
PGresult *db_exec(PGconn *c, const char *sql, int nparams, const char *const *params,
                  char **err) TDS_MUST_CHECK;
/* Runs a statement and discards its result.  0 or -1 with *err. */
int db_cmd(PGconn *c, const char *sql, int nparams, const char *const *params, char **err)
    TDS_MUST_CHECK;
/* BEGIN / COMMIT / ROLLBACK; 0 or -1 with *err (ROLLBACK can't fail visibly). */
int db_begin(PGconn *c, char **err) TDS_MUST_CHECK;
int db_commit(PGconn *c, char **err) TDS_MUST_CHECK;
void db_rollback(PGconn *c);

/* A libpq error message trimmed to one line.  Caller frees. */
char *db_error_line(PGconn *c);

#endif
