/* ml_pattern.c — growth-pattern analysis of a sliding window of samples (see ml_pattern.h and
 * docs/patterns.md for the thresholds and the confidence formula, which this file implements).
 *
 * Pipeline for a window of n >= 5 samples (t relative to the first sample, in seconds, so that huge
 * timestamps never lose precision; values are doubles, exact for every byte count below 2^53 and
 * relatively exact above):
 *   1. statistics: min, max, median; ordinary least squares (two-pass, centred sums); Mann–Kendall tau;
 *   2. a robust line (Siegel's repeated median, 50 % breakdown) and its residuals, whose MAD is the
 *      noise; a second noise estimate from the MAD of first differences, insensitive to the shape;
 *   3. classification, first match wins: constant -> stable; spike (on robust residuals); sawtooth
 *      (sharp drops separated by gradual rises); otherwise the trend test on the samples outside any
 *      spike: not significant -> stable, else exponential if it fits exp() clearly better and
 *      accelerates, else linear;
 *   4. leak confidence from the component scores.
 *
 * Pure: no allocation, no stdio, no globals; scratch lives in a ~14 KiB stack workspace. */
#include "ml_pattern.h"

#include "ml_math.h"

#include <math.h>
#include <stddef.h>
#include <string.h>

/* ---- thresholds (docs/patterns.md, "Classification") ---- */
#define T_CRIT 4.0               /* |t| of the OLS slope below this: no significant trend */
#define MIN_CHANGE_SD 2.0        /* fitted change over the window below this many residual sd: stable */
#define MIN_CHANGE_BYTES 4096.0  /* ... or below one page */
#define T_STAT_CAP 1e9           /* |t| reported for an exact fit */
#define MAD_TO_SD 1.4826         /* MAD -> standard deviation for Gaussian noise */

#define SPIKE_MIN_NOISE 8.0      /* spike height >= this × noise */
#define SPIKE_MIN_LEVEL 0.02     /* ... and >= this × |median| */
#define SPIKE_CORE 0.5           /* core of the excursion: residual above this × height */
#define SPIKE_EDGE 0.25          /* edges next to the core above this × height are excluded too */
#define SPIKE_MAX_SHARE (1.0 / 3.0)  /* core at most this share of the window */
#define SPIKE_RETURN 0.25        /* last sample within this × height of the baseline */
#define SPIKE_BASE_SPREAD 0.5    /* baseline samples no lower than this × height below it */

#define SAW_STEP 0.25            /* a drop step falls by >= this × the residual range */
#define SAW_DROP 0.4             /* a drop (merged steps) totals >= this × the residual range */
#define SAW_DROP_NOISE 5.0       /* ... and >= this × the difference noise */
#define SAW_RISE 0.5             /* the rise between two drops >= this × their mean size */
#define SAW_MAX_STEP 0.6         /* ... with no single step above this × the rise (gradual) */
#define SAW_RISING_STEPS 0.6     /* ... and at least this share of its steps rising */
#define SAW_MAX_DROPS (ML_WINDOW_MAX / 2)

#define EXP_MIN_R2 0.9           /* exponential model's value-space R² at least this */
#define EXP_UNEXPLAINED 0.5      /* 1 - R²exp <= this × (1 - R²lin) */
#define EXP_MIN_ACCEL 1.25       /* second-half slope / first-half slope */

#define CONF_FULL_SAMPLES 10.0   /* the sample cap reaches 1 at this many samples */

static const char *const pattern_names[] = {
    [ML_PATTERN_INSUFFICIENT] = "insufficient", [ML_PATTERN_STABLE] = "stable",
    [ML_PATTERN_LINEAR] = "linear",             [ML_PATTERN_EXPONENTIAL] = "exponential",
    [ML_PATTERN_SPIKE] = "spike",               [ML_PATTERN_SAWTOOTH] = "sawtooth",
};

const char *ml_pattern_name(enum ml_pattern pattern) {
    if ((unsigned)pattern < sizeof pattern_names / sizeof *pattern_names)
        return pattern_names[pattern];
    return "unknown";
}

/* ---- the ring ---- */

void ml_series_init(struct ml_series *series, unsigned capacity) {
    if (capacity == 0)
        capacity = ML_WINDOW_DEFAULT;
    if (capacity < ML_WINDOW_MIN)
        capacity = ML_WINDOW_MIN;
    if (capacity > ML_WINDOW_MAX)
        capacity = ML_WINDOW_MAX;
    series->head = 0;
    series->count = 0;
    series->capacity = capacity;
}

