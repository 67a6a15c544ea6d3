/* Blocked clients: the (db, key) -> waiters table, the ready-key queue, serving, timeouts and
 * the queue of unblocked clients whose pending input runs from the flush path; see blocking.h.
 *
 * Invariants:
 *  - c->bstate != NULL exactly when c has CLIENT_BLOCKED; its records are on the FIFOs of the
 *    distinct keys it waits for, in the order clients blocked; a key is in the table exactly
 *    while it has a waiter; srv->blocked_clients counts the blocked clients and
 *    srv->blocked_clients_timeout those whose timer is armed;
 *  - c->btimer is active only while c is blocked with a deadline (stopped before unblock/free);
 *  - a key's `ready` flag is set exactly while a ready entry for it is queued (a ready entry
 *    whose key has since lost its waiters is skipped); ready entries hold their own key copy;
 *  - CLIENT_UNBLOCKED is set exactly while c is on the resume queue; a freed client is taken
 *    off it (blocking_client_free), so the queue never holds a dangling pointer;
 *  - serving never runs commands, never unblocks a client other than the one it served, and
 *    never frees a client (client frees are deferred to the flush path). */
#include "proxy/blocking.h"

#include "cache/siphash.h"
#include "cache/store.h"
#include "conf/xmalloc.h"
#include "proxy/client.h"
#include "proxy/dispatch.h"
#include "proxy/numbers.h"
#include "proxy/reply.h"
#include "proxy/server.h"

#include <limits.h>
#include <malloc.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#define BLOCKING_TABLE_MIN 16 /* buckets; the table doubles above one key per bucket */
#define ERR_TIMEOUT_FLOAT "ERR timeout is not a float or out of range"
#define ERR_TIMEOUT_NEGATIVE "ERR timeout is negative"
#define ERR_UNBLOCKED "UNBLOCKED client unblocked via CLIENT UNBLOCK"

#define container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

struct block_rec {
    struct block_rec *prev, *next;   /* the key's waiters, oldest first */
    struct client *c;
    struct block_key *bk;
};

struct block_key {
    struct block_key *hnext;         /* bucket chain */
    struct block_rec *head, *tail;
    uint64_t hash;
    int db;
    bool ready;                      /* a ready entry for it is queued */
    size_t klen;
    char key[];
};

struct blocking_state {
    const struct blocking_ops *ops;
    struct blocking_args args;       /* args.target points after recs[] */
    int64_t deadline_ms;             /* 0: no timer */
    size_t nrecs;
    struct block_rec recs[];         /* then the target key bytes */
};

struct ready_key {
    struct ready_key *next;
    int db;
    size_t klen;
    char key[];
};

struct blocking {
    struct block_key **b;
    size_t size, used;               /* buckets, keys */
    struct ready_key *ready_head, *ready_tail;
    struct client *resume_head, *resume_tail;
    bool serving;                    /* blocking_serve_ready is running */
    size_t bytes;
    uint8_t seed[16];
};

static size_t alloc_bytes(const void *p)
{
    return malloc_usable_size((void *)p) + sizeof(size_t);
}

/* ---- the registry ---- */

struct blocking *blocking_create(const uint8_t seed[16])
{
    struct blocking *b = xcalloc(1, sizeof(*b));
    memcpy(b->seed, seed, sizeof(b->seed));
    b->bytes = alloc_bytes(b);
    return b;
}

void blocking_destroy(struct blocking *b)
{
    if (!b)
        return;
    /* Clients were freed first: the table and the resume queue are empty. */
    for (size_t i = 0; i < b->size; i++) {
        struct block_key *k = b->b[i];
        while (k) {
            struct block_key *next = k->hnext;
            free(k);
            k = next;
        }
    }
    while (b->ready_head) {
        struct ready_key *r = b->ready_head;
        b->ready_head = r->next;
        free(r);
    }
    free(b->b);
    free(b);
}

size_t blocking_bytes(const struct blocking *b)
{
    return b ? b->bytes : 0;
}

size_t blocking_keys(const struct blocking *b)
{
    return b ? b->used : 0;
}

static uint64_t block_hash(const struct blocking *b, int db, const char *key, size_t klen)
{
    return siphash13(key, klen, b->seed) ^ ((uint64_t)(unsigned)db * 0x9E3779B97F4A7C15ull);
}

