/* hypr - the driver's commands: `hypr build` (build.c) and `hypr compose`
 * (compose.c) run the six stage programs (stages.c) as one pipeline
 * (pipeline.c); the image and system commands exec hypr-store, pull and
 * load exec hypr-fetch. */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ctr.h"
#include "hypr.h"
#include "tool.h"

/* exec `PROG SUB args...`: the image commands live in hypr-store. */
__attribute__((noreturn)) static void
delegate(const char *progname, const char *sub, int argc, char **argv)
{
	struct argv a = { 0 };
	int i;

	argv_add(&a, progname);
	if (sub)
		argv_add(&a, sub);
	for (i = 0; i < argc; i++)
		argv_add(&a, argv[i]);
	fflush(stdout);
	exec_prog(progname, a.v);
}

/* `hypr load DIR --name REF` as well as `hypr load --name REF DIR`:
 * hypr-fetch wants its options first. As docker load: -i FILE (--input)
 * is the path, and with none, the archive is on stdin ("-"). */
__attribute__((noreturn)) static void
load(int argc, char **argv)
{
	struct argv a = { 0 }, pos = { 0 };
	int i;

	argv_add(&a, "hypr-fetch");
	argv_add(&a, "load");
	for (i = 0; i < argc; i++) {
		if (!strcmp(argv[i], "--")) {
			for (i++; i < argc; i++)
				argv_add(&pos, argv[i]);
			break;
		}
		if (!strcmp(argv[i], "-i") || !strcmp(argv[i], "--input")) {
			if (i + 1 == argc)
				hypr_die(HYPR_EXIT_USAGE, "load: %s needs a FILE", argv[i]);
			argv_add(&pos, argv[++i]);
		} else if (!strncmp(argv[i], "--input=", 8)) {
			argv_add(&pos, argv[i] + 8);
		} else if (!strncmp(argv[i], "-i", 2)) {
			argv_add(&pos, argv[i] + 2);
		} else if (argv[i][0] == '-' && argv[i][1]) {
			argv_add(&a, argv[i]);
			if ((!strcmp(argv[i], "--name") || !strcmp(argv[i], "--root") ||
			    !strcmp(argv[i], "--platform")) && i + 1 < argc)
				argv_add(&a, argv[++i]);
		} else {
			argv_add(&pos, argv[i]);
		}
	}
	if (pos.n > 1)
		hypr_die(HYPR_EXIT_USAGE, "load: one archive (-i FILE, PATH, or stdin), not %zu",
		    pos.n);
	if (pos.n && pos.v[0][0] == '-' && pos.v[0][1])
		argv_add(&a, "--");
	argv_add(&a, pos.n ? pos.v[0] : "-");
	fflush(stdout);
	exec_prog("hypr-fetch", a.v);
}

static void
usage(FILE *f, int code)
{
	fputs("usage: hypr COMMAND [ARGS...]\n"
	    "\n"
	    "Build microVM images (squashfs + manifest) from Dockerfiles.\n"
	    "\n"
	    "Commands:\n"
	    "  build [OPTIONS] CONTEXT|-   build an image from a Dockerfile\n"
	    "  run [OPTIONS] IMAGE [CMD]   boot an image in a microVM and run it\n"
	    "  ps [-a]                     list containers\n"
	    "  logs [-f] CONTAINER         a container's output\n"
	    "  stop|kill|rm CONTAINER...   stop (stop signal, then SIGKILL), signal, remove\n"
	    "  create|start|restart ...    make a container; start a stopped one; stop, start\n"
	    "  attach CONTAINER            its process's output (and stdin); ^P^Q detaches\n"
	    "  exec [-it] CONTAINER CMD    run a command in a running container\n"
	    "  port CONTAINER              a container's published ports\n"
	    "  inspect NAME...             containers or images as JSON\n"
	    "  container ls|inspect|port|prune|...\n"
	    "                              manage containers\n"
	    "  volume create|ls|inspect|rm|prune\n"
	    "                              named volumes (hypr run -v NAME:PATH)\n"
	    "  compose [-f FILE] [-p NAME] build|up|down|ps|logs|stop|push|config [SERVICE...]\n"
	    "                              build and run the services of a compose file\n"
	    "  images [OPTIONS]            list images (= image ls)\n"
	    "  rmi [-f] IMAGE...           remove images (= image rm)\n"
	    "  tag SOURCE TARGET           give an image another name (= image tag)\n"
	    "  history [-q] [--no-trunc] IMAGE\n"
	    "                              an image's history (= image history)\n"
	    "  pull IMAGE                  fetch a base image from a registry (= image pull)\n"
	    "  push [-a] IMAGE[:TAG]       push an image to its registry (= image push)\n"
	    "  load [-i FILE|PATH]         load an OCI layout or docker save tar (= image load)\n"
	    "  image build|history|inspect|load|ls|prune|pull|push|rm|tag\n"
	    "                              manage images\n"
	    "  system df|prune             disk usage; remove unused data and build cache\n"
	    "  builder prune               remove the build cache\n"
	    "  login [REGISTRY]            store a registry's credentials\n"
	    "  logout [REGISTRY]           forget them\n"
	    "  save [-o FILE] [--format docker|oci] IMAGE...\n"
	    "                              write images as a tar (docker load, hypr load)\n"
	    "  version                     print the version\n"
	    "  help [COMMAND]              this text, or a command's (= hypr COMMAND --help)\n"
	    "\n"
	    "Stages: hypr-parse | hypr-fetch | hypr-exec | hypr-layer | hypr-squash | hypr-store\n"
	    "(swap one with HYPR_PARSE=PROG etc.). See hypr(1), hypr-compose(1), hypr(7).\n", f);
	exit(code);
}

