/*
 * test_queue.c: the queue and the dead-letter queue against a real
 * PostgreSQL: folding, the default upsert (older never overwrites newer,
 * locations, events), one bad item failing alone, retries with backoff,
 * dead-lettering (at once for bad payloads, after max_attempts otherwise),
 * DLQ retry / retry matching / discard, where payloads are kept
 * (tds.queue_payloads, or a row's own), a record appearing while a batch
 * writes it, pause and resume; the bulk apply
 * (payloads mapped in SQL) storing exactly what map.c stores, and which
 * items go to the refetch handler; errors never loop (issue 17 point 3): an
 * error text PostgreSQL would refuse is stored valid and bounded, a refused
 * failure row or a batch that always fails in the database still counts
 * the attempts and dead-letters, and a handler that fails fails alone, one
 * call per attempt; retention (issue 16 point 10): old rows go in bounded
 * batches, what is still needed stays, what went stays counted.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "engine_testlib.h"
#include "tds/alerts.h"
#include "tds/apply.h"
#include "tds/entity.h"
#include "tds/metrics.h"
#include "tds/queue.h"

static struct config_loaded cl;
static PGconn *db;

static void enq(const char *entity, long long id, const char *payload, int prio, long long *qid)
{
    char ids[24];
    snprintf(ids, sizeof ids, "%lld", id);
    struct queue_enqueue_opts o = {.priority = prio, .max_attempts = 3};
    char *err = NULL;
    if (queue_enqueue(db, entity, ids, QOP_UPSERT, payload, &o, qid, &err) != 0)
        fail_msg("enqueue: %s", err);
}

static void test_fold(void **state)
{
    (void)state;
    char *a = make_item(1, "2024-03-01T10:00:00+0000", "first", 1);
    char *b = make_item(1, "2024-03-02T10:00:00+0000", "second", 2);
    long long q1 = 0, q2 = 0;
    enq("items", 1, a, 3, &q1);
    enq("items", 1, b, 7, &q2);
    assert_int_equal(q1, q2);
    assert_int_equal(pgtest_scalar(db, "SELECT count(*) FROM tds.sync_queue WHERE zoho_id = '1'"),
                     1);
    assert_int_equal(pgtest_scalar(db, "SELECT priority FROM tds.sync_queue WHERE zoho_id = '1'"),
                     7);
    assert_int_equal(pgtest_scalar(db, "SELECT (p.payload->>'stock_on_hand')::int"
                                       " FROM tds.sync_queue q"
                                       " JOIN tds.queue_payloads p ON p.queue_id = q.id"
                                       " WHERE zoho_id = '1' AND q.payload IS NULL"),
                     2);
    char *err = NULL;
    assert_int_equal(queue_set_priority(db, q1, 11, &err), -1);
    free(err);
    assert_int_equal(queue_set_priority(db, q1, 9, NULL), 0);
    free(a);
    free(b);
}

static void test_apply_and_newer_wins(void **state)
{
    (void)state;
    struct engine *e = start_engine(&cl, "tq1");
    /* item 1 is queued (from test_fold), with the newer payload. */
    assert_int_equal(
        wait_scalar(db, "SELECT count(*) FROM zoho.items WHERE item_id = '1'", 1, 10000), 1);
    assert_int_equal(pgtest_scalar(db, "SELECT stock_on_hand FROM zoho.items WHERE item_id = '1'"),
                     2);
    assert_int_equal(
        pgtest_scalar(db, "SELECT count(*) FROM zoho.item_locations WHERE item_id = '1'"), 2);
    /* An older payload arrives later: it must not overwrite. */
    char *old = make_item(1, "2024-02-01T10:00:00+0000", "older", 99);
    enq("items", 1, old, 5, NULL);
    free(old);
    assert_int_equal(wait_scalar(db,
                                 "SELECT count(*) FROM tds.sync_queue WHERE status <> 'completed'",
                                 0, 10000),
                     0);
    assert_int_equal(pgtest_scalar(db, "SELECT stock_on_hand FROM zoho.items WHERE item_id = '1'"),
                     2);
    /* A newer one does, and drops a location it no longer has. */
    char *newer =
        xasprintf("{\"item_id\":\"1\",\"name\":\"third\",\"stock_on_hand\":\"5\","
                  "\"last_modified_time\":\"2024-04-01T10:00:00+0000\","
                  "\"warehouses\":[{\"warehouse_id\":\"901\",\"warehouse_name\":\"Depot\","
                  "\"warehouse_stock_on_hand\":\"5\"}]}");
    enq("items", 1, newer, 5, NULL);
    free(newer);
    assert_int_equal(
        wait_scalar(db, "SELECT stock_on_hand FROM zoho.items WHERE item_id = '1'", 5, 10000), 5);
    assert_int_equal(
        pgtest_scalar(db, "SELECT count(*) FROM zoho.item_locations WHERE item_id = '1'"), 1);
    assert_int_equal(
        pgtest_scalar(db, "SELECT stock_on_hand FROM zoho.item_locations WHERE item_id = '1'"), 5);
    assert_int_equal(
        pgtest_scalar(db, "SELECT count(*) FROM tds.events WHERE type = 'tds.entity.create'"
                          " AND entity_id = '1'"),
        1);
    assert_int_equal(
        pgtest_scalar(db, "SELECT count(*) FROM tds.events WHERE type = 'tds.entity.update'"
                          " AND entity_id = '1'"),
        1);
    /* delete marks */
    char *err = NULL;
    assert_int_equal(queue_enqueue(db, "items", "1", QOP_DELETE, NULL, NULL, NULL, &err), 0);
    assert_int_equal(wait_scalar(db,
                                 "SELECT count(*) FROM zoho.items WHERE item_id = '1'"
                                 " AND deleted_at IS NOT NULL",
                                 1, 10000),
                     1);
    assert_int_equal(wait_scalar(db,
                                 "SELECT count(*) FROM tds.events WHERE type = 'tds.queue.empty'",
                                 1, 10000) >= 1,
                     1);
    stop_engine(e);
}

/* A handler for entity "flaky": fails for ids ending in 3, fatal for ids ending in 4.
 * flaky_calls[id]: how often it was called for id (below 100). */
static int flaky_calls[100];
static enum item_result flaky(PGconn *c, const struct queue_item *it, void *arg, char **err)
{
    (void)arg;
    long id = strtol(it->zoho_id, NULL, 10);
    if (id >= 0 && id < 100)
        __atomic_add_fetch(&flaky_calls[id], 1, __ATOMIC_SEQ_CST);
    size_t n = strlen(it->zoho_id);
    char last = it->zoho_id[n - 1];
    const char *p[] = {it->zoho_id};
    PGresult *r =
        PQexecParams(c, "INSERT INTO flaky_applied VALUES ($1)", 1, NULL, p, NULL, NULL, 0);
    PQclear(r);
    if (last == '3') {
        *err = xstrdup("upstream timeout (simulated)");
        return ITEM_RETRY;
    }
    if (last == '4') {
        *err = xstrdup("cannot ever work (simulated)");
        return ITEM_FATAL;
    }
    return ITEM_OK;
}

