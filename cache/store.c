/* The store: one hash table per database (chained, power-of-two sizes, incremental rehash as
 * Redis's dict), one exact intrusive LRU list across databases, TTLs inline in the entry, and
 * one byte budget.
 * See store.h for the invariants. Only this file touches entry links and the counters. */
#include "cache/store.h"

#include "cache/siphash.h"
#include "conf/config.h"
#include "conf/xmalloc.h"

#include <malloc.h>
#include <stdlib.h>
#include <string.h>

#define TABLE_MIN 4
/* Entries per bucket before the table doubles. 2 rather than Redis's 1: chains stay short
 * (the stored hash is compared before the key) and the bucket array costs half per key. */
#define TABLE_LOAD_MAX 2
#define REHASH_EMPTY_VISITS 10
/* glibc keeps one size_t before each chunk; charge it so used bytes match what is allocated. */
#define CHUNK_OVERHEAD sizeof(size_t)
/* Growth slack of a resized string, capped so a huge value does not double. */
#define STRING_SLACK_MAX (1024 * 1024)
/* Buckets of an ongoing rehash moved by each expire cycle (the cron's share of the work). */
#define CYCLE_REHASH_BUCKETS 1000

struct store_table {
    struct store_entry **b;
    size_t size; /* 0 or a power of two */
    size_t used;
};

/* One database: its table pair (t[1] only while rehashing) and counts. Tables are allocated on
 * the first insert, so an unused database costs only this struct. */
struct store_db {
    struct store_table t[2];
    long long rehash_idx;   /* -1: not rehashing; else the next t[0] bucket to move */
    size_t keys, volatile_keys;
    uint64_t expire_cursor; /* where the active expiry cycle goes on in this db */
};

/* The value area of an aggregate entry (unaligned inside data[]: read and written with memcpy). */
struct store_agg {
    void *value;
    size_t charged; /* what used bytes counts for the value; reversed exactly on removal */
};

struct store {
    const struct store_value_ops *ops[STORE_TYPE_COUNT];
    struct store_db *dbs;
    int ndb;
    struct store_entry *lru_head, *lru_tail;
    size_t count, volatile_count;
    uint64_t used, max_memory;
    int policy, samples;
    uint8_t seed[16];
    uint64_t rng;
    store_touch_fn *touch_fn;  /* WATCH's hook, or NULL */
    void *touch_ctx;
    int expire_db;          /* the db the active expiry cycle is in */
    int evict_db;           /* the db and cursor volatile sampling goes on from */
    uint64_t evict_cursor;
    struct store_stats stats;
};

/* ---- sizes and hashing ---- */

static uint64_t alloc_size(const void *p)
{
    return malloc_usable_size((void *)p) + CHUNK_OVERHEAD;
}

static uint32_t key_hash(const struct store *s, const char *key, size_t klen)
{
    uint64_t h = siphash13(key, klen, s->seed);
    return (uint32_t)(h ^ (h >> 32));
}

static uint64_t rng_next(struct store *s)
{
    uint64_t x = s->rng;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    s->rng = x;
    return x * 0x2545F4914F6CDD1Dull;
}

static bool rehashing(const struct store_db *d) { return d->rehash_idx >= 0; }

/* ---- LRU list ---- */

static void lru_unlink(struct store *s, struct store_entry *e)
{
    if (e->lru_prev)
        e->lru_prev->lru_next = e->lru_next;
    else
        s->lru_head = e->lru_next;
    if (e->lru_next)
        e->lru_next->lru_prev = e->lru_prev;
    else
        s->lru_tail = e->lru_prev;
    e->lru_prev = e->lru_next = NULL;
}

static void lru_push_head(struct store *s, struct store_entry *e)
{
    e->lru_prev = NULL;
    e->lru_next = s->lru_head;
    if (s->lru_head)
        s->lru_head->lru_prev = e;
    else
        s->lru_tail = e;
    s->lru_head = e;
}

static void lru_touch(struct store *s, struct store_entry *e)
{
    if (s->lru_head == e)
        return;
    lru_unlink(s, e);
    lru_push_head(s, e);
}

/* After e moved in memory (realloc), point its neighbours at the new address. */
static void lru_relink(struct store *s, struct store_entry *e)
{
    if (e->lru_prev)
        e->lru_prev->lru_next = e;
    else
        s->lru_head = e;
    if (e->lru_next)
        e->lru_next->lru_prev = e;
    else
        s->lru_tail = e;
}

