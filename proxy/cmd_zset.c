/* Sorted set commands: ZADD (NX XX GT LT CH INCR) ZINCRBY ZSCORE ZMSCORE ZCARD ZCOUNT ZLEXCOUNT
 * ZRANK ZREVRANK ZRANGE (BYSCORE BYLEX REV LIMIT WITHSCORES) ZREVRANGE ZRANGEBYSCORE
 * ZREVRANGEBYSCORE ZRANGEBYLEX ZREVRANGEBYLEX ZRANGESTORE ZREM ZREMRANGEBYSCORE ZREMRANGEBYRANK
 * ZREMRANGEBYLEX ZPOPMIN ZPOPMAX ZMPOP ZUNIONSTORE ZINTERSTORE ZDIFFSTORE ZUNION ZINTER ZDIFF
 * ZINTERCARD ZSCAN, following Redis 7.0's t_zset.c: the same order of checks (arguments, then
 * the key's type, then the members), the same errors and the same reply shapes in RESP2 and
 * RESP3 (scores are RESP2 bulks "%.17g"/"inf"/"-inf" and RESP3 doubles; WITHSCORES nests
 * [member, score] pairs in RESP3; ZSCAN stays flat bulks). Owns the zset_commands table and the
 * pop step the blocking pops reuse (zset_lookup_write, zset_pop_and_reply below).
 *
 * Invariants: a new sorted set is built first and then added with store_add_value (the store
 * never holds an empty one); every in-place change of an existing one is followed by
 * store_value_changed (which deletes an emptied set), and only when something changed (a no-op
 * ZADD does not touch WATCHed keys, as in Redis). The *STORE forms compute the whole result
 * before the destination is replaced, so a source named as destination is read intact. Ranges
 * jump by rank (O(log N)) instead of walking to an offset. No global state: the member index
 * of a new set is seeded with the store's secret seed. */
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

#define ERR_ZADD_XX_NX "ERR XX and NX options at the same time are not compatible"
#define ERR_ZADD_GT_LT_NX "ERR GT, LT, and/or NX options at the same time are not compatible"
#define ERR_ZADD_INCR_PAIR "ERR INCR option supports a single increment-element pair"
#define ERR_ZADD_NAN "ERR resulting score is not a number (NaN)"
#define ERR_MINMAX_FLOAT "ERR min or max is not a float"
#define ERR_MINMAX_LEX "ERR min or max not valid string range item"
#define ERR_MUST_BE_POSITIVE "ERR value is out of range, must be positive"
#define ERR_LIMIT_RANK \
    "ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX"
#define ERR_WITHSCORES_LEX "ERR syntax error, WITHSCORES not supported in combination with BYLEX"
#define ERR_NUMKEYS "ERR numkeys should be greater than 0"
#define ERR_COUNT_POSITIVE "ERR count should be greater than 0"
#define SCORE_ARG_STACK 128           /* range bounds up to this long parse without malloc */

command_proc cmd_zadd, cmd_zincrby, cmd_zscore, cmd_zmscore, cmd_zcard, cmd_zcount,
    cmd_zlexcount, cmd_zrank, cmd_zrevrank, cmd_zrange, cmd_zrevrange, cmd_zrangebyscore,
    cmd_zrevrangebyscore, cmd_zrangebylex, cmd_zrevrangebylex, cmd_zrangestore, cmd_zrem,
    cmd_zremrangebyscore, cmd_zremrangebyrank, cmd_zremrangebylex, cmd_zpopmin, cmd_zpopmax,
    cmd_zmpop, cmd_zunionstore, cmd_zinterstore, cmd_zdiffstore, cmd_zunion, cmd_zinter,
    cmd_zdiff, cmd_zintercard, cmd_zscan, cmd_bzpopmin, cmd_bzpopmax;

/* ---- helpers ---- */

static struct store *zstore(struct client *c) { return c->srv->store; }

/* Looks key up (flags: STORE_READ for Redis's lookupKeyRead, 0 for lookupKeyWrite). Replies
 * WRONGTYPE and returns false on another type; *e is NULL when the key does not exist. */
static bool zset_lookup(struct client *c, const char *key, size_t klen, unsigned flags,
                        struct store_entry **e)
{
    *e = store_find(zstore(c), c->db, key, klen, server_now_ms(c->srv), flags);
    if (*e && (*e)->type != STORE_ZSET) {
        reply_error(c, ERR_WRONGTYPE);
        return false;
    }
    return true;
}

static bool zset_lookup_arg(struct client *c, size_t i, unsigned flags, struct store_entry **e)
{
    return zset_lookup(c, c->argv[i].ptr, c->argv[i].len, flags, e);
}

/* The key's sorted set, or NULL for a missing key. */
static struct zset *entry_zset(struct store_entry *e) { return e ? store_value(e) : NULL; }

struct zset *zset_create(struct client *c) { return zset_new(store_seed(zstore(c))); }

/* Replaces key dst with result (a non-empty set, handed to the store), or deletes dst when the
 * result is empty (result freed). */
void zset_store_result(struct client *c, const struct resp_arg *dst, struct zset *result)
{
    int64_t now = server_now_ms(c->srv);
    store_delete(zstore(c), c->db, dst->ptr, dst->len, now);
    if (zset_len(result) > 0)
        store_add_value(zstore(c), c->db, dst->ptr, dst->len, STORE_ZSET, result, now);
    else
        zset_free(result);
}

void reply_member(struct client *c, const struct zset_node *n)
{
    reply_bulk(c, zset_node_member(n), zset_node_mlen(n));
}

