/* Number parsing and formatting, following Redis's util.c so replies match byte for byte. */
#include "proxy/numbers.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ctype.h>
#include <limits.h>

bool num_parse_ll(const char *s, size_t len, long long *out)
{
    if (len == 0 || len >= NUM_LL_STR_MAX)
        return false;
    if (len == 1 && s[0] == '0') {
        *out = 0;
        return true;
    }
    size_t i = 0;
    bool neg = false;
    if (s[0] == '-') {
        neg = true;
        if (++i == len)
            return false;
    }
    if (s[i] < '1' || s[i] > '9')
        return false;
    unsigned long long v = 0;
    if (len - i <= 18) { /* cannot overflow: no check (and no division) per digit */
        for (; i < len; i++) {
            unsigned d = (unsigned)(unsigned char)s[i] - '0';
            if (d > 9)
                return false;
            v = v * 10 + d;
        }
    }
    for (; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        unsigned d = (unsigned)(s[i] - '0');
        if (v > (~0ull - d) / 10)
            return false;
        v = v * 10 + d;
    }
    if (neg) {
        if (v > (unsigned long long)LLONG_MAX + 1)
            return false;
        *out = v == (unsigned long long)LLONG_MAX + 1 ? LLONG_MIN : -(long long)v;
    } else {
        if (v > (unsigned long long)LLONG_MAX)
            return false;
        *out = (long long)v;
    }
    return true;
}

bool num_parse_ld(const char *s, size_t len, long double *out)
{
    char buf[NUM_LD_STR_MAX];
    if (len == 0 || len >= sizeof(buf))
        return false;
    memcpy(buf, s, len);
    buf[len] = '\0';
    errno = 0;
    char *end;
    long double v = strtold(buf, &end);
    if (isspace((unsigned char)buf[0]) || (size_t)(end - buf) != len ||
        (errno == ERANGE && (v == HUGE_VALL || v == -HUGE_VALL || fpclassify(v) == FP_ZERO)) ||
        isnan(v))
        return false;
    *out = v;
    return true;
}

bool num_parse_double(const char *s, size_t len, double *out)
{
    char buf[NUM_LD_STR_MAX];
    if (len == 0 || len >= sizeof(buf))
        return false;
    memcpy(buf, s, len);
    buf[len] = '\0';
    errno = 0;
    char *end;
    double v = strtod(buf, &end);
    if (isspace((unsigned char)buf[0]) || (size_t)(end - buf) != len ||
        (errno == ERANGE && (v == HUGE_VAL || v == -HUGE_VAL || fpclassify(v) == FP_ZERO)) ||
        isnan(v))
        return false;
    *out = v;
    return true;
}

/* Two digits at a time from a table, written in place from the end: a reply header ($64,
 * :1) costs a few instructions instead of a division per digit and a reversal. */
static const char num_digit_pairs[] =
    "00010203040506070809101112131415161718192021222324252627282930313233343536373839"
    "40414243444546474849505152535455565758596061626364656667686970717273747576777879"
    "8081828384858687888990919293949596979899";

size_t num_format_ull(char *buf, unsigned long long v)
{
    size_t n = 1;
    for (unsigned long long p = 10; v >= p && n < 20; p *= 10)
        n++;
    buf[n] = '\0';
    size_t i = n;
    while (v >= 100) {
        unsigned r = (unsigned)(v % 100) * 2;
        v /= 100;
        buf[--i] = num_digit_pairs[r + 1];
        buf[--i] = num_digit_pairs[r];
    }
    if (v >= 10) {
        buf[--i] = num_digit_pairs[v * 2 + 1];
        buf[--i] = num_digit_pairs[v * 2];
    } else {
        buf[--i] = (char)('0' + v);
    }
    return n;
}

size_t num_format_ll(char *buf, long long v)
{
    if (v < 0) {
        buf[0] = '-';
        return 1 + num_format_ull(buf + 1, (unsigned long long)(-(v + 1)) + 1);
    }
    return num_format_ull(buf, (unsigned long long)v);
}

size_t num_format_ld(char *buf, size_t cap, long double v)
{
    if (!isfinite(v))
        return 0;
    /* Redis: "%.17Lf" for human mode, then trim trailing zeros and a trailing dot. */
    int n = snprintf(buf, cap, "%.17Lf", v);
    if (n < 0 || (size_t)n >= cap)
        return 0;
    if (strchr(buf, '.')) {
        char *p = buf + n - 1;
        while (*p == '0') {
            p--;
            n--;
        }
        if (*p == '.')
            n--;
    }
    if (n == 2 && buf[0] == '-' && buf[1] == '0') { /* "-0" prints as "0" */
        buf[0] = '0';
        n = 1;
    }
    buf[n] = '\0';
    return (size_t)n;
}

size_t num_format_double(char *buf, size_t cap, double v)
{
    int n;
    if (isinf(v))
        n = snprintf(buf, cap, "%s", v > 0 ? "inf" : "-inf");
    else if (isnan(v))
        n = snprintf(buf, cap, "nan");
    else
        n = snprintf(buf, cap, "%.17g", v);
    return n < 0 ? 0 : (size_t)n;
}
