/* test_linebuf.c — tools/linebuf.c: complete lines only, split across reads, the bound on line
 * length (longer lines dropped and counted, whether they arrive in one read or several), and
 * the pending last line that never gets its newline. */
#include "linebuf.h"

#include <criterion/criterion.h>
#include <string.h>
#include <unistd.h>

#define MAX 8

static int fds[2];
static ml_linebuf lb;

static void setup(void)
{
    cr_assert_eq(pipe(fds), 0);
    ml_linebuf_init(&lb, MAX);
}

static void teardown(void)
{
    ml_linebuf_free(&lb);
    close(fds[0]);
    if (fds[1] >= 0)
        close(fds[1]);
}

TestSuite(linebuf, .init = setup, .fini = teardown);

/* Write `text` to the pipe and read it into lb. */
static void feed(const char *text)
{
    size_t n = strlen(text);
    cr_assert_eq(write(fds[1], text, n), (ssize_t)n);
    cr_assert_eq(ml_linebuf_read(&lb, fds[0]), (ssize_t)n);
}

static void expect_line(const char *want)
{
    size_t len = 0;
    char *got = ml_linebuf_next(&lb, &len);
    cr_assert_not_null(got, "expected line \"%s\", got none", want);
    cr_assert_str_eq(got, want);
    cr_assert_eq(len, strlen(want));
}

static void expect_none(void)
{
    size_t len;
    cr_assert_null(ml_linebuf_next(&lb, &len));
}

Test(linebuf, lines_split_across_reads)
{
    feed("ab");
    expect_none();
    feed("c\nde\nf");
    expect_line("abc");
    expect_line("de");
    expect_none();
    feed("\n");
    expect_line("f");
    expect_none();
    cr_assert_eq(lb.dropped, 0);
}

Test(linebuf, line_of_max_length_kept_crlf_stripped)
{
    feed("01234567\nxy\r\n");
    expect_line("01234567");
    expect_line("xy");
    cr_assert_eq(lb.dropped, 0);
}

Test(linebuf, long_line_in_one_read_dropped)
{
    feed("012345678\nok\n");
    expect_line("ok");
    expect_none();
    cr_assert_eq(lb.dropped, 1);
}

Test(linebuf, long_line_over_several_reads_dropped)
{
    feed("01234");
    feed("56789");
    feed("abc");
    expect_none();
    feed("\nok\n");
    expect_line("ok");
    expect_none();
    cr_assert_eq(lb.dropped, 1);
}

Test(linebuf, long_pending_tail_after_a_complete_line)
{
    feed("a\n0123456789");
    expect_line("a");
    expect_none();
    feed("more\nb\n");
    expect_line("b");
    cr_assert_eq(lb.dropped, 1);
}

Test(linebuf, truncated_last_line_never_returned)
{
    feed("whole\ncut");
    close(fds[1]);
    fds[1] = -1;
    expect_line("whole");
    expect_none();
    cr_assert_eq(ml_linebuf_read(&lb, fds[0]), 0); /* end of file */
    expect_none();
}
