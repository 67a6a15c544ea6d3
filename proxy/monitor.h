/* MONITOR: clients that see every command the sidecar runs, one line each, as Redis 7.0 writes
 * them: "+<unix time>.<us> [<db> <addr:port>] "arg" "arg"..." ("[<db> unix:<path>]" for a Unix
 * socket client), each argument quoted with Redis's escapes (\\ \" \n \r \t \a \b, \xHH for any
 * other byte that is not printable ASCII).
 *
 * What is shown follows Redis 7.0: a command is shown once it ran (after its handler, so SELECT
 * shows the new database and AUTH / HELLO AUTH / CONFIG SET's passwords are "(redacted)");
 * commands refused before running (unknown, arity, NOAUTH...) and commands queued by MULTI are
 * not (EXEC shows its commands, then itself); ADMIN commands (CONFIG, CLIENT LIST / KILL,
 * SLOWLOG GET / LEN / RESET, MONITOR, SIDECAR FLUSH / KEYS / RELOAD) are never shown; a monitor's
 * own commands are shown, to the other monitors and to itself, as Redis does. In near-cache mode
 * what clients send through the sidecar is shown when it is dispatched (a hit, a forward, a
 * pinned command; a command the sidecar does not know too, since it cannot tell what it is):
 * the upstream's own MONITOR is never relayed.
 *
 * A monitor is Redis's replica-like client: "O" in CLIENT LIST, never closed as idle, refused
 * every command that reads or writes keys ("-ERR Replica can't interact with the keyspace",
 * dispatch.c), a second MONITOR is ignored without a reply, RESET ends it. Lines are appended to
 * its output like any reply: a monitor that does not read is disconnected at
 * client_output_buffer_limit (Redis's replica class).
 *
 * Owns: the server's array of monitor clients (srv->monitors, srv->nmonitors; borrowed clients,
 * each with CLIENT_MONITOR set exactly while it is in the array). */
#ifndef PROXY_MONITOR_H
#define PROXY_MONITOR_H

struct client;
struct command;
struct server;

/* c's command (cmd; NULL: one unknown here, forwarded) ran or was routed: every monitor gets
 * its line. The caller checks srv->nmonitors first (one branch when nobody monitors). */
void monitor_feed(struct client *c, const struct command *cmd);
/* c stops monitoring (RESET; the client is freed). Nothing when c is not a monitor. */
void monitor_remove(struct client *c);
/* Frees the array (server_free, after every client). */
void monitor_free_all(struct server *srv);

#endif
