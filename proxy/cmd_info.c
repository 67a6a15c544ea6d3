/* INFO: the server's report, in Redis 7's section names, field names and byte layout
 * ("# Title\r\n", "field:value\r\n" lines, one blank line between sections), so tools that
 * parse Redis's INFO parse ours. Owns the section table and every figure's formatting; the
 * figures themselves come from the server root (stats, clients) and the store.
 * Invariants: sections always come out in table order whatever order they were asked in; a
 * field is only printed when its value is real here (no persistence, replication or modules:
 * those report Redis's idle values). Bulk string in RESP2, verbatim string in RESP3. */
#include "proxy/args.h"
#include "proxy/cmdstats.h"
#include "proxy/command.h"
#include "proxy/errorstats.h"
#include "proxy/nearcache.h"
#include "proxy/reply.h"
#include "proxy/pubsub.h"
#include "proxy/server.h"

#include "cache/store.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/utsname.h>
#include <unistd.h>

#define INFO_PATH_MAX 4096
#define INFO_HUMAN_MAX 32

/* Redis's bytesToHuman: "919.41K", "11.79M", "0B". */
static void bytes_to_human(char *buf, size_t cap, unsigned long long n)
{
    static const char units[] = "KMGTP";
    if (n < 1024) {
        snprintf(buf, cap, "%lluB", n);
        return;
    }
    double d = (double)n / 1024;
    for (const char *u = units; *u; u++, d /= 1024) {
        if (d < 1024 || u[1] == '\0') {
            snprintf(buf, cap, "%.2f%c", d, *u);
            return;
        }
    }
}

/* ---- figures ---- */

static uint64_t info_system_memory(void)
{
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    return pages > 0 && page > 0 ? (uint64_t)pages * (uint64_t)page : 0;
}

/* The port of the first TCP listener, 0 when there is none. */
static int info_tcp_port(const struct server *srv)
{
    for (size_t i = 0; i < srv->nlisteners; i++) {
        const char *colon = strrchr(srv->listeners[i].addr, ':');
        if (!srv->listeners[i].unix_socket && colon)
            return atoi(colon + 1);
    }
    return 0;
}

static const char *info_multiplexing_api(struct ev_loop *loop)
{
    static const struct { unsigned backend; const char *name; } apis[] = {
        { EVBACKEND_EPOLL, "epoll" }, { EVBACKEND_KQUEUE, "kqueue" },
        { EVBACKEND_PORT, "evport" }, { EVBACKEND_POLL, "poll" },
        { EVBACKEND_SELECT, "select" },
    };
    unsigned backend = ev_backend(loop);
    for (size_t i = 0; i < sizeof(apis) / sizeof(apis[0]); i++)
        if (backend == apis[i].backend)
            return apis[i].name;
    return "libev";
}

/* ---- sections ---- */

