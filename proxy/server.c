/* The server root's life: set-up from the config, the loop's watchers (flush before sleeping,
 * cron, signals), graceful shutdown, tear-down. See server.h. */
#include "proxy/server.h"

#include "cache/store.h"
#include "proxy/acl.h"
#include "conf/xmalloc.h"
#include "proxy/admin_http.h"
#include "proxy/blocking.h"
#include "proxy/client.h"
#include "proxy/forward.h"
#include "proxy/cmdstats.h"
#include "proxy/errorstats.h"
#include "proxy/listener.h"
#include "proxy/monitor.h"
#include "proxy/multi.h"
#include "proxy/nearcache.h"
#include "proxy/pubsub.h"
#include "proxy/reload.h"
#include "proxy/slowlog.h"
#include "proxy/upstream_wait.h"

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

static void random_bytes(void *buf, size_t n)
{
    if (getrandom(buf, n, 0) == (ssize_t)n)
        return;
    /* No entropy syscall: fall back to time and pid, still distinct per process. */
    uint64_t x = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
    unsigned char *p = buf;
    for (size_t i = 0; i < n; i++) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        p[i] = (unsigned char)(x >> 56);
    }
}

/* ---- the flush path: before every sleep ---- */

static void server_more_work_cb(struct ev_loop *loop, ev_idle *w, int revents)
{
    (void)revents;
    ev_idle_stop(loop, w); /* the prepare watcher runs again before the next poll */
}

static void server_flush_cb(struct ev_loop *loop, ev_prepare *w, int revents)
{
    struct server *srv = w->data;
    (void)loop;
    (void)revents;
    /* Each pass serves the ready keys of blocked clients, runs the pending input of the clients
     * answered since, then writes. Flushing may run buffered requests of a resumed client,
     * which queues more output: repeat until nothing is left (each pass writes until the
     * sockets are full). */
    for (int pass = 0; pass < SERVER_FLUSH_PASSES; pass++) {
        blocking_serve_ready(srv);
        blocking_resume_clients(srv);
        upwait_resume(srv);
        if (!srv->pending_writes)
            break;
        struct client *list = srv->pending_writes;
        srv->pending_writes = NULL;
        while (list) {
            struct client *c = list;
            list = c->pending_next;
            c->flags &= ~CLIENT_PENDING_WRITE;
            client_flush(c);
        }
    }
    if (srv->pending_writes || blocking_work_pending(srv) || upwait_pending(srv))
        ev_idle_start(srv->loop, &srv->more_work);
    if (srv->shutting_down) {
        bool busy = false;
        for (struct client *c = srv->clients; c; c = c->next)
            if (c->out.len > c->out_sent || c->slot_head)
                busy = true;
        if (!busy)
            ev_break(srv->loop, EVBREAK_ALL);
    }
}

/* ---- cron ---- */

static void server_expire_keys(struct server *srv, int64_t now_ms)
{
    /* Time-budgeted: a share of the tick, in rounds of a fixed number of visits; go on while
     * a round finds many expired keys (as Redis's active expire cycle). */
    double budget = (1.0 / (double)srv->cfg.hz) * SERVER_EXPIRE_BUDGET_PCT / 100.0;
    double start = ev_time();
    for (int round = 0; round < 64; round++) {
        size_t visited = 0;
        size_t expired = store_expire_cycle(srv->store, now_ms, SERVER_EXPIRE_VISITS, &visited);
        if (visited == 0 || expired * 4 < visited || ev_time() - start > budget)
            break;
    }
}

static void server_close_idle_clients(struct server *srv, int64_t now_ms)
{
    if (srv->cfg.timeout <= 0)
        return;
    int64_t limit = (int64_t)srv->cfg.timeout * 1000;
    for (struct client *c = srv->clients; c; c = c->next) {
        /* Subscribers and monitors only listen and blocked clients wait: Redis never times
         * them out. Nor a client waiting for the upstream (a BLPOP forwarded to it, say). */
        if (now_ms - c->last_active_ms > limit && !c->fwd_head &&
            !(c->flags & (CLIENT_CLOSE_ASAP | CLIENT_PUBSUB | CLIENT_BLOCKED |
                          CLIENT_MONITOR))) {
            log_write(&srv->log, LOG_VERBOSE, "Closing idle client id=%llu",
                      (unsigned long long)c->id);
            client_close(c);
        }
    }
}

