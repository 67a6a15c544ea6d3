/* The sorted set value type (cache/zset.h): a skiplist with spans (Pugh's skiplist as Redis
 * extends it: repeated scores ordered by member, a backward link at level 0, spans for ranks)
 * and a member index on cache/fieldmap.h whose values are node addresses.
 *
 * Invariants (beyond those of zset.h):
 *  - head is a node without member whose nlevel is its capacity (>= level, <= ZSET_MAX_LEVEL);
 *    its links above `level` are unused (forward NULL); it grows by realloc, which is safe
 *    because no node links to the header (the first node's backward is NULL);
 *  - a node's level is drawn once (P = 1/4 per extra level, as Redis) and kept when the node is
 *    relinked after a score change;
 *  - bytes counts the struct, the header and every node; the index counts itself (fieldmap_bytes);
 *  - every walk is bounded by the number of nodes (each step moves forward in the list). */
#include "cache/zset.h"

#include "cache/fieldmap.h"
#include "conf/xmalloc.h"

#include <malloc.h>
#include <stdlib.h>
#include <string.h>

/* glibc keeps one size_t before each chunk. */
#define CHUNK_OVERHEAD sizeof(size_t)
/* Header links allocated for a new set; the header doubles up to ZSET_MAX_LEVEL. */
#define ZSET_HEAD_LEVELS_MIN 4

struct zset {
    struct zset_node *head;
    struct zset_node *tail;
    size_t len;
    uint32_t level; /* levels in use, >= 1 */
    bool compact;
    uint64_t rng;   /* xorshift state for node levels and zset_random; never 0 */
    size_t bytes;   /* struct + header + nodes */
    struct fieldmap *index;
    uint8_t seed[16];
};

static size_t alloc_size(const void *p)
{
    return malloc_usable_size((void *)p) + CHUNK_OVERHEAD;
}

static uint64_t rng_next(uint64_t *rng)
{
    uint64_t x = *rng;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *rng = x;
    return x * 0x2545F4914F6CDD1Dull;
}

/* A compact set stores scores as Redis's listpack does (d2string, then read back), which
 * turns -0 into 0; every other double survives that round trip. */
static double compact_score(const struct zset *z, double score)
{
    return z->compact && score == 0 ? 0.0 : score;
}

/* 1 + the number of leading 2-bit groups that are 0: P(level > k) = 4^-k, capped. */
static uint32_t random_level(struct zset *z)
{
    uint64_t r = rng_next(&z->rng);
    uint32_t level = 1;
    while (level < ZSET_MAX_LEVEL && (r & 3) == 0) {
        level++;
        r >>= 2;
    }
    return level;
}

int zset_member_cmp(const char *a, size_t alen, const char *b, size_t blen)
{
    size_t n = alen < blen ? alen : blen;
    int r = n ? memcmp(a, b, n) : 0;
    if (r)
        return r;
    return alen < blen ? -1 : alen > blen;
}

/* Order of node n against (score, m): < 0 when n comes first. */
static int node_cmp(const struct zset_node *n, double score, const char *m, size_t mlen)
{
    if (n->score < score)
        return -1;
    if (n->score > score)
        return 1;
    return zset_member_cmp(zset_node_member(n), n->mlen, m, mlen);
}

static struct zset_node *node_alloc(uint32_t nlevel, double score, const char *m, size_t mlen)
{
    struct zset_node *n = xmalloc(sizeof(*n) + nlevel * sizeof(struct zset_level) + mlen);
    n->score = score;
    n->backward = NULL;
    n->mlen = (uint32_t)mlen;
    n->nlevel = nlevel;
    if (mlen)
        memcpy((char *)(n->level + nlevel), m, mlen);
    return n;
}

/* ---- lifetime ---- */

struct zset *zset_new(const uint8_t seed[16])
{
    struct zset *z = xcalloc(1, sizeof(*z));
    z->head = node_alloc(ZSET_HEAD_LEVELS_MIN, 0, NULL, 0);
    for (uint32_t i = 0; i < ZSET_HEAD_LEVELS_MIN; i++) {
        z->head->level[i].forward = NULL;
        z->head->level[i].span = 0;
    }
    z->level = 1;
    z->compact = true;
    memcpy(z->seed, seed, sizeof(z->seed));
    uint64_t r;
    memcpy(&r, seed + 8, sizeof(r));
    z->rng = (r ^ 0x9E3779B97F4A7C15ull) ? (r ^ 0x9E3779B97F4A7C15ull) : 1;
    z->index = fieldmap_new(seed);
    z->bytes = alloc_size(z) + alloc_size(z->head);
    return z;
}

