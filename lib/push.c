/* push.c - a stored image out to a registry (push.h). */
#include "push.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fsutil.h"
#include "image.h"
#include "net.h"
#include "ref.h"
#include "registry.h"
#include "stream.h"
#include "push_int.h"

#define MT_MANIFEST "application/vnd.oci.image.manifest.v1+json"
#define MT_INDEX "application/vnd.oci.image.index.v1+json"
#define MT_CONFIG "application/vnd.oci.image.config.v1+json"
#define MT_GZIP "application/vnd.oci.image.layer.v1.tar+gzip"
#define MT_EMPTY "application/vnd.oci.empty.v1+json"

json_t *
hypr_push_config(json_t *m, struct hypr_err *e)
{
	json_t *c, *diff = json_array(), *hist = json_array(), *layers, *h, *l;
	size_t i, nonempty = 0, nl;
	const char *base = hypr_json_str(json_object_get(m, "base"), "ref");

	if (!json_is_object(m)) {
		hypr_err_set(e, HYPR_EXIT_INPUT, "image manifest is not an object");
		goto fail;
	}
	layers = json_object_get(m, "layers");
	nl = json_array_size(layers);
	json_array_foreach(layers, i, l) {
		const char *d = hypr_json_str(l, "diff_id");

		if (!d || !hypr_digest_valid(d)) {
			hypr_err_set(e, HYPR_EXIT_INPUT, "image %s: layer %zu has no diff_id",
			    hypr_json_str(m, "id"), i);
			goto fail;
		}
		json_array_append_new(diff, json_string(d));
	}
	json_array_foreach(json_object_get(m, "history"), i, h)
		if (!json_is_true(json_object_get(h, "empty_layer")))
			nonempty++;
	/* the base image's layers first, one entry each */
	for (i = nonempty; i < nl; i++) {
		json_t *b = json_object();
		char by[600];

		snprintf(by, sizeof(by), "FROM %s", base ? base : "scratch");
		if (json_is_string(json_object_get(m, "created")))
			json_object_set(b, "created", json_object_get(m, "created"));
		json_object_set_new(b, "created_by", json_string(by));
		json_object_set_new(b, "comment", json_string("base layer"));
		json_array_append_new(hist, b);
	}
	json_array_foreach(json_object_get(m, "history"), i, h)
		json_array_append(hist, h);
	c = json_object();
	json_object_set(c, "created", json_object_get(m, "created"));
	json_object_set_new(c, "architecture",
	    json_string(hypr_json_str(m, "architecture") ? hypr_json_str(m, "architecture") :
	    "amd64"));
	json_object_set_new(c, "os",
	    json_string(hypr_json_str(m, "os") ? hypr_json_str(m, "os") : "linux"));
	json_object_set(c, "config", json_is_object(json_object_get(m, "config")) ?
	    json_object_get(m, "config") : json_object());
	json_object_set_new(c, "rootfs", json_pack("{s:s,s:o}", "type", "layers",
	    "diff_ids", diff));
	json_object_set_new(c, "history", hist);
	return c;
fail:
	json_decref(diff);
	json_decref(hist);
	return NULL;
}


/* Write buf to a new temp file; path gets its name. */
static int
tmp_write(struct push *p, const char *buf, size_t len, char *path, size_t n,
    struct hypr_err *e)
{
	int fd;

	if (hypr_root_tmp(p->root, path, n, e, "push.XXXXXX") < 0)
		return -1;
	if ((fd = mkstemp(path)) < 0)
		return hypr_err_errno(e, HYPR_EXIT_SYSTEM, "%s", path);
	if (write(fd, buf, len) != (ssize_t)len || close(fd) != 0) {
		hypr_err_errno(e, HYPR_EXIT_SYSTEM, "%s", path);
		unlink(path);
		return -1;
	}
	return 0;
}

