/* ml_trends.c — live growth trends (see ml_trends.h): the sliding windows of the process metrics and
 * of the largest call sites, their analysis (ml_pattern.c) and the `trend` records.
 *
 * State, all static and protected by the collector's flush lock: `process[]`, one series per process
 * metric with the highest value that has left its window (the "prior peak" signal); `site_slots[]`, a
 * fixed table of per-site series: a site enters when it is among the top sites of a snapshot, taking
 * the slot that has been out of the top the longest; every slot is sampled at each snapshot so that a
 * window has no holes while the site stays interesting. A slot keeps two series sampled together: the
 * site's live bytes (analysed) and its cumulative allocated bytes, from which ml_block_age.c estimates
 * the median age of its live blocks; the process metrics use the age of their fastest-growing site. */
#define _GNU_SOURCE
#include "ml_trends.h"
#include "ml_block_age.h"
#include "ml_out.h"
#include "ml_prim.h"

#include <math.h>
#include <string.h>

#define SITE_SLOTS 16

struct tracked {
    struct ml_series series;
    double prior_peak;                     /* max value dropped from the window; -1 none yet */
    struct ml_pattern_result result;
    double block_age_s;                    /* input of the latest analysis; NaN unknown */
    bool analysed;
};

static struct tracked process[ML_TREND_METRICS];
/* A slot's few scalars are kept apart from its series (8 KiB each), in one small array, so that finding
 * a site and checking the slots read a cache line, not a page per slot: a short program would
 * otherwise take 16 page faults just to learn that every slot is free. */
static struct slot_head {
    uint32_t site;                         /* 0: free */
    bool is_mmap;
    bool analysed;                         /* a copy of the slot's tracked.analysed */
    uint64_t last_top;                     /* snapshot number when it was last among the top sites */
} heads[SITE_SLOTS];
static struct site_slot {
    struct ml_series allocated;            /* cumulative allocated bytes, sampled with tracked.series */
    struct tracked tracked;
} site_slots[SITE_SLOTS];
static unsigned window;
static uint64_t snapshot_number;
static double trim_retained = -1.0;        /* rss_after / rss_before of the latest trim; -1 none */

static const char *const metric_names[ML_TREND_METRICS] = { "rss", "heap", "mmap" };
_Static_assert(ML_TREND_RSS == (int)ML_BLOCK_AGE_RSS && ML_TREND_HEAP == (int)ML_BLOCK_AGE_HEAP &&
               ML_TREND_MMAP == (int)ML_BLOCK_AGE_MMAP, "a metric is its own block-age kind");

void ml_trends_reset(unsigned window_samples) {
    window = window_samples;
    for (int m = 0; m < ML_TREND_METRICS; m++) {
        ml_series_init(&process[m].series, window);
        process[m].prior_peak = -1.0;
        process[m].analysed = false;
    }
    memset(heads, 0, sizeof heads);
    snapshot_number = 0;
    trim_retained = -1.0;
}

void ml_trends_note_trim(uint64_t rss_before, uint64_t rss_after) {
    if (!rss_before) return;
    double f = (double)rss_after / (double)rss_before;
    trim_retained = f > 1.0 ? 1.0 : f;
}

size_t ml_fmt_double(char *out, double v, unsigned decimals) {
    size_t n = 0;
    if (!isfinite(v)) v = 0;
    if (decimals > 9) decimals = 9;
    uint64_t scale = 1;
    for (unsigned i = 0; i < decimals; i++) scale *= 10;
    if (v < 0) { out[n++] = '-'; v = -v; }
    if (v > 9e15 / (double)scale) v = 9e15 / (double)scale;   /* stays an exact JSON integer part */
    uint64_t fixed = (uint64_t)(v * (double)scale + 0.5);   /* v >= 0: rounded half up */
    if (fixed == 0 && n) n = 0;                                /* no "-0" */
    n += ml_fmt_u64(out + n, fixed / scale);
    if (decimals) {
        out[n++] = '.';
        uint64_t frac = fixed % scale;
        for (uint64_t d = scale / 10; d; d /= 10) { out[n++] = (char)('0' + frac / d); frac %= d; }
    }
    return n;
}

static void out_double(const char *key, double v, unsigned decimals) {
    char tmp[48];
    tmp[ml_fmt_double(tmp, v, decimals)] = 0;
    ml_out_key(key);
    ml_out_raw(tmp);
}

static void push(struct tracked *t, uint64_t t_ns, double value) {
    struct ml_series *s = &t->series;
    if (s->count == s->capacity) {   /* the oldest sample leaves the window */
        double oldest;
        uint64_t when;
        if (!ml_series_get(s, 0, &when, &oldest) && oldest > t->prior_peak) t->prior_peak = oldest;
    }
    ml_series_push(s, t_ns, value);
}

