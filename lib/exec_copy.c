/* exec_copy.c - COPY and ADD, done on the host: sources from the context (after
 * .dockerignore), from an earlier stage or an image, from a URL or a
 * heredoc; the layer tar is built directly, no VM involved. */
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

/* ADD <url>: fetched on the host with curl (the limits of net.h, at most
 * HYPR_ADD_MAX_SIZE bytes), checksum verified; Last-Modified is its mtime. */
static int
fetch_url(struct ctx *c, struct items *it, const char *url, const char *checksum,
    struct hypr_err *e)
{
	char *dir = make_tmpdir(c, "url", e), *path, name[256];
	const char *p = strstr(url, "://"), *end, *slash;
	struct tnode n = { 0 };
	int64_t mtime;
	uint64_t size;
	int fd;

	if (dir == NULL)
		return -1;
	/* The file name: the URL path's last component, without query. */
	p = p ? p + 3 : url;
	end = p + strcspn(p, "?#");
	slash = NULL;
	for (const char *q = p; q < end; q++)
		if (*q == '/')
			slash = q;
	if (slash == NULL || slash + 1 >= end || (size_t)(end - slash) >= sizeof(name))
		snprintf(name, sizeof(name), "download");
	else
		snprintf(name, sizeof(name), "%.*s", (int)(end - slash - 1), slash + 1);
	if (strcmp(name, "..") == 0 || strcmp(name, ".") == 0)
		snprintf(name, sizeof(name), "download");
	if ((path = path_join(dir, "data")) == NULL)
		return hypr_err_set(e, HYPR_EXIT_SYSTEM, "out of memory");
	if ((fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)) < 0) {
		hypr_err_errno(e, HYPR_EXIT_SYSTEM, "creating %s", path);
		free(path);
		return -1;
	}
	if (hypr_net_download(&c->net, url, fd, c->add_max, "HYPR_ADD_MAX_SIZE", &mtime,
	    &size, e) < 0) {
		close(fd);
		free(path);
		return hypr_err_prefix(e, "%s", url);
	}
	close(fd);
	if (checksum != NULL) {
		char d[HYPR_DIGEST_LEN + 1];

		if (hypr_digest_file(path, d, NULL, e) < 0) {
			free(path);
			return -1;
		}
		if (strcmp(d, checksum) != 0) {
			free(path);
			return hypr_err_set(e, HYPR_EXIT_INPUT,
			    "%s: checksum mismatch: expected %s, got %s", url, checksum, d);
		}
	}
	n.mode = S_IFREG | 0600;
	n.mtime = mtime >= 0 ? mtime : (int64_t)time(NULL);
	if (items_add(it, path, name, &n, size, e) < 0) {
		free(path);
		return -1;
	}
	it->v[it->n - 1].top_file = 1;
	free(path);
	return 0;
}

/* Variables in a heredoc body, as a shell here-document sees them: quotes
 * are literal and a backslash only escapes $, ` and itself. The lexer in
 * lib/expand.h processes quotes, so they are escaped first. */
static int
expand_heredoc(struct stage *st, const char *in, char **out, struct hypr_err *e)
{
	const struct hypr_vars *v;
	size_t n = strlen(in), k = 0;
	char *q = malloc(2 * n + 1);
	int rc;

	if (q == NULL)
		return hypr_err_set(e, HYPR_EXIT_SYSTEM, "out of memory");
	for (size_t i = 0; i < n; i++) {
		if (in[i] == '"' || in[i] == '\'') {
			q[k++] = '\\';
		} else if (in[i] == '\\') {
			if (i + 1 < n && strchr("$`\\", in[i + 1])) {
				q[k++] = in[i++];
			} else {
				q[k++] = '\\';
			}
		}
		q[k++] = in[i];
	}
	q[k] = '\0';
	if ((v = stage_vars(st, e)) == NULL) {
		free(q);
		return -1;
	}
	rc = hypr_expand_word(q, v, '\\', out, e);
	free(q);
	return rc;
}

