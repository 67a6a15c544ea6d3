/* Reply writers: every reply a command sends goes through these, into client_out(c), encoded
 * for the client's protocol (RESP2 or RESP3: maps, sets, doubles, nulls, verbatim strings).
 * Error helpers take the text without the leading '-' and add "ERR " only where told. */
#ifndef PROXY_REPLY_H
#define PROXY_REPLY_H

#include "proxy/client.h"

#include <stddef.h>

/* Shared error texts (Redis 7's exact words). */
#define ERR_SYNTAX "ERR syntax error"
#define ERR_NOT_INTEGER "ERR value is not an integer or out of range"
#define ERR_NOT_FLOAT "ERR value is not a valid float"
#define ERR_WRONGTYPE "WRONGTYPE Operation against a key holding the wrong kind of value"
#define ERR_OVERFLOW "ERR increment or decrement would overflow"
#define ERR_NO_SUCH_KEY "ERR no such key"
#define ERR_DB_RANGE "ERR DB index is out of range"
#define ERR_OOM "OOM command not allowed when used memory > 'maxmemory'."
#define ERR_NOAUTH "NOAUTH Authentication required."
#define ERR_EXECABORT "EXECABORT Transaction discarded because of previous errors."
#define ERR_EXECABORT_RESP "-" ERR_EXECABORT "\r\n"
#define ERR_STRING_SIZE "ERR string exceeds maximum allowed size (proto-max-bulk-len)"
#define ERR_INVALID_CURSOR "ERR invalid cursor"
/* HSCAN/SSCAN/ZSCAN of a missing key: cursor 0, no elements. */
#define EMPTY_SCAN "*2\r\n$1\r\n0\r\n*0\r\n"

void reply_raw(struct client *c, const char *p, size_t n);
void reply_ok(struct client *c);
void reply_status(struct client *c, const char *s);
/* text is the whole error line without '-' and CRLF, e.g. "ERR syntax error". CR/LF inside
 * are replaced by spaces, as Redis does. */
void reply_error(struct client *c, const char *text);
void reply_errorf(struct client *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* "ERR wrong number of arguments for '<fullname>' command" */
void reply_error_arity(struct client *c, const char *fullname);
void reply_int(struct client *c, long long v);
void reply_bulk(struct client *c, const char *p, size_t n);
void reply_bulk_cstr(struct client *c, const char *s);
void reply_bulk_ll(struct client *c, long long v);
/* RESP2 $-1, RESP3 _ */
void reply_null(struct client *c);
/* RESP2 *-1, RESP3 _ */
void reply_null_array(struct client *c);
void reply_array(struct client *c, size_t n);
/* n key/value pairs: RESP2 *2n, RESP3 %n */
void reply_map(struct client *c, size_t n);
/* RESP2 *n, RESP3 ~n */
void reply_set(struct client *c, size_t n);
/* RESP2 bulk "%.17g", RESP3 ,%.17g */
void reply_double(struct client *c, double v);
/* RESP2 :0/:1, RESP3 #f/#t */
void reply_bool(struct client *c, int v);
/* RESP2 bulk, RESP3 =len txt:... */
void reply_verbatim(struct client *c, const char *p, size_t n);

/* A HELP reply: the lines as an array of status strings. */
void reply_help(struct client *c, const char *const *lines, size_t n);

/* Reserves room for an array header whose length is known only later (SCAN, KEYS). */
size_t reply_defer_len(struct client *c);
void reply_set_deferred_len(struct client *c, size_t handle, size_t n);

#endif
