/* template.c - Go text/template's subset for --format (see template.h).
 * A recursive-descent parser makes a tree of nodes; exec walks it over
 * jansson values, each evaluation returning a new reference (NULL = Go's
 * nil: a missing map key). One file over 1000 lines because the language
 * has one owner: its parser, its functions and its evaluator share the
 * node and value types, which stay private here (the fuzz target reaches
 * all three through the two entry points). */
#include "template.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

enum node_type { N_TEXT, N_ACTION, N_IF, N_RANGE, N_WITH };
enum op_type { O_DOT, O_FIELD, O_VAR, O_STR, O_NUM, O_BOOL, O_NIL, O_FUNC, O_PIPE };

struct pipe;

struct operand {
	enum op_type t;
	char *s;		/* string literal, variable ("$x", "$"), function */
	long long num;
	struct pipe *pipe;	/* O_PIPE */
	char **fields;		/* the chain after the base: .A.B */
	size_t nf;
	int col;
};

struct cmd {
	struct operand *args;
	size_t n;
};

struct pipe {
	char *vars[2];		/* range $k, $v := ... */
	size_t nvars;
	struct cmd *cmds;
	size_t n;
};

struct node {
	enum node_type t;
	char *text;		/* N_TEXT */
	size_t len;
	struct pipe *pipe;
	struct node *list, *elselist;
	struct node *next;
};

struct hypr_tmpl {
	struct node *root;
};

/* ---- parsing ---- */

struct parser {
	const char *src, *p;
	int depth;
	int trim_next;		/* the last action ended with "-}}" */
	struct hypr_err *e;
};

enum term { T_EOF, T_END, T_ELSE, T_ELSE_IF };

typedef json_t *(*tmpl_fn)(json_t **a, size_t n, struct hypr_err *e);

struct fn_def {
	const char *name;
	tmpl_fn fn;
	int min, max;		/* arguments; max -1: any */
};

static const struct fn_def *find_fn(const char *name);

static void free_pipe(struct pipe *p);
static void free_nodes(struct node *n);
static int parse_pipe(struct parser *ps, int decl, char closer, struct pipe **out);
static int parse_list(struct parser *ps, struct node **out, enum term *term);

static int
col(const struct parser *ps)
{
	return (int)(ps->p - ps->src) + 1;
}

static int
perr(struct parser *ps, const char *what)
{
	if (ps->e->code == 0)
		hypr_err_set(ps->e, HYPR_EXIT_USAGE, "col %d: %s", col(ps), what);
	return -1;
}

static int
is_ident(int c)
{
	return isalnum(c) || c == '_' || (c & 0x80);
}

