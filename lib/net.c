/* net.c - limits of host-side downloads and the curl runs that keep them. */
#include "net.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "child.h"
#include "clock.h"
#include "fsutil.h"

int
hypr_env_uint(const char *name, uint64_t dflt, int size, int zero_ok,
    uint64_t *out, struct hypr_err *e)
{
	const char *s = getenv(name);
	unsigned long long v = 0;
	char *end;
	int bad;

	*out = dflt;
	if (s == NULL || *s == '\0')
		return 0;
	if (size) {
		uint64_t b;
		bad = hypr_size_parse(s, &b) < 0;
		v = bad ? 0 : b;
	} else {
		errno = 0;
		v = strtoull(s, &end, 10);
		bad = errno || end == s || *end || *s == '-';
	}
	if (bad || (v == 0 && !zero_ok))
		return hypr_err_set(e, HYPR_EXIT_USAGE, "%s='%s': expected %s", name, s,
		    size ? "a size in bytes (suffix K, M, G or T allowed)" :
		    zero_ok ? "a number" : "a positive number");
	*out = (uint64_t)v;
	return 0;
}

void
hypr_net_size_text(uint64_t n, char *buf, size_t len)
{
	static const char *const unit[] = { "KiB", "MiB", "GiB", "TiB" };
	int u = -1;

	while (n >= 1024 && n % 1024 == 0 && u < 3) {
		n /= 1024;
		u++;
	}
	if (u < 0)
		snprintf(buf, len, "%llu bytes", (unsigned long long)n);
	else
		snprintf(buf, len, "%llu %s", (unsigned long long)n, unit[u]);
}

int
hypr_net_init(struct hypr_net *n, struct hypr_err *e)
{
	uint64_t ct, sl, st, to, mr, rt;

	if (hypr_env_uint("HYPR_NET_CONNECT_TIMEOUT", 15, 0, 0, &ct, e) < 0 ||
	    hypr_env_uint("HYPR_NET_SPEED_LIMIT", 1024, 1, 0, &sl, e) < 0 ||
	    hypr_env_uint("HYPR_NET_SPEED_TIME", 20, 0, 0, &st, e) < 0 ||
	    hypr_env_uint("HYPR_NET_TIMEOUT", 60, 0, 0, &to, e) < 0 ||
	    hypr_env_uint("HYPR_NET_MIN_RATE", 64 << 10, 1, 0, &mr, e) < 0 ||
	    hypr_env_uint("HYPR_NET_RETRIES", 4, 0, 0, &rt, e) < 0)
		return -1;
	/* curl takes these as longs; a week is plenty for any of them */
	n->connect_timeout = ct > 604800 ? 604800 : (long)ct;
	n->speed_limit = sl > LONG_MAX / 2 ? LONG_MAX / 2 : (long)sl;
	n->speed_time = st > 604800 ? 604800 : (long)st;
	n->timeout = to > 604800 ? 604800 : (long)to;
	n->min_rate = mr;
	n->retries = rt > 100 ? 100 : (int)rt;
	return 0;
}

long
hypr_net_deadline(const struct hypr_net *n, uint64_t bytes)
{
	uint64_t s = bytes / n->min_rate + 1;

	if (s > (uint64_t)(LONG_MAX / 2) - (uint64_t)n->timeout)
		return LONG_MAX / 2;
	return n->timeout + (long)s;
}

void
hypr_net_curl_args(const struct hypr_net *n, long max_time, struct hypr_net_argv *buf,
    char **argv, int *argc)
{
	snprintf(buf->v[0], sizeof(buf->v[0]), "%ld", n->connect_timeout);
	snprintf(buf->v[1], sizeof(buf->v[1]), "%ld", n->speed_limit);
	snprintf(buf->v[2], sizeof(buf->v[2]), "%ld", n->speed_time);
	snprintf(buf->v[3], sizeof(buf->v[3]), "%ld", max_time);
	argv[(*argc)++] = "--connect-timeout";
	argv[(*argc)++] = buf->v[0];
	argv[(*argc)++] = "--speed-limit";
	argv[(*argc)++] = buf->v[1];
	argv[(*argc)++] = "--speed-time";
	argv[(*argc)++] = buf->v[2];
	argv[(*argc)++] = "--max-time";
	argv[(*argc)++] = buf->v[3];
}

const char *
hypr_net_curl_error(int code)
{
	switch (code) {
	case 5: case 6: return "could not resolve host";
	case 7: return "connection refused";
	case 18: return "transfer closed early (truncated response)";
	case 28: return "timed out";
	case 35: return "TLS handshake failed";
	case 47: return "too many redirects";
	case 52: return "empty reply from server";
	case 55: return "failed sending data";
	case 56: return "connection reset while receiving data";
	case 58: return "client certificate rejected";
	case 60: return "server certificate not trusted (add its CA under certs.d)";
	case 92: return "HTTP/2 stream error";
	default: return "transfer failed";
	}
}

