/*
 * test_webhooks.c: the HTTP listener against a real database: every answer
 * of the intake and what each stores in tds.inbox, the queue item of an
 * accepted webhook, duplicate folding, the size limits, secrets kept out of
 * the inbox and the log, /health moving from down to healthy to degraded as
 * engines come and go, and down with 503s when the database is unreachable,
 * and /metrics passing `promtool check metrics` (when promtool is
 * installed; a strict line check otherwise).
 */
#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "engine_testlib.h"
#include "pgtest.h"
#include "tds/db.h"
#include "tds/http.h"
#include "tds/log.h"
#include "tds/queue.h"
#include "tds/sha256.h"

#define SECRET "Wh00kSecretAbc123"
#define HKEY "HmacKeyXyz987654321"

static struct config_loaded cl;
static struct http_server *srv;
static PGconn *db;
static char logpath[256];
static long long sent;       /* webhook requests sent (each must leave an inbox row) */
static char sigs_sent[64][SHA256_HEX_LEN + 1];
static int nsigs;

struct resp {
    long status;
    struct strbuf body;
};

static size_t on_data(char *p, size_t sz, size_t n, void *arg)
{
    strbuf_append(&((struct resp *)arg)->body, p, sz * n);
    return sz * n;
}

static const char *sign(const char *body, size_t len)
{
    unsigned char mac[SHA256_DIGEST_LEN];
    hmac_sha256(HKEY, strlen(HKEY), body, len, mac);
    char *hex = sigs_sent[nsigs % 64];
    sha256_hex(mac, sizeof mac, hex);
    nsigs++;
    return hex;
}

/* flags for request() */
enum { NO_SECRET = 1, NO_SIG = 2, SHORT_SIG = 4, QUERY_SECRET = 8, WRONG_CASE = 16, NO_EXPECT = 32,
       CUT_OK = 64 /* the server may close before the body is sent: status 0 */ };

static void request(struct http_server *s, const char *method, const char *path,
                    const char *ctype, const char *body, size_t len, int flags, struct resp *out)
{
    memset(out, 0, sizeof *out);
    CURL *h = curl_easy_init();
    char url[512];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s%s", http_server_port(s), path,
             flags & QUERY_SECRET ? "?secret=" SECRET "&x=1" : "");
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    struct curl_slist *hd = NULL;
    char line[300];
    if (ctype) {
        snprintf(line, sizeof line, "Content-Type: %s", ctype);
        hd = curl_slist_append(hd, line);
    }
    if (!(flags & (NO_SECRET | QUERY_SECRET)))
        hd = curl_slist_append(hd, flags & WRONG_CASE ? "X-TDS-Webhook-Secret: wH00KsECRETaBC123"
                                                      : "X-TDS-Webhook-Secret: " SECRET);
    if (!(flags & NO_SIG) && body) {
        const char *sg = sign(body, len);
        snprintf(line, sizeof line, "X-Zoho-Webhook-Signature: %.*s",
                 flags & SHORT_SIG ? 40 : SHA256_HEX_LEN, sg);
        hd = curl_slist_append(hd, line);
    }
    hd = curl_slist_append(hd, "X-Custom-Note: hello");
    if (flags & NO_EXPECT)
        hd = curl_slist_append(hd, "Expect:");
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hd);
    if (body) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    }
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, out);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, 20L);
    CURLcode rc = curl_easy_perform(h);
    if (rc != CURLE_OK && !((flags & CUT_OK) && (rc == CURLE_SEND_ERROR || rc == CURLE_RECV_ERROR)))
        fail_msg("%s %s: %s", method, path, curl_easy_strerror(rc));
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &out->status);
    curl_slist_free_all(hd);
    curl_easy_cleanup(h);
    if (strncmp(path, "/webhooks", 9) == 0 || strcmp(method, "POST") == 0)
        sent++;
}

static long post(const char *path, const char *ctype, const char *body, int flags)
{
    struct resp r;
    request(srv, "POST", path, ctype, body, body ? strlen(body) : 0, flags, &r);
    long st = r.status;
    strbuf_free(&r.body);
    return st;
}

static long long scalar(const char *sql)
{
    return pgtest_scalar(db, sql);
}

static void set_str(char **field, const char *v)
{
    free(*field);
    *field = xstrdup(v);
}

static int setup(void **state)
{
    (void)state;
    pgtest_create_db("webhooks");
    db = pgtest_connect();
    pgtest_config(&cl);
    char *err = NULL;
    if (db_migrate(db, NULL, &err) != 0)
        fail_msg("migrate: %s", err);
    snprintf(logpath, sizeof logpath, "/tmp/tds-test-webhooks-%ld.log", (long)getpid());
    unlink(logpath);
    if (log_open(logpath, &err) != 0)
        fail_msg("log: %s", err);
    log_set_level(TDS_LOG_DEBUG);
    set_str(&cl.cfg.webhooks.listen, "127.0.0.1:0");
    set_str(&cl.cfg.webhooks.secret, SECRET);
    set_str(&cl.cfg.webhooks.hmac_secret, HKEY);
    cl.cfg.engine.retry.max_attempts = 2; /* webhook items take it (not the default 5) */
    struct http_context ctx = {.instance = "test"};
    srv = http_server_start(&cl.cfg, &ctx, &err);
    if (srv == NULL)
        fail_msg("start: %s", err);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    http_server_stop(srv);
    PQfinish(db);
    config_loaded_free(&cl);
    unlink(logpath);
    return 0;
}

