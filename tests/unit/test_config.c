/* Unit tests for conf/config.c: defaults, sidecar.ini (good and bad files with their exact
 * "FILE:LINE: reason" messages), environment overrides, validation, CONFIG SET / CONFIG GET with
 * Redis 7's exact error texts, memory units, the --help text and CONFIG REWRITE (the security
 * options are in test_config_security.c).
 * Each test writes its ini files under a fresh mkdtemp directory that the fixture removes. */
#include "conf/config.h"
#include "tests/unit/config_fixture.h"

#include <check.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

/* ---- defaults and sidecar.ini ---- */

START_TEST(test_defaults)
{
    ck_assert_uint_eq(cfg.nlisten, 1);
    ck_assert_str_eq(cfg.listen[0], "127.0.0.1:6379");
    ck_assert_str_eq(cfg.unixsocket, "");
    ck_assert_int_eq(cfg.unixsocketperm, 0700);
    ck_assert_int_eq(cfg.maxclients, 10000);
    ck_assert_int_eq(cfg.timeout, 0);
    ck_assert_int_eq(cfg.tcp_backlog, 511);
    ck_assert_int_eq(cfg.tcp_keepalive, 300);
    ck_assert_int_eq(cfg.databases, 16);
    ck_assert_int_eq(cfg.hz, 10);
    ck_assert_str_eq(cfg.requirepass, "");
    ck_assert_int_eq(cfg.proto_max_bulk_len, 512LL * 1024 * 1024);
    ck_assert_int_eq(cfg.client_query_buffer_limit, 1024LL * 1024 * 1024);
    ck_assert_int_eq(cfg.client_output_buffer_limit, 256LL * 1024 * 1024);
    ck_assert_int_eq(cfg.max_memory, 256LL * 1024 * 1024);
    ck_assert_int_eq(cfg.maxmemory_policy, POLICY_ALLKEYS_LRU);
    ck_assert_int_eq(cfg.maxmemory_samples, 5);
    ck_assert_str_eq(cfg.upstream.host, "");
    ck_assert_int_eq(cfg.upstream.port, 6379);
    ck_assert_str_eq(cfg.upstream.unixsocket, "");
    ck_assert_str_eq(cfg.upstream.username, "");
    ck_assert_str_eq(cfg.upstream.password, "");
    ck_assert_int_eq(cfg.upstream.db, 0);
    ck_assert_int_eq(cfg.upstream.connect_timeout_ms, 1000);
    ck_assert_int_eq(cfg.upstream.op_timeout_ms, 1000);
    ck_assert_int_eq(cfg.upstream.connections, 1);
    ck_assert_int_eq(cfg.upstream.reconnect_min_ms, 100);
    ck_assert_int_eq(cfg.upstream.reconnect_max_ms, 5000);
    ck_assert_int_eq(cfg.upstream.health_check_interval_ms, 1000);
    ck_assert_str_eq(cfg.admin_listen, "");
    ck_assert_int_eq(cfg.log_level, 2); /* LOG_NOTICE */
    ck_assert_str_eq(cfg.log_file, "");
    ck_assert_int_eq(config_validate(&cfg, err, sizeof(err)), 0);
}
END_TEST

static void expect_same_config(const struct config *a, const struct config *b)
{
    static struct pairs pa, pb;
    memset(&pa, 0, sizeof(pa));
    memset(&pb, 0, sizeof(pb));
    config_get(a, "*", pairs_add, &pa);
    config_get(b, "*", pairs_add, &pb);
    ck_assert_uint_eq(pa.n, pb.n);
    for (size_t i = 0; i < pa.n; i++) {
        ck_assert_str_eq(pa.name[i], pb.name[i]);
        ck_assert_msg(strcmp(pa.value[i], pb.value[i]) == 0, "%s: '%s' != '%s'", pa.name[i],
                      pa.value[i], pb.value[i]);
    }
}

/* The repository's sidecar.ini is the defaults, written out. Run from the repository root. */
START_TEST(test_sidecar_ini_is_defaults)
{
    struct config loaded;
    config_init_defaults(&loaded);
    config_set(&loaded, "maxmemory", "1", err, sizeof(err)); /* prove the file sets it back */
    int rc = config_load_file(&loaded, "sidecar.ini", err, sizeof(err));
    ck_assert_msg(rc == 0, "sidecar.ini: %s", err);
    expect_same_config(&loaded, &cfg);
    config_free(&loaded);
}
END_TEST

/* "[section] key" pairs, one per line, from --help or from an ini file. */
static size_t collect_help_keys(char keys[][96], size_t max)
{
    char *text = NULL;
    size_t len = 0, n = 0;
    FILE *f = open_memstream(&text, &len);
    config_print_help(f);
    fclose(f);
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        char section[32], key[48];
        if (sscanf(line, "  [%31[^]]] %47s =", section, key) == 2 && n < max)
            snprintf(keys[n++], 96, "[%s] %s", section, key);
    }
    free(text);
    return n;
}

static size_t collect_ini_keys(const char *path, char keys[][96], size_t max)
{
    char line[1100], section[32] = "", key[48];
    size_t n = 0;
    FILE *f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    while (fgets(line, sizeof(line), f)) {
        if (line[0] == ';' || line[0] == '#' || line[0] == '\n')
            continue;
        if (sscanf(line, "[%31[^]]]", section) == 1)
            continue;
        if (sscanf(line, "%47s =", key) == 1 && n < max)
            snprintf(keys[n++], 96, "[%s] %s", section, key);
    }
    fclose(f);
    return n;
}

START_TEST(test_sidecar_ini_documents_every_key)
{
    static char help[64][96], ini[64][96];
    size_t nh = collect_help_keys(help, 64), ni = collect_ini_keys("sidecar.ini", ini, 64);
    ck_assert_uint_eq(nh, 44); /* 41 + requirepass_file, protected_mode, password_file */
    ck_assert_uint_eq(ni, nh);
    for (size_t i = 0; i < nh; i++)
        ck_assert_str_eq(ini[i], help[i]); /* same keys, same order */
}
END_TEST

