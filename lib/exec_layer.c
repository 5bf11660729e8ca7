/* exec_layer.c - host-built layer tars (COPY, ADD, WORKDIR): pax, sorted by
 * path, owners and modes from the entry set, written straight into a blob. */
#include "exec_int.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "fsutil.h"
#include "sparse.h"

int
lset_add(struct lset *s, const char *path, const struct tnode *n,
    const char *src, uint64_t size, struct hypr_err *e)
{
	void *old;
	struct lentry *x;
	size_t i;

	while (*path == '/')
		path++;
	if (*path == '\0')
		return 0;	/* the root itself is never in a layer */
	{
		const char *b = strrchr(path, '/');
		/* in a layer tar it would delete a file of the image */
		if (strncmp(b ? b + 1 : path, ".wh.", 4) == 0)
			return hypr_err_set(e, HYPR_EXIT_INPUT,
			    "/%s: a name starting with .wh. is reserved for layer whiteouts", path);
	}
	old = hypr_map_get(&s->idx, path);
	if (old != NULL) {
		i = (size_t)(uintptr_t)old - 1;
		x = &s->v[i];
		free(x->src);
		free(x->n.link);
	} else {
		if (s->n == s->cap) {
			size_t cap = s->cap ? s->cap * 2 : 64;
			struct lentry *v = realloc(s->v, cap * sizeof(*v));

			if (v == NULL)
				return hypr_err_set(e, HYPR_EXIT_SYSTEM, "out of memory");
			s->v = v;
			s->cap = cap;
		}
		i = s->n++;
		x = &s->v[i];
		if ((x->path = strdup(path)) == NULL ||
		    hypr_map_set(&s->idx, path, (void *)(uintptr_t)(i + 1), NULL) < 0)
			return hypr_err_set(e, HYPR_EXIT_SYSTEM, "out of memory");
	}
	x->n = *n;
	x->n.link = n->link ? strdup(n->link) : NULL;
	x->src = src ? strdup(src) : NULL;
	x->size = size;
	return 0;
}

void
lset_free(struct lset *s)
{
	for (size_t i = 0; i < s->n; i++) {
		free(s->v[i].path);
		free(s->v[i].src);
		free(s->v[i].n.link);
	}
	free(s->v);
	hypr_map_free(&s->idx, NULL);
	memset(s, 0, sizeof(*s));
}

static int
cmp_entry(const void *a, const void *b)
{
	return strcmp(((const struct lentry *)a)->path,
	    ((const struct lentry *)b)->path);
}

struct wstate {
	struct hypr_blob_writer w;
	struct hypr_err *e;
	int failed;
};

static la_ssize_t
wcb(struct archive *a, void *arg, const void *buf, size_t len)
{
	struct wstate *ws = arg;

	(void)a;
	if (hypr_blob_write(&ws->w, buf, len, ws->e) < 0) {
		ws->failed = 1;
		return -1;
	}
	return (la_ssize_t)len;
}

/* Extended attributes of a source file travel as pax SCHILY.xattr records
 * (file capabilities, user.*); the host's own security labels do not. */
static void
add_xattrs(struct archive_entry *ent, const char *src)
{
	char names[8192], val[65536];
	ssize_t n = llistxattr(src, names, sizeof(names));

	for (ssize_t i = 0; n > 0 && i < n; i += (ssize_t)strlen(names + i) + 1) {
		const char *k = names + i;
		ssize_t vl;

		if (strncmp(k, "user.", 5) != 0 && strcmp(k, "security.capability") != 0)
			continue;
		if ((vl = lgetxattr(src, k, val, sizeof(val))) >= 0)
			archive_entry_xattr_add_entry(ent, k, val, (size_t)vl);
	}
}

static int
write_range(struct archive *a, int fd, const struct lentry *x, off_t off, uint64_t left,
    struct hypr_err *e)
{
	char buf[1 << 16];

