/*
 * zoho_internal.h: what the files of the Zoho client share with each other
 * (and with their unit tests), but not with the rest of tds: the shared and
 * per-thread structs, the HTTP layer, and the pure pieces of policy (error
 * classification, backoff, pacing arithmetic, page_context parsing and the
 * re-anchoring of changed-since scans) that the unit tests drive with tables.
 */
#ifndef TDS_ZOHO_INTERNAL_H
#define TDS_ZOHO_INTERNAL_H

#include <curl/curl.h>
#include <libpq-fe.h>
#include <pthread.h>
#include <stdatomic.h>

#include "tds/zoho.h"

/* ---- pure policy (no I/O) ---- */

/* What to do with one HTTP exchange. */
enum zoho_action {
    ZA_OK = 0,          /* use the answer */
    ZA_RETRY,           /* back off (exponential, full jitter) and retry */
    ZA_RETRY_SHORT,     /* 429 code 1070: a short backoff, then retry */
    ZA_WAIT_MINUTE,     /* 429 code 44: pause the fleet until the next minute */
    ZA_REFRESH,         /* 401: refresh the token once and retry at once */
    ZA_FAIL_DAY,        /* 429 code 45: stop until the daily reset */
    ZA_FAIL,            /* not retryable: report */
};

/*
 * Classifies an exchange.  transport_ok false: no complete HTTP answer
 * (timeout, reset, truncated transfer).  body_ok false: the answer was not
 * the JSON expected (HTML, wrong content type, malformed or truncated).
 * zoho_code -1 when the body had none.  *kind receives the error kind to
 * report if the action is a failure (or if retries run out).  Can't fail.
 */
enum zoho_action zoho_classify(bool transport_ok, long http_status, int zoho_code, bool body_ok,
                               enum zoho_err_kind *kind);

/*
 * Backoff before retry number attempt (1 = first retry): uniformly random
 * in [0, min(max_ms, base_ms * 2^(attempt-1))] ("full jitter"), drawn from
 * the xorshift state *rng (never 0).  Can't fail.
 */
long long zoho_backoff_ms(int attempt, int base_ms, int max_ms, uint64_t *rng);
uint64_t zoho_rng_next(uint64_t *rng);

/* Parses Retry-After: delta seconds or an HTTP date.  -1 if absent/junk. */
long long zoho_parse_retry_after(const char *v, long long now_wall_ms);

/*
 * Pacing arithmetic.  Slot spacing in microseconds for a per-minute limit
 * used at headroom_pct percent: 60e6 * 100 / (limit * headroom_pct).
 * zoho_rate_slice: how many slots to reserve in one database round trip
 * (about a quarter second of the fleet's rate, 1..10).
 * zoho_rate_share: one engine's share of a concurrency limit among live
 * engines (at least 1).
 */
long long zoho_rate_interval_us(int per_minute, int headroom_pct);
/*
 * The lifetime in seconds of a token answer: expires_in_sec when Zoho sends
 * it, else expires_in, which older token endpoints give in milliseconds
 * (3600000 beside expires_in_sec 3600: read as seconds, a 41-day cache): a
 * figure above a day is taken as milliseconds.  At most a day;
 * 3600 when neither is usable.
 */
long long zoho_token_ttl_s(const cJSON *doc);
int zoho_rate_slice(int per_minute);
int zoho_rate_share(int concurrency, int live_engines);

/*
 * A generic cell rate pacer (the same algorithm the database runs for the
 * fleet): reserves k slots spaced interval_us apart starting no earlier
 * than now_us, and returns the time of the first.  *tat_us is the
 * theoretical arrival time after the last slot.  Can't fail.
 */
long long zoho_pace_reserve(long long *tat_us, long long now_us, long long interval_us, int k);

/* Zoho times: "2013-08-05T12:06:10+0530", "...Z", "...+05:30", or no offset
 * (taken as UTC).  Epoch seconds in *out; false on junk. */
bool zoho_time_parse(const char *s, long long *out);

/* The page_context of a list answer. */
struct zoho_page_ctx {
    bool present;
    int page;               /* 0 if absent */
    int per_page;
    bool has_more;
    bool has_more_present;
};
/* Reads doc.page_context, tolerating numbers or strings.  Can't fail. */
void zoho_page_ctx_parse(const cJSON *doc, struct zoho_page_ctx *out);

