/* Unit tests for the upstream link's additions (upstream/link.c, request.c, subscriber.c):
 * per-request deadlines (upstream_link_send_timeout and the FIFO's timer over mixed deadlines),
 * holding requests while connecting (upstream_link_set_hold), and subscriber links
 * (upstream_link_create_subscriber, CLIENT ID, [P][UN]SUBSCRIBE, invalidation messages).
 * Runs against a real redis-server started per test on a free 127.0.0.1 port and stopped by pid,
 * through the fixture in upstream_fixture.h (shared with test_upstream.c); every wait is bounded
 * in time and iterations.
 *
 * Covered: the FIFO timer armed, stopped and re-armed as heads with and without deadlines
 * change (no server); BLPOP k 0 without a deadline outliving op_timeout_ms then answered by an
 * LPUSH, with a request pipelined behind it; a request behind a no-deadline head getting its
 * own timeout once it is the head; BLPOP k 5 with a 300 ms deadline on a 100 ms link timed out
 * at ~300 ms and the link recycled; send_timeout refusals; hold: requests sent while connecting
 * answered in order after the UP state callback's own sends, a held request cancelled never
 * written, held requests failed with the reason of a refused connect, a connect timeout and a
 * failed AUTH, fast failures without hold and while DOWN; subscriber: the CLIENT ID is the
 * server's (CLIENT LIST, CLIENT TRACKING REDIRECT), invalidation messages with the key and the
 * null payload of FLUSHALL, BCAST, CLIENT KILL giving DOWN then UP with a new id and the
 * channels resubscribed, no health-check PING, a closed port backing off, destroy while
 * connecting, in the handshake and up, a reset from inside on_message, dynamic
 * SUBSCRIBE/UNSUBSCRIBE/PSUBSCRIBE/PUNSUBSCRIBE (also while down, and across a reset), a message
 * in flight when unsubscribed not delivered, many channels in one handshake, AUTH, send refused
 * on a subscriber. */
#define FIXTURE_NAME "test_upstream_sub"
#include "upstream_fixture.h"

#include <math.h>

/* ---- helpers of this suite --------------------------------------------------------------- */

#define MANY_CHANNELS 100        /* channels in one subscriber handshake */
#define POLL_ROUNDS_MAX 400      /* bounded polling loops (each runs the loop ~5-10 ms) */

struct states {
    int up, down;
    enum upstream_state last;
    long long ids[8];            /* upstream_link_client_id seen at each UP */
    struct upstream_link *send_on_up; /* when set, the UP callback sends send_argv[] on it */
    const char *const *send_argv;
    int send_argc;
    struct rec *send_rec;
};

static void states_cb(void *arg, struct upstream_link *link, enum upstream_state st)
{
    struct states *s = arg;
    ck_assert_int_eq(upstream_link_state(link), st);
    if (st == UPSTREAM_UP) {
        if (s->up < 8)
            s->ids[s->up] = upstream_link_client_id(link);
        s->up++;
        if (s->send_on_up) {
            size_t lens[8];
            for (int i = 0; i < s->send_argc; i++)
                lens[i] = strlen(s->send_argv[i]);
            ck_assert_ptr_nonnull(upstream_link_send_argv(s->send_on_up, s->send_argc,
                                                          s->send_argv, lens, rec_cb,
                                                          s->send_rec));
        }
    } else {
        s->down++;
    }
    s->last = st;
}

struct two_states {
    struct states *s;
    int up, down;
};

static bool states_reached(void *arg)
{
    struct two_states *t = arg;
    return t->s->up >= t->up && t->s->down >= t->down;
}

/* The pub/sub messages a subscriber received. */
struct msgs {
    int n;
    struct upstream_buf last;    /* the last message's RESP2 bytes */
    enum upstream_value_type payload_type; /* the last message's last element's type */
    struct upstream_link *link;  /* the link on_message was called with */
};

static void msgs_cb(void *arg, struct upstream_link *link, const struct upstream_value *msg)
{
    struct msgs *m = arg;
    ck_assert_int_eq(upstream_value_type(msg), UPSTREAM_VALUE_ARRAY);
    ck_assert_uint_ge(upstream_value_count(msg), 3);
    m->n++;
    m->link = link;
    m->last.len = 0;
    upstream_value_append(msg, &m->last);
    m->payload_type = upstream_value_type(upstream_value_at(msg, upstream_value_count(msg) - 1));
}

struct msgs_at_least {
    struct msgs *m;
    int n;
};

static bool msgs_reached(void *arg)
{
    struct msgs_at_least *w = arg;
    return w->m->n >= w->n;
}

static void assert_last_msg(const struct msgs *m, const char *expect, size_t n)
{
    ck_assert_msg(m->last.len == n && memcmp(m->last.data, expect, n) == 0,
                  "message %.*s (len %zu) != expected %.*s", (int)m->last.len,
                  m->last.data ? m->last.data : "", m->last.len, (int)n, expect);
}

#define ASSERT_MSG(m, lit) assert_last_msg((m), (lit), sizeof(lit) - 1)

/* Waits for the n-th message (bounded). */
static void wait_msgs(struct msgs *m, int n)
{
    struct msgs_at_least w = { m, n };
    ck_assert_msg(run_until(msgs_reached, &w, WAIT_S), "only %d messages, expected %d", m->n, n);
}

static long long sync_int(const struct server_proc *s, const char *fmt, const char *arg)
{
    redisReply *r = sync_cmd(s, NULL, fmt, arg);
    ck_assert_ptr_nonnull(r);
    ck_assert_msg(r->type == REDIS_REPLY_INTEGER, "not an integer: %s", r->str ? r->str : "");
    long long v = r->integer;
    freeReplyObject(r);
    return v;
}

static void sync_ok(const struct server_proc *s, const char *fmt, const char *arg)
{
    redisReply *r = sync_cmd(s, NULL, fmt, arg);
    ck_assert_ptr_nonnull(r);
    ck_assert_msg(r->type == REDIS_REPLY_STATUS, "not a status: %s", r->str ? r->str : "");
    freeReplyObject(r);
}

