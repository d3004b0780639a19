/* unwind_micro — ns per stack capture, libunwind's unw_backtrace against memlens's cached-CFI
 * unwinder (core/ml_unwind.c), from recursion depths 4..28 in -O2 code without frame pointers: first
 * the same stack captured again and again, then (as in churn.c) one capture per call chain of a
 * random depth 0..23, the cost of the calls themselves subtracted. Both run with a warm cache
 * (unw_backtrace with UNW_CACHE_PER_THREAD, as in ml_capture.c).
 *
 *   gcc -O2 -fno-omit-frame-pointer -Icore -o /tmp/unwind_micro bench/unwind_micro.c core/ml_unwind.c core/ml_prim.c -lunwind
 *   /tmp/unwind_micro [iterations]
 *
 * (-fno-omit-frame-pointer is only for ml_unwind.c, as the shim builds it; this file turns frame
 * pointers off for the measured recursion with the pragma below.) */
#pragma GCC optimize("O2", "omit-frame-pointer", "no-optimize-sibling-calls")
#define _GNU_SOURCE
#define UNW_LOCAL_ONLY
#include <libunwind.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ml_unwind.h"

#define NOINLINE __attribute__((noinline, noclone))
enum { MAX_FRAMES = 64 };

static volatile uintptr_t sink;
static long iterations = 200000;

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* The measured loop sits at the bottom of the recursion: every capture walks `depth` frames of
 * descend() plus main's and libc's. */
static NOINLINE void measure(int use_fast, double *ns, int *frames) {
    uintptr_t buf[MAX_FRAMES];
    int n = 0;
    uint64_t t0 = now_ns();
    for (long i = 0; i < iterations; i++) {
        if (use_fast) n = (int)ml_unwind(buf, MAX_FRAMES);
        else n = unw_backtrace((void **)buf, MAX_FRAMES);
        sink = buf[n > 0 ? n - 1 : 0];
    }
    *ns = (double)(now_ns() - t0) / (double)iterations;
    *frames = n;
}

static NOINLINE int descend(int depth, int use_fast, double *ns, int *frames) {
    if (depth == 0) { measure(use_fast, ns, frames); return 0; }
    char pad[16 + (depth & 3) * 8];   /* frames of a few sizes */
    memset(pad, depth, sizeof pad);
    __asm__ volatile("" : : "r"(pad) : "memory");
    return descend(depth - 1, use_fast, ns, frames) + pad[1];
}

/* One capture at the bottom of a call chain `depth` deep; mode 0 captures nothing (the baseline). */
static NOINLINE int chain(int depth, int mode) {
    if (depth == 0) {
        uintptr_t buf[MAX_FRAMES];
        int n = 0;
        if (mode == 1) n = unw_backtrace((void **)buf, MAX_FRAMES);
        else if (mode == 2) n = (int)ml_unwind(buf, MAX_FRAMES);
        if (mode == 2 && n == 0) { printf("ml_unwind fell back\n"); exit(1); }
        sink = n ? buf[n - 1] : 0;
        return n;
    }
    char pad[16 + (depth & 3) * 8];
    memset(pad, depth, sizeof pad);
    __asm__ volatile("" : : "r"(pad) : "memory");
    return chain(depth - 1, mode) + pad[1];
}

static double mixed(int mode) {
    uint64_t rng = 0x9E3779B97F4A7C15ull;
    uint64_t t0 = now_ns();
    for (long i = 0; i < iterations; i++) {
        rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17;
        chain((int)(rng % 24), mode);
    }
    return (double)(now_ns() - t0) / (double)iterations;
}

int main(int argc, char **argv) {
    if (argc > 1) iterations = atol(argv[1]);
    unw_set_caching_policy(unw_local_addr_space, UNW_CACHE_PER_THREAD);
    printf("%6s %7s %14s %14s %8s\n", "depth", "frames", "unw_backtrace", "ml_unwind", "speedup");
    for (int depth = 4; depth <= 28; depth += 4) {
        double slow, fast;
        int n_slow, n_fast;
        descend(depth, 0, &slow, &n_slow);   /* warm-up, then the measured runs */
        descend(depth, 1, &fast, &n_fast);
        descend(depth, 0, &slow, &n_slow);
        descend(depth, 1, &fast, &n_fast);
        if (n_fast == 0) { printf("%6d: ml_unwind fell back\n", depth); return 1; }
        if (n_fast != n_slow) { printf("%6d: %d frames vs %d\n", depth, n_fast, n_slow); return 1; }
        printf("%6d %7d %11.1f ns %11.1f ns %7.2fx\n", depth, n_fast, slow, fast, slow / fast);
    }
    mixed(1), mixed(2);
    double base = mixed(0), slow = mixed(1) - base, fast = mixed(2) - base;
    printf("%6s %7s %11.1f ns %11.1f ns %7.2fx\n", "0..23", "6..29", slow, fast, slow / fast);
    return 0;
}
