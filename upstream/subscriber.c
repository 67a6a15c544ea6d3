/* Subscriber links (see link.h, upstream_link_create_subscriber): their handshake (AUTH,
 * CLIENT ID, SUBSCRIBE, PSUBSCRIBE), the channel and pattern lists, [P][UN]SUBSCRIBE at run
 * time, and the pub/sub messages handed to on_message. The state machine, backoff, deadlines of
 * the handshake's own requests and the hiredis context are link.c's.
 *
 * Invariants:
 *  - hiredis 0.14 keeps one callback per subscribed channel or pattern in its own dicts, calls it
 *    for every later message on it (the same privdata, many times) and once more with NULL when
 *    the context is freed. So that callback (upstream_sub_cb) gets privdata NULL, never a
 *    request, and finds the link through ac->data: a detached context (ac->data == NULL: the
 *    connection was dropped or the link destroyed) is ignored.
 *  - hiredis may also hand that callback a reply that is no message at all (an array it could
 *    not match goes to the previous reply's callback: see link.h on PING), so each reply's shape
 *    and kind are checked and anything else is ignored.
 *  - The lists are the truth: each connection's handshake subscribes all of them; a name
 *    removed from a list is not delivered from then on (messages are filtered by the lists),
 *    whatever is still in flight. Names are unique within a list; each list holds at most
 *    UPSTREAM_SUB_NAMES_MAX names, and every scan over one is bounded by that.
 *  - sub->pending counts the [p]subscribe confirmations the current handshake still waits
 *    for; the link goes UP when it is 0 and CLIENT ID has answered (CLIENT ID is written
 *    before the SUBSCRIBE, so its reply comes first).
 *  - No caller callback runs inside upstream_link_[p][un]subscribe (they only write).
 *  - Health checks (upstream_link_set_sub_health, see link.h for why this shape): the health
 *    pattern is subscribed on the wire but is in neither list; sub->ping_out is true from a
 *    health PING's write until its pong, and then link->timer runs to that PING's deadline
 *    (op_timeout_ms), otherwise (UP) to the next PING (health_check_interval_ms). The PING
 *    bypasses hiredis's callback queues, so nothing accumulates per PING. */
#include "upstream/link.h"
#include "upstream/link_internal.h"

#include "conf/xmalloc.h"

#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define NAME_NONE SIZE_MAX

/* ---- the name lists ---------------------------------------------------------------------- */

static size_t names_find(const struct upstream_sub_names *l, const char *name, size_t len)
{
    for (size_t i = 0; i < l->count; i++) {
        if (l->lens[i] == len && memcmp(l->names[i], name, len) == 0)
            return i;
    }
    return NAME_NONE;
}

static void names_add(struct upstream_sub_names *l, const char *name, size_t len)
{
    if (l->count == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 4;
        l->names = xrealloc(l->names, l->cap * sizeof(*l->names));
        l->lens = xrealloc(l->lens, l->cap * sizeof(*l->lens));
    }
    char *copy = xmalloc(len + 1);
    memcpy(copy, name, len);
    copy[len] = '\0';
    l->names[l->count] = copy;
    l->lens[l->count] = len;
    l->count++;
}

static void names_remove(struct upstream_sub_names *l, size_t i)
{
    free(l->names[i]);
    memmove(&l->names[i], &l->names[i + 1], (l->count - i - 1) * sizeof(*l->names));
    memmove(&l->lens[i], &l->lens[i + 1], (l->count - i - 1) * sizeof(*l->lens));
    l->count--;
}

static void names_free(struct upstream_sub_names *l)
{
    for (size_t i = 0; i < l->count; i++)
        free(l->names[i]);
    free(l->names);
    free(l->lens);
    memset(l, 0, sizeof(*l));
}

/* ---- messages ---------------------------------------------------------------------------- */

static bool reply_is(const redisReply *r, const char *word)
{
    size_t n = strlen(word);
    return r->type == REDIS_REPLY_STRING && r->len == n && strncasecmp(r->str, word, n) == 0;
}

static bool reply_in(const redisReply *r, const struct upstream_sub_names *l)
{
    return r->type == REDIS_REPLY_STRING && names_find(l, r->str, r->len) != NAME_NONE;
}

