/* map.h - one string-keyed hash map (open addressing, FNV-1a) for all of
 * lib and the tools. Keys are copied, unless the map borrows them (set
 * borrow before the first insert: each key must then outlive the map). */
#ifndef HYPR_MAP_H
#define HYPR_MAP_H

#include <stddef.h>
#include <stdint.h>

struct hypr_map {
	char **keys;
	void **vals;
	size_t n, cap;		/* entries; slots (0 or a power of two) */
	int borrow;		/* keys are the caller's, not copies */
};

/* FNV-1a of a string (also for callers' own tables). */
uint64_t hypr_hash(const char *s);
uint64_t hypr_hashn(const char *s, size_t n);
/* The value of key, or NULL. */
void *hypr_map_get(const struct hypr_map *m, const char *key);
/* Set key to val; *old (may be NULL) gets the value it replaces or NULL.
 * 0, or -1 when out of memory. */
int hypr_map_set(struct hypr_map *m, const char *key, void *val, void **old);
/* The value slot of key, inserted (holding NULL) when missing, for
 * in-place updates; *added (may be NULL) says which. NULL when out of
 * memory. The slot moves on the next insert. */
void **hypr_map_slot(struct hypr_map *m, const char *key, int *added);
/* Free the table, the copied keys and (freeval non-NULL) every value. */
void hypr_map_free(struct hypr_map *m, void (*freeval)(void *));

#endif
