/* Transactions: a client's MULTI queue and the server's WATCH registry.
 *
 * MULTI state: between MULTI and EXEC/DISCARD the dispatcher hands every command that does not
 * run at once (multi_runs_now) to multi_queue(), which keeps its row and a private copy of its
 * arguments (the query buffer they point into is consumed afterwards). A command refused while
 * queueing (unknown, wrong arity, OOM...) flags the transaction: EXEC then replies -EXECABORT.
 *
 * WATCH: the server keeps one table of watched (db, key) -> the clients watching it. While the
 * table is not empty it is the store's touch hook; a touched key (written, expired, evicted,
 * flushed while it existed) marks its watchers CLIENT_DIRTY_CAS, and their EXEC replies a null
 * array. A key that expires by time alone is caught at EXEC from the TTL recorded at WATCH
 * (and unchanged since: a TTL change is a touch), as Redis 7.0's isWatchedKeyExpired.
 *
 * Ownership: the queue and the watch records belong to their client (client.mstate,
 * client.watched) and are freed by multi_client_free() when it goes; the registry belongs to
 * the server (srv->watches). Every allocation is counted in the registry's or the queue's bytes
 * (usable size + one word of allocator header). */
#ifndef PROXY_MULTI_H
#define PROXY_MULTI_H

#include "proxy/command.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct client;
struct store;
struct multi_watches;

/* proxy/cmd_multi.c: the "transactions" family (multi_commands[]). */
command_proc cmd_multi, cmd_exec, cmd_discard, cmd_watch, cmd_unwatch;

/* The server's WATCH registry over store s (the hook is installed on s while keys are watched).
 * seed keys the table's hash. */
struct multi_watches *multi_watches_create(struct store *s, const uint8_t seed[16]);
/* Every client must have been freed (multi_client_free) before. NULL is fine. */
void multi_watches_destroy(struct multi_watches *w);
/* Bytes held by the registry (table and records) and the number of watched keys. */
size_t multi_watches_bytes(const struct multi_watches *w);
size_t multi_watches_keys(const struct multi_watches *w);

/* True for the commands that run even inside MULTI: EXEC DISCARD MULTI WATCH QUIT RESET
 * (cmd_multi.c). */
bool multi_runs_now(const struct command *cmd);
/* True for EXEC's row (the dispatcher words EXEC's refusals differently). */
bool multi_is_exec(const struct command *cmd);
/* True for the rows Redis 7.0 still lets through when over budget inside MULTI: EXEC DISCARD
 * QUIT RESET (everything else is refused with -OOM there, and flags the transaction). */
bool multi_allowed_when_oom(const struct command *cmd);
/* A queued command is CMD_DENYOOM: EXEC is refused while the store is over budget. */
bool multi_queued_denyoom(const struct client *c);

/* ---- multi.c ---- */

/* MULTI: c enters the transaction state (the caller checked it was not in it). */
void multi_begin(struct client *c);
/* EXEC's body once the transaction is known to run: unwatches, replies the array header and
 * runs every queued command through dispatch_call() in order, then ends the transaction. */
void multi_exec_queued(struct client *c);
/* Marks c dirty when a key it WATCHes has expired by time since (Redis's isWatchedKeyExpired). */
void multi_check_expired(struct client *c, int64_t now_ms);
/* WATCH of one key in c's db: records whether it exists now and its TTL. */
void multi_watch_key(struct client *c, const char *key, size_t klen);
/* Forgets every key c WATCHes (UNWATCH, EXEC, DISCARD); the dirty flag is the caller's. */
void multi_unwatch_all(struct client *c);

/* Queues the request in c->argv/c->argc as cmd (a copy of the arguments); c is in MULTI. */
void multi_queue(struct client *c, const struct command *cmd);
/* A command was refused: inside MULTI, EXEC will abort. */
void multi_flag_error(struct client *c);
/* EXEC refused by the dispatcher for `reason` (an error text, "ERR " dropped): ends the
 * transaction and replies "-EXECABORT Transaction discarded because of: <reason>". */
void multi_abort_exec(struct client *c, const char *reason);

/* Ends the transaction (queue, flags) and forgets every WATCHed key: DISCARD, RESET. */
void multi_discard(struct client *c);
/* Releases everything c holds here (on disconnect). */
void multi_client_free(struct client *c);

/* CLIENT LIST's multi= (-1 outside MULTI) and multi-mem=; watch= (keys c WATCHes). */
long multi_queued_count(const struct client *c);
size_t multi_client_bytes(const struct client *c);
size_t multi_watched_count(const struct client *c);

#endif
