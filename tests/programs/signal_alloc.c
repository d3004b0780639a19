/* signal_alloc: one malloc(333) inside a SIGUSR1 handler, raised from raise_here(), leaked. The
 * signal frame has no simple unwind rule, so memlens's stack capture falls back to libunwind there
 * (set up at that first use): the stack must still reach raise_here and main.
 * Expected numbers: signal_alloc.expect.json. */
#include <signal.h>
#include <stdlib.h>
#include "common.h"

static void *volatile kept;

NOINLINE void handler_alloc(void)
{
    kept = malloc(333);
}

static void on_usr1(int sig)
{
    (void)sig;
    handler_alloc();
}

NOINLINE void raise_here(void)
{
    raise(SIGUSR1);
}

int main(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_usr1;
    if (sigaction(SIGUSR1, &sa, NULL) != 0)
        return 1;
    raise_here();
    say("signal_alloc: done\n");
    return 0;
}
