/* Hash commands: HSET HSETNX HGET HMGET HMSET HGETALL HDEL HEXISTS HLEN HSTRLEN HKEYS HVALS
 * HINCRBY HINCRBYFLOAT HRANDFIELD HSCAN, following Redis 7.0's t_hash.c: the same order of
 * checks (argument parsing, then the key's type, then the fields), the same errors and replies
 * (HGETALL is a map in RESP3, HRANDFIELD WITHVALUES nests pairs in RESP3, HSCAN stays flat).
 * A small hash is compact (cache/hash.h) and lists fields in insertion order, and HSCAN returns
 * it whole with cursor 0, both as Redis does with a listpack. Owns the hash_commands table. A new hash key is built first and then added with
 * store_add_value (so the store never holds an empty hash); every in-place change of an
 * existing hash is followed by store_value_changed. No global state: the dict seed of a new
 * hash is derived from the server's run id. */
#include "cache/hash.h"
#include "cache/store.h"
#include "conf/glob.h"
#include "conf/xmalloc.h"
#include "proxy/args.h"
#include "proxy/command.h"
#include "proxy/numbers.h"
#include "proxy/reply.h"
#include "proxy/server.h"

#include <ctype.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define ERR_HASH_NOT_INTEGER "ERR hash value is not an integer"
#define ERR_HASH_NOT_FLOAT "ERR hash value is not a float"
#define ERR_OUT_OF_RANGE "ERR value is out of range"

command_proc cmd_hset, cmd_hsetnx, cmd_hget, cmd_hmget, cmd_hmset, cmd_hgetall, cmd_hdel,
    cmd_hexists, cmd_hlen, cmd_hstrlen, cmd_hkeys, cmd_hvals, cmd_hincrby, cmd_hincrbyfloat,
    cmd_hrandfield, cmd_hscan;

/* ---- helpers ---- */

static struct store *hstore(struct client *c) { return c->srv->store; }

/* Looks key argument 1 up; replies WRONGTYPE and returns false when it holds another type.
 * *e is NULL (and *h NULL) when the key does not exist. */
static bool lookup_hash(struct client *c, unsigned flags, struct store_entry **e,
                        struct hash_value **h)
{
    *e = store_find(hstore(c), c->db, c->argv[1].ptr, c->argv[1].len, server_now_ms(c->srv),
                    flags);
    *h = NULL;
    if (!*e)
        return true;
    if ((*e)->type != STORE_HASH) {
        reply_error(c, ERR_WRONGTYPE);
        return false;
    }
    *h = store_value(*e);
    return true;
}

/* The hash to write into: the existing one, or a new empty one not yet in the store. */
static struct hash_value *hash_for_write(struct client *c, struct hash_value *h)
{
    if (h)
        return h;
    return hash_new(store_seed(c->srv->store));
}

/* After writing into h: adds it as key argument 1 when it is new, else re-charges it. */
static void hash_commit(struct client *c, struct store_entry *e, struct hash_value *h)
{
    if (e)
        store_value_changed(hstore(c), e);
    else if (hash_len(h) > 0)
        store_add_value(hstore(c), c->db, c->argv[1].ptr, c->argv[1].len, STORE_HASH, h,
                        server_now_ms(c->srv));
    else
        hash_free(h);
}

static void reply_field(struct client *c, const struct hash_field *f)
{
    reply_bulk(c, f->field, f->flen);
}

static void reply_value(struct client *c, const struct hash_field *f)
{
    reply_bulk(c, f->val, f->vlen);
}

/* A fresh xorshift state for one command's random picks: the clock, the client and the
 * server's command counter mixed (HRANDFIELD needs variety, not secrecy). */
static uint64_t random_state(const struct client *c)
{
    uint64_t x = (uint64_t)server_now_ms(c->srv) * 0x9E3779B97F4A7C15ull;
    x ^= (c->id + 1) * 0xBF58476D1CE4E5B9ull;
    x ^= (c->srv->stats.commands_processed + 1) * 0x94D049BB133111EBull;
    x ^= x >> 31;
    return x ? x : 1;
}

/* ---- HSET HMSET HSETNX ---- */

