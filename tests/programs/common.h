/* Shared helpers for the memlens end-to-end test programs.
 *
 * The programs must allocate exactly what their expect files say, so output goes through
 * write(2) on a stack buffer (snprintf with plain %d/%s conversions does not allocate),
 * never through stdio, whose stdout buffer would be one more heap block (stdio_buf.c covers
 * that case on purpose).  Allocation helpers are NOINLINE so that the first frame of every
 * site is a function named in the expect file. */
#ifndef MEMLENS_TEST_COMMON_H
#define MEMLENS_TEST_COMMON_H

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define NOINLINE __attribute__((noinline, noclone))
#define UNUSED_RESULT_OK(x) ((void)!(x))

/* Write the whole string to stdout, retrying on short writes and EINTR. */
static inline void say(const char *text)
{
    size_t left = strlen(text);
    while (left > 0) {
        ssize_t n = write(1, text, left);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return;
        text += n;
        left -= (size_t)n;
    }
}

/* printf-like output without stdio buffers (format must not need malloc: no %ls, no huge widths). */
static inline __attribute__((format(printf, 1, 2))) void sayf(const char *fmt, ...)
{
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    say(line);
}

/* Overwrite dead stack below the caller with zeros so stale copies of leaked pointers do not
 * make "definitely lost" blocks look reachable to the exit-time reachability scan. */
static NOINLINE __attribute__((unused)) void scrub_stack(void)
{
    volatile char junk[16384];
    for (size_t i = 0; i < sizeof junk; i++)
        junk[i] = 0;
}

#endif
