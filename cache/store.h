/* The store: every key the sidecar holds, in one seeded hash table per database with
 * incremental rehash, one exact intrusive LRU list across databases and one byte budget.
 * Pure data structure: time comes in as now_ms, no clock, socket, libev or RESP here.
 *
 * Invariants:
 *  - an entry is one allocation: header, key bytes, then the value (a string value is stored
 *    inline followed by a NUL; an aggregate keeps its pointer and the bytes it was charged);
 *  - every entry is in exactly one bucket chain and in the LRU list (head = most recent);
 *  - used bytes = the real allocation size (malloc_usable_size + the allocator's chunk header)
 *    of every entry and bucket array; eviction keeps it <= max_memory when a write asks;
 *  - an entry whose expire_ms is set and < now_ms is logically gone: lookups delete it.
 * Entry pointers returned by the store stay valid until the next call that may modify the store
 * (set, delete, resize, rename, evict, expire cycle, flush). store_find() is the exception that
 * keeps them: it can only free the entry of the key it was asked for (when that one expired);
 * the rehash step it runs moves entries between buckets without reallocating them. */
#ifndef CACHE_STORE_H
#define CACHE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum store_type {
    STORE_STRING = 0,
    STORE_HASH,
    STORE_LIST,
    STORE_SET,
    STORE_ZSET,
    STORE_REPLIES, /* near-cache: a key's cached upstream replies (cache/replyset.h) */
    STORE_TYPE_COUNT,
};

/* What the store needs to know about an aggregate value type (hash, list, set, sorted set):
 * registered once per type with store_register_type(). */
struct store_value_ops {
    void (*free)(void *value);
    void *(*dup)(const void *value);      /* a deep copy (COPY) */
    size_t (*bytes)(const void *value);   /* bytes really allocated for it (malloc_usable_size) */
    size_t (*len)(const void *value);     /* elements; an empty aggregate is deleted */
};

/* Lookup flags. */
#define STORE_READ 1u     /* count a keyspace hit or miss */
#define STORE_NOTOUCH 2u  /* do not move the entry to the LRU head */

/* Loops that walk the LRU or sample the table stop after this many entries. */
#define STORE_EVICT_WALK_MAX 1024
#define STORE_SAMPLE_TRIES_MAX 4096
/* Largest string value (Redis's 512 MB). */
#define STORE_STRING_MAX (512ull * 1024 * 1024)

struct store_entry {
    struct store_entry *hnext;    /* next in the bucket chain */
    struct store_entry *lru_prev; /* towards the head (more recently used) */
    struct store_entry *lru_next; /* towards the tail (less recently used) */
    int64_t expire_ms;            /* absolute unix ms; 0 = no TTL */
    uint32_t hash;                /* seeded hash of the key */
    uint32_t klen;
    uint32_t vlen;                /* string value length */
    uint16_t db;
    uint8_t type;                 /* enum store_type */
    uint8_t flags;
    char data[];                  /* key bytes, then the value */
};

struct store_options {
    uint64_t max_memory;   /* bytes; 0 = unbounded */
    int policy;            /* enum maxmemory_policy (conf/config.h) */
    int samples;           /* keys sampled by the random and volatile-ttl policies */
    int databases;         /* 1..1024 */
    uint8_t seed[16];      /* hash seed: random per process */
};

struct store_stats {
    uint64_t hits, misses;  /* STORE_READ lookups */
    uint64_t expired;       /* keys removed because their TTL passed (lazy or active) */
    uint64_t evicted;       /* keys removed to honour max_memory */
};

struct store;

struct store *store_create(const struct store_options *opts);
void store_destroy(struct store *s);

/* Accessors. */
static inline const char *store_entry_key(const struct store_entry *e) { return e->data; }
static inline size_t store_entry_klen(const struct store_entry *e) { return e->klen; }
static inline const char *store_string_ptr(const struct store_entry *e) { return e->data + e->klen; }
static inline char *store_string_mut(struct store_entry *e) { return e->data + e->klen; }
static inline size_t store_string_len(const struct store_entry *e) { return e->vlen; }
static inline bool store_entry_expired(const struct store_entry *e, int64_t now_ms)
{
    return e->expire_ms != 0 && now_ms > e->expire_ms;
}

/* Aggregates. The value belongs to the store once added; after changing it in place, call
 * store_value_changed() so its bytes are charged (and an emptied aggregate is deleted). */
void store_register_type(struct store *s, int type, const struct store_value_ops *ops);
/* Adds key as a new aggregate of the given type (the caller found no live key there). */
struct store_entry *store_add_value(struct store *s, int db, const char *key, size_t klen,
                                    int type, void *value, int64_t now_ms);
void *store_value(const struct store_entry *e);
/* Re-charges e's value; deletes the key (returns NULL) when the aggregate is now empty. */
struct store_entry *store_value_changed(struct store *s, struct store_entry *e);