static unsigned oldest_slot(const struct ml_series *series) {
    return (series->head + series->capacity - series->count) % series->capacity;
}

bool ml_series_push(struct ml_series *series, uint64_t t_ns, double value) {
    if (!isfinite(value) || series->capacity < ML_WINDOW_MIN || series->capacity > ML_WINDOW_MAX)
        return true;
    if (series->count > 0) {
        unsigned newest = (series->head + series->capacity - 1) % series->capacity;
        if (t_ns < series->t_ns[newest])
            return true;
    }
    series->t_ns[series->head] = t_ns;
    series->v[series->head] = value;
    series->head = (series->head + 1) % series->capacity;
    if (series->count < series->capacity)
        series->count++;
    return false;
}

bool ml_series_get(const struct ml_series *series, unsigned i, uint64_t *t_ns, double *value) {
    if (i >= series->count)
        return true;
    unsigned slot = (oldest_slot(series) + i) % series->capacity;
    if (t_ns)
        *t_ns = series->t_ns[slot];
    if (value)
        *value = series->v[slot];
    return false;
}

/* ---- numerical helpers ---- */

/* k-th smallest (0-based) of a[0..n-1], reordering a (Hoare selection, median-of-three pivot). */
static double select_kth(double *a, int n, int k) {
    int lo = 0, hi = n - 1;
    while (hi > lo) {
        double p1 = a[lo], p2 = a[lo + (hi - lo) / 2], p3 = a[hi];
        double pivot = p1 < p2 ? (p2 < p3 ? p2 : (p1 < p3 ? p3 : p1)) : (p1 < p3 ? p1 : (p2 < p3 ? p3 : p2));
        int i = lo, j = hi;
        while (i <= j) {
            while (a[i] < pivot)
                i++;
            while (a[j] > pivot)
                j--;
            if (i <= j) {
                double tmp = a[i];
                a[i] = a[j];
                a[j] = tmp;
                i++;
                j--;
            }
        }
        if (k <= j)
            hi = j;
        else if (k >= i)
            lo = i;
        else
            return a[k];
    }
    return a[k];
}

/* Median of a[0..n-1] (n >= 1), reordering a. */
static double median_inplace(double *a, int n) {
    double upper = select_kth(a, n, n / 2);
    if (n % 2)
        return upper;
    double lower = a[0];   /* after selection a[0..n/2-1] <= upper: the lower middle is their maximum */
    for (int i = 1; i < n / 2; i++)
        if (a[i] > lower)
            lower = a[i];
    return lower + (upper - lower) / 2;
}

struct line {
    double slope, intercept, r2, resid_sd, t_stat, sst, autocorr;
};

/* Ordinary least squares y = intercept + slope × x with centred two-pass sums. */
static void fit_line(const double *x, const double *y, unsigned n, struct line *out) {
    double mx = 0, my = 0;
    for (unsigned i = 0; i < n; i++) {
        mx += x[i];
        my += y[i];
    }
    mx /= n;
    my /= n;
    double sxx = 0, sxy = 0, syy = 0;
    for (unsigned i = 0; i < n; i++) {
        double dx = x[i] - mx, dy = y[i] - my;
        sxx += dx * dx;
        sxy += dx * dy;
        syy += dy * dy;
    }
    out->slope = sxx > 0 ? sxy / sxx : 0;
    out->intercept = my - out->slope * mx;
    double sse = 0, lag = 0, previous = 0;
    for (unsigned i = 0; i < n; i++) {
        double e = y[i] - (my + out->slope * (x[i] - mx));
        sse += e * e;
        if (i > 0)
            lag += e * previous;
        previous = e;
    }
    out->autocorr = sse > 0 ? lag / sse : 0;
    out->sst = syy;
    out->r2 = syy > 0 ? 1.0 - sse / syy : 0;
    if (out->r2 < 0)
        out->r2 = 0;
    if (out->r2 > 1)
        out->r2 = 1;
    out->resid_sd = n > 2 ? ml_sqrt(sse / (n - 2)) : 0;
    double se = sxx > 0 ? out->resid_sd / ml_sqrt(sxx) : 0;
    /* Serially correlated residuals (a wandering level, not a trend) carry fewer independent
     * samples: scale t by sqrt((1 - r1) / (1 + r1)), the effective-sample-size correction. */
    if (se > 0 && out->autocorr > 0)
        se *= ml_sqrt((1 + out->autocorr) / (1 - (out->autocorr < 0.99 ? out->autocorr : 0.99)));
    if (se > 0)
        out->t_stat = out->slope / se;
    else
        out->t_stat = out->slope > 0 ? T_STAT_CAP : out->slope < 0 ? -T_STAT_CAP : 0;
    if (out->t_stat > T_STAT_CAP)
        out->t_stat = T_STAT_CAP;
    if (out->t_stat < -T_STAT_CAP)
        out->t_stat = -T_STAT_CAP;
}