static void block_table_resize(struct blocking *b, size_t size)
{
    struct block_key **nb = xcalloc(size, sizeof(*nb));
    for (size_t i = 0; i < b->size; i++) {
        struct block_key *k = b->b[i];
        while (k) {
            struct block_key *next = k->hnext;
            size_t idx = k->hash & (size - 1);
            k->hnext = nb[idx];
            nb[idx] = k;
            k = next;
        }
    }
    if (b->b)
        b->bytes -= alloc_bytes(b->b);
    free(b->b);
    b->b = nb;
    b->size = size;
    b->bytes += alloc_bytes(nb);
}

static struct block_key *block_table_find(const struct blocking *b, int db, const char *key,
                                          size_t klen, uint64_t h)
{
    if (!b->size)
        return NULL;
    for (struct block_key *k = b->b[h & (b->size - 1)]; k; k = k->hnext)
        if (k->hash == h && k->db == db && k->klen == klen && memcmp(k->key, key, klen) == 0)
            return k;
    return NULL;
}

static struct block_key *block_table_add(struct blocking *b, int db, const char *key,
                                         size_t klen, uint64_t h)
{
    if (b->used + 1 > b->size)
        block_table_resize(b, b->size ? b->size * 2 : BLOCKING_TABLE_MIN);
    struct block_key *k = xmalloc(sizeof(*k) + klen);
    k->head = k->tail = NULL;
    k->hash = h;
    k->db = db;
    k->ready = false;
    k->klen = klen;
    memcpy(k->key, key, klen);
    size_t idx = h & (b->size - 1);
    k->hnext = b->b[idx];
    b->b[idx] = k;
    b->used++;
    b->bytes += alloc_bytes(k);
    return k;
}

static void block_table_remove(struct blocking *b, struct block_key *k)
{
    struct block_key **pp = &b->b[k->hash & (b->size - 1)];
    while (*pp != k)
        pp = &(*pp)->hnext;
    *pp = k->hnext;
    b->bytes -= alloc_bytes(k);
    free(k);
    b->used--;
    if (b->used == 0) { /* nobody blocked: give the buckets back */
        b->bytes -= alloc_bytes(b->b);
        free(b->b);
        b->b = NULL;
        b->size = 0;
    } else if (b->size > BLOCKING_TABLE_MIN && b->used < b->size / 8) {
        block_table_resize(b, b->size / 2);
    }
}

/* ---- the timeout argument ---- */

bool blocking_timeout_or_reply(struct client *c, size_t i, int64_t *deadline_ms)
{
    const struct resp_arg *a = &c->argv[i];
    long double secs;
    if (!num_parse_ld(a->ptr, a->len, &secs)) {
        reply_error(c, ERR_TIMEOUT_FLOAT);
        return false;
    }
    /* Redis 7.0: (long long)ceill(secs * 1000.0); x86 turns an out-of-range conversion into
     * LLONG_MIN, which then reads as negative. */
    long double ms = ceill(secs * 1000.0L);
    long long tval;
    if (isnan(ms) || ms >= 0x1p63L || ms < -0x1p63L)
        tval = LLONG_MIN;
    else
        tval = (long long)ms;
    if (tval < 0) {
        reply_error(c, ERR_TIMEOUT_NEGATIVE);
        return false;
    }
    int64_t now = server_now_ms(c->srv);
    /* A deadline past the clock's range never comes (Redis's overflowed deadline never fires). */
    if (tval == 0 || tval > INT64_MAX - now)
        *deadline_ms = 0;
    else
        *deadline_ms = now + tval;
    return true;
}

bool blocking_allowed(const struct client *c)
{
    return !(c->flags & CLIENT_MULTI);
}

/* ---- blocking ---- */

static void blocking_timeout_cb(struct ev_loop *loop, ev_timer *w, int revents);

