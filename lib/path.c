/* path.c - lexical path handling. */
#include "path.h"

#include <stdlib.h>
#include <string.h>

const char *
hypr_path_next(const char **p, size_t *len)
{
	const char *s;

	for (;;) {
		while (**p == '/')
			(*p)++;
		if (**p == '\0')
			return NULL;
		s = *p;
		while (**p && **p != '/')
			(*p)++;
		*len = (size_t)(*p - s);
		if (*len != 1 || s[0] != '.')
			return s;
	}
}

int
hypr_path_dotdot(const char *s, size_t len)
{
	return len == 2 && s[0] == '.' && s[1] == '.';
}

char *
hypr_path_clean(const char *path)
{
	char *out = malloc(strlen(path) + 1), *o = out;
	const char *s;
	size_t len;

	if (out == NULL)
		return NULL;
	while ((s = hypr_path_next(&path, &len)) != NULL) {
		if (hypr_path_dotdot(s, len)) {
			while (o > out && o[-1] != '/')
				o--;
			if (o > out)
				o--;
			continue;
		}
		if (o > out)
			*o++ = '/';
		memcpy(o, s, len);
		o += len;
	}
	*o = '\0';
	return out;
}

int
hypr_path_escapes(const char *path)
{
	const char *s;
	size_t len;
	int depth = 0;

	while ((s = hypr_path_next(&path, &len)) != NULL)
		if (!hypr_path_dotdot(s, len))
			depth++;
		else if (--depth < 0)
			return 1;
	return 0;
}

char *
hypr_path_member(const char *in, int allow_abs, int *bad)
{
	char *out = malloc(strlen(in) + 1), *o = out;
	const char *s;
	size_t len;

	*bad = 0;
	if (out == NULL)
		return NULL;
	if (*in == '/' && !allow_abs) {
		*bad = 1;
		free(out);
		return NULL;
	}
	while ((s = hypr_path_next(&in, &len)) != NULL) {
		if (hypr_path_dotdot(s, len)) {
			*bad = 1;
			free(out);
			return NULL;
		}
		if (o > out)
			*o++ = '/';
		memcpy(o, s, len);
		o += len;
	}
	*o = '\0';
	return out;
}

char *
hypr_path_go_clean(const char *path)
{
	size_t n = strlen(path), r = 0, w = 0, dotdot = 0;
	int rooted;
	char *out;

	if (n == 0)
		return strdup(".");
	out = malloc(n + 2);
	if (out == NULL)
		return NULL;
	rooted = path[0] == '/';
	if (rooted) {
		out[w++] = '/';
		r = dotdot = 1;
	}
	while (r < n) {
		if (path[r] == '/') {
			r++;
		} else if (path[r] == '.' && (r + 1 == n || path[r + 1] == '/')) {
			r++;
		} else if (path[r] == '.' && path[r + 1] == '.' &&
		    (r + 2 == n || path[r + 2] == '/')) {
			r += 2;
			if (w > dotdot) {
				w--;
				while (w > dotdot && out[w] != '/')
					w--;
			} else if (!rooted) {
				if (w > 0)
					out[w++] = '/';
				out[w++] = '.';
				out[w++] = '.';
				dotdot = w;
			}
		} else {
			if ((rooted && w != 1) || (!rooted && w != 0))
				out[w++] = '/';
			while (r < n && path[r] != '/')
				out[w++] = path[r++];
		}
	}
	if (w == 0)
		out[w++] = '.';
	out[w] = '\0';
	return out;
}
