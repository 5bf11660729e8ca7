/* artifact.c - hypr-fetch pull: the squashfs artifact of an image hypr
 * pushed (hypr-artifact(5)), stored as a ready-to-boot image. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fetch.h"
#include "fsutil.h"
#include "oci.h"
#include "push.h"
#include "registry.h"
#include "store.h"
#include "stream.h"
#include "tool.h"

#define MT_MANIFEST "application/vnd.oci.image.manifest.v1+json"
#define DOC_MAX (4u << 20)

/* The artifact's descriptor in a referrers index: the first entry of our
 * artifact type, or NULL. */
static json_t *
pick(json_t *ix)
{
	json_t *d;
	size_t i;

	json_array_foreach(json_object_get(ix, "manifests"), i, d) {
		const char *at = hypr_json_str(d, "artifactType");

		if (at && !strcmp(at, HYPR_ARTIFACT_TYPE) &&
		    hypr_digest_valid(hypr_json_str(d, "digest")))
			return d;
	}
	return NULL;
}

/* The layer of an artifact manifest with this media type, or NULL. */
static json_t *
layer_of(json_t *art, const char *mt)
{
	json_t *l;
	size_t i;

	json_array_foreach(json_object_get(art, "layers"), i, l)
		if (hypr_json_str(l, "mediaType") && !strcmp(hypr_json_str(l, "mediaType"), mt))
			return l;
	return NULL;
}

/* Store the plain tar a stored gzip layer decompresses to, under the digest
 * the hypr manifest gives it (checked: oci.h's unpack); pushed/ remembers
 * the gzip, so a later push of this image compresses nothing. */
static int
gunzip_blob(const struct hypr_root *root, const char *gz, const char *want, uint64_t gzsize,
    struct hypr_err *e)
{
	char memo[HYPR_PATH_BUF], dir[HYPR_PATH_BUF], line[HYPR_DIGEST_LEN + 32];

	if (hypr_layer_unpack(root, gz, want, NULL, e) < 0)
		return -1;
	hypr_root_path(root, dir, sizeof(dir), "pushed");
	hypr_root_path(root, memo, sizeof(memo), "pushed/%s", hypr_digest_hex(want));
	if (mkdir(dir, 0755) == 0 || errno == EEXIST) {
		struct hypr_err ig = { 0 };

		snprintf(line, sizeof(line), "%s %llu\n", gz, (unsigned long long)gzsize);
		(void)hypr_write_atomic(memo, line, strlen(line), 0644, &ig);
	}
	return 0;
}

/* The hypr manifest m must describe the OCI image img: the same layers,
 * in order (by diff_id); a tar layer not stored yet comes from img's
 * gzip'd one. */
static int
match_layers(struct fetch *f, json_t *m, json_t *img, struct hypr_err *e)
{
	json_t *ml = json_object_get(m, "layers"), *il = json_object_get(img, "layers");
	json_t *diffs = json_object_get(img, "diff_ids"), *l;
	size_t i;

	if (json_array_size(ml) != json_array_size(diffs))
		return hypr_err_set(e, HYPR_EXIT_INPUT, "the artifact's manifest has %zu layers, "
		    "the image %zu", json_array_size(ml), json_array_size(diffs));
	json_array_foreach(ml, i, l) {
		const char *d = hypr_json_str(l, "digest"), *di = hypr_json_str(l, "diff_id");
		json_t *ol = json_array_get(il, i);

		if (!di || !hypr_digest_valid(d) ||
		    strcmp(di, json_string_value(json_array_get(diffs, i))) != 0)
			return hypr_err_set(e, HYPR_EXIT_INPUT, "the artifact's manifest: layer "
			    "%zu is not the image's", i);
		if (hypr_blob_has(&f->root, d))
			continue;
		if (strcmp(d, di) != 0 || !strstr(hypr_json_str(ol, "media_type") ?
		    hypr_json_str(ol, "media_type") : "", "gzip"))
			return hypr_err_set(e, HYPR_EXIT_INPUT, "the artifact's manifest: layer "
			    "%s is neither stored nor the image's layer %zu", d, i);
		if (gunzip_blob(&f->root, hypr_json_str(ol, "digest"), d,
		    (uint64_t)json_integer_value(json_object_get(ol, "size")), e) < 0)
			return -1;
	}
	return 0;
}

int
fetch_artifact(struct fetch *f, const char *refstr, json_t *img, char *id, size_t idn,
    struct hypr_err *e)
{
	struct hypr_registry g;
	struct hypr_ref r;
	struct hypr_store s;
	struct hypr_err ig = { 0 };
	const char *subject = hypr_json_str(img, "digest"), *tags[1];
	char *body = NULL, mt[128], ad[HYPR_DIGEST_LEN + 1], canon[600], want[HYPR_DIGEST_LEN + 1];
	char *mb = NULL;
	size_t len, ml;
	json_t *ix = NULL, *art = NULL, *m = NULL, *sq, *mf;
	const char *sqd, *mfd;
	int rc = -1, k;

