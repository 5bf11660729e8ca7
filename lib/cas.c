#include "cas.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fsutil.h"

static const char *const subdirs[] = {
	"blobs/sha256", "cache", "images", "vm", "tmp", NULL
};

int
hypr_root_open(struct hypr_root *r, const char *override, struct hypr_err *e)
{
	const char *p = override;
	char sub[4300];

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

int
hypr_blob_path(const struct hypr_root *r, const char *digest, char *buf,
    size_t n, struct hypr_err *e)
{
	if (!hypr_digest_valid(digest))
		return hypr_err_set(e, HYPR_EXIT_INPUT, "bad digest '%s'",
		    digest ? digest : "");
	if (hypr_root_path(r, buf, n, "blobs/sha256/%s", digest + 7) < 0)
		return hypr_err_set(e, HYPR_EXIT_SYSTEM, "store path too long");
	return 0;
}

int
hypr_blob_has(const struct hypr_root *r, const char *digest)
{
	char p[4300];

	return hypr_blob_path(r, digest, p, sizeof(p), NULL) == 0 &&
	    access(p, F_OK) == 0;
}

int
hypr_blob_begin(struct hypr_blob_writer *w, const struct hypr_root *r,
    struct hypr_err *e)
{
	w->root = r;
	w->fd = -1;
	if (hypr_root_path(r, w->tmp, sizeof(w->tmp), "tmp/blob.XXXXXX") < 0)
		return hypr_err_set(e, HYPR_EXIT_SYSTEM, "store path too long");
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
	return 0;
}

void
hypr_blob_abort(struct hypr_blob_writer *w)
{
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
	char d[HYPR_DIGEST_LEN + 1], path[4300];
	uint64_t size = w->sha.bytes;

	hypr_sha256_final(&w->sha, d);
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

int
hypr_blob_put_file(const struct hypr_root *r, const char *path,
    char digest_out[HYPR_DIGEST_LEN + 1], uint64_t *size_out, struct hypr_err *e)
{
	static char buf[1 << 20];
	struct hypr_blob_writer w;
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return hypr_err_errno(e, HYPR_EXIT_SYSTEM, "%s", path);
	if (hypr_blob_begin(&w, r, e) < 0) {
		close(fd);
		return -1;
	}
	while ((n = read(fd, buf, sizeof(buf))) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 || hypr_blob_write(&w, buf, (size_t)n, e) < 0) {
			if (n < 0)
				hypr_err_errno(e, HYPR_EXIT_SYSTEM, "reading %s", path);
			hypr_blob_abort(&w);
			close(fd);
			return -1;
		}
	}
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
	char path[4300], d[HYPR_DIGEST_LEN + 1];
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
