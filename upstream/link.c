/* One upstream connection (see link.h): the hiredis async context, the DOWN -> CONNECTING ->
 * HANDSHAKE -> UP state machine, backoff, deadlines, health checks, fast failures, held
 * requests, counters, reading replies. Writing (the output buffer, commands, backpressure) is
 * in link_write.c; the subscriber handshake and pub/sub messages are in subscriber.c; the
 * struct is in link_internal.h.
 *
 * Invariants:
 *  - link->ac is non-NULL exactly while the state is CONNECTING, HANDSHAKE or UP, and then
 *    ac->data == link. Dropping a connection first detaches it (link->ac = NULL, ac->data =
 *    NULL), so whatever hiredis calls afterwards for that context (pending reply callbacks with
 *    NULL, the disconnect callback) sees a detached request or context and only frees.
 *  - Every request hiredis holds is in link->fifo, in the order it was written, until hiredis
 *    answers it (it is then the head) or the connection is dropped (it is then settled and
 *    detached: req->link == NULL, and hiredis frees it when it gives it back). (A subscriber's
 *    [P]SUBSCRIBE callbacks are not requests: see subscriber.c.)
 *  - link->held is empty unless hold is on and the state is CONNECTING or HANDSHAKE, or the
 *    link has just gone UP and the state callback is running, or the gate is closed and the
 *    state is not DOWN; held requests are not in hiredis (they own a copy of their command)
 *    and are written in order after that callback (once the gate is open), or completed with
 *    UPSTREAM_ERR_DOWN when the attempt fails or the connection is lost.
 *  - hiredis 0.14 quirks handled here: after a failed connect it frees the context without the
 *    disconnect callback (the connect callback gets REDIS_ERR and every pending callback runs
 *    with NULL); freeing a context is only safe outside hiredis or from inside a reply callback
 *    (hiredis defers it), never from the connect or disconnect callback: no caller code runs
 *    while a context is attached inside those two, and the only redisAsyncFree() calls are from
 *    our timers, from reply callbacks, or from caller code outside hiredis.
 *  - Caller callbacks never run inside upstream_link_send*(); link->depth counts the caller
 *    callbacks running, and destroy refuses to run inside one.
 *  - Requests are written with link_write_command (hiredis's redisAsyncFormattedCommand minus
 *    its look at the command name, which the link already checked: see there), so hiredis
 *    never parses a command we write (0.14's parse read one byte past a one-argument command;
 *    the [P]SUBSCRIBE commands of subscriber.c still go through hiredis's own call).
 *  - Watchers (timer, fifo.timer, fail_idle, flush) are embedded here and stopped before the
 *    free; flush runs only while a context is attached (stopped when the link drops). */
#include "upstream/link.h"
#include "upstream/link_internal.h"

#include "conf/xmalloc.h"

#include <hiredis/adapters/libev.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <hiredis/sds.h>

#include <errno.h>
#include <ev.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* TCP keepalive of upstream sockets: first probe after this much idle time, then one every
 * INTVL seconds, CNT unanswered probes drop the connection (~30 s for a vanished peer). */
#define UPSTREAM_KEEPALIVE_IDLE_S 15
#define UPSTREAM_KEEPALIVE_INTVL_S 5
#define UPSTREAM_KEEPALIVE_CNT 3

/* link_read_cb: a read takes this much (hiredis's own read size), or the rest of the bulk
 * string the reader waits for, up to UPSTREAM_READ_BULK_MAX at once. */
#define UPSTREAM_READ_CHUNK (16 * 1024)
#define UPSTREAM_READ_BULK_MAX (1024 * 1024)
/* An emptied reader buffer with more room than this is freed (hiredis's maxbuf; its default
 * is 16 KB, which regrew the buffer by doubling, copying it, for every 100 KB reply). */
#define UPSTREAM_READER_KEEP_BYTES (256 * 1024)

/* Why a caller's request sits on the fail queue (its kind). */
enum fail_why {
    FAIL_NOT_UP = 0,
    FAIL_FULL,
};

static void link_write_held(struct upstream_link *link);

const char *upstream_state_name(enum upstream_state st)
{
    switch (st) {
    case UPSTREAM_DOWN:
        return "down";
    case UPSTREAM_CONNECTING:
        return "connecting";
    case UPSTREAM_HANDSHAKE:
        return "handshake";
    case UPSTREAM_UP:
        return "up";
    }
    return "unknown";
}

void upstream_link_log(const struct upstream_link *link, int level, const char *fmt, ...)
{
    if (!link->log || level < link->log->level)
        return;
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    log_write(link->log, level, "upstream %s (%s): %s", link->name, link->address, msg);
}

/* Records why the last attempt or connection failed. Logged as a warning when the text changes
 * (a refused upstream retried every few seconds logs once, then at verbose level). */
static void link_set_error(struct upstream_link *link, const char *why)
{
    int level = strcmp(link->last_error, why) != 0 ? LOG_WARNING : LOG_VERBOSE;
    snprintf(link->last_error, sizeof(link->last_error), "%s", why);
    upstream_link_log(link, level, "%s", why);
}

static uint64_t link_random(struct upstream_link *link)
{
    uint64_t x = link->rng;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    link->rng = x;
    return x;
}

