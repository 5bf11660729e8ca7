/* rootfs.c - flatten OCI layer chains into one tar (squash.c makes the
 * squashfs, rootfs_read.c reads one file out of a chain).
 *
 * Flattening reads the layers once, top layer first. When layer l is read,
 * every layer above it has already been seen, so whether an entry of l is
 * visible is known at once: it is hidden if a higher layer has an entry or a
 * whiteout at the same path, or a whiteout, an opaque marker or a non-
 * directory at one of its ancestors. A visible regular file's data stays
 * where it is when its layer is an uncompressed tar file (its offset there
 * is noted: no copy), else it is copied into an unlinked spill file; the
 * survivors are then sorted (tree order: "a" < "a/b" < "a.b") and
 * rootfs_write.c writes them as one pax tar whose data comes from the layers
 * and the spill. Hard links are kept: a group of names sharing one inode is
 * written as a regular file at the first name in sorted order and hard links
 * to it at the others, whichever of them the layers wrote as the file. */
#include "rootfs.h"
#include "rootfs_flat.h"
#include "rootfs_int.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cas.h"
#include "map.h"
#include "oci.h"
#include "path.h"

/* libarchive leaves no message for some truncations */
const char *
aerr(struct archive *a)
{
	const char *m = archive_error_string(a);

	return m ? m : "truncated or corrupt tar";
}

/* ---- paths ---- */

/* Tree order: compare as if '/' sorted before every other byte. */
static int
path_cmp(const char *a, const char *b)
{
	while (*a && *a == *b) {
		a++;
		b++;
	}
	if (*a == *b)
		return 0;
	int ca = *a == '/' ? 1 : *a == '\0' ? 0 : (unsigned char)*a + 2;
	int cb = *b == '/' ? 1 : *b == '\0' ? 0 : (unsigned char)*b + 2;

	return ca - cb;
}

/* ---- flattening ---- */

static void
flat_free(struct flat *f)
{
	for (size_t i = 0; i < f->n; i++) {
		free(f->nodes[i]->m.symlink);
		free(f->nodes[i]->m.xattrs);
		free(f->nodes[i]->path);
		free(f->nodes[i]->link);
		free(f->nodes[i]);
	}
	free(f->nodes);
	hypr_map_free(&f->upper, NULL);
	hypr_map_free(&f->cur, NULL);
	hypr_map_free(&f->pending, NULL);
	free(f->buf);
	if (f->ent)
		archive_entry_free(f->ent);
	if (f->spill >= 0)
		close(f->spill);
}

static int
open_spill(const char *dir, struct hypr_err *e)
{
	char tmpl[HYPR_PATH_BUF];
	int fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);

	if (fd >= 0)
		return fd;
	/* no O_TMPFILE on this filesystem: an unlinked temp file instead */
	snprintf(tmpl, sizeof(tmpl), "%s/hypr-spill.XXXXXX", dir);
	if ((fd = mkostemp(tmpl, O_CLOEXEC)) < 0)
		return hypr_err_errno(e, HYPR_EXIT_SYSTEM, "creating spill file in %s", dir);
	unlink(tmpl);
	return fd;
}

struct archive *
open_layer(int fd, struct hypr_err *e)
{
	struct archive *a = archive_read_new();

	if (a == NULL) {
		hypr_err_set(e, HYPR_EXIT_SYSTEM, "out of memory");
		return NULL;
	}
	archive_read_support_filter_all(a);
	archive_read_support_format_tar(a);
	archive_read_support_format_empty(a);
	/* names are bytes: never convert them through the locale */
	archive_read_set_options(a, "hdrcharset=BINARY");
	if (archive_read_open_fd(a, fd, IOBUF) != ARCHIVE_OK) {
		hypr_err_set(e, HYPR_EXIT_INPUT, "%s", aerr(a));
		archive_read_free(a);
		return NULL;
	}
	return a;
}

