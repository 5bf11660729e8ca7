#include "cas.h"
#include "oci.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <stdlib.h>
#include <unistd.h>

#include "fsutil.h"
#include "net.h"
#include "stream.h"

int
hypr_oci_is_index(const char *mt)
{
	return mt && (!strcmp(mt, HYPR_MT_OCI_INDEX) || !strcmp(mt, HYPR_MT_DOCKER_LIST));
}

int
hypr_oci_is_manifest(const char *mt)
{
	return mt && (!strcmp(mt, HYPR_MT_OCI_MANIFEST) ||
	    !strcmp(mt, HYPR_MT_DOCKER_MANIFEST));
}

int
hypr_oci_kind(json_t *doc, const char *hint, char *mt, size_t n, struct hypr_err *e)
{
	const char *m = hypr_json_str(doc, "mediaType");

	if (hypr_oci_is_index(hint) || hypr_oci_is_manifest(hint)) {
		if (hint != mt)
			snprintf(mt, n, "%s", hint);
		return 0;
	}
	if (hypr_oci_is_index(m) || hypr_oci_is_manifest(m)) {
		snprintf(mt, n, "%s", m);
		return 0;
	}
	if (hypr_json_int(doc, "schemaVersion", 0) == 1)
		return hypr_err_set(e, HYPR_EXIT_INPUT,
		    "Docker schema 1 manifests are not supported");
	if (json_is_array(json_object_get(doc, "manifests"))) {
		snprintf(mt, n, "%s", HYPR_MT_OCI_INDEX);
		return 0;
	}
	if (json_is_object(json_object_get(doc, "config")) &&
	    json_is_array(json_object_get(doc, "layers"))) {
		snprintf(mt, n, "%s", HYPR_MT_OCI_MANIFEST);
		return 0;
	}
	return hypr_err_set(e, HYPR_EXIT_INPUT, "not an image manifest or index (%s)",
	    m ? m : hint && *hint ? hint : "no media type");
}

int
hypr_oci_check_desc(json_t *d, const char *what, struct hypr_err *e)
{
	json_t *sz = json_object_get(d, "size");

	if (!json_is_object(d) || !hypr_digest_valid(hypr_json_str(d, "digest")))
		return hypr_err_set(e, HYPR_EXIT_INPUT, "%s: missing or bad digest", what);
	if (!json_is_integer(sz) || json_integer_value(sz) < 0)
		return hypr_err_set(e, HYPR_EXIT_INPUT, "%s: missing or bad size", what);
	return 0;
}

int
hypr_oci_select(json_t *index, const struct hypr_platform *p, json_t **desc,
    struct hypr_err *e)
{
	json_t *ms = json_object_get(index, "manifests"), *d;
	char have[512] = "", want[128];
	size_t i, k = 0;

	if (!json_is_array(ms))
		return hypr_err_set(e, HYPR_EXIT_INPUT, "index without \"manifests\"");
	json_array_foreach(ms, i, d) {
		json_t *pl = json_object_get(d, "platform");
		const char *os = hypr_json_str(pl, "os"), *arch = hypr_json_str(pl, "architecture");
		const char *ref_type = hypr_json_str(json_object_get(d, "annotations"),
		    "vnd.docker.reference.type");

		if ((ref_type && !strcmp(ref_type, "attestation-manifest")) ||
		    (os && arch && !strcmp(os, "unknown") && !strcmp(arch, "unknown")))
			continue;
		if (hypr_platform_match(p, os, arch, hypr_json_str(pl, "variant"))) {
			if (hypr_oci_check_desc(d, "index entry", e) < 0)
				return -1;
			*desc = d;
			return 0;
		}
		if (os && arch && k + strlen(os) + strlen(arch) + 4 < sizeof(have))
			k += (size_t)snprintf(have + k, sizeof(have) - k, "%s%s/%s%s%s",
			    k ? ", " : "", os, arch,
			    hypr_json_str(pl, "variant") ? "/" : "",
			    hypr_json_str(pl, "variant") ? hypr_json_str(pl, "variant") : "");
	}
	hypr_platform_string(p, want, sizeof(want));
	return hypr_err_set(e, HYPR_EXIT_INPUT, "no image for platform %s (index has: %s)",
	    want, k ? have : "none");
}

