/* oci.h - OCI/Docker manifests and indexes, platform choice, and the
 * tag -> digest records under $HYPR_ROOT/refs/. */
#ifndef HYPR_OCI_H
#define HYPR_OCI_H

#include <jansson.h>
#include "cas.h"
#include "err.h"
#include "ref.h"

#define HYPR_MT_OCI_INDEX "application/vnd.oci.image.index.v1+json"
#define HYPR_MT_OCI_MANIFEST "application/vnd.oci.image.manifest.v1+json"
#define HYPR_MT_DOCKER_LIST "application/vnd.docker.distribution.manifest.list.v2+json"
#define HYPR_MT_DOCKER_MANIFEST "application/vnd.docker.distribution.manifest.v2+json"

/* 1 if mt names an index / manifest list; 0 otherwise. */
int hypr_oci_is_index(const char *mt);
/* 1 if mt names an image manifest (OCI or Docker v2s2). */
int hypr_oci_is_manifest(const char *mt);
/* The kind of a parsed document when its media type is absent or generic:
 * fills mt (size n) with an index or manifest type; -1 if neither. */
int hypr_oci_kind(json_t *doc, const char *hint, char *mt, size_t n,
    struct hypr_err *e);
/* Choose the entry of index for platform p, skipping attestations
 * (unknown/unknown); *desc is borrowed from index. Error lists what exists. */
int hypr_oci_select(json_t *index, const struct hypr_platform *p, json_t **desc,
    struct hypr_err *e);
/* Validate an image manifest: schemaVersion 2, config and layer descriptors
 * with well-formed digests and sizes. */
int hypr_oci_check_manifest(json_t *m, struct hypr_err *e);
/* Validate a descriptor (digest, size >= 0). */
int hypr_oci_check_desc(json_t *d, const char *what, struct hypr_err *e);

/* The digest a tag was last resolved to: 1 found, 0 none, -1 error. */
int hypr_tagref_get(const struct hypr_root *r, const struct hypr_ref *ref,
    char digest[HYPR_DIGEST_LEN + 1], struct hypr_err *e);
/* Record ref's tag -> digest (atomic). */
int hypr_tagref_set(const struct hypr_root *r, const struct hypr_ref *ref,
    const char *digest, const char *media_type, struct hypr_err *e);

#endif
