/* The pool of data links (see pool.h). Owns its links; the array never changes size after
 * creation, so a picked link stays valid until the pool is destroyed. */
#include "upstream/pool.h"

#include "conf/xmalloc.h"

#include <stdio.h>
#include <stdlib.h>

struct upstream_pool {
    size_t n;
    struct upstream_link *links[];
};

struct upstream_pool *upstream_pool_create(struct ev_loop *loop, const struct config_upstream *cfg,
                                           const struct logger *log, const char *prefix)
{
    long long n = cfg->connections;
    if (n < 1)
        n = 1;
    if (n > UPSTREAM_POOL_LINKS_MAX)
        n = UPSTREAM_POOL_LINKS_MAX;
    struct upstream_pool *pool =
        xcalloc(1, sizeof(*pool) + (size_t)n * sizeof(pool->links[0]));
    pool->n = (size_t)n;
    for (size_t i = 0; i < pool->n; i++) {
        char name[64];
        snprintf(name, sizeof(name), "%s-%zu", prefix ? prefix : "data", i);
        pool->links[i] = upstream_link_create(loop, cfg, log, name);
    }
    return pool;
}

void upstream_pool_destroy(struct upstream_pool *pool)
{
    if (!pool)
        return;
    for (size_t i = 0; i < pool->n; i++)
        upstream_link_destroy(pool->links[i]);
    free(pool);
}

size_t upstream_pool_size(const struct upstream_pool *pool)
{
    return pool->n;
}

struct upstream_link *upstream_pool_at(const struct upstream_pool *pool, size_t i)
{
    if (i >= pool->n)
        abort();
    return pool->links[i];
}

struct upstream_link *upstream_pool_pick(const struct upstream_pool *pool, unsigned long long key)
{
    return pool->links[key % pool->n];
}

size_t upstream_pool_up(const struct upstream_pool *pool)
{
    size_t up = 0;
    for (size_t i = 0; i < pool->n; i++)
        up += upstream_link_state(pool->links[i]) == UPSTREAM_UP;
    return up;
}

const char *upstream_pool_state_name(const struct upstream_pool *pool)
{
    size_t up = upstream_pool_up(pool);
    return up == pool->n ? "up" : up ? "degraded" : "down";
}

void upstream_pool_stats(const struct upstream_pool *pool, struct upstream_stats *sum)
{
    *sum = (struct upstream_stats){ 0 };
    for (size_t i = 0; i < pool->n; i++) {
        const struct upstream_stats *s = upstream_link_stats(pool->links[i]);
        sum->connect_attempts += s->connect_attempts;
        sum->reconnect_attempts += s->reconnect_attempts;
        sum->connects += s->connects;
        sum->connect_failures += s->connect_failures;
        sum->disconnects += s->disconnects;
        sum->recycles += s->recycles;
        sum->requests += s->requests;
        sum->replies += s->replies;
        sum->reply_errors += s->reply_errors;
        sum->timeouts += s->timeouts;
        sum->disconnected += s->disconnected;
        sum->failed_down += s->failed_down;
        sum->swallowed += s->swallowed;
        sum->health_checks += s->health_checks;
    }
}

size_t upstream_pool_in_flight(const struct upstream_pool *pool)
{
    size_t n = 0;
    for (size_t i = 0; i < pool->n; i++)
        n += upstream_link_in_flight(pool->links[i]);
    return n;
}

void upstream_pool_set_state_cb(struct upstream_pool *pool,
                                void (*cb)(void *arg, struct upstream_link *link,
                                           enum upstream_state state),
                                void *arg)
{
    for (size_t i = 0; i < pool->n; i++)
        upstream_link_set_state_cb(pool->links[i], cb, arg);
}
