/* Unit tests for cache/fieldmap.c: set/find/delete/replace with binary keys and values, growth and
 * shrink, SCAN coverage (exactly once on a stable table, at least once across resizes), random
 * picks, dup, iteration that deletes the entry just returned, and exact byte accounting back to
 * the empty dict. */
#include "cache/fieldmap.h"

#include <check.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const uint8_t SEED[16] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16 };

#define NKEYS 5000

/* Key i: "k<i>" followed by a NUL and a byte, so every key is binary. */
static size_t key_of(int i, char *buf)
{
    int n = snprintf(buf, 32, "k%d", i);
    buf[n] = '\0';
    buf[n + 1] = (char)(i & 0xff);
    return (size_t)n + 2;
}

static int index_of(const struct fieldmap_entry *e)
{
    return atoi(fieldmap_key(e) + 1);
}

START_TEST(test_set_find_delete_replace)
{
    struct fieldmap *d = fieldmap_new(SEED);
    size_t empty = fieldmap_bytes(d);
    ck_assert_uint_gt(empty, 0);
    ck_assert_ptr_null(fieldmap_find(d, "a", 1));
    ck_assert(!fieldmap_delete(d, "a", 1));

    bool created = false;
    const char k1[] = { 'a', '\0', 'b' }, v1[] = { '\0', 'x', '\0', 'y' };
    struct fieldmap_entry *e = fieldmap_set(d, k1, 3, v1, 4, &created);
    ck_assert(created);
    ck_assert_uint_eq(e->klen, 3);
    ck_assert_uint_eq(e->vlen, 4);
    ck_assert_mem_eq(fieldmap_key(e), k1, 3);
    ck_assert_mem_eq(fieldmap_val(e), v1, 4);
    ck_assert_int_eq(fieldmap_val(e)[4], '\0');
    ck_assert_uint_eq(fieldmap_len(d), 1);
    ck_assert_ptr_null(fieldmap_find(d, "a", 1));
    ck_assert_ptr_null(fieldmap_find(d, "a\0c", 3));
    ck_assert_ptr_eq(fieldmap_find(d, k1, 3), e);

    /* the empty key and the empty value are ordinary */
    e = fieldmap_set(d, "", 0, "", 0, &created);
    ck_assert(created);
    ck_assert_uint_eq(fieldmap_len(d), 2);
    ck_assert_ptr_eq(fieldmap_find(d, "", 0), e);
    ck_assert_uint_eq(e->vlen, 0);

    /* replace: same length, longer, shorter */
    e = fieldmap_set(d, k1, 3, "wxyz", 4, &created);
    ck_assert(!created);
    ck_assert_mem_eq(fieldmap_val(e), "wxyz", 4);
    char big[300];
    memset(big, 'B', sizeof(big));
    e = fieldmap_set(d, k1, 3, big, sizeof(big), &created);
    ck_assert(!created);
    ck_assert_uint_eq(e->vlen, sizeof(big));
    ck_assert_mem_eq(fieldmap_val(e), big, sizeof(big));
    ck_assert_int_eq(fieldmap_val(e)[sizeof(big)], '\0');
    ck_assert_ptr_eq(fieldmap_find(d, k1, 3), e);
    e = fieldmap_set(d, k1, 3, "s", 1, NULL);
    ck_assert_uint_eq(e->vlen, 1);
    ck_assert_mem_eq(fieldmap_key(e), k1, 3);
    ck_assert_int_eq(fieldmap_val(e)[0], 's');
    ck_assert_int_eq(fieldmap_val(e)[1], '\0');
    ck_assert_uint_eq(fieldmap_len(d), 2);

    /* in-place value change of the same length */
    memcpy(fieldmap_val_mut(e), "t", 1);
    ck_assert_int_eq(fieldmap_val(fieldmap_find(d, k1, 3))[0], 't');

    ck_assert(fieldmap_delete(d, k1, 3));
    ck_assert(!fieldmap_delete(d, k1, 3));
    ck_assert_ptr_null(fieldmap_find(d, k1, 3));
    ck_assert(fieldmap_delete(d, "", 0));
    ck_assert_uint_eq(fieldmap_len(d), 0);
    ck_assert_uint_eq(fieldmap_bytes(d), empty);
    fieldmap_free(d);
}
END_TEST

