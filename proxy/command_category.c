/* Redis 7's ACL command categories, in Redis's order: the one table that says which category a
 * command row belongs to, for the permission check (acl.c: +@read...), ACL CAT, and COMMAND
 * INFO / COMMAND LIST FILTERBY ACLCAT (cmd_command.c). A row is in a category when it has one of
 * `flag`, lacks `unless`, or belongs to `group`. A container row (CONFIG, CLIENT: no handler,
 * only subcommands) has no flags and no group of its own: it is @slow only, as in Redis. */
#include "proxy/command.h"

#include <string.h>
#include <strings.h>

const struct command_category command_categories[] = {
    { "keyspace", CMD_CAT_KEYSPACE, 0, "generic" },  { "read", CMD_READ, 0, NULL },
    { "write", CMD_WRITE, 0, NULL },  { "set", 0, 0, "set" },
    { "sortedset", 0, 0, "sorted-set" }, { "list", 0, 0, "list" },
    { "hash", 0, 0, "hash" },         { "string", 0, 0, "string" },
    { "bitmap", 0, 0, "bitmap" },     { "hyperloglog", 0, 0, "hyperloglog" },
    { "geo", 0, 0, "geo" },           { "stream", 0, 0, "stream" },
    { "pubsub", 0, 0, "pubsub" },     { "admin", CMD_ADMIN, 0, NULL },
    { "fast", CMD_FAST, 0, NULL },    { "slow", 0, CMD_FAST, NULL },
    { "blocking", CMD_BLOCKING, 0, NULL },
    { "dangerous", CMD_ADMIN | CMD_DANGEROUS, 0, NULL },
    { "connection", CMD_CAT_CONNECTION, 0, "connection" }, { "transaction", 0, 0, "transactions" },
    { "scripting", 0, 0, "scripting" },
};

const size_t command_category_count =
    sizeof(command_categories) / sizeof(command_categories[0]);

bool command_category_has(const struct command_category *cat, const struct command *cmd)
{
    bool container = cmd->proc == NULL;
    unsigned f = container ? 0 : cmd->flags;
    if ((cat->flag && (f & cat->flag)) || (cat->unless && !(f & cat->unless)))
        return true;
    return cat->group && !container && cmd->group && strcmp(cat->group, cmd->group) == 0;
}

const struct command_category *command_category_find(const char *name, size_t len)
{
    for (size_t i = 0; i < command_category_count; i++) {
        const char *n = command_categories[i].name;
        if (strlen(n) == len && strncasecmp(n, name, len) == 0)
            return &command_categories[i];
    }
    return NULL;
}
