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

size_t
hypr_utf8_len(const unsigned char *s, size_t left, int c1)
{
	size_t n;
	unsigned char lo = 0x80, hi = 0xbf;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		n = 2;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		n = 3;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		n = 4;
	else
		return 0;
	if (n > left)
		return 0;
	if (s[0] == 0xe0)
		lo = 0xa0;
	else if (s[0] == 0xed)
		hi = 0x9f;
	else if (s[0] == 0xf0)
		lo = 0x90;
	else if (s[0] == 0xf4)
		hi = 0x8f;
	else if (s[0] == 0xc2 && !c1)
		lo = 0xa0;	/* U+0080-U+009F: C1 controls (8-bit CSI, OSC) */
	if (s[1] < lo || s[1] > hi)
		return 0;
	for (size_t i = 2; i < n; i++)
		if (s[i] < 0x80 || s[i] > 0xbf)
			return 0;
	return n;
}

size_t
hypr_escape(const char *s, size_t len, char *out, size_t size)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0, o = 0, k;

	if (size == 0)
		return 0;
	while (i < len) {
		k = hypr_utf8_len(p + i, len - i, 0);
		if (k == 1 && ((p[i] >= 0x20 && p[i] != 0x7f) || p[i] == '\t')) {
			if (o + 1 >= size)
				break;
			out[o++] = (char)p[i++];
		} else if (k > 1) {
			if (o + k >= size)
				break;
			memcpy(out + o, p + i, k);
			o += k;
			i += k;
		} else {
			if (o + 4 >= size)
				break;
			out[o++] = '\\';
			out[o++] = 'x';
			out[o++] = hex[p[i] >> 4];
			out[o++] = hex[p[i] & 15];
			i++;
		}
	}
	out[o] = '\0';
	return i;
}

void
hypr_fput_escaped(FILE *f, const char *s, size_t len)
{
	char buf[1024];

	while (len > 0) {
		size_t k = hypr_escape(s, len, buf, sizeof(buf));

		fputs(buf, f);
		s += k;
		len -= k;
	}
}
