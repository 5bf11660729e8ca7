/* build.c - `hypr build`: docker build's flags turned into six stage command lines. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cacheio.h"
#include "cas.h"
#include "fsutil.h"
#include "hypr.h"
#include "store.h"
#include "tool.h"

static void
build_usage(FILE *f, int code)
{
	fputs("usage: hypr build [OPTIONS] CONTEXT|-\n"
	    "\n"
	    "Build an image from CONTEXT/Dockerfile: hypr-parse | hypr-fetch | hypr-exec |\n"
	    "hypr-layer | hypr-squash | hypr-store. CONTEXT -: stdin is a tar of the context\n"
	    "(plain or compressed), or a Dockerfile with no context.\n"
	    "\n"
	    "  -t, --tag NAME[:TAG]     name the image (repeatable)\n"
	    "  -f, --file FILE          Dockerfile (default CONTEXT/Dockerfile; - for stdin)\n"
	    "      --build-arg K=V|K    set a build argument (bare K: from the environment)\n"
	    "      --target STAGE       build up to this stage\n"
	    "      --no-cache           ignore the instruction cache\n"
	    "      --platform OS/ARCH   target platform\n"
	    "      --network MODE       none (default: RUN has no network) or default (QEMU\n"
	    "                           user networking for every RUN)\n"
	    "      --add-host NAME:IP   an /etc/hosts line for RUN (repeatable)\n"
	    "      --secret id=ID,src=FILE|env=VAR  for RUN --mount=type=secret (repeatable)\n"
	    "      --disk SIZE          what the build VM's layers may take (e.g. 20g; default\n"
	    "                           HYPR_BUILD_DISK, else 64g or 90% of the free space)\n"
	    "      --pull[=WHEN]        base images: missing (default), always, never\n"
	    "      --cache-from SPEC    import a build cache: type=registry,ref=NAME[:TAG] or\n"
	    "                           type=local,src=DIR (repeatable; hypr-cache(5))\n"
	    "      --cache-to SPEC      export this build's cache: type=registry,ref=NAME[:TAG]\n"
	    "                           or type=local,dest=DIR, [,mode=min|max]\n"
	    "  -q, --quiet              print only the image ID\n"
	    "      --iidfile FILE       write the image ID to FILE\n"
	    "      --push               push every -t name after the build (hypr push)\n"
	    "      --label K=V          add a label to the image (repeatable)\n"
	    "      --progress MODE      auto, plain, tty or quiet (env HYPR_PROGRESS)\n"
	    "      --keep DIR           save every intermediate stream and stage log in DIR\n"
	    "      --from STAGE DIR     resume at STAGE (fetch, exec, layer, squash, store)\n"
	    "                           reading its input saved by --keep in DIR\n"
	    "  -n, --print              print the pipeline that would run (for sh), run nothing\n"
	    "\n"
	    "Swap a stage with HYPR_PARSE, HYPR_FETCH, HYPR_EXEC, HYPR_LAYER, HYPR_SQUASH,\n"
	    "HYPR_STORE. The last build's full log: $HYPR_ROOT/logs/last.log.\n", f);
	exit(code);
}

/* BuildKit features hypr refuses by name rather than as "unknown option". */
static const struct {
	const char *flag, *why;
} refused[] = {
	{ "--ssh", "no SSH agent reaches the build VM (fetch over HTTPS with a --secret instead)" },
	{ "--output", "hypr's only output is the stored squashfs image (see hypr image inspect)" },
	{ "-o", "hypr's only output is the stored squashfs image (see hypr image inspect)" },
	{ "--allow", "BuildKit entitlements do not apply: every RUN is in a VM" },
	{ "--builder", "hypr has no builder instances" },
	{ "--build-context", "named build contexts are not supported" },
	{ "--ssh-agent", "SSH agent forwarding needs BuildKit" },
	{ "--attest", "attestations are not supported" },
	{ "--provenance", "provenance attestations are not supported" },
	{ "--sbom", "SBOM attestations are not supported" },
	{ "--cache-ttl", "not supported" },
	{ "--squash", "hypr images are always one squashfs: the flag is not needed" },
	{ "--call", "BuildKit frontends' --call is not supported" },
	{ "--check", "BuildKit build checks are not supported" },
	{ "--shm-size", "the build VM's resources are fixed" },
	{ "--ulimit", "the build VM's resources are fixed" },
	{ "--metadata-file", "not supported yet: use --iidfile and hypr image inspect" },
	{ "--annotation", "OCI annotations are not supported: use --label" },
	{ "--no-cache-filter", "not supported: use --no-cache" },
	{ NULL, NULL }
};