/* Redis's zslParseRange for one bound: "(" makes it exclusive; the rest is read by strtod as
 * a C string (up to the first NUL: leading spaces, "", hex and "inf" are accepted, as there),
 * and must be consumed whole and not be NaN. */
static bool parse_score_bound(const struct resp_arg *a, double *v, bool *ex)
{
    const char *p = a->ptr;
    size_t n = strnlen(a->ptr, a->len);
    *ex = n > 0 && p[0] == '(';
    if (*ex) {
        p++;
        n--;
    }
    char stack[SCORE_ARG_STACK];
    char *buf = n < sizeof(stack) ? stack : xmalloc(n + 1);
    memcpy(buf, p, n);
    buf[n] = '\0';
    char *end;
    *v = strtod(buf, &end);
    bool ok = *end == '\0' && !isnan(*v);
    if (buf != stack)
        free(buf);
    return ok;
}

static bool parse_score_range_or_reply(struct client *c, size_t min, size_t max,
                                       struct zset_score_range *r)
{
    if (parse_score_bound(&c->argv[min], &r->min, &r->minex) &&
        parse_score_bound(&c->argv[max], &r->max, &r->maxex))
        return true;
    reply_error(c, ERR_MINMAX_FLOAT);
    return false;
}

/* Redis's zslParseLexRangeItem: "+", "-", "(value" or "[value"; "+" and "-" end at their first
 * byte or a NUL after it. */
static bool parse_lex_bound(const struct resp_arg *a, struct zset_lex_bound *b)
{
    if (a->len == 0)
        return false;
    switch (a->ptr[0]) {
    case '+':
    case '-':
        if (a->len > 1 && a->ptr[1] != '\0')
            return false;
        *b = (struct zset_lex_bound){ a->ptr[0] == '+' ? ZSET_LEX_POS_INF : ZSET_LEX_NEG_INF,
                                      true, NULL, 0 };
        return true;
    case '(':
    case '[':
        *b = (struct zset_lex_bound){ ZSET_LEX_VALUE, a->ptr[0] == '(', a->ptr + 1, a->len - 1 };
        return true;
    default:
        return false;
    }
}

static bool parse_lex_range_or_reply(struct client *c, size_t min, size_t max,
                                     struct zset_lex_range *r)
{
    if (parse_lex_bound(&c->argv[min], &r->min) && parse_lex_bound(&c->argv[max], &r->max))
        return true;
    reply_error(c, ERR_MINMAX_LEX);
    return false;
}

/* ---- ZADD ZINCRBY ---- */

#define ZADD_NX 0x01u
#define ZADD_XX 0x02u
#define ZADD_GT 0x04u
#define ZADD_LT 0x08u
#define ZADD_CH 0x10u
#define ZADD_INCR 0x20u

/* The score argument i, already validated. */
static double arg_score(const struct client *c, size_t i)
{
    double d = 0;
    num_parse_double(c->argv[i].ptr, c->argv[i].len, &d);
    return d;
}

/* Redis's zaddGenericCommand: options, then the pairs' shape, option conflicts, every score
 * (nothing changes if one is not a float), the key's type; then each pair as zsetAdd. */
static void zadd_generic(struct client *c, unsigned flags)
{
    size_t idx = 2;
    for (; idx < c->argc; idx++) {
        const struct resp_arg *a = &c->argv[idx];
        if (arg_is(a, "nx"))
            flags |= ZADD_NX;
        else if (arg_is(a, "xx"))
            flags |= ZADD_XX;
        else if (arg_is(a, "ch"))
            flags |= ZADD_CH;
        else if (arg_is(a, "incr"))
            flags |= ZADD_INCR;
        else if (arg_is(a, "gt"))
            flags |= ZADD_GT;
        else if (arg_is(a, "lt"))
            flags |= ZADD_LT;
        else
            break;
    }
    size_t rest = c->argc - idx;
    if (rest == 0 || rest % 2) {
        reply_error(c, ERR_SYNTAX);
        return;
    }
    size_t pairs = rest / 2;
    bool nx = flags & ZADD_NX, xx = flags & ZADD_XX, gt = flags & ZADD_GT,
         lt = flags & ZADD_LT, incr = flags & ZADD_INCR;
    if (nx && xx) {
        reply_error(c, ERR_ZADD_XX_NX);
        return;
    }
    if ((gt && nx) || (lt && nx) || (gt && lt)) {
        reply_error(c, ERR_ZADD_GT_LT_NX);
        return;
    }
    if (incr && pairs > 1) {
        reply_error(c, ERR_ZADD_INCR_PAIR);
        return;
    }
    for (size_t j = 0; j < pairs; j++) {
        double d;
        const struct resp_arg *a = &c->argv[idx + 2 * j];
        if (!num_parse_double(a->ptr, a->len, &d)) {
            reply_error(c, ERR_NOT_FLOAT);
            return;
        }
    }

    struct store_entry *e;
    if (!zset_lookup_arg(c, 1, 0, &e))
        return;
    struct zset *z = entry_zset(e);
    size_t added = 0, updated = 0, processed = 0;
    double newscore = 0;
    bool nan_error = false;
    if (!z) {
        if (xx)
            goto reply;
        z = zset_create(c);
    }
    for (size_t j = 0; j < pairs; j++) {
        double score = arg_score(c, idx + 2 * j);
        const struct resp_arg *m = &c->argv[idx + 2 * j + 1];
        struct zset_node *n = zset_find(z, m->ptr, m->len);
        if (n) {
            if (nx)
                continue;
            double cur = zset_node_score(n);
            if (incr) {
                score += cur;
                if (isnan(score)) {
                    nan_error = true;
                    break;
                }
            }
            if ((lt && score >= cur) || (gt && score <= cur))
                continue;
            processed++;
            newscore = score;
            if (score != cur) {
                zset_update_score(z, n, score);
                updated++;
            }
        } else if (!xx) {
            zset_insert(z, score, m->ptr, m->len);
            added++;
            processed++;
            newscore = score;
        }
    }
    if (!e) {
        if (zset_len(z) > 0)
            store_add_value(zstore(c), c->db, c->argv[1].ptr, c->argv[1].len, STORE_ZSET, z,
                            server_now_ms(c->srv));
        else
            zset_free(z);
    } else if (added + updated > 0) {
        store_value_changed(zstore(c), e);
    }
    if (nan_error) {
        reply_error(c, ERR_ZADD_NAN);
        return;
    }
reply:
    if (incr) {
        if (processed)
            reply_double(c, newscore);
        else
            reply_null(c);
    } else {
        reply_int(c, (long long)((flags & ZADD_CH) ? added + updated : added));
    }
}