/* PUBLISHes "m" on channel (len bytes, binary) until the server counts want receivers (the
 * [un]subscription has been processed), running the loop between tries; returns the number of
 * PUBLISHes that reached a receiver. */
static int publish_len_until(const struct server_proc *s, const char *channel, size_t len,
                             long long want)
{
    int reached = 0;
    for (int i = 0; i < POLL_ROUNDS_MAX; i++) {
        redisReply *r = sync_cmd(s, NULL, "PUBLISH %b m", channel, len);
        ck_assert_ptr_nonnull(r);
        ck_assert_int_eq(r->type, REDIS_REPLY_INTEGER);
        long long got = r->integer;
        freeReplyObject(r);
        if (got > 0)
            reached++;
        if (got == want)
            return reached;
        run_for(0.01);
    }
    ck_abort_msg("PUBLISH %.*s never reached %lld receivers", (int)len, channel, want);
    return reached;
}

static int publish_until(const struct server_proc *s, const char *channel, long long want)
{
    return publish_len_until(s, channel, strlen(channel), want);
}

/* Once PUBLISH on channel reaches no receiver (the unsubscription took effect), runs the loop a
 * while longer and asserts that m received nothing more: it still counts n messages. */
static void assert_no_more_msgs(const struct server_proc *s, const char *channel,
                                const struct msgs *m, int n)
{
    publish_until(s, channel, 0);
    run_for(0.05);
    ck_assert_msg(m->n == n, "%d messages once %s had no receiver, expected %d", m->n, channel,
                  n);
}

/* A subscriber link on the n channels ch, messages to on_message(arg), states to states_cb(st)
 * unless st is NULL; returns once it is up. */
static struct upstream_link *sub_up_cb(const struct config_upstream *cfg, const char *const *ch,
                                       size_t n,
                                       void (*on_message)(void *, struct upstream_link *,
                                                          const struct upstream_value *),
                                       void *arg, struct states *st)
{
    struct upstream_link *link =
        upstream_link_create_subscriber(fx.loop, cfg, NULL, "sub", ch, n, on_message, arg);
    if (st)
        upstream_link_set_state_cb(link, states_cb, st);
    ck_assert_msg(run_until(link_is_up, link, WAIT_S), "subscriber not up: %s",
                  upstream_link_last_error(link));
    return link;
}

/* A subscriber link on the n channels ch recording its messages in m; returns once it is up. */
static struct upstream_link *sub_up(const struct config_upstream *cfg, const char *const *ch,
                                    size_t n, struct msgs *m)
{
    return sub_up_cb(cfg, ch, n, msgs_cb, m, NULL);
}

static const char BLPOP_K_0[] = "*3\r\n$5\r\nBLPOP\r\n$1\r\nk\r\n$1\r\n0\r\n";
static const char PING[] = "*1\r\n$4\r\nPING\r\n";

/* ---- the FIFO's timer over mixed deadlines (no server) ----------------------------------- */

static void fifo_noop_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)w;
    (void)revents;
}

START_TEST(test_fifo_mixed_deadlines)
{
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    struct upstream_fifo f;
    upstream_fifo_init(&f, 1.0, fifo_noop_cb, NULL);
    struct upstream_req a = { 0 }, b = { 0 }, c = { 0 }, d = { 0 }, e = { 0 };

    /* a head without a deadline: no timer */
    upstream_fifo_push_timeout(loop, &f, &a, 0.);
    ck_assert(isinf(a.deadline));
    ck_assert(!ev_is_active(&f.timer));
    upstream_fifo_push(loop, &f, &b); /* behind it, the FIFO's 1 s */
    ck_assert(!ev_is_active(&f.timer));
    ck_assert(fabs(b.timeout - 1.0) < 1e-9);
    ck_assert(!upstream_fifo_expired(loop, &f)); /* a has no deadline: stays stopped */
    ck_assert(!ev_is_active(&f.timer));

    /* a answered after a while: b becomes the head, re-stamped (it waited behind a) and the
     * timer armed for it */
    sleep_s(0.05);
    ev_now_update(loop);
    ev_tstamp old_b = b.deadline;
    ck_assert_ptr_eq(upstream_fifo_shift(loop, &f), &a);
    ck_assert(ev_is_active(&f.timer));
    ck_assert(b.deadline > old_b);
    ck_assert(fabs(b.deadline - (ev_now(loop) + 1.0)) < 1e-6);
    ck_assert(fabs(ev_timer_remaining(loop, &f.timer) - 1.0) < 0.01);

    /* c: a longer deadline behind b; b answered: the timer (armed earlier) is kept, lazily */
    upstream_fifo_push_timeout(loop, &f, &c, 5.0);
    ck_assert_ptr_eq(upstream_fifo_shift(loop, &f), &b);
    ck_assert(ev_is_active(&f.timer));
    ck_assert(ev_timer_remaining(loop, &f.timer) < 1.01);
    /* it fires early: re-armed for c */
    ck_assert(!upstream_fifo_expired(loop, &f));
    ck_assert(ev_timer_remaining(loop, &f.timer) > 4.9);

    /* d: a short deadline behind c (5 s): when c is answered, d's own 0.1 s counts from then
     * and the timer comes forward from c's 5 s */
    upstream_fifo_push_timeout(loop, &f, &d, 0.1);
    sleep_s(0.15);
    ev_now_update(loop);
    ck_assert_ptr_eq(upstream_fifo_shift(loop, &f), &c);
    ck_assert(d.deadline > ev_now(loop));
    ck_assert(ev_timer_remaining(loop, &f.timer) < 0.11);
    ck_assert(ev_timer_remaining(loop, &f.timer) > 0.05);

    /* e without a deadline behind d: d answered, e is the head: the timer stops */
    upstream_fifo_push_timeout(loop, &f, &e, 0.);
    ck_assert_ptr_eq(upstream_fifo_shift(loop, &f), &d);
    ck_assert(!ev_is_active(&f.timer));
    ck_assert_ptr_eq(upstream_fifo_shift(loop, &f), &e);
    ck_assert_ptr_null(upstream_fifo_shift(loop, &f));

    /* the uniform case is unchanged: pushes into an empty FIFO arm it, expiry is detected */
    upstream_fifo_push(loop, &f, &a);
    ck_assert(ev_is_active(&f.timer));
    a.deadline = ev_now(loop) - 0.001;
    ck_assert(upstream_fifo_expired(loop, &f));
    ck_assert_ptr_eq(upstream_fifo_pop(&f), &a);
    upstream_fifo_stop(loop, &f);
    ev_loop_destroy(loop);
}
END_TEST

