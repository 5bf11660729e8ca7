/* compose.h - the build side of a Compose file (compose.yaml), read with libyaml.
 *
 * Only what building needs: each service's image: and build: (string form, or
 * context, dockerfile or dockerfile_inline, args as a list or a map, target,
 * labels, tags, no_cache, pull). Scalars are interpolated as Compose does ($V, ${V}, ${V:-w}, ${V-w},
 * ${V:?msg}, ${V?msg}, $$). Keys hypr cannot honour are reported as warnings
 * in the result, never dropped silently; lib never prints. */
#ifndef HYPR_COMPOSE_H
#define HYPR_COMPOSE_H

#include <stddef.h>
#include "err.h"

struct hypr_compose_kv {
	char *key;
	char *value;		/* NULL: a bare key, its value comes from the environment */
};

struct hypr_compose_service {
	char *name;
	char *image;		/* image: or NULL */
	int has_build;		/* 0: nothing to build */
	char *context;		/* absolute or relative to the compose file's directory */
	char *dockerfile;	/* NULL for the default; relative paths are to the context */
	char *dockerfile_inline;	/* the Dockerfile's text itself, or NULL */
	char *target;		/* NULL for the last stage */
	struct hypr_compose_kv *args;
	size_t nargs;
	struct hypr_compose_kv *labels;
	size_t nlabels;
	char **tags;		/* build.tags: extra names */
	size_t ntags;
	int no_cache;		/* build.no_cache: true */
	int pull;		/* build.pull: true */
};

struct hypr_compose {
	char *file;		/* the compose file as given */
	char *dir;		/* its directory (absolute) */
	char *name;		/* top-level name: or NULL */
	struct hypr_compose_service *services;	/* in file order */
	size_t nservices;
	char **warnings;	/* "compose.yaml:LINE: ..." each */
	size_t nwarnings;
};

/* Find the default compose file in dir: compose.yaml, compose.yml,
 * docker-compose.yml, docker-compose.yaml (first found). HYPR_EXIT_USAGE if none. */
int hypr_compose_find(const char *dir, char *out, size_t n, struct hypr_err *e);
/* Read and check a compose file. Malformed YAML or a bad shape: HYPR_EXIT_INPUT
 * with "file:LINE: what"; a failed load leaves nothing to free (freeing it
 * anyway is harmless). */
int hypr_compose_load(struct hypr_compose *c, const char *path, struct hypr_err *e);
void hypr_compose_free(struct hypr_compose *c);
/* Normalise a project name as Compose does: lowercase, keep [a-z0-9_-], must
 * start with a letter or digit. Returns 0, or -1 when nothing valid remains. */
int hypr_compose_project_name(const char *raw, char *out, size_t n);
/* Compose-style interpolation of one scalar against the environment. */
int hypr_compose_interpolate(const char *in, char **out, struct hypr_err *e);

#endif