/* Mann–Kendall tau-a: (concordant - discordant pairs in time order) / all pairs. */
static double mann_kendall_tau(const double *y, unsigned n) {
    long s = 0;
    for (unsigned i = 0; i + 1 < n; i++)
        for (unsigned j = i + 1; j < n; j++)
            s += (y[j] > y[i]) - (y[j] < y[i]);
    return n > 1 ? (double)s / ((double)n * (n - 1) / 2.0) : 0;
}

/* Siegel's repeated-median line; pair and median scratch are n doubles each. */
static void repeated_median(const double *x, const double *y, unsigned n, double *pair, double *medians,
                            double *slope, double *intercept) {
    int m = 0;
    for (unsigned i = 0; i < n; i++) {
        int c = 0;
        for (unsigned j = 0; j < n; j++)
            if (x[j] != x[i])
                pair[c++] = (y[j] - y[i]) / (x[j] - x[i]);
        if (c > 0)
            medians[m++] = median_inplace(pair, c);
    }
    *slope = m > 0 ? median_inplace(medians, m) : 0;
    for (unsigned i = 0; i < n; i++)
        pair[i] = y[i] - *slope * x[i];
    *intercept = median_inplace(pair, (int)n);
}

/* ---- analysis ---- */

struct workspace {
    double x[ML_WINDOW_MAX];   /* seconds since the first sample */
    double y[ML_WINDOW_MAX];   /* values */
    double r[ML_WINDOW_MAX];   /* residuals from the robust line */
    double a[ML_WINDOW_MAX], b[ML_WINDOW_MAX], c[ML_WINDOW_MAX];   /* scratch */
    unsigned char excluded[ML_WINDOW_MAX];   /* spike samples left out of the trend fit */
    unsigned drop_top[SAW_MAX_DROPS], drop_bottom[SAW_MAX_DROPS];
};

/* Spike: a short excursion of the robust residuals well above the baseline, back down at the end,
 * over a baseline that stays within half the height below it. Marks w->excluded. */
static bool detect_spike(struct workspace *w, unsigned n, double line_slope, double line_intercept,
                         double noise, double median_y, struct ml_pattern_result *out) {
    memcpy(w->a, w->r, n * sizeof *w->a);
    double mr = median_inplace(w->a, (int)n);
    unsigned top = 0;
    for (unsigned i = 1; i < n; i++)
        if (w->r[i] > w->r[top])
            top = i;
    double height = w->r[top] - mr;
    if (!(height > 0) || height < SPIKE_MIN_NOISE * noise || height < SPIKE_MIN_LEVEL * fabs(median_y))
        return false;
    unsigned core = 0, first = n, last = 0;
    for (unsigned i = 0; i < n; i++) {
        double above = w->r[i] - mr;
        if (above > SPIKE_CORE * height) {
            core++;
            if (first == n)
                first = i;
            last = i;
        } else if (above < -SPIKE_BASE_SPREAD * height) {
            return false;   /* the "baseline" swings as much as the excursion: not a spike */
        }
    }
    unsigned max_core = (unsigned)(SPIKE_MAX_SHARE * n);
    if (max_core < 1)
        max_core = 1;
    if (core > max_core || w->r[n - 1] - mr > SPIKE_RETURN * height)
        return false;
    for (unsigned i = 0; i < n; i++) {
        bool in_core = w->r[i] - mr > SPIKE_CORE * height;
        bool edge = w->r[i] - mr > SPIKE_EDGE * height &&
                    ((i > 0 && w->r[i - 1] - mr > SPIKE_CORE * height) ||
                     (i + 1 < n && w->r[i + 1] - mr > SPIKE_CORE * height));
        w->excluded[i] = in_core || edge;
    }
    out->spike.detected = true;
    out->spike.start = first;
    out->spike.length = last - first + 1;
    out->spike.height = height;
    out->spike.peak = w->y[top];
    out->spike.baseline = line_intercept + line_slope * w->x[top] + mr;
    return true;
}

