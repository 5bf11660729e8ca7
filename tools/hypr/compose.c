/* compose.c - `hypr compose build|up`: one `hypr build` per service with a
 * build: section, tagged as its image: or <project>_<service>. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "compose.h"
#include "fsutil.h"
#include "hypr.h"
#include "tool.h"

static void
compose_usage(FILE *f, int code)
{
	fputs("usage: hypr compose [-f FILE] [-p NAME] [--project-directory DIR] COMMAND\n"
	    "\n"
	    "Commands:\n"
	    "  build [--no-cache] [--pull] [-q] [--build-arg K=V] [-n] [SERVICE...]\n"
	    "        build every service that has a build: section (or those named)\n"
	    "  up [--build] [SERVICE...]\n"
	    "        build, then say plainly that hypr has no runtime to start services\n"
	    "  config\n"
	    "        print what would be built, one `hypr build` command per service\n"
	    "\n"
	    "The compose file: -f, else compose.yaml, compose.yml, docker-compose.yml in\n"
	    "the project directory. Project name: -p, $COMPOSE_PROJECT_NAME, name:, or the\n"
	    "directory's name. See hypr-compose(1).\n", f);
	exit(code);
}

static char *
join(const char *dir, const char *p)
{
	char *s;

	if (p[0] == '/')
		return strdup(p);
	if (!strcmp(p, "."))
		return strdup(dir);
	if (asprintf(&s, "%s/%s", dir, p[0] == '.' && p[1] == '/' ? p + 2 : p) < 0)
		return NULL;
	return s;
}

/* One line a shell can run; an inline Dockerfile is piped to -f -. */
static void
print_cmd(FILE *f, char **v, const char *input)
{
	size_t i;

	if (input) {
		fputs("printf '%s\\n' ", f);
		shquote(f, input);
		fputs(" | ", f);
	}
	for (i = 0; v[i]; i++) {
		if (i)
			fputc(' ', f);
		shquote(f, v[i]);
	}
	fputc('\n', f);
}

static int
run_build(char **v, const char *input)
{
	int p[2] = { -1, -1 };

	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
	pid_t pid;
	int st;

	fflush(stdout);
	fflush(stderr);
	if (n <= 0)
		hypr_die_errno("/proc/self/exe");
	self[n] = 0;
	if (input && pipe2(p, O_CLOEXEC) < 0)
		hypr_die_errno("pipe");
	if ((pid = fork()) < 0)
		hypr_die_errno("fork");
	if (pid == 0) {
		if (input && dup2(p[0], 0) < 0)
			_exit(HYPR_EXIT_SYSTEM);
		execv(self, v);
		fprintf(stderr, "hypr: compose: %s: %s\n", self, strerror(errno));
		_exit(HYPR_EXIT_SYSTEM);
	}
	if (input) {
		void (*old)(int) = signal(SIGPIPE, SIG_IGN);

		close(p[0]);
		if (hypr_write_all(p[1], input, strlen(input)) < 0 ||
		    hypr_write_all(p[1], "\n", 1) < 0)
			hypr_warn("compose: writing the inline Dockerfile: %s", strerror(errno));
		close(p[1]);
		signal(SIGPIPE, old);
	}
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			hypr_die_errno("waitpid");
	if (WIFEXITED(st))
		return WEXITSTATUS(st);
	return 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
}

