/* df_stage.c - phase 3 of the Dockerfile parser (see dockerfile.c): the
 * stage graph of BuildKit's dockerfile2llb (each instruction's own rules are
 * in df_check.c): stages, global ARGs and FROM expansion, COPY --from and
 * RUN --mount from= (earlier or later stages; a cycle is an error), the
 * target and the stages it needs, and the order of the plan records.
 *
 * Errors come in BuildKit's order: a syntax error anywhere (phases 1 and 2)
 * before any instruction-layer error, those in file order, then the
 * expansion of global ARGs and FROM lines, then the stage graph, then the
 * target. */
#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/utsname.h>
#include "df.h"
#include "map.h"
#include "stream.h"

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

static int
platform_vars(struct hypr_vars *v, const char *prefix, const char *plat)
{
	char key[32], os[64] = "", arch[64] = "", variant[64] = "";
	const char *p = plat, *s1 = strchr(p, '/'), *s2 = s1 ? strchr(s1 + 1, '/') : NULL;
	int r = 0;

	snprintf(os, sizeof(os), "%.*s", s1 ? (int)(s1 - p) : (int)strlen(p), p);
	if (s1)
		snprintf(arch, sizeof(arch), "%.*s",
		    s2 ? (int)(s2 - s1 - 1) : (int)strlen(s1 + 1), s1 + 1);
	if (s2)
		snprintf(variant, sizeof(variant), "%s", s2 + 1);
	snprintf(key, sizeof(key), "%sPLATFORM", prefix);
	r |= hypr_vars_set(v, key, plat);
	snprintf(key, sizeof(key), "%sOS", prefix);
	r |= hypr_vars_set(v, key, os);
	snprintf(key, sizeof(key), "%sARCH", prefix);
	r |= hypr_vars_set(v, key, arch);
	snprintf(key, sizeof(key), "%sVARIANT", prefix);
	r |= hypr_vars_set(v, key, variant);
	return r;
}

/* The global ARGs start from the platform ARGs alone. */
static int
meta_reset(struct df *d)
{
	const char *plat = d->o->platform ? d->o->platform : hypr_dockerfile_host_platform();

	hypr_vars_free(&d->meta);
	d->meta_bytes = 0;
	if (platform_vars(&d->meta, "TARGET", plat) < 0 ||
	    platform_vars(&d->meta, "BUILD", hypr_dockerfile_host_platform()) < 0)
		return df_oom(d);
	return 0;
}

/* ---- stage names: name -> the last stage so far with it ---- */

/* The last stage so far named name (lower-case), or -1. */
static int
names_find(const struct df *d, const char *name)
{
	void *v = hypr_map_get(&d->names, name);

	return v ? (int)((uintptr_t)v - 1) : -1;
}

/* Stage idx now answers for its name (a later stage with a name wins). */
static int
names_put(struct df *d, int idx)
{
	if (hypr_map_set(&d->names, d->st[idx].name, (void *)(uintptr_t)(idx + 1), NULL) < 0)
		return df_oom(d);
	return 0;
}

/* ---- pass 1: stages, global ARGs, references ---- */

/* Keep the first error of a tier (the caller goes on with the next
 * instruction); an out-of-memory error is never kept: it stops at once. */
static int
keep(struct df *d, struct hypr_err *slot)
{
	if (d->e->code == HYPR_EXIT_SYSTEM)
		return -1;
	if (slot->code == 0)
		*slot = *d->e;
	return 0;
}

static int
add_dep(struct df *d, struct df_stage *s, int j, long line)
{
	if (df_grow((void **)&s->deps, &s->capdeps, s->ndeps, sizeof(*s->deps)) < 0)
		return df_oom(d);
	s->deps[s->ndeps++] = (struct df_dep){ .stage = j, .line = line };
	return 0;
}

