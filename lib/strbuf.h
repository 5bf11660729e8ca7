/* strbuf.h - a growable NUL-terminated string that remembers running out of
 * memory (check oom once at the end instead of after every append). */
#ifndef HYPR_STRBUF_H
#define HYPR_STRBUF_H

#include <stddef.h>

/* Zero-initialise; s is NULL until the first append. */
struct hypr_strbuf {
	char *s;
	size_t n, cap;
	int oom;		/* an append failed: s holds what came before */
};

/* Append n bytes (no-op once oom). */
void hypr_strbuf_addn(struct hypr_strbuf *b, const char *s, size_t n);
/* Append a NUL-terminated string. */
void hypr_strbuf_add(struct hypr_strbuf *b, const char *s);
/* Append one byte. */
void hypr_strbuf_addc(struct hypr_strbuf *b, char c);
/* The string so far, never NULL ("" when empty or out of memory). */
const char *hypr_strbuf_str(struct hypr_strbuf *b);
/* Empty the string, keeping its memory. */
void hypr_strbuf_reset(struct hypr_strbuf *b);
/* Take the malloc'd string out and zero b: NULL (and freed) when oom. */
char *hypr_strbuf_take(struct hypr_strbuf *b);

#endif
