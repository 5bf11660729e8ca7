/* hypr-exec - run every instruction of a resolved plan: config updates,
 * COPY/ADD on the host, RUN in the build VM; write the steps stream. The
 * engine is lib/exec.c; this is its command line. See hypr-exec(1). */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cas.h"
#include "exec.h"
#include "fsutil.h"
#include "tool.h"

static struct hypr_exec *g_exec;

static void
usage(FILE *f, int code)
{
	fprintf(f,
	    "usage: hypr-exec [-C DIR] [--no-cache] [--network MODE] [--add-host NAME:IP]...\n"
	    "                 [--secret SPEC]... [--disk SIZE] [--root DIR] < resolved > steps\n"
	    "Run every instruction of the resolved plan (hypr-resolved(5)) read on\n"
	    "stdin and write the steps stream (hypr-steps(5)) on stdout.\n"
	    "  -C, --context DIR   the build context (default: .)\n"
	    "  --no-cache          ignore cached steps\n"
	    "  --network MODE      none (default): RUN has no network; default: every RUN\n"
	    "                      has one (QEMU user networking; RUN --network overrides)\n"
	    "  --add-host NAME:IP  an /etc/hosts line for RUN (host-gateway: the host)\n"
	    "  --secret id=ID,src=FILE|env=VAR  a secret for RUN --mount=type=secret\n"
	    "  --disk SIZE         what a build VM's layers may take (e.g. 20g; default:\n"
	    "                      HYPR_BUILD_DISK, else 64g or 90%% of the free space)\n"
	    "  --root DIR          the hypr store (default: $HYPR_ROOT)\n"
	    "  -q, --quiet         no progress lines on stderr (RUN output still shows)\n"
	    "  -h, --help          this text\n"
	    "Environment: HYPR_ROOT, HYPR_STEP_TIMEOUT (seconds), HYPR_BUILD_DISK, SOURCE_DATE_EPOCH,\n"
	    "HYPR_ACCEL, HYPR_PARSE (for ONBUILD triggers), HYPR_EVENTS_FD (progress as\n"
	    "records, hypr-events(5)).\n"
	    "Exit status: 0 ok, 1 a step failed, 2 usage, 3 bad input, 4 system error.\n");
	exit(code);
}

static void
at_exit(void)
{
	hypr_exec_kill(g_exec);
}

static void
on_signal(int sig)
{
	hypr_exec_kill(g_exec);
	hypr_root_tmp_remove_async();
	signal(sig, SIG_DFL);
	raise(sig);
}

/* Append s to a NULL-terminated list. */
static void
list_add(char ***v, size_t *n, char *s)
{
	char **nv = realloc(*v, (*n + 2) * sizeof **v);

	if (nv == NULL)
		hypr_die(HYPR_EXIT_SYSTEM, "out of memory");
	nv[(*n)++] = s;
	nv[*n] = NULL;
	*v = nv;
}

int
main(int argc, char *argv[])
{
	static const struct option lopts[] = {
		{ "context", required_argument, NULL, 'C' },
		{ "no-cache", no_argument, NULL, 'n' },
		{ "root", required_argument, NULL, 'r' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "disk", required_argument, NULL, 'd' },
		{ "network", required_argument, NULL, 'N' },
		{ "add-host", required_argument, NULL, 'A' },
		{ "secret", required_argument, NULL, 'S' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	struct hypr_exec_opts o = { .context = "." };
	struct hypr_err e = { 0 };
	char **hosts = NULL, **secrets = NULL;
	size_t nhosts = 0, nsecrets = 0;
	int opt;

	hypr_prog = "hypr-exec";
	/* progress, RUN output, warnings: records on HYPR_EVENTS_FD, else lines */
	o.events = hypr_tool_events();
	while ((opt = getopt_long(argc, argv, "C:qh", lopts, NULL)) != -1) {
		switch (opt) {
		case 'C': o.context = optarg; break;
		case 'n': o.no_cache = 1; break;
		case 'r': o.root = optarg; break;
		case 'q': o.events->quiet = 1; break;
		case 'd':
			if (hypr_size_parse(optarg, &o.disk) < 0 || o.disk == 0)
				hypr_die(HYPR_EXIT_USAGE, "--disk %s: not a size (e.g. 20g)", optarg);
			break;
		case 'N':
			if (!strcmp(optarg, "default"))
				o.network = 1;
			else if (!strcmp(optarg, "host"))
				hypr_die(HYPR_EXIT_USAGE, "--network=host is not supported: the build VM "
				    "has no host network (use --network=default)");
			else if (strcmp(optarg, "none"))
				hypr_die(HYPR_EXIT_USAGE, "--network=%s: want default or none", optarg);
			break;
		case 'A': list_add(&hosts, &nhosts, optarg); break;
		case 'S': list_add(&secrets, &nsecrets, optarg); break;
		case 'h': usage(stdout, 0); break;
		default: usage(stderr, HYPR_EXIT_USAGE);
		}
	}
	if (optind != argc)
		usage(stderr, HYPR_EXIT_USAGE);
	hypr_refuse_tty_stdin("a resolved plan");
	o.add_hosts = hosts;
	o.secrets = secrets;
	if (hypr_exec_open(&g_exec, &o, stdin, &e) < 0)
		hypr_die_err(&e);
	atexit(at_exit);
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	signal(SIGHUP, on_signal);
	signal(SIGPIPE, SIG_IGN);
	if (hypr_exec_run(g_exec, stdout, &e) < 0)
		hypr_die_err(&e);
	hypr_close_stdout();
	hypr_exec_close(g_exec);
	g_exec = NULL;
	return 0;
}
