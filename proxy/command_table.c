/* The core command table (connection, server, strings, keyspace) and the lookup index built
 * over every family table (command_families.c). Command names appear only in these tables and
 * in [rename_commands], which command_index_rename applies here (the only place a configured
 * name is compared with a command's). Arity and key positions follow Redis 7's command table;
 * flags drive routing (DESIGN.md §3) and ACL categories (acl.c). */
#include "proxy/command.h"

#include "conf/config.h"

#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define R CMD_READ
#define W CMD_WRITE
#define C CMD_CACHEABLE
#define L CMD_LOCAL
#define A CMD_ADMIN
#define M CMD_DENYOOM
#define F CMD_FAST
#define N CMD_NOAUTH
#define K CMD_KEYSPACE
#define D CMD_DANGEROUS
#define KS CMD_CAT_KEYSPACE
#define CN CMD_CAT_CONNECTION

command_proc cmd_client_id, cmd_client_setname, cmd_client_getname, cmd_client_setinfo,
    cmd_client_info, cmd_client_list, cmd_client_kill, cmd_client_no_evict,
    cmd_client_no_touch, cmd_client_reply, cmd_client_help;
command_proc cmd_command_count, cmd_command_info, cmd_command_docs, cmd_command_list,
    cmd_command_help;
command_proc cmd_config_get, cmd_config_set, cmd_config_resetstat, cmd_config_rewrite,
    cmd_config_help;
command_proc cmd_slowlog_get, cmd_slowlog_len, cmd_slowlog_reset, cmd_slowlog_help; /* slowlog.c */
command_proc cmd_monitor; /* monitor.c */
command_proc cmd_acl_whoami, cmd_acl_users, cmd_acl_list, cmd_acl_cat, cmd_acl_help; /* acl.c */

static const struct command client_subcommands[] = {
    { "id", cmd_client_id, 2, L, 0, 0, 0, "connection", "Returns the unique client ID of the connection.", NULL },
    { "setname", cmd_client_setname, 3, L, 0, 0, 0, "connection", "Sets the connection name.", NULL },
    { "getname", cmd_client_getname, 2, L, 0, 0, 0, "connection", "Returns the name of the connection.", NULL },
    { "setinfo", cmd_client_setinfo, 4, L | F, 0, 0, 0, "connection", "Sets information specific to the client or connection.", NULL },
    { "info", cmd_client_info, 2, L, 0, 0, 0, "connection", "Returns information about the connection.", NULL },
    { "list", cmd_client_list, -2, L | A, 0, 0, 0, "connection", "Lists open connections.", NULL },
    { "kill", cmd_client_kill, -3, L | A, 0, 0, 0, "connection", "Terminates open connections.", NULL },
    { "no-evict", cmd_client_no_evict, 3, L | A, 0, 0, 0, "connection", "Sets the client eviction mode of the connection.", NULL },
    { "no-touch", cmd_client_no_touch, 3, L | F, 0, 0, 0, "connection", "Controls whether commands sent by the client affect the LRU/LFU of accessed keys.", NULL },
    { "reply", cmd_client_reply, 3, L, 0, 0, 0, "connection", "Instructs the server whether to reply to commands.", NULL },
    { "help", cmd_client_help, 2, L, 0, 0, 0, "connection", "Returns helpful text about the different subcommands.", NULL },
    { NULL, NULL, 0, 0, 0, 0, 0, NULL, NULL, NULL },
};

static const struct command command_subcommands[] = {
    { "count", cmd_command_count, 2, L | CN, 0, 0, 0, "server", "Returns a count of commands.", NULL },
    { "info", cmd_command_info, -2, L | CN, 0, 0, 0, "server", "Returns information about one, multiple or all commands.", NULL },
    { "docs", cmd_command_docs, -2, L | CN, 0, 0, 0, "server", "Returns documentary information about one, multiple or all commands.", NULL },
    { "list", cmd_command_list, -2, L | CN, 0, 0, 0, "server", "Returns a list of command names.", NULL },
    { "help", cmd_command_help, 2, L | CN, 0, 0, 0, "server", "Returns helpful text about the different subcommands.", NULL },
    { NULL, NULL, 0, 0, 0, 0, 0, NULL, NULL, NULL },
};

