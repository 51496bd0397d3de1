/*
 * worker.c: a worker thread drains the queue in batches.  Claim: one
 * statement marks up to batch_size due items 'processing' under this
 * worker's lease (FOR UPDATE SKIP LOCKED, priority then age) and commits,
 * so the lease, not the connection, holds them; the payloads tds needs
 * come with them, or, kept in tds.queue_payloads (0011), from a second
 * statement.  Apply: one transaction
 * that does the batch's writes and completes its items.  The fast path is
 * one statement per (entity, operation) group; upserts that carry their
 * record are mapped in that statement, from the payload where it lies (the
 * claim does not ship it).  When anything in it fails, the transaction is
 * rolled back and the batch is replayed item by item under savepoints,
 * payloads mapped by zoho/map.c, so one bad item fails alone (attempt
 * counted, backoff scheduled, or dead-lettered with map.c's reason).
 * Items of registered handlers (a refetch from Zoho) run under a savepoint
 * each already in the fast path, so one that fails fails alone there, and
 * no handler is called twice for one attempt.  Failures never loop: the
 * text stored is valid UTF-8 and bounded (utf8_truncate), a text PostgreSQL
 * still refuses is replaced by the refusal, and a batch that fails in the
 * database counts an attempt for each of its items (see record_failure).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine_internal.h"
#include "tds/db.h"
#include "tds/log.h"
#include "tds/metrics.h"

struct worker {
    struct engine *e;
    int idx;
    PGconn *conn;
    char *holder;  /* locked_by: "instance/wN" */
    PGconn *async; /* the connection set to synchronous_commit = off */
    unsigned seed; /* backoff jitter */
};

struct witem {
    struct queue_item it;
    item_handler_fn fn; /* a registered handler, or NULL */
    void *arg;
    const struct entity_desc *desc; /* the default handler's entity */
    struct entity_record rec;
    bool bulk;          /* mapped in SQL (payload not read: it.payload NULL) */
    char *payload_buf;  /* it.payload's storage */
    bool elsewhere;     /* not bulk, no payload in its row: maybe in tds.queue_payloads */
    bool replay;        /* a bulk item read again for the per-item path */
    bool mapped;
    char *fatal; /* cannot succeed: no handler, bad payload */
    /* Its handler failed in the fast path: the replay records that failure
     * instead of calling it again (one attempt, one call to Zoho). */
    bool pre_failed;
    enum item_result pre_res;
    char *pre_why;
    bool lost;      /* its lease moved to another worker while we fetched: hands off */
    bool unstarted; /* not fetched: the engine is stopping; released as it is */
    bool done;   /* completed (or failed and recorded) */
    bool ok;
};

static int cmp_witem(const void *a, const void *b)
{
    const struct witem *x = a, *y = b;
    if (x->it.priority != y->it.priority)
        return y->it.priority - x->it.priority;
    return x->it.id < y->it.id ? -1 : x->it.id > y->it.id;
}

static bool conn_bad(PGconn *c)
{
    return PQstatus(c) != CONNECTION_OK;
}

/*
 * Whether a claimed item is applied in bulk, in SQL (PL: its payload):
 * an upsert of an entity the default handler applies (ENTS: those with no
 * handler of their own) that carries a record, not a refetch request when
 * a refetch handler is registered (REFETCH).  Its payload is not sent:
 * the apply maps it where it lies (printing each (jsonb_out) cost the
 * server ~18 us per item, and parsing and mapping it here ~20 us more).
 */
#define BULK_RULE(PL, ENTS, REFETCH)                                                               \
    "(q.operation = 'upsert' AND q.entity_type = ANY (" ENTS "::text[]) AND " PL " IS NOT NULL"   \
    " AND NOT (" REFETCH "::boolean AND " PL " -> 'refetch' IS NOT DISTINCT FROM 'true'::jsonb))"

/* BULK_RULE's ENTS and REFETCH: into ents (a text[] literal), *refetch. */
static void bulk_params(struct strbuf *ents, const char **refetch)
{
    size_t ne;
    const struct entity_desc *all = entity_all(&ne);
    strbuf_putc(ents, '{');
    for (size_t i = 0; i < ne; i++) {
        void *arg;
        if (engine_find_item_handler(all[i].name, "upsert", &arg) != NULL)
            continue;
        if (ents->len > 1)
            strbuf_putc(ents, ',');
        strbuf_puts(ents, all[i].name);
    }
    strbuf_putc(ents, '}');
    void *rarg;
    *refetch = engine_find_refetch_handler(&rarg) != NULL ? "t" : "f";
}

static void set_payload(struct witem *wi, const char *v)
{
    free(wi->payload_buf);
    wi->payload_buf = v ? xstrdup(v) : NULL;
    wi->it.payload = wi->payload_buf;
}

/* Row k of r: payload and bulk flag in columns col and col + 1, a bulk
 * item's payload NULL when not sent (the claim) or not wanted. */
static void take_payload(struct witem *wi, PGresult *r, int k, int col, bool keep_bulk)
{
    wi->bulk = str_eq(PQgetvalue(r, k, col + 1), "t");
    set_payload(wi, (wi->bulk && !keep_bulk) || PQgetisnull(r, k, col) ? NULL
                                                                        : PQgetvalue(r, k, col));
}

