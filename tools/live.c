/* live.c — the `memlens run --live` view (see live.h).
 *
 * Data model: the view owns only what the streams do not hold — the messages it showed (at most
 * MESSAGES_KEPT, replayed on stderr at the end), the snapshot count of the last plain line, and
 * whether the alternate screen is up. Each tty frame is composed as a list of lines (at most the
 * terminal's rows, each cut to its columns) and written with one write(2).
 */
#define _GNU_SOURCE
#include "live.h"
#include "cli.h"
#include "fmt.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#define MESSAGES_KEPT 100
#define ALERTS_SHOWN 4
#define ROWS_MAX 200
#define COLS_MAX 400
#define LINE_MAX_BYTES (COLS_MAX * 4)

#define ESC_ALT_ON "\033[?1049h\033[?25l"
#define ESC_ALT_OFF "\033[?25h\033[?1049l"

typedef struct message {
    char *text;
    bool alert;
} message;

struct ml_live {
    ml_live_opts o;
    bool screen_on;
    message kept[MESSAGES_KEPT];
    size_t nkept, lost, alerts;
    const ml_followed *plain_main; /* plain mode: the stream and snapshot count last printed */
    size_t plain_snapshots;
    struct timespec started;
    /* the frame being composed */
    char (*lines)[LINE_MAX_BYTES];
    int nlines, rows, cols;
};

ml_live *ml_live_new(const ml_live_opts *o)
{
    ml_live *lv = calloc(1, sizeof *lv);
    if (!lv || !(lv->lines = calloc(ROWS_MAX, sizeof *lv->lines)))
        ml_die("out of memory");
    lv->o = *o;
    clock_gettime(CLOCK_MONOTONIC, &lv->started);
    if (o->tty) {
        ml_color_init(false);
        fputs(ESC_ALT_ON, stdout);
        fflush(stdout);
        lv->screen_on = true;
    }
    return lv;
}

void ml_live_message(ml_live *lv, const char *text, bool alert)
{
    if (lv->nkept == MESSAGES_KEPT) { /* keep the newest: drop the oldest */
        free(lv->kept[0].text);
        memmove(lv->kept, lv->kept + 1, (MESSAGES_KEPT - 1) * sizeof *lv->kept);
        lv->nkept--;
        lv->lost++;
    }
    char *copy = strdup(text);
    if (!copy)
        return;
    lv->kept[lv->nkept++] = (message){copy, alert};
    lv->alerts += alert;
    if (lv->o.tty)
        ml_live_frame(lv);
}

/* ---- picking the data ---------------------------------------------------------------------- */

/* The traced program's latest image, else the first stream with a header. */
static const ml_followed *main_stream(const ml_live *lv)
{
    const ml_followed *f = ml_follow_run_pid(lv->o.run, lv->o.main_pid);
    for (size_t i = 0; !f && i < lv->o.run->n; i++)
        if (lv->o.run->streams[i]->s)
            f = lv->o.run->streams[i];
    return f;
}

static int by_live_desc(const void *a, const void *b)
{
    const ml_site *x = *(const ml_site *const *)a, *y = *(const ml_site *const *)b;
    return (x->live_bytes < y->live_bytes) - (x->live_bytes > y->live_bytes);
}

/* The `max` sites of s holding most live bytes (malloc'd array), count in *n. */
static const ml_site **top_sites(const ml_stream *s, size_t max, size_t *n)
{
    const ml_site **all = malloc((s->nsites ? s->nsites : 1) * sizeof *all);
    size_t k = 0;
    if (!all)
        ml_die("out of memory");
    for (const ml_site *site = s->sites; site; site = site->hh.next)
        if (site->live_bytes > 0)
            all[k++] = site;
    qsort(all, k, sizeof *all, by_live_desc);
    *n = k < max ? k : max;
    return all;
}

/* "820.0 MiB / 1.0 GiB (80.0%)", "72.7 MiB (no limit)" or "-"; `plain`: "820.0 MiB/1.0 GiB
 * (80.0%)", "72.7 MiB" or "-". */
