/* The list value type: a doubly linked list of nodes of length-prefixed elements (see list.h
 * for the layout and invariants). Owns every node and the list header; counts every byte it
 * allocates in l->bytes. No clock, no I/O, no global state. */
#include "cache/list.h"

#include "conf/xmalloc.h"

#include <limits.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>

#define CHUNK_OVERHEAD sizeof(size_t)
#define VARINT_MAX 10      /* bytes of a varint of a size_t */
#define NODE_CAP_MIN 16    /* smallest data buffer of a node */
#define NODE_SHRINK_MIN 256 /* nodes whose buffer is below this are never shrunk */

struct list_node {
    struct list_node *prev, *next;
    uint32_t start, end; /* the elements are data[start, end) */
    uint32_t cap;        /* bytes of data */
    uint32_t count;      /* elements in the node (> 0) */
    unsigned char data[];
};

struct list {
    struct list_node *head, *tail;
    size_t len;   /* elements */
    size_t nodes;
    size_t bytes; /* allocated: this header and every node */
};

/* ---- sizes and element encoding ---- */

static size_t alloc_size(const void *p)
{
    return malloc_usable_size((void *)p) + CHUNK_OVERHEAD;
}

static size_t varint_size(size_t v)
{
    size_t k = 1;
    while (v >= 128 && k < VARINT_MAX) {
        v >>= 7;
        k++;
    }
    return k;
}

/* Bytes one element of n bytes takes in a node. */
static size_t entry_size(size_t n)
{
    return 2 * varint_size(n) + n;
}

/* Writes the element at q: varint, bytes, reverse varint. Returns the bytes written. */
static size_t entry_write(unsigned char *q, const char *p, size_t n)
{
    size_t k = varint_size(n);
    for (size_t i = 0; i < k; i++)
        q[i] = (unsigned char)(((n >> (7 * i)) & 127) | (i + 1 < k ? 128 : 0));
    if (n)
        memcpy(q + k, p, n);
    unsigned char *t = q + k + n; /* the reverse varint: its last byte holds the low bits */
    for (size_t i = 0; i < k; i++)
        t[k - 1 - i] = (unsigned char)(((n >> (7 * i)) & 127) | (i + 1 < k ? 128 : 0));
    return 2 * k + n;
}

/* Reads the element starting at q: its bytes and their length; returns the entry size. */
static size_t entry_read(const unsigned char *q, const char **p, size_t *n)
{
    size_t len = 0, k = 0;
    unsigned char b;
    do {
        b = q[k];
        len |= (size_t)(b & 127) << (7 * k);
        k++;
    } while ((b & 128) && k < VARINT_MAX);
    *p = (const char *)q + k;
    *n = len;
    return 2 * k + len;
}

/* The entry size of the element that ends just before q (reads its reverse varint). */
static size_t entry_size_back(const unsigned char *q)
{
    size_t len = 0, k = 0;
    unsigned char b;
    do {
        b = q[-1 - (ptrdiff_t)k];
        len |= (size_t)(b & 127) << (7 * k);
        k++;
    } while ((b & 128) && k < VARINT_MAX);
    return 2 * k + len;
}

static bool entry_equal(const unsigned char *q, const char *p, size_t n, size_t *es)
{
    const char *ep;
    size_t en;
    *es = entry_read(q, &ep, &en);
    return en == n && (n == 0 || memcmp(ep, p, n) == 0);
}

static uint32_t node_used(const struct list_node *node)
{
    return node->end - node->start;
}

static bool node_fits(const struct list_node *node, size_t es)
{
    return node_used(node) + es <= LIST_NODE_BYTES;
}

/* ---- node allocation (every byte counted in l->bytes) ---- */

/* The data capacity a node asks for when it must hold need bytes: half as much again, up to
 * LIST_NODE_BYTES (a lone large element gets exactly what it needs). */
