/* Unit tests for the list value type (cache/list.h): the element encoding at varint
 * boundaries, pushes and pops at both ends, index get/set, insert, LREM semantics, trim, LPOS,
 * moves and rotations, iteration both ways, byte accounting, the store's ops, and a random
 * model test against a plain array of strings. list_check() verifies the invariants after
 * every step. */
#include "cache/list.h"
#include "cache/store.h"
#include "conf/config.h"

#include <check.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NOW 1000000
#define MODEL_STEPS 20000
#define MODEL_SEEDS 8

/* ---- a plain model: an array of owned strings ---- */

struct elem {
    char *p;
    size_t n;
};

struct model {
    struct elem *v;
    size_t len, cap;
};

static struct elem elem_make(const char *p, size_t n)
{
    struct elem e = { malloc(n ? n : 1), n };
    if (n)
        memcpy(e.p, p, n);
    return e;
}

static void model_insert(struct model *m, size_t at, const char *p, size_t n)
{
    if (m->len == m->cap) {
        m->cap = m->cap ? m->cap * 2 : 16;
        m->v = realloc(m->v, m->cap * sizeof(*m->v));
    }
    memmove(m->v + at + 1, m->v + at, (m->len - at) * sizeof(*m->v));
    m->v[at] = elem_make(p, n);
    m->len++;
}

static void model_erase(struct model *m, size_t at)
{
    free(m->v[at].p);
    memmove(m->v + at, m->v + at + 1, (m->len - at - 1) * sizeof(*m->v));
    m->len--;
}

static void model_free(struct model *m)
{
    for (size_t i = 0; i < m->len; i++)
        free(m->v[i].p);
    free(m->v);
    memset(m, 0, sizeof(*m));
}

static bool elem_eq(const struct elem *e, const char *p, size_t n)
{
    return e->n == n && (n == 0 || memcmp(e->p, p, n) == 0);
}

/* The list holds exactly the model's elements, walking both ways. */
static void assert_same(const struct list *l, const struct model *m)
{
    ck_assert(list_check(l));
    ck_assert_uint_eq(list_len(l), m->len);
    struct list_iter it;
    const char *p;
    size_t n;
    list_iter_init(&it, l, 0, LIST_TAIL);
    for (size_t i = 0; i < m->len; i++) {
        ck_assert(list_iter_next(&it, &p, &n));
        ck_assert_msg(elem_eq(&m->v[i], p, n), "element %zu differs", i);
    }
    ck_assert(!list_iter_next(&it, &p, &n));
    if (m->len) {
        list_iter_init(&it, l, m->len - 1, LIST_HEAD);
        for (size_t i = m->len; i-- > 0;) {
            ck_assert(list_iter_next(&it, &p, &n));
            ck_assert(elem_eq(&m->v[i], p, n));
        }
        ck_assert(!list_iter_next(&it, &p, &n));
    }
}

static void push_str(struct list *l, enum list_where w, const char *s)
{
    list_push(l, w, s, strlen(s));
}

static struct list *from_strs(const char *const *v, size_t n)
{
    struct list *l = list_new();
    for (size_t i = 0; i < n; i++)
        push_str(l, LIST_TAIL, v[i]);
    return l;
}

/* The list as "a,b,c" for compact assertions. */
static void joined(const struct list *l, char *buf, size_t cap)
{
    struct list_iter it;
    const char *p;
    size_t n, w = 0;
    buf[0] = '\0';
    list_iter_init(&it, l, 0, LIST_TAIL);
    while (list_iter_next(&it, &p, &n) && w + n + 2 < cap) {
        if (w)
            buf[w++] = ',';
        memcpy(buf + w, p, n);
        w += n;
        buf[w] = '\0';
    }
}

#define ASSERT_LIST(l, expect)                  \
    do {                                        \
        char buf_[4096];                        \
        ck_assert(list_check(l));               \
        joined((l), buf_, sizeof(buf_));        \
        ck_assert_str_eq(buf_, (expect));       \
    } while (0)

/* ---- fixed cases ---- */

