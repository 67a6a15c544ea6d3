/* libFuzzer target: the RESP request parser (proxy/resp_parser.h), multibulk and inline, driven
 * the way proxy/client.c drives it.
 *
 * Input: byte 0 chooses the limits and the feeding (see the FLAG_ and CHUNK_ masks), byte 1 seeds
 * the chunk sizes (and, with FLAG_SMALL_INLINE, sets a small inline limit), the rest is the
 * client's byte stream. The stream is parsed twice:
 *   - whole: every byte in one buffer, requests taken until NEED_MORE or a protocol error;
 *   - in chunks: appended to a query buffer that is reallocated on every append (so a pointer
 *     kept across calls would be a use-after-free), consumed requests dropped and the parser
 *     rebased as the client does.
 * Both must give the same requests (argument bytes, inline or not) and the same final status and
 * error text; only when the stream is longer than the inline limit may the chunked run stop
 * earlier, and then only on a "too big" error. Every request is checked on its own too:
 * argument slices inside the buffer (multibulk) or the inline buffer, the count announced by
 * "*N", the limits (unauthenticated 10 arguments / 16384 bytes, max_bulk_len), and agreement
 * with upstream_command_argc() on the request's own bytes (the bytes forwarded verbatim).
 * The other way round too: a stream upstream_command_argc() accepts as one command (what the
 * upstream link sends as it is) must be one request of that many arguments for the parser (and
 * so for Redis, whose reading the parser mirrors), or a Redis upstream would refuse it with a
 * protocol error and close a connection that other clients share. */
#include "tests/fuzz/fuzz_common.h"

#include "proxy/resp_parser.h"
#include "upstream/resp.h"

#include <limits.h>
#include <stdbool.h>
#include <string.h>
#include <strings.h>

#define FLAG_BULK_MASK 0x07   /* index into bulk_limits */
#define FLAG_UNAUTH 0x08      /* Redis's tighter limits before AUTH */
#define CHUNK_SHIFT 4
#define CHUNK_MASK 0x03       /* 0 whole, 1 one byte at a time, 2 1..16 bytes, 3 1..512 bytes */
#define FLAG_COMPACT 0x40     /* drop consumed bytes after every read (else at random) */
#define FLAG_SMALL_INLINE 0x80 /* inline limit 8 * (1 + byte1 % 64) instead of RESP_INLINE_MAX */
#define UNAUTH_ARGS_MAX 10
#define UNAUTH_BULK_MAX 16384

static const long long bulk_limits[8] = { 0, 1, 3, 16, 512, 1 << 20, 512LL << 20, LLONG_MAX };

/* What a run saw: the requests as records (argc, then each length and its bytes, then the inline
 * flag), self-delimiting so that one run's records being a prefix of the other's is a byte
 * prefix; then the final status. */
struct run {
    struct strbuf log;
    size_t requests;
    enum resp_status end;
    char error[RESP_ERR_MAX];
};

static void log_request(struct run *r, const struct resp_parser *p, const struct resp_arg *argv)
{
    strbuf_append(&r->log, &p->argc, sizeof(p->argc));
    for (size_t i = 0; i < p->argc; i++) {
        strbuf_append(&r->log, &argv[i].len, sizeof(argv[i].len));
        strbuf_append(&r->log, argv[i].ptr, argv[i].len);
    }
    strbuf_putc(&r->log, p->is_inline ? 'i' : 'm');
    r->requests++;
}

/* "*N\r" at buf[start]: N, as the parser must have read it (it accepted the number, so N fits a
 * long long; the digits are summed unsigned so LLONG_MIN's magnitude does not overflow). */
static long long header_count(const char *buf, size_t start, size_t end)
{
    unsigned long long n = 0;
    bool neg = false;
    size_t i = start + 1;
    if (i < end && buf[i] == '-') {
        neg = true;
        i++;
    }
    for (; i < end && buf[i] >= '0' && buf[i] <= '9'; i++)
        n = n * 10 + (unsigned)(buf[i] - '0');
    if (neg)
        return n > (unsigned long long)LLONG_MAX ? LLONG_MIN : -(long long)n;
    return n > (unsigned long long)LLONG_MAX ? LLONG_MAX : (long long)n;
}

/* hiredis 0.14's commands with other than one reply per request (see upstream/resp.c). */
static bool hiredis_special(const char *s, size_t n)
{
    if (n > 0 && (s[0] == 'p' || s[0] == 'P')) {
        s++;
        n--;
    }
    return (n == 9 && !strncasecmp(s, "subscribe", 9)) ||
           (n == 11 && !strncasecmp(s, "unsubscribe", 11)) ||
           (n == 7 && !strncasecmp(s, "monitor", 7));
}

