/* ml_pattern.h — growth-pattern analysis of one memory metric over a sliding window.
 *
 * Data model: a `struct ml_series` is a fixed-capacity ring of (timestamp, value) samples of one
 * metric (process RSS, heap or mmap bytes, or the live bytes of one call site). The collector pushes
 * one sample per interval; `ml_pattern_analyze` classifies the window as stable, linear, exponential,
 * spike or sawtooth and computes the rate, the R² of the fits and a leak confidence 0..100 built from
 * documented component scores (formula and weights: docs/patterns.md).
 *
 * The module is pure: no allocation, no stdio, no locks, no globals; only libm. It runs inside the
 * traced process (collector thread, 256 KiB stack): `ml_pattern_analyze` uses about 14 KiB of stack
 * and O(n²) time in the window size n (measured: 4 µs at n = 20, 0.9 ms at n = 256). A series is not thread-safe;
 * the caller serialises pushes and analyses of the same series (the collector thread owns them). */
#ifndef ML_PATTERN_H
#define ML_PATTERN_H
#include <stdbool.h>
#include <stdint.h>

#define ML_WINDOW_MIN 5        /* fewer samples: ML_PATTERN_INSUFFICIENT; smaller capacities are raised */
#define ML_WINDOW_DEFAULT 20   /* MEMLENS_WINDOW default */
#define ML_WINDOW_MAX 256      /* largest capacity of a series */

#define ML_BYTES_PER_MB 1048576.0   /* "MB" in rates is MiB, like every size the CLI prints */

/* ---- the sample ring ---------------------------------------------------------------------------- */

struct ml_series {
    uint64_t t_ns[ML_WINDOW_MAX];   /* sample time, any monotonic clock, nanoseconds */
    double v[ML_WINDOW_MAX];        /* sample value, bytes */
    unsigned head;                  /* slot of the next push */
    unsigned count;                 /* samples held, <= capacity */
    unsigned capacity;              /* window size, ML_WINDOW_MIN..ML_WINDOW_MAX */
};

/* Empties the series and sets its window: 0 means ML_WINDOW_DEFAULT, other values are clamped to
 * ML_WINDOW_MIN..ML_WINDOW_MAX. (Parsing MEMLENS_WINDOW and rejecting values < 5 is the config's job.) */
void ml_series_init(struct ml_series *series, unsigned capacity);
/* Appends a sample, dropping the oldest when full. Returns true on error (nothing stored): value not
 * finite, or t_ns earlier than the newest sample. Equal timestamps are accepted. */
bool ml_series_push(struct ml_series *series, uint64_t t_ns, double value);
/* Sample i of the window, 0 = oldest. Returns true if i >= count. */
bool ml_series_get(const struct ml_series *series, unsigned i, uint64_t *t_ns, double *value);

/* ---- analysis ----------------------------------------------------------------------------------- */

enum ml_pattern {
    ML_PATTERN_INSUFFICIENT,   /* fewer than ML_WINDOW_MIN samples, or no time elapsed */
    ML_PATTERN_STABLE,         /* no significant trend */
    ML_PATTERN_LINEAR,         /* significant straight-line trend (growth, or decline: rate < 0) */
    ML_PATTERN_EXPONENTIAL,    /* growth that accelerates and fits exp() clearly better than a line */
    ML_PATTERN_SPIKE,          /* short excursion above a flat baseline that has come back down */
    ML_PATTERN_SAWTOOTH,       /* repeated gradual rises each ended by a sharp drop (GC, eviction) */
};
/* "insufficient", "stable", "linear", "exponential", "spike", "sawtooth"; "unknown" otherwise. */
const char *ml_pattern_name(enum ml_pattern pattern);

/* Optional signals from outside the series. Unknown fields are negative or NaN; start from
 * ML_PATTERN_INPUTS_NONE. A NULL pointer means all unknown. */
struct ml_pattern_inputs {
    double trim_retained_fraction;   /* share of the metric not returned by the last malloc_trim(0):
                                        value after / value before, 0..1 (1: nothing came back) */
    double live_block_median_age_s;  /* median age of the growing site's live blocks, seconds (a lower
                                        bound from its counters: ml_block_age.h) */
    double prior_peak;               /* highest value of the metric before the window, bytes */
};
#define ML_PATTERN_INPUTS_NONE {-1.0, -1.0, -1.0}

