/* Unit tests for cache/set.c: add/remove/contains/len with binary and empty members, seeds,
 * byte accounting back to the empty set, dup, iteration (also removing the member just
 * returned), SSCAN coverage (exactly once on a stable set, at least once across resizes), and the
 * random operations' properties: picks are members, reproducible from the same state, uniform
 * over the members (also those sharing a bucket, and in small sets picked by position); pops
 * remove each member once; distinct samples have the asked size, no repeats, and (both
 * strategies) take every member about equally often. Last, the store ops: a set added to a store
 * is charged, copied, re-charged and freed (ASan: no leaks). Loops count their failures and
 * assert once: Check reports every assertion to its parent, which is slow in loops of millions. */
#include "cache/set.h"
#include "cache/store.h"
#include "conf/config.h"

#include <check.h>
#include <malloc.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NOW 1000000
#define NMEMBERS 3000

static const uint8_t SEED[16] = { 9, 8, 7, 6, 5, 4, 3, 2, 1, 0, 1, 2, 3, 4, 5, 6 };

/* Member i: "m<i>", then a NUL and a byte, so every member is binary. */
static size_t member_of(int i, char *buf)
{
    int n = snprintf(buf, 32, "m%d", i);
    buf[n] = '\0';
    buf[n + 1] = (char)(i & 0xff);
    return (size_t)n + 2;
}

static int index_of(const char *m)
{
    return atoi(m + 1);
}

static struct set_value *filled(int n)
{
    struct set_value *s = set_create(SEED, sizeof(SEED));
    char buf[32];
    int dup = 0;
    for (int i = 0; i < n; i++) {
        size_t len = member_of(i, buf);
        dup += !set_add(s, buf, len);
    }
    ck_assert_int_eq(dup, 0);
    ck_assert_uint_eq(set_len(s), (size_t)n);
    return s;
}

/* How often each member index was handed to a callback; `bad` counts anything else. */
struct tally {
    int *seen;
    int n;
    size_t calls, bad;
};

static void tally_cb(void *ctx, const char *m, size_t len)
{
    struct tally *t = ctx;
    int i = len >= 2 ? index_of(m) : -1;
    if (i < 0 || i >= t->n) {
        t->bad++;
        return;
    }
    t->seen[i]++;
    t->calls++;
}

static struct tally tally_new(int n)
{
    struct tally t = { calloc((size_t)n, sizeof(int)), n, 0, 0 };
    return t;
}

/* Every member seen exactly `times` times (times < 0: any), nothing else; frees the counts. */
static void tally_check_free(struct tally *t, int times)
{
    int wrong = 0;
    for (int i = 0; i < t->n; i++)
        wrong += times >= 0 && t->seen[i] != times;
    ck_assert_int_eq(wrong, 0);
    ck_assert_uint_eq(t->bad, 0);
    free(t->seen);
}

/* A count from fair draws: within 5 standard deviations (binomial, sd <= sqrt(expect)) of
 * expect. The generators are seeded, so a pass is reproducible. */
static void near(int got, double expect)
{
    double tol = 5.0 * sqrt(expect) + 1.0;
    if (!(got > expect - tol && got < expect + tol))
        ck_abort_msg("count %d, expected %.1f +- %.1f", got, expect, tol);
}

START_TEST(test_add_remove_contains)
{
    struct set_value *s = set_create("run-id", 6);
    ck_assert_uint_eq(set_len(s), 0);
    ck_assert(!set_contains(s, "a", 1));
    ck_assert(!set_remove(s, "a", 1));

    ck_assert(set_add(s, "a", 1));
    ck_assert(!set_add(s, "a", 1));
    ck_assert(set_add(s, "A", 1));
    ck_assert(set_add(s, "a\0b", 3));
    ck_assert(set_add(s, "a\0c", 3));
    ck_assert(set_add(s, "", 0));
    ck_assert(!set_add(s, "", 0));
    ck_assert_uint_eq(set_len(s), 5);
    ck_assert(set_contains(s, "a", 1));
    ck_assert(set_contains(s, "", 0));
    ck_assert(set_contains(s, "a\0b", 3));
    ck_assert(!set_contains(s, "a\0", 2));
    ck_assert(!set_contains(s, "b", 1));

    ck_assert(set_remove(s, "a\0b", 3));
    ck_assert(!set_remove(s, "a\0b", 3));
    ck_assert(set_contains(s, "a\0c", 3));
    ck_assert(set_remove(s, "", 0));
    ck_assert(!set_contains(s, "", 0));
    ck_assert_uint_eq(set_len(s), 3);
    set_free(s);
    set_free(NULL);
}
END_TEST