/* ---- entries ---- */

static struct store_entry *entry_new(int db, const char *key, size_t klen, uint32_t h,
                                     size_t vlen)
{
    struct store_entry *e = xmalloc(sizeof(*e) + klen + vlen + 1);
    memset(e, 0, sizeof(*e));
    e->hash = h;
    e->klen = (uint32_t)klen;
    e->vlen = (uint32_t)vlen;
    e->db = (uint16_t)db;
    e->type = STORE_STRING;
    memcpy(e->data, key, klen);
    e->data[klen + vlen] = '\0';
    return e;
}

static struct store_agg agg_get(const struct store_entry *e)
{
    struct store_agg a;
    memcpy(&a, e->data + e->klen, sizeof(a));
    return a;
}

static void agg_put(struct store_entry *e, const struct store_agg *a)
{
    memcpy(e->data + e->klen, a, sizeof(*a));
}

/* Bytes charged for e: its allocation, plus an aggregate's value. */
static uint64_t entry_charge(const struct store_entry *e)
{
    uint64_t n = alloc_size(e);
    if (e->type != STORE_STRING)
        n += agg_get(e).charged;
    return n;
}

static void touch(const struct store *s, const struct store_entry *e)
{
    if (s->touch_fn)
        s->touch_fn(s->touch_ctx, e->db, e->data, e->klen);
}

static void count_add(struct store *s, struct store_entry *e)
{
    s->count++;
    s->dbs[e->db].keys++;
    if (e->expire_ms) {
        s->volatile_count++;
        s->dbs[e->db].volatile_keys++;
    }
    s->used += entry_charge(e);
}

static void count_remove(struct store *s, struct store_entry *e)
{
    s->count--;
    s->dbs[e->db].keys--;
    if (e->expire_ms) {
        s->volatile_count--;
        s->dbs[e->db].volatile_keys--;
    }
    s->used -= entry_charge(e);
}

static void expire_set(struct store *s, struct store_entry *e, int64_t ms)
{
    if (!e->expire_ms && ms) {
        s->volatile_count++;
        s->dbs[e->db].volatile_keys++;
    } else if (e->expire_ms && !ms) {
        s->volatile_count--;
        s->dbs[e->db].volatile_keys--;
    }
    e->expire_ms = ms;
}

/* ---- table ---- */

static void table_alloc(struct store *s, struct store_table *t, size_t size)
{
    t->b = xcalloc(size, sizeof(*t->b));
    t->size = size;
    t->used = 0;
    s->used += alloc_size(t->b);
}

static void table_release(struct store *s, struct store_table *t)
{
    if (t->b)
        s->used -= alloc_size(t->b);
    free(t->b);
    t->b = NULL;
    t->size = t->used = 0;
}

static size_t pow2_at_least(size_t n)
{
    size_t p = TABLE_MIN;
    while (p < n)
        p <<= 1;
    return p;
}

static void rehash_start(struct store *s, struct store_db *d, size_t size)
{
    table_alloc(s, &d->t[1], size);
    d->rehash_idx = 0;
}

/* Moves up to n buckets of t[0] into t[1]; finishes the rehash when t[0] is empty. */
static void rehash_step(struct store *s, struct store_db *d, int n)
{
    int empty_visits = n * REHASH_EMPTY_VISITS;
    struct store_table *t0 = &d->t[0], *t1 = &d->t[1];
    while (n-- > 0 && t0->used) {
        while (t0->b[d->rehash_idx] == NULL) {
            d->rehash_idx++;
            if (--empty_visits == 0)
                return;
        }
        struct store_entry *e = t0->b[d->rehash_idx];
        while (e) {
            struct store_entry *next = e->hnext;
            size_t idx = e->hash & (t1->size - 1);
            e->hnext = t1->b[idx];
            t1->b[idx] = e;
            t0->used--;
            t1->used++;
            e = next;
        }
        t0->b[d->rehash_idx++] = NULL;
    }
    if (t0->used == 0) {
        table_release(s, t0);
        *t0 = *t1;
        memset(t1, 0, sizeof(*t1));
        d->rehash_idx = -1;
    }
}

static void table_grow_if_needed(struct store *s, struct store_db *d)
{
    if (rehashing(d))
        return;
    if (d->t[0].size == 0)
        table_alloc(s, &d->t[0], TABLE_MIN);
    else if (d->t[0].used >= d->t[0].size * TABLE_LOAD_MAX)
        rehash_start(s, d, pow2_at_least(d->t[0].used));
}

