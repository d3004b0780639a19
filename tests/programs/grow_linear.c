/* grow_linear: grows the heap linearly at 2,500,000 bytes/s for 3 s and never frees: every
 * 10 ms (absolute CLOCK_MONOTONIC deadlines, so the rate does not drift) grow_alloc() mallocs
 * 25,000 bytes and touches them.  e2e-cli_control checks `memlens trends` against that rate. */
#include <stdlib.h>
#include <time.h>
#include "common.h"

#define STEP_BYTES 25000
#define STEP_NS (10 * 1000 * 1000L)
#define STEPS 300

static void *volatile sink;

static NOINLINE void grow_alloc(void)
{
    char *p = malloc(STEP_BYTES);
    memset(p, 1, STEP_BYTES);
    sink = p;
}

int main(void)
{
    struct timespec next;
    clock_gettime(CLOCK_MONOTONIC, &next);
    for (int n = 0; n < STEPS; n++) {
        grow_alloc();
        next.tv_nsec += STEP_NS;
        if (next.tv_nsec >= 1000000000L) {
            next.tv_nsec -= 1000000000L;
            next.tv_sec++;
        }
        while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL) == EINTR)
            ;
    }
    say("grow_linear: done\n");
    return 0;
}
