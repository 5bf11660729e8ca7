/* net.h - limits of host-side downloads (registry pulls, ADD <url>) and the
 * curl runs that enforce them.
 *
 * Every transfer is bounded three ways, all set by environment variables so
 * a slow network can raise them and tests can lower them:
 *   HYPR_NET_CONNECT_TIMEOUT  seconds to connect (TCP and TLS), default 15
 *   HYPR_NET_SPEED_LIMIT, HYPR_NET_SPEED_TIME  a transfer slower than LIMIT
 *       bytes/s for TIME seconds is cut (curl --speed-limit/--speed-time),
 *       default 1024 bytes/s for 20 s: a stalled or trickling server
 *   HYPR_NET_TIMEOUT, HYPR_NET_MIN_RATE  a transfer of N bytes must end
 *       within TIMEOUT + N / MIN_RATE seconds, default 60 s + 1 s per 64 KiB
 *       (N: the size a manifest gives, else the bytes announced or arrived)
 * and is tried HYPR_NET_RETRIES times (default 4), resuming with a Range
 * request where the server allows it. */
#ifndef HYPR_NET_H
#define HYPR_NET_H

#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>
#include "err.h"

struct hypr_net {
	long connect_timeout;	/* s */
	long speed_limit;	/* bytes/s */
	long speed_time;	/* s */
	long timeout;		/* s: the deadline of a transfer of 0 bytes */
	uint64_t min_rate;	/* bytes/s: what the deadline grows by */
	int retries;		/* attempts per request, >= 1 */
};

/* An environment variable as a number: dflt when unset or empty; with
 * size set, a K, M, G or T suffix multiplies by 1024^n. A malformed or zero
 * value (unless zero_ok) is a usage error naming the variable. */
int hypr_env_uint(const char *name, uint64_t dflt, int size, int zero_ok,
    uint64_t *out, struct hypr_err *e);
/* "64 KiB", "8 GiB", "1000 bytes": a size for messages. */
void hypr_net_size_text(uint64_t n, char *buf, size_t len);

/* The limits from the environment (defaults above). */
int hypr_net_init(struct hypr_net *n, struct hypr_err *e);
/* The deadline in seconds of a transfer of bytes (saturating). */
long hypr_net_deadline(const struct hypr_net *n, uint64_t bytes);

/* Room for the option values hypr_net_curl_args puts on a command line. */
struct hypr_net_argv {
	char v[4][24];
};
/* Append curl's --connect-timeout, --speed-limit, --speed-time and
 * --max-time (max_time seconds) to argv at *argc (8 slots). */
void hypr_net_curl_args(const struct hypr_net *n, long max_time,
    struct hypr_net_argv *buf, char **argv, int *argc);
/* What a curl exit code means, in a few words. */
const char *hypr_net_curl_error(int code);
/* Why a transfer timed out (curl exit 28, or our own deadline), judged by
 * how long it ran: connecting, stalled (the speed limit) or the deadline. */
void hypr_net_timeout_text(const struct hypr_net *n, long max_time, double elapsed,
    int answered, char *buf, size_t len);
/* A curl config line `key = "v"` (quoted) on f; -1 if v holds a control
 * character (nothing a URL, header or credential may hold). */
int hypr_net_put_quoted(FILE *f, const char *key, const char *v);

/* GET url (http or https, redirects followed) with curl into fd, appending
 * from fd's current size: a retry resumes with a Range request, or starts
 * over when the server ignores it. At most max bytes (0: no limit):
 * a larger Content-Length is refused before anything is read, a longer
 * body as soon as it passes max (HYPR_EXIT_INPUT, message "larger than
 * ..."). *mtime (may be NULL) gets Last-Modified or -1, *size the length.
 * Network failures and 5xx answers are retried; HTTP errors and failures
 * are HYPR_EXIT_SYSTEM. Messages do not repeat the URL. */
int hypr_net_download(const struct hypr_net *n, const char *url, int fd,
    uint64_t max, const char *max_name, int64_t *mtime, uint64_t *size,
    struct hypr_err *e);

#endif
