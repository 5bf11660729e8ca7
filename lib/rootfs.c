/* rootfs.c - flatten OCI layer chains into one tar, and tar -> squashfs.
 *
 * Flattening reads the layers once, top layer first. When layer l is read,
 * every layer above it has already been seen, so whether an entry of l is
 * visible is known at once: it is hidden if a higher layer has an entry or a
 * whiteout at the same path, or a whiteout, an opaque marker or a non-
 * directory at one of its ancestors. Visible regular files have their data
 * copied into an unlinked spill file; the survivors are then sorted (tree
 * order: "a" < "a/b" < "a.b") and written as one pax tar whose data comes
 * from the spill. Hard links are kept: a group of names sharing one inode is
 * written as a regular file at the first name in sorted order and hard links
 * to it at the others, whichever of them the layers wrote as the file. */
#include "rootfs.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cache.h"
#include "digest.h"
#include "fsutil.h"
#include "map.h"
#include "sparse.h"
#include "stream.h"

extern char **environ;

#define IOBUF (256 * 1024)

/* libarchive leaves no message for some truncations */
static const char *
aerr(struct archive *a)
{
	const char *m = archive_error_string(a);

	return m ? m : "truncated or corrupt tar";
}

/* ---- paths ---- */

/* Clean a tar member name into "a/b/c" ("" for the root). Refuses absolute
 * names and "..". Returns a malloc'd string, or NULL with *bad set. */
static char *
clean_path(const char *in, int *bad)
{
	size_t n = strlen(in), o = 0;
	char *out = malloc(n + 1);
	const char *p = in;

	*bad = 0;
	if (out == NULL)
		return NULL;
	if (*in == '/') {
		*bad = 1;
		free(out);
		return NULL;
	}
	while (*p) {
		const char *s = p;
		size_t len;

		while (*p && *p != '/')
			p++;
		len = (size_t)(p - s);
		if (*p == '/')
			p++;
		if (len == 0 || (len == 1 && s[0] == '.'))
			continue;
		if (len == 2 && s[0] == '.' && s[1] == '.') {
			*bad = 1;
			free(out);
			return NULL;
		}
		if (o)
			out[o++] = '/';
		memcpy(out + o, s, len);
		o += len;
	}
	out[o] = '\0';
	return out;
}

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

/* upper-map flags: what layers above the current one put at a path */
enum {
	U_DIR = 1,		/* a directory */
	U_NONDIR = 2,		/* anything but a directory: hides children */
	U_WHITEOUT = 4,		/* .wh.NAME: hides the path and its children */
	U_OPAQUE = 8,		/* .wh..wh..opq inside: hides children */
};

/* What a visible entry needs to be written again: the tar header's fields
 * that a root filesystem keeps (owner names, atime/ctime, ACLs other than
 * xattrs and file flags are not kept). A full archive_entry per file cost
 * 2.7 KB; this costs ~100 bytes plus the names. */
struct meta {
	int64_t uid, gid, mtime;
	uint32_t mode;		/* with the AE_IFMT type bits */
	int32_t mtime_ns;
	unsigned mtime_set : 1;
	dev_t rdev;
	char *symlink;		/* symlink target */
	char *xattrs;		/* name NUL, u32 length, value; repeated */
	size_t xlen;
};

struct node {
	char *path;
	char *link;		/* cleaned hard-link target, or NULL */
	struct meta m;
	struct node *link_to;	/* hard link: the entry the target resolved to */
	struct node *first;	/* source of a link group: name written as file */
	size_t layer;
	uint64_t ord;		/* entry number within its layer */
	off_t off;		/* data in the spill file */
	int64_t size;
	unsigned visible : 1, spilled : 1, need_data : 1, sparse : 1;
};

struct flat {
	int spill;
	off_t spill_end;
	struct node **nodes;
	size_t n, cap;
	struct hypr_map upper;	/* path -> U_* (as a pointer) from layers above */
	struct hypr_map cur;	/* path -> node of the current layer (borrowed keys) */
	struct hypr_map pending;	/* hard-link target path -> list head (node; borrowed) */
	char *buf;
	int64_t epoch;
	struct archive_entry *ent;	/* reused by write_node */
};

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
	char tmpl[4200];
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

static struct archive *
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
 * its holes stay holes there (pwrite past them). */
static int
spill_data(struct flat *f, struct archive *a, struct node *nd, int64_t size,
    struct hypr_err *e)
{
	const void *blk;
	size_t n;
	la_int64_t off;
	int64_t got = 0;
	int r;