/* The invariants of one RESP_REQUEST: the request occupies buf[start..p->pos). */
static void check_request(const struct resp_parser *p, const char *buf, size_t len, size_t start,
                          const struct resp_limits *lim, struct resp_arg *argv)
{
    FUZZ_CHECK(p->pos > start && p->pos <= len);
    FUZZ_CHECK(p->argc <= p->argcap);
    FUZZ_CHECK(p->multibulk == 0 && p->bulklen == -1);
    FUZZ_CHECK(p->is_inline == (buf[start] != '*'));
    resp_parser_args(p, buf, argv);
    size_t prev_end = start;
    bool trailers_ok = true;
    for (size_t i = 0; i < p->argc; i++) {
        if (p->is_inline) {
            FUZZ_CHECK(p->args[i].off <= p->inline_buf.len &&
                       p->args[i].len <= p->inline_buf.len - p->args[i].off);
            continue;
        }
        /* "$L\r\n" precedes every bulk: at least 4 bytes after the previous one. */
        FUZZ_CHECK(p->args[i].off >= prev_end + 4);
        FUZZ_CHECK(p->args[i].len <= p->pos - p->args[i].off);
        FUZZ_CHECK(argv[i].ptr == buf + p->args[i].off);
        FUZZ_CHECK((long long)argv[i].len <= lim->max_bulk_len);
        FUZZ_CHECK(!lim->unauthenticated || argv[i].len <= UNAUTH_BULK_MAX);
        size_t end = p->args[i].off + p->args[i].len;
        FUZZ_CHECK(p->pos - end >= 2); /* the two bytes after a bulk are consumed */
        /* Redis (and the parser) skip the two bytes after a "$L\r" line and after a bulk
         * without looking at them; the verbatim bytes are canonical only if they are "\r\n". */
        if (buf[end] != '\r' || buf[end + 1] != '\n' || buf[p->args[i].off - 1] != '\n')
            trailers_ok = false;
        prev_end = end + 2;
    }
    if (p->is_inline)
        return;
    FUZZ_CHECK(p->argc == 0 || prev_end == p->pos);
    const char *cr = memchr(buf + start, '\r', p->pos - start);
    FUZZ_CHECK(cr != NULL);
    long long announced = header_count(buf, start, (size_t)(cr - buf));
    if (cr[1] != '\n')
        trailers_ok = false;
    FUZZ_CHECK(announced <= 0 ? p->argc == 0 : (size_t)announced == p->argc);
    FUZZ_CHECK(!lim->unauthenticated || announced <= UNAUTH_ARGS_MAX);
    if (p->argc == 0)
        return;
    /* The request's own bytes, as forwarded verbatim: the upstream layer's validator must count
     * the same arguments whenever it accepts them, and accept them when they are canonical. */
    size_t n = upstream_command_argc(buf + start, p->pos - start);
    FUZZ_CHECK(n == 0 || n == p->argc);
    if (trailers_ok && p->argc <= (p->pos - start) / 6 && !hiredis_special(argv[0].ptr, argv[0].len))
        FUZZ_CHECK(n == p->argc);
}

static void check_error(const struct resp_parser *p)
{
    FUZZ_CHECK(memchr(p->error, '\0', sizeof(p->error)) != NULL);
    FUZZ_CHECK(strncmp(p->error, "Protocol error: ", 16) == 0);
}

/* Takes every request buf[0..len) holds now; returns false once a protocol error ended the
 * stream. *done is advanced past each request, as client_process_input does. */
static bool take_requests(struct resp_parser *p, const char *buf, size_t len,
                          const struct resp_limits *lim, struct run *r, size_t *done,
                          struct resp_arg **argv, size_t *argv_cap)
{
    for (;;) {
        size_t start = *done; /* a request may have begun in an earlier call */
        enum resp_status st = resp_parse(p, buf, len, lim);
        r->end = st;
        if (st == RESP_NEED_MORE) {
            FUZZ_CHECK(p->pos <= len);
            return true;
        }
        if (st == RESP_PROTO_ERROR) {
            check_error(p);
            memcpy(r->error, p->error, sizeof(r->error));
            return false;
        }
        if (p->argc > *argv_cap) {
            *argv = realloc(*argv, p->argc * sizeof(**argv));
            FUZZ_CHECK(*argv != NULL);
            *argv_cap = p->argc;
        }
        check_request(p, buf, len, start, lim, *argv);
        log_request(r, p, *argv);
        *done = p->pos;
        resp_parser_next(p);
    }
}

static void run_whole(const char *data, size_t n, const struct resp_limits *lim, struct run *r)
{
    struct resp_parser p;
    struct resp_arg *argv = NULL;
    size_t argv_cap = 0, done = 0;
    resp_parser_init(&p);
    take_requests(&p, data, n, lim, r, &done, &argv, &argv_cap);
    resp_parser_free(&p);
    free(argv);
}

