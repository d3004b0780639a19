/* stream.h — the shared reader of memlens run directories (docs/format.md, version 1).
 *
 * Data model: an ml_run is the set of streams (one per traced process image) found in a run
 * directory, sorted by start time. Each ml_stream keeps the header, the module table and the
 * site table (uthash maps keyed by id), with every `sites` delta already summed into its site,
 * the last snapshot and the highest heap_peak seen, the large-operation log (`op` records),
 * the `live` records (merged into their sites), the reachability verdict (`leak` records merged
 * into their sites per class, and the `leak_summary`) and the `end` record.
 *
 * Sampled mode (header "mode":"sampled"): allocation/free counts in `sites` rows and the
 * `scaled_blocks` of `live` records are in units of 1/count_scale. The reader sums those raw
 * values per site (scaled_* fields) and rounds once, per site, into the block counts (never per
 * record); totals over sites add those rounded counts, so that rows add up to totals. Heap byte
 * fields are estimates in bytes (nothing to convert); mapping numbers stay exact. Sampled streams have no reachability
 * verdict: their placeholder `leak_summary` (complete:false) is not taken for one.
 *
 * The reader never aborts on bad input: ml_run_load returns false and fills `err` with
 * "FILE:LINE: reason" for the caller to print. A malformed last line is taken for a line cut
 * by a kill and dropped (ml_stream.truncated_line says so). Unknown record types and fields
 * are ignored. Depends on jansson and uthash only, so tests can link it as `memlens_reader`.
 */
#ifndef MEMLENS_TOOLS_STREAM_H
#define MEMLENS_TOOLS_STREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uthash.h>

#define ML_FORMAT_VERSION 1
#define ML_STATUS_UNKNOWN INT64_MIN

/* Reachability classes of the `leak` records, in report order. */
enum {
    ML_LEAK_DEFINITE = 0,
    ML_LEAK_INDIRECT,
    ML_LEAK_POSSIBLE,
    ML_LEAK_REACHABLE,
    ML_LEAK_NCLASS
};

typedef struct ml_amount {
    int64_t bytes, blocks;
} ml_amount;

typedef struct ml_module {
    int64_t id;
    char *path;           /* as written by the shim; may be "" for the main program on some libcs */
    uint64_t base;        /* load bias */
    uint64_t size;
    char *build_id;       /* lowercase hex, or NULL */
    UT_hash_handle hh;
} ml_module;

typedef struct ml_frame {
    int64_t module;       /* module id, or -1: `offset` is then an absolute address */
    uint64_t offset;      /* return address - module base */
} ml_frame;

typedef struct ml_site {
    int64_t id;
    char *kind;
    bool is_mmap;         /* kind is mmap_anon or mmap_file */
    size_t nframes;
    ml_frame *frames;     /* innermost first */
    /* sums of the `sites` deltas; counts in blocks (rounded estimates in sampled mode) */
    int64_t allocations, frees, allocated_bytes, freed_bytes;
    int64_t scaled_allocations, scaled_frees; /* exact sums, in 1/count_scale blocks */
    int64_t peak_live_bytes;        /* running max; never below live_bytes nor below the
                                     * size of a logged `op` allocation of this site */
    int64_t live_bytes, live_blocks; /* derived: allocated - freed, allocations - frees (>= 0) */
    int64_t scaled_live_blocks;      /* live_blocks before rounding, in 1/count_scale */
    /* `live` records at exit */
    bool has_exit_live;
    int64_t exit_live_bytes, exit_live_blocks;
    int64_t scaled_exit_live_blocks; /* in 1/count_scale (`scaled_blocks`, else blocks × scale) */
    /* `leak` records at exit, per class (summed if a class is reported twice) */
    bool has_leak[ML_LEAK_NCLASS];
    ml_amount leak[ML_LEAK_NCLASS];          /* the blocks of this class */
    ml_amount leak_indirect[ML_LEAK_NCLASS]; /* blocks lost only because of them */
    UT_hash_handle hh;
} ml_site;

typedef struct ml_snapshot {
    int64_t t, rss, rss_peak, heap_live, heap_peak, heap_blocks;
    int64_t mmap_live, mmap_anon_live, mmap_file_live, threads, dropped_ops;
    int64_t cgroup_current, cgroup_max; /* -1 when absent (no memory cgroup; no limit) */
} ml_snapshot;

typedef struct ml_op {
    int64_t t, tid, site, size;
    uint64_t addr;
    char *kind;
} ml_op;