	if (hypr_ref_parse(refstr, &r, e) < 0)
		return -1;
	if (hypr_registry_open(&g, &f->root, &r, f->insecure, e) < 0) {
		hypr_registry_close(&g);
		return -1;
	}
	if ((k = hypr_registry_referrers(&g, subject, HYPR_ARTIFACT_TYPE, &body, &len, e)) <= 0) {
		rc = k;
		goto out;
	}
	ix = json_loadb(body, len, 0, NULL);
	free(body);
	body = NULL;
	if (pick(ix) == NULL) {
		rc = 0;		/* referrers, but none of ours */
		goto out;
	}
	snprintf(ad, sizeof(ad), "%s", hypr_json_str(pick(ix), "digest"));
	if (hypr_registry_manifest(&g, ad, &body, &len, mt, sizeof(mt), ad, e) < 0)
		goto out;
	art = json_loadb(body, len, 0, NULL);
	sq = layer_of(art, HYPR_ARTIFACT_TYPE);
	mf = layer_of(art, HYPR_MANIFEST_TYPE);
	if (!json_is_object(art) || !hypr_json_str(json_object_get(art, "subject"), "digest") ||
	    strcmp(hypr_json_str(json_object_get(art, "subject"), "digest"), subject) != 0 ||
	    sq == NULL) {
		hypr_err_set(e, HYPR_EXIT_INPUT, "%s: artifact %s is not a squashfs of %s",
		    g.domain, ad, subject);
		goto out;
	}
	if (mf == NULL) {
		/* an older hypr's artifact: the squashfs alone cannot name the image */
		hypr_warn("%s: artifact %s has no hypr manifest; the image is a base only",
		    g.domain, ad);
		rc = 0;
		goto out;
	}
	sqd = hypr_json_str(sq, "digest");
	mfd = hypr_json_str(mf, "digest");
	if (!hypr_digest_valid(sqd) || !hypr_digest_valid(mfd) ||
	    json_integer_value(json_object_get(mf, "size")) > (json_int_t)DOC_MAX) {
		hypr_err_set(e, HYPR_EXIT_INPUT, "%s: artifact %s: bad layer descriptor",
		    g.domain, ad);
		goto out;
	}
	if (hypr_registry_blob(&g, mfd, json_integer_value(json_object_get(mf, "size")), NULL,
	    f->max_layer, e) < 0 ||
	    hypr_blob_read(&f->root, mfd, DOC_MAX, &mb, &ml, e) < 0)
		goto out;
	m = json_loadb(mb, ml, 0, NULL);
	/* the manifest is what its ID says, and its squashfs is the artifact's */
	if (hypr_store_id(m, want, e) < 0)
		goto out;
	if (!hypr_json_str(m, "id") || strcmp(want, hypr_json_str(m, "id")) != 0 ||
	    !hypr_json_str(json_object_get(m, "squashfs"), "digest") ||
	    strcmp(sqd, hypr_json_str(json_object_get(m, "squashfs"), "digest")) != 0 ||
	    json_integer_value(json_object_get(json_object_get(m, "squashfs"), "size")) !=
	    json_integer_value(json_object_get(sq, "size"))) {
		hypr_err_set(e, HYPR_EXIT_INPUT, "%s: artifact %s: the manifest's ID or squashfs "
		    "does not check out", g.domain, ad);
		goto out;
	}
	if (match_layers(f, m, img, e) < 0)
		goto out;
	if (!f->quiet)
		hypr_info("%.19s: pulling the squashfs (%.1f MB)", sqd,
		    (double)json_integer_value(json_object_get(sq, "size")) / 1e6);
	if (hypr_registry_blob(&g, sqd, json_integer_value(json_object_get(sq, "size")), NULL,
	    f->max_layer, e) < 0)
		goto out;
	/* neither is in the ID: what the registry says there is not trusted
	 * (a "file" of "../x" would be a path out of images/) */
	json_object_set_new(m, "tags", json_array());
	snprintf(canon, sizeof(canon), "%s.squashfs", hypr_digest_hex(want));
	json_object_set_new(json_object_get(m, "squashfs"), "file", json_string(canon));
	if (hypr_store_open(&s, f->root.path, 1, e) < 0)
		goto out;
	k = 0;
	if (r.tag[0] && !r.digest[0] && hypr_store_canon_tag(refstr, canon, sizeof(canon),
	    &ig) == 0)
		tags[k++] = canon;
	rc = hypr_store_put(&s, m, tags, (size_t)k, e) < 0 ? -1 : 1;
	hypr_store_close(&s);
	if (rc == 1)
		snprintf(id, idn, "%s", want);
out:
	free(body);
	free(mb);
	json_decref(ix);
	json_decref(art);
	json_decref(m);
	hypr_registry_close(&g);
	return rc;
}
