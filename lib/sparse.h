/* sparse.h - files with holes in tar streams. A hole is never written out
 * (it would fill a disk with zeros) nor lost (a file that ends in a hole
 * keeps its size): a file's data regions come from SEEK_DATA/SEEK_HOLE and
 * go into a PAX tar as a GNU sparse 1.0 map (what libarchive, GNU tar, Go's
 * archive/tar and squashfs-tools-ng read). Used by the host and the guest. */
#ifndef HYPR_SPARSE_H
#define HYPR_SPARSE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct archive;
struct archive_entry;

/* One data region of a file: [off, off + len). */
struct hypr_extent {
	int64_t off, len;
};

/* The data regions of fd within [base, base + size), as offsets from base.
 * Returns the number of extents (*v malloc'd, may be NULL when 0), or -1
 * with errno. A filesystem without SEEK_DATA gives one extent (no holes). */
ssize_t hypr_sparse_map(int fd, int64_t base, int64_t size, struct hypr_extent **v);
/* Whether the extents leave a hole in [0, size) (and so need a sparse map). */
int hypr_sparse_has_hole(const struct hypr_extent *v, size_t n, int64_t size);
/* Give ent the sparse map of v (plus the zero-length end marker a trailing
 * hole needs). Call before archive_write_header; ent's size is the logical size. */
void hypr_sparse_entry(struct archive_entry *ent, const struct hypr_extent *v, size_t n,
    int64_t size);
/* Write len bytes of hole to a PAX writer whose current entry has a sparse
 * map covering them: libarchive skips hole bytes without reading them, so
 * this costs one call per GiB and no memory. 0, or -1 (archive error). */
int hypr_sparse_write_hole(struct archive *w, int64_t len);

#endif
