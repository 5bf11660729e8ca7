/* cas.h - the hypr root and its content-addressed blob store.
 *
 * $HYPR_ROOT (default /var/lib/hypr for root, else $XDG_DATA_HOME/hypr or
 * ~/.local/share/hypr) holds blobs/sha256/<hex>, cache/, images/, vm/, tmp/.
 * Blobs are written under tmp/ and renamed into place only once their digest
 * is verified, so a reader never sees a partial blob. */
#ifndef HYPR_CAS_H
#define HYPR_CAS_H

#include <stdint.h>
#include <stdio.h>
#include "digest.h"
#include "err.h"
#include "fsutil.h"

/* The one size for a path buffer under the root: the root (< 4096) and
 * what the store puts below it. */
#define HYPR_PATH_BUF 4352

struct hypr_root {
	char path[4096];
};

/* Resolve the root (override if non-NULL, else HYPR_ROOT, else the default)
 * and create its subdirectories. */
int hypr_root_open(struct hypr_root *r, const char *override, struct hypr_err *e);
/* snprintf a path under the root: hypr_root_path(r, buf, n, "cache/%s", key). */
int hypr_root_path(const struct hypr_root *r, char *buf, size_t n,
    const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* Temp files live in a directory of the process that makes them,
 * tmp/<prog>.<start>.<pid>.XXXXXX, made on first use and held with an
 * exclusive flock until the process ends (then removed). A prune or df
 * tells a live owner's files from a dead one's (SIGKILL) by that lock: it
 * removes only what it can lock. snprintf a path in this process's temp
 * directory: hypr_root_tmp(r, buf, n, e, "blob.XXXXXX"). */
int hypr_root_tmp(const struct hypr_root *r, char *buf, size_t n, struct hypr_err *e,
    const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* Remove this process's temp directory now (exit paths). A later
 * hypr_root_tmp makes a new one. */
void hypr_root_tmp_remove(void);
/* The same from a signal handler (async-signal-safe, best effort: what is
 * left, a later sweep of unlocked temp directories takes). */
void hypr_root_tmp_remove_async(void);

/* What tmp/ holds: each entry is live while a process holds its flock (a
 * temp directory above, a download's .part file), else left over by a
 * process that is gone. Sizes are allocated bytes (st_blocks), not the
 * sparse disks' apparent 64 GiB. */
struct hypr_tmp_usage {
	size_t n, live;			/* entries, and those held */
	uint64_t bytes, live_bytes;	/* allocated bytes of each */
	uint64_t freed;			/* with reclaim: bytes removed */
	int64_t live_since;		/* earliest start of a live temp dir, or INT64_MAX */
};
/* Scan tmp/; each (may be NULL) gets every entry. reclaim 1: remove every
 * entry no process holds (under its lock); 2: only left-over temp
 * directories (keeps a download's .part for a later resume). */
int hypr_root_tmp_scan(const struct hypr_root *r, int reclaim,
    void (*each)(void *arg, const char *name, int live, uint64_t bytes, int removed),
    void *arg, struct hypr_tmp_usage *u, struct hypr_err *e);
/* Allocated bytes under path (st_blocks * 512; a directory's whole tree). */
uint64_t hypr_disk_usage(const char *path);

/* Path of a blob (whether or not it exists). */
int hypr_blob_path(const struct hypr_root *r, const char *digest, char *buf,
    size_t n, struct hypr_err *e);
/* 1 if the blob is present, 0 if not. */
int hypr_blob_has(const struct hypr_root *r, const char *digest);

/* A blob being written: bytes go to a temp file and a running digest. */
struct hypr_blob_writer {
	const struct hypr_root *root;
	char tmp[HYPR_PATH_BUF];
	int fd;
	struct hypr_sha256 sha;
	char digest[HYPR_DIGEST_LEN + 1];	/* "" until hypr_blob_digest */
	struct hypr_flusher fl;	/* from the 8th MiB on: commit's fsync
				 * waits for the last 100 ms alone */
};
/* Open a writer (temp file under tmp/). */
int hypr_blob_begin(struct hypr_blob_writer *w, const struct hypr_root *r,
    struct hypr_err *e);
/* Append bytes. */
int hypr_blob_write(struct hypr_blob_writer *w, const void *buf, size_t len,
    struct hypr_err *e);
/* The digest of what was written (nothing may be written after it). */
void hypr_blob_digest(struct hypr_blob_writer *w, char out[HYPR_DIGEST_LEN + 1]);
/* Finish: if expect is non-NULL the digest must match (else HYPR_EXIT_INPUT and
 * nothing is stored). On success digest_out (may be NULL) gets the digest and
 * size_out the size; the blob is in place. */
int hypr_blob_commit(struct hypr_blob_writer *w, const char *expect,
    char digest_out[HYPR_DIGEST_LEN + 1], uint64_t *size_out, struct hypr_err *e);
/* Drop a writer without storing. */
void hypr_blob_abort(struct hypr_blob_writer *w);
/* The commit rule, for a finished temp file this process wrote (under
 * tmp/): digest it (or trust digest_in when non-NULL and already computed
 * over exactly these bytes), make it 0644, fsync, rename it into the store.
 * digest_out (may be NULL) and size_out (may be NULL) get what it holds.
 * The temp file is gone either way. */
int hypr_blob_adopt(const struct hypr_root *r, const char *tmp, const char *digest_in,
    char digest_out[HYPR_DIGEST_LEN + 1], uint64_t *size_out, struct hypr_err *e);
/* Store a whole file (copied) as a blob. */
int hypr_blob_put_file(const struct hypr_root *r, const char *path,
    char digest_out[HYPR_DIGEST_LEN + 1], uint64_t *size_out, struct hypr_err *e);
/* Store a buffer as a blob. */
int hypr_blob_put_buf(const struct hypr_root *r, const void *buf, size_t len,
    char digest_out[HYPR_DIGEST_LEN + 1], struct hypr_err *e);
/* Read a (small) blob into memory, verifying its digest. */
int hypr_blob_read(const struct hypr_root *r, const char *digest, size_t max,
    char **out, size_t *len, struct hypr_err *e);

#endif
