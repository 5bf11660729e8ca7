#include "cas.h"
#include "clock.h"
#include "registry.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <jansson.h>

#include "auth.h"
#include "child.h"
#include "digest.h"
#include "fsutil.h"
#include "oci.h"
#include "stream.h"
#include "strbuf.h"

#define MANIFEST_MAX (4u << 20)
#define BUF_SIZE (1u << 20)

static const char accept_manifests[] =
    "Accept: application/vnd.oci.image.index.v1+json, "
    "application/vnd.oci.image.manifest.v1+json, "
    "application/vnd.docker.distribution.manifest.list.v2+json, "
    "application/vnd.docker.distribution.manifest.v2+json";

/* One curl run: headers parsed, body readable from f. */
struct resp {
	pid_t pid;
	FILE *f;
	int status;
	char content_type[256];
	char www_auth[2048];
	char docker_digest[HYPR_DIGEST_LEN + 1];
	char retry_after[32];
	char location[2048];
	char range[64];
	char oci_subject[HYPR_DIGEST_LEN + 1];
	int64_t content_length;	/* -1 when absent */
	int64_t range_start;	/* from Content-Range, -1 when absent */
	int answered;		/* a final response's headers arrived */
	double t0;		/* when curl started */
	long max_time;		/* its --max-time */
};

static int
in_list(const char *list, const char *domain)
{
	size_t n = strlen(domain);
	const char *p = list;

	while (p && *p) {
		p += strspn(p, ", \t");
		size_t k = strcspn(p, ", \t");

		if (k == n && strncmp(p, domain, n) == 0)
			return 1;
		p += k;
	}
	return 0;
}

static void
find_certs(struct hypr_registry *g, const char *domain)
{
	const char *dirs[] = { NULL, "/etc/hypr/certs.d", "/etc/docker/certs.d",
	    "/etc/containers/certs.d" };
	char rootcerts[HYPR_PATH_BUF], p[HYPR_PATH_BUF + 128];

	snprintf(rootcerts, sizeof(rootcerts), "%s/certs.d", g->root->path);
	dirs[0] = rootcerts;
	for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
		snprintf(p, sizeof(p), "%s/%s/ca.crt", dirs[i], domain);
		if (!g->cacert[0] && access(p, R_OK) == 0)
			snprintf(g->cacert, sizeof(g->cacert), "%s", p);
		snprintf(p, sizeof(p), "%s/%s/client.cert", dirs[i], domain);
		if (!g->cert[0] && access(p, R_OK) == 0) {
			snprintf(g->cert, sizeof(g->cert), "%s", p);
			snprintf(p, sizeof(p), "%s/%s/client.key", dirs[i], domain);
			snprintf(g->key, sizeof(g->key), "%s", p);
		}
	}
}

int
hypr_registry_open(struct hypr_registry *g, const struct hypr_root *root,
    const struct hypr_ref *ref, const char *insecure, struct hypr_err *e)
{
	char *user = NULL, *secret = NULL;
	int plain, r;

	memset(g, 0, sizeof(*g));
	g->root = root;
	if (hypr_net_init(&g->net, e) < 0)
		return -1;
	g->retries = g->net.retries;
	pthread_mutex_init(&g->lock, NULL);
	snprintf(g->domain, sizeof(g->domain), "%s", ref->domain);
	snprintf(g->repo, sizeof(g->repo), "%s", ref->path);
	plain = hypr_host_is_loopback(ref->domain) || in_list(insecure, ref->domain) ||
	    in_list(getenv("HYPR_INSECURE_REGISTRIES"), ref->domain);
	snprintf(g->base, sizeof(g->base), "https://%s", hypr_ref_api_host(ref));
	g->probe = plain;
	find_certs(g, ref->domain);
	if ((r = hypr_auth_lookup(ref->domain, ref->path, &user, &secret, e)) < 0)
		return hypr_err_prefix(e, "credentials for %s", ref->domain);
	if (r == 1 && strcmp(user, "<token>") == 0) {
		/* Docker's convention for an identity token */
		g->refresh = secret;
		secret = NULL;
	} else if (r == 1) {
		size_t n = strlen(user) + strlen(secret) + 2;

		if ((g->basic = malloc(n)) == NULL) {
			hypr_secret_free(user);
			hypr_secret_free(secret);
			return hypr_err_set(e, HYPR_EXIT_SYSTEM, "out of memory");
		}
		snprintf(g->basic, n, "%s:%s", user, secret);
	}
	hypr_secret_free(user);
	hypr_secret_free(secret);
	return 0;
}

void
hypr_registry_close(struct hypr_registry *g)
{
	hypr_secret_free(g->basic);
	hypr_secret_free(g->token);
	hypr_secret_free(g->refresh);
	g->basic = g->token = g->refresh = NULL;
	pthread_mutex_destroy(&g->lock);
}

static void
header_value(const char *line, const char *name, char *out, size_t n)
{
	size_t k = strlen(name);
	const char *v;
	size_t len;

	if (strncasecmp(line, name, k) != 0 || line[k] != ':')
		return;
	v = line + k + 1;
	v += strspn(v, " \t");
	len = strcspn(v, "\r\n");
	if (len >= n)
		len = n - 1;
	memcpy(out, v, len);
	out[len] = '\0';
}

