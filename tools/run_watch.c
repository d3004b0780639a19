/* run_watch.c — the `memlens run` parent's poll loop (see run_watch.h).
 *
 * Signals reach the loop through a self-pipe (`signal_pipe`, written by an async-signal-safe
 * handler: one byte, the signal number). Children are reaped with waitpid(-1, WNOHANG): the
 * traced child ends the loop, the others are alert commands (alert_deliver.h). The stream
 * follower and the symbolizer are created once and shared by the alert text (top site) and the
 * live view.
 */
#define _GNU_SOURCE
#include "run_watch.h"
#include "alert_deliver.h"
#include "alert_text.h"
#include "cli.h"
#include "linebuf.h"
#include "live.h"
#include "stream_follow.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int signal_pipe[2] = {-1, -1};

/* The signals the loop takes over, and their dispositions before, restored when it ends (a
 * SIGTERM during the summary kills memlens as before; nohup's ignored SIGHUP stays ignored). */
static const int taken[] = {SIGCHLD, SIGWINCH, SIGTERM, SIGHUP, SIGTSTP, SIGPIPE};
enum { TAKEN_PIPE = 5 };
#define NTAKEN (sizeof taken / sizeof *taken)
static struct sigaction saved_actions[NTAKEN];
static bool was_taken[NTAKEN];

static void take_signal(size_t i, void (*handler)(int), int flags)
{
    struct sigaction sa = {.sa_handler = handler, .sa_flags = flags};
    sigemptyset(&sa.sa_mask);
    was_taken[i] = sigaction(taken[i], &sa, &saved_actions[i]) == 0;
}

static void restore_signals(void)
{
    for (size_t i = 0; i < NTAKEN; i++)
        if (was_taken[i])
            sigaction(taken[i], &saved_actions[i], NULL);
}

static void on_signal(int sig)
{
    int saved = errno;
    unsigned char b = (unsigned char)sig;
    ssize_t ignored = write(signal_pipe[1], &b, 1);
    (void)ignored;
    errno = saved;
}

void ml_watch_prepare(bool tty_view)
{
    if (pipe2(signal_pipe, O_CLOEXEC | O_NONBLOCK) != 0)
        ml_die("pipe: %s", strerror(errno));
    take_signal(0, on_signal, SA_RESTART | SA_NOCLDSTOP);
    for (size_t i = 1; tty_view && i <= 4; i++) {
        take_signal(i, on_signal, SA_RESTART);
        if (was_taken[i] && saved_actions[i].sa_handler == SIG_IGN) { /* stays ignored */
            sigaction(taken[i], &saved_actions[i], NULL);
            was_taken[i] = false;
        }
    }
}

typedef struct watch {
    const ml_watch_opts *o;
    ml_follow_run run;
    ml_symbolizer *sym;
    ml_linebuf alerts;
    int alert_fd;            /* -1 once at end of file */
    ml_alert_delivery *delivery;
    ml_live *live;           /* NULL without --live, and once closed */
    bool child_done;
    int status;
} watch;

/* A message for the user: in the tty view while it is up, else one line on stderr. */
static void say(watch *w, const char *text, bool alert)
{
    if (w->live && w->o->tty)
        ml_live_message(w->live, text, alert);
    else
        fprintf(stderr, "memlens: %s\n", text);
}

static void note(void *ctx, const char *line)
{
    say(ctx, line, false);
}

static const char *site_where(void *ctx, int64_t pid, int64_t site, char *buf, size_t len)
{
    watch *w = ctx;
    ml_follow_run_poll(&w->run, pid); /* the alert was flushed to the stream before it was sent */
    ml_followed *f = ml_follow_run_pid(&w->run, pid);
    return ml_follow_site_where(w->sym, f ? f->s : NULL, site, buf, len);
}

static void take_alert(watch *w, const char *line, size_t len)
{
    json_error_t jerr;
    json_t *o = json_loadb(line, len, 0, &jerr);
    const char *type = json_string_value(json_object_get(o, "type"));
    if (!o || !json_is_object(o) || !type || strcmp(type, "alert") != 0) {
        char msg[160];
        snprintf(msg, sizeof msg, "warning: malformed alert line skipped (%.100s)",
                 o ? "not an alert record" : jerr.text);
        say(w, msg, false);
        json_decref(o);
        return;
    }
    char text[2048];
    ml_alert_text(o, site_where, w, text, sizeof text);
    say(w, text, true);
    const char *level = json_string_value(json_object_get(o, "level"));
    const char *rule = json_string_value(json_object_get(o, "rule"));
    json_t *pid = json_object_get(o, "pid");
    ml_alert_delivery_send(w->delivery, line, len, level ? level : "", rule ? rule : "",
                           json_is_integer(pid) ? (long)json_integer_value(pid) : 0);
    json_decref(o);
}

