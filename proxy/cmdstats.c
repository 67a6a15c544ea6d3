/* Per-command statistics (see cmdstats.h): the rows and their pointer index, the latency
 * histograms, the table of forwards being timed, and INFO commandstats / latencystats.
 * Invariants: rows[nrows - 1] is the upstream row; every command pointer of the index and of
 * its subcommand tables maps to exactly one row; the pending table is an open-addressing table
 * with linear probing (no tombstones: deletion shifts back), at most half full. */
#include "proxy/cmdstats.h"

#include "conf/xmalloc.h"
#include "proxy/client.h"
#include "proxy/command.h"
#include "proxy/forward.h"
#include "proxy/server.h"
#include "proxy/strbuf.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CMDSTATS_PENDING_MIN 64 /* slots of the pending table at first */

struct cmdstats_pending {
    const struct fwd *key;   /* NULL: an empty slot */
    uint32_t row;
    int64_t t0_ns;
};

struct cmdstats {
    struct cmdstat *rows;
    size_t nrows;
    const struct command **keys;     /* pointer index: command row -> rows[vals[i]] */
    uint32_t *vals;
    size_t kmask;
    struct cmdstats_pending *pend;   /* forwards being timed */
    size_t pmask, pcount;
    uint64_t err_mark;               /* errors_replied at the end of the last timed call */
    /* The clock reading that ended the last timed call, reused as the start of the next
     * request of the same client in the same loop iteration (a pipeline): one reading per
     * command. Valid while chain_ok. */
    int64_t chain_ns;
    uint64_t chain_client;
    unsigned chain_iter;
    bool chain_ok;
    /* The first clock reading of a loop iteration that needed one for a forward's reply (all
     * the replies an iteration reads are timed with it: DESIGN's one reading per iteration).
     * Valid while iter_ok and iter_no is the loop's iteration. */
    int64_t iter_ns;
    unsigned iter_no;
    bool iter_ok;
    struct cmdstats_hist upstream;   /* every forwarded request */
};

/* ---- the histogram ---- */

static const uint64_t bucket_upper[CMDSTATS_BOUNDS] = {
#define DECADE(d) 1000ull * (d), 1200ull * (d), 1500ull * (d), 2000ull * (d), 2500ull * (d), \
                  3000ull * (d), 4000ull * (d), 5000ull * (d), 6000ull * (d), 8000ull * (d)
    DECADE(1ull), DECADE(10ull), DECADE(100ull), DECADE(1000ull), DECADE(10000ull),
    DECADE(100000ull), DECADE(1000000ull),
#undef DECADE
    10000000000ull,
};

uint64_t cmdstats_bucket_upper_ns(size_t i)
{
    return i < CMDSTATS_BOUNDS ? bucket_upper[i] : UINT64_MAX;
}

size_t cmdstats_bucket_of(uint64_t ns)
{
    /* The first bound >= ns. With ten bounds per decade, the first bound >= 2^k is bound
     * 3k - 29 for 2^k in [1024, 2^33] (checked by the unit test against a plain search), and
     * at most three more steps reach ns from there. */
    size_t i = 0;
    if (ns >= 1024) {
        int k = 63 - __builtin_clzll(ns);
        i = k >= 34 ? CMDSTATS_BOUNDS : (size_t)(3 * k - 29);
    }
    while (i < CMDSTATS_BOUNDS && bucket_upper[i] < ns)
        i++;
    return i; /* CMDSTATS_BOUNDS: above the last bound */
}

void cmdstats_hist_add(struct cmdstats_hist *h, uint64_t ns)
{
    h->count++;
    h->sum_ns += ns;
    if (ns > h->max_ns)
        h->max_ns = ns;
    h->bucket[cmdstats_bucket_of(ns)]++;
}

uint64_t cmdstats_hist_count_le(const struct cmdstats_hist *h, uint64_t le_ns)
{
    uint64_t n = 0;
    for (size_t i = 0; i < CMDSTATS_BOUNDS && bucket_upper[i] <= le_ns; i++)
        n += h->bucket[i];
    return n;
}

double cmdstats_hist_percentile_us(const struct cmdstats_hist *h, double p)
{
    if (!h || h->count == 0)
        return 0.0;
    double want = ceil(p / 100.0 * (double)h->count);
    uint64_t target = want < 1.0 ? 1 : want > (double)h->count ? h->count : (uint64_t)want;
    uint64_t cum = 0;
    for (size_t b = 0; b < CMDSTATS_BUCKETS; b++) {
        uint64_t n = h->bucket[b];
        if (cum + n < target) {
            cum += n;
            continue;
        }
        double lower = b == 0 ? 0.0 : (double)bucket_upper[b - 1];
        double upper = b < CMDSTATS_BOUNDS ? (double)bucket_upper[b] : (double)h->max_ns;
        if (upper > (double)h->max_ns)
            upper = (double)h->max_ns;
        if (upper < lower)
            upper = lower;
        double ns = lower + (upper - lower) * (double)(target - cum) / (double)n;
        return ns / 1000.0;
    }
    return (double)h->max_ns / 1000.0;
}

