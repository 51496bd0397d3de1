/*
 * sim.h: the pieces of tds-zoho-sim, a faithful Zoho Books/Inventory API
 * simulator on loopback.  Private to src/sim: the entity table and data
 * generator (gen.c), the record store with pre-rendered JSON (store.c), the
 * HTTP front (http.c), webhooks (webhook.c) and images (image.c).
 */
#ifndef TDS_SIM_H
#define TDS_SIM_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "tds/util.h"

#define SIM_BOOKS 1u
#define SIM_INVENTORY 2u
#define SIM_MAX_STATUS 8 /* index 0 is "all" */
#define SIM_ENTITIES 13

struct sim_rng {
    uint64_t s;
};

/* One row of the entity table: everything the front needs to serve a list. */
struct sim_entity {
    const char *name;     /* list path and plural key: "items" */
    const char *singular; /* single-record key: "item" */
    const char *id_field; /* "item_id" */
    const char *label;    /* "Item" as in "Item does not exist." */
    const char *report;   /* page_context.report_name */
    unsigned products;    /* SIM_BOOKS | SIM_INVENTORY */
    unsigned lmt_filter;  /* products whose list honours last_modified_time= */
    const char *const *statuses; /* NULL-terminated, lowercase; NULL: no status filter */
    long default_count;
    const char *detail_key; /* key served on detail only ("locations"), or NULL */
};

extern const struct sim_entity sim_entities[SIM_ENTITIES];

/* Index of the entity named name in sim_entities, or -1. */
int sim_entity_find(const char *name);

/* Options shared by every part; filled by main.c, some changed by /_sim/config. */
struct sim_config {
    uint64_t seed;
    long counts[SIM_ENTITIES];
    char *org;
    char *client_id, *client_secret, *refresh_token;
    bool legacy_warehouses;
    char *base_url; /* http://HOST:PORT, for api_domain */
};

/* ---- shapes (gen.c): real Zoho response shapes, switched on by --shape
 * (README "Shapes"); none by default. ---- */
enum {
    SIM_SHAPE_NUMERIC_IDS = 1u << 0,   /* item_id/location_id as JSON numbers, 16 digits */
    SIM_SHAPE_STOCK_FIGURES = 1u << 1, /* *_available_for_sale_stock, *_committed_stock */
    SIM_SHAPE_HIDE_INACTIVE = 1u << 2, /* no filter_by: inactive records hidden */
    SIM_SHAPE_BOOKS_PC_ARRAY = 1u << 3, /* Books: page_context as [{...}] */
    SIM_SHAPE_SMALL_PAGES = 1u << 4,    /* at most 10 rows a page */
};
extern unsigned sim_shapes;
/* Parses "numeric-ids,stock-figures" into *out; false with *bad the unknown name. */
bool sim_shapes_parse(const char *spec, unsigned *out, char **bad);
/* Whether key is an id sim_json_render writes as a number (numeric-ids). */
bool sim_shape_numeric_key(const char *key);

/* ---- rng (gen.c) ---- */
uint64_t sim_rng_next(struct sim_rng *r);
/* Uniform in [0, n); n > 0. */
uint64_t sim_rng_below(struct sim_rng *r, uint64_t n);
double sim_rng_unit(struct sim_rng *r);
struct sim_rng sim_rng_for(uint64_t seed, int ent, uint64_t seq);

/* ---- time (gen.c) ---- */
/* Formats epoch seconds as 2025-11-05T12:06:10+0530 into buf (>= 64 bytes). */
void sim_time_format(int64_t t, char *buf);
/*
 * Parses yyyy-MM-ddTHH:mm:ss with an optional Z, +hhmm, +hh:mm, -hhmm (a
 * space stands for a '+' that a query string decoded); no offset means the
 * organization's +0530.  Returns false on junk.
 */
bool sim_time_parse(const char *s, int64_t *out);

/* ---- generator (gen.c) ---- */
/* The id of record seq of entity ent: 19 digits, increasing with seq. */
uint64_t sim_id_for(int ent, uint64_t seq);
/*
 * Generates record seq of entity ent as a cJSON object (caller deletes it).
 * now < 0: generated history times; otherwise created and modified at now.
 * This function can't fail.
 */
