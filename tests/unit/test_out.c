/* Unit tests of the stream writer (collector/ml_out.c): file mode, JSON escaping, a failing sink. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ml_out.h"

static char dir[64];
static void setup(void) {
    strcpy(dir, "/tmp/memlens-unit-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
}
TestSuite(out, .init = setup);

static char *read_stream(void) {
    static char path[256], text[4096];
    snprintf(path, sizeof path, "%s/%s", dir, ml_out_name());
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f);
    size_t n = fread(text, 1, sizeof text - 1, f);
    text[n] = 0;
    fclose(f);
    return text;
}

Test(out, escapes_and_mode) {
    cr_assert_not(ml_out_open(dir));
    ml_out_begin("t");
    ml_out_str("s", "a\"b\\c\n\x01");
    ml_out_str("u", "caf\xc3\xa9 \xff!");
    ml_out_i64("n", -42);
    ml_out_str("z", NULL);
    ml_out_end();
    cr_assert_not(ml_out_flush());
    char *text = read_stream();
    cr_assert_str_eq(text, "{\"type\":\"t\",\"s\":\"a\\\"b\\\\c\\n\\u0001\",\"u\":\"caf\xc3\xa9 \\ufffd!\",\"n\":-42,\"z\":null}\n");
    char path[256];
    snprintf(path, sizeof path, "%s/%s", dir, ml_out_name());
    struct stat st;
    cr_assert_eq(lstat(path, &st), 0);
    cr_assert_eq(st.st_mode & 0777, 0600, "stream files are private");
    ml_out_close();
}

Test(out, refuses_symlink_and_existing) {
    char path[256];
    snprintf(path, sizeof path, "%s/memlens.%d.0.jsonl", dir, (int)getpid());
    cr_assert_eq(symlink("/tmp/should-not-be-written", path), 0);
    cr_assert_not(ml_out_open(dir));
    cr_assert_str_neq(ml_out_name(), "", "opens the next sequence number instead");
    cr_assert_eq(access("/tmp/should-not-be-written", F_OK), -1, "the symlink was not followed");
    ml_out_close();
}

static ssize_t full_disk(int fd, const void *data, size_t len) { (void)fd; (void)data; (void)len; return -ENOSPC; }

Test(out, write_failure_disables_output) {
    cr_assert_not(ml_out_open(dir));
    ml_out_write = full_disk;
    ml_out_begin("t");
    ml_out_end();
    cr_assert(ml_out_flush(), "a failed write is reported");
    cr_assert_not(ml_out_ok(), "and output stays off");
    ml_out_close();
}
