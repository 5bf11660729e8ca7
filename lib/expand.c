/* expand.c - Dockerfile variable expansion and word splitting.
 *
 * Behaves as BuildKit's shell lexer (frontend/dockerfile/shell): quotes are
 * removed, the escape character escapes the next character outside quotes
 * and only " $ and itself inside double quotes, $V and ${V...} expand, and
 * words split on whitespace that was neither quoted nor escaped. Text that
 * came from a variable splits like unquoted text. */
#include "expand.h"

#include <errno.h>
#include <stdio.h>
#include <sys/types.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "map.h"
#include "strbuf.h"

/* ---- variables ---- */

static size_t
key_len(const char *kv)
{
	const char *eq = strchr(kv, '=');

	return eq ? (size_t)(eq - kv) : strlen(kv);
}

/* Past a few variables an index (open addressing, at most half full)
 * keeps set and get constant-time: a Dockerfile may declare a million. */
#define INDEX_FROM 8

static size_t
key_hash(const char *k, size_t n)
{
	return (size_t)hypr_hashn(k, n);
}

static void
index_add(struct hypr_vars *v, size_t i)
{
	size_t m = v->icap - 1, h = key_hash(v->kv[i], key_len(v->kv[i])) & m;

	while (v->idx[h])
		h = (h + 1) & m;
	v->idx[h] = i + 1;
}

/* Rebuild the index for n variables; without memory, there is none and
 * lookups scan. */
static void
index_rebuild(struct hypr_vars *v)
{
	size_t cap = 32;

	free(v->idx);
	v->idx = NULL;
	v->icap = 0;
	if (v->n <= INDEX_FROM)
		return;
	while (cap < 2 * v->n + 2)
		cap *= 2;
	if ((v->idx = calloc(cap, sizeof(*v->idx))) == NULL)
		return;
	v->icap = cap;
	for (size_t i = 0; i < v->n; i++)
		index_add(v, i);
}

static ssize_t
vars_find(const struct hypr_vars *v, const char *key, size_t klen)
{
	if (v->idx != NULL) {
		size_t m = v->icap - 1, h = key_hash(key, klen) & m;

		for (; v->idx[h]; h = (h + 1) & m) {
			size_t i = v->idx[h] - 1;

			if (key_len(v->kv[i]) == klen && memcmp(v->kv[i], key, klen) == 0)
				return (ssize_t)i;
		}
		return -1;
	}
	for (size_t i = 0; i < v->n; i++)
		if (key_len(v->kv[i]) == klen && memcmp(v->kv[i], key, klen) == 0)
			return (ssize_t)i;
	return -1;
}

static int
vars_put(struct hypr_vars *v, char *kv)
{
	ssize_t i = vars_find(v, kv, key_len(kv));

	if (i >= 0) {
		free(v->kv[i]);
		v->kv[i] = kv;
		return 0;
	}
	if (v->n == v->cap) {
		size_t cap = v->cap ? v->cap * 2 : 8;
		char **p;

		if (cap < v->cap || cap > SIZE_MAX / sizeof(*p))
			return -1;
		p = realloc(v->kv, cap * sizeof(*p));
		if (p == NULL)
			return -1;
		v->kv = p;
		v->cap = cap;
	}
	v->kv[v->n++] = kv;
	if (v->idx != NULL && 2 * v->n + 2 <= v->icap)
		index_add(v, v->n - 1);
	else if (v->n > INDEX_FROM)
		index_rebuild(v);
	return 0;
}

int
hypr_vars_set(struct hypr_vars *v, const char *key, const char *val)
{
	char *kv;

	if (strchr(key, '=') != NULL) {
		errno = EINVAL;
		return -1;
	}
	if (asprintf(&kv, "%s=%s", key, val) < 0)
		return -1;
	if (vars_put(v, kv) < 0) {
		free(kv);
		return -1;
	}
	return 0;
}

int
hypr_vars_setkv(struct hypr_vars *v, const char *kv)
{
	char *d;

	if (strchr(kv, '=') == NULL)
		return hypr_vars_set(v, kv, "");
	d = strdup(kv);
	if (d == NULL)
		return -1;
	if (vars_put(v, d) < 0) {
		free(d);
		return -1;
	}
	return 0;
}

