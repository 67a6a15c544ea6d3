/* upstream/ internal: the layout of struct upstream_link and the helpers link.c (data links, the
 * state machine), link_write.c (the output side) and subscriber.c (subscriber links) share. Nothing outside upstream/ includes
 * this file (it includes hiredis). The invariants are stated at the top of link.c (the state
 * machine, the FIFO, the hiredis quirks) and of subscriber.c (the subscription lists). */
#ifndef UPSTREAM_LINK_INTERNAL_H
#define UPSTREAM_LINK_INTERNAL_H

#include "upstream/link.h"

#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include <ev.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* What an internal request was sent for (struct upstream_req.kind). */
enum upstream_link_kind {
    UPSTREAM_KIND_USER = 0,
    UPSTREAM_KIND_AUTH,
    UPSTREAM_KIND_SELECT,
    UPSTREAM_KIND_EXTRA,
    UPSTREAM_KIND_HANDSHAKE_PING,
    UPSTREAM_KIND_HEALTH_PING,
    UPSTREAM_KIND_CLIENT_ID, /* subscriber handshake */
};

/* How a connection is being dropped. */
enum upstream_drop_how {
    UPSTREAM_DROP_LOST,    /* hiredis is freeing the context itself: do not free it */
    UPSTREAM_DROP_RECYCLE, /* we close it */
    UPSTREAM_DROP_TIMEOUT, /* we close it because the FIFO's head passed its deadline */
};

/* Names one list of a subscriber holds (channels or patterns): binary-safe copies, no
 * duplicates, in the order they were added. */
struct upstream_sub_names {
    char **names;
    size_t *lens;
    size_t count, cap;
};

/* The subscriber part of a link (NULL on data links). */
struct upstream_sub {
    struct upstream_sub_names channels;
    struct upstream_sub_names patterns;
    void (*on_message)(void *arg, struct upstream_link *link, const struct upstream_value *msg);
    void *arg;
    long long client_id;   /* from this connection's CLIENT ID; 0 until it answered */
    bool have_id;          /* CLIENT ID answered on the current connection */
    size_t pending;        /* HANDSHAKE: [p]subscribe confirmations still expected */
    struct upstream_buf cmd; /* formatting of [P][UN]SUBSCRIBE commands */
    bool health;           /* upstream_link_set_sub_health: on (and the interval is not 0) */
    bool ping_out;         /* UP: a health PING was written and its pong has not come back */
    struct upstream_buf ping; /* "PING <UPSTREAM_SUB_HEALTH_NAME>", formatted once */
};

/* Recycled requests a link keeps (80 bytes each: at most 80 KB per link, and only after that
 * many were in flight at once). A whole pipelined round can be answered before the next sends
 * (50 clients x 16 = 800 requests): with 256 kept, 0.62 requests per GET were still allocated
 * at -c 50 -P 16 under callgrind, with 1024 none. */
#define UPSTREAM_LINK_FREE_REQS_MAX 1024

struct upstream_link {
    struct ev_loop *loop;
    const struct logger *log;
    char *name;
    char *address;                  /* "host:port" or the socket path, for logs and INFO */
    char *host;                     /* NULL when unixsocket is set */
    char *unixsocket;               /* NULL for TCP */
    int port;
    long long db;
    ev_tstamp connect_timeout;      /* seconds */
    long long op_timeout_ms;
    long long reconnect_min_ms, reconnect_max_ms;
    ev_tstamp health_interval;      /* seconds; 0 = off */

    struct upstream_buf hs_auth;    /* formatted handshake commands; len 0 = not sent */
    struct upstream_buf hs_select;
    struct upstream_buf hs_extra;
    struct upstream_buf hs_ping;
    struct upstream_buf scratch;    /* send_argv's formatting */

