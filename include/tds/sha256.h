/*
 * sha256.h: SHA-256 and HMAC-SHA256 (FIPS 180-4, RFC 2104), self-contained,
 * for webhook signatures (the simulator signs, the intake verifies).
 */
#ifndef TDS_SHA256_H
#define TDS_SHA256_H

#include <stddef.h>
#include <stdint.h>

#define SHA256_DIGEST_LEN 32
#define SHA256_HEX_LEN 64 /* without the NUL */

struct sha256_ctx {
    uint32_t h[8];
    uint64_t total; /* bytes fed so far */
    unsigned char block[64];
    size_t used; /* bytes waiting in block */
};

/* Incremental interface.  These functions can't fail. */
void sha256_init(struct sha256_ctx *ctx);
void sha256_update(struct sha256_ctx *ctx, const void *data, size_t len);
void sha256_final(struct sha256_ctx *ctx, unsigned char out[SHA256_DIGEST_LEN]);

/* One-shot digest of data into out.  This function can't fail. */
void sha256(const void *data, size_t len, unsigned char out[SHA256_DIGEST_LEN]);

/* HMAC-SHA256 of data under key (any length) into out.  This function can't fail. */
void hmac_sha256(const void *key, size_t keylen, const void *data, size_t len,
                 unsigned char out[SHA256_DIGEST_LEN]);

/*
 * Writes the lowercase hex of len bytes to out, which must hold 2*len+1
 * bytes; NUL-terminates.  This function can't fail.
 */
void sha256_hex(const unsigned char *bytes, size_t len, char *out);

#endif
