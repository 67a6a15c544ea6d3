/* The list value type (LPUSH, LRANGE, ...): a doubly linked list of nodes, each one allocation
 * holding a run of length-prefixed elements, as Redis's quicklist of listpacks.
 *
 * Invariants:
 *  - an element is stored as varint(len) + bytes + reverse-varint(len), so a node is walked in
 *    both directions; a node's bytes are data[start, end) inside a buffer of cap bytes, with
 *    free room at either side (pushes and pops at both ends are O(1), no memmove);
 *  - no node is empty; a node holding two or more elements holds at most LIST_NODE_BYTES bytes
 *    of them (a larger element lives alone in its own node);
 *  - len is the number of elements; bytes is the real allocation size (malloc_usable_size plus
 *    the allocator's chunk header) of the list header and of every node.
 * Pointers to element bytes handed out (peek, index, iterators, callbacks) stay valid until the
 * list is next modified. Not thread-safe; no global state. */
#ifndef CACHE_LIST_H
#define CACHE_LIST_H

#include "cache/store.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Element bytes a node takes before a new node is started (Redis's list-max-listpack-size -2). */
#define LIST_NODE_BYTES 8192
/* Neighbouring nodes whose bytes together fit this are merged after removals in the middle. */
#define LIST_NODE_MERGE_BYTES (LIST_NODE_BYTES / 2)

enum list_where { LIST_HEAD = 0, LIST_TAIL = 1 };

struct list;
struct list_node;

/* Called with one element; p is valid only during the call. fn must not modify the list. */
typedef void list_elem_fn(void *ctx, const char *p, size_t n);
/* Called with the index (from the head) of an element found by list_pos. */
typedef void list_index_fn(void *ctx, size_t index);

/* The store's ops for STORE_LIST values (free, dup, bytes, len). */
extern const struct store_value_ops list_value_ops;

/* A new empty list, owned by the caller (free it with list_free, or give it to the store). */
struct list *list_new(void);
void list_free(struct list *l);
/* A deep copy, owned by the caller. */
struct list *list_dup(const struct list *l);
size_t list_len(const struct list *l);
/* Bytes really allocated for l: the header and every node. */
size_t list_bytes(const struct list *l);

/* Adds a copy of p[0..n) at the head or the tail. O(1). */
void list_push(struct list *l, enum list_where w, const char *p, size_t n);
/* The element at the head or tail without removing it; false when l is empty. */
bool list_peek(const struct list *l, enum list_where w, const char **p, size_t *n);
/* Removes up to count elements from one end, calling fn (if non-NULL) on each just before it
 * is removed, in pop order. Returns how many were removed. O(count). */
size_t list_pop(struct list *l, enum list_where w, size_t count, list_elem_fn *fn, void *ctx);
/* Moves the element at end `from` of src to end `to` of dst (src may be dst: a rotation),
 * calling fn (if non-NULL) on it first. False (nothing done) when src is empty. O(1). */
bool list_move(struct list *src, enum list_where from, struct list *dst, enum list_where to,
               list_elem_fn *fn, void *ctx);

/* The element at index (negative: from the tail, -1 the last); false when out of range. */
bool list_index(const struct list *l, long long index, const char **p, size_t *n);
/* Replaces the element at index (negative from the tail); false when out of range. */
bool list_set(struct list *l, long long index, const char *p, size_t n);
/* Inserts p before (LIST_HEAD) or after (LIST_TAIL) the first element, from the head, equal
 * to pivot; false when there is none. */
bool list_insert(struct list *l, enum list_where side, const char *pivot, size_t plen,
                 const char *p, size_t n);
/* Removes elements equal to p: count > 0 the first count from the head, count < 0 the first
 * -count from the tail, 0 all. Returns how many were removed. */
size_t list_remove(struct list *l, const char *p, size_t n, long long count);
/* Removes from_head elements at the head and from_tail at the tail (clamped to the length). */
void list_trim(struct list *l, size_t from_head, size_t from_tail);
/* LPOS: walks from the head (rank > 0) or the tail (rank < 0), looks at no more than maxlen
 * elements (0 = all), skips the first |rank|-1 matches and reports the next ones to fn by
 * their index from the head, at most count of them (0 = all). Returns how many were reported.
 * rank must not be 0 or LLONG_MIN. */
size_t list_pos(const struct list *l, const char *p, size_t n, long long rank, size_t count,
                size_t maxlen, list_index_fn *fn, void *ctx);

/* Read-only walk, O(1) per step: list_iter_init(&it, l, index, LIST_TAIL) walks from index
 * (0 = head) towards the tail, LIST_HEAD from index towards the head. The list must not change
 * during the walk. An index out of range gives an empty walk. */
struct list_iter {
    const struct list_node *node;
    uint32_t off;           /* next element's first byte (towards the tail) or end (towards
                               the head) within node */
    enum list_where dir;
};
void list_iter_init(struct list_iter *it, const struct list *l, size_t index,
                    enum list_where dir);
bool list_iter_next(struct list_iter *it, const char **p, size_t *n);

/* Self-check for tests: the invariants above hold (lengths, links, byte count, node sizes). */
bool list_check(const struct list *l);

#endif
