/* test_rng.h — the seeded generator shared by the unit tests that draw synthetic data (splitmix64):
 * reproducible runs, no dependence on libc's rand. One state per test binary. */
#ifndef TEST_RNG_H
#define TEST_RNG_H

#include <stdint.h>

static uint64_t rng_state;

static inline void rng_seed(uint64_t seed) { rng_state = seed; }

static inline double uniform01(void) {   /* splitmix64 -> (0, 1) */
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    return ((z >> 11) + 0.5) / 9007199254740992.0;
}

#endif
