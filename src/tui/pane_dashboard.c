/*
 * pane_dashboard.c: is the sync healthy, in two seconds.  The verdict and
 * its reasons (health.h, the same verdict as `tds status` and /health),
 * engines with host, busy threads, state and heartbeat age, queue depth by
 * status and entity, items per minute and failures over the last hour as
 * sparklines, success rate, backlog ETA, the Zoho API budget, last
 * successful sync and next scheduled run per job, DLQ size and open alerts
 * by severity.  Two columns from 110 columns up, one below.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tui_internal.h"

struct cursor {
    int y, x, w, ymax;
};

static bool line(struct cursor *c, const char *s, attr_t a)
{
    if (c->y >= c->ymax)
        return false;
    tui_put(c->y++, c->x, s, c->w, a, false);
    return true;
}

static void heading(struct cursor *c, const char *s)
{
    line(c, s, tui_attr(ROLE_HEADER));
}

/* Draws label + value pieces with their own roles on one line. */
static void kv(struct cursor *c, const char *label, const char *value, enum tui_role role)
{
    if (c->y >= c->ymax)
        return;
    int used = tui_put(c->y, c->x, label, c->w, tui_attr(ROLE_DIM), false);
    tui_put(c->y, c->x + used, value, c->w - used, tui_attr(role), false);
    c->y++;
}

static void sparkline(const struct tui_rs *rs, long long now, const char *field, int width,
                      char *out, size_t n, long long *sum, long long *maxv)
{
    long long v[60] = {0};
    long long base = now / 60 * 60 - 59 * 60;
    for (int i = 0; rs && i < rs->nrows; i++) {
        long long m = (tui_rs_ll(rs, i, "minute") - base) / 60;
        if (m >= 0 && m < 60)
            v[m] += tui_rs_ll(rs, i, field);
    }
    *sum = 0;
    *maxv = 0;
    for (int i = 0; i < 60; i++) {
        *sum += v[i];
        if (v[i] > *maxv)
            *maxv = v[i];
    }
    out[0] = 0;
    int cells = width < 60 ? width : 60;
    for (int i = 60 - cells; i < 60; i++) {
        const char *g = " ";
        if (v[i] > 0 && *maxv > 0)
            g = tui_g.spark[(int)((v[i] * 7 + *maxv - 1) / *maxv)];
        strncat(out, g, n - strlen(out) - 1);
    }
}

static void draw_health(struct tui *t, const struct tui_snapshot *s, struct cursor *c)
{
    char reasons[6][128];
    int nr = 0;
    const char *verdict = tui_health(t, s, reasons, 6, &nr);
    char buf[1024];
    snprintf(buf, sizeof buf, " %s ", verdict);
    for (char *p = buf; *p; p++)
        if (*p >= 'a' && *p <= 'z')
            *p = (char)(*p - 32);
    enum tui_role role = tui_status_role(verdict);
    if (c->y < c->ymax) {
        int used = tui_put(c->y, c->x, "Health ", c->w, tui_attr(ROLE_HEADER), false);
        tui_put(c->y, c->x + used, buf, c->w - used,
                tui_attr(role == ROLE_OK ? ROLE_OK : role) | A_BOLD | A_REVERSE, false);
        c->y++;
    }
    for (int i = 0; i < nr && i < 3; i++) {
        snprintf(buf, sizeof buf, "  %s %s", tui_g.mark, reasons[i]);
        line(c, buf, tui_attr(role));
    }
    if (nr > 3) {
        snprintf(buf, sizeof buf, "  (+%d more)", nr - 3);
        line(c, buf, tui_attr(ROLE_DIM));
    }
}