void blocking_block(struct client *c, const struct resp_arg *keys, size_t nkeys,
                    int64_t deadline_ms, const struct blocking_ops *ops,
                    const struct blocking_args *a)
{
    struct server *srv = c->srv;
    struct blocking *b = srv->blocking;
    size_t tlen = a->target ? a->target_len : 0;
    struct blocking_state *st =
        xmalloc(sizeof(*st) + nkeys * sizeof(struct block_rec) + tlen + 1);
    char *target = (char *)(st->recs + nkeys);
    st->ops = ops;
    st->args = *a;
    if (a->target) {
        memcpy(target, a->target, tlen);
        st->args.target = target;
    }
    target[tlen] = '\0';
    st->deadline_ms = deadline_ms;
    st->nrecs = 0;
    for (size_t i = 0; i < nkeys; i++) {
        uint64_t h = block_hash(b, c->db, keys[i].ptr, keys[i].len);
        struct block_key *k = block_table_find(b, c->db, keys[i].ptr, keys[i].len, h);
        if (!k)
            k = block_table_add(b, c->db, keys[i].ptr, keys[i].len, h);
        else if (k->tail && k->tail->c == c)
            continue; /* a key named twice: c's records are appended now, so it is the tail */
        struct block_rec *r = &st->recs[st->nrecs++];
        r->c = c;
        r->bk = k;
        r->next = NULL;
        r->prev = k->tail;
        if (k->tail)
            k->tail->next = r;
        else
            k->head = r;
        k->tail = r;
    }
    b->bytes += alloc_bytes(st);
    c->bstate = st;
    c->flags |= CLIENT_BLOCKED;
    srv->blocked_clients++;
    if (deadline_ms) {
        double after = (double)(deadline_ms - server_now_ms(srv)) / 1000.0;
        ev_timer_init(&c->btimer, blocking_timeout_cb, after > 0 ? after : 0.0, 0.0);
        ev_timer_start(srv->loop, &c->btimer);
        srv->blocked_clients_timeout++;
    }
}

/* Takes c off every key FIFO, stops its timer and frees its state. */
static void blocking_release(struct client *c)
{
    struct server *srv = c->srv;
    struct blocking *b = srv->blocking;
    struct blocking_state *st = c->bstate;
    for (size_t i = 0; i < st->nrecs; i++) {
        struct block_rec *r = &st->recs[i];
        struct block_key *k = r->bk;
        if (r->prev)
            r->prev->next = r->next;
        else
            k->head = r->next;
        if (r->next)
            r->next->prev = r->prev;
        else
            k->tail = r->prev;
        if (!k->head)
            block_table_remove(b, k);
    }
    if (st->deadline_ms) {
        ev_timer_stop(srv->loop, &c->btimer);
        srv->blocked_clients_timeout--;
    }
    b->bytes -= alloc_bytes(st);
    free(st);
    c->bstate = NULL;
    c->flags &= ~CLIENT_BLOCKED;
    srv->blocked_clients--;
}

/* c was answered: unblocks it and queues it to run its pending input. mark is where its
 * answer starts in its output (for CLIENT REPLY OFF/SKIP). */
static void blocking_answered(struct client *c, struct strbuf *out, size_t mark)
{
    struct server *srv = c->srv;
    struct blocking *b = srv->blocking;
    blocking_release(c);
    srv->stats.commands_processed++; /* Redis counts a blocked command when it is unblocked */
    if (!(c->flags & CLIENT_UNBLOCKED)) {
        c->flags |= CLIENT_UNBLOCKED;
        c->unblocked_next = NULL;
        if (b->resume_tail)
            b->resume_tail->unblocked_next = c;
        else
            b->resume_head = c;
        b->resume_tail = c;
    }
    client_want_write(c);
    dispatch_request_done(c, out, mark); /* may close c (output limit): it leaves the queue */
}

static void blocking_reply_timeout(struct client *c)
{
    const struct blocking_state *st = c->bstate;
    if (st->ops->timeout)
        st->ops->timeout(c, &st->args);
    else
        reply_null_array(c);
}

static void blocking_timeout_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct client *c = container_of(w, struct client, btimer);
    (void)loop;
    (void)revents;
    if (!(c->flags & CLIENT_BLOCKED))
        return;
    struct strbuf *out = client_out(c);
    size_t mark = out->len;
    blocking_reply_timeout(c);
    blocking_answered(c, out, mark);
}