void cmd_zadd(struct client *c) { zadd_generic(c, 0); }

void cmd_zincrby(struct client *c) { zadd_generic(c, ZADD_INCR); }

/* ---- ZSCORE ZMSCORE ZCARD ZRANK ZREVRANK ---- */

void cmd_zscore(struct client *c)
{
    struct store_entry *e;
    if (!zset_lookup_arg(c, 1, STORE_READ, &e))
        return;
    const struct zset_node *n =
        e ? zset_find(entry_zset(e), c->argv[2].ptr, c->argv[2].len) : NULL;
    if (n)
        reply_double(c, zset_node_score(n));
    else
        reply_null(c);
}

void cmd_zmscore(struct client *c)
{
    struct store_entry *e;
    if (!zset_lookup_arg(c, 1, STORE_READ, &e))
        return;
    struct zset *z = entry_zset(e);
    reply_array(c, c->argc - 2);
    for (size_t i = 2; i < c->argc; i++) {
        const struct zset_node *n = z ? zset_find(z, c->argv[i].ptr, c->argv[i].len) : NULL;
        if (n)
            reply_double(c, zset_node_score(n));
        else
            reply_null(c);
    }
}

void cmd_zcard(struct client *c)
{
    struct store_entry *e;
    if (zset_lookup_arg(c, 1, STORE_READ, &e))
        reply_int(c, e ? (long long)zset_len(entry_zset(e)) : 0);
}

static void zrank_generic(struct client *c, bool reverse)
{
    struct store_entry *e;
    if (!zset_lookup_arg(c, 1, STORE_READ, &e))
        return;
    struct zset *z = entry_zset(e);
    const struct zset_node *n = z ? zset_find(z, c->argv[2].ptr, c->argv[2].len) : NULL;
    if (!n) {
        reply_null(c);
        return;
    }
    size_t r = zset_rank(z, n);
    reply_int(c, (long long)(reverse ? zset_len(z) - 1 - r : r));
}

void cmd_zrank(struct client *c) { zrank_generic(c, false); }

void cmd_zrevrank(struct client *c) { zrank_generic(c, true); }

/* ---- ZCOUNT ZLEXCOUNT ---- */

void cmd_zcount(struct client *c)
{
    struct zset_score_range r;
    if (!parse_score_range_or_reply(c, 2, 3, &r))
        return;
    struct store_entry *e;
    if (zset_lookup_arg(c, 1, STORE_READ, &e))
        reply_int(c, e ? (long long)zset_count_score(entry_zset(e), &r) : 0);
}

void cmd_zlexcount(struct client *c)
{
    struct zset_lex_range r;
    if (!parse_lex_range_or_reply(c, 2, 3, &r))
        return;
    struct store_entry *e;
    if (zset_lookup_arg(c, 1, STORE_READ, &e))
        reply_int(c, e ? (long long)zset_count_lex(entry_zset(e), &r) : 0);
}

/* ---- the ZRANGE family ---- */

enum zrange_kind { ZRANGE_AUTO, ZRANGE_RANK, ZRANGE_SCORE, ZRANGE_LEX };
enum zrange_dir { ZRANGE_DIR_AUTO, ZRANGE_FORWARD, ZRANGE_REVERSE };

/* Where a range goes: the client (an array, nested pairs WITHSCORES in RESP3) or, for
 * ZRANGESTORE, a new sorted set stored at dstkey. */
struct zrange_out {
    struct client *c;
    bool withscores;
    const struct resp_arg *dstkey; /* ZRANGESTORE's destination, NULL when replying */
    struct zset *dst;
    bool deferred;
    size_t handle, n;
};

/* len < 0: not known yet (a deferred array header). */
static void zrange_out_begin(struct zrange_out *o, long long len)
{
    o->n = 0;
    if (o->dstkey) {
        o->dst = zset_create(o->c);
        return;
    }
    size_t per = o->withscores && o->c->resp < 3 ? 2 : 1;
    o->deferred = len < 0;
    if (o->deferred)
        o->handle = reply_defer_len(o->c);
    else
        reply_array(o->c, (size_t)len * per);
}

static void zrange_out_emit(struct zrange_out *o, const struct zset_node *n)
{
    o->n++;
    if (o->dstkey) {
        zset_insert(o->dst, zset_node_score(n), zset_node_member(n), zset_node_mlen(n));
        return;
    }
    if (o->withscores && o->c->resp >= 3)
        reply_array(o->c, 2);
    reply_member(o->c, n);
    if (o->withscores)
        reply_double(o->c, zset_node_score(n));
}

