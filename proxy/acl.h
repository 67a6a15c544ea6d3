/* Access control: the users built from [users] and requirepass, AUTH's password check, and the
 * per-command permission check dispatch makes (Redis 7's ACL, without key or channel patterns:
 * every user may use every key and channel).
 * The default user: a [users] default entry when there is one, else "on nopass +@all"; a
 * non-empty requirepass (file, environment, CONFIG SET) replaces its passwords, as Redis's
 * requirepass does. Passwords are kept only as SHA-256 digests; a candidate is hashed and
 * compared with every digest of the user in constant time.
 * Lifetime: the server owns one struct acl (srv->acl), rebuilt by acl_server_rebuild after
 * CONFIG SET and reloads; clients point at a user of it (c->user, NULL = the default user) and
 * are re-pointed by name on a rebuild (a client whose user is gone is disconnected). */
#ifndef PROXY_ACL_H
#define PROXY_ACL_H

#include "proxy/command.h"

#include <stdbool.h>
#include <stddef.h>

struct config;
struct server;
struct client;
struct acl;
struct acl_user;

/* Builds the users of cfg, resolving category and command names of the rules against idx
 * (commands by their original names, renamed or not). NULL with the reason in err. */
struct acl *acl_build(const struct config *cfg, const struct command_index *idx, char *err,
                      size_t errlen);
void acl_free(struct acl *acl);

/* Rebuilds srv->acl from srv->cfg and re-points every client. -1 (err set, srv->acl kept) when
 * the users do not build. */
int acl_server_rebuild(struct server *srv, char *err, size_t errlen);

/* The user name and password pair: the user it authenticates (enabled, and nopass or one of
 * its digests equals the password's), or NULL. user NULL = the default user. */
const struct acl_user *acl_authenticate(const struct acl *acl, const char *user, size_t ulen,
                                        const char *pass, size_t plen);
/* The user named name (case-sensitive), or NULL. */
const struct acl_user *acl_find_user(const struct acl *acl, const char *name, size_t len);
/* Whether a client that never authenticated is the default user with access. */
bool acl_default_open(const struct acl *acl);
/* Whether the default user has nopass (AUTH <password> then has no password to check). */
bool acl_default_nopass(const struct acl *acl);

/* The user of c (its c->user, else the default user). */
const struct acl_user *acl_client_user(const struct client *c);
const char *acl_user_name(const struct acl_user *u);
/* Sets c to the state of a new connection: the default user, authenticated when it is open. */
void acl_client_reset(struct client *c);

/* Whether u may run cmd (a subcommand row with its parent, or a top-level row with parent
 * NULL). cmd NULL: a command the sidecar does not know (forwarded upstream), allowed only by
 * +@all. */
bool acl_allows(const struct acl_user *u, const struct command *parent,
                const struct command *cmd);

/* ACL subcommands (proxy/acl.c). */
command_proc cmd_acl_whoami, cmd_acl_users, cmd_acl_list, cmd_acl_cat, cmd_acl_help;

#endif
