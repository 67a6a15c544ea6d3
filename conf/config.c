/* The configuration: one static option table (config_options[]) and everything it drives:
 * defaults, parsing each value (config_load.c reads sidecar.ini through it), the
 * SIDECAR_<SECTION>_<KEY> environment overrides, validation, protected mode, password files,
 * CONFIG GET / CONFIG SET (our names and Redis's) and the --help text. No code here names an
 * individual option outside the table, except the cross-field checks of validation.
 * Invariants: every char * the table points at is NULL or a heap string owned by the struct
 * config (NULL only before config_init_defaults or after config_free); a value is parsed
 * completely before it replaces the old one, so a rejected value leaves the field untouched. */
#include "conf/config.h"
#include "conf/config_internal.h"

#include "conf/glob.h"
#include "conf/log.h"
#include "conf/xmalloc.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define MB (1024LL * 1024)

#define ROW(sec, key, redis, type, field, min, max, rt, def, help) \
    { sec, key, redis, type, offsetof(struct config, field), min, max, rt, def, help, false }
#define COMPAT(redis, type, def) { NULL, NULL, redis, type, 0, 0, 0, false, def, NULL, false }
#define SECRET(sec, key, redis, field, rt, help) \
    { sec, key, redis, OPT_STRING, offsetof(struct config, field), 0, 0, rt, "", help, true }