/*
 * The re-anchoring state of a changed-since scan: the anchor instant and
 * its text as Zoho wrote it, the ids already returned at that instant, and
 * the page (page, page_size) to ask for next.
 *
 * When more records share the anchor instant than fit on a page, the scan
 * pages through the instant with pages that overlap the part already read
 * (page_size is then chosen a little under per_page so that the offset
 * lands a few records back).  If the first record of such a page is not
 * one already returned, records before it may have shifted out of reach
 * (an edit or deletion inside the instant): the page keeps only its new
 * records at the instant and the instant is read again from page 1
 * (at most ZOHO_ANCHOR_RESTARTS times per anchor).  An instant that took
 * several pages is read once more before the scan leaves it (and again
 * while a re-read still finds new records), because with Zoho's one-second
 * times records can join the instant behind the pages already read.  While
 * a re-read is due, `again` asks the caller for another page even if Zoho
 * said there are no more.
 */
#define ZOHO_ANCHOR_RESTARTS 8
struct zoho_anchor {
    bool active;            /* a changed-since scan */
    char *since;            /* anchor as Zoho wrote it (query value), or NULL */
    long long since_t;      /* epoch seconds; meaningful when since != NULL */
    char **ids;             /* ids returned at since_t */
    size_t n_ids, cap_ids;
    int per_page;           /* the largest page to ask for */
    int page;               /* next page to request (1-based) */
    int page_size;          /* per_page of the next request */
    int restarts;           /* re-reads of the current instant */
    bool walked;            /* the instant took more than one page */
    bool verifying;         /* in a re-read pass of the instant */
    size_t pass_fresh;      /* new records the current re-read found */
    bool again;             /* wants another page even if has_more is false */
};
void zoho_anchor_init(struct zoho_anchor *a, const char *since, const char *const *ids, size_t n,
                      int per_page);
void zoho_anchor_free(struct zoho_anchor *a);
bool zoho_anchor_seen(const struct zoho_anchor *a, const char *id);

/*
 * Takes one page fetched at the anchor's current (since, page, page_size):
 * removes from the array records already returned (same id at the anchor
 * instant, or older than the anchor), and moves the anchor: to the newest
 * last_modified_time of the page at page 1 if it advanced, else further
 * into the instant (see above for re-reads).  has_more is what Zoho said
 * for this page.  Records without an id or a readable time are kept
 * (the mapping reports them) but do not move the anchor.  *fresh receives
 * the number of records left in the array.  Returns 0 (err is for future
 * use and left NULL).
 */
int zoho_anchor_take(struct zoho_anchor *a, cJSON *records, const char *id_field, bool has_more,
                     size_t *fresh, char **err);

/* ---- HTTP (http.c) ---- */

struct zoho_http_resp {
    long status;            /* 0: no answer */
    struct strbuf body;
    size_t max_body;        /* refuse (too_large) beyond this */
    bool too_large;
    char ctype[96];
    long long retry_after_ms;   /* -1 */
    long long rl_limit, rl_remaining, rl_reset; /* -1 when absent */
    int curl_code;          /* CURLE_OK when an answer came */
    char curl_err[CURL_ERROR_SIZE];
};

void zoho_http_resp_init(struct zoho_http_resp *r, size_t max_body);
void zoho_http_resp_free(struct zoho_http_resp *r);
/* Creates an easy handle with tds's fixed options (TLS verification on,
 * no signals, keep-alive, compression).  Can't fail (aborts on OOM). */
CURL *zoho_http_handle(void);
/*
 * Performs one request on h (reused connection).  post is a form body or
 * NULL for GET.  auth is the full Authorization header value or NULL.
 * Returns 0 when an HTTP answer came (any status), -1 on a transport
 * failure (r->curl_code, r->curl_err).
 */
int zoho_http_perform(CURL *h, const char *url, const char *auth, const char *post,
                      long timeout_s, struct zoho_http_resp *r);
/* True if ctype is application/json (any parameters). */
bool zoho_http_is_json(const char *ctype);
/* Appends s percent-encoded (RFC 3986 unreserved kept) to sb. */
void zoho_url_encode(struct strbuf *sb, const char *s);

/* ---- shared client ---- */

#define ZOHO_USAGE_MAX 256

struct zoho_usage {
    long long minute;       /* epoch seconds, multiple of 60 */
    const char *endpoint;   /* static string */
    int status;
    int calls;
};

struct zoho_client {
    const struct tds_config *cfg;
    struct zoho_client_opts opts;
    unsigned char token_key[32]; /* seals the access token in tds.zoho_token (tokencrypt.h) */
    atomic_int timeout_s;        /* zoho.timeout_seconds, reloadable */
    char *instance;
    char *org;
    char *accounts_url;
    bool books_override, inventory_override;

