/* ml_control.c — the control socket (see ml_control.h). The socket is bound through
 * /proc/self/fd/<dirfd>/ so a long run directory path does not hit sun_path's 108-byte limit, made
 * 0600 between bind and listen (nobody can connect before listen; the umask, which is the program's,
 * is never touched), and every peer must have our effective uid (SO_PEERCRED). Requests are read with a 1 s limit so a
 * silent client cannot stall the collector. State here belongs to the collector thread. */
#define _GNU_SOURCE
#include "ml_control.h"
#include "ml_prim.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

static int listen_fd = -1;
static char socket_path[4200];
/* An eventfd that ml_control_wake writes to interrupt the wait of ml_control_serve (the collector's
 * only sleep): a thread that needs the collector now, not at its next period. */
static int wake_fd = -1;

bool ml_control_wake_open(void) {
    if (wake_fd >= 0) syscall(SYS_close, wake_fd);   /* a fork child's copy of the parent's, or a stopped collector's */
    int fd = (int)syscall(SYS_eventfd2, 0, EFD_CLOEXEC | EFD_NONBLOCK);
    wake_fd = fd >= 0 ? ml_fd_high(fd) : -1;
    return wake_fd >= 0;
}

bool ml_control_wake(void) {
    int fd = wake_fd;
    if (fd < 0) return false;
    /* still ours? A program that closes every descriptor it did not open (a daemon) may have closed
     * it; the number is then most likely free, and written to, it would be the program's */
    char link[32] = "/proc/self/fd/", target[32];
    link[14 + ml_fmt_u64(link + 14, (uint64_t)fd)] = 0;
    long n = syscall(SYS_readlink, link, target, sizeof target - 1);
    if (n <= 0) return false;
    target[n] = 0;
    if (strcmp(target, "anon_inode:[eventfd]") != 0) return false;
    uint64_t one = 1;
    return syscall(SYS_write, fd, &one, sizeof one) == (long)sizeof one;
}

void ml_reply_raw(struct ml_reply *r, const char *s) {
    size_t n = strlen(s);
    if (r->len + n < sizeof r->text) { memcpy(r->text + r->len, s, n); r->len += n; }
}

static void reply_key(struct ml_reply *r, const char *key) {
    if (!key) return;
    ml_reply_raw(r, ",\"");
    ml_reply_raw(r, key);
    ml_reply_raw(r, "\":");
}

void ml_reply_u64(struct ml_reply *r, const char *key, uint64_t v) {
    char num[24];
    num[ml_fmt_u64(num, v)] = 0;
    reply_key(r, key);
    ml_reply_raw(r, num);
}

void ml_reply_i64(struct ml_reply *r, const char *key, int64_t v) {
    char num[24];
    num[ml_fmt_i64(num, v)] = 0;
    reply_key(r, key);
    ml_reply_raw(r, num);
}

bool ml_control_open(const char *dir) {
    int dfd = (int)syscall(SYS_openat, AT_FDCWD, dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0) return false;
    char name[64];
    size_t n = ml_strlcpy(name, "memlens.", sizeof name);
    n += ml_fmt_u64(name + n, (uint64_t)getpid());
    ml_strlcpy(name + n, ".sock", sizeof name - n);
    struct sockaddr_un addr = { .sun_family = AF_UNIX };
    n = ml_strlcpy(addr.sun_path, "/proc/self/fd/", sizeof addr.sun_path);
    n += ml_fmt_u64(addr.sun_path + n, (uint64_t)dfd);
    n += ml_strlcpy(addr.sun_path + n, "/", sizeof addr.sun_path - n);
    ml_strlcpy(addr.sun_path + n, name, sizeof addr.sun_path - n);
    unlinkat(dfd, name, 0);   /* a stale socket of an earlier process with our pid */
    int fd = (int)syscall(SYS_socket, AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    bool ok = false;
    if (fd >= 0)
        ok = bind(fd, (struct sockaddr *)&addr, sizeof addr) == 0 && fchmodat(dfd, name, 0600, 0) == 0 &&
             listen(fd, 8) == 0;
    if (ok) {
        size_t m = ml_strlcpy(socket_path, dir, sizeof socket_path);
        m += ml_strlcpy(socket_path + m, "/", sizeof socket_path - m);
        ml_strlcpy(socket_path + m, name, sizeof socket_path - m);
        listen_fd = fd;
    } else if (fd >= 0) {
        close(fd);
    }
    close(dfd);
    return ok;
}

static void serve_one(int client, ml_control_handler *handler) {
    struct ucred cred;
    socklen_t len = sizeof cred;
    if (getsockopt(client, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 || cred.uid != geteuid()) return;
    char request[256];
    size_t used = 0;
    uint64_t deadline = ml_monotonic_ns() + 1000000000ull;
    while (used + 1 < sizeof request && !memchr(request, '\n', used)) {
        uint64_t now = ml_monotonic_ns();
        if (now >= deadline) return;
        struct pollfd p = { client, POLLIN, 0 };
        if (poll(&p, 1, (int)((deadline - now) / 1000000) + 1) <= 0) return;
        ssize_t got = read(client, request + used, sizeof request - 1 - used);
        if (got <= 0) break;
        used += (size_t)got;
    }
    request[used] = 0;
    char *end = strpbrk(request, "\r\n");
    if (end) *end = 0;
    static struct ml_reply reply;   /* collector thread only */
    reply.len = 0;
    handler(request, &reply);
    ml_reply_raw(&reply, "\n");
    ml_write_all(client, reply.text, reply.len);
}

bool ml_control_serve(uint64_t deadline, ml_control_handler *handler) {
    for (;;) {
        uint64_t now = ml_monotonic_ns();
        if (now >= deadline) return false;
        struct pollfd p[2] = { { wake_fd, POLLIN, 0 }, { listen_fd, POLLIN, 0 } };   /* negative: ignored */
        int ready = poll(p, 2, (int)((deadline - now + 999999) / 1000000));
        if (ready < 0 && errno != EINTR) { ml_sleep_ns(deadline - now); return false; }
        if (ready <= 0) continue;
        if (p[0].revents & POLLIN) {
            uint64_t count;
            (void)!syscall(SYS_read, wake_fd, &count, sizeof count);
            return true;
        }
        if (!(p[1].revents & POLLIN)) continue;
        int client = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
        if (client < 0) continue;
        int flags = fcntl(client, F_GETFL);
        fcntl(client, F_SETFL, flags & ~O_NONBLOCK);
        serve_one(client, handler);
        close(client);
    }
}

void ml_control_close(bool remove_file) {
    if (listen_fd < 0) return;
    close(listen_fd);
    listen_fd = -1;
    if (remove_file && socket_path[0]) unlink(socket_path);
    socket_path[0] = 0;
}

void ml_control_unlink(void) {
    if (socket_path[0]) unlink(socket_path);
}