START_TEST(test_encoding_boundaries)
{
    static const size_t sizes[] = { 0, 1, 126, 127, 128, 129, 8000, 8187, 8188, 8192,
                                    16383, 16384, 16385, 100000, 2097151, 2097152 };
    size_t count = sizeof(sizes) / sizeof(sizes[0]);
    struct list *l = list_new();
    struct model m = { 0 };
    char *buf = malloc(2097152 + 1);
    for (size_t i = 0; i < count; i++) {
        memset(buf, 'a' + (int)(i % 26), sizes[i]);
        list_push(l, i % 2 ? LIST_HEAD : LIST_TAIL, buf, sizes[i]);
        model_insert(&m, i % 2 ? 0 : m.len, buf, sizes[i]);
        assert_same(l, &m);
    }
    for (size_t i = 0; i < count; i++) {
        const char *p;
        size_t n;
        ck_assert(list_index(l, (long long)i, &p, &n));
        ck_assert(elem_eq(&m.v[i], p, n));
        ck_assert(list_index(l, -(long long)(count - i), &p, &n));
        ck_assert(elem_eq(&m.v[i], p, n));
    }
    free(buf);
    list_free(l);
    model_free(&m);
}
END_TEST

static void collect(void *ctx, const char *p, size_t n)
{
    char *out = ctx;
    size_t w = strlen(out);
    if (w)
        out[w++] = ',';
    memcpy(out + w, p, n);
    out[w + n] = '\0';
}

START_TEST(test_push_pop_peek)
{
    struct list *l = list_new();
    const char *p;
    size_t n;
    ck_assert(!list_peek(l, LIST_HEAD, &p, &n));
    ck_assert_uint_eq(list_pop(l, LIST_TAIL, 3, NULL, NULL), 0);
    push_str(l, LIST_TAIL, "b");
    push_str(l, LIST_HEAD, "a");
    push_str(l, LIST_TAIL, "c");
    ASSERT_LIST(l, "a,b,c");
    ck_assert(list_peek(l, LIST_HEAD, &p, &n));
    ck_assert_uint_eq(n, 1);
    ck_assert_int_eq(p[0], 'a');
    ck_assert(list_peek(l, LIST_TAIL, &p, &n));
    ck_assert_int_eq(p[0], 'c');
    char out[64] = "";
    ck_assert_uint_eq(list_pop(l, LIST_TAIL, 2, collect, out), 2);
    ck_assert_str_eq(out, "c,b");
    ck_assert_uint_eq(list_len(l), 1);
    out[0] = '\0';
    ck_assert_uint_eq(list_pop(l, LIST_HEAD, 10, collect, out), 1);
    ck_assert_str_eq(out, "a");
    ck_assert_uint_eq(list_len(l), 0);
    ck_assert(list_check(l));
    list_free(l);
}
END_TEST

START_TEST(test_many_small_elements_are_lean)
{
    /* 100k elements of 8 bytes: about 10 bytes each plus node headers, not a pointer pair
     * per element. */
    struct list *l = list_new();
    for (int i = 0; i < 100000; i++) {
        char b[16];
        snprintf(b, sizeof(b), "%08d", i);
        list_push(l, i % 3 ? LIST_TAIL : LIST_HEAD, b, 8);
    }
    ck_assert(list_check(l));
    ck_assert_uint_le(list_bytes(l), 100000u * 13);
    /* Popping everything from one side gives back every byte but the header. */
    struct list *tmp = list_new();
    size_t empty = list_bytes(tmp);
    list_free(tmp);
    ck_assert_uint_eq(list_pop(l, LIST_HEAD, 100000, NULL, NULL), 100000);
    ck_assert_uint_eq(list_bytes(l), empty);
    ck_assert(list_check(l));
    list_free(l);
}
END_TEST

