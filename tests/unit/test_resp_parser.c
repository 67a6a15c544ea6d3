/* Unit tests for proxy/resp_parser.c: a table of request vectors (multibulk, pipelines, inline,
 * every protocol error with Redis 7.0's exact text), each checked on status, argc, every
 * argument's bytes, p->pos and the error text; every valid vector is also fed split at every
 * offset, byte by byte, and with the caller compacting its buffer between calls the way
 * client_process_input does (resp_parser_rebase). Limits are checked before allocation, and
 * resp_split_inline is tested against sdssplitargs. Every call gets an exact-size heap copy of
 * the bytes received so far (freed after the call), so ASan catches any read past the end and
 * any use of a stale buffer.
 *
 * The expected texts were checked against redis-server 7.0.15 over a raw socket. Tests for bugs
 * found and fixed are in test_resp_parser_regress.c. */
#include "proxy/resp_parser.h"
#include "resp_parser_fixture.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_REQS 8
#define MAX_ARGS 12

/* ---------------------------------------------------------------------------------------------
 * Expected and observed requests */

struct exp_arg {
    const char *p;
    size_t n;
};
#define A(s) { (s), sizeof(s) - 1 }

struct exp_req {
    size_t argc;
    struct exp_arg argv[MAX_ARGS];
    size_t end; /* p->pos (absolute) right after the request */
};

struct vec {
    const char *name;
    const char *in;
    size_t len;
    long long max_bulk; /* 0: 512 MB */
    bool unauth;
    size_t nreq;
    struct exp_req req[MAX_REQS];
    const char *error;  /* NULL: the buffer ends with RESP_NEED_MORE */
    size_t final_pos;   /* p->pos (absolute) at the error, or at the end */
};

struct got_req {
    size_t argc;
    char **argv;
    size_t *lens;
    size_t end;
};

struct got {
    size_t nreq;
    struct got_req req[MAX_REQS];
    enum resp_status final;
    char error[RESP_ERR_MAX];
    size_t final_pos;
    size_t max_argcap;
};

static void got_free(struct got *g)
{
    for (size_t i = 0; i < g->nreq; i++) {
        for (size_t j = 0; j < g->req[i].argc; j++)
            free(g->req[i].argv[j]);
        free(g->req[i].argv);
        free(g->req[i].lens);
    }
    memset(g, 0, sizeof(*g));
}

/* Copies the request just returned (args via resp_parser_args on the current buffer). */
static void record(struct got *g, const struct resp_parser *p, const char *buf, size_t dropped)
{
    ck_assert_uint_lt(g->nreq, MAX_REQS);
    struct got_req *r = &g->req[g->nreq++];
    r->argc = p->argc;
    r->end = p->pos + dropped;
    r->argv = calloc(p->argc ? p->argc : 1, sizeof(char *));
    r->lens = calloc(p->argc ? p->argc : 1, sizeof(size_t));
    struct resp_arg *av = calloc(p->argc ? p->argc : 1, sizeof(*av));
    ck_assert_ptr_nonnull(r->argv);
    ck_assert_ptr_nonnull(r->lens);
    ck_assert_ptr_nonnull(av);
    resp_parser_args(p, buf, av);
    for (size_t i = 0; i < p->argc; i++) {
        r->argv[i] = malloc(av[i].len ? av[i].len : 1);
        ck_assert_ptr_nonnull(r->argv[i]);
        if (av[i].len)
            memcpy(r->argv[i], av[i].ptr, av[i].len);
        r->lens[i] = av[i].len;
    }
    free(av);
}

/* How the caller compacts its buffer. */
enum compact {
    COMPACT_NONE,   /* the buffer only grows */
    COMPACT_CLIENT, /* as client_process_input: at NEED_MORE drop the handled requests' bytes */
    COMPACT_HALF,   /* as CLIENT but drop only half of them (any n <= done is allowed) */
    COMPACT_EAGER,  /* drop each request's bytes right after it completes */
};

/* Feeds in[0..len) to a fresh parser: the bytes become available up to cuts[0], cuts[1], ...
 * (increasing, the last == len). After each arrival the parser runs until NEED_MORE or an
 * error, on an exact-size copy of the bytes it has not been told were dropped. */
static void run(const char *in, size_t len, const size_t *cuts, size_t ncuts, enum compact mode,
                const struct resp_limits *lim, struct got *g)
{
    struct resp_parser p;
    resp_parser_init(&p);
    memset(g, 0, sizeof(*g));
    size_t dropped = 0; /* bytes of in[] the caller has removed from the front of its buffer */
    enum resp_status st = RESP_NEED_MORE;
    for (size_t c = 0; c < ncuts && st != RESP_PROTO_ERROR; c++) {
        size_t have = cuts[c];
        size_t done = 0; /* relative to the current buffer, like client.c */
        for (;;) {
            char *buf = slice_copy(in, dropped, have);
            size_t blen = have - dropped;
            st = resp_parse(&p, buf, blen, lim);
            if (p.argcap > g->max_argcap)
                g->max_argcap = p.argcap;
            if (st == RESP_NEED_MORE) {
                ck_assert_uint_le(p.pos, blen);
                free(buf);
                break;
            }
            if (st == RESP_PROTO_ERROR) {
                free(buf);
                break;
            }
            ck_assert_int_eq(st, RESP_REQUEST);
            ck_assert_uint_le(p.pos, blen);
            ck_assert_uint_eq(p.multibulk, 0);
            ck_assert_int_eq(p.bulklen, -1);
            record(g, &p, buf, dropped);
            free(buf);
            done = p.pos;
            resp_parser_next(&p);
            ck_assert_uint_eq(p.argc, 0);
            if (mode == COMPACT_EAGER && done) {
                resp_parser_rebase(&p, done);
                dropped += done;
                done = 0;
                ck_assert_uint_eq(p.pos, 0);
            }
        }
        if (st == RESP_NEED_MORE && done && (mode == COMPACT_CLIENT || mode == COMPACT_HALF)) {
            size_t n = mode == COMPACT_HALF ? done / 2 : done;
            /* n may be below p.pos: a multibulk request may be half-parsed after done. */
            resp_parser_rebase(&p, n);
            dropped += n;
        }
    }
    g->final = st;
    g->final_pos = p.pos + dropped;
    snprintf(g->error, sizeof(g->error), "%s", st == RESP_PROTO_ERROR ? p.error : "");
    resp_parser_free(&p);
}

static struct resp_limits vec_limits(const struct vec *v)
{
    struct resp_limits lim = {
        .max_bulk_len = v->max_bulk ? v->max_bulk : MAX_BULK_DEFAULT,
        .unauthenticated = v->unauth,
    };
    return lim;
}

