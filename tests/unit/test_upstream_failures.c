/* Unit tests for upstream/link.c's failures, against a real redis-server through the fixture in
 * upstream_fixture.h (the rest of the link is test_upstream.c): the op timeout (DEBUG SLEEP:
 * TIMEOUT, DISCONNECTED for a later request, recycle, recovery); the server killed
 * (DISCONNECTED in flight, DOWN fast and never synchronous, reconnect with backoff, recovery on
 * restart, state callbacks); a stopped server (SIGSTOP: health check times out, handshake times
 * out, SIGCONT recovers); connect timeout to a full accept queue and handshake timeout to a
 * silent listener; refused at start; backoff growth and cap. */
#define FIXTURE_NAME "test_upstream_failures"
#include "upstream_fixture.h"

#include "conf/log.h"

START_TEST(test_op_timeout_recycles)
{
    struct upstream_link *link = link_up_new_server(100, NULL);
    struct rec slow = { 0 }, later = { 0 };
    const char *sleep[] = { "DEBUG", "SLEEP", "0.5" };
    size_t lens[] = { 5, 5, 3 };
    double t0 = now_s();
    upstream_link_send_argv(link, 3, sleep, lens, rec_cb, &slow);
    run_for(0.05);
    const char *ping[] = { "PING" };
    size_t plen = 4;
    upstream_link_send_argv(link, 1, ping, &plen, rec_cb, &later);
    ck_assert_int_eq(upstream_link_in_flight(link), 2);
    ck_assert(run_until(rec_done, &slow, WAIT_S));
    double took = now_s() - t0;
    ck_assert_msg(took >= 0.09 && took < 0.4, "timeout after %.3f s", took);
    ck_assert_int_eq(slow.status, UPSTREAM_ERR_TIMEOUT);
    ck_assert_msg(strstr(slow.reason, "timeout: no reply within 100 ms") != NULL, "%s",
                  slow.reason);
    /* the later request had time left: its reply was lost with the connection */
    ck_assert_int_eq(later.calls, 1);
    ck_assert_int_eq(later.status, UPSTREAM_ERR_DISCONNECTED);
    ck_assert_int_eq(upstream_link_in_flight(link), 0);
    const struct upstream_stats *st = upstream_link_stats(link);
    ck_assert_uint_eq(st->timeouts, 1);
    ck_assert_uint_eq(st->disconnected, 1);
    ck_assert_uint_eq(st->recycles, 1);
    ck_assert_uint_eq(st->disconnects, 1);
    /* the link comes back (once the server wakes up) and works */
    ck_assert(run_until(link_is_up, link, WAIT_S));
    struct rec r = { 0 };
    roundtrip_argv(link, 1, ping, &r);
    ASSERT_REPLY(&r, "+PONG\r\n");
    rec_free(&r);
    ck_assert_uint_eq(st->connects, 2);
    rec_free(&slow);
    rec_free(&later);
    upstream_link_destroy(link);
}
END_TEST

