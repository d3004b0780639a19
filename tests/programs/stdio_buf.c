/* stdio_buf: the only program that prints through stdio.  glibc allocates the stdout buffer
 * with malloc on the first printf: its size is st_blksize of fd 1 when that is below BUFSIZ,
 * i.e. 4096 for the pipe the test runner connects (1024 on a tty).  The buffer is never freed
 * (exit does not free it; valgrind only does through __libc_freeres, which the comparison
 * disables), so it is still live at exit, attributed to a libc frame.
 *   printf()             -> 1 allocation of 4096 bytes (kind malloc), live at exit
 *   leak_after_printf()  -> malloc(50) leaked
 * Totals: 2 allocations, 0 frees, 4146 bytes, live 4146 bytes in 2 blocks. */
#include <stdlib.h>
#include "common.h"

static NOINLINE void leak_after_printf(void)
{
    char *p = malloc(50);
    memset(p, 0, 50);
}

int main(void)
{
    printf("stdio_buf: hello %d\n", 42);
    leak_after_printf();
    printf("stdio_buf: done\n");
    return 0;
}
