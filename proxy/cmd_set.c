/* Set commands: SADD SREM SISMEMBER SMISMEMBER SMEMBERS SCARD SPOP SRANDMEMBER SINTER
 * SINTERCARD SUNION SDIFF SINTERSTORE SUNIONSTORE SDIFFSTORE SMOVE SSCAN, following Redis 7.0's
 * t_set.c: the same order of checks (arguments, then every key's type, then the work), the same
 * errors and replies. In RESP3, SMEMBERS SINTER SUNION SDIFF and SPOP with a count reply a set;
 * SRANDMEMBER with a count replies an array (an empty one for count 0 or a missing key).
 * Owns the set_commands table.
 *
 * Invariants: a new set key is built first and then added with store_add_value (the store never
 * holds an empty set); every in-place change of a stored set is followed by
 * store_value_changed (which deletes an emptied set); the *STORE forms compute the result before
 * touching the destination, which is replaced (no TTL) or deleted when the result is empty.
 * Replies stream from the stored sets (views, never a copy of a set) except where Redis also
 * builds a result set: SUNION and SDIFF. Random picks use a per-command xorshift state; no
 * global state. Loops are bounded by set sizes, argument counts, or (negative SRANDMEMBER
 * counts) the client's output buffer limit. */
#include "cache/set.h"
#include "cache/store.h"
#include "conf/glob.h"
#include "conf/xmalloc.h"
#include "proxy/args.h"
#include "proxy/command.h"
#include "proxy/numbers.h"
#include "proxy/reply.h"
#include "proxy/server.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#define ERR_POSITIVE "ERR value is out of range, must be positive"
#define ERR_SRANDMEMBER_RANGE \
    "ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807"
#define ERR_NUMKEYS "ERR numkeys should be greater than 0"
#define ERR_NUMKEYS_ARGS "ERR Number of keys can't be greater than number of args"
#define ERR_LIMIT "ERR LIMIT can't be negative"
/* SDIFF: Redis's algorithm choice gives the member-by-member walk this advantage. */
#define SDIFF_WALK_ADVANTAGE 2
/* Negative SRANDMEMBER count: how many members are written between output-limit checks. */
#define SRANDMEMBER_BATCH 1024

command_proc cmd_sadd, cmd_srem, cmd_sismember, cmd_smismember, cmd_smembers, cmd_scard,
    cmd_spop, cmd_srandmember, cmd_sinter, cmd_sintercard, cmd_sunion, cmd_sdiff,
    cmd_sinterstore, cmd_sunionstore, cmd_sdiffstore, cmd_smove, cmd_sscan;

/* ---- helpers ---- */

static struct store *sstore(struct client *c) { return c->srv->store; }

static struct store_entry *lookup(struct client *c, size_t i, unsigned flags)
{
    return store_find(sstore(c), c->db, c->argv[i].ptr, c->argv[i].len, server_now_ms(c->srv),
                      flags);
}

/* Looks key argument i up; replies WRONGTYPE and returns false when it holds another type.
 * *e and *s are NULL when the key does not exist. */
static bool lookup_set(struct client *c, size_t i, unsigned flags, struct store_entry **e,
                       struct set_value **s)
{
    *e = lookup(c, i, flags);
    *s = NULL;
    if (!*e)
        return true;
    if ((*e)->type != STORE_SET) {
        reply_error(c, ERR_WRONGTYPE);
        return false;
    }
    *s = store_value(*e);
    return true;
}

/* A new empty set seeded with the process's secret hash seed. Owned by the caller. */
static struct set_value *set_new(struct client *c)
{
    return set_create(store_seed(sstore(c)), 16);
}

/* Adds s (non-empty, owned by the caller until now) as key argument i, replacing any value. */
static void set_store_as(struct client *c, size_t i, struct set_value *s)
{
    store_add_value(sstore(c), c->db, c->argv[i].ptr, c->argv[i].len, STORE_SET, s,
                    server_now_ms(c->srv));
}