START_TEST(test_load_good_file)
{
    expect_load_ok("\xEF\xBB\xBF; a comment\n"
                   "# another comment\n"
                   "[server]\n"
                   "listen = 127.0.0.1:7000, [::1]:7001  0.0.0.0:7002,localhost:7003\n"
                   "  maxclients = 50   ; indented, inline comment\n"
                   "unixsocket = /tmp/sidecar.sock\r\n"
                   "unixsocketperm = 0755\n"
                   "proto_max_bulk_len = 2MB\n"
                   "client_query_buffer_limit = 1500k\n"
                   "requirepass = \"p;a ss\"\n"
                   "\n"
                   "[Cache]\n"
                   "max_memory = 1gb\n"
                   "maxmemory_policy = volatile-ttl\n"
                   "[upstream]\n"
                   "host = redis.example\n"
                   "port = 6380\n"
                   "password = s3cret\n"
                   "db = 3\n"
                   "reconnect_min_ms = 50\n"
                   "reconnect_max_ms = 50\n"
                   "[admin]\n"
                   "listen = 127.0.0.1:9121\n"
                   "[log]\n"
                   "LEVEL = warning\n"
                   "file = /var/log/sidecar.log");
    ck_assert_uint_eq(cfg.nlisten, 4);
    ck_assert_str_eq(cfg.listen[0], "127.0.0.1:7000");
    ck_assert_str_eq(cfg.listen[1], "[::1]:7001");
    ck_assert_str_eq(cfg.listen[2], "0.0.0.0:7002");
    ck_assert_str_eq(cfg.listen[3], "localhost:7003");
    ck_assert_int_eq(cfg.maxclients, 50);
    ck_assert_str_eq(cfg.unixsocket, "/tmp/sidecar.sock");
    ck_assert_int_eq(cfg.unixsocketperm, 0755);
    ck_assert_int_eq(cfg.proto_max_bulk_len, 2 * 1024 * 1024);
    ck_assert_int_eq(cfg.client_query_buffer_limit, 1500000);
    ck_assert_str_eq(cfg.requirepass, "p;a ss");
    ck_assert_int_eq(cfg.max_memory, 1024LL * 1024 * 1024);
    ck_assert_int_eq(cfg.maxmemory_policy, POLICY_VOLATILE_TTL);
    ck_assert_str_eq(cfg.upstream.host, "redis.example");
    ck_assert_int_eq(cfg.upstream.port, 6380);
    ck_assert_str_eq(cfg.upstream.password, "s3cret");
    ck_assert_int_eq(cfg.upstream.db, 3);
    ck_assert_str_eq(cfg.admin_listen, "127.0.0.1:9121");
    ck_assert_int_eq(cfg.log_level, 3); /* LOG_WARNING */
    ck_assert_str_eq(cfg.log_file, "/var/log/sidecar.log");
    /* untouched keys keep their defaults */
    ck_assert_int_eq(cfg.databases, 16);
    ck_assert_int_eq(cfg.upstream.connections, 1);
    ck_assert_int_eq(config_validate(&cfg, err, sizeof(err)), 0);
    ck_assert_str_eq(get1(&cfg, "bind"), "127.0.0.1 ::1 0.0.0.0 localhost");
    ck_assert_str_eq(get1(&cfg, "port"), "7000");
    ck_assert_str_eq(get1(&cfg, "server.listen"),
                     "127.0.0.1:7000 [::1]:7001 0.0.0.0:7002 localhost:7003");
    ck_assert_str_eq(get1(&cfg, "unixsocketperm"), "755");
}
END_TEST

START_TEST(test_load_memory_units)
{
    static const struct { const char *text; long long bytes; } cases[] = {
        { "0", 0 }, { "100", 100 }, { "1k", 1000 }, { "1kb", 1024 }, { "1K", 1000 },
        { "1KB", 1024 }, { "1kB", 1024 }, { "3m", 3000000 }, { "3mb", 3 * 1048576 },
        { "2g", 2000000000LL }, { "2gb", 2147483648LL }, { "5b", 5 }, { "007", 7 },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char text[128];
        snprintf(text, sizeof(text), "[cache]\nmax_memory = %s\n", cases[i].text);
        expect_load_ok(text);
        ck_assert_msg(cfg.max_memory == cases[i].bytes, "%s -> %lld", cases[i].text,
                      cfg.max_memory);
    }
}
END_TEST

START_TEST(test_load_listen_replaces_and_may_be_empty_with_unixsocket)
{
    expect_load_ok("[server]\nlisten =\nunixsocket = /tmp/s.sock\n");
    ck_assert_uint_eq(cfg.nlisten, 0);
    ck_assert_str_eq(get1(&cfg, "port"), "0");
    ck_assert_str_eq(get1(&cfg, "bind"), "");
    ck_assert_int_eq(config_validate(&cfg, err, sizeof(err)), 0);
}
END_TEST

START_TEST(test_load_sixteen_listen_addresses)
{
    char text[1024] = "[server]\nlisten =";
    for (int i = 0; i < CONFIG_MAX_LISTEN; i++)
        snprintf(text + strlen(text), sizeof(text) - strlen(text), " 127.0.0.1:%d", 7000 + i);
    strcat(text, "\n");
    expect_load_ok(text);
    ck_assert_uint_eq(cfg.nlisten, CONFIG_MAX_LISTEN);
    ck_assert_str_eq(cfg.listen[15], "127.0.0.1:7015");
    strcpy(strrchr(text, '\n'), " 127.0.0.1:8000\n");
    expect_load_error(text, 2, "bad value '127.0.0.1:7000 127.0.0.1:7001 127.0.0.1:7002 "
                               "127.0.0.1:7003 127.0.0.1:7004 127.0.0.1:7005 127.0.0.1:7006 "
                               "127.0.0.1:7007 127.0.0.1:7008 127.0.0.1:7009 127.0.0.1:7010 "
                               "127.0.0.1:7011 127.0.0.1:7012 127.0.0.1:7013 127.0.0.1:7014 "
                               "127.0.0.1:7015 127.0.0.1:8000' for listen: expected at most 16 "
                               "addresses");
    ck_assert_uint_eq(cfg.nlisten, CONFIG_MAX_LISTEN); /* a rejected value changes nothing */
}
END_TEST

