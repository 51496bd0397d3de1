/*
 * ratelimit.c: the client-side limiter that keeps the whole fleet under the
 * organization's limits by itself, and the API usage counters.
 *
 * Per minute: a generic cell rate pacer.  Requests are spaced evenly,
 * 60 s / (per_minute x headroom), for the whole fleet: tds.rate_pacer holds
 * the fleet's "theoretical arrival time" per organization, and an engine
 * reserves a small slice of consecutive slots (about a quarter second's
 * worth) in one UPDATE ... RETURNING, then spends them at their times.  No
 * burst at the start of a minute, no database round trip per request.
 * Slots left unused for long are dropped, never spent late in a bunch.
 *
 * Per day: tds.rate_windows counts the day's calls per organization; an
 * engine reserves its budget in slices.  X-Rate-Limit-Remaining/-Reset from
 * Zoho win when they say less, and a code 45 stops the fleet for the day.
 *
 * Concurrency: every engine heartbeats a row of tds.rate_clients with its
 * reservations; its share of the limit is limit / live engines.
 *
 * Without a database (or while it is down) the same arithmetic runs in the
 * process with the last known fleet size.
 *
 * Usage: calls per minute, endpoint and status are counted in memory and
 * added to tds.api_usage in one statement every few seconds.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tds/db.h"
#include "tds/log.h"
#include "zoho_internal.h"

#define STALE_SLOT_US 500000LL
#define LIVE_SECONDS "30"

static long long mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

void zoho_rate_init(struct zoho_client *zc)
{
    const struct tds_config *cfg = zc->cfg;
    pthread_mutex_init(&zc->rl_mu, NULL);
    pthread_cond_init(&zc->rl_cv, NULL);
    zc->unlimited = zc->opts.unlimited;
    zc->per_minute = cfg->zoho.rate_limit.per_minute > 0 ? cfg->zoho.rate_limit.per_minute : 100;
    zc->per_day = config_rate_per_day(cfg);
    zc->concurrency = config_rate_concurrency(cfg);
    zc->share = zc->concurrency;
    zc->interval_us = zoho_rate_interval_us(zc->per_minute, zc->opts.rate_headroom_pct);
    zc->last_flush_ms = time_wall_ms();
    atomic_store(&zc->day_remaining, -1);
    atomic_store(&zc->day_reset_s, -1);
}

void zoho_rate_reload(struct zoho_client *zc, const struct tds_config *cfg)
{
    pthread_mutex_lock(&zc->rl_mu);
    zc->per_minute = cfg->zoho.rate_limit.per_minute > 0 ? cfg->zoho.rate_limit.per_minute : 100;
    zc->per_day = config_rate_per_day(cfg);
    zc->concurrency = config_rate_concurrency(cfg);
    zc->interval_us = zoho_rate_interval_us(zc->per_minute, zc->opts.rate_headroom_pct);
    zc->slots_left = 0; /* the next grant is paced at the new rate */
    pthread_mutex_unlock(&zc->rl_mu);
    pthread_cond_broadcast(&zc->rl_cv);
}

static int flush_locked(struct zoho_client *zc, char **err);

void zoho_rate_destroy(struct zoho_client *zc)
{
    char *err = NULL;
    pthread_mutex_lock(&zc->rl_mu);
    if (flush_locked(zc, &err) != 0) {
        log_warn("zoho: api usage not recorded: %s", err);
        free(err);
    }
    if (zc->db_rl != NULL) {
        const char *p[] = {zc->org, zc->instance};
        if (db_cmd(zc->db_rl, "DELETE FROM tds.rate_clients WHERE org = $1 AND instance = $2", 2,
                   p, &err) != 0) {
            free(err);
        }
    }
    pthread_mutex_unlock(&zc->rl_mu);
    pthread_cond_destroy(&zc->rl_cv);
    pthread_mutex_destroy(&zc->rl_mu);
}

void zoho_db_warn(struct zoho_client *zc, const char *what, const char *err)
{
    long long now = time_wall_ms();
    /* Racy by design: at worst two lines instead of one. */
    if (now - zc->last_db_warn_ms < 60000)
        return;
    zc->last_db_warn_ms = now;
    log_warn("zoho: database trouble while %s (coordinating within this process "
             "meanwhile): %s",
             what, err ? err : "unknown error");
}

