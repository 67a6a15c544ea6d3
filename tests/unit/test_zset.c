/* Unit tests for cache/zset.c: the skiplist + index against a brute-force model (a sorted array)
 * over 120000 random operations with a fixed seed (insert, score update, delete, rank, ranges
 * by rank / score / lex with inclusive and exclusive bounds, range deletes, pop min/max), the
 * structure checked in full at intervals; exact byte accounting against the allocator; dup,
 * scan, random, the compact flag; and rank queries on a 1,000,000-member set (sampled). */
#include "cache/zset.h"

#include <check.h>
#include <malloc.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Cheap checks for the hot loops: Check's ck_assert records its location on every call (a
 * write to the parent in fork mode), far too slow for millions of checks. These only call into
 * Check on failure. */
#define EXPECT(cond)                                                                   \
    do {                                                                               \
        if (!(cond))                                                                   \
            ck_abort_msg("%s:%d: expected %s", __FILE__, __LINE__, #cond);             \
    } while (0)
#define EXPECT_EQ(a, b)                                                                \
    do {                                                                               \
        uintmax_t a_ = (uintmax_t)(a), b_ = (uintmax_t)(b);                            \
        if (a_ != b_)                                                                  \
            ck_abort_msg("%s:%d: %s == %ju, %s == %ju", __FILE__, __LINE__, #a, a_, #b, \
                         b_);                                                          \
    } while (0)

static const uint8_t SEED[16] = { 9, 8, 7, 6, 5, 4, 3, 2, 1, 0, 1, 2, 3, 4, 5, 6 };

#define MODEL_OPS 120000
#define POOL 1200       /* distinct members the random test draws from */
#define MEMBER_MAX 12
#define FULL_CHECK_EVERY 4000
#define BIG_N 1000000
#define BIG_SAMPLES 2000

/* ---- a deterministic generator (the test's own: no libc rand state) ---- */

static uint64_t rnd_state = 0x243F6A8885A308D3ull;

static uint64_t rnd(void)
{
    uint64_t x = rnd_state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    rnd_state = x;
    return x * 0x2545F4914F6CDD1Dull;
}

static size_t rnd_below(size_t n) { return (size_t)(rnd() % n); }

/* ---- the pool of members: distinct, binary, 0..12 bytes ---- */

static char pool[POOL][MEMBER_MAX];
static size_t pool_len[POOL];

static int bytes_cmp(const char *a, size_t alen, const char *b, size_t blen)
{
    size_t n = alen < blen ? alen : blen;
    int r = n ? memcmp(a, b, n) : 0;
    if (r)
        return r < 0 ? -1 : 1;
    return alen < blen ? -1 : alen > blen;
}

static void pool_init(void)
{
    for (size_t i = 0; i < POOL; i++) {
        bool dup;
        do {
            pool_len[i] = rnd_below(MEMBER_MAX + 1);
            for (size_t j = 0; j < pool_len[i]; j++) {
                uint64_t r = rnd();
                pool[i][j] = (r & 7) == 0 ? '\0' : (char)("abcdz\xff"[r % 6]);
            }
            dup = false;
            for (size_t k = 0; k < i && !dup; k++)
                dup = bytes_cmp(pool[k], pool_len[k], pool[i], pool_len[i]) == 0;
        } while (dup);
    }
}

/* ---- the model: pool indexes sorted by (score, member), and each member's score ---- */

struct model {
    size_t *a; /* pool indexes in order */
    size_t n;
    bool present[POOL];
    double score[POOL];
};

static int model_cmp(const struct model *md, size_t k, double score, const char *m,
                     size_t mlen)
{
    if (md->score[k] < score)
        return -1;
    if (md->score[k] > score)
        return 1;
    return bytes_cmp(pool[k], pool_len[k], m, mlen);
}

/* The first position whose element is not before (score, m). */
static size_t model_lower(const struct model *md, double score, const char *m, size_t mlen)
{
    size_t lo = 0, hi = md->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (model_cmp(md, md->a[mid], score, m, mlen) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* The position of pool member k, or -1. */
static long model_find(const struct model *md, size_t k)
{
    if (!md->present[k])
        return -1;
    return (long)model_lower(md, md->score[k], pool[k], pool_len[k]);
}

static void model_remove_at(struct model *md, size_t i)
{
    md->present[md->a[i]] = false;
    memmove(md->a + i, md->a + i + 1, (md->n - i - 1) * sizeof(*md->a));
    md->n--;
}

static void model_insert(struct model *md, double score, size_t k)
{
    size_t at = model_lower(md, score, pool[k], pool_len[k]);
    memmove(md->a + at + 1, md->a + at, (md->n - at) * sizeof(*md->a));
    md->a[at] = k;
    md->present[k] = true;
    md->score[k] = score;
    md->n++;
}

/* The first position where pred fails, pred being true on a prefix of the model. */
static size_t model_prefix(const struct model *md, bool (*pred)(const struct model *, size_t,
                                                                  const void *),
                           const void *arg)
{
    size_t lo = 0, hi = md->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (pred(md, md->a[mid], arg))
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* ---- helpers ---- */

static const double score_pool[] = { -INFINITY, -1e300, -2.5, -1, -0.0, 0, 0.5, 1, 1.5,
                                     2, 3, 7, 1e300, INFINITY };
#define NSCORES (sizeof(score_pool) / sizeof(score_pool[0]))
/* Range results are compared node by node up to this many from each end (full_check does
 * whole sets). */
#define WALK_MAX 48

static double rnd_score(void)
{
    if (rnd() & 1)
        return score_pool[rnd_below(NSCORES)];
    return (double)(long)rnd_below(40) - 10.0;
}

static void assert_node_is(const struct zset_node *n, const struct model *md, size_t i)
{
    size_t k = md->a[i];
    EXPECT(n != NULL);
    EXPECT(n->score == md->score[k]);
    EXPECT_EQ(zset_node_mlen(n), pool_len[k]);
    if (pool_len[k])
        EXPECT(memcmp(zset_node_member(n), pool[k], pool_len[k]) == 0);
}

/* Compares the nodes first..last (count of them) with md->a[from..], up to WALK_MAX from each
 * end. */
static void assert_walk(const struct zset_node *first, const struct zset_node *last,
                        const struct model *md, size_t from, size_t count)
{
    const struct zset_node *n = first;
    for (size_t i = 0; i < count && i < WALK_MAX; i++) {
        assert_node_is(n, md, from + i);
        n = zset_node_next(n);
    }
    n = last;
    for (size_t i = 0; i < count && i < WALK_MAX; i++) {
        assert_node_is(n, md, from + count - 1 - i);
        n = zset_node_prev(n);
    }
}

/* Everything: order, backward links, ranks, index, length. */
static void full_check(const struct zset *z, const struct model *md)
{
    EXPECT_EQ(zset_len(z), md->n);
    const struct zset_node *prev = NULL, *n = zset_first(z);
    for (size_t i = 0; i < md->n; i++) {
        size_t k = md->a[i];
        assert_node_is(n, md, i);
        EXPECT_EQ(zset_node_prev(n), prev);
        EXPECT_EQ(zset_rank(z, n), i);
        EXPECT_EQ(zset_at_rank(z, i), n);
        EXPECT_EQ(zset_find(z, pool[k], pool_len[k]), n);
        prev = n;
        n = zset_node_next(n);
    }
    EXPECT(n == NULL);
    EXPECT_EQ(zset_last(z), prev);
    EXPECT(zset_at_rank(z, md->n) == NULL);
}

/* Checks first/last/count of a range against the model's [first, first+count), then deletes
 * the range when del is set. */
static void check_range(const struct model *md, size_t first, size_t count,
                        struct zset_node *f, size_t rank_first, struct zset_node *l,
                        size_t rank_last, size_t counted)
{
    EXPECT_EQ(counted, count);
    if (count == 0) {
        EXPECT(f == NULL);
        EXPECT(l == NULL);
        return;
    }
    EXPECT_EQ(rank_first, first);
    EXPECT_EQ(rank_last, first + count - 1);
    assert_walk(f, l, md, first, count);
}

/* ---- score ranges ---- */

static bool below_min(const struct model *md, size_t k, const void *r)
{
    return !zset_score_gte_min(md->score[k], r);
}

static bool within_max(const struct model *md, size_t k, const void *r)
{
    return zset_score_lte_max(md->score[k], r);
}

static void check_score_range(struct zset *z, struct model *md, bool del)
{
    struct zset_score_range r;
    r.min = rnd_score();
    r.max = (rnd() & 3) ? rnd_score() : r.min;
    r.minex = rnd() & 1;
    r.maxex = rnd() & 1;
    size_t first = model_prefix(md, below_min, &r), end = model_prefix(md, within_max, &r);
    size_t count = end > first ? end - first : 0;
    size_t rf = 99, rl = 99;
    struct zset_node *f = zset_first_in_score(z, &r, &rf);
    struct zset_node *l = zset_last_in_score(z, &r, &rl);
    check_range(md, first, count, f, rf, l, rl, zset_count_score(z, &r));
    if (del) {
        EXPECT_EQ(zset_delete_score_range(z, &r), count);
        for (size_t i = 0; i < count; i++)
            model_remove_at(md, first);
    }
}

/* ---- lex ranges (on a set whose scores are all 0) ---- */

static void rnd_lex_bound(struct zset_lex_bound *b)
{
    uint64_t r = rnd() % 10;
    if (r == 0) {
        *b = (struct zset_lex_bound){ ZSET_LEX_NEG_INF, true, NULL, 0 };
    } else if (r == 1) {
        *b = (struct zset_lex_bound){ ZSET_LEX_POS_INF, true, NULL, 0 };
    } else {
        size_t k = rnd_below(POOL);
        *b = (struct zset_lex_bound){ ZSET_LEX_VALUE, rnd() & 1, pool[k], pool_len[k] };
    }
}

static bool lex_below_min(const struct model *md, size_t k, const void *r)
{
    (void)md;
    return !zset_lex_gte_min(pool[k], pool_len[k], r);
}

static bool lex_within_max(const struct model *md, size_t k, const void *r)
{
    (void)md;
    return zset_lex_lte_max(pool[k], pool_len[k], r);
}

static void check_lex_range(struct zset *z, struct model *md, bool del)
{
    struct zset_lex_range r;
    rnd_lex_bound(&r.min);
    rnd_lex_bound(&r.max);
    size_t first = model_prefix(md, lex_below_min, &r);
    size_t end = model_prefix(md, lex_within_max, &r);
    size_t count = end > first ? end - first : 0;
    size_t rf = 99, rl = 99;
    struct zset_node *f = zset_first_in_lex(z, &r, &rf);
    struct zset_node *l = zset_last_in_lex(z, &r, &rl);
    check_range(md, first, count, f, rf, l, rl, zset_count_lex(z, &r));
    if (del) {
        EXPECT_EQ(zset_delete_lex_range(z, &r), count);
        for (size_t i = 0; i < count; i++)
            model_remove_at(md, first);
    }
}

/* ---- one random operation on a set and its model ---- */

static void insert_both(struct zset *z, struct model *md, size_t k, double score)
{
    struct zset_node *n = zset_insert(z, score, pool[k], pool_len[k]);
    EXPECT_EQ(zset_find(z, pool[k], pool_len[k]), n);
    model_insert(md, score, k);
}

/* fixed_score: the lex set keeps every score at 0 (lex ranges need equal scores). */
static void random_op(struct zset *z, struct model *md, bool fixed_score)
{
    size_t k = rnd_below(POOL);
    const char *m = pool[k];
    size_t mlen = pool_len[k];
    uint64_t op = rnd() % 100;
    if (op < 40) { /* insert or update */
        double score = fixed_score ? 0 : rnd_score();
        long i = model_find(md, k);
        struct zset_node *n = zset_find(z, m, mlen);
        EXPECT_EQ(n != NULL, i >= 0);
        if (i < 0) {
            insert_both(z, md, k, score);
        } else {
            model_remove_at(md, (size_t)i);
            zset_update_score(z, n, score);
            EXPECT_EQ(zset_find(z, m, mlen), n); /* the node kept its address */
            EXPECT(zset_node_score(n) == score);
            model_insert(md, score, k);
        }
    } else if (op < 55) { /* delete */
        long i = model_find(md, k);
        EXPECT_EQ(zset_delete(z, m, mlen), i >= 0);
        if (i >= 0)
            model_remove_at(md, (size_t)i);
        EXPECT(zset_find(z, m, mlen) == NULL);
    } else if (op < 65) { /* rank both ways */
        long i = model_find(md, k);
        struct zset_node *n = zset_find(z, m, mlen);
        EXPECT_EQ(n != NULL, i >= 0);
        if (n)
            EXPECT_EQ(zset_rank(z, n), (size_t)i);
        if (md->n) {
            size_t r = rnd_below(md->n);
            assert_node_is(zset_at_rank(z, r), md, r);
        }
    } else if (op < 72) { /* a rank range */
        if (md->n) {
            size_t a = rnd_below(md->n), b = rnd_below(md->n);
            size_t s = a < b ? a : b, e = a < b ? b : a;
            assert_walk(zset_at_rank(z, s), zset_at_rank(z, e), md, s, e - s + 1);
        }
    } else if (op < 84) { /* a range by score or lex */
        if (fixed_score)
            check_lex_range(z, md, false);
        else
            check_score_range(z, md, false);
    } else if (op < 86) { /* delete a range by score or lex */
        if (fixed_score)
            check_lex_range(z, md, true);
        else
            check_score_range(z, md, true);
    } else if (op < 87) { /* delete a rank range */
        if (md->n) {
            size_t s = rnd_below(md->n);
            size_t e = s + rnd_below(8);
            if (e >= md->n)
                e = md->n - 1;
            EXPECT_EQ(zset_delete_rank_range(z, s, e), e - s + 1);
            for (size_t i = s; i <= e; i++)
                model_remove_at(md, s);
        }
    } else if (op < 94) { /* pop min */
        struct zset_node *n = zset_first(z);
        EXPECT_EQ(n != NULL, md->n > 0);
        if (n) {
            assert_node_is(n, md, 0);
            zset_delete_node(z, n);
            model_remove_at(md, 0);
        }
    } else { /* pop max */
        struct zset_node *n = zset_last(z);
        EXPECT_EQ(n != NULL, md->n > 0);
        if (n) {
            assert_node_is(n, md, md->n - 1);
            zset_delete_node(z, n);
            model_remove_at(md, md->n - 1);
        }
    }
    EXPECT_EQ(zset_len(z), md->n);
}

START_TEST(test_against_model)
{
    pool_init();
    struct zset *zs = zset_new(SEED), *zl = zset_new(SEED);
    struct model *ms = calloc(1, sizeof(*ms)), *ml = calloc(1, sizeof(*ml));
    ms->a = calloc(POOL, sizeof(size_t));
    ml->a = calloc(POOL, sizeof(size_t));
    size_t peak = 0;
    for (size_t i = 0; i < MODEL_OPS; i++) {
        random_op(zs, ms, false);
        random_op(zl, ml, true);
        /* Periods of growth and of drain, so the sets reach about the pool size (1200) and
         * go back down to a few members. */
        if ((i / 10000) % 2 == 0) {
            size_t k = rnd_below(POOL);
            if (!ms->present[k])
                insert_both(zs, ms, k, rnd_score());
            if (!ml->present[k])
                insert_both(zl, ml, k, 0);
        }
        if (ms->n > peak)
            peak = ms->n;
        if (i % FULL_CHECK_EVERY == 0) {
            full_check(zs, ms);
            full_check(zl, ml);
        }
    }
    full_check(zs, ms);
    full_check(zl, ml);
    EXPECT(peak > POOL / 2);
    zset_free(zs);
    zset_free(zl);
    free(ms->a);
    free(ml->a);
    free(ms);
    free(ml);
}
END_TEST

START_TEST(test_basics_and_order)
{
    struct zset *z = zset_new(SEED);
    ck_assert_uint_eq(zset_len(z), 0);
    ck_assert_ptr_null(zset_first(z));
    ck_assert_ptr_null(zset_last(z));
    ck_assert_ptr_null(zset_at_rank(z, 0));
    ck_assert_ptr_null(zset_find(z, "a", 1));
    ck_assert(!zset_delete(z, "a", 1));
    struct zset_score_range all = { -INFINITY, INFINITY, false, false };
    ck_assert_ptr_null(zset_first_in_score(z, &all, NULL));
    ck_assert_ptr_null(zset_last_in_score(z, &all, NULL));
    ck_assert_uint_eq(zset_count_score(z, &all), 0);
    ck_assert_uint_eq(zset_delete_score_range(z, &all), 0);

    /* Equal scores order by member bytes; a prefix comes first; binary members. */
    zset_insert(z, 1, "b", 1);
    zset_insert(z, 1, "a\0", 2);
    zset_insert(z, 1, "a", 1);
    zset_insert(z, 1, "", 0);
    zset_insert(z, 0.5, "zz", 2);
    zset_insert(z, INFINITY, "inf", 3);
    zset_insert(z, -INFINITY, "-inf", 4);
    const char *want[] = { "-inf", "zz", "", "a", "a\0", "b", "inf" };
    const size_t wlen[] = { 4, 2, 0, 1, 2, 1, 3 };
    const struct zset_node *n = zset_first(z);
    for (size_t i = 0; i < 7; i++, n = zset_node_next(n)) {
        ck_assert_uint_eq(zset_node_mlen(n), wlen[i]);
        ck_assert_mem_eq(zset_node_member(n), want[i], wlen[i]);
        ck_assert_uint_eq(zset_rank(z, n), i);
    }
    ck_assert_ptr_null(n);

    /* Exclusive bounds at infinity. */
    struct zset_score_range r = { -INFINITY, INFINITY, true, true };
    ck_assert_uint_eq(zset_count_score(z, &r), 5);
    r = (struct zset_score_range){ 1, 1, false, false };
    ck_assert_uint_eq(zset_count_score(z, &r), 4);
    r.minex = true;
    ck_assert_uint_eq(zset_count_score(z, &r), 0);
    r = (struct zset_score_range){ 2, 1, false, false };
    ck_assert_ptr_null(zset_first_in_score(z, &r, NULL));
    r = (struct zset_score_range){ -0.0, 0.75, false, false };
    ck_assert_uint_eq(zset_count_score(z, &r), 1);

    /* A score update keeps the node, moves it in the order. */
    struct zset_node *a = zset_find(z, "a", 1);
    zset_update_score(z, a, -5);
    ck_assert_ptr_eq(zset_find(z, "a", 1), a);
    ck_assert_uint_eq(zset_rank(z, a), 1);
    zset_update_score(z, a, 1); /* back between "" and "a\0" */
    ck_assert_uint_eq(zset_rank(z, a), 3);
    zset_update_score(z, a, 1);
    ck_assert_uint_eq(zset_rank(z, a), 3);

    zset_free(z);
}
END_TEST

START_TEST(test_lex_bounds)
{
    struct zset *z = zset_new(SEED);
    const char *ms[] = { "a", "b", "c", "d", "e" };
    for (size_t i = 0; i < 5; i++)
        zset_insert(z, 0, ms[i], 1);
    struct zset_lex_range r;
    r.min = (struct zset_lex_bound){ ZSET_LEX_NEG_INF, true, NULL, 0 };
    r.max = (struct zset_lex_bound){ ZSET_LEX_POS_INF, true, NULL, 0 };
    ck_assert_uint_eq(zset_count_lex(z, &r), 5);
    /* "-" "-" and "+" "+" and "+" "-" are empty. */
    r.max = r.min;
    ck_assert_uint_eq(zset_count_lex(z, &r), 0);
    r.min = (struct zset_lex_bound){ ZSET_LEX_POS_INF, true, NULL, 0 };
    r.max = r.min;
    ck_assert_uint_eq(zset_count_lex(z, &r), 0);
    r.max = (struct zset_lex_bound){ ZSET_LEX_NEG_INF, true, NULL, 0 };
    ck_assert_uint_eq(zset_count_lex(z, &r), 0);
    /* [b (d -> b c; (b [d -> c d; [c [c -> c; (c [c -> none; [d [b -> none. */
    r.min = (struct zset_lex_bound){ ZSET_LEX_VALUE, false, "b", 1 };
    r.max = (struct zset_lex_bound){ ZSET_LEX_VALUE, true, "d", 1 };
    size_t rk = 0;
    struct zset_node *f = zset_first_in_lex(z, &r, &rk);
    ck_assert_uint_eq(rk, 1);
    ck_assert_mem_eq(zset_node_member(f), "b", 1);
    ck_assert_uint_eq(zset_count_lex(z, &r), 2);
    r.min.ex = true;
    r.max.ex = false;
    ck_assert_uint_eq(zset_count_lex(z, &r), 2);
    r.min = (struct zset_lex_bound){ ZSET_LEX_VALUE, false, "c", 1 };
    r.max = r.min;
    ck_assert_uint_eq(zset_count_lex(z, &r), 1);
    r.min.ex = true;
    ck_assert_uint_eq(zset_count_lex(z, &r), 0);
    r.min = (struct zset_lex_bound){ ZSET_LEX_VALUE, false, "d", 1 };
    r.max = (struct zset_lex_bound){ ZSET_LEX_VALUE, false, "b", 1 };
    ck_assert_uint_eq(zset_count_lex(z, &r), 0);
    /* Bounds outside the set. */
    r.min = (struct zset_lex_bound){ ZSET_LEX_VALUE, false, "0", 1 };
    r.max = (struct zset_lex_bound){ ZSET_LEX_VALUE, false, "a", 1 };
    ck_assert_uint_eq(zset_count_lex(z, &r), 1);
    r.min = (struct zset_lex_bound){ ZSET_LEX_VALUE, true, "e", 1 };
    r.max = (struct zset_lex_bound){ ZSET_LEX_POS_INF, true, NULL, 0 };
    ck_assert_uint_eq(zset_count_lex(z, &r), 0);
    r.min = (struct zset_lex_bound){ ZSET_LEX_VALUE, false, "bb", 2 };
    ck_assert_uint_eq(zset_delete_lex_range(z, &r), 3);
    ck_assert_uint_eq(zset_len(z), 2);
    zset_free(z);
}
END_TEST

/* Bytes the allocator holds (in-use chunks); only meaningful without a sanitizer. */
#if defined(__SANITIZE_ADDRESS__)
#define HEAP_EXACT 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define HEAP_EXACT 0
#else
#define HEAP_EXACT 1
#endif
#else
#define HEAP_EXACT 1
#endif

static bool heap_checks; /* HEAP_EXACT and the tcache is off */

static size_t heap_used(void)
{
    struct mallinfo2 mi = mallinfo2();
    return mi.uordblks;
}

START_TEST(test_bytes_exact)
{
    char m[64];
    size_t before = heap_used();
    struct zset *z = zset_new(SEED);
    size_t empty = zset_bytes(z);
    ck_assert_uint_gt(empty, 0);
    if (heap_checks)
        ck_assert_uint_eq(heap_used() - before, zset_bytes(z));
    for (int i = 0; i < 3000; i++) {
        int n = snprintf(m, sizeof(m), "member-%d-%s", i, i % 7 ? "" : "with a longer tail");
        zset_insert(z, i % 13, m, (size_t)n);
        if (heap_checks && i % 97 == 0)
            ck_assert_uint_eq(heap_used() - before, zset_bytes(z));
    }
    for (int i = 0; i < 3000; i += 2) {
        int n = snprintf(m, sizeof(m), "member-%d-%s", i, i % 7 ? "" : "with a longer tail");
        zset_update_score(z, zset_find(z, m, (size_t)n), -i);
    }
    if (heap_checks)
        ck_assert_uint_eq(heap_used() - before, zset_bytes(z));
    struct zset *d = zset_dup(z);
    ck_assert_uint_eq(zset_len(d), 3000);
    if (heap_checks)
        ck_assert_uint_eq(heap_used() - before, zset_bytes(z) + zset_bytes(d));
    zset_free(d);
    struct zset_score_range r = { 0, 5, false, true };
    size_t removed = zset_delete_score_range(z, &r);
    ck_assert_uint_gt(removed, 0);
    zset_delete_rank_range(z, 10, 400);
    for (int i = 0; i < 3000; i++) {
        int n = snprintf(m, sizeof(m), "member-%d-%s", i, i % 7 ? "" : "with a longer tail");
        zset_delete(z, m, (size_t)n);
        if (heap_checks && i % 101 == 0)
            ck_assert_uint_eq(heap_used() - before, zset_bytes(z));
    }
    ck_assert_uint_eq(zset_len(z), 0);
    /* Empty again: only the struct, the (possibly grown) header and the empty index. */
    ck_assert_uint_ge(zset_bytes(z), empty);
    ck_assert_uint_le(zset_bytes(z), empty + ZSET_MAX_LEVEL * sizeof(struct zset_level));
    if (heap_checks)
        ck_assert_uint_eq(heap_used() - before, zset_bytes(z));
    zset_free(z);
    if (heap_checks)
        ck_assert_uint_eq(heap_used(), before);
}
END_TEST

START_TEST(test_value_ops_dup_compact)
{
    struct zset *z = zset_new(SEED);
    char m[128];
    ck_assert(zset_is_compact(z));
    for (int i = 0; i < ZSET_COMPACT_ENTRIES; i++) {
        int n = snprintf(m, sizeof(m), "m%d", i);
        zset_insert(z, i, m, (size_t)n);
    }
    ck_assert(zset_is_compact(z));
    zset_insert(z, 1000, "one too many", 12);
    ck_assert(!zset_is_compact(z));
    zset_delete(z, "one too many", 12);
    ck_assert(!zset_is_compact(z)); /* sticky, as Redis's encoding */
    zset_recompact(z);
    ck_assert(zset_is_compact(z));
    memset(m, 'x', ZSET_COMPACT_VALUE);
    zset_insert(z, 0, m, ZSET_COMPACT_VALUE);
    ck_assert(zset_is_compact(z) == false); /* 129 members */
    zset_delete(z, m, ZSET_COMPACT_VALUE);
    zset_recompact(z);
    ck_assert(zset_is_compact(z));
    zset_delete(z, "m0", 2);
    memset(m, 'y', ZSET_COMPACT_VALUE + 1);
    zset_insert(z, 0, m, ZSET_COMPACT_VALUE + 1);
    ck_assert(!zset_is_compact(z));
    zset_recompact(z);
    ck_assert(!zset_is_compact(z)); /* a member longer than 64 bytes */

    const struct store_value_ops *ops = &zset_value_ops;
    ck_assert_uint_eq(ops->len(z), zset_len(z));
    ck_assert_uint_eq(ops->bytes(z), zset_bytes(z));
    struct zset *d = ops->dup(z);
    ck_assert_uint_eq(zset_len(d), zset_len(z));
    ck_assert(!zset_is_compact(d));
    const struct zset_node *a = zset_first(z), *b = zset_first(d);
    for (; a; a = zset_node_next(a), b = zset_node_next(b)) {
        ck_assert_ptr_nonnull(b);
        ck_assert(zset_node_score(a) == zset_node_score(b));
        ck_assert_uint_eq(zset_node_mlen(a), zset_node_mlen(b));
        ck_assert_mem_eq(zset_node_member(a), zset_node_member(b), zset_node_mlen(a));
        ck_assert_ptr_eq(zset_find(d, zset_node_member(a), zset_node_mlen(a)), b);
    }
    ck_assert_ptr_null(b);
    zset_delete(d, "m5", 2); /* independent copies */
    ck_assert_ptr_nonnull(zset_find(z, "m5", 2));
    ops->free(d);
    ops->free(z);
}
END_TEST

struct scan_seen {
    unsigned char *seen;
    size_t calls;
};

static void scan_cb(void *ctx, const char *m, size_t mlen, double score)
{
    struct scan_seen *s = ctx;
    char buf[32];
    ck_assert_uint_lt(mlen, sizeof(buf));
    memcpy(buf, m, mlen); /* members are not NUL-terminated */
    buf[mlen] = '\0';
    int i = atoi(buf + 1);
    ck_assert_uint_eq(mlen, (size_t)snprintf(NULL, 0, "m%d", i));
    ck_assert(score == (double)(i * 2));
    s->seen[i]++;
    s->calls++;
}

START_TEST(test_scan_and_random)
{
    struct zset *z = zset_new(SEED);
    char m[32];
    enum { N = 2000 };
    for (int i = 0; i < N; i++) {
        int n = snprintf(m, sizeof(m), "m%d", i);
        zset_insert(z, i * 2, m, (size_t)n);
    }
    struct scan_seen s = { calloc(N, 1), 0 };
    uint64_t cursor = 0;
    size_t steps = 0;
    do {
        cursor = zset_scan(z, cursor, scan_cb, &s);
        ck_assert_uint_lt(++steps, 1u << 20);
    } while (cursor);
    for (int i = 0; i < N; i++)
        ck_assert_uint_eq(s.seen[i], 1); /* a stable table: exactly once */
    for (int i = 0; i < 1000; i++) {
        struct zset_node *n = zset_random(z);
        ck_assert_ptr_nonnull(n);
        ck_assert_ptr_eq(zset_find(z, zset_node_member(n), zset_node_mlen(n)), n);
    }
    free(s.seen);
    zset_free(z);
    struct zset *e = zset_new(SEED);
    ck_assert_ptr_null(zset_random(e));
    ck_assert_uint_eq(zset_scan(e, 0, scan_cb, NULL), 0);
    zset_free(e);
}
END_TEST

/* A leaderboard of a million members: ranks and rank lookups work (no timing here). */
START_TEST(test_million_members_rank)
{
    struct zset *z = zset_new(SEED);
    char m[32];
    for (long i = 0; i < BIG_N; i++) {
        /* Scores are a permutation of 0..BIG_N-1 (i * 7919 mod BIG_N: 7919 is prime and does
         * not divide 10^6), so the member of rank r has score r. */
        long score = (i * 7919) % BIG_N;
        int n = snprintf(m, sizeof(m), "player:%ld", i);
        zset_insert(z, (double)score, m, (size_t)n);
    }
    ck_assert_uint_eq(zset_len(z), BIG_N);
    for (int k = 0; k < BIG_SAMPLES; k++) {
        long i = (long)rnd_below(BIG_N);
        int n = snprintf(m, sizeof(m), "player:%ld", i);
        struct zset_node *node = zset_find(z, m, (size_t)n);
        ck_assert_ptr_nonnull(node);
        size_t want = (size_t)((i * 7919) % BIG_N);
        ck_assert_uint_eq(zset_rank(z, node), want);
        ck_assert_ptr_eq(zset_at_rank(z, want), node);
        struct zset_score_range r = { (double)want, INFINITY, true, false };
        ck_assert_uint_eq(zset_count_score(z, &r), BIG_N - 1 - want);
    }
    /* Updates move members; ranks follow. */
    for (int k = 0; k < BIG_SAMPLES; k++) {
        long i = (long)rnd_below(BIG_N);
        int n = snprintf(m, sizeof(m), "player:%ld", i);
        struct zset_node *node = zset_find(z, m, (size_t)n);
        zset_update_score(z, node, (double)BIG_N + k); /* to the top, in order */
        ck_assert_uint_eq(zset_rank(z, node), BIG_N - 1);
        ck_assert_ptr_eq(zset_last(z), node);
    }
    zset_free(z);
}
END_TEST

int main(int argc, char **argv)
{
    /* glibc's tcache keeps freed chunks that mallinfo2 still counts as in use: run the tests
     * with it off so the heap totals are exact (one re-exec, only in the plain build). */
    if (HEAP_EXACT && argc >= 1 && !getenv("ZSET_TEST_NO_TCACHE")) {
        setenv("ZSET_TEST_NO_TCACHE", "1", 1);
        setenv("GLIBC_TUNABLES", "glibc.malloc.tcache_count=0", 1);
        execv("/proc/self/exe", argv);
        /* exec failed: run as is (the heap checks are then skipped) */
    }
    heap_checks = HEAP_EXACT && getenv("ZSET_TEST_NO_TCACHE") != NULL;
    Suite *su = suite_create("zset");
    TCase *tc = tcase_create("structure");
    tcase_add_test(tc, test_basics_and_order);
    tcase_add_test(tc, test_lex_bounds);
    tcase_add_test(tc, test_bytes_exact);
    tcase_add_test(tc, test_value_ops_dup_compact);
    tcase_add_test(tc, test_scan_and_random);
    suite_add_tcase(su, tc);
    TCase *model = tcase_create("model");
    tcase_set_timeout(model, 600);
    tcase_add_test(model, test_against_model);
    suite_add_tcase(su, model);
    TCase *big = tcase_create("million");
    tcase_set_timeout(big, 600);
    tcase_add_test(big, test_million_members_rank);
    suite_add_tcase(su, big);
    SRunner *sr = srunner_create(su);
    srunner_run_all(sr, CK_ENV);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
