/* dockerfile.c - Dockerfile parser producing plan records.
 *
 * Phase 1 (as BuildKit's parser.Parse): physical lines become logical
 * instructions: parser directives, comments, continuations (comment and
 * blank lines inside them skipped), heredoc bodies.
 * Phase 2 (as its line parsers): keyword, flags, arguments and form.
 * Phase 3 (as its instruction layer): stages, global ARGs and FROM
 * expansion, COPY --from, the target and the stages it needs. */
#include "dockerfile.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include "stream.h"
#include "strbuf.h"

/* ---- small helpers ---- */

/* Go's unicode.IsSpace for ASCII (and the two Latin-1 spaces as UTF-8). */
static size_t
space_len(const char *s, size_t n)
{
	unsigned char c = (unsigned char)s[0];

	if (c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r')
		return 1;
	if (n >= 2 && c == 0xc2 && ((unsigned char)s[1] == 0x85 || (unsigned char)s[1] == 0xa0))
		return 2;
	return 0;
}

static int
is_ws(int c)		/* the [\t\v\f\r ] of BuildKit's reWhitespace */
{
	return c == ' ' || c == '\t' || c == '\v' || c == '\f' || c == '\r';
}

/* TrimSpace into [*b, *e). */
static void
trim_space(const char **b, const char **e)
{
	size_t k;

	while (*b < *e && (k = space_len(*b, (size_t)(*e - *b))) > 0)
		*b += k;
	while (*e > *b) {
		unsigned char c = (unsigned char)(*e)[-1];

		if (c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r')
			(*e)--;
		else if (*e - *b >= 2 && (unsigned char)(*e)[-2] == 0xc2 &&
		    (c == 0x85 || c == 0xa0))
			*e -= 2;
		else
			break;
	}
}

/* ---- parser state ---- */

struct heredoc {
	char *name;
	struct hypr_strbuf content;
	int expand, chomp;
	long fd;
};

struct df {
	const struct hypr_dockerfile_opts *o;
	const char *name;
	struct hypr_err *e;
	int esc;
	int dir_done;
	int seen_escape, seen_syntax, seen_check;
	json_t *directives;
	json_t *nodes;		/* parsed instructions */
	json_t *warnings;
	long errline;		/* line for messages about the current node */
};

__attribute__((format(printf, 3, 4)))
static int
fail(struct df *d, long line, const char *fmt, ...)
{
	char msg[900];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return hypr_err_set(d->e, HYPR_EXIT_INPUT, "%s:%ld: %s", d->name, line, msg);
}

static int
oom(struct df *d)
{
	return hypr_err_set(d->e, HYPR_EXIT_SYSTEM, "%s: out of memory", d->name);
}

/* A JSON string from bytes; NULL (error set) when not UTF-8. */
static json_t *
jstr(struct df *d, const char *s, size_t n)
{
	json_t *j;

	if (memchr(s, '\0', n) != NULL) {
		fail(d, d->errline, "NUL byte in instruction");
		return NULL;
	}
	if ((j = json_stringn(s, n)) == NULL)
		fail(d, d->errline, "invalid UTF-8 in instruction");
	return j;
}

static json_t *
jcstr(struct df *d, const char *s)
{
	return jstr(d, s, strlen(s));
}

/* obj[key] = string; returns -1 on failure. */
static int
set_str(struct df *d, json_t *obj, const char *key, const char *s, size_t n)
{
	json_t *j = jstr(d, s, n);

	if (j == NULL)
		return -1;
	json_object_set_new(obj, key, j);
	return 0;
}

static int
append_str(struct df *d, json_t *arr, const char *s, size_t n)
{
	json_t *j = jstr(d, s, n);

	if (j == NULL)
		return -1;
	json_array_append_new(arr, j);
	return 0;
}

static json_t *
jrange(long s, long e)
{
	return json_pack("[II]", (json_int_t)s, (json_int_t)e);
}

static int
warn_add(struct df *d, long line, const char *msg)
{
	json_t *w = json_pack("{s:s, s:I}", "type", "warning", "line", (json_int_t)line);
	json_t *m = json_string(msg);

	if (w == NULL)
		return oom(d);
	if (m == NULL) {
		/* the message quotes the instruction, which is not UTF-8 */
		m = json_string("(instruction is not valid UTF-8)");
	}
	json_object_set_new(w, "message", m);
	json_array_append_new(d->warnings, w);
	return 0;
}

/* ---- phase 1: directives, continuations, heredocs ---- */

/* `^#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$` on a left-trimmed line. */
static int
directive(struct df *d, const char *s, size_t n, long line)
{
	size_t i = 1, ks, ke, vs, ve;
	char key[32], val[256];

	if (d->dir_done)
		return 0;
#define RE_SP(c) ((c) == ' ' || (c) == '\t' || (c) == '\n' || (c) == '\f' || (c) == '\r')
	if (n == 0 || s[0] != '#')
		goto done;
	while (i < n && RE_SP(s[i]))
		i++;
	ks = i;
	if (i >= n || !isalpha((unsigned char)s[i]))
		goto done;
	while (i < n && isalnum((unsigned char)s[i]))
		i++;
	ke = i;
	while (i < n && RE_SP(s[i]))
		i++;
	if (i >= n || s[i] != '=')
		goto done;
	i++;
	while (i < n && RE_SP(s[i]))
		i++;
	vs = i;
	ve = n;
	while (ve > vs && RE_SP(s[ve - 1]))
		ve--;
	if (ve == vs)
		goto done;
#undef RE_SP
	if (ke - ks >= sizeof(key))
		goto done;
	for (size_t k = 0; k < ke - ks; k++)
		key[k] = (char)tolower((unsigned char)s[ks + k]);
	key[ke - ks] = '\0';
	if (ve - vs >= sizeof(val))
		return fail(d, line, "parser directive %s: value too long", key);
	memcpy(val, s + vs, ve - vs);
	val[ve - vs] = '\0';
	if (strcmp(key, "escape") == 0) {
		if (d->seen_escape++)
			return fail(d, line, "only one escape parser directive can be used");
		if (strcmp(val, "`") != 0 && strcmp(val, "\\") != 0)
			return fail(d, line, "invalid escape token '%s' does not match ` or \\", val);
		d->esc = val[0];
	} else if (strcmp(key, "syntax") == 0) {
		if (d->seen_syntax++)
			return fail(d, line, "only one syntax parser directive can be used");
	} else if (strcmp(key, "check") == 0) {
		if (d->seen_check++)
			return fail(d, line, "only one check parser directive can be used");
	} else
		goto done;
	{
		json_t *v = json_string(val);

		if (v == NULL)
			return fail(d, line, "parser directive %s: invalid UTF-8", key);
		json_object_set_new(d->directives, key, v);
	}
	return 0;
done:
	d->dir_done = 1;
	return 0;
}

/* One physical line without its line ending ("\r\n" trimmed as Go's
 * TrimRight(s, "\r\n")). */
static size_t
trim_newline(const char *s, size_t n)
{
	while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == '\r'))
		n--;
	return n;
}

static size_t
lead_space(const char *s, size_t n)
{
	size_t i = 0, k;

	while (i < n && (k = space_len(s + i, n - i)) > 0)
		i += k;
	return i;
}

static int
is_comment(const char *s, size_t n)
{
	size_t i;

	n = trim_newline(s, n);
	i = lead_space(s, n);
	return i < n && s[i] == '#';
}

/* BuildKit's continuation regex `([^E])E[ \t]*$|^E[ \t]*$`: if the line
 * ends with an escape (not itself escaped) and blanks, drop them. */