static void test_bad_item_fails_alone_retry_dlq(void **state)
{
    (void)state;
    pgtest_exec(db, "CREATE TABLE flaky_applied (id text)");
    engine_register_item_handler("flaky", NULL, flaky, NULL);
    /* One batch: good items, a retrying one, a fatal one, a bad item payload. */
    for (int i = 10; i <= 14; i++)
        enq("flaky", i, "{}", 5, NULL);
    enq("items", 20, "{\"item_id\":\"20\",\"rate\":\"abc\"}", 5, NULL);
    enq("items", 21, "\"not an object\"", 5, NULL);
    char *good = make_item(22, "2024-03-01T10:00:00+0000", "good", 3);
    enq("items", 22, good, 5, NULL);
    free(good);
    struct engine *e = start_engine(&cl, "tq2");
    assert_int_equal(
        wait_scalar(db, "SELECT count(*) FROM zoho.items WHERE item_id = '22'", 1, 10000), 1);
    /* good flaky items applied exactly once; the failing ones' writes rolled back */
    assert_int_equal(wait_scalar(db,
                                 "SELECT count(*) FROM tds.sync_queue WHERE entity_type = 'flaky'"
                                 " AND status = 'completed'",
                                 3, 10000),
                     3);
    assert_int_equal(
        pgtest_scalar(db, "SELECT count(*) FROM flaky_applied WHERE id IN ('10','11','12')"), 3);
    assert_int_equal(pgtest_scalar(db, "SELECT count(DISTINCT id) FROM flaky_applied"), 3);
    /* bad payloads and the fatal item: dead at once, with the reason */
    assert_int_equal(
        wait_scalar(db, "SELECT count(*) FROM tds.dead_letter WHERE zoho_id IN ('14','20','21')", 3,
                    10000),
        3);
    assert_int_equal(pgtest_scalar(db, "SELECT count(*) FROM tds.dead_letter WHERE zoho_id = '20'"
                                       " AND failure_reason LIKE '%rate%' AND attempts = 1"),
                     1);
    assert_int_equal(pgtest_scalar(db, "SELECT count(*) FROM tds.dead_letter WHERE zoho_id = '21'"
                                       " AND failure_reason LIKE '%object%'"),
                     1);
    /* item 13 retries with backoff (1 s), then dies after 3 attempts with its history */
    assert_int_equal(
        wait_scalar(db, "SELECT count(*) FROM tds.dead_letter WHERE zoho_id = '13'", 1, 15000), 1);
    assert_int_equal(pgtest_scalar(db,
                                   "SELECT jsonb_array_length(error_history) FROM tds.dead_letter"
                                   " WHERE zoho_id = '13'"),
                     3);
    assert_int_equal(pgtest_scalar(db, "SELECT attempts FROM tds.dead_letter WHERE zoho_id = '13'"),
                     3);
    assert_int_equal(
        pgtest_scalar(db, "SELECT count(*) FROM tds.events WHERE type = 'tds.retry.scheduled'"
                          " AND entity_id = '13'"),
        2);
    assert_int_equal(
        pgtest_scalar(db, "SELECT count(*) FROM tds.events WHERE type = 'tds.deadletter.added'"),
        4);
    assert_int_equal(pgtest_scalar(db, "SELECT count(*) FROM flaky_applied WHERE id = '13'"), 0);
    /* one handler call per attempt */
    for (int i = 10; i <= 14; i++)
        assert_int_equal(__atomic_load_n(&flaky_calls[i], __ATOMIC_SEQ_CST), i == 13 ? 3 : 1);

    /* DLQ: retry one (now the handler lets it through), retry matching, discard */
    engine_clear_handlers();
    engine_register_item_handler("flaky", NULL, flaky, NULL);
    long long dl14 = pgtest_scalar(db, "SELECT id FROM tds.dead_letter WHERE zoho_id = '14'");
    long long dl20 = pgtest_scalar(db, "SELECT id FROM tds.dead_letter WHERE zoho_id = '20'");
    char *err = NULL;
    assert_int_equal(dlq_discard(db, dl20, "tester", "bad data upstream", &err), 0);
    assert_int_equal(dlq_discard(db, dl20, "tester", "again", &err), -1);
    free(err);
    err = NULL;
    assert_int_equal(
        pgtest_scalar(db, "SELECT count(*) FROM tds.dead_letter WHERE resolution = 'discarded'"
                          " AND resolved_by = 'tester' AND resolution_note = 'bad data upstream'"),
        1);
    long long qid = 0;
    assert_int_equal(dlq_retry(db, dl14, "tester", &qid, &err), 0);
    assert_true(qid > 0);
    /* it dies again (fatal), making a new open row */
    assert_int_equal(
        wait_scalar(db, "SELECT count(*) FROM tds.dead_letter WHERE zoho_id = '14'", 2, 10000), 2);
    long long n = 0;
    assert_int_equal(dlq_retry_matching(db, "flaky", "TIMEOUT", "tester", &n, &err), 0);
    assert_int_equal(n, 1);
    assert_int_equal(
        pgtest_scalar(db,
                      "SELECT count(*) FROM tds.dead_letter WHERE NOT resolved AND zoho_id = '13'"),
        0);
    /* matching nothing */
    assert_int_equal(dlq_retry_matching(db, "contacts", NULL, "tester", &n, &err), 0);
    assert_int_equal(n, 0);
    stop_engine(e);
    engine_clear_handlers();
}

/* A handler whose error text is not valid UTF-8 and far too long: stray
 * bytes, then 3000 bytes of two-byte characters. */
static int mojibake_calls;
static enum item_result mojibake(PGconn *c, const struct queue_item *it, void *arg, char **err)
{
    (void)c, (void)it, (void)arg;
    __atomic_add_fetch(&mojibake_calls, 1, __ATOMIC_SEQ_CST);
    struct strbuf sb = {0};
    strbuf_puts(&sb, "upstream said \xff\xfe\xc3: ");
    for (int i = 0; i < 1500; i++)
        strbuf_puts(&sb, "\xd8\xb9"); /* U+0639 */
    *err = strbuf_detach(&sb);
    return ITEM_RETRY;
}

