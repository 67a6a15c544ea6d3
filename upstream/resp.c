/* RESP2 bytes for the upstream layer (see resp.h): reply trees re-encoded byte for byte, argv
 * formatted as multibulk, formatted commands checked before hiredis sees them.
 * Invariants: a struct upstream_value is a hiredis redisReply node. A link's readers build every
 * node with upstream_reply_functions (pooled blocks, freed only by their freeObject); the
 * standalone nil constructor (upstream_resp_create_nil) allocates with calloc like hiredis's own
 * so freeReplyObject frees it. A nil is marked in its unused integer field when it came as "*-1".
 * Recursion over a value is bounded by hiredis's nesting limit (UPSTREAM_VALUE_DEPTH_MAX). */
#include "upstream/resp.h"

#include "conf/xmalloc.h"

#include <hiredis/hiredis.h>

#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* A nil reply whose integer field holds this came as a null array ("*-1"). hiredis never reads
 * the integer field of a nil. */
#define NIL_ARRAY_MARK 1

/* Longest decimal of a long long with its sign. */
#define LL_DIGITS_MAX 20

static const redisReply *node(const struct upstream_value *v)
{
    return (const redisReply *)v;
}

void upstream_buf_reserve(struct upstream_buf *b, size_t extra)
{
    if (b->cap - b->len >= extra)
        return;
    size_t need = b->len + extra;
    if (need < b->len)
        abort(); /* size overflow */
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    b->data = xrealloc(b->data, cap);
    b->cap = cap;
}

void upstream_buf_append(struct upstream_buf *b, const void *p, size_t n)
{
    if (n == 0)
        return;
    upstream_buf_reserve(b, n);
    memcpy(b->data + b->len, p, n);
    b->len += n;
}

