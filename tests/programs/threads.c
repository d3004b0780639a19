/* threads: 4 producer threads allocate, 4 consumer threads free what they allocated, handed
 * over through a bounded queue (a static ring: the queue itself never allocates).
 * Expected numbers: threads.expect.json.
 *   producer_alloc()  4 producers x 1000 blocks, block k of a producer is 32 + 16*(k % 8) bytes:
 *                     one cycle of 8 = 704 bytes, 125 cycles = 88000 bytes per producer
 *                     -> 4000 allocations, 4000 frees (in the consumers), 352000 bytes, live 0
 * glibc's pthread_create allocates each new thread's DTV with calloc from ld.so (a libc frame,
 * never freed while the stack stays in glibc's stack cache): 8 more allocations, 0 frees, live at exit.  Their
 * size depends on how many loaded objects have TLS, so only their count is asserted. */
#include <pthread.h>
#include <stdlib.h>
#include "common.h"

#define PRODUCERS 4
#define CONSUMERS 4
#define PER_PRODUCER 1000
#define RING 64

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER; /* protects ring, head, count */
static pthread_cond_t not_empty = PTHREAD_COND_INITIALIZER;
static pthread_cond_t not_full = PTHREAD_COND_INITIALIZER;
static void *ring[RING];
static unsigned head, count;

static void queue_push(void *p)
{
    pthread_mutex_lock(&lock);
    while (count == RING)
        pthread_cond_wait(&not_full, &lock);
    ring[(head + count) % RING] = p;
    count++;
    pthread_cond_signal(&not_empty);
    pthread_mutex_unlock(&lock);
}

static void *queue_pop(void)
{
    pthread_mutex_lock(&lock);
    while (count == 0)
        pthread_cond_wait(&not_empty, &lock);
    void *p = ring[head];
    head = (head + 1) % RING;
    count--;
    pthread_cond_signal(&not_full);
    pthread_mutex_unlock(&lock);
    return p;
}

static NOINLINE void *producer_alloc(size_t bytes)
{
    char *p = malloc(bytes);
    memset(p, 0x5a, bytes);
    return p;
}

static void *producer(void *arg)
{
    (void)arg;
    for (int k = 0; k < PER_PRODUCER; k++)
        queue_push(producer_alloc(32 + 16 * (size_t)(k % 8)));
    return NULL;
}

static void *consumer(void *arg)
{
    unsigned long *freed = arg;
    for (;;) {
        void *p = queue_pop();
        if (p == NULL) /* end marker from main */
            return NULL;
        free(p);
        (*freed)++;
    }
}

int main(void)
{
    pthread_t producers[PRODUCERS], consumers[CONSUMERS];
    unsigned long freed[CONSUMERS] = {0};
    /* Small fixed stacks: 8 x 256 KiB stay far below glibc's 40 MiB stack cache, so no stack
     * (and no DTV) is freed whatever `ulimit -s` says. */
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 256 * 1024);
    for (int i = 0; i < CONSUMERS; i++)
        if (pthread_create(&consumers[i], &attr, consumer, &freed[i]) != 0)
            return 1;
    for (int i = 0; i < PRODUCERS; i++)
        if (pthread_create(&producers[i], &attr, producer, NULL) != 0)
            return 1;
    for (int i = 0; i < PRODUCERS; i++)
        pthread_join(producers[i], NULL);
    for (int i = 0; i < CONSUMERS; i++)
        queue_push(NULL);
    unsigned long total = 0;
    for (int i = 0; i < CONSUMERS; i++) {
        pthread_join(consumers[i], NULL);
        total += freed[i];
    }
    sayf("threads: freed %lu blocks\n", total);
    return total == PRODUCERS * PER_PRODUCER ? 0 : 1;
}
