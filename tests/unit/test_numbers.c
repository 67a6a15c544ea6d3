/* Unit tests for proxy/numbers.c: Redis's string2ll, string2ld, string2d rules, ld2string's
 * human format (INCRBYFLOAT) and the integer / double printers. The INCRBYFLOAT texts were
 * taken from redis-server 7.0.15 (x86-64, 80-bit long double): SET k <value>, INCRBYFLOAT k
 * <incr>. Every parser call gets an exact-size heap copy (no NUL after it), so ASan catches a
 * read past the end. */
#include "proxy/numbers.h"

#include <check.h>
#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Valgrind runs x87 long double arithmetic in 64-bit doubles (1 + LDBL_EPSILON == 1 there, and
 * even an inf may not survive): the long double values are then only exercised, not checked,
 * so the valgrind run still checks memory. Natively every LD_ASSERT is a ck_assert. */
static bool ld_exact = true;

static bool long_double_is_native(void)
{
    volatile long double one = 1.0L, eps = LDBL_EPSILON, big = LDBL_MAX;
    volatile long double sum = one + eps, inf = big * 2;
    return sum != one && isinf(inf) && 0.1L + 0.2L != (long double)(0.1 + 0.2);
}

#define LD_ASSERT_MSG(expr, ...)                                                        \
    do {                                                                                \
        bool ok_ = (expr);                                                              \
        if (ld_exact)                                                                   \
            ck_assert_msg(ok_, __VA_ARGS__);                                            \
    } while (0)
#define LD_ASSERT(expr) LD_ASSERT_MSG(expr, "Assertion '%s' failed", #expr)

static bool parse_ll_n(const char *s, size_t len, long long *out)
{
    char *b = malloc(len ? len : 1);
    ck_assert_ptr_nonnull(b);
    memcpy(b, s, len);
    bool ok = num_parse_ll(b, len, out);
    free(b);
    return ok;
}

static bool parse_ld_n(const char *s, size_t len, long double *out)
{
    char *b = malloc(len ? len : 1);
    ck_assert_ptr_nonnull(b);
    memcpy(b, s, len);
    bool ok = num_parse_ld(b, len, out);
    free(b);
    return ok;
}

static bool parse_d_n(const char *s, size_t len, double *out)
{
    char *b = malloc(len ? len : 1);
    ck_assert_ptr_nonnull(b);
    memcpy(b, s, len);
    bool ok = num_parse_double(b, len, out);
    free(b);
    return ok;
}

/* ---------------------------------------------------------------------------------------------
 * num_parse_ll */

START_TEST(test_ll_accepts)
{
    static const struct {
        const char *s;
        long long v;
    } ok[] = {
        { "0", 0 },
        { "1", 1 },
        { "-1", -1 },
        { "9", 9 },
        { "10", 10 },
        { "-10", -10 },
        { "1234567890", 1234567890LL },
        { "9223372036854775807", LLONG_MAX },
        { "-9223372036854775808", LLONG_MIN },
        { "9223372036854775806", LLONG_MAX - 1 },
        { "-9223372036854775807", -LLONG_MAX },
        { "2147483648", 2147483648LL },
        { "-2147483649", -2147483649LL },
    };
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        long long v = 12345;
        ck_assert_msg(parse_ll_n(ok[i].s, strlen(ok[i].s), &v), "'%s' rejected", ok[i].s);
        ck_assert_msg(v == ok[i].v, "'%s' gave %lld", ok[i].s, v);
    }
}
END_TEST

START_TEST(test_ll_rejects)
{
    static const char *const bad[] = {
        "", "-", "01", "00", "-0", "-01", "+1", "+0", " 1", "1 ", "\t1", "1\n", "1\r",
        "9223372036854775808", "-9223372036854775809", "18446744073709551615",
        "18446744073709551616", "99999999999999999999", "-99999999999999999999",
        "1a", "a1", "1.0", "1e3", "0x10", "--1", "1-", "-a", "0-",
        "123456789012345678901",   /* 21 chars */
        "-12345678901234567890",   /* 21 chars with '-' */
        "000000000000000000000001",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        long long v = 12345;
        ck_assert_msg(!parse_ll_n(bad[i], strlen(bad[i]), &v), "'%s' accepted", bad[i]);
        ck_assert_msg(v == 12345, "'%s': output written on failure", bad[i]);
    }
    /* Binary: a NUL inside or after the digits. */
    long long v = 12345;
    ck_assert(!parse_ll_n("1\0", 2, &v));
    ck_assert(!parse_ll_n("\0", 1, &v));
    ck_assert(!parse_ll_n("12\0003", 4, &v));
    /* Only len bytes are read: "12" out of "123". */
    ck_assert(parse_ll_n("123", 2, &v));
    ck_assert_int_eq(v, 12);
    ck_assert(parse_ll_n("-9", 2, &v));
    ck_assert_int_eq(v, -9);
}
END_TEST

