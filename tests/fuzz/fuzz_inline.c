/* libFuzzer target: the inline command parser (resp_split_inline and the inline path of
 * resp_parse), checked against a reference: Redis 7's sdssplitargs, transcribed below as it
 * reads a C string (quotes, single quotes, \xHH and \n \r \t \b \a escapes, a closing quote that
 * must be followed by a space or the end, unbalanced quotes refused).
 *
 * Input: the bytes of one line for resp_split_inline, then the same bytes as a client stream
 * (with "\r\n" added when no '\n' is in it): every inline request resp_parse returns must split
 * as the reference splits that line (up to its '\n', without the '\r' before it), and a line the
 * reference refuses must end the stream with "Protocol error: unbalanced quotes in request". */
#include "tests/fuzz/fuzz_common.h"

#include "proxy/resp_parser.h"

#include <ctype.h>
#include <stdbool.h>
#include <string.h>

/* The reference's result: arguments as (offset, length) into one byte buffer. */
struct ref_split {
    struct strbuf bytes;
    size_t argc, cap;
    size_t *off, *len;
};

static void ref_push(struct ref_split *r, size_t off, size_t len)
{
    if (r->argc == r->cap) {
        r->cap = r->cap ? r->cap * 2 : 8;
        r->off = realloc(r->off, r->cap * sizeof(*r->off));
        r->len = realloc(r->len, r->cap * sizeof(*r->len));
        FUZZ_CHECK(r->off && r->len);
    }
    r->off[r->argc] = off;
    r->len[r->argc] = len;
    r->argc++;
}

static void ref_free(struct ref_split *r)
{
    strbuf_free(&r->bytes);
    free(r->off);
    free(r->len);
}

