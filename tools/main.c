/* main.c — the memlens command-line entry point: dispatches to one command per file
 * (cmd_run.c with run_watch.c and live.c, cmd_report.c, cmd_leaks.c, cmd_check.c, cmd_trends.c,
 * cmd_control.c). Exit status: 0 ok, 1 findings, 2 usage/input error.
 */
#include "cli.h"

#include <stdio.h>
#include <string.h>

#ifndef MEMLENS_VERSION
#define MEMLENS_VERSION "unknown"
#endif

static const struct {
    const char *name;
    int (*fn)(int, char **);
    const char *what;
} commands[] = {
    {"run", ml_cmd_run, "run a program under tracking and print a summary; alerts,\n"
                        "             --live view"},
    {"report", ml_cmd_report, "top memory consumers by site, function, library or kind"},
    {"leaks", ml_cmd_leaks, "leaked blocks by class (definitely/indirectly/possibly lost,\n"
                            "             still reachable), with their stacks"},
    {"check", ml_cmd_check, "CI gate: leak and peak budgets, suppressions, baseline;\n"
                            "             text, JUnit, SARIF or GitHub output"},
    {"trends", ml_cmd_trends, "growth pattern, rate and leak confidence per process and site"},
    {"status", ml_cmd_status, "ask a running process (PID or run dir): RSS, heap, peaks"},
    {"top", ml_cmd_top, "a running process's top N sites by live bytes, symbolized"},
    {"dump", ml_cmd_dump, "a running process writes a heap dump record to its stream"},
    {"trim", ml_cmd_trim, "a running process calls malloc_trim(0); RSS before/after"},
    {"reset-peak", ml_cmd_reset_peak, "a running process restarts its peaks from now"},
};

static void usage(FILE *out)
{
    fputs("Usage: memlens COMMAND [OPTIONS] [ARGS]\n\n"
          "A memory-allocation tracker: run a program with libmemlens.so preloaded, then\n"
          "analyse the run directory (./memlens-<prog>-<pid>/) it wrote.\n\nCommands:\n",
          out);
    for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
        fprintf(out, "  %-10s %s\n", commands[i].name, commands[i].what);
    fputs("\nRUN arguments name a run directory or one .jsonl stream; the default is the newest\n"
          "./memlens-*/ directory. 'memlens COMMAND --help' describes each command.\n"
          "Exit status: 0 ok, 1 findings, 2 usage or input error.\n",
          out);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return ML_EXIT_USAGE;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
        usage(stdout);
        return ML_EXIT_OK;
    }
    if (strcmp(cmd, "--version") == 0) {
        printf("memlens %s\n", MEMLENS_VERSION);
        return ML_EXIT_OK;
    }
    for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
        if (strcmp(cmd, commands[i].name) == 0)
            return commands[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "memlens: unknown command '%s'\nTry 'memlens --help'.\n", cmd);
    return ML_EXIT_USAGE;
}