void upstream_buf_free(struct upstream_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

enum upstream_value_type upstream_value_type(const struct upstream_value *v)
{
    const redisReply *r = node(v);
    switch (r->type) {
    case REDIS_REPLY_STATUS:
        return UPSTREAM_VALUE_STATUS;
    case REDIS_REPLY_ERROR:
        return UPSTREAM_VALUE_ERROR;
    case REDIS_REPLY_INTEGER:
        return UPSTREAM_VALUE_INTEGER;
    case REDIS_REPLY_STRING:
        return UPSTREAM_VALUE_BULK;
    case REDIS_REPLY_ARRAY:
        return UPSTREAM_VALUE_ARRAY;
    case REDIS_REPLY_NIL:
    default:
        return r->integer == NIL_ARRAY_MARK ? UPSTREAM_VALUE_NIL_ARRAY : UPSTREAM_VALUE_NIL;
    }
}

long long upstream_value_integer(const struct upstream_value *v)
{
    const redisReply *r = node(v);
    return r->type == REDIS_REPLY_INTEGER ? r->integer : 0;
}

const char *upstream_value_string(const struct upstream_value *v, size_t *len)
{
    const redisReply *r = node(v);
    if (r->type == REDIS_REPLY_STATUS || r->type == REDIS_REPLY_ERROR ||
        r->type == REDIS_REPLY_STRING) {
        *len = r->len;
        return r->str;
    }
    *len = 0;
    return NULL;
}

size_t upstream_value_count(const struct upstream_value *v)
{
    const redisReply *r = node(v);
    return r->type == REDIS_REPLY_ARRAY ? r->elements : 0;
}

const struct upstream_value *upstream_value_at(const struct upstream_value *v, size_t i)
{
    const redisReply *r = node(v);
    if (r->type != REDIS_REPLY_ARRAY || i >= r->elements)
        abort(); /* a caller bug: out of range */
    return (const struct upstream_value *)r->element[i];
}

/* Decimal digits of n, with a '-' counted for negatives. */
static size_t ll_len(long long n)
{
    unsigned long long u = n < 0 ? 0ULL - (unsigned long long)n : (unsigned long long)n;
    size_t len = n < 0 ? 2 : 1;
    while (u >= 10) {
        u /= 10;
        len++;
    }
    return len;
}

static char *ll_write(char *dst, long long n)
{
    char tmp[LL_DIGITS_MAX + 1];
    size_t i = sizeof(tmp);
    unsigned long long u = n < 0 ? 0ULL - (unsigned long long)n : (unsigned long long)n;
    do {
        tmp[--i] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (n < 0)
        tmp[--i] = '-';
    memcpy(dst, tmp + i, sizeof(tmp) - i);
    return dst + (sizeof(tmp) - i);
}

static size_t encoded_len(const redisReply *r, int depth)
{
    if (depth > UPSTREAM_VALUE_DEPTH_MAX)
        abort(); /* hiredis never builds this */
    switch (r->type) {
    case REDIS_REPLY_STATUS:
    case REDIS_REPLY_ERROR:
        return 1 + r->len + 2;
    case REDIS_REPLY_INTEGER:
        return 1 + ll_len(r->integer) + 2;
    case REDIS_REPLY_STRING:
        return 1 + ll_len((long long)r->len) + 2 + r->len + 2;
    case REDIS_REPLY_ARRAY: {
        size_t n = 1 + ll_len((long long)r->elements) + 2;
        for (size_t i = 0; i < r->elements; i++)
            n += encoded_len(r->element[i], depth + 1);
        return n;
    }
    case REDIS_REPLY_NIL:
    default:
        return 5; /* "$-1\r\n" or "*-1\r\n" */
    }
}

static char *crlf(char *p)
{
    p[0] = '\r';
    p[1] = '\n';
    return p + 2;
}

static char *encode(const redisReply *r, char *p, int depth)
{
    if (depth > UPSTREAM_VALUE_DEPTH_MAX)
        abort();
    switch (r->type) {
    case REDIS_REPLY_STATUS:
    case REDIS_REPLY_ERROR:
        *p++ = r->type == REDIS_REPLY_STATUS ? '+' : '-';
        memcpy(p, r->str, r->len);
        return crlf(p + r->len);
    case REDIS_REPLY_INTEGER:
        *p++ = ':';
        return crlf(ll_write(p, r->integer));
    case REDIS_REPLY_STRING:
        *p++ = '$';
        p = crlf(ll_write(p, (long long)r->len));
        memcpy(p, r->str, r->len);
        return crlf(p + r->len);
    case REDIS_REPLY_ARRAY:
        *p++ = '*';
        p = crlf(ll_write(p, (long long)r->elements));
        for (size_t i = 0; i < r->elements; i++)
            p = encode(r->element[i], p, depth + 1);
        return p;
    case REDIS_REPLY_NIL:
    default:
        memcpy(p, r->integer == NIL_ARRAY_MARK ? "*-1\r\n" : "$-1\r\n", 5);
        return p + 5;
    }
}

size_t upstream_value_encoded_len(const struct upstream_value *v)
{
    return encoded_len(node(v), 1);
}

char *upstream_value_encode(const struct upstream_value *v, char *dst)
{
    return encode(node(v), dst, 1);
}

void upstream_value_append(const struct upstream_value *v, struct upstream_buf *b)
{
    size_t n = upstream_value_encoded_len(v);
    upstream_buf_reserve(b, n);
    char *end = upstream_value_encode(v, b->data + b->len);
    if ((size_t)(end - (b->data + b->len)) != n)
        abort(); /* the invariant at the top of resp.h */
    b->len += n;
}

void upstream_command_format(struct upstream_buf *b, int argc, const char *const *argv,
                             const size_t *argvlen)
{
    size_t need = 1 + LL_DIGITS_MAX + 2 + 1;
    for (int i = 0; i < argc; i++)
        need += 1 + LL_DIGITS_MAX + 2 + argvlen[i] + 2;
    upstream_buf_reserve(b, need);
    char *p = b->data + b->len;
    *p++ = '*';
    p = crlf(ll_write(p, argc));
    for (int i = 0; i < argc; i++) {
        *p++ = '$';
        p = crlf(ll_write(p, (long long)argvlen[i]));
        memcpy(p, argv[i], argvlen[i]);
        p = crlf(p + argvlen[i]);
    }
    *p = '\0';
    b->len = (size_t)(p - b->data);
}

/* Parses "<digits>\r\n" at *pos (the type byte already consumed); false when malformed, negative
 * or past end, or with a leading zero (Redis reads counts with string2ll, which refuses "01": such
 * a request would be a protocol error that closes the upstream connection). At most
 * LL_DIGITS_MAX - 2 digits, so the loop is bounded and n cannot overflow. */
static bool parse_count(const char *cmd, size_t len, size_t *pos, long long *out)
{
    size_t i = *pos;
    long long n = 0;
    size_t digits = 0;
    while (i < len && cmd[i] >= '0' && cmd[i] <= '9') {
        if (++digits > LL_DIGITS_MAX - 2)
            return false;
        n = n * 10 + (cmd[i] - '0');
        i++;
    }
    if (digits == 0 || (digits > 1 && cmd[*pos] == '0'))
        return false;
    if (len - i < 2 || cmd[i] != '\r' || cmd[i + 1] != '\n')
        return false;
    *pos = i + 2;
    *out = n;
    return true;
}

/* hiredis 0.14's __redisAsyncCommand strips one leading 'p' from the command name, then treats
 * "subscribe" (with arguments), "unsubscribe" and "monitor" specially: their callbacks are kept
 * for many replies or never registered. Such a request would break "one reply, one callback". */
bool upstream_command_special(const char *name, size_t n)
{
    if (n > 0 && (name[0] == 'p' || name[0] == 'P')) {
        name++;
        n--;
    }
    return (n == 9 && strncasecmp(name, "subscribe", 9) == 0) ||
           (n == 11 && strncasecmp(name, "unsubscribe", 11) == 0) ||
           (n == 7 && strncasecmp(name, "monitor", 7) == 0);
}

size_t upstream_command_argc(const char *cmd, size_t len)
{
    size_t pos = 0;
    long long argc;
    if (len < 1 || cmd[0] != '*')
        return 0;
    pos = 1;
    if (!parse_count(cmd, len, &pos, &argc) || argc < 1)
        return 0;
    /* Each argument takes at least 6 bytes ("$0\r\n\r\n"): argc is bounded by len. */
    if ((unsigned long long)argc > len / 6)
        return 0;
    for (long long i = 0; i < argc; i++) {
        long long n;
        if (pos >= len || cmd[pos] != '$')
            return 0;
        pos++;
        if (!parse_count(cmd, len, &pos, &n))
            return 0;
        if ((unsigned long long)n > len - pos || len - pos - (size_t)n < 2 ||
            cmd[pos + n] != '\r' || cmd[pos + n + 1] != '\n')
            return 0;
        if (i == 0 && upstream_command_special(cmd + pos, (size_t)n))
            return 0;
        pos += (size_t)n + 2;
    }
    return pos == len ? (size_t)argc : 0;
}

bool upstream_command_valid(const char *cmd, size_t len)
{
    return upstream_command_argc(cmd, len) != 0;
}

void *upstream_resp_create_nil(const struct redisReadTask *task)
{
    redisReply *r = calloc(1, sizeof(*r));
    if (!r)
        return NULL; /* hiredis reports out of memory */
    r->type = REDIS_REPLY_NIL;
    if (task->type == REDIS_REPLY_ARRAY)
        r->integer = NIL_ARRAY_MARK;
    if (task->parent) {
        redisReply *parent = task->parent->obj;
        parent->element[task->idx] = r;
    }
    return r;
}

/* ---- pooled reply nodes ------------------------------------------------------------------ */

/* A node: the redisReply first (hiredis and the accessors cast to it), then the bytes of its
 * string (NUL-terminated) or its element array when they fit in a pooled block. */
struct upstream_reply_node {
    redisReply r;
    struct upstream_reply_pool *pool; /* a pooled block: the pool it returns to; NULL: alone */
    struct upstream_reply_node *next; /* on the pool's free list */
    char *resp;                       /* a bulk too big for a block: its whole RESP encoding
                                         ("$<len>\r\n", the bytes r.str points at, then room
                                         for "\r\n"), allocated alone; NULL otherwise or once
                                         taken (upstream_value_take_resp) */
    size_t resp_len;
};

/* One pooled block: 112 bytes inline after the node (80 bytes on x86-64): a 64-byte GET value,
 * the 10 elements of an MGET, a status or error line up to 111 bytes fit. */
#define NODE_BLOCK 192
#define NODE_INLINE (NODE_BLOCK - sizeof(struct upstream_reply_node))

static char *node_inline(struct upstream_reply_node *n)
{
    return (char *)(n + 1);
}

/* A node with room for extra inline bytes, its redisReply zeroed (and the inline bytes too
 * when zero is set); NULL when out of memory (hiredis then reports it: never abort on a size
 * an upstream announced). A node too big for a block is allocated alone, with calloc when
 * zeroed: an announced array of millions of elements costs no page until its elements come. */
static struct upstream_reply_node *node_get(const struct redisReadTask *task, size_t extra,
                                            bool zero)
{
    struct upstream_reply_pool *pool = task->privdata;
    struct upstream_reply_node *n;
    if (extra <= NODE_INLINE && pool && pool->free) {
        n = pool->free;
        pool->free = n->next;
        pool->nfree--;
    } else if (extra <= NODE_INLINE) {
        n = malloc(NODE_BLOCK);
    } else {
        size_t size = extra > SIZE_MAX - sizeof(*n) ? 0 : sizeof(*n) + extra;
        n = size == 0 ? NULL : zero ? calloc(1, size) : malloc(size);
        pool = NULL;
        zero = false; /* done */
    }
    if (!n)
        return NULL;
    memset(&n->r, 0, sizeof(n->r));
    n->resp = NULL;
    if (zero)
        memset(node_inline(n), 0, extra);
    n->pool = pool;
    n->next = NULL;
    return n;
}

static void node_put(struct upstream_reply_node *n)
{
    struct upstream_reply_pool *pool = n->pool;
    if (n->resp)
        free(n->resp);
    if (!pool || pool->nfree >= UPSTREAM_REPLY_POOL_MAX) {
        free(n);
        return;
    }
    n->next = pool->free;
    pool->free = n;
    pool->nfree++;
}

/* Links n into its parent array, as hiredis's own constructors do. */
static void *node_attach(const struct redisReadTask *task, struct upstream_reply_node *n)
{
    if (task->parent) {
        redisReply *parent = task->parent->obj;
        parent->element[task->idx] = &n->r;
    }
    return n;
}

/* A bulk string too big for a block: the node is a block, the bytes go in a separate
 * allocation laid out as their RESP encoding, so a caller can take that allocation as the
 * reply's bytes instead of copying them once more (upstream_value_take_resp). */
static void *node_create_big_bulk(const redisReadTask *task, const char *str, size_t len)
{
    size_t hdr = 1 + ll_len((long long)len) + 2;
    if (len > SIZE_MAX - hdr - 2)
        return NULL;
    struct upstream_reply_node *n = node_get(task, 0, false);
    char *resp = n ? malloc(hdr + len + 2) : NULL;
    if (!resp) {
        if (n)
            node_put(n);
        return NULL;
    }
    resp[0] = '$';
    crlf(ll_write(resp + 1, (long long)len));
    memcpy(resp + hdr, str, len);
    resp[hdr + len] = '\0'; /* the accessor's NUL; "\r\n" when taken */
    n->resp = resp;
    n->resp_len = hdr + len + 2;
    n->r.type = REDIS_REPLY_STRING;
    n->r.str = resp + hdr;
    n->r.len = len;
    return node_attach(task, n);
}

static void *node_create_string(const redisReadTask *task, char *str, size_t len)
{
    if (task->type == REDIS_REPLY_STRING && len >= NODE_INLINE)
        return node_create_big_bulk(task, str, len);
    struct upstream_reply_node *n = len < SIZE_MAX ? node_get(task, len + 1, false) : NULL;
    if (!n)
        return NULL;
    n->r.type = task->type; /* STRING, STATUS or ERROR */
    n->r.str = node_inline(n);
    memcpy(n->r.str, str, len);
    n->r.str[len] = '\0';
    n->r.len = len;
    return node_attach(task, n);
}

static void *node_create_array(const redisReadTask *task, int elements)
{
    size_t count = elements > 0 ? (size_t)elements : 0;
    if (count > SIZE_MAX / sizeof(redisReply *))
        return NULL;
    struct upstream_reply_node *n = node_get(task, count * sizeof(redisReply *), true);
    if (!n)
        return NULL;
    n->r.type = REDIS_REPLY_ARRAY;
    n->r.elements = count;
    if (count) /* zeroed: a partial reply is freed by walking it */
        n->r.element = (redisReply **)(void *)node_inline(n);
    return node_attach(task, n);
}

static void *node_create_integer(const redisReadTask *task, long long value)
{
    struct upstream_reply_node *n = node_get(task, 0, false);
    if (!n)
        return NULL;
    n->r.type = REDIS_REPLY_INTEGER;
    n->r.integer = value;
    return node_attach(task, n);
}

static void *node_create_nil(const redisReadTask *task)
{
    struct upstream_reply_node *n = node_get(task, 0, false);
    if (!n)
        return NULL;
    n->r.type = REDIS_REPLY_NIL;
    if (task->type == REDIS_REPLY_ARRAY)
        n->r.integer = NIL_ARRAY_MARK;
    return node_attach(task, n);
}

/* Recursion bounded by hiredis's nesting limit. */
static void node_free(void *obj)
{
    struct upstream_reply_node *n = obj;
    if (!n)
        return;
    if (n->r.type == REDIS_REPLY_ARRAY)
        for (size_t i = 0; i < n->r.elements; i++)
            node_free(n->r.element[i]);
    node_put(n);
}

void upstream_reply_functions(struct redisReplyObjectFunctions *fns)
{
    fns->createString = node_create_string;
    fns->createArray = node_create_array;
    fns->createInteger = node_create_integer;
    fns->createNil = node_create_nil;
    fns->freeObject = node_free;
}

void upstream_reply_pool_free(struct upstream_reply_pool *p)
{
    while (p->free) {
        struct upstream_reply_node *n = p->free;
        p->free = n->next;
        free(n);
    }
    p->nfree = 0;
}

char *upstream_value_take_resp(const struct upstream_value *v, size_t *len)
{
    struct upstream_reply_node *n = (struct upstream_reply_node *)(uintptr_t)v;
    if (n->r.type != REDIS_REPLY_STRING || !n->resp)
        return NULL;
    char *resp = n->resp;
    n->resp = NULL; /* the caller's now: node_put leaves it */
    resp[n->resp_len - 2] = '\r';
    resp[n->resp_len - 1] = '\n';
    *len = n->resp_len;
    return resp;
}
