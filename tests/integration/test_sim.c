/*
 * test_sim.c: tds-zoho-sim against its contract (src/sim/README.md and
 * shared/zoho-api.md): OAuth, auth and organization checks, paging, filters,
 * changed-since listing, details, images, the three rate limits, every fault
 * kind, the control endpoint, determinism and webhooks.  Each test starts its
 * own simulator on port 0 and the fixture stops it, even when a test fails;
 * a simulator also dies with the test process (PR_SET_PDEATHSIG).  Needs no
 * PostgreSQL.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <microhttpd.h>
#include <pthread.h>

#include "tds/sha256.h"
#include "tds/util.h"

#define ORG "60000000001"
#define MAX_SIMS 4

struct sim {
    pid_t pid;
    int port;
    char base[64];
};

static struct sim sims[MAX_SIMS];
static int nsims;

/* ---- starting and stopping simulators ---- */

static const char *sim_path(void)
{
    static char path[1024];
    const char *root = getenv("TDS_BUILD_ROOT");
    snprintf(path, sizeof(path), "%s/src/sim/tds-zoho-sim", root ? root : "build");
    return path;
}

/* Starts a simulator with the given extra arguments (NULL-terminated). */
static struct sim *sim_start(const char *first, ...)
{
    assert_true(nsims < MAX_SIMS);
    char portfile[64];
    snprintf(portfile, sizeof(portfile), "/tmp/test_sim.%d.%d.port", (int)getpid(), nsims);
    unlink(portfile);
    const char *argv[64];
    int argc = 0;
    argv[argc++] = sim_path();
    argv[argc++] = "--listen";
    argv[argc++] = "127.0.0.1:0";
    argv[argc++] = "--port-file";
    argv[argc++] = portfile;
    argv[argc++] = "--quiet";
    va_list ap;
    va_start(ap, first);
    for (const char *a = first; a && argc < 62; a = va_arg(ap, const char *))
        argv[argc++] = a;
    va_end(ap);
    argv[argc] = NULL;

    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        int devnull = open("/dev/null", O_WRONLY);
        dup2(devnull, 1);
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    struct sim *s = &sims[nsims++];
    memset(s, 0, sizeof(*s));
    s->pid = pid;
    for (int i = 0; i < 300 && s->port == 0; i++) {
        FILE *f = fopen(portfile, "r");
        if (f) {
            if (fscanf(f, "%d", &s->port) != 1)
                s->port = 0;
            fclose(f);
        }
        if (!s->port)
            usleep(50000);
    }
    unlink(portfile);
    assert_true(s->port > 0);
    snprintf(s->base, sizeof(s->base), "http://127.0.0.1:%d", s->port);
    return s;
}

/* Stops a simulator with SIGTERM; returns its exit status (or -1 if it had to be killed). */
static int sim_stop(struct sim *s)
{
    if (s->pid <= 0)
        return 0;
    kill(s->pid, SIGTERM);
    int status = 0;
    for (int i = 0; i < 100; i++) {
        if (waitpid(s->pid, &status, WNOHANG) == s->pid) {
            s->pid = 0;
            return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
        }
        usleep(50000);
    }
    kill(s->pid, SIGKILL);
    waitpid(s->pid, &status, 0);
    s->pid = 0;
    return -1;
}

/* Stops every simulator the test started; a dirty exit (a sanitizer report) fails the test. */
static int teardown(void **state)
{
    (void)state;
    int rc = 0;
    for (int i = 0; i < nsims; i++)
        if (sim_stop(&sims[i]) != 0) {
            fprintf(stderr, "test_sim: a simulator did not exit cleanly\n");
            rc = -1;
        }
    nsims = 0;
    return rc;
}

static void stop_all_at_exit(void)
{
    for (int i = 0; i < nsims; i++)
        if (sims[i].pid > 0)
            kill(sims[i].pid, SIGKILL);
}

/* ---- HTTP ---- */

struct resp {
    CURLcode rc;
    long status;
    struct strbuf body;
    struct strbuf hdrs;
    char ctype[128];
    long long ms;
};

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
    strbuf_append(ud, p, size * n);
    return size * n;
}

static void resp_free(struct resp *r)
{
    strbuf_free(&r->body);
    strbuf_free(&r->hdrs);
    memset(r, 0, sizeof(*r));
}

static void http(struct resp *r, const char *method, const char *url, const char *token,
                 const char *body, long timeout_ms)
{
    memset(r, 0, sizeof(*r));
    CURL *c = curl_easy_init();
    struct curl_slist *h = NULL;
    char auth[256];
    if (token) {
        snprintf(auth, sizeof(auth), "Authorization: Zoho-oauthtoken %s", token);
        h = curl_slist_append(h, auth);
    }
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    if (body) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        if (body[0] == '{' || body[0] == '[')
            h = curl_slist_append(h, "Content-Type: application/json");
    }
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &r->body);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &r->hdrs);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms > 0 ? timeout_ms : 20000L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    long long t0 = time_mono_ms();
    r->rc = curl_easy_perform(c);
    r->ms = time_mono_ms() - t0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
    char *ct = NULL;
    curl_easy_getinfo(c, CURLINFO_CONTENT_TYPE, &ct);
    if (ct)
        snprintf(r->ctype, sizeof(r->ctype), "%s", ct);
    if (!r->body.buf)
        strbuf_puts(&r->body, "");
    if (!r->hdrs.buf)
        strbuf_puts(&r->hdrs, "");
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
}

/* The value of response header name, copied into out; false if absent. */
static bool header(const struct resp *r, const char *name, char *out, size_t size)
{
    size_t n = strlen(name);
    for (const char *p = r->hdrs.buf; p && *p;) {
        const char *eol = strstr(p, "\r\n");
        if (!eol)
            break;
        if (strncasecmp(p, name, n) == 0 && p[n] == ':') {
            const char *v = p + n + 1;
            while (*v == ' ')
                v++;
            snprintf(out, size, "%.*s", (int)(eol - v), v);
            return true;
        }
        p = eol + 2;
    }
    return false;
}

static cJSON *json_of(const struct resp *r)
{
    cJSON *j = cJSON_ParseWithLength(r->body.buf, r->body.len);
    if (!j)
        fail_msg("not JSON (HTTP %ld): %.300s", r->status, r->body.buf);
    return j;
}

static long jnum(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    assert_non_null(v);
    return (long)cJSON_GetNumberValue(v);
}

static const char *jstr(const cJSON *o, const char *k)
{
    const char *s = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, k));
    if (!s)
        fail_msg("no string field %s", k);
    return s;
}

static char *token_of(struct sim *s)
{
    char url[256];
    snprintf(url, sizeof(url), "%s/oauth/v2/token", s->base);
    struct resp r;
    http(&r, "POST", url, NULL,
         "client_id=sim-client-id&client_secret=sim-client-secret&grant_type=refresh_token&"
         "refresh_token=sim-refresh-token",
         0);
    assert_int_equal(r.status, 200);
    cJSON *j = json_of(&r);
    char *t = xstrdup(jstr(j, "access_token"));
    cJSON_Delete(j);
    resp_free(&r);
    return t;
}

