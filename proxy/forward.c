/* Forwarded requests (see forward.h): opening a reply slot, sending, completing, the
 * post-processing of writes and MGET merges, and the cancellation when a client leaves. */
#include "proxy/forward.h"

#include "conf/xmalloc.h"
#include "proxy/client.h"
#include "proxy/cmdstats.h"
#include "proxy/errorstats.h"
#include "proxy/nearcache.h"
#include "proxy/numbers.h"
#include "proxy/pinned.h"
#include "proxy/reply.h"
#include "proxy/server.h"
#include "proxy/slowlog.h"
#include "proxy/upstream_wait.h"
#include "upstream/link.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct fwd *fwd_open(struct client *c)
{
    struct server *srv = c->srv;
    struct fwd *f = srv->free_fwds;
    if (f) { /* recycled: no allocation per forwarded request */
        srv->free_fwds = f->cnext;
        srv->nfree_fwds--;
        struct fwd_keys keys = f->keys; /* emptied, its buffers kept (fwd_free) */
        memset(f, 0, sizeof(*f));
        f->keys = keys;
    } else {
        f = xcalloc(1, sizeof(*f));
    }
    f->c = c;
    f->slot = client_slot_open(c);
    if (c->flags & (CLIENT_REPLY_OFF | CLIENT_REPLY_SKIP))
        f->flags |= FWD_DISCARD;
    f->cprev = c->fwd_tail;
    if (c->fwd_tail)
        c->fwd_tail->cnext = f;
    else
        c->fwd_head = f;
    c->fwd_tail = f;
    return f;
}

static void fwd_unlink(struct fwd *f)
{
    struct client *c = f->c;
    if (!c)
        return;
    if ((f->flags & FWD_GATING) && c->pin)
        pin_shared_done(c->pin);
    if (f->cprev)
        f->cprev->cnext = f->cnext;
    else
        c->fwd_head = f->cnext;
    if (f->cnext)
        f->cnext->cprev = f->cprev;
    else
        c->fwd_tail = f->cprev;
    f->cprev = f->cnext = NULL;
}

static void fwd_keys_free(struct fwd_keys *k)
{
    free(k->bytes);
    free(k->ends);
    memset(k, 0, sizeof(*k));
}

static void fwd_free(struct server *srv, struct fwd *f)
{
    if (f->wt != &f->wt_one)
        free(f->wt);
    for (size_t i = 0; i < f->nparts; i++)
        free(f->parts[i].local);
    free(f->parts);
    slowlog_entry_free(f->slow);
    if (srv && srv->nfree_fwds < SERVER_FREE_SLOTS_MAX) {
        f->keys.len = f->keys.n = 0;
        if (f->keys.cap > FWD_KEYS_KEEP_BYTES)
            fwd_keys_free(&f->keys);
        f->cnext = srv->free_fwds;
        srv->free_fwds = f;
        srv->nfree_fwds++;
        return;
    }
    fwd_keys_free(&f->keys);
    free(f);
}

static void fwd_reply_cb(void *owner, const struct upstream_reply *r)
{
    struct fwd *f = owner;
    f->req = NULL;
    fwd_complete(f, r);
}

static struct upstream_req *fwd_send_bytes(struct upstream_link *link, const char *p, size_t n,
                                          long long timeout_ms,
                                          void (*cb)(void *owner, const struct upstream_reply *r),
                                          void *owner)
{
    return timeout_ms < 0 ? upstream_link_send(link, p, n, cb, owner)
                          : upstream_link_send_timeout(link, p, n, timeout_ms, cb, owner);
}

/* Decimal digits of n. */
static size_t fwd_digits(size_t n)
{
    size_t d = 1;
    while (n >= 10) {
        n /= 10;
        d++;
    }
    return d;
}

/* True when c's request bytes are exactly "*<argc>\r\n" then "$<len>\r\n<arg>\r\n" for each
 * of its arguments, in order and nothing else: what upstream_command_argc would check again.
 * The client's parser already validated the '*' and '$' headers and their canonical digits
 * (Redis's string2ll: no sign, no leading zero), but, like Redis, it neither checks the byte
 * after a header's '\r' nor the two bytes after an argument: those and the positions are checked
 * here (a lenient request is sent re-formatted instead). */
