/*
 * golden.c: the golden tests of Zoho's real response shapes (issue 17).
 *
 *   golden DIR EXPECTED [--update]
 *
 * Every *.json body in DIR (sorted by name) goes through the real mapping
 * (src/zoho/map.c) and merge (apply_record, src/engine/apply.c) into a
 * fresh, migrated PostgreSQL database; list bodies are also read by the
 * real page_context parser.  Then the bodies are applied once more in the
 * reverse order (a listing, a detail and a refetch arrive in any order: the
 * stored rows must not change, the newer last_modified_time wins).  The
 * stored rows (zoho.* typed columns, item_locations, whether raw is the
 * record exactly) and what each body gave are printed one line each and
 * compared with EXPECTED (--update writes it instead).
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pgtest.h"
#include "tds/apply.h"
#include "tds/db.h"
#include "tds/entity.h"
#include "tds/log.h"
#include "tds/util.h"
#include "zoho_internal.h"

static struct strbuf out;

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        fprintf(stderr, "golden: cannot open %s\n", path);
        exit(1);
    }
    /* the whole file at once (fixtures are small) */
    long size = fseek(f, 0, SEEK_END) == 0 ? ftell(f) : -1;
    if (size < 0 || fseek(f, 0, SEEK_SET) != 0) {
        fprintf(stderr, "golden: cannot size %s\n", path);
        exit(1);
    }
    char *text = xcalloc((size_t)size + 1, 1);
    size_t got = fread(text, 1, (size_t)size, f);
    fclose(f);
    text[got] = '\0';
    return text;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Whether the stored raw of (d, id) is the JSON at path of the body text. */
static const char *raw_exact(PGconn *c, const struct entity_desc *d, const char *id,
                             const char *body, const char *path)
{
    char *sql = xasprintf("SELECT t.raw = ($1::jsonb #> $2::text[]) FROM %s t WHERE t.%s = $3",
                          d->table, d->id_field);
    const char *p[] = {body, path, id};
    PGresult *r = PQexecParams(c, sql, 3, NULL, p, NULL, NULL, 0);
    free(sql);
    const char *v = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1
                        ? (str_eq(PQgetvalue(r, 0, 0), "t") ? "exact" : "CHANGED")
                        : "missing";
    PQclear(r);
    return v;
}

/* Applies the records of one body; pass 0 reports into out. */
static void apply_body(PGconn *c, const char *name, const char *text, int pass)
{
    /* parsed as the client parses Zoho's answers: numbers exact */
    cJSON *doc = entity_json_parse(text);
    if (doc == NULL) {
        if (pass == 0)
            strbuf_printf(&out, "body %s: not JSON\n", name);
        return;
    }
    const cJSON *code = cJSON_GetObjectItemCaseSensitive(doc, "code");
    if (pass == 0) {
        strbuf_printf(&out, "body %s: code %s", name,
                      cJSON_IsNumber(code) ? "" : "absent");
        if (cJSON_IsNumber(code))
            strbuf_printf(&out, "%d", code->valueint);
        struct zoho_page_ctx pc;
        zoho_page_ctx_parse(doc, &pc);
        if (pc.present)
            strbuf_printf(&out, ", page %d per_page %d has_more_page %s", pc.page, pc.per_page,
                          pc.has_more_present ? (pc.has_more ? "true" : "false") : "absent");
        else
            strbuf_puts(&out, ", no page_context");
        strbuf_putc(&out, '\n');
    }
    const cJSON *k;
    cJSON_ArrayForEach(k, doc) {
        const struct entity_desc *d = entity_find(k->string);
        if (d == NULL || !(cJSON_IsArray(k) || cJSON_IsObject(k)))
            continue;
        bool list = cJSON_IsArray(k);
        int n = list ? cJSON_GetArraySize(k) : 1, applied = 0, kept = 0;
        for (int i = 0; i < n; i++) {
            const cJSON *rec = list ? cJSON_GetArrayItem(k, i) : k;
            int changed = 0;
            char *err = NULL;
            int rc = apply_record(c, d, rec, 0, &changed, &err);
            if (rc == -1) {
                fprintf(stderr, "golden: %s: database: %s\n", name, err);
                exit(1);
            }
            if (pass != 0) {
                free(err);
                continue;
            }
            if (rc == -2) {
                strbuf_printf(&out, "  reject %s[%d]: %s\n", k->string, i, err);
                free(err);
                continue;
            }
            const cJSON *idv = cJSON_GetObjectItemCaseSensitive(rec, d->id_field);
            char *id = entity_json_number(idv);
            if (id == NULL)
                id = cJSON_IsString(idv) ? xstrdup(idv->valuestring)
                                         : xasprintf("%.0f", cJSON_IsNumber(idv) ? idv->valuedouble : -1.0);
            char *path = list ? xasprintf("{%s,%d}", k->string, i) : xasprintf("{%s}", k->string);
            if (changed) {
                applied++;
                strbuf_printf(&out, "  %s %s raw %s\n", d->name, id, raw_exact(c, d, id, text, path));
            } else {
                kept++;
                strbuf_printf(&out, "  %s %s kept (stored copy newer)\n", d->name, id);
            }
            free(path);
            free(id);
        }
        if (pass == 0)
            strbuf_printf(&out, "  %s: %d written, %d kept\n", k->string, applied, kept);
    }
    cJSON_Delete(doc);
}

