/* fetch.h - hypr-fetch's internal interfaces. */
#ifndef HYPR_FETCH_H
#define HYPR_FETCH_H

#include <stdint.h>
#include <jansson.h>
#include "cas.h"
#include "err.h"
#include "ref.h"

enum pull_policy { PULL_MISSING, PULL_ALWAYS, PULL_NEVER };

struct fetch {
	struct hypr_root root;
	enum pull_policy pull;
	char insecure[2048];	/* --insecure-registry list */
	int jobs;		/* parallel layer downloads */
	int quiet;
	uint64_t max_layer;	/* HYPR_PULL_MAX_LAYER: a layer's size, packed or not */
	json_t *memo;		/* "ref platform" -> image object, this run */
	char top[HYPR_DIGEST_LEN + 1];	/* last resolve: what the reference names */
	int networked;		/* a resolve asked a registry */
	char **cache_from;	/* --cache-from values (cache.c) */
	size_t ncache_from;
};

/* Resolve ref for platform (NULL: host) to an image object (new reference):
 * {ref,digest,config,platform,layers,diff_ids[,index]}, pulling what the store
 * lacks as the pull policy allows. */
int fetch_resolve(struct fetch *f, const char *ref, const char *platform,
    json_t **image, struct hypr_err *e);
/* Load an OCI layout directory or a docker-save tar; record name (may be
 * NULL: names found inside) and print what was loaded. */
int fetch_load(struct fetch *f, const char *path, const char *name,
    struct hypr_err *e);

/* After a pull of ref resolved to img: the squashfs artifact hypr push
 * attached to it (hypr-artifact(5)), its blobs verified and the image
 * stored ready to boot under ref's tag, with the ID its manifest gives
 * (into id). 1 stored, 0 no artifact (a plain OCI image), -1 error. */
int fetch_artifact(struct fetch *f, const char *ref, json_t *img, char *id, size_t idn,
    struct hypr_err *e);

/* Push the stored image tagged what (NAME[:TAG], default latest), or with
 * all_tags every tag of NAME, to its registry (lib/push.h); one line per
 * tag on stdout, progress on stderr. root: the store (NULL: default).
 * artifact 0: the OCI image without its squashfs artifact. */
int fetch_push(struct fetch *f, const char *root, const char *what, int all_tags,
    int artifact, struct hypr_err *e);

/* Write the stored images names (tags, IDs or ID prefixes) as one tar
 * (lib/save.h) to out, through out.tmp.<pid> and a rename, or to stdout
 * when out is NULL (refused on a terminal); format "docker" (NULL) or
 * "oci". root: the store (NULL: default). */
int fetch_save(struct fetch *f, const char *root, const char *out, const char *format,
    char *const *names, size_t n, struct hypr_err *e);

/* Plan mode: read a plan on stdin, resolve every image it names for
 * platform (NULL: the plan's or the host's), write the resolved plan. */
int fetch_stream(struct fetch *f, const char *platform, struct hypr_err *e);
/* Check user's password (or one line of stdin with pwstdin) against
 * server's registry, then store it; "Login Succeeded" unless quiet. */
int fetch_login(struct fetch *f, const char *server, const char *user, const char *password,
    int pwstdin, struct hypr_err *e);

/* cache.c: import every --cache-from into the store and name them in the
 * resolved header hdr; one that cannot be read is a warning (as buildx). */
int fetch_cache_from(struct fetch *f, json_t *hdr, struct hypr_err *e);
/* hypr-fetch cache-export --to SPEC: the cache of the build whose steps
 * stream is on stdin (hypr-cache(5)). */
int fetch_cache_export(struct fetch *f, const char *to, struct hypr_err *e);

#endif
