/* Unit tests for the blocked-client registry (proxy/blocking.h) on a minimal server (a libev
 * loop, a store, the registry) and fake clients without sockets: FIFO order of waiters, a key
 * named twice counting once, type mismatch skipped, a serve that moves into another waited key
 * (the chain is served in the same call), a ready key whose waiters are gone, timeouts fired by
 * the loop, CLIENT UNBLOCK's two answers, clients freed while blocked or queued to resume, the
 * timeout argument's parsing (Redis 7.0's rounding and errors) and the byte accounting returning
 * to its baseline. Replies are read from each fake client's output buffer. */
#include "cache/list.h"
#include "cache/store.h"
#include "conf/config.h"
#include "conf/xmalloc.h"
#include "proxy/blocking.h"
#include "proxy/client.h"
#include "proxy/cmd_list.h"
#include "proxy/multi.h"
#include "proxy/pubsub.h"
#include "proxy/reply.h"
#include "proxy/server.h"

#include <check.h>
#include <ev.h>
#include <stdlib.h>
#include <string.h>

#define LOOP_ROUNDS_MAX 1000 /* ev_run(EVRUN_ONCE) rounds while waiting for a timer */

struct fixture {
    struct server srv;
};

static void fixture_init(struct fixture *f)
{
    memset(f, 0, sizeof(*f));
    struct server *srv = &f->srv;
    config_init_defaults(&srv->cfg);
    srv->loop = ev_loop_new(EVFLAG_AUTO);
    struct store_options so = { .databases = 16 };
    memset(so.seed, 7, sizeof(so.seed));
    srv->store = store_create(&so);
    server_register_types(srv->store);
    uint8_t seed[16];
    memset(seed, 3, sizeof(seed));
    srv->watches = multi_watches_create(srv->store, seed);
    srv->pubsub = pubsub_create(seed);
    srv->blocking = blocking_create(seed);
    srv->log.out = stderr;
}

static void fixture_free(struct fixture *f)
{
    struct server *srv = &f->srv;
    while (srv->clients)
        client_free(srv->clients);
    ck_assert_uint_eq(srv->blocked_clients, 0);
    ck_assert_uint_eq(srv->blocked_clients_timeout, 0);
    ck_assert_uint_eq(blocking_keys(srv->blocking), 0);
    blocking_destroy(srv->blocking);
    multi_watches_destroy(srv->watches);
    pubsub_destroy(srv->pubsub);
    store_destroy(srv->store);
    ev_loop_destroy(srv->loop);
    config_free(&srv->cfg);
}

/* A client with no socket (fd -1), linked into the server like a real one. */
static struct client *fake_client(struct server *srv)
{
    struct client *c = xcalloc(1, sizeof(*c));
    c->srv = srv;
    c->id = ++srv->next_client_id;
    c->fd = -1;
    c->resp = 2;
    c->authenticated = true;
    resp_parser_init(&c->parser);
    c->next = srv->clients;
    if (srv->clients)
        srv->clients->prev = c;
    srv->clients = c;
    srv->nclients++;
    return c;
}

/* The client's output as a NUL-terminated string (then cleared). */
static char *take_out(struct client *c, char *buf, size_t cap)
{
    size_t n = c->out.len < cap - 1 ? c->out.len : cap - 1;
    memcpy(buf, c->out.data ? c->out.data : "", n);
    buf[n] = '\0';
    c->out.len = 0;
    return buf;
}

static void push_list(struct server *srv, const char *key, const char *const *elems, size_t n)
{
    struct list *l = list_new();
    for (size_t i = 0; i < n; i++)
        list_push(l, LIST_TAIL, elems[i], strlen(elems[i]));
    struct store_entry *e = store_find(srv->store, 0, key, strlen(key), server_now_ms(srv), 0);
    ck_assert_ptr_null(e);
    store_add_value(srv->store, 0, key, strlen(key), STORE_LIST, l, server_now_ms(srv));
    blocking_signal_key(srv, 0, key, strlen(key));
}

static struct resp_arg arg(const char *s)
{
    struct resp_arg a = { s, strlen(s) };
    return a;
}

/* ---- serve callbacks for the tests ---- */

