/* Unit tests for cache/store.c's table as a whole, with injected time (entries, TTL, eviction
 * and accounting are in test_store.c): string resize, rename and copy, SCAN over a growing and
 * a shrinking table, random keys, flush, and a randomized comparison with a reference model. */
#include "store_fixture.h"

/* ---- string resize ---- */

START_TEST(test_resize_grow_shrink)
{
    struct store *s = mk(0, POLICY_ALLKEYS_LRU, 5, 16);
    struct store_entry *e = put(s, 4, "r", "abc", NOW + 777, NOW);
    put(s, 4, "other", "x", 0, NOW);
    const uint64_t t = store_used_bytes(s) - entry_bytes(e) - entry_bytes(peek(s, 4, "other", NOW));
    FAST(is_table_bytes(t));

    /* Grow: content kept, zero fill, NUL after, TTL kept, findable at the returned address. */
    e = store_string_resize(s, e, 10000);
    FAST_EQ(store_string_len(e), 10000);
    FAST(memcmp(store_string_ptr(e), "abc", 3) == 0);
    for (size_t i = 3; i < 10000; i++)
        FAST_EQ(store_string_ptr(e)[i], 0);
    FAST_EQ(store_string_ptr(e)[10000], 0);
    FAST_EQ(e->expire_ms, NOW + 777);
    assert_key(e, 4, "r", 1);
    FAST_EQ(peek(s, 4, "r", NOW), e);
    FAST_EQ(store_volatile_count(s, 4), 1);
    FAST_EQ(store_count(s, 4), 2);
    uint64_t eb = entry_bytes(e);
    FAST(eb >= sizeof(struct store_entry) + 1 + 10000 + 1);
    FAST_EQ(store_used_bytes(s), t + eb + entry_bytes(peek(s, 4, "other", NOW)));

    /* Write into the grown value, then shrink: prefix kept, NUL placed, accounting exact. */
    memset(store_string_mut(e) + 3, 'z', 9997);
    struct store_entry *sh = store_string_resize(s, e, 5);
    assert_value(sh, "abczz", 5);
    FAST_EQ(sh->expire_ms, NOW + 777);
    FAST_EQ(peek(s, 4, "r", NOW), sh);
    FAST_EQ(store_used_bytes(s), t + entry_bytes(sh) + entry_bytes(peek(s, 4, "other", NOW)));
    /* Grow again within what is allocated: the old bytes past the end read as zeros. */
    sh = store_string_resize(s, sh, 8);
    assert_value(sh, "abczz\0\0\0", 8);
    FAST_EQ(store_used_bytes(s), t + entry_bytes(sh) + entry_bytes(peek(s, 4, "other", NOW)));
    /* To zero and back. */
    sh = store_string_resize(s, sh, 0);
    assert_value(sh, "", 0);
    sh = store_string_resize(s, sh, 2);
    assert_value(sh, "\0\0", 2);

    /* Repeated one-byte appends (APPEND's pattern) grow with slack: the allocation changes a
     * logarithmic number of times, not every few bytes; each change is charged exactly. */
    struct store_entry *ap = put(s, 0, "ap", "", 0, NOW);
    int grows = 0;
    for (size_t len = 1; len <= 20000; len++) {
        uint64_t used = store_used_bytes(s), before = entry_bytes(ap);
        struct store_entry *n = store_string_resize(s, ap, len);
        if (entry_bytes(n) != before)
            grows++;
        FAST_EQ(store_used_bytes(s), used - before + entry_bytes(n));
        ap = n;
        store_string_mut(ap)[len - 1] = (char)('a' + len % 26);
    }
    FAST_MSG(grows < 40, "%d reallocations for 20000 one-byte appends", grows);
    FAST(grows > 3);
    for (size_t len = 0; len < 20000; len++)
        FAST_EQ(store_string_ptr(ap)[len], (char)('a' + (len + 1) % 26));
    FAST_EQ(peek(s, 0, "ap", NOW), ap);
    store_delete_entry(s, ap);
    store_delete_entry(s, peek(s, 4, "r", NOW));
    store_delete_entry(s, peek(s, 4, "other", NOW));
    FAST_EQ(store_count(s, -1), 0);
    FAST(is_table_bytes(store_used_bytes(s)));
    store_flush(s, -1); /* every byte charged by the resizes was given back */
    FAST_EQ(store_used_bytes(s), 0);
    store_destroy(s);
}
END_TEST

START_TEST(test_resize_keeps_lru_and_chains)
{
    enum { N = 200 };
    struct store *s = mk(0, POLICY_ALLKEYS_LRU, 5, 16);
    char k[32];
    for (int i = 0; i < N; i++)
        put(s, 0, keyn(k, "key", i), VAL32, 0, NOW);
    /* Resize every key (tail, head and the middle; chains of all positions) several times. */
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < N; i++) {
            struct store_entry *e = peek(s, 0, keyn(k, "key", i), NOW);
            FAST(e != NULL);
            size_t len = 32 + (size_t)(i * 37 + round * 1000) % 3000;
            struct store_entry *n = store_string_resize(s, e, len);
            FAST_EQ(peek(s, 0, k, NOW), n);
            FAST_EQ(store_string_len(n), len);
            FAST(memcmp(store_string_ptr(n), VAL32, 32) == 0);
        }
    }
    FAST_EQ(store_count(s, -1), N);
    uint64_t sum = 0;
    for (int i = 0; i < N; i++)
        sum += entry_bytes(peek(s, 0, keyn(k, "key", i), NOW));
    FAST(is_table_bytes(store_used_bytes(s) - sum));
    /* The LRU list still runs oldest to newest: eviction order is insertion order. */
    bool alive[N];
    for (int i = 0; i < N; i++)
        alive[i] = true;
    for (int i = 0; i < N; i++)
        FAST_EQ(evict_one(s, 0, "key", N, alive, NOW), i);
    FAST_EQ(store_count(s, -1), 0);
    store_flush(s, -1);
    FAST_EQ(store_used_bytes(s), 0);
    store_destroy(s);
}
END_TEST