static int
add_ref_kind(struct df *d, const char *name, size_t node, long line, int kind)
{
	char *nm;

	if (*name == '\0' || strchr(name, '$') != NULL)
		return 0;	/* none, or resolved when it runs */
	if (df_grow((void **)&d->refs, &d->caprefs, d->nrefs, sizeof(*d->refs)) < 0 ||
	    (nm = strdup(name)) == NULL)
		return df_oom(d);
	d->refs[d->nrefs++] = (struct df_ref){ .node = node, .line = line,
	    .stage = (int)d->nst - 1, .kind = kind, .target = -1, .name = nm };
	return 0;
}

static int
add_mount_ref(struct df *d, const char *name, size_t node, long line)
{
	return add_ref_kind(d, name, node, line, DF_REF_MOUNT);
}

/* Expand a FROM's image (or its --platform) with the global ARGs. */
static int
expand_from(struct df *d, const char *raw, long line, char **out)
{
	if (hypr_expand_word(raw, &d->meta, d->esc, out, d->e) < 0) {
		hypr_err_prefix(d->e, "%s:%ld", d->name, line);
		if (d->e->code != HYPR_EXIT_SYSTEM)
			d->e->code = HYPR_EXIT_INPUT;
		return -1;
	}
	if (strlen(*out) > DF_MAX_BASE) {
		free(*out);
		*out = NULL;
		return df_fail(d, line, "FROM %.40s...: longer than %u bytes once expanded",
		    raw, DF_MAX_BASE);
	}
	return 0;
}

/* The global ARG (before the first FROM) of node: its values go into
 * d->meta; with emit, its records go to the sink. */
static int emit(struct df *d, json_t *rec, long line);

static int
global_arg(struct df *d, json_t *n, long line, int emit_recs)
{
	const struct hypr_dockerfile_opts *o = d->o;
	json_t *p, *jline = json_object_get(n, "line");
	size_t k;

	json_array_foreach(json_object_get(n, "pairs"), k, p) {
		const char *key = hypr_json_str(p, "key");
		json_t *jv = json_object_get(p, "value"), *rec;
		const char *ov = o->build_args ? hypr_vars_get(o->build_args, key) : NULL;
		char *val = NULL;

		if (ov != NULL) {
			if ((val = strdup(ov)) == NULL)
				return df_oom(d);
		} else if (json_is_string(jv)) {
			if (hypr_expand_word(json_string_value(jv), &d->meta, d->esc, &val, d->e) < 0) {
				hypr_err_prefix(d->e, "%s:%ld", d->name, line);
				if (d->e->code != HYPR_EXIT_SYSTEM)
					d->e->code = HYPR_EXIT_INPUT;
				return -1;
			}
		} else if (hypr_vars_get(&d->meta, key) != NULL) {
			if ((val = strdup(hypr_vars_get(&d->meta, key))) == NULL)
				return df_oom(d);
		}
		d->meta_bytes += strlen(key) + (val ? strlen(val) : 0);
		if (d->meta_bytes > DF_MAX_GLOBALS) {
			free(val);
			return df_fail(d, line, "global ARG values larger than %u bytes in all",
			    DF_MAX_GLOBALS);
		}
		if (hypr_vars_set(&d->meta, key, val ? val : "") < 0) {
			free(val);
			return df_oom(d);
		}
		rec = json_pack("{s:s, s:O, s:O}", "type", "arg", "line", jline, "name",
		    json_object_get(p, "key"));
		if (rec == NULL) {
			free(val);
			return df_oom(d);
		}
		json_object_set_new(rec, "value", val ? json_string(val) : json_null());
		free(val);
		if (json_object_get(rec, "value") == NULL) {
			json_decref(rec);
			return df_fail(d, line, "invalid UTF-8 in build argument %s", key);
		}
		json_object_set(rec, "raw", json_array_get(json_object_get(n, "args"), k));
		if (emit_recs && emit(d, rec, line) < 0) {
			json_decref(rec);
			return -1;
		}
		json_decref(rec);
	}
	return 0;
}

