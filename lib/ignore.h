/* ignore.h - .dockerignore matching with Docker's rules: patterns are
 * cleaned (leading "/" and "./" dropped), `**` matches any number of path
 * components, `!` re-includes, the last matching pattern wins, comments (#)
 * and blank lines are skipped; a pattern matching a directory excludes all
 * below it unless a later exception names something inside. */
#ifndef HYPR_IGNORE_H
#define HYPR_IGNORE_H

#include "err.h"

struct hypr_ignore;

/* Parse .dockerignore text. A pattern Go's filepath.Match rejects ([]a],
 * [-], [x-], [a-b-c], a trailing \) fails with HYPR_EXIT_INPUT and
 * "NAME:LINE: syntax error in pattern 'P'", as it fails a BuildKit build;
 * [...] classes match characters (UTF-8), not bytes. */
int hypr_ignore_parse(struct hypr_ignore **ig, const char *text, struct hypr_err *e);
/* Load CONTEXT/.dockerignore (or `<dockerfile>.dockerignore` beside the
 * Dockerfile when dockerfile is non-NULL and that file exists); a missing
 * file gives an empty matcher. */
int hypr_ignore_load(struct hypr_ignore **ig, const char *context,
    const char *dockerfile, struct hypr_err *e);
/* 1 if the context-relative path (no leading "/") is excluded, else 0. */
int hypr_ignore_match(const struct hypr_ignore *ig, const char *path);
/* 1 if an excluded directory may still hold re-included paths (an exception
 * pattern could match below it), so a walker must descend. */
int hypr_ignore_descend(const struct hypr_ignore *ig, const char *dir);
void hypr_ignore_free(struct hypr_ignore *ig);

#endif
