#include "compose.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <yaml.h>

struct ctx {
	struct hypr_compose *c;
	yaml_document_t *doc;
	const char *fname;	/* for messages: the file's base name */
	struct hypr_err *e;
};

static int
oom(struct hypr_err *e)
{
	return hypr_err_set(e, HYPR_EXIT_SYSTEM, "out of memory");
}

static long
line_of(yaml_node_t *n)
{
	return (long)n->start_mark.line + 1;
}

static int
add_warning(struct ctx *x, yaml_node_t *n, const char *fmt, const char *a,
    const char *b)
{
	char msg[512], *s;
	char **w;

	snprintf(msg, sizeof msg, fmt, a, b ? b : "");
	if (asprintf(&s, "%s:%ld: %s", x->fname, line_of(n), msg) < 0)
		return oom(x->e);
	w = realloc(x->c->warnings, (x->c->nwarnings + 1) * sizeof *w);
	if (!w) {
		free(s);
		return oom(x->e);
	}
	x->c->warnings = w;
	w[x->c->nwarnings++] = s;
	return 0;
}

/* Append the environment value of name[0..len) (or NULL when unset). */
static const char *
env_n(const char *name, size_t len)
{
	char buf[256];

	if (len >= sizeof buf)
		return NULL;
	memcpy(buf, name, len);
	buf[len] = 0;
	return getenv(buf);
}

struct sbuf {
	char *p;
	size_t n, cap;
};

static int
sb_add(struct sbuf *s, const char *p, size_t n)
{
	if (s->n + n + 1 > s->cap) {
		size_t cap = s->cap ? s->cap : 64;
		char *q;

		while (cap < s->n + n + 1)
			cap *= 2;
		if (!(q = realloc(s->p, cap)))
			return -1;
		s->p = q;
		s->cap = cap;
	}
	memcpy(s->p + s->n, p, n);
	s->n += n;
	s->p[s->n] = 0;
	return 0;
}

static int
isvar(int ch, int first)
{
	return ch == '_' || isalpha(ch) || (!first && isdigit(ch));
}

int
hypr_compose_interpolate(const char *in, char **out, struct hypr_err *e)
{
	struct sbuf s = { 0 };
	const char *p = in;

	if (sb_add(&s, "", 0) < 0)
		return oom(e);
	while (*p) {
		const char *d = strchr(p, '$');

		if (!d) {
			if (sb_add(&s, p, strlen(p)) < 0)
				goto nomem;
			break;
		}
		if (sb_add(&s, p, (size_t)(d - p)) < 0)
			goto nomem;
		p = d + 1;
		if (*p == '$') {	/* $$ is a literal $ */
			if (sb_add(&s, "$", 1) < 0)
				goto nomem;
			p++;
		} else if (isvar((unsigned char)*p, 1)) {
			const char *n = p, *v;

			while (isvar((unsigned char)*p, 0))
				p++;
			v = env_n(n, (size_t)(p - n));
			if (v && sb_add(&s, v, strlen(v)) < 0)
				goto nomem;
		} else if (*p == '{') {
			const char *n = ++p, *v, *end, *op;
			size_t nlen;
			int colon = 0;

			while (isvar((unsigned char)*p, p == n))
				p++;
			nlen = (size_t)(p - n);
			if (nlen == 0 || !(end = strchr(p, '}'))) {
				free(s.p);
				return hypr_err_set(e, HYPR_EXIT_INPUT,
				    "invalid interpolation format in \"%s\"", in);
			}
			v = env_n(n, nlen);
			op = p;
			if (*op == ':') {
				colon = 1;
				op++;
			}
			if (op == end && !colon) {
				if (v && sb_add(&s, v, strlen(v)) < 0)
					goto nomem;
			} else if (*op == '-' || *op == '?' || *op == '+') {
				int unset = !v || (colon && !*v);
				const char *w = op + 1;

				if (*op == '-') {
					if (unset ? sb_add(&s, w, (size_t)(end - w)) :
					    sb_add(&s, v, strlen(v)))
						goto nomem;
				} else if (*op == '+') {
					if (!unset && sb_add(&s, w, (size_t)(end - w)))
						goto nomem;
				} else if (unset) {
					int len = (int)(end - w);

					free(s.p);
					return hypr_err_set(e, HYPR_EXIT_INPUT,
					    "required variable %.*s is missing a value: %.*s",
					    (int)nlen, n, len, w);
				} else if (sb_add(&s, v, strlen(v))) {
					goto nomem;
				}
			} else {
				free(s.p);
				return hypr_err_set(e, HYPR_EXIT_INPUT,
				    "invalid interpolation format in \"%s\"", in);
			}
			p = end + 1;
		} else if (sb_add(&s, "$", 1) < 0) {
			goto nomem;
		}
	}
	*out = s.p;
	return 0;
nomem:
	free(s.p);
	return oom(e);
}

