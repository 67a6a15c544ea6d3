/* Pub/sub registry and delivery; see pubsub.h.
 *
 * Invariants:
 *  - a channel (or pattern) node is in its table exactly while its subscriber list is not
 *    empty; nsubs is the length of that list;
 *  - every subscription record is on its node's list and on its client's list; a client has
 *    at most one record per node; c->pubsub != NULL exactly while it has a record, and its
 *    counts are the records of each kind;
 *  - delivery never changes the registry (a receiver over its output limit is only marked to
 *    close; it leaves the registry when it is freed). */
#include "proxy/pubsub.h"

#include "cache/siphash.h"
#include "conf/glob.h"
#include "conf/xmalloc.h"
#include "proxy/client.h"
#include "proxy/reply.h"
#include "proxy/server.h"

#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PUBSUB_TABLE_MIN 16 /* buckets; a table doubles above one name per bucket */
#define PUBSUB_HEADER_MAX 32

struct pubsub_sub;

struct pubsub_chan {
    struct pubsub_chan *hnext;            /* bucket chain */
    struct pubsub_sub *head, *tail;       /* subscribers, in the order they subscribed */
    size_t nsubs;
    uint64_t hash;
    size_t len;
    char name[];
};

struct pubsub_sub {
    struct pubsub_sub *sprev, *snext;     /* the node's subscribers */
    struct pubsub_sub *cprev, *cnext;     /* the client's subscriptions */
    struct client *c;
    struct pubsub_chan *chan;
    bool pattern;
};

struct pubsub_client {
    struct pubsub_sub *head, *tail;       /* in the order subscribed */
    size_t nchannels, npatterns;
};

struct pubsub_table {
    struct pubsub_chan **b;
    size_t size, used;                    /* buckets, names */
};

struct pubsub {
    struct pubsub_table channels, patterns;
    size_t bytes;
    uint8_t seed[16];
    pubsub_names_fn *hook;                /* a name entered or left a table, or NULL */
    void *hook_ctx;
};

void pubsub_set_names_hook(struct pubsub *ps, pubsub_names_fn *fn, void *ctx)
{
    ps->hook = fn;
    ps->hook_ctx = ctx;
}

static size_t alloc_bytes(const void *p)
{
    return malloc_usable_size((void *)p) + sizeof(size_t);
}

/* ---- tables ---- */

struct pubsub *pubsub_create(const uint8_t seed[16])
{
    struct pubsub *ps = xcalloc(1, sizeof(*ps));
    memcpy(ps->seed, seed, sizeof(ps->seed));
    ps->bytes = alloc_bytes(ps);
    return ps;
}

static void table_release(struct pubsub_table *t)
{
    for (size_t i = 0; i < t->size; i++) {
        struct pubsub_chan *n = t->b[i];
        while (n) {
            struct pubsub_chan *next = n->hnext;
            free(n);
            n = next;
        }
    }
    free(t->b);
}

void pubsub_destroy(struct pubsub *ps)
{
    if (!ps)
        return;
    /* Clients were freed first, so both tables are empty; free defensively anyway. */
    table_release(&ps->channels);
    table_release(&ps->patterns);
    free(ps);
}

static void table_resize(struct pubsub *ps, struct pubsub_table *t, size_t size)
{
    struct pubsub_chan **nb = xcalloc(size, sizeof(*nb));
    for (size_t i = 0; i < t->size; i++) {
        struct pubsub_chan *n = t->b[i];
        while (n) {
            struct pubsub_chan *next = n->hnext;
            size_t idx = n->hash & (size - 1);
            n->hnext = nb[idx];
            nb[idx] = n;
            n = next;
        }
    }
    if (t->b)
        ps->bytes -= alloc_bytes(t->b);
    free(t->b);
    t->b = nb;
    t->size = size;
    ps->bytes += alloc_bytes(nb);
}

static struct pubsub_chan *table_find(const struct pubsub_table *t, const char *name,
                                      size_t len, uint64_t h)
{
    if (!t->size)
        return NULL;
    for (struct pubsub_chan *n = t->b[h & (t->size - 1)]; n; n = n->hnext)
        if (n->hash == h && n->len == len && memcmp(n->name, name, len) == 0)
            return n;
    return NULL;
}