static const char *
vars_getn(const struct hypr_vars *v, const char *key, size_t klen)
{
	ssize_t i;

	if (v == NULL)
		return NULL;
	i = vars_find(v, key, klen);
	return i < 0 ? NULL : v->kv[i] + klen + 1;
}

const char *
hypr_vars_get(const struct hypr_vars *v, const char *key)
{
	return vars_getn(v, key, strlen(key));
}

void
hypr_vars_unset(struct hypr_vars *v, const char *key)
{
	ssize_t i = vars_find(v, key, strlen(key));

	if (i < 0)
		return;
	free(v->kv[i]);
	memmove(&v->kv[i], &v->kv[i + 1], (v->n - (size_t)i - 1) * sizeof(*v->kv));
	v->n--;
	if (v->idx != NULL)
		index_rebuild(v);
}

int
hypr_vars_copy(struct hypr_vars *dst, const struct hypr_vars *src)
{
	struct hypr_vars t = { 0 };

	for (size_t i = 0; i < src->n; i++)
		if (hypr_vars_setkv(&t, src->kv[i]) < 0) {
			hypr_vars_free(&t);
			return -1;
		}
	*dst = t;
	return 0;
}

void
hypr_vars_free(struct hypr_vars *v)
{
	for (size_t i = 0; i < v->n; i++)
		free(v->kv[i]);
	free(v->kv);
	free(v->idx);
	v->kv = NULL;
	v->idx = NULL;
	v->n = v->cap = v->icap = 0;
}

/* ---- word lists ---- */

struct words {
	struct hypr_strbuf word;
	int in_word;
	char **v;
	size_t n, cap;
	int oom;
};

static int
is_space(int c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' ||
	    c == '\f';
}

static void
words_push(struct words *w)
{
	char *s = hypr_strbuf_take(&w->word);

	if (s == NULL) {
		w->oom = 1;
		return;
	}
	if (w->n + 1 >= w->cap) {
		size_t cap = w->cap ? w->cap * 2 : 8;
		char **p;

		if (cap > SIZE_MAX / sizeof(*p) || (p = realloc(w->v, cap * sizeof(*p))) == NULL) {
			free(s);
			w->oom = 1;
			return;
		}
		w->v = p;
		w->cap = cap;
	}
	w->v[w->n++] = s;
	w->v[w->n] = NULL;
}

static void
words_raw(struct words *w, char c)
{
	if (w == NULL)
		return;
	hypr_strbuf_addc(&w->word, c);
	w->in_word = 1;
}

static void
words_char(struct words *w, char c)
{
	if (w == NULL)
		return;
	if (is_space((unsigned char)c)) {
		if (w->in_word && w->word.n != 0) {
			words_push(w);
			w->in_word = 0;
		}
	} else
		words_raw(w, c);
}

static void
words_str(struct words *w, const char *s, int raw)
{
	if (w == NULL)
		return;
	if (raw) {
		hypr_strbuf_add(&w->word, s);
		w->in_word = 1;
		return;
	}
	for (; *s; s++)
		words_char(w, *s);
}

static void
words_finish(struct words *w)
{
	if (w->word.n > 0) {
		words_push(w);
		w->in_word = 0;
	}
}

void
hypr_words_free(char **words)
{
	if (words == NULL)
		return;
	for (char **p = words; *p; p++)
		free(*p);
	free(words);
}

/* ---- the lexer ---- */

struct lex {
	const char *s;
	size_t i, n;
	int esc;
	int raw_escapes;
	const struct hypr_vars *vars;
	int depth;		/* nesting of ${...} and quotes */
	size_t budget;		/* bytes variables may still add */
	size_t steps;		/* pattern matching work so far */
	char err[512];		/* set on the first error */
};

/* Pattern matching (${V#p} ${V%p} ${V/p/r}) may take this many steps in
 * one expansion: enough for any real pattern, a bound for hostile ones. */
#define MAX_STEPS ((size_t)100 << 20)

/* Deeper nesting is refused rather than overflowing the stack. */
#define MAX_NEST 1000

#define EOFC (-1)

static int
peek(struct lex *l)
{
	return l->i < l->n ? (unsigned char)l->s[l->i] : EOFC;
}

