/* cmd_leaks.c — `memlens leaks [RUN]`: what was still allocated when each process exited.
 *
 * Source of truth: the `live` records written at exit (one per site still holding memory).
 * Heap sites are the leaks proper; mmap sites are listed apart as mappings still mapped at
 * exit. A stream without an `end` record was cut before the live records were written: the
 * report says so and shows nothing for it (the data is incomplete, not clean). Exit 0.
 */
#define _GNU_SOURCE
#include "cli.h"
#include "fmt.h"

#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *out)
{
    fputs("Usage: memlens leaks [OPTIONS] [RUN]\n\n"
          "Blocks still allocated when each process exited, grouped by allocation site\n"
          "(largest first) with symbolized stacks; mappings still mapped at exit are listed\n"
          "apart. RUN is a run directory or a .jsonl stream (default: the newest\n"
          "./memlens-*/ directory).\n\n"
          "Options:\n"
          "  --limit N      sites shown per process and section (default 0 = all)\n"
          "  --frames N     frames shown per stack (default 0 = all)\n"
          "  --json         one JSON object with a \"processes\" array (see docs/format.md)\n"
          "  -h, --help     this help\n\n"
          "A process whose stream has no end record (killed, crashed, still running) has no\n"
          "exit data: it is reported as incomplete. Exit status 0 (2 on bad input).\n",
          out);
}

typedef struct leak_list {
    const ml_site **heap, **mmap;
    size_t nheap, nmmap;
    int64_t heap_bytes, heap_blocks, mmap_bytes, mmap_blocks;
} leak_list;