static void check_got(const struct vec *v, const struct got *g, const char *how)
{
    ck_assert_msg(g->nreq == v->nreq, "%s (%s): %zu requests, expected %zu", v->name, how,
                  g->nreq, v->nreq);
    for (size_t i = 0; i < v->nreq; i++) {
        const struct exp_req *e = &v->req[i];
        const struct got_req *r = &g->req[i];
        ck_assert_msg(r->argc == e->argc, "%s (%s): request %zu has argc %zu, expected %zu",
                      v->name, how, i, r->argc, e->argc);
        ck_assert_msg(r->end == e->end, "%s (%s): request %zu ends at %zu, expected %zu", v->name,
                      how, i, r->end, e->end);
        for (size_t j = 0; j < e->argc; j++)
            ck_assert_msg(r->lens[j] == e->argv[j].n && memcmp(r->argv[j], e->argv[j].p, e->argv[j].n) == 0,
                          "%s (%s): request %zu arg %zu is '%.*s' (%zu bytes), expected '%.*s' (%zu)",
                          v->name, how, i, j, (int)r->lens[j], r->argv[j], r->lens[j],
                          (int)e->argv[j].n, e->argv[j].p, e->argv[j].n);
    }
    if (v->error) {
        ck_assert_msg(g->final == RESP_PROTO_ERROR, "%s (%s): status %d, expected a protocol error",
                      v->name, how, (int)g->final);
        ck_assert_msg(strcmp(g->error, v->error) == 0, "%s (%s): error '%s', expected '%s'",
                      v->name, how, g->error, v->error);
    } else {
        ck_assert_msg(g->final == RESP_NEED_MORE, "%s (%s): status %d (%s), expected NEED_MORE",
                      v->name, how, (int)g->final, g->error);
    }
    ck_assert_msg(g->final_pos == v->final_pos, "%s (%s): final pos %zu, expected %zu", v->name,
                  how, g->final_pos, v->final_pos);
}

/* ---------------------------------------------------------------------------------------------
 * The vectors */

#define IN(s) (s), sizeof(s) - 1
#define REQ(end, n, ...) { (n), { __VA_ARGS__ }, (end) }
#define REQ0(end) { 0, { { NULL, 0 } }, (end) }