/* Redis's hsetCommand (HMSET replies +OK instead of the count of new fields). */
static void hset_generic(struct client *c, bool ok_reply)
{
    if (c->argc % 2 == 1) {
        reply_error_arity(c, c->cmd->name);
        return;
    }
    struct store_entry *e;
    struct hash_value *h;
    if (!lookup_hash(c, 0, &e, &h))
        return;
    h = hash_for_write(c, h);
    long long created = 0;
    for (size_t i = 2; i < c->argc; i += 2)
        created += hash_set(h, c->argv[i].ptr, c->argv[i].len, c->argv[i + 1].ptr,
                            c->argv[i + 1].len);
    hash_commit(c, e, h);
    if (ok_reply)
        reply_ok(c);
    else
        reply_int(c, created);
}

void cmd_hset(struct client *c) { hset_generic(c, false); }
void cmd_hmset(struct client *c) { hset_generic(c, true); }

void cmd_hsetnx(struct client *c)
{
    struct store_entry *e;
    struct hash_value *h;
    if (!lookup_hash(c, 0, &e, &h))
        return;
    if (h && hash_get(h, c->argv[2].ptr, c->argv[2].len, NULL)) {
        reply_int(c, 0);
        return;
    }
    h = hash_for_write(c, h);
    hash_set(h, c->argv[2].ptr, c->argv[2].len, c->argv[3].ptr, c->argv[3].len);
    hash_commit(c, e, h);
    reply_int(c, 1);
}

/* ---- reads of fields ---- */

void cmd_hget(struct client *c)
{
    struct store_entry *e;
    struct hash_value *h;
    if (!lookup_hash(c, STORE_READ, &e, &h))
        return;
    struct hash_field f;
    if (h && hash_get(h, c->argv[2].ptr, c->argv[2].len, &f))
        reply_value(c, &f);
    else
        reply_null(c);
}

void cmd_hmget(struct client *c)
{
    struct store_entry *e;
    struct hash_value *h;
    if (!lookup_hash(c, STORE_READ, &e, &h))
        return;
    reply_array(c, c->argc - 2);
    for (size_t i = 2; i < c->argc; i++) {
        struct hash_field f;
        if (h && hash_get(h, c->argv[i].ptr, c->argv[i].len, &f))
            reply_value(c, &f);
        else
            reply_null(c);
    }
}

void cmd_hexists(struct client *c)
{
    struct store_entry *e;
    struct hash_value *h;
    if (!lookup_hash(c, STORE_READ, &e, &h))
        return;
    reply_int(c, h && hash_get(h, c->argv[2].ptr, c->argv[2].len, NULL) ? 1 : 0);
}

void cmd_hlen(struct client *c)
{
    struct store_entry *e;
    struct hash_value *h;
    if (!lookup_hash(c, STORE_READ, &e, &h))
        return;
    reply_int(c, h ? (long long)hash_len(h) : 0);
}

void cmd_hstrlen(struct client *c)
{
    struct store_entry *e;
    struct hash_value *h;
    if (!lookup_hash(c, STORE_READ, &e, &h))
        return;
    struct hash_field f;
    bool found = h && hash_get(h, c->argv[2].ptr, c->argv[2].len, &f);
    reply_int(c, found ? (long long)f.vlen : 0);
}

/* ---- HDEL ---- */

void cmd_hdel(struct client *c)
{
    struct store_entry *e;
    struct hash_value *h;
    if (!lookup_hash(c, 0, &e, &h))
        return;
    long long deleted = 0;
    if (h) {
        for (size_t i = 2; i < c->argc && hash_len(h) > 0; i++)
            deleted += hash_delete(h, c->argv[i].ptr, c->argv[i].len);
        if (deleted)
            store_value_changed(hstore(c), e); /* deletes the key when now empty */
    }
    reply_int(c, deleted);
}

/* ---- HGETALL HKEYS HVALS ---- */

#define WANT_FIELDS 1u
#define WANT_VALUES 2u

