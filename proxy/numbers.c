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

size_t num_format_ull(char *buf, unsigned long long v)
{
    char tmp[NUM_LL_STR_MAX];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    for (size_t i = 0; i < n; i++)
        buf[i] = tmp[n - 1 - i];
    buf[n] = '\0';
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
