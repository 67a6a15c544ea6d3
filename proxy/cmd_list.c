/* List commands: LPUSH RPUSH LPUSHX RPUSHX LPOP RPOP (COUNT) LLEN LRANGE LINDEX LSET LINSERT
 * LREM LTRIM LPOS LMOVE RPOPLPUSH LMPOP, following Redis 7.0's t_list.c: the same order of
 * argument checks and lookups, the same replies (RESP2 and RESP3 nulls) and error texts.
 *
 * Invariants: a list key in the store is never empty (every change goes through
 * store_value_changed, which deletes an emptied list and fires the WATCH hook); a command that
 * changes nothing does not touch the key; a new list key is created only by
 * list_create_key(). Reads that Redis counts as keyspace hits/misses (lookupKeyRead) use
 * STORE_READ; writes look up with flags 0 (lookupKeyWrite).
 *
 * The blocking commands BLPOP BRPOP BLMOVE BRPOPLPUSH BLMPOP are here too, on the generic
 * mechanism of blocking.h: with an element available they behave as LPOP/RPOP/LMOVE/LMPOP
 * (Redis's replies); otherwise the client blocks (never inside MULTI/EXEC, where they answer
 * the timeout null at once) until one of its keys is signalled (list_create_key(), or the
 * dispatcher after any write naming it), then list_serve_pop() / list_serve_move() answer it. The building blocks are public for other callers:
 * list_lookup_write(), list_pop_and_reply(), list_push_elements(), list_move_and_reply(). */
#include "proxy/cmd_list.h"

#include "cache/list.h"
#include "cache/store.h"
#include "proxy/args.h"
#include "proxy/blocking.h"
#include "proxy/command.h"
#include "proxy/reply.h"
#include "proxy/server.h"

#include <limits.h>
#include <string.h>

#define ERR_INDEX_RANGE "ERR index out of range"
#define ERR_POSITIVE "ERR value is out of range, must be positive"
#define ERR_RANK_ZERO                                                                    \
    "ERR RANK can't be zero: use 1 to start from the first match, 2 from the second ... " \
    "or use negative to start from the end of the list"
#define ERR_COUNT_NEGATIVE "ERR COUNT can't be negative"
#define ERR_MAXLEN_NEGATIVE "ERR MAXLEN can't be negative"
#define ERR_NUMKEYS "ERR numkeys should be greater than 0"
#define ERR_COUNT_ZERO "ERR count should be greater than 0"

/* ---- lookups and shared steps ---- */

static struct store *list_store(struct client *c) { return c->srv->store; }

/* The entry for key in the client's db (flags: STORE_READ for Redis's lookupKeyRead). False
 * after replying WRONGTYPE when it holds another type; *e is NULL when the key is missing. */
static bool list_lookup(struct client *c, const char *key, size_t klen, unsigned flags,
                        struct store_entry **e)
{
    *e = store_find(list_store(c), c->db, key, klen, server_now_ms(c->srv), flags);
    if (*e && (*e)->type != STORE_LIST) {
        reply_error(c, ERR_WRONGTYPE);
        return false;
    }
    return true;
}

/* Redis's lookupKeyWrite + checkType for a list: *e is the list entry or NULL (missing);
 * false after replying WRONGTYPE. The entry stays valid until the store is next modified
 * (store.h). */
bool list_lookup_write(struct client *c, const char *key, size_t klen, struct store_entry **e)
{
    return list_lookup(c, key, klen, 0, e);
}

static struct list *entry_list(const struct store_entry *e) { return store_value(e); }

/* The one place a list key is created: key must be missing (the caller looked it up in this
 * command). l (non-empty) now belongs to the store. A client blocked on key (BLPOP & co.)
 * becomes servable here. */
static struct store_entry *list_create_key(struct client *c, const char *key, size_t klen,
                                           struct list *l)
{
    struct store_entry *e = store_add_value(list_store(c), c->db, key, klen, STORE_LIST, l,
                                            server_now_ms(c->srv));
    blocking_signal_key(c->srv, c->db, key, klen);
    return e;
}