/* Arms the timer for the next attempt: a delay in [backoff/2, backoff], then doubles the
 * backoff up to the cap. */
static void link_schedule(struct upstream_link *link)
{
    long long d = link->backoff_ms;
    long long lo = d / 2;
    long long delay = lo + (long long)(link_random(link) % (uint64_t)(d - lo + 1));
    link->backoff_ms = d > link->reconnect_max_ms / 2 ? link->reconnect_max_ms : d * 2;
    ev_timer_stop(link->loop, &link->timer);
    ev_timer_set(&link->timer, (ev_tstamp)delay / 1000.0, 0.);
    ev_timer_start(link->loop, &link->timer);
}

static void link_call_state(struct upstream_link *link, enum upstream_state st)
{
    if (!link->state_cb)
        return;
    link->depth++;
    link->state_cb(link->state_arg, link, st);
    link->depth--;
}

/* A zeroed plain request: recycled from the link's free list when it has one (see
 * link_req_release), else allocated. */
static struct upstream_req *link_req_new(struct upstream_link *link)
{
    struct upstream_req *req = link->free_reqs;
    if (!req)
        return xcalloc(1, sizeof(*req));
    link->free_reqs = req->next;
    link->nfree_reqs--;
    memset(req, 0, sizeof(*req));
    return req;
}

/* Frees req, or keeps it on link's free list. Only plain requests are kept: a held one was
 * allocated with its command copy (req->cmd) and has another size. link is the link req was
 * sent on, alive (NULL when detached: the link may be gone, so req is freed). */
static void link_req_release(struct upstream_link *link, struct upstream_req *req)
{
    if (!link || req->cmd || link->nfree_reqs >= UPSTREAM_LINK_FREE_REQS_MAX) {
        free(req);
        return;
    }
    req->next = link->free_reqs;
    link->free_reqs = req;
    link->nfree_reqs++;
}

/* Settles req with r: counts it and calls its owner's callback unless it was cancelled (then
 * its outcome is swallowed) or is the link's own. Does not free it. */
static void req_settle(struct upstream_link *link, struct upstream_req *req,
                       const struct upstream_reply *r)
{
    unsigned flags = req->flags;
    req->flags |= UPSTREAM_REQ_SETTLED;
    if (flags & UPSTREAM_REQ_SETTLED) {
        if (flags & UPSTREAM_REQ_CANCELLED)
            link->stats.swallowed++;
        return;
    }
    if (flags & UPSTREAM_REQ_INTERNAL)
        return;
    switch (r->status) {
    case UPSTREAM_OK:
        link->stats.replies++;
        if (upstream_value_type(r->value) == UPSTREAM_VALUE_ERROR)
            link->stats.reply_errors++;
        break;
    case UPSTREAM_ERR_DOWN:
        link->stats.failed_down++;
        break;
    case UPSTREAM_ERR_TIMEOUT:
        link->stats.timeouts++;
        break;
    case UPSTREAM_ERR_DISCONNECTED:
        link->stats.disconnected++;
        break;
    }
    link->depth++;
    req->cb(req->owner, r);
    link->depth--;
}

/* Takes the link DOWN: detaches the context, settles every request in flight (TIMEOUT for
 * those past their deadline when how is UPSTREAM_DROP_TIMEOUT, DISCONNECTED otherwise) and then
 * every held request (DOWN, with the same reason), closes the context unless hiredis is already
 * freeing it, schedules the next attempt, and tells the state callback when an UP link was lost.
 * Requests hiredis still holds are freed when it gives them back. Does nothing when already
 * DOWN. Never called from inside upstream_link_send*(). */
void upstream_link_drop(struct upstream_link *link, enum upstream_drop_how how, const char *reason)
{
    enum upstream_state was = link->state;
    if (was == UPSTREAM_DOWN)
        return;
    redisAsyncContext *ac = link->ac;
    link->ac = NULL;
    if (ac)
        ac->data = NULL;
    link->state = UPSTREAM_DOWN;
    ev_timer_stop(link->loop, &link->timer);
    ev_prepare_stop(link->loop, &link->flush);
    upstream_fifo_stop(link->loop, &link->fifo);
    if (was == UPSTREAM_UP) {
        link->stats.disconnects++;
        if (how == UPSTREAM_DROP_TIMEOUT)
            link->stats.recycles++;
    } else {
        link->stats.connect_failures++;
    }
    link_set_error(link, reason);
    char why[UPSTREAM_LINK_ERROR_MAX];
    snprintf(why, sizeof(why), "%s", link->last_error);

    ev_tstamp now = ev_now(link->loop);
    struct upstream_req_list held = upstream_req_list_take(&link->held);
    struct upstream_req_list inflight = upstream_req_list_take(&link->fifo.reqs);
    struct upstream_req *next;
    for (struct upstream_req *req = inflight.head; req; req = next) {
        next = req->next;
        req->next = NULL;
        req->link = NULL;
        struct upstream_reply r = {
            .status = how == UPSTREAM_DROP_TIMEOUT && req->deadline <= now ? UPSTREAM_ERR_TIMEOUT
                                                                   : UPSTREAM_ERR_DISCONNECTED,
            .value = NULL,
            .reason = why,
        };
        req_settle(link, req, &r);
    }
    for (struct upstream_req *req = held.head; req; req = next) {
        next = req->next;
        req->next = NULL;
        req->link = NULL;
        struct upstream_reply r = { .status = UPSTREAM_ERR_DOWN, .value = NULL, .reason = why };
        req_settle(link, req, &r);
        link_req_release(link, req);
    }
    if (ac && how != UPSTREAM_DROP_LOST)
        redisAsyncFree(ac); /* deferred by hiredis when we are inside its reply callback */
    link_schedule(link);
    link_check_drained(link); /* the output buffer went with the connection */
    if (was == UPSTREAM_UP)
        link_call_state(link, UPSTREAM_DOWN);
}

