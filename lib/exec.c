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
#include "steps.h"

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
	if ((*v = hypr_layers_digests(st->layers.v, st->layers.n)) == NULL)
		return hypr_err_set(e, HYPR_EXIT_SYSTEM, "out of memory");
	*n = st->layers.n;
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
one_line(const char *original, const char *op, size_t clip)
{
	char *s = strdup(original ? original : op ? op : "?");

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

static int
line_err(struct hypr_err *e, struct ctx *c, long line, const char *original,
    const char *op, int code, const char *fmt, va_list ap)
{
	char raw[900], what[900], *ins = one_line(original, op, INSTR_CLIP);

	vsnprintf(raw, sizeof(raw), fmt, ap);
	/* a file name from the context or an archive may hold any byte */
	hypr_escape(raw, strlen(raw), what, sizeof(what));
	hypr_err_set(e, code, "%s:%ld: %s: %s", dockerfile_name(c), line, ins ? ins : "?",
	    what);
	free(ins);
	return -1;
}

int
instr_err(struct hypr_err *e, struct ctx *c, const struct hypr_plan_instr *instr, int code,
    const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	line_err(e, c, instr->line[0], instr->original, instr->op, code, fmt, ap);
	va_end(ap);
	return -1;
}

int
stage_err(struct hypr_err *e, struct ctx *c, const struct stage *st, int code,
    const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	line_err(e, c, st->rec.line[0], st->rec.original, NULL, code, fmt, ap);
	va_end(ap);
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

		for (size_t k = 0; s->image && k < s->image->nlayers; k++) {
			const char *d = s->image->layers[k].digest, *at;
			char msg[sizeof(e->msg)];

			if ((at = strstr(e->msg, d)) == NULL ||
			    at < e->msg + 6 || strncmp(at - 6, "layer ", 6) != 0)
				continue;
			snprintf(msg, sizeof(msg), "base image %s", at - 6);
			stage_err(e, c, s, HYPR_EXIT_INPUT, "%s", msg);
			return 1;
		}
	}
	return 0;
}

static int
add_instr(struct stage *st, struct hypr_plan_instr *in, struct hypr_err *e)
{
	if (st->ninstrs == st->cap) {
		size_t cap = st->cap ? st->cap * 2 : 16;
		struct hypr_plan_instr *v = realloc(st->instrs, cap * sizeof(*v));

		if (v == NULL)
			return hypr_err_set(e, HYPR_EXIT_SYSTEM, "out of memory");
		st->instrs = v;
		st->cap = cap;
	}
	st->instrs[st->ninstrs++] = *in;
	return 0;
}

static int
read_plan(struct ctx *c, FILE *f, struct hypr_err *e)
{
	struct hypr_stream_in in;
	struct hypr_plan_rec rec;
	int r;

	if (hypr_stream_open(&in, f, "resolved", "resolved", 1, known_needs, e) < 0)
		return -1;
	if (hypr_plan_header(&in, &c->hdr, e) < 0) {
		hypr_stream_close(&in);
		return -1;
	}
	c->build_args = c->hdr.build_args;
	c->dockerfile = c->hdr.dockerfile;
	c->platform = c->hdr.platform;
	c->escape = c->hdr.escape;
	while ((r = hypr_plan_next(&in, &rec, e)) == 1) {
		if (rec.kind == HYPR_PLAN_ARG) {
			if (rec.u.arg.value)
				hypr_vars_set(&c->global_args, rec.u.arg.name, rec.u.arg.value);
		} else if (rec.kind == HYPR_PLAN_STAGE) {
			struct stage *ns = realloc(c->stages,
			    (c->nstages + 1) * sizeof(*ns)), *st;

			if (ns == NULL) {
				hypr_plan_rec_free(&rec);
				hypr_stream_close(&in);
				return hypr_err_set(e, HYPR_EXIT_SYSTEM, "out of memory");
			}
			c->stages = ns;
			st = &c->stages[c->nstages++];
			memset(st, 0, sizeof(*st));
			hypr_plan_stage_take(&rec, &st->rec);
			st->index = st->rec.index;
			st->name = st->rec.name;
			st->final = st->rec.final;
		} else if (rec.kind == HYPR_PLAN_INSTR) {
			struct stage *st = stage_by_index(c, rec.u.instr.stage);
			struct hypr_plan_instr ins;

			if (st == NULL) {
				hypr_err_set(e, HYPR_EXIT_INPUT,
				    "resolved:%ld: instruction for unknown stage", in.line);
				hypr_plan_rec_free(&rec);
				hypr_stream_close(&in);
				return -1;
			}
			hypr_plan_instr_take(&rec, &ins);
			if (add_instr(st, &ins, e) < 0) {
				hypr_plan_instr_free(&ins);
				hypr_plan_rec_free(&rec);
				hypr_stream_close(&in);
				return -1;
			}
		}
		hypr_plan_rec_free(&rec);
	}
	hypr_stream_close(&in);
	if (r < 0)
		return -1;
	for (size_t i = 0; i < c->nstages; i++)	/* now that the array stays */
		c->stages[i].image = c->stages[i].rec.has_image ? &c->stages[i].rec.image : NULL;
	if (c->nstages == 0)
		return hypr_err_set(e, HYPR_EXIT_INPUT, "resolved: no stage to build");
	return 0;
}