/*
 * Reads the payloads of the items pred selects (one query; a row's own,
 * else tds.queue_payloads'), and decides again which are applied in bulk;
 * those keep their payloads only with keep_bulk.  0, or -1 (SQL).
 */
static int read_payloads(struct worker *w, struct witem *items, int n,
                         bool (*pred)(const struct witem *), bool keep_bulk, char **err)
{
    struct strbuf ids = {0}, ents = {0};
    for (int i = 0; i < n; i++) {
        if (!pred(&items[i]))
            continue;
        strbuf_putc(&ids, ids.len ? ',' : '{');
        strbuf_printf(&ids, "%lld", items[i].it.id);
    }
    if (ids.len == 0)
        return 0;
    strbuf_putc(&ids, '}');
    const char *refetch;
    bulk_params(&ents, &refetch);
    const char *p[] = {ids.buf, ents.buf, refetch, keep_bulk ? "t" : "f"};
    /* one row per id, in the list's order */
    PGresult *r = db_exec(w->conn,
                          "SELECT CASE WHEN b AND NOT $4::boolean THEN NULL ELSE pl END, b"
                          " FROM (SELECT u.n,"
                          "   coalesce(q.payload, p.payload) AS pl, " BULK_RULE(
                              "coalesce(q.payload, p.payload)", "$2", "$3") " AS b"
                          "   FROM unnest($1::bigint[]) WITH ORDINALITY AS u(id, n)"
                          "   LEFT JOIN tds.sync_queue q ON q.id = u.id"
                          "   LEFT JOIN tds.queue_payloads p ON p.queue_id = u.id) s ORDER BY n",
                          4, p, err);
    strbuf_free(&ids);
    strbuf_free(&ents);
    if (r == NULL)
        return -1;
    for (int i = 0, k = 0; i < n && k < PQntuples(r); i++) {
        if (!pred(&items[i]))
            continue;
        take_payload(&items[i], r, k++, 0, keep_bulk);
    }
    PQclear(r);
    return 0;
}

/*
 * The claim's bulk rule: BULK_RULE for a payload in the row (the locked,
 * newest version); a row without one is applied in bulk when a payload
 * waits in tds.queue_payloads, where tds's enqueue keeps only records
 * (never a refetch request).  That look is the statement's snapshot, which
 * a change folded in meanwhile may have overtaken: then the apply finds no
 * record and fails, and the per-item replay reads the payload again and
 * decides again (map_bulk_items).
 */
#define CLAIM_BULK_ROW BULK_RULE("q.payload", "$4", "$5")
#define CLAIM_BULK                                                                                 \
    "(" CLAIM_BULK_ROW " OR (q.payload IS NULL AND q.operation = 'upsert'"                        \
    " AND q.entity_type = ANY ($4::text[]) AND EXISTS (SELECT 1 FROM tds.queue_payloads p"        \
    " WHERE p.queue_id = q.id)))"

static bool is_elsewhere(const struct witem *wi)
{
    return wi->elsewhere;
}

static void release(struct worker *w, struct witem *items, int n);
static void free_items(struct witem *items, int n);

/* Claims up to limit items; returns the count (items in *out, strings in *res) or -1. */
static int claim(struct worker *w, int limit, int lease_s, PGresult **res, struct witem **out,
                 char **err)
{
    /* A claim is committed without waiting for the WAL flush, like the
     * apply (see begin_apply): a crash can only lose a suffix of the WAL,
     * so a claim is lost only with every later write of its batch, and its
     * items are simply pending again. */
    if (w->async != w->conn) {
        if (db_cmd(w->conn, "SET synchronous_commit = off", 0, NULL, err) != 0)
            return -1;
        w->async = w->conn;
    }
    char ls[16], lim[16];
    snprintf(ls, sizeof ls, "%d", lease_s);
    snprintf(lim, sizeof lim, "%d", limit);
    struct strbuf ents = {0};
    const char *refetch;
    bulk_params(&ents, &refetch);
    const char *p[] = {w->holder, ls, lim, ents.buf, refetch};
    PGresult *r = db_exec(
        w->conn,
        "UPDATE tds.sync_queue q SET status = 'processing', locked_by = $1,"
        " locked_until = now() + make_interval(secs => $2::int), updated_at = now()"
        " FROM (SELECT id FROM tds.sync_queue WHERE status IN ('pending', 'retry')"
        "   AND next_attempt_at <= now() ORDER BY priority DESC, id LIMIT $3::int"
        "   FOR UPDATE SKIP LOCKED) c WHERE q.id = c.id"
        " RETURNING q.id, q.run_id, q.entity_type, q.zoho_id, q.operation,"
        " q.attempts, q.max_attempts, q.priority,"
        " CASE WHEN " CLAIM_BULK_ROW " THEN NULL ELSE q.payload END, " CLAIM_BULK ","
        " q.payload IS NULL",
        5, p, err);
    strbuf_free(&ents);
    if (r == NULL)
        return -1;
    int n = PQntuples(r);
    struct witem *items = n ? xcalloc((size_t)n, sizeof *items) : NULL;
    bool elsewhere = false;
    for (int i = 0; i < n; i++) {
        struct queue_item *it = &items[i].it;
        it->id = strtoll(PQgetvalue(r, i, 0), NULL, 10);
        it->run_id = PQgetisnull(r, i, 1) ? 0 : strtoll(PQgetvalue(r, i, 1), NULL, 10);
        it->entity_type = PQgetvalue(r, i, 2);
        it->zoho_id = PQgetvalue(r, i, 3);
        it->op = str_eq(PQgetvalue(r, i, 4), "delete") ? QOP_DELETE : QOP_UPSERT;
        it->attempts = atoi(PQgetvalue(r, i, 5));
        it->max_attempts = atoi(PQgetvalue(r, i, 6));
        it->priority = atoi(PQgetvalue(r, i, 7));
        take_payload(&items[i], r, i, 8, false);
        items[i].elsewhere = !items[i].bulk && str_eq(PQgetvalue(r, i, 10), "t");
        elsewhere = elsewhere || items[i].elsewhere;
    }
    if (n > 1)
        qsort(items, (size_t)n, sizeof *items, cmp_witem);
    /* The other payloads in tds.queue_payloads are read once the claim
     * has committed: a change folded in until then (both tables, one
     * transaction) is in; read by the claim, the row (locked: its newest
     * version) and its payload (the statement's snapshot) might disagree. */
    if (elsewhere && read_payloads(w, items, n, is_elsewhere, false, err) != 0) {
        release(w, items, n); /* best effort: else the leases expire */
        free_items(items, n);
        PQclear(r);
        return -1;
    }
    *res = r;
    *out = items;
    return n;
}

