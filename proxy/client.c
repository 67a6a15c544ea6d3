/* Client connections: accept-time set-up, reading and parsing, the reply-slot FIFO, writing,
 * backpressure and deferred free. See client.h for the output and lifetime rules. */
#include "proxy/client.h"

#include "cache/store.h"
#include "conf/xmalloc.h"
#include "proxy/acl.h"
#include "proxy/blocking.h"
#include "proxy/dispatch.h"
#include "proxy/forward.h"
#include "proxy/monitor.h"
#include "proxy/multi.h"
#include "proxy/pinned.h"
#include "proxy/pubsub.h"
#include "proxy/reply.h"
#include "proxy/server.h"
#include "proxy/upstream_wait.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

#define CLIENT_READ_CHUNK (16 * 1024)
#define CLIENT_READ_BIG_MAX (1024 * 1024) /* largest single read while a big bulk arrives */
#define CLIENT_ARGV_KEEP 1024 /* argument slots kept between requests (16 KB) */
#define CLIENT_SLOT_RECYCLE_BUF 512 /* a recycled slot keeps its buffer up to this size */
#define CLIENT_QBUF_SPARE_MAX (2 * CLIENT_READ_CHUNK) /* a larger emptied query buffer is freed */
#define CLIENT_OUT_HINT_MAX (256 * 1024) /* a bigger batch grows its buffer as it comes */
#define CLIENT_BIGARG_MIN (32 * 1024) /* Redis's PROTO_MBULK_BIG_ARG */
#define CLIENT_BIGARG_KEY_MAX 1024    /* longest argument before it taken as the entry's key */

#define container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

static void client_read_cb(struct ev_loop *loop, ev_io *w, int revents);
static void client_write_cb(struct ev_loop *loop, ev_io *w, int revents);

static void format_addr(const struct sockaddr_storage *ss, char *buf, size_t cap)
{
    char host[INET6_ADDRSTRLEN] = "?";
    int port = 0;
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)ss;
        inet_ntop(AF_INET, &a->sin_addr, host, sizeof(host));
        port = ntohs(a->sin_port);
        snprintf(buf, cap, "%s:%d", host, port);
    } else if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ss;
        inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof(host));
        port = ntohs(a->sin6_port);
        snprintf(buf, cap, "%s:%d", host, port);
    } else {
        snprintf(buf, cap, "/unixsocket:0");
    }
}

static void client_fill_addrs(struct client *c)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    if (c->flags & CLIENT_UNIX_SOCKET) {
        snprintf(c->addr, sizeof(c->addr), "/unixsocket:0");
        snprintf(c->laddr, sizeof(c->laddr), "%s:0", c->srv->cfg.unixsocket);
        return;
    }
    if (getpeername(c->fd, (struct sockaddr *)&ss, &len) == 0)
        format_addr(&ss, c->addr, sizeof(c->addr));
    len = sizeof(ss);
    if (getsockname(c->fd, (struct sockaddr *)&ss, &len) == 0)
        format_addr(&ss, c->laddr, sizeof(c->laddr));
}

struct client *client_create(struct server *srv, int fd, bool unix_socket)
{
    struct client *c = xcalloc(1, sizeof(*c));
    c->srv = srv;
    c->id = ++srv->next_client_id;
    c->fd = fd;
    c->flags = unix_socket ? CLIENT_UNIX_SOCKET : 0;
    c->resp = 2;
    acl_client_reset(c); /* the default user: authenticated when it needs no password */
    c->ctime_ms = c->last_active_ms = server_now_ms(srv);
    resp_parser_init(&c->parser);
    client_fill_addrs(c);
    ev_io_init(&c->rio, client_read_cb, fd, EV_READ);
    ev_io_init(&c->wio, client_write_cb, fd, EV_WRITE);
    ev_io_start(srv->loop, &c->rio);
    c->next = srv->clients;
    if (srv->clients)
        srv->clients->prev = c;
    srv->clients = c;
    srv->nclients++;
    return c;
}

