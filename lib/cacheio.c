/* cacheio.c - the instruction cache out and in. See cacheio.h and
 * hypr-cache(5). */
#include "cacheio.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "digest.h"
#include "fsutil.h"
#include "push.h"
#include "record.h"
#include "ref.h"
#include "registry.h"
#include "stream.h"

#define MT_MANIFEST "application/vnd.oci.image.manifest.v1+json"
#define MT_INDEX "application/vnd.oci.image.index.v1+json"
#define INDEX_NAME "hypr-cache"	/* what an index's "hypr" field says */

/* ---- the spec ---- */

static int
spec_set(char *dst, size_t n, const char *v, size_t vn, const char *what,
    struct hypr_err *e)
{
	if (vn == 0 || vn >= n)
		return hypr_err_set(e, HYPR_EXIT_USAGE, "cache: %s= wants a value", what);
	memcpy(dst, v, vn);
	dst[vn] = '\0';
	return 0;
}

int
hypr_cache_spec_parse(const char *s, int to, struct hypr_cache_spec *sp, struct hypr_err *e)
{
	const char *p = s;
	char type[32] = "";

	memset(sp, 0, sizeof(*sp));
	if (strchr(s, '=') == NULL) {	/* buildx: a bare reference */
		if (!*s || strlen(s) >= sizeof(sp->ref))
			return hypr_err_set(e, HYPR_EXIT_USAGE, "cache: '%s': not a reference", s);
		snprintf(sp->ref, sizeof(sp->ref), "%s", s);
		return 0;
	}
	while (*p) {
		size_t n = strcspn(p, ","), kn;
		const char *eq = memchr(p, '=', n), *v;

		if (eq == NULL)
			return hypr_err_set(e, HYPR_EXIT_USAGE, "cache: '%.*s': want KEY=VALUE",
			    (int)n, p);
		kn = (size_t)(eq - p);
		v = eq + 1;
#define KEY(k) (kn == strlen(k) && !strncmp(p, k, kn))
		if (KEY("type")) {
			if (spec_set(type, sizeof(type), v, n - kn - 1, "type", e) < 0)
				return -1;
		} else if (KEY("ref")) {
			if (spec_set(sp->ref, sizeof(sp->ref), v, n - kn - 1, "ref", e) < 0)
				return -1;
		} else if ((to && KEY("dest")) || (!to && KEY("src"))) {
			if (spec_set(sp->dir, sizeof(sp->dir), v, n - kn - 1, to ? "dest" : "src",
			    e) < 0)
				return -1;
		} else if (KEY("mode")) {
			if (n - kn - 1 == 3 && !strncmp(v, "max", 3))
				sp->max = 1;
			else if (n - kn - 1 != 3 || strncmp(v, "min", 3))
				return hypr_err_set(e, HYPR_EXIT_USAGE,
				    "cache: mode=%.*s: want min or max", (int)(n - kn - 1), v);
		} else if (!(KEY("oci-mediatypes") || KEY("image-manifest") ||
		    KEY("compression") || KEY("compression-level") || KEY("force-compression") ||
		    KEY("ignore-error"))) {
			return hypr_err_set(e, HYPR_EXIT_USAGE, "cache: unknown key '%.*s' in '%s'",
			    (int)kn, p, s);
		}
#undef KEY
		p += n;
		if (*p == ',')
			p++;
	}
	if (!type[0] || !strcmp(type, "registry")) {
		if (!sp->ref[0])
			return hypr_err_set(e, HYPR_EXIT_USAGE, "cache: '%s': type=registry needs "
			    "ref=NAME[:TAG]", s);
	} else if (!strcmp(type, "local")) {
		sp->local = 1;
		if (!sp->dir[0])
			return hypr_err_set(e, HYPR_EXIT_USAGE, "cache: '%s': type=local needs %s=DIR",
			    s, to ? "dest" : "src");
	} else {
		return hypr_err_set(e, HYPR_EXIT_USAGE, "cache: type=%s is not supported "
		    "(registry or local)", type);
	}
	return 0;
}

/* ---- the artifact ---- */

