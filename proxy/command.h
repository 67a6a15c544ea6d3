/* The command table: one row per command (name, handler, arity in Redis's sign convention,
 * flags, key positions, group) and the index that finds a row by name. No code outside
 * command_table.c compares command names; subcommands (CLIENT, CONFIG, COMMAND) use the same
 * row type in their own small tables. */
#ifndef PROXY_COMMAND_H
#define PROXY_COMMAND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct client;

/* Routing and behaviour flags (DESIGN.md section 3). */
#define CMD_READ 0x0001u
#define CMD_WRITE 0x0002u
#define CMD_CACHEABLE 0x0004u  /* a read whose reply the near-cache may keep */
#define CMD_LOCAL 0x0008u      /* always answered by the sidecar itself */
#define CMD_STATEFUL 0x0010u   /* needs its own upstream connection */
#define CMD_ADMIN 0x0020u
#define CMD_DENYOOM 0x0040u    /* may grow memory: refused with -OOM when over budget */
#define CMD_FAST 0x0080u
#define CMD_NOAUTH 0x0100u     /* allowed before AUTH */
#define CMD_KEYSPACE 0x0200u   /* works on keys of the selected database */
#define CMD_MOVABLEKEYS 0x0400u /* key positions come from the arguments (numkeys) */
#define CMD_BLOCKING 0x0800u   /* may block the client (BLPOP ...) */
#define CMD_DANGEROUS 0x1000u  /* Redis's @dangerous without being @admin (FLUSHALL, KEYS, INFO) */
#define CMD_CAT_KEYSPACE 0x2000u   /* in @keyspace outside the generic group (FLUSHALL, DBSIZE) */
#define CMD_CAT_CONNECTION 0x4000u /* in @connection outside its group (COMMAND and its subcommands) */

typedef void command_proc(struct client *c);

struct command {
    const char *name;     /* lower case */
    command_proc *proc;
    int arity;            /* > 0: exactly; < 0: at least -arity (the name counts) */
    unsigned flags;
    int first_key, last_key, key_step; /* COMMAND INFO key positions (last -1 = to the end) */
    const char *group;    /* COMMAND DOCS group: string, generic, connection, server */
    const char *summary;
    const struct command *subcommands; /* NULL-terminated table, or NULL */
};

#define COMMAND_INDEX_SLOTS 1024 /* power of two, > 2x the number of commands */
#define COMMAND_MAX (COMMAND_INDEX_SLOTS / 2)
#define COMMAND_RENAMES_MAX 64   /* [rename_commands] entries (CONFIG_RENAMES_MAX) */
#define COMMAND_NAME_MAX 64      /* bytes of a new name */

/* Built once at start from every family table: an open-addressing index by name, and every
 * top-level row in table order (COMMAND, COMMAND COUNT, INFO commandstats walk `all`).
 * [rename_commands] (command_index_rename) changes the names the index finds rows by: a
 * renamed row is found under its new name only, a disabled one not at all; both original
 * names are `hidden` (never forwarded upstream either). */
struct command_index {
    const struct command *slot[COMMAND_INDEX_SLOTS];
    const char *slot_name[COMMAND_INDEX_SLOTS]; /* the name slot[i] is found by */
    const struct command *all[COMMAND_MAX];
    size_t count;
    char renamed[COMMAND_RENAMES_MAX][COMMAND_NAME_MAX + 1]; /* new names (slot_name targets) */
    char hidden[COMMAND_RENAMES_MAX][COMMAND_NAME_MAX + 1];  /* original names taken away */
    size_t nhidden;
};

/* The family tables, each NULL-terminated and defined next to its handlers (core commands in
 * command_table.c; hash_commands in cmd_hash.c, ...), listed in command_families.c. */
extern const struct command *const command_families[];

void command_index_build(struct command_index *idx);
struct config_rename;
/* Applies [rename_commands] to an index just built: "from" is then found as "to" only, or not
 * at all when to is "". A name the table lacks may only be disabled, and only when forwarding
 * (near-cache: it would otherwise go to the upstream). -1 with the reason in err. */
int command_index_rename(struct command_index *idx, const struct config_rename *renames,
                         size_t n, bool forwarding, char *err, size_t errlen);
/* Whether name was renamed away or disabled (dispatch must not forward it). */
bool command_is_hidden(const struct command_index *idx, const char *name, size_t len);
/* The top-level row whose original table name is name (ACL rules name commands this way,
 * renamed or not), or NULL. */
const struct command *command_lookup_original(const struct command_index *idx, const char *name,
                                              size_t len);
/* The row for name (case-insensitive), or NULL. */
const struct command *command_lookup(const struct command_index *idx, const char *name,
                                     size_t len);
/* A row of a subcommand table (case-insensitive), or NULL. */
const struct command *command_lookup_sub(const struct command *table, const char *name,
                                         size_t len);
/* The row whose subcommand table holds cmd, or NULL for a top-level command. */
const struct command *command_parent(const struct command *cmd);
/* "client|setname" for a subcommand, "get" for a command (Redis 7's fullname). */
void command_fullname(const struct command *parent, const struct command *cmd, char *buf,
                      size_t cap);

/* Redis 7's ACL categories in Redis's order (command_category.c): ACL rules, ACL CAT, COMMAND
 * INFO and COMMAND LIST FILTERBY ACLCAT all read this one table. */
struct command_category {
    const char *name;     /* without the '@' */
    unsigned flag, unless;
    const char *group;
};
extern const struct command_category command_categories[];
extern const size_t command_category_count;
/* Whether cmd (a row of any table; a container row is @slow only) is in cat. */
bool command_category_has(const struct command_category *cat, const struct command *cmd);
/* The category named name (case-insensitive, no '@'), or NULL. */
const struct command_category *command_category_find(const char *name, size_t len);

/* The core table: connection, server, strings, keyspace (command_table.c). */
extern const struct command core_commands[];

/* ---- handlers, one file per family ---- */
/* proxy/cmd_connection.c */
command_proc cmd_ping, cmd_echo, cmd_quit, cmd_reset, cmd_hello, cmd_auth, cmd_select,
    cmd_time;
/* proxy/cmd_command.c */
command_proc cmd_command;
/* proxy/cmd_info.c */
command_proc cmd_info;
/* KEYS over database db of the local store (KEYS, SIDECAR KEYS): an array of the names. */
struct resp_arg;
void keys_reply_matching(struct client *c, int db, const struct resp_arg *pat);
/* proxy/cmd_sidecar.c: the SIDECAR command (what is the sidecar's own) */
command_proc cmd_sidecar_stats, cmd_sidecar_flush, cmd_sidecar_keys, cmd_sidecar_reload,
    cmd_sidecar_help;
/* proxy/cmd_strings.c */
command_proc cmd_get, cmd_set, cmd_setnx, cmd_setex, cmd_psetex, cmd_getset, cmd_getdel,
    cmd_getex, cmd_mget, cmd_mset, cmd_msetnx, cmd_append, cmd_strlen, cmd_getrange,
    cmd_setrange, cmd_incr, cmd_decr, cmd_incrby, cmd_decrby, cmd_incrbyfloat;
/* proxy/cmd_keys.c */
command_proc cmd_del, cmd_unlink, cmd_exists, cmd_type, cmd_touch, cmd_expire, cmd_pexpire,
    cmd_expireat, cmd_pexpireat, cmd_ttl, cmd_pttl, cmd_expiretime, cmd_pexpiretime,
    cmd_persist, cmd_rename, cmd_renamenx, cmd_copy, cmd_keys, cmd_scan, cmd_randomkey,
    cmd_dbsize, cmd_flushdb, cmd_flushall;

#endif