/*
 * Errors never loop (issue 17 point 3): an error text PostgreSQL would
 * refuse (invalid UTF-8, cut mid-character) is stored valid and bounded,
 * so the item counts its attempts, one handler call each, and dead-letters.
 * Before, the failure row was refused, the batch rolled back and the item
 * was claimed again at once, forever.
 */
static void test_unstorable_error_dead_letters(void **state)
{
    (void)state;
    engine_register_item_handler("mojibake", NULL, mojibake, NULL);
    enq("mojibake", 31, "{}", 5, NULL);
    struct engine *e = start_engine(&cl, "tq-utf8");
    long long dead = wait_scalar(
        db, "SELECT count(*) FROM tds.dead_letter WHERE entity_type = 'mojibake'", 1, 15000);
    stop_engine(e);
    engine_clear_handlers();
    assert_int_equal(dead, 1);
    assert_int_equal(__atomic_load_n(&mojibake_calls, __ATOMIC_SEQ_CST), 3);
    assert_int_equal(pgtest_scalar(db, "SELECT count(*) FROM tds.dead_letter"
                                       " WHERE entity_type = 'mojibake' AND attempts = 3"
                                       " AND failure_reason LIKE 'upstream said \uFFFD\uFFFD\uFFFD: \u0639%'"
                                       " AND octet_length(failure_reason) < 2100"
                                       " AND failure_reason LIKE '%\u0639...%'"),
                     1);
}

/*
 * A batch of handler items (refetches) where one fails: it fails alone, and
 * the others are called once, not again by a replay of the batch (for a
 * refetch, a second Zoho call per item for every attempt of the bad one).
 */
static void test_handler_fails_alone(void **state)
{
    (void)state;
    pgtest_exec(db, "CREATE TABLE IF NOT EXISTS flaky_applied (id text)");
    engine_register_item_handler("flaky", NULL, flaky, NULL);
    enq("flaky", 50, "{}", 5, NULL);
    enq("flaky", 51, "{}", 5, NULL);
    enq("flaky", 53, "{}", 5, NULL);
    struct engine *e = start_engine(&cl, "tq-alone");
    long long dead =
        wait_scalar(db, "SELECT count(*) FROM tds.dead_letter WHERE zoho_id = '53'", 1, 15000);
    stop_engine(e);
    engine_clear_handlers();
    assert_int_equal(dead, 1);
    assert_int_equal(pgtest_scalar(db, "SELECT count(*) FROM tds.sync_queue WHERE zoho_id IN"
                                       " ('50', '51') AND status = 'completed'"),
                     2);
    assert_int_equal(__atomic_load_n(&flaky_calls[50], __ATOMIC_SEQ_CST), 1);
    assert_int_equal(__atomic_load_n(&flaky_calls[51], __ATOMIC_SEQ_CST), 1);
    assert_int_equal(__atomic_load_n(&flaky_calls[53], __ATOMIC_SEQ_CST), 3);
    assert_int_equal(pgtest_scalar(db, "SELECT count(*) FROM flaky_applied WHERE id IN"
                                       " ('50', '51', '53')"),
                     2);
}

static enum item_result poison(PGconn *c, const struct queue_item *it, void *arg, char **err)
{
    (void)c, (void)arg;
    *err = xstrdup("poison: refused by the trigger");
    return str_eq(it->entity_type, "poison") ? ITEM_RETRY : ITEM_OK;
}

/*
 * Every failure path is bounded (issue 17 point 3), even those the worker
 * does not expect: a failure text PostgreSQL refuses (here a trigger) is
 * replaced by the refusal and counted; a batch that fails in the database
 * whatever the items do (here the run's counters) counts an attempt for
 * each item.  Both dead-letter after their 3 attempts; before, each was
 * claimed again at once, forever.
 */
static void test_failures_never_loop(void **state)
{
    (void)state;
    pgtest_exec(db, "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$"
                    " BEGIN IF TG_TABLE_NAME = 'sync_runs' THEN"
                    " RAISE EXCEPTION 'refused by a test trigger'; END IF;"
                    " IF NEW.last_error LIKE 'poison%' THEN"
                    " RAISE EXCEPTION 'refused by a test trigger'; END IF; RETURN NEW; END $$;"
                    " CREATE TRIGGER refuse BEFORE UPDATE ON tds.sync_queue FOR EACH ROW"
                    " EXECUTE FUNCTION refuse();"
                    " CREATE TRIGGER refuse BEFORE UPDATE ON tds.sync_runs FOR EACH ROW"
                    " WHEN (NEW.config ? 'poison') EXECUTE FUNCTION refuse()");
    long long run = pgtest_scalar(db, "INSERT INTO tds.sync_runs (run_type, trigger, status,"
                                      " config) VALUES ('items', 'cli', 'completed',"
                                      " '{\"poison\": true}') RETURNING id");
    engine_register_item_handler("poison", NULL, poison, NULL);
    engine_register_item_handler("runpoison", NULL, poison, NULL);
    enq("poison", 61, "{}", 5, NULL);
    struct queue_enqueue_opts o = {.max_attempts = 3, .run_id = run};
    char *err = NULL;
    if (queue_enqueue(db, "runpoison", "62", QOP_UPSERT, "{}", &o, NULL, &err) != 0)
        fail_msg("enqueue: %s", err);
    struct engine *e = start_engine(&cl, "tq-loop");
    long long dead = wait_scalar(
        db, "SELECT count(*) FROM tds.dead_letter WHERE entity_type IN ('poison', 'runpoison')", 2,
        20000);
    stop_engine(e);
    engine_clear_handlers();
    pgtest_exec(db, "DROP TRIGGER refuse ON tds.sync_queue; DROP TRIGGER refuse ON tds.sync_runs;"
                    " DROP FUNCTION refuse()");
    assert_int_equal(dead, 2);
    assert_int_equal(pgtest_scalar(db, "SELECT count(*) FROM tds.dead_letter"
                                       " WHERE entity_type = 'poison' AND attempts = 3"
                                       " AND failure_reason LIKE 'the error could not be recorded"
                                       " (%refused by a test trigger%'"),
                     1);
    assert_int_equal(pgtest_scalar(db, "SELECT count(*) FROM tds.dead_letter"
                                       " WHERE entity_type = 'runpoison' AND attempts = 3"
                                       " AND failure_reason LIKE 'the batch could not be applied:"
                                       " %refused by a test trigger%'"),
                     1);
}

