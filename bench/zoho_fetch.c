/*
 * zoho_fetch.c: the driver of bench/zoho-fetch.  Two modes:
 *
 *   zoho_fetch fetch --port P
 *       lists every item of the simulator (full listing, 200 per page) with
 *       client-side limits off and prints pages, items, seconds, pages/s,
 *       items/s and peak RSS.
 *   zoho_fetch rate --port P --seconds S --per-minute L --instance NAME
 *                   [--threads T] [--migrate]
 *       calls GET /items?per_page=1 as fast as the limiter lets it for S
 *       seconds, coordinating with every other engine on the same
 *       database (TDS_DATABASE_URL), and prints requests, 429s and rate.
 *
 * Output is one "key=value ..." line for the script to read.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "tds/config.h"
#include "tds/db.h"
#include "tds/entity.h"
#include "tds/log.h"
#include "tds/zoho.h"

static struct config_loaded cl;
static int seconds = 120;
static atomic_bool stop_flag;

struct worker {
    struct zoho_client *zc;
    long long ok, failed;
};

static void *rate_worker(void *arg)
{
    struct worker *w = arg;
    struct zoho_conn *c = zoho_conn_new(w->zc, &stop_flag);
    while (!atomic_load(&stop_flag)) {
        cJSON *doc = NULL;
        struct zoho_error e = {0};
        if (zoho_get_json(c, ZOHO_INVENTORY, "/items", "per_page=1", 1, &doc, &e) == 0) {
            w->ok++;
        } else if (e.kind != ZOHO_ERR_CANCELLED) {
            char *s = zoho_error_format(&e);
            fprintf(stderr, "zoho_fetch: %s\n", s);
            free(s);
            w->failed++;
        }
        cJSON_Delete(doc);
        zoho_error_clear(&e);
    }
    zoho_conn_free(c);
    return NULL;
}

static void usage(void)
{
    fprintf(stderr, "usage: zoho_fetch fetch|rate --port P [--seconds S] [--per-minute L]"
                    " [--instance NAME] [--threads T] [--migrate]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    if (argc < 2)
        usage();
    const char *mode = argv[1];
    int port = 0, per_minute = 100, threads = 1;
    bool migrate = false;
    const char *instance = "bench";
    for (int i = 2; i < argc; i++) {
        if (!strcmp(argv[i], "--port") && i + 1 < argc)
            port = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--seconds") && i + 1 < argc)
            seconds = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--per-minute") && i + 1 < argc)
            per_minute = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--instance") && i + 1 < argc)
            instance = argv[++i];
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc)
            threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--migrate"))
            migrate = true;
        else
            usage();
    }
    if (port <= 0 || threads < 1 || threads > 64)
        usage();
    struct config_errors errs = {0};
    if (config_load(NULL, &cl, &errs) != 0) {
        for (size_t i = 0; i < errs.n; i++)
            fprintf(stderr, "zoho_fetch: %s\n", errs.msg[i]);
        return 1;
    }
#define SET(f, v) (free(cl.cfg.f), cl.cfg.f = (v))
    SET(zoho.client_id, xstrdup("sim-client-id"));
    SET(zoho.client_secret, xstrdup("sim-client-secret"));
    SET(zoho.refresh_token, xstrdup("sim-refresh-token"));
    SET(zoho.organization_id, xstrdup("60000000001"));
    SET(zoho.accounts_url, xasprintf("http://127.0.0.1:%d", port));
    SET(zoho.books_url, xasprintf("http://127.0.0.1:%d/books/v3", port));
    SET(zoho.inventory_url, xasprintf("http://127.0.0.1:%d/inventory/v1", port));
    cl.cfg.zoho.rate_limit.per_minute = per_minute;
    cl.cfg.zoho.rate_limit.per_day = 10000000;
    cl.cfg.zoho.rate_limit.concurrency = 10;
    log_set_level(TDS_LOG_WARN);

    char *err = NULL;
    if (!strcmp(mode, "fetch")) {
        struct zoho_client_opts o = {.no_db = true, .unlimited = true, .instance = instance};
        struct zoho_client *zc = zoho_client_new(&cl.cfg, &o, &err);
        if (zc == NULL) {
            fprintf(stderr, "zoho_fetch: %s\n", err);
            return 1;
        }
        struct zoho_conn *c = zoho_conn_new(zc, NULL);
        struct zoho_error e = {0};
        if (zoho_token_ensure(c, &e) != 0) {
            fprintf(stderr, "zoho_fetch: %s\n", e.message);
            return 1;
        }
        struct zoho_pager *p = zoho_pager_new(c, entity_find("items"), NULL);
        long long t0 = time_mono_ms(), items = 0;
        cJSON *recs;
        int rc;
        while ((rc = zoho_pager_next(p, &recs, NULL, &e)) == 1) {
            items += cJSON_GetArraySize(recs);
            cJSON_Delete(recs);
        }
        double s = (double)(time_mono_ms() - t0) / 1000.0;
        if (rc < 0) {
            char *m = zoho_error_format(&e);
            fprintf(stderr, "zoho_fetch: %s\n", m);
            return 1;
        }
        struct rusage ru;
        getrusage(RUSAGE_SELF, &ru);
        printf("pages=%lld items=%lld seconds=%.3f pages_per_s=%.0f items_per_s=%.0f "
               "peak_rss_kb=%ld api_calls=%lld\n",
               zoho_pager_pages(p), items, s, (double)zoho_pager_pages(p) / s,
               (double)items / s, ru.ru_maxrss, zoho_conn_calls(c));
        zoho_pager_free(p);
        zoho_conn_free(c);
        zoho_client_free(zc);
    } else if (!strcmp(mode, "rate")) {
        if (migrate) {
            PGconn *db = db_connect(&cl.cfg, &err);
            if (db == NULL || db_migrate(db, NULL, &err) != 0) {
                fprintf(stderr, "zoho_fetch: %s\n", err);
                return 1;
            }
            PQfinish(db);
            config_loaded_free(&cl);
            return 0;
        }
        struct zoho_client_opts o = {.instance = instance};
        struct zoho_client *zc = zoho_client_new(&cl.cfg, &o, &err);
        if (zc == NULL) {
            fprintf(stderr, "zoho_fetch: %s\n", err);
            return 1;
        }
        struct worker w[64];
        pthread_t th[64];
        long long t0 = time_mono_ms();
        for (int i = 0; i < threads; i++) {
            w[i] = (struct worker){zc, 0, 0};
            pthread_create(&th[i], NULL, rate_worker, &w[i]);
        }
        while (time_mono_ms() - t0 < seconds * 1000LL)
            usleep(20000);
        atomic_store(&stop_flag, true);
        long long ok = 0, failed = 0;
        for (int i = 0; i < threads; i++) {
            pthread_join(th[i], NULL);
            ok += w[i].ok;
            failed += w[i].failed;
        }
        double s = (double)(time_mono_ms() - t0) / 1000.0;
        struct zoho_client_stats st;
        zoho_client_stats(zc, &st);
        printf("instance=%s requests=%lld ok=%lld failed=%lld status_429=%lld seconds=%.1f "
               "per_minute=%.1f\n",
               instance, st.requests, ok, failed, st.status_429, s,
               (double)st.requests * 60.0 / s);
        zoho_client_free(zc);
    } else {
        usage();
    }
    config_loaded_free(&cl);
    return 0;
}