START_TEST(test_resize_head_and_tail_then_evict)
{
    struct store *s = mk(0, POLICY_ALLKEYS_LRU, 5, 16);
    char k[32];
    for (int i = 0; i < 5; i++)
        put(s, 0, keyn(k, "key", i), VAL32, 0, NOW);
    /* Tail (0), middle (2) and head (4) move in memory; the neighbours must follow. */
    static const int which[3] = { 0, 2, 4 };
    for (int j = 0; j < 3; j++) {
        struct store_entry *e = peek(s, 0, keyn(k, "key", which[j]), NOW);
        struct store_entry *n = store_string_resize(s, e, 50000);
        ck_assert_ptr_eq(peek(s, 0, k, NOW), n);
    }
    /* A new key goes in front of the resized head. */
    put(s, 0, "key005", VAL32, 0, NOW);
    bool alive[6] = { true, true, true, true, true, true };
    for (int i = 0; i < 6; i++)
        ck_assert_int_eq(evict_one(s, 0, "key", 6, alive, NOW), i);
    store_destroy(s);
}
END_TEST

/* ---- rename and copy ---- */

START_TEST(test_rename)
{
    struct store *s = mk(0, POLICY_ALLKEYS_LRU, 5, 16);
    const struct store_stats *st = store_get_stats(s);
    struct store_entry *e = put(s, 0, "src", "value-1", NOW + 500, NOW);
    struct store_entry *n = store_rename(s, e, 0, "dst", 3, NOW);
    assert_key(n, 0, "dst", 3);
    assert_str(n, "value-1");
    ck_assert_int_eq(n->expire_ms, NOW + 500);
    ck_assert_ptr_null(peek(s, 0, "src", NOW));
    ck_assert_ptr_eq(peek(s, 0, "dst", NOW), n);
    ck_assert_uint_eq(store_count(s, 0), 1);
    ck_assert_uint_eq(store_volatile_count(s, 0), 1);

    /* Over an existing persistent destination: replaced, and the TTL comes along. */
    put(s, 0, "old", "previous", 0, NOW);
    n = store_rename(s, n, 0, "old", 3, NOW);
    assert_str(n, "value-1");
    ck_assert_int_eq(n->expire_ms, NOW + 500);
    ck_assert_uint_eq(store_count(s, 0), 1);
    ck_assert_uint_eq(store_volatile_count(s, 0), 1);
    ck_assert_ptr_null(peek(s, 0, "dst", NOW));

    /* A persistent source over a volatile destination: the destination becomes persistent. */
    put(s, 0, "p", "persist", 0, NOW);
    n = store_rename(s, peek(s, 0, "p", NOW), 0, "old", 3, NOW);
    assert_str(n, "persist");
    ck_assert_int_eq(n->expire_ms, 0);
    ck_assert_uint_eq(store_count(s, 0), 1);
    ck_assert_uint_eq(store_volatile_count(s, 0), 0);
    ck_assert_uint_eq(store_volatile_count(s, -1), 0);

    /* Across databases, same name. */
    n = store_rename(s, n, 7, "old", 3, NOW);
    assert_key(n, 7, "old", 3);
    assert_str(n, "persist");
    ck_assert_ptr_null(peek(s, 0, "old", NOW));
    ck_assert_ptr_eq(peek(s, 7, "old", NOW), n);
    ck_assert_uint_eq(store_count(s, 0), 0);
    ck_assert_uint_eq(store_count(s, 7), 1);

    /* Over an expired destination: it counts as expired, and the rename succeeds. */
    put(s, 7, "gone", "x", NOW + 1, NOW);
    n = store_rename(s, peek(s, 7, "old", NOW + 5), 7, "gone", 4, NOW + 5);
    assert_str(n, "persist");
    ck_assert_uint_eq(st->expired, 1);
    ck_assert_uint_eq(store_count(s, -1), 1);
    ck_assert_uint_eq(store_volatile_count(s, -1), 0);
    /* The renamed key is the most recently used. */
    put(s, 7, "younger", "y", 0, NOW);
    n = store_rename(s, peek(s, 7, "gone", NOW), 7, "renamed", 7, NOW);
    store_set_max_memory(s, store_used_bytes(s) - 1);
    ck_assert_int_eq(store_evict(s, NOW), 0);
    ck_assert_ptr_null(peek(s, 7, "younger", NOW));
    ck_assert_ptr_nonnull(peek(s, 7, "renamed", NOW));
    store_destroy(s);
}
END_TEST

START_TEST(test_copy)
{
    struct store *s = mk(0, POLICY_ALLKEYS_LRU, 5, 16);
    static const char bin[] = { 'b', '\0', 'n' };
    static const char bv[] = { '\0', 'v', '\0', 'w' };
    struct store_entry *e = store_set_string(s, 0, bin, 3, bv, 4, NOW + 300, false, NOW);
    struct store_entry *c = store_copy(s, e, 5, bin, 3, NOW);
    ck_assert_ptr_ne(c, e);
    assert_key(c, 5, bin, 3);
    assert_value(c, bv, 4);
    ck_assert_int_eq(c->expire_ms, NOW + 300);
    e = store_find(s, 0, bin, 3, NOW, 0);
    assert_key(e, 0, bin, 3);
    assert_value(e, bv, 4);
    ck_assert_uint_eq(store_count(s, 0), 1);
    ck_assert_uint_eq(store_count(s, 5), 1);
    ck_assert_uint_eq(store_volatile_count(s, -1), 2);
    /* The copy is independent of its source. */
    store_string_mut(c)[1] = 'X';
    assert_value(store_find(s, 0, bin, 3, NOW, 0), bv, 4);
    /* Over an existing destination in the same db. */
    put(s, 0, "dest", "a much longer previous value of the destination", 0, NOW);
    c = store_copy(s, store_find(s, 0, bin, 3, NOW, 0), 0, "dest", 4, NOW);
    assert_value(c, bv, 4);
    ck_assert_int_eq(c->expire_ms, NOW + 300);
    ck_assert_uint_eq(store_count(s, 0), 2);
    ck_assert_uint_eq(store_volatile_count(s, 0), 2);
    ck_assert_uint_eq(store_count(s, -1), 3);
    /* Copies expire with the TTL. */
    ck_assert_ptr_null(peek(s, 0, "dest", NOW + 301));
    ck_assert_ptr_null(store_find(s, 5, bin, 3, NOW + 301, 0));
    ck_assert_uint_eq(store_count(s, -1), 1);
    store_destroy(s);
}
END_TEST

