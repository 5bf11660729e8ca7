/* rootfs.h - layer chains: flatten layer tars into one rootfs, and squashfs.
 *
 * Layers are OCI layer tars (gzip, zstd or uncompressed; libarchive reads
 * all) in the content store. Flattening applies whiteouts: ".wh.NAME"
 * deletes NAME from lower layers, ".wh..wh..opq" hides a directory's lower
 * contents. The result is one tar with no whiteouts, sorted in tree order
 * (parents first; "a" < "a/b" < "a.b"), names cleaned ("./a//b" -> "a/b",
 * the root as "./"), hostile paths (absolute, "..") refused (HYPR_EXIT_INPUT),
 * hard links kept (the first name in order carries the data). */
#ifndef HYPR_ROOTFS_H
#define HYPR_ROOTFS_H

#include <stddef.h>
#include <stdint.h>
#include "cas.h"
#include "err.h"

/* Flatten layer blobs (digests, lowest first) into a pax tar on out_fd. */
int hypr_rootfs_flatten(const struct hypr_root *r, const char *const *layers,
    size_t n, int out_fd, struct hypr_err *e);
/* Flatten layer tar files (paths, lowest first) into a pax tar on out_fd. */
int hypr_rootfs_flatten_files(const char *const *paths, size_t n, int out_fd,
    struct hypr_err *e);

struct hypr_squash_opts {
	const char *comp;	/* "zstd" (default), "gzip", "xz", "lz4" */
	int level;		/* 0 = default: zstd 3; gzip 9, xz 6 (tar2sqfs); lz4 1 = hc */
	unsigned block_size;	/* 0 = 128 KiB */
	int64_t epoch;		/* SOURCE_DATE_EPOCH or -1 */
	int verify;		/* chain cache hit: re-digest the blob (a full
				 * read) and rebuild it if damaged; without it
				 * only the size and superblock are checked */
};
/* Turn a rootfs tar read from in_fd into a squashfs file at out_path
 * (written to a temp name, then renamed). No root needed. */
int hypr_squash_tar(int in_fd, const char *out_path,
    const struct hypr_squash_opts *o, struct hypr_err *e);
/* The squashfs of a layer chain, cached in the store by the chain's digest:
 * builds it (flatten | squash) only if missing. path gets its location. */
int hypr_rootfs_squashfs(const struct hypr_root *r, const char *const *layers,
    size_t n, const struct hypr_squash_opts *o, char *path, size_t pathlen,
    struct hypr_err *e);
/* Read one regular file (e.g. "etc/passwd") out of a layer chain, following
 * whiteouts; *out is malloc'd (NUL-terminated). Returns 0, or 1 if absent. */
int hypr_rootfs_read_file(const struct hypr_root *r, const char *const *layers,
    size_t n, const char *name, size_t max, char **out, size_t *len,
    struct hypr_err *e);

/* Extensions (used by hypr-layer, hypr-squash, hypr-store). */

/* Flatten already-open layer tars (fds, lowest first; names for messages)
 * into a pax tar on out_fd. epoch >= 0 clamps later mtimes to it; atime and
 * ctime are always dropped. The spill file for file data goes in tmpdir. */
int hypr_rootfs_flatten_fds(const int *fds, const char *const *names, size_t n,
    int out_fd, int64_t epoch, const char *tmpdir, struct hypr_err *e);
/* Check squash options (unknown compressor, bad level or block size: usage). */
int hypr_squash_opts_check(const struct hypr_squash_opts *o, struct hypr_err *e);
/* flatten(fds, clamped to o->epoch) | tar2sqfs > out_path (temp + rename). */
int hypr_rootfs_squash_fds(const int *fds, const char *const *names, size_t n,
    const char *tmpdir, const char *out_path, const struct hypr_squash_opts *o,
    struct hypr_err *e);
/* Is the chain's squashfs (for these options) cached? 1 and its blob digest,
 * 0 if not, -1 on error. The index is cache/squashfs/<key hex>.json. An
 * entry whose blob is missing, of another size than recorded, without a
 * sane squashfs superblock, or (o->verify) of another digest is a miss. */
int hypr_rootfs_squashfs_lookup(const struct hypr_root *r,
    const char *const *layers, size_t n, const struct hypr_squash_opts *o,
    char digest[HYPR_DIGEST_LEN + 1], struct hypr_err *e);
/* Like hypr_rootfs_squashfs, giving the blob digest and size; *built (may
 * be NULL) is 1 when it was built now, 0 when it came from the cache. */
int hypr_rootfs_squashfs_blob(const struct hypr_root *r,
    const char *const *layers, size_t n, const struct hypr_squash_opts *o,
    char digest[HYPR_DIGEST_LEN + 1], uint64_t *size, int *built,
    struct hypr_err *e);

#endif