START_TEST(test_load_line_of_exactly_the_limit)
{
    char text[1200] = "[server]\nrequirepass = ";
    size_t len = strlen("requirepass = ");
    while (len < 1024) {
        strcat(text, "x");
        len++;
    }
    strcat(text, "\r\n[cache]\n");
    expect_load_ok(text);
    ck_assert_uint_eq(strlen(cfg.requirepass), 1024 - strlen("requirepass = "));
}
END_TEST

/* ---- bad files: exact messages ---- */

START_TEST(test_bad_unknown_key)
{
    expect_load_error("[cache]\n; comment\nmax_memry = 1mb\n", 3,
                      "unknown key 'max_memry' in section [cache]");
}
END_TEST

START_TEST(test_bad_unknown_section)
{
    expect_load_error("[server]\nmaxclients = 5\n\n[foo]\n", 4, "unknown section [foo]");
    ck_assert_int_eq(cfg.maxclients, 5);
}
END_TEST

START_TEST(test_bad_key_outside_section)
{
    expect_load_error("maxclients = 5\n[server]\n", 1, "key 'maxclients' outside any section");
}
END_TEST

START_TEST(test_bad_memory_values)
{
    static const char *const bad[] = { "abc", "10tb", "-1", "1.5gb", "mb", "9999999999gb",
                                       "9223372036854775808", "1 gb", "+5" };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char text[128], reason[256];
        snprintf(text, sizeof(text), "[cache]\nmax_memory = %s\n", bad[i]);
        snprintf(reason, sizeof(reason),
                 "bad value '%s' for max_memory: expected a memory size like 256mb", bad[i]);
        expect_load_error(text, 2, reason);
    }
    ck_assert_int_eq(cfg.max_memory, 256LL * 1024 * 1024);
}
END_TEST

START_TEST(test_bad_integers_and_ranges)
{
    expect_load_error("[server]\nmaxclients = 12abc\n", 2,
                      "bad value '12abc' for maxclients: expected an integer");
    expect_load_error("[server]\nmaxclients = 0\n", 2,
                      "bad value '0' for maxclients: must be between 1 and 1000000");
    expect_load_error("[server]\ndatabases = -3\n", 2,
                      "bad value '-3' for databases: must be between 1 and 1024");
    expect_load_error("[upstream]\nport = 65536\n", 2,
                      "bad value '65536' for port: must be between 1 and 65535");
    expect_load_error("[upstream]\nconnect_timeout_ms = 0\n", 2,
                      "bad value '0' for connect_timeout_ms: must be between 1 and 2147483647");
    expect_load_error("[server]\nproto_max_bulk_len = 1kb\n", 2,
                      "bad value '1kb' for proto_max_bulk_len: must be at least 1048576 bytes");
    expect_load_error("[server]\nunixsocketperm = 800\n", 2,
                      "bad value '800' for unixsocketperm: expected an octal mode like 700");
    expect_load_error("[server]\nunixsocketperm = 1777\n", 2,
                      "bad value '1777' for unixsocketperm: must be between 0 and 777");
    expect_load_error("[server]\ntimeout = 99999999999999999999\n", 2,
                      "bad value '99999999999999999999' for timeout: expected an integer");
}
END_TEST

START_TEST(test_bad_enums)
{
    expect_load_error("[cache]\nmaxmemory_policy = allkeys-lfu\n", 2,
                      "bad value 'allkeys-lfu' for maxmemory_policy: expected one of "
                      "allkeys-lru, volatile-lru, allkeys-random, volatile-ttl, noeviction");
    expect_load_error("[log]\nlevel = loud\n", 2,
                      "bad value 'loud' for level: expected one of debug, verbose, notice, "
                      "warning");
}
END_TEST

START_TEST(test_bad_listen)
{
    static const char *const bad[] = { "127.0.0.1", "127.0.0.1:0", "127.0.0.1:65536",
                                       ":6379", "::1:6379", "[::1]6379", "[]:6379",
                                       "host:port", "127.0.0.1:63 79x", "[zz]:1" };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char text[128], reason[256];
        snprintf(text, sizeof(text), "[server]\nlisten = %s\n", bad[i]);
        snprintf(reason, sizeof(reason),
                 "bad value '%s' for listen: expected host:port with port 1..65535 "
                 "(IPv6 as [::1]:6379)", bad[i]);
        expect_load_error(text, 2, reason);
    }
    expect_load_error("[admin]\nlisten = localhost\n", 2,
                      "bad value 'localhost' for listen: expected host:port with port 1..65535 "
                      "(IPv6 as [::1]:6379)");
}
END_TEST

START_TEST(test_bad_line_too_long)
{
    char text[2200] = "[server]\n; ok\n;";
    memset(text + strlen(text), 'x', 1500);
    strcat(text, "\nmaxclients = 5\n");
    expect_load_error(text, 3, "line too long (max 1024 bytes)");
    ck_assert_int_eq(cfg.maxclients, 10000); /* parsing stopped at the long line */
    char text2[1200] = "[server]\nrequirepass = ";
    while (strlen(text2) < 9 + 1025)
        strcat(text2, "y");
    strcat(text2, "\n");
    expect_load_error(text2, 2, "line too long (max 1024 bytes)");
}
END_TEST

START_TEST(test_bad_syntax)
{
    expect_load_error("[server]\njunk\n", 2,
                      "syntax error: expected [section], key = value or a comment");
    expect_load_error("[server\nmaxclients = 5\n", 1,
                      "syntax error: expected [section], key = value or a comment");
    /* the earlier of a syntax error and a bad value is reported */
    expect_load_error("[server]\njunk\nmaxclients = x\n", 2,
                      "syntax error: expected [section], key = value or a comment");
}
END_TEST

START_TEST(test_bad_missing_file)
{
    char path[PATH_MAX + 32], want[PATH_MAX + 128];
    snprintf(path, sizeof(path), "%s/nope.ini", tmpdir);
    snprintf(want, sizeof(want), "%s: cannot open: No such file or directory", path);
    ck_assert_int_eq(config_load_file(&cfg, path, err, sizeof(err)), -1);
    ck_assert_str_eq(err, want);
    snprintf(want, sizeof(want), "%s: cannot read: Is a directory", tmpdir);
    ck_assert_int_eq(config_load_file(&cfg, tmpdir, err, sizeof(err)), -1);
    ck_assert_str_eq(err, want);
}
END_TEST