/* A fresh xorshift state for one command's random picks: the clock, the client and the
 * server's command counter mixed (variety, not secrecy). */
static uint64_t random_state(const struct client *c)
{
    uint64_t x = (uint64_t)server_now_ms(c->srv) * 0x9E3779B97F4A7C15ull;
    x ^= (c->id + 1) * 0xBF58476D1CE4E5B9ull;
    x ^= (c->srv->stats.commands_processed + 1) * 0x94D049BB133111EBull;
    x ^= x >> 31;
    return x ? x : 1;
}

static void reply_member_cb(void *ctx, const char *m, size_t len)
{
    reply_bulk(ctx, m, len);
}

/* Every member of s as bulk strings (the header is the caller's). */
static void reply_members(struct client *c, const struct set_value *s)
{
    struct set_iter it;
    struct set_member m;
    set_iter_start(&it);
    while (set_iter_next(s, &it, &m))
        reply_bulk(c, m.ptr, m.len);
}

/* Views of members kept while a reply is built (the sets do not change meanwhile). */
static void views_add(struct strbuf *views, const char *m, size_t len)
{
    struct set_member v = { m, len };
    strbuf_append(views, &v, sizeof(v));
}

static void reply_views(struct client *c, const struct strbuf *views)
{
    size_t n = views->len / sizeof(struct set_member);
    for (size_t i = 0; i < n; i++) {
        struct set_member v;
        memcpy(&v, views->data + i * sizeof(v), sizeof(v));
        reply_bulk(c, v.ptr, v.len);
    }
}

/* ---- SADD SREM SISMEMBER SMISMEMBER SCARD ---- */

void cmd_sadd(struct client *c)
{
    struct store_entry *e;
    struct set_value *s;
    if (!lookup_set(c, 1, 0, &e, &s))
        return;
    bool fresh = s == NULL;
    if (fresh)
        s = set_new(c);
    long long added = 0;
    for (size_t i = 2; i < c->argc; i++)
        added += set_add(s, c->argv[i].ptr, c->argv[i].len);
    if (fresh)
        set_store_as(c, 1, s);
    else if (added)
        store_value_changed(sstore(c), e);
    reply_int(c, added);
}

/* Redis's sremCommand: stops at the member that empties the set, which is then deleted. */
void cmd_srem(struct client *c)
{
    struct store_entry *e;
    struct set_value *s;
    if (!lookup_set(c, 1, 0, &e, &s))
        return;
    long long removed = 0;
    if (s) {
        for (size_t i = 2; i < c->argc && set_len(s) > 0; i++)
            removed += set_remove(s, c->argv[i].ptr, c->argv[i].len);
        if (removed)
            store_value_changed(sstore(c), e);
    }
    reply_int(c, removed);
}

void cmd_sismember(struct client *c)
{
    struct store_entry *e;
    struct set_value *s;
    if (!lookup_set(c, 1, STORE_READ, &e, &s))
        return;
    reply_int(c, s && set_contains(s, c->argv[2].ptr, c->argv[2].len));
}

/* A missing key is an empty set: a zero for each member. */
void cmd_smismember(struct client *c)
{
    struct store_entry *e;
    struct set_value *s;
    if (!lookup_set(c, 1, STORE_READ, &e, &s))
        return;
    reply_array(c, c->argc - 2);
    for (size_t i = 2; i < c->argc; i++)
        reply_int(c, s && set_contains(s, c->argv[i].ptr, c->argv[i].len));
}

void cmd_scard(struct client *c)
{
    struct store_entry *e;
    struct set_value *s;
    if (!lookup_set(c, 1, STORE_READ, &e, &s))
        return;
    reply_int(c, s ? (long long)set_len(s) : 0);
}

/* ---- SPOP SRANDMEMBER ---- */

/* Redis's spopWithCountCommand: the count (non-negative) first, then the key; a missing key
 * or a count of 0 is an empty set; a count covering the set returns it whole and deletes it. */
