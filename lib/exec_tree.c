/* exec_tree.c - what a layer chain looks like from above: the visible paths with
 * their metadata (whiteouts applied), built from the layers' tar headers.
 * Used to resolve COPY destinations and WORKDIR through the image's own
 * symlinks, and to give parent directories their existing metadata. */
#include "exec_int.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "oci.h"
#include "path.h"

enum { ENT_FILE, ENT_WHITEOUT, ENT_OPAQUE };

struct lent {
	char *path;
	int kind;
	struct tnode n;
};

struct listing {
	struct lent *v;
	size_t n, cap;
};

static void
listing_free(void *p)
{
	struct listing *l = p;

	if (l == NULL)
		return;
	for (size_t i = 0; i < l->n; i++) {
		free(l->v[i].path);
		free(l->v[i].n.link);
	}
	free(l->v);
	free(l);
}

/* Normalise a tar member name: no leading "./" or "/", no trailing "/",
 * no "." components. Returns NULL for the root itself. Sets *bad on "..". */
static char *
norm_name(const char *name, int *bad)
{
	char *out = malloc(strlen(name) + 1), *o = out;
	const char *s;
	size_t len;

	*bad = 0;
	if (out == NULL)
		return NULL;
	while ((s = hypr_path_next(&name, &len)) != NULL) {
		if (hypr_path_dotdot(s, len))
			*bad = 1;
		if (o != out)
			*o++ = '/';
		memcpy(o, s, len);
		o += len;
	}
	*o = '\0';
	if (o == out) {
		free(out);
		return NULL;
	}
	return out;
}

void
tree_listings_free(struct ctx *c)
{
	hypr_map_free(&c->listings, listing_free);
}

static int
listing_push(struct listing *l, char *path, int kind, const struct tnode *n)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 256;
		struct lent *v = realloc(l->v, cap * sizeof(*v));

		if (v == NULL)
			return -1;
		l->v = v;
		l->cap = cap;
	}
	l->v[l->n].path = path;
	l->v[l->n].kind = kind;
	l->v[l->n].n = *n;
	l->n++;
	return 0;
}

/* Read the headers of a layer tar (fd) into a listing: an uncompressed
 * tar's data is skipped by seeking. */
static int
read_listing(int fd, const char *path, struct listing *l, struct hypr_err *e)
{
	struct archive *a = archive_read_new();
	struct archive_entry *ent;
	int r;

	archive_read_support_filter_all(a);
	archive_read_support_format_tar(a);
	archive_read_support_format_gnutar(a);
	/* names are bytes (OCI), not translated to this (C) locale */
	archive_read_set_options(a, "hdrcharset=BINARY");
	if (archive_read_open_fd(a, fd, 1 << 16) != ARCHIVE_OK) {
		hypr_err_set(e, HYPR_EXIT_SYSTEM, "%s: %s", path,
		    archive_error_string(a));
		archive_read_free(a);
		return -1;
	}
	while ((r = archive_read_next_header(a, &ent)) == ARCHIVE_OK ||
	    r == ARCHIVE_WARN) {
		const char *name = archive_entry_pathname(ent), *base;
		struct tnode n = { 0 };
		char *p;
		int bad, kind = ENT_FILE;

		if (name == NULL || (p = norm_name(name, &bad)) == NULL)
			continue;
		if (bad) {
			free(p);
			continue;
		}
		base = strrchr(p, '/');
		base = base ? base + 1 : p;
		if (strcmp(base, ".wh..wh..opq") == 0) {
			kind = ENT_OPAQUE;
			if (base == p)
				p[0] = '\0';
			else
				p[base - p - 1] = '\0';
		} else if (strncmp(base, ".wh.", 4) == 0) {
			kind = ENT_WHITEOUT;
			memmove(p + (base - p), base + 4, strlen(base + 4) + 1);
		}
		n.mode = archive_entry_mode(ent);
		n.uid = (uid_t)archive_entry_uid(ent);
		n.gid = (gid_t)archive_entry_gid(ent);
		n.mtime = archive_entry_mtime(ent);
		if (archive_entry_hardlink(ent) != NULL) {
			int b2;

			n.hardlink = 1;
			n.link = norm_name(archive_entry_hardlink(ent), &b2);
		} else if (archive_entry_symlink(ent) != NULL) {
			n.link = strdup(archive_entry_symlink(ent));
		}
		if (listing_push(l, p, kind, &n) < 0) {
			free(p);
			free(n.link);
			archive_read_free(a);
			return hypr_err_set(e, HYPR_EXIT_SYSTEM, "out of memory");
		}
	}
	if (r != ARCHIVE_EOF) {
		hypr_err_set(e, HYPR_EXIT_INPUT, "%s: %s", path,
		    archive_error_string(a));
		archive_read_free(a);
		return -1;
	}
	archive_read_free(a);
	return 0;
}

