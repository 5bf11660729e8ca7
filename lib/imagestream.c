/* imagestream.c - the hypr-image(5) record, read and written: every field
 * name of the format. See imagestream.h. */
#include "imagestream.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define T_IMAGE "image"
#define F_STAGE "stage"
#define F_ARCHITECTURE "architecture"
#define F_OS "os"
#define F_CREATED "created"
#define F_BASE "base"
#define F_REF "ref"
#define F_DIGEST "digest"
#define F_BUILD_ARGS "build_args"
#define F_LAYERS "layers"
#define F_CHAIN "chain"
#define F_CONFIG "config"
#define F_HISTORY "history"
#define F_CREATED_BY "created_by"
#define F_EMPTY_LAYER "empty_layer"
#define F_SQUASHFS "squashfs"
#define F_SIZE "size"
#define F_COMPRESSION "compression"

int
hypr_image_rec_is(json_t *rec)
{
	const char *t = hypr_rec_type(rec);

	return t && strcmp(t, T_IMAGE) == 0;
}

static int
history_decode(const struct hypr_rec_at *at, json_t *o, struct hypr_image_rec *r,
    struct hypr_err *e)
{
	struct hypr_rec_at hat = *at;
	char prefix[64];
	json_t *a, *x;
	size_t i;

	if (hypr_rec_arr(at, o, F_HISTORY, HYPR_F_NULL, &a, e) < 0)
		return -1;
	if (a == NULL)
		return 0;
	if ((r->history = calloc(json_array_size(a) + 1, sizeof(*r->history))) == NULL)
		return hypr_err_set(e, HYPR_EXIT_SYSTEM, "out of memory");
	hat.prefix = prefix;
	json_array_foreach(a, i, x) {
		struct hypr_image_history *h = &r->history[i];

		snprintf(prefix, sizeof(prefix), F_HISTORY "[%zu]", i);
		if (!json_is_object(x))
			return hypr_rec_err(&hat, "", e, "not an object");
		if (hypr_rec_str(&hat, x, F_CREATED, HYPR_F_NULL, &h->created, e) < 0 ||
		    hypr_rec_str(&hat, x, F_CREATED_BY, HYPR_F_NULL, &h->created_by, e) < 0 ||
		    hypr_rec_bool(&hat, x, F_EMPTY_LAYER, HYPR_F_NULL, &h->empty_layer, e) < 0)
			return -1;
	}
	r->nhistory = json_array_size(a);
	return 0;
}

static int
decode(const struct hypr_rec_at *at, json_t *o, struct hypr_image_rec *r,
    struct hypr_err *e)
{
	struct hypr_rec_at sub = *at;
	json_t *base, *sq;
	json_int_t size = 0;

	if (hypr_rec_str(at, o, F_STAGE, HYPR_F_NULL, &r->stage, e) < 0 ||
	    hypr_rec_str(at, o, F_ARCHITECTURE, HYPR_F_NULL, &r->architecture, e) < 0 ||
	    hypr_rec_str(at, o, F_OS, HYPR_F_NULL, &r->os, e) < 0 ||
	    hypr_rec_str(at, o, F_CREATED, HYPR_F_NULL, &r->created, e) < 0 ||
	    hypr_rec_obj(at, o, F_BASE, HYPR_F_NULL, &base, e) < 0 ||
	    hypr_rec_strmap(at, o, F_BUILD_ARGS, HYPR_F_NULL, &r->build_args, e) < 0 ||
	    hypr_rec_layers(at, o, F_LAYERS, HYPR_F_REQ, &r->layers, &r->nlayers, e) < 0 ||
	    hypr_rec_digest(at, o, F_CHAIN, HYPR_F_NULL, &r->chain, e) < 0 ||
	    hypr_rec_obj(at, o, F_CONFIG, HYPR_F_NULL, &r->config, e) < 0 ||
	    history_decode(at, o, r, e) < 0 ||
	    hypr_rec_obj(at, o, F_SQUASHFS, HYPR_F_NULL, &sq, e) < 0)
		return -1;
	if (base) {
		sub.prefix = F_BASE;
		if (hypr_rec_str(&sub, base, F_REF, HYPR_F_NULL, &r->base_ref, e) < 0 ||
		    hypr_rec_digest(&sub, base, F_DIGEST, HYPR_F_NULL, &r->base_digest, e) < 0)
			return -1;
		r->has_base = 1;
	}
	if (sq) {
		sub.prefix = F_SQUASHFS;
		if (hypr_rec_digest(&sub, sq, F_DIGEST, HYPR_F_REQ, &r->squashfs.digest, e) < 0 ||
		    hypr_rec_int(&sub, sq, F_SIZE, HYPR_F_NULL, 0, INT64_MAX, &size, e) < 0 ||
		    hypr_rec_str(&sub, sq, F_COMPRESSION, HYPR_F_NULL, &r->squashfs.compression,
		    e) < 0)
			return -1;
		r->squashfs.size = size;
		r->has_squashfs = 1;
	}
	return 0;
}