/* Maps wi's payload with map.c: bad ones are marked fatal. */
static void map_item(struct witem *wi)
{
    char *err = NULL;
    if (apply_map_payload(wi->desc, &wi->it, &wi->rec, &err) != 0)
        wi->fatal = xasprintf("invalid payload: %s", err);
    else
        wi->mapped = true;
    free(err);
}

/* Chooses each item's handler and maps the payloads not mapped in SQL. */
static void prepare(struct witem *items, int n)
{
    for (int i = 0; i < n; i++) {
        struct witem *wi = &items[i];
        wi->desc = NULL;
        if (!wi->bulk) {
            wi->fn =
                engine_find_item_handler(wi->it.entity_type, queue_op_name(wi->it.op), &wi->arg);
            if (wi->fn != NULL)
                continue;
        }
        wi->desc = entity_find(wi->it.entity_type);
        if (wi->desc == NULL) {
            wi->fatal = xasprintf("no handler for entity \"%s\" (%s)", wi->it.entity_type,
                                  queue_op_name(wi->it.op));
            continue;
        }
        if (wi->it.op != QOP_UPSERT || wi->bulk)
            continue;
        wi->fn = engine_find_refetch_handler(&wi->arg);
        if (wi->fn != NULL && queue_payload_is_refetch(wi->it.payload)) {
            wi->desc = NULL;
            continue;
        }
        wi->fn = NULL;
        map_item(wi);
    }
}

static bool is_bulk_unmapped(const struct witem *wi)
{
    return wi->bulk && !wi->fatal;
}

static bool is_replay(const struct witem *wi)
{
    return wi->replay;
}

/* The per-item path of the bulk items: reads their payloads (one query),
 * decides again (the claim's look may be stale, see CLAIM_BULK) and maps
 * them with map.c, which names what is wrong.  0, or -1 (SQL). */
static int map_bulk_items(struct worker *w, struct witem *items, int n, char **err)
{
    for (int i = 0; i < n; i++)
        items[i].replay = is_bulk_unmapped(&items[i]);
    if (read_payloads(w, items, n, is_replay, true, err) != 0)
        return -1;
    for (int i = 0; i < n; i++) {
        struct witem *wi = &items[i];
        if (!wi->replay)
            continue;
        if (wi->mapped)
            entity_record_free(&wi->rec);
        wi->mapped = false;
        if (wi->bulk)
            map_item(wi);
        else
            prepare(wi, 1); /* not a record after all */
    }
    return 0;
}

static void free_items(struct witem *items, int n)
{
    for (int i = 0; i < n; i++) {
        if (items[i].mapped || items[i].rec.values)
            entity_record_free(&items[i].rec);
        free(items[i].fatal);
        free(items[i].pre_why);
        free(items[i].payload_buf);
    }
    free(items);
}

/* id list of the items selected by pred, as a bigint[] literal; NULL when empty. */
static char *ids_literal(struct witem *items, int n, bool (*pred)(const struct witem *))
{
    struct strbuf sb = {0};
    for (int i = 0; i < n; i++) {
        if (!pred(&items[i]))
            continue;
        strbuf_putc(&sb, sb.len ? ',' : '{');
        strbuf_printf(&sb, "%lld", items[i].it.id);
    }
    if (sb.len == 0)
        return NULL;
    strbuf_putc(&sb, '}');
    return strbuf_detach(&sb);
}

static bool is_custom_ok(const struct witem *wi)
{
    return wi->fn != NULL && wi->ok && !wi->done;
}

static bool is_not_done(const struct witem *wi)
{
    return !wi->done;
}