void upstream_link_go_up(struct upstream_link *link)
{
    link->state = UPSTREAM_UP;
    link->backoff_ms = link->reconnect_min_ms;
    link->stats.connects++;
    ev_timer_stop(link->loop, &link->timer);
    if (link->sub) {
        upstream_sub_health_start(link); /* when on: see upstream_link_set_sub_health */
    } else if (link->health_interval > 0.) {
        ev_timer_set(&link->timer, link->health_interval, link->health_interval);
        ev_timer_start(link->loop, &link->timer);
    }
    if (link->sub)
        upstream_link_log(link, LOG_NOTICE, "up (subscriber, client id %lld)",
                          link->sub->client_id);
    else
        upstream_link_log(link, LOG_NOTICE, "up (db %lld)", link->db);
    link_call_state(link, UPSTREAM_UP);
    if (link->state == UPSTREAM_UP && !link->gate) /* the state callback may have reset it */
        link_write_held(link);
}

/* Writes one of the link's own commands. False when hiredis refused it (the context is
 * closing: cannot happen while it is attached). */
bool upstream_link_send_own(struct upstream_link *link, int kind, const struct upstream_buf *cmd)
{
    struct upstream_req *req = link_req_new(link);
    req->flags = UPSTREAM_REQ_INTERNAL;
    req->kind = kind;
    req->link = link;
    if (link_write_command(link->ac, req, cmd->data, cmd->len) != REDIS_OK) {
        link_req_release(link, req);
        return false;
    }
    req->flags |= UPSTREAM_REQ_IN_HIREDIS;
    upstream_fifo_push(link->loop, &link->fifo, req);
    return true;
}

static const char *kind_name(int kind)
{
    switch (kind) {
    case UPSTREAM_KIND_AUTH:
        return "AUTH";
    case UPSTREAM_KIND_SELECT:
        return "SELECT";
    case UPSTREAM_KIND_EXTRA:
        return "handshake command";
    case UPSTREAM_KIND_HANDSHAKE_PING:
    case UPSTREAM_KIND_HEALTH_PING:
        return "PING";
    case UPSTREAM_KIND_CLIENT_ID:
        return "CLIENT ID";
    }
    return "request";
}

/* A reply to one of the link's own commands (from inside hiredis's reply callback). */
static void link_internal_reply(struct upstream_link *link, int kind, const redisReply *reply)
{
    bool error = reply->type == REDIS_REPLY_ERROR;
    if (kind == UPSTREAM_KIND_HEALTH_PING) {
        if (error)
            upstream_link_log(link, LOG_WARNING, "health check: %s", reply->str);
        return;
    }
    if (link->state != UPSTREAM_HANDSHAKE)
        return;
    if (error) {
        char why[UPSTREAM_LINK_ERROR_MAX];
        snprintf(why, sizeof(why), "%s failed: %s", kind_name(kind), reply->str);
        upstream_link_drop(link, UPSTREAM_DROP_RECYCLE, why);
        return;
    }
    if (kind == UPSTREAM_KIND_HANDSHAKE_PING)
        upstream_link_go_up(link);
    else if (kind == UPSTREAM_KIND_CLIENT_ID)
        upstream_sub_client_id_reply(link, reply);
}

/* hiredis's callback for every request we write. privdata is the request. */
void upstream_reply_cb(redisAsyncContext *ac, void *reply, void *privdata)
{
    struct upstream_req *req = privdata;
    struct upstream_link *link = req->link;
    req->flags &= ~UPSTREAM_REQ_IN_HIREDIS;
    if (!link) {
        /* Settled when its connection was dropped or its link destroyed. */
        free(req);
        return;
    }
    if (!reply) {
        /* hiredis is freeing this connection on its own (EOF, I/O or protocol error). */
        if (link->ac != ac)
            abort(); /* an attached request always belongs to the link's current context */
        char why[UPSTREAM_LINK_ERROR_MAX];
        snprintf(why, sizeof(why), "closed: %s",
                 ac->c.errstr[0] ? ac->c.errstr : "connection lost");
        upstream_link_drop(link, UPSTREAM_DROP_LOST, why); /* settles req with the others */
        link_req_release(link, req);
        return;
    }
    if (link->fifo.reqs.head != req)
        abort(); /* replies come in request order */
    upstream_fifo_shift(link->loop, &link->fifo);
    req->link = NULL;
    if ((req->flags & (UPSTREAM_REQ_INTERNAL | UPSTREAM_REQ_SETTLED)) == UPSTREAM_REQ_INTERNAL) {
        req->flags |= UPSTREAM_REQ_SETTLED;
        link_internal_reply(link, req->kind, reply);
    } else {
        struct upstream_reply r = {
            .status = UPSTREAM_OK,
            .value = (const struct upstream_value *)reply,
            .reason = NULL,
        };
        req_settle(link, req, &r);
    }
    link_req_release(link, req);
}

