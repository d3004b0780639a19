/* ml_collector.h — the life cycle of tracking in one process: start, the collector thread, flushes,
 * fork, exec, dlclose and exit. */
#ifndef ML_COLLECTOR_H
#define ML_COLLECTOR_H
#include <stdbool.h>

/* Full initialisation (config, tables, stream, header); safe to call from the first intercepted
 * allocation. Sets ml_state to ON or DISABLED. */
void ml_runtime_init(void);
/* Starts the collector thread and registers fork and exit handlers (from the library constructor). */
void ml_collector_start(void);
/* Final flush: live blocks, then the end record. reason: "exit" or "exec"; status < 0: unknown. */
void ml_collector_finish(const char *reason, int status, const char *exec_path);
/* Called before an object is unloaded: write what refers to it while it is still mapped. */
void ml_collector_before_dlclose(void);
/* exec failed after ml_collector_finish("exec"): go on tracking in a new stream. */
void ml_collector_exec_failed(void);
/* exit(status) was called: remember the status for the end record. */
void ml_collector_note_exit_status(int status);
#endif
