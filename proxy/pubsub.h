/* Pub/sub: the server's registry of channels and patterns and who subscribes to them, and the
 * delivery of published messages into the subscribers' output.
 *
 * Registry: one table of channels and one of patterns, each name -> its subscribers in the
 * order they subscribed; a name is in its table exactly while it has a subscriber. Each client
 * keeps its own list of subscriptions (c->pubsub) so it can leave them all at once; a client
 * holds a channel or pattern at most once. Everything is freed when the client goes.
 *
 * Delivery: a message is encoded once per protocol (RESP2 array, RESP3 push) and appended to
 * each receiver's output through the normal reply path. A receiver whose pending output then
 * exceeds client_output_buffer_limit is closed (client_close), as Redis closes a subscriber
 * over its pubsub limit: a subscriber never sends a command, so the dispatcher's own check after
 * each command would never see it. Receivers already closing get nothing (but are counted).
 *
 * Memory: every allocation (tables, names, subscription records) is counted in
 * pubsub_bytes() (usable size + one word of allocator header). */
#ifndef PROXY_PUBSUB_H
#define PROXY_PUBSUB_H

#include "proxy/command.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct client;
struct pubsub;

/* proxy/cmd_pubsub.c: the "pubsub" family (pubsub_commands[]). */
command_proc cmd_subscribe, cmd_unsubscribe, cmd_psubscribe, cmd_punsubscribe, cmd_publish,
    cmd_pubsub_channels, cmd_pubsub_numsub, cmd_pubsub_numpat, cmd_pubsub_shardchannels,
    cmd_pubsub_shardnumsub, cmd_pubsub_help;

/* True for what a RESP2 subscriber may still send: (P)SUBSCRIBE (P)UNSUBSCRIBE PING QUIT RESET
 * (cmd_pubsub.c). */
bool pubsub_allowed_when_subscribed(const struct command *cmd);
/* SUBSCRIBE, UNSUBSCRIBE, PSUBSCRIBE, PUNSUBSCRIBE. */
bool pubsub_is_subscription(const struct command *cmd);
/* PING of a RESP2 subscriber: replies ["pong", message or ""] and returns true; false (nothing
 * replied) for everyone else. */
bool pubsub_reply_ping(struct client *c);

/* ---- pubsub.c ---- */

struct pubsub *pubsub_create(const uint8_t seed[16]);
/* Every client must have been freed (pubsub_client_free) before. NULL is fine. */
void pubsub_destroy(struct pubsub *ps);

/* Subscribes c to a channel (pattern: to a pattern) and replies the confirmation
 * [subscribe|psubscribe, name, subscriptions of c]. Already subscribed: only the reply. */
void pubsub_subscribe(struct client *c, const char *name, size_t len, bool pattern);
/* Unsubscribes c from one channel or pattern and replies [unsubscribe|punsubscribe, name,
 * subscriptions left] (also when c was not subscribed). */
void pubsub_unsubscribe(struct client *c, const char *name, size_t len, bool pattern);
/* Unsubscribes c from every channel (pattern: every pattern); with notify, one reply per name,
 * or [kind, null, count] when there was none. */
void pubsub_unsubscribe_all(struct client *c, bool pattern, bool notify);
/* Delivers message to the subscribers of channel and of the patterns matching it; returns
 * how many received it (Redis's PUBLISH reply). */
long long pubsub_publish(struct client *publisher, const char *channel, size_t clen,
                         const char *msg, size_t mlen);

/* Delivers a message that arrived from the upstream (near-cache mode) to the subscribers of
 * exactly that channel (pattern NULL), or of exactly that pattern: the upstream already did
 * the matching, so nothing is delivered twice. Returns how many received it. */
long long pubsub_deliver(struct pubsub *ps, const char *pattern, size_t patlen,
                         const char *channel, size_t clen, const char *msg, size_t mlen);

/* Called when a channel (pattern false) or pattern gets its first subscriber (added true) or
 * loses its last one; the pub/sub relay keeps the upstream subscribed to exactly these. */
typedef void pubsub_names_fn(void *ctx, bool pattern, const char *name, size_t len, bool added);
void pubsub_set_names_hook(struct pubsub *ps, pubsub_names_fn *fn, void *ctx);

/* PUBSUB CHANNELS [pattern] (pattern NULL: all), PUBSUB NUMSUB, PUBSUB NUMPAT. */
void pubsub_reply_channels(struct client *c, const char *pat, size_t plen);
size_t pubsub_channel_subscribers(const struct pubsub *ps, const char *name, size_t len);
size_t pubsub_pattern_count(const struct pubsub *ps);
size_t pubsub_channel_count(const struct pubsub *ps);
size_t pubsub_bytes(const struct pubsub *ps);

/* Channels and patterns c subscribes to (CLIENT LIST's sub= and psub=). */
size_t pubsub_client_channels(const struct client *c);
size_t pubsub_client_patterns(const struct client *c);
/* Drops every subscription of c without replying (disconnect, RESET). */
void pubsub_client_free(struct client *c);

#endif
