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
 * Requests are only sent while UP; otherwise they fail fast with UPSTREAM_ERR_DOWN (unless the
 * link holds them while connecting: upstream_link_set_hold). Callbacks are never called from
 * inside upstream_link_send*(): a fast failure is delivered from the loop (an idle watcher fed
 * at once, so within the current loop iteration when sent from a callback, and without the
 * loop sleeping otherwise).
 *
 * Deadlines: a request gets op_timeout_ms from when it is written (upstream_link_send*), or a
 * timeout of its own, or none (upstream_link_send_timeout, for blocking commands). Only the
 * oldest unanswered request's deadline is watched: requests behind a slow or blocked one wait
 * for it, and one that waited behind a request allowed to take longer than its own deadline
 * gets its own full timeout again once that request is answered.
 *
 * A subscriber link (upstream_link_create_subscriber, below) is the same state machine with
 * another handshake and no requests of the caller's: it receives pub/sub messages.
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
#include <stdbool.h>
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
    uint64_t messages;            /* subscriber links: pub/sub messages handed to on_message */
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

/* The same with a deadline of its own: timeout_ms from when the request is written instead of
 * op_timeout_ms, or no deadline at all when timeout_ms == 0 (e.g. BLPOP k 0 on a private link:
 * the request then waits as long as the connection lives). For a blocking command pass its
 * blocking timeout + op_timeout_ms. Past the deadline the request completes with
 * UPSTREAM_ERR_TIMEOUT and the link is recycled, as for upstream_link_send. Requests behind it
 * on the same link wait for it (only the oldest request's deadline is watched). NULL (and cb
 * never called) when cmd is not valid for a link, when timeout_ms < 0, or on a subscriber
 * link. Ownership and callbacks as for upstream_link_send. */
struct upstream_req *upstream_link_send_timeout(struct upstream_link *link, const char *cmd,
                                                size_t len, long long timeout_ms,
                                                void (*cb)(void *owner,
                                                           const struct upstream_reply *r),
                                                void *owner);

/* upstream_link_send (timeout_ms < 0) or upstream_link_send_timeout (timeout_ms >= 0) for a
 * command the caller has already parsed: cmd[0..len) must be exactly one complete RESP
 * multibulk command of argc >= 1 arguments whose first argument is name[0..namelen), every
 * "\r\n" in place (what upstream_command_argc checks; e.g. a client's request after its parser
 * and a layout check). Skips that second parse: only the command name is checked (NULL for a
 * command a link cannot carry, as upstream_link_send). */
struct upstream_req *upstream_link_send_parsed(struct upstream_link *link, const char *cmd,
                                               size_t len, size_t argc, const char *name,
                                               size_t namelen, long long timeout_ms,
                                               void (*cb)(void *owner,
                                                          const struct upstream_reply *r),
                                               void *owner);

/* The same with an argument vector (copied during the call; argc >= 1). */
struct upstream_req *upstream_link_send_argv(struct upstream_link *link, int argc,
                                             const char *const *argv, const size_t *argvlen,
                                             void (*cb)(void *owner,
                                                        const struct upstream_reply *r),
                                             void *owner);

/* Hold while connecting (off by default; meant for private per-client links created on demand,
 * whose first command must wait for the connection instead of failing). When on, a request
 * sent while a connection attempt is in progress (CONNECTING or HANDSHAKE) is held instead of
 * failed: the link keeps a copy of its command and writes the held requests, in send order,
 * right after the link becomes UP, AFTER the state callback for UP has run, so requests the
 * state callback sends (e.g. a CLIENT TRACKING command) are written before them. The deadline
 * of a held request starts when it is written. If the attempt fails instead (refused, connect
 * timeout, handshake error, or a reset, also from the UP state callback), every held request
 * completes with UPSTREAM_ERR_DOWN and the failure's reason (e.g. "connect: Connection
 * refused"), from the loop, never inside send. While DOWN waiting for the backoff delay, sends
 * still fail fast. Held requests count towards UPSTREAM_LINK_INFLIGHT_MAX and in
 * upstream_link_in_flight; a held request cancelled before it is written is never written.
 * Turning hold off keeps the requests already held. No effect on a subscriber link. */
void upstream_link_set_hold(struct upstream_link *link, bool hold);

/* A gate in front of the link (off by default): while closed, requests sent while the link is
 * UP, CONNECTING or HANDSHAKE are held as with upstream_link_set_hold (a copy of the command,
 * the deadline starting when written, ERR_DOWN when the connection is lost first; sends while
 * DOWN still fail fast). Opening it writes the held requests in send order at once when the
 * link is UP, else when it next goes UP. For a caller whose earlier requests on another link
 * must be executed first (a client moving from the shared links to its private one). */
