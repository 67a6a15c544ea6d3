/* Private upstream connections (see pinned.h): creation on the first stateful command, the
 * state each command starts or ends (one table), the transaction's written keys, and what is
 * kept or answered when the connection is lost with state on it (the database is selected
 * again by the link's handshake; a lost MULTI or WATCH is answered here: see pinned.h). */
#include "proxy/pinned.h"

#include "conf/xmalloc.h"
#include "proxy/args.h"
#include "proxy/client.h"
#include "proxy/command.h"
#include "proxy/forward.h"
#include "proxy/multi.h"
#include "proxy/nearcache.h"
#include "proxy/numbers.h"
#include "proxy/reply.h"
#include "proxy/route.h"
#include "proxy/server.h"
#include "proxy/upstream_wait.h"
#include "upstream/link.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* What a command does to the pin's reasons, applied when it is sent, in the client's order:
 * the client's next requests follow a MULTI to the pin before its reply, and an EXEC ends the
 * reasons at once (its requests in flight keep the client pinned until it is answered). At
 * the reply only a failed MULTI or WATCH is undone: it never took effect, and every request
 * sent after it on the same connection failed as well. Clearing at the reply instead let the
 * EXEC of one transaction, answered after the client's next MULTI was sent, end that MULTI
 * too: the rest of the transaction ran outside it, on the shared links. Only for a call with
 * the command's exact arity: a malformed one changes nothing upstream. */
struct pin_effect {
    command_proc *proc;
    unsigned set, clear;
    bool ends_txn;          /* EXEC, DISCARD: the transaction's keys are dropped at the reply */
};

static const struct pin_effect pin_effects[] = {
    { cmd_multi, PIN_MULTI, 0, false },
    { cmd_exec, 0, PIN_MULTI | PIN_WATCH, true },
    { cmd_discard, 0, PIN_MULTI | PIN_WATCH, true },
    { cmd_watch, PIN_WATCH, 0, false },
    { cmd_unwatch, 0, PIN_WATCH, false },
    { cmd_reset, 0, PIN_MULTI | PIN_WATCH | PIN_DB, true },
};

static const struct pin_effect *pin_effect_for(const struct command *cmd)
{
    for (size_t i = 0; cmd && i < sizeof(pin_effects) / sizeof(pin_effects[0]); i++)
        if (pin_effects[i].proc == cmd->proc)
            return &pin_effects[i];
    return NULL;
}

static void pin_send_discard(struct client *c, struct pin *p, unsigned flags);
static void pin_txn_end(struct pin *p);

bool pin_in_multi(const struct client *c)
{
    return c->pin && (c->pin->reasons & PIN_MULTI);
}

void pin_flag_error(struct client *c)
{
    if (pin_in_multi(c))
        c->pin->txn_flagged = true;
}

void pin_abort_txn(struct client *c)
{
    if (!pin_in_multi(c))
        return;
    c->pin->txn_flagged = false;
    pin_send_discard(c, c->pin, FWD_DISCARD);
}

bool pin_wanted(const struct client *c, const struct command *cmd)
{
    if (c->pin && (c->pin->reasons || c->pin->inflight))
        return true;
    return (cmd->flags & CMD_STATEFUL) != 0;
}

static void pin_txn_clear(struct pin_txn *t);

/* The private connection was lost (state DOWN after UP): its MULTI and WATCH went with it.
 * Requests in flight were completed first (pin_request_done), so what is left in reasons was
 * in effect upstream. */
static void pin_link_state_cb(void *arg, struct upstream_link *link, enum upstream_state state)
{
    (void)link;
    struct pin *p = arg;
    if (state == UPSTREAM_DOWN)
        p->lost |= p->reasons & (PIN_MULTI | PIN_WATCH);
}

static struct pin *pin_create(struct client *c)
{
    struct server *srv = c->srv;
    struct pin *p = xcalloc(1, sizeof(*p));
    char name[48];
    snprintf(name, sizeof(name), "client-%llu", (unsigned long long)c->id);
    p->c = c;
    p->db = -1;
    p->link = upstream_link_create(srv->loop, &srv->cfg.upstream, &srv->log, name);
    upstream_link_set_hold(p->link, true);
    upstream_link_set_state_cb(p->link, pin_link_state_cb, p);
    upstream_link_set_drain_cb(p->link, upwait_link_drained, srv);
    srv->pinned_clients++;
    return p;
}

/* The database the upstream accepted is the one every later connection selects (after the
 * configured one, which the link selects itself). */
static void pin_set_db(struct pin *p, long long db)
{
    p->db = db;
    if (db == p->c->srv->cfg.upstream.db) {
        upstream_link_set_handshake(p->link, 0, NULL, NULL);
        return;
    }
    char num[32];
    snprintf(num, sizeof(num), "%lld", db);
    const char *argv[] = { "SELECT", num };
    const size_t lens[] = { 6, strlen(num) };
    upstream_link_set_handshake(p->link, 2, argv, lens);
}

/* Answers c's request here with bytes (a lost transaction's replies). */
static void pin_answer(struct client *c, const char *reply)
{
    fwd_complete_bytes(fwd_open(c), reply, strlen(reply));
}

