/* alert_deliver.c — `--alert-exec` and `--alert-webhook` of `memlens run` (see alert_deliver.h).
 *
 * Data model: a fixed table of the alert commands running (pid), and for the webhook a bounded
 * FIFO of JSON copies served by one worker thread. The FIFO, the worker's counters and the
 * pending messages are protected by `lock`; the worker signals `changed` when it finishes a
 * post and writes one byte to `wake[1]` when it leaves a message, so the owner's poll loop
 * passes messages on from its own thread (the --live view owns the terminal).
 */
#define _GNU_SOURCE
#include "alert_deliver.h"
#include "cli.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define WEBHOOK_TIMEOUT_S 5L
#define NOTES_MAX 8
#define NOTE_LEN 512

extern char **environ;

struct ml_alert_delivery {
    ml_alert_note_fn note;
    void *note_ctx;
    /* exec */
    const char *exec_cmd;
    int output_fd;
    pid_t running[ML_ALERT_EXEC_MAX]; /* 0: free slot */
    size_t exec_dropped, exec_failed;
    bool stopping;                   /* finish stops the commands still running: no report */
    /* webhook */
    const char *url;
    pthread_t worker;
    bool worker_started;
    pthread_mutex_t lock;
    pthread_cond_t changed;
    char *queue[ML_ALERT_QUEUE_MAX]; /* FIFO of JSON lines (malloc'd), under lock */
    size_t head, count;
    bool busy, stop;
    size_t posted, failed, queue_dropped;
    char notes[NOTES_MAX][NOTE_LEN];
    size_t nnotes;
    atomic_bool abort_posts; /* finish gave up: the post in progress aborts */
    int wake[2];
};

