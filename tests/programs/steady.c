/* steady: allocates 1000 bytes (never freed) every 10 ms for up to 30 s; meant to be killed
 * with SIGKILL.  Prints "pid=N" first, then "n=K" after every 10th allocation, through write(2)
 * so the runner can see progress as it happens.  Allocations happen only in steady_alloc(). */
#include <stdlib.h>
#include <time.h>
#include "common.h"

static void *volatile sink;

static NOINLINE void steady_alloc(void)
{
    char *p = malloc(1000);
    memset(p, 1, 1000);
    sink = p;
}

int main(void)
{
    sayf("pid=%d\n", (int)getpid());
    struct timespec pause = {0, 10 * 1000 * 1000};
    for (int n = 1; n <= 3000; n++) {
        steady_alloc();
        if (n % 10 == 0)
            sayf("n=%d\n", n);
        nanosleep(&pause, NULL);
    }
    say("steady: not killed\n");
    return 0;
}