static bool is_hex(int c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static int hex_val(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return c - 'A' + 10;
}

/* sdssplitargs (Redis 7 src/sds.c) over the NUL-terminated line: false on unbalanced quotes. */
static bool ref_splitargs(const char *line, struct ref_split *r)
{
    const char *p = line;
    r->bytes.len = 0;
    r->argc = 0;
    for (;;) {
        while (*p && isspace((unsigned char)*p))
            p++;
        if (!*p)
            return true;
        bool inq = false, insq = false, done = false;
        size_t start = r->bytes.len;
        while (!done) {
            if (inq) {
                if (*p == '\\' && *(p + 1) == 'x' && is_hex((unsigned char)*(p + 2)) &&
                    is_hex((unsigned char)*(p + 3))) {
                    strbuf_putc(&r->bytes, (char)(hex_val((unsigned char)*(p + 2)) * 16 +
                                                  hex_val((unsigned char)*(p + 3))));
                    p += 3;
                } else if (*p == '\\' && *(p + 1)) {
                    char c;
                    p++;
                    switch (*p) {
                    case 'n': c = '\n'; break;
                    case 'r': c = '\r'; break;
                    case 't': c = '\t'; break;
                    case 'b': c = '\b'; break;
                    case 'a': c = '\a'; break;
                    default: c = *p; break;
                    }
                    strbuf_putc(&r->bytes, c);
                } else if (*p == '"') {
                    if (*(p + 1) && !isspace((unsigned char)*(p + 1)))
                        return false;
                    done = true;
                } else if (!*p) {
                    return false;
                } else {
                    strbuf_putc(&r->bytes, *p);
                }
            } else if (insq) {
                if (*p == '\\' && *(p + 1) == '\'') {
                    p++;
                    strbuf_putc(&r->bytes, '\'');
                } else if (*p == '\'') {
                    if (*(p + 1) && !isspace((unsigned char)*(p + 1)))
                        return false;
                    done = true;
                } else if (!*p) {
                    return false;
                } else {
                    strbuf_putc(&r->bytes, *p);
                }
            } else {
                switch (*p) {
                case ' ': case '\n': case '\r': case '\t': case '\0':
                    done = true;
                    break;
                case '"':
                    inq = true;
                    break;
                case '\'':
                    insq = true;
                    break;
                default:
                    strbuf_putc(&r->bytes, *p);
                    break;
                }
            }
            if (*p)
                p++;
        }
        ref_push(r, start, r->bytes.len - start);
    }
}

/* The parser's current arguments (slices of its inline buffer) equal the reference's; after
 * resp_parse (via_args), resp_parser_args must point at those same bytes. */
static void check_same(const struct resp_parser *p, const struct ref_split *r, bool via_args)
{
    FUZZ_CHECK(p->argc == r->argc);
    FUZZ_CHECK(p->argc <= p->argcap);
    struct resp_arg *argv = malloc((p->argc ? p->argc : 1) * sizeof(*argv));
    FUZZ_CHECK(argv != NULL);
    if (via_args)
        resp_parser_args(p, NULL, argv);
    for (size_t i = 0; i < p->argc; i++) {
        FUZZ_CHECK(p->args[i].off <= p->inline_buf.len &&
                   p->args[i].len <= p->inline_buf.len - p->args[i].off);
        const char *bytes = p->inline_buf.data ? p->inline_buf.data + p->args[i].off : "";
        FUZZ_CHECK(p->args[i].len == r->len[i]);
        FUZZ_CHECK(r->len[i] == 0 || memcmp(bytes, r->bytes.data + r->off[i], r->len[i]) == 0);
        if (via_args)
            FUZZ_CHECK(argv[i].len == r->len[i] && (r->len[i] == 0 || argv[i].ptr == bytes));
    }
    free(argv);
}

/* The reference split of buf[0..len): copied to a C string, as Redis does (sdsnewlen). */
static bool ref_line(const char *buf, size_t len, struct ref_split *r)
{
    char *line = malloc(len + 1);
    FUZZ_CHECK(line != NULL);
    memcpy(line, buf, len);
    line[len] = '\0';
    bool ok = ref_splitargs(line, r);
    free(line);
    return ok;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > RESP_INLINE_MAX)
        return 0;
    struct resp_parser p;
    struct ref_split ref = { 0 };
    const char *line = (const char *)data;

    /* 1. resp_split_inline on the bytes as one line. */
    resp_parser_init(&p);
    bool ok = resp_split_inline(&p, line, size);
    bool ref_ok = ref_line(line, size, &ref);
    FUZZ_CHECK(ok == ref_ok);
    if (ok)
        check_same(&p, &ref, false);
    else
        FUZZ_CHECK(p.argc == 0);
    resp_parser_free(&p);

    /* 2. The same bytes as a client's stream of inline requests. */
    bool has_nl = memchr(data, '\n', size) != NULL;
    size_t n = size + (has_nl ? 0 : 2);
    char *buf = malloc(n ? n : 1);
    FUZZ_CHECK(buf != NULL);
    memcpy(buf, data, size);
    if (!has_nl)
        memcpy(buf + size, "\r\n", 2);
    struct resp_limits lim = { .max_bulk_len = 512LL << 20 };
    resp_parser_init(&p);
    for (size_t requests = 0; requests <= n; requests++) {
        size_t start = p.pos;
        if (start < n && buf[start] == '*')
            break; /* a multibulk request: fuzz_resp_request's business */
        enum resp_status st = resp_parse(&p, buf, n, &lim);
        if (st == RESP_NEED_MORE) {
            /* Only when the rest holds no complete line. */
            FUZZ_CHECK(start >= n || memchr(buf + start, '\n', n - start) == NULL);
            break;
        }
        const char *nl = memchr(buf + start, '\n', n - start);
        FUZZ_CHECK(nl != NULL);
        size_t linelen = (size_t)(nl - (buf + start));
        if (linelen > 0 && buf[start + linelen - 1] == '\r')
            linelen--;
        ref_ok = ref_line(buf + start, linelen, &ref);
        if (st == RESP_PROTO_ERROR) {
            FUZZ_CHECK(!ref_ok);
            FUZZ_CHECK(strcmp(p.error, "Protocol error: unbalanced quotes in request") == 0);
            break;
        }
        FUZZ_CHECK(ref_ok);
        FUZZ_CHECK(p.is_inline);
        FUZZ_CHECK(p.pos == (size_t)(nl - buf) + 1);
        check_same(&p, &ref, true);
        resp_parser_next(&p);
    }
    resp_parser_free(&p);
    free(buf);
    ref_free(&ref);
    return 0;
}
