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
    char *tmp = xasprintf("%s/.%s.%ld.tmp", dir, hex, (long)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
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
                  "UPDATE zoho.items SET image_path = $2, image_sha256 = $3 WHERE item_id = $1"
                  " AND image_path IS DISTINCT FROM $2",
                  3, p, err);
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
            if (rc == 0 || !sync_zoho_transient(&ze))
                break;
            zoho_error_clear(&ze);
        }
        sync_job_count(j, 0, 0, 0, 0, zoho_conn_take_calls(zconn));
        if (rc != 0) {
            char *m = zoho_error_format(&ze);
            log_warn("run %lld: image of item %s: %s", j->run_id, ids[i], m);
            free(m);
            zoho_error_clear(&ze);
            j->stats.image_failed++;
            continue;
        }
        const char *ext = images_sniff(b.data, b.len);
        if (ext == NULL || b.len > ZOHO_IMAGE_MAX || b.len == 0) {
            log_warn("run %lld: image of item %s refused: %s", j->run_id, ids[i],
                     ext == NULL ? "not a gif, png, jpeg, bmp or webp" : "larger than 7 MB");
            j->stats.image_failed++;
            zoho_blob_free(&b);
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