/* Redis's genericHgetallCommand: a missing key is an empty map (HGETALL) or array. */
static void getall_generic(struct client *c, unsigned want)
{
    struct store_entry *e;
    struct hash_value *h;
    if (!lookup_hash(c, STORE_READ, &e, &h))
        return;
    size_t n = h ? hash_len(h) : 0;
    if (want == (WANT_FIELDS | WANT_VALUES))
        reply_map(c, n);
    else
        reply_array(c, n);
    if (!h)
        return;
    struct hash_iter it;
    struct hash_field f;
    hash_iter_init(h, &it);
    for (size_t i = 0; i < n && hash_iter_next(h, &it, &f); i++) {
        if (want & WANT_FIELDS)
            reply_field(c, &f);
        if (want & WANT_VALUES)
            reply_value(c, &f);
    }
}

void cmd_hgetall(struct client *c) { getall_generic(c, WANT_FIELDS | WANT_VALUES); }
void cmd_hkeys(struct client *c) { getall_generic(c, WANT_FIELDS); }
void cmd_hvals(struct client *c) { getall_generic(c, WANT_VALUES); }

/* ---- HINCRBY HINCRBYFLOAT ---- */

void cmd_hincrby(struct client *c)
{
    long long incr, value = 0;
    if (!arg_ll_or_reply(c, 3, &incr, NULL))
        return;
    struct store_entry *e;
    struct hash_value *h;
    if (!lookup_hash(c, 0, &e, &h))
        return;
    struct hash_field f;
    if (h && hash_get(h, c->argv[2].ptr, c->argv[2].len, &f) &&
        !num_parse_ll(f.val, f.vlen, &value)) {
        reply_error(c, ERR_HASH_NOT_INTEGER);
        return;
    }
    if ((incr < 0 && value < 0 && incr < LLONG_MIN - value) ||
        (incr > 0 && value > 0 && incr > LLONG_MAX - value)) {
        reply_error(c, ERR_OVERFLOW);
        return;
    }
    value += incr;
    char buf[NUM_LL_STR_MAX];
    size_t n = num_format_ll(buf, value);
    h = hash_for_write(c, h);
    hash_set(h, c->argv[2].ptr, c->argv[2].len, buf, n);
    hash_commit(c, e, h);
    reply_int(c, value);
}

void cmd_hincrbyfloat(struct client *c)
{
    long double incr, value = 0;
    if (!arg_ld_or_reply(c, 3, &incr))
        return;
    if (isnan(incr) || isinf(incr)) {
        reply_error(c, "ERR value is NaN or Infinity");
        return;
    }
    struct store_entry *e;
    struct hash_value *h;
    if (!lookup_hash(c, 0, &e, &h))
        return;
    struct hash_field f;
    if (h && hash_get(h, c->argv[2].ptr, c->argv[2].len, &f) &&
        !num_parse_ld(f.val, f.vlen, &value)) {
        reply_error(c, ERR_HASH_NOT_FLOAT);
        return;
    }
    value += incr;
    if (isnan(value) || isinf(value)) {
        reply_error(c, "ERR increment would produce NaN or Infinity");
        return;
    }
    char buf[NUM_LD_STR_MAX];
    size_t n = num_format_ld(buf, sizeof(buf), value);
    h = hash_for_write(c, h);
    hash_set(h, c->argv[2].ptr, c->argv[2].len, buf, n);
    hash_commit(c, e, h);
    reply_bulk(c, buf, n);
}

/* ---- HRANDFIELD ---- */

/* True while the client's output is under its limit (a huge negative count stops there; the
 * dispatcher then closes the client, as Redis's CLIENT_CLOSE_ASAP break does). */
static bool output_room(struct client *c)
{
    return client_output_bytes(c) <= (size_t)c->srv->cfg.client_output_buffer_limit;
}

static void reply_pick(struct client *c, const struct hash_field *f, bool withvalues)
{
    if (withvalues && c->resp >= 3)
        reply_array(c, 2);
    reply_field(c, f);
    if (withvalues)
        reply_value(c, f);
}

