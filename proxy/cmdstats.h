/* Per-command statistics: what INFO commandstats / latencystats and the admin port's /metrics
 * report. One row per command of the command index (each top-level row, then each of its
 * subcommands, named "client|id" as Redis 7 does) plus one "upstream" row for commands the
 * sidecar does not know and forwards as they came. A row counts calls, the time spent, calls
 * refused before running (rejected: arity, NOAUTH, OOM, subscriber context) and calls that
 * replied an error (failed), and keeps a latency histogram.
 *
 * Histogram: fixed log-scale buckets from 1 us to 10 s, ten per decade on the mantissas 1 1.2
 * 1.5 2 2.5 3 4 5 6 8 (each at most 1/3 wider than the one before), so every 1-2-5 boundary the
 * Prometheus histogram exports is a bucket boundary; one bucket below 1 us and one above 10 s.
 * Percentiles are interpolated inside the bucket holding the rank (and never exceed the largest
 * value seen). A row's histogram is allocated at its first timed call: most commands are never
 * used, so the table costs ~100 bytes per row until then.
 *
 * Timing (dispatch.c): a monotonic clock reading when a request starts and one when it is
 * answered; in a pipeline the reading that ends one command starts the next (one reading per
 * command: ~20 ns on bare metal with the vDSO, ~55 ns on the test VM). A command answered at
 * once (local, a near-cache hit, standalone) is timed from the start of its dispatch (for the
 * commands after the first of a pipeline: from the end of the previous one, so parsing is
 * included) to the end of its handler. A request forwarded to the upstream is
 * counted as a call when dispatched and timed when its reply is delivered (forward.c calls
 * cmdstats_forward_done) with the loop iteration's clock (the first reading of the iteration
 * that reads the reply, shared by every reply it reads): its latency includes the upstream
 * round trip, and it also feeds the upstream request histogram. The forwards being timed are kept in a small table by pointer;
 * the forwards of clients that left are dropped from it when it would grow (they are never
 * completed, so never timed, as Redis never counts a call whose client went away). A blocking
 * command is counted when it blocks; its latency is the time to block, not the wait.
 *
 * Failed calls follow Redis's rule: a call failed when an error was replied since the end of
 * the previous timed call (so an EXEC is not failed by the errors of its queued commands,
 * which are counted on their own rows).
 *
 * Owns: the rows, their names and histograms, the pointer index, the pending-forward table.
 * Borrows: the command index (static tables). No global state: one cmdstats per server. */
#ifndef PROXY_CMDSTATS_H
#define PROXY_CMDSTATS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

struct command;
struct command_index;
struct client;
struct server;
struct fwd;
struct strbuf;

/* Buckets: [0, 1us], then (upper[i-1], upper[i]] up to 10 s, then everything above. */
#define CMDSTATS_BOUNDS 71
#define CMDSTATS_BUCKETS (CMDSTATS_BOUNDS + 1)
#define CMDSTATS_NAME_MAX 64
/* The row of commands the sidecar does not know (forwarded verbatim). */
#define CMDSTATS_UPSTREAM_ROW "upstream"

struct cmdstats_hist {
    uint64_t count;
    uint64_t sum_ns;
    uint64_t max_ns;
    uint64_t bucket[CMDSTATS_BUCKETS];
};

struct cmdstat {
    char name[CMDSTATS_NAME_MAX];   /* "get", "client|id", "upstream" */
    uint64_t calls;                 /* ran (or were forwarded) */
    uint64_t rejected;              /* refused before running */
    uint64_t failed;                /* replied an error */
    uint64_t time_ns;               /* total latency of the timed calls */
    struct cmdstats_hist *hist;     /* NULL until the first timed call */
};

/* One request's timing in progress, on dispatch's stack. */
struct cmdstats_call {
    int64_t t0_ns;
    const struct fwd *fwd_tail;     /* the client's newest forward before the request */
};

struct cmdstats;

/* Rows for every command of idx (idx must outlive the result). */
struct cmdstats *cmdstats_create(const struct command_index *idx);
void cmdstats_destroy(struct cmdstats *cs);
/* CONFIG RESETSTAT: zeroes every row, frees the histograms, forgets the forwards in flight
 * (they are not timed) and the error mark. */
void cmdstats_reset(struct cmdstats *cs);

/* CLOCK_MONOTONIC in ns (the vDSO: ~20 ns; see the report of the issue for the measure). */
static inline int64_t cmdstats_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* ---- the rows ---- */

size_t cmdstats_count(const struct cmdstats *cs);
const struct cmdstat *cmdstats_at(const struct cmdstats *cs, size_t i);
/* The row of cmd (a row of idx or one of its subcommand tables); NULL gives the upstream row.
 * A row the index does not hold also gives the upstream row. */
struct cmdstat *cmdstats_row(struct cmdstats *cs, const struct command *cmd);
/* The histogram of every forwarded request's latency (dispatch to reply). */
const struct cmdstats_hist *cmdstats_upstream_hist(const struct cmdstats *cs);

/* ---- recording (dispatch.c, forward.c) ---- */

/* A request read from c starts (dispatch): its start time, and c's newest forward (to see
 * whether it opens one). The start is the end of c's previous command when that one was timed
 * in the same loop iteration (a pipeline: the reading is shared), else a clock reading. */
void cmdstats_request_begin(struct client *c, struct cmdstats_call *call);
/* The same for a call that is not a request of its own (EXEC's queued commands): always a
 * clock reading. */
void cmdstats_call_begin(struct client *c, struct cmdstats_call *call);
/* cmd ran to completion here (or blocked): a call, timed from begin to now. Returns the
 * latency in ns (SLOWLOG takes it). */
uint64_t cmdstats_call_end(struct client *c, const struct command *cmd,
                           const struct cmdstats_call *call);
/* cmd (NULL: a command unknown here) was routed with an upstream: a call; when it opened a
 * forward, it is timed when the reply is delivered (returns -1), otherwise (a hit) now
 * (returns the latency in ns). */
int64_t cmdstats_call_routed(struct client *c, const struct command *cmd,
                             const struct cmdstats_call *call);
/* cmd was refused before running. */
void cmdstats_rejected(struct server *srv, const struct command *cmd);
/* f's reply (an error reply when error) is delivered to its client (forward.c). Returns its
 * latency in ns, or -1 when it was not being timed. */
int64_t cmdstats_forward_done(struct server *srv, const struct fwd *f, bool error);

/* ---- the histogram (pure; exposed for metrics.c and the unit tests) ---- */

/* Upper bound of bucket i in ns (i < CMDSTATS_BOUNDS); the last bucket has none. */
uint64_t cmdstats_bucket_upper_ns(size_t i);
/* The bucket of a latency of ns. */
size_t cmdstats_bucket_of(uint64_t ns);
void cmdstats_hist_add(struct cmdstats_hist *h, uint64_t ns);
/* Values at or below le_ns (le_ns must be a bucket bound to be exact). */
uint64_t cmdstats_hist_count_le(const struct cmdstats_hist *h, uint64_t le_ns);
/* The p-th percentile (0 < p <= 100) in microseconds; 0 when empty. */
double cmdstats_hist_percentile_us(const struct cmdstats_hist *h, double p);

/* ---- INFO sections (cmd_info.c) ---- */
void cmdstats_info_commandstats(struct server *srv, struct strbuf *b);
void cmdstats_info_latencystats(struct server *srv, struct strbuf *b);

#endif
