/* Unit tests for lib/ignore.c: .dockerignore rules as moby/patternmatcher. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "ignore.h"

static int failures;

/* Patterns (one text), then a path and whether it is excluded. */
static void
t(const char *text, const char *path, int want)
{
	struct hypr_ignore *ig = NULL;
	struct hypr_err e = { 0 };
	int got;

	if (hypr_ignore_parse(&ig, text, &e) != 0) {
		fprintf(stderr, "FAIL parse '%s': %s\n", text, e.msg);
		failures++;
		return;
	}
	got = hypr_ignore_match(ig, path);
	if (got != want) {
		fprintf(stderr, "FAIL [%s] %s: want %d got %d\n", text, path, want, got);
		failures++;
	}
	hypr_ignore_free(ig);
}

static void
descend(const char *text, const char *dir, int want)
{
	struct hypr_ignore *ig = NULL;
	struct hypr_err e = { 0 };

	if (hypr_ignore_parse(&ig, text, &e) != 0) {
		fprintf(stderr, "FAIL parse '%s': %s\n", text, e.msg);
		failures++;
		return;
	}
	if (hypr_ignore_descend(ig, dir) != want) {
		fprintf(stderr, "FAIL descend [%s] %s: want %d\n", text, dir, want);
		failures++;
	}
	hypr_ignore_free(ig);
}

static void
bad(const char *text)
{
	struct hypr_ignore *ig = NULL;
	struct hypr_err e = { 0 };

	if (hypr_ignore_parse(&ig, text, &e) != -1 || e.code != 3) {
		fprintf(stderr, "FAIL bad pattern accepted: '%s'\n", text);
		failures++;
		hypr_ignore_free(ig);
	}
}

