#include "tool.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

const char *prog = "hypr";

void
die(int code, const char *fmt, ...)
{
	va_list ap;

	fflush(stdout);
	fprintf(stderr, "%s: ", prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(code);
}

void
die_errno(const char *fmt, ...)
{
	int saved = errno;
	va_list ap;

	fflush(stdout);
	fprintf(stderr, "%s: ", prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, ": %s\n", strerror(saved));
	exit(HYPR_EXIT_SYSTEM);
}

void
die_err(const struct hypr_err *e)
{
	die(e->code ? e->code : HYPR_EXIT_SYSTEM, "%s",
	    e->msg[0] ? e->msg : "unknown error");
}

void
warn(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: warning: ", prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

int
close_stdout(void)
{
	int bad = ferror(stdout);

	if (fclose(stdout) != 0 || bad) {
		if (errno == EPIPE)
			exit(HYPR_EXIT_SYSTEM);
		die_errno("writing standard output");
	}
	return 0;
}

void
refuse_tty_stdin(const char *what)
{
	if (isatty(STDIN_FILENO))
		die(HYPR_EXIT_USAGE, "refusing to read %s from a terminal (see --help)",
		    what);
}
