/* String commands: GET SET (NX XX GET EX PX EXAT PXAT KEEPTTL) SETNX SETEX PSETEX GETSET GETDEL
 * GETEX MGET MSET MSETNX APPEND STRLEN GETRANGE SETRANGE INCR DECR INCRBY DECRBY INCRBYFLOAT,
 * following Redis 7.0's t_string.c: same option grammar, same order of checks, same errors. */
#include "cache/store.h"
#include "proxy/args.h"
#include "proxy/command.h"
#include "proxy/numbers.h"
#include "proxy/reply.h"
#include "proxy/server.h"

#include <limits.h>
#include <math.h>
#include <string.h>

/* SET / GETEX option flags, as Redis's OBJ_* flags. */
#define OPT_NX 0x001u
#define OPT_XX 0x002u
#define OPT_GET 0x004u
#define OPT_KEEPTTL 0x008u
#define OPT_PERSIST 0x010u
#define OPT_EX 0x020u
#define OPT_PX 0x040u
#define OPT_EXAT 0x080u
#define OPT_PXAT 0x100u
#define OPT_ANY_EXPIRE (OPT_EX | OPT_PX | OPT_EXAT | OPT_PXAT)

enum string_cmd { FOR_SET, FOR_GETEX };

struct expire_opt {
    unsigned flag;
    const char *word;
};

static const struct expire_opt expire_opts[] = {
    { OPT_EX, "EX" }, { OPT_PX, "PX" }, { OPT_EXAT, "EXAT" }, { OPT_PXAT, "PXAT" },
};

static struct store *db_store(struct client *c) { return c->srv->store; }

/* Redis's parseExtendedStringArgumentsOrReply: fills *flags and *expire_arg (index or 0). */
static bool parse_string_options(struct client *c, size_t first, enum string_cmd kind,
                                 unsigned *flags, size_t *expire_arg)
{
    for (size_t j = first; j < c->argc; j++) {
        const struct resp_arg *opt = &c->argv[j];
        bool has_next = j + 1 < c->argc;
        unsigned f = *flags;
        if (kind == FOR_SET && arg_is(opt, "NX") && !(f & OPT_XX)) {
            *flags |= OPT_NX;
            continue;
        }
        if (kind == FOR_SET && arg_is(opt, "XX") && !(f & OPT_NX)) {
            *flags |= OPT_XX;
            continue;
        }
        if (kind == FOR_SET && arg_is(opt, "GET")) {
            *flags |= OPT_GET;
            continue;
        }
        if (kind == FOR_SET && arg_is(opt, "KEEPTTL") && !(f & (OPT_PERSIST | OPT_ANY_EXPIRE))) {
            *flags |= OPT_KEEPTTL;
            continue;
        }
        if (kind == FOR_GETEX && arg_is(opt, "PERSIST") && !(f & (OPT_KEEPTTL | OPT_ANY_EXPIRE))) {
            *flags |= OPT_PERSIST;
            continue;
        }
        bool matched = false;
        for (size_t k = 0; k < sizeof(expire_opts) / sizeof(expire_opts[0]); k++) {
            unsigned others = OPT_ANY_EXPIRE & ~expire_opts[k].flag;
            if (arg_is(opt, expire_opts[k].word) && has_next &&
                !(f & (OPT_KEEPTTL | OPT_PERSIST | others))) {
                *flags |= expire_opts[k].flag;
                *expire_arg = ++j;
                matched = true;
                break;
            }
        }
        if (!matched) {
            reply_error(c, ERR_SYNTAX);
            return false;
        }
    }
    return true;
}

static void reply_expire_error(struct client *c)
{
    reply_errorf(c, "ERR invalid expire time in '%s' command", c->cmd->name);
}

/* Redis's getExpireMillisecondsOrReply: argument i to an absolute unix time in ms. */
static bool expire_ms_or_reply(struct client *c, size_t i, unsigned flags, int64_t *out)
{
    long long v;
    if (!arg_ll_or_reply(c, i, &v, NULL))
        return false;
    bool seconds = flags & (OPT_EX | OPT_EXAT);
    if (v <= 0 || (seconds && v > LLONG_MAX / 1000)) {
        reply_expire_error(c);
        return false;
    }
    if (seconds)
        v *= 1000;
    if (flags & (OPT_EX | OPT_PX)) {
        long long now = server_now_ms(c->srv);
        if (v > LLONG_MAX - now) {
            reply_expire_error(c);
            return false;
        }
        v += now;
    }
    *out = v;
    return true;
}

