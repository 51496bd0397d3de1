/*
 * images.c: product images.  When an item's image_document_id changes, the
 * sync downloads /items/{id}/image, checks the type by its magic bytes (gif,
 * png, jpeg, bmp, webp; the Content-Type alone is not trusted) and the size
 * (7 MB at most), and stores it content-addressed under images.dir as
 * <sha256>.<ext>: the same bytes are stored once, a file is written to a
 * temporary name and renamed into place, so a reader never sees half an
 * image.  zoho.items.image_path and image_sha256 record where it is.
 */
#include <errno.h>
#include <stdatomic.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sync_internal.h"
#include "tds/db.h"
#include "tds/log.h"
#include "tds/sha256.h"

const char *images_sniff(const unsigned char *b, size_t n)
{
    if (n >= 8 && memcmp(b, "\x89PNG\r\n\x1a\n", 8) == 0)
        return "png";
    if (n >= 3 && b[0] == 0xff && b[1] == 0xd8 && b[2] == 0xff)
        return "jpg";
    if (n >= 6 && (memcmp(b, "GIF87a", 6) == 0 || memcmp(b, "GIF89a", 6) == 0))
        return "gif";
    if (n >= 14 && b[0] == 'B' && b[1] == 'M')
        return "bmp";
    if (n >= 12 && memcmp(b, "RIFF", 4) == 0 && memcmp(b + 8, "WEBP", 4) == 0)
        return "webp";
    return NULL;
}

static int mkdir_p(const char *dir)
{
    char *p = xstrdup(dir);
    for (char *s = p + 1; *s; s++) {
        if (*s != '/')
            continue;
        *s = '\0';
        if (mkdir(p, 0755) != 0 && errno != EEXIST) {
            free(p);
            return -1;
        }
        *s = '/';
    }
    int rc = (mkdir(p, 0755) != 0 && errno != EEXIST) ? -1 : 0;
    free(p);
    return rc;
}

/* Stores data as dir/hex.ext unless it is there already.  0 or -1 (errno-ish message in *why). */
static int store_file(const char *dir, const char *hex, const char *ext, const unsigned char *data,
                      size_t len, char **path, char **why)
{
    *path = xasprintf("%s/%s.%s", dir, hex, ext);
    struct stat st;
    if (stat(*path, &st) == 0 && (size_t)st.st_size == len)
        return 0;
    if (mkdir_p(dir) != 0) {
        *why = xasprintf("cannot create %s: %s", dir, strerror(errno));
        return -1;
    }
    /* Written in a private directory beside the images (same file system,
     * so the rename is atomic), under a name nobody can have prepared: no
     * symlink or file planted there is followed or reused. */
    char *tmpdir = xasprintf("%s/.tmp", dir);
    if (mkdir(tmpdir, 0700) != 0 && errno != EEXIST) {
        *why = xasprintf("cannot create %s: %s", tmpdir, strerror(errno));
        free(tmpdir);
        return -1;
    }
    struct stat ts;
    if (lstat(tmpdir, &ts) != 0 || !S_ISDIR(ts.st_mode) || ts.st_uid != geteuid() ||
        (ts.st_mode & 077) != 0) {
        *why = xasprintf("%s is not a private directory of this user (mode 0700)", tmpdir);
        free(tmpdir);
        return -1;
    }
    static _Atomic unsigned long seq;
    char *tmp = xasprintf("%s/%s.%ld.%lu.tmp", tmpdir, hex, (long)getpid(),
                          atomic_fetch_add(&seq, 1));
    free(tmpdir);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd < 0) {
        *why = xasprintf("cannot write %s: %s", tmp, strerror(errno));
        free(tmp);
        return -1;
    }
    size_t off = 0;
    while (off < len) {
        ssize_t w = write(fd, data + off, len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            *why = xasprintf("cannot write %s: %s", tmp, strerror(errno));
            close(fd);
            unlink(tmp);
            free(tmp);
            return -1;
        }
        off += (size_t)w;
    }
    if (fsync(fd) != 0 || close(fd) != 0 || rename(tmp, *path) != 0) {
        *why = xasprintf("cannot store %s: %s", *path, strerror(errno));
        unlink(tmp);
        free(tmp);
        return -1;
    }
    free(tmp);
    return 0;
}

