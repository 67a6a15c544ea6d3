/* The free-form sections of sidecar.ini: [users] (ACL users, "name = rules") and
 * [rename_commands] ("old = new", "old = \"\"" to disable). Owns their syntax checks and their
 * storage in struct config; proxy/acl.c and proxy/command_table.c resolve them against the
 * command table. Invariants: a plaintext password (">secret") is hashed while its line is
 * parsed, its bytes are wiped and never stored nor written into an error message; an entry is
 * parsed completely before it is added, so a rejected line adds nothing. */
#include "conf/config.h"
#include "conf/config_internal.h"

#include "conf/sha256.h"
#include "conf/xmalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define RULE_TOKEN_SEPS " \t"
#define RENAME_NAME_MAX 64

static const char *const free_form_sections[] = { "users", "rename_commands" };

bool config_section_free_form(const char *name, size_t len)
{
    for (size_t i = 0; i < sizeof(free_form_sections) / sizeof(free_form_sections[0]); i++)
        if (strlen(free_form_sections[i]) == len && strncasecmp(free_form_sections[i], name, len) == 0)
            return true;
    return false;
}

/* Printable ASCII without spaces, 1..max bytes. */
static bool name_ok(const char *s, size_t max)
{
    size_t n = strlen(s);
    if (n == 0 || n > max)
        return false;
    for (size_t i = 0; i < n; i++)
        if (s[i] <= ' ' || s[i] > '~')
            return false;
    return true;
}

static void user_free(struct config_user *u)
{
    free(u->name);
    for (size_t i = 0; i < u->nrules; i++)
        free(u->rules[i]);
    free(u->rules);
    memset(u, 0, sizeof(*u));
}

static void user_add_hash(struct config_user *u, const unsigned char d[SHA256_DIGEST_LEN])
{
    for (size_t i = 0; i < u->nhashes; i++)
        if (memcmp(u->hashes[i], d, SHA256_DIGEST_LEN) == 0) /* hashes, not secrets */
            return;
    memcpy(u->hashes[u->nhashes++], d, SHA256_DIGEST_LEN);
    u->nopass = false; /* as Redis: adding a password ends nopass */
}

static void user_add_rule(struct config_user *u, const char *rule)
{
    u->rules = xrealloc(u->rules, (u->nrules + 1) * sizeof(*u->rules));
    char *r = xstrdup(rule);
    for (char *p = r; *p; p++)
        if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p - 'A' + 'a');
    u->rules[u->nrules++] = r;
}

static bool word_is(const char *w, const char *name)
{
    return strcasecmp(w, name) == 0;
}

/* Applies one rule word to u. -1 with the reason. */
static int user_apply_word(struct config_user *u, char *w, char *reason, size_t size)
{
    unsigned char d[SHA256_DIGEST_LEN];

    if (word_is(w, "on") || word_is(w, "off")) {
        u->enabled = word_is(w, "on");
    } else if (word_is(w, "nopass")) {
        u->nopass = true;
        u->nhashes = 0;
    } else if (word_is(w, "resetpass")) {
        u->nopass = false;
        u->nhashes = 0;
    } else if (w[0] == '#' || w[0] == '>') {
        if (u->nhashes == CONFIG_USER_HASHES_MAX) {
            snprintf(reason, size, "more than %d passwords", CONFIG_USER_HASHES_MAX);
            return -1;
        }
        if (w[0] == '>') {
            sha256(w + 1, strlen(w + 1), d);
            explicit_bzero(w, strlen(w)); /* the plaintext goes no further */
        } else if (!sha256_from_hex(w + 1, strlen(w + 1), d)) {
            snprintf(reason, size, "'#' must be followed by the 64 hex digits of a SHA-256 "
                                   "digest (for example: printf %%s PASSWORD | sha256sum)");
            return -1;
        }
        user_add_hash(u, d);
    } else if (strcmp(w, "~*") == 0 || strcmp(w, "&*") == 0 || word_is(w, "allkeys") ||
               word_is(w, "allchannels")) {
        /* every user may use every key and channel: nothing to record */
    } else if (w[0] == '~' || w[0] == '%' || w[0] == '&' || word_is(w, "resetkeys") ||
               word_is(w, "resetchannels")) {
        snprintf(reason, size, "'%.64s': key and channel patterns are not supported (every user "
                               "may use every key and channel: ~* &*)", w);
        return -1;
    } else if (word_is(w, "allcommands")) {
        user_add_rule(u, "+@all");
    } else if (word_is(w, "nocommands")) {
        user_add_rule(u, "-@all");
    } else if ((w[0] == '+' || w[0] == '-') && w[1] && (w[1] != '@' || w[2])) {
        user_add_rule(u, w);
    } else {
        snprintf(reason, size, "unknown rule '%.64s' (expected on, off, nopass, resetpass, "
                               "#<sha256>, >password, +@category, -@category, +command, "
                               "-command, allcommands, nocommands, ~*, &*)", w);
        return -1;
    }
    return 0;
}