static void notef(ml_alert_delivery *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void notef(ml_alert_delivery *d, const char *fmt, ...)
{
    char line[NOTE_LEN];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    d->note(d->note_ctx, line);
}

/* ---- exec ---------------------------------------------------------------------------------- */

/* A memfd holding the line and a newline, positioned at 0: the command's stdin. */
static int stdin_with(const char *json, size_t len)
{
    int fd = memfd_create("memlens-alert", MFD_CLOEXEC);
    if (fd < 0)
        return -1;
    if (write(fd, json, len) != (ssize_t)len || write(fd, "\n", 1) != 1 ||
        lseek(fd, 0, SEEK_SET) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* environ plus the MEMLENS_ALERT_* variables (in `vars`), without older values of them. */
static char **alert_environ(char vars[3][96])
{
    size_t n = 0;
    while (environ[n])
        n++;
    char **env = calloc(n + 4, sizeof *env);
    if (!env)
        return NULL;
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (strncmp(environ[i], "MEMLENS_ALERT_", 14) != 0)
            env[k++] = environ[i];
    for (size_t i = 0; i < 3; i++)
        env[k++] = vars[i];
    env[k] = NULL;
    return env;
}

static void run_command(ml_alert_delivery *d, const char *json, size_t len, const char *level,
                        const char *rule, long pid)
{
    size_t slot = 0;
    while (slot < ML_ALERT_EXEC_MAX && d->running[slot])
        slot++;
    if (slot == ML_ALERT_EXEC_MAX) {
        d->exec_dropped++;
        return;
    }
    int in = stdin_with(json, len);
    if (in < 0) {
        notef(d, "alert-exec: cannot pass the alert to the command: %s", strerror(errno));
        d->exec_failed++;
        return;
    }
    char vars[3][96];
    snprintf(vars[0], sizeof vars[0], "MEMLENS_ALERT_LEVEL=%s", level);
    snprintf(vars[1], sizeof vars[1], "MEMLENS_ALERT_RULE=%s", rule);
    snprintf(vars[2], sizeof vars[2], "MEMLENS_ALERT_PID=%ld", pid);
    char **env = alert_environ(vars);
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, in, STDIN_FILENO);
    if (d->output_fd >= 0) {
        posix_spawn_file_actions_adddup2(&fa, d->output_fd, STDOUT_FILENO);
        posix_spawn_file_actions_adddup2(&fa, d->output_fd, STDERR_FILENO);
    }
    /* memlens ignores SIGINT, SIGQUIT and SIGPIPE while it waits: the command gets defaults */
    posix_spawnattr_init(&attr);
    sigset_t defaults, none;
    sigemptyset(&defaults);
    sigaddset(&defaults, SIGINT);
    sigaddset(&defaults, SIGQUIT);
    sigaddset(&defaults, SIGPIPE);
    sigaddset(&defaults, SIGCHLD);
    sigemptyset(&none);
    posix_spawnattr_setsigdefault(&attr, &defaults);
    posix_spawnattr_setsigmask(&attr, &none);
    /* its own process group: the terminal's Ctrl-C is for the traced program, and a command
     * still running at the end is stopped with everything it started */
    posix_spawnattr_setpgroup(&attr, 0);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK |
                                        POSIX_SPAWN_SETPGROUP);
    char *argv[] = {"sh", "-c", (char *)d->exec_cmd, NULL};
    pid_t child = 0;
    int rc = env ? posix_spawn(&child, "/bin/sh", &fa, &attr, argv, env) : ENOMEM;
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    free(env);
    close(in);
    if (rc != 0) {
        notef(d, "alert-exec: cannot start /bin/sh: %s", strerror(rc));
        d->exec_failed++;
        return;
    }
    d->running[slot] = child;
}

bool ml_alert_delivery_reaped(ml_alert_delivery *d, pid_t pid, int status)
{
    if (!d)
        return false;
    for (size_t i = 0; i < ML_ALERT_EXEC_MAX; i++) {
        if (d->running[i] != pid)
            continue;
        d->running[i] = 0;
        if (d->stopping) {
            /* stopped by finish, already reported */
        } else if (WIFEXITED(status) && WEXITSTATUS(status) != 0) {
            d->exec_failed++;
            notef(d, "alert-exec: command exited with status %d: %s", WEXITSTATUS(status),
                  d->exec_cmd);
        } else if (WIFSIGNALED(status)) {
            d->exec_failed++;
            notef(d, "alert-exec: command killed by signal %d: %s", WTERMSIG(status), d->exec_cmd);
        }
        return true;
    }
    return false;
}

size_t ml_alert_delivery_running(const ml_alert_delivery *d)
{
    size_t n = 0;
    for (size_t i = 0; d && i < ML_ALERT_EXEC_MAX; i++)
        n += d->running[i] != 0;
    return n;
}

/* ---- webhook ------------------------------------------------------------------------------- */

/* Under lock: keep a message for the owner's thread and wake its poll. */
static void leave_note(ml_alert_delivery *d, const char *line)
{
    if (d->nnotes < NOTES_MAX)
        snprintf(d->notes[d->nnotes++], NOTE_LEN, "%s", line);
    ssize_t ignored = write(d->wake[1], "", 1);
    (void)ignored;
}

static int abort_if_asked(void *ctx, curl_off_t a, curl_off_t b, curl_off_t c, curl_off_t e)
{
    ml_alert_delivery *d = ctx;
    return atomic_load(&d->abort_posts) ? 1 : 0;
}

static size_t discard_body(char *ptr, size_t size, size_t n, void *ctx)
{
    return size * n;
}

/* One POST; on failure fills err and returns false. */
static bool post(ml_alert_delivery *d, const char *json, char *err, size_t errlen)
{
    CURL *h = curl_easy_init();
    if (!h) {
        snprintf(err, errlen, "cannot initialize libcurl");
        return false;
    }
    char curl_err[CURL_ERROR_SIZE] = "";
    struct curl_slist *headers = curl_slist_append(NULL, "Content-Type: application/json");
    curl_easy_setopt(h, CURLOPT_URL, d->url);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, json);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "memlens/" MEMLENS_VERSION);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, WEBHOOK_TIMEOUT_S);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, WEBHOOK_TIMEOUT_S);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, curl_err);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, discard_body);
    curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, abort_if_asked);
    curl_easy_setopt(h, CURLOPT_XFERINFODATA, d);
    CURLcode rc = curl_easy_perform(h);
    long code = 0;
    bool ok = rc == CURLE_OK;
    if (ok) {
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
        if (code < 200 || code >= 300) {
            snprintf(err, errlen, "HTTP status %ld", code);
            ok = false;
        }
    } else {
        snprintf(err, errlen, "%s", *curl_err ? curl_err : curl_easy_strerror(rc));
    }
    curl_slist_free_all(headers);
    curl_easy_cleanup(h);
    return ok;
}

