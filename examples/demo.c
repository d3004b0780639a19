/* demo.c — a small program for trying memlens: a request loop that keeps a cache (still reachable at
 * exit), forgets to free a per-request buffer now and then (a leak), and maps a scratch area.
 * Run: memlens run -- ./build/examples/demo */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

struct entry { char *key; char *value; struct entry *next; };
static struct entry *cache;                       /* a global: what it holds is still reachable */

__attribute__((noinline)) static void cache_put(const char *key, size_t value_size) {
    struct entry *e = malloc(sizeof *e);
    e->key = strdup(key);
    e->value = calloc(1, value_size);
    e->next = cache;
    cache = e;
}

__attribute__((noinline)) static char *render_response(int request) {
    char *body;
    if (asprintf(&body, "response to request %d", request) < 0) return NULL;
    return body;
}

__attribute__((noinline)) static void handle_request(int request) {
    char *body = render_response(request);
    if (request % 10 != 7) free(body);           /* bug: request 7, 17, … leak their body */
    if (request % 25 == 0) {
        char key[32];
        snprintf(key, sizeof key, "page-%d", request);
        cache_put(key, 4096);
    }
}

int main(void) {
    void *scratch = mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    for (int request = 0; request < 100; request++) handle_request(request);
    munmap(scratch, 1 << 20);
    printf("demo: served 100 requests, cache holds %s\n", cache ? cache->key : "nothing");
    return 0;
}
