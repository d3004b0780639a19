/* Unit tests of the pattern analysis (collector/ml_pattern.c) on synthetic series: one per pattern
 * with seeded Gaussian noise (splitmix64 + Box–Muller, so every run sees the same numbers), asserting
 * the class, the rate within 5 % and the confidence band; then the ring and the edge cases. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>

#include "ml_pattern.h"

TestSuite(pattern);

#define MB ML_BYTES_PER_MB
#define SEC 1000000000ull
#define T0 (1700000000ull * SEC)   /* a realistic CLOCK_REALTIME origin: t must be taken relative */

#include "test_rng.h"

static double gaussian(double sd) {   /* Box–Muller */
    return sd * sqrt(-2.0 * log(uniform01())) * cos(2.0 * M_PI * uniform01());
}

static void assert_within(double got, double want, double tolerance, const char *what) {
    cr_assert(fabs(got - want) <= tolerance * fabs(want), "%s: got %g, want %g ± %.0f %%", what, got, want,
              tolerance * 100);
}

static void analyze(const struct ml_series *s, const struct ml_pattern_inputs *extra, struct ml_pattern_result *r) {
    cr_assert_eq(ml_pattern_analyze(s, extra, r), r->pattern);
    cr_assert_str_eq(r->name, ml_pattern_name(r->pattern));
}

/* ---- one series per pattern ---- */

Test(pattern, stable_churn) {
    rng_seed(1);
    struct ml_series s;
    ml_series_init(&s, 0);
    for (unsigned i = 0; i < 20; i++)
        cr_assert_not(ml_series_push(&s, T0 + i * SEC, 300 * MB + gaussian(4 * MB)));
    struct ml_pattern_result r;
    analyze(&s, NULL, &r);
    cr_assert_eq(r.pattern, ML_PATTERN_STABLE, "got %s", r.name);
    cr_assert_leq(r.confidence, 20);
    cr_assert_lt(fabs(r.slope_t), 3.0);
}

Test(pattern, linear_leak) {
    rng_seed(2);
    struct ml_series s;
    ml_series_init(&s, 0);
    double rate = 2.5 * MB;
    for (unsigned i = 0; i < 20; i++)
        ml_series_push(&s, T0 + i * SEC, 120 * MB + rate * i + gaussian(1 * MB));
    struct ml_pattern_result r;
    analyze(&s, NULL, &r);
    cr_assert_eq(r.pattern, ML_PATTERN_LINEAR, "got %s", r.name);
    assert_within(r.rate_bytes_per_s, rate, 0.05, "rate");
    assert_within(r.rate_mb_per_min, 150.0, 0.05, "MB/min");
    cr_assert_gt(r.r2, 0.95);
    cr_assert_geq(r.confidence, 80, "confidence %u", r.confidence);
    cr_assert_not(r.parts.has_trim);
    cr_assert_float_eq(r.parts.weight_sum, ML_CONF_W_GROWTH + ML_CONF_W_CONSISTENCY + ML_CONF_W_NEW_PEAKS, 1e-12);

    /* memory kept after malloc_trim and old blocks raise it; a refill below the prior peak lowers it */
    struct ml_pattern_inputs leak = {.trim_retained_fraction = 0.98, .live_block_median_age_s = 9, .prior_peak = -1};
    struct ml_pattern_result with;
    analyze(&s, &leak, &with);
    cr_assert(with.parts.has_trim && with.parts.has_age);
    cr_assert_geq(with.confidence, 85, "confidence %u", with.confidence);
    struct ml_pattern_inputs refill = {.trim_retained_fraction = 0.1, .live_block_median_age_s = 0.5,
                                       .prior_peak = 400 * MB};
    analyze(&s, &refill, &with);
    cr_assert_eq(with.pattern, ML_PATTERN_LINEAR);
    cr_assert_lt(with.confidence, r.confidence - 20, "refill %u vs %u", with.confidence, r.confidence);
}

Test(pattern, exponential_growth) {
    rng_seed(3);
    struct ml_series s;
    ml_series_init(&s, 0);
    double k = 0.08;   /* ×4.6 over the window */
    for (unsigned i = 0; i < 20; i++)
        ml_series_push(&s, T0 + i * SEC, 20 * MB * exp(k * i) + gaussian(0.3 * MB));
    struct ml_pattern_result r;
    analyze(&s, NULL, &r);
    cr_assert_eq(r.pattern, ML_PATTERN_EXPONENTIAL, "got %s (r2 %g exp_r2 %g accel %g)", r.name, r.r2, r.exp_r2,
                 r.accel_ratio);
    assert_within(r.exp_rate_per_s, k, 0.05, "k");
    assert_within(r.rate_bytes_per_s, k * 20 * MB * exp(k * 19), 0.05, "rate at the end");
    assert_within(r.exp_doubling_s, log(2) / k, 0.05, "doubling time");
    cr_assert_gt(r.exp_r2, r.r2);
    cr_assert_geq(r.confidence, 80, "confidence %u", r.confidence);
}

