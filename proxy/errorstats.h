/* INFO errorstats: error replies counted by their prefix, as Redis 7.0 does
 * ("errorstat_ERR:count=3", "errorstat_WRONGTYPE:count=1"), in the byte order of the prefixes.
 * The prefix is the error's first word when a space comes within its first 31 bytes
 * (Redis's afterErrorReply), else "ERR". Counted where error replies are written: reply_error
 * (reply.c) and the upstream's error replies passed on to clients (forward.c). CONFIG RESETSTAT
 * clears it.
 *
 * Bound: at most ERRORSTATS_MAX distinct prefixes (Redis 7.0 has no bound; an upstream could
 * send any number of made-up prefixes); an error with a new prefix past it is only counted in
 * total_error_replies.
 *
 * Owns: the table (fixed size, sorted). No global state: one per server. */
#ifndef PROXY_ERRORSTATS_H
#define PROXY_ERRORSTATS_H

#include <stddef.h>
#include <stdint.h>

struct errorstats;
struct server;
struct strbuf;

#define ERRORSTATS_MAX 128        /* distinct prefixes kept */
#define ERRORSTATS_PREFIX_MAX 32  /* a prefix is shorter than this (Redis looks for the space
                                     within the first 32 bytes of "-PREFIX ...") */

struct errorstats *errorstats_create(void);
void errorstats_destroy(struct errorstats *es);
void errorstats_reset(struct errorstats *es);

/* An error reply was sent: text is its line without the leading '-' and without CRLF (len
 * bytes). es may be NULL (nothing is counted). */
void errorstats_count(struct errorstats *es, const char *text, size_t len);
/* The count of prefix (0 when never seen). */
uint64_t errorstats_get(const struct errorstats *es, const char *prefix);

/* INFO errorstats (cmd_info.c). */
void errorstats_info(struct server *srv, struct strbuf *b);

#endif