/* A FROM: a new stage. The name rules are the instruction layer's; the
 * expansion of the image is checked later (kept in d->lerr). */
static int
stage_begin(struct df *d, struct df_item *it, size_t node)
{
	json_t *n = it->node, *args = json_object_get(n, "args");
	const char *pf = hypr_json_str(json_object_get(n, "flags"), "platform");
	struct df_stage *s;
	char *base = NULL, *pexp = NULL;
	int j;

	if (df_grow((void **)&d->st, &d->capst, d->nst, sizeof(*d->st)) < 0)
		return df_oom(d);
	s = &d->st[d->nst];
	*s = (struct df_stage){ .off = it->off, .line = it->line0, .base = -1,
	    .ref0 = d->nrefs, .node = node };
	if (json_array_size(args) == 3 &&
	    (s->name = df_lower_dup(json_string_value(json_array_get(args, 2)))) == NULL)
		return df_oom(d);
	d->nst++;
	if (s->name && names_find(d, s->name) >= 0 &&
	    df_warn_add(d, it->line0, it->off, DF_WARN_DUP_STAGE) < 0)
		return -1;
	if (expand_from(d, json_string_value(json_array_get(args, 0)), it->line0, &base) < 0 ||
	    (base[0] == '\0' && df_fail(d, it->line0, "base name (%s) should not be blank",
	    json_string_value(json_array_get(args, 0))) < 0) ||
	    (pf != NULL && expand_from(d, pf, it->line0, &pexp) < 0)) {
		if (keep(d, &d->lerr) < 0) {
			free(base);
			return -1;
		}
	} else {
		char *l = df_lower_dup(base);

		if (l == NULL) {
			free(base);
			free(pexp);
			return df_oom(d);
		}
		/* the latest earlier stage of that name: this one is not in
		 * the map yet */
		if ((j = names_find(d, l)) >= 0) {
			s->base = j;
			if (add_dep(d, s, j, it->line0) < 0) {
				free(l);
				free(base);
				free(pexp);
				return -1;
			}
		}
		free(l);
	}
	free(base);
	free(pexp);
	if (s->name && names_put(d, (int)d->nst - 1) < 0)
		return -1;
	return 0;
}

/* The instruction layer on one instruction of the file (pass 1). */
static int
instr_layer(struct df *d, struct df_item *it, size_t node)
{
	json_t *n = it->node, *flags = json_object_get(n, "flags");
	const char *op = hypr_json_str(n, "op");
	long line = it->line0;

	if (df_check_instr(d, n, line) < 0)
		return -1;
	if (!strcmp(op, "FROM"))
		return stage_begin(d, it, node);
	if (d->nst == 0) {
		if (strcmp(op, "ARG") != 0)
			return df_fail(d, line, "%s before the first FROM (only ARG may come before FROM)",
			    op);
		d->nglobal++;
		/* A global ARG: its value (or --build-arg) is visible to FROM lines. */
		if (global_arg(d, n, line, 0) < 0 && keep(d, &d->lerr) < 0)
			return -1;
		return 0;
	}
	d->st[d->nst - 1].ninstr++;
	if (!strcmp(op, "MAINTAINER") &&
	    df_warn_add(d, line, it->off, DF_WARN_MAINTAINER) < 0)
		return -1;
	if (!strcmp(op, "COPY") || !strcmp(op, "ADD")) {
		const char *from = hypr_json_str(flags, "from");

		if (from != NULL && add_ref_kind(d, from, node, line, DF_REF_COPY) < 0)
			return -1;
	}
	if (!strcmp(op, "RUN"))
		return df_check_mounts(d, flags, line, add_mount_ref, node);
	return 0;
}

/* ---- the stage graph ---- */

/* A numeric --from (Go's strconv.Atoi): 1 with *v, else 0. */
static int
stage_number(const char *s, long *v)
{
	char *end;

	if (!(isdigit((unsigned char)s[0]) ||
	    ((s[0] == '-' || s[0] == '+') && isdigit((unsigned char)s[1]))))
		return 0;
	errno = 0;
	*v = strtol(s, &end, 10);
	return *end == '\0' && errno == 0;
}