static int
pwrite_all(int fd, const void *buf, size_t n, off_t off)
{
	const char *p = buf;

	while (n > 0) {
		ssize_t w = pwrite(fd, p, n, off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
		off += w;
	}
	return 0;
}

/* A regular file's data into the spill, at a block-aligned offset so that
 * its holes stay holes there (pwrite past them). blk (or NULL): its first
 * block, already read. */
static int
spill_data(struct flat *f, struct archive *a, struct node *nd, int64_t size,
    const void *blk, size_t n, la_int64_t off, struct hypr_err *e)
{
	int64_t got = 0;
	int r = blk ? ARCHIVE_OK : archive_read_data_block(a, &blk, &n, &off);

	nd->fd = f->spill;
	nd->off = (f->spill_end + 4095) & ~(off_t)4095;
	for (; r == ARCHIVE_OK; r = archive_read_data_block(a, &blk, &n, &off)) {
		if (off != got)
			nd->sparse = 1;	/* a hole before this block */
		if (off < 0 || off > size || (int64_t)n > size - off)
			return hypr_err_set(e, HYPR_EXIT_INPUT, "%s: data beyond its size",
			    nd->path);
		if (n && pwrite_all(f->spill, blk, n, nd->off + (off_t)off) < 0)
			return hypr_err_errno(e, HYPR_EXIT_SYSTEM, "writing spill file");
		got = off + (int64_t)n;
	}
	if (r != ARCHIVE_EOF)
		return hypr_err_set(e, HYPR_EXIT_INPUT, "%s: %s", nd->path, aerr(a));
	if (got != size)
		nd->sparse = 1;	/* ends in a hole (the size is the header's) */
	nd->size = size;
	nd->spilled = 1;
	f->spill_end = nd->off + (off_t)size;
	return 0;
}

/* Whether the data of layer a (read from fd) can stay where it is: an
 * uncompressed tar in a regular file. */
static int
in_place(struct archive *a, int fd)
{
	struct stat st;

	return archive_filter_count(a) == 1 && archive_filter_code(a, 0) == ARCHIVE_FILTER_NONE &&
	    fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
}

/* A regular file's data: with fd >= 0 (in_place), its offset in the layer
 * file, where it is contiguous unless sparse; checked against the first
 * block libarchive reads, and spilled when that differs. */
static int
place_data(struct flat *f, struct archive *a, struct archive_entry *ae, struct node *nd,
    int fd, struct hypr_err *e)
{
	int64_t size = archive_entry_size(ae);
	la_int64_t at, off;
	const void *blk;
	unsigned char head[64];
	size_t n, k;
	int r;

	if (fd < 0 || size <= 0 || archive_entry_sparse_count(ae) > 0)
		return spill_data(f, a, nd, size, NULL, 0, 0, e);
	at = archive_filter_bytes(a, 0);
	if ((r = archive_read_data_block(a, &blk, &n, &off)) != ARCHIVE_OK)
		return r == ARCHIVE_EOF ? spill_data(f, a, nd, size, NULL, 0, 0, e) :
		    hypr_err_set(e, HYPR_EXIT_INPUT, "%s: %s", nd->path, aerr(a));
	k = n < sizeof(head) ? n : sizeof(head);
	if (off != 0 || n == 0 || (int64_t)n > size || at < 0 ||
	    pread(fd, head, k, (off_t)at) != (ssize_t)k || memcmp(head, blk, k) != 0)
		return spill_data(f, a, nd, size, blk, n, off, e);
	nd->fd = fd;
	nd->off = (off_t)at;
	nd->size = size;
	nd->spilled = 1;	/* its data is placed; the rest is skipped */
	return 0;
}

static int
meta_of(struct meta *m, struct archive_entry *ae, int64_t epoch)
{
	const char *name, *sl;
	const void *val;
	size_t vlen;

	m->uid = archive_entry_uid(ae);
	m->gid = archive_entry_gid(ae);
	m->mode = (uint32_t)archive_entry_mode(ae);
	m->rdev = archive_entry_rdev(ae);
	if ((m->mtime_set = archive_entry_mtime_is_set(ae) != 0)) {
		m->mtime = archive_entry_mtime(ae);
		m->mtime_ns = (int32_t)archive_entry_mtime_nsec(ae);
		if (epoch >= 0 && m->mtime >= epoch) {
			m->mtime = epoch;
			m->mtime_ns = 0;
		}
	}
	if (archive_entry_filetype(ae) == AE_IFLNK && (sl = archive_entry_symlink(ae)) &&
	    !(m->symlink = strdup(sl)))
		return -1;
	archive_entry_xattr_reset(ae);
	while (archive_entry_xattr_next(ae, &name, &val, &vlen) == ARCHIVE_OK) {
		size_t nl = strlen(name) + 1, add = nl + 4 + vlen;
		char *x = realloc(m->xattrs, m->xlen + add);
		uint32_t l32 = (uint32_t)vlen;

		if (x == NULL || vlen > UINT32_MAX)
			return -1;
		memcpy(x + m->xlen, name, nl);
		memcpy(x + m->xlen + nl, &l32, 4);
		memcpy(x + m->xlen + nl + 4, val, vlen);
		m->xattrs = x;
		m->xlen += add;
	}
	return 0;
}

static unsigned
upper_flags(const struct flat *f, const char *path)
{
	return (unsigned)(uintptr_t)hypr_map_get(&f->upper, path);
}

/* Would a path from a lower layer be hidden by the layers above? */
static int
hidden_above(const struct flat *f, const char *path)
{
	char *p = (char *)path, *s;

	if (upper_flags(f, path) & (U_DIR | U_NONDIR | U_WHITEOUT))
		return 1;
	if ((upper_flags(f, "") & U_OPAQUE) && *path)
		return 1;
	/* ancestors: temporarily cut the path at each '/' */
	for (s = strchr(p, '/'); s; s = strchr(s + 1, '/')) {
		int hide;

		*s = '\0';
		hide = (upper_flags(f, p) & (U_NONDIR | U_WHITEOUT | U_OPAQUE)) != 0;
		*s = '/';
		if (hide)
			return 1;
	}
	return 0;
}

static int
add_node(struct flat *f, struct node *nd, struct hypr_err *e)
{
	if (f->n == f->cap) {
		size_t nc = f->cap ? f->cap * 2 : 4096;
		struct node **nn = realloc(f->nodes, nc * sizeof(*nn));

		if (nn == NULL)
			return hypr_err_errno(e, HYPR_EXIT_SYSTEM, "flatten");
		f->nodes = nn;
		f->cap = nc;
	}
	f->nodes[f->n++] = nd;
	return 0;
}

/* Record an upper-map flag for path (the map copies its keys). */
static int
upper_mark(struct flat *f, const char *path, unsigned flag, struct hypr_err *e)
{
	void **v = hypr_map_slot(&f->upper, path, NULL);

	if (v == NULL)
		return hypr_err_errno(e, HYPR_EXIT_SYSTEM, "flatten");
	*v = (void *)((uintptr_t)*v | flag);
	return 0;
}

/* Read one layer (index l) and record its entries. */
/* A component of path but the last starts with ".wh.". */
static int
wh_parent(const char *path)
{
	for (const char *p = path; (p = strstr(p, ".wh.")) != NULL; p++)
		if ((p == path || p[-1] == '/') && strchr(p, '/'))
			return 1;
	return 0;
}

/* A needed hard link whose target is in a lower layer (or nowhere):
 * queued under the target's path until a lower layer has it. */
static int
queue_link(struct flat *f, struct node *nd, struct hypr_err *e)
{
	void **pe = hypr_map_slot(&f->pending, nd->link, NULL);

	if (pe == NULL)
		return hypr_err_errno(e, HYPR_EXIT_SYSTEM, "flatten");
	nd->link_to = *pe;
	*pe = nd;
	return 0;
}

/* A needed link resolved to t, an earlier entry of this layer that
 * nothing needed so far (hidden by a layer above): the data at the end of
 * t's chain of links is needed too. A link in the chain that was not
 * queued for its lower-layer target is queued now. */
static int
need_chain(struct flat *f, struct node *t, struct hypr_err *e)
{
	for (int depth = 0; t && !t->needed && depth < 64; depth++) {
		t->needed = 1;
		if (!t->link) {
			if (!t->spilled && (t->m.mode & AE_IFMT) == AE_IFREG)
				t->need_data = 1;
			return 0;
		}
		if (t->link_to == NULL)
			return queue_link(f, t, e);
		t = t->link_to;
	}
	return 0;
}

static int
read_layer(struct flat *f, int fd, size_t l, const char *name, struct hypr_err *e)
{
	struct archive *a = open_layer(fd, e);
	struct archive_entry *ae;
	struct hypr_map marks = { 0 };	/* whiteouts of this layer: path -> U_* */
	uint64_t ord = 0;
	int r, rc = -1, dfd;

	if (a == NULL)
		return hypr_err_prefix(e, "layer %s", name);
	dfd = in_place(a, fd) ? fd : -1;
	hypr_map_free(&f->cur, NULL);
	while ((r = archive_read_next_header(a, &ae)) == ARCHIVE_OK || r == ARCHIVE_WARN) {
		const char *raw = archive_entry_pathname(ae), *base;
		char *path;
		struct node *nd;
		void **h;
		int bad;

		ord++;
		if (raw == NULL) {
			hypr_err_set(e, HYPR_EXIT_INPUT, "layer %s: entry %llu has no name",
			    name, (unsigned long long)ord);
			goto out;
		}
		if ((path = hypr_path_member(raw, 0, &bad)) == NULL) {
			if (bad)
				hypr_err_set(e, HYPR_EXIT_INPUT,
				    "layer %s: refusing hostile path '%s'", name, raw);
			else
				hypr_err_errno(e, HYPR_EXIT_SYSTEM, "flatten");
			goto out;
		}
		if (wh_parent(path)) {
			/* "a/.wh.b/c": a whiteout's name as a directory, which
			 * would reach the rootfs as a name no layer may hold */
			hypr_err_set(e, HYPR_EXIT_INPUT,
			    "layer %s: refusing '%s': a whiteout name (.wh.) as a directory", name, raw);
			free(path);
			goto out;
		}
		base = strrchr(path, '/');
		base = base ? base + 1 : path;
		if (strncmp(base, ".wh.", 4) == 0) {
			/* a whiteout: affects lower layers only */
			size_t dl = (size_t)(base - path);
			char *tgt;
			unsigned flag;

			if (strcmp(base, ".wh..wh..opq") == 0) {
				tgt = strndup(path, dl ? dl - 1 : 0);
				flag = U_OPAQUE;
			} else if (strncmp(base, ".wh..wh.", 8) == 0) {
				free(path);	/* aufs bookkeeping: drop */
				continue;
			} else {
				const char *w = base + 4;

				if (!*w || strcmp(w, ".") == 0 || strcmp(w, "..") == 0) {
					hypr_err_set(e, HYPR_EXIT_INPUT,
					    "layer %s: bad whiteout '%s'", name, raw);
					free(path);
					goto out;
				}
				memmove(path + dl, w, strlen(w) + 1);
				tgt = path;
				path = NULL;
				flag = U_WHITEOUT;
			}
			free(path);
			if (tgt == NULL || (h = hypr_map_slot(&marks, tgt, NULL)) == NULL) {
				free(tgt);
				hypr_err_errno(e, HYPR_EXIT_SYSTEM, "flatten");
				goto out;
			}
			free(tgt);
			*h = (void *)((uintptr_t)*h | flag);
			continue;
		}
		if ((nd = calloc(1, sizeof(*nd))) == NULL) {
			free(path);
			hypr_err_errno(e, HYPR_EXIT_SYSTEM, "flatten");
			goto out;
		}
		nd->path = path;
		nd->layer = l;
		nd->ord = ord;
		if (add_node(f, nd, e) < 0) {
			free(path);
			free(nd);
			goto out;
		}
		if (meta_of(&nd->m, ae, f->epoch) < 0) {
			hypr_err_errno(e, HYPR_EXIT_SYSTEM, "flatten");
			goto out;
		}
		nd->size = archive_entry_size(ae);
		if (archive_entry_hardlink(ae) != NULL) {
			if ((nd->link = hypr_path_member(archive_entry_hardlink(ae), 0, &bad)) == NULL) {
				if (bad)
					hypr_err_set(e, HYPR_EXIT_INPUT,
					    "layer %s: refusing hard link '%s' -> '%s'",
					    name, raw, archive_entry_hardlink(ae));
				else
					hypr_err_errno(e, HYPR_EXIT_SYSTEM, "flatten");
				goto out;
			}
		}
		/* a later entry of the same layer replaces an earlier one */
		if ((h = hypr_map_slot(&f->cur, nd->path, NULL)) == NULL) {
			hypr_err_errno(e, HYPR_EXIT_SYSTEM, "flatten");
			goto out;
		}
		if (*h)
			((struct node *)*h)->visible = 0;
		*h = nd;
		nd->visible = !hidden_above(f, nd->path);
		/* hard links of higher layers (or this one) waiting for this path */
		struct node *w = hypr_map_get(&f->pending, nd->path);
		int wanted = 0, needed;

		if (w) {
			struct node *next;
			struct node *keep = NULL;

			for (; w; w = next) {
				next = w->link_to;
				if (w->layer > l) {
					w->link_to = nd;
					wanted = 1;
				} else {	/* same layer: target after link, not ours */
					w->link_to = keep;
					keep = w;
				}
			}
			if (hypr_map_set(&f->pending, nd->path, keep, NULL) < 0) {
				hypr_err_errno(e, HYPR_EXIT_SYSTEM, "flatten");
				goto out;
			}
		}
		needed = nd->visible || wanted;
		nd->needed = needed;
		if (nd->link) {
			struct node *t = hypr_map_get(&f->cur, nd->link);

			if (t && t != nd) {
				nd->link_to = t;
				if (needed && need_chain(f, t, e) < 0)
					goto out;
			} else if (needed && queue_link(f, nd, e) < 0)
				goto out;
		} else if (archive_entry_filetype(ae) == AE_IFREG && needed) {
			if (place_data(f, a, ae, nd, dfd, e) < 0) {
				hypr_err_prefix(e, "layer %s", name);
				goto out;
			}
		}
	}
	if (r != ARCHIVE_EOF) {
		hypr_err_set(e, HYPR_EXIT_INPUT, "layer %s: %s", name, aerr(a));
		goto out;
	}
	/* this layer now becomes part of "above" for the lower ones */
	for (size_t i = 0; i < f->cur.cap; i++) {
		struct node *nd = f->cur.keys[i] ? f->cur.vals[i] : NULL;

		if (!nd)
			continue;
		if (upper_mark(f, nd->path,
		    (nd->m.mode & AE_IFMT) == AE_IFDIR ? U_DIR : U_NONDIR, e) < 0)
			goto out;
	}
	for (size_t i = 0; i < marks.cap; i++)
		if (marks.keys[i] && upper_mark(f, marks.keys[i], (unsigned)(uintptr_t)marks.vals[i], e) < 0)
			goto out;
	rc = 0;
out:
	hypr_map_free(&marks, NULL);
	archive_read_free(a);
	return rc;
}

/* Second look at a layer for targets of hard links whose data was skipped
 * (the target itself is hidden, a link to it is not). */
static int
reread_layer(struct flat *f, int fd, size_t l, const char *name, struct hypr_err *e)
{
	struct archive *a;
	struct archive_entry *ae;
	uint64_t ord = 0;
	size_t i;
	int r, any = 0, dfd;

	for (i = 0; i < f->n && !any; i++)
		any = f->nodes[i]->layer == l && f->nodes[i]->need_data &&
		    !f->nodes[i]->spilled;
	if (!any)
		return 0;
	if (lseek(fd, 0, SEEK_SET) < 0)
		return hypr_err_errno(e, HYPR_EXIT_SYSTEM, "layer %s: rewinding", name);
	if ((a = open_layer(fd, e)) == NULL)
		return hypr_err_prefix(e, "layer %s", name);
	dfd = in_place(a, fd) ? fd : -1;
	i = 0;
	while ((r = archive_read_next_header(a, &ae)) == ARCHIVE_OK || r == ARCHIVE_WARN) {
		ord++;
		for (; i < f->n && (f->nodes[i]->layer != l || f->nodes[i]->ord < ord); i++)
			;
		if (i < f->n && f->nodes[i]->ord == ord && f->nodes[i]->layer == l &&
		    f->nodes[i]->need_data && !f->nodes[i]->spilled &&
		    place_data(f, a, ae, f->nodes[i], dfd, e) < 0) {
			archive_read_free(a);
			return hypr_err_prefix(e, "layer %s", name);
		}
	}
	archive_read_free(a);
	return 0;
}

static int
node_cmp(const void *x, const void *y)
{
	const struct node *a = *(struct node *const *)x, *b = *(struct node *const *)y;

	return path_cmp(a->path, b->path);
}


int
hypr_rootfs_flatten_fds(const int *fds, const char *const *names, size_t n,
    int out_fd, int64_t epoch, const char *tmpdir, struct hypr_err *e)
{
	struct flat f = { .spill = -1, .epoch = epoch, .cur.borrow = 1, .pending.borrow = 1 };
	struct node **vis = NULL;
	size_t nv = 0;
	int rc = -1;

	if ((f.buf = malloc(IOBUF)) == NULL || (f.ent = archive_entry_new()) == NULL) {
		free(f.buf);
		return hypr_err_errno(e, HYPR_EXIT_SYSTEM, "flatten");
	}
	if ((f.spill = open_spill(tmpdir, e)) < 0)
		goto out;
	for (size_t i = n; i-- > 0;)
		if (read_layer(&f, fds[i], i, names[i], e) < 0)
			goto out;
	/* links whose target no layer had: unlink the waiting lists */
	for (size_t i = 0; i < f.pending.cap; i++) {
		struct node *wl = f.pending.keys[i] ? f.pending.vals[i] : NULL, *next;

		for (; wl; wl = next) {
			next = wl->link_to;
			wl->link_to = NULL;
		}
	}
	for (size_t i = 0; i < n; i++)
		if (reread_layer(&f, fds[i], i, names[i], e) < 0)
			goto out;
	if (f.n && (vis = malloc(f.n * sizeof(*vis))) == NULL) {
		hypr_err_errno(e, HYPR_EXIT_SYSTEM, "flatten");
		goto out;
	}
	for (size_t i = 0; i < f.n; i++)
		if (f.nodes[i]->visible)
			vis[nv++] = f.nodes[i];
	if (nv)
		qsort(vis, nv, sizeof(*vis), node_cmp);
	rc = flat_write(&f, vis, nv, out_fd, e);
out:
	free(vis);
	flat_free(&f);
	return rc;
}

const char *
tmp_dir(void)
{
	const char *t = getenv("TMPDIR");

	return t && *t ? t : "/tmp";
}

static int
open_files(const char *const *paths, size_t n, int *fds, struct hypr_err *e)
{
	for (size_t i = 0; i < n; i++)
		fds[i] = -1;
	for (size_t i = 0; i < n; i++)
		if ((fds[i] = open(paths[i], O_RDONLY | O_CLOEXEC)) < 0) {
			int code = errno == ENOENT ? HYPR_EXIT_INPUT : HYPR_EXIT_SYSTEM;

			return hypr_err_errno(e, code, "%s", paths[i]);
		}
	return 0;
}

void
close_files(int *fds, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (fds[i] >= 0)
			close(fds[i]);
}

/* A chain's layers as uncompressed tars (hypr_layer_open), their fds. */
int
open_blobs(const struct hypr_root *r, const char *const *layers, size_t n,
    int *fds, struct hypr_err *e)
{
	for (size_t i = 0; i < n; i++)
		fds[i] = -1;
	for (size_t i = 0; i < n; i++)
		if ((fds[i] = hypr_layer_open(r, layers[i], e)) < 0)
			return -1;
	return 0;
}

int
hypr_rootfs_flatten(const struct hypr_root *r, const char *const *layers,
    size_t n, int out_fd, struct hypr_err *e)
{
	int *fds = calloc(n ? n : 1, sizeof(int)), rc = -1;
	char tmp[HYPR_PATH_BUF];

	if (fds == NULL)
		return hypr_err_errno(e, HYPR_EXIT_SYSTEM, "flatten");
	hypr_root_path(r, tmp, sizeof(tmp), "tmp");
	if (open_blobs(r, layers, n, fds, e) == 0)
		rc = hypr_rootfs_flatten_fds(fds, layers, n, out_fd, -1, tmp, e);
	close_files(fds, n);
	free(fds);
	return rc;
}

int
hypr_rootfs_flatten_files(const char *const *paths, size_t n, int out_fd,
    struct hypr_err *e)
{
	int *fds = calloc(n ? n : 1, sizeof(int)), rc = -1;

	if (fds == NULL)
		return hypr_err_errno(e, HYPR_EXIT_SYSTEM, "flatten");
	if (open_files(paths, n, fds, e) == 0)
		rc = hypr_rootfs_flatten_fds(fds, paths, n, out_fd, -1, tmp_dir(), e);
	close_files(fds, n);
	free(fds);
	return rc;
}