static void *webhook_worker(void *arg)
{
    ml_alert_delivery *d = arg;
    pthread_mutex_lock(&d->lock);
    for (;;) {
        while (!d->count && !d->stop)
            pthread_cond_wait(&d->changed, &d->lock);
        if (!d->count)
            break;
        char *json = d->queue[d->head];
        d->head = (d->head + 1) % ML_ALERT_QUEUE_MAX;
        d->count--;
        d->busy = true;
        pthread_mutex_unlock(&d->lock);
        char err[CURL_ERROR_SIZE + 64];
        bool ok = post(d, json, err, sizeof err);
        free(json);
        pthread_mutex_lock(&d->lock);
        d->busy = false;
        if (ok) {
            d->posted++;
        } else if (atomic_load(&d->abort_posts)) {
            /* given up by ml_alert_delivery_finish, which says so */
        } else if (d->failed++ == 0) {
            char line[NOTE_LEN];
            snprintf(line, sizeof line, "alert-webhook: POST %s failed: %s", d->url, err);
            leave_note(d, line);
        }
        pthread_cond_broadcast(&d->changed);
    }
    pthread_mutex_unlock(&d->lock);
    return NULL;
}

static void queue_post(ml_alert_delivery *d, const char *json, size_t len)
{
    char *copy = strndup(json, len);
    pthread_mutex_lock(&d->lock);
    if (!copy || d->count == ML_ALERT_QUEUE_MAX) {
        d->queue_dropped++;
        free(copy);
    } else {
        d->queue[(d->head + d->count) % ML_ALERT_QUEUE_MAX] = copy;
        d->count++;
        pthread_cond_broadcast(&d->changed);
    }
    pthread_mutex_unlock(&d->lock);
}

int ml_alert_delivery_fd(const ml_alert_delivery *d)
{
    return d && d->url ? d->wake[0] : -1;
}

void ml_alert_delivery_poll(ml_alert_delivery *d)
{
    if (!d || !d->url)
        return;
    char drain[64];
    while (read(d->wake[0], drain, sizeof drain) > 0)
        ;
    char notes[NOTES_MAX][NOTE_LEN];
    pthread_mutex_lock(&d->lock);
    size_t n = d->nnotes;
    memcpy(notes, d->notes, n * sizeof *notes);
    d->nnotes = 0;
    pthread_mutex_unlock(&d->lock);
    for (size_t i = 0; i < n; i++)
        d->note(d->note_ctx, notes[i]);
}

/* ---- setup and end ------------------------------------------------------------------------- */

ml_alert_delivery *ml_alert_delivery_new(const char *exec_cmd, const char *webhook_url,
                                         int output_fd, ml_alert_note_fn note, void *note_ctx)
{
    if (!exec_cmd && !webhook_url)
        return NULL;
    ml_alert_delivery *d = calloc(1, sizeof *d);
    if (!d)
        ml_die("out of memory");
    d->note = note;
    d->note_ctx = note_ctx;
    d->exec_cmd = exec_cmd;
    d->output_fd = output_fd;
    d->url = webhook_url;
    d->wake[0] = d->wake[1] = -1;
    if (!webhook_url)
        return d;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        ml_die("--alert-webhook: cannot initialize libcurl");
    if (pipe2(d->wake, O_CLOEXEC | O_NONBLOCK) != 0)
        ml_die("pipe: %s", strerror(errno));
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&d->changed, &ca);
    pthread_condattr_destroy(&ca);
    pthread_mutex_init(&d->lock, NULL);
    /* the worker blocks every signal: SIGCHLD and the others are the wait loop's */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int rc = pthread_create(&d->worker, NULL, webhook_worker, d);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0)
        ml_die("--alert-webhook: cannot start a thread: %s", strerror(rc));
    d->worker_started = true;
    return d;
}

void ml_alert_delivery_send(ml_alert_delivery *d, const char *json, size_t len, const char *level,
                            const char *rule, long pid)
{
    if (!d)
        return;
    if (d->exec_cmd)
        run_command(d, json, len, level, rule, pid);
    if (d->url)
        queue_post(d, json, len);
}

static long ms_left(const struct timespec *deadline)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (deadline->tv_sec - now.tv_sec) * 1000 + (deadline->tv_nsec - now.tv_nsec) / 1000000;
}

