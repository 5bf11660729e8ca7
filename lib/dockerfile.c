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

#include <ctype.h>
#include <stdarg.h>
#include <stdint.h>
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

	if (n && memchr(s, '\0', n) != NULL) {
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

size_t
df_levenshtein(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b), prev[40], cur[40];

	if (la >= 40 || lb >= 40)
		return 99;
	for (size_t j = 0; j <= lb; j++)
		prev[j] = j;
	for (size_t i = 1; i <= la; i++) {
		cur[0] = i;
		for (size_t j = 1; j <= lb; j++) {
			size_t c = prev[j - 1] + (a[i - 1] != b[j - 1]);

			if (prev[j] + 1 < c)
				c = prev[j] + 1;
			if (cur[j - 1] + 1 < c)
				c = cur[j - 1] + 1;
			cur[j] = c;
		}
		memcpy(prev, cur, sizeof(cur));
	}
	return prev[lb];
}

int
df_grow(void **v, size_t *cap, size_t n, size_t sz)
{
	size_t nc;
	void *p;

	if (n < *cap)
		return 0;
	nc = *cap ? *cap * 2 : 4;
	if (nc <= n || nc > SIZE_MAX / sz || (p = realloc(*v, nc * sz)) == NULL)
		return -1;
	*v = p;
	*cap = nc;
	return 0;
}

int
df_warn_add(struct df *d, long line, size_t off, int kind)
{
	if (df_grow((void **)&d->warns, &d->capwarns, d->nwarns, sizeof(*d->warns)) < 0)
		return df_oom(d);
	d->warns[d->nwarns++] = (struct df_warn){ .line = line, .off = off, .kind = kind };
	return 0;
}

int
df_header(struct df *d, json_t **out)
{
	const struct hypr_dockerfile_opts *o = d->o;
	json_t *hdr, *ba = json_object();
	char esc[2] = { (char)d->esc, 0 };

	*out = NULL;
	if (ba == NULL)
		return df_oom(d);
	if (o->build_args)
		for (size_t i = 0; i < o->build_args->n; i++) {
			const char *kv = o->build_args->kv[i], *eq = strchr(kv, '=');
			char key[256];
			json_t *v;

			snprintf(key, sizeof(key), "%.*s", (int)(eq - kv), kv);
			if ((v = json_string(eq + 1)) == NULL) {
				json_decref(ba);
				return hypr_err_set(d->e, HYPR_EXIT_USAGE,
				    "--build-arg %s: not UTF-8", key);
			}
			json_object_set_new(ba, key, v);
		}
	json_object_set_new(d->directives, "escape", json_string(esc));
	hdr = json_pack("{s:s?, s:n, s:s?, s:s, s:O, s:O}",
	    "dockerfile", d->name, "context", "target", o->target,
	    "platform", o->platform ? o->platform : hypr_dockerfile_host_platform(),
	    "build_args", ba, "directives", d->directives);
	json_decref(ba);
	if (hdr == NULL)
		return hypr_err_set(d->e, HYPR_EXIT_USAGE,
		    "%s: file name or target is not UTF-8", d->name);
	if (o->parse_only)
		json_object_set_new(hdr, "parse_only", json_true());
	*out = hdr;
	return 0;
}

int
hypr_dockerfile_plan_stream(const char *text, size_t len,
    const struct hypr_dockerfile_opts *o, const struct hypr_dockerfile_sink *sink,
    struct hypr_err *e)
{
	struct df d = { .o = o, .e = e, .esc = '\\', .text = text, .len = len,
	    .sink = sink };
	int rc;

	d.name = o->name ? o->name : "Dockerfile";
	if (len > DF_MAX_TEXT)
		return hypr_err_set(e, HYPR_EXIT_INPUT, "%s: larger than %u bytes", d.name,
		    DF_MAX_TEXT);
	if ((d.directives = json_object()) == NULL)
		return df_oom(&d);
	rc = df_plan(&d);
	df_free(&d);
	json_decref(d.directives);
	return rc;
}

/* The sink of hypr_dockerfile_plan: everything into two JSON values. */
struct collect {
	json_t *hdr, *recs;
};

static int
collect_header(void *arg, json_t *hdr, struct hypr_err *e)
{
	struct collect *c = arg;

	(void)e;
	c->hdr = json_incref(hdr);
	return 0;
}

static int
collect_record(void *arg, json_t *rec, struct hypr_err *e)
{
	struct collect *c = arg;

	if (json_array_append(c->recs, rec) < 0)
		return hypr_err_set(e, HYPR_EXIT_SYSTEM, "out of memory");
	return 0;
}

int
hypr_dockerfile_plan(const char *text, size_t len,
    const struct hypr_dockerfile_opts *o, json_t **header, json_t **records,
    struct hypr_err *e)
{
	struct collect c = { .recs = json_array() };
	struct hypr_dockerfile_sink sink = { collect_header, collect_record, &c };

	if (c.recs == NULL)
		return hypr_err_set(e, HYPR_EXIT_SYSTEM, "out of memory");
	if (hypr_dockerfile_plan_stream(text, len, o, &sink, e) < 0) {
		json_decref(c.hdr);
		json_decref(c.recs);
		return -1;
	}
	*header = c.hdr;
	*records = c.recs;
	return 0;
}

char *
df_lower_dup(const char *s)
{
	char *l = strdup(s);

	for (char *p = l; p && *p; p++)
		*p = (char)tolower((unsigned char)*p);
	return l;
}
