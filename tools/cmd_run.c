/* cmd_run.c — `memlens run [OPTIONS] -- cmd args…`: run a program with libmemlens.so preloaded.
 *
 * The child gets LD_PRELOAD (libmemlens.so first), MEMLENS_OUT (an absolute run directory) and
 * the option variables, then execs. The parent ignores SIGINT/SIGQUIT while it waits (as
 * time(1) does), writes symbols.json into the run directory while the traced objects are surely
 * still on disk, prints a summary on stderr (stdout belongs to the program) and exits with the
 * child's status, or 128+signal. An exec failure is reported through a close-on-exec pipe.
 *
 * With --check (or any check budget option), `memlens check` runs on the run directory right
 * after (report on stderr, or --check-output FILE), LSan-style: exit 1 on findings even when the
 * program exited 0, 2 when the check cannot decide; a program that failed keeps its status.
 *
 * While the child runs, the parent does not block in waitpid: run_watch.c polls the alert pipe
 * (the child's MEMLENS_ALERT_FD: alerts printed on stderr and delivered by --alert-exec and
 * --alert-webhook) and, with --live, refreshes the view (live.c). A --live view on a terminal
 * sends the program's stdout and stderr to <run dir>/output.<pid>.log (0600, O_EXCL|O_NOFOLLOW),
 * opened by the child before exec.
 */
#define _GNU_SOURCE
#include "check.h"
#include "cli.h"
#include "fmt.h"
#include "run_watch.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define LIB_NAME "libmemlens.so"
#define ML_SAMPLE_MAX (UINT64_C(1) << 40) /* the largest MEMLENS_SAMPLE the library accepts */

static void usage(FILE *out)
{
    fprintf(out, "Usage: memlens run [OPTIONS] -- COMMAND [ARGS...]\n\n"
          "Run COMMAND with libmemlens.so preloaded, wait for it, write symbols.json into the\n"
          "run directory and print a summary on stderr. Exits with COMMAND's exit status, or\n"
          "128+N when it was killed by signal N.\n\n"
          "Options (each sets the environment variable named after it):\n"
          "  --out DIR          run directory (MEMLENS_OUT; default ./memlens-<prog>-<pid>/)\n"
          "  --depth N          frames per call stack, 1..1024 (MEMLENS_DEPTH; default 32)\n"
          "  --interval T       snapshot/flush interval, and the --live refresh: 500, 500ms or\n"
          "                     2s (MEMLENS_INTERVAL; default 1s)\n"
          "  --op-min SIZE      log each operation of at least SIZE bytes: 1048576, 64K, 1MiB\n"
          "                     (MEMLENS_OP_MIN; default 1MiB)\n"
          "  --sample SIZE      sampled mode: record about one allocation per SIZE bytes\n"
          "                     allocated (Poisson sampling by bytes), e.g. 512KiB, for a few\n"
          "                     percent overhead; sizes and counts become unbiased estimates\n"
          "                     (marked ~) and there is no leak verdict (MEMLENS_SAMPLE;\n"
          "                     default 0: every allocation)\n"
          "  --no-follow-exec   stop tracking at exec (MEMLENS_FOLLOW_EXEC=0; default: follow)\n"
          "  -h, --help         this help\n\n"
          "Live monitoring:\n"
          "  --live             a view refreshed every --interval (default 1s): RSS, heap, mmap,\n"
          "                     cgroup use and limit, growth pattern/rate/confidence, recent\n"
          "                     alerts, top sites. On a terminal it is redrawn in place and the\n"
          "                     program's stdout and stderr go to <run dir>/output.<pid>.log;\n"
          "                     otherwise one plain line per interval on stdout (t=, rss=, heap=,\n"
          "                     mmap=, cgroup=, heap trend) and the program's output is untouched\n"
          "  --alert-exec CMD   run '/bin/sh -c CMD' for each alert, the alert's JSON line on its\n"
          "                     stdin, MEMLENS_ALERT_LEVEL, MEMLENS_ALERT_RULE and\n"
          "                     MEMLENS_ALERT_PID in its environment (at most 4 at once; more\n"
          "                     are dropped and counted)\n"
          "  --alert-webhook URL  POST each alert's JSON (Content-Type: application/json) to URL\n"
          "                     (http:// or https://; 5 s timeouts), from this process, never\n"
          "                     from the traced program\n"
          "Alerts (thresholds MEMLENS_WARN/CRIT/EMERG, growth, site; see the README) are printed on\n"
          "stderr as they happen, one line each; failures to deliver print one line and never\n"
          "stop the run; at exit, deliveries in flight get at most 5 s (commands still running\n"
          "then are stopped).\n\n"
          "Checking (memlens check in the same step; any check option implies --check):\n"
          "  --check            after the run, gate it like 'memlens check': exit 1 on findings\n"
          "                     even when COMMAND exited 0 (if COMMAND failed, its status is\n"
          "                     kept); the report goes to stderr\n"
          "  --check-output FILE  write the check report to FILE instead of stderr\n"
          "%s\n"
          "For programs started indirectly (by a test runner, a script), MEMLENS_CHECK=1 in\n"
          "their environment makes the preloaded library itself fail the process on leaks\n"
          "(LSan's exitcode style); 'memlens run --check' clears it for its child and checks\n"
          "with the options above instead.\n\n"
          "Variables already set in the environment are kept unless an option overrides them.\n"
          "libmemlens.so is taken from $MEMLENS_LIB, else next to this executable (build tree:\n"
          "../shim/), else the installed library directory.\n",
          ml_check_options_help);
}

