/* The near-cache reply set (cache/replyset.h): a short list of (signature, reply) items, most
 * recently put first. Lookups walk at most REPLYSET_ITEMS_MAX items. */
#include "cache/replyset.h"

#include "conf/xmalloc.h"

#include <malloc.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define CHUNK_OVERHEAD sizeof(size_t)

struct replyset_item {
    struct replyset_item *next;
    uint32_t siglen;
    uint32_t rlen;
    char data[]; /* signature, then reply */
};

static size_t alloc_size(const void *p)
{
    return malloc_usable_size((void *)p) + CHUNK_OVERHEAD;
}

_Static_assert(sizeof(struct replyset) % _Alignof(struct replyset_item) == 0,
               "the inline item follows the struct, aligned");

/* The room for an item after the struct (meaningful when inline_cap > 0). */
static struct replyset_item *inline_item(const struct replyset *rs)
{
    return (struct replyset_item *)(void *)((char *)(uintptr_t)rs + sizeof(*rs));
}

static struct replyset *create_with_room(size_t room)
{
    struct replyset *rs = xcalloc(1, sizeof(*rs) + room);
    size_t usable = malloc_usable_size(rs) - sizeof(*rs);
    rs->inline_cap = room == 0 ? 0 : usable > UINT32_MAX ? UINT32_MAX : (uint32_t)usable;
    rs->bytes = alloc_size(rs);
    return rs;
}

struct replyset *replyset_create(void)
{
    return create_with_room(0);
}

struct replyset *replyset_create_sized(size_t siglen, size_t rlen)
{
    return create_with_room(sizeof(struct replyset_item) + siglen + rlen);
}

static struct replyset_item **replyset_find(struct replyset *rs, const char *sig, size_t siglen)
{
    struct replyset_item **pp = &rs->head;
    for (uint32_t i = 0; *pp && i < REPLYSET_ITEMS_MAX; i++, pp = &(*pp)->next) {
        const struct replyset_item *it = *pp;
        if (it->siglen == siglen && memcmp(it->data, sig, siglen) == 0)
            return pp;
    }
    return NULL;
}

const char *replyset_get(const struct replyset *rs, const char *sig, size_t siglen, size_t *len)
{
    if (siglen == 0)
        return NULL; /* the placeholder of a withheld set is nobody's reply */
    struct replyset_item **pp = replyset_find((struct replyset *)rs, sig, siglen);
    if (!pp)
        return NULL;
    *len = (*pp)->rlen;
    return (*pp)->data + (*pp)->siglen;
}

static void replyset_unlink(struct replyset *rs, struct replyset_item **pp)
{
    struct replyset_item *it = *pp;
    *pp = it->next;
    rs->n--;
    if (rs->inline_cap && it == inline_item(rs)) {
        rs->inline_used = false; /* the room is part of the set's own allocation */
        return;
    }
    rs->bytes -= alloc_size(it);
    free(it);
}

void replyset_put(struct replyset *rs, const char *sig, size_t siglen, const char *reply,
                  size_t rlen)
{
    struct replyset_item **pp = replyset_find(rs, sig, siglen);
    if (pp)
        replyset_unlink(rs, pp);
    if (rs->n >= REPLYSET_ITEMS_MAX) {
        pp = &rs->head;
        while ((*pp)->next)
            pp = &(*pp)->next;
        replyset_unlink(rs, pp);
    }
    size_t need = sizeof(struct replyset_item) + siglen + rlen;
    struct replyset_item *it;
    if (!rs->inline_used && need <= rs->inline_cap) {
        it = inline_item(rs);
        rs->inline_used = true;
    } else {
        it = xmalloc(need);
        rs->bytes += alloc_size(it);
    }
    it->siglen = (uint32_t)siglen;
    it->rlen = (uint32_t)rlen;
    memcpy(it->data, sig, siglen);
    memcpy(it->data + siglen, reply, rlen);
    it->next = rs->head;
    rs->head = it;
    rs->n++;
}

void replyset_clear(struct replyset *rs)
{
    while (rs->head)
        replyset_unlink(rs, &rs->head);
}

void replyset_withhold(struct replyset *rs)
{
    replyset_clear(rs);
    replyset_put(rs, "", 0, "", 0);
}

bool replyset_withheld(const struct replyset *rs)
{
    return rs->n == 1 && rs->head->siglen == 0;
}

static void replyset_free(void *value)
{
    struct replyset *rs = value;
    replyset_clear(rs);
    free(rs);
}

static void *replyset_dup(const void *value)
{
    const struct replyset *src = value;
    struct replyset *rs = create_with_room(src->inline_cap);
    const struct replyset_item *items[REPLYSET_ITEMS_MAX];
    uint32_t n = 0;
    for (const struct replyset_item *it = src->head; it && n < REPLYSET_ITEMS_MAX; it = it->next)
        items[n++] = it;
    while (n > 0) { /* oldest first, so the copy keeps the order */
        const struct replyset_item *it = items[--n];
        replyset_put(rs, it->data, it->siglen, it->data + it->siglen, it->rlen);
    }
    rs->fresh_until_ms = src->fresh_until_ms;
    return rs;
}

static size_t replyset_bytes(const void *value)
{
    return ((const struct replyset *)value)->bytes;
}

static size_t replyset_len(const void *value)
{
    return ((const struct replyset *)value)->n;
}

const struct store_value_ops replyset_ops = {
    .free = replyset_free,
    .dup = replyset_dup,
    .bytes = replyset_bytes,
    .len = replyset_len,
};