/* The index (the config blob) and the layer descriptors, deduplicated. */
static int
build_index(json_t *entries, char **text, json_t **layers, struct hypr_err *e)
{
	json_t *idx, *seen = json_object(), *x;
	size_t i;

	*layers = json_array();
	json_array_foreach(entries, i, x) {
		json_t *l = json_object_get(x, "layer");
		const char *d = hypr_json_str(l, "digest");

		if (d == NULL || json_object_get(seen, d))
			continue;
		json_object_set_new(seen, d, json_true());
		json_array_append_new(*layers, json_pack("{s:s,s:s,s:O}", "mediaType",
		    hypr_json_str(l, "media_type") ? hypr_json_str(l, "media_type") :
		    HYPR_MEDIA_LAYER_TAR, "digest", d, "size", json_object_get(l, "size")));
	}
	json_decref(seen);
	idx = json_pack("{s:s,s:i,s:O}", "hypr", INDEX_NAME, "version", 1, "entries", entries);
	*text = idx ? json_dumps(idx, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	json_decref(idx);
	if (*text == NULL || *layers == NULL) {
		free(*text);
		json_decref(*layers);
		return hypr_err_set(e, HYPR_EXIT_SYSTEM, "out of memory");
	}
	return 0;
}

/* Copy the file src to dst, atomically (dst already there: kept). */
static int
copy_to(const char *src, const char *dst, struct hypr_err *e)
{
	char tmp[4300], buf[1 << 16];
	int in, out;
	ssize_t r;

	if (access(dst, F_OK) == 0)
		return 0;
	if (snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", dst, (long)getpid()) >= (int)sizeof(tmp))
		return hypr_err_set(e, HYPR_EXIT_USAGE, "cache: %s: path too long", dst);
	/* a copy, never a hard link: a write to the layout must not reach
	 * the store's blob */
	if ((in = open(src, O_RDONLY | O_CLOEXEC)) < 0)
		return hypr_err_errno(e, HYPR_EXIT_SYSTEM, "%s", src);
	if ((out = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)) < 0) {
		close(in);
		return hypr_err_errno(e, HYPR_EXIT_SYSTEM, "creating %s", tmp);
	}
	while ((r = read(in, buf, sizeof(buf))) > 0)
		if (hypr_write_all(out, buf, (size_t)r) < 0) {
			r = -1;
			break;
		}
	close(in);
	if (r < 0 || close(out) < 0) {
		unlink(tmp);
		return hypr_err_errno(e, HYPR_EXIT_SYSTEM, "writing %s", tmp);
	}
	if (rename(tmp, dst) < 0) {
		unlink(tmp);
		return hypr_err_errno(e, HYPR_EXIT_SYSTEM, "renaming %s", tmp);
	}
	return 0;
}

static int
blob_file(const char *dir, const char *digest, char *buf, size_t n)
{
	return snprintf(buf, n, "%s/blobs/sha256/%s", dir, hypr_digest_hex(digest)) >= (int)n ?
	    -1 : 0;
}

static int
local_put(const char *dir, const char *text, char digest[HYPR_DIGEST_LEN + 1],
    struct hypr_err *e)
{
	char p[4200];

	if (hypr_digest_buf(text, strlen(text), digest, e) < 0)
		return -1;
	if (blob_file(dir, digest, p, sizeof(p)) < 0)
		return hypr_err_set(e, HYPR_EXIT_USAGE, "cache: %s: path too long", dir);
	return access(p, F_OK) == 0 ? 0 : hypr_write_atomic(p, text, strlen(text), 0644, e);
}

/* An OCI layout: the blobs, the manifest, index.json naming it "latest". */
static int
export_local(const struct hypr_root *root, const char *dir, const char *cfg, json_t *layers,
    char digest[HYPR_DIGEST_LEN + 1], struct hypr_err *e)
{
	char p[4200], src[HYPR_PATH_BUF], cd[HYPR_DIGEST_LEN + 1];
	json_t *l, *man, *ix;
	char *mans, *ixs;
	size_t i;
	int rc;

	snprintf(p, sizeof(p), "%s/blobs/sha256", dir);
	if (hypr_mkdir_p(p, 0755, e) < 0)
		return -1;
	snprintf(p, sizeof(p), "%s/oci-layout", dir);
	if (hypr_write_atomic(p, "{\"imageLayoutVersion\":\"1.0.0\"}", 30, 0644, e) < 0)
		return -1;
	json_array_foreach(layers, i, l) {
		const char *d = hypr_json_str(l, "digest");

		if (hypr_blob_path(root, d, src, sizeof(src), e) < 0)
			return -1;
		if (blob_file(dir, d, p, sizeof(p)) < 0)
			return hypr_err_set(e, HYPR_EXIT_USAGE, "cache: %s: path too long", dir);
		if (copy_to(src, p, e) < 0)
			return -1;
	}
	if (local_put(dir, cfg, cd, e) < 0)
		return -1;
	man = json_pack("{s:i,s:s,s:s,s:{s:s,s:s,s:I},s:O}", "schemaVersion", 2,
	    "mediaType", MT_MANIFEST, "artifactType", HYPR_CACHE_ARTIFACT_TYPE, "config",
	    "mediaType", HYPR_CACHE_INDEX_TYPE, "digest", cd, "size", (json_int_t)strlen(cfg),
	    "layers", layers);
	mans = man ? json_dumps(man, JSON_COMPACT) : NULL;
	json_decref(man);
	if (mans == NULL)
		return hypr_err_set(e, HYPR_EXIT_SYSTEM, "out of memory");
	if (local_put(dir, mans, digest, e) < 0) {
		free(mans);
		return -1;
	}
	ix = json_pack("{s:i,s:s,s:[{s:s,s:s,s:I,s:s,s:{s:s}}]}", "schemaVersion", 2,
	    "mediaType", MT_INDEX, "manifests", "mediaType", MT_MANIFEST, "digest", digest,
	    "size", (json_int_t)strlen(mans), "artifactType", HYPR_CACHE_ARTIFACT_TYPE,
	    "annotations", "org.opencontainers.image.ref.name", "latest");
	free(mans);
	ixs = ix ? json_dumps(ix, JSON_COMPACT) : NULL;
	json_decref(ix);
	if (ixs == NULL)
		return hypr_err_set(e, HYPR_EXIT_SYSTEM, "out of memory");
	snprintf(p, sizeof(p), "%s/index.json", dir);
	rc = hypr_write_atomic(p, ixs, strlen(ixs), 0644, e);
	free(ixs);
	return rc;
}

int
hypr_cacheio_export(const struct hypr_root *root, const struct hypr_cache_spec *sp,
    const char *insecure, json_t *entries, FILE *progress,
    char digest[HYPR_DIGEST_LEN + 1], struct hypr_err *e)
{
	struct hypr_push_result res;
	char *cfg = NULL, d[HYPR_DIGEST_LEN + 1];
	json_t *layers = NULL, *l;
	size_t i;
	int rc;

	if (build_index(entries, &cfg, &layers, e) < 0)
		return -1;
	json_array_foreach(layers, i, l)
		if (!hypr_blob_has(root, hypr_json_str(l, "digest"))) {
			hypr_err_set(e, HYPR_EXIT_INPUT, "cache: layer %s is not in the store",
			    hypr_json_str(l, "digest"));
			free(cfg);
			json_decref(layers);
			return -1;
		}
	if (sp->local) {
		rc = export_local(root, sp->dir, cfg, layers, d, e);
	} else {
		char canon[700];
		struct hypr_ref ref;

		rc = hypr_ref_parse(sp->ref, &ref, e);
		if (rc == 0 && hypr_ref_string(&ref, canon, sizeof(canon)) < 0)
			rc = hypr_err_set(e, HYPR_EXIT_USAGE, "cache: ref=%s: too long", sp->ref);
		if (rc == 0)
			rc = hypr_push_oci_artifact(root, canon, insecure, progress,
			    HYPR_CACHE_ARTIFACT_TYPE, cfg, HYPR_CACHE_INDEX_TYPE, layers, &res, e);
		memcpy(d, res.digest, sizeof(d));
	}
	free(cfg);
	json_decref(layers);
	if (rc == 0 && digest)
		memcpy(digest, d, HYPR_DIGEST_LEN + 1);
	return rc;
}

/* ---- in ---- */

/* The manifest must be hypr's cache artifact; cd gets the index's digest. */
static int
check_manifest(const char *where, const char *body, size_t len, char cd[HYPR_DIGEST_LEN + 1],
    int64_t *size, struct hypr_err *e)
{
	json_t *m = json_loadb(body, len, 0, NULL), *c = json_object_get(m, "config");
	const char *mt = hypr_json_str(c, "mediaType"), *d = hypr_json_str(c, "digest");
	int rc = 0;

	if (!json_is_object(m))
		rc = hypr_err_set(e, HYPR_EXIT_INPUT, "cache %s: the manifest is not JSON", where);
	else if (mt == NULL || strcmp(mt, HYPR_CACHE_INDEX_TYPE) != 0 || d == NULL ||
	    !hypr_digest_valid(d))
		rc = hypr_err_set(e, HYPR_EXIT_INPUT, "cache %s: not a hypr build cache "
		    "(config media type %s)", where, mt ? mt : "missing");
	else if ((*size = json_integer_value(json_object_get(c, "size"))) < 0 ||
	    *size > (int64_t)HYPR_CACHE_INDEX_MAX)
		rc = hypr_err_set(e, HYPR_EXIT_INPUT, "cache %s: index of %lld bytes", where,
		    (long long)*size);
	else
		memcpy(cd, d, HYPR_DIGEST_LEN + 1);
	json_decref(m);
	return rc;
}

/* Read a blob of an OCI layout, verifying its digest. */
static int
local_read(const char *dir, const char *digest, size_t max, char **out, size_t *len,
    struct hypr_err *e)
{
	char p[4200], got[HYPR_DIGEST_LEN + 1];

	if (!hypr_digest_valid(digest) || blob_file(dir, digest, p, sizeof(p)) < 0)
		return hypr_err_set(e, HYPR_EXIT_INPUT, "cache %s: bad digest", dir);
	if (hypr_read_file(p, max, out, len, e) < 0)
		return -1;
	if (hypr_digest_buf(*out, *len, got, e) < 0 || strcmp(got, digest) != 0) {
		free(*out);
		*out = NULL;
		return hypr_err_set(e, HYPR_EXIT_INPUT, "cache %s: blob %s: digest mismatch "
		    "(it holds %s)", dir, digest, got);
	}
	return 0;
}

static int
import_local(const struct hypr_root *root, const char *dir, char index[HYPR_DIGEST_LEN + 1],
    struct hypr_err *e)
{
	char p[4200], *text = NULL, cd[HYPR_DIGEST_LEN + 1], md[HYPR_DIGEST_LEN + 1];
	json_t *ix, *x, *pick = NULL;
	size_t len, i;
	int64_t size;
	int rc;

	snprintf(p, sizeof(p), "%s/index.json", dir);
	if (hypr_read_file(p, HYPR_CACHE_INDEX_MAX, &text, &len, e) < 0)
		return -1;
	ix = json_loadb(text, len, 0, NULL);
	free(text);
	json_array_foreach(json_object_get(ix, "manifests"), i, x) {
		const char *at = hypr_json_str(x, "artifactType");

		if (pick == NULL || (at && !strcmp(at, HYPR_CACHE_ARTIFACT_TYPE)))
			pick = x;
	}
	if (pick == NULL || !hypr_digest_valid(hypr_json_str(pick, "digest"))) {
		json_decref(ix);
		return hypr_err_set(e, HYPR_EXIT_INPUT, "cache %s: no manifest in index.json", dir);
	}
	snprintf(md, sizeof(md), "%s", hypr_json_str(pick, "digest"));
	json_decref(ix);
	if (local_read(dir, md, 1 << 24, &text, &len, e) < 0)
		return -1;
	rc = check_manifest(dir, text, len, cd, &size, e);
	free(text);
	if (rc < 0 || local_read(dir, cd, HYPR_CACHE_INDEX_MAX, &text, &len, e) < 0)
		return -1;
	rc = hypr_blob_put_buf(root, text, len, index, e);
	free(text);
	return rc;
}

static int
open_reg(struct hypr_registry *g, const struct hypr_root *root, const char *r,
    const char *insecure, struct hypr_ref *ref, struct hypr_err *e)
{
	if (hypr_ref_parse(r, ref, e) < 0)
		return -1;
	if (hypr_registry_open(g, root, ref, insecure, e) < 0) {
		hypr_registry_close(g);
		return -1;
	}
	return 0;
}

int
hypr_cacheio_import(const struct hypr_root *root, const struct hypr_cache_spec *sp,
    const char *insecure, char index[HYPR_DIGEST_LEN + 1], struct hypr_err *e)
{
	struct hypr_registry g;
	struct hypr_ref ref;
	char *body = NULL, mt[128], md[HYPR_DIGEST_LEN + 1], cd[HYPR_DIGEST_LEN + 1];
	size_t len;
	int64_t size;
	int rc;

	if (sp->local)
		return import_local(root, sp->dir, index, e);
	if (open_reg(&g, root, sp->ref, insecure, &ref, e) < 0)
		return -1;
	rc = hypr_registry_manifest(&g, ref.digest[0] ? ref.digest : ref.tag, &body, &len, mt,
	    sizeof(mt), md, e);
	if (rc == 0)
		rc = check_manifest(sp->ref, body, len, cd, &size, e);
	free(body);
	if (rc == 0)
		rc = hypr_registry_blob(&g, cd, size, NULL, 0, e);
	hypr_registry_close(&g);
	if (rc == 0)
		memcpy(index, cd, HYPR_DIGEST_LEN + 1);
	return rc;
}

json_t *
hypr_cacheio_load(const struct hypr_root *root, const char *index, struct hypr_err *e)
{
	char *text = NULL;
	size_t len, i;
	json_t *j, *out, *x;

	if (hypr_blob_read(root, index, HYPR_CACHE_INDEX_MAX, &text, &len, e) < 0)
		return NULL;
	j = json_loadb(text, len, 0, NULL);
	free(text);
	if (!json_is_object(j) || strcmp(hypr_json_str(j, "hypr") ? hypr_json_str(j, "hypr") :
	    "", INDEX_NAME) != 0 || json_integer_value(json_object_get(j, "version")) != 1 ||
	    !json_is_array(json_object_get(j, "entries"))) {
		json_decref(j);
		hypr_err_set(e, HYPR_EXIT_INPUT, "cache index %s: not a hypr-cache index, "
		    "version 1", index);
		return NULL;
	}
	if ((out = json_object()) == NULL) {
		json_decref(j);
		hypr_err_set(e, HYPR_EXIT_SYSTEM, "out of memory");
		return NULL;
	}
	json_array_foreach(json_object_get(j, "entries"), i, x) {
		const char *k = hypr_json_str(x, "key");

		if (k && hypr_digest_valid(k) && json_is_object(x))
			json_object_set(out, k, x);
	}
	json_decref(j);
	return out;
}

int
hypr_cacheio_blob(const struct hypr_root *root, const char *source, const char *digest,
    int64_t size, struct hypr_err *e)
{
	struct hypr_cache_spec sp;
	struct hypr_registry g;
	struct hypr_ref ref;
	int rc;

	if (hypr_cache_spec_parse(source, 0, &sp, e) < 0)
		return -1;
	if (sp.local) {
		struct hypr_blob_writer w;
		char p[4200], buf[1 << 16];
		uint64_t got;
		ssize_t r;
		int fd;

		if (!hypr_digest_valid(digest) || blob_file(sp.dir, digest, p, sizeof(p)) < 0)
			return hypr_err_set(e, HYPR_EXIT_INPUT, "cache %s: bad digest", sp.dir);
		if ((fd = open(p, O_RDONLY | O_CLOEXEC)) < 0)
			return hypr_err_errno(e, HYPR_EXIT_INPUT, "cache %s", p);
		if (hypr_blob_begin(&w, root, e) < 0) {
			close(fd);
			return -1;
		}
		while ((r = read(fd, buf, sizeof(buf))) > 0)
			if (hypr_blob_write(&w, buf, (size_t)r, e) < 0) {
				close(fd);
				hypr_blob_abort(&w);
				return -1;
			}
		close(fd);
		if (r < 0) {
			hypr_blob_abort(&w);
			return hypr_err_errno(e, HYPR_EXIT_SYSTEM, "reading %s", p);
		}
		if (hypr_blob_commit(&w, digest, NULL, &got, e) < 0)
			return hypr_err_prefix(e, "cache %s: layer %s", sp.dir, digest);
		if (size >= 0 && (int64_t)got != size)
			return hypr_err_set(e, HYPR_EXIT_INPUT, "cache %s: layer %s: %llu bytes, "
			    "the index says %lld", sp.dir, digest, (unsigned long long)got,
			    (long long)size);
		return 0;
	}
	if (open_reg(&g, root, sp.ref, NULL, &ref, e) < 0)
		return -1;
	rc = hypr_registry_blob(&g, digest, size, NULL, 0, e);
	hypr_registry_close(&g);
	return rc < 0 ? hypr_err_prefix(e, "cache %s", sp.ref) : 0;
}
