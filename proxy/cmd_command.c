/* COMMAND and its subcommands: COUNT INFO DOCS LIST HELP. Owns how a command table row is
 * described to clients: Redis 7's 10-element COMMAND INFO entry (flags and ACL categories
 * derived from the row's flags and group), the COMMAND DOCS map, and COMMAND LIST's filters.
 * Invariants: everything is generated from the command index (every family table) and each
 * row's subcommand table,
 * never from a list of names here; a container row (no handler of its own, e.g. CONFIG) has no
 * flags and only @slow, as in Redis; subcommands are named "parent|sub" (Redis 7's fullname). */
#include "proxy/args.h"
#include "proxy/command.h"
#include "proxy/reply.h"
#include "proxy/server.h"

#include "conf/glob.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define COMMAND_FULLNAME_MAX 96
#define COMMAND_DOCS_SINCE "1.0.0"

/* COMMAND INFO flags, in Redis's order. */
static const struct {
    unsigned flag;
    const char *name;
} command_flag_names[] = {
    { CMD_WRITE, "write" }, { CMD_READ, "readonly" }, { CMD_DENYOOM, "denyoom" },
    { CMD_ADMIN, "admin" }, { CMD_BLOCKING, "blocking" }, { CMD_FAST, "fast" },
    { CMD_NOAUTH, "no_auth" }, { CMD_MOVABLEKEYS, "movablekeys" },
};


#define NELEMS(a) (sizeof(a) / sizeof((a)[0]))

static bool command_is_container(const struct command *cmd)
{
    return cmd->proc == NULL;
}

static unsigned command_flags(const struct command *cmd)
{
    return command_is_container(cmd) ? 0 : cmd->flags;
}


static size_t subcommand_count(const struct command *cmd)
{
    size_t n = 0;
    for (const struct command *s = cmd->subcommands; s && s->name; s++)
        n++;
    return n;
}

/* The row named "name" or "parent|sub" (case-insensitive); *parent gets the parent row. */
static const struct command *command_find(const struct server *srv, const struct resp_arg *a,
                                          const struct command **parent)
{
    const char *bar = memchr(a->ptr, '|', a->len);
    *parent = NULL;
    if (!bar)
        return command_lookup(&srv->commands, a->ptr, a->len);
    const struct command *p = command_lookup(&srv->commands, a->ptr, (size_t)(bar - a->ptr));
    if (!p || !p->subcommands)
        return NULL;
    *parent = p;
    return command_lookup_sub(p->subcommands, bar + 1, a->len - (size_t)(bar - a->ptr) - 1);
}

/* ---- COMMAND INFO ---- */

static void reply_command_flags(struct client *c, const struct command *cmd)
{
    unsigned f = command_flags(cmd);
    size_t n = 0;
    for (size_t i = 0; i < NELEMS(command_flag_names); i++)
        n += (f & command_flag_names[i].flag) != 0;
    reply_set(c, n);
    for (size_t i = 0; i < NELEMS(command_flag_names); i++)
        if (f & command_flag_names[i].flag)
            reply_status(c, command_flag_names[i].name);
}

static void reply_command_categories(struct client *c, const struct command *cmd)
{
    char name[32];
    size_t n = 0;
    for (size_t i = 0; i < command_category_count; i++)
        n += command_category_has(&command_categories[i], cmd);
    reply_set(c, n);
    for (size_t i = 0; i < command_category_count; i++) {
        if (!command_category_has(&command_categories[i], cmd))
            continue;
        snprintf(name, sizeof(name), "@%s", command_categories[i].name);
        reply_status(c, name);
    }
}

/* One COMMAND INFO entry: name, arity, flags, first/last key, step, ACL categories, tips,
 * key specs, subcommands. */
static void reply_command_info(struct client *c, const struct command *parent,
                               const struct command *cmd)
{
    char name[COMMAND_FULLNAME_MAX];
    command_fullname(parent, cmd, name, sizeof(name));
    reply_array(c, 10);
    reply_bulk_cstr(c, name);
    reply_int(c, cmd->arity);
    reply_command_flags(c, cmd);
    reply_int(c, cmd->first_key);
    reply_int(c, cmd->last_key);
    reply_int(c, cmd->key_step);
    reply_command_categories(c, cmd);
    reply_set(c, 0); /* tips */
    reply_set(c, 0); /* key specs */
    size_t nsub = subcommand_count(cmd);
    if (nsub == 0) {
        reply_set(c, 0); /* Redis: an empty set, an array when there are subcommands */
        return;
    }
    reply_array(c, nsub);
    for (const struct command *s = cmd->subcommands; s->name; s++)
        reply_command_info(c, cmd, s);
}

static void reply_all_command_infos(struct client *c)
{
    const struct command_index *idx = &c->srv->commands;
    reply_array(c, idx->count);
    for (size_t i = 0; i < idx->count; i++)
        reply_command_info(c, NULL, idx->all[i]);
}

void cmd_command(struct client *c)
{
    reply_all_command_infos(c);
}

void cmd_command_count(struct client *c)
{
    reply_int(c, (long long)c->srv->commands.count);
}

/* COMMAND INFO [name ...]: all commands without names; a null for an unknown name. */
void cmd_command_info(struct client *c)
{
    if (c->argc == 2) {
        reply_all_command_infos(c);
        return;
    }
    reply_array(c, c->argc - 2);
    for (size_t i = 2; i < c->argc; i++) {
        const struct command *parent, *cmd = command_find(c->srv, &c->argv[i], &parent);
        if (cmd)
            reply_command_info(c, parent, cmd);
        else
            reply_null(c);
    }
}

