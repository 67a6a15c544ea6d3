/* Incremental RESP request parser; see resp_parser.h. Mirrors Redis 7's processMultibulkBuffer
 * and processInlineBuffer, including their error texts and their leniencies (the two bytes after
 * a bulk are skipped, not checked; *0 and *-1 are ignored). */
#include "proxy/resp_parser.h"

#include "conf/xmalloc.h"
#include "proxy/numbers.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ARGS_INITIAL_MAX 1024
#define UNAUTH_MULTIBULK_MAX 10
#define UNAUTH_BULK_MAX 16384

void resp_parser_init(struct resp_parser *p)
{
    memset(p, 0, sizeof(*p));
    p->bulklen = -1;
}

void resp_parser_free(struct resp_parser *p)
{
    free(p->args);
    strbuf_free(&p->inline_buf);
    resp_parser_init(p);
}

/* The offset of an argument held outside the buffer (resp_parser_bulk_external). */
#define ARG_EXTERNAL ((size_t)-1)

static enum resp_status fail(struct resp_parser *p, const char *msg)
{
    snprintf(p->error, sizeof(p->error), "%s", msg);
    return RESP_PROTO_ERROR;
}

static void args_push(struct resp_parser *p, size_t off, size_t len, size_t expected_more)
{
    if (p->argc == p->argcap) {
        /* Double, but never beyond what the multibulk header still announces (expected_more
         * is 0 for inline arguments and the last bulk, where doubling is the bound). */
        size_t cap = p->argcap ? p->argcap * 2 : 8;
        if (expected_more && cap > p->argc + 1 + expected_more)
            cap = p->argc + 1 + expected_more;
        p->args = xrealloc(p->args, cap * sizeof(*p->args));
        p->argcap = cap;
    }
    p->args[p->argc].off = off;
    p->args[p->argc].len = len;
    p->argc++;
}

static int hex_digit(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = tolower(c);
    return (c >= 'a' && c <= 'f') ? c - 'a' + 10 : -1;
}

/* One argument starting at line[*i]: appends its bytes to the inline buffer. */
static bool split_one(struct resp_parser *p, const char *line, size_t len, size_t *i)
{
    struct strbuf *b = &p->inline_buf;
    size_t start = b->len, k = *i;
    bool inq = false, insq = false;
    for (;;) {
        if (inq) {
            if (k >= len)
                return false;
            if (line[k] == '\\' && k + 3 < len + 0 && line[k + 1] == 'x' &&
                hex_digit((unsigned char)line[k + 2]) >= 0 && hex_digit((unsigned char)line[k + 3]) >= 0) {
                strbuf_putc(b, (char)(hex_digit((unsigned char)line[k + 2]) * 16 +
                                      hex_digit((unsigned char)line[k + 3])));
                k += 3;
            } else if (line[k] == '\\' && k + 1 < len) {
                char c = line[++k];
                switch (c) {
                case 'n': c = '\n'; break;
                case 'r': c = '\r'; break;
                case 't': c = '\t'; break;
                case 'b': c = '\b'; break;
                case 'a': c = '\a'; break;
                default: break;
                }
                strbuf_putc(b, c);
            } else if (line[k] == '"') {
                /* The closing quote must be followed by a space or the end. */
                if (k + 1 < len && !isspace((unsigned char)line[k + 1]))
                    return false;
                k++;
                break;
            } else {
                strbuf_putc(b, line[k]);
            }
        } else if (insq) {
            if (k >= len)
                return false;
            if (line[k] == '\\' && k + 1 < len && line[k + 1] == '\'') {
                k++;
                strbuf_putc(b, '\'');
            } else if (line[k] == '\'') {
                if (k + 1 < len && !isspace((unsigned char)line[k + 1]))
                    return false;
                k++;
                break;
            } else {
                strbuf_putc(b, line[k]);
            }
        } else {
            if (k >= len)
                break;
            char c = line[k];
            if (c == ' ' || c == '\n' || c == '\r' || c == '\t' || c == '\0')
                break;
            if (c == '"')
                inq = true;
            else if (c == '\'')
                insq = true;
            else
                strbuf_putc(b, c);
        }
        k++;
    }
    *i = k;
    args_push(p, start, b->len - start, 0);
    return true;
}

