/* ml_math.h — the few functions of libm that memlens needs, so that the preloaded object links no
 * libm: one library fewer to map and relocate in every traced process (about 0.4 ms each on the
 * benchmark VM), as jemalloc and tcmalloc keep libm out of their sampling. */
#ifndef ML_MATH_H
#define ML_MATH_H

#define ML_LN2 0.69314718055994530942

double ml_log(double x);     /* natural logarithm, within 1 ulp */
double ml_exp(double x);     /* e^x, within 1 ulp */
double ml_expm1(double x);   /* e^x - 1 without cancellation near 0, within a few ulps */

/* Square root: the instruction (the shim is built with -fno-math-errno, so there is no call). */
static inline double ml_sqrt(double x) { return __builtin_sqrt(x); }

#endif
