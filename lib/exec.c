/* exec.c - the engine's stage loop: the plan read, each stage begun from
 * its base (an image, an earlier stage, scratch), its ONBUILD triggers and
 * instructions run in order, one steps record each. The rooms: exec_config
 * (config instructions), exec_copy (COPY, ADD), exec_run (RUN in the VM),
 * exec_mount (RUN --mount, --network), exec_tree (a layer chain's tree),
 * exec_layer (layer tars built on the host), exec_cache (cache keys). */
#include "exec.h"
#include "exec_int.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fsutil.h"
#include "oci.h"

/* Bytes of the instruction an error line shows, so the reason after it
 * always fits the message (a 200 KB RUN is cut). */
#define INSTR_CLIP 200

static const char *const known_needs[] = { NULL };

struct stage *
stage_by_index(struct ctx *c, int index)
{
	for (size_t i = 0; i < c->nstages; i++)
		if (c->stages[i].index == index)
			return &c->stages[i];
	return NULL;
}

int
stage_layer_digests(struct stage *st, const char ***v, size_t *n,
    struct hypr_err *e)
{
	size_t k = json_array_size(st->layers), i;
	json_t *x;

	if ((*v = calloc(k + 1, sizeof(**v))) == NULL)
		return hypr_err_set(e, HYPR_EXIT_SYSTEM, "out of memory");
	json_array_foreach(st->layers, i, x)
		(*v)[i] = hypr_json_str(x, "digest");
	*n = k;
	return 0;
}

void
exec_warn(struct ctx *c, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	hypr_events_say(c->ev, HYPR_EV_WARNING, 0, 0, "%s", msg);
}

/* The instruction on one line, for messages; clip > 0 cuts it after about
 * clip bytes (not inside a UTF-8 sequence) and adds "...". */
static char *
one_line(json_t *instr, size_t clip)
{
	const char *o = hypr_json_str(instr, "original");
	char *s = strdup(o ? o : hypr_json_str(instr, "op") ? hypr_json_str(instr, "op") : "?");

	for (char *p = s; p && *p; p++)
		if (*p == '\n' || *p == '\r' || *p == '\t')
			*p = ' ';
	if (s && clip > 0 && strlen(s) > clip + 3) {
		size_t k = clip;

		while (k > 0 && ((unsigned char)s[k] & 0xc0) == 0x80)
			k--;
		memcpy(s + k, "...", 4);
	}
	return s;
}

static const char *
dockerfile_name(struct ctx *c)
{
	return c->dockerfile ? c->dockerfile : "Dockerfile";
}

int
instr_err(struct hypr_err *e, struct ctx *c, json_t *instr, int code,
    const char *fmt, ...)
{
	char raw[900], what[900], *ins = one_line(instr, INSTR_CLIP);
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(raw, sizeof(raw), fmt, ap);
	va_end(ap);
	/* a file name from the context or an archive may hold any byte */
	hypr_escape(raw, strlen(raw), what, sizeof(what));
	hypr_err_set(e, code, "%s:%lld: %s: %s", dockerfile_name(c),
	    (long long)json_integer_value(json_array_get(json_object_get(instr, "line"), 0)),
	    ins ? ins : "?", what);
	free(ins);
	return -1;
}

/* A base image's layer that is refused (a hostile path, a hard link out)
 * is the fault of the FROM line that named the image, not of the step
 * that first unpacked it: e ("... layer sha256:...: why") is made to name
 * that FROM line. 0 if e is about no base image's layer. */
static int
base_layer_err(struct ctx *c, struct hypr_err *e)
{
	for (size_t i = 0; e->code == HYPR_EXIT_INPUT && i < c->nstages; i++) {
		struct stage *s = &c->stages[i];
		json_t *l;
		size_t k;

		if (!json_is_object(s->image))
			continue;
		json_array_foreach(json_object_get(s->image, "layers"), k, l) {
			const char *d = hypr_json_str(l, "digest"), *at;
			char msg[sizeof(e->msg)];

			if (d == NULL || (at = strstr(e->msg, d)) == NULL ||
			    at < e->msg + 6 || strncmp(at - 6, "layer ", 6) != 0)
				continue;
			snprintf(msg, sizeof(msg), "base image %s", at - 6);
			instr_err(e, c, s->rec, HYPR_EXIT_INPUT, "%s", msg);
			return 1;
		}
	}
	return 0;
}