/* ---- per-request deadlines --------------------------------------------------------------- */

START_TEST(test_send_timeout_none_blpop)
{
    struct server_proc *s;
    struct upstream_link *link = link_up_new_server(100, &s);
    struct rec blpop = { 0 }, ping = { 0 };

    /* BLPOP k 0 without a deadline, a PING pipelined behind it */
    ck_assert_ptr_nonnull(upstream_link_send_timeout(link, BLPOP_K_0, sizeof(BLPOP_K_0) - 1, 0,
                                                     rec_cb, &blpop));
    ck_assert_ptr_nonnull(upstream_link_send(link, PING, sizeof(PING) - 1, rec_cb, &ping));
    ck_assert_uint_eq(upstream_link_in_flight(link), 2);
    run_for(0.4); /* 4 x op_timeout_ms */
    ck_assert_int_eq(blpop.calls, 0);
    ck_assert_int_eq(ping.calls, 0);
    ck_assert_int_eq(upstream_link_state(link), UPSTREAM_UP);
    ck_assert_uint_eq(upstream_link_stats(link)->timeouts, 0);

    /* an LPUSH from another connection answers it, then the PING is answered */
    ck_assert_int_eq(sync_int(s, "LPUSH k %s", "v"), 1);
    ck_assert(run_until(rec_done, &ping, WAIT_S));
    ASSERT_REPLY(&blpop, "*2\r\n$1\r\nk\r\n$1\r\nv\r\n");
    ASSERT_REPLY(&ping, "+PONG\r\n");

    /* a request behind a no-deadline head gets its own timeout once it is the head (its
     * deadline from when it was written has long passed by then): BLPOP k2 5 with 300 ms
     * behind BLPOP k 0 times out ~300 ms after the LPUSH that answers the first, not at once
     * (DEBUG SLEEP would not do here: Redis runs an unblocked client's next command before
     * writing the reply that unblocked it) */
    rec_reset(&blpop);
    rec_reset(&ping);
    const char blpop_k2[] = "*3\r\n$5\r\nBLPOP\r\n$2\r\nk2\r\n$1\r\n5\r\n";
    ck_assert_ptr_nonnull(upstream_link_send_timeout(link, BLPOP_K_0, sizeof(BLPOP_K_0) - 1, 0,
                                                     rec_cb, &blpop));
    ck_assert_ptr_nonnull(
        upstream_link_send_timeout(link, blpop_k2, sizeof(blpop_k2) - 1, 300, rec_cb, &ping));
    run_for(0.4);
    ck_assert_int_eq(blpop.calls + ping.calls, 0);
    ck_assert_int_eq(sync_int(s, "LPUSH k %s", "w"), 1);
    double t0 = now_s();
    ck_assert(run_until(rec_done, &ping, WAIT_S));
    double took = now_s() - t0;
    ASSERT_REPLY(&blpop, "*2\r\n$1\r\nk\r\n$1\r\nw\r\n");
    ck_assert_int_eq(ping.status, UPSTREAM_ERR_TIMEOUT);
    ck_assert_msg(took > 0.2 && took < 1.5, "timed out %.3f s after the LPUSH", took);
    ck_assert_str_eq(ping.reason, "timeout: no reply within 300 ms");
    ck_assert_uint_eq(upstream_link_stats(link)->recycles, 1);
    rec_free(&blpop);
    rec_free(&ping);
    upstream_link_destroy(link);
}
END_TEST

START_TEST(test_send_timeout_longer_than_op)
{
    struct upstream_link *link = link_up_new_server(100, NULL);
    struct rec r = { 0 };
    const char blpop5[] = "*3\r\n$5\r\nBLPOP\r\n$1\r\nk\r\n$1\r\n5\r\n";
    ev_now_update(fx.loop); /* the deadline counts from ev_now: measure from the same time */
    double t0 = now_s();
    ck_assert_ptr_nonnull(
        upstream_link_send_timeout(link, blpop5, sizeof(blpop5) - 1, 300, rec_cb, &r));
    run_for(0.2); /* past op_timeout_ms: not timed out */
    ck_assert_int_eq(r.calls, 0);
    ck_assert_int_eq(upstream_link_state(link), UPSTREAM_UP);
    ck_assert(run_until(rec_done, &r, WAIT_S));
    double took = now_s() - t0;
    ck_assert_int_eq(r.status, UPSTREAM_ERR_TIMEOUT);
    ck_assert_msg(took > 0.25 && took < 1.5, "timed out after %.3f s", took);
    ck_assert_str_eq(r.reason, "timeout: no reply within 300 ms");
    const struct upstream_stats *st = upstream_link_stats(link);
    ck_assert_uint_eq(st->timeouts, 1);
    ck_assert_uint_eq(st->recycles, 1);
    ck_assert_int_ne(upstream_link_state(link), UPSTREAM_UP);
    /* it comes back by itself and serves with the op timeout again */
    ck_assert(run_until(link_is_up, link, WAIT_S));
    roundtrip(link, PING, &r);
    ASSERT_REPLY(&r, "+PONG\r\n");

    /* refusals: negative timeout, invalid command */
    ck_assert_ptr_null(upstream_link_send_timeout(link, PING, sizeof(PING) - 1, -1, rec_cb, &r));
    ck_assert_ptr_null(upstream_link_send_timeout(link, "PING\r\n", 6, 10, rec_cb, &r));
    ck_assert_ptr_null(upstream_link_send_timeout(link, PING, sizeof(PING) - 1, 10, NULL, &r));
    run_for(0.02);
    ck_assert_int_eq(r.calls, 1);
    rec_free(&r);
    upstream_link_destroy(link);
}
END_TEST

