/* df.h - private to the Dockerfile parser (lib/dockerfile.c and the
 * lib/df_*.c files it is split into): the parser state and the functions
 * the phases share. Not installed, not for other modules. */
#ifndef HYPR_DF_H
#define HYPR_DF_H

#include <stddef.h>
#include <jansson.h>
#include "dockerfile.h"
#include "strbuf.h"

/* One heredoc of an instruction: its delimiter word and body. */
struct heredoc {
	char *name;
	struct hypr_strbuf content;
	int expand, chomp;
	long fd;
};

/* The parser's state for one Dockerfile. */
struct df {
	const struct hypr_dockerfile_opts *o;
	const char *name;
	struct hypr_err *e;
	int esc;
	int dir_done;
	int seen_escape, seen_syntax, seen_check;
	json_t *directives;
	json_t *nodes;		/* parsed instructions */
	json_t *warnings;
	long errline;		/* line for messages about the current node */
};

/* ---- dockerfile.c: helpers shared by the phases ---- */

/* Length of the Go unicode.IsSpace character at s (ASCII, U+0085, U+00A0
 * as UTF-8), 0 if none. */
size_t df_space_len(const char *s, size_t n);
/* 1 for the [\t\v\f\r ] of BuildKit's reWhitespace. */
int df_is_ws(int c);
/* Go's TrimSpace on [*b, *e). */
void df_trim_space(const char **b, const char **e);
/* Set a HYPR_EXIT_INPUT error "NAME:LINE: what"; returns -1. */
int df_fail(struct df *d, long line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Set the out-of-memory error (HYPR_EXIT_SYSTEM); returns -1. */
int df_oom(struct df *d);
/* A JSON string from n bytes; NULL with the error set on NUL or bad UTF-8. */
json_t *df_jstr(struct df *d, const char *s, size_t n);
/* df_jstr of a NUL-terminated string. */
json_t *df_jcstr(struct df *d, const char *s);
/* obj[key] = the string of n bytes; -1 (error set) when it is not valid. */
int df_set_str(struct df *d, json_t *obj, const char *key, const char *s, size_t n);
/* Append the string of n bytes to arr; -1 (error set) when it is not valid. */
int df_append_str(struct df *d, json_t *arr, const char *s, size_t n);
/* The line range [s, e] as a JSON array. */
json_t *df_jrange(long s, long e);
/* Add a warning record for line to d->warnings. */
int df_warn_add(struct df *d, long line, const char *msg);

/* ---- df_lex.c: phase 1, physical lines into logical instructions ---- */

/* A parser directive line (`# key=value`) before the first other line:
 * record it in d->directives; -1 on a bad or repeated one. */
int df_directive(struct df *d, const char *s, size_t n, long line);
/* n without the trailing "\r\n" bytes (Go's TrimRight(s, "\r\n")). */
size_t df_trim_newline(const char *s, size_t n);
/* The number of leading space bytes (Go's unicode.IsSpace). */
size_t df_lead_space(const char *s, size_t n);
/* 1 if the line is a comment (# after leading space). */
int df_is_comment(const char *s, size_t n);
/* 1 if the line ends with the escape (a continuation): *n loses it. */
int df_trim_continuation(const char *s, size_t *n, int esc);
/* Call cb for each word of the line as BuildKit's lexer splits it with
 * raw quotes and escapes. */
void df_raw_words(const char *s, size_t n, void (*cb)(void *, const char *, size_t),
    void *arg);

/* The heredocs an instruction line declares, collected by df_hd_word. */
struct hd_scan {
	struct df *d;
	struct heredoc *v;
	size_t n;
	int err;
};
/* df_raw_words callback: add w to the hd_scan when it is a heredoc word. */
void df_hd_word(void *arg, const char *w, size_t n);
/* Free n heredocs and the array. */
void df_heredocs_free(struct heredoc *v, size_t n);
/* Phases 1 and 2: fill d->nodes with instruction objects carrying "line". */
int df_parse_text(struct df *d, const char *text, size_t len);

/* ---- df_instr.c: phase 2, one instruction ---- */

/* Parse one logical line into a node object (op, original, flags,
 * flag_args, args, form, expand, ...); nested for an ONBUILD trigger. */
int df_parse_node(struct df *d, const char *line, size_t n, json_t **out, int nested);
/* 1 if the node takes heredocs (RUN, COPY, ADD not in exec form, also
 * under ONBUILD). */
int df_can_heredoc(json_t *node);

/* ---- df_stage.c: phase 3, stages and the plan ---- */

/* The stage rules: append the plan records (global ARGs, the needed stages
 * and their instructions, warnings) to records. */
int df_plan_stages(struct df *d, json_t *records);
/* --parse-only: every node as an instr record with "stage": null. */
int df_plan_parse_only(struct df *d, json_t *records);
/* Move the warning records of recs before the first record that starts
 * after their line, keeping the order of the others. */
int df_sort_warnings(struct df *d, json_t *recs);

#endif