/* Still this worker's to apply (not lost to another, not left unstarted). */
static bool is_ours(const struct witem *wi)
{
    return !wi->done && !wi->lost && !wi->unstarted;
}

/* Completes the custom-handled items marked ok.  0 or -1. */
static int complete_custom(struct worker *w, struct witem *items, int n, char **err)
{
    char *ids = ids_literal(items, n, is_custom_ok);
    if (ids == NULL)
        return 0;
    const char *p[] = {ids, w->holder};
    PGresult *r = db_exec(w->conn,
                          "UPDATE tds.sync_queue SET status = 'completed', completed_at = now(),"
                          " updated_at = now(), locked_by = NULL, locked_until = NULL"
                          " WHERE id = ANY ($1::bigint[]) AND status = 'processing'"
                          " AND locked_by = $2",
                          2, p, err);
    free(ids);
    if (r == NULL)
        return -1;
    PQclear(r);
    for (int i = 0; i < n; i++)
        if (is_custom_ok(&items[i]))
            items[i].done = true;
    return 0;
}

/* Adds the batch's results to the runs its items belong to (last, to keep the row lock short). */
static int update_runs(struct worker *w, struct witem *items, int n, char **err)
{
    struct strbuf ids = {0}, oks = {0}, bads = {0};
    for (int i = 0; i < n; i++) {
        long long rid = items[i].it.run_id;
        if (rid == 0)
            continue;
        bool seen = false;
        for (int j = 0; j < i; j++)
            seen |= items[j].it.run_id == rid;
        if (seen)
            continue;
        long long ok = 0, bad = 0;
        for (int j = i; j < n; j++) {
            if (items[j].it.run_id != rid)
                continue;
            if (items[j].ok)
                ok++;
            else
                bad++;
        }
        strbuf_putc(&ids, ids.len ? ',' : '{');
        strbuf_putc(&oks, oks.len ? ',' : '{');
        strbuf_putc(&bads, bads.len ? ',' : '{');
        strbuf_printf(&ids, "%lld", rid);
        strbuf_printf(&oks, "%lld", ok);
        strbuf_printf(&bads, "%lld", bad);
    }
    int rc = 0;
    if (ids.len) {
        strbuf_putc(&ids, '}');
        strbuf_putc(&oks, '}');
        strbuf_putc(&bads, '}');
        const char *p[] = {ids.buf, oks.buf, bads.buf};
        rc = db_cmd(w->conn,
                    "UPDATE tds.sync_runs r SET succeeded = r.succeeded + v.ok,"
                    " failed = r.failed + v.bad FROM unnest($1::bigint[], $2::bigint[],"
                    " $3::bigint[]) AS v(id, ok, bad) WHERE r.id = v.id",
                    3, p, err);
    }
    strbuf_free(&ids);
    strbuf_free(&oks);
    strbuf_free(&bads);
    return rc;
}

static long long backoff_for(struct worker *w, const struct witem *wi)
{
    struct engine *e = w->e;
    pthread_rwlock_rdlock(&e->cfg_lock);
    int base = e->set.engine.retry.backoff_seconds, cap = e->set.engine.retry.backoff_max_seconds;
    pthread_rwlock_unlock(&e->cfg_lock);
    return queue_backoff_ms(wi->it.attempts + 1, base, cap, &w->seed);
}

/* The longest error text kept for a queue item or a dead letter (bytes). */
#define FAILURE_TEXT_MAX 2000

/* queue_fail_item under a savepoint when in a transaction (so a refused
 * row can be written again), else on its own.  0 or -1 (SQL). */
static int fail_item(struct worker *w, struct witem *wi, const char *text, bool fatal,
                     bool in_tx, bool *dead, char **err)
{
    if (in_tx && db_cmd(w->conn, "SAVEPOINT failure", 0, NULL, err) != 0)
        return -1;
    if (queue_fail_item(w->conn, &wi->it, w->holder, text, fatal,
                        fatal ? 0 : backoff_for(w, wi), dead, err) != 0) {
        if (in_tx && !conn_bad(w->conn))
            PQclear(PQexec(w->conn, "ROLLBACK TO SAVEPOINT failure"));
        return -1;
    }
    return in_tx ? db_cmd(w->conn, "RELEASE SAVEPOINT failure", 0, NULL, err) : 0;
}

/*
 * Records a failure of wi (fatal: straight to the DLQ).  What is stored is
 * valid UTF-8 and at most FAILURE_TEXT_MAX bytes, whatever the handler
 * said; and should PostgreSQL still refuse the text, its refusal is stored
 * instead, so the attempt is counted all the same: an item that cannot
 * succeed reaches the DLQ after its attempts, never loops.  0 or -1 (SQL).
 */
