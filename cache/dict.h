/* A binary-safe hash table of fields for the aggregate types: hash (field -> value bytes),
 * set (member, no value) and the sorted set's member index (member -> node pointer bytes).
 * Seeded SipHash, chained buckets, power-of-two sizes; it doubles at two entries per bucket and
 * halves when under an eighth (a full rehash at that moment). SCAN uses Redis's reverse-binary
 * cursor, so an element present for a whole scan is returned at least once even if the table
 * is resized between calls. Every byte it allocates is counted in dict_bytes().
 * Entry pointers stay valid until the dict is modified. */
#ifndef CACHE_DICT_H
#define CACHE_DICT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct dict;

struct dict_entry {
    struct dict_entry *next;
    uint32_t hash;
    uint32_t klen;
    uint32_t vlen;
    char data[]; /* key bytes, then value bytes, then a NUL */
};

static inline const char *dict_key(const struct dict_entry *e) { return e->data; }
static inline const char *dict_val(const struct dict_entry *e) { return e->data + e->klen; }
static inline char *dict_val_mut(struct dict_entry *e) { return e->data + e->klen; }

struct dict *dict_new(const uint8_t seed[16]);
void dict_free(struct dict *d);
struct dict *dict_dup(const struct dict *d);

struct dict_entry *dict_find(const struct dict *d, const char *key, size_t klen);
/* Inserts key or replaces its value; *created (if non-NULL) says which. The entry may be a new
 * allocation: use the returned pointer. */
struct dict_entry *dict_set(struct dict *d, const char *key, size_t klen, const void *val,
                            size_t vlen, bool *created);
bool dict_delete(struct dict *d, const char *key, size_t klen);

size_t dict_len(const struct dict *d);
/* Bytes allocated: the struct, the bucket array and every entry (usable size + chunk header). */
size_t dict_bytes(const struct dict *d);

/* One SCAN step: calls fn on the entries of the bucket the cursor names; returns the next
 * cursor, 0 when done. fn must not modify the dict. */
uint64_t dict_scan(const struct dict *d, uint64_t cursor,
                   void (*fn)(void *ctx, const struct dict_entry *e), void *ctx);
/* A random entry (NULL when empty); rng is the caller's xorshift state. */
struct dict_entry *dict_random(const struct dict *d, uint64_t *rng);

/* Full iteration: set it->bucket = 0, it->entry = NULL, then call until NULL. The dict must
 * not change during the walk, except dict_delete of the entry just returned. */
struct dict_iter {
    size_t bucket;
    struct dict_entry *entry, *next;
};
struct dict_entry *dict_next(const struct dict *d, struct dict_iter *it);

#endif
