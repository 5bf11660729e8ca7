#include "image.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int64_t
hypr_image_epoch(struct hypr_err *e)
{
	const char *s = getenv("SOURCE_DATE_EPOCH");
	char *end;
	long long v;

	if (s == NULL || *s == '\0')
		return -1;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno || *end || v < 0) {
		hypr_err_set(e, HYPR_EXIT_USAGE, "SOURCE_DATE_EPOCH='%s': not a number of seconds", s);
		return -2;
	}
	return v;
}

void
hypr_image_time(int64_t t, char *buf, size_t n)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (gmtime_r(&tt, &tm) == NULL || strftime(buf, n, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(buf, n, "1970-01-01T00:00:00Z");
}

int64_t
hypr_image_parse_time(const char *s)
{
	struct tm tm = { 0 };
	const char *p;
	int64_t t;

	if (s == NULL || (p = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm)) == NULL)
		return -1;
	if (*p == '.')
		for (p++; *p >= '0' && *p <= '9'; p++)
			;
	t = (int64_t)timegm(&tm);
	if (*p == 'Z' || *p == 'z')
		return t;
	if ((*p == '+' || *p == '-') && strlen(p) >= 6) {
		int h = atoi(p + 1), m = atoi(p + 4), off = h * 3600 + m * 60;

		return *p == '+' ? t - off : t + off;
	}
	return *p ? -1 : t;
}

int
hypr_image_chain_id(const struct hypr_layer *layers, size_t n, char out[HYPR_DIGEST_LEN + 1],
    struct hypr_err *e)
{
	char buf[2 * HYPR_DIGEST_LEN + 2];

	out[0] = '\0';
	if (n == 0)
		return hypr_digest_buf("", 0, out, e);
	for (size_t i = 0; i < n; i++) {
		const char *d = layers[i].diff_id;

		if (!hypr_digest_valid(d))
			return hypr_err_set(e, HYPR_EXIT_INPUT, "layer %zu: bad diff_id", i);
		if (i == 0) {
			memcpy(out, d, HYPR_DIGEST_LEN + 1);
			continue;
		}
		snprintf(buf, sizeof(buf), "%s %s", out, d);
		if (hypr_digest_buf(buf, strlen(buf), out, e) < 0)
			return -1;
	}
	return 0;
}

void
hypr_image_human_size(uint64_t size, char *buf, size_t n)
{
	static const char *const u[] = { "B", "kB", "MB", "GB", "TB", "PB", "EB" };
	double s = (double)size;
	size_t i = 0;

	while (s >= 1000.0 && i < sizeof(u) / sizeof(u[0]) - 1) {
		s /= 1000.0;
		i++;
	}
	snprintf(buf, n, "%.3g%s", s, u[i]);
}

void
hypr_image_human_age(int64_t secs, char *buf, size_t n)
{
	int64_t min = secs / 60, hours = (secs + 1800) / 3600;

	if (secs < 1)
		snprintf(buf, n, "Less than a second ago");
	else if (secs == 1)
		snprintf(buf, n, "1 second ago");
	else if (secs < 60)
		snprintf(buf, n, "%lld seconds ago", (long long)secs);
	else if (min == 1)
		snprintf(buf, n, "About a minute ago");
	else if (min < 60)
		snprintf(buf, n, "%lld minutes ago", (long long)min);
	else if (hours == 1)
		snprintf(buf, n, "About an hour ago");
	else if (hours < 48)
		snprintf(buf, n, "%lld hours ago", (long long)hours);
	else if (hours < 24 * 7 * 2)
		snprintf(buf, n, "%lld days ago", (long long)(hours / 24));
	else if (hours < 24 * 30 * 2)
		snprintf(buf, n, "%lld weeks ago", (long long)(hours / 24 / 7));
	else if (hours < 24 * 365 * 2)
		snprintf(buf, n, "%lld months ago", (long long)(hours / 24 / 30));
	else
		snprintf(buf, n, "%lld years ago", (long long)(secs / 3600 / 24 / 365));
}
