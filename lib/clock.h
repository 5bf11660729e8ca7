/* clock.h - monotonic seconds, for deadlines and timings (host and guest:
 * header only, so hypr-init needs no library). */
#ifndef HYPR_CLOCK_H
#define HYPR_CLOCK_H

#include <time.h>

static inline double
hypr_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

#endif
