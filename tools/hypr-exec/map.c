/* map.c - a small open-addressing string map. */
#include "exec.h"

#include <stdlib.h>
#include <string.h>

static size_t
hash(const char *s)
{
	size_t h = 1469598103934665603ull;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ull;
	return h;
}

static size_t
slot(const struct map *m, const char *key)
{
	size_t i = hash(key) & (m->cap - 1);

	while (m->keys[i] != NULL && strcmp(m->keys[i], key) != 0)
		i = (i + 1) & (m->cap - 1);
	return i;
}

void *
map_get(const struct map *m, const char *key)
{
	size_t i;

	if (m->cap == 0)
		return NULL;
	i = slot(m, key);
	return m->keys[i] ? m->vals[i] : NULL;
}

static int
grow(struct map *m)
{
	struct map n = { 0 };

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

int
map_set(struct map *m, const char *key, void *val, void **old)
{
	size_t i;

	if (old)
		*old = NULL;
	if ((m->n + 1) * 2 > m->cap && grow(m) < 0)
		return -1;
	i = slot(m, key);
	if (m->keys[i] != NULL) {
		if (old)
			*old = m->vals[i];
		m->vals[i] = val;
		return 0;
	}
	if ((m->keys[i] = strdup(key)) == NULL)
		return -1;
	m->vals[i] = val;
	m->n++;
	return 0;
}

void
map_free(struct map *m, void (*freeval)(void *))
{
	for (size_t i = 0; i < m->cap; i++) {
		if (m->keys[i] != NULL) {
			free(m->keys[i]);
			if (freeval)
				freeval(m->vals[i]);
		}
	}
	free(m->keys);
	free(m->vals);
	memset(m, 0, sizeof(*m));
}

void
tnode_free(void *p)
{
	struct tnode *n = p;

	if (n != NULL)
		free(n->link);
	free(n);
}