static void zrange_out_end(struct zrange_out *o)
{
    if (o->dstkey) {
        reply_int(o->c, (long long)o->n);
        zset_store_result(o->c, o->dstkey, o->dst);
        o->dst = NULL;
    } else if (o->deferred) {
        reply_set_deferred_len(o->c, o->handle,
                               o->n * (o->withscores && o->c->resp < 3 ? 2 : 1));
    }
}

/* Redis's genericZrangebyrankCommand: negative indexes count from the end. */
static void zrange_by_rank(struct zrange_out *o, struct zset *z, long long start, long long end,
                           bool reverse)
{
    long long len = (long long)zset_len(z);
    if (start < 0)
        start += len;
    if (end < 0)
        end += len;
    if (start < 0)
        start = 0;
    if (start > end || start >= len) {
        zrange_out_begin(o, 0);
        zrange_out_end(o);
        return;
    }
    if (end >= len)
        end = len - 1;
    long long n = end - start + 1;
    zrange_out_begin(o, n);
    const struct zset_node *node = zset_at_rank(z, (size_t)(reverse ? len - 1 - start : start));
    for (long long i = 0; i < n && node; i++) {
        zrange_out_emit(o, node);
        node = reverse ? zset_node_prev(node) : zset_node_next(node);
    }
    zrange_out_end(o);
}

/* The node `offset` places after (or before, reverse) the one at rank, or NULL. */
static const struct zset_node *zrange_skip(struct zset *z, const struct zset_node *n,
                                           size_t rank, long long offset, bool reverse)
{
    if (!n || offset == 0)
        return n;
    if (reverse)
        return (unsigned long long)offset > rank ? NULL
                                                 : zset_at_rank(z, rank - (size_t)offset);
    if ((unsigned long long)offset >= zset_len(z) - rank)
        return NULL;
    return zset_at_rank(z, rank + (size_t)offset);
}

/* Redis's genericZrangebyscoreCommand / genericZrangebylexCommand: start at the first (last,
 * reverse) member in range, skip offset members (a negative offset skips everything), then
 * emit while in range, at most limit members (negative: no limit). */
static void zrange_by_bounds(struct zrange_out *o, struct zset *z, const void *range, bool lex,
                             long long offset, long long limit, bool reverse)
{
    zrange_out_begin(o, -1);
    if (offset < 0 || (offset > 0 && (unsigned long long)offset >= zset_len(z))) {
        zrange_out_end(o);
        return;
    }
    size_t rank = 0;
    const struct zset_node *n;
    if (lex)
        n = reverse ? zset_last_in_lex(z, range, &rank) : zset_first_in_lex(z, range, &rank);
    else
        n = reverse ? zset_last_in_score(z, range, &rank) : zset_first_in_score(z, range, &rank);
    n = zrange_skip(z, n, rank, offset, reverse);
    for (; n && limit != 0; limit--) {
        bool in;
        if (lex)
            in = reverse ? zset_lex_gte_min(zset_node_member(n), zset_node_mlen(n), range)
                         : zset_lex_lte_max(zset_node_member(n), zset_node_mlen(n), range);
        else
            in = reverse ? zset_score_gte_min(zset_node_score(n), range)
                         : zset_score_lte_max(zset_node_score(n), range);
        if (!in)
            break;
        zrange_out_emit(o, n);
        n = reverse ? zset_node_prev(n) : zset_node_next(n);
    }
    zrange_out_end(o);
}

/* Redis 7.0's zrangeGenericCommand: key at argv[first], then min and max, then the options
 * (WITHSCORES unless storing, LIMIT offset count, and REV BYSCORE BYLEX where the command
 * leaves them open); conflicts; the range; then the key. */
static void zrange_generic(struct client *c, size_t first, bool store, enum zrange_kind kind,
                           enum zrange_dir dir)
{
    size_t minidx = first + 1, maxidx = first + 2;
    bool withscores = false;
    long long offset = 0, limit = -1;
    for (size_t j = first + 3; j < c->argc; j++) {
        size_t left = c->argc - j - 1;
        const struct resp_arg *a = &c->argv[j];
        if (!store && arg_is(a, "withscores")) {
            withscores = true;
        } else if (arg_is(a, "limit") && left >= 2) {
            if (!arg_ll_or_reply(c, j + 1, &offset, NULL) ||
                !arg_ll_or_reply(c, j + 2, &limit, NULL))
                return;
            j += 2;
        } else if (dir == ZRANGE_DIR_AUTO && arg_is(a, "rev")) {
            dir = ZRANGE_REVERSE;
        } else if (kind == ZRANGE_AUTO && arg_is(a, "bylex")) {
            kind = ZRANGE_LEX;
        } else if (kind == ZRANGE_AUTO && arg_is(a, "byscore")) {
            kind = ZRANGE_SCORE;
        } else {
            reply_error(c, ERR_SYNTAX);
            return;
        }
    }
    if (dir == ZRANGE_DIR_AUTO)
        dir = ZRANGE_FORWARD;
    if (kind == ZRANGE_AUTO)
        kind = ZRANGE_RANK;
    if (limit != -1 && kind == ZRANGE_RANK) {
        reply_error(c, ERR_LIMIT_RANK);
        return;
    }
    if (withscores && kind == ZRANGE_LEX) {
        reply_error(c, ERR_WITHSCORES_LEX);
        return;
    }
    bool reverse = dir == ZRANGE_REVERSE;
    if (reverse && kind != ZRANGE_RANK) { /* the range is given as max, min */
        size_t t = minidx;
        minidx = maxidx;
        maxidx = t;
    }

