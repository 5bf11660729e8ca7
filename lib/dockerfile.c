/* dockerfile.c - Dockerfile parser producing plan records.
 *
 * Phase 1 (as BuildKit's parser.Parse, df_lex.c): physical lines become
 * logical instructions: parser directives, comments, continuations
 * (comment and blank lines inside them skipped), heredoc bodies.
 * Phase 2 (as its line parsers, df_instr.c): keyword, flags, arguments and
 * form.
 * Phase 3 (as its instruction layer, df_stage.c): stages, global ARGs and
 * FROM expansion, COPY --from, the target and the stages it needs.
 * This file: the helpers they share (df.h) and the entry point. */
#include "dockerfile.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "df.h"
#include "stream.h"

/* ---- small helpers ---- */

/* Go's unicode.IsSpace for ASCII (and the two Latin-1 spaces as UTF-8). */
size_t
df_space_len(const char *s, size_t n)
{
	unsigned char c = (unsigned char)s[0];

	if (c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r')
		return 1;
	if (n >= 2 && c == 0xc2 && ((unsigned char)s[1] == 0x85 || (unsigned char)s[1] == 0xa0))
		return 2;
	return 0;
}

int
df_is_ws(int c)		/* the [\t\v\f\r ] of BuildKit's reWhitespace */
{
	return c == ' ' || c == '\t' || c == '\v' || c == '\f' || c == '\r';
}

/* TrimSpace into [*b, *e). */
void
df_trim_space(const char **b, const char **e)
{
	size_t k;

	while (*b < *e && (k = df_space_len(*b, (size_t)(*e - *b))) > 0)
		*b += k;
	while (*e > *b) {
		unsigned char c = (unsigned char)(*e)[-1];

		if (c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r')
			(*e)--;
		else if (*e - *b >= 2 && (unsigned char)(*e)[-2] == 0xc2 &&
		    (c == 0x85 || c == 0xa0))
			*e -= 2;
		else
			break;
	}
}

int
df_fail(struct df *d, long line, const char *fmt, ...)
{
	char msg[900];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return hypr_err_set(d->e, HYPR_EXIT_INPUT, "%s:%ld: %s", d->name, line, msg);
}

int
df_oom(struct df *d)
{
	return hypr_err_set(d->e, HYPR_EXIT_SYSTEM, "%s: out of memory", d->name);
}

/* A JSON string from bytes; NULL (error set) when not UTF-8. */
json_t *
df_jstr(struct df *d, const char *s, size_t n)
{
	json_t *j;

	if (memchr(s, '\0', n) != NULL) {
		df_fail(d, d->errline, "NUL byte in instruction");
		return NULL;
	}
	if ((j = json_stringn(s, n)) == NULL)
		df_fail(d, d->errline, "invalid UTF-8 in instruction");
	return j;
}

json_t *
df_jcstr(struct df *d, const char *s)
{
	return df_jstr(d, s, strlen(s));
}

/* obj[key] = string; returns -1 on failure. */
int
df_set_str(struct df *d, json_t *obj, const char *key, const char *s, size_t n)
{
	json_t *j = df_jstr(d, s, n);

	if (j == NULL)
		return -1;
	json_object_set_new(obj, key, j);
	return 0;
}

int
df_append_str(struct df *d, json_t *arr, const char *s, size_t n)
{
	json_t *j = df_jstr(d, s, n);

	if (j == NULL)
		return -1;
	json_array_append_new(arr, j);
	return 0;
}

json_t *
df_jrange(long s, long e)
{
	return json_pack("[II]", (json_int_t)s, (json_int_t)e);
}

int
df_warn_add(struct df *d, long line, const char *msg)
{
	json_t *w = json_pack("{s:s, s:I}", "type", "warning", "line", (json_int_t)line);
	json_t *m = json_string(msg);

	if (w == NULL)
		return df_oom(d);
	if (m == NULL) {
		/* the message quotes the instruction, which is not UTF-8 */
		m = json_string("(instruction is not valid UTF-8)");
	}
	json_object_set_new(w, "message", m);
	json_array_append_new(d->warnings, w);
	return 0;
}
int
hypr_dockerfile_plan(const char *text, size_t len,
    const struct hypr_dockerfile_opts *o, json_t **header, json_t **records,
    struct hypr_err *e)
{
	struct df d = { .o = o, .e = e, .esc = '\\' };
	json_t *recs = json_array(), *hdr = NULL, *ba = json_object();
	int rc = -1;

	d.name = o->name ? o->name : "Dockerfile";
	d.directives = json_object();
	d.nodes = json_array();
	d.warnings = json_array();
	if (recs == NULL || ba == NULL || d.directives == NULL || d.nodes == NULL ||
	    d.warnings == NULL) {
		df_oom(&d);
		goto out;
	}
	if (df_parse_text(&d, text, len) < 0)
		goto out;
	if (o->parse_only ? df_plan_parse_only(&d, recs) < 0 : df_plan_stages(&d, recs) < 0)
		goto out;
	if (df_sort_warnings(&d, recs) < 0)
		goto out;
	if (o->build_args)
		for (size_t i = 0; i < o->build_args->n; i++) {
			const char *kv = o->build_args->kv[i], *eq = strchr(kv, '=');
			char key[256];
			json_t *v;

			snprintf(key, sizeof(key), "%.*s", (int)(eq - kv), kv);
			if ((v = json_string(eq + 1)) == NULL) {
				hypr_err_set(e, HYPR_EXIT_USAGE, "--build-arg %s: not UTF-8", key);
				goto out;
			}
			json_object_set_new(ba, key, v);
		}
	{
		char esc[2] = { (char)d.esc, 0 };

		json_object_set_new(d.directives, "escape", json_string(esc));
	}
	hdr = json_pack("{s:s?, s:n, s:s?, s:s, s:O, s:O}",
	    "dockerfile", d.name, "context", "target", o->target,
	    "platform", o->platform ? o->platform : hypr_dockerfile_host_platform(),
	    "build_args", ba, "directives", d.directives);
	if (hdr == NULL) {
		hypr_err_set(e, HYPR_EXIT_USAGE, "%s: file name or target is not UTF-8", d.name);
		goto out;
	}
	if (o->parse_only)
		json_object_set_new(hdr, "parse_only", json_true());
	*header = hdr;
	*records = recs;
	recs = NULL;
	rc = 0;
out:
	json_decref(recs);
	json_decref(ba);
	json_decref(d.directives);
	json_decref(d.nodes);
	json_decref(d.warnings);
	return rc;
}