static void test_accepted_and_queued(void **state)
{
    (void)state;
    struct resp r;
    const char *b = "{\"item\":{\"item_id\":\"1001\",\"name\":\"Bolt\","
                    "\"last_modified_time\":\"2025-01-01T10:00:00+0530\"}}";
    request(srv, "POST", "/webhooks/zoho/items", "application/json", b, strlen(b), 0, &r);
    assert_int_equal(r.status, 202);
    assert_non_null(strstr(r.body.buf, "\"status\":\"accepted\""));
    strbuf_free(&r.body);
    assert_int_equal(scalar("SELECT count(*) FROM tds.inbox WHERE zoho_id = '1001'"
                            " AND status = 'queued' AND entity = 'items' AND http_status = 202"
                            " AND queue_id IS NOT NULL AND method = 'POST'"
                            " AND path = '/webhooks/zoho/items' AND remote_addr = '127.0.0.1'"
                            " AND headers->>'X-Custom-Note' = 'hello'"
                            " AND convert_from(body, 'UTF8') LIKE '%Bolt%'"),
                     1);
    assert_int_equal(scalar("SELECT count(*) FROM tds.sync_queue q JOIN tds.inbox i"
                            " ON i.queue_id = q.id AND q.inbox_id = i.id"
                            " WHERE q.zoho_id = '1001' AND q.entity_type = 'items'"
                            " AND q.priority = 9 AND q.operation = 'upsert' AND q.max_attempts = 2"
                            " AND q.status = 'pending' AND (q.payload->>'refetch')::bool"
                            " AND q.payload->'hint'->>'name' = 'Bolt'"),
                     1);
    /* The top-key route, the secret as a query parameter, form bodies. */
    assert_int_equal(post("/webhooks/zoho", "application/json",
                          "{\"contact\":{\"contact_id\":\"c7\"}}", QUERY_SECRET), 202);
    assert_int_equal(post("/webhooks/zoho/item", "application/x-www-form-urlencoded",
                          "item_id=1002&name=Nut", 0), 202);
    assert_int_equal(post("/webhooks/zoho", "application/x-www-form-urlencoded",
                          "JSONString=%7B%22item%22%3A%7B%22item_id%22%3A%221003%22%7D%7D", 0),
                     202);
    assert_int_equal(scalar("SELECT count(*) FROM tds.sync_queue WHERE (entity_type, zoho_id)"
                            " IN (('contacts','c7'),('items','1002'),('items','1003'))"),
                     3);
    /* The query string is stored with the secret redacted. */
    assert_int_equal(scalar("SELECT count(*) FROM tds.inbox WHERE zoho_id = 'c7'"
                            " AND headers->':query'->>'secret' = '<redacted>'"
                            " AND headers->':query'->>'x' = '1'"),
                     1);
}

static void test_duplicates_fold(void **state)
{
    (void)state;
    const char *b = "{\"item\":{\"item_id\":\"2001\","
                    "\"last_modified_time\":\"2025-02-02T10:00:00+0530\"}}";
    assert_int_equal(post("/webhooks/zoho/items", "application/json", b, 0), 202);
    assert_int_equal(post("/webhooks/zoho/items", "application/json", b, 0), 202);
    /* Mark the item done: a third delivery of the same change still folds. */
    pgtest_exec(db, "UPDATE tds.sync_queue SET status = 'completed' WHERE zoho_id = '2001'");
    assert_int_equal(post("/webhooks/zoho", "application/json", b, 0), 202);
    assert_int_equal(scalar("SELECT count(*) FROM tds.sync_queue WHERE zoho_id = '2001'"), 1);
    assert_int_equal(scalar("SELECT count(*) FROM tds.inbox WHERE zoho_id = '2001'"), 3);
    assert_int_equal(scalar("SELECT count(DISTINCT queue_id) FROM tds.inbox"
                            " WHERE zoho_id = '2001' AND status = 'queued'"),
                     1);
    assert_int_equal(scalar("SELECT count(*) FROM tds.inbox WHERE zoho_id = '2001'"
                            " AND duplicate_of IS NOT NULL"),
                     2);
    /* A newer change of the same record is a new delivery. */
    const char *b2 = "{\"item\":{\"item_id\":\"2001\","
                     "\"last_modified_time\":\"2025-02-02T11:00:00+0530\"}}";
    assert_int_equal(post("/webhooks/zoho/items", "application/json", b2, 0), 202);
    assert_int_equal(scalar("SELECT count(*) FROM tds.sync_queue WHERE zoho_id = '2001'"), 2);
}

/* One batch (as the group-commit writer sends it): duplicates and several
 * changes of one record inside the batch. */
static void test_batch_semantics(void **state)
{
    (void)state;
    PGresult *r = PQexec(
        db, "SELECT out_inbox, out_queue, out_dup FROM tds.webhook_intake('["
            "{\"entity\":\"items\",\"zoho_id\":\"B1\",\"lmt\":\"t1\",\"status\":\"queued\",\"http_status\":202,\"hint\":{\"n\":1}},"
            "{\"entity\":\"items\",\"zoho_id\":\"B1\",\"lmt\":\"t1\",\"status\":\"queued\",\"http_status\":202,\"hint\":{\"n\":2}},"
            "{\"entity\":\"items\",\"zoho_id\":\"B1\",\"lmt\":\"t2\",\"status\":\"queued\",\"http_status\":202,\"hint\":{\"n\":3}},"
            "{\"status\":\"rejected\",\"http_status\":401,\"reject_reason\":\"bad\"},"
            "{\"entity\":\"items\",\"zoho_id\":\"B2\",\"status\":\"queued\",\"http_status\":202,\"hint\":{\"n\":5}},"
            "{\"entity\":\"items\",\"zoho_id\":\"B2\",\"status\":\"queued\",\"http_status\":202,\"hint\":null}"
            "]'::jsonb, ARRAY['a','b','c','d','e','f']::bytea[])");
    assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
    assert_int_equal(PQntuples(r), 6);
    long long id[6], q[6];
    for (int i = 0; i < 6; i++) {
        id[i] = strtoll(PQgetvalue(r, i, 0), NULL, 10);
        q[i] = PQgetisnull(r, i, 1) ? 0 : strtoll(PQgetvalue(r, i, 1), NULL, 10);
    }
    assert_true(q[0] > 0 && q[0] == q[1] && q[1] == q[2]); /* one item for B1 */
    assert_true(PQgetisnull(r, 0, 2));
    assert_int_equal(strtoll(PQgetvalue(r, 1, 2), NULL, 10), id[0]); /* duplicate of row 1 */
    assert_true(PQgetisnull(r, 2, 2));                               /* a newer change */
    assert_int_equal(q[3], 0);
    assert_true(q[4] > 0 && q[4] == q[5] && q[4] != q[0]);
    assert_true(PQgetisnull(r, 4, 2) && PQgetisnull(r, 5, 2)); /* no time: never duplicates */
    PQclear(r);
    assert_int_equal(scalar("SELECT count(*) FROM tds.sync_queue WHERE zoho_id IN ('B1','B2')"), 2);
    char sql[256];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM tds.sync_queue WHERE zoho_id = 'B1'"
             " AND inbox_id = %lld AND payload->'hint'->>'n' = '3'", id[2]);
    assert_int_equal(scalar(sql), 1); /* the last change of the batch wins */
    assert_int_equal(scalar("SELECT count(*) FROM tds.inbox WHERE zoho_id IN ('B1','B2')"
                            " AND status = 'queued'"),
                     5);
    pgtest_exec(db, "DELETE FROM tds.sync_queue WHERE zoho_id IN ('B1','B2')");
    pgtest_exec(db, "DELETE FROM tds.inbox WHERE zoho_id IN ('B1','B2') OR http_status = 401");
}

