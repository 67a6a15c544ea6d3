/* Number parsing and formatting with Redis's exact rules: what string2ll accepts (no spaces,
 * no '+', no leading zeros), how long doubles are read (INCRBYFLOAT) and printed (%.17Lg,
 * trailing zeros trimmed), and how doubles are printed in replies ("inf", "-inf", %.17g). */
#ifndef PROXY_NUMBERS_H
#define PROXY_NUMBERS_H

#include <stdbool.h>
#include <stddef.h>

#define NUM_LL_STR_MAX 21   /* "-9223372036854775808" + NUL */
#define NUM_LD_STR_MAX 5120 /* Redis's MAX_LONG_DOUBLE_CHARS */

/* Redis's string2ll: true and *out on success. */
bool num_parse_ll(const char *s, size_t len, long long *out);
/* Redis's string2ld (strtold, no spaces, no nan, no overflow). */
bool num_parse_ld(const char *s, size_t len, long double *out);
/* Redis's string2d for float arguments (allows "inf", rejects nan and spaces). */
bool num_parse_double(const char *s, size_t len, double *out);
/* Writes the decimal form of v into buf (>= NUM_LL_STR_MAX); returns its length. */
size_t num_format_ll(char *buf, long long v);
size_t num_format_ull(char *buf, unsigned long long v);
/* Redis's ld2string(LD_STR_HUMAN): 17 significant digits, no exponent, zeros trimmed.
 * buf must hold NUM_LD_STR_MAX bytes; returns the length, 0 when v is not finite. */
size_t num_format_ld(char *buf, size_t cap, long double v);
/* A double as RESP3 / ZSCORE print it: "inf", "-inf", "nan" or %.17g. */
size_t num_format_double(char *buf, size_t cap, double v);

#endif
