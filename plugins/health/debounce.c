/* Rise and fall: a check's reported status changes only after enough
 * consecutive results point the same way, so one lost packet does not take
 * an instance out of its target group. */
#include "health-int.h"

bool debounce_step(struct debounce *d, enum agentd_health_status raw, unsigned rise, unsigned fall,
                   bool grace)
{
    int dir = raw > d->reported ? 1 : raw < d->reported ? -1 : 0;
    unsigned need;

    if (dir == 0 || (grace && dir < 0)) {
        d->streak = 0;
        d->streak_dir = 0;
        return false;
    }
    if (dir == d->streak_dir) {
        d->streak++;
    } else {
        d->streak_dir = dir;
        d->streak = 1;
    }
    need = dir > 0 ? (grace ? 1 : rise) : fall;
    if (d->streak < need)
        return false;
    d->reported = raw;
    d->streak = 0;
    d->streak_dir = 0;
    return true;
}