/* ---- scan ---- */

struct seen {
    uint32_t *hits; /* per key index: how many times reported */
    size_t n;
    size_t calls, bad;
};

/* Keys "s:<decimal>". */
static void seen_cb(void *ctx, const struct store_entry *e)
{
    struct seen *sn = ctx;
    sn->calls++;
    const char *k = store_entry_key(e);
    size_t kl = store_entry_klen(e);
    if (kl < 3 || k[0] != 's' || k[1] != ':') {
        sn->bad++;
        return;
    }
    size_t idx = 0;
    for (size_t i = 2; i < kl; i++) {
        if (k[i] < '0' || k[i] > '9') {
            sn->bad++;
            return;
        }
        idx = idx * 10 + (size_t)(k[i] - '0');
    }
    if (idx >= sn->n) {
        sn->bad++;
        return;
    }
    sn->hits[idx]++;
}

static void skey(char *buf, size_t i)
{
    snprintf(buf, 32, "s:%zu", i);
}

static void scan_put(struct store *s, size_t i)
{
    char k[32];
    skey(k, i);
    store_set_string(s, 0, k, strlen(k), k, strlen(k), 0, false, NOW);
}

static void scan_del(struct store *s, size_t i)
{
    char k[32];
    skey(k, i);
    FAST(store_delete(s, 0, k, strlen(k), NOW));
}

static void count_cb(void *ctx, const struct store_entry *e)
{
    (void)e;
    ++*(size_t *)ctx;
}

START_TEST(test_scan_empty)
{
    struct store *s = mk(0, POLICY_ALLKEYS_LRU, 5, 16);
    size_t calls = 0;
    FAST_EQ(store_scan(s, 0, 0, NOW, count_cb, &calls), 0);
    FAST_EQ(calls, 0);
    /* A table that had keys and is empty again: the walk ends with nothing reported. */
    for (size_t i = 0; i < 100; i++)
        scan_put(s, i);
    for (size_t i = 0; i < 100; i++)
        scan_del(s, i);
    uint64_t cur = 0;
    size_t steps = 0;
    do {
        cur = store_scan(s, 0, cur, NOW, count_cb, &calls);
    } while (cur != 0 && ++steps < WALK_STEPS_MAX);
    FAST_EQ(cur, 0);
    FAST_EQ(calls, 0);
    store_flush(s, -1);
    FAST_EQ(store_scan(s, 0, 0, NOW, count_cb, &calls), 0);
    FAST_EQ(calls, 0);
    store_destroy(s);
}
END_TEST

START_TEST(test_scan_100000)
{
    enum { N = 100000 };
    struct store *s = mk(0, POLICY_ALLKEYS_LRU, 5, 16);
    for (size_t i = 0; i < N; i++)
        scan_put(s, i);
    struct seen sn = { calloc(N, sizeof(uint32_t)), N, 0, 0 };
    FAST(sn.hits != NULL);
    uint64_t cur = 0;
    size_t steps = 0;
    do {
        cur = store_scan(s, 0, cur, NOW, seen_cb, &sn);
        steps++;
    } while (cur != 0 && steps < WALK_STEPS_MAX);
    FAST_EQ(cur, 0);
    FAST(steps > 1000);
    FAST_EQ(sn.bad, 0);
    for (size_t i = 0; i < N; i++)
        FAST_MSG(sn.hits[i] >= 1, "key s:%zu never reported", i);
    FAST(sn.calls >= N);
    FAST_EQ(store_count(s, -1), N);
    free(sn.hits);
    store_destroy(s);
}
END_TEST

/* Each database has its own table: a walk over a small database next to a big one takes as
 * many steps as its own buckets and reports only its keys. */
START_TEST(test_scan_small_db_beside_big_one)
{
    struct store *s = mk(0, POLICY_ALLKEYS_LRU, 5, 16);
    char k[32];
    for (int i = 0; i < 20000; i++) {
        snprintf(k, sizeof(k), "big:%d", i);
        put(s, 0, k, "v", 0, NOW);
    }
    for (int i = 0; i < 5; i++) {
        snprintf(k, sizeof(k), "small:%d", i);
        put(s, 1, k, "v", 0, NOW);
    }
    size_t calls = 0, steps = 0;
    uint64_t cur = 0;
    do {
        cur = store_scan(s, 1, cur, NOW, count_cb, &calls);
    } while (cur != 0 && ++steps < WALK_STEPS_MAX);
    ck_assert_uint_eq(cur, 0);
    ck_assert_uint_eq(calls, 5);
    ck_assert_uint_le(steps, 8); /* 5 keys: a table of at most 8 buckets */
    ck_assert_uint_eq(store_scan(s, 2, 0, NOW, count_cb, &calls), 0); /* empty db: done at once */
    ck_assert_uint_eq(calls, 5);
    store_destroy(s);
}
END_TEST

START_TEST(test_scan_while_growing)
{
    enum { N0 = 40000, N = 100000, PER_STEP = 2 };
    struct store *s = mk(0, POLICY_ALLKEYS_LRU, 5, 16);
    size_t next = 0;
    for (; next < N0; next++)
        scan_put(s, next);
    struct seen sn = { calloc(N, sizeof(uint32_t)), N, 0, 0 };
    FAST(sn.hits != NULL);
    uint64_t cur = 0, prev_used = store_used_bytes(s), max_jump = 0;
    size_t steps = 0;
    do {
        cur = store_scan(s, 0, cur, NOW, seen_cb, &sn);
        steps++;
        for (int j = 0; j < PER_STEP && next < N; j++)
            scan_put(s, next++);
        uint64_t used = store_used_bytes(s);
        if (used > prev_used && used - prev_used > max_jump)
            max_jump = used - prev_used;
        prev_used = used;
    } while (cur != 0 && steps < WALK_STEPS_MAX);
    FAST_EQ(cur, 0);
    FAST_EQ(sn.bad, 0);
    /* The table grew during the walk: a bucket array of 64K entries (100000 keys at two per
     * bucket) appeared in one step. */
    FAST(max_jump >= 65536 * sizeof(void *));
    FAST_EQ(next, N);
    for (size_t i = 0; i < N0; i++)
        FAST_MSG(sn.hits[i] >= 1, "key s:%zu (present throughout) never reported", i);
    /* Keys added during the walk may or may not be reported; none is reported that never was. */
    FAST_EQ(store_count(s, -1), N);
    free(sn.hits);
    store_destroy(s);
}
END_TEST

