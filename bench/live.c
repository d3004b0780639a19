/* live: allocate N blocks of 16–256 bytes and free none. The blocks stay reachable from a global
 * array until exit, so an exit-time scan (memlens leaks, LeakSanitizer) has N blocks to walk and a
 * tracker has N entries in its live table at exit.  Usage: live [blocks] (default 1000000). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

void **live_blocks; /* global: the roots a leak scan starts from */

int main(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : 1000000;
    if (n < 1) { fprintf(stderr, "blocks must be >= 1\n"); return 2; }
    live_blocks = malloc((size_t)n * sizeof *live_blocks);
    if (!live_blocks) return 1;
    uint64_t s = 0x9E3779B97F4A7C15ull;
    for (long i = 0; i < n; i++) {
        s ^= s << 13; s ^= s >> 7; s ^= s << 17;
        char *p = malloc(16 + s % 241);
        if (!p) return 1;
        p[0] = (char)i;
        live_blocks[i] = p;
    }
    printf("live: %ld blocks held to exit\n", n);
    return 0;
}
