/* df_check.c - phase 3 of the Dockerfile parser, one instruction at a time:
 * BuildKit's instruction layer (instructions/parse.go): the flags each
 * instruction takes, its arity, blank names, ONBUILD's limits and the
 * mount types hypr refuses. df_stage.c calls these while it walks the
 * stages. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "df.h"
#include "stream.h"

/* The flags each instruction takes (BuildKit's BFlags per instruction):
 * 's' a string, 'S' a repeatable string (AddStrings), 'b' a boolean. */
static const struct {
	const char *op, *name;
	char kind;
} known_flags[] = {
	{ "FROM", "platform", 's' },
	{ "RUN", "mount", 'S' }, { "RUN", "network", 's' },
	{ "RUN", "security", 's' }, { "RUN", "device", 'S' },
	{ "COPY", "from", 's' }, { "COPY", "chown", 's' }, { "COPY", "chmod", 's' },
	{ "COPY", "link", 'b' }, { "COPY", "parents", 'b' }, { "COPY", "exclude", 'S' },
	{ "ADD", "chown", 's' }, { "ADD", "chmod", 's' }, { "ADD", "link", 'b' },
	{ "ADD", "keep-git-dir", 'b' }, { "ADD", "checksum", 's' },
	{ "ADD", "exclude", 'S' }, { "ADD", "unpack", 'b' },
	{ "HEALTHCHECK", "interval", 's' }, { "HEALTHCHECK", "timeout", 's' },
	{ "HEALTHCHECK", "start-period", 's' }, { "HEALTHCHECK", "start-interval", 's' },
	{ "HEALTHCHECK", "retries", 's' },
	{ NULL, NULL, 0 }
};

/* BuildKit's BFlags.Parse with its wording: an unknown flag (with a
 * suggestion), a repeated one that is not repeatable, a missing value, a
 * boolean that is not one. */
static int
check_flags(struct df *d, json_t *n, const char *op, long line)
{
	uint64_t seen = 0;
	json_t *f;
	size_t i;

	json_array_foreach(json_object_get(n, "flag_args"), i, f) {
		const char *s = json_string_value(f) + 2, *eq = strchr(s, '=');
		int nl = eq ? (int)(eq - s) : (int)strlen(s), k, hit = -1;

		for (k = 0; known_flags[k].op; k++)
			if (!strcmp(known_flags[k].op, op) &&
			    strlen(known_flags[k].name) == (size_t)nl &&
			    !strncmp(known_flags[k].name, s, (size_t)nl))
				hit = k;
		if (hit < 0) {
			const char *best = NULL;
			size_t bd = 3;
			char name[48];

			snprintf(name, sizeof(name), "%.*s", nl, s);
			for (k = 0; known_flags[k].op; k++) {
				size_t dd;

				if (strcmp(known_flags[k].op, op) != 0)
					continue;
				if ((dd = df_levenshtein(name, known_flags[k].name)) < bd) {
					bd = dd;
					best = known_flags[k].name;
				}
			}
			if (best != NULL && (size_t)nl < sizeof(name) - 1)
				return df_fail(d, line, "unknown flag: --%.*s (did you mean %s?)",
				    nl, s, best);
			return df_fail(d, line, "unknown flag: --%.*s", nl > 200 ? 200 : nl, s);
		}
		if (known_flags[hit].kind != 'S') {
			if (seen & ((uint64_t)1 << hit))
				return df_fail(d, line, "duplicate flag specified: --%.*s", nl, s);
			seen |= (uint64_t)1 << hit;
		}
		if (known_flags[hit].kind == 'b') {
			if (eq && eq[1] == '\0')
				return df_fail(d, line, "missing a value on flag: --%.*s", nl, s);
			if (eq && strcasecmp(eq + 1, "true") && strcasecmp(eq + 1, "false"))
				return df_fail(d, line, "expecting boolean value for flag --%.*s, not: %s",
				    nl, s, eq + 1);
		} else if (eq == NULL)
			return df_fail(d, line, "missing a value on flag: --%.*s", nl, s);
	}
	return 0;
}

static int
check_blank_names(struct df *d, json_t *n, const char *op, long line)
{
	json_t *p;
	size_t i;

	json_array_foreach(json_object_get(n, "pairs"), i, p)
		if (json_string_length(json_object_get(p, "key")) == 0)
			return df_fail(d, line, "%s names can not be blank", op);
	return 0;
}

