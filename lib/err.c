#include "err.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

int
hypr_err_set(struct hypr_err *e, int code, const char *fmt, ...)
{
	va_list ap;

	if (e == NULL)
		return -1;
	e->code = code;
	va_start(ap, fmt);
	vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
	va_end(ap);
	return -1;
}

int
hypr_err_errno(struct hypr_err *e, int code, const char *fmt, ...)
{
	int saved = errno;
	size_t n;
	va_list ap;

	if (e == NULL)
		return -1;
	e->code = code;
	va_start(ap, fmt);
	vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
	va_end(ap);
	n = strlen(e->msg);
	snprintf(e->msg + n, sizeof(e->msg) - n, ": %s", strerror(saved));
	errno = saved;
	return -1;
}

int
hypr_err_prefix(struct hypr_err *e, const char *fmt, ...)
{
	char where[512];
	size_t w, m;
	va_list ap;

	if (e == NULL)
		return -1;
	va_start(ap, fmt);
	vsnprintf(where, sizeof(where), fmt, ap);
	va_end(ap);
	w = strlen(where);
	if (w + 2 >= sizeof(e->msg))
		return -1;
	/* Shift the old message right, truncating its tail, then put "where: " first. */
	m = strnlen(e->msg, sizeof(e->msg) - 1);
	if (m > sizeof(e->msg) - 1 - (w + 2))
		m = sizeof(e->msg) - 1 - (w + 2);
	memmove(e->msg + w + 2, e->msg, m);
	e->msg[w + 2 + m] = '\0';
	memcpy(e->msg, where, w);
	e->msg[w] = ':';
	e->msg[w + 1] = ' ';
	return -1;
}
