/* exec_sources.c - where COPY, ADD and RUN --mount=type=bind take files
 * from: a source namespace (the context after .dockerignore, a stage's or
 * an image's flattened tree, an unpacked archive), its paths and globs
 * resolved inside it, walked into items, unpacked safely, digested for the
 * cache key. */
#include "exec_int.h"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fsutil.h"
#include "path.h"
#include "strbuf.h"
#include "rootfs.h"


/* Temporary directories to remove at exit. */
static char **tmpdirs;
static size_t ntmpdirs;

void
tmpdirs_remove(void)
{
	for (size_t i = 0; i < ntmpdirs; i++) {
		hypr_rm_rf(tmpdirs[i], NULL);
		free(tmpdirs[i]);
	}
	free(tmpdirs);
	tmpdirs = NULL;
	ntmpdirs = 0;
}

char *
make_tmpdir(struct ctx *c, const char *what, struct hypr_err *e)
{
	char path[HYPR_PATH_BUF], **v;

	if (hypr_root_tmp(&c->root, path, sizeof(path), e, "exec-%s.XXXXXX", what) < 0)
		return NULL;
	if (mkdtemp(path) == NULL) {
		hypr_err_errno(e, HYPR_EXIT_SYSTEM, "mkdtemp %s", path);
		return NULL;
	}
	if (ntmpdirs == 0)
		atexit(tmpdirs_remove);
	if ((v = realloc(tmpdirs, (ntmpdirs + 1) * sizeof(*v))) != NULL)
		tmpdirs = v;
	if (v == NULL || (tmpdirs[ntmpdirs] = strdup(path)) == NULL) {
		rmdir(path);
		hypr_err_set(e, HYPR_EXIT_SYSTEM, "out of memory");
		return NULL;
	}
	return tmpdirs[ntmpdirs++];
}

void
items_free(struct items *it)
{
	for (size_t i = 0; i < it->n; i++) {
		free(it->v[i].host);
		free(it->v[i].rel);
		free(it->v[i].n.link);
	}
	free(it->v);
	memset(it, 0, sizeof(*it));
}

int
items_add(struct items *it, const char *host, const char *rel,
    const struct tnode *n, uint64_t size, struct hypr_err *e)
{
	struct item *x;

	if (it->n == it->cap) {
		size_t cap = it->cap ? it->cap * 2 : 64;
		struct item *v = realloc(it->v, cap * sizeof(*v));

		if (v == NULL)
			return hypr_err_set(e, HYPR_EXIT_SYSTEM, "out of memory");
		it->v = v;
		it->cap = cap;
	}
	x = &it->v[it->n];
	memset(x, 0, sizeof(*x));
	x->host = host ? strdup(host) : NULL;
	x->rel = strdup(rel);
	x->n = *n;
	x->n.link = n->link ? strdup(n->link) : NULL;
	x->size = size;
	it->n++;
	return 0;
}

char *
path_join(const char *a, const char *b)
{
	char *s;

	if (a[0] == '\0')
		return strdup(b);
	if (b[0] == '\0')
		return strdup(a);
	if (asprintf(&s, "%s/%s", a, b) < 0)
		return NULL;
	return s;
}

static char *
host_link(void *arg, const char *path)
{
	const struct sroot *r = arg;
	char *full, buf[4096];
	struct stat sb;
	ssize_t n;

	if ((full = path_join(r->dir, path)) == NULL)
		return NULL;
	if (lstat(full, &sb) < 0 || !S_ISLNK(sb.st_mode) ||
	    (n = readlink(full, buf, sizeof(buf) - 1)) < 0) {
		free(full);
		return NULL;
	}
	free(full);
	buf[n] = '\0';
	return strdup(buf);
}

static int
excluded(const struct sroot *r, const char *rel)
{
	return r->ig != NULL && rel[0] != '\0' && hypr_ignore_match(r->ig, rel);
}

