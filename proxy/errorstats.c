/* INFO errorstats (see errorstats.h).
 * Invariants: rows[0..n) are sorted by prefix (memcmp order, a prefix before its extensions, as
 * Redis's rax iterates), each prefix is 0..ERRORSTATS_PREFIX_MAX-2 bytes and appears once. */
#include "proxy/errorstats.h"

#include "conf/xmalloc.h"
#include "proxy/server.h"
#include "proxy/strbuf.h"

#include <stdlib.h>
#include <string.h>

struct errorstat_row {
    char prefix[ERRORSTATS_PREFIX_MAX];
    size_t len;
    uint64_t count;
};

struct errorstats {
    struct errorstat_row rows[ERRORSTATS_MAX];
    size_t n;
};

struct errorstats *errorstats_create(void)
{
    return xcalloc(1, sizeof(struct errorstats));
}

void errorstats_destroy(struct errorstats *es)
{
    free(es);
}

void errorstats_reset(struct errorstats *es)
{
    if (es)
        es->n = 0;
}

static int prefix_cmp(const struct errorstat_row *r, const char *p, size_t len)
{
    size_t n = r->len < len ? r->len : len;
    int c = memcmp(r->prefix, p, n);
    if (c)
        return c;
    return r->len < len ? -1 : r->len > len ? 1 : 0;
}

/* The index of the first row >= (p, len). */
static size_t errorstats_find(const struct errorstats *es, const char *p, size_t len)
{
    size_t lo = 0, hi = es->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (prefix_cmp(&es->rows[mid], p, len) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

void errorstats_count(struct errorstats *es, const char *text, size_t len)
{
    if (!es)
        return;
    /* Redis: memchr(s, ' ', min(len, 32)) over "-PREFIX ...", so the space is within the
     * first 31 bytes of the text; without one the error counts as ERR. */
    size_t reach = len < ERRORSTATS_PREFIX_MAX - 1 ? len : ERRORSTATS_PREFIX_MAX - 1;
    const char *space = memchr(text, ' ', reach);
    const char *p = "ERR";
    size_t plen = 3;
    if (space) { /* "- x" has the empty prefix, shown "errorstat_:count=1" as by Redis */
        p = text;
        plen = (size_t)(space - text);
    }
    size_t i = errorstats_find(es, p, plen);
    if (i < es->n && prefix_cmp(&es->rows[i], p, plen) == 0) {
        es->rows[i].count++;
        return;
    }
    if (es->n == ERRORSTATS_MAX)
        return;
    memmove(&es->rows[i + 1], &es->rows[i], (es->n - i) * sizeof(es->rows[0]));
    es->n++;
    struct errorstat_row *r = &es->rows[i];
    memcpy(r->prefix, p, plen);
    r->prefix[plen] = '\0';
    r->len = plen;
    r->count = 1;
}

uint64_t errorstats_get(const struct errorstats *es, const char *prefix)
{
    size_t len = strlen(prefix);
    size_t i = errorstats_find(es, prefix, len);
    return i < es->n && prefix_cmp(&es->rows[i], prefix, len) == 0 ? es->rows[i].count : 0;
}

void errorstats_info(struct server *srv, struct strbuf *b)
{
    const struct errorstats *es = srv->errorstats;
    if (!es)
        return;
    for (size_t i = 0; i < es->n; i++)
        strbuf_printf(b, "errorstat_%.*s:count=%llu\r\n", (int)es->rows[i].len,
                      es->rows[i].prefix, (unsigned long long)es->rows[i].count);
}
