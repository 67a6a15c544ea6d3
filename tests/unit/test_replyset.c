/* Unit tests for cache/replyset.c: put/get by signature (binary), replacing a signature, the
 * REPLYSET_ITEMS_MAX cap dropping the least recently put reply, dup keeping every reply and its
 * order, exact byte accounting back to the empty set, and a store holding STORE_REPLIES keys
 * (charged, evicted and freed like any aggregate), and a sized set's inline reply (in the set's
 * own allocation, reused when replaced, charged once), and withholding (nothing answered, the
 * allocation kept, one placeholder). */
#include "cache/replyset.h"

#include "cache/store.h"

#include <check.h>
#include <malloc.h>
#include <stdio.h>
#include <string.h>

static size_t chunk(const void *p)
{
    return malloc_usable_size((void *)p) + sizeof(size_t);
}

/* Whether p lies inside the allocation of block. */
static int inside(const void *p, const void *block)
{
    const char *b = block;
    return (const char *)p >= b && (const char *)p < b + malloc_usable_size((void *)block);
}

START_TEST(test_put_get_replace)
{
    struct replyset *rs = replyset_create();
    size_t empty = replyset_ops.bytes(rs);
    ck_assert_uint_eq(empty, chunk(rs));
    size_t n = 99;
    ck_assert_ptr_null(replyset_get(rs, "get", 4, &n));
    const char sig[] = { 'h', 'g', 'e', 't', '\0', 1, 0, 0, 0, 'f' };
    replyset_put(rs, "get", 4, "$1\r\nv\r\n", 7);
    replyset_put(rs, sig, sizeof(sig), "$-1\r\n", 5);
    ck_assert_uint_eq(replyset_ops.len(rs), 2);
    const char *p = replyset_get(rs, "get", 4, &n);
    ck_assert_uint_eq(n, 7);
    ck_assert_int_eq(memcmp(p, "$1\r\nv\r\n", 7), 0);
    p = replyset_get(rs, sig, sizeof(sig), &n);
    ck_assert_uint_eq(n, 5);
    ck_assert_int_eq(memcmp(p, "$-1\r\n", 5), 0);
    /* a signature that is a prefix of another is a different signature */
    ck_assert_ptr_null(replyset_get(rs, sig, sizeof(sig) - 1, &n));
    replyset_put(rs, "get", 4, "$2\r\nv2\r\n", 8);
    ck_assert_uint_eq(replyset_ops.len(rs), 2);
    p = replyset_get(rs, "get", 4, &n);
    ck_assert_uint_eq(n, 8);
    ck_assert_int_eq(memcmp(p, "$2\r\nv2\r\n", 8), 0);
    ck_assert_uint_gt(replyset_ops.bytes(rs), empty);
    replyset_ops.free(rs);
}
END_TEST

START_TEST(test_cap_drops_oldest_and_dup_keeps_order)
{
    struct replyset *rs = replyset_create();
    char sig[16], reply[32];
    for (int i = 0; i < REPLYSET_ITEMS_MAX + 3; i++) {
        int s = snprintf(sig, sizeof(sig), "s%d", i);
        int r = snprintf(reply, sizeof(reply), ":%d\r\n", i);
        replyset_put(rs, sig, (size_t)s, reply, (size_t)r);
    }
    ck_assert_uint_eq(replyset_ops.len(rs), REPLYSET_ITEMS_MAX);
    size_t n;
    for (int i = 0; i < 3; i++) { /* the three oldest went */
        int s = snprintf(sig, sizeof(sig), "s%d", i);
        ck_assert_ptr_null(replyset_get(rs, sig, (size_t)s, &n));
    }
    rs->fresh_until_ms = 1234;
    struct replyset *copy = replyset_ops.dup(rs);
    ck_assert_uint_eq(replyset_ops.len(copy), REPLYSET_ITEMS_MAX);
    ck_assert_int_eq(copy->fresh_until_ms, 1234);
    ck_assert_uint_eq(replyset_ops.bytes(copy), replyset_ops.bytes(rs));
    for (int i = 3; i < REPLYSET_ITEMS_MAX + 3; i++) {
        int s = snprintf(sig, sizeof(sig), "s%d", i);
        int r = snprintf(reply, sizeof(reply), ":%d\r\n", i);
        const char *p = replyset_get(copy, sig, (size_t)s, &n);
        ck_assert_ptr_nonnull(p);
        ck_assert_uint_eq(n, (size_t)r);
        ck_assert_int_eq(memcmp(p, reply, n), 0);
    }
    /* the copy's oldest is the original's oldest: one more put drops s3 in both */
    replyset_put(rs, "new", 3, "+x\r\n", 4);
    replyset_put(copy, "new", 3, "+x\r\n", 4);
    ck_assert_ptr_null(replyset_get(rs, "s3", 2, &n));
    ck_assert_ptr_null(replyset_get(copy, "s3", 2, &n));
    ck_assert_ptr_nonnull(replyset_get(copy, "s4", 2, &n));
    replyset_ops.free(rs);
    replyset_ops.free(copy);
}
END_TEST