START_TEST(test_server_killed_and_restarted)
{
    struct server_proc *s = server_start(NULL);
    struct config_upstream cfg = base_cfg(s->port);
    cfg.op_timeout_ms = 5000;
    cfg.reconnect_min_ms = 20;
    cfg.reconnect_max_ms = 200;
    struct link_states states = { 0 };
    struct upstream_link *link = upstream_link_create(fx.loop, &cfg, NULL, "test");
    upstream_link_set_state_cb(link, link_states_cb, &states);
    ck_assert(run_until(link_is_up, link, WAIT_S));
    ck_assert_int_eq(states.up, 1);

    struct rec inflight[3];
    memset(inflight, 0, sizeof(inflight));
    const char *sleep[] = { "DEBUG", "SLEEP", "2" };
    size_t lens[] = { 5, 5, 1 };
    upstream_link_send_argv(link, 3, sleep, lens, rec_cb, &inflight[0]);
    const char *get[] = { "GET", "x" };
    size_t glens[] = { 3, 1 };
    upstream_link_send_argv(link, 2, get, glens, rec_cb, &inflight[1]);
    upstream_link_send_argv(link, 2, get, glens, rec_cb, &inflight[2]);
    run_for(0.1);
    ck_assert_int_eq(upstream_link_in_flight(link), 3);
    server_stop(s);
    ck_assert(run_until(rec_done, &inflight[2], WAIT_S));
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(inflight[i].calls, 1);
        ck_assert_int_eq(inflight[i].status, UPSTREAM_ERR_DISCONNECTED);
        ck_assert_msg(strncmp(inflight[i].reason, "closed: ", 8) == 0, "%s", inflight[i].reason);
    }
    ck_assert_int_eq(states.down, 1);
    ck_assert_int_eq(states.last, UPSTREAM_DOWN);

    /* while it is down: fail fast, never from inside send */
    run_for(0.3);
    ck_assert_int_ne(upstream_link_state(link), UPSTREAM_UP);
    struct rec down = { 0 };
    upstream_link_send_argv(link, 2, get, glens, rec_cb, &down);
    ck_assert_int_eq(down.calls, 0);
    double t0 = now_s();
    ck_assert(run_until(rec_done, &down, 1.0));
    ck_assert_msg(now_s() - t0 < 0.05, "fast failure took %.3f s", now_s() - t0);
    ck_assert_int_eq(down.status, UPSTREAM_ERR_DOWN);
    ck_assert_msg(strstr(down.reason, "connect: ") != NULL, "%s", down.reason);
    const struct upstream_stats *st = upstream_link_stats(link);
    uint64_t attempts = st->reconnect_attempts;
    ck_assert_uint_ge(attempts, 2);
    ck_assert_uint_le(attempts, 20);

    /* the same port comes back: the link reconnects by itself */
    server_start_on(s, false, NULL);
    ck_assert(run_until(link_is_up, link, WAIT_S));
    ck_assert_int_eq(states.up, 2);
    struct rec r = { 0 };
    const char *set[] = { "SET", "x", "back" };
    roundtrip_argv(link, 3, set, &r);
    ASSERT_REPLY(&r, "+OK\r\n");
    roundtrip_argv(link, 2, get, &r);
    ASSERT_REPLY(&r, "$4\r\nback\r\n");
    rec_free(&r);
    ck_assert_uint_eq(st->connects, 2);
    ck_assert_uint_eq(st->disconnects, 1);
    ck_assert_uint_eq(st->disconnected, 3);
    ck_assert_uint_eq(st->failed_down, 1);
    ck_assert_int_eq(upstream_link_backoff_ms(link), 20); /* reset by the handshake */
    for (int i = 0; i < 3; i++)
        rec_free(&inflight[i]);
    rec_free(&down);
    upstream_link_destroy(link);
}
END_TEST

/* A server that stops answering (SIGSTOP) with its sockets open: the health check's PING times
 * out and recycles the link; reconnects complete TCP (the kernel accepts) but the handshake
 * times out; SIGCONT brings it back. */
START_TEST(test_stopped_server_health_check)
{
    struct server_proc *s = server_start(NULL);
    struct config_upstream cfg = base_cfg(s->port);
    cfg.op_timeout_ms = 150;
    cfg.connect_timeout_ms = 150;
    cfg.health_check_interval_ms = 30;
    cfg.reconnect_min_ms = 10;
    cfg.reconnect_max_ms = 50;
    struct upstream_link *link = link_up(&cfg);
    run_for(0.2);
    const struct upstream_stats *st = upstream_link_stats(link);
    ck_assert_uint_ge(st->health_checks, 3);
    ck_assert_int_eq(upstream_link_state(link), UPSTREAM_UP);
    ck_assert_uint_eq(st->requests, 0); /* health checks are not callers' requests */

    kill(s->pid, SIGSTOP);
    ck_assert(run_until(link_is_down, link, 2.0));
    ck_assert_uint_eq(st->recycles, 1);
    ck_assert_uint_eq(st->timeouts, 0); /* the PING was the link's own */
    ck_assert_msg(strstr(upstream_link_last_error(link), "timeout") != NULL, "%s",
                  upstream_link_last_error(link));
    run_for(0.5);
    ck_assert_int_ne(upstream_link_state(link), UPSTREAM_UP);
    ck_assert_uint_ge(st->connect_failures, 1);
    ck_assert_msg(strstr(upstream_link_last_error(link), "timeout") != NULL, "%s",
                  upstream_link_last_error(link));
    kill(s->pid, SIGCONT);
    ck_assert(run_until(link_is_up, link, WAIT_S));
    struct rec r = { 0 };
    const char *ping[] = { "PING" };
    roundtrip_argv(link, 1, ping, &r);
    ASSERT_REPLY(&r, "+PONG\r\n");
    rec_free(&r);
    upstream_link_destroy(link);
}
END_TEST

