/* libFuzzer target: the .dockerignore matcher (lib/ignore.c). The input is
 * the .dockerignore text, a NUL, then paths to try, one per line. Beyond
 * "no crash", it checks what must hold whatever the patterns:
 * - a refused file fails with bad input naming a line;
 * - a path (context-relative: no leading "/") matches as its cleaned
 *   forms do ("./p", "p//");
 * - without "!" patterns nothing needs a walker to descend;
 * - a literal pattern (no * ? [ \) excludes that very path. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "ignore.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_path(const struct hypr_ignore *ig, const char *path, int exclusions)
{
	char *v;
	int m;

	if (*path == '\0' || *path == '/' || strlen(path) > 1024)
		return;
	m = hypr_ignore_match(ig, path);
	if (asprintf(&v, "./%s", path) >= 0) {
		if (hypr_ignore_match(ig, v) != m)
			__builtin_trap();
		free(v);
	}
	if (path[strlen(path) - 1] != '/' && asprintf(&v, "%s//", path) >= 0) {
		if (hypr_ignore_match(ig, v) != m)
			__builtin_trap();
		free(v);
	}
	if (!exclusions && hypr_ignore_descend(ig, path) != 0)
		__builtin_trap();
}

/* One pattern line alone: a literal one excludes itself. */
static void
check_literal(const char *line)
{
	struct hypr_ignore *ig = NULL;
	struct hypr_err e = { 0 };
	const char *b = line;
	size_t n;

	while (*b == ' ' || *b == '\t')
		b++;
	n = strlen(b);
	if (n == 0 || n > 200 || *b == '#' || *b == '!' || *b == '/' || *b == '.' ||
	    strncmp(b, "\xef\xbb\xbf", 3) == 0 ||	/* a BOM, dropped when first */
	    strpbrk(b, "*?[\\ \t\r\v\f") != NULL || strstr(b, "//") != NULL ||
	    strstr(b, "..") != NULL ||
	    b[n - 1] == '/')
		return;
	if (hypr_ignore_parse(&ig, b, &e) != 0)
		__builtin_trap();	/* a literal is always a valid pattern */
	if (hypr_ignore_match(ig, b) != 1)
		__builtin_trap();
	hypr_ignore_free(ig);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct hypr_ignore *ig = NULL;
	struct hypr_err e = { 0 };
	char *buf, *paths, *p, *save = NULL;
	size_t tl;

	if (size > 8192)
		return 0;
	if ((buf = malloc(size + 2)) == NULL)
		return 0;
	memcpy(buf, data, size);
	buf[size] = buf[size + 1] = '\0';
	tl = strlen(buf);
	paths = tl < size ? buf + tl + 1 : buf + size;
	if (hypr_ignore_parse(&ig, buf, &e) != 0) {
		if (e.code != HYPR_EXIT_INPUT || strncmp(e.msg, ".dockerignore:", 14) != 0)
			__builtin_trap();
		free(buf);
		return 0;
	}
	{
		int exclusions = strchr(buf, '!') != NULL;

		for (p = strtok_r(paths, "\n", &save); p; p = strtok_r(NULL, "\n", &save))
			check_path(ig, p, exclusions);
		check_path(ig, "a/b/c.txt", exclusions);
	}
	hypr_ignore_free(ig);
	for (p = strtok_r(buf, "\n", &save); p; p = strtok_r(NULL, "\n", &save))
		check_literal(p);
	free(buf);
	return 0;
}
