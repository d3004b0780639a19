/* ml_config.c — MEMLENS_* environment variables: defaults, parsing, one clear error line per bad value. */
#define _GNU_SOURCE
#include "ml.h"
#include "ml_prim.h"

#include <stdlib.h>
#include <string.h>

struct ml_config ml_config __attribute__((aligned(64))) = { .depth = 32, .interval_ns = 1000000000ull, .op_min = 1 << 20, .follow_exec = true,
    .window = 20, .levels = { { 60, true }, { 75, true }, { 90, true } },
    .growth_alert_bytes_per_min = 5ull << 20, .site_max = 100ull << 20, .alert_limit = 10, .alert_fd = -1 };

/* "DEV:INO": two decimal numbers (a file's st_dev and st_ino). */
static bool parse_file_id(const char *text, uint64_t *dev, uint64_t *ino) {
    const char *colon = strchr(text, ':');
    char digits[24];
    if (!colon || (size_t)(colon - text) >= sizeof digits) return true;
    memcpy(digits, text, (size_t)(colon - text));
    digits[colon - text] = 0;
    return ml_parse_uint(digits, 0, UINT64_MAX, dev) || ml_parse_uint(colon + 1, 0, UINT64_MAX, ino);
}

/* A threshold level: "200M" (bytes of RSS), "60%" (of the cgroup limit, 1..100), "0" (off). */
static bool parse_level(const char *text, struct ml_level *out) {
    size_t len = strlen(text);
    uint64_t v;
    if (len > 1 && text[len - 1] == '%') {
        char digits[24];
        if (len - 1 >= sizeof digits) return true;
        memcpy(digits, text, len - 1);
        digits[len - 1] = 0;
        if (ml_parse_uint(digits, 1, 100, &v)) return true;
        *out = (struct ml_level){ v, true };
        return false;
    }
    if (ml_parse_size(text, &v)) return true;
    *out = (struct ml_level){ v, false };
    return false;
}

static bool bad(const char *name, const char *value, const char *expected) {
    char msg[768];
    size_t n = ml_strlcpy(msg, "invalid ", sizeof msg);
    n += ml_strlcpy(msg + n, name, sizeof msg - n);
    n += ml_strlcpy(msg + n, "='", sizeof msg - n);
    n += ml_strlcpy(msg + n, value, sizeof msg - n);
    n += ml_strlcpy(msg + n, "' (expected ", sizeof msg - n);
    n += ml_strlcpy(msg + n, expected, sizeof msg - n);
    ml_strlcpy(msg + n, "); the program runs untracked", sizeof msg - n);
    ml_stderr(msg, NULL, NULL);
    return true;
}

bool ml_config_load(struct ml_config *config) {
    const char *v;
    uint64_t n;
    if ((v = getenv("MEMLENS_DEPTH")) && *v) {
        if (ml_parse_uint(v, 1, ML_MAX_DEPTH, &n)) return bad("MEMLENS_DEPTH", v, "a frame count 1..128");
        config->depth = (unsigned)n;
    }
    if ((v = getenv("MEMLENS_INTERVAL")) && *v) {
        if (ml_parse_duration_ns(v, &n) || n < 10000000ull || n > 3600000000000ull)
            return bad("MEMLENS_INTERVAL", v, "a duration from 10ms to 1h, e.g. 500ms or 2s");
        config->interval_ns = n;
    }
    if ((v = getenv("MEMLENS_OP_MIN")) && *v) {
        if (ml_parse_size(v, &n) || n == 0) return bad("MEMLENS_OP_MIN", v, "a size such as 1MiB or 65536");
        config->op_min = n;
    }
    if ((v = getenv("MEMLENS_FOLLOW_EXEC")) && *v) {
        if (ml_parse_uint(v, 0, 1, &n)) return bad("MEMLENS_FOLLOW_EXEC", v, "0 or 1");
        config->follow_exec = n == 1;
    }
    if ((v = getenv("MEMLENS_SAMPLE")) && *v) {
        if (ml_parse_size(v, &n) || n > (1ull << 40)) return bad("MEMLENS_SAMPLE", v, "a mean sampling interval in bytes, e.g. 512KiB; 0 = every allocation");
        config->sample_rate = n;
    }
    if ((v = getenv("MEMLENS_CHECK")) && *v) {
        if (ml_parse_uint(v, 0, 1, &n)) return bad("MEMLENS_CHECK", v, "0 or 1");
        config->check = n == 1;
    }
    if ((v = getenv("MEMLENS_MAX_LEAKED")) && *v) {
        if (ml_parse_size(v, &n)) return bad("MEMLENS_MAX_LEAKED", v, "a size such as 0, 4096 or 1MiB");
        config->max_leaked = n;
    }
    if ((v = getenv("MEMLENS_WINDOW")) && *v) {
        if (ml_parse_uint(v, 5, 256, &n)) return bad("MEMLENS_WINDOW", v, "a sample count 5..256");
        config->window = (unsigned)n;
    }
    static const char *const level_names[3] = { "MEMLENS_WARN", "MEMLENS_CRIT", "MEMLENS_EMERG" };
    for (int i = 0; i < 3; i++) {
        if ((v = getenv(level_names[i])) && *v && parse_level(v, &config->levels[i]))
            return bad(level_names[i], v, "a size such as 200M, a percent of the cgroup limit such as 60%, or 0");
    }
    if ((v = getenv("MEMLENS_GROWTH_ALERT")) && *v) {
        /* plain number: MiB per minute; with a unit (512K, 1G): bytes per minute */
        if (ml_parse_uint(v, 0, 1u << 20, &n) == false) n <<= 20;
        else if (ml_parse_size(v, &n)) return bad("MEMLENS_GROWTH_ALERT", v, "a growth per minute such as 5 (MiB), 512K or 0 (off)");
        config->growth_alert_bytes_per_min = n;
    }
    if ((v = getenv("MEMLENS_SITE_MAX")) && *v) {
        if (ml_parse_size(v, &n)) return bad("MEMLENS_SITE_MAX", v, "a size such as 100M, or 0 (off)");
        config->site_max = n;
    }
    if ((v = getenv("MEMLENS_ALERT_LIMIT")) && *v) {
        if (ml_parse_uint(v, 0, 1000000, &n)) return bad("MEMLENS_ALERT_LIMIT", v, "alerts per rule per hour, 0 = unlimited");
        config->alert_limit = (unsigned)n;
    }
    if ((v = getenv("MEMLENS_ALERT_FD")) && *v) {
        if (ml_parse_uint(v, 3, 1u << 20, &n)) return bad("MEMLENS_ALERT_FD", v, "an open file descriptor number >= 3");
        config->alert_fd = (int)n;
    }
    if ((v = getenv("MEMLENS_ALERT_FD_ID")) && *v) {
        if (parse_file_id(v, &config->alert_fd_dev, &config->alert_fd_ino))
            return bad("MEMLENS_ALERT_FD_ID", v, "DEV:INO, the st_dev and st_ino of MEMLENS_ALERT_FD's file");
        config->alert_fd_id = true;
    }
    if ((v = getenv("MEMLENS_OUT")) && *v) {
        if (strlen(v) >= sizeof config->out_dir - 64) return bad("MEMLENS_OUT", v, "a shorter path");
        ml_strlcpy(config->out_dir, v, sizeof config->out_dir);
    }
    return false;
}
