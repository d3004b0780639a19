/* ml_block_age.c — the FIFO estimate of a site's median live-block age from its cumulative allocated
 * bytes, and the choice of the site whose age a process metric uses (see ml_block_age.h and
 * docs/patterns.md). Pure: owns no data. */
#include "ml_block_age.h"

#include <math.h>
#include <stddef.h>
#include <stdint.h>

double ml_block_age_median_s(const struct ml_series *allocated, double live_bytes) {
    unsigned n = allocated->count;
    if (n < 2 || !isfinite(live_bytes) || !(live_bytes > 0))
        return NAN;
    uint64_t t_now, t_first;
    double a_now;
    ml_series_get(allocated, n - 1, &t_now, &a_now);
    ml_series_get(allocated, 0, &t_first, NULL);
    if (t_now <= t_first)
        return NAN;
    /* The byte in the middle of the live set was allocated when A reached `target`. Walk back to the
     * newest sample below it: the crossing lies between that sample and the next one, where A is at
     * least `target` (the newest sample is: A(now) >= target because live_bytes > 0). */
    double target = a_now - live_bytes / 2;
    uint64_t t_next = t_now;
    double a_next = a_now;
    for (unsigned i = n - 1; i-- > 0;) {
        uint64_t t;
        double a;
        ml_series_get(allocated, i, &t, &a);
        if (a < target) {
            double fraction = (target - a) / (a_next - a);   /* a_next >= target > a */
            return (double)(t_now - t) * 1e-9 - fraction * (double)(t_next - t) * 1e-9;
        }
        t_next = t;
        a_next = a;
    }
    return (double)(t_now - t_first) * 1e-9;   /* allocated before the window: at least its span */
}

double ml_block_age_of_growth(const struct ml_block_age_site *sites, unsigned count, enum ml_block_age_metric metric) {
    const struct ml_block_age_site *best = NULL;
    for (unsigned i = 0; i < count; i++) {
        const struct ml_block_age_site *s = &sites[i];
        const struct ml_pattern_result *r = s->result;
        if (!r || !(r->pattern == ML_PATTERN_LINEAR || r->pattern == ML_PATTERN_EXPONENTIAL) ||
            !(r->rate_bytes_per_s > 0))
            continue;
        if ((metric == ML_BLOCK_AGE_HEAP && s->is_mmap) || (metric == ML_BLOCK_AGE_MMAP && !s->is_mmap))
            continue;
        if (!best || r->rate_bytes_per_s > best->result->rate_bytes_per_s)
            best = s;
    }
    return best ? best->age_s : NAN;
}
