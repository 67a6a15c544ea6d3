/* Writing to a link's connection (see link_internal.h): the output buffer hiredis keeps for the
 * context, written before the loop polls (link_flush_cb) and kept, not freed, once written out
 * (link_obuf_write); long commands written from the caller's bytes (link_write_direct); commands
 * appended without hiredis re-reading them (link_write_command); and backpressure (a congested
 * link's drain callback). The rest of the link (state machine, requests, replies) is link.c.
 * The hiredis 0.14.1 internals relied on are named where used; with another hiredis, hiredis's
 * own calls are used and a link is never congested. */
#include "upstream/link.h"
#include "upstream/link_internal.h"

#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <hiredis/sds.h>

#include <errno.h>
#include <ev.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

/* An output buffer written out keeps its allocation up to this size (link_obuf_write). */
#define UPSTREAM_OBUF_KEEP_BYTES (1024 * 1024)

/* A link's output buffer is written at once when it holds this much (link_write_command). */
#define UPSTREAM_EAGER_WRITE_BYTES (64 * 1024)
/* A command at least this long is written from the caller's bytes rather than copied into the
 * output buffer first (link_write_direct); only what the socket does not take is copied. */
#define UPSTREAM_DIRECT_WRITE_BYTES (16 * 1024)

/* hiredis's redisBufferWrite, except that an output buffer written out is emptied, not freed
 * (up to UPSTREAM_OBUF_KEEP_BYTES of it). Why: hiredis freed it after every full write and
 * the next batch grew a new one by reallocation; past the mmap threshold each was a fresh
 * mapping written page by page (2.5 page faults and a copy per forwarded 100 KB SET at -c 50
 * -P 16). A write error is left in c->err as hiredis leaves it (its handler then drops the
 * connection). *done: the buffer is empty. */
int link_obuf_write(redisContext *c, int *done)
{
#if HIREDIS_MAJOR == 0 && HIREDIS_MINOR == 14
    if (c->err)
        return REDIS_ERR;
    size_t len = sdslen(c->obuf);
    if (len > 0) {
        ssize_t n = send(c->fd, c->obuf, len, MSG_NOSIGNAL);
        if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
            c->err = REDIS_ERR_IO;
            snprintf(c->errstr, sizeof(c->errstr), "%s", strerror(errno));
            return REDIS_ERR;
        }
        if (n == (ssize_t)len && sdsalloc(c->obuf) <= UPSTREAM_OBUF_KEEP_BYTES) {
            sdsclear(c->obuf);
        } else if (n == (ssize_t)len) {
            sds fresh = sdsempty();
            if (fresh) {
                sdsfree(c->obuf);
                c->obuf = fresh;
            } else {
                sdsclear(c->obuf);
            }
        } else if (n > 0) {
            sdsrange(c->obuf, n, -1);
        }
    }
    *done = sdslen(c->obuf) == 0;
    return REDIS_OK;
#else
    return redisBufferWrite(c, done);
#endif
}

/* The loop is about to wait for events: what the requests of this iteration left in the output
 * buffer is written now. Why: hiredis writes at the socket's write event, so a request armed
 * the write watcher (an epoll_ctl), waited for the next iteration's poll to report the socket
 * writable, and disarmed it once written (another epoll_ctl): two system calls and a loop
 * iteration per request at -c 1, on the request's way to the upstream. Every client's request
 * of the iteration still goes out in one write. Written in full, the write watcher is stopped
 * again before libev applies watcher changes to epoll, so none is made; written in part, or
 * failed (c->err), it stays armed and the write event's handler (link_write_cb) carries on (or
 * hiredis's disconnects). Either way a congested link's drain is checked here too. */
void link_flush_cb(struct ev_loop *loop, ev_prepare *w, int revents)
{
    (void)revents;
    struct upstream_link *link = w->data;
    ev_prepare_stop(loop, w);
    redisAsyncContext *ac = link->ac;
    if (!ac)
        return; /* dropped: the drop said whether it drained */
    redisContext *c = &ac->c;
    if ((c->flags & REDIS_CONNECTED) && !c->err && sdslen(c->obuf) > 0) {
        int done = 0;
        if (link_obuf_write(c, &done) == REDIS_OK && done && ac->ev.delWrite)
            ac->ev.delWrite(ac->ev.data);
    }
    link_check_drained(link); /* also after the writes made inside this iteration's sends */
}

bool upstream_link_congested(struct upstream_link *link)
{
#if HIREDIS_MAJOR == 0 && HIREDIS_MINOR == 14
    size_t len = link->ac ? sdslen(link->ac->c.obuf) : 0;
    if (len >= UPSTREAM_BACKLOG_HIGH)
        link->congested = true;
    /* Over the low mark the buffer is not empty, so a write (and the drain check after it)
     * is sure to come; at or under it, one may not, and the caller need not wait. */
    return link->congested && len > UPSTREAM_BACKLOG_LOW;
#else
    (void)link;
    return false;
#endif
}

size_t upstream_link_output_bytes(const struct upstream_link *link)
{
    return link->ac ? sdslen(link->ac->c.obuf) : 0;
}

void upstream_link_set_drain_cb(struct upstream_link *link,
                                void (*cb)(void *arg, struct upstream_link *link), void *arg)
{
    link->drain_cb = cb;
    link->drain_arg = arg;
}

/* After the output buffer was written (or dropped): the drain callback a congested link owes. */
void link_check_drained(struct upstream_link *link)
{
    if (!link->congested || (link->ac && sdslen(link->ac->c.obuf) > UPSTREAM_BACKLOG_LOW))
        return;
    link->congested = false;
    if (link->drain_cb) {
        link->depth++;
        link->drain_cb(link->drain_arg, link);
        link->depth--;
    }
}

