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
/* Does a relative path climb above where it starts (one ".." too many)? */
int hypr_path_escapes(const char *path);

#endif
