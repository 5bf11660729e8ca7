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