/* Milliseconds until the next UTC midnight. */
static long long until_midnight_ms(long long now)
{
    long long day = 86400000LL;
    return day - now % day;
}

/* ---- daily budget (under rl_mu) ---- */

static int reserve_day(struct zoho_client *zc)
{
    int slice = zc->per_day / 100;
    if (slice < 1)
        slice = 1;
    if (slice > 50)
        slice = 50;
    if (zc->db_rl != NULL && db_ok(zc->db_rl)) {
        char s1[16], s2[16];
        snprintf(s1, sizeof s1, "%d", slice);
        snprintf(s2, sizeof s2, "%d", zc->per_day);
        const char *p[] = {zc->org, s1, s2};
        char *err = NULL;
        PGresult *r = db_exec(
            zc->db_rl,
            "INSERT INTO tds.rate_windows AS w (org, kind, window_start, used, last_grant)"
            " VALUES ($1, 'day', date_trunc('day', now()), LEAST($2::int, $3::int),"
            " LEAST($2::int, $3::int))"
            " ON CONFLICT (org, kind, window_start) DO UPDATE"
            " SET last_grant = GREATEST(LEAST(w.used + $2::int, $3::int) - w.used, 0),"
            " used = GREATEST(LEAST(w.used + $2::int, $3::int), w.used)"
            " RETURNING last_grant",
            3, p, &err);
        if (r != NULL && PQntuples(r) == 1) {
            int g = atoi(PQgetvalue(r, 0, 0));
            PQclear(r);
            return g;
        }
        PQclear(r);
        zoho_db_warn(zc, "reserving the daily budget", err);
        free(err);
    }
    /* In-process: trust the budget locally (headers still stop us). */
    return slice;
}

/* ---- pacing (under rl_mu) ---- */

static void reserve_slots(struct zoho_client *zc)
{
    int k = zoho_rate_slice(zc->per_minute);
    long long now = mono_us();
    if (zc->db_rl != NULL && db_ok(zc->db_rl)) {
        char sk[16], si[24];
        snprintf(sk, sizeof sk, "%d", k);
        snprintf(si, sizeof si, "%lld", zc->interval_us);
        const char *p[] = {zc->org, zc->instance, sk, si};
        char *err = NULL;
        PGresult *r = db_exec(
            zc->db_rl,
            "WITH hb AS ("
            "  INSERT INTO tds.rate_clients (org, instance, heartbeat_at)"
            "  VALUES ($1, $2, clock_timestamp())"
            "  ON CONFLICT (org, instance) DO UPDATE SET heartbeat_at = EXCLUDED.heartbeat_at"
            "), p AS ("
            "  INSERT INTO tds.rate_pacer AS r (org, tat)"
            "  VALUES ($1, clock_timestamp() + make_interval(secs => $3::int * $4::bigint / 1e6))"
            "  ON CONFLICT (org) DO UPDATE SET tat = GREATEST(r.tat, clock_timestamp())"
            "    + make_interval(secs => $3::int * $4::bigint / 1e6)"
            "  RETURNING tat"
            ")"
            " SELECT floor(extract(epoch FROM p.tat - clock_timestamp()) * 1e6)::bigint"
            "        - $3::int * $4::bigint,"
            "   1 + (SELECT count(*) FROM tds.rate_clients c WHERE c.org = $1"
            "        AND c.instance <> $2"
            "        AND c.heartbeat_at > clock_timestamp() - interval '" LIVE_SECONDS
            " seconds')"
            " FROM p",
            4, p, &err);
        if (r != NULL && PQntuples(r) == 1) {
            long long delay = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
            int live = atoi(PQgetvalue(r, 0, 1));
            PQclear(r);
            zc->slot_next_us = mono_us() + (delay > 0 ? delay : 0);
            zc->slot_spacing_us = zc->interval_us;
            zc->slots_left = k;
            int share = zoho_rate_share(zc->concurrency, live);
            if (share != zc->share) {
                zc->share = share;
                pthread_cond_broadcast(&zc->rl_cv);
            }
            return;
        }
        PQclear(r);
        zoho_db_warn(zc, "reserving request slots", err);
        free(err);
    }
    /* In-process pacing at this engine's share of the fleet's rate. */
    int live = zc->concurrency / (zc->share > 0 ? zc->share : 1);
    if (live < 1 || zc->db_rl == NULL)
        live = 1;
    zc->slot_spacing_us = zc->interval_us * live;
    zc->slot_next_us = zoho_pace_reserve(&zc->local_tat_us, now, zc->slot_spacing_us, k);
    zc->slots_left = k;
}

