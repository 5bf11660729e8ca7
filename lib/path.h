/* path.h - lexical path handling: components, cleaning, escapes. Nothing
 * here touches the filesystem. */
#ifndef HYPR_PATH_H
#define HYPR_PATH_H

#include <stddef.h>

/* Next component at *p, skipping "/" runs and "." components: returns its
 * start and sets *len, leaving *p just past it; NULL at the end. */
const char *hypr_path_next(const char **p, size_t *len);
/* Is the component s (len bytes) ".."? */
int hypr_path_dotdot(const char *s, size_t len);
/* Clean a path as if rooted: no leading or trailing "/", no "." components,
 * ".." stops at the root ("" is the root). malloc'd, NULL when out of memory. */
char *hypr_path_clean(const char *path);
/* A tar member name as "a/b/c" ("" for the root): "." and empty
 * components dropped; a ".." (and, unless allow_abs, a leading "/") refused:
 * NULL with *bad set (NULL without it: out of memory). malloc'd. */
char *hypr_path_member(const char *in, int allow_abs, int *bad);
/* Go's path.Clean (.dockerignore's rules): "." for empty, a leading "/" and
 * leading ".." kept, the rest lexically cleaned. malloc'd. */
char *hypr_path_go_clean(const char *path);
/* Does a relative path climb above where it starts (one ".." too many)? */
int hypr_path_escapes(const char *path);

#endif