const struct config_option config_options[] = {
    ROW("server", "listen", NULL, OPT_LISTEN, listen, 0, 0, false, "127.0.0.1:6379",
        "addresses to serve, host:port separated by spaces or commas; IPv6 as [::1]:6379"),
    ROW("server", "unixsocket", "unixsocket", OPT_STRING, unixsocket, 0, 0, false, "",
        "Unix socket path to serve as well (\"\" = none)"),
    ROW("server", "unixsocketperm", "unixsocketperm", OPT_OCTAL, unixsocketperm, 0, 0777, false,
        "700", "permissions of the Unix socket, octal"),
    ROW("server", "maxclients", "maxclients", OPT_INT, maxclients, 1, 1000000, true, "10000",
        "most clients connected at once"),
    ROW("server", "timeout", "timeout", OPT_INT, timeout, 0, INT_MAX, true, "0",
        "close a client idle for this many seconds (0 = never)"),
    ROW("server", "tcp_backlog", "tcp-backlog", OPT_INT, tcp_backlog, 1, 65535, false, "511",
        "listen(2) backlog of the TCP listeners"),
    ROW("server", "tcp_keepalive", "tcp-keepalive", OPT_INT, tcp_keepalive, 0, INT_MAX, true,
        "300", "TCP keepalive period of client connections, seconds (0 = off)"),
    ROW("server", "databases", "databases", OPT_INT, databases, 1, 1024, false, "16",
        "number of databases, SELECT 0..databases-1"),
    ROW("server", "hz", "hz", OPT_INT, hz, 1, 500, true, "10",
        "background task runs per second (active expiry, client timeouts)"),
    SECRET("server", "requirepass", "requirepass", requirepass, true,
           "password of the default user, which clients AUTH with (\"\" = none); CONFIG GET "
           "shows (redacted)"),
    ROW("server", "requirepass_file", NULL, OPT_STRING, requirepass_file, 0, 0, false, "",
        "file holding requirepass (its trailing newline dropped) instead of the ini (\"\" = none)"),
    ROW("server", "protected_mode", "protected-mode", OPT_BOOL, protected_mode, 0, 0, true, "yes",
        "refuse to start on a non-loopback listen address while the default user has no password"),
    ROW("server", "proto_max_bulk_len", "proto-max-bulk-len", OPT_MEMORY, proto_max_bulk_len, MB,
        LLONG_MAX, true, "512mb", "largest bulk string a client may send"),
    ROW("server", "client_query_buffer_limit", "client-query-buffer-limit", OPT_MEMORY,
        client_query_buffer_limit, MB, LLONG_MAX, true, "1gb",
        "largest query buffer of one client; a client over it is disconnected"),
    ROW("server", "client_output_buffer_limit", NULL, OPT_MEMORY, client_output_buffer_limit, MB,
        LLONG_MAX, true, "256mb", "largest pending output of one client; over it, disconnected"),
    ROW("server", "pubsub_output_buffer_limit", NULL, OPT_MEMORY, pubsub_output_buffer_limit,
        MB, LLONG_MAX, true, "32mb",
        "largest pending output of a subscribed client (Redis's pubsub class); over it, disconnected"),
    ROW("server", "slowlog_log_slower_than", "slowlog-log-slower-than", OPT_INT,
        slowlog_log_slower_than, -1, LLONG_MAX, true, "10000",
        "SLOWLOG keeps the commands that took at least this many microseconds (-1 = off, 0 = all)"),
    ROW("server", "slowlog_max_len", "slowlog-max-len", OPT_INT, slowlog_max_len, 0, LONG_MAX,
        true, "128", "most entries SLOWLOG keeps (the oldest are dropped)"),
    ROW("cache", "max_memory", "maxmemory", OPT_MEMORY, max_memory, 0, LLONG_MAX, true, "256mb",
        "byte budget of the local store (0 = unbounded)"),
    ROW("cache", "maxmemory_policy", "maxmemory-policy", OPT_POLICY, maxmemory_policy, 0, 0, true,
        "allkeys-lru", "eviction at max_memory: allkeys-lru, volatile-lru, allkeys-random, "
        "volatile-ttl or noeviction"),
    ROW("cache", "maxmemory_samples", "maxmemory-samples", OPT_INT, maxmemory_samples, 1, 64, true,
        "5", "keys sampled per eviction by the sampling policies"),
    ROW("cache", "invalidation", NULL, OPT_INVALIDATION, invalidation, 0, 0, false, "tracking",
        "near-cache coherence: tracking (Redis invalidates the keys read), bcast (every write under "
        "bcast_prefixes) or ttl (no invalidation: entries live max_ttl_ms)"),
    ROW("cache", "bcast_prefixes", NULL, OPT_STRING, bcast_prefixes, 0, 0, false, "",
        "key prefixes for invalidation = bcast, separated by spaces (\"\" = every key); only "
        "keys under one of them are cached"),
    ROW("cache", "max_ttl_ms", NULL, OPT_INT, max_ttl_ms, 1, LLONG_MAX, true, "60000",
        "longest a near-cache entry lives; its TTL is min(max_ttl_ms, the upstream's PTTL)"),
    ROW("cache", "negative_ttl_ms", NULL, OPT_INT, negative_ttl_ms, 0, LLONG_MAX, true, "0",
        "keep replies about keys that do not exist upstream this long (0 = never cache them)"),
    ROW("cache", "write_through", NULL, OPT_BOOL, write_through, 0, 0, true, "yes",
        "after SET, SETEX, PSETEX, SETNX or MSET, read the keys back from the upstream and "
        "keep what it holds locally (no = only drop the local copy)"),
    ROW("cache", "serve_stale_ms", NULL, OPT_INT, serve_stale_ms, 0, LLONG_MAX, true, "0",
        "while the upstream is down, serve entries up to this long past their TTL (0 = never)"),
    ROW("upstream", "host", NULL, OPT_STRING, upstream.host, 0, 0, false, "",
        "upstream Redis host (\"\" with no unixsocket = standalone cache)"),
    ROW("upstream", "port", NULL, OPT_INT, upstream.port, 1, 65535, false, "6379",
        "upstream Redis port"),
    ROW("upstream", "unixsocket", NULL, OPT_STRING, upstream.unixsocket, 0, 0, false, "",
        "upstream Redis Unix socket path, instead of host and port (\"\" = TCP)"),
    ROW("upstream", "username", NULL, OPT_STRING, upstream.username, 0, 0, false, "",
        "ACL user for AUTH (\"\" = AUTH with the password only)"),
    SECRET("upstream", "password", NULL, upstream.password, false,
           "password for AUTH (\"\" = no AUTH); CONFIG GET shows (redacted)"),
    ROW("upstream", "password_file", NULL, OPT_STRING, upstream.password_file, 0, 0, false, "",
        "file holding the upstream password (its trailing newline dropped) instead of the ini "
        "(\"\" = none)"),
    ROW("upstream", "db", NULL, OPT_INT, upstream.db, 0, 1023, false, "0",
        "database selected on upstream connections"),
    ROW("upstream", "connect_timeout_ms", NULL, OPT_INT, upstream.connect_timeout_ms, 1, INT_MAX,
        false, "1000", "give up a connection attempt after this many milliseconds"),
    ROW("upstream", "op_timeout_ms", NULL, OPT_INT, upstream.op_timeout_ms, 1, INT_MAX, false,
        "1000", "fail a forwarded command with no reply after this many milliseconds"),
    ROW("upstream", "connections", NULL, OPT_INT, upstream.connections, 1, 64, false, "1",
        "data connections to the upstream"),
    ROW("upstream", "reconnect_min_ms", NULL, OPT_INT, upstream.reconnect_min_ms, 1, INT_MAX,
        false, "100", "first reconnect delay; doubles up to reconnect_max_ms"),
    ROW("upstream", "reconnect_max_ms", NULL, OPT_INT, upstream.reconnect_max_ms, 1, INT_MAX,
        false, "5000", "longest reconnect delay"),
    ROW("upstream", "health_check_interval_ms", NULL, OPT_INT, upstream.health_check_interval_ms,
        0, INT_MAX, false, "1000", "PING an idle upstream this often (0 = off)"),
    ROW("admin", "listen", NULL, OPT_ADDR, admin_listen, 0, 0, false, "",
        "host:port of the admin HTTP port (\"\" = off)"),
    ROW("log", "level", "loglevel", OPT_LOGLEVEL, log_level, 0, 0, true, "notice",
        "debug, verbose, notice or warning"),
    ROW("log", "file", "logfile", OPT_STRING, log_file, 0, 0, false, "",
        "log file path (\"\" = stderr); reopened on SIGUSR1 (log rotation)"),
    ROW("log", "format", NULL, OPT_LOGFORMAT, log_format, 0, 0, false, "text",
        "text (Redis's line layout) or json (one object per line)"),
    COMPAT("save", OPT_CONST, ""),
    COMPAT("appendonly", OPT_CONST, "no"),
    COMPAT("bind", OPT_BIND, NULL),
    COMPAT("port", OPT_PORT, NULL),
};

const size_t config_noptions = sizeof(config_options) / sizeof(config_options[0]);

static const char *const policy_names[] = {
    [POLICY_ALLKEYS_LRU] = "allkeys-lru",
    [POLICY_VOLATILE_LRU] = "volatile-lru",
    [POLICY_ALLKEYS_RANDOM] = "allkeys-random",
    [POLICY_VOLATILE_TTL] = "volatile-ttl",
    [POLICY_NOEVICTION] = "noeviction",
};
#define POLICY_COUNT ((int)(sizeof(policy_names) / sizeof(policy_names[0])))