static struct listing *
get_listing(struct ctx *c, const char *digest, struct hypr_err *e)
{
	struct listing *l = hypr_map_get(&c->listings, digest);
	int fd, r;

	if (l != NULL)
		return l;
	/* a compressed base layer's unpacked copy (oci.h) */
	if ((fd = hypr_layer_open(&c->root, digest, e)) < 0)
		return NULL;
	if ((l = calloc(1, sizeof(*l))) == NULL) {
		close(fd);
		return NULL;
	}
	r = read_listing(fd, digest, l, e);
	close(fd);
	if (r < 0 || hypr_map_set(&c->listings, digest, l, NULL) < 0) {
		listing_free(l);
		return NULL;
	}
	return l;
}

static int
hidden(const struct hypr_map *wh, const struct hypr_map *opq, const char *p)
{
	char buf[4096];
	size_t len = strlen(p);

	if (len >= sizeof(buf))
		return 0;
	if (hypr_map_get(wh, p))
		return 1;
	if (hypr_map_get(opq, ""))
		return 1;
	memcpy(buf, p, len + 1);
	for (char *s = buf + len; s > buf; s--) {
		if (*s == '/') {
			*s = '\0';
			if (hypr_map_get(wh, buf) || hypr_map_get(opq, buf))
				return 1;
		}
	}
	return 0;
}

int
tree_build(struct ctx *c, const struct hypr_layer *layers, size_t nlayers, struct tree *t,
    struct hypr_err *e)
{
	struct hypr_map wh = { 0 }, opq = { 0 };
	static int one = 1;

	memset(t, 0, sizeof(*t));
	if (layers_fetch(c, layers, nlayers, e) < 0)
		return -1;
	for (size_t i = nlayers; i-- > 0;) {
		struct listing *l = get_listing(c, layers[i].digest, e);

		if (l == NULL)
			goto fail;
		for (size_t j = 0; j < l->n; j++) {
			struct lent *x = &l->v[j];
			struct tnode *n;

			if (x->kind != ENT_FILE || hypr_map_get(&t->m, x->path) ||
			    hidden(&wh, &opq, x->path))
				continue;
			if ((n = malloc(sizeof(*n))) == NULL)
				goto oom;
			*n = x->n;
			n->link = x->n.link ? strdup(x->n.link) : NULL;
			if (hypr_map_set(&t->m, x->path, n, NULL) < 0) {
				tnode_free(n);
				goto oom;
			}
		}
		for (size_t j = 0; j < l->n; j++) {
			struct lent *x = &l->v[j];

			if (x->kind == ENT_WHITEOUT &&
			    hypr_map_set(&wh, x->path, &one, NULL) < 0)
				goto oom;
			if (x->kind == ENT_OPAQUE &&
			    hypr_map_set(&opq, x->path, &one, NULL) < 0)
				goto oom;
		}
	}
	hypr_map_free(&wh, NULL);
	hypr_map_free(&opq, NULL);
	return 0;
oom:
	hypr_err_set(e, HYPR_EXIT_SYSTEM, "out of memory");
fail:
	hypr_map_free(&wh, NULL);
	hypr_map_free(&opq, NULL);
	tree_free(t);
	return -1;
}

void
tree_free(struct tree *t)
{
	hypr_map_free(&t->m, tnode_free);
}

const struct tnode *
tree_get(const struct tree *t, const char *path)
{
	while (*path == '/')
		path++;
	if (*path == '\0') {
		static const struct tnode root = { .mode = S_IFDIR | 0755 };
		const struct tnode *n = t ? hypr_map_get(&t->m, "") : NULL;

		return n ? n : &root;
	}
	return t ? hypr_map_get(&t->m, path) : NULL;
}