static int
read_plan(struct ctx *c, FILE *f, struct hypr_err *e)
{
	struct hypr_stream_in in;
	json_t *rec, *d;
	int r;

	if (hypr_stream_open(&in, f, "resolved", "resolved", 1, known_needs, e) < 0)
		return -1;
	c->header = json_incref(in.header);
	c->build_args = json_object_get(c->header, "build_args");
	if (!json_is_object(c->build_args))
		c->build_args = json_object();
	else
		json_incref(c->build_args);
	c->dockerfile = hypr_json_str(c->header, "dockerfile");
	c->platform = hypr_json_str(c->header, "platform");
	d = json_object_get(c->header, "directives");
	c->escape = hypr_json_str(d, "escape") && hypr_json_str(d, "escape")[0] == '`' ?
	    '`' : '\\';
	while ((r = hypr_stream_next(&in, &rec, e)) == 1) {
		const char *type = hypr_json_str(rec, "type");

		if (type && strcmp(type, "arg") == 0) {
			const char *k = hypr_json_str(rec, "name");
			const char *v = hypr_json_str(rec, "value");

			if (k && v)
				hypr_vars_set(&c->global_args, k, v);
		} else if (type && strcmp(type, "stage") == 0) {
			struct stage *ns = realloc(c->stages,
			    (c->nstages + 1) * sizeof(*ns)), *st;

			if (ns == NULL) {
				json_decref(rec);
				hypr_stream_close(&in);
				return hypr_err_set(e, HYPR_EXIT_SYSTEM, "out of memory");
			}
			c->stages = ns;
			st = &c->stages[c->nstages++];
			memset(st, 0, sizeof(*st));
			st->rec = json_incref(rec);
			st->index = (int)hypr_json_int(rec, "index", (json_int_t)c->nstages - 1);
			st->name = hypr_json_str(rec, "name");
			st->final = json_is_true(json_object_get(rec, "final"));
			st->instrs = json_array();
			st->image = json_object_get(rec, "image");
		} else if (type && strcmp(type, "instr") == 0) {
			struct stage *st = stage_by_index(c,
			    (int)hypr_json_int(rec, "stage", -1));

			if (st == NULL) {
				hypr_err_set(e, HYPR_EXIT_INPUT,
				    "resolved:%ld: instruction for unknown stage", in.line);
				json_decref(rec);
				hypr_stream_close(&in);
				return -1;
			}
			if (hypr_json_str(rec, "op") == NULL) {
				hypr_err_set(e, HYPR_EXIT_INPUT,
				    "resolved:%ld: instruction without op", in.line);
				json_decref(rec);
				hypr_stream_close(&in);
				return -1;
			}
			json_array_append(st->instrs, rec);
		}
		json_decref(rec);
	}
	hypr_stream_close(&in);
	if (r < 0)
		return -1;
	if (c->nstages == 0)
		return hypr_err_set(e, HYPR_EXIT_INPUT, "resolved: no stage to build");
	return 0;
}

/* Start a stage from its base: an image (config blob in the store), an
 * earlier stage, or scratch. */
