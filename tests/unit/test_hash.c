/* Unit tests for cache/hash.c: set/get/delete with binary fields in both encodings, the switch
 * from compact to table (Redis's listpack rule), insertion order while compact, exact bytes, dup,
 * walks and scans, random fields (single, distinct by draws and by shuffle, whole hash), a random
 * model comparison across the switch, and the value in a real store through hash_value_ops
 * (charged bytes, an emptied hash deleted, COPY duplicating). */
#include "cache/hash.h"
#include "cache/store.h"
#include "conf/config.h"

#include <check.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NOW 1000000

static const uint8_t SEED[16] = { 9, 8, 7, 6, 5, 4, 3, 2, 1, 0, 1, 2, 3, 4, 5, 6 };

static size_t field_of(int i, char *buf)
{
    return (size_t)snprintf(buf, 32, "field:%d", i);
}

static int index_of(const struct hash_field *f)
{
    return atoi(f->field + 6);
}

/* Builds a hash of n fields "field:<i>" -> "v"; n > HASH_COMPACT_ENTRIES makes a table. */
static struct hash_value *make_hash(int n)
{
    char f[32];
    struct hash_value *h = hash_new(SEED);
    for (int i = 0; i < n; i++)
        hash_set(h, f, field_of(i, f), "v", 1);
    return h;
}

static void set_get_delete(bool table)
{
    struct hash_value *h = table ? make_hash(HASH_COMPACT_ENTRIES + 1) : hash_new(SEED);
    size_t base = hash_len(h);
    ck_assert(hash_is_compact(h) == !table);
    struct hash_field v;
    ck_assert(!hash_get(h, "f", 1, &v));
    ck_assert(hash_set(h, "f", 1, "v", 1));
    ck_assert(!hash_set(h, "f", 1, "value2", 6));
    ck_assert(hash_get(h, "f", 1, &v));
    ck_assert_uint_eq(v.vlen, 6);
    ck_assert_mem_eq(v.val, "value2", 6);
    ck_assert_uint_eq(v.flen, 1);
    ck_assert_mem_eq(v.field, "f", 1);
    ck_assert(!hash_set(h, "f", 1, "", 0)); /* shorter, then empty */
    ck_assert(hash_get(h, "f", 1, &v));
    ck_assert_uint_eq(v.vlen, 0);
    ck_assert(hash_set(h, "b\0in", 4, "\0\r\n", 3));
    ck_assert(hash_get(h, "b\0in", 4, &v));
    ck_assert_mem_eq(v.val, "\0\r\n", 3);
    ck_assert(!hash_get(h, "b", 1, NULL));
    ck_assert(hash_get(h, "b\0in", 4, NULL));
    ck_assert(hash_set(h, "", 0, NULL, 0));
    ck_assert(hash_get(h, "", 0, &v));
    ck_assert_uint_eq(hash_len(h), base + 3);
    ck_assert(hash_is_compact(h) == !table);
    ck_assert(hash_delete(h, "f", 1));
    ck_assert(!hash_delete(h, "f", 1));
    ck_assert_uint_eq(hash_len(h), base + 2);
    ck_assert(hash_get(h, "b\0in", 4, &v)); /* neighbours intact after the move */
    ck_assert_mem_eq(v.val, "\0\r\n", 3);
    ck_assert(hash_delete(h, "", 0));
    ck_assert(hash_delete(h, "b\0in", 4));
    ck_assert_uint_eq(hash_len(h), base);
    hash_free(h);
}

START_TEST(test_set_get_delete_compact) { set_get_delete(false); }
END_TEST

START_TEST(test_set_get_delete_table) { set_get_delete(true); }
END_TEST

