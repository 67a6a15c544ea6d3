/* The field table of the aggregate types (cache/fieldmap.h): seeded SipHash, chained buckets,
 * power-of-two sizes, allocated on the first insert.
 *
 * Invariants:
 *  - size is 0 (no bucket array: never filled, or emptied) or a power of two >= DICT_MIN; every entry is in the chain
 *    of bucket (hash & (size - 1)) exactly once; len counts them;
 *  - the table doubles (full rehash) when an insert brings len to DICT_LOAD_MAX per bucket, and
 *    halves when a delete leaves it under one entry per DICT_SHRINK_RATIO buckets;
 *  - a halving is order-preserving: new bucket j is old bucket j's chain followed by old bucket
 *    (j + size/2)'s chain. Iteration walks buckets in reverse-binary cursor order, where those two
 *    old buckets are neighbours, and prefetches the next entry, so deleting the entry just
 *    returned (even when that halves the table) neither skips nor repeats an entry;
 *  - bytes is exactly the sum of the allocation sizes (malloc_usable_size + one chunk header) of
 *    the struct, the bucket array and every entry. */
#include "cache/fieldmap.h"

#include "cache/siphash.h"
#include "conf/xmalloc.h"

#include <malloc.h>
#include <stdlib.h>
#include <string.h>

#define DICT_MIN 4
#define DICT_LOAD_MAX 2
#define DICT_SHRINK_RATIO 8
/* glibc keeps one size_t before each chunk. */
#define CHUNK_OVERHEAD sizeof(size_t)

struct fieldmap {
    struct fieldmap_entry **b;
    size_t size; /* 0 or a power of two */
    size_t len;
    size_t bytes;
    uint8_t seed[16];
};

static size_t alloc_size(const void *p)
{
    return malloc_usable_size((void *)p) + CHUNK_OVERHEAD;
}

static uint32_t fieldmap_hash(const struct fieldmap *d, const char *key, size_t klen)
{
    uint64_t h = siphash13(key, klen, d->seed);
    return (uint32_t)(h ^ (h >> 32));
}

static uint64_t rev64(uint64_t v)
{
    v = ((v >> 1) & 0x5555555555555555ull) | ((v & 0x5555555555555555ull) << 1);
    v = ((v >> 2) & 0x3333333333333333ull) | ((v & 0x3333333333333333ull) << 2);
    v = ((v >> 4) & 0x0F0F0F0F0F0F0F0Full) | ((v & 0x0F0F0F0F0F0F0F0Full) << 4);
    v = ((v >> 8) & 0x00FF00FF00FF00FFull) | ((v & 0x00FF00FF00FF00FFull) << 8);
    v = ((v >> 16) & 0x0000FFFF0000FFFFull) | ((v & 0x0000FFFF0000FFFFull) << 16);
    return (v >> 32) | (v << 32);
}

/* The reverse-binary successor of cursor v in a table of mask+1 buckets (0 when wrapped). */
static uint64_t cursor_next(uint64_t v, uint64_t mask)
{
    v |= ~mask;
    v = rev64(v);
    v++;
    return rev64(v);
}

static struct fieldmap_entry *entry_alloc(size_t klen, size_t vlen)
{
    return xmalloc(sizeof(struct fieldmap_entry) + klen + vlen + 1);
}

/* ---- lifetime ---- */

struct fieldmap *fieldmap_new(const uint8_t seed[16])
{
    struct fieldmap *d = xcalloc(1, sizeof(*d));
    memcpy(d->seed, seed, sizeof(d->seed));
    d->bytes = alloc_size(d);
    return d;
}

void fieldmap_free(struct fieldmap *d)
{
    if (!d)
        return;
    for (size_t i = 0; i < d->size; i++) {
        struct fieldmap_entry *e = d->b[i];
        while (e) {
            struct fieldmap_entry *n = e->next;
            free(e);
            e = n;
        }
    }
    free(d->b);
    free(d);
}

struct fieldmap *fieldmap_dup(const struct fieldmap *d)
{
    struct fieldmap *c = fieldmap_new(d->seed);
    if (d->size == 0)
        return c;
    c->b = xcalloc(d->size, sizeof(*c->b));
    c->size = d->size;
    c->len = d->len;
    c->bytes += alloc_size(c->b);
    for (size_t i = 0; i < d->size; i++) {
        struct fieldmap_entry **tail = &c->b[i];
        for (const struct fieldmap_entry *e = d->b[i]; e; e = e->next) {
            size_t n = sizeof(*e) + e->klen + e->vlen + 1;
            struct fieldmap_entry *ne = xmalloc(n);
            memcpy(ne, e, n);
            ne->next = NULL;
            *tail = ne;
            tail = &ne->next;
            c->bytes += alloc_size(ne);
        }
    }
    return c;
}

