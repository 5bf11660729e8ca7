/* rootfs_read.c - one file out of a layer chain (hypr_rootfs_read_file),
 * without flattening: the layers are scanned top first and the first entry,
 * whiteout or hiding ancestor at the path decides; hard and symbolic links
 * are followed inside the chain. */
#include "cas.h"
#include "rootfs.h"
#include "rootfs_int.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "path.h"

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

		if (raw == NULL || (p = hypr_path_member(raw, 0, &bad)) == NULL)
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
				lk->target = hypr_path_member(archive_entry_hardlink(ae), 0, &bad);
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
	if ((cur = hypr_path_member(name, 0, &bad)) == NULL) {
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
