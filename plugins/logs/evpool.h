/* Memory for queued events. The queue is strictly first in, first out, so
 * events are carved from 64 KiB chunks one after the other and a chunk is
 * released when its last event is: no malloc and free per line, and no
 * per-event allocator overhead. */
#ifndef LOGS_EVPOOL_H
#define LOGS_EVPOOL_H

#include <stddef.h>

#include "event.h"

#define EVPOOL_CHUNK (64 * 1024)

struct ev_chunk;

struct ev_pool {
    struct ev_chunk *head;  /* holds the oldest live event */
    struct ev_chunk *tail;  /* new events are carved here */
    struct ev_chunk *spare; /* one empty chunk kept for reuse */
};

/* An event of `size` bytes (header and message), or NULL when out of memory. */
struct ev *evpool_alloc(struct ev_pool *pool, size_t size);
/* Gives back the end of the newest event: it now needs only `size` bytes. */
void evpool_shrink_last(struct ev_pool *pool, struct ev *e, size_t old_size, size_t size);
/* Releases e, which must be the oldest live event of the pool. */
void evpool_release(struct ev_pool *pool, struct ev *e);
/* Frees every chunk (the events in them are gone). */
void evpool_free(struct ev_pool *pool);

#endif
