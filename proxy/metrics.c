/* The Prometheus text exposition (see metrics.h): reads the server root, the store, the
 * near-cache and the per-command statistics; writes nothing but the buffer it is given.
 * Invariants: each family's samples are contiguous and follow its # HELP / # TYPE lines; label
 * values are command names from the command table (lower-case letters, digits, '|', '-', '_'),
 * so they need no escaping; histogram buckets are cumulative and end with le="+Inf" equal to
 * _count. */
#include "proxy/metrics.h"

#include "cache/store.h"
#include "proxy/cmdstats.h"
#include "proxy/nearcache.h"
#include "proxy/server.h"
#include "proxy/strbuf.h"

#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define P "sidecar_"

/* The exported bucket bounds: 1-2-5 from 1 us to 10 s, each a bound of cmdstats' buckets. */
static const uint64_t prom_le_ns[] = {
    1000ull, 2000ull, 5000ull, 10000ull, 20000ull, 50000ull, 100000ull, 200000ull, 500000ull,
    1000000ull, 2000000ull, 5000000ull, 10000000ull, 20000000ull, 50000000ull, 100000000ull,
    200000000ull, 500000000ull, 1000000000ull, 2000000000ull, 5000000000ull, 10000000000ull,
};
#define PROM_NLE (sizeof(prom_le_ns) / sizeof(prom_le_ns[0]))