START_TEST(test_bad_file_keeps_struct_freeable)
{
    expect_load_error("[server]\nrequirepass = a\nlisten = 1.2.3.4:5 6.7.8.9:10\n"
                      "unixsocket = x\n[nope]\n", 5, "unknown section [nope]");
    ck_assert_str_eq(cfg.requirepass, "a");
    ck_assert_uint_eq(cfg.nlisten, 2);
    /* teardown's config_free must release everything (ASan checks) */
}
END_TEST

/* ---- environment ---- */

START_TEST(test_env_wins_over_file)
{
    expect_load_ok("[cache]\nmax_memory = 512mb\n[upstream]\nhost = file-host\n");
    setenv("SIDECAR_CACHE_MAX_MEMORY", "1gb", 1);
    setenv("SIDECAR_SERVER_LISTEN", "0.0.0.0:6400,[::]:6400", 1);
    setenv("SIDECAR_UPSTREAM_HOST", "", 1);
    setenv("SIDECAR_LOG_LEVEL", "debug", 1);
    int rc = config_apply_env(&cfg, err, sizeof(err));
    unsetenv("SIDECAR_CACHE_MAX_MEMORY");
    unsetenv("SIDECAR_SERVER_LISTEN");
    unsetenv("SIDECAR_UPSTREAM_HOST");
    unsetenv("SIDECAR_LOG_LEVEL");
    ck_assert_msg(rc == 0, "%s", err);
    ck_assert_int_eq(cfg.max_memory, 1024LL * 1024 * 1024);
    ck_assert_uint_eq(cfg.nlisten, 2);
    ck_assert_str_eq(cfg.listen[1], "[::]:6400");
    ck_assert_str_eq(cfg.upstream.host, "");
    ck_assert_int_eq(cfg.log_level, 0);
}
END_TEST

START_TEST(test_env_bad_value)
{
    setenv("SIDECAR_CACHE_MAX_MEMORY", "x", 1);
    int rc = config_apply_env(&cfg, err, sizeof(err));
    unsetenv("SIDECAR_CACHE_MAX_MEMORY");
    ck_assert_int_eq(rc, -1);
    ck_assert_str_eq(err, "SIDECAR_CACHE_MAX_MEMORY: bad value 'x' for max_memory: "
                          "expected a memory size like 256mb");
    setenv("SIDECAR_UPSTREAM_CONNECTIONS", "65", 1);
    rc = config_apply_env(&cfg, err, sizeof(err));
    unsetenv("SIDECAR_UPSTREAM_CONNECTIONS");
    ck_assert_int_eq(rc, -1);
    ck_assert_str_eq(err, "SIDECAR_UPSTREAM_CONNECTIONS: bad value '65' for connections: "
                          "must be between 1 and 64");
}
END_TEST

START_TEST(test_env_unrelated_variables_ignored)
{
    setenv("SIDECAR_SERVICE_HOST", "10.0.0.1", 1); /* what Kubernetes injects for a service */
    setenv("SIDECAR_PORT", "tcp://10.0.0.1:6379", 1);
    int rc = config_apply_env(&cfg, err, sizeof(err));
    unsetenv("SIDECAR_SERVICE_HOST");
    unsetenv("SIDECAR_PORT");
    ck_assert_int_eq(rc, 0);
    ck_assert_int_eq(cfg.upstream.port, 6379);
}
END_TEST

/* ---- validation ---- */

static void expect_invalid(const char *want)
{
    ck_assert_int_eq(config_validate(&cfg, err, sizeof(err)), -1);
    ck_assert_str_eq(err, want);
}

START_TEST(test_validate)
{
    expect_load_ok("[server]\nlisten =\n");
    expect_invalid("[server] listen and unixsocket are both empty: nothing to serve");
    expect_load_ok("[server]\nlisten = 127.0.0.1:1 127.0.0.1:1\n");
    expect_invalid("[server] listen: '127.0.0.1:1' appears twice");
    expect_load_ok("[server]\nlisten = 127.0.0.1:1\n[admin]\nlisten = 127.0.0.1:1\n");
    expect_invalid("[admin] listen '127.0.0.1:1' is also a [server] listen address");
    expect_load_ok("[admin]\nlisten = 127.0.0.1:2\n"
                   "[upstream]\nreconnect_min_ms = 6000\nreconnect_max_ms = 5000\n");
    expect_invalid("[upstream] reconnect_min_ms (6000) is greater than reconnect_max_ms (5000)");
    expect_load_ok("[upstream]\nreconnect_min_ms = 100\nhost = h\nunixsocket = /tmp/r.sock\n");
    expect_invalid("[upstream] set host or unixsocket, not both");
    expect_load_ok("[upstream]\nunixsocket = /tmp/r.sock\nhost =\n");
    ck_assert_int_eq(config_validate(&cfg, err, sizeof(err)), 0);
    cfg.upstream.op_timeout_ms = 0; /* set by code, not through the table */
    expect_invalid("[upstream] op_timeout_ms = 0 is out of range (1..2147483647)");
}
END_TEST

START_TEST(test_validate_unixsocket_length)
{
    char text[300] = "[server]\nunixsocket = /";
    memset(text + strlen(text), 'a', 120);
    strcat(text, "\n");
    expect_load_ok(text);
    expect_invalid("unixsocket path longer than 107 bytes");
}
END_TEST

START_TEST(test_override_port)
{
    expect_load_ok("[server]\nlisten = 127.0.0.1:7000 [::1]:7001 localhost:7002\n");
    config_override_port(&cfg, 6390);
    ck_assert_str_eq(cfg.listen[0], "127.0.0.1:6390");
    ck_assert_str_eq(cfg.listen[1], "[::1]:6390");
    ck_assert_str_eq(cfg.listen[2], "localhost:6390");
    ck_assert_int_eq(config_validate(&cfg, err, sizeof(err)), 0);
    config_override_port(&cfg, 70000);
    expect_invalid("[server] listen: '127.0.0.1:70000' is not host:port");
}
END_TEST

