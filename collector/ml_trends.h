/* ml_trends.h — live growth trends, in the collector thread.
 *
 * Data model: one `struct ml_series` (ml_pattern.h) per process metric (RSS, heap live bytes, mapped
 * bytes) and, in a small fixed table, per call site among the largest; fed once per snapshot and
 * analysed right away into `trend` records (docs/format.md). Static memory only; every function is
 * called with the collector's flush lock held. */
#ifndef ML_TRENDS_H
#define ML_TRENDS_H
#include "ml_pattern.h"
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum ml_trend_metric { ML_TREND_RSS, ML_TREND_HEAP, ML_TREND_MMAP, ML_TREND_METRICS };

#define ML_TRENDS_TOP_SITES 5      /* sites analysed per snapshot: the ones holding the most live bytes */

/* Empties every series (new stream: start, fork child); `window` from the config (0: default). */
void ml_trends_reset(unsigned window);
/* The latest control-socket `trim`: its RSS after/before becomes the "not returned" signal. */
void ml_trends_note_trim(uint64_t rss_before, uint64_t rss_after);
/* After each snapshot, ml_trends_sites first, then ml_trends_process (which uses the block age of the
 * fastest-growing site analysed by the former). */

/* Per-site trends: `sites` are the current top sites (at most ML_TRENDS_TOP_SITES, live bytes
 * descending). Samples every tracked site (`sample_of` gives any site's counters) and writes a
 * `trend` record per top site with a full enough window. */
struct ml_trends_site_sample {
    uint64_t live_bytes;
    uint64_t allocated_bytes;   /* cumulative, never decreasing */
    bool is_mmap;               /* a mapping site (mmap_anon, mmap_file) */
};
typedef void ml_trends_sample_of(uint32_t site, void *arg, struct ml_trends_site_sample *out);
void ml_trends_sites(uint64_t t_ns, const uint32_t *sites, unsigned count, ml_trends_sample_of *sample_of, void *arg);
/* Pushes the process metrics sampled at t_ns, analyses each and writes a `trend` record for every
 * window of at least ML_WINDOW_MIN samples. */
void ml_trends_process(uint64_t t_ns, uint64_t rss, int64_t heap_live, uint64_t mmap_live);
/* The latest analysis of a process metric; NULL before ML_WINDOW_MIN samples. */
const struct ml_pattern_result *ml_trends_latest(enum ml_trend_metric metric);
/* The latest rate of a tracked site, bytes/s (0 when unknown). */
double ml_trends_site_rate(uint32_t site);

/* Formats a finite double with `decimals` digits after the point (NaN/inf as 0); no stdio. */
size_t ml_fmt_double(char *out, double v, unsigned decimals);
#endif