static bool fwd_request_exact(const struct client *c)
{
    const char *p = c->req_ptr, *end = c->req_ptr + c->req_len;
    if (c->argc == 0)
        return false;
    size_t hdr = 1 + fwd_digits(c->argc);
    if ((size_t)(end - p) < hdr + 2 || p[hdr + 1] != '\n')
        return false;
    p += hdr + 2;
    for (size_t i = 0; i < c->argc; i++) {
        const struct resp_arg *a = &c->argv[i];
        size_t h = 1 + fwd_digits(a->len) + 2;
        if (a->ptr != p + h || (size_t)(end - a->ptr) < a->len + 2 || a->ptr[-1] != '\n' ||
            a->ptr[a->len] != '\r' || a->ptr[a->len + 1] != '\n')
            return false;
        p = a->ptr + a->len + 2;
    }
    return p == end;
}

struct upstream_req *fwd_send_client_request(struct client *c, struct upstream_link *link,
                                             long long timeout_ms,
                                             void (*cb)(void *owner,
                                                        const struct upstream_reply *r),
                                             void *owner)
{
    if (c->req_len > 0 && fwd_request_exact(c)) /* the fast path: no second parse */
        return upstream_link_send_parsed(link, c->req_ptr, c->req_len, c->argc, c->argv[0].ptr,
                                         c->argv[0].len, timeout_ms, cb, owner);
    if (c->req_len > 0) {
        struct upstream_req *req = fwd_send_bytes(link, c->req_ptr, c->req_len, timeout_ms, cb,
                                                  owner);
        if (req)
            return req;
    }
    /* An inline request, or bytes a link refuses as they are: its arguments as a multibulk. */
    const char *argv[FWD_ARGV_STACK];
    size_t lens[FWD_ARGV_STACK];
    const char **pv = c->argc <= FWD_ARGV_STACK ? argv : xmalloc(c->argc * sizeof(*pv));
    size_t *pl = c->argc <= FWD_ARGV_STACK ? lens : xmalloc(c->argc * sizeof(*pl));
    for (size_t i = 0; i < c->argc; i++) {
        pv[i] = c->argv[i].ptr;
        pl[i] = c->argv[i].len;
    }
    struct upstream_buf b = { 0 };
    upstream_command_format(&b, (int)c->argc, pv, pl);
    struct upstream_req *req = fwd_send_bytes(link, b.data, b.len, timeout_ms, cb, owner);
    upstream_buf_free(&b);
    if (pv != argv) {
        free(pv);
        free(pl);
    }
    return req;
}

/* A command a link cannot carry (MONITOR, SSUBSCRIBE...: more than one reply per request). */
static void fwd_refused(struct fwd *f)
{
    struct strbuf b = { 0 };
    const struct resp_arg *name = &f->c->argv[0];
    int n = (int)strnlen(name->ptr, name->len < FWD_NAME_MAX ? name->len : FWD_NAME_MAX);
    strbuf_printf(&b, "-ERR '%.*s' is not supported through the sidecar\r\n", n, name->ptr);
    fwd_complete_bytes(f, b.data, b.len);
    strbuf_free(&b);
}

bool fwd_send_request(struct fwd *f, struct upstream_link *link, long long timeout_ms)
{
    f->req = fwd_send_client_request(f->c, link, timeout_ms, fwd_reply_cb, f);
    if (f->req) {
        upwait_after_send(f->c, link);
        return true;
    }
    fwd_refused(f);
    return false;
}

bool fwd_send_argv(struct fwd *f, struct upstream_link *link, int argc, const char *const *argv,
                   const size_t *argvlen)
{
    f->req = upstream_link_send_argv(link, argc, argv, argvlen, fwd_reply_cb, f);
    if (f->req)
        return true;
    fwd_refused(f);
    return false;
}

void fwd_format_failure(struct strbuf *b, const struct upstream_reply *r)
{
    if (r->status == UPSTREAM_ERR_TIMEOUT)
        strbuf_printf(b, "-ERR upstream timeout\r\n");
    else
        strbuf_printf(b, "-ERR upstream unavailable: %s\r\n", r->reason ? r->reason : "down");
}

static bool reply_is_error(const char *p, size_t n)
{
    return n > 0 && p[0] == '-';
}

/* The reply (n bytes at p) is delivered: error counters, the latency (cmdstats), the slowlog. */
static void fwd_count_error(struct fwd *f, const char *p, size_t n)
{
    if (!f->c)
        return;
    struct server *srv = f->c->srv;
    bool error = reply_is_error(p, n);
    if (error) {
        srv->stats.errors_replied++;
        size_t len = n - 1; /* INFO errorstats: the line without '-' and CRLF */
        const char *eol = memchr(p + 1, '\r', len);
        errorstats_count(srv->errorstats, p + 1, eol ? (size_t)(eol - p - 1) : len);
    }
    /* cmdstats (issue 5): the forwarded command's latency, at its reply; then SLOWLOG */
    int64_t ns = cmdstats_forward_done(srv, f, error);
    if (f->slow)
        slowlog_forward_done(f->c, f, ns);
}