static void table_shrink_if_sparse(struct store *s, struct store_db *d)
{
    if (rehashing(d) || d->t[0].size <= TABLE_MIN || d->t[0].used * 8 >= d->t[0].size)
        return;
    rehash_start(s, d, pow2_at_least(d->t[0].used));
}

/* The link that points at the entry matching key in d, or NULL; *ti gets its table. */
static struct store_entry **slot_find(struct store_db *d, const char *key, size_t klen,
                                      uint32_t h, int *ti)
{
    for (int i = 0; i <= 1; i++) {
        struct store_table *t = &d->t[i];
        if (t->size == 0)
            break;
        for (struct store_entry **pp = &t->b[h & (t->size - 1)]; *pp; pp = &(*pp)->hnext) {
            struct store_entry *e = *pp;
            if (e->hash == h && e->klen == klen && memcmp(e->data, key, klen) == 0) {
                *ti = i;
                return pp;
            }
        }
        if (!rehashing(d))
            break;
    }
    return NULL;
}

/* The link that points at entry e (which is in its db's table). */
static struct store_entry **slot_of(struct store *s, const struct store_entry *e, int *ti)
{
    struct store_db *d = &s->dbs[e->db];
    for (int i = 0; i <= 1; i++) {
        struct store_table *t = &d->t[i];
        if (t->size == 0)
            break;
        for (struct store_entry **pp = &t->b[e->hash & (t->size - 1)]; *pp; pp = &(*pp)->hnext) {
            if (*pp == e) {
                *ti = i;
                return pp;
            }
        }
    }
    abort(); /* an entry handed out by the store is always linked */
}

static void table_insert(struct store *s, struct store_entry *e)
{
    struct store_db *d = &s->dbs[e->db];
    table_grow_if_needed(s, d);
    struct store_table *t = rehashing(d) ? &d->t[1] : &d->t[0];
    size_t idx = e->hash & (t->size - 1);
    e->hnext = t->b[idx];
    t->b[idx] = e;
    t->used++;
    lru_push_head(s, e);
    count_add(s, e);
    touch(s, e);
}

static void entry_free(struct store *s, struct store_entry *e)
{
    if (e->type != STORE_STRING)
        s->ops[e->type]->free(agg_get(e).value);
    free(e);
}

/* Unlinks the entry *pp (in table ti) from the chain and the LRU, and frees it. */
static void unlink_at(struct store *s, struct store_entry **pp, int ti)
{
    struct store_entry *e = *pp;
    *pp = e->hnext;
    s->dbs[e->db].t[ti].used--;
    lru_unlink(s, e);
    count_remove(s, e);
    touch(s, e);
    entry_free(s, e);
}

/* ---- lifecycle ---- */

struct store *store_create(const struct store_options *opts)
{
    struct store *s = xcalloc(1, sizeof(*s));
    s->ndb = opts->databases > 0 ? opts->databases : 1;
    s->dbs = xcalloc((size_t)s->ndb, sizeof(*s->dbs));
    for (int i = 0; i < s->ndb; i++)
        s->dbs[i].rehash_idx = -1;
    s->max_memory = opts->max_memory;
    s->policy = opts->policy;
    s->samples = opts->samples > 0 ? opts->samples : 5;
    memcpy(s->seed, opts->seed, sizeof(s->seed));
    s->rng = siphash13("rng", 3, s->seed) | 1;
    return s;
}

void store_destroy(struct store *s)
{
    if (!s)
        return;
    s->touch_fn = NULL;
    store_flush(s, -1);
    free(s->dbs);
    free(s);
}

/* ---- lookups and writes ---- */

struct store_entry *store_find(struct store *s, int db, const char *key, size_t klen,
                               int64_t now_ms, unsigned flags)
{
    struct store_db *d = &s->dbs[db];
    if (rehashing(d))
        rehash_step(s, d, 1);
    int ti;
    uint32_t h = key_hash(s, key, klen);
    struct store_entry **pp = slot_find(d, key, klen, h, &ti);
    if (pp && store_entry_expired(*pp, now_ms)) {
        unlink_at(s, pp, ti);
        s->stats.expired++;
        pp = NULL;
    }
    if (!pp) {
        if (flags & STORE_READ)
            s->stats.misses++;
        return NULL;
    }
    if (flags & STORE_READ)
        s->stats.hits++;
    if (!(flags & STORE_NOTOUCH))
        lru_touch(s, *pp);
    return *pp;
}