int
hypr_oci_check_manifest(json_t *m, struct hypr_err *e)
{
	json_t *layers = json_object_get(m, "layers"), *l;
	size_t i;

	if (hypr_json_int(m, "schemaVersion", 0) != 2)
		return hypr_err_set(e, HYPR_EXIT_INPUT, "manifest: schemaVersion is not 2");
	if (hypr_oci_check_desc(json_object_get(m, "config"), "manifest config", e) < 0)
		return -1;
	if (!json_is_array(layers))
		return hypr_err_set(e, HYPR_EXIT_INPUT, "manifest: no \"layers\" array");
	json_array_foreach(layers, i, l) {
		if (hypr_oci_check_desc(l, "manifest layer", e) < 0)
			return -1;
	}
	return 0;
}

/* refs/<domain>/<path>/_tags/<tag>: "_tags" cannot be a path component
 * (components start with [a-z0-9]) and tags cannot start with '.'. */
static int
tagref_path(const struct hypr_root *r, const struct hypr_ref *ref, char *buf,
    size_t n, struct hypr_err *e)
{
	if (!ref->tag[0] || ref->tag[0] == '.' || strstr(ref->domain, ".."))
		return hypr_err_set(e, HYPR_EXIT_INPUT, "reference has no usable tag");
	if (hypr_root_path(r, buf, n, "refs/%s/%s/_tags/%s", ref->domain, ref->path,
	    ref->tag) < 0)
		return hypr_err_set(e, HYPR_EXIT_SYSTEM, "store path too long");
	return 0;
}

int
hypr_tagref_get(const struct hypr_root *r, const struct hypr_ref *ref,
    char digest[HYPR_DIGEST_LEN + 1], struct hypr_err *e)
{
	char path[HYPR_PATH_BUF + 128], *buf = NULL;
	size_t len;
	json_t *j;
	const char *d;

	if (tagref_path(r, ref, path, sizeof(path), e) < 0)
		return -1;
	if (access(path, F_OK) != 0)
		return 0;
	if (hypr_read_file(path, 1 << 16, &buf, &len, e) < 0)
		return -1;
	j = json_loadb(buf, len, 0, NULL);
	free(buf);
	d = hypr_json_str(j, "digest");
	if (!hypr_digest_valid(d)) {
		json_decref(j);
		return 0;	/* a damaged record is a cache miss */
	}
	snprintf(digest, HYPR_DIGEST_LEN + 1, "%s", d);
	json_decref(j);
	return 1;
}

int
hypr_tagref_set(const struct hypr_root *r, const struct hypr_ref *ref,
    const char *digest, const char *media_type, struct hypr_err *e)
{
	char path[HYPR_PATH_BUF + 128], name[600], *s, *slash;
	json_t *j;
	int rc;

	if (tagref_path(r, ref, path, sizeof(path), e) < 0)
		return -1;
	slash = strrchr(path, '/');
	*slash = '\0';
	if (hypr_mkdir_p(path, 0755, e) < 0)
		return -1;
	*slash = '/';
	hypr_ref_name(ref, name, sizeof(name));
	j = json_pack("{s:s,s:s,s:s,s:s,s:I}", "name", name, "tag", ref->tag,
	    "digest", digest, "media_type", media_type ? media_type : "",
	    "time", (json_int_t)time(NULL));
	s = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	if (!s)
		return hypr_err_set(e, HYPR_EXIT_SYSTEM, "out of memory");
	rc = hypr_write_atomic(path, s, strlen(s), 0644, e);
	free(s);
	return rc;
}

int
hypr_tagref_del(const struct hypr_root *r, const struct hypr_ref *ref,
    struct hypr_err *e)
{
	char path[HYPR_PATH_BUF + 128], top[HYPR_PATH_BUF], *slash;

	if (tagref_path(r, ref, path, sizeof(path), e) < 0 ||
	    hypr_root_path(r, top, sizeof(top), "refs") < 0)
		return -1;
	if (unlink(path) < 0) {
		if (errno == ENOENT)
			return 0;
		return hypr_err_errno(e, HYPR_EXIT_SYSTEM, "removing %s", path);
	}
	/* refs/<domain>/<path>/_tags: up to refs/, while empty */
	while ((slash = strrchr(path, '/')) != NULL && slash > path + strlen(top)) {
		*slash = '\0';
		if (rmdir(path) < 0)
			break;
	}
	return 1;
}