/* COPY <<EOF dest: the heredoc's content is the file. */
static int
heredoc_item(struct ctx *c, struct stage *st, const struct hypr_plan_instr *instr,
    const char *word, struct items *it, struct hypr_err *e)
{
	const struct hypr_plan_heredoc *h = NULL;
	const char *name = word + 2;

	if (*name == '-')
		name++;
	for (size_t i = 0; i < instr->nheredocs; i++)
		if (strcmp(instr->heredocs[i].name, name) == 0)
			h = &instr->heredocs[i];
	if (h == NULL)
		return hypr_err_set(e, HYPR_EXIT_INPUT, "%s: no such heredoc", word);
	{
		char *text = NULL, *dir = make_tmpdir(c, "heredoc", e), *path;
		struct tnode n = { 0 };
		int rc;

		if (dir == NULL)
			return -1;
		if (h->expand && c->escape == '\\') {
			if (expand_heredoc(st, h->content, &text, e) < 0)
				return -1;
		} else {
			text = strdup(h->content);
		}
		path = path_join(dir, "data");
		if (path == NULL || text == NULL ||
		    hypr_write_atomic(path, text, strlen(text), 0644, e) < 0) {
			free(path);
			free(text);
			return -1;
		}
		n.mode = S_IFREG | 0644;
		n.mtime = c->epoch >= 0 ? c->epoch : time(NULL);
		rc = items_add(it, path, name, &n, strlen(text), e);
		if (rc == 0)
			it->v[it->n - 1].top_file = 1;
		free(path);
		free(text);
		return rc;
	}
}

/* --chown / USER: names resolved in the image's /etc/passwd and /etc/group. */
static int
lookup_db(struct ctx *c, struct stage *st, const char *file, const char *name,
    long *id, long *gid, struct hypr_err *e)
{
	const char **v;
	size_t n;
	char *text = NULL, *line, *save = NULL;
	int r;

	if (stage_layer_digests(st, &v, &n, e) < 0)
		return -1;
	r = hypr_rootfs_read_file(&c->root, v, n, file, 1 << 22, &text, NULL, e);
	free(v);
	if (r < 0)
		return -1;
	if (r == 1)
		return 1;
	for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *f[4] = { 0 }, *p = line;

		for (int k = 0; k < 4 && p; k++) {
			f[k] = p;
			p = strchr(p, ':');
			if (p)
				*p++ = '\0';
		}
		if (f[0] && f[2] && strcmp(f[0], name) == 0) {
			*id = strtol(f[2], NULL, 10);
			if (gid)
				*gid = f[3] ? strtol(f[3], NULL, 10) : *id;
			free(text);
			return 0;
		}
	}
	free(text);
	return 1;
}

static int
all_digits(const char *s)
{
	if (*s == '\0')
		return 0;
	for (; *s; s++)
		if (*s < '0' || *s > '9')
			return 0;
	return 1;
}

int
resolve_owner(struct ctx *c, struct stage *st, const char *spec, uid_t *uid,
    gid_t *gid, struct hypr_err *e)
{
	char *u = strdup(spec), *g = NULL;
	long id = 0, gd = 0;
	int r;

	if (u == NULL)
		return hypr_err_set(e, HYPR_EXIT_SYSTEM, "out of memory");
	if ((g = strchr(u, ':')) != NULL)
		*g++ = '\0';
	if (all_digits(u)) {
		id = gd = strtol(u, NULL, 10);
	} else if ((r = lookup_db(c, st, "etc/passwd", u, &id, &gd, e)) != 0) {
		if (r > 0)
			hypr_err_set(e, HYPR_EXIT_INPUT, "unable to find user %s", u);
		free(u);
		return -1;
	}
	if (g != NULL && *g) {
		if (all_digits(g)) {
			gd = strtol(g, NULL, 10);
		} else if ((r = lookup_db(c, st, "etc/group", g, &gd, NULL, e)) != 0) {
			if (r > 0)
				hypr_err_set(e, HYPR_EXIT_INPUT, "unable to find group %s", g);
			free(u);
			return -1;
		}
	}
	free(u);
	*uid = (uid_t)id;
	*gid = (gid_t)gd;
	return 0;
}

struct owner {
	int set;
	uid_t uid;
	gid_t gid;
	int chmod;
	mode_t mode;
	int64_t now;
};