static int
next(struct lex *l)
{
	return l->i < l->n ? (unsigned char)l->s[l->i++] : EOFC;
}

static int
fail(struct lex *l, const char *fmt, const char *a, const char *b)
{
	if (l->err[0] == '\0')
		snprintf(l->err, sizeof(l->err), fmt, a, b);
	return -1;
}

static int process_stop(struct lex *l, int stop, int raw_escapes,
    struct hypr_strbuf *out, struct words *w);

static int
single_quote(struct lex *l, struct hypr_strbuf *out)
{
	int c;

	next(l);
	for (;;) {
		c = next(l);
		if (c == EOFC)
			return fail(l, "unexpected end of statement while looking for matching single-quote%s%s", "", "");
		if (c == '\'')
			return 0;
		hypr_strbuf_addc(out, (char)c);
	}
}

static int process_dollar(struct lex *l, struct hypr_strbuf *out);

static int
double_quote(struct lex *l, struct hypr_strbuf *out)
{
	int c;

	next(l);
	for (;;) {
		c = peek(l);
		if (c == EOFC)
			return fail(l, "unexpected end of statement while looking for matching double-quote%s%s", "", "");
		if (c == '"') {
			next(l);
			return 0;
		}
		if (c == '$') {
			if (process_dollar(l, out) < 0)
				return -1;
			continue;
		}
		c = next(l);
		if (c == l->esc) {
			int p = peek(l);

			if (l->raw_escapes)
				hypr_strbuf_addc(out, (char)c);
			if (p == EOFC)
				continue;
			if (p == '"' || p == '$' || p == l->esc)
				c = next(l);
		}
		hypr_strbuf_addc(out, (char)c);
	}
}

static int
is_name_char(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9') || c == '_' || c >= 0x80;
}

static int
is_special_param(int c)
{
	return c == '@' || c == '*' || c == '#' || c == '?' || c == '-' ||
	    c == '$' || c == '!' || c == '0';
}

/* Read a name at the current position into name (may be empty). */
static void
process_name(struct lex *l, struct hypr_strbuf *name)
{
	int c = peek(l);

	if (c >= '0' && c <= '9') {
		while ((c = peek(l)) >= '0' && c <= '9')
			hypr_strbuf_addc(name, (char)next(l));
		return;
	}
	if (c != EOFC && is_special_param(c)) {
		hypr_strbuf_addc(name, (char)next(l));
		return;
	}
	while ((c = peek(l)) != EOFC && is_name_char(c))
		hypr_strbuf_addc(name, (char)next(l));
}

/* Shell pattern match of the whole of s[0..n) against pat (BuildKit's
 * convertShellPatternToRegex: * any string, ? one byte, \x literal for
 * * ? \, and \} \/ stand for } and /). Returns 1/0, -1 for a bad escape.
 * Failed positions are remembered so that many stars stay polynomial. */
struct pm {
	const char *p0, *s0;
	size_t n0;
	unsigned char *memo;
	size_t *steps;
};

static int
pm_at(struct pm *m, const char *p, const char *s, size_t n)
{
	const char *p_in = p, *s_in = s;
	int r = 0;
	size_t key = (size_t)(p - m->p0) * (m->n0 + 1) + (size_t)(s - m->s0);

	if (m->memo && (m->memo[key >> 3] >> (key & 7)) & 1)
		return 0;
	for (;;) {
		if (++*m->steps > MAX_STEPS) {
			r = -2;
			break;
		}
		if (*p == '\0') {
			r = n == 0;
			break;
		}
		if (*p == '*') {
			while (*p == '*')
				p++;
			for (size_t k = 0; k <= n; k++) {
				r = pm_at(m, p, s + k, n - k);
				if (r != 0)
					break;
			}
			break;
		}
		if (*p == '?') {
			if (n == 0)
				break;
			p++, s++, n--;
			continue;
		}
		if (*p == '\\') {
			if (p[1] == '}' || p[1] == '/' || p[1] == '*' || p[1] == '?' || p[1] == '\\')
				p++;
			else {
				r = -1;
				break;
			}
		}
		if (n == 0 || *p != *s)
			break;
		p++, s++, n--;
	}
	if (r == 0 && m->memo) {
		key = (size_t)(p_in - m->p0) * (m->n0 + 1) + (size_t)(s_in - m->s0);
		m->memo[key >> 3] |= (unsigned char)(1u << (key & 7));
	}
	return r;
}