START_TEST(test_index_set)
{
    static const char *const v[] = { "a", "b", "c", "d" };
    struct list *l = from_strs(v, 4);
    const char *p;
    size_t n;
    ck_assert(list_index(l, -1, &p, &n) && p[0] == 'd');
    ck_assert(list_index(l, -4, &p, &n) && p[0] == 'a');
    ck_assert(!list_index(l, -5, &p, &n));
    ck_assert(!list_index(l, 4, &p, &n));
    ck_assert(!list_index(l, LLONG_MIN, &p, &n));
    ck_assert(!list_index(l, LLONG_MAX, &p, &n));
    ck_assert(list_set(l, 1, "BBB", 3));
    ck_assert(list_set(l, -1, "", 0));
    ck_assert(!list_set(l, 4, "x", 1));
    ck_assert(!list_set(l, -5, "x", 1));
    ASSERT_LIST(l, "a,BBB,c,");
    /* A value too large for the node: the node splits around it. */
    char *big = malloc(20000);
    memset(big, 'z', 20000);
    ck_assert(list_set(l, 2, big, 20000));
    ck_assert(list_check(l));
    ck_assert(list_index(l, 2, &p, &n));
    ck_assert_uint_eq(n, 20000);
    ck_assert(list_index(l, 3, &p, &n));
    ck_assert_uint_eq(n, 0);
    ck_assert(list_set(l, 2, "c", 1));
    ASSERT_LIST(l, "a,BBB,c,");
    free(big);
    list_free(l);
}
END_TEST

START_TEST(test_insert)
{
    static const char *const v[] = { "a", "b", "c", "b" };
    struct list *l = from_strs(v, 4);
    ck_assert(list_insert(l, LIST_HEAD, "b", 1, "x", 1));
    ASSERT_LIST(l, "a,x,b,c,b");
    ck_assert(list_insert(l, LIST_TAIL, "b", 1, "y", 1));
    ASSERT_LIST(l, "a,x,b,y,c,b");
    ck_assert(list_insert(l, LIST_HEAD, "a", 1, "0", 1));
    ck_assert(list_insert(l, LIST_TAIL, "b", 1, "", 0));
    ASSERT_LIST(l, "0,a,x,b,,y,c,b");
    ck_assert(!list_insert(l, LIST_TAIL, "nope", 4, "z", 1));
    ck_assert_uint_eq(list_len(l), 8);
    list_free(l);
}
END_TEST

START_TEST(test_remove_counts)
{
    static const char *const v[] = { "a", "b", "a", "c", "a", "b", "a" };
    struct list *l = from_strs(v, 7);
    ck_assert_uint_eq(list_remove(l, "a", 1, 2), 2);
    ASSERT_LIST(l, "b,c,a,b,a");
    ck_assert_uint_eq(list_remove(l, "b", 1, -1), 1);
    ASSERT_LIST(l, "b,c,a,a");
    ck_assert_uint_eq(list_remove(l, "a", 1, 0), 2);
    ASSERT_LIST(l, "b,c");
    ck_assert_uint_eq(list_remove(l, "zz", 2, 0), 0);
    ck_assert_uint_eq(list_remove(l, "c", 1, LLONG_MIN), 1);
    ck_assert_uint_eq(list_remove(l, "b", 1, LLONG_MAX), 1);
    ck_assert_uint_eq(list_len(l), 0);
    ck_assert(list_check(l));
    list_free(l);
}
END_TEST

START_TEST(test_remove_across_nodes_merges)
{
    /* 5000 elements of 100 bytes span many nodes; removing most of them merges what is left. */
    struct list *l = list_new();
    char b[100];
    for (int i = 0; i < 5000; i++) {
        memset(b, i % 10 ? 'x' : 'k', sizeof(b));
        list_push(l, LIST_TAIL, b, sizeof(b));
    }
    size_t before = list_bytes(l);
    memset(b, 'x', sizeof(b));
    ck_assert_uint_eq(list_remove(l, b, sizeof(b), 0), 4500);
    ck_assert(list_check(l));
    ck_assert_uint_eq(list_len(l), 500);
    ck_assert_uint_lt(list_bytes(l), before / 4);
    list_free(l);
}
END_TEST