static const char *cgroup_text(const ml_snapshot *x, bool plain, char *buf, size_t len)
{
    char a[ML_SIZE_BUF], b[ML_SIZE_BUF];
    if (x->cgroup_current < 0)
        snprintf(buf, len, "-");
    else if (x->cgroup_max <= 0)
        snprintf(buf, len, "%s%s", ml_fmt_size(x->cgroup_current, a, sizeof a),
                 plain ? "" : " (no limit)");
    else
        snprintf(buf, len, plain ? "%s/%s (%.1f%%)" : "%s / %s (%.1f%%)",
                 ml_fmt_size(x->cgroup_current, a, sizeof a),
                 ml_fmt_size(x->cgroup_max, b, sizeof b),
                 100.0 * (double)x->cgroup_current / (double)x->cgroup_max);
    return buf;
}

static double seconds_since(const ml_stream *s)
{
    return s->has_snapshot ? (double)(s->last.t - s->t) / 1e9 : 0.0;
}

/* ---- plain lines (stdout is not a terminal) ------------------------------------------------ */

static void plain_line(ml_live *lv)
{
    const ml_followed *f = main_stream(lv);
    if (!f || !f->s->has_snapshot || (f == lv->plain_main && f->snapshots == lv->plain_snapshots))
        return;
    lv->plain_main = f;
    lv->plain_snapshots = f->snapshots;
    const ml_snapshot *x = &f->s->last;
    char rss[ML_SIZE_BUF], heap[ML_SIZE_BUF], mmap[ML_SIZE_BUF], cg[96], trend[96];
    cgroup_text(x, true, cg, sizeof cg);
    const ml_trend_now *t = &f->trend[ML_FOLLOW_HEAP];
    if (t->has)
        snprintf(trend, sizeof trend, "heap:%s %+.1f MB/min conf %" PRId64, t->pattern,
                 t->mb_per_min, t->confidence);
    else
        snprintf(trend, sizeof trend, "heap:-");
    printf("t=%.1fs pid=%" PRId64 " rss=%s heap=%s mmap=%s cgroup=%s %s\n", seconds_since(f->s),
           f->s->pid, ml_fmt_size(x->rss, rss, sizeof rss), ml_fmt_size(x->heap_live, heap, sizeof heap),
           ml_fmt_size(x->mmap_live, mmap, sizeof mmap), cg, trend);
    fflush(stdout);
}

/* ---- the tty frame ------------------------------------------------------------------------- */

static void add(ml_live *lv, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void add(ml_live *lv, const char *fmt, ...)
{
    if (lv->nlines >= lv->rows)
        return;
    char *line = lv->lines[lv->nlines++];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, LINE_MAX_BYTES, fmt, ap);
    va_end(ap);
    /* cut to the width, counting UTF-8 characters (not continuation bytes) and not the colour
     * escapes (CSI: ESC [ parameters, then a final byte @..~); a cut line ends its colours */
    int chars = 0;
    bool escaped = false;
    for (char *p = line; *p; p++) {
        if (p[0] == '\033' && p[1] == '[') {
            escaped = true;
            for (p += 2; *p && !(*p >= '@' && *p <= '~'); p++) {}
            if (!*p)
                break;
            continue;
        }
        if (((unsigned char)*p & 0xC0) != 0x80 && ++chars > lv->cols) {
            *p = '\0';
            if (escaped && (size_t)(p - line) + strlen(ml_reset) < LINE_MAX_BYTES)
                strcpy(p, ml_reset);
            break;
        }
    }
}

