/* Command dispatch, in Redis 7's order of checks: unknown command or subcommand, arity,
 * authentication, memory budget, the RESP2 subscriber context; then, inside MULTI, the
 * command is queued (+QUEUED), else the handler runs with c->cmd set (dispatch_call, which
 * EXEC also uses for each queued command).
 * Every refusal goes through dispatch_reject: inside MULTI it flags the transaction, and a
 * refused EXEC ends it with -EXECABORT, as Redis's rejectCommand.
 * Blocking commands: while clients are blocked, the keys of every write command that ran are
 * signalled to the blocking registry (dispatch_call); after each request (after a whole EXEC)
 * the ready keys are served. A request that blocked gets its reply rules applied
 * (dispatch_request_done) when it is answered, not when it returns. */
#include "proxy/dispatch.h"

#include "cache/store.h"
#include "proxy/acl.h"
#include "proxy/blocking.h"
#include "proxy/client.h"
#include "proxy/cmdstats.h"
#include "proxy/command.h"
#include "proxy/monitor.h"
#include "proxy/multi.h"
#include "proxy/pinned.h"
#include "proxy/pubsub.h"
#include "proxy/reply.h"
#include "proxy/route.h"
#include "proxy/server.h"
#include "proxy/slowlog.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define UNKNOWN_ARGS_MAX 128
#define REJECT_MSG_MAX 1024
#define ERR_MONITOR_KEYSPACE "ERR Replica can't interact with the keyspace"

static bool arity_ok(const struct command *cmd, size_t argc)
{
    return cmd->arity > 0 ? argc == (size_t)cmd->arity : argc >= (size_t)-cmd->arity;
}

/* printf's "%.*s" of an argument stops at a NUL, as Redis's does. */
static int c_len(const struct resp_arg *a, int max)
{
    size_t n = strnlen(a->ptr, a->len < (size_t)max ? a->len : (size_t)max);
    return (int)n;
}

/* Replies the refusal `text` (an error line without '-') of the request; cmd is the row found,
 * or NULL. */
static void dispatch_reject(struct client *c, const struct command *cmd, const char *text)
{
    if (cmd) /* cmdstats: rejected_calls, as Redis's rejectCommand */
        cmdstats_rejected(c->srv, cmd);
    if (cmd && multi_is_exec(cmd)) {
        pin_abort_txn(c); /* its private connection's MULTI ends as well */
        multi_abort_exec(c, text);
        return;
    }
    multi_flag_error(c);
    pin_flag_error(c); /* the same inside MULTI on a private upstream connection */
    reply_error(c, text);
}

