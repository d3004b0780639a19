/* fork_leaks: parent and two children leak different known amounts.  Nothing is allocated
 * before the forks, so each process's numbers are its own whatever a child inherits.
 * Expected numbers: fork_leaks.expect.json.
 *   child 1 (ends with exit):   child_leak(): malloc(1111) + malloc(2222) leaked, malloc(500)
 *                               freed -> 3 allocs, 1 free, 3833 bytes, live 3333 in 2 blocks
 *   child 2 (ends with _exit):  child_exit_leak(): malloc(4444) leaked -> live 4444 in 1 block
 *   parent (after both):        parent_leak(): malloc(777) + malloc(888) leaked, malloc(100)
 *                               freed -> 3 allocs, 1 free, 1765 bytes, live 1665 in 2 blocks
 * Each child's stream has fork:true and ppid = the parent's pid. */
#include <stdlib.h>
#include <sys/wait.h>
#include "common.h"

static void *volatile sink;

static NOINLINE void child_leak(void)
{
    sink = malloc(1111);
    sink = malloc(2222);
    free(malloc(500));
    sink = NULL;
}

static NOINLINE void child_exit_leak(void)
{
    sink = malloc(4444);
    sink = NULL;
}

static NOINLINE void parent_leak(void)
{
    sink = malloc(777);
    sink = malloc(888);
    free(malloc(100));
    sink = NULL;
}

static int wait_ok(pid_t pid)
{
    int status = 0;
    if (waitpid(pid, &status, 0) != pid)
        return 0;
    return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

int main(void)
{
    pid_t first = fork();
    if (first < 0)
        return 1;
    if (first == 0) {
        child_leak();
        scrub_stack();
        say("fork_leaks: child 1 done\n");
        exit(0);
    }
    if (!wait_ok(first)) {
        say("fork_leaks: child 1 failed\n");
        return 1;
    }
    pid_t second = fork();
    if (second < 0)
        return 1;
    if (second == 0) {
        child_exit_leak();
        scrub_stack();
        say("fork_leaks: child 2 done\n");
        _exit(0);
    }
    if (!wait_ok(second)) {
        say("fork_leaks: child 2 failed\n");
        return 1;
    }
    parent_leak();
    scrub_stack();
    say("fork_leaks: parent done\n");
    return 0;
}