/* GET base+path (path carries its own query, without organization_id unless org is NULL). */
static void api(struct resp *r, struct sim *s, const char *token, const char *fmt, ...)
{
    char path[4096], url[4200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(path, sizeof(path), fmt, ap);
    va_end(ap);
    snprintf(url, sizeof(url), "%s%s%sorganization_id=" ORG, s->base, path,
             strchr(path, '?') ? "&" : "?");
    http(r, "GET", url, token, NULL, 0);
}

static void control(struct resp *r, struct sim *s, const char *method, const char *path,
                    const char *body)
{
    char url[512];
    snprintf(url, sizeof(url), "%s/_sim/%s", s->base, path);
    http(r, method, url, NULL, body, 0);
}

static void expect_error(const struct resp *r, long status, long code)
{
    if (r->status != status)
        fail_msg("expected HTTP %ld, got %ld: %.300s", status, r->status, r->body.buf);
    cJSON *j = json_of(r);
    assert_int_equal(jnum(j, "code"), code);
    assert_non_null(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "message")));
    cJSON_Delete(j);
}

/* Reads /_sim/truth/ENTITY as an array of parsed records. */
static cJSON *truth(struct sim *s, const char *entity)
{
    char path[128];
    snprintf(path, sizeof(path), "truth/%s", entity);
    struct resp r;
    control(&r, s, "GET", path, NULL);
    assert_int_equal(r.status, 200);
    cJSON *arr = cJSON_CreateArray();
    char *save = NULL;
    for (char *line = strtok_r(r.body.buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        cJSON *o = cJSON_Parse(line);
        assert_non_null(o);
        cJSON_AddItemToArray(arr, o);
    }
    resp_free(&r);
    return arr;
}

/* ---- OAuth ---- */

static void test_token_grant(void **state)
{
    (void)state;
    struct sim *s = sim_start(NULL);
    char url[256];
    snprintf(url, sizeof(url), "%s/oauth/v2/token", s->base);
    struct resp r;
    http(&r, "POST", url, NULL,
         "client_id=sim-client-id&client_secret=sim-client-secret&grant_type=refresh_token&"
         "refresh_token=sim-refresh-token",
         0);
    assert_int_equal(r.status, 200);
    cJSON *j = json_of(&r);
    assert_true(strlen(jstr(j, "access_token")) > 20);
    assert_int_equal(jnum(j, "expires_in"), 3600);
    assert_string_equal(jstr(j, "api_domain"), s->base);
    assert_string_equal(jstr(j, "token_type"), "Bearer");
    cJSON_Delete(j);
    resp_free(&r);

    /* Query parameters, as Zoho documents them. */
    snprintf(url, sizeof(url),
             "%s/oauth/v2/token?client_id=sim-client-id&client_secret=sim-client-secret&"
             "grant_type=refresh_token&refresh_token=sim-refresh-token",
             s->base);
    http(&r, "POST", url, NULL, "", 0);
    j = json_of(&r);
    assert_non_null(cJSON_GetObjectItemCaseSensitive(j, "access_token"));
    cJSON_Delete(j);
    resp_free(&r);

    /* Failures answer HTTP 200 with an error field. */
    snprintf(url, sizeof(url), "%s/oauth/v2/token", s->base);
    http(&r, "POST", url, NULL,
         "client_id=sim-client-id&client_secret=sim-client-secret&grant_type=refresh_token&"
         "refresh_token=wrong",
         0);
    assert_int_equal(r.status, 200);
    j = json_of(&r);
    assert_string_equal(jstr(j, "error"), "invalid_code");
    cJSON_Delete(j);
    resp_free(&r);
    http(&r, "POST", url, NULL,
         "client_id=sim-client-id&client_secret=nope&grant_type=refresh_token&"
         "refresh_token=sim-refresh-token",
         0);
    assert_int_equal(r.status, 200);
    j = json_of(&r);
    assert_string_equal(jstr(j, "error"), "invalid_client");
    cJSON_Delete(j);
    resp_free(&r);
    /* A clean stop on SIGTERM. */
    assert_int_equal(sim_stop(s), 0);
}

static void test_mint_limit(void **state)
{
    (void)state;
    struct sim *s = sim_start("--mint-limit", "3/600", NULL);
    for (int i = 0; i < 3; i++)
        free(token_of(s));
    char url[256];
    snprintf(url, sizeof(url), "%s/oauth/v2/token", s->base);
    struct resp r;
    http(&r, "POST", url, NULL,
         "client_id=sim-client-id&client_secret=sim-client-secret&grant_type=refresh_token&"
         "refresh_token=sim-refresh-token",
         0);
    assert_int_equal(r.status, 200);
    cJSON *j = json_of(&r);
    assert_string_equal(jstr(j, "error"), "Access Denied");
    assert_non_null(strstr(jstr(j, "error_description"), "too many requests"));
    cJSON_Delete(j);
    resp_free(&r);
    control(&r, s, "GET", "counters", NULL);
    j = json_of(&r);
    assert_int_equal(jnum(j, "tokens_minted"), 3);
    cJSON_Delete(j);
    resp_free(&r);
}

static void test_auth_and_org(void **state)
{
    (void)state;
    struct sim *s = sim_start("--token-ttl", "1", NULL);
    char *t = token_of(s);
    struct resp r;
    api(&r, s, t, "/inventory/v1/items?per_page=1");
    assert_int_equal(r.status, 200);
    resp_free(&r);
    api(&r, s, NULL, "/inventory/v1/items");
    expect_error(&r, 401, 57);
    resp_free(&r);
    api(&r, s, "1000.not-a-token", "/books/v3/items");
    expect_error(&r, 401, 57);
    resp_free(&r);

    char url[256];
    snprintf(url, sizeof(url), "%s/inventory/v1/items?organization_id=123", s->base);
    http(&r, "GET", url, t, NULL, 0);
    expect_error(&r, 400, 6041);
    cJSON *j = json_of(&r);
    assert_non_null(strstr(jstr(j, "message"), "CompanyID/CompanyName:123"));
    cJSON_Delete(j);
    resp_free(&r);
    snprintf(url, sizeof(url), "%s/inventory/v1/items", s->base);
    http(&r, "GET", url, t, NULL, 0);
    expect_error(&r, 400, 2);
    resp_free(&r);

    /* Unknown path, wrong method. */
    api(&r, s, t, "/inventory/v1/nothing");
    expect_error(&r, 404, 5);
    resp_free(&r);
    snprintf(url, sizeof(url), "%s/inventory/v1/items?organization_id=" ORG, s->base);
    http(&r, "POST", url, t, "{}", 0);
    assert_int_equal(r.status, 405);
    resp_free(&r);

    /* The token expires after its TTL. */
    usleep(1200 * 1000);
    api(&r, s, t, "/inventory/v1/items?per_page=1");
    expect_error(&r, 401, 57);
    resp_free(&r);
    free(t);
}

/* ---- listing ---- */

static void test_paging(void **state)
{
    (void)state;
    struct sim *s = sim_start("--items", "450", "--no-limits", NULL);
    char *t = token_of(s);
    int total = 0, pages = 0;
    cJSON *seen = cJSON_CreateObject();
    for (int page = 1; page <= 3; page++) {
        struct resp r;
        api(&r, s, t, "/inventory/v1/items?page=%d&per_page=200", page);
        assert_int_equal(r.status, 200);
        assert_string_equal(r.ctype, "application/json;charset=UTF-8");
        cJSON *j = json_of(&r);
        assert_int_equal(jnum(j, "code"), 0);
        assert_string_equal(jstr(j, "message"), "success");
        cJSON *items = cJSON_GetObjectItemCaseSensitive(j, "items");
        cJSON *pc = cJSON_GetObjectItemCaseSensitive(j, "page_context");
        assert_int_equal(jnum(pc, "page"), page);
        assert_int_equal(jnum(pc, "per_page"), 200);
        assert_true(cJSON_IsBool(cJSON_GetObjectItemCaseSensitive(pc, "has_more_page")));
        assert_int_equal(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(pc, "has_more_page")),
                         page < 3);
        assert_string_equal(jstr(pc, "report_name"), "Items");
        assert_string_equal(jstr(pc, "applied_filter"), "Status.All");
        assert_true(cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(pc, "custom_fields")));
        assert_non_null(cJSON_GetObjectItemCaseSensitive(pc, "sort_column"));
        assert_string_equal(jstr(pc, "sort_order"), "A");
        cJSON *it;
        cJSON_ArrayForEach(it, items)
        {
            const char *id = jstr(it, "item_id");
            assert_true(strlen(id) >= 16);
            assert_null(cJSON_GetObjectItemCaseSensitive(seen, id));
            cJSON_AddTrueToObject(seen, id);
            /* Lists carry totals but never per-location stock. */
            assert_null(cJSON_GetObjectItemCaseSensitive(it, "locations"));
            assert_null(cJSON_GetObjectItemCaseSensitive(it, "warehouses"));
            assert_true(cJSON_GetArraySize(it) >= 70);
            cJSON *f;
            cJSON_ArrayForEach(f, it) assert_false(cJSON_IsNull(f));
            total++;
        }
        pages++;
        assert_int_equal(cJSON_GetArraySize(items), page < 3 ? 200 : 50);
        cJSON_Delete(j);
        resp_free(&r);
    }
    assert_int_equal(total, 450);
    assert_int_equal(pages, 3);
    cJSON_Delete(seen);

    /* per_page above 200 is served as 200; a page past the end is empty. */
    struct resp r;
    api(&r, s, t, "/books/v3/items?per_page=1000");
    cJSON *j = json_of(&r);
    assert_int_equal(jnum(cJSON_GetObjectItemCaseSensitive(j, "page_context"), "per_page"), 200);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(j, "items")), 200);
    cJSON_Delete(j);
    resp_free(&r);
    api(&r, s, t, "/inventory/v1/items?page=9");
    j = json_of(&r);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(j, "items")), 0);
    assert_false(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(j, "page_context"), "has_more_page")));
    cJSON_Delete(j);
    resp_free(&r);

    /* Every other entity lists under both products with its id field. */
    static const char *const lists[][3] = {
        {"/books/v3/contacts", "contacts", "contact_id"},
        {"/books/v3/invoices", "invoices", "invoice_id"},
        {"/books/v3/salesorders", "salesorders", "salesorder_id"},
        {"/books/v3/customerpayments", "customerpayments", "payment_id"},
        {"/books/v3/creditnotes", "creditnotes", "creditnote_id"},
        {"/books/v3/bills", "bills", "bill_id"},
        {"/books/v3/vendorpayments", "vendorpayments", "payment_id"},
        {"/books/v3/users", "users", "user_id"},
        {"/inventory/v1/locations", "locations", "location_id"},
        {"/inventory/v1/inventoryadjustments", "inventoryadjustments", "inventory_adjustment_id"},
        {"/inventory/v1/pricebooks", "pricebooks", "pricebook_id"},
    };
    for (size_t i = 0; i < sizeof(lists) / sizeof(lists[0]); i++) {
        api(&r, s, t, "%s", lists[i][0]);
        assert_int_equal(r.status, 200);
        j = json_of(&r);
        cJSON *arr = cJSON_GetObjectItemCaseSensitive(j, lists[i][1]);
        assert_true(cJSON_GetArraySize(arr) > 0);
        assert_true(str_is_digits(jstr(cJSON_GetArrayItem(arr, 0), lists[i][2])));
        assert_non_null(cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(arr, 0),
                                                         "last_modified_time"));
        cJSON_Delete(j);
        resp_free(&r);
    }
    api(&r, s, t, "/books/v3/pricebooks");
    expect_error(&r, 404, 5);
    resp_free(&r);
    free(t);
}

