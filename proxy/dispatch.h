/* Command dispatch: finds the command (and subcommand), checks arity, authentication, the
 * memory budget and the subscriber context, then queues it (inside MULTI) or runs it. The
 * callers are the client input loop (dispatch_command) and EXEC (dispatch_call). */
#ifndef PROXY_DISPATCH_H
#define PROXY_DISPATCH_H

struct client;
struct command;

/* Runs the request in c->argv/c->argc (argc >= 1); every outcome is a reply in client_out(c). */
void dispatch_command(struct client *c);

/* Runs cmd's handler on c->argv/c->argc, all checks passed (dispatch_command after its checks,
 * EXEC for each queued command): sets c->cmd, counts the command. */
void dispatch_call(struct client *c, const struct command *cmd);

#endif
