#include "cas.h"
#include "store.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fsutil.h"
#include "image.h"
#include "imagestream.h"
#include "map.h"
#include "oci.h"
#include "ref.h"
#include "stream.h"

#define MAX_MANIFEST (16u << 20)

static int
is_hex64(const char *s, size_t n)
{
	if (n != 64)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	return 1;
}

static int
img_cmp(const void *a, const void *b)
{
	const struct hypr_image *x = a, *y = b;

	/* newest first, as docker lists them; ID breaks ties */
	if (x->created != y->created)
		return x->created < y->created ? 1 : -1;
	return strcmp(x->id, y->id);
}

static void
free_images(struct hypr_store *s)
{
	for (size_t i = 0; i < s->n; i++) {
		json_decref(s->img[i].m);
		json_decref(s->img[i].tags);
		json_decref(s->img[i].refs);
	}
	free(s->img);
	s->img = NULL;
	s->n = 0;
}

static int
load_index(struct hypr_store *s, struct hypr_err *e)
{
	char path[HYPR_PATH_BUF], *buf = NULL;
	size_t len;
	json_error_t je;

	json_decref(s->index);
	s->index = NULL;
	hypr_root_path(&s->root, path, sizeof(path), "images/index.json");
	if (access(path, F_OK) != 0) {
		s->index = json_pack("{s:s, s:i, s:{}}", "hypr", "index", "version", 1, "tags");
		return 0;
	}
	if (hypr_read_file(path, MAX_MANIFEST, &buf, &len, e) < 0)
		return -1;
	s->index = json_loadb(buf, len, 0, &je);
	free(buf);
	if (!json_is_object(json_object_get(s->index, "tags"))) {
		json_decref(s->index);
		s->index = NULL;
		return hypr_err_set(e, HYPR_EXIT_INPUT,
		    "%s is corrupt (move it away to start with no tags)", path);
	}
	return 0;
}

/* im's creation time from its manifest, its size and disk from its
 * squashfs (or the problem) */
static void
image_fill(struct hypr_image *im, const char *sqfs)
{
	struct stat st;

	im->created = hypr_image_parse_time(hypr_json_str(im->m, "created"));
	if (stat(sqfs, &st) != 0) {
		im->problem = "squashfs missing";
	} else {
		im->size = (uint64_t)st.st_size;
		im->disk = (uint64_t)st.st_blocks * 512;
	}
}

/* Read the manifest images/HEX.json (hex: 64 hex digits) into a new
 * entry of s->img; a corrupt one is listed with its problem. */
static int
load_image(struct hypr_store *s, const char *dir, const char *hex, struct hypr_err *e)
{
	char path[HYPR_PATH_BUF + 128], *buf = NULL;
	struct hypr_image *im, *ni;
	struct hypr_err ig = { 0 };
	size_t len;

	if ((ni = realloc(s->img, (s->n + 1) * sizeof(*ni))) == NULL)
		return hypr_err_errno(e, HYPR_EXIT_SYSTEM, "loading images");
	s->img = ni;
	im = &s->img[s->n++];
	memset(im, 0, sizeof(*im));
	snprintf(im->id, sizeof(im->id), "sha256:%.64s", hex);
	im->tags = json_array();
	snprintf(path, sizeof(path), "%s/%.64s.json", dir, hex);
	if (hypr_read_file(path, MAX_MANIFEST, &buf, &len, &ig) == 0) {
		im->m = json_loadb(buf, len, 0, NULL);
		free(buf);
	}
	if (!json_is_object(im->m) || !hypr_json_str(im->m, "id") ||
	    strcmp(hypr_json_str(im->m, "id"), im->id) != 0) {
		json_decref(im->m);
		im->m = NULL;
		im->problem = "corrupt manifest";
		return 0;
	}
	snprintf(path, sizeof(path), "%s/%.64s.squashfs", dir, hex);
	image_fill(im, path);
	return 0;
}

/* images/ID.json into s if it is there and not loaded yet (seen) */
static int
load_named(struct hypr_store *s, const char *dir, const char *id, struct hypr_map *seen,
    struct hypr_err *e)
{
	char path[HYPR_PATH_BUF + 128];

	if (!id || strncmp(id, "sha256:", 7) != 0 || !is_hex64(id + 7, 64) ||
	    hypr_map_get(seen, id))
		return 0;
	if (hypr_map_set(seen, id, (void *)1, NULL) < 0)
		return hypr_err_errno(e, HYPR_EXIT_SYSTEM, "loading images");
	snprintf(path, sizeof(path), "%s/%.64s.json", dir, id + 7);
	return access(path, F_OK) == 0 ? load_image(s, dir, id + 7, e) : 0;
}

/* Every manifest in images/, or with s->only that image and the tagged
 * ones (if they are there): what a put changes. */
static int
load_images(struct hypr_store *s, struct hypr_err *e)
{
	char dir[HYPR_PATH_BUF];
	DIR *d;
	struct dirent *de;

	free_images(s);
	hypr_root_path(&s->root, dir, sizeof(dir), "images");
	if (s->only) {
		struct hypr_map seen = { 0 };
		const char *k;
		json_t *v;
		int rc = load_named(s, dir, s->only, &seen, e);

		json_object_foreach(json_object_get(s->index, "tags"), k, v)
			if (rc == 0)
				rc = load_named(s, dir, json_string_value(v), &seen, e);
		hypr_map_free(&seen, NULL);
		return rc;
	}
	if ((d = opendir(dir)) == NULL)
		return hypr_err_errno(e, HYPR_EXIT_SYSTEM, "%s", dir);
	while ((de = readdir(d)) != NULL) {
		if (strlen(de->d_name) != 69 || strcmp(de->d_name + 64, ".json") != 0 ||
		    !is_hex64(de->d_name, 64))
			continue;
		if (load_image(s, dir, de->d_name, e) < 0) {
			closedir(d);
			return -1;
		}
	}
	closedir(d);
	return 0;
}

