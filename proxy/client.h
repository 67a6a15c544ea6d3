/* A connected client: its socket watchers, query buffer and parser, the current request's
 * arguments, its output and the FIFO of reply slots that keeps replies in request order.
 *
 * Output: replies are appended to client_out(c). With no slot pending that is c->out, the
 * buffer the flush path writes from. A request answered later (forwarded upstream, a blocked
 * pop) opens a pending slot; replies of the requests after it go into slots queued behind it,
 * and only the completed prefix of the FIFO is moved to c->out. A standalone command never
 * opens a slot, so its replies go straight to c->out. A large reply with nothing queued before
 * it is written at once from the caller's bytes (client_reply_direct); only what the socket
 * refused is copied to c->out.
 * Input: requests are parsed in place in qbuf; a large bulk argument that has not all arrived
 * may be read outside it, straight into a string entry (bigarg: client.c, set_value in
 * cmd_strings.c installs it without a copy).
 * Lifetime: clients are freed only from the server's flush path (deferred free), never while a
 * command of theirs is running; client_close() marks and queues. Freeing a client also ends its
 * transaction, its WATCHes and its subscriptions (multi.c, pubsub.c own that state).
 * Blocked (CLIENT_BLOCKED, blocking.c): the client's command waits for a key; its socket is
 * still read (a disconnect is seen) but its query buffer is not run until it is answered;
 * closing it takes it off every wait queue at once. */
#ifndef PROXY_CLIENT_H
#define PROXY_CLIENT_H

#include "proxy/resp_parser.h"
#include "proxy/strbuf.h"

#include <ev.h>
#include <stdbool.h>
#include <stdint.h>

struct server;
struct command;
struct multi_state;
struct watch_rec;
struct pubsub_client;
struct blocking_state;
struct fwd;
struct pin;
struct acl_user;

#define CLIENT_ADDR_MAX 64
#define CLIENT_NAME_MAX 256
/* Replies awaited at once (pending slots) before the client's input is no longer read. */
#define CLIENT_SLOTS_MAX 4096
/* A recycled slot keeps a buffer up to this size. */
#define CLIENT_SLOT_KEEP_BYTES 4096