bool resp_split_inline(struct resp_parser *p, const char *line, size_t len)
{
    len = strnlen(line, len); /* sdssplitargs reads a C string: a NUL ends the line */
    p->inline_buf.len = 0;
    p->argc = 0;
    size_t i = 0;
    for (;;) {
        while (i < len && isspace((unsigned char)line[i]))
            i++;
        if (i >= len)
            return true;
        if (!split_one(p, line, len, &i)) {
            p->argc = 0;
            return false;
        }
    }
}

static size_t inline_max(const struct resp_limits *lim)
{
    return lim->inline_max ? lim->inline_max : RESP_INLINE_MAX;
}

static enum resp_status parse_inline(struct resp_parser *p, const char *buf, size_t len,
                                     size_t max)
{
    const char *start = buf + p->pos;
    const char *nl = memchr(start, '\n', len - p->pos);
    if (!nl) {
        if (len - p->pos > max)
            return fail(p, "Protocol error: too big inline request");
        return RESP_NEED_MORE;
    }
    size_t linelen = (size_t)(nl - start);
    size_t skip = linelen + 1;
    if (linelen > 0 && start[linelen - 1] == '\r')
        linelen--;
    if (!resp_split_inline(p, start, linelen))
        return fail(p, "Protocol error: unbalanced quotes in request");
    p->pos += skip;
    p->is_inline = true;
    return RESP_REQUEST;
}

/* Finds the "\r\n" ending a header line that starts at buf[from]. Returns the offset of '\r',
 * or -1 when the line is not complete yet (or -2 when it is longer than the inline limit). */
static long long header_end(const char *buf, size_t len, size_t from, size_t max)
{
    const char *cr = memchr(buf + from, '\r', len - from);
    if (!cr)
        return len - from > max ? -2 : -1;
    size_t off = (size_t)(cr - buf);
    if (off + 1 >= len)
        return -1; /* the '\n' has not arrived */
    return (long long)off;
}

/* The common header line: a plain number ([1-9][0-9]* of at most 18 digits, or "0") followed by
 * '\r' and one more byte, read in one pass: no memchr, and no overflow check per digit (18
 * digits cannot overflow). Why: the three headers of a GET cost ~200 instructions through
 * header_end + num_parse_ll. Returns the offset of '\r' with *out set, or -1 (and *out = -1)
 * for anything else; the general path then decides (incomplete, sign, leading zero, error),
 * so both paths accept and refuse exactly the same lines. */
static inline long long header_small_number(const char *buf, size_t len, size_t from,
                                            long long *out)
{
    *out = -1;
    if (from + 1 >= len) /* a digit and the byte after the line's '\r' at least */
        return -1;
    unsigned d = (unsigned)(unsigned char)buf[from] - '0';
    if (d == 0) {
        if (buf[from + 1] != '\r' || from + 2 >= len)
            return -1;
        *out = 0;
        return (long long)from + 1;
    }
    if (d > 9)
        return -1;
    unsigned long long v = d;
    size_t last = from + 18;  /* the '\r' after 18 digits, at the latest */
    if (last > len - 2)
        last = len - 2;       /* a '\r' at i counts once buf[i + 1] (the '\n') has arrived */
    for (size_t i = from + 1; i <= last; i++) {
        unsigned char ch = (unsigned char)buf[i];
        if (ch == '\r') {
            *out = (long long)v;
            return (long long)i;
        }
        d = (unsigned)ch - '0';
        if (d > 9)
            return -1;
        v = v * 10 + d;
    }
    return -1;
}