/* Round trip through num_format_ll for a spread of values. */
START_TEST(test_ll_round_trip)
{
    char buf[NUM_LL_STR_MAX];
    unsigned long long x = 0x9E3779B97F4A7C15ull;
    for (int i = 0; i < 20000; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        long long v = (long long)(x >> (i % 64));
        if (i & 1)
            v = -v;
        size_t n = num_format_ll(buf, v);
        ck_assert_uint_eq(n, strlen(buf));
        char ref[32];
        snprintf(ref, sizeof(ref), "%lld", v);
        ck_assert_str_eq(buf, ref);
        long long back;
        ck_assert(parse_ll_n(buf, n, &back));
        ck_assert_int_eq(back, v);
    }
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * num_parse_ld / num_parse_double */

START_TEST(test_ld_accepts)
{
    static const struct {
        const char *s;
        long double v;
    } ok[] = {
        { "1.5", 1.5L },    { "1e3", 1000.0L }, { "1E3", 1000.0L },  { "-1.5", -1.5L },
        { "0", 0.0L },      { "-0", -0.0L },    { ".5", 0.5L },      { "5.", 5.0L },
        { "+1", 1.0L },     { "10", 10.0L },    { "0x10", 16.0L },   { "1e-5", 1e-5L },
        { "00012", 12.0L }, { "3.0", 3.0L },
    };
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        long double v = 99;
        LD_ASSERT_MSG(parse_ld_n(ok[i].s, strlen(ok[i].s), &v), "'%s' rejected", ok[i].s);
        LD_ASSERT_MSG(v == ok[i].v, "'%s' gave %Lg", ok[i].s, v);
    }
    long double v = 0;
    LD_ASSERT(parse_ld_n("inf", 3, &v));
    LD_ASSERT(isinf(v) && v > 0);
    LD_ASSERT(parse_ld_n("-inf", 4, &v));
    LD_ASSERT(isinf(v) && v < 0);
    LD_ASSERT(parse_ld_n("infinity", 8, &v));
    LD_ASSERT(isinf(v) && v > 0);
    LD_ASSERT(parse_ld_n("-0", 2, &v));
    LD_ASSERT(v == 0 && signbit(v));
    /* long double precision, not double: 0.1 differs. */
    LD_ASSERT(parse_ld_n("0.1", 3, &v));
    LD_ASSERT(v == 0.1L);
    LD_ASSERT(v != (long double)0.1);
    /* 1e400 fits a long double (it would overflow a double). */
    /* Subnormal: ERANGE but not 0, accepted as by string2ld. */
    LD_ASSERT(parse_ld_n("1e-4940", 7, &v));
    LD_ASSERT(v > 0 && v < LDBL_MIN);
    LD_ASSERT(parse_ld_n("1e400", 5, &v));
    LD_ASSERT(v > 1e399L);
}
END_TEST

START_TEST(test_ld_rejects)
{
    static const char *const bad[] = {
        "",    " 1",   "\t1",  "\n1", "1 ",   "1.5x", "nan", "NaN", "-nan", "nan(1)",
        "x",   "-",    ".",    "e3",  "1e",   "1e+",  "--1", "1..2", "abc",
        "1e99999", "-1e99999", "1e-99999", "-1e-99999",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        long double v = 99;
        LD_ASSERT_MSG(!parse_ld_n(bad[i], strlen(bad[i]), &v), "'%s' accepted", bad[i]);
        LD_ASSERT_MSG(v == 99, "'%s': output written on failure", bad[i]);
    }
    long double v = 0;
    LD_ASSERT(!parse_ld_n("1\0", 2, &v));
    LD_ASSERT(!parse_ld_n("\0", 1, &v));
    LD_ASSERT(!parse_ld_n("1\0abc", 5, &v)); /* redis-server 7.0.15: "not a valid float" */
    LD_ASSERT(parse_ld_n("1.25", 3, &v));   /* only len bytes */
    LD_ASSERT(v == 1.2L);
}
END_TEST