/* ---- hold while connecting --------------------------------------------------------------- */

START_TEST(test_hold_while_connecting)
{
    struct server_proc *s = server_start(NULL);
    struct config_upstream cfg = base_cfg(s->port);

    /* without hold, a send while connecting fails fast (unchanged) */
    struct upstream_link *link = upstream_link_create(fx.loop, &cfg, NULL, "nohold");
    struct rec r = { 0 };
    ck_assert_int_ne(upstream_link_state(link), UPSTREAM_UP);
    roundtrip(link, PING, &r);
    ck_assert_int_eq(r.status, UPSTREAM_ERR_DOWN);
    upstream_link_destroy(link);

    /* with hold: the state callback's own SET goes first, then the held requests in order */
    link = upstream_link_create(fx.loop, &cfg, NULL, "hold");
    upstream_link_set_hold(link, true);
    struct rec from_state = { 0 }, get = { 0 }, incr = { 0 }, cancelled = { 0 }, ping = { 0 };
    const char *set_argv[] = { "SET", "k", "from-state-cb" };
    struct states st = { .send_on_up = link, .send_argv = set_argv, .send_argc = 3,
                         .send_rec = &from_state };
    upstream_link_set_state_cb(link, states_cb, &st);
    ck_assert_int_eq(upstream_link_state(link), UPSTREAM_CONNECTING);
    const char *get_argv[] = { "GET", "k" };
    const char *incr_argv[] = { "INCR", "n" };
    size_t get_lens[] = { 3, 1 }, incr_lens[] = { 4, 1 };
    ck_assert_ptr_nonnull(upstream_link_send_argv(link, 2, get_argv, get_lens, rec_cb, &get));
    struct upstream_req *c =
        upstream_link_send_argv(link, 2, incr_argv, incr_lens, rec_cb, &cancelled);
    ck_assert_ptr_nonnull(c);
    ck_assert_ptr_nonnull(upstream_link_send_argv(link, 2, incr_argv, incr_lens, rec_cb, &incr));
    /* a one-argument command in a buffer that ends right after it */
    char *exact = malloc(sizeof(PING) - 1);
    memcpy(exact, PING, sizeof(PING) - 1);
    ck_assert_ptr_nonnull(upstream_link_send(link, exact, sizeof(PING) - 1, rec_cb, &ping));
    free(exact);
    ck_assert_uint_eq(upstream_link_in_flight(link), 4);
    upstream_req_cancel(c); /* never written */
    ck_assert_int_eq(get.calls + incr.calls + ping.calls, 0);
    ck_assert(run_until(rec_done, &ping, WAIT_S));
    ck_assert_int_eq(st.up, 1);
    ASSERT_REPLY(&from_state, "+OK\r\n");
    ASSERT_REPLY(&get, "$13\r\nfrom-state-cb\r\n");
    ASSERT_REPLY(&incr, ":1\r\n"); /* the cancelled INCR was not sent */
    ASSERT_REPLY(&ping, "+PONG\r\n");
    ck_assert_int_eq(cancelled.calls, 0);
    const struct upstream_stats *stats = upstream_link_stats(link);
    ck_assert_uint_eq(stats->requests, 4);
    ck_assert_uint_eq(stats->replies, 4);
    ck_assert_uint_eq(stats->swallowed, 1);
    ck_assert_uint_eq(upstream_link_in_flight(link), 0);

    /* while DOWN waiting for the backoff, sends still fail fast */
    upstream_link_reset(link, "test");
    ck_assert_int_eq(upstream_link_state(link), UPSTREAM_DOWN);
    roundtrip(link, PING, &r);
    ck_assert_int_eq(r.status, UPSTREAM_ERR_DOWN);
    ck_assert_str_eq(r.reason, "reset: test");
    upstream_link_destroy(link);
    rec_free(&r);
    rec_free(&from_state);
    rec_free(&get);
    rec_free(&incr);
    rec_free(&ping);
}
END_TEST