/* Finish a run: drain the body, reap curl, return its exit code (or -1). */
static int
resp_close(struct resp *rs)
{
	char buf[8192];
	int st;

	if (rs->f) {
		while (fread(buf, 1, sizeof(buf), rs->f) > 0)
			;
		fclose(rs->f);
		rs->f = NULL;
	}
	if (rs->pid <= 0)
		return -1;
	while (waitpid(rs->pid, &st, 0) < 0) {
		if (errno != EINTR)
			return -1;
	}
	rs->pid = 0;
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* Kill and reap curl without draining (an abandoned body). */
static void
resp_abort(struct resp *rs)
{
	if (rs->pid > 0)
		kill(rs->pid, SIGTERM);
	if (rs->f) {
		fclose(rs->f);
		rs->f = NULL;
	}
	if (rs->pid > 0)
		while (waitpid(rs->pid, NULL, 0) < 0 && errno == EINTR)
			;
	rs->pid = 0;
}

/* Start curl for url and parse the final response's headers. auth: 1 to
 * send the registry's credentials (bearer token or basic). extra: one more
 * header or NULL. max_time: curl's --max-time (see net.h). Returns 0 with
 * rs->status set (0 if curl failed before any response: then *curl_rc holds
 * its exit code). */
/* What an upload adds to a request: a method, a body from a file, more
 * headers. NULL everywhere: a GET. */
struct send_opt {
	const char *method;	/* "HEAD", "GET", "POST", "PUT", "PATCH" */
	const char *upload;	/* the body's file, or NULL */
	const char *const *headers;	/* NULL-terminated, or NULL */
	const struct hypr_registry_body *body;	/* or a body fed through a pipe */
};

/* Feed body into the pipe fd (curl reads it as /dev/fd/3), then close it.
 * A curl that is gone raises SIGPIPE: blocked in this thread meanwhile
 * (the write fails with EPIPE) and a pending one taken away. 0; 1 when
 * curl went before the body was all there (its answer says why); -1 with
 * e when feeding failed. */
static int
feed_body(const struct hypr_registry_body *body, int fd, struct hypr_err *e)
{
	sigset_t pipe_set, old;
	struct timespec zero = { 0, 0 };
	int r, err;

	sigemptyset(&pipe_set);
	sigaddset(&pipe_set, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
	r = body->feed(body->arg, fd, e);
	err = errno;
	close(fd);
	while (sigtimedwait(&pipe_set, NULL, &zero) == SIGPIPE)
		;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (r < 0 && err == EPIPE) {
		memset(e, 0, sizeof(*e));
		return 1;
	}
	return r < 0 ? -1 : 0;
}

static int
run_curl_data(struct hypr_registry *g, const char *url, int auth, const char *basic,
    const char *accept, const char *extra, const char *data, long max_time,
    const struct send_opt *so, struct resp *rs, int *curl_rc, struct hypr_err *e);

static int
run_curl(struct hypr_registry *g, const char *url, int auth, const char *basic,
    const char *accept, const char *extra, long max_time, struct resp *rs,
    int *curl_rc, struct hypr_err *e)
{
	return run_curl_data(g, url, auth, basic, accept, extra, NULL, max_time, NULL,
	    rs, curl_rc, e);
}

/* As run_curl; data (may be NULL) is POSTed as a form; so (may be NULL)
 * sets the method, a body file and headers. */
static int
run_curl_data(struct hypr_registry *g, const char *url, int auth, const char *basic,
    const char *accept, const char *extra, const char *data, long max_time,
    const struct send_opt *so, struct resp *rs, int *curl_rc, struct hypr_err *e)
{
	char *argv[32];
	struct hypr_net_argv nb = { 0 };
	int argc = 0, to, from, st, location = 0, bp[2] = { -1, -1 }, cut = 0;
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	FILE *cf;

	memset(rs, 0, sizeof(*rs));
	rs->content_length = rs->range_start = -1;
	rs->t0 = hypr_now();
	rs->max_time = max_time;
	*curl_rc = 0;
	argv[argc++] = "curl";
	argv[argc++] = "-K";
	argv[argc++] = "-";
	argv[argc++] = "-s";
	argv[argc++] = "-L";
	argv[argc++] = "--max-redirs";
	argv[argc++] = "5";
	argv[argc++] = "--proto";
	argv[argc++] = "=http,https";
	argv[argc++] = "-D";
	argv[argc++] = "-";
	hypr_net_curl_args(&g->net, max_time, &nb, argv, &argc);
	argv[argc] = NULL;
	if (so && so->body && pipe2(bp, O_CLOEXEC) < 0)
		return hypr_err_errno(e, HYPR_EXIT_SYSTEM, "pipe");
	if (hypr_child_spawn3("curl", argv, &rs->pid, &to, &from, bp[0], e) < 0) {
		if (bp[0] >= 0) {
			close(bp[0]);
			close(bp[1]);
		}
		return -1;
	}
	if (bp[0] >= 0)
		close(bp[0]);
	/* The configuration carries the secrets; the pipe is private. */
	if ((cf = fdopen(to, "w")) == NULL) {
		close(to);
		close(from);
		if (bp[1] >= 0)
			close(bp[1]);
		resp_abort(rs);
		return hypr_err_errno(e, HYPR_EXIT_SYSTEM, "fdopen");
	}
	st = hypr_net_put_quoted(cf, "url", url);
	if (data)
		st |= hypr_net_put_quoted(cf, "data", data);
	if (accept)
		st |= hypr_net_put_quoted(cf, "header", accept);
	if (extra)
		st |= hypr_net_put_quoted(cf, "header", extra);
	if (so && so->method && !strcmp(so->method, "HEAD"))
		fputs("head\n", cf);
	else if (so && so->method)
		st |= hypr_net_put_quoted(cf, "request", so->method);
	if (so && (so->upload || so->body)) {
		st |= hypr_net_put_quoted(cf, "upload-file", so->body ? "/dev/fd/3" : so->upload);
		/* no 100-continue round trip; the registry reads the body */
		st |= hypr_net_put_quoted(cf, "header", "Expect:");
		if (so->body && so->body->len >= 0) {
			char cl[48];

			/* a pipe's size is unknown to curl: ours, not chunked */
			snprintf(cl, sizeof(cl), "Content-Length: %lld", (long long)so->body->len);
			st |= hypr_net_put_quoted(cf, "header", "Transfer-Encoding:");
			st |= hypr_net_put_quoted(cf, "header", cl);
		}
	} else if (so && so->method && strcmp(so->method, "HEAD") != 0) {
		st |= hypr_net_put_quoted(cf, "header", "Content-Length: 0");
	}
	for (size_t i = 0; so && so->headers && so->headers[i]; i++)
		st |= hypr_net_put_quoted(cf, "header", so->headers[i]);
	if (g->cacert[0]) {
		st |= hypr_net_put_quoted(cf, "capath", "/etc/ssl/certs");
		st |= hypr_net_put_quoted(cf, "cacert", g->cacert);
	}
	if (g->cert[0]) {
		st |= hypr_net_put_quoted(cf, "cert", g->cert);
		st |= hypr_net_put_quoted(cf, "key", g->key);
	}
	if (basic) {
		st |= hypr_net_put_quoted(cf, "user", basic);
	} else if (auth) {
		pthread_mutex_lock(&g->lock);
		if (g->token) {
			char *h = NULL;

			if (asprintf(&h, "Authorization: Bearer %s", g->token) > 0) {
				st |= hypr_net_put_quoted(cf, "header", h);
				hypr_secret_free(h);
			}
		} else if (g->use_basic && g->basic) {
			st |= hypr_net_put_quoted(cf, "user", g->basic);
		}
		pthread_mutex_unlock(&g->lock);
	}
	if (fclose(cf) != 0 || st != 0) {
		close(from);
		if (bp[1] >= 0)
			close(bp[1]);
		resp_abort(rs);
		return hypr_err_set(e, HYPR_EXIT_INPUT,
		    "%s: a URL, header or credential holds a control character", g->domain);
	}
	if (bp[1] >= 0 && (cut = feed_body(so->body, bp[1], e)) < 0) {
		close(from);
		resp_abort(rs);
		return -1;
	}
	if ((rs->f = fdopen(from, "r")) == NULL) {
		close(from);
		resp_abort(rs);
		return hypr_err_errno(e, HYPR_EXIT_SYSTEM, "fdopen");
	}
	/* Unbuffered, so the body can be read with read(2) right after the
	 * headers: a blob's bytes reach the partial file as they arrive. */
	setvbuf(rs->f, NULL, _IONBF, 0);
	/* Header blocks: one per response (redirects, proxy CONNECT); the
	 * last is the final response, its body follows the blank line. */
	for (;;) {
		if ((n = getline(&line, &cap, rs->f)) <= 0)
			break;
		if (!strncmp(line, "HTTP/", 5)) {
			const char *sp = strchr(line, ' ');

			rs->status = sp ? atoi(sp + 1) : 0;
			rs->content_type[0] = rs->www_auth[0] = '\0';
			rs->docker_digest[0] = rs->retry_after[0] = '\0';
			rs->location[0] = rs->range[0] = rs->oci_subject[0] = '\0';
			rs->content_length = rs->range_start = -1;
			location = strcasestr(line, "connection established") != NULL;
			continue;
		}
		if (line[0] == '\r' || line[0] == '\n') {
			if (location || rs->status / 100 == 1)
				continue;
			break;
		}
		if (!strncasecmp(line, "location:", 9) && rs->status / 100 == 3)
			location = 1;
		header_value(line, "Content-Type", rs->content_type, sizeof(rs->content_type));
		header_value(line, "WWW-Authenticate", rs->www_auth, sizeof(rs->www_auth));
		header_value(line, "Docker-Content-Digest", rs->docker_digest,
		    sizeof(rs->docker_digest));
		header_value(line, "Retry-After", rs->retry_after, sizeof(rs->retry_after));
		header_value(line, "Range", rs->range, sizeof(rs->range));
		header_value(line, "OCI-Subject", rs->oci_subject, sizeof(rs->oci_subject));
		header_value(line, "Location", rs->location, sizeof(rs->location));
		if (!strncasecmp(line, "content-length:", 15))
			rs->content_length = strtoll(line + 15, NULL, 10);
		if (!strncasecmp(line, "content-range:", 14)) {
			const char *b = strcasestr(line, "bytes");

			if (b)
				rs->range_start = strtoll(b + 5, NULL, 10);
		}
	}
	free(line);
	/* a body cut short cannot have been accepted */
	if (cut && rs->status / 100 == 2)
		rs->status = 0;
	rs->answered = rs->status != 0 && n > 0;
	if (rs->status == 0 || n <= 0) {
		/* no complete response: curl tells why */
		*curl_rc = resp_close(rs);
		if (*curl_rc == 0)
			*curl_rc = 52;
		rs->status = 0;
	}
	return 0;
}

static void
url_escape(const char *s, char *out, size_t n)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t k = 0;

	for (; *s && k + 4 < n; s++) {
		unsigned char c = (unsigned char)*s;

		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || strchr("-._~", c)) {
			out[k++] = (char)c;
		} else {
			out[k++] = '%';
			out[k++] = hex[c >> 4];
			out[k++] = hex[c & 15];
		}
	}
	out[k] = '\0';
}