/* ---- the rows and their index ---- */

static size_t ptr_hash(const void *p, size_t mask)
{
    uint64_t h = (uint64_t)(uintptr_t)p * 0x9E3779B97F4A7C15ull;
    return (size_t)(h >> 29) & mask;
}

static void index_put(struct cmdstats *cs, const struct command *cmd, uint32_t row)
{
    size_t i = ptr_hash(cmd, cs->kmask);
    while (cs->keys[i] && cs->keys[i] != cmd)
        i = (i + 1) & cs->kmask;
    cs->keys[i] = cmd;
    cs->vals[i] = row;
}

static void row_name(struct cmdstat *r, const struct command *parent, const struct command *cmd)
{
    command_fullname(parent, cmd, r->name, sizeof(r->name));
}

struct cmdstats *cmdstats_create(const struct command_index *idx)
{
    struct cmdstats *cs = xcalloc(1, sizeof(*cs));
    size_t n = 1; /* the upstream row */
    for (size_t i = 0; i < idx->count; i++) {
        n++;
        for (const struct command *s = idx->all[i]->subcommands; s && s->name; s++)
            n++;
    }
    cs->rows = xcalloc(n, sizeof(*cs->rows));
    size_t cap = 16;
    while (cap < 2 * n)
        cap *= 2;
    cs->keys = xcalloc(cap, sizeof(*cs->keys));
    cs->vals = xcalloc(cap, sizeof(*cs->vals));
    cs->kmask = cap - 1;
    for (size_t i = 0; i < idx->count; i++) {
        const struct command *top = idx->all[i];
        row_name(&cs->rows[cs->nrows], NULL, top);
        index_put(cs, top, (uint32_t)cs->nrows++);
        for (const struct command *s = top->subcommands; s && s->name; s++) {
            row_name(&cs->rows[cs->nrows], top, s);
            index_put(cs, s, (uint32_t)cs->nrows++);
        }
    }
    snprintf(cs->rows[cs->nrows].name, CMDSTATS_NAME_MAX, "%s", CMDSTATS_UPSTREAM_ROW);
    cs->nrows++;
    cs->pmask = CMDSTATS_PENDING_MIN - 1;
    cs->pend = xcalloc(CMDSTATS_PENDING_MIN, sizeof(*cs->pend));
    return cs;
}

void cmdstats_destroy(struct cmdstats *cs)
{
    if (!cs)
        return;
    for (size_t i = 0; i < cs->nrows; i++)
        free(cs->rows[i].hist);
    free(cs->rows);
    free(cs->keys);
    free(cs->vals);
    free(cs->pend);
    free(cs);
}

void cmdstats_reset(struct cmdstats *cs)
{
    for (size_t i = 0; i < cs->nrows; i++) {
        struct cmdstat *r = &cs->rows[i];
        free(r->hist);
        r->hist = NULL;
        r->calls = r->rejected = r->failed = r->time_ns = 0;
    }
    memset(&cs->upstream, 0, sizeof(cs->upstream));
    memset(cs->pend, 0, (cs->pmask + 1) * sizeof(*cs->pend));
    cs->pcount = 0;
    cs->err_mark = 0;
    cs->chain_ok = false;
}

size_t cmdstats_count(const struct cmdstats *cs)
{
    return cs->nrows;
}

const struct cmdstat *cmdstats_at(const struct cmdstats *cs, size_t i)
{
    return i < cs->nrows ? &cs->rows[i] : NULL;
}

static uint32_t row_index(const struct cmdstats *cs, const struct command *cmd)
{
    if (cmd) {
        for (size_t i = ptr_hash(cmd, cs->kmask); cs->keys[i]; i = (i + 1) & cs->kmask)
            if (cs->keys[i] == cmd)
                return cs->vals[i];
    }
    return (uint32_t)(cs->nrows - 1);
}

struct cmdstat *cmdstats_row(struct cmdstats *cs, const struct command *cmd)
{
    return &cs->rows[row_index(cs, cmd)];
}

const struct cmdstats_hist *cmdstats_upstream_hist(const struct cmdstats *cs)
{
    return &cs->upstream;
}