/* MAX_LONG_DOUBLE_CHARS: 5119 characters are read, 5120 are refused. */
START_TEST(test_ld_length_limit)
{
    size_t n = NUM_LD_STR_MAX;
    char *s = malloc(n);
    ck_assert_ptr_nonnull(s);
    s[0] = '1';
    s[1] = '.';
    memset(s + 2, '0', n - 2);
    long double v = 0;
    ck_assert(parse_ld_n(s, n - 1, &v));
    ck_assert(v == 1.0L);
    v = 7;
    ck_assert(!parse_ld_n(s, n, &v));
    ck_assert(v == 7);
    double d = 0;
    ck_assert(parse_d_n(s, n - 1, &d));
    ck_assert(d == 1.0);
    ck_assert(!parse_d_n(s, n, &d));
    free(s);
}
END_TEST

START_TEST(test_double_accepts_rejects)
{
    static const struct {
        const char *s;
        double v;
    } ok[] = {
        { "1.5", 1.5 }, { "1e3", 1000.0 }, { "-2.25", -2.25 }, { "0", 0.0 }, { ".5", 0.5 },
        { "0.1", 0.1 }, { "1.7976931348623157e308", DBL_MAX }, { "+3", 3.0 },
    };
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        double v = 99;
        ck_assert_msg(parse_d_n(ok[i].s, strlen(ok[i].s), &v), "'%s' rejected", ok[i].s);
        ck_assert_msg(v == ok[i].v, "'%s' gave %g", ok[i].s, v);
    }
    double v;
    ck_assert(parse_d_n("inf", 3, &v));
    ck_assert(isinf(v) && v > 0);
    ck_assert(parse_d_n("-inf", 4, &v));
    ck_assert(isinf(v) && v < 0);
    ck_assert(parse_d_n("+inf", 4, &v));
    ck_assert(isinf(v) && v > 0);

    static const char *const bad[] = {
        "", " 1", " reject", "\t1", "1 ", "nan", "-nan", "NAN", "1.5x", "x", "-", "1e",
        "1e400", "-1e400", "1e-400", "-1e-400",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        v = 99;
        ck_assert_msg(!parse_d_n(bad[i], strlen(bad[i]), &v), "'%s' accepted", bad[i]);
        ck_assert_msg(v == 99, "'%s': output written on failure", bad[i]);
    }
    /* A subnormal result sets ERANGE but is not 0: accepted, as by Redis's string2d. */
    ck_assert(parse_d_n("1e-310", 6, &v));
    ck_assert(v > 0 && v < DBL_MIN);
    ck_assert(!parse_d_n("1\0", 2, &v));
    ck_assert(!parse_ld_n(" reject", 7, &(long double){ 0 }));
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * num_format_ld: INCRBYFLOAT, value + incr both read with string2ld and added as long double */

static const struct {
    const char *value, *incr, *redis;
} incrbyfloat[] = {
    { "10.5", "0.1", "10.6" },
    { "5.0e3", "0", "5000" },
    { "3.0", "0", "3" },
    { "-0.0", "-0.0", "0" },
    { "0", "-0.0", "0" },
    { "0", "1e-5", "0.00001" },
    { "0.1", "0.2", "0.3" },
    { "1.1", "2.2", "3.3" },
    { "0", "1.23456789012345678", "1.23456789012345678" },
    { "1e17", "0", "100000000000000000" },
    { "0", "3.0e3", "3000" },
    { "0", "0.3333333333333333333", "0.33333333333333333" },
    { "0", "-1.5", "-1.5" },
    { "0", "1e-17", "0.00000000000000001" },
    { "0", "1e-18", "0" },
    { "0", "-1e-18", "0" },
    { "0", "-1e-20", "0" },
    { "0", "0.5e-17", "0" },
    { "0", "1e-16", "0.0000000000000001" },
    { "0", "123456789.123456789", "123456789.12345678899873747" },
    { "0", "1e20", "100000000000000000000" },
    { "0", "0.1", "0.1" },
    { "1", "1e-16", "1.0000000000000001" },
    { "0", "2.5e-3", "0.0025" },
    { "0", "-9.99999999999999999e-1", "-1" },
    { "0", "0.999999999999999999999", "1" },
    { "0", "1.00000000000000000000001", "1" },
    { "0", "1.7976931348623157e308",
      "1797693134862315699959210467741044340483864469443291784853144207651766285231243963547018"
      "6860838708556442879341942552068930870836345113605535789727802647761707349897768628839483"
      "5618163294045594434929537447290627480669417384648879122776218333598953852832103282504751"
      "611691208117720159985926376802466863339536384" },
};