/* PUT a manifest under reference (a tag or its digest). */
static int
put_manifest(struct push *p, const char *body, const char *media_type,
    const char *reference, char digest[HYPR_DIGEST_LEN + 1], int *subject,
    struct hypr_err *e)
{
	struct hypr_registry_answer a;
	char path[HYPR_PATH_BUF], url[1024], ct[160];
	const char *hdr[] = { ct, NULL };
	size_t len = strlen(body);
	int r;

	snprintf(ct, sizeof(ct), "Content-Type: %s", media_type);
	if (hypr_digest_buf(body, len, digest, e) < 0 ||
	    tmp_write(p, body, len, path, sizeof(path), e) < 0)
		return -1;
	snprintf(url, sizeof(url), "/v2/%s/manifests/%s", p->g.repo,
	    reference ? reference : digest);
	r = hypr_registry_send(&p->g, "PUT", url, hdr, path, len, &a, e);
	unlink(path);
	if (r < 0)
		return hypr_err_prefix(e, "manifest %s", digest);
	if (a.status != 201)
		return push_answer_err(p, "manifest", digest, &a, e);
	if (a.digest[0] && strcmp(a.digest, digest) != 0)
		return hypr_err_set(e, HYPR_EXIT_SYSTEM,
		    "%s: manifest %s: the registry stored %s", p->g.domain, digest, a.digest);
	if (subject)
		*subject = a.subject[0] != '\0';
	return 0;
}

static int
is_gzip_type(const char *mt)
{
	return mt && (strstr(mt, "tar+gzip") || strstr(mt, "tar.gzip"));
}

static int
is_tar_type(const char *mt)
{
	return !mt || !strcmp(mt, "application/vnd.oci.image.layer.v1.tar") ||
	    !strcmp(mt, "application/vnd.docker.image.rootfs.diff.tar");
}

/* One layer: a stored gzip blob as is, a stored tar gzip'd; *out gets its
 * descriptor. */
static int
push_layer(struct push *p, json_t *l, json_t **out, struct hypr_err *e)
{
	const char *d = hypr_json_str(l, "digest"), *mt = hypr_json_str(l, "media_type");
	char blob[HYPR_PATH_BUF], gz[HYPR_PATH_BUF], gd[HYPR_DIGEST_LEN + 1];
	char memo[HYPR_PATH_BUF];
	uint64_t size;
	struct stat st;
	FILE *mf;
	int r;

	if (!d || !hypr_digest_valid(d))
		return hypr_err_set(e, HYPR_EXIT_INPUT, "image manifest: a layer has no digest");
	if (hypr_blob_path(p->root, d, blob, sizeof(blob), e) < 0)
		return -1;
	if (stat(blob, &st) != 0)
		return hypr_err_errno(e, HYPR_EXIT_INPUT, "layer %s is not in the store", d);
	if (is_gzip_type(mt) || (mt && strstr(mt, "zstd"))) {
		const char *oci = is_gzip_type(mt) ? MT_GZIP :
		    "application/vnd.oci.image.layer.v1.tar+zstd";

		if (push_blob(p, blob, d, (uint64_t)st.st_size, 1, e) < 0)
			return -1;
		*out = (json_pack("{s:s,s:s,s:I}", "mediaType", oci,
		    "digest", d, "size", (json_int_t)st.st_size));
		return 0;
	}
	if (!is_tar_type(mt))
		return hypr_err_set(e, HYPR_EXIT_INPUT, "layer %s: cannot push media type %s",
		    d, mt);
	/* pushed/<hex>: the digest and size of the tar gzip'd by an earlier
	 * push; when the registry has that blob, nothing is compressed */
	hypr_root_path(p->root, memo, sizeof(memo), "pushed/%s", hypr_digest_hex(d));
	if ((mf = fopen(memo, "re")) != NULL) {
		unsigned long long ms;

		if (fscanf(mf, "%71s %llu", gd, &ms) == 2 && hypr_digest_valid(gd)) {
			struct hypr_registry_answer a;
			char path[1024];

			snprintf(path, sizeof(path), "/v2/%s/blobs/%s", p->g.repo, gd);
			if (hypr_registry_send(&p->g, "HEAD", path, NULL, NULL, 0, &a, e) < 0) {
				fclose(mf);
				return hypr_err_prefix(e, "blob %s", gd);
			}
			if (a.status == 200) {
				fclose(mf);
				push_say(p, gd, "Layer already exists");
				push_count(p, &p->res->skipped);
				*out = (json_pack("{s:s,s:s,s:I}",
				    "mediaType", MT_GZIP, "digest", gd, "size", (json_int_t)ms));
				return 0;
			}
		}
		fclose(mf);
	}
	if ((r = push_stream_layer(p, blob, d, gd, &size, e)) == 1) {
		/* the registry dropped the upload: from a file, which can go
		 * back to any byte */
		memset(e, 0, sizeof(*e));
		if (push_gzip_file(p, blob, gz, sizeof(gz), gd, &size, e) < 0)
			return -1;
		r = push_blob(p, gz, gd, size, 0, e);
		unlink(gz);
	}
	if (r < 0)
		return -1;
	{
		char line[128], dir[HYPR_PATH_BUF];
		struct hypr_err ig = { 0 };

		/* best effort: a lost memo costs a compression */
		hypr_root_path(p->root, dir, sizeof(dir), "pushed");
		if (mkdir(dir, 0755) == 0 || errno == EEXIST) {
			snprintf(line, sizeof(line), "%s %llu\n", gd, (unsigned long long)size);
			(void)hypr_write_atomic(memo, line, strlen(line), 0644, &ig);
		}
	}
	*out = (json_pack("{s:s,s:s,s:I}", "mediaType", MT_GZIP,
	    "digest", gd, "size", (json_int_t)size));
	return 0;
}

