/* Transactions: the MULTI queue of a client and the server's WATCH registry; see multi.h.
 *
 * Invariants:
 *  - c->mstate != NULL exactly when c has CLIENT_MULTI; a queued command owns one allocation
 *    holding its argument vector and the argument bytes (each followed by a NUL);
 *  - every watch record is on its client's list (c->watched) and on its key's watcher list;
 *    a key is in the table exactly while it has a watcher, and the table is the store's touch
 *    hook exactly while it holds a key;
 *  - a client watches a (db, key) at most once;
 *  - the hook only sets flags on clients: it never frees or changes the store. */
#include "proxy/multi.h"

#include "cache/siphash.h"
#include "cache/store.h"
#include "conf/xmalloc.h"
#include "proxy/client.h"
#include "proxy/dispatch.h"
#include "proxy/reply.h"
#include "proxy/server.h"

#include <malloc.h>
#include <stdlib.h>
#include <string.h>

#define WATCH_TABLE_MIN 16 /* buckets; the table doubles above one key per bucket */
#define MULTI_QUEUE_MIN 8

struct multi_cmd {
    const struct command *cmd;   /* the row that runs (a subcommand's own row) */
    size_t argc;
    struct resp_arg argv[];      /* then the argument bytes */
};

struct multi_state {
    struct multi_cmd **cmds;
    size_t count, cap;
    bool denyoom;                /* a queued row is CMD_DENYOOM */
    size_t bytes;                /* allocated for this state and its commands */
};

struct watch_key {
    struct watch_key *hnext;     /* bucket chain */
    struct watch_rec *watchers;  /* doubly linked through kprev/knext */
    uint64_t hash;
    int db;
    size_t klen;
    char key[];
};

struct watch_rec {
    struct watch_rec *kprev, *knext; /* the key's watchers */
    struct watch_rec *cnext;         /* the client's watched keys */
    struct client *c;
    struct watch_key *wk;
    int64_t expire_ms;               /* the key's TTL when watched (0: none) */
    bool existed;                    /* the key existed (live) when watched */
};

struct multi_watches {
    struct store *store;
    struct watch_key **b;
    size_t size, used;               /* buckets, keys */
    size_t bytes;
    uint8_t seed[16];
};

static size_t alloc_bytes(const void *p)
{
    return malloc_usable_size((void *)p) + sizeof(size_t);
}

/* ---- the watch table ---- */

static uint64_t watch_hash(const struct multi_watches *w, int db, const char *key, size_t klen)
{
    return siphash13(key, klen, w->seed) ^ ((uint64_t)(unsigned)db * 0x9E3779B97F4A7C15ull);
}

struct multi_watches *multi_watches_create(struct store *s, const uint8_t seed[16])
{
    struct multi_watches *w = xcalloc(1, sizeof(*w));
    w->store = s;
    memcpy(w->seed, seed, sizeof(w->seed));
    w->bytes = alloc_bytes(w);
    return w;
}

void multi_watches_destroy(struct multi_watches *w)
{
    if (!w)
        return;
    /* Clients were freed first, so the table is empty; free defensively anyway. */
    for (size_t i = 0; i < w->size; i++) {
        struct watch_key *k = w->b[i];
        while (k) {
            struct watch_key *next = k->hnext;
            free(k);
            k = next;
        }
    }
    if (w->store)
        store_set_touch_hook(w->store, NULL, NULL);
    free(w->b);
    free(w);
}

size_t multi_watches_bytes(const struct multi_watches *w)
{
    return w ? w->bytes : 0;
}

size_t multi_watches_keys(const struct multi_watches *w)
{
    return w ? w->used : 0;
}

static void watch_table_resize(struct multi_watches *w, size_t size)
{
    struct watch_key **nb = xcalloc(size, sizeof(*nb));
    for (size_t i = 0; i < w->size; i++) {
        struct watch_key *k = w->b[i];
        while (k) {
            struct watch_key *next = k->hnext;
            size_t idx = k->hash & (size - 1);
            k->hnext = nb[idx];
            nb[idx] = k;
            k = next;
        }
    }
    if (w->b)
        w->bytes -= alloc_bytes(w->b);
    free(w->b);
    w->b = nb;
    w->size = size;
    w->bytes += alloc_bytes(nb);
}

static struct watch_key *watch_table_find(const struct multi_watches *w, int db, const char *key,
                                          size_t klen, uint64_t h)
{
    if (!w->size)
        return NULL;
    for (struct watch_key *k = w->b[h & (w->size - 1)]; k; k = k->hnext)
        if (k->hash == h && k->db == db && k->klen == klen && memcmp(k->key, key, klen) == 0)
            return k;
    return NULL;
}

