#include "oci.h"

#include <stdio.h>
#include <string.h>
#include <time.h>
#include <stdlib.h>
#include <unistd.h>

#include "fsutil.h"
#include "stream.h"

int
hypr_oci_is_index(const char *mt)
{
	return mt && (!strcmp(mt, HYPR_MT_OCI_INDEX) || !strcmp(mt, HYPR_MT_DOCKER_LIST));
}

int
hypr_oci_is_manifest(const char *mt)
{
	return mt && (!strcmp(mt, HYPR_MT_OCI_MANIFEST) ||
	    !strcmp(mt, HYPR_MT_DOCKER_MANIFEST));
}

int
hypr_oci_kind(json_t *doc, const char *hint, char *mt, size_t n, struct hypr_err *e)
{
	const char *m = hypr_json_str(doc, "mediaType");

	if (hypr_oci_is_index(hint) || hypr_oci_is_manifest(hint)) {
		if (hint != mt)
			snprintf(mt, n, "%s", hint);
		return 0;
	}
	if (hypr_oci_is_index(m) || hypr_oci_is_manifest(m)) {
		snprintf(mt, n, "%s", m);
		return 0;
	}
	if (hypr_json_int(doc, "schemaVersion", 0) == 1)
		return hypr_err_set(e, HYPR_EXIT_INPUT,
		    "Docker schema 1 manifests are not supported");
	if (json_is_array(json_object_get(doc, "manifests"))) {
		snprintf(mt, n, "%s", HYPR_MT_OCI_INDEX);
		return 0;
	}
	if (json_is_object(json_object_get(doc, "config")) &&
	    json_is_array(json_object_get(doc, "layers"))) {
		snprintf(mt, n, "%s", HYPR_MT_OCI_MANIFEST);
		return 0;
	}
	return hypr_err_set(e, HYPR_EXIT_INPUT, "not an image manifest or index (%s)",
	    m ? m : hint && *hint ? hint : "no media type");
}

int
hypr_oci_check_desc(json_t *d, const char *what, struct hypr_err *e)
{
	json_t *sz = json_object_get(d, "size");

	if (!json_is_object(d) || !hypr_digest_valid(hypr_json_str(d, "digest")))
		return hypr_err_set(e, HYPR_EXIT_INPUT, "%s: missing or bad digest", what);
	if (!json_is_integer(sz) || json_integer_value(sz) < 0)
		return hypr_err_set(e, HYPR_EXIT_INPUT, "%s: missing or bad size", what);
	return 0;
}

int
hypr_oci_select(json_t *index, const struct hypr_platform *p, json_t **desc,
    struct hypr_err *e)
{
	json_t *ms = json_object_get(index, "manifests"), *d;
	char have[512] = "", want[128];
	size_t i, k = 0;

	if (!json_is_array(ms))
		return hypr_err_set(e, HYPR_EXIT_INPUT, "index without \"manifests\"");
	json_array_foreach(ms, i, d) {
		json_t *pl = json_object_get(d, "platform");
		const char *os = hypr_json_str(pl, "os"), *arch = hypr_json_str(pl, "architecture");
		const char *ref_type = hypr_json_str(json_object_get(d, "annotations"),
		    "vnd.docker.reference.type");

		if ((ref_type && !strcmp(ref_type, "attestation-manifest")) ||
		    (os && arch && !strcmp(os, "unknown") && !strcmp(arch, "unknown")))
			continue;
		if (hypr_platform_match(p, os, arch, hypr_json_str(pl, "variant"))) {
			if (hypr_oci_check_desc(d, "index entry", e) < 0)
				return -1;
			*desc = d;
			return 0;
		}
		if (os && arch && k + strlen(os) + strlen(arch) + 4 < sizeof(have))
			k += (size_t)snprintf(have + k, sizeof(have) - k, "%s%s/%s%s%s",
			    k ? ", " : "", os, arch,
			    hypr_json_str(pl, "variant") ? "/" : "",
			    hypr_json_str(pl, "variant") ? hypr_json_str(pl, "variant") : "");
	}
	hypr_platform_string(p, want, sizeof(want));
	return hypr_err_set(e, HYPR_EXIT_INPUT, "no image for platform %s (index has: %s)",
	    want, k ? have : "none");
}

int
hypr_oci_check_manifest(json_t *m, struct hypr_err *e)
{
	json_t *layers = json_object_get(m, "layers"), *l;
	size_t i;

	if (hypr_json_int(m, "schemaVersion", 0) != 2)
		return hypr_err_set(e, HYPR_EXIT_INPUT, "manifest: schemaVersion is not 2");
	if (hypr_oci_check_desc(json_object_get(m, "config"), "manifest config", e) < 0)
		return -1;
	if (!json_is_array(layers))
		return hypr_err_set(e, HYPR_EXIT_INPUT, "manifest: no \"layers\" array");
	json_array_foreach(layers, i, l) {
		if (hypr_oci_check_desc(l, "manifest layer", e) < 0)
			return -1;
	}
	return 0;
}

/* refs/<domain>/<path>/_tags/<tag>: "_tags" cannot be a path component
 * (components start with [a-z0-9]) and tags cannot start with '.'. */
static int
tagref_path(const struct hypr_root *r, const struct hypr_ref *ref, char *buf,
    size_t n, struct hypr_err *e)
{
	if (!ref->tag[0] || ref->tag[0] == '.' || strstr(ref->domain, ".."))
		return hypr_err_set(e, HYPR_EXIT_INPUT, "reference has no usable tag");
	if (hypr_root_path(r, buf, n, "refs/%s/%s/_tags/%s", ref->domain, ref->path,
	    ref->tag) < 0)
		return hypr_err_set(e, HYPR_EXIT_SYSTEM, "store path too long");
	return 0;
}

int
hypr_tagref_get(const struct hypr_root *r, const struct hypr_ref *ref,
    char digest[HYPR_DIGEST_LEN + 1], struct hypr_err *e)
{
	char path[4400], *buf = NULL;
	size_t len;
	json_t *j;
	const char *d;

	if (tagref_path(r, ref, path, sizeof(path), e) < 0)
		return -1;
	if (access(path, F_OK) != 0)
		return 0;
	if (hypr_read_file(path, 1 << 16, &buf, &len, e) < 0)
		return -1;
	j = json_loadb(buf, len, 0, NULL);
	free(buf);
	d = hypr_json_str(j, "digest");
	if (!hypr_digest_valid(d)) {
		json_decref(j);
		return 0;	/* a damaged record is a cache miss */
	}
	snprintf(digest, HYPR_DIGEST_LEN + 1, "%s", d);
	json_decref(j);
	return 1;
}

int
hypr_tagref_set(const struct hypr_root *r, const struct hypr_ref *ref,
    const char *digest, const char *media_type, struct hypr_err *e)
{
	char path[4400], name[600], *s, *slash;
	json_t *j;
	int rc;

	if (tagref_path(r, ref, path, sizeof(path), e) < 0)
		return -1;
	slash = strrchr(path, '/');
	*slash = '\0';
	if (hypr_mkdir_p(path, 0755, e) < 0)
		return -1;
	*slash = '/';
	hypr_ref_name(ref, name, sizeof(name));
	j = json_pack("{s:s,s:s,s:s,s:s,s:I}", "name", name, "tag", ref->tag,
	    "digest", digest, "media_type", media_type ? media_type : "",
	    "time", (json_int_t)time(NULL));
	s = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	if (!s)
		return hypr_err_set(e, HYPR_EXIT_SYSTEM, "out of memory");
	rc = hypr_write_atomic(path, s, strlen(s), 0644, e);
	free(s);
	return rc;
}