/* Excluded, unless a directory an exception reaches into. */
static int
hidden_rel(const struct sroot *r, const char *rel)
{
	char *full;
	struct stat sb;
	int dir;

	if (!excluded(r, rel))
		return 0;
	if ((full = path_join(r->dir, rel)) == NULL)
		return 1;
	dir = stat(full, &sb) == 0 && S_ISDIR(sb.st_mode);
	free(full);
	return !(dir && hypr_ignore_descend(r->ig, rel));
}

static int
has_glob(const char *s)
{
	return strpbrk(s, "*?[") != NULL;
}

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Append s (taken) to a NULL-terminated array of *n strings; -1 (s freed)
 * when s is NULL or out of memory. */
static int
words_push(char ***v, size_t *n, char *s)
{
	char **nv;

	if (s == NULL || (nv = realloc(*v, (*n + 2) * sizeof(*nv))) == NULL) {
		free(s);
		return -1;
	}
	nv[(*n)++] = s;
	nv[*n] = NULL;
	*v = nv;
	return 0;
}

/* Sorted names in a host directory. */
static int
list_dir(const char *dir, char ***names, size_t *n, struct hypr_err *e)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	char **v = NULL;
	size_t cnt = 0;

	*names = NULL;
	*n = 0;
	if (d == NULL)
		return hypr_err_errno(e, HYPR_EXIT_SYSTEM, "reading %s", dir);
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (words_push(&v, &cnt, strdup(de->d_name)) < 0) {
			closedir(d);
			hypr_words_free(v);
			return hypr_err_set(e, HYPR_EXIT_SYSTEM, "out of memory");
		}
	}
	closedir(d);
	if (cnt)
		qsort(v, cnt, sizeof(*v), cmp_str);
	*names = v;
	*n = cnt;
	return 0;
}

/* Expand a glob pattern (cleaned, rooted) against the source, one path
 * component at a time, as Go's filepath.Glob: results sorted. */
static int
glob_match(const struct sroot *r, const char *base, const char *pat,
    char ***out, size_t *nout, struct hypr_err *e)
{
	const char *sl = strchr(pat, '/');
	size_t clen = sl ? (size_t)(sl - pat) : strlen(pat);
	char comp[256], *dir;
	char **names;
	size_t n;

	if (clen >= sizeof(comp))
		return hypr_err_set(e, HYPR_EXIT_INPUT, "%s: name too long", pat);
	memcpy(comp, pat, clen);
	comp[clen] = '\0';
	if (!has_glob(comp)) {
		char *next = path_join(base, comp);
		struct stat sb;
		char *full = next ? path_join(r->dir, next) : NULL;
		int rc = 0;

		if (full && lstat(full, &sb) == 0 && !hidden_rel(r, next)) {
			if (sl)
				rc = glob_match(r, next, sl + 1, out, nout, e);
			else if (words_push(out, nout, strdup(next)) < 0)
				rc = hypr_err_set(e, HYPR_EXIT_SYSTEM, "out of memory");
		}
		free(full);
		free(next);
		return rc;
	}
	if ((dir = path_join(r->dir, base)) == NULL)
		return hypr_err_set(e, HYPR_EXIT_SYSTEM, "out of memory");
	if (list_dir(dir, &names, &n, NULL) < 0) {
		free(dir);
		return 0;	/* not a directory: no match */
	}
	free(dir);
	for (size_t i = 0; i < n; i++) {
		char *next;

		if (fnmatch(comp, names[i], 0) != 0)
			continue;
		if ((next = path_join(base, names[i])) == NULL)
			continue;
		if (hidden_rel(r, next)) {
			free(next);
			continue;
		}
		if (sl) {
			if (glob_match(r, next, sl + 1, out, nout, e) < 0) {
				free(next);
				hypr_words_free(names);
				return -1;
			}
			free(next);
		} else if (words_push(out, nout, next) < 0) {
			hypr_words_free(names);
			return hypr_err_set(e, HYPR_EXIT_SYSTEM, "out of memory");
		}
	}
	hypr_words_free(names);
	return 0;
}