static int count_list(struct sim *s, const char *token, const char *query, const char *status)
{
    int n = 0;
    for (int page = 1;; page++) {
        struct resp r;
        api(&r, s, token, "/inventory/v1/items?%s&page=%d", query, page);
        assert_int_equal(r.status, 200);
        cJSON *j = json_of(&r);
        cJSON *it;
        cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(j, "items"))
        {
            if (status)
                assert_string_equal(jstr(it, "status"), status);
            n++;
        }
        bool more = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(
            cJSON_GetObjectItemCaseSensitive(j, "page_context"), "has_more_page"));
        cJSON_Delete(j);
        resp_free(&r);
        if (!more)
            return n;
    }
}

static void test_filter_by(void **state)
{
    (void)state;
    struct sim *s = sim_start("--items", "700", "--no-limits", NULL);
    char *t = token_of(s);
    int all = count_list(s, t, "filter_by=Status.All", NULL);
    int active = count_list(s, t, "filter_by=Status.Active", "active");
    int inactive = count_list(s, t, "filter_by=Status.Inactive", "inactive");
    assert_int_equal(all, 700);
    assert_int_equal(active + inactive, all);
    assert_true(inactive > 20 && inactive < 150); /* about 10% */
    struct resp r;
    api(&r, s, t, "/inventory/v1/items?filter_by=Status.Bogus");
    expect_error(&r, 400, 2);
    cJSON *j = json_of(&r);
    assert_string_equal(jstr(j, "message"), "Invalid value passed for filter_by");
    cJSON_Delete(j);
    resp_free(&r);
    free(t);
}

static int cmp_time_id(const char *t1, const char *id1, const char *t2, const char *id2)
{
    /* All times share the +0530 offset, so text order is time order. */
    int c = strcmp(t1, t2);
    return c ? c : strcmp(id1, id2);
}