static int record_path(struct sync_job *j, const char *id, const char *path, const char *hex,
                       char **err)
{
    const char *p[3] = {id, path, hex};
    return db_cmd(j->conn,
                  "UPDATE zoho.items SET image_path = $2, image_sha256 = $3,"
                  " image_fetched_document_id = image_document_id WHERE item_id = $1",
                  3, p, err);
}

/* This document's image cannot be had: no file, and not asked again. */
static int give_up(struct sync_job *j, const char *id, char **err)
{
    return record_path(j, id, NULL, NULL, err);
}

int images_sync(struct sync_job *j, struct zoho_conn *zconn, char *const *ids, size_t n,
                char **err)
{
    const char *dir = j->cfg && !str_empty(j->cfg->images.dir) ? j->cfg->images.dir : NULL;
    for (size_t i = 0; i < n; i++) {
        if (sync_job_stopping(j))
            return 0;
        /* Still an image to fetch?  (empty document id: forget the path) */
        const char *p[1] = {ids[i]};
        PGresult *r = db_exec(j->conn,
                              "SELECT image_document_id IS NOT NULL FROM zoho.items"
                              " WHERE item_id = $1",
                              1, p, err);
        if (r == NULL)
            return -1;
        bool has = PQntuples(r) == 1 && PQgetvalue(r, 0, 0)[0] == 't';
        PQclear(r);
        if (!has) {
            if (record_path(j, ids[i], NULL, NULL, err) != 0)
                return -1;
            continue;
        }
        if (dir == NULL) {
            j->stats.image_failed++;
            continue;
        }
        struct zoho_blob b = {0};
        struct zoho_error ze = {0};
        int rc = -1;
        for (int tries = 0; tries < 3; tries++) {
            rc = zoho_get_image(zconn, ids[i], &b, &ze);
            if (rc == 0 || !sync_zoho_again(&ze))
                break;
            zoho_error_clear(&ze);
        }
        sync_job_count(j, 0, 0, 0, 0, zoho_conn_take_calls(zconn));
        if (rc != 0 && ze.kind == ZOHO_ERR_SCOPE) {
            /* Images are off until the scope is granted; nothing else is. */
            char *m = zoho_error_format(&ze);
            log_warn("run %lld: images skipped: %s", j->run_id, m);
            free(m);
            zoho_error_clear(&ze);
            j->stats.image_failed++;
            return 1;
        }
        if (rc != 0) {
            char *m = zoho_error_format(&ze);
            log_warn("run %lld: image of item %s: %s", j->run_id, ids[i], m);
            free(m);
            bool transient = sync_zoho_transient(&ze);
            zoho_error_clear(&ze);
            j->stats.image_failed++;
            /* A permanent refusal (404, ...) is not asked again for this
             * document; a transient one is, by the next images run. */
            if (!transient && give_up(j, ids[i], err) != 0)
                return -1;
            continue;
        }
        const char *ext = images_sniff(b.data, b.len);
        if (ext == NULL || b.len > ZOHO_IMAGE_MAX || b.len == 0) {
            log_warn("run %lld: image of item %s refused: %s", j->run_id, ids[i],
                     ext == NULL ? "not a gif, png, jpeg, bmp or webp" : "larger than 7 MB");
            j->stats.image_failed++;
            zoho_blob_free(&b);
            if (give_up(j, ids[i], err) != 0)
                return -1;
            continue;
        }
        unsigned char dg[SHA256_DIGEST_LEN];
        char hex[SHA256_HEX_LEN + 1];
        sha256(b.data, b.len, dg);
        sha256_hex(dg, sizeof dg, hex);
        char *path = NULL, *why = NULL;
        if (store_file(dir, hex, ext, b.data, b.len, &path, &why) != 0) {
            log_warn("run %lld: image of item %s: %s", j->run_id, ids[i], why);
            free(why);
            free(path);
            j->stats.image_failed++;
            zoho_blob_free(&b);
            continue;
        }
        zoho_blob_free(&b);
        int wr = record_path(j, ids[i], path, hex, err);
        free(path);
        if (wr != 0)
            return -1;
        j->stats.images++;
    }
    return 0;
}