static void
skip_space(struct parser *ps)
{
	while (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r')
		ps->p++;
}

/* At "}}" or " -}}"? Consumes it and notes the trim. */
static int
at_close(struct parser *ps)
{
	const char *q = ps->p;

	if (q[0] == '-' && q > ps->src && isspace((unsigned char)q[-1]) && q[1] == '}' && q[2] == '}') {
		ps->p += 3;
		ps->trim_next = 1;
		return 1;
	}
	if (q[0] == '}' && q[1] == '}') {
		ps->p += 2;
		ps->trim_next = 0;
		return 1;
	}
	return 0;
}

static char *
xstrndup(struct parser *ps, const char *s, size_t n)
{
	char *r = strndup(s, n);

	if (r == NULL)
		hypr_err_set(ps->e, HYPR_EXIT_SYSTEM, "out of memory");
	return r;
}

static void *
xgrow(struct parser *ps, void *v, size_t n, size_t size)
{
	void *r = realloc(v, (n + 1) * size);

	if (r == NULL) {
		hypr_err_set(ps->e, HYPR_EXIT_SYSTEM, "out of memory");
		return NULL;
	}
	memset((char *)r + n * size, 0, size);
	return r;
}

/* .A.B after a base: appended to o->fields */
static int
parse_fields(struct parser *ps, struct operand *o)
{
	while (ps->p[0] == '.' && is_ident((unsigned char)ps->p[1])) {
		const char *s = ++ps->p;
		char **nf;

		while (is_ident((unsigned char)*ps->p))
			ps->p++;
		if ((nf = xgrow(ps, o->fields, o->nf, sizeof(*nf))) == NULL)
			return -1;
		o->fields = nf;
		if ((o->fields[o->nf] = xstrndup(ps, s, (size_t)(ps->p - s))) == NULL)
			return -1;
		o->nf++;
	}
	if (ps->p[0] == '.' && ps->p[1] && !isspace((unsigned char)ps->p[1]) && ps->p[1] != '}' &&
	    ps->p[1] != ')' && ps->p[1] != '|')
		return perr(ps, "bad field name");
	return 0;
}

static int
parse_string(struct parser *ps, struct operand *o)
{
	struct hypr_strbuf b = { 0 };
	char q = *ps->p++;

	for (;;) {
		char c = *ps->p;

		if (c == '\0' || (c == '\n' && q == '"')) {
			free(b.s);
			return perr(ps, "unterminated string");
		}
		ps->p++;
		if (c == q)
			break;
		if (c == '\\' && q == '"') {
			c = *ps->p++;
			switch (c) {
			case 'n': c = '\n'; break;
			case 't': c = '\t'; break;
			case 'r': c = '\r'; break;
			case '\\': case '"': case '\'': break;
			default:
				free(b.s);
				ps->p--;
				return perr(ps, "unsupported escape in string");
			}
		}
		hypr_strbuf_addc(&b, c);
	}
	o->s = hypr_strbuf_take(&b);
	if (o->s == NULL)
		return hypr_err_set(ps->e, HYPR_EXIT_SYSTEM, "out of memory");
	o->t = O_STR;
	return 0;
}

static int
parse_operand(struct parser *ps, struct operand *o)
{
	const char *s = ps->p;

	o->col = col(ps);
	if (*s == '.' && !is_ident((unsigned char)s[1])) {
		o->t = O_DOT;
		ps->p++;
		return 0;
	}
	if (*s == '.') {
		o->t = O_FIELD;
		return parse_fields(ps, o);
	}
	if (*s == '$') {
		ps->p++;
		while (is_ident((unsigned char)*ps->p))
			ps->p++;
		o->t = O_VAR;
		if ((o->s = xstrndup(ps, s, (size_t)(ps->p - s))) == NULL)
			return -1;
		return parse_fields(ps, o);
	}
	if (*s == '"' || *s == '`')
		return parse_string(ps, o);
	if (isdigit((unsigned char)*s) || (*s == '-' && isdigit((unsigned char)s[1]))) {
		char *end;

		o->t = O_NUM;
		o->num = strtoll(s, &end, 10);
		if (is_ident((unsigned char)*end) || *end == '.')
			return perr(ps, "bad number");
		ps->p = end;
		return 0;
	}
	if (*s == '(') {
		if (++ps->depth > HYPR_TMPL_MAX_DEPTH)
			return perr(ps, "nested too deep");
		ps->p++;
		o->t = O_PIPE;
		if (parse_pipe(ps, 0, ')', &o->pipe) < 0)
			return -1;
		ps->depth--;
		return parse_fields(ps, o);
	}
	if (isalpha((unsigned char)*s) || *s == '_') {
		while (is_ident((unsigned char)*ps->p))
			ps->p++;
		if ((o->s = xstrndup(ps, s, (size_t)(ps->p - s))) == NULL)
			return -1;
		if (!strcmp(o->s, "true") || !strcmp(o->s, "false")) {
			o->t = O_BOOL;
			o->num = o->s[0] == 't';
		} else if (!strcmp(o->s, "nil")) {
			o->t = O_NIL;
		} else if (find_fn(o->s)) {
			o->t = O_FUNC;
		} else {
			char m[160];

			ps->p = s;
			snprintf(m, sizeof(m), "function \"%.100s\" not defined", o->s);
			return perr(ps, m);
		}
		return 0;
	}
	return perr(ps, "unexpected character in action");
}

/* Commands separated by '|' up to closer ('}' for "}}", or ')'). With decl,
 * "$v :=" or "$k, $v :=" may come first. */
static int
parse_pipe(struct parser *ps, int decl, char closer, struct pipe **out)
{
	struct pipe *p = calloc(1, sizeof(*p));

	*out = p;
	if (p == NULL)
		return hypr_err_set(ps->e, HYPR_EXIT_SYSTEM, "out of memory");
	skip_space(ps);
	if (decl && *ps->p == '$') {
		const char *save = ps->p;

		for (;;) {
			const char *s = ps->p;

			if (*ps->p != '$')
				break;
			ps->p++;
			while (is_ident((unsigned char)*ps->p))
				ps->p++;
			if ((p->vars[p->nvars] = xstrndup(ps, s, (size_t)(ps->p - s))) == NULL)
				return -1;
			p->nvars++;
			skip_space(ps);
			if (*ps->p == ',' && p->nvars == 1) {
				ps->p++;
				skip_space(ps);
				continue;
			}
			break;
		}
		if (ps->p[0] == ':' && ps->p[1] == '=') {
			ps->p += 2;
			skip_space(ps);
		} else {
			/* not a declaration: $x is an operand */
			for (size_t i = 0; i < p->nvars; i++) {
				free(p->vars[i]);
				p->vars[i] = NULL;
			}
			p->nvars = 0;
			ps->p = save;
		}
	}
	for (;;) {
		struct cmd *c;
		struct cmd *nc = xgrow(ps, p->cmds, p->n, sizeof(*nc));

		if (nc == NULL)
			return -1;
		p->cmds = nc;
		c = &p->cmds[p->n++];
		for (;;) {
			struct operand *na;

			skip_space(ps);
			if (*ps->p == '|' || (closer == ')' && *ps->p == ')') ||
			    (closer == '}' && (*ps->p == '}' || (ps->p[0] == '-' &&
			    ps->p[1] == '}'))) || *ps->p == '\0')
				break;
			if ((na = xgrow(ps, c->args, c->n, sizeof(*na))) == NULL)
				return -1;
			c->args = na;
			if (parse_operand(ps, &c->args[c->n++]) < 0)
				return -1;
			/* operands are separated by spaces (or end at a closer) */
			if (*ps->p && !isspace((unsigned char)*ps->p) && *ps->p != '|' &&
			    *ps->p != ')' && *ps->p != '}' && *ps->p != '-')
				return perr(ps, "unexpected character after operand");
		}
		if (c->n == 0)
			return perr(ps, "missing value for command");
		if (*ps->p == '|') {
			ps->p++;
			continue;
		}
		break;
	}
	if (closer == ')') {
		if (*ps->p != ')')
			return perr(ps, "unclosed left paren");
		ps->p++;
		return 0;
	}
	if (!at_close(ps))
		return perr(ps, "unclosed action");
	return 0;
}

/* A keyword at the action's start: "if" followed by a space, etc. */
static int
keyword(struct parser *ps, const char *kw)
{
	size_t n = strlen(kw);

	if (strncmp(ps->p, kw, n) != 0 || is_ident((unsigned char)ps->p[n]))
		return 0;
	ps->p += n;
	skip_space(ps);
	return 1;
}

static int
expect_close(struct parser *ps)
{
	skip_space(ps);
	if (!at_close(ps))
		return perr(ps, "unexpected text before }}");
	return 0;
}

/* if/range/with: the pipeline, the list, an optional else list. */
static int
parse_block(struct parser *ps, struct node *n)
{
	enum term term;

	if (++ps->depth > HYPR_TMPL_MAX_DEPTH)
		return perr(ps, "nested too deep");
	if (parse_pipe(ps, n->t == N_RANGE, '}', &n->pipe) < 0)
		return -1;
	if (parse_list(ps, &n->list, &term) < 0)
		return -1;
	if (term == T_ELSE) {
		if (parse_list(ps, &n->elselist, &term) < 0)
			return -1;
		if (term != T_END)
			return perr(ps, term == T_EOF ? "missing {{end}}" : "unexpected {{else}}");
	} else if (term == T_ELSE_IF) {
		/* {{else if X}}: an if node alone in the else list, sharing our end */
		if ((n->elselist = calloc(1, sizeof(*n->elselist))) == NULL)
			return hypr_err_set(ps->e, HYPR_EXIT_SYSTEM, "out of memory");
		n->elselist->t = N_IF;
		if (parse_block(ps, n->elselist) < 0)	/* a level deeper: bounded */
			return -1;
	} else if (term != T_END) {
		return perr(ps, "missing {{end}}");
	}
	ps->depth--;
	return 0;
}

/* Text with \t and \n escapes; trims as {{- and -}} ask. */
static int
add_text(struct parser *ps, struct node ***tail, const char *s, size_t n, int trim_right)
{
	struct node *t;
	char *d;
	size_t k = 0;

	if (ps->trim_next) {
		while (n && isspace((unsigned char)*s)) {
			s++;
			n--;
		}
		ps->trim_next = 0;
	}
	if (trim_right)
		while (n && isspace((unsigned char)s[n - 1]))
			n--;
	if (n == 0)
		return 0;
	if ((t = calloc(1, sizeof(*t))) == NULL || (d = malloc(n + 1)) == NULL) {
		free(t);
		return hypr_err_set(ps->e, HYPR_EXIT_SYSTEM, "out of memory");
	}
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '\\' && i + 1 < n && (s[i + 1] == 't' || s[i + 1] == 'n')) {
			d[k++] = s[i + 1] == 't' ? '\t' : '\n';
			i++;
		} else {
			d[k++] = s[i];
		}
	}
	d[k] = '\0';
	t->t = N_TEXT;
	t->text = d;
	t->len = k;
	**tail = t;
	*tail = &t->next;
	return 0;
}