#if HIREDIS_MAJOR == 0 && HIREDIS_MINOR == 14
/* Writes what the socket takes of a long command now, from the caller's bytes: nothing may go
 * before it, so hiredis's output buffer is written first and must have emptied. Returns the
 * bytes written (0: all of it is left to the buffer). A failed write is not acted on here:
 * hiredis's own write meets the same error at the write event and drops the connection.
 * A 100 KB SET was copied into the buffer and the buffer grown by reallocation, two copies of
 * the value the socket did not need (93% of a forwarded 100 KB SET's instructions). */
static size_t link_write_direct(redisContext *c, const char *cmd, size_t len)
{
    if (sdslen(c->obuf) > 0) {
        int done = 0;
        if (link_obuf_write(c, &done) != REDIS_OK || sdslen(c->obuf) > 0)
            return 0;
    }
    ssize_t n = send(c->fd, cmd, len, MSG_NOSIGNAL);
    return n > 0 ? (size_t)n : 0;
}

/* hiredis starts a new output buffer after writing one out, then doubles it as requests are
 * appended, copying it each time (~2,000 instructions per forwarded MSET of 10 x 64 B at
 * -P 16): the new buffer gets room for what the previous one held at most (up to the eager
 * write size) at once. */
static void link_obuf_presize(struct upstream_link *link, redisContext *c)
{
    if (sdslen(c->obuf) == 0) {
        size_t want = link->obuf_peak;
        link->obuf_peak = 0;
        if (want > sdsavail(c->obuf)) {
            sds grown = sdsMakeRoomFor(c->obuf, want);
            if (grown)
                c->obuf = grown;
        }
    }
}
#endif

/* Writes one command and registers upstream_reply_cb(req) for its reply: what hiredis 0.14's
 * redisAsyncFormattedCommand does for any command but [P]SUBSCRIBE, [P]UNSUBSCRIBE and MONITOR
 * (upstream_command_special: refused before they get here; subscriber.c's go through hiredis),
 * without re-reading the command's name (three strncasecmp, a strtol and two strchr per
 * request, about 300 instructions). The same steps, through hiredis's public API and structs
 * (async.h, hiredis.h): refuse a context that is closing, append the bytes to the output
 * buffer (redisAppendFormattedCommand), append a callback to ac->replies (malloc'd: hiredis
 * frees it with free() when it shifts it, as its own), and ask the event loop for a write.
 * Beyond hiredis: a long command is sent from the caller's bytes (link_write_direct), the
 * buffer of a new batch is sized at once (link_obuf_presize), and the batch is written before
 * the loop polls (link_flush_cb) rather than at the next write event. */
int link_write_command(redisAsyncContext *ac, struct upstream_req *req, const char *cmd,
                              size_t len)
{
#if HIREDIS_MAJOR != 0 || HIREDIS_MINOR != 14
    /* Another hiredis: its own call (the steps below mirror 0.14.1's internals). */
    return redisAsyncFormattedCommand(ac, upstream_reply_cb, req, cmd, len);
#else
    redisContext *c = &ac->c;
    struct upstream_link *link = ac->data;
    if (c->flags & (REDIS_DISCONNECTING | REDIS_FREEING))
        return REDIS_ERR;
    redisCallback *cb = malloc(sizeof(*cb));
    if (!cb)
        return REDIS_ERR;
    size_t sent = 0;
    if (len >= UPSTREAM_DIRECT_WRITE_BYTES && (c->flags & REDIS_CONNECTED))
        sent = link_write_direct(c, cmd, len);
    else if (link)
        link_obuf_presize(link, c);
    if (sent < len && redisAppendFormattedCommand(c, cmd + sent, len - sent) != REDIS_OK) {
        free(cb);
        if (sent > 0) { /* the upstream has part of it: this connection cannot carry more */
            c->err = REDIS_ERR_OOM;
            snprintf(c->errstr, sizeof(c->errstr), "out of memory");
            if (ac->ev.addWrite)
                ac->ev.addWrite(ac->ev.data); /* hiredis's write handler drops it */
        }
        return REDIS_ERR;
    }
    if (link && (c->flags & REDIS_CONNECTED) && !ev_is_active(&link->flush))
        ev_prepare_start(link->loop, &link->flush);
    if (link && sdslen(c->obuf) > link->obuf_peak)
        link->obuf_peak = sdslen(c->obuf) < UPSTREAM_EAGER_WRITE_BYTES ? sdslen(c->obuf)
                                                                     : UPSTREAM_EAGER_WRITE_BYTES;
    cb->next = NULL;
    cb->fn = upstream_reply_cb;
    cb->pending_subs = 1;
    cb->privdata = req;
    if (ac->replies.tail)
        ac->replies.tail->next = cb;
    else
        ac->replies.head = cb;
    ac->replies.tail = cb;
    if (ac->ev.addWrite)
        ac->ev.addWrite(ac->ev.data);
    if ((c->flags & REDIS_CONNECTED) && sdslen(c->obuf) >= UPSTREAM_EAGER_WRITE_BYTES) {
        /* Written now rather than at the loop's write event: the buffer of every request
         * queued in one loop iteration (50 clients' pipelines of 100 KB SETs: tens of MB) is
         * otherwise grown by reallocation, then written in pieces, each partial write moving
         * the rest to the front (sdsrange). An error is left in c->err: hiredis's own write
         * handler meets it at the write event and drops the connection there, so no callback
         * runs inside this call. */
        int done;
        (void)link_obuf_write(c, &done);
    }
    return REDIS_OK;
#endif
}