static size_t node_grow_cap(size_t need)
{
    if (need >= LIST_NODE_BYTES)
        return need;
    size_t cap = need + need / 2;
    if (cap < NODE_CAP_MIN)
        cap = NODE_CAP_MIN;
    return cap > LIST_NODE_BYTES ? LIST_NODE_BYTES : cap;
}

/* The capacity malloc really gave (its usable size), kept within uint32_t. */
static uint32_t node_real_cap(const struct list_node *node)
{
    size_t usable = malloc_usable_size((void *)node) - sizeof(*node);
    return usable > UINT32_MAX ? UINT32_MAX : (uint32_t)usable;
}

static struct list_node *node_alloc(struct list *l, size_t cap)
{
    struct list_node *node = xmalloc(sizeof(*node) + cap);
    node->prev = node->next = NULL;
    node->start = node->end = 0;
    node->count = 0;
    node->cap = node_real_cap(node);
    l->bytes += alloc_size(node);
    l->nodes++;
    return node;
}

/* Links node after `after` (NULL: at the head). */
static void node_link(struct list *l, struct list_node *node, struct list_node *after)
{
    node->prev = after;
    node->next = after ? after->next : l->head;
    if (node->next)
        node->next->prev = node;
    else
        l->tail = node;
    if (after)
        after->next = node;
    else
        l->head = node;
}

static void node_unlink_free(struct list *l, struct list_node *node)
{
    if (node->prev)
        node->prev->next = node->next;
    else
        l->head = node->next;
    if (node->next)
        node->next->prev = node->prev;
    else
        l->tail = node->prev;
    l->bytes -= alloc_size(node);
    l->nodes--;
    free(node);
}

/* Reallocates node to hold cap data bytes (contents kept up to min(old, new) cap) and fixes
 * the links that pointed to it. Returns the node's new address. */
static struct list_node *node_realloc(struct list *l, struct list_node *node, size_t cap)
{
    l->bytes -= alloc_size(node);
    struct list_node *nn = xrealloc(node, sizeof(*nn) + cap);
    l->bytes += alloc_size(nn);
    nn->cap = node_real_cap(nn);
    if (nn->prev)
        nn->prev->next = nn;
    else
        l->head = nn;
    if (nn->next)
        nn->next->prev = nn;
    else
        l->tail = nn;
    return nn;
}

/* Gives back most of the room of a node that is mostly empty (after pops or removals):
 * moves its bytes to the front and shrinks the buffer. Returns the node's address. */
static struct list_node *node_maybe_shrink(struct list *l, struct list_node *node)
{
    uint32_t used = node_used(node);
    if (node->cap < NODE_SHRINK_MIN || used >= node->cap / 4)
        return node;
    memmove(node->data, node->data + node->start, used);
    node->start = 0;
    node->end = used;
    return node_realloc(l, node, node_grow_cap(used));
}

/* Moves node's bytes so that they start at ns with a gap of n bytes where offset off was
 * (the prefix before off first or last, so that neither side overwrites the other). Returns
 * the gap's offset. The caller checked ns + used + n <= cap. */
static uint32_t node_relayout(struct list_node *node, uint32_t off, uint32_t n, uint32_t ns)
{
    uint32_t before = off - node->start, after = node->end - off, used = node_used(node);
    if (ns <= node->start) {
        memmove(node->data + ns, node->data + node->start, before);
        memmove(node->data + ns + before + n, node->data + off, after);
    } else {
        memmove(node->data + ns + before + n, node->data + off, after);
        memmove(node->data + ns, node->data + node->start, before);
    }
    node->start = ns;
    node->end = ns + used + n;
    return ns + before;
}

/* Opens a gap of need bytes at offset off (start <= off <= end) of *nodep. Uses the free room
 * on the cheap side when it suffices (nothing moves for a push at either end); otherwise lays
 * the node out again, growing it if needed, with the free room in front for an insertion at
 * the node's head and behind otherwise. Returns the gap's offset; start/end include the gap.
 * *nodep may move. */
