/* ml_prim.c — raw system calls and small string helpers for the injected library (see ml_prim.h). */
#define _GNU_SOURCE
#include "ml_prim.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

void *ml_os_alloc(size_t bytes) {
    long r = syscall(SYS_mmap, NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (r < 0 && r > -4096) return NULL;
    return (void *)r;
}

void ml_os_free(void *ptr, size_t bytes) {
    if (ptr) syscall(SYS_munmap, ptr, bytes);
}

uint64_t ml_os_page_size(void) { return (uint64_t)sysconf(_SC_PAGESIZE); }

static uint64_t clock_ns(clockid_t id) {
    struct timespec ts;
    clock_gettime(id, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}
uint64_t ml_now_ns(void) { return clock_ns(CLOCK_REALTIME); }
uint64_t ml_monotonic_ns(void) { return clock_ns(CLOCK_MONOTONIC); }

void ml_sleep_ns(uint64_t ns) {
    struct timespec ts = { .tv_sec = (time_t)(ns / 1000000000ull), .tv_nsec = (long)(ns % 1000000000ull) };
    while (syscall(SYS_nanosleep, &ts, &ts) != 0 && errno == EINTR) {}
}

int ml_fd_high(int low) {
    struct rlimit rl;
    long floor = 512;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY && (long)rl.rlim_cur > 64)
        floor = (long)rl.rlim_cur - 32 < floor ? (long)rl.rlim_cur - 32 : floor;
    int high = (int)syscall(SYS_fcntl, low, F_DUPFD_CLOEXEC, floor);
    if (high < 0) return low;
    syscall(SYS_close, low);
    return high;
}

pid_t ml_gettid(void) { return (pid_t)syscall(SYS_gettid); }

ssize_t ml_write_all(int fd, const void *data, size_t len) {
    const char *p = data;
    size_t done = 0;
    while (done < len) {
        long r = syscall(SYS_write, fd, p + done, len - done);
        if (r < 0) {
            if (errno == EINTR) continue;
            return -errno;
        }
        if (r == 0) return -EIO;
        done += (size_t)r;
    }
    return (ssize_t)done;
}

ssize_t ml_read_file(const char *path, char *buf, size_t cap) {
    int fd = (int)syscall(SYS_openat, AT_FDCWD, path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -errno;
    size_t used = 0;
    while (used + 1 < cap) {
        long r = syscall(SYS_read, fd, buf + used, cap - 1 - used);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        used += (size_t)r;
    }
    syscall(SYS_close, fd);
    buf[used] = 0;
    return (ssize_t)used;
}

void ml_stderr(const char *a, const char *b, const char *c) {
    char line[1024];
    size_t n = ml_strlcpy(line, "memlens: ", sizeof line);
    const char *parts[3] = { a, b, c };
    for (int i = 0; i < 3; i++) {
        if (!parts[i]) continue;
        if (i > 0 && n < sizeof line - 1) line[n++] = ' ';
        n += ml_strlcpy(line + n, parts[i], sizeof line - n);
    }
    if (n >= sizeof line - 1) n = sizeof line - 2;
    line[n++] = '\n';
    int saved = errno;
    ml_write_all(2, line, n);
    errno = saved;
}

uint64_t ml_proc_status_kb(const char *text, const char *key) {
    size_t klen = strlen(key);
    for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
        if (strncmp(p, key, klen) == 0 && p[klen] == ':') {
            const char *q = p + klen + 1;
            while (*q == ' ' || *q == '\t') q++;
            uint64_t v = 0;
            while (*q >= '0' && *q <= '9') v = v * 10 + (uint64_t)(*q++ - '0');
            return v * 1024;
        }
    }
    return 0;
}

size_t ml_fmt_u64(char *out, uint64_t v) {
    char tmp[24];
    size_t n = 0;
    do { tmp[n++] = (char)('0' + v % 10); v /= 10; } while (v);
    for (size_t i = 0; i < n; i++) out[i] = tmp[n - 1 - i];
    return n;
}

size_t ml_fmt_i64(char *out, int64_t v) {
    if (v >= 0) return ml_fmt_u64(out, (uint64_t)v);
    out[0] = '-';
    return 1 + ml_fmt_u64(out + 1, (uint64_t)0 - (uint64_t)v);
}

size_t ml_fmt_hex(char *out, uint64_t v) {
    static const char digits[] = "0123456789abcdef";
    char tmp[16];
    size_t n = 0;
    do { tmp[n++] = digits[v & 15]; v >>= 4; } while (v);
    for (size_t i = 0; i < n; i++) out[i] = tmp[n - 1 - i];
    return n;
}

size_t ml_strlcpy(char *dst, const char *src, size_t cap) {
    if (cap == 0) return 0;
    size_t n = 0;
    while (src[n] && n + 1 < cap) { dst[n] = src[n]; n++; }
    dst[n] = 0;
    return n;
}