/* Where an item lands: its parent resolved through the image's symlinks. */
static char *
land(const struct tree *t, const char *dest, const char *rel, int is_dir,
    struct hypr_err *e)
{
	char *p = path_join(dest, rel), *parent, *res = NULL, *sl;
	const struct tnode *n;

	if (p == NULL || rel[0] == '\0')
		return p;
	sl = strrchr(p, '/');
	if (sl == NULL) {
		parent = strdup("");
	} else {
		*sl = '\0';
		if (tree_resolve(t, p, 1, &parent, e) < 0) {
			free(p);
			return NULL;
		}
		*sl = '/';
	}
	res = path_join(parent, sl ? sl + 1 : p);
	free(parent);
	free(p);
	if (res && is_dir && (n = tree_get(t, res)) && S_ISLNK(n->mode)) {
		char *r2;

		if (tree_resolve(t, res, 1, &r2, e) == 0) {
			const struct tnode *m = tree_get(t, r2);

			if (m == NULL || S_ISDIR(m->mode)) {
				free(res);
				return r2;
			}
			free(r2);
		}
	}
	return res;
}

static int
put_item(struct lset *ls, const struct tree *t, const char *path,
    const struct item *x, const struct owner *o, int keep_existing,
    struct hypr_err *e)
{
	struct tnode n = x->n;
	const struct tnode *old = tree_get(t, path);

	if (path[0] == '\0')
		return 0;
	if (keep_existing && old && S_ISDIR(old->mode) && S_ISDIR(n.mode))
		return lset_add(ls, path, old, NULL, 0, e);
	if (!x->owned) {
		n.uid = 0;
		n.gid = 0;
	}
	if (o->set) {
		n.uid = o->uid;
		n.gid = o->gid;
	}
	if (o->chmod && !S_ISLNK(n.mode))
		n.mode = (n.mode & S_IFMT) | o->mode;
	return lset_add(ls, path, &n, x->host, x->size, e);
}

/* Give every entry its parent directories: existing ones with their own
 * metadata, new ones 0755 and owned like the copied files. */
static int
add_parents(struct lset *ls, const struct tree *t, const struct owner *o,
    struct hypr_err *e)
{
	size_t n0 = ls->n;

	for (size_t i = 0; i < n0; i++) {
		char *p = strdup(ls->v[i].path), *sl;

		if (p == NULL)
			return hypr_err_set(e, HYPR_EXIT_SYSTEM, "out of memory");
		while ((sl = strrchr(p, '/')) != NULL) {
			const struct tnode *old;
			struct tnode n = { 0 };

			*sl = '\0';
			if (hypr_map_get(&ls->idx, p))
				break;
			old = tree_get(t, p);
			if (old && S_ISDIR(old->mode)) {
				n = *old;
			} else {
				n.mode = S_IFDIR | 0755;
				n.uid = o->set ? o->uid : 0;
				n.gid = o->set ? o->gid : 0;
				n.mtime = o->now;
			}
			if (lset_add(ls, p, &n, NULL, 0, e) < 0) {
				free(p);
				return -1;
			}
		}
		free(p);
	}
	return 0;
}

static int
is_url(const char *s)
{
	return strncmp(s, "http://", 7) == 0 || strncmp(s, "https://", 8) == 0;
}

int
copy_step(struct ctx *c, struct stage *st, const struct hypr_plan_instr *instr,
    struct step *s, struct hypr_err *e)
{
	const char *op = instr->op;
	int add = strcmp(op, "ADD") == 0;
	const char *chown = hypr_plan_flag(instr, "chown");
	const char *chmod = hypr_plan_flag(instr, "chmod");
	const char *checksum = hypr_plan_flag(instr, "checksum");
	const struct hypr_plan_image *from_image = instr->has_from_image ?
	    &instr->from_image : NULL;
	struct stage *fs = instr->from_stage >= 0 ? stage_by_index(c, instr->from_stage) : NULL;
	const char *from = hypr_plan_flag(instr, "from");
	struct items it = { 0 };
	struct sroot ctxroot = { .dir = c->context, .ig = c->ignore };
	struct sroot fr = { 0 };
	struct hypr_map frmeta = { 0 };
	struct owner o = { 0 };
	struct tree t = { 0 };
	struct lset ls = { 0 };
	char **w = NULL, *dest = NULL, *dres = NULL, *text = NULL;
	char *chown_x = NULL, *chmod_x = NULL;
	char srcd[HYPR_DIGEST_LEN + 1] = "";
	json_t *exp = NULL;
	size_t n = 0;
	int rc = -1, dest_slash, have_tree = 0;