static char *absolute_path(const char *p)
{
    char *r = NULL;
    if (p[0] == '/')
        r = strdup(p);
    else {
        char cwd[PATH_MAX];
        if (!getcwd(cwd, sizeof cwd))
            ml_die("cannot get the current directory: %s", strerror(errno));
        if (asprintf(&r, "%s/%s", cwd, p) < 0)
            r = NULL;
    }
    if (!r)
        ml_die("out of memory");
    return r;
}

static bool try_lib(const char *dir, const char *rel, char **out)
{
    char *p = NULL;
    if (asprintf(&p, "%s/%s/%s", dir, rel, LIB_NAME) < 0)
        ml_die("out of memory");
    char *real = access(p, R_OK) == 0 ? realpath(p, NULL) : NULL;
    free(p);
    if (real)
        *out = real;
    return real != NULL;
}

static char *find_lib(void)
{
    const char *env = getenv("MEMLENS_LIB");
    char *lib = NULL;
    if (env && *env) {
        if (access(env, R_OK) != 0 || !(lib = realpath(env, NULL)))
            ml_die("MEMLENS_LIB=%s: %s", env, strerror(errno));
    } else {
        char exe[PATH_MAX];
        ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
        if (n > 0) {
            exe[n] = '\0';
            char *slash = strrchr(exe, '/');
            if (slash)
                *slash = '\0';
            if (!try_lib(exe, "../shim", &lib)) {
#ifdef MEMLENS_LIBDIR_REL
                try_lib(exe, MEMLENS_LIBDIR_REL, &lib);
#endif
            }
        }
#ifdef MEMLENS_LIBDIR
        if (!lib)
            try_lib(MEMLENS_LIBDIR, ".", &lib);
#endif
        if (!lib)
            ml_die("cannot find " LIB_NAME " (looked next to this executable in ../shim and in "
                   "the installed library directory); set MEMLENS_LIB to its path");
    }
    if (strpbrk(lib, " :\t\n"))
        ml_die("%s: the path of " LIB_NAME " may not contain spaces or ':' (LD_PRELOAD "
               "separators); set MEMLENS_LIB to a copy elsewhere", lib);
    return lib;
}

static void set_env(const char *name, const char *value)
{
    if (setenv(name, value, 1) != 0) {
        fprintf(stderr, "memlens: cannot set %s: %s\n", name, strerror(errno));
        _exit(127);
    }
}

/* What the child reports on its close-on-exec pipe when it cannot start the program. */
enum { CHILD_EXEC = 0, CHILD_OUTPUT_LOG = 1 };
typedef struct child_error {
    int stage, err;
} child_error;

static void report_child_error(int errfd, int stage, int err)
{
    child_error e = {stage, err};
    if (write(errfd, &e, sizeof e) != (ssize_t)sizeof e)
        fprintf(stderr, "memlens: cannot start the program: %s\n", strerror(err));
}