/* 1 match, 0 none, -1 a bad escape, -2 out of steps. */
static int
pat_match(struct lex *l, const char *p, const char *s, size_t n)
{
	struct pm m = { .p0 = p, .s0 = s, .n0 = n, .steps = &l->steps };
	size_t pl = strlen(p), bits;
	int r;

	if (strchr(p, '*') != NULL && pl < 65536 && n < 65536 &&
	    (bits = (pl + 1) * (n + 1)) < ((size_t)1 << 30)) {
		l->steps += bits / 64;	/* clearing it is work too */
		m.memo = calloc(bits / 8 + 1, 1);
	}
	r = pm_at(&m, p, s, n);
	free(m.memo);
	return r;
}

static int
pat_check(const char *p)
{
	for (; *p; p++)
		if (*p == '\\') {
			if (p[1] != '}' && p[1] != '/' && p[1] != '*' && p[1] != '?' && p[1] != '\\')
				return -1;
			p++;
		}
	return 0;
}

static int
too_costly(struct lex *l)
{
	return fail(l, "substitution pattern too costly to match (hypr's limit)%s%s", "", "");
}

/* Variables (and what is made of them) may add l->budget bytes in all. */
static int
take(struct lex *l, size_t n)
{
	if (n > l->budget)
		return fail(l, "variables expand to more than %s (hypr's limit)%s", "1 MiB", "");
	l->budget -= n;
	return 0;
}

/* ${V#p} ${V##p} ${V%p} ${V%%p}: remove the shortest (or longest) matching
 * prefix or suffix. */
static int
trim(struct lex *l, struct hypr_strbuf *out, const char *val, const char *pat,
    int suffix, int greedy)
{
	size_t n = strlen(val);
	int r;

	if (!suffix) {
		for (size_t k = 0; k <= n; k++) {
			size_t len = greedy ? n - k : k;

			if ((r = pat_match(l, pat, val, len)) == 1) {
				hypr_strbuf_add(out, val + len);
				return take(l, n - len);
			}
			if (r == -2)
				return too_costly(l);
		}
	} else {
		for (size_t k = 0; k <= n; k++) {
			size_t at = greedy ? k : n - k;

			if ((r = pat_match(l, pat, val + at, n - at)) == 1) {
				hypr_strbuf_addn(out, val, at);
				return take(l, at);
			}
			if (r == -2)
				return too_costly(l);
		}
	}
	hypr_strbuf_add(out, val);
	return take(l, n);
}

/* ${V/p/r} and ${V//p/r}: the leftmost (then longest) match is replaced. */
static int
replace(struct lex *l, struct hypr_strbuf *out, const char *val, const char *pat,
    const char *rep, int all)
{
	size_t n = strlen(val), i = 0, start = out->n;
	int done = 0, r;

	while (i <= n) {
		size_t len = 0;
		int found = 0;

		if (out->n - start > l->budget)
			return take(l, out->n - start);
		if (!done)
			for (size_t k = n - i + 1; k-- > 0;) {
				if ((r = pat_match(l, pat, val + i, k)) == 1) {
					found = 1;
					len = k;
					break;
				}
				if (r == -2)
					return too_costly(l);
			}
		if (!found) {
			if (i < n)
				hypr_strbuf_addc(out, val[i]);
			i++;
			continue;
		}
		hypr_strbuf_add(out, rep);
		if (!all)
			done = 1;
		if (len == 0) {
			if (i < n)
				hypr_strbuf_addc(out, val[i]);
			i++;
		} else
			i += len;
	}
	return take(l, out->n - start);
}

