/* The near-cache (see nearcache.h): lookups, fills with single flight, guards and their index,
 * storing with min(max_ttl_ms, PTTL), drops and flushes.
 *
 * Invariants:
 *  - a guard is in nc->all from creation until its last upstream reply (pending == 0), and in
 *    the index while it can still be poisoned and is not poisoned;
 *  - a guard's waiters are forwards of clients reading the same request on the same link; they
 *    are all completed by the guard's first reply (joinable is false from then on);
 *  - every entry the near-cache stores is a STORE_REPLIES key of database 0. */
#include "proxy/nearcache.h"

#include "cache/replyset.h"
#include "cache/siphash.h"
#include "cache/store.h"
#include "conf/xmalloc.h"
#include "proxy/client.h"
#include "proxy/forward.h"
#include "proxy/numbers.h"
#include "proxy/reply.h"
#include "proxy/server.h"
#include "proxy/upstream_wait.h"

#include <stdlib.h>
#include <string.h>

#define NC_DB 0
#define NC_GROUP_STACK 32      /* keys of a grouped read formatted without heap arrays */

#define NC_INDEX_MIN 64          /* buckets of the guard index when first used */
#define NC_GUARD_INLINE 96       /* key + signature bytes of a pooled guard */
#define NC_GUARD_POOL_MAX 1024   /* pooled guards kept for reuse */
#define NC_GUARD_REPLY_KEEP 512  /* a pooled guard keeps its reply buffer up to this size */

struct nc_guard {
    struct nearcache *nc;
    struct nc_guard *hnext;          /* the next guard of the same index bucket (or the pool) */
    struct nc_guard *aprev, *anext;  /* nc->all */
    size_t link_idx;
    uint64_t epoch;                  /* when it started */
    uint64_t hash;                   /* of the key, with the store's seed */
    bool indexed, poisoned, joinable, confirmed;
    bool write_through;              /* its reply is a write's value */
    bool stored;                     /* guard_store kept its reply */
    int pending;                     /* upstream replies still owed to it */
    char *key, *sig;                 /* in data[] */
    size_t klen, siglen;
    size_t cap;                      /* bytes of data[] */
    struct strbuf reply;             /* the bytes to store */
    struct fwd *waiters, *wtail;
    char data[];                     /* the key, then the signature */
};

/* ---- the guard index: a hash table of guards by key (any link), intrusive through hnext ----
 * One hash of the key serves every link (a drop poisons the key's guards of all links) and a
 * guard keeps its hash, so indexing and unindexing it hash nothing. A bucket's chain holds the
 * newest guard first, so a key's joinable guard is its newest. The bucket array doubles at two
 * indexed guards per bucket and never shrinks (its size follows the most guards ever in
 * flight at once: 8 bytes per two of them). */

static uint64_t nc_hash(const struct nearcache *nc, const char *key, size_t klen)
{
    return siphash13(key, klen, store_seed(nc->srv->store));
}

static bool guard_is(const struct nc_guard *g, uint64_t hash, const char *key, size_t klen)
{
    return g->hash == hash && g->klen == klen && memcmp(g->key, key, klen) == 0;
}

static struct nc_guard **index_bucket(const struct nearcache *nc, uint64_t hash)
{
    return &nc->index[hash & (nc->index_size - 1)];
}

static void index_grow(struct nearcache *nc)
{
    size_t size = nc->index_size ? nc->index_size * 2 : NC_INDEX_MIN;
    struct nc_guard **b = xcalloc(size, sizeof(*b));
    for (size_t i = 0; i < nc->index_size; i++) {
        /* oldest last in the old chain: walk it reversed to keep newest-first per key */
        struct nc_guard *rev = NULL;
        for (struct nc_guard *g = nc->index[i], *next; g; g = next) {
            next = g->hnext;
            g->hnext = rev;
            rev = g;
        }
        for (struct nc_guard *g = rev, *next; g; g = next) {
            next = g->hnext;
            struct nc_guard **head = &b[g->hash & (size - 1)];
            g->hnext = *head;
            *head = g;
        }
    }
    free(nc->index);
    nc->index = b;
    nc->index_size = size;
}

