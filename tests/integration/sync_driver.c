/*
 * sync_driver.c: `tds sync` and `tds reconcile` without the rest of the
 * program, for the sync tests and bench/stock-sync (the same functions the
 * tds binary dispatches to).
 *   tds-sync-driver [--config PATH] sync|reconcile|migrate ARGS...
 */
#include <stdio.h>
#include <string.h>

#include <libpq-fe.h>
#include <stdlib.h>

#include "tds/cli.h"
#include "tds/db.h"
#include "tds/entity.h"
#include "tds/queue.h"
#include "tds/zoho.h"
#include "tds/sync.h"

int main(int argc, char **argv)
{
    struct cli_globals g;
    memset(&g, 0, sizeof g);
    int i = 1;
    if (argc > 2 && strcmp(argv[1], "--config") == 0) {
        g.config_path = argv[2];
        i = 3;
    }
    if (i >= argc) {
        fprintf(stderr, "usage: tds-sync-driver [--config PATH] sync|reconcile ARGS...\n");
        return 2;
    }
    if (strcmp(argv[i], "sync") == 0)
        return cli_sync(&g, argc - i, argv + i);
    if (strcmp(argv[i], "reconcile") == 0)
        return cli_reconcile(&g, argc - i, argv + i);
    if (strcmp(argv[i], "sql") == 0 && i + 2 < argc) {
        char *t = sync_bulk_sql_text(argv[i + 1], argv[i + 2]);
        if (t == NULL)
            return 2;
        printf("%s\n", t);
        free(t);
        return 0;
    }
    if (strcmp(argv[i], "refetch") == 0 && i + 2 < argc) {
        /* the queue item handler of a webhook refresh, on one record */
        struct config_loaded cl;
        if (cli_load_config(&g, &cl) != 0)
            return 2;
        PGconn *c = cli_connect(&cl.cfg, true);
        char *err = NULL;
        struct zoho_client *zc = c ? zoho_client_new(&cl.cfg, NULL, &err) : NULL;
        int rc = 1;
        if (zc) {
            struct zoho_conn *zn = zoho_conn_new(zc, NULL);
            struct queue_item it = {.entity_type = argv[i + 1], .zoho_id = argv[i + 2],
                                    .op = QOP_UPSERT, .payload = "{\"refetch\":true}"};
            rc = sync_refetch_item(c, zn, &it, &err);
            zoho_conn_free(zn);
            zoho_client_free(zc);
        }
        if (err)
            fprintf(stderr, "refetch: %s\n", err);
        free(err);
        PQfinish(c);
        config_loaded_free(&cl);
        printf("%d\n", rc);
        return rc == 0 ? 0 : 1;
    }
    if (strcmp(argv[i], "migrate") == 0) {
        struct config_loaded cl;
        if (cli_load_config(&g, &cl) != 0)
            return 2;
        PGconn *c = cli_connect(&cl.cfg, false);
        char *err = NULL;
        int rc = c && db_migrate(c, NULL, &err) == 0 ? 0 : 1;
        if (err)
            fprintf(stderr, "migrate: %s\n", err);
        free(err);
        PQfinish(c);
        config_loaded_free(&cl);
        return rc;
    }
    fprintf(stderr, "tds-sync-driver: unknown command %s\n", argv[i]);
    return 2;
}