static void test_changed_since(void **state)
{
    (void)state;
    struct sim *s = sim_start("--items", "600", "--no-limits", NULL);
    char *t = token_of(s);
    cJSON *all = truth(s, "items");
    /* Pick the time of one record: every record at that same second must come back. */
    const char *since = jstr(cJSON_GetArrayItem(all, 17), "last_modified_time");
    int expect = 0, at_since = 0;
    cJSON *it;
    cJSON_ArrayForEach(it, all)
    {
        int c = strcmp(jstr(it, "last_modified_time"), since);
        expect += c >= 0;
        at_since += c == 0;
    }
    assert_true(at_since >= 2); /* clustered timestamps */
    char enc[64];
    snprintf(enc, sizeof(enc), "%.19s%%2B0530", since);
    int got = 0, at = 0;
    char prev_t[40] = "", prev_id[32] = "";
    for (int page = 1;; page++) {
        struct resp r;
        api(&r, s, t,
            "/inventory/v1/items?last_modified_time=%s&sort_column=last_modified_time&"
            "sort_order=A&per_page=50&page=%d",
            enc, page);
        assert_int_equal(r.status, 200);
        cJSON *j = json_of(&r);
        cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(j, "items"))
        {
            const char *lt = jstr(it, "last_modified_time"), *id = jstr(it, "item_id");
            assert_true(strcmp(lt, since) >= 0);
            at += strcmp(lt, since) == 0;
            if (prev_t[0])
                assert_true(cmp_time_id(prev_t, prev_id, lt, id) < 0);
            snprintf(prev_t, sizeof(prev_t), "%s", lt);
            snprintf(prev_id, sizeof(prev_id), "%s", id);
            got++;
        }
        cJSON *pc = cJSON_GetObjectItemCaseSensitive(j, "page_context");
        assert_string_equal(jstr(pc, "sort_column"), "last_modified_time");
        bool more = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(pc, "has_more_page"));
        cJSON_Delete(j);
        resp_free(&r);
        if (!more)
            break;
    }
    assert_int_equal(got, expect);
    assert_int_equal(at, at_since);

    /* The same instant in UTC with a trailing Z selects the same records. */
    struct tm tm = {0};
    strptime(since, "%Y-%m-%dT%H:%M:%S", &tm);
    time_t utc = timegm(&tm) - 19800;
    struct tm u;
    gmtime_r(&utc, &u);
    char z[40];
    strftime(z, sizeof(z), "%Y-%m-%dT%H:%M:%SZ", &u);
    struct resp r;
    api(&r, s, t,
        "/inventory/v1/items?last_modified_time=%s&sort_column=last_modified_time&per_page=200",
        z);
    cJSON *j = json_of(&r);
    int n200 = cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(j, "items"));
    assert_int_equal(n200, expect < 200 ? expect : 200);
    cJSON_Delete(j);
    resp_free(&r);

    /* Books items have no changed-since filter: it is ignored. */
    api(&r, s, t, "/books/v3/items?last_modified_time=%s&per_page=200&page=3", z);
    j = json_of(&r);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(j, "items")), 200);
    cJSON_Delete(j);
    resp_free(&r);
    /* Books invoices have it. */
    api(&r, s, t, "/books/v3/invoices?last_modified_time=2099-01-01T00:00:00Z");
    j = json_of(&r);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(j, "invoices")), 0);
    cJSON_Delete(j);
    resp_free(&r);
    api(&r, s, t, "/inventory/v1/items?last_modified_time=yesterday");
    expect_error(&r, 400, 2);
    resp_free(&r);
    cJSON_Delete(all);
    free(t);
}

/* ---- details and images ---- */

static void check_locations(const cJSON *item, const char *p)
{
    char k[64];
    snprintf(k, sizeof(k), "%ss", p);
    const cJSON *locs = cJSON_GetObjectItemCaseSensitive(item, k);
    assert_true(cJSON_IsArray(locs));
    if (!cJSON_HasObjectItem(item, "stock_on_hand")) {
        assert_int_equal(cJSON_GetArraySize(locs), 0);
        return;
    }
    assert_true(cJSON_GetArraySize(locs) >= 3);
    double sum = 0, sum_av = 0;
    const cJSON *l;
    cJSON_ArrayForEach(l, locs)
    {
        snprintf(k, sizeof(k), "%s_id", p);
        assert_true(str_is_digits(jstr(l, k)));
        snprintf(k, sizeof(k), "%s_name", p);
        jstr(l, k);
        assert_non_null(cJSON_GetObjectItemCaseSensitive(l, "is_primary"));
        snprintf(k, sizeof(k), "%s_stock_on_hand", p);
        sum += cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(l, k));
        snprintf(k, sizeof(k), "%s_available_stock", p);
        sum_av += cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(l, k));
        snprintf(k, sizeof(k), "%s_actual_available_stock", p);
        assert_non_null(cJSON_GetObjectItemCaseSensitive(l, k));
    }
    assert_true(sum == cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(item, "stock_on_hand")));
    assert_true(sum_av ==
                cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(item, "available_stock")));
}

static void test_details(void **state)
{
    (void)state;
    struct sim *s = sim_start("--no-limits", NULL);
    char *t = token_of(s);
    struct resp r;
    api(&r, s, t, "/inventory/v1/items?per_page=120");
    cJSON *j = json_of(&r);
    cJSON *items = cJSON_GetObjectItemCaseSensitive(j, "items");
    struct strbuf ids = {0};
    int tracked = 0, untracked = 0, strings = 0, nids = 0;
    cJSON *it;
    cJSON_ArrayForEach(it, items)
    {
        if (cJSON_HasObjectItem(it, "stock_on_hand")) {
            tracked++;
            /* Quantities carry six decimals on the wire. */
            char needle[64];
            snprintf(needle, sizeof(needle), "\"item_id\":\"%s\"", jstr(it, "item_id"));
            const char *at = strstr(r.body.buf, needle);
            assert_non_null(at);
            const char *soh = strstr(at, "\"stock_on_hand\":");
            assert_non_null(soh);
            const char *dot = strchr(soh + 16, '.');
            assert_non_null(dot);
            assert_true(strspn(dot + 1, "0123456789") == 6);
        } else {
            untracked++;
            assert_null(cJSON_GetObjectItemCaseSensitive(it, "available_stock"));
        }
        strings += cJSON_IsString(cJSON_GetObjectItemCaseSensitive(it, "rate"));
        if (nids++ < 100) {
            if (ids.len)
                strbuf_putc(&ids, ',');
            strbuf_puts(&ids, jstr(it, "item_id"));
        }
    }
    assert_true(tracked > 0 && untracked > 0);
    (void)strings;
    resp_free(&r);

    api(&r, s, t, "/inventory/v1/itemdetails?item_ids=%s", ids.buf);
    assert_int_equal(r.status, 200);
    cJSON *d = json_of(&r);
    cJSON *ditems = cJSON_GetObjectItemCaseSensitive(d, "items");
    assert_int_equal(cJSON_GetArraySize(ditems), 100);
    cJSON_ArrayForEach(it, ditems) check_locations(it, "location");
    cJSON_Delete(d);
    resp_free(&r);
    /* More than 100 ids is refused. */
    strbuf_puts(&ids, ",");
    strbuf_puts(&ids, jstr(cJSON_GetArrayItem(items, 110), "item_id"));
    api(&r, s, t, "/inventory/v1/itemdetails?item_ids=%s", ids.buf);
    expect_error(&r, 400, 2);
    resp_free(&r);

    /* One record; an unknown one. */
    const char *id0 = jstr(cJSON_GetArrayItem(items, 0), "item_id");
    api(&r, s, t, "/inventory/v1/items/%s", id0);
    assert_int_equal(r.status, 200);
    d = json_of(&r);
    cJSON *one = cJSON_GetObjectItemCaseSensitive(d, "item");
    assert_string_equal(jstr(one, "item_id"), id0);
    check_locations(one, "location");
    cJSON_Delete(d);
    resp_free(&r);
    api(&r, s, t, "/books/v3/items/4815000000000000001");
    expect_error(&r, 404, 1002);
    d = json_of(&r);
    assert_string_equal(jstr(d, "message"), "Item does not exist.");
    cJSON_Delete(d);
    resp_free(&r);

    /* Single GET of another entity uses its singular key. */
    api(&r, s, t, "/books/v3/contacts?per_page=1");
    d = json_of(&r);
    char cid[32];
    snprintf(cid, sizeof(cid), "%s",
             jstr(cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(d, "contacts"), 0),
                  "contact_id"));
    cJSON_Delete(d);
    resp_free(&r);
    api(&r, s, t, "/books/v3/contacts/%s", cid);
    d = json_of(&r);
    assert_string_equal(jstr(cJSON_GetObjectItemCaseSensitive(d, "contact"), "contact_id"), cid);
    cJSON_Delete(d);
    resp_free(&r);

    /* Images: a real PNG, a real JPEG, and 404 without one. */
    bool png = false, jpg = false, none = false;
    cJSON_ArrayForEach(it, items)
    {
        const char *type = jstr(it, "image_type");
        const char *id = jstr(it, "item_id");
        if (!strcmp(type, "png") && !png) {
            api(&r, s, t, "/inventory/v1/items/%s/image", id);
            assert_int_equal(r.status, 200);
            assert_string_equal(r.ctype, "image/png");
            assert_true(r.body.len > 100);
            assert_memory_equal(r.body.buf, "\x89PNG\r\n\x1a\n", 8);
            assert_memory_equal(r.body.buf + 12, "IHDR", 4);
            assert_memory_equal(r.body.buf + r.body.len - 8, "IEND", 4);
            png = true;
            resp_free(&r);
        } else if (!strcmp(type, "jpg") && !jpg) {
            api(&r, s, t, "/inventory/v1/items/%s/image", id);
            assert_int_equal(r.status, 200);
            assert_string_equal(r.ctype, "image/jpeg");
            assert_memory_equal(r.body.buf, "\xff\xd8\xff", 3);
            assert_memory_equal(r.body.buf + r.body.len - 2, "\xff\xd9", 2);
            jpg = true;
            resp_free(&r);
        } else if (!*type && !none) {
            assert_string_equal(jstr(it, "image_document_id"), "");
            api(&r, s, t, "/inventory/v1/items/%s/image", id);
            assert_int_equal(r.status, 404);
            none = true;
            resp_free(&r);
        }
    }
    assert_true(png && jpg && none);
    strbuf_free(&ids);
    cJSON_Delete(j);
    free(t);
}

