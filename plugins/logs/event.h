/* Events queued between sources and a sink, and what a source needs to know
 * about their acknowledgement. Shared by every file of the plugin. */
#ifndef LOGS_EVENT_H
#define LOGS_EVENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The acknowledgement side of a source (a file or the journal). The
 * checkpoint is the position after the last event the sink acknowledged. */
struct src {
    unsigned pending;     /* events of this source still in the queue */
    uint64_t acked_off;   /* files: offset after the last acknowledged event */
    uint64_t dropped_off; /* offset after the last event dropped before queueing */
    char *acked_cursor;   /* journal: cursor of the last acknowledged entry */
};

struct ev {
    struct ev *next;
    struct src *src;
    int64_t ts;       /* ms since the epoch */
    uint64_t end_off; /* the source position just after this event */
    char *cursor;     /* journal cursor, or NULL */
    uint32_t len;
    char msg[]; /* valid UTF-8, not NUL-terminated */
};

/* Bytes an event holds in memory, for the pipeline's bound. */
static inline size_t ev_cost(const struct ev *e)
{
    return sizeof(*e) + e->len;
}

#endif