static void sub_deliver(struct upstream_link *link, const redisReply *reply)
{
    struct upstream_sub *sub = link->sub;
    link->stats.messages++;
    if (!sub->on_message)
        return;
    link->depth++;
    sub->on_message(sub->arg, link, (const struct upstream_value *)reply);
    link->depth--;
}

/* ---- health checks ----------------------------------------------------------------------- */

static bool sub_health_on(const struct upstream_link *link)
{
    return link->sub && link->sub->health && link->health_interval > 0.;
}

static void sub_timer_arm(struct upstream_link *link, ev_tstamp after)
{
    ev_timer_stop(link->loop, &link->timer);
    ev_timer_set(&link->timer, after, 0.);
    ev_timer_start(link->loop, &link->timer);
}

/* The pong of our health PING: the link is alive; the next PING after the interval. */
static void sub_health_answered(struct upstream_link *link)
{
    struct upstream_sub *sub = link->sub;
    if (!sub->ping_out || link->state != UPSTREAM_UP)
        return;
    sub->ping_out = false;
    if (sub_health_on(link))
        sub_timer_arm(link, link->health_interval);
}

void upstream_sub_health_start(struct upstream_link *link)
{
    link->sub->ping_out = false;
    if (sub_health_on(link))
        sub_timer_arm(link, link->health_interval);
}

void upstream_sub_health_tick(struct upstream_link *link)
{
    struct upstream_sub *sub = link->sub;
    if (!sub_health_on(link))
        return;
    if (sub->ping_out) {
        char why[UPSTREAM_LINK_ERROR_MAX];
        snprintf(why, sizeof(why), "health check: no reply within %lld ms", link->op_timeout_ms);
        upstream_link_drop(link, UPSTREAM_DROP_TIMEOUT, why);
        return;
    }
    redisAsyncContext *ac = link->ac;
    if (redisAppendFormattedCommand(&ac->c, sub->ping.data, sub->ping.len) != REDIS_OK) {
        upstream_link_drop(link, UPSTREAM_DROP_RECYCLE, "health check: PING not written");
        return;
    }
    if (ac->ev.addWrite)
        ac->ev.addWrite(ac->ev.data);
    sub->ping_out = true;
    link->stats.health_checks++;
    sub_timer_arm(link, (ev_tstamp)link->op_timeout_ms / 1000.0);
}

/* hiredis's callback for every subscribed channel and pattern (privdata unused: NULL). */
static void upstream_sub_cb(redisAsyncContext *ac, void *r, void *privdata)
{
    (void)privdata;
    struct upstream_link *link = ac->data;
    if (!link)
        return; /* detached: dropped or destroyed */
    if (!r) {
        /* hiredis is freeing this connection on its own (EOF, I/O or protocol error, or an
         * error reply it took for a spontaneous one, e.g. a SUBSCRIBE refused by an ACL). */
        char why[UPSTREAM_LINK_ERROR_MAX];
        snprintf(why, sizeof(why), "closed: %s",
                 ac->c.errstr[0] ? ac->c.errstr : "connection lost");
        upstream_link_drop(link, UPSTREAM_DROP_LOST, why);
        return;
    }
    const redisReply *reply = r;
    if (reply->type != REDIS_REPLY_ARRAY)
        return;
    struct upstream_sub *sub = link->sub;
    if (reply->elements == 2 && reply_is(reply->element[0], "pong")) {
        if (reply_is(reply->element[1], UPSTREAM_SUB_HEALTH_NAME))
            sub_health_answered(link);
        return;
    }
    if (reply->elements < 3)
        return;
    const redisReply *kind = reply->element[0];
    if (reply_is(kind, "message") && reply->elements == 3) {
        if (link->state == UPSTREAM_UP && reply_in(reply->element[1], &sub->channels))
            sub_deliver(link, reply);
    } else if (reply_is(kind, "pmessage") && reply->elements == 4) {
        if (link->state == UPSTREAM_UP && reply_in(reply->element[1], &sub->patterns))
            sub_deliver(link, reply);
    } else if (reply_is(kind, "subscribe") || reply_is(kind, "psubscribe")) {
        if (link->state == UPSTREAM_HANDSHAKE && sub->pending > 0 && --sub->pending == 0 &&
            sub->have_id)
            upstream_link_go_up(link);
    }
    /* unsubscribe confirmations, pongs and anything else: nothing to do */
}

/* ---- writing ----------------------------------------------------------------------------- */

