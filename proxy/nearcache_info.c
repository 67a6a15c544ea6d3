/* INFO's "# Upstream" and "# Cache" sections: the upstream's links and counters, and what the
 * near-cache did. Standalone, both say so in one line. */
#include "proxy/nearcache.h"

#include "cache/store.h"
#include "proxy/server.h"
#include "proxy/strbuf.h"

void nearcache_info_upstream(struct server *srv, struct strbuf *b)
{
    const struct nearcache *nc = srv->nc;
    if (!nc) {
        strbuf_printf(b, "upstream_mode:standalone\r\n");
        return;
    }
    struct upstream_stats st;
    upstream_pool_stats(nc->pool, &st);
    const char *last = "";
    for (size_t i = 0; i < nc->nlinks && !last[0]; i++)
        last = upstream_link_last_error(nc->links[i].link);
    strbuf_printf(b,
                  "upstream_mode:near-cache\r\n"
                  "upstream_address:%s\r\n"
                  "upstream_state:%s\r\n"
                  "upstream_connections:%zu\r\n"
                  "upstream_connections_up:%zu\r\n"
                  "upstream_subscriber:%s\r\n"
                  "upstream_invalidation:%s\r\n"
                  "upstream_tracking_armed:%d\r\n"
                  "upstream_pinned_clients:%zu\r\n"
                  "upstream_in_flight:%zu\r\n"
                  "upstream_requests:%llu\r\n"
                  "upstream_replies:%llu\r\n"
                  "upstream_reply_errors:%llu\r\n"
                  "upstream_timeouts:%llu\r\n"
                  "upstream_disconnected_requests:%llu\r\n"
                  "upstream_failed_fast:%llu\r\n"
                  "upstream_swallowed_replies:%llu\r\n"
                  "upstream_connects:%llu\r\n"
                  "upstream_connect_failures:%llu\r\n"
                  "upstream_reconnects:%llu\r\n"
                  "upstream_disconnects:%llu\r\n"
                  "upstream_health_checks:%llu\r\n"
                  "upstream_output_bytes:%zu\r\n"
                  "upstream_backpressure_waits:%llu\r\n"
                  "upstream_last_error:%s\r\n",
                  upstream_link_address(nc->links[0].link), nearcache_state_name(nc), nc->nlinks,
                  upstream_pool_up(nc->pool), coherence_subscriber_state(nc),
                  coherence_mode_name(nc), nearcache_armed(nc) ? 1 : 0, srv->pinned_clients,
                  upstream_pool_in_flight(nc->pool), (unsigned long long)st.requests,
                  (unsigned long long)st.replies, (unsigned long long)st.reply_errors,
                  (unsigned long long)st.timeouts, (unsigned long long)st.disconnected,
                  (unsigned long long)st.failed_down, (unsigned long long)st.swallowed,
                  (unsigned long long)st.connects, (unsigned long long)st.connect_failures,
                  (unsigned long long)st.reconnect_attempts, (unsigned long long)st.disconnects,
                  (unsigned long long)st.health_checks, nearcache_output_bytes(nc),
                  (unsigned long long)srv->stats.upstream_waits, last);
}

void nearcache_info_cache(struct server *srv, struct strbuf *b)
{
    const struct nearcache *nc = srv->nc;
    if (!nc) {
        strbuf_printf(b, "cache_mode:standalone\r\n");
        return;
    }
    const struct nearcache_stats *s = &nc->stats;
    const struct store_stats *ss = store_get_stats(srv->store);
    uint64_t reads = s->hits + s->misses;
    strbuf_printf(b,
                  "cache_mode:near-cache\r\n"
                  "cache_keys:%zu\r\n"
                  "cache_hits:%llu\r\n"
                  "cache_misses:%llu\r\n"
                  "cache_hit_ratio:%.4f\r\n"
                  "cache_fills:%llu\r\n"
                  "cache_fills_discarded:%llu\r\n"
                  "cache_write_throughs:%llu\r\n"
                  "cache_evictions:%llu\r\n"
                  "cache_expirations:%llu\r\n"
                  "cache_invalidation_messages:%llu\r\n"
                  "cache_invalidations:%llu\r\n"
                  "cache_flushes:%llu\r\n"
                  "cache_singleflight_joins:%llu\r\n"
                  "cache_stale_serves:%llu\r\n"
                  "cache_max_ttl_ms:%lld\r\n",
                  store_count(srv->store, -1), (unsigned long long)s->hits,
                  (unsigned long long)s->misses,
                  reads ? (double)s->hits / (double)reads : 0.0, (unsigned long long)s->fills,
                  (unsigned long long)s->fills_discarded, (unsigned long long)s->write_throughs,
                  (unsigned long long)ss->evicted, (unsigned long long)ss->expired,
                  (unsigned long long)s->invalidation_messages,
                  (unsigned long long)s->invalidations, (unsigned long long)s->flushes,
                  (unsigned long long)s->singleflight_joins, (unsigned long long)s->stale_serves,
                  srv->cfg.max_ttl_ms);
}
