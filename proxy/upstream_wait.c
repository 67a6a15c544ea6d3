/* Backpressure from the upstream links (see upstream_wait.h): the server's list of clients
 * waiting for a congested link, and their resumption from the flush path. */
#include "proxy/upstream_wait.h"

#include "proxy/client.h"
#include "proxy/nearcache.h"
#include "proxy/pinned.h"
#include "proxy/server.h"
#include "upstream/link.h"

#include <ev.h>

static void upwait_begin(struct client *c, struct upstream_link *link)
{
    struct server *srv = c->srv;
    c->flags |= CLIENT_UPSTREAM_WAIT;
    c->upwait_link = link;
    c->upwait_next = srv->upwait_head;
    srv->upwait_head = c;
    srv->stats.upstream_waits++;
    ev_io_stop(srv->loop, &c->rio);
}

void upwait_after_send(struct client *c, struct upstream_link *link)
{
    if (!(c->flags & CLIENT_UPSTREAM_WAIT) && upstream_link_congested(link))
        upwait_begin(c, link);
}

bool upwait_before_request(struct client *c)
{
    struct nearcache *nc = c->srv->nc;
    if (!nc || !c->fwd_head || (c->flags & CLIENT_UPSTREAM_WAIT))
        return false;
    struct upstream_link *link = nearcache_link(nc, nearcache_link_index(nc, c));
    if (!upstream_link_congested(link)) {
        link = c->pin ? c->pin->link : NULL;
        if (!link || !upstream_link_congested(link))
            return false;
    }
    upwait_begin(c, link);
    return true;
}

void upwait_link_drained(void *arg, struct upstream_link *link)
{
    struct server *srv = arg;
    bool any = false;
    for (struct client **pp = &srv->upwait_head; *pp;) {
        struct client *c = *pp;
        if (c->upwait_link != link) {
            pp = &c->upwait_next;
            continue;
        }
        *pp = c->upwait_next; /* to the ready list (order does not matter) */
        c->upwait_link = NULL;
        c->upwait_next = srv->upwait_ready;
        srv->upwait_ready = c;
        any = true;
    }
    if (any)
        ev_idle_start(srv->loop, &srv->more_work); /* the flush path runs before the poll */
}

bool upwait_pending(const struct server *srv)
{
    return srv->upwait_ready != NULL;
}

void upwait_resume(struct server *srv)
{
    /* One at a time off the list: running a client's input may put it (or another) back. */
    while (srv->upwait_ready) {
        struct client *c = srv->upwait_ready;
        srv->upwait_ready = c->upwait_next;
        c->upwait_next = NULL;
        c->flags &= ~CLIENT_UPSTREAM_WAIT;
        const unsigned still = CLIENT_READ_PAUSED | CLIENT_CLOSE_ASAP | CLIENT_CLOSE_AFTER_REPLY;
        if (!(c->flags & still) && !srv->shutting_down)
            ev_io_start(srv->loop, &c->rio);
        client_process_input(c);
    }
}

void upwait_client_gone(struct client *c)
{
    if (!(c->flags & CLIENT_UPSTREAM_WAIT))
        return;
    struct server *srv = c->srv;
    struct client **pp = c->upwait_link ? &srv->upwait_head : &srv->upwait_ready;
    for (; *pp; pp = &(*pp)->upwait_next) {
        if (*pp == c) {
            *pp = c->upwait_next;
            break;
        }
    }
    c->upwait_next = NULL;
    c->upwait_link = NULL;
    c->flags &= ~CLIENT_UPSTREAM_WAIT;
}
