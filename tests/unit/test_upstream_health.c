/* Unit tests for subscriber health checks (upstream_link_set_sub_health, upstream/subscriber.c):
 * against a real redis-server started per test (upstream_fixture.h), every wait bounded.
 *
 * Covered: a healthy subscriber with checks every 30 ms stays UP on one connection (the pongs
 * are matched: no recycle) while messages still arrive, with the health pattern subscribed
 * upstream (CLIENT LIST psub=1) but not in the link's lists; hiredis keeps nothing per PING
 * (hundreds of checks, no growth of its sub.invalid queue); a stopped server (SIGSTOP) is
 * noticed within interval + op_timeout (DOWN, "health check" in the last error) and SIGCONT
 * brings the link back UP with a new id; without the call a stopped server goes unnoticed (the
 * default); turning checks on and off while UP; a caller's PSUBSCRIBE/PUNSUBSCRIBE of the same
 * name does not remove it upstream; the call is refused on a data link. Also the gate of a data
 * link (upstream_link_set_gate): held while closed, in order when opened, failed when the
 * connection is lost first. */
#define FIXTURE_NAME "test_upstream_health"
/* the fixture's helpers this suite does not need are static: not a mistake here */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#include "upstream_fixture.h"
#pragma GCC diagnostic pop

/* internal on purpose: one test looks at hiredis's sub.invalid queue of the link's context */
#include "upstream/link_internal.h"

#include <hiredis/async.h>

#define INTERVAL_MS 30
#define OP_MS 150

struct counts {
    int up, down, msgs;
};

static void counts_state_cb(void *arg, struct upstream_link *link, enum upstream_state st)
{
    (void)link;
    struct counts *c = arg;
    if (st == UPSTREAM_UP)
        c->up++;
    else
        c->down++;
}

static void counts_msg_cb(void *arg, struct upstream_link *link, const struct upstream_value *msg)
{
    (void)link;
    (void)msg;
    ((struct counts *)arg)->msgs++;
}

static struct config_upstream health_cfg(int port)
{
    struct config_upstream cfg = base_cfg(port);
    cfg.health_check_interval_ms = INTERVAL_MS;
    cfg.op_timeout_ms = OP_MS;
    cfg.connect_timeout_ms = OP_MS;
    cfg.reconnect_min_ms = 10;
    cfg.reconnect_max_ms = 50;
    return cfg;
}

static struct upstream_link *sub_up(const struct config_upstream *cfg, struct counts *c,
                                    bool health)
{
    const char *ch[] = { "chan" };
    struct upstream_link *sub =
        upstream_link_create_subscriber(fx.loop, cfg, NULL, "sub", ch, 1, counts_msg_cb, c);
    upstream_link_set_state_cb(sub, counts_state_cb, c);
    if (health)
        ck_assert_int_eq(upstream_link_set_sub_health(sub, true), 0);
    ck_assert(run_until(link_is_up, sub, WAIT_S));
    return sub;
}

/* The CLIENT LIST line of the subscriber's connection (caller frees). */
static char *client_line(const struct server_proc *s, const struct upstream_link *sub)
{
    char id[32];
    snprintf(id, sizeof(id), "%lld", upstream_link_client_id(sub));
    redisReply *rr = sync_cmd(s, NULL, "CLIENT LIST ID %s", id);
    ck_assert_ptr_nonnull(rr);
    ck_assert_int_eq(rr->type, REDIS_REPLY_STRING);
    char *line = strdup(rr->str);
    freeReplyObject(rr);
    return line;
}

static size_t invalid_queued(const struct upstream_link *sub)
{
    size_t n = 0;
    for (redisCallback *cb = sub->ac ? sub->ac->sub.invalid.head : NULL; cb && n < 1000000;
         cb = cb->next)
        n++;
    return n;
}

