/* A binary-safe hash table of fields for the aggregate types: hash (field -> value bytes),
 * set (member, no value) and the sorted set's member index (member -> node pointer bytes).
 * Seeded SipHash, chained buckets, power-of-two sizes; it doubles at two entries per bucket and
 * halves when under an eighth (a full rehash at that moment). SCAN uses Redis's reverse-binary
 * cursor, so an element present for a whole scan is returned at least once even if the table
 * is resized between calls. Every byte it allocates is counted in fieldmap_bytes().
 * Entry pointers stay valid until the dict is modified. */
#ifndef CACHE_FIELDMAP_H
#define CACHE_FIELDMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct fieldmap;

struct fieldmap_entry {
    struct fieldmap_entry *next;
    uint32_t hash;
    uint32_t klen;
    uint32_t vlen;
    char data[]; /* key bytes, then value bytes, then a NUL */
};

static inline const char *fieldmap_key(const struct fieldmap_entry *e) { return e->data; }
static inline const char *fieldmap_val(const struct fieldmap_entry *e) { return e->data + e->klen; }
static inline char *fieldmap_val_mut(struct fieldmap_entry *e) { return e->data + e->klen; }

struct fieldmap *fieldmap_new(const uint8_t seed[16]);
void fieldmap_free(struct fieldmap *d);
struct fieldmap *fieldmap_dup(const struct fieldmap *d);

struct fieldmap_entry *fieldmap_find(const struct fieldmap *d, const char *key, size_t klen);
/* Inserts key or replaces its value; *created (if non-NULL) says which. The entry may be a new
 * allocation: use the returned pointer. */
struct fieldmap_entry *fieldmap_set(struct fieldmap *d, const char *key, size_t klen, const void *val,
                            size_t vlen, bool *created);
bool fieldmap_delete(struct fieldmap *d, const char *key, size_t klen);

size_t fieldmap_len(const struct fieldmap *d);
/* Bytes allocated: the struct, the bucket array and every entry (usable size + chunk header). */
size_t fieldmap_bytes(const struct fieldmap *d);

/* One SCAN step: calls fn on the entries of the bucket the cursor names; returns the next
 * cursor, 0 when done. fn must not modify the dict. */
uint64_t fieldmap_scan(const struct fieldmap *d, uint64_t cursor,
                   void (*fn)(void *ctx, const struct fieldmap_entry *e), void *ctx);
/* A random entry, every entry with the same chance (NULL when empty); rng is the caller's
 * xorshift state. */
struct fieldmap_entry *fieldmap_random(const struct fieldmap *d, uint64_t *rng);

/* Full iteration: set it->bucket = 0, it->entry = NULL, then call until NULL. The dict must
 * not change during the walk, except fieldmap_delete of the entry just returned. */
struct fieldmap_iter {
    size_t bucket;
    struct fieldmap_entry *entry, *next;
};
struct fieldmap_entry *fieldmap_next(const struct fieldmap *d, struct fieldmap_iter *it);

#endif