void client_free(struct client *c)
{
    struct server *srv = c->srv;
    ev_io_stop(srv->loop, &c->rio);
    ev_io_stop(srv->loop, &c->wio);
    close(c->fd);
    if (c->prev)
        c->prev->next = c->next;
    else
        srv->clients = c->next;
    if (c->next)
        c->next->prev = c->prev;
    srv->nclients--;
    blocking_client_free(c);
    multi_client_free(c);
    pubsub_client_free(c);
    monitor_remove(c);
    fwd_client_gone(c);
    pin_client_gone(c);
    upwait_client_gone(c);
    while (c->slot_head) {
        struct reply_slot *s = c->slot_head;
        c->slot_head = s->next;
        client_slot_recycle(srv, s);
    }
    if (c->bigarg)
        store_string_discard(c->bigarg);
    strbuf_free(&c->qbuf);
    strbuf_free(&c->out);
    resp_parser_free(&c->parser);
    free(c->argv);
    free(c->name);
    free(c->lib_name);
    free(c->lib_ver);
    free(c);
}

void client_reset_state(struct client *c)
{
    multi_discard(c);
    pubsub_client_free(c);
    monitor_remove(c); /* RESET ends MONITOR, as in Redis */
}

void client_want_write(struct client *c)
{
    if (c->flags & CLIENT_PENDING_WRITE)
        return;
    c->flags |= CLIENT_PENDING_WRITE;
    c->pending_next = c->srv->pending_writes;
    c->srv->pending_writes = c;
}

void client_close(struct client *c)
{
    c->flags |= CLIENT_CLOSE_ASAP;
    ev_io_stop(c->srv->loop, &c->rio);
    blocking_client_free(c); /* a closing client is never served */
    client_want_write(c);
}

void client_close_after_reply(struct client *c)
{
    c->flags |= CLIENT_CLOSE_AFTER_REPLY;
    ev_io_stop(c->srv->loop, &c->rio);
    client_want_write(c);
}

/* ---- reply slots ---- */

struct strbuf *client_out_slow(struct client *c)
{
    if (c->slot_tail->ready)
        return &c->slot_tail->buf;
    struct reply_slot *s = client_slot_open(c);
    s->ready = true;
    return &s->buf;
}

struct reply_slot *client_slot_open(struct client *c)
{
    struct server *srv = c->srv;
    struct reply_slot *s = srv->free_slots;
    if (s) { /* a recycled slot keeps its (small) buffer */
        srv->free_slots = s->next;
        srv->nfree_slots--;
        s->next = NULL;
        s->ready = false;
    } else {
        s = xcalloc(1, sizeof(*s));
    }
    if (c->slot_tail) {
        c->slot_bytes += c->slot_tail->buf.len;
        c->slot_tail->next = s;
    } else {
        c->slot_head = s;
    }
    c->slot_tail = s;
    c->slots++;
    return s;
}

void client_slot_ready(struct client *c, struct reply_slot *slot)
{
    slot->ready = true;
    while (c->slot_head && c->slot_head->ready) {
        struct reply_slot *s = c->slot_head;
        /* A dropped reply (CLIENT REPLY OFF) leaves its slot empty. A closing client's output
         * is never written: its replies are dropped here, not copied, so a pipeline of misses
         * answered at once (one upstream reply for many waiters) cannot pile up copies past
         * the output limit that closed it. */
        if (s != c->slot_tail)
            c->slot_bytes -= s->buf.len;
        if (s->buf.len >= CLIENT_DIRECT_MIN && c->out.len == 0 && !(c->flags & CLIENT_CLOSE_ASAP)) {
            /* A large reply (a forwarded 100 KB value) into an empty output: its buffer
             * becomes the output instead of being copied into it (the slot recycles the
             * output's old buffer, or frees it). */
            struct strbuf t = c->out;
            c->out = s->buf;
            s->buf = t;
            s->buf.len = 0;
        } else if (s->buf.len && !(c->flags & CLIENT_CLOSE_ASAP)) {
            strbuf_append(&c->out, s->buf.data, s->buf.len);
        }
        c->slot_head = s->next;
        if (!c->slot_head)
            c->slot_tail = NULL;
        c->slots--;
        client_slot_recycle(c->srv, s);
    }
    client_want_write(c);
}