static void test_legacy_warehouses(void **state)
{
    (void)state;
    struct sim *s = sim_start("--legacy-warehouses", "--items", "50", NULL);
    cJSON *all = truth(s, "items");
    cJSON *it;
    int tracked = 0;
    cJSON_ArrayForEach(it, all)
    {
        assert_null(cJSON_GetObjectItemCaseSensitive(it, "locations"));
        check_locations(it, "warehouse");
        tracked += cJSON_HasObjectItem(it, "stock_on_hand");
    }
    assert_true(tracked > 0);
    cJSON_Delete(all);
}

/* ---- rate limits ---- */

static void expect_rl_headers(const struct resp *r)
{
    char v[32];
    assert_true(header(r, "X-Rate-Limit-Limit", v, sizeof(v)));
    assert_true(header(r, "X-Rate-Limit-Remaining", v, sizeof(v)));
    assert_true(header(r, "X-Rate-Limit-Reset", v, sizeof(v)));
}

static void test_rate_minute_and_day(void **state)
{
    (void)state;
    struct sim *s = sim_start("--rate-minute", "3", "--rate-day", "0", NULL);
    char *t = token_of(s);
    struct resp r;
    for (int i = 0; i < 3; i++) {
        api(&r, s, t, "/books/v3/contacts?per_page=1");
        assert_int_equal(r.status, 200);
        expect_rl_headers(&r);
        char v[32];
        header(&r, "X-Rate-Limit-Remaining", v, sizeof(v));
        assert_int_equal(atoi(v), 2 - i);
        resp_free(&r);
    }
    api(&r, s, t, "/books/v3/contacts?per_page=1");
    expect_error(&r, 429, 44);
    expect_rl_headers(&r);
    resp_free(&r);

    /* Per day, through the control endpoint (which starts fresh windows). */
    control(&r, s, "POST", "config", "{\"rate_minute\":0,\"rate_day\":2}");
    assert_int_equal(r.status, 200);
    resp_free(&r);
    for (int i = 0; i < 2; i++) {
        api(&r, s, t, "/books/v3/contacts?per_page=1");
        assert_int_equal(r.status, 200);
        resp_free(&r);
    }
    api(&r, s, t, "/books/v3/contacts?per_page=1");
    expect_error(&r, 429, 45);
    expect_rl_headers(&r);
    char v[32];
    header(&r, "X-Rate-Limit-Limit", v, sizeof(v));
    assert_int_equal(atoi(v), 2);
    resp_free(&r);
    control(&r, s, "GET", "counters", NULL);
    cJSON *j = json_of(&r);
    cJSON *hits = cJSON_GetObjectItemCaseSensitive(j, "limit_hits");
    assert_int_equal(jnum(hits, "minute"), 1);
    assert_int_equal(jnum(hits, "day"), 1);
    cJSON *req = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(j, "requests"), "GET /books/v3/contacts");
    assert_int_equal(jnum(req, "200"), 5);
    assert_int_equal(jnum(req, "429"), 2);
    cJSON_Delete(j);
    resp_free(&r);
    free(t);
}

static void test_concurrency(void **state)
{
    (void)state;
    struct sim *s = sim_start("--concurrency", "2", "--faults", "slow=1.0:800", NULL);
    char *t = token_of(s);
    CURLM *m = curl_multi_init();
    CURL *e[3];
    struct strbuf body[3] = {{0}}, hdrs[3] = {{0}};
    char url[256], auth[256];
    snprintf(url, sizeof(url), "%s/inventory/v1/items?per_page=1&organization_id=" ORG, s->base);
    snprintf(auth, sizeof(auth), "Authorization: Zoho-oauthtoken %s", t);
    struct curl_slist *h = curl_slist_append(NULL, auth);
    for (int i = 0; i < 3; i++) {
        e[i] = curl_easy_init();
        curl_easy_setopt(e[i], CURLOPT_URL, url);
        curl_easy_setopt(e[i], CURLOPT_HTTPHEADER, h);
        curl_easy_setopt(e[i], CURLOPT_WRITEFUNCTION, on_body);
        curl_easy_setopt(e[i], CURLOPT_WRITEDATA, &body[i]);
        curl_easy_setopt(e[i], CURLOPT_HEADERFUNCTION, on_body);
        curl_easy_setopt(e[i], CURLOPT_HEADERDATA, &hdrs[i]);
        curl_easy_setopt(e[i], CURLOPT_TIMEOUT, 10L);
        curl_multi_add_handle(m, e[i]);
    }
    int running = 1;
    while (running) {
        curl_multi_perform(m, &running);
        if (running)
            curl_multi_poll(m, NULL, 0, 100, NULL);
    }
    int ok = 0, limited = 0;
    for (int i = 0; i < 3; i++) {
        long status = 0;
        curl_easy_getinfo(e[i], CURLINFO_RESPONSE_CODE, &status);
        if (status == 200) {
            ok++;
        } else {
            assert_int_equal(status, 429);
            cJSON *j = cJSON_Parse(body[i].buf);
            assert_non_null(j);
            assert_int_equal(jnum(j, "code"), 1070);
            cJSON_Delete(j);
            assert_non_null(strcasestr(hdrs[i].buf, "X-Rate-Limit-Remaining:"));
            limited++;
        }
        curl_multi_remove_handle(m, e[i]);
        curl_easy_cleanup(e[i]);
        strbuf_free(&body[i]);
        strbuf_free(&hdrs[i]);
    }
    curl_slist_free_all(h);
    curl_multi_cleanup(m);
    assert_int_equal(ok, 2);
    assert_int_equal(limited, 1);
    free(t);
}

