/*
 * image.c: real, small item images without an image library.  A PNG is a
 * 32x32 RGB picture (a two-colour pattern derived from the item id) in a
 * zlib stream of stored deflate blocks; a JPEG is a baseline 8x8 grey image
 * whose single block is DC-only, with a comment naming the item.  Both are
 * valid files that any decoder opens.
 */
#include "sim.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint32_t crc_table[256];

static void crc_init(void)
{
    for (uint32_t n = 0; n < 256; n++) {
        uint32_t c = n;
        for (int k = 0; k < 8; k++)
            c = c & 1 ? 0xedb88320u ^ (c >> 1) : c >> 1;
        crc_table[n] = c;
    }
}

static uint32_t crc32_of(const unsigned char *p, size_t n)
{
    uint32_t c = 0xffffffffu;
    for (size_t i = 0; i < n; i++)
        c = crc_table[(c ^ p[i]) & 0xff] ^ (c >> 8);
    return c ^ 0xffffffffu;
}

static void put32(struct strbuf *sb, uint32_t v)
{
    char b[4] = {(char)(v >> 24), (char)(v >> 16), (char)(v >> 8), (char)v};
    strbuf_append(sb, b, 4);
}

static void png_chunk(struct strbuf *sb, const char *type, const unsigned char *data, size_t n)
{
    put32(sb, (uint32_t)n);
    size_t at = sb->len;
    strbuf_append(sb, type, 4);
    if (n)
        strbuf_append(sb, (const char *)data, n);
    put32(sb, crc32_of((const unsigned char *)sb->buf + at, n + 4));
}

#define W 32
#define H 32

static void make_png(uint64_t id, struct strbuf *sb)
{
    unsigned char raw[H * (1 + 3 * W)];
    unsigned char fg[3] = {(unsigned char)(id >> 3), (unsigned char)(id >> 11),
                           (unsigned char)(id >> 19)};
    unsigned char bg[3] = {(unsigned char)(255 - fg[0]), (unsigned char)(200 - fg[1] / 2),
                           (unsigned char)(230 - fg[2] / 3)};
    unsigned band = 2 + (unsigned)(id % 7);
    size_t k = 0;
    for (int y = 0; y < H; y++) {
        raw[k++] = 0; /* filter: none */
        for (int x = 0; x < W; x++) {
            const unsigned char *c = ((unsigned)(x + y) / band) % 2 ? fg : bg;
            raw[k++] = c[0];
            raw[k++] = c[1];
            raw[k++] = c[2];
        }
    }
    /* zlib: header, one final stored block, Adler-32. */
    size_t n = sizeof(raw);
    unsigned char *z = xmalloc(n + 11);
    size_t zi = 0;
    z[zi++] = 0x78;
    z[zi++] = 0x01;
    z[zi++] = 0x01;
    z[zi++] = (unsigned char)(n & 0xff);
    z[zi++] = (unsigned char)(n >> 8);
    z[zi++] = (unsigned char)(~n & 0xff);
    z[zi++] = (unsigned char)((~n >> 8) & 0xff);
    memcpy(z + zi, raw, n);
    zi += n;
    uint32_t a = 1, b = 0;
    for (size_t i = 0; i < n; i++) {
        a = (a + raw[i]) % 65521;
        b = (b + a) % 65521;
    }
    uint32_t adler = b << 16 | a;
    z[zi++] = (unsigned char)(adler >> 24);
    z[zi++] = (unsigned char)(adler >> 16);
    z[zi++] = (unsigned char)(adler >> 8);
    z[zi++] = (unsigned char)adler;

    static const unsigned char sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    strbuf_append(sb, (const char *)sig, 8);
    unsigned char ihdr[13] = {0, 0, 0, W, 0, 0, 0, H, 8, 2, 0, 0, 0};
    png_chunk(sb, "IHDR", ihdr, sizeof(ihdr));
    png_chunk(sb, "IDAT", z, zi);
    png_chunk(sb, "IEND", NULL, 0);
    free(z);
}

/* Bit writer for the JPEG entropy-coded segment (with 0xFF stuffing). */
struct bits {
    struct strbuf *sb;
    unsigned acc;
    int n;
};

static void bits_put(struct bits *w, unsigned v, int len)
{
    for (int i = len - 1; i >= 0; i--) {
        w->acc = w->acc << 1 | ((v >> i) & 1);
        if (++w->n == 8) {
            strbuf_putc(w->sb, (char)w->acc);
            if ((w->acc & 0xff) == 0xff)
                strbuf_putc(w->sb, 0);
            w->acc = 0;
            w->n = 0;
        }
    }
}

static void seg(struct strbuf *sb, unsigned char marker, const unsigned char *p, size_t n)
{
    char h[4] = {(char)0xff, (char)marker, (char)((n + 2) >> 8), (char)((n + 2) & 0xff)};
    strbuf_append(sb, h, 4);
    strbuf_append(sb, (const char *)p, n);
}

static void make_jpeg(uint64_t id, struct strbuf *sb)
{
    int grey = 40 + (int)(id % 176);
    int dc = 8 * (grey - 128); /* flat block: DC = 8 * (level-shifted value), quant 1 */
    int mag = dc < 0 ? -dc : dc;
    int cat = 0;
    while (mag >> cat)
        cat++;

    strbuf_append(sb, "\xff\xd8", 2);
    static const unsigned char jfif[] = {'J', 'F', 'I', 'F', 0, 1, 1, 0, 0, 1, 0, 1, 0, 0};
    seg(sb, 0xe0, jfif, sizeof(jfif));
    char com[64];
    int cn = snprintf(com, sizeof(com), "tds-zoho-sim item %llu", (unsigned long long)id);
    seg(sb, 0xfe, (const unsigned char *)com, (size_t)cn);
    unsigned char dqt[65];
    dqt[0] = 0;
    memset(dqt + 1, 1, 64);
    seg(sb, 0xdb, dqt, sizeof(dqt));
    static const unsigned char sof[] = {8, 0, 8, 0, 8, 1, 1, 0x11, 0};
    seg(sb, 0xc0, sof, sizeof(sof));
    /* DC table: one code "0" for this block's category; AC table: "0" = EOB. */
    unsigned char dht_dc[18] = {0x00, 1};
    dht_dc[17] = (unsigned char)cat;
    seg(sb, 0xc4, dht_dc, sizeof(dht_dc));
    unsigned char dht_ac[18] = {0x10, 1};
    dht_ac[17] = 0x00;
    seg(sb, 0xc4, dht_ac, sizeof(dht_ac));
    static const unsigned char sos[] = {1, 1, 0x00, 0, 63, 0};
    seg(sb, 0xda, sos, sizeof(sos));
    struct bits w = {sb, 0, 0};
    bits_put(&w, 0, 1);
    if (cat)
        bits_put(&w, (unsigned)(dc < 0 ? dc - 1 : dc) & ((1u << cat) - 1), cat);
    bits_put(&w, 0, 1);
    if (w.n)
        bits_put(&w, (1u << (8 - w.n)) - 1, 8 - w.n);
    strbuf_append(sb, "\xff\xd9", 2);
}

void sim_image_make(uint64_t id, int kind, unsigned char **out, size_t *len)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, crc_init);
    struct strbuf sb = {0};
    if (kind == 2)
        make_jpeg(id, &sb);
    else
        make_png(id, &sb);
    *len = sb.len;
    *out = (unsigned char *)strbuf_detach(&sb);
}
