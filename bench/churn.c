/* Copied unchanged (apart from this comment) from shared/bench/churn.c, the yardstick behind the
 * floor figures in shared/bench/README.md, so that bench/run compares with them. Keep in sync. */
/* churn: allocation-heavy workload for measuring a tracker's overhead.
 * Usage: churn [ops_per_thread] [threads] [depth]
 * Each thread keeps a ring of live blocks and replaces one per step with a
 * new block of a pseudo-random size, allocated `depth` frames deep. */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RING 4096
static long ops = 2000000;
static int depth = 12;

static uint64_t next_rand(uint64_t *s) { *s ^= *s << 13; *s ^= *s >> 7; *s ^= *s << 17; return *s; }

__attribute__((noinline)) static void *alloc_at_depth(int d, size_t n, uint64_t *s) {
    if (d > 0) { void *p = alloc_at_depth(d - 1, n, s); __asm__ volatile("" ::: "memory"); return p; }
    switch (next_rand(s) % 4) {
    case 0: return calloc(1, n);
    case 1: { void *p = malloc(n / 2 + 1); return realloc(p, n); }
    default: return malloc(n);
    }
}

static void *worker(void *arg) {
    uint64_t s = 0x9E3779B97F4A7C15ull ^ (uintptr_t)arg;
    void **ring = calloc(RING, sizeof *ring);
    for (long i = 0; i < ops; i++) {
        size_t slot = next_rand(&s) % RING;
        free(ring[slot]);
        size_t n = 16 + next_rand(&s) % 2048;
        ring[slot] = alloc_at_depth((int)(next_rand(&s) % depth), n, &s);
        ((char *)ring[slot])[0] = 1;
    }
    for (size_t i = 0; i < RING; i++) free(ring[i]);
    free(ring);
    return NULL;
}

int main(int argc, char **argv) {
    if (argc > 1) ops = atol(argv[1]);
    int threads = argc > 2 ? atoi(argv[2]) : 1;
    if (argc > 3) depth = atoi(argv[3]);
    pthread_t t[64];
    if (threads < 1 || threads > 64) { fprintf(stderr, "threads must be 1..64\n"); return 2; }
    for (int i = 0; i < threads; i++) pthread_create(&t[i], NULL, worker, (void *)(uintptr_t)(i + 1));
    for (int i = 0; i < threads; i++) pthread_join(t[i], NULL);
    printf("churn: %ld ops x %d threads\n", ops, threads);
    return 0;
}
