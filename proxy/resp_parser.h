/* Incremental RESP request parser: multibulk (*N $len ...) and inline commands, as Redis 7 reads
 * them. Pure: works on a caller-owned byte buffer, keeps offsets (never pointers) while a request
 * is incomplete, so the caller may grow or compact the buffer between calls. Limits are checked
 * before anything is allocated: the argument vector grows with the arguments that actually
 * arrived, a bulk length above max_bulk_len is refused before its bytes are awaited.
 * Protocol errors carry Redis's exact text ("Protocol error: ..."). */
#ifndef PROXY_RESP_PARSER_H
#define PROXY_RESP_PARSER_H

#include "proxy/strbuf.h"

#include <stdbool.h>
#include <stddef.h>

#define RESP_INLINE_MAX (64 * 1024) /* Redis's PROTO_INLINE_MAX_SIZE */
#define RESP_MULTIBULK_MAX 2147483647LL /* INT_MAX, as Redis 7 */
#define RESP_ERR_MAX 96

struct resp_limits {
    long long max_bulk_len;   /* proto_max_bulk_len */
    bool unauthenticated;     /* a password is required and not given: Redis's tighter limits */
    size_t inline_max;        /* longest inline line / header line awaited; 0 = RESP_INLINE_MAX
                               * (the server always uses 0; tests lower it to reach the limit) */
};

struct resp_slice {
    size_t off;
    size_t len;
};

struct resp_arg {
    const char *ptr;
    size_t len;
};

enum resp_status {
    RESP_NEED_MORE = 0, /* nothing complete yet; call again when more bytes arrived */
    RESP_REQUEST,       /* one request is complete: see argc, resp_parser_args() */
    RESP_PROTO_ERROR,   /* error holds the text; the connection must close after replying */
};

struct resp_parser {
    size_t pos;              /* first byte of the buffer not yet consumed */
    long long multibulk;     /* arguments still expected; 0 between requests */
    long long bulklen;       /* -1 until the current argument's $len line is read */
    bool is_inline;          /* the complete request came from an inline line */
    size_t argc, argcap;
    struct resp_slice *args; /* offsets into the buffer, or into inline_buf for inline */
    struct strbuf inline_buf;/* unescaped inline arguments */
    const char *external;    /* the argument the caller holds outside the buffer, or NULL */
    bool complete;           /* that argument was the last: the request is complete */
    char error[RESP_ERR_MAX];
};

void resp_parser_init(struct resp_parser *p);
void resp_parser_free(struct resp_parser *p);

/* Parses from p->pos. On RESP_REQUEST, p->pos is past the request and p->argc arguments are
 * ready (argc may be 0: an empty line or *0, which Redis skips silently). */
enum resp_status resp_parse(struct resp_parser *p, const char *buf, size_t len,
                            const struct resp_limits *lim);

/* Fills argv[0..argc) with pointers into buf (or the parser's inline buffer). argv must hold
 * p->argc entries; the pointers live until the next resp_parse or rebase. */
void resp_parser_args(const struct resp_parser *p, const char *buf, struct resp_arg *argv);

/* The bulk being awaited (p->multibulk > 0, p->bulklen >= 0) is held by the caller at ext
 * (bulklen bytes; its CRLF was read too), not in the buffer: it becomes the next argument, and
 * parsing goes on from p->pos for the rest. At most one per request (p->external is NULL
 * before). ext must live until the request was handled (resp_parser_next). */
void resp_parser_bulk_external(struct resp_parser *p, const char *ext);

/* Forget the request just returned, ready for the next one. */
void resp_parser_next(struct resp_parser *p);

/* The caller dropped the first n bytes (n <= p->pos) of the buffer: shift the offsets. */
void resp_parser_rebase(struct resp_parser *p, size_t n);

/* Splits an inline line like Redis's sdssplitargs (quotes, \xHH and \n escapes) into out,
 * appending each argument's bytes to buf and its slice to the parser's args. false on
 * unbalanced quotes. Exposed for the unit tests. */
bool resp_split_inline(struct resp_parser *p, const char *line, size_t len);

#endif