static void server_cron_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct server *srv = w->data;
    (void)loop;
    (void)revents;
    int64_t now = server_now_ms(srv);
    if (srv->shutting_down && now - srv->shutdown_ms > SERVER_SHUTDOWN_GRACE_MS) {
        log_warn(&srv->log, "Shutdown grace period over, exiting with output unsent");
        ev_break(srv->loop, EVBREAK_ALL);
        return;
    }
    server_expire_keys(srv, now);
    if (store_over_budget(srv->store))
        store_evict(srv->store, now);
    server_close_idle_clients(srv, now);
    memtrim_cron(srv, now);
}

/* ---- signals ---- */

static void server_signal_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
    struct server *srv = w->data;
    (void)loop;
    (void)revents;
    if (srv->shutting_down)
        return;
    log_warn(&srv->log, "Received %s, scheduling shutdown...",
             w->signum == SIGINT ? "SIGINT" : "SIGTERM");
    srv->shutting_down = true;
    srv->shutdown_ms = server_now_ms(srv);
    listener_close_all(srv);
    /* Requests already read are answered; then the flush path breaks the loop. */
    for (struct client *c = srv->clients; c; c = c->next) {
        ev_io_stop(srv->loop, &c->rio);
        client_want_write(c);
    }
}

/* SIGHUP: re-read the ini file (an invalid one changes nothing; reload.c logs why). */
static void server_sighup_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
    struct server *srv = w->data;
    (void)loop;
    (void)revents;
    char err[CONFIG_ERR_LEN];
    log_info(&srv->log, "Received SIGHUP, reloading the configuration");
    server_reload(srv, err, sizeof(err));
}

/* SIGUSR1: reopen the log file (logrotate moved it). */
static void server_sigusr1_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
    struct server *srv = w->data;
    (void)loop;
    (void)revents;
    if (log_reopen(&srv->log) < 0)
        log_warn(&srv->log, "Received SIGUSR1 but cannot reopen the log file: %s",
                 srv->cfg.log_file);
    else
        log_info(&srv->log, "Received SIGUSR1, log file reopened");
}

/* ---- life cycle ---- */

void server_apply_config(struct server *srv)
{
    char err[CONFIG_ERR_LEN];
    srv->log.level = srv->cfg.log_level;
    if (srv->acl && acl_server_rebuild(srv, err, sizeof(err)) < 0) /* kept: the users are checked */
        log_warn(&srv->log, "users not rebuilt: %s", err);         /* before they reach cfg */
    store_set_max_memory(srv->store, (uint64_t)srv->cfg.max_memory);
    store_set_policy(srv->store, srv->cfg.maxmemory_policy, (int)srv->cfg.maxmemory_samples);
    if (store_over_budget(srv->store)) /* a lower limit takes effect now, not at the next write */
        store_evict(srv->store, server_now_ms(srv));
    double period = 1.0 / (double)srv->cfg.hz;
    if (srv->cron.repeat != period) {
        srv->cron.repeat = period;
        ev_timer_again(srv->loop, &srv->cron);
    }
}

static int server_open_log(struct server *srv)
{
    if (log_open(&srv->log, srv->cfg.log_level, srv->cfg.log_format, srv->cfg.log_file) < 0) {
        fprintf(stderr, "sidecar: cannot open log file %s\n", srv->cfg.log_file);
        return -1;
    }
    return 0;
}

