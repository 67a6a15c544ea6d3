/* Upstream requests (see request.h): cancellation, the singly linked request lists, and the FIFO
 * of in-flight requests with its one lazily re-armed deadline timer.
 * Invariants: a list's count equals its length and tail is its last node; the FIFO's timer, when
 * active, fires at or before the head's deadline (f->armed is when), and it is active whenever
 * the head has a deadline, so no head outlives its deadline by more than one loop iteration.
 * With requests of the FIFO's own timeout only, deadlines grow along the FIFO (same timeout,
 * non-decreasing ev_now) and popping the head never needs the timer touched; a request of
 * another timeout, or of none, is covered by upstream_fifo_shift re-arming for each new head.
 * A request without a deadline has deadline INFINITY and timeout 0. Deadlines are ev_now based
 * (the wall clock): if it steps back, the head is re-stamped with one full timeout (a bounded
 * delay); if it steps forward, requests in flight may time out early once. */
#include "upstream/request.h"

#include <math.h>
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
    f->armed = 0.;
    ev_timer_init(&f->timer, cb, timeout, 0.);
    f->timer.data = data;
}

/* (Re)starts the timer to fire at ev_now-based time at. */
static void fifo_arm(struct ev_loop *loop, struct upstream_fifo *f, ev_tstamp at)
{
    ev_tstamp left = at - ev_now(loop);
    ev_timer_stop(loop, &f->timer);
    ev_timer_set(&f->timer, left > 0. ? left : 0., 0.);
    ev_timer_start(loop, &f->timer);
    f->armed = at;
}

/* Makes the timer agree with the head: stopped when the head has no deadline, left alone when it
 * already fires at or before the head's deadline, armed for that deadline otherwise. An empty
 * FIFO leaves it as it is (it fires once and stops). */
static void fifo_cover_head(struct ev_loop *loop, struct upstream_fifo *f)
{
    const struct upstream_req *head = f->reqs.head;
    if (!head)
        return;
    if (head->timeout <= 0.) {
        ev_timer_stop(loop, &f->timer);
        return;
    }
    if (ev_is_active(&f->timer) && f->armed <= head->deadline)
        return;
    fifo_arm(loop, f, head->deadline);
}

void upstream_fifo_push_timeout(struct ev_loop *loop, struct upstream_fifo *f,
                                struct upstream_req *req, ev_tstamp timeout)
{
    req->timeout = timeout > 0. ? timeout : 0.;
    req->deadline = timeout > 0. ? ev_now(loop) + timeout : INFINITY;
    bool first = f->reqs.head == NULL;
    upstream_req_list_push(&f->reqs, req);
    if (first)
        fifo_cover_head(loop, f);
}

void upstream_fifo_push(struct ev_loop *loop, struct upstream_fifo *f, struct upstream_req *req)
{
    upstream_fifo_push_timeout(loop, f, req, f->timeout);
}

struct upstream_req *upstream_fifo_pop(struct upstream_fifo *f)
{
    return upstream_req_list_pop(&f->reqs);
}

struct upstream_req *upstream_fifo_shift(struct ev_loop *loop, struct upstream_fifo *f)
{
    struct upstream_req *req = upstream_req_list_pop(&f->reqs);
    struct upstream_req *head = f->reqs.head;
    if (!req || !head)
        return req;
    if (head->timeout > 0. && req->deadline > head->deadline) {
        /* head waited behind a request allowed to take longer: it could not have been answered
         * before now, so its own timeout counts from now. */
        ev_tstamp again = ev_now(loop) + head->timeout;
        if (again > head->deadline)
            head->deadline = again;
    }
    fifo_cover_head(loop, f);
    return req;
}

bool upstream_fifo_expired(struct ev_loop *loop, struct upstream_fifo *f)
{
    ev_timer_stop(loop, &f->timer);
    struct upstream_req *head = f->reqs.head;
    if (!head || head->timeout <= 0.)
        return false;
    ev_tstamp left = head->deadline - ev_now(loop);
    if (left <= 0.)
        return true;
    if (left > head->timeout) {
        /* ev_now follows the wall clock, which stepped back: give the head one more full
         * timeout instead of waiting for the clock to catch up. */
        head->deadline = ev_now(loop) + head->timeout;
    }
    fifo_arm(loop, f, head->deadline);
    return false;
}

void upstream_fifo_stop(struct ev_loop *loop, struct upstream_fifo *f)
{
    ev_timer_stop(loop, &f->timer);
}
