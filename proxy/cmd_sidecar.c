/* SIDECAR: the commands that are the sidecar's own, never forwarded.
 *   SIDECAR STATS          the near-cache's and the store's figures, as field/value pairs
 *   SIDECAR FLUSH          empties the local store (the near-cache); never the upstream
 *   SIDECAR KEYS pattern   the keys the local store holds (database 0 in near-cache mode)
 *   SIDECAR RELOAD         re-reads the configuration file (as SIGHUP) */
#include "cache/store.h"
#include "proxy/client.h"
#include "proxy/command.h"
#include "proxy/nearcache.h"
#include "proxy/reload.h"
#include "proxy/reply.h"
#include "proxy/server.h"

#include <stdio.h>

static void stat_pair(struct client *c, const char *name, unsigned long long v)
{
    reply_bulk_cstr(c, name);
    reply_int(c, (long long)v);
}

void cmd_sidecar_stats(struct client *c)
{
    struct server *srv = c->srv;
    const struct store_stats *ss = store_get_stats(srv->store);
    const struct nearcache *nc = srv->nc;
    static const struct nearcache_stats none;
    const struct nearcache_stats *ns = nc ? &nc->stats : &none;
    reply_map(c, 14);
    stat_pair(c, "keys", store_count(srv->store, -1));
    stat_pair(c, "used_memory", store_used_bytes(srv->store));
    stat_pair(c, "max_memory", store_max_memory(srv->store));
    stat_pair(c, "evicted_keys", ss->evicted);
    stat_pair(c, "expired_keys", ss->expired);
    stat_pair(c, "connected_clients", srv->nclients);
    stat_pair(c, "cache_hits", ns->hits);
    stat_pair(c, "cache_misses", ns->misses);
    stat_pair(c, "cache_fills", ns->fills);
    stat_pair(c, "cache_invalidations", ns->invalidations);
    stat_pair(c, "cache_flushes", ns->flushes);
    stat_pair(c, "cache_singleflight_joins", ns->singleflight_joins);
    stat_pair(c, "cache_stale_serves", ns->stale_serves);
    reply_bulk_cstr(c, "upstream_state");
    reply_bulk_cstr(c, nc ? nearcache_state_name(nc) : "standalone");
}

void cmd_sidecar_flush(struct client *c)
{
    struct server *srv = c->srv;
    if (srv->nc)
        nearcache_flush(srv->nc, "SIDECAR FLUSH");
    else
        store_flush(srv->store, -1);
    reply_ok(c);
}

void cmd_sidecar_keys(struct client *c)
{
    keys_reply_matching(c, c->srv->nc ? 0 : c->db, &c->argv[2]);
}

void cmd_sidecar_reload(struct client *c)
{
    char err[CONFIG_ERR_LEN];
    if (server_reload(c->srv, err, sizeof(err)) < 0) {
        reply_errorf(c, "ERR reload failed: %s", err);
        return;
    }
    reply_ok(c);
}

void cmd_sidecar_help(struct client *c)
{
    static const char *const lines[] = {
        "SIDECAR <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "STATS",
        "    Return the local store's and the near-cache's figures.",
        "FLUSH",
        "    Empty the local store (the near-cache). The upstream is never touched.",
        "KEYS <pattern>",
        "    Return the keys the local store holds that match the pattern.",
        "RELOAD",
        "    Re-read the configuration file and apply what can change at run time.",
        "HELP",
        "    Print this help.",
    };
    reply_help(c, lines, sizeof(lines) / sizeof(lines[0]));
}