static int
stage_begin(struct ctx *c, struct stage *st, json_t **base_out, struct hypr_err *e)
{
	json_t *bs = json_object_get(st->rec, "base_stage");
	const char *base = hypr_json_str(st->rec, "base");

	*base_out = json_null();
	if (json_is_integer(bs)) {
		struct stage *src = stage_by_index(c, (int)json_integer_value(bs));

		if (src == NULL || !src->done)
			return hypr_err_set(e, HYPR_EXIT_INPUT,
			    "stage %d: base stage %lld not built before", st->index,
			    (long long)json_integer_value(bs));
		st->config = json_deep_copy(src->config);
		st->layers = json_deep_copy(src->layers);
		memcpy(st->base_key, src->key, sizeof(st->base_key));
		if (src->author)
			st->author = strdup(src->author);
		if (src->image)
			*base_out = json_pack("{s:O?,s:O?}", "ref",
			    json_object_get(src->image, "ref"), "digest",
			    json_object_get(src->image, "digest"));
	} else if (json_is_object(st->image)) {
		const char *cfgd = hypr_json_str(st->image, "config");
		const char *md = hypr_json_str(st->image, "digest");
		json_t *layers = json_object_get(st->image, "layers");
		json_t *diffs = json_object_get(st->image, "diff_ids"), *x, *cfg;
		char *text = NULL;
		size_t len, i;

		if (cfgd == NULL || md == NULL || !hypr_digest_valid(md))
			return hypr_err_set(e, HYPR_EXIT_INPUT,
			    "stage %d: image record without config or digest", st->index);
		if (hypr_blob_read(&c->root, cfgd, HYPR_OCI_CONFIG_MAX, &text, &len, e) < 0)
			return hypr_err_prefix(e, "stage %d: base image config", st->index);
		cfg = json_loadb(text, len, 0, NULL);
		free(text);
		if (!json_is_object(cfg))
			return hypr_err_set(e, HYPR_EXIT_INPUT,
			    "stage %d: base image config %s is not JSON", st->index, cfgd);
		st->config = json_object_get(cfg, "config");
		st->config = json_is_object(st->config) ? json_deep_copy(st->config) :
		    json_object();
		if (json_is_string(json_object_get(cfg, "author")))
			st->author = strdup(hypr_json_str(cfg, "author"));
		json_decref(cfg);
		st->layers = json_array();
		json_array_foreach(layers, i, x) {
			const char *d = hypr_json_str(x, "digest");
			const char *di = json_string_value(json_array_get(diffs, i));

			if (d == NULL || !hypr_digest_valid(d))
				return hypr_err_set(e, HYPR_EXIT_INPUT,
				    "stage %d: bad layer digest", st->index);
			if (di != NULL) {
				/* nothing unverified is used: hypr-fetch recorded what
				 * the layer decompresses to; a stream from elsewhere
				 * (an older hypr-fetch) gets it computed once here */
				char got[HYPR_DIGEST_LEN + 1], msg[sizeof(e->msg)];

				if (hypr_diffid_get(&c->root, d, UINT64_MAX, got, e) < 0) {
					memcpy(msg, e->msg, sizeof(msg));
					return instr_err(e, c, st->rec, e->code, "base image %s",
					    msg);
				}
				if (strcmp(got, di) != 0)
					return instr_err(e, c, st->rec, HYPR_EXIT_INPUT,
					    "base image layer %s: diff_id mismatch: the config "
					    "says %s, the layer decompresses to %s", d, di, got);
			}
			json_array_append_new(st->layers, json_pack("{s:s,s:s,s:O,s:s}",
			    "digest", d, "diff_id", di ? di : d, "size",
			    json_object_get(x, "size") ? json_object_get(x, "size") :
			    json_integer(0), "media_type", hypr_json_str(x, "media_type") ?
			    hypr_json_str(x, "media_type") :
			    "application/vnd.oci.image.layer.v1.tar+gzip"));
		}
		memcpy(st->base_key, md, HYPR_DIGEST_LEN + 1);
		*base_out = json_pack("{s:O?,s:s}", "ref",
		    json_object_get(st->image, "ref"), "digest", md);
	} else if (base && strcmp(base, "scratch") == 0) {
		static const char scratch[] = "hypr-exec: FROM scratch, PATH";

		/* BuildKit's empty image has the default PATH */
		st->config = json_pack("{s:[s]}", "Env",
		    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
		st->layers = json_array();
		if (hypr_digest_buf(scratch, sizeof(scratch) - 1, st->base_key, e) < 0)
			return -1;
	} else {
		return hypr_err_set(e, HYPR_EXIT_INPUT,
		    "stage %d: base image '%s' not resolved (pipe the plan through hypr-fetch)",
		    st->index, base ? base : "?");
	}
	st->nbase = json_array_size(st->layers);
	memcpy(st->key, st->base_key, sizeof(st->key));
	return 0;
}

/* The config travels once per stage (its last step), not per step: N ENV
 * lines made an N-squared stream (hypr-steps(5), version 2). */
static int
write_step(struct ctx *c, struct stage *st, struct step *s, int n, int last,
    struct hypr_err *e)
{
	json_t *line = json_object_get(s->instr, "line");
	json_t *rec = json_pack("{s:s,s:i,s:i,s:O,s:s,s:s,s:s,s:b,s:O,s:b}",
	    "type", "step", "stage", st->index, "n", n, "line",
	    line ? line : json_null(), "op", s->op, "created_by",
	    s->created_by ? s->created_by : s->op, "key", s->key, "cached", s->cached,
	    "layer", s->layer ? s->layer : json_null(),
	    "empty_layer", s->layer == NULL);
	int r;

	if (rec == NULL)
		return hypr_err_set(e, HYPR_EXIT_SYSTEM, "out of memory");
	if (last && json_object_set(rec, "config", st->config) < 0) {
		json_decref(rec);
		return hypr_err_set(e, HYPR_EXIT_SYSTEM, "out of memory");
	}
	if (st->author)
		json_object_set_new(rec, "author", json_string(st->author));
	r = hypr_stream_put(&c->out, rec, e);
	json_decref(rec);
	return r;
}

static int
do_step(struct ctx *c, struct stage *st, json_t *instr, int n, int total,
    struct hypr_err *e)
{
	struct step s = { .st = st, .instr = instr };
	struct timespec t0, t1;
	char *ins = one_line(instr, 0);
	int r = -1;

	s.op = hypr_json_str(instr, "op");
	c->stepno++;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	{
		json_t *l = json_object_get(instr, "line");
		const char *text = ins ? ins : s.op;

		hypr_events_put(c->ev, &(struct hypr_event){ .type = HYPR_EV_STEP,
		    .n = c->stepno, .name = st->name, .pos = n, .count = total,
		    .line = { (long)json_integer_value(json_array_get(l, 0)),
		    (long)json_integer_value(json_array_get(l, 1)) },
		    .text = text, .len = strlen(text) });
	}
	if (strcmp(s.op, "RUN") == 0) {
		r = run_step(c, st, instr, &s, e);
		if (r < 0 && e->code == HYPR_EXIT_STEP)
			instr_err(e, c, instr, HYPR_EXIT_STEP, "%s", e->msg);
	} else if (strcmp(s.op, "COPY") == 0 || strcmp(s.op, "ADD") == 0) {
		r = copy_step(c, st, instr, &s, e);
	} else if (config_is_op(s.op)) {
		json_t *exp = NULL;

		r = config_apply(c, st, instr, &exp, &s.created_by, e);
		if (r == 0)
			r = cache_key(c, st, instr, exp, NULL, s.key, e);
		if (r == 0 && !cache_lookup(c, &s) && strcmp(s.op, "WORKDIR") == 0) {
			r = workdir_layer(c, st, hypr_json_str(st->config, "WorkingDir"),
			    &s.layer, e);
		}
		json_decref(exp);
	} else {
		r = hypr_err_set(e, HYPR_EXIT_INPUT, "unknown instruction");
	}
	if (r < 0) {
		if ((strncmp(e->msg, dockerfile_name(c), strlen(dockerfile_name(c))) != 0 ||
		    e->msg[strlen(dockerfile_name(c))] != ':') && !base_layer_err(c, e)) {
			char msg[sizeof(e->msg)];

			memcpy(msg, e->msg, sizeof(msg));
			instr_err(e, c, instr, e->code ? e->code : HYPR_EXIT_SYSTEM, "%s", msg);
		}
		goto out;
	}
	if (s.layer) {
		json_array_append(st->layers, s.layer);
		if (s.in_vm)
			st->imported = json_array_size(st->layers);
	}
	memcpy(st->key, s.key, sizeof(st->key));
	if (write_step(c, st, &s, n, n == total, e) < 0)
		goto out;
	clock_gettime(CLOCK_MONOTONIC, &t1);
	if (s.cached)
		hypr_events_put(c->ev, &(struct hypr_event){ .type = HYPR_EV_CACHED,
		    .n = c->stepno });
	else
		hypr_events_put(c->ev, &(struct hypr_event){ .type = HYPR_EV_DONE,
		    .n = c->stepno, .seconds = (double)(t1.tv_sec - t0.tv_sec) +
		    (double)(t1.tv_nsec - t0.tv_nsec) / 1e9 });
	r = 0;
out:
	free(ins);
	free(s.created_by);
	json_decref(s.layer);
	return r;
}

/* ONBUILD triggers of the base image run right after FROM, as Docker does:
 * the trigger lines go through hypr-parse like any Dockerfile text. */
static int
onbuild_instrs(struct ctx *c, struct stage *st, json_t **out, struct hypr_err *e)
{
	json_t *ob = json_object_get(st->config, "OnBuild"), *x, *rec;
	char df[HYPR_PATH_BUF], plan[HYPR_PATH_BUF];
	const char *parse = getenv("HYPR_PARSE");
	FILE *f;
	size_t i;
	int rc = -1, status;

	*out = json_array();
	if (json_array_size(ob) == 0) {
		json_object_del(st->config, "OnBuild");
		return 0;
	}
	if (hypr_root_tmp(&c->root, df, sizeof(df), e, "onbuild.Dockerfile") < 0 ||
	    hypr_root_tmp(&c->root, plan, sizeof(plan), e, "onbuild.plan") < 0)
		return -1;
	if ((f = fopen(df, "we")) == NULL)
		return hypr_err_errno(e, HYPR_EXIT_SYSTEM, "creating %s", df);
	fputs("FROM scratch\n", f);
	json_array_foreach(ob, i, x)
		fprintf(f, "%s\n", json_string_value(x) ? json_string_value(x) : "");
	if (fclose(f) != 0) {
		unlink(df);
		return hypr_err_errno(e, HYPR_EXIT_SYSTEM, "writing %s", df);
	}
	{
		pid_t pid = fork();

		if (pid == 0) {
			FILE *o = freopen(plan, "w", stdout);

			(void)o;
			execlp(parse && *parse ? parse : "hypr-parse",
			    parse && *parse ? parse : "hypr-parse", "-f", df, (char *)NULL);
			_exit(127);
		}
		if (pid < 0 || waitpid(pid, &status, 0) < 0) {
			unlink(df);
			return hypr_err_errno(e, HYPR_EXIT_SYSTEM, "running hypr-parse");
		}
	}
	unlink(df);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		unlink(plan);
		return hypr_err_set(e, HYPR_EXIT_INPUT,
		    "stage %d: the base image's ONBUILD triggers do not parse", st->index);
	}
	if ((f = fopen(plan, "re")) != NULL) {
		struct hypr_stream_in in;
		int r;

		if (hypr_stream_open(&in, f, "onbuild plan", "plan", 1, NULL, e) == 0) {
			while ((r = hypr_stream_next(&in, &rec, e)) == 1) {
				if (hypr_json_str(rec, "type") &&
				    strcmp(hypr_json_str(rec, "type"), "instr") == 0) {
					json_object_set_new(rec, "stage", json_integer(st->index));
					json_object_set(rec, "line", json_object_get(st->rec, "line"));
					json_array_append(*out, rec);
				}
				json_decref(rec);
			}
			rc = r < 0 ? -1 : 0;
			hypr_stream_close(&in);
		}
		fclose(f);
	} else {
		hypr_err_errno(e, HYPR_EXIT_SYSTEM, "reading %s", plan);
	}
	unlink(plan);
	json_object_del(st->config, "OnBuild");
	return rc;
}