int server_check_config(const struct config *cfg, char *err, size_t errlen)
{
    struct command_index *idx = xcalloc(1, sizeof(*idx)); /* large (16 KB): not on the stack */
    const struct config_upstream *u = &cfg->upstream;
    bool forwarding = (u->host && u->host[0]) || (u->unixsocket && u->unixsocket[0]);
    command_index_build(idx);
    int rc = -1;
    if (command_index_rename(idx, cfg->renames, cfg->nrenames, forwarding, err, errlen) == 0) {
        struct acl *acl = acl_build(cfg, idx, err, errlen);
        if (acl) {
            acl_free(acl);
            rc = 0;
        }
    }
    free(idx);
    return rc;
}

uint64_t server_rss_bytes(void)
{
    unsigned long long size = 0, resident = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f)
        return 0;
    if (fscanf(f, "%llu %llu", &size, &resident) != 2)
        resident = 0;
    fclose(f);
    long page = sysconf(_SC_PAGESIZE);
    return (uint64_t)resident * (uint64_t)(page > 0 ? page : 4096);
}

uint64_t server_client_bytes(const struct server *srv)
{
    uint64_t n = 0;
    for (const struct client *c = srv->clients; c; c = c->next) {
        n += client_input_alloc(c) + c->out.cap;
        for (const struct reply_slot *s = c->slot_head; s; s = s->next)
            n += s->buf.cap;
    }
    return n;
}

uint64_t server_used_memory(const struct server *srv)
{
    return store_used_bytes(srv->store) + server_client_bytes(srv);
}

bool server_has_upstream(const struct server *srv)
{
    const struct config_upstream *u = &srv->cfg.upstream;
    return (u->host && u->host[0]) || (u->unixsocket && u->unixsocket[0]);
}

int server_init(struct server *srv)
{
    if (server_open_log(srv) < 0)
        return -1;
    signal(SIGPIPE, SIG_IGN);
    srv->loop = ev_default_loop(EVFLAG_AUTO);
    srv->start_ms = (int64_t)(ev_time() * 1000.0);
    unsigned char id[20];
    random_bytes(id, sizeof(id));
    for (size_t i = 0; i < sizeof(id); i++)
        snprintf(srv->run_id + 2 * i, 3, "%02x", id[i]);

    struct store_options so = {
        .max_memory = (uint64_t)srv->cfg.max_memory,
        .policy = srv->cfg.maxmemory_policy,
        .samples = (int)srv->cfg.maxmemory_samples,
        .databases = (int)srv->cfg.databases,
    };
    random_bytes(so.seed, sizeof(so.seed));
    srv->store = store_create(&so);
    server_register_types(srv->store);
    command_index_build(&srv->commands);
    char err[CONFIG_ERR_LEN];
    if (command_index_rename(&srv->commands, srv->cfg.renames, srv->cfg.nrenames,
                             server_has_upstream(srv), err, sizeof(err)) < 0 ||
        !(srv->acl = acl_build(&srv->cfg, &srv->commands, err, sizeof(err)))) {
        log_warn(&srv->log, "%s", err);
        return -1;
    }
    srv->cmdstats = cmdstats_create(&srv->commands); /* issue 5: INFO commandstats, /metrics */
    srv->slowlog = slowlog_create();                 /* issue 5: SLOWLOG */
    srv->errorstats = errorstats_create();           /* issue 5: INFO errorstats */
    uint8_t seed[16];
    random_bytes(seed, sizeof(seed));
    srv->watches = multi_watches_create(srv->store, seed);
    random_bytes(seed, sizeof(seed));
    srv->pubsub = pubsub_create(seed);
    random_bytes(seed, sizeof(seed));
    srv->blocking = blocking_create(seed);

    if (server_has_upstream(srv))
        srv->nc = nearcache_create(srv);
    if (listener_open_all(srv) < 0)
        return -1;
    if (admin_http_open(srv) < 0) /* issue 5: [admin] listen ("" = off) */
        return -1;

    ev_prepare_init(&srv->flush_watcher, server_flush_cb);
    srv->flush_watcher.data = srv;
    ev_prepare_start(srv->loop, &srv->flush_watcher);
    ev_idle_init(&srv->more_work, server_more_work_cb);
    ev_timer_init(&srv->cron, server_cron_cb, 0.0, 1.0 / (double)srv->cfg.hz);
    srv->cron.data = srv;
    ev_timer_again(srv->loop, &srv->cron);
    ev_signal_init(&srv->sigterm, server_signal_cb, SIGTERM);
    srv->sigterm.data = srv;
    ev_signal_start(srv->loop, &srv->sigterm);
    ev_signal_init(&srv->sighup, server_sighup_cb, SIGHUP);
    srv->sighup.data = srv;
    ev_signal_start(srv->loop, &srv->sighup);
    ev_signal_init(&srv->sigusr1, server_sigusr1_cb, SIGUSR1);
    srv->sigusr1.data = srv;
    ev_signal_start(srv->loop, &srv->sigusr1);
    ev_signal_init(&srv->sigint, server_signal_cb, SIGINT);
    srv->sigint.data = srv;
    ev_signal_start(srv->loop, &srv->sigint);
    if (srv->nc)
        log_info(&srv->log, "sidecar %s started, pid=%d, near-cache in front of %s, "
                 "invalidation=%s, max_memory=%lld, policy=%s", SIDECAR_VERSION, (int)getpid(),
                 upstream_link_address(nearcache_link(srv->nc, 0)),
                 coherence_mode_name(srv->nc),
                 srv->cfg.max_memory, config_policy_name(srv->cfg.maxmemory_policy));
    else
        log_info(&srv->log, "sidecar %s started, pid=%d, standalone, max_memory=%lld, policy=%s",
                 SIDECAR_VERSION, (int)getpid(), srv->cfg.max_memory,
                 config_policy_name(srv->cfg.maxmemory_policy));
    return 0;
}

