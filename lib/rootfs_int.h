/* rootfs_int.h - what rootfs.c (flattening), rootfs_read.c and squash.c
 * share; not an interface for others. */
#ifndef HYPR_ROOTFS_INT_H
#define HYPR_ROOTFS_INT_H

#include <stddef.h>
#include <archive.h>
#include "cas.h"
#include "err.h"

#define IOBUF (256 * 1024)

/* libarchive's message, or "truncated or corrupt tar" when it has none. */
const char *aerr(struct archive *a);
/* A tar reader (any filter) on fd, names as bytes; NULL with e set. */
struct archive *open_layer(int fd, struct hypr_err *e);
/* Open the blobs of a chain (lowest first) into fds. */
int open_blobs(const struct hypr_root *r, const char *const *layers, size_t n,
    int *fds, struct hypr_err *e);
void close_files(int *fds, size_t n);
/* $TMPDIR or /tmp. */
const char *tmp_dir(void);

#endif