static void upstream_connect_cb(const redisAsyncContext *cac, int status)
{
    redisAsyncContext *ac = (redisAsyncContext *)cac;
    struct upstream_link *link = ac->data;
    if (!link)
        return;
    if (status != REDIS_OK) {
        /* hiredis frees the context when this returns, without the disconnect callback. */
        char why[UPSTREAM_LINK_ERROR_MAX];
        snprintf(why, sizeof(why), "connect: %s",
                 ac->c.errstr[0] ? ac->c.errstr : "connection failed");
        upstream_link_drop(link, UPSTREAM_DROP_LOST, why);
        return;
    }
    link->state = UPSTREAM_HANDSHAKE;
    if (link->sub) {
        upstream_sub_handshake(link);
        return;
    }
    bool ok = true;
    if (link->hs_auth.len)
        ok = ok && upstream_link_send_own(link, UPSTREAM_KIND_AUTH, &link->hs_auth);
    if (link->hs_select.len)
        ok = ok && upstream_link_send_own(link, UPSTREAM_KIND_SELECT, &link->hs_select);
    if (link->hs_extra.len)
        ok = ok && upstream_link_send_own(link, UPSTREAM_KIND_EXTRA, &link->hs_extra);
    ok = ok && upstream_link_send_own(link, UPSTREAM_KIND_HANDSHAKE_PING, &link->hs_ping);
    if (!ok)
        abort(); /* hiredis refuses commands only on a closing context */
}

static void upstream_disconnect_cb(const redisAsyncContext *cac, int status)
{
    (void)status;
    const redisAsyncContext *ac = cac;
    struct upstream_link *link = ac->data;
    if (!link)
        return; /* we dropped it first */
    char why[UPSTREAM_LINK_ERROR_MAX];
    snprintf(why, sizeof(why), "closed: %s",
             ac->c.errstr[0] ? ac->c.errstr : "connection closed");
    upstream_link_drop(link, UPSTREAM_DROP_LOST, why);
}

static void link_install_reader(struct upstream_link *link, redisAsyncContext *ac)
{
    ac->c.reader->fn = &link->reply_fns;
    ac->c.reader->privdata = &link->reply_pool;
    ac->c.reader->maxbuf = UPSTREAM_READER_KEEP_BYTES;
}

#if HIREDIS_MAJOR == 0 && HIREDIS_MINOR == 14
/* Exported by hiredis 0.14.1 (async.c) but not declared in its headers: what
 * redisAsyncHandleRead runs after a read that succeeded. */
void redisProcessCallbacks(redisAsyncContext *ac);

/* The bytes still missing of the bulk string the reader stopped in (its length line complete
 * in the buffer), else 0. Reading exactly those brings nothing after the bulk: hiredis moves
 * the unread rest of its buffer to the front after every reply once 1 KB was consumed, so one
 * large read of many small replies would cost a memmove per reply. */
static size_t reader_bulk_missing(const redisReader *r)
{
    if (r->ridx < 0 || r->rstack[r->ridx].type != REDIS_REPLY_STRING)
        return 0;
    const char *start = r->buf + r->pos, *p = start, *end = r->buf + r->len;
    size_t len = 0;
    while (p < end && *p >= '0' && *p <= '9' && p - start < 18)
        len = len * 10 + (size_t)(*p++ - '0');
    if (p == start || end - p < 2 || p[0] != '\r' || p[1] != '\n')
        return 0;
    size_t total = (size_t)(p + 2 - start) + len + 2, have = r->len - r->pos;
    return total > have ? total - have : 0;
}

/* The read watcher's callback in place of hiredis's (redisAsyncHandleRead). Why: hiredis reads
 * 16 KB into a stack buffer and copies it into its reader's buffer, one loop iteration per
 * 16 KB: a forwarded 100 KB GET took 7 reads, 8 waits for events and a copy of the value
 * (91,000 of its 210,000 instructions). Here the bytes are read straight into the reader's
 * buffer, the rest of a bulk in one read, and hiredis's reply processing runs on them as after
 * its own read (redisBufferRead + redisReaderFeed, which this mirrors: the reader's buffer is
 * an sds, r->len its length). One read per event, as hiredis: a reply callback may free the
 * context. Connecting, and a context or reader in error, go through hiredis's own handler; so
 * do EOF and read errors, with the error set as redisBufferRead sets it (hiredis then
 * disconnects). */