static void test_move_to_dlq_and_retry_now(void **state)
{
    (void)state;
    pgtest_exec(db, "UPDATE tds.control SET value = 'true' WHERE key = 'paused'");
    long long q = 0;
    enq("contacts", 555, "{\"contact_id\":\"555\",\"contact_name\":\"ACME\"}", 5, &q);
    char *err = NULL;
    assert_int_equal(queue_retry_now(db, q, &err), -1); /* not retrying */
    free(err);
    err = NULL;
    assert_int_equal(queue_move_to_dlq(db, q, "tester", "operator said so", &err), 0);
    assert_int_equal(pgtest_scalar(db, "SELECT count(*) FROM tds.dead_letter WHERE zoho_id = '555'"
                                       " AND failure_reason LIKE 'operator said so%'"),
                     1);
    assert_int_equal(queue_move_to_dlq(db, q, "tester", "twice", &err), -1);
    free(err);
    pgtest_exec(db, "UPDATE tds.control SET value = 'false' WHERE key = 'paused'");
}

/* Fails every time (retry), saying whether it was given its payload. */
static enum item_result moody(PGconn *c, const struct queue_item *it, void *arg, char **err)
{
    (void)c;
    (void)arg;
    *err = xstrdup(it->payload && strstr(it->payload, "grumpy") ? "grumpy today (simulated)"
                                                                 : "no payload given");
    return ITEM_RETRY;
}

/* A record of "mood" longer than QUEUE_INLINE_MAX (caller frees). */
static char *big_mood(const char *mood)
{
    char pad[QUEUE_INLINE_MAX + 1];
    memset(pad, 'x', sizeof pad - 1);
    pad[sizeof pad - 1] = '\0';
    return xasprintf("{\"mood\":\"%s\",\"notes\":\"%s\"}", mood, pad);
}

/* Where payloads are (0011): tds's enqueue keeps a record in
 * tds.queue_payloads and a short payload in the row (a fold writes one
 * place and clears the other, "none" included); a row written by SQL keeps
 * its own.  Either way the handler, the DLQ and the console get it, and a
 * payload leaves with its item (prune, TRUNCATE). */
static void test_payload_homes(void **state)
{
    (void)state;
    char *err = NULL;
    struct queue_enqueue_opts o = {.priority = 5, .max_attempts = 10};
    long long q = 0, q2 = 0;
    char *calm = big_mood("calm"), *grumpy = big_mood("grumpy");
    assert_int_equal(queue_enqueue(db, "moody", "700", QOP_UPSERT, calm, &o, &q, &err), 0);
    assert_int_equal(pgtest_scalar(db, "SELECT count(*) FROM tds.sync_queue q JOIN"
                                       " tds.queue_payloads p ON p.queue_id = q.id WHERE"
                                       " q.zoho_id = '700' AND q.payload IS NULL"
                                       " AND p.payload->>'mood' = 'calm'"),
                     1);
    assert_int_equal(
        queue_enqueue(db, "moody", "700", QOP_UPSERT, "{\"mood\":\"short\"}", &o, &q2, &err), 0);
    assert_int_equal(q, q2);
    assert_int_equal(pgtest_scalar(db, "SELECT count(*) FROM tds.sync_queue q WHERE"
                                       " q.zoho_id = '700' AND q.payload->>'mood' = 'short'"
                                       " AND NOT EXISTS (SELECT 1 FROM tds.queue_payloads p"
                                       "   WHERE p.queue_id = q.id)"),
                     1);
    assert_int_equal(queue_enqueue(db, "moody", "700", QOP_UPSERT, calm, &o, &q2, &err), 0);
    assert_int_equal(queue_enqueue(db, "moody", "700", QOP_UPSERT, NULL, &o, &q2, &err), 0);
    assert_int_equal(q, q2);
    assert_int_equal(pgtest_scalar(db, "SELECT count(*) FROM tds.sync_queue q WHERE"
                                       " q.zoho_id = '700' AND (q.payload IS NOT NULL OR EXISTS"
                                       " (SELECT 1 FROM tds.queue_payloads p"
                                       "   WHERE p.queue_id = q.id))"),
                     0);
    /* rows written by SQL, payloads in them; a fold of a record by tds moves it */
    pgtest_exec(db, "INSERT INTO tds.sync_queue (entity_type, zoho_id, payload, max_attempts)"
                    " VALUES ('moody', '701', '{\"mood\":\"grumpy\"}', 10),"
                    " ('moody', '702', '{\"mood\":\"sleepy\"}', 10)");
    assert_int_equal(queue_enqueue(db, "moody", "702", QOP_UPSERT, grumpy, &o, &q2, &err), 0);
    assert_int_equal(pgtest_scalar(db, "SELECT count(*) FROM tds.sync_queue q JOIN"
                                       " tds.queue_payloads p ON p.queue_id = q.id WHERE"
                                       " q.zoho_id = '702' AND q.payload IS NULL"
                                       " AND p.payload->>'mood' = 'grumpy'"),
                     1);
    /* a payload written into a row by SQL takes the place of one kept beside it */
    assert_int_equal(queue_enqueue(db, "moody", "703", QOP_UPSERT, calm, &o, &q2, &err), 0);
    pgtest_exec(db, "UPDATE tds.sync_queue SET payload = '{\"mood\":\"edited\"}'"
                    " WHERE zoho_id = '703'");
    assert_int_equal(pgtest_scalar(db, "SELECT count(*) FROM tds.sync_queue q WHERE"
                                       " q.zoho_id = '703' AND q.payload->>'mood' = 'edited'"
                                       " AND NOT EXISTS (SELECT 1 FROM tds.queue_payloads p"
                                       "   WHERE p.queue_id = q.id)"),
                     1);
    free(calm);
    free(grumpy);
    /* the handler gets both */
    engine_register_item_handler("moody", NULL, moody, NULL);
    struct engine *e = start_engine(&cl, "tq-moody");
    assert_int_equal(wait_scalar(db,
                                 "SELECT count(*) FROM tds.sync_queue"
                                 " WHERE zoho_id IN ('701', '702')"
                                 " AND last_error LIKE 'grumpy today%'",
                                 2, 10000),
                     2);
    stop_engine(e);
    engine_clear_handlers();
    q = pgtest_scalar(db, "SELECT id FROM tds.sync_queue WHERE zoho_id = '702'");

    /* to the DLQ with it, and back into the queue (in the row) */
    assert_int_equal(queue_move_to_dlq(db, q, "tester", "for the test", &err), 0);
    char *sql = xasprintf("SELECT id FROM tds.dead_letter WHERE queue_id = %lld"
                    " AND payload->>'mood' = 'grumpy'",
                    q);
    long long dl = pgtest_scalar(db, sql);
    free(sql);
    assert_true(dl > 0);
    long long nq = 0;
    assert_int_equal(dlq_retry(db, dl, "tester", &nq, &err), 0);
    sql = xasprintf("SELECT count(*) FROM tds.sync_queue WHERE id = %lld AND status = 'pending'"
                    " AND payload->>'mood' = 'grumpy'",
                    nq);
    assert_int_equal(pgtest_scalar(db, sql), 1);
    free(sql);

    /* prune: an old dead item goes with its payload; the new one stays */
    sql = xasprintf("UPDATE tds.sync_queue SET updated_at = now() - interval '10 days'"
                    " WHERE id = %lld",
                    q);
    pgtest_exec(db, sql);
    free(sql);
    struct prune_policy pp = {.queue_days = 7, .events_days = 7, .inbox_days = 7,
                              .runs_days = 7, .api_usage_days = 7, .batch_size = 5000,
                              .max_batches = 10};
    struct prune_result pr;
    assert_int_equal(queue_prune(db, &pp, &pr, &err), 0);
    assert_true(pr.rows[PRUNE_QUEUE_DEAD] >= 1);
    sql = xasprintf("SELECT (SELECT count(*) FROM tds.sync_queue WHERE id = %lld)"
                    " + (SELECT count(*) FROM tds.queue_payloads WHERE queue_id = %lld)",
                    q, q);
    assert_int_equal(pgtest_scalar(db, sql), 0);
    free(sql);
    sql = xasprintf("SELECT count(*) FROM tds.sync_queue WHERE id = %lld", nq);
    assert_int_equal(pgtest_scalar(db, sql), 1);
    free(sql);

    /* TRUNCATE takes them along too */
    pgtest_exec(db, "INSERT INTO tds.queue_payloads SELECT id, '{}' FROM tds.sync_queue"
                    " ON CONFLICT DO NOTHING");
    assert_true(pgtest_scalar(db, "SELECT count(*) FROM tds.queue_payloads") > 0);
    pgtest_exec(db, "TRUNCATE tds.sync_queue");
    assert_int_equal(pgtest_scalar(db, "SELECT count(*) FROM tds.queue_payloads"), 0);
}