static void guard_index(struct nc_guard *g)
{
    struct nearcache *nc = g->nc;
    if (nc->nindexed >= 2 * nc->index_size)
        index_grow(nc);
    struct nc_guard **head = index_bucket(nc, g->hash);
    g->hnext = *head;
    *head = g;
    g->indexed = true;
    nc->nindexed++;
}

static void guard_unindex(struct nc_guard *g)
{
    if (!g->indexed)
        return;
    struct nearcache *nc = g->nc;
    for (struct nc_guard **pp = index_bucket(nc, g->hash); *pp; pp = &(*pp)->hnext)
        if (*pp == g) {
            *pp = g->hnext;
            break;
        }
    g->hnext = NULL;
    g->indexed = false;
    nc->nindexed--;
}

/* ---- guards ---- */

/* A guard with room for need bytes of key and signature: from the pool when it fits. */
static struct nc_guard *guard_alloc(struct nearcache *nc, size_t need)
{
    struct nc_guard *g = nc->free_guards;
    if (need <= NC_GUARD_INLINE && g) {
        nc->free_guards = g->hnext;
        nc->nfree_guards--;
        struct strbuf reply = g->reply; /* its buffer is kept, emptied */
        memset(g, 0, sizeof(*g));
        g->reply = reply;
        g->reply.len = 0;
        g->cap = NC_GUARD_INLINE;
        return g;
    }
    size_t cap = need <= NC_GUARD_INLINE ? NC_GUARD_INLINE : need;
    g = xcalloc(1, sizeof(*g) + cap);
    g->cap = cap;
    return g;
}

static void guard_release(struct nearcache *nc, struct nc_guard *g)
{
    if (g->cap == NC_GUARD_INLINE && nc->nfree_guards < NC_GUARD_POOL_MAX) {
        if (g->reply.cap > NC_GUARD_REPLY_KEEP)
            strbuf_free(&g->reply);
        g->hnext = nc->free_guards;
        nc->free_guards = g;
        nc->nfree_guards++;
        return;
    }
    strbuf_free(&g->reply);
    free(g);
}

static struct nc_guard *guard_new(struct nearcache *nc, size_t idx, const char *key, size_t klen,
                                  uint64_t hash, const char *sig, size_t siglen, bool joinable)
{
    struct nc_guard *g = guard_alloc(nc, klen + siglen);
    g->nc = nc;
    g->link_idx = idx;
    g->epoch = nc->epoch;
    g->hash = hash;
    g->joinable = joinable;
    g->key = g->data;
    memcpy(g->key, key, klen);
    g->klen = klen;
    g->sig = g->data + klen;
    memcpy(g->sig, sig, siglen);
    g->siglen = siglen;
    g->anext = nc->all;
    if (nc->all)
        nc->all->aprev = g;
    nc->all = g;
    guard_index(g);
    return g;
}

static void guard_free(struct nc_guard *g)
{
    struct nearcache *nc = g->nc;
    guard_unindex(g);
    if (g->aprev)
        g->aprev->anext = g->anext;
    else
        nc->all = g->anext;
    if (g->anext)
        g->anext->aprev = g->aprev;
    struct fwd *w = g->waiters;
    while (w) { /* only at shutdown: waiters are completed by the first reply */
        struct fwd *next = w->wnext;
        fwd_complete_bytes(w, "-ERR upstream unavailable: shutting down\r\n", 42);
        w = next;
    }
    guard_release(nc, g);
}

static void guard_poison(struct nc_guard *g)
{
    g->poisoned = true;
    g->joinable = false;
    guard_unindex(g);
}

static void guard_add_waiter(struct nc_guard *g, struct fwd *f)
{
    if (g->wtail)
        g->wtail->wnext = f;
    else
        g->waiters = f;
    g->wtail = f;
}

/* Gives the first reply (or failure) to every waiter. */
static void guard_deliver(struct nc_guard *g, const char *p, size_t n)
{
    struct fwd *w = g->waiters;
    g->waiters = g->wtail = NULL;
    g->joinable = false;
    while (w) {
        struct fwd *next = w->wnext;
        w->wnext = NULL;
        fwd_complete_bytes(w, p, n);
        w = next;
    }
}