static const struct command config_subcommands[] = {
    { "get", cmd_config_get, -3, L | A, 0, 0, 0, "server", "Returns the effective values of configuration parameters.", NULL },
    { "set", cmd_config_set, -4, L | A, 0, 0, 0, "server", "Sets configuration parameters in-flight.", NULL },
    { "resetstat", cmd_config_resetstat, 2, L | A, 0, 0, 0, "server", "Resets the server's statistics.", NULL },
    { "rewrite", cmd_config_rewrite, 2, L | A, 0, 0, 0, "server", "Persists the effective configuration to file.", NULL },
    { "help", cmd_config_help, 2, L, 0, 0, 0, "server", "Returns helpful text about the different subcommands.", NULL },
    { NULL, NULL, 0, 0, 0, 0, 0, NULL, NULL, NULL },
};

static const struct command slowlog_subcommands[] = {
    { "get", cmd_slowlog_get, -2, L | A, 0, 0, 0, "server", "Returns the slow log's entries.", NULL },
    { "len", cmd_slowlog_len, 2, L | A, 0, 0, 0, "server", "Returns the number of entries in the slow log.", NULL },
    { "reset", cmd_slowlog_reset, 2, L | A, 0, 0, 0, "server", "Clears all entries from the slow log.", NULL },
    { "help", cmd_slowlog_help, 2, L, 0, 0, 0, "server", "Returns helpful text about the different subcommands.", NULL },
    { NULL, NULL, 0, 0, 0, 0, 0, NULL, NULL, NULL },
};

static const struct command acl_subcommands[] = {
    { "whoami", cmd_acl_whoami, 2, L, 0, 0, 0, "server", "Returns the authenticated username of the current connection.", NULL },
    { "users", cmd_acl_users, 2, L | A, 0, 0, 0, "server", "Lists all ACL users.", NULL },
    { "list", cmd_acl_list, 2, L | A, 0, 0, 0, "server", "Dumps the effective rules in ACL file format.", NULL },
    { "cat", cmd_acl_cat, -2, L, 0, 0, 0, "server", "Lists the ACL categories, or the commands inside a category.", NULL },
    { "help", cmd_acl_help, 2, L, 0, 0, 0, "server", "Returns helpful text about the different subcommands.", NULL },
    { NULL, NULL, 0, 0, 0, 0, 0, NULL, NULL, NULL },
};

static const struct command sidecar_subcommands[] = {
    { "stats", cmd_sidecar_stats, 2, L, 0, 0, 0, "sidecar", "Returns the local store's and the near-cache's figures.", NULL },
    { "flush", cmd_sidecar_flush, 2, L | A, 0, 0, 0, "sidecar", "Empties the local store (the near-cache), never the upstream.", NULL },
    { "keys", cmd_sidecar_keys, 3, L | A, 0, 0, 0, "sidecar", "Returns the keys of the local store that match a pattern.", NULL },
    { "reload", cmd_sidecar_reload, 2, L | A, 0, 0, 0, "sidecar", "Re-reads the configuration file.", NULL },
    { "help", cmd_sidecar_help, 2, L, 0, 0, 0, "sidecar", "Returns helpful text about the different subcommands.", NULL },
    { NULL, NULL, 0, 0, 0, 0, 0, NULL, NULL, NULL },
};