static const struct vec vectors[] = {
    /* multibulk */
    { "1 arg", IN("*1\r\n$4\r\nPING\r\n"), 0, false, 1, { REQ(14, 1, A("PING")) }, NULL, 14 },
    { "3 args", IN("*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$5\r\nvalue\r\n"), 0, false, 1,
      { REQ(33, 3, A("SET"), A("key"), A("value")) }, NULL, 33 },
    { "8 args", IN("*8\r\n$1\r\na\r\n$2\r\nbb\r\n$3\r\nccc\r\n$1\r\nd\r\n$1\r\ne\r\n$1\r\nf\r\n"
                   "$1\r\ng\r\n$10\r\n0123456789\r\n"),
      0, false, 1,
      { REQ(73, 8, A("a"), A("bb"), A("ccc"), A("d"), A("e"), A("f"), A("g"), A("0123456789")) },
      NULL, 73 },
    { "empty bulk", IN("*2\r\n$4\r\nECHO\r\n$0\r\n\r\n"), 0, false, 1,
      { REQ(20, 2, A("ECHO"), A("")) }, NULL, 20 },
    { "all bulks empty", IN("*2\r\n$0\r\n\r\n$0\r\n\r\n"), 0, false, 1,
      { REQ(16, 2, A(""), A("")) }, NULL, 16 },
    { "binary bulk", IN("*2\r\n$4\r\nECHO\r\n$9\r\na\r\n\0b\r\n\n\0\r\n"), 0, false, 1,
      { REQ(29, 2, A("ECHO"), A("a\r\n\0b\r\n\n\0")) }, NULL, 29 },
    { "bulk of CRLFs", IN("*1\r\n$4\r\n\r\n\r\n\r\n"), 0, false, 1, { REQ(14, 1, A("\r\n\r\n")) },
      NULL, 14 },
    { "bulk with '*' and '$'", IN("*1\r\n$6\r\n*1\r\n$0\r\n"), 0, false, 1,
      { REQ(16, 1, A("*1\r\n$0")) }, NULL, 16 },
    /* Redis skips the two bytes after a bulk without checking them. */
    { "bulk terminator not checked", IN("*1\r\n$4\r\nPINGxy*1\r\n$4\r\nPING\r\n"), 0, false, 2,
      { REQ(14, 1, A("PING")), REQ(28, 1, A("PING")) }, NULL, 28 },
    { "*0", IN("*0\r\n"), 0, false, 1, { REQ0(4) }, NULL, 4 },
    { "*-1", IN("*-1\r\n"), 0, false, 1, { REQ0(5) }, NULL, 5 },
    { "*-5", IN("*-5\r\n"), 0, false, 1, { REQ0(5) }, NULL, 5 },
    { "bulk exactly max_bulk_len", IN("*1\r\n$5\r\nhello\r\n"), 5, false, 1,
      { REQ(15, 1, A("hello")) }, NULL, 15 },
    { "*10 unauthenticated", IN("*10\r\n$1\r\na\r\n$1\r\na\r\n$1\r\na\r\n$1\r\na\r\n$1\r\na\r\n$1\r\na\r\n"
                                "$1\r\na\r\n$1\r\na\r\n$1\r\na\r\n$1\r\na\r\n"),
      0, true, 1,
      { REQ(75, 10, A("a"), A("a"), A("a"), A("a"), A("a"), A("a"), A("a"), A("a"), A("a"), A("a")) },
      NULL, 75 },
    { "*11 authenticated", IN("*11\r\n"), 0, false, 0, { REQ0(0) }, NULL, 5 },
    { "$16384 unauthenticated", IN("*1\r\n$16384\r\n"), 0, true, 0, { REQ0(0) }, NULL, 12 },
    { "$16385 authenticated", IN("*1\r\n$16385\r\n"), 0, false, 0, { REQ0(0) }, NULL, 12 },
    /* pipelines */
    { "pipeline of 3", IN("*1\r\n$4\r\nPING\r\n*2\r\n$3\r\nGET\r\n$1\r\nk\r\n*3\r\n$3\r\nSET\r\n"
                          "$1\r\nk\r\n$1\r\nv\r\n"),
      0, false, 3,
      { REQ(14, 1, A("PING")), REQ(34, 2, A("GET"), A("k")), REQ(61, 3, A("SET"), A("k"), A("v")) },
      NULL, 61 },
    { "pipeline mixed", IN("PING\r\n*2\r\n$4\r\nECHO\r\n$2\r\nhi\r\nECHO x\n*0\r\n\r\n*-1\r\n"
                           "*1\r\n$4\r\nQUIT\r\n"),
      0, false, 7,
      { REQ(6, 1, A("PING")), REQ(28, 2, A("ECHO"), A("hi")), REQ(35, 2, A("ECHO"), A("x")),
        REQ0(39), REQ0(41), REQ0(46), REQ(60, 1, A("QUIT")) },
      NULL, 60 },
    { "pipeline then partial", IN("*1\r\n$4\r\nPING\r\n*2\r\n$3\r\nGET\r\n$1"), 0, false, 1,
      { REQ(14, 1, A("PING")) }, NULL, 27 },
    { "partial header only", IN("*2\r\n$3\r"), 0, false, 0, { REQ0(0) }, NULL, 4 },
    { "partial bulk data", IN("*2\r\n$3\r\nGET\r"), 0, false, 0, { REQ0(0) }, NULL, 8 },
    { "partial bulk", IN("*2\r\n$3\r\nGET\r\n$5\r\nabc"), 0, false, 0, { REQ0(0) }, NULL, 17 },
    /* inline */
    { "inline PING CRLF", IN("PING\r\n"), 0, false, 1, { REQ(6, 1, A("PING")) }, NULL, 6 },
    { "inline PING LF", IN("PING\n"), 0, false, 1, { REQ(5, 1, A("PING")) }, NULL, 5 },
    { "inline SET", IN("SET a b\r\n"), 0, false, 1, { REQ(9, 3, A("SET"), A("a"), A("b")) }, NULL,
      9 },
    { "inline spaces", IN("  SET   a    b  \r\n"), 0, false, 1,
      { REQ(18, 3, A("SET"), A("a"), A("b")) }, NULL, 18 },
    { "inline tabs", IN("SET\ta\t\t b\t\r\n"), 0, false, 1,
      { REQ(12, 3, A("SET"), A("a"), A("b")) }, NULL, 12 },
    { "inline dq escapes", IN("ECHO \"\\x41\\n\\\"\"\r\n"), 0, false, 1,
      { REQ(17, 2, A("ECHO"), A("A\n\"")) }, NULL, 17 },
    { "inline dq all escapes", IN("ECHO \"\\r\\t\\b\\a\\\\\\q\\x4A\\x4a\\xff\"\n"), 0, false, 1,
      { REQ(32, 2, A("ECHO"), A("\r\t\b\a\\qJJ\xff")) }, NULL, 32 },
    { "inline dq bad hex", IN("ECHO \"a\\x4\" \"\\xzz\"\r\n"), 0, false, 1,
      { REQ(20, 3, A("ECHO"), A("ax4"), A("xzz")) }, NULL, 20 },
    { "inline dq with spaces", IN("SET \"a b\" c\r\n"), 0, false, 1,
      { REQ(13, 3, A("SET"), A("a b"), A("c")) }, NULL, 13 },
    { "inline sq", IN("ECHO 'a\\'b'\r\n"), 0, false, 1, { REQ(13, 2, A("ECHO"), A("a'b")) }, NULL,
      13 },
    { "inline sq keeps backslashes", IN("ECHO 'a\\b\\n\"'\r\n"), 0, false, 1,
      { REQ(15, 2, A("ECHO"), A("a\\b\\n\"")) }, NULL, 15 },
    { "inline quote mid-token", IN("ECHO a\"b c\" 'x'y\r\n"), 0, false, 0, { REQ0(0) },
      "Protocol error: unbalanced quotes in request", 0 },
    { "inline quote opens mid-token", IN("ECHO a\"b c\"\r\n"), 0, false, 1,
      { REQ(13, 2, A("ECHO"), A("ab c")) }, NULL, 13 },
    { "inline empty quoted", IN("ECHO \"\" ''\r\n"), 0, false, 1,
      { REQ(12, 3, A("ECHO"), A(""), A("")) }, NULL, 12 },
    { "inline closing quote then tab", IN("ECHO \"a\"\t'b'\r\n"), 0, false, 1,
      { REQ(14, 3, A("ECHO"), A("a"), A("b")) }, NULL, 14 },
    { "inline vertical tab inside token", IN("ECHO a\vb\r\n"), 0, false, 1,
      { REQ(10, 2, A("ECHO"), A("a\vb")) }, NULL, 10 },
    { "inline CR inside line", IN("ECHO a\rb\r\n"), 0, false, 1,
      { REQ(10, 3, A("ECHO"), A("a"), A("b")) }, NULL, 10 },
    { "inline double CR", IN("PING\r\r\n"), 0, false, 1, { REQ(7, 1, A("PING")) }, NULL, 7 },
    { "inline empty line CRLF", IN("\r\n"), 0, false, 1, { REQ0(2) }, NULL, 2 },
    { "inline empty line LF", IN("\n"), 0, false, 1, { REQ0(1) }, NULL, 1 },
    { "inline blank line", IN(" \t \r\n"), 0, false, 1, { REQ0(5) }, NULL, 5 },
    { "inline pipeline", IN("\r\nPING\nSET a b\r\n\nGET a\r\n"), 0, false, 5,
      { REQ0(2), REQ(7, 1, A("PING")), REQ(16, 3, A("SET"), A("a"), A("b")), REQ0(17),
        REQ(24, 2, A("GET"), A("a")) },
      NULL, 24 },
    { "inline partial", IN("PING\r\nGET a"), 0, false, 1, { REQ(6, 1, A("PING")) }, NULL, 6 },
    /* protocol errors */
    { "*abc", IN("*abc\r\n"), 0, false, 0, { REQ0(0) }, "Protocol error: invalid multibulk length", 0 },
    { "*-", IN("*-\r\n"), 0, false, 0, { REQ0(0) }, "Protocol error: invalid multibulk length", 0 },
    { "*", IN("*\r\n"), 0, false, 0, { REQ0(0) }, "Protocol error: invalid multibulk length", 0 },
    { "*2147483648", IN("*2147483648\r\n"), 0, false, 0, { REQ0(0) },
      "Protocol error: invalid multibulk length", 0 },
    { "*99999999999999999999", IN("*99999999999999999999\r\n"), 0, false, 0, { REQ0(0) },
      "Protocol error: invalid multibulk length", 0 },
    { "*01", IN("*01\r\n"), 0, false, 0, { REQ0(0) }, "Protocol error: invalid multibulk length", 0 },
    { "*-0", IN("*-0\r\n"), 0, false, 0, { REQ0(0) }, "Protocol error: invalid multibulk length", 0 },
    { "*+1", IN("*+1\r\n"), 0, false, 0, { REQ0(0) }, "Protocol error: invalid multibulk length", 0 },
    { "* 1", IN("* 1\r\n"), 0, false, 0, { REQ0(0) }, "Protocol error: invalid multibulk length", 0 },
    { "*1 LF only", IN("*1\n$4\r\nPING\r\n"), 0, false, 0, { REQ0(0) },
      "Protocol error: invalid multibulk length", 0 },
    { "error after a request", IN("PING\r\n*x\r\n"), 0, false, 1, { REQ(6, 1, A("PING")) },
      "Protocol error: invalid multibulk length", 6 },
    { "$abc", IN("*1\r\n$abc\r\n"), 0, false, 0, { REQ0(0) }, "Protocol error: invalid bulk length", 4 },
    { "$-1", IN("*1\r\n$-1\r\n"), 0, false, 0, { REQ0(0) }, "Protocol error: invalid bulk length", 4 },
    { "$", IN("*1\r\n$\r\n"), 0, false, 0, { REQ0(0) }, "Protocol error: invalid bulk length", 4 },
    { "$01", IN("*1\r\n$01\r\n"), 0, false, 0, { REQ0(0) }, "Protocol error: invalid bulk length", 4 },
    { "$+1", IN("*1\r\n$+1\r\n"), 0, false, 0, { REQ0(0) }, "Protocol error: invalid bulk length", 4 },
    { "$ over max_bulk_len", IN("*1\r\n$6\r\nhello!\r\n"), 5, false, 0, { REQ0(0) },
      "Protocol error: invalid bulk length", 4 },
    { "$ over 512 MB", IN("*1\r\n$536870913\r\n"), 0, false, 0, { REQ0(0) },
      "Protocol error: invalid bulk length", 4 },
    { "second $ invalid", IN("*2\r\n$3\r\nGET\r\n$x\r\n"), 0, false, 0, { REQ0(0) },
      "Protocol error: invalid bulk length", 13 },
    { "expected $ got x", IN("*1\r\nx\r\n"), 0, false, 0, { REQ0(0) },
      "Protocol error: expected '$', got 'x'", 4 },
    { "expected $ got P", IN("*2\r\n$3\r\nGET\r\nPING\r\n"), 0, false, 0, { REQ0(0) },
      "Protocol error: expected '$', got 'P'", 13 },
    { "expected $ got CR", IN("*1\r\n\r\n"), 0, false, 0, { REQ0(0) },
      "Protocol error: expected '$', got '\r'", 4 },
    { "expected $ got *", IN("*1\r\n*1\r\n"), 0, false, 0, { REQ0(0) },
      "Protocol error: expected '$', got '*'", 4 },
    { "unbalanced dq", IN("SET \"a b\r\n"), 0, false, 0, { REQ0(0) },
      "Protocol error: unbalanced quotes in request", 0 },
    { "unbalanced sq", IN("SET 'a\r\n"), 0, false, 0, { REQ0(0) },
      "Protocol error: unbalanced quotes in request", 0 },
    { "closing quote then non-space", IN("\"a\"b\r\n"), 0, false, 0, { REQ0(0) },
      "Protocol error: unbalanced quotes in request", 0 },
    { "closing sq then non-space", IN("'a'b\r\n"), 0, false, 0, { REQ0(0) },
      "Protocol error: unbalanced quotes in request", 0 },
    { "dq ends in backslash", IN("ECHO \"a\\\r\n"), 0, false, 0, { REQ0(0) },
      "Protocol error: unbalanced quotes in request", 0 },
    { "escaped closing dq", IN("ECHO \"a\\\"\r\n"), 0, false, 0, { REQ0(0) },
      "Protocol error: unbalanced quotes in request", 0 },
    { "unbalanced after a request", IN("*1\r\n$4\r\nPING\r\nGET \"a\n"), 0, false, 1,
      { REQ(14, 1, A("PING")) }, "Protocol error: unbalanced quotes in request", 14 },
    { "*11 unauthenticated", IN("*11\r\n"), 0, true, 0, { REQ0(0) },
      "Protocol error: unauthenticated multibulk length", 0 },
    { "*abc unauthenticated", IN("*abc\r\n"), 0, true, 0, { REQ0(0) },
      "Protocol error: invalid multibulk length", 0 },
    { "*-5 unauthenticated", IN("*-5\r\n"), 0, true, 1, { REQ0(5) }, NULL, 5 },
    { "$16385 unauthenticated", IN("*1\r\n$16385\r\n"), 0, true, 0, { REQ0(0) },
      "Protocol error: unauthenticated bulk length", 4 },
    { "$ over max unauthenticated", IN("*1\r\n$16385\r\n"), 100, true, 0, { REQ0(0) },
      "Protocol error: invalid bulk length", 4 },
};
#define NVEC (sizeof(vectors) / sizeof(vectors[0]))