START_TEST(test_trim)
{
    static const char *const v[] = { "a", "b", "c", "d", "e" };
    struct list *l = from_strs(v, 5);
    list_trim(l, 1, 1);
    ASSERT_LIST(l, "b,c,d");
    list_trim(l, 0, 0);
    ASSERT_LIST(l, "b,c,d");
    list_trim(l, 2, 2);
    ck_assert_uint_eq(list_len(l), 0);
    list_free(l);
    l = list_new();
    for (int i = 0; i < 20000; i++) {
        char s[8];
        int n = snprintf(s, sizeof(s), "%d", i);
        list_push(l, LIST_TAIL, s, (size_t)n);
    }
    list_trim(l, 9000, 10990);
    ck_assert_uint_eq(list_len(l), 10);
    ASSERT_LIST(l, "9000,9001,9002,9003,9004,9005,9006,9007,9008,9009");
    list_trim(l, SIZE_MAX, 0);
    ck_assert_uint_eq(list_len(l), 0);
    list_free(l);
}
END_TEST

static void record_index(void *ctx, size_t index)
{
    char *out = ctx;
    size_t w = strlen(out);
    snprintf(out + w, 64, "%s%zu", w ? "," : "", index);
}

START_TEST(test_pos)
{
    static const char *const v[] = { "a", "b", "c", "1", "2", "3", "c", "c" };
    struct list *l = from_strs(v, 8);
    char out[256];
#define POS(rank, count, maxlen, expect)                                             \
    do {                                                                             \
        out[0] = '\0';                                                               \
        list_pos(l, "c", 1, (rank), (count), (maxlen), record_index, out);           \
        ck_assert_str_eq(out, (expect));                                             \
    } while (0)
    POS(1, 1, 0, "2");
    POS(1, 0, 0, "2,6,7");
    POS(2, 0, 0, "6,7");
    POS(-1, 0, 0, "7,6,2");
    POS(-1, 2, 0, "7,6");
    POS(-3, 1, 0, "2");
    POS(-4, 1, 0, "");
    POS(1, 0, 3, "2");
    POS(1, 0, 2, "");
    POS(-1, 0, 2, "7,6");
    POS(LLONG_MAX, 0, 0, "");
#undef POS
    list_free(l);
}
END_TEST

START_TEST(test_move_and_rotate)
{
    static const char *const v[] = { "a", "b", "c" };
    struct list *l = from_strs(v, 3);
    struct list *d = list_new();
    char out[64] = "";
    ck_assert(list_move(l, LIST_TAIL, d, LIST_HEAD, collect, out));
    ck_assert_str_eq(out, "c");
    ASSERT_LIST(l, "a,b");
    ASSERT_LIST(d, "c");
    ck_assert(list_move(l, LIST_HEAD, l, LIST_TAIL, NULL, NULL));
    ASSERT_LIST(l, "b,a");
    ck_assert(list_move(l, LIST_TAIL, l, LIST_HEAD, NULL, NULL));
    ASSERT_LIST(l, "a,b");
    ck_assert(list_move(l, LIST_TAIL, l, LIST_TAIL, NULL, NULL));
    ASSERT_LIST(l, "a,b");
    ck_assert(list_move(d, LIST_HEAD, d, LIST_TAIL, NULL, NULL));
    ASSERT_LIST(d, "c");
    ck_assert(list_move(d, LIST_HEAD, l, LIST_TAIL, NULL, NULL));
    ck_assert_uint_eq(list_len(d), 0);
    ck_assert(!list_move(d, LIST_HEAD, l, LIST_TAIL, NULL, NULL));
    ASSERT_LIST(l, "a,b,c");
    /* Rotating a large element around a list of several nodes. */
    char *big = malloc(30000);
    memset(big, 'B', 30000);
    list_push(l, LIST_HEAD, big, 30000);
    for (int i = 0; i < 4; i++)
        ck_assert(list_move(l, LIST_HEAD, l, LIST_TAIL, NULL, NULL));
    ck_assert(list_check(l));
    const char *p;
    size_t n;
    ck_assert(list_index(l, 0, &p, &n));
    ck_assert_uint_eq(n, 30000);
    ck_assert(list_move(l, LIST_HEAD, l, LIST_TAIL, NULL, NULL));
    ck_assert(list_index(l, -1, &p, &n));
    ck_assert_uint_eq(n, 30000);
    ck_assert(p[0] == 'B' && p[29999] == 'B');
    free(big);
    list_free(l);
    list_free(d);
}
END_TEST