START_TEST(test_many_members_grow_and_shrink)
{
    struct set_value *s = filled(NMEMBERS);
    char buf[32];
    int wrong = 0;
    for (int i = 0; i < NMEMBERS; i++) {
        size_t len = member_of(i, buf);
        wrong += !set_contains(s, buf, len) + set_add(s, buf, len);
    }
    for (int i = 0; i < NMEMBERS; i += 2) {
        size_t len = member_of(i, buf);
        wrong += !set_remove(s, buf, len);
    }
    ck_assert_uint_eq(set_len(s), NMEMBERS / 2);
    for (int i = 0; i < NMEMBERS; i++) {
        size_t len = member_of(i, buf);
        wrong += set_contains(s, buf, len) != (i % 2 == 1);
    }
    ck_assert_int_eq(wrong, 0);
    set_free(s);
}
END_TEST

START_TEST(test_bytes)
{
    struct set_value *s = set_create(SEED, sizeof(SEED));
    size_t empty = set_bytes(s);
    ck_assert_uint_gt(empty, 0);
    char buf[32];
    size_t prev = empty;
    int flat = 0;
    for (int i = 0; i < 100; i++) {
        size_t len = member_of(i, buf);
        set_add(s, buf, len);
        flat += set_bytes(s) <= prev; /* every member is an allocation */
        prev = set_bytes(s);
    }
    ck_assert_int_eq(flat, 0);
    set_add(s, "m0\0\0", 4); /* already there: nothing allocated */
    ck_assert_uint_eq(set_bytes(s), prev);
    for (int i = 0; i < 100; i++) {
        size_t len = member_of(i, buf);
        set_remove(s, buf, len);
    }
    ck_assert_uint_eq(set_bytes(s), empty);
    set_free(s);
}
END_TEST

START_TEST(test_seed)
{
    /* the same seed bytes give the same table (same walk order); others a different one */
    struct set_value *a = set_create("seed-one", 8), *b = set_create("seed-one", 8);
    struct set_value *c = set_create("seed-two", 8);
    char buf[32];
    for (int i = 0; i < 64; i++) {
        size_t len = member_of(i, buf);
        set_add(a, buf, len);
        set_add(b, buf, len);
        set_add(c, buf, len);
    }
    struct set_iter ia, ib, ic;
    struct set_member ma, mb, mc;
    set_iter_start(&ia);
    set_iter_start(&ib);
    set_iter_start(&ic);
    int same_differ = 0, differ = 0;
    while (set_iter_next(a, &ia, &ma)) {
        ck_assert(set_iter_next(b, &ib, &mb));
        ck_assert(set_iter_next(c, &ic, &mc));
        same_differ += ma.len != mb.len || memcmp(ma.ptr, mb.ptr, ma.len) != 0;
        differ += ma.len != mc.len || memcmp(ma.ptr, mc.ptr, ma.len) != 0;
    }
    ck_assert(!set_iter_next(b, &ib, &mb));
    ck_assert_int_eq(same_differ, 0);
    ck_assert_int_gt(differ, 0);
    set_free(a);
    set_free(b);
    set_free(c);
}
END_TEST