static int users_parse(struct config *cfg, const char *name, const char *value, char *reason,
                       size_t size)
{
    char why[256];
    struct config_user u = { 0 };

    if (!name_ok(name, CONFIG_USER_NAME_MAX)) {
        snprintf(reason, size, "[users] '%.64s': a user name is 1..%d printable characters "
                               "without spaces", name, CONFIG_USER_NAME_MAX);
        return -1;
    }
    if (config_user_find(cfg, name)) {
        snprintf(reason, size, "[users] user '%s' is defined twice", name);
        return -1;
    }
    if (cfg->nusers == CONFIG_USERS_MAX) {
        snprintf(reason, size, "[users] more than %d users", CONFIG_USERS_MAX);
        return -1;
    }
    char *text = xstrdup(value), *save = NULL;
    int rc = 0;
    u.name = xstrdup(name);
    for (char *w = strtok_r(text, RULE_TOKEN_SEPS, &save); w && rc == 0;
         w = strtok_r(NULL, RULE_TOKEN_SEPS, &save))
        rc = user_apply_word(&u, w, why, sizeof(why));
    explicit_bzero(text, strlen(value)); /* a plaintext password may have been in it */
    free(text);
    if (rc < 0) {
        snprintf(reason, size, "[users] user '%s': %s", name, why);
        user_free(&u);
        return -1;
    }
    cfg->users = xrealloc(cfg->users, (cfg->nusers + 1) * sizeof(*cfg->users));
    cfg->users[cfg->nusers++] = u;
    return 0;
}

static int renames_parse(struct config *cfg, const char *from, const char *to, char *reason,
                         size_t size)
{
    if (!name_ok(from, RENAME_NAME_MAX) || (*to && !name_ok(to, RENAME_NAME_MAX))) {
        snprintf(reason, size, "[rename_commands] '%.64s = %.64s': command names are 1..%d "
                               "printable characters without spaces (\"\" disables)", from, to,
                 RENAME_NAME_MAX);
        return -1;
    }
    for (size_t i = 0; i < cfg->nrenames; i++) {
        if (strcasecmp(cfg->renames[i].from, from) == 0) {
            snprintf(reason, size, "[rename_commands] '%s' is renamed twice", from);
            return -1;
        }
        if (*to && strcasecmp(cfg->renames[i].to, to) == 0) {
            snprintf(reason, size, "[rename_commands] two commands renamed to '%s'", to);
            return -1;
        }
    }
    if (cfg->nrenames == CONFIG_RENAMES_MAX) {
        snprintf(reason, size, "[rename_commands] more than %d entries", CONFIG_RENAMES_MAX);
        return -1;
    }
    struct config_rename r = { xstrdup(from), xstrdup(to) };
    for (char *p = r.from; *p; p++)
        if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p - 'A' + 'a');
    for (char *p = r.to; *p; p++)
        if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p - 'A' + 'a');
    cfg->renames = xrealloc(cfg->renames, (cfg->nrenames + 1) * sizeof(*cfg->renames));
    cfg->renames[cfg->nrenames++] = r;
    return 0;
}

int config_free_form_pair(struct config *cfg, const char *section, const char *key,
                          const char *value, char *reason, size_t size)
{
    if (strcasecmp(section, "users") == 0)
        return users_parse(cfg, key, value, reason, size);
    return renames_parse(cfg, key, value, reason, size);
}

void config_free_form_free(struct config *cfg)
{
    for (size_t i = 0; i < cfg->nusers; i++)
        user_free(&cfg->users[i]);
    free(cfg->users);
    cfg->users = NULL;
    cfg->nusers = 0;
    for (size_t i = 0; i < cfg->nrenames; i++) {
        free(cfg->renames[i].from);
        free(cfg->renames[i].to);
    }
    free(cfg->renames);
    cfg->renames = NULL;
    cfg->nrenames = 0;
}

const struct config_user *config_user_find(const struct config *cfg, const char *name)
{
    for (size_t i = 0; i < cfg->nusers; i++)
        if (strcmp(cfg->users[i].name, name) == 0) /* user names are case-sensitive */
            return &cfg->users[i];
    return NULL;
}

static bool user_equal(const struct config_user *a, const struct config_user *b)
{
    if (strcmp(a->name, b->name) != 0 || a->enabled != b->enabled || a->nopass != b->nopass ||
        a->nhashes != b->nhashes || a->nrules != b->nrules)
        return false;
    if (memcmp(a->hashes, b->hashes, a->nhashes * sizeof(a->hashes[0])) != 0)
        return false;
    for (size_t i = 0; i < a->nrules; i++)
        if (strcmp(a->rules[i], b->rules[i]) != 0)
            return false;
    return true;
}

bool config_users_equal(const struct config *a, const struct config *b)
{
    if (a->nusers != b->nusers)
        return false;
    for (size_t i = 0; i < a->nusers; i++)
        if (!user_equal(&a->users[i], &b->users[i]))
            return false;
    return true;
}

bool config_renames_equal(const struct config *a, const struct config *b)
{
    if (a->nrenames != b->nrenames)
        return false;
    for (size_t i = 0; i < a->nrenames; i++)
        if (strcmp(a->renames[i].from, b->renames[i].from) != 0 ||
            strcmp(a->renames[i].to, b->renames[i].to) != 0)
            return false;
    return true;
}

void config_users_swap(struct config *a, struct config *b)
{
    struct config_user *u = a->users;
    size_t n = a->nusers;
    a->users = b->users;
    a->nusers = b->nusers;
    b->users = u;
    b->nusers = n;
}
