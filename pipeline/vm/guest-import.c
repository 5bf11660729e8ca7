/* guest-import.c - a layer tar in: extracted into a layer directory of the
 * build VM, whiteouts turned into overlay whiteouts. */
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
		archive_set_error(a, errno, "reading the io disk");
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
		guest_seterr(err, errlen, "/: %s", strerror(errno));
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
				guest_seterr(err, errlen, "%s: path outside the layer", archive_entry_pathname(ent));
				rc = -1;
				break;
			}
			continue;
		}
		free(buf);
		if (!(buf = strdup(path))) {
			guest_seterr(err, errlen, "out of memory");
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
			guest_seterr(err, errlen, "%s: parent directory: %s", path, strerror(errno));
			rc = -1;
			break;
		}
		if (!strncmp(base, ".wh.", 4)) {
			if (!strcmp(base, ".wh..wh..opq")) {
				if (fsetxattr(pfd, "trusted.overlay.opaque", "y", 1, 0) < 0) {
					guest_seterr(err, errlen, "%s: opaque: %s", path, strerror(errno));
					rc = -1;
					break;
				}
			} else if (strncmp(base, ".wh..wh.", 8)) {
				remove_existing(pfd, base + 4, 0);
				if (mknodat(pfd, base + 4, S_IFCHR, makedev(0, 0)) < 0) {
					guest_seterr(err, errlen, "%s: whiteout: %s", path, strerror(errno));
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
				guest_seterr(err, errlen, "%s: link target outside the layer", path);
				rc = -1;
				break;
			}
			tb = strrchr(t, '/');
			tfd = open_dirs(pd.root, t, tb ? (size_t)(tb - t) : 0, 0);
			remove_existing(pfd, base, 0);
			if (tfd < 0 || linkat(tfd, tb ? tb + 1 : t, pfd, base, 0) < 0) {
				guest_seterr(err, errlen, "%s: link to %s: %s", path, t, strerror(errno));
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
				guest_seterr(err, errlen, "%s: mkdir: %s", path, strerror(errno));
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
				guest_seterr(err, errlen, "%s: symlink: %s", path, strerror(errno));
				rc = -1;
			}
			break;
		case AE_IFCHR:
		case AE_IFBLK:
		case AE_IFIFO:
			remove_existing(pfd, base, 0);
			if (mknodat(pfd, base, mode & (AE_IFMT | 0777), archive_entry_rdev(ent)) < 0) {
				guest_seterr(err, errlen, "%s: mknod: %s", path, strerror(errno));
				rc = -1;
			}
			break;
		case AE_IFREG:
		case 0:
			remove_existing(pfd, base, 0);
			fd = openat(pfd, base, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
			if (fd < 0) {
				guest_seterr(err, errlen, "%s: create: %s", path, strerror(errno));
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
					guest_seterr(err, errlen, "%s: %s", path, archive_error_string(a));
					rc = -1;
					break;
				}
				if (pwrite(fd, blk, sz, o) != (ssize_t)sz) {
					guest_seterr(err, errlen, "%s: write: %s", path, strerror(errno));
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
		guest_seterr(err, errlen, "tar: %s", archive_error_string(a));
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
		guest_seterr(err, errlen, "pipe: %s", strerror(errno));
		return -1;
	}
	pid = fork();
	if (pid < 0) {
		guest_seterr(err, errlen, "fork: %s", strerror(errno));
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
			guest_seterr(err, errlen, "import failed (status %d)", status);
		return -1;
	}
	return 0;
}
