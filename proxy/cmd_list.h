/* The list commands' building blocks that the blocking commands (BLPOP BRPOP BLMOVE BRPOPLPUSH
 * BLMPOP, in cmd_list.c on blocking.h) reuse: lookup for write, pop-and-reply, push,
 * move-and-reply. They work on the client's selected database and take keys as (pointer,
 * length). See proxy/cmd_list.c. */
#ifndef PROXY_CMD_LIST_H
#define PROXY_CMD_LIST_H

#include "cache/list.h"
#include "cache/store.h"
#include "proxy/client.h"

#include <stdbool.h>
#include <stddef.h>

/* How popped elements are replied (list_pop_and_reply). */
enum list_pop_form {
    LIST_POP_ELEMENT,     /* one element as a bulk: LPOP key */
    LIST_POP_ARRAY,       /* the elements as an array: LPOP key count */
    LIST_POP_KEY_ELEMENT, /* [key, element]: BLPOP, BRPOP */
    LIST_POP_KEY_ARRAY,   /* [key, [elements]]: LMPOP, BLMPOP */
};

bool list_lookup_write(struct client *c, const char *key, size_t klen, struct store_entry **e);
void list_pop_and_reply(struct client *c, struct store_entry *e, enum list_where w,
                        size_t count, enum list_pop_form form);
size_t list_push_elements(struct client *c, const char *key, size_t klen, struct store_entry *e,
                          enum list_where w, const struct resp_arg *elems, size_t n);
bool list_move_and_reply(struct client *c, const char *src, size_t slen, enum list_where from,
                         const char *dst, size_t dlen, enum list_where to);

#endif