static void spop_with_count(struct client *c)
{
    long long count;
    if (!num_parse_ll(c->argv[2].ptr, c->argv[2].len, &count) || count < 0) {
        reply_error(c, ERR_POSITIVE);
        return;
    }
    struct store_entry *e;
    struct set_value *s;
    if (!lookup_set(c, 1, 0, &e, &s))
        return;
    if (!s || count == 0) {
        reply_set(c, 0);
        return;
    }
    size_t size = set_len(s);
    if ((unsigned long long)count >= size) {
        reply_set(c, size);
        reply_members(c, s);
        store_delete_entry(sstore(c), e);
        return;
    }
    uint64_t rng = random_state(c);
    reply_set(c, (size_t)count);
    for (long long i = 0; i < count; i++)
        set_pop_random(s, &rng, reply_member_cb, c);
    store_value_changed(sstore(c), e);
}

void cmd_spop(struct client *c)
{
    if (c->argc == 3) {
        spop_with_count(c);
        return;
    }
    if (c->argc > 3) {
        reply_error(c, ERR_SYNTAX);
        return;
    }
    struct store_entry *e;
    struct set_value *s;
    if (!lookup_set(c, 1, 0, &e, &s))
        return;
    if (!s) {
        reply_null(c);
        return;
    }
    uint64_t rng = random_state(c);
    set_pop_random(s, &rng, reply_member_cb, c);
    store_value_changed(sstore(c), e);
}

/* Redis 7.0's srandmemberWithCountCommand: a negative count returns that many picks with
 * repetitions (in pick order), a positive one distinct members; replies are arrays, an empty
 * one for a missing key or a count of 0. */
static void srandmember_with_count(struct client *c)
{
    long long l;
    if (!arg_ll_or_reply(c, 2, &l, NULL))
        return;
    if (l == LLONG_MIN) {
        reply_error(c, ERR_SRANDMEMBER_RANGE);
        return;
    }
    bool uniq = l >= 0;
    unsigned long long count = uniq ? (unsigned long long)l : (unsigned long long)-l;
    struct store_entry *e;
    struct set_value *s;
    if (!lookup_set(c, 1, STORE_READ, &e, &s))
        return;
    if (!s || count == 0) {
        reply_array(c, 0);
        return;
    }
    size_t size = set_len(s);
    uint64_t rng = random_state(c);
    if (!uniq || count == 1) {
        /* In batches, bounded by the output limit: past it the client is closed after the
         * command (as Redis stops at CLIENT_CLOSE_ASAP). */
        size_t limit = (size_t)c->srv->cfg.client_output_buffer_limit;
        reply_array(c, count);
        for (unsigned long long left = count; left > 0;) {
            size_t batch = left < SRANDMEMBER_BATCH ? (size_t)left : SRANDMEMBER_BATCH;
            set_random_many(s, &rng, batch, reply_member_cb, c);
            left -= batch;
            if (client_output_bytes(c) > limit)
                break;
        }
        return;
    }
    if (count >= size) {
        reply_array(c, size);
        reply_members(c, s);
        return;
    }
    reply_array(c, (size_t)count);
    set_random_distinct(s, &rng, (size_t)count, reply_member_cb, c);
}

void cmd_srandmember(struct client *c)
{
    if (c->argc == 3) {
        srandmember_with_count(c);
        return;
    }
    if (c->argc > 3) {
        reply_error(c, ERR_SYNTAX);
        return;
    }
    struct store_entry *e;
    struct set_value *s;
    if (!lookup_set(c, 1, STORE_READ, &e, &s))
        return;
    if (!s) {
        reply_null(c);
        return;
    }
    uint64_t rng = random_state(c);
    struct set_member m;
    set_random(s, &rng, &m);
    reply_bulk(c, m.ptr, m.len);
}

/* ---- SINTER SMEMBERS SINTERCARD SINTERSTORE ---- */