const struct command core_commands[] = {
    /* connection and server: always answered here */
    { "ping", cmd_ping, -1, L | F, 0, 0, 0, "connection", "Returns the server's liveliness response.", NULL },
    { "echo", cmd_echo, 2, L | F, 0, 0, 0, "connection", "Returns the given string.", NULL },
    { "quit", cmd_quit, -1, L | N | F, 0, 0, 0, "connection", "Closes the connection.", NULL },
    { "reset", cmd_reset, 1, L | N | F, 0, 0, 0, "connection", "Resets the connection.", NULL },
    { "hello", cmd_hello, -1, L | N | F, 0, 0, 0, "connection", "Handshakes with the Redis server.", NULL },
    { "auth", cmd_auth, -2, L | N | F, 0, 0, 0, "connection", "Authenticates the connection.", NULL },
    { "select", cmd_select, 2, L | F, 0, 0, 0, "connection", "Changes the selected database.", NULL },
    { "client", NULL, -2, L, 0, 0, 0, "connection", "A container for client connection commands.", client_subcommands },
    { "command", cmd_command, -1, L | CN, 0, 0, 0, "server", "Returns detailed information about all commands.", command_subcommands },
    { "acl", NULL, -2, L, 0, 0, 0, "server", "A container for Access List Control commands.", acl_subcommands },
    { "config", NULL, -2, L | A, 0, 0, 0, "server", "A container for server configuration commands.", config_subcommands },
    { "info", cmd_info, -1, L | D, 0, 0, 0, "server", "Returns information and statistics about the server.", NULL },
    { "slowlog", NULL, -2, L, 0, 0, 0, "server", "A container for slow log commands.", slowlog_subcommands },
    { "monitor", cmd_monitor, 1, L | A, 0, 0, 0, "server", "Listens for all requests received by the server in real-time.", NULL },
    { "sidecar", NULL, -2, L, 0, 0, 0, "sidecar", "A container for the sidecar's own commands.", sidecar_subcommands },
    { "time", cmd_time, 1, L | F, 0, 0, 0, "server", "Returns the server time.", NULL },
    { "dbsize", cmd_dbsize, 1, R | F | K | KS, 0, 0, 0, "server", "Returns the number of keys in the database.", NULL },
    { "flushdb", cmd_flushdb, -1, W | K | D | KS, 0, 0, 0, "server", "Removes all keys from the current database.", NULL },
    { "flushall", cmd_flushall, -1, W | K | D | KS, 0, 0, 0, "server", "Removes all keys from all databases.", NULL },
    /* strings */
    { "get", cmd_get, 2, R | C | F | K, 1, 1, 1, "string", "Returns the string value of a key.", NULL },
    { "set", cmd_set, -3, W | M | K, 1, 1, 1, "string", "Sets the string value of a key, ignoring its type.", NULL },
    { "setnx", cmd_setnx, 3, W | M | F | K, 1, 1, 1, "string", "Set the string value of a key only when the key doesn't exist.", NULL },
    { "setex", cmd_setex, 4, W | M | K, 1, 1, 1, "string", "Sets the string value and expiration time of a key.", NULL },
    { "psetex", cmd_psetex, 4, W | M | K, 1, 1, 1, "string", "Sets both string value and expiration time in milliseconds of a key.", NULL },
    { "getset", cmd_getset, 3, W | M | F | K, 1, 1, 1, "string", "Returns the previous string value of a key after setting it to a new value.", NULL },
    { "getdel", cmd_getdel, 2, W | F | K, 1, 1, 1, "string", "Returns the string value of a key after deleting the key.", NULL },
    { "getex", cmd_getex, -2, W | F | K, 1, 1, 1, "string", "Returns the string value of a key after setting its expiration time.", NULL },
    { "mget", cmd_mget, -2, R | C | F | K, 1, -1, 1, "string", "Atomically returns the string values of one or more keys.", NULL },
    { "mset", cmd_mset, -3, W | M | K, 1, -1, 2, "string", "Atomically creates or modifies the string values of one or more keys.", NULL },
    { "msetnx", cmd_msetnx, -3, W | M | K, 1, -1, 2, "string", "Atomically modifies the string values of one or more keys only when all keys don't exist.", NULL },
    { "append", cmd_append, 3, W | M | F | K, 1, 1, 1, "string", "Appends a string to the value of a key. Creates the key if it doesn't exist.", NULL },
    { "strlen", cmd_strlen, 2, R | C | F | K, 1, 1, 1, "string", "Returns the length of a string value.", NULL },
    { "getrange", cmd_getrange, 4, R | C | K, 1, 1, 1, "string", "Returns a substring of the string stored at a key.", NULL },
    { "substr", cmd_getrange, 4, R | C | K, 1, 1, 1, "string", "Returns a substring from a string value.", NULL },
    { "setrange", cmd_setrange, 4, W | M | K, 1, 1, 1, "string", "Overwrites a part of a string value with another by an offset. Creates the key if it doesn't exist.", NULL },
    { "incr", cmd_incr, 2, W | M | F | K, 1, 1, 1, "string", "Increments the integer value of a key by one. Uses 0 as initial value if the key doesn't exist.", NULL },
    { "decr", cmd_decr, 2, W | M | F | K, 1, 1, 1, "string", "Decrements the integer value of a key by one. Uses 0 as initial value if the key doesn't exist.", NULL },
    { "incrby", cmd_incrby, 3, W | M | F | K, 1, 1, 1, "string", "Increments the integer value of a key by a number. Uses 0 as initial value if the key doesn't exist.", NULL },
    { "decrby", cmd_decrby, 3, W | M | F | K, 1, 1, 1, "string", "Decrements a number from the integer value of a key. Uses 0 as initial value if the key doesn't exist.", NULL },
    { "incrbyfloat", cmd_incrbyfloat, 3, W | M | F | K, 1, 1, 1, "string", "Increment the floating point value of a key by a number. Uses 0 as initial value if the key doesn't exist.", NULL },
    /* keyspace */
    { "del", cmd_del, -2, W | K, 1, -1, 1, "generic", "Deletes one or more keys.", NULL },
    { "unlink", cmd_unlink, -2, W | F | K, 1, -1, 1, "generic", "Asynchronously deletes one or more keys.", NULL },
    { "exists", cmd_exists, -2, R | C | F | K, 1, -1, 1, "generic", "Determines whether one or more keys exist.", NULL },
    { "type", cmd_type, 2, R | C | F | K, 1, 1, 1, "generic", "Determines the type of value stored at a key.", NULL },
    { "touch", cmd_touch, -2, R | F | K, 1, -1, 1, "generic", "Returns the number of existing keys out of those specified after updating the time they were last accessed.", NULL },
    { "expire", cmd_expire, -3, W | F | K, 1, 1, 1, "generic", "Sets the expiration time of a key in seconds.", NULL },
    { "pexpire", cmd_pexpire, -3, W | F | K, 1, 1, 1, "generic", "Sets the expiration time of a key in milliseconds.", NULL },
    { "expireat", cmd_expireat, -3, W | F | K, 1, 1, 1, "generic", "Sets the expiration time of a key to a Unix timestamp.", NULL },
    { "pexpireat", cmd_pexpireat, -3, W | F | K, 1, 1, 1, "generic", "Sets the expiration time of a key to a Unix milliseconds timestamp.", NULL },
    { "ttl", cmd_ttl, 2, R | F | K, 1, 1, 1, "generic", "Returns the expiration time in seconds of a key.", NULL },
    { "pttl", cmd_pttl, 2, R | F | K, 1, 1, 1, "generic", "Returns the expiration time in milliseconds of a key.", NULL },
    { "expiretime", cmd_expiretime, 2, R | F | K, 1, 1, 1, "generic", "Returns the expiration time of a key as a Unix timestamp.", NULL },
    { "pexpiretime", cmd_pexpiretime, 2, R | F | K, 1, 1, 1, "generic", "Returns the expiration time of a key as a Unix milliseconds timestamp.", NULL },
    { "persist", cmd_persist, 2, W | F | K, 1, 1, 1, "generic", "Removes the expiration time of a key.", NULL },
    { "rename", cmd_rename, 3, W | K, 1, 2, 1, "generic", "Renames a key and overwrites the destination.", NULL },
    { "renamenx", cmd_renamenx, 3, W | F | K, 1, 2, 1, "generic", "Renames a key only when the target key name doesn't exist.", NULL },
    { "copy", cmd_copy, -3, W | M | K, 1, 2, 1, "generic", "Copies the value of a key to a new key.", NULL },
    { "keys", cmd_keys, 2, R | K | D, 0, 0, 0, "generic", "Returns all key names that match a pattern.", NULL },
    { "scan", cmd_scan, -2, R | K, 0, 0, 0, "generic", "Iterates over the key names in the database.", NULL },
    { "randomkey", cmd_randomkey, 1, R | K, 0, 0, 0, "generic", "Returns a random key name from the database.", NULL },
    { NULL, NULL, 0, 0, 0, 0, 0, NULL, NULL, NULL },
};