	nd->off = (f->spill_end + 4095) & ~(off_t)4095;
	while ((r = archive_read_data_block(a, &blk, &n, &off)) == ARCHIVE_OK) {
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

/* ent from m (ent cleared first); the caller sets name, size, links. */
static void
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
static int
read_layer(struct flat *f, int fd, size_t l, const char *name, struct hypr_err *e)
{
	struct archive *a = open_layer(fd, e);
	struct archive_entry *ae;
	struct hypr_map marks = { 0 };	/* whiteouts of this layer: path -> U_* */
	uint64_t ord = 0;
	int r, rc = -1;

	if (a == NULL)
		return hypr_err_prefix(e, "layer %s", name);
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
		if ((path = clean_path(raw, &bad)) == NULL) {
			if (bad)
				hypr_err_set(e, HYPR_EXIT_INPUT,
				    "layer %s: refusing hostile path '%s'", name, raw);
			else
				hypr_err_errno(e, HYPR_EXIT_SYSTEM, "flatten");
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
			if ((nd->link = clean_path(archive_entry_hardlink(ae), &bad)) == NULL) {
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
		void **pe;
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
		if (nd->link) {
			struct node *t = hypr_map_get(&f->cur, nd->link);

			if (t && t != nd) {

				nd->link_to = t;
				if (!t->spilled && (t->m.mode & AE_IFMT) == AE_IFREG &&
				    !t->link && needed)
					t->need_data = 1;
			} else if (needed) {
				/* target in a lower layer: queue until we meet it */
				if ((pe = hypr_map_slot(&f->pending, nd->link, NULL)) == NULL) {
					hypr_err_errno(e, HYPR_EXIT_SYSTEM, "flatten");
					goto out;
				}
				nd->link_to = *pe;
				*pe = nd;
			}
		} else if (archive_entry_filetype(ae) == AE_IFREG && needed) {
			if (spill_data(f, a, nd, archive_entry_size(ae), e) < 0) {
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
	int r, any = 0;

	for (i = 0; i < f->n && !any; i++)
		any = f->nodes[i]->layer == l && f->nodes[i]->need_data &&
		    !f->nodes[i]->spilled;
	if (!any)
		return 0;
	if (lseek(fd, 0, SEEK_SET) < 0)
		return hypr_err_errno(e, HYPR_EXIT_SYSTEM, "layer %s: rewinding", name);
	if ((a = open_layer(fd, e)) == NULL)
		return hypr_err_prefix(e, "layer %s", name);
	i = 0;
	while ((r = archive_read_next_header(a, &ae)) == ARCHIVE_OK || r == ARCHIVE_WARN) {
		ord++;
		for (; i < f->n && (f->nodes[i]->layer != l || f->nodes[i]->ord < ord); i++)
			;
		if (i < f->n && f->nodes[i]->ord == ord && f->nodes[i]->layer == l &&
		    f->nodes[i]->need_data && !f->nodes[i]->spilled &&
		    spill_data(f, a, f->nodes[i], archive_entry_size(ae), e) < 0) {
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

/* The regular file (or other non-link) a hard link ends at. */
static struct node *
link_source(struct node *nd)
{
	for (int depth = 0; nd && nd->link && depth < 64; depth++)
		nd = nd->link_to;
	return nd && !nd->link ? nd : NULL;
}

static int
write_data_range(struct flat *f, struct archive *w, const char *path, off_t off,
    int64_t left, struct hypr_err *e)
{
	while (left > 0) {
		size_t want = left > IOBUF ? IOBUF : (size_t)left;
		ssize_t r = pread(f->spill, f->buf, want, off);

		if (r <= 0)
			return hypr_err_errno(e, HYPR_EXIT_SYSTEM, "reading spill file");
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
		rc = write_data_range(f, w, path, src->off, src->size, e);
		goto out;
	}
	for (ssize_t i = 0; i <= n; i++) {
		int64_t off = i < n ? v[i].off : src->size, len = i < n ? v[i].len : 0;

		if (off > at && hypr_sparse_write_hole(w, off - at) < 0) {
			hypr_err_set(e, HYPR_EXIT_SYSTEM, "writing %s: %s", path,
			    archive_error_string(w));
			goto out;
		}
		if (write_data_range(f, w, path, src->off + (off_t)off, len, e) < 0)
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
hypr_rootfs_flatten_fds(const int *fds, const char *const *names, size_t n,
    int out_fd, int64_t epoch, const char *tmpdir, struct hypr_err *e)
{
	struct flat f = { .spill = -1, .epoch = epoch, .cur.borrow = 1, .pending.borrow = 1 };
	struct archive *w = NULL;
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
	if ((w = archive_write_new()) == NULL) {
		hypr_err_set(e, HYPR_EXIT_SYSTEM, "out of memory");
		goto out;
	}
	archive_write_set_format_pax_restricted(w);
	archive_write_set_bytes_per_block(w, 65536);
	archive_write_set_bytes_in_last_block(w, 1);
	if (archive_write_open_fd(w, out_fd) != ARCHIVE_OK) {
		hypr_err_set(e, HYPR_EXIT_SYSTEM, "%s", archive_error_string(w));
		goto out;
	}
	for (size_t i = 0; i < nv; i++)
		if (write_node(&f, w, vis[i], e) < 0)
			goto out;
	if (archive_write_close(w) != ARCHIVE_OK) {
		hypr_err_set(e, HYPR_EXIT_SYSTEM, "writing rootfs tar: %s",
		    archive_error_string(w));
		goto out;
	}
	rc = 0;
out:
	if (w)
		archive_write_free(w);
	free(vis);
	flat_free(&f);
	return rc;
}

static const char *
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

static void
close_files(int *fds, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (fds[i] >= 0)
			close(fds[i]);
}

/* Blob paths of a chain, and its fds. */
static int
open_blobs(const struct hypr_root *r, const char *const *layers, size_t n,
    int *fds, struct hypr_err *e)
{
	char p[4300];

	for (size_t i = 0; i < n; i++)
		fds[i] = -1;
	for (size_t i = 0; i < n; i++) {
		if (hypr_blob_path(r, layers[i], p, sizeof(p), e) < 0)
			return -1;
		if ((fds[i] = open(p, O_RDONLY | O_CLOEXEC)) < 0) {
			if (errno == ENOENT)
				return hypr_err_set(e, HYPR_EXIT_INPUT,
				    "layer %s is not in the store", layers[i]);
			return hypr_err_errno(e, HYPR_EXIT_SYSTEM, "%s", p);
		}
	}
	return 0;
}

int
hypr_rootfs_flatten(const struct hypr_root *r, const char *const *layers,
    size_t n, int out_fd, struct hypr_err *e)
{
	int *fds = calloc(n ? n : 1, sizeof(int)), rc = -1;
	char tmp[4300];

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

/* ---- squashfs through tar2sqfs ---- */

static const char *
tar2sqfs_bin(void)
{
	const char *b = getenv("HYPR_TAR2SQFS");

	return b && *b ? b : "tar2sqfs";
}

int
hypr_squash_opts_check(const struct hypr_squash_opts *o, struct hypr_err *e)
{
	const char *c = o->comp ? o->comp : "zstd";
	int max = 0;

	if (strcmp(c, "zstd") == 0)
		max = 22;
	else if (strcmp(c, "gzip") == 0)
		max = 9;
	else if (strcmp(c, "xz") == 0)
		max = 9;
	else if (strcmp(c, "lz4") == 0)
		max = 1;
	else
		return hypr_err_set(e, HYPR_EXIT_USAGE,
		    "unknown compressor '%s' (zstd, gzip, xz, lz4)", c);
	if (o->level < 0 || o->level > max)
		return hypr_err_set(e, HYPR_EXIT_USAGE,
		    "compression level %d out of range for %s (1-%d)", o->level, c, max);
	if (o->block_size && (o->block_size < 4096 || o->block_size > (1u << 20) ||
	    (o->block_size & (o->block_size - 1))))
		return hypr_err_set(e, HYPR_EXIT_USAGE,
		    "block size %u: must be a power of two from 4096 to 1048576",
		    o->block_size);
	return 0;
}

/* Start tar2sqfs reading in_fd, writing out; its stderr goes to err_fd. */
static int
spawn_tar2sqfs(int in_fd, const char *out, const struct hypr_squash_opts *o,
    int err_fd, pid_t *pid, struct hypr_err *e)
{
	const char *comp = o->comp ? o->comp : "zstd";
	char bs[32], jobs[32], backlog[32], defs[96], extra[64];
	const char *argv[24];
	int k = 0, rc;
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	posix_spawn_file_actions_t fa;

	snprintf(bs, sizeof(bs), "%u", o->block_size ? o->block_size : 131072);
	snprintf(jobs, sizeof(jobs), "%ld", ncpu > 0 ? ncpu : 1);
	snprintf(backlog, sizeof(backlog), "%ld", 32 * (ncpu > 0 ? ncpu : 1));
	snprintf(defs, sizeof(defs), "uid=0,gid=0,mode=0755,mtime=%lld",
	    (long long)(o->epoch >= 0 ? o->epoch : 0));
	argv[k++] = tar2sqfs_bin();
	argv[k++] = "--quiet";
	argv[k++] = "--no-skip";
	argv[k++] = "--compressor";
	argv[k++] = comp;
	/* hypr's default is fast zstd (level 3), not tar2sqfs's 15 */
	if (o->level > 0 || strcmp(comp, "zstd") == 0) {
		if (strcmp(comp, "lz4") == 0)
			snprintf(extra, sizeof(extra), "hc");
		else
			snprintf(extra, sizeof(extra), "level=%d", o->level > 0 ? o->level : 3);
		argv[k++] = "--comp-extra";
		argv[k++] = extra;
	}
	argv[k++] = "--block-size";
	argv[k++] = bs;
	argv[k++] = "--num-jobs";
	argv[k++] = jobs;
	/* a deeper queue keeps the compressors busy while the reader waits */
	argv[k++] = "--queue-backlog";
	argv[k++] = backlog;
	argv[k++] = "--defaults";
	argv[k++] = defs;
	argv[k++] = out;
	argv[k] = NULL;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, in_fd, 0);
	posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, err_fd, 2);
	rc = posix_spawnp(pid, argv[0], &fa, NULL, (char *const *)argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	if (rc != 0) {
		errno = rc;
		return hypr_err_errno(e, HYPR_EXIT_SYSTEM, "running %s", argv[0]);
	}
	return 0;
}

/* Wait for tar2sqfs; its stderr was collected into errbuf. */
static int
reap_tar2sqfs(pid_t pid, int err_rd, struct hypr_err *e)
{
	char buf[1024], last[512] = "";
	ssize_t r;
	int st;

	while ((r = read(err_rd, buf, sizeof(buf) - 1)) != 0) {
		if (r < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		buf[r] = '\0';
		/* keep the last non-empty line for the message */
		for (char *line = strtok(buf, "\n"); line; line = strtok(NULL, "\n"))
			snprintf(last, sizeof(last), "%s", line);
	}
	close(err_rd);
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return hypr_err_errno(e, HYPR_EXIT_SYSTEM, "waiting for tar2sqfs");
	if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
		return 0;
	if (WIFSIGNALED(st))
		return hypr_err_set(e, HYPR_EXIT_SYSTEM, "tar2sqfs killed by signal %d",
		    WTERMSIG(st));
	return hypr_err_set(e, HYPR_EXIT_INPUT, "tar2sqfs failed (exit %d)%s%s",
	    WEXITSTATUS(st), *last ? ": " : "", last);
}

static int
tmp_name(const char *out_path, char *buf, size_t n)
{
	static unsigned seq;

	return (size_t)snprintf(buf, n, "%s.tmp.%ld.%u", out_path, (long)getpid(),
	    seq++) >= n ? -1 : 0;
}

int
hypr_squash_tar(int in_fd, const char *out_path,
    const struct hypr_squash_opts *o, struct hypr_err *e)
{
	char tmp[4300];
	int ep[2];
	pid_t pid;

	if (hypr_squash_opts_check(o, e) < 0)
		return -1;
	if (tmp_name(out_path, tmp, sizeof(tmp)) < 0)
		return hypr_err_set(e, HYPR_EXIT_SYSTEM, "%s: path too long", out_path);
	if (pipe2(ep, O_CLOEXEC) < 0)
		return hypr_err_errno(e, HYPR_EXIT_SYSTEM, "pipe");
	if (spawn_tar2sqfs(in_fd, tmp, o, ep[1], &pid, e) < 0) {
		close(ep[0]);
		close(ep[1]);
		return -1;
	}
	close(ep[1]);
	if (reap_tar2sqfs(pid, ep[0], e) < 0) {
		unlink(tmp);
		return -1;
	}
	if (rename(tmp, out_path) < 0) {
		hypr_err_errno(e, HYPR_EXIT_SYSTEM, "renaming %s", tmp);
		unlink(tmp);
		return -1;
	}
	return 0;
}

/* Can tar2sqfs read this layer as it is? Only for one uncompressed,
 * seekable tar that flattening would not change: clean unique names, no
 * whiteouts, hard links to earlier names, no sparse files, no mtime above
 * the epoch. The scan reads headers only (data is skipped by seeking), so
 * it costs little next to a copy of every byte through the flattener. */
static int
direct_ok(int fd, int64_t epoch)
{
	struct stat st;
	struct archive *a;
	struct archive_entry *ae;
	struct hypr_map seen = { .borrow = 1 };
	char **keys = NULL;
	size_t nk = 0, ck = 0;
	off_t start;
	int r, ok = 1;

	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) ||
	    (start = lseek(fd, 0, SEEK_CUR)) < 0)
		return 0;
	if ((a = open_layer(fd, NULL)) == NULL) {
		lseek(fd, start, SEEK_SET);
		return 0;
	}
	while (ok && ((r = archive_read_next_header(a, &ae)) == ARCHIVE_OK || r == ARCHIVE_WARN)) {
		const char *raw = archive_entry_pathname(ae), *base, *hl, *p;
		char *c;
		int bad;
		size_t cl;

		if (archive_filter_code(a, 0) != ARCHIVE_FILTER_NONE || raw == NULL ||
		    archive_entry_sparse_count(ae) > 0 ||
		    (epoch >= 0 && archive_entry_mtime(ae) > epoch) ||
		    (c = clean_path(raw, &bad)) == NULL) {
			ok = 0;
			break;
		}
		/* the name must already be clean: "a/b", "./a/b", "a/b/" */
		p = strncmp(raw, "./", 2) == 0 ? raw + 2 : raw;
		cl = strlen(c);
		base = strrchr(c, '/');
		base = base ? base + 1 : c;
		if ((strncmp(p, c, cl) != 0 || (p[cl] && strcmp(p + cl, "/") != 0)) ||
		    strncmp(base, ".wh.", 4) == 0) {
			free(c);
			ok = 0;
			break;
		}
		if ((hl = archive_entry_hardlink(ae)) != NULL) {
			char *t = clean_path(hl, &bad);

			ok = t && hypr_map_get(&seen, t) != NULL;
			free(t);
		}
		if (ok && hypr_map_get(&seen, c) != NULL)
			ok = 0;	/* a duplicate */
		if (!ok || nk == ck) {
			char **nkp = ok ? realloc(keys, (ck = ck ? ck * 2 : 1024) * sizeof(*keys)) : NULL;

			if (nkp == NULL) {
				free(c);
				ok = 0;
				break;
			}
			keys = nkp;
		}
		keys[nk++] = c;
		if (hypr_map_set(&seen, c, (void *)1, NULL) < 0)
			ok = 0;
	}
	if (ok && r != ARCHIVE_EOF)
		ok = 0;
	archive_read_free(a);
	hypr_map_free(&seen, NULL);
	for (size_t i = 0; i < nk; i++)
		free(keys[i]);
	free(keys);
	if (lseek(fd, start, SEEK_SET) < 0)
		return 0;
	return ok;
}

int
hypr_rootfs_squash_fds(const int *fds, const char *const *names, size_t n,
    const char *tmpdir, const char *out_path, const struct hypr_squash_opts *o,
    struct hypr_err *e)
{
	char tmp[4300];
	int pp[2], ep[2], rc;
	pid_t pid;
	struct sigaction ign = { .sa_handler = SIG_IGN }, old;
	struct hypr_err fe = { 0 };

	if (hypr_squash_opts_check(o, e) < 0)
		return -1;
	if (tmp_name(out_path, tmp, sizeof(tmp)) < 0)
		return hypr_err_set(e, HYPR_EXIT_SYSTEM, "%s: path too long", out_path);
	if (pipe2(pp, O_CLOEXEC) < 0)
		return hypr_err_errno(e, HYPR_EXIT_SYSTEM, "pipe");
	if (pipe2(ep, O_CLOEXEC) < 0) {
		close(pp[0]);
		close(pp[1]);
		return hypr_err_errno(e, HYPR_EXIT_SYSTEM, "pipe");
	}
	fcntl(pp[1], F_SETPIPE_SZ, 1 << 20);
	if (n == 1 && getenv("HYPR_SQUASH_NO_DIRECT") == NULL && direct_ok(fds[0], o->epoch)) {
		/* tar2sqfs reads the layer itself: no copy through a pipe */
		close(pp[0]);
		close(pp[1]);
		if (spawn_tar2sqfs(fds[0], tmp, o, ep[1], &pid, e) < 0) {
			close(ep[0]);
			close(ep[1]);
			return -1;
		}
		close(ep[1]);
		if (reap_tar2sqfs(pid, ep[0], e) < 0) {
			unlink(tmp);
			return -1;
		}
		goto done;
	}
	if (spawn_tar2sqfs(pp[0], tmp, o, ep[1], &pid, e) < 0) {
		close(pp[0]);
		close(pp[1]);
		close(ep[0]);
		close(ep[1]);
		return -1;
	}
	close(pp[0]);
	close(ep[1]);
	/* a dying tar2sqfs must give us EPIPE, not kill us */
	sigaction(SIGPIPE, &ign, &old);
	rc = hypr_rootfs_flatten_fds(fds, names, n, pp[1], o->epoch, tmpdir, &fe);
	close(pp[1]);
	sigaction(SIGPIPE, &old, NULL);
	if (reap_tar2sqfs(pid, ep[0], e) < 0 || rc < 0) {
		/* bad input explains a tar2sqfs failure; a write error on the
		 * pipe is explained by tar2sqfs's own failure */
		if (rc < 0 && (fe.code == HYPR_EXIT_INPUT || !e->code))
			*e = fe;
		unlink(tmp);
		return -1;
	}
done:
	if (rename(tmp, out_path) < 0) {
		hypr_err_errno(e, HYPR_EXIT_SYSTEM, "renaming %s", tmp);
		unlink(tmp);
		return -1;
	}
	return 0;
}

/* The cache key of a chain's squashfs: layers and every option that
 * changes the bytes. */
static int
squash_key(const char *const *layers, size_t n, const struct hypr_squash_opts *o,
    char key[HYPR_DIGEST_LEN + 1], struct hypr_err *e)
{
	struct hypr_sha256 s;
	char opt[160];

	if (hypr_sha256_init(&s, e) < 0)
		return -1;
	hypr_sha256_update(&s, "hypr-squashfs-v1\n", 17);
	for (size_t i = 0; i < n; i++) {
		hypr_sha256_update(&s, layers[i], strlen(layers[i]));
		hypr_sha256_update(&s, "\n", 1);
	}
	snprintf(opt, sizeof(opt), "comp=%s level=%d block=%u epoch=%lld\n",
	    o->comp ? o->comp : "zstd", o->level, o->block_size ? o->block_size : 131072,
	    (long long)o->epoch);
	hypr_sha256_update(&s, opt, strlen(opt));
	hypr_sha256_final(&s, key);
	return 0;
}

/* Cheap check of a cached squashfs blob (one stat, one 96-byte read): the
 * size recorded when it was built (if any), the magic, and a bytes_used
 * that fits the file. Catches truncation and a damaged superblock; a
 * flipped bit inside the data needs verify (the digest). 1 = looks sane. */
static int
squash_blob_sane(const char *path, json_int_t want_size)
{
	unsigned char sb[96];
	struct stat st;
	uint64_t used = 0;
	int fd, ok;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return 0;
	ok = fstat(fd, &st) == 0 && S_ISREG(st.st_mode) &&
	    (want_size <= 0 || (json_int_t)st.st_size == want_size) &&
	    pread(fd, sb, sizeof(sb), 0) == (ssize_t)sizeof(sb) &&
	    memcmp(sb, "hsqs", 4) == 0;
	close(fd);
	if (!ok)
		return 0;
	for (int i = 7; i >= 0; i--)	/* bytes_used: le64 at offset 40 */
		used = used << 8 | sb[40 + i];
	return used >= sizeof(sb) && used <= (uint64_t)st.st_size;
}

int
hypr_rootfs_squashfs_lookup(const struct hypr_root *r, const char *const *layers,
    size_t n, const struct hypr_squash_opts *o, char digest[HYPR_DIGEST_LEN + 1],
    struct hypr_err *e)
{
	char key[HYPR_DIGEST_LEN + 1], d[HYPR_DIGEST_LEN + 1], path[HYPR_PATH_BUF];
	char got[HYPR_DIGEST_LEN + 1];
	uint64_t size;
	struct hypr_err ve = { 0 };
	int found;

	if (squash_key(layers, n, o, key, e) < 0)
		return -1;
	if (!hypr_cache_squashfs_get(r, key, d, &size) || !hypr_blob_has(r, d))
		return 0;
	found = hypr_blob_path(r, d, path, sizeof(path), e) == 0 &&
	    squash_blob_sane(path, (json_int_t)size);
	/* a damaged blob is a miss: the caller rebuilds and replaces it */
	if (found && o->verify &&
	    (hypr_digest_file(path, got, NULL, &ve) < 0 || strcmp(got, d) != 0))
		found = 0;
	if (found)
		memcpy(digest, d, HYPR_DIGEST_LEN + 1);
	return found;
}

int
hypr_rootfs_squashfs_blob(const struct hypr_root *r, const char *const *layers,
    size_t n, const struct hypr_squash_opts *o, char digest[HYPR_DIGEST_LEN + 1],
    uint64_t *size, int *built, struct hypr_err *e)
{
	char key[HYPR_DIGEST_LEN + 1], tmpd[HYPR_PATH_BUF], out[HYPR_PATH_BUF];
	char path[HYPR_PATH_BUF];
	int *fds = NULL, rc = -1, got;
	uint64_t sz = 0;
	json_t *opts = NULL;
	struct stat st;

	if (built)
		*built = 0;
	if ((got = hypr_rootfs_squashfs_lookup(r, layers, n, o, digest, e)) < 0)
		return -1;
	if (got) {
		if (size && hypr_blob_path(r, digest, path, sizeof(path), e) == 0 &&
		    stat(path, &st) == 0)
			*size = (uint64_t)st.st_size;
		return 0;
	}
	if (squash_key(layers, n, o, key, e) < 0)
		return -1;
	if (hypr_root_tmp(r, tmpd, sizeof(tmpd), e, ".") < 0 ||
	    hypr_root_tmp(r, out, sizeof(out), e, "squash-%s.sqfs", hypr_digest_hex(key)) < 0)
		return -1;
	if ((fds = calloc(n ? n : 1, sizeof(int))) == NULL)
		return hypr_err_errno(e, HYPR_EXIT_SYSTEM, "squashfs");
	if (open_blobs(r, layers, n, fds, e) < 0)
		goto out;
	/* out is private to this process (pid in the name): two builds of one
	 * chain each build, and the second rename just replaces equal bytes */
	if (hypr_rootfs_squash_fds(fds, layers, n, tmpd, out, o, e) < 0)
		goto out;
	if (hypr_blob_adopt(r, out, NULL, digest, &sz, e) < 0)
		goto out;
	if (size)
		*size = sz;
	opts = json_pack("{s:s, s:i, s:i}", "compression", o->comp ? o->comp : "zstd",
	    "level", o->level, "block_size", (int)(o->block_size ? o->block_size : 131072));
	if (hypr_cache_squashfs_put(r, key, layers, n, digest, sz, opts, e) < 0)
		goto out;
	if (built)
		*built = 1;
	rc = 0;
out:
	json_decref(opts);
	if (fds)
		close_files(fds, n);
	free(fds);
	return rc;
}

int
hypr_rootfs_squashfs(const struct hypr_root *r, const char *const *layers,
    size_t n, const struct hypr_squash_opts *o, char *path, size_t pathlen,
    struct hypr_err *e)
{
	char d[HYPR_DIGEST_LEN + 1];

	if (hypr_rootfs_squashfs_blob(r, layers, n, o, d, NULL, NULL, e) < 0)
		return -1;
	return hypr_blob_path(r, d, path, pathlen, e);
}

/* ---- one file out of a chain ---- */

struct lookup {
	const char *name;	/* cleaned */
	size_t nlen;
	size_t max;
	char *data;
	size_t len;
	int found;		/* 0 nothing, 1 file, 2 hidden/absent, 3 hard link, 4 symlink */
	char *target;		/* link target (hard: cleaned path; sym: raw) */
};

/* Is `anc` a proper ancestor directory of `name`? */
static int
is_ancestor(const char *anc, const char *name, size_t nlen)
{
	size_t al = strlen(anc);

	if (al == 0)
		return nlen > 0;
	return al < nlen && strncmp(anc, name, al) == 0 && name[al] == '/';
}

static int
scan_layer(int fd, const char *lname, struct lookup *lk, struct hypr_err *e)
{
	struct archive *a = open_layer(fd, e);
	struct archive_entry *ae;
	int r, hidden = 0;

	if (a == NULL)
		return hypr_err_prefix(e, "layer %s", lname);
	lk->found = 0;
	while ((r = archive_read_next_header(a, &ae)) == ARCHIVE_OK || r == ARCHIVE_WARN) {
		const char *raw = archive_entry_pathname(ae), *base;
		char *p;
		int bad;

		if (raw == NULL || (p = clean_path(raw, &bad)) == NULL)
			continue;	/* flatten reports these */
		base = strrchr(p, '/');
		base = base ? base + 1 : p;
		if (strncmp(base, ".wh.", 4) == 0) {
			size_t dl = (size_t)(base - p);

			if (strcmp(base, ".wh..wh..opq") == 0) {
				p[dl ? dl - 1 : 0] = '\0';
				if (is_ancestor(p, lk->name, lk->nlen))
					hidden = 1;
			} else if (strncmp(base, ".wh..wh.", 8) != 0) {
				memmove(p + dl, base + 4, strlen(base + 4) + 1);
				if (strcmp(p, lk->name) == 0 || is_ancestor(p, lk->name, lk->nlen))
					hidden = 1;
			}
			free(p);
			continue;
		}
		if (strcmp(p, lk->name) == 0) {
			unsigned t = archive_entry_filetype(ae);

			free(lk->data);
			free(lk->target);
			lk->data = lk->target = NULL;
			if (archive_entry_hardlink(ae)) {
				lk->target = clean_path(archive_entry_hardlink(ae), &bad);
				lk->found = lk->target ? 3 : 2;
			} else if (t == AE_IFLNK) {
				lk->target = strdup(archive_entry_symlink(ae) ?
				    archive_entry_symlink(ae) : "");
				lk->found = 4;
			} else if (t == AE_IFREG) {
				int64_t sz = archive_entry_size(ae);
				la_ssize_t got;

				if (sz < 0 || (uint64_t)sz > lk->max) {
					free(p);
					archive_read_free(a);
					return hypr_err_set(e, HYPR_EXIT_INPUT,
					    "%s: larger than %zu bytes", lk->name, lk->max);
				}
				if ((lk->data = malloc((size_t)sz + 1)) == NULL) {
					free(p);
					archive_read_free(a);
					return hypr_err_errno(e, HYPR_EXIT_SYSTEM, "%s", lk->name);
				}
				got = archive_read_data(a, lk->data, (size_t)sz);
				if (got != sz) {
					free(p);
					hypr_err_set(e, HYPR_EXIT_INPUT, "layer %s: %s: %s",
					    lname, lk->name, got < 0 ?
					    aerr(a) : "short read");
					archive_read_free(a);
					return -1;
				}
				lk->data[sz] = '\0';
				lk->len = (size_t)sz;
				lk->found = 1;
			} else {
				lk->found = 2;	/* a directory or device: no file */
			}
		} else if (is_ancestor(p, lk->name, lk->nlen) &&
		    archive_entry_filetype(ae) != AE_IFDIR) {
			/* an ancestor that is not a directory */
			free(lk->data);
			free(lk->target);
			lk->data = lk->target = NULL;
			lk->found = 2;
		}
		free(p);
	}
	if (r != ARCHIVE_EOF) {
		hypr_err_set(e, HYPR_EXIT_INPUT, "layer %s: %s", lname, aerr(a));
		archive_read_free(a);
		return -1;
	}
	archive_read_free(a);
	if (lk->found == 0 && hidden)
		lk->found = 2;
	return 0;
}

int
hypr_rootfs_read_file(const struct hypr_root *r, const char *const *layers,
    size_t n, const char *name, size_t max, char **out, size_t *len,
    struct hypr_err *e)
{
	int *fds = calloc(n ? n : 1, sizeof(int)), rc = -1, bad, hops = 0;
	struct lookup lk = { .max = max };
	char *cur;
	size_t top = n;

	*out = NULL;
	if (len)
		*len = 0;
	if (fds == NULL)
		return hypr_err_errno(e, HYPR_EXIT_SYSTEM, "reading %s", name);
	while (*name == '/')
		name++;
	if ((cur = clean_path(name, &bad)) == NULL) {
		free(fds);
		return hypr_err_set(e, HYPR_EXIT_USAGE, "bad path '%s'", name);
	}
	if (open_blobs(r, layers, n, fds, e) < 0)
		goto out;
restart:
	lk.name = cur;
	lk.nlen = strlen(cur);
	for (size_t i = top; i-- > 0;) {
		if (lseek(fds[i], 0, SEEK_SET) < 0) {
			hypr_err_errno(e, HYPR_EXIT_SYSTEM, "layer %s", layers[i]);
			goto out;
		}
		if (scan_layer(fds[i], layers[i], &lk, e) < 0)
			goto out;
		if (lk.found == 0)
			continue;
		if (lk.found == 1) {
			*out = lk.data;
			lk.data = NULL;
			if (len)
				*len = lk.len;
			rc = 0;
			goto out;
		}
		if (lk.found == 2)
			break;
		if (++hops > 16) {
			hypr_err_set(e, HYPR_EXIT_INPUT, "%s: too many links", name);
			goto out;
		}
		if (lk.found == 3) {	/* hard link: same layer or lower */
			free(cur);
			cur = lk.target;
			lk.target = NULL;
			top = i + 1;
			goto restart;
		} else {		/* symlink: resolve against its directory */
			char *dir = strdup(cur), *slash, *joined;

			if (dir == NULL) {
				hypr_err_errno(e, HYPR_EXIT_SYSTEM, "%s", name);
				goto out;
			}
			slash = strrchr(dir, '/');
			if (slash)
				*slash = '\0';
			else
				*dir = '\0';
			if (lk.target[0] == '/')
				joined = strdup(lk.target + 1);
			else if (asprintf(&joined, "%s/%s", dir, lk.target) < 0)
				joined = NULL;
			free(dir);
			free(cur);
			cur = NULL;
			/* ".." may not climb above the root: drop it there */
			if (joined) {
				char *parts = joined, *tok, *save = NULL;
				size_t o = 0;

				cur = calloc(1, strlen(joined) + 1);
				for (tok = strtok_r(parts, "/", &save); cur && tok;
				    tok = strtok_r(NULL, "/", &save)) {
					if (strcmp(tok, ".") == 0)
						continue;
					if (strcmp(tok, "..") == 0) {
						char *s = strrchr(cur, '/');

						o = s ? (size_t)(s - cur) : 0;
						cur[o] = '\0';
						continue;
					}
					if (o)
						cur[o++] = '/';
					strcpy(cur + o, tok);
					o += strlen(tok);
				}
				free(joined);
			}
			if (cur == NULL) {
				hypr_err_errno(e, HYPR_EXIT_SYSTEM, "%s", name);
				goto out;
			}
			free(lk.target);
			lk.target = NULL;
			top = n;
			goto restart;
		}
	}
	rc = 1;
out:
	free(lk.data);
	free(lk.target);
	free(cur);
	close_files(fds, n);
	free(fds);
	return rc;
}
