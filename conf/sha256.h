/* SHA-256 (FIPS 180-2), compact, for password hashes: the [users] entries store SHA-256 digests
 * as Redis's ACL does, and AUTH hashes the candidate password before comparing (constant time,
 * independent of the candidate's length). No state outside the caller's struct. */
#ifndef CONF_SHA256_H
#define CONF_SHA256_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SHA256_DIGEST_LEN 32
#define SHA256_HEX_LEN 64

struct sha256 {
    uint32_t h[8];
    uint64_t bytes;         /* message length so far */
    unsigned char buf[64];  /* a partial block */
    size_t used;            /* bytes in buf */
};

void sha256_init(struct sha256 *s);
void sha256_update(struct sha256 *s, const void *data, size_t len);
void sha256_final(struct sha256 *s, unsigned char out[SHA256_DIGEST_LEN]);
/* One call: the digest of len bytes at data. */
void sha256(const void *data, size_t len, unsigned char out[SHA256_DIGEST_LEN]);

/* Lower-case hex of a digest into hex (SHA256_HEX_LEN + 1 bytes, NUL-terminated). */
void sha256_to_hex(const unsigned char d[SHA256_DIGEST_LEN], char hex[SHA256_HEX_LEN + 1]);
/* Parses exactly 64 hex digits (either case); false when malformed. */
bool sha256_from_hex(const char *hex, size_t len, unsigned char out[SHA256_DIGEST_LEN]);
/* Whether two digests are equal, in time independent of where they differ (no early exit). */
bool sha256_equal(const unsigned char a[SHA256_DIGEST_LEN], const unsigned char b[SHA256_DIGEST_LEN]);

#endif
