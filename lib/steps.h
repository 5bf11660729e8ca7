/* steps.h - the steps stream (hypr-steps(5)) as typed records, for its
 * writer (hypr-exec) and its reader (hypr-layer): every field name in
 * steps.c alone. A decoded record borrows its strings from its JSON object
 * (.json, one reference held); free it with hypr_steps_rec_free. The OCI
 * config stays JSON: it is free-form. */
#ifndef HYPR_STEPS_H
#define HYPR_STEPS_H

#include <stddef.h>
#include <stdio.h>
#include <jansson.h>
#include "err.h"
#include "record.h"
#include "stream.h"

#define HYPR_STEPS_VERSION 2

enum hypr_steps_kind { HYPR_STEPS_OTHER, HYPR_STEPS_STAGE, HYPR_STEPS_STEP };

struct hypr_steps_header {
	const char *context;	/* absolute path of the build context */
	const char *dockerfile;	/* NULL: null */
	const char *target;	/* NULL: null */
	const char *platform;	/* NULL: not given */
	json_t *build_args;	/* object of strings; the writer's may be NULL ({}) */
	json_t *json;		/* read: the header */
};

/* The base a stage starts from: {ref, digest}, either may be null. */
struct hypr_steps_base {
	const char *ref;
	const char *digest;
};

struct hypr_steps_stage {
	int index;
	const char *name;	/* AS name, or NULL */
	int final;
	int has_base;		/* base is set (else null: scratch) */
	struct hypr_steps_base base;
	const char *platform;	/* read only: NULL when not given */
	struct hypr_layer *base_layers;
	size_t nbase_layers;
	json_t *config;		/* the OCI config object the stage starts from */
	json_t *json;
};

struct hypr_steps_step {
	int stage, n;
	long line[2];		/* [0, 0] when not given (read) */
	const char *op;
	const char *created_by;	/* NULL: not given (read) */
	const char *key;	/* the cache key */
	int cached;
	int has_layer;		/* layer is set (else null: no layer) */
	struct hypr_layer layer;
	json_t *config;		/* on the stage's last step, else NULL */
	const char *author;	/* NULL: none */
	json_t *json;
};

struct hypr_steps_rec {
	enum hypr_steps_kind kind;
	union {
		struct hypr_steps_stage stage;
		struct hypr_steps_step step;
	} u;
	json_t *json;		/* the record (one reference) */
};

/* ---- reading ---- */

/* The header of a stream opened with hypr_stream_open. */
int hypr_steps_header(const struct hypr_stream_in *s, struct hypr_steps_header *h,
    struct hypr_err *e);
void hypr_steps_header_free(struct hypr_steps_header *h);
/* Decode one record (a new reference to rec is kept). */
int hypr_steps_decode(json_t *rec, const char *stream, long line, struct hypr_steps_rec *r,
    struct hypr_err *e);
/* hypr_stream_next, then decode: 1 a record, 0 at the end, -1 an error. */
int hypr_steps_next(struct hypr_stream_in *s, struct hypr_steps_rec *r, struct hypr_err *e);
void hypr_steps_rec_free(struct hypr_steps_rec *r);

/* ---- writing ---- */

/* The header; h->json is not used. */
int hypr_steps_begin(struct hypr_stream_out *o, FILE *f, const struct hypr_steps_header *h,
    struct hypr_err *e);
int hypr_steps_put_stage(struct hypr_stream_out *o, const struct hypr_steps_stage *st,
    struct hypr_err *e);
int hypr_steps_put_step(struct hypr_stream_out *o, const struct hypr_steps_step *s,
    struct hypr_err *e);
/* The end record with the number of build VMs booted, and a flush. */
int hypr_steps_end(struct hypr_stream_out *o, int vm_boots, struct hypr_err *e);

#endif