static struct store_entry *string_install(struct store *s, struct store_entry **pp,
                                          struct store_entry *old, struct store_entry *e,
                                          int64_t expire_ms);

/* True when a string of vlen bytes fits e's allocation without wasting most of it. */
static bool string_fits_in_place(const struct store_entry *e, size_t vlen)
{
    size_t need = sizeof(*e) + e->klen + vlen + 1;
    size_t have = malloc_usable_size((void *)e);
    return e->type == STORE_STRING && need <= have && need * 2 >= have;
}

/* Where a string value for key goes in db (a rehash step first): the slot of its entry, or
 * NULL; *h is the key's hash. An expired entry there is counted, and with keep_ttl *expire_ms
 * becomes the live entry's TTL (none for an expired one). */
static struct store_entry **string_slot(struct store *s, int db, const char *key, size_t klen,
                                        uint32_t *h, bool keep_ttl, int64_t now_ms,
                                        int64_t *expire_ms)
{
    struct store_db *d = &s->dbs[db];
    if (rehashing(d))
        rehash_step(s, d, 1);
    int ti;
    *h = key_hash(s, key, klen);
    struct store_entry **pp = slot_find(d, key, klen, *h, &ti);
    struct store_entry *old = pp ? *pp : NULL;
    bool old_expired = old && store_entry_expired(old, now_ms);
    if (old_expired)
        s->stats.expired++;
    if (old && keep_ttl)
        *expire_ms = old_expired ? 0 : old->expire_ms;
    return pp;
}

struct store_entry *store_set_string(struct store *s, int db, const char *key, size_t klen,
                                     const char *val, size_t vlen, int64_t expire_ms,
                                     bool keep_ttl, int64_t now_ms)
{
    uint32_t h;
    struct store_entry **pp = string_slot(s, db, key, klen, &h, keep_ttl, now_ms, &expire_ms);
    struct store_entry *old = pp ? *pp : NULL;

    if (old && string_fits_in_place(old, vlen)) {
        memmove(store_string_mut(old), val, vlen);
        old->vlen = (uint32_t)vlen;
        old->data[old->klen + vlen] = '\0';
        expire_set(s, old, expire_ms);
        lru_touch(s, old);
        touch(s, old);
        return old;
    }
    struct store_entry *e = entry_new(db, key, klen, h, vlen);
    memcpy(store_string_mut(e), val, vlen);
    return string_install(s, pp, old, e, expire_ms);
}

struct store_entry *store_string_prepare(const char *key, size_t klen, size_t vlen, size_t spare)
{
    struct store_entry *e = xmalloc(sizeof(*e) + klen + vlen + (spare ? spare : 1));
    memset(e, 0, sizeof(*e));
    e->klen = (uint32_t)klen;
    e->vlen = (uint32_t)vlen;
    e->type = STORE_STRING;
    memcpy(e->data, key, klen);
    return e;
}

void store_string_discard(struct store_entry *e)
{
    free(e);
}

struct store_entry *store_set_string_entry(struct store *s, int db, struct store_entry *e,
                                           int64_t expire_ms, bool keep_ttl, int64_t now_ms)
{
    uint32_t h;
    struct store_entry **pp = string_slot(s, db, e->data, e->klen, &h, keep_ttl, now_ms,
                                          &expire_ms);
    struct store_entry *old = pp ? *pp : NULL;
    e->hash = h;
    e->db = (uint16_t)db;
    e->data[e->klen + e->vlen] = '\0';
    return string_install(s, pp, old, e, expire_ms);
}

/* Links the new string entry e (hash, db, key and value set) in place of old (the live or
 * expired entry *pp of the same key), or as a new key when old is NULL. */
static struct store_entry *string_install(struct store *s, struct store_entry **pp,
                                          struct store_entry *old, struct store_entry *e,
                                          int64_t expire_ms)
{
    e->expire_ms = expire_ms;
    if (old) {
        /* Same chain position, new allocation. */
        e->hnext = old->hnext;
        *pp = e;
        lru_unlink(s, old);
        count_remove(s, old);
        entry_free(s, old);
        lru_push_head(s, e);
        count_add(s, e);
        touch(s, e);
        return e;
    }
    table_insert(s, e);
    return e;
}