void upstream_link_set_gate(struct upstream_link *link, bool closed);

/* Backpressure: bytes written to a link wait in its output buffer while the upstream's socket
 * is full. A caller that sends and finds the link congested (UPSTREAM_BACKLOG_HIGH bytes or
 * more waiting) stops producing; drain_cb(arg, link) runs once the buffer is back to
 * UPSTREAM_BACKLOG_LOW or less (written, or dropped with the connection). Never from inside
 * upstream_link_send*(); the callback must not destroy the link. Only with hiredis 0.14.1
 * (the link writes its buffer itself there): elsewhere a link is never congested. */
#define UPSTREAM_BACKLOG_HIGH (256 * 1024)
#define UPSTREAM_BACKLOG_LOW (64 * 1024)
bool upstream_link_congested(struct upstream_link *link);
/* Bytes waiting in the link's output buffer (INFO upstream_output_bytes). */
size_t upstream_link_output_bytes(const struct upstream_link *link);
void upstream_link_set_drain_cb(struct upstream_link *link,
                                void (*cb)(void *arg, struct upstream_link *link), void *arg);

/* Recycles the connection now: requests in flight complete with UPSTREAM_ERR_DISCONNECTED
 * (reason "reset: <reason>"), and the link reconnects after the backoff delay. Does nothing
 * when already DOWN. Safe from completion and state callbacks. */
void upstream_link_reset(struct upstream_link *link, const char *reason);

/* One extra command run in every handshake after AUTH/SELECT (e.g. CLIENT TRACKING on
 * REDIRECT <id>): an error reply to it fails the handshake. argc 0 removes it. Takes effect at
 * the next (re)connect (call upstream_link_reset to apply it now). argv is copied. Not used by
 * a subscriber link. */
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
/* Requests written and not yet answered (cancelled ones included), plus held ones. */
size_t upstream_link_in_flight(const struct upstream_link *link);
/* The last failure's text ("" while none), e.g. "connect: Connection refused". */
const char *upstream_link_last_error(const struct upstream_link *link);
/* The backoff delay the next failure will start from, in ms. */
long long upstream_link_backoff_ms(const struct upstream_link *link);
const char *upstream_link_name(const struct upstream_link *link);
/* "host:port" or the unix socket path. */
const char *upstream_link_address(const struct upstream_link *link);

/* ---- subscriber links ------------------------------------------------------------------- */

/* Names one subscriber link may be subscribed to, per list (channels, patterns). */
#define UPSTREAM_SUB_NAMES_MAX 65536

/* Creates a subscriber link and starts connecting at once (cfg, log, name: as for
 * upstream_link_create; db and the extra handshake command are not used). Its handshake is
 * AUTH (when configured), CLIENT ID (the id is recorded: upstream_link_client_id), then one
 * SUBSCRIBE with every channel and one PSUBSCRIBE with every pattern of the link's lists; it
 * goes UP when the confirmations for all of them arrived (or when CLIENT ID answered, when the
 * lists are empty). channels[0..nchannels) are NUL-terminated names, copied (duplicates
 * ignored); they start the link's channel list, which upstream_link_[un]subscribe change.
 *
 * on_message(arg, link, msg) is called from the loop for every pub/sub message the link
 * receives while UP, on a channel in its channel list or a pattern in its pattern list (a
 * message still in flight when its channel was unsubscribed is dropped): msg is the whole RESP2
 * array, borrowed for the call: ["message", channel, payload] or ["pmessage", pattern,
 * channel, payload]. Subscription confirmations and anything else are not passed on. It may
 * call upstream_link_[p][un]subscribe and upstream_link_reset; not destroy.
 *
 * What Redis 7 (7.0.15, checked) sends to a RESP2 subscriber of __redis__:invalidate that a
 * connection running CLIENT TRACKING on REDIRECT <its id> redirects to:
 *   - a write to a key that connection read: ["message", "__redis__:invalidate", ["k"]]: the
 *     payload is an array of keys (one key per message in practice, e.g. MSET k k2 sends two
 *     messages; accept several);
 *   - FLUSHALL / FLUSHDB: ["message", "__redis__:invalidate", nil] with the nil as a null bulk
 *     ("$-1", UPSTREAM_VALUE_NIL), not a null array;
 *   - BCAST PREFIX mode: the same array messages for every key written under the prefixes;
 *   - when the subscriber connection goes away, a RESP2 tracking connection is told nothing
 *     ("tracking-redir-broken" is a RESP3 push only) and invalidations are silently lost until
 *     its tracking is re-armed with the new id: the caller must treat DOWN of the subscriber as
 *     "flush everything and re-arm tracking with the id reported at the next UP".
 *
 * Health checks are off on a subscriber link unless upstream_link_set_sub_health turns them on
 * (below): a plain PING cannot be matched to its reply by hiredis 0.14 in subscribed mode.
 * Without them a dead subscriber connection is noticed only when the kernel reports it (EOF,
 * reset): one that stays open but silent (a hung upstream, a black-holed path) goes unnoticed.
 *
 * States, backoff, reconnects, stats, the state callback, reset and destroy are as for data
 * links; each reconnect runs the whole handshake again and so gets a NEW client id: the state
 * callback with UP is how the caller learns it. upstream_link_send* refuse a subscriber link
 * (NULL). Never NULL. */