START_TEST(test_hold_attempt_fails)
{
    struct rec r = { 0 };
    struct config_upstream cfg = base_cfg(free_port()); /* nothing listens there */
    cfg.reconnect_min_ms = 1000;
    cfg.reconnect_max_ms = 1000;

    /* refused */
    struct upstream_link *link = upstream_link_create(fx.loop, &cfg, NULL, "refused");
    upstream_link_set_hold(link, true);
    bool was_connecting = upstream_link_state(link) == UPSTREAM_CONNECTING;
    roundtrip(link, PING, &r);
    ck_assert_int_eq(r.status, UPSTREAM_ERR_DOWN);
    ck_assert_msg(strstr(r.reason, "connect") != NULL, "reason: %s", r.reason);
    ck_assert_msg(strstr(r.reason, "refused") != NULL, "reason: %s (%s)", r.reason,
                  was_connecting ? "held" : "refused at once");
    ck_assert_uint_eq(upstream_link_stats(link)->failed_down, 1);
    upstream_link_destroy(link);

    /* a connect timeout (the accept queue is full: it stays CONNECTING): held, then failed */
    cfg.port = silent_listener(true);
    cfg.connect_timeout_ms = 150;
    ev_now_update(fx.loop); /* filling the queue took a while: timers count from now */
    link = upstream_link_create(fx.loop, &cfg, NULL, "timeout");
    upstream_link_set_hold(link, true);
    ck_assert_int_eq(upstream_link_state(link), UPSTREAM_CONNECTING);
    rec_reset(&r);
    struct rec r2 = { 0 };
    ck_assert_ptr_nonnull(upstream_link_send(link, PING, sizeof(PING) - 1, rec_cb, &r));
    ck_assert_ptr_nonnull(
        upstream_link_send_timeout(link, BLPOP_K_0, sizeof(BLPOP_K_0) - 1, 0, rec_cb, &r2));
    ck_assert_uint_eq(upstream_link_in_flight(link), 2);
    run_for(0.05);
    ck_assert_msg(r.calls + r2.calls == 0, "not held: %s", r.reason); /* held, not failed */
    ck_assert(run_until(rec_done, &r2, WAIT_S));
    ck_assert_int_eq(r.status, UPSTREAM_ERR_DOWN);
    ck_assert_int_eq(r2.status, UPSTREAM_ERR_DOWN);
    ck_assert_str_eq(r.reason, "connect timeout (150 ms, connecting)");
    ck_assert_str_eq(r2.reason, r.reason);
    ck_assert_uint_eq(upstream_link_in_flight(link), 0);
    upstream_link_destroy(link);
    rec_free(&r2);

    /* a failed handshake (wrong password) */
    const char *extra[] = { "--requirepass", "s3cret", NULL };
    struct server_proc *s = server_start(extra);
    cfg = base_cfg(s->port);
    cfg.password = "wrong";
    cfg.reconnect_min_ms = 1000;
    cfg.reconnect_max_ms = 1000;
    link = upstream_link_create(fx.loop, &cfg, NULL, "auth");
    upstream_link_set_hold(link, true);
    roundtrip(link, PING, &r);
    ck_assert_int_eq(r.status, UPSTREAM_ERR_DOWN);
    ck_assert_msg(strncmp(r.reason, "AUTH failed: ", 13) == 0, "reason: %s", r.reason);

    /* destroy with requests held: released without callbacks (ASan checks the memory) */
    cfg.port = silent_listener(true);
    struct upstream_link *l2 = upstream_link_create(fx.loop, &cfg, NULL, "destroy");
    upstream_link_set_hold(l2, true);
    rec_reset(&r);
    ck_assert_ptr_nonnull(upstream_link_send(l2, PING, sizeof(PING) - 1, rec_cb, &r));
    upstream_link_destroy(l2);
    run_for(0.05);
    ck_assert_int_eq(r.calls, 0);
    upstream_link_destroy(link);
    rec_free(&r);
}
END_TEST

/* ---- subscriber links -------------------------------------------------------------------- */

static const char INVALIDATE[] = "__redis__:invalidate";

START_TEST(test_sub_client_id_and_invalidation)
{
    struct server_proc *s = server_start(NULL);
    struct config_upstream cfg = base_cfg(s->port);
    cfg.health_check_interval_ms = 20; /* ignored by a subscriber */
    struct msgs m = { 0 };
    const char *ch[] = { INVALIDATE };
    struct states st = { 0 };
    struct upstream_link *sub =
        upstream_link_create_subscriber(fx.loop, &cfg, NULL, "inval", ch, 1, msgs_cb, &m);
    upstream_link_set_state_cb(sub, states_cb, &st);
    ck_assert_int_eq(upstream_link_client_id(sub), 0);
    ck_assert(run_until(link_is_up, sub, WAIT_S));
    long long id = upstream_link_client_id(sub);
    ck_assert_int_gt(id, 0);
    ck_assert_int_eq(st.ids[0], id); /* known in the UP state callback */
    ck_assert_uint_eq(upstream_link_subscriptions(sub, false), 1);
    ck_assert_uint_eq(upstream_link_subscriptions(sub, true), 0);

    /* the server agrees: that client exists and is subscribed to one channel */
    char idbuf[32];
    snprintf(idbuf, sizeof(idbuf), "%lld", id);
    redisReply *rr = sync_cmd(s, NULL, "CLIENT LIST ID %s", idbuf);
    ck_assert_ptr_nonnull(rr);
    ck_assert_int_eq(rr->type, REDIS_REPLY_STRING);
    char want[64];
    snprintf(want, sizeof(want), "id=%lld ", id);
    ck_assert_msg(strncmp(rr->str, want, strlen(want)) == 0, "CLIENT LIST: %s", rr->str);
    ck_assert_msg(strstr(rr->str, " sub=1 ") != NULL, "CLIENT LIST: %s", rr->str);
    freeReplyObject(rr);

    /* sends are refused on a subscriber */
    struct rec r = { 0 };
    ck_assert_ptr_null(upstream_link_send(sub, PING, sizeof(PING) - 1, rec_cb, &r));
    ck_assert_ptr_null(upstream_link_send_timeout(sub, PING, sizeof(PING) - 1, 0, rec_cb, &r));
    const char *ping_argv[] = { "PING" };
    size_t ping_len = 4;
    ck_assert_ptr_null(upstream_link_send_argv(sub, 1, ping_argv, &ping_len, rec_cb, &r));

    /* a data link redirecting its tracking to that id: accepted only for a live client */
    struct config_upstream data_cfg = base_cfg(s->port);
    struct upstream_link *data = link_up(&data_cfg);
    const char *tracking[] = { "CLIENT", "TRACKING", "on", "REDIRECT", idbuf };
    roundtrip_argv(data, 5, tracking, &r);
    ASSERT_REPLY(&r, "+OK\r\n");
    const char *get[] = { "GET", "k" };
    roundtrip_argv(data, 2, get, &r);
    ASSERT_REPLY(&r, "$-1\r\n");

    /* a write elsewhere: the key arrives through on_message */
    sync_ok(s, "SET k %s", "v");
    wait_msgs(&m, 1);
    ck_assert_ptr_eq(m.link, sub);
    ASSERT_MSG(&m, "*3\r\n$7\r\nmessage\r\n$20\r\n__redis__:invalidate\r\n*1\r\n$1\r\nk\r\n");
    ck_assert_int_eq(m.payload_type, UPSTREAM_VALUE_ARRAY);

    /* FLUSHALL: the null payload (a null bulk) */
    roundtrip_argv(data, 2, get, &r);
    sync_ok(s, "FLUSHALL", NULL);
    wait_msgs(&m, 2);
    ASSERT_MSG(&m, "*3\r\n$7\r\nmessage\r\n$20\r\n__redis__:invalidate\r\n$-1\r\n");
    ck_assert_int_eq(m.payload_type, UPSTREAM_VALUE_NIL);

    /* BCAST PREFIX on a second data link: writes under the prefix arrive too */
    struct upstream_link *bcast = link_up(&data_cfg);
    const char *tr_bcast[] = { "CLIENT", "TRACKING", "on", "REDIRECT", idbuf, "BCAST", "PREFIX",
                               "user:" };
    roundtrip_argv(bcast, 8, tr_bcast, &r);
    ASSERT_REPLY(&r, "+OK\r\n");
    sync_ok(s, "SET user:1 %s", "x");
    wait_msgs(&m, 3);
    ASSERT_MSG(&m, "*3\r\n$7\r\nmessage\r\n$20\r\n__redis__:invalidate\r\n*1\r\n$6\r\nuser:1\r\n");

    /* no health-check PING on the subscriber, and it stays up */
    run_for(0.15);
    ck_assert_uint_eq(upstream_link_stats(sub)->health_checks, 0);
    ck_assert_int_eq(upstream_link_state(sub), UPSTREAM_UP);
    ck_assert_uint_eq(upstream_link_stats(sub)->messages, 3);
    ck_assert_int_eq(m.n, 3);
    ck_assert_int_eq(upstream_link_client_id(data), 0); /* not a subscriber */

    upstream_link_destroy(bcast);
    upstream_link_destroy(data);
    upstream_link_destroy(sub);
    rec_free(&r);
    upstream_buf_free(&m.last);
}
END_TEST