void zset_free(struct zset *z)
{
    if (!z)
        return;
    struct zset_node *n = z->head->level[0].forward;
    while (n) {
        struct zset_node *next = n->level[0].forward;
        free(n);
        n = next;
    }
    free(z->head);
    fieldmap_free(z->index);
    free(z);
}

struct zset *zset_dup(const struct zset *z)
{
    struct zset *d = zset_new(z->seed);
    d->compact = z->compact; /* first: a compact set would store a -0 score as 0 */
    /* From the tail: each insert lands at the head, so the descent does not move forward. */
    for (const struct zset_node *n = z->tail; n; n = n->backward)
        zset_insert(d, n->score, zset_node_member(n), n->mlen);
    return d;
}

size_t zset_len(const struct zset *z) { return z->len; }

size_t zset_bytes(const struct zset *z) { return z->bytes + fieldmap_bytes(z->index); }

bool zset_is_compact(const struct zset *z) { return z->compact; }

void zset_recompact(struct zset *z)
{
    if (z->compact || z->len > ZSET_COMPACT_ENTRIES)
        return;
    for (const struct zset_node *n = zset_first(z); n; n = n->level[0].forward)
        if (n->mlen > ZSET_COMPACT_VALUE)
            return;
    z->compact = true;
    for (struct zset_node *n = zset_first(z); n; n = n->level[0].forward)
        n->score = compact_score(z, n->score); /* -0 == 0: the order is unchanged */
}

/* ---- linking ---- */

/* Makes the header hold at least `levels` links. */
static void head_reserve(struct zset *z, uint32_t levels)
{
    uint32_t cap = z->head->nlevel;
    if (cap >= levels)
        return;
    uint32_t ncap = cap * 2 > levels ? cap * 2 : levels;
    if (ncap > ZSET_MAX_LEVEL)
        ncap = ZSET_MAX_LEVEL;
    z->bytes -= alloc_size(z->head);
    z->head = xrealloc(z->head, sizeof(struct zset_node) + ncap * sizeof(struct zset_level));
    z->bytes += alloc_size(z->head);
    for (uint32_t i = cap; i < ncap; i++) {
        z->head->level[i].forward = NULL;
        z->head->level[i].span = 0;
    }
    z->head->nlevel = ncap;
}

/* Links node x (its score, member and nlevel set) at its place in the order. */
static void link_node(struct zset *z, struct zset_node *x)
{
    struct zset_node *update[ZSET_MAX_LEVEL];
    size_t rank[ZSET_MAX_LEVEL];
    head_reserve(z, x->nlevel);
    const char *m = zset_node_member(x);
    struct zset_node *p = z->head;
    for (int i = (int)z->level - 1; i >= 0; i--) {
        rank[i] = i == (int)z->level - 1 ? 0 : rank[i + 1];
        while (p->level[i].forward && node_cmp(p->level[i].forward, x->score, m, x->mlen) < 0) {
            rank[i] += p->level[i].span;
            p = p->level[i].forward;
        }
        update[i] = p;
    }
    if (x->nlevel > z->level) {
        for (uint32_t i = z->level; i < x->nlevel; i++) {
            rank[i] = 0;
            update[i] = z->head;
            z->head->level[i].forward = NULL;
            z->head->level[i].span = z->len;
        }
        z->level = x->nlevel;
    }
    for (uint32_t i = 0; i < x->nlevel; i++) {
        x->level[i].forward = update[i]->level[i].forward;
        update[i]->level[i].forward = x;
        x->level[i].span = update[i]->level[i].span - (rank[0] - rank[i]);
        update[i]->level[i].span = (rank[0] - rank[i]) + 1;
    }
    for (uint32_t i = x->nlevel; i < z->level; i++)
        update[i]->level[i].span++;
    x->backward = update[0] == z->head ? NULL : update[0];
    if (x->level[0].forward)
        x->level[0].forward->backward = x;
    else
        z->tail = x;
    z->len++;
}

/* update[i] = the last node before x at level i (x is in the set). */
static void find_update(const struct zset *z, const struct zset_node *x,
                        struct zset_node **update)
{
    if (!x->backward) { /* the first node: only the header precedes it */
        for (uint32_t i = 0; i < z->level; i++)
            update[i] = z->head;
        return;
    }
    const char *m = zset_node_member(x);
    struct zset_node *p = z->head;
    for (int i = (int)z->level - 1; i >= 0; i--) {
        while (p->level[i].forward && node_cmp(p->level[i].forward, x->score, m, x->mlen) < 0)
            p = p->level[i].forward;
        update[i] = p;
    }
}

