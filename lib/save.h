/* save.h - stored images out as one tar, as `docker save` writes it
 * (docker-archive: manifest.json, the OCI config and uncompressed layer
 * tars under blobs/sha256/) or as an OCI image layout (oci-layout,
 * index.json, blobs/sha256/ with the layers as stored, and docker's
 * manifest.json naming them, as docker 25 writes it). Each image's
 * config is the one push sends (hypr_push_config), so a saved image
 * loaded elsewhere has the diff_ids, config and history it would have had
 * pulled. Every blob is written once, in the order first named; every
 * member is a regular file owned by 0:0, mode 0644, its mtime
 * SOURCE_DATE_EPOCH (else 0): the same images give the same bytes. */
#ifndef HYPR_SAVE_H
#define HYPR_SAVE_H

#include <stddef.h>
#include <jansson.h>
#include "cas.h"
#include "err.h"

enum hypr_save_format { HYPR_SAVE_DOCKER, HYPR_SAVE_OCI };

struct hypr_save_image {
	json_t *m;		/* the stored manifest (hypr-manifest(5)) */
	const char *tag;	/* canonical "domain/path:tag", or NULL */
};

/* Write the n images as one tar of format fmt to fd. A compressed layer
 * goes into a docker-archive decompressed (gzip, zstd, xz or bzip2, by its
 * first bytes) and checked against its diff_id. */
int hypr_save_write(const struct hypr_root *root, const struct hypr_save_image *im,
    size_t n, enum hypr_save_format fmt, int fd, struct hypr_err *e);

#endif