/* Sawtooth: >= 2 sharp drops of the detrended series, each pair separated by a gradual rise. */
static bool detect_sawtooth(struct workspace *w, unsigned n, double diff_noise, struct ml_pattern_result *out) {
    double rmin = w->r[0], rmax = w->r[0];
    for (unsigned i = 1; i < n; i++) {
        if (w->r[i] < rmin)
            rmin = w->r[i];
        if (w->r[i] > rmax)
            rmax = w->r[i];
    }
    double range = rmax - rmin;
    if (!(range > 0))
        return false;
    unsigned drops = 0;
    double total_drop = 0;
    for (unsigned i = 0; i + 1 < n;) {
        if (w->r[i + 1] - w->r[i] > -SAW_STEP * range) {
            i++;
            continue;
        }
        unsigned j = i + 1;   /* merge consecutive steep falls into one drop */
        while (j + 1 < n && w->r[j + 1] - w->r[j] <= -SAW_STEP * range)
            j++;
        double size = w->r[i] - w->r[j], fall = w->y[i] - w->y[j];   /* detrended, and real */
        if (size >= SAW_DROP * range && fall >= SAW_DROP * range && fall >= SAW_DROP_NOISE * diff_noise &&
            drops < SAW_MAX_DROPS) {
            w->drop_top[drops] = i;
            w->drop_bottom[drops] = j;
            drops++;
            total_drop += fall;
        }
        i = j;
    }
    if (drops < 2)
        return false;
    for (unsigned k = 0; k + 1 < drops; k++) {
        unsigned from = w->drop_bottom[k], to = w->drop_top[k + 1];
        double size_k = w->r[w->drop_top[k]] - w->r[from];
        double size_next = w->r[to] - w->r[w->drop_bottom[k + 1]];
        double rise = w->r[to] - w->r[from];
        if (to < from + 2 || rise < SAW_RISE * (size_k + size_next) / 2)
            return false;
        unsigned rising = 0;
        for (unsigned i = from; i < to; i++) {
            if (w->r[i + 1] - w->r[i] > SAW_MAX_STEP * rise)
                return false;   /* a jump, not a gradual rise: repeated spikes */
            rising += w->y[i + 1] > w->y[i];
        }
        if (rising < SAW_RISING_STEPS * (to - from))
            return false;
    }
    out->sawtooth.drops = drops;
    out->sawtooth.mean_drop = total_drop / drops;
    out->sawtooth.drop_fraction = (out->max > out->min) ? out->sawtooth.mean_drop / (out->max - out->min) : 0;
    out->sawtooth.period_s = (w->x[w->drop_top[drops - 1]] - w->x[w->drop_top[0]]) / (drops - 1);
    for (unsigned k = 0; k < drops; k++) {
        w->a[k] = w->x[w->drop_bottom[k]];
        w->b[k] = w->y[w->drop_bottom[k]];
    }
    struct line troughs;
    fit_line(w->a, w->b, drops, &troughs);
    out->sawtooth.trough_slope_bytes_per_s = troughs.slope;
    return true;
}

/* Trend on xs/ys (m samples): fills the fit fields and returns stable, linear or exponential. */
static enum ml_pattern classify_trend(const double *xs, const double *ys, unsigned m, double *scratch,
                                      struct ml_pattern_result *out) {
    struct line lin;
    fit_line(xs, ys, m, &lin);
    out->slope_bytes_per_s = lin.slope;
    out->intercept = lin.intercept;
    out->r2 = lin.r2;
    out->slope_t = lin.t_stat;
    out->resid_autocorr = lin.autocorr;
    out->tau = mann_kendall_tau(ys, m);
    out->rate_bytes_per_s = lin.slope;

    double log_intercept = 0;
    bool positive = true;
    for (unsigned i = 0; i < m; i++)
        positive = positive && ys[i] > 0;
    if (positive) {
        for (unsigned i = 0; i < m; i++)
            scratch[i] = ml_log(ys[i]);
        struct line lg;
        fit_line(xs, scratch, m, &lg);
        log_intercept = lg.intercept;
        double sse = 0;
        for (unsigned i = 0; i < m; i++) {
            double e = ys[i] - ml_exp(lg.intercept + lg.slope * xs[i]);
            sse += e * e;
        }
        out->exp_fitted = true;
        out->exp_rate_per_s = lg.slope;
        out->exp_doubling_s = lg.slope > 0 ? ML_LN2 / lg.slope : 0;
        out->exp_r2 = lin.sst > 0 ? 1.0 - sse / lin.sst : 0;
        if (out->exp_r2 < 0)
            out->exp_r2 = 0;
    }
    unsigned half = m / 2;
    struct line early, late;
    fit_line(xs, ys, half, &early);
    fit_line(xs + half, ys + half, m - half, &late);
    out->accel_ratio = early.slope > 0 ? late.slope / early.slope : 0;

    double change = lin.slope * (xs[m - 1] - xs[0]);
    bool significant = fabs(lin.t_stat) >= T_CRIT && fabs(change) >= MIN_CHANGE_SD * lin.resid_sd &&
                       fabs(change) >= MIN_CHANGE_BYTES;
    if (!significant)
        return ML_PATTERN_STABLE;
    if (out->exp_fitted && lin.slope > 0 && out->exp_rate_per_s > 0 && out->exp_r2 >= EXP_MIN_R2 &&
        1.0 - out->exp_r2 <= EXP_UNEXPLAINED * (1.0 - lin.r2) && out->accel_ratio >= EXP_MIN_ACCEL) {
        /* growth now: k × the exponential model at the last sample */
        out->rate_bytes_per_s = out->exp_rate_per_s * ml_exp(log_intercept + out->exp_rate_per_s * xs[m - 1]);
        return ML_PATTERN_EXPONENTIAL;
    }
    return ML_PATTERN_LINEAR;
}