/* Whole, every two-way split, byte by byte; each without compaction, with client-style,
 * half and eager compaction. split_step > 1 samples the split points: every offset within 64
 * bytes of either end, then every split_step-th (for the 1 MB vector). */
static void check_all_ways(const struct vec *v, size_t split_step)
{
    struct resp_limits lim = vec_limits(v);
    struct got g;
    size_t whole[1] = { v->len };
    static const enum compact modes[] = { COMPACT_NONE, COMPACT_CLIENT, COMPACT_HALF,
                                          COMPACT_EAGER };
    static const char *const mode_names[] = { "none", "client", "half", "eager" };
    char how[96];

    for (size_t m = 0; m < 4; m++) {
        snprintf(how, sizeof(how), "whole, compact %s", mode_names[m]);
        run(v->in, v->len, whole, 1, modes[m], &lim, &g);
        check_got(v, &g, how);
        got_free(&g);
    }
    /* Two calls: a prefix of k bytes, then everything. */
    for (size_t k = 0; k <= v->len; k++) {
        if (split_step > 1 && k > 64 && k + 64 < v->len && k % split_step)
            continue;
        size_t cuts[2] = { k, v->len };
        for (size_t m = 0; m < 4; m++) {
            snprintf(how, sizeof(how), "split at %zu, compact %s", k, mode_names[m]);
            run(v->in, v->len, cuts, 2, modes[m], &lim, &g);
            check_got(v, &g, how);
            got_free(&g);
        }
    }
    /* Byte by byte (only for small inputs: every call copies the buffer). */
    if (v->len <= 4096) {
        size_t *cuts = malloc((v->len + 1) * sizeof(*cuts));
        ck_assert_ptr_nonnull(cuts);
        for (size_t i = 0; i <= v->len; i++)
            cuts[i] = i;
        for (size_t m = 0; m < 4; m++) {
            snprintf(how, sizeof(how), "byte by byte, compact %s", mode_names[m]);
            run(v->in, v->len, cuts, v->len + 1, modes[m], &lim, &g);
            check_got(v, &g, how);
            got_free(&g);
        }
        free(cuts);
    }
}

START_TEST(test_vectors_whole)
{
    for (size_t i = 0; i < NVEC; i++) {
        const struct vec *v = &vectors[i];
        if (!v->in)
            continue;
        struct resp_limits lim = vec_limits(v);
        struct got g;
        size_t whole[1] = { v->len };
        run(v->in, v->len, whole, 1, COMPACT_NONE, &lim, &g);
        check_got(v, &g, "whole");
        got_free(&g);
    }
}
END_TEST

START_TEST(test_vectors_every_split)
{
    const struct vec *v = &vectors[_i];
    if (v->in)
        check_all_ways(v, 1);
}
END_TEST

/* An inline line of exactly 64 KB without its newline is still awaited; one byte more fails;
 * with the newline it is parsed. */