START_TEST(test_growth_and_shrink)
{
    struct fieldmap *d = fieldmap_new(SEED);
    size_t empty = fieldmap_bytes(d), prev = empty;
    char k[32];
    for (int i = 0; i < NKEYS; i++) {
        size_t kl = key_of(i, k);
        bool created = false;
        fieldmap_set(d, k, kl, &i, sizeof(i), &created);
        ck_assert(created);
        ck_assert_uint_gt(fieldmap_bytes(d), prev);
        prev = fieldmap_bytes(d);
    }
    ck_assert_uint_eq(fieldmap_len(d), NKEYS);
    for (int i = 0; i < NKEYS; i++) {
        size_t kl = key_of(i, k);
        struct fieldmap_entry *e = fieldmap_find(d, k, kl);
        ck_assert_ptr_nonnull(e);
        int v;
        memcpy(&v, fieldmap_val(e), sizeof(v));
        ck_assert_int_eq(v, i);
    }
    /* a full table of 5000 small entries costs well under 100 bytes each */
    ck_assert_uint_lt(fieldmap_bytes(d), (size_t)NKEYS * 100);
    /* delete down to a few: lookups keep working across every halving */
    for (int i = 0; i < NKEYS - 3; i++) {
        size_t kl = key_of(i, k);
        ck_assert(fieldmap_delete(d, k, kl));
        if (i % 499 == 0) {
            for (int j = i + 1; j < NKEYS; j += 97) {
                size_t jl = key_of(j, k);
                ck_assert_ptr_nonnull(fieldmap_find(d, k, jl));
            }
        }
    }
    ck_assert_uint_eq(fieldmap_len(d), 3);
    ck_assert_uint_lt(fieldmap_bytes(d), 1000);
    for (int i = NKEYS - 3; i < NKEYS; i++) {
        size_t kl = key_of(i, k);
        ck_assert_ptr_nonnull(fieldmap_find(d, k, kl));
        ck_assert(fieldmap_delete(d, k, kl));
    }
    ck_assert_uint_eq(fieldmap_len(d), 0);
    ck_assert_uint_eq(fieldmap_bytes(d), empty);
    /* usable again after emptying */
    fieldmap_set(d, "x", 1, "y", 1, NULL);
    ck_assert_ptr_nonnull(fieldmap_find(d, "x", 1));
    fieldmap_free(d);
}
END_TEST

struct seen {
    int *count;
};

static void count_cb(void *ctx, const struct fieldmap_entry *e)
{
    struct seen *s = ctx;
    s->count[index_of(e)]++;
}

/* fieldmap_bytes = the empty dict + one bucket array of a power-of-two size + every entry, each
 * counted as malloc_usable_size + a chunk header (entries checked exactly, the array by range). */
static void assert_bytes_exact(struct fieldmap *d, size_t empty)
{
    size_t entries = 0;
    struct fieldmap_iter it = { 0, NULL, NULL };
    struct fieldmap_entry *e;
    while ((e = fieldmap_next(d, &it)) != NULL)
        entries += malloc_usable_size(e) + sizeof(size_t);
    size_t rest = fieldmap_bytes(d) - empty - entries;
    bool matched = false;
    /* an array of n pointers: usable size n * 8 plus glibc's rounding (under 32 bytes) */
    for (size_t n = 4; n <= ((size_t)1 << 20) && !matched; n *= 2)
        matched = rest >= n * sizeof(void *) + sizeof(size_t) &&
                  rest < n * sizeof(void *) + sizeof(size_t) + 32;
    ck_assert_msg(matched, "bucket bytes %zu match no table size", rest);
}

