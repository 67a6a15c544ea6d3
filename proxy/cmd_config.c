/* CONFIG subcommands: GET SET RESETSTAT REWRITE HELP. The option table, names and value
 * formats belong to conf/config.c; this file owns the command semantics on top of it.
 * Invariants: CONFIG GET names each parameter once, however many patterns match it; CONFIG SET
 * is all-or-nothing (a failing pair restores every value changed by the pairs before it) and
 * only a fully applied SET reaches the running parts (server_apply_config). */
#include "proxy/args.h"
#include "proxy/cmdstats.h"
#include "proxy/errorstats.h"
#include "proxy/command.h"
#include "proxy/reply.h"
#include "proxy/server.h"

#include "cache/store.h"
#include "conf/xmalloc.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* A list of (name, value) copies, as collected from config_get(). */
struct config_pairs {
    char **name, **value;
    size_t n, cap;
};

/* config_get() callback: appends a copy unless the name is already there. */
static void pairs_add(void *ctx, const char *name, const char *value)
{
    struct config_pairs *p = ctx;
    for (size_t i = 0; i < p->n; i++)
        if (strcasecmp(p->name[i], name) == 0)
            return;
    if (p->n == p->cap) {
        p->cap = p->cap ? p->cap * 2 : 16;
        p->name = xrealloc(p->name, p->cap * sizeof(*p->name));
        p->value = xrealloc(p->value, p->cap * sizeof(*p->value));
    }
    p->name[p->n] = xstrdup(name);
    p->value[p->n] = xstrdup(value);
    p->n++;
}

/* CONFIG GET of a plain name (no glob characters): Redis shows the name as it was typed. */
struct config_get_exact {
    struct config_pairs *pairs;
    const char *typed;
};

static void pairs_add_as_typed(void *ctx, const char *name, const char *value)
{
    struct config_get_exact *e = ctx;
    (void)name;
    pairs_add(e->pairs, e->typed, value);
}

static void pairs_free(struct config_pairs *p)
{
    for (size_t i = 0; i < p->n; i++) {
        free(p->name[i]);
        free(p->value[i]);
    }
    free(p->name);
    free(p->value);
    memset(p, 0, sizeof(*p));
}

static char *arg_dup(const struct resp_arg *a)
{
    return xmemdup(a->ptr, a->len);
}

/* CONFIG GET pattern [pattern ...]: a map (RESP3) / flat array (RESP2) of name, value. */
void cmd_config_get(struct client *c)
{
    struct config_pairs p = { 0 };
    for (size_t i = 2; i < c->argc; i++) {
        char *pattern = arg_dup(&c->argv[i]);
        struct config_get_exact exact = { &p, pattern };
        if (strpbrk(pattern, "[*?"))
            config_get(&c->srv->cfg, pattern, pairs_add, &p);
        else
            config_get(&c->srv->cfg, pattern, pairs_add_as_typed, &exact);
        free(pattern);
    }
    reply_map(c, p.n);
    for (size_t i = 0; i < p.n; i++) {
        reply_bulk_cstr(c, p.name[i]);
        reply_bulk_cstr(c, p.value[i]);
    }
    pairs_free(&p);
}

/* Puts back every value that differs from the snapshot `before` (same table order). */
static void config_restore(struct config *cfg, const struct config_pairs *before)
{
    struct config_pairs now = { 0 };
    char err[CONFIG_ERR_LEN];
    config_get_raw(cfg, "*", pairs_add, &now);
    for (size_t i = 0; i < before->n && i < now.n; i++)
        if (strcmp(before->value[i], now.value[i]) != 0)
            config_set(cfg, before->name[i], before->value[i], err, sizeof(err));
    pairs_free(&now);
}

/* The first parameter name given twice (case-insensitive), or 0. */
static size_t config_set_duplicate(const struct client *c)
{
    for (size_t i = 4; i < c->argc; i += 2)
        for (size_t j = 2; j < i; j += 2)
            if (c->argv[i].len == c->argv[j].len &&
                strncasecmp(c->argv[i].ptr, c->argv[j].ptr, c->argv[i].len) == 0)
                return i;
    return 0;
}

