/*
 * tokencrypt.h: the Zoho access token at rest (issue 18 point 7).  The
 * token in tds.zoho_token is sealed with AES-256-GCM (OpenSSL's libcrypto):
 * "v1:" and base64 of a 12-byte random nonce, the ciphertext and the
 * 16-byte tag, with the OAuth client id as associated data.  The key is
 * zoho.token_key (64 hex digits, or TDS_ZOHO_TOKEN_KEY), else derived from
 * the client secret (SHA-256 of a label and the secret), which every engine
 * of the fleet has and a reader of the database alone does not.  Rotation:
 * change the key on every engine; a token sealed with the old key no longer
 * opens, so the next engine that needs one mints a fresh one (one mint,
 * under the fleet's mint limiter) and seals it with the new key.
 */
#ifndef TDS_TOKENCRYPT_H
#define TDS_TOKENCRYPT_H

#include <stdbool.h>

#include "tds/config.h"
#include "tds/util.h"

#define TOKEN_KEY_LEN 32

/* The sealing key of cfg.  0, or -1 with *err (a malformed token_key). */
int token_key(const struct tds_config *cfg, unsigned char key[TOKEN_KEY_LEN],
              char **err) TDS_MUST_CHECK;

/* plain sealed (malloc'd "v1:..."), or NULL if libcrypto fails. */
char *token_seal(const unsigned char key[TOKEN_KEY_LEN], const char *aad, const char *plain);

/* Opens what token_seal made: 0 with *plain (malloc'd); -1 when sealed
 * is not a sealed token, was sealed with another key or was altered. */
int token_open(const unsigned char key[TOKEN_KEY_LEN], const char *aad, const char *sealed,
               char **plain) TDS_MUST_CHECK;

/*
 * Whether api_domain (as Zoho's token endpoint or tds.zoho_token gives it)
 * may receive the token: https on one of Zoho's data-centre API hosts
 * (www.zohoapis.com, .eu, .in, .com.au, .jp, .ca, .com.cn, .sa), or the
 * scheme and host of a configured base URL (zoho.books_url,
 * zoho.inventory_url, zoho.accounts_url: a proxy, the simulator).
 */
bool token_api_domain_allowed(const struct tds_config *cfg, const char *api_domain);

#endif
