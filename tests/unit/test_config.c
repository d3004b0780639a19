/* Unit tests of MEMLENS_* parsing (core/ml_config.c) and of the parsers it shares with the CLI (core/ml_parse.c). */
#include <criterion/criterion.h>
#include <stdlib.h>

#include "ml.h"

Test(config, sizes) {
    uint64_t v;
    cr_assert_not(ml_parse_size("4096", &v)); cr_assert_eq(v, 4096);
    cr_assert_not(ml_parse_size("512K", &v)); cr_assert_eq(v, 512 << 10);
    cr_assert_not(ml_parse_size("512KiB", &v)); cr_assert_eq(v, 512 << 10);
    cr_assert_not(ml_parse_size("1MiB", &v)); cr_assert_eq(v, 1 << 20);
    cr_assert_not(ml_parse_size("2G", &v)); cr_assert_eq(v, 2ull << 30);
    cr_assert_not(ml_parse_size("1TiB", &v)); cr_assert_eq(v, 1ull << 40);
    cr_assert(ml_parse_size("16777216T", &v));   /* 2^64: overflows */
    cr_assert_not(ml_parse_size("3MB", &v)); cr_assert_eq(v, 3 << 20);
    cr_assert_not(ml_parse_size("512kib", &v)); cr_assert_eq(v, 512 << 10);   /* units in any case */
    cr_assert_not(ml_parse_size("2GIB", &v)); cr_assert_eq(v, 2ull << 30);
    cr_assert_not(ml_parse_size("7b", &v)); cr_assert_eq(v, 7);
    cr_assert(ml_parse_size("7ib", &v), "iB needs a unit");
    cr_assert(ml_parse_size("1kk", &v));
    cr_assert(ml_parse_size("1 K", &v));
    cr_assert(ml_parse_size("", &v));
    cr_assert(ml_parse_size("12Q", &v));
    cr_assert(ml_parse_size("-1", &v));
    cr_assert(ml_parse_size("1MiBx", &v));
    cr_assert(ml_parse_size("99999999999999999999999", &v), "overflow is an error");
    cr_assert(ml_parse_size("20000000000000G", &v), "overflow by the multiplier is an error");
}

Test(config, durations) {
    uint64_t v;
    cr_assert_not(ml_parse_duration_ns("250ms", &v)); cr_assert_eq(v, 250000000ull);
    cr_assert_not(ml_parse_duration_ns("2s", &v)); cr_assert_eq(v, 2000000000ull);
    cr_assert_not(ml_parse_duration_ns("1500", &v)); cr_assert_eq(v, 1500000000ull);
    cr_assert(ml_parse_duration_ns("fast", &v));
    cr_assert(ml_parse_duration_ns("5h", &v));
}

Test(config, rates) {
    uint64_t v = 7;
    cr_assert_not(ml_parse_rate_per_min("5MiB/min", &v)); cr_assert_eq(v, 5ull << 20);
    cr_assert_not(ml_parse_rate_per_min("5M/m", &v)); cr_assert_eq(v, 5ull << 20);
    cr_assert_not(ml_parse_rate_per_min("5M", &v)); cr_assert_eq(v, 5ull << 20, "per minute by default");
    cr_assert_not(ml_parse_rate_per_min("64KiB/s", &v)); cr_assert_eq(v, 60ull * (64 << 10));
    cr_assert_not(ml_parse_rate_per_min("0/s", &v)); cr_assert_eq(v, 0);
    v = 7;
    cr_assert(ml_parse_rate_per_min("5MiB/h", &v)); cr_assert_eq(v, 7, "left alone on error");
    cr_assert(ml_parse_rate_per_min("/s", &v));
    cr_assert(ml_parse_rate_per_min("5MiB/", &v));
    cr_assert(ml_parse_rate_per_min("fast/s", &v));
    cr_assert(ml_parse_rate_per_min("5MiB/s/s", &v));
    cr_assert(ml_parse_rate_per_min("16000000000000000000/s", &v), "overflow by the minute is an error");
}

Test(config, environment) {
    struct ml_config c = { .depth = 32, .interval_ns = 1000000000ull, .op_min = 1 << 20, .follow_exec = true };
    setenv("MEMLENS_DEPTH", "12", 1);
    setenv("MEMLENS_INTERVAL", "200ms", 1);
    setenv("MEMLENS_OP_MIN", "64K", 1);
    setenv("MEMLENS_FOLLOW_EXEC", "0", 1);
    cr_assert_not(ml_config_load(&c));
    cr_assert_eq(c.depth, 12);
    cr_assert_eq(c.interval_ns, 200000000ull);
    cr_assert_eq(c.op_min, 64 << 10);
    cr_assert_not(c.follow_exec);
    setenv("MEMLENS_DEPTH", "0", 1);
    cr_assert(ml_config_load(&c), "depth 0 is rejected");
    setenv("MEMLENS_DEPTH", "8", 1);
    setenv("MEMLENS_INTERVAL", "1ms", 1);
    cr_assert(ml_config_load(&c), "intervals under 10ms are rejected");
}

Test(config, alert_descriptor_identity) {
    struct ml_config c = { .depth = 32, .interval_ns = 1000000000ull, .op_min = 1 << 20, .alert_fd = -1 };
    setenv("MEMLENS_ALERT_FD", "7", 1);
    setenv("MEMLENS_ALERT_FD_ID", "2049:1234567", 1);
    cr_assert_not(ml_config_load(&c));
    cr_assert_eq(c.alert_fd, 7);
    cr_assert(c.alert_fd_id);
    cr_assert_eq(c.alert_fd_dev, 2049);
    cr_assert_eq(c.alert_fd_ino, 1234567);
    const char *bad[] = { "2049", "2049:", ":5", "x:5", "1:2:3", "99999999999999999999999:1" };
    for (unsigned i = 0; i < sizeof bad / sizeof *bad; i++) {
        setenv("MEMLENS_ALERT_FD_ID", bad[i], 1);
        cr_assert(ml_config_load(&c), "MEMLENS_ALERT_FD_ID=%s is rejected", bad[i]);
    }
}