START_TEST(test_inline_limit)
{
    size_t n = RESP_INLINE_MAX + 2;
    char *big = malloc(n);
    ck_assert_ptr_nonnull(big);
    memset(big, 'a', n);
    big[3] = ' ';
    struct resp_limits lim = { .max_bulk_len = MAX_BULK_DEFAULT };
    struct resp_parser p;

    resp_parser_init(&p);
    char *b = slice_copy(big, 0, RESP_INLINE_MAX);
    ck_assert_int_eq(resp_parse(&p, b, RESP_INLINE_MAX, &lim), RESP_NEED_MORE);
    ck_assert_uint_eq(p.pos, 0);
    free(b);
    b = slice_copy(big, 0, RESP_INLINE_MAX + 1);
    ck_assert_int_eq(resp_parse(&p, b, RESP_INLINE_MAX + 1, &lim), RESP_PROTO_ERROR);
    ck_assert_str_eq(p.error, "Protocol error: too big inline request");
    ck_assert_uint_eq(p.pos, 0);
    free(b);
    resp_parser_free(&p);

    /* Not counted from the start of the buffer but from the request: a completed request
     * before it does not count. */
    resp_parser_init(&p);
    b = malloc(6 + RESP_INLINE_MAX);
    memcpy(b, "PING\r\n", 6);
    memset(b + 6, 'x', RESP_INLINE_MAX);
    ck_assert_int_eq(resp_parse(&p, b, 6 + RESP_INLINE_MAX, &lim), RESP_REQUEST);
    resp_parser_next(&p);
    ck_assert_int_eq(resp_parse(&p, b, 6 + RESP_INLINE_MAX, &lim), RESP_NEED_MORE);
    ck_assert_uint_eq(p.pos, 6);
    free(b);
    resp_parser_free(&p);

    /* A long line that arrived whole with its newline is parsed (Redis only checks the size
     * while the newline is missing). */
    big[n - 2] = '\r';
    big[n - 1] = '\n';
    resp_parser_init(&p);
    b = slice_copy(big, 0, n);
    ck_assert_int_eq(resp_parse(&p, b, n, &lim), RESP_REQUEST);
    ck_assert_uint_eq(p.argc, 2);
    ck_assert_uint_eq(p.pos, n);
    struct resp_arg av[2];
    resp_parser_args(&p, b, av);
    ck_assert_uint_eq(av[0].len, 3);
    ck_assert_int_eq(memcmp(av[0].ptr, "aaa", 3), 0);
    ck_assert_uint_eq(av[1].len, n - 6);
    free(b);
    resp_parser_free(&p);
    free(big);
}
END_TEST

/* "too big mbulk count string" / "too big bulk count string": a header line without '\r' longer
 * than 64 KB. */
START_TEST(test_count_string_limits)
{
    struct resp_limits lim = { .max_bulk_len = MAX_BULK_DEFAULT };
    struct resp_parser p;
    size_t n = 4 + RESP_INLINE_MAX + 1;
    char *big = malloc(n);
    ck_assert_ptr_nonnull(big);

    /* "*" + 65535 digits = 65536 bytes: awaited; one more byte: error. */
    memset(big, '1', n);
    big[0] = '*';
    resp_parser_init(&p);
    char *b = slice_copy(big, 0, RESP_INLINE_MAX);
    ck_assert_int_eq(resp_parse(&p, b, RESP_INLINE_MAX, &lim), RESP_NEED_MORE);
    free(b);
    b = slice_copy(big, 0, RESP_INLINE_MAX + 1);
    ck_assert_int_eq(resp_parse(&p, b, RESP_INLINE_MAX + 1, &lim), RESP_PROTO_ERROR);
    ck_assert_str_eq(p.error, "Protocol error: too big mbulk count string");
    ck_assert_uint_eq(p.pos, 0);
    free(b);
    resp_parser_free(&p);

    /* Same for the $ line of an argument, counted from the '$'. */
    memcpy(big, "*1\r\n$", 5);
    resp_parser_init(&p);
    b = slice_copy(big, 0, 4 + RESP_INLINE_MAX);
    ck_assert_int_eq(resp_parse(&p, b, 4 + RESP_INLINE_MAX, &lim), RESP_NEED_MORE);
    ck_assert_uint_eq(p.pos, 4);
    ck_assert_uint_eq(p.multibulk, 1);
    free(b);
    b = slice_copy(big, 0, n);
    ck_assert_int_eq(resp_parse(&p, b, n, &lim), RESP_PROTO_ERROR);
    ck_assert_str_eq(p.error, "Protocol error: too big bulk count string");
    ck_assert_uint_eq(p.pos, 4);
    free(b);
    resp_parser_free(&p);

    /* A long header that has its '\r' is an invalid number, not "too big". */
    big[n - 2] = '\r';
    big[n - 1] = '\n';
    resp_parser_init(&p);
    b = slice_copy(big, 0, n);
    ck_assert_int_eq(resp_parse(&p, b, n, &lim), RESP_PROTO_ERROR);
    ck_assert_str_eq(p.error, "Protocol error: invalid bulk length");
    free(b);
    resp_parser_free(&p);
    free(big);
}
END_TEST

/* A lower inline_max (the fuzz target's way to reach the limits with small inputs) applies to
 * inline lines and to both header lines alike; 0 means RESP_INLINE_MAX. */
START_TEST(test_inline_max_override)
{
    struct resp_limits lim = { .max_bulk_len = MAX_BULK_DEFAULT, .inline_max = 8 };
    static const struct {
        const char *in, *error; /* error NULL: awaited */
    } cases[] = {
        { "PING 123", NULL },                     /* 8 bytes without a newline */
        { "PING 1234", "Protocol error: too big inline request" },
        { "*1234567", NULL },
        { "*12345678", "Protocol error: too big mbulk count string" },
        { "*1\r\n$1234567", NULL },
        { "*1\r\n$12345678", "Protocol error: too big bulk count string" },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct resp_parser p;
        resp_parser_init(&p);
        size_t n = strlen(cases[i].in);
        char *b = slice_copy(cases[i].in, 0, n);
        enum resp_status st = resp_parse(&p, b, n, &lim);
        if (cases[i].error) {
            ck_assert_int_eq(st, RESP_PROTO_ERROR);
            ck_assert_str_eq(p.error, cases[i].error);
        } else {
            ck_assert_int_eq(st, RESP_NEED_MORE);
        }
        free(b);
        resp_parser_free(&p);
    }
    /* A complete line longer than the limit is parsed, as with the default limit. */
    struct resp_parser p;
    resp_parser_init(&p);
    ck_assert_int_eq(resp_parse(&p, "PING 1234567890\r\n", 17, &lim), RESP_REQUEST);
    ck_assert_uint_eq(p.argc, 2);
    resp_parser_free(&p);
}
END_TEST

/* A bulk the caller read outside the buffer (resp_parser_bulk_external, client.c's large
 * arguments): it becomes the next argument, in order, whether it is the last argument (the
 * request is complete at once) or others follow in the buffer; offsets of the arguments in the
 * buffer survive a rebase, the external one is left alone; the next request parses as usual. */
