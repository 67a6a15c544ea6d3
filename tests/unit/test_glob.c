/* Unit tests for conf/glob.c: Redis's documented KEYS examples and its keyspace.tcl regression
 * vectors, classes, escapes, case folding, binary data, the nesting limit, a comparison with a
 * plain dynamic-programming matcher, and Redis's own fuzz loop. Every call goes through buffers
 * of exactly the given length (no NUL after them), so ASan catches any read past the end. */
#include "conf/glob.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

/* glob_match on exact-size heap copies of pat and str. */
static bool match_n(const char *pat, size_t plen, const char *str, size_t slen, bool nocase)
{
    char *p = malloc(plen ? plen : 1), *s = malloc(slen ? slen : 1);
    ck_assert_ptr_nonnull(p);
    ck_assert_ptr_nonnull(s);
    memcpy(p, pat, plen);
    memcpy(s, str, slen);
    bool r = glob_match(p, plen, s, slen, nocase);
    free(p);
    free(s);
    return r;
}

static bool match(const char *pat, const char *str)
{
    return match_n(pat, strlen(pat), str, strlen(str), false);
}

static bool match_nocase(const char *pat, const char *str)
{
    return match_n(pat, strlen(pat), str, strlen(str), true);
}

#define YES(p, s) ck_assert_msg(match(p, s), "'%s' should match '%s'", p, s)
#define NO(p, s) ck_assert_msg(!match(p, s), "'%s' should not match '%s'", p, s)

/* The examples of Redis's KEYS documentation. */
START_TEST(test_redis_keys_doc_examples)
{
    YES("h?llo", "hello");
    YES("h?llo", "hallo");
    YES("h?llo", "hxllo");
    NO("h?llo", "hllo");
    YES("h*llo", "hllo");
    YES("h*llo", "heeeello");
    YES("h[ae]llo", "hello");
    YES("h[ae]llo", "hallo");
    NO("h[ae]llo", "hillo");
    YES("h[^e]llo", "hallo");
    YES("h[^e]llo", "hbllo");
    NO("h[^e]llo", "hello");
    YES("h[a-b]llo", "hallo");
    YES("h[a-b]llo", "hbllo");
    NO("h[a-b]llo", "hcllo");
}
END_TEST

/* tests/unit/keyspace.tcl: "KEYS with pattern", "KEYS with hashtag". */
START_TEST(test_redis_keyspace_vectors)
{
    static const char *const keys[] = { "key_x", "key_y", "key_z", "foo_a", "foo_b", "foo_c" };
    for (int i = 0; i < 6; i++) {
        ck_assert(match("foo*", keys[i]) == (i >= 3));
        YES("*", keys[i]);
    }
    YES("{a}*", "{a}x");
    YES("{a}*", "{a}z");
    NO("{a}*", "{b}a");
    YES("*{b}*", "{b}a");
    YES("*{b}*", "{b}c");
    NO("*{b}*", "{a}x");
    YES("*", "dlskeriewrioeuwqoirueioqwrueoqwrueqw");
}
END_TEST

/* keyspace.tcl "Regression for pattern matching long nested loops": must not match, quickly. */
START_TEST(test_redis_long_nested_loops)
{
    char key[41];
    memset(key, 'a', 40);
    key[40] = '\0';
    NO("a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*b", key);
    /* the same shape, much larger: exponential backtracking would never finish */
    static char big[20001], pat[2002];
    memset(big, 'a', 20000);
    for (int i = 0; i < 1000; i++)
        memcpy(pat + 2 * i, "a*", 2);
    pat[2000] = 'b';
    NO(pat, big);
    big[19999] = 'b';
    YES(pat, big);
}
END_TEST

/* "Regression for pattern matching very long nested loops" (Redis 7.x): "*?" x 50000 against
 * 50000 bytes hits the nesting limit and does not match (and does not overflow the stack). */
START_TEST(test_redis_very_long_nested_loops)
{
    size_t n = 50000;
    char *str = malloc(n), *pat = malloc(2 * n);
    ck_assert_ptr_nonnull(str);
    ck_assert_ptr_nonnull(pat);
    memset(str, 'a', n);
    for (size_t i = 0; i < n; i++)
        memcpy(pat + 2 * i, "*?", 2);
    ck_assert(!glob_match(pat, 2 * n, str, n, false));
    free(str);
    free(pat);
}
END_TEST

START_TEST(test_nesting_limit)
{
    static char pat[2 * 1001], str[1001];
    memset(str, 'a', sizeof(str));
    for (int i = 0; i < 1001; i++)
        memcpy(pat + 2 * i, "*a", 2);
    /* 1000 stars: within the limit */
    ck_assert(match_n(pat, 2 * 1000, str, 1000, false));
    /* 1001 stars: deeper than Redis's 1000, refused */
    ck_assert(!match_n(pat, 2 * 1001, str, 1001, false));
}
END_TEST

START_TEST(test_stars_and_empty)
{
    YES("", "");
    NO("", "a");
    NO("a", "");
    NO("?", "");
    YES("*", "");  /* differs from Redis's stringmatchlen, which says no */
    YES("**", "");
    NO("*a", "");
    YES("a*", "a");
    YES("a**", "a");
    YES("*", "*");
    YES("*llo*", "hello world");
    YES("h*o w*d", "hello world");
    NO("h*o w*d", "hello worl");
    YES("*.*", "a.b");
    NO("*.*", "ab");
    YES("*?", "a");
    NO("*??", "a");
    YES("?*?", "ab");
}
END_TEST