Test(pattern, spike_freed) {
    rng_seed(4);
    struct ml_series s;
    ml_series_init(&s, 0);
    for (unsigned i = 0; i < 20; i++)
        ml_series_push(&s, T0 + i * SEC, 150 * MB + (i >= 8 && i <= 10 ? 64 * MB : 0) + gaussian(1 * MB));
    struct ml_pattern_result r;
    analyze(&s, NULL, &r);
    cr_assert_eq(r.pattern, ML_PATTERN_SPIKE, "got %s", r.name);
    cr_assert_leq(r.confidence, 20);
    cr_assert(r.spike.detected && r.spike.excluded_from_fit);
    cr_assert_eq(r.spike.start, 8);
    cr_assert_eq(r.spike.length, 3);
    assert_within(r.spike.height, 64 * MB, 0.1, "spike height");
    assert_within(r.spike.baseline, 150 * MB, 0.02, "baseline");
}

Test(pattern, spike_over_a_leak_keeps_the_leak) {
    rng_seed(5);
    struct ml_series s;
    ml_series_init(&s, 0);
    double rate = 1 * MB;
    for (unsigned i = 0; i < 20; i++)
        ml_series_push(&s, T0 + i * SEC, 80 * MB + rate * i + (i == 6 || i == 7 ? 64 * MB : 0) + gaussian(0.5 * MB));
    struct ml_pattern_result r;
    analyze(&s, NULL, &r);
    cr_assert_eq(r.pattern, ML_PATTERN_LINEAR, "got %s", r.name);
    cr_assert(r.spike.detected && r.spike.excluded_from_fit);
    assert_within(r.rate_bytes_per_s, rate, 0.05, "baseline rate");
    cr_assert_geq(r.confidence, 80, "confidence %u", r.confidence);
}

static void push_sawtooth(struct ml_series *s, unsigned n, double trough_rate, double noise) {
    for (unsigned i = 0; i < n; i++) {
        unsigned phase = i % 6;   /* five rises of 8 MB, then the collection drops to the trough */
        ml_series_push(s, T0 + i * SEC, 100 * MB + trough_rate * i + phase * 8 * MB + gaussian(noise));
    }
}

Test(pattern, sawtooth_flat_troughs) {
    rng_seed(6);
    struct ml_series s;
    ml_series_init(&s, 30);
    push_sawtooth(&s, 30, 0, 0.5 * MB);
    struct ml_pattern_result r;
    analyze(&s, NULL, &r);
    cr_assert_eq(r.pattern, ML_PATTERN_SAWTOOTH, "got %s", r.name);
    cr_assert_eq(r.sawtooth.drops, 4);
    assert_within(r.sawtooth.period_s, 6.0, 0.05, "period");
    assert_within(r.sawtooth.mean_drop, 40 * MB, 0.05, "drop");
    cr_assert_leq(r.confidence, 30, "confidence %u", r.confidence);
}

Test(pattern, sawtooth_rising_troughs) {
    rng_seed(7);
    struct ml_series s;
    ml_series_init(&s, 40);
    double rate = 1 * MB;
    push_sawtooth(&s, 40, rate, 0.05 * MB);
    struct ml_pattern_result r;
    analyze(&s, NULL, &r);
    cr_assert_eq(r.pattern, ML_PATTERN_SAWTOOTH, "got %s", r.name);
    assert_within(r.rate_bytes_per_s, rate, 0.05, "trough rate");
    cr_assert_gt(r.confidence, 20, "confidence %u", r.confidence);
    cr_assert_leq(r.confidence, ML_CONF_SAWTOOTH_MAX);
}

Test(pattern, default_window_sawtooth) {
    rng_seed(8);
    struct ml_series s;
    ml_series_init(&s, 0);
    push_sawtooth(&s, 20, 0, 0.5 * MB);
    struct ml_pattern_result r;
    analyze(&s, NULL, &r);
    cr_assert_eq(r.pattern, ML_PATTERN_SAWTOOTH, "got %s", r.name);
    cr_assert_eq(r.sawtooth.drops, 3);
    cr_assert_leq(r.confidence, 30);
}