/* A record that appears between the batch's look and its write (another
 * engine, a sync): the batch's plain INSERT of new records fails on it,
 * and the batch is replayed item by item, where the upsert takes the newer
 * record.  Nothing lost, nothing older kept. */
static void test_new_record_race(void **state)
{
    (void)state;
    PGconn *other = pgtest_connect();
    pgtest_exec(other, "BEGIN");
    pgtest_exec(other, "INSERT INTO zoho.items (item_id, name, last_modified_time, raw)"
                       " VALUES ('901', 'from elsewhere', '2024-01-01T00:00:00Z', '{}')");
    char *rec = make_item(901, "2024-06-01T10:00:00+0000", "from the queue", 4);
    enq("items", 901, rec, 5, NULL);
    free(rec);
    long long replays = metrics_counter_get(METRIC_BATCHES_REPLAYED);
    struct engine *e = start_engine(&cl, "tq-race");
    /* the batch's INSERT waits for the other transaction's row */
    assert_int_equal(wait_scalar(db,
                                 "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type ="
                                 " 'Lock' AND query LIKE 'WITH done AS%'",
                                 1, 10000),
                     1);
    pgtest_exec(other, "COMMIT");
    PQfinish(other);
    assert_int_equal(wait_scalar(db,
                                 "SELECT count(*) FROM tds.sync_queue WHERE zoho_id = '901'"
                                 " AND status = 'completed'",
                                 1, 10000),
                     1);
    stop_engine(e);
    assert_int_equal(pgtest_scalar(db, "SELECT count(*) FROM zoho.items WHERE item_id = '901'"
                                       " AND name = 'from the queue'"),
                     1);
    assert_int_equal(
        pgtest_scalar(db, "SELECT count(*) FROM zoho.item_locations WHERE item_id = '901'"), 2);
    assert_true(metrics_counter_get(METRIC_BATCHES_REPLAYED) > replays);
}

static void test_pause_resume(void **state)
{
    (void)state;
    struct engine *e = start_engine(&cl, "tq3");
    char *err = NULL;
    assert_int_equal(control_set_paused(db, true, NULL, true, "tester", &err), 0);
    sleep_ms(1500);
    struct engine_status st;
    engine_status(e, &st);
    assert_true(st.paused_fleet);
    assert_int_equal(st.state, ENGINE_PAUSED);
    char *p = make_item(700, "2024-03-01T10:00:00+0000", "paused", 1);
    enq("items", 700, p, 5, NULL);
    free(p);
    sleep_ms(1000);
    assert_int_equal(pgtest_scalar(db, "SELECT count(*) FROM zoho.items WHERE item_id = '700'"), 0);
    assert_int_equal(pgtest_scalar(db, "SELECT count(*) FROM tds.engines WHERE instance = 'tq3'"
                                       " AND state = 'paused'"),
                     1);
    /* resume the fleet but pause this engine alone: still nothing */
    assert_int_equal(control_set_paused(db, false, "tq3", true, "tester", &err), 0);
    assert_int_equal(control_set_paused(db, true, NULL, false, "tester", &err), 0);
    sleep_ms(1000);
    assert_int_equal(pgtest_scalar(db, "SELECT count(*) FROM zoho.items WHERE item_id = '700'"), 0);
    assert_int_equal(control_set_paused(db, false, "nosuch", false, "tester", &err), -1);
    free(err);
    err = NULL;
    assert_int_equal(control_set_paused(db, false, "tq3", false, "tester", &err), 0);
    assert_int_equal(
        wait_scalar(db, "SELECT count(*) FROM zoho.items WHERE item_id = '700'", 1, 5000), 1);
    stop_engine(e);
    assert_int_equal(pgtest_scalar(db, "SELECT count(*) FROM tds.engines WHERE instance = 'tq3'"
                                       " AND state = 'stopped'"),
                     1);
}