/* Parse one parameter of a challenge: key="value". */
static int
challenge_param(const char *ch, const char *key, char *out, size_t n)
{
	size_t k = strlen(key);
	const char *p = ch;

	while ((p = strcasestr(p, key)) != NULL) {
		if ((p == ch || p[-1] == ' ' || p[-1] == ',') && p[k] == '=') {
			const char *v = p + k + 1;
			size_t len;

			if (*v == '"') {
				v++;
				len = strcspn(v, "\"");
			} else {
				len = strcspn(v, ", ");
			}
			if (len >= n)
				return 0;
			memcpy(out, v, len);
			out[len] = '\0';
			return 1;
		}
		p += k;
	}
	return 0;
}

/* Read a response body into b, stopping once it is over max bytes. */
static void
read_body(struct resp *rs, size_t max, struct hypr_strbuf *b)
{
	char buf[16384];
	size_t n;

	while (b->n <= max && (n = fread(buf, 1, sizeof(buf), rs->f)) > 0)
		hypr_strbuf_addn(b, buf, n);
}

/* Answer a 401: fetch a bearer token, or switch to basic. Returns 1 when a
 * retry makes sense, 0 when not (message set), -1 on error. */
static int
authenticate(struct hypr_registry *g, const char *challenge, int tried,
    struct hypr_err *e)
{
	char realm[1024], service[512], scope[512], q[2048], url[4096], es[1536], esc[1536];
	struct resp rs;
	int rc, status;
	json_t *j;
	json_error_t je;
	struct hypr_strbuf body = { 0 };
	const char *tok;