/* ---- diff_ids: the digest of a layer's uncompressed tar ---- */

#define DIFF_BUF (1u << 20)

/* Hash what fd holds after decompression (gzip, zstd, xz, bzip2 or none,
 * told by its first bytes, as Docker does), at most max bytes of it; w
 * (or NULL) gets those bytes too, and then its running digest is the one
 * (the bytes are hashed once: hypr_blob_digest gives out). */
static int
diff_of_fd(int fd, uint64_t max, char out[HYPR_DIGEST_LEN + 1], uint64_t *usize,
    struct hypr_blob_writer *w, struct hypr_err *e)
{
	struct archive *a = archive_read_new();
	struct archive_entry *ent;
	struct hypr_sha256 own = { 0 }, *sha = w ? &w->sha : &own;
	const void *blk;
	size_t len;
	la_int64_t off;
	int r, rc = -1;

	if (a == NULL)
		return hypr_err_set(e, HYPR_EXIT_SYSTEM, "out of memory");
	/* no filter_all: some of its filters run external programs */
	archive_read_support_filter_gzip(a);
	archive_read_support_filter_zstd(a);
	archive_read_support_filter_xz(a);
	archive_read_support_filter_bzip2(a);
	archive_read_support_format_raw(a);
	archive_read_support_format_empty(a);
	if (!w && hypr_sha256_init(&own, e) < 0) {
		archive_read_free(a);
		return -1;
	}
	if (archive_read_open_fd(a, fd, DIFF_BUF) != ARCHIVE_OK ||
	    ((r = archive_read_next_header(a, &ent)) != ARCHIVE_OK && r != ARCHIVE_EOF)) {
		hypr_err_set(e, HYPR_EXIT_INPUT, "cannot decompress: %s",
		    archive_error_string(a) ? archive_error_string(a) : "unknown format");
		goto out;
	}
	while (r == ARCHIVE_OK &&
	    (r = archive_read_data_block(a, &blk, &len, &off)) == ARCHIVE_OK) {
		if (!w)
			hypr_sha256_update(&own, blk, len);
		else if (hypr_blob_write(w, blk, len, e) < 0)
			goto out;
		if (sha->bytes > max) {
			char m[64];

			hypr_net_size_text(max, m, sizeof(m));
			hypr_err_set(e, HYPR_EXIT_INPUT, "decompresses to more than %s", m);
			goto out;
		}
	}
	if (r != ARCHIVE_EOF) {
		hypr_err_set(e, HYPR_EXIT_INPUT, "cannot decompress: %s",
		    archive_error_string(a) ? archive_error_string(a) : "truncated");
		goto out;
	}
	if (usize)
		*usize = sha->bytes;
	if (w)
		hypr_blob_digest(w, out);
	else
		hypr_sha256_final(&own, out);	/* own.ctx is NULL after it */
	rc = 0;
out:
	if (own.ctx)
		hypr_sha256_abort(&own);
	archive_read_free(a);
	return rc;
}

struct hypr_diffid {
	pthread_t th;
	int rfd, wfd;
	uint64_t max;
	int rc;
	char out[HYPR_DIGEST_LEN + 1];
	struct hypr_err err;
};

static void *
diff_thread(void *arg)
{
	struct hypr_diffid *d = arg;
	char buf[65536];

	d->rc = diff_of_fd(d->rfd, d->max, d->out, NULL, NULL, &d->err);
	/* whatever follows (or all of it, after an error) is read away, so
	 * the feeder never blocks on a full pipe */
	for (;;) {
		ssize_t n = read(d->rfd, buf, sizeof(buf));

		if (n == 0 || (n < 0 && errno != EINTR))
			break;
	}
	return NULL;
}

int
hypr_diffid_start(struct hypr_diffid **dp, uint64_t max, struct hypr_err *e)
{
	struct hypr_diffid *d = calloc(1, sizeof(*d));
	int p[2];

	*dp = NULL;
	if (d == NULL)
		return hypr_err_set(e, HYPR_EXIT_SYSTEM, "out of memory");
	if (pipe2(p, O_CLOEXEC) < 0) {
		free(d);
		return hypr_err_errno(e, HYPR_EXIT_SYSTEM, "pipe");
	}
	fcntl(p[1], F_SETPIPE_SZ, 1 << 20);
	d->rfd = p[0];
	d->wfd = p[1];
	d->max = max;
	if ((errno = pthread_create(&d->th, NULL, diff_thread, d)) != 0) {
		close(p[0]);
		close(p[1]);
		free(d);
		return hypr_err_errno(e, HYPR_EXIT_SYSTEM, "starting a thread");
	}
	*dp = d;
	return 0;
}

