/* The near-cache (DESIGN.md sections 3 and 5): what the sidecar keeps of the upstream's
 * replies, when it may answer from them, and how it stays coherent.
 *
 * Entries: a key of local database 0 holds a reply set (cache/replyset.h): the RESP2 replies
 * of the cacheable reads seen for it, by request signature. Only database 0 is cached: a
 * client that selects another database is pinned to a private connection (pinned.c).
 *
 * Fills and guards: a cacheable miss sends the read and then `PTTL key` on the client's data
 * link; the reply goes to every client waiting for it (single flight: concurrent misses of the
 * same read on the same link share one request) and is stored with a TTL of
 * min(max_ttl_ms, PTTL) when the PTTL reply arrives, unless the fill was poisoned meanwhile:
 * an invalidation of the key, a local write of the key, a flush, or a change of the coherence
 * epoch. A guard is indexed by (link, key) while it can be poisoned; a poisoned guard leaves
 * the index (new readers start a new fill) and lives on only until its replies arrive.
 * Write-through uses the same guards: the value a SET-family write sends is stored when the
 * write succeeded and the PTTL that follows it (which also makes Redis track the key for us)
 * arrives unpoisoned.
 *
 * Coherence (coherence.c): an epoch counts every event after which earlier fills cannot be
 * trusted (subscriber lost or re-connected with a new id, a data link lost): each bump flushes
 * the near-cache and re-arms tracking on every data link. A fill is stored only when the epoch
 * it started in is current and its link confirmed tracking in that epoch (the confirmation is
 * the reply to CLIENT TRACKING, which precedes the fill's replies on the ordered link). In ttl
 * mode nothing is tracked: the epoch only moves on flushes, links are always armed.
 *
 * Owns: the data link pool, the invalidation subscriber, the guard index and every guard,
 * the counters of INFO # Cache. Borrowed: the server root (store, config, loop, log). */
#ifndef PROXY_NEARCACHE_H
#define PROXY_NEARCACHE_H

#include "upstream/link.h"
#include "upstream/pool.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct server;
struct client;
struct fwd;

struct nearcache_stats {
    uint64_t hits, misses;           /* cacheable reads answered here / forwarded */
    uint64_t fills;                  /* replies stored */
    uint64_t fills_discarded;        /* replies not stored: an invalidation overtook them */
    uint64_t invalidation_messages;  /* messages on __redis__:invalidate */
    uint64_t invalidations;          /* keys dropped because of them */
    uint64_t flushes;                /* whole near-cache dropped (null payload, link lost...) */
    uint64_t singleflight_joins;     /* misses that joined a fill in flight */
    uint64_t stale_serves;           /* expired entries served while the upstream was down */
    uint64_t write_throughs;         /* values stored after a successful write */
};

/* Per data link: the coherence epoch it confirmed tracking in (0 = none). */
struct nearcache_link {
    struct upstream_link *link;
    uint64_t sent_epoch;             /* CLIENT TRACKING sent for this epoch */
    uint64_t armed_epoch;            /* ... and answered +OK */
};

#define NEARCACHE_PREFIXES_MAX 64

struct nearcache {
    struct server *srv;
    struct upstream_pool *pool;
    size_t nlinks;
    struct nearcache_link links[UPSTREAM_POOL_LINKS_MAX];
    struct upstream_link *subscriber; /* tracking/bcast: the invalidation subscriber */
    struct upstream_link *relay;      /* pub/sub relay (pubsub_relay.c), from the first SUBSCRIBE */
    long long subscriber_id;          /* its CLIENT ID while up, else 0 */
    uint64_t epoch;                   /* >= 1 */
    struct nc_guard **index;          /* guards that can be poisoned, by key (nearcache.c) */
    size_t index_size;                /* buckets: 0 or a power of two */
    size_t nindexed;
    struct nc_guard *free_guards;     /* pooled guards (through hnext), nfree_guards of them */
    size_t nfree_guards;
    struct nc_guard *all;             /* every guard alive (doubly linked) */
    struct coherence_arm *arms;       /* CLIENT TRACKING requests in flight */
    struct nc_guard_group *groups;    /* grouped write-through reads in flight */
    char *prefixes[NEARCACHE_PREFIXES_MAX]; /* bcast: the keys that may be cached */
    size_t prefix_lens[NEARCACHE_PREFIXES_MAX];
    size_t nprefixes;
    struct nearcache_stats stats;
};

/* Creates the near-cache for srv->cfg's upstream: the data links and (tracking, bcast) the
 * subscriber start connecting at once. */
struct nearcache *nearcache_create(struct server *srv);
/* Frees everything; guards still waiting are freed with their waiters (shutdown: clients are
 * already gone). Not from inside an upstream callback. NULL is a no-op. */
void nearcache_destroy(struct nearcache *nc);

/* The data link of client c (stable for c's life, so its requests stay ordered). */
size_t nearcache_link_index(const struct nearcache *nc, const struct client *c);
struct upstream_link *nearcache_link(const struct nearcache *nc, size_t idx);
/* Bytes waiting in the data links' output buffers (INFO upstream_output_bytes). */
size_t nearcache_output_bytes(const struct nearcache *nc);

