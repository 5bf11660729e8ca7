/* compose.c - compose files (the Compose specification's subset hypr
 * reads): the YAML walk over the merged files (compose_merge.c), with
 * ${VAR} interpolated (compose_env.c), every service key in each of its
 * forms (short and long syntax), the warnings for what hypr cannot honour,
 * with file and line. One file over 1000 lines because the format has one
 * owner: every key's forms are read here and nowhere else. */
#include "compose_int.h"

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
	const char *fname;	/* for messages: the first file's base name */
	struct hypr_err *e;
	const struct hypr_compose_opts *o;
	const char **fnames;	/* each file's base name */
	int *nodefile;		/* the merged document's node -> its file */
	size_t nnodefile;
};

/* The file (its number) a node of the merged document came from. */
static int
file_of(struct ctx *x, yaml_node_t *n)
{
	size_t i;

	if (!n || !x->nodefile)
		return 0;
	i = (size_t)(n - x->doc->nodes.start);
	return i < x->nnodefile ? x->nodefile[i] : 0;
}

/* Its base name, for messages. */
static const char *
where(struct ctx *x, yaml_node_t *n)
{
	return x->fnames ? x->fnames[file_of(x, n)] : x->fname;
}



static int
add_warning(struct ctx *x, yaml_node_t *n, const char *fmt, const char *a,
    const char *b)
{
	char msg[512], *s;
	char **w;

	snprintf(msg, sizeof msg, fmt, a, b ? b : "");
	if (asprintf(&s, "%s:%ld: %s", where(x, n), compose_line(n), msg) < 0)
		return compose_oom(x->e);
	w = realloc(x->c->warnings, (x->c->nwarnings + 1) * sizeof *w);
	if (!w) {
		free(s);
		return compose_oom(x->e);
	}
	x->c->warnings = w;
	w[x->c->nwarnings++] = s;
	return 0;
}

/* An unset variable, as Compose says it, with the file and line. */
struct unset_at {
	struct ctx *x;
	yaml_node_t *n;
};

static int
unset_warning(void *arg, const char *name, size_t len)
{
	struct unset_at *u = arg;
	struct ctx *x = u->x;
	yaml_node_t *n = u->n;
	char buf[256];

	snprintf(buf, sizeof buf, "%.*s", (int)(len < 200 ? len : 200), name);
	return add_warning(x, n, "The \"%s\" variable is not set. Defaulting to a blank string.",
	    buf, NULL);
}

static void kv_free(struct hypr_compose_kv *v, size_t n);


/* Interpolated copy of a scalar node; error when it is not a scalar. */
static int
str_of(struct ctx *x, yaml_node_t *n, const char *what, char **out)
{
	const char *s = compose_scalar(n);
	struct unset_at u = { x, n };

	if (!s)
		return hypr_err_set(x->e, HYPR_EXIT_INPUT, "%s:%ld: %s must be a string",
		    where(x, n), compose_line(n), what);
	if (compose_interp(s, out, x->o ? x->o->env : NULL, x->o ? x->o->nenv : 0, unset_warning,
	    &u, x->e) < 0)
		return hypr_err_prefix(x->e, "%s:%ld", where(x, n), compose_line(n));
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
	const char *s = compose_scalar(n);

	if (s && (!strcmp(s, "true") || !strcmp(s, "True") || !strcmp(s, "yes"))) {
		*out = 1;
		return 0;
	}
	if (s && (!strcmp(s, "false") || !strcmp(s, "False") || !strcmp(s, "no"))) {
		*out = 0;
		return 0;
	}
	return hypr_err_set(x->e, HYPR_EXIT_INPUT, "%s:%ld: %s must be true or false",
	    where(x, n), n ? compose_line(n) : 0, what);
}

int
compose_kv_set(struct hypr_compose_kv **v, size_t *n, char *key, char *val,
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
		return compose_oom(e);
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
			const char *raw = compose_scalar(val);
			/* K: (no value) takes the environment: vs stays NULL */
			int unset = raw && val->data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
			    (!*raw || !strcmp(raw, "~") || !strcmp(raw, "null"));

			if (str_of(x, k, what, &ks) < 0)
				return -1;
			if (!unset && str_of(x, val, what, &vs) < 0) {
				free(ks);
				return -1;
			}
			if (compose_kv_set(v, cnt, ks, vs, x->e) < 0)
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
					return compose_oom(x->e);
				}
			}
			if (!*s) {
				free(s);
				free(val);
				return hypr_err_set(x->e, HYPR_EXIT_INPUT,
				    "%s:%ld: %s: empty name", where(x, it), compose_line(it), what);
			}
			if (compose_kv_set(v, cnt, s, val, x->e) < 0)
				return -1;
		}
		return 0;
	}
	return hypr_err_set(x->e, HYPR_EXIT_INPUT,
	    "%s:%ld: %s must be a mapping or a list", where(x, n), compose_line(n), what);
}

/* Keys of build: that hypr knows but cannot honour yet (warned). */
static const char *const build_unsupported[] = {
	"secrets", "ssh", "network", "shm_size",
	"extra_hosts", "isolation", "privileged", "platforms", "additional_contexts",
	"ulimits", "entitlements", "provenance", "sbom", NULL
};

static int str_list(struct ctx *x, yaml_node_t *n, const char *what, char ***v, size_t *cnt);

/* A context is a directory: a URL or git address is refused, in both forms
 * of build: (the string form skipped this; found by fuzz_compose). */
