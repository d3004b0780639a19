/* cmd_check.c — `memlens check [OPTIONS] [RUN]`: the CI gate over a finished run.
 *
 * Option parsing and help only; the evaluation is in check.c, the output formats in
 * report_formats.c. Exit status: 0 clean, 1 findings, 2 usage or input error (including a
 * process without a leak verdict, unless --allow-incomplete).
 */
#define _GNU_SOURCE
#include "check.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *out)
{
    fprintf(out,
            "Usage: memlens check [OPTIONS] [RUN]\n\n"
            "Fail a CI build on leaks or memory over a budget. Reads the reachability verdict\n"
            "that each process wrote at exit (definitely / indirectly / possibly lost, still\n"
            "reachable), applies suppressions and a baseline, and reports one finding per\n"
            "leaking stack (each naming its process). Leak budgets apply to the sum over the\n"
            "processes of the run; --max-peak applies to each process. RUN is a run directory\n"
            "or a .jsonl stream (default: the newest ./memlens-*/ directory).\n\n"
            "Options:\n%s"
            "  -o, --output FILE     write the report to FILE instead of stdout\n"
            "  -h, --help            this help\n\n"
            "A process whose stream has no leak verdict (killed, crashed) is an input error:\n"
            "'no leak verdict for process N (stream cut)'. An image replaced by exec has no\n"
            "verdict by design (its memory is gone, not leaked): only --max-peak applies to it.\n"
            "Nor has a process recorded in sampled mode (memlens run --sample): its numbers are\n"
            "estimates and only --max-peak applies (to an estimated peak); giving a leak budget,\n"
            "or none but the default, for such a process is an input error.\n"
            "Exit status: 0 clean, 1 findings, 2 usage or input error.\n",
            ml_check_options_help);
}

int ml_cmd_check(int argc, char **argv)
{
    struct option opts[32];
    size_t n = 0;
    for (const struct option *o = ml_check_long_options; o->name; o++)
        opts[n++] = *o;
    opts[n++] = (struct option){"output", required_argument, NULL, ML_CHECK_OPT_OUTPUT};
    opts[n++] = (struct option){"help", no_argument, NULL, 'h'};
    opts[n] = (struct option){NULL, 0, NULL, 0};

    ml_check_opts o;
    ml_check_opts_init(&o);
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "ho:", opts, NULL)) != -1) {
        if (c == 'h') {
            usage(stdout);
            return ML_EXIT_OK;
        }
        if (c == 'o')
            c = ML_CHECK_OPT_OUTPUT;
        if (!ml_check_option(&o, c, optarg, "check"))
            ml_bad_option("check", argv[optind - 1]);
    }
    if (argc - optind > 1)
        ml_usage_error("check", "expected at most one RUN argument");
    ml_color_init(o.format != ML_FORMAT_TEXT || o.output);
    ml_run run;
    ml_symbolizer *sym;
    ml_cli_open(optind < argc ? argv[optind] : NULL, &run, &sym);
    int status = ml_check_main(&o, &run, sym, stdout);
    ml_sym_free(sym);
    ml_run_free(&run);
    return status;
}