static void reply_element(void *ctx, const char *p, size_t n)
{
    reply_bulk(ctx, p, n);
}

/* Pops up to count (>= 1) elements at side w of the list entry e (a non-empty list of the
 * client's db, just looked up) and replies them in the given form, naming the key for the
 * KEY forms; the key is deleted when the list becomes empty. e is gone afterwards (it may
 * have been deleted). With LIST_POP_ELEMENT count must be 1. */
void list_pop_and_reply(struct client *c, struct store_entry *e, enum list_where w,
                        size_t count, enum list_pop_form form)
{
    struct list *l = entry_list(e);
    size_t n = list_len(l) < count ? list_len(l) : count;
    if (form == LIST_POP_KEY_ELEMENT || form == LIST_POP_KEY_ARRAY) {
        reply_array(c, 2);
        reply_bulk(c, store_entry_key(e), store_entry_klen(e));
    }
    if (form == LIST_POP_ARRAY || form == LIST_POP_KEY_ARRAY)
        reply_array(c, n);
    else
        n = 1;
    list_pop(l, w, n, reply_element, c);
    store_value_changed(list_store(c), e);
}

/* Pushes elems[0..n) (n >= 1) one by one at side w of the list at key (in the client's db);
 * e is its entry just looked up with list_lookup_write (NULL: the key is created). Returns the
 * list's new length. Replies nothing. */
size_t list_push_elements(struct client *c, const char *key, size_t klen, struct store_entry *e,
                          enum list_where w, const struct resp_arg *elems, size_t n)
{
    struct list *l = e ? entry_list(e) : list_new();
    for (size_t i = 0; i < n; i++)
        list_push(l, w, elems[i].ptr, elems[i].len);
    size_t len = list_len(l);
    if (e)
        store_value_changed(list_store(c), e);
    else
        list_create_key(c, key, klen, l);
    return len;
}

/* LMOVE's core (Redis's lmoveGenericCommand after its lookups): moves the element at side
 * `from` of the list at src to side `to` of the list at dst (created when missing; src may be
 * dst) and replies it as a bulk. A missing src replies a null. False, with nothing changed,
 * after replying WRONGTYPE for src or dst. */
bool list_move_and_reply(struct client *c, const char *src, size_t slen, enum list_where from,
                         const char *dst, size_t dlen, enum list_where to)
{
    struct store_entry *se, *de;
    if (!list_lookup(c, src, slen, 0, &se))
        return false;
    if (!se) {
        reply_null(c);
        return true;
    }
    /* The destination lookup can only delete dst's own entry (expired), never se. */
    if (!list_lookup(c, dst, dlen, 0, &de))
        return false;
    if (de == se) {
        list_move(entry_list(se), from, entry_list(se), to, reply_element, c);
        store_value_changed(list_store(c), se);
        return true;
    }
    struct list *dl = de ? entry_list(de) : list_new();
    list_move(entry_list(se), from, dl, to, reply_element, c);
    if (de)
        store_value_changed(list_store(c), de);
    store_value_changed(list_store(c), se);
    if (!de)
        list_create_key(c, dst, dlen, dl);
    return true;
}

/* Redis's getPositiveLongFromObjectOrReply: 0..LLONG_MAX, else msg (every failure). */
static bool arg_positive_or_reply(struct client *c, size_t i, long long *out, const char *msg)
{
    if (!arg_ll_or_reply(c, i, out, msg))
        return false;
    if (*out < 0) {
        reply_error(c, msg);
        return false;
    }
    return true;
}

/* Redis's getListPositionFromObjectOrReply: LEFT or RIGHT. */
static bool arg_where_or_reply(struct client *c, size_t i, enum list_where *w)
{
    if (arg_is(&c->argv[i], "right"))
        *w = LIST_TAIL;
    else if (arg_is(&c->argv[i], "left"))
        *w = LIST_HEAD;
    else {
        reply_error(c, ERR_SYNTAX);
        return false;
    }
    return true;
}

/* ---- LPUSH RPUSH LPUSHX RPUSHX ---- */