START_TEST(test_dup)
{
    struct set_value *s = filled(500);
    struct set_value *d = set_dup(s);
    ck_assert_ptr_ne(d, s);
    ck_assert_uint_eq(set_len(d), 500);
    /* the same allocations, up to the allocator's rounding of each */
    ck_assert_uint_gt(set_bytes(d), set_bytes(s) / 2);
    ck_assert_uint_lt(set_bytes(d), set_bytes(s) * 2);
    char buf[32];
    int missing = 0;
    for (int i = 0; i < 500; i++) {
        size_t len = member_of(i, buf);
        missing += !set_contains(d, buf, len);
    }
    ck_assert_int_eq(missing, 0);
    /* independent: changing one leaves the other */
    ck_assert(set_add(d, "new", 3));
    ck_assert(!set_contains(s, "new", 3));
    size_t len = member_of(7, buf);
    ck_assert(set_remove(s, buf, len));
    ck_assert(set_contains(d, buf, len));
    set_free(s);
    ck_assert_uint_eq(set_len(d), 501);
    set_free(d);
}
END_TEST

START_TEST(test_iterate_once)
{
    struct set_value *s = filled(NMEMBERS);
    struct tally t = tally_new(NMEMBERS);
    struct set_iter it;
    struct set_member m;
    set_iter_start(&it);
    while (set_iter_next(s, &it, &m))
        tally_cb(&t, m.ptr, m.len);
    ck_assert(!set_iter_next(s, &it, &m)); /* stays at the end */
    ck_assert_uint_eq(t.calls, NMEMBERS);
    tally_check_free(&t, 1);

    /* an empty set yields nothing */
    struct set_value *e = set_create(SEED, sizeof(SEED));
    set_iter_start(&it);
    ck_assert(!set_iter_next(e, &it, &m));
    set_free(e);
    set_free(s);
}
END_TEST

START_TEST(test_iterate_removing_each)
{
    /* removing the member just returned (the table halves on the way) visits each once */
    struct set_value *s = filled(NMEMBERS);
    struct tally t = tally_new(NMEMBERS);
    struct set_iter it;
    struct set_member m;
    set_iter_start(&it);
    int wrong = 0;
    while (set_iter_next(s, &it, &m)) {
        char copy[32];
        memcpy(copy, m.ptr, m.len);
        tally_cb(&t, copy, m.len);
        if (index_of(copy) % 3 != 0)
            wrong += !set_remove(s, copy, m.len);
    }
    ck_assert_int_eq(wrong, 0);
    ck_assert_uint_eq(set_len(s), (NMEMBERS + 2) / 3);
    tally_check_free(&t, 1);
    set_free(s);
}
END_TEST

START_TEST(test_scan_stable_exactly_once)
{
    struct set_value *s = filled(NMEMBERS);
    struct tally t = tally_new(NMEMBERS);
    uint64_t cursor = 0;
    size_t steps = 0;
    do {
        cursor = set_scan(s, cursor, tally_cb, &t);
    } while (cursor != 0 && ++steps < (1u << 20));
    ck_assert_uint_eq(cursor, 0);
    tally_check_free(&t, 1);
    set_free(s);
}
END_TEST

START_TEST(test_scan_across_resizes)
{
    /* members present for the whole walk are seen at least once while the set grows and
     * shrinks between steps */
    int keep = 1000, extra = 8000;
    struct set_value *s = filled(keep);
    struct tally t = tally_new(keep + extra);
    char buf[32];
    uint64_t cursor = 0;
    size_t steps = 0;
    int next_extra = keep;
    do {
        cursor = set_scan(s, cursor, tally_cb, &t);
        steps++;
        if (steps % 3 == 0 && next_extra < keep + extra) {
            for (int k = 0; k < 200 && next_extra < keep + extra; k++, next_extra++) {
                size_t len = member_of(next_extra, buf);
                set_add(s, buf, len);
            }
        } else if (steps % 7 == 0 && next_extra > keep) {
            for (int k = 0; k < 300 && next_extra > keep; k++) {
                size_t len = member_of(--next_extra, buf);
                set_remove(s, buf, len);
            }
        }
    } while (cursor != 0 && steps < (1u << 20));
    ck_assert_uint_eq(cursor, 0);
    int unseen = 0;
    for (int i = 0; i < keep; i++)
        unseen += t.seen[i] < 1;
    ck_assert_int_eq(unseen, 0);
    tally_check_free(&t, -1);
    set_free(s);
}
END_TEST

