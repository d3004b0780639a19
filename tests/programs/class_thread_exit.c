/* class_thread_exit: a block leaked by a thread that has exited (and was joined) before exit.
 * Expected numbers: class_thread_exit.expect.json.
 *
 *   thread_leak()  in the thread: malloc(72), the pointer dropped; the thread scrubs its stack
 *                  (glibc keeps the dead thread's stack cached and mapped) and returns
 *                  -> definitely lost 72 bytes in 1 block.
 * pthread_create also callocs the thread's DTV (glibc's, never freed while the stack stays in
 * glibc's stack cache), reached from the thread descriptor: still reachable, 1 block.  Its size
 * is (TLS modules + 16) x 16 bytes: 272 under valgrind (libc is the only TLS module), 32 more
 * under memlens (libmemlens and libunwind add two TLS modules, README). */
#include <pthread.h>
#include <stdlib.h>
#include "common.h"

static NOINLINE void thread_leak(void)
{
    char *p = malloc(72); /* LEAK-SITE thread_leak */
    memset(p, 0x12, 72);
}

static void *worker(void *arg)
{
    (void)arg;
    thread_leak();
    scrub_stack();
    return NULL;
}

int main(void)
{
    pthread_t thread;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 256 * 1024);
    if (pthread_create(&thread, &attr, worker, NULL) != 0)
        return 1;
    pthread_join(thread, NULL);
    scrub_stack();
    say("class_thread_exit: done\n");
    return 0;
}
