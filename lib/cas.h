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

struct hypr_root {
	char path[4096];
};

/* Resolve the root (override if non-NULL, else HYPR_ROOT, else the default)
 * and create its subdirectories. */
int hypr_root_open(struct hypr_root *r, const char *override, struct hypr_err *e);
/* snprintf a path under the root: hypr_root_path(r, buf, n, "cache/%s", key). */
int hypr_root_path(const struct hypr_root *r, char *buf, size_t n,
    const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* Path of a blob (whether or not it exists). */
int hypr_blob_path(const struct hypr_root *r, const char *digest, char *buf,
    size_t n, struct hypr_err *e);
/* 1 if the blob is present, 0 if not. */
int hypr_blob_has(const struct hypr_root *r, const char *digest);

/* A blob being written: bytes go to a temp file and a running digest. */
struct hypr_blob_writer {
	const struct hypr_root *root;
	char tmp[4200];
	int fd;
	struct hypr_sha256 sha;
};
/* Open a writer (temp file under tmp/). */
int hypr_blob_begin(struct hypr_blob_writer *w, const struct hypr_root *r,
    struct hypr_err *e);
/* Append bytes. */
int hypr_blob_write(struct hypr_blob_writer *w, const void *buf, size_t len,
    struct hypr_err *e);
/* Finish: if expect is non-NULL the digest must match (else HYPR_EXIT_INPUT and
 * nothing is stored). On success digest_out (may be NULL) gets the digest and
 * size_out the size; the blob is in place. */
int hypr_blob_commit(struct hypr_blob_writer *w, const char *expect,
    char digest_out[HYPR_DIGEST_LEN + 1], uint64_t *size_out, struct hypr_err *e);
/* Drop a writer without storing. */
void hypr_blob_abort(struct hypr_blob_writer *w);
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
