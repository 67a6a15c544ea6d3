/* Unit tests for the pure parts of the operations code: the latency histogram of
 * proxy/cmdstats.c (bucket search against a plain linear search, percentiles, the cumulative
 * counts Prometheus gets), the per-command rows built from the real command index (names as
 * Redis 7 spells them, "client|id", the "upstream" row, reset), and the admin port's HTTP
 * request parser (proxy/admin_http.c): whole requests, every split point, and the refusals.
 * Every parser call gets an exact-size heap copy, so ASan catches a read past the end. */
#include "proxy/admin_http.h"
#include "proxy/cmdstats.h"
#include "proxy/command.h"

#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- histogram ---- */

static size_t bucket_linear(uint64_t ns)
{
    size_t i = 0;
    while (i < CMDSTATS_BOUNDS && cmdstats_bucket_upper_ns(i) < ns)
        i++;
    return i;
}

START_TEST(test_bounds_sorted)
{
    ck_assert_uint_eq(cmdstats_bucket_upper_ns(0), 1000);
    ck_assert_uint_eq(cmdstats_bucket_upper_ns(CMDSTATS_BOUNDS - 1), 10000000000ull);
    for (size_t i = 1; i < CMDSTATS_BOUNDS; i++) {
        uint64_t a = cmdstats_bucket_upper_ns(i - 1), b = cmdstats_bucket_upper_ns(i);
        ck_assert_uint_lt(a, b);
        ck_assert_msg(b * 3 <= a * 4 + a / 1000, "bucket %zu wider than 1/3: %llu -> %llu", i,
                      (unsigned long long)a, (unsigned long long)b);
    }
}
END_TEST

START_TEST(test_bucket_of_matches_linear)
{
    for (size_t i = 0; i < CMDSTATS_BOUNDS; i++) {
        uint64_t b = cmdstats_bucket_upper_ns(i);
        for (int d = -2; d <= 2; d++)
            ck_assert_uint_eq(cmdstats_bucket_of(b + (uint64_t)(int64_t)d),
                              bucket_linear(b + (uint64_t)(int64_t)d));
    }
    for (int k = 0; k < 64; k++) {
        uint64_t p = 1ull << k;
        ck_assert_uint_eq(cmdstats_bucket_of(p), bucket_linear(p));
        ck_assert_uint_eq(cmdstats_bucket_of(p - 1), bucket_linear(p - 1));
        ck_assert_uint_eq(cmdstats_bucket_of(p + 1), bucket_linear(p + 1));
    }
    uint64_t x = 88172645463325252ull;
    for (int n = 0; n < 200000; n++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        uint64_t v = x >> (x & 63);
        ck_assert_uint_eq(cmdstats_bucket_of(v), bucket_linear(v));
    }
    ck_assert_uint_eq(cmdstats_bucket_of(0), 0);
    ck_assert_uint_eq(cmdstats_bucket_of(UINT64_MAX), CMDSTATS_BOUNDS);
}
END_TEST

