/* fork_in_handler: a single-threaded program whose SIGALRM handler forks (the child calls _exit at
 * once) every 5 ms while the main loop mallocs and frees 32 bytes, 100 times. The size stays in
 * glibc's tcache, which takes no lock, so glibc's own fork cannot wait on the interrupted call (it
 * would if the signal landed in a locked part of malloc: the collector thread makes the process
 * multi-threaded; see README). Most signals land inside memlens's code under the program's
 * malloc or free: its fork handlers must not wait for locks the interrupted code may hold (before
 * the fix, every run hung). No expect file: the stream count depends on where the signals land. */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <sys/wait.h>
#include "common.h"

#define FORKS 100

static volatile sig_atomic_t forks;
static struct itimerval every = { {0, 5000}, {0, 5000} }, off = { {0, 0}, {0, 0} };

static void on_alarm(int sig)
{
    (void)sig;
    pid_t pid = fork();
    if (pid == 0)
        _exit(0);
    if (pid > 0) {
        int status;
        waitpid(pid, &status, 0);
        forks++;
    }
    if (forks >= FORKS) /* here too: on a machine where a fork takes longer than the period, the
                           handler would run again at once, forever, and the loop never see it */
        setitimer(ITIMER_REAL, &off, NULL);
}

int main(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm;
    sa.sa_flags = SA_RESTART;
    sigaction(SIGALRM, &sa, NULL);
    setitimer(ITIMER_REAL, &every, NULL);
    while (forks < FORKS) {
        void *p = malloc(32);
        free(p);
    }
    setitimer(ITIMER_REAL, &off, NULL);
    say("fork_in_handler: done\n");
    return 0;
}