/* ---- CONFIG SET ---- */

START_TEST(test_set_names)
{
    expect_set_ok("maxmemory", "100mb");
    ck_assert_int_eq(cfg.max_memory, 100 * 1024 * 1024);
    expect_set_ok("MAXMEMORY", "1k");
    ck_assert_int_eq(cfg.max_memory, 1000);
    expect_set_ok("max_memory", "2kb");
    ck_assert_int_eq(cfg.max_memory, 2048);
    expect_set_ok("cache.max_memory", "0");
    ck_assert_int_eq(cfg.max_memory, 0);
    expect_set_ok("Cache.Max_Memory", "3");
    ck_assert_int_eq(cfg.max_memory, 3);
    expect_set_ok("maxmemory-policy", "NOEVICTION");
    ck_assert_int_eq(cfg.maxmemory_policy, POLICY_NOEVICTION);
    expect_set_ok("maxmemory_policy", "volatile-lru");
    ck_assert_int_eq(cfg.maxmemory_policy, POLICY_VOLATILE_LRU);
    expect_set_ok("maxmemory-samples", "64");
    expect_set_ok("loglevel", "verbose");
    ck_assert_int_eq(cfg.log_level, 1);
    expect_set_ok("log.level", "warning");
    ck_assert_int_eq(cfg.log_level, 3);
    expect_set_ok("timeout", "30");
    expect_set_ok("hz", "100");
    expect_set_ok("tcp-keepalive", "0");
    expect_set_ok("maxclients", "1");
    expect_set_ok("proto-max-bulk-len", "1mb");
    expect_set_ok("client-query-buffer-limit", "2gb");
    expect_set_ok("server.client_output_buffer_limit", "64mb");
    ck_assert_int_eq(cfg.client_output_buffer_limit, 64 * 1024 * 1024);
    expect_set_ok("client_output_buffer_limit", "32mb");
    ck_assert_int_eq(cfg.client_output_buffer_limit, 32 * 1024 * 1024);
    expect_set_ok("requirepass", "first");
    expect_set_ok("requirepass", "second"); /* the old string is freed (ASan) */
    ck_assert_str_eq(cfg.requirepass, "second");
    expect_set_ok("requirepass", "");
    ck_assert_str_eq(cfg.requirepass, "");
    expect_set_ok("cache.write_through", "NO");
    ck_assert_int_eq(cfg.write_through, 0);
    expect_set_ok("write_through", "yes");
    ck_assert_int_eq(cfg.write_through, 1);
    expect_set_ok("cache.max_ttl_ms", "250");
    ck_assert_int_eq(cfg.max_ttl_ms, 250);
    expect_set_error("cache.write_through", "maybe",
                     "CONFIG SET failed (possibly related to argument 'cache.write_through') - "
                     "argument(s) must be one of the following: no, yes");
    expect_set_error("cache.max_ttl_ms", "0",
                     "CONFIG SET failed (possibly related to argument 'cache.max_ttl_ms') - "
                     "argument must be between 1 and 9223372036854775807 inclusive");
    expect_set_error("cache.invalidation", "bcast",
                     "CONFIG SET failed (possibly related to argument 'cache.invalidation') - "
                     "can't set immutable config");
}
END_TEST

START_TEST(test_set_errors_as_redis)
{
    expect_set_error("foo", "bar", "Unknown option or number of arguments for CONFIG SET - 'foo'");
    expect_set_error("FOO", "bar", "Unknown option or number of arguments for CONFIG SET - 'FOO'");
    expect_set_error("cache.nope", "1",
                     "Unknown option or number of arguments for CONFIG SET - 'cache.nope'");
    expect_set_error("Databases", "3", "CONFIG SET failed (possibly related to argument "
                                       "'Databases') - can't set immutable config");
    expect_set_error("unixsocket", "/tmp/x", "CONFIG SET failed (possibly related to argument "
                                             "'unixsocket') - can't set immutable config");
    expect_set_error("logfile", "x", "CONFIG SET failed (possibly related to argument "
                                     "'logfile') - can't set immutable config");
    expect_set_error("tcp-backlog", "5", "CONFIG SET failed (possibly related to argument "
                                         "'tcp-backlog') - can't set immutable config");
    expect_set_error("unixsocketperm", "777", "CONFIG SET failed (possibly related to argument "
                                              "'unixsocketperm') - can't set immutable config");
    expect_set_error("upstream.host", "h", "CONFIG SET failed (possibly related to argument "
                                           "'upstream.host') - can't set immutable config");
    expect_set_error("listen", "1.2.3.4:5", "CONFIG SET failed (possibly related to argument "
                                            "'listen') - can't set immutable config");
    expect_set_error("maxmemory", "abc", "CONFIG SET failed (possibly related to argument "
                                         "'maxmemory') - argument must be a memory value");
    expect_set_error("MaxMemory", "-1", "CONFIG SET failed (possibly related to argument "
                                        "'maxmemory') - argument must be a memory value");
    expect_set_error("maxmemory", "1.5gb", "CONFIG SET failed (possibly related to argument "
                                           "'maxmemory') - argument must be a memory value");
    expect_set_error("maxmemory", "5 mb", "CONFIG SET failed (possibly related to argument "
                                          "'maxmemory') - argument must be a memory value");
    expect_set_error("maxclients", "abc", "CONFIG SET failed (possibly related to argument "
                                          "'maxclients') - argument couldn't be parsed into an "
                                          "integer");
    expect_set_error("MAXCLIENTS", "010", "CONFIG SET failed (possibly related to argument "
                                          "'maxclients') - argument couldn't be parsed into an "
                                          "integer");
    expect_set_error("maxclients", "+5", "CONFIG SET failed (possibly related to argument "
                                         "'maxclients') - argument couldn't be parsed into an "
                                         "integer");
    expect_set_error("maxclients", "99999999999999999999",
                     "CONFIG SET failed (possibly related to argument 'maxclients') - argument "
                     "couldn't be parsed into an integer");
    expect_set_error("maxclients", "0", "CONFIG SET failed (possibly related to argument "
                                        "'maxclients') - argument must be between 1 and 1000000 "
                                        "inclusive");
    expect_set_error("maxmemory-samples", "0",
                     "CONFIG SET failed (possibly related to argument 'maxmemory-samples') - "
                     "argument must be between 1 and 64 inclusive");
    expect_set_error("timeout", "-1", "CONFIG SET failed (possibly related to argument "
                                      "'timeout') - argument must be between 0 and 2147483647 "
                                      "inclusive");
    expect_set_error("proto-max-bulk-len", "100",
                     "CONFIG SET failed (possibly related to argument 'proto-max-bulk-len') - "
                     "argument must be between 1048576 and 9223372036854775807 inclusive");
    expect_set_error("maxmemory-policy", "foo",
                     "CONFIG SET failed (possibly related to argument 'maxmemory-policy') - "
                     "argument(s) must be one of the following: allkeys-lru, volatile-lru, "
                     "allkeys-random, volatile-ttl, noeviction");
    expect_set_error("loglevel", "", "CONFIG SET failed (possibly related to argument "
                                     "'loglevel') - argument(s) must be one of the following: "
                                     "debug, verbose, notice, warning");
    expect_set_error("cache.max_memory", "x", "CONFIG SET failed (possibly related to argument "
                                              "'cache.max_memory') - argument must be a memory "
                                              "value");
    /* nothing above changed anything */
    struct config defaults;
    config_init_defaults(&defaults);
    expect_same_config(&cfg, &defaults);
    config_free(&defaults);
}
END_TEST

