/* logscmd.c - hypr logs: what a container's process wrote (its log file,
 * container.h), whole, its last lines (--tail), a time window (--since,
 * --until), with times (-t), following it (-f); the helpers compose logs
 * uses too (ctr.h). */
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

int64_t
ctr_log_when(const char *arg)
{
	struct timespec now;
	struct tm tm = { 0 };
	const char *p;
	char *end;
	int64_t ns, d;
	size_t nd;

	if (!*arg)
		return -1;
	/* Unix seconds, with a fraction or not (docker's 1714564800.5) */
	nd = strspn(arg, "0123456789");
	if (nd && (!arg[nd] || (arg[nd] == '.' && !arg[nd + 1 + strspn(arg + nd + 1, "0123456789")]))) {
		double v = strtod(arg, &end);

		return *end || v > 9e9 ? -1 : (int64_t)(v * 1e9 + 0.5);
	}
	if ((p = strptime(arg, "%Y-%m-%d", &tm)) != NULL) {
		int64_t frac = 0, off = 0;

		if (*p == 'T' && !(p = strptime(p + 1, "%H:%M:%S", &tm)))
			return -1;
		if (*p == '.') {
			int digits = 0;

			for (p++; *p >= '0' && *p <= '9'; p++, digits++)
				if (digits < 9)
					frac = frac * 10 + (*p - '0');
			if (!digits)
				return -1;
			for (; digits < 9; digits++)
				frac *= 10;
		}
		if (*p == 'Z' || *p == 'z') {
			p++;
		} else if ((*p == '+' || *p == '-') && p[1] >= '0' && p[1] <= '9' &&
		    p[2] >= '0' && p[2] <= '9' && p[3] == ':' && p[4] >= '0' && p[4] <= '9' &&
		    p[5] >= '0' && p[5] <= '9') {
			off = ((p[1] - '0') * 10 + (p[2] - '0')) * 3600 +
			    ((p[4] - '0') * 10 + (p[5] - '0')) * 60;
			if (*p == '-')
				off = -off;
			p += 6;
		}
		if (*p)
			return -1;
		return ((int64_t)timegm(&tm) - off) * 1000000000 + frac;
	}
	if ((d = ctr_duration(arg)) < 0)
		return -1;
	clock_gettime(CLOCK_REALTIME, &now);
	ns = (int64_t)now.tv_sec * 1000000000 + now.tv_nsec;
	return d > ns ? 0 : ns - d;
}

unsigned long long
ctr_log_skip(const struct hypr_ctr *c, long tail, struct ctr_window w)
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
		for (size_t i = 0; ns >= w.since && ns <= w.until && i < len; i++)
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

#define LOGS_USAGE "hypr logs [-f] [-t] [-n N] [--since T] [--until T] CONTAINER"

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

void
ctr_logs_parse(int argc, char **argv, const char *cmd, struct ctr_logs_opts *o,
    void (*usage)(FILE *f, int code))
{
	static const struct option lo[] = {
		{ "follow", no_argument, NULL, 'f' },
		{ "timestamps", no_argument, NULL, 't' },
		{ "tail", required_argument, NULL, 'n' },
		{ "since", required_argument, NULL, 'S' },
		{ "until", required_argument, NULL, 'U' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int ch, ok;

	while ((ch = getopt_long(argc, argv, "ftn:h", lo, NULL)) != -1) {
		switch (ch) {
		case 'f': o->follow = 1; break;
		case 't': o->ts = 1; break;
		case 'n':
			o->tail = ctr_tail(optarg, &ok);
			if (!ok)
				hypr_die(HYPR_EXIT_USAGE, "%s: --tail %s: a count or all", cmd, optarg);
			break;
		case 'S':
		case 'U':
			if ((*(ch == 'S' ? &o->w.since : &o->w.until) = ctr_log_when(optarg)) < 0)
				hypr_die(HYPR_EXIT_USAGE, "%s: --%s %s: a time (RFC 3339, a date, "
				    "Unix seconds) or a duration (42m)", cmd,
				    ch == 'S' ? "since" : "until", optarg);
			break;
		case 'h': usage(stdout, 0); break;
		default: usage(stderr, HYPR_EXIT_USAGE);
		}
	}
}

static void
logs_usage(FILE *f, int code)
{
	if (code)
		hypr_die(code, "usage: %s", LOGS_USAGE);
	fprintf(f, "usage: %s\n\n"
	    "What the container's process wrote.\n"
	    "  -f, --follow        until it stops\n"
	    "  -t, --timestamps    each line after its time (RFC 3339)\n"
	    "  -n, --tail N        the last N lines (or all)\n"
	    "  --since T, --until T  what was written in that window: an RFC 3339 time,\n"
	    "                      a date, Unix seconds, or a duration before now (42m)\n"
	    "See hypr-container(1).\n", LOGS_USAGE);
	exit(0);
}

int
cmd_logs(int argc, char **argv)
{
	struct hypr_root root;
	struct hypr_err e = { 0 };
	struct hypr_ctr c;
	struct hypr_ctr_log l;
	struct ctr_logs_opts o = CTR_LOGS_OPTS_INIT;
	int stream, r, last = 0, bol[3] = { 1, 1, 1 };
	int64_t ns;
	const char *data;
	size_t len;
	unsigned long long skip;

	optind = 1;
	ctr_logs_parse(argc, argv, "logs", &o, logs_usage);
	if (optind + 1 != argc)
		hypr_die(HYPR_EXIT_USAGE, "usage: %s", LOGS_USAGE);
	if (hypr_root_open(&root, NULL, &e) < 0 || hypr_ctr_find(&root, argv[optind], &c, &e) < 0)
		hypr_die_err(&e);
	skip = ctr_log_skip(&c, o.tail, o.w);
	hypr_ctr_log_open(&l, &c, &e);
	for (;;) {
		while ((r = hypr_ctr_log_next(&l, &stream, &ns, &data, &len, &e)) == 1) {
			if (ns < o.w.since || ns > o.w.until)
				continue;
			ctr_skip_lines(&skip, &data, &len);
			if (len)
				print_record(stream, ns, data, len, o.ts, bol);
		}
		if (r < 0)
			hypr_die_err(&e);
		fflush(stdout);
		fflush(stderr);
		if (!o.follow || last)
			break;
		/* gone: what it wrote last, then done */
		hypr_ctr_reload(&c, &e);
		if (!(last = !c.alive || access(c.dir, F_OK) < 0))
			usleep(50000);
	}
	hypr_ctr_log_close(&l);
	hypr_ctr_free(&c);
	return hypr_close_stdout();
}