static struct pubsub_chan *table_add(struct pubsub *ps, struct pubsub_table *t, const char *name,
                                     size_t len, uint64_t h)
{
    if (t->used + 1 > t->size)
        table_resize(ps, t, t->size ? t->size * 2 : PUBSUB_TABLE_MIN);
    struct pubsub_chan *n = xcalloc(1, sizeof(*n) + len + 1);
    n->hash = h;
    n->len = len;
    memcpy(n->name, name, len);
    size_t idx = h & (t->size - 1);
    n->hnext = t->b[idx];
    t->b[idx] = n;
    t->used++;
    ps->bytes += alloc_bytes(n);
    if (ps->hook)
        ps->hook(ps->hook_ctx, t == &ps->patterns, name, len, true);
    return n;
}

static void table_remove(struct pubsub *ps, struct pubsub_table *t, struct pubsub_chan *n)
{
    struct pubsub_chan **pp = &t->b[n->hash & (t->size - 1)];
    while (*pp != n)
        pp = &(*pp)->hnext;
    *pp = n->hnext;
    t->used--;
    ps->bytes -= alloc_bytes(n);
    if (ps->hook)
        ps->hook(ps->hook_ctx, t == &ps->patterns, n->name, n->len, false);
    free(n);
    if (t->size > PUBSUB_TABLE_MIN && t->used < t->size / 8)
        table_resize(ps, t, t->size / 2);
}

/* ---- subscriptions ---- */

static size_t client_total(const struct client *c)
{
    return c->pubsub ? c->pubsub->nchannels + c->pubsub->npatterns : 0;
}

/* c's record on node n, or NULL: walks the shorter of the two lists. */
static struct pubsub_sub *sub_find(const struct client *c, const struct pubsub_chan *n)
{
    if (!c->pubsub)
        return NULL;
    if (client_total(c) <= n->nsubs) {
        for (struct pubsub_sub *s = c->pubsub->head; s; s = s->cnext)
            if (s->chan == n)
                return s;
    } else {
        for (struct pubsub_sub *s = n->head; s; s = s->snext)
            if (s->c == c)
                return s;
    }
    return NULL;
}

static void sub_add(struct pubsub *ps, struct client *c, struct pubsub_chan *n, bool pattern)
{
    if (!c->pubsub) {
        c->pubsub = xcalloc(1, sizeof(*c->pubsub));
        ps->bytes += alloc_bytes(c->pubsub);
    }
    struct pubsub_client *pc = c->pubsub;
    struct pubsub_sub *s = xcalloc(1, sizeof(*s));
    s->c = c;
    s->chan = n;
    s->pattern = pattern;
    s->sprev = n->tail;
    if (n->tail)
        n->tail->snext = s;
    else
        n->head = s;
    n->tail = s;
    n->nsubs++;
    s->cprev = pc->tail;
    if (pc->tail)
        pc->tail->cnext = s;
    else
        pc->head = s;
    pc->tail = s;
    if (pattern)
        pc->npatterns++;
    else
        pc->nchannels++;
    ps->bytes += alloc_bytes(s);
}

/* Removes record s (and its node when it was the last subscriber, and c's list when empty). */
static void sub_remove(struct pubsub *ps, struct client *c, struct pubsub_sub *s)
{
    struct pubsub_chan *n = s->chan;
    struct pubsub_client *pc = c->pubsub;
    if (s->sprev)
        s->sprev->snext = s->snext;
    else
        n->head = s->snext;
    if (s->snext)
        s->snext->sprev = s->sprev;
    else
        n->tail = s->sprev;
    n->nsubs--;
    if (s->cprev)
        s->cprev->cnext = s->cnext;
    else
        pc->head = s->cnext;
    if (s->cnext)
        s->cnext->cprev = s->cprev;
    else
        pc->tail = s->cprev;
    if (s->pattern)
        pc->npatterns--;
    else
        pc->nchannels--;
    if (n->nsubs == 0)
        table_remove(ps, s->pattern ? &ps->patterns : &ps->channels, n);
    ps->bytes -= alloc_bytes(s);
    free(s);
    if (!pc->head) {
        ps->bytes -= alloc_bytes(pc);
        free(pc);
        c->pubsub = NULL;
    }
}

/* [kind, name (NULL: null), count] as an array (RESP2) or a push (RESP3). */
static void reply_confirmation(struct client *c, const char *kind, const char *name, size_t len)
{
    char hdr[PUBSUB_HEADER_MAX];
    int n = snprintf(hdr, sizeof(hdr), "%c3\r\n", c->resp == 3 ? '>' : '*');
    reply_raw(c, hdr, (size_t)n);
    reply_bulk_cstr(c, kind);
    if (name)
        reply_bulk(c, name, len);
    else
        reply_null(c);
    reply_int(c, (long long)client_total(c));
}

