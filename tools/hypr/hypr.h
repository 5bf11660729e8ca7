/* hypr.h - the driver's internal interfaces (tools/hypr/). The driver never
 * links a stage's code: it finds the stage programs and fork/execs them.
 *
 *   main.c      the commands: build, compose, and those that exec a stage
 *   build.c     `hypr build`: docker build's flags into six command lines
 *   compose.c   `hypr compose`: one `hypr build` per service
 *   stages.c    the stage table; finding and exec'ing a stage's program
 *   pipeline.c  the pipeline: start the stages, watch them, report
 *   progress.c  what a person sees: the live view, plain lines, the log
 *   argv.c      argument vectors and sh quoting
 *   help.c      every command's usage: hypr help CMD, hypr CMD --help
 *   stdinctx.c  hypr build -: the context tar or the Dockerfile on stdin */
#ifndef HYPR_DRIVER_H
#define HYPR_DRIVER_H

#include <stddef.h>
#include <stdio.h>
#include <sys/types.h>

#ifndef HYPR_VERSION
#define HYPR_VERSION "0.1.0"
#endif

enum stage_id { ST_PARSE, ST_FETCH, ST_EXEC, ST_LAYER, ST_SQUASH, ST_STORE, NSTAGES };

/* argv.c: a growable argv (NULL-terminated). */
struct argv {
	char **v;
	size_t n, cap;
};
void argv_add(struct argv *a, const char *s);
void argv_addf(struct argv *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void argv_free(struct argv *a);
/* s as one sh word: as it is when safe, else in single quotes. */
void shquote(FILE *f, const char *s);

/* What `hypr build` was asked to do. */
struct build_opts {
	const char *context;
	const char *file;		/* -f; NULL = CONTEXT/Dockerfile; "-" = stdin */
	struct argv tags, build_args, labels, add_hosts, secrets;
	struct argv cache_from, cache_to;	/* --cache-from, --cache-to values */
	char cache_steps[4200];		/* --cache-to: where the steps stream is saved */
	const char *target, *platform, *pull, *iidfile, *keep, *from_dir, *disk;
	int from;			/* first stage to run (ST_PARSE unless --from) */
	int no_cache, quiet, print, network;
	int progress;			/* PROGRESS_* */
	unsigned long long log_max;	/* HYPR_LOG_MAX: the log's cap, 0 = none */
};
enum { PROGRESS_AUTO, PROGRESS_PLAIN, PROGRESS_TTY, PROGRESS_QUIET };

/* stages.c */
extern const char *const stage_names[NSTAGES];	/* "parse", "fetch", ... */
extern const char *const stage_progs[NSTAGES];	/* "hypr-parse", ... */
extern const char *const stage_outputs[NSTAGES];	/* "plan.jsonl", ... */

/* The program to run for a stage or helper: $HYPR_PARSE etc. if set, else the
 * file next to this hypr binary, else the bare name (found in PATH). */
const char *find_prog(const char *name);
/* $HYPR_PARSE for hypr-parse etc., or NULL. */
const char *prog_override(const char *name);
/* exec a stage program with argv (argv[0] replaced); never returns. */
__attribute__((noreturn)) void exec_prog(const char *name, char **args);
/* The stage named s ("exec" or "hypr-exec"); a usage error for --from if none. */
int stage_by_name(const char *s);

/* help.c: with --help or -h among a command's arguments (before --), print
 * its usage and exit 0, if the driver has it (else the command prints its own). */
void help_intercept(int argc, char **argv);
/* `hypr help ARGS...` as out = { "hypr", CMD, [SUB,] "--help", NULL } (out has
 * room for 5); returns its length, 0 for no ARGS; an unknown command is a
 * usage error. */
int help_argv(int argc, char **argv, char **out);

/* stdinctx.c: CONTEXT "-": stdin, a context tar or a Dockerfile, spooled
 * into the build's temp dir; sets o->context (ctx) and o->file (df). */
void stdin_context(struct build_opts *o, char *ctx, size_t ctxn, char *df, size_t dfn);

int cmd_build(int argc, char **argv);
int cmd_compose(int argc, char **argv);
/* pipeline.c: run the pipeline; returns the driver's exit status. */
int run_pipeline(struct build_opts *o, struct argv cmds[NSTAGES]);
struct hypr_root;
/* Set o->cache_steps for --cache-to (root NULL: for -n's eyes). */
void cache_steps_path(struct build_opts *o, const struct hypr_root *root);
/* Print cmds as a shell pipeline on stdout. */
void print_pipeline(const struct build_opts *o, struct argv cmds[NSTAGES]);

#endif
