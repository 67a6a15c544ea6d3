/* Routing with an upstream (DESIGN.md section 3, step 3): which requests the sidecar answers
 * itself, which the near-cache answers, and which go to the upstream and how. */
#ifndef PROXY_ROUTE_H
#define PROXY_ROUTE_H

#include <stdbool.h>

struct client;
struct command;
struct fwd;
struct pin;

/* c's request for cmd (arity and authentication already checked), with an upstream
 * configured. Returns false when the sidecar runs it itself (LOCAL commands, pub/sub
 * subscriptions), true when it was answered from the near-cache or forwarded. */
bool route_command(struct client *c, const struct command *cmd);
/* A command the sidecar does not know (XADD, EVAL, JSON.GET...): forwarded as it came; every
 * argument that could be a key it writes is dropped from the near-cache. */
void route_unknown(struct client *c);
/* Drops from the near-cache the keys c's write request names (cmd NULL: an unknown command,
 * every argument), and remembers them in f for the reply (and in p's transaction when it is
 * inside MULTI). */
void route_drop_write_keys(struct client *c, const struct command *cmd, struct fwd *f,
                           struct pin *p);

#endif