Test(pattern, repeated_spikes_are_not_a_sawtooth) {
    rng_seed(9);
    struct ml_series s;
    ml_series_init(&s, 0);
    for (unsigned i = 0; i < 20; i++)
        ml_series_push(&s, T0 + i * SEC, 150 * MB + (i == 5 || i == 13 ? 64 * MB : 0) + gaussian(1 * MB));
    struct ml_pattern_result r;
    analyze(&s, NULL, &r);
    cr_assert_eq(r.pattern, ML_PATTERN_SPIKE, "got %s", r.name);
    cr_assert_eq(r.confidence, 0);
}

Test(pattern, decline_is_linear_without_confidence) {
    rng_seed(10);
    struct ml_series s;
    ml_series_init(&s, 0);
    for (unsigned i = 0; i < 20; i++)
        ml_series_push(&s, T0 + i * SEC, 500 * MB - 3 * MB * i + gaussian(1 * MB));
    struct ml_pattern_result r;
    analyze(&s, NULL, &r);
    cr_assert_eq(r.pattern, ML_PATTERN_LINEAR, "got %s", r.name);
    assert_within(r.rate_bytes_per_s, -3 * MB, 0.05, "rate");
    cr_assert_eq(r.confidence, 0);
}

/* ---- edge cases ---- */

Test(pattern, insufficient_samples) {
    struct ml_series s;
    ml_series_init(&s, 0);
    struct ml_pattern_result r;
    analyze(&s, NULL, &r);
    cr_assert_eq(r.pattern, ML_PATTERN_INSUFFICIENT);
    for (unsigned i = 0; i < 4; i++)
        ml_series_push(&s, T0 + i * SEC, 10 * MB * (i + 1));
    analyze(&s, NULL, &r);
    cr_assert_eq(r.pattern, ML_PATTERN_INSUFFICIENT);
    cr_assert_str_eq(r.name, "insufficient");
    cr_assert_eq(r.samples, 4);
    cr_assert_eq(r.confidence, 0);
    cr_assert_eq(r.rate_bytes_per_s, 0);
    ml_series_push(&s, T0 + 4 * SEC, 50 * MB);
    analyze(&s, NULL, &r);
    cr_assert_eq(r.pattern, ML_PATTERN_LINEAR, "five samples are enough: got %s", r.name);
    assert_within(r.rate_bytes_per_s, 10 * MB, 1e-9, "exact rate");
    cr_assert_leq(r.confidence, 50, "five samples cap the confidence at 50: %u", r.confidence);

    /* no time elapsed */
    ml_series_init(&s, 0);
    for (unsigned i = 0; i < 6; i++)
        ml_series_push(&s, T0, i * MB);
    analyze(&s, NULL, &r);
    cr_assert_eq(r.pattern, ML_PATTERN_INSUFFICIENT);
}

Test(pattern, constant_series) {
    struct ml_series s;
    ml_series_init(&s, 0);
    for (unsigned i = 0; i < 20; i++)
        ml_series_push(&s, T0 + i * SEC, 64 * MB);
    struct ml_pattern_result r;
    analyze(&s, NULL, &r);
    cr_assert_eq(r.pattern, ML_PATTERN_STABLE);
    cr_assert_eq(r.slope_bytes_per_s, 0);
    cr_assert_eq(r.r2, 0);
    cr_assert_eq(r.noise, 0);
    cr_assert_eq(r.confidence, 0);
    cr_assert_not(r.spike.detected);
    cr_assert(isfinite(r.slope_t) && isfinite(r.exp_r2));

    ml_series_init(&s, 0);   /* all zero: no log fit */
    for (unsigned i = 0; i < 20; i++)
        ml_series_push(&s, T0 + i * SEC, 0);
    analyze(&s, NULL, &r);
    cr_assert_eq(r.pattern, ML_PATTERN_STABLE);
    cr_assert_not(r.exp_fitted);
}