void client_slot_recycle(struct server *srv, struct reply_slot *s)
{
    if (srv->nfree_slots < SERVER_FREE_SLOTS_MAX && s->buf.cap <= CLIENT_SLOT_KEEP_BYTES) {
        /* The free list keeps small buffers only: SERVER_FREE_SLOTS_MAX recycled slots holding
         * up to CLIENT_SLOT_KEEP_BYTES each would be 16 MB that no client owns and that
         * used_memory does not show; with this, at most about 2 MB. */
        if (s->buf.cap > CLIENT_SLOT_RECYCLE_BUF)
            strbuf_free(&s->buf);
        s->buf.len = 0;
        s->next = srv->free_slots;
        srv->free_slots = s;
        srv->nfree_slots++;
        return;
    }
    strbuf_free(&s->buf);
    free(s);
}

/* ---- input ---- */

static void client_pause_reading(struct client *c)
{
    c->flags |= CLIENT_READ_PAUSED;
    ev_io_stop(c->srv->loop, &c->rio);
}

static void client_resume_reading(struct client *c)
{
    c->flags &= ~CLIENT_READ_PAUSED;
    if (!(c->flags & (CLIENT_CLOSE_ASAP | CLIENT_CLOSE_AFTER_REPLY | CLIENT_UPSTREAM_WAIT)))
        ev_io_start(c->srv->loop, &c->rio);
}

static void client_load_args(struct client *c)
{
    if (c->parser.argc > c->argv_cap) {
        size_t cap = c->parser.argc < 16 ? 16 : c->parser.argc;
        c->argv = xrealloc(c->argv, cap * sizeof(*c->argv));
        c->argv_cap = cap;
    }
    c->argc = c->parser.argc;
    resp_parser_args(&c->parser, c->qbuf.data, c->argv);
}

void client_process_input(struct client *c)
{
    struct server *srv = c->srv;
    size_t done = 0; /* bytes of qbuf belonging to requests already handled */
    /* Why: a batch of replies over STRBUF_IDLE_KEEP (16 GETs of 1 KB) grew c->out from nothing
     * by doubling, eight reallocs copying 32 KB, and the buffer was freed once written (idle
     * clients must not pin it): more than half the instructions of GET 1KB -P 16. A client
     * whose last batch was that big gets the room at once; the next small batch clears it. */
    if (c->out_hint > c->out.cap && c->out.len == 0)
        strbuf_reserve(&c->out, c->out_hint);
    const unsigned stop = CLIENT_CLOSE_ASAP | CLIENT_CLOSE_AFTER_REPLY | CLIENT_READ_PAUSED |
                          CLIENT_BLOCKED | CLIENT_UPSTREAM_WAIT;
    while (!(c->flags & stop)) {
        if (srv->nc && upwait_before_request(c))
            break; /* its upstream link is congested: the rest waits (upstream_wait.h) */
        struct resp_limits lim = {
            .max_bulk_len = srv->cfg.proto_max_bulk_len,
            .unauthenticated = !c->authenticated,
        };
        enum resp_status st = resp_parse(&c->parser, c->qbuf.data, c->qbuf.len, &lim);
        if (st == RESP_NEED_MORE)
            break;
        if (st == RESP_PROTO_ERROR) {
            reply_errorf(c, "ERR %s", c->parser.error);
            log_write(&srv->log, LOG_VERBOSE, "Protocol error (%s) from client id=%llu addr=%s",
                      c->parser.error, (unsigned long long)c->id, c->addr);
            client_close_after_reply(c);
            done = c->qbuf.len;
            break;
        }
        size_t start = done;
        done = c->parser.pos;
        if (c->parser.argc > 0) {
            client_load_args(c);
            /* not contiguous in qbuf when an argument was read outside it */
            bool multibulk = c->qbuf.data[start] == '*' && !c->parser.external;
            c->req_ptr = multibulk ? c->qbuf.data + start : NULL;
            c->req_len = multibulk ? done - start : 0;
            dispatch_command(c);
            if (c->bigarg && c->parser.external) { /* read for this request, not installed */
                store_string_discard(c->bigarg);
                c->bigarg = NULL;
                c->bigarg_have = c->bigarg_need = 0;
            }
            c->argc = 0;
            if (c->argv_cap > CLIENT_ARGV_KEEP) { /* a huge request leaves nothing behind */
                free(c->argv);
                c->argv = NULL;
                c->argv_cap = 0;
            }
        }
        resp_parser_next(&c->parser);
        if (client_output_bytes(c) > SERVER_OUTPUT_SOFT_LIMIT || c->slots >= CLIENT_SLOTS_MAX)
            client_pause_reading(c);
    }
    if (done) {
        if (done > c->qbuf.len)
            done = c->qbuf.len;
        strbuf_consume(&c->qbuf, done);
        resp_parser_rebase(&c->parser, done > c->parser.pos ? c->parser.pos : done);
    }
    if (client_output_bytes(c) > 0)
        client_want_write(c);
}