static int
trim_continuation(const char *s, size_t *n, int esc)
{
	size_t k = *n;

	while (k > 0 && (s[k - 1] == ' ' || s[k - 1] == '\t'))
		k--;
	if (k > 0 && s[k - 1] == esc && (k == 1 || s[k - 2] != esc)) {
		*n = k - 1;
		return 1;
	}
	return 0;
}

/* Split a line into words the way BuildKit's lexer does with raw quotes and
 * raw escapes (quotes and escapes kept; ${...} kept whole). */
static void
raw_words(const char *s, size_t n, void (*cb)(void *, const char *, size_t), void *arg)
{
	size_t i = 0;

	while (i < n) {
		size_t st;

		while (i < n && isspace((unsigned char)s[i]))
			i++;
		if (i >= n)
			break;
		st = i;
		while (i < n && !isspace((unsigned char)s[i])) {
			char c = s[i];

			if (c == '\\') {
				i += i + 1 < n ? 2 : 1;
			} else if (c == '\'') {
				i++;
				while (i < n && s[i] != '\'')
					i++;
				if (i < n)
					i++;
			} else if (c == '"') {
				i++;
				while (i < n && s[i] != '"') {
					if (s[i] == '\\' && i + 1 < n)
						i++;
					i++;
				}
				if (i < n)
					i++;
			} else if (c == '$' && i + 1 < n && s[i + 1] == '{') {
				int depth = 0;

				for (; i < n; i++) {
					if (s[i] == '{')
						depth++;
					else if (s[i] == '}' && --depth == 0) {
						i++;
						break;
					}
				}
			} else
				i++;
		}
		cb(arg, s + st, i - st);
	}
}

struct hd_scan {
	struct df *d;
	struct heredoc *v;
	size_t n;
	int err;
};

/* Unquote a heredoc word: count words and removed quote characters. */
static char *
hd_unquote(const char *s, size_t n, int *words, int *removed)
{
	struct hypr_strbuf b = { 0 };
	int inword = 0;

	*words = 0;
	*removed = 0;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];

		if (isspace((unsigned char)c)) {
			if (inword)
				(*words)++;
			inword = 0;
			continue;
		}
		inword = 1;
		if (c == '\\' && i + 1 < n) {
			hypr_strbuf_addc(&b, s[++i]);
		} else if (c == '\'' || c == '"') {
			size_t j = i + 1;

			while (j < n && s[j] != c) {
				if (c == '"' && s[j] == '\\' && j + 1 < n &&
				    (s[j + 1] == '"' || s[j + 1] == '\\' || s[j + 1] == '$'))
					j++;
				hypr_strbuf_addc(&b, s[j]);
				j++;
			}
			if (j >= n) {	/* unterminated: not a heredoc word */
				free(b.s);
				*words = 0;
				return NULL;
			}
			*removed += 2;
			i = j;
		} else if (c != '\\')
			hypr_strbuf_addc(&b, c);
	}
	if (inword)
		(*words)++;
	return hypr_strbuf_take(&b);
}

static void
hd_word(void *arg, const char *w, size_t n)
{
	struct hd_scan *h = arg;
	size_t i = 0, ds;
	int chomp = 0, words, removed;
	long fd = 0;
	char *name;
	struct heredoc *v;

	if (h->err)
		return;
	/* ^(\d*)<<(-?)([^<]*)$ */
	while (i < n && isdigit((unsigned char)w[i]))
		i++;
	ds = i;
	if (i + 2 > n || w[i] != '<' || w[i + 1] != '<')
		return;
	i += 2;
	if (i < n && w[i] == '-') {
		chomp = 1;
		i++;
	}
	if (i >= n || memchr(w + i, '<', n - i) != NULL)
		return;
	if (ds > 0) {
		for (size_t k = 0; k < ds && fd < 100000; k++)
			fd = fd * 10 + (w[k] - '0');
	}
	name = hd_unquote(w + i, n - i, &words, &removed);
	if (name == NULL || words != 1 || name[0] == '\0') {
		free(name);
		return;
	}
	v = realloc(h->v, (h->n + 1) * sizeof(*v));
	if (v == NULL) {
		free(name);
		h->err = 1;
		return;
	}
	h->v = v;
	v[h->n] = (struct heredoc){ .name = name, .expand = removed == 0,
	    .chomp = chomp, .fd = fd };
	h->n++;
}

static void
heredocs_free(struct heredoc *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(v[i].name);
		free(v[i].content.s);
	}
	free(v);
}

/* ---- phase 2: one instruction ---- */

static const char *const known_ops[] = {
	"ADD", "ARG", "CMD", "COPY", "ENTRYPOINT", "ENV", "EXPOSE", "FROM",
	"HEALTHCHECK", "LABEL", "MAINTAINER", "ONBUILD", "RUN", "SHELL",
	"STOPSIGNAL", "USER", "VOLUME", "WORKDIR", NULL
};

static size_t
levenshtein(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b), prev[40], cur[40];

	if (la >= 40 || lb >= 40)
		return 99;
	for (size_t j = 0; j <= lb; j++)
		prev[j] = j;
	for (size_t i = 1; i <= la; i++) {
		cur[0] = i;
		for (size_t j = 1; j <= lb; j++) {
			size_t c = prev[j - 1] + (a[i - 1] != b[j - 1]);

			if (prev[j] + 1 < c)
				c = prev[j] + 1;
			if (cur[j - 1] + 1 < c)
				c = cur[j - 1] + 1;
			cur[j] = c;
		}
		memcpy(prev, cur, sizeof(cur));
	}
	return prev[lb];
}

/* BuildKit's extractBuilderFlags: leading "--words" (quotes and \ processed),
 * "--" alone ends them. Returns the rest of the line. */
static const char *
extract_flags(struct df *d, const char *s, const char *end, json_t *flag_args,
    int *err)
{
	struct hypr_strbuf w = { 0 };
	const char *p = s;

	*err = 0;
	for (;;) {
		int blank_ok = 0;
		char quote = 0;

		while (p < end && space_len(p, (size_t)(end - p)))
			p += space_len(p, (size_t)(end - p));
		if (p >= end)
			break;
		if (!(p[0] == '-' && p + 1 < end && p[1] == '-'))
			break;
		hypr_strbuf_reset(&w);
		while (p < end) {
			char c = *p;

			if (quote) {
				if (c == quote) {
					quote = 0;
					p++;
					continue;
				}
				if (c == '\\') {
					if (p + 1 == end) {
						quote = 0;
						p++;
						continue;
					}
					c = *++p;
				}
				hypr_strbuf_addc(&w, c);
				p++;
				continue;
			}
			if (space_len(p, (size_t)(end - p)))
				break;
			if (c == '\'' || c == '"') {
				quote = c;
				blank_ok = 1;
				p++;
				continue;
			}
			if (c == '\\') {
				if (p + 1 == end) {
					p++;
					continue;
				}
				c = *++p;
			}
			hypr_strbuf_addc(&w, c);
			p++;
		}
		if (w.n == 2 && memcmp(w.s, "--", 2) == 0)
			break;	/* "--" ends the flags and is dropped */
		if (blank_ok || w.n > 0)
			if (append_str(d, flag_args, hypr_strbuf_str(&w), w.n) < 0) {
				*err = 1;
				break;
			}
	}
	free(w.s);
	if (w.oom)
		*err = oom(d);
	return p;
}

/* Go's strings "whitespace split" with reWhitespace; empty rest gives []. */
static int
split_ws(struct df *d, const char *s, const char *end, json_t *arr)
{
	const char *p = s;

	if (s == end)
		return 0;
	for (;;) {
		const char *q = p;

		while (q < end && !is_ws((unsigned char)*q))
			q++;
		if (append_str(d, arr, p, (size_t)(q - p)) < 0)
			return -1;
		if (q >= end)
			return 0;
		while (q < end && is_ws((unsigned char)*q))
			q++;
		p = q;
		if (p >= end) {
			/* a trailing separator gives a final empty word in Go */
			return append_str(d, arr, "", 0);
		}
	}
}