/* The slot gets its bytes and becomes ready; the output limit is checked as after any reply. */
static void fwd_deliver_done(struct fwd *f)
{
    struct client *c = f->c;
    if (!c)
        return;
    client_slot_ready(c, f->slot);
    f->slot = NULL;
    if (client_output_bytes(c) > (size_t)c->srv->cfg.client_output_buffer_limit) {
        log_warn(&c->srv->log,
                 "Client id=%llu addr=%s closed for overcoming of output buffer limits.",
                 (unsigned long long)c->id, c->addr);
        client_close(c);
    }
}

/* MGET: the hits taken when it was sent, the upstream's elements for the misses, in order. */
static void fwd_merge_mget(struct fwd *f, const struct upstream_reply *r, struct strbuf *out)
{
    const struct upstream_value *v = r->status == UPSTREAM_OK ? r->value : NULL;
    if (!v || upstream_value_type(v) != UPSTREAM_VALUE_ARRAY) {
        if (v) {
            size_t n = upstream_value_encoded_len(v);
            strbuf_reserve(out, n);
            out->len = (size_t)(upstream_value_encode(v, out->data + out->len) - out->data);
        } else {
            fwd_format_failure(out, r);
        }
        return;
    }
    /* The merged size first, so the slot grows once (not once per element), and the header
     * written directly (a printf per MGET cost about as much as the merge itself). */
    size_t next = 0, count = upstream_value_count(v);
    size_t total = 1 + NUM_LL_STR_MAX + 2;
    for (size_t i = 0; i < f->nparts; i++) {
        const struct fwd_mget_part *p = &f->parts[i];
        total += p->local ? p->len
                 : next < count ? upstream_value_encoded_len(upstream_value_at(v, next++))
                                : 5;
    }
    strbuf_reserve(out, total);
    char *w = out->data + out->len;
    *w++ = '*';
    w += num_format_ull(w, f->nparts);
    *w++ = '\r';
    *w++ = '\n';
    next = 0;
    for (size_t i = 0; i < f->nparts; i++) {
        struct fwd_mget_part *p = &f->parts[i];
        if (p->local) {
            memcpy(w, p->local, p->len);
            w += p->len;
            continue;
        }
        if (next >= count) { /* cannot happen with a Redis upstream: keep the shape */
            memcpy(w, "$-1\r\n", 5);
            w += 5;
            continue;
        }
        const struct upstream_value *e = upstream_value_at(v, next++);
        char *start = w;
        w = upstream_value_encode(e, w);
        if (p->guard && upstream_value_type(e) == UPSTREAM_VALUE_BULK)
            nearcache_guard_set_reply(p->guard, start, (size_t)(w - start));
    }
    out->len = (size_t)(w - out->data);
}

/* After the reply: drop the written keys again (a write-through guard's key is withheld for its
 * store instead), flush. */
static void fwd_post(struct fwd *f, const struct upstream_reply *r, struct nearcache *nc)
{
    bool ok = r->status == UPSTREAM_OK && upstream_value_type(r->value) != UPSTREAM_VALUE_ERROR;
    if (nc && ok) {
        if (f->flags & FWD_FLUSH_AFTER)
            nearcache_flush(nc, "a flush or a write of many keys was forwarded");
        const struct fwd_keys *k = &f->keys;
        for (size_t i = 0, start = 0; i < k->n; start = k->ends[i++]) /* wt[i]: keys[i]'s */
            nearcache_drop_key_keep(nc, k->bytes + start, k->ends[i] - start,
                                    i < f->nwt ? f->wt[i] : NULL);
    }
}

/* A big bulk reply into an empty slot: the upstream layer's allocation holding its encoding
 * becomes the slot's buffer instead of being copied into it (100 KB values: one copy and one
 * large allocation less per reply). v's string is not read after the slot is delivered. */
static bool fwd_take_reply(struct strbuf *out, const struct upstream_value *v)
{
    size_t n;
    char *resp = upstream_value_take_resp(v, &n);
    if (!resp)
        return false;
    strbuf_free(out);
    out->data = resp;
    out->len = out->cap = n;
    return true;
}

