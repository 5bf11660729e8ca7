/* registry.h - an OCI distribution client over the curl CLI.
 *
 * Every request is one `curl -K -` whose configuration (URL, headers,
 * credentials) arrives on its stdin, so secrets never appear in a process
 * list. Response headers and body come back on one pipe (-D -). HTTPS uses
 * the system CAs plus a per-registry CA from the first of
 * $HYPR_ROOT/certs.d/HOST/, /etc/hypr/certs.d/HOST/,
 * /etc/docker/certs.d/HOST/ and /etc/containers/certs.d/HOST/ (ca.crt,
 * client.cert, client.key). Plain HTTP is used only for loopback registries
 * and those listed as insecure, and only when they do not speak TLS (as
 * Docker does). Every request keeps the limits of net.h: a registry that
 * stalls or trickles is cut and retried, then fails (HYPR_EXIT_SYSTEM).
 * Safe to share between threads. */
#ifndef HYPR_REGISTRY_H
#define HYPR_REGISTRY_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include "cas.h"
#include "err.h"
#include "net.h"
#include "ref.h"

struct hypr_registry {
	char domain[256];	/* as written in the reference */
	char base[600];		/* "https://host[:port]" */
	char repo[256];
	char cacert[HYPR_PATH_BUF + 128];	/* "" when none */
	char cert[HYPR_PATH_BUF + 128], key[HYPR_PATH_BUF + 128];
	char *basic;		/* "user:secret" or NULL */
	char *refresh;		/* an identity (OAuth2 refresh) token or NULL */
	char *token;		/* bearer token or NULL */
	int use_basic;		/* the registry asked for Basic */
	int probe;		/* HTTP allowed: try HTTPS first, once */
	int retries;		/* attempts per request (HYPR_NET_RETRIES, 4) */
	struct hypr_net net;	/* deadlines of every request (net.h) */
	const struct hypr_root *root;
	pthread_mutex_t lock;
};

/* Prepare a client for ref's repository: scheme (insecure is a list of
 * domains separated by commas or spaces, plus $HYPR_INSECURE_REGISTRIES),
 * certificates, credentials (see auth.h) and limits (net.h; a malformed
 * HYPR_NET_* is a usage error). */
int hypr_registry_open(struct hypr_registry *g, const struct hypr_root *root,
    const struct hypr_ref *ref, const char *insecure, struct hypr_err *e);
/* Wipe credentials and free. */
void hypr_registry_close(struct hypr_registry *g);

/* GET a manifest by tag or digest with every supported Accept type. body is
 * malloc'd; media_type gets the Content-Type (or the body's mediaType); digest
 * gets sha256 of the body. A digest reference must match (else exit 3). */
int hypr_registry_manifest(struct hypr_registry *g, const char *reference,
    char **body, size_t *len, char *media_type, size_t mtn,
    char digest[HYPR_DIGEST_LEN + 1], struct hypr_err *e);

/* The index listing the referrers of the manifest subject (OCI distribution
 * 1.1): the referrers API (filtered by artifact_type when not NULL), else,
 * when the registry has no such API (404), the fallback tag
 * sha256-<hex of subject>. 1 with *body (malloc'd), 0 when there is
 * neither, -1 on failure. The caller filters again (a registry may ignore
 * the filter) and verifies what it fetches by digest. */
int hypr_registry_referrers(struct hypr_registry *g, const char *subject,
    const char *artifact_type, char **body, size_t *len, struct hypr_err *e);

/* Download a blob into the store, verifying size and digest as it streams.
 * The partial file ($HYPR_ROOT/tmp/fetch-<hex>.part) survives an interruption
 * and the next call resumes it with a Range request. size < 0: unknown.
 * With diff_id non-NULL the blob is a layer: it is also decompressed as it
 * arrives (on a thread, at most max_diff bytes; see oci.h) and stored only
 * if that hashes to diff_id (else HYPR_EXIT_INPUT, the partial removed);
 * the fact is recorded (hypr_diffid_put). A blob already stored is not
 * checked: see hypr_diffid_get. */
int hypr_registry_blob(struct hypr_registry *g, const char *digest, int64_t size,
    const char *diff_id, uint64_t max_diff, struct hypr_err *e);

/* GET /v2/ with the credentials (after a token exchange if asked): 0 when
 * they are accepted. For `login`. */
int hypr_registry_ping(struct hypr_registry *g, struct hypr_err *e);

/* The answer to hypr_registry_send. */
struct hypr_registry_answer {
	int status;		/* HTTP status */
	char location[2048];	/* Location, "" when none */
	char digest[HYPR_DIGEST_LEN + 1];	/* Docker-Content-Digest */
	char range[64];		/* Range ("0-1234") of an upload */
	char subject[HYPR_DIGEST_LEN + 1];	/* OCI-Subject of a manifest PUT */
	char error[256];	/* the registry's first error (code: message) */
};

/* A request body the caller writes while curl sends it (no temp file):
 * feed writes it to fd, a pipe, and returns 0, or -1 with e (a write that
 * fails with EPIPE: curl is gone, its answer says why). len: its size
 * (sent as Content-Length), or -1 (chunked transfer encoding). feed runs
 * once per attempt: a request sent again (after a 401 answered with a
 * token) runs it again. */
struct hypr_registry_body {
	int (*feed)(void *arg, int fd, struct hypr_err *e);
	void *arg;
	int64_t len;
	uint64_t expect;	/* with len -1: about how many bytes (the deadline) */
};

/* One request for a push: method ("HEAD", "GET", "POST", "PUT", "PATCH") on path
 * ("/v2/...", or an absolute URL the registry gave as Location), with
 * headers (NULL-terminated, may be NULL) and a body read from the file
 * upload (NULL: none) of size bytes (the deadline grows with it, net.h).
 * Authenticates as request() does (the registry's challenge names the push
 * scope); network failures, 5xx and 429 are retried (not for PATCH: a
 * chunk is not sent twice), then fail (HYPR_EXIT_SYSTEM). Any other answer
 * is returned in *a for the caller. */
/* hypr_registry_send_body: the same with body (not retried, as PATCH). */
int hypr_registry_send(struct hypr_registry *g, const char *method, const char *path,
    const char *const *headers, const char *upload, uint64_t size,
    struct hypr_registry_answer *a, struct hypr_err *e);
int hypr_registry_send_body(struct hypr_registry *g, const char *method, const char *path,
    const char *const *headers, const struct hypr_registry_body *body,
    struct hypr_registry_answer *a, struct hypr_err *e);

#endif