static void row_time(struct cmdstat *r, uint64_t ns, bool failed)
{
    if (!r->hist)
        r->hist = xcalloc(1, sizeof(*r->hist));
    r->time_ns += ns;
    cmdstats_hist_add(r->hist, ns);
    if (failed)
        r->failed++;
}

static uint64_t elapsed_ns(int64_t t0, int64_t now)
{
    return now > t0 ? (uint64_t)(now - t0) : 0;
}

/* ---- the forwards being timed ---- */

static struct cmdstats_pending *pending_find(struct cmdstats_pending *t, size_t mask,
                                             const struct fwd *f)
{
    for (size_t i = ptr_hash(f, mask); t[i].key; i = (i + 1) & mask)
        if (t[i].key == f)
            return &t[i];
    return NULL;
}

static void pending_put(struct cmdstats *cs, const struct fwd *f, uint32_t row, int64_t t0)
{
    size_t i = ptr_hash(f, cs->pmask);
    while (cs->pend[i].key && cs->pend[i].key != f)
        i = (i + 1) & cs->pmask;
    if (!cs->pend[i].key)
        cs->pcount++;
    cs->pend[i] = (struct cmdstats_pending){ f, row, t0 };
}

/* Removes the entry at slot i, shifting back the entries of its probe run. */
static void pending_del(struct cmdstats *cs, size_t i)
{
    size_t mask = cs->pmask;
    cs->pend[i].key = NULL;
    cs->pcount--;
    for (size_t j = (i + 1) & mask; cs->pend[j].key; j = (j + 1) & mask) {
        size_t home = ptr_hash(cs->pend[j].key, mask);
        /* j's entry may move to the hole at i unless its home lies cyclically in (i, j]. */
        bool stays = i <= j ? (i < home && home <= j) : (i < home || home <= j);
        if (stays)
            continue;
        cs->pend[i] = cs->pend[j];
        cs->pend[j].key = NULL;
        i = j;
    }
}

/* The table would be more than half full: keep only the entries of forwards still linked to
 * a client (the others belong to clients that left: never completed), in a table at least
 * four times as large as what is kept. */
static void pending_collect(struct cmdstats *cs, struct server *srv)
{
    struct cmdstats_pending *old = cs->pend;
    size_t oldmask = cs->pmask;
    size_t live = 0;
    for (struct client *c = srv->clients; c; c = c->next)
        for (struct fwd *f = c->fwd_head; f; f = f->cnext)
            live++;
    size_t cap = CMDSTATS_PENDING_MIN;
    while (cap < 4 * (live + 1))
        cap *= 2;
    cs->pend = xcalloc(cap, sizeof(*cs->pend));
    cs->pmask = cap - 1;
    cs->pcount = 0;
    for (struct client *c = srv->clients; c; c = c->next)
        for (struct fwd *f = c->fwd_head; f; f = f->cnext) {
            const struct cmdstats_pending *e = pending_find(old, oldmask, f);
            if (e)
                pending_put(cs, f, e->row, e->t0_ns);
        }
    free(old);
}

/* ---- recording ---- */

void cmdstats_call_begin(struct client *c, struct cmdstats_call *call)
{
    call->t0_ns = cmdstats_now_ns();
    call->fwd_tail = c->fwd_tail;
    c->srv->cmdstats->err_mark = c->srv->stats.errors_replied;
}

void cmdstats_request_begin(struct client *c, struct cmdstats_call *call)
{
    struct cmdstats *cs = c->srv->cmdstats;
    if (cs->chain_ok && cs->chain_client == c->id && cs->chain_iter == ev_iteration(c->srv->loop))
        call->t0_ns = cs->chain_ns; /* the previous command of this pipeline just ended */
    else
        call->t0_ns = cmdstats_now_ns();
    cs->chain_ok = false; /* used once: a request refused or queued does not pass it on */
    call->fwd_tail = c->fwd_tail;
    cs->err_mark = c->srv->stats.errors_replied;
}

/* A timed call of c ended at now: the next request of c in this iteration starts there. */
static void chain_set(struct cmdstats *cs, const struct client *c, int64_t now)
{
    cs->chain_ns = now;
    cs->chain_client = c->id;
    cs->chain_iter = ev_iteration(c->srv->loop);
    cs->chain_ok = true;
}