/* The sets named by arguments first..first+n-1 (read lookups, as Redis 7.0). NULL for a
 * missing key. Returns false after replying WRONGTYPE (every key is checked before any work).
 * *sets is allocated by this function (n entries) and must be freed by the caller when true. */
static bool lookup_sets(struct client *c, size_t first, size_t n, struct set_value ***sets,
                        size_t *missing)
{
    struct set_value **v = xmalloc((n ? n : 1) * sizeof(*v));
    *missing = 0;
    for (size_t j = 0; j < n; j++) {
        struct store_entry *e;
        if (!lookup_set(c, first + j, STORE_READ, &e, &v[j])) {
            free(v);
            return false;
        }
        *missing += v[j] == NULL;
    }
    *sets = v;
    return true;
}

static int cmp_by_len(const void *a, const void *b)
{
    size_t la = set_len(*(struct set_value *const *)a);
    size_t lb = set_len(*(struct set_value *const *)b);
    return la < lb ? -1 : la > lb;
}

/* Whether member m of sets[0] is in every other set (sets[0] itself is skipped). */
static bool in_all(struct set_value *const *sets, size_t n, const struct set_member *m)
{
    for (size_t j = 1; j < n; j++) {
        if (sets[j] == sets[0])
            continue;
        if (!set_contains(sets[j], m->ptr, m->len))
            return false;
    }
    return true;
}

enum inter_mode { INTER_REPLY, INTER_CARD, INTER_STORE };

/* Redis 7.0's sinterGenericCommand over arguments first..first+n-1: a missing key makes the
 * result empty; otherwise the smallest set is walked and each member tested in the others.
 * INTER_REPLY replies a set, INTER_CARD the count (stopping at limit, 0 = none), INTER_STORE
 * stores into key argument 1 (deleted when the result is empty) and replies its size. */
static void sinter_generic(struct client *c, size_t first, size_t n, enum inter_mode mode,
                           unsigned long long limit)
{
    struct set_value **sets;
    size_t missing;
    if (!lookup_sets(c, first, n, &sets, &missing))
        return;
    if (missing) {
        free(sets);
        if (mode == INTER_STORE) {
            store_delete(sstore(c), c->db, c->argv[1].ptr, c->argv[1].len,
                         server_now_ms(c->srv));
            reply_int(c, 0);
        } else if (mode == INTER_CARD) {
            reply_int(c, 0);
        } else {
            reply_set(c, 0);
        }
        return;
    }
    qsort(sets, n, sizeof(*sets), cmp_by_len);

    struct set_iter it;
    struct set_member m;
    set_iter_start(&it);
    if (mode == INTER_CARD) {
        unsigned long long card = 0;
        while (set_iter_next(sets[0], &it, &m)) {
            if (in_all(sets, n, &m) && ++card == limit)
                break;
        }
        reply_int(c, (long long)card);
    } else if (mode == INTER_STORE) {
        struct set_value *dst = set_new(c);
        while (set_iter_next(sets[0], &it, &m))
            if (in_all(sets, n, &m))
                set_add(dst, m.ptr, m.len);
        size_t len = set_len(dst);
        if (len > 0) {
            set_store_as(c, 1, dst);
        } else {
            set_free(dst);
            store_delete(sstore(c), c->db, c->argv[1].ptr, c->argv[1].len,
                         server_now_ms(c->srv));
        }
        reply_int(c, (long long)len);
    } else if (n == 1) {
        reply_set(c, set_len(sets[0]));
        reply_members(c, sets[0]);
    } else {
        struct strbuf views = { NULL, 0, 0 };
        while (set_iter_next(sets[0], &it, &m))
            if (in_all(sets, n, &m))
                views_add(&views, m.ptr, m.len);
        reply_set(c, views.len / sizeof(struct set_member));
        reply_views(c, &views);
        strbuf_free(&views);
    }
    free(sets);
}