static void test_rejections(void **state)
{
    (void)state;
    long long before = scalar("SELECT count(*) FROM tds.inbox");
    long long sent0 = sent;
    const char *ok = "{\"item\":{\"item_id\":\"3001\"}}";
    assert_int_equal(post("/webhooks/zoho/items", "application/json", ok, NO_SECRET), 401);
    assert_int_equal(post("/webhooks/zoho/items", "application/json", ok, WRONG_CASE), 401);
    assert_int_equal(post("/webhooks/zoho/items", "application/json", ok, NO_SIG), 401);
    assert_int_equal(post("/webhooks/zoho/items", "application/json", ok, SHORT_SIG), 401);
    assert_int_equal(post("/webhooks/zoho/items", "text/plain", ok, 0), 415);
    assert_int_equal(post("/webhooks/zoho/widgets", "application/json", ok, 0), 404);
    assert_int_equal(post("/webhooks/elsewhere", "application/json", ok, 0), 404);
    assert_int_equal(post("/webhooks/zoho/items", "application/json", "", 0), 400);
    assert_int_equal(post("/webhooks/zoho/items", "application/json", "{\"item\":{}}", 0), 400);
    assert_int_equal(post("/webhooks/zoho/items", "application/json", "{nope", 0), 400);
    struct resp r;
    request(srv, "GET", "/webhooks/zoho/items", NULL, NULL, 0, 0, &r);
    assert_int_equal(r.status, 405);
    assert_non_null(strstr(r.body.buf, "\"error\""));
    strbuf_free(&r.body);
    /* Invalid UTF-8: 400, and the exact bytes are kept. */
    const char bad[] = "{\"item\":{\"item_id\":\"3002\",\"name\":\"\xff\xfe\xc3\"}}";
    request(srv, "POST", "/webhooks/zoho/items", "application/json", bad, sizeof bad - 1, 0, &r);
    assert_int_equal(r.status, 400);
    strbuf_free(&r.body);
    assert_int_equal(scalar("SELECT count(*) FROM tds.inbox WHERE status = 'rejected'"
                            " AND http_status = 400 AND reject_reason LIKE '%UTF-8%'"
                            " AND position('\\xfffec3'::bytea IN body) > 0"),
                     1);
    /* A JSON bomb: nesting beyond cJSON's limit. */
    size_t depth = 5000;
    struct strbuf bomb = {0};
    strbuf_puts(&bomb, "{\"item\":");
    for (size_t i = 0; i < depth; i++)
        strbuf_putc(&bomb, '[');
    for (size_t i = 0; i < depth; i++)
        strbuf_putc(&bomb, ']');
    strbuf_putc(&bomb, '}');
    assert_int_equal(post("/webhooks/zoho/items", "application/json", bomb.buf, 0), 400);
    strbuf_free(&bomb);
    /* Every one of them is in the inbox, rejected, with its status. */
    assert_int_equal(scalar("SELECT count(*) FROM tds.inbox") - before, sent - sent0);
    assert_int_equal(scalar("SELECT count(*) FROM tds.inbox WHERE status = 'rejected'"
                            " AND (http_status IS NULL OR reject_reason IS NULL)"),
                     0);
    assert_int_equal(scalar("SELECT count(*) FROM tds.inbox WHERE http_status = 401"), 4);
    assert_int_equal(scalar("SELECT count(*) FROM tds.inbox WHERE http_status = 405"), 1);
}

static void test_size_limit(void **state)
{
    (void)state;
    size_t n = WEBHOOK_MAX_BODY;
    char *body = xmalloc(n + 2);
    const char *head = "{\"item\":{\"item_id\":\"4001\",\"pad\":\"";
    memset(body, 'a', n + 1);
    memcpy(body, head, strlen(head));
    memcpy(body + n - 4, "\"}}\n", 4);
    body[n] = '\0';
    struct resp r;
    request(srv, "POST", "/webhooks/zoho/items", "application/json", body, n, 0, &r);
    assert_int_equal(r.status, 202);
    strbuf_free(&r.body);
    assert_int_equal(scalar("SELECT length(body) FROM tds.inbox WHERE zoho_id = '4001'"), n);
    body[n] = 'a';
    body[n + 1] = '\0';
    /* One byte more, sent at once: read, the first bytes and the size kept. */
    request(srv, "POST", "/webhooks/zoho/items", "application/json", body, n + 1, NO_EXPECT, &r);
    assert_int_equal(r.status, 413);
    strbuf_free(&r.body);
    assert_int_equal(scalar("SELECT count(*) FROM tds.inbox WHERE http_status = 413"
                            " AND body_size = 1048577 AND length(body) = 4096"
                            " AND status = 'rejected'"),
                     1);
    /* With "Expect: 100-continue": refused before the body is sent. */
    request(srv, "POST", "/webhooks/zoho/items", "application/json", body, n + 1, 0, &r);
    assert_int_equal(r.status, 413);
    strbuf_free(&r.body);
    assert_int_equal(scalar("SELECT count(*) FROM tds.inbox WHERE http_status = 413"
                            " AND body_size = 1048577 AND length(body) = 0"),
                     1);
    free(body);
}

static void test_no_secrets_stored_or_logged(void **state)
{
    (void)state;
    const char *needles[2 + 64];
    int nn = 0;
    needles[nn++] = SECRET;
    needles[nn++] = HKEY;
    for (int i = 0; i < nsigs && i < 64; i++)
        needles[nn++] = sigs_sent[i];
    for (int i = 0; i < nn; i++) {
        const char *p[] = {needles[i]};
        PGresult *r = PQexecParams(db,
                                   "SELECT count(*) FROM tds.inbox WHERE headers::text LIKE"
                                   " '%' || $1 || '%' OR position(convert_to($1, 'UTF8') IN"
                                   " coalesce(body, '')) > 0 OR path LIKE '%' || $1 || '%'",
                                   1, NULL, p, NULL, NULL, 0);
        assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
        if (strcmp(PQgetvalue(r, 0, 0), "0") != 0)
            fail_msg("a secret or signature is stored in tds.inbox (needle %d)", i);
        PQclear(r);
    }
    assert_true(scalar("SELECT count(*) FROM tds.inbox"
                       " WHERE headers->>'X-TDS-Webhook-Secret' = '<redacted>'"
                       " AND headers->>'X-Zoho-Webhook-Signature' = '<redacted>'") > 0);
    log_close();
    FILE *f = fopen(logpath, "r");
    assert_non_null(f);
    char line[4096];
    int lines = 0;
    while (fgets(line, sizeof line, f)) {
        lines++;
        for (int i = 0; i < nn; i++)
            if (strstr(line, needles[i]))
                fail_msg("secret or signature in log line: %s", line);
    }
    fclose(f);
    assert_true(lines > 0);
    char *err = NULL;
    assert_int_equal(log_open(logpath, &err), 0);
}