static bool serve_pop(struct client *c, struct store_entry *e, const struct blocking_args *a)
{
    list_pop_and_reply(c, e, (enum list_where)a->where, 1, LIST_POP_KEY_ELEMENT);
    return true;
}

static bool serve_move(struct client *c, struct store_entry *e, const struct blocking_args *a)
{
    list_move_and_reply(c, store_entry_key(e), store_entry_klen(e), (enum list_where)a->where,
                        a->target, a->target_len, (enum list_where)a->whereto);
    return true;
}

static bool serve_never(struct client *c, struct store_entry *e, const struct blocking_args *a)
{
    (void)c;
    (void)e;
    (void)a;
    return false;
}

static void timeout_bulk(struct client *c, const struct blocking_args *a)
{
    (void)a;
    reply_null(c);
}

static const struct blocking_ops pop_ops = { STORE_LIST, serve_pop, NULL };
static const struct blocking_ops move_ops = { STORE_LIST, serve_move, timeout_bulk };
static const struct blocking_ops zset_ops = { STORE_ZSET, serve_never, NULL };
static const struct blocking_ops never_ops = { STORE_LIST, serve_never, NULL };

static void block_on(struct client *c, const char *const *keys, size_t n, int64_t deadline,
                     const struct blocking_ops *ops, const struct blocking_args *a)
{
    struct resp_arg args[8];
    ck_assert_uint_le(n, 8);
    for (size_t i = 0; i < n; i++)
        args[i] = arg(keys[i]);
    blocking_block(c, args, n, deadline, ops, a);
    ck_assert(c->flags & CLIENT_BLOCKED);
}

static const struct blocking_args head_pop = { .where = LIST_HEAD, .count = -1 };

/* ---- tests ---- */

START_TEST(test_fifo_and_duplicate_keys)
{
    struct fixture f;
    fixture_init(&f);
    struct server *srv = &f.srv;
    size_t base = blocking_bytes(srv->blocking);
    struct client *c1 = fake_client(srv), *c2 = fake_client(srv), *c3 = fake_client(srv);
    const char *k1[] = { "q", "q", "other" }, *k2[] = { "q" }, *k3[] = { "x", "q" };
    block_on(c1, k1, 3, 0, &pop_ops, &head_pop);
    block_on(c2, k2, 1, 0, &pop_ops, &head_pop);
    block_on(c3, k3, 2, 0, &pop_ops, &head_pop);
    ck_assert_uint_eq(srv->blocked_clients, 3);
    ck_assert_uint_eq(blocking_keys(srv->blocking), 3);
    ck_assert(blocking_bytes(srv->blocking) > base);

    const char *elems[] = { "a", "b" };
    push_list(srv, "q", elems, 2);
    blocking_signal_key(srv, 0, "q", 1); /* a second signal queues nothing more */
    blocking_serve_ready(srv);
    char buf[256];
    ck_assert_str_eq(take_out(c1, buf, sizeof(buf)), "*2\r\n$1\r\nq\r\n$1\r\na\r\n");
    ck_assert_str_eq(take_out(c2, buf, sizeof(buf)), "*2\r\n$1\r\nq\r\n$1\r\nb\r\n");
    ck_assert_str_eq(take_out(c3, buf, sizeof(buf)), "");
    ck_assert(!(c1->flags & CLIENT_BLOCKED) && (c1->flags & CLIENT_UNBLOCKED));
    ck_assert(c3->flags & CLIENT_BLOCKED);
    ck_assert_uint_eq(srv->blocked_clients, 1);
    ck_assert_uint_eq(blocking_keys(srv->blocking), 2); /* x and q (c3) */
    ck_assert_ptr_null(store_find(srv->store, 0, "q", 1, server_now_ms(srv), 0));
    ck_assert_uint_eq(srv->stats.commands_processed, 2);

    blocking_resume_clients(srv);
    ck_assert(!(c1->flags & CLIENT_UNBLOCKED));
    ck_assert(!blocking_work_pending(srv));

    const char *e2[] = { "z" };
    push_list(srv, "x", e2, 1);
    blocking_serve_ready(srv);
    ck_assert_str_eq(take_out(c3, buf, sizeof(buf)), "*2\r\n$1\r\nx\r\n$1\r\nz\r\n");
    ck_assert_uint_eq(blocking_keys(srv->blocking), 0);
    blocking_resume_clients(srv);
    ck_assert_uint_eq(blocking_bytes(srv->blocking), base);
    fixture_free(&f);
}
END_TEST