/* Looks key argument i up for reading; replies WRONGTYPE and returns false on another type. */
static bool lookup_string(struct client *c, size_t i, unsigned flags, struct store_entry **e)
{
    *e = store_find(db_store(c), c->db, c->argv[i].ptr, c->argv[i].len, server_now_ms(c->srv),
                    flags);
    if (*e && (*e)->type != STORE_STRING) {
        reply_error(c, ERR_WRONGTYPE);
        return false;
    }
    return true;
}

static void reply_string_or_null(struct client *c, const struct store_entry *e)
{
    if (e)
        reply_bulk(c, store_string_ptr(e), store_string_len(e));
    else
        reply_null(c);
}

static void set_value(struct client *c, size_t key, const char *val, size_t vlen,
                      int64_t expire_ms, bool keep_ttl)
{
    struct store_entry *pre = c->bigarg;
    if (pre && val == store_string_ptr(pre) && vlen == store_string_len(pre) &&
        c->argv[key].len == store_entry_klen(pre) &&
        memcmp(c->argv[key].ptr, store_entry_key(pre), c->argv[key].len) == 0) {
        /* the value was read straight into an entry of this key (client.c): install it */
        c->bigarg = NULL;
        c->bigarg_have = c->bigarg_need = 0;
        store_set_string_entry(db_store(c), c->db, pre, expire_ms, keep_ttl,
                               server_now_ms(c->srv));
        return;
    }
    store_set_string(db_store(c), c->db, c->argv[key].ptr, c->argv[key].len, val, vlen,
                     expire_ms, keep_ttl, server_now_ms(c->srv));
}

/* Redis's setGenericCommand. */
static void set_generic(struct client *c, unsigned flags, size_t expire_arg, const char *ok,
                        const char *abort_reply)
{
    int64_t expire_ms = 0;
    if (expire_arg && !expire_ms_or_reply(c, expire_arg, flags, &expire_ms))
        return;
    struct store_entry *e;
    if (flags & OPT_GET) {
        if (!lookup_string(c, 1, STORE_READ, &e))
            return;
        reply_string_or_null(c, e);
    } else {
        e = store_find(db_store(c), c->db, c->argv[1].ptr, c->argv[1].len,
                       server_now_ms(c->srv), 0);
    }
    bool found = e != NULL;
    if (((flags & OPT_NX) && found) || ((flags & OPT_XX) && !found)) {
        if (!(flags & OPT_GET)) {
            if (abort_reply)
                reply_raw(c, abort_reply, strlen(abort_reply));
            else
                reply_null(c);
        }
        return;
    }
    set_value(c, 1, c->argv[2].ptr, c->argv[2].len, expire_ms, flags & OPT_KEEPTTL);
    if (!(flags & OPT_GET))
        reply_raw(c, ok, strlen(ok));
}

void cmd_set(struct client *c)
{
    unsigned flags = 0;
    size_t expire_arg = 0;
    if (parse_string_options(c, 3, FOR_SET, &flags, &expire_arg))
        set_generic(c, flags, expire_arg, "+OK\r\n", NULL);
}

void cmd_setnx(struct client *c)
{
    set_generic(c, OPT_NX, 0, ":1\r\n", ":0\r\n");
}

/* SETEX / PSETEX key ttl value: the value moves to argv[2] for set_generic. */
static void setex_generic(struct client *c, unsigned unit)
{
    struct resp_arg ttl = c->argv[2];
    c->argv[2] = c->argv[3];
    c->argv[3] = ttl;
    set_generic(c, unit, 3, "+OK\r\n", NULL);
}

void cmd_setex(struct client *c) { setex_generic(c, OPT_EX); }
void cmd_psetex(struct client *c) { setex_generic(c, OPT_PX); }

void cmd_get(struct client *c)
{
    struct store_entry *e;
    if (lookup_string(c, 1, STORE_READ, &e))
        reply_string_or_null(c, e);
}

