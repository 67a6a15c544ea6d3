/* Sorted-set algebra: ZUNION ZINTER ZDIFF, their *STORE forms and ZINTERCARD, as Redis 7.0's
 * zunionInterDiffGenericCommand: WEIGHTS, AGGREGATE SUM|MIN|MAX, sets accepted as inputs
 * (score 1), union sums in Redis's input order (by size) so floating-point results match.
 * Shares the lookup and store steps of proxy/cmd_zset.c through proxy/cmd_zset.h. */
#include "cache/fieldmap.h"
#include "cache/set.h"
#include "cache/store.h"
#include "cache/zset.h"
#include "conf/glob.h"
#include "conf/xmalloc.h"
#include "proxy/args.h"
#include "proxy/blocking.h"
#include "proxy/cmd_zset.h"
#include "proxy/command.h"
#include "proxy/numbers.h"
#include "proxy/reply.h"
#include "proxy/server.h"
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define ERR_WEIGHT_FLOAT "ERR weight value is not a float"
#define ERR_LIMIT_NEGATIVE "ERR LIMIT can't be negative"

/* ---- ZUNION ZINTER ZDIFF (and *STORE), ZINTERCARD ---- */

enum zsetop { ZSETOP_UNION, ZSETOP_INTER, ZSETOP_DIFF };
enum zsetop_agg { AGG_SUM, AGG_MIN, AGG_MAX };

/* One input: a sorted set, a plain set (every member scores 1), or a missing key (empty). */
struct zsetop_src {
    struct zset *z;
    struct set_value *set;
    const void *subject; /* the value, to spot a key named twice */
    size_t len;
    double weight;
    size_t order; /* position among the keys: ties keep it (a stable sort, as glibc's qsort) */
};

struct zsetop_iter {
    const struct zsetop_src *src;
    const struct zset_node *node;
    struct set_iter si;
    bool started;
};

static bool zsetop_next(struct zsetop_iter *it, const char **m, size_t *mlen, double *score)
{
    const struct zsetop_src *s = it->src;
    if (s->z) {
        it->node = it->started ? zset_node_next(it->node) : zset_first(s->z);
        it->started = true;
        if (!it->node)
            return false;
        *m = zset_node_member(it->node);
        *mlen = zset_node_mlen(it->node);
        *score = zset_node_score(it->node);
        return true;
    }
    if (s->set) {
        if (!it->started)
            set_iter_start(&it->si);
        it->started = true;
        struct set_member sm;
        if (!set_iter_next(s->set, &it->si, &sm))
            return false;
        *m = sm.ptr;
        *mlen = sm.len;
        *score = 1.0;
        return true;
    }
    return false;
}

static bool zsetop_find(const struct zsetop_src *s, const char *m, size_t mlen, double *score)
{
    if (s->z) {
        const struct zset_node *n = zset_find(s->z, m, mlen);
        if (n)
            *score = zset_node_score(n);
        return n != NULL;
    }
    if (s->set && set_contains(s->set, m, mlen)) {
        *score = 1.0;
        return true;
    }
    return false;
}

/* Redis's zunionInterAggregate. */
static void zsetop_aggregate(double *target, double val, enum zsetop_agg agg)
{
    if (agg == AGG_SUM) {
        *target = *target + val;
        if (isnan(*target))
            *target = 0.0;
    } else if (agg == AGG_MIN) {
        *target = val < *target ? val : *target;
    } else {
        *target = val > *target ? val : *target;
    }
}

static int zsetop_cmp_len(const void *a, const void *b)
{
    const struct zsetop_src *x = a, *y = b;
    if (x->len != y->len)
        return x->len < y->len ? -1 : 1;
    return x->order < y->order ? -1 : x->order > y->order;
}

/* The union: scores summed (or min/max) per member over the inputs in order, in a temporary
 * table member -> score (Redis's accumulator dict), then inserted into dst. */