	if (!strncasecmp(challenge, "Basic", 5)) {
		if (!g->basic || tried)
			goto denied;
		pthread_mutex_lock(&g->lock);
		g->use_basic = 1;
		pthread_mutex_unlock(&g->lock);
		return 1;
	}
	if (strncasecmp(challenge, "Bearer", 6) != 0 || tried > 1)
		goto denied;
	if (!challenge_param(challenge, "realm", realm, sizeof(realm)) ||
	    (strncmp(realm, "https://", 8) && strncmp(realm, "http://", 7)))
		return hypr_err_set(e, HYPR_EXIT_INPUT,
		    "%s: bad authentication challenge (no realm URL)", g->domain);
	q[0] = '\0';
	if (challenge_param(challenge, "service", service, sizeof(service))) {
		url_escape(service, es, sizeof(es));
		snprintf(q, sizeof(q), "service=%s", es);
	}
	if (!challenge_param(challenge, "scope", scope, sizeof(scope)))
		snprintf(scope, sizeof(scope), "repository:%s:pull", g->repo);
	url_escape(scope, esc, sizeof(esc));
	if (g->refresh) {
		/* OAuth2 refresh-token grant, as Docker does for identity tokens */
		char *form = NULL, *rt = malloc(3 * strlen(g->refresh) + 1);

		if (!rt)
			return hypr_err_set(e, HYPR_EXIT_SYSTEM, "out of memory");
		url_escape(g->refresh, rt, 3 * strlen(g->refresh) + 1);
		if (asprintf(&form, "grant_type=refresh_token&client_id=hypr&%s%s"
		    "scope=%s&refresh_token=%s", q, q[0] ? "&" : "", esc, rt) < 0)
			form = NULL;
		hypr_secret_free(rt);
		if (!form)
			return hypr_err_set(e, HYPR_EXIT_SYSTEM, "out of memory");
		status = run_curl_data(g, realm, 0, NULL, NULL, NULL, form,
		    hypr_net_deadline(&g->net, 1u << 20), NULL, &rs, &rc, e);
		hypr_secret_free(form);
		if (status < 0)
			return -1;
	} else {
		snprintf(url, sizeof(url), "%s%s%s%sscope=%s", realm,
		    strchr(realm, '?') ? "&" : "?", q, q[0] ? "&" : "", esc);
		if (run_curl(g, url, 0, g->basic, NULL, NULL,
		    hypr_net_deadline(&g->net, 1u << 20), &rs, &rc, e) < 0)
			return -1;
	}
	if (rs.status == 0) {
		char why[256];

		if (rc == 28)
			hypr_net_timeout_text(&g->net, rs.max_time, hypr_now() - rs.t0, 0,
			    why, sizeof(why));
		return hypr_err_set(e, HYPR_EXIT_SYSTEM, "%s: token server: %s",
		    g->domain, rc == 28 ? why : hypr_net_curl_error(rc));
	}
	status = rs.status;
	read_body(&rs, 1u << 20, &body);
	resp_close(&rs);
	if (status == 401 || status == 403) {
		free(body.s);
		goto denied;
	}
	if (status != 200) {
		free(body.s);
		return hypr_err_set(e, HYPR_EXIT_SYSTEM, "%s: token server answered HTTP %d",
		    g->domain, status);
	}
	j = json_loadb(hypr_strbuf_str(&body), body.n, 0, &je);
	if (body.s)
		explicit_bzero(body.s, body.n);
	free(body.s);
	tok = hypr_json_str(j, "token");
	if (!tok || !*tok)
		tok = hypr_json_str(j, "access_token");
	if (!tok || !*tok) {
		json_decref(j);
		return hypr_err_set(e, HYPR_EXIT_SYSTEM, "%s: token server sent no token",
		    g->domain);
	}
	pthread_mutex_lock(&g->lock);
	hypr_secret_free(g->token);
	g->token = strdup(tok);
	pthread_mutex_unlock(&g->lock);
	json_decref(j);
	return 1;
denied:
	if (g->basic || g->refresh)
		hypr_err_set(e, HYPR_EXIT_SYSTEM,
		    "%s: unauthorized: the registry rejected the credentials",
		    g->domain);
	else
		hypr_err_set(e, HYPR_EXIT_SYSTEM,
		    "%s: unauthorized: authentication required (hypr login %s)",
		    g->domain, g->domain);
	return 0;
}

/* GET base+path, authenticating as the registry asks, within max_time
 * seconds. On return rs holds the final response (status 0: curl failed
 * with *curl_rc). */
static int
request_send(struct hypr_registry *g, const char *path, const char *accept,
    const char *extra, long max_time, const struct send_opt *so, struct resp *rs,
    int *curl_rc, struct hypr_err *e);

static int
request(struct hypr_registry *g, const char *path, const char *accept,
    const char *extra, long max_time, struct resp *rs, int *curl_rc,
    struct hypr_err *e)
{
	return request_send(g, path, accept, extra, max_time, NULL, rs, curl_rc, e);
}