cJSON *sim_generate(const struct sim_config *cfg, int ent, uint64_t seq, int64_t now);
/* Recomputes an item's stock totals as the sums over its locations (or warehouses). */
void sim_item_totals(cJSON *item);
/* Applies a random realistic change to rec (mutate). */
void sim_generate_change(const struct sim_config *cfg, int ent, cJSON *rec, struct sim_rng *r);

/* ---- store (store.c) ---- */
/* An immutable rendering of one record: list form, and the detail suffix. */
struct sim_blob {
    atomic_int ref;
    size_t list_len;   /* data[0..list_len) is the list form, ends with '}' */
    size_t suffix_len; /* detail = list minus '}' + data[list_len..) ; 0: same as list */
    char data[];
};

struct sim_rec {
    uint64_t id;
    char idstr[24];
    int64_t lmt;
    uint8_t st;    /* status index, 1.. ; 0 when the entity has no status */
    uint8_t image; /* 0 none, 1 png, 2 jpeg */
    struct sim_blob *blob;
};

void sim_blob_unref(struct sim_blob *b);
/* Appends the detail form of b to sb. */
void sim_blob_detail(const struct sim_blob *b, struct strbuf *sb);

/* Builds every table from cfg.  This function can't fail. */
void sim_store_init(const struct sim_config *cfg);
void sim_store_free(void);
void sim_store_rdlock(void);
void sim_store_wrlock(void);
void sim_store_unlock(void);

struct sim_list_query {
    int ent;
    int st;          /* 0: all */
    bool by_lmt;     /* sort by (last_modified_time, id) instead of id */
    bool desc;
    bool has_since;
    int64_t since;   /* inclusive */
    long page, per_page;
};

/*
 * Appends the records of page q to sb (comma separated list forms) and sets
 * *more.  Caller holds the read lock.
 */
void sim_store_page(const struct sim_list_query *q, struct strbuf *sb, bool *more);
/* Finds a record by id string; NULL if none.  Caller holds a lock. */
struct sim_rec *sim_store_get(int ent, const char *id);
/*
 * Snapshot of every record of ent in id order with references taken; the
 * caller unrefs each blob and frees the array.  Takes the lock itself.
 */
struct sim_blob **sim_store_snapshot(int ent, size_t *n);

/*
 * Control changes.  Each takes the write lock, returns the new detail JSON
 * (caller frees) or NULL with *err set to a static message, and queues a
 * webhook.  patch is a JSON object of fields.
 */
char *sim_store_patch(int ent, const char *id, const cJSON *patch, const char **err);
char *sim_store_create(int ent, const cJSON *fields, const char **err);
bool sim_store_delete(int ent, const char *id);
/* Random changes; returns a JSON object text listing affected ids (caller frees). */
char *sim_store_mutate(int ent, long update, long create, long del, bool has_seed, uint64_t seed);
/* The sim's clock for changes: wall time, never going backwards. */
int64_t sim_now(void);

/* ---- JSON rendering (store.c) ---- */
/* Appends v as compact JSON with Zoho's number style (six-decimal quantities). */
void sim_json_render(struct strbuf *sb, const cJSON *v, const char *key);
void sim_json_string(struct strbuf *sb, const char *s);

/* ---- webhooks (webhook.c) ---- */
/* Starts the sender thread; url NULL: webhooks off.  Returns false on bad options. */
bool sim_webhook_start(const char *url, bool form, const char *secret, const char *hmac);
/* Queues a webhook for a changed record (detail JSON).  Never blocks on the network. */
void sim_webhook_queue(int ent, const char *event, const char *detail, size_t len);
void sim_webhook_stop(void);
void sim_webhook_counts(long *sent, long *failed, long *queued);

/* ---- images (image.c) ---- */
/* Builds the image of an item: PNG (kind 1) or JPEG (kind 2).  Caller frees *out. */
void sim_image_make(uint64_t id, int kind, unsigned char **out, size_t *len);

/* ---- faults and HTTP (http.c) ---- */
struct sim_http_opts {
    int threads;
    long token_ttl;
    long mint_limit, mint_window;
    long rate_minute, rate_day, concurrency;
    const char *faults;
};
/* Parses a fault spec; false with a message in err (caller frees) on junk. */
bool sim_faults_check(const char *spec, char **err);
/* Starts serving on the listening socket fd.  False on failure. */
bool sim_http_start(int fd, const struct sim_config *cfg, const struct sim_http_opts *o);
void sim_http_stop(void);

#endif
