/* store.h - the image store: images/<hex>.json manifests beside
 * images/<hex>.squashfs, and images/index.json mapping tags to image IDs.
 *
 * An image exists once its manifest is in place (written last, by rename);
 * a squashfs without a manifest is garbage for prune. The index is changed
 * only under an exclusive flock on images/index.lock and rewritten through
 * a temp file and rename, so readers never lock. Tags are stored in the
 * canonical form ("docker.io/library/app:latest") and shown in the familiar
 * one ("app:latest"). See hypr-manifest(5). */
#ifndef HYPR_STORE_H
#define HYPR_STORE_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>
#include "cas.h"
#include "digest.h"
#include "err.h"

struct hypr_image {
	char id[HYPR_DIGEST_LEN + 1];	/* "sha256:<hex>" */
	const char *hex;		/* hypr_digest_hex(id) */
	json_t *m;			/* the manifest, NULL if unreadable */
	const char *problem;		/* NULL, or why the image is broken */
	uint64_t size;			/* squashfs size */
	uint64_t disk;			/* the disk space it takes (allocated) */
	int64_t created;
	json_t *tags;			/* familiar tags, from the index (sorted) */
	/* A base image (hypr_store_open_bases): a tag hypr-fetch keeps under
	 * refs/ (pulled or loaded), no squashfs. Its ID is its config's digest
	 * (docker's image ID); m is shaped as a manifest (hypr-manifest(5))
	 * from the OCI config, with "hypr":"base", "squashfs":null and the
	 * "manifest" (and "index") digest it came from; size is its layers'
	 * (as stored, compressed), disk the space of all its blobs. */
	int base;
	json_t *refs;			/* base: {canonical tag: digest the tag names} */
};

struct hypr_store {
	struct hypr_root root;
	json_t *index;			/* {"hypr":"index","version":1,"tags":{canon:id}} */
	struct hypr_image *img;
	size_t n;
	int lock_fd;
	int bases;			/* list base images too */
	const char *only;		/* hypr_store_open_put's image (borrowed) */
};

/* Open the store (root override may be NULL) and load index and manifests.
 * With lock set, hold the index lock until hypr_store_close. */
int hypr_store_open(struct hypr_store *s, const char *root, int lock,
    struct hypr_err *e);
/* The same, with the base images of refs/ listed as images too (for the
 * image commands: images, inspect, rmi, history, df, prunes). */
int hypr_store_open_bases(struct hypr_store *s, const char *root, int lock,
    struct hypr_err *e);
/* Open for hypr_store_put of image id (locked): only the tagged images
 * and id, if stored, are loaded (a put changes no other; every manifest
 * was O(images) per build: 40-75 ms with 280 dangling images). */
int hypr_store_open_put(struct hypr_store *s, const char *root, const char *id,
    struct hypr_err *e);
void hypr_store_close(struct hypr_store *s);
/* Rewrite the index atomically (caller holds the lock). */
int hypr_store_save_index(struct hypr_store *s, struct hypr_err *e);
/* Canonical tag for a user's NAME[:TAG] (digests refused). */
int hypr_store_canon_tag(const char *name, char *buf, size_t n, struct hypr_err *e);
/* Familiar form of a canonical tag. */
void hypr_store_familiar(const char *canon, char *buf, size_t n);
/* Find an image by tag, full ID or unique ID prefix. *tag gets the canonical
 * tag when IMAGE named one (else ""). Unknown or ambiguous: HYPR_EXIT_INPUT. */
int hypr_store_find(struct hypr_store *s, const char *what, struct hypr_image **img,
    char *tag, size_t tagn, struct hypr_err *e);
/* The image with this ID, or NULL. */
struct hypr_image *hypr_store_get(struct hypr_store *s, const char *id);
/* Build a manifest from an image stream record (with its squashfs); sets
 * its "id". The ID is the digest of the manifest without id, tags and times. */
struct hypr_image_rec;
/* The ID of manifest m: the digest of m without id, tags, created, the
 * history's created and squashfs.file, serialised compactly with sorted keys. */
int hypr_store_id(json_t *m, char id[HYPR_DIGEST_LEN + 1], struct hypr_err *e);
json_t *hypr_store_manifest(const struct hypr_image_rec *rec, struct hypr_err *e);
/* Store an image (locked store): link the squashfs blob to images/<hex>.squashfs,
 * write the manifest (kept if the ID exists), move the tags (canonical) to it. */
int hypr_store_put(struct hypr_store *s, json_t *manifest, const char *const *tags,
    size_t ntags, struct hypr_err *e);
/* Point a canonical tag at an ID (locked store); saves the index. */
int hypr_store_tag(struct hypr_store *s, const char *canon, const char *id,
    struct hypr_err *e);
/* Delete an image (locked store): its tags, manifest and squashfs; its
 * squashfs blob and chain-cache entries too when no other image uses it.
 * A base image: its tags under refs/ (its blobs are left for a prune).
 * *freed (may be NULL) grows by the bytes given back. */
int hypr_store_delete(struct hypr_store *s, struct hypr_image *img, uint64_t *freed,
    struct hypr_err *e);
/* docker's `image inspect` object for an image (hypr(1), INSPECT): Id,
 * RepoTags, RepoDigests, Parent, Comment, Created, Author, Config (docker's
 * names, every key present: null when unset), Architecture, Os, Size,
 * RootFS {Type "layers", Layers: the diff_ids}, Metadata; and the manifest's
 * own fields under "Hypr" (squashfs with its path, base, stage, history,
 * build_args, layers, chain). maps (room for HYPR_STORE_INSPECT_MAPS) gets
 * the objects a template indexes by user keys (labels, ports, volumes,
 * build args); *nmaps their count. NULL when out of memory. */
#define HYPR_STORE_INSPECT_MAPS 4
json_t *hypr_store_inspect(struct hypr_store *s, const struct hypr_image *img,
    json_t **maps, size_t *nmaps);
/* Remove one tag (canonical) of a base image (locked store). */
int hypr_store_untag_base(struct hypr_store *s, const char *canon, struct hypr_err *e);
/* Re-read manifests after changes (keeps the lock). */
int hypr_store_reload(struct hypr_store *s, struct hypr_err *e);

#endif