/* Every COPY --from and mount from= against all stages: by number, or the
 * last stage of that name; anything else is an image. */
static int
resolve_refs(struct df *d)
{
	int *stamp = calloc(d->nst ? d->nst : 1, sizeof(*stamp)), cur = -1;
	int rc = -1;

	if (stamp == NULL)
		return df_oom(d);
	for (size_t i = 0; i < d->nrefs; i++) {
		struct df_ref *r = &d->refs[i];
		struct df_stage *s = &d->st[r->stage];
		long idx;

		if (stage_number(r->name, &idx)) {
			if (idx >= 0 && (size_t)idx < d->nst)
				r->target = (int)idx;
			else if (r->kind == DF_REF_COPY) {
				df_fail(d, r->line, "invalid stage index %s", r->name);
				goto out;
			}
		} else {
			char *l = df_lower_dup(r->name);

			if (l == NULL) {
				df_oom(d);
				goto out;
			}
			r->target = names_find(d, l);
			free(l);
		}
		if (r->target < 0)
			continue;
		if (r->stage != cur) {	/* refs come stage by stage */
			cur = r->stage;
			for (size_t k = 0; k < s->ndeps; k++)
				stamp[s->deps[k].stage] = cur + 1;
		}
		if (stamp[r->target] == cur + 1)
			continue;	/* already a dependency */
		stamp[r->target] = cur + 1;
		if (add_dep(d, s, r->target, r->line) < 0)
			goto out;
	}
	rc = 0;
out:
	free(stamp);
	return rc;
}

/* BuildKit's validateCircularDependency: a depth-first walk from each stage
 * in turn; a stage met again on the current path is a cycle, reported on
 * the stage the walk started from, at the instruction that leads off it. */
static int
check_cycles(struct df *d)
{
	unsigned char *color = calloc(d->nst ? d->nst : 1, 1);
	struct frame { int s; size_t next; } *stack = malloc((d->nst ? d->nst : 1) *
	    sizeof(*stack));
	int rc = -1;

	if (color == NULL || stack == NULL) {
		df_oom(d);
		goto out;
	}
	for (size_t root = 0; root < d->nst; root++) {
		size_t sp = 0;

		if (color[root])
			continue;
		stack[sp++] = (struct frame){ (int)root, 0 };
		color[root] = 1;
		while (sp > 0) {
			struct frame *f = &stack[sp - 1];
			struct df_stage *s = &d->st[f->s];

			if (f->next < s->ndeps) {
				int dep = s->deps[f->next++].stage;

				if (color[dep] == 1) {
					const struct df_stage *r = &d->st[root];
					long line = r->deps[stack[0].next - 1].line;

					if (r->name)
						df_fail(d, line, "circular dependency detected on stage: %s",
						    r->name);
					else
						df_fail(d, line, "circular dependency detected on stage: stage-%zu",
						    root);
					goto out;
				}
				if (color[dep] == 0) {
					color[dep] = 1;
					stack[sp++] = (struct frame){ dep, 0 };
				}
			} else {
				color[f->s] = 2;
				sp--;
			}
		}
	}
	rc = 0;
out:
	free(color);
	free(stack);
	return rc;
}

/* Mark the target and what it needs; *order gets the needed stages so that
 * each comes after every stage it needs (file order when no stage names a
 * later one). */