static uint32_t node_open_gap(struct list *l, struct list_node **nodep, uint32_t off, size_t need)
{
    struct list_node *node = *nodep;
    uint32_t n = (uint32_t)need, used = node_used(node);
    uint32_t room_front = node->start, room_back = node->cap - node->end;
    bool at_head = off == node->start && used > 0, at_tail = off == node->end;
    if (at_tail && room_back >= n)
        return node_relayout(node, off, n, node->start);
    if (at_head && room_front >= n)
        return node_relayout(node, off, n, node->start - n);
    if (!at_head && !at_tail) {
        bool front_cheaper = off - node->start <= node->end - off;
        if (room_front >= n && (front_cheaper || room_back < n))
            return node_relayout(node, off, n, node->start - n);
        if (room_back >= n)
            return node_relayout(node, off, n, node->start);
    }
    size_t total = (size_t)used + n;
    if (node->cap < total) {
        size_t cap = node_grow_cap(total);
        node = node_realloc(l, node, cap > node->cap ? cap : node->cap);
        *nodep = node;
    }
    return node_relayout(node, off, n, at_head ? node->cap - (uint32_t)total : 0);
}

/* Removes k bytes at offset off of node by moving the shorter side over them. Returns the
 * new offset of what followed the removed bytes. */
static uint32_t node_cut(struct list_node *node, uint32_t off, uint32_t k)
{
    if (off - node->start < node->end - (off + k)) {
        memmove(node->data + node->start + k, node->data + node->start, off - node->start);
        node->start += k;
        return off + k;
    }
    memmove(node->data + off, node->data + off + k, node->end - (off + k));
    node->end -= k;
    return off;
}

/* A new node holding one element, linked after `after` (NULL: at the head). Room for more goes
 * to the front when it was made for a push at the head. */
static struct list_node *node_new_with(struct list *l, struct list_node *after, const char *p,
                                       size_t n, bool room_front)
{
    size_t es = entry_size(n);
    struct list_node *node = node_alloc(l, node_grow_cap(es));
    node->start = room_front ? node->cap - (uint32_t)es : 0;
    node->end = node->start + (uint32_t)es;
    entry_write(node->data + node->start, p, n);
    node->count = 1;
    node_link(l, node, after);
    l->len++;
    return node;
}

/* Inserts an element at offset off of node (an element boundary), splitting the node or
 * starting a new one when it has no room under LIST_NODE_BYTES. */
static void list_insert_at(struct list *l, struct list_node *node, uint32_t off, const char *p,
                           size_t n)
{
    size_t es = entry_size(n);
    if (node_fits(node, es)) {
        off = node_open_gap(l, &node, off, es);
        entry_write(node->data + off, p, n);
        node->count++;
        l->len++;
        return;
    }
    if (off == node->start) {
        struct list_node *prev = node->prev;
        if (prev && node_fits(prev, es))
            list_insert_at(l, prev, prev->end, p, n);
        else
            node_new_with(l, prev, p, n, true);
        return;
    }
    if (off == node->end) {
        struct list_node *next = node->next;
        if (next && node_fits(next, es))
            list_insert_at(l, next, next->start, p, n);
        else
            node_new_with(l, node, p, n, false);
        return;
    }
    /* Split: the elements from off on move to a new node after this one. */
    uint32_t tail_bytes = node->end - off, tail_count = 0;
    for (uint32_t o = off; o < node->end && tail_count < node->count; tail_count++) {
        const char *ep;
        size_t en;
        o += (uint32_t)entry_read(node->data + o, &ep, &en);
    }
    struct list_node *right = node_alloc(l, node_grow_cap(tail_bytes));
    memcpy(right->data, node->data + off, tail_bytes);
    right->start = 0;
    right->end = tail_bytes;
    right->count = tail_count;
    node->end = off;
    node->count -= tail_count;
    node_link(l, right, node);
    node = node_maybe_shrink(l, node);
    if (node_fits(node, es))
        list_insert_at(l, node, node->end, p, n);
    else if (node_fits(right, es))
        list_insert_at(l, right, right->start, p, n);
    else
        node_new_with(l, node, p, n, false);
}