static long long nc_ttl_for(const struct nearcache *nc, long long pttl)
{
    const struct config *cfg = &nc->srv->cfg;
    long long cap = cfg->max_ttl_ms;
    if (pttl == -2) /* the key does not exist: a negative entry (0 = not cached) */
        return cfg->negative_ttl_ms < cap ? cfg->negative_ttl_ms : cap;
    if (pttl < 0)
        return cap;
    return pttl < cap ? pttl : cap;
}

/* Stores g's reply for its key with the TTL the PTTL reply implies, when nothing made it
 * untrustworthy since the fill started. */
static void guard_store(struct nc_guard *g, long long pttl)
{
    struct nearcache *nc = g->nc;
    struct server *srv = nc->srv;
    if (!g->confirmed || g->reply.len == 0 || g->reply.data[0] == '-')
        return; /* not a value: an error reply, a failed write, nothing to store */
    if (g->poisoned || g->epoch != nc->epoch || nc->links[g->link_idx].armed_epoch != nc->epoch) {
        nc->stats.fills_discarded++;
        return;
    }
    long long ttl = nc_ttl_for(nc, pttl);
    if (ttl <= 0)
        return;
    int64_t now = server_now_ms(srv);
    if (store_over_budget(srv->store) && store_evict(srv->store, now) < 0)
        return; /* noeviction and full: serve from the upstream */
    int64_t fresh_until = now + ttl;
    struct store_entry *e = store_find(srv->store, NC_DB, g->key, g->klen, now, STORE_NOTOUCH);
    struct replyset *rs = NULL;
    if (e && e->type == STORE_REPLIES) {
        rs = store_value(e);
        if (rs->fresh_until_ms < now) { /* only stale replies there: start over */
            store_delete_entry(srv->store, e);
            e = NULL;
        }
    } else if (e) {
        store_delete_entry(srv->store, e);
        e = NULL;
    }
    if (!e) {
        rs = replyset_create_sized(g->siglen, g->reply.len); /* the reply inline with it */
        rs->fresh_until_ms = fresh_until;
        e = store_add_value(srv->store, NC_DB, g->key, g->klen, STORE_REPLIES, rs, now);
    } else if (replyset_withheld(rs)) {
        /* A write kept the entry for this (nearcache_withhold_key): no reply of it is left to
         * keep honest, so the TTL is this reply's; it takes the room the placeholder held. */
        replyset_clear(rs);
        rs->fresh_until_ms = fresh_until;
    } else if (fresh_until < rs->fresh_until_ms) {
        rs->fresh_until_ms = fresh_until; /* one TTL per key: the shortest keeps every reply honest */
    }
    replyset_put(rs, g->sig, g->siglen, g->reply.data, g->reply.len);
    g->stored = true;
    e = store_value_changed(srv->store, e);
    if (e)
        store_set_expire(srv->store, e, rs->fresh_until_ms + srv->cfg.serve_stale_ms);
    if (g->write_through)
        nc->stats.write_throughs++;
    else
        nc->stats.fills++;
}

/* Deletes key's entry when a write left it withheld (nothing servable): a write-through that
 * ends without storing must not leave a placeholder behind. */
static void nc_delete_withheld(struct nearcache *nc, const char *key, size_t klen)
{
    struct store *st = nc->srv->store;
    struct store_entry *e = store_find(st, NC_DB, key, klen, server_now_ms(nc->srv),
                                       STORE_NOTOUCH);
    if (e && e->type == STORE_REPLIES && replyset_withheld(store_value(e)))
        store_delete_entry(st, e);
}

static void guard_settle(struct nc_guard *g)
{
    if (--g->pending > 0)
        return;
    if (g->write_through && !g->stored)
        nc_delete_withheld(g->nc, g->key, g->klen);
    guard_free(g);
}