/* parseJSON: 1 exec form (args filled), 0 not JSON, -1 error. */
static int
parse_json(struct df *d, const char *s, const char *end, json_t *args)
{
	json_t *j;
	size_t i;
	json_t *v;

	while (s < end && space_len(s, (size_t)(end - s)))
		s += space_len(s, (size_t)(end - s));
	if (s >= end || *s != '[')
		return 0;
	j = json_loadb(s, (size_t)(end - s), JSON_ALLOW_NUL, NULL);
	if (j == NULL || !json_is_array(j)) {
		json_decref(j);
		return 0;
	}
	json_array_foreach(j, i, v) {
		if (!json_is_string(v)) {
			json_decref(j);
			return fail(d, d->errline,
			    "when using JSON array syntax, arrays must be comprised of strings only");
		}
		json_array_append(args, v);
	}
	json_decref(j);
	return 1;
}

/* BuildKit's parseWords: words with quotes and escapes kept. */
static int
parse_words(struct df *d, const char *s, const char *end, json_t *arr)
{
	struct hypr_strbuf w = { 0 };
	int inword = 0, blank_ok = 0, rc = 0;
	char quote = 0;
	const char *p = s;

	while (p <= end) {
		size_t k = p < end ? space_len(p, (size_t)(end - p)) : 0;
		char c = p < end ? *p : 0;

		if (!inword && !quote) {
			if (p == end)
				break;
			if (k) {
				p += k;
				continue;
			}
			inword = 1;
		}
		if (p == end) {
			if (blank_ok || w.n > 0)
				rc |= append_str(d, arr, hypr_strbuf_str(&w), w.n);
			break;
		}
		if (!quote) {
			if (k) {
				if (blank_ok || w.n > 0)
					rc |= append_str(d, arr, hypr_strbuf_str(&w), w.n);
				hypr_strbuf_reset(&w);
				blank_ok = 0;
				inword = 0;
				p += k;
				continue;
			}
			if (c == '\'' || c == '"') {
				quote = c;
				blank_ok = 1;
			} else if (c == d->esc) {
				if (p + 1 == end) {
					p++;
					continue;
				}
				hypr_strbuf_addc(&w, c);
				c = *++p;
			}
			hypr_strbuf_addc(&w, c);
			p++;
			continue;
		}
		/* in quotes */
		if (c == quote)
			quote = 0;
		else if (c == d->esc && quote != '\'') {
			if (p + 1 == end) {
				quote = 0;
				p++;
				continue;
			}
			hypr_strbuf_addc(&w, c);
			c = *++p;
		}
		hypr_strbuf_addc(&w, c);
		p++;
	}
	free(w.s);
	if (w.oom)
		return oom(d);
	return rc < 0 ? -1 : 0;
}

static json_t *
new_pair(struct df *d, const char *k, size_t kn, const char *v, size_t vn, int has_v)
{
	json_t *p = json_object();
	json_t *jk = jstr(d, k, kn), *jv = has_v ? jstr(d, v, vn) : json_null();

	if (p == NULL || jk == NULL || jv == NULL) {
		json_decref(p);
		json_decref(jk);
		json_decref(jv);
		return NULL;
	}
	json_object_set_new(p, "key", jk);
	json_object_set_new(p, "value", jv);
	return p;
}

/* ENV and LABEL: `K V` (legacy) or `K=V ...`. */
static int
parse_name_val(struct df *d, const char *op, const char *s, const char *end,
    json_t *node)
{
	json_t *words = json_array(), *pairs = json_array(), *args = json_array();
	size_t i;
	json_t *w;

	json_object_set_new(node, "pairs", pairs);
	json_object_set_new(node, "args", args);
	if (parse_words(d, s, end, words) < 0)
		goto fail;
	if (json_array_size(words) == 0)
		goto out;
	if (strchr(json_string_value(json_array_get(words, 0)), '=') == NULL) {
		const char *q = s, *v;
		json_t *p;

		while (q < end && !is_ws((unsigned char)*q))
			q++;
		v = q;
		while (v < end && is_ws((unsigned char)*v))
			v++;
		if (q >= end) {
			fail(d, d->errline, "%s must have two arguments", op);
			goto fail;
		}
		if ((p = new_pair(d, s, (size_t)(q - s), v, (size_t)(end - v), 1)) == NULL)
			goto fail;
		json_array_append_new(pairs, p);
		json_array_append(args, json_object_get(p, "key"));
		json_array_append(args, json_object_get(p, "value"));
		json_object_set_new(node, "legacy", json_true());
		goto out;
	}
	json_array_foreach(words, i, w) {
		const char *ws = json_string_value(w), *eq = strchr(ws, '=');
		size_t wn = json_string_length(w);
		json_t *p;

		if (eq == NULL) {
			fail(d, d->errline, "Syntax error - can't find = in \"%s\". Must be of the form: name=value", ws);
			goto fail;
		}
		if ((p = new_pair(d, ws, (size_t)(eq - ws), eq + 1, wn - (size_t)(eq - ws) - 1, 1)) == NULL)
			goto fail;
		json_array_append_new(pairs, p);
		json_array_append(args, json_object_get(p, "key"));
		json_array_append(args, json_object_get(p, "value"));
	}
out:
	json_decref(words);
	return 0;
fail:
	json_decref(words);
	return -1;
}

static int
parse_arg(struct df *d, const char *s, const char *end, json_t *node)
{
	json_t *words = json_array(), *pairs = json_array();
	size_t i;
	json_t *w;

	json_object_set_new(node, "pairs", pairs);
	json_object_set_new(node, "args", words);
	if (parse_words(d, s, end, words) < 0)
		return -1;
	json_array_foreach(words, i, w) {
		const char *ws = json_string_value(w), *eq = strchr(ws, '=');
		size_t wn = json_string_length(w);
		json_t *p;

		if (eq != NULL)
			p = new_pair(d, ws, (size_t)(eq - ws), eq + 1, wn - (size_t)(eq - ws) - 1, 1);
		else
			p = new_pair(d, ws, wn, NULL, 0, 0);
		if (p == NULL)
			return -1;
		json_array_append_new(pairs, p);
	}
	return 0;
}

/* parseMaybeJSON (list=0) or parseMaybeJSONToList (list=1). */
static int
maybe_json(struct df *d, const char *s, const char *end, json_t *node, int list)
{
	json_t *args = json_array();
	int r;

	json_object_set_new(node, "args", args);
	if (!list && s == end) {
		json_object_set_new(node, "form", json_null());
		return 0;
	}
	r = parse_json(d, s, end, args);
	if (r < 0)
		return -1;
	if (r == 1) {
		json_object_set_new(node, "form", json_string("exec"));
		return 0;
	}
	json_object_set_new(node, "form", json_string("shell"));
	if (list)
		return split_ws(d, s, end, args);
	return append_str(d, args, s, (size_t)(end - s));
}

static int parse_node(struct df *d, const char *line, size_t n, json_t **out, int nested);

static int
parse_healthcheck(struct df *d, const char *s, const char *end, json_t *node)
{
	const char *sep = s, *next;
	json_t *sub, *args;

	while (sep < end && !isspace((unsigned char)*sep))
		sep++;
	next = sep;
	while (next < end && isspace((unsigned char)*next))
		next++;
	if (sep == s) {
		json_object_set_new(node, "args", json_array());
		json_object_set_new(node, "form", json_null());
		return 0;
	}
	sub = json_object();
	if (maybe_json(d, next, end, sub, 0) < 0) {
		json_decref(sub);
		return -1;
	}
	args = json_array();
	if (append_str(d, args, s, (size_t)(sep - s)) < 0) {
		json_decref(args);
		json_decref(sub);
		return -1;
	}
	json_array_extend(args, json_object_get(sub, "args"));
	json_object_set_new(node, "args", args);
	json_object_set(node, "form", json_object_get(sub, "form"));
	json_decref(sub);
	return 0;
}

