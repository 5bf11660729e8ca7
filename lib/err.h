/* err.h - error reporting shared by every module: lib fills, tools print. */
#ifndef HYPR_ERR_H
#define HYPR_ERR_H

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>

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

/* Length of the valid UTF-8 sequence at s (left bytes there), or 0; c1:
 * whether the C1 controls U+0080-U+009F count as valid. */
size_t hypr_utf8_len(const unsigned char *s, size_t left, int c1);
/* The one escaper for text shown to a person (error lines, a terminal):
 * copies s[0..len) to out (size bytes, always NUL-terminated) with every
 * byte a terminal would act on or that is not UTF-8 written as \xNN: NUL
 * and the other C0 controls but tab, DEL, the C1 controls (U+0080-U+009F)
 * and invalid bytes. Printable UTF-8 and backslashes pass unchanged, so
 * escaping twice changes nothing. Returns how many bytes of s fitted (a
 * sequence is never split). */
size_t hypr_escape(const char *s, size_t len, char *out, size_t size);
/* Write s escaped as hypr_escape does, whatever its length. */
void hypr_fput_escaped(FILE *f, const char *s, size_t len);

#endif
