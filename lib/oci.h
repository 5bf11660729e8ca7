/* oci.h - OCI/Docker manifests and indexes, platform choice, and the
 * tag -> digest records under $HYPR_ROOT/refs/. */
#ifndef HYPR_OCI_H
#define HYPR_OCI_H

#include <stdint.h>
#include <jansson.h>
#include "cas.h"
#include "err.h"
#include "ref.h"

#define HYPR_MT_OCI_INDEX "application/vnd.oci.image.index.v1+json"
#define HYPR_MT_OCI_MANIFEST "application/vnd.oci.image.manifest.v1+json"
#define HYPR_MT_DOCKER_LIST "application/vnd.docker.distribution.manifest.list.v2+json"
#define HYPR_MT_DOCKER_MANIFEST "application/vnd.docker.distribution.manifest.v2+json"

/* The largest image config hypr reads (a manifest giving more is refused
 * before anything is downloaded). */
#define HYPR_OCI_CONFIG_MAX (16u << 20)

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

/* diff_ids: the digest of a layer's uncompressed tar, which an image
 * config lists (rootfs.diff_ids) and which must match its layer blob. The
 * layer is decompressed as Docker does (gzip, zstd, xz, bzip2 or none, by
 * its first bytes); more than max uncompressed bytes, or a stream that does
 * not decompress, is HYPR_EXIT_INPUT. */

/* A diff_id computed on a thread of its own while the blob's bytes are fed
 * to it in order (a download). */
struct hypr_diffid;
int hypr_diffid_start(struct hypr_diffid **d, uint64_t max, struct hypr_err *e);
int hypr_diffid_feed(struct hypr_diffid *d, const void *buf, size_t n,
    struct hypr_err *e);
/* End of the blob: the diff_id into out; frees d. */
int hypr_diffid_finish(struct hypr_diffid *d, char out[HYPR_DIGEST_LEN + 1],
    struct hypr_err *e);
/* Drop d (NULL is fine). */
void hypr_diffid_abort(struct hypr_diffid *d);
/* Record that the stored blob layer decompresses to diff
 * ($HYPR_ROOT/diffids/<hex>, written atomically). */
int hypr_diffid_put(const struct hypr_root *r, const char *layer, const char *diff,
    struct hypr_err *e);
/* The recorded diff_id of the stored blob layer: 1, or 0 when none. */
int hypr_diffid_lookup(const struct hypr_root *r, const char *layer,
    char out[HYPR_DIGEST_LEN + 1]);
/* Decompress the stored blob layer into the blob named by its diff_id,
 * which must be want, or (want NULL) the recorded one; recorded when none.
 * 0 with the diff_id in got (may be NULL); -1 with e: HYPR_EXIT_INPUT when
 * it does not decompress or to other bytes, HYPR_EXIT_SYSTEM (a full
 * disk). */
int hypr_layer_unpack(const struct hypr_root *r, const char *layer, const char *want,
    char got[HYPR_DIGEST_LEN + 1], struct hypr_err *e);
/* An fd (O_CLOEXEC) on the uncompressed tar of the stored blob layer: the
 * blob itself when it is a plain tar, else its unpacked copy, the blob
 * named by its diff_id, made the first time (decompressed once and checked
 * against the recorded diff_id, or recorded). A base layer is then never
 * decompressed again by a flatten, as docker unpacks a pulled layer once.
 * Without the room for the copy, the compressed blob. -1 with e when the
 * blob is missing or decompresses to another diff_id. */
int hypr_layer_open(const struct hypr_root *r, const char *layer, struct hypr_err *e);
/* The diff_id of the stored blob layer: its record, else computed from the
 * blob (a full decompression) and recorded. */
int hypr_diffid_get(const struct hypr_root *r, const char *layer, uint64_t max,
    char out[HYPR_DIGEST_LEN + 1], struct hypr_err *e);

/* The digest a tag was last resolved to: 1 found, 0 none, -1 error. */
int hypr_tagref_get(const struct hypr_root *r, const struct hypr_ref *ref,
    char digest[HYPR_DIGEST_LEN + 1], struct hypr_err *e);
/* Record ref's tag -> digest (atomic). */
int hypr_tagref_set(const struct hypr_root *r, const struct hypr_ref *ref,
    const char *digest, const char *media_type, struct hypr_err *e);
/* Forget ref's tag (and the directories it leaves empty): 1 removed, 0
 * there was none, -1 error. */
int hypr_tagref_del(const struct hypr_root *r, const struct hypr_ref *ref,
    struct hypr_err *e);

#endif