    long long start = 0, end = 0;
    struct zset_score_range sr;
    struct zset_lex_range lr;
    if (kind == ZRANGE_RANK) {
        if (!arg_ll_or_reply(c, minidx, &start, NULL) || !arg_ll_or_reply(c, maxidx, &end, NULL))
            return;
    } else if (kind == ZRANGE_SCORE) {
        if (!parse_score_range_or_reply(c, minidx, maxidx, &sr))
            return;
    } else if (!parse_lex_range_or_reply(c, minidx, maxidx, &lr)) {
        return;
    }

    struct zrange_out o = { c, withscores, store ? &c->argv[1] : NULL, NULL, false, 0, 0 };
    struct store_entry *e;
    if (!zset_lookup_arg(c, first, STORE_READ, &e))
        return;
    if (!e) {
        if (store) {
            zrange_out_begin(&o, -1);
            zrange_out_end(&o);
        } else {
            reply_array(c, 0);
        }
        return;
    }
    struct zset *z = entry_zset(e);
    if (kind == ZRANGE_RANK)
        zrange_by_rank(&o, z, start, end, reverse);
    else if (kind == ZRANGE_SCORE)
        zrange_by_bounds(&o, z, &sr, false, offset, limit, reverse);
    else
        zrange_by_bounds(&o, z, &lr, true, offset, limit, reverse);
}

void cmd_zrange(struct client *c) { zrange_generic(c, 1, false, ZRANGE_AUTO, ZRANGE_DIR_AUTO); }

void cmd_zrangestore(struct client *c)
{
    zrange_generic(c, 2, true, ZRANGE_AUTO, ZRANGE_DIR_AUTO);
}

void cmd_zrevrange(struct client *c) { zrange_generic(c, 1, false, ZRANGE_RANK, ZRANGE_REVERSE); }

void cmd_zrangebyscore(struct client *c)
{
    zrange_generic(c, 1, false, ZRANGE_SCORE, ZRANGE_FORWARD);
}

void cmd_zrevrangebyscore(struct client *c)
{
    zrange_generic(c, 1, false, ZRANGE_SCORE, ZRANGE_REVERSE);
}

void cmd_zrangebylex(struct client *c) { zrange_generic(c, 1, false, ZRANGE_LEX, ZRANGE_FORWARD); }

void cmd_zrevrangebylex(struct client *c)
{
    zrange_generic(c, 1, false, ZRANGE_LEX, ZRANGE_REVERSE);
}

/* ---- ZREM ZREMRANGEBYSCORE ZREMRANGEBYRANK ZREMRANGEBYLEX ---- */

void cmd_zrem(struct client *c)
{
    struct store_entry *e;
    if (!zset_lookup_arg(c, 1, 0, &e))
        return;
    if (!e) {
        reply_int(c, 0);
        return;
    }
    struct zset *z = entry_zset(e);
    long long deleted = 0;
    for (size_t i = 2; i < c->argc && zset_len(z) > 0; i++)
        deleted += zset_delete(z, c->argv[i].ptr, c->argv[i].len);
    if (deleted)
        store_value_changed(zstore(c), e);
    reply_int(c, deleted);
}

/* Redis's zremrangeGenericCommand: the range first, then the key (missing: 0). */
static void zremrange_generic(struct client *c, enum zrange_kind kind)
{
    long long start = 0, end = 0;
    struct zset_score_range sr;
    struct zset_lex_range lr;
    if (kind == ZRANGE_RANK) {
        if (!arg_ll_or_reply(c, 2, &start, NULL) || !arg_ll_or_reply(c, 3, &end, NULL))
            return;
    } else if (kind == ZRANGE_SCORE) {
        if (!parse_score_range_or_reply(c, 2, 3, &sr))
            return;
    } else if (!parse_lex_range_or_reply(c, 2, 3, &lr)) {
        return;
    }
    struct store_entry *e;
    if (!zset_lookup_arg(c, 1, 0, &e))
        return;
    if (!e) {
        reply_int(c, 0);
        return;
    }
    struct zset *z = entry_zset(e);
    size_t deleted = 0;
    if (kind == ZRANGE_RANK) {
        long long len = (long long)zset_len(z);
        if (start < 0)
            start += len;
        if (end < 0)
            end += len;
        if (start < 0)
            start = 0;
        if (start > end || start >= len) {
            reply_int(c, 0);
            return;
        }
        if (end >= len)
            end = len - 1;
        deleted = zset_delete_rank_range(z, (size_t)start, (size_t)end);
    } else if (kind == ZRANGE_SCORE) {
        deleted = zset_delete_score_range(z, &sr);
    } else {
        deleted = zset_delete_lex_range(z, &lr);
    }
    if (deleted)
        store_value_changed(zstore(c), e);
    reply_int(c, (long long)deleted);
}

void cmd_zremrangebyrank(struct client *c) { zremrange_generic(c, ZRANGE_RANK); }

void cmd_zremrangebyscore(struct client *c) { zremrange_generic(c, ZRANGE_SCORE); }

void cmd_zremrangebylex(struct client *c) { zremrange_generic(c, ZRANGE_LEX); }

/* ---- ZPOPMIN ZPOPMAX ZMPOP, and the pop step of the blocking pops ---- */

/* Looks key up for a write (no hit/miss counted, as Redis's lookupKeyWrite). Replies WRONGTYPE
 * and returns false on another type; *e is NULL when the key does not exist. The blocking pops
 * call this for each of their keys in order: the first that exists is the one to pop from. */
bool zset_lookup_write(struct client *c, const char *key, size_t klen, struct store_entry **e)
{
    return zset_lookup(c, key, klen, 0, e);
}

/* Redis's genericZpopCommand after the key was found: pops min(count, len) members (count
 * >= 1) from the low end (max false) or the high end of e's sorted set, replies them in the
 * given form (the key name from e), and deletes the key when it is emptied. e is a live
 * sorted set entry of the client's database (zset_lookup_write); it may be freed here. */
