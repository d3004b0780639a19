/* run_watch.h — what the `memlens run` parent does while the traced program runs: instead of
 * blocking in waitpid, one poll loop that
 *   - notices the child's exit (and the alert commands' exits) through a SIGCHLD self-pipe,
 *   - reads the alert pipe (the child's MEMLENS_ALERT_FD) line by line, always draining it at once
 *     so the traced program's collector never blocks on a full pipe; each alert becomes one
 *     human line (alert_text.h, its top site symbolized from the run's streams) on stderr or in
 *     the live view, and is handed to alert_deliver.h,
 *   - redraws the --live view (live.h) every interval.
 * When the child has exited, what is left in the alert pipe is read (without waiting for
 * descendants that may keep it open), the view is closed and deliveries get at most
 * ML_WATCH_FINISH_MS to complete.
 */
#ifndef MEMLENS_TOOLS_RUN_WATCH_H
#define MEMLENS_TOOLS_RUN_WATCH_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#define ML_WATCH_FINISH_MS 5000
#define ML_ALERT_LINE_MAX (64u << 10) /* longer lines from the alert pipe are dropped */

typedef struct ml_watch_opts {
    pid_t child;
    int alert_fd;             /* read end of the alert pipe (the parent's write end closed) */
    const char *rundir;
    const char *command;      /* the program's name, for the view's title */
    const char *exec_cmd;     /* --alert-exec, or NULL */
    const char *webhook_url;  /* --alert-webhook, or NULL */
    bool live;                /* --live */
    bool tty;                 /* with live: redraw in place (stdout is a terminal) */
    uint64_t interval_ms;     /* live refresh */
    const char *output_log;   /* with a tty view: where the program's stdout/stderr go */
} ml_watch_opts;

/* Installs the SIGCHLD (and, for a tty view, SIGWINCH/SIGTERM/SIGHUP) handlers; call before
 * fork so that no child exit is missed. */
void ml_watch_prepare(bool tty_view);

/* Runs the loop until the child has exited; returns its wait status. */
int ml_watch_run(const ml_watch_opts *o);

#endif