START_TEST(test_random_member)
{
    struct set_value *e = set_create(SEED, sizeof(SEED));
    uint64_t rng = 0; /* 0 is replaced by a valid state */
    struct set_member m;
    ck_assert(!set_random(e, &rng, &m));
    ck_assert_uint_ne(rng, 0);
    set_free(e);

    int n = 20, draws = 40000;
    struct set_value *s = filled(n);
    struct tally t = tally_new(n);
    rng = 12345;
    int misses = 0;
    for (int i = 0; i < draws; i++) {
        if (!set_random(s, &rng, &m) || !set_contains(s, m.ptr, m.len))
            misses++;
        else
            tally_cb(&t, m.ptr, m.len);
    }
    ck_assert_int_eq(misses, 0);
    ck_assert_uint_eq(set_len(s), (size_t)n); /* nothing removed */
    for (int i = 0; i < n; i++)
        near(t.seen[i], (double)draws / n);
    tally_check_free(&t, -1);

    /* the same state gives the same picks */
    uint64_t r1 = 99, r2 = 99;
    int differ = 0;
    for (int i = 0; i < 100; i++) {
        struct set_member a, b;
        set_random(s, &r1, &a);
        set_random(s, &r2, &b);
        differ += a.ptr != b.ptr;
    }
    ck_assert_int_eq(differ, 0);

    /* one member: always it */
    struct set_value *one = set_create(SEED, sizeof(SEED));
    set_add(one, "x", 1);
    int other = 0;
    for (int i = 0; i < 50; i++)
        other += !set_random(one, &rng, &m) || m.len != 1 || m.ptr[0] != 'x';
    ck_assert_int_eq(other, 0);
    set_free(one);
    set_free(s);
}
END_TEST

START_TEST(test_random_uniform_large)
{
    /* a large set has chains of several members per bucket: each member still comes up about
     * as often as any other */
    int n = 1000, draws = 400000;
    struct set_value *s = filled(n);
    struct tally t = tally_new(n);
    uint64_t rng = 5;
    struct set_member m;
    for (int i = 0; i < draws; i++)
        if (set_random(s, &rng, &m))
            tally_cb(&t, m.ptr, m.len);
    ck_assert_uint_eq(t.calls, (size_t)draws);
    for (int i = 0; i < n; i++)
        near(t.seen[i], (double)draws / n);
    tally_check_free(&t, -1);
    set_free(s);
}
END_TEST

START_TEST(test_random_many)
{
    /* independent picks with repeats, uniform, for a small set (picked by position) and a
     * larger one (rejection sampling) */
    int sizes[] = { 1, 5, 16, 17, 200 };
    for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
        int n = sizes[k];
        size_t count = (size_t)n * 300;
        struct set_value *s = filled(n);
        struct tally t = tally_new(n);
        uint64_t rng = 77 + k;
        ck_assert_uint_eq(set_random_many(s, &rng, count, tally_cb, &t), count);
        ck_assert_uint_eq(t.calls, count);
        ck_assert_uint_eq(set_len(s), (size_t)n);
        for (int i = 0; i < n; i++)
            near(t.seen[i], 300.0);
        tally_check_free(&t, -1);
        set_free(s);
    }
    struct set_value *e = set_create(SEED, sizeof(SEED));
    uint64_t rng = 1;
    struct tally t = tally_new(1);
    ck_assert_uint_eq(set_random_many(e, &rng, 10, tally_cb, &t), 0);
    tally_check_free(&t, 0);
    set_free(e);
}
END_TEST

struct pop_check {
    struct set_value *s;
    struct tally t;
};