static void run_chunked(const char *data, size_t n, const struct resp_limits *lim, int mode,
                        bool compact_always, uint64_t seed, struct run *r)
{
    struct resp_parser p;
    struct resp_arg *argv = NULL;
    size_t argv_cap = 0;
    char *qbuf = NULL;
    size_t qlen = 0, fed = 0, kept = 0; /* kept: consumed bytes still at the front of qbuf */
    resp_parser_init(&p);
    while (fed < n) {
        size_t chunk;
        switch (mode) {
        case 0: chunk = n; break;
        case 1: chunk = 1; break;
        case 2: chunk = 1 + fuzz_rand(&seed) % 16; break;
        default: chunk = 1 + fuzz_rand(&seed) % 512; break;
        }
        if (chunk > n - fed)
            chunk = n - fed;
        /* A fresh allocation of exactly the bytes held: stale pointers and over-reads show. */
        char *nb = malloc(qlen + chunk);
        FUZZ_CHECK(nb != NULL);
        if (qlen)
            memcpy(nb, qbuf, qlen);
        free(qbuf);
        qbuf = nb;
        memcpy(qbuf + qlen, data + fed, chunk);
        qlen += chunk;
        fed += chunk;
        size_t done = kept;
        bool more = take_requests(&p, qbuf, qlen, lim, r, &done, &argv, &argv_cap);
        if (!more)
            break;
        if (done && (compact_always || (fuzz_rand(&seed) & 1))) {
            FUZZ_CHECK(done <= p.pos);
            memmove(qbuf, qbuf + done, qlen - done);
            qlen -= done;
            resp_parser_rebase(&p, done);
            kept = 0;
        } else {
            kept = done; /* consumed bytes stay this time; the offsets stay as they are */
        }
    }
    resp_parser_free(&p);
    free(argv);
    free(qbuf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    uint8_t flags = data[0];
    struct resp_limits lim = {
        .max_bulk_len = bulk_limits[flags & FLAG_BULK_MASK],
        .unauthenticated = (flags & FLAG_UNAUTH) != 0,
    };
    int mode = (flags >> CHUNK_SHIFT) & CHUNK_MASK;
    uint64_t seed = fuzz_hash(data, size) ^ data[1];
    const uint8_t *body = data + 2;
    size_t n = size - 2;

    if (flags & FLAG_SMALL_INLINE)
        lim.inline_max = 8 * (1 + (size_t)data[1] % 64);
    size_t inline_limit = lim.inline_max ? lim.inline_max : RESP_INLINE_MAX;

    /* The stream in a buffer of its own exact size (ASan sees any read past it). */
    size_t total = n;
    char *stream = malloc(total ? total : 1);
    FUZZ_CHECK(stream != NULL);
    memcpy(stream, body, n);

    /* Bytes the upstream link would send verbatim: one request for the parser, same count. */
    size_t up_argc = upstream_command_argc(stream, total);
    if (up_argc > 0) {
        struct resp_limits open_lim = { .max_bulk_len = LLONG_MAX };
        struct resp_parser p;
        resp_parser_init(&p);
        FUZZ_CHECK(resp_parse(&p, stream, total, &open_lim) == RESP_REQUEST);
        FUZZ_CHECK(!p.is_inline && p.argc == up_argc && p.pos == total);
        resp_parser_free(&p);
    }

    struct run whole = { .end = RESP_NEED_MORE }, chunked = { .end = RESP_NEED_MORE };
    run_whole(stream, total, &lim, &whole);
    run_chunked(stream, total, &lim, mode, (flags & FLAG_COMPACT) != 0, seed, &chunked);

    if (total <= inline_limit) {
        FUZZ_CHECK(chunked.requests == whole.requests);
        FUZZ_CHECK(chunked.log.len == whole.log.len);
        FUZZ_CHECK(whole.log.len == 0 || memcmp(chunked.log.data, whole.log.data, whole.log.len) == 0);
        FUZZ_CHECK(chunked.end == whole.end);
        if (whole.end == RESP_PROTO_ERROR)
            FUZZ_CHECK(strcmp(chunked.error, whole.error) == 0);
    } else {
        /* Past the inline limit, a request whose end had not arrived yet may be refused as too
         * big by the chunked run, which the whole run saw complete: the chunked requests are a
         * prefix, and any difference ends on such an error. */
        FUZZ_CHECK(chunked.requests <= whole.requests && chunked.log.len <= whole.log.len);
        FUZZ_CHECK(chunked.log.len == 0 ||
                   memcmp(chunked.log.data, whole.log.data, chunked.log.len) == 0);
        bool same = chunked.requests == whole.requests && chunked.end == whole.end &&
                    (whole.end != RESP_PROTO_ERROR || strcmp(chunked.error, whole.error) == 0);
        if (!same) {
            FUZZ_CHECK(chunked.end == RESP_PROTO_ERROR);
            FUZZ_CHECK(strstr(chunked.error, "too big") != NULL);
        }
    }
    strbuf_free(&whole.log);
    strbuf_free(&chunked.log);
    free(stream);
    return 0;
}