/* The peer shut its sending side (read returned 0). Redis answers every request it read
 * before the EOF (they were run and their replies written before the next read); here a reply
 * may still be pending (forwarded upstream, or not yet written), so the connection closes
 * only after what was asked is answered: the forwarded requests are bounded by op_timeout_ms.
 * A client whose pending state only a live peer can end is closed at once, as Redis does:
 * blocked or pinned to a private upstream connection (a blocking pop there would take an
 * element nobody reads), subscribed, or a monitor. */
static void client_peer_closed(struct client *c)
{
    const unsigned stateful = CLIENT_BLOCKED | CLIENT_PUBSUB | CLIENT_MONITOR;
    if ((c->flags & stateful) || c->pin || (!c->slot_head && client_output_bytes(c) == 0))
        client_close(c);
    else
        client_close_after_reply(c);
}

/* Query buffers are lent, not owned, while a client has nothing pending: a client without one
 * borrows the server's spare for a read, and gives it back (or frees it, when a big request
 * grew it) once everything read was complete requests. An idle client thus holds no buffer
 * (ten thousand idle connections would otherwise pin 16 KB each, which malloc keeps resident
 * after they leave) and a busy one allocates nothing per read (freeing the buffer after each
 * request cost a malloc and a free per GET: ~370 instructions at -P 1). Only a client with a
 * partial request, or input left while it is blocked or paused, keeps a buffer of its own.
 * A client whose last request grew its buffer for a big argument (qbuf_grew) gets a buffer of
 * that size for its next read instead (qbuf_hint). Why: a 100 KB SET through a near-cache
 * (read into qbuf: it is forwarded as it came) began in a 16 KB buffer that was then
 * reallocated for the rest, copying what had arrived (16,000 of a forwarded 100 KB SET's
 * 24,000 instructions), and the buffer was freed once emptied, so the next SET did it again. */
static void client_qbuf_borrow(struct client *c)
{
    if (c->qbuf.cap == 0 && c->qbuf_hint) {
        strbuf_reserve(&c->qbuf, c->qbuf_hint);
        return;
    }
    if (c->qbuf.cap == 0 && c->srv->qbuf_spare.cap) {
        c->qbuf = c->srv->qbuf_spare;
        c->srv->qbuf_spare = (struct strbuf){ NULL, 0, 0 };
    }
}

static void client_qbuf_return(struct client *c)
{
    if (c->qbuf.len != 0 || c->qbuf.cap == 0)
        return;
    c->qbuf_hint = c->qbuf_grew ? c->qbuf.cap : 0;
    c->qbuf_grew = false;
    if (c->qbuf.cap <= CLIENT_QBUF_SPARE_MAX && c->srv->qbuf_spare.cap == 0)
        c->srv->qbuf_spare = c->qbuf;
    else
        strbuf_free(&c->qbuf);
    c->qbuf = (struct strbuf){ NULL, 0, 0 };
}

/* Why: a 100 KB SET value was read into the query buffer and then copied into the store (the
 * copy was a quarter of the time of SET 100KB -c 50 -P 16). A large bulk whose bytes have not
 * all arrived is instead read into a string entry (store_string_prepare) keyed by the argument
 * before it: for SET key value (also SETNX, GETSET, SET ... GET, the first pair of MSET)
 * set_value() in cmd_strings.c installs that entry instead of copying; for any other command
 * it is an ordinary argument, freed once the request was handled.
 * Conditions: standalone (a near-cache forwards a request's own bytes, contiguous in qbuf);
 * at most CLIENT_READ_BIG_MAX bytes (what one read into the query buffer could take: a claimed
 * size allocates no more than before); one per request; the query buffer limit counts it. */