void fwd_complete(struct fwd *f, const struct upstream_reply *r)
{
    struct client *c = f->c;
    struct server *srv = c ? c->srv : NULL;
    struct nearcache *nc = c ? c->srv->nc : NULL;
    if (c && f->slot) {
        struct strbuf *out = &f->slot->buf;
        size_t mark = out->len;
        if (f->parts) {
            fwd_merge_mget(f, r, out);
        } else if ((f->flags & (FWD_EXEC_ABORTED | FWD_EXEC_FLAGGED)) &&
                   r->status == UPSTREAM_OK &&
                   upstream_value_type(r->value) == UPSTREAM_VALUE_STATUS) {
            if (f->flags & FWD_EXEC_FLAGGED) /* a flagged transaction's EXEC, as Redis */
                strbuf_append(out, ERR_EXECABORT_RESP, strlen(ERR_EXECABORT_RESP));
            else
                strbuf_append(out, "*-1\r\n", 5); /* what an EXEC aborted by WATCH answers */
        } else if (r->status == UPSTREAM_OK && mark == 0 && !(f->flags & FWD_DISCARD) &&
                   fwd_take_reply(out, r->value)) {
            /* a big bulk: its encoding became the slot's buffer, no copy */
        } else if (r->status == UPSTREAM_OK) {
            size_t n = upstream_value_encoded_len(r->value);
            strbuf_reserve(out, n);
            out->len = (size_t)(upstream_value_encode(r->value, out->data + out->len) - out->data);
        } else {
            fwd_format_failure(out, r);
        }
        fwd_count_error(f, out->data + mark, out->len - mark);
        if (f->flags & FWD_DISCARD)
            out->len = mark;
        client_slot_grew(c, f->slot, out->len - mark);
    }
    fwd_post(f, r, nc);
    if (f->pin)
        pin_request_done(f->pin, f, r);
    fwd_deliver_done(f);
    fwd_unlink(f);
    fwd_free(srv, f);
}

void fwd_complete_bytes(struct fwd *f, const char *p, size_t n)
{
    struct server *srv = f->c ? f->c->srv : NULL;
    if (f->c && f->slot) {
        fwd_count_error(f, p, n);
        if (!(f->flags & FWD_DISCARD)) {
            strbuf_append(&f->slot->buf, p, n);
            client_slot_grew(f->c, f->slot, n);
        }
    }
    fwd_deliver_done(f);
    fwd_unlink(f);
    fwd_free(srv, f);
}

void fwd_pool_free(struct server *srv)
{
    while (srv->free_fwds) {
        struct fwd *f = srv->free_fwds;
        srv->free_fwds = f->cnext;
        fwd_keys_free(&f->keys);
        free(f);
    }
    srv->nfree_fwds = 0;
    while (srv->free_slots) {
        struct reply_slot *s = srv->free_slots;
        srv->free_slots = s->next;
        strbuf_free(&s->buf);
        free(s);
    }
    srv->nfree_slots = 0;
}

void fwd_add_key(struct fwd *f, const char *key, size_t klen)
{
    if (f->flags & FWD_FLUSH_AFTER)
        return;
    struct fwd_keys *k = &f->keys;
    if (k->n == FWD_KEYS_MAX) {
        f->flags |= FWD_FLUSH_AFTER;
        return;
    }
    if (k->n == k->ncap) {
        k->ncap = k->ncap ? k->ncap * 2 : 16;
        k->ends = xrealloc(k->ends, k->ncap * sizeof(*k->ends));
    }
    if (k->cap - k->len < klen || !k->bytes) { /* allocated even for an empty key: the
                                                  near-cache hashes a non-NULL pointer */
        size_t cap = k->cap ? k->cap : 256;
        while (cap - k->len < klen)
            cap *= 2;
        k->bytes = xrealloc(k->bytes, cap);
        k->cap = cap;
    }
    memcpy(k->bytes + k->len, key, klen);
    k->len += klen;
    k->ends[k->n++] = k->len;
}

void fwd_client_gone(struct client *c)
{
    struct fwd *f = c->fwd_head;
    c->fwd_head = c->fwd_tail = NULL;
    while (f) {
        struct fwd *next = f->cnext;
        f->c = NULL;
        f->slot = NULL; /* freed with the client's slots */
        f->cprev = f->cnext = NULL;
        if (f->pin) {
            f->pin->inflight--;
            f->pin = NULL;
        }
        if (f->req) {
            upstream_req_cancel(f->req);
            fwd_free(c->srv, f);
        }
        /* else: a waiter of a guard, which frees it when the fill completes */
        f = next;
    }
}
