/* Growable byte buffer; see strbuf.h. */
#include "proxy/strbuf.h"

#include "conf/xmalloc.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#define STRBUF_MIN 256

void strbuf_reserve(struct strbuf *b, size_t extra)
{
    size_t need = b->len + extra;
    if (need <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : STRBUF_MIN;
    while (cap < need)
        cap = cap < (1u << 20) ? cap * 2 : cap + cap / 4;
    b->data = xrealloc(b->data, cap);
    b->cap = cap;
}

void strbuf_free(struct strbuf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

void strbuf_consume(struct strbuf *b, size_t n)
{
    if (n >= b->len) {
        b->len = 0;
        return;
    }
    memmove(b->data, b->data + n, b->len - n);
    b->len -= n;
}

void strbuf_shrink_idle(struct strbuf *b)
{
    if (b->len == 0 && b->cap > STRBUF_IDLE_KEEP)
        strbuf_free(b);
}

void strbuf_printf(struct strbuf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    strbuf_reserve(b, (size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}
