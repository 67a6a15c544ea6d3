/* One connection to the upstream Redis (a "link"): a hiredis async context on the caller's libev
 * loop, its state machine, reconnects with backoff, the request FIFO with deadlines, health
 * checks and counters.
 *
 * States: DOWN -> CONNECTING (connect(2) in progress, bounded by connect_timeout_ms) ->
 * HANDSHAKE (AUTH, SELECT, the optional extra command, then PING, pipelined; still bounded by
 * connect_timeout_ms) -> UP (the PING answered +PONG). Anything that fails (refused, timed out,
 * an error reply in the handshake, the connection closed, a request past its deadline) goes back
 * to DOWN, completes every request in flight, and schedules the next attempt after the backoff
 * delay: reconnect_min_ms doubling up to reconnect_max_ms (each delay drawn in [d/2, d] so a
 * fleet of sidecars does not reconnect in step), reset when a handshake succeeds. While UP, a
 * PING goes out every health_check_interval_ms when nothing is in flight (0 = never); it is a
 * request like any other, so a PING that is not answered within op_timeout_ms recycles the link.
 *
 * Requests are only sent while UP; otherwise they fail fast with UPSTREAM_ERR_DOWN. Callbacks
 * are never called from inside upstream_link_send*(): a fast failure is delivered from the loop
 * (an idle watcher fed at once, so within the current loop iteration when sent from a callback,
 * and without the loop sleeping otherwise).
 *
 * A link carries commands that get exactly one reply each. upstream_command_valid() refuses
 * [P]SUBSCRIBE/[P]UNSUBSCRIBE/MONITOR; the caller must also keep away commands that change the
 * connection's state or its reply stream (SELECT, AUTH, HELLO, RESET, QUIT, CLIENT REPLY,
 * CLIENT TRACKING, MULTI/EXEC/WATCH, blocking commands on a shared link, SSUBSCRIBE): send those
 * on a connection of their own. */
#ifndef UPSTREAM_LINK_H
#define UPSTREAM_LINK_H

#include "conf/config.h"
#include "conf/log.h"
#include "upstream/request.h"
#include "upstream/resp.h"

#include <ev.h>
#include <stddef.h>
#include <stdint.h>

/* Requests in flight on one link beyond which sends fail fast with UPSTREAM_ERR_DOWN. */
#define UPSTREAM_LINK_INFLIGHT_MAX (1u << 20)
/* Bytes kept of the last failure's text. */
#define UPSTREAM_LINK_ERROR_MAX 160

enum upstream_state {
    UPSTREAM_DOWN = 0,
    UPSTREAM_CONNECTING,
    UPSTREAM_HANDSHAKE,
    UPSTREAM_UP,
};

/* "down", "connecting", "handshake", "up". */
const char *upstream_state_name(enum upstream_state st);

/* Counters since the link was created (all monotonic). */
struct upstream_stats {
    uint64_t connect_attempts;    /* connections started, the first included */
    uint64_t reconnect_attempts;  /* of which started by the backoff timer */
    uint64_t connects;            /* handshakes completed: times the link went UP */
    uint64_t connect_failures;    /* attempts that ended before UP (refused, timeout, AUTH...) */
    uint64_t disconnects;         /* times an UP link was lost (closed, error, recycled, reset) */
    uint64_t recycles;            /* of which because a request passed its deadline */
    uint64_t requests;            /* callers' requests written to the upstream */
    uint64_t replies;             /* replies received for them, error replies included */
    uint64_t reply_errors;        /* of which were error replies ("-ERR ...") */
    uint64_t timeouts;            /* requests completed with UPSTREAM_ERR_TIMEOUT */
    uint64_t disconnected;        /* requests completed with UPSTREAM_ERR_DISCONNECTED */
    uint64_t failed_down;         /* requests completed with UPSTREAM_ERR_DOWN */
    uint64_t swallowed;           /* cancelled requests whose outcome was dropped */
    uint64_t health_checks;       /* health-check PINGs sent */
};

struct upstream_link;

/* Creates a link on loop and starts connecting at once (a hostname is resolved by hiredis with a
 * blocking getaddrinfo on every attempt: prefer an address). cfg is copied (host or unixsocket,
 * port, credentials, db, timeouts, backoff, health interval); log may be NULL (silent) and must
 * outlive the link; name (copied, e.g. "data-0") prefixes log lines. Never NULL. */
struct upstream_link *upstream_link_create(struct ev_loop *loop, const struct config_upstream *cfg,
                                           const struct logger *log, const char *name);

/* Closes the connection and frees the link. Requests still pending are released WITHOUT their
 * callbacks being called (owners must have cancelled them, or be going away too: shutdown).
 * Must not be called from inside a completion or state callback of this link. */
void upstream_link_destroy(struct upstream_link *link);

/* Sends one command given as the client's own RESP bytes (a multibulk: see
 * upstream_command_valid; hiredis copies them, so cmd is only read during the call).
 * cb(owner, reply) is called exactly once, later, from the loop: with the reply or an error
 * status, unless upstream_req_cancel() is called first. Returns the request handle, valid until
 * the callback runs or the request is cancelled; NULL (and cb never called) only when cmd is not
 * a valid command for a link. */
struct upstream_req *upstream_link_send(struct upstream_link *link, const char *cmd, size_t len,
                                        void (*cb)(void *owner, const struct upstream_reply *r),
                                        void *owner);

/* The same with an argument vector (copied during the call; argc >= 1). */
struct upstream_req *upstream_link_send_argv(struct upstream_link *link, int argc,
                                             const char *const *argv, const size_t *argvlen,
                                             void (*cb)(void *owner,
                                                        const struct upstream_reply *r),
                                             void *owner);

/* Recycles the connection now: requests in flight complete with UPSTREAM_ERR_DISCONNECTED
 * (reason "reset: <reason>"), and the link reconnects after the backoff delay. Does nothing
 * when already DOWN. Safe from completion and state callbacks. */
void upstream_link_reset(struct upstream_link *link, const char *reason);

/* One extra command run in every handshake after AUTH/SELECT (e.g. CLIENT TRACKING on
 * REDIRECT <id>): an error reply to it fails the handshake. argc 0 removes it. Takes effect at
 * the next (re)connect (call upstream_link_reset to apply it now). argv is copied. */
void upstream_link_set_handshake(struct upstream_link *link, int argc, const char *const *argv,
                                 const size_t *argvlen);

/* cb(arg, link, state) is called when the link becomes UP and when an UP link is lost (state
 * DOWN), after the requests in flight were completed. It may send, reset, or cancel; it must
 * not destroy the link. NULL removes it. */
void upstream_link_set_state_cb(struct upstream_link *link,
                                void (*cb)(void *arg, struct upstream_link *link,
                                           enum upstream_state state),
                                void *arg);

enum upstream_state upstream_link_state(const struct upstream_link *link);
const struct upstream_stats *upstream_link_stats(const struct upstream_link *link);
/* Requests written and not yet answered (cancelled ones included). */
size_t upstream_link_in_flight(const struct upstream_link *link);
/* The last failure's text ("" while none), e.g. "connect: Connection refused". */
const char *upstream_link_last_error(const struct upstream_link *link);
/* The backoff delay the next failure will start from, in ms. */
long long upstream_link_backoff_ms(const struct upstream_link *link);
const char *upstream_link_name(const struct upstream_link *link);
/* "host:port" or the unix socket path. */
const char *upstream_link_address(const struct upstream_link *link);

#endif