/* <outdir>/output.<pid>.log: the --live view's program output (the child's pid, so that a
 * reused run directory never clashes). malloc'd. */
static char *output_log_path(const char *outdir, long pid)
{
    char *p = NULL;
    if (asprintf(&p, "%s/output.%ld.log", outdir, pid) < 0)
        ml_die("out of memory");
    return p;
}

/* In the child: stdout and stderr to the output log (created 0600, never through a symlink). */
static void redirect_output(const char *outdir, int errfd)
{
    char *path = output_log_path(outdir, (long)getpid());
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0 || dup2(fd, STDOUT_FILENO) < 0 || dup2(fd, STDERR_FILENO) < 0) {
        report_child_error(errfd, CHILD_OUTPUT_LOG, errno);
        _exit(126);
    }
    close(fd);
    free(path);
}

/* In the child: the alert pipe's write end, kept open across exec, named by MEMLENS_ALERT_FD. */
static void pass_alert_fd(int fd)
{
    if (fd < 3) { /* the library wants a descriptor >= 3 */
        int moved = fcntl(fd, F_DUPFD, 3);
        if (moved < 0)
            return;
        fd = moved;
    }
    struct stat st;
    if (fcntl(fd, F_SETFD, 0) != 0 || fstat(fd, &st) != 0)
        return;
    char num[16], id[48];
    snprintf(num, sizeof num, "%d", fd);
    set_env("MEMLENS_ALERT_FD", num);
    /* the pipe itself: a process that inherits the number for another file writes no alert there */
    snprintf(id, sizeof id, "%" PRIu64 ":%" PRIu64, (uint64_t)st.st_dev, (uint64_t)st.st_ino);
    set_env("MEMLENS_ALERT_FD_ID", id);
}

/* In the child: environment, run directory, exec. Reports errno on `errfd` on failure. */
static _Noreturn void child(char **cmd, const char *lib, const char *outdir, int errfd,
                            int alert_fd, bool output_log)
{
    char *preload = NULL;
    const char *old = getenv("LD_PRELOAD");
    if (asprintf(&preload, "%s%s%s", lib, old && *old ? ":" : "", old && *old ? old : "") < 0)
        _exit(127);
    set_env("LD_PRELOAD", preload);
    set_env("MEMLENS_OUT", outdir);
    if (mkdir(outdir, 0700) != 0 && errno != EEXIST)
        fprintf(stderr, "memlens: warning: cannot create %s: %s\n", outdir, strerror(errno));
    pass_alert_fd(alert_fd);
    if (output_log)
        redirect_output(outdir, errfd);
    execvp(cmd[0], cmd);
    int e = errno;
    report_child_error(errfd, CHILD_EXEC, e);
    _exit(e == ENOENT ? 127 : 126);
}

