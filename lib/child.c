/* child.c - running a helper program with pipes to it. */
#include "child.h"

#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

int
hypr_child_spawn(const char *file, char *const argv[], pid_t *pid, int *to,
    int *from, struct hypr_err *e)
{
	return hypr_child_spawn3(file, argv, pid, to, from, -1, e);
}

int
hypr_child_spawn3(const char *file, char *const argv[], pid_t *pid, int *to,
    int *from, int fd3, struct hypr_err *e)
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
	if (fd3 >= 0)
		posix_spawn_file_actions_adddup2(&fa, fd3, 3);
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

int
hypr_child_reader(char *const argv[], const char *src, pid_t *pid, int *from,
    struct hypr_err *e)
{
	posix_spawn_file_actions_t fa;
	int in, out[2], st;

	if ((in = open(src, O_RDONLY | O_CLOEXEC)) < 0)
		return hypr_err_errno(e, HYPR_EXIT_SYSTEM, "%s", src);
	if (pipe2(out, O_CLOEXEC) < 0) {
		close(in);
		return hypr_err_errno(e, HYPR_EXIT_SYSTEM, "pipe");
	}
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, in, 0);
	posix_spawn_file_actions_adddup2(&fa, out[1], 1);
	st = posix_spawnp(pid, argv[0], &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	close(in);
	close(out[1]);
	if (st != 0) {
		close(out[0]);
		errno = st;
		return hypr_err_errno(e, HYPR_EXIT_SYSTEM, "running %s", argv[0]);
	}
	*from = out[0];
	return 0;
}

int
hypr_child_filter(char *const argv[], const char *src, const char *out, const char *what,
    struct hypr_err *e)
{
	posix_spawn_file_actions_t fa;
	pid_t pid;
	int in, fd, st;

	if ((in = open(src, O_RDONLY | O_CLOEXEC)) < 0)
		return hypr_err_errno(e, HYPR_EXIT_SYSTEM, "%s: %s", what, src);
	if ((fd = open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)) < 0) {
		close(in);
		return hypr_err_errno(e, HYPR_EXIT_SYSTEM, "%s", out);
	}
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, in, 0);
	posix_spawn_file_actions_adddup2(&fa, fd, 1);
	st = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	close(in);
	close(fd);
	if (st != 0) {
		unlink(out);
		errno = st;
		return hypr_err_errno(e, HYPR_EXIT_SYSTEM, "%s: running %s", what, argv[0]);
	}
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR) {
			unlink(out);
			return hypr_err_errno(e, HYPR_EXIT_SYSTEM, "%s: waitpid", what);
		}
	if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
		return 0;
	unlink(out);
	return hypr_err_set(e, HYPR_EXIT_SYSTEM, "%s failed%s", what,
	    WIFEXITED(st) && WEXITSTATUS(st) == 127 ? " (not installed?)" : "");
}