int
main(int argc, char *argv[])
{
	const char *cmd;

	hypr_prog = "hypr";
	if (argc < 2)
		usage(stderr, HYPR_EXIT_USAGE);
	cmd = argv[1];
	if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h"))
		usage(stdout, 0);
	help_intercept(argc, argv);
	if (!strcmp(cmd, "help")) {
		static char *hv[5];

		if (argc == 2)
			usage(stdout, 0);
		/* now `hypr CMD [SUB] --help` */
		argc = help_argv(argc - 2, argv + 2, hv);
		argv = hv;
		help_intercept(argc, argv);
		cmd = argv[1];
	}
	if (!strcmp(cmd, "version") || !strcmp(cmd, "--version")) {
		printf("hypr %s\n", HYPR_VERSION);
		return hypr_close_stdout();
	}
	if (!strcmp(cmd, "build") || !strcmp(cmd, "buildx"))
		return cmd_build(argc - 1, argv + 1);
	if (!strcmp(cmd, "compose"))
		return cmd_compose(argc - 1, argv + 1);
	if (!strcmp(cmd, "run"))
		return cmd_run(argc - 1, argv + 1);
	if (!strcmp(cmd, "ps"))
		return cmd_ps(argc - 1, argv + 1);
	if (!strcmp(cmd, "create"))
		return cmd_create(argc - 1, argv + 1);
	if (!strcmp(cmd, "start"))
		return cmd_start(argc - 1, argv + 1);
	if (!strcmp(cmd, "restart"))
		return cmd_restart(argc - 1, argv + 1);
	if (!strcmp(cmd, "attach"))
		return cmd_attach(argc - 1, argv + 1);
	if (!strcmp(cmd, "logs"))
		return cmd_logs(argc - 1, argv + 1);
	if (!strcmp(cmd, "stop"))
		return cmd_stop(argc - 1, argv + 1);
	if (!strcmp(cmd, "kill"))
		return cmd_kill(argc - 1, argv + 1);
	if (!strcmp(cmd, "rm"))
		return cmd_rm(argc - 1, argv + 1);
	if (!strcmp(cmd, "exec"))
		return cmd_exec(argc - 1, argv + 1);
	if (!strcmp(cmd, "port"))
		return cmd_container(argc, argv);
	if (!strcmp(cmd, "container"))
		return cmd_container(argc - 1, argv + 1);
	if (!strcmp(cmd, "volume"))
		return cmd_volume(argc - 1, argv + 1);
	if (!strcmp(cmd, "__proxy"))
		return cmd_proxy(argc - 1, argv + 1);
	if (!strcmp(cmd, "images"))
		delegate("hypr-store", "images", argc - 2, argv + 2);
	if (!strcmp(cmd, "rmi"))
		delegate("hypr-store", "rmi", argc - 2, argv + 2);
	if (!strcmp(cmd, "tag"))
		delegate("hypr-store", "tag", argc - 2, argv + 2);
	if (!strcmp(cmd, "history"))
		delegate("hypr-store", "history", argc - 2, argv + 2);
	if (!strcmp(cmd, "image") && argc > 2) {
		const char *sub = argv[2];

		if (!strcmp(sub, "ls") || !strcmp(sub, "list"))
			delegate("hypr-store", "images", argc - 3, argv + 3);
		if (!strcmp(sub, "rm") || !strcmp(sub, "remove"))
			delegate("hypr-store", "rmi", argc - 3, argv + 3);
		if (!strcmp(sub, "inspect"))
			delegate("hypr-store", "inspect", argc - 3, argv + 3);
		if (!strcmp(sub, "prune"))
			delegate("hypr-store", "image-prune", argc - 3, argv + 3);
		if (!strcmp(sub, "tag"))
			delegate("hypr-store", "tag", argc - 3, argv + 3);
		if (!strcmp(sub, "history"))
			delegate("hypr-store", "history", argc - 3, argv + 3);
		if (!strcmp(sub, "build"))
			return cmd_build(argc - 2, argv + 2);
		if (!strcmp(sub, "pull"))
			delegate("hypr-fetch", "pull", argc - 3, argv + 3);
		if (!strcmp(sub, "push"))
			delegate("hypr-fetch", "push", argc - 3, argv + 3);
		if (!strcmp(sub, "save"))
			delegate("hypr-fetch", "save", argc - 3, argv + 3);
		if (!strcmp(sub, "load"))
			load(argc - 3, argv + 3);
		hypr_die(HYPR_EXIT_USAGE, "image: unknown command '%s' (inspect, ls, rm, prune, tag, history, build, pull, push, save, load)",
		    sub);
	}
	if (!strcmp(cmd, "system") && argc > 2) {
		if (!strcmp(argv[2], "df"))
			delegate("hypr-store", "system-df", argc - 3, argv + 3);
		if (!strcmp(argv[2], "prune"))
			delegate("hypr-store", "system-prune", argc - 3, argv + 3);
		hypr_die(HYPR_EXIT_USAGE, "system: unknown command '%s' (df, prune)", argv[2]);
	}
	if (!strcmp(cmd, "builder") && argc > 2) {
		if (!strcmp(argv[2], "prune"))
			delegate("hypr-store", "builder-prune", argc - 3, argv + 3);
		if (!strcmp(argv[2], "build"))
			return cmd_build(argc - 2, argv + 2);
		hypr_die(HYPR_EXIT_USAGE, "builder: unknown command '%s' (prune, build)", argv[2]);
	}
	if (!strcmp(cmd, "inspect")) {
		/* docker inspect: a container by that name or ID first (the first
		 * name after the options decides), unless --type says */
		struct hypr_root r;
		struct hypr_ctr c;
		struct hypr_err e = { 0 };
		const char *name = NULL, *type = NULL;

		for (int i = 2; i < argc && !name; i++) {
			if (!strcmp(argv[i], "-f") || !strcmp(argv[i], "--format") ||
			    !strcmp(argv[i], "--type")) {
				if (!strcmp(argv[i], "--type") && i + 1 < argc)
					type = argv[i + 1];
				i++;
			} else if (!strncmp(argv[i], "--type=", 7)) {
				type = argv[i] + 7;
			} else if (!strcmp(argv[i], "--")) {
				name = i + 1 < argc ? argv[i + 1] : NULL;
				break;
			} else if (argv[i][0] != '-') {
				name = argv[i];
			}
		}
		if (type && strcmp(type, "container") && strcmp(type, "image"))
			hypr_die(HYPR_EXIT_USAGE, "inspect: --type %s: container or image", type);
		if ((type && !strcmp(type, "container")) || (!type && name &&
		    hypr_root_open(&r, NULL, &e) == 0 && hypr_ctr_find(&r, name, &c, &e) == 0)) {
			if (!type)
				hypr_ctr_free(&c);
			argv[1] = "inspect";
			return cmd_container(argc, argv);
		}
		delegate("hypr-store", "inspect", argc - 2, argv + 2);
	}
	if (!strcmp(cmd, "load"))
		load(argc - 2, argv + 2);
	if (!strcmp(cmd, "pull") || !strcmp(cmd, "login") ||
	    !strcmp(cmd, "logout") || !strcmp(cmd, "push") || !strcmp(cmd, "save"))
		delegate("hypr-fetch", cmd, argc - 2, argv + 2);
	if (!strcmp(cmd, "image") || !strcmp(cmd, "system") || !strcmp(cmd, "builder"))
		hypr_die(HYPR_EXIT_USAGE, "%s: a command is needed (see hypr help)", cmd);
	hypr_die(HYPR_EXIT_USAGE, "unknown command '%s' (see hypr help)", cmd);
}
