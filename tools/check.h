/* check.h — the CI gate behind `memlens check` and `memlens run --check`.
 *
 * Data model: ml_check_eval reads a loaded run and produces an ml_check_result: one
 * ml_check_proc per stream (process image) with its classified totals, what suppressions and the
 * baseline removed, its heap peak and its verdict state; and a flat list of ml_finding, each
 * naming its process, sorted by process then class then size. Leak budgets apply to the sum over
 * all processes of the run (each process's numbers are shown and summed); the peak budget applies
 * to each process. The renderers (report_formats.c) only read the result.
 */
#ifndef MEMLENS_TOOLS_CHECK_H
#define MEMLENS_TOOLS_CHECK_H

#include "baseline.h"
#include "cli.h"
#include "suppress.h"

#include <getopt.h>
#include <stdio.h>

typedef enum ml_check_format {
    ML_FORMAT_TEXT,
    ML_FORMAT_JUNIT,
    ML_FORMAT_SARIF,
    ML_FORMAT_GITHUB,
} ml_check_format;

typedef struct ml_check_opts {
    int64_t max_leaked;     /* definitely + indirectly lost bytes; default 0 */
    bool max_leaked_given;  /* --max-leaked was given (the default budget applies otherwise) */
    int64_t max_possibly;   /* -1: not gated (default) */
    int64_t max_peak;       /* -1: not gated (default) */
    int64_t max_growth;     /* bytes per minute of heap or mmap growth; -1: not gated (default) */
    bool allow_incomplete;
    const char *suppressions, *baseline, *write_baseline, *output;
    ml_check_format format;
} ml_check_opts;

/* Long options shared by `check` and `run --check`, and their parser (exits 2 on a bad value).
 * ml_check_option returns false when `c` is not one of them. */
#define ML_CHECK_OPT_BASE 0x1000
#define ML_CHECK_OPT_OUTPUT (ML_CHECK_OPT_BASE + 0x100) /* --output / --check-output */
extern const struct option ml_check_long_options[];
void ml_check_opts_init(ml_check_opts *o);
bool ml_check_option(ml_check_opts *o, int c, const char *arg, const char *cmd);
extern const char ml_check_options_help[];

typedef enum ml_rule {
    ML_RULE_DEFINITE,
    ML_RULE_INDIRECT,
    ML_RULE_POSSIBLE,
    ML_RULE_PEAK,
    ML_RULE_GROWTH,
    ML_RULE_COUNT
} ml_rule;

const char *ml_rule_id(ml_rule r);          /* "definite-leak", …, "peak-budget", "growth-budget" */
const char *ml_rule_description(ml_rule r);

/* The first frame in the user's own code: outside libmemlens, libc, libstdc++, ld.so, … and
 * with a source file. file is NULL when no frame qualifies (function/object may still be set). */
typedef struct ml_location {
    const char *function, *file, *object;
    int64_t line;
} ml_location;

typedef struct ml_finding {
    ml_rule rule;
    size_t proc;             /* index in ml_check_result.procs */
    const ml_site *site;     /* leak site, the process's top peak site, or its fastest-growing one
                                (may be NULL) */
    ml_leak_entry entry;     /* leak findings */
    ml_location loc;
    char *message;           /* one line, names the process */
    char *fingerprint;       /* stable across rebuilds: hash of the baseline key (hex) */
    const char *metric;      /* growth findings: "heap" or "mmap" */
    double rate_bps;         /* growth findings: its rate, bytes per second */
} ml_finding;

typedef enum ml_verdict {
    ML_VERDICT_OK,           /* leak_summary present: leaks gated */
    ML_VERDICT_EXEC,         /* image replaced by exec: leaks not gated, peak is */
    ML_VERDICT_MISSING,      /* no leak verdict (cut, error, old stream) */
    ML_VERDICT_SAMPLED,      /* sampled mode: no verdict by design; only --max-peak applies */
} ml_verdict;

typedef struct ml_suppressed {
    ml_leak_entry entry;
    const ml_suppression *rule;
} ml_suppressed;

typedef struct ml_check_proc {
    const ml_stream *s;
    ml_verdict verdict;
    char note[256];          /* why the verdict is not OK, or a scan warning; "" if none */
    ml_amount classes[ML_LEAK_NCLASS]; /* all classified blocks */
    ml_amount gated[3];      /* definite, indirect, possible after suppressions and baseline */
    ml_amount suppressed, baselined;
    size_t nsuppressed;
    ml_suppressed *suppressed_entries;
    int64_t peak;
    bool peak_exact;         /* from snapshots (else: at least the largest site peak) */
    bool peak_estimated;     /* sampled mode: the peak is an estimate */
    const ml_site *peak_site;
    char growth[256];        /* with --max-growth: the heap and mmap patterns, or why not gated */
    size_t nfindings;
} ml_check_proc;

typedef struct ml_check_result {
    const ml_check_opts *opts;
    const ml_run *run;
    ml_symbolizer *sym;
    ml_suppressions sup;
    size_t nprocs;
    ml_check_proc *procs;
    size_t nfindings;
    ml_finding *findings;
    ml_amount leaked, possible;   /* run totals counted against the budgets */
    bool leaked_over, possible_over;
    size_t nmissing;             /* processes without a verdict (skipped with --allow-incomplete) */
    size_t nsampled;             /* processes recorded in sampled mode (leaks not gated) */
} ml_check_result;

/* Evaluate; returns false (err filled, exit 2) on an input error: a bad suppressions or baseline
 * file, a baseline that cannot be written, or a missing verdict without allow_incomplete. */
bool ml_check_eval(ml_check_result *r, const ml_check_opts *o, const ml_run *run,
                   ml_symbolizer *sym, char *err, size_t errlen);
void ml_check_result_free(ml_check_result *r);

/* Text frames of a site (libmemlens frames skipped); *out malloc'd. */
size_t ml_site_text_frames(ml_symbolizer *sym, const ml_stream *s, const ml_site *site,
                           ml_text_frame **out);

/* Renderers (report_formats.c). Return false on a write error. */
bool ml_check_write(const ml_check_result *r, FILE *out);

/* The whole command on an opened run: evaluate, write the report (to o->output or `out`),
 * return 0 clean, 1 findings, 2 input error. */
int ml_check_main(const ml_check_opts *o, const ml_run *run, ml_symbolizer *sym, FILE *out);

#endif
