/*
 * tokencrypt.c: AES-256-GCM sealing of the access token and the api_domain
 * allow-list (tokencrypt.h).
 */
#include "tds/tokencrypt.h"

#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdlib.h>
#include <string.h>

#include "tds/sha256.h"

#define NONCE 12
#define TAG 16

static int hexval(char c)
{
    return c >= '0' && c <= '9' ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

int token_key(const struct tds_config *cfg, unsigned char key[TOKEN_KEY_LEN], char **err)
{
    const char *k = cfg->zoho.token_key;
    if (!str_empty(k)) {
        if (strlen(k) != 2 * TOKEN_KEY_LEN) {
            *err = xasprintf("zoho.token_key: %zu characters, expected %d hex digits (openssl"
                             " rand -hex 32)",
                             strlen(k), 2 * TOKEN_KEY_LEN);
            return -1;
        }
        for (int i = 0; i < TOKEN_KEY_LEN; i++) {
            int hi = hexval(k[2 * i]), lo = hexval(k[2 * i + 1]);
            if (hi < 0 || lo < 0) {
                *err = xasprintf("zoho.token_key: not hex digits (openssl rand -hex 32)");
                return -1;
            }
            key[i] = (unsigned char)(hi << 4 | lo);
        }
        return 0;
    }
    static const char label[] = "tds zoho access token key v1";
    struct sha256_ctx h;
    sha256_init(&h);
    sha256_update(&h, label, sizeof label);
    const char *s = cfg->zoho.client_secret ? cfg->zoho.client_secret : "";
    sha256_update(&h, s, strlen(s));
    sha256_final(&h, key);
    return 0;
}

char *token_seal(const unsigned char key[TOKEN_KEY_LEN], const char *aad, const char *plain)
{
    size_t n = strlen(plain);
    unsigned char *buf = xcalloc(NONCE + n + TAG, 1);
    char *out = NULL;
    EVP_CIPHER_CTX *x = EVP_CIPHER_CTX_new();
    int len = 0;
    if (x == NULL || RAND_bytes(buf, NONCE) != 1 ||
        EVP_EncryptInit_ex(x, EVP_aes_256_gcm(), NULL, key, buf) != 1 ||
        EVP_EncryptUpdate(x, NULL, &len, (const unsigned char *)aad, (int)strlen(aad)) != 1 ||
        EVP_EncryptUpdate(x, buf + NONCE, &len, (const unsigned char *)plain, (int)n) != 1 ||
        EVP_EncryptFinal_ex(x, buf + NONCE + len, &len) != 1 ||
        EVP_CIPHER_CTX_ctrl(x, EVP_CTRL_GCM_GET_TAG, TAG, buf + NONCE + n) != 1)
        goto done;
    size_t total = NONCE + n + TAG;
    out = xcalloc(3 + 4 * ((total + 2) / 3) + 1, 1);
    memcpy(out, "v1:", 3);
    EVP_EncodeBlock((unsigned char *)out + 3, buf, (int)total);
done:
    EVP_CIPHER_CTX_free(x);
    OPENSSL_cleanse(buf, NONCE + n + TAG);
    free(buf);
    return out;
}

int token_open(const unsigned char key[TOKEN_KEY_LEN], const char *aad, const char *sealed,
               char **plain)
{
    *plain = NULL;
    if (sealed == NULL || strncmp(sealed, "v1:", 3) != 0)
        return -1;
    const char *b64 = sealed + 3;
    size_t bl = strlen(b64);
    if (bl == 0 || bl % 4 != 0)
        return -1;
    unsigned char *buf = xcalloc(bl / 4 * 3 + 1, 1);
    int got = EVP_DecodeBlock(buf, (const unsigned char *)b64, (int)bl);
    int pad = (b64[bl - 1] == '=') + (bl > 1 && b64[bl - 2] == '=');
    int rc = -1;
    EVP_CIPHER_CTX *x = NULL;
    if (got < 0 || got - pad < NONCE + TAG)
        goto done;
    size_t n = (size_t)(got - pad) - NONCE - TAG;
    char *p = xcalloc(n + 1, 1);
    int len = 0;
    x = EVP_CIPHER_CTX_new();
    if (x != NULL && EVP_DecryptInit_ex(x, EVP_aes_256_gcm(), NULL, key, buf) == 1 &&
        EVP_DecryptUpdate(x, NULL, &len, (const unsigned char *)aad, (int)strlen(aad)) == 1 &&
        EVP_DecryptUpdate(x, (unsigned char *)p, &len, buf + NONCE, (int)n) == 1 &&
        EVP_CIPHER_CTX_ctrl(x, EVP_CTRL_GCM_SET_TAG, TAG, buf + NONCE + n) == 1 &&
        EVP_DecryptFinal_ex(x, (unsigned char *)p + len, &len) == 1 && strlen(p) == n) {
        *plain = p;
        rc = 0;
    } else {
        OPENSSL_cleanse(p, n);
        free(p);
    }
done:
    EVP_CIPHER_CTX_free(x);
    free(buf);
    return rc;
}

/* scheme://host of url into out (lower case), or "" when url has none. */
static void origin(const char *url, char *out, size_t n)
{
    out[0] = '\0';
    if (str_empty(url))
        return;
    const char *p = strstr(url, "://");
    if (p == NULL)
        return;
    size_t end = (size_t)(p - url) + 3;
    end += strcspn(url + end, "/?#");
    if (end >= n)
        return;
    for (size_t i = 0; i < end; i++)
        out[i] = (char)(url[i] >= 'A' && url[i] <= 'Z' ? url[i] + 32 : url[i]);
    out[end] = '\0';
}

bool token_api_domain_allowed(const struct tds_config *cfg, const char *api_domain)
{
    static const char *const zoho[] = {
        "https://www.zohoapis.com",    "https://www.zohoapis.eu", "https://www.zohoapis.in",
        "https://www.zohoapis.com.au", "https://www.zohoapis.jp", "https://www.zohoapis.ca",
        "https://www.zohoapis.com.cn", "https://www.zohoapis.sa",
    };
    char have[256], base[256];
    origin(api_domain, have, sizeof have);
    if (have[0] == '\0' || strlen(api_domain) != strlen(have))
        return false; /* an origin, nothing after it */
    for (size_t i = 0; i < TDS_ARRAY_LEN(zoho); i++)
        if (str_eq(have, zoho[i]))
            return true;
    const char *mine[] = {cfg->zoho.books_url, cfg->zoho.inventory_url, cfg->zoho.accounts_url};
    for (size_t i = 0; i < TDS_ARRAY_LEN(mine); i++) {
        origin(mine[i], base, sizeof base);
        if (base[0] != '\0' && str_eq(have, base))
            return true;
    }
    return false;
}