static void add_metrics(ml_live *lv, const ml_followed *f)
{
    const ml_snapshot *x = &f->s->last;
    char a[ML_SIZE_BUF], b[ML_SIZE_BUF], c[ML_SIZE_BUF], cg[96];
    char heap[ML_SIZE_BUF + 2];
    snprintf(heap, sizeof heap, "%s%s", ml_estimate_mark(f->s),
             ml_fmt_size(x->heap_live, a, sizeof a));
    add(lv, "  RSS     %12s   peak %s, threads %" PRId64, ml_fmt_size(x->rss, a, sizeof a),
        ml_fmt_size(x->rss_peak, b, sizeof b), x->threads);
    add(lv, "  heap    %12s   peak %s, %s blocks", heap, ml_fmt_size(f->s->heap_peak, b, sizeof b),
        ml_fmt_count(x->heap_blocks, c, sizeof c));
    add(lv, "  mmap    %12s   anon %s, file %s", ml_fmt_size(x->mmap_live, a, sizeof a),
        ml_fmt_size(x->mmap_anon_live, b, sizeof b), ml_fmt_size(x->mmap_file_live, c, sizeof c));
    add(lv, "  cgroup  %s", cgroup_text(x, false, cg, sizeof cg));
    add(lv, "%s", "");
    add(lv, "%sgrowth%s  %-12s %12s %11s", ml_bold, ml_reset, "pattern", "MB/min", "confidence");
    static const char *const names[ML_FOLLOW_NMETRICS] = {"rss", "heap", "mmap"};
    for (int m = 0; m < ML_FOLLOW_NMETRICS; m++) {
        const ml_trend_now *t = &f->trend[m];
        if (t->has)
            add(lv, "  %-6s  %-12s %+12.2f %11" PRId64, names[m], t->pattern, t->mb_per_min,
                t->confidence);
        else
            add(lv, "  %-6s  %-12s", names[m], "(5 snapshots needed)");
    }
}

static void add_messages(ml_live *lv)
{
    add(lv, "%s", "");
    add(lv, "%salerts%s (%zu)", ml_bold, ml_reset, lv->alerts);
    size_t shown = 0;
    for (size_t i = lv->nkept; i-- > 0 && shown < ALERTS_SHOWN;) {
        if (!lv->kept[i].alert)
            continue;
        add(lv, "  %s", lv->kept[i].text + (strncmp(lv->kept[i].text, "ALERT ", 6) ? 0 : 6));
        shown++;
    }
    if (!lv->alerts)
        add(lv, "  none");
    for (size_t i = lv->nkept; i-- > 0;) {
        if (!lv->kept[i].alert) {
            add(lv, "  %snote: %s%s", ml_dim, lv->kept[i].text, ml_reset);
            break;
        }
    }
}

static void add_sites(ml_live *lv, const ml_followed *f, int keep_rows)
{
    int room = lv->rows - lv->nlines - 2 - keep_rows;
    if (room <= 0)
        return;
    add(lv, "%s", "");
    add(lv, "%stop sites%s  %10s %10s %10s  %-8s where", ml_bold, ml_reset, "live", "peak", "calls",
        "kind");
    size_t n;
    const ml_site **top = top_sites(f->s, (size_t)room, &n);
    for (size_t i = 0; i < n; i++) {
        char a[ML_SIZE_BUF], b[ML_SIZE_BUF], c[ML_SIZE_BUF], where[1024];
        add(lv, "           %10s %10s %10s  %-8s %s", ml_fmt_size(top[i]->live_bytes, a, sizeof a),
            ml_fmt_size(top[i]->peak_live_bytes, b, sizeof b),
            ml_fmt_count(top[i]->allocations, c, sizeof c), top[i]->kind,
            ml_follow_site_where(lv->o.sym, f->s, top[i]->id, where, sizeof where));
    }
    if (!n)
        add(lv, "  (no live allocations)");
    free(top);
}

/* Other processes of the run (forked children, replaced images are skipped), one line. */
static void add_others(ml_live *lv, const ml_followed *main)
{
    char buf[LINE_MAX_BYTES] = "";
    size_t used = 0, count = 0;
    for (size_t i = 0; i < lv->o.run->n; i++) {
        const ml_followed *f = lv->o.run->streams[i];
        if (f == main || !f->s || f->s->has_end || ml_follow_run_pid(lv->o.run, f->s->pid) != f)
            continue;
        char heap[ML_SIZE_BUF];
        count++;
        if (used < sizeof buf - 64)
            used += (size_t)snprintf(buf + used, sizeof buf - used, "  pid %" PRId64 " heap %s",
                                     f->s->pid, ml_fmt_size(f->s->last.heap_live, heap, sizeof heap));
    }
    if (count)
        add(lv, "other processes (%zu):%s", count, buf);
}