START_TEST(test_sub_killed_new_id)
{
    struct server_proc *s = server_start(NULL);
    struct config_upstream cfg = base_cfg(s->port);
    struct msgs m = { 0 };
    const char *ch[] = { INVALIDATE, "news" };
    struct states st = { 0 };
    struct upstream_link *sub = sub_up_cb(&cfg, ch, 2, msgs_cb, &m, &st);
    long long id1 = upstream_link_client_id(sub);
    char idbuf[32];
    snprintf(idbuf, sizeof(idbuf), "%lld", id1);
    ck_assert_int_eq(sync_int(s, "CLIENT KILL ID %s", idbuf), 1);

    struct two_states want = { &st, 2, 1 };
    ck_assert(run_until(states_reached, &want, WAIT_S));
    ck_assert_int_eq(st.up, 2);
    ck_assert_int_eq(st.down, 1);
    ck_assert_int_eq(st.last, UPSTREAM_UP);
    long long id2 = upstream_link_client_id(sub);
    ck_assert_int_gt(id2, 0);
    ck_assert_int_ne(id2, id1);
    ck_assert_int_eq(st.ids[1], id2);
    const struct upstream_stats *stats = upstream_link_stats(sub);
    ck_assert_uint_eq(stats->disconnects, 1);
    ck_assert_uint_eq(stats->connects, 2);
    ck_assert_msg(strncmp(upstream_link_last_error(sub), "closed: ", 8) == 0, "last error: %s",
                  upstream_link_last_error(sub));

    /* both channels were subscribed again on the new connection */
    ck_assert_int_eq(sync_int(s, "PUBLISH news %s", "hello"), 1);
    wait_msgs(&m, 1);
    ASSERT_MSG(&m, "*3\r\n$7\r\nmessage\r\n$4\r\nnews\r\n$5\r\nhello\r\n");
    redisReply *rr = sync_cmd(s, NULL, "PUBSUB NUMSUB %s", INVALIDATE);
    ck_assert_ptr_nonnull(rr);
    ck_assert_int_eq(rr->type, REDIS_REPLY_ARRAY);
    ck_assert_int_eq(rr->element[1]->integer, 1);
    freeReplyObject(rr);

    /* the server goes away: DOWN, client id 0, then back when it returns */
    server_stop(s);
    want.down = 2;
    ck_assert(run_until(states_reached, &want, WAIT_S));
    ck_assert_int_eq(upstream_link_client_id(sub), 0);
    server_start_on(s, false, NULL);
    want.up = 3;
    ck_assert(run_until(states_reached, &want, WAIT_S));
    ck_assert_int_gt(upstream_link_client_id(sub), 0);
    publish_until(s, "news", 1);
    wait_msgs(&m, 2);
    upstream_link_destroy(sub);
    upstream_buf_free(&m.last);
}
END_TEST

START_TEST(test_sub_closed_port_backoff)
{
    struct config_upstream cfg = base_cfg(free_port());
    cfg.reconnect_min_ms = 10;
    cfg.reconnect_max_ms = 80;
    const char *ch[] = { INVALIDATE };
    struct msgs m = { 0 };
    struct upstream_link *sub =
        upstream_link_create_subscriber(fx.loop, &cfg, NULL, "sub", ch, 1, msgs_cb, &m);
    run_for(0.4);
    ck_assert_int_ne(upstream_link_state(sub), UPSTREAM_UP);
    const struct upstream_stats *st = upstream_link_stats(sub);
    ck_assert_uint_ge(st->connect_failures, 3);
    ck_assert_uint_le(st->connect_failures, 40); /* backed off, not spinning */
    ck_assert_uint_eq(st->connects, 0);
    ck_assert_int_eq(upstream_link_backoff_ms(sub), 80);
    ck_assert_msg(strstr(upstream_link_last_error(sub), "connect") != NULL, "last error: %s",
                  upstream_link_last_error(sub));
    ck_assert_int_eq(upstream_link_client_id(sub), 0);
    /* subscribing while down keeps the name for later */
    ck_assert_int_eq(upstream_link_subscribe(sub, "later", 5), 0);
    ck_assert_uint_eq(upstream_link_subscriptions(sub, false), 2);
    ck_assert_int_eq(m.n, 0);
    upstream_link_destroy(sub);
}
END_TEST