static char *
dumps(json_t *j)
{
	return json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
}

/* The referrers tag schema of OCI distribution 1.1 for a registry without
 * the referrers API: an index at tag sha256-<hex of subject> listing the
 * artifacts. */
static int
push_referrers_tag(struct push *p, const char *subject, json_t *desc, struct hypr_err *e)
{
	char tag[80], *old = NULL, mt[128], dg[HYPR_DIGEST_LEN + 1], *body;
	size_t len;
	json_t *ix = NULL, *list, *x;
	struct hypr_err ig = { 0 };
	size_t i;
	int r;

	snprintf(tag, sizeof(tag), "sha256-%s", hypr_digest_hex(subject));
	if (hypr_registry_manifest(&p->g, tag, &old, &len, mt, sizeof(mt), dg, &ig) == 0)
		ix = json_loadb(old, len, 0, NULL);
	free(old);
	if (!json_is_array(json_object_get(ix, "manifests"))) {
		json_decref(ix);
		ix = json_pack("{s:i,s:s,s:[]}", "schemaVersion", 2, "mediaType", MT_INDEX,
		    "manifests");
	}
	list = json_object_get(ix, "manifests");
	json_array_foreach(list, i, x)
		if (json_equal(x, desc)) {
			json_decref(ix);
			return 0;
		}
	json_array_append(list, desc);
	body = dumps(ix);
	json_decref(ix);
	r = put_manifest(p, body, MT_INDEX, tag, dg, NULL, e);
	free(body);
	return r;
}

/* The hypr manifest as it travels (no local tags): a pull stores it as
 * is and gets the same image ID. */
static char *
travelling_manifest(json_t *m)
{
	json_t *mc = json_deep_copy(m);
	char *ms;

	json_object_set_new(mc, "tags", json_array());
	ms = dumps(mc);
	json_decref(mc);
	return ms;
}

/* The image's squashfs file in the store, stat'd into st. */
static int
squashfs_file(struct push *p, json_t *m, char *file, size_t n, struct stat *st,
    struct hypr_err *e)
{
	json_t *sq = json_object_get(m, "squashfs");
	const char *d = hypr_json_str(sq, "digest");