/* ---- faults ---- */

static void set_faults(struct sim *s, const char *spec)
{
    char body[128];
    snprintf(body, sizeof(body), "{\"faults\":\"%s\"}", spec);
    struct resp r;
    control(&r, s, "POST", "config", body);
    assert_int_equal(r.status, 200);
    resp_free(&r);
}

static void test_faults(void **state)
{
    (void)state;
    struct sim *s = sim_start("--no-limits", NULL);
    char *t = token_of(s);
    struct resp r;
    const char *q = "/inventory/v1/items?per_page=20";

    set_faults(s, "500=1.0");
    api(&r, s, t, "%s", q);
    expect_error(&r, 500, 1000);
    resp_free(&r);

    set_faults(s, "429=1.0");
    api(&r, s, t, "%s", q);
    expect_error(&r, 429, 44);
    resp_free(&r);

    set_faults(s, "truncate=1.0");
    api(&r, s, t, "%s", q);
    assert_int_equal(r.rc, CURLE_OK);
    assert_int_equal(r.status, 200);
    assert_null(cJSON_ParseWithLength(r.body.buf, r.body.len));
    resp_free(&r);

    set_faults(s, "malformed=1.0");
    api(&r, s, t, "%s", q);
    assert_int_equal(r.status, 200);
    assert_null(cJSON_ParseWithLength(r.body.buf, r.body.len));
    resp_free(&r);

    set_faults(s, "html=1.0");
    api(&r, s, t, "%s", q);
    assert_int_equal(r.status, 200);
    assert_true(str_starts_with(r.ctype, "text/html"));
    assert_non_null(strstr(r.body.buf, "<html>"));
    resp_free(&r);

    set_faults(s, "ctype=1.0");
    api(&r, s, t, "%s", q);
    assert_int_equal(r.status, 200);
    assert_true(str_starts_with(r.ctype, "text/plain"));
    cJSON *j = json_of(&r);
    cJSON_Delete(j);
    resp_free(&r);

    /* Issue 17 points 2 and 8: a block with a long Retry-After, a gateway's 502. */
    set_faults(s, "block=1.0");
    api(&r, s, t, "%s", q);
    expect_error(&r, 429, 44);
    char ra[32];
    assert_true(header(&r, "Retry-After", ra, sizeof(ra)));
    assert_string_equal(ra, "1800");
    resp_free(&r);
    set_faults(s, "block=1.0:5000");
    api(&r, s, t, "%s", q);
    assert_true(header(&r, "Retry-After", ra, sizeof(ra)));
    assert_string_equal(ra, "5");
    resp_free(&r);

    set_faults(s, "502=1.0");
    api(&r, s, t, "%s", q);
    assert_int_equal(r.status, 502);
    assert_true(str_starts_with(r.ctype, "text/html"));
    assert_non_null(strstr(r.body.buf, "502 Bad Gateway"));
    assert_false(header(&r, "Retry-After", ra, sizeof(ra)));
    resp_free(&r);
    set_faults(s, "");

    /* Issue 17 point 1: the token lacks the image scope: 401 code 57 on the
     * image endpoint only, the same token still lists. */
    control(&r, s, "POST", "config", "{\"no_image_scope\":true}");
    resp_free(&r);
    api(&r, s, t, "/inventory/v1/items?per_page=1");
    assert_int_equal(r.status, 200);
    cJSON *one = json_of(&r);
    char *iid = xstrdup(jstr(cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(one, "items"), 0),
                             "item_id"));
    cJSON_Delete(one);
    resp_free(&r);
    api(&r, s, t, "/inventory/v1/items/%s/image", iid);
    expect_error(&r, 401, 57);
    resp_free(&r);
    control(&r, s, "POST", "config", "{\"no_image_scope\":false}");
    resp_free(&r);
    api(&r, s, t, "/inventory/v1/items/%s/image", iid);
    assert_int_not_equal(r.status, 401);
    resp_free(&r);
    free(iid);

    set_faults(s, "reset=1.0");
    api(&r, s, t, "%s", q);
    assert_int_not_equal(r.rc, CURLE_OK);
    resp_free(&r);

    set_faults(s, "slow=1.0:400");
    api(&r, s, t, "%s", q);
    assert_int_equal(r.status, 200);
    assert_true(r.ms >= 380);
    resp_free(&r);

    set_faults(s, "timeout=1.0:3000");
    char url[256];
    snprintf(url, sizeof(url), "%s%s&organization_id=" ORG, s->base, q);
    http(&r, "GET", url, t, NULL, 500);
    assert_int_equal(r.rc, CURLE_OPERATION_TIMEDOUT);
    resp_free(&r);

    /* The token endpoint and the control endpoint are never faulted. */
    set_faults(s, "500=1.0");
    free(token_of(s));
    control(&r, s, "GET", "counters", NULL);
    j = json_of(&r);
    cJSON *f = cJSON_GetObjectItemCaseSensitive(j, "faults");
    assert_int_equal(jnum(f, "500"), 1);
    assert_int_equal(jnum(f, "truncate"), 1);
    assert_int_equal(jnum(f, "reset"), 1);
    assert_int_equal(jnum(f, "timeout"), 1);
    cJSON_Delete(j);
    resp_free(&r);

    control(&r, s, "POST", "config", "{\"faults\":\"bogus=1\"}");
    expect_error(&r, 400, 2);
    resp_free(&r);
    free(t);
}

/* ---- control endpoint ---- */

