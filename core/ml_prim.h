/* ml_prim.h — the one OS layer of memlens: raw system calls, memory from the kernel, time, files,
 * /proc. Nothing here calls the (interposed) allocator or stdio, so it is safe on any path. */
#ifndef ML_PRIM_H
#define ML_PRIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

void *ml_os_alloc(size_t bytes);              /* zeroed, page-granular, reserved lazily; NULL on failure */
void ml_os_free(void *ptr, size_t bytes);
uint64_t ml_os_page_size(void);

uint64_t ml_now_ns(void);                     /* CLOCK_REALTIME, ns since the epoch */
uint64_t ml_monotonic_ns(void);
void ml_sleep_ns(uint64_t ns);
pid_t ml_gettid(void);

/* Moves a descriptor of ours high (above the range programs use and dup2 onto), close-on-exec:
 * returns the new one (the old is closed), or `low` itself when it cannot. */
int ml_fd_high(int low);
/* Files: raw syscalls, errno-style negative returns. */
ssize_t ml_write_all(int fd, const void *data, size_t len);     /* bytes written or -errno */
ssize_t ml_read_file(const char *path, char *buf, size_t cap); /* reads up to cap-1 bytes, NUL-terminates */
void ml_stderr(const char *a, const char *b, const char *c);   /* one line "memlens: a b c\n" on fd 2 */

/* Reads a "Key:   <n> kB" field of /proc/self/status into bytes; 0 when absent. */
uint64_t ml_proc_status_kb(const char *text, const char *key);

/* Memory cgroup of the process (ml_procfs.c): resolve once, then read. limit 0 = unlimited.
 * Returns false when no memory cgroup file could be read. */
void ml_cgroup_init(void);
bool ml_cgroup_memory(uint64_t *current, uint64_t *limit);
/* Open file descriptors of the process (entries of /proc/self/fd), or -1. */
int ml_open_fds(void);

/* Formatting without stdio. Return characters written (no NUL unless stated). */
size_t ml_fmt_u64(char *out, uint64_t v);
size_t ml_fmt_i64(char *out, int64_t v);
size_t ml_fmt_hex(char *out, uint64_t v);
size_t ml_strlcpy(char *dst, const char *src, size_t cap);
#endif
