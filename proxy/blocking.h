/* Blocking commands: clients waiting for a key (BLPOP BRPOP BLMOVE BRPOPLPUSH BLMPOP, and the
 * sorted-set pops BZPOPMIN BZPOPMAX through the same calls), as Redis 7.0's blocked.c.
 *
 * A command that finds nothing to pop calls blocking_block(): the client stops running its
 * query buffer (its later requests wait, its socket is still read so a disconnect is seen),
 * joins the FIFO of waiters of every key it names and, with a timeout, arms the ev_timer
 * embedded in it. Whatever may make a key servable calls blocking_signal_key(): the key is
 * queued as ready (once). After each command (after a whole EXEC, never inside it) and before
 * the loop sleeps, blocking_serve_ready() walks the ready keys: for each waiter of the key, in
 * the order they blocked, whose type matches what the key holds, the type's serve callback pops
 * and replies exactly as the non-blocking command would; the waiter is then unblocked and queued
 * to run its pending input from the flush path (blocking_resume_clients). A serve that pushes
 * (BLMOVE) signals its destination, which is served in the same walk. A timeout replies the
 * command's timeout null; a client that closes is removed silently.
 *
 * Ownership: the registry (srv->blocking) owns the key table and the ready list; a blocked
 * client owns its state (c->bstate: its records in the key FIFOs and a copy of its
 * arguments), freed when it is unblocked. Every allocation is counted in blocking_bytes()
 * (usable size + one word of allocator header).
 *
 * How a type plugs in (see the list handlers in cmd_list.c): its command parses its timeout
 * with blocking_timeout_or_reply(), tries every key as the non-blocking form would, and when
 * nothing was there and blocking_allowed() (false inside MULTI/EXEC) calls blocking_block()
 * with a static struct blocking_ops naming the store type that wakes it and its serve
 * callback; its key-creating paths call blocking_signal_key() (any write command's keys are
 * also signalled by the dispatcher while clients are blocked, which covers RENAME and COPY). */
#ifndef PROXY_BLOCKING_H
#define PROXY_BLOCKING_H

#include "proxy/resp_parser.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct client;
struct server;
struct store_entry;
struct blocking;

/* Ready keys served per blocking_serve_ready() call (the rest stay queued for the next). */
#define BLOCKING_SERVE_MAX 100000
/* Clients resumed per blocking_resume_clients() call (the rest stay queued). */
#define BLOCKING_RESUME_MAX 10000

/* What a blocked command needs when it is served, copied when it blocks. */
struct blocking_args {
    int where;              /* lists: enum list_where popped from; zsets: min (0) or max (1) */
    int whereto;            /* BLMOVE: enum list_where pushed to */
    long long count;        /* elements per pop (BLMPOP); -1: the single-element form */
    const char *target;     /* BLMOVE's destination key (the registry's copy), or NULL */
    size_t target_len;
};

/* Serves waiter c from e, the live non-empty entry (of ops->type) of a ready key in c's db:
 * pops and replies as the command would when it found the key non-empty (an error reply, e.g.
 * BLMOVE's WRONGTYPE destination, counts as an answer). c->argv is not valid here. Returns
 * true when c was answered (it is then unblocked), false to leave it blocked. May change the
 * store (and signal keys); must not unblock or free clients. */
typedef bool blocking_serve_fn(struct client *c, struct store_entry *e,
                               const struct blocking_args *a);
/* Replies the timeout answer (NULL in blocking_ops: a null array, RESP3 _, as Redis 7.0 does
 * for every list and sorted-set blocking command). */
typedef void blocking_timeout_fn(struct client *c, const struct blocking_args *a);

struct blocking_ops {
    int type;                        /* enum store_type whose keys wake this command */
    blocking_serve_fn *serve;
    blocking_timeout_fn *timeout;    /* NULL: reply_null_array */
};

/* The registry (owned by the server; seed keys its hash). */
struct blocking *blocking_create(const uint8_t seed[16]);
/* Every client must have been freed before. NULL is fine. */
void blocking_destroy(struct blocking *b);
/* Bytes held by the registry and the blocked clients' states; keys with waiters. */
size_t blocking_bytes(const struct blocking *b);
size_t blocking_keys(const struct blocking *b);

/* Timeout argument i in seconds (Redis 7.0's getTimeoutFromObjectOrReply, UNIT_SECONDS):
 * fractional, rounded up to the millisecond; *deadline_ms is 0 for "forever" or the absolute
 * time (ms) it ends. False after replying "ERR timeout is not a float or out of range" or
 * "ERR timeout is negative". */
bool blocking_timeout_or_reply(struct client *c, size_t i, int64_t *deadline_ms);

/* False where a command must not block (inside MULTI/EXEC): it then answers as on timeout. */
bool blocking_allowed(const struct client *c);

/* Blocks c, whose command is running, on keys[0..nkeys) of its db (duplicates count once)
 * until one is served (ops->serve) or deadline_ms (0: never) passes. The keys and
 * a->target are copied. c must not already be blocked. */
void blocking_block(struct client *c, const struct resp_arg *keys, size_t nkeys,
                    int64_t deadline_ms, const struct blocking_ops *ops,
                    const struct blocking_args *a);

/* (db, key) may now hold what a blocked client waits for: queues it as ready (once). O(1)
 * when no client is blocked. The key is copied. */
void blocking_signal_key(struct server *srv, int db, const char *key, size_t klen);

/* Serves the ready keys (the dispatcher after each command, the flush path). Re-entrant calls
 * return at once. */
void blocking_serve_ready(struct server *srv);
/* Runs the pending input of the clients unblocked since the last call (flush path). */
void blocking_resume_clients(struct server *srv);
/* Ready keys or unblocked clients wait to be handled. */
bool blocking_work_pending(const struct server *srv);

/* Answers blocked client c as on timeout (error: with Redis's CLIENT UNBLOCK ... ERROR text
 * instead) and unblocks it. For CLIENT UNBLOCK. No-op when c is not blocked. */
void blocking_unblock_client(struct client *c, bool error);
/* c is closing or being freed: removed from every queue, no reply. No-op when not blocked
 * and not queued for resumption. */
void blocking_client_free(struct client *c);

#endif