    /* token (tok_mu) */
    pthread_mutex_t tok_mu;
    pthread_cond_t tok_cv;
    bool refreshing;
    char *token;                /* NULL: none */
    bool token_bad;             /* a 401 said it no longer works */
    long long tok_expires_ms;   /* wall */
    long long tok_refresh_ms;   /* wall: refresh from this time on */
    long long tok_gen;          /* bumped on every new token */
    char *books_url, *inventory_url;  /* may change with api_domain */
    long long refresh_seq;      /* bumped when a refresh attempt ends */
    struct zoho_error last_refresh_err; /* of the last failed attempt */
    long long refresh_block_until_ms;   /* wall: no new attempt before this */
    long long mint_ring[64];    /* wall ms of local mints (fallback limit) */
    int mint_head;
    PGconn *db_tok;             /* used only by the refreshing thread */

    /* limiter, usage and db_rl (rl_mu) */
    pthread_mutex_t rl_mu;
    pthread_cond_t rl_cv;
    PGconn *db_rl;
    bool unlimited;
    int per_minute, per_day, concurrency;
    long long interval_us;
    long long slot_next_us;     /* mono */
    long long slot_spacing_us;
    int slots_left;
    long long local_tat_us;     /* no-db pacing */
    int day_left;               /* slots of today's budget granted to us */
    long long day_block_until_ms;   /* wall */
    int inflight, share;
    /* Zoho's figures of its daily window, as last answered (rl_mu) */
    long long zday_limit, zday_remaining, zday_reset_s, zday_seen_ms; /* seen_ms 0: none new */
    long long pause_until_us;   /* mono: after a code 44 */
    struct zoho_usage usage[ZOHO_USAGE_MAX];
    int n_usage;
    long long last_flush_ms;
    long long last_db_warn_ms;

    pthread_mutex_t rng_mu;
    uint64_t rng;

    /* Zoho's blocks, outages and refused scopes (outage.c; st_mu, taken
     * before rl_mu, never after) */
    pthread_mutex_t st_mu;
    long long block_until_ms;   /* wall: no call before this (0: none) */
    int block_code;             /* Zoho's code of the block (45: the day) */
    long long block_row_ms;     /* tds.zoho_block.blocked_until as last read (0: NULL) */
    long long block_read_ms;    /* wall: when the row was last read */
    bool fleet_unreach;         /* the row says an engine found Zoho unreachable */
    long long unreach_since_ms; /* wall: start of this process's outage (0: none) */
    bool unreach_alerted;
    struct zoho_scope {
        const char *label;      /* interned usage label */
        bool ok;                /* answered 2xx once */
        long long denied_until_ms; /* wall: refused for scope until then */
    } scopes[48];
    int n_scopes;
    long long ok_gen;           /* tok_gen of the last 2xx answer (-1: none) */

    atomic_llong requests, retries, s429, s401, minted, adopted;
    atomic_llong day_remaining, day_reset_s;
};

struct zoho_conn {
    struct zoho_client *zc;
    CURL *h;
    atomic_bool *stop;
    long long calls;
    long long tok_gen;
    struct strbuf auth;         /* "Zoho-oauthtoken ..." */
    char *token;                /* copy of the token used */
    char *books_url, *inventory_url;
};

/* oauth.c */
/*
 * Makes c->auth / c->token / c->*_url current, refreshing (or adopting the
 * fleet's token) when needed.  0, or -1 with *e.
 */
int zoho_token_current(struct zoho_conn *c, struct zoho_error *e);
/* The token c used was refused (401): forget it unless already replaced. */
void zoho_token_invalidate(struct zoho_conn *c);
void zoho_token_init(struct zoho_client *zc);
void zoho_token_destroy(struct zoho_client *zc);

/* ratelimit.c */
/*
 * Waits for this engine's turn under the fleet's limits (concurrency slot,
 * paced slot, daily budget).  0, or -1 with *e (RATE_DAY, CANCELLED).  On
 * success the caller must call zoho_rate_release once the request is done.
 */
int zoho_rate_acquire(struct zoho_conn *c, struct zoho_error *e);
void zoho_rate_release(struct zoho_conn *c, const struct zoho_http_resp *r);
/* A 429 code 44: pauses the whole fleet until the minute window resets
 * (X-Rate-Limit-Reset when it speaks of the minute, else the next minute
 * of the clock) plus jitter. */
