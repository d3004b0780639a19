/* cli.h — helpers shared by the memlens commands: opening a run with its symbols, error and
 * usage reporting, colour, and the text/JSON rendering of processes and stacks.
 *
 * Conventions: exit status 0 ok, 1 findings (reserved), 2 usage or input error. Errors are one
 * line on stderr starting with "memlens: ". Frames inside libmemlens itself are never shown.
 */
#ifndef MEMLENS_TOOLS_CLI_H
#define MEMLENS_TOOLS_CLI_H

#include "stream.h"
#include "symbolize.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>

#define ML_EXIT_OK 0
#define ML_EXIT_FINDINGS 1
#define ML_EXIT_USAGE 2

int ml_cmd_run(int argc, char **argv);
int ml_cmd_report(int argc, char **argv);
int ml_cmd_leaks(int argc, char **argv);
int ml_cmd_check(int argc, char **argv);
int ml_cmd_trends(int argc, char **argv);
/* cmd_control.c: the control socket of a running process */
int ml_cmd_status(int argc, char **argv);
int ml_cmd_top(int argc, char **argv);
int ml_cmd_dump(int argc, char **argv);
int ml_cmd_trim(int argc, char **argv);
int ml_cmd_reset_peak(int argc, char **argv);

/* Print "memlens: <msg>" and exit 2. */
_Noreturn void ml_die(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Print "memlens CMD: <msg>" plus a hint to --help, and exit 2. */
_Noreturn void ml_usage_error(const char *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Report an option getopt_long rejected (unknown, or missing its value) and exit 2. */
_Noreturn void ml_bad_option(const char *cmd, const char *arg);

/* Load RUN (or the newest ./memlens-* when NULL) and its symbols.json; exits 2 on error. */
void ml_cli_open(const char *arg, ml_run *run, ml_symbolizer **sym);

/* Colour escapes: empty strings unless stdout is a tty and NO_COLOR is unset. */
void ml_color_init(bool json);
extern const char *ml_bold, *ml_dim, *ml_red, *ml_reset;

/* Frames */
bool ml_frame_is_self(const ml_symbol *sym);
/* Index of the first frame not in libmemlens (nframes when none). */
size_t ml_site_first_frame(ml_symbolizer *sym, const ml_stream *s, const ml_site *site);
/* Index of the first frame outside libmemlens and the C/C++ runtime, falling back to
 * ml_site_first_frame. */
size_t ml_site_user_frame(ml_symbolizer *sym, const ml_stream *s, const ml_site *site);
/* "function (file:line)" (basename of the file; the address when no function is known). */
const char *ml_frame_short(const ml_symbol *sym, const ml_frame *f, char *buf, size_t len);
/* "function (file:line) [object]" (basename of the object) into buf. */
const char *ml_frame_text(const ml_symbol *sym, const ml_frame *f, char *buf, size_t len);
/* Print up to max_frames frames of the site (0 = all), one per line, prefixed by indent. */
void ml_print_stack(FILE *out, ml_symbolizer *sym, const ml_stream *s, const ml_site *site,
                    size_t max_frames, const char *indent);
json_t *ml_json_stack(ml_symbolizer *sym, const ml_stream *s, const ml_site *site);

/* Process identity. The text header says when the stream was recorded in sampled mode; the JSON
 * object carries "mode" ("sampled" or "full"), "sample_rate" (0 in full mode) and "estimated". */
void ml_print_process_header(FILE *out, const ml_stream *s);
json_t *ml_json_process(const ml_stream *s);

/* "~" when the stream's heap sizes and counts are sampled estimates, else "": the text prefix of
 * such numbers (mapping numbers are exact in both modes). */
const char *ml_estimate_mark(const ml_stream *s);
/* "512 KiB", "1.5 MiB": a sampling interval in bytes into buf (at least ML_SIZE_BUF bytes). */
const char *ml_fmt_rate(int64_t bytes, char *buf, size_t len);

/* The common body of `report` and `leaks`: load RUN (or the newest ./memlens-*), then either one
 * JSON object {"run", "processes": [json_process(stream)…]} or a title line "memlens COMMAND
 * DIR (N streams)" and print_process(stream) for each stream. Returns the exit status. */
typedef struct ml_cli_view {
    const char *command;
    json_t *(*json_process)(ml_symbolizer *sym, const ml_stream *s, const void *ctx);
    void (*print_process)(ml_symbolizer *sym, const ml_stream *s, const void *ctx);
    const void *ctx;
} ml_cli_view;
int ml_cli_show(const ml_cli_view *view, const char *run_arg, bool json);

/* JSON helpers: set key to a new value; return false on allocation failure. */
bool ml_jset(json_t *o, const char *key, json_t *v);
json_t *ml_jstr(const char *s); /* string or null */
/* Dump root to stdout (indented) and release it; exits 2 on failure. */
void ml_json_print(json_t *root);

#endif
