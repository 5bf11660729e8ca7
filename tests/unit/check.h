/* check.h - a minimal assertion helper for hypr's C unit tests. */
#ifndef HYPR_CHECK_H
#define HYPR_CHECK_H

#include <stdio.h>
#include <stdlib.h>

static int check_failed;

#define CHECK(cond) do { \
	if (!(cond)) { \
		fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
		check_failed++; \
	} \
} while (0)

#define CHECK_DONE() do { \
	if (check_failed) { \
		fprintf(stderr, "%s: %d check(s) failed\n", __FILE__, check_failed); \
		return 1; \
	} \
	return 0; \
} while (0)

#endif