static int
run_stage(struct ctx *c, struct stage *st, int last, struct hypr_err *e)
{
	json_t *base = NULL, *rec, *trig = NULL, *all, *x;
	size_t i, total;
	int r = -1;

	if (stage_begin(c, st, &base, e) < 0)
		return -1;
	if (onbuild_instrs(c, st, &trig, e) < 0) {
		json_decref(base);
		json_decref(trig);
		return -1;
	}
	rec = json_pack("{s:s,s:i,s:O?,s:b,s:O,s:O,s:O}", "type", "stage",
	    "index", st->index, "name", json_object_get(st->rec, "name"),
	    "final", st->final, "base", base, "base_layers", st->layers,
	    "config", st->config);
	json_decref(base);
	if (rec == NULL) {
		json_decref(trig);
		return hypr_err_set(e, HYPR_EXIT_SYSTEM, "out of memory");
	}
	r = hypr_stream_put(&c->out, rec, e);
	json_decref(rec);
	/* "base_layers" above must not grow with the steps. */
	{
		json_t *copy = json_deep_copy(st->layers);

		json_decref(st->layers);
		st->layers = copy;
	}
	if (r < 0) {
		json_decref(trig);
		return -1;
	}
	all = json_array();
	json_array_extend(all, trig);
	json_array_extend(all, st->instrs);
	total = json_array_size(all);
	st->all = all;
	if (json_array_size(trig) > 0) {
		/* the base image's triggers are steps the plan did not show */
		c->nsteps += (int)json_array_size(trig);
		hypr_events_put(c->ev, &(struct hypr_event){ .type = HYPR_EV_PLAN,
		    .steps = c->nsteps });
	}
	json_decref(trig);
	json_array_foreach(all, i, x) {
		st->pos = i;
		if ((r = do_step(c, st, x, (int)i + 1, (int)total, e)) < 0)
			break;
	}
	st->all = NULL;
	json_decref(all);
	/* The last stage's VM is stopped after the end record is out, so the
	 * next stages of the pipeline need not wait for its shutdown. */
	if (!last || r < 0)
		run_stop(c, st);
	if (r == 0)
		st->done = 1;
	return r;
}