static int
parse_list(struct parser *ps, struct node **out, enum term *term)
{
	struct node **tail = out;

	for (;;) {
		const char *a = strstr(ps->p, "{{");
		int trim = a && a[2] == '-' && (a[3] == ' ' || a[3] == '\t' || a[3] == '\n' ||
		    a[3] == '\r');
		struct node *n;

		if (add_text(ps, &tail, ps->p, a ? (size_t)(a - ps->p) : strlen(ps->p), trim) < 0)
			return -1;
		if (a == NULL) {
			ps->p += strlen(ps->p);
			*term = T_EOF;
			return 0;
		}
		ps->p = a + 2 + trim;
		skip_space(ps);
		if (ps->p[0] == '/' && ps->p[1] == '*') {
			const char *c = strstr(ps->p + 2, "*/");

			if (c == NULL)
				return perr(ps, "unclosed comment");
			ps->p = c + 2;
			if (expect_close(ps) < 0)
				return -1;
			continue;
		}
		if (keyword(ps, "end")) {
			*term = T_END;
			return expect_close(ps);
		}
		if (keyword(ps, "else")) {
			if (keyword(ps, "if")) {
				*term = T_ELSE_IF;
				return 0;
			}
			*term = T_ELSE;
			return expect_close(ps);
		}
		if ((n = calloc(1, sizeof(*n))) == NULL)
			return hypr_err_set(ps->e, HYPR_EXIT_SYSTEM, "out of memory");
		*tail = n;
		tail = &n->next;
		if (keyword(ps, "if"))
			n->t = N_IF;
		else if (keyword(ps, "range"))
			n->t = N_RANGE;
		else if (keyword(ps, "with"))
			n->t = N_WITH;
		else if (keyword(ps, "define") || keyword(ps, "template") ||
		    keyword(ps, "block") || keyword(ps, "break") || keyword(ps, "continue"))
			return perr(ps, "unsupported action");
		else
			n->t = N_ACTION;
		if (n->t == N_ACTION) {
			if (parse_pipe(ps, 0, '}', &n->pipe) < 0)
				return -1;
		} else if (parse_block(ps, n) < 0) {
			return -1;
		}
	}
}

int
hypr_tmpl_parse(const char *src, struct hypr_tmpl **t, struct hypr_err *e)
{
	struct parser ps = { .src = src, .p = src, .e = e };
	enum term term;

	*t = NULL;
	if (strlen(src) > HYPR_TMPL_MAX_LEN)
		return hypr_err_set(e, HYPR_EXIT_USAGE, "template over %d bytes", HYPR_TMPL_MAX_LEN);
	if ((*t = calloc(1, sizeof(**t))) == NULL)
		return hypr_err_set(e, HYPR_EXIT_SYSTEM, "out of memory");
	if (parse_list(&ps, &(*t)->root, &term) < 0 || (term != T_EOF &&
	    perr(&ps, term == T_END ? "unexpected {{end}}" : "unexpected {{else}}") < 0)) {
		hypr_tmpl_free(*t);
		*t = NULL;
		return -1;
	}
	return 0;
}

static void
free_operand(struct operand *o)
{
	free(o->s);
	free_pipe(o->pipe);
	for (size_t i = 0; i < o->nf; i++)
		free(o->fields[i]);
	free(o->fields);
}