/* Called after a key is created, changed (value or TTL), or removed for any reason (DEL,
 * expiry, eviction), with its db and name; after a flush with key NULL (db < 0: every db).
 * WATCH sets it; NULL (the default) costs nothing. fn must not modify the store. */
typedef void store_touch_fn(void *ctx, int db, const char *key, size_t klen);
void store_set_touch_hook(struct store *s, store_touch_fn *fn, void *ctx);

/* The live entry for key in db, or NULL. An expired entry is deleted and counted. */
struct store_entry *store_find(struct store *s, int db, const char *key, size_t klen,
                               int64_t now_ms, unsigned flags);

/* Inserts or replaces key with a string value (any previous type is dropped). expire_ms is
 * absolute (0 = none); keep_ttl keeps the TTL of a previous live entry instead. The entry
 * becomes the most recently used. Returns it (owned by the store). */
struct store_entry *store_set_string(struct store *s, int db, const char *key, size_t klen,
                                     const char *val, size_t vlen, int64_t expire_ms,
                                     bool keep_ttl, int64_t now_ms);

/* A string value read straight into its final allocation (a large SET argument, client.c):
 * store_string_prepare() allocates an entry that is in no table yet, holding key and room for
 * vlen value bytes (store_string_mut) plus spare bytes after them (at least the NUL's);
 * store_set_string_entry() then installs it as store_set_string() would with a copy (the NUL
 * is written then), and owns it; one never installed is freed with store_string_discard(). */
struct store_entry *store_string_prepare(const char *key, size_t klen, size_t vlen, size_t spare);
struct store_entry *store_set_string_entry(struct store *s, int db, struct store_entry *e,
                                           int64_t expire_ms, bool keep_ttl, int64_t now_ms);
void store_string_discard(struct store_entry *e);

/* Makes string entry e hold newlen bytes (contents kept, new bytes zeroed, NUL after), growing
 * with slack so repeated APPENDs stay linear. The entry may move: use the returned pointer. */
struct store_entry *store_string_resize(struct store *s, struct store_entry *e, size_t newlen);

/* Sets (expire_ms > 0) or removes (0) the TTL of e. */
void store_set_expire(struct store *s, struct store_entry *e, int64_t expire_ms);

/* Deletes a live key; false when it did not exist (or had just expired). */
bool store_delete(struct store *s, int db, const char *key, size_t klen, int64_t now_ms);
void store_delete_entry(struct store *s, struct store_entry *e);

/* Moves e to (db, key) keeping value and TTL, replacing what was there. Returns the moved
 * entry; e is gone. The caller has checked that source and destination differ. */
struct store_entry *store_rename(struct store *s, struct store_entry *e, int db,
                                 const char *key, size_t klen, int64_t now_ms);
/* Copies e's value and TTL to (db, key), replacing what was there. Returns the new entry. */
struct store_entry *store_copy(struct store *s, const struct store_entry *e, int db,
                               const char *key, size_t klen, int64_t now_ms);

/* One step of a SCAN over database db: calls fn on each entry of the bucket(s) the cursor names
 * (expired entries are skipped, nothing is deleted) and returns the next cursor, 0 when the
 * walk is complete. Every key present for the whole walk is seen at least once, also when the
 * table grows or shrinks between steps (Redis's reverse-binary cursor); a table that does not
 * change gives every key exactly once. fn must not modify the store. */
uint64_t store_scan(struct store *s, int db, uint64_t cursor, int64_t now_ms,
                    void (*fn)(void *ctx, const struct store_entry *e), void *ctx);

/* A random live entry of db, or NULL when db is empty. */
struct store_entry *store_random(struct store *s, int db, int64_t now_ms);

/* Active expiry: visits up to max_visits entries from a persistent cursor, deleting the expired
 * ones. Returns how many were deleted; *visited (if non-NULL) gets how many were looked at. */
size_t store_expire_cycle(struct store *s, int64_t now_ms, size_t max_visits, size_t *visited);

/* Evicts by the policy until used <= max_memory. 0 when within budget (or unbounded), -1 when
 * the budget cannot be met (noeviction, or no candidate for a volatile policy). */
int store_evict(struct store *s, int64_t now_ms);
/* True when max_memory is set and used bytes exceed it. */
bool store_over_budget(const struct store *s);

/* Removes every key of db, or of every database when db < 0. */
void store_flush(struct store *s, int db);

size_t store_count(const struct store *s, int db);          /* db < 0: all databases */
size_t store_volatile_count(const struct store *s, int db); /* keys with a TTL */
uint64_t store_used_bytes(const struct store *s);
const struct store_stats *store_get_stats(const struct store *s);
void store_reset_stats(struct store *s);
int store_databases(const struct store *s);
/* The process's secret hash seed (16 bytes), for the aggregate types' own tables. */
const uint8_t *store_seed(const struct store *s);

void store_set_max_memory(struct store *s, uint64_t bytes);
uint64_t store_max_memory(const struct store *s);
void store_set_policy(struct store *s, int policy, int samples);

#endif
