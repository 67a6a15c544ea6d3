/* The server root: the one mutable object of the process. It owns the event loop, the
 * configuration, the logger, the store, the listeners, every client, the command index, the
 * WATCH, pub/sub and blocked-client registries and the counters INFO reports. Everything else
 * receives a struct server * explicitly. */
#ifndef PROXY_SERVER_H
#define PROXY_SERVER_H

#include "conf/config.h"
#include "conf/log.h"
#include "proxy/command.h"
#include "proxy/memtrim.h"
#include "proxy/strbuf.h"

#include <ev.h>
#include <stdbool.h>
#include <stdint.h>

struct store;
struct client;
struct multi_watches;
struct pubsub;
struct blocking;
struct nearcache;
struct reply_slot;
struct fwd;
struct cmdstats;
struct admin_http;
struct slowlog;
struct errorstats;
struct acl;

#define SERVER_VERSION "7.0.15"      /* the Redis version whose behaviour we follow */
#define SIDECAR_VERSION "0.1.0"
#define SERVER_MAX_LISTENERS (CONFIG_MAX_LISTEN + 1)
#define SERVER_ACCEPTS_PER_EVENT 1000
/* How long accepting pauses when the process is out of file descriptors. */
#define SERVER_ACCEPT_PAUSE_S 0.1
/* Output a client may queue before we stop reading its requests (backpressure). */
#define SERVER_OUTPUT_SOFT_LIMIT (1024 * 1024)
/* Active expiry: entries looked at per cron tick, and the time share of a tick it may use. */
#define SERVER_EXPIRE_VISITS 1000
#define SERVER_EXPIRE_BUDGET_PCT 25
/* Rounds of the flush path per loop iteration (serve, resume, write). */
#define SERVER_FLUSH_PASSES 16
/* Reply slots and forwards kept for reuse (no allocation per forwarded request). */
#define SERVER_FREE_SLOTS_MAX 4096
/* After SIGTERM, how long clients that do not read may hold the exit back. */
#define SERVER_SHUTDOWN_GRACE_MS 5000

struct listener {
    struct server *srv;
    ev_io io;
    ev_timer pause;       /* accepting paused after EMFILE/ENFILE (the socket stays readable) */
    int fd;
    bool unix_socket;
    char addr[128];
};

struct server_stats {
    uint64_t connections_received;
    uint64_t rejected_connections;
    uint64_t commands_processed;
    uint64_t net_input_bytes, net_output_bytes;
    uint64_t errors_replied;
    uint64_t upstream_waits;         /* clients paused for a congested link (upstream_wait.c) */
};

struct server {
    struct ev_loop *loop;
    struct config cfg;
    char *config_path;               /* absolute path of the ini file, NULL when none */
    int port_override;               /* --port, re-applied by a reload; 0 = none */
    struct logger log;
    struct store *store;
    struct command_index commands;
    struct acl *acl;                 /* users and permissions (acl.c); never NULL once running */
    struct multi_watches *watches;   /* WATCHed keys -> their clients (multi.c) */
    struct pubsub *pubsub;           /* channels and patterns -> subscribers (pubsub.c) */
    struct blocking *blocking;       /* blocked clients by (db, key), ready keys (blocking.c) */
    size_t blocked_clients;          /* clients with CLIENT_BLOCKED (INFO blocked_clients) */
    size_t blocked_clients_timeout;  /* of them, with a timeout (clients_in_timeout_table) */
    struct strbuf qbuf_spare;        /* the query buffer lent to the client being read when it
                                        has none of its own (client.c: client_read_cb) */
    struct nearcache *nc;            /* the upstream and near-cache; NULL when standalone */
    size_t pinned_clients;           /* clients with a private upstream connection */
    struct client *upwait_head;      /* clients waiting for a congested link (upstream_wait.c) */
    struct client *upwait_ready;     /* ... and those whose link drained, to resume */
    /* Operations (issue 5): per-command counters and latencies (cmdstats.c), the admin HTTP
     * port ([admin] listen; NULL when off; admin_http.c). */
    struct cmdstats *cmdstats;
    struct admin_http *admin;
    /* SLOWLOG (slowlog.c), INFO errorstats (errorstats.c) and the MONITOR clients (monitor.c:
     * dispatch feeds them only while nmonitors > 0). */
    struct slowlog *slowlog;
    struct errorstats *errorstats;
    struct client **monitors;
    size_t nmonitors, monitors_cap;

    struct listener listeners[SERVER_MAX_LISTENERS];
    size_t nlisteners;

    struct client *clients;          /* all connected clients (doubly linked) */
    size_t nclients;
    struct client *pending_writes;   /* clients with output to flush (singly linked) */
    struct reply_slot *free_slots;   /* recycled reply slots (client.c), at most
                                        SERVER_FREE_SLOTS_MAX */
    size_t nfree_slots;
    struct fwd *free_fwds;           /* recycled forwards (forward.c), as many at most */
    size_t nfree_fwds;
    struct client *closing;          /* first of the clients to free at the flush (via flag) */
    uint64_t next_client_id;

    ev_prepare flush_watcher;
    ev_idle more_work;               /* keeps the loop from sleeping while the flush path
                                        left work queued */
    ev_timer cron;
    ev_signal sigterm, sigint;
    ev_signal sighup, sigusr1;       /* reload the ini file; reopen the log file */
    bool shutting_down;
    int64_t shutdown_ms;

    int64_t start_ms;
    char run_id[41];
    struct server_stats stats;
    struct memtrim memtrim;          /* heap trimming (memtrim.c, from the cron) */
};

/* Milliseconds since the epoch at the start of this loop iteration (one reading per iteration). */
static inline int64_t server_now_ms(const struct server *srv)
{
    return (int64_t)(ev_now(srv->loop) * 1000.0);
}

/* Whether [upstream] names an upstream (host or unixsocket): near-cache mode. */
bool server_has_upstream(const struct server *srv);
/* The process's resident set size in bytes (/proc/self/statm), 0 when unreadable: INFO memory
 * and /metrics. */
uint64_t server_rss_bytes(void);
/* Bytes held by client buffers: query buffers, output buffers, queued reply slots. */
uint64_t server_client_bytes(const struct server *srv);
/* INFO's used_memory: the store's accounted bytes and the client buffers. */
uint64_t server_used_memory(const struct server *srv);

/* Sets up the store, listeners, signals and timers from srv->cfg. -1 (logged) on failure. */
int server_init(struct server *srv);
/* Runs the loop until SIGTERM/SIGINT; returns the exit status. */
int server_run(struct server *srv);
void server_free(struct server *srv);

/* Tells the store about every aggregate value type (command_families.c). */
void server_register_types(struct store *s);

/* Pushes the run-time settable values of srv->cfg into the running parts (after CONFIG SET):
 * the users too (requirepass is the default user's password). */
void server_apply_config(struct server *srv);

/* The checks of cfg that need the command table ([users] rules, [rename_commands]): main's
 * --check-config and server_init run them. -1 with the reason in err. */
int server_check_config(const struct config *cfg, char *err, size_t errlen);

#endif