/* Merges node->next into node while both fit LIST_NODE_MERGE_BYTES together. Returns node's
 * (possibly new) address. */
static struct list_node *node_merge_next(struct list *l, struct list_node *node)
{
    size_t nodes = l->nodes;
    for (size_t guard = 0; guard < nodes && node->next; guard++) {
        struct list_node *next = node->next;
        uint32_t add = node_used(next);
        if (node_used(node) + add > LIST_NODE_MERGE_BYTES)
            break;
        uint32_t off = node_open_gap(l, &node, node->end, add);
        memcpy(node->data + off, next->data + next->start, add);
        node->count += next->count;
        node_unlink_free(l, next);
    }
    return node;
}

/* Walks to the element at index (0 <= index < len): its node and the offset of its first
 * byte. From whichever end of the list and of the node is nearer. */
static void list_locate(const struct list *l, size_t index, struct list_node **nodep,
                        uint32_t *offp)
{
    struct list_node *node;
    size_t i; /* index of the first element of node */
    if (index < l->len / 2) {
        node = l->head;
        i = 0;
        while (node && index >= i + node->count) {
            i += node->count;
            node = node->next;
        }
    } else {
        node = l->tail;
        i = l->len - node->count;
        while (node && index < i) {
            node = node->prev;
            i -= node->count;
        }
    }
    size_t k = index - i; /* position within the node */
    uint32_t off;
    if (k < node->count / 2 + 1) {
        off = node->start;
        for (size_t j = 0; j < k; j++) {
            const char *ep;
            size_t en;
            off += (uint32_t)entry_read(node->data + off, &ep, &en);
        }
    } else {
        off = node->end;
        for (size_t j = node->count; j > k; j--)
            off -= (uint32_t)entry_size_back(node->data + off);
    }
    *nodep = node;
    *offp = off;
}

/* Normalizes an index that may count from the tail; false when out of range. */
static bool list_norm_index(const struct list *l, long long index, size_t *out)
{
    if (index < 0) {
        if ((unsigned long long)-(index + 1) >= l->len)
            return false;
        *out = l->len - (size_t)(-(index + 1)) - 1;
        return true;
    }
    if ((unsigned long long)index >= l->len)
        return false;
    *out = (size_t)index;
    return true;
}

/* ---- public ---- */

struct list *list_new(void)
{
    struct list *l = xcalloc(1, sizeof(*l));
    l->bytes = alloc_size(l);
    return l;
}

void list_free(struct list *l)
{
    if (!l)
        return;
    struct list_node *node = l->head;
    for (size_t guard = 0; node && guard <= l->nodes; guard++) {
        struct list_node *next = node->next;
        free(node);
        node = next;
    }
    free(l);
}

struct list *list_dup(const struct list *l)
{
    struct list *d = list_new();
    const struct list_node *node = l->head;
    for (size_t guard = 0; node && guard < l->nodes; guard++, node = node->next) {
        uint32_t used = node_used(node);
        struct list_node *copy = node_alloc(d, used);
        memcpy(copy->data, node->data + node->start, used);
        copy->start = 0;
        copy->end = used;
        copy->count = node->count;
        node_link(d, copy, d->tail);
        d->len += node->count;
    }
    return d;
}

size_t list_len(const struct list *l) { return l->len; }
size_t list_bytes(const struct list *l) { return l->bytes; }

void list_push(struct list *l, enum list_where w, const char *p, size_t n)
{
    if (!l->head)
        node_new_with(l, NULL, p, n, w == LIST_HEAD);
    else if (w == LIST_HEAD)
        list_insert_at(l, l->head, l->head->start, p, n);
    else
        list_insert_at(l, l->tail, l->tail->end, p, n);
}

