/* push_blob.c - one blob into a registry for push.c: HEAD, mount, one PUT
 * or PATCH chunks that resume, a built layer gzip'd on its way up. No file
 * between a blob and curl: chunks go through a pipe (hypr-fetch(1)). */
#include "push.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "digest.h"
#include "gzip.h"
#include "fsutil.h"
#include "net.h"
#include "registry.h"
#include "push_int.h"

static void
backoff_ms(unsigned ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

void
push_count(struct push *p, unsigned *n)
{
	pthread_mutex_lock(&p->mu);
	(*n)++;
	pthread_mutex_unlock(&p->mu);
}

void
push_say(struct push *p, const char *digest, const char *what)
{
	if (p->out) {
		fprintf(p->out, "%.12s: %s\n", hypr_digest_hex(digest), what);
		fflush(p->out);
	}
}

/* "<domain>: <what> <digest>: <why>" for an unexpected answer. */
int
push_answer_err(struct push *p, const char *what, const char *digest,
    const struct hypr_registry_answer *a, struct hypr_err *e)
{
	return hypr_err_set(e, HYPR_EXIT_SYSTEM, "%s: %s %s: registry answered HTTP %d%s%s",
	    p->g.domain, what, digest, a->status, a->error[0] ? ": " : "", a->error);
}

/* An upload URL with one more query parameter. */
static void
with_param(const char *loc, const char *param, char *buf, size_t n)
{
	snprintf(buf, n, "%s%s%s", loc, strchr(loc, '?') ? "&" : "?", param);
}

/* Where a blob's bytes come from: a file (pread at the offset), or a
 * window of a stream held in memory (mem holds bytes base.. base+n). */
struct src {
	int fd;			/* -1: mem */
	const char *file;	/* the file's name (fd >= 0) */
	const char *mem;
	uint64_t base, n;
};

/* A byte range of a src as a request body. */
struct range_feed {
	const struct src *s;
	uint64_t off, len;
};

static int
feed_range(void *arg, int out, struct hypr_err *e)
{
	const struct range_feed *r = arg;
	uint64_t off = r->off, left = r->len;

	if (r->s->fd < 0)
		return hypr_write_all(out, r->s->mem + (off - r->s->base), (size_t)left) < 0 ?
		    hypr_err_errno(e, HYPR_EXIT_SYSTEM, "push: sending a chunk") : 0;
	while (left > 0) {
		char buf[1 << 16];
		ssize_t n = pread(r->s->fd, buf, left < sizeof(buf) ? (size_t)left : sizeof(buf),
		    (off_t)off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (n == 0)
				errno = EIO;	/* the file shrank */
			return hypr_err_errno(e, HYPR_EXIT_SYSTEM, "push: reading a chunk");
		}
		if (hypr_write_all(out, buf, (size_t)n) < 0)
			return hypr_err_errno(e, HYPR_EXIT_SYSTEM, "push: sending a chunk");
		off += (uint64_t)n;
		left -= (uint64_t)n;
	}
	return 0;
}

/* Where an upload the connection dropped stands: 1 with *next (the first
 * byte the registry lacks) and loc updated, 0 when the registry no longer
 * knows it (distribution cancels an upload a half chunk left at an offset
 * its state does not expect), -1 on failure. */
static int
upload_status(struct push *p, char *loc, size_t locn, uint64_t *next, struct hypr_err *e)
{
	struct hypr_registry_answer a;
	const char *dash;

	if (hypr_registry_send(&p->g, "GET", loc, NULL, NULL, 0, &a, e) < 0)
		return -1;
	if (a.status != 204 && a.status != 200)
		return 0;
	/* "0-0" is how distribution says "nothing yet" (an empty upload) */
	*next = 0;
	if (a.range[0] && strcmp(a.range, "0-0") != 0 && (dash = strchr(a.range, '-')) != NULL)
		*next = strtoull(dash + 1, NULL, 10) + 1;
	if (a.location[0])
		snprintf(loc, locn, "%s", a.location);
	return 1;
}

/* 1 when a HEAD finds the blob in the repository. */
static int
blob_there(struct push *p, const char *digest)
{
	struct hypr_registry_answer a;
	struct hypr_err ig = { 0 };
	char path[1024];

	snprintf(path, sizeof(path), "/v2/%s/blobs/%s", p->g.repo, digest);
	return hypr_registry_send(&p->g, "HEAD", path, NULL, NULL, 0, &a, &ig) == 0 &&
	    a.status == 200;
}

/* POST a new upload session; its URL into loc. */
static int
start_upload(struct push *p, const char *digest, char *loc, size_t locn, struct hypr_err *e)
{
	struct hypr_registry_answer a;
	char path[1024];

	snprintf(path, sizeof(path), "/v2/%s/blobs/uploads/", p->g.repo);
	if (hypr_registry_send(&p->g, "POST", path, NULL, NULL, 0, &a, e) < 0)
		return hypr_err_prefix(e, "blob %s", digest);
	if (a.status != 202 || !a.location[0])
		return push_answer_err(p, "upload of blob", digest, &a, e);
	snprintf(loc, locn, "%s", a.location);
	return 0;
}

/* PATCH bytes [from, to) of s to the upload at loc (updated) in chunks of
 * p->chunk, straight from the file or memory (no copy on disk). total is
 * the blob's size for the progress, 0 when not known yet. A chunk whose
 * connection drops (or that gets a 5xx) is not sent blind again: the
 * upload's status (GET, its Range) says where to go on, within [from, to);
 * at most HYPR_NET_RETRIES drops per blob (*drops). Returns 0; 1 when the
 * upload must start again from byte 0 (the registry dropped it, or it
 * wants bytes before from); -1 with e. */
static int
send_range(struct push *p, const struct src *s, const char *digest, uint64_t from, uint64_t to,
    uint64_t total, char *loc, size_t locn, int *drops, struct hypr_err *e)
{
	struct hypr_registry_answer a;
	char range[96], human[32], human2[32] = "", msg[256];
	uint64_t off = from;

	if (total)
		hypr_net_size_text(total, human2, sizeof(human2));
	while (off < to) {
		uint64_t len = to - off < p->chunk ? to - off : p->chunk, next;
		const char *hdr[] = { "Content-Type: application/octet-stream", range, NULL };
		struct range_feed rf = { s, off, len };
		struct hypr_registry_body body = { feed_range, &rf, (int64_t)len, 0 };
		int rc;

		snprintf(range, sizeof(range), "Content-Range: %llu-%llu",
		    (unsigned long long)off, (unsigned long long)(off + len - 1));
		rc = hypr_registry_send_body(&p->g, "PATCH", loc, hdr, &body, &a, e);
		if (rc < 0 && ++*drops < p->g.retries) {
			struct hypr_err why = *e;

			memset(e, 0, sizeof(*e));
			if ((rc = upload_status(p, loc, locn, &next, e)) < 0)
				return hypr_err_prefix(e, "blob %s", digest);
			if (rc == 0 || next < from || next > off + len) {
				snprintf(msg, sizeof(msg), "Restarting the upload (%.100s)", why.msg);
				push_say(p, digest, msg);
				backoff_ms(100u << *drops);
				return 1;
			}
			hypr_net_size_text(next, human, sizeof(human));
			snprintf(msg, sizeof(msg), "Resuming at %s%s%s (%.100s)", human,
			    total ? "/" : "", human2, why.msg);
			push_say(p, digest, msg);
			off = next;
			backoff_ms(100u << *drops);
			continue;
		}
		if (rc < 0)
			return hypr_err_prefix(e, "blob %s", digest);
		if (a.status != 202 || !a.location[0])
			return push_answer_err(p, "chunk of blob", digest, &a, e);
		/* Range: 0-<last byte received> */
		if (a.range[0]) {
			const char *dash = strchr(a.range, '-');

			if (!dash || strtoull(dash + 1, NULL, 10) != off + len - 1)
				return hypr_err_set(e, HYPR_EXIT_SYSTEM,
				    "%s: blob %s: the registry has bytes %s, %llu sent",
				    p->g.domain, digest, a.range, (unsigned long long)(off + len));
		}
		snprintf(loc, locn, "%s", a.location);
		off += len;
		hypr_net_size_text(off, human, sizeof(human));
		snprintf(msg, sizeof(msg), "Pushing %s%s%s", human, total ? "/" : "", human2);
		push_say(p, digest, msg);
	}
	return 0;
}

/* The whole blob in chunks to the upload at loc; a new upload when the
 * registry dropped this one. */
static int
push_chunks(struct push *p, const struct src *s, const char *digest, uint64_t size,
    char *loc, size_t locn, struct hypr_err *e)
{
	int drops = 0, r;

	while ((r = send_range(p, s, digest, 0, size, size, loc, locn, &drops, e)) == 1)
		if (start_upload(p, digest, loc, locn, e) < 0)
			return -1;
	return r;
}

/* Make sure the registry has the blob of s: HEAD, mount, or upload (one
 * PUT up to p->chunk bytes, else PATCH chunks). */
static int
push_blob_src(struct push *p, const struct src *s, const char *digest, uint64_t size,
    int mountable, struct hypr_err *e)
{
	struct hypr_registry_answer a;
	char path[1024], loc[2048], url[2300], param[128];
	const char *octet[] = { "Content-Type: application/octet-stream", NULL };

	snprintf(path, sizeof(path), "/v2/%s/blobs/%s", p->g.repo, digest);
	if (hypr_registry_send(&p->g, "HEAD", path, NULL, NULL, 0, &a, e) < 0)
		return hypr_err_prefix(e, "blob %s", digest);
	if (a.status == 200) {
		push_say(p, digest, "Layer already exists");
		push_count(p, &p->res->skipped);
		return 0;
	}
	if (a.status != 404)
		return push_answer_err(p, "HEAD blob", digest, &a, e);
	if (mountable && p->from[0])
		snprintf(path, sizeof(path), "/v2/%s/blobs/uploads/?mount=%s&from=%s",
		    p->g.repo, digest, p->from);
	else
		snprintf(path, sizeof(path), "/v2/%s/blobs/uploads/", p->g.repo);
	if (hypr_registry_send(&p->g, "POST", path, NULL, NULL, 0, &a, e) < 0)
		return hypr_err_prefix(e, "blob %s", digest);
	if (a.status == 201) {
		char msg[300];

		if (a.digest[0] && strcmp(a.digest, digest) != 0)
			return hypr_err_set(e, HYPR_EXIT_SYSTEM,
			    "%s: blob %s: mounted as %s", p->g.domain, digest, a.digest);
		snprintf(msg, sizeof(msg), "Mounted from %s", p->from);
		push_say(p, digest, msg);
		push_count(p, &p->res->mounted);
		return 0;
	}
	if (a.status != 202 || !a.location[0])
		return push_answer_err(p, "upload of blob", digest, &a, e);
	snprintf(loc, sizeof(loc), "%s", a.location);
	snprintf(param, sizeof(param), "digest=%s", digest);
	for (int tries = 1;; tries++) {
		int rc;

		if (size > p->chunk && push_chunks(p, s, digest, size, loc, sizeof(loc), e) < 0)
			return -1;
		with_param(loc, param, url, sizeof(url));
		if (size > p->chunk || s->fd >= 0) {
			/* a file curl reads itself */
			rc = hypr_registry_send(&p->g, "PUT", url, octet,
			    size > p->chunk ? NULL : s->file, size > p->chunk ? 0 : size, &a, e);
		} else {
			struct range_feed rf = { s, 0, size };
			struct hypr_registry_body body = { feed_range, &rf, (int64_t)size, 0 };

			rc = hypr_registry_send_body(&p->g, "PUT", url, octet, &body, &a, e);
		}
		if (rc == 0 && a.status == 201)
			break;
		/* the answer was lost, or the session with it (a retried PUT
		 * finds its upload gone): the registry may have the blob */
		if (blob_there(p, digest)) {
			a.digest[0] = '\0';
			break;
		}
		if (tries >= p->g.retries) {
			if (rc < 0)
				return hypr_err_prefix(e, "blob %s", digest);
			return push_answer_err(p, "upload of blob", digest, &a, e);
		}
		memset(e, 0, sizeof(*e));
		if (start_upload(p, digest, loc, sizeof(loc), e) < 0)
			return -1;
		push_say(p, digest, "Restarting the upload");
		backoff_ms(100u << tries);
	}
	if (a.digest[0] && strcmp(a.digest, digest) != 0)
		return hypr_err_set(e, HYPR_EXIT_SYSTEM, "%s: blob %s: the registry stored %s",
		    p->g.domain, digest, a.digest);
	push_say(p, digest, "Pushed");
	push_count(p, &p->res->pushed);
	return 0;
}

int
push_blob(struct push *p, const char *file, const char *digest, uint64_t size,
    int mountable, struct hypr_err *e)
{
	struct src s = { .fd = open(file, O_RDONLY | O_CLOEXEC), .file = file };
	int r;

	if (s.fd < 0)
		return hypr_err_errno(e, HYPR_EXIT_SYSTEM, "%s", file);
	r = push_blob_src(p, &s, digest, size, mountable, e);
	close(s.fd);
	return r;
}

/* Push a small blob held in memory. */
int
push_buf(struct push *p, const char *buf, size_t len, char digest[HYPR_DIGEST_LEN + 1],
    struct hypr_err *e)
{
	struct src s = { .fd = -1, .mem = buf, .n = len };

	if (hypr_digest_buf(buf, len, digest, e) < 0)
		return -1;
	return push_blob_src(p, &s, digest, len, 0, e);
}

/* The stored tar gzip'd (gzip.h) into a temp file; its digest and size. */
int
push_gzip_file(struct push *p, const char *src, char *out, size_t n,
    char digest[HYPR_DIGEST_LEN + 1], uint64_t *size, struct hypr_err *e)
{
	int fd;

	if (hypr_root_tmp(p->root, out, n, e, "push-gz.XXXXXX") < 0)
		return -1;
	if ((fd = mkstemp(out)) < 0)
		return hypr_err_errno(e, HYPR_EXIT_SYSTEM, "%s", out);
	close(fd);
	if (hypr_gzip_file(src, out, 0, e) < 0)
		return hypr_err_prefix(e, "layer %s", src);
	if (hypr_digest_file(out, digest, size, e) < 0) {
		unlink(out);
		return -1;
	}
	return 0;
}

/* Read from fd until buf holds cap bytes or the end; *eof at the end. */
static ssize_t
fill(int fd, char *buf, size_t cap, int *eof)
{
	size_t n = 0;

	while (n < cap) {
		ssize_t k = read(fd, buf + n, cap - n);

		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return -1;
		if (k == 0) {
			*eof = 1;
			break;
		}
		n += (size_t)k;
	}
	return (ssize_t)n;
}

/* A stored tar gzip'd on its way up, with no file in between: gzip.h's
 * workers read the tar; what they write is hashed and sent a window at a time (at
 * most p->chunk, 32 MiB) as PATCH chunks, or, when it all fits in the
 * first window, as any small blob (HEAD, then one PUT). Progress names the
 * layer by its tar's digest until the gzip digest is known. The workers'
 * status is checked before the upload is committed. Returns 0 with gd and *gsize;
 * 1 when the registry dropped the upload (the caller starts over from a
 * file: a stream cannot go back); -1 with e. */
int
push_stream_layer(struct push *p, const char *blob, const char *d,
    char gd[HYPR_DIGEST_LEN + 1], uint64_t *gsize, struct hypr_err *e)
{
	size_t cap = p->chunk < (32u << 20) ? (size_t)p->chunk : (32u << 20);
	char *buf = malloc(cap), loc[2048] = "", url[2300], param[128];
	const char *octet[] = { "Content-Type: application/octet-stream", NULL };
	struct hypr_registry_answer a;
	struct hypr_sha256 sha;
	uint64_t off = 0;
	int from = -1, eof = 0, drops = 0, r = -1, hashing = 0;
	struct hypr_gzip *gz = NULL;

	if (buf == NULL)
		return hypr_err_set(e, HYPR_EXIT_SYSTEM, "out of memory");
	if (hypr_sha256_init(&sha, e) < 0)
		goto out;
	hashing = 1;
	if (hypr_gzip_start(blob, &gz, &from, e) < 0) {
		hypr_err_prefix(e, "layer %s", d);
		goto out;
	}
	while (!eof) {
		ssize_t n = fill(from, buf, cap, &eof);
		struct src s = { .fd = -1, .mem = buf, .base = off, .n = (uint64_t)(n > 0 ? n : 0) };
		int rc;

		if (n < 0) {
			hypr_err_errno(e, HYPR_EXIT_SYSTEM, "gzip of layer %s", d);
			goto out;
		}
		hypr_sha256_update(&sha, buf, (size_t)n);
		if (eof) {
			/* the workers' word before anything is committed */
			close(from);
			from = -1;
			r = hypr_gzip_finish(gz, e);
			gz = NULL;
			if (r < 0) {
				hypr_err_prefix(e, "layer %s", d);
				goto out;
			}
			r = -1;
			hypr_sha256_final(&sha, gd);
			hashing = 0;
			*gsize = off + (uint64_t)n;
			if (off == 0) {
				/* all of it in memory: any small blob */
				r = push_blob_src(p, &s, gd, (uint64_t)n, 0, e);
				goto out;
			}
		}
		if (!loc[0] && start_upload(p, d, loc, sizeof(loc), e) < 0)
			goto out;
		if ((rc = send_range(p, &s, d, off, off + (uint64_t)n, 0, loc, sizeof(loc), &drops,
		    e)) != 0) {
			r = rc;
			goto out;
		}
		off += (uint64_t)n;
	}
	snprintf(param, sizeof(param), "digest=%s", gd);
	with_param(loc, param, url, sizeof(url));
	if (hypr_registry_send(&p->g, "PUT", url, octet, NULL, 0, &a, e) < 0 ||
	    a.status != 201) {
		/* the answer was lost: the registry may have it */
		if (!blob_there(p, gd)) {
			if (e->msg[0] == '\0')
				push_answer_err(p, "upload of blob", gd, &a, e);
			goto out;
		}
		memset(e, 0, sizeof(*e));
		a.digest[0] = '\0';
	}
	if (a.digest[0] && strcmp(a.digest, gd) != 0) {
		hypr_err_set(e, HYPR_EXIT_SYSTEM, "%s: blob %s: the registry stored %s",
		    p->g.domain, gd, a.digest);
		goto out;
	}
	push_say(p, gd, "Pushed");
	push_count(p, &p->res->pushed);
	r = 0;
out:
	if (hashing)
		hypr_sha256_abort(&sha);
	if (from >= 0)
		close(from);
	if (gz != NULL) {
		struct hypr_err ig = { 0 };

		(void)hypr_gzip_finish(gz, &ig);
	}
	free(buf);
	return r;
}