/* Flag words into the flags object: repeatable ones become arrays. */
static int
flags_object(struct df *d, json_t *flag_args, json_t *flags)
{
	size_t i;
	json_t *f;

	json_array_foreach(flag_args, i, f) {
		const char *s = json_string_value(f), *eq;
		char name[64];
		size_t nl;
		json_t *v;

		if (strncmp(s, "--", 2) != 0)
			return fail(d, d->errline, "invalid flag '%s'", s);
		s += 2;
		eq = strchr(s, '=');
		nl = eq ? (size_t)(eq - s) : strlen(s);
		if (nl == 0 || nl >= sizeof(name))
			return fail(d, d->errline, "invalid flag '--%s'", s);
		memcpy(name, s, nl);
		name[nl] = '\0';
		v = eq ? jcstr(d, eq + 1) : json_string("true");
		if (v == NULL)
			return -1;
		if (strcmp(name, "mount") == 0 || strcmp(name, "exclude") == 0) {
			json_t *a = json_object_get(flags, name);

			if (a == NULL) {
				a = json_array();
				json_object_set_new(flags, name, a);
			}
			json_array_append_new(a, v);
		} else {
			if (json_object_get(flags, name) != NULL) {
				json_decref(v);
				return fail(d, d->errline, "duplicate flag specified: %s", name);
			}
			json_object_set_new(flags, name, v);
		}
	}
	return 0;
}

static int
parse_node(struct df *d, const char *line, size_t n, json_t **out, int nested)
{
	const char *b = line, *e = line + n, *ce, *rest, *re;
	char op[32];
	size_t opn;
	json_t *node = json_object(), *flag_args = json_array(), *flags = json_object();
	int err, r = 0;

	*out = NULL;
	trim_space(&b, &e);
	ce = b;
	while (ce < e && !is_ws((unsigned char)*ce))
		ce++;
	opn = (size_t)(ce - b);
	if (opn >= sizeof(op)) {
		char shown[40];

		snprintf(shown, sizeof(shown), "%.*s", 24, b);
		json_decref(node);
		json_decref(flag_args);
		json_decref(flags);
		return fail(d, d->errline, "unknown instruction: %s...", shown);
	}
	for (size_t i = 0; i < opn; i++)
		op[i] = (char)toupper((unsigned char)b[i]);
	op[opn] = '\0';
	rest = ce;
	while (rest < e && is_ws((unsigned char)*rest))
		rest++;
	json_object_set_new(node, "op", json_string(op));
	json_object_set_new(node, "original", json_null());
	json_object_set_new(node, "flags", flags);
	json_object_set_new(node, "flag_args", flag_args);
	if (set_str(d, node, "original", b, (size_t)(e - b)) < 0)
		goto fail;
	if (rest < e) {
		rest = extract_flags(d, rest, e, flag_args, &err);
		if (err)
			goto fail;
	}
	re = e;
	trim_space(&rest, &re);
	if (flags_object(d, flag_args, flags) < 0)
		goto fail;

	{
		int known = 0;

		for (size_t i = 0; known_ops[i]; i++)
			if (strcmp(op, known_ops[i]) == 0)
				known = 1;
		if (!known) {
			const char *best = NULL;
			size_t bd = 99;

			for (size_t i = 0; known_ops[i]; i++) {
				size_t dd = levenshtein(op, known_ops[i]);

				if (dd < bd) {
					bd = dd;
					best = known_ops[i];
				}
			}
			if (best != NULL && bd <= (strlen(op) > 4 ? 2u : 1u))
				fail(d, d->errline, "unknown instruction: %.*s (did you mean %s?)",
				    (int)opn, b, best);
			else
				fail(d, d->errline, "unknown instruction: %.*s", (int)opn, b);
			goto fail;
		}
	}
	if (!strcmp(op, "RUN") || !strcmp(op, "CMD") || !strcmp(op, "ENTRYPOINT") ||
	    !strcmp(op, "SHELL"))
		r = maybe_json(d, rest, re, node, 0);
	else if (!strcmp(op, "ADD") || !strcmp(op, "COPY") || !strcmp(op, "VOLUME"))
		r = maybe_json(d, rest, re, node, 1);
	else if (!strcmp(op, "EXPOSE") || !strcmp(op, "FROM")) {
		json_t *a = json_array();

		json_object_set_new(node, "args", a);
		r = split_ws(d, rest, re, a);
	} else if (!strcmp(op, "ENV") || !strcmp(op, "LABEL"))
		r = parse_name_val(d, op, rest, re, node);
	else if (!strcmp(op, "ARG"))
		r = parse_arg(d, rest, re, node);
	else if (!strcmp(op, "HEALTHCHECK"))
		r = parse_healthcheck(d, rest, re, node);
	else if (!strcmp(op, "ONBUILD")) {
		json_t *a = json_array(), *sub = NULL;

		json_object_set_new(node, "args", a);
		if (rest < re) {
			const char *w = rest;
			char sop[16];
			size_t k = 0;

			while (w < re && !is_ws((unsigned char)*w) && k < sizeof(sop) - 1)
				sop[k++] = (char)toupper((unsigned char)*w++);
			sop[k] = '\0';
			if (nested) {
				fail(d, d->errline, "ONBUILD ONBUILD isn't allowed");
				goto fail;
			}
			if (!strcmp(sop, "ONBUILD") || !strcmp(sop, "FROM") ||
			    !strcmp(sop, "MAINTAINER")) {
				fail(d, d->errline, "ONBUILD %s isn't allowed as an ONBUILD trigger", sop);
				goto fail;
			}
			if (append_str(d, a, rest, (size_t)(re - rest)) < 0)
				goto fail;
			if (parse_node(d, rest, (size_t)(re - rest), &sub, 1) < 0)
				goto fail;
			json_object_del(sub, "original");
			json_object_set_new(node, "onbuild", sub);
		}
	} else {	/* MAINTAINER STOPSIGNAL USER WORKDIR: one string */
		json_t *a = json_array();

		json_object_set_new(node, "args", a);
		if (rest < re)
			r = append_str(d, a, rest, (size_t)(re - rest));
	}
	if (r < 0)
		goto fail;
	if (json_object_get(node, "form") == NULL)
		json_object_set_new(node, "form", json_null());
	{
		/* BuildKit expands variables in these instructions' words (the
		 * others run through a shell, or never expand) */
		static const char *const exp[] = { "ADD", "ARG", "COPY", "ENV",
		    "EXPOSE", "LABEL", "STOPSIGNAL", "USER", "VOLUME", "WORKDIR", NULL };
		int x = 0;

		for (size_t i = 0; exp[i]; i++)
			if (!strcmp(op, exp[i]))
				x = 1;
		json_object_set_new(node, "expand", json_boolean(x));
	}
	*out = node;
	return 0;
fail:
	json_decref(node);
	return -1;
}

/* Does the node take heredocs (RUN, COPY, ADD in shell form, also under
 * ONBUILD)? */
static int
can_heredoc(json_t *node)
{
	json_t *sub = json_object_get(node, "onbuild");
	const char *op, *form;

	if (sub != NULL)
		node = sub;
	op = hypr_json_str(node, "op");
	form = hypr_json_str(node, "form");
	if (op == NULL || (strcmp(op, "RUN") && strcmp(op, "COPY") && strcmp(op, "ADD")))
		return 0;
	return form == NULL || strcmp(form, "exec") != 0;
}