static int
plan_order(struct df *d, int target, int **order, size_t *norder)
{
	struct frame { int s; size_t next; } *stack = malloc(d->nst * sizeof(*stack));
	unsigned char *done = calloc(d->nst, 1);
	int *v = malloc(d->nst * sizeof(*v));
	size_t sp = 0, n = 0;

	if (stack == NULL || done == NULL || v == NULL) {
		free(stack);
		free(done);
		free(v);
		return df_oom(d);
	}
	d->st[target].needed = 1;
	stack[sp++] = (struct frame){ target, 0 };
	while (sp > 0) {
		struct df_stage *s = &d->st[stack[--sp].s];

		for (size_t k = 0; k < s->ndeps; k++)
			if (!d->st[s->deps[k].stage].needed) {
				d->st[s->deps[k].stage].needed = 1;
				stack[sp++] = (struct frame){ s->deps[k].stage, 0 };
			}
	}
	for (size_t root = 0; root < d->nst; root++) {
		if (!d->st[root].needed || done[root])
			continue;
		done[root] = 1;
		stack[sp++] = (struct frame){ (int)root, 0 };
		while (sp > 0) {
			struct frame *f = &stack[sp - 1];
			struct df_stage *s = &d->st[f->s];

			if (f->next < s->ndeps) {
				int dep = s->deps[f->next++].stage;

				if (!done[dep]) {
					done[dep] = 1;
					stack[sp++] = (struct frame){ dep, 0 };
				}
			} else {
				v[n++] = f->s;
				sp--;
			}
		}
	}
	free(stack);
	free(done);
	*order = v;
	*norder = n;
	return 0;
}

/* ---- pass 2: the records ---- */

static int
warning_rec(struct df *d, const struct df_warn *w)
{
	struct df_cur c = { .p = d->text + w->off, .line = w->line - 1 };
	struct df_item it = { 0 };
	json_t *rec, *m;
	char *msg = NULL;
	int rc = -1;

	if (w->kind == DF_WARN_MAINTAINER) {
		msg = strdup("MAINTAINER is deprecated, use LABEL maintainer=... instead");
	} else {
		if (df_read_node(d, &c, &it) != 1)
			goto out;
		if (w->kind == DF_WARN_EMPTY_CONT) {
			if (asprintf(&msg, "empty continuation line found in: %.*s",
			    it.text.n < 200 ? (int)it.text.n : 200, hypr_strbuf_str(&it.text)) < 0)
				msg = NULL;
		} else {
			const char *name = json_string_value(json_array_get(
			    json_object_get(it.node, "args"), 2));
			char *l = name ? df_lower_dup(name) : NULL;

			if (l && asprintf(&msg, "Duplicate stage name \"%s\", stage names should be unique",
			    l) < 0)
				msg = NULL;
			free(l);
		}
	}
	if (msg == NULL) {
		df_oom(d);
		goto out;
	}
	rec = json_pack("{s:s, s:I}", "type", "warning", "line", (json_int_t)w->line);
	if (rec == NULL) {
		df_oom(d);
		goto out;
	}
	/* the message may quote an instruction that is not UTF-8 */
	m = json_string(msg);
	json_object_set_new(rec, "message", m ? m : json_string("(instruction is not valid UTF-8)"));
	rc = d->sink->record(d->sink->arg, rec, d->e);
	json_decref(rec);
out:
	free(msg);
	json_decref(it.node);
	free(it.text.s);
	return rc;
}

/* Hand rec to the sink after the warnings that come at or before line. */
static int
emit(struct df *d, json_t *rec, long line)
{
	while (d->wi < d->nwarns && d->warns[d->wi].line <= line)
		if (warning_rec(d, &d->warns[d->wi++]) < 0)
			return -1;
	return d->sink->record(d->sink->arg, rec, d->e);
}