static void push_generic(struct client *c, enum list_where w, bool xx)
{
    struct store_entry *e;
    if (!list_lookup_write(c, c->argv[1].ptr, c->argv[1].len, &e))
        return;
    if (!e && xx) {
        reply_int(c, 0);
        return;
    }
    size_t len = list_push_elements(c, c->argv[1].ptr, c->argv[1].len, e, w, c->argv + 2,
                                    c->argc - 2);
    reply_int(c, (long long)len);
}

void cmd_lpush(struct client *c) { push_generic(c, LIST_HEAD, false); }
void cmd_rpush(struct client *c) { push_generic(c, LIST_TAIL, false); }
void cmd_lpushx(struct client *c) { push_generic(c, LIST_HEAD, true); }
void cmd_rpushx(struct client *c) { push_generic(c, LIST_TAIL, true); }

/* ---- LPOP RPOP ---- */

static void pop_generic(struct client *c, enum list_where w)
{
    bool has_count = c->argc == 3;
    long long count = 0;
    if (c->argc > 3) {
        reply_error_arity(c, c->cmd->name);
        return;
    }
    if (has_count && !arg_positive_or_reply(c, 2, &count, ERR_POSITIVE))
        return;
    struct store_entry *e;
    if (!list_lookup_write(c, c->argv[1].ptr, c->argv[1].len, &e))
        return;
    if (!e) {
        if (has_count)
            reply_null_array(c);
        else
            reply_null(c);
        return;
    }
    if (has_count && count == 0) {
        reply_array(c, 0);
        return;
    }
    if (has_count)
        list_pop_and_reply(c, e, w, (size_t)count, LIST_POP_ARRAY);
    else
        list_pop_and_reply(c, e, w, 1, LIST_POP_ELEMENT);
}

void cmd_lpop(struct client *c) { pop_generic(c, LIST_HEAD); }
void cmd_rpop(struct client *c) { pop_generic(c, LIST_TAIL); }

/* ---- LLEN LRANGE LINDEX ---- */

void cmd_llen(struct client *c)
{
    struct store_entry *e;
    if (list_lookup(c, c->argv[1].ptr, c->argv[1].len, STORE_READ, &e))
        reply_int(c, e ? (long long)list_len(entry_list(e)) : 0);
}

/* Redis's conversion of a [start, end] range with negative indexes: false when empty. */
static bool range_normalize(long long start, long long end, size_t len, size_t *from,
                            size_t *count)
{
    long long llen = (long long)len;
    if (start < 0)
        start = llen + start;
    if (end < 0)
        end = llen + end;
    if (start < 0)
        start = 0;
    if (start > end || start >= llen)
        return false;
    if (end >= llen)
        end = llen - 1;
    *from = (size_t)start;
    *count = (size_t)(end - start) + 1;
    return true;
}

void cmd_lrange(struct client *c)
{
    long long start, end;
    if (!arg_ll_or_reply(c, 2, &start, NULL) || !arg_ll_or_reply(c, 3, &end, NULL))
        return;
    struct store_entry *e;
    if (!list_lookup(c, c->argv[1].ptr, c->argv[1].len, STORE_READ, &e))
        return;
    size_t from, count;
    if (!e || !range_normalize(start, end, list_len(entry_list(e)), &from, &count)) {
        reply_array(c, 0);
        return;
    }
    reply_array(c, count);
    struct list_iter it;
    list_iter_init(&it, entry_list(e), from, LIST_TAIL);
    const char *p;
    size_t n;
    for (size_t i = 0; i < count && list_iter_next(&it, &p, &n); i++)
        reply_bulk(c, p, n);
}

void cmd_lindex(struct client *c)
{
    struct store_entry *e;
    if (!list_lookup(c, c->argv[1].ptr, c->argv[1].len, STORE_READ, &e))
        return;
    if (!e) {
        reply_null(c);
        return;
    }
    long long index;
    if (!arg_ll_or_reply(c, 2, &index, NULL))
        return;
    const char *p;
    size_t n;
    if (list_index(entry_list(e), index, &p, &n))
        reply_bulk(c, p, n);
    else
        reply_null(c);
}

