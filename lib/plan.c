/* plan.c - hypr-plan(5) and hypr-resolved(5) records: every field name of
 * the two formats' readers, and of what hypr-fetch adds. See plan.h. */
#include "plan.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* header */
#define F_DOCKERFILE "dockerfile"
#define F_TARGET "target"
#define F_CACHE_FROM "cache_from"
#define F_PLATFORM "platform"
#define F_BUILD_ARGS "build_args"
#define F_DIRECTIVES "directives"
#define F_ESCAPE "escape"
#define F_PARSE_ONLY "parse_only"
/* records */
#define F_LINE "line"
#define F_NAME "name"
#define F_VALUE "value"
#define F_RAW "raw"
#define F_INDEX "index"
#define F_FROM "from"
#define F_BASE "base"
#define F_BASE_STAGE "base_stage"
#define F_FINAL "final"
#define F_ORIGINAL "original"
#define F_IMAGE "image"
#define F_STAGE "stage"
#define F_OP "op"
#define F_FLAGS "flags"
#define F_FLAG_ARGS "flag_args"
#define F_ARGS "args"
#define F_EXPAND "expand"
#define F_FORM "form"
#define F_PAIRS "pairs"
#define F_KEY "key"
#define F_LEGACY "legacy"
#define F_HEREDOCS "heredocs"
#define F_CONTENT "content"
#define F_STRIP_TABS "strip_tabs"
#define F_FD "fd"
#define F_FROM_STAGE "from_stage"
#define F_FROM_IMAGE "from_image"
#define F_MOUNT_FROM "mount_from"
#define F_ONBUILD "onbuild"
#define F_MESSAGE "message"
/* the image object */
#define F_REF "ref"
#define F_DIGEST "digest"
#define F_MEDIA_TYPE "media_type"
#define F_CONFIG "config"
#define F_LAYERS "layers"
#define F_DIFF_IDS "diff_ids"
#define F_SIZE "size"

static const struct {
	const char *type;
	enum hypr_plan_kind kind;
} kinds[] = {
	{ "arg", HYPR_PLAN_ARG },
	{ "stage", HYPR_PLAN_STAGE },
	{ "instr", HYPR_PLAN_INSTR },
	{ "warning", HYPR_PLAN_WARNING },
};

int
hypr_plan_header(const struct hypr_stream_in *s, struct hypr_plan_header *h,
    struct hypr_err *e)
{
	struct hypr_rec_at at = { .stream = s->name, .line = 1, .what = "header" };
	json_t *dir = NULL, *ba = NULL;
	const char *esc = NULL;

	memset(h, 0, sizeof(*h));
	if (hypr_rec_str(&at, s->header, F_DOCKERFILE, HYPR_F_NULL, &h->dockerfile, e) < 0 ||
	    hypr_rec_str(&at, s->header, F_TARGET, HYPR_F_NULL, &h->target, e) < 0 ||
	    hypr_rec_str(&at, s->header, F_PLATFORM, HYPR_F_NULL, &h->platform, e) < 0 ||
	    hypr_rec_strmap(&at, s->header, F_BUILD_ARGS, HYPR_F_NULL, &ba, e) < 0 ||
	    hypr_rec_obj(&at, s->header, F_DIRECTIVES, HYPR_F_NULL, &dir, e) < 0 ||
	    hypr_rec_bool(&at, s->header, F_PARSE_ONLY, HYPR_F_NULL, &h->parse_only, e) < 0)
		return -1;
	if (dir) {
		at.prefix = F_DIRECTIVES;
		if (hypr_rec_str(&at, dir, F_ESCAPE, HYPR_F_NULL, &esc, e) < 0)
			return -1;
	}
	h->escape = esc && esc[0] == '`' ? '`' : '\\';
	h->build_args = ba ? json_incref(ba) : json_object();
	h->json = json_incref(s->header);
	if (h->build_args == NULL)
		return hypr_err_set(e, HYPR_EXIT_SYSTEM, "out of memory");
	return 0;
}

void
hypr_plan_header_free(struct hypr_plan_header *h)
{
	json_decref(h->build_args);
	json_decref(h->json);
	memset(h, 0, sizeof(*h));
}