static void guard_cmd_cb(void *owner, const struct upstream_reply *r)
{
    struct nc_guard *g = owner;
    struct strbuf tmp = { 0 };
    if (r->status == UPSTREAM_OK) {
        size_t n = upstream_value_encoded_len(r->value);
        strbuf_reserve(&g->reply, n);
        g->reply.len =
            (size_t)(upstream_value_encode(r->value, g->reply.data + g->reply.len) - g->reply.data);
        g->confirmed = true;
        guard_deliver(g, g->reply.data, g->reply.len);
    } else {
        fwd_format_failure(&tmp, r);
        guard_deliver(g, tmp.data, tmp.len);
        strbuf_free(&tmp);
    }
    guard_settle(g);
}

static void guard_pttl_cb(void *owner, const struct upstream_reply *r)
{
    struct nc_guard *g = owner;
    if (r->status == UPSTREAM_OK && upstream_value_type(r->value) == UPSTREAM_VALUE_INTEGER)
        guard_store(g, upstream_value_integer(r->value));
    guard_settle(g);
}

static bool guard_send_pttl(struct nc_guard *g)
{
    const char *argv[2] = { "PTTL", g->key };
    size_t lens[2] = { 4, g->klen };
    struct upstream_link *link = g->nc->links[g->link_idx].link;
    if (!upstream_link_send_argv(link, 2, argv, lens, guard_pttl_cb, g))
        return false;
    g->pending++;
    return true;
}

/* Guards whose keys one MGET re-reads (MSET's write-through: MSET leaves its keys without a
 * TTL, so one read of all of them is all storing needs). In nc->groups until its reply. */
struct nc_guard_group {
    struct nc_guard_group *prev, *next;
    struct nearcache *nc;
    size_t n;
    struct nc_guard *g[];
};

static void group_unlink(struct nc_guard_group *grp)
{
    if (grp->prev)
        grp->prev->next = grp->next;
    else
        grp->nc->groups = grp->next;
    if (grp->next)
        grp->next->prev = grp->prev;
}

static void guard_group_cb(void *owner, const struct upstream_reply *r)
{
    struct nc_guard_group *grp = owner;
    /* Each key's element is what the upstream holds now (tracked from this read on): stored
     * with no TTL, as MSET left it; a key gone since (nil) stores nothing. */
    bool ok = r->status == UPSTREAM_OK &&
              upstream_value_type(r->value) == UPSTREAM_VALUE_ARRAY &&
              upstream_value_count(r->value) == grp->n;
    for (size_t i = 0; i < grp->n; i++) {
        const struct upstream_value *v = ok ? upstream_value_at(r->value, i) : NULL;
        if (v && upstream_value_type(v) == UPSTREAM_VALUE_BULK) {
            struct nc_guard *g = grp->g[i];
            g->reply.len = 0;
            strbuf_reserve(&g->reply, upstream_value_encoded_len(v));
            g->reply.len = (size_t)(upstream_value_encode(v, g->reply.data) - g->reply.data);
            g->confirmed = true;
            guard_store(g, -1);
        }
        guard_settle(grp->g[i]);
    }
    group_unlink(grp);
    free(grp);
}

size_t nearcache_guard_group(struct nearcache *nc, size_t idx, const char *const *keys,
                             const size_t *klens, size_t n, const char *sig, size_t siglen,
                             struct nc_guard **out)
{
    struct nc_guard_group *grp = xcalloc(1, sizeof(*grp) + n * sizeof(grp->g[0]));
    const char *argv_stack[NC_GROUP_STACK + 1];
    size_t lens_stack[NC_GROUP_STACK + 1];
    const char **argv = n <= NC_GROUP_STACK ? argv_stack : xmalloc((n + 1) * sizeof(*argv));
    size_t *lens = n <= NC_GROUP_STACK ? lens_stack : xmalloc((n + 1) * sizeof(*lens));
    argv[0] = "MGET";
    lens[0] = 4;
    for (size_t i = 0; i < n; i++) {
        out[i] = NULL;
        if (!nearcache_can_fill(nc, idx, keys[i], klens[i]))
            continue;
        out[i] = guard_new(nc, idx, keys[i], klens[i], nc_hash(nc, keys[i], klens[i]), sig,
                           siglen, false);
        out[i]->pending = 1;
        out[i]->write_through = true;
        grp->g[grp->n] = out[i];
        argv[grp->n + 1] = keys[i];
        lens[grp->n + 1] = klens[i];
        grp->n++;
    }
    size_t made = grp->n;
    grp->nc = nc;
    if (grp->n == 0 || !upstream_link_send_argv(nc->links[idx].link, (int)grp->n + 1, argv, lens,
                                                guard_group_cb, grp)) {
        for (size_t i = 0; i < n; i++)
            if (out[i]) {
                guard_free(out[i]);
                out[i] = NULL;
            }
        free(grp);
        made = 0;
    } else {
        grp->next = nc->groups;
        if (nc->groups)
            nc->groups->prev = grp;
        nc->groups = grp;
    }
    if (argv != argv_stack) {
        free(argv);
        free(lens);
    }
    return made;
}