void cmd_getset(struct client *c)
{
    struct store_entry *e;
    if (!lookup_string(c, 1, STORE_READ, &e))
        return;
    reply_string_or_null(c, e);
    set_value(c, 1, c->argv[2].ptr, c->argv[2].len, 0, false);
}

void cmd_getdel(struct client *c)
{
    struct store_entry *e;
    if (!lookup_string(c, 1, STORE_READ, &e))
        return;
    reply_string_or_null(c, e);
    if (e)
        store_delete_entry(db_store(c), e);
}

void cmd_getex(struct client *c)
{
    unsigned flags = 0;
    size_t expire_arg = 0;
    if (!parse_string_options(c, 2, FOR_GETEX, &flags, &expire_arg))
        return;
    struct store_entry *e;
    if (!lookup_string(c, 1, STORE_READ, &e))
        return;
    if (!e) {
        reply_null(c);
        return;
    }
    int64_t expire_ms = 0;
    if (expire_arg && !expire_ms_or_reply(c, expire_arg, flags, &expire_ms))
        return;
    reply_bulk(c, store_string_ptr(e), store_string_len(e));
    if ((flags & (OPT_EXAT | OPT_PXAT)) && expire_ms <= server_now_ms(c->srv))
        store_delete_entry(db_store(c), e);
    else if (expire_arg)
        store_set_expire(db_store(c), e, expire_ms);
    else if (flags & OPT_PERSIST)
        store_set_expire(db_store(c), e, 0);
}

void cmd_mget(struct client *c)
{
    int64_t now = server_now_ms(c->srv);
    reply_array(c, c->argc - 1);
    for (size_t i = 1; i < c->argc; i++) {
        struct store_entry *e = store_find(db_store(c), c->db, c->argv[i].ptr, c->argv[i].len,
                                           now, STORE_READ);
        reply_string_or_null(c, e && e->type == STORE_STRING ? e : NULL);
    }
}

static void mset_generic(struct client *c, bool nx)
{
    if (c->argc % 2 == 0) {
        reply_error_arity(c, c->cmd->name);
        return;
    }
    int64_t now = server_now_ms(c->srv);
    if (nx) {
        for (size_t i = 1; i < c->argc; i += 2) {
            if (store_find(db_store(c), c->db, c->argv[i].ptr, c->argv[i].len, now, 0)) {
                reply_int(c, 0);
                return;
            }
        }
    }
    for (size_t i = 1; i < c->argc; i += 2)
        set_value(c, i, c->argv[i + 1].ptr, c->argv[i + 1].len, 0, false);
    if (nx)
        reply_int(c, 1);
    else
        reply_ok(c);
}

void cmd_mset(struct client *c) { mset_generic(c, false); }
void cmd_msetnx(struct client *c) { mset_generic(c, true); }

/* Redis's checkStringLength: a string of size + append bytes must fit proto-max-bulk-len. */
static bool string_length_ok(struct client *c, long long size, long long append)
{
    long long total = size + append;
    if (total > c->srv->cfg.proto_max_bulk_len || total < size || total < append) {
        reply_error(c, ERR_STRING_SIZE);
        return false;
    }
    return true;
}

void cmd_append(struct client *c)
{
    struct store_entry *e;
    if (!lookup_string(c, 1, 0, &e))
        return;
    const struct resp_arg *v = &c->argv[2];
    if (!e) {
        set_value(c, 1, v->ptr, v->len, 0, false);
        reply_int(c, (long long)v->len);
        return;
    }
    size_t old = store_string_len(e);
    if (!string_length_ok(c, (long long)old, (long long)v->len))
        return;
    e = store_string_resize(db_store(c), e, old + v->len);
    memcpy(store_string_mut(e) + old, v->ptr, v->len);
    reply_int(c, (long long)store_string_len(e));
}

void cmd_strlen(struct client *c)
{
    struct store_entry *e;
    if (lookup_string(c, 1, STORE_READ, &e))
        reply_int(c, e ? (long long)store_string_len(e) : 0);
}