static enum resp_status parse_multibulk(struct resp_parser *p, const char *buf, size_t len,
                                        const struct resp_limits *lim)
{
    if (p->multibulk == 0) {
        long long ll;
        long long end = header_small_number(buf, len, p->pos + 1, &ll);
        if (end < 0) { /* the general path: incomplete, too long, or not a plain number */
            end = header_end(buf, len, p->pos, inline_max(lim));
            if (end == -2)
                return fail(p, "Protocol error: too big mbulk count string");
            if (end < 0)
                return RESP_NEED_MORE;
            if (!num_parse_ll(buf + p->pos + 1, (size_t)end - p->pos - 1, &ll))
                return fail(p, "Protocol error: invalid multibulk length");
        }
        if (ll > RESP_MULTIBULK_MAX)
            return fail(p, "Protocol error: invalid multibulk length");
        if (ll > UNAUTH_MULTIBULK_MAX && lim->unauthenticated)
            return fail(p, "Protocol error: unauthenticated multibulk length");
        p->pos = (size_t)end + 2;
        if (ll <= 0) {
            p->argc = 0;
            p->is_inline = false;
            return RESP_REQUEST;
        }
        p->multibulk = ll;
        p->argc = 0;
        p->is_inline = false;
    }
    while (p->multibulk) {
        if (p->bulklen == -1) {
            long long ll;
            long long end = header_small_number(buf, len, p->pos + 1, &ll);
            if (end < 0) { /* the general path, as for the count above */
                end = header_end(buf, len, p->pos, inline_max(lim));
                if (end == -2)
                    return fail(p, "Protocol error: too big bulk count string");
                if (end < 0)
                    return RESP_NEED_MORE;
            }
            if (buf[p->pos] != '$') {
                snprintf(p->error, sizeof(p->error), "Protocol error: expected '$', got '%c'",
                         buf[p->pos]);
                return RESP_PROTO_ERROR;
            }
            bool ok = true;
            if (ll == -1) /* not taken by the fast path (which never yields -1) */
                ok = num_parse_ll(buf + p->pos + 1, (size_t)end - p->pos - 1, &ll);
            if (!ok || ll < 0 || ll > lim->max_bulk_len)
                return fail(p, "Protocol error: invalid bulk length");
            if (ll > UNAUTH_BULK_MAX && lim->unauthenticated)
                return fail(p, "Protocol error: unauthenticated bulk length");
            p->pos = (size_t)end + 2;
            p->bulklen = ll;
        }
        if (len - p->pos < (size_t)p->bulklen + 2)
            return RESP_NEED_MORE;
        args_push(p, p->pos, (size_t)p->bulklen, (size_t)p->multibulk - 1);
        p->pos += (size_t)p->bulklen + 2;
        p->bulklen = -1;
        p->multibulk--;
    }
    return RESP_REQUEST;
}

enum resp_status resp_parse(struct resp_parser *p, const char *buf, size_t len,
                            const struct resp_limits *lim)
{
    if (p->complete) { /* its last argument came from outside the buffer */
        p->complete = false;
        return RESP_REQUEST;
    }
    if (p->pos >= len)
        return RESP_NEED_MORE;
    if (p->multibulk > 0 || buf[p->pos] == '*')
        return parse_multibulk(p, buf, len, lim);
    return parse_inline(p, buf, len, inline_max(lim));
}

void resp_parser_args(const struct resp_parser *p, const char *buf, struct resp_arg *argv)
{
    const char *base = p->is_inline ? p->inline_buf.data : buf;
    if (!base)
        base = ""; /* only empty arguments so far: still a valid pointer */
    for (size_t i = 0; i < p->argc; i++) {
        argv[i].ptr = p->args[i].off == ARG_EXTERNAL ? p->external : base + p->args[i].off;
        argv[i].len = p->args[i].len;
    }
}

void resp_parser_bulk_external(struct resp_parser *p, const char *ext)
{
    args_push(p, ARG_EXTERNAL, (size_t)p->bulklen, (size_t)p->multibulk - 1);
    p->external = ext;
    p->bulklen = -1;
    if (--p->multibulk == 0)
        p->complete = true;
}

void resp_parser_next(struct resp_parser *p)
{
    p->argc = 0;
    p->external = NULL;
    p->complete = false;
    p->is_inline = false;
    /* A huge request leaves nothing behind for the rest of the connection: at most
     * ARGS_INITIAL_MAX argument slots (16 KB) and a small inline buffer are kept. */
    if (p->argcap > ARGS_INITIAL_MAX) {
        free(p->args);
        p->args = NULL;
        p->argcap = 0;
    }
    p->inline_buf.len = 0;
    strbuf_shrink_idle(&p->inline_buf);
}

void resp_parser_rebase(struct resp_parser *p, size_t n)
{
    p->pos -= n;
    if (!p->is_inline)
        for (size_t i = 0; i < p->argc; i++)
            if (p->args[i].off != ARG_EXTERNAL)
                p->args[i].off -= n;
}
