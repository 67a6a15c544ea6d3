/* Routing with an upstream (see route.h). One table says which writes can keep their new value
 * (write-through); command flags decide everything else:
 *   LOCAL -> run here;  STATEFUL or a pinned client -> its private connection (pinned.c);
 *   CACHEABLE -> the near-cache, or a fill;  WRITE -> forwarded, its keys dropped (and the new
 *   value kept when write-through applies);  anything else -> forwarded as it came. */
#include "proxy/route.h"

#include "conf/xmalloc.h"
#include "proxy/args.h"
#include "proxy/client.h"
#include "proxy/command.h"
#include "proxy/forward.h"
#include "proxy/nearcache.h"
#include "proxy/pinned.h"
#include "proxy/pubsub.h"
#include "proxy/reply.h"
#include "proxy/server.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define SIG_STACK 512
#define WT_KEYS_STACK 32   /* keys of a write-through handled without heap arrays */
#define MGET_STACK_KEYS 32 /* keys of an MGET peeked without heap arrays */

/* Writes of string values whose keys are read back and kept after them (write-through): one
 * key (argv[1]) or key/value pairs from argv[1] (MSET). */
struct write_through_rule {
    command_proc *proc;
    size_t stride;      /* 0: one key (argv[1]); 2: key value pairs from argv[1] */
};

static const struct write_through_rule write_through_rules[] = {
    { cmd_set, 0 },
    { cmd_setex, 0 },
    { cmd_psetex, 0 },
    { cmd_setnx, 0 },
    { cmd_mset, 2 },
};

static const struct write_through_rule *write_through_rule_for(const struct command *cmd)
{
    for (size_t i = 0; i < sizeof(write_through_rules) / sizeof(write_through_rules[0]); i++)
        if (write_through_rules[i].proc == cmd->proc)
            return &write_through_rules[i];
    return NULL;
}

/* ---- request signatures: the command and the arguments after its key ---- */

struct sig {
    char stack[SIG_STACK];
    char *p;        /* stack, a heap copy, or the command's name (no arguments after the key) */
    size_t len;
    bool heap;      /* p was allocated */
};

static void sig_append(struct sig *s, const void *data, size_t n)
{
    size_t need = s->len + n;
    if (need > SIG_STACK && s->p == s->stack) {
        char *heap = xmalloc(need * 2);
        memcpy(heap, s->stack, s->len);
        s->p = heap;
        s->heap = true;
    } else if (need > SIG_STACK) {
        s->p = xrealloc(s->p, need * 2);
    }
    memcpy(s->p + s->len, data, n);
    s->len = need;
}

/* Signature of cmd applied to key with the arguments argv[from..argc). */
static void sig_build(struct sig *s, const struct command *cmd, const struct resp_arg *argv,
                      size_t from, size_t argc)
{
    if (from >= argc) { /* GET k and the like: the name and its NUL are the signature */
        s->p = (char *)(uintptr_t)cmd->name;
        s->len = strlen(cmd->name) + 1;
        s->heap = false;
        return;
    }
    s->p = s->stack;
    s->len = 0;
    s->heap = false;
    sig_append(s, cmd->name, strlen(cmd->name) + 1);
    for (size_t i = from; i < argc; i++) {
        uint32_t n = (uint32_t)argv[i].len;
        sig_append(s, &n, sizeof(n));
        sig_append(s, argv[i].ptr, argv[i].len);
    }
}

/* The signature of GET (MGET's elements, write-through values): its name and NUL, as
 * sig_build makes it for `GET key`, without a command table lookup. */
static void sig_get(struct sig *s)
{
    s->p = (char *)(uintptr_t)"get";
    s->len = 4;
    s->heap = false;
}

static void sig_free(struct sig *s)
{
    if (s->heap)
        free(s->p);
}

/* ---- reads ---- */

/* MGET's element for a near-cache reply p of GET (*n bytes): a string or nil as it is; GET's
 * errors (a key of another type) are MGET's nils. */