START_TEST(test_scan_while_shrinking)
{
    enum { N = 100000, KEEP_EVERY = 16, DEL_PER_STEP = 1000 };
    struct store *s = mk(0, POLICY_ALLKEYS_LRU, 5, 16);
    for (size_t i = 0; i < N; i++)
        scan_put(s, i);
    struct seen sn = { calloc(N, sizeof(uint32_t)), N, 0, 0 };
    FAST(sn.hits != NULL);
    uint64_t cur = 0, used_after_deletes = 0;
    size_t steps = 0, del = 0;
    do {
        cur = store_scan(s, 0, cur, NOW, seen_cb, &sn);
        steps++;
        if (del < N) {
            /* Delete most keys, a chunk per step. */
            for (int j = 0; j < DEL_PER_STEP && del < N; j++, del++)
                if (del % KEEP_EVERY)
                    scan_del(s, del);
            if (del == N)
                used_after_deletes = store_used_bytes(s);
        } else {
            /* Then let the expire cycle shrink the table (and move it along) between steps. */
            store_expire_cycle(s, NOW, 16, NULL);
        }
    } while (cur != 0 && steps < WALK_STEPS_MAX);
    FAST_EQ(cur, 0);
    FAST_EQ(del, N);
    FAST_EQ(sn.bad, 0);
    FAST_EQ(store_count(s, -1), N / KEEP_EVERY);
    /* The big bucket array went away during the walk. */
    FAST(used_after_deletes > 0);
    FAST(store_used_bytes(s) + 32768 * sizeof(void *) < used_after_deletes);
    for (size_t i = 0; i < N; i += KEEP_EVERY)
        FAST_MSG(sn.hits[i] >= 1, "key s:%zu (present throughout) never reported", i);
    /* A second full walk over the shrunk table reports every remaining key. */
    memset(sn.hits, 0, N * sizeof(uint32_t));
    steps = 0;
    cur = 0;
    do {
        cur = store_scan(s, 0, cur, NOW, seen_cb, &sn);
    } while (cur != 0 && ++steps < WALK_STEPS_MAX);
    for (size_t i = 0; i < N; i++)
        FAST_EQ(sn.hits[i] >= 1, i % KEEP_EVERY == 0);
    free(sn.hits);
    store_destroy(s);
}
END_TEST

START_TEST(test_scan_skips_expired)
{
    enum { N = 1000 };
    struct store *s = mk(0, POLICY_ALLKEYS_LRU, 5, 16);
    char k[32];
    for (size_t i = 0; i < N; i++) {
        skey(k, i);
        store_set_string(s, 0, k, strlen(k), "v", 1, i % 2 ? NOW + 10 : 0, false, NOW);
    }
    struct seen sn = { calloc(N, sizeof(uint32_t)), N, 0, 0 };
    FAST(sn.hits != NULL);
    uint64_t cur = 0;
    size_t steps = 0;
    do {
        cur = store_scan(s, 0, cur, NOW + 11, seen_cb, &sn);
    } while (cur != 0 && ++steps < WALK_STEPS_MAX);
    FAST_EQ(sn.bad, 0);
    for (size_t i = 0; i < N; i++)
        FAST_EQ(sn.hits[i] >= 1, i % 2 == 0);
    /* Scanning deletes nothing; at the expiry instant itself the keys are still reported. */
    FAST_EQ(store_count(s, -1), N);
    FAST_EQ(store_get_stats(s)->expired, 0);
    memset(sn.hits, 0, N * sizeof(uint32_t));
    cur = 0;
    steps = 0;
    do {
        cur = store_scan(s, 0, cur, NOW + 10, seen_cb, &sn);
    } while (cur != 0 && ++steps < WALK_STEPS_MAX);
    for (size_t i = 0; i < N; i++)
        FAST(sn.hits[i] >= 1);
    free(sn.hits);
    store_destroy(s);
}
END_TEST

/* ---- random ---- */

START_TEST(test_random_requested_db_only)
{
    struct store *s = mk(0, POLICY_ALLKEYS_LRU, 5, 16);
    char k[32];
    for (int i = 0; i < 100; i++) {
        put(s, 0, keyn(k, "a", i), "in0", 0, NOW);
        put(s, 2, keyn(k, "b", i), "in2", 0, NOW);
    }
    int distinct = 0;
    bool seen[100] = { false };
    for (int i = 0; i < 1000; i++) {
        struct store_entry *e = store_random(s, 2, NOW);
        FAST(e != NULL);
        FAST_EQ(e->db, 2);
        FAST_EQ(store_entry_klen(e), 4);
        FAST_EQ(store_entry_key(e)[0], 'b');
        assert_str(e, "in2");
        int idx = (store_entry_key(e)[1] - '0') * 100 + (store_entry_key(e)[2] - '0') * 10 +
                  (store_entry_key(e)[3] - '0');
        FAST(idx < 100);
        if (!seen[idx]) {
            seen[idx] = true;
            distinct++;
        }
    }
    FAST(distinct > 50); /* random, not always the same key */
    FAST(store_random(s, 1, NOW) == NULL);
    FAST(store_random(s, 15, NOW) == NULL);
    FAST(store_random(s, 16, NOW) == NULL); /* out of range */
    FAST(store_random(s, -1, NOW) == NULL);
    FAST_EQ(store_count(s, -1), 200);
    store_destroy(s);
}
END_TEST

