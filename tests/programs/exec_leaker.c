/* exec_leaker: leaks, then replaces itself with argv[1] (the exec_target program), passing
 * "from-exec".  Expected numbers: exec_leaker.expect.json.
 *   leak_before_exec(): malloc(3000) leaked, malloc(1000) freed
 *                       -> 2 allocs, 1 free, 4000 bytes, live 3000 in 1 block at the exec
 * The same pid then runs exec_target (second stream, seq 1, same pid). */
#include <stdlib.h>
#include "common.h"

static void *volatile sink;

static NOINLINE void leak_before_exec(void)
{
    sink = malloc(3000);
    free(malloc(1000));
    sink = NULL;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        say("usage: exec_leaker PATH-OF-exec_target\n");
        return 2;
    }
    leak_before_exec();
    scrub_stack();
    say("exec_leaker: before exec\n");
    char *args[] = {argv[1], "from-exec", NULL};
    execv(argv[1], args);
    say("exec_leaker: execv failed\n");
    return 127;
}
