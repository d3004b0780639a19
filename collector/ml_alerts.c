/* ml_alerts.c — thresholds and alerts (rules and their semantics: ml_alerts.h).
 *
 * State, static and protected by the collector's flush lock: per rule a token bucket (`tokens`
 * refilled at limit/3600 per second up to `limit`) with its counts, per threshold level and growth
 * metric an `armed` flag, and a small table of the sites that already raised a site alert. An alert
 * line is built once in a fixed buffer and written both to the stream and to MEMLENS_ALERT_FD (only
 * while that descriptor is still the file it was when the stream opened). */
#define _GNU_SOURCE
#include "ml_alerts.h"
#include "ml.h"
#include "ml_out.h"
#include "ml_prim.h"
#include "ml_trends.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* The growth rule also wants this much fitted growth over the window: one small step (a library
 * warming up, the tracker's own tables) can look like a steep line over a short window. */
#define GROWTH_MIN_BYTES (1024.0 * 1024.0)

enum rule { RULE_THRESHOLD, RULE_GROWTH, RULE_SITE, RULE_COUNT };
static const char *const rule_names[RULE_COUNT] = { "threshold", "growth", "site" };
static const char *const level_names[3] = { "warning", "critical", "emergency" };

static struct bucket {
    double tokens;
    uint64_t refilled_ns;      /* monotonic time of the last refill; 0 = never used (full) */
    uint64_t sent, suppressed, suppressed_pending;
} buckets[RULE_COUNT];
static bool level_active[3];
static bool growth_active[2];  /* heap, rss */
#define SITE_ALERTED_MAX 16
static uint32_t site_alerted[SITE_ALERTED_MAX];   /* 0: free */
static bool alert_fd_broken;
/* What MEMLENS_ALERT_FD was when the stream opened (checked against MEMLENS_ALERT_FD_ID when given:
 * a process started by the program may have inherited the number for another file): the program
 * may close that descriptor and open something else under its number, which must never receive
 * alert lines. */
static dev_t alert_dev;
static ino_t alert_ino;

void ml_alerts_reset(void) {
    memset(buckets, 0, sizeof buckets);
    memset(level_active, 0, sizeof level_active);
    memset(growth_active, 0, sizeof growth_active);
    memset(site_alerted, 0, sizeof site_alerted);
    if (ml_config.alert_fd < 0 || alert_fd_broken) return;
    if (ml_config.alert_fd_id) {   /* the file memlens run gave; write_alert_fd checks the descriptor is it */
        alert_dev = (dev_t)ml_config.alert_fd_dev;
        alert_ino = (ino_t)ml_config.alert_fd_ino;
        return;
    }
    struct stat st;
    int saved_errno = errno;
    if (fstat(ml_config.alert_fd, &st) == 0) {
        alert_dev = st.st_dev;
        alert_ino = st.st_ino;
    } else {
        alert_fd_broken = true;
    }
    errno = saved_errno;
}

/* True when the rule may send now (a token was taken); otherwise the alert is counted as suppressed. */
static bool take_token(struct bucket *b) {
    unsigned limit = ml_config.alert_limit;
    if (!limit) return true;
    uint64_t now = ml_monotonic_ns();
    if (!b->refilled_ns) b->tokens = limit;
    else b->tokens += (double)(now - b->refilled_ns) * 1e-9 * limit / 3600.0;
    if (b->tokens > limit) b->tokens = limit;
    b->refilled_ns = now;
    if (b->tokens < 1.0) return false;
    b->tokens -= 1.0;
    return true;
}

/* ---- the alert line ---- */

struct line { char text[1024]; size_t len; };

static void put(struct line *l, const char *s) {
    size_t n = strlen(s);
    if (l->len + n < sizeof l->text) { memcpy(l->text + l->len, s, n); l->len += n; }
}
static void put_u64(struct line *l, const char *key, uint64_t v) {
    char tmp[24];
    tmp[ml_fmt_u64(tmp, v)] = 0;
    if (key) { put(l, ",\""); put(l, key); put(l, "\":"); }
    put(l, tmp);
}
static void put_str(struct line *l, const char *key, const char *v) {
    put(l, ",\""); put(l, key); put(l, "\":\""); put(l, v); put(l, "\"");   /* fixed identifiers: no escaping */
}
static void put_double(struct line *l, const char *key, double v, unsigned decimals) {
    char tmp[48];
    tmp[ml_fmt_double(tmp, v, decimals)] = 0;
    put(l, ",\""); put(l, key); put(l, "\":"); put(l, tmp);
}