static void test_control(void **state)
{
    (void)state;
    struct sim *s = sim_start("--items", "100", "--no-limits", NULL);
    char *t = token_of(s);
    cJSON *before = truth(s, "items");
    assert_int_equal(cJSON_GetArraySize(before), 100);
    /* A tracked item and its first location. */
    cJSON *item = NULL, *it;
    cJSON_ArrayForEach(it, before)
    {
        if (!item && cJSON_HasObjectItem(it, "stock_on_hand"))
            item = it;
    }
    assert_non_null(item);
    char id[32], loc[32], old_lmt[40];
    snprintf(id, sizeof(id), "%s", jstr(item, "item_id"));
    snprintf(old_lmt, sizeof(old_lmt), "%s", jstr(item, "last_modified_time"));
    cJSON *l0 = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(item, "locations"), 1);
    snprintf(loc, sizeof(loc), "%s", jstr(l0, "location_id"));
    double other = cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(item, "stock_on_hand")) -
                   cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(l0, "location_stock_on_hand"));

    char path[96], body[256];
    snprintf(path, sizeof(path), "items/%s", id);
    snprintf(body, sizeof(body),
             "{\"name\":\"Renamed Widget\",\"locations\":[{\"location_id\":\"%s\","
             "\"location_stock_on_hand\":777}]}",
             loc);
    struct resp r;
    control(&r, s, "PATCH", path, body);
    assert_int_equal(r.status, 200);
    cJSON *j = json_of(&r);
    cJSON *rec = cJSON_GetObjectItemCaseSensitive(j, "item");
    assert_string_equal(jstr(rec, "name"), "Renamed Widget");
    assert_true(cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(rec, "stock_on_hand")) ==
                other + 777);
    assert_true(strcmp(jstr(rec, "last_modified_time"), old_lmt) > 0);
    cJSON_Delete(j);
    resp_free(&r);

    /* The API and the truth show it. */
    api(&r, s, t, "/inventory/v1/items/%s", id);
    j = json_of(&r);
    rec = cJSON_GetObjectItemCaseSensitive(j, "item");
    assert_string_equal(jstr(rec, "name"), "Renamed Widget");
    check_locations(rec, "location");
    cJSON_Delete(j);
    resp_free(&r);
    cJSON *after = truth(s, "items");
    bool found = false;
    cJSON_ArrayForEach(it, after)
    {
        if (!strcmp(jstr(it, "item_id"), id)) {
            found = true;
            assert_string_equal(jstr(it, "name"), "Renamed Widget");
        }
    }
    assert_true(found);
    cJSON_Delete(after);

    /* The changed record now sorts last by last_modified_time. */
    api(&r, s, t, "/inventory/v1/items?sort_column=last_modified_time&sort_order=D&per_page=1");
    j = json_of(&r);
    assert_string_equal(jstr(cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(j, "items"), 0),
                             "item_id"),
                        id);
    cJSON_Delete(j);
    resp_free(&r);

    /* Setting a total moves the primary location. */
    snprintf(body, sizeof(body), "{\"stock_on_hand\":5000}");
    control(&r, s, "PATCH", path, body);
    j = json_of(&r);
    rec = cJSON_GetObjectItemCaseSensitive(j, "item");
    assert_true(cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(rec, "stock_on_hand")) ==
                5000);
    check_locations(rec, "location");
    cJSON_Delete(j);
    resp_free(&r);

    /* Create, then delete. */
    control(&r, s, "POST", "items", "{\"name\":\"Brand New\",\"sku\":\"BN-1\"}");
    assert_int_equal(r.status, 201);
    j = json_of(&r);
    char nid[32];
    snprintf(nid, sizeof(nid), "%s", jstr(cJSON_GetObjectItemCaseSensitive(j, "item"), "item_id"));
    assert_true(str_is_digits(nid));
    assert_string_equal(jstr(cJSON_GetObjectItemCaseSensitive(j, "item"), "sku"), "BN-1");
    cJSON_Delete(j);
    resp_free(&r);
    api(&r, s, t, "/inventory/v1/items/%s", nid);
    assert_int_equal(r.status, 200);
    resp_free(&r);
    snprintf(path, sizeof(path), "items/%s", id);
    control(&r, s, "DELETE", path, NULL);
    assert_int_equal(r.status, 200);
    resp_free(&r);
    api(&r, s, t, "/inventory/v1/items/%s", id);
    expect_error(&r, 404, 1002);
    resp_free(&r);
    control(&r, s, "DELETE", path, NULL);
    assert_int_equal(r.status, 404);
    resp_free(&r);
    after = truth(s, "items");
    assert_int_equal(cJSON_GetArraySize(after), 100);
    cJSON_Delete(after);

    /* Random mutations report what they touched. */
    control(&r, s, "POST", "mutate",
            "{\"entity\":\"items\",\"update\":5,\"create\":2,\"delete\":3,\"seed\":9}");
    assert_int_equal(r.status, 200);
    j = json_of(&r);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(j, "updated")), 5);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(j, "created")), 2);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(j, "deleted")), 3);
    cJSON_Delete(j);
    resp_free(&r);
    after = truth(s, "items");
    assert_int_equal(cJSON_GetArraySize(after), 99);
    cJSON_Delete(after);

    /* Counters, and their reset. */
    control(&r, s, "GET", "counters", NULL);
    j = json_of(&r);
    cJSON *req = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(j, "requests"),
                                                  "GET /inventory/v1/items/{id}");
    assert_int_equal(jnum(req, "200"), 2);
    assert_int_equal(jnum(req, "404"), 1);
    assert_int_equal(jnum(j, "tokens_minted"), 1);
    cJSON_Delete(j);
    resp_free(&r);
    control(&r, s, "POST", "counters/reset", "");
    resp_free(&r);
    control(&r, s, "GET", "counters", NULL);
    j = json_of(&r);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(j, "requests")), 0);
    cJSON_Delete(j);
    resp_free(&r);

    /* Revoking the refresh token and expiring access tokens. */
    control(&r, s, "POST", "config", "{\"expire_tokens\":true,\"revoke_refresh_token\":true}");
    resp_free(&r);
    api(&r, s, t, "/inventory/v1/items?per_page=1");
    expect_error(&r, 401, 57);
    resp_free(&r);
    char url[256];
    snprintf(url, sizeof(url), "%s/oauth/v2/token", s->base);
    http(&r, "POST", url, NULL,
         "client_id=sim-client-id&client_secret=sim-client-secret&grant_type=refresh_token&"
         "refresh_token=sim-refresh-token",
         0);
    j = json_of(&r);
    assert_string_equal(jstr(j, "error"), "invalid_code");
    cJSON_Delete(j);
    resp_free(&r);
    cJSON_Delete(before);
    free(t);
}

static void test_determinism(void **state)
{
    (void)state;
    struct sim *a = sim_start("--seed", "42", NULL);
    struct sim *b = sim_start("--seed", "42", NULL);
    struct sim *c = sim_start("--seed", "43", NULL);
    char *ta = token_of(a), *tb = token_of(b), *tc = token_of(c);
    struct resp ra, rb, rc;
    api(&ra, a, ta, "/inventory/v1/items");
    api(&rb, b, tb, "/inventory/v1/items");
    api(&rc, c, tc, "/inventory/v1/items");
    assert_int_equal(ra.body.len, rb.body.len);
    assert_memory_equal(ra.body.buf, rb.body.buf, ra.body.len);
    assert_false(ra.body.len == rc.body.len && !memcmp(ra.body.buf, rc.body.buf, ra.body.len));
    resp_free(&ra);
    resp_free(&rb);
    resp_free(&rc);
    free(ta);
    free(tb);
    free(tc);
}

/* ---- webhooks ---- */

static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int count;
    char *body, *secret, *sig, *ctype;
} hook = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

static enum MHD_Result on_hook(void *cls, struct MHD_Connection *c, const char *url,
                               const char *method, const char *version, const char *upload,
                               size_t *upload_size, void **con_cls)
{
    (void)cls;
    (void)url;
    (void)method;
    (void)version;
    struct strbuf *sb = *con_cls;
    if (!sb) {
        *con_cls = xcalloc(1, sizeof(struct strbuf));
        return MHD_YES;
    }
    if (*upload_size) {
        strbuf_append(sb, upload, *upload_size);
        *upload_size = 0;
        return MHD_YES;
    }
    const char *sec = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-TDS-Webhook-Secret");
    const char *sig = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Zoho-Webhook-Signature");
    const char *ct = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Type");
    pthread_mutex_lock(&hook.mu);
    if (hook.count == 0) {
        hook.body = xstrdup(sb->buf ? sb->buf : "");
        hook.secret = sec ? xstrdup(sec) : NULL;
        hook.sig = sig ? xstrdup(sig) : NULL;
        hook.ctype = ct ? xstrdup(ct) : NULL;
    }
    hook.count++;
    pthread_cond_broadcast(&hook.cv);
    pthread_mutex_unlock(&hook.mu);
    struct MHD_Response *r = MHD_create_response_from_buffer(2, (void *)"ok", MHD_RESPMEM_PERSISTENT);
    enum MHD_Result ret = MHD_queue_response(c, 200, r);
    MHD_destroy_response(r);
    return ret;
}

