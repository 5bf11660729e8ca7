/* compose_int.h - private to lib/compose*.c: the reader (compose.c), its
 * variables (compose_env.c) and the merge of several files
 * (compose_merge.c). */
#ifndef HYPR_COMPOSE_INT_H
#define HYPR_COMPOSE_INT_H

#include <yaml.h>
#include "compose.h"

static inline int
compose_oom(struct hypr_err *e)
{
	return hypr_err_set(e, HYPR_EXIT_SYSTEM, "out of memory");
}

/* A node's line in its file (1-based). */
static inline long
compose_line(const yaml_node_t *n)
{
	return (long)n->start_mark.line + 1;
}

/* A scalar node's text, else NULL. */
static inline const char *
compose_scalar(const yaml_node_t *n)
{
	return n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

/* Set key to val in a key/value list (both taken); a later entry replaces
 * an earlier one. */
int compose_kv_set(struct hypr_compose_kv **v, size_t *n, char *key, char *val,
    struct hypr_err *e);

/* A growing NUL-terminated string. */
struct compose_sbuf {
	char *p;
	size_t n, cap;
};
int compose_sb_add(struct compose_sbuf *s, const char *p, size_t n);

/* Called for a $VAR or ${VAR} that is unset (name[0..len)); -1 stops. */
typedef int (*compose_unset_fn)(void *arg, const char *name, size_t len);
/* Compose's interpolation of one scalar: a variable from the environment,
 * else env (a later entry wins). */
int compose_interp(const char *in, char **out, const struct hypr_compose_kv *env,
    size_t nenv, compose_unset_fn unset, void *arg, struct hypr_err *e);

/* The merged document: node i+1 came from file[i]. */
struct compose_mdoc {
	yaml_document_t d;
	int *file;
	size_t n;
	const char *fname;	/* the file being merged, for messages */
	struct hypr_err *e;
};
/* Merge file number fi's document into m (fi 0: copied as the root). */
int compose_merge(struct compose_mdoc *m, yaml_document_t *src, int fi);

#endif