static double clamp01(double v) {
    return v < 0 ? 0 : v > 1 ? 1 : v;
}

static bool known(double v) {
    return isfinite(v) && v >= 0;
}

/* Component scores over the fitted samples, then the confidence for the class. */
static void score(const double *ys, unsigned m, const struct ml_pattern_inputs *extra,
                  struct ml_pattern_result *out) {
    struct ml_pattern_components *p = &out->parts;
    p->growth = clamp01(out->tau);
    p->consistency = clamp01(out->pattern == ML_PATTERN_EXPONENTIAL ? out->exp_r2 : out->r2);

    double lo = ys[0], hi = ys[0], end_max = ys[m - 1];
    for (unsigned i = 1; i < m; i++) {
        lo = ys[i] < lo ? ys[i] : lo;
        hi = ys[i] > hi ? ys[i] : hi;
    }
    unsigned tail = (m + 3) / 4;
    for (unsigned i = m - tail; i < m; i++)
        end_max = ys[i] > end_max ? ys[i] : end_max;
    p->new_peaks = hi > lo ? (end_max - lo) / (hi - lo) : 0;
    p->has_prior_peak = extra && known(extra->prior_peak);
    if (p->has_prior_peak && end_max <= extra->prior_peak)
        p->new_peaks *= 0.25;

    p->weight_sum = ML_CONF_W_GROWTH + ML_CONF_W_CONSISTENCY + ML_CONF_W_NEW_PEAKS;
    double sum = ML_CONF_W_GROWTH * p->growth + ML_CONF_W_CONSISTENCY * p->consistency +
                 ML_CONF_W_NEW_PEAKS * p->new_peaks;
    p->has_trim = extra && known(extra->trim_retained_fraction);
    if (p->has_trim) {
        p->trim = clamp01(extra->trim_retained_fraction);
        p->weight_sum += ML_CONF_W_TRIM;
        sum += ML_CONF_W_TRIM * p->trim;
    }
    p->has_age = extra && known(extra->live_block_median_age_s);
    if (p->has_age) {
        double half_span = out->span_s / 2;
        p->age = half_span > 0 ? clamp01(extra->live_block_median_age_s / half_span) : 1;
        p->weight_sum += ML_CONF_W_AGE;
        sum += ML_CONF_W_AGE * p->age;
    }
    p->sample_cap = clamp01(out->samples / CONF_FULL_SAMPLES);

    double confidence = 0;
    if ((out->pattern == ML_PATTERN_LINEAR || out->pattern == ML_PATTERN_EXPONENTIAL) && out->rate_bytes_per_s > 0)
        confidence = 100.0 * sum / p->weight_sum * p->sample_cap;
    else if (out->pattern == ML_PATTERN_SAWTOOTH)
        confidence = ML_CONF_SAWTOOTH_MAX * p->trough_rise * p->sample_cap;
    confidence = confidence > 0 ? (double)(uint64_t)(confidence + 0.5) : 0;   /* rounded; NaN: 0 */
    out->confidence = confidence < 0 ? 0 : confidence > 100 ? 100 : (unsigned)confidence;
}

