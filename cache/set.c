/* The set value type (cache/set.h): members as the keys of a dict with empty values, random
 * picks driven by the caller's xorshift state, and the store's ops for STORE_SET.
 *
 * A set is its dict: struct set_value is never defined, a set pointer is the dict's pointer
 * (one allocation less per key than a wrapper).
 *
 * Invariants: the dict holds each member once; set_bytes() = fieldmap_bytes() (every allocation,
 * usable size + one chunk header). Random picks are uniform over the members (see fair_pick).
 * Random sampling never copies the set: a large sample is a selection walk (Knuth's algorithm
 * S), a small one collects its picks in a temporary dict of at most `count` members. Every loop
 * is bounded by the set's length, by `count`, or by fieldmap_random's tries and
 * SET_RANDOM_DRAWS_PER_PICK draws. */
#include "cache/set.h"

#include "cache/siphash.h"

#include <string.h>

/* set_random_distinct: below len/SET_SAMPLE_WALK_MUL picks, draw at random (as Redis's
 * SRANDMEMBER_SUB_STRATEGY_MUL); draws per wanted member before the rest is filled by a walk. */
#define SET_SAMPLE_WALK_MUL 3
#define SET_RANDOM_DRAWS_PER_PICK 64
/* Sets of at most this many members are picked from by position (a walk of the few members),
 * which is exact and avoids the rejections of a sparse table. */
#define SET_SMALL 16

/* Fixed keys that turn the caller's seed bytes into independent 64-bit values. */
static const uint8_t seed_key_lo[16] = { 's', 'e', 't', ':', 'l', 'o', 0x5a, 0x17, 0x9c,
                                          0x3e, 0x61, 0xd4, 0x08, 0xbb, 0x72, 0x2f };
static const uint8_t seed_key_hi[16] = { 's', 'e', 't', ':', 'h', 'i', 0xa3, 0x4d, 0x16,
                                          0xe8, 0x90, 0x2b, 0xc5, 0x37, 0x6e, 0xf1 };

static uint64_t rng_nonzero(uint64_t v)
{
    return v ? v : 0x9E3779B97F4A7C15ull;
}

/* xorshift64*: the next pseudo-random value; steps *state. */
static uint64_t rng_next(uint64_t *state)
{
    uint64_t x = rng_nonzero(*state);
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    return x * 0x2545F4914F6CDD1Dull;
}

/* An unbiased value in [0, n) (n > 0). Loops until a draw is under the largest multiple of n;
 * each draw fails with probability < 1/2, so SET_RANDOM_DRAWS_PER_PICK bounds it for all
 * practical purposes, after which the modulo bias of one draw is accepted. */
static uint64_t rng_below(uint64_t *state, uint64_t n)
{
    uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    uint64_t v = rng_next(state);
    for (int i = 0; i < SET_RANDOM_DRAWS_PER_PICK && v >= limit; i++)
        v = rng_next(state);
    return v % n;
}

static struct fieldmap *sd(struct set_value *s)
{
    return (struct fieldmap *)s;
}

static const struct fieldmap *csd(const struct set_value *s)
{
    return (const struct fieldmap *)s;
}

/* ---- lifetime ---- */

struct set_value *set_create(const void *seed, size_t n)
{
    uint8_t dseed[16];
    uint64_t lo = siphash13(seed, n, seed_key_lo), hi = siphash13(seed, n, seed_key_hi);
    memcpy(dseed, &lo, 8);
    memcpy(dseed + 8, &hi, 8);
    return (struct set_value *)fieldmap_new(dseed);
}

void set_free(struct set_value *s)
{
    fieldmap_free(sd(s));
}

struct set_value *set_dup(const struct set_value *s)
{
    return (struct set_value *)fieldmap_dup(csd(s));
}

/* ---- members ---- */

bool set_add(struct set_value *s, const char *m, size_t len)
{
    if (fieldmap_find(csd(s), m, len))
        return false;
    fieldmap_set(sd(s), m, len, NULL, 0, NULL);
    return true;
}

bool set_remove(struct set_value *s, const char *m, size_t len)
{
    return fieldmap_delete(sd(s), m, len);
}

bool set_contains(const struct set_value *s, const char *m, size_t len)
{
    return fieldmap_find(csd(s), m, len) != NULL;
}

size_t set_len(const struct set_value *s)
{
    return fieldmap_len(csd(s));
}

size_t set_bytes(const struct set_value *s)
{
    return fieldmap_bytes(csd(s));
}

/* ---- walks ---- */

void set_iter_start(struct set_iter *it)
{
    it->di.bucket = 0;
    it->di.entry = NULL;
    it->di.next = NULL;
}

bool set_iter_next(const struct set_value *s, struct set_iter *it, struct set_member *out)
{
    const struct fieldmap_entry *e = fieldmap_next(csd(s), &it->di);
    if (!e)
        return false;
    out->ptr = fieldmap_key(e);
    out->len = e->klen;
    return true;
}

struct scan_ctx {
    set_member_fn *fn;
    void *ctx;
};

static void scan_entry_cb(void *ctx, const struct fieldmap_entry *e)
{
    struct scan_ctx *sc = ctx;
    sc->fn(sc->ctx, fieldmap_key(e), e->klen);
}

uint64_t set_scan(const struct set_value *s, uint64_t cursor, set_member_fn *fn, void *ctx)
{
    struct scan_ctx sc = { fn, ctx };
    return fieldmap_scan(csd(s), cursor, scan_entry_cb, &sc);
}

