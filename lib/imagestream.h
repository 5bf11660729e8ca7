/* imagestream.h - the image stream (hypr-image(5)) as a typed record, for
 * its writer (hypr-layer), the stage that adds the squashfs (hypr-squash)
 * and its reader (hypr-store): every field name in imagestream.c alone.
 * A decoded record borrows its strings from its JSON object (.json, one
 * reference held); free it with hypr_image_rec_free. The OCI config and
 * the build arguments stay JSON: they are free-form. */
#ifndef HYPR_IMAGESTREAM_H
#define HYPR_IMAGESTREAM_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>
#include "err.h"
#include "record.h"
#include "stream.h"

#define HYPR_IMAGE_VERSION 1

struct hypr_image_history {
	const char *created;	/* NULL when not given */
	const char *created_by;	/* NULL when not given */
	int empty_layer;
};

struct hypr_image_squashfs {
	const char *digest;
	int64_t size;
	const char *compression;	/* NULL when not given */
};

struct hypr_image_rec {
	const char *stage;	/* the final stage's name, or NULL */
	const char *architecture, *os, *created;	/* NULL when not given */
	int has_base;		/* base is set (else null: scratch) */
	const char *base_ref, *base_digest;	/* either may be NULL */
	json_t *build_args;	/* object of strings, or NULL */
	struct hypr_layer *layers;
	size_t nlayers;
	const char *chain;	/* NULL when not given */
	json_t *config;		/* the OCI config object, or NULL */
	struct hypr_image_history *history;
	size_t nhistory;
	int has_squashfs;	/* added by hypr-squash */
	struct hypr_image_squashfs squashfs;
	json_t *json;
};

/* Whether rec is an image record (the only type this version has). */
int hypr_image_rec_is(json_t *rec);
/* Decode an image record (a new reference to rec is kept). */
int hypr_image_rec_decode(json_t *rec, const char *stream, long line,
    struct hypr_image_rec *r, struct hypr_err *e);
void hypr_image_rec_free(struct hypr_image_rec *r);

/* The record hypr-layer writes (new reference; has_squashfs ignored).
 * Missing layer diff_ids are their digests, media types the tar's. */
json_t *hypr_image_rec_json(const struct hypr_image_rec *r);
/* Add the squashfs to a record as read (what hypr-squash does: the rest
 * passes on untouched). */
int hypr_image_rec_set_squashfs(json_t *rec, const struct hypr_image_squashfs *sq,
    struct hypr_err *e);
/* The base object or null, and the history array (the manifest copies them). */
json_t *hypr_image_base_json(const struct hypr_image_rec *r);
json_t *hypr_image_history_json(const struct hypr_image_history *h, size_t n);

#endif