static int cmp_leaks(const void *a, const void *b)
{
    const ml_site *x = *(const ml_site *const *)a, *y = *(const ml_site *const *)b;
    if (x->exit_live_bytes != y->exit_live_bytes)
        return x->exit_live_bytes > y->exit_live_bytes ? -1 : 1;
    if (x->exit_live_blocks != y->exit_live_blocks)
        return x->exit_live_blocks > y->exit_live_blocks ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

static leak_list collect(const ml_stream *s)
{
    leak_list l = {0};
    l.heap = calloc(s->nsites ? s->nsites : 1, sizeof *l.heap);
    l.mmap = calloc(s->nsites ? s->nsites : 1, sizeof *l.mmap);
    if (!l.heap || !l.mmap)
        ml_die("out of memory");
    for (const ml_site *site = s->sites; site; site = site->hh.next) {
        if (!site->has_exit_live || (site->exit_live_bytes <= 0 && site->exit_live_blocks <= 0))
            continue;
        if (site->is_mmap) {
            l.mmap[l.nmmap++] = site;
            l.mmap_bytes += site->exit_live_bytes;
            l.mmap_blocks += site->exit_live_blocks;
        } else {
            l.heap[l.nheap++] = site;
            l.heap_bytes += site->exit_live_bytes;
            l.heap_blocks += site->exit_live_blocks;
        }
    }
    qsort(l.heap, l.nheap, sizeof *l.heap, cmp_leaks);
    qsort(l.mmap, l.nmmap, sizeof *l.mmap, cmp_leaks);
    return l;
}

static json_t *json_amount(int64_t bytes, int64_t blocks)
{
    json_t *o = json_object();
    if (!o || !ml_jset(o, "bytes", json_integer(bytes)) ||
        !ml_jset(o, "blocks", json_integer(blocks)))
        ml_die("out of memory");
    return o;
}

static json_t *json_sites(ml_symbolizer *sym, const ml_stream *s, const ml_site **v, size_t n,
                          size_t limit)
{
    json_t *a = json_array();
    if (!a)
        ml_die("out of memory");
    for (size_t i = 0; i < n && (!limit || i < limit); i++) {
        json_t *o = json_object();
        if (!o || !ml_jset(o, "site", json_integer(v[i]->id)) ||
            !ml_jset(o, "kind", json_string(v[i]->kind)) ||
            !ml_jset(o, "bytes", json_integer(v[i]->exit_live_bytes)) ||
            !ml_jset(o, "blocks", json_integer(v[i]->exit_live_blocks)) ||
            !ml_jset(o, "stack", ml_json_stack(sym, s, v[i])) ||
            json_array_append_new(a, o) != 0)
            ml_die("out of memory");
    }
    return a;
}

static json_t *json_process(ml_symbolizer *sym, const ml_stream *s, size_t limit)
{
    json_t *p = ml_json_process(s), *summary = json_object();
    leak_list l = collect(s);
    if (!summary || !ml_jset(summary, "heap", json_amount(l.heap_bytes, l.heap_blocks)) ||
        !ml_jset(summary, "mmap", json_amount(l.mmap_bytes, l.mmap_blocks)) ||
        !ml_jset(summary, "complete", json_boolean(s->has_end)) || !ml_jset(p, "summary", summary) ||
        !ml_jset(p, "leaks", json_sites(sym, s, l.heap, l.nheap, limit)) ||
        !ml_jset(p, "mappings", json_sites(sym, s, l.mmap, l.nmmap, limit)))
        ml_die("out of memory");
    if (!s->has_end && !ml_jset(p, "note", json_string("stream cut (no end record): leak data "
                                                       "incomplete, live records missing")))
        ml_die("out of memory");
    free(l.heap);
    free(l.mmap);
    return p;
}

static void print_sites(ml_symbolizer *sym, const ml_stream *s, const ml_site **v, size_t n,
                        size_t limit, size_t frames, const char *unit)
{
    char a[ML_SIZE_BUF], b[32], c[32];
    size_t shown = limit && limit < n ? limit : n;
    for (size_t i = 0; i < shown; i++) {
        const ml_site *site = v[i];
        printf("   %s%s%s%s (%s bytes) in %s %s%s  %s  %s(site %" PRId64 ")%s\n", ml_bold, ml_red,
               ml_fmt_size(site->exit_live_bytes, a, sizeof a), ml_reset,
               ml_fmt_count(site->exit_live_bytes, b, sizeof b),
               ml_fmt_count(site->exit_live_blocks, c, sizeof c), unit,
               site->exit_live_blocks == 1 ? "" : "s", site->kind, ml_dim, site->id, ml_reset);
        ml_print_stack(stdout, sym, s, site, frames, "       ");
    }
    if (shown < n)
        printf("   %s… %zu more (--limit 0 shows all)%s\n", ml_dim, n - shown, ml_reset);
}

static void print_process(ml_symbolizer *sym, const ml_stream *s, size_t limit, size_t frames)
{
    ml_print_process_header(stdout, s);
    if (!s->has_end) {
        printf("   %sstream was cut: leak data incomplete (live records missing)%s\n\n", ml_red,
               ml_reset);
        return;
    }
    leak_list l = collect(s);
    char a[ML_SIZE_BUF], b[32], c[32];
    printf("   in use at exit: %s bytes in %s blocks (%s)\n",
           ml_fmt_count(l.heap_bytes, b, sizeof b), ml_fmt_count(l.heap_blocks, c, sizeof c),
           ml_fmt_size(l.heap_bytes, a, sizeof a));
    printf("   still mapped at exit: %s bytes in %s mappings (%s)\n",
           ml_fmt_count(l.mmap_bytes, b, sizeof b), ml_fmt_count(l.mmap_blocks, c, sizeof c),
           ml_fmt_size(l.mmap_bytes, a, sizeof a));
    if (!s->has_live && s->end_reason && strcmp(s->end_reason, "exit") != 0)
        printf("   %s(no live records: the image ended by %s)%s\n", ml_dim, s->end_reason,
               ml_reset);
    printf("\n");
    if (l.nheap) {
        printf("   %sblocks still allocated at exit, by site:%s\n", ml_bold, ml_reset);
        print_sites(sym, s, l.heap, l.nheap, limit, frames, "block");
        printf("\n");
    }
    if (l.nmmap) {
        printf("   %smappings still mapped at exit:%s\n", ml_bold, ml_reset);
        print_sites(sym, s, l.mmap, l.nmmap, limit, frames, "mapping");
        printf("\n");
    }
    free(l.heap);
    free(l.mmap);
}

int ml_cmd_leaks(int argc, char **argv)
{
    static const struct option opts[] = {
        {"limit", required_argument, NULL, 'n'}, {"frames", required_argument, NULL, 'f'},
        {"json", no_argument, NULL, 'j'},       {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    bool json = false;
    uint64_t limit = 0, frames = 0;
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'n':
            if (!ml_parse_uint(optarg, 0, 100000000, &limit))
                ml_usage_error("leaks", "--limit: expected a number, not '%s'", optarg);
            break;
        case 'f':
            if (!ml_parse_uint(optarg, 0, 100000, &frames))
                ml_usage_error("leaks", "--frames: expected a number, not '%s'", optarg);
            break;
        case 'j': json = true; break;
        case 'h': usage(stdout); return ML_EXIT_OK;
        default:
            ml_bad_option("leaks", argv[optind - 1]);
        }
    }
    if (argc - optind > 1)
        ml_usage_error("leaks", "expected at most one RUN argument");
    ml_color_init(json);
    ml_run run;
    ml_symbolizer *sym;
    ml_cli_open(optind < argc ? argv[optind] : NULL, &run, &sym);
    if (json) {
        json_t *root = json_object(), *procs = json_array();
        if (!root || !procs || !ml_jset(root, "run", json_string(run.dir)))
            ml_die("out of memory");
        for (size_t i = 0; i < run.nstreams; i++)
            if (json_array_append_new(procs, json_process(sym, run.streams[i], limit)) != 0)
                ml_die("out of memory");
        if (!ml_jset(root, "processes", procs))
            ml_die("out of memory");
        ml_json_print(root);
    } else {
        printf("%smemlens leaks%s  %s  (%zu stream%s)\n\n", ml_bold, ml_reset, run.dir,
               run.nstreams, run.nstreams == 1 ? "" : "s");
        for (size_t i = 0; i < run.nstreams; i++)
            print_process(sym, run.streams[i], limit, frames);
    }
    ml_sym_free(sym);
    ml_run_free(&run);
    return ML_EXIT_OK;
}