void cmd_sinter(struct client *c) { sinter_generic(c, 1, c->argc - 1, INTER_REPLY, 0); }
void cmd_smembers(struct client *c) { sinter_generic(c, 1, 1, INTER_REPLY, 0); }
void cmd_sinterstore(struct client *c) { sinter_generic(c, 2, c->argc - 2, INTER_STORE, 0); }

/* SINTERCARD numkeys key [key ...] [LIMIT limit], as Redis 7.0's sinterCardCommand. */
void cmd_sintercard(struct client *c)
{
    long long numkeys, limit = 0;
    if (!arg_ll_or_reply(c, 1, &numkeys, ERR_NUMKEYS))
        return;
    if (numkeys < 1) {
        reply_error(c, ERR_NUMKEYS);
        return;
    }
    if ((unsigned long long)numkeys > c->argc - 2) {
        reply_error(c, ERR_NUMKEYS_ARGS);
        return;
    }
    for (size_t j = 2 + (size_t)numkeys; j < c->argc; j++) {
        if (arg_is(&c->argv[j], "limit") && j + 1 < c->argc) {
            j++;
            if (!arg_ll_or_reply(c, j, &limit, ERR_LIMIT))
                return;
            if (limit < 0) {
                reply_error(c, ERR_LIMIT);
                return;
            }
        } else {
            reply_error(c, ERR_SYNTAX);
            return;
        }
    }
    sinter_generic(c, 2, (size_t)numkeys, INTER_CARD, (unsigned long long)limit);
}

/* ---- SUNION SDIFF and their STORE forms ---- */

enum setop { SETOP_UNION, SETOP_DIFF };

/* SDIFF: the members of sets[0] in none of the others (a missing key is empty). Redis's
 * choice: walk sets[0] testing each member (work |sets[0]| * n / 2), or copy sets[0] and remove
 * the others' members (work: the sum of the sizes). */
static void sdiff_into(struct set_value *dst, struct set_value **sets, size_t n)
{
    if (!sets[0])
        return;
    unsigned long long walk = 0, copy = 0;
    for (size_t j = 0; j < n; j++) {
        if (j > 0 && sets[j] == sets[0])
            return; /* the same key is subtracted from itself: empty */
        if (sets[j]) {
            walk += set_len(sets[0]);
            copy += set_len(sets[j]);
        }
    }
    struct set_iter it;
    struct set_member m;
    if (walk / SDIFF_WALK_ADVANTAGE <= copy) {
        set_iter_start(&it);
        while (set_iter_next(sets[0], &it, &m)) {
            size_t j = 1;
            while (j < n && !(sets[j] && set_contains(sets[j], m.ptr, m.len)))
                j++;
            if (j == n)
                set_add(dst, m.ptr, m.len);
        }
        return;
    }
    for (size_t j = 0; j < n; j++) {
        if (!sets[j])
            continue;
        set_iter_start(&it);
        while (set_iter_next(sets[j], &it, &m)) {
            if (j == 0)
                set_add(dst, m.ptr, m.len);
            else
                set_remove(dst, m.ptr, m.len);
        }
        if (set_len(dst) == 0)
            break;
    }
}

/* Redis 7.0's sunionDiffGenericCommand over arguments first..first+n-1 (missing keys are empty
 * sets). The result is built as a set; without store it is replied as a set, with store it
 * replaces key argument 1 (deleted when empty) and its size is replied. */
