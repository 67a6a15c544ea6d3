/* Unit tests for the security parts of conf/: [users] and [rename_commands] parsing and their
 * errors (a plaintext password never echoed), protected mode (loopback detection, the default
 * user's openness), password files and the redaction of secrets in CONFIG GET, and the
 * comparison of two configs' users for a reload. */
#include "conf/config.h"
#include "tests/unit/config_fixture.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

#define SHA_ABC "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"

START_TEST(test_users_parse)
{
    expect_load_ok("[users]\n"
                   "alice = on #" SHA_ABC " +@read +@WRITE -@admin\n"
                   "bob = off >abc >abc nopass >abc +GET -config|set allcommands nocommands\n"
                   "Carol = on nopass ~* &* allkeys allchannels +@all\n"
                   "default = on\n");
    ck_assert_uint_eq(cfg.nusers, 4);
    const struct config_user *a = config_user_find(&cfg, "alice");
    ck_assert_ptr_nonnull(a);
    ck_assert(a->enabled);
    ck_assert(!a->nopass);
    ck_assert_uint_eq(a->nhashes, 1);
    ck_assert_uint_eq(a->hashes[0][0], 0xba);
    ck_assert_uint_eq(a->hashes[0][31], 0xad);
    ck_assert_uint_eq(a->nrules, 3);
    ck_assert_str_eq(a->rules[1], "+@write"); /* lower case */
    const struct config_user *b = config_user_find(&cfg, "bob");
    ck_assert(!b->enabled);
    /* >abc twice is one digest; nopass forgets it; the last >abc ends nopass */
    ck_assert(!b->nopass);
    ck_assert_uint_eq(b->nhashes, 1);
    ck_assert_int_eq(memcmp(b->hashes[0], a->hashes[0], 32), 0); /* sha256("abc") */
    ck_assert_uint_eq(b->nrules, 4);
    ck_assert_str_eq(b->rules[0], "+get");
    ck_assert_str_eq(b->rules[1], "-config|set");
    ck_assert_str_eq(b->rules[2], "+@all");
    ck_assert_str_eq(b->rules[3], "-@all");
    ck_assert_ptr_null(config_user_find(&cfg, "carol")); /* names are case-sensitive */
    ck_assert(config_user_find(&cfg, "Carol")->nopass);
    ck_assert(!config_user_find(&cfg, "default")->nopass);
    ck_assert(!config_default_user_is_open(&cfg)); /* default entry without nopass */
    ck_assert_int_eq(config_validate(&cfg, err, sizeof(err)), 0);
}
END_TEST

START_TEST(test_users_errors)
{
    expect_load_error("[users]\nalice = on frob\n", 2,
                      "[users] user 'alice': unknown rule 'frob' (expected on, off, nopass, "
                      "resetpass, #<sha256>, >password, +@category, -@category, +command, "
                      "-command, allcommands, nocommands, ~*, &*)");
    expect_load_error("[users]\nalice = on #abc\n", 2,
                      "[users] user 'alice': '#' must be followed by the 64 hex digits of a "
                      "SHA-256 digest (for example: printf %s PASSWORD | sha256sum)");
    config_free(&cfg);
    config_init_defaults(&cfg);
    expect_load_error("[users]\nalice = on ~app:*\n", 2,
                      "[users] user 'alice': '~app:*': key and channel patterns are not "
                      "supported (every user may use every key and channel: ~* &*)");
    config_free(&cfg);
    config_init_defaults(&cfg);
    expect_load_error("[users]\nalice = on\nalice = off\n", 3,
                      "[users] user 'alice' is defined twice");
    config_free(&cfg);
    config_init_defaults(&cfg);
    /* a bad line with a plaintext password never echoes it */
    expect_load_error("[users]\nalice = on >Secret99 -\n", 2,
                      "[users] user 'alice': unknown rule '-' (expected on, off, nopass, "
                      "resetpass, #<sha256>, >password, +@category, -@category, +command, "
                      "-command, allcommands, nocommands, ~*, &*)");
    ck_assert_ptr_null(strstr(err, "Secret99"));
    ck_assert_uint_eq(cfg.nusers, 0); /* nothing added by a rejected line */
}
END_TEST

START_TEST(test_renames_parse)
{
    expect_load_ok("[rename_commands]\nFLUSHALL = \"\"\nconfig = CFG_x9\n");
    ck_assert_uint_eq(cfg.nrenames, 2);
    ck_assert_str_eq(cfg.renames[0].from, "flushall");
    ck_assert_str_eq(cfg.renames[0].to, "");
    ck_assert_str_eq(cfg.renames[1].from, "config");
    ck_assert_str_eq(cfg.renames[1].to, "cfg_x9");
    config_free(&cfg);
    config_init_defaults(&cfg);
    expect_load_error("[rename_commands]\nget = a\nGET = b\n", 3,
                      "[rename_commands] 'GET' is renamed twice");
    config_free(&cfg);
    config_init_defaults(&cfg);
    expect_load_error("[rename_commands]\nget = a\nset = a\n", 3,
                      "[rename_commands] two commands renamed to 'a'");
}
END_TEST