bool list_peek(const struct list *l, enum list_where w, const char **p, size_t *n)
{
    if (!l->len)
        return false;
    const struct list_node *node = w == LIST_HEAD ? l->head : l->tail;
    uint32_t off = node->start;
    if (w == LIST_TAIL)
        off = node->end - (uint32_t)entry_size_back(node->data + node->end);
    entry_read(node->data + off, p, n);
    return true;
}

/* Removes the element at one end (the list is not empty). */
static void list_drop_end(struct list *l, enum list_where w)
{
    struct list_node *node = w == LIST_HEAD ? l->head : l->tail;
    if (w == LIST_HEAD) {
        const char *ep;
        size_t en;
        node->start += (uint32_t)entry_read(node->data + node->start, &ep, &en);
    } else {
        node->end -= (uint32_t)entry_size_back(node->data + node->end);
    }
    node->count--;
    l->len--;
    if (node->count == 0)
        node_unlink_free(l, node);
    else
        node_maybe_shrink(l, node);
}

size_t list_pop(struct list *l, enum list_where w, size_t count, list_elem_fn *fn, void *ctx)
{
    size_t done = 0;
    while (done < count && l->len > 0) {
        const char *p;
        size_t n;
        list_peek(l, w, &p, &n);
        if (fn)
            fn(ctx, p, n);
        list_drop_end(l, w);
        done++;
    }
    return done;
}

bool list_move(struct list *src, enum list_where from, struct list *dst, enum list_where to,
               list_elem_fn *fn, void *ctx)
{
    const char *p;
    size_t n;
    if (!list_peek(src, from, &p, &n))
        return false;
    if (fn)
        fn(ctx, p, n);
    if (src != dst) {
        list_push(dst, to, p, n); /* another list: p stays valid */
        list_drop_end(src, from);
        return true;
    }
    if (from == to || src->len == 1)
        return true; /* popping and pushing back at the same place changes nothing */
    if (src->head != src->tail) {
        /* The push touches only the other end's node: p stays valid until the drop. */
        list_push(src, to, p, n);
        list_drop_end(src, from);
        return true;
    }
    /* One node of two or more elements: they fit LIST_NODE_BYTES together. */
    unsigned char tmp[LIST_NODE_BYTES];
    memcpy(tmp, p, n);
    list_drop_end(src, from);
    list_push(src, to, (const char *)tmp, n);
    return true;
}

bool list_index(const struct list *l, long long index, const char **p, size_t *n)
{
    size_t i;
    if (!list_norm_index(l, index, &i))
        return false;
    struct list_node *node;
    uint32_t off;
    list_locate(l, i, &node, &off);
    entry_read(node->data + off, p, n);
    return true;
}

bool list_set(struct list *l, long long index, const char *p, size_t n)
{
    size_t i;
    if (!list_norm_index(l, index, &i))
        return false;
    struct list_node *node;
    uint32_t off;
    list_locate(l, i, &node, &off);
    const char *ep;
    size_t en;
    uint32_t old_es = (uint32_t)entry_read(node->data + off, &ep, &en);
    size_t new_es = entry_size(n);
    if (new_es == old_es) {
        entry_write(node->data + off, p, n);
        return true;
    }
    if (node->count == 1 || node_used(node) - old_es + new_es <= LIST_NODE_BYTES) {
        /* Resize the element's room in place. */
        if (new_es > old_es) {
            uint32_t gap = node_open_gap(l, &node, off + old_es, new_es - old_es);
            off = gap - old_es;
        } else {
            uint32_t k = old_es - (uint32_t)new_es;
            off = node_cut(node, off + (uint32_t)new_es, k) - (uint32_t)new_es;
        }
        entry_write(node->data + off, p, n);
        return true;
    }
    /* Too big for this node: take the old element out and insert the new one there. */
    off = node_cut(node, off, old_es);
    node->count--;
    l->len--;
    list_insert_at(l, node, off, p, n);
    return true;
}