START_TEST(test_percentiles)
{
    struct cmdstats_hist h;
    memset(&h, 0, sizeof(h));
    ck_assert(cmdstats_hist_percentile_us(&h, 50) == 0.0);
    cmdstats_hist_add(&h, 4500); /* one value: every percentile is that value */
    ck_assert(fabs(cmdstats_hist_percentile_us(&h, 50) - 4.5) < 1e-9);
    ck_assert(fabs(cmdstats_hist_percentile_us(&h, 99.9) - 4.5) < 1e-9);

    memset(&h, 0, sizeof(h));
    for (uint64_t us = 1; us <= 1000; us++) /* 1..1000 us, uniform */
        cmdstats_hist_add(&h, us * 1000);
    ck_assert_uint_eq(h.count, 1000);
    ck_assert_uint_eq(h.max_ns, 1000000);
    double p50 = cmdstats_hist_percentile_us(&h, 50);
    double p99 = cmdstats_hist_percentile_us(&h, 99);
    ck_assert_msg(p50 >= 400 && p50 <= 500, "p50 %.3f", p50); /* inside (400, 500] */
    ck_assert_msg(p99 >= 800 && p99 <= 1000, "p99 %.3f", p99);
    ck_assert(cmdstats_hist_percentile_us(&h, 100) <= 1000.0 + 1e-9);
    ck_assert(cmdstats_hist_percentile_us(&h, 99.9) <= 1000.0 + 1e-9);
    ck_assert(cmdstats_hist_percentile_us(&h, 50) <= cmdstats_hist_percentile_us(&h, 99));

    /* Above the last bound: bounded by the largest value seen. */
    memset(&h, 0, sizeof(h));
    cmdstats_hist_add(&h, 30000000000ull);
    ck_assert_uint_eq(h.bucket[CMDSTATS_BUCKETS - 1], 1);
    ck_assert(fabs(cmdstats_hist_percentile_us(&h, 50) - 30000000.0) < 1e-6);
}
END_TEST

START_TEST(test_count_le)
{
    struct cmdstats_hist h;
    memset(&h, 0, sizeof(h));
    cmdstats_hist_add(&h, 500);      /* <= 1 us */
    cmdstats_hist_add(&h, 1000);     /* <= 1 us (bounds are inclusive) */
    cmdstats_hist_add(&h, 1001);     /* <= 2 us */
    cmdstats_hist_add(&h, 5000000);  /* <= 5 ms */
    cmdstats_hist_add(&h, 20000000000ull); /* +Inf only */
    ck_assert_uint_eq(cmdstats_hist_count_le(&h, 1000), 2);
    ck_assert_uint_eq(cmdstats_hist_count_le(&h, 2000), 3);
    ck_assert_uint_eq(cmdstats_hist_count_le(&h, 4000000), 3);
    ck_assert_uint_eq(cmdstats_hist_count_le(&h, 5000000), 4);
    ck_assert_uint_eq(cmdstats_hist_count_le(&h, 10000000000ull), 4);
    ck_assert_uint_eq(h.count, 5);
    ck_assert_uint_eq(h.sum_ns, 500 + 1000 + 1001 + 5000000 + 20000000000ull);
}
END_TEST

/* ---- rows ---- */

static const struct cmdstat *row_named(const struct cmdstats *cs, const char *name)
{
    for (size_t i = 0; i < cmdstats_count(cs); i++)
        if (strcmp(cmdstats_at(cs, i)->name, name) == 0)
            return cmdstats_at(cs, i);
    return NULL;
}

START_TEST(test_rows)
{
    static struct command_index idx; /* large: not on the stack */
    command_index_build(&idx);
    struct cmdstats *cs = cmdstats_create(&idx);
    size_t subs = 0;
    for (size_t i = 0; i < idx.count; i++) {
        const struct command *top = idx.all[i];
        struct cmdstat *r = cmdstats_row(cs, top);
        ck_assert_str_eq(r->name, top->name);
        for (const struct command *s = top->subcommands; s && s->name; s++, subs++) {
            char full[CMDSTATS_NAME_MAX];
            snprintf(full, sizeof(full), "%s|%s", top->name, s->name);
            ck_assert_str_eq(cmdstats_row(cs, s)->name, full);
        }
    }
    ck_assert_uint_eq(cmdstats_count(cs), idx.count + subs + 1);
    ck_assert_ptr_nonnull(row_named(cs, "get"));
    ck_assert_ptr_nonnull(row_named(cs, "client|id"));
    ck_assert_ptr_nonnull(row_named(cs, "config|resetstat"));
    ck_assert_str_eq(cmdstats_row(cs, NULL)->name, CMDSTATS_UPSTREAM_ROW);
    /* Rows are distinct. */
    const struct command *get = command_lookup(&idx, "get", 3);
    const struct command *set = command_lookup(&idx, "set", 3);
    ck_assert_ptr_ne(cmdstats_row(cs, get), cmdstats_row(cs, set));
    cmdstats_row(cs, get)->calls = 3;
    cmdstats_row(cs, set)->rejected = 1;
    ck_assert_uint_eq(row_named(cs, "get")->calls, 3);
    cmdstats_reset(cs);
    ck_assert_uint_eq(row_named(cs, "get")->calls, 0);
    ck_assert_uint_eq(row_named(cs, "set")->rejected, 0);
    ck_assert_uint_eq(cmdstats_upstream_hist(cs)->count, 0);
    cmdstats_destroy(cs);
}
END_TEST

