/*
 * sync_stock.c: the stock sync (run type "stock"): every item listed in
 * pages of 200 with the stock.* filters, merged in bulk, per-location stock
 * fetched for the items whose row changed.  The run config may override
 * the filters: {"with_stock_only":true, "active_only":false,
 * "dry_run":true, "batch_size":N, "all_details":true, "items":[...]}.
 */
#include <stdlib.h>
#include <string.h>

#include "sync_internal.h"
#include "tds/db.h"
#include "tds/log.h"

/* Parses the run config (NULL or "" is {}).  NULL with *err when it is not an object. */
static cJSON *parse_cfg(const char *json, char **err)
{
    cJSON *c = cJSON_Parse(str_empty(json) ? "{}" : json);
    if (!cJSON_IsObject(c)) {
        cJSON_Delete(c);
        *err = xstrdup("the run config is not a JSON object");
        return NULL;
    }
    return c;
}

static void set_expected_from_table(struct sync_job *j, const struct entity_desc *d)
{
    if (j->set_expected == NULL)
        return;
    char *q = xasprintf("SELECT count(*) FROM %s WHERE deleted_at IS NULL", d->table);
    char *err = NULL;
    PGresult *r = db_exec(j->conn, q, 0, NULL, &err);
    free(q);
    if (r && PQntuples(r) == 1) {
        long long n = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
        if (n > 0)
            j->set_expected(j->arg, n);
    }
    PQclear(r);
    free(err);
}

int sync_stock_run(struct sync_job *j, char **err)
{
    cJSON *cfg = parse_cfg(j->config_json, err);
    if (cfg == NULL)
        return -1;
    if (cJSON_GetObjectItemCaseSensitive(cfg, "items") != NULL) {
        cJSON_Delete(cfg);
        return sync_items_run(j, err);
    }
    const struct entity_desc *d = entity_find("items");
    bool active_only = sync_cfg_bool(cfg, "active_only", j->cfg ? j->cfg->stock.active_only : true);
    struct bulk_opts o = {
        .d = d,
        .filter_by = active_only ? "Status.Active" : entity_all_filter(d),
        .with_stock_only = sync_cfg_bool(cfg, "with_stock_only",
                                         j->cfg ? j->cfg->stock.with_stock_only : false),
        .dry_run = sync_cfg_bool(cfg, "dry_run", false),
        .batch_size = (int)sync_cfg_int(cfg, "batch_size", 2000),
        .all_details = sync_cfg_bool(cfg, "all_details", false),
        .no_details = sync_cfg_bool(cfg, "no_details", false),
    };
    cJSON_Delete(cfg);
    if (o.batch_size < 1 || o.batch_size > 100000) {
        *err = xasprintf("batch_size %d is out of range (1..100000)", o.batch_size);
        return -1;
    }
    set_expected_from_table(j, d);
    log_info("run %lld: stock sync (active_only %s, with_stock_only %s%s)", j->run_id,
             active_only ? "yes" : "no", o.with_stock_only ? "yes" : "no",
             o.dry_run ? ", dry run" : "");
    return sync_bulk_run(j, &o, err);
}

int sync_items_run(struct sync_job *j, char **err)
{
    cJSON *cfg = parse_cfg(j->config_json, err);
    if (cfg == NULL)
        return -1;
    const cJSON *arr = cJSON_GetObjectItemCaseSensitive(cfg, "items");
    if (!cJSON_IsArray(arr) || cJSON_GetArraySize(arr) == 0) {
        cJSON_Delete(cfg);
        *err = xstrdup("an items run needs config {\"items\":[\"id\",...]}");
        return -1;
    }
    size_t n = 0, cap = (size_t)cJSON_GetArraySize(arr);
    char **ids = xcalloc(cap, sizeof *ids);
    const cJSON *v;
    int rc = 0;
    cJSON_ArrayForEach(v, arr) {
        const char *s = cJSON_IsString(v) ? v->valuestring : NULL;
        char buf[32];
        if (s == NULL && cJSON_IsNumber(v) && v->valuedouble >= 0) {
            snprintf(buf, sizeof buf, "%.0f", v->valuedouble);
            s = buf;
        }
        if (!str_is_digits(s)) {
            *err = xasprintf("item id %s is not digits", s ? s : "(not a string)");
            rc = -1;
            break;
        }
        bool dup = false;
        for (size_t i = 0; i < n && !dup; i++)
            dup = str_eq(ids[i], s);
        if (!dup)
            ids[n++] = xstrdup(s);
    }
    struct bulk_opts o = {
        .d = entity_find("items"),
        .ids = ids,
        .n_ids = n,
        .dry_run = sync_cfg_bool(cfg, "dry_run", false),
        .batch_size = (int)sync_cfg_int(cfg, "batch_size", 2000),
    };
    cJSON_Delete(cfg);
    if (rc == 0) {
        if (j->set_expected)
            j->set_expected(j->arg, (long long)n);
        log_info("run %lld: %zu specific items", j->run_id, n);
        rc = sync_bulk_run(j, &o, err);
    }
    for (size_t i = 0; i < n; i++)
        free(ids[i]);
    free(ids);
    return rc;
}