static void family(struct strbuf *b, const char *name, const char *type, const char *help)
{
    strbuf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void counter(struct strbuf *b, const char *name, const char *help, uint64_t v)
{
    family(b, name, "counter", help);
    strbuf_printf(b, "%s %llu\n", name, (unsigned long long)v);
}

static void gauge(struct strbuf *b, const char *name, const char *help, uint64_t v)
{
    family(b, name, "gauge", help);
    strbuf_printf(b, "%s %llu\n", name, (unsigned long long)v);
}

/* One state-set gauge: a sample per state, 1 for the current one. */
static void gauge_states(struct strbuf *b, const char *name, const char *help,
                         const char *const *states, size_t n, const char *current)
{
    family(b, name, "gauge", help);
    for (size_t i = 0; i < n; i++)
        strbuf_printf(b, "%s{state=\"%s\"} %d\n", name, states[i],
                      strcmp(states[i], current) == 0 ? 1 : 0);
}

/* The samples of one histogram; label is "" or `cmd="get"`. */
static void histogram_samples(struct strbuf *b, const char *name, const char *label,
                              const struct cmdstats_hist *h)
{
    const char *sep = label[0] ? "," : "";
    uint64_t cum = 0;
    size_t fine = 0;
    for (size_t i = 0; i < PROM_NLE; i++) {
        while (fine < CMDSTATS_BOUNDS && cmdstats_bucket_upper_ns(fine) <= prom_le_ns[i])
            cum += h->bucket[fine++];
        strbuf_printf(b, "%s_bucket{%s%sle=\"%g\"} %llu\n", name, label, sep,
                      (double)prom_le_ns[i] / 1e9, (unsigned long long)cum);
    }
    strbuf_printf(b, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", name, label, sep,
                  (unsigned long long)h->count);
    const char *open = label[0] ? "{" : "", *close = label[0] ? "}" : "";
    strbuf_printf(b, "%s_sum%s%s%s %llu.%09llu\n", name, open, label, close,
                  (unsigned long long)(h->sum_ns / 1000000000ull),
                  (unsigned long long)(h->sum_ns % 1000000000ull));
    strbuf_printf(b, "%s_count%s%s%s %llu\n", name, open, label, close,
                  (unsigned long long)h->count);
}

static bool row_used(const struct cmdstat *r)
{
    return r->calls || r->failed || r->rejected;
}

static void metrics_commands(struct server *srv, struct strbuf *b)
{
    const struct cmdstats *cs = srv->cmdstats;
    size_t n = cmdstats_count(cs);
    static const struct {
        const char *name, *help;
        size_t off;
    } counters[] = {
        { P "commands_total", "Commands run or forwarded, by command (Redis's calls; refused "
          "ones are not counted).", offsetof(struct cmdstat, calls) },
        { P "command_errors_total", "Commands that replied an error (Redis's failed_calls).",
          offsetof(struct cmdstat, failed) },
        { P "command_rejected_total", "Commands refused before running: arity, NOAUTH, OOM, "
          "subscriber context (Redis's rejected_calls).", offsetof(struct cmdstat, rejected) },
    };
    for (size_t k = 0; k < sizeof(counters) / sizeof(counters[0]); k++) {
        family(b, counters[k].name, "counter", counters[k].help);
        for (size_t i = 0; i < n; i++) {
            const struct cmdstat *r = cmdstats_at(cs, i);
            if (row_used(r))
                strbuf_printf(b, "%s{cmd=\"%s\"} %llu\n", counters[k].name, r->name,
                              (unsigned long long)*(const uint64_t *)(const void *)
                                  ((const char *)r + counters[k].off));
        }
    }
    family(b, P "command_duration_seconds", "histogram",
           "Command latency: from the request's dispatch to its answer (for a forwarded "
           "request, to the upstream's reply).");
    char label[CMDSTATS_NAME_MAX + 8];
    for (size_t i = 0; i < n; i++) {
        const struct cmdstat *r = cmdstats_at(cs, i);
        if (!r->hist)
            continue;
        snprintf(label, sizeof(label), "cmd=\"%s\"", r->name);
        histogram_samples(b, P "command_duration_seconds", label, r->hist);
    }
}

static void metrics_server(struct server *srv, struct strbuf *b)
{
    const struct server_stats *st = &srv->stats;
    family(b, P "build_info", "gauge", "The sidecar's version and the Redis version it follows.");
    strbuf_printf(b, P "build_info{version=\"%s\",redis_version=\"%s\"} 1\n", SIDECAR_VERSION,
                  SERVER_VERSION);
    int64_t up = (int64_t)(ev_time() * 1000.0) - srv->start_ms;
    gauge(b, P "uptime_seconds", "Seconds since the sidecar started.",
          (uint64_t)(up > 0 ? up / 1000 : 0));
    gauge(b, P "connected_clients", "Client connections open.", srv->nclients);
    gauge(b, P "blocked_clients", "Clients waiting in a blocking command.",
          srv->blocked_clients);
    counter(b, P "connections_received_total", "Client connections accepted.",
            st->connections_received);
    counter(b, P "rejected_connections_total", "Client connections refused (maxclients).",
            st->rejected_connections);
    counter(b, P "commands_processed_total", "Commands processed (INFO total_commands_processed).",
            st->commands_processed);
    counter(b, P "error_replies_total", "Error replies sent (INFO total_error_replies).",
            st->errors_replied);
    counter(b, P "net_input_bytes_total", "Bytes read from clients.", st->net_input_bytes);
    counter(b, P "net_output_bytes_total", "Bytes written to clients.", st->net_output_bytes);
    gauge(b, P "memory_used_bytes", "Bytes the store holds (what max_memory bounds).",
          store_used_bytes(srv->store));
    gauge(b, P "memory_max_bytes", "The max_memory budget in bytes (0 = none).",
          store_max_memory(srv->store));
    gauge(b, P "memory_rss_bytes", "Resident set size of the process.", server_rss_bytes());
    counter(b, P "memory_heap_trims_total",
            "Times free heap pages were given back to the system (INFO mem_heap_trims).",
            srv->memtrim.trims);
    counter(b, P "memory_heap_trimmed_bytes_total",
            "Resident bytes those trims gave back (INFO mem_heap_trimmed_bytes).",
            srv->memtrim.trimmed_bytes);
}

static void metrics_cache(struct server *srv, struct strbuf *b)
{
    const struct store_stats *ss = store_get_stats(srv->store);
    const struct nearcache *nc = srv->nc;
    gauge(b, P "cache_keys", "Keys held locally (every database).", store_count(srv->store, -1));
    counter(b, P "cache_hits_total", nc ? "Cacheable reads answered from the near-cache."
                                        : "Key lookups that found the key (keyspace_hits).",
            nc ? nc->stats.hits : ss->hits);
    counter(b, P "cache_misses_total", nc ? "Cacheable reads forwarded to the upstream."
                                          : "Key lookups that missed (keyspace_misses).",
            nc ? nc->stats.misses : ss->misses);
    counter(b, P "cache_evictions_total", "Keys evicted to honour max_memory.", ss->evicted);
    counter(b, P "cache_expirations_total", "Keys removed because their TTL passed.",
            ss->expired);
    if (!nc)
        return;
    const struct nearcache_stats *s = &nc->stats;
    counter(b, P "cache_fills_total", "Upstream replies stored in the near-cache.", s->fills);
    counter(b, P "cache_fills_discarded_total",
            "Upstream replies not stored: an invalidation overtook them.", s->fills_discarded);
    counter(b, P "cache_write_throughs_total", "Values stored after a successful write.",
            s->write_throughs);
    counter(b, P "cache_invalidation_messages_total",
            "Messages received on __redis__:invalidate.", s->invalidation_messages);
    counter(b, P "cache_invalidations_total", "Keys dropped because of invalidation messages.",
            s->invalidations);
    counter(b, P "cache_flushes_total",
            "Times the whole near-cache was dropped (flush, link or subscriber lost).",
            s->flushes);
    counter(b, P "cache_singleflight_joins_total",
            "Misses that joined an upstream read already in flight.", s->singleflight_joins);
    counter(b, P "cache_stale_serves_total",
            "Expired entries served while the upstream was down (serve_stale_ms).",
            s->stale_serves);
}

static void metrics_upstream(struct server *srv, struct strbuf *b)
{
    const struct nearcache *nc = srv->nc;
    if (!nc)
        return;
    static const char *const states[] = { "up", "degraded", "down" };
    static const char *const sub_states[] = { "up", "down", "off" };
    gauge_states(b, P "upstream_state",
                 "Data links to the upstream: up (all), degraded (some), down (none).", states, 3,
                 nearcache_state_name(nc));
    gauge_states(b, P "upstream_subscriber_state",
                 "The invalidation subscriber: up, down, off (ttl mode).", sub_states, 3,
                 coherence_subscriber_state(nc));
    gauge(b, P "upstream_tracking_armed",
          "1 when every data link confirmed CLIENT TRACKING in the current epoch.",
          nearcache_armed(nc) ? 1 : 0);
    gauge(b, P "upstream_connections", "Data links configured.", nc->nlinks);
    gauge(b, P "upstream_connections_up", "Data links up.", upstream_pool_up(nc->pool));
    gauge(b, P "upstream_in_flight", "Requests sent on the data links and not answered yet.",
          upstream_pool_in_flight(nc->pool));
    gauge(b, P "upstream_pinned_clients", "Clients on a private upstream connection.",
          srv->pinned_clients);
    struct upstream_stats st;
    upstream_pool_stats(nc->pool, &st);
    counter(b, P "upstream_requests_total", "Requests written to the upstream (data links).",
            st.requests);
    counter(b, P "upstream_replies_total", "Replies received from the upstream.", st.replies);
    counter(b, P "upstream_reply_errors_total", "Error replies received from the upstream.",
            st.reply_errors);
    counter(b, P "upstream_timeouts_total", "Requests not answered within op_timeout_ms.",
            st.timeouts);
    counter(b, P "upstream_disconnected_requests_total",
            "Requests lost with their connection.", st.disconnected);
    counter(b, P "upstream_failed_fast_total", "Requests failed at once: the link was down.",
            st.failed_down);
    counter(b, P "upstream_swallowed_replies_total",
            "Replies dropped because their client had gone.", st.swallowed);
    counter(b, P "upstream_connects_total", "Handshakes completed (links going up).",
            st.connects);
    counter(b, P "upstream_connect_failures_total", "Connection attempts that failed.",
            st.connect_failures);
    counter(b, P "upstream_reconnects_total", "Reconnection attempts after a backoff delay.",
            st.reconnect_attempts);
    counter(b, P "upstream_disconnects_total", "Times an up link was lost.", st.disconnects);
    counter(b, P "upstream_health_checks_total", "Health-check PINGs sent.", st.health_checks);
    gauge(b, P "upstream_output_bytes",
          "Bytes written to the data links and not yet taken by their sockets.",
          nearcache_output_bytes(nc));
    counter(b, P "upstream_backpressure_waits_total",
            "Times a client stopped reading because its upstream link was congested.",
            srv->stats.upstream_waits);
    family(b, P "upstream_request_duration_seconds", "histogram",
           "Forwarded requests: from the request's dispatch to the upstream's reply.");
    histogram_samples(b, P "upstream_request_duration_seconds", "",
                      cmdstats_upstream_hist(srv->cmdstats));
}

void metrics_render(struct server *srv, struct strbuf *b)
{
    metrics_server(srv, b);
    metrics_commands(srv, b);
    metrics_cache(srv, b);
    metrics_upstream(srv, b);
}
