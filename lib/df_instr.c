/* df_instr.c - phase 2 of the Dockerfile parser (see dockerfile.c): one
 * logical line into an instruction node, as BuildKit's line parsers:
 * keyword, flags, arguments and form. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "df.h"
#include "stream.h"

static const char *const known_ops[] = {
	"ADD", "ARG", "CMD", "COPY", "ENTRYPOINT", "ENV", "EXPOSE", "FROM",
	"HEALTHCHECK", "LABEL", "MAINTAINER", "ONBUILD", "RUN", "SHELL",
	"STOPSIGNAL", "USER", "VOLUME", "WORKDIR", NULL
};

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

		while (p < end && df_space_len(p, (size_t)(end - p)))
			p += df_space_len(p, (size_t)(end - p));
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
			if (df_space_len(p, (size_t)(end - p)))
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
			if (df_append_str(d, flag_args, hypr_strbuf_str(&w), w.n) < 0) {
				*err = 1;
				break;
			}
	}
	free(w.s);
	if (w.oom)
		*err = df_oom(d);
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

		while (q < end && !df_is_ws((unsigned char)*q))
			q++;
		if (df_append_str(d, arr, p, (size_t)(q - p)) < 0)
			return -1;
		if (q >= end)
			return 0;
		while (q < end && df_is_ws((unsigned char)*q))
			q++;
		p = q;
		if (p >= end) {
			/* a trailing separator gives a final empty word in Go */
			return df_append_str(d, arr, "", 0);
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

	while (s < end && df_space_len(s, (size_t)(end - s)))
		s += df_space_len(s, (size_t)(end - s));
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
			return df_fail(d, d->errline,
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
		size_t k = p < end ? df_space_len(p, (size_t)(end - p)) : 0;
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
				rc |= df_append_str(d, arr, hypr_strbuf_str(&w), w.n);
			break;
		}
		if (!quote) {
			if (k) {
				if (blank_ok || w.n > 0)
					rc |= df_append_str(d, arr, hypr_strbuf_str(&w), w.n);
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
		return df_oom(d);
	return rc < 0 ? -1 : 0;
}

static json_t *
new_pair(struct df *d, const char *k, size_t kn, const char *v, size_t vn, int has_v)
{
	json_t *p = json_object();
	json_t *jk = df_jstr(d, k, kn), *jv = has_v ? df_jstr(d, v, vn) : json_null();

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

		while (q < end && !df_is_ws((unsigned char)*q))
			q++;
		v = q;
		while (v < end && df_is_ws((unsigned char)*v))
			v++;
		if (q >= end) {
			df_fail(d, d->errline, "%s must have two arguments", op);
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
			df_fail(d, d->errline, "Syntax error - can't find = in \"%s\". Must be of the form: name=value", ws);
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
	return df_append_str(d, args, s, (size_t)(end - s));
}

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
	if (df_append_str(d, args, s, (size_t)(sep - s)) < 0) {
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

/* Flag words into the flags object: the repeatable ones (BuildKit's
 * AddStrings: mount, device, exclude) become arrays, for the others the
 * last one wins. Unknown, repeated or malformed flags are the instruction
 * layer's business (df_stage.c), as in BuildKit. */
static int
flags_object(struct df *d, json_t *flag_args, json_t *flags)
{
	size_t i;
	json_t *f;

	json_array_foreach(flag_args, i, f) {
		const char *s = json_string_value(f) + 2, *eq = strchr(s, '=');
		size_t nl = eq ? (size_t)(eq - s) : strlen(s);
		char *name = strndup(s, nl);
		json_t *v;

		if (name == NULL)
			return df_oom(d);
		v = eq ? df_jcstr(d, eq + 1) : json_string("true");
		if (v == NULL) {
			free(name);
			return -1;
		}
		if (strcmp(name, "mount") == 0 || strcmp(name, "exclude") == 0 ||
		    strcmp(name, "device") == 0) {
			json_t *a = json_object_get(flags, name);

			if (a == NULL) {
				a = json_array();
				json_object_set_new(flags, name, a);
			}
			json_array_append_new(a, v);
		} else
			json_object_set_new(flags, name, v);
		free(name);
	}
	return 0;
}

int
df_known_op(const char *op)
{
	for (size_t i = 0; known_ops[i]; i++)
		if (strcmp(op, known_ops[i]) == 0)
			return 1;
	return 0;
}

const char *
df_suggest_op(const char *op)
{
	const char *best = NULL;
	size_t bd = 99;

	for (size_t i = 0; known_ops[i]; i++) {
		size_t dd = df_levenshtein(op, known_ops[i]);

		if (dd < bd) {
			bd = dd;
			best = known_ops[i];
		}
	}
	return best != NULL && bd <= (strlen(op) > 4 ? 2u : 1u) ? best : NULL;
}

int
df_parse_node(struct df *d, const char *line, size_t n, json_t **out, int nested)
{
	const char *b = line, *e = line + n, *ce, *rest, *re;
	char opbuf[16], *op = opbuf;
	size_t opn;
	json_t *node = json_object(), *flag_args = json_array(), *flags = json_object();
	int err, r = 0;

	*out = NULL;
	df_trim_space(&b, &e);
	ce = b;
	while (ce < e && !df_is_ws((unsigned char)*ce))
		ce++;
	opn = (size_t)(ce - b);
	/* any word is an instruction here; the instruction layer refuses
	 * the unknown ones (BuildKit's parseIgnore) */
	if (opn >= sizeof(opbuf) && (op = malloc(opn + 1)) == NULL) {
		json_decref(node);
		json_decref(flag_args);
		json_decref(flags);
		return df_oom(d);
	}
	for (size_t i = 0; i < opn; i++)
		op[i] = (char)toupper((unsigned char)b[i]);
	op[opn] = '\0';
	rest = ce;
	while (rest < e && df_is_ws((unsigned char)*rest))
		rest++;
	json_object_set_new(node, "op", json_null());
	json_object_set_new(node, "original", json_null());
	json_object_set_new(node, "flags", flags);
	json_object_set_new(node, "flag_args", flag_args);
	if (df_set_str(d, node, "op", op, opn) < 0 ||
	    df_set_str(d, node, "original", b, (size_t)(e - b)) < 0)
		goto fail;
	if (rest < e) {
		rest = extract_flags(d, rest, e, flag_args, &err);
		if (err)
			goto fail;
	}
	re = e;
	df_trim_space(&rest, &re);
	if (flags_object(d, flag_args, flags) < 0)
		goto fail;

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
			if (df_append_str(d, a, rest, (size_t)(re - rest)) < 0)
				goto fail;
			/* a trigger of a trigger is refused by the instruction
			 * layer; it is not parsed, so nesting stays one deep */
			if (!nested) {
				if (df_parse_node(d, rest, (size_t)(re - rest), &sub, 1) < 0)
					goto fail;
				json_object_del(sub, "original");
				json_object_set_new(node, "onbuild", sub);
			}
		}
	} else {	/* MAINTAINER STOPSIGNAL USER WORKDIR: one string */
		json_t *a = json_array();

		json_object_set_new(node, "args", a);
		if (rest < re)
			r = df_append_str(d, a, rest, (size_t)(re - rest));
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
	if (op != opbuf)
		free(op);
	return 0;
fail:
	if (op != opbuf)
		free(op);
	json_decref(node);
	return -1;
}

/* Does the node take heredocs (RUN, COPY, ADD in shell form, also under
 * ONBUILD)? */
int
df_can_heredoc(json_t *node)
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
