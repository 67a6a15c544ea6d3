/* Keyspace commands, on the client's selected database (c->db), with Redis 7.0's replies:
 * DEL UNLINK EXISTS TYPE TOUCH, the EXPIRE and TTL families, PERSIST, RENAME RENAMENX COPY,
 * KEYS SCAN RANDOMKEY DBSIZE FLUSHDB FLUSHALL.
 *
 * Lookups mirror Redis's: lookupKeyRead* counts a keyspace hit or miss (STORE_READ),
 * LOOKUP_NOTOUCH leaves the LRU alone (STORE_NOTOUCH), lookupKeyWrite does neither (flags 0).
 * Option keywords are compared as Redis's strcasecmp() does: up to the argument's first NUL.
 * Time is server_now_ms(): one reading per loop iteration, as Redis's cached command time. */
#include "cache/store.h"
#include "conf/glob.h"
#include "conf/xmalloc.h"
#include "proxy/args.h"
#include "proxy/blocking.h"
#include "proxy/command.h"
#include "proxy/numbers.h"
#include "proxy/reply.h"
#include "proxy/server.h"

#include <ctype.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define ERR_SAME_OBJECT "ERR source and destination objects are the same"
#define ERR_INT_RANGE "ERR value is out of range, value must between -2147483648 and 2147483647"

/* TYPE names by enum store_type; a missing key is "none". */
static const char *const type_names[STORE_TYPE_COUNT] = {
    [STORE_STRING] = "string", [STORE_HASH] = "hash", [STORE_LIST] = "list",
    [STORE_SET] = "set",       [STORE_ZSET] = "zset",
};

static const char *type_name(const struct store_entry *e)
{
    return e ? type_names[e->type] : "none";
}

static bool args_equal(const struct resp_arg *a, const struct resp_arg *b)
{
    return a->len == b->len && memcmp(a->ptr, b->ptr, a->len) == 0;
}

static struct store_entry *lookup(struct client *c, int db, size_t i, unsigned flags)
{
    return store_find(c->srv->store, db, c->argv[i].ptr, c->argv[i].len,
                      server_now_ms(c->srv), flags);
}

/* ---- DEL UNLINK EXISTS TOUCH TYPE ---- */

void cmd_del(struct client *c)
{
    long long n = 0;
    int64_t now = server_now_ms(c->srv);
    for (size_t i = 1; i < c->argc; i++)
        n += store_delete(c->srv->store, c->db, c->argv[i].ptr, c->argv[i].len, now);
    reply_int(c, n);
}

void cmd_unlink(struct client *c)
{
    cmd_del(c);
}

/* EXISTS and TOUCH: how many of the keys exist (a key named twice counts twice). */
static void count_existing(struct client *c, unsigned flags)
{
    long long n = 0;
    for (size_t i = 1; i < c->argc; i++)
        n += lookup(c, c->db, i, flags) != NULL;
    reply_int(c, n);
}

void cmd_exists(struct client *c)
{
    count_existing(c, STORE_READ | STORE_NOTOUCH);
}

void cmd_touch(struct client *c)
{
    count_existing(c, STORE_READ);
}

void cmd_type(struct client *c)
{
    reply_status(c, type_name(lookup(c, c->db, 1, STORE_READ | STORE_NOTOUCH)));
}

/* ---- EXPIRE PEXPIRE EXPIREAT PEXPIREAT ---- */

#define EXPIRE_NX 0x1u
#define EXPIRE_XX 0x2u
#define EXPIRE_GT 0x4u
#define EXPIRE_LT 0x8u

static const struct {
    const char *word;
    unsigned flag;
} expire_options[] = {
    { "nx", EXPIRE_NX }, { "xx", EXPIRE_XX }, { "gt", EXPIRE_GT }, { "lt", EXPIRE_LT },
};

/* Redis's parseExtendedExpireArgumentsOrReply over argv[3..]. */
static bool expire_options_or_reply(struct client *c, unsigned *flags)
{
    *flags = 0;
    for (size_t i = 3; i < c->argc; i++) {
        size_t k = 0, nopt = sizeof(expire_options) / sizeof(expire_options[0]);
        while (k < nopt && !arg_is(&c->argv[i], expire_options[k].word))
            k++;
        if (k == nopt) {
            /* Built here rather than with reply_errorf: the option is not truncated. */
            const char *prefix = "ERR Unsupported option ";
            size_t plen = strlen(prefix), olen = strnlen(c->argv[i].ptr, c->argv[i].len);
            char *msg = xmalloc(plen + olen + 1);
            memcpy(msg, prefix, plen);
            memcpy(msg + plen, c->argv[i].ptr, olen);
            msg[plen + olen] = '\0';
            reply_error(c, msg);
            free(msg);
            return false;
        }
        *flags |= expire_options[k].flag;
    }
    if ((*flags & EXPIRE_NX) && (*flags & (EXPIRE_XX | EXPIRE_GT | EXPIRE_LT))) {
        reply_error(c, "ERR NX and XX, GT or LT options at the same time are not compatible");
        return false;
    }
    if ((*flags & EXPIRE_GT) && (*flags & EXPIRE_LT)) {
        reply_error(c, "ERR GT and LT options at the same time are not compatible");
        return false;
    }
    return true;
}

