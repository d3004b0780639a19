/* cmd_control.c — `memlens status|top|dump|trim|reset-peak TARGET`: talk to the control socket
 * of a running traced process (docs/format.md, "The control socket").
 *
 * TARGET is a PID or a run directory. For a PID the run directory is the MEMLENS_OUT of
 * /proc/PID/environ (relative paths resolved against /proc/PID/cwd), else the process's cwd
 * searched for memlens-*-PID/; the socket is memlens.PID.sock there. For a directory, its one
 * memlens.*.sock (with several, --pid picks). One command line is sent, one JSON line read
 * (5 s timeout each way) and printed as a table, or as received with --json. `top` symbolizes
 * the sites by reading the process's stream in the same directory (the collector flushes the
 * `site` records before it answers). Every failure is one line on stderr and exit 2.
 */
#define _GNU_SOURCE
#include "cli.h"
#include "fmt.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#define CONTROL_TIMEOUT_S 5
#define TOP_DEFAULT 10

static bool all_digits(const char *s)
{
    if (!s || !*s)
        return false;
    for (; *s; s++)
        if (!isdigit((unsigned char)*s))
            return false;
    return true;
}

/* MEMLENS_OUT from /proc/PID/environ, or NULL. Malloc'd. */
static char *environ_out(long pid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%ld/environ", pid);
    FILE *f = fopen(path, "re");
    if (!f)
        return NULL;
    char *entry = NULL, *found = NULL;
    size_t cap = 0;
    while (getdelim(&entry, &cap, '\0', f) > 0)
        if (strncmp(entry, "MEMLENS_OUT=", 12) == 0 && entry[12]) {
            free(found);
            found = strdup(entry + 12);
        }
    free(entry);
    fclose(f);
    return found;
}

static char *proc_cwd(long pid)
{
    char link[64], buf[PATH_MAX];
    snprintf(link, sizeof link, "/proc/%ld/cwd", pid);
    ssize_t n = readlink(link, buf, sizeof buf - 1);
    if (n <= 0)
        return NULL;
    buf[n] = '\0';
    return strdup(buf);
}

static char *join(const char *dir, const char *name)
{
    char *p = NULL;
    if (asprintf(&p, "%s/%s", dir, name) < 0)
        ml_die("out of memory");
    return p;
}

static bool file_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

/* The run directory of a traced pid; dies when it cannot be found. */
static char *dir_of_pid(long pid, char *sock_name, size_t sock_len)
{
    char proc[64];
    snprintf(proc, sizeof proc, "/proc/%ld", pid);
    if (access(proc, F_OK) != 0)
        ml_die("no such process: %ld", pid);
    snprintf(sock_name, sock_len, "memlens.%ld.sock", pid);
    char *cwd = proc_cwd(pid);
    char *out = environ_out(pid);
    if (out) {
        if (out[0] != '/' && cwd) {
            char *abs = join(cwd, out);
            free(out);
            out = abs;
        }
        free(cwd);
        return out;
    }
    if (!cwd)
        ml_die("process %ld: cannot read its environment or cwd (another user's process?)", pid);
    char suffix[32];
    int slen = snprintf(suffix, sizeof suffix, "-%ld", pid);
    DIR *d = opendir(cwd);
    char *found = NULL;
    if (d) {
        struct dirent *e;
        while ((e = readdir(d))) {
            size_t n = strlen(e->d_name);
            if (strncmp(e->d_name, "memlens-", 8) == 0 && n > 8 + (size_t)slen &&
                strcmp(e->d_name + n - (size_t)slen, suffix) == 0) {
                char *cand = join(cwd, e->d_name);
                char *sock = join(cand, sock_name);
                bool ok = file_exists(sock);
                free(sock);
                if (ok) {
                    free(found);
                    found = cand;
                    break;
                }
                if (!found)
                    found = cand;
                else
                    free(cand);
            }
        }
        closedir(d);
    }
    if (!found)
        ml_die("process %ld is not traced by memlens (no MEMLENS_OUT and no %s/memlens-*-%ld/)",
               pid, cwd, pid);
    free(cwd);
    return found;
}