START_TEST(test_health_pongs_matched)
{
    struct server_proc *s = server_start(NULL);
    struct config_upstream cfg = health_cfg(s->port);
    struct counts c = { 0 };
    struct upstream_link *sub = sub_up(&cfg, &c, true);
    const struct upstream_stats *st = upstream_link_stats(sub);
    run_for(0.4);
    ck_assert_uint_ge(st->health_checks, 5);
    ck_assert_int_eq(upstream_link_state(sub), UPSTREAM_UP);
    ck_assert_int_eq(c.up, 1);
    ck_assert_int_eq(c.down, 0);
    ck_assert_uint_eq(st->connects, 1);
    ck_assert_uint_eq(st->disconnects, 0);
    ck_assert_uint_eq(st->messages, 0); /* pongs are not messages */
    ck_assert_uint_eq(invalid_queued(sub), 0);

    /* the pattern is subscribed upstream, but is not one of the caller's */
    char *line = client_line(s, sub);
    ck_assert_msg(strstr(line, " sub=1 psub=1 ") != NULL, "CLIENT LIST: %s", line);
    free(line);
    ck_assert_uint_eq(upstream_link_subscriptions(sub, true), 0);
    ck_assert_uint_eq(upstream_link_subscriptions(sub, false), 1);

    /* messages still come through, between pongs */
    for (int i = 0; i < 20; i++) {
        redisReply *rr = sync_cmd(s, NULL, "PUBLISH chan m%d", i);
        ck_assert_ptr_nonnull(rr);
        freeReplyObject(rr);
        run_for(0.01);
    }
    run_for(0.1);
    ck_assert_int_eq(c.msgs, 20);
    /* a message on the health name's channel is not the caller's */
    redisReply *rr = sync_cmd(s, NULL, "PUBLISH %s x", UPSTREAM_SUB_HEALTH_NAME);
    ck_assert_ptr_nonnull(rr);
    freeReplyObject(rr);
    run_for(0.1);
    ck_assert_int_eq(c.msgs, 20);
    ck_assert_int_eq(upstream_link_state(sub), UPSTREAM_UP);
    ck_assert_uint_eq(st->disconnects, 0);
    upstream_link_destroy(sub);
}
END_TEST

START_TEST(test_health_stopped_server)
{
    struct server_proc *s = server_start(NULL);
    struct config_upstream cfg = health_cfg(s->port);
    struct counts c = { 0 };
    struct upstream_link *sub = sub_up(&cfg, &c, true);
    long long id = upstream_link_client_id(sub);
    run_for(0.1);
    kill(s->pid, SIGSTOP);
    double t0 = now_s();
    ck_assert(run_until(link_is_down, sub, 2.0));
    double took = now_s() - t0;
    ck_assert_msg(took < (INTERVAL_MS + OP_MS) / 1000.0 + 0.3, "noticed after %.3fs", took);
    ck_assert_int_eq(c.down, 1);
    ck_assert_msg(strstr(upstream_link_last_error(sub), "health check") != NULL, "%s",
                  upstream_link_last_error(sub));
    ck_assert_uint_eq(upstream_link_stats(sub)->recycles, 1);
    kill(s->pid, SIGCONT);
    ck_assert(run_until(link_is_up, sub, WAIT_S));
    ck_assert_int_ne(upstream_link_client_id(sub), id);
    run_for(0.2);
    ck_assert_int_eq(upstream_link_state(sub), UPSTREAM_UP);
    upstream_link_destroy(sub);
}
END_TEST

START_TEST(test_health_off_by_default)
{
    struct server_proc *s = server_start(NULL);
    struct config_upstream cfg = health_cfg(s->port);
    struct counts c = { 0 };
    struct upstream_link *sub = sub_up(&cfg, &c, false);
    char *line = client_line(s, sub);
    ck_assert_msg(strstr(line, " sub=1 psub=0 ") != NULL, "CLIENT LIST: %s", line);
    free(line);
    kill(s->pid, SIGSTOP);
    run_for(0.5);
    ck_assert_int_eq(upstream_link_state(sub), UPSTREAM_UP); /* unnoticed */
    ck_assert_uint_eq(upstream_link_stats(sub)->health_checks, 0);
    kill(s->pid, SIGCONT);
    upstream_link_destroy(sub);
}
END_TEST

static bool psub_is(const struct server_proc *s, const struct upstream_link *sub, int n)
{
    char *line = client_line(s, sub);
    char want[32];
    snprintf(want, sizeof(want), " psub=%d ", n);
    bool ok = strstr(line, want) != NULL;
    free(line);
    return ok;
}

