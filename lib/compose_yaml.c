/* compose_yaml.c - `hypr compose config`: the project read by compose.c
 * (merged, interpolated) written back as YAML with libyaml's emitter, keys
 * in the order `docker compose config` prints them (services sorted by
 * name; a service's keys in compose-go's order). Ports, volumes and
 * extra_hosts keep their short form; env_file stays a list of paths. */
#include "compose.h"

#include <stdlib.h>
#include <string.h>
#include <yaml.h>

struct em {
	yaml_emitter_t y;
	int failed;
};

static void
ev(struct em *m, yaml_event_t *e, int ok)
{
	if (m->failed)
		return;
	if (!ok || !yaml_emitter_emit(&m->y, e))
		m->failed = 1;
}

/* A string that YAML would read as a number, a boolean or null is quoted,
 * as compose quotes published: "8080". */
static int
needs_quotes(const char *s)
{
	static const char *const words[] = { "true", "false", "yes", "no", "on", "off", "null",
		"~", "True", "False", "TRUE", "FALSE", "Null", "NULL", "Yes", "No", NULL };
	const char *p = s;

	if (!*s)
		return 1;
	for (const char *const *w = words; *w; w++)
		if (!strcmp(s, *w))
			return 1;
	if (*p == '-' || *p == '+')
		p++;
	if (!*p)
		return 0;
	for (; *p; p++)
		if (!strchr("0123456789.eE_", *p))
			return 0;
	return 1;
}

static void
str(struct em *m, const char *s)
{
	yaml_event_t e;

	ev(m, &e, yaml_scalar_event_initialize(&e, NULL, NULL, (yaml_char_t *)s, -1, 1, 1,
	    needs_quotes(s) ? YAML_DOUBLE_QUOTED_SCALAR_STYLE : YAML_ANY_SCALAR_STYLE));
}

static void
raw(struct em *m, const char *s)	/* null, true, 1: as YAML reads them */
{
	yaml_event_t e;

	ev(m, &e, yaml_scalar_event_initialize(&e, NULL, NULL, (yaml_char_t *)s, -1, 1, 1,
	    YAML_PLAIN_SCALAR_STYLE));
}

static void
map_start(struct em *m)
{
	yaml_event_t e;

	ev(m, &e, yaml_mapping_start_event_initialize(&e, NULL, NULL, 1, YAML_BLOCK_MAPPING_STYLE));
}

static void
seq_start(struct em *m)
{
	yaml_event_t e;

	ev(m, &e, yaml_sequence_start_event_initialize(&e, NULL, NULL, 1,
	    YAML_BLOCK_SEQUENCE_STYLE));
}

static void
map_end(struct em *m)
{
	yaml_event_t e;

	ev(m, &e, yaml_mapping_end_event_initialize(&e));
}

static void
seq_end(struct em *m)
{
	yaml_event_t e;

	ev(m, &e, yaml_sequence_end_event_initialize(&e));
}

/* A value as the loader reads it back: interpolation comes again, so a
 * '$' it left is written '$$' (as `docker compose config` writes it). */
static void
val(struct em *m, const char *v)
{
	size_t n = 0;
	char *d, *o;

	for (const char *p = v; *p; p++)
		n += *p == '$' ? 2 : 1;
	if (n == strlen(v) || !(d = malloc(n + 1))) {
		str(m, v);
		return;
	}
	o = d;
	for (const char *p = v; *p; p++) {
		if (*p == '$')
			*o++ = '$';
		*o++ = *p;
	}
	*o = 0;
	str(m, d);
	free(d);
}

static void
kstr(struct em *m, const char *k, const char *v)
{
	if (!v)
		return;
	str(m, k);
	val(m, v);
}

static void
kbool(struct em *m, const char *k, int v)
{
	if (!v)
		return;
	str(m, k);
	raw(m, "true");
}

