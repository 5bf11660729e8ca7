/* push.h - a stored image out to a registry: its OCI image config (also
 * what `hypr history` reads), its layers gzip'd, the OCI manifest, and its
 * squashfs as an OCI artifact referring to that manifest (hypr-artifact(5)).
 *
 * Every blob is HEAD'ed first and skipped when the registry has it; a
 * layer pulled from another repository of the same registry is mounted
 * from there (POST ?mount=&from=); a blob up to HYPR_PUSH_CHUNK bytes
 * (default 64 MiB) is one POST and one PUT ?digest=, a larger one goes in
 * PATCH chunks of that size. The registry's Docker-Content-Digest and an
 * upload's Range must be what was sent. A dropped chunk resumes where the
 * upload's status (GET, Range) says, or a new upload starts when the
 * registry forgot it; a lost PUT answer is settled by a HEAD. The squashfs
 * and the layers go up HYPR_PUSH_JOBS (default 3) at a time. A layer stored as a plain tar is
 * compressed by gzip.h on every core (the same digest every time) and
 * $HYPR_ROOT/pushed/<hex of the tar> remembers the result's digest and
 * size, so a later push whose registry has it compresses nothing. */
#ifndef HYPR_PUSH_H
#define HYPR_PUSH_H

#include <stdint.h>
#include <stdio.h>
#include <jansson.h>
#include "cas.h"
#include "digest.h"
#include "err.h"

#define HYPR_ARTIFACT_TYPE "application/vnd.hypr.squashfs.v1"
#define HYPR_MANIFEST_TYPE "application/vnd.hypr.manifest.v1+json"
#define HYPR_PUSH_CHUNK_DEFAULT (64u << 20)

/* The OCI image config of a stored manifest (hypr-manifest(5)): created,
 * architecture, os, config, rootfs.diff_ids and history. A base image's
 * layers that the manifest's history does not cover get one entry each
 * ("created_by": the base reference, "comment": "base layer"), so the
 * history's non-empty entries match the layers one for one. New reference. */
json_t *hypr_push_config(json_t *m, struct hypr_err *e);

struct hypr_push_result {
	char digest[HYPR_DIGEST_LEN + 1];	/* the image manifest's */
	uint64_t size;
	char artifact[HYPR_DIGEST_LEN + 1];	/* the squashfs artifact's */
	unsigned pushed, skipped, mounted;	/* blobs */
};

/* Push the stored image m as canon ("domain/path:tag"), with its squashfs
 * artifact unless artifact is 0 (the OCI image alone, as docker push).
 * Progress lines go to progress (may be NULL). insecure: as
 * hypr_registry_open. */
int hypr_push_image(const struct hypr_root *root, json_t *m, const char *canon,
    const char *insecure, int artifact, FILE *progress, struct hypr_push_result *res,
    struct hypr_err *e);

/* Push an OCI artifact as canon ("domain/path:tag"): each of layers (OCI
 * descriptors of blobs in the store: HEAD, else upload), the config bytes
 * (of media type config_mt), then an image manifest with artifact_type,
 * under the tag. res->digest and res->size get the manifest's. */
int hypr_push_oci_artifact(const struct hypr_root *root, const char *canon,
    const char *insecure, FILE *progress, const char *artifact_type, const char *config,
    const char *config_mt, json_t *layers, struct hypr_push_result *res,
    struct hypr_err *e);

#endif