/* Start a stage from its base: an image (config blob in the store), an
 * earlier stage, or scratch. */
static int
stage_begin(struct ctx *c, struct stage *st, struct hypr_steps_stage *out,
    struct hypr_err *e)
{
	const char *base = st->rec.base;

	out->has_base = 0;
	if (st->rec.base_stage >= 0) {
		struct stage *src = stage_by_index(c, st->rec.base_stage);

		if (src == NULL || !src->done)
			return hypr_err_set(e, HYPR_EXIT_INPUT,
			    "stage %d: base stage %d not built before", st->index,
			    st->rec.base_stage);
		st->config = json_deep_copy(src->config);
		if (hypr_layers_copy(&st->layers, &src->layers, e) < 0)
			return -1;
		memcpy(st->base_key, src->key, sizeof(st->base_key));
		if (src->author)
			st->author = strdup(src->author);
		if (src->image) {
			out->has_base = 1;
			out->base.ref = src->image->ref;
			out->base.digest = src->image->digest;
		}
	} else if (st->image) {
		const struct hypr_plan_image *im = st->image;
		char *text = NULL;
		size_t len;
		json_t *cfg;

		if (hypr_blob_read(&c->root, im->config, HYPR_OCI_CONFIG_MAX, &text, &len, e) < 0)
			return hypr_err_prefix(e, "stage %d: base image config", st->index);
		cfg = json_loadb(text, len, 0, NULL);
		free(text);
		if (!json_is_object(cfg))
			return hypr_err_set(e, HYPR_EXIT_INPUT,
			    "stage %d: base image config %s is not JSON", st->index, im->config);
		st->config = json_object_get(cfg, "config");
		st->config = json_is_object(st->config) ? json_deep_copy(st->config) :
		    json_object();
		if (json_is_string(json_object_get(cfg, "author")))
			st->author = strdup(hypr_json_str(cfg, "author"));
		json_decref(cfg);
		for (size_t i = 0; i < im->nlayers; i++) {
			struct hypr_layer l = im->layers[i];

			if (l.diff_id[0]) {
				/* nothing unverified is used: hypr-fetch recorded what
				 * the layer decompresses to; a stream from elsewhere
				 * (an older hypr-fetch) gets it computed once here */
				char got[HYPR_DIGEST_LEN + 1], msg[sizeof(e->msg)];

				if (hypr_diffid_get(&c->root, l.digest, UINT64_MAX, got, e) < 0) {
					memcpy(msg, e->msg, sizeof(msg));
					return stage_err(e, c, st, e->code, "base image %s", msg);
				}
				if (strcmp(got, l.diff_id) != 0)
					return stage_err(e, c, st, HYPR_EXIT_INPUT,
					    "base image layer %s: diff_id mismatch: the config "
					    "says %s, the layer decompresses to %s", l.digest,
					    l.diff_id, got);
			} else {
				memcpy(l.diff_id, l.digest, sizeof(l.diff_id));
			}
			if (!l.media_type[0])
				snprintf(l.media_type, sizeof(l.media_type), "%s",
				    HYPR_MEDIA_LAYER_GZIP);
			if (hypr_layers_add(&st->layers, &l, e) < 0)
				return -1;
		}
		memcpy(st->base_key, im->digest, HYPR_DIGEST_LEN + 1);
		out->has_base = 1;
		out->base.ref = im->ref;
		out->base.digest = im->digest;
	} else if (strcmp(base, "scratch") == 0) {
		static const char scratch[] = "hypr-exec: FROM scratch, PATH";

		/* BuildKit's empty image has the default PATH */
		st->config = json_pack("{s:[s]}", "Env",
		    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
		if (hypr_digest_buf(scratch, sizeof(scratch) - 1, st->base_key, e) < 0)
			return -1;
	} else {
		return hypr_err_set(e, HYPR_EXIT_INPUT,
		    "stage %d: base image '%s' not resolved (pipe the plan through hypr-fetch)",
		    st->index, base);
	}
	st->nbase = st->layers.n;
	memcpy(st->key, st->base_key, sizeof(st->key));
	return 0;
}

/* The config travels once per stage (its last step), not per step: N ENV
 * lines made an N-squared stream (hypr-steps(5), version 2). */
static int
write_step(struct ctx *c, struct stage *st, struct step *s, int n, int last,
    struct hypr_err *e)
{
	struct hypr_steps_step rec = {
		.stage = st->index, .n = n, .op = s->op,
		.created_by = s->created_by ? s->created_by : s->op, .key = s->key,
		.cached = s->cached, .has_layer = s->has_layer, .layer = s->layer,
		.config = last ? st->config : NULL, .author = st->author,
	};

