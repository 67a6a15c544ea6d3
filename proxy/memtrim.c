/* Heap trimming. glibc's malloc returns only the top of the heap to the system (past
 * M_TRIM_THRESHOLD, main.c); the pages of free chunks in the middle stay resident. In a cache
 * at max_memory whose values come in very different sizes (evictions free small chunks,
 * inserts want big ones, and the reverse), those free pages add up: with max_memory 64 MB,
 * deploy/measure_rss.py's mixed-size runs settled at 121.5 MiB (standalone) and 162.9 MiB
 * (near-cache) resident. malloc_trim(0) gives them back (madvise of the free pages); it walks
 * the free chunks, 0.1 to 5 ms at that size, so it runs only when the resident size exceeds
 * what is accounted (used_memory: the store and the client buffers) by more than a slack,
 * checked once a second, and a trim that gave back less than a quarter of the slack doubles
 * the wait before the next check (up to a minute): a busy heap is not walked for nothing. */
#include "proxy/memtrim.h"

#include "cache/store.h"
#include "proxy/server.h"

#include <malloc.h>

#define MEMTRIM_WAIT_MIN_MS 1000
#define MEMTRIM_WAIT_MAX_MS 60000

static uint64_t memtrim_slack(const struct server *srv, uint64_t used)
{
    uint64_t max = store_max_memory(srv->store);
    uint64_t slack = (max ? max : used) / 8;
    return slack > MEMTRIM_SLACK_MIN ? slack : MEMTRIM_SLACK_MIN;
}

void memtrim_cron(struct server *srv, int64_t now_ms)
{
    struct memtrim *mt = &srv->memtrim;
    if (now_ms < mt->next_ms)
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