static void
node_of(const struct sroot *r, const char *rel, const struct stat *sb,
    struct tnode *n, int *owned)
{
	const struct tnode *m = r->meta ? hypr_map_get(r->meta, rel) : NULL;

	memset(n, 0, sizeof(*n));
	n->mode = sb->st_mode;
	n->mtime = sb->st_mtime;
	*owned = 0;
	if (m != NULL) {
		n->mode = (sb->st_mode & S_IFMT) | (m->mode & 07777);
		n->uid = m->uid;
		n->gid = m->gid;
		n->mtime = m->mtime;
		*owned = 1;
	}
}

static int
add_host(struct items *it, const struct sroot *r, const char *real,
    const char *out_rel, struct hypr_err *e)
{
	char *full = path_join(r->dir, real);
	struct stat sb;
	struct tnode n;
	char buf[4096];
	int owned, rc;

	if (full == NULL)
		return hypr_err_set(e, HYPR_EXIT_SYSTEM, "out of memory");
	if (lstat(full, &sb) < 0) {
		free(full);
		return hypr_err_errno(e, HYPR_EXIT_SYSTEM, "stat %s", real);
	}
	if (!S_ISREG(sb.st_mode) && !S_ISDIR(sb.st_mode) && !S_ISLNK(sb.st_mode)) {
		free(full);
		return 0;	/* sockets, devices, fifos: not copied */
	}
	node_of(r, real, &sb, &n, &owned);
	if (S_ISLNK(sb.st_mode)) {
		ssize_t k = readlink(full, buf, sizeof(buf) - 1);

		if (k < 0) {
			free(full);
			return hypr_err_errno(e, HYPR_EXIT_SYSTEM, "readlink %s", real);
		}
		buf[k] = '\0';
		n.link = buf;
	}
	rc = items_add(it, S_ISREG(sb.st_mode) ? full : NULL, out_rel, &n,
	    S_ISREG(sb.st_mode) ? (uint64_t)sb.st_size : 0, e);
	if (rc == 0)
		it->v[it->n - 1].owned = owned;
	free(full);
	return rc;
}

/* The contents of a directory, recursively, sorted. */
int
walk(struct items *it, const struct sroot *r, const char *real,
    const char *out_rel, struct hypr_err *e)
{
	char *dir = path_join(r->dir, real), **names;
	size_t n;

	if (dir == NULL)
		return hypr_err_set(e, HYPR_EXIT_SYSTEM, "out of memory");
	if (list_dir(dir, &names, &n, e) < 0) {
		free(dir);
		return -1;
	}
	free(dir);
	for (size_t i = 0; i < n; i++) {
		char *cr = path_join(real, names[i]), *co = path_join(out_rel, names[i]);
		char *full = cr ? path_join(r->dir, cr) : NULL;
		struct stat sb;
		int rc = 0, ex;

		if (cr == NULL || co == NULL || full == NULL) {
			free(cr);
			free(co);
			free(full);
			hypr_words_free(names);
			return hypr_err_set(e, HYPR_EXIT_SYSTEM, "out of memory");
		}
		ex = excluded(r, cr);
		if (lstat(full, &sb) == 0) {
			if (!ex)
				rc = add_host(it, r, cr, co, e);
			if (rc == 0 && S_ISDIR(sb.st_mode) &&
			    (!ex || hypr_ignore_descend(r->ig, cr)))
				rc = walk(it, r, cr, co, e);
		} else if (errno == ENAMETOOLONG) {
			/* never drop a file without a word */
			rc = hypr_err_set(e, HYPR_EXIT_INPUT,
			    "%.100s...: path too long (%zu bytes, the limit is %d)",
			    cr, strlen(full), PATH_MAX - 1);
		} else {
			rc = hypr_err_errno(e, errno == ENOENT ? HYPR_EXIT_INPUT :
			    HYPR_EXIT_SYSTEM, "%s", cr);
		}
		free(cr);
		free(co);
		free(full);
		if (rc < 0) {
			hypr_words_free(names);
			return -1;
		}
	}
	hypr_words_free(names);
	return 0;
}

