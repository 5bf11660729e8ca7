#include "cas.h"
#include "fsutil.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

int
hypr_mkdir_p(const char *path, mode_t mode, struct hypr_err *e)
{
	char buf[4096];
	size_t n = strlen(path);

	if (n == 0 || n >= sizeof(buf))
		return hypr_err_set(e, HYPR_EXIT_SYSTEM, "%s: bad path", path);
	memcpy(buf, path, n + 1);
	for (char *p = buf + 1; ; p++) {
		if (*p == '/' || *p == '\0') {
			char c = *p;

			*p = '\0';
			if (mkdir(buf, mode) < 0 && errno != EEXIST)
				return hypr_err_errno(e, HYPR_EXIT_SYSTEM, "mkdir %s", buf);
			*p = c;
			if (c == '\0')
				break;
		}
	}
	return 0;
}

int
hypr_write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

ssize_t
hypr_read_full(int fd, void *buf, size_t len)
{
	size_t got = 0;

	while (got < len) {
		ssize_t n = read(fd, (char *)buf + got, len - got);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (n == 0)
			break;
		got += (size_t)n;
	}
	return (ssize_t)got;
}

int
hypr_write_atomic(const char *path, const void *data, size_t len, mode_t mode,
    struct hypr_err *e)
{
	char tmp[HYPR_PATH_BUF];
	int fd;

	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid())
	    >= sizeof(tmp))
		return hypr_err_set(e, HYPR_EXIT_SYSTEM, "%s: path too long", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	if (fd < 0)
		return hypr_err_errno(e, HYPR_EXIT_SYSTEM, "creating %s", tmp);
	if (hypr_write_all(fd, data, len) < 0 || fsync(fd) < 0) {
		hypr_err_errno(e, HYPR_EXIT_SYSTEM, "writing %s", tmp);
		close(fd);
		unlink(tmp);
		return -1;
	}
	if (close(fd) < 0 || rename(tmp, path) < 0) {
		hypr_err_errno(e, HYPR_EXIT_SYSTEM, "renaming %s", tmp);
		unlink(tmp);
		return -1;
	}
	return 0;
}

