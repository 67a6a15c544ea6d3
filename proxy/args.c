/* Argument parsers that reply with Redis's error on failure; see args.h. */
#include "proxy/args.h"

#include "proxy/numbers.h"
#include "proxy/reply.h"
#include "proxy/server.h"

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
