/* SipHash-1-3 (Aumasson, Bernstein), as Redis uses for its dict: one compression round per
 * 8-byte block, three finalization rounds. Reads input bytewise-little-endian, so it is
 * independent of alignment and host order. */
#include "cache/siphash.h"

#include <string.h>

static inline uint64_t rotl64(uint64_t x, int b) { return (x << b) | (x >> (64 - b)); }

static inline uint64_t load_le64(const uint8_t *p)
{
    return (uint64_t)p[0] | (uint64_t)p[1] << 8 | (uint64_t)p[2] << 16 | (uint64_t)p[3] << 24 |
           (uint64_t)p[4] << 32 | (uint64_t)p[5] << 40 | (uint64_t)p[6] << 48 |
           (uint64_t)p[7] << 56;
}

#define SIPROUND                                                                          \
    do {                                                                                  \
        v0 += v1; v1 = rotl64(v1, 13); v1 ^= v0; v0 = rotl64(v0, 32);                     \
        v2 += v3; v3 = rotl64(v3, 16); v3 ^= v2;                                          \
        v0 += v3; v3 = rotl64(v3, 21); v3 ^= v0;                                          \
        v2 += v1; v1 = rotl64(v1, 17); v1 ^= v2; v2 = rotl64(v2, 32);                     \
    } while (0)

uint64_t siphash13(const void *data, size_t len, const uint8_t seed[16])
{
    const uint8_t *in = data;
    uint64_t k0 = load_le64(seed), k1 = load_le64(seed + 8);
    uint64_t v0 = 0x736f6d6570736575ULL ^ k0;
    uint64_t v1 = 0x646f72616e646f6dULL ^ k1;
    uint64_t v2 = 0x6c7967656e657261ULL ^ k0;
    uint64_t v3 = 0x7465646279746573ULL ^ k1;
    const uint8_t *end = in + (len - (len % 8));
    for (; in != end; in += 8) {
        uint64_t m = load_le64(in);
        v3 ^= m;
        SIPROUND;
        v0 ^= m;
    }
    uint8_t tail[8] = { 0 };
    memcpy(tail, in, len % 8);
    uint64_t b = ((uint64_t)len) << 56 | load_le64(tail);
    v3 ^= b;
    SIPROUND;
    v0 ^= b;
    v2 ^= 0xff;
    SIPROUND;
    SIPROUND;
    SIPROUND;
    return v0 ^ v1 ^ v2 ^ v3;
}