static uint32_t name_hash(const char *name, size_t len)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < len; i++) {
        h ^= (uint32_t)tolower((unsigned char)name[i]);
        h *= 16777619u;
    }
    return h;
}

static void index_insert(struct command_index *idx, const char *name, const struct command *c)
{
    uint32_t h = name_hash(name, strlen(name));
    for (uint32_t i = 0; i < COMMAND_INDEX_SLOTS; i++) {
        uint32_t s = (h + i) & (COMMAND_INDEX_SLOTS - 1);
        if (!idx->slot[s]) {
            idx->slot[s] = c;
            idx->slot_name[s] = name;
            return;
        }
    }
}

void command_index_build(struct command_index *idx)
{
    memset(idx, 0, sizeof(*idx));
    for (size_t f = 0; command_families[f]; f++) {
        for (const struct command *c = command_families[f]; c->name; c++) {
            if (idx->count == COMMAND_MAX)
                abort(); /* the index is sized at build time; a bigger table needs a bigger one */
            idx->all[idx->count++] = c;
            index_insert(idx, c->name, c);
        }
    }
}

static bool name_equals(const char *row, const char *name, size_t len)
{
    return strlen(row) == len && strncasecmp(row, name, len) == 0;
}

const struct command *command_lookup_original(const struct command_index *idx, const char *name,
                                              size_t len)
{
    for (size_t i = 0; i < idx->count; i++)
        if (name_equals(idx->all[i]->name, name, len))
            return idx->all[i];
    return NULL;
}