static void
refuse_buildkit(int argc, char **argv)
{
	int i, j;

	for (i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (!strcmp(a, "--"))
			break;
		if (!strncmp(a, "--network", 9) && (a[9] == 0 || a[9] == '=')) {
			const char *v = a[9] ? a + 10 : (i + 1 < argc ? argv[i + 1] : "");

			if (!strcmp(v, "host"))
				hypr_die(HYPR_EXIT_USAGE, "build: --network=host is not supported by hypr: "
				    "RUN steps run in a VM (use --network=default for QEMU user networking)");
			if (strcmp(v, "none") && strcmp(v, "default"))
				hypr_die(HYPR_EXIT_USAGE, "build: --network=%s: want default or none", v);
			continue;
		}
		for (j = 0; refused[j].flag; j++) {
			size_t n = strlen(refused[j].flag);

			if (!strncmp(a, refused[j].flag, n) && (a[n] == 0 || a[n] == '='))
				hypr_die(HYPR_EXIT_USAGE, "build: %s is not supported by hypr: %s",
				    refused[j].flag, refused[j].why);
			/* -oDIR */
			if (!strcmp(refused[j].flag, "-o") && a[0] == '-' && a[1] == 'o' &&
			    a[2] != '-')
				hypr_die(HYPR_EXIT_USAGE, "build: -o is not supported by hypr: %s",
				    refused[j].why);
		}
	}
}

enum { O_BUILD_ARG = 256, O_TARGET, O_NO_CACHE, O_PLATFORM, O_PULL, O_IIDFILE,
	O_LABEL, O_PROGRESS, O_KEEP, O_FROM, O_LOAD, O_NETWORK, O_RM, O_FORCE_RM, O_DISK, O_ADD_HOST, O_SECRET,
	O_CACHE_FROM, O_CACHE_TO, O_PUSH };

static int
progress_mode(const char *s)
{
	if (!strcmp(s, "auto"))
		return PROGRESS_AUTO;
	if (!strcmp(s, "plain") || !strcmp(s, "rawjson"))
		return PROGRESS_PLAIN;
	if (!strcmp(s, "tty"))
		return PROGRESS_TTY;
	if (!strcmp(s, "quiet") || !strcmp(s, "none"))
		return PROGRESS_QUIET;
	hypr_die(HYPR_EXIT_USAGE, "build: --progress: '%s' is not auto, plain, tty or quiet", s);
}

/* The log's cap per build: HYPR_LOG_MAX bytes, with K, M or G (1024-based);
 * 0 = no cap. Default 64M. */
#define LOG_MAX_DEFAULT (64ull << 20)

static unsigned long long
log_max(void)
{
	const char *v = getenv("HYPR_LOG_MAX");
	char *end;
	unsigned long long n, mul = 1;

	if (!v || !*v)
		return LOG_MAX_DEFAULT;
	errno = 0;
	n = strtoull(v, &end, 10);
	if (*end == 'K' || *end == 'k')
		mul = 1ull << 10;
	else if (*end == 'M' || *end == 'm')
		mul = 1ull << 20;
	else if (*end == 'G' || *end == 'g')
		mul = 1ull << 30;
	if (mul > 1)
		end++;
	if (end == v || *v == '-' || *end || errno || n > ~0ull / mul)
		hypr_die(HYPR_EXIT_USAGE, "build: HYPR_LOG_MAX=%s: not a size (bytes, or a number "
		    "with K, M or G; 0 for no limit)", v);
	return n * mul;
}

/* --push: `hypr-fetch push [-q] TAG` once the image is stored, its
 * stdout out (the pipeline closed ours); its status. */