	if (!d || !hypr_digest_valid(d) || !hypr_json_str(sq, "file"))
		return hypr_err_set(e, HYPR_EXIT_INPUT, "image %s: no squashfs in its manifest",
		    hypr_json_str(m, "id"));
	hypr_root_path(p->root, file, n, "images/%s", hypr_json_str(sq, "file"));
	if (stat(file, st) != 0)
		return hypr_err_errno(e, HYPR_EXIT_INPUT, "squashfs %s", file);
	return 0;
}

/* The squashfs as an OCI artifact whose subject is the image manifest
 * (its blobs already pushed, beside the layers: the squashfs, the hypr
 * manifest md of msl bytes, the empty config ed). */
static int
push_artifact(struct push *p, json_t *m, json_t *subject, const char *md, size_t msl,
    const char *ed, struct hypr_err *e)
{
	json_t *sq = json_object_get(m, "squashfs"), *art, *desc;
	const char *d = hypr_json_str(sq, "digest");
	char file[HYPR_PATH_BUF], *body, title[80];
	struct stat st;
	int has_subject = 0, r;

	if (squashfs_file(p, m, file, sizeof(file), &st, e) < 0)
		return -1;
	snprintf(title, sizeof(title), "%s.json", hypr_digest_hex(hypr_json_str(m, "id")));
	art = json_pack("{s:i,s:s,s:s,s:{s:s,s:s,s:i},s:[{s:s,s:s,s:I,s:{s:s,s:s,s:s}},"
	    "{s:s,s:s,s:I,s:{s:s}}],s:O,s:{s:s}}",
	    "schemaVersion", 2, "mediaType", MT_MANIFEST, "artifactType", HYPR_ARTIFACT_TYPE,
	    "config", "mediaType", MT_EMPTY, "digest", ed, "size", 2,
	    "layers", "mediaType", HYPR_ARTIFACT_TYPE, "digest", d,
	    "size", (json_int_t)st.st_size, "annotations",
	    "org.opencontainers.image.title", hypr_json_str(sq, "file"),
	    "vnd.hypr.squashfs.compression", hypr_json_str(sq, "compression") ?
	    hypr_json_str(sq, "compression") : "",
	    "vnd.hypr.image.id", hypr_json_str(m, "id"),
	    "mediaType", HYPR_MANIFEST_TYPE, "digest", md, "size", (json_int_t)msl,
	    "annotations", "org.opencontainers.image.title", title,
	    "subject", subject,
	    "annotations", "org.opencontainers.image.created",
	    hypr_json_str(m, "created") ? hypr_json_str(m, "created") : "");
	if (art == NULL)
		return hypr_err_set(e, HYPR_EXIT_SYSTEM, "out of memory");
	body = dumps(art);
	json_decref(art);
	r = put_manifest(p, body, MT_MANIFEST, NULL, p->res->artifact, &has_subject, e);
	if (r == 0) {
		desc = json_pack("{s:s,s:s,s:I,s:s}", "mediaType", MT_MANIFEST,
		    "digest", p->res->artifact, "size", (json_int_t)strlen(body),
		    "artifactType", HYPR_ARTIFACT_TYPE);
		push_say(p, p->res->artifact, "Pushed squashfs artifact");
		if (!has_subject)
			r = push_referrers_tag(p, hypr_json_str(subject, "digest"), desc, e);
		json_decref(desc);
	}
	free(body);
	return r;
}

/* A small blob pushed beside the layers: the config, the hypr manifest,
 * the artifact's empty config. */
struct small_blob {
	const char *buf;
	size_t len;
	char digest[HYPR_DIGEST_LEN + 1];
};

/* One blob of the push. */
struct job {
	enum { JOB_LAYER, JOB_SQUASHFS, JOB_SMALL } kind;
	size_t i;		/* the layer, or the small blob */
	uint64_t cost;
};

