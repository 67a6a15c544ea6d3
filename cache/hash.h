/* The hash value type: field -> value bytes, with the store ops (hash_value_ops) that free,
 * copy, measure and count it.
 *
 * Two encodings, chosen by Redis 7.0's listpack rule so that memory and reply order follow
 * Redis: a hash is compact (one packed buffer of [flen][field][vlen][value] entries in insertion
 * order, lookups by a bounded linear walk) while it has at most HASH_COMPACT_ENTRIES fields and
 * no field or value longer than HASH_COMPACT_VALUE bytes; past that it becomes a dict
 * (cache/fieldmap.h, seeded SipHash) and never goes back. In compact form HGETALL, HKEYS, HVALS and
 * HSCAN list fields in insertion order (an update keeps a field's place), as Redis does.
 *
 * Invariants: fields are unique and binary safe; hash_bytes() is exactly what is allocated for
 * the value (each allocation counted as malloc_usable_size + one chunk header); an empty hash is
 * never left in the store (the store deletes an aggregate whose len is 0 after
 * store_value_changed). Field views (struct hash_field) point into the hash and are valid until
 * the hash changes. */
#ifndef CACHE_HASH_H
#define CACHE_HASH_H

#include "cache/fieldmap.h"
#include "cache/store.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Redis 7.0's defaults of hash-max-listpack-entries and hash-max-listpack-value. */
#define HASH_COMPACT_ENTRIES 128
#define HASH_COMPACT_VALUE 64
/* Random draws per requested field before hash_random_fields switches to a full shuffle. */
#define HASH_RANDOM_TRIES_PER_PICK 16

struct hash_value;

/* A view of one field and its value inside a hash. */
struct hash_field {
    const char *field;
    size_t flen;
    const char *val;
    size_t vlen;
};

extern const struct store_value_ops hash_value_ops;

/* A new empty (compact) hash; seed (16 bytes, copied) seeds its dict if it ever gets one.
 * Owned by the caller until given to the store with store_add_value(). */
struct hash_value *hash_new(const uint8_t seed[16]);
void hash_free(struct hash_value *h);
struct hash_value *hash_dup(const struct hash_value *h);

/* Sets field to value (both copied; val may be NULL when vlen is 0); true when the field was
 * new. An update keeps the field's place. */
bool hash_set(struct hash_value *h, const char *field, size_t flen, const char *val,
              size_t vlen);
/* Finds field; fills *out (if non-NULL) and returns true when present. */
bool hash_get(const struct hash_value *h, const char *field, size_t flen,
              struct hash_field *out);
/* Removes field; false when it was not there. */
bool hash_delete(struct hash_value *h, const char *field, size_t flen);

size_t hash_len(const struct hash_value *h);
size_t hash_bytes(const struct hash_value *h);
/* True while the hash is in its compact encoding (Redis's "listpack"). */
bool hash_is_compact(const struct hash_value *h);

/* Full walk (insertion order when compact): hash_iter_init, then hash_iter_next until false.
 * The hash must not change during the walk. */
struct hash_iter {
    size_t pos;          /* compact: byte offset of the next entry */
    struct fieldmap_iter di; /* dict */
};
void hash_iter_init(const struct hash_value *h, struct hash_iter *it);
bool hash_iter_next(const struct hash_value *h, struct hash_iter *it, struct hash_field *out);

/* One SCAN step: fn sees the fields of one dict bucket and the next cursor is returned (0 when
 * done); a compact hash is walked whole in one step (returns 0), as Redis scans a listpack.
 * fn must not change the hash. */
uint64_t hash_scan(const struct hash_value *h, uint64_t cursor,
                   void (*fn)(void *ctx, const struct hash_field *f), void *ctx);

/* A random field into *out; false when the hash is empty. rng is the caller's xorshift state. */
bool hash_random(const struct hash_value *h, uint64_t *rng, struct hash_field *out);
/* Fills out[] with min(count, len) distinct fields and returns how many: all of them in walk
 * order when count >= len, else a random selection in random order (O(count) expected when
 * count is small against len, else O(len)). out must hold min(count, len) views. */
size_t hash_random_fields(const struct hash_value *h, uint64_t *rng, size_t count,
                          struct hash_field *out);

#endif