static void draw_throughput(struct tui *t, const struct tui_snapshot *s, struct cursor *c)
{
    char spark[256], buf[256], a[32], b[32];
    long long items, maxi, fails, maxf;
    int sw = c->w - 16;
    heading(c, "Throughput, last hour");
    sparkline(s->rs[TQ_SPARK], t->now, "items", sw, spark, sizeof spark, &items, &maxi);
    tui_fmt_count(a, sizeof a, maxi);
    snprintf(buf, sizeof buf, "%s/min max", a);
    if (c->y < c->ymax) {
        tui_put(c->y, c->x, "  items  ", 9, tui_attr(ROLE_DIM), false);
        tui_put(c->y, c->x + 9, spark, c->w - 9, tui_attr(ROLE_SPARK), false);
        c->y++;
    }
    sparkline(s->rs[TQ_SPARK], t->now, "failures", sw, spark, sizeof spark, &fails, &maxf);
    if (c->y < c->ymax) {
        tui_put(c->y, c->x, "  failed ", 9, tui_attr(ROLE_DIM), false);
        tui_put(c->y, c->x + 9, spark, c->w - 9, tui_attr(ROLE_ERROR), false);
        c->y++;
    }
    /* rate over the last 15 minutes, for the ETA */
    long long recent = 0;
    const struct tui_rs *rs = s->rs[TQ_SPARK];
    for (int i = 0; rs && i < rs->nrows; i++)
        if (tui_rs_ll(rs, i, "minute") >= t->now / 60 * 60 - 14 * 60)
            recent += tui_rs_ll(rs, i, "items");
    double per_min = recent / 15.0;
    const struct tui_rs *h = s->rs[TQ_HEAD];
    long long backlog = tui_rs_ll(h, 0, "q_pending") + tui_rs_ll(h, 0, "q_retry");
    char eta[32];
    if (backlog == 0)
        snprintf(eta, sizeof eta, "none");
    else if (per_min < 0.01)
        snprintf(eta, sizeof eta, "unknown");
    else
        tui_fmt_age(eta, sizeof eta, (long long)(backlog / per_min * 60));
    tui_fmt_count(a, sizeof a, items);
    if (items + fails > 0)
        snprintf(b, sizeof b, "%.1f%%", 100.0 * items / (double)(items + fails));
    else
        snprintf(b, sizeof b, "-");
    snprintf(buf, sizeof buf, "  %s items, success %s, %.0f/min now, backlog ETA %s", a, b,
             per_min, eta);
    line(c, buf, tui_attr(items + fails > 0 && fails * 10 > items ? ROLE_WARN : ROLE_NORMAL));
}

static void draw_api(struct tui *t, const struct tui_snapshot *s, struct cursor *c)
{
    char buf[256], a[32], b[32], d[32];
    const struct tui_rs *rs = s->rs[TQ_API];
    int per_min = t->cfg ? t->cfg->zoho.rate_limit.per_minute : 0;
    long long per_day = t->cfg ? config_rate_per_day(t->cfg) : 0;
    /* Zoho's own word first: a block it announced, an outage. */
    const struct tui_rs *hd = s->rs[TQ_HEAD];
    const char *bu = hd ? tui_rs_get(hd, 0, "zoho_blocked_until") : NULL;
    const char *us = hd ? tui_rs_get(hd, 0, "zoho_unreachable_since") : NULL;
    if (bu != NULL && bu[0]) {
        const char *why = tui_rs_get(hd, 0, "zoho_block_reason");
        /* "2026-12-03T14:05:00Z" -> "14:05" */
        snprintf(buf, sizeof buf, "BLOCKED until %.5s UTC%s%s", strlen(bu) >= 16 ? bu + 11 : bu,
                 why && why[0] ? ": " : "", why ? why : "");
        kv(c, "Zoho     ", buf, ROLE_ERROR);
    }
    if (us != NULL && us[0]) {
        snprintf(buf, sizeof buf, "UNREACHABLE since %.5s UTC (runs back off)",
                 strlen(us) >= 16 ? us + 11 : us);
        kv(c, "Zoho     ", buf, ROLE_ERROR);
    }
    if (rs == NULL || rs->nrows == 0) {
        kv(c, "Zoho API ", "no usage recorded", ROLE_DIM);
        return;
    }
    long long m = tui_rs_ll(rs, 0, "this_minute"), day = tui_rs_ll(rs, 0, "today");
    long long thr = tui_rs_ll(rs, 0, "throttled_today");
    tui_fmt_count(a, sizeof a, day);
    tui_fmt_count(b, sizeof b, per_day);
    tui_fmt_count(d, sizeof d, thr);
    int pct = per_day > 0 ? (int)(day * 100 / per_day) : 0;
    snprintf(buf, sizeof buf, "%lld/%d this minute, %s/%s today (%d%%), %s throttled (429)", m,
             per_min, a, b, pct, d);
    kv(c, "Zoho API ", buf, thr > 0 || pct >= 80 ? ROLE_WARN : ROLE_NORMAL);
}