int
df_check_mounts(struct df *d, json_t *flags, long line,
    int (*cb)(struct df *, const char *, size_t, long), size_t node)
{
	json_t *m = json_object_get(flags, "mount"), *v;
	size_t i;

	json_array_foreach(m, i, v) {
		const char *s = json_string_value(v), *from = NULL;
		size_t fl = 0;
		char type[32] = "bind";

		while (s && *s) {
			const char *c = strchr(s, ',');
			size_t l = c ? (size_t)(c - s) : strlen(s);

			if (l > 5 && strncmp(s, "type=", 5) == 0)
				snprintf(type, sizeof(type), "%.*s", (int)(l - 5), s + 5);
			else if (l > 5 && strncmp(s, "from=", 5) == 0) {
				from = s + 5;
				fl = l - 5;
			}
			s = c ? c + 1 : NULL;
		}
		if (!strcasecmp(type, "ssh"))
			return df_fail(d, line, "RUN --mount=type=ssh is not supported by hypr "
			    "(no SSH agent reaches the build VM; fetch over HTTPS with a "
			    "--mount=type=secret instead)");
		if (from != NULL && cb != NULL) {
			char *name = strndup(from, fl);
			int r;

			if (name == NULL)
				return df_oom(d);
			r = cb(d, name, node, line);
			free(name);
			if (r < 0)
				return -1;
		}
	}
	return 0;
}

static int
unknown_instruction(struct df *d, json_t *n, long line)
{
	const char *orig = hypr_json_str(n, "original"), *op = hypr_json_str(n, "op");
	const char *best = df_suggest_op(op);
	size_t kl = 0;

	if (orig == NULL)
		orig = "";
	/* cppcheck-suppress arrayIndexOutOfBoundsCond ; orig is a C string, kl its word */
	while (orig[kl] && !df_is_ws((unsigned char)orig[kl]))
		kl++;
	if (kl >= 32)
		return df_fail(d, line, "unknown instruction: %.24s...", orig);
	if (best != NULL)
		return df_fail(d, line, "unknown instruction: %.*s (did you mean %s?)",
		    (int)kl, orig, best);
	return df_fail(d, line, "unknown instruction: %.*s", (int)kl, orig);
}

/* ONBUILD's own rules: the trigger cannot be ONBUILD, FROM or MAINTAINER
 * (BuildKit), and must be an instruction (hypr checks it now rather than
 * when the trigger fires). */
static int
check_onbuild(struct df *d, json_t *n, long line)
{
	const char *a0 = json_string_value(json_array_get(json_object_get(n, "args"), 0));
	json_t *sub = json_object_get(n, "onbuild");
	char trig[16];
	size_t k = 0;

	while (a0 && a0[k] && !df_is_ws((unsigned char)a0[k]) && k < sizeof(trig) - 1) {
		trig[k] = (char)toupper((unsigned char)a0[k]);
		k++;
	}
	trig[k] = '\0';
	if (!strcmp(trig, "ONBUILD"))
		return df_fail(d, line, "Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed");
	if (!strcmp(trig, "FROM") || !strcmp(trig, "MAINTAINER"))
		return df_fail(d, line, "%s isn't allowed as an ONBUILD trigger", trig);
	if (sub != NULL && !df_known_op(hypr_json_str(sub, "op")))
		return unknown_instruction(d, sub, line);
	return 0;
}

