/*
 * test_fuzz_corpus.c: replays every seed of fuzz/corpus/TARGET/ through the
 * fuzz target's own code (fuzz/fuzz_TARGET.c, included here with
 * FUZZ_NO_MAIN so that the entry point is fuzz_TARGET_one) without
 * libFuzzer, so the corpora and the properties the targets check keep
 * holding in the normal gcc build and CI.  A property that fails aborts
 * after naming the file.  Usage: test_fuzz_corpus [CORPUS_ROOT]
 * (default $TDS_SOURCE_ROOT/fuzz/corpus).
 */
#define FUZZ_NO_MAIN 1

#include <dirent.h>
#include <errno.h>
#include <sys/stat.h>

#include "../../fuzz/fuzz_config.c"
#include "../../fuzz/fuzz_cron.c"
#include "../../fuzz/fuzz_sanitize.c"
#include "../../fuzz/fuzz_webhook.c"
#include "../../fuzz/fuzz_zoho_map.c"

static const struct {
    const char *name;
    int (*one)(const uint8_t *data, size_t size);
} targets[] = {
    {"config", fuzz_config_one},   {"webhook", fuzz_webhook_one},
    {"zoho_map", fuzz_zoho_map_one}, {"cron", fuzz_cron_one},
    {"sanitize", fuzz_sanitize_one},
};

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Runs every file of dir through one; returns the number of files. */
static size_t replay_dir(const char *dir, int (*one)(const uint8_t *, size_t))
{
    DIR *d = opendir(dir);
    if (d == NULL) {
        fprintf(stderr, "test_fuzz_corpus: %s: %s\n", dir, strerror(errno));
        exit(1);
    }
    char **names = NULL;
    size_t n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        names = realloc(names, (n + 1) * sizeof *names);
        names[n++] = strdup(de->d_name);
    }
    closedir(d);
    qsort(names, n, sizeof *names, name_cmp);
    for (size_t i = 0; i < n; i++) {
        char path[8192];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        FILE *f = fopen(path, "rb");
        if (f == NULL) {
            fprintf(stderr, "test_fuzz_corpus: %s: %s\n", path, strerror(errno));
            exit(1);
        }
        uint8_t *buf = NULL;
        size_t len = 0, cap = 0;
        for (;;) {
            if (len == cap) {
                cap = cap ? cap * 2 : 4096;
                buf = realloc(buf, cap);
            }
            size_t r = fread(buf + len, 1, cap - len, f);
            if (r == 0)
                break;
            len += r;
        }
        fclose(f);
        /* Named first, so an abort inside the target points at the seed. */
        fprintf(stderr, "  %s\n", path);
        one(buf, len);
        free(buf);
        free(names[i]);
    }
    free(names);
    return n;
}

int main(int argc, char **argv)
{
    const char *src = getenv("TDS_SOURCE_ROOT");
    char root[4096];
    if (argc > 1)
        snprintf(root, sizeof root, "%s", argv[1]);
    else
        snprintf(root, sizeof root, "%s/fuzz/corpus", src ? src : ".");
    int failed = 0;
    for (size_t t = 0; t < sizeof targets / sizeof targets[0]; t++) {
        char dir[4200];
        snprintf(dir, sizeof dir, "%s/%s", root, targets[t].name);
        size_t n = replay_dir(dir, targets[t].one);
        printf("%-9s %zu seeds replayed\n", targets[t].name, n);
        if (n == 0) {
            printf("%s: the corpus is empty\n", targets[t].name);
            failed = 1;
        }
    }
    return failed;
}
