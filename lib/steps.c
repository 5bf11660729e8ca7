/* steps.c - hypr-steps(5) records, read and written: every field name of
 * the format. See steps.h. */
#include "steps.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#define F_CONTEXT "context"
#define F_DOCKERFILE "dockerfile"
#define F_TARGET "target"
#define F_PLATFORM "platform"
#define F_BUILD_ARGS "build_args"
#define F_INDEX "index"
#define F_NAME "name"
#define F_FINAL "final"
#define F_BASE "base"
#define F_REF "ref"
#define F_DIGEST "digest"
#define F_BASE_LAYERS "base_layers"
#define F_CONFIG "config"
#define F_STAGE "stage"
#define F_N "n"
#define F_LINE "line"
#define F_OP "op"
#define F_CREATED_BY "created_by"
#define F_KEY "key"
#define F_CACHED "cached"
#define F_LAYER "layer"
#define F_EMPTY_LAYER "empty_layer"
#define F_AUTHOR "author"
#define F_VM_BOOTS "vm_boots"
#define T_STAGE "stage"
#define T_STEP "step"

int
hypr_steps_header(const struct hypr_stream_in *s, struct hypr_steps_header *h,
    struct hypr_err *e)
{
	struct hypr_rec_at at = { .stream = s->name, .line = 1, .what = "header" };
	json_t *ba = NULL;

	memset(h, 0, sizeof(*h));
	if (hypr_rec_str(&at, s->header, F_CONTEXT, HYPR_F_NULL, &h->context, e) < 0 ||
	    hypr_rec_str(&at, s->header, F_DOCKERFILE, HYPR_F_NULL, &h->dockerfile, e) < 0 ||
	    hypr_rec_str(&at, s->header, F_TARGET, HYPR_F_NULL, &h->target, e) < 0 ||
	    hypr_rec_str(&at, s->header, F_PLATFORM, HYPR_F_NULL, &h->platform, e) < 0 ||
	    hypr_rec_strmap(&at, s->header, F_BUILD_ARGS, HYPR_F_NULL, &ba, e) < 0)
		return -1;
	h->build_args = ba ? json_incref(ba) : json_object();
	h->json = json_incref(s->header);
	if (h->build_args == NULL)
		return hypr_err_set(e, HYPR_EXIT_SYSTEM, "out of memory");
	return 0;
}

void
hypr_steps_header_free(struct hypr_steps_header *h)
{
	json_decref(h->build_args);
	json_decref(h->json);
	memset(h, 0, sizeof(*h));
}

static int
int_field(const struct hypr_rec_at *at, json_t *o, const char *key, int flags,
    int *out, struct hypr_err *e)
{
	json_int_t v = *out;

	if (hypr_rec_int(at, o, key, flags, 0, INT_MAX, &v, e) < 0)
		return -1;
	*out = (int)v;
	return 0;
}

static int
stage_decode(const struct hypr_rec_at *at, json_t *o, struct hypr_steps_stage *st,
    struct hypr_err *e)
{
	struct hypr_rec_at bat = *at;
	json_t *base;

	if (int_field(at, o, F_INDEX, HYPR_F_REQ, &st->index, e) < 0 ||
	    hypr_rec_str(at, o, F_NAME, HYPR_F_NULL, &st->name, e) < 0 ||
	    hypr_rec_bool(at, o, F_FINAL, HYPR_F_NULL, &st->final, e) < 0 ||
	    hypr_rec_obj(at, o, F_BASE, HYPR_F_NULL, &base, e) < 0 ||
	    hypr_rec_str(at, o, F_PLATFORM, HYPR_F_NULL, &st->platform, e) < 0 ||
	    hypr_rec_obj(at, o, F_CONFIG, HYPR_F_NULL, &st->config, e) < 0 ||
	    hypr_rec_layers(at, o, F_BASE_LAYERS, HYPR_F_NULL, &st->base_layers,
	    &st->nbase_layers, e) < 0)
		return -1;
	if (base) {
		bat.prefix = F_BASE;
		if (hypr_rec_str(&bat, base, F_REF, HYPR_F_NULL, &st->base.ref, e) < 0 ||
		    hypr_rec_digest(&bat, base, F_DIGEST, HYPR_F_NULL, &st->base.digest, e) < 0) {
			free(st->base_layers);
			return -1;
		}
		st->has_base = 1;
	}
	st->json = json_incref(o);
	return 0;
}

