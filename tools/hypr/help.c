/* help.c - `hypr help CMD` and `hypr CMD --help` for every command: the
 * commands with their own option parser (build, run, ps, images...) print
 * their usage themselves; for the others, whose work is done by a stage
 * program (hypr-fetch, hypr-store) or that are only a group of
 * sub-commands, the usage is here, in hypr's words rather than the stage's. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hypr.h"
#include "tool.h"

struct help {
	const char *cmd, *sub;	/* sub NULL: the command itself */
	const char *text;	/* NULL: the command prints its own usage on --help */
};

static const struct help helps[] = {
	{ "build", NULL, NULL },
	{ "buildx", NULL, NULL },
	{ "run", NULL, NULL },
	{ "ps", NULL, NULL },
	{ "logs", NULL, NULL },
	{ "stop", NULL, NULL },
	{ "kill", NULL, NULL },
	{ "rm", NULL, NULL },
	{ "exec", NULL, NULL },
	{ "create", NULL, NULL },
	{ "start", NULL, NULL },
	{ "restart", NULL, NULL },
	{ "attach", NULL, NULL },
	{ "images", NULL, NULL },
	{ "rmi", NULL, NULL },
	{ "compose", NULL, NULL },
	{ "port", NULL,
	    "usage: hypr port CONTAINER [PORT[/PROTO]]\n"
	    "\n"
	    "A container's published ports (all, or the one given): PORT/PROTO -> HOST:PORT.\n" },
	{ "inspect", NULL,
	    "usage: hypr inspect [-f FORMAT] [--type container|image] NAME...\n"
	    "\n"
	    "Containers or images as JSON (or FORMAT, a Go template). Without --type,\n"
	    "the first NAME decides: a container by that name or ID, else an image.\n" },
	{ "tag", NULL,
	    "usage: hypr tag SOURCE[:TAG] TARGET[:TAG]\n"
	    "\n"
	    "Give the image SOURCE another name, TARGET (= hypr image tag).\n" },
	{ "history", NULL,
	    "usage: hypr history [-q] [--no-trunc] IMAGE\n"
	    "\n"
	    "The steps that made IMAGE, newest first (= hypr image history).\n"
	    "  -q, --quiet      only the IDs\n"
	    "  --no-trunc       do not shorten the output\n" },
	{ "pull", NULL,
	    "usage: hypr pull [--platform OS/ARCH] [-q] [--insecure-registry HOST] NAME[:TAG|@DIGEST]\n"
	    "\n"
	    "Fetch an image from its registry into the store as a base image, and\n"
	    "print its digest (= hypr image pull).\n"
	    "  --platform OS/ARCH        the platform to pull (default: the host's)\n"
	    "  -q, --quiet               no progress\n"
	    "  --insecure-registry HOST  plain HTTP for HOST (repeatable)\n" },
	{ "push", NULL,
	    "usage: hypr push [-a] [-q] [--no-artifact] [--insecure-registry HOST] NAME[:TAG]\n"
	    "\n"
	    "Send a built image to the registry its name names (= hypr image push).\n"
	    "  -a, --all-tags            every tag of NAME\n"
	    "  --no-artifact             the OCI image only, not its squashfs artifact\n"
	    "  -q, --quiet               no progress\n"
	    "  --insecure-registry HOST  plain HTTP for HOST (repeatable)\n" },
	{ "save", NULL,
	    "usage: hypr save [-o FILE] [--format docker|oci] IMAGE...\n"
	    "\n"
	    "Write stored images as one tar (= hypr image save): a docker save archive\n"
	    "(default) or an OCI image layout, to FILE or to stdout when it is not a\n"
	    "terminal; docker load and hypr load read both.\n"
	    "  -o, --output FILE   write FILE (whole or not at all)\n"
	    "  --format FORMAT     docker (default) or oci\n" },
	{ "load", NULL,
	    "usage: hypr load [-q] [--name NAME[:TAG]] [-i FILE | PATH]\n"
	    "       hypr load [-q] [--name NAME[:TAG]] < FILE\n"
	    "\n"
	    "Load a base image: an OCI image layout (a directory or its tar) or a\n"
	    "docker save tar, from PATH, FILE or stdin (= hypr image load).\n"
	    "  -i, --input FILE   read FILE rather than stdin\n"
	    "  --name NAME[:TAG]  the name to give it (default: the one the archive has)\n"
	    "  -q, --quiet        nothing on stdout\n" },
	{ "login", NULL,
	    "usage: hypr login [-u USER] [--password-stdin] [REGISTRY]\n"
	    "\n"
	    "Check a user name and password against REGISTRY (default docker.io) and\n"
	    "store them for pull and push. Without -u, the user name and password are\n"
	    "asked for on the terminal; with --password-stdin the password is read from\n"
	    "stdin (never give it as an argument).\n"
	    "  -u, --username USER  the user name\n"
	    "  --password-stdin     read the password from stdin\n" },
	{ "logout", NULL,
	    "usage: hypr logout [REGISTRY]\n"
	    "\n"
	    "Forget the credentials stored for REGISTRY (default docker.io).\n" },
	{ "version", NULL,
	    "usage: hypr version\n"
	    "\n"
	    "Print hypr's version.\n" },
	{ "help", NULL,
	    "usage: hypr help [COMMAND [SUBCOMMAND]]\n"
	    "\n"
	    "hypr's commands, or a command's usage (the same as hypr COMMAND --help).\n" },

	{ "image", NULL,
	    "usage: hypr image COMMAND\n"
	    "\n"
	    "Manage images.\n"
	    "\n"
	    "Commands:\n"
	    "  build     build an image from a Dockerfile (= hypr build)\n"
	    "  history   the steps that made an image (= hypr history)\n"
	    "  inspect   images as JSON\n"
	    "  load      load a base image from an OCI layout or docker save tar (= hypr load)\n"
	    "  ls        list images (= hypr images)\n"
	    "  prune     remove unused images\n"
	    "  pull      fetch a base image from a registry (= hypr pull)\n"
	    "  push      push an image to its registry (= hypr push)\n"
	    "  rm        remove images (= hypr rmi)\n"
	    "  tag       give an image another name (= hypr tag)\n"
	    "\n"
	    "See hypr image COMMAND --help.\n" },
	{ "image", "build", NULL },
	{ "image", "history",
	    "usage: hypr image history [-q] [--no-trunc] IMAGE\n"
	    "\n"
	    "The steps that made IMAGE, newest first (= hypr history).\n"
	    "  -q, --quiet      only the IDs\n"
	    "  --no-trunc       do not shorten the output\n" },
	{ "image", "inspect", NULL },
	{ "image", "load",
	    "usage: hypr image load [-q] [--name NAME[:TAG]] [-i FILE | PATH]\n"
	    "\n"
	    "Load a base image from an OCI image layout or docker save tar (= hypr load).\n" },
	{ "image", "ls", NULL },
	{ "image", "list", NULL },
	{ "image", "prune", NULL },
	{ "image", "pull",
	    "usage: hypr image pull [--platform OS/ARCH] [-q] NAME[:TAG|@DIGEST]\n"
	    "\n"
	    "Fetch an image from its registry as a base image (= hypr pull).\n" },
	{ "image", "push",
	    "usage: hypr image push [-a] [-q] [--no-artifact] NAME[:TAG]\n"
	    "\n"
	    "Send a built image to its registry (= hypr push).\n" },
	{ "image", "save",
	    "usage: hypr image save [-o FILE] [--format docker|oci] IMAGE...\n"
	    "\n"
	    "Write stored images as one tar (= hypr save).\n" },
	{ "image", "rm", NULL },
	{ "image", "remove", NULL },
	{ "image", "tag",
	    "usage: hypr image tag SOURCE[:TAG] TARGET[:TAG]\n"
	    "\n"
	    "Give the image SOURCE another name, TARGET (= hypr tag).\n" },

	{ "system", NULL,
	    "usage: hypr system COMMAND\n"
	    "\n"
	    "Manage hypr's store.\n"
	    "\n"
	    "Commands:\n"
	    "  df        disk usage of images, containers and build cache\n"
	    "  prune     remove unused data and build cache\n"
	    "\n"
	    "See hypr system COMMAND --help.\n" },
	{ "system", "df", NULL },
	{ "system", "prune", NULL },

	{ "builder", NULL,
	    "usage: hypr builder COMMAND\n"
	    "\n"
	    "Manage builds.\n"
	    "\n"
	    "Commands:\n"
	    "  build     build an image from a Dockerfile (= hypr build)\n"
	    "  prune     remove the build cache\n" },
	{ "builder", "build", NULL },
	{ "builder", "prune", NULL },

	{ "container", NULL,
	    "usage: hypr container COMMAND\n"
	    "\n"
	    "Manage containers.\n"
	    "\n"
	    "Commands:\n"
	    "  attach    follow a running container's process (= hypr attach)\n"
	    "  create    make a container, not started (= hypr create)\n"
	    "  exec      run a command in a running container (= hypr exec)\n"
	    "  inspect   containers as JSON\n"
	    "  kill      signal containers (= hypr kill)\n"
	    "  logs      a container's output (= hypr logs)\n"
	    "  ls        list containers (= hypr ps)\n"
	    "  port      a container's published ports (= hypr port)\n"
	    "  prune     remove every stopped container\n"
	    "  restart   stop, then start containers (= hypr restart)\n"
	    "  rm        remove containers (= hypr rm)\n"
	    "  run       boot an image and run it (= hypr run)\n"
	    "  start     start stopped containers (= hypr start)\n"
	    "  stop      stop containers (= hypr stop)\n"
	    "\n"
	    "See hypr container COMMAND --help.\n" },
	{ "container", "exec", NULL },
	{ "container", "inspect", NULL },
	{ "container", "kill", NULL },
	{ "container", "logs", NULL },
	{ "container", "ls", NULL },
	{ "container", "list", NULL },
	{ "container", "ps", NULL },
	{ "container", "port",
	    "usage: hypr container port CONTAINER [PORT[/PROTO]]\n"
	    "\n"
	    "A container's published ports (= hypr port).\n" },
	{ "container", "prune",
	    "usage: hypr container prune [-f]\n"
	    "\n"
	    "Remove every stopped container (asks first, unless -f).\n"
	    "  -f, --force      do not ask\n" },
	{ "container", "rm", NULL },
	{ "container", "remove", NULL },
	{ "container", "run", NULL },
	{ "container", "stop", NULL },
	{ "container", "create", NULL },
	{ "container", "start", NULL },
	{ "container", "restart", NULL },
	{ "container", "attach", NULL },

	{ "volume", NULL,
	    "usage: hypr volume COMMAND\n"
	    "\n"
	    "Manage the named volumes of hypr run -v NAME:PATH.\n"
	    "\n"
	    "Commands:\n"
	    "  create    make a volume\n"
	    "  inspect   volumes as JSON\n"
	    "  ls        list volumes\n"
	    "  prune     remove unused volumes\n"
	    "  rm        remove volumes\n"
	    "\n"
	    "See hypr volume COMMAND --help, hypr-volume(1).\n" },
	{ "volume", "create",
	    "usage: hypr volume create [-l K=V] [NAME]\n"
	    "\n"
	    "Make a volume (a random name without NAME) and print its name.\n"
	    "  -l K=V           a label (repeatable)\n" },
	{ "volume", "inspect",
	    "usage: hypr volume inspect NAME...\n"
	    "\n"
	    "Volumes as JSON, as docker volume inspect prints them.\n" },
	{ "volume", "ls",
	    "usage: hypr volume ls [-q]\n"
	    "\n"
	    "List volumes.\n"
	    "  -q               names only\n" },
	{ "volume", "list",
	    "usage: hypr volume ls [-q]\n"
	    "\n"
	    "List volumes.\n"
	    "  -q               names only\n" },
	{ "volume", "rm",
	    "usage: hypr volume rm [-f] NAME...\n"
	    "\n"
	    "Remove volumes no container names.\n"
	    "  -f               a volume that does not exist is not an error\n" },
	{ "volume", "remove",
	    "usage: hypr volume rm [-f] NAME...\n"
	    "\n"
	    "Remove volumes no container names.\n"
	    "  -f               a volume that does not exist is not an error\n" },
	{ "volume", "prune",
	    "usage: hypr volume prune [-a] [-f]\n"
	    "\n"
	    "Remove the anonymous volumes no container names (asks first, unless -f).\n"
	    "  -a               every volume no container names\n"
	    "  -f               do not ask\n" },

	{ "compose", "build",
	    "usage: hypr compose build [--no-cache] [--pull] [-q] [--build-arg K=V]\n"
	    "                          [-n] [SERVICE...]\n"
	    "\n"
	    "Build every service that has a build: section (or those named).\n"
	    "  -n, --dry-run    print the builds, do not run them\n"
	    "compose's own options (-f FILE, -p NAME...) go before the command.\n" },
	{ "compose", "up",
	    "usage: hypr compose up [--build] [--no-build] [-d] [--wait]\n"
	    "                       [--force-recreate] [--no-deps] [SERVICE...]\n"
	    "\n"
	    "Build what needs building, then start every service (or those named, and\n"
	    "what they depend on).\n"
	    "  -d, --detach     start them in the background\n"
	    "  --wait           and wait until they are healthy\n"
	    "compose's own options (-f FILE, -p NAME...) go before the command.\n" },
	{ "compose", "down",
	    "usage: hypr compose down [-t SECS] [-v]\n"
	    "\n"
	    "Stop and remove the project's containers.\n"
	    "  -v, --volumes    and the volumes they named that no other container names\n" },
	{ "compose", "ps",
	    "usage: hypr compose ps [-a] [-q] [--services] [SERVICE...]\n"
	    "\n"
	    "The project's containers.\n" },
	{ "compose", "logs",
	    "usage: hypr compose logs [-f] [-t] [-n N] [--since T] [--until T] [SERVICE...]\n"
	    "\n"
	    "The output of the project's containers, each line prefixed with its container.\n"
	    "  -f, --follow        until they stop\n"
	    "  -t, --timestamps    each line's time (RFC 3339) after the name\n"
	    "  -n, --tail N        each container's last N lines (or all)\n"
	    "  --since T, --until T  what was written in that window: an RFC 3339 time,\n"
	    "                      a date, Unix seconds, or a duration before now (42m)\n" },
	{ "compose", "stop",
	    "usage: hypr compose stop [-t SECS] [SERVICE...]\n"
	    "\n"
	    "Stop the project's containers (they stay, for hypr compose up).\n" },
	{ "compose", "config",
	    "usage: hypr compose config [--commands] [SERVICE...]\n"
	    "\n"
	    "Print the resolved project as YAML; --commands: one hypr build command per\n"
	    "service to build.\n" },
	{ "compose", "push",
	    "usage: hypr compose push [--ignore-push-failures] [-q] [--dry-run] [SERVICE...]\n"
	    "\n"
	    "Push the image: and build.tags names of the services that have a build:\n"
	    "section (hypr push).\n" },
};