struct store_entry *store_string_resize(struct store *s, struct store_entry *e, size_t newlen)
{
    size_t oldlen = e->vlen;
    size_t need = sizeof(*e) + e->klen + newlen + 1;
    size_t have = malloc_usable_size(e);
    if (need > have || (newlen < oldlen && need * 4 < have)) {
        size_t slack = newlen > oldlen ? need : 0;
        if (slack > STRING_SLACK_MAX)
            slack = STRING_SLACK_MAX;
        int ti;
        struct store_entry **pp = slot_of(s, e, &ti);
        uint64_t before = alloc_size(e);
        struct store_entry *ne = xrealloc(e, need + slack);
        s->used = s->used - before + alloc_size(ne);
        *pp = ne;
        lru_relink(s, ne);
        e = ne;
    }
    if (newlen > oldlen)
        memset(store_string_mut(e) + oldlen, 0, newlen - oldlen);
    e->vlen = (uint32_t)newlen;
    e->data[e->klen + newlen] = '\0';
    touch(s, e);
    return e;
}

void store_set_expire(struct store *s, struct store_entry *e, int64_t expire_ms)
{
    expire_set(s, e, expire_ms);
    touch(s, e);
}

void store_set_touch_hook(struct store *s, store_touch_fn *fn, void *ctx)
{
    s->touch_fn = fn;
    s->touch_ctx = ctx;
}

bool store_delete(struct store *s, int db, const char *key, size_t klen, int64_t now_ms)
{
    int ti;
    uint32_t h = key_hash(s, key, klen);
    struct store_entry **pp = slot_find(&s->dbs[db], key, klen, h, &ti);
    if (!pp)
        return false;
    bool live = !store_entry_expired(*pp, now_ms);
    if (!live)
        s->stats.expired++;
    unlink_at(s, pp, ti);
    return live;
}

void store_delete_entry(struct store *s, struct store_entry *e)
{
    int ti;
    struct store_entry **pp = slot_of(s, e, &ti);
    unlink_at(s, pp, ti);
}

/* A new entry for (db, key) with e's value and TTL, inserted in place of what was there. An
 * aggregate value is shared with e when move is set (rename), deep-copied otherwise. */
static struct store_entry *entry_clone_to(struct store *s, const struct store_entry *e, int db,
                                          const char *key, size_t klen, int64_t now_ms,
                                          bool move)
{
    store_delete(s, db, key, klen, now_ms);
    struct store_entry *n = entry_new(db, key, klen, key_hash(s, key, klen), e->vlen);
    n->type = e->type;
    n->expire_ms = e->expire_ms;
    if (e->type == STORE_STRING) {
        memcpy(store_string_mut(n), store_string_ptr(e), e->vlen);
    } else {
        struct store_agg a = agg_get(e);
        if (!move) {
            a.value = s->ops[e->type]->dup(a.value);
            a.charged = s->ops[e->type]->bytes(a.value);
        }
        agg_put(n, &a);
    }
    table_insert(s, n);
    return n;
}

struct store_entry *store_rename(struct store *s, struct store_entry *e, int db,
                                 const char *key, size_t klen, int64_t now_ms)
{
    struct store_entry *n = entry_clone_to(s, e, db, key, klen, now_ms, true);
    if (e->type != STORE_STRING) {
        /* The value moved to n: drop e without freeing it. */
        int ti;
        struct store_entry **pp = slot_of(s, e, &ti);
        *pp = e->hnext;
        s->dbs[e->db].t[ti].used--;
        lru_unlink(s, e);
        count_remove(s, e);
        touch(s, e);
        free(e);
        return n;
    }
    store_delete_entry(s, e);
    return n;
}

struct store_entry *store_copy(struct store *s, const struct store_entry *e, int db,
                               const char *key, size_t klen, int64_t now_ms)
{
    return entry_clone_to(s, e, db, key, klen, now_ms, false);
}

/* ---- aggregates ---- */

void store_register_type(struct store *s, int type, const struct store_value_ops *ops)
{
    s->ops[type] = ops;
}

struct store_entry *store_add_value(struct store *s, int db, const char *key, size_t klen,
                                    int type, void *value, int64_t now_ms)
{
    store_delete(s, db, key, klen, now_ms);
    struct store_entry *e = entry_new(db, key, klen, key_hash(s, key, klen),
                                      sizeof(struct store_agg));
    e->type = (uint8_t)type;
    struct store_agg a = { value, s->ops[type]->bytes(value) };
    agg_put(e, &a);
    table_insert(s, e);
    return e;
}

void *store_value(const struct store_entry *e)
{
    return agg_get(e).value;
}