/* Whether the options let a key whose current TTL is cur (-1 = none) take the TTL when. */
static bool expire_allowed(unsigned flags, long long cur, long long when)
{
    if ((flags & EXPIRE_NX) && cur != -1)
        return false;
    if ((flags & EXPIRE_XX) && cur == -1)
        return false;
    if ((flags & EXPIRE_GT) && (cur == -1 || when <= cur)) /* no TTL = infinite */
        return false;
    if ((flags & EXPIRE_LT) && cur != -1 && when >= cur)
        return false;
    return true;
}

#define EXPIRE_IN_SECONDS 0x1u /* the argument is seconds (else milliseconds) */
#define EXPIRE_RELATIVE 0x2u   /* the argument is added to the current time (else absolute) */

/* Redis's expireGenericCommand: options, then the time (overflow-checked in the unit
 * conversion and the addition of the base time), then the key. A time not in the future
 * deletes the key (reply 1). */
static void expire_generic(struct client *c, unsigned mode)
{
    unsigned flags;
    long long when;
    if (!expire_options_or_reply(c, &flags) || !arg_ll_or_reply(c, 2, &when, NULL))
        return;
    int64_t now = server_now_ms(c->srv);
    long long base = (mode & EXPIRE_RELATIVE) ? (long long)now : 0;
    if (mode & EXPIRE_IN_SECONDS) {
        if (when > LLONG_MAX / 1000 || when < LLONG_MIN / 1000)
            goto invalid;
        when *= 1000;
    }
    if (when > LLONG_MAX - base)
        goto invalid;
    when += base;

    struct store_entry *e = lookup(c, c->db, 1, 0);
    if (!e || !expire_allowed(flags, e->expire_ms ? e->expire_ms : -1, when)) {
        reply_int(c, 0);
        return;
    }
    if (when <= now)
        store_delete_entry(c->srv->store, e);
    else
        store_set_expire(c->srv->store, e, when);
    reply_int(c, 1);
    return;
invalid:
    reply_errorf(c, "ERR invalid expire time in '%s' command", c->cmd->name);
}

void cmd_expire(struct client *c) { expire_generic(c, EXPIRE_IN_SECONDS | EXPIRE_RELATIVE); }
void cmd_pexpire(struct client *c) { expire_generic(c, EXPIRE_RELATIVE); }
void cmd_expireat(struct client *c) { expire_generic(c, EXPIRE_IN_SECONDS); }
void cmd_pexpireat(struct client *c) { expire_generic(c, 0); }

/* ---- TTL PTTL EXPIRETIME PEXPIRETIME PERSIST ---- */

/* Redis's ttlGenericCommand: -2 no key, -1 no TTL, else the TTL (relative to now, or the
 * absolute time) in ms or in seconds rounded to the nearest. */
static void ttl_generic(struct client *c, bool in_ms, bool absolute)
{
    struct store_entry *e = lookup(c, c->db, 1, STORE_READ | STORE_NOTOUCH);
    if (!e) {
        reply_int(c, -2);
        return;
    }
    if (e->expire_ms == 0) {
        reply_int(c, -1);
        return;
    }
    long long ttl = absolute ? e->expire_ms : e->expire_ms - server_now_ms(c->srv);
    if (ttl < 0)
        ttl = 0;
    /* Rounded without overflow: Redis's build prints (LLONG_MAX + 500) / 1000 exactly. */
    reply_int(c, in_ms ? ttl : (long long)(((unsigned long long)ttl + 500) / 1000));
}

void cmd_ttl(struct client *c) { ttl_generic(c, false, false); }
void cmd_pttl(struct client *c) { ttl_generic(c, true, false); }
void cmd_expiretime(struct client *c) { ttl_generic(c, false, true); }
void cmd_pexpiretime(struct client *c) { ttl_generic(c, true, true); }

void cmd_persist(struct client *c)
{
    struct store_entry *e = lookup(c, c->db, 1, 0);
    if (!e || e->expire_ms == 0) {
        reply_int(c, 0);
        return;
    }
    store_set_expire(c->srv->store, e, 0);
    reply_int(c, 1);
}

/* ---- RENAME RENAMENX COPY ---- */

/* Redis's renameGenericCommand: the source must exist (even when it is the destination);
 * the value and TTL move, replacing the destination unless nx. */