/* Writes verb followed by names[0..n) on the attached context; false when hiredis refused it
 * (closing context, or an UNSUBSCRIBE while hiredis thinks nothing is subscribed). */
static bool sub_write(struct upstream_link *link, const char *verb, char *const *names,
                      const size_t *lens, size_t n)
{
    struct upstream_sub *sub = link->sub;
    const char **argv = xmalloc((n + 1) * sizeof(*argv));
    size_t *argvlen = xmalloc((n + 1) * sizeof(*argvlen));
    argv[0] = verb;
    argvlen[0] = strlen(verb);
    for (size_t i = 0; i < n; i++) {
        argv[i + 1] = names[i];
        argvlen[i + 1] = lens[i];
    }
    sub->cmd.len = 0;
    upstream_command_format(&sub->cmd, (int)(n + 1), argv, argvlen);
    free(argv);
    free(argvlen);
    return redisAsyncFormattedCommand(link->ac, upstream_sub_cb, NULL, sub->cmd.data,
                                      sub->cmd.len) == REDIS_OK;
}

/* [P]SUBSCRIBE or PUNSUBSCRIBE of the health pattern alone. */
static bool sub_write_health(struct upstream_link *link, const char *verb)
{
    char name[] = UPSTREAM_SUB_HEALTH_NAME;
    char *names[] = { name };
    size_t lens[] = { sizeof(name) - 1 };
    return sub_write(link, verb, names, lens, 1);
}

void upstream_sub_handshake(struct upstream_link *link)
{
    struct upstream_sub *sub = link->sub;
    sub->client_id = 0;
    sub->have_id = false;
    sub->pending = 0;
    bool ok = true;
    if (link->hs_auth.len)
        ok = upstream_link_send_own(link, UPSTREAM_KIND_AUTH, &link->hs_auth);
    const char *id_argv[] = { "CLIENT", "ID" };
    const size_t id_lens[] = { 6, 2 };
    sub->cmd.len = 0;
    upstream_command_format(&sub->cmd, 2, id_argv, id_lens);
    ok = ok && upstream_link_send_own(link, UPSTREAM_KIND_CLIENT_ID, &sub->cmd);
    if (ok && sub->channels.count) {
        ok = sub_write(link, "SUBSCRIBE", sub->channels.names, sub->channels.lens,
                       sub->channels.count);
        sub->pending += sub->channels.count;
    }
    if (ok && sub->patterns.count) {
        ok = sub_write(link, "PSUBSCRIBE", sub->patterns.names, sub->patterns.lens,
                       sub->patterns.count);
        sub->pending += sub->patterns.count;
    }
    sub->ping_out = false;
    if (ok && sub_health_on(link)) {
        ok = sub_write_health(link, "PSUBSCRIBE");
        sub->pending++;
    }
    if (!ok)
        abort(); /* hiredis refuses commands only on a closing context */
}

void upstream_sub_client_id_reply(struct upstream_link *link, const redisReply *reply)
{
    struct upstream_sub *sub = link->sub;
    if (!sub || reply->type != REDIS_REPLY_INTEGER || reply->integer <= 0) {
        upstream_link_drop(link, UPSTREAM_DROP_RECYCLE, "CLIENT ID failed: not an id");
        return;
    }
    sub->client_id = reply->integer;
    sub->have_id = true;
    if (sub->pending == 0)
        upstream_link_go_up(link);
}

void upstream_sub_free(struct upstream_sub *sub)
{
    if (!sub)
        return;
    names_free(&sub->channels);
    names_free(&sub->patterns);
    upstream_buf_free(&sub->cmd);
    upstream_buf_free(&sub->ping);
    free(sub);
}

/* ---- public ------------------------------------------------------------------------------ */

static bool is_health_name(const char *name, size_t len)
{
    return len == sizeof(UPSTREAM_SUB_HEALTH_NAME) - 1 &&
           memcmp(name, UPSTREAM_SUB_HEALTH_NAME, len) == 0;
}

static bool sub_connected(const struct upstream_link *link)
{
    return link->state == UPSTREAM_HANDSHAKE || link->state == UPSTREAM_UP;
}

