/* libFuzzer target: the upstream reply re-encoder (upstream/resp.h). The input is what an
 * upstream might send; hiredis 0.14's reader parses it with the object functions upstream/link.c
 * installs (upstream_reply_functions: pooled nodes, strings and arrays inline when they fit, the
 * nil recorded as "$-1" or "*-1"; one pool for every reply of the input, so blocks are reused
 * across replies as on a link), and each complete reply is re-encoded; a big bulk's encoding
 * taken without a copy (upstream_value_take_resp) equals its re-encoding. Properties:
 *   - upstream_value_encode writes exactly upstream_value_encoded_len bytes, and
 *     upstream_value_append appends the same bytes;
 *   - when the bytes hiredis consumed for the reply are canonical RESP2 (as Redis writes it: no
 *     sign or leading zero in a length, nil only as "$-1"/"*-1", "\r\n" after each bulk), the
 *     re-encoding is exactly those bytes;
 *   - hiredis reads the re-encoding back as one complete reply of exactly its length, with an
 *     equal tree, and re-encoding that gives the same bytes again.
 * A tests-only array constructor refuses arrays over FUZZ_ARRAY_MAX elements (hiredis would
 * allocate the pointer array for the announced count before any element arrived: a memory limit
 * of the fuzzer, not a property of our code). This file may include hiredis: it tests upstream/. */
#include "tests/fuzz/fuzz_common.h"

#include "upstream/resp.h"

#include <hiredis/hiredis.h>

#include <limits.h>
#include <stdbool.h>
#include <string.h>

#define FUZZ_ARRAY_MAX 4096
#define REPLIES_MAX 64 /* replies taken from one input */

/* The reader's private data: the node pool (first: upstream_reply_functions' constructors read
 * the privdata as a pool) and the constructor the capped one delegates to. */
struct reader_ctx {
    struct upstream_reply_pool pool;
    void *(*create_array)(const redisReadTask *, int);
    redisReplyObjectFunctions fns;
};

static void *capped_create_array(const redisReadTask *task, int elements)
{
    const struct reader_ctx *ctx = task->privdata;
    if (elements > FUZZ_ARRAY_MAX)
        return NULL; /* hiredis reports out of memory */
    return ctx->create_array(task, elements);
}

static redisReader *reader_new(struct reader_ctx *ctx)
{
    redisReader *r = redisReaderCreate();
    FUZZ_CHECK(r != NULL);
    memset(&ctx->pool, 0, sizeof(ctx->pool));
    upstream_reply_functions(&ctx->fns);
    ctx->create_array = ctx->fns.createArray;
    ctx->fns.createArray = capped_create_array;
    r->fn = &ctx->fns;
    r->privdata = ctx;
    return r;
}

/* A canonical decimal: 0, or an optional '-' then [1-9][0-9]* within long long (no "-0").
 * On success *out holds it and *pos is past "\r\n". */
static bool canon_number(const char *b, size_t len, size_t *pos, long long *out)
{
    size_t i = *pos;
    bool neg = false;
    if (i < len && b[i] == '-') {
        neg = true;
        i++;
    }
    size_t first = i;
    unsigned long long v = 0;
    while (i < len && b[i] >= '0' && b[i] <= '9') {
        unsigned d = (unsigned)(b[i] - '0');
        if (v > (ULLONG_MAX - d) / 10)
            return false;
        v = v * 10 + d;
        i++;
    }
    size_t digits = i - first;
    if (digits == 0 || (b[first] == '0' && (digits > 1 || neg)))
        return false;
    if (len - i < 2 || b[i] != '\r' || b[i + 1] != '\n')
        return false;
    if (neg ? v > (unsigned long long)LLONG_MAX + 1 : v > (unsigned long long)LLONG_MAX)
        return false;
    *out = neg ? (v == (unsigned long long)LLONG_MAX + 1 ? LLONG_MIN : -(long long)v) : (long long)v;
    *pos = i + 2;
    return true;
}

/* One canonical RESP2 value at b[*pos]: true and *pos past it. */
static bool canon_value(const char *b, size_t len, size_t *pos, int depth)
{
    if (*pos >= len || depth > UPSTREAM_VALUE_DEPTH_MAX)
        return false;
    char t = b[(*pos)++];
    long long n;
    switch (t) {
    case '+':
    case '-': {
        /* Up to the first "\r\n", as hiredis reads a line. */
        for (size_t i = *pos; i + 1 < len; i++)
            if (b[i] == '\r' && b[i + 1] == '\n') {
                *pos = i + 2;
                return true;
            }
        return false;
    }
    case ':':
        return canon_number(b, len, pos, &n);
    case '$':
        if (!canon_number(b, len, pos, &n) || n < -1)
            return false;
        if (n == -1)
            return true;
        if ((unsigned long long)n > len - *pos || len - *pos - (size_t)n < 2 ||
            b[*pos + n] != '\r' || b[*pos + n + 1] != '\n')
            return false;
        *pos += (size_t)n + 2;
        return true;
    case '*':
        if (!canon_number(b, len, pos, &n) || n < -1)
            return false;
        for (long long i = 0; i < n; i++)
            if (!canon_value(b, len, pos, depth + 1))
                return false;
        return true;
    default:
        return false;
    }
}