/* Client flags. */
#define CLIENT_CLOSE_AFTER_REPLY 0x01u /* QUIT, protocol error: flush, then close */
#define CLIENT_CLOSE_ASAP 0x02u        /* killed, over the output limit: close at the flush */
#define CLIENT_PENDING_WRITE 0x04u     /* on the server's pending-write list */
#define CLIENT_READ_PAUSED 0x08u       /* output over the soft limit: not reading */
#define CLIENT_UNIX_SOCKET 0x10u
#define CLIENT_IN_COMMAND 0x20u        /* a command of this client is executing */
#define CLIENT_REPLY_OFF 0x40u         /* CLIENT REPLY OFF: replies are dropped */
#define CLIENT_REPLY_SKIP_NEXT 0x80u   /* CLIENT REPLY SKIP: drop the next command's reply */
#define CLIENT_REPLY_SKIP 0x100u       /* dropping this command's reply */
#define CLIENT_MULTI 0x200u            /* in MULTI: commands are queued (also while EXEC runs) */
#define CLIENT_DIRTY_CAS 0x400u        /* a WATCHed key was touched: EXEC replies a null array */
#define CLIENT_DIRTY_EXEC 0x800u       /* a command was refused while queueing: EXECABORT */
#define CLIENT_PUBSUB 0x1000u          /* subscribed to a channel or pattern */
#define CLIENT_BLOCKED 0x2000u         /* a blocking command waits for a key (blocking.c) */
#define CLIENT_UNBLOCKED 0x4000u       /* answered after blocking: its pending input runs from
                                          the flush path (blocking.c's resume queue) */
#define CLIENT_MONITOR 0x8000u         /* MONITOR: sees every command run (monitor.c) */
#define CLIENT_UPSTREAM_WAIT 0x10000u  /* not reading: a link it forwarded to is congested
                                          (upstream_wait.c) */

struct reply_slot {
    struct reply_slot *next;
    struct strbuf buf;
    bool ready;
};

struct client {
    struct server *srv;
    uint64_t id;
    int fd;
    unsigned flags;
    ev_io rio, wio;

    struct strbuf qbuf;            /* unparsed input */
    size_t qbuf_hint;              /* capacity qbuf grew to for a big argument before it was
                                      last emptied: reserved at once for the next (0 = none) */
    bool qbuf_grew;                /* qbuf grew for a big argument since it was last emptied */
    struct resp_parser parser;
    struct resp_arg *argv;         /* the current request's arguments (into qbuf) */
    size_t argc, argv_cap;
    const struct command *cmd;     /* the command being run, or the last one run */
    uint64_t redacted;             /* arguments of the current command that SLOWLOG and
                                      MONITOR show as "(redacted)": client_redact_arg() */

    struct strbuf out;             /* ready to write; out_sent bytes of it already written */
    size_t out_sent;
    size_t out_hint;               /* bytes of the last batch of replies written when it was
                                      too big to keep the buffer: reserved at once for the next */
    struct reply_slot *slot_head, *slot_tail;
    size_t slots;
    size_t slot_bytes;             /* bytes in every slot but the tail (client_output_bytes) */

    int resp;                      /* 2 or 3 */
    int db;
    bool authenticated;
    const struct acl_user *user;   /* the user authenticated as (acl.c); NULL = default */
    char *name;                    /* CLIENT SETNAME; NULL = none */
    char *lib_name, *lib_ver;      /* CLIENT SETINFO */
    char addr[CLIENT_ADDR_MAX], laddr[CLIENT_ADDR_MAX];
    int64_t ctime_ms, last_active_ms;

    struct multi_state *mstate;        /* commands queued since MULTI, or NULL (multi.c) */
    struct watch_rec *watched;         /* the keys this client WATCHes, or NULL (multi.c) */
    struct pubsub_client *pubsub;      /* channels and patterns subscribed, or NULL (pubsub.c) */
    struct blocking_state *bstate;     /* keys waited for while CLIENT_BLOCKED (blocking.c) */
    ev_timer btimer;                   /* the blocked command's timeout; active only while
                                          blocked with one (blocking.c) */
    struct client *unblocked_next;     /* blocking.c's resume queue (CLIENT_UNBLOCKED) */
    struct client *upwait_next;        /* upstream_wait.c's list (CLIENT_UPSTREAM_WAIT) */
    struct upstream_link *upwait_link; /* the congested link waited for; NULL once drained */

    struct store_entry *bigarg;        /* a large bulk argument being read straight into a
                                          string entry, or NULL (client_bigarg_start) */
    size_t bigarg_have, bigarg_need;   /* bytes of it read, and its length + CRLF */

    const char *req_ptr;               /* the current request's own bytes when it came as a
                                          multibulk (into qbuf), for forwarding verbatim */
    size_t req_len;                    /* 0: an inline request */
    struct fwd *fwd_head, *fwd_tail;   /* replies awaited from the upstream (forward.c) */
    struct pin *pin;                   /* private upstream connection, or NULL (pinned.c) */

    struct client *prev, *next;        /* server's client list */
    struct client *pending_next;       /* server's pending-write list */
};

/* Takes ownership of fd (already non-blocking). Links the client into the server. */
struct client *client_create(struct server *srv, int fd, bool unix_socket);

/* Marks c to close at the next flush (deferred free); safe from inside its own command. */
void client_close(struct client *c);
void client_close_after_reply(struct client *c);
/* Frees c now: only the server's flush path and shutdown call this. */
void client_free(struct client *c);
/* RESET's part that belongs to other modules: discards the transaction, forgets the WATCHed
 * keys, drops every subscription without replying and ends MONITOR. */
void client_reset_state(struct client *c);

/* The buffer replies are appended to right now (see the top of this file). */
struct strbuf *client_out_slow(struct client *c);
static inline struct strbuf *client_out(struct client *c)
{
    return c->slot_tail ? client_out_slow(c) : &c->out;
}

/* Opens a pending reply slot at the tail of the FIFO; fill it (then tell client_slot_grew()),
 * then client_slot_ready(). */
struct reply_slot *client_slot_open(struct client *c);
/* Returns a slot to the server's free list (or frees it). */
void client_slot_recycle(struct server *srv, struct reply_slot *s);
/* n bytes were appended to slot (a pending slot filled later): keeps the output count. */
static inline void client_slot_grew(struct client *c, const struct reply_slot *slot, size_t n)
{
    if (slot != c->slot_tail)
        c->slot_bytes += n;
}
void client_slot_ready(struct client *c, struct reply_slot *slot);

/* Large replies written from the caller's bytes (the stored value) instead of copied: see
 * client_reply_direct(). Below this size the copy is cheaper than a system call of its own. */
#define CLIENT_DIRECT_MIN (16 * 1024)

struct iovec;
/* Writes a reply of total bytes (total >= CLIENT_DIRECT_MIN) gathered from iov straight to the
 * socket, and appends to c->out only what the socket did not take. Only when nothing is queued
 * before it (c->out empty, no reply slot) and the reply cannot be cut off again (CLIENT REPLY
 * OFF/SKIP, MULTI, a closing or blocked client...): replies stay in order and the output limit
 * counts exactly the bytes still waiting. false: nothing was done, append it as usual. */
bool client_reply_direct(struct client *c, const struct iovec *iov, int iovcnt, size_t total);

/* Queues c for the flush path (called after anything was appended to its output). */
void client_want_write(struct client *c);
/* Writes as much of c->out as the socket takes. -1 when the client must be closed. */
int client_write(struct client *c);
/* The one flush path (server's prepare watcher and the write watcher): writes, then frees a
 * closing client, re-arms the write watcher, or resumes a paused reader. c may be freed. */
void client_flush(struct client *c);
/* Parses and runs every complete request in the query buffer (stops while paused). */
void client_process_input(struct client *c);

/* Bytes of input held: the query buffer and a large argument being read outside it. */
static inline size_t client_input_bytes(const struct client *c)
{
    return c->qbuf.len + c->bigarg_have;
}

/* Bytes allocated for input (for CLIENT LIST tot-mem and INFO's client memory): the query
 * buffer and a large argument's entry. */
static inline size_t client_input_alloc(const struct client *c)
{
    return c->qbuf.cap + (c->bigarg ? c->bigarg_need : 0);
}

/* Bytes waiting to be written: the unsent part of out and every slot. O(1). */
static inline size_t client_output_bytes(const struct client *c)
{
    return c->out.len - c->out_sent + c->slot_bytes + (c->slot_tail ? c->slot_tail->buf.len : 0);
}

/* The bit of c->redacted for argument i (every argument from 63 on shares the last bit). */
static inline uint64_t client_redact_bit(size_t i)
{
    return (uint64_t)1 << (i < 63 ? i : 63);
}
/* Argument i of the running command is a secret (AUTH's password...): SLOWLOG and MONITOR
 * show "(redacted)" instead, as Redis's redactClientCommandArgument. Cleared per command. */
static inline void client_redact_arg(struct client *c, size_t i)
{
    c->redacted |= client_redact_bit(i);
}

/* Redis's rule for CLIENT SETNAME / HELLO SETNAME: printable ASCII, no spaces. */
bool client_name_valid(const char *p, size_t n);

#endif