void zoho_rate_pause_minute(struct zoho_conn *c, long long reset_s);
/* A 429 code 45 or X-Rate-Limit-Remaining 0: blocks calls for the day. */
void zoho_rate_block_day(struct zoho_client *zc, long long reset_s);
/* Counts one exchange for tds.api_usage (status 0: no answer). */
void zoho_usage_count(struct zoho_client *zc, const char *endpoint, int status);
/* SIGHUP: the limits of cfg from the next grant on. */
void zoho_rate_reload(struct zoho_client *zc, const struct tds_config *cfg);
void zoho_rate_init(struct zoho_client *zc);
void zoho_rate_destroy(struct zoho_client *zc);

/* client.c */
/* Sleeps ms unless the stop flag rises: false if stopped. */
bool zoho_sleep(struct zoho_conn *c, long long ms);
long long zoho_jitter(struct zoho_client *zc, long long max_ms);
/* zoho_backoff_ms with the client's settings and (locked) random state. */
long long zoho_backoff(struct zoho_client *zc, int attempt);
/* The longest message a struct zoho_error keeps (bytes, valid UTF-8). */
#define ZOHO_ERROR_MAX 2000
/* Sets e (clearing it first) with a formatted message. */
void zoho_error_set(struct zoho_error *e, enum zoho_err_kind kind, int http_status, int code,
                    const char *endpoint, int page, const char *fmt, ...) TDS_PRINTF(7, 8);
/* A printable, redacted copy of outside text: valid UTF-8 (utf8_truncate),
 * at most max bytes cut on a character boundary (+ "..."), control bytes as
 * spaces.  Caller frees. */
char *zoho_outside_text(const char *s, size_t max);
/* Logs once per minute at most about coordination database trouble. */
void zoho_db_warn(struct zoho_client *zc, const char *what, const char *err);

/* outage.c */
void zoho_outage_init(struct zoho_client *zc);
void zoho_outage_destroy(struct zoho_client *zc);
/*
 * Before a request: waits while the fleet's recorded block lasts (the row
 * of tds.zoho_block, re-read at most once a second, every time while a
 * block is known).  0 when calls may go; -1 with *e: ZOHO_ERR_BLOCKED (or
 * RATE_DAY for a code 45) when the block outlasts zoho.max_wait_seconds,
 * or CANCELLED.
 */
int zoho_block_wait(struct zoho_conn *c, const char *endpoint, int page, struct zoho_error *e);
/* Records a block (until_ms, wall) for the whole fleet and raises the
 * zoho_blocked alert "Zoho blocked until HH:MM UTC".  Can't fail. */
void zoho_block_set(struct zoho_client *zc, long long until_ms, int status, int code,
                    const char *why);
/* Is this transport failure (curl code) Zoho being unreachable (DNS,
 * refused, TLS) rather than a slow or broken answer? */
bool zoho_outage_curl(int curl_code);
/*
 * After an exchange.  outage: Zoho unreachable (zoho_outage_curl, or a
 * gateway's HTML 502/503/504); answered: an answer of Zoho's own; neither
 * (a timeout, a reset) leaves the state alone.  Raises zoho_unreachable
 * after zoho.unreachable_alert_seconds, resolves it (and a past block's
 * alert) once Zoho answers.  Returns how long the outage has lasted (ms,
 * 0 when none).  Can't fail.
 */
long long zoho_outage_note(struct zoho_client *zc, bool outage, bool answered, int status,
                           long long tok_gen, const char *why);
/* How long this process has seen Zoho unreachable (ms; 0: it answers). */
long long zoho_outage_age_ms(struct zoho_client *zc);
/* Scope bookkeeping per usage label. */
bool zoho_scope_denied(struct zoho_client *zc, const char *label);
bool zoho_scope_seen_ok(struct zoho_client *zc, const char *label);
void zoho_scope_note_ok(struct zoho_client *zc, const char *label);
/* True if an answer 2xx came with token generation gen. */
bool zoho_token_proven(struct zoho_client *zc, long long gen);
/* True if any answer 2xx came (with any token). */
bool zoho_any_ok(struct zoho_client *zc);
/* Marks label refused for its scope (an hour) and raises one alert naming
 * the scope; returns the scope's name (static). */
const char *zoho_scope_deny(struct zoho_client *zc, const char *label);
/* "ZohoInventory.items.READ" for "inventory/items/{id}/image". */
const char *zoho_scope_name(const char *label, char *buf, size_t size);

/* Raises (or bumps) the critical zoho_auth alert with e's message, through
 * the limiter's connection; the janitor resolves it once calls succeed.
 * Call with no client lock held.  Can't fail (a failure is logged). */
void zoho_auth_alert(struct zoho_client *zc, const struct zoho_error *e);

#endif
