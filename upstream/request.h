/* Upstream requests: what a caller gets back from upstream_link_send*(), its completion, its
 * cancellation, and the FIFO of in-flight requests with its one deadline timer.
 *
 * Ownership: a request belongs to the upstream layer. hiredis gets the request as its callback
 * data (never a caller's object); the caller's owner pointer is only passed back to the caller's
 * callback. A request is freed when both are true: its completion is settled (the callback ran,
 * or it was cancelled) and hiredis has given it back (called its reply callback, possibly with
 * NULL while freeing a connection), or hiredis never had it.
 *
 * The FIFO: requests are written to one connection in order and Redis answers in order, so the
 * reply hiredis hands back is always for the head, and only the head's deadline is checked (a
 * request behind a slow or blocked head waits for it). When every request has the FIFO's own
 * timeout, the head is also the first to expire: one ev_timer armed for some deadline at or
 * before the head's (re-armed lazily when it fires) covers them all. A request may also carry a
 * timeout of its own, or none (upstream_fifo_push_timeout: blocking commands): the timer is then
 * re-armed for the new head when the head changes (upstream_fifo_shift), and stopped while the
 * head has no deadline. A request that becomes the head behind one that was allowed to take
 * longer than its own deadline (e.g. a GET pipelined behind a BLPOP) gets its own full timeout
 * again from the moment it becomes the head: it could not have been answered earlier. */
#ifndef UPSTREAM_REQUEST_H
#define UPSTREAM_REQUEST_H

#include "upstream/resp.h"

#include <ev.h>
#include <stdbool.h>
#include <stddef.h>

enum upstream_status {
    UPSTREAM_OK = 0,           /* the upstream answered (the answer may be an error reply) */
    UPSTREAM_ERR_DOWN,         /* not sent: the link is not up, or its in-flight queue is full */
    UPSTREAM_ERR_TIMEOUT,      /* sent, no answer within op_timeout_ms; the link was recycled */
    UPSTREAM_ERR_DISCONNECTED, /* sent, the connection was lost (or recycled) before the answer */
};

/* "ok", "down", "timeout", "disconnected". */
const char *upstream_status_name(enum upstream_status st);

/* What a completion callback receives; borrowed, valid only during the callback. */
struct upstream_reply {
    enum upstream_status status;
    const struct upstream_value *value; /* UPSTREAM_OK: the parsed reply; NULL otherwise */
    const char *reason;                 /* otherwise: one line saying why, e.g.
                                           "connect: Connection refused"; NULL when OK */
};

struct upstream_link;

/* Request flags (upstream/ internal). */
#define UPSTREAM_REQ_IN_HIREDIS 0x01u /* hiredis holds it and will call its reply callback */
#define UPSTREAM_REQ_SETTLED 0x02u    /* its callback ran or never will */
#define UPSTREAM_REQ_CANCELLED 0x04u  /* the owner went away: never call back */
#define UPSTREAM_REQ_INTERNAL 0x08u   /* the link's own (handshake, health check): no callback */
#define UPSTREAM_REQ_FAILQ 0x10u      /* waiting on the link's fail queue to get ERR_DOWN */
#define UPSTREAM_REQ_HELD 0x20u       /* held until its link is up (cmd points after the struct) */

/* The layout is upstream/ internal; callers hold pointers only. */
struct upstream_req {
    struct upstream_req *next;     /* in the link's FIFO or fail queue */
    struct upstream_link *link;    /* the link whose FIFO or fail queue holds it; NULL after */
    void (*cb)(void *owner, const struct upstream_reply *r);
    void *owner;
    ev_tstamp deadline;            /* in the FIFO: when it times out (ev_now based); INFINITY
                                      when it has no deadline */
    unsigned flags;                /* UPSTREAM_REQ_* */
    int kind;                      /* internal requests: what the link sent it for */
    ev_tstamp timeout;             /* its own timeout in seconds; 0 = no deadline */
    const char *cmd;               /* UPSTREAM_REQ_HELD: a copy of the command (cmd_len bytes
                                      and a '\0'), allocated with the request; NULL otherwise */
    size_t cmd_len;
};

/* The owner went away: req's callback will never be called. req must be a request whose
 * callback has not run yet (from send until the callback); after this call the handle is dead.
 * The request itself lives on until hiredis gives it back (its reply is swallowed and counted in
 * the link's stats), so the connection's reply order is kept. O(1); safe anywhere, including
 * inside other completion callbacks. */
void upstream_req_cancel(struct upstream_req *req);

/* ---- upstream/ internal: lists and the FIFO ---------------------------------------------- */

struct upstream_req_list {
    struct upstream_req *head, *tail;
    size_t count;
};

void upstream_req_list_push(struct upstream_req_list *l, struct upstream_req *req);
struct upstream_req *upstream_req_list_pop(struct upstream_req_list *l);
/* Moves every request of l into a returned list; l is left empty. */
struct upstream_req_list upstream_req_list_take(struct upstream_req_list *l);

struct upstream_fifo {
    struct upstream_req_list reqs;
    ev_timer timer;       /* active while the head has a deadline (and possibly after the FIFO
                             emptied, until it fires); when active, fires at or before the
                             head's deadline */
    ev_tstamp timeout;    /* seconds: the timeout of upstream_fifo_push's requests */
    ev_tstamp armed;      /* while the timer is active: when it fires (ev_now based) */
};

/* cb is the timer's callback, data its data pointer. */
void upstream_fifo_init(struct upstream_fifo *f, ev_tstamp timeout,
                        void (*cb)(struct ev_loop *loop, ev_timer *w, int revents), void *data);
/* Appends req with the FIFO's timeout: deadline now + timeout; arms the timer if it is idle. */
void upstream_fifo_push(struct ev_loop *loop, struct upstream_fifo *f, struct upstream_req *req);
/* Appends req with a timeout of its own in seconds (0: no deadline at all). When req becomes
 * the head (the FIFO was empty), the timer is armed for its deadline, or stopped when it has
 * none. */
void upstream_fifo_push_timeout(struct ev_loop *loop, struct upstream_fifo *f,
                                struct upstream_req *req, ev_tstamp timeout);
/* Removes the head (the request hiredis is answering). The timer stays as it is (lazy): only
 * correct while every request in the FIFO has the FIFO's own timeout; use upstream_fifo_shift
 * otherwise. */
struct upstream_req *upstream_fifo_pop(struct upstream_fifo *f);
/* Removes the head and sets the timer for the new head: stopped when it has no deadline, kept
 * when it already fires at or before the new head's deadline (lazy, the common case), re-armed
 * otherwise. A new head that waited behind a head allowed to take longer gets
 * max(its deadline, now + its timeout). Returns the removed request (NULL when empty). */
struct upstream_req *upstream_fifo_shift(struct ev_loop *loop, struct upstream_fifo *f);
/* From the timer's callback: true when the head's deadline has passed (the caller recycles the
 * connection); otherwise re-arms the timer for the head's deadline, or leaves it stopped when
 * the FIFO is empty or the head has no deadline, and returns false. */
bool upstream_fifo_expired(struct ev_loop *loop, struct upstream_fifo *f);
/* Stops the timer (the FIFO must be emptied by the caller). */
void upstream_fifo_stop(struct ev_loop *loop, struct upstream_fifo *f);

#endif