START_TEST(test_health_toggled_while_up)
{
    struct server_proc *s = server_start(NULL);
    struct config_upstream cfg = health_cfg(s->port);
    struct counts c = { 0 };
    struct upstream_link *sub = sub_up(&cfg, &c, false);
    const struct upstream_stats *st = upstream_link_stats(sub);
    ck_assert_int_eq(upstream_link_set_sub_health(sub, true), 0);
    run_for(0.3);
    ck_assert_uint_ge(st->health_checks, 3);
    ck_assert(psub_is(s, sub, 1));
    ck_assert_int_eq(upstream_link_state(sub), UPSTREAM_UP);

    /* a caller's own subscription of the same name: removing it keeps ours */
    ck_assert_int_eq(upstream_link_psubscribe(sub, UPSTREAM_SUB_HEALTH_NAME,
                                              strlen(UPSTREAM_SUB_HEALTH_NAME)), 0);
    run_for(0.05);
    ck_assert_int_eq(upstream_link_punsubscribe(sub, UPSTREAM_SUB_HEALTH_NAME,
                                                strlen(UPSTREAM_SUB_HEALTH_NAME)), 0);
    run_for(0.3);
    ck_assert(psub_is(s, sub, 1));
    ck_assert_int_eq(upstream_link_state(sub), UPSTREAM_UP);
    ck_assert_uint_eq(st->disconnects, 0);

    ck_assert_int_eq(upstream_link_set_sub_health(sub, false), 0);
    run_for(0.05);
    uint64_t checks = st->health_checks;
    run_for(0.2);
    ck_assert_uint_eq(st->health_checks, checks);
    ck_assert(psub_is(s, sub, 0));
    ck_assert_int_eq(upstream_link_state(sub), UPSTREAM_UP);
    ck_assert_uint_eq(st->disconnects, 0);
    upstream_link_destroy(sub);
}
END_TEST

/* The gate (upstream_link_set_gate): requests held while it is closed, written in order when it
 * opens; held ones fail with ERR_DOWN when the connection is lost first. */
START_TEST(test_gate_holds_until_open)
{
    struct server_proc *s = server_start(NULL);
    struct config_upstream cfg = health_cfg(s->port);
    cfg.health_check_interval_ms = 0;
    struct upstream_link *link = link_up(&cfg);
    struct rec a = { 0 }, b = { 0 };
    const char *incr[] = { "INCR", "n" };
    const size_t lens[] = { 4, 1 };
    upstream_link_set_gate(link, true);
    ck_assert_ptr_nonnull(upstream_link_send_argv(link, 2, incr, lens, rec_cb, &a));
    ck_assert_ptr_nonnull(upstream_link_send_argv(link, 2, incr, lens, rec_cb, &b));
    run_for(0.3); /* longer than op_timeout_ms: a held request has no deadline yet */
    ck_assert_int_eq(a.calls + b.calls, 0);
    ck_assert_uint_eq(upstream_link_in_flight(link), 2);
    ck_assert_uint_eq(upstream_link_stats(link)->requests, 0);
    upstream_link_set_gate(link, false);
    ck_assert(run_until(rec_done, &b, WAIT_S));
    ck_assert_int_eq(a.calls, 1);
    ASSERT_REPLY(&a, ":1\r\n");
    ASSERT_REPLY(&b, ":2\r\n");

    /* closed again, then the connection is lost: the held request fails, never written */
    rec_reset(&a);
    upstream_link_set_gate(link, true);
    ck_assert_ptr_nonnull(upstream_link_send_argv(link, 2, incr, lens, rec_cb, &a));
    upstream_link_reset(link, "test");
    ck_assert(run_until(rec_done, &a, WAIT_S));
    ck_assert_int_eq(a.status, UPSTREAM_ERR_DOWN);
    upstream_link_set_gate(link, false);
    ck_assert(run_until(link_is_up, link, WAIT_S));
    redisReply *rr = sync_cmd(s, NULL, "GET n");
    ck_assert_ptr_nonnull(rr);
    ck_assert_str_eq(rr->str, "2");
    freeReplyObject(rr);
    rec_free(&a);
    rec_free(&b);
    upstream_link_destroy(link);
}
END_TEST

START_TEST(test_health_refused_on_data_link)
{
    struct server_proc *s = server_start(NULL);
    struct config_upstream cfg = health_cfg(s->port);
    struct upstream_link *link = link_up(&cfg);
    ck_assert_int_eq(upstream_link_set_sub_health(link, true), -1);
    upstream_link_destroy(link);
}
END_TEST

int main(void)
{
    Suite *su = suite_create("upstream_health");
    TCase *tc = tcase_create("subscriber health");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_health_pongs_matched);
    tcase_add_test(tc, test_health_stopped_server);
    tcase_add_test(tc, test_health_off_by_default);
    tcase_add_test(tc, test_health_toggled_while_up);
    tcase_add_test(tc, test_health_refused_on_data_link);
    tcase_add_test(tc, test_gate_holds_until_open);
    suite_add_tcase(su, tc);
    return fixture_run_suite(su);
}