uint64_t cmdstats_call_end(struct client *c, const struct command *cmd,
                           const struct cmdstats_call *call)
{
    struct cmdstats *cs = c->srv->cmdstats;
    uint64_t errors = c->srv->stats.errors_replied;
    struct cmdstat *r = cmdstats_row(cs, cmd);
    int64_t now = cmdstats_now_ns();
    r->calls++;
    if (c->fwd_tail != call->fwd_tail && c->fwd_tail && cs->pcount) {
        /* A forward a local command opened (RESET's): not timed; a stale entry of a freed
         * forward at the same address must not be taken for it. */
        struct cmdstats_pending *e = pending_find(cs->pend, cs->pmask, c->fwd_tail);
        if (e)
            pending_del(cs, (size_t)(e - cs->pend));
    }
    uint64_t ns = elapsed_ns(call->t0_ns, now);
    row_time(r, ns, errors != cs->err_mark);
    cs->err_mark = errors;
    chain_set(cs, c, now);
    return ns;
}

int64_t cmdstats_call_routed(struct client *c, const struct command *cmd,
                             const struct cmdstats_call *call)
{
    struct server *srv = c->srv;
    struct cmdstats *cs = srv->cmdstats;
    uint32_t row = row_index(cs, cmd);
    cs->rows[row].calls++;
    if (c->fwd_tail && c->fwd_tail != call->fwd_tail) { /* forwarded: timed at the reply */
        if ((cs->pcount + 1) * 2 > cs->pmask + 1)
            pending_collect(cs, srv);
        pending_put(cs, c->fwd_tail, row, call->t0_ns);
        cs->chain_ok = false; /* no reading ended it */
        return -1;
    }
    int64_t now = cmdstats_now_ns();
    uint64_t errors = srv->stats.errors_replied;
    uint64_t ns = elapsed_ns(call->t0_ns, now);
    row_time(&cs->rows[row], ns, errors != cs->err_mark);
    cs->err_mark = errors;
    chain_set(cs, c, now);
    return (int64_t)ns;
}

void cmdstats_rejected(struct server *srv, const struct command *cmd)
{
    cmdstats_row(srv->cmdstats, cmd)->rejected++;
}

/* Why: a forwarded SET read the clock at its reply, one reading per request where a batch of
 * replies arrives in one read (vDSO clock_gettime: ~3% of the time of forwarding 64-byte SETs
 * at -c 50 -P 16). A reply is timed at the first reading of the iteration that reads it (the
 * error is the work done before it in that iteration, the same for every reply of it). */
static int64_t iter_now_ns(struct cmdstats *cs, struct ev_loop *loop)
{
    unsigned no = ev_iteration(loop);
    if (!cs->iter_ok || cs->iter_no != no) {
        cs->iter_ns = cmdstats_now_ns();
        cs->iter_no = no;
        cs->iter_ok = true;
    }
    return cs->iter_ns;
}

int64_t cmdstats_forward_done(struct server *srv, const struct fwd *f, bool error)
{
    struct cmdstats *cs = srv->cmdstats;
    if (!cs || cs->pcount == 0)
        return -1;
    struct cmdstats_pending *e = pending_find(cs->pend, cs->pmask, f);
    if (!e)
        return -1;
    uint64_t ns = elapsed_ns(e->t0_ns, iter_now_ns(cs, srv->loop));
    row_time(&cs->rows[e->row], ns, error);
    cmdstats_hist_add(&cs->upstream, ns);
    pending_del(cs, (size_t)(e - cs->pend));
    return (int64_t)ns;
}

/* ---- INFO ---- */

void cmdstats_info_commandstats(struct server *srv, struct strbuf *b)
{
    const struct cmdstats *cs = srv->cmdstats;
    for (size_t i = 0; i < cs->nrows; i++) {
        const struct cmdstat *r = &cs->rows[i];
        if (!r->calls && !r->failed && !r->rejected)
            continue;
        unsigned long long usec = (unsigned long long)(r->time_ns / 1000);
        strbuf_printf(b, "cmdstat_%s:calls=%llu,usec=%llu,usec_per_call=%.2f,"
                      "rejected_calls=%llu,failed_calls=%llu\r\n",
                      r->name, (unsigned long long)r->calls, usec,
                      r->calls ? (double)usec / (double)r->calls : 0.0,
                      (unsigned long long)r->rejected, (unsigned long long)r->failed);
    }
}

void cmdstats_info_latencystats(struct server *srv, struct strbuf *b)
{
    const struct cmdstats *cs = srv->cmdstats;
    for (size_t i = 0; i < cs->nrows; i++) {
        const struct cmdstat *r = &cs->rows[i];
        if (!r->hist || !r->hist->count)
            continue;
        strbuf_printf(b, "latency_percentiles_usec_%s:p50=%.3f,p99=%.3f,p99.9=%.3f\r\n", r->name,
                      cmdstats_hist_percentile_us(r->hist, 50.0),
                      cmdstats_hist_percentile_us(r->hist, 99.0),
                      cmdstats_hist_percentile_us(r->hist, 99.9));
    }
}