static void pop_cb(void *ctx, const char *m, size_t len)
{
    struct pop_check *p = ctx;
    if (!set_contains(p->s, m, len)) /* fn runs before the removal */
        p->t.bad++;
    tally_cb(&p->t, m, len);
}

START_TEST(test_pop_random)
{
    struct set_value *e = set_create(SEED, sizeof(SEED));
    size_t empty_bytes = set_bytes(e);
    set_free(e);
    struct pop_check p = { filled(NMEMBERS), tally_new(NMEMBERS) };
    uint64_t rng = 7;
    int wrong = 0;
    for (int i = 0; i < NMEMBERS; i++) {
        wrong += !set_pop_random(p.s, &rng, pop_cb, &p);
        wrong += set_len(p.s) != (size_t)(NMEMBERS - i - 1);
    }
    ck_assert_int_eq(wrong, 0);
    ck_assert(!set_pop_random(p.s, &rng, pop_cb, &p));
    ck_assert_uint_eq(set_bytes(p.s), empty_bytes);
    tally_check_free(&p.t, 1);
    set_free(p.s);
}
END_TEST

START_TEST(test_pop_random_spread)
{
    /* the first pop of a fresh 10-member set falls on every member about equally often */
    int n = 10, trials = 5000;
    struct tally t = tally_new(n);
    struct set_value *proto = filled(n);
    uint64_t rng = 31337;
    for (int k = 0; k < trials; k++) {
        struct set_value *s = set_dup(proto);
        set_pop_random(s, &rng, tally_cb, &t);
        set_free(s);
    }
    set_free(proto);
    ck_assert_uint_eq(t.calls, (size_t)trials);
    for (int i = 0; i < n; i++)
        near(t.seen[i], (double)trials / n);
    tally_check_free(&t, -1);
}
END_TEST

/* count distinct members from an n-member set, trials times: each call gives exactly
 * min(count, n) distinct members and leaves the set alone; each member's share is near
 * count/n. */
static void check_distinct(int n, size_t count, int trials, uint64_t rng)
{
    struct set_value *s = filled(n);
    struct tally total = tally_new(n), one = tally_new(n);
    size_t want = count < (size_t)n ? count : (size_t)n;
    int wrong = 0;
    for (int k = 0; k < trials; k++) {
        memset(one.seen, 0, (size_t)n * sizeof(int));
        one.calls = 0;
        size_t got = set_random_distinct(s, &rng, count, tally_cb, &one);
        wrong += got != want || one.calls != want;
        for (int i = 0; i < n; i++) {
            wrong += one.seen[i] > 1; /* distinct */
            total.seen[i] += one.seen[i];
        }
    }
    ck_assert_int_eq(wrong, 0);
    tally_check_free(&one, -1);
    ck_assert_uint_eq(set_len(s), (size_t)n);
    double expect = (double)trials * (double)want / n;
    for (int i = 0; i < n; i++)
        near(total.seen[i], expect);
    tally_check_free(&total, -1);
    set_free(s);
}

START_TEST(test_distinct_whole_set)
{
    check_distinct(50, 50, 3, 1);
    check_distinct(50, 1000, 3, 2);
    check_distinct(1, 1, 3, 3);
    struct set_value *s = filled(5);
    uint64_t rng = 4;
    struct tally t = tally_new(5);
    ck_assert_uint_eq(set_random_distinct(s, &rng, 0, tally_cb, &t), 0);
    tally_check_free(&t, 0);
    set_free(s);
    struct set_value *e = set_create(SEED, sizeof(SEED));
    t = tally_new(1);
    ck_assert_uint_eq(set_random_distinct(e, &rng, 5, tally_cb, &t), 0);
    tally_check_free(&t, 0);
    set_free(e);
}
END_TEST

START_TEST(test_distinct_walk_strategy)
{
    /* count * 3 > len: one selection walk */
    check_distinct(30, 20, 2000, 11);
    check_distinct(30, 11, 2000, 12);
    check_distinct(30, 29, 500, 13);
}
END_TEST

