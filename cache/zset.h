/* The sorted set value type: a skiplist with spans ordered by (score, member bytes) for
 * O(log N) insert, delete, rank, and score / lex / rank ranges, plus a member index on
 * cache/fieldmap.h (member -> node pointer, stored as the dict value bytes) for O(1) lookups.
 *
 * Invariants:
 *  - nodes are ordered by score, then by member bytes (memcmp, a shorter prefix first), as
 *    Redis orders them; scores are never NaN; a member appears once;
 *  - every node is in the index under its member, the index value being the node's address;
 *    a node keeps its address while it is in the set (a score update relinks the same node);
 *  - level[i].span of a node (or of the header) is how many level-0 steps its level-i link
 *    jumps; the header's spans give ranks; the header has capacity for the levels in use;
 *  - zset_bytes() is every byte allocated for the set (its struct, the header, the nodes and
 *    the index, each allocation counted as malloc_usable_size + one chunk header);
 *  - `compact` says whether Redis 7.0 would hold this set as a listpack (zset-max-listpack-
 *    entries 128, zset-max-listpack-value 64): true for a new set, false for good once an
 *    insert makes it longer or adds a longer member, true again only through zset_recompact()
 *    (as Redis's zsetConvertToListpackIfNeeded). ZSCAN uses it to answer in one step as
 *    Redis does for a listpack; and a compact set stores a score of -0 as 0, as a listpack
 *    does (Redis writes the score as text and reads it back); nothing else depends on it.
 * A zset is owned by whoever created it until handed to the store (store_add_value); the store
 * frees it through zset_value_ops. Node pointers stay valid until that node is deleted; member
 * pointers (zset_node_member) live as long as their node. */
#ifndef CACHE_ZSET_H
#define CACHE_ZSET_H

#include "cache/store.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ZSET_MAX_LEVEL 32          /* as Redis's ZSKIPLIST_MAXLEVEL */
#define ZSET_COMPACT_ENTRIES 128   /* Redis's zset-max-listpack-entries default */
#define ZSET_COMPACT_VALUE 64      /* Redis's zset-max-listpack-value default */

struct zset_node;

struct zset_level {
    struct zset_node *forward;
    size_t span;
};

struct zset_node {
    double score;
    struct zset_node *backward; /* NULL for the first node */
    uint32_t mlen;
    uint32_t nlevel;
    struct zset_level level[];  /* nlevel links, then the member bytes */
};

struct zset;

/* The store's ops for STORE_ZSET values (free, dup, bytes, len). */
extern const struct store_value_ops zset_value_ops;

static inline const char *zset_node_member(const struct zset_node *n)
{
    return (const char *)(n->level + n->nlevel);
}
static inline size_t zset_node_mlen(const struct zset_node *n) { return n->mlen; }
static inline double zset_node_score(const struct zset_node *n) { return n->score; }
static inline struct zset_node *zset_node_next(const struct zset_node *n)
{
    return n->level[0].forward;
}
static inline struct zset_node *zset_node_prev(const struct zset_node *n) { return n->backward; }

/* ---- lifetime ---- */

/* A new empty set; the index's hash seed and the level generator come from seed. The caller
 * owns it (zset_free, or hand it to the store). */
struct zset *zset_new(const uint8_t seed[16]);
void zset_free(struct zset *z);
/* A deep copy (same members, scores, seed and compact flag). */
struct zset *zset_dup(const struct zset *z);
size_t zset_len(const struct zset *z);
size_t zset_bytes(const struct zset *z);

bool zset_is_compact(const struct zset *z);
/* Redis's zsetConvertToListpackIfNeeded: compact again when len <= 128 and no member is
 * longer than 64 bytes (O(len) only when len <= 128). */
void zset_recompact(struct zset *z);

/* ---- members ---- */

