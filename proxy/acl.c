/* Access control (see acl.h): building the users, AUTH's check, the permission check, and the
 * ACL WHOAMI / USERS / LIST / HELP subcommands.
 * ACL categories are command_category.c's table, the one COMMAND INFO shows: a row is in a
 * category by its flags (@read = CMD_READ, @write = CMD_WRITE, @admin = CMD_ADMIN, @dangerous =
 * CMD_ADMIN or CMD_DANGEROUS, @fast, @slow, @blocking) or by its group (@connection, @keyspace,
 * @string, @hash, @list, @set, @sortedset, @pubsub, @transaction...). Rules apply in order, the
 * last one that names a command decides, nothing is allowed before the first rule. */
#include "proxy/acl.h"

#include "conf/config.h"
#include "conf/sha256.h"
#include "conf/xmalloc.h"
#include "proxy/client.h"
#include "proxy/reply.h"
#include "proxy/server.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define ACL_CATEGORY_ALL (-1)
#define ACL_RULE_TEXT_MAX 4096


struct acl_rule {
    bool allow;
    int category;                /* index in command_categories, ACL_CATEGORY_ALL, or -2 = cmd */
    const struct command *cmd;   /* a command row (all its subcommands) or a subcommand row */
};

struct acl_user {
    char *name;
    bool enabled, nopass;
    size_t nhashes;
    unsigned char hashes[CONFIG_USER_HASHES_MAX][SHA256_DIGEST_LEN];
    struct acl_rule *rules;
    size_t nrules;
    bool allows_all;             /* the last rule is +@all: every command, no walk */
    char *rules_text;            /* the rules as written, for ACL LIST */
};

struct acl {
    struct acl_user *users;      /* users[0] is the default user */
    size_t nusers;
};


/* The index of a category in command_categories, ACL_CATEGORY_ALL for "all", or -3. */
static int category_find(const char *name)
{
    if (strcasecmp(name, "all") == 0)
        return ACL_CATEGORY_ALL;
    const struct command_category *cat = command_category_find(name, strlen(name));
    return cat ? (int)(cat - command_categories) : -3;
}

/* "+@read", "-config|set", "+get" into r. -1 with the reason. */
static int rule_parse(const char *text, const struct command_index *idx, struct acl_rule *r,
                      char *err, size_t errlen)
{
    const char *name = text + 1;
    r->allow = text[0] == '+';
    r->cmd = NULL;
    if (name[0] == '@') {
        r->category = category_find(name + 1);
        if (r->category < -1) {
            snprintf(err, errlen, "unknown command category '%s' in rule '%s'", name + 1, text);
            return -1;
        }
        return 0;
    }
    r->category = -2;
    const char *bar = strchr(name, '|');
    size_t len = bar ? (size_t)(bar - name) : strlen(name);
    const struct command *cmd = command_lookup_original(idx, name, len);
    if (cmd && bar)
        cmd = cmd->subcommands ? command_lookup_sub(cmd->subcommands, bar + 1, strlen(bar + 1))
                               : NULL;
    if (!cmd) {
        snprintf(err, errlen, "unknown command '%s' in rule '%s' (rules name the commands the "
                              "sidecar knows; a forwarded command needs +@all)", name, text);
        return -1;
    }
    r->cmd = cmd;
    return 0;
}

static void user_free(struct acl_user *u)
{
    free(u->name);
    free(u->rules);
    free(u->rules_text);
    memset(u, 0, sizeof(*u));
}

static int user_build(struct acl_user *u, const struct config_user *cu,
                      const struct command_index *idx, char *err, size_t errlen)
{
    char why[512], text[ACL_RULE_TEXT_MAX];
    size_t used = 0;
    u->name = xstrdup(cu->name);
    u->enabled = cu->enabled;
    u->nopass = cu->nopass;
    u->nhashes = cu->nhashes;
    memcpy(u->hashes, cu->hashes, sizeof(u->hashes));
    u->rules = xcalloc(cu->nrules ? cu->nrules : 1, sizeof(*u->rules));
    text[0] = '\0';
    for (size_t i = 0; i < cu->nrules; i++) {
        if (rule_parse(cu->rules[i], idx, &u->rules[i], why, sizeof(why)) < 0) {
            snprintf(err, errlen, "[users] user '%s': %s", cu->name, why);
            return -1;
        }
        int n = snprintf(text + used, sizeof(text) - used, " %s", cu->rules[i]);
        if (n > 0 && (size_t)n < sizeof(text) - used)
            used += (size_t)n;
    }
    u->nrules = cu->nrules;
    u->rules_text = xstrdup(text);
    u->allows_all = u->nrules && u->rules[u->nrules - 1].allow &&
                    u->rules[u->nrules - 1].category == ACL_CATEGORY_ALL;
    return 0;
}

