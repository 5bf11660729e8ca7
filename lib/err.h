/* err.h - error reporting shared by every module: lib fills, tools print. */
#ifndef HYPR_ERR_H
#define HYPR_ERR_H

#include <stdarg.h>

/* One exit-status table for every hypr program (see hypr(7)). */
enum hypr_exit {
	HYPR_EXIT_OK = 0,
	HYPR_EXIT_STEP = 1,	/* a build step failed */
	HYPR_EXIT_USAGE = 2,	/* usage error */
	HYPR_EXIT_INPUT = 3,	/* bad input: syntax, malformed or truncated stream */
	HYPR_EXIT_SYSTEM = 4,	/* system or dependency failure (worth retrying) */
};

struct hypr_err {
	int code;		/* an enum hypr_exit value; 0 until set */
	char msg[1024];		/* one line, "where: what", no program name */
};

/* Set code and message; returns -1 so callers can `return hypr_err_set(...)`. */
int hypr_err_set(struct hypr_err *e, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Like hypr_err_set with ": strerror(errno)" appended. */
int hypr_err_errno(struct hypr_err *e, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Prefix the existing message with "where: " (keeps the code). */
int hypr_err_prefix(struct hypr_err *e, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#endif
