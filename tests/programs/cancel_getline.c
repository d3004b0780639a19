/* cancel_getline: a thread blocked in getline (memlens wraps it to mark its allocations as kind
 * getline) is cancelled. glibc unwinds the thread through the wrapper's frame with the C unwinder,
 * which glibc loads for cancellation (libgcc_s, outside the global scope of this C program): memlens
 * must run its cleanup there without having linked libgcc_s itself (shim.c, __gcc_personality_v0),
 * and the program must go on as without memlens.
 *   open_reader()  fdopen of a pipe: the FILE (472 bytes, kind malloc), freed by fclose
 *   read_line()    getline on the empty pipe: the line (120 bytes) and the stream's buffer (4096,
 *                  a pipe's st_blksize), both kind getline, allocated before the read that the
 *                  cancellation ends; main frees the line, fclose the buffer
 *   after_cancel() malloc(77), live at exit, reachable from host_sink: kind malloc
 * glibc's own allocations for loading libgcc_s (dlopen) are not asserted.
 * Expected numbers: cancel_getline.expect.json. */
#include <pthread.h>
#include <stdlib.h>
#include "common.h"

static FILE *reader;
static char *line;
static size_t line_size;
void *volatile host_sink;

NOINLINE static FILE *open_reader(int fd)
{
    return fdopen(fd, "r");
}

NOINLINE static void *read_line(void *arg)
{
    (void)arg;
    getline(&line, &line_size, reader);   /* blocks: nothing is ever written to the pipe */
    return NULL;
}

NOINLINE static void after_cancel(void)
{
    host_sink = malloc(77);
}

int main(void)
{
    int fds[2];
    if (pipe(fds) != 0)
        return 1;
    reader = open_reader(fds[0]);
    if (reader == NULL)
        return 1;
    pthread_t thread;
    if (pthread_create(&thread, NULL, read_line, NULL) != 0)
        return 1;
    pthread_cancel(thread);   /* acts at the thread's first cancellation point: the read in getline */
    void *result = NULL;
    if (pthread_join(thread, &result) != 0 || result != PTHREAD_CANCELED) {
        say("cancel_getline: the thread was not cancelled\n");
        return 1;
    }
    free(line);
    fclose(reader);
    close(fds[1]);
    after_cancel();
    say("cancel_getline: done\n");
    return 0;
}