START_TEST(test_random_empty_and_expired)
{
    struct store *s = mk(0, POLICY_ALLKEYS_LRU, 5, 16);
    ck_assert_ptr_null(store_random(s, 0, NOW));
    char k[32];
    for (int i = 0; i < 5; i++)
        put(s, 3, keyn(k, "x", i), "v", NOW + 10, NOW);
    for (int i = 0; i < 50; i++)
        put(s, 0, keyn(k, "y", i), "v", 0, NOW);
    ck_assert_ptr_nonnull(store_random(s, 3, NOW + 10));
    /* Every key of db 3 expired: none to give, and nothing deleted by asking. */
    ck_assert_ptr_null(store_random(s, 3, NOW + 11));
    ck_assert_uint_eq(store_count(s, 3), 5);
    /* One live key among the expired ones: always that one. */
    put(s, 3, "live", "L", 0, NOW);
    for (int i = 0; i < 50; i++) {
        struct store_entry *e = store_random(s, 3, NOW + 11);
        assert_key(e, 3, "live", 4);
        assert_str(e, "L");
    }
    store_flush(s, 0);
    ck_assert_ptr_null(store_random(s, 0, NOW));
    store_destroy(s);
}
END_TEST

START_TEST(test_random_sparse_db)
{
    enum { N = 50000 };
    struct store *s = mk(0, POLICY_ALLKEYS_LRU, 5, 16);
    char k[32];
    for (int i = 0; i < N; i++) {
        snprintf(k, sizeof(k), "big:%d", i);
        put(s, 0, k, "0", 0, NOW);
    }
    put(s, 1, "lonely", "1", 0, NOW);
    for (int i = 0; i < 3; i++) {
        struct store_entry *e = store_random(s, 1, NOW);
        assert_key(e, 1, "lonely", 6);
        assert_str(e, "1");
    }
    struct store_entry *e = store_random(s, 0, NOW);
    ck_assert_ptr_nonnull(e);
    ck_assert_int_eq(e->db, 0);
    ck_assert_ptr_null(store_random(s, 2, NOW));
    store_destroy(s);
}
END_TEST

/* ---- flush ---- */

START_TEST(test_flush_db_and_all)
{
    struct store *s = mk(0, POLICY_ALLKEYS_LRU, 5, 16);
    char k[32];
    for (int db = 0; db < 3; db++)
        for (int i = 0; i < 300; i++)
            put(s, db, keyn(k, "f", i), "v", i % 2 ? NOW + 1000 : 0, NOW);
    ck_assert_uint_eq(store_count(s, -1), 900);
    store_flush(s, 1);
    ck_assert_uint_eq(store_count(s, 1), 0);
    ck_assert_uint_eq(store_volatile_count(s, 1), 0);
    ck_assert_uint_eq(store_count(s, 0), 300);
    ck_assert_uint_eq(store_count(s, 2), 300);
    ck_assert_uint_eq(store_count(s, -1), 600);
    ck_assert_uint_eq(store_volatile_count(s, -1), 300);
    for (int i = 0; i < 300; i++) {
        ck_assert_ptr_null(peek(s, 1, keyn(k, "f", i), NOW));
        ck_assert_ptr_nonnull(peek(s, 0, k, NOW));
        ck_assert_ptr_nonnull(peek(s, 2, k, NOW));
    }
    /* Flushing an empty db changes nothing. */
    store_flush(s, 9);
    ck_assert_uint_eq(store_count(s, -1), 600);
    /* The LRU list is intact after a per-db flush: eviction empties the rest. */
    uint64_t sum = 0;
    for (int i = 0; i < 300; i++) {
        sum += entry_bytes(peek(s, 0, keyn(k, "f", i), NOW));
        sum += entry_bytes(peek(s, 2, k, NOW));
    }
    ck_assert(is_table_bytes(store_used_bytes(s) - sum));
    store_flush(s, 0);
    ck_assert_uint_eq(store_count(s, -1), 300);
    store_set_max_memory(s, 1);
    ck_assert_int_eq(store_evict(s, NOW), -1);
    ck_assert_uint_eq(store_count(s, -1), 0);
    ck_assert_uint_eq(store_get_stats(s)->evicted, 300);
    store_set_max_memory(s, 0);

    for (int db = 0; db < 3; db++)
        for (int i = 0; i < 300; i++)
            put(s, db, keyn(k, "f", i), "v", i % 2 ? NOW + 1000 : 0, NOW);
    store_flush(s, -1);
    ck_assert_uint_eq(store_count(s, -1), 0);
    ck_assert_uint_eq(store_volatile_count(s, -1), 0);
    for (int db = 0; db < 3; db++)
        ck_assert_uint_eq(store_count(s, db), 0);
    ck_assert_uint_eq(store_used_bytes(s), 0);
    ck_assert_ptr_null(peek(s, 0, "f000", NOW));
    /* A db holding every key: flushing it empties the store completely. */
    for (int i = 0; i < 300; i++)
        put(s, 4, keyn(k, "f", i), "v", NOW + 5, NOW);
    store_flush(s, 4);
    ck_assert_uint_eq(store_count(s, -1), 0);
    ck_assert_uint_eq(store_volatile_count(s, -1), 0);
    ck_assert_uint_eq(store_used_bytes(s), 0);
    put(s, 4, "again", "v", 0, NOW);
    ck_assert_uint_eq(store_count(s, 4), 1);
    store_destroy(s);
}
END_TEST

/* ---- randomized model test ---- */

#define M_DBS 4
#define M_KEYS 512
#define M_OPS 200000
#define M_VAL_MAX 8192

struct mslot {
    bool present; /* physically in the store (possibly expired, not yet looked at) */
    int64_t expire;
    uint8_t *val;
    size_t vlen;
};

struct model {
    struct mslot slot[M_DBS][M_KEYS];
    size_t count[M_DBS], vol[M_DBS];
    uint64_t expired, hits, misses;
    int64_t now;
};

