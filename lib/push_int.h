/* push_int.h - what push.c and push_blob.c share (not an API). */
#ifndef HYPR_PUSH_INT_H
#define HYPR_PUSH_INT_H

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include "digest.h"
#include "push.h"
#include "registry.h"

struct push {
	struct hypr_registry g;
	pthread_mutex_t mu;	/* res's counters (blobs go up in parallel) */
	const struct hypr_root *root;
	FILE *out;
	uint64_t chunk;
	char from[256];		/* the base's repository on this registry, or "" */
	struct hypr_push_result *res;
};

/* "<12 hex>: what" on the progress stream. */
void push_say(struct push *p, const char *digest, const char *what);
/* One more in a res counter (threads share them). */
void push_count(struct push *p, unsigned *n);
/* "<domain>: <what> <digest>: <why>" for an unexpected answer; -1. */
int push_answer_err(struct push *p, const char *what, const char *digest,
    const struct hypr_registry_answer *a, struct hypr_err *e);
/* Make sure the registry has the blob (a file, or buf of len bytes):
 * HEAD, a mount when mountable (the base's repository), or an upload. */
int push_blob(struct push *p, const char *file, const char *digest, uint64_t size,
    int mountable, struct hypr_err *e);
int push_buf(struct push *p, const char *buf, size_t len, char digest[HYPR_DIGEST_LEN + 1],
    struct hypr_err *e);
/* The stored tar gzip'd (gzip.h) into a temp file (out); its digest and size. */
int push_gzip_file(struct push *p, const char *src, char *out, size_t n,
    char digest[HYPR_DIGEST_LEN + 1], uint64_t *size, struct hypr_err *e);
/* The stored tar blob (layer d) gzip'd on its way up: 0 with gd and
 * *gsize; 1 when the registry dropped the upload (send it from a file);
 * -1 with e. */
int push_stream_layer(struct push *p, const char *blob, const char *d,
    char gd[HYPR_DIGEST_LEN + 1], uint64_t *gsize, struct hypr_err *e);

#endif
