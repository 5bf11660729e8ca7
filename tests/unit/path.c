/* Unit tests for lib/path: components, cleaning, escapes. */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "path.h"

static int
clean_is(const char *in, const char *want)
{
	char *s = hypr_path_clean(in);
	int ok = s && strcmp(s, want) == 0;

	if (!ok)
		fprintf(stderr, "clean(%s) = %s, want %s\n", in, s ? s : "NULL", want);
	free(s);
	return ok;
}

int
main(void)
{
	const char *p = "//a/./bc//../", *s;
	size_t len;

	CHECK((s = hypr_path_next(&p, &len)) && len == 1 && *s == 'a');
	CHECK((s = hypr_path_next(&p, &len)) && len == 2 && s[0] == 'b');
	CHECK((s = hypr_path_next(&p, &len)) && hypr_path_dotdot(s, len));
	CHECK(hypr_path_next(&p, &len) == NULL);
	CHECK(!hypr_path_dotdot("...", 3) && !hypr_path_dotdot(".", 1));

	CHECK(clean_is("", ""));
	CHECK(clean_is("/", ""));
	CHECK(clean_is("./a//b/", "a/b"));
	CHECK(clean_is("/a/b/../c/.", "a/c"));
	CHECK(clean_is("../../x", "x"));
	CHECK(clean_is("a/../..", ""));
	CHECK(clean_is("a/..b/.c", "a/..b/.c"));

	CHECK(!hypr_path_escapes("a/b/../.."));
	CHECK(!hypr_path_escapes("/./a"));
	CHECK(hypr_path_escapes("a/../.."));
	CHECK(hypr_path_escapes("/../etc"));
	CHECK(!hypr_path_escapes("..."));
	CHECK_DONE();
}
