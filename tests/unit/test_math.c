/* Unit tests of core/ml_math.c (log, exp, expm1 without libm) against the C library's libm: over
 * millions of arguments spread across each function's whole range, the error stays within a stated
 * number of ulps of libm's (itself correctly rounded or within 1 ulp); special values match. */
#include <criterion/criterion.h>
#include <float.h>
#include <math.h>
#include <stdint.h>

#include "ml_math.h"
#include "test_rng.h"

/* Distance in ulps between got and want (want finite and non-zero). */
static double ulps(double got, double want) {
    double ulp = nextafter(fabs(want), INFINITY) - fabs(want);
    return fabs(got - want) / ulp;
}

/* A double with a uniformly random exponent in [lo_exp, hi_exp] and a random mantissa. */
static double spread(int lo_exp, int hi_exp) {
    int e = lo_exp + (int)(uniform01() * (hi_exp - lo_exp + 1));
    return ldexp(1.0 + uniform01(), e > hi_exp ? hi_exp : e);
}

Test(math, log_over_every_binade) {
    rng_seed(1);
    double worst = 0;
    for (int i = 0; i < 2000000; i++) {
        double x = spread(-1074, 1023);
        if (x == 0 || x == 1) continue;
        double d = ulps(ml_log(x), log(x));
        if (d > worst) worst = d;
    }
    for (double x = 0.5; x < 2.0; x += 1.0 / 65536) {   /* near 1, where the result is small */
        if (x == 1.0) continue;
        double d = ulps(ml_log(x), log(x));
        if (d > worst) worst = d;
    }
    cr_assert(worst <= 1.0, "log: worst error %.3f ulp", worst);
    cr_assert(ml_log(1.0) == 0.0);
    cr_assert(isinf(ml_log(0.0)) && ml_log(0.0) < 0);
    cr_assert(isnan(ml_log(-1.0)));
    cr_assert(isinf(ml_log(INFINITY)));
    cr_assert(isnan(ml_log(NAN)));
    cr_assert(ulps(ml_log(DBL_TRUE_MIN), log(DBL_TRUE_MIN)) <= 1.0);
}

Test(math, exp_over_its_range) {
    rng_seed(2);
    double worst = 0;
    for (int i = 0; i < 2000000; i++) {
        double x = -745.0 + uniform01() * (709.7 + 745.0);
        double want = exp(x);
        if (want < DBL_MIN) continue;   /* subnormal results: checked below, by value */
        double d = ulps(ml_exp(x), want);
        if (d > worst) worst = d;
    }
    for (int i = 0; i < 200000; i++) {   /* small arguments, all binades */
        double x = spread(-40, 0) * ((i & 1) ? 1 : -1);
        double d = ulps(ml_exp(x), exp(x));
        if (d > worst) worst = d;
    }
    cr_assert(worst <= 1.0, "exp: worst error %.3f ulp", worst);
    for (double x = -745.0; x < -708.0; x += 0.37)
        cr_assert(fabs(ml_exp(x) - exp(x)) <= 2 * DBL_TRUE_MIN, "exp(%g) subnormal", x);
    cr_assert(ml_exp(0.0) == 1.0);
    cr_assert(isinf(ml_exp(710.0)) && ml_exp(-746.0) == 0.0 && isnan(ml_exp(NAN)));
    cr_assert(ulps(ml_exp(709.78), exp(709.78)) <= 1.0);
}

Test(math, expm1_keeps_precision_near_zero) {
    rng_seed(3);
    double worst = 0;
    for (int i = 0; i < 2000000; i++) {
        double x = spread(-60, 9) * ((i & 1) ? 1 : -1);   /* |x| up to 1024 */
        double want = expm1(x);
        if (isinf(want) || want == -1.0) continue;
        double d = ulps(ml_expm1(x), want);
        if (d > worst) worst = d;
    }
    cr_assert(worst <= 4.0, "expm1: worst error %.3f ulp", worst);
    cr_assert(ml_expm1(0.0) == 0.0 && ml_expm1(1e-300) == 1e-300);
    cr_assert(ml_expm1(-800.0) == -1.0 && isinf(ml_expm1(800.0)) && isnan(ml_expm1(NAN)));
    /* the sampled-mode weight: 1 - e^(-size/rate), for a 16-byte block at 512 KiB */
    double p = -ml_expm1(-16.0 / 524288.0);
    cr_assert(ulps(p, -expm1(-16.0 / 524288.0)) <= 4.0);
}