/* ---- random members ---- */

/* Fills all[] with the entries of a set of at most SET_SMALL members; returns how many. */
static size_t small_entries(const struct fieldmap *d, const struct fieldmap_entry *all[SET_SMALL])
{
    struct fieldmap_iter it = { 0, NULL, NULL };
    size_t n = 0;
    const struct fieldmap_entry *e;
    while (n < SET_SMALL && (e = fieldmap_next(d, &it)) != NULL)
        all[n++] = e;
    return n;
}

/* A random entry, each with the same probability (NULL when empty): fieldmap's fair pick. */
static const struct fieldmap_entry *fair_pick(const struct fieldmap *d, uint64_t *rng)
{
    return fieldmap_random(d, rng);
}

bool set_random(const struct set_value *s, uint64_t *rng, struct set_member *out)
{
    *rng = rng_nonzero(*rng);
    const struct fieldmap_entry *e = fair_pick(csd(s), rng);
    if (!e)
        return false;
    out->ptr = fieldmap_key(e);
    out->len = e->klen;
    return true;
}

size_t set_random_many(const struct set_value *s, uint64_t *rng, size_t count,
                       set_member_fn *fn, void *ctx)
{
    *rng = rng_nonzero(*rng);
    size_t len = set_len(s);
    if (len == 0)
        return 0;
    if (len <= SET_SMALL) {
        const struct fieldmap_entry *all[SET_SMALL];
        size_t n = small_entries(csd(s), all);
        for (size_t i = 0; i < count; i++) {
            const struct fieldmap_entry *e = all[rng_below(rng, n)];
            fn(ctx, fieldmap_key(e), e->klen);
        }
        return count;
    }
    for (size_t i = 0; i < count; i++) {
        const struct fieldmap_entry *e = fair_pick(csd(s), rng);
        fn(ctx, fieldmap_key(e), e->klen);
    }
    return count;
}

bool set_pop_random(struct set_value *s, uint64_t *rng, set_member_fn *fn, void *ctx)
{
    *rng = rng_nonzero(*rng);
    const struct fieldmap_entry *e = fair_pick(csd(s), rng);
    if (!e)
        return false;
    fn(ctx, fieldmap_key(e), e->klen);
    fieldmap_delete(sd(s), fieldmap_key(e), e->klen);
    return true;
}

/* Knuth's algorithm S: one walk, each member taken with probability wanted/left, so every
 * subset of `count` members is equally likely. */
static size_t sample_by_walk(const struct set_value *s, uint64_t *rng, size_t count,
                             set_member_fn *fn, void *ctx)
{
    size_t left = set_len(s), taken = 0;
    struct set_iter it;
    struct set_member m;
    set_iter_start(&it);
    while (taken < count && set_iter_next(s, &it, &m)) {
        if (rng_below(rng, left) < count - taken) {
            fn(ctx, m.ptr, m.len);
            taken++;
        }
        left--;
    }
    return taken;
}

/* Random draws until `count` distinct members were seen (count * SET_SAMPLE_WALK_MUL <= len,
 * so a draw is new with probability >= 2/3). The picks are remembered in a temporary dict;
 * if the draw budget ever ran out, a walk adds members not yet picked. */
static size_t sample_by_draws(const struct set_value *s, uint64_t *rng, size_t count,
                              set_member_fn *fn, void *ctx)
{
    uint8_t seed[16];
    uint64_t a = rng_next(rng), b = rng_next(rng);
    memcpy(seed, &a, 8);
    memcpy(seed + 8, &b, 8);
    struct fieldmap *seen = fieldmap_new(seed);
    size_t budget = count * SET_RANDOM_DRAWS_PER_PICK;
    while (fieldmap_len(seen) < count && budget--) {
        const struct fieldmap_entry *e = fair_pick(csd(s), rng);
        bool created;
        fieldmap_set(seen, fieldmap_key(e), e->klen, NULL, 0, &created);
        if (created)
            fn(ctx, fieldmap_key(e), e->klen);
    }
    struct set_iter it;
    struct set_member m;
    set_iter_start(&it);
    while (fieldmap_len(seen) < count && set_iter_next(s, &it, &m)) {
        bool created;
        fieldmap_set(seen, m.ptr, m.len, NULL, 0, &created);
        if (created)
            fn(ctx, m.ptr, m.len);
    }
    size_t n = fieldmap_len(seen);
    fieldmap_free(seen);
    return n;
}

size_t set_random_distinct(const struct set_value *s, uint64_t *rng, size_t count,
                           set_member_fn *fn, void *ctx)
{
    size_t len = set_len(s);
    *rng = rng_nonzero(*rng);
    if (count == 0 || len == 0)
        return 0;
    if (count >= len) {
        struct set_iter it;
        struct set_member m;
        set_iter_start(&it);
        while (set_iter_next(s, &it, &m))
            fn(ctx, m.ptr, m.len);
        return len;
    }
    if (count > len / SET_SAMPLE_WALK_MUL)
        return sample_by_walk(s, rng, count, fn, ctx);
    return sample_by_draws(s, rng, count, fn, ctx);
}

/* ---- store ops ---- */

static void ops_free(void *v)
{
    set_free(v);
}

static void *ops_dup(const void *v)
{
    return set_dup(v);
}

static size_t ops_bytes(const void *v)
{
    return set_bytes(v);
}

static size_t ops_len(const void *v)
{
    return set_len(v);
}

const struct store_value_ops set_value_ops = { ops_free, ops_dup, ops_bytes, ops_len };