START_TEST(test_external_bulk)
{
    struct resp_limits lim = { .max_bulk_len = MAX_BULK_DEFAULT };
    static const char ext[] = "0123456789";
    for (int last = 0; last < 2; last++) {
        struct resp_parser p;
        resp_parser_init(&p);
        const char *hdr = last ? "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$10\r\n01"
                               : "*5\r\n$3\r\nSET\r\n$1\r\nk\r\n$10\r\n01";
        size_t hl = strlen(hdr) - 2; /* the caller moved the bulk's first bytes out */
        char *b = slice_copy(hdr, 0, strlen(hdr));
        ck_assert_int_eq(resp_parse(&p, b, strlen(hdr), &lim), RESP_NEED_MORE);
        ck_assert_int_eq(p.bulklen, 10);
        ck_assert_uint_eq(p.pos, hl);
        free(b);
        resp_parser_bulk_external(&p, ext);
        ck_assert_ptr_eq(p.external, ext);
        struct resp_arg argv[MAX_ARGS];
        const char *rest = "$2\r\nEX\r\n$3\r\n100\r\n*1\r\n$4\r\nPING\r\n";
        char buf[256];
        memcpy(buf, hdr, hl);
        size_t len = hl;
        if (!last) {
            /* the rest arrives, with a compaction in between (the first 4 bytes dropped) */
            memmove(buf, buf + 4, hl - 4);
            resp_parser_rebase(&p, 4);
            len = hl - 4;
            memcpy(buf + len, rest, strlen(rest));
            len += strlen(rest);
        }
        b = slice_copy(buf, 0, len);
        ck_assert_int_eq(resp_parse(&p, b, len, &lim), RESP_REQUEST);
        ck_assert_uint_eq(p.argc, last ? 3 : 5);
        resp_parser_args(&p, b, argv);
        ck_assert_uint_eq(argv[0].len, 3);
        ck_assert(memcmp(argv[0].ptr, "SET", 3) == 0);
        ck_assert(memcmp(argv[1].ptr, "k", 1) == 0);
        ck_assert_ptr_eq(argv[2].ptr, ext);
        ck_assert_uint_eq(argv[2].len, 10);
        if (!last) {
            ck_assert(argv[3].len == 2 && memcmp(argv[3].ptr, "EX", 2) == 0);
            ck_assert(argv[4].len == 3 && memcmp(argv[4].ptr, "100", 3) == 0);
        } else {
            ck_assert_uint_eq(p.pos, hl); /* nothing of the buffer was needed */
        }
        resp_parser_next(&p);
        ck_assert_ptr_null(p.external);
        if (!last) {
            ck_assert_int_eq(resp_parse(&p, b, len, &lim), RESP_REQUEST);
            ck_assert_uint_eq(p.argc, 1);
            ck_assert_uint_eq(p.pos, len);
            resp_parser_next(&p);
        }
        ck_assert_int_eq(resp_parse(&p, b, len, &lim), RESP_NEED_MORE);
        free(b);
        resp_parser_free(&p);
    }
}
END_TEST

/* *2147483647 is accepted (INT_MAX) but nothing is allocated for arguments that have not
 * arrived; a huge $ length is refused or awaited without allocating. */
START_TEST(test_limits_before_allocation)
{
    struct resp_limits lim = { .max_bulk_len = MAX_BULK_DEFAULT };
    struct resp_parser p;
    resp_parser_init(&p);
    const char *hdr = "*2147483647\r\n";
    char *b = slice_copy(hdr, 0, strlen(hdr));
    ck_assert_int_eq(resp_parse(&p, b, strlen(hdr), &lim), RESP_NEED_MORE);
    ck_assert_uint_eq(p.pos, 13);
    ck_assert_int_eq(p.multibulk, 2147483647LL);
    ck_assert_uint_le(p.argcap, 1024);
    free(b);

    const char *more = "*2147483647\r\n$1\r\na\r\n";
    b = slice_copy(more, 0, strlen(more));
    ck_assert_int_eq(resp_parse(&p, b, strlen(more), &lim), RESP_NEED_MORE);
    ck_assert_uint_eq(p.argc, 1);
    ck_assert_uint_le(p.argcap, 1024);
    ck_assert_int_eq(p.multibulk, 2147483646LL);
    ck_assert_uint_eq(p.pos, strlen(more));
    free(b);

    /* A 512 MB bulk header: awaited, nothing reserved for it. */
    const char *bulk = "*2147483647\r\n$1\r\na\r\n$536870912\r\n";
    b = slice_copy(bulk, 0, strlen(bulk));
    ck_assert_int_eq(resp_parse(&p, b, strlen(bulk), &lim), RESP_NEED_MORE);
    ck_assert_int_eq(p.bulklen, 536870912LL);
    ck_assert_uint_eq(p.argc, 1);
    ck_assert_uint_le(p.argcap, 1024);
    free(b);
    resp_parser_free(&p);

    /* The vector grows with the arguments that arrive: 3000 of them fit, argcap stays near. */
    size_t nargs = 3000;
    size_t cap = 32 + nargs * 8;
    char *req = malloc(cap);
    ck_assert_ptr_nonnull(req);
    size_t len = (size_t)snprintf(req, cap, "*%zu\r\n", (size_t)1000000);
    for (size_t i = 0; i < nargs; i++) {
        memcpy(req + len, "$1\r\nz\r\n", 7);
        len += 7;
    }
    resp_parser_init(&p);
    b = slice_copy(req, 0, len);
    ck_assert_int_eq(resp_parse(&p, b, len, &lim), RESP_NEED_MORE);
    ck_assert_uint_eq(p.argc, nargs);
    ck_assert_uint_le(p.argcap, 2 * nargs);
    ck_assert_int_eq(p.multibulk, 1000000 - (long long)nargs);
    free(b);
    resp_parser_free(&p);

    /* Exactly nargs: the vector is not over-allocated past the count either. */
    len = (size_t)snprintf(req, cap, "*%zu\r\n", nargs);
    for (size_t i = 0; i < nargs; i++) {
        memcpy(req + len, "$1\r\nz\r\n", 7);
        len += 7;
    }
    resp_parser_init(&p);
    b = slice_copy(req, 0, len);
    ck_assert_int_eq(resp_parse(&p, b, len, &lim), RESP_REQUEST);
    ck_assert_uint_eq(p.argc, nargs);
    ck_assert_uint_eq(p.pos, len);
    ck_assert_uint_le(p.argcap, nargs);
    struct resp_arg *av = malloc(nargs * sizeof(*av));
    resp_parser_args(&p, b, av);
    for (size_t i = 0; i < nargs; i++)
        ck_assert(av[i].len == 1 && av[i].ptr[0] == 'z');
    free(av);
    free(b);
    resp_parser_free(&p);
    free(req);
}
END_TEST

/* A 1 MB bulk: whole, sampled splits (all offsets near the headers and the end), 16 KB and
 * 1000-byte chunks, with and without compaction. */
START_TEST(test_one_megabyte_bulk)
{
    size_t blen = 1024 * 1024;
    const char *pre = "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1048576\r\n";
    size_t plen = strlen(pre);
    const char *post = "\r\n*1\r\n$4\r\nPING\r\n";
    size_t qlen = strlen(post);
    size_t len = plen + blen + qlen;
    char *in = malloc(len);
    ck_assert_ptr_nonnull(in);
    memcpy(in, pre, plen);
    for (size_t i = 0; i < blen; i++)
        in[plen + i] = (char)(i * 131 + (i >> 9));
    memcpy(in + plen + blen, post, qlen);

    struct vec v = { "1 MB bulk", in, len, 0, false, 2,
                     { { 3, { A("SET"), A("k"), { in + plen, blen } }, plen + blen + 2 },
                       REQ(len, 1, A("PING")) },
                     NULL, len };
    check_all_ways(&v, 65521);

    struct resp_limits lim = { .max_bulk_len = MAX_BULK_DEFAULT };
    size_t chunk_sizes[] = { 16384, 4093 };
    for (size_t c = 0; c < 2; c++) {
        size_t n = (len + chunk_sizes[c] - 1) / chunk_sizes[c];
        size_t *cuts = malloc(n * sizeof(*cuts));
        for (size_t i = 0; i < n; i++)
            cuts[i] = (i + 1) * chunk_sizes[c] < len ? (i + 1) * chunk_sizes[c] : len;
        for (int m = COMPACT_NONE; m <= COMPACT_EAGER; m++) {
            struct got g;
            run(in, len, cuts, n, (enum compact)m, &lim, &g);
            check_got(&v, &g, chunk_sizes[c] == 4093 ? "4093-byte chunks" : "16 KB chunks");
            got_free(&g);
        }
        free(cuts);
    }

    /* With max_bulk_len one below: refused at the header, before the data arrives. */
    lim.max_bulk_len = (long long)blen - 1;
    struct resp_parser p;
    resp_parser_init(&p);
    char *b = slice_copy(in, 0, plen);
    ck_assert_int_eq(resp_parse(&p, b, plen, &lim), RESP_PROTO_ERROR);
    ck_assert_str_eq(p.error, "Protocol error: invalid bulk length");
    free(b);
    resp_parser_free(&p);
    free(in);
}
END_TEST