static const char *const bool_names[] = { "no", "yes" };
static const char *const log_format_names[] = {
    [LOG_FORMAT_TEXT] = "text",
    [LOG_FORMAT_JSON] = "json",
};
static const char *const invalidation_names[] = {
    [INVALIDATION_TRACKING] = "tracking",
    [INVALIDATION_BCAST] = "bcast",
    [INVALIDATION_TTL] = "ttl",
};
#define NAMES_COUNT(a) ((int)(sizeof(a) / sizeof((a)[0])))

/* The name of value i of an enum-typed option, NULL when out of range. */
static const char *opt_enum_name(enum opt_type t, int i)
{
    switch (t) {
    case OPT_POLICY:
        return i >= 0 && i < POLICY_COUNT ? policy_names[i] : NULL;
    case OPT_LOGLEVEL:
        return log_level_name(i);
    case OPT_BOOL:
        return i >= 0 && i < NAMES_COUNT(bool_names) ? bool_names[i] : NULL;
    case OPT_INVALIDATION:
        return i >= 0 && i < NAMES_COUNT(invalidation_names) ? invalidation_names[i] : NULL;
    case OPT_LOGFORMAT:
        return i >= 0 && i < NAMES_COUNT(log_format_names) ? log_format_names[i] : NULL;
    default:
        return NULL;
    }
}

/* The value of name (case-insensitive) for an enum-typed option, -1 when unknown. */
static int opt_enum_parse(enum opt_type t, const char *name)
{
    int lo = t == OPT_LOGLEVEL ? LOG_DEBUG : 0;
    for (int i = lo; i < lo + 64; i++) {
        const char *n = opt_enum_name(t, i);
        if (!n)
            break;
        if (strcasecmp(name, n) == 0)
            return i;
    }
    return -1;
}

/* ---- error codes and their two wordings (file/env, and Redis's CONFIG SET) ---- */


/* "a, b, c" for the enum names of o, in our enum order. */
static void opt_format_choices(const struct config_option *o, char *buf, size_t size)
{
    size_t used = 0;
    int lo = o->type == OPT_LOGLEVEL ? LOG_DEBUG : 0;

    buf[0] = '\0';
    for (int i = lo; used < size; i++) {
        const char *name = opt_enum_name(o->type, i);
        if (!name)
            break;
        int n = snprintf(buf + used, size - used, "%s%s", i > lo ? ", " : "", name);
        if (n < 0)
            break;
        used += (size_t)n;
    }
}

/* The reason after "bad value 'x' for key: " in file and environment errors. */
void opt_describe_err(const struct config_option *o, enum opt_err e, char *buf, size_t size)
{
    char choices[128];

    switch (e) {
    case OPT_ERR_INT:
        snprintf(buf, size, "expected an integer");
        break;
    case OPT_ERR_MEMORY:
        snprintf(buf, size, "expected a memory size like 256mb");
        break;
    case OPT_ERR_OCTAL:
        snprintf(buf, size, "expected an octal mode like 700");
        break;
    case OPT_ERR_RANGE:
        if (o->type == OPT_OCTAL)
            snprintf(buf, size, "must be between %llo and %llo", o->min, o->max);
        else if (o->max == LLONG_MAX)
            snprintf(buf, size, "must be at least %lld%s", o->min,
                     o->type == OPT_MEMORY ? " bytes" : "");
        else
            snprintf(buf, size, "must be between %lld and %lld", o->min, o->max);
        break;
    case OPT_ERR_ENUM:
        opt_format_choices(o, choices, sizeof(choices));
        snprintf(buf, size, "expected one of %s", choices);
        break;
    case OPT_ERR_ADDR:
        snprintf(buf, size, "expected host:port with port 1..65535 (IPv6 as [::1]:6379)");
        break;
    case OPT_ERR_TOO_MANY:
        snprintf(buf, size, "expected at most %d addresses", CONFIG_MAX_LISTEN);
        break;
    case OPT_ERR_TEXT:
        snprintf(buf, size, "argument must hold no line break nor ' ;' and fit one ini line "
                 "(%d bytes)", CONFIG_LINE_MAX);
        break;
    default:
        snprintf(buf, size, "cannot be set");
        break;
    }
}

/* The reason after "CONFIG SET failed (possibly related to argument 'x') - ", as Redis 7. */
static void opt_describe_err_redis(const struct config_option *o, enum opt_err e, char *buf,
                                   size_t size)
{
    char choices[128];

    switch (e) {
    case OPT_ERR_MEMORY:
        snprintf(buf, size, "argument must be a memory value");
        break;
    case OPT_ERR_RANGE:
        snprintf(buf, size, "argument must be between %lld and %lld inclusive", o->min, o->max);
        break;
    case OPT_ERR_ENUM:
        opt_format_choices(o, choices, sizeof(choices));
        snprintf(buf, size, "argument(s) must be one of the following: %s", choices);
        break;
    case OPT_ERR_INT:
    case OPT_ERR_OCTAL:
        snprintf(buf, size, "argument couldn't be parsed into an integer");
        break;
    default:
        opt_describe_err(o, e, buf, size);
        break;
    }
}

/* ---- scalar parsers ---- */

/* Decimal integer exactly as Redis's string2ll: optional '-', no '+', no spaces, no leading
 * zeros, no overflow. */
static bool config_parse_ll(const char *s, long long *out)
{
    bool negative = s[0] == '-';
    const char *p = s + negative;
    unsigned long long v = 0;
    unsigned long long limit = negative ? (unsigned long long)LLONG_MAX + 1 : LLONG_MAX;

    if (strcmp(s, "0") == 0) {
        *out = 0;
        return true;
    }
    if (*p < '1' || *p > '9')
        return false;
    for (; *p; p++) {
        if (*p < '0' || *p > '9')
            return false;
        unsigned d = (unsigned)(*p - '0');
        if (v > (limit - d) / 10)
            return false;
        v = v * 10 + d;
    }
    *out = negative ? (long long)(0 - v) : (long long)v;
    return true;
}

