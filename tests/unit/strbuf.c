/* Unit tests for lib/strbuf: appends, reset, take. */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "strbuf.h"

int
main(void)
{
	struct hypr_strbuf b = { 0 };
	char *s;

	CHECK(strcmp(hypr_strbuf_str(&b), "") == 0);
	hypr_strbuf_add(&b, "ab");
	hypr_strbuf_addc(&b, 'c');
	hypr_strbuf_addn(&b, "defXX", 3);
	CHECK(b.n == 6 && strcmp(hypr_strbuf_str(&b), "abcdef") == 0);
	for (int i = 0; i < 1000; i++)
		hypr_strbuf_addc(&b, 'x');
	CHECK(b.n == 1006 && b.s[1006] == '\0' && !b.oom);
	hypr_strbuf_reset(&b);
	CHECK(b.n == 0 && strcmp(hypr_strbuf_str(&b), "") == 0);
	hypr_strbuf_add(&b, "z");
	s = hypr_strbuf_take(&b);
	CHECK(s && strcmp(s, "z") == 0 && b.s == NULL && b.n == 0);
	free(s);
	s = hypr_strbuf_take(&b);	/* empty: "" not NULL */
	CHECK(s && *s == '\0');
	free(s);
	b.oom = 1;			/* out of memory: NULL */
	CHECK(hypr_strbuf_take(&b) == NULL && !b.oom);
	CHECK_DONE();
}