/* ---- COMMAND DOCS ---- */

/* name -> {summary, since, group[, subcommands]} */
static void reply_command_docs(struct client *c, const struct command *parent,
                               const struct command *cmd)
{
    char name[COMMAND_FULLNAME_MAX];
    command_fullname(parent, cmd, name, sizeof(name));
    reply_bulk_cstr(c, name);
    size_t nsub = subcommand_count(cmd);
    reply_map(c, nsub ? 4 : 3);
    reply_bulk_cstr(c, "summary");
    reply_bulk_cstr(c, cmd->summary ? cmd->summary : "");
    reply_bulk_cstr(c, "since");
    reply_bulk_cstr(c, COMMAND_DOCS_SINCE);
    reply_bulk_cstr(c, "group");
    reply_bulk_cstr(c, cmd->group ? cmd->group : "");
    if (!nsub)
        return;
    reply_bulk_cstr(c, "subcommands");
    reply_map(c, nsub);
    for (const struct command *s = cmd->subcommands; s->name; s++)
        reply_command_docs(c, cmd, s);
}

/* COMMAND DOCS [name ...]: a map; unknown names are left out. */
void cmd_command_docs(struct client *c)
{
    if (c->argc == 2) {
        const struct command_index *idx = &c->srv->commands;
        reply_map(c, idx->count);
        for (size_t i = 0; i < idx->count; i++)
            reply_command_docs(c, NULL, idx->all[i]);
        return;
    }
    const struct command *parent;
    size_t found = 0;
    for (size_t i = 2; i < c->argc; i++)
        found += command_find(c->srv, &c->argv[i], &parent) != NULL;
    reply_map(c, found);
    for (size_t i = 2; i < c->argc; i++) {
        const struct command *cmd = command_find(c->srv, &c->argv[i], &parent);
        if (cmd)
            reply_command_docs(c, parent, cmd);
    }
}

/* ---- COMMAND LIST ---- */

enum list_filter { FILTER_NONE, FILTER_MODULE, FILTER_ACLCAT, FILTER_PATTERN };

static const struct {
    const char *name;
    enum list_filter type;
} list_filters[] = {
    { "module", FILTER_MODULE },
    { "aclcat", FILTER_ACLCAT },
    { "pattern", FILTER_PATTERN },
};

struct list_query {
    enum list_filter type;
    const struct resp_arg *arg;
    const struct command_category *cat; /* FILTER_ACLCAT: NULL when the name is unknown */
};

static bool list_matches(const struct list_query *q, const struct command *cmd, const char *name)
{
    switch (q->type) {
    case FILTER_NONE:
        return true;
    case FILTER_MODULE:
        return false; /* no modules */
    case FILTER_ACLCAT:
        return q->cat && command_category_has(q->cat, cmd);
    case FILTER_PATTERN:
        return glob_match(q->arg->ptr, q->arg->len, name, strlen(name), true);
    }
    return false;
}

/* Replies the matching names of cmd and its subcommands; returns how many. */
static size_t list_reply_matches(struct client *c, const struct list_query *q,
                                 const struct command *parent, const struct command *cmd)
{
    char name[COMMAND_FULLNAME_MAX];
    size_t n = 0;
    command_fullname(parent, cmd, name, sizeof(name));
    if (list_matches(q, cmd, name)) {
        reply_bulk_cstr(c, name);
        n++;
    }
    for (const struct command *s = cmd->subcommands; s && s->name; s++)
        n += list_reply_matches(c, q, cmd, s);
    return n;
}

/* Parses [FILTERBY MODULE|ACLCAT|PATTERN arg]; false after replying a syntax error. */
static bool list_parse(struct client *c, struct list_query *q)
{
    q->type = FILTER_NONE;
    if (c->argc == 2)
        return true;
    if (c->argc != 5 || !arg_is(&c->argv[2], "filterby")) {
        reply_error(c, ERR_SYNTAX);
        return false;
    }
    for (size_t i = 0; i < NELEMS(list_filters); i++)
        if (arg_is(&c->argv[3], list_filters[i].name))
            q->type = list_filters[i].type;
    if (q->type == FILTER_NONE) {
        reply_error(c, ERR_SYNTAX);
        return false;
    }
    q->arg = &c->argv[4];
    q->cat = command_category_find(q->arg->ptr, q->arg->len);
    return true;
}

/* COMMAND LIST [FILTERBY ...]: every command and subcommand name that matches. */
void cmd_command_list(struct client *c)
{
    struct list_query q;
    if (!list_parse(c, &q))
        return;
    size_t handle = reply_defer_len(c);
    size_t n = 0;
    const struct command_index *idx = &c->srv->commands;
    for (size_t i = 0; i < idx->count; i++)
        n += list_reply_matches(c, &q, NULL, idx->all[i]);
    reply_set_deferred_len(c, handle, n);
}

/* Redis's help text, for the subcommands served here. */
static const char *const command_help[] = {
    "COMMAND <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "(no subcommand)",
    "    Return details about all Redis commands.",
    "COUNT",
    "    Return the total number of commands in this Redis server.",
    "LIST",
    "    Return a list of all commands in this Redis server.",
    "INFO [<command-name> ...]",
    "    Return details about multiple Redis commands.",
    "    If no command names are given, documentation details for all",
    "    commands are returned.",
    "DOCS [<command-name> ...]",
    "    Return documentation details about multiple Redis commands.",
    "    If no command names are given, documentation details for all",
    "    commands are returned.",
    "HELP",
    "    Prints this help.",
};

void cmd_command_help(struct client *c)
{
    reply_help(c, command_help, NELEMS(command_help));
}