START_TEST(test_compact_rule_and_order)
{
    char f[32];
    struct hash_value *h = make_hash(HASH_COMPACT_ENTRIES);
    ck_assert(hash_is_compact(h));
    hash_set(h, f, field_of(0, f), "replaced", 8); /* an update keeps the place */
    ck_assert(hash_is_compact(h));
    struct hash_iter it;
    struct hash_field v;
    hash_iter_init(h, &it);
    for (int i = 0; i < HASH_COMPACT_ENTRIES; i++) {
        ck_assert(hash_iter_next(h, &it, &v));
        ck_assert_int_eq(index_of(&v), i);
        ck_assert_uint_eq(v.vlen, i == 0 ? 8 : 1);
    }
    ck_assert(!hash_iter_next(h, &it, &v));
    /* a delete in the middle keeps the others in order */
    ck_assert(hash_delete(h, f, field_of(5, f)));
    hash_iter_init(h, &it);
    for (int i = 0; i < HASH_COMPACT_ENTRIES; i++) {
        if (i == 5)
            continue;
        ck_assert(hash_iter_next(h, &it, &v));
        ck_assert_int_eq(index_of(&v), i);
    }
    ck_assert(hash_set(h, f, field_of(5, f), "v", 1)); /* back, at the end */
    ck_assert(hash_is_compact(h));
    ck_assert(hash_set(h, f, field_of(HASH_COMPACT_ENTRIES, f), "v", 1));
    ck_assert(!hash_is_compact(h));
    ck_assert_uint_eq(hash_len(h), HASH_COMPACT_ENTRIES + 1);
    for (int i = 0; i <= HASH_COMPACT_ENTRIES; i++) {
        ck_assert(hash_get(h, f, field_of(i, f), &v));
        ck_assert_uint_eq(v.vlen, i == 0 ? 8 : 1);
    }
    for (int i = 0; i <= HASH_COMPACT_ENTRIES - 2; i++)
        hash_delete(h, f, field_of(i, f));
    ck_assert_uint_eq(hash_len(h), 2);
    ck_assert(!hash_is_compact(h)); /* never goes back, as Redis's conversion */
    hash_free(h);

    char longer[HASH_COMPACT_VALUE + 1];
    memset(longer, 'x', sizeof(longer));
    h = hash_new(SEED);
    hash_set(h, "f", 1, longer, HASH_COMPACT_VALUE);
    hash_set(h, longer, HASH_COMPACT_VALUE, "g", 1);
    ck_assert(hash_is_compact(h));
    ck_assert(!hash_get(h, longer, HASH_COMPACT_VALUE + 1, NULL));
    ck_assert(!hash_delete(h, longer, HASH_COMPACT_VALUE + 1));
    hash_set(h, "g", 1, longer, HASH_COMPACT_VALUE + 1);
    ck_assert(!hash_is_compact(h));
    ck_assert(hash_get(h, "f", 1, &v));
    ck_assert_uint_eq(v.vlen, HASH_COMPACT_VALUE);
    ck_assert(hash_get(h, longer, HASH_COMPACT_VALUE, &v));
    ck_assert_uint_eq(v.vlen, 1);
    ck_assert(hash_get(h, "g", 1, &v));
    ck_assert_uint_eq(v.vlen, HASH_COMPACT_VALUE + 1);
    hash_free(h);
    h = hash_new(SEED);
    hash_set(h, "a", 1, "1", 1);
    hash_set(h, longer, HASH_COMPACT_VALUE + 1, "v", 1); /* a long field converts too */
    ck_assert(!hash_is_compact(h));
    ck_assert_uint_eq(hash_len(h), 2);
    struct hash_value *c = hash_dup(h);
    ck_assert(!hash_is_compact(c));
    ck_assert(hash_get(c, "a", 1, NULL));
    hash_free(c);
    hash_free(h);
}
END_TEST

/* The payload of a compact hash's pack: 2 length bytes + field + value per entry. */
static size_t pack_payload(struct hash_value *h)
{
    size_t used = 0;
    struct hash_iter it;
    struct hash_field v;
    hash_iter_init(h, &it);
    while (hash_iter_next(h, &it, &v))
        used += 2 + v.flen + v.vlen;
    return used;
}

