/* linebuf.c — bounded line splitting of a descriptor's bytes (see linebuf.h). */
#include "linebuf.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define READ_CHUNK 65536

void ml_linebuf_init(ml_linebuf *lb, size_t max)
{
    *lb = (ml_linebuf){.max = max};
}

void ml_linebuf_free(ml_linebuf *lb)
{
    free(lb->buf);
    *lb = (ml_linebuf){.max = lb->max};
}

/* Drop what was consumed, then make room for one chunk (never more than max + one chunk). */
static bool make_room(ml_linebuf *lb)
{
    if (lb->start) {
        memmove(lb->buf, lb->buf + lb->start, lb->len - lb->start);
        lb->len -= lb->start;
        lb->start = 0;
    }
    size_t want = lb->len + READ_CHUNK + 1;
    if (want <= lb->cap)
        return true;
    char *p = realloc(lb->buf, want);
    if (!p)
        return false;
    lb->buf = p;
    lb->cap = want;
    return true;
}

/* Enforce the bound on the pending (incomplete) line: past max bytes without a newline, the
 * line is being dropped. */
static void bound_pending(ml_linebuf *lb)
{
    for (;;) {
        char *data = lb->buf + lb->start;
        size_t n = lb->len - lb->start;
        char *nl = memchr(data, '\n', n);
        if (lb->skipping) {
            if (!nl) {
                lb->start = lb->len = 0; /* still inside the long line */
                return;
            }
            lb->start += (size_t)(nl - data) + 1;
            lb->skipping = false;
            continue;
        }
        if (nl) {
            /* complete lines are checked when consumed; look at the tail after the last one */
            char *last = data + n;
            while (last > data && last[-1] != '\n')
                last--;
            if ((size_t)(data + n - last) > lb->max) {
                /* the pending tail is too long: keep the complete lines, drop the tail */
                lb->len = (size_t)(last - lb->buf);
                lb->skipping = true;
                lb->dropped++;
            }
            return;
        }
        if (n > lb->max) {
            lb->start = lb->len = 0;
            lb->skipping = true;
            lb->dropped++;
        }
        return;
    }
}

ssize_t ml_linebuf_read(ml_linebuf *lb, int fd)
{
    if (!make_room(lb)) {
        errno = ENOMEM;
        return -1;
    }
    ssize_t n;
    do
        n = read(fd, lb->buf + lb->len, READ_CHUNK);
    while (n < 0 && errno == EINTR);
    if (n > 0) {
        lb->len += (size_t)n;
        bound_pending(lb);
    }
    return n;
}

char *ml_linebuf_next(ml_linebuf *lb, size_t *len)
{
    while (lb->start < lb->len) {
        char *data = lb->buf + lb->start;
        char *nl = memchr(data, '\n', lb->len - lb->start);
        if (!nl)
            return NULL;
        size_t n = (size_t)(nl - data);
        lb->start += n + 1;
        if (n > lb->max) { /* a complete line that arrived in one read */
            lb->dropped++;
            continue;
        }
        if (n && data[n - 1] == '\r')
            n--;
        data[n] = '\0';
        *len = n;
        return data;
    }
    return NULL;
}