static const char *
scalar(yaml_node_t *n)
{
	return n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

/* Interpolated copy of a scalar node; error when it is not a scalar. */
static int
str_of(struct ctx *x, yaml_node_t *n, const char *what, char **out)
{
	const char *s = scalar(n);

	if (!s)
		return hypr_err_set(x->e, HYPR_EXIT_INPUT, "%s:%ld: %s must be a string",
		    x->fname, line_of(n), what);
	if (hypr_compose_interpolate(s, out, x->e) < 0)
		return hypr_err_prefix(x->e, "%s:%ld", x->fname, line_of(n));
	return 0;
}

/* str_of into a field a key given twice sets again: the last one wins. */
static int
str_set(struct ctx *x, yaml_node_t *n, const char *what, char **field)
{
	char *v;

	if (str_of(x, n, what, &v) < 0)
		return -1;
	free(*field);
	*field = v;
	return 0;
}

static int
bool_of(struct ctx *x, yaml_node_t *n, const char *what, int *out)
{
	const char *s = scalar(n);

	if (s && (!strcmp(s, "true") || !strcmp(s, "True") || !strcmp(s, "yes"))) {
		*out = 1;
		return 0;
	}
	if (s && (!strcmp(s, "false") || !strcmp(s, "False") || !strcmp(s, "no"))) {
		*out = 0;
		return 0;
	}
	return hypr_err_set(x->e, HYPR_EXIT_INPUT, "%s:%ld: %s must be true or false",
	    x->fname, n ? line_of(n) : 0, what);
}

static int
kv_add(struct hypr_compose_kv **v, size_t *n, char *key, char *val,
    struct hypr_err *e)
{
	struct hypr_compose_kv *q;
	size_t i;

	for (i = 0; i < *n; i++)	/* a later entry replaces an earlier one */
		if (!strcmp((*v)[i].key, key)) {
			free((*v)[i].value);
			(*v)[i].value = val;
			free(key);
			return 0;
		}
	if (!(q = realloc(*v, (*n + 1) * sizeof *q))) {
		free(key);
		free(val);
		return oom(e);
	}
	*v = q;
	q[*n].key = key;
	q[(*n)++].value = val;
	return 0;
}

/* args/labels: a map {K: V} (a null V is a bare key) or a list ["K=V", "K"]. */
static int
kv_list(struct ctx *x, yaml_node_t *n, const char *what,
    struct hypr_compose_kv **v, size_t *cnt)
{
	if (n->type == YAML_MAPPING_NODE) {
		yaml_node_pair_t *p;

		for (p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
			yaml_node_t *k = yaml_document_get_node(x->doc, p->key);
			yaml_node_t *val = yaml_document_get_node(x->doc, p->value);
			char *ks, *vs = NULL;
			const char *raw = scalar(val);

			if (str_of(x, k, what, &ks) < 0)
				return -1;
			if (raw && val->data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
			    (!*raw || !strcmp(raw, "~") || !strcmp(raw, "null")))
				raw = NULL;	/* K: (no value) takes the environment */
			else if (str_of(x, val, what, &vs) < 0) {
				free(ks);
				return -1;
			}
			(void)raw;
			if (kv_add(v, cnt, ks, vs, x->e) < 0)
				return -1;
		}
		return 0;
	}
	if (n->type == YAML_SEQUENCE_NODE) {
		yaml_node_item_t *i;

		for (i = n->data.sequence.items.start; i < n->data.sequence.items.top; i++) {
			yaml_node_t *it = yaml_document_get_node(x->doc, *i);
			char *s, *eq, *val = NULL;

			if (str_of(x, it, what, &s) < 0)
				return -1;
			if ((eq = strchr(s, '='))) {
				*eq = 0;
				if (!(val = strdup(eq + 1))) {
					free(s);
					return oom(x->e);
				}
			}
			if (!*s) {
				free(s);
				free(val);
				return hypr_err_set(x->e, HYPR_EXIT_INPUT,
				    "%s:%ld: %s: empty name", x->fname, line_of(it), what);
			}
			if (kv_add(v, cnt, s, val, x->e) < 0)
				return -1;
		}
		return 0;
	}
	return hypr_err_set(x->e, HYPR_EXIT_INPUT,
	    "%s:%ld: %s must be a mapping or a list", x->fname, line_of(n), what);
}

/* Keys of build: that hypr knows but cannot honour yet (warned). */
static const char *const build_unsupported[] = {
	"cache_from", "cache_to", "secrets", "ssh", "network", "shm_size",
	"extra_hosts", "isolation", "privileged", "platforms", "additional_contexts",
	"ulimits", "entitlements", "provenance", "sbom", NULL
};

/* A context is a directory: a URL or git address is refused, in both forms
 * of build: (the string form skipped this; found by fuzz_compose). */
static int
check_context(struct ctx *x, const struct hypr_compose_service *s, yaml_node_t *b,
    const char *what)
{
	if (strstr(s->context, "://") || !strncmp(s->context, "git@", 4))
		return hypr_err_set(x->e, HYPR_EXIT_INPUT,
		    "%s:%ld: services.%s.%s: remote contexts (%s) are not supported by hypr",
		    x->fname, line_of(b), s->name, what, s->context);
	return 0;
}

static int
parse_build(struct ctx *x, struct hypr_compose_service *s, yaml_node_t *b)
{
	yaml_node_pair_t *p;

	s->has_build = 1;
	if (b->type == YAML_SCALAR_NODE) {	/* build: ./dir */
		if (str_set(x, b, "build", &s->context) < 0)
			return -1;
		return check_context(x, s, b, "build");
	}
	if (b->type != YAML_MAPPING_NODE)
		return hypr_err_set(x->e, HYPR_EXIT_INPUT,
		    "%s:%ld: services.%s.build must be a string or a mapping",
		    x->fname, line_of(b), s->name);
	for (p = b->data.mapping.pairs.start; p < b->data.mapping.pairs.top; p++) {
		yaml_node_t *k = yaml_document_get_node(x->doc, p->key);
		yaml_node_t *v = yaml_document_get_node(x->doc, p->value);
		const char *key = scalar(k);
		int r = 0;

		if (!key)
			return hypr_err_set(x->e, HYPR_EXIT_INPUT,
			    "%s:%ld: a key must be a string", x->fname, line_of(k));
		if (!strcmp(key, "context"))
			r = str_set(x, v, "build.context", &s->context);
		else if (!strcmp(key, "dockerfile"))
			r = str_set(x, v, "build.dockerfile", &s->dockerfile);
		else if (!strcmp(key, "dockerfile_inline"))
			r = str_set(x, v, "build.dockerfile_inline", &s->dockerfile_inline);
		else if (!strcmp(key, "target"))
			r = str_set(x, v, "build.target", &s->target);
		else if (!strcmp(key, "args"))
			r = kv_list(x, v, "build.args", &s->args, &s->nargs);
		else if (!strcmp(key, "labels"))
			r = kv_list(x, v, "build.labels", &s->labels, &s->nlabels);
		else if (!strcmp(key, "no_cache"))
			r = bool_of(x, v, "build.no_cache", &s->no_cache);
		else if (!strcmp(key, "pull"))
			r = bool_of(x, v, "build.pull", &s->pull);
		else if (!strcmp(key, "tags")) {
			yaml_node_item_t *i;

			if (v->type != YAML_SEQUENCE_NODE)
				return hypr_err_set(x->e, HYPR_EXIT_INPUT,
				    "%s:%ld: build.tags must be a list", x->fname,
				    line_of(v));
			for (i = v->data.sequence.items.start;
			    i < v->data.sequence.items.top; i++) {
				char *t, **q;

				if (str_of(x, yaml_document_get_node(x->doc, *i),
				    "build.tags", &t) < 0)
					return -1;
				if (!(q = realloc(s->tags, (s->ntags + 1) * sizeof *q))) {
					free(t);
					return oom(x->e);
				}
				s->tags = q;
				q[s->ntags++] = t;
			}
		} else {
			const char *const *u;
			int known = 0;

			for (u = build_unsupported; *u; u++)
				known |= !strcmp(*u, key);
			r = add_warning(x, k, known ?
			    "services.%s.build.%s is not supported by hypr; ignored" :
			    "services.%s.build.%s is unknown; ignored", s->name, key);
		}
		if (r < 0)
			return -1;
	}
	if (s->dockerfile && s->dockerfile_inline)
		return hypr_err_set(x->e, HYPR_EXIT_INPUT,
		    "%s:%ld: services.%s.build: dockerfile and dockerfile_inline are exclusive",
		    x->fname, line_of(b), s->name);
	if (!s->context && !(s->context = strdup(".")))
		return oom(x->e);
	return check_context(x, s, b, "build.context");
}

static int
parse_service(struct ctx *x, struct hypr_compose_service *s, yaml_node_t *n)
{
	yaml_node_pair_t *p;

	if (n->type != YAML_MAPPING_NODE)
		return hypr_err_set(x->e, HYPR_EXIT_INPUT,
		    "%s:%ld: services.%s must be a mapping", x->fname, line_of(n), s->name);
	for (p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
		yaml_node_t *k = yaml_document_get_node(x->doc, p->key);
		yaml_node_t *v = yaml_document_get_node(x->doc, p->value);
		const char *key = scalar(k);

		if (!key)
			return hypr_err_set(x->e, HYPR_EXIT_INPUT,
			    "%s:%ld: a key must be a string", x->fname, line_of(k));
		if (!strcmp(key, "image")) {
			if (str_set(x, v, "image", &s->image) < 0)
				return -1;
		} else if (!strcmp(key, "build")) {
			if (parse_build(x, s, v) < 0)
				return -1;
		} else if (!strcmp(key, "pull_policy")) {
			const char *pp = scalar(v);

			if (pp && !strcmp(pp, "build"))
				continue;
			if (add_warning(x, k, "services.%s.pull_policy %s: hypr builds every service that has build:",
			    s->name, pp ? pp : "?") < 0)
				return -1;
		}
		/* Everything else (ports, environment, volumes, ...) is for a
		 * runtime; `hypr compose up` says once that none exists. */
	}
	return 0;
}

int
hypr_compose_find(const char *dir, char *out, size_t n, struct hypr_err *e)
{
	static const char *const names[] = { "compose.yaml", "compose.yml",
		"docker-compose.yml", "docker-compose.yaml", NULL };
	const char *const *nm;

	for (nm = names; *nm; nm++) {
		if ((size_t)snprintf(out, n, "%s/%s", dir, *nm) >= n)
			return hypr_err_set(e, HYPR_EXIT_USAGE, "%s: path too long", dir);
		if (access(out, F_OK) == 0)
			return 0;
	}
	return hypr_err_set(e, HYPR_EXIT_USAGE,
	    "no compose file found in %s (compose.yaml, compose.yml, docker-compose.yml)",
	    dir);
}

int
hypr_compose_project_name(const char *raw, char *out, size_t n)
{
	size_t j = 0;

	for (; *raw && j + 1 < n; raw++) {
		int ch = tolower((unsigned char)*raw);

		if (isalnum(ch) || ((ch == '_' || ch == '-') && j > 0))
			out[j++] = (char)ch;
	}
	if (n)
		out[j] = 0;
	return j ? 0 : -1;
}

static int
set_dir(struct hypr_compose *c, const char *path, struct hypr_err *e)
{
	char buf[PATH_MAX], *slash;

	if (!realpath(path, buf))
		return hypr_err_errno(e, HYPR_EXIT_USAGE, "%s", path);
	if ((slash = strrchr(buf, '/')))
		*(slash == buf ? slash + 1 : slash) = 0;
	if (!(c->dir = strdup(buf)))
		return oom(e);
	return 0;
}

static int
load(struct hypr_compose *c, const char *path, struct hypr_err *e)
{
	yaml_parser_t parser;
	yaml_document_t doc;
	yaml_node_t *root, *services = NULL;
	yaml_node_pair_t *p;
	struct ctx x = { c, &doc, NULL, e };
	FILE *f;
	int r = -1;
	const char *base = strrchr(path, '/');

	memset(c, 0, sizeof *c);
	x.fname = base ? base + 1 : path;
	if (!(c->file = strdup(path)))
		return oom(e);
	if (set_dir(c, path, e) < 0)
		return -1;
	if (!(f = fopen(path, "re")))
		return hypr_err_errno(e, errno == ENOENT ? HYPR_EXIT_USAGE :
		    HYPR_EXIT_SYSTEM, "%s", path);
	if (!yaml_parser_initialize(&parser)) {
		fclose(f);
		return oom(e);
	}
	yaml_parser_set_input_file(&parser, f);
	if (!yaml_parser_load(&parser, &doc)) {
		hypr_err_set(e, HYPR_EXIT_INPUT, "%s:%lu: %s%s%s", x.fname,
		    (unsigned long)parser.problem_mark.line + 1,
		    parser.problem ? parser.problem : "invalid YAML",
		    parser.context ? " " : "", parser.context ? parser.context : "");
		yaml_parser_delete(&parser);
		fclose(f);
		return -1;
	}
	root = yaml_document_get_root_node(&doc);
	if (!root || root->type != YAML_MAPPING_NODE) {
		hypr_err_set(e, HYPR_EXIT_INPUT, "%s: top level must be a mapping",
		    x.fname);
		goto out;
	}
	for (p = root->data.mapping.pairs.start; p < root->data.mapping.pairs.top; p++) {
		yaml_node_t *k = yaml_document_get_node(&doc, p->key);
		yaml_node_t *v = yaml_document_get_node(&doc, p->value);
		const char *key = scalar(k);

		if (key && !strcmp(key, "services"))
			services = v;
		else if (key && !strcmp(key, "name")) {
			if (str_set(&x, v, "name", &c->name) < 0)
				goto out;
		}
	}
	if (!services || services->type != YAML_MAPPING_NODE) {
		hypr_err_set(e, HYPR_EXIT_INPUT, "%s: no services: mapping", x.fname);
		goto out;
	}
	for (p = services->data.mapping.pairs.start;
	    p < services->data.mapping.pairs.top; p++) {
		yaml_node_t *k = yaml_document_get_node(&doc, p->key);
		yaml_node_t *v = yaml_document_get_node(&doc, p->value);
		struct hypr_compose_service *s;
		const char *name = scalar(k);

		if (!name || !*name) {
			hypr_err_set(e, HYPR_EXIT_INPUT, "%s:%ld: a service name must be a string",
			    x.fname, line_of(k));
			goto out;
		}
		if (!(s = realloc(c->services, (c->nservices + 1) * sizeof *s))) {
			oom(e);
			goto out;
		}
		c->services = s;
		s += c->nservices++;
		memset(s, 0, sizeof *s);
		if (!(s->name = strdup(name))) {
			oom(e);
			goto out;
		}
		if (parse_service(&x, s, v) < 0)
			goto out;
	}
	r = 0;
out:
	yaml_document_delete(&doc);
	yaml_parser_delete(&parser);
	fclose(f);
	return r;
}

int
hypr_compose_load(struct hypr_compose *c, const char *path, struct hypr_err *e)
{
	if (load(c, path, e) < 0) {
		hypr_compose_free(c);	/* what was read before the error */
		return -1;
	}
	return 0;
}

static void
kv_free(struct hypr_compose_kv *v, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		free(v[i].key);
		free(v[i].value);
	}
	free(v);
}

void
hypr_compose_free(struct hypr_compose *c)
{
	size_t i, j;

	for (i = 0; i < c->nservices; i++) {
		struct hypr_compose_service *s = &c->services[i];

		free(s->name);
		free(s->image);
		free(s->context);
		free(s->dockerfile);
		free(s->dockerfile_inline);
		free(s->target);
		kv_free(s->args, s->nargs);
		kv_free(s->labels, s->nlabels);
		for (j = 0; j < s->ntags; j++)
			free(s->tags[j]);
		free(s->tags);
	}
	free(c->services);
	for (i = 0; i < c->nwarnings; i++)
		free(c->warnings[i]);
	free(c->warnings);
	free(c->file);
	free(c->dir);
	free(c->name);
	memset(c, 0, sizeof *c);
}