/* Unlinks x given its predecessors; x is not freed. */
static void unlink_node(struct zset *z, struct zset_node *x, struct zset_node **update)
{
    for (uint32_t i = 0; i < z->level; i++) {
        if (update[i]->level[i].forward == x) {
            update[i]->level[i].span += x->level[i].span - 1;
            update[i]->level[i].forward = x->level[i].forward;
        } else {
            update[i]->level[i].span -= 1;
        }
    }
    if (x->level[0].forward)
        x->level[0].forward->backward = x->backward;
    else
        z->tail = x->backward;
    while (z->level > 1 && z->head->level[z->level - 1].forward == NULL)
        z->level--;
    z->len--;
}

/* Drops an unlinked node from the index and frees it. */
static void node_release(struct zset *z, struct zset_node *x)
{
    fieldmap_delete(z->index, zset_node_member(x), x->mlen);
    z->bytes -= alloc_size(x);
    free(x);
}

/* ---- members ---- */

struct zset_node *zset_find(const struct zset *z, const char *m, size_t mlen)
{
    const struct fieldmap_entry *e = fieldmap_find(z->index, m, mlen);
    if (!e)
        return NULL;
    struct zset_node *n;
    memcpy(&n, fieldmap_val(e), sizeof(n));
    return n;
}

struct zset_node *zset_insert(struct zset *z, double score, const char *m, size_t mlen)
{
    /* Redis converts a listpack before inserting the member that does not fit in it. */
    if (z->compact && (z->len + 1 > ZSET_COMPACT_ENTRIES || mlen > ZSET_COMPACT_VALUE))
        z->compact = false;
    struct zset_node *x = node_alloc(random_level(z), compact_score(z, score), m, mlen);
    link_node(z, x);
    fieldmap_set(z->index, m, mlen, &x, sizeof(x), NULL);
    z->bytes += alloc_size(x);
    return x;
}

void zset_update_score(struct zset *z, struct zset_node *x, double score)
{
    score = compact_score(z, score);
    const char *m = zset_node_member(x);
    const struct zset_node *prev = x->backward, *next = x->level[0].forward;
    if ((!prev || node_cmp(prev, score, m, x->mlen) < 0) &&
        (!next || node_cmp(next, score, m, x->mlen) > 0)) {
        x->score = score; /* still between its neighbours: no relink */
        return;
    }
    struct zset_node *update[ZSET_MAX_LEVEL];
    find_update(z, x, update);
    unlink_node(z, x, update);
    x->score = score;
    link_node(z, x);
}

void zset_delete_node(struct zset *z, struct zset_node *x)
{
    struct zset_node *update[ZSET_MAX_LEVEL];
    find_update(z, x, update);
    unlink_node(z, x, update);
    node_release(z, x);
}

bool zset_delete(struct zset *z, const char *m, size_t mlen)
{
    struct zset_node *x = zset_find(z, m, mlen);
    if (!x)
        return false;
    zset_delete_node(z, x);
    return true;
}

/* ---- order and ranks ---- */

struct zset_node *zset_first(const struct zset *z) { return z->head->level[0].forward; }

struct zset_node *zset_last(const struct zset *z) { return z->tail; }

size_t zset_rank(const struct zset *z, const struct zset_node *x)
{
    const char *m = zset_node_member(x);
    const struct zset_node *p = z->head;
    size_t r = 0;
    for (int i = (int)z->level - 1; i >= 0; i--) {
        while (p->level[i].forward &&
               node_cmp(p->level[i].forward, x->score, m, x->mlen) <= 0) {
            r += p->level[i].span;
            p = p->level[i].forward;
        }
        if (p == x)
            break;
    }
    return r - 1;
}

struct zset_node *zset_at_rank(const struct zset *z, size_t r)
{
    if (r >= z->len)
        return NULL;
    size_t target = r + 1, traversed = 0;
    struct zset_node *p = z->head;
    for (int i = (int)z->level - 1; i >= 0; i--) {
        while (p->level[i].forward && traversed + p->level[i].span <= target) {
            traversed += p->level[i].span;
            p = p->level[i].forward;
        }
        if (traversed == target)
            return p;
    }
    return NULL;
}