/* ---- base images: the tags hypr-fetch keeps under refs/ ---- */

#define BASE_DOC_MAX (4u << 20)

static json_t *
read_blob_json(const struct hypr_root *r, const char *digest, size_t max)
{
	char *buf = NULL;
	size_t len;
	struct hypr_err ig = { 0 };
	json_t *j;

	if (!hypr_digest_valid(digest) || hypr_blob_read(r, digest, max, &buf, &len, &ig) < 0)
		return NULL;
	j = json_loadb(buf, len, 0, NULL);
	free(buf);
	if (!json_is_object(j)) {
		json_decref(j);
		return NULL;
	}
	return j;
}

static uint64_t
blob_disk(const struct hypr_root *r, const char *digest)
{
	char p[HYPR_PATH_BUF];
	struct stat st;

	if (hypr_blob_path(r, digest, p, sizeof(p), NULL) < 0 || stat(p, &st) < 0)
		return 0;
	return (uint64_t)st.st_blocks * 512;
}

static json_t *keys_of(json_t *o);
static json_t *get_or(json_t *o, const char *k, json_t *dflt);
static void config_fields(json_t *m, json_t *c);

/* The manifest a tag's digest names: itself, or from an index the host
 * platform's entry, else the first entry that is stored (a pull for
 * another --platform). *mdig gets its digest. */
static json_t *
base_manifest(const struct hypr_root *r, const char *top, json_t **index,
    char mdig[HYPR_DIGEST_LEN + 1])
{
	json_t *doc = read_blob_json(r, top, BASE_DOC_MAX), *desc = NULL, *d;
	struct hypr_platform host;
	struct hypr_err ig = { 0 };
	char mt[128];
	size_t i;

	*index = NULL;
	if (doc == NULL || hypr_oci_kind(doc, NULL, mt, sizeof(mt), &ig) < 0) {
		json_decref(doc);
		return NULL;
	}
	if (!hypr_oci_is_index(mt)) {
		snprintf(mdig, HYPR_DIGEST_LEN + 1, "%s", top);
		return doc;
	}
	hypr_platform_host(&host);
	if (hypr_oci_select(doc, &host, &desc, &ig) < 0 ||
	    !hypr_blob_has(r, hypr_json_str(desc, "digest"))) {
		desc = NULL;
		json_array_foreach(json_object_get(doc, "manifests"), i, d)
			if (hypr_blob_has(r, hypr_json_str(d, "digest")) &&
			    !hypr_platform_match(&(struct hypr_platform){ .os = "unknown",
			    .arch = "unknown" }, hypr_json_str(json_object_get(d, "platform"), "os"),
			    hypr_json_str(json_object_get(d, "platform"), "architecture"), NULL)) {
				desc = d;
				break;
			}
	}
	if (desc == NULL) {
		json_decref(doc);
		return NULL;
	}
	snprintf(mdig, HYPR_DIGEST_LEN + 1, "%s", hypr_json_str(desc, "digest"));
	*index = doc;
	return read_blob_json(r, mdig, BASE_DOC_MAX);
}

/* A manifest-shaped object (hypr-manifest(5)) for a base image. */
static json_t *
base_object(const struct hypr_root *r, const char *top, json_t *index, const char *mdig,
    json_t *man, json_t *cfg, uint64_t *size, uint64_t *disk)
{
	json_t *c = json_object_get(cfg, "config"), *m = json_object(), *layers = json_array();
	json_t *diffs = json_object_get(json_object_get(cfg, "rootfs"), "diff_ids"), *l;
	const char *cd = hypr_json_str(json_object_get(man, "config"), "digest");
	char chain[HYPR_DIGEST_LEN + 1] = "", buf[2 * HYPR_DIGEST_LEN + 2];
	size_t i;

	*size = 0;
	*disk = blob_disk(r, mdig) + blob_disk(r, cd) + (index ? blob_disk(r, top) : 0);
	json_array_foreach(json_object_get(man, "layers"), i, l) {
		const char *di = json_string_value(json_array_get(diffs, i));
		json_int_t z = json_integer_value(json_object_get(l, "size"));

		json_array_append_new(layers, json_pack("{s:O, s:s?, s:I, s:O}", "digest",
		    json_object_get(l, "digest"), "diff_id", di, "size", z, "media_type",
		    json_object_get(l, "mediaType") ? json_object_get(l, "mediaType") :
		    json_null()));
		*size += z > 0 ? (uint64_t)z : 0;
		*disk += blob_disk(r, hypr_json_str(l, "digest"));
		if (di && !chain[0]) {
			snprintf(chain, sizeof(chain), "%s", di);
		} else if (di) {
			snprintf(buf, sizeof(buf), "%s %s", chain, di);
			hypr_digest_buf(buf, strlen(buf), chain, NULL);
		}
	}
	json_object_set_new(m, "hypr", json_string("base"));
	json_object_set_new(m, "version", json_integer(1));
	json_object_set_new(m, "id", json_string(cd));
	json_object_set_new(m, "tags", json_array());
	json_object_set_new(m, "created", json_string(hypr_json_str(cfg, "created") ?
	    hypr_json_str(cfg, "created") : "1970-01-01T00:00:00Z"));
	json_object_set_new(m, "architecture", get_or(cfg, "architecture", json_string("")));
	json_object_set_new(m, "os", get_or(cfg, "os", json_string("")));
	json_object_set_new(m, "squashfs", json_null());
	json_object_set_new(m, "base", json_null());
	json_object_set_new(m, "stage", json_null());
	config_fields(m, c);
	json_object_set_new(m, "history", get_or(cfg, "history", json_array()));
	json_object_set_new(m, "build_args", json_object());
	json_object_set_new(m, "layers", layers);
	json_object_set_new(m, "chain", chain[0] ? json_string(chain) : json_null());
	json_object_set_new(m, "config", json_is_object(c) ? json_deep_copy(c) : json_object());
	json_object_set_new(m, "manifest", json_string(mdig));
	json_object_set_new(m, "index", index ? json_string(top) : json_null());
	return m;
}

