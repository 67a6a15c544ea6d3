/* Reply writers; see reply.h. Each writes one RESP element into client_out(c). */
#include "proxy/reply.h"

#include "proxy/errorstats.h"
#include "proxy/numbers.h"
#include "proxy/server.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/uio.h>

static void put_header(struct strbuf *b, char type, long long n)
{
    char tmp[NUM_LL_STR_MAX + 3];
    tmp[0] = type;
    size_t len = 1 + num_format_ll(tmp + 1, n);
    tmp[len++] = '\r';
    tmp[len++] = '\n';
    strbuf_append(b, tmp, len);
}

void reply_raw(struct client *c, const char *p, size_t n)
{
    if (n >= CLIENT_DIRECT_MIN) { /* a near-cache hit of a large value: from the stored bytes */
        struct iovec iov = { (void *)p, n };
        if (client_reply_direct(c, &iov, 1, n))
            return;
    }
    strbuf_append(client_out(c), p, n);
}

void reply_ok(struct client *c)
{
    strbuf_append(client_out(c), "+OK\r\n", 5);
}

void reply_status(struct client *c, const char *s)
{
    struct strbuf *b = client_out(c);
    strbuf_putc(b, '+');
    strbuf_append(b, s, strlen(s));
    strbuf_append(b, "\r\n", 2);
}

void reply_error(struct client *c, const char *text)
{
    struct strbuf *b = client_out(c);
    size_t n = strlen(text);
    strbuf_reserve(b, n + 3);
    b->data[b->len++] = '-';
    size_t start = b->len;
    for (size_t i = 0; i < n; i++)
        b->data[b->len++] = (text[i] == '\r' || text[i] == '\n') ? ' ' : text[i];
    b->data[b->len++] = '\r';
    b->data[b->len++] = '\n';
    c->srv->stats.errors_replied++;
    errorstats_count(c->srv->errorstats, b->data + start, n); /* INFO errorstats */
}

void reply_errorf(struct client *c, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    reply_error(c, msg);
}

void reply_error_arity(struct client *c, const char *fullname)
{
    reply_errorf(c, "ERR wrong number of arguments for '%s' command", fullname);
}

void reply_int(struct client *c, long long v)
{
    put_header(client_out(c), ':', v);
}

void reply_bulk(struct client *c, const char *p, size_t n)
{
    if (n >= CLIENT_DIRECT_MIN) { /* a large value: written from its own bytes (the store's) */
        char hdr[NUM_LL_STR_MAX + 3];
        hdr[0] = '$';
        size_t hl = 1 + num_format_ull(hdr + 1, n);
        hdr[hl++] = '\r';
        hdr[hl++] = '\n';
        struct iovec iov[3] = { { hdr, hl }, { (void *)p, n }, { (void *)"\r\n", 2 } };
        if (client_reply_direct(c, iov, 3, hl + n + 2))
            return;
    }
    struct strbuf *b = client_out(c);
    strbuf_reserve(b, n + NUM_LL_STR_MAX + 5);
    put_header(b, '$', (long long)n);
    memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len++] = '\r';
    b->data[b->len++] = '\n';
}

void reply_bulk_cstr(struct client *c, const char *s)
{
    reply_bulk(c, s, strlen(s));
}

void reply_bulk_ll(struct client *c, long long v)
{
    char tmp[NUM_LL_STR_MAX];
    size_t n = num_format_ll(tmp, v);
    reply_bulk(c, tmp, n);
}

void reply_null(struct client *c)
{
    if (c->resp >= 3)
        strbuf_append(client_out(c), "_\r\n", 3);
    else
        strbuf_append(client_out(c), "$-1\r\n", 5);
}

void reply_null_array(struct client *c)
{
    if (c->resp >= 3)
        strbuf_append(client_out(c), "_\r\n", 3);
    else
        strbuf_append(client_out(c), "*-1\r\n", 5);
}

void reply_array(struct client *c, size_t n)
{
    put_header(client_out(c), '*', (long long)n);
}

void reply_map(struct client *c, size_t n)
{
    if (c->resp >= 3)
        put_header(client_out(c), '%', (long long)n);
    else
        put_header(client_out(c), '*', (long long)n * 2);
}

void reply_set(struct client *c, size_t n)
{
    put_header(client_out(c), c->resp >= 3 ? '~' : '*', (long long)n);
}

void reply_double(struct client *c, double v)
{
    char tmp[128];
    size_t n = num_format_double(tmp, sizeof(tmp), v);
    if (c->resp >= 3) {
        struct strbuf *b = client_out(c);
        strbuf_putc(b, ',');
        strbuf_append(b, tmp, n);
        strbuf_append(b, "\r\n", 2);
    } else {
        reply_bulk(c, tmp, n);
    }
}

void reply_bool(struct client *c, int v)
{
    if (c->resp >= 3)
        strbuf_append(client_out(c), v ? "#t\r\n" : "#f\r\n", 4);
    else
        strbuf_append(client_out(c), v ? ":1\r\n" : ":0\r\n", 4);
}

void reply_verbatim(struct client *c, const char *p, size_t n)
{
    if (c->resp < 3) {
        reply_bulk(c, p, n);
        return;
    }
    struct strbuf *b = client_out(c);
    put_header(b, '=', (long long)n + 4);
    strbuf_append(b, "txt:", 4);
    strbuf_append(b, p, n);
    strbuf_append(b, "\r\n", 2);
}

void reply_help(struct client *c, const char *const *lines, size_t n)
{
    reply_array(c, n);
    for (size_t i = 0; i < n; i++)
        reply_status(c, lines[i]);
}

size_t reply_defer_len(struct client *c)
{
    return client_out(c)->len;
}

void reply_set_deferred_len(struct client *c, size_t handle, size_t n)
{
    struct strbuf *b = client_out(c);
    char tmp[NUM_LL_STR_MAX + 3];
    tmp[0] = '*';
    size_t hl = 1 + num_format_ull(tmp + 1, n);
    tmp[hl++] = '\r';
    tmp[hl++] = '\n';
    strbuf_reserve(b, hl);
    memmove(b->data + handle + hl, b->data + handle, b->len - handle);
    memcpy(b->data + handle, tmp, hl);
    b->len += hl;
}