/* Writes the line to the alert descriptor with SIGPIPE blocked (the final flush runs on a host thread
 * that may not block it), discarding a SIGPIPE it raised; a broken descriptor is not tried again. */
static void write_alert_fd(const char *data, size_t len) {
    if (ml_config.alert_fd < 0 || alert_fd_broken) return;
    int saved_errno = errno;
    struct stat st;
    if (fstat(ml_config.alert_fd, &st) != 0 || st.st_dev != alert_dev || st.st_ino != alert_ino) {
        alert_fd_broken = true;   /* closed, or another file now: never write into the program's files */
        errno = saved_errno;
        return;
    }
    sigset_t pipe_set, old;
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
    ssize_t r = ml_write_all(ml_config.alert_fd, data, len);
    if (r < 0) {
        alert_fd_broken = true;
        if (r == -EPIPE && !sigismember(&old, SIGPIPE)) {
            struct timespec zero = { 0, 0 };
            sigtimedwait(&pipe_set, NULL, &zero);
        }
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    errno = saved_errno;
}

static void put_sites(struct line *l, const struct ml_alert_input *in) {
    put(l, ",\"sites\":[");
    for (unsigned i = 0; i < in->top_count; i++) {
        put(l, i ? ",[" : "[");
        put_u64(l, NULL, in->top_sites[i]);
        put(l, ",");
        put_u64(l, NULL, in->top_live[i]);
        put(l, "]");
    }
    put(l, "]");
}

/* `extra` holds the rule-specific fields already formatted (starting with a comma), or "". */
static void raise_alert(enum rule rule, const char *level, const char *metric, uint64_t value,
                        uint64_t threshold, uint64_t limit, const char *extra, const struct ml_alert_input *in) {
    struct bucket *b = &buckets[rule];
    if (!take_token(b)) { b->suppressed++; b->suppressed_pending++; return; }
    struct line l = { .len = 0 };
    put_u64(&l, "t", in->t_ns);
    put_u64(&l, "pid", (uint64_t)getpid());   /* processes forked from one program share MEMLENS_ALERT_FD */
    put_str(&l, "level", level);
    put_str(&l, "rule", rule_names[rule]);
    put_str(&l, "metric", metric);
    put_u64(&l, "value", value);
    put_u64(&l, "threshold", threshold);
    if (limit) put_u64(&l, "limit", limit);
    put(&l, extra);
    put_sites(&l, in);
    put_u64(&l, "suppressed_before", b->suppressed_pending);
    b->suppressed_pending = 0;
    b->sent++;
    l.text[l.len] = 0;
    ml_out_begin("alert");
    ml_out_raw(l.text);
    ml_out_end();
    ml_out_flush();
    char full[sizeof l.text + 32];
    size_t n = ml_strlcpy(full, "{\"type\":\"alert\"", sizeof full);
    memcpy(full + n, l.text, l.len);
    n += l.len;
    full[n++] = '}';
    full[n++] = '\n';
    write_alert_fd(full, n);
}

/* ---- the rules ---- */

static void thresholds(const struct ml_alert_input *in) {
    for (int i = 0; i < 3; i++) {
        const struct ml_level *level = &ml_config.levels[i];
        if (!level->value) continue;
        const char *metric = "rss";
        uint64_t value = in->rss, threshold = level->value, limit = 0;
        if (level->percent) {
            if (!in->cgroup_limit) continue;   /* a percent needs a cgroup limit */
            limit = in->cgroup_limit;
            threshold = (uint64_t)((double)limit * (double)level->value / 100.0);
            if (in->cgroup_known) { metric = "cgroup"; value = in->cgroup_current; }
        }
        if (!level_active[i] && value >= threshold) {
            level_active[i] = true;
            raise_alert(RULE_THRESHOLD, level_names[i], metric, value, threshold, limit, "", in);
        } else if (level_active[i] && (double)value < 0.95 * (double)threshold) {
            level_active[i] = false;
        }
    }
}

static void growth(const struct ml_alert_input *in) {
    uint64_t per_min = ml_config.growth_alert_bytes_per_min;
    if (!per_min) return;
    static const enum ml_trend_metric metrics[2] = { ML_TREND_HEAP, ML_TREND_RSS };
    static const char *const names[2] = { "heap", "rss" };
    for (int m = 0; m < 2; m++) {
        const struct ml_pattern_result *r = ml_trends_latest(metrics[m]);
        double rate_per_min = r ? r->rate_bytes_per_s * 60.0 : 0.0;
        bool holds = r && (r->pattern == ML_PATTERN_LINEAR || r->pattern == ML_PATTERN_EXPONENTIAL) &&
                     r->confidence >= 50 && rate_per_min > (double)per_min &&
                     r->rate_bytes_per_s * r->span_s >= GROWTH_MIN_BYTES;
        if (holds && !growth_active[m]) {
            struct line extra = { .len = 0 };
            put_str(&extra, "pattern", r->name);
            put_double(&extra, "rate_bps", r->rate_bytes_per_s, 1);
            put_double(&extra, "mb_per_min", r->rate_mb_per_min, 3);
            put_u64(&extra, "confidence", r->confidence);
            extra.text[extra.len] = 0;
            raise_alert(RULE_GROWTH, "warning", names[m], (uint64_t)rate_per_min, per_min, 0, extra.text, in);
        }
        growth_active[m] = holds;
    }
}

static void sites(const struct ml_alert_input *in) {
    uint64_t max = ml_config.site_max;
    if (!max) return;
    /* re-arm: alerted sites that fell below 95 % (a site no longer among the top counts as fallen) */
    for (unsigned j = 0; j < SITE_ALERTED_MAX; j++) {
        if (!site_alerted[j]) continue;
        bool still = false;
        for (unsigned i = 0; i < in->top_count; i++)
            if (in->top_sites[i] == site_alerted[j] && (double)in->top_live[i] >= 0.95 * (double)max) still = true;
        if (!still) site_alerted[j] = 0;
    }
    for (unsigned i = 0; i < in->top_count; i++) {
        if (in->top_live[i] < max) break;   /* descending */
        unsigned free_slot = SITE_ALERTED_MAX;
        bool known = false;
        for (unsigned j = 0; j < SITE_ALERTED_MAX; j++) {
            if (site_alerted[j] == in->top_sites[i]) known = true;
            else if (!site_alerted[j] && free_slot == SITE_ALERTED_MAX) free_slot = j;
        }
        if (known) continue;
        if (free_slot < SITE_ALERTED_MAX) site_alerted[free_slot] = in->top_sites[i];
        struct line extra = { .len = 0 };
        put_u64(&extra, "site", in->top_sites[i]);
        extra.text[extra.len] = 0;
        raise_alert(RULE_SITE, "warning", "site", in->top_live[i], max, 0, extra.text, in);
    }
}

void ml_alerts_evaluate(const struct ml_alert_input *input) {
    thresholds(input);
    growth(input);
    sites(input);
}

void ml_alerts_write_summary(uint64_t t_ns) {
    bool any = false;
    for (int r = 0; r < RULE_COUNT; r++) any |= buckets[r].sent || buckets[r].suppressed;
    if (!any) return;
    ml_out_begin("alert_summary");
    ml_out_u64("t", t_ns);
    ml_out_key("rules");
    ml_out_raw("{");
    for (int r = 0; r < RULE_COUNT; r++) {
        ml_out_raw(r ? ",\"" : "\"");
        ml_out_raw(rule_names[r]);
        ml_out_raw("\":{\"sent\":");
        ml_out_num(buckets[r].sent);
        ml_out_raw(",\"suppressed\":");
        ml_out_num(buckets[r].suppressed);
        ml_out_raw("}");
    }
    ml_out_raw("}");
    ml_out_end();
}
