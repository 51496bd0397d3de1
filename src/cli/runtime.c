/*
 * runtime.c: the parts of an engine process, in the order they must start
 * and the reverse order they stop.
 */
#include <stdlib.h>
#include <string.h>

#include "tds/engine.h"
#include "tds/http.h"
#include "tds/log.h"
#include "tds/runtime.h"
#include "tds/sync.h"

struct runtime {
    const struct tds_config *cfg;
    struct zoho_client *zc;
    struct engine *engine;
    struct http_server *http;
    struct http_context http_ctx;
    struct zoho_conn *check_conn;
    char *instance;
};

struct runtime *runtime_start(const struct tds_config *cfg, const char *instance,
                              const char *mode, char **err)
{
    struct runtime *rt = xcalloc(1, sizeof *rt);
    rt->cfg = cfg;
    /* One name, however it is given, for the engine and the Zoho client. */
    rt->instance = engine_instance_name(cfg, instance);
    instance = rt->instance;
    struct zoho_client_opts zopts = {.instance = instance};
    rt->zc = zoho_client_new(cfg, &zopts, err);
    if (rt->zc == NULL)
        goto fail;
    sync_register_handlers(cfg, rt->zc);
    rt->engine = engine_new(cfg, instance, mode, err);
    if (rt->engine == NULL || engine_start(rt->engine, err) != 0)
        goto fail;
    if (!str_empty(cfg->webhooks.listen)) {
        rt->http_ctx.engine = rt->engine;
        rt->http_ctx.zoho = rt->zc;
        rt->http_ctx.instance = instance;
        rt->http = http_server_start(cfg, &rt->http_ctx, err);
        if (rt->http == NULL)
            goto fail;
        log_info("listening for webhooks, /health and /metrics on %s", cfg->webhooks.listen);
    }
    return rt;
fail:
    runtime_free(rt);
    return NULL;
}

int runtime_check_zoho(struct runtime *rt, bool *fatal, char **err)
{
    if (fatal)
        *fatal = false;
    if (rt->check_conn == NULL)
        rt->check_conn = zoho_conn_new(rt->zc, NULL);
    struct zoho_error e = {0};
    if (zoho_token_ensure(rt->check_conn, &e) == 0)
        return 0;
    *err = zoho_error_format(&e);
    if (fatal)
        *fatal = e.kind == ZOHO_ERR_AUTH;
    zoho_error_clear(&e);
    return -1;
}

void runtime_request_stop(struct runtime *rt)
{
    if (rt->http)
        http_server_stop(rt->http);
    rt->http = NULL;
    if (rt->engine)
        engine_request_stop(rt->engine);
}

int runtime_join(struct runtime *rt, int timeout_ms)
{
    return rt->engine ? engine_join(rt->engine, timeout_ms) : 0;
}

void runtime_free(struct runtime *rt)
{
    if (rt == NULL)
        return;
    if (rt->http)
        http_server_stop(rt->http);
    engine_free(rt->engine);
    if (rt->check_conn)
        zoho_conn_free(rt->check_conn);
    zoho_client_free(rt->zc);
    free(rt->instance);
    free(rt);
}

void runtime_reload(struct runtime *rt, const struct tds_config *newcfg)
{
    if (rt->engine)
        engine_reload(rt->engine, newcfg);
    if (rt->zc)
        zoho_client_reload(rt->zc, newcfg);
}

struct engine *runtime_engine(struct runtime *rt)
{
    return rt->engine;
}

struct zoho_client *runtime_zoho(struct runtime *rt)
{
    return rt->zc;
}