START_TEST(test_bytes_and_dup)
{
    char f[32];
    struct hash_value *h = hash_new(SEED);
    size_t empty = hash_bytes(h);
    ck_assert_uint_eq(empty, malloc_usable_size(h) + sizeof(size_t));
    /* compact: the struct and one pack allocation holding the payload */
    for (int i = 0; i < 100; i++) {
        hash_set(h, f, field_of(i, f), "value", 5);
        size_t payload = pack_payload(h);
        ck_assert_uint_ge(hash_bytes(h), empty + payload + sizeof(size_t));
        ck_assert_uint_le(hash_bytes(h), empty + payload + sizeof(size_t) + 64);
    }
    /* a small profile stays well under 200 bytes (a dict would cost several hundred) */
    struct hash_value *p = hash_new(SEED);
    hash_set(p, "name", 4, "alice", 5);
    hash_set(p, "age", 3, "30", 2);
    hash_set(p, "city", 4, "paris", 5);
    hash_set(p, "email", 5, "a@b.c", 5);
    hash_set(p, "id", 2, "12345", 5);
    ck_assert_uint_lt(hash_bytes(p), 160);
    hash_free(p);
    /* table */
    for (int i = 100; i < 1000; i++)
        hash_set(h, f, field_of(i, f), f, field_of(i * 7, f) - 1);
    ck_assert(!hash_is_compact(h));
    ck_assert_uint_gt(hash_bytes(h), empty + 1000 * 20);
    struct hash_value *c = hash_dup(h);
    ck_assert_uint_eq(hash_len(c), 1000);
    hash_set(h, "only", 4, "h", 1);
    ck_assert(!hash_get(c, "only", 4, NULL));
    for (int i = 0; i < 1000; i++) {
        size_t n = field_of(i, f);
        struct hash_field a, b;
        ck_assert(hash_get(h, f, n, &a));
        ck_assert(hash_get(c, f, n, &b));
        ck_assert_ptr_ne(a.val, b.val);
        ck_assert_uint_eq(a.vlen, b.vlen);
        ck_assert_mem_eq(a.val, b.val, a.vlen);
    }
    for (int i = 0; i < 1000; i++)
        ck_assert(hash_delete(h, f, field_of(i, f)));
    ck_assert(hash_delete(h, "only", 4));
    hash_free(c);
    /* an emptied table is back to the struct and an empty dict */
    ck_assert_uint_lt(hash_bytes(h), empty + 128);
    hash_free(h);
    /* an emptied compact hash is back to the struct alone */
    h = make_hash(10);
    c = hash_dup(h);
    ck_assert_uint_eq(hash_len(c), 10);
    for (int i = 0; i < 10; i++)
        ck_assert(hash_delete(h, f, field_of(i, f)));
    ck_assert_uint_eq(hash_bytes(h), empty);
    ck_assert(hash_get(c, f, field_of(9, f), NULL));
    hash_free(c);
    hash_free(h);
}
END_TEST

static void scan_count_cb(void *ctx, const struct hash_field *f)
{
    int *seen = ctx;
    seen[index_of(f)]++;
}

static void walks(int n)
{
    struct hash_value *h = make_hash(n);
    int *seen = calloc((size_t)n, sizeof(int));
    struct hash_iter it;
    struct hash_field v;
    hash_iter_init(h, &it);
    int k = 0;
    while (k <= n && hash_iter_next(h, &it, &v)) {
        seen[index_of(&v)]++;
        k++;
    }
    ck_assert_int_eq(k, n);
    for (int i = 0; i < n; i++)
        ck_assert_int_eq(seen[i], 1);
    memset(seen, 0, (size_t)n * sizeof(int));
    uint64_t cur = 0;
    int steps = 0;
    do {
        cur = hash_scan(h, cur, scan_count_cb, seen);
    } while (cur != 0 && ++steps < 100000);
    if (hash_is_compact(h))
        ck_assert_int_eq(steps, 0); /* one step */
    for (int i = 0; i < n; i++)
        ck_assert_int_eq(seen[i], 1);
    free(seen);
    hash_free(h);
}