int images_run(struct sync_job *j, char **err)
{
    PGresult *r = db_exec(j->conn,
                          "SELECT count(*) FROM zoho.items WHERE image_document_id IS DISTINCT FROM"
                          " image_fetched_document_id AND deleted_at IS NULL",
                          0, NULL, err);
    if (r == NULL)
        return -1;
    long long todo = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    if (j->set_expected)
        j->set_expected(j->arg, todo);
    struct zoho_conn *zconn = zoho_conn_new(j->zc, j->stop);
    char *after = xstrdup("");
    int rc = 0;
    while (!sync_job_stopping(j)) {
        /* Keyset over the partial index: failures left for later do not
         * make the loop spin on them. */
        const char *p[1] = {after};
        r = db_exec(j->conn,
                    "SELECT item_id FROM zoho.items WHERE image_document_id IS DISTINCT FROM"
                    " image_fetched_document_id AND deleted_at IS NULL AND item_id > $1"
                    " ORDER BY item_id LIMIT 100",
                    1, p, err);
        if (r == NULL) {
            rc = -1;
            break;
        }
        int n = PQntuples(r);
        if (n == 0) {
            PQclear(r);
            break;
        }
        char **ids = xcalloc((size_t)n, sizeof *ids);
        for (int i = 0; i < n; i++)
            ids[i] = xstrdup(PQgetvalue(r, i, 0));
        free(after);
        after = xstrdup(ids[n - 1]);
        PQclear(r);
        long long ok0 = j->stats.images, failed0 = j->stats.image_failed;
        rc = images_sync(j, zconn, ids, (size_t)n, err);
        long long ok = j->stats.images - ok0, failed = j->stats.image_failed - failed0;
        /* Counted as the run's items only when images are the run; inline
         * (tds sync --wait) they are reported as images, not records. */
        if (str_eq(j->run_type, "images"))
            sync_job_count(j, n, ok, failed, n - ok - failed, 0);
        for (int i = 0; i < n; i++)
            free(ids[i]);
        free(ids);
        if (rc == 1) {
            rc = 0; /* the scope is missing: the rest waits for a later run */
            break;
        }
        if (rc != 0)
            break;
    }
    free(after);
    zoho_conn_free(zconn);
    return rc;
}

int images_request_run(PGconn *c, long long parent_id, long long *id, char **err)
{
    char parent[32];
    snprintf(parent, sizeof parent, "%lld", parent_id);
    const char *p[1] = {parent};
    /* One images run at a time is enough: it takes every image still due.
     * The NOTIFY wakes an engine to claim it, as runs_request does. */
    PGresult *r = db_exec(c,
                          "WITH ins AS (INSERT INTO tds.sync_runs (run_type, entity_type, trigger,"
                          "   config, requested_by)"
                          " SELECT 'images', 'items', coalesce((SELECT trigger FROM tds.sync_runs"
                          "   WHERE id = $1::bigint), 'cli'),"
                          "   jsonb_build_object('after_run', $1::bigint), 'tds'"
                          " WHERE NOT EXISTS (SELECT 1 FROM tds.sync_runs WHERE run_type = 'images'"
                          "   AND status IN ('pending', 'running'))"
                          " RETURNING id)"
                          " SELECT id, pg_notify('tds_runs', id::text) FROM ins",
                          1, p, err);
    if (r == NULL)
        return -1;
    long long new_id = PQntuples(r) == 1 ? strtoll(PQgetvalue(r, 0, 0), NULL, 10) : 0;
    PQclear(r);
    if (id)
        *id = new_id;
    return 0;
}
