/* guest-diff.c - a layer's diff out as an OCI layer tar, inside the build VM.
 *
 * libarchive is linked statically into hypr-init. Its pax writer references
 * __archive_write_entry_filetype_unsupported, which lives in the object that
 * also holds the table of every format writer (xar pulls in libxml2 and ICU,
 * ~30 MB that the initramfs must not carry). Defining that one function here
 * keeps the table object out of the link. */
#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "guest.h"
#include "path.h"
#include "sparse.h"

#define EFTYPE_UNSUPPORTED EINVAL

void __archive_write_entry_filetype_unsupported(struct archive *a,
    struct archive_entry *entry, const char *format);

void
__archive_write_entry_filetype_unsupported(struct archive *a,
    struct archive_entry *entry, const char *format)
{
	archive_set_error(a, EFTYPE_UNSUPPORTED, "%s: %s: unsupported file type",
	    format, archive_entry_pathname(entry));
}

/* ---- diff out ---- */

struct out {
	int fd;
	uint64_t off;		/* disk offset of buf[0] */
	uint64_t end;		/* the out region ends here (the in region follows) */
	unsigned char *buf;	/* GUEST_BUF bytes, 4 KiB aligned */
	size_t used;
	uint64_t total;
	int err;
};

/* n bytes at p to the io disk at o->off (O_DIRECT: p, n and the offset
 * are multiples of the 512-byte sector) */
static int
out_pwrite(struct out *o, const unsigned char *p, size_t n)
{
	size_t done = 0;

	if (o->off + n > o->end) {
		o->err = ENOSPC;
		return -1;
	}
	while (done < n) {
		ssize_t w = pwrite(o->fd, p + done, n - done, (off_t)(o->off + done));
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			o->err = w < 0 ? errno : EIO;
			return -1;
		}
		done += (size_t)w;
	}
	o->off += n;
	return 0;
}

static int
out_flush(struct out *o, size_t n)
{
	if (out_pwrite(o, o->buf, n) < 0)
		return -1;
	o->used = 0;
	return 0;
}

static la_ssize_t
out_write(struct archive *a, void *arg, const void *p, size_t n)
{
	struct out *o = arg;
	const unsigned char *s = p;
	size_t left = n;

	if (o->used == 0 && n % 512 == 0 && n > 0 && ((uintptr_t)s & 511) == 0 &&
	    (s < o->buf || s >= o->buf + GUEST_BUF)) {
		/* sector-aligned file data mapped by write_data: the disk
		 * takes it from the page cache, no copy in the guest */
		if (out_pwrite(o, s, n) < 0) {
			archive_set_error(a, o->err, "writing the io disk");
			return -1;
		}
		o->total += n;
		return (la_ssize_t)n;
	}
	if (s == o->buf + o->used && n <= GUEST_BUF - o->used) {
		/* file data read straight into place by write_data: no copy */
		o->used += n;
		o->total += n;
		if (o->used == GUEST_BUF && out_flush(o, GUEST_BUF) < 0) {
			archive_set_error(a, o->err, "writing the io disk");
			return -1;
		}
		return (la_ssize_t)n;
	}

	while (left > 0) {
		size_t k = GUEST_BUF - o->used;
		if (k > left)
			k = left;
		memcpy(o->buf + o->used, s, k);
		o->used += k;
		s += k;
		left -= k;
		if (o->used == GUEST_BUF && out_flush(o, GUEST_BUF) < 0) {
			archive_set_error(a, o->err, "writing the io disk");
			return -1;
		}
	}
	o->total += n;
	return (la_ssize_t)n;
}

struct link {
	ino_t ino;
	char *path;
};

static int
sb_set(struct sbuf *b, size_t len, const char *add)
{
	size_t n = strlen(add);

	if (len + n + 1 > b->cap) {
		size_t c = b->cap ? b->cap : 256;
		char *s;
		while (c < len + n + 1)
			c *= 2;
		if (!(s = realloc(b->s, c)))
			return -1;
		b->s = s;
		b->cap = c;
	}
	memcpy(b->s + len, add, n + 1);
	b->len = len + n;
	return 0;
}

