/* ml_math.c — log, exp and expm1 without libm (see ml_math.h).
 *
 * log and exp follow fdlibm (Sun Microsystems, 1993), the algorithms behind most C libraries' own:
 *   log: x = 2^k (1+f) with sqrt(2)/2 <= 1+f < sqrt(2); s = f/(2+f), and log(1+f) = f - f²/2 +
 *        s (f²/2 + R(s²)), R a minimax polynomial; k ln 2 is added in two parts (hi exact).
 *   exp: x = k ln 2 + r with |r| <= ln 2 / 2 (ln 2 in two parts again); e^r from a minimax rational
 *        form in r², then scaled by 2^k through the exponent bits.
 * expm1 uses Kahan's correction for |x| < 1: with u = e^x rounded, (u - 1) x / log(u) cancels the
 * rounding error of u, so it keeps full relative precision near 0 where e^x - 1 would not. */
#include "ml_math.h"

#include <stdint.h>
#include <string.h>

static inline uint64_t bits_of(double x) { uint64_t u; memcpy(&u, &x, sizeof u); return u; }
static inline double double_of(uint64_t u) { double x; memcpy(&x, &u, sizeof x); return x; }

static const double ln2_hi = 6.93147180369123816490e-01, ln2_lo = 1.90821492927058770002e-10;

double ml_log(double x) {
    static const double Lg1 = 6.666666666666735130e-01, Lg2 = 3.999999999940941908e-01,
                        Lg3 = 2.857142874366239149e-01, Lg4 = 2.222219843214978396e-01,
                        Lg5 = 1.818357216161805012e-01, Lg6 = 1.531383769920937332e-01,
                        Lg7 = 1.479819860511658591e-01;
    if (x != x) return x;                                        /* NaN */
    if (x <= 0) return x == 0 ? -__builtin_inf() : __builtin_nan("");
    if (x == __builtin_inf()) return x;
    int k = 0;
    uint64_t u = bits_of(x);
    if (u < 0x0010000000000000ull) {                             /* subnormal: scale up first */
        x *= 0x1p54;
        u = bits_of(x);
        k = -54;
    }
    k += (int)(u >> 52) - 1023;
    double m = double_of((u & 0x000fffffffffffffull) | 0x3ff0000000000000ull);   /* [1, 2) */
    if (m > 1.41421356237309504880) {
        m *= 0.5;
        k++;
    }
    double f = m - 1.0, s = f / (2.0 + f), z = s * s, w = z * z;
    double t1 = w * (Lg2 + w * (Lg4 + w * Lg6));
    double t2 = z * (Lg1 + w * (Lg3 + w * (Lg5 + w * Lg7)));
    double r = t2 + t1, hfsq = 0.5 * f * f, dk = (double)k;
    return dk * ln2_hi - ((hfsq - (s * (hfsq + r) + dk * ln2_lo)) - f);
}

double ml_exp(double x) {
    static const double P1 = 1.66666666666666019037e-01, P2 = -2.77777777770155933842e-03,
                        P3 = 6.61375632143793436117e-05, P4 = -1.65339022054652515390e-06,
                        P5 = 4.13813679705723846039e-08, inv_ln2 = 1.44269504088896338700e+00;
    if (x != x) return x;
    if (x > 7.09782712893383973096e+02) return __builtin_inf();
    if (x < -7.45133219101941108420e+02) return 0.0;
    double hi = x, lo = 0;
    int k = 0;
    double ax = x < 0 ? -x : x;
    if (ax > 0.5 * 0.69314718055994530942) {
        k = (int)(inv_ln2 * x + (x < 0 ? -0.5 : 0.5));
        hi = x - k * ln2_hi;
        lo = k * ln2_lo;
        x = hi - lo;
    } else if (ax < 0x1p-28) {
        return 1.0 + x;
    }
    double t = x * x, c = x - t * (P1 + t * (P2 + t * (P3 + t * (P4 + t * P5))));
    if (k == 0) return 1.0 - ((x * c) / (c - 2.0) - x);
    double y = 1.0 - ((lo - (x * c) / (2.0 - c)) - hi);
    if (k >= -1021) {
        if (k == 1024) return y * 2.0 * 0x1p1023;
        return y * double_of((uint64_t)(k + 1023) << 52);
    }
    return y * double_of((uint64_t)(k + 1000 + 1023) << 52) * 0x1p-1000;   /* the result is subnormal */
}

double ml_expm1(double x) {
    if (x != x) return x;
    double u = ml_exp(x);
    if (u == 1.0) return x;                       /* |x| below half an ulp of 1 */
    if (u == __builtin_inf()) return u;
    double um1 = u - 1.0;
    if (x >= 1.0 || x <= -1.0) return um1;       /* |e^x - 1| >= 0.63: nothing cancels */
    return um1 * (x / ml_log(u));
}
