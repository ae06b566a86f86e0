/* Retry and re-check delays. Kept apart so the AWS core's shared backoff
 * policy can take the place of r53_backoff_ms() in one edit. */
#include <stdlib.h>

#include "r53.h"

uint64_t r53_backoff_ms(unsigned failures, bool permanent, bool leaving)
{
    unsigned f = failures < 12 ? failures : 12;
    uint64_t base, cap;
    if (leaving) {
        base = 250, cap = 1000; /* never give a deletion up while there is time */
    } else if (permanent) {
        base = 30000, cap = 600000;
    } else {
        base = 2000, cap = 60000;
    }
    uint64_t d = base << (f > 0 ? f - 1 : 0);
    if (d > cap)
        d = cap;
    /* Half fixed, half jitter: a fleet's retries spread out, none is hot. */
    return d / 2 + (uint64_t)rand() % (d / 2 + 1);
}

uint64_t r53_jitter_ms(uint64_t interval_ms)
{
    uint64_t spread = interval_ms / 5;
    return interval_ms - spread + (uint64_t)rand() % (2 * spread + 1);
}
