/* Unit tests of the block-age estimate (collector/ml_block_age.c) on synthetic site histories: the
 * cumulative allocated bytes A(t) and live bytes L(now) of a site that never frees (exact), that frees
 * FIFO (exact, small), that keeps some blocks and frees others (a lower bound), and of random lifetimes
 * (never above the true median by more than one sample interval); then the unknown cases, the choice
 * of the growing site for a process metric, and the component `a` of the confidence. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "ml_block_age.h"

TestSuite(block_age);

#define MB ML_BYTES_PER_MB
#define SEC 1000000000ull
#define T0 (1700000000ull * SEC)

/* A site allocating `rate` bytes/s from t = 0 that never frees, sampled every second at t = first..last:
 * A = L = rate·t. */
static double never_frees(struct ml_series *allocated, unsigned first, unsigned last, double rate) {
    ml_series_init(allocated, last - first + 1);
    for (unsigned t = first; t <= last; t++)
        cr_assert_not(ml_series_push(allocated, T0 + t * SEC, rate * t));
    return rate * last;   /* live bytes now */
}

Test(block_age, never_freeing_site_is_exact) {
    struct ml_series a;
    double live = never_frees(&a, 0, 19, 2.5 * MB);
    /* blocks allocated uniformly over [0, 19] s: the median one is 9.5 s old */
    cr_assert_float_eq(ml_block_age_median_s(&a, live), 9.5, 1e-9);
}

Test(block_age, never_freeing_site_irregular_samples) {
    static const double times[] = {0, 0.3, 1.7, 2.0, 4.4, 5.0, 7.9, 8.0};
    struct ml_series a;
    ml_series_init(&a, 8);
    for (unsigned i = 0; i < 8; i++)
        ml_series_push(&a, T0 + (uint64_t)(times[i] * SEC), 1e6 * times[i]);
    cr_assert_float_eq(ml_block_age_median_s(&a, 8e6), 4.0, 1e-6);
}

Test(block_age, fifo_churn_is_young) {
    /* 1 MiB/s, each byte freed 2 s after it was allocated, oldest first: 2 MiB live, median age 1 s,
     * whatever the site allocated before the window */
    struct ml_series a;
    ml_series_init(&a, 20);
    for (unsigned t = 10; t < 30; t++)
        ml_series_push(&a, T0 + t * SEC, MB * t);
    double age = ml_block_age_median_s(&a, 2 * MB);
    cr_assert_float_eq(age, 1.0, 1e-9);
    struct ml_series grow;
    cr_assert_gt(ml_block_age_median_s(&grow, never_frees(&grow, 10, 29, MB)), 5 * age);
}

Test(block_age, mixed_site_is_a_lower_bound) {
    /* One 1 MiB block just before each sample k = 0..19; blocks of odd k are freed one second later
     * (after the next block): at k = 19 the site holds the blocks of 0, 2, .., 18 and 19, 11 MiB, ages
     * 19, 17, .., 1 and 0, true median 9 s. FIFO would have freed the oldest: 20 − 5.5 MiB was reached
     * half way between samples 13 and 14, so the estimate is 5.5 s. */
    struct ml_series a;
    ml_series_init(&a, 20);
    for (unsigned k = 0; k < 20; k++)
        ml_series_push(&a, T0 + k * SEC, MB * (k + 1));
    double age = ml_block_age_median_s(&a, 11 * MB);
    cr_assert_float_eq(age, 5.5, 1e-9);
    cr_assert_leq(age, 9.0);
}

#include "test_rng.h"

static int cmp_double(const void *x, const void *y) {
    double a = *(const double *)x, b = *(const double *)y;
    return (a > b) - (a < b);
}

Test(block_age, random_lifetimes_never_exceed_the_true_median) {
    /* 40 blocks of 4 KiB per 100 ms sample for 20 samples, each with an exponential lifetime (mean
     * 0.1..10 s): the estimate is at most the true median age of the live blocks plus one interval
     * (the interpolation spreads each interval's blocks over it). */
    enum { SAMPLES = 20, PER_SAMPLE = 40, BLOCK = 4096 };
    static double born[SAMPLES * PER_SAMPLE], dies[SAMPLES * PER_SAMPLE], ages[SAMPLES * PER_SAMPLE];
    const double dt = 0.1;
    for (unsigned seed = 1; seed <= 200; seed++) {
        rng_seed(seed);
        double mean_life = 0.1 * pow(100.0, uniform01());
        struct ml_series a;
        ml_series_init(&a, SAMPLES);
        unsigned blocks = 0;
        for (unsigned k = 0; k < SAMPLES; k++) {
            for (unsigned j = 0; j < PER_SAMPLE; j++, blocks++) {
                born[blocks] = dt * ((double)k - 1) + dt * (j + 1) / PER_SAMPLE;   /* within (t[k-1], t[k]] */
                dies[blocks] = born[blocks] - mean_life * log(uniform01());
            }
            ml_series_push(&a, T0 + (uint64_t)(k * dt * SEC), (double)blocks * BLOCK);
        }
        double now = dt * (SAMPLES - 1);
        unsigned live = 0;
        for (unsigned i = 0; i < blocks; i++)
            if (dies[i] > now)
                ages[live++] = now - born[i];
        if (!live)
            continue;
        qsort(ages, live, sizeof *ages, cmp_double);
        double true_median = live % 2 ? ages[live / 2] : (ages[live / 2 - 1] + ages[live / 2]) / 2;
        double age = ml_block_age_median_s(&a, (double)live * BLOCK);
        cr_assert(age >= 0 && age <= true_median + dt, "seed %u (mean life %.2f s): estimate %.3f s, true %.3f s",
                  seed, mean_life, age, true_median);
    }
}