static bool stopped(const struct zoho_conn *c)
{
    return c->stop != NULL && atomic_load(c->stop);
}

static void timed_wait(struct zoho_client *zc, long ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_nsec += ms * 1000000L;
    while (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_cond_timedwait(&zc->rl_cv, &zc->rl_mu, &ts);
}

int zoho_rate_acquire(struct zoho_conn *c, struct zoho_error *e)
{
    struct zoho_client *zc = c->zc;
    pthread_mutex_lock(&zc->rl_mu);
    while (zc->inflight >= zc->share) {
        if (stopped(c)) {
            pthread_mutex_unlock(&zc->rl_mu);
            zoho_error_set(e, ZOHO_ERR_CANCELLED, 0, -1, NULL, 0, "cancelled");
            return -1;
        }
        timed_wait(zc, 100);
    }
    zc->inflight++;
    if (zc->unlimited) {
        pthread_mutex_unlock(&zc->rl_mu);
        return 0;
    }
    long long now = time_wall_ms();
    if (zc->day_block_until_ms > now) {
        long long wait = zc->day_block_until_ms - now;
        zc->inflight--;
        pthread_cond_broadcast(&zc->rl_cv);
        pthread_mutex_unlock(&zc->rl_mu);
        zoho_error_set(e, ZOHO_ERR_RATE_DAY, 429, 45, NULL, 0,
                       "daily API budget of the organization exhausted (%d calls): calls "
                       "resume in %lld min",
                       zc->per_day, (wait + 59999) / 60000);
        e->retry_after_ms = wait;
        return -1;
    }
    if (zc->day_left <= 0) {
        zc->day_left = reserve_day(zc);
        if (zc->day_left <= 0) {
            zc->day_block_until_ms = now + until_midnight_ms(now);
            pthread_mutex_unlock(&zc->rl_mu);
            return zoho_rate_acquire(c, e); /* reports it */
        }
    }
    zc->day_left--;

    long long t = mono_us();
    if (zc->slots_left > 0 && zc->slot_next_us < t - STALE_SLOT_US)
        zc->slots_left = 0; /* unused for too long: spending them now would burst */
    if (zc->slots_left == 0)
        reserve_slots(zc);
    long long slot = zc->slot_next_us;
    zc->slot_next_us += zc->slot_spacing_us;
    zc->slots_left--;
    if (slot < zc->pause_until_us)
        slot = zc->pause_until_us;
    pthread_mutex_unlock(&zc->rl_mu);

    long long wait_us = slot - mono_us();
    if (wait_us > 0 && !zoho_sleep(c, (wait_us + 999) / 1000)) {
        zoho_rate_release(c, NULL);
        zoho_error_set(e, ZOHO_ERR_CANCELLED, 0, -1, NULL, 0, "cancelled");
        return -1;
    }
    return 0;
}

void zoho_rate_release(struct zoho_conn *c, const struct zoho_http_resp *r)
{
    struct zoho_client *zc = c->zc;
    pthread_mutex_lock(&zc->rl_mu);
    zc->inflight--;
    if (r != NULL && r->rl_remaining >= 0 && r->rl_limit > 0 && r->rl_reset > 60) {
        /* The daily window (a reset of a minute at most is the minute's):
         * kept for tds.zoho_day at the next flush. */
        zc->zday_limit = r->rl_limit;
        zc->zday_remaining = r->rl_remaining;
        zc->zday_reset_s = r->rl_reset;
        zc->zday_seen_ms = time_wall_ms();
    }
    if (r != NULL && r->rl_remaining >= 0) {
        atomic_store(&zc->day_remaining, r->rl_remaining);
        atomic_store(&zc->day_reset_s, r->rl_reset);
        if (r->rl_remaining == 0 && !zc->unlimited) {
            long long now = time_wall_ms();
            if (r->rl_reset > 0 && r->rl_reset <= 60) {
                /* A window of a minute at most (a proxy, the simulator without
                 * a daily limit): pause until it resets, do not stop the day. */
                long long until = mono_us() + r->rl_reset * 1000000LL + 200000;
                if (until > zc->pause_until_us)
                    zc->pause_until_us = until;
                zc->slots_left = 0;
            } else {
                long long until = r->rl_reset > 0 ? now + r->rl_reset * 1000
                                                  : now + until_midnight_ms(now);
                if (until > zc->day_block_until_ms)
                    zc->day_block_until_ms = until;
            }
        }
    }
    pthread_cond_signal(&zc->rl_cv);
    pthread_mutex_unlock(&zc->rl_mu);
}

void zoho_rate_pause_minute(struct zoho_conn *c, long long reset_s)
{
    struct zoho_client *zc = c->zc;
    long long now = time_wall_ms();
    /* X-Rate-Limit-Reset of at most a minute describes the minute window;
     * otherwise wait for the next minute of the clock. */
    long long wait_ms = reset_s > 0 && reset_s <= 60 ? reset_s * 1000 : 60000 - now % 60000;
    wait_ms += zoho_jitter(zc, 1000);
    pthread_mutex_lock(&zc->rl_mu);
    long long until = mono_us() + wait_ms * 1000;
    if (until > zc->pause_until_us)
        zc->pause_until_us = until;
    zc->slots_left = 0;
    if (zc->local_tat_us < until)
        zc->local_tat_us = until;
    if (zc->db_rl != NULL && db_ok(zc->db_rl)) {
        char ms[24];
        snprintf(ms, sizeof ms, "%lld", wait_ms);
        const char *p[] = {zc->org, ms};
        char *err = NULL;
        if (db_cmd(zc->db_rl,
                   "UPDATE tds.rate_pacer SET tat = GREATEST(tat, clock_timestamp()"
                   " + make_interval(secs => $2::bigint / 1000.0)) WHERE org = $1",
                   2, p, &err) != 0) {
            zoho_db_warn(zc, "pausing the fleet after a 429", err);
            free(err);
        }
    }
    pthread_mutex_unlock(&zc->rl_mu);
    log_warn("zoho: per-minute limit hit (429 code 44): pausing calls for %lld ms", wait_ms);
}

void zoho_rate_block_day(struct zoho_client *zc, long long reset_s)
{
    long long now = time_wall_ms();
    pthread_mutex_lock(&zc->rl_mu);
    long long until = reset_s > 0 ? now + reset_s * 1000 : now + until_midnight_ms(now);
    if (until > zc->day_block_until_ms)
        zc->day_block_until_ms = until;
    zc->day_left = 0;
    if (zc->db_rl != NULL && db_ok(zc->db_rl)) {
        char lim[16];
        snprintf(lim, sizeof lim, "%d", zc->per_day);
        const char *p[] = {zc->org, lim};
        char *err = NULL;
        if (db_cmd(zc->db_rl,
                   "INSERT INTO tds.rate_windows AS w (org, kind, window_start, used, last_grant)"
                   " VALUES ($1, 'day', date_trunc('day', now()), $2::int, 0)"
                   " ON CONFLICT (org, kind, window_start) DO UPDATE"
                   " SET used = GREATEST(w.used, $2::int)",
                   2, p, &err) != 0) {
            zoho_db_warn(zc, "stopping the fleet for the day", err);
            free(err);
        }
    }
    pthread_mutex_unlock(&zc->rl_mu);
}

/* ---- api usage ---- */

/* Zoho's latest daily figures into tds.zoho_day (rl_mu held). */
static int flush_day_locked(struct zoho_client *zc, char **err)
{
    if (zc->zday_seen_ms == 0 || zc->db_rl == NULL || !db_ok(zc->db_rl))
        return 0;
    char lim[24], rem[24], reset[24];
    snprintf(lim, sizeof lim, "%lld", zc->zday_limit);
    snprintf(rem, sizeof rem, "%lld", zc->zday_remaining);
    snprintf(reset, sizeof reset, "%lld",
             zc->zday_reset_s - (time_wall_ms() - zc->zday_seen_ms) / 1000);
    const char *p[] = {zc->org, lim, rem, reset};
    int rc = db_cmd(zc->db_rl,
                    "INSERT INTO tds.zoho_day (org, day_limit, remaining, reset_at, seen_at)"
                    " VALUES ($1, $2::bigint, $3::bigint,"
                    " now() + make_interval(secs => $4::bigint), now())"
                    " ON CONFLICT (org) DO UPDATE SET day_limit = EXCLUDED.day_limit,"
                    " remaining = EXCLUDED.remaining, reset_at = EXCLUDED.reset_at,"
                    " seen_at = EXCLUDED.seen_at",
                    4, p, err);
    if (rc == 0)
        zc->zday_seen_ms = 0;
    return rc;
}

static int flush_locked(struct zoho_client *zc, char **err)
{
    zc->last_flush_ms = time_wall_ms();
    if (flush_day_locked(zc, err) != 0)
        return -1;
    if (zc->n_usage == 0 || zc->db_rl == NULL)
        return 0;
    if (!db_ok(zc->db_rl)) {
        *err = xstrdup("database connection lost");
        return -1;
    }
    int n = zc->n_usage;
    struct strbuf sql = {0};
    const char **params = xcalloc((size_t)n * 5, sizeof *params);
    char (*nums)[3][24] = xcalloc((size_t)n, sizeof *nums);
    strbuf_puts(&sql, "INSERT INTO tds.api_usage (minute, instance, endpoint, status, calls)"
                      " VALUES ");
    for (int i = 0; i < n; i++) {
        struct zoho_usage *u = &zc->usage[i];
        snprintf(nums[i][0], sizeof nums[i][0], "%lld", u->minute);
        snprintf(nums[i][1], sizeof nums[i][1], "%d", u->status);
        snprintf(nums[i][2], sizeof nums[i][2], "%d", u->calls);
        params[i * 5 + 0] = nums[i][0];
        params[i * 5 + 1] = zc->instance;
        params[i * 5 + 2] = u->endpoint;
        params[i * 5 + 3] = nums[i][1];
        params[i * 5 + 4] = nums[i][2];
        int b = i * 5;
        strbuf_printf(&sql, "%s(to_timestamp($%d::bigint), $%d, $%d, $%d::int, $%d::int)",
                      i ? ", " : "", b + 1, b + 2, b + 3, b + 4, b + 5);
    }
    strbuf_puts(&sql, " ON CONFLICT (minute, instance, endpoint, status)"
                      " DO UPDATE SET calls = tds.api_usage.calls + EXCLUDED.calls");
    int rc = db_cmd(zc->db_rl, sql.buf, n * 5, params, err);
    if (rc == 0)
        zc->n_usage = 0;
    strbuf_free(&sql);
    free(params);
    free(nums);
    return rc;
}

int zoho_client_flush_usage(struct zoho_client *zc, char **err)
{
    pthread_mutex_lock(&zc->rl_mu);
    int rc = flush_locked(zc, err);
    pthread_mutex_unlock(&zc->rl_mu);
    return rc;
}

void zoho_usage_count(struct zoho_client *zc, const char *endpoint, int status)
{
    long long now = time_wall_ms();
    long long minute = now / 60000 * 60;
    pthread_mutex_lock(&zc->rl_mu);
    int i;
    for (i = zc->n_usage - 1; i >= 0; i--) {
        struct zoho_usage *u = &zc->usage[i];
        if (u->minute == minute && u->status == status && str_eq(u->endpoint, endpoint))
            break;
    }
    if (i < 0) {
        if (zc->n_usage == ZOHO_USAGE_MAX) {
            char *err = NULL;
            if (flush_locked(zc, &err) != 0) {
                zoho_db_warn(zc, "recording api usage", err);
                free(err);
                /* Keep the newest: drop the oldest half. */
                memmove(zc->usage, zc->usage + ZOHO_USAGE_MAX / 2,
                        sizeof zc->usage[0] * (ZOHO_USAGE_MAX / 2));
                zc->n_usage = ZOHO_USAGE_MAX / 2;
            }
        }
        i = zc->n_usage++;
        zc->usage[i] = (struct zoho_usage){minute, endpoint, status, 0};
    }
    zc->usage[i].calls++;
    if (zc->db_rl != NULL && now - zc->last_flush_ms >= zc->opts.usage_flush_ms) {
        char *err = NULL;
        if (flush_locked(zc, &err) != 0) {
            zoho_db_warn(zc, "recording api usage", err);
            free(err);
        }
    }
    pthread_mutex_unlock(&zc->rl_mu);
}
