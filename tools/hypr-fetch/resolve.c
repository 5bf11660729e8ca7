/* resolve.c - a reference to an image in the store, pulling what is missing. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cas.h"
#include "fetch.h"
#include "net.h"
#include "oci.h"
#include "plan.h"
#include "registry.h"
#include "stream.h"
#include "tool.h"

#define DOC_MAX (4u << 20)

static int
read_doc(const struct hypr_root *r, const char *digest, size_t max, json_t **doc,
    struct hypr_err *e)
{
	char *buf;
	size_t len;
	json_error_t je;

	if (hypr_blob_read(r, digest, max, &buf, &len, e) < 0)
		return -1;
	*doc = json_loadb(buf, len, 0, &je);
	free(buf);
	if (!*doc || !json_is_object(*doc)) {
		json_decref(*doc);
		*doc = NULL;
		return hypr_err_set(e, HYPR_EXIT_INPUT, "%s: not a JSON object: %s",
		    digest, je.text);
	}
	return 0;
}

/* The image object for the stream, from a checked manifest and its config. */
static int
build_image(const char *ref, const char *index, const char *mdigest,
    const char *mt, json_t *man, json_t *cfg, json_t **image, struct hypr_err *e)
{
	struct hypr_plan_image im = { .ref = ref, .digest = mdigest, .index = index,
		.media_type = mt };
	json_t *diff = json_object_get(json_object_get(cfg, "rootfs"), "diff_ids"), *l;
	json_t *ml = json_object_get(man, "layers");
	char plat[128];
	const char *os = hypr_json_str(cfg, "os"), *arch = hypr_json_str(cfg, "architecture");
	const char *var = hypr_json_str(cfg, "variant");
	size_t i;

	if (!json_is_array(diff) || json_array_size(diff) != json_array_size(ml))
		return hypr_err_set(e, HYPR_EXIT_INPUT,
		    "image config has %zu diff_ids for %zu layers",
		    json_array_size(diff), json_array_size(ml));
	if ((im.layers = calloc(json_array_size(ml) + 1, sizeof(*im.layers))) == NULL)
		return hypr_err_set(e, HYPR_EXIT_SYSTEM, "out of memory");
	json_array_foreach(ml, i, l) {
		const char *lmt = hypr_json_str(l, "mediaType");
		const char *di = json_string_value(json_array_get(diff, i));

		if (!hypr_digest_valid(di)) {
			free(im.layers);
			return hypr_err_set(e, HYPR_EXIT_INPUT, "image config: bad diff_id");
		}
		if (lmt && strlen(lmt) >= HYPR_MEDIA_TYPE_MAX) {
			free(im.layers);
			return hypr_err_set(e, HYPR_EXIT_INPUT, "manifest layer %zu: media type "
			    "longer than %d bytes", i, HYPR_MEDIA_TYPE_MAX - 1);
		}
		hypr_layer_set(&im.layers[i], hypr_json_str(l, "digest"),
		    json_integer_value(json_object_get(l, "size")),
		    lmt ? lmt : HYPR_MEDIA_LAYER_GZIP);
		snprintf(im.layers[i].diff_id, sizeof(im.layers[i].diff_id), "%s", di);
	}
	im.nlayers = json_array_size(ml);
	snprintf(plat, sizeof(plat), "%s/%s%s%s", os ? os : "linux",
	    arch ? arch : "unknown", var ? "/" : "", var ? var : "");
	im.platform = plat;
	im.config = hypr_json_str(json_object_get(man, "config"), "digest");
	*image = hypr_plan_image_json(&im);
	free(im.layers);
	if (*image == NULL)
		return hypr_err_set(e, HYPR_EXIT_SYSTEM, "out of memory");
	return 0;
}

/* Does a stored blob have the size a descriptor (of the manifest, or of
 * the index for a manifest) gives? -1 with e if not; no such blob is fine
 * here (the caller notices). */