START_TEST(test_set_compat_rows)
{
    expect_set_ok("save", "");
    expect_set_ok("appendonly", "no");
    expect_set_ok("port", "6379");
    expect_set_error("save", "900 1", "CONFIG SET failed (possibly related to argument 'save') "
                                      "- can't set immutable config");
    expect_set_error("appendonly", "yes", "CONFIG SET failed (possibly related to argument "
                                          "'appendonly') - can't set immutable config");
    expect_set_error("port", "7000", "CONFIG SET failed (possibly related to argument 'port') - "
                                     "can't set immutable config");
}
END_TEST

/* ---- CONFIG GET ---- */

START_TEST(test_get_values_as_redis)
{
    ck_assert_str_eq(get1(&cfg, "maxmemory"), "268435456");
    ck_assert_str_eq(get1(&cfg, "MAXMEMORY"), "268435456");
    ck_assert_str_eq(get1(&cfg, "cache.max_memory"), "268435456");
    ck_assert_str_eq(get1(&cfg, "maxmemory-policy"), "allkeys-lru");
    ck_assert_str_eq(get1(&cfg, "proto-max-bulk-len"), "536870912");
    ck_assert_str_eq(get1(&cfg, "client-query-buffer-limit"), "1073741824");
    ck_assert_str_eq(get1(&cfg, "unixsocketperm"), "700");
    ck_assert_str_eq(get1(&cfg, "loglevel"), "notice");
    ck_assert_str_eq(get1(&cfg, "logfile"), "");
    ck_assert_str_eq(get1(&cfg, "save"), "");
    ck_assert_str_eq(get1(&cfg, "appendonly"), "no");
    ck_assert_str_eq(get1(&cfg, "bind"), "127.0.0.1");
    ck_assert_str_eq(get1(&cfg, "port"), "6379");
    ck_assert_str_eq(get1(&cfg, "upstream.port"), "6379");
    ck_assert_str_eq(get1(&cfg, "upstream.host"), "");
    ck_assert_str_eq(get1(&cfg, "server.listen"), "127.0.0.1:6379");
    ck_assert_str_eq(get1(&cfg, "admin.listen"), "");
    ck_assert_str_eq(get1(&cfg, "databases"), "16");
    expect_set_ok("maxmemory-policy", "volatile-ttl");
    ck_assert_str_eq(get1(&cfg, "maxmemory-policy"), "volatile-ttl");
}
END_TEST

static size_t get_names(const char *pattern, struct pairs *p)
{
    memset(p, 0, sizeof(*p));
    return config_get(&cfg, pattern, pairs_add, p);
}

START_TEST(test_get_patterns)
{
    static struct pairs p;
    ck_assert_uint_eq(get_names("maxmemory*", &p), 3);
    ck_assert_str_eq(p.name[0], "maxmemory");
    ck_assert_str_eq(p.name[1], "maxmemory-policy");
    ck_assert_str_eq(p.name[2], "maxmemory-samples");
    ck_assert_uint_eq(get_names("upstream.*", &p), 13);
    ck_assert_uint_eq(get_names("cache.*", &p), 9); /* matched by section.key, shown as Redis */
    ck_assert_str_eq(p.name[0], "maxmemory");
    ck_assert_str_eq(p.name[3], "cache.invalidation");
    ck_assert_str_eq(p.value[3], "tracking");
    ck_assert_str_eq(p.name[7], "cache.write_through");
    ck_assert_str_eq(p.value[7], "yes");
    ck_assert_uint_eq(get_names("*", &p), 48);     /* 44 options + save appendonly bind port */
    for (size_t i = 0; i < p.n; i++)              /* each row once */
        for (size_t j = 0; j < i; j++)
            ck_assert_str_ne(p.name[i], p.name[j]);
    /* maxclients proto-max-bulk-len slowlog-max-len maxmemory maxmemory-policy
     * maxmemory-samples cache.max_ttl_ms upstream.reconnect_max_ms: maxmemory's row matches
     * twice (cache.max_memory), shown once */
    ck_assert_uint_eq(get_names("*max*", &p), 8);
    ck_assert_uint_eq(get_names("nope*", &p), 0);
    ck_assert_uint_eq(get_names("[ab]*", &p), 3);  /* admin.listen appendonly bind */
    ck_assert_uint_eq(get_names("port", &p), 1);
    ck_assert_uint_eq(get_names("max_memory", &p), 0); /* bare keys are not CONFIG GET names */
}
END_TEST

/* ---- memory, policies, help ---- */