/* Leak-confidence components, each in 0..1 (formula in docs/patterns.md). They are filled for every
 * analysed window so that a report can explain a score; the confidence uses them only for growth. */
struct ml_pattern_components {
    double growth;        /* sustained growth: Mann–Kendall tau of the fitted samples, floored at 0 */
    double consistency;   /* R² of the chosen model (linear, or exponential in value space) */
    double new_peaks;     /* how close the window's end is to its top, times 0.25 if below prior_peak */
    double trim;          /* trim_retained_fraction, when known */
    double age;           /* median live-block age / (half the window span), capped at 1, when known */
    double trough_rise;   /* sawtooth only: rise of the troughs over the window / mean drop */
    bool has_trim, has_age, has_prior_peak;
    double weight_sum;    /* sum of the weights of the known components (the normaliser) */
    double sample_cap;    /* min(1, samples / 10): few samples are weak evidence */
};

/* Component weights of the growth confidence (docs/patterns.md). */
#define ML_CONF_W_GROWTH 0.30
#define ML_CONF_W_CONSISTENCY 0.25
#define ML_CONF_W_NEW_PEAKS 0.20
#define ML_CONF_W_TRIM 0.15
#define ML_CONF_W_AGE 0.10
#define ML_CONF_SAWTOOTH_MAX 40.0   /* a sawtooth scores at most this, and only for rising troughs */

struct ml_pattern_result {
    enum ml_pattern pattern;
    const char *name;             /* ml_pattern_name(pattern) */
    unsigned confidence;          /* leak confidence 0..100; 0 unless growth or rising-trough sawtooth */
    struct ml_pattern_components parts;

    /* The window. Times are seconds since its first sample. */
    unsigned samples;
    double span_s;
    double first, last, min, max, median;
    double noise;                 /* robust noise: 1.4826 × MAD of residuals from a repeated-median line */

    /* The rate of the pattern: linear -> fitted slope; exponential -> growth at the window's end
     * (k × fitted value); sawtooth -> slope of the troughs; stable, spike -> fitted slope (informative);
     * insufficient -> 0. MB = MiB. */
    double rate_bytes_per_s;
    double rate_mb_per_min;

    /* Ordinary least-squares line v = intercept + slope × t over the fitted samples (all samples, or
     * the samples outside a detected spike when the trend is judged on the baseline). */
    double slope_bytes_per_s;
    double intercept;
    double r2;                    /* 0 when the values are all equal */
    double slope_t;               /* t-statistic of the slope, corrected for autocorrelation, capped ±1e9 */
    double resid_autocorr;        /* lag-1 autocorrelation of the residuals of the line */
    double tau;                   /* Mann–Kendall tau, -1..1 */

    /* Exponential model v = exp(a + k t), fitted on log values when all are positive. */
    bool exp_fitted;
    double exp_rate_per_s;        /* k: relative growth per second */
    double exp_doubling_s;        /* ln 2 / k when k > 0, else 0 */
    double exp_r2;                /* R² of exp(a + k t) against the values (value space, so comparable to r2) */
    double accel_ratio;           /* OLS slope of the second half / first half (0 when undefined) */

    struct {
        bool detected;            /* true also when a trend on the baseline overrides the spike class */
        bool excluded_from_fit;   /* the fit above used only the samples outside the spike */
        unsigned start, length;   /* window indices (0 = oldest) of the excursion */
        double height;            /* peak above the robust baseline, bytes */
        double peak;              /* peak value */
        double baseline;          /* robust baseline at the peak */
    } spike;

    struct {
        unsigned drops;           /* sharp drops detected (>= 2 for the sawtooth class) */
        double period_s;          /* mean time between drops */
        double mean_drop;         /* mean drop, bytes */
        double drop_fraction;     /* mean drop / range of the window */
        double trough_slope_bytes_per_s;   /* OLS slope through the value after each drop */
    } sawtooth;
};

/* Analyses the window of `series` (NULL extra: no optional signals) into *out; returns out->pattern.
 * Thresholds, tests and the confidence formula are documented in docs/patterns.md. */
enum ml_pattern ml_pattern_analyze(const struct ml_series *series, const struct ml_pattern_inputs *extra,
                                   struct ml_pattern_result *out);
#endif
