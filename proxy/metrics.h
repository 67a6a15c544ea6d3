/* The Prometheus text exposition (format 0.0.4) of the sidecar's figures, for GET /metrics on
 * the admin port. Every family has its # HELP and # TYPE lines; counters end in _total;
 * durations are in seconds, sizes in bytes.
 *
 * Families (prefix sidecar_):
 *   build_info{version,redis_version} 1, uptime_seconds, connected_clients, blocked_clients,
 *   connections_received_total, rejected_connections_total, commands_processed_total,
 *   error_replies_total, net_input_bytes_total, net_output_bytes_total,
 *   memory_used_bytes (what max_memory bounds), memory_max_bytes, memory_rss_bytes;
 *   per command ({cmd="get"}, "client|id", "upstream" for commands forwarded unknown; only
 *   commands used since the start or CONFIG RESETSTAT): commands_total, command_errors_total,
 *   command_rejected_total, command_duration_seconds (histogram);
 *   cache_keys, cache_hits_total, cache_misses_total (near-cache: reads answered locally /
 *   forwarded; standalone: keyspace hits / misses), cache_evictions_total,
 *   cache_expirations_total; with an upstream also cache_fills_total,
 *   cache_fills_discarded_total, cache_write_throughs_total, cache_invalidation_messages_total,
 *   cache_invalidations_total, cache_flushes_total, cache_singleflight_joins_total,
 *   cache_stale_serves_total, upstream_state{state} (1 for the current of up, degraded, down),
 *   upstream_subscriber_state{state} (up, down, off), upstream_tracking_armed,
 *   upstream_connections, upstream_connections_up, upstream_in_flight, upstream_pinned_clients,
 *   upstream_{requests,replies,reply_errors,timeouts,disconnected_requests,failed_fast,
 *   swallowed_replies,connects,connect_failures,reconnects,disconnects,health_checks}_total,
 *   upstream_request_duration_seconds (histogram: a forwarded request from its dispatch to its
 *   reply).
 * Histogram buckets: 1-2-5 steps from 1 us to 10 s (cmdstats.h). CONFIG RESETSTAT resets the
 * counters it resets in INFO (Prometheus sees a counter reset). */
#ifndef PROXY_METRICS_H
#define PROXY_METRICS_H

struct server;
struct strbuf;

/* Appends the whole exposition to b. */
void metrics_render(struct server *srv, struct strbuf *b);

#endif
