/*
 * migrate.c: versioned schema migrations, embedded at build time
 * (tools/embed_sql.py), each applied in its own transaction and recorded in
 * tds.schema_migrations.  An advisory lock makes concurrent `tds migrate`
 * runs safe: one applies, the others wait and then find nothing to do.
 */
#include <stdio.h>
#include <stdlib.h>

#include "db_internal.h"
#include "tds/db.h"
#include "tds/log.h"

/* Advisory lock key: "tdsmigr" in ASCII, so it is recognisable in pg_locks. */
#define MIGRATE_LOCK_KEY "32761544218077042"

int db_schema_version_known(void)
{
    return db_migrations[db_migrations_count - 1].version;
}

int db_schema_version(PGconn *c, int *version, char **err)
{
    PGresult *r = db_exec(c, "SELECT to_regclass('tds.schema_migrations') IS NOT NULL", 0, NULL, err);
    if (r == NULL)
        return -1;
    bool exists = PQgetvalue(r, 0, 0)[0] == 't';
    PQclear(r);
    if (!exists) {
        *version = 0;
        return 0;
    }
    r = db_exec(c, "SELECT coalesce(max(version), 0) FROM tds.schema_migrations", 0, NULL, err);
    if (r == NULL)
        return -1;
    *version = atoi(PQgetvalue(r, 0, 0));
    PQclear(r);
    return 0;
}

static int apply_one(PGconn *c, const struct db_migration *m, char **err)
{
    if (db_begin(c, err) != 0)
        return -1;
    /* Migration text is fixed SQL compiled into the binary (no data), and
     * it holds several statements, which only the simple protocol runs. */
    PGresult *r = PQexec(c, m->sql);
    if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK) {
        char *line = db_error_line(c);
        *err = xasprintf("migration %04d_%s failed: %s", m->version, m->name, line);
        free(line);
        PQclear(r);
        db_rollback(c);
        return -1;
    }
    PQclear(r);
    char ver[16];
    snprintf(ver, sizeof ver, "%d", m->version);
    const char *params[] = {ver, m->name};
    char *e = NULL;
    if (db_cmd(c, "INSERT INTO tds.schema_migrations (version, name) VALUES ($1, $2)", 2, params,
               &e) != 0 ||
        db_commit(c, &e) != 0) {
        *err = xasprintf("migration %04d_%s: %s", m->version, m->name, e);
        free(e);
        db_rollback(c);
        return -1;
    }
    log_info("applied migration %04d_%s", m->version, m->name);
    return 0;
}

int db_migrate(PGconn *c, int *applied, char **err)
{
    const char *lock[] = {MIGRATE_LOCK_KEY};
    int n = 0, rc = -1, version = 0;
    if (applied)
        *applied = 0;
    if (db_cmd(c, "SELECT pg_advisory_lock($1::bigint)", 1, lock, err) != 0)
        return -1;
    if (db_cmd(c,
               "CREATE SCHEMA IF NOT EXISTS tds", 0, NULL, err) != 0 ||
        db_cmd(c,
               "CREATE TABLE IF NOT EXISTS tds.schema_migrations ("
               " version integer PRIMARY KEY,"
               " name text NOT NULL,"
               " applied_at timestamptz NOT NULL DEFAULT now())",
               0, NULL, err) != 0)
        goto out;
    if (db_schema_version(c, &version, err) != 0)
        goto out;
    if (version > db_schema_version_known()) {
        *err = xasprintf("database schema version %d is newer than this tds knows (%d): "
                         "upgrade tds",
                         version, db_schema_version_known());
        goto out;
    }
    for (int i = 0; i < db_migrations_count; i++) {
        if (db_migrations[i].version <= version)
            continue;
        if (apply_one(c, &db_migrations[i], err) != 0)
            goto out;
        n++;
    }
    rc = 0;
    if (applied)
        *applied = n;
out:;
    char *ignored = NULL;
    if (db_cmd(c, "SELECT pg_advisory_unlock($1::bigint)", 1, lock, &ignored) != 0)
        free(ignored);
    return rc;
}

int db_check_schema(PGconn *c, char **err)
{
    int version;
    if (db_schema_version(c, &version, err) != 0)
        return -1;
    int known = db_schema_version_known();
    if (version == 0) {
        *err = xstrdup("database is not migrated: run `tds migrate` first");
        return -1;
    }
    if (version > known) {
        *err = xasprintf("database schema version %d is newer than this tds knows (%d): "
                         "upgrade tds",
                         version, known);
        return -1;
    }
    if (version < known) {
        *err = xasprintf("database schema version %d is older than this tds (%d): "
                         "run `tds migrate`",
                         version, known);
        return -1;
    }
    return 0;
}