/* The blobs that go up in parallel, the costliest first. */
struct blobs {
	struct push *p;
	json_t *m, *layers, **desc;
	struct small_blob *small;
	struct job *jobs;
	size_t n, njobs, next;
	int failed;
	struct hypr_err err;
	pthread_mutex_t mu;
};

static int
run_job(struct blobs *b, const struct job *j, struct hypr_err *e)
{
	char file[HYPR_PATH_BUF];
	struct stat st;

	switch (j->kind) {
	case JOB_LAYER:
		return push_layer(b->p, json_array_get(b->layers, j->i), &b->desc[j->i], e);
	case JOB_SQUASHFS:
		if (squashfs_file(b->p, b->m, file, sizeof(file), &st, e) < 0)
			return -1;
		return push_blob(b->p, file, hypr_json_str(json_object_get(b->m, "squashfs"),
		    "digest"), (uint64_t)st.st_size, 0, e);
	case JOB_SMALL:
		return push_buf(b->p, b->small[j->i].buf, b->small[j->i].len,
		    b->small[j->i].digest, e);
	}
	return 0;
}

static void *
blob_worker(void *arg)
{
	struct blobs *b = arg;

	for (;;) {
		struct hypr_err e = { 0 };
		size_t i;

		pthread_mutex_lock(&b->mu);
		i = b->next++;
		if (b->failed || i >= b->njobs) {
			pthread_mutex_unlock(&b->mu);
			return NULL;
		}
		pthread_mutex_unlock(&b->mu);
		if (run_job(b, &b->jobs[i], &e) < 0) {
			pthread_mutex_lock(&b->mu);
			if (!b->failed)
				b->err = e;
			b->failed = 1;
			pthread_mutex_unlock(&b->mu);
			return NULL;
		}
	}
}

static int
by_cost(const void *a, const void *b)
{
	const struct job *x = a, *y = b;

	if (x->cost != y->cost)
		return x->cost < y->cost ? 1 : -1;
	return x->kind != y->kind ? (int)x->kind - (int)y->kind : (x->i > y->i) - (x->i < y->i);
}

/* Every layer, the squashfs and the small blobs, HYPR_PUSH_JOBS at a
 * time, the costliest first (a tar to gzip counts twice its size: gzip.h
 * runs at about the upload's speed), so the longest does not start last;
 * layers gets the layers' descriptors in order. */