static int
is_archive(const char *path)
{
	struct archive *a = archive_read_new();
	struct archive_entry *ent;
	int ok;

	archive_read_support_filter_all(a);
	archive_read_support_format_tar(a);
	archive_read_support_format_gnutar(a);
	/* names are bytes (OCI), not translated to this (C) locale */
	archive_read_set_options(a, "hdrcharset=BINARY");
	ok = archive_read_open_filename(a, path, 1 << 16) == ARCHIVE_OK &&
	    archive_read_next_header(a, &ent) >= ARCHIVE_WARN;
	archive_read_free(a);
	return ok;
}

/* Collect one source argument (a path or glob in the namespace). */
int
collect(struct items *it, const struct sroot *r, const char *src, int add, int parents,
    const char *what, struct hypr_err *e)
{
	char *pat = hypr_path_clean(src), **matches = NULL;
	size_t nm = 0, skip = 0;
	int rc = -1;
	const char *pivot = strstr(src, "/./");

	/* --parents keeps a match's path; "a/./b" keeps only what follows "./" */
	if (parents && pivot) {
		char *head = strndup(src, (size_t)(pivot - src)), *ch = head ? hypr_path_clean(head) : NULL;

		for (const char *p = ch; p && *p; p++)
			skip += *p == '/';
		if (ch && *ch)
			skip++;
		free(head);
		free(ch);
	}

	if (pat == NULL)
		return hypr_err_set(e, HYPR_EXIT_SYSTEM, "out of memory");
	if (pat[0] == '\0') {
		if (words_push(&matches, &nm, strdup("")) < 0) {
			hypr_err_set(e, HYPR_EXIT_SYSTEM, "out of memory");
			goto out;
		}
	} else if (glob_match(r, "", pat, &matches, &nm, e) < 0) {
		goto out;
	}
	if (nm == 0) {
		hypr_err_set(e, HYPR_EXIT_INPUT,
		    "%s: file not found in %s%s", src, what,
		    r->ig ? " or excluded by .dockerignore" : "");
		goto out;
	}
	for (size_t i = 0; i < nm; i++) {
		char *real, *full, *base;
		struct stat sb;

		/* Follow symlinks, kept inside the source namespace. */
		if (resolve_path(matches[i], 1, host_link, (void *)r, &real, e) < 0)
			goto out;
		full = path_join(r->dir, real);
		if (full == NULL || stat(full, &sb) < 0 || hidden_rel(r, real)) {
			hypr_err_set(e, HYPR_EXIT_INPUT,
			    "%s: file not found in %s%s", matches[i], what,
			    r->ig ? " or excluded by .dockerignore" : "");
			free(full);
			free(real);
			goto out;
		}
		base = strrchr(matches[i], '/');
		base = base ? base + 1 : matches[i];
		if (parents) {
			/* the match's own path is where it lands */
			base = matches[i];
			for (size_t k = 0; k < skip && base; k++)
				base = (base = strchr(base, '/')) ? base + 1 : NULL;
			if (base == NULL)
				base = "";
		}
		if (S_ISDIR(sb.st_mode)) {
			int owned;
			struct tnode n;

			node_of(r, real, &sb, &n, &owned);
			if (items_add(it, NULL, parents ? base : "", &n, 0, e) < 0)
				goto fail_match;
			it->v[it->n - 1].owned = owned;
			if (walk(it, r, real, parents ? base : "", e) < 0) {
fail_match:
				free(full);
				free(real);
				goto out;
			}
		} else if (S_ISREG(sb.st_mode)) {
			int owned;
			struct tnode n;

			node_of(r, real, &sb, &n, &owned);
			if (items_add(it, full, base, &n, (uint64_t)sb.st_size, e) < 0) {
				free(full);
				free(real);
				goto out;
			}
			it->v[it->n - 1].top_file = !parents;
			it->v[it->n - 1].owned = owned;
			if (add && r->ig && is_archive(full))
				it->v[it->n - 1].archive = 1;
		}
		free(full);
		free(real);
	}
	rc = 0;
out:
	free(pat);
	hypr_words_free(matches);
	return rc;
}