void zset_pop_and_reply(struct client *c, struct store_entry *e, bool max, size_t count,
                        enum zset_pop_form form)
{
    struct zset *z = entry_zset(e);
    size_t n = count < zset_len(z) ? count : zset_len(z);
    bool nested = form == ZSET_POP_NESTED || form == ZSET_POP_KEY_NESTED;
    switch (form) {
    case ZSET_POP_FLAT:
        reply_array(c, n * 2);
        break;
    case ZSET_POP_NESTED:
        reply_array(c, n);
        break;
    case ZSET_POP_KEY_FLAT:
        reply_array(c, n * 2 + 1);
        reply_bulk(c, store_entry_key(e), store_entry_klen(e));
        break;
    case ZSET_POP_KEY_NESTED:
        reply_array(c, 2);
        reply_bulk(c, store_entry_key(e), store_entry_klen(e));
        reply_array(c, n);
        break;
    }
    for (size_t i = 0; i < n; i++) {
        struct zset_node *node = max ? zset_last(z) : zset_first(z);
        if (nested)
            reply_array(c, 2);
        reply_member(c, node);
        reply_double(c, zset_node_score(node));
        zset_delete_node(z, node);
    }
    if (n)
        store_value_changed(zstore(c), e);
}

/* ZPOPMIN / ZPOPMAX key [count]: a flat array, nested pairs in RESP3 when count is given. */
static void zpop_command(struct client *c, bool max)
{
    if (c->argc > 3) {
        reply_error(c, ERR_SYNTAX);
        return;
    }
    long long count = -1; /* no count given */
    if (c->argc == 3 && (!num_parse_ll(c->argv[2].ptr, c->argv[2].len, &count) || count < 0)) {
        reply_error(c, ERR_MUST_BE_POSITIVE);
        return;
    }
    struct store_entry *e;
    if (!zset_lookup_arg(c, 1, 0, &e))
        return;
    if (!e || count == 0) {
        reply_array(c, 0);
        return;
    }
    enum zset_pop_form form = c->resp >= 3 && count != -1 ? ZSET_POP_NESTED : ZSET_POP_FLAT;
    zset_pop_and_reply(c, e, max, count == -1 ? 1 : (size_t)count, form);
}

void cmd_zpopmin(struct client *c) { zpop_command(c, false); }

void cmd_zpopmax(struct client *c) { zpop_command(c, true); }

/* ---- BZPOPMIN BZPOPMAX: the blocking pops (proxy/blocking.h) ---- */

static bool zset_serve_pop(struct client *c, struct store_entry *e, const struct blocking_args *a)
{
    zset_pop_and_reply(c, e, a->where != 0, 1, ZSET_POP_KEY_FLAT);
    return true;
}

static const struct blocking_ops zset_pop_block_ops = { STORE_ZSET, zset_serve_pop, NULL };

/* BZPOPMIN|BZPOPMAX key [key ...] timeout, as Redis 7.0: the timeout is checked first, then
 * the first non-empty key is popped at once; else the client blocks (never inside MULTI,
 * where the timeout answer, a null array, comes at once). */
static void bzpop_command(struct client *c, bool max)
{
    int64_t deadline;
    if (!blocking_timeout_or_reply(c, c->argc - 1, &deadline))
        return;
    for (size_t k = 1; k < c->argc - 1; k++) {
        struct store_entry *e;
        if (!zset_lookup_write(c, c->argv[k].ptr, c->argv[k].len, &e))
            return;
        if (e) {
            zset_pop_and_reply(c, e, max, 1, ZSET_POP_KEY_FLAT);
            return;
        }
    }
    if (!blocking_allowed(c)) {
        reply_null_array(c);
        return;
    }
    struct blocking_args a = { .where = max, .count = -1 };
    blocking_block(c, c->argv + 1, c->argc - 2, deadline, &zset_pop_block_ops, &a);
}

void cmd_bzpopmin(struct client *c) { bzpop_command(c, false); }
void cmd_bzpopmax(struct client *c) { bzpop_command(c, true); }

/* ZMPOP numkeys key [key ...] MIN|MAX [COUNT count], as Redis 7.0's zmpopGenericCommand: pops
 * from the first key that exists; [key, [[m, s], ...]], or a null array when none does. */
void cmd_zmpop(struct client *c)
{
    long long numkeys;
    if (!num_parse_ll(c->argv[1].ptr, c->argv[1].len, &numkeys) || numkeys < 1) {
        reply_error(c, ERR_NUMKEYS);
        return;
    }
    if ((unsigned long long)numkeys >= c->argc - 2) { /* MIN|MAX must follow the keys */
        reply_error(c, ERR_SYNTAX);
        return;
    }
    size_t where = 2 + (size_t)numkeys;
    bool max;
    if (arg_is(&c->argv[where], "min")) {
        max = false;
    } else if (arg_is(&c->argv[where], "max")) {
        max = true;
    } else {
        reply_error(c, ERR_SYNTAX);
        return;
    }
    long long count = -1;
    for (size_t j = where + 1; j < c->argc; j++) {
        if (count == -1 && arg_is(&c->argv[j], "count") && j + 1 < c->argc) {
            j++;
            if (!num_parse_ll(c->argv[j].ptr, c->argv[j].len, &count) || count < 1) {
                reply_error(c, ERR_COUNT_POSITIVE);
                return;
            }
        } else {
            reply_error(c, ERR_SYNTAX);
            return;
        }
    }
    if (count == -1)
        count = 1;
    for (size_t k = 2; k < where; k++) {
        struct store_entry *e;
        if (!zset_lookup_write(c, c->argv[k].ptr, c->argv[k].len, &e))
            return;
        if (e) {
            zset_pop_and_reply(c, e, max, (size_t)count, ZSET_POP_KEY_NESTED);
            return;
        }
    }
    reply_null_array(c);
}

