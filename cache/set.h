/* The set value type: binary-safe members in a dict (cache/fieldmap.h, members as keys, no value).
 *
 * Invariants:
 *  - every member is one dict entry (key = the member bytes, value empty); no duplicates;
 *  - set_bytes() is every byte allocated for the set (the dict's allocations, each counted as
 *    malloc_usable_size + one chunk header), as the store charges it;
 *  - random picks use the caller's xorshift state (a uint64_t the caller seeds per command),
 *    so the set holds no random state and the same state gives the same picks (unit tests).
 * A set is owned by whoever created it until handed to the store (store_add_value); the store
 * frees it through set_value_ops. Member pointers handed out (iteration, scan, random) stay valid
 * until the set is next modified. */
#ifndef CACHE_SET_H
#define CACHE_SET_H

#include "cache/fieldmap.h"
#include "cache/store.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Opaque: a set is its dict (cache/set.c). */
struct set_value;

/* One member: ptr points into the set (valid until the set changes). */
struct set_member {
    const char *ptr;
    size_t len;
};

/* Called with each member visited; must not modify the set. */
typedef void set_member_fn(void *ctx, const char *m, size_t len);

/* The store's ops for STORE_SET values (free, dup, bytes, len). */
extern const struct store_value_ops set_value_ops;

/* A new empty set whose dict's 16-byte hash seed is derived from the n bytes at seed (e.g. the
 * store's secret seed or the server's run_id): the same bytes give the same seed. The caller
 * owns the result (set_free, or hand it to the store). */
struct set_value *set_create(const void *seed, size_t n);
void set_free(struct set_value *s);
/* A deep copy (same members, same seed). */
struct set_value *set_dup(const struct set_value *s);

/* Adds member m (copied); true when it was not there. */
bool set_add(struct set_value *s, const char *m, size_t len);
/* Removes member m; true when it was there. */
bool set_remove(struct set_value *s, const char *m, size_t len);
bool set_contains(const struct set_value *s, const char *m, size_t len);
size_t set_len(const struct set_value *s);
size_t set_bytes(const struct set_value *s);

/* Full iteration: set_iter_start(), then set_iter_next() until false. The set must not change
 * during the walk, except set_remove() of the member just returned. */
struct set_iter {
    struct fieldmap_iter di;
};
void set_iter_start(struct set_iter *it);
bool set_iter_next(const struct set_value *s, struct set_iter *it, struct set_member *out);

/* One SSCAN step over the bucket the cursor names (Redis's reverse-binary cursor): fn gets
 * each member there; returns the next cursor, 0 when the walk is complete. A member present
 * for the whole walk is returned at least once, also if the set was resized between steps. */
uint64_t set_scan(const struct set_value *s, uint64_t cursor, set_member_fn *fn, void *ctx);

/* Random picks: rng is the caller's xorshift state (any value; 0 is replaced), stepped by
 * every call. */
/* A random member into *out (false when the set is empty). */
bool set_random(const struct set_value *s, uint64_t *rng, struct set_member *out);
/* Calls fn on count members picked independently (repeats possible, in pick order); returns
 * count (0 for an empty set). */
size_t set_random_many(const struct set_value *s, uint64_t *rng, size_t count,
                       set_member_fn *fn, void *ctx);
/* Removes a random member, calling fn with it first (false when the set is empty). */
bool set_pop_random(struct set_value *s, uint64_t *rng, set_member_fn *fn, void *ctx);
/* Calls fn on min(count, len) distinct members picked at random (every member when
 * count >= len), each subset of that size equally likely: a selection walk when count * 3 > len
 * (O(len) work), repeated uniform draws otherwise (O(count) work and a temporary dict of the
 * picks); never a copy of the set. Returns how many fn got. */
size_t set_random_distinct(const struct set_value *s, uint64_t *rng, size_t count,
                           set_member_fn *fn, void *ctx);

#endif
