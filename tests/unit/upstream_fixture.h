/* The fixture the upstream unit suites share (test_upstream.c, test_upstream_failures.c,
 * test_upstream_sub.c). Header-only, of static functions: the Makefile links each
 * tests/unit/test_*.c alone into its own binary, so each suite includes this once (define
 * FIXTURE_NAME first: the temporary directory's prefix).
 *
 * It owns, for one test at a time (setup/teardown, Check's checked fixture): a libev loop with a
 * guard timer, so that no loop iteration sleeps longer than LOOP_ROUND_S; the redis-servers the
 * test started (at most SERVERS_MAX, fork/exec of redis-server with --bind 127.0.0.1 --save ''
 * --appendonly no on a free port found by binding port 0, or on a unix socket in the temporary
 * directory, each killed with the test process by PR_SET_PDEATHSIG); the raw sockets it opened
 * (at most LISTENERS_MAX); and the temporary directory. teardown() stops each server by its pid
 * (SIGCONT then SIGKILL, reaped within EXIT_WAIT_S), never by name, closes the sockets and
 * removes the directory. Only 127.0.0.1 or that directory's sockets are ever contacted. Every
 * wait is bounded: a server's start-up by READY_WAIT_S, run_until() by its timeout and by
 * LOOP_ROUNDS_MAX iterations, sync_cmd() by a 1 s connect and socket timeout.
 *
 * Also here: base_cfg(), link_up() and link_up_new_server() for a link to such a server; the
 * completion recorder (struct rec, rec_cb, roundtrip(), roundtrip_argv(), ASSERT_REPLY); a
 * state-callback counter (struct link_states); and fixture_run_suite() for main(). */
#ifndef TESTS_UNIT_UPSTREAM_FIXTURE_H
#define TESTS_UNIT_UPSTREAM_FIXTURE_H

#include "conf/config.h"
#include "upstream/link.h"
#include "upstream/request.h"
#include "upstream/resp.h"

#include <hiredis/hiredis.h>

#include <arpa/inet.h>
#include <check.h>
#include <ev.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef FIXTURE_NAME
#define FIXTURE_NAME "upstream_fixture"
#endif

#define SERVERS_MAX 4            /* redis-servers one test may run */
#define LISTENERS_MAX 8          /* raw sockets one test may hold */
#define READY_WAIT_S 10.0        /* redis-server start-up bound */
#define EXIT_WAIT_S 5.0          /* redis-server exit bound */
#define LOOP_ROUND_S 0.005       /* the guard timer: no loop iteration sleeps longer */
#define LOOP_ROUNDS_MAX 200000   /* run_until's iteration bound, whatever the deadline */
#define WAIT_S 5.0               /* default bound of one run_until */
#define BACKLOG_FILL_MAX 16      /* connects tried while filling an accept queue */

/* ---- fixture: a loop, the servers and sockets a test started ------------------------------ */

struct server_proc {
    pid_t pid;
    int port;
    char unixsocket[108];
};

struct fixture {
    struct ev_loop *loop;
    ev_timer guard;
    struct server_proc servers[SERVERS_MAX];
    int nservers;
    int fds[LISTENERS_MAX];
    int nfds;
    char dir[64];
};

static struct fixture fx;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_s(double s)
{
    struct timespec ts = { (time_t)s, (long)((s - (double)(time_t)s) * 1e9) };
    nanosleep(&ts, NULL);
}

static void guard_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)w;
    (void)revents;
}