START_TEST(test_type_mismatch_and_unserved)
{
    struct fixture f;
    fixture_init(&f);
    struct server *srv = &f.srv;
    struct client *z = fake_client(srv), *n = fake_client(srv), *l = fake_client(srv);
    const char *k[] = { "k" };
    block_on(z, k, 1, 0, &zset_ops, &head_pop);  /* waits for a sorted set */
    block_on(n, k, 1, 0, &never_ops, &head_pop); /* declines to be served */
    block_on(l, k, 1, 0, &pop_ops, &head_pop);
    const char *elems[] = { "v" };
    push_list(srv, "k", elems, 1);
    blocking_serve_ready(srv);
    char buf[128];
    ck_assert_str_eq(take_out(l, buf, sizeof(buf)), "*2\r\n$1\r\nk\r\n$1\r\nv\r\n");
    ck_assert(z->flags & CLIENT_BLOCKED);
    ck_assert(n->flags & CLIENT_BLOCKED);
    ck_assert_uint_eq(srv->blocked_clients, 2);
    /* A client freed while blocked leaves every queue. */
    client_free(z);
    client_free(n);
    ck_assert_uint_eq(srv->blocked_clients, 0);
    ck_assert_uint_eq(blocking_keys(srv->blocking), 0);
    /* A ready key whose waiters are all gone is skipped. */
    const char *k2[] = { "gone" };
    struct client *g = fake_client(srv);
    block_on(g, k2, 1, 0, &pop_ops, &head_pop);
    blocking_signal_key(srv, 0, "gone", 4);
    client_close(g); /* closing: off the queues at once, freed later */
    ck_assert(!(g->flags & CLIENT_BLOCKED));
    blocking_serve_ready(srv);
    blocking_resume_clients(srv); /* l, answered above */
    ck_assert(!blocking_work_pending(srv));
    fixture_free(&f);
}
END_TEST

START_TEST(test_move_chain_served_in_one_call)
{
    struct fixture f;
    fixture_init(&f);
    struct server *srv = &f.srv;
    struct client *a = fake_client(srv), *b = fake_client(srv), *c = fake_client(srv);
    const char *s1[] = { "s1" }, *s2[] = { "s2" }, *s3[] = { "s3" };
    struct blocking_args m12 = { .where = LIST_HEAD, .whereto = LIST_TAIL, .count = -1,
                                 .target = "s2", .target_len = 2 };
    struct blocking_args m23 = { .where = LIST_TAIL, .whereto = LIST_HEAD, .count = -1,
                                 .target = "s3", .target_len = 2 };
    block_on(a, s1, 1, 0, &move_ops, &m12);
    block_on(b, s2, 1, 0, &move_ops, &m23);
    block_on(c, s3, 1, 0, &pop_ops, &head_pop);
    const char *elems[] = { "v", "w" };
    push_list(srv, "s1", elems, 2);
    blocking_serve_ready(srv);
    char buf[128];
    ck_assert_str_eq(take_out(a, buf, sizeof(buf)), "$1\r\nv\r\n");
    ck_assert_str_eq(take_out(b, buf, sizeof(buf)), "$1\r\nv\r\n");
    ck_assert_str_eq(take_out(c, buf, sizeof(buf)), "*2\r\n$2\r\ns3\r\n$1\r\nv\r\n");
    ck_assert_uint_eq(srv->blocked_clients, 0);
    ck_assert_ptr_null(store_find(srv->store, 0, "s2", 2, server_now_ms(srv), 0));
    ck_assert_ptr_nonnull(store_find(srv->store, 0, "s1", 2, server_now_ms(srv), 0));
    blocking_resume_clients(srv);
    fixture_free(&f);
}
END_TEST

static void run_until_unblocked(struct server *srv, struct client *c)
{
    for (int i = 0; i < LOOP_ROUNDS_MAX && (c->flags & CLIENT_BLOCKED); i++)
        ev_run(srv->loop, EVRUN_ONCE);
}