Test(block_age, allocated_before_the_window_is_at_least_its_span) {
    /* never frees for 100 s, the window holds the last 20 samples: half the live bytes were allocated
     * before it, so the age is reported as the window's span, 19 s */
    struct ml_series a;
    double live = never_frees(&a, 80, 99, MB);
    cr_assert_float_eq(ml_block_age_median_s(&a, live), 19.0, 1e-9);
}

Test(block_age, unknown_cases_are_nan) {
    struct ml_series a;
    ml_series_init(&a, 20);
    cr_assert(isnan(ml_block_age_median_s(&a, MB)), "empty series");
    ml_series_push(&a, T0, MB);
    cr_assert(isnan(ml_block_age_median_s(&a, MB)), "one sample");
    ml_series_push(&a, T0, 2 * MB);
    cr_assert(isnan(ml_block_age_median_s(&a, MB)), "no time elapsed");
    ml_series_push(&a, T0 + SEC, 3 * MB);
    cr_assert(isnan(ml_block_age_median_s(&a, 0)), "no live bytes");
    cr_assert(isnan(ml_block_age_median_s(&a, NAN)), "live bytes unknown");
    cr_assert(!isnan(ml_block_age_median_s(&a, MB)));
}

Test(block_age, process_metric_takes_the_fastest_growing_site_of_its_kind) {
    struct ml_pattern_result stable = {.pattern = ML_PATTERN_STABLE, .rate_bytes_per_s = 9e9};
    struct ml_pattern_result decline = {.pattern = ML_PATTERN_LINEAR, .rate_bytes_per_s = -8e9};
    struct ml_pattern_result spike = {.pattern = ML_PATTERN_SPIKE, .rate_bytes_per_s = 7e9};
    struct ml_pattern_result slow = {.pattern = ML_PATTERN_LINEAR, .rate_bytes_per_s = 1e6};
    struct ml_pattern_result fast = {.pattern = ML_PATTERN_EXPONENTIAL, .rate_bytes_per_s = 2e6};
    struct ml_pattern_result mapped = {.pattern = ML_PATTERN_LINEAR, .rate_bytes_per_s = 5e6};
    struct ml_block_age_site sites[] = {
        {&stable, 100, false}, {&decline, 101, false}, {&spike, 102, false}, {NULL, 103, false},
        {&slow, 3, false},     {&fast, 5, false},      {&mapped, 7, true},
    };
    cr_assert_float_eq(ml_block_age_of_growth(sites, 7, ML_BLOCK_AGE_HEAP), 5, 0);
    cr_assert_float_eq(ml_block_age_of_growth(sites, 7, ML_BLOCK_AGE_MMAP), 7, 0);
    cr_assert_float_eq(ml_block_age_of_growth(sites, 7, ML_BLOCK_AGE_RSS), 7, 0);
    cr_assert(isnan(ml_block_age_of_growth(sites, 4, ML_BLOCK_AGE_RSS)), "nothing grows");
    cr_assert(isnan(ml_block_age_of_growth(sites, 6, ML_BLOCK_AGE_MMAP)), "no mapping site grows");
    cr_assert(isnan(ml_block_age_of_growth(NULL, 0, ML_BLOCK_AGE_HEAP)));
}

Test(block_age, age_component_of_the_confidence) {
    /* a never-freeing site over its whole life: age = half the span, component a = 1; a FIFO site
     * with a short lifetime: a small a, and a lower confidence for the same series */
    struct ml_series a, live;
    double bytes = never_frees(&a, 0, 19, MB);
    never_frees(&live, 0, 19, MB);
    struct ml_pattern_inputs inputs = ML_PATTERN_INPUTS_NONE;
    inputs.live_block_median_age_s = ml_block_age_median_s(&a, bytes);
    struct ml_pattern_result old, young;
    ml_pattern_analyze(&live, &inputs, &old);
    cr_assert_eq(old.pattern, ML_PATTERN_LINEAR);
    cr_assert(old.parts.has_age);
    cr_assert_float_eq(old.parts.age, 1.0, 1e-9);
    inputs.live_block_median_age_s = 1.0;
    ml_pattern_analyze(&live, &inputs, &young);
    cr_assert_float_eq(young.parts.age, 1.0 / 9.5, 1e-9);
    cr_assert_lt(young.confidence, old.confidence);
}
