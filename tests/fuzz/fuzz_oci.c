/* libFuzzer target: OCI and Docker manifests and indexes (lib/oci.c) as
 * hypr-fetch reads them from a registry or a layout. Beyond "no crash", it
 * checks what hypr-fetch relies on after each check:
 * - a refused document is bad input;
 * - a manifest that passes hypr_oci_check_manifest has a config and layers
 *   whose digests are valid and sizes non-negative integers;
 * - the entry hypr_oci_select picks is a valid descriptor whose platform
 *   matches, and never an attestation. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include "oci.h"
#include "stream.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_desc_ok(json_t *d)
{
	json_t *sz = json_object_get(d, "size");

	if (!hypr_digest_valid(hypr_json_str(d, "digest")) || !json_is_integer(sz) ||
	    json_integer_value(sz) < 0)
		__builtin_trap();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const hints[] = { NULL, "", HYPR_MT_OCI_INDEX,
		HYPR_MT_DOCKER_MANIFEST, "text/plain" };
	static const char *const plats[] = { "linux/amd64", "linux/arm64", "linux/arm/v7",
		"windows/amd64" };
	struct hypr_err e = { 0 };
	json_t *doc = json_loadb((const char *)data, size, 0, NULL), *l;
	char mt[128];
	size_t i;

	if (doc == NULL)
		return 0;
	for (i = 0; i < sizeof(hints) / sizeof(hints[0]); i++) {
		if (hypr_oci_kind(doc, hints[i], mt, sizeof(mt), &e) < 0) {
			if (e.code != HYPR_EXIT_INPUT)
				__builtin_trap();
			continue;
		}
		if (!hypr_oci_is_index(mt) && !hypr_oci_is_manifest(mt))
			__builtin_trap();
	}
	if (hypr_oci_check_manifest(doc, &e) == 0) {
		check_desc_ok(json_object_get(doc, "config"));
		json_array_foreach(json_object_get(doc, "layers"), i, l)
			check_desc_ok(l);
	} else if (e.code != HYPR_EXIT_INPUT) {
		__builtin_trap();
	}
	for (i = 0; i < sizeof(plats) / sizeof(plats[0]); i++) {
		struct hypr_platform p;
		json_t *d = NULL, *pl;
		const char *t;

		if (hypr_platform_parse(plats[i], &p, &e) < 0)
			__builtin_trap();
		if (hypr_oci_select(doc, &p, &d, &e) < 0) {
			if (e.code != HYPR_EXIT_INPUT)
				__builtin_trap();
			continue;
		}
		check_desc_ok(d);
		pl = json_object_get(d, "platform");
		if (!hypr_platform_match(&p, hypr_json_str(pl, "os"),
		    hypr_json_str(pl, "architecture"), hypr_json_str(pl, "variant")))
			__builtin_trap();
		t = hypr_json_str(json_object_get(d, "annotations"), "vnd.docker.reference.type");
		if (t && !strcmp(t, "attestation-manifest"))
			__builtin_trap();
	}
	json_decref(doc);
	return 0;
}
