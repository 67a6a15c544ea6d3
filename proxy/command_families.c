/* The registration lists: the command family tables the index is built from (command.h), and
 * the aggregate value types the store is told about (server_register_types). A family is one
 * NULL-terminated table defined next to its handlers; a type's ops live next to its structure
 * in cache/. */
#include "proxy/command.h"
#include "proxy/server.h"

#include "cache/replyset.h"
#include "cache/store.h"

#include <stddef.h>

extern const struct command hash_commands[], list_commands[], set_commands[], zset_commands[],
    multi_commands[], pubsub_commands[];
extern const struct store_value_ops hash_value_ops, list_value_ops, set_value_ops,
    zset_value_ops;

const struct command *const command_families[] = {
    core_commands, hash_commands,  list_commands,   set_commands,
    zset_commands, multi_commands, pubsub_commands, NULL,
};

void server_register_types(struct store *s)
{
    store_register_type(s, STORE_HASH, &hash_value_ops);
    store_register_type(s, STORE_LIST, &list_value_ops);
    store_register_type(s, STORE_SET, &set_value_ops);
    store_register_type(s, STORE_ZSET, &zset_value_ops);
    store_register_type(s, STORE_REPLIES, &replyset_ops);
}
