/* cacheio.h - the instruction cache out and in (hypr-cache(5)): an OCI
 * artifact in a registry (type=registry,ref=R) or in an OCI layout
 * directory (type=local,dest=DIR / src=DIR). Its config is the index (cache
 * key -> op, created_by, created, layer descriptor or none), its layers the
 * stored layer tars as they are (their digest is their diff_id).
 *
 * hypr-fetch exports (cache-export) and imports an index (plan mode,
 * --cache-from: the manifest and the index into the store, named in the
 * resolved plan's header); hypr-exec looks keys up in it and fetches a
 * layer blob only when the build needs its bytes (hypr_cacheio_blob). */
#ifndef HYPR_CACHEIO_H
#define HYPR_CACHEIO_H

#include <stdint.h>
#include <stdio.h>
#include <jansson.h>
#include "cas.h"
#include "err.h"

#define HYPR_CACHE_ARTIFACT_TYPE "application/vnd.hypr.cache.v1"
#define HYPR_CACHE_INDEX_TYPE "application/vnd.hypr.cache.index.v1+json"
#define HYPR_CACHE_INDEX_MAX (64u << 20)

/* One --cache-from or --cache-to value. */
struct hypr_cache_spec {
	int local;		/* type=local (else type=registry) */
	int max;		/* mode=max (export: every stage) */
	char ref[600];		/* registry: the reference as given */
	char dir[4096];		/* local: dest= (to) or src= (from) */
};

/* Parse buildx's syntax: type=registry,ref=R[,mode=min|max] or
 * type=local,dest=DIR|src=DIR[,mode=...]; a bare R is a registry ref.
 * to: a --cache-to (dest=, mode=) rather than a --cache-from (src=).
 * Unsupported types and keys are usage errors. */
int hypr_cache_spec_parse(const char *s, int to, struct hypr_cache_spec *sp,
    struct hypr_err *e);

/* Export entries (an array of index entries: key, op, created_by, created,
 * layer or null; every layer's blob in the store) to sp. progress may be
 * NULL. digest (may be NULL) gets the artifact manifest's digest. */
int hypr_cacheio_export(const struct hypr_root *root, const struct hypr_cache_spec *sp,
    const char *insecure, json_t *entries, FILE *progress,
    char digest[HYPR_DIGEST_LEN + 1], struct hypr_err *e);

/* Import sp's index into the store (verified): index gets its digest. */
int hypr_cacheio_import(const struct hypr_root *root, const struct hypr_cache_spec *sp,
    const char *insecure, char index[HYPR_DIGEST_LEN + 1], struct hypr_err *e);

/* The stored index as an object: cache key -> entry (new reference). */
json_t *hypr_cacheio_load(const struct hypr_root *root, const char *index,
    struct hypr_err *e);

/* Fetch one layer blob the index named from source (a spec's text) into
 * the store, verifying its digest (and size when size >= 0). */
int hypr_cacheio_blob(const struct hypr_root *root, const char *source, const char *digest,
    int64_t size, struct hypr_err *e);

#endif