static void
free_pipe(struct pipe *p)
{
	if (p == NULL)
		return;
	for (size_t i = 0; i < p->nvars; i++)
		free(p->vars[i]);
	for (size_t i = 0; i < p->n; i++) {
		for (size_t k = 0; k < p->cmds[i].n; k++)
			free_operand(&p->cmds[i].args[k]);
		free(p->cmds[i].args);
	}
	free(p->cmds);
	free(p);
}

static void
free_nodes(struct node *n)
{
	while (n) {
		struct node *next = n->next;

		free(n->text);
		free_pipe(n->pipe);
		free_nodes(n->list);
		free_nodes(n->elselist);
		free(n);
		n = next;
	}
}

void
hypr_tmpl_free(struct hypr_tmpl *t)
{
	if (t == NULL)
		return;
	free_nodes(t->root);
	free(t);
}

/* ---- values ---- */

static const char *
kind(const json_t *v)
{
	if (v == NULL || json_is_null(v))
		return "nil";
	if (json_is_string(v))
		return "string";
	if (json_is_integer(v) || json_is_real(v))
		return "number";
	if (json_is_boolean(v))
		return "bool";
	if (json_is_array(v))
		return "array";
	return "object";
}

static int
truth(const json_t *v)
{
	if (v == NULL || json_is_null(v) || json_is_false(v))
		return 0;
	if (json_is_string(v))
		return json_string_length(v) > 0;
	if (json_is_integer(v))
		return json_integer_value(v) != 0;
	if (json_is_real(v))
		return json_real_value(v) != 0;
	if (json_is_array(v))
		return json_array_size(v) > 0;
	if (json_is_object(v))
		return json_object_size(v) > 0;
	return 1;
}

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* An object's keys, sorted (Go prints and ranges over maps that way). */
static const char **
sorted_keys(json_t *o, size_t *n)
{
	const char **k = malloc((json_object_size(o) + 1) * sizeof(*k));
	const char *key;
	json_t *v;

	*n = 0;
	if (k == NULL)
		return NULL;
	json_object_foreach(o, key, v)
		k[(*n)++] = key;
	qsort(k, *n, sizeof(*k), cmp_str);
	return k;
}

/* Go's fmt %v of a value. */
static void
print_value(struct hypr_strbuf *b, json_t *v, int depth)
{
	if (v == NULL || json_is_null(v))
		return;
	if (json_is_string(v)) {
		hypr_strbuf_addn(b, json_string_value(v), json_string_length(v));
	} else if (json_is_true(v)) {
		hypr_strbuf_add(b, "true");
	} else if (json_is_false(v)) {
		hypr_strbuf_add(b, "false");
	} else if (json_is_integer(v) || json_is_real(v)) {
		char *s = json_dumps(v, JSON_ENCODE_ANY);

		hypr_strbuf_add(b, s ? s : "");
		free(s);
	} else if (depth > 64) {
		hypr_strbuf_add(b, "...");
	} else if (json_is_array(v)) {
		size_t i;
		json_t *x;

		hypr_strbuf_addc(b, '[');
		json_array_foreach(v, i, x) {
			if (i)
				hypr_strbuf_addc(b, ' ');
			print_value(b, x, depth + 1);
		}
		hypr_strbuf_addc(b, ']');
	} else {
		size_t n;
		const char **k = sorted_keys(v, &n);

		if (k == NULL) {
			b->oom = 1;
			return;
		}
		hypr_strbuf_add(b, "map[");
		for (size_t i = 0; i < n; i++) {
			if (i)
				hypr_strbuf_addc(b, ' ');
			json_t *x = json_object_get(v, k[i]);

			hypr_strbuf_add(b, k[i]);
			hypr_strbuf_addc(b, ':');
			/* an empty object in a map is docker's struct{}
			 * (ExposedPorts, Volumes): Go prints {} */
			if (json_is_object(x) && !json_object_size(x))
				hypr_strbuf_add(b, "{}");
			else
				print_value(b, x, depth + 1);
		}
		hypr_strbuf_addc(b, ']');
		free(k);
	}
}

static json_t *
string_of(json_t *v)
{
	struct hypr_strbuf b = { 0 };
	json_t *r;

	print_value(&b, v, 0);
	r = json_stringn_nocheck(hypr_strbuf_str(&b), b.n);
	free(b.s);
	return r;
}

/* ---- functions ---- */

static json_t *
fn_json(json_t **a, size_t n, struct hypr_err *e)
{
	char *s;
	json_t *r;

	(void)n;
	if (a[0] == NULL)
		return json_string_nocheck("null");
	if ((s = json_dumps(a[0], JSON_COMPACT | JSON_ENCODE_ANY)) == NULL) {
		hypr_err_set(e, HYPR_EXIT_USAGE, "json: cannot encode the value");
		return NULL;
	}
	r = json_string_nocheck(s);
	free(s);
	return r;
}

static json_t *
fn_index(json_t **a, size_t n, struct hypr_err *e)
{
	json_t *v = a[0];

	for (size_t i = 1; i < n; i++) {
		if (v == NULL || json_is_null(v))
			return json_null();	/* a nil map: every key is empty */
		if (json_is_object(v) && json_is_string(a[i])) {
			v = json_object_get(v, json_string_value(a[i]));
		} else if (json_is_array(v) && json_is_integer(a[i])) {
			json_int_t k = json_integer_value(a[i]);

			if (k < 0 || (size_t)k >= json_array_size(v)) {
				hypr_err_set(e, HYPR_EXIT_USAGE, "index: index out of range: %lld",
				    (long long)k);
				return NULL;
			}
			v = json_array_get(v, (size_t)k);
		} else {
			hypr_err_set(e, HYPR_EXIT_USAGE, "index: cannot index %s with %s",
			    kind(v), kind(a[i]));
			return NULL;
		}
	}
	return v ? json_incref(v) : json_null();
}