START_TEST(test_sub_destroy_any_state)
{
    struct server_proc *s = server_start(NULL);
    struct config_upstream cfg = base_cfg(s->port);
    const char *ch[] = { INVALIDATE, "a", "b" };
    struct msgs m = { 0 };

    /* connecting */
    struct upstream_link *sub =
        upstream_link_create_subscriber(fx.loop, &cfg, NULL, "sub", ch, 3, msgs_cb, &m);
    upstream_link_destroy(sub);
    run_for(0.02);

    /* in the handshake: connected to a listener that never answers */
    struct config_upstream silent = base_cfg(silent_listener(false));
    sub = upstream_link_create_subscriber(fx.loop, &silent, NULL, "sub", ch, 3, msgs_cb, &m);
    run_for(0.1);
    ck_assert_int_eq(upstream_link_state(sub), UPSTREAM_HANDSHAKE);
    upstream_link_destroy(sub);
    run_for(0.02);

    /* up, with messages flowing and a dynamic pattern */
    sub = sub_up(&cfg, ch, 3, &m);
    ck_assert_int_eq(upstream_link_psubscribe(sub, "x.*", 3), 0);
    publish_until(s, "a", 1);
    publish_until(s, "x.1", 1);
    upstream_link_destroy(sub);
    run_for(0.02);

    /* up, reset (closing deferred inside hiredis), destroyed before the next attempt */
    sub = sub_up(&cfg, ch, 3, &m);
    upstream_link_reset(sub, "test");
    ck_assert_int_eq(upstream_link_state(sub), UPSTREAM_DOWN);
    upstream_link_destroy(sub);
    run_for(0.02);
    upstream_buf_free(&m.last);
}
END_TEST

/* on_message that unsubscribes its own channel (from inside hiredis's callback). */
struct self_unsub {
    struct msgs m;
    struct upstream_link *link;
};

static void self_unsub_cb(void *arg, struct upstream_link *link, const struct upstream_value *msg)
{
    struct self_unsub *u = arg;
    msgs_cb(&u->m, link, msg);
    ck_assert_int_eq(upstream_link_unsubscribe(link, "once", 4), 0);
}

/* on_message that resets its link (the context is then freed by hiredis after the callback). */
static void reset_cb(void *arg, struct upstream_link *link, const struct upstream_value *msg)
{
    msgs_cb(arg, link, msg);
    upstream_link_reset(link, "from on_message");
    ck_assert_int_eq(upstream_link_state(link), UPSTREAM_DOWN);
}

START_TEST(test_sub_reset_from_on_message)
{
    struct server_proc *s = server_start(NULL);
    struct config_upstream cfg = base_cfg(s->port);
    struct msgs m = { 0 };
    struct states st = { 0 };
    const char *ch[] = { "r" };
    struct upstream_link *sub = sub_up_cb(&cfg, ch, 1, reset_cb, &m, &st);
    /* two messages in one read: the second one is not delivered (the link is down) */
    ck_assert_int_eq(sync_int(s, "EVAL %s 0", "redis.call('PUBLISH','r','1') "
                                              "redis.call('PUBLISH','r','2') return 1"),
                     1);
    wait_msgs(&m, 1);
    ck_assert_int_eq(st.down, 1);
    ck_assert_str_eq(upstream_link_last_error(sub), "reset: from on_message");
    struct two_states want = { &st, 2, 1 };
    ck_assert(run_until(states_reached, &want, WAIT_S));
    ck_assert_int_eq(m.n, 1);
    ck_assert_int_eq(sync_int(s, "PUBLISH r %s", "3"), 1);
    wait_msgs(&m, 2);
    ck_assert_int_eq(st.down, 2);
    ck_assert(run_until(link_is_up, sub, WAIT_S));
    upstream_link_destroy(sub);
    upstream_buf_free(&m.last);
}
END_TEST