struct store_entry *store_value_changed(struct store *s, struct store_entry *e)
{
    const struct store_value_ops *ops = s->ops[e->type];
    struct store_agg a = agg_get(e);
    if (ops->len(a.value) == 0) {
        store_delete_entry(s, e);
        return NULL;
    }
    size_t now_bytes = ops->bytes(a.value);
    s->used = s->used - a.charged + now_bytes;
    a.charged = now_bytes;
    agg_put(e, &a);
    touch(s, e);
    return e;
}

/* ---- scanning ---- */

static uint64_t rev64(uint64_t v)
{
    v = ((v >> 1) & 0x5555555555555555ull) | ((v & 0x5555555555555555ull) << 1);
    v = ((v >> 2) & 0x3333333333333333ull) | ((v & 0x3333333333333333ull) << 2);
    v = ((v >> 4) & 0x0F0F0F0F0F0F0F0Full) | ((v & 0x0F0F0F0F0F0F0F0Full) << 4);
    v = ((v >> 8) & 0x00FF00FF00FF00FFull) | ((v & 0x00FF00FF00FF00FFull) << 8);
    v = ((v >> 16) & 0x0000FFFF0000FFFFull) | ((v & 0x0000FFFF0000FFFFull) << 16);
    return (v >> 32) | (v << 32);
}

static uint64_t cursor_next(uint64_t v, uint64_t mask)
{
    v |= ~mask;
    v = rev64(v);
    v++;
    return rev64(v);
}

/* Calls visit on every bucket of d the cursor names (Redis's dictScan); returns the next cursor. */
typedef void bucket_visit(struct store *s, struct store_db *d, int ti, size_t idx, void *ctx);

static uint64_t scan_buckets(struct store *s, struct store_db *d, uint64_t v, bucket_visit *visit,
                             void *ctx)
{
    if (d->t[0].size == 0)
        return 0;
    if (!rehashing(d)) {
        uint64_t m0 = d->t[0].size - 1;
        visit(s, d, 0, v & m0, ctx);
        return cursor_next(v, m0);
    }
    int small = d->t[0].size <= d->t[1].size ? 0 : 1, large = 1 - small;
    uint64_t m0 = d->t[small].size - 1, m1 = d->t[large].size - 1;
    visit(s, d, small, v & m0, ctx);
    do {
        visit(s, d, large, v & m1, ctx);
        v = cursor_next(v, m1);
    } while (v & (m0 ^ m1));
    return v;
}

struct scan_ctx {
    int64_t now_ms;
    void (*fn)(void *ctx, const struct store_entry *e);
    void *ctx;
};

static void scan_visit(struct store *s, struct store_db *d, int ti, size_t idx, void *arg)
{
    struct scan_ctx *sc = arg;
    (void)s;
    for (struct store_entry *e = d->t[ti].b[idx]; e; e = e->hnext)
        if (!store_entry_expired(e, sc->now_ms))
            sc->fn(sc->ctx, e);
}

uint64_t store_scan(struct store *s, int db, uint64_t cursor, int64_t now_ms,
                    void (*fn)(void *ctx, const struct store_entry *e), void *ctx)
{
    if (db < 0 || db >= s->ndb)
        return 0;
    struct scan_ctx sc = { now_ms, fn, ctx };
    return scan_buckets(s, &s->dbs[db], cursor, scan_visit, &sc);
}

/* ---- random picks ---- */

/* A uniformly random bucket's random entry of d, or NULL when the bucket drawn is empty. */
static struct store_entry *random_entry_in(struct store *s, struct store_db *d)
{
    if (d->keys == 0)
        return NULL;
    struct store_entry *head;
    if (rehashing(d)) {
        size_t base = (size_t)d->rehash_idx;
        size_t span = d->t[0].size + d->t[1].size - base;
        size_t h = base + rng_next(s) % span;
        head = h >= d->t[0].size ? d->t[1].b[h - d->t[0].size] : d->t[0].b[h];
    } else {
        head = d->t[0].b[rng_next(s) & (d->t[0].size - 1)];
    }
    size_t len = 0;
    for (struct store_entry *e = head; e; e = e->hnext)
        len++;
    if (len == 0)
        return NULL;
    size_t pick = rng_next(s) % len;
    while (pick--)
        head = head->hnext;
    return head;
}

struct first_live {
    const struct store_entry *found;
};

static void first_live_cb(void *ctx, const struct store_entry *e)
{
    struct first_live *f = ctx;
    if (!f->found)
        f->found = e;
}

