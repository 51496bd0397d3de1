/*
 * pgtest.c: per-test databases on the private test cluster.
 */
#include "pgtest.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tds/util.h"

static char db_name[64];
static char db_dsn[512];

void pgtest_require(void)
{
    if (getenv("TDS_TEST_PG") == NULL) {
        fprintf(stderr, "TDS_TEST_PG is not set: run integration tests through tests/run\n");
        exit(77);
    }
}

static PGconn *admin_connect(void)
{
    PGconn *c = PQconnectdb(getenv("TDS_TEST_PG"));
    if (PQstatus(c) != CONNECTION_OK) {
        fprintf(stderr, "pgtest: cannot connect to the test cluster: %s", PQerrorMessage(c));
        exit(1);
    }
    return c;
}

static void drop_db(void)
{
    if (db_name[0] == '\0')
        return;
    PGconn *c = admin_connect();
    char *id = PQescapeIdentifier(c, db_name, strlen(db_name));
    char *sql = xasprintf("DROP DATABASE IF EXISTS %s WITH (FORCE)", id);
    PQclear(PQexec(c, sql));
    free(sql);
    PQfreemem(id);
    PQfinish(c);
    db_name[0] = '\0';
}

const char *pgtest_create_db(const char *prefix)
{
    pgtest_require();
    snprintf(db_name, sizeof db_name, "t_%s_%ld", prefix, (long)getpid());
    PGconn *c = admin_connect();
    char *id = PQescapeIdentifier(c, db_name, strlen(db_name));
    char *sql = xasprintf("CREATE DATABASE %s", id);
    PGresult *r = PQexec(c, sql);
    if (PQresultStatus(r) != PGRES_COMMAND_OK) {
        fprintf(stderr, "pgtest: %s: %s", sql, PQerrorMessage(c));
        exit(1);
    }
    PQclear(r);
    free(sql);
    PQfreemem(id);
    PQfinish(c);
    atexit(drop_db);
    /* Same server, our database: a later dbname= overrides the earlier one. */
    snprintf(db_dsn, sizeof db_dsn, "%s dbname=%s", getenv("TDS_TEST_PG"), db_name);
    return db_dsn;
}

PGconn *pgtest_connect(void)
{
    PGconn *c = PQconnectdb(db_dsn);
    if (PQstatus(c) != CONNECTION_OK) {
        fprintf(stderr, "pgtest: cannot connect to %s: %s", db_name, PQerrorMessage(c));
        exit(1);
    }
    PQclear(PQexec(c, "SET client_min_messages = warning"));
    return c;
}

void pgtest_config(struct config_loaded *cl)
{
    struct config_errors errs = {0};
    memset(cl, 0, sizeof *cl);
    if (config_load(NULL, cl, &errs) != 0) {
        for (size_t i = 0; i < errs.n; i++)
            fprintf(stderr, "pgtest: config: %s\n", errs.msg[i]);
        exit(1);
    }
    config_errors_free(&errs);
    free(cl->cfg.database.dsn);
    cl->cfg.database.dsn = xstrdup(db_dsn);
}

void pgtest_exec(PGconn *c, const char *sql)
{
    PGresult *r = PQexec(c, sql);
    ExecStatusType st = PQresultStatus(r);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        fprintf(stderr, "pgtest: %s: %s", sql, PQerrorMessage(c));
        exit(1);
    }
    PQclear(r);
}

long long pgtest_scalar(PGconn *c, const char *sql)
{
    PGresult *r = PQexec(c, sql);
    if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) < 1) {
        fprintf(stderr, "pgtest: %s: %s", sql, PQerrorMessage(c));
        exit(1);
    }
    long long v = PQgetisnull(r, 0, 0) ? 0 : strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    return v;
}

const char *pgtest_src(const char *rel)
{
    static char buf[1024];
    const char *root = getenv("TDS_SOURCE_ROOT");
    snprintf(buf, sizeof buf, "%s/%s", root ? root : ".", rel);
    return buf;
}

const char *pgtest_build(const char *rel)
{
    static char buf[1024];
    const char *root = getenv("TDS_BUILD_ROOT");
    snprintf(buf, sizeof buf, "%s/%s", root ? root : ".", rel);
    return buf;
}
