/* churn: steady allocation churn with a constant live set: 64 slots of 1000 bytes; every 1 ms
 * churn_alloc() frees one slot and allocates it again, for 3 s.  Nothing grows. */
#include <stdlib.h>
#include <time.h>
#include "common.h"

#define SLOTS 64

static char *slots[SLOTS];

static NOINLINE void churn_alloc(int i)
{
    free(slots[i]);
    slots[i] = malloc(1000);
    memset(slots[i], 1, 1000);
}

int main(void)
{
    struct timespec pause = {0, 1000 * 1000};
    for (int n = 0; n < 3000; n++) {
        churn_alloc(n % SLOTS);
        nanosleep(&pause, NULL);
    }
    for (int i = 0; i < SLOTS; i++)
        free(slots[i]);
    say("churn: done\n");
    return 0;
}