/* Read everything the pipe holds now (it is non-blocking) and handle each complete line. */
static void drain_alerts(watch *w)
{
    while (w->alert_fd >= 0) {
        ssize_t n = ml_linebuf_read(&w->alerts, w->alert_fd);
        const char *line;
        size_t len;
        while ((line = ml_linebuf_next(&w->alerts, &len)))
            take_alert(w, line, len);
        if (w->alerts.dropped) {
            char msg[128];
            snprintf(msg, sizeof msg, "warning: %zu alert line%s longer than %u KiB dropped",
                     w->alerts.dropped, w->alerts.dropped == 1 ? "" : "s", ML_ALERT_LINE_MAX >> 10);
            say(w, msg, false);
            w->alerts.dropped = 0;
        }
        if (n == 0 || (n < 0 && errno != EAGAIN)) {
            close(w->alert_fd); /* every writer is gone */
            w->alert_fd = -1;
        }
        if (n < 0)
            break;
    }
}

static void end_view(watch *w)
{
    if (w->live) {
        ml_live_end(w->live);
        w->live = NULL;
    }
}

static void take_signals(watch *w)
{
    unsigned char sigs[64];
    ssize_t n;
    while ((n = read(signal_pipe[0], sigs, sizeof sigs)) > 0) {
        for (ssize_t i = 0; i < n; i++) {
            if (sigs[i] == SIGWINCH && w->live) {
                ml_live_frame(w->live);
            } else if (sigs[i] == SIGTSTP && w->live) {
                /* Ctrl-Z: the terminal as it was, then stop as the default action would; `fg`
                 * continues here (the program, in the same process group, stops and continues
                 * with memlens) */
                struct sigaction stop = {.sa_handler = SIG_DFL}, ours;
                ml_live_suspend(w->live);
                sigaction(SIGTSTP, &stop, &ours);
                raise(SIGTSTP);
                sigaction(SIGTSTP, &ours, NULL);
                ml_live_resume(w->live);
            } else if (sigs[i] == SIGTERM || sigs[i] == SIGHUP) {
                end_view(w); /* leave the terminal as it was, then die of the signal */
                restore_signals();
                signal(sigs[i], SIG_DFL);
                raise(sigs[i]);
            }
        }
    }
    int status;
    pid_t pid;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        if (pid == w->o->child) {
            w->child_done = true;
            w->status = status;
        } else {
            ml_alert_delivery_reaped(w->delivery, pid, status);
        }
    }
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int ml_watch_run(const ml_watch_opts *o)
{
    watch w = {.o = o, .alert_fd = o->alert_fd};
    take_signal(TAKEN_PIPE, SIG_IGN, 0); /* a closed stdout or webhook socket is an error, not a death;
                                 * after fork: the child keeps its own disposition */
    ml_follow_run_init(&w.run, o->rundir);
    w.sym = ml_sym_new();
    ml_linebuf_init(&w.alerts, ML_ALERT_LINE_MAX);
    if (w.alert_fd >= 0)
        fcntl(w.alert_fd, F_SETFL, fcntl(w.alert_fd, F_GETFL) | O_NONBLOCK);
    int out_fd = -1;
    if (o->live && o->tty && o->output_log)
        out_fd = open(o->output_log, O_WRONLY | O_APPEND | O_NOFOLLOW | O_CLOEXEC);
    w.delivery = ml_alert_delivery_new(o->exec_cmd, o->webhook_url, out_fd, note, &w);
    if (o->live) {
        ml_live_opts lo = {.run = &w.run, .sym = w.sym, .main_pid = o->child,
                           .command = o->command, .interval_ms = o->interval_ms, .tty = o->tty,
                           .output_log = o->output_log};
        w.live = ml_live_new(&lo);
    }
    int64_t next_frame = now_ms() + (int64_t)o->interval_ms;
    while (!w.child_done) {
        struct pollfd fds[3] = {{.fd = signal_pipe[0], .events = POLLIN},
                                {.fd = w.alert_fd, .events = POLLIN},
                                {.fd = ml_alert_delivery_fd(w.delivery), .events = POLLIN}};
        int timeout = -1;
        if (w.live) {
            int64_t left = next_frame - now_ms();
            timeout = left > 0 ? (int)left : 0;
        }
        int n = poll(fds, 3, timeout);
        if (n < 0 && errno != EINTR)
            ml_die("poll: %s", strerror(errno));
        if (n > 0 && fds[1].revents)
            drain_alerts(&w);
        if (n > 0 && fds[2].revents)
            ml_alert_delivery_poll(w.delivery);
        if (n > 0 && fds[0].revents)
            take_signals(&w);
        if (w.live && now_ms() >= next_frame) {
            ml_live_frame(w.live);
            next_frame += (int64_t)o->interval_ms;
            if (next_frame <= now_ms())
                next_frame = now_ms() + (int64_t)o->interval_ms;
        }
    }
    /* the child's last alerts are in the pipe; descendants may keep it open: do not wait */
    drain_alerts(&w);
    if (w.live)
        ml_live_frame(w.live);
    end_view(&w);
    ml_alert_delivery_finish(w.delivery, ML_WATCH_FINISH_MS);
    restore_signals();
    if (w.alert_fd >= 0)
        close(w.alert_fd);
    if (out_fd >= 0)
        close(out_fd);
    ml_linebuf_free(&w.alerts);
    ml_sym_free(w.sym);
    ml_follow_run_free(&w.run);
    return w.status;
}