static json_t *
fn_join(json_t **a, size_t n, struct hypr_err *e)
{
	struct hypr_strbuf b = { 0 };
	json_t *r, *x;
	size_t i;

	(void)n;
	if (!json_is_string(a[1])) {
		hypr_err_set(e, HYPR_EXIT_USAGE, "join: the separator is a %s, not a string",
		    kind(a[1]));
		return NULL;
	}
	if (a[0] == NULL || json_is_null(a[0]))
		return json_string_nocheck("");
	if (!json_is_array(a[0])) {
		hypr_err_set(e, HYPR_EXIT_USAGE, "join: a %s is not an array", kind(a[0]));
		return NULL;
	}
	json_array_foreach(a[0], i, x) {
		if (i)
			hypr_strbuf_addn(&b, json_string_value(a[1]), json_string_length(a[1]));
		print_value(&b, x, 0);
	}
	r = json_stringn_nocheck(hypr_strbuf_str(&b), b.n);
	free(b.s);
	return r;
}

static json_t *
fn_split(json_t **a, size_t n, struct hypr_err *e)
{
	json_t *r;
	const char *s, *sep, *hit;
	size_t sl;

	(void)n;
	if (!json_is_string(a[0]) || !json_is_string(a[1])) {
		hypr_err_set(e, HYPR_EXIT_USAGE, "split: wants two strings");
		return NULL;
	}
	r = json_array();
	s = json_string_value(a[0]);
	sep = json_string_value(a[1]);
	sl = strlen(sep);
	if (sl == 0) {
		/* Go splits into UTF-8 sequences; bytes are close enough for ASCII */
		for (; *s; s++)
			json_array_append_new(r, json_stringn_nocheck(s, 1));
		return r;
	}
	while ((hit = strstr(s, sep)) != NULL) {
		json_array_append_new(r, json_stringn_nocheck(s, (size_t)(hit - s)));
		s = hit + sl;
	}
	json_array_append_new(r, json_string_nocheck(s));
	return r;
}

/* Sprint (spaces between operands when neither is a string) or Sprintln
 * (always spaces, and a newline). */
static json_t *
sprint(json_t **a, size_t n, int ln)
{
	struct hypr_strbuf b = { 0 };
	json_t *r;

	for (size_t i = 0; i < n; i++) {
		if (i && (ln || (!json_is_string(a[i - 1]) && !json_is_string(a[i]))))
			hypr_strbuf_addc(&b, ' ');
		if (a[i] == NULL || json_is_null(a[i]))
			hypr_strbuf_add(&b, "<nil>");
		else
			print_value(&b, a[i], 0);
	}
	if (ln)
		hypr_strbuf_addc(&b, '\n');
	r = json_stringn_nocheck(hypr_strbuf_str(&b), b.n);
	free(b.s);
	return r;
}

static json_t *
fn_print(json_t **a, size_t n, struct hypr_err *e)
{
	(void)e;
	return sprint(a, n, 0);
}

static json_t *
fn_println(json_t **a, size_t n, struct hypr_err *e)
{
	(void)e;
	return sprint(a, n, 1);
}

/* printf: %s %v %d %q and %%, with Go's "-" and "0" flags, a width and a
 * precision (%-20s, %.12s, %05d; widths up to 1000). */
static json_t *
fn_printf(json_t **a, size_t n, struct hypr_err *e)
{
	struct hypr_strbuf b = { 0 }, t = { 0 };
	const char *f;
	size_t k = 1;
	json_t *r;

	if (!json_is_string(a[0])) {
		hypr_err_set(e, HYPR_EXIT_USAGE, "printf: the format is a %s", kind(a[0]));
		return NULL;
	}
	for (f = json_string_value(a[0]); *f; f++) {
		json_t *v;
		int left = 0, zero = 0;
		long width = 0, prec = -1;
		size_t len;

		if (*f != '%') {
			hypr_strbuf_addc(&b, *f);
			continue;
		}
		if (*++f == '%') {
			hypr_strbuf_addc(&b, '%');
			continue;
		}
		for (; *f == '-' || *f == '0'; f++) {
			if (*f == '-')
				left = 1;
			else
				zero = 1;
		}
		for (; isdigit((unsigned char)*f) && width <= 1000; f++)
			width = width * 10 + (*f - '0');
		if (*f == '.')
			for (prec = 0, f++; isdigit((unsigned char)*f) && prec <= 100000; f++)
				prec = prec * 10 + (*f - '0');
		if ((*f != 's' && *f != 'v' && *f != 'd' && *f != 'q') || width > 1000) {
			free(b.s);
			free(t.s);
			hypr_err_set(e, HYPR_EXIT_USAGE, "printf: unsupported verb %%%.1s (%%s %%v "
			    "%%d %%q, flags - and 0, a width up to 1000, a precision)", f);
			return NULL;
		}
		if (k >= n) {
			hypr_strbuf_add(&b, "%!");
			hypr_strbuf_addc(&b, *f);
			hypr_strbuf_add(&b, "(MISSING)");
			continue;
		}
		v = a[k++];
		hypr_strbuf_reset(&t);
		if (*f == 'q' && json_is_string(v)) {
			char *q = json_dumps(v, JSON_ENCODE_ANY);

			hypr_strbuf_add(&t, q ? q : "");
			free(q);
		} else if (v == NULL || json_is_null(v)) {
			hypr_strbuf_add(&t, "<nil>");
		} else {
			print_value(&t, v, 0);
		}
		len = t.n;
		if (prec >= 0 && *f != 'd' && (size_t)prec < len) {
			len = (size_t)prec;
			while (len > 0 && ((unsigned char)t.s[len] & 0xC0) == 0x80)
				len--;
		}
		for (long i = (long)len; !left && i < width; i++)
			hypr_strbuf_addc(&b, zero && *f == 'd' ? '0' : ' ');
		hypr_strbuf_addn(&b, hypr_strbuf_str(&t), len);
		for (long i = (long)len; left && i < width; i++)
			hypr_strbuf_addc(&b, ' ');
	}
	free(t.s);
	r = json_stringn_nocheck(hypr_strbuf_str(&b), b.n);
	free(b.s);
	return r;
}