/* Analyses the window with `block_age_s` (NaN unknown) as the age signal and writes its record. */
static void analyse_and_write(struct tracked *t, uint64_t t_ns, const char *metric, uint32_t site, double block_age_s) {
    t->analysed = false;
    if (t->series.count < ML_WINDOW_MIN) return;
    struct ml_pattern_inputs inputs = ML_PATTERN_INPUTS_NONE;
    inputs.trim_retained_fraction = trim_retained;
    inputs.live_block_median_age_s = block_age_s;
    inputs.prior_peak = t->prior_peak;
    t->block_age_s = block_age_s;
    ml_pattern_analyze(&t->series, &inputs, &t->result);
    if (t->result.pattern == ML_PATTERN_INSUFFICIENT) return;
    t->analysed = true;
    ml_out_begin("trend");
    ml_out_u64("t", t_ns);
    ml_out_str("metric", metric);
    if (site) ml_out_u64("site", site);
    ml_out_str("pattern", t->result.name);
    out_double("rate_bps", t->result.rate_bytes_per_s, 1);
    out_double("mb_per_min", t->result.rate_mb_per_min, 3);
    out_double("r2", t->result.r2 < 0 ? 0 : t->result.r2, 4);
    ml_out_u64("confidence", t->result.confidence);
    ml_out_u64("samples", t->result.samples);
    if (t->result.parts.has_age) out_double("block_age_s", block_age_s, 3);
    ml_out_end();
}

void ml_trends_process(uint64_t t_ns, uint64_t rss, int64_t heap_live, uint64_t mmap_live) {
    double values[ML_TREND_METRICS] = { (double)rss, (double)(heap_live > 0 ? heap_live : 0), (double)mmap_live };
    struct ml_block_age_site ages[SITE_SLOTS];
    for (unsigned i = 0; i < SITE_SLOTS; i++) {
        const struct tracked *t = &site_slots[i].tracked;
        bool used = heads[i].site && heads[i].analysed;
        ages[i] = (struct ml_block_age_site){ used ? &t->result : NULL, used ? t->block_age_s : NAN, heads[i].is_mmap };
    }
    for (int m = 0; m < ML_TREND_METRICS; m++) {
        push(&process[m], t_ns, values[m]);
        analyse_and_write(&process[m], t_ns, metric_names[m], 0,
                          ml_block_age_of_growth(ages, SITE_SLOTS, (enum ml_block_age_metric)m));
    }
}

static int slot_of(uint32_t site) {
    for (unsigned i = 0; i < SITE_SLOTS; i++)
        if (heads[i].site == site) return (int)i;
    return -1;
}

void ml_trends_sites(uint64_t t_ns, const uint32_t *sites, unsigned count, ml_trends_sample_of *sample_of, void *arg) {
    snapshot_number++;
    for (unsigned k = 0; k < count; k++) {
        int i = slot_of(sites[k]);
        if (i < 0) {   /* take a free slot, else the one out of the top for the longest */
            i = 0;
            for (unsigned j = 0; j < SITE_SLOTS; j++) {
                if (!heads[j].site) { i = (int)j; break; }
                if (heads[j].last_top < heads[i].last_top) i = (int)j;
            }
            heads[i].site = sites[k];
            ml_series_init(&site_slots[i].tracked.series, window);
            ml_series_init(&site_slots[i].allocated, window);
            site_slots[i].tracked.prior_peak = -1.0;
            site_slots[i].tracked.analysed = false;
            heads[i].analysed = false;
        }
        heads[i].last_top = snapshot_number;
    }
    for (unsigned i = 0; i < SITE_SLOTS; i++) {
        struct site_slot *slot = &site_slots[i];
        if (!heads[i].site) continue;
        struct ml_trends_site_sample sample;
        sample_of(heads[i].site, arg, &sample);
        heads[i].is_mmap = sample.is_mmap;
        push(&slot->tracked, t_ns, (double)sample.live_bytes);
        ml_series_push(&slot->allocated, t_ns, (double)sample.allocated_bytes);
        if (heads[i].last_top == snapshot_number)
            analyse_and_write(&slot->tracked, t_ns, "site", heads[i].site,
                              ml_block_age_median_s(&slot->allocated, (double)sample.live_bytes));
        else slot->tracked.analysed = false;
        heads[i].analysed = slot->tracked.analysed;
    }
}

const struct ml_pattern_result *ml_trends_latest(enum ml_trend_metric metric) {
    return metric < ML_TREND_METRICS && process[metric].analysed ? &process[metric].result : NULL;
}

double ml_trends_site_rate(uint32_t site) {
    int i = slot_of(site);
    return i >= 0 && heads[i].analysed ? site_slots[i].tracked.result.rate_bytes_per_s : 0.0;
}
