/* Returning the heap's free pages to the system when the resident size drifts well above what
 * the server accounts for, while no client is being served (see memtrim.c). Run from the
 * cron. */
#ifndef PROXY_MEMTRIM_H
#define PROXY_MEMTRIM_H

#include <stdint.h>

struct server;

struct memtrim {
    uint64_t input_bytes;   /* the server's net_input_bytes at the last tick */
    int64_t active_ms;      /* the last tick that saw client input */
    int64_t next_ms;        /* the next check */
    int64_t wait_ms;        /* between checks: grows while trims give back little */
    uint64_t trims;         /* malloc_trim calls (INFO mem_heap_trims) */
    uint64_t trimmed_bytes; /* resident bytes they gave back (INFO mem_heap_trimmed_bytes) */
};

/* The resident size allowed above used_memory before a trim: an eighth of max_memory (of
 * used_memory without a limit), at least MEMTRIM_SLACK_MIN. */
#define MEMTRIM_SLACK_MIN (8u * 1024 * 1024)

/* Every cron tick. At most once per wait (one second at first), and only after
 * MEMTRIM_IDLE_MS (memtrim.c) without client input: when the resident size exceeds
 * used_memory by more than the slack, malloc_trim(0). */
void memtrim_cron(struct server *srv, int64_t now_ms);

#endif