int
df_check_instr(struct df *d, json_t *n, long line)
{
	const char *op = hypr_json_str(n, "op");
	json_t *args = json_object_get(n, "args");
	size_t na = json_array_size(args);

	if (!df_known_op(op))
		return unknown_instruction(d, n, line);
	if (!strcmp(op, "ENV") || !strcmp(op, "LABEL")) {
		if (check_flags(d, n, op, line) < 0)
			return -1;
		if (na == 0)
			return df_fail(d, line, "%s requires at least one argument", op);
		return check_blank_names(d, n, op, line);
	}
	if (!strcmp(op, "ARG")) {	/* BuildKit parses no flags on ARG */
		if (na == 0)
			return df_fail(d, line, "ARG requires at least one argument");
		return check_blank_names(d, n, op, line);
	}
	if (!strcmp(op, "MAINTAINER") || !strcmp(op, "WORKDIR") || !strcmp(op, "USER") ||
	    !strcmp(op, "STOPSIGNAL")) {
		if (na != 1)
			return df_fail(d, line, "%s requires exactly one argument", op);
		/* BuildKit parses no flags on STOPSIGNAL */
		return strcmp(op, "STOPSIGNAL") ? check_flags(d, n, op, line) : 0;
	}
	if (!strcmp(op, "COPY") || !strcmp(op, "ADD")) {
		const char *dest = json_string_value(json_array_get(args, na - 1));

		if (na < 2)
			return df_fail(d, line, "%s requires at least two arguments, but only one "
			    "was provided. Destination could not be determined", op);
		if (check_flags(d, n, op, line) < 0)
			return -1;
		if (df_is_heredoc_word(dest, strlen(dest)))
			return df_fail(d, line, "%s cannot accept a heredoc as a destination", op);
		return 0;
	}
	if (!strcmp(op, "FROM")) {
		if (na == 3 && !strcasecmp(json_string_value(json_array_get(args, 1)), "AS")) {
			const char *name = json_string_value(json_array_get(args, 2));
			char *l = df_lower_dup(name);
			int ok = l != NULL && islower((unsigned char)l[0]);

			if (l == NULL)
				return df_oom(d);
			for (const char *p = l; ok && *p; p++)
				ok = islower((unsigned char)*p) || isdigit((unsigned char)*p) ||
				    *p == '-' || *p == '_' || *p == '.';
			free(l);
			if (!ok)
				return df_fail(d, line, "invalid name for build stage: \"%s\", "
				    "name can't start with a number or contain symbols", name);
		} else if (na != 1)
			return df_fail(d, line, "FROM requires either one or three arguments "
			    "(FROM image [AS name])");
		return check_flags(d, n, op, line);
	}
	if (!strcmp(op, "ONBUILD")) {
		json_t *sub = json_object_get(n, "onbuild");

		if (na == 0)
			return df_fail(d, line, "ONBUILD requires at least one argument");
		if (check_flags(d, n, op, line) < 0 || check_onbuild(d, n, line) < 0)
			return -1;
		if (sub && !strcmp(hypr_json_str(sub, "op"), "RUN"))
			return df_check_mounts(d, json_object_get(sub, "flags"), line, NULL, 0);
		return 0;
	}
	if (!strcmp(op, "RUN")) {
		if (check_flags(d, n, op, line) < 0)
			return -1;
		return df_check_mounts(d, json_object_get(n, "flags"), line, NULL, 0);
	}
	if (!strcmp(op, "HEALTHCHECK")) {
		const char *a0 = json_string_value(json_array_get(args, 0));

		if (na == 0)
			return df_fail(d, line, "HEALTHCHECK requires at least one argument");
		if (!strcasecmp(a0, "NONE")) {	/* no flags are parsed for NONE */
			if (na != 1)
				return df_fail(d, line, "HEALTHCHECK NONE takes no arguments");
			return 0;
		}
		if (check_flags(d, n, op, line) < 0)
			return -1;
		if (strcasecmp(a0, "CMD") != 0) {
			char typ[64];
			size_t k;

			for (k = 0; k < sizeof(typ) - 1 && a0[k]; k++)
				typ[k] = (char)toupper((unsigned char)a0[k]);
			typ[k] = '\0';
			return df_fail(d, line, "Unknown type \"%s\" in HEALTHCHECK (try CMD)", typ);
		}
		if (na == 1)
			return df_fail(d, line, "Missing command after HEALTHCHECK CMD");
		return 0;
	}
	if (!strcmp(op, "EXPOSE") || !strcmp(op, "VOLUME")) {
		json_t *v;
		size_t i;

		if (na == 0)
			return df_fail(d, line, "%s requires at least one argument", op);
		if (check_flags(d, n, op, line) < 0)
			return -1;
		if (!strcmp(op, "VOLUME"))
			json_array_foreach(args, i, v) {
				const char *b = json_string_value(v), *e = b + json_string_length(v);

				df_trim_space(&b, &e);
				if (b == e)
					return df_fail(d, line, "VOLUME specified can not be an empty string");
			}
		return 0;
	}
	if (!strcmp(op, "SHELL")) {
		if (check_flags(d, n, op, line) < 0)
			return -1;
		if (na == 0)
			return df_fail(d, line, "SHELL requires at least one argument");
		if (strcmp(hypr_json_str(n, "form"), "exec") != 0)
			return df_fail(d, line, "SHELL requires the arguments to be in JSON form");
		return 0;
	}
	return check_flags(d, n, op, line);	/* CMD, ENTRYPOINT */
}

int
df_check_parse_only(struct df *d, json_t *n, long line)
{
	const char *op = hypr_json_str(n, "op");

	if (!df_known_op(op))
		return unknown_instruction(d, n, line);
	if (!strcmp(op, "ONBUILD") && json_array_size(json_object_get(n, "args")) > 0)
		return check_onbuild(d, n, line);
	return 0;
}