START_TEST(test_bytes_back_to_empty)
{
    struct replyset *rs = replyset_create();
    size_t empty = replyset_ops.bytes(rs);
    char big[4096];
    memset(big, 'x', sizeof(big));
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < REPLYSET_ITEMS_MAX; i++) {
            char sig[8];
            int s = snprintf(sig, sizeof(sig), "%d", i);
            replyset_put(rs, sig, (size_t)s, big, (size_t)(100 * i + 1));
        }
    }
    ck_assert_uint_gt(replyset_ops.bytes(rs), empty + REPLYSET_ITEMS_MAX * 100);
    /* replacing each with a tiny reply brings the bytes down to the items' minimum */
    size_t sum = empty;
    for (int i = 0; i < REPLYSET_ITEMS_MAX; i++) {
        char sig[8];
        int s = snprintf(sig, sizeof(sig), "%d", i);
        replyset_put(rs, sig, (size_t)s, "+", 1);
    }
    sum = replyset_ops.bytes(rs);
    ck_assert_uint_lt(sum, empty + REPLYSET_ITEMS_MAX * 64);
    replyset_ops.free(rs);
}
END_TEST

START_TEST(test_in_store)
{
    struct store_options so = { .max_memory = 0, .policy = 0, .samples = 5, .databases = 1 };
    struct store *s = store_create(&so);
    store_register_type(s, STORE_REPLIES, &replyset_ops);
    uint64_t base = store_used_bytes(s);
    struct replyset *rs = replyset_create();
    replyset_put(rs, "get", 4, "$3\r\nabc\r\n", 9);
    struct store_entry *e = store_add_value(s, 0, "k", 1, STORE_REPLIES, rs, 1000);
    ck_assert_ptr_nonnull(e);
    ck_assert_uint_gt(store_used_bytes(s), base + replyset_ops.bytes(rs) - 1);
    store_set_expire(s, e, 2000);
    e = store_find(s, 0, "k", 1, 1500, 0);
    ck_assert_ptr_nonnull(e);
    ck_assert_int_eq(e->type, STORE_REPLIES);
    size_t n;
    ck_assert_ptr_nonnull(replyset_get(store_value(e), "get", 4, &n));
    ck_assert_ptr_null(store_find(s, 0, "k", 1, 2001, 0)); /* expired: freed */
    ck_assert_uint_eq(store_count(s, -1), 0);
    store_destroy(s);
}
END_TEST