static bool client_bigarg_start(struct client *c)
{
    const struct resp_parser *p = &c->parser;
    if (c->srv->nc || c->bigarg || p->external || p->multibulk <= 0 ||
        p->bulklen < CLIENT_BIGARG_MIN || p->bulklen > CLIENT_READ_BIG_MAX || p->argc == 0)
        return false;
    size_t need = (size_t)p->bulklen + 2;
    size_t have = c->qbuf.len - p->pos;
    const struct resp_slice *key = &p->args[p->argc - 1];
    if (have >= need || key->len > CLIENT_BIGARG_KEY_MAX)
        return false;
    c->bigarg = store_string_prepare(c->qbuf.data + key->off, key->len, (size_t)p->bulklen, 2);
    memcpy(store_string_mut(c->bigarg), c->qbuf.data + p->pos, have);
    c->qbuf.len = p->pos; /* what followed the bulk's header is in the entry now */
    c->bigarg_have = have;
    c->bigarg_need = need;
    return true;
}

/* read() returned n <= 0: the peer shut its side (0) or an error; EAGAIN and EINTR mean
 * nothing to read now. True when c is closing (or closes once answered). */
static bool client_read_ended(struct client *c, ssize_t n)
{
    if (n == 0) {
        client_peer_closed(c);
        return true;
    }
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
        return false;
    client_close(c);
    return true;
}

/* n bytes were read (into qbuf or a large argument's entry, already counted there): the
 * statistics, and the query buffer limit. False when c was closed for passing it. */
static bool client_took_input(struct client *c, size_t n)
{
    struct server *srv = c->srv;
    srv->stats.net_input_bytes += (uint64_t)n;
    c->last_active_ms = server_now_ms(srv);
    if (client_input_bytes(c) <= (size_t)srv->cfg.client_query_buffer_limit)
        return true;
    log_warn(&srv->log, "Closing client that reached max query buffer length: id=%llu addr=%s "
             "(qbuf=%zu)", (unsigned long long)c->id, c->addr, client_input_bytes(c));
    client_close(c);
    return false;
}

/* Reads the rest of the large argument into its entry; once complete, the parser takes it
 * as the argument and the request runs when it is complete. */
static void client_read_bigarg(struct client *c)
{
    ssize_t n = read(c->fd, store_string_mut(c->bigarg) + c->bigarg_have,
                     c->bigarg_need - c->bigarg_have);
    if (n <= 0) {
        client_read_ended(c, n);
        return;
    }
    c->bigarg_have += (size_t)n;
    if (!client_took_input(c, (size_t)n))
        return;
    if (c->bigarg_have < c->bigarg_need)
        return;
    resp_parser_bulk_external(&c->parser, store_string_ptr(c->bigarg));
    client_process_input(c);
    client_qbuf_return(c);
}

static void client_read_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    struct client *c = container_of(w, struct client, rio);
    size_t want = CLIENT_READ_CHUNK;
    if ((c->bigarg && c->bigarg_have < c->bigarg_need) || client_bigarg_start(c)) {
        client_read_bigarg(c);
        return;
    }
    client_qbuf_borrow(c);
    if (c->parser.bulklen > 0) {
        /* A big argument is arriving: read it in larger pieces. */
        size_t have = c->qbuf.len - c->parser.pos;
        size_t need = (size_t)c->parser.bulklen + 2;
        if (need > have && need - have > want) {
            want = need - have < CLIENT_READ_BIG_MAX ? need - have : CLIENT_READ_BIG_MAX;
            c->qbuf_grew = true;
        }
    }
    strbuf_reserve(&c->qbuf, want);
    ssize_t n = read(c->fd, c->qbuf.data + c->qbuf.len, want);
    if (n <= 0) {
        if (!client_read_ended(c, n))
            client_qbuf_return(c);
        return;
    }
    c->qbuf.len += (size_t)n;
    if (!client_took_input(c, (size_t)n))
        return;
    client_process_input(c);
    client_qbuf_return(c); /* everything read was complete requests: nothing to keep */
    (void)loop;
    (void)revents;
}

