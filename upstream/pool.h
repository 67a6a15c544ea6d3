/* The data links to the upstream: [upstream] connections links of the same configuration,
 * each connecting, backing off and recycling on its own (upstream/link.h).
 * Ordering: a caller picks a link with a key it keeps stable for as long as it needs its
 * requests ordered (e.g. the client id): the same key always gives the same link, and a link
 * that is down is not replaced by another (moving a client between links while requests are in
 * flight would let a later read overtake an earlier write). With one connection (the default)
 * every request shares one ordered link (DESIGN.md section 5, read-your-writes). */
#ifndef UPSTREAM_POOL_H
#define UPSTREAM_POOL_H

#include "conf/config.h"
#include "conf/log.h"
#include "upstream/link.h"

#include <stddef.h>

/* Most links a pool holds (config allows 1..64). */
#define UPSTREAM_POOL_LINKS_MAX 64

struct upstream_pool;

/* Creates cfg->connections links (clamped to 1..UPSTREAM_POOL_LINKS_MAX) named "<prefix>-<i>"
 * on loop; they start connecting at once. log may be NULL and must outlive the pool. */
struct upstream_pool *upstream_pool_create(struct ev_loop *loop, const struct config_upstream *cfg,
                                           const struct logger *log, const char *prefix);
/* Destroys every link (upstream_link_destroy's rules: pending requests are released without
 * callbacks; not from inside a callback of one of its links). NULL is a no-op. */
void upstream_pool_destroy(struct upstream_pool *pool);

size_t upstream_pool_size(const struct upstream_pool *pool);
/* Link i (< size). Borrowed, owned by the pool. */
struct upstream_link *upstream_pool_at(const struct upstream_pool *pool, size_t i);
/* The link for key: always the same one for the same key. */
struct upstream_link *upstream_pool_pick(const struct upstream_pool *pool, unsigned long long key);
/* Links currently UP. */
size_t upstream_pool_up(const struct upstream_pool *pool);
/* "up" (all links up), "degraded" (some), "down" (none). */
const char *upstream_pool_state_name(const struct upstream_pool *pool);
/* The sum of every link's counters. */
void upstream_pool_stats(const struct upstream_pool *pool, struct upstream_stats *sum);
/* Requests in flight over all links. */
size_t upstream_pool_in_flight(const struct upstream_pool *pool);
/* Sets the state callback of every link (see upstream_link_set_state_cb). */
void upstream_pool_set_state_cb(struct upstream_pool *pool,
                                void (*cb)(void *arg, struct upstream_link *link,
                                           enum upstream_state state),
                                void *arg);

#endif