START_TEST(test_classes)
{
    YES("[abc]", "b");
    NO("[abc]", "d");
    YES("[z-a]", "m");    /* reversed range */
    YES("[a-cx-z]", "y");
    NO("[a-cx-z]", "m");
    YES("[^a-c]", "d");
    NO("[^a-c]", "b");
    YES("[\\]]", "]");    /* escaped ']' inside a class */
    YES("[\\^]", "^");
    NO("[]", "a");        /* an empty class matches nothing */
    NO("[", "[");         /* a lone '[' matches nothing, as in Redis */
    YES("[^", "x");       /* unterminated negated empty class: any byte, as in Redis */
    YES("[abc", "c");     /* unterminated class: the rest of the pattern is the class */
    NO("[abc", "d");
    YES("x[0-9][0-9]", "x42");
    NO("x[0-9][0-9]", "x4a");
}
END_TEST

START_TEST(test_escapes)
{
    YES("\\*", "*");
    NO("\\*", "a");
    YES("\\?", "?");
    NO("\\?", "a");
    YES("\\[a]", "[a]");
    YES("a\\", "a\\");   /* a trailing backslash is literal */
    YES("\\\\", "\\");
    YES("*\\*", "abc*");
    NO("*\\*", "abc");
}
END_TEST

START_TEST(test_nocase)
{
    ck_assert(match_nocase("HELLO", "hello"));
    ck_assert(!match("HELLO", "hello"));
    ck_assert(match_nocase("h?LLo", "HeLlO"));
    ck_assert(match_nocase("[A-C]x", "bX"));
    ck_assert(!match("[A-C]x", "bX"));
    ck_assert(match_nocase("[abc]", "B"));
    ck_assert(!match_nocase("[^A]", "a"));
    ck_assert(!match_nocase("[\\A]", "a")); /* escaped bytes in a class compare exactly (Redis) */
    ck_assert(match_nocase("maxmemory*", "MAXMEMORY-POLICY"));
    ck_assert(match_nocase("*", ""));
}
END_TEST

START_TEST(test_binary)
{
    ck_assert(match_n("a\0*", 3, "a\0xyz", 5, false));
    ck_assert(!match_n("a\0*", 3, "a", 1, false));
    ck_assert(!match_n("a\0*", 3, "a\1xyz", 5, false));
    ck_assert(match_n("?", 1, "\0", 1, false));
    ck_assert(match_n("*\0", 2, "xx\0", 3, false));
    ck_assert(match_n("[\x80-\xff]", 5, "\xc3", 1, false)); /* bytes compare unsigned */
    ck_assert(!match_n("[\x80-\xff]", 5, "\x7f", 1, false));
    ck_assert(match_n("\xc3\xa9*", 3, "\xc3\xa9t\xc3\xa9", 5, true));
    /* lengths, not NULs, end the strings */
    ck_assert(glob_match("abcdef", 3, "abcxyz", 3, false));
    ck_assert(!glob_match("abc", 3, "abcxyz", 4, false));
}
END_TEST

/* A plain O(n*m) matcher for patterns made of literals, '?' and '*'. */
static bool dp_match(const char *p, size_t plen, const char *s, size_t slen)
{
    bool row[16] = { true }, next[16];
    for (size_t j = 1; j <= slen; j++)
        row[j] = false;
    for (size_t i = 0; i < plen; i++) {
        next[0] = row[0] && p[i] == '*';
        for (size_t j = 1; j <= slen; j++) {
            if (p[i] == '*')
                next[j] = row[j] || next[j - 1];
            else
                next[j] = row[j - 1] && (p[i] == '?' || p[i] == s[j - 1]);
        }
        memcpy(row, next, sizeof(row));
    }
    return row[slen];
}

START_TEST(test_against_reference)
{
    static const char alphabet[] = "ab*?";
    char pat[10], str[10];
    srand(12345);
    for (int cycle = 0; cycle < 200000; cycle++) {
        size_t plen = (size_t)(rand() % 10), slen = (size_t)(rand() % 10);
        for (size_t i = 0; i < plen; i++)
            pat[i] = alphabet[rand() % 4];
        for (size_t i = 0; i < slen; i++)
            str[i] = alphabet[rand() % 2];
        bool want = dp_match(pat, plen, str, slen);
        ck_assert_msg(glob_match(pat, plen, str, slen, false) == want, "'%.*s' vs '%.*s'",
                      (int)plen, pat, (int)slen, str);
    }
}
END_TEST

/* Redis's stringmatchlen_fuzz_test, bounded: random bytes, exact-size buffers, must not crash. */
START_TEST(test_fuzz)
{
    char str[32], pat[32];
    int matches = 0;
    srand(777);
    for (int cycle = 0; cycle < 100000; cycle++) {
        size_t slen = (size_t)(rand() % 32), plen = (size_t)(rand() % 32);
        for (size_t j = 0; j < slen; j++)
            str[j] = (char)(rand() % 128);
        for (size_t j = 0; j < plen; j++)
            pat[j] = (char)(rand() % 128);
        matches += match_n(pat, plen, str, slen, cycle & 1);
    }
    ck_assert_int_ge(matches, 0);
}
END_TEST

static Suite *glob_suite(void)
{
    Suite *s = suite_create("glob");
    TCase *tc = tcase_create("glob");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_redis_keys_doc_examples);
    tcase_add_test(tc, test_redis_keyspace_vectors);
    tcase_add_test(tc, test_redis_long_nested_loops);
    tcase_add_test(tc, test_redis_very_long_nested_loops);
    tcase_add_test(tc, test_nesting_limit);
    tcase_add_test(tc, test_stars_and_empty);
    tcase_add_test(tc, test_classes);
    tcase_add_test(tc, test_escapes);
    tcase_add_test(tc, test_nocase);
    tcase_add_test(tc, test_binary);
    tcase_add_test(tc, test_against_reference);
    tcase_add_test(tc, test_fuzz);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(glob_suite());
    srunner_run_all(sr, CK_ENV);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