START_TEST(test_sub_dynamic)
{
    struct server_proc *s = server_start(NULL);
    struct config_upstream cfg = base_cfg(s->port);
    struct msgs m = { 0 };

    /* no channel at all: up once CLIENT ID answered */
    struct upstream_link *sub = sub_up(&cfg, NULL, 0, &m);
    ck_assert_int_gt(upstream_link_client_id(sub), 0);
    ck_assert_uint_eq(upstream_link_subscriptions(sub, false), 0);

    /* subscribe: PUBLISH delivers */
    ck_assert_int_eq(upstream_link_subscribe(sub, "a", 1), 0);
    ck_assert_int_eq(upstream_link_subscribe(sub, "a", 1), 0); /* already there */
    ck_assert_uint_eq(upstream_link_subscriptions(sub, false), 1);
    int reached = publish_until(s, "a", 1);
    wait_msgs(&m, reached);
    ASSERT_MSG(&m, "*3\r\n$7\r\nmessage\r\n$1\r\na\r\n$1\r\nm\r\n");

    /* binary channel names */
    const char bin[] = { 'b', '\0', '\r', '\n' };
    ck_assert_int_eq(upstream_link_subscribe(sub, bin, sizeof(bin)), 0);
    int before = m.n;
    ck_assert_int_eq(publish_len_until(s, bin, sizeof(bin), 1), 1);
    wait_msgs(&m, before + 1);
    ASSERT_MSG(&m, "*3\r\n$7\r\nmessage\r\n$4\r\nb\0\r\n\r\n$1\r\nm\r\n");
    ck_assert_int_eq(upstream_link_unsubscribe(sub, bin, sizeof(bin)), 0);

    /* unsubscribe: a message published before the UNSUBSCRIBE reached the server (it is only
     * written when the loop runs) is not delivered, nor any later one */
    ck_assert_int_eq(upstream_link_unsubscribe(sub, "a", 1), 0);
    ck_assert_int_eq(upstream_link_unsubscribe(sub, "a", 1), -1);
    ck_assert_int_eq(sync_int(s, "PUBLISH a %s", "late"), 1); /* still subscribed there */
    before = m.n;
    assert_no_more_msgs(s, "a", &m, before);

    /* psubscribe: pmessage arrays */
    ck_assert_int_eq(upstream_link_psubscribe(sub, "p.*", 3), 0);
    ck_assert_uint_eq(upstream_link_subscriptions(sub, true), 1);
    reached = publish_until(s, "p.x", 1);
    wait_msgs(&m, before + reached);
    ASSERT_MSG(&m, "*4\r\n$8\r\npmessage\r\n$3\r\np.*\r\n$3\r\np.x\r\n$1\r\nm\r\n");
    ck_assert_int_eq(upstream_link_punsubscribe(sub, "p.*", 3), 0);
    ck_assert_int_eq(upstream_link_punsubscribe(sub, "p.*", 3), -1);
    before = m.n;
    assert_no_more_msgs(s, "p.x", &m, before);

    /* a channel and a pattern survive a reset: the next connection subscribes them again */
    ck_assert_int_eq(upstream_link_subscribe(sub, "c", 1), 0);
    ck_assert_int_eq(upstream_link_psubscribe(sub, "q.*", 3), 0);
    upstream_link_reset(sub, "test");
    /* changes while down are kept for the next connection */
    ck_assert_int_eq(upstream_link_subscribe(sub, "d", 1), 0);
    ck_assert(run_until(link_is_up, sub, WAIT_S));
    ck_assert_int_eq(sync_int(s, "PUBLISH c %s", "m"), 1);
    ck_assert_int_eq(sync_int(s, "PUBLISH d %s", "m"), 1);
    ck_assert_int_eq(sync_int(s, "PUBLISH q.1 %s", "m"), 1);
    wait_msgs(&m, before + 3);
    ASSERT_MSG(&m, "*4\r\n$8\r\npmessage\r\n$3\r\nq.*\r\n$3\r\nq.1\r\n$1\r\nm\r\n");

    /* not a subscriber: refused */
    struct upstream_link *data = link_up(&cfg);
    ck_assert_int_eq(upstream_link_subscribe(data, "a", 1), -1);
    ck_assert_int_eq(upstream_link_unsubscribe(data, "a", 1), -1);
    ck_assert_int_eq(upstream_link_psubscribe(data, "a", 1), -1);
    ck_assert_int_eq(upstream_link_punsubscribe(data, "a", 1), -1);
    ck_assert_uint_eq(upstream_link_subscriptions(data, false), 0);
    upstream_link_destroy(data);
    upstream_link_destroy(sub);

    /* unsubscribing from inside on_message */
    struct self_unsub u = { 0 };
    const char *once[] = { "once" };
    u.link = sub_up_cb(&cfg, once, 1, self_unsub_cb, &u, NULL);
    ck_assert_int_eq(sync_int(s, "PUBLISH once %s", "1"), 1);
    ck_assert_int_eq(sync_int(s, "PUBLISH once %s", "2"), 1);
    wait_msgs(&u.m, 1);
    assert_no_more_msgs(s, "once", &u.m, 1);
    ck_assert_uint_eq(upstream_link_subscriptions(u.link, false), 0);
    upstream_link_destroy(u.link);
    upstream_buf_free(&u.m.last);
    upstream_buf_free(&m.last);
}
END_TEST

START_TEST(test_sub_many_channels_and_auth)
{
    const char *extra[] = { "--requirepass", "s3cret", NULL };
    struct server_proc *s = server_start(extra);
    struct config_upstream cfg = base_cfg(s->port);
    cfg.password = "s3cret";
    char names[MANY_CHANNELS][16];
    const char *ch[MANY_CHANNELS + 1];
    for (int i = 0; i < MANY_CHANNELS; i++) {
        snprintf(names[i], sizeof(names[i]), "ch%d", i);
        ch[i] = names[i];
    }
    ch[MANY_CHANNELS] = names[0]; /* a duplicate is ignored */
    struct msgs m = { 0 };
    struct upstream_link *sub = sub_up(&cfg, ch, MANY_CHANNELS + 1, &m);
    ck_assert_uint_eq(upstream_link_subscriptions(sub, false), MANY_CHANNELS);
    /* UP only once every confirmation arrived: the last channel is live at once */
    redisReply *rr = sync_cmd(s, "s3cret", "PUBLISH ch%d x", MANY_CHANNELS - 1);
    ck_assert_ptr_nonnull(rr);
    ck_assert_int_eq(rr->integer, 1);
    freeReplyObject(rr);
    wait_msgs(&m, 1);
    upstream_link_destroy(sub);

    /* a wrong password: DOWN with the AUTH error, backing off */
    cfg.password = "wrong";
    sub = upstream_link_create_subscriber(fx.loop, &cfg, NULL, "sub", ch, 1, msgs_cb, &m);
    ck_assert(run_until(link_is_down, sub, WAIT_S));
    run_for(0.05);
    ck_assert_int_ne(upstream_link_state(sub), UPSTREAM_UP);
    ck_assert_msg(strncmp(upstream_link_last_error(sub), "AUTH failed: ", 13) == 0,
                  "last error: %s", upstream_link_last_error(sub));
    upstream_link_destroy(sub);
    upstream_buf_free(&m.last);
}
END_TEST

int main(void)
{
    Suite *su = suite_create("upstream_sub");
    TCase *fifo = tcase_create("fifo");
    tcase_add_test(fifo, test_fifo_mixed_deadlines);
    suite_add_tcase(su, fifo);

    TCase *tc = tcase_create("link");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_send_timeout_none_blpop);
    tcase_add_test(tc, test_send_timeout_longer_than_op);
    tcase_add_test(tc, test_hold_while_connecting);
    tcase_add_test(tc, test_hold_attempt_fails);
    tcase_add_test(tc, test_sub_client_id_and_invalidation);
    tcase_add_test(tc, test_sub_killed_new_id);
    tcase_add_test(tc, test_sub_closed_port_backoff);
    tcase_add_test(tc, test_sub_destroy_any_state);
    tcase_add_test(tc, test_sub_reset_from_on_message);
    tcase_add_test(tc, test_sub_dynamic);
    tcase_add_test(tc, test_sub_many_channels_and_auth);
    suite_add_tcase(su, tc);
    return fixture_run_suite(su);
}