static void check_equal(const struct upstream_value *a, const struct upstream_value *b, int depth)
{
    FUZZ_CHECK(depth <= UPSTREAM_VALUE_DEPTH_MAX);
    enum upstream_value_type t = upstream_value_type(a);
    FUZZ_CHECK(t == upstream_value_type(b));
    FUZZ_CHECK(upstream_value_integer(a) == upstream_value_integer(b));
    size_t la, lb;
    const char *sa = upstream_value_string(a, &la), *sb = upstream_value_string(b, &lb);
    FUZZ_CHECK((sa == NULL) == (sb == NULL) && la == lb);
    FUZZ_CHECK(!sa || memcmp(sa, sb, la) == 0);
    FUZZ_CHECK(!sa || sa[la] == '\0');
    FUZZ_CHECK((sa != NULL) == (t == UPSTREAM_VALUE_STATUS || t == UPSTREAM_VALUE_ERROR ||
                                t == UPSTREAM_VALUE_BULK));
    size_t n = upstream_value_count(a);
    FUZZ_CHECK(n == upstream_value_count(b));
    FUZZ_CHECK(n == 0 || t == UPSTREAM_VALUE_ARRAY);
    for (size_t i = 0; i < n; i++)
        check_equal(upstream_value_at(a, i), upstream_value_at(b, i), depth + 1);
}

/* Encodes v; returns the bytes (malloc'd, exactly *len of them). */
static char *encode_checked(const struct upstream_value *v, size_t *len)
{
    size_t n = upstream_value_encoded_len(v);
    char *out = malloc(n ? n : 1);
    FUZZ_CHECK(out != NULL);
    char *end = upstream_value_encode(v, out);
    FUZZ_CHECK((size_t)(end - out) == n);
    struct upstream_buf b = { 0 };
    upstream_buf_append(&b, "x", 1);
    upstream_value_append(v, &b);
    FUZZ_CHECK(b.len == n + 1 && memcmp(b.data + 1, out, n) == 0);
    upstream_buf_free(&b);
    *len = n;
    return out;
}

static void check_reply(const struct upstream_value *v, const char *consumed, size_t clen)
{
    size_t n;
    char *enc = encode_checked(v, &n);
    size_t pos = 0;
    if (canon_value(consumed, clen, &pos, 1) && pos == clen) {
        FUZZ_CHECK(n == clen);
        FUZZ_CHECK(memcmp(enc, consumed, n) == 0);
    }
    /* The re-encoding is canonical and reads back as the same tree. */
    pos = 0;
    FUZZ_CHECK(canon_value(enc, n, &pos, 1) && pos == n);
    struct reader_ctx ctx;
    redisReader *r = reader_new(&ctx);
    FUZZ_CHECK(redisReaderFeed(r, enc, n) == REDIS_OK);
    void *again = NULL;
    FUZZ_CHECK(redisReaderGetReply(r, &again) == REDIS_OK && again != NULL);
    FUZZ_CHECK(r->len - r->pos == 0);
    check_equal(v, again, 1);
    size_t n2;
    char *enc2 = encode_checked(again, &n2);
    FUZZ_CHECK(n2 == n && memcmp(enc, enc2, n) == 0);
    free(enc2);
    ctx.fns.freeObject(again);
    redisReaderFree(r);
    FUZZ_CHECK(ctx.pool.nfree <= UPSTREAM_REPLY_POOL_MAX);
    upstream_reply_pool_free(&ctx.pool);
    free(enc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct reader_ctx ctx;
    redisReader *r = reader_new(&ctx);
    if (redisReaderFeed(r, (const char *)data, size) != REDIS_OK) {
        redisReaderFree(r);
        upstream_reply_pool_free(&ctx.pool);
        return 0;
    }
    size_t offset = 0; /* of the next reply in data */
    for (int i = 0; i < REPLIES_MAX; i++) {
        void *reply = NULL;
        if (redisReaderGetReply(r, &reply) != REDIS_OK || reply == NULL)
            break; /* a protocol error, or the rest is incomplete */
        size_t left = r->len - r->pos;
        FUZZ_CHECK(left <= size - offset);
        size_t clen = size - offset - left;
        check_reply(reply, (const char *)data + offset, clen);
        /* A big bulk's encoding taken without a copy is exactly its encoding, and the reply
         * is then freed without it (ASan: no double free, no leak). */
        size_t n, tn;
        char *enc = encode_checked(reply, &n);
        char *taken = upstream_value_take_resp(reply, &tn);
        if (taken) {
            FUZZ_CHECK(upstream_value_type(reply) == UPSTREAM_VALUE_BULK);
            FUZZ_CHECK(tn == n && memcmp(taken, enc, n) == 0);
            FUZZ_CHECK(upstream_value_take_resp(reply, &tn) == NULL);
            free(taken);
        }
        free(enc);
        ctx.fns.freeObject(reply);
        offset += clen;
    }
    redisReaderFree(r); /* frees a partial reply into the pool */
    FUZZ_CHECK(ctx.pool.nfree <= UPSTREAM_REPLY_POOL_MAX);
    upstream_reply_pool_free(&ctx.pool);
    return 0;
}