int
hypr_image_rec_decode(json_t *rec, const char *stream, long line,
    struct hypr_image_rec *r, struct hypr_err *e)
{
	struct hypr_rec_at at = { .stream = stream, .line = line, .what = T_IMAGE };

	memset(r, 0, sizeof(*r));
	if (decode(&at, rec, r, e) < 0) {
		hypr_image_rec_free(r);
		return -1;
	}
	r->json = json_incref(rec);
	return 0;
}

void
hypr_image_rec_free(struct hypr_image_rec *r)
{
	free(r->layers);
	free(r->history);
	json_decref(r->json);
	memset(r, 0, sizeof(*r));
}

json_t *
hypr_image_base_json(const struct hypr_image_rec *r)
{
	if (!r->has_base)
		return json_null();
	return json_pack("{s:s?,s:s?}", F_REF, r->base_ref, F_DIGEST, r->base_digest);
}

json_t *
hypr_image_history_json(const struct hypr_image_history *h, size_t n)
{
	json_t *a = json_array();

	for (size_t i = 0; a && i < n; i++) {
		json_t *x = json_pack("{s:s,s:s}", F_CREATED, h[i].created ? h[i].created : "",
		    F_CREATED_BY, h[i].created_by ? h[i].created_by : "");

		if (x && h[i].empty_layer && json_object_set_new(x, F_EMPTY_LAYER,
		    json_true()) < 0) {
			json_decref(x);
			x = NULL;
		}
		if (x == NULL || json_array_append_new(a, x) < 0) {
			json_decref(a);
			return NULL;
		}
	}
	return a;
}

json_t *
hypr_image_rec_json(const struct hypr_image_rec *r)
{
	json_t *base = hypr_image_base_json(r);
	json_t *layers = hypr_layers_json(r->layers, r->nlayers, HYPR_MEDIA_LAYER_TAR);
	json_t *history = hypr_image_history_json(r->history, r->nhistory);

	if (base == NULL || layers == NULL || history == NULL) {
		json_decref(base);
		json_decref(layers);
		json_decref(history);
		return NULL;
	}
	return json_pack("{s:s,s:s?,s:s?,s:s?,s:s?,s:o,s:o,s:o,s:s?,s:o,s:o}",
	    "type", T_IMAGE, F_STAGE, r->stage, F_ARCHITECTURE, r->architecture,
	    F_OS, r->os, F_CREATED, r->created, F_BASE, base, F_BUILD_ARGS,
	    r->build_args ? json_incref(r->build_args) : json_object(),
	    F_LAYERS, layers, F_CHAIN, r->chain,
	    F_CONFIG, r->config ? json_incref(r->config) : json_object(),
	    F_HISTORY, history);
}

int
hypr_image_rec_set_squashfs(json_t *rec, const struct hypr_image_squashfs *sq,
    struct hypr_err *e)
{
	json_t *o = json_pack("{s:s, s:I, s:s}", F_DIGEST, sq->digest, F_SIZE,
	    (json_int_t)sq->size, F_COMPRESSION, sq->compression ? sq->compression : "zstd");

	if (o == NULL || json_object_set_new(rec, F_SQUASHFS, o) < 0)
		return hypr_err_set(e, HYPR_EXIT_SYSTEM, "out of memory");
	return 0;
}