static void
kseq(struct em *m, const char *k, char **v, size_t n, int always)
{
	if (!n && !always)
		return;
	str(m, k);
	seq_start(m);
	for (size_t i = 0; i < n; i++)
		val(m, v[i]);
	seq_end(m);
}

static int
kv_cmp(const void *a, const void *b)
{
	return strcmp(((const struct hypr_compose_kv *)a)->key,
	    ((const struct hypr_compose_kv *)b)->key);
}

/* A mapping sorted by key; a NULL value is the environment's, else null. */
static void
kmap(struct em *m, const char *k, const struct hypr_compose_kv *v, size_t n, int from_env)
{
	struct hypr_compose_kv *s;

	if (!n)
		return;
	if (!(s = malloc(n * sizeof *s))) {
		m->failed = 1;
		return;
	}
	memcpy(s, v, n * sizeof *s);
	qsort(s, n, sizeof *s, kv_cmp);
	str(m, k);
	map_start(m);
	for (size_t i = 0; i < n; i++) {
		const char *x = s[i].value;

		if (!x && from_env)
			x = getenv(s[i].key);
		str(m, s[i].key);
		if (x)
			val(m, x);
		else
			raw(m, "null");
	}
	map_end(m);
	free(s);
}

static void
build(struct em *m, const struct hypr_compose_service *s, const char *dir)
{
	char *ctx = NULL;

	if (!s->has_build)
		return;
	str(m, "build");
	map_start(m);
	if (s->context[0] == '/' || asprintf(&ctx, "%s%s%s", dir, strcmp(s->context, ".") ? "/" : "",
	    strcmp(s->context, ".") ? (s->context[0] == '.' && s->context[1] == '/' ?
	    s->context + 2 : s->context) : "") < 0)
		ctx = NULL;
	kstr(m, "context", ctx ? ctx : s->context);
	free(ctx);
	if (!s->dockerfile_inline)
		kstr(m, "dockerfile", s->dockerfile ? s->dockerfile : "Dockerfile");
	kstr(m, "dockerfile_inline", s->dockerfile_inline);
	kmap(m, "args", s->args, s->nargs, 1);
	kseq(m, "cache_from", s->cache_from, s->ncache_from, 0);
	kseq(m, "cache_to", s->cache_to, s->ncache_to, 0);
	kmap(m, "labels", s->labels, s->nlabels, 0);
	kbool(m, "no_cache", s->no_cache);
	kbool(m, "pull", s->pull);
	kstr(m, "target", s->target);
	kseq(m, "tags", s->tags, s->ntags, 0);
	map_end(m);
}

static void
healthcheck(struct em *m, const struct hypr_compose_service *s)
{
	if (!s->has_healthcheck)
		return;
	str(m, "healthcheck");
	map_start(m);
	if (s->hc_test || s->nhc_argv) {
		str(m, "test");
		seq_start(m);
		if (s->hc_test) {
			str(m, "CMD-SHELL");
			val(m, s->hc_test);
		} else {
			str(m, "CMD");
			for (size_t i = 0; i < s->nhc_argv; i++)
				val(m, s->hc_argv[i]);
		}
		seq_end(m);
	}
	kstr(m, "timeout", s->hc_timeout);
	kstr(m, "interval", s->hc_interval);
	if (s->hc_retries) {
		str(m, "retries");
		raw(m, s->hc_retries);
	}
	kstr(m, "start_period", s->hc_start_period);
	kbool(m, "disable", s->hc_disable);
	map_end(m);
}

