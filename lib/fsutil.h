/* fsutil.h - safe file writes and small filesystem helpers. */
#ifndef HYPR_FSUTIL_H
#define HYPR_FSUTIL_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include "err.h"

/* mkdir -p with mode for each created component. */
int hypr_mkdir_p(const char *path, mode_t mode, struct hypr_err *e);
/* Write data to path atomically: path.tmp.<pid>, fsync, rename. */
int hypr_write_atomic(const char *path, const void *data, size_t len, mode_t mode,
    struct hypr_err *e);
/* Read a whole file (max bytes) into a malloc'd NUL-terminated buffer. */
int hypr_read_file(const char *path, size_t max, char **out, size_t *len,
    struct hypr_err *e);
/* Write all of buf to fd, retrying on EINTR and short writes. */
int hypr_write_all(int fd, const void *buf, size_t len);
/* Read exactly len bytes unless EOF; returns bytes read or -1. */
ssize_t hypr_read_full(int fd, void *buf, size_t len);
/* rm -rf path (no error when missing); does not follow symlinks. */
int hypr_rm_rf(const char *path, struct hypr_err *e);
/* The same, best effort, for a signal handler: async-signal-safe calls
 * only (no allocation), at most 256 levels deep. */
void hypr_rm_rf_async(const char *path);
/* Overflow-checked size arithmetic: 0 on success, -1 on overflow. */
int hypr_size_add(size_t a, size_t b, size_t *out);
int hypr_size_mul(size_t a, size_t b, size_t *out);
/* "512", "10k", "20m", "64g", "1t" (binary units, any case, optional "b" or
 * "ib" after the unit; docker's size syntax) -> bytes. 0, or -1 if bad. */
int hypr_size_parse(const char *s, uint64_t *out);

/* A thread that fdatasyncs the file at path every 100 ms while this
 * process or a child writes it, so the fsync that ends the write waits
 * for the last tick's data alone. fdatasync, not sync_file_range's
 * writeback: where the disk has a volatile cache (this machine's virtual
 * disk, whose host caches the writes) the cost is the cache flush, which
 * only fdatasync asks for; a 148 MB image's fsync after tar2sqfs took
 * 0.25 s behind sync_file_range, 0.02 s behind fdatasync ticks. The
 * thread opens its own file description, so a write error it meets is
 * still reported to the writer's fsync; its own results are ignored.
 * path must stay valid until stop. Best effort: no thread, no flushing. */
struct hypr_flusher {
	pthread_t t;
	int on, stop[2];
	const char *path;
};
void hypr_flusher_start(struct hypr_flusher *fl, const char *path);
/* Stop and join (after the tick under way); a no-op if not started. */
void hypr_flusher_stop(struct hypr_flusher *fl);

#endif
