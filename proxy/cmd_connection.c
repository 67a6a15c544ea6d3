/* Connection commands, answered locally: PING ECHO QUIT RESET HELLO AUTH SELECT TIME.
 * AUTH and HELLO AUTH check the user and password with acl.c (SHA-256 digests compared in
 * constant time); a failed AUTH leaves the connection as it was, as Redis. */
#include "proxy/acl.h"
#include "proxy/args.h"
#include "proxy/client.h"
#include "proxy/command.h"
#include "proxy/pinned.h"
#include "proxy/pubsub.h"
#include "proxy/reply.h"
#include "proxy/server.h"

#include "conf/xmalloc.h"

#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#define ERR_WRONGPASS "WRONGPASS invalid username-password pair or user is disabled."

void cmd_ping(struct client *c)
{
    if (c->argc > 2) {
        reply_error_arity(c, "ping");
        return;
    }
    if (pubsub_reply_ping(c)) /* a RESP2 subscriber gets ["pong", message] */
        return;
    if (c->argc == 2)
        reply_bulk(c, c->argv[1].ptr, c->argv[1].len);
    else
        reply_raw(c, "+PONG\r\n", 7);
}

void cmd_echo(struct client *c)
{
    reply_bulk(c, c->argv[1].ptr, c->argv[1].len);
}

void cmd_quit(struct client *c)
{
    reply_ok(c);
    client_close_after_reply(c);
}

void cmd_reset(struct client *c)
{
    if (c->pin && (c->pin->reasons || c->pin->inflight))
        pin_forward_silent(c, c->cmd); /* its private connection's MULTI/WATCH/SELECT end too */
    client_reset_state(c); /* discards MULTI, unwatches, drops subscriptions */
    c->flags &= ~(CLIENT_REPLY_OFF | CLIENT_REPLY_SKIP_NEXT | CLIENT_REPLY_SKIP);
    c->db = 0;
    c->resp = 2;
    free(c->name);
    c->name = NULL;
    acl_client_reset(c); /* back to the default user, authenticated only if it is open */
    reply_status(c, "RESET");
}

/* Authenticates c as (user, pass) (user NULL = default): true when it now is that user. */
static bool auth_check(struct client *c, const struct resp_arg *user,
                       const struct resp_arg *pass)
{
    const struct acl_user *u = acl_authenticate(c->srv->acl, user ? user->ptr : NULL,
                                                user ? user->len : 0, pass->ptr, pass->len);
    if (!u)
        return false;
    c->user = u;
    c->authenticated = true;
    return true;
}

void cmd_auth(struct client *c)
{
    if (c->argc > 3) {
        reply_error(c, ERR_SYNTAX);
        return;
    }
    client_redact_arg(c, 1); /* SLOWLOG and MONITOR show "(redacted)", as Redis 7 */
    if (c->argc == 3)
        client_redact_arg(c, 2);
    if (c->argc == 2 && acl_default_nopass(c->srv->acl)) {
        reply_error(c, "ERR AUTH <password> called without any password configured for the "
                       "default user. Are you sure your configuration is correct?");
        return;
    }
    const struct resp_arg *user = c->argc == 3 ? &c->argv[1] : NULL;
    if (!auth_check(c, user, &c->argv[c->argc - 1])) {
        reply_error(c, ERR_WRONGPASS);
        return;
    }
    reply_ok(c);
}

/* Client names: printable ASCII without spaces (Redis's validateClientName). */
bool client_name_valid(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] < '!' || p[i] > '~')
            return false;
    return true;
}

static void client_set_name(struct client *c, const struct resp_arg *a)
{
    free(c->name);
    c->name = a->len ? xmemdup(a->ptr, a->len) : NULL;
}

void cmd_hello(struct client *c)
{
    long long ver = c->resp;
    size_t i = 1;
    if (c->argc >= 2) {
        if (!arg_ll_or_reply(c, 1, &ver, "ERR Protocol version is not an integer or out of range"))
            return;
        /* RESP3 is refused in front of an upstream: hiredis 0.14 speaks RESP2 only, and
         * forwarded replies are passed on as the upstream sent them. */
        if (ver < 2 || ver > 3 || (ver == 3 && c->srv->nc)) {
            reply_error(c, "NOPROTO unsupported protocol version");
            return;
        }
        i = 2;
    }
    const struct resp_arg *user = NULL, *pass = NULL, *name = NULL;
    for (; i < c->argc; i++) {
        size_t more = c->argc - i - 1;
        if (arg_is(&c->argv[i], "AUTH") && more >= 2) {
            client_redact_arg(c, i + 1); /* SLOWLOG and MONITOR show "(redacted)" */
            client_redact_arg(c, i + 2);
            user = &c->argv[i + 1];
            pass = &c->argv[i + 2];
            i += 2;
        } else if (arg_is(&c->argv[i], "SETNAME") && more >= 1) {
            name = &c->argv[i + 1];
            if (!client_name_valid(name->ptr, name->len)) {
                reply_error(c, "ERR Client names cannot contain spaces, newlines or special characters.");
                return;
            }
            i++;
        } else {
            reply_errorf(c, "ERR Syntax error in HELLO option '%.*s'", (int)c->argv[i].len,
                         c->argv[i].ptr);
            return;
        }
    }
    if (user) {
        if (!auth_check(c, user, pass)) {
            reply_error(c, ERR_WRONGPASS);
            return;
        }
    }
    if (!c->authenticated) {
        reply_error(c, "NOAUTH HELLO must be called with the client already authenticated, "
                       "otherwise the HELLO AUTH <user> <pass> option can be used to "
                       "authenticate the client and select the RESP protocol version at the "
                       "same time");
        return;
    }
    if (name)
        client_set_name(c, name);
    c->resp = (int)ver;
    reply_map(c, 7);
    reply_bulk_cstr(c, "server");
    reply_bulk_cstr(c, "redis");
    reply_bulk_cstr(c, "version");
    reply_bulk_cstr(c, SERVER_VERSION);
    reply_bulk_cstr(c, "proto");
    reply_int(c, ver);
    reply_bulk_cstr(c, "id");
    reply_int(c, (long long)c->id);
    reply_bulk_cstr(c, "mode");
    reply_bulk_cstr(c, "standalone");
    reply_bulk_cstr(c, "role");
    reply_bulk_cstr(c, "master");
    reply_bulk_cstr(c, "modules");
    reply_array(c, 0);
}

void cmd_select(struct client *c)
{
    int db;
    if (!arg_db_or_reply(c, 1, &db))
        return;
    c->db = db;
    reply_ok(c);
}

void cmd_time(struct client *c)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    reply_array(c, 2);
    reply_bulk_ll(c, (long long)tv.tv_sec);
    reply_bulk_ll(c, (long long)tv.tv_usec);
}