struct acl *acl_build(const struct config *cfg, const struct command_index *idx, char *err,
                      size_t errlen)
{
    static const char *const open_rules[] = { "+@all" };
    const struct config_user open_default = {
        .name = "default", .enabled = true, .nopass = true,
        .rules = (char **)open_rules, .nrules = 1,
    };
    const struct config_user *def = config_user_find(cfg, "default");
    struct acl *acl = xcalloc(1, sizeof(*acl));
    acl->users = xcalloc(cfg->nusers + 1, sizeof(*acl->users));
    if (user_build(&acl->users[0], def ? def : &open_default, idx, err, errlen) < 0)
        goto fail;
    acl->nusers = 1;
    for (size_t i = 0; i < cfg->nusers; i++) {
        if (&cfg->users[i] == def)
            continue;
        if (user_build(&acl->users[acl->nusers], &cfg->users[i], idx, err, errlen) < 0) {
            acl->nusers++;
            goto fail;
        }
        acl->nusers++;
    }
    if (cfg->requirepass && cfg->requirepass[0]) { /* requirepass: the default user's password */
        struct acl_user *d = &acl->users[0];
        sha256(cfg->requirepass, strlen(cfg->requirepass), d->hashes[0]);
        d->nhashes = 1;
        d->nopass = false;
    }
    return acl;
fail:
    if (acl->nusers == 0)
        acl->nusers = 1;
    acl_free(acl);
    return NULL;
}

void acl_free(struct acl *acl)
{
    if (!acl)
        return;
    for (size_t i = 0; i < acl->nusers; i++)
        user_free(&acl->users[i]);
    free(acl->users);
    free(acl);
}

const struct acl_user *acl_find_user(const struct acl *acl, const char *name, size_t len)
{
    for (size_t i = 0; i < acl->nusers; i++)
        if (strlen(acl->users[i].name) == len && memcmp(acl->users[i].name, name, len) == 0)
            return &acl->users[i];
    return NULL;
}

int acl_server_rebuild(struct server *srv, char *err, size_t errlen)
{
    struct acl *next = acl_build(&srv->cfg, &srv->commands, err, errlen);
    if (!next)
        return -1;
    for (struct client *c = srv->clients; c; c = c->next) {
        if (!c->user)
            continue;
        const struct acl_user *u = acl_find_user(next, c->user->name, strlen(c->user->name));
        if (!u) {
            log_warn(&srv->log, "Client id=%llu addr=%s closed: its user '%s' was removed",
                     (unsigned long long)c->id, c->addr, c->user->name);
            client_close(c);
        }
        c->user = u;
    }
    acl_free(srv->acl);
    srv->acl = next;
    return 0;
}

const struct acl_user *acl_authenticate(const struct acl *acl, const char *user, size_t ulen,
                                        const char *pass, size_t plen)
{
    unsigned char d[SHA256_DIGEST_LEN];
    const struct acl_user *u = user ? acl_find_user(acl, user, ulen) : &acl->users[0];
    bool match = false;
    sha256(pass, plen, d); /* always: the time spent does not depend on the user or password */
    for (size_t i = 0; u && i < u->nhashes; i++)
        match |= sha256_equal(d, u->hashes[i]); /* every digest, no early exit */
    explicit_bzero(d, sizeof(d));
    if (!u || !u->enabled || !(u->nopass || match))
        return NULL;
    return u;
}

bool acl_default_open(const struct acl *acl)
{
    return acl->users[0].enabled && acl->users[0].nopass;
}

bool acl_default_nopass(const struct acl *acl)
{
    return acl->users[0].nopass;
}

const struct acl_user *acl_client_user(const struct client *c)
{
    if (c->user || !c->srv->acl)
        return c->user;
    return &c->srv->acl->users[0];
}

const char *acl_user_name(const struct acl_user *u)
{
    return u ? u->name : "default";
}

void acl_client_reset(struct client *c)
{
    c->user = NULL;
    c->authenticated = c->srv->acl ? acl_default_open(c->srv->acl)
                                   : c->srv->cfg.requirepass[0] == '\0';
}

static bool rule_matches(const struct acl_rule *r, const struct command *parent,
                         const struct command *cmd)
{
    if (r->category == ACL_CATEGORY_ALL)
        return true;
    if (!cmd)
        return false; /* a forwarded command is in no category we know */
    if (r->category >= 0)
        return command_category_has(&command_categories[r->category], cmd);
    return r->cmd == cmd || (parent && r->cmd == parent);
}

bool acl_allows(const struct acl_user *u, const struct command *parent,
                const struct command *cmd)
{
    if (!u || u->allows_all) /* NULL: a server without users (unit tests) */
        return true;
    bool allowed = false;
    for (size_t i = 0; i < u->nrules; i++)
        if (rule_matches(&u->rules[i], parent, cmd))
            allowed = u->rules[i].allow;
    return allowed;
}

