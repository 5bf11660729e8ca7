/* dockerfile.h - the Dockerfile parser: text in, plan records out (see
 * hypr-plan(5)). Behaves as BuildKit's parser (frontend/dockerfile/parser)
 * plus the stage rules of its instruction layer: directives, continuations,
 * exec/shell forms, flags, heredocs, ARG scoping for FROM, stage pruning. */
#ifndef HYPR_DOCKERFILE_H
#define HYPR_DOCKERFILE_H

#include <stddef.h>
#include <jansson.h>
#include "err.h"
#include "expand.h"

struct hypr_dockerfile_opts {
	const char *name;		/* for messages and the header; "Dockerfile" if NULL */
	const struct hypr_vars *build_args;	/* --build-arg values; may be NULL */
	const char *target;		/* stage name; NULL for the last stage */
	const char *platform;		/* target platform; NULL for the host's */
	int parse_only;			/* syntax only: no stage rules, every
					 * instruction written with "stage":null */
};

/* Where the plan goes as it is made: header() once, then record() for each
 * record in order (the callee borrows rec). A non-zero return stops the
 * plan with that error. */
struct hypr_dockerfile_sink {
	int (*header)(void *arg, json_t *hdr, struct hypr_err *e);
	int (*record)(void *arg, json_t *rec, struct hypr_err *e);
	void *arg;
};

/* Parse a Dockerfile (len bytes, need not be NUL-terminated) and stream its
 * plan to the sink. Every syntax and stage error is found before the
 * header is handed over; memory is linear in len with a small constant.
 * Errors: as hypr_dockerfile_plan. */
int hypr_dockerfile_plan_stream(const char *text, size_t len,
    const struct hypr_dockerfile_opts *o, const struct hypr_dockerfile_sink *sink,
    struct hypr_err *e);

/* Parse a Dockerfile (len bytes, need not be NUL-terminated) into the plan:
 * *header is the stream header object, *records the records in order (a
 * JSON array; warnings are records of type "warning"). Errors: HYPR_EXIT_INPUT
 * with "NAME:LINE: what" for bad input, HYPR_EXIT_USAGE for an unknown
 * target. The caller owns both JSON values. */
int hypr_dockerfile_plan(const char *text, size_t len,
    const struct hypr_dockerfile_opts *o, json_t **header, json_t **records,
    struct hypr_err *e);

/* The host's platform as "linux/amd64", "linux/arm64", ... */
const char *hypr_dockerfile_host_platform(void);

#endif