static void multi_touch_cb(void *ctx, int db, const char *key, size_t klen);

static struct watch_key *watch_table_add(struct multi_watches *w, int db, const char *key,
                                         size_t klen, uint64_t h)
{
    if (w->used + 1 > w->size)
        watch_table_resize(w, w->size ? w->size * 2 : WATCH_TABLE_MIN);
    struct watch_key *k = xmalloc(sizeof(*k) + klen);
    k->watchers = NULL;
    k->hash = h;
    k->db = db;
    k->klen = klen;
    memcpy(k->key, key, klen);
    size_t idx = h & (w->size - 1);
    k->hnext = w->b[idx];
    w->b[idx] = k;
    if (w->used++ == 0)
        store_set_touch_hook(w->store, multi_touch_cb, w);
    w->bytes += alloc_bytes(k);
    return k;
}

static void watch_table_remove(struct multi_watches *w, struct watch_key *k)
{
    struct watch_key **pp = &w->b[k->hash & (w->size - 1)];
    while (*pp != k)
        pp = &(*pp)->hnext;
    *pp = k->hnext;
    w->bytes -= alloc_bytes(k);
    free(k);
    if (--w->used == 0)
        store_set_touch_hook(w->store, NULL, NULL);
    if (w->size > WATCH_TABLE_MIN && w->used < w->size / 8)
        watch_table_resize(w, w->size / 2);
}

static void watchers_mark_dirty(struct watch_key *k, bool only_existing)
{
    for (struct watch_rec *r = k->watchers; r; r = r->knext)
        if (!only_existing || r->existed)
            r->c->flags |= CLIENT_DIRTY_CAS;
}

/* The store's touch hook: a key changed (or db was flushed, key NULL; db < 0: all). A flush
 * dirties only the watchers of keys that existed, as Redis 7.0's touchAllWatchedKeysInDb: a
 * watcher that is not dirty yet saw no touch since WATCH, so existence then is existence now
 * (a key that expired by time alone is still in the store and counts as existing). */
static void multi_touch_cb(void *ctx, int db, const char *key, size_t klen)
{
    struct multi_watches *w = ctx;
    if (key) {
        struct watch_key *k = watch_table_find(w, db, key, klen, watch_hash(w, db, key, klen));
        if (k)
            watchers_mark_dirty(k, false);
        return;
    }
    for (size_t i = 0; i < w->size; i++)
        for (struct watch_key *k = w->b[i]; k; k = k->hnext)
            if (db < 0 || k->db == db)
                watchers_mark_dirty(k, true);
}

/* ---- per-client watches ---- */

void multi_watch_key(struct client *c, const char *key, size_t klen)
{
    struct server *srv = c->srv;
    struct multi_watches *w = srv->watches;
    uint64_t h = watch_hash(w, c->db, key, klen);
    struct watch_key *k = watch_table_find(w, c->db, key, klen, h);
    if (k)
        for (struct watch_rec *r = c->watched; r; r = r->cnext)
            if (r->wk == k)
                return; /* already watched */
    /* Look before registering: a key found expired is deleted now (a touch for the others),
     * so it counts as absent, as Redis's "expired when watched" keys do. */
    struct store_entry *e = store_find(srv->store, c->db, key, klen, server_now_ms(srv),
                                       STORE_NOTOUCH);
    struct watch_rec *r = xmalloc(sizeof(*r));
    r->existed = e != NULL;
    r->expire_ms = e ? e->expire_ms : 0;
    if (!k) /* (the hook only sets flags: the table is as it was before the lookup) */
        k = watch_table_add(w, c->db, key, klen, h);
    r->c = c;
    r->wk = k;
    r->kprev = NULL;
    r->knext = k->watchers;
    if (k->watchers)
        k->watchers->kprev = r;
    k->watchers = r;
    r->cnext = c->watched;
    c->watched = r;
    w->bytes += alloc_bytes(r);
}

void multi_unwatch_all(struct client *c)
{
    struct multi_watches *w = c->srv->watches;
    struct watch_rec *r = c->watched;
    c->watched = NULL;
    while (r) {
        struct watch_rec *next = r->cnext;
        struct watch_key *k = r->wk;
        if (r->kprev)
            r->kprev->knext = r->knext;
        else
            k->watchers = r->knext;
        if (r->knext)
            r->knext->kprev = r->kprev;
        w->bytes -= alloc_bytes(r);
        free(r);
        if (!k->watchers)
            watch_table_remove(w, k);
        r = next;
    }
}