static struct hypr_image *
new_image(struct hypr_store *s, size_t *cap)
{
	struct hypr_image *im;

	if (s->n == *cap) {
		size_t nc = *cap ? *cap * 2 : 32;
		struct hypr_image *ni = realloc(s->img, nc * sizeof(*ni));

		if (ni == NULL)
			return NULL;
		s->img = ni;
		*cap = nc;
	}
	im = &s->img[s->n++];
	memset(im, 0, sizeof(*im));
	im->tags = json_array();
	im->refs = json_object();
	im->base = 1;
	return im;
}

/* One tag record: refs/<domain>/<path>/_tags/<tag>. */
static int
load_base(struct hypr_store *s, const char *path, size_t *cap)
{
	char *buf = NULL, canon[700], mdig[HYPR_DIGEST_LEN + 1];
	size_t len;
	struct hypr_err ig = { 0 };
	json_t *rec, *man = NULL, *cfg = NULL, *index = NULL;
	const char *name, *tag, *top, *cd = NULL, *problem = NULL;
	struct hypr_image *im = NULL;

	if (hypr_read_file(path, 1 << 16, &buf, &len, &ig) < 0)
		return 0;
	rec = json_loadb(buf, len, 0, NULL);
	free(buf);
	name = hypr_json_str(rec, "name");
	tag = hypr_json_str(rec, "tag");
	top = hypr_json_str(rec, "digest");
	if (!name || !tag || !hypr_digest_valid(top)) {
		json_decref(rec);
		return 0;
	}
	snprintf(canon, sizeof(canon), "%s:%s", name, tag);
	if ((man = base_manifest(&s->root, top, &index, mdig)) == NULL)
		problem = "base image manifest missing or unreadable";
	else if (!hypr_digest_valid(cd = hypr_json_str(json_object_get(man, "config"),
	    "digest")) || (cfg = read_blob_json(&s->root, cd, HYPR_OCI_CONFIG_MAX)) == NULL)
		problem = "base image config missing or unreadable";
	/* one image per config, as docker's IDs */
	for (size_t i = 0; i < s->n && !problem; i++)
		if (s->img[i].base && strcmp(s->img[i].id, cd) == 0)
			im = &s->img[i];
	if (im == NULL) {
		if ((im = new_image(s, cap)) == NULL) {
			json_decref(rec);
			json_decref(man);
			json_decref(cfg);
			json_decref(index);
			return -1;
		}
		snprintf(im->id, sizeof(im->id), "%s", problem ? top : cd);
		im->problem = problem;
		if (!problem) {
			im->m = base_object(&s->root, top, index, mdig, man, cfg, &im->size,
			    &im->disk);
			im->created = hypr_image_parse_time(hypr_json_str(im->m, "created"));
		}
	}
	json_object_set_new(im->refs, canon, json_string(top));
	json_decref(rec);
	json_decref(man);
	json_decref(cfg);
	json_decref(index);
	return 0;
}

static int
walk_refs(struct hypr_store *s, const char *dir, int depth, size_t *cap)
{
	DIR *d;
	struct dirent *de;
	char p[HYPR_PATH_BUF + 512];
	int rc = 0;

	if (depth > 16 || (d = opendir(dir)) == NULL)
		return 0;
	while (rc == 0 && (de = readdir(d)) != NULL) {
		struct stat st;

		if (de->d_name[0] == '.')
			continue;
		if ((size_t)snprintf(p, sizeof(p), "%s/%s", dir, de->d_name) >= sizeof(p) ||
		    lstat(p, &st) < 0)
			continue;
		if (S_ISDIR(st.st_mode))
			rc = walk_refs(s, p, depth + 1, cap);
		else if (S_ISREG(st.st_mode) && strstr(p, "/_tags/"))
			rc = load_base(s, p, cap);
	}
	closedir(d);
	return rc;
}

static int
load_bases(struct hypr_store *s, struct hypr_err *e)
{
	char dir[HYPR_PATH_BUF];
	size_t cap = s->n;

	hypr_root_path(&s->root, dir, sizeof(dir), "refs");
	if (walk_refs(s, dir, 0, &cap) < 0)
		return hypr_err_errno(e, HYPR_EXIT_SYSTEM, "loading base images");
	/* A tag that is also a built image's (an image hypr pushed, pulled
	 * back with its squashfs) shows the built one, as it is looked up
	 * first; a base left with no tag of its own is not listed. */
	for (size_t i = 0; i < s->n;) {
		struct hypr_image *im = &s->img[i];
		void *tmp;
		const char *k;
		json_t *v;

		if (!im->base) {
			i++;
			continue;
		}
		json_object_foreach_safe(im->refs, tmp, k, v)
			if (json_object_get(json_object_get(s->index, "tags"), k))
				json_object_del(im->refs, k);
		if (json_object_size(im->refs) > 0) {
			i++;
			continue;
		}
		json_decref(im->m);
		json_decref(im->tags);
		json_decref(im->refs);
		memmove(im, im + 1, (s->n - i - 1) * sizeof(*im));
		s->n--;
	}
	return 0;
}

