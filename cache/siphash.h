/* SipHash-1-3: the seeded keyed hash the store uses for its table (resists hash flooding).
 * Pure function of (bytes, 16-byte seed). */
#ifndef CACHE_SIPHASH_H
#define CACHE_SIPHASH_H

#include <stddef.h>
#include <stdint.h>

uint64_t siphash13(const void *data, size_t len, const uint8_t seed[16]);

#endif
