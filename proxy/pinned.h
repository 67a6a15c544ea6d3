/* Private upstream connections ("pins", DESIGN.md section 3): a client whose commands change
 * its connection's state on the upstream (MULTI/EXEC/DISCARD, WATCH, a blocking pop, SELECT of
 * another database) is served on a connection of its own while that state lasts, so the
 * shared data links never carry one client's transaction or block behind its BLPOP.
 *
 * A pin is created on the first stateful command (its link holds requests while it connects)
 * and lives as long as the client. While it has a reason (in MULTI, WATCHing, a non-zero
 * database) or requests in flight, every forwarded command of the client goes through it, in
 * order; then the client is back on the shared links. Nothing sent on a pin is cached; the keys
 * its writes name are dropped from the near-cache when sent and when answered (for a MULTI,
 * when EXEC is answered), so the client reads its own writes.
 *
 * When the private connection is lost (closed, reset, timed out) and the link reconnects, the
 * upstream state it held is gone, and never silently: the selected database is selected again
 * by the new connection's handshake (the last SELECT the upstream accepted); a lost WATCH makes
 * the client's EXEC abort as a WATCH does (a null array; DISCARD is sent upstream instead),
 * since the watched keys may have changed unseen; a lost MULTI makes every command until EXEC
 * or DISCARD fail here (never run outside the transaction on the new connection), EXEC answer
 * -EXECABORT and DISCARD +OK, as Redis does for a transaction flagged by an error. A MULTI or
 * WATCH whose own request failed (upstream error) never took effect: it is not kept.
 *
 * Order: a client that moves to its private connection with requests still in flight on the
 * shared links (a pipeline's writes before its MULTI) has the private link's gate closed until
 * those complete, so nothing it sent later runs first. */
#ifndef PROXY_PINNED_H
#define PROXY_PINNED_H

#include <stdbool.h>
#include <stddef.h>

struct client;
struct command;
struct fwd;

#define PIN_MULTI 0x1u
#define PIN_WATCH 0x2u
#define PIN_DB 0x4u

/* Keys written inside one MULTI that are remembered for EXEC's reply (more: flush). */
#define PIN_TXN_KEYS_MAX 256

/* The keys one transaction wrote (sent inside its MULTI), dropped from the near-cache again
 * when the EXEC, DISCARD or RESET that ends it is answered. */
struct pin_txn {
    struct pin_txn *next;       /* the next ended transaction (pin.ended) */
    char **keys;
    size_t *klens;
    size_t n;
    bool overflow;              /* more than PIN_TXN_KEYS_MAX, or a flush: flush at the reply */
};

struct pin {
    struct client *c;
    struct upstream_link *link;
    unsigned reasons;           /* PIN_*, in the order the client's requests were sent: a
                                   command's effect is applied when it is sent (a failed MULTI
                                   or WATCH is undone at its reply), so a reply never undoes
                                   what a later request already started (the EXEC of one
                                   pipelined transaction answered after the next MULTI left) */
    unsigned lost;              /* PIN_MULTI, PIN_WATCH: reasons whose upstream state went with
                                   a lost connection (answered here: see above) */
    size_t gate_wait;           /* c's forwards on the shared links still to complete before
                                   anything sent on link is written (its gate is closed) */
    long long db;               /* the last database SELECT the upstream accepted; -1 while
                                   none was (the connection is on [upstream] db) */
    size_t inflight;            /* forwards of c sent on link and not yet answered */
    struct pin_txn txn;         /* the open transaction's written keys (since MULTI) */
    struct pin_txn *ended;      /* transactions whose ending request is in flight, oldest
                                   first (answered in that order on link) */
    struct pin_txn *ended_tail;
    bool txn_flagged;           /* a command of the open MULTI was refused here (NOPERM, a
                                   disabled name): EXEC is sent as DISCARD and answers
                                   EXECABORT, as Redis's flagTransaction */
};

/* Whether c's request must go through its private connection (a stateful command, or c is
 * pinned now). */
bool pin_wanted(const struct client *c, const struct command *cmd);
/* Whether c is inside MULTI on its private connection: every request but QUIT, RESET, AUTH
 * and HELLO goes there as it came, for the upstream to queue or refuse (and flag). */
bool pin_in_multi(const struct client *c);
/* A request of c was refused by the sidecar: when c is inside MULTI on its private connection,
 * its EXEC must fail as Redis's does after a refused command (EXECABORT). */
void pin_flag_error(struct client *c);
/* A write sent on p names key: when p is inside MULTI, the transaction remembers it for its
 * EXEC's reply. pin_note_all: it names every key (FLUSHALL). */
void pin_note_written(struct pin *p, const char *key, size_t len);
void pin_note_all(struct pin *p);
/* c's EXEC was refused by the sidecar (NOPERM): the transaction open on its private connection
 * is discarded upstream too (the DISCARD's reply is not shown), as Redis's execCommandAbort. */
void pin_abort_txn(struct client *c);
/* Forwards c's current request through its private connection (created on first use). cmd is
 * the row found (the parent for a subcommand), or NULL for a command the sidecar does not
 * know. */
void pin_forward(struct client *c, const struct command *cmd);
/* The same, with the upstream's reply dropped (RESET: the sidecar replies itself). */
void pin_forward_silent(struct client *c, const struct command *cmd);
/* A forward sent on p was answered (or failed: r's status). */
struct upstream_reply;
void pin_request_done(struct pin *p, struct fwd *f, const struct upstream_reply *r);
/* One of the forwards on the shared links that p's requests wait for is done (forward.c). */
void pin_shared_done(struct pin *p);
/* c is being freed (its forwards are already cancelled): closes the connection. */
void pin_client_gone(struct client *c);

#endif
