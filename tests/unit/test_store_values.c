/* Unit tests for the store's aggregate values (cache/store.h: store_register_type,
 * store_add_value, store_value_changed, and how delete, overwrite, rename, copy, eviction and
 * flush treat them), with a small fake type whose allocations and frees are counted. */
#include "cache/store.h"
#include "conf/config.h"

#include <check.h>
#include <stdio.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>

#define NOW 1000000

/* A fake aggregate: n elements of one byte in a growable buffer. */
struct fake {
    size_t n, cap;
    char *buf;
};

static int fakes_live; /* values allocated and not yet freed */

static struct fake *fake_new(size_t n)
{
    struct fake *f = calloc(1, sizeof(*f));
    f->cap = n ? n : 1;
    f->buf = malloc(f->cap);
    memset(f->buf, 'x', f->cap);
    f->n = n;
    fakes_live++;
    return f;
}

static void fake_free(void *v)
{
    struct fake *f = v;
    free(f->buf);
    free(f);
    fakes_live--;
}

static void *fake_dup(const void *v)
{
    const struct fake *f = v;
    struct fake *d = fake_new(f->n);
    memcpy(d->buf, f->buf, f->n);
    return d;
}

static size_t fake_bytes(const void *v)
{
    const struct fake *f = v;
    return malloc_usable_size((void *)f) + malloc_usable_size(f->buf) + 2 * sizeof(size_t);
}

static size_t fake_len(const void *v)
{
    return ((const struct fake *)v)->n;
}

static const struct store_value_ops fake_ops = { fake_free, fake_dup, fake_bytes, fake_len };

static struct store *mk(uint64_t max_memory)
{
    struct store_options o;
    memset(&o, 0, sizeof(o));
    o.max_memory = max_memory;
    o.policy = POLICY_ALLKEYS_LRU;
    o.samples = 5;
    o.databases = 4;
    struct store *s = store_create(&o);
    store_register_type(s, STORE_LIST, &fake_ops);
    return s;
}

static void fake_grow(struct fake *f, size_t n)
{
    f->buf = realloc(f->buf, n);
    memset(f->buf + f->cap, 'y', n - f->cap);
    f->cap = f->n = n;
}

START_TEST(test_add_charge_and_change)
{
    fakes_live = 0;
    struct store *s = mk(0);
    uint64_t base = store_used_bytes(s);
    struct fake *f = fake_new(10);
    struct store_entry *e = store_add_value(s, 0, "agg", 3, STORE_LIST, f, NOW);
    ck_assert_uint_eq(e->type, STORE_LIST);
    ck_assert_ptr_eq(store_value(e), f);
    uint64_t with_small = store_used_bytes(s);
    ck_assert_uint_ge(with_small - base, fake_bytes(f));
    size_t fake_bytes_before = fake_bytes(f);
    fake_grow(f, 100000);
    size_t small_bytes = with_small - base;
    ck_assert_ptr_eq(store_value_changed(s, e), e);
    /* Charged exactly the growth of the value's allocations. */
    ck_assert_uint_ge(store_used_bytes(s), with_small + 99000);
    ck_assert_uint_eq(store_used_bytes(s) - base - small_bytes + fake_bytes_before,
                      fake_bytes(f));
    ck_assert_ptr_eq(store_find(s, 0, "agg", 3, NOW, STORE_READ), e);
    /* Emptied: the key goes, the value is freed, every byte comes back. */
    f->n = 0;
    ck_assert_ptr_null(store_value_changed(s, e));
    ck_assert_ptr_null(store_find(s, 0, "agg", 3, NOW, 0));
    ck_assert_int_eq(fakes_live, 0);
    store_flush(s, -1);
    ck_assert_uint_eq(store_used_bytes(s), 0);
    store_destroy(s);
}
END_TEST

START_TEST(test_delete_overwrite_expire_free_the_value)
{
    fakes_live = 0;
    struct store *s = mk(0);
    store_add_value(s, 0, "a", 1, STORE_LIST, fake_new(5), NOW);
    store_add_value(s, 0, "b", 1, STORE_LIST, fake_new(5), NOW);
    struct store_entry *c = store_add_value(s, 0, "c", 1, STORE_LIST, fake_new(5), NOW);
    store_set_expire(s, c, NOW + 10);
    ck_assert_int_eq(fakes_live, 3);
    ck_assert(store_delete(s, 0, "a", 1, NOW));
    ck_assert_int_eq(fakes_live, 2);
    /* SET over an aggregate replaces it with a string. */
    struct store_entry *b = store_set_string(s, 0, "b", 1, "str", 3, 0, false, NOW);
    ck_assert_uint_eq(b->type, STORE_STRING);
    ck_assert_int_eq(fakes_live, 1);
    /* Lazy expiry frees it too. */
    ck_assert_ptr_null(store_find(s, 0, "c", 1, NOW + 11, 0));
    ck_assert_int_eq(fakes_live, 0);
    /* Adding over an existing key replaces it. */
    store_add_value(s, 0, "b", 1, STORE_LIST, fake_new(2), NOW);
    ck_assert_uint_eq(store_count(s, 0), 1);
    store_flush(s, -1);
    ck_assert_int_eq(fakes_live, 0);
    ck_assert_uint_eq(store_used_bytes(s), 0);
    store_destroy(s);
}
END_TEST