	while (left > 0) {
		ssize_t n = pread(fd, buf, left < sizeof(buf) ? left : sizeof(buf), off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return hypr_err_errno(e, HYPR_EXIT_SYSTEM, "reading %s", x->src);
		if (n == 0)
			break;	/* shrank meanwhile: libarchive pads */
		if (archive_write_data(a, buf, (size_t)n) < 0)
			return hypr_err_set(e, HYPR_EXIT_SYSTEM, "writing layer: %s",
			    archive_error_string(a));
		left -= (uint64_t)n;
		off += n;
	}
	return 0;
}

/* The file's data; with holes, only its data regions (the entry has the
 * sparse map: see data_map). */
static int
write_data(struct archive *a, int fd, const struct lentry *x, const struct hypr_extent *v,
    ssize_t nv, struct hypr_err *e)
{
	int64_t at = 0;

	if (nv < 0)
		return write_range(a, fd, x, 0, x->size, e);
	for (ssize_t i = 0; i <= nv; i++) {
		int64_t off = i < nv ? v[i].off : (int64_t)x->size, len = i < nv ? v[i].len : 0;

		if (off > at && hypr_sparse_write_hole(a, off - at) < 0)
			return hypr_err_set(e, HYPR_EXIT_SYSTEM, "writing layer: %s",
			    archive_error_string(a));
		if (write_range(a, fd, x, (off_t)off, (uint64_t)len, e) < 0)
			return -1;
		at = off + len;
	}
	return 0;
}

/* A source with fewer blocks than bytes may have holes: keep them (a
 * sparse map in the entry), never write them out as zeros. *nv is -1 for
 * a file without holes. */
static int
data_map(struct archive_entry *ent, int fd, const struct lentry *x, struct hypr_extent **v,
    ssize_t *nv, struct hypr_err *e)
{
	struct stat st;

	*v = NULL;
	*nv = -1;
	if (fstat(fd, &st) < 0)
		return hypr_err_errno(e, HYPR_EXIT_SYSTEM, "reading %s", x->src);
	if ((int64_t)st.st_blocks * 512 >= (int64_t)x->size || (uint64_t)st.st_size != x->size)
		return 0;
	if ((*nv = hypr_sparse_map(fd, 0, (int64_t)x->size, v)) < 0)
		return hypr_err_errno(e, HYPR_EXIT_SYSTEM, "reading %s", x->src);
	if (!hypr_sparse_has_hole(*v, (size_t)*nv, (int64_t)x->size)) {
		free(*v);
		*v = NULL;
		*nv = -1;
		return 0;
	}
	hypr_sparse_entry(ent, *v, (size_t)*nv, (int64_t)x->size);
	return 0;
}

int
lset_write(struct ctx *c, struct lset *s, struct hypr_layer *layer, struct hypr_err *e)
{
	struct wstate ws = { .e = e };
	struct archive *a;
	struct archive_entry *ent;
	char digest[HYPR_DIGEST_LEN + 1];
	uint64_t size;

	qsort(s->v, s->n, sizeof(*s->v), cmp_entry);
	hypr_map_free(&s->idx, NULL);	/* indices are stale now */
	if (hypr_blob_begin(&ws.w, &c->root, e) < 0)
		return -1;
	a = archive_write_new();
	ent = archive_entry_new();
	archive_write_set_format_pax_restricted(a);
	archive_write_set_bytes_per_block(a, 10240);
	if (archive_write_open(a, &ws, NULL, wcb, NULL) != ARCHIVE_OK)
		goto bad;
	for (size_t i = 0; i < s->n; i++) {
		const struct lentry *x = &s->v[i];
		struct hypr_extent *v = NULL;
		ssize_t nv = -1;
		int fd = -1, rc;

		archive_entry_clear(ent);
		archive_entry_set_pathname(ent, x->path);
		archive_entry_set_mode(ent, x->n.mode);
		archive_entry_set_uid(ent, x->n.uid);
		archive_entry_set_gid(ent, x->n.gid);
		archive_entry_set_mtime(ent, clamp_time(c, x->n.mtime), 0);
		if (x->n.hardlink) {
			archive_entry_set_hardlink(ent, x->n.link);
			archive_entry_set_size(ent, 0);
		} else if (S_ISLNK(x->n.mode)) {
			archive_entry_set_symlink(ent, x->n.link ? x->n.link : "");
		} else if (S_ISREG(x->n.mode)) {
			archive_entry_set_size(ent, (la_int64_t)x->size);
			if (x->src)
				add_xattrs(ent, x->src);
			if (x->size > 0) {
				if ((fd = open(x->src, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) < 0) {
					hypr_err_errno(e, HYPR_EXIT_SYSTEM, "reading %s", x->src);
					goto fail;
				}
				if (data_map(ent, fd, x, &v, &nv, e) < 0) {
					close(fd);
					goto fail;
				}
			}
		}
		/* ARCHIVE_WARN: a name that is not UTF-8; the pax writer fell
		 * back to hdrcharset=BINARY and wrote it as bytes, as OCI
		 * layers carry names (Docker stores them too) */
		if (archive_write_header(a, ent) < ARCHIVE_WARN) {
			if (fd >= 0)
				close(fd);
			free(v);
			goto bad;
		}
		rc = fd >= 0 ? write_data(a, fd, x, v, nv, e) : 0;
		if (fd >= 0)
			close(fd);
		free(v);
		if (rc < 0)
			goto fail;
	}
	if (archive_write_close(a) != ARCHIVE_OK)
		goto bad;
	archive_write_free(a);
	archive_entry_free(ent);
	if (hypr_blob_commit(&ws.w, NULL, digest, &size, e) < 0)
		return -1;
	hypr_layer_set(layer, digest, (int64_t)size, HYPR_MEDIA_LAYER_TAR);
	return 0;
bad:
	if (!ws.failed)
		hypr_err_set(e, HYPR_EXIT_SYSTEM, "writing layer: %s",
		    archive_error_string(a));
fail:
	archive_write_free(a);
	archive_entry_free(ent);
	hypr_blob_abort(&ws.w);
	return -1;
}

int
layer_from_file(struct ctx *c, const char *tmp, struct hypr_layer *layer,
    struct hypr_err *e)
{
	char digest[HYPR_DIGEST_LEN + 1];
	uint64_t size;

	if (hypr_blob_adopt(&c->root, tmp, NULL, digest, &size, e) < 0)
		return -1;
	hypr_layer_set(layer, digest, (int64_t)size, HYPR_MEDIA_LAYER_TAR);
	return 0;
}
