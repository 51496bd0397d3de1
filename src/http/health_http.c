/*
 * health_http.c: GET /health, the same verdict as `tds status` and the
 * console's dashboard (health_compute, health_to_json): 200 when healthy or
 * degraded, 503 when down (the database unreachable included).
 */
#include <stdlib.h>

#include "http_internal.h"
#include "tds/health.h"

int http_health(struct http_server *s, char **body)
{
    PGconn *c = http_pool_get(s);
    struct health_report r;
    health_compute(c, s->cfg, &r);
    http_pool_put(s, c);
    cJSON *j = health_to_json(&r);
    char *text = cJSON_PrintUnformatted(j);
    *body = xstrdup(text ? text : "{}");
    cJSON_free(text);
    cJSON_Delete(j);
    int status = r.status == HEALTH_DOWN ? 503 : 200;
    health_report_free(&r);
    return status;
}
