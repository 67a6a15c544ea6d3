/* The hash value type (cache/hash.h): a compact packed encoding for small hashes and a dict for
 * the rest, and the store ops. No I/O, no clock.
 *
 * Compact layout: pack holds len entries back to back, each [flen: 1 byte][field][vlen: 1 byte]
 * [value] (both lengths <= HASH_COMPACT_VALUE, so one byte each), in insertion order; used is
 * the bytes in use; the allocation's capacity is malloc_usable_size(pack) (NULL when empty).
 * Every walk of a pack is bounded by len <= HASH_COMPACT_ENTRIES.
 * Table mode: used == TABLE_MODE and d is the dict (len unused).
 * hash_bytes() = the struct's allocation + the pack's or the dict's bytes. */
#include "cache/hash.h"

#include "conf/xmalloc.h"

#include <malloc.h>
#include <stdlib.h>
#include <string.h>

#define CHUNK_OVERHEAD sizeof(size_t)
#define TABLE_MODE UINT32_MAX

struct hash_value {
    union {
        unsigned char *pack;
        struct fieldmap *d;
    } u;
    uint32_t len;  /* compact: number of fields */
    uint32_t used; /* compact: bytes of pack in use; TABLE_MODE: a dict */
    uint8_t seed[16];
};

static size_t alloc_size(const void *p)
{
    return p ? malloc_usable_size((void *)p) + CHUNK_OVERHEAD : 0;
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

static bool is_table(const struct hash_value *h) { return h->used == TABLE_MODE; }

/* ---- the packed entries ---- */

static size_t entry_size(const unsigned char *p)
{
    size_t flen = p[0];
    return 2 + flen + p[1 + flen];
}

static void entry_view(const unsigned char *p, struct hash_field *out)
{
    size_t flen = p[0];
    out->field = (const char *)p + 1;
    out->flen = flen;
    out->vlen = p[1 + flen];
    out->val = (const char *)p + 2 + flen;
}

/* The byte offset of field's entry, or -1. */
static long pack_find(const struct hash_value *h, const char *field, size_t flen)
{
    size_t off = 0;
    for (uint32_t i = 0; i < h->len; i++) {
        const unsigned char *p = h->u.pack + off;
        if (p[0] == flen && memcmp(p + 1, field, flen) == 0)
            return (long)off;
        off += entry_size(p);
    }
    return -1;
}

/* Makes room for used + extra bytes. */
static void pack_reserve(struct hash_value *h, size_t extra)
{
    size_t need = (size_t)h->used + extra;
    if (!h->u.pack || malloc_usable_size(h->u.pack) < need)
        h->u.pack = xrealloc(h->u.pack, need);
}

/* Turns a compact hash into a dict (fields keep their values; order is the dict's). */
static void convert_to_table(struct hash_value *h)
{
    struct fieldmap *d = fieldmap_new(h->seed);
    size_t off = 0;
    for (uint32_t i = 0; i < h->len; i++) {
        struct hash_field f;
        entry_view(h->u.pack + off, &f);
        fieldmap_set(d, f.field, f.flen, f.val, f.vlen, NULL);
        off += entry_size(h->u.pack + off);
    }
    free(h->u.pack);
    h->u.d = d;
    h->len = 0;
    h->used = TABLE_MODE;
}

static void view_of_entry(const struct fieldmap_entry *e, struct hash_field *out)
{
    out->field = fieldmap_key(e);
    out->flen = e->klen;
    out->val = fieldmap_val(e);
    out->vlen = e->vlen;
}

/* ---- lifetime ---- */

struct hash_value *hash_new(const uint8_t seed[16])
{
    struct hash_value *h = xmalloc(sizeof(*h));
    h->u.pack = NULL;
    h->len = 0;
    h->used = 0;
    memcpy(h->seed, seed, sizeof(h->seed));
    return h;
}

void hash_free(struct hash_value *h)
{
    if (!h)
        return;
    if (is_table(h))
        fieldmap_free(h->u.d);
    else
        free(h->u.pack);
    free(h);
}

struct hash_value *hash_dup(const struct hash_value *h)
{
    struct hash_value *c = xmalloc(sizeof(*c));
    *c = *h;
    if (is_table(h)) {
        c->u.d = fieldmap_dup(h->u.d);
    } else if (h->u.pack) {
        c->u.pack = xmalloc(h->used);
        memcpy(c->u.pack, h->u.pack, h->used);
    }
    return c;
}

/* ---- fields ---- */

bool hash_set(struct hash_value *h, const char *field, size_t flen, const char *val,
              size_t vlen)
{
    if (!is_table(h) && (flen > HASH_COMPACT_VALUE || vlen > HASH_COMPACT_VALUE))
        convert_to_table(h);
    if (is_table(h)) {
        bool created = false;
        fieldmap_set(h->u.d, field, flen, val, vlen, &created);
        return created;
    }
    long at = pack_find(h, field, flen);
    if (at >= 0) {
        unsigned char *p = h->u.pack + at;
        size_t old = p[1 + flen];
        if (old != vlen) {
            size_t tail_from = (size_t)at + 2 + flen + old;
            size_t tail = h->used - tail_from;
            if (vlen > old)
                pack_reserve(h, vlen - old);
            p = h->u.pack + at;
            memmove(p + 2 + flen + vlen, p + 2 + flen + old, tail);
            h->used = (uint32_t)(h->used - old + vlen);
            p[1 + flen] = (unsigned char)vlen;
        }
        if (vlen)
            memcpy(p + 2 + flen, val, vlen);
        return false;
    }
    if (h->len + 1 > HASH_COMPACT_ENTRIES) {
        convert_to_table(h);
        fieldmap_set(h->u.d, field, flen, val, vlen, NULL);
        return true;
    }
    pack_reserve(h, 2 + flen + vlen);
    unsigned char *p = h->u.pack + h->used;
    p[0] = (unsigned char)flen;
    if (flen)
        memcpy(p + 1, field, flen);
    p[1 + flen] = (unsigned char)vlen;
    if (vlen)
        memcpy(p + 2 + flen, val, vlen);
    h->used += (uint32_t)(2 + flen + vlen);
    h->len++;
    return true;
}

bool hash_get(const struct hash_value *h, const char *field, size_t flen,
              struct hash_field *out)
{
    if (is_table(h)) {
        const struct fieldmap_entry *e = fieldmap_find(h->u.d, field, flen);
        if (e && out)
            view_of_entry(e, out);
        return e != NULL;
    }
    if (flen > HASH_COMPACT_VALUE)
        return false;
    long at = pack_find(h, field, flen);
    if (at >= 0 && out)
        entry_view(h->u.pack + at, out);
    return at >= 0;
}

bool hash_delete(struct hash_value *h, const char *field, size_t flen)
{
    if (is_table(h))
        return fieldmap_delete(h->u.d, field, flen);
    if (flen > HASH_COMPACT_VALUE)
        return false;
    long at = pack_find(h, field, flen);
    if (at < 0)
        return false;
    size_t n = entry_size(h->u.pack + at);
    memmove(h->u.pack + at, h->u.pack + at + n, h->used - (size_t)at - n);
    h->used -= (uint32_t)n;
    h->len--;
    if (h->len == 0) {
        free(h->u.pack);
        h->u.pack = NULL;
    } else if (malloc_usable_size(h->u.pack) >= 2 * (size_t)h->used + 64) {
        h->u.pack = xrealloc(h->u.pack, h->used); /* give back what a shrink freed */
    }
    return true;
}

size_t hash_len(const struct hash_value *h)
{
    return is_table(h) ? fieldmap_len(h->u.d) : h->len;
}

size_t hash_bytes(const struct hash_value *h)
{
    return alloc_size(h) + (is_table(h) ? fieldmap_bytes(h->u.d) : alloc_size(h->u.pack));
}

bool hash_is_compact(const struct hash_value *h) { return !is_table(h); }

/* ---- walks ---- */

void hash_iter_init(const struct hash_value *h, struct hash_iter *it)
{
    (void)h;
    it->pos = 0;
    it->di = (struct fieldmap_iter){ 0, NULL, NULL };
}

bool hash_iter_next(const struct hash_value *h, struct hash_iter *it, struct hash_field *out)
{
    if (is_table(h)) {
        const struct fieldmap_entry *e = fieldmap_next(h->u.d, &it->di);
        if (!e)
            return false;
        view_of_entry(e, out);
        return true;
    }
    if (it->pos >= h->used)
        return false;
    entry_view(h->u.pack + it->pos, out);
    it->pos += entry_size(h->u.pack + it->pos);
    return true;
}

struct scan_adapter {
    void (*fn)(void *ctx, const struct hash_field *f);
    void *ctx;
};

static void scan_adapter_cb(void *ctx, const struct fieldmap_entry *e)
{
    struct scan_adapter *a = ctx;
    struct hash_field f;
    view_of_entry(e, &f);
    a->fn(a->ctx, &f);
}

uint64_t hash_scan(const struct hash_value *h, uint64_t cursor,
                   void (*fn)(void *ctx, const struct hash_field *f), void *ctx)
{
    if (is_table(h)) {
        struct scan_adapter a = { fn, ctx };
        return fieldmap_scan(h->u.d, cursor, scan_adapter_cb, &a);
    }
    struct hash_iter it;
    struct hash_field f;
    hash_iter_init(h, &it);
    for (uint32_t i = 0; i < h->len && hash_iter_next(h, &it, &f); i++)
        fn(ctx, &f);
    return 0;
}

/* ---- random fields ---- */

/* The view of the compact entry number idx (< len). */
static void pack_nth(const struct hash_value *h, size_t idx, struct hash_field *out)
{
    size_t off = 0;
    for (size_t i = 0; i < idx; i++)
        off += entry_size(h->u.pack + off);
    entry_view(h->u.pack + off, out);
}

bool hash_random(const struct hash_value *h, uint64_t *rng, struct hash_field *out)
{
    if (is_table(h)) {
        const struct fieldmap_entry *e = fieldmap_random(h->u.d, rng);
        if (!e)
            return false;
        view_of_entry(e, out);
        return true;
    }
    if (h->len == 0)
        return false;
    pack_nth(h, (size_t)(rng_next(rng) % h->len), out);
    return true;
}

/* count < len distinct fields by a partial Fisher-Yates shuffle of every field. */
static size_t random_by_shuffle(const struct hash_value *h, uint64_t *rng, size_t count,
                                struct hash_field *out)
{
    size_t len = hash_len(h), n = 0;
    struct hash_field *all = xmalloc(len * sizeof(*all));
    struct hash_iter it;
    hash_iter_init(h, &it);
    while (n < len && hash_iter_next(h, &it, &all[n]))
        n++;
    size_t want = count < n ? count : n;
    for (size_t i = 0; i < want; i++) {
        size_t j = i + (size_t)(rng_next(rng) % (n - i));
        struct hash_field t = all[i];
        all[i] = all[j];
        all[j] = t;
        out[i] = all[i];
    }
    free(all);
    return want;
}

/* count distinct fields of a table by random draws, remembering the entries taken in a small
 * dict keyed by their address. Returns 0 when the draws ran out (the caller then shuffles). */
static size_t random_by_draws(const struct hash_value *h, uint64_t *rng, size_t count,
                              struct hash_field *out)
{
    static const uint8_t zero_seed[16] = { 0 }; /* keys are our own pointers: no flooding */
    struct fieldmap *taken = fieldmap_new(zero_seed);
    size_t n = 0, tries = count * HASH_RANDOM_TRIES_PER_PICK;
    while (n < count && tries--) {
        const struct fieldmap_entry *e = fieldmap_random(h->u.d, rng);
        bool created = false;
        fieldmap_set(taken, (const char *)&e, sizeof(e), NULL, 0, &created);
        if (created)
            view_of_entry(e, &out[n++]);
    }
    fieldmap_free(taken);
    return n == count ? n : 0;
}

size_t hash_random_fields(const struct hash_value *h, uint64_t *rng, size_t count,
                          struct hash_field *out)
{
    size_t len = hash_len(h);
    if (count == 0 || len == 0)
        return 0;
    if (count >= len) {
        struct hash_iter it;
        size_t n = 0;
        hash_iter_init(h, &it);
        while (n < len && hash_iter_next(h, &it, &out[n]))
            n++;
        return n;
    }
    /* Redis's HRANDFIELD_SUB_STRATEGY_MUL: draws only when count is well under len. */
    if (is_table(h) && count * 3 <= len) {
        size_t n = random_by_draws(h, rng, count, out);
        if (n)
            return n;
    }
    return random_by_shuffle(h, rng, count, out);
}

/* ---- store ops ---- */

static void ops_free(void *v) { hash_free(v); }
static void *ops_dup(const void *v) { return hash_dup(v); }
static size_t ops_bytes(const void *v) { return hash_bytes(v); }
static size_t ops_len(const void *v) { return hash_len(v); }

const struct store_value_ops hash_value_ops = {
    .free = ops_free,
    .dup = ops_dup,
    .bytes = ops_bytes,
    .len = ops_len,
};
