/* A growable byte buffer: the query buffer and the output buffers of a client.
 * Owns its bytes; len <= cap; growth doubles (small) or adds 1/4 (large) so appends are linear. */
#ifndef PROXY_STRBUF_H
#define PROXY_STRBUF_H

#include <stddef.h>
#include <string.h>

struct strbuf {
    char *data;
    size_t len;
    size_t cap;
};

/* Makes room for at least extra more bytes after len. */
void strbuf_reserve(struct strbuf *b, size_t extra);
void strbuf_free(struct strbuf *b);
/* Drops the first n bytes (n <= len), moving the rest to the front. */
void strbuf_consume(struct strbuf *b, size_t n);
/* An emptied buffer keeps its allocation up to this size (Redis keeps a 16 KB reply buffer per
 * client): ten thousand idle clients that once got a big reply do not pin 64 KB each. */
#define STRBUF_IDLE_KEEP (16 * 1024)

/* Releases the allocation when it is large and empty (a burst does not pin memory). */
void strbuf_shrink_idle(struct strbuf *b);
/* Appends printf output (grows as needed). */
void strbuf_printf(struct strbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static inline void strbuf_append(struct strbuf *b, const void *p, size_t n)
{
    if (b->cap - b->len < n)
        strbuf_reserve(b, n);
    memcpy(b->data + b->len, p, n);
    b->len += n;
}

static inline void strbuf_putc(struct strbuf *b, char ch)
{
    if (b->cap == b->len)
        strbuf_reserve(b, 1);
    b->data[b->len++] = ch;
}

#endif