/* One directory being listed: the explicit stack of the walk (no recursion,
 * so the depth of a tree costs heap, never PID 1's stack). */
struct frame {
	char **names;
	size_t n, i;
	size_t plen;		/* length of the path prefix "a/b/" */
	dev_t dev;		/* of the directory, to check ".." on the way up */
	ino_t ino;
};

struct diff {
	struct archive *a;
	struct out *out;
	struct archive_entry *ent;
	int64_t epoch;
	unsigned char *fbuf;
	struct link *links;
	size_t nlinks, caplinks;
	struct sbuf path, tpath;	/* entry path; whiteout/opaque path */
	char *xlist, *xval, **xnames;	/* entry_xattrs buffers (heap, once) */
	char *target;			/* readlink buffer */
	char *err;
	size_t errlen;
};

#define XLIST_MAX 65536
#define XVAL_MAX 65536
#define XNAMES_MAX 512

static int
cmpname(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void
entry_times(struct diff *d, const struct stat *st)
{
	time_t t = st->st_mtime;

	if (d->epoch >= 0 && t > d->epoch)
		t = (time_t)d->epoch;
	archive_entry_set_mtime(d->ent, t, 0);
}

/* xattrs except trusted.overlay.*, sorted by name. Sets *opaque. */
static int
entry_xattrs(struct diff *d, int dfd, const char *name, const char *path, int *opaque)
{
	char procpath[64], *list = d->xlist, **names = d->xnames, *val = d->xval;
	ssize_t n;
	size_t cnt = 0;
	int fd;

	*opaque = 0;
	/* *xattr need a path: follow /proc/self/fd/N of an O_PATH fd, so
	 * names stay relative to dfd (symlinks never get here). */
	fd = openat(dfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		guest_seterr(d->err, d->errlen, "%s: open: %s", path, strerror(errno));
		return -1;
	}
	snprintf(procpath, sizeof procpath, "/proc/self/fd/%d", fd);
	n = listxattr(procpath, list, XLIST_MAX);
	if (n < 0) {
		close(fd);
		return 0;
	}
	for (char *p = list; p < list + n && cnt < XNAMES_MAX; p += strlen(p) + 1)
		names[cnt++] = p;
	qsort(names, cnt, sizeof *names, cmpname);
	for (size_t i = 0; i < cnt; i++) {
		ssize_t v;
		if (strncmp(names[i], "trusted.overlay.", 16) == 0) {
			if (strcmp(names[i], "trusted.overlay.opaque") == 0) {
				v = getxattr(procpath, names[i], val, XVAL_MAX);
				if (v == 1 && val[0] == 'y')
					*opaque = 1;
			}
			continue;
		}
		v = getxattr(procpath, names[i], val, XVAL_MAX);
		if (v < 0)
			continue;
		archive_entry_xattr_add_entry(d->ent, names[i], val, (size_t)v);
	}
	close(fd);
	return 0;
}

static int
write_header(struct diff *d, const char *path)
{
	/* ARCHIVE_WARN: a name that is not UTF-8 in this (C) locale; the pax
	 * writer wrote it as bytes under hdrcharset=BINARY, as OCI tars carry
	 * names (docker stores them too) */
	if (archive_write_header(d->a, d->ent) < ARCHIVE_WARN) {
		guest_seterr(d->err, d->errlen, "%s: %s", path, archive_error_string(d->a));
		return -1;
	}
	return 0;
}

#define MAP_MIN (64 << 10)

/* The sector-aligned head of a large file straight from its page cache:
 * mapped, and written O_DIRECT from the mapping (reading it into the out
 * buffer costs a copy, the largest cost of a diff under TCG). The out
 * buffer is flushed first: the tar is at a 512-byte boundary after a
 * header. *left is what remains for the read path (the tail < 512 bytes;
 * all of it when the file cannot be mapped as it was stat'ed). */
static int
write_mapped(struct diff *d, int fd, const char *path, off_t size, off_t *left)
{
	struct out *o = d->out;
	struct stat st;
	size_t head = (size_t)size & ~(size_t)511, done = 0;
	unsigned char *map;

	if (size < MAP_MIN || (off_t)(size_t)size != size || o->used % 512 ||
	    fstat(fd, &st) < 0 || st.st_size != size)
		return 0;
	map = mmap(NULL, (size_t)size, PROT_READ, MAP_SHARED, fd, 0);
	if (map == MAP_FAILED)
		return 0;
	if (o->used && out_flush(o, o->used) < 0) {
		guest_seterr(d->err, d->errlen, "writing the io disk: %s", strerror(o->err));
		munmap(map, (size_t)size);
		return -1;
	}
	while (done < head) {
		size_t k = head - done > GUEST_BUF ? GUEST_BUF : head - done;
		if (archive_write_data(d->a, map + done, k) != (la_ssize_t)k) {
			guest_seterr(d->err, d->errlen, "%s: %s", path, archive_error_string(d->a));
			munmap(map, (size_t)size);
			return -1;
		}
		done += k;
	}
	munmap(map, (size_t)size);
	if (lseek(fd, (off_t)head, SEEK_SET) < 0) {
		guest_seterr(d->err, d->errlen, "%s: seek: %s", path, strerror(errno));
		return -1;
	}
	*left = size - (off_t)head;
	return 0;
}

static int
write_data(struct diff *d, int dfd, const char *name, const char *path, off_t size)
{
	int fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	off_t left = size;

	if (fd < 0) {
		guest_seterr(d->err, d->errlen, "%s: open: %s", path, strerror(errno));
		return -1;
	}
	if (write_mapped(d, fd, path, size, &left) < 0) {
		close(fd);
		return -1;
	}
	while (left > 0) {
		/* Read into the out buffer at its fill point; libarchive hands the
		 * same pointer to out_write (no blocking: bytes_per_block 0). */
		struct out *o = d->out;
		size_t room = GUEST_BUF - o->used, want;
		unsigned char *dst = o->buf + o->used;
		ssize_t r;

		want = left > (off_t)room ? room : (size_t)left;
		r = read(fd, dst, want);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			/* file shrank: pad, the header already promised size bytes */
			memset(dst, 0, want);
			r = (ssize_t)want;
		}
		if (archive_write_data(d->a, dst, (size_t)r) != r) {
			guest_seterr(d->err, d->errlen, "%s: %s", path, archive_error_string(d->a));
			close(fd);
			return -1;
		}
		left -= r;
	}
	close(fd);
	return 0;
}