static void test_health(void **state)
{
    (void)state;
    struct resp r;
    request(srv, "GET", "/health", NULL, NULL, 0, 0, &r);
    assert_int_equal(r.status, 503); /* no engine alive: down */
    assert_non_null(strstr(r.body.buf, "down"));
    strbuf_free(&r.body);
    pgtest_exec(db, "INSERT INTO tds.engines (instance, host, pid, version, state, threads)"
                    " VALUES ('e1', 'h', 1, 'test', 'running', 4)");
    request(srv, "GET", "/health", NULL, NULL, 0, 0, &r);
    assert_int_equal(r.status, 200);
    strbuf_free(&r.body);
    pgtest_exec(db, "INSERT INTO tds.engines (instance, host, pid, version, state, threads,"
                    " heartbeat_at) VALUES ('e2', 'h', 2, 'test', 'running', 4,"
                    " now() - interval '10 minutes')");
    request(srv, "GET", "/health", NULL, NULL, 0, 0, &r);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body.buf, "degraded"));
    strbuf_free(&r.body);
    pgtest_exec(db, "UPDATE tds.engines SET heartbeat_at = now() - interval '10 minutes'");
    request(srv, "GET", "/health", NULL, NULL, 0, 0, &r);
    assert_int_equal(r.status, 503);
    strbuf_free(&r.body);
    request(srv, "POST", "/health", "application/json", "{}", 2, 0, &r);
    assert_int_equal(r.status, 405);
    strbuf_free(&r.body);
    sent--; /* not a webhook: not stored */
}

static void test_database_unreachable(void **state)
{
    (void)state;
    struct config_loaded bad;
    pgtest_config(&bad);
    set_str(&bad.cfg.database.dsn, "host=127.0.0.1 port=1 dbname=nope connect_timeout=2");
    set_str(&bad.cfg.webhooks.listen, "127.0.0.1:0");
    set_str(&bad.cfg.webhooks.secret, SECRET);
    set_str(&bad.cfg.webhooks.hmac_secret, HKEY);
    char *err = NULL;
    struct http_server *s2 = http_server_start(&bad.cfg, NULL, &err);
    assert_non_null(s2);
    struct resp r;
    const char *b = "{\"item\":{\"item_id\":\"5001\"}}";
    request(s2, "POST", "/webhooks/zoho/items", "application/json", b, strlen(b), 0, &r);
    assert_int_equal(r.status, 503);
    strbuf_free(&r.body);
    request(s2, "GET", "/health", NULL, NULL, 0, 0, &r);
    assert_int_equal(r.status, 503);
    assert_non_null(strstr(r.body.buf, "down"));
    strbuf_free(&r.body);
    request(s2, "GET", "/metrics", NULL, NULL, 0, 0, &r);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body.buf, "tds_database_up 0"));
    strbuf_free(&r.body);
    http_server_stop(s2);
    config_loaded_free(&bad);
    sent -= 1;
    assert_int_equal(scalar("SELECT count(*) FROM tds.inbox WHERE zoho_id = '5001'"), 0);
}

static void test_refuses_open_non_loopback(void **state)
{
    (void)state;
    struct config_loaded c2;
    pgtest_config(&c2);
    set_str(&c2.cfg.webhooks.listen, "0.0.0.0:0");
    char *err = NULL;
    assert_null(http_server_start(&c2.cfg, NULL, &err));
    assert_non_null(strstr(err, "refusing"));
    free(err);
    set_str(&c2.cfg.webhooks.listen, "127.0.0.1:0");
    struct http_server *s = http_server_start(&c2.cfg, NULL, &err);
    assert_non_null(s);
    http_server_stop(s);
    config_loaded_free(&c2);
}

/* Strict line check of the exposition format (used when promtool is absent). */
static void check_exposition(const char *text)
{
    const char *p = text;
    while (*p) {
        const char *nl = strchr(p, '\n');
        assert_non_null(nl);
        size_t n = (size_t)(nl - p);
        char line[1024];
        assert_true(n < sizeof line);
        memcpy(line, p, n);
        line[n] = '\0';
        if (line[0] == '#') {
            assert_true(strncmp(line, "# HELP tds_", 11) == 0 ||
                        strncmp(line, "# TYPE tds_", 11) == 0);
        } else {
            assert_true(strncmp(line, "tds_", 4) == 0);
            const char *sp = strrchr(line, ' ');
            assert_non_null(sp);
            char *end;
            strtod(sp + 1, &end);
            assert_true(*end == '\0' || strcmp(sp + 1, "NaN") == 0);
        }
        p = nl + 1;
    }
}

/* The exposition passes `promtool check metrics` (a strict line check when
 * promtool is not installed). */
static void check_metrics_text(const char *text)
{
    check_exposition(text);
    if (access("/usr/bin/promtool", X_OK) == 0) {
        char path[256];
        snprintf(path, sizeof path, "/tmp/tds-test-metrics-%ld.txt", (long)getpid());
        FILE *f = fopen(path, "w");
        fputs(text, f);
        fclose(f);
        char cmd[512];
        snprintf(cmd, sizeof cmd, "promtool check metrics < %s", path);
        int rc = system(cmd);
        unlink(path);
        assert_int_equal(rc, 0);
    } else {
        print_message("promtool not installed: strict line check only\n");
    }
}

