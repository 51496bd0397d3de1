/*
 * db_internal.h: what the db module shares between its own files.
 */
#ifndef TDS_DB_INTERNAL_H
#define TDS_DB_INTERNAL_H

struct db_migration {
    int version;
    const char *name;
    const char *sql;
};

/* Generated at build time from src/db/migrations/NNNN_name.sql. */
extern const struct db_migration db_migrations[];
extern const int db_migrations_count;

#endif
