/* child.c - running a helper program with pipes to it. */
#include "child.h"

#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <unistd.h>

extern char **environ;

int
hypr_child_spawn(const char *file, char *const argv[], pid_t *pid, int *to,
    int *from, struct hypr_err *e)
{
	posix_spawn_file_actions_t fa;
	int in[2], out[2], st;

	if (pipe2(in, O_CLOEXEC) < 0)
		return hypr_err_errno(e, HYPR_EXIT_SYSTEM, "pipe");
	if (pipe2(out, O_CLOEXEC) < 0) {
		close(in[0]);
		close(in[1]);
		return hypr_err_errno(e, HYPR_EXIT_SYSTEM, "pipe");
	}
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, in[0], 0);
	posix_spawn_file_actions_adddup2(&fa, out[1], 1);
	st = posix_spawnp(pid, file, &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	close(in[0]);
	close(out[1]);
	if (st != 0) {
		close(in[1]);
		close(out[0]);
		errno = st;
		return hypr_err_errno(e, HYPR_EXIT_SYSTEM, "running %s", file);
	}
	*to = in[1];
	*from = out[0];
	return 0;
}
