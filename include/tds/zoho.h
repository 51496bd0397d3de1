/*
 * zoho.h: the Zoho Books/Inventory API client.
 *
 * Two objects.  A struct zoho_client is shared by every thread of an engine:
 * it holds the access token cache (one refresh at a time, shared with the
 * rest of the fleet through tds.zoho_token), the rate limiter (the per-minute,
 * per-day and concurrency limits of the organization, kept for the whole
 * fleet through PostgreSQL), the retry policy and the API usage counters
 * flushed to tds.api_usage.  A struct zoho_conn belongs to one thread: its
 * libcurl handle (connection reuse) and the count of API calls made through
 * it, which the caller charges to the run that made them.
 *
 * Every call returns 0 on success or -1 with a struct zoho_error filled in;
 * errors name the endpoint and page, carry Zoho's code and message (valid
 * UTF-8, cut on a character boundary, at most ZOHO_ERROR_MAX bytes: they are
 * stored as they are), and never contain a token or a secret.
 *
 * Retries happen at one level (issue 17).  Inside one call the client
 * retries what may pass by itself: no answer, a timeout, a 5xx, a 429, a
 * truncated or malformed body (exponential backoff with full jitter), up to
 * max_attempts requests (ZOHO_DEFAULT_MAX_ATTEMPTS, 8: the one level
 * carries the whole budget, so that 40% of random faults still fail a call
 * only once in ~700; plus one request after a token refresh on a 401).  What Zoho refused (another 4xx with its code: 400 code 4, 404 code
 * 1002, a 401 again after the refresh) fails at once, after one request.
 * When the client gives up it sets e->retried, and its callers do not call
 * again: a sync job fails the page (and the run), a queue item counts one
 * failed attempt and is retried with the queue's backoff (engine.retry)
 * until its max_attempts, then dead-lettered with the error (Zoho's code
 * in it).  So one call costs at most max_attempts + 1 requests, and one
 * queue item at most max_attempts (queue) x that.
 *
 * Zoho's limits and outages (issue 17 points 1, 2, 8; outage.c): a 401
 * code 57 on an endpoint that never answered, with a token that works
 * elsewhere, is a missing scope (ZOHO_ERR_SCOPE, no refresh, one alert);
 * a Retry-After or an exhausted window's X-Rate-Limit-Reset is honoured
 * however long, for the whole fleet (tds.zoho_block): no request is made
 * before its end, a call waits for it up to zoho.max_wait_seconds and
 * fails at once (ZOHO_ERR_BLOCKED) when it is further; while Zoho is
 * unreachable (DNS, refused, TLS, a gateway's HTML 5xx) a call keeps
 * backing off past max_attempts for up to zoho.max_wait_seconds, and the
 * zoho_unreachable alert comes after zoho.unreachable_alert_seconds.
 */
#ifndef TDS_ZOHO_H
#define TDS_ZOHO_H

#include <cjson/cJSON.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tds/config.h"
#include "tds/entity.h"
#include "tds/util.h"

struct zoho_client;
struct zoho_conn;
struct zoho_pager;

/* What went wrong, so a caller can decide what to do without parsing text. */
enum zoho_err_kind {
    ZOHO_ERR_NONE = 0,
    ZOHO_ERR_AUTH,          /* 401 twice, refresh token or client rejected: alert */
    ZOHO_ERR_TOKEN,         /* token endpoint unreachable or answering garbage */
    ZOHO_ERR_MINT_LIMIT,    /* a new token is needed but the mint limit is reached */
    ZOHO_ERR_RATE_MINUTE,   /* 429 code 44 still after every attempt */
    ZOHO_ERR_RATE_DAY,      /* daily budget exhausted (code 45 or our own count) */
    ZOHO_ERR_RATE_CONCURRENCY, /* 429 code 1070 still after every attempt */
    ZOHO_ERR_NOT_FOUND,     /* 404: the record does not exist (any more) */
    ZOHO_ERR_API,           /* another 4xx (or a non-zero code): Zoho's code and message */
    ZOHO_ERR_SERVER,        /* 5xx still after every attempt */
    ZOHO_ERR_NETWORK,       /* timeouts, resets, DNS... still after every attempt */
    ZOHO_ERR_BAD_RESPONSE,  /* malformed/truncated JSON, HTML, wrong type, too large */
    ZOHO_ERR_PAGING,        /* a page_context that lies (would loop forever) */
    ZOHO_ERR_DB,            /* the coordination database failed */
    ZOHO_ERR_CANCELLED,     /* the caller's stop flag was raised */
    ZOHO_ERR_ARG,           /* a caller mistake (too many ids, unknown entity...) */
    ZOHO_ERR_SCOPE,         /* 401 code 57 on a token that works elsewhere: the token
                               lacks this endpoint's OAuth scope (the message names it) */
    ZOHO_ERR_BLOCKED,       /* Zoho blocked calls (Retry-After, X-Rate-Limit-Reset) for
                               longer than zoho.max_wait_seconds: not called */
};