/* Redis's hrandfieldWithCountCommand. */
static void hrandfield_count(struct client *c, long long l, bool withvalues)
{
    struct store_entry *e;
    struct hash_value *h;
    if (!lookup_hash(c, STORE_READ, &e, &h))
        return;
    if (!h) {
        reply_array(c, 0);
        return;
    }
    bool uniq = l >= 0;
    unsigned long long count = uniq ? (unsigned long long)l : (unsigned long long)-l;
    if (count == 0) {
        reply_array(c, 0);
        return;
    }
    bool flat_pairs = withvalues && c->resp < 3;
    uint64_t rng = random_state(c);
    if (!uniq || count == 1) {
        /* count draws with repetition, in random order */
        reply_array(c, flat_pairs ? count * 2 : count);
        struct hash_field f;
        for (unsigned long long i = 0; i < count && output_room(c); i++)
            if (hash_random(h, &rng, &f))
                reply_pick(c, &f, withvalues);
        return;
    }
    size_t size = hash_len(h);
    size_t n = count < size ? (size_t)count : size;
    reply_array(c, flat_pairs ? n * 2 : n);
    struct hash_field *picks = xmalloc(n * sizeof(*picks));
    size_t got = hash_random_fields(h, &rng, n, picks);
    for (size_t i = 0; i < got; i++)
        reply_pick(c, &picks[i], withvalues);
    free(picks);
}

void cmd_hrandfield(struct client *c)
{
    if (c->argc >= 3) {
        long long l;
        if (!arg_ll_or_reply(c, 2, &l, NULL))
            return;
        if (l < -LLONG_MAX) {
            reply_error(c, "ERR value is out of range, value must between -9223372036854775807 "
                           "and 9223372036854775807");
            return;
        }
        bool withvalues = false;
        if (c->argc > 4 || (c->argc == 4 && !arg_is(&c->argv[3], "withvalues"))) {
            reply_error(c, ERR_SYNTAX);
            return;
        }
        if (c->argc == 4) {
            withvalues = true;
            if (l < -LLONG_MAX / 2 || l > LLONG_MAX / 2) {
                reply_error(c, ERR_OUT_OF_RANGE);
                return;
            }
        }
        hrandfield_count(c, l, withvalues);
        return;
    }
    struct store_entry *e;
    struct hash_value *h;
    if (!lookup_hash(c, STORE_READ, &e, &h))
        return;
    if (!h) {
        reply_null(c);
        return;
    }
    uint64_t rng = random_state(c);
    struct hash_field f;
    if (hash_random(h, &rng, &f))
        reply_field(c, &f);
    else
        reply_null(c); /* not reached: a stored hash is never empty */
}

/* ---- HSCAN ---- */

/* The fields one HSCAN call collected: found counts the field and value of each entry seen (the
 * unit COUNT bounds, as Redis's list of keys and values); matched fields are kept as views
 * (the hash does not change while the reply is built). */
struct hscan_walk {
    const struct resp_arg *pat; /* NULL: every field */
    size_t found, matched;
    struct strbuf picks;
};

/* stringmatchlen: an empty field matches only the empty pattern. */
static bool field_matches(const struct resp_arg *pat, const struct hash_field *f)
{
    if (f->flen == 0)
        return pat->len == 0;
    return glob_match(pat->ptr, pat->len, f->field, f->flen, false);
}

static void hscan_walk_cb(void *ctx, const struct hash_field *f)
{
    struct hscan_walk *w = ctx;
    w->found++; /* COUNT counts fields, as Redis 7.0 (its sampled counter) */
    if (w->pat && !field_matches(w->pat, f))
        return;
    strbuf_append(&w->picks, f, sizeof(*f));
    w->matched++;
}

/* HSCAN key cursor [MATCH pattern] [COUNT count], as Redis 7.0's hscanCommand and
 * scanGenericCommand: the cursor is parsed first, then the key (missing: an empty scan, whatever
 * the options), then the options (TYPE is a syntax error here). A compact hash is returned
 * whole with cursor 0 (a listpack in Redis); a larger one steps the dict until count elements
 * (fields and values) were seen or count*10 steps were made. Reply: [cursor, [f, v, ...]]. */