static void
service(struct em *m, const struct hypr_compose_service *s, const char *dir)
{
	str(m, s->name);
	map_start(m);
	kseq(m, "profiles", s->profiles, s->nprofiles, 0);
	build(m, s, dir);
	if (s->has_command)
		kseq(m, "command", s->command, s->ncommand, 1);
	kstr(m, "container_name", s->container_name);
	kstr(m, "cpus", s->cpus);
	if (s->ndepends_on) {
		str(m, "depends_on");
		map_start(m);
		for (size_t i = 0; i < s->ndepends_on; i++) {
			str(m, s->depends_on[i].key);
			map_start(m);
			kstr(m, "condition", s->depends_on[i].value);
			str(m, "required");
			raw(m, "true");
			map_end(m);
		}
		map_end(m);
	}
	if (s->has_entrypoint)
		kseq(m, "entrypoint", s->entrypoint, s->nentrypoint, 1);
	kmap(m, "environment", s->environment, s->nenvironment, 1);
	if (s->nenv_files) {
		str(m, "env_file");
		seq_start(m);
		for (size_t i = 0; i < s->nenv_files; i++)
			str(m, s->env_files[i].key);
		seq_end(m);
	}
	kseq(m, "expose", s->expose, s->nexpose, 0);
	kseq(m, "extra_hosts", s->extra_hosts, s->nextra_hosts, 0);
	healthcheck(m, s);
	kstr(m, "hostname", s->hostname);
	kstr(m, "image", s->image);
	kmap(m, "labels", s->run_labels, s->nrun_labels, 0);
	kstr(m, "mem_limit", s->mem_limit);
	kstr(m, "network_mode", s->network_mode);
	kseq(m, "ports", s->ports, s->nports, 0);
	kstr(m, "restart", s->restart);
	kbool(m, "stdin_open", s->stdin_open);
	kstr(m, "stop_grace_period", s->stop_grace_period);
	kstr(m, "stop_signal", s->stop_signal);
	kbool(m, "tty", s->tty);
	kstr(m, "user", s->user);
	kseq(m, "volumes", s->volumes, s->nvolumes, 0);
	kstr(m, "working_dir", s->working_dir);
	map_end(m);
}

static int
svc_cmp(const void *a, const void *b)
{
	return strcmp((*(const struct hypr_compose_service *const *)a)->name,
	    (*(const struct hypr_compose_service *const *)b)->name);
}

int
hypr_compose_write_yaml(FILE *f, const struct hypr_compose *c, const char *project,
    const int *want, struct hypr_err *e)
{
	const struct hypr_compose_service **v;
	struct em m = { 0 };
	yaml_event_t ev_;
	size_t n = 0;

	if (!(v = calloc(c->nservices + 1, sizeof *v)))
		return hypr_err_set(e, HYPR_EXIT_SYSTEM, "out of memory");
	for (size_t i = 0; i < c->nservices; i++)
		if (!want || want[i])
			v[n++] = &c->services[i];
	qsort(v, n, sizeof *v, svc_cmp);
	if (!yaml_emitter_initialize(&m.y)) {
		free(v);
		return hypr_err_set(e, HYPR_EXIT_SYSTEM, "out of memory");
	}
	yaml_emitter_set_output_file(&m.y, f);
	yaml_emitter_set_unicode(&m.y, 1);
	yaml_emitter_set_width(&m.y, -1);
	yaml_emitter_set_indent(&m.y, 2);
	ev(&m, &ev_, yaml_stream_start_event_initialize(&ev_, YAML_UTF8_ENCODING));
	ev(&m, &ev_, yaml_document_start_event_initialize(&ev_, NULL, NULL, NULL, 1));
	map_start(&m);
	kstr(&m, "name", project);
	str(&m, "services");
	map_start(&m);
	for (size_t i = 0; i < n; i++)
		service(&m, v[i], c->dir);
	map_end(&m);
	map_end(&m);
	ev(&m, &ev_, yaml_document_end_event_initialize(&ev_, 1));
	ev(&m, &ev_, yaml_stream_end_event_initialize(&ev_));
	yaml_emitter_delete(&m.y);
	free(v);
	if (m.failed)
		return hypr_err_set(e, HYPR_EXIT_SYSTEM, "writing YAML: %s",
		    m.y.problem ? m.y.problem : "the emitter failed");
	return 0;
}