bool list_insert(struct list *l, enum list_where side, const char *pivot, size_t plen,
                 const char *p, size_t n)
{
    struct list_node *node = l->head;
    for (size_t g = 0; node && g < l->nodes; g++, node = node->next) {
        uint32_t off = node->start;
        for (uint32_t j = 0; j < node->count; j++) {
            size_t es;
            if (entry_equal(node->data + off, pivot, plen, &es)) {
                list_insert_at(l, node, side == LIST_HEAD ? off : off + (uint32_t)es, p, n);
                return true;
            }
            off += (uint32_t)es;
        }
    }
    return false;
}

/* Removes from node, in one pass, the matches of p after skipping the first `skip` of them,
 * at most `limit` (SIZE_MAX: all). Returns how many were removed. */
static size_t node_remove_matches(struct list_node *node, const char *p, size_t n, size_t skip,
                                  size_t limit)
{
    uint32_t rd = node->start, wr = node->start, kept = 0;
    size_t seen = 0, removed = 0;
    for (uint32_t j = 0; j < node->count; j++) {
        size_t es;
        bool eq = entry_equal(node->data + rd, p, n, &es);
        if (eq && seen++ >= skip && removed < limit) {
            removed++;
        } else {
            if (wr != rd)
                memmove(node->data + wr, node->data + rd, es);
            wr += (uint32_t)es;
            kept++;
        }
        rd += (uint32_t)es;
    }
    node->end = wr;
    node->count = kept;
    return removed;
}

static size_t node_count_matches(const struct list_node *node, const char *p, size_t n)
{
    uint32_t off = node->start;
    size_t m = 0;
    for (uint32_t j = 0; j < node->count; j++) {
        size_t es;
        m += entry_equal(node->data + off, p, n, &es);
        off += (uint32_t)es;
    }
    return m;
}

size_t list_remove(struct list *l, const char *p, size_t n, long long count)
{
    bool from_tail = count < 0;
    size_t want = count == 0 ? SIZE_MAX
                  : from_tail ? (size_t)(-(count + 1)) + 1 : (size_t)count;
    size_t removed = 0;
    struct list_node *node = from_tail ? l->tail : l->head;
    size_t nodes = l->nodes;
    for (size_t g = 0; node && g < nodes && removed < want; g++) {
        struct list_node *following = from_tail ? node->prev : node->next;
        size_t limit = want - removed, skip = 0;
        if (from_tail) {
            size_t m = node_count_matches(node, p, n);
            skip = m > limit ? m - limit : 0;
        }
        size_t r = node_remove_matches(node, p, n, skip, limit);
        removed += r;
        l->len -= r;
        if (node->count == 0)
            node_unlink_free(l, node);
        else if (r)
            node_maybe_shrink(l, node);
        node = following;
    }
    if (removed) {
        /* Merge the nodes that became small (one bounded pass over the list). */
        node = l->head;
        for (size_t g = 0; node && g < nodes; g++)
            node = node_merge_next(l, node)->next;
    }
    return removed;
}

void list_trim(struct list *l, size_t from_head, size_t from_tail)
{
    if (from_head >= l->len || from_tail >= l->len - from_head) {
        list_pop(l, LIST_HEAD, l->len, NULL, NULL);
        return;
    }
    for (int side = 0; side < 2; side++) {
        enum list_where w = side == 0 ? LIST_HEAD : LIST_TAIL;
        size_t k = side == 0 ? from_head : from_tail;
        /* Whole nodes first, then the rest of the end node in one cut. */
        size_t nodes = l->nodes;
        for (size_t g = 0; k > 0 && g < nodes; g++) {
            struct list_node *node = w == LIST_HEAD ? l->head : l->tail;
            if (node->count > k)
                break;
            k -= node->count;
            l->len -= node->count;
            node_unlink_free(l, node);
        }
        if (k == 0)
            continue;
        struct list_node *node = w == LIST_HEAD ? l->head : l->tail;
        for (size_t j = 0; j < k; j++) {
            if (w == LIST_HEAD) {
                const char *ep;
                size_t en;
                node->start += (uint32_t)entry_read(node->data + node->start, &ep, &en);
            } else {
                node->end -= (uint32_t)entry_size_back(node->data + node->end);
            }
        }
        node->count -= (uint32_t)k;
        l->len -= k;
        node_maybe_shrink(l, node);
    }
}