static void info_server(struct server *srv, struct strbuf *b)
{
    struct utsname u;
    if (uname(&u) != 0)
        memset(&u, 0, sizeof(u));
    char exe[INFO_PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    exe[n > 0 ? n : 0] = '\0';
    struct timeval tv;
    gettimeofday(&tv, NULL);
    int64_t uptime = (server_now_ms(srv) - srv->start_ms) / 1000;

    strbuf_printf(b, "redis_version:%s\r\nredis_git_sha1:00000000\r\nredis_git_dirty:0\r\n"
                "redis_mode:standalone\r\nos:%s %s %s\r\narch_bits:%d\r\n"
                "multiplexing_api:%s\r\n",
             SERVER_VERSION, u.sysname, u.release, u.machine, (int)sizeof(long) * 8,
             info_multiplexing_api(srv->loop));
#ifdef __GNUC__
    strbuf_printf(b, "gcc_version:%d.%d.%d\r\n", __GNUC__, __GNUC_MINOR__, __GNUC_PATCHLEVEL__);
#endif
    strbuf_printf(b, "process_id:%d\r\nprocess_supervised:no\r\nrun_id:%s\r\ntcp_port:%d\r\n"
                "server_time_usec:%lld\r\nuptime_in_seconds:%lld\r\nuptime_in_days:%lld\r\n"
                "hz:%lld\r\nconfigured_hz:%lld\r\nexecutable:%s\r\nconfig_file:%s\r\n"
                "io_threads_active:0\r\nsidecar_version:%s\r\n",
             (int)getpid(), srv->run_id, info_tcp_port(srv),
             (long long)tv.tv_sec * 1000000 + tv.tv_usec, (long long)uptime,
             (long long)uptime / 86400, srv->cfg.hz, srv->cfg.hz, exe,
             srv->config_path ? srv->config_path : "", SIDECAR_VERSION);
}

static void info_clients(struct server *srv, struct strbuf *b)
{
    size_t max_in = 0, max_out = 0;
    for (const struct client *c = srv->clients; c; c = c->next) {
        if (client_input_alloc(c) > max_in)
            max_in = client_input_alloc(c);
        if (c->out.cap > max_out)
            max_out = c->out.cap;
    }
    strbuf_printf(b, "connected_clients:%zu\r\ncluster_connections:0\r\nmaxclients:%lld\r\n"
                "client_recent_max_input_buffer:%zu\r\nclient_recent_max_output_buffer:%zu\r\n"
                "blocked_clients:%zu\r\ntracking_clients:0\r\nclients_in_timeout_table:%zu\r\n",
             srv->nclients, srv->cfg.maxclients, max_in, max_out, srv->blocked_clients,
             srv->blocked_clients_timeout);
}

static void info_memory(struct server *srv, struct strbuf *b)
{
    uint64_t used = server_used_memory(srv), rss = server_rss_bytes(), sys = info_system_memory();
    uint64_t maxmem = store_max_memory(srv->store);
    char used_h[INFO_HUMAN_MAX], rss_h[INFO_HUMAN_MAX], sys_h[INFO_HUMAN_MAX];
    char max_h[INFO_HUMAN_MAX];
    bytes_to_human(used_h, sizeof(used_h), used);
    bytes_to_human(rss_h, sizeof(rss_h), rss);
    bytes_to_human(sys_h, sizeof(sys_h), sys);
    bytes_to_human(max_h, sizeof(max_h), maxmem);
    const char *policy = config_policy_name(srv->cfg.maxmemory_policy);

    strbuf_printf(b, "used_memory:%llu\r\nused_memory_human:%s\r\nused_memory_rss:%llu\r\n"
                "used_memory_rss_human:%s\r\ntotal_system_memory:%llu\r\n"
                "total_system_memory_human:%s\r\nmaxmemory:%llu\r\nmaxmemory_human:%s\r\n"
                "maxmemory_policy:%s\r\nmem_fragmentation_ratio:%.2f\r\n"
                "mem_fragmentation_bytes:%lld\r\nmem_clients_normal:%llu\r\n"
                "mem_allocator:libc\r\nlazyfree_pending_objects:0\r\n"
                "mem_heap_trims:%llu\r\nmem_heap_trimmed_bytes:%llu\r\n",
             (unsigned long long)used, used_h, (unsigned long long)rss, rss_h,
             (unsigned long long)sys, sys_h, (unsigned long long)maxmem, max_h,
             policy ? policy : "", used ? (double)rss / (double)used : 0.0,
             (long long)rss - (long long)used, (unsigned long long)server_client_bytes(srv),
             (unsigned long long)srv->memtrim.trims,
             (unsigned long long)srv->memtrim.trimmed_bytes);
}

static void info_persistence(struct server *srv, struct strbuf *b)
{
    strbuf_printf(b, "loading:0\r\nasync_loading:0\r\nrdb_changes_since_last_save:0\r\n"
                "rdb_bgsave_in_progress:0\r\nrdb_last_save_time:%lld\r\n"
                "rdb_last_bgsave_status:ok\r\nrdb_last_bgsave_time_sec:-1\r\n"
                "rdb_current_bgsave_time_sec:-1\r\nrdb_saves:0\r\naof_enabled:0\r\n"
                "aof_rewrite_in_progress:0\r\naof_rewrite_scheduled:0\r\n"
                "aof_last_rewrite_time_sec:-1\r\naof_current_rewrite_time_sec:-1\r\n"
                "aof_last_bgrewrite_status:ok\r\naof_rewrites:0\r\naof_last_write_status:ok\r\n",
             (long long)(srv->start_ms / 1000));
}

static void info_stats(struct server *srv, struct strbuf *b)
{
    const struct server_stats *st = &srv->stats;
    const struct store_stats *ss = store_get_stats(srv->store);
    strbuf_printf(b, "total_connections_received:%llu\r\ntotal_commands_processed:%llu\r\n"
                "instantaneous_ops_per_sec:0\r\ntotal_net_input_bytes:%llu\r\n"
                "total_net_output_bytes:%llu\r\nrejected_connections:%llu\r\n"
                "expired_keys:%llu\r\nevicted_keys:%llu\r\nkeyspace_hits:%llu\r\n"
                "keyspace_misses:%llu\r\npubsub_channels:%zu\r\npubsub_patterns:%zu\r\n"
                "total_error_replies:%llu\r\n",
             (unsigned long long)st->connections_received,
             (unsigned long long)st->commands_processed,
             (unsigned long long)st->net_input_bytes, (unsigned long long)st->net_output_bytes,
             (unsigned long long)st->rejected_connections, (unsigned long long)ss->expired,
             (unsigned long long)ss->evicted, (unsigned long long)ss->hits,
             (unsigned long long)ss->misses, pubsub_channel_count(srv->pubsub),
             pubsub_pattern_count(srv->pubsub), (unsigned long long)st->errors_replied);
}

static void info_replication(struct server *srv, struct strbuf *b)
{
    (void)srv;
    strbuf_printf(b, "role:master\r\nconnected_slaves:0\r\nmaster_failover_state:no-failover\r\n"
                "master_repl_offset:0\r\nsecond_repl_offset:-1\r\nrepl_backlog_active:0\r\n");
}

static void info_cpu(struct server *srv, struct strbuf *b)
{
    struct rusage self, children, thread;
    (void)srv;
    getrusage(RUSAGE_SELF, &self);
    getrusage(RUSAGE_CHILDREN, &children);
    getrusage(RUSAGE_THREAD, &thread);
    strbuf_printf(b, "used_cpu_sys:%ld.%06ld\r\nused_cpu_user:%ld.%06ld\r\n"
                "used_cpu_sys_children:%ld.%06ld\r\nused_cpu_user_children:%ld.%06ld\r\n"
                "used_cpu_sys_main_thread:%ld.%06ld\r\nused_cpu_user_main_thread:%ld.%06ld\r\n",
             (long)self.ru_stime.tv_sec, (long)self.ru_stime.tv_usec,
             (long)self.ru_utime.tv_sec, (long)self.ru_utime.tv_usec,
             (long)children.ru_stime.tv_sec, (long)children.ru_stime.tv_usec,
             (long)children.ru_utime.tv_sec, (long)children.ru_utime.tv_usec,
             (long)thread.ru_stime.tv_sec, (long)thread.ru_stime.tv_usec,
             (long)thread.ru_utime.tv_sec, (long)thread.ru_utime.tv_usec);
}

static void info_modules(struct server *srv, struct strbuf *b)
{
    (void)srv;
    (void)b; /* no modules: the section is its title only, as in Redis */
}

static void info_cluster(struct server *srv, struct strbuf *b)
{
    (void)srv;
    strbuf_printf(b, "cluster_enabled:0\r\n");
}

static void info_keyspace(struct server *srv, struct strbuf *b)
{
    int dbs = store_databases(srv->store);
    for (int db = 0; db < dbs; db++) {
        size_t keys = store_count(srv->store, db);
        if (keys)
            strbuf_printf(b, "db%d:keys=%zu,expires=%zu,avg_ttl=0\r\n", db, keys,
                     store_volatile_count(srv->store, db));
    }
}

/* Redis 7.0's order, then ours. Commandstats and Latencystats (cmdstats.c) are in "all" /
 * "everything" and by name, not in the default; Errorstats (errorstats.c) is in all three. */
static const struct info_section {
    const char *name;  /* as INFO takes it (case-insensitive) */
    const char *title; /* the "# Title" line */
    void (*fn)(struct server *srv, struct strbuf *b);
    bool in_default;
} info_sections[] = {
    { "server", "Server", info_server, true },
    { "clients", "Clients", info_clients, true },
    { "memory", "Memory", info_memory, true },
    { "persistence", "Persistence", info_persistence, true },
    { "stats", "Stats", info_stats, true },
    { "replication", "Replication", info_replication, true },
    { "cpu", "CPU", info_cpu, true },
    { "modules", "Modules", info_modules, true },
    { "commandstats", "Commandstats", cmdstats_info_commandstats, false },
    { "errorstats", "Errorstats", errorstats_info, true },
    { "latencystats", "Latencystats", cmdstats_info_latencystats, false },
    { "cluster", "Cluster", info_cluster, true },
    { "keyspace", "Keyspace", info_keyspace, true },
    { "upstream", "Upstream", nearcache_info_upstream, true },
    { "cache", "Cache", nearcache_info_cache, true },
};
#define INFO_NSECTIONS (sizeof(info_sections) / sizeof(info_sections[0]))

static unsigned info_mask(bool default_only)
{
    unsigned mask = 0;
    for (size_t i = 0; i < INFO_NSECTIONS; i++)
        if (!default_only || info_sections[i].in_default)
            mask |= 1u << i;
    return mask;
}

/* Which sections the arguments ask for: none = default; unknown names select nothing. */
static unsigned info_select(const struct client *c)
{
    if (c->argc == 1)
        return info_mask(true);
    unsigned mask = 0;
    for (size_t a = 1; a < c->argc; a++) {
        const struct resp_arg *arg = &c->argv[a];
        if (arg_is(arg, "all") || arg_is(arg, "everything"))
            mask |= info_mask(false);
        else if (arg_is(arg, "default"))
            mask |= info_mask(true);
        for (size_t i = 0; i < INFO_NSECTIONS; i++)
            if (arg_is(arg, info_sections[i].name))
                mask |= 1u << i;
    }
    return mask;
}

void cmd_info(struct client *c)
{
    unsigned mask = info_select(c);
    struct strbuf b = { NULL, 0, 0 };
    for (size_t i = 0; i < INFO_NSECTIONS; i++) {
        if (!(mask & (1u << i)))
            continue;
        if (b.len)
            strbuf_printf(&b, "\r\n");
        strbuf_printf(&b, "# %s\r\n", info_sections[i].title);
        info_sections[i].fn(c->srv, &b);
    }
    reply_verbatim(c, b.data ? b.data : "", b.len);
    strbuf_free(&b);
}