/* Applies every pair in order; on the first failure restores `before` and replies. */
static bool config_set_all(struct client *c, const struct config_pairs *before)
{
    char err[CONFIG_ERR_LEN];
    for (size_t i = 2; i < c->argc; i += 2) {
        char *name = arg_dup(&c->argv[i]), *value = arg_dup(&c->argv[i + 1]);
        int rc = config_set(&c->srv->cfg, name, value, err, sizeof(err));
        free(name);
        free(value);
        if (rc < 0) {
            config_restore(&c->srv->cfg, before);
            reply_errorf(c, "ERR %s", err);
            return false;
        }
    }
    return true;
}

/* The values of secrets (config_is_secret: requirepass, upstream.password) are shown
 * "(redacted)" by SLOWLOG and MONITOR, as Redis redacts its sensitive
 * parameters. CONFIG GET never shows them (config_get). */
static void config_set_redact(struct client *c)
{
    for (size_t i = 2; i + 1 < c->argc; i += 2) {
        char *name = arg_dup(&c->argv[i]);
        if (config_is_secret(name))
            client_redact_arg(c, i + 1);
        free(name);
    }
}

/* CONFIG SET name value [name value ...] (Redis 7: several pairs, all or nothing). */
void cmd_config_set(struct client *c)
{
    config_set_redact(c);
    if (c->argc % 2) { /* an odd number of name/value words: Redis 7 says syntax error */
        reply_error(c, ERR_SYNTAX);
        return;
    }
    size_t dup = config_set_duplicate(c);
    if (dup) {
        reply_errorf(c, "ERR CONFIG SET failed (possibly related to argument '%.*s') - "
                        "duplicate parameter", (int)c->argv[dup].len, c->argv[dup].ptr);
        return;
    }
    struct config_pairs before = { 0 };
    char err[CONFIG_ERR_LEN];
    config_get_raw(&c->srv->cfg, "*", pairs_add, &before); /* the undo copy: secrets in clear */
    bool ok = config_set_all(c, &before);
    if (ok && config_check_protected(&c->srv->cfg, err, sizeof(err)) < 0) {
        /* requirepass "" (or protected-mode yes) on a non-loopback address: refused */
        config_restore(&c->srv->cfg, &before);
        reply_errorf(c, "ERR CONFIG SET failed (possibly related to argument '%.*s') - %s",
                     (int)c->argv[2].len, c->argv[2].ptr, err);
        ok = false;
    }
    pairs_free(&before);
    if (!ok)
        return;
    server_apply_config(c->srv); /* the users too: requirepass is the default user's password */
    reply_ok(c);
}

void cmd_config_resetstat(struct client *c)
{
    memset(&c->srv->stats, 0, sizeof(c->srv->stats));
    store_reset_stats(c->srv->store);
    cmdstats_reset(c->srv->cmdstats); /* issue 5: commandstats, latencystats */
    errorstats_reset(c->srv->errorstats); /* errorstats; the slowlog stays, as in Redis */
    reply_ok(c);
}

void cmd_config_rewrite(struct client *c)
{
    struct server *srv = c->srv;
    char err[CONFIG_ERR_LEN];
    if (!srv->config_path) {
        reply_error(c, "ERR The server is running without a config file");
        return;
    }
    if (config_rewrite(&srv->cfg, srv->config_path, err, sizeof(err)) < 0) {
        log_warn(&srv->log, "CONFIG REWRITE failed: %s", err);
        reply_errorf(c, "ERR Rewriting config file: %s", err);
        return;
    }
    log_info(&srv->log, "CONFIG REWRITE executed with success.");
    reply_ok(c);
}

static const char *const config_help[] = {
    "CONFIG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "GET <pattern>",
    "    Return parameters matching the glob-like <pattern> and their values.",
    "SET <directive> <value>",
    "    Set the configuration <directive> to <value>.",
    "RESETSTAT",
    "    Reset statistics reported by the INFO command.",
    "REWRITE",
    "    Rewrite the configuration file.",
    "HELP",
    "    Prints this help.",
};

void cmd_config_help(struct client *c)
{
    reply_help(c, config_help, sizeof(config_help) / sizeof(config_help[0]));
}