static void test_metrics(void **state)
{
    (void)state;
    pgtest_exec(db, "INSERT INTO tds.sync_runs (run_type, entity_type, trigger, status,"
                    " succeeded, failed, unchanged) VALUES ('full', 'items', 'manual',"
                    " 'completed', 10, 1, 2), ('stock', NULL, 'schedule', 'completed', 3, 0, 0)");
    pgtest_exec(db, "INSERT INTO tds.api_usage (minute, instance, endpoint, status, calls) VALUES"
                    " (date_trunc('minute', now()), 'e1', 'GET /items', 200, 5),"
                    " (date_trunc('minute', now()), 'e1', 'GET /odd \"x\" \\ y', 429, 1)");
    pgtest_exec(db, "INSERT INTO tds.zoho_token (client_id, access_token, minted_at, expires_at)"
                    " VALUES ('cid', 'tok', now(), now() + interval '3000 seconds')");
    struct resp r;
    request(srv, "GET", "/metrics", NULL, NULL, 0, 0, &r);
    assert_int_equal(r.status, 200);
    const char *must[] = {
        /* 10 from the run, 1 run-less webhook item completed in test_duplicates_fold */
        "tds_items_synced_total{entity=\"items\",result=\"ok\"} 11",
        "tds_items_synced_total{entity=\"items\",result=\"failed\"} 1",
        "tds_items_synced_total{entity=\"all\",result=\"ok\"} 3",
        "tds_api_calls_total{endpoint=\"GET /items\",status=\"200\"} 5",
        "tds_api_calls_total{endpoint=\"GET /odd \\\"x\\\" \\\\ y\",status=\"429\"} 1",
        "tds_rate_budget_remaining{window=\"minute\"}",
        "tds_database_up 1", "tds_webhooks_total{result=\"accepted\"}",
        "tds_queue_depth{status=\"pending\"}", "tds_dlq_size 0",
        "tds_alerts_active{severity=\"critical\"} 0", "tds_rate_budget_remaining{window=\"minute\"}",
        "tds_webhook_intake_seconds_bucket{le=\"+Inf\"}", "# TYPE tds_item_apply_seconds histogram",
        "# TYPE tds_api_call_seconds histogram", "# TYPE tds_items_synced_total counter",
        "# TYPE tds_api_calls_total counter", "tds_retries_total 0", "tds_dlq_moves_total 0",
        "# TYPE tds_queue_batches_replayed_total counter",
        "tds_alerts_raised_total 0", "tds_engine_workers_busy",
        "# TYPE tds_access_token_expiry_seconds gauge",
        "tds_build_info{version=\"" TDS_VERSION "\"} 1",
        "# TYPE tds_queue_oldest_pending_seconds gauge",
        "# TYPE tds_last_success_timestamp_seconds gauge",
    };
    for (size_t i = 0; i < sizeof must / sizeof must[0]; i++)
        if (strstr(r.body.buf, must[i]) == NULL)
            fail_msg("/metrics lacks %s", must[i]);
    assert_null(strstr(r.body.buf, "tds_webhooks_total{result=\"accepted\"} 0\n"));
    const char *exp = strstr(r.body.buf, "\ntds_access_token_expiry_seconds ");
    assert_non_null(exp);
    long secs = strtol(exp + strlen("\ntds_access_token_expiry_seconds "), NULL, 10);
    assert_true(secs > 2990 && secs <= 3000);
    check_metrics_text(r.body.buf);
    strbuf_free(&r.body);
}

static int connect_to(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    return fd;
}

/* True when the server closes fd within ms milliseconds. */
static bool closed_within(int fd, int ms)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    if (poll(&p, 1, ms) <= 0)
        return false;
    char c;
    return recv(fd, &c, 1, 0) <= 0;
}

/* A second listener on the test database with its own limits (0: default). */
static struct http_server *start_side(struct config_loaded *c2, int maxc, int per_peer,
                                      int request_timeout, const struct http_context *ctx)
{
    pgtest_config(c2);
    set_str(&c2->cfg.webhooks.listen, "127.0.0.1:0");
    set_str(&c2->cfg.webhooks.secret, SECRET);
    set_str(&c2->cfg.webhooks.hmac_secret, HKEY);
    if (maxc)
        c2->cfg.webhooks.max_connections = maxc;
    if (per_peer)
        c2->cfg.webhooks.max_connections_per_peer = per_peer;
    if (request_timeout)
        c2->cfg.webhooks.request_timeout_seconds = request_timeout;
    char *err = NULL;
    struct http_server *s = http_server_start(&c2->cfg, ctx, &err);
    if (s == NULL)
        fail_msg("start: %s", err);
    return s;
}

static void test_connection_limits(void **state)
{
    (void)state;
    struct config_loaded c2;
    struct http_context ctx = {.idle_timeout_s = 1};
    struct http_server *s = start_side(&c2, 16, 4, 0, &ctx);
    int fds[5];
    for (int i = 0; i < 4; i++) {
        fds[i] = connect_to(http_server_port(s));
        /* A slow client: half a request line, then nothing. */
        assert_int_equal(send(fds[i], "POST /webhooks/zo", 17, 0), 17);
    }
    fds[4] = connect_to(http_server_port(s));
    assert_true(closed_within(fds[4], 2000)); /* over the per-address limit */
    assert_false(closed_within(fds[0], 200)); /* the others still wait... */
    assert_true(closed_within(fds[0], 3000)); /* ...until the idle timeout */
    for (int i = 0; i < 5; i++)
        close(fds[i]);
    http_server_stop(s);
    config_loaded_free(&c2);
}

/* ---- hostile clients (issue 18 points 1-3) ---- */

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A request that must be answered within timeout_ms: the status (0 when it
 * was not), *ms the time it took, *body the answer (caller frees) if asked. */
static long timed(struct http_server *s, const char *method, const char *path, const char *body,
                  long timeout_ms, long long *ms, char **answer)
{
    CURL *h = curl_easy_init();
    char url[512];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", http_server_port(s), path);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    struct curl_slist *hd = NULL;
    char line[300];
    hd = curl_slist_append(hd, "Content-Type: application/json");
    hd = curl_slist_append(hd, "X-TDS-Webhook-Secret: " SECRET);
    if (body) {
        snprintf(line, sizeof line, "X-Zoho-Webhook-Signature: %s", sign(body, strlen(body)));
        hd = curl_slist_append(hd, line);
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
    }
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hd);
    struct resp r = {0};
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &r);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, timeout_ms);
    long long t0 = now_ms();
    CURLcode rc = curl_easy_perform(h);
    *ms = now_ms() - t0;
    long st = 0;
    if (rc == CURLE_OK)
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &st);
    curl_slist_free_all(hd);
    curl_easy_cleanup(h);
    if (answer)
        *answer = r.body.buf ? r.body.buf : xstrdup("");
    else
        strbuf_free(&r.body);
    return st;
}

