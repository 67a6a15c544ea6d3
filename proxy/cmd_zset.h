/* The sorted-set commands' building blocks that the blocking pops (BZPOPMIN, BZPOPMAX) reuse:
 * lookup for write and pop-and-reply. They work on the client's selected database and take
 * keys as (pointer, length). See proxy/cmd_zset.c. */
#ifndef PROXY_CMD_ZSET_H
#define PROXY_CMD_ZSET_H

#include "cache/store.h"
#include "proxy/client.h"

#include <stdbool.h>
#include <stddef.h>

/* How popped members are replied (zset_pop_and_reply). */
enum zset_pop_form {
    ZSET_POP_FLAT,       /* [m, s, m, s, ...]: ZPOPMIN/ZPOPMAX (RESP2, or without COUNT) */
    ZSET_POP_NESTED,     /* [[m, s], ...]: ZPOPMIN/ZPOPMAX with COUNT in RESP3 */
    ZSET_POP_KEY_FLAT,   /* [key, m, s]: BZPOPMIN, BZPOPMAX */
    ZSET_POP_KEY_NESTED, /* [key, [[m, s], ...]]: ZMPOP, BZMPOP */
};

bool zset_lookup_write(struct client *c, const char *key, size_t klen, struct store_entry **e);
void zset_pop_and_reply(struct client *c, struct store_entry *e, bool max, size_t count,
                        enum zset_pop_form form);

/* Shared with cmd_zset_algebra.c. */
struct zset;
struct zset_node;
struct resp_arg;
/* A new empty sorted set keyed with the store's seed. */
struct zset *zset_create(struct client *c);
/* Replaces key dst with result (handed to the store), or deletes dst when result is empty. */
void zset_store_result(struct client *c, const struct resp_arg *dst, struct zset *result);
/* One member (and its score with WITHSCORES handled by the caller) as a bulk. */
void reply_member(struct client *c, const struct zset_node *n);

#endif