static size_t mkey(int k, char *buf)
{
    buf[0] = 'm';
    buf[1] = (char)(k & 0xff);
    buf[2] = (char)(k >> 8);
    if (k % 4 == 0) {
        memcpy(buf + 3, "\0tail", 5);
        return 8;
    }
    return 3;
}

static int mkey_idx(const struct store_entry *e)
{
    size_t kl = store_entry_klen(e);
    const unsigned char *d = (const unsigned char *)store_entry_key(e);
    if ((kl != 3 && kl != 8) || d[0] != 'm')
        return -1;
    int k = d[1] | (d[2] << 8);
    if (k >= M_KEYS || (k % 4 == 0) != (kl == 8))
        return -1;
    if (kl == 8 && memcmp(d + 3, "\0tail", 5) != 0)
        return -1;
    return k;
}

static bool m_expired(const struct model *m, const struct mslot *sl)
{
    return sl->expire != 0 && m->now > sl->expire;
}

static bool m_live(const struct model *m, int db, int k)
{
    const struct mslot *sl = &m->slot[db][k];
    return sl->present && !m_expired(m, sl);
}

static void m_remove(struct model *m, int db, int k)
{
    struct mslot *sl = &m->slot[db][k];
    if (!sl->present)
        return;
    sl->present = false;
    m->count[db]--;
    if (sl->expire)
        m->vol[db]--;
    free(sl->val);
    sl->val = NULL;
    sl->vlen = 0;
    sl->expire = 0;
}

static void m_set_expire(struct model *m, int db, int k, int64_t exp)
{
    struct mslot *sl = &m->slot[db][k];
    if (sl->expire)
        m->vol[db]--;
    sl->expire = exp;
    if (exp)
        m->vol[db]++;
}

/* Takes ownership of val (malloc'd). */
static void m_put_owned(struct model *m, int db, int k, uint8_t *val, size_t vlen, int64_t exp)
{
    struct mslot *sl = &m->slot[db][k];
    if (sl->present) {
        free(sl->val);
    } else {
        sl->present = true;
        sl->expire = 0;
        m->count[db]++;
    }
    sl->val = val;
    sl->vlen = vlen;
    m_set_expire(m, db, k, exp);
}

static uint8_t *dup_bytes(const void *p, size_t n)
{
    uint8_t *d = malloc(n ? n : 1);
    FAST(d != NULL);
    if (n)
        memcpy(d, p, n);
    return d;
}

/* A lookup as the store does it: an expired entry is removed and counted. */
static bool m_lookup(struct model *m, int db, int k)
{
    struct mslot *sl = &m->slot[db][k];
    if (!sl->present)
        return false;
    if (m_expired(m, sl)) {
        m_remove(m, db, k);
        m->expired++;
        return false;
    }
    return true;
}

static void m_check_entry(const struct model *m, const struct store_entry *e, int db, int k, int op)
{
    const struct mslot *sl = &m->slot[db][k];
    char key[8];
    size_t kl = mkey(k, key);
    FAST_MSG(e != NULL, "op %d: db %d key %d missing", op, db, k);
    FAST_MSG(sl->present, "op %d: db %d key %d should not exist", op, db, k);
    FAST_EQ(e->db, db);
    FAST_EQ(store_entry_klen(e), kl);
    FAST(memcmp(store_entry_key(e), key, kl) == 0);
    FAST_MSG(store_string_len(e) == sl->vlen, "op %d: db %d key %d: len %zu, model %zu", op, db, k,
             store_string_len(e), sl->vlen);
    if (sl->vlen)
        FAST_MSG(memcmp(store_string_ptr(e), sl->val, sl->vlen) == 0,
                 "op %d: db %d key %d: value differs", op, db, k);
    FAST_EQ(store_string_ptr(e)[sl->vlen], '\0');
    FAST_MSG(e->expire_ms == sl->expire, "op %d: db %d key %d: expire %lld, model %lld", op, db, k,
             (long long)e->expire_ms, (long long)sl->expire);
}

static void m_check_counts(struct store *s, const struct model *m, int op)
{
    size_t total = 0, vtotal = 0;
    for (int db = 0; db < M_DBS; db++) {
        FAST_MSG(store_count(s, db) == m->count[db], "op %d: db %d count %zu, model %zu", op, db,
                 store_count(s, db), m->count[db]);
        FAST_MSG(store_volatile_count(s, db) == m->vol[db], "op %d: db %d volatile %zu, model %zu",
                 op, db, store_volatile_count(s, db), m->vol[db]);
        total += m->count[db];
        vtotal += m->vol[db];
    }
    FAST_EQ(store_count(s, -1), total);
    FAST_EQ(store_volatile_count(s, -1), vtotal);
    const struct store_stats *st = store_get_stats(s);
    FAST_MSG(st->expired == m->expired, "op %d: expired %llu, model %llu", op,
             (unsigned long long)st->expired, (unsigned long long)m->expired);
    FAST_EQ(st->hits, m->hits);
    FAST_EQ(st->misses, m->misses);
    FAST_EQ(st->evicted, 0);
}

/* Two unbounded expire cycles: the first ends the pass in progress, the second is a full pass
 * from cursor 0; afterwards no expired entry is left. */
static void m_sweep(struct store *s, struct model *m)
{
    size_t d = store_expire_cycle(s, m->now, (size_t)1 << 30, NULL);
    d += store_expire_cycle(s, m->now, (size_t)1 << 30, NULL);
    size_t x = 0;
    for (int db = 0; db < M_DBS; db++)
        for (int k = 0; k < M_KEYS; k++)
            if (m->slot[db][k].present && m_expired(m, &m->slot[db][k])) {
                m_remove(m, db, k);
                x++;
            }
    m->expired += x;
    FAST_EQ(d, x);
}

struct mscan {
    const struct model *m;
    uint8_t seen[M_DBS][M_KEYS];
    size_t bad;
};