static void
sort_images(struct hypr_store *s)
{
	/* hex points into id: set after the array stops moving */
	if (s->n)
		qsort(s->img, s->n, sizeof(*s->img), img_cmp);
	for (size_t i = 0; i < s->n; i++)
		s->img[i].hex = hypr_digest_hex(s->img[i].id);
}

static void
fill_tags(struct hypr_store *s)
{
	const char *k;
	json_t *v;

	for (size_t i = 0; i < s->n; i++) {
		json_array_clear(s->img[i].tags);
		/* a base's tags are its refs/ records, sorted */
		json_object_foreach(s->img[i].refs, k, v) {
			char fam[600];
			size_t at = 0;

			hypr_store_familiar(k, fam, sizeof(fam));
			while (at < json_array_size(s->img[i].tags) && strcmp(json_string_value(
			    json_array_get(s->img[i].tags, at)), fam) < 0)
				at++;
			json_array_insert_new(s->img[i].tags, at, json_string(fam));
		}
	}
	json_object_foreach(json_object_get(s->index, "tags"), k, v) {
		struct hypr_image *im = hypr_store_get(s, json_string_value(v));
		char fam[600];

		if (im == NULL || im->base)
			continue;
		hypr_store_familiar(k, fam, sizeof(fam));
		json_array_append_new(im->tags, json_string(fam));
	}
}

int
hypr_store_reload(struct hypr_store *s, struct hypr_err *e)
{
	if (load_index(s, e) < 0 || load_images(s, e) < 0 ||
	    (s->bases && load_bases(s, e) < 0)) {
		sort_images(s);
		return -1;
	}
	sort_images(s);
	fill_tags(s);
	return 0;
}

static int
store_open(struct hypr_store *s, const char *root, int lock, int bases, const char *only,
    struct hypr_err *e)
{
	char path[HYPR_PATH_BUF];

	memset(s, 0, sizeof(*s));
	s->lock_fd = -1;
	s->bases = bases;
	s->only = only;
	if (hypr_root_open(&s->root, root, e) < 0)
		return -1;
	if (lock) {
		hypr_root_path(&s->root, path, sizeof(path), "images/index.lock");
		if ((s->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644)) < 0)
			return hypr_err_errno(e, HYPR_EXIT_SYSTEM, "%s", path);
		while (flock(s->lock_fd, LOCK_EX) < 0)
			if (errno != EINTR)
				return hypr_err_errno(e, HYPR_EXIT_SYSTEM, "locking %s", path);
	}
	return hypr_store_reload(s, e);
}

int
hypr_store_open(struct hypr_store *s, const char *root, int lock, struct hypr_err *e)
{
	return store_open(s, root, lock, 0, NULL, e);
}

int
hypr_store_open_bases(struct hypr_store *s, const char *root, int lock,
    struct hypr_err *e)
{
	return store_open(s, root, lock, 1, NULL, e);
}

int
hypr_store_open_put(struct hypr_store *s, const char *root, const char *id,
    struct hypr_err *e)
{
	return store_open(s, root, 1, 0, id, e);
}

void
hypr_store_close(struct hypr_store *s)
{
	free_images(s);
	json_decref(s->index);
	s->index = NULL;
	if (s->lock_fd >= 0)
		close(s->lock_fd);	/* drops the flock */
	s->lock_fd = -1;
}

int
hypr_store_save_index(struct hypr_store *s, struct hypr_err *e)
{
	char path[HYPR_PATH_BUF], *text;
	int rc;

	hypr_root_path(&s->root, path, sizeof(path), "images/index.json");
	if ((text = json_dumps(s->index, JSON_INDENT(1) | JSON_SORT_KEYS)) == NULL)
		return hypr_err_set(e, HYPR_EXIT_SYSTEM, "out of memory");
	rc = hypr_write_atomic(path, text, strlen(text), 0644, e);
	free(text);
	fill_tags(s);
	return rc;
}

int
hypr_store_canon_tag(const char *name, char *buf, size_t n, struct hypr_err *e)
{
	struct hypr_ref r;

	if (hypr_ref_parse(name, &r, e) < 0)
		return hypr_err_prefix(e, "invalid tag '%s'", name);
	if (r.digest[0])
		return hypr_err_set(e, HYPR_EXIT_USAGE,
		    "invalid tag '%s': a tag cannot contain a digest", name);
	if (!r.tag[0])
		snprintf(r.tag, sizeof(r.tag), "latest");
	if (hypr_ref_string(&r, buf, n) < 0)
		return hypr_err_set(e, HYPR_EXIT_USAGE, "invalid tag '%s': too long", name);
	return 0;
}

void
hypr_store_familiar(const char *canon, char *buf, size_t n)
{
	const char *p = canon;

	if (strncmp(p, "docker.io/library/", 18) == 0 && !strchr(p + 18, '/'))
		p += 18;
	else if (strncmp(p, "docker.io/", 10) == 0)
		p += 10;
	snprintf(buf, n, "%s", p);
}

struct hypr_image *
hypr_store_get(struct hypr_store *s, const char *id)
{
	for (size_t i = 0; id && i < s->n; i++)
		if (strcmp(s->img[i].id, id) == 0)
			return &s->img[i];
	return NULL;
}

