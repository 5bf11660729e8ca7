/* guest-tar.c - layer diff out and layer import in, inside the build VM.
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

static void
seterr(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/* ---- diff out ---- */

struct out {
	int fd;
	uint64_t off;		/* disk offset of buf[0] */
	unsigned char *buf;	/* GUEST_BUF bytes, 4 KiB aligned */
	size_t used;
	uint64_t total;
	int err;
};

/* n bytes at p to the out disk at o->off (O_DIRECT: p, n and the offset
 * are multiples of the 512-byte sector) */
static int
out_pwrite(struct out *o, const unsigned char *p, size_t n)
{
	size_t done = 0;

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
			archive_set_error(a, o->err, "writing the out disk");
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
			archive_set_error(a, o->err, "writing the out disk");
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
			archive_set_error(a, o->err, "writing the out disk");
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

/* growable string: paths have no length limit (a tree may be deeper than
 * PATH_MAX; every file operation is relative to a directory fd) */
struct sbuf {
	char *s;
	size_t len, cap;
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
		seterr(d->err, d->errlen, "%s: open: %s", path, strerror(errno));
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
		seterr(d->err, d->errlen, "%s: %s", path, archive_error_string(d->a));
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
		seterr(d->err, d->errlen, "writing the out disk: %s", strerror(o->err));
		munmap(map, (size_t)size);
		return -1;
	}
	while (done < head) {
		size_t k = head - done > GUEST_BUF ? GUEST_BUF : head - done;
		if (archive_write_data(d->a, map + done, k) != (la_ssize_t)k) {
			seterr(d->err, d->errlen, "%s: %s", path, archive_error_string(d->a));
			munmap(map, (size_t)size);
			return -1;
		}
		done += k;
	}
	munmap(map, (size_t)size);
	if (lseek(fd, (off_t)head, SEEK_SET) < 0) {
		seterr(d->err, d->errlen, "%s: seek: %s", path, strerror(errno));
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
		seterr(d->err, d->errlen, "%s: open: %s", path, strerror(errno));
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
			seterr(d->err, d->errlen, "%s: %s", path, archive_error_string(d->a));
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
			seterr(d->err, d->errlen, "%s: %s", path, archive_error_string(d->a));
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
				seterr(d->err, d->errlen, "%s: %s", path, archive_error_string(d->a));
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
		seterr(d->err, d->errlen, "%s: stat: %s", path, strerror(errno));
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
			seterr(d->err, d->errlen, "out of memory");
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
		seterr(d->err, d->errlen, "/%s: a name starting with .wh. is reserved for layer whiteouts",
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
				seterr(d->err, d->errlen, "out of memory");
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
			seterr(d->err, d->errlen, "%s: open: %s", path, strerror(errno));
			return -1;
		}
		return 0;
	}
	if (S_ISLNK(st.st_mode)) {
		ssize_t n = readlinkat(dfd, name, d->target, PATH_MAX);
		if (n < 0) {
			seterr(d->err, d->errlen, "%s: readlink: %s", path, strerror(errno));
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
			seterr(d->err, d->errlen, "out of memory");
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
			seterr(d->err, d->errlen, "%s: open: %s", path, strerror(errno));
			return -1;
		}
		if ((nv = hypr_sparse_map(fd, 0, st.st_size, &v)) < 0) {
			seterr(d->err, d->errlen, "%s: seek: %s", path, strerror(errno));
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
		seterr(d->err, d->errlen, "%s: opendir: %s", path[0] ? path : ".", strerror(errno));
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
	seterr(d->err, d->errlen, "out of memory");
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
					seterr(d->err, d->errlen, "%.*s: directory moved during the diff",
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
	seterr(d->err, d->errlen, "out of memory");
out:
	for (size_t i = 0; i < depth; i++)
		frame_free(&st[i]);
	free(st);
	close(dfd);
	return rc;
}

int
guest_diff(const char *layerdir, int outfd, uint64_t off, int64_t epoch,
    uint64_t *len, char *err, size_t errlen)
{
	struct out o = { .fd = outfd, .off = off };
	struct diff d = { .epoch = epoch, .err = err, .errlen = errlen, .out = &o };
	int rc = -1, dfd;

	if (posix_memalign((void **)&o.buf, 4096, GUEST_BUF) ||
	    posix_memalign((void **)&d.fbuf, 4096, GUEST_BUF) ||
	    !(d.xlist = malloc(XLIST_MAX)) || !(d.xval = malloc(XVAL_MAX)) ||
	    !(d.xnames = malloc(XNAMES_MAX * sizeof *d.xnames)) ||
	    !(d.target = malloc(PATH_MAX + 1))) {
		seterr(err, errlen, "out of memory");
		goto out;
	}
	d.a = archive_write_new();
	d.ent = archive_entry_new();
	if (!d.a || !d.ent) {
		seterr(err, errlen, "out of memory");
		goto out;
	}
	archive_write_set_format_pax_restricted(d.a);
	archive_write_set_format_option(d.a, "pax", "xattrheader", "SCHILY");
	archive_write_add_filter_none(d.a);
	archive_write_set_bytes_per_block(d.a, 0);
	if (archive_write_open(d.a, &o, NULL, out_write, NULL) != ARCHIVE_OK) {
		seterr(err, errlen, "tar: %s", archive_error_string(d.a));
		goto out;
	}
	dfd = open(layerdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0) {
		seterr(err, errlen, "%s: %s", layerdir, strerror(errno));
		goto out;
	}
	if (walk(&d, dfd) < 0)
		goto out;
	if (archive_write_close(d.a) != ARCHIVE_OK) {
		seterr(err, errlen, "tar: %s", archive_error_string(d.a));
		goto out;
	}
	if (o.used) {
		size_t n = (o.used + 4095) & ~(size_t)4095;
		memset(o.buf + o.used, 0, n - o.used);
		if (out_flush(&o, n) < 0) {
			seterr(err, errlen, "writing the out disk: %s", strerror(o.err));
			goto out;
		}
	}
	if (fdatasync(outfd) < 0 && errno != EINVAL) {
		seterr(err, errlen, "out disk: fdatasync: %s", strerror(errno));
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

/* ---- import ---- */

struct in {
	int fd;
	uint64_t off, left;
	unsigned char *buf;
};

static la_ssize_t
in_read(struct archive *a, void *arg, const void **p)
{
	struct in *in = arg;
	size_t want;
	ssize_t r;
	uint64_t aoff = in->off & ~(uint64_t)4095;
	size_t skew = (size_t)(in->off - aoff);

	if (in->left == 0)
		return 0;
	want = GUEST_BUF;
	do
		r = pread(in->fd, in->buf, want, (off_t)aoff);
	while (r < 0 && errno == EINTR);
	if (r < 0) {
		archive_set_error(a, errno, "reading the in disk");
		return -1;
	}
	if ((size_t)r <= skew)
		return 0;
	r -= (ssize_t)skew;
	if ((uint64_t)r > in->left)
		r = (ssize_t)in->left;
	*p = in->buf + skew;
	in->off += (uint64_t)r;
	in->left -= (uint64_t)r;
	return r;
}

/* "./a/b" or "/a/b" -> "a/b" (lib/path.c); NULL for "..", empty or "." */
static char *
clean_path(const char *p)
{
	int bad;
	char *c = hypr_path_member(p, 1, &bad);

	if (c && !*c) {
		free(c);
		return NULL;
	}
	return c;
}

/* rm -rf name in directory pfd, not following symlinks. Iterative with one
 * directory fd at a time (going up through ".."), so any depth works. Best
 * effort: stops at the first entry it cannot remove. */
static void
rm_rf_at(int pfd, const char *name)
{
	int cur, fail = 0;
	size_t depth = 0;

	if (unlinkat(pfd, name, 0) == 0 || errno != EISDIR)
		return;
	if (unlinkat(pfd, name, AT_REMOVEDIR) == 0)
		return;
	cur = openat(pfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (cur < 0)
		return;
	for (;;) {
		int fd = openat(cur, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		DIR *dir = fd < 0 ? NULL : fdopendir(fd);
		struct dirent *de;
		char *child = NULL;

		if (!dir) {
			if (fd >= 0)
				close(fd);
			break;
		}
		while ((de = readdir(dir))) {
			if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
				continue;
			if (unlinkat(cur, de->d_name, 0) == 0)
				continue;
			if (errno == EISDIR && unlinkat(cur, de->d_name, AT_REMOVEDIR) == 0)
				continue;
			if ((errno == ENOTEMPTY || errno == EEXIST) && !child) {
				if (!(child = strdup(de->d_name)))
					fail = 1;
				continue;
			}
			if (errno != ENOTEMPTY && errno != EEXIST)
				fail = 1;
		}
		closedir(dir);
		if (fail) {
			free(child);
			break;
		}
		if (child) {
			int sub = openat(cur, child, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			free(child);
			if (sub < 0)
				break;
			close(cur);
			cur = sub;
			depth++;
			continue;
		}
		/* cur is empty now */
		if (depth == 0) {
			close(cur);
			unlinkat(pfd, name, AT_REMOVEDIR);
			return;
		}
		int up = openat(cur, "..", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (up < 0)
			break;
		close(cur);
		cur = up;
		depth--;
	}
	close(cur);
}

void
guest_rm_rf(const char *path)
{
	rm_rf_at(AT_FDCWD, path);
}

static void
remove_existing(int pfd, const char *name, int keep_dir)
{
	struct stat st;

	if (fstatat(pfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return;
	if (S_ISDIR(st.st_mode)) {
		if (keep_dir)
			return;
		/* a directory replaced by a non-directory: rm -r it */
		rm_rf_at(pfd, name);
		return;
	}
	unlinkat(pfd, name, 0);
}

/* New fd of directory p[0..len) under start, one component at a time
 * (symlinks followed: the import runs chrooted in the layer), creating
 * missing ones (0755) when create. -1 with errno. */
static int
open_dirs1(int start, const char *p, size_t len, int create)
{
	int fd = openat(start, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	size_t i = 0;
	char name[NAME_MAX + 1];

	while (fd >= 0 && i < len) {
		size_t n = 0;
		int sub;

		while (i < len && p[i] == '/')
			i++;
		while (i + n < len && p[i + n] != '/')
			n++;
		if (n == 0 || (n == 1 && p[i] == '.')) {
			i += n;
			continue;
		}
		if (n > NAME_MAX) {
			close(fd);
			errno = ENAMETOOLONG;
			return -1;
		}
		memcpy(name, p + i, n);
		name[n] = 0;
		i += n;
		if (create)
			mkdirat(fd, name, 0755);
		sub = openat(fd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		int e = errno;
		close(fd);
		errno = e;
		fd = sub;
	}
	return fd;
}

/* open_dirs1 with no PATH_MAX limit and few syscalls: the path goes to
 * openat in relative chunks of < PATH_MAX bytes cut at a '/', and only a
 * chunk with a missing directory is walked one component at a time. */
static int
open_dirs(int start, const char *p, size_t len, int create)
{
	int fd = openat(start, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	char chunk[PATH_MAX];
	size_t i = 0;

	while (fd >= 0 && i < len) {
		size_t n;
		int sub;

		while (i < len && p[i] == '/')
			i++;	/* a chunk never starts with '/' (absolute) */
		if (i == len)
			break;
		n = len - i;
		if (n > sizeof chunk - 1) {
			n = sizeof chunk - 1;
			while (n > 0 && p[i + n] != '/')
				n--;
			if (n == 0) {
				close(fd);
				errno = ENAMETOOLONG;
				return -1;
			}
		}
		memcpy(chunk, p + i, n);
		chunk[n] = 0;
		sub = openat(fd, chunk, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (sub < 0 && errno == ENOENT && create)
			sub = open_dirs1(fd, chunk, n, 1);
		int e = errno;
		close(fd);
		errno = e;
		fd = sub;
		i += n;
	}
	return fd;
}

/* The parent directory of the last entry, kept open: a tar lists a tree
 * depth first, so the next parent is mostly the same one or a child. */
struct pdir {
	int root, fd;
	struct sbuf path;
};

static int
pdir_get(struct pdir *c, const char *p, size_t len)
{
	int fd;

	if (c->fd >= 0 && len == c->path.len && (!len || !memcmp(p, c->path.s, len)))
		return c->fd;
	if (c->fd >= 0 && len > c->path.len && (!c->path.len || !memcmp(p, c->path.s, c->path.len)) &&
	    (c->path.len == 0 || p[c->path.len] == '/'))
		fd = open_dirs(c->fd, p + c->path.len, len - c->path.len, 1);
	else
		fd = open_dirs(c->root, p, len, 1);
	if (fd < 0)
		return -1;
	if (len + 1 > c->path.cap) {
		char *ns = realloc(c->path.s, len + 1);
		if (!ns) {
			close(fd);
			errno = ENOMEM;
			return -1;
		}
		c->path.s = ns;
		c->path.cap = len + 1;
	}
	if (c->fd >= 0)
		close(c->fd);
	c->fd = fd;
	memcpy(c->path.s, p, len);
	c->path.s[len] = 0;
	c->path.len = len;
	return c->fd;
}

/* xattrs of the entry just made: through fd when it is open (any path
 * length), else by its path (symlinks, devices, fifos) */
static void
set_xattrs(struct archive_entry *ent, int fd, const char *path)
{
	const char *name;
	const void *val;
	size_t size;

	if (archive_entry_xattr_reset(ent) == 0)
		return;
	while (archive_entry_xattr_next(ent, &name, &val, &size) == ARCHIVE_OK) {
		if (!strncmp(name, "trusted.overlay.", 16))
			continue;
		if (fd >= 0)
			fsetxattr(fd, name, val, size, 0);
		else
			lsetxattr(path, name, val, size, 0);
	}
}

struct dirtime {
	char *path;
	struct timespec ts[2];
};

static int
extract(struct archive *a, char *err, size_t errlen)
{
	struct archive_entry *ent;
	struct dirtime *dirs = NULL;
	size_t ndirs = 0, capdirs = 0;
	struct pdir pd = { .fd = -1 };
	char *buf = NULL;
	int r, rc = 0;

	char *path_buf = NULL;	/* this entry's cleaned name */

	pd.root = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (pd.root < 0) {
		seterr(err, errlen, "/: %s", strerror(errno));
		return -1;
	}
	while ((r = archive_read_next_header(a, &ent)) == ARCHIVE_OK || r == ARCHIVE_WARN) {
		const char *path;
		const char *base, *lt;
		mode_t mode = archive_entry_mode(ent);
		struct timespec ts[2] = { { 0, UTIME_OMIT }, { archive_entry_mtime(ent), 0 } };
		int fd = -1, pfd;
		size_t plen;

		free(path_buf);
		path = path_buf = clean_path(archive_entry_pathname(ent));
		if (!path) {
			if (strcmp(archive_entry_pathname(ent), ".") &&
			    strcmp(archive_entry_pathname(ent), "./")) {
				seterr(err, errlen, "%s: path outside the layer", archive_entry_pathname(ent));
				rc = -1;
				break;
			}
			continue;
		}
		free(buf);
		if (!(buf = strdup(path))) {
			seterr(err, errlen, "out of memory");
			rc = -1;
			break;
		}
		while (strlen(buf) > 1 && buf[strlen(buf) - 1] == '/')
			buf[strlen(buf) - 1] = 0;
		path = buf;
		base = strrchr(path, '/');
		plen = base ? (size_t)(base - path) : 0;
		base = base ? base + 1 : path;
		if ((pfd = pdir_get(&pd, path, plen)) < 0) {
			seterr(err, errlen, "%s: parent directory: %s", path, strerror(errno));
			rc = -1;
			break;
		}
		if (!strncmp(base, ".wh.", 4)) {
			if (!strcmp(base, ".wh..wh..opq")) {
				if (fsetxattr(pfd, "trusted.overlay.opaque", "y", 1, 0) < 0) {
					seterr(err, errlen, "%s: opaque: %s", path, strerror(errno));
					rc = -1;
					break;
				}
			} else if (strncmp(base, ".wh..wh.", 8)) {
				remove_existing(pfd, base + 4, 0);
				if (mknodat(pfd, base + 4, S_IFCHR, makedev(0, 0)) < 0) {
					seterr(err, errlen, "%s: whiteout: %s", path, strerror(errno));
					rc = -1;
					break;
				}
			}
			continue;
		}
		if ((lt = archive_entry_hardlink(ent))) {
			char *t = clean_path(lt);
			const char *tb;
			int tfd;
			if (!t) {
				seterr(err, errlen, "%s: link target outside the layer", path);
				rc = -1;
				break;
			}
			tb = strrchr(t, '/');
			tfd = open_dirs(pd.root, t, tb ? (size_t)(tb - t) : 0, 0);
			remove_existing(pfd, base, 0);
			if (tfd < 0 || linkat(tfd, tb ? tb + 1 : t, pfd, base, 0) < 0) {
				seterr(err, errlen, "%s: link to %s: %s", path, t, strerror(errno));
				if (tfd >= 0)
					close(tfd);
				free(t);
				rc = -1;
				break;
			}
			close(tfd);
			free(t);
			continue;
		}
		switch (mode & AE_IFMT) {
		case AE_IFDIR:
			remove_existing(pfd, base, 1);
			if (mkdirat(pfd, base, 0700) < 0 && errno != EEXIST) {
				seterr(err, errlen, "%s: mkdir: %s", path, strerror(errno));
				rc = -1;
				break;
			}
			if (ndirs == capdirs) {
				capdirs = capdirs ? 2 * capdirs : 64;
				struct dirtime *nd = realloc(dirs, capdirs * sizeof *nd);
				if (!nd) {
					rc = -1;
					break;
				}
				dirs = nd;
			}
			if (!(dirs[ndirs].path = strdup(path))) {
				rc = -1;
				break;
			}
			dirs[ndirs].ts[0] = ts[0];
			dirs[ndirs].ts[1] = ts[1];
			ndirs++;
			break;
		case AE_IFLNK:
			remove_existing(pfd, base, 0);
			if (symlinkat(archive_entry_symlink(ent) ? archive_entry_symlink(ent) : "", pfd, base) < 0) {
				seterr(err, errlen, "%s: symlink: %s", path, strerror(errno));
				rc = -1;
			}
			break;
		case AE_IFCHR:
		case AE_IFBLK:
		case AE_IFIFO:
			remove_existing(pfd, base, 0);
			if (mknodat(pfd, base, mode & (AE_IFMT | 0777), archive_entry_rdev(ent)) < 0) {
				seterr(err, errlen, "%s: mknod: %s", path, strerror(errno));
				rc = -1;
			}
			break;
		case AE_IFREG:
		case 0:
			remove_existing(pfd, base, 0);
			fd = openat(pfd, base, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
			if (fd < 0) {
				seterr(err, errlen, "%s: create: %s", path, strerror(errno));
				rc = -1;
				break;
			}
			for (;;) {
				const void *blk;
				size_t sz;
				la_int64_t o;
				int k = archive_read_data_block(a, &blk, &sz, &o);
				if (k == ARCHIVE_EOF)
					break;
				if (k != ARCHIVE_OK) {
					seterr(err, errlen, "%s: %s", path, archive_error_string(a));
					rc = -1;
					break;
				}
				if (pwrite(fd, blk, sz, o) != (ssize_t)sz) {
					seterr(err, errlen, "%s: write: %s", path, strerror(errno));
					rc = -1;
					break;
				}
			}
			if (rc == 0 && ftruncate(fd, archive_entry_size(ent)) < 0)
				rc = -1;
			break;
		default:
			continue;	/* sockets and unknown types are skipped */
		}
		if (rc < 0) {
			if (fd >= 0)
				close(fd);
			break;
		}
		fchownat(pfd, base, archive_entry_uid(ent), archive_entry_gid(ent), AT_SYMLINK_NOFOLLOW);
		if ((mode & AE_IFMT) != AE_IFLNK)
			fchmodat(pfd, base, mode & 07777, 0);
		if ((mode & AE_IFMT) == AE_IFDIR)
			fd = openat(pfd, base, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		set_xattrs(ent, fd, path);
		if (fd >= 0)
			close(fd);
		if ((mode & AE_IFMT) != AE_IFDIR)
			utimensat(pfd, base, ts, AT_SYMLINK_NOFOLLOW);
	}
	free(path_buf);
	if (rc == 0 && r != ARCHIVE_EOF) {
		seterr(err, errlen, "tar: %s", archive_error_string(a));
		rc = -1;
	}
	/* directory times last, deepest first (their content is written) */
	for (size_t i = ndirs; i-- > 0;) {
		if (rc == 0 && utimensat(AT_FDCWD, dirs[i].path, dirs[i].ts, AT_SYMLINK_NOFOLLOW) < 0 &&
		    errno == ENAMETOOLONG) {
			const char *b = strrchr(dirs[i].path, '/');
			int dfd = open_dirs(pd.root, dirs[i].path, b ? (size_t)(b - dirs[i].path) : 0, 0);
			if (dfd >= 0) {
				utimensat(dfd, b ? b + 1 : dirs[i].path, dirs[i].ts, AT_SYMLINK_NOFOLLOW);
				close(dfd);
			}
		}
		free(dirs[i].path);
	}
	free(dirs);
	free(buf);
	free(pd.path.s);
	if (pd.fd >= 0)
		close(pd.fd);
	close(pd.root);
	return rc;
}

int
guest_import(int infd, uint64_t off, uint64_t len, const char *layerdir,
    char *err, size_t errlen)
{
	int p[2], status;
	pid_t pid;
	ssize_t n;

	if (pipe2(p, O_CLOEXEC) < 0) {
		seterr(err, errlen, "pipe: %s", strerror(errno));
		return -1;
	}
	pid = fork();
	if (pid < 0) {
		seterr(err, errlen, "fork: %s", strerror(errno));
		close(p[0]);
		close(p[1]);
		return -1;
	}
	if (pid == 0) {
		/* chrooted: symlinks in the tar resolve inside the layer */
		struct in in = { .fd = infd, .off = off, .left = len };
		struct archive *a;
		char e[1024] = "";
		int rc = -1;

		close(p[0]);
		umask(0);
		if (chroot(layerdir) < 0 || chdir("/") < 0) {
			snprintf(e, sizeof e, "%s: chroot: %s", layerdir, strerror(errno));
		} else if (posix_memalign((void **)&in.buf, 4096, GUEST_BUF)) {
			snprintf(e, sizeof e, "out of memory");
		} else {
			a = archive_read_new();
			archive_read_support_format_tar(a);
			archive_read_support_filter_none(a);
			/* names are bytes: no UTF-8 -> locale translation */
			archive_read_set_options(a, "hdrcharset=BINARY");
			if (archive_read_open(a, &in, NULL, in_read, NULL) != ARCHIVE_OK)
				snprintf(e, sizeof e, "tar: %s", archive_error_string(a));
			else
				rc = extract(a, e, sizeof e);
			archive_read_free(a);
		}
		if (rc < 0)
			(void)!write(p[1], e, strlen(e));
		_exit(rc < 0 ? 1 : 0);
	}
	close(p[1]);
	n = read(p[0], err, errlen - 1);
	close(p[0]);
	err[n > 0 ? n : 0] = 0;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		if (!err[0])
			seterr(err, errlen, "import failed (status %d)", status);
		return -1;
	}
	return 0;
}