START_TEST(test_timeouts_and_unblock)
{
    struct fixture f;
    fixture_init(&f);
    struct server *srv = &f.srv;
    ev_now_update(srv->loop);
    int64_t now = server_now_ms(srv);
    struct client *p = fake_client(srv), *m = fake_client(srv), *forever = fake_client(srv);
    const char *k[] = { "k" };
    struct blocking_args mv = { .where = LIST_HEAD, .whereto = LIST_TAIL, .count = -1,
                                .target = "d", .target_len = 1 };
    block_on(p, k, 1, now + 20, &pop_ops, &head_pop);
    block_on(m, k, 1, now + 30, &move_ops, &mv);
    block_on(forever, k, 1, 0, &pop_ops, &head_pop);
    ck_assert_uint_eq(srv->blocked_clients, 3);
    ck_assert_uint_eq(srv->blocked_clients_timeout, 2);
    run_until_unblocked(srv, p);
    run_until_unblocked(srv, m);
    char buf[128];
    ck_assert_str_eq(take_out(p, buf, sizeof(buf)), "*-1\r\n"); /* the default: null array */
    ck_assert_str_eq(take_out(m, buf, sizeof(buf)), "$-1\r\n"); /* ops->timeout */
    ck_assert_uint_eq(srv->blocked_clients, 1);
    ck_assert_uint_eq(srv->blocked_clients_timeout, 0);
    ck_assert(forever->flags & CLIENT_BLOCKED);

    forever->resp = 3;
    blocking_unblock_client(forever, false);
    ck_assert_str_eq(take_out(forever, buf, sizeof(buf)), "_\r\n");
    blocking_unblock_client(forever, false); /* not blocked: nothing */
    ck_assert_str_eq(take_out(forever, buf, sizeof(buf)), "");
    block_on(forever, k, 1, now + 100000, &pop_ops, &head_pop);
    blocking_unblock_client(forever, true);
    ck_assert_str_eq(take_out(forever, buf, sizeof(buf)),
                     "-UNBLOCKED client unblocked via CLIENT UNBLOCK\r\n");
    /* CLIENT REPLY OFF drops the late answer too. */
    block_on(forever, k, 1, 0, &pop_ops, &head_pop);
    forever->flags |= CLIENT_REPLY_OFF;
    blocking_unblock_client(forever, false);
    ck_assert_str_eq(take_out(forever, buf, sizeof(buf)), "");
    /* Freed while queued to resume: it leaves the queue. */
    ck_assert(forever->flags & CLIENT_UNBLOCKED);
    client_free(forever);
    blocking_resume_clients(srv);
    ck_assert(!blocking_work_pending(srv));
    /* Freed while blocked with an armed timer: the timer is stopped. */
    struct client *t = fake_client(srv);
    block_on(t, k, 1, now + 5, &pop_ops, &head_pop);
    client_free(t);
    ck_assert_uint_eq(srv->blocked_clients_timeout, 0);
    for (int i = 0; i < 3; i++)
        ev_run(srv->loop, EVRUN_NOWAIT);
    fixture_free(&f);
}
END_TEST

/* blocking_timeout_or_reply on one argument: the deadline relative to now, or -1 on error
 * (the reply left in buf). */
static long long parse_timeout(struct client *c, const char *text, size_t len, char *buf,
                               size_t cap)
{
    struct resp_arg a[2] = { { "blpop", 5 }, { text, len } };
    c->argv = a;
    c->argc = 2;
    int64_t deadline = -7;
    bool ok = blocking_timeout_or_reply(c, 1, &deadline);
    c->argv = NULL;
    c->argc = 0;
    take_out(c, buf, cap);
    if (!ok)
        return -1;
    return deadline == 0 ? 0 : deadline - server_now_ms(c->srv);
}

