/* Command dispatch: finds the command (and subcommand), checks arity, authentication, the
 * memory budget and the subscriber context, then queues it (inside MULTI) or runs it. The
 * callers are the client input loop (dispatch_command) and EXEC (dispatch_call). */
#ifndef PROXY_DISPATCH_H
#define PROXY_DISPATCH_H

#include <stddef.h>

struct client;
struct command;
struct strbuf;

/* Runs the request in c->argv/c->argc (argc >= 1); every outcome is a reply in client_out(c). */
void dispatch_command(struct client *c);

/* Runs cmd's handler on c->argv/c->argc, all checks passed (dispatch_command after its checks,
 * EXEC for each queued command): sets c->cmd, counts the command. */
void dispatch_call(struct client *c, const struct command *cmd);

/* The rules that apply once a request is answered: CLIENT REPLY OFF/SKIP cut its answer (what
 * out got after mark) and move the SKIP flags on, and a client over the output buffer limit is
 * closed. dispatch_command applies them after each request; for a request that blocked,
 * blocking.c applies them when it is served or times out. */
void dispatch_request_done(struct client *c, struct strbuf *out, size_t mark);

#endif