int
items_exclude(struct items *it, json_t *patterns, struct hypr_err *e)
{
	struct hypr_ignore *ig = NULL;
	struct hypr_strbuf text = { 0 };
	json_t *x;
	size_t i, k = 0;

	if (json_array_size(patterns) == 0)
		return 0;
	json_array_foreach(patterns, i, x) {
		hypr_strbuf_add(&text, json_string_value(x) ? json_string_value(x) : "");
		hypr_strbuf_add(&text, "\n");
	}
	if (text.oom) {
		free(text.s);
		return hypr_err_set(e, HYPR_EXIT_SYSTEM, "out of memory");
	}
	if (hypr_ignore_parse(&ig, text.s, e) < 0) {
		free(text.s);
		return hypr_err_prefix(e, "--exclude");
	}
	free(text.s);
	for (i = 0; i < it->n; i++) {
		/* the source itself ("") is never excluded: what is below it may be */
		if (it->v[i].rel[0] && hypr_ignore_match(ig, it->v[i].rel)) {
			free(it->v[i].host);
			free(it->v[i].rel);
			free(it->v[i].n.link);
			continue;
		}
		it->v[k++] = it->v[i];
	}
	it->n = k;
	hypr_ignore_free(ig);
	return 0;
}

/* A libarchive message about a file under dir, with every "dir/" cut out:
 * internal staging paths stay out of error lines. */
static char *
unstaged(const char *msg, const char *dir)
{
	struct hypr_strbuf b = { 0 };
	size_t dl = strlen(dir);
	const char *p;

	if (msg == NULL)
		msg = "unknown error";
	while ((p = strstr(msg, dir)) != NULL) {
		hypr_strbuf_addn(&b, msg, (size_t)(p - msg));
		msg = p + dl;
		if (*msg == '/')
			msg++;
	}
	hypr_strbuf_add(&b, msg);
	return hypr_strbuf_take(&b);
}

/* Unpack a tar (any compression) into dir with owners in meta. Members are
 * cleaned: absolute names are kept inside dir, ".." climbing out is refused,
 * and nothing is written through a symlink. */
int
unpack(const char *tar, const char *dir, struct hypr_map *meta, const char *what,
    struct hypr_err *e)
{
	struct archive *a = archive_read_new(), *w = archive_write_disk_new();
	struct archive_entry *ent;
	int r, rc = -1;