START_TEST(test_bytes_exact)
{
    struct fieldmap *d = fieldmap_new(SEED);
    size_t empty = fieldmap_bytes(d);
    ck_assert_uint_eq(empty, malloc_usable_size(d) + sizeof(size_t));
    char k[32], v[200];
    memset(v, 'v', sizeof(v));
    for (int i = 0; i < NKEYS; i++) {
        fieldmap_set(d, k, key_of(i, k), v, (size_t)(i % 200), NULL);
        if (i % 777 == 0)
            assert_bytes_exact(d, empty);
    }
    for (int i = 0; i < NKEYS; i += 3)
        fieldmap_set(d, k, key_of(i, k), v, (size_t)((i * 7) % 200), NULL); /* resized values */
    assert_bytes_exact(d, empty);
    for (int i = 0; i < NKEYS - 1; i++) {
        fieldmap_delete(d, k, key_of(i, k));
        if (i % 555 == 0)
            assert_bytes_exact(d, empty);
    }
    assert_bytes_exact(d, empty);
    fieldmap_delete(d, k, key_of(NKEYS - 1, k));
    ck_assert_uint_eq(fieldmap_bytes(d), empty);
    fieldmap_free(d);
}
END_TEST

START_TEST(test_scan_stable_exactly_once)
{
    struct fieldmap *d = fieldmap_new(SEED);
    char k[32];
    for (int i = 0; i < NKEYS; i++)
        fieldmap_set(d, k, key_of(i, k), "v", 1, NULL);
    int *count = calloc(NKEYS, sizeof(int));
    struct seen s = { count };
    uint64_t cur = 0;
    int steps = 0;
    do {
        cur = fieldmap_scan(d, cur, count_cb, &s);
        ck_assert_int_lt(++steps, 1 << 20);
    } while (cur != 0);
    for (int i = 0; i < NKEYS; i++)
        ck_assert_int_eq(count[i], 1);
    free(count);
    /* an empty dict's scan ends at once */
    struct fieldmap *e = fieldmap_new(SEED);
    ck_assert_uint_eq(fieldmap_scan(e, 0, count_cb, &s), 0);
    fieldmap_free(e);
    fieldmap_free(d);
}
END_TEST

START_TEST(test_scan_across_resizes)
{
    /* keys 0..999 stay for the whole scan; keys >= 1000 are added (growth) and then removed
     * (shrink) while it runs. Every stable key must be seen at least once. */
    struct fieldmap *d = fieldmap_new(SEED);
    char k[32];
    for (int i = 0; i < 1000; i++)
        fieldmap_set(d, k, key_of(i, k), "v", 1, NULL);
    int *count = calloc(NKEYS * 4, sizeof(int));
    struct seen s = { count };
    uint64_t cur = 0;
    int steps = 0, extra = 1000;
    do {
        cur = fieldmap_scan(d, cur, count_cb, &s);
        steps++;
        if (steps < 40) {
            for (int j = 0; j < 200; j++, extra++)
                fieldmap_set(d, k, key_of(extra, k), "v", 1, NULL);
        } else if (extra > 1000) {
            for (int j = 0; j < 400 && extra > 1000; j++) {
                extra--;
                ck_assert(fieldmap_delete(d, k, key_of(extra, k)));
            }
        }
        ck_assert_int_lt(steps, 1 << 20);
    } while (cur != 0);
    for (int i = 0; i < 1000; i++)
        ck_assert_int_ge(count[i], 1);
    free(count);
    fieldmap_free(d);
}
END_TEST