static json_t *
fn_len(json_t **a, size_t n, struct hypr_err *e)
{
	(void)n;
	if (json_is_string(a[0]))
		return json_integer((json_int_t)json_string_length(a[0]));
	if (json_is_array(a[0]))
		return json_integer((json_int_t)json_array_size(a[0]));
	if (json_is_object(a[0]))
		return json_integer((json_int_t)json_object_size(a[0]));
	if (a[0] == NULL || json_is_null(a[0]))
		return json_integer(0);
	hypr_err_set(e, HYPR_EXIT_USAGE, "len of a %s", kind(a[0]));
	return NULL;
}

/* ASCII case mapping: 'u' upper, 'l' lower, 't' title (strings.Title). */
static json_t *
recase(json_t *v, char how)
{
	json_t *s = string_of(v);
	char *d;
	int sep = 1;

	if (s == NULL || (d = strdup(json_string_value(s))) == NULL) {
		json_decref(s);
		return NULL;
	}
	for (char *p = d; *p; p++) {
		unsigned char c = (unsigned char)*p;

		if (how == 'u')
			*p = (char)toupper(c);
		else if (how == 'l')
			*p = (char)tolower(c);
		else {
			if (sep)
				*p = (char)toupper(c);
			sep = !(isalnum(c) || c == '_' || (c & 0x80));
		}
	}
	json_decref(s);
	s = json_string_nocheck(d);
	free(d);
	return s;
}

static json_t *
fn_upper(json_t **a, size_t n, struct hypr_err *e)
{
	(void)n;
	(void)e;
	return recase(a[0], 'u');
}

static json_t *
fn_lower(json_t **a, size_t n, struct hypr_err *e)
{
	(void)n;
	(void)e;
	return recase(a[0], 'l');
}

static json_t *
fn_title(json_t **a, size_t n, struct hypr_err *e)
{
	(void)n;
	(void)e;
	return recase(a[0], 't');
}

/* docker's truncate STRING N (bytes here, runes in Go; never inside a
 * UTF-8 sequence). */
static json_t *
fn_truncate(json_t **a, size_t n, struct hypr_err *e)
{
	json_t *s;
	json_int_t k = json_integer_value(a[1]);
	const char *v;

	(void)n;
	if (!json_is_integer(a[1]) || k < 0) {
		hypr_err_set(e, HYPR_EXIT_USAGE, "truncate: wants a length");
		return NULL;
	}
	if ((s = string_of(a[0])) == NULL || json_string_length(s) <= (size_t)k)
		return s;
	v = json_string_value(s);
	while (k > 0 && ((unsigned char)v[k] & 0xC0) == 0x80)
		k--;
	if (json_string_setn_nocheck(s, v, (size_t)k) < 0) {
		json_decref(s);
		return NULL;
	}
	return s;
}

static int
same(const json_t *x, const json_t *y)
{
	if (x == NULL || y == NULL)
		return x == y || json_is_null(x ? x : y);
	return json_equal((json_t *)x, (json_t *)y);
}

static json_t *
fn_eq(json_t **a, size_t n, struct hypr_err *e)
{
	(void)e;
	for (size_t i = 1; i < n; i++)
		if (same(a[0], a[i]))
			return json_true();
	return json_false();
}

static json_t *
fn_ne(json_t **a, size_t n, struct hypr_err *e)
{
	(void)n;
	(void)e;
	return json_boolean(!same(a[0], a[1]));
}

static json_t *
fn_not(json_t **a, size_t n, struct hypr_err *e)
{
	(void)n;
	(void)e;
	return json_boolean(!truth(a[0]));
}

/* and: the first false argument or the last; or: the first true or the last */
static json_t *
fn_and(json_t **a, size_t n, struct hypr_err *e)
{
	size_t i;

	(void)e;
	for (i = 0; i + 1 < n && truth(a[i]); i++)
		;
	return a[i] ? json_incref(a[i]) : json_null();
}

static json_t *
fn_or(json_t **a, size_t n, struct hypr_err *e)
{
	size_t i;

	(void)e;
	for (i = 0; i + 1 < n && !truth(a[i]); i++)
		;
	return a[i] ? json_incref(a[i]) : json_null();
}

static const struct fn_def fns[] = {
	{ "and", fn_and, 1, -1 },
	{ "eq", fn_eq, 2, -1 },
	{ "index", fn_index, 1, -1 },
	{ "join", fn_join, 2, 2 },
	{ "json", fn_json, 1, 1 },
	{ "len", fn_len, 1, 1 },
	{ "lower", fn_lower, 1, 1 },
	{ "ne", fn_ne, 2, 2 },
	{ "not", fn_not, 1, 1 },
	{ "or", fn_or, 1, -1 },
	{ "print", fn_print, 0, -1 },
	{ "printf", fn_printf, 1, -1 },
	{ "println", fn_println, 0, -1 },
	{ "split", fn_split, 2, 2 },
	{ "title", fn_title, 1, 1 },
	{ "truncate", fn_truncate, 2, 2 },
	{ "upper", fn_upper, 1, 1 },
};

static const struct fn_def *
find_fn(const char *name)
{
	for (size_t i = 0; i < sizeof(fns) / sizeof(fns[0]); i++)
		if (strcmp(fns[i].name, name) == 0)
			return &fns[i];
	return NULL;
}

/* ---- execution ---- */

struct var {
	const char *name;
	json_t *v;		/* borrowed from the range's value */
};