void pubsub_subscribe(struct client *c, const char *name, size_t len, bool pattern)
{
    struct pubsub *ps = c->srv->pubsub;
    struct pubsub_table *t = pattern ? &ps->patterns : &ps->channels;
    uint64_t h = siphash13(name, len, ps->seed);
    struct pubsub_chan *n = table_find(t, name, len, h);
    if (!n)
        n = table_add(ps, t, name, len, h);
    if (!sub_find(c, n))
        sub_add(ps, c, n, pattern);
    reply_confirmation(c, pattern ? "psubscribe" : "subscribe", name, len);
}

void pubsub_unsubscribe(struct client *c, const char *name, size_t len, bool pattern)
{
    struct pubsub *ps = c->srv->pubsub;
    struct pubsub_table *t = pattern ? &ps->patterns : &ps->channels;
    struct pubsub_chan *n = table_find(t, name, len, siphash13(name, len, ps->seed));
    struct pubsub_sub *s = n ? sub_find(c, n) : NULL;
    if (s)
        sub_remove(ps, c, s);
    reply_confirmation(c, pattern ? "punsubscribe" : "unsubscribe", name, len);
}

void pubsub_unsubscribe_all(struct client *c, bool pattern, bool notify)
{
    struct pubsub *ps = c->srv->pubsub;
    const char *kind = pattern ? "punsubscribe" : "unsubscribe";
    size_t removed = 0;
    struct pubsub_sub *s = c->pubsub ? c->pubsub->head : NULL;
    while (s) {
        /* c->pubsub is freed by the last removal: only `next` is read after sub_remove. */
        struct pubsub_sub *next = s->cnext;
        if (s->pattern == pattern) {
            struct pubsub_chan *n = s->chan;
            if (notify) {
                /* Replied before the removal frees the name; the count is what will be left. */
                size_t left = client_total(c) - 1;
                char hdr[PUBSUB_HEADER_MAX];
                int hl = snprintf(hdr, sizeof(hdr), "%c3\r\n", c->resp == 3 ? '>' : '*');
                reply_raw(c, hdr, (size_t)hl);
                reply_bulk_cstr(c, kind);
                reply_bulk(c, n->name, n->len);
                reply_int(c, (long long)left);
            }
            sub_remove(ps, c, s);
            removed++;
        }
        s = next;
    }
    if (notify && removed == 0)
        reply_confirmation(c, kind, NULL, 0);
}

void pubsub_client_free(struct client *c)
{
    struct pubsub *ps = c->srv->pubsub;
    while (c->pubsub)
        sub_remove(ps, c, c->pubsub->head);
    c->flags &= ~CLIENT_PUBSUB;
}

/* ---- delivery ---- */

static void put_bulk(struct strbuf *b, const char *p, size_t n)
{
    strbuf_printf(b, "$%zu\r\n", n);
    strbuf_append(b, p, n);
    strbuf_append(b, "\r\n", 2);
}

/* One message as receiver r reads it: enc[0] RESP2, enc[1] RESP3, each built on first use. */
struct pubsub_msg {
    const struct pubsub_chan *pattern;    /* NULL: a channel subscription */
    const char *channel, *payload;
    size_t clen, plen;
    struct strbuf enc[2];
};

static const struct strbuf *msg_encoding(struct pubsub_msg *m, int resp)
{
    struct strbuf *b = &m->enc[resp == 3];
    if (b->len)
        return b;
    strbuf_printf(b, "%c%d\r\n", resp == 3 ? '>' : '*', m->pattern ? 4 : 3);
    if (m->pattern) {
        put_bulk(b, "pmessage", 8);
        put_bulk(b, m->pattern->name, m->pattern->len);
    } else {
        put_bulk(b, "message", 7);
    }
    put_bulk(b, m->channel, m->clen);
    put_bulk(b, m->payload, m->plen);
    return b;
}

static void msg_reset(struct pubsub_msg *m, const struct pubsub_chan *pattern)
{
    m->pattern = pattern;
    m->enc[0].len = m->enc[1].len = 0;
}