static void link_read_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)loop;
    (void)revents;
    redisLibevEvents *e = w->data;
    redisAsyncContext *ac = e->context;
    redisContext *c = &ac->c;
    redisReader *r = c->reader;
    if (!(c->flags & REDIS_CONNECTED) || c->err || r->err) {
        redisAsyncHandleRead(ac);
        return;
    }
    if (r->len == 0 && r->maxbuf != 0 && sdsavail(r->buf) > r->maxbuf) {
        sds fresh = sdsempty();
        if (fresh) {
            sdsfree(r->buf);
            r->buf = fresh;
            r->pos = 0;
        }
    }
    size_t want = reader_bulk_missing(r);
    want = want < UPSTREAM_READ_CHUNK ? UPSTREAM_READ_CHUNK
                                      : want > UPSTREAM_READ_BULK_MAX ? UPSTREAM_READ_BULK_MAX : want;
    sds grown = sdsMakeRoomFor(r->buf, want);
    if (!grown) {
        redisAsyncHandleRead(ac); /* out of memory: hiredis's own read and copy */
        return;
    }
    r->buf = grown;
    ssize_t n = read(c->fd, r->buf + r->len, want);
    if (n > 0) {
        sdsIncrLen(r->buf, (int)n);
        r->len = sdslen(r->buf);
        if (ac->ev.addRead)
            ac->ev.addRead(ac->ev.data);
        redisProcessCallbacks(ac);
        return;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return;
    c->err = n == 0 ? REDIS_ERR_EOF : REDIS_ERR_IO;
    if (n == 0)
        snprintf(c->errstr, sizeof(c->errstr), "Server closed the connection");
    else
        snprintf(c->errstr, sizeof(c->errstr), "%s", strerror(errno));
    redisAsyncHandleRead(ac); /* c->err: hiredis disconnects */
}

/* The socket's write event, in place of the libev adapter's handler (redisAsyncHandleWrite):
 * the output buffer is written by link_obuf_write (kept, not freed, once written out), the
 * write watcher stopped once it is empty and reads armed, as hiredis's handler does; while
 * connecting, or after a write error (c->err), hiredis's own handler runs (it completes the
 * connection, or drops it). Then a congested link whose buffer drained says so. The link
 * outlives the call even when hiredis drops the connection in it (only callers destroy links,
 * never from inside a link's callback). */
static void link_write_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)loop;
    (void)revents;
    redisLibevEvents *e = w->data;
    redisAsyncContext *ac = e->context;
    redisContext *c = &ac->c;
    struct upstream_link *link = ac->data;
    int done = 0;
    if (!(c->flags & REDIS_CONNECTED) || link_obuf_write(c, &done) != REDIS_OK) {
        redisAsyncHandleWrite(ac); /* connecting, or c->err: hiredis's own handler */
    } else {
        if (done && ac->ev.delWrite)
            ac->ev.delWrite(ac->ev.data);
        if (ac->ev.addRead) /* as hiredis's handler: reads always follow writes */
            ac->ev.addRead(ac->ev.data);
    }
    if (link)
        link_check_drained(link);
}
#endif

/* TCP keepalive on an upstream socket, so that a peer that vanished without a FIN or RST (a
 * host gone, a dropped NAT entry) is noticed by the kernel even on a link with nothing to send
 * and health checks off. Best effort: a failure leaves the socket as it was (hiredis's own
 * redisEnableKeepAlive would mark the context failed instead). */
static void link_keepalive(int fd)
{
    int on = 1, idle = UPSTREAM_KEEPALIVE_IDLE_S, intvl = UPSTREAM_KEEPALIVE_INTVL_S,
        cnt = UPSTREAM_KEEPALIVE_CNT;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof(on)) != 0)
        return;
    (void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
    (void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof(intvl));
    (void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt));
}

/* Starts a connection attempt (from DOWN). */
static void link_connect(struct upstream_link *link)
{
    link->stats.connect_attempts++;
    if (link->attempted)
        link->stats.reconnect_attempts++;
    link->attempted = true;
    redisAsyncContext *ac = link->unixsocket ? redisAsyncConnectUnix(link->unixsocket)
                                             : redisAsyncConnect(link->host, link->port);
    if (!ac || ac->err) {
        char why[UPSTREAM_LINK_ERROR_MAX];
        snprintf(why, sizeof(why), "connect: %s", ac ? ac->c.errstr : "out of memory");
        if (ac)
            redisAsyncFree(ac);
        link->stats.connect_failures++;
        link_set_error(link, why);
        link_schedule(link);
        return;
    }
    link_install_reader(link, ac);
    if (!link->unixsocket)
        link_keepalive(ac->c.fd);
    ac->data = link;
    if (redisLibevAttach(link->loop, ac) != REDIS_OK)
        abort(); /* only fails when already attached */
#if HIREDIS_MAJOR == 0 && HIREDIS_MINOR == 14
    ev_set_cb(&((redisLibevEvents *)ac->ev.data)->rev, link_read_cb);
    ev_set_cb(&((redisLibevEvents *)ac->ev.data)->wev, link_write_cb);
#endif
    link->ac = ac;
    link->state = UPSTREAM_CONNECTING;
    redisAsyncSetConnectCallback(ac, upstream_connect_cb);
    redisAsyncSetDisconnectCallback(ac, upstream_disconnect_cb);
    ev_timer_stop(link->loop, &link->timer);
    ev_timer_set(&link->timer, link->connect_timeout, 0.);
    ev_timer_start(link->loop, &link->timer);
}

