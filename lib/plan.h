/* plan.h - the plan (hypr-plan(5)) and the resolved plan (hypr-resolved(5))
 * as typed records. Each record is decoded once: types checked, required
 * fields there, one error line naming the stream, line, record and field
 * (exit 3). The field names live in plan.c alone, for the readers
 * (hypr-fetch, hypr-exec, the driver) and for what hypr-fetch adds.
 * hypr-parse writes the plan (dockerfile.h).
 *
 * A decoded record borrows its strings from its JSON object (.json, one
 * reference held); free it with its _free function. Flags stay JSON:
 * their values are the Dockerfile's, free-form. */
#ifndef HYPR_PLAN_H
#define HYPR_PLAN_H

#include <stddef.h>
#include <jansson.h>
#include "err.h"
#include "record.h"
#include "stream.h"

enum hypr_plan_kind {
	HYPR_PLAN_OTHER,	/* a record type this reader does not know: skip it */
	HYPR_PLAN_ARG,
	HYPR_PLAN_STAGE,
	HYPR_PLAN_INSTR,
	HYPR_PLAN_WARNING,
};

/* The header: the plan's, or the resolved plan's (the same fields). */
struct hypr_plan_header {
	const char *dockerfile;	/* NULL: not named */
	const char *target;	/* NULL: the last stage */
	const char *platform;	/* NULL: the host's */
	json_t *build_args;	/* object of strings (never NULL) */
	int escape;		/* the escape directive: '\\' or '`' */
	int parse_only;
	json_t *json;
};

/* An image a resolved plan pins: the "image", "from_image" and
 * "mount_from" objects. */
struct hypr_plan_image {
	const char *ref;	/* canonical reference */
	const char *digest;	/* manifest digest */
	const char *index;	/* the index it was chosen from, or NULL */
	const char *media_type;	/* NULL when not given */
	const char *config;	/* config blob digest */
	const char *platform;
	struct hypr_layer *layers;	/* diff_id from "diff_ids" ("" when not given) */
	size_t nlayers;
};

struct hypr_plan_arg {
	long line[2];
	const char *name;
	const char *value;	/* NULL: declared without a value */
	const char *raw;
	json_t *json;
};

struct hypr_plan_stage {
	int index;
	const char *name;	/* AS name, or NULL */
	long line[2];
	const char *from, *base;
	int base_stage;		/* the stage it is built on, or -1 */
	const char *platform;	/* FROM --platform, or NULL */
	int final;
	const char *original;	/* the FROM line, or NULL */
	int has_image;		/* resolved: image is set */
	struct hypr_plan_image image;
	json_t *json;
};

struct hypr_plan_pair {
	const char *key;
	const char *value;	/* NULL: an ARG without a default */
};

struct hypr_plan_heredoc {
	const char *name, *content;
	int expand, strip_tabs;
	int fd;			/* N<<NAME, or -1 */
};

/* RUN --mount from=NAME: an earlier stage, or (resolved) an image. */
struct hypr_plan_mount_from {
	const char *name;
	int stage;		/* -1: an image */
	int has_image;
	struct hypr_plan_image image;
};

struct hypr_plan_instr {
	int stage;		/* -1: null (a --parse-only plan) */
	long line[2];
	const char *op;
	const char *original;	/* NULL when not given */
	json_t *flags;		/* object, never NULL */
	const char **args;	/* NULL-terminated */
	size_t nargs;
	int expand;
	const char *form;	/* "exec", "shell", or NULL */
	struct hypr_plan_pair *pairs;
	size_t npairs;
	int legacy;
	struct hypr_plan_heredoc *heredocs;
	size_t nheredocs;
	int from_stage;		/* -1: none */
	int has_from_image;	/* resolved: from_image is set */
	struct hypr_plan_image from_image;
	struct hypr_plan_mount_from *mount_from;
	size_t nmount_from;
	json_t *json;
};