/* The node of member m, or NULL. */
struct zset_node *zset_find(const struct zset *z, const char *m, size_t mlen);
/* Adds member m (which must not be in the set) with score (not NaN). Returns its node. */
struct zset_node *zset_insert(struct zset *z, double score, const char *m, size_t mlen);
/* Gives node n a new score (not NaN), moving it in the order; n keeps its address. */
void zset_update_score(struct zset *z, struct zset_node *n, double score);
/* Removes node n (freed: n is invalid afterwards). */
void zset_delete_node(struct zset *z, struct zset_node *n);
/* Removes member m; false when it was not there. */
bool zset_delete(struct zset *z, const char *m, size_t mlen);

/* ---- order and ranks (ranks are 0-based, ascending) ---- */

struct zset_node *zset_first(const struct zset *z);
struct zset_node *zset_last(const struct zset *z);
/* O(log N). */
size_t zset_rank(const struct zset *z, const struct zset_node *n);
/* The node at rank r, or NULL when r >= len. O(log N). */
struct zset_node *zset_at_rank(const struct zset *z, size_t r);
/* Removes ranks start..end (inclusive, end < len, start <= end); returns how many. */
size_t zset_delete_rank_range(struct zset *z, size_t start, size_t end);

/* ---- score ranges: min..max, each bound inclusive or exclusive ---- */

struct zset_score_range {
    double min, max;
    bool minex, maxex;
};

static inline bool zset_score_gte_min(double v, const struct zset_score_range *r)
{
    return r->minex ? v > r->min : v >= r->min;
}
static inline bool zset_score_lte_max(double v, const struct zset_score_range *r)
{
    return r->maxex ? v < r->max : v <= r->max;
}

/* The first / last node in range (NULL when none); *rank (if non-NULL) gets its rank. */
struct zset_node *zset_first_in_score(const struct zset *z, const struct zset_score_range *r,
                                      size_t *rank);
struct zset_node *zset_last_in_score(const struct zset *z, const struct zset_score_range *r,
                                     size_t *rank);
size_t zset_count_score(const struct zset *z, const struct zset_score_range *r);
size_t zset_delete_score_range(struct zset *z, const struct zset_score_range *r);

/* ---- lex ranges (meaningful when all scores are equal, as in Redis) ---- */

enum zset_lex_kind { ZSET_LEX_NEG_INF, ZSET_LEX_VALUE, ZSET_LEX_POS_INF };

/* A bound: "-" (NEG_INF), "+" (POS_INF), or a value, inclusive "[v" or exclusive "(v". p
 * points at the caller's bytes for the duration of the call. */
struct zset_lex_bound {
    enum zset_lex_kind kind;
    bool ex;
    const char *p;
    size_t len;
};

struct zset_lex_range {
    struct zset_lex_bound min, max;
};

bool zset_lex_gte_min(const char *m, size_t mlen, const struct zset_lex_range *r);
bool zset_lex_lte_max(const char *m, size_t mlen, const struct zset_lex_range *r);
struct zset_node *zset_first_in_lex(const struct zset *z, const struct zset_lex_range *r,
                                    size_t *rank);
struct zset_node *zset_last_in_lex(const struct zset *z, const struct zset_lex_range *r,
                                   size_t *rank);
size_t zset_count_lex(const struct zset *z, const struct zset_lex_range *r);
size_t zset_delete_lex_range(struct zset *z, const struct zset_lex_range *r);

/* ---- walks ---- */

/* One ZSCAN step over the index bucket the cursor names (Redis's reverse-binary cursor): fn
 * gets each member and score there; returns the next cursor, 0 when the walk is complete.
 * fn must not modify the set. */
typedef void zset_scan_fn(void *ctx, const char *m, size_t mlen, double score);
uint64_t zset_scan(const struct zset *z, uint64_t cursor, zset_scan_fn *fn, void *ctx);

/* A random node (NULL when empty); steps the set's own random state. */
struct zset_node *zset_random(struct zset *z);

/* Byte order of two members as Redis's sdscmp: memcmp, then the shorter first. */
int zset_member_cmp(const char *a, size_t alen, const char *b, size_t blen);

#endif
