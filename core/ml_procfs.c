/* ml_procfs.c — the OS layer's readers of /proc and of the memory cgroup (declared in ml_prim.h):
 * fixed buffers and raw system calls only, so the collector can call them inside any program.
 *
 * cgroup: v2 ("0::/path" in /proc/self/cgroup → <root>/<path>/memory.current and memory.max), else v1
 * ("N:…memory…:/path" → <root>/memory/<path>/memory.usage_in_bytes and memory.limit_in_bytes, and
 * the hybrid layout's <root>/unified for v2). <root> is /sys/fs/cgroup, or MEMLENS_CGROUP_ROOT, which
 * lets tests point memlens at real files of their own. Paths are resolved once. */
#define _GNU_SOURCE
#include "ml_prim.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

static char current_path[1024], limit_path[1024];
static bool v2;

static bool join(char *out, size_t cap, const char *a, const char *b, const char *c, const char *d) {
    size_t n = ml_strlcpy(out, a, cap);
    n += ml_strlcpy(out + n, b, cap - n);
    n += ml_strlcpy(out + n, c, cap - n);
    n += ml_strlcpy(out + n, d, cap - n);
    return n + 1 >= cap;
}

static bool readable(const char *path) {
    char tmp[64];
    return ml_read_file(path, tmp, sizeof tmp) > 0;
}

void ml_cgroup_init(void) {
    const char *root = getenv("MEMLENS_CGROUP_ROOT");
    if (!root || !*root) root = "/sys/fs/cgroup";
    char text[4096];
    current_path[0] = limit_path[0] = 0;
    if (ml_read_file("/proc/self/cgroup", text, sizeof text) <= 0) return;
    char *save = NULL, *v1_path = NULL, *v2_path = NULL;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char *controllers = strchr(line, ':');
        char *path = controllers ? strchr(controllers + 1, ':') : NULL;
        if (!path) continue;
        *path++ = 0;
        controllers++;
        if (line[0] == '0' && controllers[0] == 0) v2_path = path;
        for (char *c = controllers; c && *c;) {
            if (strncmp(c, "memory", 6) == 0 && (c[6] == 0 || c[6] == ',')) v1_path = path;
            c = strchr(c, ',');
            if (c) c++;
        }
    }
    if (v2_path) {
        const char *dirs[2] = { "", "/unified" };
        for (int i = 0; i < 2; i++) {
            join(current_path, sizeof current_path, root, dirs[i], strcmp(v2_path, "/") ? v2_path : "", "/memory.current");
            join(limit_path, sizeof limit_path, root, dirs[i], strcmp(v2_path, "/") ? v2_path : "", "/memory.max");
            if (readable(current_path)) { v2 = true; return; }
        }
    }
    if (v1_path) {
        join(current_path, sizeof current_path, root, "/memory", strcmp(v1_path, "/") ? v1_path : "", "/memory.usage_in_bytes");
        join(limit_path, sizeof limit_path, root, "/memory", strcmp(v1_path, "/") ? v1_path : "", "/memory.limit_in_bytes");
        if (readable(current_path)) { v2 = false; return; }
    }
    current_path[0] = limit_path[0] = 0;
}

static bool read_u64(const char *path, uint64_t *out) {
    char text[64];
    if (!path[0] || ml_read_file(path, text, sizeof text) <= 0 || text[0] < '0' || text[0] > '9') return false;
    *out = strtoull(text, NULL, 10);
    return true;
}

bool ml_cgroup_memory(uint64_t *current, uint64_t *limit) {
    if (!read_u64(current_path, current)) return false;
    /* v2 writes "max" when unlimited; v1 a huge page-rounded number */
    if (!read_u64(limit_path, limit) || (!v2 && *limit >= (1ull << 62))) *limit = 0;
    return true;
}

int ml_open_fds(void) {
    int dir = (int)syscall(SYS_openat, AT_FDCWD, "/proc/self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir < 0) return -1;
    char buf[8192];
    int count = 0;
    for (;;) {
        long n = syscall(SYS_getdents64, dir, buf, sizeof buf);
        if (n <= 0) break;
        for (long off = 0; off < n;) {
            struct { uint64_t ino; int64_t off; unsigned short reclen; unsigned char type; char name[]; } *d = (void *)(buf + off);
            if (d->name[0] != '.') count++;
            off += d->reclen;
        }
    }
    syscall(SYS_close, dir);
    return count > 0 ? count - 1 : 0;   /* not counting the directory descriptor itself */
}