START_TEST(test_parse_memory)
{
    long long v = -1;
    ck_assert_int_eq(config_parse_memory("256mb", &v), 0);
    ck_assert_int_eq(v, 268435456);
    ck_assert_int_eq(config_parse_memory("1GB", &v), 0);
    ck_assert_int_eq(v, 1073741824);
    ck_assert_int_eq(config_parse_memory("64kb", &v), 0);
    ck_assert_int_eq(v, 65536);
    ck_assert_int_eq(config_parse_memory("64k", &v), 0);
    ck_assert_int_eq(v, 64000);
    ck_assert_int_eq(config_parse_memory("9223372036854775807", &v), 0);
    ck_assert_int_eq(v, LLONG_MAX);
    ck_assert_int_eq(config_parse_memory("8589934591gb", &v), 0);
    ck_assert_int_eq(v, 8589934591LL * 1073741824LL);
    v = 42;
    static const char *const bad[] = { "", "mb", "-1", "1.5gb", " 1", "1 ", "1tb", "1kbb",
                                       "9223372036854775808", "8589934592gb", "0x10" };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        ck_assert_msg(config_parse_memory(bad[i], &v) == -1, "'%s' accepted", bad[i]);
    ck_assert_int_eq(v, 42);
}
END_TEST

START_TEST(test_policy_names)
{
    static const char *const names[] = { "allkeys-lru", "volatile-lru", "allkeys-random",
                                         "volatile-ttl", "noeviction" };
    for (int i = 0; i < 5; i++) {
        ck_assert_str_eq(config_policy_name(i), names[i]);
        ck_assert_int_eq(config_policy_parse(names[i]), i);
    }
    ck_assert_int_eq(config_policy_parse("ALLKEYS-LRU"), POLICY_ALLKEYS_LRU);
    ck_assert_ptr_null(config_policy_name(5));
    ck_assert_ptr_null(config_policy_name(-1));
    ck_assert_int_eq(config_policy_parse("allkeys-lfu"), -1);
}
END_TEST

START_TEST(test_help)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    config_print_help(f);
    fclose(f);
    const char *usage =
        "Usage: sidecar [-c FILE] [--port N] [--check-config] [--config-reference] [--version]\n"
        "               [--help]\n";
    ck_assert_msg(strncmp(text, usage, strlen(usage)) == 0, "%s", text);
    ck_assert_ptr_nonnull(strstr(text, "  [cache] max_memory = 256mb "));
    ck_assert_ptr_nonnull(strstr(text, "(env SIDECAR_CACHE_MAX_MEMORY; CONFIG SET maxmemory)"));
    ck_assert_ptr_nonnull(strstr(text, "  [upstream] host = \"\" "));
    ck_assert_ptr_nonnull(strstr(text, "(env SIDECAR_UPSTREAM_HOST)"));
    ck_assert_ptr_nonnull(strstr(text, "  [server] listen = 127.0.0.1:6379 "));
    ck_assert_ptr_nonnull(strstr(text, "--check-config"));
    ck_assert_ptr_nonnull(strstr(text, "--config-reference"));
    ck_assert_ptr_null(strstr(text, "] save"));
    free(text);
}
END_TEST

START_TEST(test_free_is_idempotent)
{
    config_free(&cfg);
    config_free(&cfg);
    ck_assert_uint_eq(cfg.nlisten, 0);
    config_init_defaults(&cfg); /* teardown frees again */
}
END_TEST