static void print_summary(const ml_run *run, ml_symbolizer *sym)
{
    char a[ML_SIZE_BUF], b[ML_SIZE_BUF], c[32], d[ML_SIZE_BUF];
    fprintf(stderr, "memlens: run directory %s (%zu stream%s)\n", run->dir, run->nstreams,
            run->nstreams == 1 ? "" : "s");
    for (size_t i = 0; i < run->nstreams; i++) {
        const ml_stream *s = run->streams[i];
        /* live at exit: the `live` records when the stream ended normally, else the counters */
        int64_t heap = 0, blocks = 0, mmap = 0, max_peak = 0;
        const ml_site *top[5] = {0};
        for (const ml_site *site = s->sites; site; site = site->hh.next) {
            int64_t live = s->has_end ? site->exit_live_bytes : site->live_bytes;
            int64_t nb = s->has_end ? site->exit_live_blocks : site->live_blocks;
            if (site->is_mmap)
                mmap += live;
            else {
                heap += live;
                blocks += nb;
                if (site->peak_live_bytes > max_peak)
                    max_peak = site->peak_live_bytes;
            }
            if (live <= 0)
                continue;
            for (size_t k = 0; k < 5; k++) {
                int64_t other = !top[k] ? -1 : s->has_end ? top[k]->exit_live_bytes : top[k]->live_bytes;
                if (live > other) {
                    memmove(&top[k + 1], &top[k], (4 - k) * sizeof *top);
                    top[k] = site;
                    break;
                }
            }
        }
        int64_t peak = s->has_snapshot ? s->heap_peak : max_peak;
        const char *est = ml_estimate_mark(s);
        fprintf(stderr, "memlens: pid %" PRId64 " %s [%s]: peak heap %s%s%s, live at exit %s%s in "
                        "%s%s blocks, mmap %s%s\n",
                s->pid, s->exe ? s->exe : "?", s->name, est, ml_fmt_size(peak, a, sizeof a),
                s->has_snapshot ? "" : " (at least)", est, ml_fmt_size(heap, b, sizeof b), est,
                ml_fmt_count(blocks, c, sizeof c), ml_fmt_size(mmap, d, sizeof d),
                s->has_end ? "" : " (stream cut: no end record)");
        if (s->sampled) {
            char rate[ML_SIZE_BUF];
            fprintf(stderr, "memlens:   sampled mode (mean %s between samples): heap sizes and "
                            "counts are estimates (~); no leak verdict\n",
                    ml_fmt_rate(s->sample_rate, rate, sizeof rate));
        }
        for (size_t k = 0; k < 5 && top[k]; k++) {
            const ml_site *site = top[k];
            char frame[1024] = "(no stack)";
            size_t f = ml_site_user_frame(sym, s, site);
            if (f < site->nframes)
                ml_frame_text(ml_sym_frame(sym, s, &site->frames[f]), &site->frames[f], frame,
                              sizeof frame);
            int64_t nb = s->has_end ? site->exit_live_blocks : site->live_blocks;
            const char *mark = site->is_mmap ? "" : est;
            char size[ML_SIZE_BUF + 1], count[33];
            snprintf(size, sizeof size, "%s%s", mark,
                     ml_fmt_size(s->has_end ? site->exit_live_bytes : site->live_bytes, a, sizeof a));
            snprintf(count, sizeof count, "%s%s", mark, ml_fmt_count(nb, c, sizeof c));
            fprintf(stderr, "memlens:   %10s in %6s %-8s  %-13s %s\n", size, count,
                    site->is_mmap ? (nb == 1 ? "mapping" : "mappings") : (nb == 1 ? "block" : "blocks"),
                    site->kind, frame);
        }
    }
    fprintf(stderr, "memlens: details: memlens report %s; memlens leaks %s\n", run->dir, run->dir);
}

/* Writes symbols.json and the summary; with `check`, gates the run and returns the check's
 * status (0, 1, 2), else 0. */
static int after_run(const char *outdir, const ml_check_opts *check)
{
    struct stat st;
    if (stat(outdir, &st) != 0) {
        fprintf(stderr, "memlens: no run directory %s: nothing was traced (statically linked "
                        "or setuid program?)\n", outdir);
        return ML_EXIT_USAGE;
    }
    ml_run run;
    char err[1024];
    if (!ml_run_load(outdir, &run, err, sizeof err)) {
        fprintf(stderr, "memlens: %s\n", err);
        return ML_EXIT_USAGE;
    }
    ml_symbolizer *sym = ml_sym_new();
    char *path = NULL;
    if (asprintf(&path, "%s/symbols.json", outdir) < 0)
        ml_die("out of memory");
    if (!ml_sym_write(sym, &run, path, err, sizeof err))
        fprintf(stderr, "memlens: warning: symbols not saved: %s\n", err);
    free(path);
    print_summary(&run, sym);
    int status = ML_EXIT_OK;
    if (check) {
        fflush(stderr);
        status = ml_check_main(check, &run, sym, stderr);
    }
    ml_sym_free(sym);
    ml_run_free(&run);
    return status;
}