struct exec {
	const struct hypr_tmpl_data *d;
	struct hypr_strbuf *out;
	struct hypr_err *e;
	uint64_t steps, max_steps;
	struct var vars[2 * HYPR_TMPL_MAX_DEPTH + 2];
	size_t nvars;
};

static int eval_pipe(struct exec *x, const struct pipe *p, json_t *dot, json_t **out);

/* Count n steps of work: a node, a range iteration, a command, and what a
 * function made (a string's bytes / 4, an array's or object's size), so
 * a template's time is bounded whether or not it writes anything. */
static int
step(struct exec *x, uint64_t n)
{
	x->steps += n;
	if (x->steps > x->max_steps)
		return hypr_err_set(x->e, HYPR_EXIT_USAGE, "template: over %llu steps",
		    (unsigned long long)x->max_steps);
	return 0;
}

static uint64_t
cost(const json_t *v)
{
	if (json_is_string(v))
		return json_string_length(v) / 4;
	if (json_is_array(v))
		return json_array_size(v);
	if (json_is_object(v))
		return json_object_size(v);
	return 0;
}

static int
is_map(const struct exec *x, const json_t *o)
{
	for (size_t i = 0; i < x->d->nmaps; i++)
		if (x->d->maps[i] == o)
			return 1;
	return 0;
}

/* The name of an operand's chain up to field k, for errors: ".Config.Foo" */
static void
chain_name(const struct operand *o, size_t k, char *buf, size_t n)
{
	size_t len;

	snprintf(buf, n, "%s", o->t == O_VAR ? o->s : o->t == O_PIPE ? "(...)" : "");
	for (size_t i = 0; i <= k && i < o->nf; i++) {
		len = strlen(buf);
		snprintf(buf + len, n - len, ".%s", o->fields[i]);
	}
}

/* Walk o's fields from v (a new reference, consumed). */
static int
walk(struct exec *x, const struct operand *o, json_t *v, json_t **out)
{
	char name[256];

	for (size_t i = 0; i < o->nf; i++) {
		json_t *next;

		if (v == NULL || json_is_null(v)) {
			json_decref(v);
			v = NULL;
			continue;	/* a field of nothing is nothing */
		}
		if (!json_is_object(v)) {
			chain_name(o, i, name, sizeof(name));
			hypr_err_set(x->e, HYPR_EXIT_USAGE, "can't evaluate field %s in a %s (%s)",
			    o->fields[i], kind(v), name);
			json_decref(v);
			return -1;
		}
		next = json_object_get(v, o->fields[i]);
		if (next == NULL && !is_map(x, v)) {
			chain_name(o, i, name, sizeof(name));
			hypr_err_set(x->e, HYPR_EXIT_USAGE, "unknown field %s", name);
			json_decref(v);
			return -1;
		}
		json_incref(next);
		json_decref(v);
		v = next;
	}
	*out = v;
	return 0;
}

static int
eval_operand(struct exec *x, const struct operand *o, json_t *dot, json_t **out)
{
	*out = NULL;
	switch (o->t) {
	case O_DOT:
		*out = dot ? json_incref(dot) : NULL;
		return 0;
	case O_FIELD:
		return walk(x, o, dot ? json_incref(dot) : NULL, out);
	case O_VAR:
		if (strcmp(o->s, "$") == 0)
			return walk(x, o, json_incref(x->d->dot), out);
		for (size_t i = x->nvars; i-- > 0;)
			if (strcmp(x->vars[i].name, o->s) == 0)
				return walk(x, o, x->vars[i].v ? json_incref(x->vars[i].v) : NULL, out);
		return hypr_err_set(x->e, HYPR_EXIT_USAGE, "undefined variable %s", o->s);
	case O_STR:
		*out = json_string_nocheck(o->s);
		break;
	case O_NUM:
		*out = json_integer((json_int_t)o->num);
		break;
	case O_BOOL:
		*out = json_boolean(o->num);
		break;
	case O_NIL:
		return 0;
	case O_FUNC: {
		/* a function as an argument is called without arguments */
		const struct fn_def *f = find_fn(o->s);

		if (f->min > 0)
			return hypr_err_set(x->e, HYPR_EXIT_USAGE, "%s: wants arguments (use "
			    "parentheses)", o->s);
		*out = f->fn(NULL, 0, x->e);
		break;
	}
	case O_PIPE: {
		json_t *v;

		if (eval_pipe(x, o->pipe, dot, &v) < 0)
			return -1;
		return walk(x, o, v, out);
	}
	}
	if (*out == NULL && x->e->code == 0)
		return hypr_err_set(x->e, HYPR_EXIT_SYSTEM, "out of memory");
	return *out ? 0 : -1;
}