	archive_read_support_filter_all(a);
	archive_read_support_format_tar(a);
	archive_read_support_format_gnutar(a);
	/* names are bytes (OCI), not translated to this (C) locale */
	archive_read_set_options(a, "hdrcharset=BINARY");
	archive_write_disk_set_options(w, ARCHIVE_EXTRACT_PERM |
	    ARCHIVE_EXTRACT_TIME | ARCHIVE_EXTRACT_XATTR | ARCHIVE_EXTRACT_SECURE_SYMLINKS |
	    ARCHIVE_EXTRACT_SECURE_NODOTDOT | ARCHIVE_EXTRACT_UNLINK);
	if (archive_read_open_filename(a, tar, 1 << 16) != ARCHIVE_OK) {
		hypr_err_set(e, HYPR_EXIT_INPUT, "%s: %s", what, archive_error_string(a));
		goto out;
	}
	while ((r = archive_read_next_header(a, &ent)) == ARCHIVE_OK ||
	    r == ARCHIVE_WARN) {
		const char *name = archive_entry_pathname(ent);
		const char *hl = archive_entry_hardlink(ent);
		mode_t type = archive_entry_filetype(ent);
		char *clean, *full, *hfull = NULL;
		struct tnode *n;

		if (name == NULL)
			continue;
		if (hypr_path_escapes(name) || (hl && hypr_path_escapes(hl))) {
			hypr_err_set(e, HYPR_EXIT_INPUT,
			    "%s: member '%s' points outside the destination", what,
			    hl && hypr_path_escapes(hl) ? hl : name);
			goto out;
		}
		if (type != AE_IFREG && type != AE_IFDIR && type != AE_IFLNK && !hl)
			continue;	/* devices and fifos are not unpacked */
		if ((clean = hypr_path_clean(name)) == NULL)
			goto oom;
		if (clean[0] == '\0') {
			free(clean);
			continue;
		}
		/* A parent that is a symlink unpacked before (lnk -> /etc, then
		 * lnk/f) is followed inside dir, as Docker's chrooted untar
		 * into the destination does; the link itself stays. */
		{
			struct sroot sr = { .dir = dir };
			char *res, *par = NULL, *sl;
			struct stat sb;
			int ok;

			if (resolve_path(clean, 0, host_link, &sr, &res, e) < 0) {
				free(clean);
				goto out;
			}
			if (strcmp(res, clean) != 0) {
				sl = strrchr(res, '/');
				ok = sl == NULL;
				if (!ok && (par = strndup(res, (size_t)(sl - res))) != NULL &&
				    (full = path_join(dir, par)) != NULL) {
					ok = lstat(full, &sb) == 0 && S_ISDIR(sb.st_mode);
					free(full);
				}
				if (!ok) {
					hypr_err_set(e, HYPR_EXIT_INPUT,
					    "%s: member '%s': a symlink in its path leads to '/%s', "
					    "which is not a directory in the archive", what,
					    clean, par ? par : "?");
					free(par);
					free(res);
					free(clean);
					goto out;
				}
				free(par);
			}
			free(clean);
			clean = res;
		}
		if (hl) {
			char *hc = hypr_path_clean(hl);

			if (hc == NULL) {
				free(clean);
				goto oom;
			}
			if (hypr_map_get(meta, hc) == NULL) {
				hypr_err_set(e, HYPR_EXIT_INPUT,
				    "%s: member '%s': hard link target '%s' is not in the archive before it",
				    what, clean, hl);
				free(hc);
				free(clean);
				goto out;
			}
			free(hc);
		}
		if ((full = path_join(dir, clean)) == NULL) {
			free(clean);
			goto oom;
		}
		if ((n = calloc(1, sizeof(*n))) == NULL) {
			free(clean);
			free(full);
			goto oom;
		}
		n->mode = archive_entry_mode(ent);
		n->uid = (uid_t)archive_entry_uid(ent);
		n->gid = (gid_t)archive_entry_gid(ent);
		n->mtime = archive_entry_mtime(ent);
		{
			void *old = NULL;

			hypr_map_set(meta, clean, n, &old);
			tnode_free(old);
		}
		archive_entry_set_pathname(ent, full);
		if (hl) {
			char *hc = hypr_path_clean(hl);

			hfull = hc ? path_join(dir, hc) : NULL;
			archive_entry_set_hardlink(ent, hfull);
			if (hfull) {
				struct tnode *t = hypr_map_get(meta, clean);
				const struct tnode *src = hypr_map_get(meta, hc);

				if (t && src) {
					t->mode = src->mode;
					t->uid = src->uid;
					t->gid = src->gid;
				}
			}
			free(hc);
		}
		r = archive_write_header(w, ent);
		if (r == ARCHIVE_OK && archive_entry_size(ent) > 0 && !hl) {
			const void *buf;
			size_t len;
			la_int64_t off;

			while ((r = archive_read_data_block(a, &buf, &len, &off)) ==
			    ARCHIVE_OK) {
				if (archive_write_data_block(w, buf, len, off) < 0) {
					r = ARCHIVE_FATAL;
					break;
				}
			}
			if (r == ARCHIVE_EOF)
				r = ARCHIVE_OK;
		}
		if (r == ARCHIVE_OK)
			r = archive_write_finish_entry(w);
		free(full);
		free(hfull);
		if (r != ARCHIVE_OK && r != ARCHIVE_WARN) {
			char *m = unstaged(archive_error_string(w) ? archive_error_string(w) :
			    archive_error_string(a), dir);

			hypr_err_set(e, HYPR_EXIT_INPUT, "%s: member '%s': %s", what,
			    clean, m ? m : "?");
			free(m);
			free(clean);
			goto out;
		}
		free(clean);
	}
	if (r != ARCHIVE_EOF) {
		hypr_err_set(e, HYPR_EXIT_INPUT, "%s: %s", what, archive_error_string(a));
		goto out;
	}
	rc = 0;
	goto out;
oom:
	hypr_err_set(e, HYPR_EXIT_SYSTEM, "out of memory");
out:
	archive_read_free(a);
	archive_write_free(w);
	return rc;
}

