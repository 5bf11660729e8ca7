/* prune.c - hypr-store rmi, image-prune, system-prune, system-df.
 *
 * Blobs are kept while something names them: an image's layers and
 * squashfs, an instruction cache entry's layer, a squashfs chain-cache
 * entry, or a base image tagged by hypr-fetch under refs/. A blob younger
 * than HYPR_PRUNE_GRACE seconds (default 3600), or made since the start of
 * a build still running, is kept: it may belong to a build that has not
 * stored its image yet. What tmp/ holds goes once no process holds its
 * lock (lib/cas.h), whatever its age. Sizes are allocated bytes: the build
 * VM's sparse 64 GiB disks count for what they use. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cache.h"
#include "cli.h"
#include "fsutil.h"
#include "image.h"
#include "oci.h"
#include "stream.h"
#include "tool.h"
#include "vm.h"

/* ---- rmi ---- */

/* When this command began: a blob changed since is not one it let go. */
static struct timespec cmd_start;

static int in_use(struct hypr_store *s, const struct hypr_image *im);
struct refs;
static void named(struct hypr_store *s, struct refs *r);
static void release(struct hypr_store *s, struct refs *before, int live, uint64_t *freed);
static int programs_live(struct hypr_store *s);
static void refs_free_ptr(struct refs *r);
static struct refs *refs_new(void);

/* A stored image built FROM this base (docker: a dependent child image). */
static const struct hypr_image *
child_of(struct hypr_store *s, const struct hypr_image *base)
{
	const char *md = hypr_json_str(base->m, "manifest");

	for (size_t i = 0; md && i < s->n; i++) {
		const char *d = hypr_json_str(json_object_get(s->img[i].m, "base"), "digest");

		if (!s->img[i].base && d && strcmp(d, md) == 0)
			return &s->img[i];
	}
	return NULL;
}
static int stopped_user(struct hypr_store *s, const struct hypr_image *im, const char *arg,
    int by_tag);