static void mscan_cb(void *ctx, const struct store_entry *e)
{
    struct mscan *ms = ctx;
    int k = mkey_idx(e);
    int db = e->db;
    if (k < 0 || db >= M_DBS || !m_live(ms->m, db, k)) {
        ms->bad++;
        return;
    }
    const struct mslot *sl = &ms->m->slot[db][k];
    if (store_string_len(e) != sl->vlen ||
        (sl->vlen && memcmp(store_string_ptr(e), sl->val, sl->vlen)) ||
        e->expire_ms != sl->expire) {
        ms->bad++;
        return;
    }
    ms->seen[db][k] = 1;
}

static void m_scan_check(struct store *s, const struct model *m)
{
    struct mscan *ms = calloc(1, sizeof(*ms));
    FAST(ms != NULL);
    ms->m = m;
    for (int db = 0; db < M_DBS; db++) { /* one walk per database */
        uint64_t cur = 0;
        size_t steps = 0;
        do {
            cur = store_scan(s, db, cur, m->now, mscan_cb, ms);
        } while (cur != 0 && ++steps < WALK_STEPS_MAX);
        FAST_EQ(cur, 0);
    }
    FAST_EQ(ms->bad, 0);
    for (int db = 0; db < M_DBS; db++)
        for (int k = 0; k < M_KEYS; k++)
            FAST_MSG(ms->seen[db][k] == m_live(m, db, k), "scan: db %d key %d", db, k);
    free(ms);
}

static size_t rnd_vlen(uint64_t *rng)
{
    uint64_t r = xs_next(rng) % 100;
    if (r < 60)
        return xs_next(rng) % 24;
    if (r < 90)
        return 24 + xs_next(rng) % 200;
    return 224 + xs_next(rng) % 3000;
}

START_TEST(test_model_random_ops)
{
    struct store *s = mk(0, POLICY_ALLKEYS_LRU, 5, M_DBS);
    struct model *m = calloc(1, sizeof(*m));
    FAST(m != NULL);
    m->now = NOW;
    uint64_t rng = 0x243F6A8885A308D3ull;
    static uint8_t buf[M_VAL_MAX];
    size_t n_ops[11] = { 0 };

    for (int op = 0; op < M_OPS; op++) {
        unsigned c = (unsigned)(xs_next(&rng) % 100);
        int db = (int)(xs_next(&rng) % M_DBS), k = (int)(xs_next(&rng) % M_KEYS);
        char key[8];
        size_t kl = mkey(k, key);
        struct mslot *sl = &m->slot[db][k];

        if (c < 25) { /* set: no TTL, a TTL (possibly exactly now), or keep_ttl */
            int mode = (int)(xs_next(&rng) % 10);
            size_t vlen = rnd_vlen(&rng);
            for (size_t i = 0; i < vlen; i++)
                buf[i] = (uint8_t)(xs_next(&rng) % 8 == 0 ? 0 : xs_next(&rng));
            int64_t exp = mode < 5 ? m->now + (int64_t)(xs_next(&rng) % 300) : 0;
            bool keep = mode == 9;
            struct store_entry *e =
                store_set_string(s, db, key, kl, (const char *)buf, vlen, exp, keep, m->now);
            if (sl->present && m_expired(m, sl))
                m->expired++; /* overwriting an expired key counts its expiry, as Redis */
            if (keep)
                exp = m_live(m, db, k) ? sl->expire : 0;
            m_put_owned(m, db, k, dup_bytes(buf, vlen), vlen, exp);
            m_check_entry(m, e, db, k, op);
            n_ops[0]++;
        } else if (c < 50) { /* find */
            unsigned flags = (unsigned)(xs_next(&rng) % 4); /* READ and NOTOUCH */
            struct store_entry *e = store_find(s, db, key, kl, m->now, flags);
            bool live = m_lookup(m, db, k);
            if (flags & STORE_READ) {
                if (live)
                    m->hits++;
                else
                    m->misses++;
            }
            if (live)
                m_check_entry(m, e, db, k, op);
            else
                FAST_MSG(e == NULL, "op %d: find db %d key %d: should be absent", op, db, k);
            n_ops[1]++;
        } else if (c < 60) { /* delete */
            bool r = store_delete(s, db, key, kl, m->now);
            bool expect = false;
            if (sl->present) {
                if (m_expired(m, sl))
                    m->expired++;
                else
                    expect = true;
                m_remove(m, db, k);
            }
            FAST_MSG(r == expect, "op %d: delete db %d key %d: %d, model %d", op, db, k, r, expect);
            n_ops[2]++;
        } else if (c < 68) { /* time passes */
            m->now += (int64_t)(xs_next(&rng) % 40);
            n_ops[3]++;
        } else if (c < 78) { /* resize a live key */
            struct store_entry *e = store_find(s, db, key, kl, m->now, 0);
            bool live = m_lookup(m, db, k);
            FAST_EQ(e != NULL, live);
            if (live) {
                size_t newlen = xs_next(&rng) % 16 == 0 ? xs_next(&rng) % M_VAL_MAX
                                                        : xs_next(&rng) % (2 * sl->vlen + 64);
                struct store_entry *n = store_string_resize(s, e, newlen);
                uint8_t *nv = calloc(newlen ? newlen : 1, 1);
                FAST(nv != NULL);
                memcpy(nv, sl->val, newlen < sl->vlen ? newlen : sl->vlen);
                m_put_owned(m, db, k, nv, newlen, sl->expire);
                m_check_entry(m, n, db, k, op);
                FAST_EQ(store_find(s, db, key, kl, m->now, STORE_NOTOUCH), n);
                /* Write through the mutable pointer, as APPEND/SETRANGE do. */
                if (newlen) {
                    size_t at = xs_next(&rng) % newlen;
                    store_string_mut(n)[at] = (char)(at & 0xff);
                    sl->val[at] = (uint8_t)(at & 0xff);
                }
            }
            n_ops[4]++;
        } else if (c < 91) { /* rename (c < 86) or copy */
            bool is_copy = c >= 86;
            int db2 = (int)(xs_next(&rng) % M_DBS), k2 = (int)(xs_next(&rng) % M_KEYS);
            if (db2 == db && k2 == k)
                k2 = (k2 + 1) % M_KEYS;
            char key2[8];
            size_t kl2 = mkey(k2, key2);
            struct store_entry *e = store_find(s, db, key, kl, m->now, 0);
            bool live = m_lookup(m, db, k);
            FAST_EQ(e != NULL, live);
            if (live) {
                struct store_entry *n = is_copy ? store_copy(s, e, db2, key2, kl2, m->now)
                                                : store_rename(s, e, db2, key2, kl2, m->now);
                struct mslot *d = &m->slot[db2][k2];
                if (d->present && m_expired(m, d))
                    m->expired++;
                m_remove(m, db2, k2);
                m_put_owned(m, db2, k2, dup_bytes(sl->val, sl->vlen), sl->vlen, sl->expire);
                if (!is_copy)
                    m_remove(m, db, k);
                m_check_entry(m, n, db2, k2, op);
                if (is_copy)
                    m_check_entry(m, store_find(s, db, key, kl, m->now, STORE_NOTOUCH), db, k, op);
                else
                    FAST(store_find(s, db, key, kl, m->now, STORE_NOTOUCH) == NULL);
            }
            n_ops[is_copy ? 6 : 5]++;
        } else if (c < 96) { /* set or remove a TTL */
            struct store_entry *e = store_find(s, db, key, kl, m->now, 0);
            bool live = m_lookup(m, db, k);
            FAST_EQ(e != NULL, live);
            if (live) {
                int64_t exp = xs_next(&rng) % 3 == 0 ? 0 : m->now + (int64_t)(xs_next(&rng) % 300);
                store_set_expire(s, e, exp);
                m_set_expire(m, db, k, exp);
                m_check_entry(m, e, db, k, op);
            }
            n_ops[7]++;
        } else if (c < 98) { /* random key of a db */
            struct store_entry *e = store_random(s, db, m->now);
            size_t live = 0;
            for (int i = 0; i < M_KEYS; i++)
                live += m_live(m, db, i);
            if (live == 0) {
                FAST(e == NULL);
            } else {
                FAST(e != NULL);
                FAST_EQ(e->db, db);
                int idx = mkey_idx(e);
                FAST(idx >= 0);
                FAST(m_live(m, db, idx));
                m_check_entry(m, e, db, idx, op);
            }
            n_ops[8]++;
        } else { /* delete through an entry pointer */
            struct store_entry *e = store_find(s, db, key, kl, m->now, STORE_NOTOUCH);
            bool live = m_lookup(m, db, k);
            FAST_EQ(e != NULL, live);
            if (live) {
                store_delete_entry(s, e);
                m_remove(m, db, k);
            }
            n_ops[9]++;
        }
        m_check_counts(s, m, op);
        if (op % 5000 == 4999) {
            m_sweep(s, m);
            m_check_counts(s, m, op);
            n_ops[10]++;
        }
        if (op % 25000 == 24999)
            m_scan_check(s, m);
    }
    for (int i = 0; i < 10; i++)
        FAST(n_ops[i] > 1000);

    /* Every live key reads back; accounting is entries plus bucket arrays, exactly. */
    m_sweep(s, m);
    m_check_counts(s, m, M_OPS);
    m_scan_check(s, m);
    uint64_t sum = 0;
    for (int db = 0; db < M_DBS; db++)
        for (int k = 0; k < M_KEYS; k++) {
            char key[8];
            size_t kl = mkey(k, key);
            struct store_entry *e = store_find(s, db, key, kl, m->now, STORE_NOTOUCH);
            if (m->slot[db][k].present) {
                m_check_entry(m, e, db, k, M_OPS);
                sum += entry_bytes(e);
            } else {
                FAST(e == NULL);
            }
        }
    FAST(store_count(s, -1) > 100);
    FAST_MSG(is_table_bytes(store_used_bytes(s) - sum), "used %llu, entries %llu",
             (unsigned long long)store_used_bytes(s), (unsigned long long)sum);
    /* Every entry is in the LRU list: evicting down to nothing removes them all. */
    size_t before = store_count(s, -1);
    store_set_max_memory(s, 1);
    FAST_EQ(store_evict(s, m->now), -1);
    FAST_EQ(store_count(s, -1), 0);
    FAST_EQ(store_volatile_count(s, -1), 0);
    FAST_EQ(store_get_stats(s)->evicted, before);
    FAST(is_table_bytes(store_used_bytes(s)));
    store_flush(s, -1);
    FAST_EQ(store_used_bytes(s), 0);

    for (int db = 0; db < M_DBS; db++)
        for (int k = 0; k < M_KEYS; k++)
            free(m->slot[db][k].val);
    free(m);
    store_destroy(s);
}
END_TEST