static void setup(void)
{
    memset(&fx, 0, sizeof(fx));
    fx.loop = ev_loop_new(EVFLAG_AUTO);
    ev_timer_init(&fx.guard, guard_cb, LOOP_ROUND_S, LOOP_ROUND_S);
    ev_timer_start(fx.loop, &fx.guard);
    ev_unref(fx.loop); /* the guard alone does not keep ev_run alive */
    snprintf(fx.dir, sizeof(fx.dir), "/tmp/" FIXTURE_NAME ".XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(fx.dir));
    signal(SIGPIPE, SIG_IGN);
}

static void server_stop(struct server_proc *s);

static void teardown(void)
{
    for (int i = 0; i < fx.nservers; i++)
        server_stop(&fx.servers[i]);
    for (int i = 0; i < fx.nfds; i++)
        close(fx.fds[i]);
    ev_ref(fx.loop);
    ev_timer_stop(fx.loop, &fx.guard);
    ev_loop_destroy(fx.loop);
    char path[128];
    for (int i = 0; i < SERVERS_MAX; i++) {
        snprintf(path, sizeof(path), "%s/redis%d.sock", fx.dir, i);
        unlink(path);
    }
    rmdir(fx.dir);
}

/* Runs the loop until pred(arg) holds or timeout_s passes; returns pred(arg). */
static bool run_until(bool (*pred)(void *), void *arg, double timeout_s)
{
    double deadline = now_s() + timeout_s;
    for (int i = 0; i < LOOP_ROUNDS_MAX; i++) {
        if (pred(arg))
            return true;
        if (now_s() > deadline)
            break;
        ev_run(fx.loop, EVRUN_ONCE);
    }
    return pred(arg);
}

static bool never(void *arg)
{
    (void)arg;
    return false;
}

/* Runs the loop for s seconds. */
static void run_for(double s)
{
    run_until(never, NULL, s);
}

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_ge(fd, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    socklen_t len = sizeof(a);
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    close(fd);
    return ntohs(a.sin_port);
}

/* A synchronous command to the server (checks and setup), NULL when it does not answer. */
static redisReply *sync_cmd(const struct server_proc *s, const char *password, const char *fmt,
                            ...)
{
    struct timeval tv = { 1, 0 };
    redisContext *c = s->unixsocket[0] ? redisConnectUnixWithTimeout(s->unixsocket, tv)
                                       : redisConnectWithTimeout("127.0.0.1", s->port, tv);
    if (!c || c->err) {
        if (c)
            redisFree(c);
        return NULL;
    }
    redisSetTimeout(c, tv);
    if (password) {
        redisReply *r = redisCommand(c, "AUTH %s", password);
        if (r)
            freeReplyObject(r);
    }
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(c, fmt, ap);
    va_end(ap);
    redisFree(c);
    return r;
}

static bool server_ready(const struct server_proc *s)
{
    redisReply *r = sync_cmd(s, NULL, "PING");
    if (!r)
        return false;
    freeReplyObject(r); /* +PONG or -NOAUTH: either way it answers */
    return true;
}

/* Starts redis-server on s->port (or a unix socket when unixsock) with extra arguments
 * (NULL-terminated). Returns once it answers. */
static void server_start_on(struct server_proc *s, bool unixsock, const char *const *extra)
{
    const char *argv[48];
    int n = 0;
    char port[16];
    snprintf(port, sizeof(port), "%d", unixsock ? 0 : s->port);
    argv[n++] = "redis-server";
    argv[n++] = "--port";
    argv[n++] = port;
    argv[n++] = "--bind";
    argv[n++] = "127.0.0.1";
    argv[n++] = "--save";
    argv[n++] = "";
    argv[n++] = "--appendonly";
    argv[n++] = "no";
    argv[n++] = "--daemonize";
    argv[n++] = "no";
    argv[n++] = "--enable-debug-command";
    argv[n++] = "yes";
    argv[n++] = "--dir";
    argv[n++] = fx.dir;
    if (unixsock) {
        argv[n++] = "--unixsocket";
        argv[n++] = s->unixsocket;
    }
    for (int i = 0; extra && extra[i] && n < 46; i++)
        argv[n++] = extra[i];
    argv[n] = NULL;
    pid_t parent = getpid();
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(1);
        int devnull = open("/dev/null", O_RDWR);
        dup2(devnull, 1);
        dup2(devnull, 2);
        execvp("redis-server", (char *const *)argv);
        _exit(127);
    }
    s->pid = pid;
    double deadline = now_s() + READY_WAIT_S;
    while (!server_ready(s)) {
        int st;
        ck_assert_msg(waitpid(pid, &st, WNOHANG) == 0, "redis-server exited at start");
        ck_assert_msg(now_s() < deadline, "redis-server did not answer in %.0f s", READY_WAIT_S);
        sleep_s(0.01);
    }
}