static int
process_dollar(struct lex *l, struct hypr_strbuf *out)
{
	struct hypr_strbuf name = { 0 }, word = { 0 }, rep = { 0 };
	const char *val;
	int c, mod, colon = 0, rc = -1;

	next(l);
	if (peek(l) != '{') {
		process_name(l, &name);
		if (name.n == 0) {
			hypr_strbuf_addc(out, '$');
			return 0;
		}
		val = vars_getn(l->vars, name.s, name.n);
		free(name.s);
		if (val != NULL) {
			hypr_strbuf_add(out, val);
			return take(l, strlen(val));
		}
		return 0;
	}
	next(l);
	c = peek(l);
	if (c == EOFC)
		return fail(l, "syntax error: missing '}'%s%s", "", "");
	if (c == '{' || c == '}' || c == ':')
		return fail(l, "syntax error: bad substitution%s%s", "", "");
	process_name(l, &name);
	hypr_strbuf_addc(&name, '\0');	/* never NULL below */
	name.n--;
	val = vars_getn(l->vars, name.s, name.n);
	mod = next(l);
	if (mod == EOFC) {
		fail(l, "syntax error: missing '}'%s%s", "", "");
		goto out;
	}
	if (mod == '}') {
		rc = 0;
		if (val != NULL) {
			hypr_strbuf_add(out, val);
			rc = take(l, strlen(val));
		}
		goto out;
	}
	if (mod == ':') {
		colon = 1;
		mod = next(l);
	}
	if (mod == '+' || mod == '-' || mod == '?' || mod == '#' || mod == '%') {
		int raw = mod == '#' || mod == '%';

		if (colon && raw) {	/* BuildKit has no ${V:#p} nor ${V:%p} */
			char m[3] = { ':', (char)mod, 0 };

			fail(l, "unsupported modifier (%s) in substitution%s", m, "");
			goto out;
		}

		if (process_stop(l, '}', raw, &word, NULL) < 0) {
			if (peek(l) == EOFC) {
				l->err[0] = '\0';
				fail(l, "syntax error: missing '}'%s%s", "", "");
			}
			goto out;
		}
		hypr_strbuf_addc(&word, '\0');
		word.n--;
		rc = 0;
		switch (mod) {
		case '-':
			if (val == NULL || (colon && *val == '\0'))
				hypr_strbuf_add(out, word.s);
			else {
				hypr_strbuf_add(out, val);
				rc = take(l, strlen(val));
			}
			break;
		case '+':
			if (!(val == NULL || (colon && *val == '\0')))
				hypr_strbuf_add(out, word.s);
			break;
		case '?':
			if (val == NULL || (colon && *val == '\0')) {
				fail(l, "%s: %s", name.s, *word.s ? word.s :
				    val == NULL ? "is not allowed to be unset" :
				    "is not allowed to be empty");
				rc = -1;
				goto out;
			}
			hypr_strbuf_add(out, val);
			rc = take(l, strlen(val));
			break;
		default: {
			const char *p = word.s;
			int greedy = 0;

			if (*p == mod) {
				greedy = 1;
				p++;
			}
			if (pat_check(p) < 0) {
				fail(l, "invalid pattern (%s) in substitution%s", p, "");
				rc = -1;
				goto out;
			}
			rc = trim(l, out, val ? val : "", p, mod == '%', greedy);
		}
		}
		goto out;
	}
	if (mod == '/' && !colon) {
		int all = 0;

		if (peek(l) == '/') {
			next(l);
			all = 1;
		}
		if (process_stop(l, '/', 1, &word, NULL) < 0) {
			if (peek(l) == EOFC) {
				l->err[0] = '\0';
				fail(l, "syntax error: missing '/' in ${}%s%s", "", "");
			}
			goto out;
		}
		if (process_stop(l, '}', 1, &rep, NULL) < 0) {
			if (peek(l) == EOFC) {
				l->err[0] = '\0';
				fail(l, "syntax error: missing '}'%s%s", "", "");
			}
			goto out;
		}
		hypr_strbuf_addc(&word, '\0');
		word.n--;
		hypr_strbuf_addc(&rep, '\0');
		rep.n--;
		if (pat_check(word.s) < 0) {
			fail(l, "invalid pattern (%s) in substitution%s", word.s, "");
			goto out;
		}
		rc = replace(l, out, val ? val : "", word.s, rep.s, all);
		goto out;
	}
	{
		char m[8];

		snprintf(m, sizeof(m), "%s%c", colon ? ":" : "",
		    mod == EOFC ? '?' : (char)mod);
		fail(l, "unsupported modifier (%s) in substitution%s", m, "");
	}
out:
	free(name.s);
	free(word.s);
	free(rep.s);
	return rc;
}