static void sunion_diff_generic(struct client *c, size_t first, size_t n, enum setop op,
                                bool store)
{
    struct set_value **sets;
    size_t missing;
    if (!lookup_sets(c, first, n, &sets, &missing))
        return;
    struct set_value *dst = set_new(c);
    if (op == SETOP_UNION) {
        for (size_t j = 0; j < n; j++) {
            if (!sets[j])
                continue;
            struct set_iter it;
            struct set_member m;
            set_iter_start(&it);
            while (set_iter_next(sets[j], &it, &m))
                set_add(dst, m.ptr, m.len);
        }
    } else {
        sdiff_into(dst, sets, n);
    }
    free(sets);
    size_t len = set_len(dst);
    if (!store) {
        reply_set(c, len);
        reply_members(c, dst);
        set_free(dst);
        return;
    }
    if (len > 0) {
        set_store_as(c, 1, dst);
    } else {
        set_free(dst);
        store_delete(sstore(c), c->db, c->argv[1].ptr, c->argv[1].len, server_now_ms(c->srv));
    }
    reply_int(c, (long long)len);
}

void cmd_sunion(struct client *c) { sunion_diff_generic(c, 1, c->argc - 1, SETOP_UNION, false); }
void cmd_sdiff(struct client *c) { sunion_diff_generic(c, 1, c->argc - 1, SETOP_DIFF, false); }
void cmd_sunionstore(struct client *c)
{
    sunion_diff_generic(c, 2, c->argc - 2, SETOP_UNION, true);
}
void cmd_sdiffstore(struct client *c)
{
    sunion_diff_generic(c, 2, c->argc - 2, SETOP_DIFF, true);
}

/* ---- SMOVE ---- */

/* Redis 7.0's smoveCommand: a missing source replies 0 (whatever the destination holds); then
 * both types are checked; the same key replies whether the member is there. */
void cmd_smove(struct client *c)
{
    struct store_entry *src = lookup(c, 1, 0), *dst = lookup(c, 2, 0);
    if (!src) {
        reply_int(c, 0);
        return;
    }
    if (src->type != STORE_SET || (dst && dst->type != STORE_SET)) {
        reply_error(c, ERR_WRONGTYPE);
        return;
    }
    const struct resp_arg *m = &c->argv[3];
    if (src == dst) {
        reply_int(c, set_contains(store_value(src), m->ptr, m->len));
        return;
    }
    if (!set_remove(store_value(src), m->ptr, m->len)) {
        reply_int(c, 0);
        return;
    }
    store_value_changed(sstore(c), src);
    /* Found again: changing the source may have deleted it, and entry pointers are only
     * guaranteed until the store changes. */
    dst = lookup(c, 2, STORE_NOTOUCH);
    if (!dst) {
        struct set_value *s = set_new(c);
        set_add(s, m->ptr, m->len);
        set_store_as(c, 2, s);
    } else if (set_add(store_value(dst), m->ptr, m->len)) {
        store_value_changed(sstore(c), dst);
    }
    reply_int(c, 1);
}

/* ---- SSCAN ---- */

/* The members one SSCAN call collected: found counts every member seen (what COUNT bounds),
 * the matching ones are kept as views. */
struct sscan_walk {
    const struct resp_arg *pat; /* NULL: every member */
    size_t found;
    struct strbuf views;
};

/* stringmatchlen: an empty member matches only the empty pattern. */
static bool member_matches(const struct resp_arg *pat, const char *m, size_t len)
{
    if (len == 0)
        return pat->len == 0;
    return glob_match(pat->ptr, pat->len, m, len, false);
}

static void sscan_walk_cb(void *ctx, const char *m, size_t len)
{
    struct sscan_walk *w = ctx;
    w->found++;
    if (w->pat && !member_matches(w->pat, m, len))
        return;
    views_add(&w->views, m, len);
}

/* SSCAN key cursor [MATCH pattern] [COUNT count], as Redis 7.0's sscanCommand and
 * scanGenericCommand: the cursor is parsed first, then the key (missing: an empty scan, whatever
 * the options), then the options (TYPE is a syntax error here). The dict is stepped until
 * count members were seen or count*10 steps were made. Reply: [cursor, [members...]]. */