static struct server_proc *server_start(const char *const *extra)
{
    ck_assert_int_lt(fx.nservers, SERVERS_MAX);
    struct server_proc *s = &fx.servers[fx.nservers];
    s->port = free_port();
    s->unixsocket[0] = '\0';
    fx.nservers++;
    server_start_on(s, false, extra);
    return s;
}

static void server_stop(struct server_proc *s)
{
    if (s->pid <= 0)
        return;
    kill(s->pid, SIGCONT);
    kill(s->pid, SIGKILL);
    double deadline = now_s() + EXIT_WAIT_S;
    int st;
    while (waitpid(s->pid, &st, WNOHANG) == 0 && now_s() < deadline)
        sleep_s(0.005);
    s->pid = 0;
}

/* A TCP listener on 127.0.0.1 that never accepts. With fill, its accept queue (backlog 0) is
 * filled first, so a further connect(2) stays in SYN-SENT. Returns its port. */
static int silent_listener(bool fill)
{
    ck_assert_int_lt(fx.nfds, LISTENERS_MAX - 2);
    int l = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    ck_assert_int_eq(bind(l, (struct sockaddr *)&a, sizeof(a)), 0);
    ck_assert_int_eq(listen(l, 0), 0);
    socklen_t len = sizeof(a);
    ck_assert_int_eq(getsockname(l, (struct sockaddr *)&a, &len), 0);
    fx.fds[fx.nfds++] = l;
    if (fill) {
        bool full = false;
        for (int i = 0; i < BACKLOG_FILL_MAX && !full && fx.nfds < LISTENERS_MAX; i++) {
            int s = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
            connect(s, (struct sockaddr *)&a, sizeof(a));
            fx.fds[fx.nfds++] = s;
            struct pollfd p = { .fd = s, .events = POLLOUT };
            full = poll(&p, 1, 200) == 0;
        }
        ck_assert_msg(full, "could not fill the accept queue");
    }
    return ntohs(a.sin_port);
}

static struct config_upstream base_cfg(int port)
{
    struct config_upstream c = {
        .host = "127.0.0.1",
        .port = port,
        .unixsocket = "",
        .username = "",
        .password = "",
        .db = 0,
        .connect_timeout_ms = 1000,
        .op_timeout_ms = 2000,
        .connections = 1,
        .reconnect_min_ms = 10,
        .reconnect_max_ms = 100,
        .health_check_interval_ms = 0,
    };
    return c;
}

static bool link_is_up(void *arg)
{
    return upstream_link_state(arg) == UPSTREAM_UP;
}

static bool link_is_down(void *arg)
{
    return upstream_link_state(arg) == UPSTREAM_DOWN;
}

static struct upstream_link *link_up(const struct config_upstream *cfg)
{
    struct upstream_link *link = upstream_link_create(fx.loop, cfg, NULL, "test");
    ck_assert_msg(run_until(link_is_up, link, WAIT_S), "link not up: %s",
                  upstream_link_last_error(link));
    return link;
}

/* Starts a redis-server (no extra arguments) and brings up a link to it: base_cfg() with
 * op_timeout_ms. The server goes to *server unless server is NULL. */
static struct upstream_link *link_up_new_server(int op_timeout_ms, struct server_proc **server)
{
    struct server_proc *s = server_start(NULL);
    struct config_upstream cfg = base_cfg(s->port);
    cfg.op_timeout_ms = op_timeout_ms;
    if (server)
        *server = s;
    return link_up(&cfg);
}

/* ---- completion recorder ---------------------------------------------------------------- */

struct rec {
    int calls;
    enum upstream_status status;
    struct upstream_buf bytes;   /* the reply's RESP2 bytes */
    char reason[256];
    struct upstream_link *reset_link; /* when set, the callback resets this link */
    struct upstream_req *cancel;      /* when set, the callback cancels this request */
};