static int
stage_rec(struct df *d, size_t si, int final, json_t *n)
{
	const struct df_stage *s = &d->st[si];
	json_t *args = json_object_get(n, "args"), *flags = json_object_get(n, "flags"), *rec;
	const char *raw = json_string_value(json_array_get(args, 0));
	const char *pf = hypr_json_str(flags, "platform");
	char *base = NULL, *pexp = NULL;
	int rc = -1;

	if (expand_from(d, raw, s->line, &base) < 0 ||
	    (pf != NULL && expand_from(d, pf, s->line, &pexp) < 0))
		goto out;
	rec = json_pack("{s:s, s:I, s:o, s:O}", "type", "stage", "index",
	    (json_int_t)si, "name", s->name ? json_string(s->name) : json_null(),
	    "line", json_object_get(n, "line"));
	if (rec == NULL) {
		df_oom(d);
		goto out;
	}
	if (df_set_str(d, rec, "from", raw, strlen(raw)) < 0 ||
	    df_set_str(d, rec, "base", base, strlen(base)) < 0) {
		json_decref(rec);
		goto out;
	}
	if (s->base >= 0)
		json_object_set_new(rec, "base_stage", json_integer(s->base));
	json_object_set_new(rec, "platform", pexp ? json_string(pexp) : json_null());
	json_object_set_new(rec, "final", json_boolean(final));
	json_object_set(rec, "original", json_object_get(n, "original"));
	json_object_set(rec, "flags", flags);
	json_object_set(rec, "flag_args", json_object_get(n, "flag_args"));
	json_object_set(rec, "args", args);
	rc = emit(d, rec, s->line);
	json_decref(rec);
out:
	free(base);
	free(pexp);
	return rc;
}

static int
instr_rec(struct df *d, json_t *n, json_t *stage, int from_stage, json_t *mount_from)
{
	json_t *line = json_object_get(n, "line");
	json_t *rec = json_pack("{s:s, s:O, s:O}", "type", "instr", "stage", stage, "line", line);
	int rc;

	if (rec == NULL || json_object_update_missing(rec, n) < 0) {
		json_decref(rec);
		return df_oom(d);
	}
	if (from_stage >= 0)
		json_object_set_new(rec, "from_stage", json_integer(from_stage));
	if (mount_from && json_object_size(mount_from) > 0)
		json_object_set(rec, "mount_from", mount_from);
	rc = emit(d, rec, (long)json_integer_value(json_array_get(line, 0)));
	json_decref(rec);
	return rc;
}

/* Read the next instruction of pass 2 (it was fine in pass 1). */
static int
reread(struct df *d, struct df_cur *c, struct df_item *it)
{
	int r;

	json_decref(it->node);
	it->node = NULL;
	if ((r = df_read_node(d, c, it)) == 1)
		return 0;
	if (r == 0)
		hypr_err_set(d->e, HYPR_EXIT_SYSTEM, "%s: changed while it was read", d->name);
	return -1;
}

static int
pass2(struct df *d, int target, const int *order, size_t norder)
{
	struct df_item it = { 0 };
	struct df_cur c = { .p = d->text + d->first_off, .line = d->first_line - 1 };
	json_t *null = json_null(), *sidx = NULL;
	int rc = -1;

	if (d->o->parse_only) {
		for (size_t i = 0; i < d->ninstr; i++)
			if (reread(d, &c, &it) < 0 || instr_rec(d, it.node, null, -1, NULL) < 0)
				goto out;
		goto done;
	}
	if (meta_reset(d) < 0)
		goto out;
	for (size_t i = 0; i < d->nglobal; i++)
		if (reread(d, &c, &it) < 0 ||
		    global_arg(d, it.node, it.line0, 1) < 0)
			goto out;
	for (size_t k = 0; k < norder; k++) {
		const struct df_stage *s = &d->st[order[k]];
		size_t ri = s->ref0;

		c = (struct df_cur){ .p = d->text + s->off, .line = s->line - 1 };
		if (reread(d, &c, &it) < 0 || stage_rec(d, (size_t)order[k],
		    order[k] == target, it.node) < 0)
			goto out;
		json_decref(sidx);
		sidx = json_integer(order[k]);
		for (size_t i = 1; i <= s->ninstr; i++) {
			int from = -1;
			json_t *mf = json_object();

			if (reread(d, &c, &it) < 0) {
				json_decref(mf);
				goto out;
			}
			for (; ri < d->nrefs && d->refs[ri].node <= s->node + i; ri++) {
				const struct df_ref *rf = &d->refs[ri];

				if (rf->node != s->node + i)
					continue;
				if (rf->kind == DF_REF_COPY)
					from = rf->target;
				else if (rf->kind == DF_REF_MOUNT && rf->target >= 0)
					json_object_set_new(mf, rf->name,
					    json_pack("{s:i}", "stage", rf->target));
			}
			if (instr_rec(d, it.node, sidx, from, mf) < 0) {
				json_decref(mf);
				goto out;
			}
			json_decref(mf);
		}
	}
done:
	while (d->wi < d->nwarns)
		if (warning_rec(d, &d->warns[d->wi++]) < 0)
			goto out;
	rc = 0;
out:
	json_decref(sidx);
	json_decref(it.node);
	free(it.text.s);
	return rc;
}

