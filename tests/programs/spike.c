/* spike: a steady small working set with one short 64 MiB spike that is freed.  e2e-alerts runs it
 * with MEMLENS_INTERVAL=100ms and the default window of 20 samples and expects the heap trend
 * `spike` (confidence 0, no growth alert), live and from `memlens trends`.
 *
 * Working set: 32 slots of 4096 bytes; every 5 ms work_alloc() frees one slot and allocates it again
 * (oldest first), so heap live bytes stay at 131,072.  Timeline, on absolute CLOCK_MONOTONIC
 * deadlines so that a late wake-up never shifts the later phases:
 *   0 – 1.5 s    working set only (about 15 samples);
 *   1.5 s        spike_alloc(): malloc(64 MiB), then memset so that it is resident too;
 *   +0.3 s       free, 0.3 s after malloc returned (or when memset ends, if later): about 3 samples
 *                hold the spike (its core may cover at most 20/3 = 6).  Timed from malloc's return,
 *                not from the start: malloc itself may take a while (MALLOC_PERTURB_, which meson
 *                sets for tests, makes glibc fill the 64 MiB inside malloc);
 *   +0.8 s       after the free, exit: about 8 samples, plus the final one at exit, with the
 *                working set still allocated (freeing it would end the window on a drop).
 * The last window of 20 samples therefore holds about 8 samples before, 3 during and 9 after the
 * spike; the spike stays inside it unless the end is late by 0.7 s or more, and stays short enough
 * unless the free is late by 0.3 s or more. */
#include <stdlib.h>
#include <time.h>
#include "common.h"

#define SLOTS 32
#define SLOT_BYTES 4096
#define SPIKE_BYTES (64u << 20)
#define MS 1000000L

static char *slots[SLOTS];
static void *volatile sink;

static NOINLINE void work_alloc(int i)
{
    free(slots[i]);
    slots[i] = malloc(SLOT_BYTES);
    memset(slots[i], 1, SLOT_BYTES);
}

static NOINLINE char *spike_alloc(void)
{
    return malloc(SPIKE_BYTES);
}

static struct timespec after(struct timespec t, long ns)
{
    t.tv_nsec += ns % 1000000000L;
    t.tv_sec += ns / 1000000000L;
    if (t.tv_nsec >= 1000000000L) {
        t.tv_nsec -= 1000000000L;
        t.tv_sec++;
    }
    return t;
}

static int before(struct timespec a, struct timespec b)
{
    return a.tv_sec < b.tv_sec || (a.tv_sec == b.tv_sec && a.tv_nsec < b.tv_nsec);
}

/* Churns the working set every 5 ms until the absolute deadline `until`. */
static void work_until(struct timespec until, int *n)
{
    struct timespec next;
    clock_gettime(CLOCK_MONOTONIC, &next);
    while (before(next, until)) {
        work_alloc((*n)++ % SLOTS);
        next = after(next, 5 * MS);
        if (!before(next, until))
            next = until;
        while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL) == EINTR)
            ;
    }
}

int main(void)
{
    struct timespec start;
    clock_gettime(CLOCK_MONOTONIC, &start);
    int n = 0;
    for (int i = 0; i < SLOTS; i++)
        work_alloc(i);
    work_until(after(start, 1500 * MS), &n);
    char *spike = spike_alloc();
    if (!spike) {
        say("spike: malloc failed\n");
        return 1;
    }
    struct timespec allocated, freed;
    clock_gettime(CLOCK_MONOTONIC, &allocated);
    memset(spike, 1, SPIKE_BYTES);
    sink = spike;
    work_until(after(allocated, 300 * MS), &n);
    free(spike);
    sink = NULL;
    clock_gettime(CLOCK_MONOTONIC, &freed);
    work_until(after(freed, 800 * MS), &n);
    say("spike: done\n");
    return 0;
}
