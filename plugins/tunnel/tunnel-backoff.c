/* tunnel plugin: the retry schedule.
 *
 * Transient failures use exponential backoff with full jitter (AWS's
 * "Exponential Backoff And Jitter"): the n-th delay is uniform between a
 * small floor and min(max, initial * 2^n). With initial 1 s and max 4 s a
 * dead server sees about one attempt every 2 s on average, and a server
 * that comes back is found again within max + one handshake. The floor keeps
 * an instantly failing attempt (a refused loopback connect) from being
 * repeated in a tight loop when the random draw is near zero.
 */
#include "tunnel.h"

uint64_t tunnel_backoff_delay(const struct tunnel_backoff *b, unsigned failures, uint64_t rnd)
{
    uint64_t ceiling = b->initial_ms ? b->initial_ms : 1;
    uint64_t lo = b->floor_ms;

    /* Doubling stops at the cap, so the shift can never overflow. */
    for (unsigned i = 0; i < failures && ceiling < b->max_ms; i++)
        ceiling *= 2;
    if (ceiling > b->max_ms)
        ceiling = b->max_ms;
    if (lo >= ceiling)
        return ceiling;
    return lo + rnd % (ceiling - lo + 1);
}

uint64_t tunnel_backoff_permanent(uint64_t cap_ms, uint64_t rnd)
{
    uint64_t spread = cap_ms / 10;

    return cap_ms - (spread ? rnd % (spread + 1) : 0);
}

uint64_t tunnel_rand(uint64_t *state)
{
    uint64_t x = *state;

    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    return x * 0x2545F4914F6CDD1DULL;
}