struct upstream_link *upstream_link_create_subscriber(
    struct ev_loop *loop, const struct config_upstream *cfg, const struct logger *log,
    const char *name, const char *const *channels, size_t nchannels,
    void (*on_message)(void *arg, struct upstream_link *link, const struct upstream_value *msg),
    void *arg);

/* The CLIENT ID of the subscriber's current connection while the link is UP; 0 otherwise
 * (also on a data link). */
long long upstream_link_client_id(const struct upstream_link *link);

/* Adds a channel (len bytes, binary-safe, copied) to a subscriber's channel list and, while a
 * connection is up or in its handshake, sends SUBSCRIBE for it; every later (re)connect
 * subscribes it again. Messages on it go to on_message once Redis has processed the SUBSCRIBE.
 * Returns 0 when added or already there, -1 when link is not a subscriber, len is 0, or the
 * list holds UPSTREAM_SUB_NAMES_MAX names. Never calls back from inside. */
int upstream_link_subscribe(struct upstream_link *link, const char *channel, size_t len);
/* Removes a channel from the list (and sends UNSUBSCRIBE for it while connected): no message
 * on it is passed to on_message from this call on. Returns 0 when it was in the list, -1
 * otherwise (or when link is not a subscriber). */
int upstream_link_unsubscribe(struct upstream_link *link, const char *channel, size_t len);
/* The same for glob-style patterns (PSUBSCRIBE / PUNSUBSCRIBE): matching messages arrive as
 * ["pmessage", pattern, channel, payload]. */
int upstream_link_psubscribe(struct upstream_link *link, const char *pattern, size_t len);
int upstream_link_punsubscribe(struct upstream_link *link, const char *pattern, size_t len);
/* The number of channels (patterns false) or patterns (true) in a subscriber's lists. */
size_t upstream_link_subscriptions(const struct upstream_link *link, bool patterns);

/* The pattern a subscriber with health checks is subscribed to on the upstream, besides its
 * lists (no glob characters: it matches only a channel of that exact name, which nobody
 * publishes to; it shows in PUBSUB NUMPAT, one per such connection). */
#define UPSTREAM_SUB_HEALTH_NAME "__sidecar_health__"

/* Health checks on a subscriber link (off by default; returns -1 on a data link). When on and
 * health_check_interval_ms is not 0: every connection's handshake also PSUBSCRIBEs
 * UPSTREAM_SUB_HEALTH_NAME, and while UP the link writes `PING UPSTREAM_SUB_HEALTH_NAME`
 * health_check_interval_ms after going UP and after each answer; an answer not back within
 * op_timeout_ms recycles the connection (DOWN, state callback, reconnect with backoff), so a
 * silent subscriber connection is noticed within health_check_interval_ms + op_timeout_ms.
 *
 * Why this shape (hiredis 0.14.1, async.c, checked): in subscribed mode a RESP2 PING is
 * answered ["pong", <argument>]; hiredis routes an array reply it has no regular callback for
 * by the first letter of its first element ('p': the pattern callbacks) and the name in its
 * second, so with the argument a pattern of ours the pong reaches our pattern callback, which
 * tells it from a pmessage by its kind. The PING is appended to the context's output buffer
 * directly (redisAppendFormattedCommand, then the adapter's addWrite hook), not through
 * redisAsync*Command, which would queue a callback on sub.invalid that is only released when
 * the context is freed (one allocation per PING for the life of the connection).
 * Counted in health_checks. Takes effect now: a connected link subscribes (or unsubscribes) the
 * name at once and an UP link arms (or stops) the check. The name is never in the caller's
 * lists: upstream_link_subscriptions does not count it, on_message never sees its traffic, and
 * a caller's PUNSUBSCRIBE of the same name does not remove it upstream. */
int upstream_link_set_sub_health(struct upstream_link *link, bool on);

#endif
