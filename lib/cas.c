#include "cas.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fsutil.h"

static const char *const subdirs[] = {
	"blobs/sha256", "cache", "images", "vm", "tmp", NULL
};

int
hypr_root_open(struct hypr_root *r, const char *override, struct hypr_err *e)
{
	const char *p = override;
	char sub[HYPR_PATH_BUF];

	if (p == NULL || *p == '\0')
		p = getenv("HYPR_ROOT");
	if (p != NULL && *p != '\0') {
		if (snprintf(r->path, sizeof(r->path), "%s", p) >= (int)sizeof(r->path))
			return hypr_err_set(e, HYPR_EXIT_USAGE, "HYPR_ROOT too long");
	} else if (geteuid() == 0) {
		snprintf(r->path, sizeof(r->path), "/var/lib/hypr");
	} else if ((p = getenv("XDG_DATA_HOME")) != NULL && *p == '/') {
		snprintf(r->path, sizeof(r->path), "%s/hypr", p);
	} else if ((p = getenv("HOME")) != NULL && *p == '/') {
		snprintf(r->path, sizeof(r->path), "%s/.local/share/hypr", p);
	} else {
		return hypr_err_set(e, HYPR_EXIT_USAGE,
		    "no store: set HYPR_ROOT, XDG_DATA_HOME or HOME");
	}
	for (const char *const *s = subdirs; *s; s++) {
		snprintf(sub, sizeof(sub), "%s/%s", r->path, *s);
		if (hypr_mkdir_p(sub, 0755, e) < 0)
			return hypr_err_prefix(e, "opening store %s", r->path);
	}
	return 0;
}

int
hypr_root_path(const struct hypr_root *r, char *buf, size_t n, const char *fmt, ...)
{
	va_list ap;
	int k = snprintf(buf, n, "%s/", r->path), m;

	if (k < 0 || (size_t)k >= n)
		return -1;
	va_start(ap, fmt);
	m = vsnprintf(buf + k, n - (size_t)k, fmt, ap);
	va_end(ap);
	return m < 0 || (size_t)m >= n - (size_t)k ? -1 : 0;
}

/* ---- temp files ---- */

static struct {
	char dir[HYPR_PATH_BUF];		/* this process's temp dir, "" if none */
	int fd;			/* its fd, holding the flock */
	pid_t pid;		/* the process that made it (not a forked child) */
	int registered;
} own = { .fd = -1 };

void
hypr_root_tmp_remove(void)
{
	if (own.fd < 0 || own.pid != getpid())
		return;
	hypr_rm_rf(own.dir, NULL);
	close(own.fd);	/* the lock goes last: nothing can take the name meanwhile */
	own.fd = -1;
	own.dir[0] = '\0';
}

void
hypr_root_tmp_remove_async(void)
{
	if (own.fd < 0 || own.pid != getpid())
		return;
	hypr_rm_rf_async(own.dir);
	close(own.fd);
	own.fd = -1;
}

static void
own_at_exit(void)
{
	hypr_root_tmp_remove();
}