static int
check_context(struct ctx *x, const struct hypr_compose_service *s, yaml_node_t *b,
    const char *what)
{
	if (strstr(s->context, "://") || !strncmp(s->context, "git@", 4))
		return hypr_err_set(x->e, HYPR_EXIT_INPUT,
		    "%s:%ld: services.%s.%s: remote contexts (%s) are not supported by hypr",
		    where(x, b), compose_line(b), s->name, what, s->context);
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
		    where(x, b), compose_line(b), s->name);
	for (p = b->data.mapping.pairs.start; p < b->data.mapping.pairs.top; p++) {
		yaml_node_t *k = yaml_document_get_node(x->doc, p->key);
		yaml_node_t *v = yaml_document_get_node(x->doc, p->value);
		const char *key = compose_scalar(k);
		int r = 0;

		if (!key)
			return hypr_err_set(x->e, HYPR_EXIT_INPUT,
			    "%s:%ld: a key must be a string", where(x, k), compose_line(k));
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
		else if (!strcmp(key, "cache_from"))
			r = str_list(x, v, "build.cache_from", &s->cache_from, &s->ncache_from);
		else if (!strcmp(key, "cache_to"))
			r = str_list(x, v, "build.cache_to", &s->cache_to, &s->ncache_to);
		else if (!strcmp(key, "pull"))
			r = bool_of(x, v, "build.pull", &s->pull);
		else if (!strcmp(key, "tags")) {
			yaml_node_item_t *i;

			if (v->type != YAML_SEQUENCE_NODE)
				return hypr_err_set(x->e, HYPR_EXIT_INPUT,
				    "%s:%ld: build.tags must be a list", where(x, v),
				    compose_line(v));
			for (i = v->data.sequence.items.start;
			    i < v->data.sequence.items.top; i++) {
				char *t, **q;

				if (str_of(x, yaml_document_get_node(x->doc, *i),
				    "build.tags", &t) < 0)
					return -1;
				if (!(q = realloc(s->tags, (s->ntags + 1) * sizeof *q))) {
					free(t);
					return compose_oom(x->e);
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
		    where(x, b), compose_line(b), s->name);
	if (!s->context && !(s->context = strdup(".")))
		return compose_oom(x->e);
	return check_context(x, s, b, "build.context");
}

static int
strv_add(char ***v, size_t *n, char *str, struct hypr_err *e)
{
	char **q = realloc(*v, (*n + 2) * sizeof *q);

	if (!q) {
		free(str);
		return compose_oom(e);
	}
	*v = q;
	q[(*n)++] = str;
	q[*n] = NULL;
	return 0;
}

/* A list of strings (each interpolated). */
static int
str_list(struct ctx *x, yaml_node_t *n, const char *what, char ***v, size_t *cnt)
{
	yaml_node_item_t *i;

	if (n->type != YAML_SEQUENCE_NODE)
		return hypr_err_set(x->e, HYPR_EXIT_INPUT, "%s:%ld: %s must be a list",
		    where(x, n), compose_line(n), what);
	for (i = n->data.sequence.items.start; i < n->data.sequence.items.top; i++) {
		char *t;
		if (str_of(x, yaml_document_get_node(x->doc, *i), what, &t) < 0 ||
		    strv_add(v, cnt, t, x->e) < 0)
			return -1;
	}
	return 0;
}

/* A command string split as a POSIX shell splits words (Compose uses
 * shlex): blanks separate, quotes group, a backslash escapes. */
static int
shell_split(struct ctx *x, yaml_node_t *n, const char *s, char ***v, size_t *cnt)
{
	struct compose_sbuf w = { 0 };
	int inword = 0;

	for (;; s++) {
		if (!*s || *s == ' ' || *s == '\t' || *s == '\n') {
			if (inword) {
				if (strv_add(v, cnt, w.p ? w.p : strdup(""), x->e) < 0)
					return -1;
				memset(&w, 0, sizeof w);
				inword = 0;
			}
			if (!*s)
				return 0;
			continue;
		}
		inword = 1;
		if (*s == '\'') {
			const char *e = strchr(s + 1, '\'');
			if (!e)
				goto unbalanced;
			if (compose_sb_add(&w, s + 1, (size_t)(e - s - 1)) < 0 || compose_sb_add(&w, "", 0) < 0)
				return compose_oom(x->e);
			s = e;
		} else if (*s == '"') {
			for (s++; *s && *s != '"'; s++) {
				if (*s == '\\' && s[1] && strchr("\"\\$`\n", s[1]))
					s++;
				if (compose_sb_add(&w, s, 1) < 0)
					return compose_oom(x->e);
			}
			if (!*s)
				goto unbalanced;
			if (compose_sb_add(&w, "", 0) < 0)
				return compose_oom(x->e);
		} else {
			if (*s == '\\' && s[1])
				s++;
			if (compose_sb_add(&w, s, 1) < 0)
				return compose_oom(x->e);
		}
	}
unbalanced:
	free(w.p);
	return hypr_err_set(x->e, HYPR_EXIT_INPUT, "%s:%ld: unbalanced quotes in a command",
	    where(x, n), compose_line(n));
}

static int
cmd_of(struct ctx *x, yaml_node_t *n, const char *what, char ***v, size_t *cnt)
{
	char *t;
	int r;

	if (n->type == YAML_SEQUENCE_NODE)
		return str_list(x, n, what, v, cnt);
	if (str_of(x, n, what, &t) < 0)
		return -1;
	r = shell_split(x, n, t, v, cnt);
	free(t);
	if (r == 0 && !*v)
		r = strv_add(v, cnt, NULL, x->e) < 0 ? -1 : (--*cnt, 0);
	return r;
}

static yaml_node_t *
map_get(struct ctx *x, yaml_node_t *m, const char *key)
{
	yaml_node_pair_t *p;

	if (m->type != YAML_MAPPING_NODE)
		return NULL;
	for (p = m->data.mapping.pairs.start; p < m->data.mapping.pairs.top; p++) {
		const char *k = compose_scalar(yaml_document_get_node(x->doc, p->key));
		if (k && !strcmp(k, key))
			return yaml_document_get_node(x->doc, p->value);
	}
	return NULL;
}

static int
opt_str(struct ctx *x, yaml_node_t *m, const char *key, const char *what, char **out)
{
	yaml_node_t *v = map_get(x, m, key);

	*out = NULL;
	return v ? str_of(x, v, what, out) : 0;
}

/* Warn about each key of a long-syntax item m that hypr does not read
 * (known: NULL-terminated), as about any other key. */
static int
other_keys(struct ctx *x, const struct hypr_compose_service *s, yaml_node_t *m,
    const char *what, const char *const *known)
{
	char at[300];

	snprintf(at, sizeof at, "%s.%s", s->name, what);
	for (yaml_node_pair_t *p = m->data.mapping.pairs.start; p < m->data.mapping.pairs.top; p++) {
		yaml_node_t *k = yaml_document_get_node(x->doc, p->key);
		const char *key = compose_scalar(k);
		int ok = 0;

		for (const char *const *kn = known; key && *kn; kn++)
			ok |= !strcmp(*kn, key);
		if (key && !ok && add_warning(x, k, "services.%s.%s is not supported by hypr; ignored",
		    at, key) < 0)
			return -1;
	}
	return 0;
}

/* ports: "[IP:][HOST:]PORT[/proto]" or {target, published, host_ip, protocol};
 * mode (ingress or host) is swarm's: one VM publishes the same either way. */
static int
parse_ports(struct ctx *x, struct hypr_compose_service *s, yaml_node_t *n)
{
	yaml_node_item_t *i;

	if (n->type != YAML_SEQUENCE_NODE)
		return hypr_err_set(x->e, HYPR_EXIT_INPUT, "%s:%ld: services.%s.ports must be a list",
		    where(x, n), compose_line(n), s->name);
	for (i = n->data.sequence.items.start; i < n->data.sequence.items.top; i++) {
		yaml_node_t *it = yaml_document_get_node(x->doc, *i);
		char *t = NULL, *tg = NULL, *pub = NULL, *ip = NULL, *proto = NULL;
		int r;

		if (it->type != YAML_MAPPING_NODE) {
			if (str_of(x, it, "ports", &t) < 0 || strv_add(&s->ports, &s->nports, t, x->e) < 0)
				return -1;
			continue;
		}
		static const char *const known[] = { "target", "published", "host_ip", "protocol",
			"mode", NULL };

		if (other_keys(x, s, it, "ports", known) < 0)
			return -1;
		if (opt_str(x, it, "target", "ports.target", &tg) < 0 ||
		    opt_str(x, it, "published", "ports.published", &pub) < 0 ||
		    opt_str(x, it, "host_ip", "ports.host_ip", &ip) < 0 ||
		    opt_str(x, it, "protocol", "ports.protocol", &proto) < 0)
			r = -1;
		else if (!tg)
			r = hypr_err_set(x->e, HYPR_EXIT_INPUT, "%s:%ld: services.%s.ports: a target is needed",
			    where(x, it), compose_line(it), s->name);
		else if (asprintf(&t, "%s%s%s%s%s/%s", ip ? ip : "", ip ? ":" : "", pub ? pub : "",
		    pub || ip ? ":" : "", tg, proto ? proto : "tcp") < 0)
			r = compose_oom(x->e);
		else
			r = strv_add(&s->ports, &s->nports, t, x->e);
		free(tg);
		free(pub);
		free(ip);
		free(proto);
		if (r < 0)
			return -1;
	}
	return 0;
}

/* A bind's source as an absolute path: ./x and ../x are the compose
 * file's directory's, ~/x the home directory's. */
static int
abs_source(struct ctx *x, const char *src, char **out)
{
	const char *home = getenv("HOME");

	if (src[0] == '/')
		*out = strdup(src);
	else if (!strcmp(src, "."))
		*out = strdup(x->c->dir);
	else if (src[0] == '~' && (src[1] == '/' || !src[1]) && home)
		return asprintf(out, "%s%s", home, src + 1) < 0 ? compose_oom(x->e) : 0;
	else
		return asprintf(out, "%s/%s", x->c->dir, src[0] == '.' && src[1] == '/' ? src + 2 : src) < 0 ?
		    compose_oom(x->e) : 0;
	return *out ? 0 : compose_oom(x->e);
}

static int
parse_volumes(struct ctx *x, struct hypr_compose_service *s, yaml_node_t *n)
{
	yaml_node_item_t *i;

	if (n->type != YAML_SEQUENCE_NODE)
		return hypr_err_set(x->e, HYPR_EXIT_INPUT, "%s:%ld: services.%s.volumes must be a list",
		    where(x, n), compose_line(n), s->name);
	for (i = n->data.sequence.items.start; i < n->data.sequence.items.top; i++) {
		yaml_node_t *it = yaml_document_get_node(x->doc, *i);
		char *src = NULL, *dst = NULL, *opt = NULL, *type = NULL, *ro = NULL, *abs = NULL, *v;
		int r = 0;

		if (it->type == YAML_MAPPING_NODE) {
			static const char *const known[] = { "type", "source", "target", "read_only",
				NULL };

			if (other_keys(x, s, it, "volumes", known) < 0)
				return -1;
			if (opt_str(x, it, "type", "volumes.type", &type) < 0 ||
			    opt_str(x, it, "source", "volumes.source", &src) < 0 ||
			    opt_str(x, it, "target", "volumes.target", &dst) < 0 ||
			    opt_str(x, it, "read_only", "volumes.read_only", &ro) < 0)
				r = -1;
		} else {
			char *t, *c1, *c2;
			if (str_of(x, it, "volumes", &t) < 0)
				return -1;
			if ((c1 = strchr(t, ':'))) {
				*c1++ = 0;
				if ((c2 = strchr(c1, ':'))) {
					*c2++ = 0;
					opt = strdup(c2);
				}
				src = strdup(t);
				dst = strdup(c1);
			} else {
				dst = strdup(t);
			}
			free(t);
			type = strdup(src && (src[0] == '/' || src[0] == '.' || src[0] == '~') ? "bind" :
			    "volume");
		}
		if (r == 0 && type && !strcmp(type, "volume") && src && *src && dst) {
			/* a named volume: the project's (hypr compose makes it
			 * <project>_NAME, as compose does) */
			int rdonly = (ro && !strcmp(ro, "true")) || (opt && strstr(opt, "ro"));
			if (asprintf(&v, "%s:%s%s", src, dst, rdonly ? ":ro" : "") < 0)
				r = compose_oom(x->e);
			else
				r = strv_add(&s->volumes, &s->nvolumes, v, x->e);
		} else if (r == 0 && (!type || strcmp(type, "bind") || !src || !dst))
			r = add_warning(x, it, "services.%s.volumes: %s volumes are not supported by hypr "
			    "(host directories and named volumes); ignored", s->name,
			    type && strcmp(type, "volume") ? type : "anonymous");
		else if (r == 0 && (r = abs_source(x, src, &abs)) == 0) {
			int rdonly = (ro && !strcmp(ro, "true")) || (opt && strstr(opt, "ro"));
			if (asprintf(&v, "%s:%s%s", abs, dst, rdonly ? ":ro" : "") < 0)
				r = compose_oom(x->e);
			else
				r = strv_add(&s->volumes, &s->nvolumes, v, x->e);
		}
		free(src);
		free(dst);
		free(opt);
		free(type);
		free(ro);
		free(abs);
		if (r < 0)
			return -1;
	}
	return 0;
}

static int
parse_depends(struct ctx *x, struct hypr_compose_service *s, yaml_node_t *n)
{
	if (n->type == YAML_SEQUENCE_NODE) {
		char **v = NULL;
		size_t k = 0;
		if (str_list(x, n, "depends_on", &v, &k) < 0)
			return -1;
		for (size_t i = 0; i < k; i++) {
			char *c = strdup("service_started");
			if (!c || compose_kv_set(&s->depends_on, &s->ndepends_on, v[i], c, x->e) < 0) {
				while (++i < k)
					free(v[i]);
				free(v);
				return c ? -1 : compose_oom(x->e);
			}
		}
		free(v);
		return 0;
	}
	if (n->type == YAML_MAPPING_NODE) {
		yaml_node_pair_t *p;
		for (p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
			yaml_node_t *k = yaml_document_get_node(x->doc, p->key);
			yaml_node_t *v = yaml_document_get_node(x->doc, p->value);
			char *name, *cond = NULL;
			if (str_of(x, k, "depends_on", &name) < 0)
				return -1;
			if (v->type == YAML_MAPPING_NODE) {
				static const char *const known[] = { "condition", "required", NULL };
				char what[300];

				snprintf(what, sizeof what, "depends_on.%s", name);
				if (other_keys(x, s, v, what, known) < 0 || opt_str(x, v, "condition",
				    "depends_on.condition", &cond) < 0) {
					free(name);
					return -1;
				}
			}
			if (!cond && !(cond = strdup("service_started"))) {
				free(name);
				return compose_oom(x->e);
			}
			if (strcmp(cond, "service_started") && strcmp(cond, "service_healthy") &&
			    strcmp(cond, "service_completed_successfully")) {
				hypr_err_set(x->e, HYPR_EXIT_INPUT, "%s:%ld: services.%s.depends_on.%s: "
				    "unknown condition %s", where(x, v), compose_line(v), s->name, name, cond);
				free(name);
				free(cond);
				return -1;
			}
			if (compose_kv_set(&s->depends_on, &s->ndepends_on, name, cond, x->e) < 0)
				return -1;
		}
		return 0;
	}
	return hypr_err_set(x->e, HYPR_EXIT_INPUT, "%s:%ld: services.%s.depends_on must be a list "
	    "or a mapping", where(x, n), compose_line(n), s->name);
}

static int
parse_healthcheck(struct ctx *x, struct hypr_compose_service *s, yaml_node_t *n)
{
	yaml_node_t *t, *d;
	int dis = 0;

	if (n->type != YAML_MAPPING_NODE)
		return hypr_err_set(x->e, HYPR_EXIT_INPUT, "%s:%ld: services.%s.healthcheck must be "
		    "a mapping", where(x, n), compose_line(n), s->name);
	s->has_healthcheck = 1;
	if ((d = map_get(x, n, "disable")) && bool_of(x, d, "healthcheck.disable", &dis) < 0)
		return -1;
	s->hc_disable = dis;
	if ((t = map_get(x, n, "test"))) {
		if (t->type == YAML_SEQUENCE_NODE) {
			char **v = NULL;
			size_t k = 0;
			if (str_list(x, t, "healthcheck.test", &v, &k) < 0)
				return -1;
			if (k && !strcmp(v[0], "NONE")) {
				s->hc_disable = 1;
			} else if (k == 2 && !strcmp(v[0], "CMD-SHELL")) {
				s->hc_test = v[1];
				v[1] = NULL;
			} else if (k >= 2 && !strcmp(v[0], "CMD")) {
				for (size_t i = 1; i < k; i++) {
					if (strv_add(&s->hc_argv, &s->nhc_argv, v[i], x->e) < 0)
						return -1;
					v[i] = NULL;
				}
			} else {
				for (size_t i = 0; i < k; i++)
					free(v[i]);
				free(v);
				return hypr_err_set(x->e, HYPR_EXIT_INPUT, "%s:%ld: services.%s.healthcheck"
				    ".test: want [\"CMD\", ...], [\"CMD-SHELL\", \"...\"] or [\"NONE\"]",
				    where(x, t), compose_line(t), s->name);
			}
			for (size_t i = 0; i < k; i++)
				free(v[i]);
			free(v);
		} else if (str_of(x, t, "healthcheck.test", &s->hc_test) < 0) {
			return -1;
		}
	}
	for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
		yaml_node_t *k = yaml_document_get_node(x->doc, p->key);
		const char *key = compose_scalar(k);
		if (key && strcmp(key, "test") && strcmp(key, "disable") && strcmp(key, "interval") &&
		    strcmp(key, "timeout") && strcmp(key, "start_period") && strcmp(key, "retries") &&
		    add_warning(x, k, "services.%s.healthcheck.%s is not supported by hypr; ignored",
		    s->name, key) < 0)
			return -1;
	}
	if (opt_str(x, n, "interval", "healthcheck.interval", &s->hc_interval) < 0 ||
	    opt_str(x, n, "timeout", "healthcheck.timeout", &s->hc_timeout) < 0 ||
	    opt_str(x, n, "start_period", "healthcheck.start_period", &s->hc_start_period) < 0 ||
	    opt_str(x, n, "retries", "healthcheck.retries", &s->hc_retries) < 0)
		return -1;
	return 0;
}

/* env_file: a path, a list of paths, or of {path, required} */
static int
parse_env_files(struct ctx *x, struct hypr_compose_service *s, yaml_node_t *n)
{
	yaml_node_item_t *i;

	if (n->type == YAML_SCALAR_NODE) {
		char *t, *abs;
		if (str_of(x, n, "env_file", &t) < 0)
			return -1;
		if (abs_source(x, t, &abs) < 0) {
			free(t);
			return -1;
		}
		free(t);
		return compose_kv_set(&s->env_files, &s->nenv_files, abs, strdup("1"), x->e);
	}
	if (n->type != YAML_SEQUENCE_NODE)
		return hypr_err_set(x->e, HYPR_EXIT_INPUT, "%s:%ld: services.%s.env_file must be a "
		    "string or a list", where(x, n), compose_line(n), s->name);
	for (i = n->data.sequence.items.start; i < n->data.sequence.items.top; i++) {
		yaml_node_t *it = yaml_document_get_node(x->doc, *i), *pn = it, *rq;
		char *t, *abs;
		int req = 1;
		if (it->type == YAML_MAPPING_NODE) {
			if (!(pn = map_get(x, it, "path")))
				return hypr_err_set(x->e, HYPR_EXIT_INPUT, "%s:%ld: env_file: a path is "
				    "needed", where(x, it), compose_line(it));
			if ((rq = map_get(x, it, "required")) && bool_of(x, rq, "env_file.required",
			    &req) < 0)
				return -1;
		}
		if (str_of(x, pn, "env_file", &t) < 0)
			return -1;
		if (abs_source(x, t, &abs) < 0) {
			free(t);
			return -1;
		}
		free(t);
		if (compose_kv_set(&s->env_files, &s->nenv_files, abs, req ? strdup("1") : NULL, x->e) < 0)
			return -1;
	}
	return 0;
}

/* Service keys hypr knows and cannot honour (warned). */
static const char *const service_unsupported[] = {
	"cap_add", "cap_drop", "cgroup_parent", "configs", "deploy", "devices", "dns",
	"dns_opt", "dns_search", "domainname", "external_links", "group_add", "ipc",
	"isolation", "links", "logging", "mac_address", "mem_reservation", "mem_swappiness",
	"memswap_limit", "oom_kill_disable", "oom_score_adj", "pid", "pids_limit", "platform",
	"privileged", "read_only", "runtime", "scale", "secrets", "security_opt",
	"shm_size", "stop_grace_period_unused", "storage_opt", "sysctls", "tmpfs", "ulimits",
	"userns_mode", "volumes_from", "cpu_shares", "cpu_quota", "cpu_period", "cpuset",
	"blkio_config", "device_cgroup_rules", "attach", "develop", "annotations", "networks",
	"extends", "credential_spec", "uts", "cpu_count", "cpu_percent", "gpus", NULL
};

static int
parse_service(struct ctx *x, struct hypr_compose_service *s, yaml_node_t *n)
{
	yaml_node_pair_t *p;

	if (n->type != YAML_MAPPING_NODE)
		return hypr_err_set(x->e, HYPR_EXIT_INPUT,
		    "%s:%ld: services.%s must be a mapping", where(x, n), compose_line(n), s->name);
	s->line = compose_line(n);
	for (p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
		yaml_node_t *k = yaml_document_get_node(x->doc, p->key);
		yaml_node_t *v = yaml_document_get_node(x->doc, p->value);
		const char *key = compose_scalar(k);
		int r = 0;

		if (!key)
			return hypr_err_set(x->e, HYPR_EXIT_INPUT,
			    "%s:%ld: a key must be a string", where(x, k), compose_line(k));
		if (!strcmp(key, "image")) {
			r = str_set(x, v, "image", &s->image);
		} else if (!strcmp(key, "build")) {
			r = parse_build(x, s, v);
		} else if (!strcmp(key, "pull_policy")) {
			const char *pp = compose_scalar(v);

			if (pp && (!strcmp(pp, "build") || !strcmp(pp, "never") || !strcmp(pp, "missing")))
				continue;
			r = add_warning(x, k, "services.%s.pull_policy %s: hypr builds every service that "
			    "has build: and never pulls one", s->name, pp ? pp : "?");
		} else if (!strcmp(key, "command")) {
			s->has_command = 1;
			r = cmd_of(x, v, "command", &s->command, &s->ncommand);
		} else if (!strcmp(key, "entrypoint")) {
			s->has_entrypoint = 1;
			r = cmd_of(x, v, "entrypoint", &s->entrypoint, &s->nentrypoint);
		} else if (!strcmp(key, "environment")) {
			r = kv_list(x, v, "environment", &s->environment, &s->nenvironment);
		} else if (!strcmp(key, "env_file")) {
			r = parse_env_files(x, s, v);
		} else if (!strcmp(key, "ports")) {
			r = parse_ports(x, s, v);
		} else if (!strcmp(key, "expose")) {
			r = str_list(x, v, "expose", &s->expose, &s->nexpose);
		} else if (!strcmp(key, "depends_on")) {
			r = parse_depends(x, s, v);
		} else if (!strcmp(key, "restart")) {
			r = str_of(x, v, "restart", &s->restart);
		} else if (!strcmp(key, "volumes")) {
			r = parse_volumes(x, s, v);
		} else if (!strcmp(key, "healthcheck")) {
			r = parse_healthcheck(x, s, v);
		} else if (!strcmp(key, "user")) {
			r = str_of(x, v, "user", &s->user);
		} else if (!strcmp(key, "working_dir")) {
			r = str_of(x, v, "working_dir", &s->working_dir);
		} else if (!strcmp(key, "hostname")) {
			r = str_of(x, v, "hostname", &s->hostname);
		} else if (!strcmp(key, "container_name")) {
			r = str_of(x, v, "container_name", &s->container_name);
		} else if (!strcmp(key, "stop_signal")) {
			r = str_of(x, v, "stop_signal", &s->stop_signal);
		} else if (!strcmp(key, "stop_grace_period")) {
			r = str_of(x, v, "stop_grace_period", &s->stop_grace_period);
		} else if (!strcmp(key, "mem_limit")) {
			r = str_of(x, v, "mem_limit", &s->mem_limit);
		} else if (!strcmp(key, "cpus")) {
			r = str_of(x, v, "cpus", &s->cpus);
		} else if (!strcmp(key, "network_mode")) {
			r = str_of(x, v, "network_mode", &s->network_mode);
			if (r == 0 && strcmp(s->network_mode, "none") && strcmp(s->network_mode, "bridge") &&
			    strcmp(s->network_mode, "default"))
				r = add_warning(x, k, "services.%s.network_mode %s is not supported by hypr "
				    "(none, or the project's user network); ignored", s->name, s->network_mode);
		} else if (!strcmp(key, "tty")) {
			r = bool_of(x, v, "tty", &s->tty);
		} else if (!strcmp(key, "stdin_open")) {
			r = bool_of(x, v, "stdin_open", &s->stdin_open);
		} else if (!strcmp(key, "init")) {
			int ign;
			r = bool_of(x, v, "init", &ign);	/* hypr-init is always PID 1 */
		} else if (!strcmp(key, "labels")) {
			r = kv_list(x, v, "labels", &s->run_labels, &s->nrun_labels);
		} else if (!strcmp(key, "profiles")) {
			r = str_list(x, v, "profiles", &s->profiles, &s->nprofiles);
		} else if (!strcmp(key, "extra_hosts")) {
			if (v->type == YAML_MAPPING_NODE) {
				struct hypr_compose_kv *kv = NULL;
				size_t nkv = 0;
				r = kv_list(x, v, "extra_hosts", &kv, &nkv);
				for (size_t i = 0; r == 0 && i < nkv; i++) {
					char *h;
					if (asprintf(&h, "%s:%s", kv[i].key, kv[i].value ? kv[i].value : "") < 0)
						r = compose_oom(x->e);
					else
						r = strv_add(&s->extra_hosts, &s->nextra_hosts, h, x->e);
				}
				kv_free(kv, nkv);
			} else {
				r = str_list(x, v, "extra_hosts", &s->extra_hosts, &s->nextra_hosts);
			}
		} else if (!strncmp(key, "x-", 2)) {
			continue;	/* an extension: compose ignores it too */
		} else {
			const char *const *u;
			int known = 0;

			for (u = service_unsupported; *u; u++)
				known |= !strcmp(*u, key);
			if (!strcmp(key, "networks"))
				r = add_warning(x, k, "services.%s.networks: hypr gives each project one user "
				    "network (service names resolve on it); ignored", s->name, NULL);
			else
				r = add_warning(x, k, known ? "services.%s.%s is not supported by hypr; ignored" :
				    "services.%s.%s is unknown; ignored", s->name, key);
		}
		if (r < 0)
			return -1;
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

	if (!strcmp(path, "-")) {	/* stdin: the working directory's project */
		if (!getcwd(buf, sizeof buf))
			return hypr_err_errno(e, HYPR_EXIT_SYSTEM, "getcwd");
		return (c->dir = strdup(buf)) ? 0 : compose_oom(e);
	}
	if (!realpath(path, buf))
		return hypr_err_errno(e, HYPR_EXIT_USAGE, "%s", path);
	if ((slash = strrchr(buf, '/')))
		*(slash == buf ? slash + 1 : slash) = 0;
	if (!(c->dir = strdup(buf)))
		return compose_oom(e);
	return 0;
}

/* Load one file as a YAML document whose root is a mapping. */
static int
read_doc(const char *path, const char *fname, yaml_document_t *doc, struct hypr_err *e)
{
	yaml_parser_t parser;
	yaml_node_t *root;
	FILE *f;

	if (!strcmp(path, "-")) {	/* -f -: read once, from stdin */
		static int read_stdin;

		if (read_stdin++)
			return hypr_err_set(e, HYPR_EXIT_USAGE, "-f -: standard input read already");
		f = stdin;
	} else if (!(f = fopen(path, "re"))) {
		return hypr_err_errno(e, errno == ENOENT ? HYPR_EXIT_USAGE :
		    HYPR_EXIT_SYSTEM, "%s", path);
	}
	if (!yaml_parser_initialize(&parser)) {
		if (f != stdin)
			fclose(f);
		return compose_oom(e);
	}
	yaml_parser_set_input_file(&parser, f);
	if (!yaml_parser_load(&parser, doc)) {
		hypr_err_set(e, HYPR_EXIT_INPUT, "%s:%lu: %s%s%s", fname,
		    (unsigned long)parser.problem_mark.line + 1,
		    parser.problem ? parser.problem : "invalid YAML",
		    parser.context ? " " : "", parser.context ? parser.context : "");
		yaml_parser_delete(&parser);
		if (f != stdin)
			fclose(f);
		return -1;
	}
	yaml_parser_delete(&parser);
	if (f != stdin)
		fclose(f);
	root = yaml_document_get_root_node(doc);
	if (!root || root->type != YAML_MAPPING_NODE) {
		yaml_document_delete(doc);
		return hypr_err_set(e, HYPR_EXIT_INPUT, "%s: top level must be a mapping", fname);
	}
	return 0;
}

static int load(struct hypr_compose *c, const struct hypr_compose_opts *o,
    struct hypr_err *e);

#define INCLUDE_DEPTH 16	/* include: in an included file, and so on */
static int include_depth;

/* A string to the list, moved. */
static int
strv_push(char ***v, size_t *n, char *s)
{
	char **nv = realloc(*v, (*n + 1) * sizeof **v);

	if (!nv)
		return -1;
	*v = nv;
	nv[(*n)++] = s;
	return 0;
}

/* One include: path, a project of its own read with the same variables;
 * its services join c's (a name both define is an error, as compose's),
 * its relative build contexts made absolute to its directory. */
static int
include_one(struct ctx *x, yaml_node_t *at, const char *path, struct hypr_compose *into)
{
	struct hypr_compose sub;
	struct hypr_compose_opts so = *x->o;
	const char *files[1];
	char *abs = NULL;
	size_t i, j;
	int r;

	if (path[0] == '/' ? !(abs = strdup(path)) :
	    asprintf(&abs, "%s/%s", x->c->dir, path) < 0)
		return compose_oom(x->e);
	if (include_depth >= INCLUDE_DEPTH) {
		free(abs);
		return hypr_err_set(x->e, HYPR_EXIT_INPUT, "%s:%ld: include: %s: more than %d "
		    "levels (a cycle?)", where(x, at), compose_line(at), path, INCLUDE_DEPTH);
	}
	if (access(abs, F_OK) < 0) {
		/* what the file names is not there: bad input, as a COPY source */
		r = hypr_err_errno(x->e, HYPR_EXIT_INPUT, "%s:%ld: include: %s", where(x, at),
		    compose_line(at), abs);
		free(abs);
		return r;
	}
	files[0] = abs;
	so.files = files;
	so.nfiles = 1;
	include_depth++;
	r = hypr_compose_load_opts(&sub, &so, x->e);
	include_depth--;
	free(abs);
	if (r < 0)
		return hypr_err_prefix(x->e, "%s:%ld: include", where(x, at), compose_line(at));
	r = -1;
	for (i = 0; i < sub.nservices; i++) {
		struct hypr_compose_service *s = &sub.services[i], *ns;
		char *ctx;

		for (j = 0; j < into->nservices; j++)
			if (!strcmp(into->services[j].name, s->name)) {
				hypr_err_set(x->e, HYPR_EXIT_INPUT, "%s:%ld: include: %s: service "
				    "%s is defined twice", where(x, at), compose_line(at), path,
				    s->name);
				goto out;
			}
		if (s->context && s->context[0] != '/') {
			if (asprintf(&ctx, "%s/%s", sub.dir, s->context[0] == '.' &&
			    s->context[1] == '/' ? s->context + 2 : s->context) < 0) {
				compose_oom(x->e);
				goto out;
			}
			free(s->context);
			s->context = ctx;
		}
		if (!(ns = realloc(into->services, (into->nservices + 1) * sizeof *ns))) {
			compose_oom(x->e);
			goto out;
		}
		into->services = ns;
		into->services[into->nservices++] = *s;
		memset(s, 0, sizeof *s);	/* moved: its file stays in into->paths */
	}
	for (i = 0; i < sub.nfiles; i++) {
		size_t n = into->nfiles;
		char **np = realloc(into->paths, (n + 1) * sizeof *np), **nf;

		if (np)
			into->paths = np;
		if (!np || !(nf = realloc(into->fnames, (n + 1) * sizeof *nf))) {
			compose_oom(x->e);
			goto out;
		}
		into->fnames = nf;
		x->fnames = (const char **)nf;	/* where() reads them */
		into->paths[n] = sub.paths[i];
		into->fnames[n] = sub.fnames[i];
		into->nfiles++;
		sub.paths[i] = sub.fnames[i] = NULL;
	}
	for (i = 0; i < sub.nwarnings; i++) {
		if (strv_push(&into->warnings, &into->nwarnings, sub.warnings[i]) < 0) {
			compose_oom(x->e);
			goto out;
		}
		sub.warnings[i] = NULL;
	}
	r = 0;
out:
	hypr_compose_free(&sub);	/* what was not moved */
	return r;
}

/* include: a list of paths, or of mappings with path: (one or a list). */
static int
include_all(struct ctx *x, yaml_node_t *n, struct hypr_compose *into)
{
	yaml_node_item_t *it;

	if (n->type != YAML_SEQUENCE_NODE)
		return hypr_err_set(x->e, HYPR_EXIT_INPUT, "%s:%ld: include must be a list",
		    where(x, n), compose_line(n));
	for (it = n->data.sequence.items.start; it < n->data.sequence.items.top; it++) {
		yaml_node_t *v = yaml_document_get_node(x->doc, *it), *pn = v;
		yaml_node_pair_t *p;
		char *path;
		int r;

		if (v->type == YAML_MAPPING_NODE) {
			pn = NULL;
			for (p = v->data.mapping.pairs.start; p < v->data.mapping.pairs.top; p++) {
				yaml_node_t *k = yaml_document_get_node(x->doc, p->key);
				const char *key = compose_scalar(k);

				if (key && !strcmp(key, "path"))
					pn = yaml_document_get_node(x->doc, p->value);
				else if (add_warning(x, k, "include: %s: not supported by hypr; "
				    "ignored", key ? key : "?", NULL) < 0)
					return -1;
			}
			if (!pn)
				return hypr_err_set(x->e, HYPR_EXIT_INPUT, "%s:%ld: include: no path:",
				    where(x, v), compose_line(v));
		}
		if (pn->type == YAML_SEQUENCE_NODE) {	/* several files: one project */
			yaml_node_item_t *f = pn->data.sequence.items.start;

			if (pn->data.sequence.items.top - f != 1)
				return hypr_err_set(x->e, HYPR_EXIT_INPUT, "%s:%ld: include: a path "
				    "list of several files: not supported by hypr (include each)",
				    where(x, pn), compose_line(pn));
			pn = yaml_document_get_node(x->doc, *f);
		}
		if (str_of(x, pn, "include's path", &path) < 0)
			return -1;
		r = include_one(x, pn, path, into);
		free(path);
		if (r < 0)
			return -1;
	}
	return 0;
}

static int
load(struct hypr_compose *c, const struct hypr_compose_opts *o, struct hypr_err *e)
{
	struct compose_mdoc m = { .e = e };
	yaml_node_t *root, *services = NULL, *include = NULL;
	yaml_node_pair_t *p;
	struct ctx x = { c, &m.d, NULL, e, o, NULL, NULL, 0 };
	int r = -1;
	size_t i;

	memset(c, 0, sizeof *c);
	if (!o->nfiles)
		return hypr_err_set(e, HYPR_EXIT_USAGE, "no compose file");
	if (!(c->file = strdup(o->files[0])))
		return compose_oom(e);
	if (set_dir(c, o->files[0], e) < 0)
		return -1;
	if (!(c->fnames = calloc(o->nfiles, sizeof *c->fnames)) ||
	    !(c->paths = calloc(o->nfiles, sizeof *c->paths)))
		return compose_oom(e);
	c->nfiles = o->nfiles;
	for (i = 0; i < o->nfiles; i++) {
		const char *base = strrchr(o->files[i], '/');

		if (!strcmp(o->files[i], "-"))	/* for messages: "stdin:3: ..." */
			base = "/stdin";
		if (!(c->fnames[i] = strdup(base ? base + 1 : o->files[i])) ||
		    !(c->paths[i] = strdup(o->files[i])))
			return compose_oom(e);
	}
	x.fname = c->fnames[0];
	x.fnames = (const char **)c->fnames;
	if (!yaml_document_initialize(&m.d, NULL, NULL, NULL, 1, 1))
		return compose_oom(e);
	for (i = 0; i < o->nfiles; i++) {
		yaml_document_t doc;
		int ok;

		m.fname = c->fnames[i];
		if (read_doc(o->files[i], c->fnames[i], &doc, e) < 0)
			goto out;
		ok = compose_merge(&m, &doc, (int)i) == 0;
		yaml_document_delete(&doc);
		if (!ok)
			goto out;
	}
	x.nodefile = m.file;
	x.nnodefile = (size_t)(m.d.nodes.top - m.d.nodes.start);
	root = yaml_document_get_root_node(&m.d);
	for (p = root->data.mapping.pairs.start; p < root->data.mapping.pairs.top; p++) {
		yaml_node_t *k = yaml_document_get_node(&m.d, p->key);
		yaml_node_t *v = yaml_document_get_node(&m.d, p->value);
		const char *key = compose_scalar(k);

		if (key && !strcmp(key, "services"))
			services = v;
		else if (key && !strcmp(key, "include"))
			include = v;
		else if (key && !strcmp(key, "name")) {
			if (str_set(&x, v, "name", &c->name) < 0)
				goto out;
		} else if (key && !strcmp(key, "volumes")) {
			/* a service's named volume is <project>_NAME whatever is said
			 * here; options (driver, external, name) are not read */
			if (v->type != YAML_MAPPING_NODE || v->data.mapping.pairs.top !=
			    v->data.mapping.pairs.start) {
				int any = 0;
				for (yaml_node_pair_t *q = v->type == YAML_MAPPING_NODE ?
				    v->data.mapping.pairs.start : NULL; q && q < v->data.mapping.pairs.top; q++) {
					yaml_node_t *d = yaml_document_get_node(&m.d, q->value);
					any |= d && d->type == YAML_MAPPING_NODE &&
					    d->data.mapping.pairs.top != d->data.mapping.pairs.start;
				}
				if ((any || v->type != YAML_MAPPING_NODE) && add_warning(&x, k,
				    "top-level %s: options (driver, external, name) are not read by hypr; "
				    "a service's volume NAME is <project>_NAME%s", key, NULL) < 0)
					goto out;
			}
		} else if (key && (!strcmp(key, "networks") ||
		    !strcmp(key, "configs") || !strcmp(key, "secrets"))) {
			if (add_warning(&x, k, "top-level %s: not supported by hypr%s; ignored", key,
			    !strcmp(key, "networks") ? " (each project has one user network)" : "") < 0)
				goto out;
		} else if (key && !strcmp(key, "version")) {	/* as compose says it */
			if (add_warning(&x, k, "the attribute `%s` is obsolete, it will be ignored, please "
			    "remove it to avoid potential confusion", key, NULL) < 0)
				goto out;
		} else if (!key || strncmp(key, "x-", 2)) {	/* x-*: extensions, for anchors */
			if (add_warning(&x, k, !key ? "a top-level key must be a string; ignored%s" :
			    "top-level %s is unknown; ignored", key ? key : "", NULL) < 0)
				goto out;
		}
	}
	if (services ? services->type != YAML_MAPPING_NODE : !include) {
		hypr_err_set(e, HYPR_EXIT_INPUT, "%s: no services: mapping", x.fname);
		goto out;
	}
	for (p = services ? services->data.mapping.pairs.start : NULL;
	    services && p < services->data.mapping.pairs.top; p++) {
		yaml_node_t *k = yaml_document_get_node(&m.d, p->key);
		yaml_node_t *v = yaml_document_get_node(&m.d, p->value);
		struct hypr_compose_service *s;
		const char *name = compose_scalar(k);

		if (!name || !*name) {
			hypr_err_set(e, HYPR_EXIT_INPUT, "%s:%ld: a service name must be a string",
			    where(&x, k), compose_line(k));
			goto out;
		}
		if (!(s = realloc(c->services, (c->nservices + 1) * sizeof *s))) {
			compose_oom(e);
			goto out;
		}
		c->services = s;
		s += c->nservices++;
		memset(s, 0, sizeof *s);
		if (!(s->name = strdup(name))) {
			compose_oom(e);
			goto out;
		}
		s->file = c->paths[file_of(&x, k)];
		if (parse_service(&x, s, v) < 0)
			goto out;
		s->line = compose_line(k);	/* the service's name */
	}
	if (include && include_all(&x, include, c) < 0)
		goto out;
	r = 0;
out:
	yaml_document_delete(&m.d);
	free(m.file);
	return r;
}

int
hypr_compose_load_opts(struct hypr_compose *c, const struct hypr_compose_opts *o,
    struct hypr_err *e)
{
	if (load(c, o, e) < 0) {
		hypr_compose_free(c);	/* what was read before the error */
		return -1;
	}
	return 0;
}

int
hypr_compose_load(struct hypr_compose *c, const char *path, struct hypr_err *e)
{
	const char *files[1] = { path };
	struct hypr_compose_opts o = { files, 1, NULL, 0 };

	return hypr_compose_load_opts(c, &o, e);
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

static void
strv_free(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
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
		strv_free(s->command, s->ncommand);
		strv_free(s->cache_from, s->ncache_from);
		strv_free(s->cache_to, s->ncache_to);
		strv_free(s->entrypoint, s->nentrypoint);
		strv_free(s->ports, s->nports);
		strv_free(s->expose, s->nexpose);
		strv_free(s->volumes, s->nvolumes);
		strv_free(s->hc_argv, s->nhc_argv);
		strv_free(s->extra_hosts, s->nextra_hosts);
		kv_free(s->environment, s->nenvironment);
		kv_free(s->env_files, s->nenv_files);
		kv_free(s->depends_on, s->ndepends_on);
		kv_free(s->run_labels, s->nrun_labels);
		strv_free(s->profiles, s->nprofiles);
		free(s->restart);
		free(s->hc_test);
		free(s->hc_interval);
		free(s->hc_timeout);
		free(s->hc_start_period);
		free(s->hc_retries);
		free(s->user);
		free(s->working_dir);
		free(s->hostname);
		free(s->container_name);
		free(s->stop_signal);
		free(s->stop_grace_period);
		free(s->mem_limit);
		free(s->cpus);
		free(s->network_mode);
	}
	free(c->services);
	for (i = 0; i < c->nfiles; i++) {
		free(c->fnames ? c->fnames[i] : NULL);
		free(c->paths ? c->paths[i] : NULL);
	}
	free(c->fnames);
	free(c->paths);
	for (i = 0; i < c->nwarnings; i++)
		free(c->warnings[i]);
	free(c->warnings);
	free(c->file);
	free(c->dir);
	free(c->name);
	memset(c, 0, sizeof *c);
}

void
hypr_compose_kv_free(struct hypr_compose_kv *v, size_t n)
{
	kv_free(v, n);
}