/* The one socket of a run directory (or that of `pid` when > 0). */
static void sock_of_dir(const char *dir, long pid, char *sock_name, size_t sock_len)
{
    if (pid > 0) {
        snprintf(sock_name, sock_len, "memlens.%ld.sock", pid);
        return;
    }
    DIR *d = opendir(dir);
    if (!d)
        ml_die("%s: %s", dir, strerror(errno));
    size_t n = 0;
    char list[512] = "";
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t len = strlen(e->d_name);
        if (strncmp(e->d_name, "memlens.", 8) != 0 || len < 13 ||
            strcmp(e->d_name + len - 5, ".sock") != 0)
            continue;
        if (n++ == 0)
            snprintf(sock_name, sock_len, "%s", e->d_name);
        size_t used = strlen(list);
        snprintf(list + used, sizeof list - used, "%s%.*s", used ? ", " : "", (int)(len - 13),
                 e->d_name + 8);
    }
    closedir(d);
    if (n == 0)
        ml_die("%s: no control socket (no traced process of this run is running)", dir);
    if (n > 1)
        ml_die("%s: %zu running processes (%s): name one with --pid PID or give the PID", dir, n,
               list);
}

/* Send `line`, read one JSON line. Dies on any failure. */
static char *ask(const char *dir, const char *sock_name, const char *line)
{
    char *path = join(dir, sock_name);
    if (!file_exists(path))
        ml_die("%s: no control socket (process not running, or not traced?)", path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        ml_die("socket: %s", strerror(errno));
    struct timeval tv = {CONTROL_TIMEOUT_S, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    int rc;
    if (strlen(path) < sizeof addr.sun_path) {
        memcpy(addr.sun_path, path, strlen(path) + 1);
        rc = connect(fd, (struct sockaddr *)&addr, sizeof addr);
    } else { /* too long for sun_path: connect through the directory */
        int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0)
            ml_die("%s: %s", dir, strerror(errno));
        int n = snprintf(addr.sun_path, sizeof addr.sun_path, "/proc/self/fd/%d/%.80s", dfd,
                         sock_name);
        if (n < 0 || (size_t)n >= sizeof addr.sun_path)
            ml_die("%s: socket path too long", path);
        rc = connect(fd, (struct sockaddr *)&addr, sizeof addr);
        close(dfd);
    }
    if (rc != 0) {
        int e = errno;
        if (e == ECONNREFUSED)
            ml_die("%s: connection refused (stale socket: the process has ended?)", path);
        if (e == EAGAIN || e == EINPROGRESS || e == ETIMEDOUT)
            ml_die("%s: timed out connecting (%d s)", path, CONTROL_TIMEOUT_S);
        ml_die("%s: cannot connect: %s", path, strerror(e));
    }
    size_t left = strlen(line);
    const char *p = line;
    while (left) {
        ssize_t n = send(fd, p, left, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            ml_die("%s: %s", path, errno == EAGAIN ? "timed out sending the command"
                                                   : strerror(errno));
        p += n;
        left -= (size_t)n;
    }
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    if (!buf)
        ml_die("out of memory");
    for (;;) {
        if (len + 1 >= cap) {
            cap *= 2;
            if (!(buf = realloc(buf, cap)))
                ml_die("out of memory");
        }
        ssize_t n = recv(fd, buf + len, cap - len - 1, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            ml_die("%s: %s", path, errno == EAGAIN || errno == EWOULDBLOCK
                                       ? "timed out waiting for the answer (5 s)"
                                       : strerror(errno));
        if (n == 0)
            break;
        len += (size_t)n;
        if (memchr(buf + len - (size_t)n, '\n', (size_t)n))
            break;
    }
    close(fd);
    buf[len] = '\0';
    char *nl = strchr(buf, '\n');
    if (nl)
        *nl = '\0';
    if (!*buf)
        ml_die("%s: no answer (the process is exiting?)", path);
    free(path);
    return buf;
}

static void usage(FILE *out)
{
    fputs("Usage: memlens status|dump|trim|reset-peak [OPTIONS] TARGET\n"
          "       memlens top [OPTIONS] [N] TARGET\n\n"
          "Ask a running traced process through its control socket. TARGET is a PID or a run\n"
          "directory (its one memlens.PID.sock; with several, add --pid PID).\n\n"
          "  status       RSS, heap live and peak, mapped bytes, sites, threads\n"
          "  top [N]      the N sites holding most live bytes (default 10, at most 100), symbolized\n"
          "  dump         write a `dump` record (every live block by site) to the stream\n"
          "  trim         malloc_trim(0) and the RSS before and after\n"
          "  reset-peak   restart heap, site and RSS peaks from the current values\n\n"
          "Options:\n"
          "  --pid PID    with a run directory: the process to ask\n"
          "  --json       print the answer as received (one JSON object)\n"
          "  -h, --help   this help\n\n"
          "Errors (no such process, no socket, refused, 5 s timeout, refused command) print one\n"
          "line and exit 2.\n",
          out);
}

static int64_t jint(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    return json_is_integer(v) ? (int64_t)json_integer_value(v) : 0;
}

static void print_sizes(json_t *o, const char *const *keys, const char *const *labels)
{
    for (size_t i = 0; keys[i]; i++) {
        json_t *v = json_object_get(o, keys[i]);
        if (!v)
            continue;
        char buf[ML_SIZE_BUF];
        printf("  %-12s %12s\n", labels[i], ml_fmt_size(jint(o, keys[i]), buf, sizeof buf));
    }
}

static void print_top(json_t *o, const char *dir)
{
    json_t *sites = json_object_get(o, "sites");
    const char *stream = json_string_value(json_object_get(o, "stream"));
    ml_stream *s = NULL;
    ml_symbolizer *sym = NULL;
    if (stream) {
        char err[1024];
        char *path = join(dir, stream);
        s = ml_stream_load(path, err, sizeof err);
        if (!s)
            fprintf(stderr, "memlens: note: cannot read %s (%s): sites not symbolized\n", path, err);
        free(path);
        sym = ml_sym_new();
    }
    printf("  %4s  %10s  %9s  %10s  %10s  %-8s  %s\n", "site", "live", "blocks", "allocs", "peak",
           "kind", "where");
    size_t i;
    json_t *row;
    json_array_foreach(sites, i, row) {
        int64_t id = jint(row, "site");
        char live[ML_SIZE_BUF], peak[ML_SIZE_BUF], blocks[ML_SIZE_BUF], allocs[ML_SIZE_BUF];
        const char *kind = json_string_value(json_object_get(row, "kind"));
        char where[1024] = "?";
        ml_site *site = s ? ml_stream_site(s, id) : NULL;
        if (site) {
            size_t f = ml_site_user_frame(sym, s, site);
            if (f < site->nframes) {
                const ml_symbol *y = ml_sym_frame(sym, s, &site->frames[f]);
                ml_frame_text(y, &site->frames[f], where, sizeof where);
            } else {
                snprintf(where, sizeof where, "(no stack)");
            }
        }
        printf("  %4" PRId64 "  %10s  %9s  %10s  %10s  %-8s  %s\n", id,
               ml_fmt_size(jint(row, "live_bytes"), live, sizeof live),
               ml_fmt_count(jint(row, "allocations") - jint(row, "frees"), blocks, sizeof blocks),
               ml_fmt_count(jint(row, "allocations"), allocs, sizeof allocs),
               ml_fmt_size(jint(row, "peak_live_bytes"), peak, sizeof peak), kind ? kind : "?",
               where);
    }
    if (!json_array_size(sites))
        puts("  (no live sites)");
    if (sym)
        ml_sym_free(sym);
    if (s)
        ml_stream_free(s);
}

static int control_main(const char *cmd, int argc, char **argv)
{
    static const struct option opts[] = {
        {"json", no_argument, NULL, 'j'},
        {"pid", required_argument, NULL, 'p'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    bool json = false;
    long want_pid = 0;
    int c;
    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'j': json = true; break;
        case 'p':
            if (!all_digits(optarg) || (want_pid = strtol(optarg, NULL, 10)) <= 0)
                ml_usage_error(cmd, "--pid needs a process id, not '%s'", optarg);
            break;
        case 'h': usage(stdout); return ML_EXIT_OK;
        default: ml_bad_option(cmd, argv[optind - 1]);
        }
    }
    bool is_top = strcmp(cmd, "top") == 0;
    int npos = argc - optind;
    uint64_t limit = TOP_DEFAULT;
    if (is_top && npos == 2) {
        if (ml_parse_uint(argv[optind], 1, 100, &limit))
            ml_usage_error(cmd, "N must be 1..100, not '%s'", argv[optind]);
        optind++;
        npos--;
    }
    if (npos != 1)
        ml_usage_error(cmd, npos ? "too many arguments" : "missing TARGET (a PID or a run directory)");
    const char *target = argv[optind];

    char sock_name[128];
    char *dir;
    if (all_digits(target)) {
        long pid = strtol(target, NULL, 10);
        if (pid <= 0)
            ml_die("no such process: %s", target);
        dir = dir_of_pid(pid, sock_name, sizeof sock_name);
    } else {
        struct stat st;
        if (stat(target, &st) != 0)
            ml_die("%s: %s (TARGET is a PID or a run directory)", target, strerror(errno));
        if (!S_ISDIR(st.st_mode))
            ml_die("%s: not a run directory (TARGET is a PID or a run directory)", target);
        dir = strdup(target);
        if (!dir)
            ml_die("out of memory");
        sock_of_dir(dir, want_pid, sock_name, sizeof sock_name);
    }

    char line[64];
    if (is_top)
        snprintf(line, sizeof line, "top %" PRIu64 "\n", limit);
    else
        snprintf(line, sizeof line, "%s\n", cmd);
    char *answer = ask(dir, sock_name, line);
    json_error_t jerr;
    json_t *o = json_loads(answer, 0, &jerr);
    if (!o || !json_is_object(o))
        ml_die("%s/%s: malformed answer: %s", dir, sock_name, jerr.text);
    if (!json_is_true(json_object_get(o, "ok"))) {
        const char *e = json_string_value(json_object_get(o, "error"));
        ml_die("%s: refused: %s", cmd, e ? e : "(no reason given)");
    }
    if (json) {
        puts(answer);
    } else {
        ml_color_init(false);
        const char *stream = json_string_value(json_object_get(o, "stream"));
        printf("%smemlens %s%s  process %" PRId64 "  %s%s/%s%s\n", ml_bold, cmd, ml_reset,
               jint(o, "pid"), ml_dim, dir, stream ? stream : "?", ml_reset);
        char buf[ML_SIZE_BUF], buf2[ML_SIZE_BUF];
        if (strcmp(cmd, "status") == 0) {
            static const char *const keys[] = {"rss", "heap_live", "heap_peak", "mmap_live", NULL};
            static const char *const labels[] = {"rss", "heap live", "heap peak", "mmap live", NULL};
            print_sizes(o, keys, labels);
            printf("  %-12s %12s\n", "sites", ml_fmt_count(jint(o, "sites"), buf, sizeof buf));
            printf("  %-12s %12s\n", "threads", ml_fmt_count(jint(o, "threads"), buf, sizeof buf));
        } else if (is_top) {
            print_top(o, dir);
        } else if (strcmp(cmd, "dump") == 0) {
            printf("  dump #%" PRId64 " written to the stream: %s in %s blocks\n", jint(o, "dump"),
                   ml_fmt_size(jint(o, "bytes"), buf, sizeof buf),
                   ml_fmt_count(jint(o, "blocks"), buf2, sizeof buf2));
        } else if (strcmp(cmd, "trim") == 0) {
            int64_t before = jint(o, "rss_before"), after = jint(o, "rss_after");
            char rel[ML_SIZE_BUF];
            printf("  %-12s %12s\n  %-12s %12s\n  %-12s %12s\n", "rss before",
                   ml_fmt_size(before, buf, sizeof buf), "rss after",
                   ml_fmt_size(after, buf2, sizeof buf2), "released",
                   ml_fmt_size(before > after ? before - after : 0, rel, sizeof rel));
        } else {
            puts("  peaks reset: heap, per-site and RSS peaks start again from now");
        }
    }
    json_decref(o);
    free(answer);
    free(dir);
    return ML_EXIT_OK;
}

int ml_cmd_status(int argc, char **argv) { return control_main("status", argc, argv); }
int ml_cmd_top(int argc, char **argv) { return control_main("top", argc, argv); }
int ml_cmd_dump(int argc, char **argv) { return control_main("dump", argc, argv); }
int ml_cmd_trim(int argc, char **argv) { return control_main("trim", argc, argv); }
int ml_cmd_reset_peak(int argc, char **argv) { return control_main("reset-peak", argc, argv); }
