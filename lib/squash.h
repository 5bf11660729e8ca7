/* squash.h - squashfs images from tars, and the squashfs of a layer chain
 * (cached by the chain's digests and the options). No root needed: owners,
 * modes, devices, hard links, xattrs and holes come from the tar headers. */
#ifndef HYPR_SQUASH_H
#define HYPR_SQUASH_H

#include <stddef.h>
#include <stdint.h>
#include "cas.h"
#include "err.h"

struct hypr_squash_opts {
	const char *comp;	/* "zstd" (default), "gzip", "xz", "lz4" */
	int level;		/* 0 = default: zstd 1; gzip 9, xz 6 (tar2sqfs); lz4 1 = hc */
	unsigned block_size;	/* 0 = 128 KiB */
	int64_t epoch;		/* SOURCE_DATE_EPOCH or -1 */
	int verify;		/* chain cache hit: re-digest the blob (a full
				 * read) and rebuild it if damaged; without it
				 * only the size and superblock are checked */
	int flush;		/* the output will be fsynced: it is flushed
				 * to the disk while tar2sqfs writes it
				 * (hypr_flusher) */
};

/* Turn a rootfs tar read from in_fd into a squashfs file at out_path
 * (written to a temp name, then renamed). No root needed. */
int hypr_squash_tar(int in_fd, const char *out_path,
    const struct hypr_squash_opts *o, struct hypr_err *e);

/* The squashfs of one layer tar as it is, for an overlay lower (no
 * flattening): 1 when built at out_path (temp + rename), 0 when the tar
 * is not one tar2sqfs can read unchanged (compressed, whiteouts, unclean or
 * duplicate names, sparse files: direct_ok in squash.c), -1 on error. */
int hypr_squash_layer(int fd, const char *out_path, const struct hypr_squash_opts *o,
    struct hypr_err *e);

/* The squashfs of a layer chain, cached in the store by the chain's digest:
 * builds it (flatten | squash) only if missing. path gets its location. */
int hypr_rootfs_squashfs(const struct hypr_root *r, const char *const *layers,
    size_t n, const struct hypr_squash_opts *o, char *path, size_t pathlen,
    struct hypr_err *e);

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