void multi_check_expired(struct client *c, int64_t now_ms)
{
    for (const struct watch_rec *r = c->watched; r; r = r->cnext)
        if (r->existed && r->expire_ms != 0 && now_ms > r->expire_ms)
            c->flags |= CLIENT_DIRTY_CAS;
}

size_t multi_watched_count(const struct client *c)
{
    size_t n = 0;
    for (const struct watch_rec *r = c->watched; r; r = r->cnext)
        n++;
    return n;
}

/* ---- the queue ---- */

void multi_begin(struct client *c)
{
    struct multi_state *ms = xcalloc(1, sizeof(*ms));
    ms->bytes = alloc_bytes(ms);
    c->mstate = ms;
    c->flags |= CLIENT_MULTI;
}

void multi_queue(struct client *c, const struct command *cmd)
{
    struct multi_state *ms = c->mstate;
    size_t data = 0;
    for (size_t i = 0; i < c->argc; i++)
        data += c->argv[i].len + 1;
    struct multi_cmd *mc = xmalloc(sizeof(*mc) + c->argc * sizeof(struct resp_arg) + data);
    mc->cmd = cmd;
    mc->argc = c->argc;
    char *p = (char *)(mc->argv + c->argc);
    for (size_t i = 0; i < c->argc; i++) {
        memcpy(p, c->argv[i].ptr, c->argv[i].len);
        p[c->argv[i].len] = '\0';
        mc->argv[i].ptr = p;
        mc->argv[i].len = c->argv[i].len;
        p += c->argv[i].len + 1;
    }
    if (ms->count == ms->cap) {
        if (ms->cmds)
            ms->bytes -= alloc_bytes(ms->cmds);
        ms->cap = ms->cap ? ms->cap * 2 : MULTI_QUEUE_MIN;
        ms->cmds = xrealloc(ms->cmds, ms->cap * sizeof(*ms->cmds));
        ms->bytes += alloc_bytes(ms->cmds);
    }
    ms->cmds[ms->count++] = mc;
    ms->bytes += alloc_bytes(mc);
    if (cmd->flags & CMD_DENYOOM)
        ms->denyoom = true;
}

bool multi_queued_denyoom(const struct client *c)
{
    return c->mstate && c->mstate->denyoom;
}

void multi_flag_error(struct client *c)
{
    if (c->flags & CLIENT_MULTI)
        c->flags |= CLIENT_DIRTY_EXEC;
}

static void multi_state_free(struct client *c)
{
    struct multi_state *ms = c->mstate;
    c->mstate = NULL;
    c->flags &= ~(CLIENT_MULTI | CLIENT_DIRTY_CAS | CLIENT_DIRTY_EXEC);
    if (!ms)
        return;
    for (size_t i = 0; i < ms->count; i++)
        free(ms->cmds[i]);
    free(ms->cmds);
    free(ms);
}

void multi_discard(struct client *c)
{
    multi_state_free(c);
    multi_unwatch_all(c);
}

void multi_abort_exec(struct client *c, const char *reason)
{
    multi_discard(c);
    if (strncmp(reason, "ERR ", 4) == 0)
        reason += 4;
    reply_errorf(c, "EXECABORT Transaction discarded because of: %s", reason);
}

void multi_exec_queued(struct client *c)
{
    struct multi_state *ms = c->mstate;
    multi_unwatch_all(c); /* our own writes below must not mark us dirty */
    const struct command *exec_cmd = c->cmd;
    struct resp_arg *argv = c->argv;
    size_t argc = c->argc;
    reply_array(c, ms->count);
    /* CLIENT_MULTI stays set while the queue runs (blocking commands do not block here). */
    for (size_t i = 0; i < ms->count; i++) {
        struct multi_cmd *mc = ms->cmds[i];
        c->argv = mc->argv;
        c->argc = mc->argc;
        dispatch_call(c, mc->cmd);
    }
    c->argv = argv;
    c->argc = argc;
    c->cmd = exec_cmd;
    multi_state_free(c);
}

void multi_client_free(struct client *c)
{
    multi_state_free(c);
    multi_unwatch_all(c);
}

long multi_queued_count(const struct client *c)
{
    return c->mstate ? (long)c->mstate->count : -1;
}

size_t multi_client_bytes(const struct client *c)
{
    return c->mstate ? c->mstate->bytes : 0;
}