static void deliver(struct client *r, struct pubsub_msg *m)
{
    struct server *srv = r->srv;
    if (r->flags & (CLIENT_CLOSE_ASAP | CLIENT_CLOSE_AFTER_REPLY))
        return;
    const struct strbuf *enc = msg_encoding(m, r->resp);
    strbuf_append(client_out(r), enc->data, enc->len);
    client_want_write(r);
    if (client_output_bytes(r) > (size_t)srv->cfg.pubsub_output_buffer_limit) {
        log_warn(&srv->log, "Client id=%llu addr=%s closed for overcoming of output buffer "
                 "limits.", (unsigned long long)r->id, r->addr);
        client_close(r);
    }
}

long long pubsub_publish(struct client *publisher, const char *channel, size_t clen,
                         const char *msg, size_t mlen)
{
    struct pubsub *ps = publisher->srv->pubsub;
    struct pubsub_msg m = { NULL, channel, msg, clen, mlen, { { NULL, 0, 0 }, { NULL, 0, 0 } } };
    long long receivers = 0;
    struct pubsub_chan *n = table_find(&ps->channels, channel, clen,
                                       siphash13(channel, clen, ps->seed));
    if (n) {
        for (struct pubsub_sub *s = n->head; s; s = s->snext) {
            deliver(s->c, &m);
            receivers++;
        }
    }
    for (size_t i = 0; i < ps->patterns.size; i++) {
        for (struct pubsub_chan *p = ps->patterns.b[i]; p; p = p->hnext) {
            if (!glob_match(p->name, p->len, channel, clen, false))
                continue;
            msg_reset(&m, p);
            for (struct pubsub_sub *s = p->head; s; s = s->snext) {
                deliver(s->c, &m);
                receivers++;
            }
        }
    }
    strbuf_free(&m.enc[0]);
    strbuf_free(&m.enc[1]);
    return receivers;
}

long long pubsub_deliver(struct pubsub *ps, const char *pattern, size_t patlen,
                         const char *channel, size_t clen, const char *msg, size_t mlen)
{
    struct pubsub_msg m = { NULL, channel, msg, clen, mlen, { { NULL, 0, 0 }, { NULL, 0, 0 } } };
    const struct pubsub_table *t = pattern ? &ps->patterns : &ps->channels;
    const char *name = pattern ? pattern : channel;
    size_t len = pattern ? patlen : clen;
    struct pubsub_chan *n = table_find(t, name, len, siphash13(name, len, ps->seed));
    long long receivers = 0;
    if (n) {
        msg_reset(&m, pattern ? n : NULL);
        for (struct pubsub_sub *s = n->head; s; s = s->snext) {
            deliver(s->c, &m);
            receivers++;
        }
    }
    strbuf_free(&m.enc[0]);
    strbuf_free(&m.enc[1]);
    return receivers;
}

/* ---- introspection ---- */

void pubsub_reply_channels(struct client *c, const char *pat, size_t plen)
{
    const struct pubsub_table *t = &c->srv->pubsub->channels;
    if (!pat) {
        reply_array(c, t->used);
        for (size_t i = 0; i < t->size; i++)
            for (const struct pubsub_chan *n = t->b[i]; n; n = n->hnext)
                reply_bulk(c, n->name, n->len);
        return;
    }
    size_t handle = reply_defer_len(c);
    size_t count = 0;
    for (size_t i = 0; i < t->size; i++) {
        for (const struct pubsub_chan *n = t->b[i]; n; n = n->hnext) {
            if (glob_match(pat, plen, n->name, n->len, false)) {
                reply_bulk(c, n->name, n->len);
                count++;
            }
        }
    }
    reply_set_deferred_len(c, handle, count);
}

size_t pubsub_channel_subscribers(const struct pubsub *ps, const char *name, size_t len)
{
    const struct pubsub_chan *n = table_find(&ps->channels, name, len,
                                             siphash13(name, len, ps->seed));
    return n ? n->nsubs : 0;
}

size_t pubsub_pattern_count(const struct pubsub *ps)
{
    return ps ? ps->patterns.used : 0;
}

size_t pubsub_channel_count(const struct pubsub *ps)
{
    return ps ? ps->channels.used : 0;
}

size_t pubsub_bytes(const struct pubsub *ps)
{
    return ps ? ps->bytes : 0;
}

size_t pubsub_client_channels(const struct client *c)
{
    return c->pubsub ? c->pubsub->nchannels : 0;
}

size_t pubsub_client_patterns(const struct client *c)
{
    return c->pubsub ? c->pubsub->npatterns : 0;
}