Test(pattern, huge_values_do_not_overflow) {
    rng_seed(11);
    struct ml_series s;
    ml_series_init(&s, 0);
    double base = 0x1p62, rate = 1e12;
    for (unsigned i = 0; i < 20; i++)
        ml_series_push(&s, UINT64_MAX - (30 - i) * SEC, base + rate * i + gaussian(1e11));
    struct ml_pattern_result r;
    analyze(&s, NULL, &r);
    cr_assert_eq(r.pattern, ML_PATTERN_LINEAR, "got %s", r.name);
    assert_within(r.rate_bytes_per_s, rate, 0.05, "rate");
    assert_within(r.span_s, 19, 1e-9, "span");
    cr_assert(isfinite(r.r2) && isfinite(r.exp_r2) && isfinite(r.rate_mb_per_min));
    cr_assert_geq(r.confidence, 80);

    ml_series_init(&s, 0);   /* flat at the top of the range */
    for (unsigned i = 0; i < 20; i++)
        ml_series_push(&s, T0 + i * SEC, 0x1p64 + gaussian(1e12));
    analyze(&s, NULL, &r);
    cr_assert_eq(r.pattern, ML_PATTERN_STABLE, "got %s", r.name);
}

Test(pattern, irregular_sampling) {
    rng_seed(12);
    struct ml_series s;
    ml_series_init(&s, 0);
    double rate = 2.5 * MB;
    uint64_t t = T0;
    for (unsigned i = 0; i < 20; i++) {
        double seconds = (double)(t - T0) / SEC;
        ml_series_push(&s, t, 60 * MB + rate * seconds + gaussian(1 * MB));
        t += (uint64_t)((0.3 + 1.7 * uniform01()) * SEC);   /* 0.3 .. 2 s apart */
    }
    struct ml_pattern_result r;
    analyze(&s, NULL, &r);
    cr_assert_eq(r.pattern, ML_PATTERN_LINEAR, "got %s", r.name);
    assert_within(r.rate_bytes_per_s, rate, 0.05, "rate");
    cr_assert_geq(r.confidence, 80);
}

/* ---- the ring ---- */

Test(pattern, ring_keeps_the_last_window) {
    struct ml_series s;
    ml_series_init(&s, 0);
    cr_assert_eq(s.capacity, ML_WINDOW_DEFAULT);
    ml_series_init(&s, 2);
    cr_assert_eq(s.capacity, ML_WINDOW_MIN);
    ml_series_init(&s, 100000);
    cr_assert_eq(s.capacity, ML_WINDOW_MAX);

    ml_series_init(&s, 20);
    for (unsigned i = 0; i < 50; i++) /* 30 samples of a decline, then 20 of growth */
        ml_series_push(&s, T0 + i * SEC, i < 30 ? 900 * MB - i * 10 * MB : 600 * MB + (i - 30) * 4 * MB);
    cr_assert_eq(s.count, 20);
    uint64_t t;
    double v;
    cr_assert_not(ml_series_get(&s, 0, &t, &v));
    cr_assert_eq(t, T0 + 30 * SEC);
    cr_assert_not(ml_series_get(&s, 19, &t, &v));
    cr_assert_eq(t, T0 + 49 * SEC);
    cr_assert(ml_series_get(&s, 20, &t, &v));
    struct ml_pattern_result r;
    analyze(&s, NULL, &r);
    cr_assert_eq(r.pattern, ML_PATTERN_LINEAR);
    assert_within(r.rate_bytes_per_s, 4 * MB, 1e-9, "rate of the window only");
    cr_assert_eq(r.confidence, 100);
}

Test(pattern, push_rejects_bad_samples) {
    struct ml_series s;
    ml_series_init(&s, 0);
    cr_assert_not(ml_series_push(&s, T0 + SEC, 1));
    cr_assert(ml_series_push(&s, T0, 2), "time going backwards");
    cr_assert(ml_series_push(&s, T0 + 2 * SEC, NAN));
    cr_assert(ml_series_push(&s, T0 + 2 * SEC, INFINITY));
    cr_assert_not(ml_series_push(&s, T0 + SEC, 3), "equal time is accepted");
    cr_assert_eq(s.count, 2);
}

Test(pattern, names) {
    cr_assert_str_eq(ml_pattern_name(ML_PATTERN_STABLE), "stable");
    cr_assert_str_eq(ml_pattern_name(ML_PATTERN_LINEAR), "linear");
    cr_assert_str_eq(ml_pattern_name(ML_PATTERN_EXPONENTIAL), "exponential");
    cr_assert_str_eq(ml_pattern_name(ML_PATTERN_SPIKE), "spike");
    cr_assert_str_eq(ml_pattern_name(ML_PATTERN_SAWTOOTH), "sawtooth");
    cr_assert_str_eq(ml_pattern_name((enum ml_pattern)99), "unknown");
}
