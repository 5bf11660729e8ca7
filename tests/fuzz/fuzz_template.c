/* libFuzzer target: --format templates (lib/template.c). The input is a
 * template, then optionally a NUL and JSON data (a fixed image-like object
 * otherwise). Beyond "no crash, no leak", it checks:
 * - a refused template or a failed run is a usage error with a message;
 * - a run is bounded (steps) and deterministic: twice gives the same text. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "template.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *fixed =
    "{\"Id\":\"sha256:abc\",\"RepoTags\":[\"a:1\",\"b:2\"],\"Size\":12,\"N\":null,"
    "\"Config\":{\"Env\":[\"A=1\"],\"Labels\":{\"k\":\"v\"},\"Cmd\":null,\"On\":true}}";

static int
run(const struct hypr_tmpl *t, const struct hypr_tmpl_data *d, char **out,
    struct hypr_err *e)
{
	struct hypr_strbuf b = { 0 };
	int rc = hypr_tmpl_exec(t, d, &b, e);

	*out = hypr_strbuf_take(&b);
	return rc;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *buf = malloc(size + 1), *o1 = NULL, *o2 = NULL;
	struct hypr_tmpl *t = NULL;
	struct hypr_err e = { 0 }, e2 = { 0 };
	json_t *dot, *maps[1];
	struct hypr_tmpl_data d = { .maps = maps, .nmaps = 1, .max_steps = 20000 };
	size_t n;
	int r1, r2;

	if (buf == NULL)
		return 0;
	memcpy(buf, data, size);
	buf[size] = '\0';
	n = strlen(buf);
	dot = n < size ? json_loads(buf + n + 1, JSON_DECODE_ANY, NULL) : NULL;
	if (dot == NULL)
		dot = json_loads(fixed, 0, NULL);
	maps[0] = json_object_get(json_object_get(dot, "Config"), "Labels");
	d.dot = dot;
	if (hypr_tmpl_parse(buf, &t, &e) < 0) {
		if (e.code != HYPR_EXIT_USAGE || !e.msg[0] || t != NULL)
			__builtin_trap();
		goto out;
	}
	r1 = run(t, &d, &o1, &e);
	r2 = run(t, &d, &o2, &e2);
	if (r1 != r2 || (o1 == NULL) != (o2 == NULL) || (o1 && strcmp(o1, o2) != 0))
		__builtin_trap();
	if (r1 < 0 && (e.code != HYPR_EXIT_USAGE || strcmp(e.msg, e2.msg) != 0))
		__builtin_trap();
out:
	free(o1);
	free(o2);
	hypr_tmpl_free(t);
	json_decref(dot);
	free(buf);
	return 0;
}
