/* Forwarded requests: a reply a client waits for from the upstream (DESIGN.md section 3, step
 * 4). Each one holds a pending reply slot of its client, so replies keep request order whatever
 * mixes of hits, misses and writes a pipeline holds.
 *
 * Ownership (DESIGN.md section 5, twemproxy's rule): hiredis never sees a client. A forward
 * either owns an upstream request (req; its callback gets the forward as owner) or waits on a
 * near-cache fill shared by several clients (a guard's waiter list, nearcache.c). When its
 * client goes away first, fwd_client_gone() cancels its request (the upstream layer swallows
 * the reply) or leaves it on the guard with c == NULL, and the guard frees it. A forward is in
 * exactly one of: its client's list (c != NULL), or a guard's list after the client left.
 *
 * Post-processing at the reply: the keys a write named are dropped from the near-cache again
 * (read-your-writes: whatever a fill stored while the write was in flight is gone), the
 * write-through guards learn whether the write succeeded, an MGET merges its local hits with
 * the upstream's answer for the rest, a private connection counts the request done. */
#ifndef PROXY_FORWARD_H
#define PROXY_FORWARD_H

#include "upstream/request.h"

#include <stdbool.h>
#include <stddef.h>

struct client;
struct reply_slot;
struct pin;
struct nc_guard;
struct upstream_link;
struct strbuf;
struct slowlog_entry;

/* Keys kept by a forward (copied: the request's arguments do not outlive it). */
#define FWD_KEYS_MAX 1024        /* more than this: the whole near-cache is flushed instead */

#define FWD_DISCARD 0x01u        /* CLIENT REPLY OFF/SKIP: the slot stays empty */
#define FWD_FLUSH_AFTER 0x02u    /* FLUSHALL/FLUSHDB or too many keys: flush at the reply */
#define FWD_ENDS_TXN 0x08u       /* EXEC, DISCARD, RESET on a pin: drop its transaction's keys */
#define FWD_PIN_SELECT 0x10u     /* SELECT on a pin: pin_db is the database it selects */
#define FWD_EXEC_ABORTED 0x20u   /* an EXEC sent as DISCARD (its WATCH was lost): a +OK reply
                                    reaches the client as the null array of an aborted EXEC */
#define FWD_GATING 0x40u         /* on a shared link, and its client's private connection waits
                                    for it (pinned.c: pin_gate) */
#define FWD_EXEC_FLAGGED 0x80u   /* an EXEC sent as DISCARD (a command of its transaction was
                                    refused here): a +OK reply reaches the client as EXECABORT */
#define FWD_ARGV_STACK 16
#define FWD_NAME_MAX 64          /* bytes of a command name quoted in an error */        /* arguments formatted without a heap array */

/* One element of an MGET answered partly from the near-cache. */
struct fwd_mget_part {
    char *local;                 /* the element's RESP bytes when it was a hit, else NULL */
    size_t len;
    struct nc_guard *guard;      /* a miss: the fill guard told the element (may be NULL) */
};

/* The keys a forwarded write names, copied end to end into one buffer: key i is
 * bytes[ends[i - 1] (0 for i = 0) .. ends[i]). Both arrays are kept when the forward is recycled
 * (up to FWD_KEYS_KEEP_BYTES), so a write through a warm server allocates nothing for them. */
struct fwd_keys {
    char *bytes;
    size_t len, cap;
    size_t *ends;
    size_t n, ncap;
};

/* Key bytes a recycled forward keeps allocated (more is freed when it is recycled). */
#define FWD_KEYS_KEEP_BYTES 4096

struct fwd {
    struct client *c;            /* NULL once the client went away */
    struct reply_slot *slot;
    struct fwd *cprev, *cnext;   /* the client's forwards, oldest first */
    struct fwd *wnext;           /* the next waiter of the same guard */
    struct upstream_req *req;    /* the request this forward owns, NULL when on a guard */
    struct pin *pin;             /* a private connection counting it in flight, or NULL */
    unsigned pin_clear;          /* PIN_* reasons it ended when sent (PIN_DB: a RESET, whose
                                    reply sets the pin's database) */
    unsigned pin_set;            /* PIN_* reasons it started (undone when it fails upstream) */
    long long pin_db;            /* FWD_PIN_SELECT: the database */
    unsigned flags;              /* FWD_* */
    struct fwd_keys keys;        /* written keys to drop again at the reply */
    struct nc_guard **wt;        /* write-through guards whose keys the reply's drop keeps
                                    withheld for them: wt[i] is keys[i]'s, or NULL */
    size_t nwt;
    struct nc_guard *wt_one;     /* wt's storage for a write of one key */
    struct fwd_mget_part *parts; /* MGET: every requested key in order */
    size_t nparts;
    struct slowlog_entry *slow;  /* the request's arguments and start while the slowlog is on
                                    (slowlog.c), logged at the reply when slow; or NULL */
};

/* A forward for c's current request: opens its reply slot (after everything c was answered
 * so far) and links it into c's list. Owned by c until completed. */
struct fwd *fwd_open(struct client *c);

/* Sends c's current request (its own bytes when it came as a multibulk, else its arguments)
 * on link, with the given deadline (-1: the link's op_timeout_ms; 0: none; > 0: ms). The
 * reply completes f. False when the link refused it: f was completed (and freed) at once. */
bool fwd_send_request(struct fwd *f, struct upstream_link *link, long long timeout_ms);
/* Sends c's current request on link for another owner (a near-cache fill): cb(owner, r) gets
 * the reply. NULL when the link refuses it (cb never called). */
struct upstream_req *fwd_send_client_request(struct client *c, struct upstream_link *link,
                                             long long timeout_ms,
                                             void (*cb)(void *owner,
                                                        const struct upstream_reply *r),
                                             void *owner);
/* The same with an argument vector of the caller's (copied during the call). */
bool fwd_send_argv(struct fwd *f, struct upstream_link *link, int argc, const char *const *argv,
                   const size_t *argvlen);

/* Completion: writes r (the upstream's reply re-encoded, or the error a client gets for an
 * upstream failure) into f's slot, runs the post-processing and frees f. */
void fwd_complete(struct fwd *f, const struct upstream_reply *r);
/* Completion with bytes already encoded (a shared fill's reply). */
void fwd_complete_bytes(struct fwd *f, const char *p, size_t n);

/* Remembers a key the forwarded write names (dropped from the near-cache at the reply). */
void fwd_add_key(struct fwd *f, const char *key, size_t klen);

/* The error line a client gets for an upstream failure ("-ERR upstream timeout\r\n", ...). */
void fwd_format_failure(struct strbuf *b, const struct upstream_reply *r);

/* Frees the server's recycled forwards and reply slots (shutdown, after every client). */
struct server;
void fwd_pool_free(struct server *srv);

/* c is being freed: cancels or detaches every forward of c (see the top of this file). */
void fwd_client_gone(struct client *c);

#endif