enum hypr_plan_kind
hypr_plan_kind_of(json_t *rec)
{
	const char *t = hypr_rec_type(rec);

	for (size_t i = 0; t && i < sizeof(kinds) / sizeof(kinds[0]); i++)
		if (strcmp(t, kinds[i].type) == 0)
			return kinds[i].kind;
	return HYPR_PLAN_OTHER;
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

static void
image_free(struct hypr_plan_image *im)
{
	free(im->layers);
	memset(im, 0, sizeof(*im));
}

/* An image object (at->prefix names it). */
static int
image_decode(const struct hypr_rec_at *at, json_t *o, struct hypr_plan_image *im,
    struct hypr_err *e)
{
	const char **diffs = NULL;
	size_t nd = 0;

	memset(im, 0, sizeof(*im));
	if (!json_is_object(o))
		return hypr_rec_err(at, "", e, "not an image object");
	if (hypr_rec_str(at, o, F_REF, HYPR_F_NULL, &im->ref, e) < 0 ||
	    hypr_rec_digest(at, o, F_DIGEST, HYPR_F_REQ, &im->digest, e) < 0 ||
	    hypr_rec_digest(at, o, F_INDEX, HYPR_F_NULL, &im->index, e) < 0 ||
	    hypr_rec_str(at, o, F_MEDIA_TYPE, HYPR_F_NULL, &im->media_type, e) < 0 ||
	    hypr_rec_digest(at, o, F_CONFIG, HYPR_F_REQ, &im->config, e) < 0 ||
	    hypr_rec_str(at, o, F_PLATFORM, HYPR_F_NULL, &im->platform, e) < 0 ||
	    hypr_rec_layers(at, o, F_LAYERS, 0, &im->layers, &im->nlayers, e) < 0)
		return -1;
	if (hypr_rec_strv(at, o, F_DIFF_IDS, HYPR_F_NULL, &diffs, &nd, e) < 0)
		goto fail;
	if (diffs && nd != im->nlayers) {
		hypr_rec_err(at, F_DIFF_IDS, e, "%zu for %zu layers", nd, im->nlayers);
		goto fail;
	}
	for (size_t i = 0; i < nd; i++) {
		if (!hypr_digest_valid(diffs[i])) {
			hypr_rec_err(at, F_DIFF_IDS, e, "item %zu is not a digest", i);
			goto fail;
		}
		memcpy(im->layers[i].diff_id, diffs[i], HYPR_DIGEST_LEN + 1);
	}
	free(diffs);
	return 0;
fail:
	free(diffs);
	image_free(im);
	return -1;
}

static int
arg_decode(const struct hypr_rec_at *at, json_t *o, struct hypr_plan_arg *a,
    struct hypr_err *e)
{
	if (hypr_rec_lines(at, o, F_LINE, 0, a->line, e) < 0 ||
	    hypr_rec_str(at, o, F_NAME, HYPR_F_REQ, &a->name, e) < 0 ||
	    hypr_rec_str(at, o, F_VALUE, HYPR_F_NULL, &a->value, e) < 0 ||
	    hypr_rec_str(at, o, F_RAW, HYPR_F_NULL, &a->raw, e) < 0)
		return -1;
	a->json = json_incref(o);
	return 0;
}

static int
stage_decode(const struct hypr_rec_at *at, json_t *o, struct hypr_plan_stage *st,
    struct hypr_err *e)
{
	struct hypr_rec_at in = *at;
	json_t *img = NULL;

	st->base_stage = -1;
	if (int_field(at, o, F_INDEX, HYPR_F_REQ, &st->index, e) < 0 ||
	    hypr_rec_str(at, o, F_NAME, HYPR_F_NULL, &st->name, e) < 0 ||
	    hypr_rec_lines(at, o, F_LINE, HYPR_F_REQ, st->line, e) < 0 ||
	    hypr_rec_str(at, o, F_FROM, HYPR_F_NULL, &st->from, e) < 0 ||
	    hypr_rec_str(at, o, F_BASE, HYPR_F_REQ, &st->base, e) < 0 ||
	    int_field(at, o, F_BASE_STAGE, HYPR_F_NULL, &st->base_stage, e) < 0 ||
	    hypr_rec_str(at, o, F_PLATFORM, HYPR_F_NULL, &st->platform, e) < 0 ||
	    hypr_rec_bool(at, o, F_FINAL, HYPR_F_NULL, &st->final, e) < 0 ||
	    hypr_rec_str(at, o, F_ORIGINAL, HYPR_F_NULL, &st->original, e) < 0 ||
	    hypr_rec_obj(at, o, F_IMAGE, HYPR_F_NULL, &img, e) < 0)
		return -1;
	in.prefix = F_IMAGE;
	if (img && image_decode(&in, img, &st->image, e) < 0)
		return -1;
	st->has_image = img != NULL;
	st->json = json_incref(o);
	return 0;
}

static int
pairs_decode(const struct hypr_rec_at *at, json_t *o, struct hypr_plan_instr *in,
    struct hypr_err *e)
{
	struct hypr_rec_at pat = *at;
	char prefix[64];
	json_t *a, *x;
	size_t i;

	if (hypr_rec_arr(at, o, F_PAIRS, HYPR_F_NULL, &a, e) < 0)
		return -1;
	if (a == NULL)
		return 0;
	if ((in->pairs = calloc(json_array_size(a) + 1, sizeof(*in->pairs))) == NULL)
		return hypr_err_set(e, HYPR_EXIT_SYSTEM, "out of memory");
	pat.prefix = prefix;
	json_array_foreach(a, i, x) {
		snprintf(prefix, sizeof(prefix), F_PAIRS "[%zu]", i);
		if (!json_is_object(x))
			return hypr_rec_err(&pat, "", e, "not an object");
		if (hypr_rec_str(&pat, x, F_KEY, HYPR_F_REQ, &in->pairs[i].key, e) < 0 ||
		    hypr_rec_str(&pat, x, F_VALUE, HYPR_F_NULL, &in->pairs[i].value, e) < 0)
			return -1;
		in->npairs = i + 1;
	}
	return 0;
}

static int
heredocs_decode(const struct hypr_rec_at *at, json_t *o, struct hypr_plan_instr *in,
    struct hypr_err *e)
{
	struct hypr_rec_at hat = *at;
	char prefix[64];
	json_t *a, *x;
	size_t i;

	if (hypr_rec_arr(at, o, F_HEREDOCS, HYPR_F_NULL, &a, e) < 0)
		return -1;
	if (a == NULL)
		return 0;
	if ((in->heredocs = calloc(json_array_size(a) + 1, sizeof(*in->heredocs))) == NULL)
		return hypr_err_set(e, HYPR_EXIT_SYSTEM, "out of memory");
	hat.prefix = prefix;
	json_array_foreach(a, i, x) {
		struct hypr_plan_heredoc *h = &in->heredocs[i];

		snprintf(prefix, sizeof(prefix), F_HEREDOCS "[%zu]", i);
		h->fd = -1;
		if (!json_is_object(x))
			return hypr_rec_err(&hat, "", e, "not an object");
		if (hypr_rec_str(&hat, x, F_NAME, HYPR_F_REQ, &h->name, e) < 0 ||
		    hypr_rec_str(&hat, x, F_CONTENT, HYPR_F_REQ, &h->content, e) < 0 ||
		    hypr_rec_bool(&hat, x, F_EXPAND, HYPR_F_NULL, &h->expand, e) < 0 ||
		    hypr_rec_bool(&hat, x, F_STRIP_TABS, HYPR_F_NULL, &h->strip_tabs, e) < 0 ||
		    int_field(&hat, x, F_FD, HYPR_F_NULL, &h->fd, e) < 0)
			return -1;
		in->nheredocs = i + 1;
	}
	return 0;
}

static int
mount_from_decode(const struct hypr_rec_at *at, json_t *o, struct hypr_plan_instr *in,
    struct hypr_err *e)
{
	struct hypr_rec_at mat = *at;
	char prefix[300];
	const char *name;
	json_t *mf, *x, *img;
	size_t i = 0;

	if (hypr_rec_obj(at, o, F_MOUNT_FROM, HYPR_F_NULL, &mf, e) < 0)
		return -1;
	if (mf == NULL)
		return 0;
	if ((in->mount_from = calloc(json_object_size(mf) + 1, sizeof(*in->mount_from))) == NULL)
		return hypr_err_set(e, HYPR_EXIT_SYSTEM, "out of memory");
	mat.prefix = prefix;
	json_object_foreach(mf, name, x) {
		struct hypr_plan_mount_from *m = &in->mount_from[i];

		snprintf(prefix, sizeof(prefix), F_MOUNT_FROM ".%.200s", name);
		m->name = name;
		m->stage = -1;
		if (!json_is_object(x))
			return hypr_rec_err(&mat, "", e, "not an object");
		if (int_field(&mat, x, F_STAGE, HYPR_F_NULL, &m->stage, e) < 0 ||
		    hypr_rec_obj(&mat, x, F_IMAGE, HYPR_F_NULL, &img, e) < 0)
			return -1;
		in->nmount_from = ++i;
		if (img) {
			snprintf(prefix, sizeof(prefix), F_MOUNT_FROM ".%.200s." F_IMAGE, name);
			if (image_decode(&mat, img, &m->image, e) < 0)
				return -1;
			m->has_image = 1;
		}
	}
	return 0;
}

static int
instr_decode(const struct hypr_rec_at *at, json_t *o, struct hypr_plan_instr *in,
    struct hypr_err *e)
{
	struct hypr_rec_at fat = *at;
	json_t *v, *img = NULL;
	const char **fa = NULL;
	size_t nfa;

	in->stage = -1;
	in->from_stage = -1;
	if ((v = json_object_get(o, F_STAGE)) == NULL)
		return hypr_rec_err(at, F_STAGE, e, "missing");
	if (int_field(at, o, F_STAGE, HYPR_F_NULL, &in->stage, e) < 0 ||
	    hypr_rec_lines(at, o, F_LINE, HYPR_F_REQ, in->line, e) < 0 ||
	    hypr_rec_str(at, o, F_OP, HYPR_F_REQ, &in->op, e) < 0 ||
	    hypr_rec_str(at, o, F_ORIGINAL, HYPR_F_NULL, &in->original, e) < 0 ||
	    hypr_rec_obj(at, o, F_FLAGS, HYPR_F_NULL, &in->flags, e) < 0 ||
	    hypr_rec_strv(at, o, F_FLAG_ARGS, HYPR_F_NULL, &fa, &nfa, e) < 0)
		return -1;
	free(fa);	/* checked; no reader needs the flag words */
	if (hypr_rec_strv(at, o, F_ARGS, HYPR_F_REQ, &in->args, &in->nargs, e) < 0 ||
	    hypr_rec_bool(at, o, F_EXPAND, HYPR_F_NULL, &in->expand, e) < 0 ||
	    hypr_rec_str(at, o, F_FORM, HYPR_F_NULL, &in->form, e) < 0 ||
	    hypr_rec_bool(at, o, F_LEGACY, HYPR_F_NULL, &in->legacy, e) < 0 ||
	    int_field(at, o, F_FROM_STAGE, HYPR_F_NULL, &in->from_stage, e) < 0 ||
	    hypr_rec_obj(at, o, F_FROM_IMAGE, HYPR_F_NULL, &img, e) < 0 ||
	    hypr_rec_obj(at, o, F_ONBUILD, HYPR_F_NULL, &v, e) < 0)
		return -1;
	if (in->flags) {
		const char *k;

		/* a value is a string, true (bare), or strings (repeated) */
		json_object_foreach(in->flags, k, v) {
			size_t i;
			json_t *x;

			fat.prefix = F_FLAGS;
			if (json_is_array(v)) {
				json_array_foreach(v, i, x)
					if (!json_is_string(x))
						return hypr_rec_err(&fat, k, e, "item %zu is not a string", i);
			} else if (!json_is_string(v) && !json_is_true(v)) {
				return hypr_rec_err(&fat, k, e, "not a string, true or strings");
			}
		}
	}
	if (in->form && strcmp(in->form, "exec") != 0 && strcmp(in->form, "shell") != 0)
		return hypr_rec_err(at, F_FORM, e, "not exec, shell or null");
	if (pairs_decode(at, o, in, e) < 0 || heredocs_decode(at, o, in, e) < 0 ||
	    mount_from_decode(at, o, in, e) < 0)
		return -1;
	fat.prefix = F_FROM_IMAGE;
	if (img && image_decode(&fat, img, &in->from_image, e) < 0)
		return -1;
	in->has_from_image = img != NULL;
	in->json = json_incref(o);
	return 0;
}

static int
warning_decode(const struct hypr_rec_at *at, json_t *o, struct hypr_plan_warning *w,
    struct hypr_err *e)
{
	json_int_t line = 0;

	if (hypr_rec_int(at, o, F_LINE, HYPR_F_NULL, 0, LONG_MAX, &line, e) < 0 ||
	    hypr_rec_str(at, o, F_MESSAGE, HYPR_F_NULL, &w->message, e) < 0)
		return -1;
	w->line = (long)line;
	w->json = json_incref(o);
	return 0;
}

int
hypr_plan_decode(json_t *rec, const char *stream, long line, struct hypr_plan_rec *r,
    struct hypr_err *e)
{
	struct hypr_rec_at at = { .stream = stream, .line = line };
	int rc = 0;

	memset(r, 0, sizeof(*r));
	r->kind = hypr_plan_kind_of(rec);
	at.what = hypr_rec_type(rec);
	switch (r->kind) {
	case HYPR_PLAN_ARG:
		rc = arg_decode(&at, rec, &r->u.arg, e);
		break;
	case HYPR_PLAN_STAGE:
		if ((rc = stage_decode(&at, rec, &r->u.stage, e)) < 0)
			hypr_plan_stage_free(&r->u.stage);
		break;
	case HYPR_PLAN_INSTR:
		if ((rc = instr_decode(&at, rec, &r->u.instr, e)) < 0)
			hypr_plan_instr_free(&r->u.instr);
		break;
	case HYPR_PLAN_WARNING:
		rc = warning_decode(&at, rec, &r->u.warning, e);
		break;
	case HYPR_PLAN_OTHER:
		break;
	}
	if (rc < 0) {
		memset(r, 0, sizeof(*r));
		return -1;
	}
	r->json = json_incref(rec);
	return 0;
}

int
hypr_plan_next(struct hypr_stream_in *s, struct hypr_plan_rec *r, struct hypr_err *e)
{
	json_t *rec;
	int k;

	memset(r, 0, sizeof(*r));
	if ((k = hypr_stream_next(s, &rec, e)) <= 0)
		return k;
	k = hypr_plan_decode(rec, s->name, s->line, r, e);
	json_decref(rec);
	return k < 0 ? -1 : 1;
}

void
hypr_plan_stage_free(struct hypr_plan_stage *st)
{
	image_free(&st->image);
	json_decref(st->json);
	memset(st, 0, sizeof(*st));
}

void
hypr_plan_instr_free(struct hypr_plan_instr *in)
{
	for (size_t i = 0; in->mount_from && i < in->nmount_from; i++)
		image_free(&in->mount_from[i].image);
	free(in->mount_from);
	free(in->args);
	free(in->pairs);
	free(in->heredocs);
	image_free(&in->from_image);
	json_decref(in->json);
	memset(in, 0, sizeof(*in));
}

void
hypr_plan_rec_free(struct hypr_plan_rec *r)
{
	switch (r->kind) {
	case HYPR_PLAN_ARG:
		json_decref(r->u.arg.json);
		break;
	case HYPR_PLAN_STAGE:
		hypr_plan_stage_free(&r->u.stage);
		break;
	case HYPR_PLAN_INSTR:
		hypr_plan_instr_free(&r->u.instr);
		break;
	case HYPR_PLAN_WARNING:
		json_decref(r->u.warning.json);
		break;
	case HYPR_PLAN_OTHER:
		break;
	}
	json_decref(r->json);
	memset(r, 0, sizeof(*r));
}

void
hypr_plan_stage_take(struct hypr_plan_rec *r, struct hypr_plan_stage *st)
{
	*st = r->u.stage;
	memset(&r->u, 0, sizeof(r->u));
	r->kind = HYPR_PLAN_OTHER;
}

void
hypr_plan_instr_take(struct hypr_plan_rec *r, struct hypr_plan_instr *in)
{
	*in = r->u.instr;
	memset(&r->u, 0, sizeof(r->u));
	r->kind = HYPR_PLAN_OTHER;
}

static json_t *
flag_json(const struct hypr_plan_instr *in, const char *name)
{
	return json_object_get(in->flags, name);
}

const char *
hypr_plan_flag(const struct hypr_plan_instr *in, const char *name)
{
	json_t *v = flag_json(in, name);

	if (json_is_array(v))
		v = json_array_get(v, json_array_size(v) - 1);
	return json_string_value(v);
}

int
hypr_plan_flag_set(const struct hypr_plan_instr *in, const char *name)
{
	return flag_json(in, name) != NULL;
}

int
hypr_plan_flag_all(const struct hypr_plan_instr *in, const char *name,
    const char ***v, size_t *n, struct hypr_err *e)
{
	json_t *f = flag_json(in, name), *x;
	size_t i, k = 0;

	*n = 0;
	if ((*v = calloc(json_array_size(f) + 2, sizeof(**v))) == NULL)
		return hypr_err_set(e, HYPR_EXIT_SYSTEM, "out of memory");
	if (json_is_string(f))
		(*v)[k++] = json_string_value(f);
	json_array_foreach(f, i, x)
		if (json_is_string(x))
			(*v)[k++] = json_string_value(x);
	*n = k;
	return 0;
}

const struct hypr_plan_mount_from *
hypr_plan_mount_from(const struct hypr_plan_instr *in, const char *name)
{
	for (size_t i = 0; name && i < in->nmount_from; i++)
		if (strcmp(in->mount_from[i].name, name) == 0)
			return &in->mount_from[i];
	return NULL;
}

json_t *
hypr_plan_instr_key(const struct hypr_plan_instr *in)
{
	static const char *const fields[] = { F_OP, F_ARGS, F_FLAGS, F_FORM,
		F_HEREDOCS, F_PAIRS, F_ONBUILD, NULL };
	json_t *k = json_object();

	for (const char *const *f = fields; k && *f; f++) {
		json_t *v = json_object_get(in->json, *f);

		if (v != NULL && json_object_set(k, *f, v) < 0) {
			json_decref(k);
			return NULL;
		}
	}
	return k;
}

/* ---- what hypr-fetch writes ---- */

json_t *
hypr_plan_image_json(const struct hypr_plan_image *im)
{
	json_t *layers = json_array(), *diffs = json_array(), *o;

	for (size_t i = 0; layers && diffs && i < im->nlayers; i++) {
		const struct hypr_layer *l = &im->layers[i];

		json_array_append_new(layers, json_pack("{s:s,s:I,s:s}", F_DIGEST, l->digest,
		    F_SIZE, (json_int_t)l->size, F_MEDIA_TYPE,
		    l->media_type[0] ? l->media_type : HYPR_MEDIA_LAYER_GZIP));
		json_array_append_new(diffs, json_string(l->diff_id));
	}
	o = json_pack("{s:s?,s:s,s:s?,s:s,s:s?,s:o,s:o}", F_REF, im->ref, F_DIGEST,
	    im->digest, F_MEDIA_TYPE, im->media_type, F_CONFIG, im->config, F_PLATFORM,
	    im->platform, F_LAYERS, layers, F_DIFF_IDS, diffs);
	if (o && im->index && json_object_set_new(o, F_INDEX, json_string(im->index)) < 0) {
		json_decref(o);
		return NULL;
	}
	return o;
}

int
hypr_plan_stage_set_image(struct hypr_plan_stage *st, json_t *img, struct hypr_err *e)
{
	if (json_object_set(st->json, F_IMAGE, img) < 0)
		return hypr_err_set(e, HYPR_EXIT_SYSTEM, "out of memory");
	return 0;
}

int
hypr_plan_instr_set_from_image(struct hypr_plan_instr *in, json_t *img,
    struct hypr_err *e)
{
	if (json_object_set(in->json, F_FROM_IMAGE, img) < 0)
		return hypr_err_set(e, HYPR_EXIT_SYSTEM, "out of memory");
	return 0;
}

int
hypr_plan_instr_add_mount_image(struct hypr_plan_instr *in, const char *name,
    json_t *img, struct hypr_err *e)
{
	json_t *mf = json_object_get(in->json, F_MOUNT_FROM);

	if (!json_is_object(mf)) {
		if ((mf = json_object()) == NULL ||
		    json_object_set_new(in->json, F_MOUNT_FROM, mf) < 0)
			return hypr_err_set(e, HYPR_EXIT_SYSTEM, "out of memory");
	}
	if (json_object_set_new(mf, name, json_pack("{s:O}", F_IMAGE, img)) < 0)
		return hypr_err_set(e, HYPR_EXIT_SYSTEM, "out of memory");
	return 0;
}

json_t *
hypr_plan_resolved_header(const struct hypr_stream_in *s, const char *platform)
{
	json_t *hdr = hypr_stream_header_rest(s);

	if (hdr && platform && json_object_set_new(hdr, F_PLATFORM, json_string(platform)) < 0) {
		json_decref(hdr);
		return NULL;
	}
	return hdr;
}

int
hypr_plan_set_cache_from(json_t *hdr, json_t *list)
{
	return json_object_set(hdr, F_CACHE_FROM, list);
}

json_t *
hypr_plan_cache_from(const struct hypr_plan_header *h)
{
	json_t *a = json_object_get(h->json, F_CACHE_FROM);

	return json_is_array(a) ? a : NULL;
}
