/* map.c - the string-keyed hash map. See map.h. */
#include "map.h"

#include <stdlib.h>
#include <string.h>

uint64_t
hypr_hashn(const char *s, size_t n)
{
	uint64_t h = 1469598103934665603ULL;

	for (size_t i = 0; i < n; i++)
		h = (h ^ (unsigned char)s[i]) * 1099511628211ULL;
	return h;
}

uint64_t
hypr_hash(const char *s)
{
	return hypr_hashn(s, strlen(s));
}

static size_t
slot(const struct hypr_map *m, const char *key)
{
	size_t i = (size_t)hypr_hash(key) & (m->cap - 1);

	while (m->keys[i] != NULL && strcmp(m->keys[i], key) != 0)
		i = (i + 1) & (m->cap - 1);
	return i;
}

void *
hypr_map_get(const struct hypr_map *m, const char *key)
{
	size_t i;

	if (m->cap == 0)
		return NULL;
	i = slot(m, key);
	return m->keys[i] ? m->vals[i] : NULL;
}

static int
grow(struct hypr_map *m)
{
	struct hypr_map n = { .borrow = m->borrow };

	n.cap = m->cap ? m->cap * 2 : 64;
	n.keys = calloc(n.cap, sizeof(*n.keys));
	n.vals = calloc(n.cap, sizeof(*n.vals));
	if (n.keys == NULL || n.vals == NULL) {
		free(n.keys);
		free(n.vals);
		return -1;
	}
	for (size_t i = 0; i < m->cap; i++) {
		if (m->keys[i] != NULL) {
			size_t j = slot(&n, m->keys[i]);

			n.keys[j] = m->keys[i];
			n.vals[j] = m->vals[i];
		}
	}
	n.n = m->n;
	free(m->keys);
	free(m->vals);
	*m = n;
	return 0;
}

void **
hypr_map_slot(struct hypr_map *m, const char *key, int *added)
{
	size_t i;

	if (added)
		*added = 0;
	if ((m->n + 1) * 2 > m->cap && grow(m) < 0)
		return NULL;
	i = slot(m, key);
	if (m->keys[i] == NULL) {
		char *k = m->borrow ? (char *)key : strdup(key);

		if (k == NULL)
			return NULL;
		m->keys[i] = k;
		m->vals[i] = NULL;
		m->n++;
		if (added)
			*added = 1;
	}
	return &m->vals[i];
}

int
hypr_map_set(struct hypr_map *m, const char *key, void *val, void **old)
{
	void **v = hypr_map_slot(m, key, NULL);

	if (old)
		*old = v ? *v : NULL;
	if (v == NULL)
		return -1;
	*v = val;
	return 0;
}

void
hypr_map_free(struct hypr_map *m, void (*freeval)(void *))
{
	for (size_t i = 0; i < m->cap; i++) {
		if (m->keys[i] == NULL)
			continue;
		if (freeval && m->vals[i])
			freeval(m->vals[i]);
		if (!m->borrow)
			free(m->keys[i]);
	}
	free(m->keys);
	free(m->vals);
	m->keys = NULL;
	m->vals = NULL;
	m->n = m->cap = 0;
}