/* ---- LSET LINSERT LREM LTRIM ---- */

void cmd_lset(struct client *c)
{
    struct store_entry *e;
    if (!list_lookup_write(c, c->argv[1].ptr, c->argv[1].len, &e))
        return;
    if (!e) {
        reply_error(c, ERR_NO_SUCH_KEY);
        return;
    }
    long long index;
    if (!arg_ll_or_reply(c, 2, &index, NULL))
        return;
    if (!list_set(entry_list(e), index, c->argv[3].ptr, c->argv[3].len)) {
        reply_error(c, ERR_INDEX_RANGE);
        return;
    }
    store_value_changed(list_store(c), e);
    reply_ok(c);
}

void cmd_linsert(struct client *c)
{
    enum list_where side;
    if (arg_is(&c->argv[2], "after"))
        side = LIST_TAIL;
    else if (arg_is(&c->argv[2], "before"))
        side = LIST_HEAD;
    else {
        reply_error(c, ERR_SYNTAX);
        return;
    }
    struct store_entry *e;
    if (!list_lookup_write(c, c->argv[1].ptr, c->argv[1].len, &e))
        return;
    if (!e) {
        reply_int(c, 0);
        return;
    }
    struct list *l = entry_list(e);
    if (!list_insert(l, side, c->argv[3].ptr, c->argv[3].len, c->argv[4].ptr, c->argv[4].len)) {
        reply_int(c, -1);
        return;
    }
    size_t len = list_len(l);
    store_value_changed(list_store(c), e);
    reply_int(c, (long long)len);
}

void cmd_lrem(struct client *c)
{
    long long count;
    if (!arg_ll_or_reply(c, 2, &count, NULL))
        return;
    struct store_entry *e;
    if (!list_lookup_write(c, c->argv[1].ptr, c->argv[1].len, &e))
        return;
    if (!e) {
        reply_int(c, 0);
        return;
    }
    size_t removed = list_remove(entry_list(e), c->argv[3].ptr, c->argv[3].len, count);
    if (removed)
        store_value_changed(list_store(c), e);
    reply_int(c, (long long)removed);
}

void cmd_ltrim(struct client *c)
{
    long long start, end;
    if (!arg_ll_or_reply(c, 2, &start, NULL) || !arg_ll_or_reply(c, 3, &end, NULL))
        return;
    struct store_entry *e;
    if (!list_lookup_write(c, c->argv[1].ptr, c->argv[1].len, &e))
        return;
    if (e) {
        struct list *l = entry_list(e);
        size_t len = list_len(l), from, count;
        if (range_normalize(start, end, len, &from, &count))
            list_trim(l, from, len - from - count);
        else
            list_trim(l, len, 0);
        store_value_changed(list_store(c), e);
    }
    reply_ok(c);
}

/* ---- LPOS ---- */

static void reply_index(void *ctx, size_t index)
{
    reply_int(ctx, (long long)index);
}

static void keep_index(void *ctx, size_t index)
{
    *(size_t *)ctx = index;
}

void cmd_lpos(struct client *c)
{
    long long rank = 1, count = -1, maxlen = 0; /* count -1: no COUNT option */
    for (size_t j = 3; j < c->argc; j++) {
        bool more = j + 1 < c->argc;
        if (arg_is(&c->argv[j], "RANK") && more) {
            if (!arg_ll_or_reply(c, ++j, &rank, NULL))
                return;
            if (rank == 0) {
                reply_error(c, ERR_RANK_ZERO);
                return;
            }
        } else if (arg_is(&c->argv[j], "COUNT") && more) {
            if (!arg_positive_or_reply(c, ++j, &count, ERR_COUNT_NEGATIVE))
                return;
        } else if (arg_is(&c->argv[j], "MAXLEN") && more) {
            if (!arg_positive_or_reply(c, ++j, &maxlen, ERR_MAXLEN_NEGATIVE))
                return;
        } else {
            reply_error(c, ERR_SYNTAX);
            return;
        }
    }
    /* Redis 7.0 negates LONG_MIN into itself: every match from the tail counts, and a COUNT
     * never ends the walk. */
    if (rank == LLONG_MIN) {
        rank = -1;
        if (count > 0)
            count = 0;
    }
    struct store_entry *e;
    if (!list_lookup(c, c->argv[1].ptr, c->argv[1].len, STORE_READ, &e))
        return;
    if (!e) {
        if (count != -1)
            reply_array(c, 0);
        else
            reply_null(c);
        return;
    }
    const struct resp_arg *ele = &c->argv[2];
    if (count == -1) {
        size_t index = 0;
        if (list_pos(entry_list(e), ele->ptr, ele->len, rank, 1, (size_t)maxlen, keep_index,
                     &index))
            reply_int(c, (long long)index);
        else
            reply_null(c);
        return;
    }
    size_t handle = reply_defer_len(c);
    size_t n = list_pos(entry_list(e), ele->ptr, ele->len, rank, (size_t)count, (size_t)maxlen,
                        reply_index, c);
    reply_set_deferred_len(c, handle, n);
}

