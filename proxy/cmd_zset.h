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

#endif