    redisAsyncContext *ac;          /* NULL while DOWN */
    size_t obuf_peak;               /* most bytes ac's output buffer held since it was last
                                       written out (link_obuf_presize) */
    redisReplyObjectFunctions reply_fns; /* resp.c's pooled nodes: outlive every context */
    struct upstream_reply_pool reply_pool; /* their blocks; each reader's privdata */
    enum upstream_state state;
    struct upstream_fifo fifo;      /* requests written to ac, oldest first */
    struct upstream_req_list failq; /* callers' requests waiting for their ERR_DOWN */
    struct upstream_req_list held;  /* hold on: callers' requests waiting for UP, in send order */
    struct upstream_req *free_reqs; /* recycled plain requests (no command copy), linked by
                                       next: one calloc/free pair less per request */
    size_t nfree_reqs;              /* at most UPSTREAM_LINK_FREE_REQS_MAX */
    bool hold;                      /* upstream_link_set_hold */
    bool gate;                      /* upstream_link_set_gate: closed (held even while UP) */
    bool congested;                 /* upstream_link_congested said so: drain_cb is owed */
    void (*drain_cb)(void *arg, struct upstream_link *link);
    void *drain_arg;
    ev_idle fail_idle;              /* active (and fed) while failq is not empty */
    ev_prepare flush;               /* active while requests of this loop iteration wait in
                                       ac's output buffer (link_flush_cb writes them) */
    ev_timer timer;                 /* DOWN: next attempt; CONNECTING/HANDSHAKE: connect
                                       deadline; UP: health check (data links: repeating;
                                       subscribers: the next PING, then its deadline) */
    long long backoff_ms;           /* the next failure's delay, before jitter */
    uint64_t rng;                   /* jitter; xorshift64 state, never 0 */
    bool attempted;                 /* a connection was started before */
    int depth;                      /* caller callbacks running */
    void (*state_cb)(void *arg, struct upstream_link *link, enum upstream_state state);
    void *state_arg;
    struct upstream_sub *sub;       /* subscriber links only */
    struct upstream_stats stats;
    char last_error[UPSTREAM_LINK_ERROR_MAX];
};

/* ---- link.c ------------------------------------------------------------------------------ */

/* A link in state DOWN, not connecting yet (upstream_link_create = this + upstream_link_start). */
struct upstream_link *upstream_link_new(struct ev_loop *loop, const struct config_upstream *cfg,
                                        const struct logger *log, const char *name);
/* Starts a connection attempt (from DOWN). */
void upstream_link_start(struct upstream_link *link);
/* Takes the link DOWN (see link.c). Does nothing when already DOWN. */
void upstream_link_drop(struct upstream_link *link, enum upstream_drop_how how,
                        const char *reason);
/* The handshake is complete: UP, state callback, then the held requests. */
void upstream_link_go_up(struct upstream_link *link);
/* Writes one of the link's own commands (kind: enum upstream_link_kind) on the attached
 * context; false when hiredis refused it (the context is closing). */
bool upstream_link_send_own(struct upstream_link *link, int kind, const struct upstream_buf *cmd);
void upstream_link_log(const struct upstream_link *link, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ---- link_write.c ------------------------------------------------------------------------ */

/* Appends one command to ac's output buffer with req's reply callback (upstream_reply_cb), as
 * hiredis 0.14's redisAsyncFormattedCommand does; REDIS_ERR when the context is closing. */
int link_write_command(redisAsyncContext *ac, struct upstream_req *req, const char *cmd,
                       size_t len);
/* link->flush's callback (a prepare watcher): writes the output buffer before the poll. */
void link_flush_cb(struct ev_loop *loop, ev_prepare *w, int revents);
/* After the output buffer was written or dropped: a congested link's drain callback. */
void link_check_drained(struct upstream_link *link);
/* Writes what ac's output buffer holds (link_write_cb in link.c: the write event). */
int link_obuf_write(redisContext *c, int *done);
/* hiredis's reply callback of every request a link writes (link.c). */
void upstream_reply_cb(redisAsyncContext *ac, void *reply, void *privdata);

/* ---- subscriber.c ------------------------------------------------------------------------ */

/* From the connect callback: writes the subscriber handshake (AUTH, CLIENT ID, SUBSCRIBE,
 * PSUBSCRIBE). */
void upstream_sub_handshake(struct upstream_link *link);
/* The reply to the handshake's CLIENT ID (from inside hiredis's reply callback). */
void upstream_sub_client_id_reply(struct upstream_link *link, const redisReply *reply);
/* Frees the subscriber part (the context is already gone). */
void upstream_sub_free(struct upstream_sub *sub);
/* The health check's timer fired on an UP subscriber: writes a PING when none is out (and
 * re-arms the timer for its deadline), or drops the link when the last one was not answered. */
void upstream_sub_health_tick(struct upstream_link *link);
/* The subscriber just went UP: arms the first health check (when on). */
void upstream_sub_health_start(struct upstream_link *link);

#endif