int
cmd_compose(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "file", required_argument, NULL, 'f' },
		{ "project-name", required_argument, NULL, 'p' },
		{ "project-directory", required_argument, NULL, 'D' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	static const struct option blo[] = {
		{ "no-cache", no_argument, NULL, 'N' },
		{ "pull", no_argument, NULL, 'P' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "build-arg", required_argument, NULL, 'a' },
		{ "build", no_argument, NULL, 'b' },
		{ "no-build", no_argument, NULL, 'B' },
		{ "dry-run", no_argument, NULL, 'n' },
		{ "detach", no_argument, NULL, 'd' },
		{ "progress", required_argument, NULL, 'g' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	const char *file = NULL, *pname = NULL, *pdir = ".", *sub, *progress = NULL;
	char path[PATH_MAX], project[256];
	struct hypr_compose c;
	struct hypr_err e = { 0 };
	struct argv extra_args = { 0 };
	int ch, no_cache = 0, pull = 0, quiet = 0, dry = 0, up, built = 0, nobuild = 0;
	int i, rc = 0;
	size_t s, j;

	optind = 1;
	while ((ch = getopt_long(argc, argv, "+f:p:h", lo, NULL)) != -1) {
		switch (ch) {
		case 'f':
			if (file)
				hypr_die(HYPR_EXIT_USAGE, "compose: only one -f file is supported");
			file = optarg;
			break;
		case 'p':
			pname = optarg;
			break;
		case 'D':
			pdir = optarg;
			break;
		case 'h':
			compose_usage(stdout, 0);
			break;
		default:
			compose_usage(stderr, HYPR_EXIT_USAGE);
		}
	}
	if (optind >= argc)
		compose_usage(stderr, HYPR_EXIT_USAGE);
	sub = argv[optind];
	up = !strcmp(sub, "up");
	if (strcmp(sub, "build") && !up && strcmp(sub, "config"))
		hypr_die(HYPR_EXIT_USAGE,
		    "compose %s: not supported: hypr builds images and has no runtime (build, up --build, config)",
		    sub);
	argc -= optind;
	argv += optind;
	optind = 1;
	while ((ch = getopt_long(argc, argv, "qnd", blo, NULL)) != -1) {
		switch (ch) {
		case 'N':
			no_cache = 1;
			break;
		case 'P':
			pull = 1;
			break;
		case 'q':
			quiet = 1;
			break;
		case 'a':
			argv_add(&extra_args, optarg);
			break;
		case 'b':
		case 'd':
			break;
		case 'B':
			nobuild = 1;
			break;
		case 'n':
			dry = 1;
			break;
		case 'g':
			progress = optarg;
			break;
		case 'h':
			compose_usage(stdout, 0);
			break;
		default:
			compose_usage(stderr, HYPR_EXIT_USAGE);
		}
	}
	if (!strcmp(sub, "config"))
		dry = 1;

	if (file)
		snprintf(path, sizeof path, "%s", file);
	else if (hypr_compose_find(pdir, path, sizeof path, &e) < 0)
		hypr_die_err(&e);
	if (hypr_compose_load(&c, path, &e) < 0) {
		hypr_compose_free(&c);
		hypr_die(e.code, "compose: %s", e.msg);
	}
	for (j = 0; j < c.nwarnings; j++)
		hypr_warn("compose: %s", c.warnings[j]);
	if (!pname)
		pname = getenv("COMPOSE_PROJECT_NAME");
	if (!pname || !*pname)
		pname = c.name;
	if (!pname || !*pname) {
		pname = strrchr(c.dir, '/');
		pname = pname && pname[1] ? pname + 1 : c.dir;
	}
	if (hypr_compose_project_name(pname, project, sizeof project) < 0)
		hypr_die(HYPR_EXIT_USAGE, "compose: project name '%s' has no valid characters (use -p)",
		    pname);
	for (i = optind; i < argc; i++) {
		for (s = 0; s < c.nservices; s++)
			if (!strcmp(c.services[s].name, argv[i]))
				break;
		if (s == c.nservices)
			hypr_die(HYPR_EXIT_USAGE, "compose: no such service: %s", argv[i]);
	}

	for (s = 0; s < c.nservices && !rc; s++) {
		struct hypr_compose_service *sv = &c.services[s];
		struct argv a = { 0 };
		char *ctx, *df = NULL;
		int wanted = optind >= argc;

		for (i = optind; i < argc; i++)
			wanted |= !strcmp(argv[i], sv->name);
		if (!wanted)
			continue;
		if (!sv->has_build) {
			if (optind < argc || up)
				fprintf(stderr, "hypr compose: %s: no build: section, nothing to build\n",
				    sv->name);
			continue;
		}
		if (nobuild)
			continue;
		if (!(ctx = join(c.dir, sv->context)))
			hypr_die(HYPR_EXIT_SYSTEM, "out of memory");
		if (sv->dockerfile && !(df = join(ctx, sv->dockerfile)))
			hypr_die(HYPR_EXIT_SYSTEM, "out of memory");
		argv_add(&a, "hypr");
		argv_add(&a, "build");
		argv_add(&a, "-t");
		if (sv->image)
			argv_add(&a, sv->image);
		else
			argv_addf(&a, "%s_%s", project, sv->name);
		for (j = 0; j < sv->ntags; j++) {
			argv_add(&a, "-t");
			argv_add(&a, sv->tags[j]);
		}
		if (sv->dockerfile_inline) {
			argv_add(&a, "-f");
			argv_add(&a, "-");
		} else if (df) {
			argv_add(&a, "-f");
			argv_add(&a, df);
		}
		for (j = 0; j < sv->nargs; j++)
			if (sv->args[j].value)
				argv_addf(&a, "--build-arg=%s=%s", sv->args[j].key,
				    sv->args[j].value);
			else
				argv_addf(&a, "--build-arg=%s", sv->args[j].key);
		for (j = 0; j < extra_args.n; j++)
			argv_addf(&a, "--build-arg=%s", extra_args.v[j]);
		if (sv->target)
			argv_addf(&a, "--target=%s", sv->target);
		for (j = 0; j < sv->nlabels; j++)
			argv_addf(&a, "--label=%s=%s", sv->labels[j].key,
			    sv->labels[j].value ? sv->labels[j].value : "");
		if (no_cache || sv->no_cache)
			argv_add(&a, "--no-cache");
		if (pull || sv->pull)
			argv_add(&a, "--pull=always");
		if (quiet)
			argv_add(&a, "--progress=quiet");
		else if (progress)
			argv_addf(&a, "--progress=%s", progress);
		argv_add(&a, ctx);
		if (dry) {
			print_cmd(stdout, a.v, sv->dockerfile_inline);
		} else {
			if (!quiet)
				fprintf(stderr, "hypr compose: building %s\n", sv->name);
			rc = run_build(a.v, sv->dockerfile_inline);
			if (rc)
				fprintf(stderr, "hypr: compose: service %s failed to build (exit %d)\n",
				    sv->name, rc);
			else
				built++;
		}
		argv_free(&a);
		free(ctx);
		free(df);
	}
	if (up && !rc && !dry)
		fprintf(stderr,
		    "hypr compose up: %d image%s built; not starting any service: hypr builds images "
		    "and has no runtime yet (ports, volumes, environment and command are not used)\n",
		    built, built == 1 ? "" : "s");
	argv_free(&extra_args);
	hypr_compose_free(&c);
	if (rc == 0)
		hypr_close_stdout();
	return rc;
}