/* ---- resizing ---- */

static void table_replace(struct fieldmap *d, struct fieldmap_entry **nb, size_t nsize)
{
    if (d->b)
        d->bytes -= alloc_size(d->b);
    free(d->b);
    d->b = nb;
    d->size = nsize;
    d->bytes += alloc_size(nb);
}

static void table_grow(struct fieldmap *d)
{
    size_t nsize = d->size * 2;
    struct fieldmap_entry **nb = xcalloc(nsize, sizeof(*nb));
    for (size_t i = 0; i < d->size; i++) {
        struct fieldmap_entry *e = d->b[i];
        while (e) {
            struct fieldmap_entry *n = e->next;
            size_t j = e->hash & (nsize - 1);
            e->next = nb[j];
            nb[j] = e;
            e = n;
        }
    }
    table_replace(d, nb, nsize);
}

/* Halves the table keeping each new chain as old j's chain then old (j + half)'s chain. */
static void table_halve(struct fieldmap *d)
{
    size_t half = d->size / 2;
    struct fieldmap_entry **nb = xcalloc(half, sizeof(*nb));
    for (size_t j = 0; j < half; j++) {
        nb[j] = d->b[j];
        struct fieldmap_entry **tail = &nb[j];
        while (*tail)
            tail = &(*tail)->next;
        *tail = d->b[j + half];
    }
    table_replace(d, nb, half);
}

/* ---- lookups and changes ---- */

/* The link that points at key's entry (or the chain's terminating NULL link). */
static struct fieldmap_entry **find_link(const struct fieldmap *d, const char *key, size_t klen,
                                     uint32_t h)
{
    struct fieldmap_entry **link = &d->b[h & (d->size - 1)];
    while (*link) {
        struct fieldmap_entry *e = *link;
        if (e->hash == h && e->klen == klen && memcmp(e->data, key, klen) == 0)
            return link;
        link = &e->next;
    }
    return link;
}

struct fieldmap_entry *fieldmap_find(const struct fieldmap *d, const char *key, size_t klen)
{
    if (d->len == 0)
        return NULL;
    return *find_link(d, key, klen, fieldmap_hash(d, key, klen));
}

struct fieldmap_entry *fieldmap_set(struct fieldmap *d, const char *key, size_t klen, const void *val,
                            size_t vlen, bool *created)
{
    uint32_t h = fieldmap_hash(d, key, klen);
    if (d->size == 0) {
        struct fieldmap_entry **nb = xcalloc(DICT_MIN, sizeof(*nb));
        table_replace(d, nb, DICT_MIN);
    }
    struct fieldmap_entry **link = find_link(d, key, klen, h);
    struct fieldmap_entry *e = *link;
    if (e) {
        if (created)
            *created = false;
        if (e->vlen != vlen) {
            size_t before = alloc_size(e);
            e = xrealloc(e, sizeof(*e) + klen + vlen + 1);
            *link = e;
            d->bytes = d->bytes - before + alloc_size(e);
            e->vlen = (uint32_t)vlen;
        }
        if (vlen)
            memmove(e->data + klen, val, vlen);
        e->data[klen + vlen] = '\0';
        return e;
    }
    if (created)
        *created = true;
    e = entry_alloc(klen, vlen);
    e->hash = h;
    e->klen = (uint32_t)klen;
    e->vlen = (uint32_t)vlen;
    if (klen)
        memcpy(e->data, key, klen);
    if (vlen)
        memcpy(e->data + klen, val, vlen);
    e->data[klen + vlen] = '\0';
    size_t j = h & (d->size - 1);
    e->next = d->b[j];
    d->b[j] = e;
    d->len++;
    d->bytes += alloc_size(e);
    if (d->len >= d->size * DICT_LOAD_MAX)
        table_grow(d);
    return e;
}

bool fieldmap_delete(struct fieldmap *d, const char *key, size_t klen)
{
    if (d->len == 0)
        return false;
    struct fieldmap_entry **link = find_link(d, key, klen, fieldmap_hash(d, key, klen));
    struct fieldmap_entry *e = *link;
    if (!e)
        return false;
    *link = e->next;
    d->bytes -= alloc_size(e);
    free(e);
    d->len--;
    if (d->len == 0) {
        d->bytes -= alloc_size(d->b);
        free(d->b);
        d->b = NULL;
        d->size = 0;
    } else if (d->size > DICT_MIN && d->len * DICT_SHRINK_RATIO < d->size) {
        table_halve(d);
    }
    return true;
}