struct hypr_plan_warning {
	long line;
	const char *message;
	json_t *json;
};

struct hypr_plan_rec {
	enum hypr_plan_kind kind;
	union {
		struct hypr_plan_arg arg;
		struct hypr_plan_stage stage;
		struct hypr_plan_instr instr;
		struct hypr_plan_warning warning;
	} u;
	json_t *json;		/* the record (one reference) */
};

/* The header of a stream opened with hypr_stream_open. */
int hypr_plan_header(const struct hypr_stream_in *s, struct hypr_plan_header *h,
    struct hypr_err *e);
void hypr_plan_header_free(struct hypr_plan_header *h);
/* The resolved header's imported build caches: list is an array of
 * {"source": a --cache-from value, "index": the index blob's digest}. */
int hypr_plan_set_cache_from(json_t *hdr, json_t *list);
/* That array (borrowed), or NULL when there is none. */
json_t *hypr_plan_cache_from(const struct hypr_plan_header *h);

/* What kind of record rec is, without decoding it (cheap: for counting). */
enum hypr_plan_kind hypr_plan_kind_of(json_t *rec);
/* Decode one record (a new reference to rec is kept); stream and line
 * name it in errors. */
int hypr_plan_decode(json_t *rec, const char *stream, long line, struct hypr_plan_rec *r,
    struct hypr_err *e);
/* hypr_stream_next, then decode: 1 a record, 0 at the end, -1 an error. */
int hypr_plan_next(struct hypr_stream_in *s, struct hypr_plan_rec *r, struct hypr_err *e);
void hypr_plan_rec_free(struct hypr_plan_rec *r);
/* The typed record moves out of r (r is left empty). */
void hypr_plan_stage_take(struct hypr_plan_rec *r, struct hypr_plan_stage *st);
void hypr_plan_instr_take(struct hypr_plan_rec *r, struct hypr_plan_instr *in);
void hypr_plan_stage_free(struct hypr_plan_stage *st);
void hypr_plan_instr_free(struct hypr_plan_instr *in);

/* A flag's value: the string (the last one of a repeated flag), or NULL
 * (absent, or bare: see hypr_plan_flag_set). */
const char *hypr_plan_flag(const struct hypr_plan_instr *in, const char *name);
/* Whether the flag is given at all. */
int hypr_plan_flag_set(const struct hypr_plan_instr *in, const char *name);
/* Every value of a repeatable flag (--mount): *v a new NULL-terminated
 * vector of borrowed strings (free() it). */
int hypr_plan_flag_all(const struct hypr_plan_instr *in, const char *name,
    const char ***v, size_t *n, struct hypr_err *e);
/* The mount_from entry for a name, or NULL. */
const struct hypr_plan_mount_from *hypr_plan_mount_from(const struct hypr_plan_instr *in,
    const char *name);
/* The instruction as a cache key sees it (hypr-steps(5) "instr"): op, args,
 * flags, form, heredocs, pairs and onbuild as written, never its line. */
json_t *hypr_plan_instr_key(const struct hypr_plan_instr *in);

/* ---- what hypr-fetch writes ---- */

/* The image object (new reference), from im (every layer's diff_id set). */
json_t *hypr_plan_image_json(const struct hypr_plan_image *im);
/* Add a resolved image to the record: a stage's "image", an instruction's
 * "from_image", a mount name's entry in "mount_from". img is not stolen. */
int hypr_plan_stage_set_image(struct hypr_plan_stage *st, json_t *img, struct hypr_err *e);
int hypr_plan_instr_set_from_image(struct hypr_plan_instr *in, json_t *img,
    struct hypr_err *e);
int hypr_plan_instr_add_mount_image(struct hypr_plan_instr *in, const char *name,
    json_t *img, struct hypr_err *e);
/* The resolved header's fields: the plan's (s), platform replaced when not NULL. */
json_t *hypr_plan_resolved_header(const struct hypr_stream_in *s, const char *platform);

#endif