size_t zset_delete_rank_range(struct zset *z, size_t start, size_t end)
{
    struct zset_node *update[ZSET_MAX_LEVEL];
    size_t first = start + 1, traversed = 0, removed = 0;
    struct zset_node *p = z->head;
    for (int i = (int)z->level - 1; i >= 0; i--) {
        while (p->level[i].forward && traversed + p->level[i].span < first) {
            traversed += p->level[i].span;
            p = p->level[i].forward;
        }
        update[i] = p;
    }
    traversed++;
    struct zset_node *x = p->level[0].forward;
    while (x && traversed <= end + 1) {
        struct zset_node *next = x->level[0].forward;
        unlink_node(z, x, update);
        node_release(z, x);
        removed++;
        traversed++;
        x = next;
    }
    return removed;
}

/* ---- range walks ---- */

/* Moves forward at each level while go(next node) holds. Returns the last node passed (the
 * header when none); update[i] (optional) gets the last node at level i, *passed how many
 * nodes were passed. */
typedef bool zset_go_fn(const struct zset_node *n, const void *range);

static struct zset_node *descend(const struct zset *z, zset_go_fn *go, const void *range,
                                 struct zset_node **update, size_t *passed)
{
    struct zset_node *p = z->head;
    size_t r = 0;
    for (int i = (int)z->level - 1; i >= 0; i--) {
        while (p->level[i].forward && go(p->level[i].forward, range)) {
            r += p->level[i].span;
            p = p->level[i].forward;
        }
        if (update)
            update[i] = p;
    }
    *passed = r;
    return p;
}

/* Deletes from update[0]'s successor while in_range(node) holds. */
static size_t delete_while(struct zset *z, struct zset_node **update, zset_go_fn *in_range,
                           const void *range)
{
    size_t removed = 0;
    struct zset_node *x = update[0]->level[0].forward;
    while (x && in_range(x, range)) {
        struct zset_node *next = x->level[0].forward;
        unlink_node(z, x, update);
        node_release(z, x);
        removed++;
        x = next;
    }
    return removed;
}

/* ---- score ranges ---- */

static bool score_below_min(const struct zset_node *n, const void *range)
{
    return !zset_score_gte_min(n->score, range);
}

static bool score_within_max(const struct zset_node *n, const void *range)
{
    return zset_score_lte_max(n->score, range);
}

/* Redis's zslIsInRange: false when the range is empty or misses the set. */
static bool score_range_hits(const struct zset *z, const struct zset_score_range *r)
{
    if (r->min > r->max || (r->min == r->max && (r->minex || r->maxex)))
        return false;
    if (!z->tail || !zset_score_gte_min(z->tail->score, r))
        return false;
    return zset_score_lte_max(zset_first(z)->score, r);
}

struct zset_node *zset_first_in_score(const struct zset *z, const struct zset_score_range *r,
                                      size_t *rank)
{
    if (!score_range_hits(z, r))
        return NULL;
    size_t passed;
    struct zset_node *x = descend(z, score_below_min, r, NULL, &passed)->level[0].forward;
    if (!x || !zset_score_lte_max(x->score, r))
        return NULL;
    if (rank)
        *rank = passed;
    return x;
}

struct zset_node *zset_last_in_score(const struct zset *z, const struct zset_score_range *r,
                                     size_t *rank)
{
    if (!score_range_hits(z, r))
        return NULL;
    size_t passed;
    struct zset_node *x = descend(z, score_within_max, r, NULL, &passed);
    if (x == z->head || !zset_score_gte_min(x->score, r))
        return NULL;
    if (rank)
        *rank = passed - 1;
    return x;
}

size_t zset_count_score(const struct zset *z, const struct zset_score_range *r)
{
    size_t first, last;
    if (!zset_first_in_score(z, r, &first) || !zset_last_in_score(z, r, &last))
        return 0;
    return last - first + 1;
}

size_t zset_delete_score_range(struct zset *z, const struct zset_score_range *r)
{
    struct zset_node *update[ZSET_MAX_LEVEL];
    size_t passed;
    descend(z, score_below_min, r, update, &passed);
    return delete_while(z, update, score_within_max, r);
}

/* ---- lex ranges ---- */

/* Member m against bound b: "-" is below every member, "+" above. */
static int lex_cmp_bound(const char *m, size_t mlen, const struct zset_lex_bound *b)
{
    if (b->kind == ZSET_LEX_NEG_INF)
        return 1;
    if (b->kind == ZSET_LEX_POS_INF)
        return -1;
    return zset_member_cmp(m, mlen, b->p, b->len);
}