/* A file with holes: only its data regions are read and written; the
 * holes are a sparse map in the header (sparse.h). */
static int
write_sparse(struct diff *d, int fd, const char *path, const struct hypr_extent *v,
    size_t n, off_t size)
{
	int64_t at = 0;

	for (size_t i = 0; i <= n; i++) {
		int64_t off = i < n ? v[i].off : (int64_t)size, left = i < n ? v[i].len : 0;
		if (off > at && hypr_sparse_write_hole(d->a, off - at) < 0) {
			guest_seterr(d->err, d->errlen, "%s: %s", path, archive_error_string(d->a));
			return -1;
		}
		while (left > 0) {
			struct out *o = d->out;
			size_t room = GUEST_BUF - o->used, want = left > (int64_t)room ? room : (size_t)left;
			unsigned char *dst = o->buf + o->used;
			ssize_t r = pread(fd, dst, want, (off_t)off);
			if (r < 0 && errno == EINTR)
				continue;
			if (r <= 0) {
				memset(dst, 0, want);	/* shrank: the header promised it */
				r = (ssize_t)want;
			}
			if (archive_write_data(d->a, dst, (size_t)r) != r) {
				guest_seterr(d->err, d->errlen, "%s: %s", path, archive_error_string(d->a));
				return -1;
			}
			off += r;
			left -= r;
		}
		at = i < n ? v[i].off + v[i].len : (int64_t)size;
	}
	return 0;
}

static const char *
link_find(struct diff *d, ino_t ino)
{
	for (size_t i = 0; i < d->nlinks; i++)
		if (d->links[i].ino == ino)
			return d->links[i].path;
	return NULL;
}