/* The caller compacts while a multibulk request is half-parsed, exactly as client.c does:
 * only the bytes of the requests already handled (done) are dropped. */
START_TEST(test_rebase_half_parsed)
{
    struct resp_limits lim = { .max_bulk_len = MAX_BULK_DEFAULT };
    const char *in = "PING\r\n*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$5\r\nvalue\r\n";
    size_t len = strlen(in);
    struct resp_parser p;
    resp_parser_init(&p);

    /* First read: PING and half of SET (up to inside the "key" bulk). */
    size_t first = 6 + 4 + 9 + 4 + 2; /* ... "$3\r\nke" */
    char *b = slice_copy(in, 0, first);
    ck_assert_int_eq(resp_parse(&p, b, first, &lim), RESP_REQUEST);
    ck_assert_uint_eq(p.argc, 1);
    ck_assert_uint_eq(p.pos, 6);
    size_t done = p.pos;
    resp_parser_next(&p);
    ck_assert_int_eq(resp_parse(&p, b, first, &lim), RESP_NEED_MORE);
    ck_assert_uint_eq(p.argc, 1);          /* SET arrived */
    ck_assert_int_eq(p.multibulk, 2);
    ck_assert_int_eq(p.bulklen, 3);        /* "key" is awaited */
    ck_assert_uint_eq(p.pos, 6 + 4 + 9 + 4);
    ck_assert_uint_eq(p.args[0].off, 6 + 4 + 4);
    free(b);

    /* client.c: strbuf_consume(done), rebase(min(done, pos)). */
    resp_parser_rebase(&p, done);
    ck_assert_uint_eq(p.pos, 4 + 9 + 4);
    ck_assert_uint_eq(p.args[0].off, 4 + 4);
    ck_assert_uint_eq(p.args[0].len, 3);

    /* Second read: a little more, nothing completes, nothing to drop. */
    b = slice_copy(in, done, first + 10);
    ck_assert_int_eq(resp_parse(&p, b, first + 10 - done, &lim), RESP_NEED_MORE);
    ck_assert_uint_eq(p.argc, 2);
    ck_assert_int_eq(p.bulklen, 5);
    free(b);

    /* Last read completes it; arguments point into the compacted buffer. */
    b = slice_copy(in, done, len);
    ck_assert_int_eq(resp_parse(&p, b, len - done, &lim), RESP_REQUEST);
    ck_assert_uint_eq(p.argc, 3);
    ck_assert_uint_eq(p.pos, len - done);
    struct resp_arg av[3];
    resp_parser_args(&p, b, av);
    ck_assert(av[0].len == 3 && memcmp(av[0].ptr, "SET", 3) == 0);
    ck_assert(av[1].len == 3 && memcmp(av[1].ptr, "key", 3) == 0);
    ck_assert(av[2].len == 5 && memcmp(av[2].ptr, "value", 5) == 0);
    ck_assert_ptr_eq(av[0].ptr, b + 8);
    free(b);
    resp_parser_free(&p);
}
END_TEST

/* Rebasing between requests and after an inline request (its arguments are not in the buffer
 * and must not move). */
START_TEST(test_rebase_between_requests)
{
    struct resp_limits lim = { .max_bulk_len = MAX_BULK_DEFAULT };
    struct resp_parser p;
    resp_parser_init(&p);
    const char *in = "ECHO hello\r\n*2\r\n$4\r\nECHO\r\n$2\r\nhi\r\n";
    size_t len = strlen(in);
    char *b = slice_copy(in, 0, len);
    ck_assert_int_eq(resp_parse(&p, b, len, &lim), RESP_REQUEST);
    ck_assert(p.is_inline);
    ck_assert_uint_eq(p.pos, 12);
    size_t off1 = p.args[1].off;
    /* rebase with an inline request still pending leaves its (inline_buf) offsets alone */
    resp_parser_rebase(&p, 12);
    ck_assert_uint_eq(p.pos, 0);
    ck_assert_uint_eq(p.args[1].off, off1);
    struct resp_arg av[2];
    resp_parser_args(&p, NULL, av);
    ck_assert(av[1].len == 5 && memcmp(av[1].ptr, "hello", 5) == 0);
    resp_parser_next(&p);
    free(b);
    b = slice_copy(in, 12, len);
    ck_assert_int_eq(resp_parse(&p, b, len - 12, &lim), RESP_REQUEST);
    ck_assert(!p.is_inline);
    ck_assert_uint_eq(p.pos, len - 12);
    resp_parser_args(&p, b, av);
    ck_assert(av[0].len == 4 && memcmp(av[0].ptr, "ECHO", 4) == 0);
    ck_assert(av[1].len == 2 && memcmp(av[1].ptr, "hi", 2) == 0);
    resp_parser_next(&p);
    resp_parser_rebase(&p, len - 12);
    ck_assert_uint_eq(p.pos, 0);
    ck_assert_int_eq(resp_parse(&p, b, 0, &lim), RESP_NEED_MORE);
    free(b);
    resp_parser_free(&p);
}
END_TEST