/* ---- suite ---- */

static Suite *store_table_suite(void)
{
    Suite *su = suite_create("store_table");
    TCase *tc;

    tc = tcase_create("resize");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_resize_grow_shrink);
    tcase_add_test(tc, test_resize_keeps_lru_and_chains);
    tcase_add_test(tc, test_resize_head_and_tail_then_evict);
    suite_add_tcase(su, tc);

    tc = tcase_create("rename_copy");
    tcase_add_test(tc, test_rename);
    tcase_add_test(tc, test_copy);
    suite_add_tcase(su, tc);

    tc = tcase_create("scan");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_scan_empty);
    tcase_add_test(tc, test_scan_100000);
    tcase_add_test(tc, test_scan_while_growing);
    tcase_add_test(tc, test_scan_while_shrinking);
    tcase_add_test(tc, test_scan_skips_expired);
    tcase_add_test(tc, test_scan_small_db_beside_big_one);
    suite_add_tcase(su, tc);

    tc = tcase_create("random");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_random_requested_db_only);
    tcase_add_test(tc, test_random_empty_and_expired);
    tcase_add_test(tc, test_random_sparse_db);
    suite_add_tcase(su, tc);

    tc = tcase_create("flush");
    tcase_add_test(tc, test_flush_db_and_all);
    suite_add_tcase(su, tc);

    tc = tcase_create("model");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, test_model_random_ops);
    suite_add_tcase(su, tc);
    return su;
}

int main(void)
{
    SRunner *sr = srunner_create(store_table_suite());
    srunner_run_all(sr, CK_ENV);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
