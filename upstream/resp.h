/* RESP2 bytes for the upstream layer, both ways:
 *  - replies: a reply hiredis parsed (a tree of nodes, opaque here as struct upstream_value) read
 *    through accessors and re-encoded to the exact bytes Redis sent (status, error, integer,
 *    bulk, nil bulk "$-1", null array "*-1", arrays, nested, empty);
 *  - commands: an argv formatted as a RESP multibulk, and a check that a caller's formatted bytes
 *    are exactly one multibulk command that hiredis will answer exactly once.
 * Owns nothing but the bytes of a struct upstream_buf. No hiredis type appears in this header, so
 * callers outside upstream/ never see hiredis (DESIGN.md section 2).
 * Invariant: upstream_value_encode() writes exactly upstream_value_encoded_len() bytes. */
#ifndef UPSTREAM_RESP_H
#define UPSTREAM_RESP_H

#include <stdbool.h>
#include <stddef.h>

/* hiredis 0.14 reads at most 8 nested arrays (9 levels with the leaves; its task stack has 9
 * slots, its error says "depth > 7"); a deeper reply is a protocol error that closes the
 * connection, so no value handed out has more levels than this. */
#define UPSTREAM_VALUE_DEPTH_MAX 9

/* A growable byte buffer owned by whoever holds the struct (zero-initialise it; free with
 * upstream_buf_free). len <= cap; data is NULL while cap is 0. */
struct upstream_buf {
    char *data;
    size_t len;
    size_t cap;
};

void upstream_buf_reserve(struct upstream_buf *b, size_t extra);
void upstream_buf_append(struct upstream_buf *b, const void *p, size_t n);
void upstream_buf_free(struct upstream_buf *b);

enum upstream_value_type {
    UPSTREAM_VALUE_STATUS,    /* +OK */
    UPSTREAM_VALUE_ERROR,     /* -ERR ... (the text after '-') */
    UPSTREAM_VALUE_INTEGER,   /* :42 */
    UPSTREAM_VALUE_BULK,      /* $3 foo (binary safe) */
    UPSTREAM_VALUE_NIL,       /* $-1 */
    UPSTREAM_VALUE_NIL_ARRAY, /* *-1 (BLPOP timeout, LPOP key count on a missing key, ...) */
    UPSTREAM_VALUE_ARRAY,     /* *N followed by N values (N may be 0) */
};

/* One node of a reply. Borrowed: valid only while the completion callback that received the
 * root runs (hiredis frees the tree when the callback returns). */
struct upstream_value;

enum upstream_value_type upstream_value_type(const struct upstream_value *v);
/* The integer of an INTEGER; 0 for any other type. */
long long upstream_value_integer(const struct upstream_value *v);
/* The bytes of a STATUS, ERROR or BULK (NUL-terminated after len bytes; *len set); NULL and
 * *len = 0 for any other type. Borrowed like v. */
const char *upstream_value_string(const struct upstream_value *v, size_t *len);
/* The element count of an ARRAY; 0 for any other type. */
size_t upstream_value_count(const struct upstream_value *v);
/* Element i (< count) of an ARRAY. */
const struct upstream_value *upstream_value_at(const struct upstream_value *v, size_t i);

/* The RESP2 size of v, and its bytes: encode writes exactly that many bytes at dst and returns
 * dst + that size. Together they let a caller reserve once and write in place. */
size_t upstream_value_encoded_len(const struct upstream_value *v);
char *upstream_value_encode(const struct upstream_value *v, char *dst);
/* Appends v's RESP2 bytes to b. */
void upstream_value_append(const struct upstream_value *v, struct upstream_buf *b);

/* Appends argv as one RESP multibulk command ("*argc\r\n" then "$len\r\narg\r\n" each) and
 * leaves a '\0' after b->len (not counted): hiredis 0.14 reads one byte past a command. */
void upstream_command_format(struct upstream_buf *b, int argc, const char *const *argv,
                             const size_t *argvlen);

/* The argument count of cmd[0..len) when it is exactly one complete RESP multibulk command of
 * at least one argument (nothing before or after it) and not one of the commands hiredis 0.14
 * answers other than once per request ([P]SUBSCRIBE, [P]UNSUBSCRIBE, MONITOR: those need a
 * connection of their own); 0 otherwise. Reads only cmd[0..len). */
size_t upstream_command_argc(const char *cmd, size_t len);
/* True when a command named name[0..n) is one hiredis 0.14 answers other than once per request
 * ([P]SUBSCRIBE, [P]UNSUBSCRIBE, MONITOR, any case): a link refuses it. */
bool upstream_command_special(const char *name, size_t n);
/* upstream_command_argc(cmd, len) != 0. */
bool upstream_command_valid(const char *cmd, size_t len);

/* upstream/ internal (link.c installs it in each connection's reader): hiredis's nil
 * constructor, which also records whether the nil was "$-1" or "*-1" so it is re-encoded as it
 * came. task is a hiredis redisReadTask. */
struct redisReadTask;
void *upstream_resp_create_nil(const struct redisReadTask *task);

/* upstream/ internal: reply nodes without an allocation per node. Every node of a reply is a
 * block of one size (a hiredis redisReply, then its string or element array inline when they
 * fit) taken from a pool's free list and put back when hiredis frees the reply (a node whose
 * string or array does not fit is allocated alone and freed). A connection has at most one
 * reply tree alive at a time (hiredis frees each reply after its callback), so a pool keeps
 * few blocks: UPSTREAM_REPLY_POOL_MAX at most. The struct is upstream/ internal. */
struct upstream_reply_node;
struct upstream_reply_pool {
    struct upstream_reply_node *free;
    size_t nfree;
};
#define UPSTREAM_REPLY_POOL_MAX 64

/* hiredis object functions whose nodes come from the pool that the reader's privdata points
 * at (a struct upstream_reply_pool, or a struct that starts with one): createString,
 * createArray, createInteger, createNil (the nil as upstream_resp_create_nil records it) and
 * freeObject. The nodes are redisReply structs to hiredis and to the accessors above. The pool
 * must outlive every reader using it; a reply must be freed with these functions' freeObject,
 * never with hiredis's freeReplyObject. */
struct redisReplyObjectFunctions;
void upstream_reply_functions(struct redisReplyObjectFunctions *fns);
/* A big bulk string's RESP encoding without a copy: when v is a BULK value built by
 * upstream_reply_functions whose bytes did not fit a pooled block, returns the allocation
 * holding exactly its encoding ("$<len>\r\n<bytes>\r\n", *len bytes, the allocation's whole
 * size; free it with free()) and hands it to the caller; NULL otherwise (encode it instead).
 * v's string stays readable only while the caller keeps that allocation unchanged. */
char *upstream_value_take_resp(const struct upstream_value *v, size_t *len);
/* Frees the blocks kept by p (every reply built from it must have been freed). */
void upstream_reply_pool_free(struct upstream_reply_pool *p);

#endif