int ml_cmd_run(int argc, char **argv)
{
    static const struct option run_opts[] = {
        {"out", required_argument, NULL, 'o'},      {"depth", required_argument, NULL, 'd'},
        {"interval", required_argument, NULL, 'i'}, {"op-min", required_argument, NULL, 'm'},
        {"no-follow-exec", no_argument, NULL, 'x'}, {"help", no_argument, NULL, 'h'},
        {"sample", required_argument, NULL, 's'},
        {"check", no_argument, NULL, 'c'},
        {"live", no_argument, NULL, 'L'},
        {"alert-exec", required_argument, NULL, 'E'},
        {"alert-webhook", required_argument, NULL, 'W'},
        {"check-output", required_argument, NULL, ML_CHECK_OPT_OUTPUT},
        {NULL, 0, NULL, 0},
    };
    struct option opts[48];
    size_t nopts = 0;
    for (const struct option *o = run_opts; o->name; o++)
        opts[nopts++] = *o;
    for (const struct option *o = ml_check_long_options; o->name; o++)
        opts[nopts++] = *o;
    opts[nopts] = (struct option){NULL, 0, NULL, 0};
    ml_check_opts check;
    ml_check_opts_init(&check);
    bool do_check = false;
    const char *out = NULL;
    char depth[32] = "", interval[32] = "", op_min[32] = "", sample[32] = "";
    bool no_follow = false, live = false;
    const char *alert_exec = NULL, *alert_webhook = NULL;
    uint64_t v, interval_ms = 0;
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
        switch (c) {
        case 'o':
            if (!*optarg)
                ml_usage_error("run", "--out: empty directory name");
            out = optarg;
            break;
        case 'd':
            if (ml_parse_uint(optarg, 1, 1024, &v))
                ml_usage_error("run", "--depth: expected a number from 1 to 1024, not '%s'", optarg);
            snprintf(depth, sizeof depth, "%" PRIu64, v);
            break;
        case 'i':
            if (ml_parse_interval_ms(optarg, &v))
                ml_usage_error("run", "--interval: expected milliseconds (500, 500ms) or seconds "
                                      "(2s), not '%s'", optarg);
            snprintf(interval, sizeof interval, "%" PRIu64 "ms", v);
            interval_ms = v;
            break;
        case 'm':
            if (ml_parse_size(optarg, &v))
                ml_usage_error("run", "--op-min: expected a size (1048576, 64K, 1MiB), not '%s'",
                               optarg);
            snprintf(op_min, sizeof op_min, "%" PRIu64, v);
            break;
        case 's':
            if (ml_parse_size(optarg, &v) || v > ML_SAMPLE_MAX)
                ml_usage_error("run", "--sample: expected a mean sampling interval in bytes "
                                      "(512KiB, 65536, 1M; at most 1024G; 0 = every allocation), "
                                      "not '%s'", optarg);
            snprintf(sample, sizeof sample, "%" PRIu64, v);
            break;
        case 'x': no_follow = true; break;
        case 'L': live = true; break;
        case 'E':
            if (!*optarg)
                ml_usage_error("run", "--alert-exec: empty command");
            alert_exec = optarg;
            break;
        case 'W':
            if (strncmp(optarg, "http://", 7) != 0 && strncmp(optarg, "https://", 8) != 0)
                ml_usage_error("run", "--alert-webhook: expected an http:// or https:// URL, "
                                      "not '%s'", optarg);
            alert_webhook = optarg;
            break;
        case 'c': do_check = true; break;
        case 'h': usage(stdout); return ML_EXIT_OK;
        default:
            if (!ml_check_option(&check, c, optarg, "run"))
                ml_bad_option("run", argv[optind - 1]);
            do_check = true;
        }
    }
    if (do_check && unsetenv("MEMLENS_CHECK") != 0)
        ml_die("cannot unset MEMLENS_CHECK");
    if (optind >= argc)
        ml_usage_error("run", "no command given (memlens run [OPTIONS] -- COMMAND [ARGS...])");
    char **cmd = argv + optind;
    char *lib = find_lib();
    if (!out) {
        const char *env = getenv("MEMLENS_OUT");
        out = env && *env ? env : NULL;
    }
    char *outdir = out ? absolute_path(out) : NULL;
    bool default_out = !outdir;

    /* option variables are set before fork so that a failure is reported once, here */
    if (*depth && setenv("MEMLENS_DEPTH", depth, 1) != 0)
        ml_die("cannot set MEMLENS_DEPTH");
    if (*interval && setenv("MEMLENS_INTERVAL", interval, 1) != 0)
        ml_die("cannot set MEMLENS_INTERVAL");
    if (*op_min && setenv("MEMLENS_OP_MIN", op_min, 1) != 0)
        ml_die("cannot set MEMLENS_OP_MIN");
    if (*sample && setenv("MEMLENS_SAMPLE", sample, 1) != 0)
        ml_die("cannot set MEMLENS_SAMPLE");
    if (setenv("MEMLENS_FOLLOW_EXEC", no_follow ? "0" : "1", no_follow) != 0)
        ml_die("cannot set MEMLENS_FOLLOW_EXEC");

    if (live && !interval_ms) {
        const char *env = getenv("MEMLENS_INTERVAL");
        if (!env || ml_parse_interval_ms(env, &interval_ms))
            interval_ms = 1000;
    }
    bool tty_view = live && isatty(STDOUT_FILENO);

    int pipefd[2], alertfd[2];
    if (pipe2(pipefd, O_CLOEXEC) != 0 || pipe2(alertfd, O_CLOEXEC) != 0)
        ml_die("pipe: %s", strerror(errno));
    ml_watch_prepare(tty_view);
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0)
        ml_die("fork: %s", strerror(errno));
    if (pid == 0) {
        close(pipefd[0]);
        if (!outdir) {
            const char *slash = strrchr(cmd[0], '/');
            char *rel = NULL;
            if (asprintf(&rel, "memlens-%s-%ld", slash ? slash + 1 : cmd[0], (long)getpid()) < 0)
                _exit(127);
            outdir = absolute_path(rel);
        }
        close(alertfd[0]);
        child(cmd, lib, outdir, pipefd[1], alertfd[1], tty_view);
    }
    close(pipefd[1]);
    close(alertfd[1]);
    if (!outdir) {
        const char *slash = strrchr(cmd[0], '/');
        char *rel = NULL;
        if (asprintf(&rel, "memlens-%s-%ld", slash ? slash + 1 : cmd[0], (long)pid) < 0)
            ml_die("out of memory");
        outdir = absolute_path(rel);
        free(rel);
    }
    struct sigaction ign = {.sa_handler = SIG_IGN}, old_int, old_quit;
    sigemptyset(&ign.sa_mask);
    sigaction(SIGINT, &ign, &old_int);
    sigaction(SIGQUIT, &ign, &old_quit);

    child_error failure = {0, 0};
    ssize_t n;
    do
        n = read(pipefd[0], &failure, sizeof failure);
    while (n < 0 && errno == EINTR);
    close(pipefd[0]);

    char *output_log = tty_view ? output_log_path(outdir, (long)pid) : NULL;
    int status = 0;
    if (n == (ssize_t)sizeof failure) {
        close(alertfd[0]);
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
            ;
        sigaction(SIGINT, &old_int, NULL);
        sigaction(SIGQUIT, &old_quit, NULL);
        if (failure.stage == CHILD_OUTPUT_LOG) {
            fprintf(stderr, "memlens: cannot create %s: %s\n", output_log, strerror(failure.err));
            return ML_EXIT_USAGE;
        }
        fprintf(stderr, "memlens: cannot run %s: %s\n", cmd[0], strerror(failure.err));
        if (default_out)
            rmdir(outdir); /* created by the child; removed only if still empty */
        return failure.err == ENOENT ? 127 : 126;
    }
    const char *slash = strrchr(cmd[0], '/');
    ml_watch_opts wo = {.child = pid, .alert_fd = alertfd[0], .rundir = outdir,
                        .command = slash ? slash + 1 : cmd[0], .exec_cmd = alert_exec,
                        .webhook_url = alert_webhook, .live = live, .tty = tty_view,
                        .interval_ms = interval_ms, .output_log = output_log};
    status = ml_watch_run(&wo);
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGQUIT, &old_quit, NULL);
    if (output_log) {
        fprintf(stderr, "memlens: the program's output (stdout and stderr) is in %s\n", output_log);
        free(output_log);
    }
    int check_status = after_run(outdir, do_check ? &check : NULL);
    free(outdir);
    free(lib);
    int program = WIFEXITED(status) ? WEXITSTATUS(status)
                  : WIFSIGNALED(status) ? 128 + WTERMSIG(status) : ML_EXIT_USAGE;
    /* LSan style: findings turn a success into 1 (2 when the check could not decide); a
     * failing program keeps its own status */
    if (do_check && program == 0)
        return check_status;
    return program;
}