struct line {
	const char *p;
	size_t n;		/* with the line ending */
};

static int
split_lines(const char *text, size_t len, struct line **lines, size_t *nlines)
{
	size_t cap = 64, n = 0;
	struct line *v = malloc(cap * sizeof(*v));
	const char *p = text, *end = text + len;

	if (v == NULL)
		return -1;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t l = nl ? (size_t)(nl - p) + 1 : (size_t)(end - p);

		if (n == cap) {
			struct line *nv;

			cap *= 2;
			if ((nv = realloc(v, cap * sizeof(*v))) == NULL) {
				free(v);
				return -1;
			}
			v = nv;
		}
		v[n].p = p;
		v[n].n = l;
		n++;
		p += l;
	}
	*lines = v;
	*nlines = n;
	return 0;
}

/* Phase 1+2: fill d->nodes with instruction objects carrying "line". */
static int
parse_text(struct df *d, const char *text, size_t len)
{
	struct line *L;
	size_t nl, i = 0;
	long cur = 0;
	struct hypr_strbuf line = { 0 };
	int rc = -1;

	if (split_lines(text, len, &L, &nl) < 0)
		return oom(d);
	while (i < nl) {
		const char *s = L[i].p;
		size_t n = L[i].n, k;
		long start;
		int cont, empty_cont = 0;
		json_t *node = NULL;

		if (i == 0 && n >= 3 && memcmp(s, "\xef\xbb\xbf", 3) == 0) {
			s += 3;
			n -= 3;
		}
		i++;
		n = trim_newline(s, n);
		k = lead_space(s, n);
		s += k;
		n -= k;
		if (directive(d, s, n, cur + 1) < 0)
			goto out;
		if (n > 0 && s[0] == '#')
			n = 0;
		cur++;
		start = cur;
		cont = trim_continuation(s, &n, d->esc);
		if (!cont && n == 0)
			continue;
		hypr_strbuf_reset(&line);
		hypr_strbuf_addn(&line, s, n);
		while (cont && i < nl) {
			const char *t = L[i].p;
			size_t tn = trim_newline(t, L[i].n);

			i++;
			cur++;
			if (is_comment(t, tn))
				continue;
			if (lead_space(t, tn) == tn) {
				empty_cont = 1;
				continue;
			}
			cont = trim_continuation(t, &tn, d->esc);
			hypr_strbuf_addn(&line, t, tn);
		}
		if (line.oom) {
			oom(d);
			goto out;
		}
		d->errline = start;
		if (empty_cont) {
			struct hypr_strbuf m = { 0 };

			hypr_strbuf_add(&m, "empty continuation line found in: ");
			hypr_strbuf_addn(&m, line.s, line.n < 200 ? line.n : 200);
			if (m.oom || warn_add(d, start, m.s) < 0) {
				free(m.s);
				goto out;
			}
			free(m.s);
		}
		if (parse_node(d, line.s, line.n, &node, 0) < 0)
			goto out;
		if (can_heredoc(node)) {
			struct hd_scan h = { .d = d };

			raw_words(line.s, line.n, hd_word, &h);
			if (h.err) {
				heredocs_free(h.v, h.n);
				json_decref(node);
				oom(d);
				goto out;
			}
			if (h.n > 0) {
				json_t *arr = json_array();

				for (size_t j = 0; j < h.n; j++) {
					struct heredoc *hd = &h.v[j];
					int done = 0;
					json_t *o;

					while (i < nl) {
						const char *t = L[i].p;
						size_t tn = trim_newline(t, L[i].n), off = 0;

						i++;
						cur++;
						if (hd->chomp)
							while (off < tn && t[off] == '\t')
								off++;
						if (tn - off == strlen(hd->name) &&
						    memcmp(t + off, hd->name, tn - off) == 0) {
							done = 1;
							break;
						}
						if (hd->chomp) {
							size_t lt = 0;

							while (lt < L[i - 1].n && t[lt] == '\t')
								lt++;
							hypr_strbuf_addn(&hd->content, t + lt, L[i - 1].n - lt);
						} else
							hypr_strbuf_addn(&hd->content, t, L[i - 1].n);
					}
					if (!done) {
						fail(d, start, "unterminated heredoc %s (started here, file ends at line %ld)",
						    hd->name, cur);
						json_decref(arr);
						heredocs_free(h.v, h.n);
						json_decref(node);
						goto out;
					}
					o = json_object();
					if (set_str(d, o, "name", hd->name, strlen(hd->name)) < 0 ||
					    set_str(d, o, "content", hypr_strbuf_str(&hd->content), hd->content.n) < 0) {
						json_decref(o);
						json_decref(arr);
						heredocs_free(h.v, h.n);
						json_decref(node);
						goto out;
					}
					json_object_set_new(o, "expand", json_boolean(hd->expand));
					json_object_set_new(o, "strip_tabs", json_boolean(hd->chomp));
					if (hd->fd)
						json_object_set_new(o, "fd", json_integer(hd->fd));
					json_array_append_new(arr, o);
				}
				{
					json_t *sub = json_object_get(node, "onbuild");

					json_object_set_new(sub ? sub : node, "heredocs", arr);
				}
			}
			heredocs_free(h.v, h.n);
		}
		json_object_set_new(node, "line", jrange(start, cur));
		json_array_append_new(d->nodes, node);
	}
	if (json_array_size(d->nodes) == 0) {
		fail(d, cur > 0 ? cur : 1, "file with no instructions");
		goto out;
	}
	rc = 0;
out:
	free(line.s);
	free(L);
	return rc;
}

/* ---- phase 3: stages ---- */

struct stage {
	json_t *rec;		/* the stage record */
	char *name;		/* lower-case, or NULL */
	long line;
	json_t *instrs;		/* instr records */
	int *deps;		/* stage indexes it needs */
	size_t ndeps;
	int needed;
};

static int
add_dep(struct stage *st, int j)
{
	int *v;

	for (size_t i = 0; i < st->ndeps; i++)
		if (st->deps[i] == j)
			return 0;
	v = realloc(st->deps, (st->ndeps + 1) * sizeof(*v));
	if (v == NULL)
		return -1;
	st->deps = v;
	st->deps[st->ndeps++] = j;
	return 0;
}

static int
valid_stage_name(const char *s)
{
	if (!islower((unsigned char)*s))
		return 0;
	for (s++; *s; s++)
		if (!islower((unsigned char)*s) && !isdigit((unsigned char)*s) &&
		    *s != '-' && *s != '_' && *s != '.')
			return 0;
	return 1;
}

/* The earlier stage (index < n) a COPY --from / mount from= value names,
 * by name or by number; -1 if none. */
static int
stage_ref(struct stage *st, size_t n, const char *v)
{
	char *end;
	long idx;

	if (*v == '\0')
		return -1;
	idx = strtol(v, &end, 10);
	if (*end == '\0' && isdigit((unsigned char)*v))
		return idx >= 0 && (size_t)idx < n ? (int)idx : -1;
	for (size_t i = 0; i < n; i++)
		if (st[i].name && strcasecmp(st[i].name, v) == 0)
			return (int)i;
	return -1;
}

const char *
hypr_dockerfile_host_platform(void)
{
	struct utsname u;

	if (uname(&u) == 0) {
		if (!strcmp(u.machine, "aarch64"))
			return "linux/arm64";
		if (!strcmp(u.machine, "riscv64"))
			return "linux/riscv64";
		if (!strcmp(u.machine, "s390x"))
			return "linux/s390x";
		if (!strcmp(u.machine, "ppc64le"))
			return "linux/ppc64le";
		if (!strcmp(u.machine, "i686") || !strcmp(u.machine, "i386"))
			return "linux/386";
	}
	return "linux/amd64";
}