/* As request; path may also be an absolute URL (an upload's Location). */
static int
request_send(struct hypr_registry *g, const char *path, const char *accept,
    const char *extra, long max_time, const struct send_opt *so, struct resp *rs,
    int *curl_rc, struct hypr_err *e)
{
	char url[4096];
	int tried = 0, r;

	pthread_mutex_lock(&g->lock);
	if (g->probe) {
		/* A registry allowed plain HTTP still gets HTTPS when it speaks
		 * it; only a TLS-level failure (an HTTP server answering the
		 * handshake) means plain HTTP. A certificate problem stays an
		 * error. */
		snprintf(url, sizeof(url), "%s/v2/", g->base);
		if (run_curl(g, url, 0, NULL, NULL, NULL, hypr_net_deadline(&g->net, 1u << 16),
		    rs, curl_rc, e) < 0) {
			pthread_mutex_unlock(&g->lock);
			return -1;
		}
		resp_close(rs);
		if (rs->status == 0 && (*curl_rc == 35 || *curl_rc == 52 || *curl_rc == 56)) {
			/* "https://h" -> "http://h" */
			memmove(g->base + 4, g->base + 5, strlen(g->base + 5) + 1);
		}
		g->probe = 0;
	}
	pthread_mutex_unlock(&g->lock);
	if (!strncmp(path, "http://", 7) || !strncmp(path, "https://", 8))
		snprintf(url, sizeof(url), "%s", path);
	else
		snprintf(url, sizeof(url), "%s%s", g->base, path);
	for (;;) {
		if (run_curl_data(g, url, 1, NULL, accept, extra, NULL, max_time, so, rs,
		    curl_rc, e) < 0)
			return -1;
		if (rs->status != 401)
			return 0;
		resp_close(rs);
		if ((r = authenticate(g, rs->www_auth, tried++, e)) <= 0)
			return -1;
	}
}

