/* The helpers the store's unit suites share (test_store.c, test_store_table.c). Header-only, of
 * static inline functions: the Makefile links each tests/unit/test_*.c alone into its own binary.
 * Injected time (NOW), Check assertions that only call into Check when they fail (FAST_*), a
 * store with fixed options (mk), entries by C string (put, peek, assert_*), byte accounting
 * bounds, a xorshift generator and key names. */
#ifndef TESTS_UNIT_STORE_FIXTURE_H
#define TESTS_UNIT_STORE_FIXTURE_H

#include "cache/store.h"
#include "conf/config.h"

#include <check.h>
#include <malloc.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* An arbitrary "now" (unix ms); every test drives time from here. */
#define NOW 1700000000000LL
/* cache/store.c's TABLE_MIN: the bucket count of a fresh or fully shrunk table. */
#define TABLE_MIN_BUCKETS 4
/* Bound of every cursor walk in these tests. */
#define WALK_STEPS_MAX (1u << 24)

/* Check's ck_assert_* record their location on every call (a write to the runner each time),
 * which dominates loops of many thousands of checks, above all under valgrind. These call into
 * Check only when the condition fails. */
#define FAST_MSG(cond, ...)                                                                        \
    do {                                                                                           \
        if (!(cond))                                                                               \
            ck_abort_msg(__VA_ARGS__);                                                             \
    } while (0)
#define FAST(cond) FAST_MSG(cond, "Assertion '%s' failed", #cond)
#define FAST_EQ(a, b)                                                                              \
    do {                                                                                           \
        unsigned long long a_ = (unsigned long long)(a), b_ = (unsigned long long)(b);             \
        if (a_ != b_)                                                                              \
            ck_abort_msg("Assertion '%s == %s' failed: %llu != %llu", #a, #b, a_, b_);             \
    } while (0)

/* ---- helpers ---- */

static inline struct store *mk(uint64_t max_memory, int policy, int samples, int databases)
{
    struct store_options o;
    memset(&o, 0, sizeof(o));
    o.max_memory = max_memory;
    o.policy = policy;
    o.samples = samples;
    o.databases = databases;
    for (int i = 0; i < 16; i++)
        o.seed[i] = (uint8_t)(0xA5 ^ (i * 37));
    struct store *s = store_create(&o);
    ck_assert_ptr_nonnull(s);
    return s;
}

static inline uint64_t entry_bytes(const struct store_entry *e)
{
    return malloc_usable_size((void *)e) + sizeof(size_t);
}

/* What an allocation of n bytes may be charged (usable size + the chunk header): glibc rounds
 * up to 16 and may hand out a whole free chunk up to one minimum chunk larger than needed, so
 * the exact figure depends on the heap's history; sanitizers report exactly n. */
static inline bool charge_plausible(uint64_t charged, size_t n)
{
    return charged >= n + sizeof(size_t) && charged <= n + sizeof(size_t) + 48;
}

/* True when t is what one bucket array (or two, while rehashing) of 4 .. 8192 buckets may be
 * charged (below glibc's mmap threshold, where the window above holds). The exact check of
 * the accounting is elsewhere: store_flush(-1) must bring it back to 0. */
#define TB_LOG_MAX 13
static inline bool is_table_bytes(uint64_t t)
{
    const size_t p = sizeof(struct store_entry *);
    for (int j = 2; j <= TB_LOG_MAX; j++) {
        if (charge_plausible(t, p << j))
            return true;
        for (int k = 2; k <= TB_LOG_MAX; k++)
            if (t > 2 * sizeof(size_t) && charge_plausible(t - sizeof(size_t), (p << j) + (p << k)))
                return true;
    }
    return false;
}

static inline struct store_entry *put(struct store *s, int db, const char *k, const char *v,
                               int64_t expire_ms, int64_t now)
{
    return store_set_string(s, db, k, strlen(k), v, strlen(v), expire_ms, false, now);
}

/* A lookup that neither touches the LRU nor counts a hit or a miss. */
static inline struct store_entry *peek(struct store *s, int db, const char *k, int64_t now)
{
    return store_find(s, db, k, strlen(k), now, STORE_NOTOUCH);
}

static inline void assert_value(const struct store_entry *e, const void *v, size_t vlen)
{
    ck_assert_ptr_nonnull(e);
    ck_assert_uint_eq(e->type, STORE_STRING);
    ck_assert_uint_eq(store_string_len(e), vlen);
    if (vlen)
        ck_assert_mem_eq(store_string_ptr(e), v, vlen);
    ck_assert_int_eq(store_string_ptr(e)[vlen], '\0');
}

static inline void assert_key(const struct store_entry *e, int db, const void *k, size_t klen)
{
    ck_assert_ptr_nonnull(e);
    ck_assert_int_eq(e->db, db);
    ck_assert_uint_eq(store_entry_klen(e), klen);
    if (klen)
        ck_assert_mem_eq(store_entry_key(e), k, klen);
}

static inline void assert_str(const struct store_entry *e, const char *v)
{
    assert_value(e, v, strlen(v));
}

static inline uint64_t xs_next(uint64_t *x)
{
    *x ^= *x >> 12;
    *x ^= *x << 25;
    *x ^= *x >> 27;
    return *x * 0x2545F4914F6CDD1Dull;
}

/* Keys "<prefix><3 digits>" (all of one length for a given prefix). */
static inline const char *keyn(char *buf, const char *prefix, int i)
{
    snprintf(buf, 32, "%s%03d", prefix, i);
    return buf;
}

#define VAL32 "vvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvv"

/* Lowers the budget to one byte under current use and evicts: exactly one entry (the victim)
 * must go. Returns which of the n keys "<prefix>NNN" in db disappeared; alive[] is updated. */
static inline int evict_one(struct store *s, int db, const char *prefix, int n, bool *alive,
                             int64_t now)
{
    const struct store_stats *st = store_get_stats(s);
    uint64_t evicted = st->evicted;
    size_t count = store_count(s, -1);
    store_set_max_memory(s, store_used_bytes(s) - 1);
    FAST(store_over_budget(s));
    FAST_EQ(store_evict(s, now), 0);
    FAST(!store_over_budget(s));
    FAST_EQ(store_count(s, -1), count - 1);
    FAST_EQ(st->evicted, evicted + 1);
    store_set_max_memory(s, 0);
    int gone = -1;
    char k[32];
    for (int i = 0; i < n; i++) {
        if (!alive[i])
            continue;
        if (!peek(s, db, keyn(k, prefix, i), now)) {
            FAST_MSG(gone == -1, "two keys went: %d and %d", gone, i);
            gone = i;
        }
    }
    FAST_MSG(gone >= 0, "the evicted entry was not one of the keys");
    alive[gone] = false;
    return gone;
}

/* ---- basic: set, find, delete, replace, binary, databases, counts ---- */

#endif