START_TEST(test_connect_timeout_full_backlog)
{
    int port = silent_listener(true);
    struct config_upstream cfg = base_cfg(port);
    cfg.connect_timeout_ms = 150;
    cfg.reconnect_min_ms = 1000; /* one attempt in this test */
    cfg.reconnect_max_ms = 1000;
    struct upstream_link *link = upstream_link_create(fx.loop, &cfg, NULL, "test");
    ck_assert_int_eq(upstream_link_state(link), UPSTREAM_CONNECTING);
    struct rec r = { 0 };
    const char *ping[] = { "PING" };
    size_t plen = 4;
    upstream_link_send_argv(link, 1, ping, &plen, rec_cb, &r);
    ck_assert(run_until(rec_done, &r, 0.5));
    ck_assert_int_eq(r.status, UPSTREAM_ERR_DOWN);
    ck_assert_str_eq(r.reason, "connecting");
    double t0 = now_s();
    ck_assert(run_until(link_is_down, link, 2.0));
    double took = now_s() - t0;
    ck_assert_msg(took < 0.5, "connect timeout after %.3f s", took);
    ck_assert_str_eq(upstream_link_last_error(link), "connect timeout (150 ms, connecting)");
    ck_assert_uint_eq(upstream_link_stats(link)->connect_failures, 1);
    rec_free(&r);
    upstream_link_destroy(link);
}
END_TEST

START_TEST(test_handshake_timeout_silent_listener)
{
    int port = silent_listener(false);
    struct config_upstream cfg = base_cfg(port);
    cfg.connect_timeout_ms = 150;
    cfg.reconnect_min_ms = 1000;
    cfg.reconnect_max_ms = 1000;
    struct upstream_link *link = upstream_link_create(fx.loop, &cfg, NULL, "test");
    ck_assert(run_until(link_is_down, link, 2.0));
    ck_assert_str_eq(upstream_link_last_error(link), "connect timeout (150 ms, handshake)");
    ck_assert_uint_eq(upstream_link_stats(link)->connects, 0);
    upstream_link_destroy(link);
}
END_TEST

START_TEST(test_refused_backoff)
{
    int port = free_port(); /* nothing listens there */
    struct config_upstream cfg = base_cfg(port);
    cfg.reconnect_min_ms = 10;
    cfg.reconnect_max_ms = 80;
    char *logbuf = NULL;
    size_t loglen = 0;
    FILE *logf = open_memstream(&logbuf, &loglen);
    struct logger lg = { .level = LOG_NOTICE, .out = logf };
    struct upstream_link *link = upstream_link_create(fx.loop, &cfg, &lg, "data-0");
    ck_assert(run_until(link_is_down, link, 1.0));
    ck_assert_msg(strcmp(upstream_link_last_error(link), "connect: Connection refused") == 0,
                  "%s", upstream_link_last_error(link));
    run_for(0.6);
    const struct upstream_stats *st = upstream_link_stats(link);
    /* delays 5-10, 10-20, 20-40, 40-80, then 40-80 each: 8..18 attempts in 0.6 s */
    ck_assert_msg(st->connect_attempts >= 6 && st->connect_attempts <= 20, "%llu attempts",
                  (unsigned long long)st->connect_attempts);
    ck_assert_uint_eq(st->connect_failures, st->connect_attempts - (upstream_link_state(link) ==
                                                                    UPSTREAM_DOWN ? 0 : 1));
    ck_assert_int_eq(upstream_link_backoff_ms(link), 80);
    upstream_link_destroy(link);
    fclose(logf);
    /* the same failure is logged once at warning level, not on every attempt */
    int lines = 0;
    for (const char *p = logbuf; (p = strstr(p, "Connection refused")) != NULL; p++)
        lines++;
    ck_assert_int_eq(lines, 1);
    ck_assert_msg(strstr(logbuf, "upstream data-0 (127.0.0.1:") != NULL, "%s", logbuf);
    free(logbuf);
}
END_TEST

int main(void)
{
    Suite *su = suite_create("upstream_failures");
    TCase *tc = tcase_create("link_failures");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_op_timeout_recycles);
    tcase_add_test(tc, test_server_killed_and_restarted);
    tcase_add_test(tc, test_stopped_server_health_check);
    tcase_add_test(tc, test_connect_timeout_full_backlog);
    tcase_add_test(tc, test_handshake_timeout_silent_listener);
    tcase_add_test(tc, test_refused_backoff);
    suite_add_tcase(su, tc);
    return fixture_run_suite(su);
}
