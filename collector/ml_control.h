/* ml_control.h — the control socket: a Unix socket (0600, peer uid checked) in the run directory,
 * served by the collector thread between flushes. One request line, one JSON response line. */
#ifndef ML_CONTROL_H
#define ML_CONTROL_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A response under construction (fixed size; never the host's malloc). */
struct ml_reply { char text[16384]; size_t len; };
void ml_reply_raw(struct ml_reply *r, const char *s);
void ml_reply_u64(struct ml_reply *r, const char *key, uint64_t v);   /* ,"key":v  (key NULL: bare v) */
void ml_reply_i64(struct ml_reply *r, const char *key, int64_t v);

/* Handles one command (the request line without newline); fills the reply. */
typedef void ml_control_handler(const char *command, struct ml_reply *reply);

/* Creates <dir>/memlens.<pid>.sock; false if it could not (tracking goes on without it). */
bool ml_control_open(const char *dir);
/* Waits until `deadline` (ml_monotonic_ns), serving requests meanwhile; true when ml_control_wake
 * ended the wait early (the caller does what it was woken for, then waits again until the deadline). */
bool ml_control_serve(uint64_t deadline, ml_control_handler *handler);
/* The wake-up descriptor: created by the thread that starts the collector, before it starts (a
 * previous one closed); ml_control_wake (any thread) is false when it cannot wake the collector. */
bool ml_control_wake_open(void);
bool ml_control_wake(void);
/* Closes the socket; remove_file unlinks it (not in a fork child: the file is the parent's). */
void ml_control_close(bool remove_file);
/* Removes the socket file only (any thread; the collector thread keeps its descriptor). */
void ml_control_unlink(void);
#endif