/* ---- output ---- */

int client_write(struct client *c)
{
    struct server *srv = c->srv;
    while (c->out_sent < c->out.len) {
        ssize_t n = write(c->fd, c->out.data + c->out_sent, c->out.len - c->out_sent);
        if (n > 0) {
            c->out_sent += (size_t)n;
            srv->stats.net_output_bytes += (uint64_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        return -1;
    }
    if (c->out_sent == c->out.len) {
        c->out_hint = c->out.len > STRBUF_IDLE_KEEP && c->out.len <= CLIENT_OUT_HINT_MAX
                          ? c->out.len : 0;
        c->out.len = c->out_sent = 0;
        strbuf_shrink_idle(&c->out);
    } else if (c->out_sent > c->out.len / 2) {
        strbuf_consume(&c->out, c->out_sent);
        c->out_sent = 0;
    }
    return 0;
}

/* Why: a 100 KB GET copied its value into c->out, which grew to ~128 KB, was written, and was
 * freed again by strbuf_shrink_idle (a malloc, a free, a copy and fresh pages per reply; the
 * near-cache did the same for its stored replies). Written from the stored bytes, the copy is
 * of what the socket refused only. Invariants: c->out holds nothing and no slot is open, so no
 * earlier reply can be overtaken; the flags below exclude every state in which a reply just
 * written may still be discarded (dispatch_request_done cuts REPLY OFF/SKIP replies off
 * afterwards), is queued rather than sent (MULTI), or must not be sent at all (closing). */
bool client_reply_direct(struct client *c, const struct iovec *iov, int iovcnt, size_t total)
{
    const unsigned unsafe = CLIENT_CLOSE_ASAP | CLIENT_CLOSE_AFTER_REPLY | CLIENT_REPLY_OFF |
                            CLIENT_REPLY_SKIP | CLIENT_MULTI | CLIENT_BLOCKED | CLIENT_MONITOR;
    if (c->out.len != 0 || c->slot_tail || (c->flags & unsafe))
        return false;
    ssize_t n;
    do
        n = writev(c->fd, iov, iovcnt);
    while (n < 0 && errno == EINTR);
    if (n <= 0)
        return false; /* EAGAIN (or an error the flush path will meet): copy it all */
    c->srv->stats.net_output_bytes += (uint64_t)n;
    if ((size_t)n == total)
        return true;
    size_t skip = (size_t)n;
    strbuf_reserve(&c->out, total - skip);
    for (int i = 0; i < iovcnt; i++) {
        if (skip >= iov[i].iov_len) {
            skip -= iov[i].iov_len;
            continue;
        }
        strbuf_append(&c->out, (const char *)iov[i].iov_base + skip, iov[i].iov_len - skip);
        skip = 0;
    }
    client_want_write(c);
    return true;
}

/* The one flush path: writes, then closes, re-arms the write watcher or resumes reading. */
void client_flush(struct client *c)
{
    struct server *srv = c->srv;
    if ((c->flags & CLIENT_CLOSE_ASAP) || client_write(c) < 0) {
        client_free(c);
        return;
    }
    if (c->out.len > c->out_sent) {
        ev_io_start(srv->loop, &c->wio);
        return;
    }
    ev_io_stop(srv->loop, &c->wio);
    if ((c->flags & CLIENT_CLOSE_AFTER_REPLY) && !c->slot_head) {
        client_free(c);
        return;
    }
    if ((c->flags & CLIENT_READ_PAUSED) &&
        client_output_bytes(c) < SERVER_OUTPUT_SOFT_LIMIT / 2 && c->slots < CLIENT_SLOTS_MAX / 2) {
        client_resume_reading(c);
        client_process_input(c);
    }
}

static void client_write_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    struct client *c = container_of(w, struct client, wio);
    (void)loop;
    (void)revents;
    if (!(c->flags & CLIENT_PENDING_WRITE)) /* else the flush path runs it before sleeping */
        client_flush(c);
}