static void rename_generic(struct client *c, bool nx)
{
    if (!lookup(c, c->db, 1, 0)) {
        reply_error(c, ERR_NO_SUCH_KEY);
        return;
    }
    if (args_equal(&c->argv[1], &c->argv[2])) {
        if (nx)
            reply_int(c, 0);
        else
            reply_ok(c);
        return;
    }
    if (lookup(c, c->db, 2, 0) && nx) {
        reply_int(c, 0);
        return;
    }
    /* Found again: the destination lookup may have deleted an expired entry. */
    struct store_entry *src = lookup(c, c->db, 1, STORE_NOTOUCH);
    store_rename(c->srv->store, src, c->db, c->argv[2].ptr, c->argv[2].len,
                 server_now_ms(c->srv));
    if (nx)
        reply_int(c, 1);
    else
        reply_ok(c);
}

void cmd_rename(struct client *c) { rename_generic(c, false); }
void cmd_renamenx(struct client *c) { rename_generic(c, true); }

/* COPY source destination [DB destination-db] [REPLACE], as Redis 7.0's copyCommand. */
void cmd_copy(struct client *c)
{
    int dst_db = c->db;
    bool replace = false;
    for (size_t i = 3; i < c->argc; i++) {
        if (arg_is(&c->argv[i], "replace")) {
            replace = true;
        } else if (arg_is(&c->argv[i], "db") && i + 1 < c->argc) {
            long long v; /* getIntFromObjectOrReply, then selectDb */
            if (!arg_ll_or_reply(c, i + 1, &v, NULL))
                return;
            if (v < INT_MIN || v > INT_MAX) {
                reply_error(c, ERR_INT_RANGE);
                return;
            }
            if (v < 0 || v >= store_databases(c->srv->store)) {
                reply_error(c, ERR_DB_RANGE);
                return;
            }
            dst_db = (int)v;
            i++;
        } else {
            reply_error(c, ERR_SYNTAX);
            return;
        }
    }
    if (dst_db == c->db && args_equal(&c->argv[1], &c->argv[2])) {
        reply_error(c, ERR_SAME_OBJECT);
        return;
    }
    if (!lookup(c, c->db, 1, STORE_READ)) {
        reply_int(c, 0);
        return;
    }
    if (lookup(c, dst_db, 2, 0) && !replace) {
        reply_int(c, 0);
        return;
    }
    /* Found again: the destination lookup may have deleted an expired entry. */
    const struct store_entry *src = lookup(c, c->db, 1, STORE_NOTOUCH);
    store_copy(c->srv->store, src, dst_db, c->argv[2].ptr, c->argv[2].len,
               server_now_ms(c->srv));
    /* The dispatcher signals the keys of the current db; DB n needs its own signal. */
    blocking_signal_key(c->srv, dst_db, c->argv[2].ptr, c->argv[2].len);
    reply_int(c, 1);
}

/* ---- KEYS SCAN RANDOMKEY DBSIZE ---- */

/* KEYS and SCAN MATCH: Redis's stringmatchlen never matches an empty key unless the pattern is
 * empty too (only the "*" shortcut, done by the callers, returns it); glob_match would. */
static bool key_matches(const struct resp_arg *pat, const struct store_entry *e)
{
    if (e->klen == 0)
        return pat->len == 0;
    return glob_match(pat->ptr, pat->len, store_entry_key(e), e->klen, false);
}

struct keys_walk {
    struct client *c;
    const struct resp_arg *pat; /* NULL: every key */
    size_t n;
};

static void keys_walk_cb(void *ctx, const struct store_entry *e)
{
    struct keys_walk *w = ctx;
    if (w->pat && !key_matches(w->pat, e))
        return;
    reply_bulk(w->c, store_entry_key(e), e->klen);
    w->n++;
}

/* KEYS pattern: every live key of the selected database that matches (expired ones are
 * skipped, not deleted). One full walk of the table, so each key is seen exactly once. */
void cmd_keys(struct client *c)
{
    keys_reply_matching(c, c->db, &c->argv[1]);
}

void keys_reply_matching(struct client *c, int db, const struct resp_arg *pat)
{
    struct keys_walk w = { c, (pat->len == 1 && pat->ptr[0] == '*') ? NULL : pat, 0 };
    size_t handle = reply_defer_len(c);
    int64_t now = server_now_ms(c->srv);
    uint64_t cursor = 0;
    if (store_count(c->srv->store, db) > 0) {
        do {
            cursor = store_scan(c->srv->store, db, cursor, now, keys_walk_cb, &w);
        } while (cursor != 0);
    }
    reply_set_deferred_len(c, handle, w.n);
}

/* The keys one SCAN call collected: the entries seen (found, what COUNT bounds), and copies of
 * those matching the pattern, each as a size_t length then the bytes. */