const struct command *command_lookup(const struct command_index *idx, const char *name,
                                     size_t len)
{
    uint32_t h = name_hash(name, len);
    for (uint32_t i = 0; i < COMMAND_INDEX_SLOTS; i++) {
        uint32_t s = (h + i) & (COMMAND_INDEX_SLOTS - 1);
        if (!idx->slot[s])
            return NULL;
        if (name_equals(idx->slot_name[s], name, len))
            return idx->slot[s];
    }
    return NULL;
}

bool command_is_hidden(const struct command_index *idx, const char *name, size_t len)
{
    for (size_t i = 0; i < idx->nhidden; i++)
        if (name_equals(idx->hidden[i], name, len))
            return true;
    return false;
}

int command_index_rename(struct command_index *idx, const struct config_rename *renames,
                         size_t n, bool forwarding, char *err, size_t errlen)
{
    const char *names[COMMAND_MAX];
    if (n > COMMAND_RENAMES_MAX) {
        snprintf(err, errlen, "[rename_commands] more than %d entries", COMMAND_RENAMES_MAX);
        return -1;
    }
    for (size_t i = 0; i < idx->count; i++)
        names[i] = idx->all[i]->name;
    for (size_t r = 0; r < n; r++) {
        const char *from = renames[r].from, *to = renames[r].to;
        const struct command *c = command_lookup_original(idx, from, strlen(from));
        if (strlen(from) > COMMAND_NAME_MAX || strlen(to) > COMMAND_NAME_MAX) {
            snprintf(err, errlen, "[rename_commands] '%s': names are at most %d bytes", from,
                     COMMAND_NAME_MAX);
            return -1;
        }
        if (!c && (*to || !forwarding)) {
            snprintf(err, errlen, "[rename_commands] '%s' is not a command of the sidecar%s", from,
                     forwarding ? " (a forwarded command can only be disabled: \"\")" : "");
            return -1;
        }
        if (*to && (command_lookup_original(idx, to, strlen(to)) &&
                    !command_is_hidden(idx, to, strlen(to)))) {
            bool renamed_too = false; /* "get = x" and "x = ..." */
            for (size_t q = 0; q < n; q++)
                renamed_too |= strcasecmp(renames[q].from, to) == 0;
            if (!renamed_too) {
                snprintf(err, errlen, "[rename_commands] '%s' cannot be renamed to '%s': a "
                                      "command has that name", from, to);
                return -1;
            }
        }
        snprintf(idx->hidden[idx->nhidden], sizeof(idx->hidden[0]), "%s", from);
        snprintf(idx->renamed[idx->nhidden], sizeof(idx->renamed[0]), "%s", to);
        for (size_t i = 0; c && i < idx->count; i++)
            if (idx->all[i] == c)
                names[i] = *to ? idx->renamed[idx->nhidden] : NULL;
        idx->nhidden++;
    }
    memset(idx->slot, 0, sizeof(idx->slot));
    memset(idx->slot_name, 0, sizeof(idx->slot_name));
    for (size_t i = 0; i < idx->count; i++)
        if (names[i])
            index_insert(idx, names[i], idx->all[i]);
    return 0;
}

const struct command *command_lookup_sub(const struct command *table, const char *name,
                                         size_t len)
{
    for (const struct command *c = table; c->name; c++)
        if (name_equals(c->name, name, len))
            return c;
    return NULL;
}

const struct command *command_parent(const struct command *cmd)
{
    for (size_t f = 0; command_families[f]; f++)
        for (const struct command *p = command_families[f]; p->name; p++)
            for (const struct command *sub = p->subcommands; sub && sub->name; sub++)
                if (sub == cmd)
                    return p;
    return NULL;
}

void command_fullname(const struct command *parent, const struct command *cmd, char *buf,
                      size_t cap)
{
    if (parent)
        snprintf(buf, cap, "%s|%s", parent->name, cmd->name);
    else
        snprintf(buf, cap, "%s", cmd->name);
}