static int record_failure(struct worker *w, struct witem *wi, const char *why, bool fatal,
                          char **err)
{
    bool cut, dead = false;
    char *t = utf8_truncate(why, FAILURE_TEXT_MAX, &cut);
    char *text = xasprintf("%s%s", t, cut ? "..." : "");
    free(t);
    bool in_tx = PQtransactionStatus(w->conn) == PQTRANS_INTRANS;
    int rc = fail_item(w, wi, text, fatal, in_tx, &dead, err);
    if (rc != 0 && !conn_bad(w->conn)) {
        char *pg = utf8_truncate(*err, 300, NULL);
        free(*err);
        *err = NULL;
        free(text);
        text = xasprintf("the error could not be recorded (%s)", pg);
        free(pg);
        rc = fail_item(w, wi, text, fatal, in_tx, &dead, err);
    }
    if (rc != 0) {
        free(text);
        return -1;
    }
    if (dead)
        log_warn("queue %lld (%s %s): dead-lettered: %s", wi->it.id, wi->it.entity_type,
                 wi->it.zoho_id, text);
    else
        log_info("queue %lld (%s %s): attempt %d failed, will retry: %s", wi->it.id,
                 wi->it.entity_type, wi->it.zoho_id, wi->it.attempts + 1, text);
    free(text);
    wi->done = true;
    wi->ok = false;
    return 0;
}

/*
 * Opens an apply transaction (fast or slow path).  Its COMMIT does not wait
 * for the WAL flush (synchronous_commit = off, as the whole worker
 * connection is since its first claim), and
 * that is safe: the batch's writes, its events and its queue completions
 * (or failures) are all in this ONE transaction, so a crash can only lose
 * all of it together.  Then the items are still 'processing' under their
 * lease (or pending again, if the claim was lost too), the janitor reclaims
 * them when it expires, and they are applied again by idempotent upserts;
 * their events were lost with the writes, so nothing is announced twice.
 * PostgreSQL never exposes a torn state: an async commit is atomic, only
 * its durability is deferred (at most wal_writer_delay x 3).  The claim
 * before it is asynchronous too, and may be lost only together with this
 * transaction (WAL order).  Enqueue and webhook inbox writes stay
 * synchronous: those are promises to others.
 */
static int begin_apply(struct worker *w, char **err)
{
    PGresult *r = PQexec(w->conn, "BEGIN; SET LOCAL synchronous_commit = off");
    if (PQresultStatus(r) != PGRES_COMMAND_OK) {
        *err = xasprintf("BEGIN: %s", PQerrorMessage(w->conn));
        PQclear(r);
        return -1;
    }
    PQclear(r);
    return 0;
}

/* Moves the savepoint "handler" to here (one round trip).  0 or -1. */
static int savepoint_advance(PGconn *c, char **err)
{
    PGresult *r = PQexec(c, "RELEASE SAVEPOINT handler; SAVEPOINT handler");
    int ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    if (!ok)
        *err = xasprintf("savepoint: %s", PQerrorMessage(c));
    PQclear(r);
    return ok ? 0 : -1;
}

/* wj goes in head's statement: same entity, operation and mapping. */
static bool same_group(const struct witem *head, const struct witem *wj)
{
    return wj->desc == head->desc && wj->it.op == head->it.op && wj->bulk == head->bulk &&
           !wj->fatal && !wj->done;
}

/* The fast path.  Returns 0 (committed), 1 (rolled back: replay item by item), -1 (connection). */
static int apply_fast(struct worker *w, struct witem *items, int n)
{
    char *err = NULL;
    if (begin_apply(w, &err) != 0)
        goto fail;
    for (int i = 0; i < n; i++) {
        struct witem *head = &items[i];
        if (head->desc == NULL || head->fatal || head->done)
            continue;
        /* Gather the group (same descriptor and operation) starting here. */
        const struct queue_item **its = xcalloc((size_t)n, sizeof *its);
        struct entity_record **recs = xcalloc((size_t)n, sizeof *recs);
        int m = 0;
        for (int j = i; j < n; j++) {
            struct witem *wj = &items[j];
            if (same_group(head, wj)) {
                its[m] = &wj->it;
                recs[m] = &wj->rec;
                m++;
            }
        }
        long long done = 0, changed = 0;
        int rc = head->bulk ? apply_group_sql(w->conn, head->desc, its, m, w->holder, &done,
                                              &changed, &err)
                            : apply_group(w->conn, head->desc, head->it.op, its, recs, m,
                                          w->holder, false, &done, &changed, &err);
        free(its);
        free(recs);
        if (rc != 0)
            goto fail;
        for (int j = i; j < n; j++) {
            struct witem *wj = &items[j];
            if (same_group(head, wj))
                wj->done = wj->ok = true;
        }
    }
    bool sp = false; /* the savepoint "handler" is set */
    for (int i = 0; i < n; i++) {
        struct witem *wi = &items[i];
        if (wi->fn == NULL || !is_ours(wi))
            continue;
        if (wi->pre_failed) { /* the fetch failed, before the transaction */
            if (record_failure(w, wi, wi->pre_why ? wi->pre_why : "fetch failed without a message",
                               wi->pre_res == ITEM_FATAL, &err) != 0)
                goto fail;
            continue;
        }
        /* Under a savepoint: a handler that fails (a refetch Zoho refused)
         * fails alone, and the others are not replayed (and refetched).
         * One savepoint walks along the handlers: after each one it is
         * moved past its work in one round trip (two per handler halved a
         * no-op drain). */
        if (!sp) {
            if (db_cmd(w->conn, "SAVEPOINT handler", 0, NULL, &err) != 0)
                goto fail;
            sp = true;
        }
        char *why = NULL;
        enum item_result res = wi->fn(w->conn, &wi->it, wi->arg, &why);
        if (res == ITEM_OK) {
            free(why);
            wi->ok = true;
            if (savepoint_advance(w->conn, &err) != 0)
                goto fail;
            continue;
        }
        if (conn_bad(w->conn)) {
            err = why;
            goto fail;
        }
        /* Should the batch be replayed after all, the replay records this
         * failure instead of calling the handler again. */
        wi->pre_failed = true;
        wi->pre_res = res;
        wi->pre_why = why;
        if (db_cmd(w->conn, "ROLLBACK TO SAVEPOINT handler", 0, NULL, &err) != 0 ||
            record_failure(w, wi, why ? why : "handler failed without a message",
                           res == ITEM_FATAL, &err) != 0 ||
            savepoint_advance(w->conn, &err) != 0)
            goto fail;
    }
    if (complete_custom(w, items, n, &err) != 0)
        goto fail;
    for (int i = 0; i < n; i++)
        if (items[i].fatal && !items[i].done &&
            record_failure(w, &items[i], items[i].fatal, true, &err) != 0)
            goto fail;
    if (update_runs(w, items, n, &err) != 0 || db_commit(w->conn, &err) != 0)
        goto fail;
    return 0;
fail:
    if (conn_bad(w->conn)) {
        log_warn("batch rolled back: %s", err ? err : "connection lost");
        free(err);
        return -1;
    }
    log_debug("fast path failed (%s); replaying the batch item by item", err ? err : "?");
    metrics_count(METRIC_BATCHES_REPLAYED, 1);
    free(err);
    db_rollback(w->conn);
    for (int i = 0; i < n; i++)
        items[i].done = items[i].ok = false;
    return 1;
}