START_TEST(test_format_ld_incrbyfloat)
{
    char buf[NUM_LD_STR_MAX];
    for (size_t i = 0; i < sizeof(incrbyfloat) / sizeof(incrbyfloat[0]); i++) {
        long double a = 0, b = 0;
        LD_ASSERT(parse_ld_n(incrbyfloat[i].value, strlen(incrbyfloat[i].value), &a));
        LD_ASSERT(parse_ld_n(incrbyfloat[i].incr, strlen(incrbyfloat[i].incr), &b));
        size_t n = num_format_ld(buf, sizeof(buf), a + b);
        LD_ASSERT_MSG(n == strlen(incrbyfloat[i].redis) && strcmp(buf, incrbyfloat[i].redis) == 0,
                      "%s + %s: '%s' (%zu), redis-server says '%s'", incrbyfloat[i].value,
                      incrbyfloat[i].incr, buf, n, incrbyfloat[i].redis);
    }
}
END_TEST

/* The brief's vectors as literals, and the corner cases. */
START_TEST(test_format_ld_direct)
{
    char buf[NUM_LD_STR_MAX];
#define LD(v, s)                                                                        \
    do {                                                                                \
        size_t n_ = num_format_ld(buf, sizeof(buf), (v));                               \
        LD_ASSERT_MSG(n_ == strlen(s) && strcmp(buf, (s)) == 0, "%s: '%s' (%zu)", #v,   \
                      buf, n_);                                                         \
    } while (0)
    LD(10.5L + 0.1L, "10.6");
    LD(5.0e3L, "5000");
    LD(3.0L, "3");
    LD(-0.0L, "0");
    LD(0.0L, "0");
    LD(1e-5L, "0.00001");
    LD(0.1L + 0.2L, "0.3");
    LD(1.23456789012345678L, "1.23456789012345678");
    LD(-1.5L, "-1.5");
    LD(100.0L, "100");
    LD(-100.0L, "-100");
    LD(-1.0L, "-1");
    LD(-9.0L, "-9");
    LD(1e-30L, "0");
    LD(-1e-30L, "0");
    LD(0.5L, "0.5");
    /* In double 0.1 + 0.2 would print 0.30000000000000004: the sum must stay long double. */
    LD((long double)(0.1 + 0.2), "0.30000000000000004");
#undef LD
    /* Not finite: 0 (INCRBYFLOAT refuses them before formatting). */
    LD_ASSERT((num_format_ld(buf, sizeof(buf), (long double)INFINITY)) == (0));
    LD_ASSERT((num_format_ld(buf, sizeof(buf), -(long double)INFINITY)) == (0));
    LD_ASSERT((num_format_ld(buf, sizeof(buf), (long double)NAN)) == (0));
    /* No room: 0. "1234.5" needs "1234.50000000000000000" (22 chars + NUL) before trimming. */
    char small[23];
    LD_ASSERT((num_format_ld(small, 22, 1234.5L)) == (0));
    LD_ASSERT((num_format_ld(small, 23, 1234.5L)) == (6));
    LD_ASSERT(strcmp(small, "1234.5") == 0);
    /* LDBL_MAX: 4933 integer digits fit MAX_LONG_DOUBLE_CHARS. */
    size_t n = num_format_ld(buf, sizeof(buf), LDBL_MAX);
    LD_ASSERT((n) == (4933));
    LD_ASSERT((strlen(buf)) == (n));
    LD_ASSERT(strchr(buf, '.') == NULL);
    n = num_format_ld(buf, sizeof(buf), -LDBL_MAX);
    LD_ASSERT((n) == (4934));
    LD_ASSERT((buf[0]) == ('-'));
}
END_TEST