static void zsetop_union(struct client *c, struct zsetop_src *src, size_t n,
                         enum zsetop_agg agg, struct zset *dst)
{
    struct fieldmap *acc = fieldmap_new(store_seed(c->srv->store));
    for (size_t i = 0; i < n; i++) {
        struct zsetop_iter it = { .src = &src[i] };
        const char *m;
        size_t mlen;
        double v;
        while (zsetop_next(&it, &m, &mlen, &v)) {
            double score = src[i].weight * v;
            if (isnan(score))
                score = 0;
            struct fieldmap_entry *de = fieldmap_find(acc, m, mlen);
            if (!de) {
                fieldmap_set(acc, m, mlen, &score, sizeof(score), NULL);
            } else {
                double cur;
                memcpy(&cur, fieldmap_val(de), sizeof(cur));
                zsetop_aggregate(&cur, score, agg);
                memcpy(fieldmap_val_mut(de), &cur, sizeof(cur));
            }
        }
    }
    struct fieldmap_iter di = { 0, NULL, NULL };
    for (const struct fieldmap_entry *de; (de = fieldmap_next(acc, &di));) {
        double score;
        memcpy(&score, fieldmap_val(de), sizeof(score));
        zset_insert(dst, score, fieldmap_key(de), de->klen);
    }
    fieldmap_free(acc);
}

/* The intersection: the smallest input's members found in every other input. Counts them
 * (dst NULL: ZINTERCARD, stopping at limit when limit > 0) or inserts them into dst. */
static size_t zsetop_inter(struct zsetop_src *src, size_t n, enum zsetop_agg agg,
                           struct zset *dst, long long limit)
{
    size_t card = 0;
    if (src[0].len == 0)
        return 0;
    struct zsetop_iter it = { .src = &src[0] };
    const char *m;
    size_t mlen;
    double v;
    while (zsetop_next(&it, &m, &mlen, &v)) {
        double score = src[0].weight * v;
        if (isnan(score))
            score = 0;
        size_t j = 1;
        for (; j < n; j++) {
            double value;
            if (src[j].subject == src[0].subject) {
                value = v * src[j].weight;
            } else if (zsetop_find(&src[j], m, mlen, &value)) {
                value *= src[j].weight;
            } else {
                break;
            }
            zsetop_aggregate(&score, value, agg);
        }
        if (j < n)
            continue;
        card++;
        if (dst)
            zset_insert(dst, score, m, mlen);
        else if (limit > 0 && card >= (unsigned long long)limit)
            break;
    }
    return card;
}

/* The difference: the first input's members found in no other input, with their scores. */
static void zsetop_diff(struct zsetop_src *src, size_t n, struct zset *dst)
{
    struct zsetop_iter it = { .src = &src[0] };
    const char *m;
    size_t mlen;
    double v;
    while (zsetop_next(&it, &m, &mlen, &v)) {
        size_t j = 1;
        double ignored;
        while (j < n && !zsetop_find(&src[j], m, mlen, &ignored))
            j++;
        if (j == n)
            zset_insert(dst, v, m, mlen);
    }
}

/* Redis 7.0's zunionInterDiffGenericCommand: numkeys (>= 1, no more than the arguments left),
 * the keys (each a sorted set, a set or missing; WRONGTYPE first), then WEIGHTS, AGGREGATE,
 * WITHSCORES (no destination) or LIMIT (ZINTERCARD); inputs sorted by size except for DIFF.
 * dst: the *STORE destination (reply: its size), or NULL (reply: the members, or the count). */
static void zsetop_generic(struct client *c, const struct resp_arg *dst, size_t numkeys_idx,
                           enum zsetop op, bool card_only)
{
    long long setnum;
    if (!arg_ll_or_reply(c, numkeys_idx, &setnum, NULL))
        return;
    if (setnum < 1) {
        reply_errorf(c, "ERR at least 1 input key is needed for '%s' command", c->cmd->name);
        return;
    }
    if ((unsigned long long)setnum > c->argc - (numkeys_idx + 1)) {
        reply_error(c, ERR_SYNTAX);
        return;
    }
    size_t n = (size_t)setnum;
    struct zsetop_src *src = xcalloc(n, sizeof(*src));
    size_t j = numkeys_idx + 1;
    for (size_t i = 0; i < n; i++, j++) {
        struct store_entry *e = store_find(c->srv->store, c->db, c->argv[j].ptr, c->argv[j].len,
                                           server_now_ms(c->srv), STORE_READ);
        src[i].weight = 1.0;
        src[i].order = i;
        if (!e)
            continue;
        if (e->type == STORE_ZSET) {
            src[i].z = store_value(e);
            src[i].len = zset_len(src[i].z);
        } else if (e->type == STORE_SET) {
            src[i].set = store_value(e);
            src[i].len = set_len(src[i].set);
        } else {
            reply_error(c, ERR_WRONGTYPE);
            goto done;
        }
        src[i].subject = store_value(e);
    }

