/* ignore.c - .dockerignore matching as moby/patternmatcher does it.
 *
 * Each pattern is cleaned (Go's filepath.Clean, then a leading "/" dropped)
 * and matched against the whole slash-separated path: `*` and `?` never
 * cross a "/", `**` stands for "any number of leading directories" (the
 * regexp (.*\/)?) or, at the end, for anything, `[...]` is a class and `\`
 * escapes. A path is excluded when it or one of its parent directories
 * matches; patterns are applied in order so the last match wins. */
#include "ignore.h"

#include "path.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "fsutil.h"

struct pattern {
	char *p;		/* cleaned, without the "!" */
	int exclusion;
	int suffix;		/* "**" then literal text: a suffix compare */
};

struct hypr_ignore {
	struct pattern *v;
	size_t n;
	int exclusions;
};


/* Go's utf8.DecodeRune on a NUL-terminated string: the rune at s and its
 * length; a byte that starts no valid sequence is U+FFFD of length 1. */
static size_t
rune_at(const char *str, long *r)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t n;
	long v, min;

	if (s[0] < 0x80) {
		*r = s[0];
		return 1;
	}
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		n = 2, v = s[0] & 0x1f, min = 0x80;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		n = 3, v = s[0] & 0x0f, min = 0x800;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		n = 4, v = s[0] & 0x07, min = 0x10000;
	else
		goto bad;
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			goto bad;
		v = v << 6 | (s[i] & 0x3f);
	}
	if (v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
		goto bad;
	*r = v;
	return n;
bad:
	*r = 0xfffd;
	return 1;
}

/* Go's getEsc: one character of a class at *pp (an escape taken), which
 * must be followed by more of the class; -1 when malformed. */
static int
class_char(const char **pp, long *r)
{
	const char *p = *pp;
	size_t n;

	if (*p == '\0' || *p == '-' || *p == ']')
		return -1;
	if (*p == '\\' && *++p == '\0')
		return -1;
	n = rune_at(p, r);
	if (*r == 0xfffd && n == 1)
		return -1;	/* not UTF-8 */
	p += n;
	if (*p == '\0')
		return -1;	/* the class never ends */
	*pp = p;
	return 0;
}

/* Match one [...] class at *pp against the character c (a rune, as Go's
 * regexp and filepath.Match compare); advances *pp past it. Returns 1/0,
 * or -1 for a class filepath.Match rejects ([]a], [-], [x-], [a-b-c]). */
static int
class_match(const char **pp, long c)
{
	const char *p = *pp + 1;
	int neg = 0, hit = 0, items = 0;

	if (*p == '^') {
		neg = 1;
		p++;
	}
	for (;;) {
		long lo, hi;

		if (*p == ']' && items > 0) {
			p++;
			break;
		}
		if (class_char(&p, &lo) < 0)
			return -1;
		hi = lo;
		if (*p == '-' && class_char((p++, &p), &hi) < 0)
			return -1;
		if (lo <= c && c <= hi)
			hit = 1;
		items++;
	}
	*pp = p;
	return hit != neg;
}

/* Whole-string match of s against the glob p (see the top comment).
 * Failed (pattern, path) positions are remembered so that patterns full
 * of stars stay polynomial. */
struct gm {
	const char *p0, *s0;
	size_t sl;
	unsigned char *memo;
};

static int
glob_at(struct gm *g, const char *p, const char *s)
{
	size_t key = (size_t)(p - g->p0) * (g->sl + 1) + (size_t)(s - g->s0);
	const char *p_in = p, *s_in = s;
	int r = 0;
	long rune;

	if (g->memo && (g->memo[key >> 3] >> (key & 7)) & 1)
		return 0;
	for (;;) {
		if (*p == '\0') {
			r = *s == '\0';
			break;
		}
		if (p[0] == '*' && p[1] == '*') {
			p += 2;
			if (*p == '/')
				p++;
			if (*p == '\0') {
				r = 1;
				break;
			}
			/* (.*\/)? : here, or after any later "/" */
			if ((r = glob_at(g, p, s)) != 0)
				break;
			for (; *s; s++)
				if (*s == '/' && (r = glob_at(g, p, s + 1)) != 0)
					break;
			break;
		}
		if (*p == '*') {
			p++;
			for (;;) {
				if ((r = glob_at(g, p, s)) != 0)
					break;
				if (*s == '\0' || *s == '/')
					break;
				s += rune_at(s, &rune);
			}
			break;
		}
		if (*p == '?') {
			if (*s == '\0' || *s == '/')
				break;
			p++;
			s += rune_at(s, &rune);
			continue;
		}
		if (*p == '[') {
			size_t n;

			if (*s == '\0')
				break;
			n = rune_at(s, &rune);
			if (class_match(&p, rune) <= 0)
				break;
			s += n;
			continue;
		}
		if (*p == '\\' && p[1] != '\0')
			p++;
		if (*p != *s)
			break;
		p++, s++;
	}
	if (!r && g->memo) {
		key = (size_t)(p_in - g->p0) * (g->sl + 1) + (size_t)(s_in - g->s0);
		g->memo[key >> 3] |= (unsigned char)(1u << (key & 7));
	}
	return r;
}