static int
write_end(struct ctx *c, struct hypr_err *e)
{
	json_t *end = json_pack("{s:b,s:I,s:i}", "end", 1, "records",
	    (json_int_t)c->out.records, "vm_boots", c->vm_boots);

	if (end == NULL)
		return hypr_err_set(e, HYPR_EXIT_SYSTEM, "out of memory");
	if (json_dumpf(end, c->out.f, JSON_COMPACT | JSON_PRESERVE_ORDER) < 0 ||
	    fputc('\n', c->out.f) == EOF || fflush(c->out.f) == EOF) {
		json_decref(end);
		return hypr_err_errno(e, HYPR_EXIT_SYSTEM, "writing stream");
	}
	json_decref(end);
	return 0;
}

/* The build args an image records: not the proxy variables, which may
 * carry credentials and never reach the config (docker's rule). */
static json_t *
recorded_args(json_t *args)
{
	json_t *out = json_object(), *v;
	const char *k;

	json_object_foreach(args, k, v)
		if (!arg_is_proxy(k))
			json_object_set(out, k, v);
	return out;
}

static int
add_host(struct ctx *c, const char *spec, struct hypr_err *e)
{
	/* NAME:IP, the IP may be IPv6; host-gateway is the host */
	const char *colon = strchr(spec, ':');
	char *line, **nh;

	if (!colon || colon == spec || !colon[1])
		return hypr_err_set(e, HYPR_EXIT_USAGE, "--add-host %s: want NAME:IP", spec);
	if (asprintf(&line, "%s %.*s", !strcmp(colon + 1, "host-gateway") ? "10.0.2.2" :
	    colon + 1, (int)(colon - spec), spec) < 0)
		return hypr_err_set(e, HYPR_EXIT_SYSTEM, "out of memory");
	if (!(nh = realloc(c->hosts, (c->nhosts + 2) * sizeof *nh))) {
		free(line);
		return hypr_err_set(e, HYPR_EXIT_SYSTEM, "out of memory");
	}
	c->hosts = nh;
	c->hosts[c->nhosts++] = line;
	c->hosts[c->nhosts] = NULL;
	return 0;
}

