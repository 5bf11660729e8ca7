/* Unit tests for lib/expand.c: BuildKit's shell-lexer semantics. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "expand.h"

static int failures;

#define ERR ((const char *)1)

/* Expand `in` with vars; want is the expected word or ERR. */
static void
word(const struct hypr_vars *v, int esc, const char *in, const char *want)
{
	struct hypr_err e = { 0 };
	char *out = NULL;
	int rc = hypr_expand_word(in, v, esc, &out, &e);

	if (want == ERR) {
		if (rc != -1 || e.code != 3) {
			fprintf(stderr, "FAIL word %.100s: want error, got '%.100s'\n", in,
			    out ? out : "");
			failures++;
		}
	} else if (rc != 0 || strcmp(out, want) != 0) {
		fprintf(stderr, "FAIL word %.100s: want '%.100s', got '%.100s' (%s)\n", in, want,
		    rc == 0 ? out : "", rc == 0 ? "" : e.msg);
		failures++;
	}
	free(out);
}

/* want is the words joined by "|" (or ERR). */
static void
words(const struct hypr_vars *v, const char *in, const char *want)
{
	struct hypr_err e = { 0 };
	char **w = NULL, joined[1024] = "";
	size_t n = 0;
	int rc = hypr_expand_words(in, v, '\\', &w, &n, &e);

	if (want == ERR) {
		if (rc != -1) {
			fprintf(stderr, "FAIL words %s: want error\n", in);
			failures++;
		}
		hypr_words_free(w);
		return;
	}
	if (rc != 0) {
		fprintf(stderr, "FAIL words %s: %s\n", in, e.msg);
		failures++;
		return;
	}
	for (size_t i = 0; i < n; i++) {
		if (i)
			strcat(joined, "|");
		strcat(joined, w[i]);
	}
	if (strcmp(joined, want) != 0 || w[n] != NULL) {
		fprintf(stderr, "FAIL words %s: want '%s', got '%s'\n", in, want, joined);
		failures++;
	}
	hypr_words_free(w);
}

