/* trends.h — growth patterns of one process, computed offline from its stream: what `memlens
 * trends` prints and `memlens check --max-growth` gates.
 *
 * Data model: three series built from the `snapshot` records (rss, heap_live, mmap_live at each
 * snapshot's t), and two series per tracked site sampled after each `sites` record: the site's
 * cumulative live bytes (allocated - freed, summed over `sites` deltas), which is analysed, and its
 * cumulative allocated bytes, from which ml_block_age_median_s estimates the median age of its live
 * blocks (collector/ml_block_age.c). The tracked sites are the ML_TREND_SITES holding most live bytes
 * at the end of the stream. Each series keeps the last `window` samples; ml_pattern_analyze
 * (collector/ml_pattern.c, docs/patterns.md) classifies it. Sites are analysed first, so that each
 * process metric can use the block age of its fastest-growing site, as the collector does. `trend`
 * records written live by the collector are ignored: results are recomputed from the snapshots so
 * that they are reproducible.
 */
#ifndef MEMLENS_TOOLS_TRENDS_H
#define MEMLENS_TOOLS_TRENDS_H

#include "cli.h"
#include "ml_pattern.h"

#define ML_TREND_SITES 10

enum { ML_TREND_RSS, ML_TREND_HEAP, ML_TREND_MMAP, ML_TREND_METRICS };
extern const char *const ml_trend_metric_keys[ML_TREND_METRICS];   /* "rss", "heap", "mmap" */

typedef struct ml_trend_site {
    const ml_site *site;
    int64_t live;            /* running allocated - freed */
    int64_t allocated;       /* running allocated */
    struct ml_series series;
    struct ml_series allocated_series;
    double block_age_s;      /* NaN: unknown */
    struct ml_pattern_result res;
} ml_trend_site;

typedef struct ml_trends {
    struct ml_series metric[ML_TREND_METRICS];
    struct ml_pattern_result res[ML_TREND_METRICS];
    double block_age_s[ML_TREND_METRICS];   /* of the fastest-growing site of a matching kind; NaN: none */
    ml_trend_site *sites;                   /* fastest-growing first */
    size_t nsites;
} ml_trends;

/* Fills *t for stream s over the last `window` samples (ML_WINDOW_MIN..ML_WINDOW_MAX); exits on
 * out of memory. ml_trends_free releases it. */
void ml_trends_compute(const ml_stream *s, unsigned window, ml_trends *t);
void ml_trends_free(ml_trends *t);

/* True for the patterns that mean "keeps growing": linear or exponential with a positive rate. */
bool ml_trend_growing(const struct ml_pattern_result *r);

#endif
