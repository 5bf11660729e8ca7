/* clock.h - monotonic seconds, for deadlines and timings (host and guest:
 * header only, so hypr-init needs no library). */
#ifndef HYPR_CLOCK_H
#define HYPR_CLOCK_H

#include <stdlib.h>
#include <time.h>

static inline double
hypr_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Seconds from the environment variable name (a number >= 0), else def. */
static inline double
hypr_env_seconds(const char *name, double def)
{
	const char *v = getenv(name);
	char *end;
	double d;

	if (!v || !*v)
		return def;
	d = strtod(v, &end);
	return *end || d < 0 ? def : d;
}

#endif