static int
step_decode(const struct hypr_rec_at *at, json_t *o, struct hypr_steps_step *s,
    struct hypr_err *e)
{
	struct hypr_rec_at lat = *at;
	json_t *layer;

	if (int_field(at, o, F_STAGE, HYPR_F_REQ, &s->stage, e) < 0 ||
	    int_field(at, o, F_N, HYPR_F_REQ, &s->n, e) < 0 ||
	    hypr_rec_lines(at, o, F_LINE, HYPR_F_NULL, s->line, e) < 0 ||
	    hypr_rec_str(at, o, F_OP, HYPR_F_REQ, &s->op, e) < 0 ||
	    hypr_rec_str(at, o, F_CREATED_BY, HYPR_F_NULL, &s->created_by, e) < 0 ||
	    hypr_rec_digest(at, o, F_KEY, HYPR_F_REQ, &s->key, e) < 0 ||
	    hypr_rec_bool(at, o, F_CACHED, HYPR_F_NULL, &s->cached, e) < 0 ||
	    hypr_rec_obj(at, o, F_LAYER, HYPR_F_NULL, &layer, e) < 0 ||
	    hypr_rec_obj(at, o, F_CONFIG, HYPR_F_NULL, &s->config, e) < 0 ||
	    hypr_rec_str(at, o, F_AUTHOR, HYPR_F_NULL, &s->author, e) < 0)
		return -1;
	lat.prefix = F_LAYER;
	if (layer && hypr_layer_decode(&lat, layer, &s->layer, e) < 0)
		return -1;
	s->has_layer = layer != NULL;
	s->json = json_incref(o);
	return 0;
}

int
hypr_steps_decode(json_t *rec, const char *stream, long line, struct hypr_steps_rec *r,
    struct hypr_err *e)
{
	struct hypr_rec_at at = { .stream = stream, .line = line };
	const char *type = hypr_rec_type(rec);
	int rc = 0;

	memset(r, 0, sizeof(*r));
	at.what = type;
	if (type && strcmp(type, T_STAGE) == 0) {
		r->kind = HYPR_STEPS_STAGE;
		rc = stage_decode(&at, rec, &r->u.stage, e);
	} else if (type && strcmp(type, T_STEP) == 0) {
		r->kind = HYPR_STEPS_STEP;
		rc = step_decode(&at, rec, &r->u.step, e);
	}
	if (rc < 0) {
		memset(r, 0, sizeof(*r));
		return -1;
	}
	r->json = json_incref(rec);
	return 0;
}

int
hypr_steps_next(struct hypr_stream_in *s, struct hypr_steps_rec *r, struct hypr_err *e)
{
	json_t *rec;
	int k;

	memset(r, 0, sizeof(*r));
	if ((k = hypr_stream_next(s, &rec, e)) <= 0)
		return k;
	k = hypr_steps_decode(rec, s->name, s->line, r, e);
	json_decref(rec);
	return k < 0 ? -1 : 1;
}

void
hypr_steps_rec_free(struct hypr_steps_rec *r)
{
	if (r->kind == HYPR_STEPS_STAGE) {
		free(r->u.stage.base_layers);
		json_decref(r->u.stage.json);
	} else if (r->kind == HYPR_STEPS_STEP) {
		json_decref(r->u.step.json);
	}
	json_decref(r->json);
	memset(r, 0, sizeof(*r));
}

