/* The pub/sub relay (near-cache mode): clients subscribe to the sidecar (pubsub.c keeps their
 * subscriptions and replies their confirmations as Redis does), and one subscriber link of
 * ours is subscribed upstream to exactly the channels and patterns some client holds. Each
 * message it receives is delivered to the local subscribers of that channel, or of that
 * pattern (the upstream did the matching). PUBLISH is forwarded, so messages from any pod
 * reach every pod's subscribers. The link is created with the first subscription and kept;
 * it resubscribes by itself after a reconnect (messages published while it was down are lost,
 * as they are for a Redis subscriber that reconnects). */
#include "proxy/nearcache.h"

#include "proxy/pubsub.h"
#include "proxy/server.h"

#include <string.h>

static void relay_message_cb(void *arg, struct upstream_link *link,
                             const struct upstream_value *msg)
{
    struct nearcache *nc = arg;
    (void)link;
    size_t n = upstream_value_count(msg), klen;
    if (upstream_value_type(msg) != UPSTREAM_VALUE_ARRAY || n < 3)
        return;
    const char *kind = upstream_value_string(upstream_value_at(msg, 0), &klen);
    if (!kind)
        return;
    size_t plen = 0, clen, mlen;
    const char *pattern = NULL, *channel, *payload;
    if (n == 4 && klen == 8 && memcmp(kind, "pmessage", 8) == 0) {
        pattern = upstream_value_string(upstream_value_at(msg, 1), &plen);
        channel = upstream_value_string(upstream_value_at(msg, 2), &clen);
        payload = upstream_value_string(upstream_value_at(msg, 3), &mlen);
    } else if (n == 3 && klen == 7 && memcmp(kind, "message", 7) == 0) {
        channel = upstream_value_string(upstream_value_at(msg, 1), &clen);
        payload = upstream_value_string(upstream_value_at(msg, 2), &mlen);
    } else {
        return;
    }
    if (!channel || !payload || (n == 4 && !pattern))
        return;
    pubsub_deliver(nc->srv->pubsub, pattern, plen, channel, clen, payload, mlen);
}

static void relay_names_cb(void *ctx, bool pattern, const char *name, size_t len, bool added)
{
    struct nearcache *nc = ctx;
    struct server *srv = nc->srv;
    if (!nc->relay) {
        if (!added)
            return;
        nc->relay = upstream_link_create_subscriber(srv->loop, &srv->cfg.upstream, &srv->log,
                                                    "pubsub", NULL, 0, relay_message_cb, nc);
        /* a silent relay connection would lose every message until it is noticed */
        upstream_link_set_sub_health(nc->relay, true);
    }
    if (pattern)
        (added ? upstream_link_psubscribe : upstream_link_punsubscribe)(nc->relay, name, len);
    else
        (added ? upstream_link_subscribe : upstream_link_unsubscribe)(nc->relay, name, len);
}

void relay_start(struct nearcache *nc)
{
    pubsub_set_names_hook(nc->srv->pubsub, relay_names_cb, nc);
}

void relay_stop(struct nearcache *nc)
{
    pubsub_set_names_hook(nc->srv->pubsub, NULL, NULL);
    if (nc->relay) {
        upstream_link_destroy(nc->relay);
        nc->relay = NULL;
    }
}