static int
own_dir(const struct hypr_root *r, struct hypr_err *e)
{
	char tmpl[HYPR_PATH_BUF];
	size_t rl = strlen(r->path);

	if (own.fd >= 0 && own.pid == getpid() && strncmp(own.dir, r->path, rl) == 0 &&
	    own.dir[rl] == '/')
		return 0;
	if (own.fd >= 0 && own.pid != getpid()) {
		close(own.fd);	/* a forked child: the dir is the parent's */
		own.fd = -1;
	}
	hypr_root_tmp_remove();	/* another root: rare */
	for (int tries = 0;; tries++) {
		struct stat a, b;
		int fd;

		if (snprintf(tmpl, sizeof(tmpl), "%s/tmp/%s.%lld.%ld.XXXXXX", r->path,
		    program_invocation_short_name, (long long)time(NULL),
		    (long)getpid()) >= (int)sizeof(tmpl))
			return hypr_err_set(e, HYPR_EXIT_SYSTEM, "store path too long");
		if (mkdtemp(tmpl) == NULL)
			return hypr_err_errno(e, HYPR_EXIT_SYSTEM, "creating a temp dir in %s/tmp",
			    r->path);
		if ((fd = open(tmpl, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
			if (errno == ENOENT && tries < 100)
				continue;	/* removed by a prune before we opened it */
			return hypr_err_errno(e, HYPR_EXIT_SYSTEM, "%s", tmpl);
		}
		while (flock(fd, LOCK_EX) < 0)
			if (errno != EINTR) {
				close(fd);
				return hypr_err_errno(e, HYPR_EXIT_SYSTEM, "locking %s", tmpl);
			}
		/* A prune may have taken the unlocked new dir for a dead one's
		 * and removed it between mkdtemp and flock: make another. */
		if (fstat(fd, &a) == 0 && a.st_nlink > 0 && stat(tmpl, &b) == 0 &&
		    a.st_ino == b.st_ino && a.st_dev == b.st_dev) {
			own.fd = fd;
			own.pid = getpid();
			snprintf(own.dir, sizeof(own.dir), "%s", tmpl);
			break;
		}
		close(fd);
		if (tries > 100)
			return hypr_err_set(e, HYPR_EXIT_SYSTEM, "%s/tmp: temp dirs vanish as "
			    "they are made", r->path);
	}
	if (!own.registered && atexit(own_at_exit) == 0)
		own.registered = 1;
	return 0;
}

int
hypr_root_tmp(const struct hypr_root *r, char *buf, size_t n, struct hypr_err *e,
    const char *fmt, ...)
{
	va_list ap;
	int k, m;

	if (own_dir(r, e) < 0)
		return -1;
	k = snprintf(buf, n, "%s/", own.dir);
	if (k < 0 || (size_t)k >= n)
		return hypr_err_set(e, HYPR_EXIT_SYSTEM, "temp path too long");
	va_start(ap, fmt);
	m = vsnprintf(buf + k, n - (size_t)k, fmt, ap);
	va_end(ap);
	if (m < 0 || (size_t)m >= n - (size_t)k)
		return hypr_err_set(e, HYPR_EXIT_SYSTEM, "temp path too long");
	return 0;
}

static uint64_t du_total;

static int
du_one(const char *p, const struct stat *st, int flag, struct FTW *f)
{
	(void)p; (void)flag; (void)f;
	du_total += (uint64_t)st->st_blocks * 512;
	return 0;
}

uint64_t
hypr_disk_usage(const char *path)
{
	struct stat st;

	if (lstat(path, &st) < 0)
		return 0;
	if (!S_ISDIR(st.st_mode))
		return (uint64_t)st.st_blocks * 512;
	du_total = 0;
	nftw(path, du_one, 16, FTW_PHYS);
	return du_total;
}

/* "<prog>.<start>.<pid>.XXXXXX": the start, or -1 for another name. */
static int64_t
own_start(const char *name)
{
	const char *x = strrchr(name, '.'), *p, *t;
	char *end;
	long long v;

	if (!x || strlen(x + 1) != 6)
		return -1;
	for (p = x - 1; p > name && p[-1] != '.'; p--)
		;
	if (p <= name || p == x)
		return -1;
	for (t = p - 2; t > name && t[-1] != '.'; t--)
		;
	if (t <= name || t >= p - 1)
		return -1;
	v = strtoll(t, &end, 10);
	return end == p - 1 && v > 0 ? v : -1;
}

int
hypr_root_tmp_scan(const struct hypr_root *r, int reclaim,
    void (*each)(void *, const char *, int, uint64_t, int), void *arg,
    struct hypr_tmp_usage *u, struct hypr_err *e)
{
	char dir[HYPR_PATH_BUF], p[HYPR_PATH_BUF + 256];
	DIR *d;
	struct dirent *de;

	memset(u, 0, sizeof(*u));
	u->live_since = INT64_MAX;
	if (hypr_root_path(r, dir, sizeof(dir), "tmp") < 0)
		return hypr_err_set(e, HYPR_EXIT_SYSTEM, "store path too long");
	if ((d = opendir(dir)) == NULL)
		return errno == ENOENT ? 0 : hypr_err_errno(e, HYPR_EXIT_SYSTEM, "%s", dir);
	while ((de = readdir(d)) != NULL) {
		struct stat st;
		int fd = -1, live = 0, removed = 0;
		int64_t start = own_start(de->d_name);
		uint64_t bytes;

		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		snprintf(p, sizeof(p), "%s/%s", dir, de->d_name);
		if (lstat(p, &st) < 0)
			continue;
		if (S_ISDIR(st.st_mode) || S_ISREG(st.st_mode)) {
			fd = open(p, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
			if (fd < 0)
				continue;	/* gone meanwhile */
			live = flock(fd, LOCK_EX | LOCK_NB) < 0;
		}
		bytes = hypr_disk_usage(p);
		u->n++;
		u->bytes += bytes;
		if (live) {
			u->live++;
			u->live_bytes += bytes;
			if (S_ISDIR(st.st_mode) && start > 0 && start < u->live_since)
				u->live_since = start;
		} else if (reclaim == 1 || (reclaim == 2 && S_ISDIR(st.st_mode) && start > 0)) {
			/* under its lock: its owner is gone, and a new owner
			 * taking the name sees it removed and makes another */
			if (hypr_rm_rf(p, NULL) == 0) {
				removed = 1;
				u->freed += bytes;
			}
		}
		if (fd >= 0)
			close(fd);
		if (each)
			each(arg, de->d_name, live, bytes, removed);
	}
	closedir(d);
	return 0;
}

int
hypr_blob_path(const struct hypr_root *r, const char *digest, char *buf,
    size_t n, struct hypr_err *e)
{
	if (!hypr_digest_valid(digest))
		return hypr_err_set(e, HYPR_EXIT_INPUT, "bad digest '%s'",
		    digest ? digest : "");
	if (hypr_root_path(r, buf, n, "blobs/sha256/%s", hypr_digest_hex(digest)) < 0)
		return hypr_err_set(e, HYPR_EXIT_SYSTEM, "store path too long");
	return 0;
}

int
hypr_blob_has(const struct hypr_root *r, const char *digest)
{
	char p[HYPR_PATH_BUF];

	return hypr_blob_path(r, digest, p, sizeof(p), NULL) == 0 &&
	    access(p, F_OK) == 0;
}

int
hypr_blob_begin(struct hypr_blob_writer *w, const struct hypr_root *r,
    struct hypr_err *e)
{
	w->root = r;
	w->fd = -1;
	w->digest[0] = '\0';
	w->fl.on = 0;
	w->fl.path = NULL;
	if (hypr_root_tmp(r, w->tmp, sizeof(w->tmp), e, "blob.XXXXXX") < 0)
		return -1;
	if ((w->fd = mkostemp(w->tmp, O_CLOEXEC)) < 0)
		return hypr_err_errno(e, HYPR_EXIT_SYSTEM, "creating %s", w->tmp);
	if (hypr_sha256_init(&w->sha, e) < 0) {
		close(w->fd);
		unlink(w->tmp);
		w->fd = -1;
		return -1;
	}
	return 0;
}

int
hypr_blob_write(struct hypr_blob_writer *w, const void *buf, size_t len,
    struct hypr_err *e)
{
	if (hypr_write_all(w->fd, buf, len) < 0)
		return hypr_err_errno(e, HYPR_EXIT_SYSTEM, "writing %s", w->tmp);
	hypr_sha256_update(&w->sha, buf, len);
	if (w->fl.path == NULL && w->sha.bytes >= (8u << 20))
		hypr_flusher_start(&w->fl, w->tmp);	/* sets fl.path */
	return 0;
}

void
hypr_blob_digest(struct hypr_blob_writer *w, char out[HYPR_DIGEST_LEN + 1])
{
	if (!w->digest[0])
		hypr_sha256_final(&w->sha, w->digest);
	memcpy(out, w->digest, sizeof(w->digest));
}

void
hypr_blob_abort(struct hypr_blob_writer *w)
{
	hypr_flusher_stop(&w->fl);
	if (w->fd >= 0) {
		close(w->fd);
		unlink(w->tmp);
		hypr_sha256_abort(&w->sha);
	}
	w->fd = -1;
}

int
hypr_blob_commit(struct hypr_blob_writer *w, const char *expect,
    char digest_out[HYPR_DIGEST_LEN + 1], uint64_t *size_out, struct hypr_err *e)
{
	char d[HYPR_DIGEST_LEN + 1], path[HYPR_PATH_BUF];
	uint64_t size = w->sha.bytes;

	hypr_flusher_stop(&w->fl);
	hypr_blob_digest(w, d);
	if (expect && strcmp(expect, d) != 0) {
		close(w->fd);
		unlink(w->tmp);
		w->fd = -1;
		return hypr_err_set(e, HYPR_EXIT_INPUT,
		    "digest mismatch: expected %s, got %s", expect, d);
	}
	if (fchmod(w->fd, 0644) < 0 || fsync(w->fd) < 0 || close(w->fd) < 0) {
		hypr_err_errno(e, HYPR_EXIT_SYSTEM, "writing %s", w->tmp);
		unlink(w->tmp);
		w->fd = -1;
		return -1;
	}
	w->fd = -1;
	if (hypr_blob_path(w->root, d, path, sizeof(path), e) < 0 ||
	    rename(w->tmp, path) < 0) {
		if (e && !e->code)
			hypr_err_errno(e, HYPR_EXIT_SYSTEM, "storing %s", d);
		unlink(w->tmp);
		return -1;
	}
	if (digest_out)
		memcpy(digest_out, d, sizeof(d));
	if (size_out)
		*size_out = size;
	return 0;
}

struct syncer {
	int fd, rc, err;
};

static void *
syncer_run(void *arg)
{
	struct syncer *s = arg;

	s->rc = fsync(s->fd);
	s->err = errno;
	return NULL;
}

/* The digest of tmp (open as fd) while the disk writes it: a big file's
 * fsync runs in a thread beside the hash, which reads the page cache (a
 * 146 MB image: 0.22 s of hashing then 0.38 s of fsync, one after the
 * other before). */
static int
digest_synced(const char *tmp, int fd, off_t size, char d[HYPR_DIGEST_LEN + 1],
    struct hypr_err *e)
{
	struct syncer s = { .fd = fd };
	pthread_t t;
	int threaded = size >= (8 << 20) && pthread_create(&t, NULL, syncer_run, &s) == 0;
	int rc = hypr_digest_file(tmp, d, NULL, e);

	if (threaded)
		pthread_join(t, NULL);
	else
		syncer_run(&s);
	if (rc == 0 && s.rc < 0) {
		errno = s.err;
		return hypr_err_errno(e, HYPR_EXIT_SYSTEM, "writing %s", tmp);
	}
	return rc;
}

int
hypr_blob_adopt(const struct hypr_root *r, const char *tmp, const char *digest_in,
    char digest_out[HYPR_DIGEST_LEN + 1], uint64_t *size_out, struct hypr_err *e)
{
	char d[HYPR_DIGEST_LEN + 1], path[HYPR_PATH_BUF];
	struct stat st;
	int fd;

	if ((fd = open(tmp, O_RDONLY | O_CLOEXEC)) < 0 || fstat(fd, &st) < 0 ||
	    fchmod(fd, 0644) < 0) {
		hypr_err_errno(e, HYPR_EXIT_SYSTEM, "writing %s", tmp);
		if (fd >= 0)
			close(fd);
		goto fail;
	}
	if (digest_in) {
		snprintf(d, sizeof(d), "%s", digest_in);
		if (fsync(fd) < 0) {
			hypr_err_errno(e, HYPR_EXIT_SYSTEM, "writing %s", tmp);
			close(fd);
			goto fail;
		}
	} else if (digest_synced(tmp, fd, st.st_size, d, e) < 0) {
		close(fd);
		goto fail;
	}
	close(fd);
	if (hypr_blob_path(r, d, path, sizeof(path), e) < 0)
		goto fail;
	if (rename(tmp, path) < 0) {
		hypr_err_errno(e, HYPR_EXIT_SYSTEM, "storing %s", d);
		goto fail;
	}
	if (digest_out)
		memcpy(digest_out, d, sizeof(d));
	if (size_out)
		*size_out = (uint64_t)st.st_size;
	return 0;
fail:
	unlink(tmp);
	return -1;
}

int
hypr_blob_put_file(const struct hypr_root *r, const char *path,
    char digest_out[HYPR_DIGEST_LEN + 1], uint64_t *size_out, struct hypr_err *e)
{
	/* on the heap: callers may run in several threads */
	const size_t bufsz = 1 << 20;
	char *buf;
	struct hypr_blob_writer w;
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return hypr_err_errno(e, HYPR_EXIT_SYSTEM, "%s", path);
	if ((buf = malloc(bufsz)) == NULL) {
		close(fd);
		return hypr_err_set(e, HYPR_EXIT_SYSTEM, "out of memory");
	}
	if (hypr_blob_begin(&w, r, e) < 0) {
		free(buf);
		close(fd);
		return -1;
	}
	while ((n = read(fd, buf, bufsz)) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 || hypr_blob_write(&w, buf, (size_t)n, e) < 0) {
			if (n < 0)
				hypr_err_errno(e, HYPR_EXIT_SYSTEM, "reading %s", path);
			hypr_blob_abort(&w);
			free(buf);
			close(fd);
			return -1;
		}
	}
	free(buf);
	close(fd);
	return hypr_blob_commit(&w, NULL, digest_out, size_out, e);
}

int
hypr_blob_put_buf(const struct hypr_root *r, const void *buf, size_t len,
    char digest_out[HYPR_DIGEST_LEN + 1], struct hypr_err *e)
{
	struct hypr_blob_writer w;

	if (hypr_blob_begin(&w, r, e) < 0)
		return -1;
	if (hypr_blob_write(&w, buf, len, e) < 0) {
		hypr_blob_abort(&w);
		return -1;
	}
	return hypr_blob_commit(&w, NULL, digest_out, NULL, e);
}

int
hypr_blob_read(const struct hypr_root *r, const char *digest, size_t max,
    char **out, size_t *len, struct hypr_err *e)
{
	char path[HYPR_PATH_BUF], d[HYPR_DIGEST_LEN + 1];
	size_t n;

	if (hypr_blob_path(r, digest, path, sizeof(path), e) < 0 ||
	    hypr_read_file(path, max, out, &n, e) < 0)
		return -1;
	if (hypr_digest_buf(*out, n, d, e) < 0 || strcmp(d, digest) != 0) {
		free(*out);
		*out = NULL;
		return hypr_err_set(e, HYPR_EXIT_INPUT,
		    "store blob %s is corrupt (content hashes to %s)", digest, d);
	}
	if (len)
		*len = n;
	return 0;
}