START_TEST(test_walks_compact) { walks(HASH_COMPACT_ENTRIES); }
END_TEST

START_TEST(test_walks_table) { walks(500); }
END_TEST

static void check_distinct(struct hash_value *h, uint64_t *rng, size_t count)
{
    size_t len = hash_len(h), want = count < len ? count : len;
    struct hash_field *out = malloc((want ? want : 1) * sizeof(*out));
    size_t got = hash_random_fields(h, rng, count, out);
    ck_assert_uint_eq(got, want);
    for (size_t i = 0; i < got; i++) {
        struct hash_field v;
        ck_assert(hash_get(h, out[i].field, out[i].flen, &v));
        ck_assert_ptr_eq(v.val, out[i].val);
        for (size_t j = 0; j < i; j++)
            ck_assert_ptr_ne(out[i].field, out[j].field);
    }
    free(out);
}

static void random_fields(int n)
{
    uint64_t rng = 42;
    struct hash_value *h = hash_new(SEED);
    struct hash_field v;
    ck_assert(!hash_random(h, &rng, &v));
    ck_assert_uint_eq(hash_random_fields(h, &rng, 1, &v), 0);
    hash_free(h);
    h = make_hash(n);
    int *seen = calloc((size_t)n, sizeof(int));
    for (int k = 0; k < n * 100; k++) {
        ck_assert(hash_random(h, &rng, &v));
        seen[index_of(&v)]++;
    }
    for (int i = 0; i < n; i++)
        ck_assert_int_gt(seen[i], 0);
    size_t counts[] = { 1, 2, 10, (size_t)n / 3, (size_t)n / 3 + 1, (size_t)n - 1, (size_t)n,
                        (size_t)n * 10 };
    for (size_t i = 0; i < sizeof(counts) / sizeof(counts[0]); i++)
        check_distinct(h, &rng, counts[i]);
    /* every field gets picked by the distinct selection too */
    memset(seen, 0, (size_t)n * sizeof(int));
    struct hash_field out[10];
    for (int k = 0; k < n * 30; k++) {
        size_t got = hash_random_fields(h, &rng, 10, out);
        ck_assert_uint_eq(got, 10);
        for (size_t i = 0; i < got; i++)
            seen[index_of(&out[i])]++;
    }
    for (int i = 0; i < n; i++)
        ck_assert_int_gt(seen[i], 0);
    free(seen);
    hash_free(h);
}

START_TEST(test_random_compact) { random_fields(100); }
END_TEST

START_TEST(test_random_table) { random_fields(300); }
END_TEST

/* Random sets and deletes against a brute-force model, across the compact -> table switch. */
START_TEST(test_model)
{
    enum { KEYS = 200, OPS = 20000 };
    int model[KEYS]; /* value length, -1 = absent */
    for (int i = 0; i < KEYS; i++)
        model[i] = -1;
    char f[32], val[80];
    memset(val, 'q', sizeof(val));
    struct hash_value *h = hash_new(SEED);
    uint64_t rng = 7;
    size_t n = 0;
    for (int op = 0; op < OPS; op++) {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        int k = (int)(rng % (op < OPS / 2 ? 60 : KEYS)); /* compact for a while */
        size_t fl = field_of(k, f);
        if ((rng >> 20) % 3 == 0) {
            bool was = model[k] >= 0;
            ck_assert(hash_delete(h, f, fl) == was);
            n -= was;
            model[k] = -1;
        } else {
            int vl = (int)((rng >> 30) % (op < OPS / 2 ? 60 : 70));
            ck_assert(hash_set(h, f, fl, val, (size_t)vl) == (model[k] < 0));
            n += model[k] < 0;
            model[k] = vl;
        }
        ck_assert_uint_eq(hash_len(h), n);
        if (op % 997 == 0) {
            for (int i = 0; i < KEYS; i++) {
                struct hash_field v;
                bool got = hash_get(h, f, field_of(i, f), &v);
                ck_assert(got == (model[i] >= 0));
                if (got)
                    ck_assert_uint_eq(v.vlen, (size_t)model[i]);
            }
        }
    }
    ck_assert(!hash_is_compact(h));
    hash_free(h);
}
END_TEST