int
hypr_diffid_feed(struct hypr_diffid *d, const void *buf, size_t n, struct hypr_err *e)
{
	if (hypr_write_all(d->wfd, buf, n) < 0)
		return hypr_err_errno(e, HYPR_EXIT_SYSTEM, "decompressing");
	return 0;
}

static void
diff_join(struct hypr_diffid *d)
{
	close(d->wfd);
	pthread_join(d->th, NULL);
	close(d->rfd);
}

int
hypr_diffid_finish(struct hypr_diffid *d, char out[HYPR_DIGEST_LEN + 1],
    struct hypr_err *e)
{
	int rc;

	diff_join(d);
	rc = d->rc;
	if (rc < 0)
		*e = d->err;
	else
		memcpy(out, d->out, HYPR_DIGEST_LEN + 1);
	free(d);
	return rc;
}

void
hypr_diffid_abort(struct hypr_diffid *d)
{
	if (d == NULL)
		return;
	diff_join(d);
	free(d);
}

/* $HYPR_ROOT/diffids/<hex of the layer blob> holds its diff_id: a fact of
 * the content, computed once. */
static int
diff_record_path(const struct hypr_root *r, const char *layer, char *buf, size_t n,
    struct hypr_err *e)
{
	if (!hypr_digest_valid(layer))
		return hypr_err_set(e, HYPR_EXIT_INPUT, "bad layer digest '%s'", layer);
	if (hypr_root_path(r, buf, n, "diffids/%s", hypr_digest_hex(layer)) < 0)
		return hypr_err_set(e, HYPR_EXIT_SYSTEM, "store path too long");
	return 0;
}

int
hypr_diffid_put(const struct hypr_root *r, const char *layer, const char *diff,
    struct hypr_err *e)
{
	char path[HYPR_PATH_BUF + 128], line[HYPR_DIGEST_LEN + 2], *slash;

	if (diff_record_path(r, layer, path, sizeof(path), e) < 0)
		return -1;
	slash = strrchr(path, '/');
	*slash = '\0';
	if (hypr_mkdir_p(path, 0755, e) < 0)
		return -1;
	*slash = '/';
	snprintf(line, sizeof(line), "%s\n", diff);
	return hypr_write_atomic(path, line, strlen(line), 0644, e);
}