int
main(void)
{
	/* plain names, parents */
	t("", "a", 0);
	t("foo", "foo", 1);
	t("foo", "foo/bar", 1);
	t("foo", "foo/bar/baz", 1);
	t("foo", "foobar", 0);
	t("foo", "x/foo", 0);
	t("foo/bar", "foo/bar/x", 1);
	t("foo/bar", "foo", 0);
	/* cleaning: leading / and ./, trailing /, .., doubled slashes */
	t("/foo", "foo", 1);
	t("./foo", "foo", 1);
	t("foo/", "foo/x", 1);
	t("a//b/../c", "a/c", 1);
	t("  foo  ", "foo", 1);
	t("foo\r\n", "foo", 1);
	/* comments and blank lines */
	t("# foo\n\nbar", "foo", 0);
	t("# foo\n\nbar", "bar", 1);
	t(" # foo", "# foo", 1);	/* only a leading # is a comment */
	/* * and ? never cross / */
	t("*.go", "a.go", 1);
	t("*.go", "x/a.go", 0);
	t("*/*.go", "x/a.go", 1);
	t("?.go", "a.go", 1);
	t("?.go", "ab.go", 0);
	t("a?b", "a/b", 0);
	t("*", "anything", 1);
	t("*", "dir/file", 1);	/* parent matches */
	/* ** */
	t("**/*.go", "a.go", 1);
	t("**/*.go", "x/y/a.go", 1);
	t("**/foo", "foo", 1);
	t("**/foo", "a/b/foo", 1);
	t("**/foo", "a/bfoo", 0);
	t("foo/**", "foo/x/y", 1);
	t("foo/**/bar", "foo/bar", 1);
	t("foo/**/bar", "foo/a/b/bar", 1);
	t("foo/**/bar", "foo/a/b/baz", 0);
	t("**", "x/y", 1);
	t("a**b", "ab", 1);
	t("a**b", "ax/b", 1);
	/* classes and escapes */
	t("[abc].txt", "b.txt", 1);
	t("[a-c].txt", "d.txt", 0);
	t("[^a].txt", "a.txt", 0);
	t("[^a].txt", "b.txt", 1);
	t("\\*.txt", "*.txt", 1);
	t("\\*.txt", "a.txt", 0);
	t("a.b", "axb", 0);
	t("a+b(c)", "a+b(c)", 1);
	/* exceptions: last match wins */
	t("*.md\n!README.md", "README.md", 0);
	t("*.md\n!README.md", "CHANGES.md", 1);
	t("*.md\n!README.md\nREADME*", "README.md", 1);
	t("!README.md\n*.md", "README.md", 1);
	t("docs\n!docs/keep.md", "docs/keep.md", 0);
	t("docs\n!docs/keep.md", "docs/other.md", 1);
	t("docs\n!docs/keep.md", "docs", 1);
	t("*\n!src", "src/main.c", 0);
	t("*\n!src", "other", 1);
	t("**\n!**/*.c", "a/b/x.c", 0);
	t("! foo", "foo", 0);
	t("!/foo\nfoo", "foo", 1);
	/* the context itself is never excluded */
	t("*", ".", 0);
	t("*", "", 0);

	descend("docs\n!docs/keep.md", "docs", 1);
	descend("docs\n!docs/keep.md", "other", 0);
	descend("docs", "docs", 0);
	descend("*\n!src/**", "src", 1);
	descend("*\n!**/*.c", "anything", 1);
	descend("*\n!a/b/c", "a/b", 1);
	descend("*\n!a/b/c", "a/x", 0);
	descend("*\n!a/*/c", "a/q", 1);

	bad("!");
	bad("  !  ");
	bad("[abc");
	/* what Go's filepath.Match rejects */
	bad("[]a]");
	bad("[-]");
	bad("[x-]");
	bad("[a-b-c]");
	bad("a\\");
	bad("[^]");
	bad("[\xff]");
	bad("ok\n[");
	/* classes match characters (UTF-8), not bytes */
	t("a[^a]b", "a\xe2\x98\xba" "b", 1);
	t("a[\xe2\x98\xba" "]b", "a\xe2\x98\xba" "b", 1);
	t("a[a-\xe2\x98\xbb" "]b", "a\xe2\x98\xba" "b", 1);
	t("a?b", "a\xe2\x98\xba" "b", 1);
	t("a[^a]b", "a\xff" "b", 1);
	t("[\\]]", "]", 1);
	t("[a\\-z]", "-", 1);
	t("[a\\-z]", "b", 0);

	/* load from a context and from <dockerfile>.dockerignore */
	{
		char dir[] = "/tmp/hypr-ignore-XXXXXX", p[256];
		struct hypr_ignore *ig = NULL;
		struct hypr_err e = { 0 };
		FILE *f;

		if (mkdtemp(dir) == NULL)
			return 1;
		if (hypr_ignore_load(&ig, dir, NULL, &e) != 0 || hypr_ignore_match(ig, "x")) {
			fprintf(stderr, "FAIL load missing: %s\n", e.msg);
			failures++;
		}
		hypr_ignore_free(ig);
		snprintf(p, sizeof(p), "%s/.dockerignore", dir);
		f = fopen(p, "w");
		fputs("\xef\xbb\xbf*.log\n", f);
		fclose(f);
		snprintf(p, sizeof(p), "%s/Dockerfile.dockerignore", dir);
		f = fopen(p, "w");
		fputs("*.tmp\n", f);
		fclose(f);
		if (hypr_ignore_load(&ig, dir, NULL, &e) != 0 || !hypr_ignore_match(ig, "a.log") ||
		    hypr_ignore_match(ig, "a.tmp")) {
			fprintf(stderr, "FAIL load .dockerignore: %s\n", e.msg);
			failures++;
		}
		hypr_ignore_free(ig);
		snprintf(p, sizeof(p), "%s/Dockerfile", dir);
		if (hypr_ignore_load(&ig, dir, p, &e) != 0 || hypr_ignore_match(ig, "a.log") ||
		    !hypr_ignore_match(ig, "a.tmp")) {
			fprintf(stderr, "FAIL load Dockerfile.dockerignore: %s\n", e.msg);
			failures++;
		}
		hypr_ignore_free(ig);
		snprintf(p, sizeof(p), "%s/other.Dockerfile", dir);
		if (hypr_ignore_load(&ig, dir, p, &e) != 0 || !hypr_ignore_match(ig, "a.log")) {
			fprintf(stderr, "FAIL load fallback: %s\n", e.msg);
			failures++;
		}
		hypr_ignore_free(ig);
		snprintf(p, sizeof(p), "%s/.dockerignore", dir);
		unlink(p);
		snprintf(p, sizeof(p), "%s/Dockerfile.dockerignore", dir);
		unlink(p);
		rmdir(dir);
	}

	if (failures) {
		fprintf(stderr, "ignore: %d failures\n", failures);
		return 1;
	}
	return 0;
}