static int
push_tag(const char *tag, int quiet, int out)
{
	struct argv a = { 0 };
	pid_t pid;
	int st;

	argv_add(&a, stage_progs[ST_FETCH]);
	argv_add(&a, "push");
	if (quiet)
		argv_add(&a, "-q");
	argv_add(&a, tag);
	fflush(stdout);
	fflush(stderr);
	if ((pid = fork()) < 0)
		hypr_die_errno("fork");
	if (pid == 0) {
		/* -q: the image ID is what stdout says; the push's lines go to stderr */
		if (dup2(quiet ? 2 : out, 1) < 0)
			_exit(HYPR_EXIT_SYSTEM);
		exec_prog(stage_progs[ST_FETCH], a.v);
	}
	argv_free(&a);
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			hypr_die_errno("waitpid");
	if (WIFEXITED(st))
		return WEXITSTATUS(st);
	return 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
}

int
cmd_build(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "tag", required_argument, NULL, 't' },
		{ "file", required_argument, NULL, 'f' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "print", no_argument, NULL, 'n' },
		{ "dry-run", no_argument, NULL, 'n' },
		{ "help", no_argument, NULL, 'h' },
		{ "build-arg", required_argument, NULL, O_BUILD_ARG },
		{ "target", required_argument, NULL, O_TARGET },
		{ "no-cache", no_argument, NULL, O_NO_CACHE },
		{ "platform", required_argument, NULL, O_PLATFORM },
		{ "pull", optional_argument, NULL, O_PULL },
		{ "iidfile", required_argument, NULL, O_IIDFILE },
		{ "label", required_argument, NULL, O_LABEL },
		{ "progress", required_argument, NULL, O_PROGRESS },
		{ "keep", required_argument, NULL, O_KEEP },
		{ "from", required_argument, NULL, O_FROM },
		{ "load", no_argument, NULL, O_LOAD },
		{ "network", required_argument, NULL, O_NETWORK },
		{ "rm", optional_argument, NULL, O_RM },
		{ "force-rm", optional_argument, NULL, O_FORCE_RM },
		{ "disk", required_argument, NULL, O_DISK },
		{ "add-host", required_argument, NULL, O_ADD_HOST },
		{ "secret", required_argument, NULL, O_SECRET },
		{ "cache-from", required_argument, NULL, O_CACHE_FROM },
		{ "cache-to", required_argument, NULL, O_CACHE_TO },
		{ "push", no_argument, NULL, O_PUSH },
		{ NULL, 0, NULL, 0 }
	};
	struct build_opts o = { 0 };
	struct argv cmds[NSTAGES] = { 0 };
	const char *env, *dockerfile = NULL;
	char dfbuf[4096], stdinctx[HYPR_PATH_BUF + 16], stdindf[HYPR_PATH_BUF + 16];
	int c, i, r, push = 0;

	refuse_buildkit(argc, argv);
	o.from = ST_PARSE;
	o.log_max = log_max();
	if ((env = getenv("HYPR_PROGRESS")) && *env)
		o.progress = progress_mode(env);
	else if ((env = getenv("BUILDKIT_PROGRESS")) && *env)
		o.progress = progress_mode(env);
	optind = 1;
	while ((c = getopt_long(argc, argv, "+t:f:qnh", lo, NULL)) != -1 ||
	    (optind < argc && !o.context)) {
		if (c == -1) {	/* a positional argument: CONTEXT; flags may follow */
			o.context = argv[optind++];
			continue;
		}
		switch (c) {
		case 't':
			argv_add(&o.tags, optarg);
			break;
		case 'f':
			o.file = optarg;
			break;
		case 'q':
			o.quiet = 1;
			break;
		case 'n':
			o.print = 1;
			break;
		case 'h':
			build_usage(stdout, 0);
			break;
		case O_BUILD_ARG:
			argv_add(&o.build_args, optarg);
			break;
		case O_TARGET:
			o.target = optarg;
			break;
		case O_NO_CACHE:
			o.no_cache = 1;
			break;
		case O_PLATFORM:
			o.platform = optarg;
			break;
		case O_PULL:
			o.pull = optarg ? optarg : "always";
			if (!strcmp(o.pull, "true"))
				o.pull = "always";
			else if (!strcmp(o.pull, "false"))
				o.pull = "missing";
			if (strcmp(o.pull, "missing") && strcmp(o.pull, "always") &&
			    strcmp(o.pull, "never"))
				hypr_die(HYPR_EXIT_USAGE, "build: --pull: '%s' is not missing, always or never",
				    o.pull);
			break;
		case O_IIDFILE:
			o.iidfile = optarg;
			break;
		case O_LABEL:
			if (!strchr(optarg, '=') || optarg[0] == '=')
				hypr_die(HYPR_EXIT_USAGE, "build: --label: '%s' is not KEY=VALUE",
				    optarg);
			argv_add(&o.labels, optarg);
			break;
		case O_PROGRESS:
			o.progress = progress_mode(optarg);
			break;
		case O_KEEP:
			o.keep = optarg;
			break;
		case O_FROM:
			o.from = stage_by_name(optarg);
			if (o.from == ST_PARSE)
				hypr_die(HYPR_EXIT_USAGE, "build: --from parse: nothing to resume; run without --from");
			if (optind >= argc)
				hypr_die(HYPR_EXIT_USAGE, "build: --from %s needs a directory saved by --keep",
				    optarg);
			o.from_dir = argv[optind++];
			break;
		case O_DISK: {
			uint64_t b;
			if (hypr_size_parse(optarg, &b) < 0 || b == 0)
				hypr_die(HYPR_EXIT_USAGE, "build: --disk %s: not a size (e.g. 20g)", optarg);
			o.disk = optarg;
			break;
		}
		case O_LOAD:	/* every hypr image is stored locally anyway */
			break;
		case O_NETWORK:	/* only none/default get here */
			o.network = !strcmp(optarg, "default");
			break;
		case O_ADD_HOST:
			argv_add(&o.add_hosts, optarg);
			break;
		case O_SECRET:
			argv_add(&o.secrets, optarg);
			break;
		case O_CACHE_FROM:
		case O_CACHE_TO: {
			struct hypr_cache_spec sp;
			struct hypr_err ce = { 0 };

			if (hypr_cache_spec_parse(optarg, c == O_CACHE_TO, &sp, &ce) < 0)
				hypr_die(HYPR_EXIT_USAGE, "build: --%s: %s", c == O_CACHE_TO ?
				    "cache-to" : "cache-from", ce.msg + (strncmp(ce.msg, "cache: ",
				    7) ? 0 : 7));
			argv_add(c == O_CACHE_TO ? &o.cache_to : &o.cache_from, optarg);
			break;
		}
		case O_PUSH:
			push = 1;
			break;
		case O_RM:
		case O_FORCE_RM:
			break;
		default:
			build_usage(stderr, HYPR_EXIT_USAGE);
		}
	}
	if (push && o.tags.n == 0)
		hypr_die(HYPR_EXIT_USAGE, "build: --push needs a name to push (-t NAME[:TAG])");
	if (optind < argc)
		hypr_die(HYPR_EXIT_USAGE, "build: one CONTEXT only ('%s' is extra)", argv[optind]);
	if (!o.context) {
		if (o.from > ST_EXEC)
			o.context = ".";
		else
			hypr_die(HYPR_EXIT_USAGE, "build: a CONTEXT directory is required (e.g. hypr build .)");
	}
	if (strstr(o.context, "://"))
		hypr_die(HYPR_EXIT_USAGE, "build: CONTEXT must be a local directory ('%s' is not supported)",
		    o.context);
	if (!strcmp(o.context, "-")) {
		if (o.print || o.from != ST_PARSE)
			hypr_die(HYPR_EXIT_USAGE, "build: CONTEXT - (stdin) cannot go with %s",
			    o.print ? "-n" : "--from");
		stdin_context(&o, stdinctx, sizeof stdinctx, stdindf, sizeof stdindf);
	}
	if (!o.print) {
		struct stat st;

		if (stat(o.context, &st) < 0 || !S_ISDIR(st.st_mode))
			hypr_die(HYPR_EXIT_USAGE, "build: %s: not a directory", o.context);
	}
	if (o.quiet)
		o.progress = PROGRESS_QUIET;
	if (!o.platform && (env = getenv("DOCKER_DEFAULT_PLATFORM")) && *env)
		o.platform = env;

	/* hypr-parse: the Dockerfile, build args, target, platform. */
	argv_add(&cmds[ST_PARSE], stage_progs[ST_PARSE]);
	if (!o.file) {
		snprintf(dfbuf, sizeof dfbuf, "%s/Dockerfile", o.context);
		dockerfile = dfbuf;
	} else if (strcmp(o.file, "-")) {
		dockerfile = o.file;
	}
	if (dockerfile) {
		argv_add(&cmds[ST_PARSE], "-f");
		argv_add(&cmds[ST_PARSE], dockerfile);
		if (!o.print && o.from == ST_PARSE && access(dockerfile, R_OK) < 0)
			hypr_die(HYPR_EXIT_USAGE, "build: %s: cannot read the Dockerfile (%m)",
			    dockerfile);
	}
	for (i = 0; i < (int)o.build_args.n; i++)
		argv_addf(&cmds[ST_PARSE], "--build-arg=%s", o.build_args.v[i]);
	if (o.target)
		argv_addf(&cmds[ST_PARSE], "--target=%s", o.target);
	if (o.platform)
		argv_addf(&cmds[ST_PARSE], "--platform=%s", o.platform);

	argv_add(&cmds[ST_FETCH], stage_progs[ST_FETCH]);
	if (o.pull)
		argv_addf(&cmds[ST_FETCH], "--pull=%s", o.pull);
	/* --no-cache imports nothing either (buildx) */
	for (i = 0; !o.no_cache && i < (int)o.cache_from.n; i++)
		argv_addf(&cmds[ST_FETCH], "--cache-from=%s", o.cache_from.v[i]);

	argv_add(&cmds[ST_EXEC], stage_progs[ST_EXEC]);
	if (o.no_cache)
		argv_add(&cmds[ST_EXEC], "--no-cache");
	if (o.disk)
		argv_addf(&cmds[ST_EXEC], "--disk=%s", o.disk);
	if (o.network)
		argv_add(&cmds[ST_EXEC], "--network=default");
	for (i = 0; i < (int)o.add_hosts.n; i++)
		argv_addf(&cmds[ST_EXEC], "--add-host=%s", o.add_hosts.v[i]);
	/* a secret's file name or variable name, never its value */
	for (i = 0; i < (int)o.secrets.n; i++)
		argv_addf(&cmds[ST_EXEC], "--secret=%s", o.secrets.v[i]);
	argv_add(&cmds[ST_EXEC], "--context");
	argv_add(&cmds[ST_EXEC], o.context);

	argv_add(&cmds[ST_LAYER], stage_progs[ST_LAYER]);
	argv_add(&cmds[ST_SQUASH], stage_progs[ST_SQUASH]);
	/* --no-cache trusts no cached squashfs either: re-digest and rebuild. */
	if (o.no_cache)
		argv_add(&cmds[ST_SQUASH], "--verify");

	argv_add(&cmds[ST_STORE], stage_progs[ST_STORE]);
	for (i = 0; i < (int)o.tags.n; i++) {
		char canon[1024];
		struct hypr_err te = { 0 };

		/* A bad tag fails now, not after the whole build. */
		if (hypr_store_canon_tag(o.tags.v[i], canon, sizeof canon, &te) < 0)
			hypr_die(HYPR_EXIT_USAGE, "build: %s", te.msg);
		argv_add(&cmds[ST_STORE], "-t");
		argv_add(&cmds[ST_STORE], o.tags.v[i]);
	}
	for (i = 0; i < (int)o.labels.n; i++)
		argv_addf(&cmds[ST_STORE], "--label=%s", o.labels.v[i]);

	if (o.print) {
		cache_steps_path(&o, NULL);
		print_pipeline(&o, cmds);
		for (i = 0; push && i < (int)o.tags.n; i++) {
			fputs(stage_progs[ST_FETCH], stdout);
			fputs(o.quiet ? " push -q " : " push ", stdout);
			shquote(stdout, o.tags.v[i]);
			putchar('\n');
		}
		r = hypr_close_stdout();
	} else {
		int out = push ? fcntl(1, F_DUPFD_CLOEXEC, 3) : -1;

		if (push && out < 0)
			hypr_die_errno("build: --push: stdout");
		r = run_pipeline(&o, cmds);
		for (i = 0; r == 0 && push && i < (int)o.tags.n; i++)
			r = push_tag(o.tags.v[i], o.quiet, out);
		if (out >= 0 && close(out) < 0 && r == 0)
			r = HYPR_EXIT_SYSTEM;
	}
	for (i = 0; i < NSTAGES; i++)
		argv_free(&cmds[i]);
	argv_free(&o.tags);
	argv_free(&o.build_args);
	argv_free(&o.labels);
	argv_free(&o.add_hosts);
	argv_free(&o.secrets);
	argv_free(&o.cache_from);
	argv_free(&o.cache_to);
	return r;
}