static int
glob(const char *p, const char *s)
{
	struct gm g = { .p0 = p, .s0 = s, .sl = strlen(s) };
	size_t pl = strlen(p), bits;
	int r;

	if (strchr(p, '*') != NULL && pl < 65536 && g.sl < 65536 &&
	    (bits = (pl + 1) * (g.sl + 1)) < ((size_t)1 << 30))
		g.memo = calloc(bits / 8 + 1, 1);
	r = glob_at(&g, p, s);
	free(g.memo);
	return r;
}

/* Syntax check, as patternmatcher does with filepath.Match(p, "."):
 * classes closed and well formed, no escape at the very end. */
static int
pattern_ok(const char *p)
{
	for (; *p; p++) {
		if (*p == '\\') {
			if (p[1] == '\0')
				return 0;
			p++;
		} else if (*p == '[') {
			const char *q = p;

			if (class_match(&q, 0) < 0)
				return 0;
			p = q - 1;
		}
	}
	return 1;
}

static int
is_literal(const char *p)
{
	return strpbrk(p, "*?[\\") == NULL;
}

static int
pattern_match(const struct pattern *pt, const char *path)
{
	if (pt->suffix) {
		const char *suf = pt->p + 2;
		size_t ls = strlen(suf), lp = strlen(path);

		if (lp >= ls && strcmp(path + lp - ls, suf) == 0)
			return 1;
		return suf[0] == '/' && strcmp(path, suf + 1) == 0;
	}
	return glob(pt->p, path);
}

static int
add_pattern(struct hypr_ignore *ig, const char *line, const char *name,
    size_t lineno, struct hypr_err *e)
{
	const char *b = line, *end;
	char *t, *c, *c2;
	int excl = 0;
	struct pattern *v;

	/* ReadAll: trim, "!" prefix, clean, drop a leading "/"; then New():
	 * trim and clean again. */
	while (*b == ' ' || *b == '\t' || *b == '\r' || *b == '\v' || *b == '\f')
		b++;
	end = b + strlen(b);
	while (end > b && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r' ||
	    end[-1] == '\v' || end[-1] == '\f'))
		end--;
	if (b == end)
		return 0;
	if (*b == '!') {
		excl = 1;
		b++;
		while (b < end && (*b == ' ' || *b == '\t'))
			b++;
		if (b == end)
			return hypr_err_set(e, HYPR_EXIT_INPUT,
			    "%s:%zu: illegal exclusion pattern: \"!\"", name, lineno);
	}
	t = strndup(b, (size_t)(end - b));
	if (t == NULL)
		return hypr_err_errno(e, HYPR_EXIT_SYSTEM, "%s", name);
	c = hypr_path_go_clean(t);
	free(t);
	if (c == NULL)
		return hypr_err_errno(e, HYPR_EXIT_SYSTEM, "%s", name);
	if (strlen(c) > 1 && c[0] == '/')
		memmove(c, c + 1, strlen(c));
	c2 = hypr_path_go_clean(c);
	free(c);
	if (c2 == NULL)
		return hypr_err_errno(e, HYPR_EXIT_SYSTEM, "%s", name);
	if (!pattern_ok(c2)) {
		hypr_err_set(e, HYPR_EXIT_INPUT, "%s:%zu: syntax error in pattern '%s'",
		    name, lineno, c2);
		free(c2);
		return -1;
	}
	v = reallocarray(ig->v, ig->n + 1, sizeof(*v));
	if (v == NULL) {
		free(c2);
		return hypr_err_errno(e, HYPR_EXIT_SYSTEM, "%s", name);
	}
	ig->v = v;
	v[ig->n].p = c2;
	v[ig->n].exclusion = excl;
	v[ig->n].suffix = c2[0] == '*' && c2[1] == '*' && is_literal(c2 + 2);
	ig->n++;
	if (excl)
		ig->exclusions = 1;
	return 0;
}

static int
parse(struct hypr_ignore **igp, const char *text, const char *name,
    struct hypr_err *e)
{
	struct hypr_ignore *ig = calloc(1, sizeof(*ig));
	const char *s = text;
	size_t lineno = 0;