/* ---- ZSCAN ---- */

/* A score as Redis 7.0's d2string writes it into a listpack (what ZSCAN of a small set
 * returns): "inf"/"-inf", an integral value within +-LLONG_MAX/2 as an integer (double2ll),
 * anything else "%.17g". */
static size_t format_listpack_score(char *buf, size_t cap, double d)
{
    if (!isinf(d) && !(d < (double)(-LLONG_MAX / 2) || d > (double)(LLONG_MAX / 2))) {
        long long ll = (long long)d;
        if ((double)ll == d)
            return num_format_ll(buf, ll);
    }
    return num_format_double(buf, cap, d);
}

/* The members one ZSCAN call collected: pointers into the set (it does not change during the
 * command), the elements seen (what COUNT bounds) and those matching the pattern. */
struct zscan_pick {
    const char *m;
    size_t mlen;
    double score;
};

struct zscan_walk {
    const struct resp_arg *pat; /* NULL: every member */
    size_t found, matched;
    struct strbuf picks;
};

static void zscan_walk_cb(void *ctx, const char *m, size_t mlen, double score)
{
    struct zscan_walk *w = ctx;
    w->found++;
    /* stringmatchlen: an empty member matches only the empty pattern */
    if (w->pat && (mlen == 0 ? w->pat->len != 0
                             : !glob_match(w->pat->ptr, w->pat->len, m, mlen, false)))
        return;
    struct zscan_pick p = { m, mlen, score };
    strbuf_append(&w->picks, &p, sizeof(p));
    w->matched++;
}

/* ZSCAN key cursor [MATCH pattern] [COUNT count], as Redis 7.0's zscanCommand and
 * scanGenericCommand: the cursor first, then the key (missing: an empty scan whatever the
 * options), then the options (TYPE is a syntax error here). A compact set (a listpack in
 * Redis) is returned whole, in order, with cursor 0; a larger one steps the member index until
 * count members were seen or count*10 steps were made. Reply: [cursor, [m, score, ...]], the
 * scores as bulk strings in both protocols. */
void cmd_zscan(struct client *c)
{
    uint64_t cursor;
    if (!arg_cursor_or_reply(c, 2, &cursor))
        return;
    struct store_entry *e;
    if (!zset_lookup_arg(c, 1, STORE_READ, &e))
        return;
    if (!e) {
        reply_raw(c, EMPTY_SCAN, strlen(EMPTY_SCAN));
        return;
    }
    long long count = SCAN_COUNT_DEFAULT;
    const struct resp_arg *pat = NULL;
    if (!arg_scan_options_or_reply(c, 3, &count, &pat))
        return;

    struct zset *z = entry_zset(e);
    struct zscan_walk w = { pat, 0, 0, { NULL, 0, 0 } };
    bool compact = zset_is_compact(z);
    if (compact) {
        for (const struct zset_node *n = zset_first(z); n; n = zset_node_next(n))
            zscan_walk_cb(&w, zset_node_member(n), zset_node_mlen(n), zset_node_score(n));
        cursor = 0;
    } else {
        long long iterations = scan_max_steps(count);
        do {
            cursor = zset_scan(z, cursor, zscan_walk_cb, &w);
        } while (cursor != 0 && iterations-- && w.found < (unsigned long long)count);
    }

    char buf[NUM_LL_STR_MAX + 128];
    reply_array(c, 2);
    reply_bulk(c, buf, num_format_ull(buf, cursor));
    reply_array(c, w.matched * 2);
    for (size_t i = 0; i < w.matched; i++) {
        struct zscan_pick p;
        memcpy(&p, w.picks.data + i * sizeof(p), sizeof(p));
        reply_bulk(c, p.m, p.mlen);
        reply_bulk(c, buf, compact ? format_listpack_score(buf, sizeof(buf), p.score)
                                   : num_format_double(buf, sizeof(buf), p.score));
    }
    strbuf_free(&w.picks);
}

/* ---- the table ---- */

#define R CMD_READ
#define W CMD_WRITE
#define C CMD_CACHEABLE
#define M CMD_DENYOOM
#define F CMD_FAST
#define K CMD_KEYSPACE