/* A formatted value is read back equal when it has at most 17 significant digits. */
START_TEST(test_format_ld_round_trip)
{
    static const char *const s[] = { "1.5", "-2.25", "3", "0.001", "123456.789", "1e10",
                                     "-7.5e-3" };
    char buf[NUM_LD_STR_MAX];
    for (size_t i = 0; i < sizeof(s) / sizeof(s[0]); i++) {
        long double v = 0, back = 0;
        LD_ASSERT(parse_ld_n(s[i], strlen(s[i]), &v));
        size_t n = num_format_ld(buf, sizeof(buf), v);
        LD_ASSERT((n) > (0));
        LD_ASSERT(parse_ld_n(buf, n, &back));
        LD_ASSERT_MSG(back == v, "%s -> '%s' reads back different", s[i], buf);
    }
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * num_format_ll / num_format_ull / num_format_double */

START_TEST(test_format_ll)
{
    char buf[NUM_LL_STR_MAX];
    ck_assert_uint_eq(num_format_ll(buf, LLONG_MIN), 20);
    ck_assert_str_eq(buf, "-9223372036854775808");
    ck_assert_uint_eq(num_format_ll(buf, LLONG_MAX), 19);
    ck_assert_str_eq(buf, "9223372036854775807");
    ck_assert_uint_eq(num_format_ll(buf, 0), 1);
    ck_assert_str_eq(buf, "0");
    ck_assert_uint_eq(num_format_ll(buf, -1), 2);
    ck_assert_str_eq(buf, "-1");
    ck_assert_uint_eq(num_format_ll(buf, 10), 2);
    ck_assert_str_eq(buf, "10");
    ck_assert_uint_eq(num_format_ll(buf, LLONG_MIN + 1), 20);
    ck_assert_str_eq(buf, "-9223372036854775807");
    ck_assert_uint_eq(num_format_ull(buf, ULLONG_MAX), 20);
    ck_assert_str_eq(buf, "18446744073709551615");
    ck_assert_uint_eq(num_format_ull(buf, 0), 1);
    ck_assert_str_eq(buf, "0");
    /* Exactly NUM_LL_STR_MAX bytes are enough: no write past them. */
    char *h = malloc(NUM_LL_STR_MAX);
    ck_assert_uint_eq(num_format_ll(h, LLONG_MIN), 20);
    ck_assert_int_eq(memcmp(h, "-9223372036854775808", 21), 0);
    ck_assert_uint_eq(num_format_ull(h, ULLONG_MAX), 20);
    free(h);
}
END_TEST

START_TEST(test_format_double)
{
    char buf[64];
#define D(v, s)                                                                         \
    do {                                                                                \
        size_t n_ = num_format_double(buf, sizeof(buf), (v));                           \
        ck_assert_msg(n_ == strlen(s) && strcmp(buf, (s)) == 0, "%s: '%s' (%zu)", #v,   \
                      buf, n_);                                                         \
    } while (0)
    D(INFINITY, "inf");
    D(-INFINITY, "-inf");
    D(NAN, "nan");
    D(1.5, "1.5");
    D(0.1, "0.10000000000000001");
    D(0.1 + 0.2, "0.30000000000000004");
    D(3.0, "3");
    D(0.0, "0");
    D(-0.0, "-0");
    D(-2.5, "-2.5");
    D(1e17, "1e+17");
    D(123456789012345678.0, "1.2345678901234568e+17");
    D(1e-5, "1.0000000000000001e-05");
    D(DBL_MAX, "1.7976931348623157e+308");
    D(5e-324, "4.9406564584124654e-324");
#undef D
    /* Every finite double reads back equal (17 significant digits). */
    unsigned long long x = 0x243F6A8885A308D3ull;
    for (int i = 0; i < 20000; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        double d;
        memcpy(&d, &x, sizeof(d));
        if (!isfinite(d))
            continue;
        size_t n = num_format_double(buf, sizeof(buf), d);
        double back;
        ck_assert(parse_d_n(buf, n, &back) || fpclassify(d) == FP_SUBNORMAL);
        if (fpclassify(d) != FP_SUBNORMAL)
            ck_assert_msg(memcmp(&back, &d, sizeof(d)) == 0 || (d == 0 && back == 0),
                          "'%s' does not read back", buf);
    }
}
END_TEST

static Suite *numbers_suite(void)
{
    Suite *s = suite_create("numbers");
    TCase *tc = tcase_create("numbers");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_ll_accepts);
    tcase_add_test(tc, test_ll_rejects);
    tcase_add_test(tc, test_ll_round_trip);
    tcase_add_test(tc, test_ld_accepts);
    tcase_add_test(tc, test_ld_rejects);
    tcase_add_test(tc, test_ld_length_limit);
    tcase_add_test(tc, test_double_accepts_rejects);
    tcase_add_test(tc, test_format_ld_incrbyfloat);
    tcase_add_test(tc, test_format_ld_direct);
    tcase_add_test(tc, test_format_ld_round_trip);
    tcase_add_test(tc, test_format_ll);
    tcase_add_test(tc, test_format_double);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    ld_exact = long_double_is_native();
    if (!ld_exact)
        fprintf(stderr, "test_numbers: long double arithmetic is not native (valgrind?): "
                        "long double results are exercised but not checked\n");
    SRunner *sr = srunner_create(numbers_suite());
    srunner_run_all(sr, CK_ENV);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