/* "auth", "rate_minute", ... (stable names for logs, alerts and tests). */
const char *zoho_err_kind_name(enum zoho_err_kind kind);

struct zoho_error {
    enum zoho_err_kind kind;
    int http_status;        /* 0: no HTTP answer */
    int zoho_code;          /* Zoho's "code", or -1 when none was read */
    char *message;          /* one line for a person, redacted; owned */
    char *endpoint;         /* "GET /items", owned, or NULL */
    int page;               /* 0 when not a list page */
    long long retry_after_ms; /* for RATE_DAY / MINT_LIMIT: when trying again makes sense */
    bool retried;           /* the client retried this call already (its attempts ran out,
                               or the token layer's did): its caller does not call again */
};

/* Frees the strings of e and zeroes it; e may be zeroed already.  Can't fail. */
void zoho_error_clear(struct zoho_error *e);
/* "GET /items page 3: HTTP 400 code 2: Invalid value..." (caller frees). */
char *zoho_error_format(const struct zoho_error *e);

#define ZOHO_DEFAULT_MAX_ATTEMPTS 8
/* Client tuning that is not in tds.yaml (tests, benchmarks, the engine). */
struct zoho_client_opts {
    const char *instance;       /* engine instance name for tds.api_usage; NULL: host-pid */
    bool no_db;                 /* in-process coordination only (no fleet) */
    int max_attempts;           /* per call; 0: ZOHO_DEFAULT_MAX_ATTEMPTS */
    int backoff_base_ms;        /* 0: 500 */
    int backoff_max_ms;         /* 0: 30000 */
    int mint_limit;             /* tokens per mint window; 0: 10 */
    int mint_window_s;          /* 0: 600 */
    int rate_headroom_pct;      /* share of the per-minute limit used; 0: 98 */
    int usage_flush_ms;         /* api_usage flush period; 0: 10000 */
    bool unlimited;             /* no client-side pacing (benchmarks against a
                                   simulator with its limits off) */
    uint64_t seed;              /* jitter seed; 0: from the clock */
};

/*
 * Creates the shared client from cfg->zoho (urls, credentials, limits,
 * timeout) and, unless opts->no_db, opens its two coordination connections
 * from cfg->database (the schema must be migrated).  opts may be NULL.
 * cfg must outlive the client.  Registers the client secret and refresh
 * token with the log redaction.  Returns the client, or NULL with *err
 * (caller frees) saying what is missing or why the database is unreachable.
 */
struct zoho_client *zoho_client_new(const struct tds_config *cfg,
                                    const struct zoho_client_opts *opts, char **err)
    TDS_MUST_CHECK;
/* Flushes usage counters and frees the client; every conn must be freed
 * first.  NULL is allowed.  Can't fail (a failed flush is logged). */
void zoho_client_free(struct zoho_client *zc);
/* SIGHUP: zoho.rate_limit.* and zoho.timeout_seconds of cfg from now on
 * (zoho.plan too, through the daily limit it implies).  Can't fail. */
void zoho_client_reload(struct zoho_client *zc, const struct tds_config *cfg);

/*
 * Writes the buffered API usage to tds.api_usage now (it is also written
 * every usage_flush_ms by whichever thread calls next).  0, or -1 with *err.
 */
int zoho_client_flush_usage(struct zoho_client *zc, char **err) TDS_MUST_CHECK;

/* Process-wide counters of a client (thread-safe snapshot). */
struct zoho_client_stats {
    long long requests;         /* HTTP requests to the API (not the token endpoint) */
    long long retries;
    long long status_429;
    long long status_401;
    long long tokens_minted;    /* by this process */
    long long tokens_adopted;   /* read from tds.zoho_token instead of minting */
    long long day_remaining;    /* from X-Rate-Limit-Remaining; -1 unknown */
    long long day_reset_s;      /* from X-Rate-Limit-Reset; -1 unknown */
    int concurrency_share;      /* this engine's share of the concurrency limit */
};
void zoho_client_stats(struct zoho_client *zc, struct zoho_client_stats *out);

/*
 * Creates a per-thread connection (one libcurl handle, reused).  stop may
 * be NULL; when it becomes true, waits end and calls fail with
 * ZOHO_ERR_CANCELLED.  Returns the conn; this function can't fail.
 */
struct zoho_conn *zoho_conn_new(struct zoho_client *zc, atomic_bool *stop);
void zoho_conn_free(struct zoho_conn *c);
/* API calls (HTTP requests, retries included) made through c so far. */
long long zoho_conn_calls(const struct zoho_conn *c);
/* Returns the count and resets it to 0: for charging a run. */
long long zoho_conn_take_calls(struct zoho_conn *c);