static int sub_add(struct upstream_link *link, bool pattern, const char *name, size_t len)
{
    struct upstream_sub *sub = link->sub;
    if (!sub || !name)
        return -1;
    struct upstream_sub_names *l = pattern ? &sub->patterns : &sub->channels;
    if (names_find(l, name, len) != NAME_NONE)
        return 0;
    if (l->count >= UPSTREAM_SUB_NAMES_MAX)
        return -1;
    names_add(l, name, len);
    if (sub_connected(link)) {
        size_t i = l->count - 1;
        bool ok = sub_write(link, pattern ? "PSUBSCRIBE" : "SUBSCRIBE", &l->names[i], &l->lens[i],
                            1);
        if (ok && link->state == UPSTREAM_HANDSHAKE)
            sub->pending++;
    }
    return 0;
}

static int sub_remove(struct upstream_link *link, bool pattern, const char *name, size_t len)
{
    struct upstream_sub *sub = link->sub;
    if (!sub || !name)
        return -1;
    struct upstream_sub_names *l = pattern ? &sub->patterns : &sub->channels;
    size_t i = names_find(l, name, len);
    if (i == NAME_NONE)
        return -1;
    bool ours = pattern && sub_health_on(link) && is_health_name(name, len);
    if (sub_connected(link) && !ours) {
        /* refused only when hiredis thinks nothing is subscribed: nothing to undo then */
        (void)sub_write(link, pattern ? "PUNSUBSCRIBE" : "UNSUBSCRIBE", &l->names[i],
                        &l->lens[i], 1);
    }
    names_remove(l, i);
    return 0;
}

struct upstream_link *upstream_link_create_subscriber(
    struct ev_loop *loop, const struct config_upstream *cfg, const struct logger *log,
    const char *name, const char *const *channels, size_t nchannels,
    void (*on_message)(void *arg, struct upstream_link *link, const struct upstream_value *msg),
    void *arg)
{
    struct upstream_link *link = upstream_link_new(loop, cfg, log, name ? name : "subscriber");
    struct upstream_sub *sub = xcalloc(1, sizeof(*sub));
    sub->on_message = on_message;
    sub->arg = arg;
    link->sub = sub;
    for (size_t i = 0; i < nchannels; i++) {
        if (channels[i])
            sub_add(link, false, channels[i], strlen(channels[i]));
    }
    upstream_link_start(link);
    return link;
}

long long upstream_link_client_id(const struct upstream_link *link)
{
    return link->sub && link->state == UPSTREAM_UP ? link->sub->client_id : 0;
}

int upstream_link_subscribe(struct upstream_link *link, const char *channel, size_t len)
{
    return sub_add(link, false, channel, len);
}

int upstream_link_unsubscribe(struct upstream_link *link, const char *channel, size_t len)
{
    return sub_remove(link, false, channel, len);
}

int upstream_link_psubscribe(struct upstream_link *link, const char *pattern, size_t len)
{
    return sub_add(link, true, pattern, len);
}

int upstream_link_punsubscribe(struct upstream_link *link, const char *pattern, size_t len)
{
    return sub_remove(link, true, pattern, len);
}

size_t upstream_link_subscriptions(const struct upstream_link *link, bool patterns)
{
    if (!link->sub)
        return 0;
    return patterns ? link->sub->patterns.count : link->sub->channels.count;
}

int upstream_link_set_sub_health(struct upstream_link *link, bool on)
{
    struct upstream_sub *sub = link->sub;
    if (!sub)
        return -1;
    if (sub->ping.len == 0) {
        const char *argv[] = { "PING", UPSTREAM_SUB_HEALTH_NAME };
        const size_t lens[] = { 4, sizeof(UPSTREAM_SUB_HEALTH_NAME) - 1 };
        upstream_command_format(&sub->ping, 2, argv, lens);
    }
    bool was = sub_health_on(link);
    sub->health = on;
    bool now = sub_health_on(link);
    if (was == now || !sub_connected(link))
        return 0;
    bool in_list = names_find(&sub->patterns, UPSTREAM_SUB_HEALTH_NAME,
                              sizeof(UPSTREAM_SUB_HEALTH_NAME) - 1) != NAME_NONE;
    if (now) {
        if (sub_write_health(link, "PSUBSCRIBE") && link->state == UPSTREAM_HANDSHAKE)
            sub->pending++;
        if (link->state == UPSTREAM_UP)
            upstream_sub_health_start(link);
    } else {
        if (!in_list)
            (void)sub_write_health(link, "PUNSUBSCRIBE");
        sub->ping_out = false;
        if (link->state == UPSTREAM_UP)
            ev_timer_stop(link->loop, &link->timer);
    }
    return 0;
}
