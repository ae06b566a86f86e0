/* PutLogEvents batches: which queued events form the next request, the JSON
 * body, and the reading of rejectedLogEventsInfo. Pure code, unit tested. */
#ifndef LOGS_CWBATCH_H
#define LOGS_CWBATCH_H

#include <stddef.h>
#include <stdint.h>

#include "event.h"

/* The service's limits (AWS-FACTS.md), kept in one place so a change of
 * quota is one edit. */
#define CW_MAX_BATCH_BYTES  1048576u
#define CW_EVENT_OVERHEAD   26u
#define CW_MAX_BATCH_EVENTS 10000u
#define CW_MAX_SPAN_MS      (24 * 3600 * 1000LL)
#define CW_MAX_EVENT_BYTES  (CW_MAX_BATCH_BYTES - CW_EVENT_OVERHEAD)
#define CW_MAX_AGE_MS       (14 * 24 * 3600 * 1000LL)

struct cw_limits {
    size_t max_bytes; /* counted as message bytes + overhead per event */
    size_t max_events;
    int64_t max_span_ms; /* newest - oldest must stay below this */
};

/* The limits above. */
void cwb_default_limits(struct cw_limits *lim);

/* How many events from head (queue order) go into the next batch without
 * breaking any limit, at most `avail`. Returns 0 only when avail is 0.
 * *ret_bytes gets the counted size. */
size_t cwb_select(const struct ev *head, size_t avail, const struct cw_limits *lim,
                  size_t *ret_bytes);

/* Sorts evs[0..n) by timestamp, keeping queue order among equal ones. */
void cwb_sort(struct ev **evs, size_t n);

/* The PutLogEvents JSON body for evs (already sorted), written into *buf
 * (capacity *cap, grown with realloc when needed: the caller keeps it for the
 * next batch and frees it). Returns 0 and the length, or -ENOMEM. */
int cwb_encode(const char *group, const char *stream, struct ev *const *evs, size_t n, char **buf,
               size_t *cap, size_t *ret_len);

/* Appends s as a JSON string (with quotes) to out, which has room for
 * json_escaped_len(s, n) bytes; returns the bytes written. */
size_t json_escape(const char *s, size_t n, char *out);
size_t json_escaped_len(const char *s, size_t n);

/* The number of events a PutLogEvents answer says were rejected, from its
 * JSON body (n events sent). Sets *too_new, *too_old, *expired. */
void cwb_rejected(const char *body, size_t len, size_t n, size_t *too_new, size_t *too_old,
                  size_t *expired);

#endif
