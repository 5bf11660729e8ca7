/* cache.h - the build caches under $HYPR_ROOT, one owner for each format
 * (hypr(7)):
 *   cachemounts/<hex>.ext4   RUN --mount=type=cache: an ext4 image per id,
 *                            locked (flock) while a build VM uses it */
#ifndef HYPR_CACHE_H
#define HYPR_CACHE_H

#include <stddef.h>
#include <stdint.h>
#include "cas.h"
#include "err.h"

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