int
hypr_store_find(struct hypr_store *s, const char *what, struct hypr_image **img,
    char *tag, size_t tagn, struct hypr_err *e)
{
	const char *hex = what;
	char canon[600];
	struct hypr_err ig = { 0 };
	struct hypr_image *hit = NULL;
	size_t hl, nhit = 0;
	int ishex = 1;

	*img = NULL;
	if (tag && tagn)
		tag[0] = '\0';
	if (strncmp(hex, "sha256:", 7) == 0)
		hex += 7;
	hl = strlen(hex);
	for (size_t i = 0; i < hl; i++)
		if (!((hex[i] >= '0' && hex[i] <= '9') || (hex[i] >= 'a' && hex[i] <= 'f')))
			ishex = 0;
	if (ishex && hl == 64) {
		char id[HYPR_DIGEST_LEN + 1];

		snprintf(id, sizeof(id), "sha256:%s", hex);
		if ((*img = hypr_store_get(s, id)) != NULL)
			return 0;
		return hypr_err_set(e, HYPR_EXIT_INPUT, "No such image: %s", what);
	}
	if (hex == what && hypr_store_canon_tag(what, canon, sizeof(canon), &ig) == 0) {
		const char *id = hypr_json_str(json_object_get(s->index, "tags"), canon);

		if (id) {
			if (tag)
				snprintf(tag, tagn, "%s", canon);
			*img = hypr_store_get(s, id);
			return 0;	/* *img NULL: a tag whose image is gone */
		}
		for (size_t i = 0; i < s->n; i++)
			if (s->img[i].base && json_object_get(s->img[i].refs, canon)) {
				if (tag)
					snprintf(tag, tagn, "%s", canon);
				*img = &s->img[i];
				return 0;
			}
	}
	if (ishex && hl > 0) {
		for (size_t i = 0; i < s->n; i++)
			if (strncmp(s->img[i].hex, hex, hl) == 0) {
				hit = &s->img[i];
				nhit++;
			}
		if (nhit > 1)
			return hypr_err_set(e, HYPR_EXIT_INPUT,
			    "ambiguous image ID prefix '%s' (%zu images match)", what, nhit);
		if (nhit == 1) {
			*img = hit;
			return 0;
		}
	}
	return hypr_err_set(e, HYPR_EXIT_INPUT, "No such image: %s", what);
}

