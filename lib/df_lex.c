/* df_lex.c - phase 1 of the Dockerfile parser (see dockerfile.c): physical
 * lines into logical instructions, as BuildKit's parser.Parse: parser
 * directives, comments, continuations, heredoc words and bodies. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "df.h"
#include "stream.h"

/* `^#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$` on a left-trimmed line. */
int
df_directive(struct df *d, const char *s, size_t n, long line)
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
		return df_fail(d, line, "parser directive %s: value too long", key);
	memcpy(val, s + vs, ve - vs);
	val[ve - vs] = '\0';
	if (strcmp(key, "escape") == 0) {
		if (d->seen_escape++)
			return df_fail(d, line, "only one escape parser directive can be used");
		if (strcmp(val, "`") != 0 && strcmp(val, "\\") != 0)
			return df_fail(d, line, "invalid escape token '%s' does not match ` or \\", val);
		d->esc = val[0];
	} else if (strcmp(key, "syntax") == 0) {
		if (d->seen_syntax++)
			return df_fail(d, line, "only one syntax parser directive can be used");
	} else if (strcmp(key, "check") == 0) {
		if (d->seen_check++)
			return df_fail(d, line, "only one check parser directive can be used");
	} else
		goto done;
	{
		json_t *v = json_string(val);

		if (v == NULL)
			return df_fail(d, line, "parser directive %s: invalid UTF-8", key);
		json_object_set_new(d->directives, key, v);
	}
	return 0;
done:
	d->dir_done = 1;
	return 0;
}

/* One physical line without its line ending ("\r\n" trimmed as Go's
 * TrimRight(s, "\r\n")). */
size_t
df_trim_newline(const char *s, size_t n)
{
	while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == '\r'))
		n--;
	return n;
}

size_t
df_lead_space(const char *s, size_t n)
{
	size_t i = 0, k;

	while (i < n && (k = df_space_len(s + i, n - i)) > 0)
		i += k;
	return i;
}

int
df_is_comment(const char *s, size_t n)
{
	size_t i;

	n = df_trim_newline(s, n);
	i = df_lead_space(s, n);
	return i < n && s[i] == '#';
}

/* BuildKit's continuation regex `([^E])E[ \t]*$|^E[ \t]*$`: if the line
 * ends with an escape (not itself escaped) and blanks, drop them. */
int
df_trim_continuation(const char *s, size_t *n, int esc)
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
void
df_raw_words(const char *s, size_t n, void (*cb)(void *, const char *, size_t), void *arg)
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
			} else if (c == '<' && i + 1 < n && s[i + 1] == '<') {
				/* processPossibleHeredoc: blanks after << stay in
				 * the word ("<<  EOF" is one word) */
				i += 2;
				while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == '\r'))
					i++;
			} else
				i++;
		}
		cb(arg, s + st, i - st);
	}
}

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

/* BuildKit's ParseHeredoc on one word: 1 with *name (malloc'd) when the
 * word is a heredoc marker, 0 when it is not, -1 out of memory. */
static int
heredoc_marker(const char *w, size_t n, char **name, int *chomp, int *expand,
    long *fd)
{
	size_t i = 0, ds;
	int words, removed;

	*name = NULL;
	*chomp = 0;
	*fd = 0;
	/* ^(\d*)<<(-?)\s*([^<]*)$ */
	while (i < n && isdigit((unsigned char)w[i]))
		i++;
	ds = i;
	if (i + 2 > n || w[i] != '<' || w[i + 1] != '<')
		return 0;
	i += 2;
	if (i < n && w[i] == '-') {
		*chomp = 1;
		i++;
	}
	while (i < n && (w[i] == ' ' || w[i] == '\t' || w[i] == '\n' || w[i] == '\f' ||
	    w[i] == '\r'))
		i++;	/* the \s* of reHeredoc */
	if (i >= n || memchr(w + i, '<', n - i) != NULL)
		return 0;
	for (size_t k = 0; k < ds && *fd < 100000; k++)
		*fd = *fd * 10 + (w[k] - '0');
	*name = hd_unquote(w + i, n - i, &words, &removed);
	if (*name == NULL || words != 1 || (*name)[0] == '\0') {
		free(*name);
		*name = NULL;
		return 0;
	}
	*expand = removed == 0;
	return 1;
}

int
df_is_heredoc_word(const char *w, size_t n)
{
	char *name;
	int chomp, expand, r;
	long fd;

	r = heredoc_marker(w, n, &name, &chomp, &expand, &fd);
	free(name);
	return r == 1;
}

void
df_hd_word(void *arg, const char *w, size_t n)
{
	struct hd_scan *h = arg;
	int chomp, expand;
	long fd;
	char *name;
	struct heredoc *v;

	if (h->err || heredoc_marker(w, n, &name, &chomp, &expand, &fd) != 1)
		return;
	if (h->n >= DF_MAX_HEREDOCS) {
		free(name);
		h->err = 2;
		return;
	}
	v = realloc(h->v, (h->n + 1) * sizeof(*v));
	if (v == NULL) {
		free(name);
		h->err = 1;
		return;
	}
	h->v = v;
	v[h->n] = (struct heredoc){ .name = name, .expand = expand,
	    .chomp = chomp, .fd = fd };
	h->n++;
}

void
df_heredocs_free(struct heredoc *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(v[i].name);
		free(v[i].content.s);
	}
	free(v);
}
/* The next physical line at c (with its line ending): 1, or 0 at the end
 * of the text; -1 for a line longer than BuildKit reads. */