/* ---- the HTTP request parser ---- */

static int parse_copy(const char *s, size_t len, struct admin_http_request *req)
{
    char *b = malloc(len ? len : 1);
    ck_assert_ptr_nonnull(b);
    memcpy(b, s, len);
    memset(req, 0, sizeof(*req));
    int rc = admin_http_parse(b, len, req);
    free(b);
    return rc;
}

static int parse_str(const char *s, struct admin_http_request *req)
{
    return parse_copy(s, strlen(s), req);
}

START_TEST(test_parse_ok)
{
    struct admin_http_request r;
    const char *req = "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1:9121\r\n"
                      "User-Agent: Prometheus/2.45\r\nAccept: text/plain;q=0.9,*/*;q=0.1\r\n\r\n";
    ck_assert_int_eq(parse_str(req, &r), 200);
    ck_assert_str_eq(r.method, "GET");
    ck_assert_str_eq(r.path, "/metrics");
    ck_assert_int_eq(r.minor, 1);
    /* Every split point before the end is incomplete; the whole request parses. */
    size_t n = strlen(req);
    for (size_t i = 0; i < n; i++)
        ck_assert_msg(parse_copy(req, i, &r) == 0, "prefix of %zu bytes", i);
    ck_assert_int_eq(parse_str("HEAD /healthz?verbose=1 HTTP/1.0\n\n", &r), 200);
    ck_assert_str_eq(r.method, "HEAD");
    ck_assert_str_eq(r.path, "/healthz");
    ck_assert_int_eq(r.minor, 0);
    ck_assert_int_eq(parse_str("GET http://localhost:9121/readyz HTTP/1.1\r\n\r\n", &r), 200);
    ck_assert_str_eq(r.path, "/readyz");
    ck_assert_int_eq(parse_str("GET http://localhost HTTP/1.1\r\n\r\n", &r), 200);
    ck_assert_str_eq(r.path, "/");
    ck_assert_int_eq(parse_str("\r\nGET / HTTP/1.1\r\n\r\n", &r), 200);
    ck_assert_int_eq(parse_str("DELETE /metrics HTTP/1.1\r\n\r\n", &r), 200); /* 405 later */
    ck_assert_str_eq(r.method, "DELETE");
    ck_assert_int_eq(parse_str("GET / HTTP/1.1\r\nContent-Length: 10\r\n\r\n", &r), 200);
    ck_assert_int_eq(parse_str("GET / HTTP/1.1\r\nX-Empty:\r\n\r\n", &r), 200);
}
END_TEST