static int num(const char *p, size_t n)
{
    char b[16];
    ck_assert_uint_lt(n, sizeof(b));
    memcpy(b, p, n);
    b[n] = '\0';
    return atoi(b);
}

START_TEST(test_iter_ranges)
{
    struct list *l = list_new();
    for (int i = 0; i < 3000; i++) {
        char s[8];
        int n = snprintf(s, sizeof(s), "%d", i);
        list_push(l, LIST_TAIL, s, (size_t)n);
    }
    struct list_iter it;
    const char *p;
    size_t n;
    list_iter_init(&it, l, 1234, LIST_TAIL);
    for (int i = 1234; i < 1240; i++) {
        ck_assert(list_iter_next(&it, &p, &n));
        ck_assert_int_eq(num(p, n), i);
    }
    list_iter_init(&it, l, 2000, LIST_HEAD);
    for (int i = 2000; i > 1990; i--) {
        ck_assert(list_iter_next(&it, &p, &n));
        ck_assert_int_eq(num(p, n), i);
    }
    list_iter_init(&it, l, 3000, LIST_TAIL);
    ck_assert(!list_iter_next(&it, &p, &n));
    list_free(l);
}
END_TEST

START_TEST(test_dup_is_independent)
{
    static const char *const v[] = { "x", "y", "z" };
    struct list *l = from_strs(v, 3);
    struct list *d = list_dup(l);
    ck_assert(list_check(d));
    push_str(d, LIST_TAIL, "w");
    ASSERT_LIST(l, "x,y,z");
    ASSERT_LIST(d, "x,y,z,w");
    list_free(l);
    list_free(d);
}
END_TEST

START_TEST(test_store_ops)
{
    struct store_options o;
    memset(&o, 0, sizeof(o));
    o.policy = POLICY_ALLKEYS_LRU;
    o.samples = 5;
    o.databases = 2;
    struct store *s = store_create(&o);
    store_register_type(s, STORE_LIST, &list_value_ops);
    uint64_t base = store_used_bytes(s);
    struct list *l = list_new();
    push_str(l, LIST_TAIL, "a");
    struct store_entry *e = store_add_value(s, 0, "k", 1, STORE_LIST, l, NOW);
    for (int i = 0; i < 1000; i++)
        push_str(l, LIST_TAIL, "some element");
    ck_assert_ptr_eq(store_value_changed(s, e), e);
    ck_assert_uint_ge(store_used_bytes(s) - base, list_bytes(l));
    struct store_entry *c = store_copy(s, e, 1, "k2", 2, NOW);
    ck_assert_uint_eq(list_len(store_value(c)), 1001);
    list_pop(l, LIST_HEAD, 2000, NULL, NULL);
    ck_assert_ptr_null(store_value_changed(s, e)); /* emptied: deleted */
    ck_assert_ptr_null(store_find(s, 0, "k", 1, NOW, 0));
    store_flush(s, -1);
    ck_assert_uint_eq(store_used_bytes(s), 0);
    store_destroy(s);
}
END_TEST

/* ---- the random model test ---- */

static uint64_t rng_next(uint64_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    return *x;
}

/* Elements from a small alphabet (so that LREM, LINSERT and LPOS find matches), sometimes
 * long, now and then larger than a node (unless small_only). */
static size_t random_elem(uint64_t *rng, char *buf, bool small_only)
{
    uint64_t r = rng_next(rng) % (small_only ? 90 : 100);
    size_t n;
    if (r < 60)
        n = rng_next(rng) % 3;
    else if (r < 90)
        n = rng_next(rng) % (small_only ? 12 : 200);
    else if (r < 98)
        n = 1000 + rng_next(rng) % 3000;
    else
        n = LIST_NODE_BYTES - 20 + rng_next(rng) % 200;
    char c = (char)('a' + rng_next(rng) % 3);
    memset(buf, c, n);
    return n;
}