/* A TCP connection to port from source address src (127.0.0.x). */
static int connect_from(const char *src, int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in me = {.sin_family = AF_INET};
    inet_pton(AF_INET, src, &me.sin_addr);
    assert_int_equal(bind(fd, (struct sockaddr *)&me, sizeof me), 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    return fd;
}

static long log_size(void)
{
    FILE *f = fopen(logpath, "r");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fclose(f);
    return n;
}

/* Lines of the log after offset that contain needle. */
static int log_lines_with(long offset, const char *needle)
{
    FILE *f = fopen(logpath, "r");
    assert_non_null(f);
    fseek(f, offset, SEEK_SET);
    char line[8192];
    int n = 0;
    while (fgets(line, sizeof line, f))
        n += strstr(line, needle) != NULL;
    fclose(f);
    return n;
}

/* The secret in the URL path (plain and %-escaped) is kept nowhere: not in
 * tds.inbox.path, not in the reject reason, not in the log. */
static void test_secret_in_path(void **state)
{
    (void)state;
    long long before = scalar("SELECT coalesce(max(id), 0) FROM tds.inbox");
    const char *ok = "{\"item\":{\"item_id\":\"6001\"}}";
    /* With the secret in the header too: a 404 (no such entity), stored. */
    assert_int_equal(post("/webhooks/zoho/" SECRET, "application/json", ok, 0), 404);
    assert_int_equal(post("/webhooks/zoho/x" SECRET "x", "application/json", ok, 0), 404);
    /* Only in the path: 401. */
    assert_int_equal(post("/webhooks/zoho/items/" SECRET, "application/json", ok, NO_SECRET),
                     401);
    /* %-escaped ("W" is %57). */
    assert_int_equal(post("/webhooks/zoho/%57h00kSecretAbc123", "application/json", ok, 0), 404);
    char sql[512];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM tds.inbox WHERE id > %lld", before);
    for (int i = 0; i < 50 && scalar(sql) < 4; i++)
        usleep(20 * 1000); /* the 401's audit row is written on the side */
    assert_int_equal(scalar(sql), 4);
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM tds.inbox WHERE id > %lld AND path LIKE '%%<redacted>%%'"
             " AND strpos(path, '" SECRET "') = 0"
             " AND strpos(coalesce(reject_reason, ''), '" SECRET "') = 0",
             before);
    assert_int_equal(scalar(sql), 4);
}

/* 40 unauthenticated 1 MiB posts: 401s, each answered before its body is
 * read, and the inbox keeps small audit rows (at most HTTP_AUDIT_PER_S a
 * second), never a body. */
static void test_unauthenticated_kept_small(void **state)
{
    (void)state;
    long long before = scalar("SELECT coalesce(max(id), 0) FROM tds.inbox");
    size_t n = WEBHOOK_MAX_BODY;
    char *body = xmalloc(n + 1);
    unsigned rnd = 12345; /* letters that do not compress */
    for (size_t i = 0; i < n; i++) {
        rnd = rnd * 1103515245u + 12345u;
        body[i] = (char)('a' + (rnd >> 16) % 26);
    }
    const char *head = "{\"item\":{\"item_id\":\"7001\",\"pad\":\"";
    memcpy(body, head, strlen(head));
    memcpy(body + n - 3, "\"}}", 3);
    body[n] = '\0';
    struct resp r;
    long long t0 = now_ms();
    int n401 = 0;
    for (int i = 0; i < 40; i++) {
        int flags = i % 4 == 0 ? WRONG_CASE : i % 4 == 1 ? NO_SIG : i % 4 == 2 ? SHORT_SIG
                                                                              : NO_SECRET;
        /* curl waits 1 s for "100 Continue", then sends the body anyway: a
         * slow server's 401 (and close) may then cut it off. */
        request(srv, "POST", "/webhooks/zoho/items", "application/json", body, n, flags | CUT_OK,
                &r);
        if (r.status != 0)
            assert_int_equal(r.status, 401);
        n401 += r.status == 401;
        strbuf_free(&r.body);
    }
    long long took = now_ms() - t0;
    assert_true(n401 >= 30);
    usleep(300 * 1000);
    char sql[512];
    snprintf(sql, sizeof sql,
             "SELECT coalesce(sum(pg_column_size(i.*)), 0) FROM tds.inbox i WHERE id > %lld",
             before);
    long long bytes = scalar(sql);
    print_message("40 unauthenticated 1 MiB posts in %lld ms left %lld bytes in tds.inbox\n", took,
                  bytes);
    assert_true(bytes < 100 * 1000);
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM tds.inbox WHERE id > %lld AND (coalesce(length(body), 0) > 0"
             " OR headers <> '{}'::jsonb OR http_status <> 401 OR body_size <> %zu)",
             before, n);
    assert_int_equal(scalar(sql), 0);
    snprintf(sql, sizeof sql, "SELECT count(*) FROM tds.inbox WHERE id > %lld", before);
    long long rows = scalar(sql);
    assert_true(rows >= 1 && rows <= 40);
    free(body);

    /* A body announced without "Expect: 100-continue" is not waited for:
     * the 401 comes as soon as the headers are in. */
    int fd = connect_to(http_server_port(srv));
    const char *req = "POST /webhooks/zoho/items HTTP/1.1\r\nHost: x\r\n"
                      "Content-Type: application/json\r\nContent-Length: 1048576\r\n\r\n{";
    assert_int_equal(send(fd, req, strlen(req), 0), (ssize_t)strlen(req));
    struct pollfd p = {.fd = fd, .events = POLLIN};
    assert_int_equal(poll(&p, 1, 1000), 1);
    char got[64] = {0};
    assert_true(recv(fd, got, sizeof got - 1, 0) > 12);
    assert_int_equal(strncmp(got, "HTTP/1.1 401", 12), 0);
    close(fd);
    sent -= 40; /* not every one leaves a row */
    sleep(2); /* let the audit bucket refill for the tests after this one */
}

/* Connections refused by the limits are logged once, then counted in one
 * summary line, not a line each. */