START_TEST(test_protected_mode)
{
    static const char *const loopback[] = { "127.0.0.1", "127.8.9.10", "::1", "localhost",
                                            "LOCALHOST", "::ffff:127.0.0.1" };
    static const char *const open_hosts[] = { "0.0.0.0", "::", "*", "10.0.0.1", "128.0.0.1",
                                              "::2", "example.com", "::ffff:10.0.0.1", "" };
    for (size_t i = 0; i < sizeof(loopback) / sizeof(loopback[0]); i++)
        ck_assert_msg(config_host_is_loopback(loopback[i], strlen(loopback[i])), "%s", loopback[i]);
    for (size_t i = 0; i < sizeof(open_hosts) / sizeof(open_hosts[0]); i++)
        ck_assert_msg(!config_host_is_loopback(open_hosts[i], strlen(open_hosts[i])), "%s",
                      open_hosts[i]);
    expect_set_ok("protected-mode", "yes");
    ck_assert(config_default_user_is_open(&cfg));
    expect_load_ok("[server]\nlisten = 127.0.0.1:1 [::1]:2 0.0.0.0:3\n");
    ck_assert_int_eq(config_validate(&cfg, err, sizeof(err)), -1);
    ck_assert_str_eq(err, "protected mode: [server] listen '0.0.0.0:3' is not a loopback address "
                          "and the default user has no password; set requirepass (or "
                          "requirepass_file, or a [users] default entry with a password), listen "
                          "on 127.0.0.1 only, or set protected_mode = no");
    expect_set_ok("requirepass", "x");
    ck_assert_int_eq(config_validate(&cfg, err, sizeof(err)), 0);
    expect_set_ok("requirepass", "");
    expect_set_ok("protected-mode", "no");
    ck_assert_int_eq(config_validate(&cfg, err, sizeof(err)), 0);
    expect_set_ok("protected-mode", "yes");
    expect_load_ok("[users]\ndefault = off\n"); /* nobody gets in without AUTH */
    ck_assert(!config_default_user_is_open(&cfg));
    ck_assert_int_eq(config_validate(&cfg, err, sizeof(err)), 0);
}
END_TEST

START_TEST(test_secret_files_and_redaction)
{
    const char *pw = write_file("pw", "from-file\r\n");
    char text[PATH_MAX + 128];
    snprintf(text, sizeof(text), "[server]\nrequirepass_file = %s\n[upstream]\npassword_file = %s\n",
             pw, pw);
    expect_load_ok(text);
    ck_assert_int_eq(config_read_secret_files(&cfg, err, sizeof(err)), 0);
    ck_assert_str_eq(cfg.requirepass, "from-file");
    ck_assert_str_eq(cfg.upstream.password, "from-file");
    ck_assert_str_eq(get1(&cfg, "requirepass"), CONFIG_SECRET_SHOWN);
    ck_assert_str_eq(get1(&cfg, "upstream.password"), CONFIG_SECRET_SHOWN);
    ck_assert(config_is_secret("requirepass"));
    ck_assert(config_is_secret("upstream.password"));
    ck_assert(config_is_secret("server.requirepass"));
    ck_assert(!config_is_secret("upstream.password_file"));
    ck_assert(!config_is_secret("maxmemory"));
    /* CONFIG REWRITE never writes a password read from its file */
    const char *ini = write_file("rw.ini", text);
    ck_assert_int_eq(config_rewrite(&cfg, ini, err, sizeof(err)), 0);
    FILE *f = fopen(ini, "r");
    char buf[4096];
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    ck_assert_ptr_null(strstr(buf, "from-file"));
    /* a second read: the password is now set too ("not both") */
    ck_assert_int_eq(config_read_secret_files(&cfg, err, sizeof(err)), -1);
    ck_assert_str_eq(err, "[server] set requirepass or requirepass_file, not both");
    config_free(&cfg);
    config_init_defaults(&cfg);
    write_file("empty", "\n");
    snprintf(text, sizeof(text), "[server]\nrequirepass_file = %s/empty\n", tmpdir);
    expect_load_ok(text);
    ck_assert_int_eq(config_read_secret_files(&cfg, err, sizeof(err)), -1);
    char want[PATH_MAX + 160];
    snprintf(want, sizeof(want), "[server] requirepass_file %s/empty: is empty", tmpdir);
    ck_assert_str_eq(err, want);
    config_free(&cfg);
    config_init_defaults(&cfg);
    snprintf(text, sizeof(text), "[upstream]\npassword_file = %s/missing\n", tmpdir);
    expect_load_ok(text);
    ck_assert_int_eq(config_read_secret_files(&cfg, err, sizeof(err)), -1);
    snprintf(want, sizeof(want), "[upstream] password_file %s/missing: cannot open: No such file "
                                 "or directory", tmpdir);
    ck_assert_str_eq(err, want);
    /* unset secrets show "" */
    ck_assert_str_eq(get1(&cfg, "requirepass"), "");
}
END_TEST

START_TEST(test_users_equal_and_swap)
{
    struct config other;
    config_init_defaults(&other);
    expect_load_ok("[users]\nalice = on >a +@read\n");
    ck_assert(!config_users_equal(&cfg, &other));
    config_users_swap(&cfg, &other);
    ck_assert_uint_eq(cfg.nusers, 0);
    ck_assert_uint_eq(other.nusers, 1);
    ck_assert(config_renames_equal(&cfg, &other));
    config_free(&other);
}
END_TEST

static Suite *config_security_suite(void)
{
    Suite *s = suite_create("config_security");
    TCase *tc = tcase_create("config_security");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_users_parse);
    tcase_add_test(tc, test_users_errors);
    tcase_add_test(tc, test_renames_parse);
    tcase_add_test(tc, test_protected_mode);
    tcase_add_test(tc, test_secret_files_and_redaction);
    tcase_add_test(tc, test_users_equal_and_swap);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(config_security_suite());
    srunner_run_all(sr, CK_ENV);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
