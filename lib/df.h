/* df.h - private to the Dockerfile parser (lib/dockerfile.c and the
 * lib/df_*.c files it is split into): the parser state, its limits and the
 * functions the phases share. Not installed, not for other modules.
 *
 * The plan is made in two passes over the text, so that memory stays
 * linear in the Dockerfile with a small constant: pass 1 reads every
 * instruction, checks it and keeps only a few numbers per stage (and per
 * warning and stage reference); pass 2 reads again the instructions that
 * are written and hands each record to the sink as soon as it is made. */
#ifndef HYPR_DF_H
#define HYPR_DF_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>
#include "dockerfile.h"
#include "map.h"
#include "strbuf.h"

/* Limits on what a Dockerfile can make the parser do (hypr-parse(1)). */
#define DF_MAX_TEXT (16u << 20)		/* bytes in the Dockerfile */
#define DF_MAX_LINE 65535u		/* bytes in a physical line, BuildKit's */
#define DF_MAX_INSTR (1u << 20)		/* instructions */
#define DF_MAX_HEREDOCS 1024u		/* heredocs in one instruction */
#define DF_MAX_GLOBALS (16u << 20)	/* bytes of global ARG values */
#define DF_MAX_BASE 4096u		/* bytes of an expanded FROM image or platform */

/* One heredoc of an instruction: its delimiter word and body. */
struct heredoc {
	char *name;
	struct hypr_strbuf content;
	int expand, chomp;
	long fd;
};

/* A position in the text: the next physical line to read. */
struct df_cur {
	const char *p;
	long line;		/* physical lines before p */
};

/* One instruction as df_read_node reads it. */
struct df_item {
	json_t *node;		/* op, original, flags, args, form, ..., line */
	long line0, line1;
	size_t off;		/* byte offset of its first physical line */
	int empty_cont;		/* a blank line inside its continuation */
	struct hypr_strbuf text;	/* the joined logical line; reused */
};

enum df_warn_kind { DF_WARN_EMPTY_CONT, DF_WARN_MAINTAINER, DF_WARN_DUP_STAGE };

/* A warning, kept small; its message is made in pass 2. */
struct df_warn {
	long line;
	size_t off;		/* its instruction, to read again */
	int kind;
};

/* A stage as pass 1 leaves it. */
struct df_dep {
	int stage;
	long line;		/* the instruction that needs it */
};
struct df_stage {
	char *name;		/* lower-case, or NULL */
	size_t off;		/* byte offset of its FROM */
	size_t node;		/* the FROM's instruction number in the file */
	long line;		/* the FROM's first line */
	size_t ninstr;		/* instructions after the FROM */
	int base;		/* the earlier stage it is built FROM, or -1 */
	struct df_dep *deps;
	size_t ndeps, capdeps;
	size_t ref0;		/* its first entry in df.refs */
	int needed;
};

/* A stage named by COPY --from or RUN --mount=...,from=; resolved once
 * every stage is known (a later stage may be named). */
enum df_ref_kind { DF_REF_COPY, DF_REF_MOUNT };
struct df_ref {
	size_t node;		/* instruction number in the file */
	long line;
	int stage;		/* the stage it is in */
	int kind;
	int target;		/* resolved stage, or -1 (an image) */
	char *name;
};

/* The parser's state for one Dockerfile. */
struct df {
	const struct hypr_dockerfile_opts *o;
	const char *name;
	struct hypr_err *e;
	const char *text;
	size_t len;
	int esc;
	int dir_done;
	int seen_escape, seen_syntax, seen_check;
	json_t *directives;
	long errline;		/* line for messages about the current node */
	/* pass 1 */
	size_t ninstr;
	size_t first_off;	/* the first instruction */
	long first_line;
	size_t nglobal;		/* instructions before the first FROM */
	struct df_stage *st;
	size_t nst, capst;
	struct hypr_map names;	/* stage name -> index + 1 of the last stage */
	struct df_ref *refs;
	size_t nrefs, caprefs;
	struct df_warn *warns;
	size_t nwarns, capwarns;
	struct hypr_vars meta;	/* global ARGs and the platform ARGs */
	size_t meta_bytes;
	struct hypr_err ierr;	/* first instruction-layer error */
	struct hypr_err lerr;	/* first error of the later checks */
	/* pass 2 */
	const struct hypr_dockerfile_sink *sink;
	size_t wi;		/* warnings written */
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
/* A lower-case copy of s, or NULL. */
char *df_lower_dup(const char *s);
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
/* Remember a warning of kind for the instruction at off (pass 1). */
int df_warn_add(struct df *d, long line, size_t off, int kind);
/* Edit distance of two short strings (99 when one is 40 bytes or more). */
size_t df_levenshtein(const char *a, const char *b);
/* Grow *v (elements of size sz) to hold n + 1; -1 when out of memory. */
int df_grow(void **v, size_t *cap, size_t n, size_t sz);
/* The plan stream's header (after pass 1: it holds the directives); an
 * error is HYPR_EXIT_USAGE for build args, file name or target that are
 * not UTF-8. */
int df_header(struct df *d, json_t **hdr);

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
/* 1 if the word is a heredoc marker (BuildKit's ParseHeredoc), else 0. */
int df_is_heredoc_word(const char *w, size_t n);
/* Free n heredocs and the array. */
void df_heredocs_free(struct heredoc *v, size_t n);
/* Read the next instruction at *c (phases 1 and 2): 1 with it in *it (the
 * caller decrefs it->node), 0 at the end of the text, -1 on a syntax error. */
int df_read_node(struct df *d, struct df_cur *c, struct df_item *it);

/* ---- df_instr.c: phase 2, one instruction ---- */

/* Parse one logical line into a node object (op, original, flags,
 * flag_args, args, form, expand, ...); nested for an ONBUILD trigger. */
int df_parse_node(struct df *d, const char *line, size_t n, json_t **out, int nested);
/* 1 if the node takes heredocs (RUN, COPY, ADD not in exec form, also
 * under ONBUILD). */
int df_can_heredoc(json_t *node);
/* 1 if op is a Dockerfile instruction (upper case). */
int df_known_op(const char *op);
/* The instruction op is probably a typo of, or NULL. */
const char *df_suggest_op(const char *op);

/* ---- df_check.c: phase 3, one instruction's rules ---- */

/* Each instruction's checks (flags, arity, blank names, ONBUILD, unknown
 * instructions), in the order BuildKit's parse functions make them. */
int df_check_instr(struct df *d, json_t *n, long line);
/* RUN --mount=type=...: the types hypr cannot honour are refused; each
 * from= is handed to cb (a stage reference). */
int df_check_mounts(struct df *d, json_t *flags, long line,
    int (*cb)(struct df *, const char *, size_t, long), size_t node);
/* --parse-only keeps the checks the parser alone made before: unknown
 * instructions and ONBUILD triggers. */
int df_check_parse_only(struct df *d, json_t *n, long line);

/* ---- df_stage.c: phase 3, stages and the plan ---- */

/* Pass 1 and 2 over d->text: check everything, then hand the header and
 * the records to d->sink. */
int df_plan(struct df *d);
/* Free what pass 1 kept. */
void df_free(struct df *d);

#endif