static void test_refusals_logged(void **state)
{
    (void)state;
    struct config_loaded c2;
    struct http_server *s = start_side(&c2, 64, 16, 0, NULL);
    int port = http_server_port(s);
    long off = log_size();
    /* 70 connections from one address: at least 14 over any per-address limit. */
    int fds[70];
    for (int i = 0; i < 70; i++)
        fds[i] = connect_from("127.0.0.8", port);
    int refused = 0;
    for (int i = 0; i < 70; i++)
        refused += closed_within(fds[i], 50);
    for (int i = 0; i < 70; i++)
        close(fds[i]);
    http_server_stop(s); /* writes the last summary */
    config_loaded_free(&c2);
    int first = log_lines_with(off, "http: Server reached");
    int summary = log_lines_with(off, "libmicrohttpd said");
    print_message("refusals: %d, log lines: %d, summaries: %d\n", refused, first, summary);
    assert_true(refused >= 14);
    assert_true(first >= 1 && first <= 2);
    assert_true(summary >= 1 && summary <= 2);
}

/* 80 slow clients from 5 addresses (16 each: not stopped by the per-address
 * limit) hold every connection slot; a webhook and /health still answer
 * within 2 s. */
static void test_slowloris(void **state)
{
    (void)state;
    struct config_loaded c2;
    struct http_server *s = start_side(&c2, 64, 16, 0, NULL); /* idle timeout 10 s */
    int port = http_server_port(s);
    long off = log_size();
    int fds[80];
    char src[16];
    for (int i = 0; i < 80; i++) {
        snprintf(src, sizeof src, "127.0.0.%d", 2 + i % 5);
        fds[i] = connect_from(src, port);
        assert_int_equal(send(fds[i], "POST /webhooks/zoho/items HTTP/1.1\r\nHo", 38, 0), 38);
    }
    long long ms;
    char *ans = NULL;
    const char *b = "{\"item\":{\"item_id\":\"8001\"}}";
    long st = timed(s, "POST", "/webhooks/zoho/items", b, 2000, &ms, NULL);
    print_message("webhook under 80 slow connections: %ld in %lld ms\n", st, ms);
    assert_int_equal(st, 202);
    st = timed(s, "GET", "/health", NULL, 2000, &ms, &ans);
    print_message("/health under 80 slow connections: %ld in %lld ms\n", st, ms);
    assert_true(st == 200 || st == 503);
    assert_non_null(strstr(ans, "\"status\""));
    free(ans);
    for (int i = 0; i < 80; i++)
        close(fds[i]);
    http_server_stop(s); /* writes the last summary */
    config_loaded_free(&c2);
    assert_int_equal(log_lines_with(off, "slow connections closed to keep room"), 1);
}

/* A client trickling its headers a byte at a time (never idle) is cut off
 * at webhooks.request_timeout_seconds. */
static void test_request_deadline(void **state)
{
    (void)state;
    struct config_loaded c2;
    struct http_server *s = start_side(&c2, 0, 0, 2, NULL);
    int fd = connect_to(http_server_port(s));
    const char *req = "POST /webhooks/zoho/items HTTP/1.1\r\nHost: x\r\nX-Pad: aaaaaaaaaaaaaaaaaaaaaaa"
                      "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    long long t0 = now_ms(), closed_at = 0;
    for (size_t i = 0; i < strlen(req) && now_ms() - t0 < 6000; i++) {
        if (send(fd, req + i, 1, MSG_NOSIGNAL) != 1 || closed_within(fd, 250)) {
            closed_at = now_ms() - t0;
            break;
        }
    }
    print_message("trickling client closed after %lld ms\n", closed_at);
    assert_true(closed_at >= 1500 && closed_at <= 3500);
    close(fd);
    http_server_stop(s);
    config_loaded_free(&c2);
}

/* /health answers within a second, "down" with the reason, while the table
 * it reads is locked, even with scrapes of /metrics stuck on it too (they
 * must not hold the listener's threads); all recover once the lock is gone. */
static void test_health_db_hung(void **state)
{
    (void)state;
    PGconn *locker = pgtest_connect();
    pgtest_exec(locker, "BEGIN");
    pgtest_exec(locker, "LOCK TABLE tds.engines IN ACCESS EXCLUSIVE MODE");
    int scrapes[8];
    const char *get = "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n";
    for (int i = 0; i < 8; i++) {
        scrapes[i] = connect_to(http_server_port(srv));
        assert_int_equal(send(scrapes[i], get, strlen(get), 0), (ssize_t)strlen(get));
    }
    usleep(200 * 1000);
    long long ms;
    char *ans = NULL;
    long st = timed(srv, "GET", "/health", NULL, 3000, &ms, &ans);
    print_message("/health with tds.engines locked: %ld in %lld ms: %s\n", st, ms, ans);
    assert_int_equal(st, 503);
    assert_true(ms < 1000);
    assert_non_null(strstr(ans, "did not answer"));
    free(ans);
    /* A second one while the first check is still stuck. */
    st = timed(srv, "GET", "/health", NULL, 3000, &ms, NULL);
    assert_int_equal(st, 503);
    assert_true(ms < 1000);
    pgtest_exec(locker, "ROLLBACK");
    PQfinish(locker);
    for (int i = 0; i < 8; i++) {
        struct pollfd p = {.fd = scrapes[i], .events = POLLIN};
        assert_int_equal(poll(&p, 1, 5000), 1);
        char got[64] = {0};
        assert_true(recv(scrapes[i], got, sizeof got - 1, 0) > 12);
        assert_int_equal(strncmp(got, "HTTP/1.1 200", 12), 0);
        close(scrapes[i]);
    }
    st = timed(srv, "GET", "/health", NULL, 3000, &ms, &ans);
    assert_true(st == 200 || st == 503);
    assert_null(strstr(ans, "did not answer"));
    free(ans);
}

/* The value of the sample named key (name and labels) in an exposition;
 * fails the test when there is none. */
static double metric_value(const char *text, const char *key)
{
    size_t n = strlen(key);
    for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
        if (strncmp(p, key, n) == 0 && p[n] == ' ')
            return strtod(p + n + 1, NULL);
    fail_msg("/metrics lacks %s", key);
    return 0;
}

static char *scrape(struct http_server *s)
{
    struct resp r;
    request(s, "GET", "/metrics", NULL, NULL, 0, 0, &r);
    assert_int_equal(r.status, 200);
    return r.body.buf; /* the caller frees */
}

/* Metrics mean what they say (issue 16 point 12): counters do not go down
 * when the rows behind them are pruned; the new gauges; tds_leader is 1 on
 * exactly one of two engines, and only that one exports the fleet's
 * figures. */