static int
stored_size(struct fetch *f, json_t *d, const char *what, struct hypr_err *e)
{
	const char *by = strcmp(what, "manifest") == 0 ? "index" : "manifest";
	char path[HYPR_PATH_BUF + 128];
	struct stat st;
	json_int_t want = json_integer_value(json_object_get(d, "size"));
	const char *dg = hypr_json_str(d, "digest");

	if (hypr_blob_path(&f->root, dg, path, sizeof(path), e) < 0)
		return -1;
	if (stat(path, &st) == 0 && (json_int_t)st.st_size != want)
		return hypr_err_set(e, HYPR_EXIT_INPUT, "%s %s: the %s gives %lld "
		    "bytes, the stored blob has %lld", what, dg, by, (long long)want,
		    (long long)st.st_size);
	return 0;
}

/* The sizes a (checked) manifest gives: within the limits, and those of
 * blobs already stored their real sizes. Before anything is downloaded. */
static int
check_sizes(struct fetch *f, json_t *man, struct hypr_err *e)
{
	json_t *cfg = json_object_get(man, "config"), *l;
	json_int_t cs = json_integer_value(json_object_get(cfg, "size"));
	char lim[64];
	size_t i;

	if (cs > (json_int_t)HYPR_OCI_CONFIG_MAX) {
		hypr_net_size_text(HYPR_OCI_CONFIG_MAX, lim, sizeof(lim));
		return hypr_err_set(e, HYPR_EXIT_INPUT, "config %s: the manifest gives %lld "
		    "bytes, over the %s limit", hypr_json_str(cfg, "digest"),
		    (long long)cs, lim);
	}
	if (stored_size(f, cfg, "config", e) < 0)
		return -1;
	hypr_net_size_text(f->max_layer, lim, sizeof(lim));
	json_array_foreach(json_object_get(man, "layers"), i, l) {
		json_int_t ls = json_integer_value(json_object_get(l, "size"));

		if ((uint64_t)ls > f->max_layer)
			return hypr_err_set(e, HYPR_EXIT_INPUT, "layer %s: the manifest gives "
			    "%lld bytes, over the %s limit (HYPR_PULL_MAX_LAYER)",
			    hypr_json_str(l, "digest"), (long long)ls, lim);
		if (stored_size(f, l, "layer", e) < 0)
			return -1;
	}
	return 0;
}

/* Each stored layer's content must be what the config's diff_id says:
 * known from the record made when it was downloaded or loaded, else
 * decompressed now, once. */
static int
check_diff_ids(struct fetch *f, json_t *man, json_t *cfg, struct hypr_err *e)
{
	json_t *diffs = json_object_get(json_object_get(cfg, "rootfs"), "diff_ids"), *l;
	char got[HYPR_DIGEST_LEN + 1];
	size_t i;

	json_array_foreach(json_object_get(man, "layers"), i, l) {
		const char *want = json_string_value(json_array_get(diffs, i));
		const char *dg = hypr_json_str(l, "digest");

		if (!hypr_digest_valid(want))
			return hypr_err_set(e, HYPR_EXIT_INPUT, "image config: bad diff_id");
		if (hypr_diffid_get(&f->root, dg, f->max_layer, got, e) < 0)
			return hypr_err_prefix(e, "layer %s", dg);
		if (strcmp(got, want) != 0)
			return hypr_err_set(e, HYPR_EXIT_INPUT, "layer %s: diff_id mismatch: "
			    "the config says %s, the layer decompresses to %s", dg, want, got);
	}
	return 0;
}

/* From the store alone: 1 with *image when everything is there, 0 when
 * something is missing, -1 on a real error (corrupt blob, no platform). */