/* One command; prev (borrowed, or NULL with has_prev 0) is the value piped in. */
static int
eval_cmd(struct exec *x, const struct cmd *c, json_t *dot, int has_prev, json_t *prev,
    json_t **out)
{
	const struct operand *o = &c->args[0];
	json_t *argv[16];
	size_t n = 0;
	int rc = -1;

	*out = NULL;
	if (o->t != O_FUNC) {
		json_t *v;

		if (has_prev)
			return hypr_err_set(x->e, HYPR_EXIT_USAGE, "col %d: can't pipe into a value "
			    "(not a function)", o->col);
		if (eval_operand(x, o, dot, &v) < 0)
			return -1;
		if (c->n == 1) {
			*out = v;
			return 0;
		}
		if ((o->t != O_FIELD && o->t != O_VAR) || o->nf == 0 ||
		    !(v == NULL || json_is_null(v) || json_is_object(v))) {
			const char *k = kind(v);

			json_decref(v);
			return hypr_err_set(x->e, HYPR_EXIT_USAGE, "col %d: arguments given to a %s, "
			    "not a function", o->col, k);
		}
		/* {{.Label "k"}}: a field with arguments indexes its object */
		argv[n++] = v;
		for (size_t i = 1; i < c->n && n < 16; i++)
			if (eval_operand(x, &c->args[i], dot, &argv[n++]) < 0)
				goto out;
		if ((*out = fn_index(argv, n, x->e)) != NULL)
			rc = 0;
		goto out;
	}
	{
		const struct fn_def *f = find_fn(o->s);
		size_t want = c->n - 1 + (has_prev ? 1 : 0);

		if (want > 15 || (int)want < f->min || (f->max >= 0 && (int)want > f->max))
			return hypr_err_set(x->e, HYPR_EXIT_USAGE, "col %d: %s: wrong number of "
			    "arguments (%zu)", o->col, o->s, want);
		for (size_t i = 1; i < c->n; i++)
			if (eval_operand(x, &c->args[i], dot, &argv[n++]) < 0)
				goto out;
		if (has_prev)
			argv[n++] = prev ? json_incref(prev) : NULL;
		if ((*out = f->fn(argv, n, x->e)) != NULL && (rc = step(x, 1 + cost(*out))) < 0) {
			json_decref(*out);
			*out = NULL;
		} else if (*out == NULL && x->e->code == 0)
			hypr_err_set(x->e, HYPR_EXIT_SYSTEM, "out of memory");
		if (rc < 0)
			hypr_err_prefix(x->e, "col %d", o->col);
	}
out:
	for (size_t i = 0; i < n; i++)
		json_decref(argv[i]);
	return rc;
}

static int
eval_pipe(struct exec *x, const struct pipe *p, json_t *dot, json_t **out)
{
	json_t *v = NULL;

	for (size_t i = 0; i < p->n; i++) {
		json_t *next;

		if (eval_cmd(x, &p->cmds[i], dot, i > 0, v, &next) < 0) {
			json_decref(v);
			return -1;
		}
		json_decref(v);
		v = next;
	}
	*out = v;
	return 0;
}

static int exec_list(struct exec *x, const struct node *n, json_t *dot);

static int
exec_range(struct exec *x, const struct node *n, json_t *v, json_t *dot)
{
	size_t base = x->nvars, cnt = 0, nk = 0;
	const char **keys = NULL;
	int rc = 0;

	if (v == NULL || json_is_null(v))
		return n->elselist ? exec_list(x, n->elselist, dot) : 0;
	if (json_is_object(v)) {
		if ((keys = sorted_keys(v, &nk)) == NULL)
			return hypr_err_set(x->e, HYPR_EXIT_SYSTEM, "out of memory");
		cnt = nk;
	} else if (json_is_array(v)) {
		cnt = json_array_size(v);
	} else {
		return hypr_err_set(x->e, HYPR_EXIT_USAGE, "range can't iterate over a %s", kind(v));
	}
	for (size_t i = 0; i < cnt && rc == 0; i++) {
		json_t *el = keys ? json_object_get(v, keys[i]) : json_array_get(v, i);
		json_t *key = keys ? json_string_nocheck(keys[i]) : json_integer((json_int_t)i);

		x->nvars = base;
		if ((rc = step(x, 1)) < 0) {
			json_decref(key);
			break;
		}
		if (n->pipe->nvars == 2) {
			x->vars[x->nvars++] = (struct var){ n->pipe->vars[0], key };
			x->vars[x->nvars++] = (struct var){ n->pipe->vars[1], el };
		} else if (n->pipe->nvars == 1) {
			x->vars[x->nvars++] = (struct var){ n->pipe->vars[0], el };
		}
		rc = exec_list(x, n->list, el);
		json_decref(key);
	}
	x->nvars = base;
	free(keys);
	if (rc == 0 && cnt == 0 && n->elselist)
		rc = exec_list(x, n->elselist, dot);
	return rc;
}

static int
exec_list(struct exec *x, const struct node *n, json_t *dot)
{
	for (; n; n = n->next) {
		json_t *v = NULL;
		int rc = 0;

		if (step(x, 1) < 0)
			return -1;
		if (x->out->n > HYPR_TMPL_MAX_OUT)
			return hypr_err_set(x->e, HYPR_EXIT_USAGE, "template: output over %u MiB",
			    HYPR_TMPL_MAX_OUT >> 20);
		if (n->t == N_TEXT) {
			hypr_strbuf_addn(x->out, n->text, n->len);
			continue;
		}
		if (eval_pipe(x, n->pipe, dot, &v) < 0)
			return -1;
		switch (n->t) {
		case N_ACTION:
			if (n->pipe->nvars == 0)
				print_value(x->out, v, 0);
			break;
		case N_IF:
			rc = truth(v) ? exec_list(x, n->list, dot) :
			    n->elselist ? exec_list(x, n->elselist, dot) : 0;
			break;
		case N_WITH:
			rc = truth(v) ? exec_list(x, n->list, v) :
			    n->elselist ? exec_list(x, n->elselist, dot) : 0;
			break;
		case N_RANGE:
			rc = exec_range(x, n, v, dot);
			break;
		case N_TEXT:
			break;
		}
		json_decref(v);
		if (rc < 0)
			return -1;
	}
	return 0;
}

int
hypr_tmpl_exec(const struct hypr_tmpl *t, const struct hypr_tmpl_data *d,
    struct hypr_strbuf *out, struct hypr_err *e)
{
	struct exec x = { .d = d, .out = out, .e = e };

	x.max_steps = d->max_steps ? d->max_steps : HYPR_TMPL_MAX_STEPS;
	if (exec_list(&x, t->root, d->dot) < 0)
		return -1;
	if (out->oom)
		return hypr_err_set(e, HYPR_EXIT_SYSTEM, "template: out of memory");
	return 0;
}