/* The final filesystem of a layer chain, unpacked once per build. */
int
chain_root(struct ctx *c, const struct hypr_layer *layers, size_t n, char **dirp,
    struct hypr_map *meta, struct hypr_err *e)
{
	const char **v;
	char *dir = make_tmpdir(c, "from", e), *tar;
	int fd, rc;

	if (dir == NULL || layers_fetch(c, layers, n, e) < 0)
		return -1;
	if ((v = hypr_layers_digests(layers, n)) == NULL)
		return hypr_err_set(e, HYPR_EXIT_SYSTEM, "out of memory");
	if (asprintf(&tar, "%s.tar", dir) < 0) {
		free(v);
		return hypr_err_set(e, HYPR_EXIT_SYSTEM, "out of memory");
	}
	fd = open(tar, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		hypr_err_errno(e, HYPR_EXIT_SYSTEM, "creating %s", tar);
		free(v);
		free(tar);
		return -1;
	}
	rc = hypr_rootfs_flatten(&c->root, v, n, fd, e);
	close(fd);
	free(v);
	if (rc == 0)
		rc = unpack(tar, dir, meta, "flattened stage", e);
	unlink(tar);
	free(tar);
	*dirp = dir;
	return rc;
}

/* RUN --mount=type=bind: the source tree (of the context after
 * .dockerignore, a stage, or an image) as a tar blob; its digest is what the
 * cache key sees, and the guest gets it once per VM. */
int
mount_source(struct ctx *c, struct stage *st, const struct hypr_plan_instr *instr, struct rmount *m,
    struct hypr_err *e)
{
	struct sroot r = { .dir = c->context, .ig = c->ignore };
	struct hypr_map meta = { 0 };
	struct items it = { 0 };
	struct lset ls = { 0 };
	struct hypr_layer layer;
	char what[300], *tmpdir = NULL;
	const char *src = m->source && *m->source ? m->source : "/", *d;
	int rc = -1;

	(void)st;
	snprintf(what, sizeof(what), "build context");
	if (m->from) {
		const struct hypr_plan_mount_from *mf = hypr_plan_mount_from(instr, m->from);

		if (mf && mf->stage >= 0) {
			struct stage *fs = stage_by_index(c, mf->stage);

			if (fs == NULL || !fs->done)
				return hypr_err_set(e, HYPR_EXIT_INPUT,
				    "--mount from=%s: stage not built before", m->from);
			if (fs->rootfs == NULL && chain_root(c, fs->layers.v, fs->layers.n,
			    &fs->rootfs, &fs->rootmeta, e) < 0)
				return -1;
			r.dir = fs->rootfs;
			r.meta = &fs->rootmeta;
			r.ig = NULL;
			snprintf(what, sizeof(what), "stage %s", m->from);
		} else if (mf && mf->has_image) {
			if (chain_root(c, mf->image.layers, mf->image.nlayers, &tmpdir, &meta, e) < 0)
				goto out;
			r.dir = tmpdir;
			r.meta = &meta;
			r.ig = NULL;
			snprintf(what, sizeof(what), "image %s", m->from);
		} else {
			return hypr_err_set(e, HYPR_EXIT_INPUT,
			    "--mount from=%s: not a stage or a resolved image (pipe the plan through hypr-fetch)",
			    m->from);
		}
	}
	if (collect(&it, &r, src, 0, 0, what, e) < 0)
		goto out;
	for (size_t i = 0; i < it.n; i++)
		if (lset_add(&ls, it.v[i].rel, &it.v[i].n, it.v[i].host, it.v[i].size, e) < 0)
			goto out;
	if (lset_write(c, &ls, &layer, e) < 0)
		goto out;
	d = layer.digest;
	snprintf(m->digest, sizeof(m->digest), "%s", d);
	/* a file source: the tar holds it under its base name */
	if (it.n == 1 && it.v[0].top_file)
		snprintf(m->vmsource, sizeof(m->vmsource), "b%.24s/%s", hypr_digest_hex(d), it.v[0].rel);
	else
		snprintf(m->vmsource, sizeof(m->vmsource), "b%.24s", hypr_digest_hex(d));
	rc = 0;
out:
	lset_free(&ls);
	items_free(&it);
	hypr_map_free(&meta, tnode_free);
	return rc;
}