int
hypr_exec_open(struct hypr_exec **out, const struct hypr_exec_opts *o, FILE *in,
    struct hypr_err *e)
{
	struct ctx *c = calloc(1, sizeof *c);
	const char *s;
	struct stat sb;

	*out = NULL;
	if (c == NULL)
		return hypr_err_set(e, HYPR_EXIT_SYSTEM, "out of memory");
	*out = (struct hypr_exec *)c;
	c->epoch = -1;
	c->no_cache = o->no_cache;
	c->network = o->network;
	c->disk = o->disk;
	c->ev = o->events;
	for (char *const *h = o->add_hosts; h && *h; h++)
		if (add_host(c, *h, e) < 0)
			return -1;
	for (char *const *k = o->secrets; k && *k; k++)
		if (secret_add(c, *k, e) < 0)
			return -1;
	if ((s = getenv("SOURCE_DATE_EPOCH")) != NULL && *s) {
		char *end;
		long long v = strtoll(s, &end, 10);

		if (*end || v < 0)
			return hypr_err_set(e, HYPR_EXIT_USAGE,
			    "SOURCE_DATE_EPOCH: not a number of seconds");
		c->epoch = v;
	}
	if ((s = getenv("HYPR_STEP_TIMEOUT")) != NULL && *s) {
		char *end;

		c->step_timeout = strtod(s, &end);
		if (*end || c->step_timeout < 0)
			return hypr_err_set(e, HYPR_EXIT_USAGE,
			    "HYPR_STEP_TIMEOUT: not a number of seconds");
	}
	if (hypr_net_init(&c->net, e) < 0 ||
	    hypr_env_uint("HYPR_ADD_MAX_SIZE", (uint64_t)8 << 30, 1, 0, &c->add_max, e) < 0)
		return -1;
	if (realpath(o->context ? o->context : ".", c->context) == NULL)
		return hypr_err_set(e, HYPR_EXIT_USAGE, "context %s: %s",
		    o->context ? o->context : ".", strerror(errno));
	if (stat(c->context, &sb) < 0 || !S_ISDIR(sb.st_mode))
		return hypr_err_set(e, HYPR_EXIT_USAGE, "context %s: not a directory",
		    o->context ? o->context : ".");
	if (hypr_root_open(&c->root, o->root, e) < 0)
		return -1;
	if (read_plan(c, in, e) < 0)
		return -1;
	/* Dockerfile.dockerignore beside the Dockerfile wins, as in BuildKit. */
	return hypr_ignore_load(&c->ignore, c->context, c->dockerfile, e);
}

