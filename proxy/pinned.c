/* Private upstream connections (see pinned.h): creation on the first stateful command, the
 * state each command starts or ends (one table), and the transaction's written keys. */
#include "proxy/pinned.h"

#include "conf/xmalloc.h"
#include "proxy/args.h"
#include "proxy/client.h"
#include "proxy/command.h"
#include "proxy/forward.h"
#include "proxy/multi.h"
#include "proxy/nearcache.h"
#include "proxy/numbers.h"
#include "proxy/route.h"
#include "proxy/server.h"
#include "upstream/link.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* What a command does to the pin's reasons: set when it is sent (the client's next requests
 * follow it to the pin even before the reply), cleared when it is answered (the upstream's
 * state is known then; until that, requests in flight keep the client pinned anyway). Both
 * only for a call with the command's exact arity: a malformed one changes nothing upstream. */
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

bool pin_in_multi(const struct client *c)
{
    return c->pin && (c->pin->reasons & PIN_MULTI);
}

bool pin_wanted(const struct client *c, const struct command *cmd)
{
    if (c->pin && (c->pin->reasons || c->pin->inflight))
        return true;
    return (cmd->flags & CMD_STATEFUL) != 0;
}

static struct pin *pin_create(struct client *c)
{
    struct server *srv = c->srv;
    struct pin *p = xcalloc(1, sizeof(*p));
    char name[48];
    snprintf(name, sizeof(name), "client-%llu", (unsigned long long)c->id);
    p->c = c;
    p->link = upstream_link_create(srv->loop, &srv->cfg.upstream, &srv->log, name);
    upstream_link_set_hold(p->link, true);
    srv->pinned_clients++;
    return p;
}

static void pin_txn_clear(struct pin *p)
{
    for (size_t i = 0; i < p->ntxn; i++)
        free(p->txn_keys[i]);
    free(p->txn_keys);
    free(p->txn_klens);
    p->txn_keys = NULL;
    p->txn_klens = NULL;
    p->ntxn = 0;
    p->txn_overflow = false;
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

void pin_forward(struct client *c, const struct command *cmd)
{
    struct pin *p = c->pin ? c->pin : (c->pin = pin_create(c));
    const struct pin_effect *eff = pin_effect_for(cmd);
    if (eff && cmd->arity > 0 && c->argc != (size_t)cmd->arity)
        eff = NULL;
    if (eff)
        p->reasons |= eff->set;
    if (cmd && cmd->proc == cmd_select) {
        if (c->argc == 2 && arg_is(&c->argv[1], "0"))
            p->reasons &= ~PIN_DB;
        else
            p->reasons |= PIN_DB;
    }
    struct fwd *f = fwd_open(c);
    f->pin = p;
    p->inflight++;
    if (eff && eff->ends_txn)
        f->flags |= FWD_ENDS_TXN;
    if (eff)
        f->pin_clear = eff->clear;
    if (!cmd || (cmd->flags & CMD_WRITE))
        route_drop_write_keys(c, cmd, f, p);
    long long timeout = cmd && (cmd->flags & CMD_BLOCKING) ? pin_blocking_deadline(c) : -1;
    fwd_send_request(f, p->link, timeout);
}

void pin_request_done(struct pin *p, struct fwd *f)
{
    p->inflight--;
    p->reasons &= ~f->pin_clear;
    if (!(f->flags & FWD_ENDS_TXN))
        return;
    struct nearcache *nc = p->c->srv->nc;
    if (p->txn_overflow)
        nearcache_flush(nc, "a transaction wrote too many keys");
    else
        for (size_t i = 0; i < p->ntxn; i++)
            nearcache_drop_key(nc, p->txn_keys[i], p->txn_klens[i]);
    pin_txn_clear(p);
}

void pin_client_gone(struct client *c)
{
    struct pin *p = c->pin;
    if (!p)
        return;
    upstream_link_destroy(p->link);
    pin_txn_clear(p);
    c->srv->pinned_clients--;
    free(p);
    c->pin = NULL;
}