size_t fieldmap_len(const struct fieldmap *d) { return d->len; }

size_t fieldmap_bytes(const struct fieldmap *d) { return d->bytes; }

/* ---- walks ---- */

uint64_t fieldmap_scan(const struct fieldmap *d, uint64_t cursor,
                   void (*fn)(void *ctx, const struct fieldmap_entry *e), void *ctx)
{
    if (d->size == 0)
        return 0;
    uint64_t mask = d->size - 1;
    for (const struct fieldmap_entry *e = d->b[cursor & mask]; e; e = e->next)
        fn(ctx, e);
    return cursor_next(cursor, mask);
}

static uint64_t rng_next(uint64_t *rng)
{
    uint64_t x = *rng ? *rng : 0x9E3779B97F4A7C15ull;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *rng = x;
    return x * 0x2545F4914F6CDD1Dull;
}

/* A uniform pick (rejection sampling): a random bucket whose chain has k entries is kept with
 * probability k / FAIR_CHAIN, then one of its entries uniformly, so every entry has the same
 * chance (entries of the rare chains longer than FAIR_CHAIN slightly less). A bare
 * bucket-then-chain pick favours entries alone in their bucket several times over those in
 * long chains. At most FAIR_TRIES buckets are drawn (expected FAIR_CHAIN / load; the table
 * keeps its load >= 1/8); past that, a walk from a random bucket. Tables of at most
 * FAIR_SMALL entries are picked from by position, exactly. */
#define FAIR_CHAIN 8
#define FAIR_TRIES 1024
#define FAIR_SMALL 16

static struct fieldmap_entry *chain_at(struct fieldmap_entry *e, size_t k)
{
    while (e && k--)
        e = e->next;
    return e;
}

struct fieldmap_entry *fieldmap_random(const struct fieldmap *d, uint64_t *rng)
{
    if (d->len == 0)
        return NULL;
    if (d->len <= FAIR_SMALL) {
        struct fieldmap_iter it = { 0, NULL, NULL };
        size_t k = (size_t)(rng_next(rng) % d->len);
        struct fieldmap_entry *e = fieldmap_next(d, &it);
        while (k-- && e)
            e = fieldmap_next(d, &it);
        return e;
    }
    size_t mask = d->size - 1;
    for (int i = 0; i < FAIR_TRIES; i++) {
        struct fieldmap_entry *e = chain_at(d->b[rng_next(rng) & mask],
                                            (size_t)(rng_next(rng) % FAIR_CHAIN));
        if (e)
            return e;
    }
    size_t start = (size_t)(rng_next(rng) & mask);
    for (size_t i = 0; i < d->size; i++) {
        struct fieldmap_entry *head = d->b[(start + i) & mask];
        if (head)
            return head;
    }
    return NULL; /* unreachable: len > 0 */
}

/* The first entry at or after cursor v (reverse-binary order); *at gets its bucket's cursor. */
static struct fieldmap_entry *first_from(const struct fieldmap *d, uint64_t v, size_t *at)
{
    if (d->size == 0)
        return NULL;
    uint64_t mask = d->size - 1;
    for (size_t i = 0; i < d->size; i++) {
        if (d->b[v & mask]) {
            *at = (size_t)(v & mask);
            return d->b[v & mask];
        }
        v = cursor_next(v, mask);
        if (v == 0)
            break;
    }
    return NULL;
}

/* it->entry: the entry last returned (NULL before the start and after the end); it->next: the
 * entry to return next, prefetched; it->bucket: the cursor of it->next's bucket. At the end,
 * bucket is SIZE_MAX so further calls keep returning NULL. */
struct fieldmap_entry *fieldmap_next(const struct fieldmap *d, struct fieldmap_iter *it)
{
    struct fieldmap_entry *e;
    size_t at = 0;
    if (!it->entry) {
        if (it->bucket != 0)
            return NULL;
        e = first_from(d, 0, &at);
    } else {
        e = it->next;
        at = it->bucket;
    }
    if (!e) {
        it->entry = it->next = NULL;
        it->bucket = SIZE_MAX;
        return NULL;
    }
    struct fieldmap_entry *nx = e->next;
    if (!nx) {
        uint64_t v = cursor_next(at, d->size - 1);
        nx = v ? first_from(d, v, &at) : NULL;
    }
    it->entry = e;
    it->next = nx;
    it->bucket = at;
    return e;
}
