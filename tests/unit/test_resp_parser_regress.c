/* Unit tests for proxy/resp_parser.c: bugs found and fixed (NUL bytes in inline requests, empty
 * inline arguments, a huge request's buffers kept by the connection). The tests that could loop
 * forever run in a child the parent watches and kills. The request vectors and limits are in
 * test_resp_parser.c. */
#include "proxy/resp_parser.h"
#include "resp_parser_fixture.h"

#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---------------------------------------------------------------------------------------------
 * Regressions */

/* Runs fn in a child and returns its wait status. The parent watches it: the child is killed
 * (SIGKILL, by its pid) when its resident size grows 256 MB past where it started or after 5 s,
 * so a runaway allocation loop ends long before it could exhaust memory (an address-space
 * rlimit does not work under ASan, whose heap is reserved up front). */
#define WATCH_RSS_MAX (256L << 20)
#define WATCH_MS_MAX 5000

static long child_rss(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/statm", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    long size = 0, resident = -1;
    if (fscanf(f, "%ld %ld", &size, &resident) != 2)
        resident = -1;
    fclose(f);
    return resident < 0 ? -1 : resident * sysconf(_SC_PAGESIZE);
}

static int watch_kills; /* why the last child was killed: 0, 1 memory, 2 time */

static int run_in_child(int (*fn)(void))
{
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        alarm(WATCH_MS_MAX / 1000 + 5); /* in case the parent is gone */
        _exit(fn());
    }
    watch_kills = 0;
    long base = -1;
    int status = 0;
    for (int ms = 0;; ms++) {
        pid_t w = waitpid(pid, &status, WNOHANG);
        ck_assert_int_ge(w, 0);
        if (w == pid)
            break;
        long rss = child_rss(pid);
        if (base < 0)
            base = rss;
        if (!watch_kills && rss >= 0 && base >= 0 && rss - base > WATCH_RSS_MAX)
            watch_kills = 1;
        if (!watch_kills && ms > WATCH_MS_MAX)
            watch_kills = 2;
        if (watch_kills) {
            kill(pid, SIGKILL);
            ck_assert_int_eq(waitpid(pid, &status, 0), pid);
            break;
        }
        usleep(1000);
    }
    return status;
}

static void assert_child_ok(int status, const char *what)
{
    ck_assert_msg(watch_kills != 1, "%s: endless loop, killed after its memory grew by 256 MB",
                  what);
    ck_assert_msg(watch_kills != 2, "%s: endless loop, killed after 5 s", what);
    ck_assert_msg(WIFEXITED(status), "%s: died with signal %d", what,
                  WIFSIGNALED(status) ? WTERMSIG(status) : 0);
    ck_assert_msg(WEXITSTATUS(status) == 0, "%s: wrong result (code %d)", what,
                  WEXITSTATUS(status));
}

/* sdssplitargs stops at a NUL: "a\0b" gives ["a"]. */
static int split_nul_child(void)
{
    struct resp_parser p;
    resp_parser_init(&p);
    char *line = slice_copy("a\0b", 0, 3);
    bool ok = resp_split_inline(&p, line, 3);
    int rc = (ok && p.argc == 1 && p.args[0].len == 1 && p.inline_buf.data[p.args[0].off] == 'a') ? 0 : 1;
    free(line);
    resp_parser_free(&p);
    return rc;
}

/* A NUL byte in an inline line once made the splitter push empty arguments forever (it ended a
 * token at '\0' without moving past it). Any client can send "\0\r\n": the test runs in a
 * watched child so a regression fails instead of eating the machine. */
START_TEST(test_bug_inline_nul_endless_loop)
{
    assert_child_ok(run_in_child(split_nul_child), "resp_split_inline(\"a\\0b\")");
}
END_TEST

static int parse_nul_child(void)
{
    struct resp_limits lim = { .max_bulk_len = MAX_BULK_DEFAULT };
    struct resp_parser p;
    resp_parser_init(&p);
    char *b = slice_copy("PI\0NG\r\n", 0, 7);
    /* Redis 7.0 (strchr) never sees the newline behind the NUL and waits; any bounded answer
     * is acceptable here, the point is that resp_parse returns. */
    enum resp_status st = resp_parse(&p, b, 7, &lim);
    int rc = (st == RESP_REQUEST && p.argc > 2) ? 1 : 0;
    free(b);
    resp_parser_free(&p);
    return rc;
}