/* The slow path: each item under a savepoint.  0, or -1 (connection or SQL
 * failure; *why, caller frees, says what failed). */
static int apply_slow(struct worker *w, struct witem *items, int n, char **why_out)
{
    char *err = NULL;
    if (begin_apply(w, &err) != 0 || map_bulk_items(w, items, n, &err) != 0)
        goto fail;
    for (int i = 0; i < n; i++) {
        struct witem *wi = &items[i];
        if (atomic_load(&w->e->stop) && i > 0)
            break; /* the rest are released below, unstarted */
        if (wi->lost || wi->unstarted)
            continue;
        if (wi->fatal || wi->pre_failed) {
            const char *why = wi->fatal         ? wi->fatal
                              : wi->pre_why     ? wi->pre_why
                                                : "handler failed without a message";
            if (record_failure(w, wi, why, wi->fatal || wi->pre_res == ITEM_FATAL, &err) != 0)
                goto fail;
            continue;
        }
        if (db_cmd(w->conn, "SAVEPOINT item", 0, NULL, &err) != 0)
            goto fail;
        char *why = NULL;
        enum item_result res;
        if (wi->fn) {
            res = wi->fn(w->conn, &wi->it, wi->arg, &why);
            if (res == ITEM_OK) {
                wi->ok = true;
                if (complete_custom(w, wi, 1, &why) != 0)
                    res = ITEM_RETRY;
            }
        } else {
            const struct queue_item *its[1] = {&wi->it};
            struct entity_record *recs[1] = {&wi->rec};
            long long done, changed;
            res = apply_group(w->conn, wi->desc, wi->it.op, its, recs, 1, w->holder, true, &done,
                              &changed, &why) == 0
                      ? ITEM_OK
                      : ITEM_RETRY;
        }
        if (conn_bad(w->conn)) {
            free(err);
            err = why;
            goto fail;
        }
        if (res == ITEM_OK) {
            free(why); /* a handler may leave a message even when it succeeds */
            wi->done = wi->ok = true;
            if (db_cmd(w->conn, "RELEASE SAVEPOINT item", 0, NULL, &err) != 0)
                goto fail;
            continue;
        }
        wi->ok = false;
        if (db_cmd(w->conn, "ROLLBACK TO SAVEPOINT item", 0, NULL, &err) != 0) {
            free(why);
            goto fail;
        }
        int rc = record_failure(w, wi, why ? why : "handler failed without a message",
                                res == ITEM_FATAL, &err);
        free(why);
        if (rc != 0)
            goto fail;
    }
    if (update_runs(w, items, n, &err) != 0 || db_commit(w->conn, &err) != 0)
        goto fail;
    return 0;
fail:
    log_warn("batch rolled back: %s", err ? err : "?");
    *why_out = err ? err : xstrdup("?");
    if (!conn_bad(w->conn))
        db_rollback(w->conn);
    for (int i = 0; i < n; i++)
        items[i].done = items[i].ok = false;
    return -1;
}

/* Gives back the leases of items not done (graceful stop, failures). */
static void release(struct worker *w, struct witem *items, int n)
{
    char *ids = ids_literal(items, n, is_not_done);
    if (ids == NULL)
        return;
    const char *p[] = {ids, w->holder};
    char *err = NULL;
    PGresult *r = db_exec(w->conn,
                          "UPDATE tds.sync_queue SET status = 'retry', next_attempt_at = now(),"
                          " locked_by = NULL, locked_until = NULL, updated_at = now()"
                          " WHERE id = ANY ($1::bigint[]) AND status = 'processing'"
                          " AND locked_by = $2",
                          2, p, &err);
    if (r == NULL) {
        log_warn("could not release leases (they expire): %s", err);
        free(err);
    } else {
        if (atoi(PQcmdTuples(r)) > 0)
            log_info("released %s leases of items not started", PQcmdTuples(r));
        PQclear(r);
    }
    free(ids);
}

