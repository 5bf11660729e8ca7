/* logscmd.c - hypr logs: what a container's process wrote (its log file,
 * container.h), whole, its last lines (--tail), with times (-t), following
 * it (-f); the tail and time helpers compose logs uses too (ctr.h). */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ctr.h"
#include "hypr.h"
#include "tool.h"

long
ctr_tail(const char *arg, int *ok)
{
	char *end;
	long v;

	*ok = 1;
	if (!strcmp(arg, "all"))
		return -1;
	errno = 0;
	v = strtol(arg, &end, 10);
	if (end == arg || *end || errno || v < 0) {
		*ok = 0;
		return -1;
	}
	return v;
}

unsigned long long
ctr_log_skip(const struct hypr_ctr *c, long tail)
{
	struct hypr_err e = { 0 };
	struct hypr_ctr_log l;
	unsigned long long lines = 0;
	int stream;
	int64_t ns;
	const char *data;
	size_t len;

	if (tail < 0)
		return 0;
	hypr_ctr_log_open(&l, c, &e);
	while (hypr_ctr_log_next(&l, &stream, &ns, &data, &len, &e) == 1)
		for (size_t i = 0; i < len; i++)
			lines += data[i] == '\n';
	hypr_ctr_log_close(&l);
	return lines > (unsigned long long)tail ? lines - (unsigned long long)tail : 0;
}

void
ctr_skip_lines(unsigned long long *skip, const char **data, size_t *len)
{
	while (*skip && *len) {
		const char *nl = memchr(*data, '\n', *len);

		if (!nl) {
			*len = 0;
			return;
		}
		--*skip;
		*len -= (size_t)(nl + 1 - *data);
		*data = nl + 1;
	}
}

void
ctr_log_time(int64_t ns, char *buf, size_t n)
{
	time_t sec = (time_t)(ns / 1000000000);
	struct tm tm;
	char b[32];

	gmtime_r(&sec, &tm);
	strftime(b, sizeof b, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf, n, "%s.%09lldZ", b, (long long)(ns % 1000000000));
}

static void
print_record(int stream, int64_t ns, const char *data, size_t len, int ts, int *bol)
{
	FILE *f = stream == 2 ? stderr : stdout;

	if (!ts) {
		fwrite(data, 1, len, f);
		return;
	}
	/* -t: each line starts with its record's time (RFC 3339, nanoseconds) */
	for (size_t i = 0; i < len; i++) {
		if (bol[stream]) {
			char t[64];

			ctr_log_time(ns, t, sizeof t);
			fprintf(f, "%s ", t);
			bol[stream] = 0;
		}
		fputc(data[i], f);
		if (data[i] == '\n')
			bol[stream] = 1;
	}
}

int
cmd_logs(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "follow", no_argument, NULL, 'f' },
		{ "timestamps", no_argument, NULL, 't' },
		{ "tail", required_argument, NULL, 'n' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct hypr_root root;
	struct hypr_err e = { 0 };
	struct hypr_ctr c;
	struct hypr_ctr_log l;
	int ch, follow = 0, ts = 0, stream, r, ok, bol[3] = { 1, 1, 1 };
	long tail = -1;
	int64_t ns;
	const char *data;
	size_t len;
	unsigned long long skip;

	optind = 1;
	while ((ch = getopt_long(argc, argv, "ftn:h", lo, NULL)) != -1) {
		switch (ch) {
		case 'f': follow = 1; break;
		case 't': ts = 1; break;
		case 'n':
			tail = ctr_tail(optarg, &ok);
			if (!ok)
				hypr_die(HYPR_EXIT_USAGE, "logs: --tail %s: a count or all", optarg);
			break;
		case 'h': printf("usage: hypr logs [-f] [-t] [-n N] CONTAINER\n"); exit(0);
		default: hypr_die(HYPR_EXIT_USAGE, "usage: hypr logs [-f] [-t] [-n N] CONTAINER");
		}
	}
	if (optind + 1 != argc)
		hypr_die(HYPR_EXIT_USAGE, "usage: hypr logs [-f] [-t] [-n N] CONTAINER");
	if (hypr_root_open(&root, NULL, &e) < 0 || hypr_ctr_find(&root, argv[optind], &c, &e) < 0)
		hypr_die_err(&e);
	skip = ctr_log_skip(&c, tail);
	hypr_ctr_log_open(&l, &c, &e);
	for (;;) {
		while ((r = hypr_ctr_log_next(&l, &stream, &ns, &data, &len, &e)) == 1) {
			ctr_skip_lines(&skip, &data, &len);
			if (len)
				print_record(stream, ns, data, len, ts, bol);
		}
		if (r < 0)
			hypr_die_err(&e);
		fflush(stdout);
		fflush(stderr);
		if (!follow)
			break;
		hypr_ctr_reload(&c, &e);
		if (!c.alive || access(c.dir, F_OK) < 0) {
			/* gone: what it wrote last, then done */
			while ((r = hypr_ctr_log_next(&l, &stream, &ns, &data, &len, &e)) == 1)
				print_record(stream, ns, data, len, ts, bol);
			break;
		}
		usleep(50000);
	}
	hypr_ctr_log_close(&l);
	hypr_ctr_free(&c);
	return hypr_close_stdout();
}
