/* A near-cache entry's value (DESIGN.md section 4): the encoded RESP2 replies of the cacheable
 * reads seen for one key, each under its request signature (the command name and the arguments
 * after the key, as near-cache code builds it), so that `GET k`, `HGET k f` and `LRANGE k 0 9`
 * can each be answered from the same key's entry.
 *
 * Invariants: at most REPLYSET_ITEMS_MAX replies (putting one more drops the least recently put
 * one); signatures are unique; bytes is the real allocation size of the struct and every item
 * (malloc_usable_size + one chunk header each), as the store charges it. fresh_until_ms is the
 * owner's (0 = fresh while the store keeps the key). No I/O, no clock.
 *
 * Inline item: a set made by replyset_create_sized() has room for one item in its own
 * allocation, right after the struct (the near-cache's common case, one GET reply per key): a
 * hit then reads the set and its reply from one block instead of following a second pointer to
 * a separately allocated item, and filling the key costs one allocation less. An item that does
 * not fit, or any item while the room is taken, is allocated on its own. */
#ifndef CACHE_REPLYSET_H
#define CACHE_REPLYSET_H

#include "cache/store.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define REPLYSET_ITEMS_MAX 16

struct replyset_item;

struct replyset {
    struct replyset_item *head; /* most recently put first */
    uint32_t n;
    uint32_t inline_cap;        /* bytes of room for an item after the struct (0: none) */
    size_t bytes;
    int64_t fresh_until_ms;     /* serve_stale: fresh until then, stale (store TTL) after */
    bool inline_used;           /* the room holds an item of the list */
};

struct replyset *replyset_create(void);
/* A set with room for one item of siglen + rlen bytes in its own allocation. */
struct replyset *replyset_create_sized(size_t siglen, size_t rlen);
/* The reply stored for sig (*len set), or NULL. Borrowed: valid until the set changes. */
const char *replyset_get(const struct replyset *rs, const char *sig, size_t siglen, size_t *len);
/* Stores reply under sig (both copied), replacing an earlier reply for sig. */
void replyset_put(struct replyset *rs, const char *sig, size_t siglen, const char *reply,
                  size_t rlen);

/* Withholding (a write of the key is in flight): drops every reply and leaves one placeholder
 * (an empty signature no lookup matches, no reply), so the set answers nothing while keeping
 * its allocation, its inline room and a non-empty length (the store deletes empty aggregates).
 * replyset_withheld() says whether a set is in that state; replyset_clear() drops every item,
 * the placeholder too, before a put (the set is empty until then: never hand it to the store
 * empty). */
void replyset_withhold(struct replyset *rs);
bool replyset_withheld(const struct replyset *rs);
void replyset_clear(struct replyset *rs);

/* The store's ops for STORE_REPLIES (free, dup, bytes, len). */
extern const struct store_value_ops replyset_ops;

#endif
