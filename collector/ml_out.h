/* ml_out.h — the stream writer: one JSONL file per process image, JSON built by hand into a fixed
 * buffer and written with raw write(2). All state is protected by the collector's flush lock. */
#ifndef ML_OUT_H
#define ML_OUT_H
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

/* Opens <dir>/memlens.<pid>.<seq>.jsonl (0600, O_EXCL|O_NOFOLLOW); creates dir (0700) if needed.
 * Returns true on error after one line on stderr. */
bool ml_out_open(const char *dir);
void ml_out_close(void);
bool ml_out_ok(void);
const char *ml_out_name(void);      /* file name of the current stream, "" if none */
unsigned ml_out_seq(void);

/* Record building: begin writes {"type":"<type>", and end writes }\n. */
void ml_out_begin(const char *type);
void ml_out_end(void);
void ml_out_key(const char *key);                 /* ,"key": */
void ml_out_u64(const char *key, uint64_t v);
void ml_out_i64(const char *key, int64_t v);
void ml_out_str(const char *key, const char *v);  /* NULL -> null */
void ml_out_raw(const char *text);
void ml_out_num(uint64_t v);                      /* bare number */
void ml_out_inum(int64_t v);
void ml_out_string(const char *v, size_t len);    /* bare escaped string */
/* Writes the buffered lines to the file. Returns true if output failed (then disabled). */
bool ml_out_flush(void);

/* The sink, swappable for tests: write all bytes or return -errno. */
typedef ssize_t ml_out_sink(int fd, const void *data, size_t len);
extern ml_out_sink *ml_out_write;
#endif
