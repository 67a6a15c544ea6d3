/* Command dispatch: finds the command (and subcommand), checks arity, authentication and the
 * memory budget, then runs it. The only caller is the client input loop. */
#ifndef PROXY_DISPATCH_H
#define PROXY_DISPATCH_H

struct client;

/* Runs the request in c->argv/c->argc (argc >= 1); every outcome is a reply in client_out(c). */
void dispatch_command(struct client *c);

#endif