static char *
tree_link(void *arg, const char *path)
{
	const struct tnode *n = tree_get(arg, path);

	if (n == NULL || !S_ISLNK(n->mode) || n->link == NULL)
		return NULL;
	return strdup(n->link);
}

int
tree_resolve(const struct tree *t, const char *path, int follow_last,
    char **out, struct hypr_err *e)
{
	return resolve_path(path, follow_last, tree_link, (void *)t, out, e);
}

int
resolve_path(const char *path, int follow_last,
    char *(*getlink)(void *, const char *), void *arg, char **out,
    struct hypr_err *e)
{
	char cur[4096] = "", *rest;
	const char *p;
	int hops = 0;

	if ((rest = strdup(path)) == NULL)
		return hypr_err_set(e, HYPR_EXIT_SYSTEM, "out of memory");
	p = rest;
	for (;;) {
		const char *s;
		size_t len, clen = strlen(cur);
		char *link;
		int last;

		if ((s = hypr_path_next(&p, &len)) == NULL)
			break;
		if (len > NAME_MAX) {
			free(rest);
			return hypr_err_set(e, HYPR_EXIT_INPUT, "%s: name too long", path);
		}
		if (hypr_path_dotdot(s, len)) {
			char *sl = strrchr(cur, '/');

			if (sl)
				*sl = '\0';
			else
				cur[0] = '\0';
			continue;
		}
		if (clen + len + 2 >= sizeof(cur)) {
			free(rest);
			return hypr_err_set(e, HYPR_EXIT_INPUT, "%s: path too long", path);
		}
		if (clen)
			cur[clen++] = '/';
		memcpy(cur + clen, s, len);
		cur[clen + len] = '\0';
		{
			const char *q = p;

			while (*q == '/')
				q++;
			last = *q == '\0';
		}
		if (last && !follow_last)
			continue;
		if ((link = getlink(arg, cur)) == NULL)
			continue;
		if (++hops > 40) {
			free(link);
			free(rest);
			return hypr_err_set(e, HYPR_EXIT_INPUT,
			    "%s: too many levels of symbolic links", path);
		}
		/* Replace the component by the link target, relative to its dir. */
		{
			char *nr;
			char *sl = strrchr(cur, '/');

			if (sl)
				*sl = '\0';
			else
				cur[0] = '\0';
			if (link[0] == '/')
				cur[0] = '\0';
			if (asprintf(&nr, "%s/%s", link, p) < 0) {
				free(link);
				free(rest);
				return hypr_err_set(e, HYPR_EXIT_SYSTEM, "out of memory");
			}
			free(link);
			free(rest);
			p = rest = nr;
		}
	}
	free(rest);
	if ((*out = strdup(cur)) == NULL)
		return hypr_err_set(e, HYPR_EXIT_SYSTEM, "out of memory");
	return 0;
}

int
tar_listing_map(const char *path, struct hypr_map *m, struct hypr_err *e)
{
	struct listing l = { 0 };
	int fd = open(path, O_RDONLY | O_CLOEXEC), r;

	if (fd < 0)
		return hypr_err_errno(e, HYPR_EXIT_SYSTEM, "%s", path);
	r = read_listing(fd, path, &l, e);
	close(fd);
	if (r < 0) {
		for (size_t i = 0; i < l.n; i++) {
			free(l.v[i].path);
			free(l.v[i].n.link);
		}
		free(l.v);
		return -1;
	}
	for (size_t i = 0; i < l.n; i++) {
		struct tnode *n = malloc(sizeof(*n)), *old = NULL;

		if (n == NULL || l.v[i].kind != ENT_FILE) {
			free(n);
			free(l.v[i].n.link);
		} else {
			*n = l.v[i].n;
			if (hypr_map_set(m, l.v[i].path, n, (void **)&old) < 0)
				tnode_free(n);
			tnode_free(old);
		}
		free(l.v[i].path);
	}
	free(l.v);
	return 0;
}

void
tnode_free(void *p)
{
	struct tnode *n = p;

	if (n != NULL)
		free(n->link);
	free(n);
}