int
df_plan(struct df *d)
{
	const struct hypr_dockerfile_opts *o = d->o;
	struct df_cur c = { .p = d->text, .line = 0 };
	struct df_item it = { 0 };
	json_t *hdr = NULL;
	int r, target = -1, *order = NULL, rc = -1;
	size_t norder = 0;

	if (meta_reset(d) < 0)
		return -1;
	while ((r = df_read_node(d, &c, &it)) == 1) {
		size_t node = d->ninstr;

		if (d->ninstr++ == 0) {
			d->first_off = it.off;
			d->first_line = it.line0;
		}
		if (d->ninstr > DF_MAX_INSTR) {
			df_fail(d, it.line0, "more than %u instructions", DF_MAX_INSTR);
			goto out;
		}
		if (it.empty_cont && df_warn_add(d, it.line0, it.off, DF_WARN_EMPTY_CONT) < 0)
			goto out;
		if (d->ierr.code == 0 && (o->parse_only ?
		    df_check_parse_only(d, it.node, it.line0) : instr_layer(d, &it, node)) < 0 &&
		    keep(d, &d->ierr) < 0)
			goto out;
		json_decref(it.node);
		it.node = NULL;
	}
	if (r < 0)
		goto out;
	if (d->ninstr == 0) {
		df_fail(d, c.line > 0 ? c.line : 1, "file with no instructions");
		goto out;
	}
	if (d->ierr.code) {
		*d->e = d->ierr;
		goto out;
	}
	if (!o->parse_only) {
		if (d->nst == 0) {
			df_fail(d, d->errline, "no FROM instruction: a Dockerfile needs at least one stage");
			goto out;
		}
		if (d->lerr.code) {
			*d->e = d->lerr;
			goto out;
		}
		if (resolve_refs(d) < 0 || check_cycles(d) < 0)
			goto out;
		if (o->target != NULL) {
			char *l = df_lower_dup(o->target);

			if (l == NULL) {
				df_oom(d);
				goto out;
			}
			target = names_find(d, l);
			free(l);
			if (target < 0) {
				hypr_err_set(d->e, HYPR_EXIT_USAGE, "%s: --target: no stage named \"%s\"",
				    d->name, o->target);
				goto out;
			}
		} else
			target = (int)d->nst - 1;
		if (plan_order(d, target, &order, &norder) < 0)
			goto out;
	}
	if (df_header(d, &hdr) < 0 || d->sink->header(d->sink->arg, hdr, d->e) < 0)
		goto out;
	rc = pass2(d, target, order, norder);
out:
	json_decref(hdr);
	json_decref(it.node);
	free(it.text.s);
	free(order);
	return rc;
}

void
df_free(struct df *d)
{
	for (size_t i = 0; i < d->nst; i++) {
		free(d->st[i].name);
		free(d->st[i].deps);
	}
	free(d->st);
	hypr_map_free(&d->names, NULL);
	for (size_t i = 0; i < d->nrefs; i++)
		free(d->refs[i].name);
	free(d->refs);
	free(d->warns);
	hypr_vars_free(&d->meta);
}