#define LOST_TXN_ERR "-ERR upstream connection lost inside MULTI: the transaction is discarded\r\n"

/* Ends p's transaction upstream with a DISCARD in c's reply order; flags says what its +OK
 * becomes for the client (FWD_EXEC_ABORTED: nil, FWD_EXEC_FLAGGED: EXECABORT, FWD_DISCARD:
 * nothing). The reply clears MULTI and WATCH on p, as EXEC's or DISCARD's would. */
static void pin_send_discard(struct client *c, struct pin *p, unsigned flags)
{
    struct fwd *f = fwd_open(c);
    f->pin = p;
    p->inflight++;
    f->flags |= FWD_ENDS_TXN | flags;
    f->pin_clear = PIN_MULTI | PIN_WATCH;
    p->reasons &= ~f->pin_clear;
    pin_txn_end(p);
    const char *argv[] = { "DISCARD" };
    const size_t lens[] = { 7 };
    fwd_send_argv(f, p->link, 1, argv, lens);
}

/* The upstream's MULTI or WATCH of this client was lost with its connection: answers here what
 * must not reach the new connection. True when c's request was answered (or sent) here. */
static bool pin_forward_lost(struct client *c, struct pin *p, const struct pin_effect *eff)
{
    command_proc *proc = eff ? eff->proc : NULL;
    if (proc == cmd_reset) {
        p->lost = 0; /* forwarded: RESET ends whatever is left upstream */
        return false;
    }
    if (p->lost & PIN_MULTI) {
        if (proc == cmd_exec || proc == cmd_discard) {
            pin_answer(c, proc == cmd_exec ? ERR_EXECABORT_RESP : "+OK\r\n");
            p->reasons &= ~(PIN_MULTI | PIN_WATCH);
            p->lost = 0;
            pin_txn_clear(&p->txn); /* never ran: nothing to drop */
        } else {
            pin_answer(c, LOST_TXN_ERR);
        }
        return true;
    }
    /* only the WATCH was lost */
    if (proc == cmd_exec && (p->reasons & PIN_MULTI)) {
        p->lost = 0;
        pin_send_discard(c, p, FWD_EXEC_ABORTED);
        return true;
    }
    if (proc == cmd_discard || proc == cmd_unwatch)
        p->lost = 0; /* forwarded: no WATCH is left to honour */
    return false;
}

static void pin_txn_clear(struct pin_txn *t)
{
    for (size_t i = 0; i < t->n; i++)
        free(t->keys[i]);
    free(t->keys);
    free(t->klens);
    t->keys = NULL;
    t->klens = NULL;
    t->n = 0;
    t->overflow = false;
}

void pin_note_written(struct pin *p, const char *key, size_t len)
{
    struct pin_txn *t = &p->txn;
    if (!(p->reasons & PIN_MULTI) || t->overflow)
        return;
    if (t->n == PIN_TXN_KEYS_MAX) {
        pin_txn_clear(t);
        t->overflow = true;
        return;
    }
    if ((t->n & (t->n - 1)) == 0) {
        size_t cap = t->n ? t->n * 2 : 1;
        t->keys = xrealloc(t->keys, cap * sizeof(*t->keys));
        t->klens = xrealloc(t->klens, cap * sizeof(*t->klens));
    }
    t->keys[t->n] = xmemdup(key, len);
    t->klens[t->n++] = len;
}

void pin_note_all(struct pin *p)
{
    if (p->reasons & PIN_MULTI) {
        pin_txn_clear(&p->txn);
        p->txn.overflow = true;
    }
}

/* The request that ends the open transaction (EXEC, DISCARD, RESET) is being sent: its keys
 * wait for that request's reply, behind the transactions ended before it. */
static void pin_txn_end(struct pin *p)
{
    struct pin_txn *t = (struct pin_txn *)(void *)xmemdup(&p->txn, sizeof(p->txn));
    memset(&p->txn, 0, sizeof(p->txn));
    t->next = NULL;
    if (p->ended_tail)
        p->ended_tail->next = t;
    else
        p->ended = t;
    p->ended_tail = t;
}

/* The oldest ended transaction's request was answered (or failed: it may have run). */
static void pin_txn_answered(struct pin *p)
{
    struct pin_txn *t = p->ended;
    if (!t)
        return;
    p->ended = t->next;
    if (!p->ended)
        p->ended_tail = NULL;
    struct nearcache *nc = p->c->srv->nc;
    if (t->overflow)
        nearcache_flush(nc, "a transaction wrote too many keys");
    else
        for (size_t i = 0; i < t->n; i++)
            nearcache_drop_key(nc, t->keys[i], t->klens[i]);
    pin_txn_clear(t);
    free(t);
}

/* A blocking command's deadline: its timeout (the last argument, or the first for BLMPOP and
 * BZMPOP: the larger that parses) plus op_timeout_ms; 0 (none) for a timeout of 0. */