/* ---- ACL subcommands ---- */

void cmd_acl_whoami(struct client *c)
{
    reply_bulk_cstr(c, acl_client_user(c)->name);
}

static int user_cmp(const void *a, const void *b)
{
    const struct acl_user *const *x = a, *const *y = b;
    return strcmp((*x)->name, (*y)->name);
}

/* The users sorted by name, as Redis lists them. The array is the caller's to free. */
static const struct acl_user **users_sorted(const struct acl *acl)
{
    const struct acl_user **v = xcalloc(acl->nusers, sizeof(*v));
    for (size_t i = 0; i < acl->nusers; i++)
        v[i] = &acl->users[i];
    qsort(v, acl->nusers, sizeof(*v), user_cmp);
    return v;
}

void cmd_acl_users(struct client *c)
{
    const struct acl *acl = c->srv->acl;
    const struct acl_user **v = users_sorted(acl);
    reply_array(c, acl->nusers);
    for (size_t i = 0; i < acl->nusers; i++)
        reply_bulk_cstr(c, v[i]->name);
    free(v);
}

/* "user alice on #(redacted) ~* &* +@read": Redis's ACL LIST line with every password digest
 * shown as "#(redacted)" (the sidecar never shows password material). */
void cmd_acl_list(struct client *c)
{
    const struct acl *acl = c->srv->acl;
    const struct acl_user **v = users_sorted(acl);
    reply_array(c, acl->nusers);
    for (size_t i = 0; i < acl->nusers; i++) {
        const struct acl_user *u = v[i];
        struct strbuf b = { NULL, 0, 0 };
        strbuf_printf(&b, "user %s %s%s", u->name, u->enabled ? "on" : "off",
                      u->nopass ? " nopass" : "");
        for (size_t h = 0; h < u->nhashes; h++)
            strbuf_printf(&b, " #(redacted)");
        strbuf_printf(&b, " ~* &*%s", u->rules_text);
        reply_bulk(c, b.data, b.len);
        strbuf_free(&b);
    }
    free(v);
}

/* ACL CAT: the categories in Redis's order; ACL CAT category: its commands ("get",
 * "config|get"), by their table names. */
void cmd_acl_cat(struct client *c)
{
    if (c->argc > 3) {
        reply_errorf(c, "ERR unknown subcommand or wrong number of arguments for '%.*s'. Try "
                        "ACL HELP.", (int)c->argv[1].len, c->argv[1].ptr); /* as typed */
        return;
    }
    if (c->argc == 2) {
        reply_array(c, (long long)command_category_count);
        for (size_t i = 0; i < command_category_count; i++)
            reply_bulk_cstr(c, command_categories[i].name);
        return;
    }
    char name[32];
    snprintf(name, sizeof(name), "%.*s", (int)(c->argv[2].len < 31 ? c->argv[2].len : 31),
             c->argv[2].ptr);
    int cat = c->argv[2].len < 31 ? category_find(name) : -3;
    if (cat < 0) { /* "all" is not listed by Redis either */
        reply_errorf(c, "ERR Unknown category '%.*s'", (int)c->argv[2].len, c->argv[2].ptr);
        return;
    }
    const struct command_index *idx = &c->srv->commands;
    const struct command_category *k = &command_categories[cat];
    struct strbuf names = { NULL, 0, 0 };
    size_t n = 0;
    for (size_t i = 0; i < idx->count; i++) {
        const struct command *p = idx->all[i];
        if (p->proc && command_category_has(k, p)) {
            strbuf_printf(&names, "%s%c", p->name, '\0');
            n++;
        }
        for (const struct command *s = p->subcommands; s && s->name; s++)
            if (command_category_has(k, s)) {
                strbuf_printf(&names, "%s|%s%c", p->name, s->name, '\0');
                n++;
            }
    }
    reply_array(c, n);
    for (size_t off = 0; off < names.len; off += strlen(names.data + off) + 1)
        reply_bulk_cstr(c, names.data + off);
    strbuf_free(&names);
}

static const char *const acl_help[] = {
    "ACL <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "WHOAMI",
    "    Return the current connection username.",
    "USERS",
    "    List all the registered usernames.",
    "LIST",
    "    Show users details in config file format (password digests are not shown).",
    "CAT [<category>]",
    "    List all commands that belong to <category>, or all command categories",
    "    when no category is specified.",
    "HELP",
    "    Prints this help.",
    "Users are defined in the [users] section of sidecar.ini; they cannot be changed at run time.",
};

void cmd_acl_help(struct client *c)
{
    reply_help(c, acl_help, sizeof(acl_help) / sizeof(acl_help[0]));
}