struct store_entry *store_random(struct store *s, int db, int64_t now_ms)
{
    if (db < 0 || db >= s->ndb || s->dbs[db].keys == 0)
        return NULL;
    struct store_db *d = &s->dbs[db];
    for (int i = 0; i < STORE_SAMPLE_TRIES_MAX; i++) {
        struct store_entry *e = random_entry_in(s, d);
        if (e && !store_entry_expired(e, now_ms))
            return e;
    }
    /* Mostly expired keys: walk the db until a live one shows up (bounded by its size). */
    struct first_live f = { NULL };
    uint64_t cur = 0;
    do {
        cur = store_scan(s, db, cur, now_ms, first_live_cb, &f);
    } while (!f.found && cur != 0);
    return (struct store_entry *)f.found;
}

/* ---- eviction ---- */

struct volatile_pick {
    bool nearest_ttl;
    int wanted, found;
    struct store_entry *best;
};

static void volatile_visit(struct store *s, struct store_db *d, int ti, size_t idx, void *arg)
{
    struct volatile_pick *vp = arg;
    (void)s;
    for (struct store_entry *e = d->t[ti].b[idx]; e && vp->found < vp->wanted; e = e->hnext) {
        if (!e->expire_ms)
            continue;
        vp->found++;
        if (!vp->best || (vp->nearest_ttl && e->expire_ms < vp->best->expire_ms))
            vp->best = e;
    }
}

static void evict_next_db(struct store *s)
{
    s->evict_db = (s->evict_db + 1) % s->ndb;
    s->evict_cursor = 0;
}

/* Up to `samples` keys with a TTL, taken round-robin from a persistent position (database and
 * cursor), so a rare volatile key among many persistent ones is still found: at worst one walk
 * over every database. Returns the one expiring first (nearest_ttl) or the first found. */
static struct store_entry *sample_volatile(struct store *s, bool nearest_ttl)
{
    struct volatile_pick vp = { nearest_ttl, nearest_ttl ? s->samples : 1, 0, NULL };
    for (int dbs_done = 0; dbs_done <= s->ndb && vp.found < vp.wanted;) {
        struct store_db *d = &s->dbs[s->evict_db];
        if (d->volatile_keys == 0) {
            evict_next_db(s);
            dbs_done++;
            continue;
        }
        s->evict_cursor = scan_buckets(s, d, s->evict_cursor, volatile_visit, &vp);
        if (s->evict_cursor == 0) {
            evict_next_db(s);
            dbs_done++;
        }
    }
    return vp.best;
}

/* A random entry of a random database, databases weighted by their key counts. */
static struct store_entry *random_entry_any(struct store *s)
{
    if (s->count == 0)
        return NULL;
    size_t r = rng_next(s) % s->count;
    int db = 0;
    while (r >= s->dbs[db].keys) {
        r -= s->dbs[db].keys;
        db++;
    }
    for (int i = 0; i < STORE_SAMPLE_TRIES_MAX; i++) {
        struct store_entry *e = random_entry_in(s, &s->dbs[db]);
        if (e)
            return e;
    }
    return s->lru_tail;
}

static struct store_entry *pick_victim(struct store *s)
{
    switch (s->policy) {
    case POLICY_ALLKEYS_LRU:
        return s->lru_tail;
    case POLICY_VOLATILE_LRU: {
        struct store_entry *e = s->lru_tail;
        for (int i = 0; e && i < STORE_EVICT_WALK_MAX; i++, e = e->lru_prev)
            if (e->expire_ms)
                return e;
        return s->volatile_count ? sample_volatile(s, false) : NULL;
    }
    case POLICY_ALLKEYS_RANDOM:
        return random_entry_any(s);
    case POLICY_VOLATILE_TTL:
        return s->volatile_count ? sample_volatile(s, true) : NULL;
    default:
        return NULL;
    }
}

bool store_over_budget(const struct store *s)
{
    return s->max_memory && s->used > s->max_memory;
}

int store_evict(struct store *s, int64_t now_ms)
{
    size_t guard = s->count + 1;
    while (store_over_budget(s)) {
        struct store_entry *e = guard-- ? pick_victim(s) : NULL;
        if (!e)
            return -1;
        if (store_entry_expired(e, now_ms))
            s->stats.expired++;
        else
            s->stats.evicted++;
        store_delete_entry(s, e);
    }
    return 0;
}

/* ---- active expiry ---- */