static int
next_line(struct df *d, struct df_cur *c, const char **s, size_t *n)
{
	const char *end = d->text + d->len, *nl;
	size_t l, content;

	if (c->p >= end)
		return 0;
	nl = memchr(c->p, '\n', (size_t)(end - c->p));
	l = nl ? (size_t)(nl - c->p) + 1 : (size_t)(end - c->p);
	content = nl ? l - 1 : l;
	if (content > DF_MAX_LINE)
		return df_fail(d, c->line + 1,
		    "dockerfile line greater than max allowed size of %u", DF_MAX_LINE);
	*s = c->p;
	*n = l;
	c->p += l;
	c->line++;
	return 1;
}

/* Read the bodies of the heredocs the line declares and attach them. */
static int
read_heredocs(struct df *d, struct df_cur *c, struct df_item *it)
{
	struct hd_scan h = { .d = d };
	json_t *arr = NULL, *sub;
	int rc = -1, r;

	df_raw_words(it->text.s, it->text.n, df_hd_word, &h);
	if (h.err == 2) {
		df_fail(d, it->line0, "more than %u heredocs in one instruction", DF_MAX_HEREDOCS);
		goto out;
	}
	if (h.err) {
		df_oom(d);
		goto out;
	}
	if (h.n == 0)
		return 0;
	if ((arr = json_array()) == NULL) {
		df_oom(d);
		goto out;
	}
	for (size_t j = 0; j < h.n; j++) {
		struct heredoc *hd = &h.v[j];
		size_t nl = strlen(hd->name);
		int done = 0;
		json_t *o;

		for (;;) {
			const char *t;
			size_t n, tn, off = 0;

			if ((r = next_line(d, c, &t, &n)) < 0)
				goto out;
			if (r == 0)
				break;
			tn = df_trim_newline(t, n);
			if (hd->chomp)
				while (off < tn && t[off] == '\t')
					off++;
			if (tn - off == nl && memcmp(t + off, hd->name, nl) == 0) {
				done = 1;
				break;
			}
			if (hd->chomp) {
				size_t lt = 0;

				while (lt < n && t[lt] == '\t')
					lt++;
				hypr_strbuf_addn(&hd->content, t + lt, n - lt);
			} else
				hypr_strbuf_addn(&hd->content, t, n);
		}
		if (!done) {
			df_fail(d, it->line0, "unterminated heredoc %s (started here, file ends at line %ld)",
			    hd->name, c->line);
			goto out;
		}
		if (hd->content.oom) {
			df_oom(d);
			goto out;
		}
		o = json_object();
		if (o == NULL) {
			df_oom(d);
			goto out;
		}
		json_array_append_new(arr, o);
		if (df_set_str(d, o, "name", hd->name, nl) < 0 ||
		    df_set_str(d, o, "content", hypr_strbuf_str(&hd->content), hd->content.n) < 0)
			goto out;
		json_object_set_new(o, "expand", json_boolean(hd->expand));
		json_object_set_new(o, "strip_tabs", json_boolean(hd->chomp));
		if (hd->fd)
			json_object_set_new(o, "fd", json_integer(hd->fd));
		/* the body is in the JSON now: free it before the next one */
		free(hd->content.s);
		hd->content = (struct hypr_strbuf){ 0 };
	}
	sub = json_object_get(it->node, "onbuild");
	json_object_set_new(sub ? sub : it->node, "heredocs", arr);
	arr = NULL;
	rc = 0;
out:
	json_decref(arr);
	df_heredocs_free(h.v, h.n);
	return rc;
}

int
df_read_node(struct df *d, struct df_cur *c, struct df_item *it)
{
	const char *s;
	size_t n, k;
	int cont, r;

	it->node = NULL;
	it->empty_cont = 0;
	for (;;) {
		const char *p0 = c->p;

		if ((r = next_line(d, c, &s, &n)) <= 0)
			return r;
		if (p0 == d->text && n >= 3 && memcmp(s, "\xef\xbb\xbf", 3) == 0) {
			s += 3;
			n -= 3;
		}
		n = df_trim_newline(s, n);
		k = df_lead_space(s, n);
		s += k;
		n -= k;
		if (df_directive(d, s, n, c->line) < 0)
			return -1;
		if (n > 0 && s[0] == '#')
			n = 0;
		cont = df_trim_continuation(s, &n, d->esc);
		if (cont || n > 0) {
			it->off = (size_t)(p0 - d->text);
			it->line0 = c->line;
			break;
		}
	}
	hypr_strbuf_reset(&it->text);
	hypr_strbuf_addn(&it->text, s, n);
	while (cont) {
		const char *t;
		size_t tn;

		if ((r = next_line(d, c, &t, &tn)) < 0)
			return -1;
		if (r == 0)
			break;
		tn = df_trim_newline(t, tn);
		if (df_is_comment(t, tn))
			continue;
		if (df_lead_space(t, tn) == tn) {
			it->empty_cont = 1;
			continue;
		}
		cont = df_trim_continuation(t, &tn, d->esc);
		hypr_strbuf_addn(&it->text, t, tn);
	}
	if (it->text.oom)
		return df_oom(d);
	d->errline = it->line0;
	if (df_parse_node(d, hypr_strbuf_str(&it->text), it->text.n, &it->node, 0) < 0)
		return -1;
	if (df_can_heredoc(it->node) &&
	    memmem(hypr_strbuf_str(&it->text), it->text.n, "<<", 2) != NULL &&
	    read_heredocs(d, c, it) < 0) {
		json_decref(it->node);
		it->node = NULL;
		return -1;
	}
	it->line1 = c->line;
	json_object_set_new(it->node, "line", df_jrange(it->line0, it->line1));
	return 1;
}