/*
 * After a batch that failed with the connection still up (an SQL error that
 * the per-item savepoints did not contain): each item not done counts a
 * failed attempt, on its own, so a batch that always fails ends in the DLQ
 * after the items' attempts instead of being claimed again forever.
 */
static void count_batch_failure(struct worker *w, struct witem *items, int n, const char *why)
{
    char *text = xasprintf("the batch could not be applied: %s", why);
    for (int i = 0; i < n; i++) {
        struct witem *wi = &items[i];
        if (!is_ours(wi))
            continue;
        /* An item that had failed on its own keeps its own reason. */
        const char *t = wi->fatal ? wi->fatal : wi->pre_failed && wi->pre_why ? wi->pre_why : text;
        bool fatal = wi->fatal || (wi->pre_failed && wi->pre_res == ITEM_FATAL);
        char *err = NULL;
        if (record_failure(w, wi, t, fatal, &err) != 0) {
            log_warn("cannot record the failure of queue item %lld: %s", items[i].it.id, err);
            free(err);
            break;
        }
    }
    free(text);
}

/*
 * Extends the leases of the batch's items still in hand; an item whose
 * lease is no longer this worker's (the janitor reclaimed it while we were
 * stalled) is lost: its work stops, another worker has it.  Returns how
 * many were lost now.
 */
static int extend_leases(struct worker *w, struct witem *items, int n, int lease_s)
{
    char *ids = ids_literal(items, n, is_ours);
    if (ids == NULL)
        return 0;
    char ls[16];
    snprintf(ls, sizeof ls, "%d", lease_s);
    const char *p[] = {ids, w->holder, ls};
    char *err = NULL;
    PGresult *r = db_exec(w->conn,
                          "UPDATE tds.sync_queue SET locked_until = now()"
                          " + make_interval(secs => $3::int) WHERE id = ANY ($1::bigint[])"
                          " AND status = 'processing' AND locked_by = $2 RETURNING id",
                          3, p, &err);
    free(ids);
    if (r == NULL) {
        log_warn("could not extend leases: %s", err);
        free(err);
        return 0;
    }
    int lost = 0;
    for (int i = 0; i < n; i++) {
        if (!is_ours(&items[i]))
            continue;
        bool held = false;
        for (int k = 0; k < PQntuples(r) && !held; k++)
            held = strtoll(PQgetvalue(r, k, 0), NULL, 10) == items[i].it.id;
        if (!held) {
            items[i].lost = true;
            lost++;
        }
    }
    PQclear(r);
    return lost;
}

/*
 * The Zoho half of the batch's refetch items, before any transaction opens
 * (a transaction held across a Zoho call sat idle for minutes under a rate
 * limit and deadlocked): each record fetched becomes the item's payload,
 * which the refetch handler then applies without calling Zoho.  The leases
 * are extended every third of engine.lease_seconds while it fetches, so a
 * slow Zoho never has the batch reclaimed and fetched twice.
 */
static void prefetch(struct worker *w, struct witem *items, int n)
{
    void *farg, *harg;
    refetch_fetch_fn fetch = engine_find_refetch_fetcher(&farg);
    item_handler_fn handler = engine_find_refetch_handler(&harg);
    if (fetch == NULL || handler == NULL)
        return;
    pthread_rwlock_rdlock(&w->e->cfg_lock);
    int lease_s = w->e->set.engine.lease_seconds;
    pthread_rwlock_unlock(&w->e->cfg_lock);
    long long every = lease_s * 1000LL / 3, last = time_mono_ms();
    int fetched = 0, lost = 0, spent_on_lost = 0;
    for (int i = 0; i < n; i++) {
        struct witem *wi = &items[i];
        if (wi->fn != handler || !is_ours(wi) || wi->pre_failed ||
            !queue_payload_is_refetch(wi->it.payload))
            continue;
        if (atomic_load(&w->e->stop)) {
            wi->unstarted = true;
            continue;
        }
        if (time_mono_ms() - last >= every) {
            lost += extend_leases(w, items, n, lease_s);
            last = time_mono_ms();
            if (wi->lost)
                continue;
        }
        char *rec = NULL, *why = NULL;
        int r = fetch(&wi->it, farg, &rec, &why);
        fetched++;
        if (r == REFETCH_RECORD) {
            set_payload(wi, rec);
        } else if (r == REFETCH_GONE) {
            set_payload(wi, "{\"tds_gone\": true}");
        } else {
            wi->pre_failed = true;
            wi->pre_res = r == ITEM_FATAL ? ITEM_FATAL : ITEM_RETRY;
            wi->pre_why = why;
            why = NULL;
        }
        free(rec);
        free(why);
    }
    if (fetched > 0) {
        lost += extend_leases(w, items, n, lease_s);
        for (int i = 0; i < n; i++)
            spent_on_lost += items[i].lost;
    }
    if (lost > 0)
        log_warn("%d queue items were reclaimed by another worker while this one fetched them "
                 "from Zoho (a stall longer than engine.lease_seconds): their work stops here; "
                 "%d Zoho calls were made in this batch",
                 spent_on_lost, fetched);
}

