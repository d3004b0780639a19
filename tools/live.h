/* live.h — the `memlens run --live` view: a top-like screen of the traced program, refreshed
 * every interval from the streams of its run directory (stream_follow.h).
 *
 * On a terminal (tty) the view is drawn in the alternate screen, in place (cursor home, each
 * line cleared to its end), cut to the terminal's size, which is read again at every frame
 * (so a resize, SIGWINCH, needs no more than a redraw); ml_live_end leaves the alternate screen
 * and prints on stderr the alert and delivery messages that were shown in the view, so nothing
 * is lost when the screen goes. Shown: the main process (the traced program's pid, its latest
 * image after exec) with RSS, heap, mmap, cgroup usage and limit, the growth verdict of each
 * metric (`trend` records), recent alerts, and its top sites (live bytes, peak, calls,
 * function (file:line)); other processes of the run (forked children) one line each.
 * Without a terminal: one plain line per new snapshot of the main process on stdout, e.g.
 *   t=3.0s rss=12.3 MiB heap=7.2 MiB mmap=0 B cgroup=- heap:linear +2.4 MB/min conf 91
 * and messages go straight to stderr.
 */
#ifndef MEMLENS_TOOLS_LIVE_H
#define MEMLENS_TOOLS_LIVE_H

#include "stream_follow.h"
#include "symbolize.h"

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct ml_live ml_live;

typedef struct ml_live_opts {
    ml_follow_run *run;      /* polled by the view at every frame */
    ml_symbolizer *sym;
    pid_t main_pid;
    const char *command;     /* program name for the title */
    uint64_t interval_ms;
    bool tty;
    const char *output_log;  /* tty view: where the program's output goes (shown), or NULL */
} ml_live_opts;

ml_live *ml_live_new(const ml_live_opts *o);

/* An alert's text (alert true) or a delivery message, without "memlens: ". */
void ml_live_message(ml_live *lv, const char *text, bool alert);

/* Read the streams, then draw a frame (tty) or print a line if a new snapshot came (plain). */
void ml_live_frame(ml_live *lv);

/* Ctrl-Z: leave the alternate screen before memlens stops (suspend), and come back to it and
 * redraw when it continues (resume). No-ops outside the tty view. */
void ml_live_suspend(ml_live *lv);
void ml_live_resume(ml_live *lv);

/* Restore the terminal, print the kept messages on stderr, release the view. */
void ml_live_end(ml_live *lv);

#endif