int
hypr_read_file(const char *path, size_t max, char **out, size_t *len,
    struct hypr_err *e)
{
	size_t cap = 8192, n = 0;
	char *buf;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return hypr_err_errno(e, HYPR_EXIT_SYSTEM, "%s", path);
	if ((buf = malloc(cap + 1)) == NULL) {
		close(fd);
		return hypr_err_errno(e, HYPR_EXIT_SYSTEM, "%s", path);
	}
	for (;;) {
		ssize_t r;

		if (n == cap) {
			char *nb;

			if (cap >= max) {
				free(buf);
				close(fd);
				return hypr_err_set(e, HYPR_EXIT_INPUT,
				    "%s: larger than %zu bytes", path, max);
			}
			cap = cap * 2 > max ? max : cap * 2;
			if ((nb = realloc(buf, cap + 1)) == NULL) {
				free(buf);
				close(fd);
				return hypr_err_errno(e, HYPR_EXIT_SYSTEM, "%s", path);
			}
			buf = nb;
		}
		r = read(fd, buf + n, cap - n);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			free(buf);
			hypr_err_errno(e, HYPR_EXIT_SYSTEM, "reading %s", path);
			close(fd);
			return -1;
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	close(fd);
	buf[n] = '\0';
	*out = buf;
	if (len)
		*len = n;
	return 0;
}

static int
rm_one(const char *p, const struct stat *st, int flag, struct FTW *f)
{
	(void)st; (void)f;
	if (flag == FTW_DP)
		return rmdir(p) < 0 && errno != ENOENT ? -1 : 0;
	return unlink(p) < 0 && errno != ENOENT ? -1 : 0;
}

/* What getdents64(2) fills in. */
struct dent64 {
	uint64_t ino;
	int64_t off;
	unsigned short reclen;
	unsigned char type;
	char name[];
};

static void
rm_tree_async(int dfd, int depth)
{
	char buf[2048];
	long n;

	/* entries removed while reading may hide others: a second pass */
	for (int pass = 0; pass < 2; pass++) {
		lseek(dfd, 0, SEEK_SET);
		while ((n = syscall(SYS_getdents64, dfd, buf, sizeof(buf))) > 0) {
			for (long off = 0; off < n;) {
				struct dent64 *d = (struct dent64 *)(void *)(buf + off);
				int c;

				off += d->reclen;
				if (!strcmp(d->name, ".") || !strcmp(d->name, ".."))
					continue;
				if (unlinkat(dfd, d->name, 0) == 0 || errno != EISDIR)
					continue;
				if (depth < 256 && (c = openat(dfd, d->name,
				    O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) >= 0) {
					rm_tree_async(c, depth + 1);
					close(c);
				}
				unlinkat(dfd, d->name, AT_REMOVEDIR);
			}
		}
	}
}

void
hypr_rm_rf_async(const char *path)
{
	int saved = errno, fd;

	if (unlinkat(AT_FDCWD, path, 0) != 0 && errno == EISDIR &&
	    (fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) >= 0) {
		rm_tree_async(fd, 0);
		close(fd);
		rmdir(path);
	}
	errno = saved;
}

int
hypr_rm_rf(const char *path, struct hypr_err *e)
{
	struct stat st;

	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 : hypr_err_errno(e, HYPR_EXIT_SYSTEM, "%s", path);
	if (nftw(path, rm_one, 32, FTW_DEPTH | FTW_PHYS) < 0)
		return hypr_err_errno(e, HYPR_EXIT_SYSTEM, "removing %s", path);
	return 0;
}

int
hypr_size_add(size_t a, size_t b, size_t *out)
{
	return __builtin_add_overflow(a, b, out) ? -1 : 0;
}

int
hypr_size_mul(size_t a, size_t b, size_t *out)
{
	return __builtin_mul_overflow(a, b, out) ? -1 : 0;
}

int
hypr_size_parse(const char *s, uint64_t *out)
{
	static const char units[] = "bkmgtp";
	const char *u;
	char *end;
	unsigned long long v;
	int shift = 0;

	if (s == NULL || *s < '0' || *s > '9')
		return -1;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno)
		return -1;
	if (*end) {
		if (!(u = strchr(units, tolower((unsigned char)*end))))
			return -1;
		shift = (int)(u - units) * 10;
		end++;
		if (shift && (*end == 'b' || *end == 'B'))
			end++;
		else if (shift && (*end == 'i' || *end == 'I') && (end[1] == 'b' || end[1] == 'B'))
			end += 2;
		if (*end)
			return -1;
	}
	if (shift && v > (UINT64_MAX >> shift))
		return -1;
	*out = (uint64_t)v << shift;
	return 0;
}

static void *
flusher_run(void *arg)
{
	struct hypr_flusher *fl = arg;
	struct pollfd pf = { .fd = fl->stop[0], .events = POLLIN };
	int fd = -1, r;

	while ((r = poll(&pf, 1, 100)) == 0 || (r < 0 && errno == EINTR)) {
		if (fd < 0)	/* not made yet: the next tick */
			fd = open(fl->path, O_RDONLY | O_CLOEXEC);
		if (fd >= 0)
			fdatasync(fd);
	}
	if (fd >= 0)
		close(fd);
	return NULL;
}

void
hypr_flusher_start(struct hypr_flusher *fl, const char *path)
{
	fl->on = 0;
	fl->path = path;
	if (pipe2(fl->stop, O_CLOEXEC) < 0)
		return;
	if (pthread_create(&fl->t, NULL, flusher_run, fl) != 0) {
		close(fl->stop[0]);
		close(fl->stop[1]);
		return;
	}
	fl->on = 1;
}

void
hypr_flusher_stop(struct hypr_flusher *fl)
{
	if (!fl->on)
		return;
	close(fl->stop[1]);	/* POLLHUP */
	pthread_join(fl->t, NULL);
	close(fl->stop[0]);
	fl->on = 0;
}