/* ---- writing ---- */

static int
put(struct hypr_stream_out *o, json_t *rec, struct hypr_err *e)
{
	int r;

	if (rec == NULL)
		return hypr_err_set(e, HYPR_EXIT_SYSTEM, "out of memory");
	r = hypr_stream_put(o, rec, e);
	json_decref(rec);
	return r;
}

int
hypr_steps_begin(struct hypr_stream_out *o, FILE *f, const struct hypr_steps_header *h,
    struct hypr_err *e)
{
	json_t *hdr = json_pack("{s:s?,s:s?,s:s?,s:o}", F_CONTEXT, h->context,
	    F_DOCKERFILE, h->dockerfile, F_TARGET, h->target, F_BUILD_ARGS,
	    h->build_args ? json_incref(h->build_args) : json_object());
	int r;

	if (hdr == NULL)
		return hypr_err_set(e, HYPR_EXIT_SYSTEM, "out of memory");
	if (h->platform && json_object_set_new(hdr, F_PLATFORM, json_string(h->platform)) < 0) {
		json_decref(hdr);
		return hypr_err_set(e, HYPR_EXIT_SYSTEM, "out of memory");
	}
	r = hypr_stream_begin(o, f, "steps", HYPR_STEPS_VERSION, hdr, e);
	json_decref(hdr);
	return r;
}

int
hypr_steps_put_stage(struct hypr_stream_out *o, const struct hypr_steps_stage *st,
    struct hypr_err *e)
{
	json_t *base = st->has_base ? json_pack("{s:s?,s:s?}", F_REF, st->base.ref,
	    F_DIGEST, st->base.digest) : json_null();
	json_t *layers = hypr_layers_json(st->base_layers, st->nbase_layers,
	    HYPR_MEDIA_LAYER_TAR);

	return put(o, base && layers ? json_pack("{s:s,s:i,s:s?,s:b,s:o,s:o,s:o}",
	    "type", T_STAGE, F_INDEX, st->index, F_NAME, st->name, F_FINAL, st->final,
	    F_BASE, base, F_BASE_LAYERS, layers, F_CONFIG,
	    st->config ? json_incref(st->config) : json_object()) : NULL, e);
}

int
hypr_steps_put_step(struct hypr_stream_out *o, const struct hypr_steps_step *s,
    struct hypr_err *e)
{
	json_t *layer = s->has_layer ? hypr_layer_json(&s->layer, HYPR_MEDIA_LAYER_TAR) :
	    json_null();
	json_t *rec = layer ? json_pack("{s:s,s:i,s:i,s:[I,I],s:s,s:s,s:s,s:b,s:o,s:b}",
	    "type", T_STEP, F_STAGE, s->stage, F_N, s->n, F_LINE, (json_int_t)s->line[0],
	    (json_int_t)s->line[1], F_OP, s->op, F_CREATED_BY, s->created_by ? s->created_by :
	    s->op, F_KEY, s->key, F_CACHED, s->cached, F_LAYER, layer, F_EMPTY_LAYER,
	    !s->has_layer) : NULL;

	if (rec && s->config && json_object_set(rec, F_CONFIG, s->config) < 0) {
		json_decref(rec);
		rec = NULL;
	}
	if (rec && s->author && json_object_set_new(rec, F_AUTHOR, json_string(s->author)) < 0) {
		json_decref(rec);
		rec = NULL;
	}
	return put(o, rec, e);
}

int
hypr_steps_end(struct hypr_stream_out *o, int vm_boots, struct hypr_err *e)
{
	json_t *extra = json_pack("{s:i}", F_VM_BOOTS, vm_boots);
	int r;

	if (extra == NULL)
		return hypr_err_set(e, HYPR_EXIT_SYSTEM, "out of memory");
	r = hypr_stream_end_extra(o, extra, e);
	json_decref(extra);
	return r;
}