const struct command zset_commands[] = {
    { "zadd", cmd_zadd, -4, W | M | F | K, 1, 1, 1, "sorted-set", "Adds one or more members to a sorted set, or updates their scores. Creates the key if it doesn't exist.", NULL },
    { "zincrby", cmd_zincrby, 4, W | M | F | K, 1, 1, 1, "sorted-set", "Increments the score of a member in a sorted set.", NULL },
    { "zscore", cmd_zscore, 3, R | C | F | K, 1, 1, 1, "sorted-set", "Returns the score of a member in a sorted set.", NULL },
    { "zmscore", cmd_zmscore, -3, R | F | K, 1, 1, 1, "sorted-set", "Returns the score of one or more members in a sorted set.", NULL },
    { "zcard", cmd_zcard, 2, R | C | F | K, 1, 1, 1, "sorted-set", "Returns the number of members in a sorted set.", NULL },
    { "zcount", cmd_zcount, 4, R | F | K, 1, 1, 1, "sorted-set", "Returns the count of members in a sorted set that have scores within a range.", NULL },
    { "zlexcount", cmd_zlexcount, 4, R | F | K, 1, 1, 1, "sorted-set", "Returns the number of members in a sorted set within a lexicographical range.", NULL },
    { "zrank", cmd_zrank, 3, R | C | F | K, 1, 1, 1, "sorted-set", "Returns the index of a member in a sorted set ordered by ascending scores.", NULL },
    { "zrevrank", cmd_zrevrank, 3, R | C | F | K, 1, 1, 1, "sorted-set", "Returns the index of a member in a sorted set ordered by descending scores.", NULL },
    { "zrange", cmd_zrange, -4, R | C | K, 1, 1, 1, "sorted-set", "Returns members in a sorted set within a range of indexes.", NULL },
    { "zrevrange", cmd_zrevrange, -4, R | C | K, 1, 1, 1, "sorted-set", "Returns members in a sorted set within a range of indexes in reverse order.", NULL },
    { "zrangebyscore", cmd_zrangebyscore, -4, R | C | K, 1, 1, 1, "sorted-set", "Returns members in a sorted set within a range of scores.", NULL },
    { "zrevrangebyscore", cmd_zrevrangebyscore, -4, R | K, 1, 1, 1, "sorted-set", "Returns members in a sorted set within a range of scores in reverse order.", NULL },
    { "zrangebylex", cmd_zrangebylex, -4, R | K, 1, 1, 1, "sorted-set", "Returns members in a sorted set within a lexicographical range.", NULL },
    { "zrevrangebylex", cmd_zrevrangebylex, -4, R | K, 1, 1, 1, "sorted-set", "Returns members in a sorted set within a lexicographical range in reverse order.", NULL },
    { "zrangestore", cmd_zrangestore, -5, W | M | K, 1, 2, 1, "sorted-set", "Stores a range of members from sorted set in a key.", NULL },
    { "zrem", cmd_zrem, -3, W | F | K, 1, 1, 1, "sorted-set", "Removes one or more members from a sorted set. Deletes the sorted set if all members were removed.", NULL },
    { "zremrangebyscore", cmd_zremrangebyscore, 4, W | K, 1, 1, 1, "sorted-set", "Removes members in a sorted set within a range of scores. Deletes the sorted set if all members were removed.", NULL },
    { "zremrangebyrank", cmd_zremrangebyrank, 4, W | K, 1, 1, 1, "sorted-set", "Removes members in a sorted set within a range of indexes. Deletes the sorted set if all members were removed.", NULL },
    { "zremrangebylex", cmd_zremrangebylex, 4, W | K, 1, 1, 1, "sorted-set", "Removes members in a sorted set within a lexicographical range. Deletes the sorted set if all members were removed.", NULL },
    { "zpopmin", cmd_zpopmin, -2, W | F | K, 1, 1, 1, "sorted-set", "Returns the lowest-scoring members from a sorted set after removing them. Deletes the sorted set if the last member was popped.", NULL },
    { "zpopmax", cmd_zpopmax, -2, W | F | K, 1, 1, 1, "sorted-set", "Returns the highest-scoring members from a sorted set after removing them. Deletes the sorted set if the last member was popped.", NULL },
    { "bzpopmin", cmd_bzpopmin, -3, W | F | K | CMD_STATEFUL | CMD_BLOCKING, 1, -2, 1, "sorted-set", "Removes and returns the member with the lowest score from one or more sorted sets. Blocks until a member is available otherwise. Deletes the sorted set if the last element was popped.", NULL },
    { "bzpopmax", cmd_bzpopmax, -3, W | F | K | CMD_STATEFUL | CMD_BLOCKING, 1, -2, 1, "sorted-set", "Removes and returns the member with the highest score from one or more sorted sets. Blocks until a member available otherwise.  Deletes the sorted set if the last element was popped.", NULL },
    { "zmpop", cmd_zmpop, -4, W | K | CMD_MOVABLEKEYS, 0, 0, 0, "sorted-set", "Returns the highest- or lowest-scoring members from one or more sorted sets after removing them. Deletes the sorted set if the last member was popped.", NULL },
    { "zunionstore", cmd_zunionstore, -4, W | M | K | CMD_MOVABLEKEYS, 1, 1, 1, "sorted-set", "Stores the union of multiple sorted sets in a key.", NULL },
    { "zinterstore", cmd_zinterstore, -4, W | M | K | CMD_MOVABLEKEYS, 1, 1, 1, "sorted-set", "Stores the intersect of multiple sorted sets in a key.", NULL },
    { "zdiffstore", cmd_zdiffstore, -4, W | M | K | CMD_MOVABLEKEYS, 1, 1, 1, "sorted-set", "Stores the difference of multiple sorted sets in a key.", NULL },
    { "zunion", cmd_zunion, -3, R | K | CMD_MOVABLEKEYS, 0, 0, 0, "sorted-set", "Returns the union of multiple sorted sets.", NULL },
    { "zinter", cmd_zinter, -3, R | K | CMD_MOVABLEKEYS, 0, 0, 0, "sorted-set", "Returns the intersect of multiple sorted sets.", NULL },
    { "zdiff", cmd_zdiff, -3, R | K | CMD_MOVABLEKEYS, 0, 0, 0, "sorted-set", "Returns the difference between multiple sorted sets.", NULL },
    { "zintercard", cmd_zintercard, -3, R | K | CMD_MOVABLEKEYS, 0, 0, 0, "sorted-set", "Returns the number of members of the intersect of multiple sorted sets.", NULL },
    { "zscan", cmd_zscan, -3, R | K, 1, 1, 1, "sorted-set", "Iterates over members and scores of a sorted set.", NULL },
    { NULL, NULL, 0, 0, 0, 0, 0, NULL, NULL, NULL },
};