void blocking_unblock_client(struct client *c, bool error)
{
    if (!(c->flags & CLIENT_BLOCKED))
        return;
    struct strbuf *out = client_out(c);
    size_t mark = out->len;
    if (error)
        reply_error(c, ERR_UNBLOCKED);
    else
        blocking_reply_timeout(c);
    blocking_answered(c, out, mark);
}

void blocking_client_free(struct client *c)
{
    struct blocking *b = c->srv->blocking;
    if (c->flags & CLIENT_BLOCKED)
        blocking_release(c);
    if (!(c->flags & CLIENT_UNBLOCKED))
        return;
    c->flags &= ~CLIENT_UNBLOCKED;
    struct client *prev = NULL;
    for (struct client *q = b->resume_head; q; prev = q, q = q->unblocked_next) {
        if (q != c)
            continue;
        if (prev)
            prev->unblocked_next = c->unblocked_next;
        else
            b->resume_head = c->unblocked_next;
        if (b->resume_tail == c)
            b->resume_tail = prev;
        break;
    }
    c->unblocked_next = NULL;
}

/* ---- ready keys ---- */

void blocking_signal_key(struct server *srv, int db, const char *key, size_t klen)
{
    struct blocking *b = srv->blocking;
    if (!b || b->used == 0)
        return;
    struct block_key *k = block_table_find(b, db, key, klen, block_hash(b, db, key, klen));
    if (!k || k->ready)
        return;
    k->ready = true;
    struct ready_key *r = xmalloc(sizeof(*r) + klen);
    r->next = NULL;
    r->db = db;
    r->klen = klen;
    memcpy(r->key, key, klen);
    if (b->ready_tail)
        b->ready_tail->next = r;
    else
        b->ready_head = r;
    b->ready_tail = r;
    b->bytes += alloc_bytes(r);
}

/* Serves c from e (its type matches); true when c was answered and unblocked. */
static bool blocking_serve_client(struct client *c, struct store_entry *e)
{
    struct blocking_state *st = c->bstate;
    struct strbuf *out = client_out(c);
    size_t mark = out->len;
    if (!st->ops->serve(c, e, &st->args))
        return false;
    blocking_answered(c, out, mark);
    return true;
}

/* Serves the waiters of k, oldest first, while the key holds something. k may be freed when
 * its last waiter is unblocked: the walk stops there. */
static void blocking_serve_key(struct server *srv, struct block_key *k)
{
    struct block_rec *r = k->head;
    while (r) {
        /* next is another client's record (a client waits on a key once), and serving r's
         * client unblocks only that client. */
        struct block_rec *next = r->next;
        struct client *c = r->c;
        struct store_entry *e = store_find(srv->store, k->db, k->key, k->klen,
                                           server_now_ms(srv), 0);
        if (!e)
            return;
        if (e->type == c->bstate->ops->type && blocking_serve_client(c, e) && !next)
            return;
        r = next;
    }
}

void blocking_serve_ready(struct server *srv)
{
    struct blocking *b = srv->blocking;
    if (!b || b->serving || !b->ready_head)
        return;
    b->serving = true;
    for (size_t n = 0; b->ready_head && n < BLOCKING_SERVE_MAX; n++) {
        struct ready_key *r = b->ready_head;
        b->ready_head = r->next;
        if (!b->ready_head)
            b->ready_tail = NULL;
        struct block_key *k = block_table_find(b, r->db, r->key, r->klen,
                                               block_hash(b, r->db, r->key, r->klen));
        if (k && k->ready) {
            k->ready = false;
            blocking_serve_key(srv, k);
        }
        b->bytes -= alloc_bytes(r);
        free(r);
    }
    b->serving = false;
}

void blocking_resume_clients(struct server *srv)
{
    struct blocking *b = srv->blocking;
    for (size_t n = 0; b && b->resume_head && n < BLOCKING_RESUME_MAX; n++) {
        struct client *c = b->resume_head;
        b->resume_head = c->unblocked_next;
        if (!b->resume_head)
            b->resume_tail = NULL;
        c->unblocked_next = NULL;
        c->flags &= ~CLIENT_UNBLOCKED;
        client_process_input(c);
    }
}

bool blocking_work_pending(const struct server *srv)
{
    const struct blocking *b = srv->blocking;
    return b && (b->ready_head || b->resume_head);
}