static void on_hook_done(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)c;
    (void)toe;
    if (*con_cls) {
        strbuf_free(*con_cls);
        free(*con_cls);
    }
}

static void hook_reset(void)
{
    pthread_mutex_lock(&hook.mu);
    free(hook.body);
    free(hook.secret);
    free(hook.sig);
    free(hook.ctype);
    hook.body = hook.secret = hook.sig = hook.ctype = NULL;
    hook.count = 0;
    pthread_mutex_unlock(&hook.mu);
}

static bool hook_wait(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += 10;
    pthread_mutex_lock(&hook.mu);
    while (hook.count == 0)
        if (pthread_cond_timedwait(&hook.cv, &hook.mu, &ts) != 0)
            break;
    bool got = hook.count > 0;
    pthread_mutex_unlock(&hook.mu);
    return got;
}

static void test_webhooks(void **state)
{
    (void)state;
    struct MHD_Daemon *d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD, 0, NULL, NULL,
                                            on_hook, NULL, MHD_OPTION_NOTIFY_COMPLETED,
                                            on_hook_done, NULL, MHD_OPTION_END);
    assert_non_null(d);
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    char url[128];
    snprintf(url, sizeof(url), "http://127.0.0.1:%u/hook", (unsigned)info->port);
    hook_reset();
    struct sim *s = sim_start("--items", "20", "--webhook-url", url, "--webhook-secret",
                              "s3cretValue12", "--webhook-hmac", "hmacKey123456", NULL);
    cJSON *all = truth(s, "items");
    char id[32], path[64];
    snprintf(id, sizeof(id), "%s", jstr(cJSON_GetArrayItem(all, 3), "item_id"));
    cJSON_Delete(all);
    snprintf(path, sizeof(path), "items/%s", id);
    struct resp r;
    control(&r, s, "PATCH", path, "{\"rate\":99.5}");
    assert_int_equal(r.status, 200);
    resp_free(&r);
    bool got = hook_wait();
    if (!got) {
        MHD_stop_daemon(d);
        fail_msg("no webhook arrived");
    }
    pthread_mutex_lock(&hook.mu);
    char *body = xstrdup(hook.body);
    char *secret = hook.secret ? xstrdup(hook.secret) : NULL;
    char *sig = hook.sig ? xstrdup(hook.sig) : NULL;
    pthread_mutex_unlock(&hook.mu);
    cJSON *j = cJSON_Parse(body);
    assert_non_null(j);
    cJSON *item = cJSON_GetObjectItemCaseSensitive(j, "item");
    assert_non_null(item);
    assert_string_equal(jstr(item, "item_id"), id);
    assert_true(cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(item, "rate")) == 99.5);
    cJSON_Delete(j);
    assert_non_null(secret);
    assert_string_equal(secret, "s3cretValue12");
    unsigned char mac[SHA256_DIGEST_LEN];
    char hex[SHA256_HEX_LEN + 1];
    hmac_sha256("hmacKey123456", 13, body, strlen(body), mac);
    sha256_hex(mac, sizeof(mac), hex);
    assert_non_null(sig);
    assert_string_equal(sig, hex);
    free(body);
    free(secret);
    free(sig);
    assert_int_equal(sim_stop(s), 0);

    /* Form-encoded payload. */
    hook_reset();
    s = sim_start("--items", "5", "--webhook-url", url, "--webhook-format", "form", NULL);
    control(&r, s, "POST", "contacts", "{\"contact_name\":\"Form Test & Co\"}");
    assert_int_equal(r.status, 201);
    resp_free(&r);
    assert_true(hook_wait());
    assert_int_equal(sim_stop(s), 0);
    pthread_mutex_lock(&hook.mu);
    assert_non_null(strstr(hook.body, "contact_name=Form%20Test%20%26%20Co"));
    assert_non_null(strstr(hook.body, "contact_id="));
    assert_non_null(hook.ctype);
    assert_true(str_starts_with(hook.ctype, "application/x-www-form-urlencoded"));
    assert_null(hook.sig);
    pthread_mutex_unlock(&hook.mu);
    hook_reset();
    MHD_stop_daemon(d);
}

/* ---- command line ---- */

static void test_bad_arguments(void **state)
{
    (void)state;
    static const char *const cases[][3] = {
        {"--items", "lots", "--items"},
        {"--count", "widgets=5", "--count"},
        {"--faults", "explode=0.5", "--faults"},
        {"--mint-limit", "x/600", "--mint-limit"},
        {"--bogus", NULL, "--bogus"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int errpipe[2];
        assert_int_equal(pipe(errpipe), 0);
        pid_t pid = fork();
        if (pid == 0) {
            dup2(errpipe[1], 2);
            close(errpipe[0]);
            execl(sim_path(), sim_path(), "--listen", "127.0.0.1:0", cases[i][0], cases[i][1],
                  (char *)NULL);
            _exit(127);
        }
        close(errpipe[1]);
        char buf[512] = {0};
        size_t n = 0;
        ssize_t k;
        while ((k = read(errpipe[0], buf + n, sizeof(buf) - 1 - n)) > 0)
            n += (size_t)k;
        close(errpipe[0]);
        int status;
        waitpid(pid, &status, 0);
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 2);
        assert_non_null(strstr(buf, cases[i][2]));
        assert_non_null(strchr(buf, '\n'));
        assert_null(strchr(strchr(buf, '\n') + 1, '\n')); /* one line */
    }
}

int main(void)
{
    if (access(sim_path(), X_OK) != 0) {
        fprintf(stderr, "test_sim: %s is not built\n", sim_path());
        return 77;
    }
    atexit(stop_all_at_exit);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_token_grant, teardown),
        cmocka_unit_test_teardown(test_mint_limit, teardown),
        cmocka_unit_test_teardown(test_auth_and_org, teardown),
        cmocka_unit_test_teardown(test_paging, teardown),
        cmocka_unit_test_teardown(test_filter_by, teardown),
        cmocka_unit_test_teardown(test_changed_since, teardown),
        cmocka_unit_test_teardown(test_details, teardown),
        cmocka_unit_test_teardown(test_legacy_warehouses, teardown),
        cmocka_unit_test_teardown(test_rate_minute_and_day, teardown),
        cmocka_unit_test_teardown(test_concurrency, teardown),
        cmocka_unit_test_teardown(test_faults, teardown),
        cmocka_unit_test_teardown(test_control, teardown),
        cmocka_unit_test_teardown(test_determinism, teardown),
        cmocka_unit_test_teardown(test_webhooks, teardown),
        cmocka_unit_test_teardown(test_bad_arguments, teardown),
    };
    int rc = cmocka_run_group_tests_name("sim", tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