static long long pin_blocking_deadline(const struct client *c)
{
    double best = -1;
    const struct resp_arg *cand[2] = { &c->argv[c->argc - 1], &c->argv[1] };
    for (int i = 0; i < 2; i++) {
        double v;
        if (!num_parse_double(cand[i]->ptr, cand[i]->len, &v) || v < 0)
            continue;
        if (v == 0)
            return 0;
        if (v > best)
            best = v;
    }
    if (best < 0)
        return -1; /* malformed: the upstream answers at once */
    return (long long)(best * 1000.0) + c->srv->cfg.upstream.op_timeout_ms;
}

void pin_forward_silent(struct client *c, const struct command *cmd)
{
    struct fwd *tail = c->fwd_tail;
    pin_forward(c, cmd);
    if (c->fwd_tail != tail && c->fwd_tail)
        c->fwd_tail->flags |= FWD_DISCARD;
}

/* c's forwards still in flight on the shared links must run before anything sent on p: each
 * is marked, counted, and p's link gate stays closed until the last one is done. Those are
 * all there will be: while p has requests in flight, c's new requests all come here. */
static void pin_gate(struct client *c, struct pin *p)
{
    size_t n = 0;
    for (struct fwd *f = c->fwd_head; f; f = f->cnext) {
        if (!f->pin && !(f->flags & FWD_GATING)) {
            f->flags |= FWD_GATING;
            n++;
        }
    }
    if (n == 0)
        return;
    p->gate_wait += n;
    upstream_link_set_gate(p->link, true);
}

void pin_shared_done(struct pin *p)
{
    if (p->gate_wait > 0 && --p->gate_wait == 0)
        upstream_link_set_gate(p->link, false);
}

void pin_forward(struct client *c, const struct command *cmd)
{
    struct pin *p = c->pin ? c->pin : (c->pin = pin_create(c));
    pin_gate(c, p);
    const struct pin_effect *eff = pin_effect_for(cmd);
    if (eff && cmd->arity > 0 && c->argc != (size_t)cmd->arity)
        eff = NULL;
    if (p->lost && pin_forward_lost(c, p, eff))
        return;
    if (p->txn_flagged && eff && (eff->proc == cmd_exec || eff->proc == cmd_discard ||
                                  eff->proc == cmd_reset)) {
        p->txn_flagged = false;
        if (eff->proc == cmd_exec && (p->reasons & PIN_MULTI)) {
            pin_send_discard(c, p, FWD_EXEC_FLAGGED); /* the client gets EXECABORT */
            return;
        }
    }
    if (eff)
        p->reasons = (p->reasons & ~eff->clear) | eff->set;
    long long db = -1;
    if (cmd && cmd->proc == cmd_select) {
        if (c->argc == 2 && arg_is(&c->argv[1], "0"))
            p->reasons &= ~PIN_DB;
        else
            p->reasons |= PIN_DB;
        if (c->argc != 2 || !num_parse_ll(c->argv[1].ptr, c->argv[1].len, &db) || db < 0)
            db = -1; /* the upstream refuses it */
    }
    struct fwd *f = fwd_open(c);
    f->pin = p;
    p->inflight++;
    if (eff && eff->ends_txn) {
        f->flags |= FWD_ENDS_TXN;
        pin_txn_end(p);
    }
    if (eff) {
        f->pin_clear = eff->clear;
        f->pin_set = eff->set;
    }
    if (db >= 0) {
        f->flags |= FWD_PIN_SELECT;
        f->pin_db = db;
    }
    if (!cmd || (cmd->flags & CMD_WRITE))
        route_drop_write_keys(c, cmd, f, p);
    long long timeout = cmd && (cmd->flags & CMD_BLOCKING) ? pin_blocking_deadline(c) : -1;
    fwd_send_request(f, p->link, timeout);
}

void pin_request_done(struct pin *p, struct fwd *f, const struct upstream_reply *r)
{
    p->inflight--;
    bool accepted = r->status == UPSTREAM_OK &&
                    upstream_value_type(r->value) == UPSTREAM_VALUE_STATUS;
    if (r->status != UPSTREAM_OK)
        p->reasons &= ~f->pin_set; /* a MULTI or WATCH that failed upstream never took effect */
    bool reset = (f->flags & FWD_ENDS_TXN) && (f->pin_clear & PIN_DB);
    if ((f->flags & FWD_PIN_SELECT) || reset) {
        if (accepted)
            pin_set_db(p, reset ? 0 : f->pin_db); /* RESET selects database 0 */
        /* as at the send: a database other than 0 keeps the client here (replies come in
           send order, so the last one in flight decides) */
        if (p->db > 0)
            p->reasons |= PIN_DB;
        else
            p->reasons &= ~PIN_DB;
    }
    if (f->flags & FWD_ENDS_TXN)
        pin_txn_answered(p);
}

void pin_client_gone(struct client *c)
{
    struct pin *p = c->pin;
    if (!p)
        return;
    upstream_link_destroy(p->link);
    pin_txn_clear(&p->txn);
    while (p->ended) {
        struct pin_txn *t = p->ended;
        p->ended = t->next;
        pin_txn_clear(t);
        free(t);
    }
    c->srv->pinned_clients--;
    free(p);
    c->pin = NULL;
}