static bool config_parse_octal(const char *s, long long *out)
{
    long long v = 0;

    if (!*s || strlen(s) > 12)
        return false;
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '7')
            return false;
        v = v * 8 + (*p - '0');
    }
    *out = v;
    return true;
}

/* The multiplier of a memory unit, as Redis's memtoull: b k kb m mb g gb; 0 when unknown. */
static long long config_memory_unit(const char *u)
{
    static const struct { const char *name; long long mul; } units[] = {
        { "", 1 }, { "b", 1 }, { "k", 1000 }, { "kb", 1024 }, { "m", 1000 * 1000 },
        { "mb", 1024 * 1024 }, { "g", 1000LL * 1000 * 1000 }, { "gb", 1024LL * 1024 * 1024 },
    };
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
        if (strcasecmp(u, units[i].name) == 0)
            return units[i].mul;
    return 0;
}

int config_parse_memory(const char *s, long long *out)
{
    long long v = 0, mul;
    const char *p = s;

    if (*p < '0' || *p > '9')
        return -1;
    for (; *p >= '0' && *p <= '9'; p++) {
        if (v > (LLONG_MAX - (*p - '0')) / 10)
            return -1;
        v = v * 10 + (*p - '0');
    }
    mul = config_memory_unit(p);
    if (mul == 0 || v > LLONG_MAX / mul)
        return -1;
    *out = v * mul;
    return 0;
}

const char *config_policy_name(int policy)
{
    if (policy < 0 || policy >= POLICY_COUNT)
        return NULL;
    return policy_names[policy];
}

int config_policy_parse(const char *name)
{
    for (int i = 0; i < POLICY_COUNT; i++)
        if (strcasecmp(name, policy_names[i]) == 0)
            return i;
    return -1;
}

/* ---- addresses ---- */

static bool addr_host_char_ok(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '.' || c == '-' || c == '_' || c == '*';
}