struct scan_walk {
    const struct resp_arg *pat; /* NULL: every key */
    size_t found, matched;
    struct strbuf keys;
};

static void scan_walk_cb(void *ctx, const struct store_entry *e)
{
    struct scan_walk *w = ctx;
    w->found++;
    if (w->pat && !key_matches(w->pat, e))
        return;
    size_t klen = e->klen;
    strbuf_append(&w->keys, &klen, sizeof(klen));
    strbuf_append(&w->keys, store_entry_key(e), klen);
    w->matched++;
}

/* SCAN cursor [MATCH pattern] [COUNT count] [TYPE type], as Redis 7.0's scanGenericCommand:
 * steps while the cursor is not 0, at most count*10 steps and until count keys of the
 * database were seen; then the pattern filter, then the type filter (a read lookup, so it
 * counts hits; an unknown type name matches nothing). Reply: [cursor as bulk, [keys...]]. */
void cmd_scan(struct client *c)
{
    uint64_t cursor;
    long long count = SCAN_COUNT_DEFAULT;
    const struct resp_arg *pat = NULL, *type = NULL;
    if (!arg_cursor_or_reply(c, 1, &cursor))
        return;
    for (size_t i = 2; i < c->argc; i += 2) {
        bool has_value = i + 1 < c->argc;
        if (arg_is(&c->argv[i], "count") && has_value) {
            if (!arg_ll_or_reply(c, i + 1, &count, NULL))
                return;
            if (count < 1) {
                reply_error(c, ERR_SYNTAX);
                return;
            }
        } else if (arg_is(&c->argv[i], "match") && has_value) {
            pat = &c->argv[i + 1];
            if (pat->len == 1 && pat->ptr[0] == '*')
                pat = NULL;
        } else if (arg_is(&c->argv[i], "type") && has_value) {
            type = &c->argv[i + 1];
        } else {
            reply_error(c, ERR_SYNTAX);
            return;
        }
    }

    struct store *s = c->srv->store;
    int64_t now = server_now_ms(c->srv);
    struct scan_walk w = { pat, 0, 0, { NULL, 0, 0 } };
    if (store_count(s, c->db) == 0) {
        cursor = 0; /* Redis's dictScan of an empty dict */
    } else {
        long long iterations = scan_max_steps(count);
        do {
            cursor = store_scan(s, c->db, cursor, now, scan_walk_cb, &w);
        } while (cursor != 0 && iterations-- && w.found < (unsigned long long)count);
    }

    char cbuf[NUM_LL_STR_MAX];
    reply_array(c, 2);
    reply_bulk(c, cbuf, num_format_ull(cbuf, cursor));
    size_t handle = reply_defer_len(c), n = 0;
    /* strcasecmp(typename, type name): the type argument ends at its first NUL. */
    size_t tlen = type ? strnlen(type->ptr, type->len) : 0;
    for (size_t off = 0, k = 0; k < w.matched; k++) {
        size_t klen;
        memcpy(&klen, w.keys.data + off, sizeof(klen));
        const char *key = w.keys.data + off + sizeof(klen);
        off += sizeof(klen) + klen;
        if (type) {
            const char *name = type_name(store_find(s, c->db, key, klen, now,
                                                    STORE_READ | STORE_NOTOUCH));
            if (tlen != strlen(name) || strncasecmp(type->ptr, name, tlen) != 0)
                continue;
        }
        reply_bulk(c, key, klen);
        n++;
    }
    reply_set_deferred_len(c, handle, n);
    strbuf_free(&w.keys);
}

void cmd_randomkey(struct client *c)
{
    struct store_entry *e = store_random(c->srv->store, c->db, server_now_ms(c->srv));
    if (e)
        reply_bulk(c, store_entry_key(e), e->klen);
    else
        reply_null(c);
}

void cmd_dbsize(struct client *c)
{
    reply_int(c, (long long)store_count(c->srv->store, c->db));
}

/* ---- FLUSHDB FLUSHALL ---- */

/* Redis's getFlushCommandFlags: nothing, ASYNC or SYNC (both flush at once here). */
static bool flush_args_or_reply(struct client *c)
{
    if (c->argc == 1 ||
        (c->argc == 2 && (arg_is(&c->argv[1], "sync") || arg_is(&c->argv[1], "async"))))
        return true;
    reply_error(c, ERR_SYNTAX);
    return false;
}

void cmd_flushdb(struct client *c)
{
    if (!flush_args_or_reply(c))
        return;
    store_flush(c->srv->store, c->db);
    reply_ok(c);
}

void cmd_flushall(struct client *c)
{
    if (!flush_args_or_reply(c))
        return;
    store_flush(c->srv->store, -1);
    reply_ok(c);
}