static void upstream_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    struct upstream_link *link = w->data;
    char why[UPSTREAM_LINK_ERROR_MAX];
    switch (link->state) {
    case UPSTREAM_DOWN:
        link_connect(link);
        break;
    case UPSTREAM_CONNECTING:
    case UPSTREAM_HANDSHAKE:
        snprintf(why, sizeof(why), "connect timeout (%.0f ms, %s)",
                 link->connect_timeout * 1000.0, upstream_state_name(link->state));
        upstream_link_drop(link, UPSTREAM_DROP_RECYCLE, why);
        break;
    case UPSTREAM_UP:
        if (link->sub) {
            upstream_sub_health_tick(link);
        } else if (link->fifo.reqs.count == 0) {
            link->stats.health_checks++;
            upstream_link_send_own(link, UPSTREAM_KIND_HEALTH_PING, &link->hs_ping);
        }
        break;
    }
}

static void upstream_deadline_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)revents;
    struct upstream_link *link = w->data;
    if (!upstream_fifo_expired(loop, &link->fifo))
        return;
    char why[UPSTREAM_LINK_ERROR_MAX];
    snprintf(why, sizeof(why), "timeout: no reply within %.0f ms",
             link->fifo.reqs.head->timeout * 1000.0);
    upstream_link_drop(link, UPSTREAM_DROP_TIMEOUT, why);
}

static const char *link_down_reason(const struct upstream_link *link)
{
    if (link->last_error[0])
        return link->last_error;
    return link->state == UPSTREAM_DOWN ? "not connected" : "connecting";
}

/* Completes the fail queue's requests with UPSTREAM_ERR_DOWN (a snapshot: requests failed by
 * these callbacks are fed again and completed in the same loop iteration). */
static void upstream_fail_cb(struct ev_loop *loop, ev_idle *w, int revents)
{
    (void)revents;
    struct upstream_link *link = w->data;
    ev_idle_stop(loop, w);
    struct upstream_req_list failed = upstream_req_list_take(&link->failq);
    char why[UPSTREAM_LINK_ERROR_MAX];
    snprintf(why, sizeof(why), "%s", link_down_reason(link));
    struct upstream_req *next;
    for (struct upstream_req *req = failed.head; req; req = next) {
        next = req->next;
        req->next = NULL;
        req->link = NULL;
        struct upstream_reply r = {
            .status = UPSTREAM_ERR_DOWN,
            .value = NULL,
            .reason = req->kind == FAIL_FULL ? "too many requests in flight" : why,
        };
        req_settle(link, req, &r);
        link_req_release(link, req);
    }
}

static void link_fail_later(struct upstream_link *link, struct upstream_req *req, int why)
{
    req->flags |= UPSTREAM_REQ_FAILQ;
    req->kind = why;
    upstream_req_list_push(&link->failq, req);
    if (!ev_is_active(&link->fail_idle))
        ev_idle_start(link->loop, &link->fail_idle);
    ev_feed_event(link->loop, &link->fail_idle, EV_IDLE);
}

/* A request held until the link is UP: allocated with a copy of its command (and the '\0'
 * hiredis may read past a one-argument command). */
static struct upstream_req *link_hold(struct upstream_link *link, const char *cmd, size_t len)
{
    struct upstream_req *req = xcalloc(1, sizeof(*req) + len + 1);
    char *copy = (char *)(req + 1);
    memcpy(copy, cmd, len);
    copy[len] = '\0';
    req->cmd = copy;
    req->cmd_len = len;
    req->flags = UPSTREAM_REQ_HELD;
    upstream_req_list_push(&link->held, req);
    return req;
}

/* timeout: seconds, 0 = no deadline. */
static struct upstream_req *link_submit(struct upstream_link *link, const char *cmd, size_t len,
                                        ev_tstamp timeout,
                                        void (*cb)(void *owner, const struct upstream_reply *r),
                                        void *owner)
{
    bool full = link->fifo.reqs.count + link->held.count >= UPSTREAM_LINK_INFLIGHT_MAX;
    bool attempt = link->state == UPSTREAM_CONNECTING || link->state == UPSTREAM_HANDSHAKE;
    bool gated = link->gate && link->state != UPSTREAM_DOWN;
    struct upstream_req *req = ((link->hold && attempt) || gated) && !full
                                   ? link_hold(link, cmd, len)
                                   : link_req_new(link);
    req->cb = cb;
    req->owner = owner;
    req->link = link;
    req->timeout = timeout;
    if (req->flags & UPSTREAM_REQ_HELD)
        return req;
    if (link->state != UPSTREAM_UP) {
        link_fail_later(link, req, FAIL_NOT_UP);
        return req;
    }
    if (full) {
        link_fail_later(link, req, FAIL_FULL);
        return req;
    }
    if (link_write_command(link->ac, req, cmd, len) != REDIS_OK) {
        link_fail_later(link, req, FAIL_NOT_UP);
        return req;
    }
    req->flags |= UPSTREAM_REQ_IN_HIREDIS;
    upstream_fifo_push_timeout(link->loop, &link->fifo, req, timeout);
    link->stats.requests++;
    return req;
}

/* Writes the held requests in send order (the link just went UP and its state callback ran).
 * One cancelled while held is dropped unsent. */
