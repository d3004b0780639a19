/* class_tls: pointers kept only in a __thread variable (static TLS of the main executable), in
 * the main thread and in a thread still running at exit.
 * Expected numbers: class_tls.expect.json.
 *
 *   tls_record()  main thread: malloc(104), stored in its `tls_slot`; the record's first word
 *                 points to tls_name()'s malloc(24)  -> still reachable 128 bytes in 2 blocks
 *   tls_thread_block()  the thread: malloc(120), stored in its own `tls_slot`, then it scrubs its
 *                 stack and blocks in pause() until the process exits -> still reachable 120 / 1
 * Plus the thread's DTV: still reachable, 1 block, (2 TLS modules: libc and this program + 16) x 16
 * = 288 bytes under valgrind (+32 under memlens).  Nothing lost. */
#include <pthread.h>
#include <semaphore.h>
#include <stdlib.h>
#include "common.h"

static __thread void *tls_slot; /* the only reference to each thread's block */
static sem_t ready;

struct record {
    char *name;
    char payload[96];
};

static NOINLINE char *tls_name(void)
{
    char *p = malloc(24); /* HELD-SITE tls_name */
    memset(p, 0x14, 24);
    return p;
}

static NOINLINE void tls_record(void)
{
    struct record *r = malloc(sizeof *r); /* HELD-SITE tls_record */
    r->name = tls_name();
    memset(r->payload, 0x15, sizeof r->payload);
    tls_slot = r;
}

static NOINLINE void tls_thread_block(void)
{
    char *p = malloc(120); /* HELD-SITE tls_thread_block */
    memset(p, 0x16, 120);
    tls_slot = p;
}

static void *holder(void *arg)
{
    (void)arg;
    tls_thread_block();
    scrub_stack();
    sem_post(&ready);
    for (;;)
        pause();
    return NULL;
}

int main(void)
{
    _Static_assert(sizeof(struct record) == 104, "record size is part of the expected numbers");
    pthread_t thread;
    pthread_attr_t attr;
    sem_init(&ready, 0, 0);
    tls_record();
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 256 * 1024);
    if (pthread_create(&thread, &attr, holder, NULL) != 0)
        return 1;
    while (sem_wait(&ready) != 0)
        ;
    scrub_stack();
    say("class_tls: done\n");
    return 0;
}