static void
platform_vars(struct hypr_vars *v, const char *prefix, const char *plat)
{
	char key[32], os[64] = "", arch[64] = "", variant[64] = "";
	const char *p = plat, *s1 = strchr(p, '/'), *s2 = s1 ? strchr(s1 + 1, '/') : NULL;

	snprintf(os, sizeof(os), "%.*s", s1 ? (int)(s1 - p) : (int)strlen(p), p);
	if (s1)
		snprintf(arch, sizeof(arch), "%.*s",
		    s2 ? (int)(s2 - s1 - 1) : (int)strlen(s1 + 1), s1 + 1);
	if (s2)
		snprintf(variant, sizeof(variant), "%s", s2 + 1);
	snprintf(key, sizeof(key), "%sPLATFORM", prefix);
	hypr_vars_set(v, key, plat);
	snprintf(key, sizeof(key), "%sOS", prefix);
	hypr_vars_set(v, key, os);
	snprintf(key, sizeof(key), "%sARCH", prefix);
	hypr_vars_set(v, key, arch);
	snprintf(key, sizeof(key), "%sVARIANT", prefix);
	hypr_vars_set(v, key, variant);
}

/* --mount=type=...,from=... : out-of-scope types fail; a from= naming a
 * stage is a dependency. */
static int
check_mounts(struct df *d, json_t *flags, struct stage *st, size_t nst, long line)
{
	json_t *m = json_object_get(flags, "mount"), *v;
	size_t i;

	json_array_foreach(m, i, v) {
		const char *s = json_string_value(v);
		char type[32] = "bind", from[256] = "";

		while (s && *s) {
			const char *c = strchr(s, ',');
			size_t l = c ? (size_t)(c - s) : strlen(s);

			if (l > 5 && strncmp(s, "type=", 5) == 0)
				snprintf(type, sizeof(type), "%.*s", (int)(l - 5), s + 5);
			else if (l > 5 && strncmp(s, "from=", 5) == 0)
				snprintf(from, sizeof(from), "%.*s", (int)(l - 5), s + 5);
			s = c ? c + 1 : NULL;
		}
		if (!strcmp(type, "secret") || !strcmp(type, "ssh") || !strcmp(type, "cache"))
			return fail(d, line, "RUN --mount=type=%s is not supported by hypr "
			    "(builds run offline in a VM; use COPY or a build stage instead)", type);
		if (from[0] && nst > 0) {
			int j = stage_ref(st, nst - 1, from);

			if (j >= 0 && add_dep(&st[nst - 1], j) < 0)
				return oom(d);
		}
	}
	return 0;
}

/* The argument counts BuildKit's instruction layer insists on (the parser
 * alone, as --parse-only, accepts them). */
static int
check_arity(struct df *d, json_t *n, long line)
{
	const char *op = hypr_json_str(n, "op");
	size_t na = json_array_size(json_object_get(n, "args"));
	static const char *const one[] = { "ARG", "ENV", "EXPOSE", "LABEL",
	    "ONBUILD", "STOPSIGNAL", "USER", "VOLUME", "WORKDIR", NULL };

	if ((!strcmp(op, "COPY") || !strcmp(op, "ADD")) && na < 2)
		return fail(d, line, "%s requires at least two arguments, but only %zu provided "
		    "(%s [--flags] SRC... DEST)", op, na, op);
	for (size_t i = 0; one[i]; i++)
		if (!strcmp(op, one[i]) && na == 0)
			return fail(d, line, "%s requires at least one argument", op);
	return 0;
}

/* The flags each instruction takes (BuildKit's BFlags per instruction):
 * "s" a string (repeatable when the name is mount or exclude), "b" a
 * boolean. Anything else is an unknown flag. */
static const struct {
	const char *op, *name, *kind;
} known_flags[] = {
	{ "FROM", "platform", "s" },
	{ "RUN", "mount", "s" }, { "RUN", "network", "s" },
	{ "RUN", "security", "s" }, { "RUN", "device", "s" },
	{ "COPY", "from", "s" }, { "COPY", "chown", "s" }, { "COPY", "chmod", "s" },
	{ "COPY", "link", "b" }, { "COPY", "parents", "b" }, { "COPY", "exclude", "s" },
	{ "ADD", "chown", "s" }, { "ADD", "chmod", "s" }, { "ADD", "link", "b" },
	{ "ADD", "keep-git-dir", "b" }, { "ADD", "checksum", "s" },
	{ "ADD", "exclude", "s" }, { "ADD", "unpack", "b" },
	{ "HEALTHCHECK", "interval", "s" }, { "HEALTHCHECK", "timeout", "s" },
	{ "HEALTHCHECK", "start-period", "s" }, { "HEALTHCHECK", "start-interval", "s" },
	{ "HEALTHCHECK", "retries", "s" },
	{ NULL, NULL, NULL }
};

/* BuildKit's instruction layer on flags and names: an unknown flag, a
 * string flag without a value, a boolean flag with a non-boolean value,
 * a blank ENV/LABEL/ARG name are errors. */
static int
check_flags(struct df *d, json_t *n, long line)
{
	const char *op = hypr_json_str(n, "op");
	json_t *f, *p;
	size_t i;

	json_array_foreach(json_object_get(n, "flag_args"), i, f) {
		const char *s = json_string_value(f) + 2, *eq = strchr(s, '=');
		size_t nl = eq ? (size_t)(eq - s) : strlen(s);
		const char *kind = NULL;

		for (size_t k = 0; known_flags[k].op; k++)
			if (!strcmp(known_flags[k].op, op) &&
			    strlen(known_flags[k].name) == nl &&
			    !strncmp(known_flags[k].name, s, nl))
				kind = known_flags[k].kind;
		if (kind == NULL)
			return fail(d, line, "%s: unknown flag: %.*s", op, (int)nl, s);
		if (*kind == 's' && eq == NULL)
			return fail(d, line, "%s: missing a value on flag: %s", op, s);
		if (*kind == 'b' && eq && strcasecmp(eq + 1, "true") &&
		    strcasecmp(eq + 1, "false"))
			return fail(d, line, "%s: expecting boolean value for flag %.*s, not: %s",
			    op, (int)nl, s, eq + 1);
	}
	if (!strcmp(op, "ENV") || !strcmp(op, "LABEL") || !strcmp(op, "ARG"))
		json_array_foreach(json_object_get(n, "pairs"), i, p)
			if (json_string_length(json_object_get(p, "key")) == 0)
				return fail(d, line, "%s names can not be blank", op);
	return 0;
}

static void
stages_free(struct stage *st, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		json_decref(st[i].rec);
		json_decref(st[i].instrs);
		free(st[i].name);
		free(st[i].deps);
	}
	free(st);
}

static void
mark(struct stage *st, int i)
{
	if (st[i].needed)
		return;
	st[i].needed = 1;
	for (size_t k = 0; k < st[i].ndeps; k++)
		mark(st, st[i].deps[k]);
}

static int
count_from(json_t *nodes)
{
	size_t i;
	json_t *n;
	int c = 0;

	json_array_foreach(nodes, i, n)
		if (!strcmp(hypr_json_str(n, "op"), "FROM"))
			c++;
	return c;
}

/* Stage names in the whole file, lower-cased, in order (for "later stage"
 * checks on COPY --from). */