static void process(struct worker *w, struct witem *items, int n)
{
    prepare(items, n);
    prefetch(w, items, n);
    char *why = NULL;
    int rc = apply_fast(w, items, n);
    if (rc == 1)
        rc = apply_slow(w, items, n, &why);
    if (rc != 0) {
        bool lost = conn_bad(w->conn);
        w->conn = engine_db_recover(w->e, w->conn);
        w->async = NULL; /* a new connection may sit at the old address */
        if (w->conn == NULL) {
            free(why);
            return;
        }
        if (!lost && why != NULL)
            count_batch_failure(w, items, n, why);
    }
    free(why);
    long long ok = 0, bad = 0;
    for (int i = 0; i < n; i++) {
        if (items[i].done && items[i].ok)
            ok++;
        else if (items[i].done)
            bad++;
    }
    release(w, items, n);
    struct engine *e = w->e;
    atomic_fetch_add(&e->items_ok, ok);
    atomic_fetch_add(&e->items_failed, bad);
    atomic_fetch_add(&e->stat_ok, ok);
    atomic_fetch_add(&e->stat_failed, bad);
    atomic_fetch_add(&e->batches, 1);
    atomic_store(&e->drained_dirty, true);
}

/* After an empty claim: writes tds.queue.empty once a drain has finished. */
static void maybe_queue_empty(struct worker *w)
{
    struct engine *e = w->e;
    if (!atomic_exchange(&e->drained_dirty, false))
        return;
    char *err = NULL;
    const char *p[] = {e->instance};
    PGresult *r = db_exec(w->conn,
                          /* Predicates spelled as the partial indexes' (claim, status). */
                          "WITH c AS (SELECT NOT EXISTS (SELECT 1 FROM tds.sync_queue"
                          "   WHERE status IN ('pending', 'retry'))"
                          "   AND NOT EXISTS (SELECT 1 FROM tds.sync_queue"
                          "   WHERE status = 'processing') AS empty)"
                          " INSERT INTO tds.events (type, data) SELECT 'tds.queue.empty',"
                          " jsonb_build_object('instance', $1::text) FROM c WHERE empty"
                          " RETURNING id",
                          1, p, &err);
    if (r == NULL) {
        free(err);
        return;
    }
    if (PQntuples(r) > 0)
        log_info("queue drained: items ok %lld, failed %lld since start", atomic_load(&e->items_ok),
                 atomic_load(&e->items_failed));
    PQclear(r);
}

void *worker_main(void *arg)
{
    struct worker *w = arg;
    struct engine *e = w->e;
    log_set_context("%s w%d", e->instance, w->idx);
    w->conn = engine_connect(e);
    unsigned long seen = 0;
    while (w->conn != NULL && !atomic_load(&e->stop)) {
        pthread_rwlock_rdlock(&e->cfg_lock);
        int batch = e->set.engine.batch_size, lease = e->set.engine.lease_seconds;
        int poll_ms = e->set.engine.poll_interval_ms;
        pthread_rwlock_unlock(&e->cfg_lock);
        if (atomic_load(&e->paused_self) || atomic_load(&e->paused_fleet)) {
            engine_wait(e, &e->work_cv, &seen, poll_ms);
            continue;
        }
        pthread_mutex_lock(&e->mu);
        seen = e->work_seq;
        pthread_mutex_unlock(&e->mu);
        PGresult *res = NULL;
        struct witem *items = NULL;
        char *err = NULL;
        int n = claim(w, batch, lease, &res, &items, &err);
        if (n < 0) {
            log_warn("claim failed: %s", err);
            free(err);
            w->conn = engine_db_recover(e, w->conn);
            w->async = NULL;
            if (w->conn != NULL && !atomic_load(&e->stop))
                engine_wait(e, &e->work_cv, &seen, poll_ms);
            continue;
        }
        if (n == 0) {
            PQclear(res);
            maybe_queue_empty(w);
            engine_wait(e, &e->work_cv, &seen, poll_ms);
            continue;
        }
        atomic_fetch_add(&e->busy, 1);
        process(w, items, n);
        atomic_fetch_sub(&e->busy, 1);
        free_items(items, n);
        PQclear(res);
    }
    if (w->conn)
        PQfinish(w->conn);
    pthread_mutex_lock(&e->mu);
    e->live_threads--;
    pthread_cond_broadcast(&e->done_cv);
    pthread_mutex_unlock(&e->mu);
    free(w->holder);
    free(w);
    log_set_context(NULL);
    return NULL;
}

/* Creates a worker's state (the thread frees it). */
void *worker_new(struct engine *e, int idx)
{
    struct worker *w = xcalloc(1, sizeof *w);
    w->e = e;
    w->idx = idx;
    w->holder = xasprintf("%s/w%d", e->instance, idx);
    w->seed = (unsigned)(time_mono_ms() ^ (idx * 7919));
    return w;
}