static const char *mget_element(const char *p, size_t *n)
{
    if (p[0] == '$')
        return p;
    *n = 5;
    return "$-1\r\n";
}

static void route_mget(struct client *c)
{
    struct nearcache *nc = c->srv->nc;
    size_t nkeys = c->argc - 1, nmiss = 0;
    size_t idx = nearcache_link_index(nc, c);
    struct sig s;
    sig_get(&s);
    /* One peek per key; the elements point into the near-cache, valid until it changes (nothing
     * here changes it before they are copied or written), so an MGET of hits only is answered
     * without copying them. */
    const char *el_stack[MGET_STACK_KEYS];
    size_t len_stack[MGET_STACK_KEYS];
    const char **el = nkeys <= MGET_STACK_KEYS ? el_stack : xmalloc(nkeys * sizeof(*el));
    size_t *len = nkeys <= MGET_STACK_KEYS ? len_stack : xmalloc(nkeys * sizeof(*len));
    for (size_t i = 0; i < nkeys; i++) {
        el[i] = nearcache_peek(nc, c, c->argv[i + 1].ptr, c->argv[i + 1].len, s.p, s.len,
                               &len[i]);
        if (el[i])
            el[i] = mget_element(el[i], &len[i]);
        else
            nmiss++;
    }
    struct fwd_mget_part *parts = NULL;
    if (nmiss == 0) { /* every key was a hit */
        reply_array(c, nkeys);
        for (size_t i = 0; i < nkeys; i++)
            reply_raw(c, el[i], len[i]);
    } else { /* the hits are copied: the forward outlives this call */
        parts = xcalloc(nkeys, sizeof(*parts));
        for (size_t i = 0; i < nkeys; i++)
            if (el[i]) {
                parts[i].local = xmemdup(el[i], len[i]);
                parts[i].len = len[i];
            }
    }
    if (el != el_stack) {
        free(el);
        free(len);
    }
    if (nmiss == 0) {
        sig_free(&s);
        return;
    }
    struct fwd *f = fwd_open(c);
    f->parts = parts;
    f->nparts = nkeys;
    struct upstream_link *link = nearcache_link(nc, idx);
    bool sent;
    if (nmiss == nkeys) {
        sent = fwd_send_request(f, link, -1);
    } else {
        const char **argv = xmalloc((nmiss + 1) * sizeof(*argv));
        size_t *lens = xmalloc((nmiss + 1) * sizeof(*lens));
        argv[0] = "MGET";
        lens[0] = 4;
        for (size_t i = 0, j = 1; i < nkeys; i++)
            if (!parts[i].local) {
                argv[j] = c->argv[i + 1].ptr;
                lens[j++] = c->argv[i + 1].len;
            }
        sent = fwd_send_argv(f, link, (int)nmiss + 1, argv, lens);
        free(argv);
        free(lens);
    }
    /* Guards for the misses follow the MGET on the same link (unless it was refused: f and
     * its parts are gone then). */
    if (sent)
        for (size_t i = 0; i < nkeys; i++)
            if (!parts[i].local)
                parts[i].guard = nearcache_guard_external(nc, idx, c->argv[i + 1].ptr,
                                                          c->argv[i + 1].len, s.p, s.len);
    sig_free(&s);
}

static void route_read(struct client *c, const struct command *cmd)
{
    struct nearcache *nc = c->srv->nc;
    /* One key at argv[1] (every cacheable read has it first); EXISTS of several keys and
     * MGET are the multi-key ones. */
    if (cmd->proc == cmd_mget) {
        route_mget(c);
        return;
    }
    if (cmd->last_key != cmd->first_key && c->argc != 2) {
        fwd_send_request(fwd_open(c), nearcache_link(nc, nearcache_link_index(nc, c)), -1);
        return;
    }
    struct sig s;
    sig_build(&s, cmd, c->argv, 2, c->argc);
    const struct resp_arg *key = &c->argv[1];
    if (!nearcache_serve(nc, c, key->ptr, key->len, s.p, s.len))
        nearcache_fill(nc, c, key->ptr, key->len, s.p, s.len);
    sig_free(&s);
}

