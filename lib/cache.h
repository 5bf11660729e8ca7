/* cache.h - the build caches under $HYPR_ROOT, one owner for each format
 * (hypr(7) has them):
 *   cache/<hex>.json          an instruction's entry: its cache key -> its
 *                             layer (or none), op, created_by, created
 *   cache/squashfs/<hex>.json a layer chain and squash options -> the
 *                             squashfs blob (digest, size)
 *   cachemounts/<hex>.ext4    RUN --mount=type=cache: an ext4 image per id,
 *                             locked (flock) while a build VM uses it
 * An entry is a hint, checked on every use (its blob must be there); a
 * torn or missing entry is a miss, never an error. */
#ifndef HYPR_CACHE_H
#define HYPR_CACHE_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>
#include "cas.h"
#include "err.h"
#include "record.h"

/* ---- instruction entries ---- */

/* Record that key made layer (NULL for no layer). The first 64 of a
 * process are fsynced, not their directory: hypr_cache_sync after a
 * batch. */
int hypr_cache_put(const struct hypr_root *r, const char *key, const char *op,
    const char *created_by, const struct hypr_layer *layer, const char *created,
    struct hypr_err *e);
/* The entries written since the last call on disk: the directory's fsync,
 * or past 64 entries one syncfs of the file system. */
int hypr_cache_sync(const struct hypr_root *r, struct hypr_err *e);
/* Look key up: 1 a hit (*layer and *has_layer set: 0 when the step made
 * none), 0 a miss (no entry, a torn one, or its layer's blob gone). */
int hypr_cache_get(const struct hypr_root *r, const char *key, struct hypr_layer *layer,
    int *has_layer);

/* ---- chain squashfs entries ---- */

/* The squashfs blob recorded for a chain key: 1 (digest, *size), or 0. */
int hypr_cache_squashfs_get(const struct hypr_root *r, const char *key,
    char digest[HYPR_DIGEST_LEN + 1], uint64_t *size);
/* Record a chain key's squashfs (layers and opts for the reader's eyes). */
int hypr_cache_squashfs_put(const struct hypr_root *r, const char *key,
    const char *const *layers, size_t n, const char *digest, uint64_t size,
    json_t *opts, struct hypr_err *e);

/* ---- both, for df and prune ---- */

/* Every entry of both kinds: fn gets its path, and the blobs it names
 * (NULL-terminated; none for an entry that does not parse), and broken when
 * it does not parse or names a blob that is gone. */
void hypr_cache_each(const struct hypr_root *r,
    void (*fn)(void *arg, const char *path, const char *const *blobs, int broken),
    void *arg);

/* ---- cache mounts ---- */

/* The image file of a cache mount id (whether or not it exists). */
int hypr_cachemount_path(const struct hypr_root *r, const char *id, char *buf, size_t n,
    struct hypr_err *e);
/* Every cache mount image: each (may be NULL) gets its file name, whether
 * a build holds it, its allocated bytes and whether it was removed. With
 * reclaim, those no build holds are removed (under their lock). */
struct hypr_cachemount_usage {
	size_t n, live;
	uint64_t bytes, freed;
};
int hypr_cachemount_scan(const struct hypr_root *r, int reclaim,
    void (*each)(void *arg, const char *name, int live, uint64_t bytes, int removed),
    void *arg, struct hypr_cachemount_usage *u, struct hypr_err *e);

#endif