	if (ig == NULL)
		return hypr_err_errno(e, HYPR_EXIT_SYSTEM, "%s", name);
	if (strncmp(s, "\xef\xbb\xbf", 3) == 0)
		s += 3;
	while (*s) {
		const char *nl = strchr(s, '\n');
		size_t len = nl ? (size_t)(nl - s) : strlen(s);
		char *line;

		lineno++;
		if (s[0] != '#') {
			line = strndup(s, len);
			if (line == NULL) {
				hypr_ignore_free(ig);
				return hypr_err_errno(e, HYPR_EXIT_SYSTEM, "%s", name);
			}
			if (add_pattern(ig, line, name, lineno, e) < 0) {
				free(line);
				hypr_ignore_free(ig);
				return -1;
			}
			free(line);
		}
		s += len;
		if (*s == '\n')
			s++;
	}
	*igp = ig;
	return 0;
}

int
hypr_ignore_parse(struct hypr_ignore **igp, const char *text, struct hypr_err *e)
{
	return parse(igp, text, ".dockerignore", e);
}

int
hypr_ignore_load(struct hypr_ignore **ig, const char *context,
    const char *dockerfile, struct hypr_err *e)
{
	char *path = NULL, *text = NULL;
	int rc;

	if (dockerfile != NULL) {
		if (asprintf(&path, "%s.dockerignore", dockerfile) < 0)
			return hypr_err_errno(e, HYPR_EXIT_SYSTEM, "dockerignore path");
		if (access(path, F_OK) != 0) {
			free(path);
			path = NULL;
		}
	}
	if (path == NULL && asprintf(&path, "%s/.dockerignore", context) < 0)
		return hypr_err_errno(e, HYPR_EXIT_SYSTEM, "dockerignore path");
	if (access(path, F_OK) != 0 && errno == ENOENT) {
		free(path);
		return parse(ig, "", ".dockerignore", e);
	}
	if (hypr_read_file(path, 16 << 20, &text, NULL, e) < 0) {
		free(path);
		return -1;
	}
	rc = parse(ig, text, path, e);
	free(text);
	free(path);
	return rc;
}

int
hypr_ignore_match(const struct hypr_ignore *ig, const char *path)
{
	char *file, *parent = NULL;
	int matched = 0;

	if (ig == NULL || ig->n == 0)
		return 0;
	file = hypr_path_go_clean(path);
	if (file == NULL)
		return 0;
	if (strcmp(file, ".") == 0) {
		free(file);
		return 0;	/* never exclude the context itself */
	}
	for (size_t i = 0; i < ig->n; i++) {
		const struct pattern *pt = &ig->v[i];
		int m;

		/* an inclusion can't change a match, an exclusion needs one */
		if (pt->exclusion != matched)
			continue;
		m = pattern_match(pt, file);
		if (!m && strchr(file, '/') != NULL) {
			/* or does it match a parent directory? */
			/* parent is file again after each loop below */
			if (parent == NULL && (parent = strdup(file)) == NULL)
				break;
			for (char *sl = strchr(parent, '/'); sl; sl = strchr(sl + 1, '/')) {
				*sl = '\0';
				m = pattern_match(pt, parent);
				*sl = '/';
				if (m)
					break;
			}
		}
		if (m)
			matched = !pt->exclusion;
	}
	free(parent);
	free(file);
	return matched;
}

/* Could pattern p match some path strictly below dir? */
static int
may_match_below(const char *p, const char *dir)
{
	char pc[4096], dc[4096];

	for (;;) {
		const char *ps = strchr(p, '/'), *ds = strchr(dir, '/');
		size_t pl = ps ? (size_t)(ps - p) : strlen(p);
		size_t dl = ds ? (size_t)(ds - dir) : strlen(dir);

		if (pl >= sizeof(pc) || dl >= sizeof(dc))
			return 1;
		memcpy(pc, p, pl);
		pc[pl] = '\0';
		memcpy(dc, dir, dl);
		dc[dl] = '\0';
		if (strstr(pc, "**") != NULL)
			return 1;
		if (!glob(pc, dc))
			return 0;
		if (ps == NULL)
			return 0;	/* the pattern ends at or above dir */
		p = ps + 1;
		if (ds == NULL)
			return 1;	/* dir used up, the pattern goes on */
		dir = ds + 1;
	}
}

int
hypr_ignore_descend(const struct hypr_ignore *ig, const char *dir)
{
	char *d;
	int r = 0;

	if (ig == NULL || !ig->exclusions)
		return 0;
	d = hypr_path_go_clean(dir);
	if (d == NULL)
		return 1;
	for (size_t i = 0; i < ig->n && !r; i++)
		if (ig->v[i].exclusion && may_match_below(ig->v[i].p, d))
			r = 1;
	free(d);
	return r;
}

void
hypr_ignore_free(struct hypr_ignore *ig)
{
	if (ig == NULL)
		return;
	for (size_t i = 0; i < ig->n; i++)
		free(ig->v[i].p);
	free(ig->v);
	free(ig);
}