/* ---- life cycle ---- */

static void nc_parse_prefixes(struct nearcache *nc, const char *text)
{
    const char *p = text ? text : "";
    while (*p && nc->nprefixes < NEARCACHE_PREFIXES_MAX) {
        while (*p == ' ' || *p == ',' || *p == '\t')
            p++;
        size_t n = 0;
        while (p[n] && p[n] != ' ' && p[n] != ',' && p[n] != '\t')
            n++;
        if (n == 0)
            break;
        nc->prefixes[nc->nprefixes] = xmemdup(p, n);
        nc->prefix_lens[nc->nprefixes] = n;
        nc->nprefixes++;
        p += n;
    }
}

struct nearcache *nearcache_create(struct server *srv)
{
    struct nearcache *nc = xcalloc(1, sizeof(*nc));
    nc->srv = srv;
    nc->epoch = 1;
    if (srv->cfg.invalidation == INVALIDATION_BCAST)
        nc_parse_prefixes(nc, srv->cfg.bcast_prefixes);
    nc->pool = upstream_pool_create(srv->loop, &srv->cfg.upstream, &srv->log, "data");
    nc->nlinks = upstream_pool_size(nc->pool);
    for (size_t i = 0; i < nc->nlinks; i++) {
        nc->links[i].link = upstream_pool_at(nc->pool, i);
        upstream_link_set_drain_cb(nc->links[i].link, upwait_link_drained, srv);
    }
    coherence_start(nc);
    relay_start(nc);
    return nc;
}

void nearcache_destroy(struct nearcache *nc)
{
    if (!nc)
        return;
    relay_stop(nc);
    coherence_stop(nc);
    upstream_pool_destroy(nc->pool); /* pending requests go without their callbacks */
    while (nc->groups) {
        struct nc_guard_group *grp = nc->groups;
        nc->groups = grp->next;
        free(grp); /* its guards are in nc->all */
    }
    while (nc->all) /* their waiters' clients are gone (shutdown): the waiters are freed */
        guard_free(nc->all);
    free(nc->index);
    while (nc->free_guards) {
        struct nc_guard *g = nc->free_guards;
        nc->free_guards = g->hnext;
        strbuf_free(&g->reply);
        free(g);
    }
    for (size_t i = 0; i < nc->nprefixes; i++)
        free(nc->prefixes[i]);
    free(nc);
}

size_t nearcache_link_index(const struct nearcache *nc, const struct client *c)
{
    return (size_t)(c->id % nc->nlinks);
}

struct upstream_link *nearcache_link(const struct nearcache *nc, size_t idx)
{
    return nc->links[idx].link;
}

size_t nearcache_output_bytes(const struct nearcache *nc)
{
    size_t n = 0;
    for (size_t i = 0; i < nc->nlinks; i++)
        n += upstream_link_output_bytes(nc->links[i].link);
    return n;
}

/* ---- reads ---- */