	json_t *fl = instr->flags, *excl = json_object_get(fl, "exclude");
	/* a bare flag is "true" in the plan (hypr-plan(5)) */
	const char *pv = hypr_json_str(fl, "parents");
	int parents = json_is_true(json_object_get(fl, "parents")) ||
	    (pv && (!strcmp(pv, "true") || !strcmp(pv, "1")));

	if (parents && add)
		return hypr_err_set(e, HYPR_EXIT_INPUT, "ADD --parents is not supported (COPY has it)");
	if (excl && !json_is_array(excl))
		excl = NULL;
	if (expand_args(c, st, instr, &w, &n, e) < 0)
		return -1;
	/* --chown and --chmod take variables too, as in BuildKit. */
	if (chown != NULL || chmod != NULL) {
		const struct hypr_vars *v;
		int bad = (v = stage_vars(st, e)) == NULL ||
		    (chown && hypr_expand_word(chown, v, c->escape, &chown_x, e) < 0) ||
		    (chmod && hypr_expand_word(chmod, v, c->escape, &chmod_x, e) < 0);

		if (bad)
			goto out;
		if (chown_x)
			chown = chown_x;
		if (chmod_x)
			chmod = chmod_x;
	}
	if (n < 2) {
		hypr_err_set(e, HYPR_EXIT_INPUT, "%s requires at least two arguments", op);
		goto out;
	}
	if (chmod) {
		char *end;
		long m = strtol(chmod, &end, 8);

		if (*chmod == '\0' || *end || m < 0 || m > 07777) {
			hypr_err_set(e, HYPR_EXIT_INPUT, "--chmod=%s: not an octal mode", chmod);
			goto out;
		}
		o.chmod = 1;
		o.mode = (mode_t)m;
	}
	if (checksum && (!add || strncmp(checksum, "sha256:", 7) != 0 ||
	    !hypr_digest_valid(checksum))) {
		hypr_err_set(e, HYPR_EXIT_INPUT, "--checksum=%s: want sha256:<64 hex>%s",
		    checksum, add ? "" : " (ADD only)");
		goto out;
	}
	/* Destination: relative to WORKDIR; a trailing slash means a directory. */
	{
		const char *d = w[n - 1], *wd = hypr_json_str(st->config, "WorkingDir");
		size_t dl = strlen(d);

		dest_slash = dl > 0 && (d[dl - 1] == '/' ||
		    (dl >= 2 && d[dl - 1] == '.' && d[dl - 2] == '/') ||
		    strcmp(d, ".") == 0);
		if (d[0] == '/')
			dest = hypr_path_clean(d);
		else {
			char *j = path_join(wd && *wd ? wd : "/", d);

			dest = j ? hypr_path_clean(j) : NULL;
			free(j);
		}
		if (dest == NULL)
			goto oom;
		if (dest[0] == '\0')
			dest_slash = 1;
	}
	exp = json_pack("{s:[],s:s}", "sources", "dest", w[n - 1]);
	for (size_t i = 0; i + 1 < n; i++)
		json_array_append_new(json_object_get(exp, "sources"), json_string(w[i]));
	/* Sources, and the digest of what they hold, for the cache key. */
	if (from_image || instr->from_stage >= 0) {
		const char *id = fs ? fs->key : from_image ? from_image->digest : NULL;

		if ((fs == NULL && from_image == NULL) || (fs && !fs->done) || id == NULL) {
			hypr_err_set(e, HYPR_EXIT_INPUT, "--from=%s: stage not built before",
			    from ? from : "?");
			goto out;
		}
		json_object_set_new(exp, "from", json_string(id));
	} else if (from != NULL) {
		hypr_err_set(e, HYPR_EXIT_INPUT,
		    "--from=%s: not a stage and not resolved to an image (run hypr-fetch)",
		    from);
		goto out;
	} else {
		for (size_t i = 0; i + 1 < n; i++) {
			size_t wl = strlen(w[i]);

			if (add && (strncmp(w[i], "git@", 4) == 0 ||
			    (is_url(w[i]) && ((wl > 4 && strcmp(w[i] + wl - 4, ".git") == 0) ||
			    strstr(w[i], ".git#") != NULL)))) {
				hypr_err_set(e, HYPR_EXIT_INPUT,
				    "%s: ADD from a git repository is not supported", w[i]);
				goto out;
			}
			if (checksum && !is_url(w[i])) {
				hypr_err_set(e, HYPR_EXIT_INPUT,
				    "%s: --checksum is only for URL sources", w[i]);
				goto out;
			}
			if (is_url(w[i])) {
				if (!add) {
					hypr_err_set(e, HYPR_EXIT_INPUT,
					    "%s: source can't be a URL for COPY", w[i]);
					goto out;
				}
				if (fetch_url(c, &it, w[i], checksum, e) < 0)
					goto out;
			} else if (strncmp(w[i], "<<", 2) == 0 &&
			    instr->nheredocs > 0) {
				if (heredoc_item(c, st, instr, w[i], &it, e) < 0)
					goto out;
			} else if (collect(&it, &ctxroot, w[i], add, parents, "build context", e) < 0) {
				goto out;
			}
		}
		if (items_exclude(&it, excl, e) < 0 || sources_digest(&it, srcd, e) < 0)
			goto out;
	}
	if (cache_key(c, st, instr, exp, srcd[0] ? srcd : NULL, s->key, e) < 0)
		goto out;
	if (cache_lookup(c, s)) {
		rc = 0;
		goto done;
	}
	/* A miss: build the layer. */
	if (from_image || instr->from_stage >= 0) {
		char what[300];

		if (fs && fs->rootfs == NULL) {
			if (chain_root(c, fs->layers.v, fs->layers.n, &fs->rootfs, &fs->rootmeta,
			    e) < 0)
				goto out;
		} else if (fs == NULL) {
			if (chain_root(c, from_image->layers, from_image->nlayers,
			    (char **)&fr.dir, &frmeta, e) < 0)
				goto out;
		}
		if (fs) {
			fr.dir = fs->rootfs;
			fr.meta = &fs->rootmeta;
		} else {
			fr.meta = &frmeta;
		}
		snprintf(what, sizeof(what), "%s%s", fs ? "stage " : "image ",
		    from ? from : "?");
		for (size_t i = 0; i + 1 < n; i++)
			if (collect(&it, &fr, w[i], 0, parents, what, e) < 0)
				goto out;
		if (items_exclude(&it, excl, e) < 0)
			goto out;
	}
	{
		size_t tops = 0;

		for (size_t i = 0; i < it.n; i++)
			tops += it.v[i].top_file || it.v[i].rel[0] == '\0';
		if ((n > 2 || tops > 1) && !dest_slash) {
			hypr_err_set(e, HYPR_EXIT_INPUT,
			    "When using %s with more than one source file, the "
			    "destination must be a directory and end with a /", op);
			goto out;
		}
	}
	if (tree_build(c, st->layers.v, st->layers.n, &t, e) < 0)
		goto out;
	have_tree = 1;
	if (chown && resolve_owner(c, st, chown, &o.uid, &o.gid, e) < 0)
		goto out;
	o.set = chown != NULL;
	o.now = c->epoch >= 0 ? c->epoch : time(NULL);
	if (tree_resolve(&t, dest, 1, &dres, e) < 0)
		goto out;
	{
		const struct tnode *dn = tree_get(&t, dres);
		int dest_dir = dest_slash || parents || (dn && S_ISDIR(dn->mode));

		for (size_t i = 0; i < it.n; i++) {
			struct item *x = &it.v[i];
			const char *rel = x->top_file && !dest_dir && !x->archive ? "" : x->rel;
			char *path;

			if (x->archive) {
				struct hypr_map am = { 0 };
				struct items sub = { 0 };
				char *dir = make_tmpdir(c, "add", e);
				struct sroot ar = { .meta = &am };

				if (dir == NULL)
					goto out;
				ar.dir = dir;
				if (unpack(x->host, dir, &am, w[0], e) < 0 ||
				    walk(&sub, &ar, "", "", e) < 0) {
					hypr_map_free(&am, tnode_free);
					items_free(&sub);
					goto out;
				}
				/* The destination directory itself. */
				if (dres[0] && !(dn && S_ISDIR(dn->mode))) {
					struct tnode dn2 = { .mode = S_IFDIR | 0755,
						.mtime = o.now };
					struct item di = { .rel = "", .n = dn2 };

					if (put_item(&ls, &t, dres, &di, &o, 1, e) < 0)
						goto out;
				}
				for (size_t k = 0; k < sub.n; k++) {
					char *p = land(&t, dres, sub.v[k].rel,
					    S_ISDIR(sub.v[k].n.mode), e);

					if (p == NULL || put_item(&ls, &t, p, &sub.v[k], &o,
					    0, e) < 0) {
						free(p);
						hypr_map_free(&am, tnode_free);
						items_free(&sub);
						goto out;
					}
					free(p);
				}
				hypr_map_free(&am, tnode_free);
				items_free(&sub);
				continue;
			}
			path = land(&t, dres, rel, S_ISDIR(x->n.mode), e);
			if (path == NULL)
				goto out;
			if (put_item(&ls, &t, path, x, &o, rel[0] == '\0', e) < 0) {
				free(path);
				goto out;
			}
			free(path);
		}
	}
	if (add_parents(&ls, &t, &o, e) < 0 || lset_write(c, &ls, &s->layer, e) < 0)
		goto out;
	s->has_layer = 1;
	rc = 0;
done:
	text = join_words(json_object_get(exp, "sources"), " ");
	if (asprintf(&s->created_by, "%s %s%s%s%s %s", op, from ? "--from=" : "",
	    from ? from : "", from ? " " : "", text ? text : "", w[n - 1]) < 0)
		s->created_by = NULL;
	free(text);
	goto out;
oom:
	hypr_err_set(e, HYPR_EXIT_SYSTEM, "out of memory");
out:
	if (have_tree)
		tree_free(&t);
	lset_free(&ls);
	items_free(&it);
	hypr_map_free(&frmeta, tnode_free);
	hypr_words_free(w);
	json_decref(exp);
	free(dest);
	free(dres);
	free(chown_x);
	free(chmod_x);
	return rc;
}

