/* class_thread_live: a block referenced only from the stack of a thread that is still running
 * (blocked in pause()) when main returns and the process exits.
 * Expected numbers: class_thread_live.expect.json.
 *
 *   thread_hold()  in the thread: malloc(88); the pointer kept only in a volatile local of the
 *                  thread's function (so in its stack memory) -> still reachable 88 bytes, 1 block.
 * Plus the thread's DTV (see class_thread_exit.c): still reachable, 1 block, 272 bytes under
 * valgrind (+32 under memlens).  Nothing lost. */
#include <pthread.h>
#include <semaphore.h>
#include <stdlib.h>
#include "common.h"

static sem_t ready;

static NOINLINE void *thread_hold(void)
{
    char *p = malloc(88); /* HELD-SITE thread_hold */
    memset(p, 0x13, 88);
    return p;
}

static void *holder(void *arg)
{
    (void)arg;
    void *volatile keep = thread_hold(); /* the only reference: in this thread's stack */
    scrub_stack();
    sem_post(&ready);
    for (;;)
        pause();
    return (void *)keep;
}

int main(void)
{
    pthread_t thread;
    pthread_attr_t attr;
    sem_init(&ready, 0, 0);
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 256 * 1024);
    if (pthread_create(&thread, &attr, holder, NULL) != 0)
        return 1;
    while (sem_wait(&ready) != 0)
        ;
    scrub_stack();
    say("class_thread_live: done\n");
    return 0; /* exit() with the holder thread still blocked in pause() */
}