const char *nearcache_peek(struct nearcache *nc, struct client *c, const char *key, size_t klen,
                           const char *sig, size_t siglen, size_t *len)
{
    struct server *srv = nc->srv;
    int64_t now = server_now_ms(srv);
    struct store_entry *e = store_find(srv->store, NC_DB, key, klen, now, 0);
    const char *p = NULL;
    if (e && e->type == STORE_REPLIES) {
        const struct replyset *rs = store_value(e);
        p = replyset_get(rs, sig, siglen, len);
        if (p && rs->fresh_until_ms < now) {
            struct upstream_link *link = nc->links[nearcache_link_index(nc, c)].link;
            if (upstream_link_state(link) == UPSTREAM_UP)
                p = NULL; /* stale, and the upstream can answer */
            else
                nc->stats.stale_serves++;
        }
    }
    if (p)
        nc->stats.hits++;
    else
        nc->stats.misses++;
    return p;
}

bool nearcache_serve(struct nearcache *nc, struct client *c, const char *key, size_t klen,
                     const char *sig, size_t siglen)
{
    size_t n;
    const char *p = nearcache_peek(nc, c, key, klen, sig, siglen, &n);
    if (!p)
        return false;
    reply_raw(c, p, n);
    return true;
}

bool nearcache_can_fill(const struct nearcache *nc, size_t idx, const char *key, size_t klen)
{
    const struct nearcache_link *l = &nc->links[idx];
    if (l->sent_epoch != nc->epoch || upstream_link_state(l->link) != UPSTREAM_UP)
        return false;
    return nearcache_may_hold(nc, key, klen);
}

bool nearcache_may_hold(const struct nearcache *nc, const char *key, size_t klen)
{
    if (nc->nprefixes == 0)
        return true;
    for (size_t i = 0; i < nc->nprefixes; i++) /* the first byte first: most keys differ */
        if (klen >= nc->prefix_lens[i] && key[0] == nc->prefixes[i][0] &&
            memcmp(key, nc->prefixes[i], nc->prefix_lens[i]) == 0)
            return true;
    return false;
}

static struct nc_guard *find_joinable(const struct nearcache *nc, size_t idx, const char *key,
                                      size_t klen, uint64_t hash, const char *sig, size_t siglen)
{
    if (nc->nindexed == 0)
        return NULL;
    for (struct nc_guard *g = *index_bucket(nc, hash); g; g = g->hnext)
        if (g->joinable && g->link_idx == idx && guard_is(g, hash, key, klen) &&
            g->siglen == siglen && memcmp(g->sig, sig, siglen) == 0)
            return g;
    return NULL;
}

void nearcache_fill(struct nearcache *nc, struct client *c, const char *key, size_t klen,
                    const char *sig, size_t siglen)
{
    size_t idx = nearcache_link_index(nc, c);
    struct upstream_link *link = nc->links[idx].link;
    if (!nearcache_can_fill(nc, idx, key, klen)) {
        fwd_send_request(fwd_open(c), link, -1);
        return;
    }
    uint64_t hash = nc_hash(nc, key, klen);
    struct nc_guard *g = find_joinable(nc, idx, key, klen, hash, sig, siglen);
    if (g) {
        guard_add_waiter(g, fwd_open(c));
        nc->stats.singleflight_joins++;
        return;
    }
    g = guard_new(nc, idx, key, klen, hash, sig, siglen, true);
    guard_add_waiter(g, fwd_open(c));
    if (!fwd_send_client_request(c, link, -1, guard_cmd_cb, g)) {
        guard_deliver(g, "-ERR upstream unavailable: request refused\r\n", 44);
        guard_free(g);
        return;
    }
    g->pending = 1;
    guard_send_pttl(g);
}

/* A guard whose request comes from elsewhere (not joinable), or NULL when key may not be
 * cached on link idx now. */
static struct nc_guard *guard_new_follower(struct nearcache *nc, size_t idx, const char *key,
                                           size_t klen, const char *sig, size_t siglen)
{
    if (!nearcache_can_fill(nc, idx, key, klen))
        return NULL;
    return guard_new(nc, idx, key, klen, nc_hash(nc, key, klen), sig, siglen, false);
}

