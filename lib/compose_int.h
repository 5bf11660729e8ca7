/* compose_int.h - private to lib/compose*.c: the reader (compose.c), its
 * variables (compose_env.c) and the merge of several files
 * (compose_merge.c). */
#ifndef HYPR_COMPOSE_INT_H
#define HYPR_COMPOSE_INT_H

#include <yaml.h>
#include "compose.h"

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