	rec.line[0] = s->instr->line[0];
	rec.line[1] = s->instr->line[1];
	return hypr_steps_put_step(&c->out, &rec, e);
}

static int
do_step(struct ctx *c, struct stage *st, const struct hypr_plan_instr *instr, int n,
    int total, struct hypr_err *e)
{
	struct step s = { .st = st, .instr = instr };
	struct timespec t0, t1;
	char *ins = one_line(instr->original, instr->op, 0);
	int r = -1;

	s.op = instr->op;
	c->stepno++;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	{
		const char *text = ins ? ins : s.op;

		hypr_events_put(c->ev, &(struct hypr_event){ .type = HYPR_EV_STEP,
		    .n = c->stepno, .name = st->name, .pos = n, .count = total,
		    .line = { instr->line[0], instr->line[1] },
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
			    &s.layer, &s.has_layer, e);
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
	if (s.has_layer) {
		if (hypr_layers_add(&st->layers, &s.layer, e) < 0)
			goto out;
		if (s.in_vm)
			st->imported = st->layers.n;
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
	return r;
}

/* The base image's ONBUILD triggers, as instructions of this stage at its
 * FROM line. */
struct triggers {
	struct hypr_plan_instr *v;
	size_t n;
};

static void
triggers_free(struct triggers *t)
{
	for (size_t i = 0; i < t->n; i++)
		hypr_plan_instr_free(&t->v[i]);
	free(t->v);
	memset(t, 0, sizeof(*t));
}

static int
read_triggers(struct stage *st, FILE *f, struct triggers *t, struct hypr_err *e)
{
	struct hypr_stream_in in;
	struct hypr_plan_rec rec;
	int r;

	if (hypr_stream_open(&in, f, "onbuild plan", "plan", 1, NULL, e) < 0)
		return -1;
	while ((r = hypr_plan_next(&in, &rec, e)) == 1) {
		if (rec.kind == HYPR_PLAN_INSTR) {
			struct hypr_plan_instr *v = realloc(t->v, (t->n + 1) * sizeof(*v));

			if (v == NULL) {
				hypr_plan_rec_free(&rec);
				r = hypr_err_set(e, HYPR_EXIT_SYSTEM, "out of memory");
				break;
			}
			t->v = v;
			hypr_plan_instr_take(&rec, &t->v[t->n]);
			t->v[t->n].stage = st->index;
			t->v[t->n].line[0] = st->rec.line[0];
			t->v[t->n].line[1] = st->rec.line[1];
			t->n++;
		}
		hypr_plan_rec_free(&rec);
	}
	hypr_stream_close(&in);
	return r < 0 ? -1 : 0;
}

/* ONBUILD triggers of the base image run right after FROM, as Docker does:
 * the trigger lines go through hypr-parse like any Dockerfile text. */
static int
onbuild_instrs(struct ctx *c, struct stage *st, struct triggers *out, struct hypr_err *e)
{
	json_t *ob = json_object_get(st->config, "OnBuild"), *x;
	char df[HYPR_PATH_BUF], plan[HYPR_PATH_BUF];
	const char *parse = getenv("HYPR_PARSE");
	FILE *f;
	size_t i;
	int rc = -1, status;

	memset(out, 0, sizeof(*out));
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
		rc = read_triggers(st, f, out, e);
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
	struct hypr_steps_stage rec = { 0 };
	struct triggers trig = { 0 };
	struct hypr_plan_instr *all;
	size_t total;
	int r = -1;

	if (stage_begin(c, st, &rec, e) < 0)
		return -1;
	if (onbuild_instrs(c, st, &trig, e) < 0) {
		triggers_free(&trig);
		return -1;
	}
	rec.index = st->index;
	rec.name = st->name;
	rec.final = st->final;
	rec.base_layers = st->layers.v;
	rec.nbase_layers = st->layers.n;
	rec.config = st->config;
	if (hypr_steps_put_stage(&c->out, &rec, e) < 0) {
		triggers_free(&trig);
		return -1;
	}
	total = trig.n + st->ninstrs;
	if ((all = calloc(total + 1, sizeof(*all))) == NULL) {
		triggers_free(&trig);
		return hypr_err_set(e, HYPR_EXIT_SYSTEM, "out of memory");
	}
	/* borrowed: the triggers and the stage's instructions own them */
	if (trig.n)
		memcpy(all, trig.v, trig.n * sizeof(*all));
	if (st->ninstrs)
		memcpy(all + trig.n, st->instrs, st->ninstrs * sizeof(*all));
	st->all = all;
	st->nall = total;
	if (trig.n > 0) {
		/* the base image's triggers are steps the plan did not show */
		c->nsteps += (int)trig.n;
		hypr_events_put(c->ev, &(struct hypr_event){ .type = HYPR_EV_PLAN,
		    .steps = c->nsteps });
	}
	/* --no-cache: every step misses, so a RUN to come will need the VM;
	 * it boots while the steps before it hash their sources */
	st->pos = 0;
	if (c->no_cache)
		run_prestart(c, st);
	r = 0;
	for (size_t i = 0; i < total; i++) {
		st->pos = i;
		if ((r = do_step(c, st, &all[i], (int)i + 1, (int)total, e)) < 0)
			break;
	}
	st->all = NULL;
	st->nall = 0;
	free(all);
	triggers_free(&trig);
	/* The last stage's VM is stopped after the end record is out, so the
	 * next stages of the pipeline need not wait for its shutdown. */
	if (!last || r < 0)
		run_stop(c, st);
	if (r == 0)
		st->done = 1;
	return r;
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
	if (read_plan(c, in, e) < 0 || cache_import_open(c, e) < 0)
		return -1;
	/* Dockerfile.dockerignore beside the Dockerfile wins, as in BuildKit. */
	return hypr_ignore_load(&c->ignore, c->context, c->dockerfile, e);
}

int
hypr_exec_run(struct hypr_exec *x, FILE *out, struct hypr_err *e)
{
	struct ctx *c = (struct ctx *)x;
	struct hypr_steps_header h = { .context = c->context, .dockerfile = c->hdr.dockerfile,
		.target = c->hdr.target, .build_args = recorded_args(c->build_args) };
	int r;

	if (h.build_args == NULL)
		return hypr_err_set(e, HYPR_EXIT_SYSTEM, "out of memory");
	r = hypr_steps_begin(&c->out, out, &h, e);
	json_decref(h.build_args);
	if (r < 0)
		return -1;
	/* the step count a progress view shows, before the first step */
	for (size_t i = 0; i < c->nstages; i++)
		c->nsteps += (int)c->stages[i].ninstrs;
	hypr_events_put(c->ev, &(struct hypr_event){ .type = HYPR_EV_PLAN,
	    .steps = c->nsteps });
	for (size_t i = 0; i < c->nstages; i++) {
		if (run_stage(c, &c->stages[i], i + 1 == c->nstages, e) < 0) {
			run_kill_all(c);
			fflush(out);
			return -1;
		}
	}
	/* the final image's layers, for hypr-layer and hypr-squash: an imported
	 * one no step needed is fetched now (the others' never are) */
	{
		struct stage *fin = &c->stages[c->nstages - 1];

		if (layers_fetch(c, fin->layers.v, fin->layers.n, e) < 0) {
			fflush(out);
			return -1;
		}
		if (c->imported)
			hypr_events_say(c->ev, HYPR_EV_INFO, 0, 0, "--cache-from: %d layer(s) "
			    "fetched", c->cache_fetched);
	}
	return hypr_steps_end(&c->out, c->vm_boots, e);
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
	for (size_t i = 0; i < c->nstages; i++) {
		struct stage *st = &c->stages[i];

		run_stop(c, st);
		for (size_t k = 0; k < st->ninstrs; k++)
			hypr_plan_instr_free(&st->instrs[k]);
		free(st->instrs);
		hypr_plan_stage_free(&st->rec);
		json_decref(st->config);
		hypr_layers_free(&st->layers);
		free(st->author);
		hypr_vars_free(&st->args);
		hypr_vars_free(&st->vars);
		hypr_map_free(&st->envpos, NULL);
		hypr_map_free(&st->declared, NULL);
		hypr_map_free(&st->rootmeta, tnode_free);	/* rootfs: tmpdirs_remove */
	}
	free(c->stages);
	json_decref(c->imported);
	json_decref(c->remote);
	hypr_plan_header_free(&c->hdr);
	hypr_vars_free(&c->global_args);
	for (size_t i = 0; i < c->nhosts; i++)
		free(c->hosts[i]);
	free(c->hosts);
	for (size_t i = 0; i < c->nsecrets; i++) {
		free(c->secrets[i].id);
		free(c->secrets[i].src);
		free(c->secrets[i].env);
	}
	hypr_ignore_free(c->ignore);
	tree_listings_free(c);
	tmpdirs_remove();
	free(c);
}
