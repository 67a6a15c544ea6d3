/* Near-cache coherence (DESIGN.md section 5; nearcache.h): the invalidation subscriber, CLIENT
 * TRACKING on every data link, and the epoch bumps that flush the near-cache whenever
 * invalidations may have been lost.
 *
 * tracking: the subscriber runs CLIENT ID and SUBSCRIBE __redis__:invalidate; each data link
 *   runs CLIENT TRACKING on REDIRECT <id> NOLOOP as its first request after coming up, and
 *   again whenever the subscriber's id changes. NOLOOP: writes we forward ourselves invalidate
 *   locally (by the keys they name), so Redis need not tell us, and a write-through value is
 *   not dropped by the write that made it.
 * bcast: the same with BCAST and a PREFIX per configured prefix.
 * ttl: no subscriber, no tracking; links are armed as soon as they are up.
 * The subscriber runs health checks (upstream_link_set_sub_health) every
 * health_check_interval_ms: one that stops answering is dropped within that + op_timeout_ms,
 * which flushes and re-arms as for a closed connection.
 * Invalidation messages (RESP2, redirected): ["message", "__redis__:invalidate", [key...]]
 * drops the keys; a nil payload (FLUSHALL/FLUSHDB upstream) flushes everything. */
#include "proxy/nearcache.h"

#include "conf/xmalloc.h"
#include "proxy/server.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TRACKING_ARGS_MAX (8 + 2 * NEARCACHE_PREFIXES_MAX)
#define INVALIDATE_CHANNEL "__redis__:invalidate"

/* A CLIENT TRACKING request in flight: which link, for which epoch. */
struct coherence_arm {
    struct coherence_arm *prev, *next; /* nc->arms */
    struct nearcache *nc;
    size_t idx;
    uint64_t epoch;
};

static void arm_unlink(struct coherence_arm *a)
{
    if (a->prev)
        a->prev->next = a->next;
    else
        a->nc->arms = a->next;
    if (a->next)
        a->next->prev = a->prev;
}

static void coherence_tracking_cb(void *owner, const struct upstream_reply *r)
{
    struct coherence_arm *a = owner;
    struct nearcache *nc = a->nc;
    struct nearcache_link *l = &nc->links[a->idx];
    if (r->status == UPSTREAM_OK && upstream_value_type(r->value) == UPSTREAM_VALUE_STATUS) {
        if (a->epoch == l->sent_epoch)
            l->armed_epoch = a->epoch;
    } else if (r->status == UPSTREAM_OK) {
        size_t n;
        const char *text = upstream_value_string(r->value, &n);
        log_warn(&nc->srv->log, "upstream %s: CLIENT TRACKING refused (%.*s): nothing is cached "
                 "through this link", upstream_link_name(l->link), (int)n, text ? text : "");
    }
    arm_unlink(a);
    free(a);
}

void coherence_arm_link(struct nearcache *nc, size_t idx)
{
    struct nearcache_link *l = &nc->links[idx];
    struct server *srv = nc->srv;
    if (upstream_link_state(l->link) != UPSTREAM_UP)
        return;
    if (srv->cfg.invalidation == INVALIDATION_TTL) {
        l->sent_epoch = l->armed_epoch = nc->epoch;
        return;
    }
    if (nc->subscriber_id <= 0)
        return;
    char id[32];
    snprintf(id, sizeof(id), "%lld", nc->subscriber_id);
    const char *argv[TRACKING_ARGS_MAX];
    size_t lens[TRACKING_ARGS_MAX];
    int argc = 0;
#define ARG(s, n) (argv[argc] = (s), lens[argc] = (n), argc++)
    ARG("CLIENT", 6);
    ARG("TRACKING", 8);
    ARG("on", 2);
    ARG("REDIRECT", 8);
    ARG(id, strlen(id));
    ARG("NOLOOP", 6);
    if (srv->cfg.invalidation == INVALIDATION_BCAST) {
        ARG("BCAST", 5);
        for (size_t i = 0; i < nc->nprefixes; i++) {
            ARG("PREFIX", 6);
            ARG(nc->prefixes[i], nc->prefix_lens[i]);
        }
    }
#undef ARG
    struct coherence_arm *a = xcalloc(1, sizeof(*a));
    a->nc = nc;
    a->idx = idx;
    a->epoch = nc->epoch;
    if (!upstream_link_send_argv(l->link, argc, argv, lens, coherence_tracking_cb, a)) {
        free(a);
        return;
    }
    a->next = nc->arms;
    if (nc->arms)
        nc->arms->prev = a;
    nc->arms = a;
    l->sent_epoch = nc->epoch;
}

