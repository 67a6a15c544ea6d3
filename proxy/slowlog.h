/* SLOWLOG: the commands that took at least slowlog-log-slower-than microseconds ([server]
 * slowlog_log_slower_than; -1 = off, 0 = every command), newest first, at most slowlog-max-len
 * entries ([server] slowlog_max_len), as Redis 7.0 keeps and shows them: each entry is
 * [id, unix time, duration in us, [arguments], "addr:port", client name], the arguments cut to
 * 32 (the last one saying "... (N more arguments)") and each to 128 bytes ("... (N more bytes)"),
 * arguments a command redacted (AUTH, HELLO AUTH, CONFIG SET of a password) shown as
 * "(redacted)". EXEC is never logged (its commands are, one by one). The list is trimmed to
 * slowlog-max-len when an entry is added, as Redis does (lowering it keeps the older entries
 * until the next one); CONFIG RESETSTAT does not clear it, SLOWLOG RESET does.
 *
 * Timing is cmdstats's (dispatch.c): a command answered at once is logged when its handler
 * returns, with cmdstats's duration; a blocking command with the time it took to block (it is
 * logged when it blocks, not when it is served). A forwarded command (near-cache mode) lasts
 * from its dispatch to its reply, so whether it is slow is only known at the reply, when its
 * arguments are gone: while the slowlog is on (slowlog-log-slower-than >= 0), each forward
 * keeps a capture made at dispatch (slowlog_forward_begin): the request's own bytes when it
 * came as a multibulk of at most 4 KB (one memcpy; parsed into the logged form only when the
 * reply is slow), else the arguments already cut to the logged form (at most ~6 KB, usually
 * a few dozen bytes). When the reply is slow the capture becomes the entry; otherwise it is
 * kept for reuse by the next forward (at most 256 captures and 256 KB wait) or freed (also
 * when the client leaves first). With the slowlog off nothing is copied.
 *
 * Owns: the entries (each one allocation: header, argument slices and their bytes) and their
 * client names. No global state: one slowlog per server. */
#ifndef PROXY_SLOWLOG_H
#define PROXY_SLOWLOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct client;
struct command;
struct fwd;

#define SLOWLOG_ENTRY_MAX_ARGC 32     /* Redis's SLOWLOG_ENTRY_MAX_ARGC */
#define SLOWLOG_ENTRY_MAX_STRING 128  /* Redis's SLOWLOG_ENTRY_MAX_STRING */
#define SLOWLOG_GET_DEFAULT 10        /* SLOWLOG GET without a count */
#define SLOWLOG_REDACTED "(redacted)" /* Redis's shared.redacted */

struct slowlog;
struct slowlog_entry;

struct slowlog *slowlog_create(void);
void slowlog_destroy(struct slowlog *sl);
size_t slowlog_len(const struct slowlog *sl);
/* Frees an entry or a capture (NULL is fine). */
void slowlog_entry_free(struct slowlog_entry *e);

/* cmd ran here on c->argv (with c->redacted) and took ns: logged when slow. EXEC is not. */
void slowlog_command_done(struct client *c, const struct command *cmd, uint64_t ns);
/* c's current request (cmd; NULL: unknown here) was forwarded as f, started at t0_ns
 * (cmdstats's clock): while the slowlog is on, f keeps a capture of its arguments (f->slow).
 * Nothing for EXEC. */
void slowlog_forward_begin(struct client *c, const struct command *cmd, struct fwd *f,
                           int64_t t0_ns);
/* f's reply is delivered to c; ns is its latency when cmdstats timed it, else < 0 (the
 * capture's start is used). Takes f->slow: logged when slow, freed otherwise. */
void slowlog_forward_done(struct client *c, struct fwd *f, int64_t ns);

#endif