static void
backoff(int attempt)
{
	struct timespec ts;
	long ms = 200L << attempt;

	ts.tv_sec = ms / 1000;
	ts.tv_nsec = (ms % 1000) * 1000000L;
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* Classify a failed response. Returns 1 to retry (after backoff), 0 with
 * e set for a final error. */
static int
classify(struct hypr_registry *g, const struct resp *rs, int rc, const char *what,
    int last, struct hypr_err *e)
{
	if (rs->status == 0) {
		char why[256];

		if (rc == 28)
			hypr_net_timeout_text(&g->net, rs->max_time, hypr_now() - rs->t0,
			    rs->answered, why, sizeof(why));
		hypr_err_set(e, HYPR_EXIT_SYSTEM, "%s: %s: %s", g->domain, what,
		    rc == 28 ? why : hypr_net_curl_error(rc));
		return rc == 6 || rc == 60 || rc == 35 || rc == 58 || last ? 0 : 1;
	}
	if (rs->status == 429) {
		long after = rs->retry_after[0] ? atol(rs->retry_after) : 0;

		hypr_err_set(e, HYPR_EXIT_SYSTEM,
		    "%s: rate limited (HTTP 429 Too Many Requests)%s%s%s; wait or log in "
		    "(hypr login %s)", g->domain, after ? ", retry after " : "",
		    after ? rs->retry_after : "", after ? " s" : "", g->domain);
		return !last && after <= 2 ? 1 : 0;
	}
	if (rs->status == 404) {
		hypr_err_set(e, HYPR_EXIT_INPUT, "%s: %s: not found (HTTP 404)",
		    g->domain, what);
		return 0;
	}
	if (rs->status == 403) {
		hypr_err_set(e, HYPR_EXIT_SYSTEM, "%s: %s: access denied (HTTP 403)",
		    g->domain, what);
		return 0;
	}
	hypr_err_set(e, rs->status >= 500 ? HYPR_EXIT_SYSTEM : HYPR_EXIT_INPUT,
	    "%s: %s: registry answered HTTP %d", g->domain, what, rs->status);
	return rs->status >= 500 && !last ? 1 : 0;
}

/* classify(), and a final error after retries says how many were made. */
static int
failed(struct hypr_registry *g, const struct resp *rs, int rc, const char *what,
    int attempt, struct hypr_err *e)
{
	int last = attempt + 1 >= g->retries, r = classify(g, rs, rc, what, last, e);
	size_t k = strlen(e->msg);

	if (r == 0 && last && attempt > 0 && k + 20 < sizeof(e->msg))
		snprintf(e->msg + k, sizeof(e->msg) - k, " (%d attempts)", attempt + 1);
	return r;
}

static void
media_of(const char *ct, char *out, size_t n)
{
	size_t k = strcspn(ct, "; \t");

	if (k >= n)
		k = n - 1;
	memcpy(out, ct, k);
	out[k] = '\0';
}

/* GET a small JSON document at path with accept; 1 with *body when it is
 * there (200), 0 when the registry answers 404, -1 on another failure. */
static int
get_doc(struct hypr_registry *g, const char *path, const char *accept, const char *what,
    char **body, size_t *len, struct hypr_err *e)
{
	struct resp rs;
	int rc;

	for (int attempt = 0;; attempt++) {
		struct hypr_strbuf sb = { 0 };
		size_t bl;

		if (request(g, path, accept, NULL, hypr_net_deadline(&g->net, MANIFEST_MAX),
		    &rs, &rc, e) < 0)
			return -1;
		if (rs.status == 404) {
			resp_close(&rs);
			return 0;
		}
		if (rs.status != 200) {
			resp_close(&rs);
			if (failed(g, &rs, rc, what, attempt, e)) {
				backoff(attempt);
				continue;
			}
			return -1;
		}
		read_body(&rs, MANIFEST_MAX, &sb);
		bl = sb.n;
		if (bl > MANIFEST_MAX) {
			resp_abort(&rs);
			free(sb.s);
			return hypr_err_set(e, HYPR_EXIT_INPUT, "%s: %s: larger than 4 MiB",
			    g->domain, what);
		}
		rc = resp_close(&rs);
		if (rc != 0 || (rs.content_length >= 0 && (int64_t)bl != rs.content_length)) {
			free(sb.s);
			rs.status = 0;
			if (rc == 0)
				rc = 18;
			if (failed(g, &rs, rc, what, attempt, e)) {
				backoff(attempt);
				continue;
			}
			return -1;
		}
		if ((*body = hypr_strbuf_take(&sb)) == NULL) {
			free(sb.s);
			return hypr_err_set(e, HYPR_EXIT_SYSTEM, "out of memory");
		}
		*len = bl;
		return 1;
	}
}

int
hypr_registry_referrers(struct hypr_registry *g, const char *subject,
    const char *artifact_type, char **body, size_t *len, struct hypr_err *e)
{
	char path[1024], what[600];
	int r;

	if (!hypr_digest_valid(subject))
		return hypr_err_set(e, HYPR_EXIT_INPUT, "referrers: bad digest '%s'", subject);
	snprintf(path, sizeof(path), "/v2/%s/referrers/%s%s%s", g->repo, subject,
	    artifact_type ? "?artifactType=" : "", artifact_type ? artifact_type : "");
	snprintf(what, sizeof(what), "referrers of %s:%s", g->repo, subject);
	if ((r = get_doc(g, path, "Accept: application/vnd.oci.image.index.v1+json", what, body, len,
	    e)) != 0)
		return r;
	/* no referrers API: the tag schema's index (hypr-artifact(5)) */
	snprintf(path, sizeof(path), "/v2/%s/manifests/sha256-%s", g->repo,
	    hypr_digest_hex(subject));
	return get_doc(g, path, "Accept: application/vnd.oci.image.index.v1+json", what, body, len, e);
}

int
hypr_registry_manifest(struct hypr_registry *g, const char *reference,
    char **body, size_t *len, char *media_type, size_t mtn,
    char digest[HYPR_DIGEST_LEN + 1], struct hypr_err *e)
{
	char path[1024], what[600];
	struct resp rs;
	int rc;

	snprintf(path, sizeof(path), "/v2/%s/manifests/%s", g->repo, reference);
	snprintf(what, sizeof(what), "manifest %s:%s", g->repo, reference);
	for (int attempt = 0;; attempt++) {
		struct hypr_strbuf sb = { 0 };
		char *b;
		size_t bl;

		if (request(g, path, accept_manifests, NULL,
		    hypr_net_deadline(&g->net, MANIFEST_MAX), &rs, &rc, e) < 0)
			return -1;
		if (rs.status != 200) {
			resp_close(&rs);
			if (failed(g, &rs, rc, what, attempt, e)) {
				backoff(attempt);
				continue;
			}
			return -1;
		}
		read_body(&rs, MANIFEST_MAX, &sb);
		bl = sb.n;
		if (bl > MANIFEST_MAX || (b = hypr_strbuf_take(&sb)) == NULL) {
			resp_abort(&rs);
			free(sb.s);
			if (bl > MANIFEST_MAX)
				return hypr_err_set(e, HYPR_EXIT_INPUT,
				    "%s: %s: larger than 4 MiB", g->domain, what);
			return hypr_err_set(e, HYPR_EXIT_SYSTEM, "out of memory");
		}
		rc = resp_close(&rs);
		if (rc != 0 || (rs.content_length >= 0 && (int64_t)bl != rs.content_length)) {
			free(b);
			rs.status = 0;
			if (rc == 0)
				rc = 18;
			if (failed(g, &rs, rc, what, attempt, e)) {
				backoff(attempt);
				continue;
			}
			return -1;
		}
		if (hypr_digest_buf(b, bl, digest, e) < 0) {
			free(b);
			return -1;
		}
		if (!strncmp(reference, "sha256:", 7) && strcmp(reference, digest) != 0) {
			free(b);
			return hypr_err_set(e, HYPR_EXIT_INPUT,
			    "%s: %s: digest mismatch: the registry sent %s",
			    g->domain, what, digest);
		}
		if (rs.docker_digest[0] && !strncmp(rs.docker_digest, "sha256:", 7) &&
		    strcmp(rs.docker_digest, digest) != 0) {
			free(b);
			return hypr_err_set(e, HYPR_EXIT_INPUT,
			    "%s: %s: digest mismatch: header says %s, content is %s",
			    g->domain, what, rs.docker_digest, digest);
		}
		media_of(rs.content_type, media_type, mtn);
		{
			json_t *j = json_loadb(b, bl, 0, NULL);
			const char *mt = hypr_json_str(j, "mediaType");

			if (mt && (!media_type[0] || !strcmp(media_type, "application/json") ||
			    !strcmp(media_type, "text/plain") ||
			    !strcmp(media_type, "application/octet-stream")))
				snprintf(media_type, mtn, "%s", mt);
			json_decref(j);
		}
		*body = b;
		*len = bl;
		return 0;
	}
}

/* Hash (and decompress, with dd) the first `have` bytes of an existing
 * partial file. */
static int
rehash(int fd, struct hypr_sha256 *sha, struct hypr_diffid *dd, int64_t have,
    char *buf, struct hypr_err *e)
{
	int64_t left = have;

	if (lseek(fd, 0, SEEK_SET) < 0)
		return hypr_err_errno(e, HYPR_EXIT_SYSTEM, "seek");
	while (left > 0) {
		size_t want = left > BUF_SIZE ? BUF_SIZE : (size_t)left;
		ssize_t n = hypr_read_full(fd, buf, want);

		if (n <= 0)
			return hypr_err_errno(e, HYPR_EXIT_SYSTEM, "reading partial blob");
		hypr_sha256_update(sha, buf, (size_t)n);
		if (dd && hypr_diffid_feed(dd, buf, (size_t)n, e) < 0)
			return -1;
		left -= n;
	}
	return 0;
}

/* End an attempt's running digests. */
static void
drop(struct hypr_blob_writer *w, struct hypr_diffid **dd)
{
	hypr_sha256_abort(&w->sha);
	hypr_diffid_abort(*dd);
	*dd = NULL;
}

/* Start an attempt's running digests over. */
static int
restart(struct hypr_blob_writer *w, struct hypr_diffid **dd, int want_diff,
    uint64_t max_diff, struct hypr_err *e)
{
	if (hypr_sha256_init(&w->sha, e) < 0)
		return -1;
	if (want_diff && hypr_diffid_start(dd, max_diff, e) < 0) {
		hypr_sha256_abort(&w->sha);
		return -1;
	}
	return 0;
}

int
hypr_registry_blob(struct hypr_registry *g, const char *digest, int64_t size,
    const char *diff_id, uint64_t max_diff, struct hypr_err *e)
{
	struct hypr_diffid *dd = NULL;
	struct hypr_blob_writer w;
	char got_diff[HYPR_DIGEST_LEN + 1] = "";
	char path[1024], what[600], range[64], *buf;
	struct resp rs;
	struct stat st;
	int rc;

	if (!hypr_digest_valid(digest))
		return hypr_err_set(e, HYPR_EXIT_INPUT, "%s: bad blob digest '%s'",
		    g->domain, digest);
	if (hypr_blob_has(g->root, digest))
		return 0;
	memset(&w, 0, sizeof(w));
	w.root = g->root;
	if (hypr_root_path(g->root, w.tmp, sizeof(w.tmp), "tmp/fetch-%s.part", hypr_digest_hex(digest)) < 0)
		return hypr_err_set(e, HYPR_EXIT_SYSTEM, "store path too long");
	if ((w.fd = open(w.tmp, O_RDWR | O_CREAT | O_CLOEXEC, 0644)) < 0)
		return hypr_err_errno(e, HYPR_EXIT_SYSTEM, "creating %s", w.tmp);
	/* Another hypr may be fetching the same blob: wait for it. */
	while (flock(w.fd, LOCK_EX) < 0)
		if (errno != EINTR) {
			close(w.fd);
			return hypr_err_errno(e, HYPR_EXIT_SYSTEM, "locking %s", w.tmp);
		}
	if (hypr_blob_has(g->root, digest) || fstat(w.fd, &st) < 0 || st.st_nlink == 0) {
		close(w.fd);
		return hypr_blob_has(g->root, digest) ? 0 :
		    hypr_registry_blob(g, digest, size, diff_id, max_diff, e);
	}
	if ((buf = malloc(BUF_SIZE)) == NULL) {
		close(w.fd);
		return hypr_err_set(e, HYPR_EXIT_SYSTEM, "out of memory");
	}
	snprintf(path, sizeof(path), "/v2/%s/blobs/%s", g->repo, digest);
	snprintf(what, sizeof(what), "blob %s", digest);
	for (int attempt = 0;; attempt++) {
		int64_t have, got;

		if (attempt >= 2 * g->retries) {
			/* restarts (416, a wrong Content-Range) did not settle */
			hypr_err_set(e, HYPR_EXIT_INPUT, "%s: %s: the registry's Range "
			    "answers are inconsistent", g->domain, what);
			break;
		}

		if (fstat(w.fd, &st) < 0) {
			hypr_err_errno(e, HYPR_EXIT_SYSTEM, "stat %s", w.tmp);
			break;
		}
		have = st.st_size;
		if (size >= 0 && have > size) {
			if (ftruncate(w.fd, 0) < 0) {
				hypr_err_errno(e, HYPR_EXIT_SYSTEM, "truncate %s", w.tmp);
				break;
			}
			have = 0;
		}
		if (restart(&w, &dd, diff_id != NULL, max_diff, e) < 0)
			break;
		if (have > 0 && rehash(w.fd, &w.sha, dd, have, buf, e) < 0) {
			drop(&w, &dd);
			break;
		}
		if (size >= 0 && have == size)
			goto done;	/* complete before an interruption */
		snprintf(range, sizeof(range), "Range: bytes=%lld-", (long long)have);
		/* the deadline follows what is left to fetch; unknown sizes get
		 * the largest layer's */
		if (request(g, path, NULL, have > 0 ? range : NULL,
		    hypr_net_deadline(&g->net, size >= 0 ? (uint64_t)(size - have) :
		    (uint64_t)1 << 36), &rs, &rc, e) < 0) {
			drop(&w, &dd);
			break;
		}
		if (rs.status == 200 || (rs.status == 206 && rs.range_start != have)) {
			/* no resume: start over */
			drop(&w, &dd);
			if (rs.status == 206) {
				resp_abort(&rs);
				if (ftruncate(w.fd, 0) < 0) {
					hypr_err_errno(e, HYPR_EXIT_SYSTEM, "truncate");
					break;
				}
				continue;
			}
			if (ftruncate(w.fd, 0) < 0) {
				resp_abort(&rs);
				hypr_err_errno(e, HYPR_EXIT_SYSTEM, "truncate %s", w.tmp);
				break;
			}
			if (restart(&w, &dd, diff_id != NULL, max_diff, e) < 0) {
				resp_abort(&rs);
				break;
			}
			have = 0;
		} else if (rs.status != 206 || have == 0) {
			drop(&w, &dd);
			resp_close(&rs);
			if (rs.status == 416 && have > 0) {
				/* our partial is longer than the blob: start over */
				if (ftruncate(w.fd, 0) < 0)
					break;
				continue;
			}
			if (failed(g, &rs, rc, what, attempt, e)) {
				backoff(attempt);
				continue;
			}
			break;
		}
		if (lseek(w.fd, have, SEEK_SET) < 0) {
			resp_abort(&rs);
			drop(&w, &dd);
			hypr_err_errno(e, HYPR_EXIT_SYSTEM, "seek");
			break;
		}
		got = have;
		for (;;) {
			ssize_t rn = read(fileno(rs.f), buf, BUF_SIZE);
			size_t n;

			if (rn < 0 && errno == EINTR)
				continue;
			if (rn <= 0)
				break;
			n = (size_t)rn;
			if (size >= 0 && got + (int64_t)n > size) {
				resp_abort(&rs);
				drop(&w, &dd);
				ftruncate(w.fd, 0);
				hypr_err_set(e, HYPR_EXIT_INPUT,
				    "%s: %s: the registry sent more than the %lld bytes "
				    "the manifest gives", g->domain, what, (long long)size);
				goto out;
			}
			if (hypr_write_all(w.fd, buf, n) < 0) {
				resp_abort(&rs);
				drop(&w, &dd);
				hypr_err_errno(e, HYPR_EXIT_SYSTEM, "writing %s", w.tmp);
				goto out;
			}
			hypr_sha256_update(&w.sha, buf, n);
			if (dd && hypr_diffid_feed(dd, buf, n, e) < 0) {
				resp_abort(&rs);
				drop(&w, &dd);
				goto out;
			}
			got += (int64_t)n;
		}
		rc = resp_close(&rs);
		if (rc != 0 || (size >= 0 && got < size)) {
			drop(&w, &dd);
			rs.status = 0;
			if (rc == 0)
				rc = 18;
			if (failed(g, &rs, rc, what, attempt, e)) {
				backoff(attempt);
				continue;
			}
			break;
		}
done:
		free(buf);
		if (dd) {
			/* a layer whose content is not what the config says is
			 * never stored */
			int k = hypr_diffid_finish(dd, got_diff, e);

			dd = NULL;
			if (k < 0 || strcmp(got_diff, diff_id) != 0) {
				char d[HYPR_DIGEST_LEN + 1];

				/* bytes that are not the blob explain the rest */
				hypr_sha256_final(&w.sha, d);
				close(w.fd);
				unlink(w.tmp);
				if (strcmp(d, digest) != 0)
					return hypr_err_set(e, HYPR_EXIT_INPUT, "%s: %s: digest "
					    "mismatch: expected %s, got %s", g->domain, what,
					    digest, d);
				if (k < 0)
					return hypr_err_prefix(e, "%s: %s", g->domain, what);
				return hypr_err_set(e, HYPR_EXIT_INPUT, "%s: layer %s: diff_id "
				    "mismatch: the config says %s, the layer decompresses to %s",
				    g->domain, digest, diff_id, got_diff);
			}
		}
		/* hypr_blob_commit verifies, then renames into the store or
		 * removes the partial: nothing unverified stays. */
		if (hypr_blob_commit(&w, digest, NULL, NULL, e) < 0)
			return hypr_err_prefix(e, "%s: %s", g->domain, what);
		if (diff_id && hypr_diffid_put(g->root, digest, got_diff, e) < 0)
			return -1;
		return 0;
	}
out:
	free(buf);
	close(w.fd);
	return -1;
}

int
hypr_registry_ping(struct hypr_registry *g, struct hypr_err *e)
{
	struct resp rs;
	int rc;

	for (int attempt = 0;; attempt++) {
		if (request(g, "/v2/", NULL, NULL, hypr_net_deadline(&g->net, 1u << 16),
		    &rs, &rc, e) < 0)
			return -1;
		resp_close(&rs);
		if (rs.status == 200)
			return 0;
		if (failed(g, &rs, rc, "/v2/", attempt, e)) {
			backoff(attempt);
			continue;
		}
		return -1;
	}
}

static int
send_opt(struct hypr_registry *g, const struct send_opt *o, const char *path, uint64_t size,
    struct hypr_registry_answer *a, struct hypr_err *e);

int
hypr_registry_send(struct hypr_registry *g, const char *method, const char *path,
    const char *const *headers, const char *upload, uint64_t size,
    struct hypr_registry_answer *a, struct hypr_err *e)
{
	struct send_opt so = { method, upload, headers, NULL };

	return send_opt(g, &so, path, size, a, e);
}

int
hypr_registry_send_body(struct hypr_registry *g, const char *method, const char *path,
    const char *const *headers, const struct hypr_registry_body *body,
    struct hypr_registry_answer *a, struct hypr_err *e)
{
	struct send_opt so = { method, NULL, headers, body };

	return send_opt(g, &so, path, body->len >= 0 ? (uint64_t)body->len : body->expect, a, e);
}

static int
send_opt(struct hypr_registry *g, const struct send_opt *o, const char *path, uint64_t size,
    struct hypr_registry_answer *a, struct hypr_err *e)
{
	const char *method = o->method;
	struct resp rs;
	int rc;
	char what[64];

	memset(a, 0, sizeof(*a));
	snprintf(what, sizeof(what), "%s request", method);
	for (int attempt = 0;; attempt++) {
		struct hypr_strbuf b = { 0 };

		if (request_send(g, path, NULL, NULL, hypr_net_deadline(&g->net, size), o,
		    &rs, &rc, e) < 0)
			return -1;
		if (rs.status != 0)
			read_body(&rs, 1u << 16, &b);
		resp_close(&rs);
		if (rs.status == 0 || rs.status >= 500 || rs.status == 429) {
			/* a chunk half sent is not sent again: the upload's
			 * offset is the registry's now */
			int again = strcmp(method, "PATCH") == 0 || o->body ?
			    classify(g, &rs, rc, what, 1, e) : failed(g, &rs, rc, what, attempt, e);

			free(b.s);
			if (again) {
				backoff(attempt);
				continue;
			}
			return -1;
		}
		a->status = rs.status;
		snprintf(a->location, sizeof(a->location), "%s", rs.location);
		snprintf(a->digest, sizeof(a->digest), "%s", rs.docker_digest);
		snprintf(a->range, sizeof(a->range), "%s", rs.range);
		snprintf(a->subject, sizeof(a->subject), "%s", rs.oci_subject);
		a->error[0] = '\0';
		if (rs.status >= 300 && b.n) {
			/* {"errors":[{"code":"DENIED","message":"..."}]} */
			json_t *j = json_loadb(b.s, b.n, 0, NULL);
			json_t *e0 = json_array_get(json_object_get(j, "errors"), 0);
			const char *code = hypr_json_str(e0, "code");
			const char *msg = hypr_json_str(e0, "message");

			if (code || msg)
				snprintf(a->error, sizeof(a->error), "%s%s%s", code ? code : "",
				    code && msg ? ": " : "", msg ? msg : "");
			json_decref(j);
		}
		free(b.s);
		return 0;
	}
}