static int
from_store(struct fetch *f, const char *ref, const char *top,
    const struct hypr_platform *want, json_t **image, struct hypr_err *e)
{
	json_t *doc = NULL, *man = NULL, *cfg = NULL, *desc, *l;
	char mt[128], mdig[HYPR_DIGEST_LEN + 1];
	const char *index = NULL;
	size_t i;
	int r = -1;

	if (!hypr_blob_has(&f->root, top))
		return 0;
	if (read_doc(&f->root, top, DOC_MAX, &doc, e) < 0 ||
	    hypr_oci_kind(doc, NULL, mt, sizeof(mt), e) < 0)
		goto out;
	snprintf(mdig, sizeof(mdig), "%s", top);
	if (hypr_oci_is_index(mt)) {
		if (hypr_oci_select(doc, want, &desc, e) < 0)
			goto out;
		snprintf(mdig, sizeof(mdig), "%s", hypr_json_str(desc, "digest"));
		index = top;
		if (!hypr_blob_has(&f->root, mdig)) {
			r = 0;
			goto out;
		}
		if (stored_size(f, desc, "manifest", e) < 0 ||
		    read_doc(&f->root, mdig, DOC_MAX, &man, e) < 0 ||
		    hypr_oci_kind(man, hypr_json_str(desc, "mediaType"), mt, sizeof(mt), e) < 0)
			goto out;
	} else {
		man = doc;
		doc = NULL;
	}
	if (hypr_oci_check_manifest(man, e) < 0 || check_sizes(f, man, e) < 0)
		goto out;
	r = 0;
	if (!hypr_blob_has(&f->root, hypr_json_str(json_object_get(man, "config"), "digest")))
		goto out;
	json_array_foreach(json_object_get(man, "layers"), i, l)
		if (!hypr_blob_has(&f->root, hypr_json_str(l, "digest")))
			goto out;
	r = -1;
	if (read_doc(&f->root, hypr_json_str(json_object_get(man, "config"), "digest"),
	    HYPR_OCI_CONFIG_MAX, &cfg, e) < 0 ||
	    build_image(ref, index, mdig, mt, man, cfg, image, e) < 0)
		goto out;
	if (check_diff_ids(f, man, cfg, e) < 0) {
		json_decref(*image);
		*image = NULL;
		goto out;
	}
	/* A single-platform image of another platform is refused: BuildKit
	 * warns and builds it under emulation, hypr's build VM runs the
	 * host's architecture only (an index was already chosen from by
	 * platform). */
	if (index == NULL && hypr_json_str(cfg, "os") && hypr_json_str(cfg, "architecture") &&
	    !hypr_platform_match(want, hypr_json_str(cfg, "os"),
	    hypr_json_str(cfg, "architecture"), hypr_json_str(cfg, "variant"))) {
		char w[128];

		hypr_platform_string(want, w, sizeof(w));
		hypr_err_set(e, HYPR_EXIT_INPUT, "base image platform %s/%s%s%s does not "
		    "match the requested %s (cross-platform builds are not supported)",
		    hypr_json_str(cfg, "os"), hypr_json_str(cfg, "architecture"),
		    hypr_json_str(cfg, "variant") ? "/" : "",
		    hypr_json_str(cfg, "variant") ? hypr_json_str(cfg, "variant") : "", w);
		json_decref(*image);
		*image = NULL;
		goto out;
	}
	r = 1;
out:
	json_decref(doc);
	json_decref(man);
	json_decref(cfg);
	return r;
}

struct jobs {
	int quiet;
	uint64_t max_layer;
	struct hypr_registry *g;
	json_t *descs;
	size_t next;
	int failed;
	struct hypr_err err;
	pthread_mutex_t mu;
};

static void *
worker(void *arg)
{
	struct jobs *j = arg;

	for (;;) {
		struct hypr_err e = { 0 };
		json_t *d;
		size_t i;

		pthread_mutex_lock(&j->mu);
		i = j->next++;
		if (j->failed || i >= json_array_size(j->descs)) {
			pthread_mutex_unlock(&j->mu);
			return NULL;
		}
		pthread_mutex_unlock(&j->mu);
		d = json_array_get(j->descs, i);
		if (hypr_registry_blob(j->g, hypr_json_str(d, "digest"),
		    json_integer_value(json_object_get(d, "size")),
		    hypr_json_str(d, "diff_id"), j->max_layer, &e) < 0) {
			pthread_mutex_lock(&j->mu);
			if (!j->failed)
				j->err = e;
			j->failed = 1;
			pthread_mutex_unlock(&j->mu);
			return NULL;
		}
		if (!j->quiet)
			hypr_info("%.19s: pulled (%.1f MB)", hypr_json_str(d, "digest"),
			    (double)json_integer_value(json_object_get(d, "size")) / 1e6);
	}
}