/* Records as Zoho might send them; "@" stands for the id. */
static const char *const plain_records[] = {
    /* every column, numbers as numbers and as strings (blanks forgiven) */
    "{\"item_id\":\"@\",\"name\":\"Plain\",\"sku\":\"S-1\",\"status\":\"active\",\"rate\":12.50,"
    "\"item_type\":\"inventory\",\"product_type\":\"goods\",\"unit\":\"pcs\","
    "\"track_inventory\":true,\"stock_on_hand\":7,\"available_stock\":\"6\","
    "\"actual_available_stock\":\" 5.250 \",\"image_document_id\":\"\",\"image_name\":null,"
    "\"created_time\":\"2024-01-02T03:04:05+0530\",\"last_modified_time\":\"2024-01-02T03:04:05Z\"}",
    /* empty values, booleans as text, other time shapes, locations */
    "{\"item_id\":\"@\",\"name\":\"\",\"rate\":\"-3\",\"track_inventory\":\"false\","
    "\"stock_on_hand\":\".5\",\"available_stock\":\"\",\"created_time\":\"2024-01-02 03:04:05\","
    "\"last_modified_time\":\"2024-01-02T03:04:05-04:00\",\"locations\":[{\"location_id\":\"1\","
    "\"location_name\":\"A\",\"location_stock_on_hand\":\"2\"}]}",
    /* wrapped as GET /items/{id} answers; the id and a boolean as numbers */
    "{\"item\":{\"item_id\":@,\"track_inventory\":1,\"rate\":1.5e2,\"stock_on_hand\":0,"
    "\"last_modified_time\":\"2024-02-29T23:59:59+0000\"}}",
    /* text that needs escaping */
    "{\"item_id\":\"@\",\"track_inventory\":0,\"name\":\"\\u00dcn\\u00efcode \\u2603\","
    "\"sku\":\"quote\\\"back\\\\slash\",\"unit\":\"  spaced  \"}",
};
/* Values map.c takes that the bulk statement leaves to it. */
static const char *const unusual_records[] = {
    "{\"item_id\":\"@\",\"sku\":12345,\"name\":true,\"rate\":\"1e3\"}",
    "{\"item_id\":\"@\",\"created_time\":\"2024-01-02T03:04\","
    "\"last_modified_time\":\"2024-01-02T03:04:05.123+05:30\"}",
    "{\"item_id\":\"@\",\"unit\":{\"a\":1},\"stock_on_hand\":\"+4.\"}",
};

static char *with_id(const char *tmpl, long long id)
{
    struct strbuf sb = {0};
    for (const char *p = tmpl; *p; p++) {
        if (*p == '@')
            strbuf_printf(&sb, "%lld", id);
        else
            strbuf_putc(&sb, *p);
    }
    return strbuf_detach(&sb);
}

/* Queues records[i] as item base+i and applies it directly (map.c) as item
 * 90<base+i>; the engine drains the queue; the pairs must be equal. */
static void bulk_vs_map_c(const char *const *records, int n, long long base)
{
    const struct entity_desc *d = entity_find("items");
    for (int i = 0; i < n; i++) {
        char *q = with_id(records[i], base + i);
        enq("items", base + i, q, 5, NULL);
        free(q);
        char *direct = with_id(records[i], 900000 + base + i);
        cJSON *root = cJSON_Parse(direct);
        assert_non_null(root);
        cJSON *rec = cJSON_GetObjectItemCaseSensitive(root, "item");
        char *err = NULL;
        if (apply_record(db, d, cJSON_IsObject(rec) ? rec : root, 0, NULL, &err) != 0)
            fail_msg("direct apply of %s: %s", direct, err);
        cJSON_Delete(root);
        free(direct);
    }
    struct engine *e = start_engine(&cl, "tqbulk");
    char *sql = xasprintf("SELECT count(*) FROM tds.sync_queue WHERE zoho_id::bigint BETWEEN %lld"
                          " AND %lld AND status = 'completed'",
                          base, base + n - 1);
    assert_int_equal(wait_scalar(db, sql, n, 10000), n);
    free(sql);
    stop_engine(e);
    char *pairs = xasprintf(
        "SELECT count(*) FROM zoho.items a JOIN zoho.items b ON b.item_id = '90' || a.item_id"
        " WHERE a.item_id::bigint BETWEEN %lld AND %lld"
        " AND (to_jsonb(a) - '{item_id,raw,synced_at}'::text[])::text"
        "   = (to_jsonb(b) - '{item_id,raw,synced_at}'::text[])::text"
        " AND (a.raw - 'item_id') = (b.raw - 'item_id')",
        base, base + n - 1);
    assert_int_equal(pgtest_scalar(db, pairs), n);
    free(pairs);
}

static void test_bulk_mapping_matches_map_c(void **state)
{
    (void)state;
    long long replays = metrics_counter_get(METRIC_BATCHES_REPLAYED);
    bulk_vs_map_c(plain_records, (int)TDS_ARRAY_LEN(plain_records), 5001);
    /* plain records: applied in bulk, nothing replayed */
    assert_int_equal(metrics_counter_get(METRIC_BATCHES_REPLAYED), replays);
    assert_int_equal(pgtest_scalar(db, "SELECT count(*) FROM zoho.item_locations"
                                       " WHERE item_id IN ('5002', '905002')"),
                     2);
    assert_int_equal(pgtest_scalar(db, "SELECT count(*) FROM zoho.items WHERE item_id = '5001'"
                                       " AND actual_available_stock = 5.25 AND rate = 12.5"
                                       " AND created_time = '2024-01-01 21:34:05+00'"),
                     1);
    bulk_vs_map_c(unusual_records, (int)TDS_ARRAY_LEN(unusual_records), 5101);
    /* the rest: the batch is replayed item by item through map.c */
    assert_true(metrics_counter_get(METRIC_BATCHES_REPLAYED) > replays);
    assert_int_equal(pgtest_scalar(db, "SELECT count(*) FROM zoho.items WHERE item_id = '5101'"
                                       " AND sku = '12345' AND name = 'true' AND rate = 1000"),
                     1);
}

/* Refetch requests go to the refetch handler; records to the bulk apply;
 * an entity with a handler of its own gets its payloads. */
static enum item_result record_handled(PGconn *c, const struct queue_item *it, void *arg,
                                       char **err)
{
    (void)err;
    const char *p[] = {arg, it->zoho_id, it->payload};
    PQclear(PQexecParams(c, "INSERT INTO handled VALUES ($1, $2, $3)", 3, NULL, p, NULL, NULL, 0));
    return ITEM_OK;
}