static void coherence_link_state_cb(void *arg, struct upstream_link *link,
                                    enum upstream_state state)
{
    struct nearcache *nc = arg;
    size_t idx = 0;
    while (idx < nc->nlinks && nc->links[idx].link != link)
        idx++;
    if (idx == nc->nlinks)
        return;
    if (state == UPSTREAM_UP) {
        coherence_arm_link(nc, idx);
        return;
    }
    nc->links[idx].sent_epoch = nc->links[idx].armed_epoch = 0;
    if (nc->srv->cfg.invalidation == INVALIDATION_TTL)
        return; /* nothing was tracked: the entries stay as valid as their TTL */
    /* Its tracking state on the upstream is gone with the connection: what it filled may
     * never be invalidated. */
    nearcache_new_epoch(nc, "an upstream data connection was lost");
}

static void coherence_message_cb(void *arg, struct upstream_link *link,
                                 const struct upstream_value *msg)
{
    struct nearcache *nc = arg;
    (void)link;
    if (upstream_value_type(msg) != UPSTREAM_VALUE_ARRAY || upstream_value_count(msg) != 3)
        return;
    size_t n;
    const char *kind = upstream_value_string(upstream_value_at(msg, 0), &n);
    if (!kind || n != 7 || memcmp(kind, "message", 7) != 0)
        return;
    const struct upstream_value *payload = upstream_value_at(msg, 2);
    nc->stats.invalidation_messages++;
    enum upstream_value_type t = upstream_value_type(payload);
    if (t == UPSTREAM_VALUE_NIL || t == UPSTREAM_VALUE_NIL_ARRAY) {
        nearcache_flush(nc, "the upstream was flushed");
        return;
    }
    if (t == UPSTREAM_VALUE_BULK) { /* one key, not in an array (not sent by Redis 7) */
        const char *key = upstream_value_string(payload, &n);
        nearcache_drop_key(nc, key, n);
        nc->stats.invalidations++;
        return;
    }
    if (t != UPSTREAM_VALUE_ARRAY)
        return;
    size_t count = upstream_value_count(payload);
    for (size_t i = 0; i < count; i++) {
        const char *key = upstream_value_string(upstream_value_at(payload, i), &n);
        if (!key)
            continue;
        nearcache_drop_key(nc, key, n);
        nc->stats.invalidations++;
    }
}

static void coherence_subscriber_state_cb(void *arg, struct upstream_link *link,
                                          enum upstream_state state)
{
    struct nearcache *nc = arg;
    if (state == UPSTREAM_UP) {
        nc->subscriber_id = upstream_link_client_id(link);
        nearcache_new_epoch(nc, "invalidation subscriber connected");
    } else {
        nc->subscriber_id = 0;
        nearcache_new_epoch(nc, "invalidation subscriber lost");
    }
}

void coherence_start(struct nearcache *nc)
{
    struct server *srv = nc->srv;
    upstream_pool_set_state_cb(nc->pool, coherence_link_state_cb, nc);
    if (srv->cfg.invalidation == INVALIDATION_TTL)
        return;
    static const char *const channels[] = { INVALIDATE_CHANNEL };
    nc->subscriber = upstream_link_create_subscriber(srv->loop, &srv->cfg.upstream, &srv->log,
                                                     "invalidate", channels, 1,
                                                     coherence_message_cb, nc);
    upstream_link_set_state_cb(nc->subscriber, coherence_subscriber_state_cb, nc);
    /* A subscriber that stays connected but silent would lose every invalidation while hits
     * go on being served: check it as the data links are checked (health_check_interval_ms;
     * its loss flushes and re-arms, like any other). */
    upstream_link_set_sub_health(nc->subscriber, true);
}

void coherence_stop(struct nearcache *nc)
{
    if (nc->subscriber) {
        upstream_link_destroy(nc->subscriber);
        nc->subscriber = NULL;
    }
    upstream_pool_set_state_cb(nc->pool, NULL, NULL);
    while (nc->arms) {
        struct coherence_arm *a = nc->arms;
        nc->arms = a->next;
        free(a);
    }
}

const char *coherence_mode_name(const struct nearcache *nc)
{
    switch (nc->srv->cfg.invalidation) {
    case INVALIDATION_BCAST:
        return "bcast";
    case INVALIDATION_TTL:
        return "ttl";
    default:
        return "tracking";
    }
}

const char *coherence_subscriber_state(const struct nearcache *nc)
{
    if (!nc->subscriber)
        return "off";
    return upstream_link_state(nc->subscriber) == UPSTREAM_UP ? "up" : "down";
}