int
hypr_diffid_lookup(const struct hypr_root *r, const char *layer, char out[HYPR_DIGEST_LEN + 1])
{
	char path[HYPR_PATH_BUF + 128], got[HYPR_DIGEST_LEN + 2] = "";
	struct hypr_err ig = { 0 };
	ssize_t n;
	int fd;

	if (diff_record_path(r, layer, path, sizeof(path), &ig) < 0 ||
	    (fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return 0;
	n = read(fd, got, sizeof(got) - 1);
	close(fd);
	if (n != HYPR_DIGEST_LEN + 1 || got[HYPR_DIGEST_LEN] != '\n')
		return 0;
	got[HYPR_DIGEST_LEN] = '\0';
	if (!hypr_digest_valid(got))
		return 0;
	memcpy(out, got, HYPR_DIGEST_LEN + 1);
	return 1;
}

int
hypr_diffid_get(const struct hypr_root *r, const char *layer, uint64_t max,
    char out[HYPR_DIGEST_LEN + 1], struct hypr_err *e)
{
	char blob[HYPR_PATH_BUF + 128];
	int fd, rc;

	if (hypr_diffid_lookup(r, layer, out))
		return 0;
	/* none (or damaged): decompress the blob once */
	if (hypr_blob_path(r, layer, blob, sizeof(blob), e) < 0)
		return -1;
	if ((fd = open(blob, O_RDONLY | O_CLOEXEC)) < 0)
		return hypr_err_errno(e, errno == ENOENT ? HYPR_EXIT_INPUT : HYPR_EXIT_SYSTEM,
		    "layer %s", layer);
	rc = diff_of_fd(fd, max, out, NULL, NULL, e);
	close(fd);
	if (rc < 0)
		return -1;
	return hypr_diffid_put(r, layer, out, e);
}

/* Whether the first bytes of fd are gzip, zstd, xz or bzip2's magic. */
static int
compressed(int fd)
{
	unsigned char m[4];

	if (pread(fd, m, sizeof(m), 0) != (ssize_t)sizeof(m))
		return 0;
	return (m[0] == 0x1f && m[1] == 0x8b) ||
	    (m[0] == 0x28 && m[1] == 0xb5 && m[2] == 0x2f && m[3] == 0xfd) ||
	    (m[0] == 0xfd && m[1] == '7' && m[2] == 'z' && m[3] == 'X') ||
	    (m[0] == 'B' && m[1] == 'Z' && m[2] == 'h');
}

int
hypr_layer_unpack(const struct hypr_root *r, const char *layer, const char *want,
    char got[HYPR_DIGEST_LEN + 1], struct hypr_err *e)
{
	char p[HYPR_PATH_BUF], diff[HYPR_DIGEST_LEN + 1], d[HYPR_DIGEST_LEN + 1];
	struct hypr_blob_writer w;
	int fd, known = 0, rc;

	if (want == NULL && (known = hypr_diffid_lookup(r, layer, diff)))
		want = diff;
	if (hypr_blob_path(r, layer, p, sizeof(p), e) < 0)
		return -1;
	if ((fd = open(p, O_RDONLY | O_CLOEXEC)) < 0)
		return hypr_err_errno(e, errno == ENOENT ? HYPR_EXIT_INPUT : HYPR_EXIT_SYSTEM,
		    "layer %s", layer);
	if (hypr_blob_begin(&w, r, e) < 0) {
		close(fd);
		return -1;
	}
	rc = diff_of_fd(fd, UINT64_MAX, d, NULL, &w, e);
	close(fd);
	if (rc < 0) {
		hypr_blob_abort(&w);
		return hypr_err_prefix(e, "layer %s", layer);
	}
	if (want && strcmp(d, want) != 0) {
		hypr_blob_abort(&w);
		return hypr_err_set(e, HYPR_EXIT_INPUT, "layer %s decompresses to %s, not its "
		    "diff_id %s", layer, d, want);
	}
	if (hypr_blob_commit(&w, d, NULL, NULL, e) < 0 ||
	    (!known && hypr_diffid_put(r, layer, d, e) < 0))
		return -1;
	if (got)
		memcpy(got, d, HYPR_DIGEST_LEN + 1);
	return 0;
}

int
hypr_layer_open(const struct hypr_root *r, const char *layer, struct hypr_err *e)
{
	char p[HYPR_PATH_BUF], diff[HYPR_DIGEST_LEN + 1];
	int fd, pfd;

	if (hypr_blob_path(r, layer, p, sizeof(p), e) < 0)
		return -1;
	if ((fd = open(p, O_RDONLY | O_CLOEXEC)) < 0) {
		if (errno == ENOENT)
			return hypr_err_set(e, HYPR_EXIT_INPUT, "layer %s is not in the store", layer);
		return hypr_err_errno(e, HYPR_EXIT_SYSTEM, "%s", p);
	}
	if (!compressed(fd))
		return fd;
	if (!hypr_diffid_lookup(r, layer, diff) || strcmp(diff, layer) == 0 ||
	    hypr_blob_path(r, diff, p, sizeof(p), e) < 0 ||
	    (pfd = open(p, O_RDONLY | O_CLOEXEC)) < 0) {
		/* unpacked once; a disk too full for that reads the blob */
		if (hypr_layer_unpack(r, layer, NULL, diff, e) < 0) {
			if (e->code != HYPR_EXIT_SYSTEM) {
				close(fd);
				return -1;
			}
			memset(e, 0, sizeof(*e));
			return fd;
		}
		if (hypr_blob_path(r, diff, p, sizeof(p), e) < 0 ||
		    (pfd = open(p, O_RDONLY | O_CLOEXEC)) < 0) {
			memset(e, 0, sizeof(*e));
			return fd;
		}
	}
	close(fd);
	return pfd;
}