/* A cacheable read of key with request signature sig: answers it from the near-cache when
 * fresh (or stale within serve_stale_ms while the link is down) and returns true; false on a
 * miss (nothing written). */
bool nearcache_serve(struct nearcache *nc, struct client *c, const char *key, size_t klen,
                     const char *sig, size_t siglen);
/* The bytes of a fresh entry (for MGET's merge), or NULL. Counts a hit or a miss. */
const char *nearcache_peek(struct nearcache *nc, struct client *c, const char *key, size_t klen,
                           const char *sig, size_t siglen, size_t *len);
/* A cacheable miss: joins a fill in flight or starts one (the client's own request, then PTTL),
 * or forwards the read plainly when the key may not be cached now. */
void nearcache_fill(struct nearcache *nc, struct client *c, const char *key, size_t klen,
                    const char *sig, size_t siglen);
/* Whether key may ever be cached: under a bcast prefix in bcast mode, any key otherwise. */
bool nearcache_may_hold(const struct nearcache *nc, const char *key, size_t klen);
/* Whether key may be cached on link idx now (armed, and under a bcast prefix in bcast mode). */
bool nearcache_can_fill(const struct nearcache *nc, size_t idx, const char *key, size_t klen);

/* A guard for key on link idx whose reply comes from elsewhere (an MGET element): the PTTL
 * is sent now; nearcache_guard_set_reply() gives the bytes to store. NULL
 * when the key may not be cached now. */
struct nc_guard *nearcache_guard_external(struct nearcache *nc, size_t idx, const char *key,
                                          size_t klen, const char *sig, size_t siglen);
/* Write-through, sent right after the write on the same link: the guard reads the key back
 * (GET, then PTTL) and stores what that read returns, not the value the write sent. Our own
 * write untracked the key (NOLOOP), so a write of someone else that the upstream runs between
 * ours and the read would never be invalidated; the read returns that value instead and makes
 * the upstream track the key from then on. NULL when the key may not be cached now. */
struct nc_guard *nearcache_guard_reread(struct nearcache *nc, size_t idx, const char *key,
                                        size_t klen, const char *sig, size_t siglen);
/* The same for n keys whose TTL is known to be none (MSET's write-through): one MGET of them
 * all follows, and each key stores its element with max_ttl_ms (nil: nothing). out[i] is key
 * i's guard, or NULL when key i may not be cached now. Returns how many were made. */
size_t nearcache_guard_group(struct nearcache *nc, size_t idx, const char *const *keys,
                             const size_t *klens, size_t n, const char *sig, size_t siglen,
                             struct nc_guard **out);
/* The bytes the guard stores, already confirmed (an MGET element). Called at most once,
 * before the guard's PTTL reply (same ordered link). */
void nearcache_guard_set_reply(struct nc_guard *g, const char *p, size_t n);

/* The key changed (a local write sent or answered, an invalidation): drops it and poisons its
 * fills in flight. */
void nearcache_drop_key(struct nearcache *nc, const char *key, size_t klen);
/* The same for a key whose write-through guard follows (route.c, at the write's send): the
 * entry is withheld instead of deleted (it answers nothing, keeps its allocation for the
 * guard's store; cache/replyset.h) and fills in flight are poisoned. A write-through guard that
 * ends without storing deletes the withheld entry. */
void nearcache_withhold_key(struct nearcache *nc, const char *key, size_t klen);
/* The same as nearcache_drop_key, except that guard keep (a write-through guard of this write)
 * stays valid, and the entry is withheld for it rather than deleted while it can store. */
void nearcache_drop_key_keep(struct nearcache *nc, const char *key, size_t klen,
                             struct nc_guard *keep);
/* Drops every entry and poisons every fill. */
void nearcache_flush(struct nearcache *nc, const char *why);
/* A coherence event (coherence.c): flush, and a new epoch that earlier fills cannot store in. */
void nearcache_new_epoch(struct nearcache *nc, const char *why);

/* "up", "degraded", "down" for INFO. */
const char *nearcache_state_name(const struct nearcache *nc);
/* Whether every data link confirmed tracking in the current epoch (always in ttl mode). */
bool nearcache_armed(const struct nearcache *nc);

/* ---- nearcache_info.c: INFO's # Upstream and # Cache ---- */
struct strbuf;
void nearcache_info_upstream(struct server *srv, struct strbuf *b);
void nearcache_info_cache(struct server *srv, struct strbuf *b);

/* ---- pubsub_relay.c ---- */
void relay_start(struct nearcache *nc);
void relay_stop(struct nearcache *nc);

/* ---- coherence.c ---- */
/* Starts the subscriber (tracking, bcast) and hooks the data links' state changes. */
void coherence_start(struct nearcache *nc);
void coherence_stop(struct nearcache *nc);
/* Sends CLIENT TRACKING for the current epoch on data link idx (when it is up and the
 * subscriber's id is known); in ttl mode marks it armed. */
void coherence_arm_link(struct nearcache *nc, size_t idx);
/* "tracking", "bcast" or "ttl". */
const char *coherence_mode_name(const struct nearcache *nc);
/* "up", "down" or "off" (ttl mode). */
const char *coherence_subscriber_state(const struct nearcache *nc);

#endif