START_TEST(test_distinct_draw_strategy)
{
    /* count * 3 <= len: random draws into a temporary dict */
    check_distinct(30, 10, 2000, 21);
    check_distinct(300, 5, 4000, 22);
    check_distinct(300, 1, 30000, 23);
    check_distinct(NMEMBERS, 100, 3000, 24);
}
END_TEST

START_TEST(test_store_ops)
{
    struct store_options o;
    memset(&o, 0, sizeof(o));
    o.policy = POLICY_ALLKEYS_LRU;
    o.samples = 5;
    o.databases = 2;
    struct store *st = store_create(&o);
    store_register_type(st, STORE_SET, &set_value_ops);
    uint64_t base = store_used_bytes(st);

    struct set_value *s = filled(100);
    size_t charged = set_bytes(s);
    struct store_entry *e = store_add_value(st, 0, "k", 1, STORE_SET, s, NOW);
    ck_assert_ptr_nonnull(e);
    ck_assert_ptr_eq(store_value(e), s);
    ck_assert_uint_ge(store_used_bytes(st), base + charged);
    uint64_t with_set = store_used_bytes(st);

    /* grow in place, then re-charge */
    char buf[32];
    for (int i = 100; i < 400; i++) {
        size_t len = member_of(i, buf);
        set_add(s, buf, len);
    }
    e = store_value_changed(st, e);
    ck_assert_ptr_nonnull(e);
    ck_assert_uint_eq(store_used_bytes(st), with_set - charged + set_bytes(s));

    /* COPY duplicates through the ops */
    struct store_entry *c = store_copy(st, e, 1, "k2", 2, NOW);
    struct set_value *cs = store_value(c);
    ck_assert_ptr_ne(cs, s);
    ck_assert_uint_eq(set_len(cs), 400);

    /* emptied in place: the key goes away */
    e = store_find(st, 0, "k", 1, NOW, 0);
    struct set_iter it;
    struct set_member m;
    set_iter_start(&it);
    while (set_iter_next(s, &it, &m))
        set_remove(s, m.ptr, m.len);
    ck_assert_ptr_null(store_value_changed(st, e));
    ck_assert_ptr_null(store_find(st, 0, "k", 1, NOW, 0));
    ck_assert_uint_eq(store_count(st, 0), 0);

    /* the copy is freed by delete: only the tables are left */
    ck_assert(store_delete(st, 1, "k2", 2, NOW));
    ck_assert_uint_eq(store_count(st, -1), 0);
    ck_assert_uint_lt(store_used_bytes(st), with_set - charged);
    store_add_value(st, 0, "z", 1, STORE_SET, filled(3), NOW);
    store_destroy(st); /* frees the remaining set (ASan would report a leak) */
}
END_TEST

int main(void)
{
    Suite *su = suite_create("set");
    TCase *tc = tcase_create("set");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_add_remove_contains);
    tcase_add_test(tc, test_many_members_grow_and_shrink);
    tcase_add_test(tc, test_bytes);
    tcase_add_test(tc, test_seed);
    tcase_add_test(tc, test_dup);
    tcase_add_test(tc, test_iterate_once);
    tcase_add_test(tc, test_iterate_removing_each);
    tcase_add_test(tc, test_scan_stable_exactly_once);
    tcase_add_test(tc, test_scan_across_resizes);
    tcase_add_test(tc, test_random_member);
    tcase_add_test(tc, test_random_uniform_large);
    tcase_add_test(tc, test_random_many);
    tcase_add_test(tc, test_pop_random);
    tcase_add_test(tc, test_pop_random_spread);
    tcase_add_test(tc, test_distinct_whole_set);
    tcase_add_test(tc, test_distinct_walk_strategy);
    tcase_add_test(tc, test_distinct_draw_strategy);
    tcase_add_test(tc, test_store_ops);
    suite_add_tcase(su, tc);
    SRunner *sr = srunner_create(su);
    srunner_run_all(sr, CK_ENV);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
