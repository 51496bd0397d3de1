/*
 * backoff.c: retry delays, exponential with full jitter (AWS architecture
 * blog, "Exponential Backoff And Jitter"): attempt n waits a uniform time in
 * [0, min(cap, base * 2^(n-1))].  Full jitter spreads a burst of failures
 * (Zoho down for a minute) instead of retrying them in lockstep.
 */
#include <stdlib.h>

#include "tds/queue.h"

long long queue_backoff_cap_ms(int attempt, int base_s, int cap_s)
{
    if (attempt < 1)
        attempt = 1;
    if (base_s < 0)
        base_s = 0;
    if (cap_s < base_s)
        cap_s = base_s;
    long long cap_ms = (long long)cap_s * 1000;
    long long d = (long long)base_s * 1000;
    for (int i = 1; i < attempt && d < cap_ms; i++)
        d *= 2;
    return d < cap_ms ? d : cap_ms;
}

long long queue_backoff_ms(int attempt, int base_s, int cap_s, unsigned *seed)
{
    long long hi = queue_backoff_cap_ms(attempt, base_s, cap_s);
    if (hi <= 0)
        return 0;
    /* Two draws of rand_r (15+ bits each) give enough range for a week in ms. */
    unsigned long long r = ((unsigned long long)rand_r(seed) << 31) ^ (unsigned)rand_r(seed);
    return (long long)(r % (unsigned long long)(hi + 1));
}
