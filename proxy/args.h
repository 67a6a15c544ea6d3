/* Helpers for reading a request's arguments: case-insensitive keyword tests and the
 * "..._or_reply" parsers that have already queued Redis's error when they return false. */
#ifndef PROXY_ARGS_H
#define PROXY_ARGS_H

#include "proxy/client.h"

#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

/* Case-insensitive keyword test with Redis's strcasecmp reach: the argument ends at its first
 * NUL ("nx\0zz" is NX), as it does for Redis's option parsers. */
static inline bool arg_is(const struct resp_arg *a, const char *word)
{
    size_t n = strlen(word);
    return a->len >= n && strncasecmp(a->ptr, word, n) == 0 && (a->len == n || a->ptr[n] == '\0');
}

/* The argument as a long long, or false after replying msg (NULL: ERR_NOT_INTEGER). */
bool arg_ll_or_reply(struct client *c, size_t i, long long *out, const char *msg);
/* A long double (INCRBYFLOAT), or false after replying ERR_NOT_FLOAT. */
bool arg_ld_or_reply(struct client *c, size_t i, long double *out);
/* A SCAN-family cursor (Redis's parseScanCursorOrReply: strtoul up to the first NUL, a sign
 * accepted, "" is 0), or false after replying "ERR invalid cursor". */
bool arg_cursor_or_reply(struct client *c, size_t i, uint64_t *out);
/* The SCAN family's COUNT default, and Redis's cap of table steps per call (count * 10). */
#define SCAN_COUNT_DEFAULT 10
long long scan_max_steps(long long count);
/* HSCAN/SSCAN/ZSCAN's [MATCH pattern] [COUNT count] from argument `first` on, as Redis 7.0's
 * scanGenericCommand: COUNT < 1 and anything else (TYPE too) is "ERR syntax error"; "MATCH *"
 * leaves *pat NULL. *count keeps its value when there is no COUNT. */
bool arg_scan_options_or_reply(struct client *c, size_t first, long long *count,
                               const struct resp_arg **pat);
/* The selected database index from argument i, or false after replying. */
bool arg_db_or_reply(struct client *c, size_t i, int *db);

#endif