START_TEST(test_bug_inline_nul_request_hangs)
{
    assert_child_ok(run_in_child(parse_nul_child), "resp_parse(\"PI\\0NG\\r\\n\")");
}
END_TEST

/* A huge request leaves nothing behind (found by tests/integration/test_hostile.py: five idle
 * clients held 25 MB of argument slots and inline buffers): after resp_parser_next, at most
 * ARGS_INITIAL_MAX slots and 16 KB of inline buffer stay with the connection. */
START_TEST(test_huge_request_leaves_nothing_behind)
{
    struct resp_limits lim = { .max_bulk_len = MAX_BULK_DEFAULT };
    struct resp_parser p;
    resp_parser_init(&p);
    enum { N = 5000 };
    struct strbuf req = { NULL, 0, 0 };
    strbuf_printf(&req, "*%d\r\n", N);
    for (int i = 0; i < N; i++)
        strbuf_append(&req, "$1\r\nx\r\n", 7);
    enum resp_status st = resp_parse(&p, req.data, req.len, &lim);
    size_t argc = p.argc, grown = p.argcap;
    resp_parser_next(&p);
    size_t kept = p.argcap;
    /* an inline line of 100 KB of arguments */
    strbuf_free(&req);
    for (int i = 0; i < 20000; i++)
        strbuf_append(&req, "abcd ", 5);
    strbuf_append(&req, "\r\n", 2);
    struct resp_limits big = { .max_bulk_len = MAX_BULK_DEFAULT, .inline_max = 200000 };
    resp_parser_init(&p); /* the args were freed above: a fresh parser for the inline case */
    enum resp_status st2 = resp_parse(&p, req.data, req.len, &big);
    size_t inline_grown = p.inline_buf.cap;
    resp_parser_next(&p);
    size_t inline_kept = p.inline_buf.cap, args_kept = p.argcap;
    strbuf_free(&req);
    resp_parser_free(&p);
    ck_assert_int_eq(st, RESP_REQUEST);
    ck_assert_uint_eq(argc, N);
    ck_assert_uint_ge(grown, N);
    ck_assert_uint_eq(kept, 0);
    ck_assert_int_eq(st2, RESP_REQUEST);
    ck_assert_uint_ge(inline_grown, 80000);
    ck_assert_uint_le(inline_kept, 16 * 1024);
    ck_assert_uint_le(args_kept, 1024);
}
END_TEST

/* An inline request whose arguments are all empty, as the first inline request of a parser,
 * once yielded argv[i].ptr == NULL (no inline buffer allocated yet); handlers may pass the
 * pointer to memcpy/memcmp with length 0, which must still be a valid pointer. */
START_TEST(test_bug_empty_inline_arg_null_ptr)
{
    struct resp_limits lim = { .max_bulk_len = MAX_BULK_DEFAULT };
    struct resp_parser p;
    resp_parser_init(&p);
    char *b = slice_copy("\"\" ''\r\n", 0, 7);
    enum resp_status st = resp_parse(&p, b, 7, &lim);
    size_t argc = p.argc;
    struct resp_arg av[2] = { { "", 1 }, { "", 1 } };
    if (st == RESP_REQUEST && argc == 2)
        resp_parser_args(&p, b, av);
    free(b);
    resp_parser_free(&p); /* before asserting: no leak when it fails with CK_FORK=no */
    ck_assert_int_eq(st, RESP_REQUEST);
    ck_assert_uint_eq(argc, 2);
    ck_assert_uint_eq(av[0].len, 0);
    ck_assert_uint_eq(av[1].len, 0);
    ck_assert_ptr_nonnull(av[0].ptr);
    ck_assert_ptr_nonnull(av[1].ptr);
}
END_TEST

static Suite *resp_parser_regress_suite(void)
{
    Suite *s = suite_create("resp_parser_regress");
    TCase *reg = tcase_create("regressions");
    tcase_set_timeout(reg, 60);
    tcase_add_test(reg, test_bug_inline_nul_endless_loop);
    tcase_add_test(reg, test_bug_inline_nul_request_hangs);
    tcase_add_test(reg, test_bug_empty_inline_arg_null_ptr);
    tcase_add_test(reg, test_huge_request_leaves_nothing_behind);
    suite_add_tcase(s, reg);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(resp_parser_regress_suite());
    srunner_run_all(sr, CK_ENV);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