static void link_write_held(struct upstream_link *link)
{
    struct upstream_req_list held = upstream_req_list_take(&link->held);
    struct upstream_req *next;
    for (struct upstream_req *req = held.head; req; req = next) {
        next = req->next;
        req->next = NULL;
        req->flags &= ~UPSTREAM_REQ_HELD;
        if (req->flags & UPSTREAM_REQ_SETTLED) {
            link->stats.swallowed++;
            link_req_release(link, req);
            continue;
        }
        if (link_write_command(link->ac, req, req->cmd, req->cmd_len) != REDIS_OK) {
            link_fail_later(link, req, FAIL_NOT_UP);
            continue;
        }
        req->flags |= UPSTREAM_REQ_IN_HIREDIS;
        upstream_fifo_push_timeout(link->loop, &link->fifo, req, req->timeout);
        link->stats.requests++;
    }
}

struct upstream_req *upstream_link_send(struct upstream_link *link, const char *cmd, size_t len,
                                        void (*cb)(void *owner, const struct upstream_reply *r),
                                        void *owner)
{
    size_t argc = cb && !link->sub ? upstream_command_argc(cmd, len) : 0;
    if (argc == 0)
        return NULL;
    return link_submit(link, cmd, len, link->fifo.timeout, cb, owner);
}

struct upstream_req *upstream_link_send_timeout(struct upstream_link *link, const char *cmd,
                                                size_t len, long long timeout_ms,
                                                void (*cb)(void *owner,
                                                           const struct upstream_reply *r),
                                                void *owner)
{
    size_t argc = cb && !link->sub && timeout_ms >= 0 ? upstream_command_argc(cmd, len) : 0;
    if (argc == 0)
        return NULL;
    return link_submit(link, cmd, len, (ev_tstamp)timeout_ms / 1000.0, cb, owner);
}

struct upstream_req *upstream_link_send_parsed(struct upstream_link *link, const char *cmd,
                                               size_t len, size_t argc, const char *name,
                                               size_t namelen, long long timeout_ms,
                                               void (*cb)(void *owner,
                                                          const struct upstream_reply *r),
                                               void *owner)
{
    if (argc == 0 || !cb || link->sub || upstream_command_special(name, namelen))
        return NULL;
    ev_tstamp timeout = timeout_ms < 0 ? link->fifo.timeout : (ev_tstamp)timeout_ms / 1000.0;
    return link_submit(link, cmd, len, timeout, cb, owner);
}

struct upstream_req *upstream_link_send_argv(struct upstream_link *link, int argc,
                                             const char *const *argv, const size_t *argvlen,
                                             void (*cb)(void *owner,
                                                        const struct upstream_reply *r),
                                             void *owner)
{
    if (argc < 1 || link->sub)
        return NULL;
    link->scratch.len = 0;
    upstream_command_format(&link->scratch, argc, argv, argvlen);
    return upstream_link_send(link, link->scratch.data, link->scratch.len, cb, owner);
}

void upstream_link_reset(struct upstream_link *link, const char *reason)
{
    if (link->state == UPSTREAM_DOWN)
        return;
    char why[UPSTREAM_LINK_ERROR_MAX];
    snprintf(why, sizeof(why), "reset: %s", reason ? reason : "requested");
    upstream_link_drop(link, UPSTREAM_DROP_RECYCLE, why);
}

static void format_strs(struct upstream_buf *b, int argc, const char *const *argv)
{
    size_t lens[3];
    for (int i = 0; i < argc; i++)
        lens[i] = strlen(argv[i]);
    b->len = 0;
    upstream_command_format(b, argc, argv, lens);
}

static char *str_or_null(const char *s)
{
    return s && s[0] ? xstrdup(s) : NULL;
}

struct upstream_link *upstream_link_new(struct ev_loop *loop, const struct config_upstream *cfg,
                                        const struct logger *log, const char *name)
{
    struct upstream_link *link = xcalloc(1, sizeof(*link));
    link->loop = loop;
    link->log = log;
    link->name = xstrdup(name ? name : "link");
    link->unixsocket = str_or_null(cfg->unixsocket);
    link->host = link->unixsocket ? NULL : xstrdup(cfg->host && cfg->host[0] ? cfg->host
                                                                              : "127.0.0.1");
    link->port = (int)cfg->port;
    if (link->unixsocket) {
        link->address = xstrdup(link->unixsocket);
    } else {
        size_t n = strlen(link->host) + 16;
        link->address = xmalloc(n);
        snprintf(link->address, n, "%s:%d", link->host, link->port);
    }
    link->db = cfg->db;
    link->connect_timeout = (ev_tstamp)cfg->connect_timeout_ms / 1000.0;
    link->op_timeout_ms = cfg->op_timeout_ms;
    link->reconnect_min_ms = cfg->reconnect_min_ms > 0 ? cfg->reconnect_min_ms : 1;
    link->reconnect_max_ms = cfg->reconnect_max_ms > link->reconnect_min_ms
                                 ? cfg->reconnect_max_ms
                                 : link->reconnect_min_ms;
    link->backoff_ms = link->reconnect_min_ms;
    link->health_interval = (ev_tstamp)cfg->health_check_interval_ms / 1000.0;

    const char *user = cfg->username ? cfg->username : "";
    const char *pass = cfg->password ? cfg->password : "";
    if (user[0]) {
        const char *argv[] = { "AUTH", user, pass };
        format_strs(&link->hs_auth, 3, argv);
    } else if (pass[0]) {
        const char *argv[] = { "AUTH", pass };
        format_strs(&link->hs_auth, 2, argv);
    }
    if (cfg->db != 0) {
        char db[32];
        snprintf(db, sizeof(db), "%lld", cfg->db);
        const char *argv[] = { "SELECT", db };
        format_strs(&link->hs_select, 2, argv);
    }
    const char *ping[] = { "PING" };
    format_strs(&link->hs_ping, 1, ping);

    upstream_reply_functions(&link->reply_fns);
    upstream_fifo_init(&link->fifo, (ev_tstamp)cfg->op_timeout_ms / 1000.0, upstream_deadline_cb,
                       link);
    ev_idle_init(&link->fail_idle, upstream_fail_cb);
    link->fail_idle.data = link;
    ev_prepare_init(&link->flush, link_flush_cb);
    link->flush.data = link;
    ev_timer_init(&link->timer, upstream_timer_cb, 0., 0.);
    link->timer.data = link;
    link->rng = ((uint64_t)(uintptr_t)link ^ (uint64_t)(ev_time() * 1e6)) | 1u;
    return link;
}