/* A name as JSON can hold it: itself when UTF-8, else its bytes in hex. */
static json_t *
name_json(const char *name, int *hex)
{
	json_t *j = json_string(name);
	char *h;

	*hex = 0;
	if (j != NULL)
		return j;
	if ((h = malloc(2 * strlen(name) + 1)) == NULL)
		return NULL;
	for (size_t i = 0; name[i]; i++)
		snprintf(h + 2 * i, 3, "%02x", (unsigned char)name[i]);
	j = json_string(h);
	free(h);
	*hex = 1;
	return j;
}

/* One source in the digest: [name, mode, size, content digest or link
 * target, uid, gid, top_file, archive, owned], and a tenth element, true,
 * when a name is not UTF-8 and is given in hex. */
static json_t *
source_record(const struct item *x, const char *digest)
{
	int hexn, hexl = 0;
	json_t *n = name_json(x->rel, &hexn), *l, *a;

	l = S_ISLNK(x->n.mode) ? name_json(x->n.link ? x->n.link : "", &hexl) :
	    json_string(digest);
	if (n == NULL || l == NULL) {
		json_decref(n);
		json_decref(l);
		return NULL;
	}
	a = json_pack("[o,i,I,o,i,i,b,b,b]", n, (int)x->n.mode, (json_int_t)x->size,
	    l, x->owned ? (int)x->n.uid : 0, x->owned ? (int)x->n.gid : 0,
	    x->top_file, x->archive, x->owned);
	if (a != NULL && (hexn || hexl))
		json_array_append_new(a, json_true());
	return a;
}

/* Digest of what the sources hold: names, types, modes, sizes, owners
 * where they come from the source, content and link targets; not mtimes. */
int
sources_digest(struct items *it, char out[HYPR_DIGEST_LEN + 1], struct hypr_err *e)
{
	struct hypr_sha256 h;

	/* The digest of the compact JSON array of one array per source,
	 * fed one source at a time: a COPY of many files holds no second copy. */
	if (hypr_sha256_init(&h, e) < 0)
		return -1;
	hypr_sha256_update(&h, "[", 1);
	for (size_t i = 0; i < it->n; i++) {
		struct item *x = &it->v[i];
		char d[HYPR_DIGEST_LEN + 1] = "";
		json_t *a;
		char *s;

		if (S_ISREG(x->n.mode) && x->host &&
		    hypr_digest_file(x->host, d, NULL, e) < 0) {
			hypr_sha256_abort(&h);
			return -1;
		}
		a = source_record(x, d);
		s = a ? json_dumps(a, JSON_COMPACT) : NULL;
		json_decref(a);
		if (s == NULL) {
			hypr_sha256_abort(&h);
			return hypr_err_set(e, HYPR_EXIT_SYSTEM, "out of memory");
		}
		if (i > 0)
			hypr_sha256_update(&h, ",", 1);
		hypr_sha256_update(&h, s, strlen(s));
		free(s);
	}
	hypr_sha256_update(&h, "]", 1);
	hypr_sha256_final(&h, out);
	return 0;
}

