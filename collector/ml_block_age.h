/* ml_block_age.h — median age of a call site's live blocks, estimated from its counters alone.
 *
 * Data model: the caller keeps, next to a site's window of live bytes L(t), a `struct ml_series`
 * (ml_pattern.h) of the site's cumulative allocated bytes A(t), sampled at the same instants. No
 * per-block timestamp exists (a live block costs at most 48 bytes): assuming the site frees its
 * oldest blocks first (FIFO), its live blocks are the last L(now) bytes it allocated, so half of the
 * live bytes were allocated after the instant t* where A(now) − A(t*) = L(now)/2, and the median age
 * is now − t*. FIFO is the order that leaves the youngest live set, so the estimate is a lower bound on
 * the true median age; it is exact for a site that never frees (docs/patterns.md, component `a`).
 *
 * The process metrics (rss, heap, mmap) borrow the age of their fastest-growing site of a matching
 * kind. Pure: no allocation, no stdio, no globals; used by the collector (ml_trends.c) and by
 * `memlens trends` (tools/cmd_trends.c). */
#ifndef ML_BLOCK_AGE_H
#define ML_BLOCK_AGE_H
#include "ml_pattern.h"
#include <stdbool.h>

/* Median age in seconds of the live blocks of a site whose cumulative allocated bytes are `allocated`
 * (newest sample = now) and which holds `live_bytes` now. t* is interpolated linearly between samples;
 * when it falls before the oldest sample the result is the window's span (the age is at least that,
 * and the confidence component saturates at half the span anyway). NaN when unknown: fewer than 2
 * samples, no time elapsed, or no live bytes. */
double ml_block_age_median_s(const struct ml_series *allocated, double live_bytes);

/* Which sites may lend their block age to a process metric; the order is that of the metrics. */
enum ml_block_age_metric {
    ML_BLOCK_AGE_RSS,    /* any site */
    ML_BLOCK_AGE_HEAP,   /* heap sites (malloc family, new, buffer calls) */
    ML_BLOCK_AGE_MMAP,   /* mapping sites (mmap_anon, mmap_file) */
};

/* One tracked site as seen by ml_block_age_of_growth. */
struct ml_block_age_site {
    const struct ml_pattern_result *result;   /* its latest analysis; NULL: not analysed now */
    double age_s;                             /* ml_block_age_median_s of the site; NaN: unknown */
    bool is_mmap;
};

/* The block age of the fastest-growing site among `sites` that the metric may use: a site grows when
 * its pattern is linear or exponential with a positive rate. NaN when no such site is analysed. */
double ml_block_age_of_growth(const struct ml_block_age_site *sites, unsigned count, enum ml_block_age_metric metric);
#endif