/* ---- writes ---- */

/* withhold: a write-through guard follows for the key (route_write), which reuses the entry. */
static void drop_one(struct client *c, const struct resp_arg *a, struct fwd *f, struct pin *p,
                     bool withhold)
{
    if (!nearcache_may_hold(c->srv->nc, a->ptr, a->len))
        return; /* bcast: outside every prefix, never held: nothing to drop, now or later */
    if (withhold)
        nearcache_withhold_key(c->srv->nc, a->ptr, a->len);
    else
        nearcache_drop_key(c->srv->nc, a->ptr, a->len);
    if (f)
        fwd_add_key(f, a->ptr, a->len);
    if (p)
        pin_note_written(p, a->ptr, a->len);
}

static void drop_write_keys(struct client *c, const struct command *cmd, struct fwd *f,
                            struct pin *p, bool withhold)
{
    struct nearcache *nc = c->srv->nc;
    if (cmd && cmd->first_key <= 0) { /* FLUSHALL, FLUSHDB: the keys are all of them */
        nearcache_flush(nc, "a flush was forwarded");
        if (f)
            f->flags |= FWD_FLUSH_AFTER;
        if (p)
            pin_note_all(p);
        return;
    }
    if (!cmd || (cmd->flags & CMD_MOVABLEKEYS)) { /* keys anywhere: every argument may be one */
        for (size_t i = 1; i < c->argc; i++)
            drop_one(c, &c->argv[i], f, p, withhold);
        return;
    }
    long argc = (long)c->argc;
    long last = cmd->last_key < 0 ? argc + cmd->last_key : cmd->last_key;
    if (last > argc - 1)
        last = argc - 1;
    long step = cmd->key_step > 0 ? cmd->key_step : 1;
    for (long i = cmd->first_key; i <= last; i += step)
        drop_one(c, &c->argv[i], f, p, withhold);
}

void route_drop_write_keys(struct client *c, const struct command *cmd, struct fwd *f,
                           struct pin *p)
{
    drop_write_keys(c, cmd, f, p, false);
}