/* Download the blobs of descs the store lacks; a layer's "diff_id" is
 * checked as it streams. */
static int
fetch_blobs(struct fetch *f, struct hypr_registry *g, json_t *descs,
    struct hypr_err *e)
{
	struct jobs j = { .g = g, .descs = descs, .quiet = f->quiet,
		.max_layer = f->max_layer };
	pthread_t th[16];
	int n = f->jobs < 1 ? 1 : f->jobs > 16 ? 16 : f->jobs, started = 0;

	pthread_mutex_init(&j.mu, NULL);
	if ((size_t)n > json_array_size(descs))
		n = (int)json_array_size(descs);
	for (int i = 0; i < n; i++)
		if (pthread_create(&th[i], NULL, worker, &j) == 0)
			started++;
	if (started == 0 && n > 0)
		worker(&j);
	for (int i = 0; i < started; i++)
		pthread_join(th[i], NULL);
	pthread_mutex_destroy(&j.mu);
	if (j.failed) {
		*e = j.err;
		return -1;
	}
	return 0;
}

static int
from_network(struct fetch *f, const struct hypr_ref *r, const char *ref,
    const struct hypr_platform *want, json_t **image, struct hypr_err *e)
{
	struct hypr_registry g;
	char *body = NULL, mt[128], dig[HYPR_DIGEST_LEN + 1], top[HYPR_DIGEST_LEN + 1];
	char stored[HYPR_DIGEST_LEN + 1];
	size_t len;
	json_t *doc = NULL, *desc, *missing = NULL, *l, *cfg = NULL, *diffs;
	size_t i;
	int rc = -1;

	f->networked = 1;
	if (hypr_registry_open(&g, &f->root, r, f->insecure, e) < 0)
		return -1;
	if (hypr_registry_manifest(&g, r->digest[0] ? r->digest : r->tag, &body, &len,
	    mt, sizeof(mt), top, e) < 0)
		goto out;
	if (hypr_blob_put_buf(&f->root, body, len, stored, e) < 0)
		goto out;
	doc = json_loadb(body, len, 0, NULL);
	free(body);
	body = NULL;
	if (!json_is_object(doc)) {
		hypr_err_set(e, HYPR_EXIT_INPUT, "%s: manifest is not a JSON object", g.domain);
		goto out;
	}
	if (hypr_oci_kind(doc, mt, mt, sizeof(mt), e) < 0)
		goto out;
	if (hypr_oci_is_index(mt)) {
		if (hypr_oci_select(doc, want, &desc, e) < 0)
			goto out;
		snprintf(dig, sizeof(dig), "%s", hypr_json_str(desc, "digest"));
		if (!hypr_blob_has(&f->root, dig)) {
			if (hypr_registry_manifest(&g, dig, &body, &len, mt, sizeof(mt), dig, e) < 0)
				goto out;
			if ((json_int_t)len != json_integer_value(json_object_get(desc, "size"))) {
				hypr_err_set(e, HYPR_EXIT_INPUT, "manifest %s: the index gives "
				    "%lld bytes, the registry sent %zu", dig, (long long)
				    json_integer_value(json_object_get(desc, "size")), len);
				goto out;
			}
			if (hypr_blob_put_buf(&f->root, body, len, stored, e) < 0)
				goto out;
			free(body);
			body = NULL;
		}
		json_decref(doc);
		if (read_doc(&f->root, dig, DOC_MAX, &doc, e) < 0)
			goto out;
	}
	if (hypr_oci_check_manifest(doc, e) < 0 || check_sizes(f, doc, e) < 0)
		goto out;
	/* the config first: its diff_ids check each layer as it arrives */
	missing = json_array();
	json_array_append(missing, json_object_get(doc, "config"));
	if (fetch_blobs(f, &g, missing, e) < 0 ||
	    read_doc(&f->root, hypr_json_str(json_object_get(doc, "config"), "digest"),
	    HYPR_OCI_CONFIG_MAX, &cfg, e) < 0)
		goto out;
	diffs = json_object_get(json_object_get(cfg, "rootfs"), "diff_ids");
	if (json_array_size(diffs) != json_array_size(json_object_get(doc, "layers"))) {
		hypr_err_set(e, HYPR_EXIT_INPUT, "image config has %zu diff_ids for %zu layers",
		    json_array_size(diffs), json_array_size(json_object_get(doc, "layers")));
		goto out;
	}
	json_array_clear(missing);
	json_array_foreach(json_object_get(doc, "layers"), i, l) {
		const char *di = json_string_value(json_array_get(diffs, i));

		if (!hypr_digest_valid(di)) {
			hypr_err_set(e, HYPR_EXIT_INPUT, "image config: bad diff_id");
			goto out;
		}
		if (!hypr_blob_has(&f->root, hypr_json_str(l, "digest")))
			json_array_append_new(missing, json_pack("{s:O,s:O,s:s}", "digest",
			    json_object_get(l, "digest"), "size", json_object_get(l, "size"),
			    "diff_id", di));
	}
	if (fetch_blobs(f, &g, missing, e) < 0)
		goto out;
	if ((rc = from_store(f, ref, top, want, image, e)) == 0)
		rc = hypr_err_set(e, HYPR_EXIT_SYSTEM, "blobs vanished from the store");
	/* the tag is recorded only for an image that checked out */
	if (rc == 1 && r->tag[0] && !r->digest[0] &&
	    hypr_tagref_set(&f->root, r, top, mt, e) < 0) {
		json_decref(*image);
		*image = NULL;
		rc = -1;
	}
	snprintf(f->top, sizeof(f->top), "%s", top);
	rc = rc < 0 ? -1 : 0;
out:
	free(body);
	json_decref(doc);
	json_decref(cfg);
	json_decref(missing);
	hypr_registry_close(&g);
	return rc;
}