int
cmd_rmi(int argc, char *argv[])
{
	static const struct option lo[] = {
		{ "force", no_argument, NULL, 'f' },
		{ "no-prune", no_argument, NULL, 'P' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct hypr_err e = { 0 };
	struct hypr_store s;
	struct refs *before;
	int c, force = 0, rc = 0;

	clock_gettime(CLOCK_REALTIME, &cmd_start);
	optind = 1;
	while ((c = getopt_long(argc, argv, "fh", lo, NULL)) != -1) {
		switch (c) {
		case 'f': force = 1; break;
		case 'P': break;
		case 'h': printf("usage: hypr rmi [-f] IMAGE...\n"); exit(0);
		default: hypr_die(HYPR_EXIT_USAGE, "usage: hypr rmi [-f] IMAGE...");
		}
	}
	if (optind == argc)
		hypr_die(HYPR_EXIT_USAGE, "rmi: at least one IMAGE");
	if (hypr_store_open_bases(&s, opt_root, 1, &e) < 0)
		hypr_die_err(&e);
	before = refs_new();
	named(&s, before);
	for (int i = optind; i < argc; i++) {
		struct hypr_image *im;
		struct hypr_err fe = { 0 };
		char tag[600], fam[600], id[HYPR_DIGEST_LEN + 1];
		json_t *tags = json_object_get(s.index, "tags");

		if (hypr_store_find(&s, argv[i], &im, tag, sizeof(tag), &fe) < 0) {
			hypr_say_err(&fe);
			rc = HYPR_EXIT_INPUT;
			continue;
		}
		if (tag[0] && im && im->base) {
			/* a base by tag: untag; it is gone with its last tag,
			 * unless a stored image was built from it (docker keeps
			 * such a parent, untagged; its layers stay with the child) */
			int last = json_object_size(im->refs) == 1;
			const struct hypr_image *child = child_of(&s, im);

			snprintf(id, sizeof(id), "%s", im->id);
			if (hypr_store_untag_base(&s, tag, &e) < 0)
				hypr_die_err(&e);
			hypr_store_familiar(tag, fam, sizeof(fam));
			printf("Untagged: %s\n", fam);
			if (last && !child)
				printf("Deleted: %s\n", id);
			if (hypr_store_reload(&s, &e) < 0)
				hypr_die_err(&e);
			continue;
		}
		if (!tag[0] && im->base && !im->problem && child_of(&s, im)) {
			fprintf(stderr, "hypr-store: conflict: unable to delete %.12s (cannot be forced) "
			    "- image has dependent child images\n", im->hex);
			rc = HYPR_EXIT_INPUT;
			continue;
		}
		if (tag[0] && im && !force && json_array_size(im->tags) == 1 && in_use(&s, im)) {
			/* docker: untagging would leave a running image dangling */
			fprintf(stderr, "hypr-store: conflict: unable to remove repository reference "
			    "\"%s\" (must force) - a running container is using its referenced image "
			    "%.12s\n", argv[i], im->hex);
			rc = HYPR_EXIT_INPUT;
			continue;
		}
		if (im && !force && stopped_user(&s, im, argv[i], tag[0] != 0)) {
			rc = HYPR_EXIT_INPUT;
			continue;
		}
		if (!tag[0] && in_use(&s, im)) {
			fprintf(stderr, "hypr-store: conflict: unable to delete %.12s (cannot be forced) "
			    "- image is being used by a running container\n", im->hex);
			rc = HYPR_EXIT_INPUT;
			continue;
		}
		if (tag[0]) {
			/* by tag: untag; delete once no tag is left */
			json_object_del(tags, tag);
			if (hypr_store_save_index(&s, &e) < 0)
				hypr_die_err(&e);
			hypr_store_familiar(tag, fam, sizeof(fam));
			printf("Untagged: %s\n", fam);
			/* -f on a running image: untagged, kept (as docker) */
			if (im == NULL || json_array_size(im->tags) > 0 || in_use(&s, im)) {
				if (hypr_store_reload(&s, &e) < 0)
					hypr_die_err(&e);
				continue;
			}
		} else if (json_array_size(im->tags) > 1 && !force) {
			fprintf(stderr, "hypr-store: conflict: unable to delete %.12s (must be "
			    "forced) - image is referenced by %zu tags\n", im->hex,
			    json_array_size(im->tags));
			rc = HYPR_EXIT_INPUT;
			continue;
		} else {
			size_t k;
			json_t *v;

			json_array_foreach(im->tags, k, v)
				printf("Untagged: %s\n", json_string_value(v));
		}
		snprintf(id, sizeof(id), "%s", im->id);
		if (hypr_store_delete(&s, im, NULL, &e) < 0)
			hypr_die_err(&e);
		printf("Deleted: %s\n", id);
	}
	/* what only the removed images named goes now, as docker deletes
	 * their layers (kept while a build runs: a prune takes them later) */
	release(&s, before, programs_live(&s), NULL);
	refs_free_ptr(before);
	hypr_store_close(&s);
	hypr_close_stdout();
	return rc;
}

/* docker rmi without -f: an image a container (not running) was made
 * from stays, its last tag too; prints the conflict. */
static int
stopped_user(struct hypr_store *s, const struct hypr_image *im, const char *arg, int by_tag)
{
	char who[16];

	if ((by_tag && json_array_size(im->tags) != 1) || in_use(s, im) ||
	    !ctr_using(&s->root, im->id, who, sizeof(who)))
		return 0;
	if (by_tag)
		fprintf(stderr, "hypr-store: conflict: unable to remove repository reference "
		    "\"%s\" (must force) - container %s is using its referenced image %.12s\n",
		    arg, who, im->hex);
	else
		fprintf(stderr, "hypr-store: conflict: unable to delete %.12s (must be forced) - "
		    "image is being used by stopped container %s\n", im->hex, who);
	return 1;
}

/* ---- what is referenced ---- */

struct refs {
	char (*d)[HYPR_DIGEST_LEN + 1];
	size_t n, cap;
	int sorted;
};

static void
ref_add(struct refs *r, const char *d)
{
	if (!d || !hypr_digest_valid(d))
		return;
	if (r->n == r->cap) {
		size_t nc = r->cap ? r->cap * 2 : 256;
		void *nd = realloc(r->d, nc * sizeof(*r->d));

		if (nd == NULL)
			hypr_die_errno("prune");
		r->d = nd;
		r->cap = nc;
	}
	memcpy(r->d[r->n++], d, HYPR_DIGEST_LEN + 1);
	r->sorted = 0;
}

static int
dcmp(const void *a, const void *b)
{
	return strcmp(a, b);
}

static int
ref_has(struct refs *r, const char *d)
{
	if (!r->sorted && r->n) {
		qsort(r->d, r->n, sizeof(*r->d), dcmp);
		r->sorted = 1;
	}
	return r->n && bsearch(d, r->d, r->n, sizeof(*r->d), dcmp) != NULL;
}

static void
ref_free(struct refs *r)
{
	free(r->d);
	memset(r, 0, sizeof(*r));
}

static struct refs *
refs_new(void)
{
	struct refs *r = calloc(1, sizeof(*r));

	if (r == NULL)
		hypr_die_errno("prune");
	return r;
}

static void
refs_free_ptr(struct refs *r)
{
	ref_free(r);
	free(r);
}

static void
refs_of_image(struct refs *r, const struct hypr_image *im)
{
	json_t *l;
	size_t i;

	if (im->base)
		ref_add(r, im->id);	/* the config, or the tag's digest when broken */
	if (!im->m)
		return;
	ref_add(r, hypr_json_str(json_object_get(im->m, "squashfs"), "digest"));
	ref_add(r, hypr_json_str(im->m, "manifest"));
	ref_add(r, hypr_json_str(im->m, "index"));
	/* a compressed layer's unpacked copy (oci.h) goes with it */
	json_array_foreach(json_object_get(im->m, "layers"), i, l) {
		const char *d = hypr_json_str(l, "digest"), *di = hypr_json_str(l, "diff_id");

		ref_add(r, d);
		if (d && di && strcmp(d, di) != 0)
			ref_add(r, di);
	}
}

/* How many times d is in r (sorted on first use). */
static size_t
ref_count(struct refs *r, const char *d)
{
	char (*hit)[HYPR_DIGEST_LEN + 1];
	size_t n = 0;

	if (!ref_has(r, d))
		return 0;
	hit = bsearch(d, r->d, r->n, sizeof(*r->d), dcmp);
	while (hit > r->d && strcmp(hit[-1], d) == 0)
		hit--;
	for (; hit < r->d + r->n && strcmp(*hit, d) == 0; hit++)
		n++;
	return n;
}

static json_t *
read_json(const char *path)
{
	char *buf = NULL;
	size_t len;
	struct hypr_err ig = { 0 };
	json_t *j;

	if (hypr_read_file(path, 16u << 20, &buf, &len, &ig) < 0)
		return NULL;
	j = json_loadb(buf, len, 0, NULL);
	free(buf);
	return j;
}

/* Calls fn(path, name, json) for each *.json in dir. */
struct cache_scan {
	struct hypr_root *root;
	struct refs *refs;		/* blobs cache entries name */
	size_t entries;
	int remove_all;			/* delete every entry */
	int remove_broken;		/* delete entries whose blob is gone */
	json_t *removed;		/* keys removed */
};

static void
cache_entry(void *arg, const char *path, const char *const *blobs, int broken)
{
	struct cache_scan *c = arg;

	if (c->remove_all || (c->remove_broken && broken)) {
		const char *name = strrchr(path, '/');

		if (unlink(path) == 0 && c->removed)
			json_array_append_new(c->removed, json_string(name ? name + 1 : path));
		return;
	}
	c->entries++;
	for (; *blobs; blobs++)
		ref_add(c->refs, *blobs);
}

/* Base images tagged by hypr-fetch: refs/<domain>/<path>/_tags/<tag> hold
 * {"digest": manifest}; the manifest names its config and layers. */
struct base_scan {
	struct hypr_root *root;
	struct refs *refs;
	size_t count;
	json_t *digests;	/* manifest digests of the tags */
};

static struct base_scan *g_base;

static void
base_manifest(struct base_scan *b, const char *digest, int depth)
{
	char *buf = NULL;
	size_t len, i;
	json_t *m, *l;
	struct hypr_err ig = { 0 };

	if (!hypr_digest_valid(digest) || depth > 2)
		return;
	ref_add(b->refs, digest);
	if (hypr_blob_read(b->root, digest, 16u << 20, &buf, &len, &ig) < 0)
		return;
	m = json_loadb(buf, len, 0, NULL);
	free(buf);
	ref_add(b->refs, hypr_json_str(json_object_get(m, "config"), "digest"));
	json_array_foreach(json_object_get(m, "layers"), i, l) {
		char diff[HYPR_DIGEST_LEN + 1];
		const char *ld = hypr_json_str(l, "digest");

		ref_add(b->refs, ld);
		if (ld && hypr_diffid_lookup(b->root, ld, diff))
			ref_add(b->refs, diff);
	}
	json_array_foreach(json_object_get(m, "manifests"), i, l)
		base_manifest(b, hypr_json_str(l, "digest"), depth + 1);
	json_decref(m);
}

static int
base_visit(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	json_t *j;
	const char *d;

	(void)st;
	(void)ftw;
	if (type != FTW_F || !strstr(path, "/_tags/"))
		return 0;
	j = read_json(path);
	d = hypr_json_str(j, "digest");
	if (d && hypr_digest_valid(d)) {
		g_base->count++;
		json_array_append_new(g_base->digests, json_string(d));
		base_manifest(g_base, d, 0);
	}
	json_decref(j);
	return 0;
}

static void
scan_bases(struct hypr_root *root, struct base_scan *b)
{
	char dir[HYPR_PATH_BUF];

	b->root = root;
	b->digests = json_array();
	hypr_root_path(root, dir, sizeof(dir), "refs");
	g_base = b;
	nftw(dir, base_visit, 16, FTW_PHYS);
	g_base = NULL;
}

static int64_t
grace(void)
{
	const char *g = getenv("HYPR_PRUNE_GRACE");

	return g && *g ? strtoll(g, NULL, 10) : 3600;
}

/* Start of the earliest build still running (its temp dir is locked), or
 * INT64_MAX: a blob made since then may be one it has not named yet. */
static int64_t live_since = INT64_MAX;

static int
ts_after(const struct timespec *a, const struct timespec *b)
{
	return a->tv_sec > b->tv_sec || (a->tv_sec == b->tv_sec && a->tv_nsec >= b->tv_nsec);
}

static int
changed_since_start(const struct stat *st)
{
	return ts_after(&st->st_mtim, &cmd_start) || ts_after(&st->st_ctim, &cmd_start);
}

static int
is_young(const struct stat *st)
{
	int64_t t = st->st_mtime > st->st_ctime ? st->st_mtime : st->st_ctime;

	return t > (int64_t)time(NULL) - grace() || t >= live_since;
}

static uint64_t
disk_use(const struct stat *st)
{
	return (uint64_t)st->st_blocks * 512;
}

/* Is some process (a VM runner) holding a lock on the image's squashfs? */
static int
in_use(struct hypr_store *s, const struct hypr_image *im)
{
	char p[HYPR_PATH_BUF];
	int fd, busy;

	hypr_root_path(&s->root, p, sizeof(p), "images/%s.squashfs", im->hex);
	if ((fd = open(p, O_RDONLY | O_CLOEXEC)) < 0)
		return 0;
	busy = flock(fd, LOCK_EX | LOCK_NB) < 0 && errno == EWOULDBLOCK;
	close(fd);
	return busy;
}

/* Every blob something names: the images (built and base, with every
 * platform of a base's index), the cache entries. */
static void
named(struct hypr_store *s, struct refs *r)
{
	struct base_scan bs = { 0 };
	struct cache_scan cs = { .root = &s->root, .refs = r };

	for (size_t i = 0; i < s->n; i++)
		refs_of_image(r, &s->img[i]);
	bs.refs = r;
	scan_bases(&s->root, &bs);
	json_decref(bs.digests);
	hypr_cache_each(&s->root, cache_entry, &cs);
}

/* Is some program running with temp files (a build)? Sets live_since. */
static int
programs_live(struct hypr_store *s)
{
	struct hypr_tmp_usage u;
	struct hypr_err ig = { 0 };

	if (hypr_root_tmp_scan(&s->root, 0, NULL, NULL, &u, &ig) < 0)
		return 1;
	live_since = u.live_since;
	return u.live > 0;
}

/* The blobs before named and nothing names now were let go by this
 * command (rmi, a prune): they go now, young or not, unless a build is
 * running (then the grace rule holds: it may use them). Without this a
 * base pulled within the grace period stayed on disk after its rmi and
 * prune, named by nothing. */
static void
release(struct hypr_store *s, struct refs *before, int live, uint64_t *freed)
{
	struct refs now = { 0 };
	char p[HYPR_PATH_BUF];
	struct stat st;

	named(s, &now);
	ref_has(before, "");	/* sorts */
	for (size_t i = 0; i < before->n; i++) {
		if ((i && strcmp(before->d[i], before->d[i - 1]) == 0) || ref_has(&now, before->d[i]))
			continue;
		if (hypr_blob_path(&s->root, before->d[i], p, sizeof(p), NULL) < 0 ||
		    lstat(p, &st) < 0 || (is_young(&st) && (live || changed_since_start(&st))))
			continue;
		if (unlink(p) == 0 && st.st_nlink <= 1 && freed)
			*freed += disk_use(&st);
	}
	ref_free(&now);
}

/* Remove images: dangling (untagged) and broken ones; with all, every image
 * not in use. Prints docker's "Deleted Images:" section. */
static void
prune_images(struct hypr_store *s, int all, uint64_t *freed)
{
	struct hypr_err e = { 0 };
	int any = 0;

	for (size_t i = 0; i < s->n;) {
		struct hypr_image *im = &s->img[i];
		char id[HYPR_DIGEST_LEN + 1];
		size_t k;
		json_t *v;

		if (!(im->problem || json_array_size(im->tags) == 0 || all) || in_use(s, im) ||
		    ctr_using(&s->root, im->id, NULL, 0)) {
			i++;
			continue;
		}
		if (!any)
			printf("Deleted Images:\n");
		any = 1;
		json_array_foreach(im->tags, k, v)
			printf("untagged: %s\n", json_string_value(v));
		snprintf(id, sizeof(id), "%s", im->id);
		if (hypr_store_delete(s, im, freed, &e) < 0)
			hypr_die_err(&e);
		printf("deleted: %s\n", id);
		i = 0;	/* the list was reloaded */
	}
	if (any)
		printf("\n");
}

/* Stray files in images/ (a squashfs without manifest, temp files). */
static void
prune_strays(struct hypr_store *s, uint64_t *freed)
{
	char dir[HYPR_PATH_BUF], p[HYPR_PATH_BUF + 256];
	DIR *d;
	struct dirent *de;

	hypr_root_path(&s->root, dir, sizeof(dir), "images");
	if ((d = opendir(dir)) == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		struct stat st;
		char id[HYPR_DIGEST_LEN + 1];
		int keep = 0;

		if (de->d_name[0] == '.' || strcmp(de->d_name, "index.json") == 0 ||
		    strcmp(de->d_name, "index.lock") == 0)
			continue;
		snprintf(p, sizeof(p), "%s/%s", dir, de->d_name);
		if (lstat(p, &st) < 0 || is_young(&st))
			continue;
		if (strlen(de->d_name) == 64 + 9 && strcmp(de->d_name + 64, ".squashfs") == 0) {
			snprintf(id, sizeof(id), "sha256:%.64s", de->d_name);
			keep = hypr_store_get(s, id) != NULL;
		} else if (strlen(de->d_name) == 69 && strcmp(de->d_name + 64, ".json") == 0) {
			keep = 1;
		}
		if (!keep && unlink(p) == 0 && st.st_nlink <= 1)
			*freed += disk_use(&st);
	}
	closedir(d);
}

static void
tmp_removed(void *arg, const char *name, int live, uint64_t bytes, int removed)
{
	json_t *list = arg;

	(void)live;
	(void)bytes;
	if (removed)
		json_array_append_new(list, json_string(name));
}

/* Remove the empty directories under dir (and dir itself unless top). */
static void
rmdir_empty(const char *dir, int depth)
{
	DIR *d;
	struct dirent *de;
	char p[HYPR_PATH_BUF + 512];

	if (depth > 16 || (d = opendir(dir)) == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		struct stat st;

		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if ((size_t)snprintf(p, sizeof(p), "%s/%s", dir, de->d_name) < sizeof(p) &&
		    lstat(p, &st) == 0 && S_ISDIR(st.st_mode))
			rmdir_empty(p, depth + 1);
	}
	closedir(d);
	if (depth > 0)
		rmdir(dir);	/* fails when not empty */
}

/* Blobs nothing names (and old enough). */
static void
prune_blobs(struct hypr_store *s, struct refs *keep, struct refs *before, int live,
    uint64_t *freed)
{
	char dir[HYPR_PATH_BUF], p[HYPR_PATH_BUF + 256], d[HYPR_DIGEST_LEN + 1];
	DIR *dd;
	struct dirent *de;

	hypr_root_path(&s->root, dir, sizeof(dir), "blobs/sha256");
	if ((dd = opendir(dir)) == NULL)
		return;
	while ((de = readdir(dd)) != NULL) {
		struct stat st;

		if (strlen(de->d_name) != 64)
			continue;
		snprintf(d, sizeof(d), "sha256:%s", de->d_name);
		snprintf(p, sizeof(p), "%s/%s", dir, de->d_name);
		/* young: maybe a build's, not named yet; but what this prune
		 * let go was named, so it goes (unless a build runs) */
		if (ref_has(keep, d) || lstat(p, &st) < 0 ||
		    (is_young(&st) && (live || !ref_has(before, d) || changed_since_start(&st))))
			continue;
		if (unlink(p) == 0 && st.st_nlink <= 1)
			*freed += disk_use(&st);
	}
	closedir(dd);
}

/* Records about blobs that are gone: diffids/<hex> (a layer's diff_id),
 * pushed/<hex> (its gzip'd digest); and refs/ directories left empty. */
static void
prune_records(struct hypr_store *s)
{
	static const char *const dirs[] = { "diffids", "pushed", NULL };
	char dir[HYPR_PATH_BUF], p[HYPR_PATH_BUF + 256], d[HYPR_DIGEST_LEN + 1];
	DIR *dd;
	struct dirent *de;

	for (const char *const *k = dirs; *k; k++) {
		hypr_root_path(&s->root, dir, sizeof(dir), "%s", *k);
		if ((dd = opendir(dir)) == NULL)
			continue;
		while ((de = readdir(dd)) != NULL) {
			if (strlen(de->d_name) != 64)
				continue;
			snprintf(d, sizeof(d), "sha256:%s", de->d_name);
			snprintf(p, sizeof(p), "%s/%s", dir, de->d_name);
			if (!hypr_blob_has(&s->root, d))
				unlink(p);
		}
		closedir(dd);
	}
	hypr_root_path(&s->root, dir, sizeof(dir), "refs");
	rmdir_empty(dir, 0);
}

static void
print_total(uint64_t freed)
{
	char h[32];

	hypr_image_human_size(freed, h, sizeof(h));
	printf("Total reclaimed space: %s\n", h);
}

static void
prune_args(int argc, char *argv[], int *all, int *force, const char *what)
{
	static const struct option lo[] = {
		{ "all", no_argument, NULL, 'a' },
		{ "force", no_argument, NULL, 'f' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	optind = 1;
	while ((c = getopt_long(argc, argv, "afh", lo, NULL)) != -1) {
		switch (c) {
		case 'a': *all = 1; break;
		case 'f': *force = 1; break;
		case 'h': printf("usage: hypr %s [-a] [-f]\n", what); exit(0);
		default: hypr_die(HYPR_EXIT_USAGE, "usage: hypr %s [-a|--all] [-f|--force]", what);
		}
	}
	if (optind != argc)
		hypr_die(HYPR_EXIT_USAGE, "usage: hypr %s [-a|--all] [-f|--force]", what);
}

int
cmd_image_prune(int argc, char *argv[])
{
	struct hypr_err e = { 0 };
	struct hypr_store s;
	struct refs before = { 0 };
	int all = 0, force = 0;
	uint64_t freed = 0;

	clock_gettime(CLOCK_REALTIME, &cmd_start);
	prune_args(argc, argv, &all, &force, "image prune");
	if (!force && !confirm(all ?
	    "WARNING! This will remove all images without at least one container associated to them." :
	    "WARNING! This will remove all dangling images."))
		return hypr_close_stdout();
	if (hypr_store_open_bases(&s, opt_root, 1, &e) < 0)
		hypr_die_err(&e);
	named(&s, &before);
	prune_images(&s, all, &freed);
	prune_strays(&s, &freed);
	release(&s, &before, programs_live(&s), &freed);
	ref_free(&before);
	hypr_store_close(&s);
	print_total(freed);
	return hypr_close_stdout();
}

/* docker builder prune: the build cache alone. Cache mounts no build
 * holds and broken cache entries; with --all every cache entry too. */
int
cmd_builder_prune(int argc, char *argv[])
{
	struct hypr_err e = { 0 };
	struct hypr_store s;
	struct refs keep = { 0 }, before = { 0 };
	struct cache_scan cs = { 0 };
	struct hypr_cachemount_usage cu;
	int all = 0, force = 0, live;
	uint64_t freed = 0;

	clock_gettime(CLOCK_REALTIME, &cmd_start);
	prune_args(argc, argv, &all, &force, "builder prune");
	if (!force && !confirm(all ?
	    "WARNING! This will remove all build cache (cache entries and cache mounts)." :
	    "WARNING! This will remove cache mounts no build uses and broken cache entries."))
		return hypr_close_stdout();
	if (hypr_store_open_bases(&s, opt_root, 1, &e) < 0)
		hypr_die_err(&e);
	live = programs_live(&s);
	named(&s, &before);
	if (hypr_cachemount_scan(&s.root, 1, NULL, NULL, &cu, &e) < 0)
		hypr_die_err(&e);
	freed += cu.freed;
	cs.root = &s.root;
	cs.refs = &keep;
	cs.remove_all = all;
	cs.remove_broken = 1;
	hypr_cache_each(&s.root, cache_entry, &cs);
	/* images and base images keep theirs (a pulled base is no cache) */
	named(&s, &keep);
	prune_blobs(&s, &keep, &before, live, &freed);
	prune_records(&s);
	ref_free(&keep);
	ref_free(&before);
	hypr_store_close(&s);
	print_total(freed);
	return hypr_close_stdout();
}

int
cmd_system_prune(int argc, char *argv[])
{
	struct hypr_err e = { 0 };
	struct hypr_store s;
	struct refs keep = { 0 }, before = { 0 };
	struct base_scan bs = { 0 };
	struct cache_scan cs = { 0 };
	struct hypr_tmp_usage tu;
	char dir[HYPR_PATH_BUF];
	int all = 0, force = 0, volumes = 0;
	uint64_t freed = 0;
	size_t k;
	json_t *v, *tmp_gone = json_array();

	clock_gettime(CLOCK_REALTIME, &cmd_start);
	/* --volumes: the anonymous volumes too (containers.c) */
	for (int i = 1; i < argc; i++)
		if (!strcmp(argv[i], "--volumes")) {
			volumes = 1;
			memmove(argv + i, argv + i + 1, (size_t)(argc - i) * sizeof(*argv));
			argc--;
			i--;
		}
	prune_args(argc, argv, &all, &force, "system prune");
	if (!force && !confirm(all ?
	    "WARNING! This will remove:\n"
	    "  - all stopped containers\n"
	    "  - all images without at least one container associated to them\n"
	    "  - all build cache\n"
	    "  - all base images pulled from registries\n"
	    "  - all blobs nothing else uses\n"
	    "  - all build VM snapshots" :
	    "WARNING! This will remove:\n"
	    "  - all stopped containers\n"
	    "  - all dangling images\n"
	    "  - broken build cache entries\n"
	    "  - blobs no image, base image or cache entry uses"))
		return hypr_close_stdout();
	if (hypr_store_open_bases(&s, opt_root, 1, &e) < 0)
		hypr_die_err(&e);
	named(&s, &before);
	/* Leftovers of processes that are gone (a SIGKILLed build's VM disks);
	 * what a running build holds stays, and so do the blobs it made. */
	if (hypr_root_tmp_scan(&s.root, 1, tmp_removed, tmp_gone, &tu, &e) < 0)
		hypr_die_err(&e);
	live_since = tu.live_since;
	ctr_prune(&s.root, &freed);	/* first: their images may go next */
	if (volumes)
		vol_prune(&s.root, &freed);
	prune_images(&s, all, &freed);
	prune_strays(&s, &freed);
	for (size_t i = 0; i < s.n; i++)
		refs_of_image(&keep, &s.img[i]);
	cs.root = &s.root;
	cs.refs = &keep;
	cs.remove_all = all;
	cs.remove_broken = 1;
	cs.removed = json_array();
	hypr_cache_each(&s.root, cache_entry, &cs);
	if (all) {
		struct hypr_err ig = { 0 };

		hypr_root_path(&s.root, dir, sizeof(dir), "refs");
		hypr_rm_rf(dir, &ig);
	} else {
		bs.refs = &keep;
		scan_bases(&s.root, &bs);
		json_decref(bs.digests);
	}
	if (json_array_size(cs.removed)) {
		printf("Deleted build cache objects:\n");
		json_array_foreach(cs.removed, k, v)
			printf("%.*s\n", (int)(strlen(json_string_value(v)) - 5),
			    json_string_value(v));
		printf("\n");
	}
	json_decref(cs.removed);
	{
		/* cache mounts no build holds are build cache too */
		struct hypr_cachemount_usage cu;

		if (hypr_cachemount_scan(&s.root, 1, NULL, NULL, &cu, &e) < 0)
			hypr_die_err(&e);
		freed += cu.freed;
	}
	if (json_array_size(tmp_gone)) {
		printf("Deleted temporary files:\n");
		json_array_foreach(tmp_gone, k, v) {
			hypr_fput_escaped(stdout, json_string_value(v), strlen(json_string_value(v)));
			putchar('\n');
		}
		printf("\n");
	}
	json_decref(tmp_gone);
	freed += tu.freed;
	if (all) {
		/* the build VM snapshots: the next VM of each shape saves again */
		size_t nsnap;
		uint64_t snap;

		if (hypr_vm_snapshots(s.root.path, 1, &nsnap, &snap, &e) < 0)
			hypr_die_err(&e);
		freed += snap;
	}
	prune_blobs(&s, &keep, &before, tu.live > 0, &freed);
	prune_records(&s);
	ref_free(&keep);
	ref_free(&before);
	hypr_store_close(&s);
	print_total(freed);
	return hypr_close_stdout();
}

/* ---- df ---- */

static uint64_t
blob_size(struct hypr_root *r, const char *d)
{
	char p[HYPR_PATH_BUF];
	struct stat st;

	if (hypr_blob_path(r, d, p, sizeof(p), NULL) < 0 || stat(p, &st) < 0)
		return 0;
	return disk_use(&st);
}

/* A row of df -v's temp files: NAME, in use or left over, size. */
static void
tmp_row(void *arg, const char *name, int live, uint64_t bytes, int removed)
{
	char h[32], row[600], esc[300];

	(void)removed;
	hypr_escape(name, strlen(name), esc, sizeof(esc));
	hypr_image_human_size(bytes, h, sizeof(h));
	snprintf(row, sizeof(row), "%s\t%s\t%s", esc, live ? "in use" : "left over", h);
	json_array_append_new(arg, json_string(row));
}

static void
pct(char *buf, size_t n, uint64_t part, uint64_t whole)
{
	char h[32];

	hypr_image_human_size(part, h, sizeof(h));
	snprintf(buf, n, "%s (%d%%)", h, whole ? (int)(part * 100 / whole) : 0);
}

/* The blobs of one image, each once. */
static void
image_blobs(const struct hypr_image *im, struct refs *out)
{
	struct refs one = { 0 };

	refs_of_image(&one, im);
	ref_has(&one, "");	/* sorts */
	for (size_t i = 0; i < one.n; i++)
		if (!i || strcmp(one.d[i], one.d[i - 1]) != 0)
			ref_add(out, one.d[i]);
	ref_free(&one);
}

/* Every blob on disk goes to one row, so the rows add up to the store:
 * Base Images (a base names it), else Images (a built image does), else
 * Build Cache (a cache entry does, or nothing: an unused blob, which any
 * system or builder prune takes). */
struct df_sums {
	uint64_t isize, irecl, bsize, brecl, csize, unused;
	size_t nunused;
};

static void
df_blobs(struct hypr_store *s, struct refs *base, struct refs *built,
    struct refs *tagged, struct refs *dsq, struct refs *cache, struct df_sums *u)
{
	char dir[HYPR_PATH_BUF], p[HYPR_PATH_BUF + 256], d[HYPR_DIGEST_LEN + 1];
	DIR *dd;
	struct dirent *de;

	hypr_root_path(&s->root, dir, sizeof(dir), "blobs/sha256");
	if ((dd = opendir(dir)) == NULL)
		return;
	while ((de = readdir(dd)) != NULL) {
		struct stat st;
		uint64_t z;

		if (strlen(de->d_name) != 64)
			continue;
		snprintf(d, sizeof(d), "sha256:%s", de->d_name);
		snprintf(p, sizeof(p), "%s/%s", dir, de->d_name);
		if (lstat(p, &st) < 0 || !S_ISREG(st.st_mode))
			continue;
		z = disk_use(&st);
		if (ref_has(base, d)) {
			u->bsize += z;
			if (!ref_has(built, d) && !ref_has(cache, d))
				u->brecl += z;
		} else if (ref_has(built, d)) {
			u->isize += z;
			/* a dangling image's squashfs goes with it, chain cache
			 * entry and all; its layers stay while the cache names them */
			if (!ref_has(tagged, d) && (!ref_has(cache, d) || ref_has(dsq, d)))
				u->irecl += z;
		} else {
			u->csize += z;
			if (!ref_has(cache, d)) {
				u->unused += z;
				u->nunused++;
			}
		}
	}
	closedir(dd);
}

/* An image's SIZE, SHARED SIZE (blobs another image names too) and
 * UNIQUE SIZE, as docker system df -v shows them. */
static void
image_sizes(struct hypr_store *s, const struct hypr_image *im, struct refs *all,
    uint64_t *size, uint64_t *shared)
{
	struct refs mine = { 0 };

	*size = *shared = 0;
	image_blobs(im, &mine);
	for (size_t i = 0; i < mine.n; i++) {
		uint64_t z = blob_size(&s->root, mine.d[i]);

		*size += z;
		if (ref_count(all, mine.d[i]) > 1)
			*shared += z;
	}
	ref_free(&mine);
}

int
cmd_system_df(int argc, char *argv[])
{
	static const struct option lo[] = {
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct hypr_err e = { 0 };
	struct hypr_store s;
	struct refs built = { 0 }, tagged = { 0 }, cache_refs = { 0 }, base_refs = { 0 };
	struct refs all = { 0 }, dsq = { 0 };
	struct base_scan bs = { 0 };
	struct cache_scan cs = { 0 };
	struct hypr_tmp_usage tu;
	struct df_sums u = { 0 };
	struct ctr_usage cu_ctr, cu_vol;
	struct hypr_table ctr_rows = { 0 }, vol_rows = { 0 };
	json_t *tmp_rows = json_array();
	struct hypr_table t = { 0 };
	char line[1024], h1[32], h2[64], h3[32], h4[32];
	size_t nbuilt = 0, active = 0, nbase = 0, bactive = 0;
	int c, verbose = 0;

	optind = 1;
	while ((c = getopt_long(argc, argv, "vh", lo, NULL)) != -1) {
		switch (c) {
		case 'v': verbose = 1; break;
		case 'h': printf("usage: hypr system df [-v]\n"); exit(0);
		default: hypr_die(HYPR_EXIT_USAGE, "usage: hypr system df [-v]");
		}
	}
	if (hypr_store_open_bases(&s, opt_root, 0, &e) < 0)
		hypr_die_err(&e);
	for (size_t i = 0; i < s.n; i++) {
		struct hypr_image *im = &s.img[i];

		image_blobs(im, &all);
		if (im->base) {
			nbase++;
			bactive += child_of(&s, im) != NULL;
			continue;
		}
		nbuilt++;
		refs_of_image(&built, im);
		if (json_array_size(im->tags)) {
			active++;
			refs_of_image(&tagged, im);
		} else {
			ref_add(&dsq, hypr_json_str(json_object_get(im->m, "squashfs"), "digest"));
		}
	}
	if (hypr_root_tmp_scan(&s.root, 0, tmp_row, tmp_rows, &tu, &e) < 0)
		hypr_die_err(&e);
	cs.root = &s.root;
	cs.refs = &cache_refs;
	hypr_cache_each(&s.root, cache_entry, &cs);
	/* a base's blobs: those of its image, and every platform of its index */
	bs.refs = &base_refs;
	scan_bases(&s.root, &bs);
	for (size_t i = 0; i < s.n; i++)
		if (s.img[i].base)
			refs_of_image(&base_refs, &s.img[i]);
	df_blobs(&s, &base_refs, &built, &tagged, &dsq, &cache_refs, &u);
	hypr_table_add(&t, "TYPE\tTOTAL\tACTIVE\tSIZE\tRECLAIMABLE");
	hypr_image_human_size(u.isize, h1, sizeof(h1));
	pct(h2, sizeof(h2), u.irecl, u.isize);
	snprintf(line, sizeof(line), "Images\t%zu\t%zu\t%s\t%s", nbuilt, active, h1, h2);
	hypr_table_add(&t, line);
	/* the containers of hypr run: their directories (containers.c) */
	ctr_usage(&s.root, &cu_ctr, verbose ? &ctr_rows : NULL);
	hypr_image_human_size(cu_ctr.bytes, h1, sizeof(h1));
	pct(h2, sizeof(h2), cu_ctr.reclaim, cu_ctr.bytes);
	snprintf(line, sizeof(line), "Containers\t%zu\t%zu\t%s\t%s", cu_ctr.n, cu_ctr.running,
	    h1, h2);
	hypr_table_add(&t, line);
	vol_usage(&s.root, &cu_vol, verbose ? &vol_rows : NULL);
	hypr_image_human_size(cu_vol.bytes, h1, sizeof(h1));
	pct(h2, sizeof(h2), cu_vol.reclaim, cu_vol.bytes);
	snprintf(line, sizeof(line), "Local Volumes\t%zu\t%zu\t%s\t%s", cu_vol.n, cu_vol.running,
	    h1, h2);
	hypr_table_add(&t, line);
	hypr_image_human_size(u.bsize, h1, sizeof(h1));
	pct(h2, sizeof(h2), u.brecl, u.bsize);
	snprintf(line, sizeof(line), "Base Images\t%zu\t%zu\t%s\t%s", nbase, bactive, h1, h2);
	hypr_table_add(&t, line);
	{
		struct hypr_cachemount_usage cu;

		if (hypr_cachemount_scan(&s.root, 0, NULL, NULL, &cu, &e) < 0)
			hypr_die_err(&e);
		/* RUN --mount=type=cache images: what no build holds is reclaimable */
		hypr_image_human_size(u.csize + cu.bytes, h1, sizeof(h1));
		pct(h2, sizeof(h2), u.csize + cu.bytes, u.csize + cu.bytes);
		snprintf(line, sizeof(line), "Build Cache\t%zu\t%zu\t%s\t%s", cs.entries + cu.n,
		    cu.live, h1, h2);
		hypr_table_add(&t, line);
	}
	{
		/* booted build VMs kept to restore the next ones (hypr-guest(7)) */
		size_t nsnap;
		uint64_t snap;

		if (hypr_vm_snapshots(s.root.path, 0, &nsnap, &snap, &e) < 0)
			hypr_die_err(&e);
		hypr_image_human_size(snap, h1, sizeof(h1));
		pct(h2, sizeof(h2), snap, snap);
		snprintf(line, sizeof(line), "VM Snapshots\t%zu\t0\t%s\t%s", nsnap, h1, h2);
		hypr_table_add(&t, line);
	}
	/* what running builds hold, and what dead ones left (prune takes it) */
	hypr_image_human_size(tu.bytes, h1, sizeof(h1));
	pct(h2, sizeof(h2), tu.bytes - tu.live_bytes, tu.bytes);
	snprintf(line, sizeof(line), "Temporary Files\t%zu\t%zu\t%s\t%s", tu.n, tu.live, h1, h2);
	hypr_table_add(&t, line);
	hypr_table_print(&t, stdout);
	if (verbose) {
		printf("\nImages space usage:\n\n");
		hypr_table_add(&t, "REPOSITORY\tTAG\tIMAGE ID\tCREATED\tSIZE\tSHARED SIZE\t"
		    "UNIQUE SIZE");
		for (int pass = 0; pass < 2; pass++) {
			if (pass == 1) {
				hypr_table_print(&t, stdout);
				printf("\nBase images space usage:\n\n");
				hypr_table_add(&t, "REPOSITORY\tTAG\tIMAGE ID\tCREATED\tSIZE\t"
				    "SHARED SIZE\tUNIQUE SIZE");
			}
			for (size_t i = 0; i < s.n; i++) {
				struct hypr_image *im = &s.img[i];
				size_t nt = json_array_size(im->tags);
				uint64_t size, shared;

				if (im->base != pass)
					continue;
				image_sizes(&s, im, &all, &size, &shared);
				hypr_image_human_size(size, h1, sizeof(h1));
				hypr_image_human_size(shared, h3, sizeof(h3));
				hypr_image_human_size(size - shared, h4, sizeof(h4));
				hypr_image_human_age((int64_t)time(NULL) - im->created, h2, sizeof(h2));
				for (size_t k = 0; k < (nt ? nt : 1); k++) {
					const char *tg = nt ? json_string_value(json_array_get(im->tags,
					    k)) : NULL;
					const char *colon = tg ? strrchr(tg, ':') : NULL;

					snprintf(line, sizeof(line), "%.*s\t%s\t%.12s\t%s\t%s\t%s\t%s",
					    tg ? (int)(colon - tg) : 6, tg ? tg : "<none>",
					    tg ? colon + 1 : "<none>", im->hex,
					    im->problem ? im->problem : h2, h1, h3, h4);
					hypr_table_add(&t, line);
				}
			}
		}
		hypr_table_print(&t, stdout);
		printf("\nContainers space usage:\n\n");
		hypr_table_add(&t, "CONTAINER ID\tIMAGE\tSIZE\tSTATUS\tNAMES");
		for (size_t i = 0; i < ctr_rows.n; i++)
			hypr_table_add(&t, ctr_rows.lines[i]);
		hypr_table_print(&t, stdout);
		printf("\nLocal Volumes space usage:\n\n");
		hypr_table_add(&t, "VOLUME NAME\tLINKS\tSIZE");
		for (size_t i = 0; i < vol_rows.n; i++)
			hypr_table_add(&t, vol_rows.lines[i]);
		hypr_table_print(&t, stdout);
		hypr_image_human_size(u.csize - u.unused, h1, sizeof(h1));
		hypr_image_human_size(u.unused, h2, sizeof(h2));
		printf("\nBuild cache usage: %s in %zu entries, %s in %zu unused blobs\n", h1,
		    cs.entries, h2, u.nunused);
		printf("\nTemporary files space usage:\n\n");
		hypr_table_add(&t, "NAME\tSTATE\tSIZE");
		for (size_t i = 0; i < json_array_size(tmp_rows); i++)
			hypr_table_add(&t, json_string_value(json_array_get(tmp_rows, i)));
		hypr_table_print(&t, stdout);
	}
	for (size_t i = 0; i < ctr_rows.n; i++)
		free(ctr_rows.lines[i]);
	free(ctr_rows.lines);
	for (size_t i = 0; i < vol_rows.n; i++)
		free(vol_rows.lines[i]);
	free(vol_rows.lines);
	json_decref(tmp_rows);
	json_decref(bs.digests);
	ref_free(&built);
	ref_free(&tagged);
	ref_free(&all);
	ref_free(&dsq);
	ref_free(&cache_refs);
	ref_free(&base_refs);
	hypr_store_close(&s);
	return hypr_close_stdout();
}
