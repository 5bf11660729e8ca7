/* record.h - what the stream decoders share (plan.h, steps.h,
 * imagestream.h): a record's fields read once, by type, with one error line
 * naming the stream, the line, the record and the field
 * ("resolved:4: instr record: op: missing"); and the layer object that
 * three formats carry.
 *
 * A decoded record borrows its strings from its JSON object, which it
 * keeps (one reference) until it is freed; a struct hypr_layer is a value
 * and copies freely. */
#ifndef HYPR_RECORD_H
#define HYPR_RECORD_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>
#include "digest.h"
#include "err.h"

/* Where a field is, for messages. */
struct hypr_rec_at {
	const char *stream;	/* the stream's name: "resolved", "steps", "image" */
	long line;		/* its line, 0 for none */
	const char *what;	/* the record type: "stage", "instr", ... */
	const char *prefix;	/* the object the field is in ("image.layers[2]"), or NULL */
};

/* How a field may be: absent (its out value untouched), present, null. */
#define HYPR_F_REQ 1		/* must be present */
#define HYPR_F_NULL 2		/* null is allowed and reads as absent */

/* A string field; *out NULL when absent or null. */
int hypr_rec_str(const struct hypr_rec_at *at, json_t *o, const char *key, int flags,
    const char **out, struct hypr_err *e);
/* A string that is a digest ("sha256:<64 hex>"). */
int hypr_rec_digest(const struct hypr_rec_at *at, json_t *o, const char *key, int flags,
    const char **out, struct hypr_err *e);
/* An integer field within [min, max]. */
int hypr_rec_int(const struct hypr_rec_at *at, json_t *o, const char *key, int flags,
    json_int_t min, json_int_t max, json_int_t *out, struct hypr_err *e);
/* A boolean field (0 or 1). */
int hypr_rec_bool(const struct hypr_rec_at *at, json_t *o, const char *key, int flags,
    int *out, struct hypr_err *e);
/* An object field (borrowed). */
int hypr_rec_obj(const struct hypr_rec_at *at, json_t *o, const char *key, int flags,
    json_t **out, struct hypr_err *e);
/* An array field (borrowed). */
int hypr_rec_arr(const struct hypr_rec_at *at, json_t *o, const char *key, int flags,
    json_t **out, struct hypr_err *e);
/* An array of strings: *out a new NULL-terminated vector of borrowed
 * strings (free() it), *n its length; absent: *out NULL, *n 0. */
int hypr_rec_strv(const struct hypr_rec_at *at, json_t *o, const char *key, int flags,
    const char ***out, size_t *n, struct hypr_err *e);
/* An object whose values are all strings (build arguments, labels). */
int hypr_rec_strmap(const struct hypr_rec_at *at, json_t *o, const char *key, int flags,
    json_t **out, struct hypr_err *e);
/* A [first, last] line range. */
int hypr_rec_lines(const struct hypr_rec_at *at, json_t *o, const char *key, int flags,
    long line[2], struct hypr_err *e);
/* An error about a field that is there but wrong: "...: key: why". */
int hypr_rec_err(const struct hypr_rec_at *at, const char *key, struct hypr_err *e,
    const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* The record type of a stream record ("type"), or NULL. */
const char *hypr_rec_type(json_t *rec);
/* Add "type": type to a new record (the first field writers put). */
json_t *hypr_rec_new(const char *type);

/* A layer object {"digest","diff_id","size","media_type"} (hypr-steps(5),
 * hypr-image(5)); the resolved plan's {"digest","size","media_type"} with
 * the diff_id from its "diff_ids". */
#define HYPR_MEDIA_TYPE_MAX 256
#define HYPR_MEDIA_LAYER_TAR "application/vnd.oci.image.layer.v1.tar"
#define HYPR_MEDIA_LAYER_GZIP "application/vnd.oci.image.layer.v1.tar+gzip"
struct hypr_layer {
	char digest[HYPR_DIGEST_LEN + 1];
	char diff_id[HYPR_DIGEST_LEN + 1];	/* "" when not given */
	int64_t size;
	char media_type[HYPR_MEDIA_TYPE_MAX];	/* "" when not given */
};
/* Decode a layer object at->prefix names; digest is required, diff_id
 * (when given) must be a digest. */
int hypr_layer_decode(const struct hypr_rec_at *at, json_t *o, struct hypr_layer *l,
    struct hypr_err *e);
/* Fill l with a digest and size (diff_id the digest: an uncompressed tar). */
void hypr_layer_set(struct hypr_layer *l, const char *digest, int64_t size,
    const char *media_type);
/* The four-field object; a missing diff_id is the digest, a missing
 * media_type dflt_mt. NULL when out of memory. */
json_t *hypr_layer_json(const struct hypr_layer *l, const char *dflt_mt);

/* A growing list of layers (a stage's chain). */
struct hypr_layers {
	struct hypr_layer *v;
	size_t n, cap;
};
int hypr_layers_add(struct hypr_layers *ls, const struct hypr_layer *l, struct hypr_err *e);
int hypr_layers_copy(struct hypr_layers *dst, const struct hypr_layers *src,
    struct hypr_err *e);
void hypr_layers_free(struct hypr_layers *ls);
/* The digests, as a NULL-terminated vector (free() it), or NULL when out of memory. */
const char **hypr_layers_digests(const struct hypr_layer *v, size_t n);
/* The array of four-field objects. */
json_t *hypr_layers_json(const struct hypr_layer *v, size_t n, const char *dflt_mt);
/* An array field of layer objects: *v a new array (free() it), *n its length. */
int hypr_rec_layers(const struct hypr_rec_at *at, json_t *o, const char *key, int flags,
    struct hypr_layer **v, size_t *n, struct hypr_err *e);

#endif