START_TEST(test_rename_moves_copy_duplicates)
{
    fakes_live = 0;
    struct store *s = mk(0);
    struct fake *f = fake_new(7);
    struct store_entry *e = store_add_value(s, 0, "src", 3, STORE_LIST, f, NOW);
    store_set_expire(s, e, NOW + 500);
    struct store_entry *r = store_rename(s, e, 2, "dst", 3, NOW);
    ck_assert_ptr_eq(store_value(r), f); /* moved, not copied */
    ck_assert_int_eq(r->expire_ms, NOW + 500);
    ck_assert_int_eq(fakes_live, 1);
    ck_assert_ptr_null(store_find(s, 0, "src", 3, NOW, 0));
    struct store_entry *c = store_copy(s, r, 1, "cpy", 3, NOW);
    ck_assert_ptr_ne(store_value(c), f);
    ck_assert_int_eq(fakes_live, 2);
    ck_assert_uint_eq(fake_len(store_value(c)), 7);
    /* The copy is independent. */
    fake_grow(store_value(c), 50);
    store_value_changed(s, c);
    ck_assert_uint_eq(fake_len(f), 7);
    store_flush(s, -1);
    ck_assert_int_eq(fakes_live, 0);
    ck_assert_uint_eq(store_used_bytes(s), 0);
    store_destroy(s);
}
END_TEST

START_TEST(test_eviction_counts_value_bytes)
{
    fakes_live = 0;
    struct store *s = mk(0);
    for (int i = 0; i < 10; i++) {
        char k[8];
        int n = snprintf(k, sizeof(k), "k%d", i);
        store_add_value(s, 0, k, (size_t)n, STORE_LIST, fake_new(10000), NOW);
    }
    /* Ten values of ~10 KB: a 50 KB budget keeps about half of them. */
    store_set_max_memory(s, 50000);
    ck_assert(store_over_budget(s));
    ck_assert_int_eq(store_evict(s, NOW), 0);
    ck_assert(!store_over_budget(s));
    ck_assert_uint_ge(store_count(s, 0), 3);
    ck_assert_uint_le(store_count(s, 0), 5);
    ck_assert_int_eq(fakes_live, (int)store_count(s, 0));
    ck_assert_ptr_null(store_find(s, 0, "k0", 2, NOW, 0)); /* the oldest went first */
    ck_assert_ptr_nonnull(store_find(s, 0, "k9", 2, NOW, 0));
    store_destroy(s);
    ck_assert_int_eq(fakes_live, 0);
}
END_TEST

/* The touch hook (WATCH) sees every change: create, overwrite, resize, TTL, aggregate change,
 * delete, lazy expiry, eviction, flush; reads do not fire it. */
struct touches {
    int n;
    char last[16];
    int flushes;
};

static void on_touch(void *ctx, int db, const char *key, size_t klen)
{
    struct touches *t = ctx;
    (void)db;
    if (!key) {
        t->flushes++;
        return;
    }
    t->n++;
    snprintf(t->last, sizeof(t->last), "%.*s", (int)klen, key);
}

START_TEST(test_touch_hook)
{
    fakes_live = 0;
    struct store *s = mk(0);
    struct touches t = { 0, "", 0 };
    store_set_touch_hook(s, on_touch, &t);
    struct store_entry *e = store_set_string(s, 0, "a", 1, "1", 1, 0, false, NOW);
    ck_assert_int_eq(t.n, 1);
    ck_assert_str_eq(t.last, "a");
    store_find(s, 0, "a", 1, NOW, STORE_READ);
    ck_assert_int_eq(t.n, 1); /* reads do not touch */
    e = store_string_resize(s, e, 5);
    ck_assert_int_eq(t.n, 2);
    store_set_expire(s, e, NOW + 5);
    ck_assert_int_eq(t.n, 3);
    ck_assert_ptr_null(store_find(s, 0, "a", 1, NOW + 6, 0)); /* lazy expiry */
    ck_assert_int_eq(t.n, 4);
    struct store_entry *v = store_add_value(s, 0, "v", 1, STORE_LIST, fake_new(3), NOW);
    ck_assert_int_eq(t.n, 5);
    ck_assert_str_eq(t.last, "v");
    fake_grow(store_value(v), 10);
    store_value_changed(s, v);
    ck_assert_int_eq(t.n, 6);
    ck_assert(store_delete(s, 0, "v", 1, NOW));
    ck_assert_int_eq(t.n, 7);
    store_set_string(s, 1, "z", 1, "1", 1, 0, false, NOW);
    store_flush(s, 1);
    ck_assert_int_eq(t.flushes, 1);
    store_set_touch_hook(s, NULL, NULL);
    store_set_string(s, 0, "q", 1, "1", 1, 0, false, NOW);
    ck_assert_str_ne(t.last, "q");
    store_destroy(s);
    ck_assert_int_eq(fakes_live, 0);
}
END_TEST

int main(void)
{
    Suite *su = suite_create("store_values");
    TCase *tc = tcase_create("values");
    tcase_add_test(tc, test_add_charge_and_change);
    tcase_add_test(tc, test_delete_overwrite_expire_free_the_value);
    tcase_add_test(tc, test_rename_moves_copy_duplicates);
    tcase_add_test(tc, test_eviction_counts_value_bytes);
    tcase_add_test(tc, test_touch_hook);
    suite_add_tcase(su, tc);
    SRunner *sr = srunner_create(su);
    srunner_run_all(sr, CK_ENV);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
