/* alert_deliver.h — delivery of the alerts that `memlens run` receives from the traced program
 * (MEMLENS_ALERT_FD): `--alert-exec CMD` and `--alert-webhook URL`.
 *
 * Everything runs in the memlens parent process, never in the traced program, and never blocks
 * its wait loop:
 *   exec    — `/bin/sh -c CMD` per alert, the alert's JSON line on its stdin (a memfd, so writing
 *             it cannot block), MEMLENS_ALERT_LEVEL / MEMLENS_ALERT_RULE / MEMLENS_ALERT_PID in
 *             its environment. At most ML_ALERT_EXEC_MAX commands run at once; alerts beyond
 *             that are dropped and counted (one line at the end). The caller reaps children with
 *             waitpid and hands their status to ml_alert_delivery_reaped; a command that fails
 *             prints one line.
 *   webhook — an HTTP POST of the JSON line (Content-Type: application/json) by a worker thread
 *             with libcurl (5 s connect and total timeouts), from a bounded queue
 *             (ML_ALERT_QUEUE_MAX; alerts beyond it are dropped and counted). The first failure
 *             prints one line; later failures are counted and reported in one line at the end.
 * ml_alert_delivery_finish waits at most a given time for what is in flight; commands still
 * running then are stopped (SIGTERM to their process group, SIGKILL 200 ms later).
 */
#ifndef MEMLENS_TOOLS_ALERT_DELIVER_H
#define MEMLENS_TOOLS_ALERT_DELIVER_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#define ML_ALERT_EXEC_MAX 4
#define ML_ALERT_QUEUE_MAX 32

typedef struct ml_alert_delivery ml_alert_delivery;

/* Where the delivery's messages go (one line each, without "memlens: " nor newline); called
 * only from the thread that calls the functions below. */
typedef void (*ml_alert_note_fn)(void *ctx, const char *line);

/* NULL when neither exec_cmd nor webhook_url is given. `output_fd` >= 0: stdout and stderr of
 * the commands (the --live view's output file), else memlens's own. Dies on setup errors. */
ml_alert_delivery *ml_alert_delivery_new(const char *exec_cmd, const char *webhook_url,
                                         int output_fd, ml_alert_note_fn note, void *note_ctx);

/* Readable when the webhook worker has messages to pass on: poll it, then call
 * ml_alert_delivery_poll. -1 without a webhook. */
int ml_alert_delivery_fd(const ml_alert_delivery *d);
void ml_alert_delivery_poll(ml_alert_delivery *d);

/* Deliver one alert: `json` is its line (no newline); level/rule/pid for the environment. */
void ml_alert_delivery_send(ml_alert_delivery *d, const char *json, size_t len, const char *level,
                            const char *rule, long pid);

/* A child was reaped: true when it was one of the alert commands (its failure is reported). */
bool ml_alert_delivery_reaped(ml_alert_delivery *d, pid_t pid, int status);

/* Commands still running. */
size_t ml_alert_delivery_running(const ml_alert_delivery *d);

/* Wait up to timeout_ms for running commands (reaped here; stopped at the deadline) and queued
 * webhook posts, report drops and what was left unfinished (one line each), and release d (a
 * webhook thread still busy is abandoned, not joined). */
void ml_alert_delivery_finish(ml_alert_delivery *d, int timeout_ms);

#endif