int
fetch_resolve(struct fetch *f, const char *refstr, const char *platform,
    json_t **image, struct hypr_err *e)
{
	struct hypr_ref r;
	struct hypr_platform want;
	char ref[1024], pstr[128], key[1200], top[HYPR_DIGEST_LEN + 1];
	int k;

	f->top[0] = '\0';
	if (hypr_ref_parse(refstr, &r, e) < 0)
		return -1;
	if (platform && *platform) {
		if (hypr_platform_parse(platform, &want, e) < 0)
			return -1;
	} else {
		hypr_platform_host(&want);
	}
	hypr_ref_string(&r, ref, sizeof(ref));
	hypr_platform_string(&want, pstr, sizeof(pstr));
	snprintf(key, sizeof(key), "%s %s", ref, pstr);
	if (!f->memo)
		f->memo = json_object();
	if ((*image = json_object_get(f->memo, key)) != NULL) {
		json_incref(*image);
		return 0;
	}
	top[0] = '\0';
	if (r.digest[0])
		snprintf(top, sizeof(top), "%s", r.digest);
	else if (f->pull != PULL_ALWAYS && (k = hypr_tagref_get(&f->root, &r, top, e)) < 0)
		return hypr_err_prefix(e, "%s", ref);
	if (top[0] && (f->pull != PULL_ALWAYS || r.digest[0])) {
		k = from_store(f, ref, top, &want, image, e);
		if (k < 0)
			return hypr_err_prefix(e, "%s", ref);
		if (k == 1) {
			snprintf(f->top, sizeof(f->top), "%s", top);
			json_object_set(f->memo, key, *image);
			return 0;
		}
	}
	if (f->pull == PULL_NEVER)
		return hypr_err_set(e, HYPR_EXIT_SYSTEM,
		    "%s: not in the store and --pull=never", ref);
	if (!f->quiet)
		hypr_info("pulling %s (%s)", ref, pstr);
	if (from_network(f, &r, ref, &want, image, e) < 0)
		return hypr_err_prefix(e, "%s", ref);
	json_object_set(f->memo, key, *image);
	return 0;
}