START_TEST(test_sized_inline_item)
{
    /* A sized set holds its first reply in its own allocation: no second chunk is charged. */
    struct replyset *rs = replyset_create_sized(4, 9);
    size_t empty = replyset_ops.bytes(rs);
    ck_assert_uint_eq(empty, chunk(rs));
    replyset_put(rs, "get", 4, "$3\r\nabc\r\n", 9);
    ck_assert_uint_eq(replyset_ops.bytes(rs), empty);
    size_t n = 0;
    const char *p = replyset_get(rs, "get", 4, &n);
    ck_assert_uint_eq(n, 9);
    ck_assert_int_eq(memcmp(p, "$3\r\nabc\r\n", 9), 0);
    ck_assert(inside(p, rs));
    /* replacing it with a reply that fits reuses the room */
    replyset_put(rs, "get", 4, "$3\r\nxyz\r\n", 9);
    ck_assert_uint_eq(replyset_ops.bytes(rs), empty);
    p = replyset_get(rs, "get", 4, &n);
    ck_assert_int_eq(memcmp(p, "$3\r\nxyz\r\n", 9), 0);
    /* a second signature while the room is taken: its own chunk, charged */
    replyset_put(rs, "hget", 5, ":1\r\n", 4);
    ck_assert_uint_gt(replyset_ops.bytes(rs), empty);
    /* a reply too big for the room: its own chunk; the room is free again, then reused */
    char big[1000];
    memset(big, 'b', sizeof(big));
    replyset_put(rs, "get", 4, big, sizeof(big));
    p = replyset_get(rs, "get", 4, &n);
    ck_assert_uint_eq(n, sizeof(big));
    ck_assert_int_eq(memcmp(p, big, n), 0);
    ck_assert(!inside(p, rs));
    replyset_put(rs, "x", 1, "+", 1);
    p = replyset_get(rs, "x", 1, &n);
    ck_assert(inside(p, rs));
    ck_assert_uint_eq(replyset_ops.len(rs), 3);
    /* the dup keeps every reply, its order and (same layout) its bytes */
    rs->fresh_until_ms = 77;
    struct replyset *copy = replyset_ops.dup(rs);
    ck_assert_int_eq(copy->fresh_until_ms, 77);
    ck_assert_uint_eq(replyset_ops.len(copy), 3);
    ck_assert_int_eq(memcmp(replyset_get(copy, "get", 4, &n), big, sizeof(big)), 0);
    ck_assert_int_eq(memcmp(replyset_get(copy, "hget", 5, &n), ":1\r\n", 4), 0);
    ck_assert_int_eq(memcmp(replyset_get(copy, "x", 1, &n), "+", 1), 0);
    /* replacing every reply with a tiny one and overflowing the cap keeps the exact count */
    for (int i = 0; i < REPLYSET_ITEMS_MAX + 2; i++) {
        char sig[8];
        int s = snprintf(sig, sizeof(sig), "s%d", i);
        replyset_put(rs, sig, (size_t)s, "+", 1);
    }
    ck_assert_uint_eq(replyset_ops.len(rs), REPLYSET_ITEMS_MAX);
    size_t heap = 0;
    struct replyset *probe = replyset_create();
    replyset_put(probe, "s10", 3, "+", 1);
    heap = replyset_ops.bytes(probe) - chunk(probe);
    replyset_ops.free(probe);
    /* one of them may sit in the room, every other is one small chunk */
    ck_assert_uint_le(replyset_ops.bytes(rs), empty + REPLYSET_ITEMS_MAX * heap);
    ck_assert_uint_ge(replyset_ops.bytes(rs), empty + (REPLYSET_ITEMS_MAX - 1) * (heap - 8));
    replyset_ops.free(rs);
    replyset_ops.free(copy);
}
END_TEST

START_TEST(test_withhold)
{
    /* Withheld: answers nothing, keeps its allocation and room, stays non-empty. */
    struct replyset *rs = replyset_create_sized(4, 9);
    size_t empty = replyset_ops.bytes(rs);
    replyset_put(rs, "get", 4, "$3\r\nabc\r\n", 9);
    replyset_put(rs, "strlen", 7, ":3\r\n", 4);
    ck_assert(!replyset_withheld(rs));
    replyset_withhold(rs);
    ck_assert(replyset_withheld(rs));
    ck_assert_uint_eq(replyset_ops.len(rs), 1);
    ck_assert_uint_eq(replyset_ops.bytes(rs), empty); /* the placeholder sits in the room */
    size_t n;
    ck_assert_ptr_null(replyset_get(rs, "get", 4, &n));
    ck_assert_ptr_null(replyset_get(rs, "strlen", 7, &n));
    ck_assert_ptr_null(replyset_get(rs, "", 0, &n));
    replyset_withhold(rs); /* again: still one placeholder */
    ck_assert_uint_eq(replyset_ops.len(rs), 1);
    /* clear then put: the new reply takes the room */
    replyset_clear(rs);
    ck_assert_uint_eq(replyset_ops.len(rs), 0);
    replyset_put(rs, "get", 4, "$3\r\nxyz\r\n", 9);
    ck_assert(!replyset_withheld(rs));
    ck_assert_uint_eq(replyset_ops.bytes(rs), empty);
    ck_assert_int_eq(memcmp(replyset_get(rs, "get", 4, &n), "$3\r\nxyz\r\n", 9), 0);
    replyset_ops.free(rs);
    /* a set without room: the placeholder is one small chunk, freed with the set */
    rs = replyset_create();
    replyset_put(rs, "get", 4, "$1\r\nv\r\n", 7);
    replyset_withhold(rs);
    ck_assert(replyset_withheld(rs));
    ck_assert_uint_gt(replyset_ops.bytes(rs), chunk(rs));
    replyset_ops.free(rs);
}
END_TEST

int main(void)
{
    Suite *suite = suite_create("replyset");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_put_get_replace);
    tcase_add_test(tc, test_cap_drops_oldest_and_dup_keeps_order);
    tcase_add_test(tc, test_bytes_back_to_empty);
    tcase_add_test(tc, test_in_store);
    tcase_add_test(tc, test_sized_inline_item);
    tcase_add_test(tc, test_withhold);
    suite_add_tcase(suite, tc);
    SRunner *sr = srunner_create(suite);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