typedef struct ml_stream {
    char *path;           /* file path as opened */
    const char *name;     /* basename of path (points into path) */
    /* header */
    int64_t pid, ppid, t, depth, interval_ms, op_min, seq;
    char *exe, *mode, *parent;
    bool fork;
    bool sampled;         /* mode "sampled": heap sizes and counts are estimates */
    int64_t sample_rate;  /* mean bytes between samples; 0 in full mode */
    int64_t count_scale;  /* counts in `sites` rows / scaled_blocks are in 1/count_scale (1 when
                           * full mode; 256 in sampled mode unless the header says otherwise) */
    size_t argc;
    char **argv;
    /* tables */
    ml_module *modules;   /* uthash by id */
    ml_site *sites;       /* uthash by id, in order of first appearance */
    size_t nsites;
    /* state over time */
    bool has_snapshot;
    ml_snapshot last;     /* last snapshot */
    int64_t heap_peak;    /* max heap_peak over all snapshots */
    size_t nops, ops_cap;
    ml_op *ops;
    bool has_live;        /* at least one `live` record */
    char *exec_path;      /* from an `exec` record, or NULL */
    size_t nleak_records; /* `leak` records read */
    bool has_leak_summary; /* the verdict: present when the reachability scan finished */
    ml_amount leak_total[ML_LEAK_NCLASS]; /* from `leak_summary` */
    bool leak_complete;   /* leak_summary.complete (true when absent) */
    char *leak_message;   /* leak_summary.message, or NULL */
    int64_t leak_scan_ns;
    bool has_end;
    char *end_reason, *end_message;
    int64_t end_status, end_t; /* end_status: ML_STATUS_UNKNOWN when absent or null */
    size_t lines;         /* complete records read */
    bool truncated_line;  /* a malformed last line was dropped */
} ml_stream;

typedef struct ml_run {
    char *dir;            /* run directory (absolute when found by default), or the file's dir */
    size_t nstreams;
    ml_stream **streams;  /* sorted by header t, pid, seq */
} ml_run;

/* Load one stream file. On error returns NULL and writes "FILE:LINE: reason" into err. */
ml_stream *ml_stream_load(const char *path, char *err, size_t errlen);
void ml_stream_free(ml_stream *s);

/* Reading record by record (a stream still being written: stream_follow.h). ml_stream_new makes
 * an empty stream named `path`; ml_stream_add_record takes one parsed line (`line` counts from 1:
 * the header) and returns false with "FILE:LINE: reason" in err when the record is invalid;
 * ml_stream_finish (re)computes the derived site fields (live bytes, rounded counts) and may be
 * called after any number of records. */
typedef struct json_t json_t;
ml_stream *ml_stream_new(const char *path);
bool ml_stream_add_record(ml_stream *s, json_t *record, size_t line, char *err, size_t errlen);
void ml_stream_finish(ml_stream *s);

/* Load a run: `arg` is a run directory, a single .jsonl file, or NULL for the newest
 * ./memlens-* directory of the current directory. Returns false with err filled on error. */
bool ml_run_load(const char *arg, ml_run *run, char *err, size_t errlen);
void ml_run_free(ml_run *run);

/* Find the newest ./memlens-* directory in `dir`; returns a malloc'd path or NULL. */
char *ml_find_newest_run(const char *dir);

/* A count in 1/count_scale units (a scaled_* field or a sum of them) as blocks, rounded to the
 * nearest integer (halves away from zero). The identity in full mode. */
int64_t ml_stream_count(const ml_stream *s, int64_t scaled);

ml_module *ml_stream_module(const ml_stream *s, int64_t id);
ml_site *ml_stream_site(const ml_stream *s, int64_t id);

bool ml_kind_is_mmap(const char *kind);

/* "definite", "indirect", "possible", "reachable"; ml_leak_class_parse returns -1 if unknown. */
const char *ml_leak_class_name(int cls);
int ml_leak_class_parse(const char *name);

/* One line of a leak report: the blocks of one site in one class. cls is -1 for live blocks
 * that no `leak` record classified (a stream without a verdict, or a remainder). */
typedef struct ml_leak_entry {
    const ml_site *site;
    int cls;
    ml_amount direct, indirect;
} ml_leak_entry;

/* The leak entries of the heap (mmap false) or mapping (mmap true) sites of `s`, sorted by
 * class then by direct+indirect bytes, largest first. Without a verdict, one unclassified
 * entry per site still holding memory at exit. Returns the count; *out is malloc'd. */
size_t ml_stream_leak_entries(const ml_stream *s, bool mmap, ml_leak_entry **out);

#endif
