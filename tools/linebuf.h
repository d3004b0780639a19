/* linebuf.h — splits bytes read from a descriptor (a pipe, or a file still being appended to)
 * into complete lines, with a bounded buffer.
 *
 * Data model: one heap buffer that holds at most `max` bytes of the current, incomplete line
 * plus the complete lines not consumed yet. A line longer than `max` is dropped whole (the
 * bytes up to its newline are skipped) and counted in `dropped`, so a writer that never ends
 * its line cannot make the reader grow without bound. A final line without its newline (a
 * writer cut mid-line) stays pending and is never returned.
 */
#ifndef MEMLENS_TOOLS_LINEBUF_H
#define MEMLENS_TOOLS_LINEBUF_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

typedef struct ml_linebuf {
    char *buf;
    size_t start;      /* first byte not consumed */
    size_t len;        /* bytes held (from 0) */
    size_t cap;        /* allocated */
    size_t max;        /* longest line kept, newline excluded */
    bool skipping;     /* inside a line longer than max: discard up to the next newline */
    size_t dropped;    /* lines dropped for being too long (the caller may reset it) */
} ml_linebuf;

void ml_linebuf_init(ml_linebuf *lb, size_t max);
void ml_linebuf_free(ml_linebuf *lb);

/* One read(2) from fd into the buffer. Returns the bytes read, 0 at end of file, or -1 with
 * errno set (EAGAIN on a non-blocking descriptor with nothing to read, EINTR retried). */
ssize_t ml_linebuf_read(ml_linebuf *lb, int fd);

/* The next complete line, NUL-terminated without its newline (and a trailing '\r'), valid until
 * the next call on lb; NULL when no complete line is held. *len gets its length. */
char *ml_linebuf_next(ml_linebuf *lb, size_t *len);

#endif