static int
process_stop(struct lex *l, int stop, int raw_escapes, struct hypr_strbuf *out,
    struct words *w)
{
	int saved = l->raw_escapes, c, rc = -1;

	if (l->depth >= MAX_NEST)
		return fail(l, "syntax error: nested deeper than %s levels%s", "1000", "");
	l->depth++;
	l->raw_escapes = raw_escapes;
	while ((c = peek(l)) != EOFC) {
		if (stop != EOFC && c == stop) {
			next(l);
			rc = 0;
			goto out;
		}
		if (c == '$' || c == '\'' || c == '"') {
			struct hypr_strbuf tmp = { 0 };
			int r = c == '$' ? process_dollar(l, &tmp) :
			    c == '\'' ? single_quote(l, &tmp) : double_quote(l, &tmp);

			if (r < 0) {
				free(tmp.s);
				goto out;
			}
			if (tmp.s != NULL) {
				hypr_strbuf_add(out, tmp.s);
				words_str(w, tmp.s, c != '$');
			} else if (c != '$' && w != NULL)
				w->in_word = 1;
			free(tmp.s);
			continue;
		}
		c = next(l);
		if (c == l->esc) {
			if (l->raw_escapes) {
				words_raw(w, (char)c);
				hypr_strbuf_addc(out, (char)c);
			}
			c = next(l);
			if (c == EOFC)
				break;
			words_raw(w, (char)c);
		} else
			words_char(w, (char)c);
		hypr_strbuf_addc(out, (char)c);
	}
	if (stop != EOFC) {
		char s[2] = { (char)stop, 0 };

		fail(l, "unexpected end of statement while looking for matching %s%s", s, "");
		goto out;
	}
	rc = 0;
out:
	l->raw_escapes = saved;
	l->depth--;
	return rc;
}

static int
expand(const char *text, const struct hypr_vars *vars, int escape, char **res,
    struct words *w, struct hypr_err *e)
{
	struct lex l = { .s = text, .n = strlen(text), .esc = escape, .vars = vars,
	    .budget = HYPR_EXPAND_MAX };
	struct hypr_strbuf out = { 0 };

	if (process_stop(&l, EOFC, 0, &out, w) < 0) {
		free(out.s);
		/* a huge word is shown by its start: the error stays one short line */
		return hypr_err_set(e, HYPR_EXIT_INPUT, "failed to process \"%.*s%s\": %s",
		    l.n > 200 ? 200 : (int)l.n, text, l.n > 200 ? "..." : "", l.err);
	}
	if (out.oom || (w != NULL && (w->oom || w->word.oom))) {
		free(out.s);
		return hypr_err_set(e, HYPR_EXIT_SYSTEM, "expanding variables: out of memory");
	}
	if (res != NULL) {
		*res = hypr_strbuf_take(&out);
		if (*res == NULL)
			return hypr_err_set(e, HYPR_EXIT_SYSTEM, "expanding variables: out of memory");
	} else
		free(out.s);
	return 0;
}

int
hypr_expand_word(const char *word, const struct hypr_vars *vars, int escape,
    char **out, struct hypr_err *e)
{
	return expand(word, vars, escape, out, NULL, e);
}

int
hypr_expand_words(const char *text, const struct hypr_vars *vars, int escape,
    char ***words, size_t *n, struct hypr_err *e)
{
	struct words w = { 0 };

	if (expand(text, vars, escape, NULL, &w, e) < 0) {
		free(w.word.s);
		if (w.v != NULL)
			hypr_words_free(w.v);
		return -1;
	}
	words_finish(&w);
	if (w.oom) {
		hypr_words_free(w.v);
		return hypr_err_set(e, HYPR_EXIT_SYSTEM, "expanding variables: out of memory");
	}
	if (w.v == NULL) {
		w.v = calloc(1, sizeof(*w.v));
		if (w.v == NULL)
			return hypr_err_set(e, HYPR_EXIT_SYSTEM, "expanding variables: out of memory");
	}
	*words = w.v;
	if (n != NULL)
		*n = w.n;
	return 0;
}