/* ---- LMOVE RPOPLPUSH LMPOP ---- */

void cmd_lmove(struct client *c)
{
    enum list_where from, to;
    if (!arg_where_or_reply(c, 3, &from) || !arg_where_or_reply(c, 4, &to))
        return;
    list_move_and_reply(c, c->argv[1].ptr, c->argv[1].len, from, c->argv[2].ptr,
                        c->argv[2].len, to);
}

void cmd_rpoplpush(struct client *c)
{
    list_move_and_reply(c, c->argv[1].ptr, c->argv[1].len, LIST_TAIL, c->argv[2].ptr,
                        c->argv[2].len, LIST_HEAD);
}

/* ---- blocking: BLPOP BRPOP BLMPOP BLMOVE BRPOPLPUSH ---- */

/* Serves a blocked BLPOP/BRPOP (count -1) or BLMPOP from the non-empty list e. */
static bool list_serve_pop(struct client *c, struct store_entry *e, const struct blocking_args *a)
{
    if (a->count < 0)
        list_pop_and_reply(c, e, (enum list_where)a->where, 1, LIST_POP_KEY_ELEMENT);
    else
        list_pop_and_reply(c, e, (enum list_where)a->where, (size_t)a->count,
                           LIST_POP_KEY_ARRAY);
    return true;
}

/* Serves a blocked BLMOVE/BRPOPLPUSH: as LMOVE from e's key (a WRONGTYPE destination is its
 * answer, the source left as it was, as Redis 7.0 does). */
static bool list_serve_move(struct client *c, struct store_entry *e,
                            const struct blocking_args *a)
{
    list_move_and_reply(c, store_entry_key(e), store_entry_klen(e), (enum list_where)a->where,
                        a->target, a->target_len, (enum list_where)a->whereto);
    return true;
}

/* Redis 7.0 answers every list blocking command's timeout with a null array (also BLMOVE). */
static const struct blocking_ops list_pop_block_ops = { STORE_LIST, list_serve_pop, NULL };
static const struct blocking_ops list_move_block_ops = { STORE_LIST, list_serve_move, NULL };

/* Redis's blockingPopGenericCommand: keys[0..nkeys), timeout argument timeout_idx; count -1
 * pops one element replied [key, element], else up to count replied [key, [elements]]. */
static void blocking_pop_generic(struct client *c, const struct resp_arg *keys, size_t nkeys,
                                 enum list_where w, size_t timeout_idx, long long count)
{
    int64_t deadline;
    if (!blocking_timeout_or_reply(c, timeout_idx, &deadline))
        return;
    for (size_t k = 0; k < nkeys; k++) {
        struct store_entry *e;
        if (!list_lookup_write(c, keys[k].ptr, keys[k].len, &e))
            return;
        if (!e)
            continue;
        if (count < 0)
            list_pop_and_reply(c, e, w, 1, LIST_POP_KEY_ELEMENT);
        else
            list_pop_and_reply(c, e, w, (size_t)count, LIST_POP_KEY_ARRAY);
        return;
    }
    if (!blocking_allowed(c)) {
        reply_null_array(c);
        return;
    }
    struct blocking_args a = { .where = (int)w, .count = count };
    blocking_block(c, keys, nkeys, deadline, &list_pop_block_ops, &a);
}

