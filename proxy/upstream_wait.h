/* Backpressure from the upstream links: a client whose forwarded request leaves the link it
 * went to congested (UPSTREAM_BACKLOG_HIGH bytes waiting for the upstream's socket) stops
 * reading and running requests until that link's buffer has drained; its further requests
 * wait in its own socket, not in the sidecar's memory.
 *
 * Why: a link's output buffer had no bound of its own. 50 clients pipelining 16 SETs of 100 KB
 * each put tens of MB in it whenever redis-server read slower than they wrote; every such
 * buffer was a fresh mapping, written page by page (5.5 page faults per forwarded 100 KB SET,
 * about a tenth of its CPU time), and a slow or stalled upstream let it grow with every client.
 *
 * States: CLIENT_UPSTREAM_WAIT is set exactly while c is on one of the server's two lists:
 * upwait_head, waiting (c->upwait_link: the congested link), or upwait_ready, its link drained
 * (upwait_link NULL) and the flush path about to resume it (upwait_resume). */
#ifndef PROXY_UPSTREAM_WAIT_H
#define PROXY_UPSTREAM_WAIT_H

#include <stdbool.h>

struct client;
struct server;
struct upstream_link;

/* c's request was just sent on link: c waits when link is congested. */
void upwait_after_send(struct client *c, struct upstream_link *link);
/* Before c's next request runs: c waits (true) when it has forwards in flight and a link it
 * may forward to (its shared link, its private one) is congested. Every such client's next
 * request is held back, not only the one that overfilled the link: 50 clients each sending
 * one more 100 KB SET after the link was full still left 5 MB in its buffer. A client with
 * nothing in flight upstream goes on (at most one request each): one that only reads what
 * the near-cache holds, or runs local commands, is served while the upstream is stalled. */
bool upwait_before_request(struct client *c);
/* A link's drain callback (upstream_link_set_drain_cb; arg: the server). */
void upwait_link_drained(void *arg, struct upstream_link *link);
/* From the flush path: runs the pending input of the clients whose link drained. */
void upwait_resume(struct server *srv);
/* Whether upwait_resume has clients to resume. */
bool upwait_pending(const struct server *srv);
/* c is being freed: leaves the wait list. */
void upwait_client_gone(struct client *c);

#endif
