/* libFuzzer target: variable expansion and word splitting, and the
 * .dockerignore matcher. The first byte picks the escape character. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "expand.h"
#include "ignore.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct hypr_vars v = { 0 };
	struct hypr_err e = { 0 };
	struct hypr_ignore *ig = NULL;
	char *s, *out = NULL, **words = NULL;
	size_t n = 0;
	int esc;

	if (size == 0 || size > 4096)
		return 0;
	esc = data[0] & 1 ? '`' : '\\';
	s = malloc(size);
	if (s == NULL)
		return 0;
	memcpy(s, data + 1, size - 1);
	s[size - 1] = '\0';
	hypr_vars_set(&v, "A", "a b");
	hypr_vars_set(&v, "EMPTY", "");
	hypr_vars_set(&v, "P", "/x/y/z.tar.gz");
	if (hypr_expand_word(s, &v, esc, &out, &e) == 0)
		free(out);
	if (hypr_expand_words(s, &v, esc, &words, &n, &e) == 0) {
		for (size_t i = 0; i < n; i++)
			if (words[i] == NULL)
				__builtin_trap();
		if (words[n] != NULL)
			__builtin_trap();
		hypr_words_free(words);
	}
	if (hypr_ignore_parse(&ig, s, &e) == 0) {
		hypr_ignore_match(ig, "a/b/c.txt");
		hypr_ignore_match(ig, s);
		hypr_ignore_descend(ig, "a/b");
		hypr_ignore_free(ig);
	}
	hypr_vars_free(&v);
	free(s);
	return 0;
}