static size_t model_norm(const struct model *m, long long idx, bool *ok)
{
    long long len = (long long)m->len;
    if (idx < 0)
        idx += len;
    *ok = idx >= 0 && idx < len;
    return (size_t)(*ok ? idx : 0);
}

/* small_only: elements of at most 11 bytes, so nodes hold hundreds of them. */
static void run_model(uint64_t seed, bool small_only)
{
    uint64_t rng = seed * 0x9E3779B97F4A7C15ull + 1;
    struct list *l = list_new();
    struct model m = { 0 };
    char *buf = malloc(LIST_NODE_BYTES + 256);
    char *buf2 = malloc(LIST_NODE_BYTES + 256);
    for (int step = 0; step < MODEL_STEPS; step++) {
        /* Phases: mostly pushes (the list grows over many nodes), mixed, then mixed again,
         * so that every operation meets small and large lists. */
        uint64_t op = rng_next(&rng) % 100;
        if ((step / (small_only ? 5000 : 1000)) % 3 == 0 && rng_next(&rng) % 8 < 7)
            op = 0;
        size_t n = random_elem(&rng, buf, small_only);
        const char *p;
        size_t pn;
        bool ok;
        if (op < 25) { /* push */
            enum list_where w = rng_next(&rng) % 2 ? LIST_HEAD : LIST_TAIL;
            list_push(l, w, buf, n);
            model_insert(&m, w == LIST_HEAD ? 0 : m.len, buf, n);
        } else if (op < 40) { /* pop */
            enum list_where w = rng_next(&rng) % 2 ? LIST_HEAD : LIST_TAIL;
            size_t k = rng_next(&rng) % 4;
            size_t got = list_pop(l, w, k, NULL, NULL);
            ck_assert_uint_eq(got, k < m.len ? k : m.len);
            for (size_t i = 0; i < got; i++)
                model_erase(&m, w == LIST_HEAD ? 0 : m.len - 1);
        } else if (op < 50) { /* index */
            long long idx = (long long)(rng_next(&rng) % (m.len * 2 + 2)) - (long long)m.len - 1;
            size_t i = model_norm(&m, idx, &ok);
            ck_assert(list_index(l, idx, &p, &pn) == ok);
            if (ok)
                ck_assert(elem_eq(&m.v[i], p, pn));
        } else if (op < 58) { /* set */
            long long idx = (long long)(rng_next(&rng) % (m.len * 2 + 2)) - (long long)m.len - 1;
            size_t i = model_norm(&m, idx, &ok);
            ck_assert(list_set(l, idx, buf, n) == ok);
            if (ok) {
                free(m.v[i].p);
                m.v[i] = elem_make(buf, n);
            }
        } else if (op < 68) { /* insert */
            size_t pl = random_elem(&rng, buf2, small_only);
            enum list_where side = rng_next(&rng) % 2 ? LIST_HEAD : LIST_TAIL;
            size_t at = m.len;
            for (size_t i = 0; i < m.len; i++)
                if (elem_eq(&m.v[i], buf2, pl)) {
                    at = i;
                    break;
                }
            ck_assert(list_insert(l, side, buf2, pl, buf, n) == (at < m.len));
            if (at < m.len)
                model_insert(&m, side == LIST_HEAD ? at : at + 1, buf, n);
        } else if (op < 76) { /* remove */
            long long count = (long long)(rng_next(&rng) % 9) - 4;
            if (count == 0 && rng_next(&rng) % 4)
                count = 1;
            size_t want = count == 0 ? SIZE_MAX : (size_t)(count < 0 ? -count : count);
            size_t removed = 0;
            if (count >= 0) {
                for (size_t i = 0; i < m.len && removed < want;)
                    if (elem_eq(&m.v[i], buf, n)) {
                        model_erase(&m, i);
                        removed++;
                    } else {
                        i++;
                    }
            } else {
                for (size_t i = m.len; i-- > 0 && removed < want;)
                    if (elem_eq(&m.v[i], buf, n)) {
                        model_erase(&m, i);
                        removed++;
                    }
            }
            ck_assert_uint_eq(list_remove(l, buf, n, count), removed);
        } else if (op < 80) { /* trim */
            size_t a = m.len ? rng_next(&rng) % (m.len / 16 + 2) : 0;
            size_t b = m.len ? rng_next(&rng) % (m.len / 16 + 2) : 0;
            list_trim(l, a, b);
            size_t keep_from = a, keep_to = m.len > b ? m.len - b : 0;
            if (keep_from >= keep_to) {
                while (m.len)
                    model_erase(&m, m.len - 1);
            } else {
                while (m.len > keep_to)
                    model_erase(&m, m.len - 1);
                for (size_t i = 0; i < keep_from; i++)
                    model_erase(&m, 0);
            }
        } else if (op < 88) { /* pos */
            long long rank = (long long)(rng_next(&rng) % 5) - 2;
            if (rank == 0)
                rank = 1;
            size_t count = rng_next(&rng) % 3, maxlen = rng_next(&rng) % (m.len + 2);
            char got[4096] = "", want[4096] = "";
            list_pos(l, buf, n, rank, count, maxlen, record_index, got);
            size_t limit = maxlen && maxlen < m.len ? maxlen : m.len;
            size_t skip = (size_t)(rank < 0 ? -rank : rank) - 1, seen = 0, rep = 0;
            for (size_t k = 0; k < limit && strlen(want) < 4000; k++) {
                size_t i = rank > 0 ? k : m.len - 1 - k;
                if (!elem_eq(&m.v[i], buf, n) || seen++ < skip)
                    continue;
                record_index(want, i);
                if (count && ++rep >= count)
                    break;
            }
            if (strlen(want) < 4000)
                ck_assert_str_eq(got, want);
        } else if (op < 96) { /* move / rotate */
            enum list_where from = rng_next(&rng) % 2 ? LIST_HEAD : LIST_TAIL;
            enum list_where to = rng_next(&rng) % 2 ? LIST_HEAD : LIST_TAIL;
            ck_assert(list_move(l, from, l, to, NULL, NULL) == (m.len > 0));
            if (m.len) {
                struct elem e = elem_make(m.v[from == LIST_HEAD ? 0 : m.len - 1].p,
                                          m.v[from == LIST_HEAD ? 0 : m.len - 1].n);
                model_erase(&m, from == LIST_HEAD ? 0 : m.len - 1);
                model_insert(&m, to == LIST_HEAD ? 0 : m.len, e.p, e.n);
                free(e.p);
            }
        } else { /* dup and compare, then keep the copy */
            struct list *d = list_dup(l);
            list_free(l);
            l = d;
        }
        ck_assert(list_check(l));
        ck_assert_uint_eq(list_len(l), m.len);
        if (step % 64 == 0)
            assert_same(l, &m);
    }
    assert_same(l, &m);
    list_free(l);
    model_free(&m);
    free(buf);
    free(buf2);
}

START_TEST(test_random_model)
{
    run_model((uint64_t)_i + 1, _i % 2 == 1);
}
END_TEST

int main(void)
{
    Suite *su = suite_create("list");
    TCase *tc = tcase_create("list");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_encoding_boundaries);
    tcase_add_test(tc, test_push_pop_peek);
    tcase_add_test(tc, test_many_small_elements_are_lean);
    tcase_add_test(tc, test_index_set);
    tcase_add_test(tc, test_insert);
    tcase_add_test(tc, test_remove_counts);
    tcase_add_test(tc, test_remove_across_nodes_merges);
    tcase_add_test(tc, test_trim);
    tcase_add_test(tc, test_pos);
    tcase_add_test(tc, test_move_and_rotate);
    tcase_add_test(tc, test_iter_ranges);
    tcase_add_test(tc, test_dup_is_independent);
    tcase_add_test(tc, test_store_ops);
    tcase_add_loop_test(tc, test_random_model, 0, MODEL_SEEDS);
    suite_add_tcase(su, tc);
    SRunner *sr = srunner_create(su);
    srunner_run_all(sr, CK_ENV);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