static void dispatch_rejectf(struct client *c, const struct command *cmd, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void dispatch_rejectf(struct client *c, const struct command *cmd, const char *fmt, ...)
{
    char msg[REJECT_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    dispatch_reject(c, cmd, msg);
}

static void reject_unknown_command(struct client *c)
{
    char args[UNKNOWN_ARGS_MAX * 2 + 8];
    size_t len = 0;
    args[0] = '\0';
    for (size_t i = 1; i < c->argc && len < UNKNOWN_ARGS_MAX; i++) {
        int room = UNKNOWN_ARGS_MAX - (int)len;
        int n = snprintf(args + len, sizeof(args) - len, "'%.*s' ", c_len(&c->argv[i], room),
                         c->argv[i].ptr);
        if (n < 0)
            break;
        len += (size_t)n < sizeof(args) - len ? (size_t)n : sizeof(args) - len - 1;
    }
    dispatch_rejectf(c, NULL, "ERR unknown command '%.*s', with args beginning with: %s",
                     c_len(&c->argv[0], 128), c->argv[0].ptr, args);
}

/* The user may not run the command: Redis 7.0's NOPERM, naming it as Redis does ("set",
 * "config|get"; a forwarded command by its name in lower case). */
static void reject_noperm(struct client *c, const struct command *parent,
                          const struct command *cmd)
{
    char fullname[96];
    if (cmd) {
        command_fullname(parent, cmd, fullname, sizeof(fullname));
    } else {
        int n = c_len(&c->argv[0], (int)sizeof(fullname) - 1);
        for (int i = 0; i < n; i++)
            fullname[i] = (char)tolower((unsigned char)c->argv[0].ptr[i]);
        fullname[n] = '\0';
    }
    dispatch_rejectf(c, cmd, "NOPERM this user has no permissions to run the '%s' command",
                     fullname);
}

/* Whether c's user may run the request: the subcommand row when there is one (Redis checks
 * "config|get"), NULL for a command the sidecar does not know. */
static bool dispatch_permitted(const struct client *c, const struct command *cmd,
                               const struct command **parent, const struct command **sub)
{
    *parent = NULL;
    *sub = cmd;
    if (cmd && cmd->subcommands && c->argc >= 2) {
        const struct command *s = command_lookup_sub(cmd->subcommands, c->argv[1].ptr,
                                                     c->argv[1].len);
        if (s) {
            *parent = cmd;
            *sub = s;
        }
    }
    if (cmd && (cmd->flags & CMD_NOAUTH))
        return true; /* AUTH HELLO QUIT RESET: every user, as Redis */
    return acl_allows(acl_client_user(c), *parent, *sub);
}

static void reject_unknown_subcommand(struct client *c, const struct command *parent)
{
    char upper[64];
    int n = c_len(&c->argv[0], (int)sizeof(upper) - 1);
    for (int i = 0; i < n; i++)
        upper[i] = (char)toupper((unsigned char)c->argv[0].ptr[i]);
    upper[n] = '\0';
    (void)parent; /* cmdstats: not a rejected call of the parent (Redis counts none) */
    dispatch_rejectf(c, NULL, "ERR unknown subcommand '%.*s'. Try %s HELP.",
                     c_len(&c->argv[1], 128), c->argv[1].ptr, upper);
}

/* Over budget with nothing left to evict, Redis 7.0 refuses DENYOOM commands, an EXEC that
 * queued one, and inside MULTI anything but EXEC DISCARD QUIT RESET. */
static bool dispatch_refused_on_oom(const struct client *c, const struct command *cmd)
{
    if (cmd->flags & CMD_DENYOOM)
        return true;
    if (multi_is_exec(cmd) && multi_queued_denyoom(c))
        return true;
    return (c->flags & CLIENT_MULTI) && !multi_allowed_when_oom(cmd);
}

/* A write command ran while clients are blocked: each key it names (its fixed key positions)
 * may now hold what they wait for (RENAME and COPY destinations included). */
static void dispatch_signal_keys(struct client *c, const struct command *cmd)
{
    if (cmd->first_key <= 0 || cmd->key_step <= 0)
        return;
    long argc = (long)c->argc;
    long last = cmd->last_key < 0 ? argc + cmd->last_key : cmd->last_key;
    if (last > argc - 1)
        last = argc - 1;
    for (long i = cmd->first_key; i <= last; i += cmd->key_step)
        blocking_signal_key(c->srv, c->db, c->argv[i].ptr, c->argv[i].len);
}

/* dispatch_call, timed from call's start (cmdstats). Once the handler returned, the command is
 * logged when slow (SLOWLOG) and shown to the monitors (MONITOR), with the arguments it
 * redacted. */
static void dispatch_call_timed(struct client *c, const struct command *cmd,
                                const struct cmdstats_call *call)
{
    unsigned in_command = c->flags & CLIENT_IN_COMMAND; /* set when EXEC runs its queue */
    c->cmd = cmd;
    c->redacted = 0;
    c->flags |= CLIENT_IN_COMMAND;
    cmd->proc(c);
    c->flags = (c->flags & ~CLIENT_IN_COMMAND) | in_command;
    /* cmdstats: a blocked command counts when it blocks; the slowlog logs it then too */
    uint64_t ns = cmdstats_call_end(c, cmd, call);
    slowlog_command_done(c, cmd, ns);
    if (c->srv->nmonitors)
        monitor_feed(c, cmd);
    if (c->flags & CLIENT_BLOCKED)
        return; /* counted when it is answered, as Redis does; it changed nothing */
    c->srv->stats.commands_processed++;
    if (c->srv->blocked_clients > 0 && (cmd->flags & CMD_WRITE))
        dispatch_signal_keys(c, cmd);
}

void dispatch_call(struct client *c, const struct command *cmd)
{
    struct cmdstats_call call; /* cmdstats */
    uint64_t outer = c->redacted; /* EXEC's own, while it runs its queue */
    cmdstats_call_begin(c, &call);
    dispatch_call_timed(c, cmd, &call);
    c->redacted = outer;
}

/* A request routed with an upstream: a hit answered now, or a forward (a pinned command too)
 * answered at its reply. cmdstats counts it; the slowlog logs a hit now and keeps a forward's
 * arguments for its reply (slowlog.h); the monitors see it now. */
static void dispatch_routed(struct client *c, const struct command *cmd,
                            const struct cmdstats_call *call)
{
    int64_t ns = cmdstats_call_routed(c, cmd, call);
    if (ns >= 0)
        slowlog_command_done(c, cmd, (uint64_t)ns);
    else
        slowlog_forward_begin(c, cmd, c->fwd_tail, call->t0_ns);
    if (c->srv->nmonitors)
        monitor_feed(c, cmd);
}

static void dispatch_run(struct client *c)
{
    struct server *srv = c->srv;
    const struct command *cmd = command_lookup(&srv->commands, c->argv[0].ptr, c->argv[0].len);
    c->cmd = cmd; /* CLIENT LIST's cmd=: the last command looked up (Redis's lastcmd) */
    struct cmdstats_call call; /* cmdstats: the request's start */
    cmdstats_request_begin(c, &call);
    c->redacted = 0;
    if (srv->nc && pin_in_multi(c) && !(cmd && (cmd->flags & CMD_NOAUTH))) {
        const struct command *parent, *sub;
        if (!cmd && command_is_hidden(&srv->commands, c->argv[0].ptr, c->argv[0].len)) {
            reject_unknown_command(c); /* renamed or disabled: never forwarded */
            return;
        }
        if (!dispatch_permitted(c, cmd, &parent, &sub)) { /* never forwarded */
            reject_noperm(c, parent, sub);
            return;
        }
        pin_forward(c, cmd); /* the upstream queues, refuses and flags, as Redis does */
        dispatch_routed(c, cmd, &call);
        return;
    }
    if (!cmd && srv->nc) { /* not ours: the upstream may know it */
        const struct command *parent, *sub;
        if (!c->authenticated)
            dispatch_reject(c, NULL, ERR_NOAUTH);
        else if (command_is_hidden(&srv->commands, c->argv[0].ptr, c->argv[0].len))
            reject_unknown_command(c); /* renamed or disabled: not for the upstream either */
        else if (!dispatch_permitted(c, NULL, &parent, &sub))
            reject_noperm(c, NULL, NULL);
        else if (c->flags & CLIENT_PUBSUB)
            reject_unknown_command(c);
        else if (c->flags & CLIENT_MONITOR) /* it may well name keys */
            dispatch_reject(c, NULL, ERR_MONITOR_KEYSPACE);
        else {
            route_unknown(c);
            dispatch_routed(c, NULL, &call); /* cmdstats: the "upstream" row */
        }
        return;
    }
    if (!cmd) {
        reject_unknown_command(c);
        return;
    }
    const struct command *parent = NULL;
    if (cmd->subcommands && c->argc >= 2) {
        const struct command *sub = command_lookup_sub(cmd->subcommands, c->argv[1].ptr,
                                                       c->argv[1].len);
        c->cmd = sub;
        if (!sub) {
            reject_unknown_subcommand(c, cmd);
            return;
        }
        parent = cmd;
        cmd = sub;
    }
    if (!arity_ok(cmd, c->argc)) {
        char fullname[96];
        command_fullname(parent, cmd, fullname, sizeof(fullname));
        dispatch_rejectf(c, cmd, "ERR wrong number of arguments for '%s' command", fullname);
        return;
    }
    if (!c->authenticated && !(cmd->flags & CMD_NOAUTH)) {
        dispatch_reject(c, cmd, ERR_NOAUTH);
        return;
    }
    if (!(cmd->flags & CMD_NOAUTH) && !acl_allows(acl_client_user(c), parent, cmd)) {
        reject_noperm(c, parent, cmd);
        return;
    }
    if (!srv->nc && store_over_budget(srv->store)) { /* a near-cache evicts when it stores */
        int rc = store_evict(srv->store, server_now_ms(srv));
        if (rc < 0 && dispatch_refused_on_oom(c, cmd)) {
            dispatch_reject(c, cmd, ERR_OOM);
            return;
        }
    }
    if ((c->flags & CLIENT_PUBSUB) && c->resp == 2 && !pubsub_allowed_when_subscribed(cmd)) {
        char fullname[96];
        command_fullname(parent, cmd, fullname, sizeof(fullname));
        dispatch_rejectf(c, cmd, "ERR Can't execute '%s': only (P|S)SUBSCRIBE / "
                         "(P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context",
                         fullname);
        return;
    }
    /* A monitor is Redis's replica-like client: keys are not for it. */
    if ((c->flags & CLIENT_MONITOR) && (cmd->flags & (CMD_READ | CMD_WRITE))) {
        dispatch_reject(c, cmd, ERR_MONITOR_KEYSPACE);
        return;
    }
    if (srv->nc && route_command(c, cmd)) {
        dispatch_routed(c, cmd, &call);
        return;
    }
    if ((c->flags & CLIENT_MULTI) && !multi_runs_now(cmd)) {
        multi_queue(c, cmd);
        reply_status(c, "QUEUED");
        return;
    }
    dispatch_call_timed(c, cmd, &call); /* cmdstats: timed from the request's start */
}

void dispatch_command(struct client *c)
{
    struct server *srv = c->srv;
    struct strbuf *out = client_out(c);
    size_t mark = out->len;
    dispatch_run(c);
    if (!(c->flags & CLIENT_BLOCKED)) /* else when it is answered (blocking.c) */
        dispatch_request_done(c, out, mark);
    blocking_serve_ready(srv);
}

void dispatch_request_done(struct client *c, struct strbuf *out, size_t mark)
{
    struct server *srv = c->srv;
    /* CLIENT REPLY OFF / SKIP: whatever this request answered at once is cut off again (a
     * forwarded request's slot drops its reply itself: FWD_DISCARD). */
    if (c->flags & (CLIENT_REPLY_OFF | CLIENT_REPLY_SKIP))
        out->len = mark;
    c->flags &= ~CLIENT_REPLY_SKIP;
    if (c->flags & CLIENT_REPLY_SKIP_NEXT) {
        c->flags |= CLIENT_REPLY_SKIP;
        c->flags &= ~CLIENT_REPLY_SKIP_NEXT;
    }
    if (client_output_bytes(c) > (size_t)srv->cfg.client_output_buffer_limit) {
        log_warn(&srv->log, "Client id=%llu addr=%s closed for overcoming of output buffer limits.",
                 (unsigned long long)c->id, c->addr);
        client_close(c);
    }
}
