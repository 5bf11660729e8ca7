/* strbuf.c - growable strings. */
#include "strbuf.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

void
hypr_strbuf_addn(struct hypr_strbuf *b, const char *s, size_t n)
{
	if (b->oom)
		return;
	if (b->cap - b->n <= n) {
		size_t cap = b->cap ? b->cap : 64;
		char *p;

		while (cap - b->n <= n) {
			if (cap > SIZE_MAX / 2) {
				b->oom = 1;
				return;
			}
			cap *= 2;
		}
		if ((p = realloc(b->s, cap)) == NULL) {
			b->oom = 1;
			return;
		}
		b->s = p;
		b->cap = cap;
	}
	memcpy(b->s + b->n, s, n);
	b->n += n;
	b->s[b->n] = '\0';
}

void
hypr_strbuf_add(struct hypr_strbuf *b, const char *s)
{
	hypr_strbuf_addn(b, s, strlen(s));
}

void
hypr_strbuf_addc(struct hypr_strbuf *b, char c)
{
	hypr_strbuf_addn(b, &c, 1);
}

const char *
hypr_strbuf_str(struct hypr_strbuf *b)
{
	if (b->s == NULL)
		hypr_strbuf_addn(b, "", 0);
	return b->s ? b->s : "";
}

void
hypr_strbuf_reset(struct hypr_strbuf *b)
{
	b->n = 0;
	if (b->s)
		b->s[0] = '\0';
}

char *
hypr_strbuf_take(struct hypr_strbuf *b)
{
	char *s = b->oom ? NULL : b->s ? b->s : strdup("");

	if (b->oom)
		free(b->s);
	*b = (struct hypr_strbuf){ 0 };
	return s;
}
