/* hypr-parse - read a Dockerfile, write the plan stream (hypr-plan(5)). */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dockerfile.h"
#include "expand.h"
#include "fsutil.h"
#include "stream.h"
#include "tool.h"

#define MAX_DOCKERFILE (16u << 20)

static const char *dockerfile_name;

struct opts {
	const char *file;
	const char *target;
	const char *platform;
	int parse_only;
	struct hypr_vars args;
};

static void
usage(FILE *f, int code)
{
	fprintf(f,
	    "usage: hypr-parse [-f FILE] [--build-arg K[=V]]... [--target STAGE]\n"
	    "                  [--platform OS/ARCH] [--parse-only] > plan\n"
	    "Read a Dockerfile (FILE, or stdin when FILE is absent or \"-\") and write\n"
	    "the plan stream (hypr-plan(5)) on stdout.\n"
	    "  -f, --file FILE       the Dockerfile\n"
	    "  --build-arg K=V       set a build argument; a bare K takes $K\n"
	    "  --target STAGE        build this stage (default: the last one)\n"
	    "  --platform OS/ARCH    target platform (default: the host's)\n"
	    "  --parse-only          syntax only: no stage rules, stage is null\n"
	    "  -h, --help            this text\n"
	    "Exit status: 0 ok, 2 usage (also an unknown --target), 3 bad Dockerfile,\n"
	    "4 system error.\n");
	exit(code);
}

static void
parse_args(int argc, char *argv[], struct opts *o)
{
	enum { OPT_BUILD_ARG = 256, OPT_TARGET, OPT_PLATFORM, OPT_PARSE_ONLY };
	static const struct option lo[] = {
		{ "file", required_argument, NULL, 'f' },
		{ "build-arg", required_argument, NULL, OPT_BUILD_ARG },
		{ "target", required_argument, NULL, OPT_TARGET },
		{ "platform", required_argument, NULL, OPT_PLATFORM },
		{ "parse-only", no_argument, NULL, OPT_PARSE_ONLY },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	while ((c = getopt_long(argc, argv, "f:h", lo, NULL)) != -1) {
		switch (c) {
		case 'f':
			o->file = optarg;
			break;
		case OPT_BUILD_ARG: {
			const char *eq = strchr(optarg, '=');

			if (eq == optarg || optarg[0] == '\0')
				hypr_die(HYPR_EXIT_USAGE, "--build-arg %s: expected K=V or K", optarg);
			if (eq != NULL) {
				if (hypr_vars_setkv(&o->args, optarg) < 0)
					hypr_die_errno("--build-arg");
			} else {
				const char *v = getenv(optarg);

				/* like docker: a bare K not in the environment is ignored */
				if (v != NULL && hypr_vars_set(&o->args, optarg, v) < 0)
					hypr_die_errno("--build-arg");
			}
			break;
		}
		case OPT_TARGET:
			if (optarg[0] == '\0')
				hypr_die(HYPR_EXIT_USAGE, "--target: empty stage name");
			o->target = optarg;
			break;
		case OPT_PLATFORM:
			if (strchr(optarg, '/') == NULL)
				hypr_die(HYPR_EXIT_USAGE, "--platform %s: expected OS/ARCH[/VARIANT]", optarg);
			o->platform = optarg;
			break;
		case OPT_PARSE_ONLY:
			o->parse_only = 1;
			break;
		case 'h':
			usage(stdout, 0);
			break;
		default:
			usage(stderr, HYPR_EXIT_USAGE);
		}
	}
	if (optind < argc)
		hypr_die(HYPR_EXIT_USAGE, "unexpected argument '%s' (the Dockerfile is given with -f)",
		    argv[optind]);
}

/* Read all of stdin (bounded). */
static char *
read_stdin(size_t *len)
{
	size_t cap = 65536, n = 0;
	char *buf = malloc(cap);

	if (buf == NULL)
		hypr_die_errno("reading the Dockerfile");
	for (;;) {
		size_t r;

		if (n == cap) {
			if (cap >= MAX_DOCKERFILE)
				hypr_die(HYPR_EXIT_INPUT, "Dockerfile: larger than %u bytes", MAX_DOCKERFILE);
			char *nb;

			cap *= 2;
			if ((nb = realloc(buf, cap)) == NULL)
				hypr_die_errno("reading the Dockerfile");
			buf = nb;
		}
		r = fread(buf + n, 1, cap - n, stdin);
		n += r;
		if (r == 0) {
			if (ferror(stdin))
				hypr_die_errno("reading the Dockerfile");
			break;
		}
	}
	*len = n;
	return buf;
}

/* The plan goes out record by record: warnings also to stderr. */
static int
put_header(void *arg, json_t *hdr, struct hypr_err *e)
{
	return hypr_stream_begin(arg, stdout, "plan", 1, hdr, e);
}

static int
put_record(void *arg, json_t *rec, struct hypr_err *e)
{
	struct hypr_stream_out *out = arg;
	const char *t = hypr_json_str(rec, "type");

	if (t && strcmp(t, "warning") == 0)
		hypr_warn("%s:%lld: %s", dockerfile_name,
		    (long long)hypr_json_int(rec, "line", 0), hypr_json_str(rec, "message"));
	return hypr_stream_put(out, rec, e);
}

int
main(int argc, char *argv[])
{
	struct opts o = { 0 };
	struct hypr_err e = { 0 };
	struct hypr_dockerfile_opts po = { 0 };
	struct hypr_stream_out out;
	struct hypr_dockerfile_sink sink = { put_header, put_record, &out };
	char *text;
	size_t len;

	hypr_prog = "hypr-parse";
	hypr_tool_events();	/* HYPR_EVENTS_FD: warnings and errors as records */
	parse_args(argc, argv, &o);
	if (o.file == NULL || strcmp(o.file, "-") == 0) {
		hypr_refuse_tty_stdin("a Dockerfile");
		text = read_stdin(&len);
		po.name = "Dockerfile";
	} else {
		struct stat st;

		/* a wrong -f is the caller's mistake, as `hypr build` says (2) */
		if (stat(o.file, &st) < 0 && (errno == ENOENT || errno == ENOTDIR))
			hypr_die(HYPR_EXIT_USAGE, "%s: cannot read the Dockerfile (%s)",
			    o.file, strerror(errno));
		if (stat(o.file, &st) == 0 && S_ISDIR(st.st_mode))
			hypr_die(HYPR_EXIT_USAGE, "%s: is a directory, not a Dockerfile", o.file);
		if (hypr_read_file(o.file, MAX_DOCKERFILE, &text, &len, &e) < 0)
			hypr_die_err(&e);
		po.name = o.file;
	}
	dockerfile_name = po.name;
	po.build_args = &o.args;
	po.target = o.target;
	po.platform = o.platform;
	po.parse_only = o.parse_only;
	/* every error of the Dockerfile comes before the header: on one,
	 * nothing is written */
	if (hypr_dockerfile_plan_stream(text, len, &po, &sink, &e) < 0)
		hypr_die_err(&e);
	if (hypr_stream_end(&out, &e) < 0)
		hypr_die_err(&e);
	hypr_vars_free(&o.args);
	free(text);
	return hypr_close_stdout();
}
