/* libFuzzer target: the stream decoders (lib/plan.c, lib/steps.c,
 * lib/imagestream.c) on arbitrary streams. The header picks the format.
 * Beyond "no crash", it checks what must hold:
 * - a refused record is bad input, and its message names the stream;
 * - what a writer makes of a decoded record, the decoder reads back with
 *   the same fields (steps, image, the resolved image object);
 * - the accessors agree with the record (a flag's last value, mount_from). */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "imagestream.h"
#include "plan.h"
#include "steps.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_err(const struct hypr_err *e, const char *stream)
{
	if (e->code != HYPR_EXIT_INPUT || strncmp(e->msg, stream, strlen(stream)) != 0)
		__builtin_trap();
}

static int
streq(const char *a, const char *b)
{
	return (a == NULL && b == NULL) || (a && b && strcmp(a, b) == 0);
}

static int
layers_eq(const struct hypr_layer *a, const struct hypr_layer *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(a[i].digest, b[i].digest) || a[i].size != b[i].size ||
		    strcmp(a[i].diff_id[0] ? a[i].diff_id : a[i].digest, b[i].diff_id) ||
		    (a[i].media_type[0] && strcmp(a[i].media_type, b[i].media_type)))
			return 0;
	return 1;
}

/* The image object hypr-fetch writes reads back as it was. */
static void
image_roundtrip(const struct hypr_plan_image *im)
{
	struct hypr_plan_rec r;
	struct hypr_err e = { 0 };
	struct hypr_plan_image full = *im;
	struct hypr_layer *l = calloc(im->nlayers + 1, sizeof(*l));
	json_t *o, *st;

	if (l == NULL)
		return;
	/* the writer wants every diff_id */
	for (size_t i = 0; i < im->nlayers; i++) {
		l[i] = im->layers[i];
		if (!l[i].diff_id[0])
			memcpy(l[i].diff_id, l[i].digest, sizeof(l[i].diff_id));
	}
	full.layers = l;
	o = hypr_plan_image_json(&full);
	st = json_pack("{s:s,s:i,s:[i,i],s:s,s:o}", "type", "stage", "index", 0, "line", 1, 1,
	    "base", "x", "image", o);
	if (st == NULL || hypr_plan_decode(st, "fuzz", 1, &r, &e) < 0)
		__builtin_trap();
	if (!r.u.stage.has_image || !streq(r.u.stage.image.digest, im->digest) ||
	    !streq(r.u.stage.image.config, im->config) ||
	    !streq(r.u.stage.image.index, im->index) ||
	    r.u.stage.image.nlayers != im->nlayers ||
	    !layers_eq(l, r.u.stage.image.layers, im->nlayers))
		__builtin_trap();
	hypr_plan_rec_free(&r);
	json_decref(st);
	free(l);
}

static void
plan_checks(const struct hypr_plan_rec *r)
{
	struct hypr_err e = { 0 };

	if (r->kind == HYPR_PLAN_STAGE && r->u.stage.has_image)
		image_roundtrip(&r->u.stage.image);
	if (r->kind == HYPR_PLAN_INSTR) {
		const struct hypr_plan_instr *in = &r->u.instr;
		const char **v;
		json_t *k;
		size_t n;

		if (in->op == NULL || in->args == NULL || in->args[in->nargs] != NULL)
			__builtin_trap();
		if (in->has_from_image)
			image_roundtrip(&in->from_image);
		for (size_t i = 0; i < in->nmount_from; i++) {
			if (hypr_plan_mount_from(in, in->mount_from[i].name) == NULL)
				__builtin_trap();
			if (in->mount_from[i].has_image)
				image_roundtrip(&in->mount_from[i].image);
		}
		if (hypr_plan_flag_all(in, "mount", &v, &n, &e) < 0)
			__builtin_trap();
		/* the single value is the last of all */
		if (n > 0 && !streq(hypr_plan_flag(in, "mount"), v[n - 1]))
			__builtin_trap();
		free(v);
		if ((k = hypr_plan_instr_key(in)) == NULL)
			__builtin_trap();
		json_decref(k);
	}
}

static void
read_plan(struct hypr_stream_in *in)
{
	struct hypr_plan_header h;
	struct hypr_plan_rec r;
	struct hypr_err e = { 0 };
	int k;

	if (hypr_plan_header(in, &h, &e) < 0) {
		check_err(&e, in->name);
		return;
	}
	if (h.build_args == NULL || (h.escape != '\\' && h.escape != '`'))
		__builtin_trap();
	while ((k = hypr_plan_next(in, &r, &e)) == 1) {
		plan_checks(&r);
		hypr_plan_rec_free(&r);
	}
	if (k < 0)
		check_err(&e, in->name);
	hypr_plan_header_free(&h);
}