static int
later_stage_named(json_t *nodes, size_t from_node, const char *name)
{
	size_t i;
	json_t *n;

	json_array_foreach(nodes, i, n) {
		json_t *a;

		if (i < from_node || strcmp(hypr_json_str(n, "op"), "FROM"))
			continue;
		a = json_object_get(n, "args");
		if (json_array_size(a) == 3 &&
		    strcasecmp(json_string_value(json_array_get(a, 2)), name) == 0)
			return 1;
	}
	return 0;
}

static int
plan_stages(struct df *d, json_t *records)
{
	const struct hypr_dockerfile_opts *o = d->o;
	struct hypr_vars meta = { 0 };
	struct stage *st = NULL;
	size_t nst = 0, i;
	int total = count_from(d->nodes), target = -1, rc = -1;
	const char *plat = o->platform ? o->platform : hypr_dockerfile_host_platform();
	json_t *n, *globals = json_array();

	platform_vars(&meta, "TARGET", plat);
	platform_vars(&meta, "BUILD", hypr_dockerfile_host_platform());
	if (total > 0 && (st = calloc((size_t)total, sizeof(*st))) == NULL) {
		oom(d);
		goto out;
	}
	json_array_foreach(d->nodes, i, n) {
		const char *op = hypr_json_str(n, "op");
		json_t *line = json_object_get(n, "line"), *flags = json_object_get(n, "flags");
		long l0 = (long)json_integer_value(json_array_get(line, 0));

		d->errline = l0;
		if (!strcmp(op, "FROM")) {
			json_t *args = json_object_get(n, "args"), *rec;
			struct stage *s = &st[nst];
			const char *raw, *pf = hypr_json_str(flags, "platform");
			char *base = NULL, *pexp = NULL, *lname = NULL;
			size_t na = json_array_size(args);

			if (check_flags(d, n, l0) < 0)
				goto out;
			if (na != 1 && !(na == 3 && !strcasecmp(json_string_value(json_array_get(args, 1)), "AS"))) {
				fail(d, l0, "FROM requires either one or three arguments (FROM image [AS name])");
				goto out;
			}
			raw = json_string_value(json_array_get(args, 0));
			if (na == 3) {
				lname = strdup(json_string_value(json_array_get(args, 2)));
				if (lname == NULL) {
					oom(d);
					goto out;
				}
				for (char *p = lname; *p; p++)
					*p = (char)tolower((unsigned char)*p);
				if (!valid_stage_name(lname)) {
					fail(d, l0, "invalid name for build stage: \"%s\", name can't start with a number or contain symbols", lname);
					free(lname);
					goto out;
				}
				for (size_t k = 0; k < nst; k++)
					if (st[k].name && !strcmp(st[k].name, lname)) {
						fail(d, l0, "duplicate stage name \"%s\" (first defined at line %ld)",
						    lname, st[k].line);
						free(lname);
						goto out;
					}
			}
			if (hypr_expand_word(raw, &meta, d->esc, &base, d->e) < 0) {
				hypr_err_prefix(d->e, "%s:%ld", d->name, l0);
				d->e->code = HYPR_EXIT_INPUT;
				free(lname);
				goto out;
			}
			if (base[0] == '\0') {
				fail(d, l0, "base name (%s) should not be blank", raw);
				free(base);
				free(lname);
				goto out;
			}
			if (pf != NULL && hypr_expand_word(pf, &meta, d->esc, &pexp, d->e) < 0) {
				hypr_err_prefix(d->e, "%s:%ld", d->name, l0);
				d->e->code = HYPR_EXIT_INPUT;
				free(base);
				free(lname);
				goto out;
			}
			rec = json_pack("{s:s, s:I, s:o, s:O}", "type", "stage", "index",
			    (json_int_t)nst, "name", lname ? json_string(lname) : json_null(),
			    "line", line);
			if (rec == NULL || set_str(d, rec, "from", raw, strlen(raw)) < 0 ||
			    set_str(d, rec, "base", base, strlen(base)) < 0) {
				json_decref(rec);
				free(base);
				free(pexp);
				free(lname);
				if (d->e->code == 0)
					oom(d);
				goto out;
			}
			for (size_t k = 0; k < nst; k++)
				if (st[k].name && !strcasecmp(st[k].name, base)) {
					json_object_set_new(rec, "base_stage", json_integer((json_int_t)k));
					if (add_dep(s, (int)k) < 0) {
						json_decref(rec);
						free(base);
						free(pexp);
						free(lname);
						oom(d);
						goto out;
					}
				}
			json_object_set_new(rec, "platform", pexp ? json_string(pexp) : json_null());
			json_object_set_new(rec, "final", json_false());
			json_object_set(rec, "original", json_object_get(n, "original"));
			json_object_set(rec, "flags", flags);
			json_object_set(rec, "flag_args", json_object_get(n, "flag_args"));
			json_object_set(rec, "args", args);
			s->rec = rec;
			s->name = lname;
			s->line = l0;
			s->instrs = json_array();
			nst++;
			free(base);
			free(pexp);
			continue;
		}
		if (nst == 0) {
			json_t *pairs, *p;
			size_t k;

			if (strcmp(op, "ARG") != 0) {
				fail(d, l0, "%s before the first FROM (only ARG may come before FROM)", op);
				goto out;
			}
			if (check_flags(d, n, l0) < 0)
				goto out;
			/* A global ARG: its value (or --build-arg) is visible to FROM lines. */
			pairs = json_object_get(n, "pairs");
			json_array_foreach(pairs, k, p) {
				const char *key = hypr_json_str(p, "key");
				json_t *jv = json_object_get(p, "value");
				const char *ov = o->build_args ? hypr_vars_get(o->build_args, key) : NULL;
				char *val = NULL;
				json_t *rec;

				if (ov != NULL) {
					val = strdup(ov);
				} else if (json_is_string(jv)) {
					if (hypr_expand_word(json_string_value(jv), &meta, d->esc, &val, d->e) < 0) {
						hypr_err_prefix(d->e, "%s:%ld", d->name, l0);
						d->e->code = HYPR_EXIT_INPUT;
						goto out;
					}
				} else if (hypr_vars_get(&meta, key) != NULL) {
					val = strdup(hypr_vars_get(&meta, key));
				}
				if (hypr_vars_set(&meta, key, val ? val : "") < 0) {
					free(val);
					oom(d);
					goto out;
				}
				rec = json_pack("{s:s, s:O, s:O}", "type", "arg", "line", line, "name",
				    json_object_get(p, "key"));
				if (rec == NULL) {
					free(val);
					oom(d);
					goto out;
				}
				json_object_set_new(rec, "value", val ? json_string(val) : json_null());
				if (json_object_get(rec, "value") == NULL) {
					free(val);
					json_decref(rec);
					fail(d, l0, "invalid UTF-8 in build argument %s", key);
					goto out;
				}
				free(val);
				json_object_set(rec, "raw", json_array_get(json_object_get(n, "args"), k));
				json_array_append_new(globals, rec);
			}
			continue;
		}
		{
			struct stage *s = &st[nst - 1];
			json_t *rec = json_pack("{s:s, s:I, s:O}", "type", "instr", "stage",
			    (json_int_t)(nst - 1), "line", line);
			const char *from = hypr_json_str(flags, "from");

			if (rec == NULL || json_object_update_missing(rec, n) < 0) {
				json_decref(rec);
				oom(d);
				goto out;
			}
			json_array_append_new(s->instrs, rec);
			if (check_arity(d, n, l0) < 0 || check_flags(d, n, l0) < 0)
				goto out;
			if (!strcmp(op, "MAINTAINER") &&
			    warn_add(d, l0, "MAINTAINER is deprecated, use LABEL maintainer=... instead") < 0)
				goto out;
			if (from != NULL && (!strcmp(op, "COPY") || !strcmp(op, "ADD")) &&
			    strchr(from, '$') == NULL) {
				int j = stage_ref(st, nst - 1, from);
				const char *bad = NULL;

				if (j < 0) {
					char *end;
					long idx = strtol(from, &end, 10);

					if (*end == '\0' && isdigit((unsigned char)*from)) {
						if ((size_t)idx == nst - 1)
							bad = "its own";
						else if (idx >= 0 && idx < total)
							bad = "a later";
					} else if (s->name && !strcasecmp(s->name, from))
						bad = "its own";
					else if (later_stage_named(d->nodes, i, from))
						bad = "a later";
				}
				if (bad != NULL) {
					fail(d, l0, "%s --from=%s names %s stage; only earlier stages can be copied from",
					    op, from, bad);
					goto out;
				}
				if (j >= 0) {
					json_object_set_new(rec, "from_stage", json_integer(j));
					if (add_dep(s, j) < 0) {
						oom(d);
						goto out;
					}
				}
			}
			if (!strcmp(op, "RUN") && check_mounts(d, flags, st, nst, l0) < 0)
				goto out;
			{
				json_t *sub = json_object_get(n, "onbuild");

				if (sub && !strcmp(hypr_json_str(sub, "op"), "RUN") &&
				    check_mounts(d, json_object_get(sub, "flags"), NULL, 0, l0) < 0)
					goto out;
			}
		}
	}
	if (nst == 0) {
		fail(d, d->errline, "no FROM instruction: a Dockerfile needs at least one stage");
		goto out;
	}
	if (o->target != NULL) {
		for (size_t k = 0; k < nst; k++)
			if (st[k].name && !strcasecmp(st[k].name, o->target))
				target = (int)k;
		if (target < 0) {
			hypr_err_set(d->e, HYPR_EXIT_USAGE, "%s: --target: no stage named \"%s\"",
			    d->name, o->target);
			goto out;
		}
	} else
		target = (int)nst - 1;
	json_object_set_new(st[target].rec, "final", json_true());
	mark(st, target);

	/* records in file order: global ARGs, then needed stages with their
	 * instructions; warnings go before the first record past their line */
	{
		json_t *all = json_array();
		size_t wi = 0, nw = json_array_size(d->warnings);

		json_array_extend(all, globals);
		for (size_t k = 0; k < nst; k++) {
			if (!st[k].needed)
				continue;
			json_array_append(all, st[k].rec);
			json_array_extend(all, st[k].instrs);
		}
		json_array_foreach(all, i, n) {
			long l = (long)json_integer_value(json_array_get(json_object_get(n, "line"), 0));

			while (wi < nw && json_integer_value(json_object_get(
			    json_array_get(d->warnings, wi), "line")) <= l)
				json_array_append(records, json_array_get(d->warnings, wi++));
			json_array_append(records, n);
		}
		while (wi < nw)
			json_array_append(records, json_array_get(d->warnings, wi++));
		json_decref(all);
	}
	rc = 0;
out:
	json_decref(globals);
	stages_free(st, nst < (size_t)total ? (size_t)total : nst);
	hypr_vars_free(&meta);
	return rc;
}