static int
link_add(struct diff *d, ino_t ino, const char *path)
{
	if (d->nlinks == d->caplinks) {
		size_t c = d->caplinks ? d->caplinks * 2 : 64;
		struct link *l = realloc(d->links, c * sizeof *l);
		if (!l)
			return -1;
		d->links = l;
		d->caplinks = c;
	}
	d->links[d->nlinks].ino = ino;
	d->links[d->nlinks].path = strdup(path);
	if (!d->links[d->nlinks].path)
		return -1;
	d->nlinks++;
	return 0;
}

/* The entry name in directory dfd, whose path is d->path (prefix of
 * length plen, then name). A directory is opened into *sub for the walk
 * to descend into. */
static int
one(struct diff *d, int dfd, const char *name, size_t plen, int *sub)
{
	const char *path = d->path.s;
	struct stat st;
	int opaque = 0;

	if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
		guest_seterr(d->err, d->errlen, "%s: stat: %s", path, strerror(errno));
		return -1;
	}
	archive_entry_clear(d->ent);
	archive_entry_set_uid(d->ent, st.st_uid);
	archive_entry_set_gid(d->ent, st.st_gid);
	entry_times(d, &st);

	if (S_ISCHR(st.st_mode) && st.st_rdev == makedev(0, 0)) {
		/* overlay whiteout -> .wh.NAME */
		if (sb_set(&d->tpath, 0, path) < 0 || sb_set(&d->tpath, plen, ".wh.") < 0 ||
		    sb_set(&d->tpath, d->tpath.len, name) < 0) {
			guest_seterr(d->err, d->errlen, "out of memory");
			return -1;
		}
		archive_entry_set_pathname(d->ent, d->tpath.s);
		archive_entry_set_filetype(d->ent, AE_IFREG);
		archive_entry_set_perm(d->ent, 0600);
		archive_entry_set_size(d->ent, 0);
		return write_header(d, d->tpath.s);
	}
	if (S_ISSOCK(st.st_mode))
		return 0;	/* sockets are not layer content (Docker skips them) */
	if (!strncmp(name, ".wh.", 4)) {
		/* in a layer tar it would delete a file of the image */
		guest_seterr(d->err, d->errlen, "/%s: a name starting with .wh. is reserved for layer whiteouts",
		    path);
		return -1;
	}
	archive_entry_set_pathname(d->ent, path);
	archive_entry_set_mode(d->ent, st.st_mode);
	if (!S_ISLNK(st.st_mode) && entry_xattrs(d, dfd, name, path, &opaque) < 0)
		return -1;

	if (S_ISDIR(st.st_mode)) {
		if (write_header(d, path) < 0)
			return -1;
		if (opaque) {
			if (sb_set(&d->tpath, 0, path) < 0 ||
			    sb_set(&d->tpath, d->tpath.len, "/.wh..wh..opq") < 0) {
				guest_seterr(d->err, d->errlen, "out of memory");
				return -1;
			}
			archive_entry_clear(d->ent);
			archive_entry_set_pathname(d->ent, d->tpath.s);
			archive_entry_set_filetype(d->ent, AE_IFREG);
			archive_entry_set_perm(d->ent, st.st_mode & 07777);
			archive_entry_set_uid(d->ent, st.st_uid);
			archive_entry_set_gid(d->ent, st.st_gid);
			entry_times(d, &st);
			archive_entry_set_size(d->ent, 0);
			if (write_header(d, d->tpath.s) < 0)
				return -1;
		}
		*sub = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (*sub < 0) {
			guest_seterr(d->err, d->errlen, "%s: open: %s", path, strerror(errno));
			return -1;
		}
		return 0;
	}
	if (S_ISLNK(st.st_mode)) {
		ssize_t n = readlinkat(dfd, name, d->target, PATH_MAX);
		if (n < 0) {
			guest_seterr(d->err, d->errlen, "%s: readlink: %s", path, strerror(errno));
			return -1;
		}
		d->target[n] = 0;
		archive_entry_set_symlink(d->ent, d->target);
		return write_header(d, path);
	}
	if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode)) {
		archive_entry_set_rdev(d->ent, st.st_rdev);
		return write_header(d, path);
	}
	if (S_ISFIFO(st.st_mode))
		return write_header(d, path);
	/* regular file */
	if (st.st_nlink > 1) {
		const char *first = link_find(d, st.st_ino);
		if (first) {
			archive_entry_set_hardlink(d->ent, first);
			archive_entry_set_size(d->ent, 0);
			return write_header(d, path);
		}
		if (link_add(d, st.st_ino, path) < 0) {
			guest_seterr(d->err, d->errlen, "out of memory");
			return -1;
		}
	}
	archive_entry_set_size(d->ent, st.st_size);
	if ((int64_t)st.st_blocks * 512 < (int64_t)st.st_size) {
		/* fewer blocks than bytes: maybe holes */
		struct hypr_extent *v = NULL;
		ssize_t nv;
		int fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC), rc;

		if (fd < 0) {
			guest_seterr(d->err, d->errlen, "%s: open: %s", path, strerror(errno));
			return -1;
		}
		if ((nv = hypr_sparse_map(fd, 0, st.st_size, &v)) < 0) {
			guest_seterr(d->err, d->errlen, "%s: seek: %s", path, strerror(errno));
			close(fd);
			return -1;
		}
		if (hypr_sparse_has_hole(v, (size_t)nv, st.st_size)) {
			hypr_sparse_entry(d->ent, v, (size_t)nv, st.st_size);
			rc = write_header(d, path) < 0 ? -1 :
			    write_sparse(d, fd, path, v, (size_t)nv, st.st_size);
			free(v);
			close(fd);
			return rc;
		}
		free(v);
		close(fd);
	}
	if (write_header(d, path) < 0)
		return -1;
	return write_data(d, dfd, name, path, st.st_size);
}