int
workdir_layer(struct ctx *c, struct stage *st, const char *dir,
    struct hypr_layer *layer, int *has, struct hypr_err *e)
{
	struct tree t;
	struct lset ls = { 0 };
	struct owner o = { 0 };
	const char *user = hypr_json_str(st->config, "User");
	char *res = NULL;
	const struct tnode *n;
	int rc = -1;

	*has = 0;
	if (tree_build(c, st->layers.v, st->layers.n, &t, e) < 0)
		return -1;
	if (tree_resolve(&t, dir, 1, &res, e) < 0)
		goto out;
	n = tree_get(&t, res);
	if (n != NULL) {
		rc = 0;		/* exists (a file there fails at RUN, as Docker) */
		goto out;
	}
	if (user && *user && resolve_owner(c, st, user, &o.uid, &o.gid, e) == 0)
		o.set = 1;
	o.now = c->epoch >= 0 ? c->epoch : time(NULL);
	{
		struct tnode dn = { .mode = S_IFDIR | 0755, .uid = o.uid, .gid = o.gid,
			.mtime = o.now };

		if (lset_add(&ls, res, &dn, NULL, 0, e) < 0 ||
		    add_parents(&ls, &t, &o, e) < 0 || lset_write(c, &ls, layer, e) < 0)
			goto out;
		*has = 1;
	}
	rc = 0;
out:
	tree_free(&t);
	lset_free(&ls);
	free(res);
	return rc;
}