void cmd_blpop(struct client *c)
{
    blocking_pop_generic(c, c->argv + 1, c->argc - 2, LIST_HEAD, c->argc - 1, -1);
}

void cmd_brpop(struct client *c)
{
    blocking_pop_generic(c, c->argv + 1, c->argc - 2, LIST_TAIL, c->argc - 1, -1);
}

/* Redis's blmoveGenericCommand: src (argv[1]) missing blocks; otherwise LMOVE. */
static void blmove_generic(struct client *c, enum list_where from, enum list_where to,
                           int64_t deadline)
{
    struct store_entry *e;
    if (!list_lookup_write(c, c->argv[1].ptr, c->argv[1].len, &e))
        return;
    if (e) {
        list_move_and_reply(c, c->argv[1].ptr, c->argv[1].len, from, c->argv[2].ptr,
                            c->argv[2].len, to);
        return;
    }
    if (!blocking_allowed(c)) {
        reply_null(c); /* inside MULTI: a null bulk, as Redis 7.0 */
        return;
    }
    struct blocking_args a = {
        .where = (int)from, .whereto = (int)to, .count = -1,
        .target = c->argv[2].ptr, .target_len = c->argv[2].len,
    };
    blocking_block(c, c->argv + 1, 1, deadline, &list_move_block_ops, &a);
}

void cmd_blmove(struct client *c)
{
    enum list_where from, to;
    int64_t deadline;
    if (!arg_where_or_reply(c, 3, &from) || !arg_where_or_reply(c, 4, &to) ||
        !blocking_timeout_or_reply(c, 5, &deadline))
        return;
    blmove_generic(c, from, to, deadline);
}

void cmd_brpoplpush(struct client *c)
{
    int64_t deadline;
    if (blocking_timeout_or_reply(c, 3, &deadline))
        blmove_generic(c, LIST_TAIL, LIST_HEAD, deadline);
}

/* ---- LMPOP BLMPOP ---- */

/* Redis's lmpopGenericCommand: [timeout] numkeys key [key ...] LEFT|RIGHT [COUNT count], numkeys
 * at numkeys_idx (the timeout, for BLMPOP, at 1: parsed after the rest). Pops from the first
 * non-empty list. */
static void lmpop_generic(struct client *c, size_t numkeys_idx, bool is_block)
{
    long long numkeys;
    if (!arg_ll_or_reply(c, numkeys_idx, &numkeys, ERR_NUMKEYS))
        return;
    if (numkeys < 1) {
        reply_error(c, ERR_NUMKEYS);
        return;
    }
    /* LEFT|RIGHT comes right after the keys. */
    if ((unsigned long long)numkeys >= c->argc - numkeys_idx - 1) {
        reply_error(c, ERR_SYNTAX);
        return;
    }
    size_t where_arg = numkeys_idx + 1 + (size_t)numkeys;
    enum list_where w;
    if (!arg_where_or_reply(c, where_arg, &w))
        return;
    long long count = -1;
    for (size_t j = where_arg + 1; j < c->argc; j++) {
        if (count == -1 && arg_is(&c->argv[j], "COUNT") && j + 1 < c->argc) {
            if (!arg_ll_or_reply(c, ++j, &count, ERR_COUNT_ZERO))
                return;
            if (count < 1) {
                reply_error(c, ERR_COUNT_ZERO);
                return;
            }
        } else {
            reply_error(c, ERR_SYNTAX);
            return;
        }
    }
    if (count == -1)
        count = 1;
    if (is_block) {
        blocking_pop_generic(c, c->argv + numkeys_idx + 1, (size_t)numkeys, w, 1, count);
        return;
    }
    for (size_t k = numkeys_idx + 1; k < where_arg; k++) {
        struct store_entry *e;
        if (!list_lookup_write(c, c->argv[k].ptr, c->argv[k].len, &e))
            return;
        if (e) {
            list_pop_and_reply(c, e, w, (size_t)count, LIST_POP_KEY_ARRAY);
            return;
        }
    }
    reply_null_array(c);
}

