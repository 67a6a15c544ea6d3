/* The "transactions" family: MULTI EXEC DISCARD WATCH UNWATCH (multi_commands[]), with Redis
 * 7.0's replies and error texts, and the predicates the dispatcher asks about these rows (which
 * commands run at once inside MULTI, which survive OOM there). The queue and the WATCH
 * registry are multi.c's; see multi.h for the rules.
 * Invariants: a handler here never frees its client; EXEC runs the queue through the same
 * dispatch_call() as any command, so whatever a command does after it runs (replies, wakes)
 * happens inside EXEC exactly as outside. */
#include "proxy/multi.h"

#include "proxy/client.h"
#include "proxy/command.h"
#include "proxy/reply.h"
#include "proxy/server.h"

#include <stddef.h>

#define S CMD_STATEFUL
#define F CMD_FAST
#define K CMD_KEYSPACE

const struct command multi_commands[] = {
    { "multi", cmd_multi, 1, S | F, 0, 0, 0, "transactions", "Starts a transaction.", NULL },
    { "exec", cmd_exec, 1, S, 0, 0, 0, "transactions", "Executes all commands in a transaction.", NULL },
    { "discard", cmd_discard, 1, S | F, 0, 0, 0, "transactions", "Discards a transaction.", NULL },
    { "watch", cmd_watch, -2, S | F | K, 1, -1, 1, "transactions", "Monitors changes to keys to determine the execution of a transaction.", NULL },
    { "unwatch", cmd_unwatch, 1, S | F, 0, 0, 0, "transactions", "Forgets about watched keys of a transaction.", NULL },
    { NULL, NULL, 0, 0, 0, 0, 0, NULL, NULL, NULL },
};

bool multi_runs_now(const struct command *cmd)
{
    command_proc *p = cmd->proc;
    return p == cmd_exec || p == cmd_discard || p == cmd_multi || p == cmd_watch ||
           p == cmd_quit || p == cmd_reset;
}

bool multi_is_exec(const struct command *cmd)
{
    return cmd->proc == cmd_exec;
}

bool multi_allowed_when_oom(const struct command *cmd)
{
    command_proc *p = cmd->proc;
    return p == cmd_exec || p == cmd_discard || p == cmd_quit || p == cmd_reset;
}

void cmd_multi(struct client *c)
{
    if (c->flags & CLIENT_MULTI) {
        reply_error(c, "ERR MULTI calls can not be nested");
        return;
    }
    multi_begin(c);
    reply_ok(c);
}

void cmd_exec(struct client *c)
{
    if (!(c->flags & CLIENT_MULTI)) {
        reply_error(c, "ERR EXEC without MULTI");
        return;
    }
    multi_check_expired(c, server_now_ms(c->srv));
    if (c->flags & (CLIENT_DIRTY_EXEC | CLIENT_DIRTY_CAS)) {
        if (c->flags & CLIENT_DIRTY_EXEC)
            reply_error(c, ERR_EXECABORT);
        else
            reply_null_array(c);
        multi_discard(c);
        return;
    }
    multi_exec_queued(c);
}

void cmd_discard(struct client *c)
{
    if (!(c->flags & CLIENT_MULTI)) {
        reply_error(c, "ERR DISCARD without MULTI");
        return;
    }
    multi_discard(c);
    reply_ok(c);
}

void cmd_watch(struct client *c)
{
    if (c->flags & CLIENT_MULTI) {
        reply_error(c, "ERR WATCH inside MULTI is not allowed");
        return;
    }
    /* Already dirty: EXEC fails whatever else is watched (Redis skips the work too). */
    if (!(c->flags & CLIENT_DIRTY_CAS))
        for (size_t i = 1; i < c->argc; i++)
            multi_watch_key(c, c->argv[i].ptr, c->argv[i].len);
    reply_ok(c);
}

void cmd_unwatch(struct client *c)
{
    multi_unwatch_all(c);
    c->flags &= ~CLIENT_DIRTY_CAS;
    reply_ok(c);
}