static void test_metrics_semantics(void **state)
{
    (void)state;
    pgtest_exec(db, "INSERT INTO tds.api_usage (minute, instance, endpoint, status, calls) VALUES"
                    " (date_trunc('minute', now()) - interval '60 days', 'e1', 'GET /gone',"
                    " 200, 4)");
    pgtest_exec(db, "INSERT INTO tds.sync_runs (run_type, entity_type, trigger, status,"
                    " started_at, finished_at, succeeded) VALUES"
                    " ('full', 'vendorpayments', 'manual', 'completed', now() - interval"
                    "  '100 days', now() - interval '100 days', 3),"
                    " ('full', 'vendorpayments', 'manual', 'completed', now() - interval"
                    "  '99 days', now() - interval '99 days', 5)");
    pgtest_exec(db, "INSERT INTO tds.dead_letter (entity_type, zoho_id, operation,"
                    " failure_reason, resolved, resolved_at, resolution) VALUES"
                    " ('vendorpayments', 'gone', 'upsert', 'x', true,"
                    " now() - interval '60 days', 'discarded')");
    pgtest_exec(db, "INSERT INTO tds.sync_queue (entity_type, zoho_id, status, created_at)"
                    " VALUES ('vendorpayments', 'waits', 'pending', now() - interval '120 s')");
    static const char *const counters[] = {
        "tds_api_calls_total{endpoint=\"GET /gone\",status=\"200\"}",
        "tds_items_synced_total{entity=\"vendorpayments\",result=\"ok\"}",
        "tds_dlq_moves_total",
    };
    double before[3];
    char *text = scrape(srv);
    for (int i = 0; i < 3; i++)
        before[i] = metric_value(text, counters[i]);
    assert_true(before[0] == 4 && before[1] == 8 && before[2] >= 1);
    double oldest = metric_value(text, "tds_queue_oldest_pending_seconds{entity=\"vendorpayments\"}");
    assert_true(oldest >= 120 && oldest < 300);
    double last = metric_value(
        text, "tds_last_success_timestamp_seconds{entity=\"vendorpayments\",kind=\"full\"}");
    double want = (double)pgtest_scalar(db, "SELECT floor(extract(epoch FROM max(finished_at)))"
                                            " FROM tds.sync_runs WHERE entity_type ="
                                            " 'vendorpayments' AND status = 'completed'");
    assert_true(last == want);
    free(text);

    struct prune_policy pp = {.queue_days = 30, .events_days = 30, .inbox_days = 30,
                              .runs_days = 30, .api_usage_days = 30, .batch_size = 100,
                              .max_batches = 10};
    struct prune_result pr;
    char *err = NULL;
    assert_int_equal(queue_prune(db, &pp, &pr, &err), 0);
    assert_true(pr.rows[PRUNE_API_USAGE] >= 1 && pr.rows[PRUNE_RUNS] >= 1 &&
                pr.rows[PRUNE_DEAD_LETTER] >= 1);
    text = scrape(srv);
    for (int i = 0; i < 3; i++)
        if (metric_value(text, counters[i]) != before[i])
            fail_msg("%s went from %g to %g after a prune", counters[i], before[i],
                     metric_value(text, counters[i]));
    free(text);
    pgtest_exec(db, "DELETE FROM tds.sync_queue WHERE zoho_id = 'waits'");

    /* two engines: one leads, and only it exports the fleet's figures */
    struct config_loaded c2;
    pgtest_config(&c2);
    c2.cfg.engine.workers = 1;
    c2.cfg.engine.poll_interval_ms = 100;
    c2.cfg.engine.heartbeat_seconds = 1;
    c2.cfg.schedule.enabled = false;
    struct engine *e[2] = {start_engine(&c2, "wh-e1"), start_engine(&c2, "wh-e2")};
    struct config_loaded hc[2];
    struct http_server *hs[2];
    for (int i = 0; i < 2; i++) {
        struct http_context ctx = {.engine = e[i], .instance = i ? "wh-e2" : "wh-e1"};
        hs[i] = start_side(&hc[i], 0, 0, 0, &ctx);
    }
    long long t0 = now_ms();
    for (;;) {
        struct engine_status a, b;
        engine_status(e[0], &a);
        engine_status(e[1], &b);
        if (a.leader || b.leader)
            break;
        if (now_ms() - t0 > 15000)
            fail_msg("no engine leads after 15 s");
        sleep_ms(100);
    }
    for (int round = 0; round < 10; round++) {
        int leaders = 0;
        for (int i = 0; i < 2; i++) {
            text = scrape(hs[i]);
            double l = metric_value(text, "tds_leader");
            assert_true(l == 0 || l == 1);
            leaders += (int)l;
            bool fleet = strstr(text, "\ntds_queue_depth{") != NULL;
            if (fleet != (l == 1))
                fail_msg("engine %d: tds_leader %g but fleet figures %s", i, l,
                         fleet ? "exported" : "missing");
            assert_non_null(strstr(text, "\ntds_webhooks_total{")); /* its own: always */
            if (round == 0)
                check_metrics_text(text);
            free(text);
        }
        assert_int_equal(leaders, 1);
        sleep_ms(100);
    }
    for (int i = 0; i < 2; i++) {
        http_server_stop(hs[i]);
        config_loaded_free(&hc[i]);
    }
    stop_engine(e[0]);
    stop_engine(e[1]);
    config_loaded_free(&c2);
}

int main(void)
{
    pgtest_require();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_accepted_and_queued),
        cmocka_unit_test(test_duplicates_fold),
        cmocka_unit_test(test_batch_semantics),
        cmocka_unit_test(test_rejections),
        cmocka_unit_test(test_size_limit),
        cmocka_unit_test(test_health),
        cmocka_unit_test(test_metrics),
        cmocka_unit_test(test_database_unreachable),
        cmocka_unit_test(test_refuses_open_non_loopback),
        cmocka_unit_test(test_connection_limits),
        cmocka_unit_test(test_secret_in_path),
        cmocka_unit_test(test_unauthenticated_kept_small),
        cmocka_unit_test(test_refusals_logged),
        cmocka_unit_test(test_slowloris),
        cmocka_unit_test(test_request_deadline),
        cmocka_unit_test(test_health_db_hung),
        cmocka_unit_test(test_no_secrets_stored_or_logged),
        cmocka_unit_test(test_metrics_semantics),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