struct expire_ctx {
    int64_t now_ms;
    size_t visited, deleted, buckets;
};

static void expire_visit(struct store *s, struct store_db *d, int ti, size_t idx, void *arg)
{
    struct expire_ctx *x = arg;
    struct store_entry **pp = &d->t[ti].b[idx];
    x->buckets++;
    while (*pp) {
        x->visited++;
        if (store_entry_expired(*pp, x->now_ms)) {
            unlink_at(s, pp, ti);
            x->deleted++;
        } else {
            pp = &(*pp)->hnext;
        }
    }
}

/* The cron's share of table maintenance: advance rehashes, start shrinking sparse tables. */
static void tables_maintain(struct store *s)
{
    for (int i = 0; i < s->ndb; i++) {
        struct store_db *d = &s->dbs[i];
        if (rehashing(d))
            rehash_step(s, d, CYCLE_REHASH_BUCKETS);
        else
            table_shrink_if_sparse(s, d);
    }
}

size_t store_expire_cycle(struct store *s, int64_t now_ms, size_t max_visits, size_t *visited)
{
    struct expire_ctx x = { now_ms, 0, 0, 0 };
    tables_maintain(s);
    /* Bounded by entries looked at, and by buckets so a sparse table (or one step over a
     * table being shrunk, which covers many buckets) cannot make a cycle long. Databases are
     * walked round-robin; a db whose walk completes hands over to the next. */
    size_t bucket_budget = max_visits * 4 + 16;
    for (int n = 0; n < s->ndb && s->volatile_count; n++) {
        struct store_db *d = &s->dbs[s->expire_db];
        bool complete = true;
        while (d->volatile_keys) {
            if (x.visited >= max_visits || x.buckets >= bucket_budget) {
                complete = false;
                break;
            }
            d->expire_cursor = scan_buckets(s, d, d->expire_cursor, expire_visit, &x);
            if (d->expire_cursor == 0)
                break;
        }
        if (!complete)
            break;
        s->expire_db = (s->expire_db + 1) % s->ndb;
    }
    s->stats.expired += x.deleted;
    if (visited)
        *visited = x.visited;
    return x.deleted;
}

/* ---- flush, counters, settings ---- */

static void db_release(struct store *s, struct store_db *d)
{
    table_release(s, &d->t[0]);
    table_release(s, &d->t[1]);
    d->rehash_idx = -1;
    d->expire_cursor = 0;
}

void store_flush(struct store *s, int db)
{
    if (s->touch_fn)
        s->touch_fn(s->touch_ctx, db, NULL, 0);
    if (db < 0 || s->dbs[db].keys == s->count) {
        struct store_entry *e = s->lru_head;
        while (e) {
            struct store_entry *next = e->lru_next;
            count_remove(s, e);
            entry_free(s, e);
            e = next;
        }
        s->lru_head = s->lru_tail = NULL;
        for (int i = 0; i < s->ndb; i++)
            db_release(s, &s->dbs[i]);
        s->evict_cursor = 0;
        return;
    }
    struct store_db *d = &s->dbs[db];
    for (int ti = 0; ti <= 1; ti++) {
        struct store_table *t = &d->t[ti];
        for (size_t i = 0; i < t->size; i++)
            while (t->b[i])
                unlink_at(s, &t->b[i], ti);
    }
    db_release(s, d);
    if (s->evict_db == db)
        s->evict_cursor = 0;
}

size_t store_count(const struct store *s, int db)
{
    if (db < 0)
        return s->count;
    return db < s->ndb ? s->dbs[db].keys : 0;
}

size_t store_volatile_count(const struct store *s, int db)
{
    if (db < 0)
        return s->volatile_count;
    return db < s->ndb ? s->dbs[db].volatile_keys : 0;
}

uint64_t store_used_bytes(const struct store *s) { return s->used; }
const struct store_stats *store_get_stats(const struct store *s) { return &s->stats; }
void store_reset_stats(struct store *s) { memset(&s->stats, 0, sizeof(s->stats)); }
int store_databases(const struct store *s) { return s->ndb; }
const uint8_t *store_seed(const struct store *s) { return s->seed; }
void store_set_max_memory(struct store *s, uint64_t bytes) { s->max_memory = bytes; }
uint64_t store_max_memory(const struct store *s) { return s->max_memory; }

void store_set_policy(struct store *s, int policy, int samples)
{
    s->policy = policy;
    if (samples > 0)
        s->samples = samples;
}
