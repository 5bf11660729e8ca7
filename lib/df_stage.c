/* df_stage.c - phase 3 of the Dockerfile parser (see dockerfile.c): the
 * stage rules of BuildKit's instruction layer: stages, global ARGs and FROM
 * expansion, COPY --from, flags and arity, the target and the stages it
 * needs, and the order of the plan records. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/utsname.h>
#include "df.h"
#include "stream.h"

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
			return df_fail(d, line, "RUN --mount=type=%s is not supported by hypr "
			    "(builds run offline in a VM; use COPY or a build stage instead)", type);
		if (from[0] && nst > 0) {
			int j = stage_ref(st, nst - 1, from);

			if (j >= 0 && add_dep(&st[nst - 1], j) < 0)
				return df_oom(d);
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
		return df_fail(d, line, "%s requires at least two arguments, but only %zu provided "
		    "(%s [--flags] SRC... DEST)", op, na, op);
	for (size_t i = 0; one[i]; i++)
		if (!strcmp(op, one[i]) && na == 0)
			return df_fail(d, line, "%s requires at least one argument", op);
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
			return df_fail(d, line, "%s: unknown flag: %.*s", op, (int)nl, s);
		if (*kind == 's' && eq == NULL)
			return df_fail(d, line, "%s: missing a value on flag: %s", op, s);
		if (*kind == 'b' && eq && strcasecmp(eq + 1, "true") &&
		    strcasecmp(eq + 1, "false"))
			return df_fail(d, line, "%s: expecting boolean value for flag %.*s, not: %s",
			    op, (int)nl, s, eq + 1);
	}
	if (!strcmp(op, "ENV") || !strcmp(op, "LABEL") || !strcmp(op, "ARG"))
		json_array_foreach(json_object_get(n, "pairs"), i, p)
			if (json_string_length(json_object_get(p, "key")) == 0)
				return df_fail(d, line, "%s names can not be blank", op);
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

int
df_plan_stages(struct df *d, json_t *records)
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
		df_oom(d);
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
				df_fail(d, l0, "FROM requires either one or three arguments (FROM image [AS name])");
				goto out;
			}
			raw = json_string_value(json_array_get(args, 0));
			if (na == 3) {
				lname = strdup(json_string_value(json_array_get(args, 2)));
				if (lname == NULL) {
					df_oom(d);
					goto out;
				}
				for (char *p = lname; *p; p++)
					*p = (char)tolower((unsigned char)*p);
				if (!valid_stage_name(lname)) {
					df_fail(d, l0, "invalid name for build stage: \"%s\", name can't start with a number or contain symbols", lname);
					free(lname);
					goto out;
				}
				for (size_t k = 0; k < nst; k++)
					if (st[k].name && !strcmp(st[k].name, lname)) {
						df_fail(d, l0, "duplicate stage name \"%s\" (first defined at line %ld)",
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
				df_fail(d, l0, "base name (%s) should not be blank", raw);
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
			if (rec == NULL || df_set_str(d, rec, "from", raw, strlen(raw)) < 0 ||
			    df_set_str(d, rec, "base", base, strlen(base)) < 0) {
				json_decref(rec);
				free(base);
				free(pexp);
				free(lname);
				if (d->e->code == 0)
					df_oom(d);
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
						df_oom(d);
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
				df_fail(d, l0, "%s before the first FROM (only ARG may come before FROM)", op);
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
					df_oom(d);
					goto out;
				}
				rec = json_pack("{s:s, s:O, s:O}", "type", "arg", "line", line, "name",
				    json_object_get(p, "key"));
				if (rec == NULL) {
					free(val);
					df_oom(d);
					goto out;
				}
				json_object_set_new(rec, "value", val ? json_string(val) : json_null());
				if (json_object_get(rec, "value") == NULL) {
					free(val);
					json_decref(rec);
					df_fail(d, l0, "invalid UTF-8 in build argument %s", key);
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
				df_oom(d);
				goto out;
			}
			json_array_append_new(s->instrs, rec);
			if (check_arity(d, n, l0) < 0 || check_flags(d, n, l0) < 0)
				goto out;
			if (!strcmp(op, "MAINTAINER") &&
			    df_warn_add(d, l0, "MAINTAINER is deprecated, use LABEL maintainer=... instead") < 0)
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
					df_fail(d, l0, "%s --from=%s names %s stage; only earlier stages can be copied from",
					    op, from, bad);
					goto out;
				}
				if (j >= 0) {
					json_object_set_new(rec, "from_stage", json_integer(j));
					if (add_dep(s, j) < 0) {
						df_oom(d);
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
		df_fail(d, d->errline, "no FROM instruction: a Dockerfile needs at least one stage");
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

int
df_plan_parse_only(struct df *d, json_t *records)
{
	size_t i, wi = 0, nw = json_array_size(d->warnings);
	json_t *n;

	json_array_foreach(d->nodes, i, n) {
		json_t *line = json_object_get(n, "line");
		json_t *rec = json_pack("{s:s, s:n, s:O}", "type", "instr", "stage", "line", line);
		long l = (long)json_integer_value(json_array_get(line, 0));

		if (rec == NULL || json_object_update_missing(rec, n) < 0) {
			json_decref(rec);
			return df_oom(d);
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
int
df_sort_warnings(struct df *d, json_t *recs)
{
	json_t *w = json_array(), *rest = json_array(), *r;
	size_t i, wi = 0, nw;

	if (w == NULL || rest == NULL) {
		json_decref(w);
		json_decref(rest);
		return df_oom(d);
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