void
hypr_net_timeout_text(const struct hypr_net *n, long max_time, double elapsed,
    int answered, char *buf, size_t len)
{
	/* curl says only "timed out" (exit 28); when is the tell. The speed
	 * check runs once connected (also while waiting for an answer), so it
	 * cannot fire before speed_time; the connect timeout fires at once. */
	double ct = (double)n->connect_timeout, st = (double)n->speed_time;

	if (elapsed + 0.5 >= (double)max_time)
		snprintf(buf, len, "timed out: not done within %ld s (HYPR_NET_TIMEOUT "
		    "+ size / HYPR_NET_MIN_RATE)", max_time);
	else if (!answered && (elapsed < st - 0.3 ||
	    (ct > st && elapsed > ct - 0.5 && elapsed < ct + 0.5)))
		snprintf(buf, len, "timed out connecting (%ld s, HYPR_NET_CONNECT_TIMEOUT)",
		    n->connect_timeout);
	else if (!answered)
		snprintf(buf, len, "timed out: no answer in %ld s (HYPR_NET_SPEED_TIME)",
		    n->speed_time);
	else
		snprintf(buf, len, "timed out: stalled below %ld bytes/s for %ld s "
		    "(HYPR_NET_SPEED_LIMIT, HYPR_NET_SPEED_TIME)", n->speed_limit,
		    n->speed_time);
}

/* ---- ADD <url> ---- */

struct dl {
	pid_t pid;
	int fd;			/* curl's stdout: headers, then the body */
	int status;
	int64_t length;		/* Content-Length or -1 */
	int64_t range_start;	/* Content-Range start or -1 */
	int64_t mtime;		/* Last-Modified or -1 */
	char pending[65536];	/* body bytes read along with the headers */
	size_t npending;
};

int
hypr_net_put_quoted(FILE *f, const char *key, const char *v)
{
	fprintf(f, "%s = \"", key);
	for (const char *p = v; *p; p++) {
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			return -1;
		if (*p == '"' || *p == '\\')
			fputc('\\', f);
		fputc(*p, f);
	}
	fputs("\"\n", f);
	return 0;
}