static int
str_cmp(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Sorted keys of an object ({"80/tcp":{}} -> ["80/tcp"]). */
static json_t *
keys_of(json_t *o)
{
	json_t *a = json_array(), *v;
	const char *k, **ks = calloc(json_object_size(o) + 1, sizeof(char *));
	size_t n = 0;

	if (ks == NULL)
		return a;
	json_object_foreach(o, k, v)
		ks[n++] = k;
	qsort(ks, n, sizeof(*ks), str_cmp);
	for (size_t i = 0; i < n; i++)
		json_array_append_new(a, json_string(ks[i]));
	free(ks);
	return a;
}

/* The manifest's fields from an OCI config's "config" c, in the
 * manifest's order (hypr-manifest(5)). */
static void
config_fields(json_t *m, json_t *c)
{
	json_object_set_new(m, "entrypoint", get_or(c, "Entrypoint", json_null()));
	json_object_set_new(m, "cmd", get_or(c, "Cmd", json_null()));
	json_object_set_new(m, "env", get_or(c, "Env", json_array()));
	json_object_set_new(m, "working_dir", get_or(c, "WorkingDir", json_string("")));
	json_object_set_new(m, "user", get_or(c, "User", json_string("")));
	json_object_set_new(m, "exposed_ports", keys_of(json_object_get(c, "ExposedPorts")));
	json_object_set_new(m, "volumes", keys_of(json_object_get(c, "Volumes")));
	json_object_set_new(m, "labels", get_or(c, "Labels", json_object()));
	json_object_set_new(m, "healthcheck", get_or(c, "Healthcheck", json_null()));
	json_object_set_new(m, "shell", get_or(c, "Shell", json_null()));
	json_object_set_new(m, "stop_signal", get_or(c, "StopSignal", json_null()));
	json_object_set_new(m, "onbuild", get_or(c, "OnBuild", json_array()));
}

static json_t *
get_or(json_t *o, const char *k, json_t *dflt)
{
	json_t *v = json_object_get(o, k);

	if (v && !json_is_null(v)) {
		json_decref(dflt);
		return json_incref(v);
	}
	return dflt;
}

int
hypr_store_id(json_t *m, char id[HYPR_DIGEST_LEN + 1], struct hypr_err *e)
{
	json_t *idv, *h;
	char *text;
	size_t i;

	/* the ID: what the image is, not when it was made or what it is called */
	if (!json_is_object(m))
		return hypr_err_set(e, HYPR_EXIT_INPUT, "image manifest is not an object");
	idv = json_deep_copy(m);
	json_object_del(idv, "id");
	json_object_del(idv, "tags");
	json_object_del(idv, "created");
	json_object_del(json_object_get(idv, "squashfs"), "file");
	json_array_foreach(json_object_get(idv, "history"), i, h)
		if (json_is_object(h))
			json_object_del(h, "created");
	text = json_dumps(idv, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(idv);
	if (text == NULL || hypr_digest_buf(text, strlen(text), id, e) < 0) {
		free(text);
		if (e && !e->code)
			hypr_err_set(e, HYPR_EXIT_SYSTEM, "out of memory");
		return -1;
	}
	free(text);
	return 0;
}

json_t *
hypr_store_manifest(const struct hypr_image_rec *rec, struct hypr_err *e)
{
	json_t *cfg = rec->config;
	json_t *m;
	const struct hypr_image_squashfs *sq = &rec->squashfs;
	char id[HYPR_DIGEST_LEN + 1], file[80];

	if (!rec->has_squashfs) {
		hypr_err_set(e, HYPR_EXIT_INPUT,
		    "image record has no squashfs (run hypr-squash before hypr-store)");
		return NULL;
	}
	m = json_object();
	json_object_set_new(m, "hypr", json_string("manifest"));
	json_object_set_new(m, "version", json_integer(1));
	json_object_set_new(m, "id", json_null());
	json_object_set_new(m, "tags", json_array());
	json_object_set_new(m, "created", json_string(rec->created ? rec->created :
	    "1970-01-01T00:00:00Z"));
	json_object_set_new(m, "architecture", json_string(rec->architecture ?
	    rec->architecture : "amd64"));
	json_object_set_new(m, "os", json_string(rec->os ? rec->os : "linux"));
	json_object_set_new(m, "squashfs", json_pack("{s:n, s:s, s:I, s:s}", "file",
	    "digest", sq->digest, "size", (json_int_t)sq->size, "compression",
	    sq->compression ? sq->compression : "zstd"));
	json_object_set_new(m, "base", hypr_image_base_json(rec));
	json_object_set_new(m, "stage", rec->stage ? json_string(rec->stage) : json_null());
	config_fields(m, cfg);
	json_object_set_new(m, "history", rec->history ?
	    hypr_image_history_json(rec->history, rec->nhistory) : json_array());
	json_object_set_new(m, "build_args", rec->build_args ? json_incref(rec->build_args) :
	    json_object());
	json_object_set_new(m, "layers", hypr_layers_json(rec->layers, rec->nlayers,
	    HYPR_MEDIA_LAYER_TAR));
	json_object_set_new(m, "chain", rec->chain ? json_string(rec->chain) : json_null());
	json_object_set_new(m, "config", cfg ? json_incref(cfg) : json_object());

	if (hypr_store_id(m, id, e) < 0) {
		json_decref(m);
		return NULL;
	}
	json_object_set_new(m, "id", json_string(id));
	snprintf(file, sizeof(file), "%s.squashfs", hypr_digest_hex(id));
	json_object_set_new(json_object_get(m, "squashfs"), "file", json_string(file));
	return m;
}

static int
cmp_key(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* A config object (ExposedPorts, Volumes, Labels): null when empty, as
 * docker shows it; its keys sorted, as Go's encoding/json writes a map. */
static json_t *
obj_or_null(json_t *o)
{
	const char **k, *key;
	size_t n = 0, i;
	json_t *r, *v;

	if (!json_is_object(o) || !json_object_size(o))
		return json_null();
	if (!(k = calloc(json_object_size(o), sizeof *k)))
		return json_deep_copy(o);
	json_object_foreach(o, key, v)
		k[n++] = key;
	qsort(k, n, sizeof *k, cmp_key);
	if ((r = json_object()))
		for (i = 0; i < n; i++)
			json_object_set_new(r, k[i], json_deep_copy(json_object_get(o, k[i])));
	free(k);
	return r;
}

/* Set k in o to the manifest's v, or null (every key of docker's Config is there). */
static void
set_copy(json_t *o, const char *k, json_t *v)
{
	json_object_set_new(o, k, v && !json_is_null(v) ? json_deep_copy(v) : json_null());
}

json_t *
hypr_store_inspect(struct hypr_store *s, const struct hypr_image *img, json_t **maps,
    size_t *nmaps)
{
	static const char *const moved[] = { "hypr", "id", "tags", "created", "architecture",
		"os", "entrypoint", "cmd", "env", "working_dir", "user", "exposed_ports",
		"volumes", "labels", "healthcheck", "shell", "stop_signal", "onbuild",
		"config", NULL };
	json_t *m = img->m, *ocfg = json_object_get(m, "config"), *o, *cfg, *h, *layers, *l;
	json_t *onb = json_object_get(m, "onbuild");
	char path[HYPR_PATH_BUF];
	size_t i;

	*nmaps = 0;
	if ((o = json_object()) == NULL)
		return NULL;
	/* the OCI config as is (keys docker knows and hypr does not keep, such
	 * as ArgsEscaped, stay), then the manifest's fields under docker's names */
	cfg = json_is_object(ocfg) ? json_deep_copy(ocfg) : json_object();
	set_copy(cfg, "User", json_object_get(m, "user"));
	json_object_set_new(cfg, "ExposedPorts", obj_or_null(json_object_get(ocfg,
	    "ExposedPorts")));
	set_copy(cfg, "Env", json_object_get(m, "env"));
	set_copy(cfg, "Cmd", json_object_get(m, "cmd"));
	set_copy(cfg, "Healthcheck", json_object_get(m, "healthcheck"));
	json_object_set_new(cfg, "Volumes", obj_or_null(json_object_get(ocfg, "Volumes")));
	set_copy(cfg, "WorkingDir", json_object_get(m, "working_dir"));
	set_copy(cfg, "Entrypoint", json_object_get(m, "entrypoint"));
	set_copy(cfg, "OnBuild", json_array_size(onb) ? onb : NULL);
	json_object_set_new(cfg, "Labels", obj_or_null(json_object_get(m, "labels")));
	set_copy(cfg, "StopSignal", json_object_get(m, "stop_signal"));
	set_copy(cfg, "Shell", json_object_get(m, "shell"));
	layers = json_array();
	json_array_foreach(json_object_get(m, "layers"), i, l)
		json_array_append(layers, json_object_get(l, "diff_id"));
	json_object_set_new(o, "Id", json_string(img->id));
	json_object_set(o, "RepoTags", img->tags);
	{
		/* a base's tags name registry digests: docker's repo@digest */
		json_t *rd = json_array(), *v;
		const char *k;

		json_object_foreach(img->refs, k, v) {
			char fam[700], *colon, *slash;

			hypr_store_familiar(k, fam, sizeof(fam));
			colon = strrchr(fam, ':');
			slash = strrchr(fam, '/');
			if (colon && (!slash || colon > slash))
				*colon = '\0';
			snprintf(fam + strlen(fam), sizeof(fam) - strlen(fam), "@%s",
			    json_string_value(v));
			/* sorted, once each */
			for (size_t j = 0; j <= json_array_size(rd); j++) {
				int cmp = j < json_array_size(rd) ?
				    strcmp(json_string_value(json_array_get(rd, j)), fam) : 1;

				if (cmp == 0)
					break;
				if (cmp > 0) {
					json_array_insert_new(rd, j, json_string(fam));
					break;
				}
			}
		}
		json_object_set_new(o, "RepoDigests", rd);
	}
	json_object_set_new(o, "Parent", json_string(""));
	json_object_set_new(o, "Comment", json_string(""));
	set_copy(o, "Created", json_object_get(m, "created"));
	json_object_set_new(o, "Author", json_string(""));
	json_object_set_new(o, "Config", cfg);
	set_copy(o, "Architecture", json_object_get(m, "architecture"));
	set_copy(o, "Os", json_object_get(m, "os"));
	json_object_set_new(o, "Size", json_integer((json_int_t)img->size));
	json_object_set_new(o, "RootFS", json_pack("{s:s, s:o}", "Type", "layers", "Layers",
	    layers));
	/* hypr records no tag times: docker's value for "never" */
	json_object_set_new(o, "Metadata", json_pack("{s:s}", "LastTagTime",
	    "0001-01-01T00:00:00Z"));
	/* the rest of the manifest is hypr's own */
	h = json_deep_copy(m);
	for (const char *const *k = moved; *k; k++)
		json_object_del(h, *k);
	if (hypr_root_path(&s->root, path, sizeof(path), "images/%s.squashfs", img->hex) == 0)
		json_object_set_new(json_object_get(h, "squashfs"), "path", json_string(path));
	json_object_set_new(o, "Hypr", h);
	maps[(*nmaps)++] = json_object_get(cfg, "Labels");
	maps[(*nmaps)++] = json_object_get(cfg, "ExposedPorts");
	maps[(*nmaps)++] = json_object_get(cfg, "Volumes");
	maps[(*nmaps)++] = json_object_get(h, "build_args");
	return o;
}

static int
write_manifest(struct hypr_store *s, json_t *m, struct hypr_err *e)
{
	char path[HYPR_PATH_BUF], *text;
	const char *id = hypr_json_str(m, "id");
	int rc;

	hypr_root_path(&s->root, path, sizeof(path), "images/%s.json", hypr_digest_hex(id));
	if ((text = json_dumps(m, JSON_INDENT(2))) == NULL)
		return hypr_err_set(e, HYPR_EXIT_SYSTEM, "out of memory");
	rc = hypr_write_atomic(path, text, strlen(text), 0644, e);
	free(text);
	return rc;
}

/* Keep each manifest's "tags" equal to the index (after tag changes). */
static int
sync_tags(struct hypr_store *s, struct hypr_err *e)
{
	fill_tags(s);
	for (size_t i = 0; i < s->n; i++) {
		struct hypr_image *im = &s->img[i];

		if (im->m == NULL || im->base ||
		    json_equal(json_object_get(im->m, "tags"), im->tags))
			continue;
		json_object_set(im->m, "tags", im->tags);
		if (write_manifest(s, im->m, e) < 0)
			return -1;
	}
	return 0;
}

int
hypr_store_tag(struct hypr_store *s, const char *canon, const char *id,
    struct hypr_err *e)
{
	json_object_set_new(json_object_get(s->index, "tags"), canon, json_string(id));
	if (hypr_store_save_index(s, e) < 0)
		return -1;
	return sync_tags(s, e);
}

/* The image whose manifest m and squashfs dst were just written, in s as
 * load_images reads it (not every manifest read again: a build's store
 * step would take O(images) twice). */
static int
add_image(struct hypr_store *s, json_t *m, const char *dst, struct hypr_err *e)
{
	const char *id = hypr_json_str(m, "id");
	struct hypr_image *im = hypr_store_get(s, id);
	json_t *copy = json_deep_copy(m);

	if (copy == NULL)
		return hypr_err_set(e, HYPR_EXIT_SYSTEM, "out of memory");
	if (im == NULL) {
		struct hypr_image *ni = realloc(s->img, (s->n + 1) * sizeof(*ni));

		if (ni == NULL) {
			json_decref(copy);
			return hypr_err_errno(e, HYPR_EXIT_SYSTEM, "storing %s", id);
		}
		s->img = ni;
		im = &s->img[s->n++];
		memset(im, 0, sizeof(*im));
		snprintf(im->id, sizeof(im->id), "%s", id);
		im->tags = json_array();
	}
	json_decref(im->m);
	im->m = copy;
	im->problem = NULL;
	image_fill(im, dst);
	sort_images(s);
	fill_tags(s);
	return 0;
}

int
hypr_store_put(struct hypr_store *s, json_t *m, const char *const *tags,
    size_t ntags, struct hypr_err *e)
{
	const char *id = hypr_json_str(m, "id");
	const char *sqd = hypr_json_str(json_object_get(m, "squashfs"), "digest");
	struct hypr_image *old = hypr_store_get(s, id);
	char blob[HYPR_PATH_BUF], dst[HYPR_PATH_BUF], tmp[HYPR_PATH_BUF + 128];
	struct stat st;

	hypr_root_path(&s->root, dst, sizeof(dst), "images/%s.squashfs", hypr_digest_hex(id));
	if (hypr_blob_path(&s->root, sqd, blob, sizeof(blob), e) < 0)
		return -1;
	if (stat(blob, &st) != 0)
		return hypr_err_set(e, HYPR_EXIT_INPUT,
		    "squashfs %s is not in the store (pruned meanwhile? build again)", sqd);
	/* dst on the blob's filesystem but another inode: the blob was
	 * rebuilt (hypr-squash --verify replaced a damaged one): relink */
	struct stat ds;
	int stale = old && stat(dst, &ds) == 0 && ds.st_dev == st.st_dev &&
	    ds.st_ino != st.st_ino;
	if (old == NULL || old->problem || stale) {
		snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", dst, (long)getpid());
		unlink(tmp);
		if (link(blob, tmp) < 0) {
			/* another filesystem or no hard links: copy */
			char *buf = NULL;
			size_t len;

			if (hypr_read_file(blob, (size_t)st.st_size + 1, &buf, &len, e) < 0)
				return -1;
			if (hypr_write_atomic(tmp, buf, len, 0644, e) < 0) {
				free(buf);
				return -1;
			}
			free(buf);
		}
		if (rename(tmp, dst) < 0) {
			unlink(tmp);
			return hypr_err_errno(e, HYPR_EXIT_SYSTEM, "storing %s", dst);
		}
		/* When dst already was a link of this blob, rename(2) did
		 * nothing and left tmp: remove it (else ENOENT, harmless). */
		unlink(tmp);
		/* the manifest last: the image appears whole or not at all */
		json_object_set_new(m, "tags", json_array());
		if (write_manifest(s, m, e) < 0 || add_image(s, m, dst, e) < 0)
			return -1;
	}
	for (size_t i = 0; i < ntags; i++)
		json_object_set_new(json_object_get(s->index, "tags"), tags[i],
		    json_string(id));
	if (ntags && hypr_store_save_index(s, e) < 0)
		return -1;
	return sync_tags(s, e);
}

/* Unlink path; add the disk space it used to *freed when this was the
 * last link. */
static void
unlink_count(const char *path, uint64_t *freed)
{
	struct stat st;

	if (lstat(path, &st) == 0 && unlink(path) == 0 && freed && st.st_nlink <= 1)
		*freed += (uint64_t)st.st_blocks * 512;
}

int
hypr_store_untag_base(struct hypr_store *s, const char *canon, struct hypr_err *e)
{
	struct hypr_ref r;

	if (hypr_ref_parse(canon, &r, e) < 0 || hypr_tagref_del(&s->root, &r, e) < 0)
		return hypr_err_prefix(e, "untagging %s", canon);
	return 0;
}

int
hypr_store_delete(struct hypr_store *s, struct hypr_image *img, uint64_t *freed,
    struct hypr_err *e)
{
	char path[HYPR_PATH_BUF], id[HYPR_DIGEST_LEN + 1], sqd[HYPR_DIGEST_LEN + 1] = "";
	json_t *tags = json_object_get(s->index, "tags"), *v;
	const char *k;
	void *tmp;
	int changed = 0, shared = 0;

	if (img->base) {
		json_t *refs = json_incref(img->refs);

		json_object_foreach(refs, k, v) {
			if (hypr_store_untag_base(s, k, e) < 0) {
				json_decref(refs);
				return -1;
			}
		}
		json_decref(refs);
		return hypr_store_reload(s, e);
	}
	snprintf(id, sizeof(id), "%s", img->id);
	if (img->m && hypr_digest_valid(hypr_json_str(json_object_get(img->m, "squashfs"), "digest")))
		snprintf(sqd, sizeof(sqd), "%s",
		    hypr_json_str(json_object_get(img->m, "squashfs"), "digest"));
	json_object_foreach_safe(tags, tmp, k, v) {
		if (strcmp(json_string_value(v), id) == 0) {
			json_object_del(tags, k);
			changed = 1;
		}
	}
	if (changed && hypr_store_save_index(s, e) < 0)
		return -1;
	/* the manifest first: from here on the image does not exist */
	hypr_root_path(&s->root, path, sizeof(path), "images/%s.json", hypr_digest_hex(id));
	if (unlink(path) < 0 && errno != ENOENT)
		return hypr_err_errno(e, HYPR_EXIT_SYSTEM, "removing %s", path);
	hypr_root_path(&s->root, path, sizeof(path), "images/%s.squashfs", hypr_digest_hex(id));
	unlink_count(path, freed);
	for (size_t i = 0; i < s->n; i++) {
		const char *d;

		if (strcmp(s->img[i].id, id) == 0 || !s->img[i].m)
			continue;
		d = hypr_json_str(json_object_get(s->img[i].m, "squashfs"), "digest");
		shared |= d && strcmp(d, sqd) == 0;
	}
	if (sqd[0] && !shared) {
		/* nothing else shows this squashfs: drop it and its chain cache */
		char dir[HYPR_PATH_BUF], ip[HYPR_PATH_BUF + 256];
		DIR *d;
		struct dirent *de;

		hypr_root_path(&s->root, dir, sizeof(dir), "cache/squashfs");
		if ((d = opendir(dir)) != NULL) {
			while ((de = readdir(d)) != NULL) {
				char *buf = NULL;
				json_t *j;
				struct hypr_err ig = { 0 };

				if (de->d_name[0] == '.')
					continue;
				snprintf(ip, sizeof(ip), "%s/%s", dir, de->d_name);
				if (hypr_read_file(ip, 1 << 16, &buf, NULL, &ig) < 0)
					continue;
				j = json_loads(buf, 0, NULL);
				free(buf);
				k = hypr_json_str(json_object_get(j, "squashfs"), "digest");
				if (k && strcmp(k, sqd) == 0)
					unlink(ip);
				json_decref(j);
			}
			closedir(d);
		}
		if (hypr_blob_path(&s->root, sqd, path, sizeof(path), e) == 0)
			unlink_count(path, freed);
	}
	return hypr_store_reload(s, e);
}