static void terminal_size(ml_live *lv)
{
    struct winsize ws;
    lv->rows = 24;
    lv->cols = 80;
    if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_row > 0 && ws.ws_col > 0) {
        lv->rows = ws.ws_row;
        lv->cols = ws.ws_col;
    }
    if (lv->rows > ROWS_MAX)
        lv->rows = ROWS_MAX;
    if (lv->cols > COLS_MAX)
        lv->cols = COLS_MAX;
}

static void write_all(const char *p, size_t n)
{
    while (n) {
        ssize_t w = write(STDOUT_FILENO, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return;
        p += w;
        n -= (size_t)w;
    }
}

static void draw(ml_live *lv)
{
    terminal_size(lv);
    lv->nlines = 0;
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    double up = (double)(now.tv_sec - lv->started.tv_sec) +
                (double)(now.tv_nsec - lv->started.tv_nsec) / 1e9;
    const ml_followed *f = main_stream(lv);
    add(lv, "%smemlens live%s  %s  pid %ld  %.1fs  (every %" PRIu64 " ms)", ml_bold, ml_reset,
        lv->o.command, (long)lv->o.main_pid, up, lv->o.interval_ms);
    if (lv->o.output_log)
        add(lv, "%sprogram output (stdout, stderr): %s%s", ml_dim, lv->o.output_log, ml_reset);
    if (!f || !f->s->has_snapshot) {
        add(lv, "%s", "");
        add(lv, "  waiting for the first snapshot of %s in %s ...", lv->o.command, lv->o.run->dir);
        add_messages(lv);
    } else {
        if (f->s->pid != lv->o.main_pid || f->s->seq)
            add(lv, "  process %" PRId64 " %s (image %" PRId64 ")", f->s->pid,
                f->s->exe ? f->s->exe : "?", f->s->seq);
        add(lv, "%s", "");
        add_metrics(lv, f);
        add_messages(lv);
        add_sites(lv, f, 1);
        add_others(lv, f);
    }
    size_t bad = 0;
    for (size_t i = 0; i < lv->o.run->n; i++)
        bad += lv->o.run->streams[i]->bad_lines;
    if (bad && lv->nlines < lv->rows)
        add(lv, "%s(%zu malformed stream lines skipped)%s", ml_dim, bad, ml_reset);
    /* home, every line cleared to its end, the rest of the screen cleared; no newline after
     * the last line so that a full screen never scrolls */
    size_t cap = (size_t)lv->nlines * (LINE_MAX_BYTES + 8) + 16, len = 0;
    char *frame = malloc(cap);
    if (!frame)
        return;
    len += (size_t)snprintf(frame, cap, "\033[H");
    for (int i = 0; i < lv->nlines; i++)
        len += (size_t)snprintf(frame + len, cap - len, "%s%s\033[K", i ? "\r\n" : "",
                                lv->lines[i]);
    len += (size_t)snprintf(frame + len, cap - len, "\033[J");
    write_all(frame, len);
    free(frame);
}

void ml_live_frame(ml_live *lv)
{
    ml_follow_run_poll(lv->o.run, 0);
    if (lv->o.tty)
        draw(lv);
    else
        plain_line(lv);
}

void ml_live_suspend(ml_live *lv)
{
    if (lv->screen_on) {
        fputs(ESC_ALT_OFF, stdout);
        fflush(stdout);
        lv->screen_on = false;
    }
}

void ml_live_resume(ml_live *lv)
{
    if (lv->o.tty && !lv->screen_on) {
        fputs(ESC_ALT_ON, stdout);
        fflush(stdout);
        lv->screen_on = true;
        draw(lv);
    }
}

void ml_live_end(ml_live *lv)
{
    if (lv->screen_on) {
        fputs(ESC_ALT_OFF, stdout);
        fflush(stdout);
        if (lv->lost)
            fprintf(stderr, "memlens: (%zu earlier messages not repeated)\n", lv->lost);
        for (size_t i = 0; i < lv->nkept; i++)
            fprintf(stderr, "memlens: %s\n", lv->kept[i].text);
    }
    for (size_t i = 0; i < lv->nkept; i++)
        free(lv->kept[i].text);
    free(lv->lines);
    free(lv);
}