/*
 * Makes sure a valid access token is cached (refreshing or adopting the
 * fleet's one if needed).  Normally implicit; exposed for `tds check-config`
 * and tests.  0, or -1 with *e (AUTH, TOKEN, MINT_LIMIT, DB).
 */
int zoho_token_ensure(struct zoho_conn *c, struct zoho_error *e) TDS_MUST_CHECK;

/*
 * GET {base of product}{path}?organization_id=..&query and returns the
 * parsed JSON document in *doc (caller deletes) after checking code == 0.
 * query may be NULL or "a=1&b=2" (already encoded).  page (0 if none) is
 * only for error messages.  Retries as described above.
 */
int zoho_get_json(struct zoho_conn *c, enum zoho_product product, const char *path,
                  const char *query, int page, cJSON **doc, struct zoho_error *e) TDS_MUST_CHECK;

/*
 * GET /{entity}/{id}: one record (the object under the singular key) in
 * *rec (caller deletes).  ZOHO_ERR_NOT_FOUND when Zoho says it is gone.
 */
int zoho_get_record(struct zoho_conn *c, const struct entity_desc *d, const char *id,
                    cJSON **rec, struct zoho_error *e) TDS_MUST_CHECK;

#define ZOHO_ITEMDETAILS_MAX 100
/*
 * GET /itemdetails?item_ids=... (Inventory) for n ids (1..100, else
 * ZOHO_ERR_ARG): the "items" array in *items (caller deletes), with
 * locations/warehouses per item.  Ids Zoho does not return are simply absent.
 */
int zoho_get_itemdetails(struct zoho_conn *c, const char *const *ids, size_t n, cJSON **items,
                         struct zoho_error *e) TDS_MUST_CHECK;

#define ZOHO_IMAGE_MAX (7u * 1024u * 1024u)
struct zoho_blob {
    unsigned char *data;        /* owned */
    size_t len;
    char content_type[64];      /* "image/png" */
};
/*
 * GET /items/{id}/image (Inventory): the image bytes in *out (free with
 * zoho_blob_free).  Refuses a body over 7 MB or whose Content-Type is not
 * gif/png/jpeg/bmp/webp (ZOHO_ERR_BAD_RESPONSE); NOT_FOUND when no image.
 */
int zoho_get_image(struct zoho_conn *c, const char *item_id, struct zoho_blob *out,
                   struct zoho_error *e) TDS_MUST_CHECK;
void zoho_blob_free(struct zoho_blob *b);

/* ---- paging ---- */

struct zoho_pager_opts {
    const char *filter_by;      /* "Status.Active"...; NULL: none (Zoho's default) */
    /*
     * Changed-since listing (only if the entity supports it): records
     * modified at or after this Zoho time ("2025-11-05T12:06:10+0530");
     * NULL: a full listing in Zoho's order.
     */
    const char *changed_since;
    const char *const *seen_ids; /* ids already taken at changed_since (cursor) */
    size_t n_seen;
    int per_page;               /* 0: 200 */
    const char *extra_query;    /* appended as is ("search_text=x"), or NULL */
};

/*
 * Creates a streaming iterator over a list endpoint of d.  Nothing is
 * fetched until zoho_pager_next.  opts may be NULL.  Can't fail (an
 * unsupported changed_since is reported by the first zoho_pager_next).
 */
struct zoho_pager *zoho_pager_new(struct zoho_conn *c, const struct entity_desc *d,
                                  const struct zoho_pager_opts *opts);
void zoho_pager_free(struct zoho_pager *p);

/*
 * Fetches the next page.  Returns 1 with *records (a cJSON array the
 * caller deletes; never empty) when records were read, 0 when the listing
 * is finished (*records NULL), -1 with *e on failure.  After a failure the
 * iterator is unchanged: calling again retries the same page, and nothing
 * already returned is lost.  In changed-since mode the pager re-anchors on
 * the newest last_modified_time seen and drops ids already returned at that
 * instant, so edits and deletions during the scan neither skip nor repeat
 * records.  *more (may be NULL) tells whether Zoho said more pages follow.
 */
int zoho_pager_next(struct zoho_pager *p, cJSON **records, bool *more, struct zoho_error *e)
    TDS_MUST_CHECK;

/*
 * The resume point after the pages returned so far (changed-since mode):
 * *time is the newest last_modified_time seen (Zoho form, or NULL if none),
 * *ids_json a JSON array of the ids returned at that instant (caller frees
 * both).  Feed them back as changed_since/seen_ids to resume.
 */
void zoho_pager_cursor(const struct zoho_pager *p, char **time, char **ids_json);
/* Pages fetched (HTTP list requests that succeeded) and records returned. */
long long zoho_pager_pages(const struct zoho_pager *p);
long long zoho_pager_records(const struct zoho_pager *p);

#endif