/* The names in directory dfd (dfd stays open), sorted bytewise. */
static int
list_dir(struct diff *d, int dfd, const char *path, struct frame *f)
{
	int fd = openat(dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *dir = fd < 0 ? NULL : fdopendir(fd);
	struct dirent *de;
	struct stat st;
	size_t cap = 0;

	f->names = NULL;
	f->n = f->i = 0;
	if (!dir || fstat(dfd, &st) < 0) {
		guest_seterr(d->err, d->errlen, "%s: opendir: %s", path[0] ? path : ".", strerror(errno));
		if (dir)
			closedir(dir);
		else if (fd >= 0)
			close(fd);
		return -1;
	}
	f->dev = st.st_dev;
	f->ino = st.st_ino;
	while ((de = readdir(dir))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (f->n == cap) {
			cap = cap ? cap * 2 : 32;
			char **nn = realloc(f->names, cap * sizeof *nn);
			if (!nn)
				goto oom;
			f->names = nn;
		}
		if (!(f->names[f->n] = strdup(de->d_name)))
			goto oom;
		f->n++;
	}
	closedir(dir);
	qsort(f->names, f->n, sizeof *f->names, cmpname);
	return 0;
oom:
	closedir(dir);
	guest_seterr(d->err, d->errlen, "out of memory");
	return -1;
}

static void
frame_free(struct frame *f)
{
	for (size_t i = 0; i < f->n; i++)
		free(f->names[i]);
	free(f->names);
	f->names = NULL;
	f->n = 0;
}

/* Depth first, names sorted, with an explicit stack and one directory fd
 * at a time: going up is openat(fd, ".."), checked against the frame's
 * dev/ino. Consumes dfd. */
static int
walk(struct diff *d, int dfd)
{
	struct frame *st = NULL;
	size_t depth = 0, cap = 0;
	int rc = -1;

	if (sb_set(&d->path, 0, "") < 0)
		goto oom;
	cap = 64;
	if (!(st = calloc(cap, sizeof *st)))
		goto oom;
	if (list_dir(d, dfd, "", &st[0]) < 0)
		goto out;
	st[0].plen = 0;
	depth = 1;
	while (depth > 0) {
		struct frame *f = &st[depth - 1];
		int sub = -1;

		if (f->i == f->n) {
			frame_free(f);
			if (--depth > 0) {
				struct stat sb;
				int up = openat(dfd, "..", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
				if (up < 0 || fstat(up, &sb) < 0 || sb.st_dev != st[depth - 1].dev ||
				    sb.st_ino != st[depth - 1].ino) {
					guest_seterr(d->err, d->errlen, "%.*s: directory moved during the diff",
					    (int)st[depth - 1].plen, d->path.s);
					if (up >= 0)
						close(up);
					goto out;
				}
				close(dfd);
				dfd = up;
			}
			continue;
		}
		const char *name = f->names[f->i++];
		if (sb_set(&d->path, f->plen, name) < 0)
			goto oom;
		if (one(d, dfd, name, f->plen, &sub) < 0)
			goto out;
		if (sub < 0)
			continue;
		if (sb_set(&d->path, d->path.len, "/") < 0) {
			close(sub);
			goto oom;
		}
		if (depth == cap) {
			struct frame *ns = realloc(st, 2 * cap * sizeof *ns);
			if (!ns) {
				close(sub);
				goto oom;
			}
			st = ns;
			cap *= 2;
		}
		if (list_dir(d, sub, d->path.s, &st[depth]) < 0) {
			close(sub);
			goto out;
		}
		st[depth].plen = d->path.len;
		depth++;
		close(dfd);
		dfd = sub;
	}
	rc = 0;
	goto out;
oom:
	guest_seterr(d->err, d->errlen, "out of memory");
out:
	for (size_t i = 0; i < depth; i++)
		frame_free(&st[i]);
	free(st);
	close(dfd);
	return rc;
}

int
guest_diff(const char *layerdir, int outfd, uint64_t off, uint64_t end, int64_t epoch,
    uint64_t *len, char *err, size_t errlen)
{
	struct out o = { .fd = outfd, .off = off, .end = end };
	struct diff d = { .epoch = epoch, .err = err, .errlen = errlen, .out = &o };
	int rc = -1, dfd;

	if (posix_memalign((void **)&o.buf, 4096, GUEST_BUF) ||
	    posix_memalign((void **)&d.fbuf, 4096, GUEST_BUF) ||
	    !(d.xlist = malloc(XLIST_MAX)) || !(d.xval = malloc(XVAL_MAX)) ||
	    !(d.xnames = malloc(XNAMES_MAX * sizeof *d.xnames)) ||
	    !(d.target = malloc(PATH_MAX + 1))) {
		guest_seterr(err, errlen, "out of memory");
		goto out;
	}
	d.a = archive_write_new();
	d.ent = archive_entry_new();
	if (!d.a || !d.ent) {
		guest_seterr(err, errlen, "out of memory");
		goto out;
	}
	archive_write_set_format_pax_restricted(d.a);
	archive_write_set_format_option(d.a, "pax", "xattrheader", "SCHILY");
	archive_write_add_filter_none(d.a);
	archive_write_set_bytes_per_block(d.a, 0);
	if (archive_write_open(d.a, &o, NULL, out_write, NULL) != ARCHIVE_OK) {
		guest_seterr(err, errlen, "tar: %s", archive_error_string(d.a));
		goto out;
	}
	dfd = open(layerdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0) {
		guest_seterr(err, errlen, "%s: %s", layerdir, strerror(errno));
		goto out;
	}
	if (walk(&d, dfd) < 0)
		goto out;
	if (archive_write_close(d.a) != ARCHIVE_OK) {
		guest_seterr(err, errlen, "tar: %s", archive_error_string(d.a));
		goto out;
	}
	if (o.used) {
		size_t n = (o.used + 4095) & ~(size_t)4095;
		memset(o.buf + o.used, 0, n - o.used);
		if (out_flush(&o, n) < 0) {
			guest_seterr(err, errlen, "writing the io disk: %s", strerror(o.err));
			goto out;
		}
	}
	if (fdatasync(outfd) < 0 && errno != EINVAL) {
		guest_seterr(err, errlen, "io disk: fdatasync: %s", strerror(errno));
		goto out;
	}
	*len = o.total;
	rc = 0;
out:
	if (d.a)
		archive_write_free(d.a);
	if (d.ent)
		archive_entry_free(d.ent);
	for (size_t i = 0; i < d.nlinks; i++)
		free(d.links[i].path);
	free(d.links);
	free(o.buf);
	free(d.fbuf);
	free(d.xlist);
	free(d.xval);
	free(d.xnames);
	free(d.target);
	free(d.path.s);
	free(d.tpath.s);
	return rc;
}