START_TEST(test_timeout_parsing)
{
    struct fixture f;
    fixture_init(&f);
    struct server *srv = &f.srv;
    struct client *c = fake_client(srv);
    char buf[128];
    static const struct {
        const char *text;
        long long ms; /* -1: error */
        const char *err;
    } cases[] = {
        { "0", 0, NULL },         { "1", 1000, NULL },       { "0.1", 100, NULL },
        { "1.5", 1500, NULL },    { "0.0001", 1, NULL },     { "1e-9", 1, NULL },
        { "-0.0001", 0, NULL },   { "-0", 0, NULL },         { "0x10", 16000, NULL },
        { ".5", 500, NULL },      { "1e3", 1000000, NULL },  { "0.0015", 2, NULL },
        { "9223372036854775", 0, NULL }, /* the deadline overflows: never */
        { "abc", -1, "-ERR timeout is not a float or out of range\r\n" },
        { "", -1, "-ERR timeout is not a float or out of range\r\n" },
        { " 1", -1, "-ERR timeout is not a float or out of range\r\n" },
        { "1 ", -1, "-ERR timeout is not a float or out of range\r\n" },
        { "nan", -1, "-ERR timeout is not a float or out of range\r\n" },
        { "-1", -1, "-ERR timeout is negative\r\n" },
        { "inf", -1, "-ERR timeout is negative\r\n" },
        { "-inf", -1, "-ERR timeout is negative\r\n" },
        { "1e16", -1, "-ERR timeout is negative\r\n" },
        { "9223372036854776", -1, "-ERR timeout is negative\r\n" },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        long long got = parse_timeout(c, cases[i].text, strlen(cases[i].text), buf, sizeof(buf));
        ck_assert_msg(got == cases[i].ms, "%s: %lld, want %lld", cases[i].text, got,
                      cases[i].ms);
        ck_assert_str_eq(buf, cases[i].err ? cases[i].err : "");
    }
    ck_assert_int_eq(parse_timeout(c, "1\0x", 3, buf, sizeof(buf)), -1);
    /* Inside MULTI a command must not block. */
    ck_assert(blocking_allowed(c));
    c->flags |= CLIENT_MULTI;
    ck_assert(!blocking_allowed(c));
    c->flags &= ~CLIENT_MULTI;
    fixture_free(&f);
}
END_TEST

START_TEST(test_many_waiters_table_grows_and_shrinks)
{
    struct fixture f;
    fixture_init(&f);
    struct server *srv = &f.srv;
    size_t base = blocking_bytes(srv->blocking);
    enum { N = 300 };
    struct client *cs[N];
    char names[N][16];
    for (int i = 0; i < N; i++) {
        cs[i] = fake_client(srv);
        snprintf(names[i], sizeof(names[i]), "key:%d", i);
        const char *keys[] = { names[i], "shared" };
        block_on(cs[i], keys, 2, 0, &pop_ops, &head_pop);
    }
    ck_assert_uint_eq(blocking_keys(srv->blocking), N + 1);
    const char *elems[N];
    for (int i = 0; i < N; i++)
        elems[i] = names[N - 1 - i];
    push_list(srv, "shared", elems, N);
    blocking_serve_ready(srv);
    char buf[64], want[64];
    for (int i = 0; i < N; i++) {
        snprintf(want, sizeof(want), "*2\r\n$6\r\nshared\r\n$%zu\r\n%s\r\n",
                 strlen(names[N - 1 - i]), names[N - 1 - i]);
        ck_assert_str_eq(take_out(cs[i], buf, sizeof(buf)), want);
    }
    ck_assert_uint_eq(blocking_keys(srv->blocking), 0);
    blocking_resume_clients(srv);
    ck_assert_uint_eq(blocking_bytes(srv->blocking), base);
    fixture_free(&f);
}
END_TEST

int main(void)
{
    Suite *su = suite_create("blocking");
    TCase *tc = tcase_create("blocking");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_fifo_and_duplicate_keys);
    tcase_add_test(tc, test_type_mismatch_and_unserved);
    tcase_add_test(tc, test_move_chain_served_in_one_call);
    tcase_add_test(tc, test_timeouts_and_unblock);
    tcase_add_test(tc, test_timeout_parsing);
    tcase_add_test(tc, test_many_waiters_table_grows_and_shrinks);
    suite_add_tcase(su, tc);
    SRunner *sr = srunner_create(su);
    srunner_run_all(sr, CK_ENV);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