static struct store *mk_store(void)
{
    struct store_options o;
    memset(&o, 0, sizeof(o));
    o.policy = POLICY_ALLKEYS_LRU;
    o.samples = 5;
    o.databases = 2;
    struct store *s = store_create(&o);
    store_register_type(s, STORE_HASH, &hash_value_ops);
    return s;
}

START_TEST(test_in_store)
{
    char f[32];
    struct store *s = mk_store();
    /* base: the store with its (lazily allocated) table and no key */
    store_set_string(s, 0, "x", 1, "1", 1, 0, false, NOW);
    ck_assert(store_delete(s, 0, "x", 1, NOW));
    uint64_t base = store_used_bytes(s);
    struct hash_value *h = hash_new(SEED);
    hash_set(h, "a", 1, "1", 1);
    struct store_entry *e = store_add_value(s, 0, "h", 1, STORE_HASH, h, NOW);
    ck_assert_uint_eq(e->type, STORE_HASH);
    ck_assert_uint_eq(hash_value_ops.len(h), 1);
    uint64_t one = store_used_bytes(s);
    ck_assert_uint_ge(one - base, hash_bytes(h));
    uint64_t entry = one - base - hash_bytes(h); /* the key's own allocation */
    for (int i = 0; i < 2000; i++)
        hash_set(h, f, field_of(i, f), "value", 5);
    ck_assert_ptr_eq(store_value_changed(s, e), e);
    /* charged exactly: the entry plus the value's bytes now */
    ck_assert_uint_eq(store_used_bytes(s) - base, entry + hash_bytes(h));
    /* COPY: an independent duplicate, charged on its own */
    uint64_t before_copy = store_used_bytes(s);
    struct store_entry *c = store_copy(s, e, 0, "h2", 2, NOW);
    ck_assert_ptr_nonnull(c);
    struct hash_value *hc = store_value(c);
    ck_assert_ptr_ne(hc, h);
    ck_assert_uint_eq(hash_len(hc), 2001);
    ck_assert_uint_ge(store_used_bytes(s), before_copy + hash_bytes(hc));
    ck_assert(store_delete(s, 0, "h2", 2, NOW));
    ck_assert_uint_eq(store_used_bytes(s), before_copy);
    /* emptied: the key goes and every byte comes back */
    e = store_find(s, 0, "h", 1, NOW, 0);
    for (int i = 0; i < 2000; i++)
        hash_delete(h, f, field_of(i, f));
    ck_assert_ptr_eq(store_value_changed(s, e), e);
    ck_assert_uint_eq(store_used_bytes(s) - base, entry + hash_bytes(h));
    hash_delete(h, "a", 1);
    ck_assert_ptr_null(store_value_changed(s, e));
    ck_assert_ptr_null(store_find(s, 0, "h", 1, NOW, 0));
    ck_assert_uint_eq(store_used_bytes(s), base);
    store_destroy(s);
}
END_TEST

int main(void)
{
    Suite *su = suite_create("hash");
    TCase *tc = tcase_create("hash");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_set_get_delete_compact);
    tcase_add_test(tc, test_set_get_delete_table);
    tcase_add_test(tc, test_compact_rule_and_order);
    tcase_add_test(tc, test_bytes_and_dup);
    tcase_add_test(tc, test_walks_compact);
    tcase_add_test(tc, test_walks_table);
    tcase_add_test(tc, test_random_compact);
    tcase_add_test(tc, test_random_table);
    tcase_add_test(tc, test_model);
    tcase_add_test(tc, test_in_store);
    suite_add_tcase(su, tc);
    SRunner *sr = srunner_create(su);
    srunner_run_all(sr, CK_ENV);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