bool zset_lex_gte_min(const char *m, size_t mlen, const struct zset_lex_range *r)
{
    int c = lex_cmp_bound(m, mlen, &r->min);
    return r->min.ex ? c > 0 : c >= 0;
}

bool zset_lex_lte_max(const char *m, size_t mlen, const struct zset_lex_range *r)
{
    int c = lex_cmp_bound(m, mlen, &r->max);
    return r->max.ex ? c < 0 : c <= 0;
}

static bool lex_below_min(const struct zset_node *n, const void *range)
{
    return !zset_lex_gte_min(zset_node_member(n), n->mlen, range);
}

static bool lex_within_max(const struct zset_node *n, const void *range)
{
    return zset_lex_lte_max(zset_node_member(n), n->mlen, range);
}

/* Redis's zslIsInLexRange. */
static bool lex_range_hits(const struct zset *z, const struct zset_lex_range *r)
{
    int c;
    if (r->min.kind != r->max.kind)
        c = (int)r->min.kind - (int)r->max.kind;
    else if (r->min.kind == ZSET_LEX_VALUE)
        c = zset_member_cmp(r->min.p, r->min.len, r->max.p, r->max.len);
    else
        c = 0;
    if (c > 0 || (c == 0 && (r->min.ex || r->max.ex)))
        return false;
    if (!z->tail || !zset_lex_gte_min(zset_node_member(z->tail), z->tail->mlen, r))
        return false;
    const struct zset_node *f = zset_first(z);
    return zset_lex_lte_max(zset_node_member(f), f->mlen, r);
}

struct zset_node *zset_first_in_lex(const struct zset *z, const struct zset_lex_range *r,
                                    size_t *rank)
{
    if (!lex_range_hits(z, r))
        return NULL;
    size_t passed;
    struct zset_node *x = descend(z, lex_below_min, r, NULL, &passed)->level[0].forward;
    if (!x || !zset_lex_lte_max(zset_node_member(x), x->mlen, r))
        return NULL;
    if (rank)
        *rank = passed;
    return x;
}

struct zset_node *zset_last_in_lex(const struct zset *z, const struct zset_lex_range *r,
                                   size_t *rank)
{
    if (!lex_range_hits(z, r))
        return NULL;
    size_t passed;
    struct zset_node *x = descend(z, lex_within_max, r, NULL, &passed);
    if (x == z->head || !zset_lex_gte_min(zset_node_member(x), x->mlen, r))
        return NULL;
    if (rank)
        *rank = passed - 1;
    return x;
}

size_t zset_count_lex(const struct zset *z, const struct zset_lex_range *r)
{
    size_t first, last;
    if (!zset_first_in_lex(z, r, &first) || !zset_last_in_lex(z, r, &last))
        return 0;
    return last >= first ? last - first + 1 : 0;
}

size_t zset_delete_lex_range(struct zset *z, const struct zset_lex_range *r)
{
    struct zset_node *update[ZSET_MAX_LEVEL];
    size_t passed;
    descend(z, lex_below_min, r, update, &passed);
    return delete_while(z, update, lex_within_max, r);
}

/* ---- walks ---- */

struct zset_scan_ctx {
    zset_scan_fn *fn;
    void *ctx;
};

static void zset_scan_cb(void *ctx, const struct fieldmap_entry *e)
{
    const struct zset_scan_ctx *sc = ctx;
    const struct zset_node *n;
    memcpy(&n, fieldmap_val(e), sizeof(n));
    sc->fn(sc->ctx, fieldmap_key(e), e->klen, n->score);
}

uint64_t zset_scan(const struct zset *z, uint64_t cursor, zset_scan_fn *fn, void *ctx)
{
    struct zset_scan_ctx sc = { fn, ctx };
    return fieldmap_scan(z->index, cursor, zset_scan_cb, &sc);
}

struct zset_node *zset_random(struct zset *z)
{
    const struct fieldmap_entry *e = fieldmap_random(z->index, &z->rng);
    if (!e)
        return NULL;
    struct zset_node *n;
    memcpy(&n, fieldmap_val(e), sizeof(n));
    return n;
}

/* ---- the store's ops ---- */

static void zset_ops_free(void *v) { zset_free(v); }
static void *zset_ops_dup(const void *v) { return zset_dup(v); }
static size_t zset_ops_bytes(const void *v) { return zset_bytes(v); }
static size_t zset_ops_len(const void *v) { return zset_len(v); }

const struct store_value_ops zset_value_ops = {
    zset_ops_free,
    zset_ops_dup,
    zset_ops_bytes,
    zset_ops_len,
};
