/* Unit tests for proxy/acl.c: users built from a config ([users], requirepass), rule order,
 * categories from the command flags and groups, subcommand rules, forwarded (unknown)
 * commands, AUTH's check (digests, nopass, disabled users, requirepass replacing the default
 * user's passwords), and rules that do not resolve. */
#include "conf/config.h"
#include "proxy/acl.h"
#include "proxy/command.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static struct command_index idx;
static struct config cfg;
static char err[CONFIG_ERR_LEN];

static void setup(void)
{
    command_index_build(&idx);
    config_init_defaults(&cfg);
    err[0] = '\0';
}

static void teardown(void)
{
    config_free(&cfg);
}

static void load(const char *text)
{
    char path[] = "/tmp/test_acl_XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, text, strlen(text)), (int)strlen(text));
    close(fd);
    int rc = config_load_file(&cfg, path, err, sizeof(err));
    unlink(path);
    ck_assert_msg(rc == 0, "%s", err);
}

static const struct command *row(const char *name)
{
    const struct command *c = command_lookup(&idx, name, strlen(name));
    ck_assert_msg(c != NULL, "%s", name);
    return c;
}

static const struct command *sub(const char *parent, const char *name)
{
    const struct command *c = command_lookup_sub(row(parent)->subcommands, name, strlen(name));
    ck_assert_ptr_nonnull(c);
    return c;
}

static const struct acl_user *auth(const struct acl *acl, const char *user, const char *pass)
{
    return acl_authenticate(acl, user, user ? strlen(user) : 0, pass, strlen(pass));
}

START_TEST(test_default_open)
{
    struct acl *acl = acl_build(&cfg, &idx, err, sizeof(err));
    ck_assert_ptr_nonnull(acl);
    ck_assert(acl_default_open(acl));
    ck_assert(acl_default_nopass(acl));
    const struct acl_user *d = auth(acl, NULL, "anything");
    ck_assert_ptr_nonnull(d);
    ck_assert_str_eq(acl_user_name(d), "default");
    ck_assert(acl_allows(d, NULL, row("set")));
    ck_assert(acl_allows(d, NULL, NULL)); /* +@all: forwarded commands too */
    acl_free(acl);
}
END_TEST

START_TEST(test_requirepass_is_default_password)
{
    load("[server]\nrequirepass = s3cret\n[users]\ndefault = on nopass +@read\n");
    struct acl *acl = acl_build(&cfg, &idx, err, sizeof(err));
    ck_assert_ptr_nonnull(acl);
    ck_assert(!acl_default_open(acl));
    ck_assert_ptr_null(auth(acl, NULL, "s3cre"));
    ck_assert_ptr_null(auth(acl, NULL, "s3cret "));
    ck_assert_ptr_null(auth(acl, "default", ""));
    const struct acl_user *d = auth(acl, "default", "s3cret");
    ck_assert_ptr_nonnull(d);
    ck_assert(acl_allows(d, NULL, row("get")));
    ck_assert(!acl_allows(d, NULL, row("set"))); /* the entry's rules stay */
    acl_free(acl);
}
END_TEST

START_TEST(test_rules_in_order)
{
    load("[users]\n"
         "r = on >p +@read\n"
         "w = on >p +@all -@write +set\n"
         "x = on >p -@all +@all -@admin\n"
         "c = on >p +config|get +client -client|kill\n"
         "n = on >p +@read -@all\n"
         "off = off >p +@all\n"
         "np = on nopass +@connection\n");
    struct acl *acl = acl_build(&cfg, &idx, err, sizeof(err));
    ck_assert_msg(acl != NULL, "%s", err);
    const struct acl_user *r = auth(acl, "r", "p"), *w = auth(acl, "w", "p"),
                          *x = auth(acl, "x", "p"), *c = auth(acl, "c", "p"),
                          *n = auth(acl, "n", "p"), *np = auth(acl, "np", "");
    ck_assert(r && w && x && c && n && np);
    ck_assert(acl_allows(r, NULL, row("get")));
    ck_assert(acl_allows(r, NULL, row("hgetall")));
    ck_assert(!acl_allows(r, NULL, row("set")));
    ck_assert(!acl_allows(r, NULL, row("ping"))); /* not @read, as Redis */
    ck_assert(!acl_allows(r, NULL, NULL));
    ck_assert(acl_allows(w, NULL, row("set")));
    ck_assert(!acl_allows(w, NULL, row("del")));
    ck_assert(acl_allows(w, NULL, NULL)); /* +@all, then only @write removed */
    ck_assert(acl_allows(x, NULL, row("set")));
    ck_assert(!acl_allows(x, row("config"), sub("config", "set")));
    ck_assert(!acl_allows(x, row("client"), sub("client", "kill")));
    ck_assert(!acl_allows(x, NULL, row("monitor")));
    ck_assert(acl_allows(x, row("client"), sub("client", "id")));
    ck_assert(acl_allows(c, row("config"), sub("config", "get")));
    ck_assert(!acl_allows(c, row("config"), sub("config", "set")));
    ck_assert(acl_allows(c, row("client"), sub("client", "list")));
    ck_assert(!acl_allows(c, row("client"), sub("client", "kill")));
    ck_assert(!acl_allows(n, NULL, row("get")));
    ck_assert(acl_allows(np, NULL, row("ping")));
    ck_assert(acl_allows(np, NULL, row("select")));
    ck_assert(!acl_allows(np, NULL, row("get")));
    ck_assert_ptr_null(auth(acl, "off", "p")); /* disabled */
    ck_assert_ptr_null(auth(acl, "nobody", "p"));
    ck_assert_ptr_null(auth(acl, "R", "p")); /* case-sensitive names */
    ck_assert_ptr_nonnull(acl_find_user(acl, "off", 3));
    acl_free(acl);
}
END_TEST

