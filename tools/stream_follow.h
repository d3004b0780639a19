/* stream_follow.h — reading the streams of a run directory while the traced program still writes
 * them (`memlens run --live`, and the symbolized site in `memlens run`'s alert lines).
 *
 * Data model: an ml_follow_run is the set of stream files (memlens.<pid>.<seq>.jsonl) seen so far
 * in one run directory; each ml_followed keeps its open descriptor, a bounded line buffer
 * (linebuf.h: a line being written stays pending until its newline arrives, so a truncated last
 * line is never parsed) and an ml_stream fed record by record through the shared reader
 * (stream.h), plus what only a live reader wants: the latest `trend` of each process metric.
 * A malformed or invalid line is skipped and counted, never fatal; a line longer than
 * ML_FOLLOW_LINE_MAX is dropped and counted. Polling rescans the directory (new processes after
 * fork and exec) and reads what was appended to every stream.
 */
#ifndef MEMLENS_TOOLS_STREAM_FOLLOW_H
#define MEMLENS_TOOLS_STREAM_FOLLOW_H

#include "linebuf.h"
#include "stream.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ML_FOLLOW_LINE_MAX (16u << 20)

enum { ML_FOLLOW_RSS, ML_FOLLOW_HEAP, ML_FOLLOW_MMAP, ML_FOLLOW_NMETRICS };

typedef struct ml_trend_now {
    bool has;
    char pattern[16];     /* stable, linear, exponential, spike, sawtooth */
    double mb_per_min;
    int64_t confidence;   /* 0..100 */
} ml_trend_now;

typedef struct ml_followed {
    char *path;
    int64_t name_pid;     /* the pid in the file name */
    int fd;               /* open while the stream may grow; -1 before the first successful
                           * open (tried again at each poll: descriptors may run out) and once
                           * done */
    bool done;            /* read up to its `end` record, or not a stream: never read again */
    ml_linebuf lines;
    size_t line;          /* lines read so far */
    ml_stream *s;         /* NULL until the header is read */
    size_t bad_lines;     /* malformed, invalid or too long lines skipped */
    size_t snapshots;     /* snapshot records read */
    ml_trend_now trend[ML_FOLLOW_NMETRICS];
} ml_followed;

typedef struct ml_follow_run {
    char *dir;
    ml_followed **streams; /* in the order they were found */
    size_t n, cap;
} ml_follow_run;

void ml_follow_run_init(ml_follow_run *r, const char *dir);
void ml_follow_run_free(ml_follow_run *r);

/* Find new stream files and read everything appended to each (pid > 0: only the streams of
 * that pid). A stream that reached its `end` record is closed, so a run with many processes
 * does not hold a descriptor per process. */
void ml_follow_run_poll(ml_follow_run *r, int64_t pid);

/* The stream of `pid` with the highest seq that has a header (its current image), or NULL. */
ml_followed *ml_follow_run_pid(const ml_follow_run *r, int64_t pid);

/* "function (file:line)" of the first frame of `site` outside libmemlens and the C runtime,
 * symbolized with sym; "site ID" when the site or its symbols are unknown. */
typedef struct ml_symbolizer ml_symbolizer;
const char *ml_follow_site_where(ml_symbolizer *sym, const ml_stream *s, int64_t site, char *buf,
                                 size_t len);

#endif