static void draw_queue(struct tui *t, const struct tui_snapshot *s, struct cursor *c)
{
    (void)t;
    static const char *const st[] = {"pending", "processing", "retry", "dead"};
    const struct tui_rs *rs = s->rs[TQ_QCOUNTS];
    char buf[512], n[32];
    heading(c, "Queue");
    for (size_t k = 0; k < TDS_ARRAY_LEN(st); k++) {
        long long total = 0;
        struct strbuf parts = {0};
        for (int i = 0; rs && i < rs->nrows; i++)
            if (strcmp(tui_rs_get(rs, i, "status"), st[k]) == 0) {
                long long v = tui_rs_ll(rs, i, "n");
                total += v;
                tui_fmt_count(n, sizeof n, v);
                strbuf_printf(&parts, "%s%s %s", parts.len ? ", " : "",
                              tui_rs_get(rs, i, "entity_type"), n);
            }
        tui_fmt_count(n, sizeof n, total);
        snprintf(buf, sizeof buf, "  %-10s %9s  %s", st[k], n, parts.buf ? parts.buf : "");
        line(c, buf, tui_attr(total > 0 ? tui_status_role(st[k]) : ROLE_DIM));
        strbuf_free(&parts);
    }
    tui_fmt_count(n, sizeof n, tui_rs_ll(s->rs[TQ_QDONE], 0, "done_1h"));
    snprintf(buf, sizeof buf, "  %-10s %9s  in the last hour", "completed", n);
    line(c, buf, tui_attr(ROLE_OK));
}

static void draw_alerts(struct tui *t, const struct tui_snapshot *s, struct cursor *c)
{
    (void)t;
    const struct tui_rs *h = s->rs[TQ_HEAD];
    char buf[256], d[32];
    long long cr = tui_rs_ll(h, 0, "alerts_critical"), er = tui_rs_ll(h, 0, "alerts_error");
    long long wa = tui_rs_ll(h, 0, "alerts_warning"), in = tui_rs_ll(h, 0, "alerts_info");
    long long dlq = tui_rs_ll(h, 0, "dlq_open");
    tui_fmt_count(d, sizeof d, dlq);
    snprintf(buf, sizeof buf, "%lld critical, %lld error, %lld warning, %lld info", cr, er, wa, in);
    kv(c, "Alerts   ", buf, cr ? ROLE_CRITICAL : er ? ROLE_ERROR : wa ? ROLE_WARN : ROLE_OK);
    snprintf(buf, sizeof buf, "%s open item%s", d, dlq == 1 ? "" : "s");
    kv(c, "DLQ      ", buf, dlq ? ROLE_WARN : ROLE_OK);
}

static void draw_engines(struct tui *t, const struct tui_snapshot *s, struct cursor *c)
{
    const struct tui_rs *rs = s->rs[TQ_ENGINES];
    char buf[256], age[16];
    heading(c, "Engines");
    if (rs == NULL || rs->nrows == 0) {
        line(c, "  none registered", tui_attr(ROLE_ERROR));
        return;
    }
    for (int i = 0; i < rs->nrows; i++) {
        tui_fmt_age(age, sizeof age, tui_rs_ll(rs, i, "heartbeat_age"));
        bool alive = strcmp(tui_rs_get(rs, i, "alive"), "t") == 0;
        const char *state = tui_rs_get(rs, i, "state");
        bool leads = strcmp(tui_rs_get(rs, i, "leader"), "t") == 0;
        snprintf(buf, sizeof buf, "  %-16.16s %-10.10s %-8s %2lld/%-2lld busy, beat %s%s%s",
                 tui_rs_get(rs, i, "instance"), tui_rs_get(rs, i, "host"), state,
                 tui_rs_ll(rs, i, "busy"), tui_rs_ll(rs, i, "threads"), age,
                 alive ? "" : "  (dead)", leads ? "  leader" : "");
        line(c, buf, tui_attr(!alive ? ROLE_ERROR : tui_status_role(state) == ROLE_NORMAL
                                                        ? ROLE_OK
                                                        : tui_status_role(state)));
    }
    (void)t;
}