enum ml_pattern ml_pattern_analyze(const struct ml_series *series, const struct ml_pattern_inputs *extra,
                                   struct ml_pattern_result *out) {
    memset(out, 0, sizeof *out);
    out->pattern = ML_PATTERN_INSUFFICIENT;
    out->name = ml_pattern_name(out->pattern);
    unsigned n = series->count;
    out->samples = n;
    if (n == 0 || series->capacity < ML_WINDOW_MIN || series->capacity > ML_WINDOW_MAX || n > series->capacity)
        return out->pattern;

    struct workspace w;
    uint64_t t0 = 0;
    for (unsigned i = 0; i < n; i++) {
        uint64_t t;
        ml_series_get(series, i, &t, &w.y[i]);
        if (i == 0)
            t0 = t;
        w.x[i] = (double)(t - t0) * 1e-9;
    }
    out->span_s = w.x[n - 1];
    out->first = w.y[0];
    out->last = w.y[n - 1];
    out->min = out->max = w.y[0];
    for (unsigned i = 1; i < n; i++) {
        out->min = w.y[i] < out->min ? w.y[i] : out->min;
        out->max = w.y[i] > out->max ? w.y[i] : out->max;
    }
    memcpy(w.a, w.y, n * sizeof *w.a);
    out->median = median_inplace(w.a, (int)n);
    if (n < ML_WINDOW_MIN || !(out->span_s > 0))
        return out->pattern;

    /* robust line, residual noise and difference noise */
    double rslope, rintercept;
    repeated_median(w.x, w.y, n, w.a, w.b, &rslope, &rintercept);
    for (unsigned i = 0; i < n; i++)
        w.r[i] = w.y[i] - (rintercept + rslope * w.x[i]);
    memcpy(w.a, w.r, n * sizeof *w.a);
    double mr = median_inplace(w.a, (int)n);
    for (unsigned i = 0; i < n; i++)
        w.a[i] = fabs(w.r[i] - mr);
    out->noise = MAD_TO_SD * median_inplace(w.a, (int)n);
    for (unsigned i = 0; i + 1 < n; i++)
        w.b[i] = w.y[i + 1] - w.y[i];
    double dmed = median_inplace(w.b, (int)n - 1);
    for (unsigned i = 0; i + 1 < n; i++)
        w.b[i] = fabs(w.y[i + 1] - w.y[i] - dmed);
    double diff_noise = MAD_TO_SD * median_inplace(w.b, (int)n - 1) / 1.41421356237309504880;   /* sqrt(2) */

    /* samples the trend is judged on: all, or those outside a spike */
    memset(w.excluded, 0, n);
    bool spike = out->max > out->min && detect_spike(&w, n, rslope, rintercept, out->noise, out->median, out);
    unsigned m = 0;
    for (unsigned i = 0; i < n; i++) {
        if (!w.excluded[i]) {
            w.b[m] = w.x[i];
            w.c[m] = w.y[i];
            m++;
        }
    }
    if (spike && m < ML_WINDOW_MIN) {   /* too little baseline left to judge a trend: not a spike */
        spike = false;
        memset(&out->spike, 0, sizeof out->spike);
        m = 0;
        for (unsigned i = 0; i < n; i++, m++) {
            w.b[m] = w.x[i];
            w.c[m] = w.y[i];
        }
    }
    out->spike.excluded_from_fit = spike;

    enum ml_pattern trend = classify_trend(w.b, w.c, m, w.a, out);
    if (out->max == out->min)
        out->pattern = ML_PATTERN_STABLE;
    else if (spike)
        out->pattern = trend == ML_PATTERN_STABLE ? ML_PATTERN_SPIKE : trend;
    else if (detect_sawtooth(&w, n, diff_noise, out))
        out->pattern = ML_PATTERN_SAWTOOTH;
    else
        out->pattern = trend;
    out->name = ml_pattern_name(out->pattern);

    if (out->pattern == ML_PATTERN_SAWTOOTH) {
        out->rate_bytes_per_s = out->sawtooth.trough_slope_bytes_per_s;
        double rise = out->sawtooth.trough_slope_bytes_per_s * out->span_s;
        out->parts.trough_rise = out->sawtooth.mean_drop > 0 ? clamp01(rise / out->sawtooth.mean_drop) : 0;
    }
    out->rate_mb_per_min = out->rate_bytes_per_s * 60.0 / ML_BYTES_PER_MB;
    score(w.c, m, extra, out);
    return out->pattern;
}