int
hypr_exec_run(struct hypr_exec *x, FILE *out, struct hypr_err *e)
{
	struct ctx *c = (struct ctx *)x;
	json_t *hdr = json_pack("{s:s,s:O?,s:O?,s:o}", "context", c->context, "dockerfile",
	    json_object_get(c->header, "dockerfile"), "target",
	    json_object_get(c->header, "target"), "build_args", recorded_args(c->build_args));

	if (hdr == NULL || hypr_stream_begin(&c->out, out, "steps", 2, hdr, e) < 0) {
		json_decref(hdr);
		return -1;
	}
	json_decref(hdr);
	/* the step count a progress view shows, before the first step */
	for (size_t i = 0; i < c->nstages; i++)
		c->nsteps += (int)json_array_size(c->stages[i].instrs);
	hypr_events_put(c->ev, &(struct hypr_event){ .type = HYPR_EV_PLAN,
	    .steps = c->nsteps });
	for (size_t i = 0; i < c->nstages; i++) {
		if (run_stage(c, &c->stages[i], i + 1 == c->nstages, e) < 0) {
			run_kill_all(c);
			fflush(out);
			return -1;
		}
	}
	return write_end(c, e);
}

void
hypr_exec_kill(struct hypr_exec *x)
{
	if (x)
		run_kill_all((struct ctx *)x);
}

void
hypr_exec_close(struct hypr_exec *x)
{
	struct ctx *c = (struct ctx *)x;

	if (c == NULL)
		return;
	for (size_t i = 0; i < c->nstages; i++)
		run_stop(c, &c->stages[i]);
	/* the rest is freed with the process: the stream records, the stages'
	 * configs and trees live as long as the run */
}
