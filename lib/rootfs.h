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

#endif
