/* template.h - the one engine behind every --format: the subset of Go's
 * text/template that docker users' scripts use, over JSON data.
 *
 * Text with "\t" and "\n" written as two characters turned into a tab and
 * a newline (docker's CLI does that to a format string); actions {{...}}
 * with "{{-" and "-}}" trimming, and comment actions:
 *   .  .A.B  $  $x.A  "str"  `raw`  123  true false nil  (pipeline).A
 *   pipelines "a | f b" (the value goes last), {{if}} {{else if}} {{else}}
 *   {{end}}, {{with}}, {{range}} over arrays and objects (keys sorted) with
 *   optional "$v :=" or "$k, $v :=";
 *   functions: json index join split println print printf (%s %v %d %q,
 *   flags - 0, width, precision) len upper lower
 *   title truncate eq ne not and or.
 * Objects are structs: a name they lack is an unknown field, an error
 * (never "<no value>"), except in the objects listed as maps (labels...),
 * where a missing key is empty, as index of a missing key is. A field of
 * null is empty. A field given arguments indexes the object it names
 * (docker's {{.Label "k"}}). Values print as Go's fmt does: [a b] for an
 * array, map[k:v] for an object, "" for null. */
#ifndef HYPR_TEMPLATE_H
#define HYPR_TEMPLATE_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>
#include "err.h"
#include "strbuf.h"

#define HYPR_TMPL_MAX_LEN (64 * 1024)	/* template text */
#define HYPR_TMPL_MAX_DEPTH 32		/* nested blocks and parentheses */
#define HYPR_TMPL_MAX_STEPS (UINT64_C(1) << 26)	/* actions run, per exec */
#define HYPR_TMPL_MAX_OUT (256u << 20)	/* bytes written, per exec */

struct hypr_tmpl;

struct hypr_tmpl_data {
	json_t *dot;			/* {{.}} and {{$}} */
	json_t *const *maps;		/* objects whose missing keys are empty */
	size_t nmaps;
	uint64_t max_steps;		/* 0: HYPR_TMPL_MAX_STEPS */
};

/* Parse src; a syntax error or an unknown function is a usage error
 * ("col 7: ..."). */
int hypr_tmpl_parse(const char *src, struct hypr_tmpl **t, struct hypr_err *e);
/* Append the template run over d to out. An unknown field, a bad
 * argument or a limit is a usage error naming it; out holds the text
 * written before. */
int hypr_tmpl_exec(const struct hypr_tmpl *t, const struct hypr_tmpl_data *d,
    struct hypr_strbuf *out, struct hypr_err *e);
void hypr_tmpl_free(struct hypr_tmpl *t);

#endif