void upstream_link_start(struct upstream_link *link)
{
    link_connect(link);
}

struct upstream_link *upstream_link_create(struct ev_loop *loop, const struct config_upstream *cfg,
                                           const struct logger *log, const char *name)
{
    struct upstream_link *link = upstream_link_new(loop, cfg, log, name);
    link_connect(link);
    return link;
}

void upstream_link_destroy(struct upstream_link *link)
{
    if (!link)
        return;
    redisAsyncContext *ac = link->ac;
    if (link->depth || (ac && (ac->c.flags & REDIS_IN_CALLBACK)))
        abort(); /* destroy from inside a callback of this link: see link.h */
    ev_timer_stop(link->loop, &link->timer);
    ev_prepare_stop(link->loop, &link->flush);
    upstream_fifo_stop(link->loop, &link->fifo);
    ev_idle_stop(link->loop, &link->fail_idle);

    /* Release pending requests without callbacks: hiredis frees those it holds (below). */
    struct upstream_req_list inflight = upstream_req_list_take(&link->fifo.reqs);
    for (struct upstream_req *req = inflight.head; req; req = req->next) {
        req->link = NULL;
        req->flags |= UPSTREAM_REQ_SETTLED;
    }
    struct upstream_req_list failed = upstream_req_list_take(&link->failq);
    struct upstream_req *next;
    for (struct upstream_req *req = failed.head; req; req = next) {
        next = req->next;
        free(req);
    }
    struct upstream_req_list held = upstream_req_list_take(&link->held);
    for (struct upstream_req *req = held.head; req; req = next) {
        next = req->next;
        free(req);
    }
    link->ac = NULL;
    if (ac) {
        ac->data = NULL;
        redisAsyncFree(ac);
    }
    upstream_buf_free(&link->hs_auth);
    upstream_buf_free(&link->hs_select);
    upstream_buf_free(&link->hs_extra);
    upstream_buf_free(&link->hs_ping);
    upstream_buf_free(&link->scratch);
    upstream_reply_pool_free(&link->reply_pool); /* after the context: its replies are freed */
    while (link->free_reqs) {
        struct upstream_req *req = link->free_reqs;
        link->free_reqs = req->next;
        free(req);
    }
    upstream_sub_free(link->sub);
    free(link->name);
    free(link->address);
    free(link->host);
    free(link->unixsocket);
    free(link);
}

void upstream_link_set_handshake(struct upstream_link *link, int argc, const char *const *argv,
                                 const size_t *argvlen)
{
    link->hs_extra.len = 0;
    if (argc > 0)
        upstream_command_format(&link->hs_extra, argc, argv, argvlen);
}

void upstream_link_set_state_cb(struct upstream_link *link,
                                void (*cb)(void *arg, struct upstream_link *link,
                                           enum upstream_state state),
                                void *arg)
{
    link->state_cb = cb;
    link->state_arg = arg;
}

enum upstream_state upstream_link_state(const struct upstream_link *link)
{
    return link->state;
}

const struct upstream_stats *upstream_link_stats(const struct upstream_link *link)
{
    return &link->stats;
}

size_t upstream_link_in_flight(const struct upstream_link *link)
{
    return link->fifo.reqs.count + link->held.count;
}

void upstream_link_set_hold(struct upstream_link *link, bool hold)
{
    link->hold = hold && !link->sub;
}

void upstream_link_set_gate(struct upstream_link *link, bool closed)
{
    if (link->sub)
        return;
    link->gate = closed;
    if (!closed && link->state == UPSTREAM_UP && link->held.count)
        link_write_held(link);
}

const char *upstream_link_last_error(const struct upstream_link *link)
{
    return link->last_error;
}

long long upstream_link_backoff_ms(const struct upstream_link *link)
{
    return link->backoff_ms;
}

const char *upstream_link_name(const struct upstream_link *link)
{
    return link->name;
}

const char *upstream_link_address(const struct upstream_link *link)
{
    return link->address;
}