static int
plan_parse_only(struct df *d, json_t *records)
{
	size_t i, wi = 0, nw = json_array_size(d->warnings);
	json_t *n;

	json_array_foreach(d->nodes, i, n) {
		json_t *line = json_object_get(n, "line");
		json_t *rec = json_pack("{s:s, s:n, s:O}", "type", "instr", "stage", "line", line);
		long l = (long)json_integer_value(json_array_get(line, 0));

		if (rec == NULL || json_object_update_missing(rec, n) < 0) {
			json_decref(rec);
			return oom(d);
		}
		while (wi < nw && json_integer_value(json_object_get(
		    json_array_get(d->warnings, wi), "line")) <= l)
			json_array_append(records, json_array_get(d->warnings, wi++));
		json_array_append_new(records, rec);
	}
	while (wi < nw)
		json_array_append(records, json_array_get(d->warnings, wi++));
	return 0;
}

static json_int_t
wline(json_t *w)
{
	json_t *l = json_object_get(w, "line");

	return json_is_array(l) ? json_integer_value(json_array_get(l, 0)) : json_integer_value(l);
}

/* Warnings come from two phases; put each just before the first record
 * that starts after its line, keeping the other records' order. */
static int
sort_warnings(struct df *d, json_t *recs)
{
	json_t *w = json_array(), *rest = json_array(), *r;
	size_t i, wi = 0, nw;

	if (w == NULL || rest == NULL) {
		json_decref(w);
		json_decref(rest);
		return oom(d);
	}
	json_array_foreach(recs, i, r) {
		const char *t = hypr_json_str(r, "type");

		if (t && !strcmp(t, "warning")) {
			size_t k = json_array_size(w);

			while (k > 0 && wline(json_array_get(w, k - 1)) > wline(r))
				k--;
			json_array_insert(w, k, r);
		} else
			json_array_append(rest, r);
	}
	nw = json_array_size(w);
	json_array_clear(recs);
	json_array_foreach(rest, i, r) {
		while (wi < nw && wline(json_array_get(w, wi)) <= wline(r))
			json_array_append(recs, json_array_get(w, wi++));
		json_array_append(recs, r);
	}
	while (wi < nw)
		json_array_append(recs, json_array_get(w, wi++));
	json_decref(w);
	json_decref(rest);
	return 0;
}

int
hypr_dockerfile_plan(const char *text, size_t len,
    const struct hypr_dockerfile_opts *o, json_t **header, json_t **records,
    struct hypr_err *e)
{
	struct df d = { .o = o, .e = e, .esc = '\\' };
	json_t *recs = json_array(), *hdr = NULL, *ba = json_object();
	int rc = -1;

	d.name = o->name ? o->name : "Dockerfile";
	d.directives = json_object();
	d.nodes = json_array();
	d.warnings = json_array();
	if (recs == NULL || ba == NULL || d.directives == NULL || d.nodes == NULL ||
	    d.warnings == NULL) {
		oom(&d);
		goto out;
	}
	if (parse_text(&d, text, len) < 0)
		goto out;
	if (o->parse_only ? plan_parse_only(&d, recs) < 0 : plan_stages(&d, recs) < 0)
		goto out;
	if (sort_warnings(&d, recs) < 0)
		goto out;
	if (o->build_args)
		for (size_t i = 0; i < o->build_args->n; i++) {
			const char *kv = o->build_args->kv[i], *eq = strchr(kv, '=');
			char key[256];
			json_t *v;

			snprintf(key, sizeof(key), "%.*s", (int)(eq - kv), kv);
			if ((v = json_string(eq + 1)) == NULL) {
				hypr_err_set(e, HYPR_EXIT_USAGE, "--build-arg %s: not UTF-8", key);
				goto out;
			}
			json_object_set_new(ba, key, v);
		}
	{
		char esc[2] = { (char)d.esc, 0 };

		json_object_set_new(d.directives, "escape", json_string(esc));
	}
	hdr = json_pack("{s:s?, s:n, s:s?, s:s, s:O, s:O}",
	    "dockerfile", d.name, "context", "target", o->target,
	    "platform", o->platform ? o->platform : hypr_dockerfile_host_platform(),
	    "build_args", ba, "directives", d.directives);
	if (hdr == NULL) {
		hypr_err_set(e, HYPR_EXIT_USAGE, "%s: file name or target is not UTF-8", d.name);
		goto out;
	}
	if (o->parse_only)
		json_object_set_new(hdr, "parse_only", json_true());
	*header = hdr;
	*records = recs;
	recs = NULL;
	rc = 0;
out:
	json_decref(recs);
	json_decref(ba);
	json_decref(d.directives);
	json_decref(d.nodes);
	json_decref(d.warnings);
	return rc;
}
