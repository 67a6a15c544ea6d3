/* Upstream requests (see request.h): cancellation, the singly linked request lists, and the FIFO
 * of in-flight requests with its one lazily re-armed deadline timer.
 * Invariants: a list's count equals its length and tail is its last node; the FIFO's timer, when
 * active, fires at or before the head's deadline (deadlines grow along the FIFO because every
 * request gets the same timeout from a non-decreasing ev_now), so no request outlives its
 * deadline by more than one loop iteration. Deadlines are ev_now based (the wall clock): if it
 * steps back, the head is re-stamped with one full timeout (a bounded delay); if it steps
 * forward, requests in flight may time out early once. */
#include "upstream/request.h"

#include <stdlib.h>

const char *upstream_status_name(enum upstream_status st)
{
    switch (st) {
    case UPSTREAM_OK:
        return "ok";
    case UPSTREAM_ERR_DOWN:
        return "down";
    case UPSTREAM_ERR_TIMEOUT:
        return "timeout";
    case UPSTREAM_ERR_DISCONNECTED:
        return "disconnected";
    }
    return "unknown";
}

void upstream_req_cancel(struct upstream_req *req)
{
    if (req->flags & UPSTREAM_REQ_SETTLED)
        abort(); /* cancelled twice, or after its callback ran: a caller bug */
    req->flags |= UPSTREAM_REQ_CANCELLED | UPSTREAM_REQ_SETTLED;
}

void upstream_req_list_push(struct upstream_req_list *l, struct upstream_req *req)
{
    req->next = NULL;
    if (l->tail)
        l->tail->next = req;
    else
        l->head = req;
    l->tail = req;
    l->count++;
}

struct upstream_req *upstream_req_list_pop(struct upstream_req_list *l)
{
    struct upstream_req *req = l->head;
    if (!req)
        return NULL;
    l->head = req->next;
    if (!l->head)
        l->tail = NULL;
    l->count--;
    req->next = NULL;
    return req;
}

struct upstream_req_list upstream_req_list_take(struct upstream_req_list *l)
{
    struct upstream_req_list out = *l;
    l->head = l->tail = NULL;
    l->count = 0;
    return out;
}

void upstream_fifo_init(struct upstream_fifo *f, ev_tstamp timeout,
                        void (*cb)(struct ev_loop *loop, ev_timer *w, int revents), void *data)
{
    f->reqs.head = f->reqs.tail = NULL;
    f->reqs.count = 0;
    f->timeout = timeout;
    ev_timer_init(&f->timer, cb, timeout, 0.);
    f->timer.data = data;
}

void upstream_fifo_push(struct ev_loop *loop, struct upstream_fifo *f, struct upstream_req *req)
{
    req->deadline = ev_now(loop) + f->timeout;
    upstream_req_list_push(&f->reqs, req);
    if (!ev_is_active(&f->timer)) {
        ev_timer_set(&f->timer, f->timeout, 0.);
        ev_timer_start(loop, &f->timer);
    }
}

struct upstream_req *upstream_fifo_pop(struct upstream_fifo *f)
{
    return upstream_req_list_pop(&f->reqs);
}

bool upstream_fifo_expired(struct ev_loop *loop, struct upstream_fifo *f)
{
    ev_timer_stop(loop, &f->timer);
    struct upstream_req *head = f->reqs.head;
    if (!head)
        return false;
    ev_tstamp left = head->deadline - ev_now(loop);
    if (left <= 0.)
        return true;
    if (left > f->timeout) {
        /* ev_now follows the wall clock, which stepped back: give the head one more full
         * timeout instead of waiting for the clock to catch up. */
        head->deadline = ev_now(loop) + f->timeout;
        left = f->timeout;
    }
    ev_timer_set(&f->timer, left, 0.);
    ev_timer_start(loop, &f->timer);
    return false;
}

void upstream_fifo_stop(struct ev_loop *loop, struct upstream_fifo *f)
{
    ev_timer_stop(loop, &f->timer);
}