static void test_refetch_routing(void **state)
{
    (void)state;
    pgtest_exec(db, "CREATE TABLE handled (handler text, id text, payload text)");
    engine_register_refetch_handler(record_handled, "refetch");
    engine_register_item_handler("contacts", "upsert", record_handled, "contacts");
    char *rec = make_item(803, "2024-03-01T10:00:00+0000", "carried", 4);
    enq("items", 801, "{\"refetch\":true,\"hint\":\"webhook\"}", 5, NULL);
    enq("items", 802, NULL, 5, NULL);
    enq("items", 803, rec, 5, NULL);
    enq("contacts", 804, "{\"contact_id\":\"804\",\"contact_name\":\"ACME\"}", 5, NULL);
    free(rec);
    /* a record kept beside its row reaches its handler too */
    char *big = big_mood("big");
    char *contact = xasprintf("{\"contact_id\":\"806\",\"contact_name\":\"Big\",\"x\":%s}", big);
    enq("contacts", 806, contact, 5, NULL);
    free(big);
    free(contact);
    /* beside its row, a refetch request (tds keeps those in the row): the
     * claim takes it for a record, the apply finds none, and the replay
     * sends it where it belongs */
    pgtest_exec(db, "WITH q AS (INSERT INTO tds.sync_queue (entity_type, zoho_id)"
                    " VALUES ('items', '805') RETURNING id) INSERT INTO tds.queue_payloads"
                    " SELECT id, '{\"refetch\": true, \"hint\": \"beside\"}' FROM q");
    long long replays = metrics_counter_get(METRIC_BATCHES_REPLAYED);
    struct engine *e = start_engine(&cl, "tqrefetch");
    assert_int_equal(wait_scalar(db,
                                 "SELECT count(*) FROM tds.sync_queue WHERE zoho_id IN"
                                 " ('801', '802', '803', '804', '805', '806')"
                                 " AND status = 'completed'",
                                 6, 10000),
                     6);
    assert_true(metrics_counter_get(METRIC_BATCHES_REPLAYED) > replays);
    stop_engine(e);
    engine_clear_handlers();
    assert_int_equal(pgtest_scalar(db, "SELECT count(*) FROM handled WHERE handler = 'refetch'"
                                       " AND (id, payload IS NULL) IN (('801', false), ('802', true))"),
                     2);
    assert_int_equal(pgtest_scalar(db, "SELECT count(*) FROM handled WHERE handler = 'contacts'"
                                       " AND id = '804' AND payload::jsonb ->> 'contact_name' = 'ACME'"),
                     1);
    assert_int_equal(pgtest_scalar(db, "SELECT count(*) FROM handled WHERE handler = 'refetch'"
                                       " AND id = '805' AND payload::jsonb ->> 'hint' = 'beside'"),
                     1);
    assert_int_equal(pgtest_scalar(db, "SELECT count(*) FROM handled WHERE handler = 'contacts'"
                                       " AND id = '806'"
                                       " AND payload::jsonb ->> 'contact_name' = 'Big'"),
                     1);
    assert_int_equal(pgtest_scalar(db, "SELECT count(*) FROM handled"), 5);
    assert_int_equal(pgtest_scalar(db, "SELECT count(*) FROM zoho.items WHERE item_id = '803'"
                                       " AND name = 'carried'"),
                     1);
    assert_int_equal(
        pgtest_scalar(db, "SELECT count(*) FROM zoho.items WHERE item_id IN ('801', '802', '805')"),
        0);
}

static void test_duplicate_instance_refused(void **state)
{
    (void)state;
    struct engine *a = start_engine(&cl, "dup");
    char *err = NULL;
    struct engine *b = engine_new(&cl.cfg, "dup", "daemon", &err);
    assert_non_null(b);
    assert_int_equal(engine_start(b, &err), -1);
    assert_non_null(strstr(err, "already running"));
    free(err);
    engine_free(b);
    stop_engine(a);
    /* stopped: the name is free again */
    a = start_engine(&cl, "dup");
    stop_engine(a);
}

/* ---- retention (issue 16 point 10) ----
 * Old rows go, recent rows and what is still needed stay, a pass is bounded
 * (retention.batch_size rows per statement, retention.max_batches statements
 * per table), and what pruned rows counted is folded into tds.metric_totals. */