size_t list_pos(const struct list *l, const char *p, size_t n, long long rank, size_t count,
                size_t maxlen, list_index_fn *fn, void *ctx)
{
    if (l->len == 0 || rank == 0 || rank == LLONG_MIN)
        return 0;
    bool from_tail = rank < 0;
    size_t skip = (size_t)(from_tail ? -rank : rank) - 1;
    struct list_iter it;
    list_iter_init(&it, l, from_tail ? l->len - 1 : 0, from_tail ? LIST_HEAD : LIST_TAIL);
    size_t limit = maxlen && maxlen < l->len ? maxlen : l->len;
    size_t matches = 0, reported = 0;
    const char *ep;
    size_t en;
    for (size_t i = 0; i < limit && list_iter_next(&it, &ep, &en); i++) {
        if (en != n || (n && memcmp(ep, p, n) != 0))
            continue;
        if (matches++ < skip)
            continue;
        fn(ctx, from_tail ? l->len - 1 - i : i);
        reported++;
        if (count && reported >= count)
            break;
    }
    return reported;
}

void list_iter_init(struct list_iter *it, const struct list *l, size_t index,
                    enum list_where dir)
{
    it->dir = dir;
    it->node = NULL;
    it->off = 0;
    if (index >= l->len)
        return;
    struct list_node *node;
    uint32_t off;
    list_locate(l, index, &node, &off);
    it->node = node;
    if (dir == LIST_HEAD) {
        const char *ep;
        size_t en;
        off += (uint32_t)entry_read(node->data + off, &ep, &en);
    }
    it->off = off;
}

bool list_iter_next(struct list_iter *it, const char **p, size_t *n)
{
    const struct list_node *node = it->node;
    if (!node)
        return false;
    if (it->dir == LIST_TAIL) {
        it->off += (uint32_t)entry_read(node->data + it->off, p, n);
        if (it->off >= node->end) {
            it->node = node->next;
            it->off = it->node ? it->node->start : 0;
        }
    } else {
        it->off -= (uint32_t)entry_size_back(node->data + it->off);
        entry_read(node->data + it->off, p, n);
        if (it->off <= node->start) {
            it->node = node->prev;
            it->off = it->node ? it->node->end : 0;
        }
    }
    return true;
}

bool list_check(const struct list *l)
{
    size_t len = 0, nodes = 0, bytes = alloc_size(l);
    const struct list_node *prev = NULL, *node = l->head;
    for (; node && nodes <= l->nodes; prev = node, node = node->next, nodes++) {
        if (node->prev != prev || node->count == 0 || node->start > node->end ||
            node->end > node->cap || node->cap != node_real_cap(node))
            return false;
        if (node->count >= 2 && node_used(node) > LIST_NODE_BYTES)
            return false;
        uint32_t off = node->start;
        for (uint32_t j = 0; j < node->count; j++) {
            const char *ep;
            size_t en;
            size_t es = entry_read(node->data + off, &ep, &en);
            if (off + es > node->end || entry_size_back(node->data + off + es) != es)
                return false;
            off += (uint32_t)es;
        }
        if (off != node->end)
            return false;
        len += node->count;
        bytes += alloc_size(node);
    }
    return !node && prev == l->tail && len == l->len && nodes == l->nodes && bytes == l->bytes;
}

/* ---- the store's ops ---- */

static void list_ops_free(void *v) { list_free(v); }
static void *list_ops_dup(const void *v) { return list_dup(v); }
static size_t list_ops_bytes(const void *v) { return list_bytes(v); }
static size_t list_ops_len(const void *v) { return list_len(v); }

const struct store_value_ops list_value_ops = {
    list_ops_free,
    list_ops_dup,
    list_ops_bytes,
    list_ops_len,
};
