/* Heap trimming. glibc's malloc returns only the top of the heap to the system (past
 * M_TRIM_THRESHOLD, main.c); the pages of free chunks in the middle stay resident. In a cache
 * at max_memory whose values come in very different sizes (evictions free small chunks,
 * inserts want big ones, and the reverse), those free pages add up: with max_memory 64 MB,
 * deploy/measure_rss.py's mixed-size runs settled at 121.5 MiB (standalone) and 162.9 MiB
 * (near-cache) resident. malloc_trim(0) gives them back (madvise of the free pages), but it
 * walks every free chunk with the heap locked: 0.1 to 5 ms at 64 MB, 28 to 86 ms at 512 MB,
 * a stall of the whole loop. So it runs only when the server is idle (no client input for
 * MEMTRIM_IDLE_MS: a request arriving meanwhile waits at most one trim) and the resident size
 * exceeds what is accounted (used_memory: the store and the client buffers) by more than a
 * slack; and a trim that gave back less than a quarter of the slack doubles the wait before
 * the next one (up to a minute): a heap that keeps its pages is not walked for nothing. */
#include "proxy/memtrim.h"

#include "cache/store.h"
#include "proxy/server.h"

#include <malloc.h>

#define MEMTRIM_WAIT_MIN_MS 1000
#define MEMTRIM_WAIT_MAX_MS 60000
#define MEMTRIM_IDLE_MS 200

static uint64_t memtrim_slack(const struct server *srv, uint64_t used)
{
    uint64_t max = store_max_memory(srv->store);
    uint64_t slack = (max ? max : used) / 8;
    return slack > MEMTRIM_SLACK_MIN ? slack : MEMTRIM_SLACK_MIN;
}

void memtrim_cron(struct server *srv, int64_t now_ms)
{
    struct memtrim *mt = &srv->memtrim;
    if (srv->stats.net_input_bytes != mt->input_bytes) { /* clients were served since */
        mt->input_bytes = srv->stats.net_input_bytes;
        mt->active_ms = now_ms;
        return;
    }
    if (now_ms < mt->next_ms || now_ms - mt->active_ms < MEMTRIM_IDLE_MS)
        return;
    if (mt->wait_ms < MEMTRIM_WAIT_MIN_MS)
        mt->wait_ms = MEMTRIM_WAIT_MIN_MS;
    uint64_t used = server_used_memory(srv);
    uint64_t slack = memtrim_slack(srv, used);
    uint64_t rss = server_rss_bytes();
    if (rss <= used + slack) {
        mt->wait_ms = MEMTRIM_WAIT_MIN_MS;
        mt->next_ms = now_ms + mt->wait_ms;
        return;
    }
    malloc_trim(0);
    uint64_t after = server_rss_bytes();
    uint64_t gave = rss > after ? rss - after : 0;
    mt->trims++;
    mt->trimmed_bytes += gave;
    if (gave < slack / 4)
        mt->wait_ms = mt->wait_ms * 2 < MEMTRIM_WAIT_MAX_MS ? mt->wait_ms * 2 : MEMTRIM_WAIT_MAX_MS;
    else
        mt->wait_ms = MEMTRIM_WAIT_MIN_MS;
    mt->next_ms = now_ms + mt->wait_ms;
}