static void test_retention(void **state)
{
    (void)state;
    const char *old = "now() - interval '40 days'";
    char *sql;
    /* runs of 'bills' (no other test uses the entity): A and E go; B (the last
     * completed), C (an open dead letter), D (a queue row) and R (running) stay */
    sql = xasprintf(
        "INSERT INTO tds.sync_runs (run_type, entity_type, trigger, status, created_at,"
        " started_at, finished_at, succeeded, failed, requested_by) VALUES"
        " ('full', 'bills', 'manual', 'completed', %s, %s, %s, 7, 1, 'ret-A'),"
        " ('full', 'bills', 'manual', 'cancelled', %s, %s, %s, 2, 0, 'ret-E'),"
        " ('full', 'bills', 'manual', 'completed', %s, %s, %s, 3, 0, 'ret-B'),"
        " ('incremental', 'bills', 'manual', 'failed', %s, %s, %s, 0, 0, 'ret-C'),"
        " ('incremental', 'bills', 'manual', 'failed', %s, %s, %s, 0, 0, 'ret-D'),"
        " ('incremental', 'bills', 'manual', 'running', %s, %s, NULL, 0, 0, 'ret-R')",
        old, old, old, old, old, old, old, old, old, old, old, old, old, old, old, old, old);
    pgtest_exec(db, sql);
    free(sql);
    pgtest_exec(db, "INSERT INTO tds.dead_letter (run_id, entity_type, zoho_id, operation,"
                    " failure_reason, created_at) SELECT id, 'bills', 'ret-open', 'upsert',"
                    " 'kept', now() - interval '40 days' FROM tds.sync_runs"
                    " WHERE requested_by = 'ret-C'");
    pgtest_exec(db, "INSERT INTO tds.sync_queue (run_id, entity_type, zoho_id, status,"
                    " completed_at) SELECT id, 'bills', 'ret-D', 'completed', now()"
                    " FROM tds.sync_runs WHERE requested_by = 'ret-D'");
    /* resolved dead letters: two old (go), one recent (stays) */
    pgtest_exec(db, "INSERT INTO tds.dead_letter (entity_type, zoho_id, operation,"
                    " failure_reason, resolved, resolved_at, resolution) VALUES"
                    " ('bills', 'ret-r1', 'upsert', 'x', true, now() - interval '40 days',"
                    "  'discarded'),"
                    " ('bills', 'ret-r2', 'upsert', 'x', true, now() - interval '40 days',"
                    "  'discarded'),"
                    " ('bills', 'ret-r3', 'upsert', 'x', true, now(), 'discarded')");
    /* events: 25 old (go, in bounded batches), 3 old of the running run and 2
     * recent (stay) */
    pgtest_exec(db, "INSERT INTO tds.events (type, at, entity_type, entity_id)"
                    " SELECT 'tds.entity.update', now() - interval '40 days', 'bills',"
                    " 'ret-ev' FROM generate_series(1, 25)");
    pgtest_exec(db, "INSERT INTO tds.events (type, at, run_id, entity_type, entity_id)"
                    " SELECT 'tds.sync.started', now() - interval '40 days', r.id, 'bills',"
                    " 'ret-ev' FROM tds.sync_runs r, generate_series(1, 3)"
                    " WHERE r.requested_by = 'ret-R'");
    pgtest_exec(db, "INSERT INTO tds.events (type, entity_type, entity_id)"
                    " SELECT 'tds.entity.update', 'bills', 'ret-ev' FROM generate_series(1, 2)");
    /* inbox: old and queued (its item done: goes), old and new (stays), old
     * whose item still waits (stays), recent (stays) */
    pgtest_exec(db, "INSERT INTO tds.sync_queue (entity_type, zoho_id, status)"
                    " VALUES ('bills', 'ret-wait', 'pending')");
    pgtest_exec(db, "INSERT INTO tds.inbox (received_at, entity, zoho_id, status, queue_id)"
                    " VALUES (now() - interval '40 days', 'bills', 'ret-go', 'queued', NULL),"
                    " (now() - interval '40 days', 'bills', 'ret-go', 'rejected', NULL),"
                    " (now() - interval '40 days', 'bills', 'ret-new', 'new', NULL),"
                    " (now(), 'bills', 'ret-recent', 'queued', NULL)");
    pgtest_exec(db, "INSERT INTO tds.inbox (received_at, entity, zoho_id, status, queue_id)"
                    " SELECT now() - interval '40 days', 'bills', 'ret-wait', 'queued', id"
                    " FROM tds.sync_queue WHERE zoho_id = 'ret-wait'");
    /* API usage: three old minutes (go), one recent (stays) */
    pgtest_exec(db, "INSERT INTO tds.api_usage (minute, instance, endpoint, status, calls)"
                    " SELECT date_trunc('minute', now()) - interval '40 days' - g * interval"
                    " '1 minute', 'ret', 'GET /ret', 200, 5 FROM generate_series(1, 3) g"
                    " UNION ALL SELECT date_trunc('minute', now()), 'ret', 'GET /ret', 200, 2");
    long long totals_before = pgtest_scalar(
        db, "SELECT count(*) FROM tds.metric_totals WHERE l1 IN ('bills', 'GET /ret')");
    assert_int_equal(totals_before, 0);

    struct prune_policy pp = {.queue_days = 30, .events_days = 30, .inbox_days = 30,
                              .runs_days = 30, .api_usage_days = 30, .batch_size = 10,
                              .max_batches = 2};
    struct prune_result pr;
    char *err = NULL;
    assert_int_equal(queue_prune(db, &pp, &pr, &err), 0);
    /* bounded: two statements of ten events, the rest left for the next pass */
    assert_int_equal(pr.rows[PRUNE_EVENTS], 20);
    assert_true(pr.more);
    assert_true(pr.statements <= (long long)PRUNE__COUNT * pp.max_batches);
    assert_int_equal(pgtest_scalar(db, "SELECT count(*) FROM tds.events WHERE entity_id = 'ret-ev'"
                                       " AND at < now() - interval '30 days'"),
                     5 + 3);
    assert_int_equal(queue_prune(db, &pp, &pr, &err), 0);
    assert_int_equal(pr.rows[PRUNE_EVENTS], 5);
    assert_false(pr.more);
    assert_int_equal(queue_prune(db, &pp, &pr, &err), 0);
    assert_int_equal(pr.total, 0);

    /* what stays */
    assert_int_equal(pgtest_scalar(db, "SELECT count(*) FROM tds.events WHERE entity_id = 'ret-ev'"),
                     3 + 2);
    assert_int_equal(pgtest_scalar(db, "SELECT count(*) FROM tds.events e JOIN tds.sync_runs r"
                                       " ON r.id = e.run_id WHERE r.requested_by = 'ret-R'"),
                     3);
    assert_int_equal(pgtest_scalar(db, "SELECT (string_agg(requested_by, ',' ORDER BY id)"
                                       " = 'ret-B,ret-C,ret-D,ret-R')::int"
                                       " FROM tds.sync_runs WHERE requested_by LIKE 'ret-%'"),
                     1);
    assert_int_equal(
        pgtest_scalar(db, "SELECT (string_agg(zoho_id, ',' ORDER BY zoho_id)"
                          " = 'ret-new,ret-recent,ret-wait')::int FROM tds.inbox"
                          " WHERE zoho_id LIKE 'ret-%'"),
        1);
    assert_int_equal(pgtest_scalar(db, "SELECT (string_agg(zoho_id, ',' ORDER BY zoho_id)"
                                       " = 'ret-open,ret-r3')::int FROM tds.dead_letter"
                                       " WHERE zoho_id LIKE 'ret-%'"),
                     1);
    assert_int_equal(pgtest_scalar(db, "SELECT sum(calls) FROM tds.api_usage"
                                       " WHERE instance = 'ret'"),
                     2);
    /* what went is counted still */
    assert_int_equal(pgtest_scalar(db, "SELECT value FROM tds.metric_totals"
                                       " WHERE metric = 'items_synced' AND l1 = 'bills'"
                                       " AND l2 = 'ok'"),
                     7 + 2);
    assert_int_equal(pgtest_scalar(db, "SELECT value FROM tds.metric_totals"
                                       " WHERE metric = 'items_synced' AND l1 = 'bills'"
                                       " AND l2 = 'failed'"),
                     1);
    assert_int_equal(pgtest_scalar(db, "SELECT value FROM tds.metric_totals"
                                       " WHERE metric = 'api_calls' AND l1 = 'GET /ret'"
                                       " AND l2 = '200'"),
                     15);
    assert_true(pgtest_scalar(db, "SELECT value FROM tds.metric_totals"
                                  " WHERE metric = 'dlq_moves'") >= 2);

    /* the configuration's policy */
    struct config_loaded c2;
    pgtest_config(&c2);
    prune_policy_from_config(&pp, &c2.cfg);
    assert_int_equal(pp.events_days, 30);
    assert_int_equal(pp.runs_days, 90);
    assert_int_equal(pp.batch_size, 5000);
    config_loaded_free(&c2);
}

int main(void)
{
    engine_test_setup("queue", &cl);
    db = pgtest_connect();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fold),
        cmocka_unit_test(test_apply_and_newer_wins),
        cmocka_unit_test(test_bad_item_fails_alone_retry_dlq),
        cmocka_unit_test(test_unstorable_error_dead_letters),
        cmocka_unit_test(test_handler_fails_alone),
        cmocka_unit_test(test_failures_never_loop),
        cmocka_unit_test(test_move_to_dlq_and_retry_now),
        cmocka_unit_test(test_payload_homes),
        cmocka_unit_test(test_new_record_race),
        cmocka_unit_test(test_pause_resume),
        cmocka_unit_test(test_bulk_mapping_matches_map_c),
        cmocka_unit_test(test_refetch_routing),
        cmocka_unit_test(test_duplicate_instance_refused),
        cmocka_unit_test(test_retention),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    PQfinish(db);
    config_loaded_free(&cl);
    return rc;
}