void cmd_lmpop(struct client *c) { lmpop_generic(c, 1, false); }
void cmd_blmpop(struct client *c) { lmpop_generic(c, 2, true); }

/* ---- the table ---- */

#define R CMD_READ
#define W CMD_WRITE
#define C CMD_CACHEABLE
#define M CMD_DENYOOM
#define F CMD_FAST
#define K CMD_KEYSPACE
#define S (CMD_STATEFUL | CMD_BLOCKING)

const struct command list_commands[] = {
    { "lpush", cmd_lpush, -3, W | M | F | K, 1, 1, 1, "list", "Prepend one or multiple elements to a list", NULL },
    { "rpush", cmd_rpush, -3, W | M | F | K, 1, 1, 1, "list", "Append one or multiple elements to a list", NULL },
    { "lpushx", cmd_lpushx, -3, W | M | F | K, 1, 1, 1, "list", "Prepend an element to a list, only if the list exists", NULL },
    { "rpushx", cmd_rpushx, -3, W | M | F | K, 1, 1, 1, "list", "Append an element to a list, only if the list exists", NULL },
    { "lpop", cmd_lpop, -2, W | F | K, 1, 1, 1, "list", "Remove and get the first elements in a list", NULL },
    { "rpop", cmd_rpop, -2, W | F | K, 1, 1, 1, "list", "Remove and get the last elements in a list", NULL },
    { "llen", cmd_llen, 2, R | C | F | K, 1, 1, 1, "list", "Get the length of a list", NULL },
    { "lrange", cmd_lrange, 4, R | C | K, 1, 1, 1, "list", "Get a range of elements from a list", NULL },
    { "lindex", cmd_lindex, 3, R | C | K, 1, 1, 1, "list", "Get an element from a list by its index", NULL },
    { "lset", cmd_lset, 4, W | M | K, 1, 1, 1, "list", "Set the value of an element in a list by its index", NULL },
    { "linsert", cmd_linsert, 5, W | M | K, 1, 1, 1, "list", "Insert an element before or after another element in a list", NULL },
    { "lrem", cmd_lrem, 4, W | K, 1, 1, 1, "list", "Remove elements from a list", NULL },
    { "ltrim", cmd_ltrim, 4, W | K, 1, 1, 1, "list", "Trim a list to the specified range", NULL },
    { "lpos", cmd_lpos, -3, R | K, 1, 1, 1, "list", "Return the index of matching elements on a list", NULL },
    { "lmove", cmd_lmove, 5, W | M | K, 1, 2, 1, "list", "Pop an element from a list, push it to another list and return it", NULL },
    { "rpoplpush", cmd_rpoplpush, 3, W | M | K, 1, 2, 1, "list", "Remove the last element in a list, prepend it to another list and return it", NULL },
    { "lmpop", cmd_lmpop, -4, W | K | CMD_MOVABLEKEYS, 0, 0, 0, "list", "Pop elements from a list", NULL },
    { "blpop", cmd_blpop, -3, W | S | K, 1, -2, 1, "list", "Remove and get the first element in a list, or block until one is available", NULL },
    { "brpop", cmd_brpop, -3, W | S | K, 1, -2, 1, "list", "Remove and get the last element in a list, or block until one is available", NULL },
    { "brpoplpush", cmd_brpoplpush, 4, W | M | S | K, 1, 2, 1, "list", "Pop an element from a list, push it to another list and return it; or block until one is available", NULL },
    { "blmove", cmd_blmove, 6, W | M | S | K, 1, 2, 1, "list", "Pop an element from a list, push it to another list and return it; or block until one is available", NULL },
    { "blmpop", cmd_blmpop, -5, W | S | K | CMD_MOVABLEKEYS, 0, 0, 0, "list", "Pop elements from a list, or block until one is available", NULL },
    { NULL, NULL, 0, 0, 0, 0, 0, NULL, NULL, NULL },
};
