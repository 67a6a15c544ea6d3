/* Command dispatch, in Redis 7's order of checks: unknown command or subcommand, arity,
 * authentication, memory budget; then the handler runs with c->cmd set. */
#include "proxy/dispatch.h"

#include "cache/store.h"
#include "proxy/client.h"
#include "proxy/command.h"
#include "proxy/reply.h"
#include "proxy/server.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#define UNKNOWN_ARGS_MAX 128

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

static void reply_unknown_command(struct client *c)
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
    reply_errorf(c, "ERR unknown command '%.*s', with args beginning with: %s",
                 c_len(&c->argv[0], 128), c->argv[0].ptr, args);
}

static void reply_unknown_subcommand(struct client *c)
{
    char upper[64];
    int n = c_len(&c->argv[0], (int)sizeof(upper) - 1);
    for (int i = 0; i < n; i++)
        upper[i] = (char)toupper((unsigned char)c->argv[0].ptr[i]);
    upper[n] = '\0';
    reply_errorf(c, "ERR unknown subcommand '%.*s'. Try %s HELP.", c_len(&c->argv[1], 128),
                 c->argv[1].ptr, upper);
}

static void dispatch_run(struct client *c)
{
    struct server *srv = c->srv;
    const struct command *cmd = command_lookup(&srv->commands, c->argv[0].ptr, c->argv[0].len);
    if (!cmd) {
        reply_unknown_command(c);
        return;
    }
    const struct command *parent = NULL;
    if (cmd->subcommands && c->argc >= 2) {
        const struct command *sub = command_lookup_sub(cmd->subcommands, c->argv[1].ptr,
                                                       c->argv[1].len);
        if (!sub) {
            reply_unknown_subcommand(c);
            return;
        }
        parent = cmd;
        cmd = sub;
    }
    if (!arity_ok(cmd, c->argc)) {
        char fullname[96];
        command_fullname(parent, cmd, fullname, sizeof(fullname));
        reply_error_arity(c, fullname);
        return;
    }
    if (!c->authenticated && !(cmd->flags & CMD_NOAUTH)) {
        reply_error(c, ERR_NOAUTH);
        return;
    }
    if (store_over_budget(srv->store)) {
        int rc = store_evict(srv->store, server_now_ms(srv));
        if (rc < 0 && (cmd->flags & CMD_DENYOOM)) {
            reply_error(c, ERR_OOM);
            return;
        }
    }
    c->cmd = cmd;
    c->flags |= CLIENT_IN_COMMAND;
    cmd->proc(c);
    c->flags &= ~CLIENT_IN_COMMAND;
    srv->stats.commands_processed++;
}

void dispatch_command(struct client *c)
{
    struct server *srv = c->srv;
    /* CLIENT REPLY OFF / SKIP: whatever this request answers is cut off again. Only standalone
     * (immediate) replies exist today; a deferred reply slot will need the same rule. */
    struct strbuf *out = client_out(c);
    size_t mark = out->len;
    dispatch_run(c);
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
