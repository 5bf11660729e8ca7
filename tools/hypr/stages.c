/* stages.c - the six stage programs: their names, the stream each writes,
 * and how a stage's program is found and exec'd. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hypr.h"
#include "tool.h"

const char *const stage_names[NSTAGES] = { "parse", "fetch", "exec", "layer",
	"squash", "store" };
const char *const stage_progs[NSTAGES] = { "hypr-parse", "hypr-fetch",
	"hypr-exec", "hypr-layer", "hypr-squash", "hypr-store" };
const char *const stage_outputs[NSTAGES] = { "plan.jsonl", "resolved.jsonl",
	"steps.jsonl", "image.jsonl", "squashed.jsonl", "id" };

/* HYPR_PARSE for hypr-parse, HYPR_STORE for hypr-store, ... */
const char *
prog_override(const char *name)
{
	char var[64];
	size_t i, j = 0;

	for (i = 0; name[i] && j + 1 < sizeof var; i++)
		var[j++] = name[i] == '-' ? '_' : (char)(name[i] >= 'a' && name[i] <= 'z' ?
		    name[i] - 'a' + 'A' : name[i]);
	var[j] = 0;
	return getenv(var) && *getenv(var) ? getenv(var) : NULL;
}

const char *
find_prog(const char *name)
{
	static char buf[8][PATH_MAX];
	static int next;
	const char *env = prog_override(name);
	char self[PATH_MAX], *slash;
	ssize_t n;

	if (env && *env)
		return env;
	n = readlink("/proc/self/exe", self, sizeof self - 1);
	if (n > 0) {
		self[n] = 0;
		if ((slash = strrchr(self, '/'))) {
			char *b = buf[next++ % 8];

			*slash = 0;
			if ((size_t)snprintf(b, PATH_MAX, "%s/%s", self, name) < PATH_MAX &&
			    access(b, X_OK) == 0)
				return b;
		}
	}
	return name;
}

void
exec_prog(const char *name, char **args)
{
	const char *p = find_prog(name);

	/* argv[0] is the short name: getopt's messages then read "hypr-x: ..." */
	args[0] = (char *)(prog_override(name) ? p : name);
	if (strchr(p, '/'))
		execv(p, args);
	else
		execvp(p, args);
	/* _exit: this may be a forked child; nothing of the parent's to flush. */
	fprintf(stderr, "%s: cannot run %s: %s\n", name, p, strerror(errno));
	_exit(HYPR_EXIT_SYSTEM);
}

int
stage_by_name(const char *s)
{
	int i;

	for (i = 0; i < NSTAGES; i++)
		if (!strcmp(s, stage_names[i]) || !strcmp(s, stage_progs[i]))
			return i;
	hypr_die(HYPR_EXIT_USAGE, "build: --from: unknown stage '%s' (fetch, exec, layer, squash, store)",
	    s);
}