static const struct help *
find(const char *cmd, const char *sub)
{
	size_t i;

	for (i = 0; i < sizeof helps / sizeof helps[0]; i++)
		if (!strcmp(helps[i].cmd, cmd) && (sub ? helps[i].sub && !strcmp(helps[i].sub, sub) :
		    !helps[i].sub))
			return &helps[i];
	return NULL;
}

static int
has_subs(const char *cmd)
{
	return !strcmp(cmd, "image") || !strcmp(cmd, "system") || !strcmp(cmd, "builder") ||
	    !strcmp(cmd, "container") || !strcmp(cmd, "compose") || !strcmp(cmd, "volume");
}

/* The index of compose's sub-command in argv (argv[0] = "compose"), past
 * its own options, or argc. */
static int
compose_sub(int argc, char **argv)
{
	int i;

	for (i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (!strcmp(a, "-f") || !strcmp(a, "-p") || !strcmp(a, "--file") ||
		    !strcmp(a, "--project-name") || !strcmp(a, "--project-directory") ||
		    !strcmp(a, "--env-file") || !strcmp(a, "--profile"))
			i++;
		else if (a[0] != '-' || !strcmp(a, "--"))
			break;
	}
	return i;
}

void
help_intercept(int argc, char **argv)
{
	const struct help *h;
	int i = 2;

	if (argc < 2)
		return;
	if (!has_subs(argv[1])) {
		h = find(argv[1], NULL);
	} else {
		i = !strcmp(argv[1], "compose") ? compose_sub(argc - 1, argv + 1) + 1 : 2;
		if (i < argc && strcmp(argv[i], "--") && argv[i][0] != '-') {
			h = find(argv[1], argv[i]);
			i++;
		} else {
			h = find(argv[1], NULL);
		}
	}
	if (!h || !h->text)
		return;
	for (; i < argc && strcmp(argv[i], "--"); i++)
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			fputs(h->text, stdout);
			exit(hypr_close_stdout());
		}
}

int
help_argv(int argc, char **argv, char **out)
{
	int n = 0;

	if (argc < 1)
		return 0;
	if (argc > 2)
		hypr_die(HYPR_EXIT_USAGE, "usage: hypr help [COMMAND [SUBCOMMAND]]");
	if (argc == 2 && !has_subs(argv[0]))
		hypr_die(HYPR_EXIT_USAGE, "help: %s has no sub-commands (see hypr help %s)",
		    argv[0], argv[0]);
	if (!find(argv[0], NULL) || (argc == 2 && !find(argv[0], argv[1])))
		hypr_die(HYPR_EXIT_USAGE, "help: no command '%s%s%s' (see hypr help)", argv[0],
		    argc == 2 ? " " : "", argc == 2 ? argv[1] : "");
	out[n++] = "hypr";
	out[n++] = argv[0];
	if (argc == 2)
		out[n++] = argv[1];
	out[n++] = "--help";
	out[n] = NULL;
	return n;
}