/* The file's contents (static buffer). */
static const char *slurp(const char *path)
{
    static char buf[16384];
    FILE *f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

START_TEST(test_rewrite_keeps_comments)
{
    const char *path = write_file("rw.ini",
                                  "; top comment\n"
                                  "[server]\n"
                                  "  maxclients = 100 ; inline\n"
                                  "# hash comment\n"
                                  "\n"
                                  "[cache]\n"
                                  "max_memory = 1mb\n"
                                  "[log]\n"
                                  "level = notice\n");
    ck_assert_int_eq(config_load_file(&cfg, path, err, sizeof(err)), 0);
    ck_assert_int_eq(config_set(&cfg, "maxmemory", "2mb", err, sizeof(err)), 0);
    ck_assert_int_eq(config_set(&cfg, "maxclients", "200", err, sizeof(err)), 0);
    ck_assert_int_eq(config_set(&cfg, "maxmemory-policy", "volatile-ttl", err, sizeof(err)), 0);
    ck_assert_int_eq(config_set(&cfg, "requirepass", "two words", err, sizeof(err)), 0);
    ck_assert_int_eq(config_set(&cfg, "cache.max_ttl_ms", "1500", err, sizeof(err)), 0);
    ck_assert_int_eq(config_rewrite(&cfg, path, err, sizeof(err)), 0);
    ck_assert_str_eq(slurp(path), "; top comment\n"
                                  "[server]\n"
                                  "  maxclients = 200\n"
                                  "# hash comment\n"
                                  "\n"
                                  "requirepass = \"two words\"\n"
                                  "[cache]\n"
                                  "max_memory = 2097152\n"
                                  "maxmemory_policy = volatile-ttl\n"
                                  "max_ttl_ms = 1500\n"
                                  "[log]\n"
                                  "level = notice\n");
    /* what it wrote loads back to the same values */
    struct config back;
    config_init_defaults(&back);
    ck_assert_int_eq(config_load_file(&back, path, err, sizeof(err)), 0);
    ck_assert_int_eq(back.max_memory, 2097152);
    ck_assert_int_eq(back.maxclients, 200);
    ck_assert_str_eq(back.requirepass, "two words");
    ck_assert_int_eq(back.max_ttl_ms, 1500);
    config_free(&back);
    /* a section the file lacks is added at the end */
    ck_assert_int_eq(config_set(&cfg, "cache.negative_ttl_ms", "10", err, sizeof(err)), 0);
    path = write_file("rw2.ini", "[server]\nmaxclients = 5\n");
    ck_assert_int_eq(config_rewrite(&cfg, path, err, sizeof(err)), 0);
    ck_assert_ptr_nonnull(strstr(slurp(path), "\n[cache]\nmax_memory = 2097152\n"));
    ck_assert_ptr_nonnull(strstr(slurp(path), "negative_ttl_ms = 10\n"));
    ck_assert_int_eq(config_rewrite(&cfg, "/nonexistent/x.ini", err, sizeof(err)), -1);
    ck_assert_ptr_nonnull(strstr(err, "/nonexistent/x.ini"));
}
END_TEST

/* Found by tests/fuzz/fuzz_config: what CONFIG SET accepts, CONFIG REWRITE writes back as the
 * same value on one line (a line break could inject settings; a quoted value lost its quotes; a
 * last line without a newline swallowed the first appended option). */
START_TEST(test_rewrite_round_trips_odd_values)
{
    ck_assert_int_eq(config_set(&cfg, "requirepass", "a\nmaxclients = 5\n;", err, sizeof(err)),
                     -1);
    ck_assert_ptr_nonnull(strstr(err, "line break"));
    ck_assert_int_eq(config_set(&cfg, "requirepass", "a\rb", err, sizeof(err)), -1);
    ck_assert_int_eq(config_set(&cfg, "requirepass", "a ;b", err, sizeof(err)), -1);
    ck_assert_int_eq(config_set(&cfg, "requirepass", "a;b", err, sizeof(err)), 0); /* no blank */
    char big[1024 + 8]; /* longer than an ini line (CONFIG_LINE_MAX, config_internal.h) */
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    ck_assert_int_eq(config_set(&cfg, "requirepass", big, err, sizeof(err)), -1);
    ck_assert_str_eq(cfg.requirepass, "a;b"); /* refused values changed nothing */
    /* inih cuts a quoted value at " ;": refused at load, never loaded as `"a` */
    const char *bad = write_file("rw4.ini", "[server]\nrequirepass = \"a ; b\"\n");
    ck_assert_int_eq(config_load_file(&cfg, bad, err, sizeof(err)), -1);
    ck_assert_ptr_nonnull(strstr(err, "rw4.ini:2: unbalanced double quote"));

    const char *path = write_file("rw3.ini", "[server]\nmaxclients = 7\n; no newline at the end");
    ck_assert_int_eq(config_load_file(&cfg, path, err, sizeof(err)), 0);
    ck_assert_int_eq(config_set(&cfg, "requirepass", "\"quoted\"", err, sizeof(err)), 0);
    ck_assert_int_eq(config_set(&cfg, "cache.negative_ttl_ms", "10", err, sizeof(err)), 0);
    ck_assert_int_eq(config_rewrite(&cfg, path, err, sizeof(err)), 0);
    struct config back;
    config_init_defaults(&back);
    ck_assert_int_eq(config_load_file(&back, path, err, sizeof(err)), 0);
    ck_assert_str_eq(back.requirepass, "\"quoted\"");
    ck_assert_int_eq(back.maxclients, 7);
    ck_assert_int_eq(back.negative_ttl_ms, 10);
    config_free(&back);

    /* inih skips every isspace() blank: a section line after a vertical tab is a section for
     * the rewrite too (its unixsocket is not [upstream]'s), and a trailing \v is kept */
    path = write_file("rw5.ini", "[upstream]\nunixsocket = /up.sock\n\v[server]\n"
                                 "unixsocket = /srv.sock\n");
    ck_assert_int_eq(config_load_file(&cfg, path, err, sizeof(err)), 0);
    ck_assert_int_eq(config_set(&cfg, "requirepass", "x\v", err, sizeof(err)), 0);
    ck_assert_int_eq(config_rewrite(&cfg, path, err, sizeof(err)), 0);
    config_init_defaults(&back);
    ck_assert_int_eq(config_load_file(&back, path, err, sizeof(err)), 0);
    ck_assert_str_eq(back.unixsocket, "/srv.sock");
    ck_assert_str_eq(back.upstream.unixsocket, "/up.sock");
    ck_assert_str_eq(back.requirepass, "x\v");
    config_free(&back);
}
END_TEST

static Suite *config_suite(void)
{
    Suite *s = suite_create("config");
    TCase *tc = tcase_create("config");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_defaults);
    tcase_add_test(tc, test_sidecar_ini_is_defaults);
    tcase_add_test(tc, test_sidecar_ini_documents_every_key);
    tcase_add_test(tc, test_load_good_file);
    tcase_add_test(tc, test_load_memory_units);
    tcase_add_test(tc, test_load_listen_replaces_and_may_be_empty_with_unixsocket);
    tcase_add_test(tc, test_load_sixteen_listen_addresses);
    tcase_add_test(tc, test_load_line_of_exactly_the_limit);
    tcase_add_test(tc, test_bad_unknown_key);
    tcase_add_test(tc, test_bad_unknown_section);
    tcase_add_test(tc, test_bad_key_outside_section);
    tcase_add_test(tc, test_bad_memory_values);
    tcase_add_test(tc, test_bad_integers_and_ranges);
    tcase_add_test(tc, test_bad_enums);
    tcase_add_test(tc, test_bad_listen);
    tcase_add_test(tc, test_bad_line_too_long);
    tcase_add_test(tc, test_bad_syntax);
    tcase_add_test(tc, test_bad_missing_file);
    tcase_add_test(tc, test_bad_file_keeps_struct_freeable);
    tcase_add_test(tc, test_env_wins_over_file);
    tcase_add_test(tc, test_env_bad_value);
    tcase_add_test(tc, test_env_unrelated_variables_ignored);
    tcase_add_test(tc, test_validate);
    tcase_add_test(tc, test_validate_unixsocket_length);
    tcase_add_test(tc, test_override_port);
    tcase_add_test(tc, test_set_names);
    tcase_add_test(tc, test_set_errors_as_redis);
    tcase_add_test(tc, test_set_compat_rows);
    tcase_add_test(tc, test_get_values_as_redis);
    tcase_add_test(tc, test_get_patterns);
    tcase_add_test(tc, test_parse_memory);
    tcase_add_test(tc, test_policy_names);
    tcase_add_test(tc, test_help);
    tcase_add_test(tc, test_free_is_idempotent);
    tcase_add_test(tc, test_rewrite_keeps_comments);
    tcase_add_test(tc, test_rewrite_round_trips_odd_values);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(config_suite());
    srunner_run_all(sr, CK_ENV);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