static void dump(PGconn *c, struct strbuf *o)
{
    size_t n;
    const struct entity_desc *all = entity_all(&n);
    for (size_t i = 0; i < n; i++) {
        char *sql = xasprintf(
            "SELECT t.%s, (to_jsonb(t) - ARRAY['%s', 'raw', 'synced_at', 'row_hash',"
            " 'deleted_at', 'image_sha256'])::text FROM %s t ORDER BY 1",
            all[i].id_field, all[i].id_field, all[i].table);
        PGresult *r = PQexec(c, sql);
        free(sql);
        if (PQresultStatus(r) != PGRES_TUPLES_OK) {
            fprintf(stderr, "golden: %s: %s", all[i].table, PQerrorMessage(c));
            exit(1);
        }
        for (int k = 0; k < PQntuples(r); k++)
            strbuf_printf(o, "%s %s %s\n", all[i].table, PQgetvalue(r, k, 0),
                          PQgetvalue(r, k, 1));
        PQclear(r);
    }
    PGresult *r = PQexec(c, "SELECT item_id, location_id, (to_jsonb(l) - ARRAY['item_id',"
                            " 'location_id', 'synced_at'])::text FROM zoho.item_locations l"
                            " ORDER BY 1, 2");
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        fprintf(stderr, "golden: item_locations: %s", PQerrorMessage(c));
        exit(1);
    }
    for (int k = 0; k < PQntuples(r); k++)
        strbuf_printf(o, "zoho.item_locations %s/%s %s\n", PQgetvalue(r, k, 0),
                      PQgetvalue(r, k, 1), PQgetvalue(r, k, 2));
    PQclear(r);
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: golden DIR EXPECTED [--update]\n");
        return 2;
    }
    const char *dir = argv[1], *expected = argv[2];
    bool update = argc > 3 && str_eq(argv[3], "--update");
    DIR *dh = opendir(dir);
    if (dh == NULL) {
        fprintf(stderr, "golden: %s absent: skipped\n", dir);
        return 77;
    }
    pgtest_require();
    log_set_quiet_stderr(true);
    pgtest_create_db("golden");
    PGconn *c = pgtest_connect();
    char *err = NULL;
    if (db_migrate(c, NULL, &err) != 0) {
        fprintf(stderr, "golden: migrate: %s\n", err);
        return 1;
    }
    pgtest_exec(c, "SET TimeZone = 'UTC'");
    char **names = NULL;
    size_t nn = 0;
    struct dirent *de;
    while ((de = readdir(dh)) != NULL) {
        size_t l = strlen(de->d_name);
        if (l > 5 && str_eq(de->d_name + l - 5, ".json") && strstr(de->d_name, "headers") == NULL &&
            strstr(de->d_name, "oauth") == NULL) {
            names = xrealloc(names, (nn + 1) * sizeof *names);
            names[nn++] = xstrdup(de->d_name);
        }
    }
    closedir(dh);
    qsort(names, nn, sizeof *names, cmp_names);
    char **texts = xcalloc(nn ? nn : 1, sizeof *texts);
    for (size_t i = 0; i < nn; i++) {
        char *path = xasprintf("%s/%s", dir, names[i]);
        texts[i] = slurp(path);
        free(path);
        apply_body(c, names[i], texts[i], 0);
    }
    strbuf_puts(&out, "-- stored\n");
    struct strbuf once = {0}, twice = {0};
    dump(c, &once);
    /* Again, newest file first: nothing may change. */
    for (size_t i = nn; i-- > 0;)
        apply_body(c, names[i], texts[i], 1);
    dump(c, &twice);
    if (!str_eq(once.buf ? once.buf : "", twice.buf ? twice.buf : "")) {
        fprintf(stderr, "golden: applying the bodies again in reverse order changed the rows:\n%s",
                twice.buf);
        return 1;
    }
    strbuf_puts(&out, once.buf ? once.buf : "");
    strbuf_free(&once);
    strbuf_free(&twice);
    if (update) {
        FILE *f = fopen(expected, "w");
        if (f == NULL || fputs(out.buf, f) < 0 || fclose(f) != 0) {
            fprintf(stderr, "golden: cannot write %s\n", expected);
            return 1;
        }
        printf("golden: wrote %s\n", expected);
        return 0;
    }
    char *want = slurp(expected);
    if (!str_eq(want, out.buf)) {
        const char *broot = getenv("TDS_BUILD_ROOT");
        char *gotpath = xasprintf("%s/golden.got", broot ? broot : "/tmp");
        FILE *f = fopen(gotpath, "w");
        if (f) {
            fputs(out.buf, f);
            fclose(f);
        }
        fprintf(stderr, "golden: the stored rows differ from %s (got: %s):\n", expected, gotpath);
        free(gotpath);
        /* the first differing line */
        const char *a = want, *b = out.buf;
        while (*a && *a == *b) {
            a++;
            b++;
        }
        while (a > want && a[-1] != '\n') {
            a--;
            b--;
        }
        fprintf(stderr, "want: %.*s\ngot:  %.*s\n", (int)strcspn(a, "\n"), a,
                (int)strcspn(b, "\n"), b);
        return 1;
    }
    printf("golden: %zu bodies of %s stored as %s says\n", nn, dir, expected);
    for (size_t i = 0; i < nn; i++) {
        free(names[i]);
        free(texts[i]);
    }
    free(names);
    free(texts);
    free(want);
    strbuf_free(&out);
    PQfinish(c);
    return 0;
}