int
main(void)
{
	struct hypr_vars v = { 0 }, c = { 0 };
	struct hypr_err e = { 0 };

	hypr_vars_set(&v, "PWD", "/home");
	hypr_vars_set(&v, "SHELL", "bash");
	hypr_vars_set(&v, "NULL", "");
	hypr_vars_setkv(&v, "FOO=xxyy");
	hypr_vars_setkv(&v, "SP=a b");
	hypr_vars_setkv(&v, "KOREAN=한국어");
	hypr_vars_setkv(&v, "TMP=x");
	hypr_vars_setkv(&v, "TMP=y");	/* replaces */

	/* the variable set */
	if (strcmp(hypr_vars_get(&v, "TMP"), "y") != 0 || v.n != 7 ||
	    hypr_vars_get(&v, "NOPE") != NULL || strcmp(hypr_vars_get(&v, "NULL"), "") != 0) {
		fprintf(stderr, "FAIL vars set/get\n");
		failures++;
	}
	hypr_vars_unset(&v, "TMP");
	if (hypr_vars_get(&v, "TMP") != NULL || v.n != 6) {
		fprintf(stderr, "FAIL vars unset\n");
		failures++;
	}
	if (hypr_vars_copy(&c, &v) != 0 || c.n != v.n ||
	    strcmp(hypr_vars_get(&c, "PWD"), "/home") != 0) {
		fprintf(stderr, "FAIL vars copy\n");
		failures++;
	}
	hypr_vars_free(&c);
	if (hypr_vars_set(&c, "A=B", "x") != -1) {
		fprintf(stderr, "FAIL vars key with =\n");
		failures++;
	}

	/* many variables: the index keeps set, replace, unset and copy right */
	{
		struct hypr_vars m = { 0 }, mc = { 0 };
		char k[32], val[32];
		int bad = 0;

		for (int i = 0; i < 1000; i++) {
			snprintf(k, sizeof(k), "K%d", i);
			snprintf(val, sizeof(val), "%d", i);
			hypr_vars_set(&m, k, val);
		}
		hypr_vars_set(&m, "K7", "seven");
		hypr_vars_unset(&m, "K500");
		hypr_vars_unset(&m, "K0");
		if (hypr_vars_copy(&mc, &m) != 0)
			bad++;
		for (int i = 0; i < 1000; i++) {
			const char *g = hypr_vars_get(&mc, (snprintf(k, sizeof(k), "K%d", i), k));

			snprintf(val, sizeof(val), "%d", i);
			if (i == 0 || i == 500 ? g != NULL :
			    g == NULL || strcmp(g, i == 7 ? "seven" : val) != 0)
				bad++;
		}
		if (m.n != 998 || mc.n != 998 || strcmp(m.kv[0], "K1=1") != 0 ||
		    hypr_vars_get(&m, "K") != NULL || hypr_vars_get(&m, "K10000") != NULL)
			bad++;
		if (bad) {
			fprintf(stderr, "FAIL many vars: %d\n", bad);
			failures++;
		}
		hypr_vars_free(&m);
		hypr_vars_free(&mc);
	}

	/* plain, $V, ${V} */
	word(&v, '\\', "hello", "hello");
	word(&v, '\\', "he'll'o", "hello");
	word(&v, '\\', "he'llo", ERR);
	word(&v, '\\', "he\\'llo", "he'llo");
	word(&v, '\\', "he\\\\'llo", ERR);
	word(&v, '\\', "abc\\\\def", "abc\\def");
	word(&v, '\\', "\"abc\\\\def\"", "abc\\def");
	word(&v, '\\', "\"abc\\\"def\"", "abc\"def");
	word(&v, '\\', "'abc\\\\def'", "abc\\\\def");
	word(&v, '\\', "\"a\\b\"", "a\\b");
	word(&v, '\\', "a\\", "a");
	word(&v, '\\', "$PWD", "/home");
	word(&v, '\\', "${PWD}", "/home");
	word(&v, '\\', "\\$PWD", "$PWD");
	word(&v, '\\', "'$PWD'", "$PWD");
	word(&v, '\\', "\"$PWD\"", "/home");
	word(&v, '\\', "\"\\$PWD\"", "$PWD");
	word(&v, '\\', "$PWD/x$NOPE.y", "/home/x.y");
	word(&v, '\\', "${PWD}x", "/homex");
	word(&v, '\\', "$PWDx", "");
	word(&v, '\\', "$", "$");
	word(&v, '\\', "$.", "$.");
	word(&v, '\\', "$1", "");
	word(&v, '\\', "$@x", "x");
	word(&v, '\\', "$KOREAN", "한국어");
	word(&v, '\\', "${KOREAN}!", "한국어!");
	word(&v, '\\', "${", ERR);
	word(&v, '\\', "${PWD", ERR);
	word(&v, '\\', "${}", ERR);
	word(&v, '\\', "${:x}", ERR);
	word(&v, '\\', "${{x}}", ERR);
	word(&v, '\\', "${PWD=x}", ERR);
	word(&v, '\\', "${PWD:x}", ERR);

	/* - + ? with and without : */
	word(&v, '\\', "${NOPE:-def}", "def");
	word(&v, '\\', "${NULL:-def}", "def");
	word(&v, '\\', "${NULL-def}", "");
	word(&v, '\\', "${NOPE-def}", "def");
	word(&v, '\\', "${PWD:-def}", "/home");
	word(&v, '\\', "${NOPE:-$PWD/x}", "/home/x");
	word(&v, '\\', "${NOPE:-'a}b'}", "a}b");
	word(&v, '\\', "${NOPE:-a\\}b}", "a}b");
	word(&v, '\\', "${PWD:+alt}", "alt");
	word(&v, '\\', "${NULL:+alt}", "");
	word(&v, '\\', "${NULL+alt}", "alt");
	word(&v, '\\', "${NOPE+alt}", "");
	word(&v, '\\', "${PWD:?msg}", "/home");
	word(&v, '\\', "${NULL?msg}", "");
	word(&v, '\\', "${NULL:?msg}", ERR);
	word(&v, '\\', "${NOPE?msg}", ERR);
	word(&v, '\\', "${NOPE:?}", ERR);
	{
		char *o = NULL;

		if (hypr_expand_word("${NOPE:?must be set $SHELL}", &v, '\\', &o, &e) != -1 ||
		    strstr(e.msg, "NOPE: must be set bash") == NULL) {
			fprintf(stderr, "FAIL :? message: %s\n", e.msg);
			failures++;
		}
		free(o);
	}

	/* # % / */
	word(&v, '\\', "${FOO#*x*y}", "y");
	word(&v, '\\', "${FOO#*}", "xxyy");
	word(&v, '\\', "${FOO##*x}", "yy");
	word(&v, '\\', "${FOO#x}", "xyy");
	word(&v, '\\', "${FOO%y}", "xxy");
	word(&v, '\\', "${FOO%%y*}", "xx");
	word(&v, '\\', "${FOO%y*}", "xxy");
	word(&v, '\\', "${FOO%%\\q}", ERR);
	word(&v, '\\', "${FOO/x/a}", "axyy");
	word(&v, '\\', "${FOO//x/a}", "aayy");
	word(&v, '\\', "${FOO/x*/a}", "a");
	word(&v, '\\', "${FOO//?/-}", "----");
	word(&v, '\\', "${FOO///}", "xxyy");
	word(&v, '\\', "${FOO//ww}", ERR);
	word(&v, '\\', "${FOO/\\//\\/}", "xxyy");
	word(&v, '\\', "${NOPE#x}", "");
	/* BuildKit refuses ${V:#p} and ${V:%p} */
	word(&v, '\\', "${FOO:#x}", ERR);
	word(&v, '\\', "${FOO:%y}", ERR);
	word(&v, '\\', "${NOPE:%%y}", ERR);

	/* backtick escape */
	word(&v, '`', "a`$PWD", "a$PWD");
	word(&v, '`', "a\\b", "a\\b");
	word(&v, '`', "\"a`\"b\"", "a\"b");
	word(&v, '`', "C:\\path\\$SHELL", "C:\\path\\bash");

	/* word splitting: only unquoted, unescaped whitespace splits, and
	 * whitespace coming from a variable splits */
	words(&v, "a b  c", "a|b|c");
	words(&v, "  a  ", "a");
	words(&v, "", "");
	words(&v, "'a b' c", "a b|c");
	words(&v, "\"a $SP\" c", "a a b|c");
	words(&v, "x$SP", "xa|b");
	words(&v, "a\\ b", "a b");
	words(&v, "$NOPE", "");
	words(&v, "'' x", "x");
	words(&v, "8080/tcp 443", "8080/tcp|443");
	words(&v, "\"unterminated", ERR);

	/* bounds: variables add at most HYPR_EXPAND_MAX bytes to one
	 * expansion; pattern matching has a budget of steps */
	{
		size_t big = HYPR_EXPAND_MAX / 2 + 1;
		char *a = malloc(big + 1), *o = NULL;

		memset(a, 'a', big);
		a[big] = '\0';
		hypr_vars_set(&v, "BIG", a);
		hypr_vars_set(&v, "TEN", "0123456789");
		memset(a, 'x', big);	/* the literal text does not count */
		word(&v, '\\', a, a);
		free(a);
		if (hypr_expand_word("$BIG", &v, '\\', &o, &e) != 0 || strlen(o) != big) {
			fprintf(stderr, "FAIL $BIG: %s\n", e.msg);
			failures++;
		}
		free(o);
		word(&v, '\\', "$BIG${BIG}", ERR);
		word(&v, '\\', "${NOPE:-$BIG}${BIG:-x}", ERR);
		word(&v, '\\', "${TEN//?/$BIG}", ERR);
		word(&v, '\\', "${BIG%%a}${BIG}", ERR);
		words(&v, "$BIG $BIG", ERR);
		if (hypr_expand_word("${BIG}${BIG}", &v, '\\', &o, &e) != -1 ||
		    strstr(e.msg, "variables expand to more than 1 MiB (hypr's limit)") == NULL) {
			fprintf(stderr, "FAIL cap message: %s\n", e.msg);
			failures++;
		}
		/* no memo past 64 KiB: without a budget this would run for ages */
		if (hypr_expand_word("${BIG%%*b*b*b*b*b*c}", &v, '\\', &o, &e) != -1 ||
		    strstr(e.msg, "substitution pattern too costly to match") == NULL) {
			fprintf(stderr, "FAIL costly pattern: %s\n", e.msg);
			failures++;
		}
	}

	hypr_vars_free(&v);
	if (failures) {
		fprintf(stderr, "expand: %d failures\n", failures);
		return 1;
	}
	return 0;
}