static void route_write(struct client *c, const struct command *cmd)
{
    struct nearcache *nc = c->srv->nc;
    size_t idx = nearcache_link_index(nc, c);
    struct fwd *f = fwd_open(c);
    const struct write_through_rule *r = c->srv->cfg.write_through ? write_through_rule_for(cmd)
                                                                    : NULL;
    /* Keys a guard will follow are withheld (the entry kept for its store), the others dropped;
     * a key that gets no guard after all is dropped below. */
    drop_write_keys(c, cmd, f, NULL, r != NULL);
    /* The write, then (write-through) a guard per key whose read follows it on the same link
     * and stores what it returns (nearcache_guard_reread): GET and PTTL for one key (its TTL
     * may be any), one MGET for all of MSET's (none have a TTL). */
    struct nc_guard *stack_guards[WT_KEYS_STACK];
    size_t nkeys = !r ? 0 : r->stride ? (c->argc - 1) / 2 : 1;
    bool on_stack = nkeys <= WT_KEYS_STACK;
    struct nc_guard **guards = on_stack ? stack_guards : xmalloc(nkeys * sizeof(*guards));
    bool sent = fwd_send_request(f, nearcache_link(nc, idx), -1);
    size_t nwt = 0;
    struct sig s;
    if (r && sent) {
        sig_get(&s);
        if (r->stride) { /* MSET: one MGET reads every key it may hold back (no TTL) */
            const char *keys_stack[WT_KEYS_STACK];
            size_t klens_stack[WT_KEYS_STACK];
            const char **keys = on_stack ? keys_stack : xmalloc(nkeys * sizeof(*keys));
            size_t *klens = on_stack ? klens_stack : xmalloc(nkeys * sizeof(*klens));
            size_t nheld = 0; /* bcast: the keys under a prefix (guards[] follows them) */
            for (size_t k = 0; k < nkeys; k++) {
                const struct resp_arg *key = &c->argv[1 + 2 * k];
                if (!nearcache_may_hold(nc, key->ptr, key->len))
                    continue;
                keys[nheld] = key->ptr;
                klens[nheld++] = key->len;
            }
            if (nheld)
                nearcache_guard_group(nc, idx, keys, klens, nheld, s.p, s.len, guards);
            if (!on_stack) {
                free(keys);
                free(klens);
            }
        }
        for (size_t k = 0, held = 0; k < nkeys; k++) {
            const struct resp_arg *key = &c->argv[r->stride ? 1 + 2 * k : 1];
            if (!nearcache_may_hold(nc, key->ptr, key->len))
                continue; /* f does not remember it either (drop_one): wt stays aligned */
            struct nc_guard *g = r->stride ? guards[held++] /* held >= nwt: not yet reused */
                                           : nearcache_guard_reread(nc, idx, key->ptr,
                                                                    key->len, s.p, s.len);
            guards[nwt++] = g; /* aligned with the keys f remembers (the same positions) */
            if (!g)
                nearcache_drop_key(nc, key->ptr, key->len); /* no store follows */
        }
        sig_free(&s);
        if (nwt == 1) { /* one key (SET): the forward's own room, no allocation */
            f->wt_one = guards[0];
            f->wt = &f->wt_one;
        } else if (nwt) {
            f->wt = (struct nc_guard **)(void *)xmemdup(guards, nwt * sizeof(*guards));
        }
        f->nwt = nwt;
    }
    if (r && !sent) /* nothing follows: withheld entries go */
        for (size_t k = 0; k < nkeys; k++) {
            const struct resp_arg *key = &c->argv[r->stride ? 1 + 2 * k : 1];
            nearcache_drop_key(nc, key->ptr, key->len);
        }
    if (guards != stack_guards)
        free(guards);
}

/* ---- the entry points ---- */

bool route_command(struct client *c, const struct command *cmd)
{
    struct nearcache *nc = c->srv->nc;
    if (cmd->proc == cmd_select) {
        if (!c->pin && c->argc == 2 && arg_is(&c->argv[1], "0"))
            return false; /* database 0 is the shared links' */
        pin_forward(c, cmd);
        return true;
    }
    if (pubsub_is_subscription(cmd))
        return false; /* served by the sidecar's own pub/sub */
    if ((cmd->flags & CMD_LOCAL) && !(cmd->flags & CMD_NOAUTH) && c->pin &&
        (c->pin->reasons & PIN_MULTI)) {
        pin_forward(c, cmd); /* inside MULTI the upstream queues it, as Redis would */
        return true;
    }
    if (cmd->flags & CMD_LOCAL)
        return false;
    if (pin_wanted(c, cmd)) {
        pin_forward(c, cmd);
        return true;
    }
    if (cmd->flags & CMD_CACHEABLE) {
        route_read(c, cmd);
    } else if (cmd->flags & CMD_WRITE) {
        route_write(c, cmd);
    } else {
        fwd_send_request(fwd_open(c), nearcache_link(nc, nearcache_link_index(nc, c)), -1);
    }
    return true;
}

void route_unknown(struct client *c)
{
    struct nearcache *nc = c->srv->nc;
    if (c->pin && (c->pin->reasons || c->pin->inflight)) {
        pin_forward(c, NULL);
        return;
    }
    struct fwd *f = fwd_open(c);
    route_drop_write_keys(c, NULL, f, NULL);
    fwd_send_request(f, nearcache_link(nc, nearcache_link_index(nc, c)), -1);
}