    enum zsetop_agg agg = AGG_SUM;
    bool withscores = false;
    long long limit = 0;
    while (j < c->argc) {
        size_t remaining = c->argc - j;
        const struct resp_arg *a = &c->argv[j];
        if (op != ZSETOP_DIFF && !card_only && remaining >= n + 1 && arg_is(a, "weights")) {
            j++;
            for (size_t i = 0; i < n; i++, j++) {
                if (!num_parse_double(c->argv[j].ptr, c->argv[j].len, &src[i].weight)) {
                    reply_error(c, ERR_WEIGHT_FLOAT);
                    goto done;
                }
            }
        } else if (op != ZSETOP_DIFF && !card_only && remaining >= 2 &&
                   arg_is(a, "aggregate")) {
            const struct resp_arg *v = &c->argv[j + 1];
            if (arg_is(v, "sum")) {
                agg = AGG_SUM;
            } else if (arg_is(v, "min")) {
                agg = AGG_MIN;
            } else if (arg_is(v, "max")) {
                agg = AGG_MAX;
            } else {
                reply_error(c, ERR_SYNTAX);
                goto done;
            }
            j += 2;
        } else if (!dst && !card_only && arg_is(a, "withscores")) {
            withscores = true;
            j++;
        } else if (card_only && remaining >= 2 && arg_is(a, "limit")) {
            if (!num_parse_ll(c->argv[j + 1].ptr, c->argv[j + 1].len, &limit) || limit < 0) {
                reply_error(c, ERR_LIMIT_NEGATIVE);
                goto done;
            }
            j += 2;
        } else {
            reply_error(c, ERR_SYNTAX);
            goto done;
        }
    }

    if (op != ZSETOP_DIFF)
        qsort(src, n, sizeof(*src), zsetop_cmp_len);

    if (card_only) {
        reply_int(c, (long long)zsetop_inter(src, n, agg, NULL, limit));
        goto done;
    }
    struct zset *result = zset_create(c);
    if (op == ZSETOP_INTER)
        zsetop_inter(src, n, agg, result, 0);
    else if (op == ZSETOP_UNION)
        zsetop_union(c, src, n, agg, result);
    else
        zsetop_diff(src, n, result);

    if (dst) {
        zset_recompact(result);
        reply_int(c, (long long)zset_len(result));
        zset_store_result(c, dst, result); /* the sources are not used after this */
    } else {
        reply_array(c, zset_len(result) * (withscores && c->resp < 3 ? 2 : 1));
        for (const struct zset_node *node = zset_first(result); node;
             node = zset_node_next(node)) {
            if (withscores && c->resp >= 3)
                reply_array(c, 2);
            reply_member(c, node);
            if (withscores)
                reply_double(c, zset_node_score(node));
        }
        zset_free(result);
    }
done:
    free(src);
}

void cmd_zunionstore(struct client *c) { zsetop_generic(c, &c->argv[1], 2, ZSETOP_UNION, false); }

void cmd_zinterstore(struct client *c) { zsetop_generic(c, &c->argv[1], 2, ZSETOP_INTER, false); }

void cmd_zdiffstore(struct client *c) { zsetop_generic(c, &c->argv[1], 2, ZSETOP_DIFF, false); }

void cmd_zunion(struct client *c) { zsetop_generic(c, NULL, 1, ZSETOP_UNION, false); }

void cmd_zinter(struct client *c) { zsetop_generic(c, NULL, 1, ZSETOP_INTER, false); }

void cmd_zdiff(struct client *c) { zsetop_generic(c, NULL, 1, ZSETOP_DIFF, false); }

void cmd_zintercard(struct client *c) { zsetop_generic(c, NULL, 1, ZSETOP_INTER, true); }