static void draw_jobs(struct tui *t, const struct tui_snapshot *s, struct cursor *c)
{
    const struct tui_rs *rs = s->rs[TQ_JOBS];
    char buf[256], last[16], next[16];
    heading(c, "Jobs: last run, next run");
    for (int i = 0; rs && i < rs->nrows; i++) {
        long long l = tui_rs_ll(rs, i, "last_run"), n = tui_rs_ll(rs, i, "next_run");
        if (l > 0)
            tui_fmt_age(last, sizeof last, t->now - l);
        if (n > 0)
            tui_fmt_age(next, sizeof next, n - t->now);
        bool enabled = strcmp(tui_rs_get(rs, i, "enabled"), "t") == 0;
        snprintf(buf, sizeof buf, "  %-17.17s %-10s %-9s %s%s", tui_rs_get(rs, i, "name"),
                 l > 0 ? last : "never", l > 0 ? tui_rs_get(rs, i, "last_status") : "",
                 !enabled ? "disabled" : n <= 0 ? "-" : n <= t->now ? "due" : "in ",
                 enabled && n > t->now ? next : "");
        const char *ls = tui_rs_get(rs, i, "last_status");
        line(c, buf, tui_attr(!enabled ? ROLE_DIM : tui_status_role(ls)));
    }
    rs = s->rs[TQ_SYNCSTATE];
    if (rs && rs->nrows > 0) {
        heading(c, "Last successful sync");
        for (int i = 0; i < rs->nrows; i++) {
            long long l = tui_rs_ll(rs, i, "last_success");
            if (l > 0)
                tui_fmt_age(last, sizeof last, t->now - l);
            snprintf(buf, sizeof buf, "  %-22.22s %s%s", tui_rs_get(rs, i, "entity_type"),
                     l > 0 ? last : "never", l > 0 ? " ago" : "");
            line(c, buf, tui_attr(l > 0 ? ROLE_NORMAL : ROLE_WARN));
        }
    }
}

static void draw(struct tui *t, struct pane *p, int y, int x, int h, int w)
{
    (void)p;
    const struct tui_snapshot *s = t->snap;
    if (s == NULL || s->rs[TQ_HEAD] == NULL) {
        tui_put(y + 1, x + 2, s && !s->ok ? "waiting for the database..." : "loading...", w - 4,
                tui_attr(ROLE_DIM), false);
        return;
    }
    if (w >= 110) {
        int lw = w / 2 - 1;
        struct cursor l = {y, x + 1, lw - 1, y + h};
        struct cursor r = {y, x + lw + 2, w - lw - 3, y + h};
        draw_health(t, s, &l);
        draw_alerts(t, s, &l);
        draw_api(t, s, &l);
        l.y++;
        draw_throughput(t, s, &l);
        l.y++;
        draw_queue(t, s, &l);
        for (int i = y; i < y + h; i++)
            tui_put(i, x + lw, tui_g.vline, 1, tui_attr(ROLE_BORDER), false);
        draw_engines(t, s, &r);
        r.y++;
        draw_jobs(t, s, &r);
    } else {
        struct cursor c = {y, x + 1, w - 2, y + h};
        draw_health(t, s, &c);
        draw_alerts(t, s, &c);
        draw_api(t, s, &c);
        draw_throughput(t, s, &c);
        draw_queue(t, s, &c);
        draw_engines(t, s, &c);
        draw_jobs(t, s, &c);
    }
}

static bool key(struct tui *t, struct pane *p, enum tui_action a)
{
    (void)p;
    if (a == ACT_SYNC) {
        tui_sync_dialog(t, NULL);
        return true;
    }
    return false;
}

static void summary(struct tui *t, struct pane *p, char *buf, size_t n)
{
    (void)t;
    (void)p;
    snprintf(buf, n, "s: start a sync  2-6: details");
}

static void open_(struct tui *t, struct pane *p)
{
    (void)t;
    (void)p;
}

static void close_(struct tui *t, struct pane *p)
{
    (void)t;
    (void)p;
}

static void on_data(struct tui *t, struct pane *p, const struct tui_snapshot *s)
{
    (void)t;
    (void)p;
    (void)s;
}

const struct pane_ops pane_dashboard_ops = {
    .name = "dashboard",
    .title = "Dashboard",
    .open = open_,
    .close = close_,
    .on_data = on_data,
    .draw = draw,
    .key = key,
    .summary = summary,
};
