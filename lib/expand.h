/* expand.h - Dockerfile variable expansion ($V ${V} ${V:-w} ${V-w} ${V:+w}
 * ${V+w} ${V:?msg} ${V?msg}) and word splitting, as BuildKit's shell lexer. */
#ifndef HYPR_EXPAND_H
#define HYPR_EXPAND_H

#include <stddef.h>
#include "err.h"

/* An ordered set of variables ("K=V" strings); later set() replaces.
 * Zero-initialise; read kv[0..n) freely, change it only through these
 * functions (they keep an index). */
struct hypr_vars {
	char **kv;
	size_t n, cap;
	size_t *idx;		/* open-addressing index: position + 1, 0 empty */
	size_t icap;
};

/* Set K to V (copies both). */
int hypr_vars_set(struct hypr_vars *v, const char *key, const char *val);
/* Set from one "K=V" string. */
int hypr_vars_setkv(struct hypr_vars *v, const char *kv);
/* Value of key, or NULL when unset (an empty value is "", not NULL). */
const char *hypr_vars_get(const struct hypr_vars *v, const char *key);
/* Remove key if set. */
void hypr_vars_unset(struct hypr_vars *v, const char *key);
/* Deep copy. */
int hypr_vars_copy(struct hypr_vars *dst, const struct hypr_vars *src);
void hypr_vars_free(struct hypr_vars *v);

/* What variables may add to one expansion (one word, or the words of one
 * call), in bytes: more fails with HYPR_EXIT_INPUT, so that a chain of
 * ENV L2=${L1}${L1}... cannot grow without bound. */
#define HYPR_EXPAND_MAX (1u << 20)

/* Expand variables in one word; quotes are processed (removed) as BuildKit
 * does for instruction arguments. escape is '\\' or '`'. *out is malloc'd.
 * ${V:?msg} on an unset/empty V fails with HYPR_EXIT_INPUT and the message;
 * so do more than HYPR_EXPAND_MAX bytes from variables, and a substitution
 * pattern that takes too long to match. */
int hypr_expand_word(const char *word, const struct hypr_vars *vars, int escape,
    char **out, struct hypr_err *e);
/* Expand then split on unquoted whitespace into malloc'd words (NULL-terminated
 * array, *n words); used for COPY/ADD sources, EXPOSE, VOLUME, USER, etc. */
int hypr_expand_words(const char *text, const struct hypr_vars *vars, int escape,
    char ***words, size_t *n, struct hypr_err *e);
/* Free a NULL-terminated word array. */
void hypr_words_free(char **words);

#endif
