/* rootfs_write.c - the second half of a flatten (rootfs.c): the visible
 * entries, sorted, written as one pax tar whose file data comes from the
 * layers and the spill where rootfs.c found it. A hard-link group is
 * written as a regular file at its first name and links at the others. */
#include "rootfs_flat.h"
#include "rootfs_int.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "sparse.h"

void
entry_of(struct archive_entry *ent, const struct meta *m)
{
	archive_entry_clear(ent);
	archive_entry_set_uid(ent, m->uid);
	archive_entry_set_gid(ent, m->gid);
	archive_entry_set_mode(ent, m->mode);
	if (m->mtime_set)
		archive_entry_set_mtime(ent, m->mtime, m->mtime_ns);
	if ((m->mode & AE_IFMT) == AE_IFCHR || (m->mode & AE_IFMT) == AE_IFBLK)
		archive_entry_set_rdev(ent, m->rdev);
	if (m->symlink)
		archive_entry_set_symlink(ent, m->symlink);
	for (size_t o = 0; o < m->xlen;) {
		const char *name = m->xattrs + o;
		size_t nl = strlen(name) + 1;
		uint32_t l32;

		memcpy(&l32, m->xattrs + o + nl, 4);
		archive_entry_xattr_add_entry(ent, name, m->xattrs + o + nl + 4, l32);
		o += nl + 4 + l32;
	}
}

/* The regular file (or other non-link) a hard link ends at. */
static struct node *
link_source(struct node *nd)
{
	for (int depth = 0; nd && nd->link && depth < 64; depth++)
		nd = nd->link_to;
	return nd && !nd->link ? nd : NULL;
}

/* The tar's bytes. Those of a mapped layer range go into the pipe by
 * reference (vmsplice): the layers and the spill are never written again
 * while the flatten runs, and tar2sqfs reads the pipe; every other byte
 * (libarchive's headers, its block buffer) is copied, being reused. */
static la_ssize_t
out_write(struct archive *a, void *data, const void *buf, size_t len)
{
	struct out *o = data;
	const char *p = buf;
	ssize_t r;

	if (o->map && p >= o->map && len <= o->map_len - (size_t)(p - o->map)) {
		struct iovec iov = { .iov_base = (void *)p, .iov_len = len };

		while ((r = vmsplice(o->fd, &iov, 1, 0)) < 0 && errno == EINTR)
			;
		if (r >= 0 || errno != EINVAL)
			goto done;
		o->pipe = 0;	/* a pipe vmsplice refuses: copies from now on */
	}
	while ((r = write(o->fd, p, len)) < 0 && errno == EINTR)
		;
done:
	if (r < 0)
		archive_set_error(a, errno, "write");
	return r;
}

/* Layer ranges from this size on are mapped, not read: 50 MiB copied in
 * this process (pread, then write into the pipe) cost ~30 ms more. */
#define MAP_MIN (1 << 20)

static int
write_mapped(struct flat *f, struct archive *w, const char *path, int fd, off_t off,
    int64_t left, struct hypr_err *e)
{
	long pg = sysconf(_SC_PAGESIZE);
	off_t base = off - off % (pg > 0 ? pg : 4096);
	size_t delta = (size_t)(off - base), len = delta + (size_t)left;
	struct stat st;
	char *m;
	int rc = 0;

	/* a layer file that shrank would be SIGBUS, not EIO */
	if (fstat(fd, &st) < 0 || st.st_size < off + left ||
	    (m = mmap(NULL, len, PROT_READ, MAP_SHARED, fd, base)) == MAP_FAILED)
		return 1;
	madvise(m, len, MADV_SEQUENTIAL);
	f->out.map = m;
	f->out.map_len = len;
	for (const char *p = m + delta; left > 0 && rc == 0;) {
		size_t want = left > (16 << 20) ? (16 << 20) : (size_t)left;

		if (archive_write_data(w, p, want) != (la_ssize_t)want)
			rc = hypr_err_set(e, HYPR_EXIT_SYSTEM, "writing %s: %s",
			    path, archive_error_string(w));
		p += want;
		left -= (int64_t)want;
	}
	f->out.map = NULL;
	munmap(m, len);
	return rc;
}

static int
write_data_range(struct flat *f, struct archive *w, const char *path, int fd, off_t off,
    int64_t left, struct hypr_err *e)
{
	int mapped;

	if (f->out.pipe && left >= MAP_MIN &&
	    (mapped = write_mapped(f, w, path, fd, off, left, e)) <= 0)
		return mapped;
	while (left > 0) {
		size_t want = left > IOBUF ? IOBUF : (size_t)left;
		ssize_t r = pread(fd, f->buf, want, off);

		if (r <= 0) {
			if (r == 0)
				errno = EIO;	/* a layer file shrank */
			return hypr_err_errno(e, HYPR_EXIT_SYSTEM, "reading the data of %s", path);
		}
		if (archive_write_data(w, f->buf, (size_t)r) != r)
			return hypr_err_set(e, HYPR_EXIT_SYSTEM, "writing %s: %s",
			    path, archive_error_string(w));
		off += r;
		left -= r;
	}
	return 0;
}

