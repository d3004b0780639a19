/* ml_out.c — stream files and JSON serialization without stdio or the host's malloc. The file is
 * created 0600 with O_EXCL|O_NOFOLLOW, its descriptor moved high (above the range programs use and
 * dup2 onto) with FD_CLOEXEC, and checked by inode before each write, so that a program that closes
 * or reuses our descriptor never receives our bytes. A write error disables output with one line on
 * stderr; the program goes on. State is protected by the collector's flush lock. */
#define _GNU_SOURCE
#include "ml_out.h"
#include "ml.h"
#include "ml_prim.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#define BUF_CAP (256u << 10)

ml_out_sink *ml_out_write = ml_write_all;

static int fd = -1;
static dev_t file_dev;
static ino_t file_ino;
static bool failed;
static char name[96];
static unsigned seq;
static char buf[BUF_CAP];
static size_t used;

bool ml_out_open(const char *dir) {
    if (syscall(SYS_mkdirat, AT_FDCWD, dir, 0700) != 0 && errno != EEXIST) {
        ml_stderr("cannot create output directory", dir, "- the program runs untracked");
        return true;
    }
    int dfd = (int)syscall(SYS_openat, AT_FDCWD, dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0) { ml_stderr("cannot open output directory", dir, "- the program runs untracked"); return true; }
    pid_t pid = getpid();
    int f = -1;
    for (seq = 0; seq < 1000 && f < 0; seq++) {
        size_t n = ml_strlcpy(name, "memlens.", sizeof name);
        n += ml_fmt_u64(name + n, (uint64_t)pid);
        name[n++] = '.';
        n += ml_fmt_u64(name + n, seq);
        ml_strlcpy(name + n, ".jsonl", sizeof name - n);
        f = (int)syscall(SYS_openat, dfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (f < 0 && errno != EEXIST) break;
    }
    seq--;
    syscall(SYS_close, dfd);
    if (f < 0) { ml_stderr("cannot create a stream file in", dir, "- the program runs untracked"); return true; }
    fd = ml_fd_high(f);
    struct stat st;
    if (fstat(fd, &st) != 0) { syscall(SYS_close, fd); fd = -1; return true; }
    file_dev = st.st_dev;
    file_ino = st.st_ino;
    failed = false;
    used = 0;
    return false;
}

void ml_out_close(void) {
    if (fd >= 0) syscall(SYS_close, fd);
    fd = -1;
}

bool ml_out_ok(void) { return fd >= 0 && !failed; }
const char *ml_out_name(void) { return fd >= 0 ? name : ""; }
unsigned ml_out_seq(void) { return seq; }

bool ml_out_flush(void) {
    if (!used) return failed;
    if (fd < 0 || failed) { used = 0; return true; }
    struct stat st;
    if (fstat(fd, &st) != 0 || st.st_dev != file_dev || st.st_ino != file_ino) {
        failed = true;
        ml_stderr("the stream file descriptor was closed or replaced by the program; output stopped", NULL, NULL);
    } else if (ml_out_write(fd, buf, used) < 0) {
        failed = true;
        ml_stderr("cannot write the stream (disk full or read-only?); output stopped, the program goes on", NULL, NULL);
    }
    used = 0;
    return failed;
}

static void put(const char *s, size_t n) {
    if (n > BUF_CAP) return;
    if (used + n > BUF_CAP) ml_out_flush();
    memcpy(buf + used, s, n);
    used += n;
}

void ml_out_raw(const char *text) { put(text, strlen(text)); }

void ml_out_num(uint64_t v) {
    char tmp[24];
    put(tmp, ml_fmt_u64(tmp, v));
}

void ml_out_inum(int64_t v) {
    char tmp[24];
    put(tmp, ml_fmt_i64(tmp, v));
}

void ml_out_string(const char *v, size_t len) {
    static const char hex[] = "0123456789abcdef";
    put("\"", 1);
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)v[i];
        if (c == '"' || c == '\\') { char e[2] = { '\\', (char)c }; put(e, 2); }
        else if (c == '\n') put("\\n", 2);
        else if (c == '\t') put("\\t", 2);
        else if (c < 0x20 || c == 0x7f) { char e[6] = { '\\', 'u', '0', '0', hex[c >> 4], hex[c & 15] }; put(e, 6); }
        else if (c < 0x80) put((const char *)&v[i], 1);
        else {                                     /* copy valid UTF-8 sequences, replace anything else */
            size_t need = c >= 0xf0 && c < 0xf5 ? 4 : c >= 0xe0 ? 3 : c >= 0xc2 && c < 0xe0 ? 2 : 0;
            if (c >= 0xf5) need = 0;
            size_t k = 1;
            while (need && k < need && i + k < len && ((unsigned char)v[i + k] & 0xc0) == 0x80) k++;
            if (need && k == need) { put(&v[i], need); i += need - 1; }
            else put("\\ufffd", 6);
        }
    }
    put("\"", 1);
}

void ml_out_begin(const char *type) {
    put("{\"type\":\"", 9);
    ml_out_raw(type);
    put("\"", 1);
}

void ml_out_end(void) { put("}\n", 2); }

void ml_out_key(const char *key) {
    put(",\"", 2);
    ml_out_raw(key);
    put("\":", 2);
}

void ml_out_u64(const char *key, uint64_t v) { ml_out_key(key); ml_out_num(v); }
void ml_out_i64(const char *key, int64_t v) { ml_out_key(key); ml_out_inum(v); }
void ml_out_str(const char *key, const char *v) {
    ml_out_key(key);
    if (v) ml_out_string(v, strlen(v)); else ml_out_raw("null");
}