/* resp_parser_free releases everything and leaves a parser ready for reuse; init is idempotent. */
START_TEST(test_init_free_reuse)
{
    struct resp_limits lim = { .max_bulk_len = MAX_BULK_DEFAULT };
    struct resp_parser p;
    resp_parser_init(&p);
    ck_assert_uint_eq(p.pos, 0);
    ck_assert_int_eq(p.multibulk, 0);
    ck_assert_int_eq(p.bulklen, -1);
    ck_assert_uint_eq(p.argc, 0);
    ck_assert_int_eq(resp_parse(&p, "", 0, &lim), RESP_NEED_MORE);
    char *b = slice_copy("SET a b\r\n*1\r\n$1\r\nx", 0, 18);
    ck_assert_int_eq(resp_parse(&p, b, 18, &lim), RESP_REQUEST);
    resp_parser_next(&p);
    ck_assert_int_eq(resp_parse(&p, b, 18, &lim), RESP_NEED_MORE);
    free(b);
    resp_parser_free(&p);
    ck_assert_ptr_null(p.args);
    ck_assert_uint_eq(p.pos, 0);
    ck_assert_int_eq(p.multibulk, 0);
    ck_assert_int_eq(p.bulklen, -1);
    ck_assert_uint_eq(p.argcap, 0);
    b = slice_copy("*1\r\n$1\r\ny\r\n", 0, 11);
    ck_assert_int_eq(resp_parse(&p, b, 11, &lim), RESP_REQUEST);
    ck_assert_uint_eq(p.argc, 1);
    free(b);
    resp_parser_free(&p);
    resp_parser_free(&p);
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * resp_split_inline: sdssplitargs */

struct split_case {
    const char *in;
    size_t len;
    bool ok;
    size_t argc;
    struct exp_arg argv[MAX_ARGS];
};

static const struct split_case split_cases[] = {
    { IN(""), true, 0, { { NULL, 0 } } },
    { IN("   \t\r\n\v\f "), true, 0, { { NULL, 0 } } },
    { IN("a"), true, 1, { A("a") } },
    { IN("  a  "), true, 1, { A("a") } },
    { IN("a b\tc\nd\re"), true, 5, { A("a"), A("b"), A("c"), A("d"), A("e") } },
    { IN("a\vb"), true, 1, { A("a\vb") } },
    { IN("\"\""), true, 1, { A("") } },
    { IN("''"), true, 1, { A("") } },
    { IN("\"\" ''"), true, 2, { A(""), A("") } },
    { IN("\"a b\""), true, 1, { A("a b") } },
    { IN("\"\\x41\\x4a\\x4A\\x00z\""), true, 1, { A("AJJ\0z") } },
    { IN("\"\\xff\\x80\""), true, 1, { A("\xff\x80") } },
    { IN("\"\\x4\""), true, 1, { A("x4") } },
    { IN("\"\\x4g\""), true, 1, { A("x4g") } },
    { IN("\"\\x\""), true, 1, { A("x") } },
    { IN("\"\\n\\r\\t\\b\\a\\\"\\\\\\z\\'\""), true, 1, { A("\n\r\t\b\a\"\\z'") } },
    { IN("'\\''"), true, 1, { A("'") } },
    { IN("'a\\'b\\\\c\\n\"'"), true, 1, { A("a'b\\\\c\\n\"") } },
    { IN("a\"b c\"d"), false, 0, { { NULL, 0 } } },
    { IN("a\"b c\" d"), true, 2, { A("ab c"), A("d") } },
    { IN("a'b c' d"), true, 2, { A("ab c"), A("d") } },
    { IN("\"a\"\v'b'\f\"c\""), true, 3, { A("a"), A("b"), A("c") } },
    { IN("\"a\"b"), false, 0, { { NULL, 0 } } },
    { IN("'a'b"), false, 0, { { NULL, 0 } } },
    { IN("\"a"), false, 0, { { NULL, 0 } } },
    { IN("'a"), false, 0, { { NULL, 0 } } },
    { IN("\""), false, 0, { { NULL, 0 } } },
    { IN("'"), false, 0, { { NULL, 0 } } },
    { IN("\"a\\"), false, 0, { { NULL, 0 } } },
    { IN("\"a\\\""), false, 0, { { NULL, 0 } } },
    { IN("'a\\'"), false, 0, { { NULL, 0 } } },
    { IN("'a\\"), false, 0, { { NULL, 0 } } },
    { IN("\"\\x4"), false, 0, { { NULL, 0 } } },
    { IN("\"\\x41"), false, 0, { { NULL, 0 } } },
    { IN("\"\\x"), false, 0, { { NULL, 0 } } },
    { IN("ok \"bad"), false, 0, { { NULL, 0 } } },
    { IN("set k \"v\\x20w\" 'x y'"), true, 4, { A("set"), A("k"), A("v w"), A("x y") } },
};
#define NSPLIT (sizeof(split_cases) / sizeof(split_cases[0]))

START_TEST(test_split_inline)
{
    struct resp_parser p;
    resp_parser_init(&p);
    for (size_t i = 0; i < NSPLIT; i++) {
        const struct split_case *c = &split_cases[i];
        char *line = slice_copy(c->in, 0, c->len); /* no NUL after it */
        bool ok = resp_split_inline(&p, line, c->len);
        ck_assert_msg(ok == c->ok, "case %zu '%.*s': returned %d", i, (int)c->len, c->in, ok);
        ck_assert_msg(p.argc == c->argc, "case %zu '%.*s': argc %zu, expected %zu", i,
                      (int)c->len, c->in, p.argc, c->argc);
        for (size_t j = 0; j < c->argc; j++) {
            const struct resp_slice *s = &p.args[j];
            ck_assert_msg(s->len == c->argv[j].n &&
                              (s->len == 0 || memcmp(p.inline_buf.data + s->off, c->argv[j].p, s->len) == 0),
                          "case %zu '%.*s': arg %zu is '%.*s'", i, (int)c->len, c->in, j,
                          (int)s->len, s->len ? p.inline_buf.data + s->off : "");
        }
        free(line);
    }
    resp_parser_free(&p);
}
END_TEST

/* A second split forgets the first (argc and the inline buffer restart). */
START_TEST(test_split_inline_reuse)
{
    struct resp_parser p;
    resp_parser_init(&p);
    ck_assert(resp_split_inline(&p, "a b c d e f g h i j", 19));
    ck_assert_uint_eq(p.argc, 10);
    ck_assert(resp_split_inline(&p, "xy", 2));
    ck_assert_uint_eq(p.argc, 1);
    ck_assert_uint_eq(p.args[0].off, 0);
    ck_assert_uint_eq(p.args[0].len, 2);
    ck_assert_uint_eq(p.inline_buf.len, 2);
    ck_assert(!resp_split_inline(&p, "ok 'no", 6));
    ck_assert_uint_eq(p.argc, 0);
    /* Many arguments: 20000 one-letter args. */
    size_t n = 20000;
    char *line = malloc(2 * n);
    for (size_t i = 0; i < n; i++) {
        line[2 * i] = (char)('a' + i % 26);
        line[2 * i + 1] = ' ';
    }
    ck_assert(resp_split_inline(&p, line, 2 * n));
    ck_assert_uint_eq(p.argc, n);
    for (size_t i = 0; i < n; i++)
        ck_assert(p.args[i].len == 1 && p.inline_buf.data[p.args[i].off] == (char)('a' + i % 26));
    free(line);
    resp_parser_free(&p);
}
END_TEST

static Suite *resp_parser_suite(void)
{
    Suite *s = suite_create("resp_parser");
    TCase *tc = tcase_create("resp_parser");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_vectors_whole);
    tcase_add_loop_test(tc, test_vectors_every_split, 0, (int)NVEC);
    tcase_add_test(tc, test_inline_limit);
    tcase_add_test(tc, test_count_string_limits);
    tcase_add_test(tc, test_inline_max_override);
    tcase_add_test(tc, test_limits_before_allocation);
    tcase_add_test(tc, test_external_bulk);
    tcase_add_test(tc, test_one_megabyte_bulk);
    tcase_add_test(tc, test_rebase_half_parsed);
    tcase_add_test(tc, test_rebase_between_requests);
    tcase_add_test(tc, test_init_free_reuse);
    tcase_add_test(tc, test_split_inline);
    tcase_add_test(tc, test_split_inline_reuse);
    suite_add_tcase(s, tc);

    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(resp_parser_suite());
    srunner_run_all(sr, CK_ENV);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