START_TEST(test_random)
{
    struct fieldmap *d = fieldmap_new(SEED);
    uint64_t rng = 12345;
    ck_assert_ptr_null(fieldmap_random(d, &rng));
    char k[32];
    for (int i = 0; i < 10; i++)
        fieldmap_set(d, k, key_of(i, k), "v", 1, NULL);
    int count[10] = { 0 };
    for (int n = 0; n < 2000; n++) {
        struct fieldmap_entry *e = fieldmap_random(d, &rng);
        ck_assert_ptr_nonnull(e);
        ck_assert_ptr_eq(fieldmap_find(d, fieldmap_key(e), e->klen), e);
        count[index_of(e)]++;
    }
    for (int i = 0; i < 10; i++)
        ck_assert_int_gt(count[i], 50);
    /* a sparse big table (after many deletes) still finds its entries */
    for (int i = 10; i < NKEYS; i++)
        fieldmap_set(d, k, key_of(i, k), "v", 1, NULL);
    for (int i = 1; i < NKEYS; i++)
        fieldmap_delete(d, k, key_of(i, k));
    rng = 0; /* a zero state is allowed */
    for (int n = 0; n < 100; n++) {
        struct fieldmap_entry *e = fieldmap_random(d, &rng);
        ck_assert_ptr_nonnull(e);
        ck_assert_int_eq(index_of(e), 0);
    }
    fieldmap_free(d);
}
END_TEST

/* fieldmap_random is fair: with 1000 entries (chains of 1 to several) and 200000 draws, every
 * entry is drawn within 5 standard deviations of 200 (a bucket-then-chain pick is not: entries
 * alone in their bucket come up several times as often as those sharing one). Small maps too. */
START_TEST(test_random_is_uniform)
{
    for (size_t n = 10; n <= 1000; n += 990) {
        struct fieldmap *d = fieldmap_new(SEED);
        char k[16];
        for (size_t i = 0; i < n; i++) {
            int len = snprintf(k, sizeof(k), "m%zu", i);
            fieldmap_set(d, k, (size_t)len, &i, sizeof(i), NULL);
        }
        static unsigned hits[1000];
        memset(hits, 0, sizeof(hits));
        uint64_t rng = 42;
        size_t draws = n * 200;
        for (size_t i = 0; i < draws; i++) {
            const struct fieldmap_entry *e = fieldmap_random(d, &rng);
            ck_assert_ptr_nonnull(e);
            size_t idx;
            memcpy(&idx, fieldmap_val(e), sizeof(idx));
            hits[idx]++;
        }
        for (size_t i = 0; i < n; i++)
            ck_assert_msg(hits[i] >= 130 && hits[i] <= 270, "n=%zu entry %zu drawn %u times", n, i,
                          hits[i]);
        fieldmap_free(d);
    }
}
END_TEST

START_TEST(test_dup)
{
    struct fieldmap *d = fieldmap_new(SEED);
    char k[32];
    for (int i = 0; i < 300; i++)
        fieldmap_set(d, k, key_of(i, k), &i, sizeof(i), NULL);
    struct fieldmap *c = fieldmap_dup(d);
    ck_assert_uint_eq(fieldmap_len(c), 300);
    /* the same allocations (malloc may round a reused chunk differently) */
    ck_assert_uint_lt(fieldmap_bytes(c), fieldmap_bytes(d) + fieldmap_bytes(d) / 10);
    ck_assert_uint_gt(fieldmap_bytes(c), fieldmap_bytes(d) - fieldmap_bytes(d) / 10);
    fieldmap_set(d, "only-d", 6, "1", 1, NULL);
    fieldmap_delete(d, k, key_of(7, k));
    fieldmap_free(d);
    ck_assert_ptr_null(fieldmap_find(c, "only-d", 6));
    for (int i = 0; i < 300; i++) {
        struct fieldmap_entry *e = fieldmap_find(c, k, key_of(i, k));
        ck_assert_ptr_nonnull(e);
        int v;
        memcpy(&v, fieldmap_val(e), sizeof(v));
        ck_assert_int_eq(v, i);
    }
    /* the copy is a working dict on its own */
    for (int i = 0; i < 300; i++)
        ck_assert(fieldmap_delete(c, k, key_of(i, k)));
    struct fieldmap *e = fieldmap_new(SEED);
    ck_assert_uint_eq(fieldmap_bytes(c), fieldmap_bytes(e));
    struct fieldmap *ce = fieldmap_dup(e);
    ck_assert_uint_eq(fieldmap_len(ce), 0);
    fieldmap_free(ce);
    fieldmap_free(e);
    fieldmap_free(c);
}
END_TEST

