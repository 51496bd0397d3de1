/*
 * http.h: the engine's HTTP listener (libmicrohttpd): Zoho webhook intake,
 * GET /health and GET /metrics.  See issue 6 and DESIGN.md.
 *
 *   POST /webhooks/zoho/{entity}   entity by name or singular ("items", "item")
 *   POST /webhooks/zoho            entity from the payload's top key ({"item":{...}})
 *   GET  /health                   health_to_json(health_compute()); 200, or 503 when down
 *   GET  /metrics                  Prometheus text format 0.0.4
 *
 * Every webhook request, accepted or not, is written to tds.inbox before it
 * is answered (secrets and signatures replaced by "<redacted>"); an accepted
 * one becomes, in the same transaction, a priority-9 queue item
 * (operation upsert, payload {"refetch":true,"hint":<record or null>}) that
 * makes a worker re-fetch the record.  A redelivery of the same entity, id
 * and last_modified_time as an inbox row already queued is stored as its own
 * inbox row, status 'queued', duplicate_of = the first row, queue_id = the
 * first row's item: one queue item per change.  Rows are written by a small
 * group-commit writer (one statement and one commit per batch of concurrent
 * requests); a 202 is sent only after its row is committed.  If the
 * database cannot be reached the answer is 503 (Zoho retries).
 *
 * Authentication: when webhooks.secret is set, header X-TDS-Webhook-Secret
 * or query parameter `secret` must equal it; when webhooks.hmac_secret is
 * set, X-Zoho-Webhook-Signature must be hex(HMAC-SHA256(hmac_secret, raw
 * body)) (an optional "sha256=" prefix and upper-case hex are accepted).
 * Both compared in constant time.  With neither configured the listener
 * accepts unauthenticated webhooks only on a loopback address (127.0.0.0/8,
 * ::1, localhost) and refuses to start on any other.
 *
 * Hostile clients (issue 18): without the secret (header or query) a
 * request is answered 401 when its headers are in, before its body is
 * read; one whose signature does not match its body, or that is refused
 * before it is authenticated, leaves an audit row only (time, address,
 * method, path cut at 256 bytes, size, status: no headers, no body), at
 * most HTTP_AUDIT_PER_S a second; the rest are counted in the log's
 * summary line.  A configured secret anywhere in the path or a query key
 * is stored and logged as <redacted>.
 *
 * Limits: see http_server_start; bodies up to WEBHOOK_MAX_BODY bytes
 * (exactly 1 MiB is accepted, one byte more gets 413).
 */
#ifndef TDS_HTTP_H
#define TDS_HTTP_H

#include <stdbool.h>
#include <stddef.h>

#include "tds/config.h"
#include "tds/entity.h"
#include "tds/util.h"

struct engine;
struct zoho_client;

/* Optional process objects that /metrics reads; any may be NULL. */
struct http_context {
    struct engine *engine;          /* busy workers (tds_engine_workers_busy) */
    struct zoho_client *zoho;       /* day budget left from the API's headers */
    const char *instance;           /* engine instance name, for logs; copied */
    int idle_timeout_s;             /* per-connection idle timeout; 0: 10 s (tests shorten it) */
};

struct http_server;

/*
 * Starts the listener on cfg->webhooks.listen ("host:port"; port 0 picks a
 * free port, see http_server_port).  Threads: a pool of 4 libmicrohttpd
 * threads (epoll; a slow client holds a connection slot, never a thread)
 * and 2 inbox writer threads, each with its own database connection
 * (reconnecting); /health and /metrics borrow from a pool of one connection
 * per listener thread; /health is computed by a thread of its own (it waits
 * at most 600 ms for it, then answers down), /metrics by another (the
 * connection suspended meanwhile), so a stuck database holds no listener
 * thread.  Bounds:
 * cfg->webhooks.max_connections connections in all, with room kept for
 * new clients (see src/http/guard.c: slow connections closed oldest first),
 * webhooks.max_connections_per_peer from one client address,
 * webhooks.request_timeout_seconds for a whole request to arrive, 10 s idle
 * timeout per connection (ctx->idle_timeout_s).  The database need not be
 * up: requests then get 503 and /health says down.  cfg and ctx's objects must outlive the
 * server.  Returns the server, or NULL with *err (caller frees): listen
 * unset or malformed, no secret on a non-loopback address, or the port
 * cannot be bound.
 */
struct http_server *http_server_start(const struct tds_config *cfg,
                                      const struct http_context *ctx, char **err)
    TDS_MUST_CHECK;

/* The TCP port the server listens on.  This function can't fail. */
int http_server_port(const struct http_server *s);

/*
 * Stops accepting, lets the writers commit and answer every request already
 * received, then stops the threads, closes the connections and frees s.
 * NULL is fine.
 */
void http_server_stop(struct http_server *s);

/* ---- webhook evaluation (pure; src/http/webhook.c; unit-tested) ---- */

#define WEBHOOK_MAX_BODY (1024 * 1024)
/* What a 413's inbox row keeps of the body. */
#define WEBHOOK_KEEP_TOO_LARGE 4096

struct webhook_auth {
    const char *secret;         /* "" or NULL: not required */
    const char *hmac_secret;    /* "" or NULL: no signature required */
};

/* One request as received.  Pointers are borrowed. */
struct webhook_request {
    const char *method;
    const char *path;           /* URL path, without the query */
    const char *content_type;   /* NULL when absent */
    const char *secret_header;  /* X-TDS-Webhook-Secret, or NULL */
    const char *secret_query;   /* query parameter secret, or NULL */
    const char *signature;      /* X-Zoho-Webhook-Signature, or NULL */
    const unsigned char *body;
    size_t body_len;
    bool too_large;             /* more than WEBHOOK_MAX_BODY bytes were sent */
};

struct webhook_verdict {
    int http_status;            /* 202, 400, 401, 404, 405, 413 or 415 */
    char *error;                /* why not 202, one line (JSON answer and
                                   inbox reject_reason); NULL when accepted */
    const struct entity_desc *entity;   /* when known */
    char *zoho_id;              /* when found */
    char *last_modified_time;   /* when the record has one */
    char *hint;                 /* the record, compact JSON, or NULL */
};

/* True when path is one of the webhook routes (/webhooks/zoho[/...]). */
bool webhook_is_route(const char *path);

/*
 * Decides the answer to one webhook request, in this order: route (404),
 * method (405), size (413), authentication (401), content type (415),
 * parse (400), entity (404), id (400).  Fills *v (free with
 * webhook_verdict_free).  This function can't fail.
 */
void webhook_evaluate(const struct webhook_auth *auth, const struct webhook_request *rq,
                      struct webhook_verdict *v);
void webhook_verdict_free(struct webhook_verdict *v);

/* True when s[0..n) is well-formed UTF-8 (no overlongs, surrogates or
 * code points above U+10FFFF; NUL bytes are rejected too). */
bool webhook_utf8_valid(const unsigned char *s, size_t n);

/* True when no webhooks.secret is set, or the header (else the query
 * parameter) equals it (constant time). */
bool webhook_secret_ok(const struct webhook_auth *auth, const char *header, const char *query);

/* Constant-time check of a hex HMAC-SHA256 signature of body under key. */
bool webhook_signature_ok(const char *key, const unsigned char *body, size_t len,
                          const char *signature);

/* Header names whose values are never stored or logged (case-insensitive). */
bool webhook_header_is_secret(const char *name);

#endif