START_TEST(test_several_passwords)
{
    load("[users]\nu = on >one #2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b +@all\n");
    struct acl *acl = acl_build(&cfg, &idx, err, sizeof(err));
    ck_assert_ptr_nonnull(acl);
    ck_assert_ptr_nonnull(auth(acl, "u", "one"));
    ck_assert_ptr_nonnull(auth(acl, "u", "secret")); /* sha256("secret") */
    ck_assert_ptr_null(auth(acl, "u", "two"));
    acl_free(acl);
}
END_TEST

START_TEST(test_bad_rules)
{
    static const struct { const char *line, *want; } cases[] = {
        { "u = on +@nosuch", "[users] user 'u': unknown command category 'nosuch' in rule '+@nosuch'" },
        { "u = on -nosuchcmd", "[users] user 'u': unknown command 'nosuchcmd' in rule "
                               "'-nosuchcmd' (rules name the commands the sidecar knows; a "
                               "forwarded command needs +@all)" },
        { "u = on +config|nosuch", "[users] user 'u': unknown command 'config|nosuch' in rule "
                                   "'+config|nosuch' (rules name the commands the sidecar knows; "
                                   "a forwarded command needs +@all)" },
        { "u = on +get|x", "[users] user 'u': unknown command 'get|x' in rule '+get|x' (rules "
                           "name the commands the sidecar knows; a forwarded command needs +@all)" },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char text[256];
        config_free(&cfg);
        config_init_defaults(&cfg);
        snprintf(text, sizeof(text), "[users]\n%s\n", cases[i].line);
        load(text);
        ck_assert_ptr_null(acl_build(&cfg, &idx, err, sizeof(err)));
        ck_assert_str_eq(err, cases[i].want);
    }
}
END_TEST

START_TEST(test_renamed_commands_keep_rule_names)
{
    struct config_rename r[] = { { "config", "cfg_x" }, { "flushall", "" } };
    ck_assert_int_eq(command_index_rename(&idx, r, 2, false, err, sizeof(err)), 0);
    ck_assert_ptr_null(command_lookup(&idx, "config", 6));
    ck_assert_ptr_null(command_lookup(&idx, "FLUSHALL", 8));
    ck_assert_ptr_nonnull(command_lookup(&idx, "CFG_X", 5));
    ck_assert(command_is_hidden(&idx, "Config", 6));
    ck_assert(!command_is_hidden(&idx, "get", 3));
    load("[users]\nu = on >p +config|get +flushall\n");
    struct acl *acl = acl_build(&cfg, &idx, err, sizeof(err));
    ck_assert_msg(acl != NULL, "%s", err);
    const struct command *cfg_row = command_lookup(&idx, "cfg_x", 5);
    ck_assert(acl_allows(auth(acl, "u", "p"), cfg_row,
                         command_lookup_sub(cfg_row->subcommands, "get", 3)));
    acl_free(acl);
    /* errors: unknown, taken name, forwarded names only disabled and only with an upstream */
    struct config_rename bad1[] = { { "nosuch", "" } }, bad2[] = { { "get", "set" } },
                         bad3[] = { { "debug", "dbg" } };
    command_index_build(&idx);
    ck_assert_int_eq(command_index_rename(&idx, bad1, 1, false, err, sizeof(err)), -1);
    ck_assert_str_eq(err, "[rename_commands] 'nosuch' is not a command of the sidecar");
    command_index_build(&idx);
    ck_assert_int_eq(command_index_rename(&idx, bad1, 1, true, err, sizeof(err)), 0);
    ck_assert(command_is_hidden(&idx, "NOSUCH", 6));
    command_index_build(&idx);
    ck_assert_int_eq(command_index_rename(&idx, bad2, 1, false, err, sizeof(err)), -1);
    ck_assert_str_eq(err, "[rename_commands] 'get' cannot be renamed to 'set': a command has "
                          "that name");
    command_index_build(&idx);
    ck_assert_int_eq(command_index_rename(&idx, bad3, 1, true, err, sizeof(err)), -1);
    ck_assert_str_eq(err, "[rename_commands] 'debug' is not a command of the sidecar (a "
                          "forwarded command can only be disabled: \"\")");
    /* a swap is allowed */
    struct config_rename swap[] = { { "get", "set" }, { "set", "get" } };
    command_index_build(&idx);
    ck_assert_int_eq(command_index_rename(&idx, swap, 2, false, err, sizeof(err)), 0);
    ck_assert_str_eq(command_lookup(&idx, "get", 3)->name, "set");
    ck_assert_str_eq(command_lookup(&idx, "set", 3)->name, "get");
}
END_TEST

static Suite *acl_suite(void)
{
    Suite *s = suite_create("acl");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_default_open);
    tcase_add_test(tc, test_requirepass_is_default_password);
    tcase_add_test(tc, test_rules_in_order);
    tcase_add_test(tc, test_several_passwords);
    tcase_add_test(tc, test_bad_rules);
    tcase_add_test(tc, test_renamed_commands_keep_rule_names);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(acl_suite());
    srunner_run_all(sr, CK_ENV);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