struct nc_guard *nearcache_guard_reread(struct nearcache *nc, size_t idx, const char *key,
                                        size_t klen, const char *sig, size_t siglen)
{
    struct nc_guard *g = guard_new_follower(nc, idx, key, klen, sig, siglen);
    if (!g)
        return NULL;
    g->write_through = true;
    const char *argv[2] = { "GET", key };
    size_t lens[2] = { 3, klen };
    if (!upstream_link_send_argv(nc->links[idx].link, 2, argv, lens, guard_cmd_cb, g)) {
        guard_free(g);
        return NULL;
    }
    g->pending = 1;
    guard_send_pttl(g); /* refused: the GET's reply settles the guard without storing */
    return g;
}

struct nc_guard *nearcache_guard_external(struct nearcache *nc, size_t idx, const char *key,
                                          size_t klen, const char *sig, size_t siglen)
{
    struct nc_guard *g = guard_new_follower(nc, idx, key, klen, sig, siglen);
    if (!g)
        return NULL;
    if (!guard_send_pttl(g)) {
        guard_free(g);
        return NULL;
    }
    return g;
}

void nearcache_guard_set_reply(struct nc_guard *g, const char *p, size_t n)
{
    g->reply.len = 0;
    strbuf_append(&g->reply, p, n);
    g->confirmed = true;
}

/* ---- invalidation ---- */

void nearcache_drop_key_keep(struct nearcache *nc, const char *key, size_t klen,
                             struct nc_guard *keep)
{
    bool restore = keep && !keep->poisoned && keep->indexed;
    if (restore)
        nearcache_withhold_key(nc, key, klen); /* keep's store reuses the entry */
    else
        nearcache_drop_key(nc, key, klen);
    if (restore) {
        keep->poisoned = false;
        guard_index(keep);
    }
}

/* Poisons every guard of key (all links). */
static void nc_poison_key(struct nearcache *nc, const char *key, size_t klen)
{
    if (nc->nindexed == 0)
        return;
    uint64_t hash = nc_hash(nc, key, klen);
    for (struct nc_guard **pp = index_bucket(nc, hash); *pp;) {
        struct nc_guard *g = *pp;
        if (!guard_is(g, hash, key, klen)) {
            pp = &g->hnext;
            continue;
        }
        *pp = g->hnext; /* every link's guards of the key */
        g->hnext = NULL;
        g->indexed = false;
        g->poisoned = true;
        g->joinable = false;
        nc->nindexed--;
    }
}

void nearcache_drop_key(struct nearcache *nc, const char *key, size_t klen)
{
    struct server *srv = nc->srv;
    store_delete(srv->store, NC_DB, key, klen, server_now_ms(srv));
    nc_poison_key(nc, key, klen);
}

void nearcache_withhold_key(struct nearcache *nc, const char *key, size_t klen)
{
    struct server *srv = nc->srv;
    int64_t now = server_now_ms(srv);
    struct store_entry *e = store_find(srv->store, NC_DB, key, klen, now, STORE_NOTOUCH);
    if (e && e->type == STORE_REPLIES) {
        struct replyset *rs = store_value(e);
        if (!replyset_withheld(rs)) {
            replyset_withhold(rs);
            store_value_changed(srv->store, e); /* never NULL: the placeholder counts */
        }
    } else if (e) {
        store_delete_entry(srv->store, e);
    }
    nc_poison_key(nc, key, klen);
}

void nearcache_flush(struct nearcache *nc, const char *why)
{
    struct server *srv = nc->srv;
    for (struct nc_guard *g = nc->all; g; g = g->anext)
        guard_poison(g);
    store_flush(srv->store, -1);
    nc->stats.flushes++;
    log_write(&srv->log, LOG_VERBOSE, "near-cache flushed: %s", why);
}

void nearcache_new_epoch(struct nearcache *nc, const char *why)
{
    nc->epoch++;
    nearcache_flush(nc, why);
    for (size_t i = 0; i < nc->nlinks; i++)
        coherence_arm_link(nc, i);
}

const char *nearcache_state_name(const struct nearcache *nc)
{
    return upstream_pool_state_name(nc->pool);
}

bool nearcache_armed(const struct nearcache *nc)
{
    for (size_t i = 0; i < nc->nlinks; i++)
        if (nc->links[i].armed_epoch != nc->epoch)
            return false;
    return true;
}