/* Write a decoded steps record again and read it back. */
static void
steps_roundtrip(const struct hypr_steps_rec *r)
{
	struct hypr_stream_out out;
	struct hypr_steps_rec back;
	struct hypr_err e = { 0 };
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	json_t *rec;
	int rc;

	if (f == NULL)
		return;
	out.f = f;
	out.records = 0;
	if (r->kind == HYPR_STEPS_STAGE)
		rc = hypr_steps_put_stage(&out, &r->u.stage, &e);
	else
		rc = hypr_steps_put_step(&out, &r->u.step, &e);
	fclose(f);
	if (rc < 0)
		__builtin_trap();
	rec = json_loadb(buf, len, 0, NULL);
	free(buf);
	if (rec == NULL || hypr_steps_decode(rec, "fuzz", 1, &back, &e) < 0 ||
	    back.kind != r->kind)
		__builtin_trap();
	if (r->kind == HYPR_STEPS_STAGE) {
		const struct hypr_steps_stage *a = &r->u.stage, *b = &back.u.stage;

		if (a->index != b->index || !streq(a->name, b->name) || a->final != b->final ||
		    a->has_base != b->has_base || !streq(a->base.ref, b->base.ref) ||
		    !streq(a->base.digest, b->base.digest) ||
		    a->nbase_layers != b->nbase_layers ||
		    !layers_eq(a->base_layers, b->base_layers, a->nbase_layers))
			__builtin_trap();
	} else {
		const struct hypr_steps_step *a = &r->u.step, *b = &back.u.step;

		if (a->stage != b->stage || a->n != b->n || !streq(a->op, b->op) ||
		    !streq(a->key, b->key) || a->cached != b->cached ||
		    a->has_layer != b->has_layer || a->line[0] != b->line[0] ||
		    a->line[1] != b->line[1] || !streq(a->author, b->author) ||
		    (a->has_layer && !layers_eq(&a->layer, &b->layer, 1)))
			__builtin_trap();
	}
	hypr_steps_rec_free(&back);
	json_decref(rec);
}

static void
read_steps(struct hypr_stream_in *in)
{
	struct hypr_steps_header h;
	struct hypr_steps_rec r;
	struct hypr_err e = { 0 };
	int k;

	if (hypr_steps_header(in, &h, &e) < 0) {
		check_err(&e, in->name);
		return;
	}
	while ((k = hypr_steps_next(in, &r, &e)) == 1) {
		if (r.kind != HYPR_STEPS_OTHER)
			steps_roundtrip(&r);
		hypr_steps_rec_free(&r);
	}
	if (k < 0)
		check_err(&e, in->name);
	hypr_steps_header_free(&h);
}

static void
read_image(struct hypr_stream_in *in)
{
	struct hypr_err e = { 0 };
	json_t *rec;
	int k;

	while ((k = hypr_stream_next(in, &rec, &e)) == 1) {
		struct hypr_image_rec r, back;
		json_t *j;

		if (!hypr_image_rec_is(rec)) {
			json_decref(rec);
			continue;
		}
		if (hypr_image_rec_decode(rec, in->name, in->line, &r, &e) < 0) {
			check_err(&e, in->name);
			json_decref(rec);
			continue;
		}
		if ((j = hypr_image_rec_json(&r)) == NULL ||
		    hypr_image_rec_decode(j, "fuzz", 1, &back, &e) < 0 ||
		    back.nlayers != r.nlayers || back.nhistory != r.nhistory ||
		    !streq(back.stage, r.stage) || !streq(back.chain, r.chain) ||
		    back.has_base != r.has_base || !layers_eq(r.layers, back.layers, r.nlayers))
			__builtin_trap();
		if (r.has_squashfs) {
			if (hypr_image_rec_set_squashfs(j, &r.squashfs, &e) < 0)
				__builtin_trap();
			hypr_image_rec_free(&back);
			if (hypr_image_rec_decode(j, "fuzz", 1, &back, &e) < 0 || !back.has_squashfs ||
			    strcmp(back.squashfs.digest, r.squashfs.digest) != 0 ||
			    back.squashfs.size != r.squashfs.size)
				__builtin_trap();
		}
		hypr_image_rec_free(&back);
		hypr_image_rec_free(&r);
		json_decref(j);
		json_decref(rec);
	}
	if (k < 0)
		check_err(&e, in->name);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const formats[] = { "plan", "resolved", "steps", "image" };
	static const char *const needs[] = { "x", NULL };
	const char *fmt = NULL;
	FILE *f;

	/* the header names the format: try the one it claims */
	for (size_t i = 0; i < sizeof(formats) / sizeof(formats[0]); i++) {
		char want[32];

		snprintf(want, sizeof(want), "\"hypr\":\"%s\"", formats[i]);
		if (memmem(data, size < 200 ? size : 200, want, strlen(want)))
			fmt = formats[i];
	}
	if (fmt == NULL || (f = fmemopen((void *)data, size, "r")) == NULL)
		return 0;
	{
		struct hypr_stream_in in;
		struct hypr_err e = { 0 };

		if (hypr_stream_open(&in, f, fmt, fmt, 2, needs, &e) < 0) {
			check_err(&e, fmt);
		} else {
			if (!strcmp(fmt, "plan") || !strcmp(fmt, "resolved"))
				read_plan(&in);
			else if (!strcmp(fmt, "steps"))
				read_steps(&in);
			else
				read_image(&in);
			hypr_stream_close(&in);
		}
	}
	fclose(f);
	return 0;
}