void cmd_sscan(struct client *c)
{
    uint64_t cursor;
    if (!arg_cursor_or_reply(c, 2, &cursor))
        return;
    struct store_entry *e;
    struct set_value *s;
    if (!lookup_set(c, 1, STORE_READ, &e, &s))
        return;
    if (!s) {
        reply_raw(c, EMPTY_SCAN, strlen(EMPTY_SCAN));
        return;
    }
    long long count = SCAN_COUNT_DEFAULT;
    const struct resp_arg *pat = NULL;
    if (!arg_scan_options_or_reply(c, 3, &count, &pat))
        return;

    struct sscan_walk w = { pat, 0, { NULL, 0, 0 } };
    long long iterations = scan_max_steps(count);
    do {
        cursor = set_scan(s, cursor, sscan_walk_cb, &w);
    } while (cursor != 0 && iterations-- && w.found < (unsigned long long)count);

    char cbuf[NUM_LL_STR_MAX];
    reply_array(c, 2);
    reply_bulk(c, cbuf, num_format_ull(cbuf, cursor));
    reply_array(c, w.views.len / sizeof(struct set_member));
    reply_views(c, &w.views);
    strbuf_free(&w.views);
}

/* ---- the table ---- */

#define R CMD_READ
#define W CMD_WRITE
#define C CMD_CACHEABLE
#define M CMD_DENYOOM
#define F CMD_FAST
#define K CMD_KEYSPACE

const struct command set_commands[] = {
    { "sadd", cmd_sadd, -3, W | M | F | K, 1, 1, 1, "set", "Adds one or more members to a set. Creates the key if it doesn't exist.", NULL },
    { "srem", cmd_srem, -3, W | F | K, 1, 1, 1, "set", "Removes one or more members from a set. Deletes the set if the last member was removed.", NULL },
    { "sismember", cmd_sismember, 3, R | C | F | K, 1, 1, 1, "set", "Determines whether a member belongs to a set.", NULL },
    { "smismember", cmd_smismember, -3, R | F | K, 1, 1, 1, "set", "Determines whether multiple members belong to a set.", NULL },
    { "smembers", cmd_smembers, 2, R | C | K, 1, 1, 1, "set", "Returns all members of a set.", NULL },
    { "scard", cmd_scard, 2, R | C | F | K, 1, 1, 1, "set", "Returns the number of members in a set.", NULL },
    { "spop", cmd_spop, -2, W | F | K, 1, 1, 1, "set", "Returns one or more random members from a set after removing them. Deletes the set if the last member was popped.", NULL },
    { "srandmember", cmd_srandmember, -2, R | K, 1, 1, 1, "set", "Get one or multiple random members from a set", NULL },
    { "sinter", cmd_sinter, -2, R | K, 1, -1, 1, "set", "Returns the intersect of multiple sets.", NULL },
    { "sintercard", cmd_sintercard, -3, R | K | CMD_MOVABLEKEYS, 0, 0, 0, "set", "Returns the number of members of the intersect of multiple sets.", NULL },
    { "sinterstore", cmd_sinterstore, -3, W | M | K, 1, -1, 1, "set", "Stores the intersect of multiple sets in a key.", NULL },
    { "sunion", cmd_sunion, -2, R | K, 1, -1, 1, "set", "Returns the union of multiple sets.", NULL },
    { "sunionstore", cmd_sunionstore, -3, W | M | K, 1, -1, 1, "set", "Stores the union of multiple sets in a key.", NULL },
    { "sdiff", cmd_sdiff, -2, R | K, 1, -1, 1, "set", "Returns the difference of multiple sets.", NULL },
    { "sdiffstore", cmd_sdiffstore, -3, W | M | K, 1, -1, 1, "set", "Stores the difference of multiple sets in a key.", NULL },
    { "smove", cmd_smove, 4, W | F | K, 1, 2, 1, "set", "Moves a member from one set to another.", NULL },
    { "sscan", cmd_sscan, -3, R | K, 1, 1, 1, "set", "Iterates over members of a set.", NULL },
    { NULL, NULL, 0, 0, 0, 0, 0, NULL, NULL, NULL },
};
