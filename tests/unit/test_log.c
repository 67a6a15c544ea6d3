/* Unit tests for conf/log.c: level filtering, Redis's text layout, JSON lines with escaping,
 * folding of repeated lines ("last message repeated N times"), and reopening the file after a
 * rotation moved it. */
#include "conf/log.h"

#include <check.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char dir[PATH_MAX];
static char path[PATH_MAX + 16], moved[PATH_MAX + 16];

static void setup(void)
{
    snprintf(dir, sizeof(dir), "/tmp/test_log.XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/a.log", dir);
    snprintf(moved, sizeof(moved), "%s/a.log.1", dir);
}

static void teardown(void)
{
    unlink(path);
    unlink(moved);
    rmdir(dir);
}

/* The file's contents (static buffer). */
static const char *slurp(const char *p)
{
    static char buf[8192];
    FILE *f = fopen(p, "r");
    ck_assert_ptr_nonnull(f);
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

static int count_lines(const char *s)
{
    int n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

START_TEST(test_text_layout_and_levels)
{
    struct logger lg;
    ck_assert_int_eq(log_open(&lg, LOG_NOTICE, LOG_FORMAT_TEXT, path), 0);
    log_write(&lg, LOG_VERBOSE, "hidden %d", 1);
    log_write(&lg, LOG_WARNING, "shown %d", 2);
    log_close(&lg);
    const char *s = slurp(path);
    ck_assert_int_eq(count_lines(s), 1);
    ck_assert_ptr_null(strstr(s, "hidden"));
    /* "pid:M dd Mon yyyy hh:mm:ss.mmm # shown 2" */
    char want[64];
    snprintf(want, sizeof(want), "%d:M ", (int)getpid());
    ck_assert_int_eq(strncmp(s, want, strlen(want)), 0);
    ck_assert_ptr_nonnull(strstr(s, " # shown 2\n"));
}
END_TEST

START_TEST(test_json_lines_escape)
{
    struct logger lg;
    ck_assert_int_eq(log_open(&lg, LOG_DEBUG, LOG_FORMAT_JSON, path), 0);
    log_write(&lg, LOG_NOTICE, "say \"hi\"\\ then\ttab");
    log_close(&lg);
    const char *s = slurp(path);
    ck_assert_int_eq(count_lines(s), 1);
    ck_assert_int_eq(strncmp(s, "{\"time\":\"", 9), 0);
    ck_assert_ptr_nonnull(strstr(s, "Z\",\"pid\":"));
    ck_assert_ptr_nonnull(strstr(s, ",\"level\":\"notice\",\"msg\":\"say \\\"hi\\\"\\\\ then\\u0009tab\"}\n"));
}
END_TEST

START_TEST(test_repeats_folded)
{
    struct logger lg;
    ck_assert_int_eq(log_open(&lg, LOG_DEBUG, LOG_FORMAT_TEXT, path), 0);
    for (int i = 0; i < 1000; i++)
        log_write(&lg, LOG_WARNING, "upstream down: %s", "connection refused");
    log_write(&lg, LOG_NOTICE, "upstream up");
    log_write(&lg, LOG_NOTICE, "again");
    log_write(&lg, LOG_NOTICE, "again");
    log_close(&lg); /* writes the pending count */
    const char *s = slurp(path);
    ck_assert_int_eq(count_lines(s), 5);
    ck_assert_ptr_nonnull(strstr(s, "# upstream down: connection refused\n"));
    ck_assert_ptr_nonnull(strstr(s, "# last message repeated 999 times\n"));
    ck_assert_ptr_nonnull(strstr(s, "* upstream up\n"));
    ck_assert_ptr_nonnull(strstr(s, "* last message repeated 1 times\n"));
    /* the count comes right after the line it counts, before the next one */
    ck_assert(strstr(s, "repeated 999") < strstr(s, "upstream up"));
}
END_TEST

START_TEST(test_reopen_after_rotation)
{
    struct logger lg;
    ck_assert_int_eq(log_open(&lg, LOG_DEBUG, LOG_FORMAT_TEXT, path), 0);
    log_write(&lg, LOG_NOTICE, "before");
    ck_assert_int_eq(rename(path, moved), 0);
    log_write(&lg, LOG_NOTICE, "still old");
    ck_assert_int_eq(log_reopen(&lg), 0);
    log_write(&lg, LOG_NOTICE, "after");
    log_close(&lg);
    const char *old = slurp(moved);
    ck_assert_ptr_nonnull(strstr(old, "before"));
    ck_assert_ptr_nonnull(strstr(old, "still old"));
    ck_assert_ptr_null(strstr(old, "after"));
    ck_assert_ptr_nonnull(strstr(slurp(path), "after"));
    /* stderr loggers have nothing to reopen; a file that cannot be opened fails cleanly */
    ck_assert_int_eq(log_open(&lg, LOG_DEBUG, LOG_FORMAT_TEXT, ""), 0);
    ck_assert_int_eq(log_reopen(&lg), 0);
    log_close(&lg);
    ck_assert_int_eq(log_open(&lg, LOG_DEBUG, LOG_FORMAT_TEXT, "/nonexistent/dir/x.log"), -1);
    log_close(&lg);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("log");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_text_layout_and_levels);
    tcase_add_test(tc, test_json_lines_escape);
    tcase_add_test(tc, test_repeats_folded);
    tcase_add_test(tc, test_reopen_after_rotation);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