static int
push_blobs(struct push *p, json_t *m, json_t *layers, struct small_blob *small,
    size_t nsmall, int squashfs, uint64_t jobs, struct hypr_err *e)
{
	struct blobs b = { .p = p, .m = m, .layers = json_object_get(m, "layers"),
	    .small = small };
	pthread_t th[16];
	char probe[HYPR_PATH_BUF], file[HYPR_PATH_BUF];
	struct stat st;
	size_t started = 0, k = 0;
	json_t *l;
	int rv = 0;

	b.n = json_array_size(b.layers);
	b.desc = calloc(b.n + 1, sizeof(*b.desc));
	b.jobs = calloc(b.n + 1 + nsmall, sizeof(*b.jobs));
	if (b.desc == NULL || b.jobs == NULL) {
		free(b.desc);
		free(b.jobs);
		return hypr_err_set(e, HYPR_EXIT_SYSTEM, "out of memory");
	}
	/* the temp directory is made once, before the threads share it */
	if (hypr_root_tmp(p->root, probe, sizeof(probe), e, "x") < 0 ||
	    (squashfs && squashfs_file(p, m, file, sizeof(file), &st, e) < 0)) {
		free(b.desc);
		free(b.jobs);
		return -1;
	}
	if (squashfs)
		b.jobs[k++] = (struct job){ JOB_SQUASHFS, 0, (uint64_t)st.st_size };
	json_array_foreach(b.layers, b.next, l) {
		const char *d = hypr_json_str(l, "digest");
		char blob[HYPR_PATH_BUF];
		struct hypr_err ig = { 0 };
		uint64_t cost = 0;

		if (d && hypr_digest_valid(d) &&
		    hypr_blob_path(p->root, d, blob, sizeof(blob), &ig) == 0 && stat(blob, &st) == 0)
			cost = (uint64_t)st.st_size * (is_tar_type(hypr_json_str(l, "media_type")) ? 2 : 1);
		b.jobs[k++] = (struct job){ JOB_LAYER, b.next, cost };
	}
	for (size_t i = 0; i < nsmall; i++)
		b.jobs[k++] = (struct job){ JOB_SMALL, i, small[i].len };
	b.njobs = k;
	b.next = 0;
	qsort(b.jobs, b.njobs, sizeof(*b.jobs), by_cost);
	pthread_mutex_init(&b.mu, NULL);
	if (jobs > b.njobs)
		jobs = b.njobs;
	for (uint64_t i = 1; i < jobs && started < 16; i++)
		if (pthread_create(&th[started], NULL, blob_worker, &b) == 0)
			started++;
	blob_worker(&b);
	for (size_t i = 0; i < started; i++)
		pthread_join(th[i], NULL);
	pthread_mutex_destroy(&b.mu);
	if (b.failed) {
		*e = b.err;
		rv = -1;
	}
	for (size_t i = 0; i < b.n; i++)
		if (b.desc[i] && rv == 0)
			json_array_append_new(layers, b.desc[i]);
		else
			json_decref(b.desc[i]);
	free(b.desc);
	free(b.jobs);
	return rv;
}

int
hypr_push_image(const struct hypr_root *root, json_t *m, const char *canon,
    const char *insecure, int artifact, FILE *progress, struct hypr_push_result *res,
    struct hypr_err *e)
{
	struct push p;
	struct hypr_ref ref, base;
	json_t *cfg = NULL, *layers = NULL, *man = NULL, *subject = NULL;
	char *cfgs = NULL, *mans = NULL, *ms = NULL;
	struct small_blob small[3];
	const char *bref = hypr_json_str(json_object_get(m, "base"), "ref");
	uint64_t chunk, jobs;
	int rv = -1;

	memset(res, 0, sizeof(*res));
	if (hypr_env_uint("HYPR_PUSH_CHUNK", HYPR_PUSH_CHUNK_DEFAULT, 1, 0, &chunk, e) < 0 ||
	    hypr_env_uint("HYPR_PUSH_JOBS", 3, 0, 0, &jobs, e) < 0)
		return -1;
	if (jobs < 1 || jobs > 16)
		return hypr_err_set(e, HYPR_EXIT_USAGE, "HYPR_PUSH_JOBS=%llu: 1 to 16",
		    (unsigned long long)jobs);
	if (hypr_ref_parse(canon, &ref, e) < 0)
		return -1;
	memset(&p, 0, sizeof(p));
	p.root = root;
	p.out = progress;
	p.chunk = chunk;
	p.res = res;
	pthread_mutex_init(&p.mu, NULL);
	if (bref && hypr_ref_parse(bref, &base, e) == 0 &&
	    !strcmp(base.domain, ref.domain) && strcmp(base.path, ref.path) != 0)
		snprintf(p.from, sizeof(p.from), "%s", base.path);
	if (hypr_registry_open(&p.g, root, &ref, insecure, e) < 0) {
		hypr_registry_close(&p.g);
		pthread_mutex_destroy(&p.mu);
		return -1;
	}
	if ((cfg = hypr_push_config(m, e)) == NULL)
		goto out;
	cfgs = dumps(cfg);
	ms = travelling_manifest(m);
	if (cfgs == NULL || ms == NULL) {
		hypr_err_set(e, HYPR_EXIT_SYSTEM, "out of memory");
		goto out;
	}
	small[0] = (struct small_blob){ .buf = cfgs, .len = strlen(cfgs) };
	small[1] = (struct small_blob){ .buf = ms, .len = strlen(ms) };
	small[2] = (struct small_blob){ .buf = "{}", .len = 2 };
	layers = json_array();
	if (push_blobs(&p, m, layers, small, artifact ? 3 : 1, artifact, jobs, e) < 0)
		goto out;
	man = json_pack("{s:i,s:s,s:{s:s,s:s,s:I},s:O}", "schemaVersion", 2,
	    "mediaType", MT_MANIFEST, "config", "mediaType", MT_CONFIG, "digest",
	    small[0].digest, "size", (json_int_t)small[0].len, "layers", layers);
	mans = dumps(man);
	if (put_manifest(&p, mans, MT_MANIFEST, ref.tag, res->digest, NULL, e) < 0)
		goto out;
	res->size = strlen(mans);
	subject = json_pack("{s:s,s:s,s:I}", "mediaType", MT_MANIFEST, "digest", res->digest,
	    "size", (json_int_t)res->size);
	if (artifact &&
	    push_artifact(&p, m, subject, small[1].digest, small[1].len, small[2].digest, e) < 0)
		goto out;
	rv = 0;
out:
	json_decref(cfg);
	json_decref(layers);
	json_decref(man);
	json_decref(subject);
	free(cfgs);
	free(ms);
	free(mans);
	hypr_registry_close(&p.g);
	pthread_mutex_destroy(&p.mu);
	return rv;
}