void cmd_hscan(struct client *c)
{
    uint64_t cursor;
    if (!arg_cursor_or_reply(c, 2, &cursor))
        return;
    struct store_entry *e;
    struct hash_value *h;
    if (!lookup_hash(c, STORE_READ, &e, &h))
        return;
    if (!h) {
        reply_raw(c, EMPTY_SCAN, strlen(EMPTY_SCAN));
        return;
    }
    long long count = SCAN_COUNT_DEFAULT;
    const struct resp_arg *pat = NULL;
    if (!arg_scan_options_or_reply(c, 3, &count, &pat))
        return;

    struct hscan_walk w = { pat, 0, 0, { NULL, 0, 0 } };
    if (hash_is_compact(h)) {
        cursor = hash_scan(h, 0, hscan_walk_cb, &w); /* the whole hash; 0 */
    } else {
        long long iterations = scan_max_steps(count);
        do {
            cursor = hash_scan(h, cursor, hscan_walk_cb, &w);
        } while (cursor != 0 && iterations-- && w.found < (unsigned long long)count);
    }

    char cbuf[NUM_LL_STR_MAX];
    reply_array(c, 2);
    reply_bulk(c, cbuf, num_format_ull(cbuf, cursor));
    reply_array(c, w.matched * 2);
    for (size_t i = 0; i < w.matched; i++) {
        struct hash_field f;
        memcpy(&f, w.picks.data + i * sizeof(f), sizeof(f));
        reply_field(c, &f);
        reply_value(c, &f);
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

const struct command hash_commands[] = {
    { "hset", cmd_hset, -4, W | M | F | K, 1, 1, 1, "hash", "Creates or modifies the value of a field in a hash.", NULL },
    { "hsetnx", cmd_hsetnx, 4, W | M | F | K, 1, 1, 1, "hash", "Sets the value of a field in a hash only when the field doesn't exist.", NULL },
    { "hget", cmd_hget, 3, R | C | F | K, 1, 1, 1, "hash", "Returns the value of a field in a hash.", NULL },
    { "hmset", cmd_hmset, -4, W | M | F | K, 1, 1, 1, "hash", "Sets the values of multiple fields.", NULL },
    { "hmget", cmd_hmget, -3, R | C | F | K, 1, 1, 1, "hash", "Returns the values of all fields in a hash.", NULL },
    { "hincrby", cmd_hincrby, 4, W | M | F | K, 1, 1, 1, "hash", "Increments the integer value of a field in a hash by a number. Uses 0 as initial value if the field doesn't exist.", NULL },
    { "hincrbyfloat", cmd_hincrbyfloat, 4, W | M | F | K, 1, 1, 1, "hash", "Increments the floating point value of a field by a number. Uses 0 as initial value if the field doesn't exist.", NULL },
    { "hdel", cmd_hdel, -3, W | F | K, 1, 1, 1, "hash", "Deletes one or more fields and their values from a hash. Deletes the hash if no fields remain.", NULL },
    { "hlen", cmd_hlen, 2, R | C | F | K, 1, 1, 1, "hash", "Returns the number of fields in a hash.", NULL },
    { "hstrlen", cmd_hstrlen, 3, R | F | K, 1, 1, 1, "hash", "Returns the length of the value of a field.", NULL },
    { "hkeys", cmd_hkeys, 2, R | K, 1, 1, 1, "hash", "Returns all fields in a hash.", NULL },
    { "hvals", cmd_hvals, 2, R | K, 1, 1, 1, "hash", "Returns all values in a hash.", NULL },
    { "hgetall", cmd_hgetall, 2, R | C | K, 1, 1, 1, "hash", "Returns all fields and values in a hash.", NULL },
    { "hexists", cmd_hexists, 3, R | C | F | K, 1, 1, 1, "hash", "Determines whether a field exists in a hash.", NULL },
    { "hrandfield", cmd_hrandfield, -2, R | K, 1, 1, 1, "hash", "Returns one or more random fields from a hash.", NULL },
    { "hscan", cmd_hscan, -3, R | K, 1, 1, 1, "hash", "Iterates over fields and values of a hash.", NULL },
    { NULL, NULL, 0, 0, 0, 0, 0, NULL, NULL, NULL },
};