void cmd_getrange(struct client *c)
{
    long long start, end;
    if (!arg_ll_or_reply(c, 2, &start, NULL) || !arg_ll_or_reply(c, 3, &end, NULL))
        return;
    struct store_entry *e;
    if (!lookup_string(c, 1, STORE_READ, &e))
        return;
    long long len = e ? (long long)store_string_len(e) : 0;
    if (!e || (start < 0 && end < 0 && start > end)) {
        reply_bulk(c, "", 0);
        return;
    }
    if (start < 0)
        start += len;
    if (end < 0)
        end += len;
    if (start < 0)
        start = 0;
    if (end < 0)
        end = 0;
    if (end >= len)
        end = len - 1;
    if (start > end || len == 0)
        reply_bulk(c, "", 0);
    else
        reply_bulk(c, store_string_ptr(e) + start, (size_t)(end - start + 1));
}

void cmd_setrange(struct client *c)
{
    long long offset;
    if (!arg_ll_or_reply(c, 2, &offset, NULL))
        return;
    if (offset < 0) {
        reply_error(c, "ERR offset is out of range");
        return;
    }
    struct store_entry *e;
    if (!lookup_string(c, 1, 0, &e))
        return;
    const struct resp_arg *v = &c->argv[3];
    if (v->len == 0) {
        reply_int(c, e ? (long long)store_string_len(e) : 0);
        return;
    }
    if (!string_length_ok(c, offset, (long long)v->len))
        return;
    if (!e) {
        set_value(c, 1, "", 0, 0, false);
        e = store_find(db_store(c), c->db, c->argv[1].ptr, c->argv[1].len,
                       server_now_ms(c->srv), STORE_NOTOUCH);
    }
    size_t need = (size_t)offset + v->len;
    if (need > store_string_len(e))
        e = store_string_resize(db_store(c), e, need);
    memcpy(store_string_mut(e) + offset, v->ptr, v->len);
    reply_int(c, (long long)store_string_len(e));
}

/* Stores v as the decimal text of key argument 1, in place when it fits. */
static void store_number(struct client *c, struct store_entry *e, const char *text, size_t n)
{
    if (e) {
        e = store_string_resize(db_store(c), e, n);
        memcpy(store_string_mut(e), text, n);
    } else {
        set_value(c, 1, text, n, 0, false);
    }
}

static void incr_by(struct client *c, long long incr)
{
    struct store_entry *e;
    if (!lookup_string(c, 1, 0, &e))
        return;
    long long value = 0;
    if (e && !num_parse_ll(store_string_ptr(e), store_string_len(e), &value)) {
        reply_error(c, ERR_NOT_INTEGER);
        return;
    }
    if ((incr < 0 && value < 0 && incr < LLONG_MIN - value) ||
        (incr > 0 && value > 0 && incr > LLONG_MAX - value)) {
        reply_error(c, ERR_OVERFLOW);
        return;
    }
    value += incr;
    char text[NUM_LL_STR_MAX];
    size_t n = num_format_ll(text, value);
    store_number(c, e, text, n);
    reply_int(c, value);
}

void cmd_incr(struct client *c) { incr_by(c, 1); }
void cmd_decr(struct client *c) { incr_by(c, -1); }

void cmd_incrby(struct client *c)
{
    long long incr;
    if (arg_ll_or_reply(c, 2, &incr, NULL))
        incr_by(c, incr);
}

void cmd_decrby(struct client *c)
{
    long long incr;
    if (!arg_ll_or_reply(c, 2, &incr, NULL))
        return;
    if (incr == LLONG_MIN) {
        reply_error(c, "ERR decrement would overflow");
        return;
    }
    incr_by(c, -incr);
}

void cmd_incrbyfloat(struct client *c)
{
    struct store_entry *e;
    if (!lookup_string(c, 1, 0, &e))
        return;
    long double value = 0, incr;
    if (e && !num_parse_ld(store_string_ptr(e), store_string_len(e), &value)) {
        reply_error(c, ERR_NOT_FLOAT);
        return;
    }
    if (!arg_ld_or_reply(c, 2, &incr))
        return;
    value += incr;
    if (isnan(value) || isinf(value)) {
        reply_error(c, "ERR increment would produce NaN or Infinity");
        return;
    }
    char text[NUM_LD_STR_MAX];
    size_t n = num_format_ld(text, sizeof(text), value);
    store_number(c, e, text, n);
    reply_bulk(c, text, n);
}