int
hypr_push_oci_artifact(const struct hypr_root *root, const char *canon, const char *insecure,
    FILE *progress, const char *artifact_type, const char *config, const char *config_mt,
    json_t *layers, struct hypr_push_result *res, struct hypr_err *e)
{
	struct push p;
	struct hypr_ref ref;
	json_t *man = NULL, *l;
	char *mans = NULL, cd[HYPR_DIGEST_LEN + 1], path[HYPR_PATH_BUF];
	uint64_t chunk;
	size_t i;
	int rv = -1;

	memset(res, 0, sizeof(*res));
	if (hypr_env_uint("HYPR_PUSH_CHUNK", HYPR_PUSH_CHUNK_DEFAULT, 1, 0, &chunk, e) < 0 ||
	    hypr_ref_parse(canon, &ref, e) < 0)
		return -1;
	memset(&p, 0, sizeof(p));
	p.root = root;
	p.out = progress;
	p.chunk = chunk;
	p.res = res;
	if (hypr_registry_open(&p.g, root, &ref, insecure, e) < 0) {
		hypr_registry_close(&p.g);
		return -1;
	}
	json_array_foreach(layers, i, l) {
		const char *d = hypr_json_str(l, "digest");

		if (hypr_blob_path(root, d, path, sizeof(path), e) < 0 ||
		    push_blob(&p, path, d, (uint64_t)json_integer_value(json_object_get(l,
		    "size")), 0, e) < 0)
			goto out;
	}
	if (push_buf(&p, config, strlen(config), cd, e) < 0)
		goto out;
	man = json_pack("{s:i,s:s,s:s,s:{s:s,s:s,s:I},s:O}", "schemaVersion", 2,
	    "mediaType", MT_MANIFEST, "artifactType", artifact_type, "config", "mediaType",
	    config_mt, "digest", cd, "size", (json_int_t)strlen(config), "layers", layers);
	if (man == NULL || (mans = dumps(man)) == NULL) {
		hypr_err_set(e, HYPR_EXIT_SYSTEM, "out of memory");
		goto out;
	}
	if (put_manifest(&p, mans, MT_MANIFEST, ref.tag[0] ? ref.tag : "latest", res->digest,
	    NULL, e) < 0)
		goto out;
	res->size = strlen(mans);
	rv = 0;
out:
	json_decref(man);
	free(mans);
	hypr_registry_close(&p.g);
	return rv;
}
