/* kinds: every interposed heap entry point, one helper per kind, each leaking a known block.
 * Expected numbers per helper (first stack frame) and per kind: kinds.expect.json.  The
 * pvalloc has its own program (pvalloc_leak.c) because valgrind aborts on pvalloc.  The
 * numbers inside buffer calls follow glibc 2.36 (Debian 12) and were confirmed with
 * `valgrind --trace-malloc=yes`:
 *   asprintf/vasprintf: malloc(100) work buffer, then (result much smaller than the buffer)
 *                       malloc(strlen+1) + free(work buffer)
 *   getline/getdelim:   malloc(120) when *lineptr is NULL, realloc to max(needed, 2*n) to grow
 *   realpath(p, NULL):  malloc(strlen(result)+1) (the work buffer is on the stack)
 *   open_memstream:     malloc(the FILE) + calloc(1, BUFSIZ=8192); never closed here, so both
 *                       blocks stay live and keep kind open_memstream (fclose would realloc the
 *                       buffer from fclose's stack, as realloc)
 * Reading the getline input file needs fopen: one malloc of the FILE (kind malloc, libc frame),
 * freed by fclose; the stream gets a static buffer through setvbuf so no buffer is allocated. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <limits.h>
#include <malloc.h>
#include <stdint.h>
#include <stdlib.h>
#include "common.h"

#pragma GCC diagnostic ignored "-Wdeprecated-declarations"

static NOINLINE void use_malloc(void)
{
    free(malloc(10));
    UNUSED_RESULT_OK(malloc(90));
}

static NOINLINE void use_calloc(void)
{
    free(calloc(10, 10));
    UNUSED_RESULT_OK(calloc(4, 25));
}

/* realloc(NULL, 16) -> grow to 64 -> shrink to 32; every call with a block is a free of the
 * old block plus an allocation (valgrind's counting).  realloc(p, 0) is avoided on purpose. */
static NOINLINE void use_realloc(void)
{
    char *volatile none = NULL;   /* GCC folds a literal realloc(NULL, n) into malloc(n) */
    char *p = realloc(none, 16);
    p = realloc(p, 64);
    p = realloc(p, 32);
    p[0] = 1;
}

/* reallocarray(NULL, 10, 8) = 80 bytes, grown to 20 x 8 = 160; an overflowing request fails
 * with ENOMEM before allocating anything and must not be counted. */
static NOINLINE void use_reallocarray(void)
{
    char *p = reallocarray(NULL, 10, 8);
    p = reallocarray(p, 20, 8);
    volatile size_t huge = SIZE_MAX / 2;
    if (reallocarray(NULL, huge, 4) != NULL)
        say("kinds: overflowing reallocarray succeeded?\n");
    p[0] = 1;
}

static NOINLINE void use_posix_memalign(void)
{
    void *p = NULL, *q = NULL;
    if (posix_memalign(&p, 64, 100) == 0)
        free(p);
    UNUSED_RESULT_OK(posix_memalign(&q, 256, 1000));
}

static NOINLINE void use_aligned_alloc(void)
{
    free(aligned_alloc(64, 128));
    UNUSED_RESULT_OK(aligned_alloc(128, 256));
}

static NOINLINE void use_memalign(void)
{
    free(memalign(32, 50));
    UNUSED_RESULT_OK(memalign(64, 70));
}

static NOINLINE void use_valloc(void)
{
    free(valloc(100));
    UNUSED_RESULT_OK(valloc(200));
}

static NOINLINE void use_strdup(void)
{
    free(strdup("hello"));            /* 6 bytes */
    UNUSED_RESULT_OK(strdup("leaked string")); /* 14 bytes */
}

static NOINLINE void use_strndup(void)
{
    free(strndup("abcdefghij", 4));   /* 5 bytes */
    const char *volatile shorter = "xyz";
    UNUSED_RESULT_OK(strndup(shorter, 10));    /* 4 bytes */
}

static NOINLINE void use_asprintf(void)
{
    char *s = NULL;
    if (asprintf(&s, "n=%d", 7) > 0)          /* "n=7": malloc(100), malloc(4), free(100) */
        free(s);
    if (asprintf(&s, "%s-%d", "abc", 42) < 0) /* "abc-42": malloc(100), malloc(7), free(100) */
        say("kinds: asprintf failed\n");
}

static NOINLINE int my_vasprintf(char **out, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vasprintf(out, fmt, ap);          /* "1:2": malloc(100), malloc(4), free(100) */
    va_end(ap);
    return n;
}

static NOINLINE void use_vasprintf(void)
{
    char *s = NULL;
    if (my_vasprintf(&s, "%d:%d", 1, 2) < 0)
        say("kinds: vasprintf failed\n");
}

static NOINLINE void use_getline(FILE *in)
{
    char *line = NULL;
    size_t cap = 0;
    if (getline(&line, &cap, in) != 6)        /* "short\n": malloc(120) */
        say("kinds: getline read the wrong line\n");
}

static NOINLINE void use_getdelim(FILE *in)
{
    char *field = NULL;
    size_t cap = 0;
    /* 200 'x' then '|': malloc(120), then needed 202 < 240 -> realloc(240) */
    if (getdelim(&field, &cap, '|', in) != 201)
        say("kinds: getdelim read the wrong field\n");
}

static NOINLINE void use_realpath(void)
{
    char resolved[PATH_MAX];
    free(realpath("/", NULL));                /* "/": malloc(2) */
    UNUSED_RESULT_OK(realpath("/usr/./", NULL)); /* "/usr": malloc(5), leaked */
    UNUSED_RESULT_OK(realpath("/usr", resolved)); /* caller's buffer: no allocation */
}

static NOINLINE void use_open_memstream(void)
{
    char *buf = NULL;
    size_t size = 0;
    FILE *mem = open_memstream(&buf, &size);
    fputs("hello memstream", mem);
    fflush(mem);
    if (size != 15)
        say("kinds: open_memstream size is wrong\n");
}

/* Write the getline/getdelim input to a temporary file and open it without a stdio buffer. */
static char input_buffer[4096];

static FILE *open_input(void)
{
    char path[] = "/tmp/memlens-kinds-XXXXXX";
    char text[6 + 200 + 2];
    int fd = mkstemp(path);
    if (fd < 0)
        return NULL;
    memcpy(text, "short\n", 6);
    memset(text + 6, 'x', 200);
    memcpy(text + 206, "|\n", 2);
    UNUSED_RESULT_OK(write(fd, text, sizeof text));
    close(fd);
    FILE *in = fopen(path, "r");              /* malloc(sizeof(FILE)+locks) */
    unlink(path);
    if (in != NULL)
        setvbuf(in, input_buffer, _IOFBF, sizeof input_buffer);
    return in;
}

int main(void)
{
    use_malloc();
    use_calloc();
    use_realloc();
    use_reallocarray();
    use_posix_memalign();
    use_aligned_alloc();
    use_memalign();
    use_valloc();
    use_strdup();
    use_strndup();
    use_asprintf();
    use_vasprintf();
    FILE *in = open_input();
    if (in == NULL) {
        say("kinds: cannot create the input file\n");
        return 1;
    }
    use_getline(in);
    use_getdelim(in);
    fclose(in);
    use_realpath();
    use_open_memstream();
    scrub_stack();
    say("kinds: done\n");
    return 0;
}