START_TEST(test_parse_refused)
{
    struct admin_http_request r;
    static const struct { const char *req; int status; } v[] = {
        { "GET /metrics\r\n\r\n", 400 },                    /* HTTP/0.9 */
        { "GET  /metrics HTTP/1.1\r\n\r\n", 400 },          /* two spaces */
        { "GET /metrics HTTP/1.1 \r\n\r\n", 400 },
        { "GET /metrics http/1.1\r\n\r\n", 400 },
        { "GET /metrics HTTP/1.10\r\n\r\n", 400 },
        { "G(T /metrics HTTP/1.1\r\n\r\n", 400 },           /* not a token */
        { "GET metrics HTTP/1.1\r\n\r\n", 400 },            /* no leading slash */
        { "GET /me\x01trics HTTP/1.1\r\n\r\n", 400 },
        { "GET /m#x HTTP/1.1\r\n\r\n", 400 },
        { "*1\r\n$4\r\nPING\r\n", 400 },                    /* RESP on the admin port */
        { "GET / HTTP/1.1\r\nNoColon\r\n\r\n", 400 },
        { "GET / HTTP/1.1\r\n: value\r\n\r\n", 400 },
        { "GET / HTTP/1.1\r\nBad Name: x\r\n\r\n", 400 },
        { "GET / HTTP/1.1\r\nA: b\r\n folded\r\n\r\n", 400 },
        { "GET / HTTP/1.1\r\nContent-Length: 1x\r\n\r\n", 400 },
        { "GET / HTTP/1.1\r\nContent-Length: 999999999999\r\n\r\n", 413 },
        { "GET / HTTP/2.0\r\n\r\n", 505 },
        { "GET / HTTP/0.9\r\n\r\n", 505 },
        { "VERYLONGMETHODNAMEX / HTTP/1.1\r\n\r\n", 400 },
    };
    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++)
        ck_assert_msg(parse_str(v[i].req, &r) == v[i].status, "request %zu: got %d, want %d",
                      i, parse_str(v[i].req, &r), v[i].status);
    ck_assert_int_eq(parse_copy("GET / HTTP/1.1\r\n\0\r\n\r\n", 21, &r), 400);
}
END_TEST

START_TEST(test_parse_sizes)
{
    struct admin_http_request r;
    char *big = malloc(ADMIN_HTTP_REQUEST_MAX);
    ck_assert_ptr_nonnull(big);
    /* A request head that fills the buffer without ending: 431. */
    size_t n = (size_t)snprintf(big, ADMIN_HTTP_REQUEST_MAX, "GET / HTTP/1.1\r\nX-Pad: ");
    memset(big + n, 'a', ADMIN_HTTP_REQUEST_MAX - n);
    ck_assert_int_eq(parse_copy(big, ADMIN_HTTP_REQUEST_MAX, &r), 431);
    ck_assert_int_eq(parse_copy(big, ADMIN_HTTP_REQUEST_MAX - 1, &r), 0);
    /* A request line that never ends: 431 too. */
    memcpy(big, "GET /", 5);
    memset(big + 5, 'a', ADMIN_HTTP_REQUEST_MAX - 5);
    ck_assert_int_eq(parse_copy(big, ADMIN_HTTP_REQUEST_MAX, &r), 431);
    /* A long path is kept truncated (it is a 404). */
    n = (size_t)snprintf(big, ADMIN_HTTP_REQUEST_MAX, "GET /");
    memset(big + n, 'p', 1000);
    n += 1000;
    n += (size_t)snprintf(big + n, ADMIN_HTTP_REQUEST_MAX - n, " HTTP/1.1\r\n\r\n");
    ck_assert_int_eq(parse_copy(big, n, &r), 200);
    ck_assert(r.path_truncated);
    ck_assert_uint_eq(strlen(r.path), ADMIN_HTTP_PATH_MAX - 1);
    free(big);
}
END_TEST

static Suite *metrics_suite(void)
{
    Suite *s = suite_create("metrics");
    TCase *tc = tcase_create("metrics");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_bounds_sorted);
    tcase_add_test(tc, test_bucket_of_matches_linear);
    tcase_add_test(tc, test_percentiles);
    tcase_add_test(tc, test_count_le);
    tcase_add_test(tc, test_rows);
    tcase_add_test(tc, test_parse_ok);
    tcase_add_test(tc, test_parse_refused);
    tcase_add_test(tc, test_parse_sizes);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(metrics_suite());
    srunner_run_all(sr, CK_ENV);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