int server_run(struct server *srv)
{
    ev_run(srv->loop, 0);
    log_warn(&srv->log, "sidecar is now ready to exit, bye bye...");
    return 0;
}

void server_free(struct server *srv)
{
    while (srv->clients)
        client_free(srv->clients);
    srv->pending_writes = NULL;
    listener_close_all(srv);
    admin_http_close(srv); /* issue 5 */
    nearcache_destroy(srv->nc); /* after the clients: their forwards are cancelled */
    srv->nc = NULL;
    fwd_pool_free(srv); /* after the near-cache: its guards' waiters come back to the pool */
    strbuf_free(&srv->qbuf_spare);
    cmdstats_destroy(srv->cmdstats); /* issue 5: after the near-cache (its last replies) */
    srv->cmdstats = NULL;
    slowlog_destroy(srv->slowlog);
    srv->slowlog = NULL;
    errorstats_destroy(srv->errorstats);
    srv->errorstats = NULL;
    monitor_free_all(srv); /* after the clients: they left the array when freed */
    if (srv->loop) {
        ev_prepare_stop(srv->loop, &srv->flush_watcher);
        ev_idle_stop(srv->loop, &srv->more_work);
        ev_timer_stop(srv->loop, &srv->cron);
        ev_signal_stop(srv->loop, &srv->sigterm);
        ev_signal_stop(srv->loop, &srv->sighup);
        ev_signal_stop(srv->loop, &srv->sigusr1);
        ev_signal_stop(srv->loop, &srv->sigint);
        ev_loop_destroy(srv->loop);
        srv->loop = NULL;
    }
    multi_watches_destroy(srv->watches); /* after the clients: they unwatch when freed */
    srv->watches = NULL;
    pubsub_destroy(srv->pubsub);
    srv->pubsub = NULL;
    blocking_destroy(srv->blocking); /* after the clients: they leave its queues when freed */
    srv->blocking = NULL;
    store_destroy(srv->store);
    srv->store = NULL;
    acl_free(srv->acl); /* after the clients: they point at its users */
    srv->acl = NULL;
    log_close(&srv->log);
    config_free(&srv->cfg);
    free(srv->config_path);
}