/* A file's data from the spill; with holes, as a sparse map (sparse.h). */
static int
write_file_data(struct flat *f, struct archive *w, struct archive_entry *ent,
    const struct node *src, const char *path, struct hypr_err *e)
{
	struct hypr_extent *v = NULL;
	ssize_t n = 0;
	int64_t at = 0;
	int rc = -1;

	if (src->sparse) {
		if ((n = hypr_sparse_map(f->spill, src->off, src->size, &v)) < 0)
			return hypr_err_errno(e, HYPR_EXIT_SYSTEM, "reading spill file");
		if (hypr_sparse_has_hole(v, (size_t)n, src->size))
			hypr_sparse_entry(ent, v, (size_t)n, src->size);
		else
			n = -1;
	}
	if (archive_write_header(w, ent) < ARCHIVE_WARN) {
		hypr_err_set(e, HYPR_EXIT_SYSTEM, "writing %s: %s", path, archive_error_string(w));
		goto out;
	}
	if (!src->sparse || n < 0) {
		rc = write_data_range(f, w, path, src->fd, src->off, src->size, e);
		goto out;
	}
	for (ssize_t i = 0; i <= n; i++) {
		int64_t off = i < n ? v[i].off : src->size, len = i < n ? v[i].len : 0;

		if (off > at && hypr_sparse_write_hole(w, off - at) < 0) {
			hypr_err_set(e, HYPR_EXIT_SYSTEM, "writing %s: %s", path,
			    archive_error_string(w));
			goto out;
		}
		if (write_data_range(f, w, path, src->fd, src->off + (off_t)off, len, e) < 0)
			goto out;
		at = off + len;
	}
	rc = 0;
out:
	free(v);
	return rc;
}

static int
write_node(struct flat *f, struct archive *w, struct node *nd, struct hypr_err *e)
{
	struct node *src = nd->link ? link_source(nd) : nd;
	struct archive_entry *ent = f->ent;
	const char *outname = *nd->path ? nd->path : "./";

	if (src == NULL)
		return hypr_err_set(e, HYPR_EXIT_INPUT,
		    "hard link '%s' -> '%s': target not in any layer", nd->path, nd->link);
	/* no file system has them: the group would be written as a directory
	 * with hard links to it (found by tests/fuzz/fuzz_rootfs.c) */
	if (nd->link && (src->m.mode & AE_IFMT) == AE_IFDIR)
		return hypr_err_set(e, HYPR_EXIT_INPUT,
		    "hard link '%s' -> '%s': a directory", nd->path, nd->link);
	entry_of(ent, &src->m);
	archive_entry_set_pathname(ent, outname);
	if (src->first) {
		/* the inode is already written under another name */
		archive_entry_set_hardlink(ent, *src->first->path ? src->first->path : "./");
		archive_entry_set_size(ent, 0);
	} else {
		src->first = nd;
		if ((src->m.mode & AE_IFMT) == AE_IFREG) {
			if (!src->spilled)
				return hypr_err_set(e, HYPR_EXIT_SYSTEM,
				    "%s: data not read (internal error)", nd->path);
			archive_entry_set_size(ent, src->size);
			return write_file_data(f, w, ent, src, nd->path, e);
		}
		archive_entry_set_size(ent, 0);
	}
	/* ARCHIVE_WARN: a name not valid in the locale, written as binary */
	if (archive_write_header(w, ent) < ARCHIVE_WARN)
		return hypr_err_set(e, HYPR_EXIT_SYSTEM, "writing %s: %s", nd->path,
		    archive_error_string(w));
	return 0;
}
int
flat_write(struct flat *f, struct node *const *vis, size_t nv, int out_fd,
    struct hypr_err *e)
{
	struct archive *w = archive_write_new();
	struct stat st;
	int rc = -1;

	if (w == NULL)
		return hypr_err_set(e, HYPR_EXIT_SYSTEM, "out of memory");
	archive_write_set_format_pax_restricted(w);
	archive_write_set_bytes_per_block(w, 65536);
	archive_write_set_bytes_in_last_block(w, 1);
	f->out.fd = out_fd;
	f->out.pipe = fstat(out_fd, &st) == 0 && S_ISFIFO(st.st_mode);
	if (archive_write_open2(w, &f->out, NULL, out_write, NULL, NULL) != ARCHIVE_OK) {
		hypr_err_set(e, HYPR_EXIT_SYSTEM, "%s", archive_error_string(w));
		goto out;
	}
	for (size_t i = 0; i < nv; i++)
		if (write_node(f, w, vis[i], e) < 0)
			goto out;
	if (archive_write_close(w) != ARCHIVE_OK) {
		hypr_err_set(e, HYPR_EXIT_SYSTEM, "writing rootfs tar: %s",
		    archive_error_string(w));
		goto out;
	}
	rc = 0;
out:
	archive_write_free(w);
	return rc;
}