/* Reap the commands that end before the deadline (CLOCK_MONOTONIC). */
static void reap_until(ml_alert_delivery *d, const struct timespec *deadline)
{
    while (ml_alert_delivery_running(d) && ms_left(deadline) > 0) {
        for (size_t i = 0; i < ML_ALERT_EXEC_MAX; i++) {
            int status;
            if (d->running[i] && waitpid(d->running[i], &status, WNOHANG) == d->running[i])
                ml_alert_delivery_reaped(d, d->running[i], status);
        }
        if (ml_alert_delivery_running(d))
            nanosleep(&(struct timespec){0, 20 * 1000000L}, NULL);
    }
}

/* Signal the process group of every command still running. */
static void stop_commands(ml_alert_delivery *d, int sig)
{
    for (size_t i = 0; i < ML_ALERT_EXEC_MAX; i++)
        if (d->running[i])
            kill(-d->running[i], sig);
}

/* now + ms on CLOCK_MONOTONIC */
static struct timespec in_ms(long ms)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    t.tv_sec += ms / 1000;
    t.tv_nsec += (ms % 1000) * 1000000L;
    if (t.tv_nsec >= 1000000000L) {
        t.tv_sec++;
        t.tv_nsec -= 1000000000L;
    }
    return t;
}

void ml_alert_delivery_finish(ml_alert_delivery *d, int timeout_ms)
{
    if (!d)
        return;
    /* the last second is for stopping what is still running */
    long grace_ms = timeout_ms > 2000 ? 1000 : timeout_ms / 2;
    struct timespec deadline = in_ms(timeout_ms), soft = in_ms(timeout_ms - grace_ms);
    /* commands: reap them here (the caller's loop is over); those still running at the
     * deadline are stopped, so that none holds memlens's stdout/stderr open after it exits */
    reap_until(d, &soft);
    size_t still = ml_alert_delivery_running(d);
    if (still) {
        notef(d, "alert-exec: %zu command%s still running after %d s: stopped (SIGTERM)", still,
              still == 1 ? "" : "s", timeout_ms / 1000);
        d->stopping = true;
        stop_commands(d, SIGTERM);
        struct timespec term = in_ms(200);
        reap_until(d, &term);
        stop_commands(d, SIGKILL);
        for (size_t i = 0; i < ML_ALERT_EXEC_MAX; i++)
            if (d->running[i] && waitpid(d->running[i], NULL, 0) == d->running[i])
                d->running[i] = 0;
    }
    if (d->exec_dropped)
        notef(d, "alert-exec: %zu alert%s dropped (%d commands already running)", d->exec_dropped,
              d->exec_dropped == 1 ? "" : "s", ML_ALERT_EXEC_MAX);
    if (!d->worker_started) {
        free(d);
        return;
    }
    /* webhook: posts go on until the soft deadline; then the one in progress is aborted (libcurl
     * asks its progress callback about once a second at least) and the rest are not tried */
    pthread_mutex_lock(&d->lock);
    while ((d->count || d->busy) &&
           pthread_cond_timedwait(&d->changed, &d->lock, &soft) != ETIMEDOUT)
        ;
    size_t unfinished = d->count + d->busy;
    size_t failed = d->failed, dropped = d->queue_dropped;
    for (; d->count; d->count--) { /* not tried */
        free(d->queue[d->head]);
        d->head = (d->head + 1) % ML_ALERT_QUEUE_MAX;
    }
    atomic_store(&d->abort_posts, true);
    d->stop = true;
    pthread_cond_broadcast(&d->changed);
    while (d->busy && pthread_cond_timedwait(&d->changed, &d->lock, &deadline) != ETIMEDOUT)
        ;
    bool worker_busy = d->busy;
    pthread_mutex_unlock(&d->lock);
    ml_alert_delivery_poll(d); /* the first failure, if not passed on yet */
    if (failed > 1)
        notef(d, "alert-webhook: %zu more POSTs to %s failed", failed - 1, d->url);
    if (dropped)
        notef(d, "alert-webhook: %zu alert%s dropped (queue of %d full)", dropped,
              dropped == 1 ? "" : "s", ML_ALERT_QUEUE_MAX);
    if (unfinished)
        notef(d, "alert-webhook: %zu POST%s not completed after %d s, given up", unfinished,
              unfinished == 1 ? "" : "s", timeout_ms / 1000);
    if (worker_busy)
        return; /* abandoned, not joined: it may still use d, which is therefore never freed */
    pthread_join(d->worker, NULL);
    curl_global_cleanup();
    close(d->wake[0]);
    close(d->wake[1]);
    free(d);
}