static int
reap(struct dl *d, int kill_it)
{
	int st;

	if (d->fd >= 0)
		close(d->fd);
	d->fd = -1;
	if (d->pid <= 0)
		return -1;
	if (kill_it)
		kill(d->pid, SIGTERM);
	while (waitpid(d->pid, &st, 0) < 0)
		if (errno != EINTR) {
			d->pid = 0;
			return -1;
		}
	d->pid = 0;
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* Read with a deadline: >0 bytes, 0 EOF, -1 error, -2 deadline passed. */
static ssize_t
read_until(int fd, void *buf, size_t n, double deadline)
{
	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		double left = deadline - hypr_now();
		ssize_t r;

		if (left <= 0)
			return -2;
		if (poll(&p, 1, left > 1.0 ? 1000 : (int)(left * 1000) + 1) < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (!(p.revents & (POLLIN | POLLHUP | POLLERR)))
			continue;
		r = read(fd, buf, n);
		if (r < 0 && errno == EINTR)
			continue;
		return r;
	}
}

static int64_t
http_date(const char *v)
{
	struct tm tm = { 0 };
	const char *p = strptime(v, "%a, %d %b %Y %H:%M:%S", &tm);

	return p ? (int64_t)timegm(&tm) : -1;
}

/* Parse the header blocks (one per response; the last is the final one)
 * off d->fd; body bytes read past them go to d->pending. Returns 0 (status
 * 0: no complete response), -1 on the deadline. */
static int
read_headers(struct dl *d, double deadline)
{
	char buf[65536] = "";
	size_t n = 0;
	int more = 0;	/* a proxy's CONNECT answer or a followed redirect */

	for (;;) {
		char *eol;
		ssize_t r;

		while ((eol = memchr(buf, '\n', n)) != NULL) {
			size_t k = (size_t)(eol - buf) + 1;
			char *line = buf;

			line[k - 1] = '\0';
			if (k >= 2 && line[k - 2] == '\r')
				line[k - 2] = '\0';
			if (!strncmp(line, "HTTP/", 5)) {
				const char *sp = strchr(line, ' ');

				d->status = sp ? atoi(sp + 1) : 0;
				d->length = d->range_start = d->mtime = -1;
				more = strcasestr(line, "connection established") != NULL;
			} else if (line[0] == '\0') {
				if (!more && d->status / 100 != 1) {
					memmove(buf, buf + k, n - k);
					n -= k;
					memcpy(d->pending, buf, n);
					d->npending = n;
					return 0;
				}
				more = 0;
			} else if (!strncasecmp(line, "content-length:", 15)) {
				d->length = strtoll(line + 15, NULL, 10);
				if (d->length < 0)
					d->length = -1;
			} else if (!strncasecmp(line, "content-range:", 14)) {
				const char *b = strcasestr(line, "bytes");

				if (b)
					d->range_start = strtoll(b + 5, NULL, 10);
			} else if (!strncasecmp(line, "last-modified:", 14)) {
				d->mtime = http_date(line + 14 + strspn(line + 14, " \t"));
			} else if (!strncasecmp(line, "location:", 9) && d->status / 100 == 3) {
				more = 1;	/* curl follows it: another block comes */
			}
			memmove(buf, buf + k, n - k);
			n -= k;
		}
		if (n == sizeof(buf)) {
			d->status = 0;	/* a header line of 64 KiB */
			return 0;
		}
		r = read_until(d->fd, buf + n, sizeof(buf) - n, deadline);
		if (r == -2)
			return -1;
		if (r <= 0) {
			d->status = 0;
			return 0;
		}
		n += (size_t)r;
	}
}

static int
spawn(const struct hypr_net *n, const char *url, uint64_t from, long max_time,
    struct dl *d, struct hypr_err *e)
{
	struct hypr_net_argv nb = { 0 };
	char *argv[32], range[48];
	int argc = 0, to, st;
	FILE *cf;

	memset(d, 0, sizeof(*d));
	d->fd = -1;
	argv[argc++] = "curl";
	argv[argc++] = "-K";
	argv[argc++] = "-";
	argv[argc++] = "-s";
	argv[argc++] = "-L";
	argv[argc++] = "--max-redirs";
	argv[argc++] = "10";
	argv[argc++] = "--proto";
	argv[argc++] = "=http,https";
	argv[argc++] = "--proto-redir";
	argv[argc++] = "=http,https";
	argv[argc++] = "-D";
	argv[argc++] = "-";
	hypr_net_curl_args(n, max_time, &nb, argv, &argc);
	if (from > 0) {
		snprintf(range, sizeof(range), "%llu-", (unsigned long long)from);
		argv[argc++] = "-r";
		argv[argc++] = range;
	}
	argv[argc] = NULL;
	if (hypr_child_spawn("curl", argv, &d->pid, &to, &d->fd, e) < 0)
		return -1;
	/* the URL goes on curl's stdin: it may hold user:password */
	if ((cf = fdopen(to, "w")) == NULL) {
		close(to);
		reap(d, 1);
		return hypr_err_errno(e, HYPR_EXIT_SYSTEM, "fdopen");
	}
	st = hypr_net_put_quoted(cf, "url", url);
	if (fclose(cf) != 0 || st != 0) {
		reap(d, 1);
		return hypr_err_set(e, st ? HYPR_EXIT_INPUT : HYPR_EXIT_SYSTEM,
		    st ? "the URL holds a control character" : "writing to curl");
	}
	return 0;
}

static void
backoff(int attempt)
{
	struct timespec ts;
	long ms = 200L << (attempt > 6 ? 6 : attempt);

	ts.tv_sec = ms / 1000;
	ts.tv_nsec = (ms % 1000) * 1000000L;
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

int
hypr_net_download(const struct hypr_net *n, const char *url, int fd, uint64_t max,
    const char *max_name, int64_t *mtime, uint64_t *size, struct hypr_err *e)
{
	char buf[65536], lim[64], why[256];
	struct stat sb;
	struct dl d;

	if (mtime)
		*mtime = -1;
	if (max)
		hypr_net_size_text(max, lim, sizeof(lim));
	for (int attempt = 0; attempt < n->retries; attempt++) {
		uint64_t have, got;
		double t0 = hypr_now(), deadline;
		long cap = hypr_net_deadline(n, max ? max : (uint64_t)1 << 40);
		int rc, status;
		ssize_t r;

		if (attempt > 0)
			backoff(attempt - 1);
		if (fstat(fd, &sb) < 0)
			return hypr_err_errno(e, HYPR_EXIT_SYSTEM, "stat");
		have = (uint64_t)sb.st_size;
		/* curl's --max-time is a backstop; the real deadline follows the
		 * size once it is known (below) */
		if (spawn(n, url, have, cap, &d, e) < 0)
			return -1;
		deadline = t0 + (double)hypr_net_deadline(n, 0);
		if (read_headers(&d, deadline) < 0) {
			reap(&d, 1);
			hypr_net_timeout_text(n, hypr_net_deadline(n, 0),
			    hypr_now() - t0, 0, why, sizeof(why));
			hypr_err_set(e, HYPR_EXIT_SYSTEM, "download failed: %s", why);
			continue;
		}
		status = d.status;
		if (status == 0) {
			rc = reap(&d, 0);
			if (rc == 28)
				hypr_net_timeout_text(n, cap, hypr_now() - t0, 0, why,
				    sizeof(why));
			else
				snprintf(why, sizeof(why), "%s (curl exit %d)",
				    hypr_net_curl_error(rc), rc);
			hypr_err_set(e, HYPR_EXIT_SYSTEM, "download failed: %s", why);
			if (rc == 6 || rc == 60 || rc == 35 || rc == 58 || rc == 1 || rc == 3)
				return -1;	/* retrying cannot help */
			continue;
		}
		if (have > 0 && status == 416) {
			/* what we hold is no prefix of it: start over */
			reap(&d, 1);
			if (ftruncate(fd, 0) < 0 || lseek(fd, 0, SEEK_SET) < 0)
				return hypr_err_errno(e, HYPR_EXIT_SYSTEM, "truncate");
			hypr_err_set(e, HYPR_EXIT_SYSTEM, "download failed: HTTP 416");
			continue;
		}
		if (status >= 400 || status / 100 != 2) {
			reap(&d, 1);
			hypr_err_set(e, HYPR_EXIT_SYSTEM, "download failed: HTTP %d", status);
			if (status >= 500 || status == 408 || status == 429)
				continue;
			return -1;
		}
		if (have > 0 && (status != 206 || d.range_start != (int64_t)have)) {
			/* no resume: the body is the whole file */
			if (ftruncate(fd, 0) < 0 || lseek(fd, 0, SEEK_SET) < 0) {
				reap(&d, 1);
				return hypr_err_errno(e, HYPR_EXIT_SYSTEM, "truncate");
			}
			have = 0;
			if (status == 206) {
				reap(&d, 1);
				hypr_err_set(e, HYPR_EXIT_SYSTEM,
				    "download failed: a wrong Content-Range");
				continue;
			}
		}
		if (max && d.length >= 0 && have + (uint64_t)d.length > max) {
			reap(&d, 1);
			return hypr_err_set(e, HYPR_EXIT_INPUT, "larger than %s (%s): the "
			    "server gives %llu bytes", lim, max_name,
			    (unsigned long long)(have + (uint64_t)d.length));
		}
		if (mtime && d.mtime >= 0)
			*mtime = d.mtime;
		if (lseek(fd, (off_t)have, SEEK_SET) < 0) {
			reap(&d, 1);
			return hypr_err_errno(e, HYPR_EXIT_SYSTEM, "seek");
		}
		got = 0;
		r = (ssize_t)d.npending;
		memcpy(buf, d.pending, d.npending);
		for (int first = 1;; first = 0) {
			uint64_t expect = d.length >= 0 && (uint64_t)d.length > got ?
			    (uint64_t)d.length : got;

			if (r > 0) {
				if (max && have + got + (uint64_t)r > max) {
					reap(&d, 1);
					return hypr_err_set(e, HYPR_EXIT_INPUT,
					    "larger than %s (%s)", lim, max_name);
				}
				if (hypr_write_all(fd, buf, (size_t)r) < 0) {
					reap(&d, 1);
					return hypr_err_errno(e, HYPR_EXIT_SYSTEM, "writing");
				}
				got += (uint64_t)r;
			} else if (r == 0 && !first) {
				break;	/* EOF */
			}
			/* a slow start is forgiven until the size's deadline; an
			 * unknown size earns time as it arrives */
			deadline = t0 + (double)hypr_net_deadline(n, expect);
			r = read_until(d.fd, buf, sizeof(buf), deadline);
			if (r == -2 || r == -1)
				break;
		}
		if (r == -2) {
			reap(&d, 1);
			hypr_net_timeout_text(n, (long)(deadline - t0), hypr_now() - t0, 1,
			    why, sizeof(why));
			hypr_err_set(e, HYPR_EXIT_SYSTEM, "download failed: %s", why);
			continue;
		}
		rc = reap(&d, r < 0);
		if (rc == 0 && (d.length < 0 || got == (uint64_t)d.length)) {
			if (size)
				*size = have + got;
			return 0;
		}
		if (rc == 28)
			hypr_net_timeout_text(n, cap, hypr_now() - t0, 1, why, sizeof(why));
		else
			snprintf(why, sizeof(why), "%s (curl exit %d)",
			    hypr_net_curl_error(rc ? rc : 18), rc ? rc : 18);
		hypr_err_set(e, HYPR_EXIT_SYSTEM, "download failed: %s", why);
	}
	if (n->retries > 1 && strlen(e->msg) + 20 < sizeof(e->msg))
		snprintf(e->msg + strlen(e->msg), sizeof(e->msg) - strlen(e->msg),
		    " (%d attempts)", n->retries);
	return -1;
}