START_TEST(test_iterate)
{
    struct fieldmap *d = fieldmap_new(SEED);
    struct fieldmap_iter it = { 0, NULL, NULL };
    ck_assert_ptr_null(fieldmap_next(d, &it));
    ck_assert_ptr_null(fieldmap_next(d, &it));
    char k[32];
    for (int i = 0; i < NKEYS; i++)
        fieldmap_set(d, k, key_of(i, k), "v", 1, NULL);
    int *count = calloc(NKEYS, sizeof(int));
    it = (struct fieldmap_iter){ 0, NULL, NULL };
    struct fieldmap_entry *e;
    int n = 0;
    while ((e = fieldmap_next(d, &it)) != NULL) {
        count[index_of(e)]++;
        ck_assert_int_le(++n, NKEYS);
    }
    ck_assert_int_eq(n, NKEYS);
    ck_assert_ptr_null(fieldmap_next(d, &it));
    for (int i = 0; i < NKEYS; i++)
        ck_assert_int_eq(count[i], 1);
    free(count);
    fieldmap_free(d);
}
END_TEST

/* Deletes the entry just returned when keep(i) is false (which halves the table many times);
 * every entry must be visited exactly once. */
static void iterate_deleting(int every)
{
    struct fieldmap *d = fieldmap_new(SEED);
    size_t empty = fieldmap_bytes(d);
    char k[32];
    for (int i = 0; i < NKEYS; i++)
        fieldmap_set(d, k, key_of(i, k), "v", 1, NULL);
    int *count = calloc(NKEYS, sizeof(int));
    struct fieldmap_iter it = { 0, NULL, NULL };
    struct fieldmap_entry *e;
    int n = 0, kept = 0;
    while ((e = fieldmap_next(d, &it)) != NULL) {
        int i = index_of(e);
        count[i]++;
        ck_assert_int_le(++n, NKEYS);
        if (every && i % every == 0) {
            kept++;
            continue;
        }
        char kb[32];
        memcpy(kb, fieldmap_key(e), e->klen);
        ck_assert(fieldmap_delete(d, kb, e->klen));
    }
    ck_assert_int_eq(n, NKEYS);
    for (int i = 0; i < NKEYS; i++)
        ck_assert_int_eq(count[i], 1);
    ck_assert_uint_eq(fieldmap_len(d), (size_t)kept);
    for (int i = 0; i < NKEYS; i++) {
        bool present = fieldmap_find(d, k, key_of(i, k)) != NULL;
        ck_assert(present == (every && i % every == 0));
    }
    if (!every)
        ck_assert_uint_eq(fieldmap_bytes(d), empty);
    free(count);
    fieldmap_free(d);
}

START_TEST(test_iterate_delete_all) { iterate_deleting(0); }
END_TEST

START_TEST(test_iterate_delete_most) { iterate_deleting(50); }
END_TEST

START_TEST(test_iterate_delete_half) { iterate_deleting(2); }
END_TEST

int main(void)
{
    Suite *su = suite_create("dict");
    TCase *tc = tcase_create("dict");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_set_find_delete_replace);
    tcase_add_test(tc, test_growth_and_shrink);
    tcase_add_test(tc, test_bytes_exact);
    tcase_add_test(tc, test_scan_stable_exactly_once);
    tcase_add_test(tc, test_scan_across_resizes);
    tcase_add_test(tc, test_random);
    tcase_add_test(tc, test_random_is_uniform);
    tcase_add_test(tc, test_dup);
    tcase_add_test(tc, test_iterate);
    tcase_add_test(tc, test_iterate_delete_all);
    tcase_add_test(tc, test_iterate_delete_most);
    tcase_add_test(tc, test_iterate_delete_half);
    suite_add_tcase(su, tc);
    SRunner *sr = srunner_create(su);
    srunner_run_all(sr, CK_ENV);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