static void rec_cb(void *owner, const struct upstream_reply *r)
{
    struct rec *rec = owner;
    rec->calls++;
    rec->status = r->status;
    rec->bytes.len = 0;
    rec->reason[0] = '\0';
    if (r->status == UPSTREAM_OK) {
        ck_assert_ptr_nonnull(r->value);
        ck_assert_ptr_null(r->reason);
        size_t n = upstream_value_encoded_len(r->value);
        upstream_value_append(r->value, &rec->bytes);
        ck_assert_uint_eq(rec->bytes.len, n);
    } else {
        ck_assert_ptr_null(r->value);
        ck_assert_ptr_nonnull(r->reason);
        snprintf(rec->reason, sizeof(rec->reason), "%s", r->reason);
    }
    if (rec->cancel) {
        upstream_req_cancel(rec->cancel);
        rec->cancel = NULL;
    }
    if (rec->reset_link) {
        upstream_link_reset(rec->reset_link, "from a callback");
        rec->reset_link = NULL;
    }
}

static bool rec_done(void *arg)
{
    return ((struct rec *)arg)->calls > 0;
}

static void rec_free(struct rec *r)
{
    upstream_buf_free(&r->bytes);
}

/* Clears a recorder for its next request, keeping its buffer (r must be initialised). */
static void rec_reset(struct rec *r)
{
    struct upstream_buf keep = r->bytes;
    memset(r, 0, sizeof(*r));
    r->bytes = keep;
    r->bytes.len = 0;
}

/* Sends cmd (a formatted command) and waits for its completion. rec must be initialised.
 * (Unused by test_upstream_failures.c, hence the attribute.) */
__attribute__((unused)) static void roundtrip(struct upstream_link *link, const char *cmd,
                                              struct rec *rec)
{
    rec_reset(rec);
    ck_assert_ptr_nonnull(upstream_link_send(link, cmd, strlen(cmd), rec_cb, rec));
    ck_assert_int_eq(rec->calls, 0); /* never called from inside send */
    ck_assert_msg(run_until(rec_done, rec, WAIT_S), "no completion for %s", cmd);
    ck_assert_int_eq(rec->calls, 1);
}

/* Sends argv (strings) and waits for its completion. */
static void roundtrip_argv(struct upstream_link *link, int argc, const char *const *argv,
                           struct rec *rec)
{
    size_t lens[16];
    ck_assert_int_le(argc, 16);
    for (int i = 0; i < argc; i++)
        lens[i] = strlen(argv[i]);
    rec_reset(rec);
    ck_assert_ptr_nonnull(upstream_link_send_argv(link, argc, argv, lens, rec_cb, rec));
    ck_assert_msg(run_until(rec_done, rec, WAIT_S), "no completion for %s", argv[0]);
    ck_assert_int_eq(rec->calls, 1);
}

/* Asserts the reply bytes equal expect (n bytes). */
static void assert_bytes(const struct rec *rec, const char *expect, size_t n)
{
    ck_assert_msg(rec->status == UPSTREAM_OK, "status %s (%s)", upstream_status_name(rec->status),
                  rec->reason);
    ck_assert_msg(rec->bytes.len == n && memcmp(rec->bytes.data, expect, n) == 0,
                  "reply %.*s (len %zu) != expected %.*s (len %zu)", (int)rec->bytes.len,
                  rec->bytes.data ? rec->bytes.data : "", rec->bytes.len, (int)n, expect, n);
}

#define ASSERT_REPLY(rec, lit) assert_bytes((rec), (lit), sizeof(lit) - 1)

/* Runs every test of su (CK_FORK and CK_VERBOSITY apply); main()'s exit status. */
/* A link's state callbacks, counted (upstream_link_set_state_cb(link, link_states_cb, &st)).
 * test_upstream_sub.c has a richer one of its own, hence the attribute. */
struct link_states {
    int up, down;
    enum upstream_state last;
};

__attribute__((unused)) static void link_states_cb(void *arg, struct upstream_link *link,
                                                   enum upstream_state st)
{
    struct link_states *s = arg;
    ck_assert_int_eq(upstream_link_state(link), st);
    if (st == UPSTREAM_UP)
        s->up++;
    else
        s->down++;
    s->last = st;
}

static int fixture_run_suite(Suite *su)
{
    SRunner *sr = srunner_create(su);
    srunner_run_all(sr, CK_ENV);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

#endif /* TESTS_UNIT_UPSTREAM_FIXTURE_H */
