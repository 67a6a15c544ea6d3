/* Argument parsers that reply with Redis's error on failure; see args.h. */
#include "proxy/args.h"

#include "proxy/numbers.h"
#include "proxy/reply.h"
#include "proxy/server.h"

#include <ctype.h>
#include <limits.h>
#include <stdint.h>
#include <string.h>

bool arg_ll_or_reply(struct client *c, size_t i, long long *out, const char *msg)
{
    if (num_parse_ll(c->argv[i].ptr, c->argv[i].len, out))
        return true;
    reply_error(c, msg ? msg : ERR_NOT_INTEGER);
    return false;
}

bool arg_ld_or_reply(struct client *c, size_t i, long double *out)
{
    if (num_parse_ld(c->argv[i].ptr, c->argv[i].len, out))
        return true;
    reply_error(c, ERR_NOT_FLOAT);
    return false;
}

bool arg_db_or_reply(struct client *c, size_t i, int *db)
{
    long long v;
    if (!arg_ll_or_reply(c, i, &v, NULL))
        return false;
    if (v < 0 || v >= c->srv->cfg.databases) {
        reply_error(c, ERR_DB_RANGE);
        return false;
    }
    *db = (int)v;
    return true;
}

/* Redis's parseScanCursorOrReply: strtoul(arg, &end, 10) up to the argument's first NUL, with a
 * leading space refused, a sign accepted ("-1" wraps) and "" read as 0. */
bool arg_cursor_or_reply(struct client *c, size_t i, uint64_t *out)
{
    const struct resp_arg *a = &c->argv[i];
    const char *p = a->ptr, *end = p + strnlen(a->ptr, a->len);
    uint64_t v = 0;
    bool neg = false;
    if (p == end)
        goto done;
    if (*p == '+' || *p == '-')
        neg = *p++ == '-';
    if (p == end)
        goto invalid;
    for (; p < end; p++) {
        if (!isdigit((unsigned char)*p))
            goto invalid;
        unsigned d = (unsigned)(*p - '0');
        if (v > (UINT64_MAX - d) / 10)
            goto invalid; /* ERANGE */
        v = v * 10 + d;
    }
done:
    *out = neg ? (uint64_t)0 - v : v;
    return true;
invalid:
    reply_error(c, ERR_INVALID_CURSOR);
    return false;
}

long long scan_max_steps(long long count)
{
    return count > LLONG_MAX / 10 ? LLONG_MAX : count * 10;
}

bool arg_scan_options_or_reply(struct client *c, size_t first, long long *count,
                               const struct resp_arg **pat)
{
    for (size_t i = first; i < c->argc; i += 2) {
        bool has_value = i + 1 < c->argc;
        if (arg_is(&c->argv[i], "count") && has_value) {
            if (!arg_ll_or_reply(c, i + 1, count, NULL))
                return false;
            if (*count < 1) {
                reply_error(c, ERR_SYNTAX);
                return false;
            }
        } else if (arg_is(&c->argv[i], "match") && has_value) {
            const struct resp_arg *p = &c->argv[i + 1];
            *pat = (p->len == 1 && p->ptr[0] == '*') ? NULL : p;
        } else {
            reply_error(c, ERR_SYNTAX);
            return false;
        }
    }
    return true;
}