static bool addr_v6_char_ok(char c)
{
    return (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') || (c >= '0' && c <= '9') ||
           c == ':' || c == '.' || c == '%';
}

static bool addr_port_ok(const char *s, size_t len)
{
    long long port;
    char buf[8];

    if (len == 0 || len > 5)
        return false;
    memcpy(buf, s, len);
    buf[len] = '\0';
    return config_parse_ll(buf, &port) && port >= 1 && port <= 65535;
}

/* Splits "host:port" or "[v6]:port" (len bytes at s) into the host (without brackets) and port.
 * Returns false when malformed. */
static bool addr_split(const char *s, size_t len, const char **host, size_t *hostlen,
                       const char **port, size_t *portlen)
{
    const char *colon, *hend;

    if (len == 0 || len > CONFIG_ADDR_MAX)
        return false;
    if (s[0] == '[') {
        hend = memchr(s, ']', len);
        if (!hend || hend + 1 >= s + len || hend[1] != ':')
            return false;
        *host = s + 1;
        colon = hend + 1;
    } else {
        colon = memchr(s, ':', len);
        if (!colon)
            return false;
        *host = s;
        hend = colon;
    }
    *hostlen = (size_t)(hend - *host);
    *port = colon + 1;
    *portlen = len - (size_t)(*port - s);
    return true;
}

static bool addr_valid(const char *s, size_t len)
{
    const char *host, *port;
    size_t hostlen, portlen;
    bool v6;

    if (!addr_split(s, len, &host, &hostlen, &port, &portlen))
        return false;
    if (hostlen == 0 || hostlen > CONFIG_HOST_MAX || !addr_port_ok(port, portlen))
        return false;
    v6 = s[0] == '[';
    if (v6 && !memchr(host, ':', hostlen))
        return false;
    for (size_t i = 0; i < hostlen; i++)
        if (v6 ? !addr_v6_char_ok(host[i]) : !addr_host_char_ok(host[i]))
            return false;
    return true;
}

/* ---- parsed values: parse completely, then commit ---- */

struct opt_value {
    long long num;
    char *str;                        /* owned until committed */
    char *list[CONFIG_MAX_LISTEN];    /* owned until committed */
    size_t nlist;
};

static void opt_value_free(struct opt_value *v)
{
    free(v->str);
    v->str = NULL;
    for (size_t i = 0; i < v->nlist; i++)
        free(v->list[i]);
    v->nlist = 0;
}

static bool listen_is_sep(char c)
{
    return c == ' ' || c == ',' || c == '\t';
}

static enum opt_err listen_parse(const char *text, struct opt_value *v)
{
    const char *p = text;

    for (;;) {
        while (listen_is_sep(*p))
            p++;
        if (!*p)
            return OPT_OK;
        size_t len = 0;
        while (p[len] && !listen_is_sep(p[len]))
            len++;
        if (v->nlist == CONFIG_MAX_LISTEN)
            return OPT_ERR_TOO_MANY;
        if (!addr_valid(p, len))
            return OPT_ERR_ADDR;
        v->list[v->nlist++] = xmemdup(p, len);
        p += len;
    }
}

static enum opt_err opt_parse_number(const struct config_option *o, const char *text,
                                     struct opt_value *v)
{
    if (o->type == OPT_MEMORY) {
        if (config_parse_memory(text, &v->num) < 0)
            return OPT_ERR_MEMORY;
    } else if (o->type == OPT_OCTAL) {
        if (!config_parse_octal(text, &v->num))
            return OPT_ERR_OCTAL;
    } else if (!config_parse_ll(text, &v->num)) {
        return OPT_ERR_INT;
    }
    if (v->num < o->min || v->num > o->max)
        return OPT_ERR_RANGE;
    return OPT_OK;
}

/* Parses text for o into v. On failure v holds nothing that needs freeing. */
static enum opt_err opt_parse(const struct config_option *o, const char *text, struct opt_value *v)
{
    enum opt_err e = OPT_OK;

    memset(v, 0, sizeof(*v));
    switch (o->type) {
    case OPT_INT:
    case OPT_MEMORY:
    case OPT_OCTAL:
        return opt_parse_number(o, text, v);
    case OPT_ADDR:
        if (*text && !addr_valid(text, strlen(text)))
            return OPT_ERR_ADDR;
        /* fall through */
    case OPT_STRING:
        v->str = xstrdup(text);
        return OPT_OK;
    case OPT_LISTEN:
        e = listen_parse(text, v);
        if (e != OPT_OK)
            opt_value_free(v);
        return e;
    case OPT_POLICY:
    case OPT_LOGLEVEL:
    case OPT_BOOL:
    case OPT_INVALIDATION:
    case OPT_LOGFORMAT:
        v->num = opt_enum_parse(o->type, text);
        return v->num < 0 ? OPT_ERR_ENUM : OPT_OK;
    default:
        return OPT_ERR_READONLY;
    }
}

static void *opt_field(const struct config *cfg, const struct config_option *o)
{
    return (char *)cfg + o->offset;
}

static const char *str_or_empty(const char *s)
{
    return s ? s : "";
}

/* Moves v into the field of o, freeing what the field held. v is empty afterwards. */
static void opt_commit(struct config *cfg, const struct config_option *o, struct opt_value *v)
{
    switch (o->type) {
    case OPT_INT:
    case OPT_MEMORY:
    case OPT_OCTAL:
        *(long long *)opt_field(cfg, o) = v->num;
        break;
    case OPT_POLICY:
    case OPT_LOGLEVEL:
    case OPT_BOOL:
    case OPT_INVALIDATION:
    case OPT_LOGFORMAT:
        *(int *)opt_field(cfg, o) = (int)v->num;
        break;
    case OPT_STRING:
    case OPT_ADDR: {
        char **field = opt_field(cfg, o);
        free(*field);
        *field = v->str;
        v->str = NULL;
        break;
    }
    case OPT_LISTEN:
        for (size_t i = 0; i < cfg->nlisten; i++)
            free(cfg->listen[i]);
        memset(cfg->listen, 0, sizeof(cfg->listen));
        memcpy(cfg->listen, v->list, v->nlist * sizeof(v->list[0]));
        cfg->nlisten = v->nlist;
        v->nlist = 0;
        break;
    default:
        break;
    }
}

enum opt_err opt_set_text(struct config *cfg, const struct config_option *o, const char *text)
{
    struct opt_value v;
    /* `key = value` must be one line of the ini for CONFIG REWRITE to write it back, and a ';'
     * after a blank would start a comment there, quotes or not. */
    size_t line = strlen(o->key) + 3 + strlen(text) + (opt_value_needs_quotes(text) ? 2 : 0);
    if (strpbrk(text, "\r\n") || strstr(text, " ;") || strstr(text, "\t;") ||
        line > CONFIG_LINE_MAX)
        return OPT_ERR_TEXT;
    enum opt_err e = opt_parse(o, text, &v);

    if (e == OPT_OK)
        opt_commit(cfg, o, &v);
    return e;
}

/* ---- formatting values as CONFIG GET shows them ---- */

static void opt_format_hosts(const struct config *cfg, char *buf, size_t size)
{
    size_t used = 0;

    buf[0] = '\0';
    for (size_t i = 0; i < cfg->nlisten && used < size; i++) {
        const char *host, *port;
        size_t hostlen, portlen;
        const char *a = str_or_empty(cfg->listen[i]);
        if (!addr_split(a, strlen(a), &host, &hostlen, &port, &portlen))
            continue;
        int n = snprintf(buf + used, size - used, "%s%.*s", used ? " " : "", (int)hostlen, host);
        if (n < 0)
            break;
        used += (size_t)n;
    }
}

static void opt_format_port(const struct config *cfg, char *buf, size_t size)
{
    const char *host, *port;
    size_t hostlen, portlen;
    const char *a = cfg->nlisten ? str_or_empty(cfg->listen[0]) : "";

    if (!addr_split(a, strlen(a), &host, &hostlen, &port, &portlen))
        snprintf(buf, size, "0");
    else
        snprintf(buf, size, "%.*s", (int)portlen, port);
}

static void opt_format_list(const struct config *cfg, char *buf, size_t size)
{
    size_t used = 0;

    buf[0] = '\0';
    for (size_t i = 0; i < cfg->nlisten && used < size; i++) {
        int n = snprintf(buf + used, size - used, "%s%s", i ? " " : "",
                         str_or_empty(cfg->listen[i]));
        if (n < 0)
            break;
        used += (size_t)n;
    }
}

/* The value of o as Redis formats it. Returns buf, or a string owned by cfg / the table. */
const char *opt_format(const struct config *cfg, const struct config_option *o, char *buf,
                              size_t size)
{
    const char *name;

    switch (o->type) {
    case OPT_INT:
    case OPT_MEMORY:
        snprintf(buf, size, "%lld", *(const long long *)opt_field(cfg, o));
        return buf;
    case OPT_OCTAL:
        snprintf(buf, size, "%llo", *(const long long *)opt_field(cfg, o));
        return buf;
    case OPT_STRING:
    case OPT_ADDR:
        return str_or_empty(*(char *const *)opt_field(cfg, o));
    case OPT_POLICY:
    case OPT_LOGLEVEL:
    case OPT_BOOL:
    case OPT_INVALIDATION:
    case OPT_LOGFORMAT:
        name = opt_enum_name(o->type, *(const int *)opt_field(cfg, o));
        return name ? name : "";
    case OPT_LISTEN:
        opt_format_list(cfg, buf, size);
        return buf;
    case OPT_BIND:
        opt_format_hosts(cfg, buf, size);
        return buf;
    case OPT_PORT:
        opt_format_port(cfg, buf, size);
        return buf;
    case OPT_CONST:
    default:
        return o->def;
    }
}

/* The name CONFIG GET shows: Redis's where Redis has the parameter, else "section.key". */
const char *opt_name(const struct config_option *o, char *buf, size_t size)
{
    if (o->redis_name)
        return o->redis_name;
    snprintf(buf, size, "%s.%s", o->section, o->key);
    return buf;
}

void opt_env_name(const struct config_option *o, char *buf, size_t size)
{
    snprintf(buf, size, "SIDECAR_%s_%s", o->section, o->key);
    for (char *p = buf; *p; p++)
        if (*p >= 'a' && *p <= 'z')
            *p = (char)(*p - 'a' + 'A');
}

/* ---- lookups ---- */

bool section_known(const char *name, size_t len)
{
    if (config_section_free_form(name, len))
        return true;
    CONFIG_FOREACH(o)
        if (o->section && strlen(o->section) == len && strncasecmp(o->section, name, len) == 0)
            return true;
    return false;
}

const struct config_option *opt_find_in_section(const char *section, const char *key)
{
    CONFIG_FOREACH(o)
        if (o->section && strcasecmp(o->section, section) == 0 && strcasecmp(o->key, key) == 0)
            return o;
    return NULL;
}

/* CONFIG SET's lookup: Redis's name first, then "section.key", then a bare key (the first row
 * in table order, so "listen" is [server] listen). */
static const struct config_option *opt_find(const char *name)
{
    const char *dot = strchr(name, '.');

    CONFIG_FOREACH(o)
        if (o->redis_name && strcasecmp(o->redis_name, name) == 0)
            return o;
    if (dot) {
        CONFIG_FOREACH(o)
            if (o->section && strlen(o->section) == (size_t)(dot - name) &&
                strncasecmp(o->section, name, (size_t)(dot - name)) == 0 &&
                strcasecmp(o->key, dot + 1) == 0)
                return o;
        return NULL;
    }
    CONFIG_FOREACH(o)
        if (o->section && strcasecmp(o->key, name) == 0)
            return o;
    return NULL;
}

/* ---- defaults and freeing ---- */

void config_init_defaults(struct config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    CONFIG_FOREACH(o) {
        if (!o->section)
            continue;
        if (opt_set_text(cfg, o, o->def) != OPT_OK) {
            fprintf(stderr, "sidecar: bad built-in default '%s' for %s.%s\n", o->def, o->section,
                    o->key);
            abort();
        }
    }
}

void config_free(struct config *cfg)
{
    CONFIG_FOREACH(o) {
        if (o->type == OPT_STRING || o->type == OPT_ADDR) {
            char **field = opt_field(cfg, o);
            free(*field);
            *field = NULL;
        }
    }
    for (size_t i = 0; i < cfg->nlisten && i < CONFIG_MAX_LISTEN; i++) {
        free(cfg->listen[i]);
        cfg->listen[i] = NULL;
    }
    cfg->nlisten = 0;
    config_free_form_free(cfg);
}

void config_errf(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    if (!err || errlen == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* ---- environment ---- */

int config_apply_env(struct config *cfg, char *err, size_t errlen)
{
    char env[CONFIG_NAME_MAX], reason[256];
    const char *v;
    enum opt_err e;

    CONFIG_FOREACH(o) {
        if (!o->section)
            continue;
        opt_env_name(o, env, sizeof(env));
        if (!(v = getenv(env)))
            continue;
        if ((e = opt_set_text(cfg, o, v)) != OPT_OK) {
            opt_describe_err(o, e, reason, sizeof(reason));
            config_errf(err, errlen, "%s: bad value '%s' for %s: %s", env, v, o->key, reason);
            return -1;
        }
    }
    return 0;
}

/* ---- validation ---- */

static int validate_ranges(const struct config *cfg, char *err, size_t errlen)
{
    CONFIG_FOREACH(o) {
        long long v;
        if (o->type != OPT_INT && o->type != OPT_MEMORY && o->type != OPT_OCTAL)
            continue;
        v = *(const long long *)opt_field(cfg, o);
        if (v < o->min || v > o->max) {
            config_errf(err, errlen, "[%s] %s = %lld is out of range (%lld..%lld)", o->section,
                        o->key, v, o->min, o->max);
            return -1;
        }
    }
    if (!config_policy_name(cfg->maxmemory_policy) || !log_level_name(cfg->log_level) ||
        !opt_enum_name(OPT_INVALIDATION, cfg->invalidation)) {
        config_errf(err, errlen,
                    "[cache] maxmemory_policy or invalidation, or [log] level, is not a known name");
        return -1;
    }
    return 0;
}

static int validate_listen(const struct config *cfg, char *err, size_t errlen)
{
    const char *admin = str_or_empty(cfg->admin_listen);

    if (cfg->nlisten == 0 && !*str_or_empty(cfg->unixsocket)) {
        config_errf(err, errlen, "[server] listen and unixsocket are both empty: nothing to serve");
        return -1;
    }
    if (cfg->nlisten > CONFIG_MAX_LISTEN) {
        config_errf(err, errlen, "[server] listen: more than %d addresses", CONFIG_MAX_LISTEN);
        return -1;
    }
    for (size_t i = 0; i < cfg->nlisten; i++) {
        const char *a = str_or_empty(cfg->listen[i]);
        if (!addr_valid(a, strlen(a))) {
            config_errf(err, errlen, "[server] listen: '%s' is not host:port", a);
            return -1;
        }
        for (size_t j = 0; j < i; j++)
            if (strcasecmp(a, str_or_empty(cfg->listen[j])) == 0) {
                config_errf(err, errlen, "[server] listen: '%s' appears twice", a);
                return -1;
            }
        if (strcasecmp(a, admin) == 0) {
            config_errf(err, errlen, "[admin] listen '%s' is also a [server] listen address", a);
            return -1;
        }
    }
    if (*admin && !addr_valid(admin, strlen(admin))) {
        config_errf(err, errlen, "[admin] listen: '%s' is not host:port", admin);
        return -1;
    }
    return 0;
}

static int validate_paths(const struct config *cfg, char *err, size_t errlen)
{
    if (strlen(str_or_empty(cfg->unixsocket)) > CONFIG_UNIX_PATH_MAX ||
        strlen(str_or_empty(cfg->upstream.unixsocket)) > CONFIG_UNIX_PATH_MAX) {
        config_errf(err, errlen, "unixsocket path longer than %d bytes", CONFIG_UNIX_PATH_MAX);
        return -1;
    }
    return 0;
}

static int validate_upstream(const struct config_upstream *up, char *err, size_t errlen)
{
    if (*str_or_empty(up->host) && *str_or_empty(up->unixsocket)) {
        config_errf(err, errlen, "[upstream] set host or unixsocket, not both");
        return -1;
    }
    if (up->connect_timeout_ms <= 0 || up->op_timeout_ms <= 0) {
        config_errf(err, errlen, "[upstream] connect_timeout_ms and op_timeout_ms must be > 0");
        return -1;
    }
    if (up->reconnect_min_ms > up->reconnect_max_ms) {
        config_errf(err, errlen,
                    "[upstream] reconnect_min_ms (%lld) is greater than reconnect_max_ms (%lld)",
                    up->reconnect_min_ms, up->reconnect_max_ms);
        return -1;
    }
    return 0;
}

int config_validate(const struct config *cfg, char *err, size_t errlen)
{
    if (validate_ranges(cfg, err, errlen) < 0 || validate_listen(cfg, err, errlen) < 0 ||
        validate_paths(cfg, err, errlen) < 0 || validate_upstream(&cfg->upstream, err, errlen) < 0 ||
        config_check_protected(cfg, err, errlen) < 0)
        return -1;
    return 0;
}

/* ---- protected mode ---- */

bool config_host_is_loopback(const char *host, size_t len)
{
    char buf[CONFIG_ADDR_MAX + 1];
    struct in_addr a4;
    struct in6_addr a6;

    if (len == 0 || len >= sizeof(buf))
        return false;
    memcpy(buf, host, len);
    buf[len] = '\0';
    if (strcasecmp(buf, "localhost") == 0)
        return true;
    if (inet_pton(AF_INET, buf, &a4) == 1)
        return (ntohl(a4.s_addr) >> 24) == 127;
    if (inet_pton(AF_INET6, buf, &a6) == 1) {
        static const unsigned char mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
        if (IN6_IS_ADDR_LOOPBACK(&a6))
            return true;
        return memcmp(a6.s6_addr, mapped, sizeof(mapped)) == 0 && a6.s6_addr[12] == 127;
    }
    return false; /* 0.0.0.0, ::, *, any other address or name */
}

bool config_default_user_is_open(const struct config *cfg)
{
    const struct config_user *u = config_user_find(cfg, "default");

    if (*str_or_empty(cfg->requirepass))
        return false;
    return !u || (u->enabled && u->nopass);
}

int config_check_protected(const struct config *cfg, char *err, size_t errlen)
{
    if (!cfg->protected_mode || !config_default_user_is_open(cfg))
        return 0;
    for (size_t i = 0; i < cfg->nlisten; i++) {
        const char *a = str_or_empty(cfg->listen[i]), *host, *port;
        size_t hostlen, portlen;
        if (!addr_split(a, strlen(a), &host, &hostlen, &port, &portlen) ||
            config_host_is_loopback(host, hostlen))
            continue;
        config_errf(err, errlen,
                    "protected mode: [server] listen '%s' is not a loopback address and the "
                    "default user has no password; set requirepass (or requirepass_file, or a "
                    "[users] default entry with a password), listen on 127.0.0.1 only, or set "
                    "protected_mode = no", a);
        return -1;
    }
    return 0;
}

/* ---- password files ---- */

/* Reads path into *out (heap): at most CONFIG_SECRET_FILE_MAX bytes, trailing CR/LF dropped. */
static int secret_file_read(const char *what, const char *path, char **out, char *err,
                            size_t errlen)
{
    char buf[CONFIG_SECRET_FILE_MAX + 2];
    FILE *f = fopen(path, "r");
    size_t n;

    if (!f) {
        config_errf(err, errlen, "%s %s: cannot open: %s", what, path, strerror(errno));
        return -1;
    }
    n = fread(buf, 1, sizeof(buf) - 1, f);
    bool bad = ferror(f);
    fclose(f);
    if (bad) {
        config_errf(err, errlen, "%s %s: cannot read", what, path);
        return -1;
    }
    if (n > CONFIG_SECRET_FILE_MAX) {
        config_errf(err, errlen, "%s %s: longer than %d bytes", what, path,
                    CONFIG_SECRET_FILE_MAX);
        return -1;
    }
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
        n--;
    if (n == 0 || memchr(buf, '\0', n)) {
        config_errf(err, errlen, "%s %s: %s", what, path, n ? "holds a NUL byte" : "is empty");
        return -1;
    }
    free(*out);
    *out = xmemdup(buf, n);
    explicit_bzero(buf, sizeof(buf));
    return 0;
}

int config_read_secret_files(struct config *cfg, char *err, size_t errlen)
{
    if (*str_or_empty(cfg->requirepass_file)) {
        if (*str_or_empty(cfg->requirepass)) {
            config_errf(err, errlen, "[server] set requirepass or requirepass_file, not both");
            return -1;
        }
        if (secret_file_read("[server] requirepass_file", cfg->requirepass_file,
                             &cfg->requirepass, err, errlen) < 0)
            return -1;
    }
    if (*str_or_empty(cfg->upstream.password_file)) {
        if (*str_or_empty(cfg->upstream.password)) {
            config_errf(err, errlen, "[upstream] set password (or SIDECAR_UPSTREAM_PASSWORD) or "
                                     "password_file, not both");
            return -1;
        }
        if (secret_file_read("[upstream] password_file", cfg->upstream.password_file,
                             &cfg->upstream.password, err, errlen) < 0)
            return -1;
    }
    return 0;
}

bool opt_value_needs_quotes(const char *v)
{
    return !*v || strpbrk(v, " ;#\"\t\v\f") != NULL; /* blanks inih would strip, too */
}

bool opt_secret_from_file(const struct config *cfg, const struct config_option *o)
{
    if (!o->secret)
        return false;
    if (o->offset == offsetof(struct config, requirepass))
        return *str_or_empty(cfg->requirepass_file) != '\0';
    return *str_or_empty(cfg->upstream.password_file) != '\0';
}

bool config_is_secret(const char *name)
{
    const struct config_option *o = opt_find(name);
    return o && o->secret;
}

void config_override_port(struct config *cfg, int port)
{
    for (size_t i = 0; i < cfg->nlisten; i++) {
        const char *a = cfg->listen[i];
        const char *host, *p;
        size_t hostlen, portlen;
        if (!a || !addr_split(a, strlen(a), &host, &hostlen, &p, &portlen))
            continue;
        size_t keep = (size_t)(p - a); /* "host:" or "[v6]:" */
        char *next = xmalloc(keep + 16);
        snprintf(next, keep + 16, "%.*s%d", (int)keep, a, port);
        free(cfg->listen[i]);
        cfg->listen[i] = next;
    }
}

/* ---- CONFIG SET / CONFIG GET ---- */

int config_set(struct config *cfg, const char *name, const char *value, char *err, size_t errlen)
{
    const struct config_option *o = opt_find(name);
    char reason[256], buf[CONFIG_VALUE_MAX], lname[CONFIG_NAME_MAX];
    enum opt_err e;

    if (!o) {
        config_errf(err, errlen, "Unknown option or number of arguments for CONFIG SET - '%s'",
                    name);
        return -1;
    }
    if (!o->section && strcasecmp(value, opt_format(cfg, o, buf, sizeof(buf))) == 0)
        return 0; /* a compatibility row set to what it already is ("save" "") */
    if (!o->runtime) {
        config_errf(err, errlen,
                    "CONFIG SET failed (possibly related to argument '%s') - "
                    "can't set immutable config", name);
        return -1;
    }
    if ((e = opt_set_text(cfg, o, value)) != OPT_OK) {
        /* Redis names the parameter lowercased here (as typed in the unknown/immutable cases). */
        snprintf(lname, sizeof(lname), "%s", name);
        for (char *p = lname; *p; p++)
            if (*p >= 'A' && *p <= 'Z')
                *p = (char)(*p - 'A' + 'a');
        opt_describe_err_redis(o, e, reason, sizeof(reason));
        config_errf(err, errlen, "CONFIG SET failed (possibly related to argument '%s') - %s",
                    lname, reason);
        return -1;
    }
    return 0;
}

/* Whether pattern matches the row's shown name or its "section.key". */
static bool opt_matches(const struct config_option *o, const char *pattern, size_t plen)
{
    char buf[CONFIG_NAME_MAX];
    const char *name = opt_name(o, buf, sizeof(buf));

    if (glob_match(pattern, plen, name, strlen(name), true))
        return true;
    if (!o->redis_name || !o->section)
        return false;
    snprintf(buf, sizeof(buf), "%s.%s", o->section, o->key);
    return glob_match(pattern, plen, buf, strlen(buf), true);
}

static size_t config_get_walk(const struct config *cfg, const char *pattern, bool raw,
                              void (*emit)(void *ctx, const char *name, const char *value),
                              void *ctx)
{
    size_t plen = strlen(pattern), count = 0;
    char name[CONFIG_NAME_MAX], value[CONFIG_VALUE_MAX];

    CONFIG_FOREACH(o) {
        if (!opt_matches(o, pattern, plen))
            continue;
        const char *v = opt_format(cfg, o, value, sizeof(value));
        if (o->secret && !raw && *v)
            v = CONFIG_SECRET_SHOWN; /* never the password itself */
        emit(ctx, opt_name(o, name, sizeof(name)), v);
        count++;
    }
    return count;
}

size_t config_get(const struct config *cfg, const char *pattern,
                  void (*emit)(void *ctx, const char *name, const char *value), void *ctx)
{
    return config_get_walk(cfg, pattern, false, emit, ctx);
}

size_t config_get_raw(const struct config *cfg, const char *pattern,
                      void (*emit)(void *ctx, const char *name, const char *value), void *ctx)
{
    return config_get_walk(cfg, pattern, true, emit, ctx);
}
