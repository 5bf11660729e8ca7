/* load.c - `hypr-fetch load`: an OCI image layout or a docker-save tar into
 * the store, every blob verified, with a tag record so builds work offline. */
#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cas.h"
#include "fetch.h"
#include "fsutil.h"
#include "oci.h"
#include "stream.h"
#include "tool.h"

/* Copy dir/blobs/sha256/<hex> into the store, checking its digest, and
 * with want_size >= 0 its size. With diff set the blob is a layer: it is
 * decompressed as it is copied and stored only if that hashes to diff (a
 * layer already stored is checked against its diff_id record). */
static int
copy_blob(struct fetch *f, const char *dir, const char *digest, json_int_t want_size,
    const char *diff, struct hypr_err *e)
{
	char path[HYPR_PATH_BUF + 128], buf[65536], got[HYPR_DIGEST_LEN + 1] = "";
	struct hypr_blob_writer w;
	struct hypr_diffid *dd = NULL;
	struct stat st;
	ssize_t n;
	int fd;

	if (!hypr_digest_valid(digest))
		return hypr_err_set(e, HYPR_EXIT_INPUT, "%s: bad digest '%s'", dir,
		    digest ? digest : "");
	if (hypr_blob_has(&f->root, digest)) {
		if (diff == NULL)
			return 0;
		if (hypr_diffid_get(&f->root, digest, f->max_layer, got, e) < 0)
			return hypr_err_prefix(e, "%s: layer %s", dir, digest);
		goto check;
	}
	snprintf(path, sizeof(path), "%s/blobs/sha256/%s", dir, hypr_digest_hex(digest));
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return hypr_err_errno(e, HYPR_EXIT_INPUT, "%s: blob %s", dir, digest);
	if (want_size >= 0 && fstat(fd, &st) == 0 && (json_int_t)st.st_size != want_size) {
		close(fd);
		return hypr_err_set(e, HYPR_EXIT_INPUT, "%s: blob %s: the manifest gives %lld "
		    "bytes, the file has %lld", dir, digest, (long long)want_size,
		    (long long)st.st_size);
	}
	if (hypr_blob_begin(&w, &f->root, e) < 0) {
		close(fd);
		return -1;
	}
	if (diff && hypr_diffid_start(&dd, f->max_layer, e) < 0) {
		close(fd);
		hypr_blob_abort(&w);
		return -1;
	}
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		if (hypr_blob_write(&w, buf, (size_t)n, e) < 0 ||
		    (dd && hypr_diffid_feed(dd, buf, (size_t)n, e) < 0)) {
			close(fd);
			hypr_diffid_abort(dd);
			hypr_blob_abort(&w);
			return -1;
		}
	close(fd);
	if (n < 0) {
		hypr_diffid_abort(dd);
		hypr_blob_abort(&w);
		return hypr_err_errno(e, HYPR_EXIT_SYSTEM, "reading %s", path);
	}
	if (dd && (hypr_diffid_finish(dd, got, e) < 0 || strcmp(got, diff) != 0)) {
		char d[HYPR_DIGEST_LEN + 1];

		/* bytes that are not the blob explain the rest */
		hypr_sha256_final(&w.sha, d);
		hypr_blob_abort(&w);
		if (strcmp(d, digest) != 0)
			return hypr_err_set(e, HYPR_EXIT_INPUT, "%s: digest mismatch: "
			    "expected %s, got %s", dir, digest, d);
		if (strcmp(got, diff) != 0)
			goto check;
		return hypr_err_prefix(e, "%s: layer %s", dir, digest);
	}
	if (hypr_blob_commit(&w, digest, NULL, NULL, e) < 0)
		return hypr_err_prefix(e, "%s", dir);
	if (diff && hypr_diffid_put(&f->root, digest, got, e) < 0)
		return -1;
check:
	if (diff && strcmp(got, diff) != 0)
		return hypr_err_set(e, HYPR_EXIT_INPUT, "%s: layer %s: diff_id mismatch: the "
		    "config says %s, the layer decompresses to %s", dir, digest, diff, got);
	return 0;
}

static int
read_layout_doc(struct fetch *f, const char *dir, const char *digest, json_t **doc,
    struct hypr_err *e)
{
	char *buf;
	size_t len;

	if (copy_blob(f, dir, digest, -1, NULL, e) < 0 ||
	    hypr_blob_read(&f->root, digest, 4u << 20, &buf, &len, e) < 0)
		return -1;
	*doc = json_loadb(buf, len, 0, NULL);
	free(buf);
	if (!json_is_object(*doc)) {
		json_decref(*doc);
		return hypr_err_set(e, HYPR_EXIT_INPUT, "%s: %s is not JSON", dir, digest);
	}
	return 0;
}

/* A manifest or index and everything under it. Index children whose
 * manifests the layout lacks (other platforms) are skipped. */
static int
copy_tree(struct fetch *f, const char *dir, const char *digest, const char *hint,
    int depth, char *mt, size_t mtn, struct hypr_err *e)
{
	json_t *doc, *d;
	size_t i;
	int r = -1;

	if (depth > 4)
		return hypr_err_set(e, HYPR_EXIT_INPUT, "%s: indexes nested too deep", dir);
	if (read_layout_doc(f, dir, digest, &doc, e) < 0)
		return -1;
	if (hypr_oci_kind(doc, hint, mt, mtn, e) < 0)
		goto out;
	if (hypr_oci_is_index(mt)) {
		int any = 0;
		char cmt[128];

		json_array_foreach(json_object_get(doc, "manifests"), i, d) {
			char p[HYPR_PATH_BUF + 128];
			const char *cd = hypr_json_str(d, "digest");

			if (hypr_oci_check_desc(d, "index entry", e) < 0)
				goto out;
			snprintf(p, sizeof(p), "%s/blobs/sha256/%s", dir, hypr_digest_hex(cd));
			if (access(p, F_OK) != 0 && !hypr_blob_has(&f->root, cd))
				continue;
			if (copy_tree(f, dir, cd, hypr_json_str(d, "mediaType"), depth + 1,
			    cmt, sizeof(cmt), e) < 0)
				goto out;
			any = 1;
		}
		if (!any) {
			hypr_err_set(e, HYPR_EXIT_INPUT, "%s: index %s has no manifest here",
			    dir, digest);
			goto out;
		}
	} else {
		json_t *cd = json_object_get(doc, "config"), *cfg = NULL, *diffs;
		json_int_t cs = json_integer_value(json_object_get(cd, "size"));
		char *buf;
		size_t len;

		if (hypr_oci_check_manifest(doc, e) < 0)
			goto out;
		if (cs > (json_int_t)HYPR_OCI_CONFIG_MAX) {
			hypr_err_set(e, HYPR_EXIT_INPUT, "%s: config %s: %lld bytes, over the "
			    "16 MiB limit", dir, hypr_json_str(cd, "digest"), (long long)cs);
			goto out;
		}
		if (copy_blob(f, dir, hypr_json_str(cd, "digest"), cs, NULL, e) < 0 ||
		    hypr_blob_read(&f->root, hypr_json_str(cd, "digest"), HYPR_OCI_CONFIG_MAX,
		    &buf, &len, e) < 0)
			goto out;
		cfg = json_loadb(buf, len, 0, NULL);
		free(buf);
		diffs = json_object_get(json_object_get(cfg, "rootfs"), "diff_ids");
		if (json_array_size(diffs) != json_array_size(json_object_get(doc, "layers"))) {
			hypr_err_set(e, HYPR_EXIT_INPUT, "%s: config %s has %zu diff_ids for %zu "
			    "layers", dir, hypr_json_str(cd, "digest"), json_array_size(diffs),
			    json_array_size(json_object_get(doc, "layers")));
			json_decref(cfg);
			goto out;
		}
		json_array_foreach(json_object_get(doc, "layers"), i, d) {
			const char *di = json_string_value(json_array_get(diffs, i));
			json_int_t ls = json_integer_value(json_object_get(d, "size"));

			if (!hypr_digest_valid(di)) {
				hypr_err_set(e, HYPR_EXIT_INPUT, "%s: config: bad diff_id", dir);
				json_decref(cfg);
				goto out;
			}
			if ((uint64_t)ls > f->max_layer) {
				hypr_err_set(e, HYPR_EXIT_INPUT, "%s: layer %s: %lld bytes, over "
				    "the HYPR_PULL_MAX_LAYER limit", dir, hypr_json_str(d, "digest"),
				    (long long)ls);
				json_decref(cfg);
				goto out;
			}
			if (copy_blob(f, dir, hypr_json_str(d, "digest"), ls, di, e) < 0) {
				json_decref(cfg);
				goto out;
			}
		}
		json_decref(cfg);
	}
	r = 0;
out:
	json_decref(doc);
	return r;
}

static int
record(struct fetch *f, const char *name, const char *digest, const char *mt,
    struct hypr_err *e)
{
	struct hypr_ref r;
	char s[1024];

	if (hypr_ref_parse(name, &r, e) < 0)
		return -1;
	if (r.digest[0])
		return hypr_err_set(e, HYPR_EXIT_USAGE, "--name %s: give a tag, not a digest",
		    name);
	if (hypr_tagref_set(&f->root, &r, digest, mt, e) < 0)
		return -1;
	hypr_ref_string(&r, s, sizeof(s));
	printf("Loaded image: %s %s\n", s, digest);
	return 0;
}

static int
load_layout(struct fetch *f, const char *dir, const char *name, struct hypr_err *e)
{
	char path[HYPR_PATH_BUF + 128], mt[128];
	json_t *idx, *ms, *d;
	json_error_t je;
	size_t i, loaded = 0;
	int r = -1;

	snprintf(path, sizeof(path), "%s/index.json", dir);
	if ((idx = json_load_file(path, 0, &je)) == NULL)
		return hypr_err_set(e, HYPR_EXIT_INPUT, "%s: %s", path, je.text);
	ms = json_object_get(idx, "manifests");
	if (!json_is_array(ms) || json_array_size(ms) == 0) {
		hypr_err_set(e, HYPR_EXIT_INPUT, "%s: no manifests", path);
		goto out;
	}
	if (name && json_array_size(ms) > 1)
		hypr_warn("%s lists %zu images; --name %s names the first", dir,
		    json_array_size(ms), name);
	json_array_foreach(ms, i, d) {
		json_t *ann = json_object_get(d, "annotations");
		const char *full = hypr_json_str(ann, "io.containerd.image.name");
		const char *rn = hypr_json_str(ann, "org.opencontainers.image.ref.name");
		const char *dg = hypr_json_str(d, "digest");

		if (hypr_oci_check_desc(d, "index.json entry", e) < 0 ||
		    copy_tree(f, dir, dg, hypr_json_str(d, "mediaType"), 0, mt, sizeof(mt), e) < 0)
			goto out;
		loaded++;
		if (name && i == 0) {
			if (record(f, name, dg, mt, e) < 0)
				goto out;
		} else if (!name && (full || (rn && strchr(rn, '/')))) {
			if (record(f, full ? full : rn, dg, mt, e) < 0)
				goto out;
		} else if (!name) {
			printf("Loaded image: %s (no name: use --name)\n", dg);
		}
	}
	r = 0;
out:
	json_decref(idx);
	return r;
}

/* docker save (legacy): manifest.json lists Config, RepoTags and Layers
 * (uncompressed tars); make an OCI manifest for them. */
static int
load_docker(struct fetch *f, const char *dir, const char *name, struct hypr_err *e)
{
	char path[HYPR_PATH_BUF + 128], cd[HYPR_DIGEST_LEN + 1], ld[HYPR_DIGEST_LEN + 1];
	char md[HYPR_DIGEST_LEN + 1], *s;
	json_t *list, *m, *l, *cfg = NULL, *man = NULL, *layers;
	json_error_t je;
	uint64_t csize, lsize;
	size_t i, j;
	int r = -1;

	snprintf(path, sizeof(path), "%s/manifest.json", dir);
	if ((list = json_load_file(path, 0, &je)) == NULL || !json_is_array(list) ||
	    json_array_size(list) == 0) {
		json_decref(list);
		return hypr_err_set(e, HYPR_EXIT_INPUT,
		    "%s: neither an OCI layout nor a docker save archive", dir);
	}
	json_array_foreach(list, i, m) {
		const char *c = hypr_json_str(m, "Config");
		json_t *diffs;

		if (!c || strstr(c, "..") || c[0] == '/') {
			hypr_err_set(e, HYPR_EXIT_INPUT, "%s: bad Config entry", path);
			goto out;
		}
		snprintf(path, sizeof(path), "%s/%s", dir, c);
		if (hypr_blob_put_file(&f->root, path, cd, &csize, e) < 0)
			goto out;
		{
			char *buf;
			size_t len;

			if (hypr_blob_read(&f->root, cd, HYPR_OCI_CONFIG_MAX, &buf, &len, e) < 0)
				goto out;
			cfg = json_loadb(buf, len, 0, NULL);
			free(buf);
		}
		diffs = json_object_get(json_object_get(cfg, "rootfs"), "diff_ids");
		if (json_array_size(diffs) != json_array_size(json_object_get(m, "Layers"))) {
			hypr_err_set(e, HYPR_EXIT_INPUT, "%s: config and Layers disagree", dir);
			goto out;
		}
		layers = json_array();
		man = json_pack("{s:i,s:s,s:{s:s,s:s,s:I},s:o}", "schemaVersion", 2,
		    "mediaType", HYPR_MT_OCI_MANIFEST, "config", "mediaType",
		    "application/vnd.oci.image.config.v1+json", "digest", cd, "size",
		    (json_int_t)csize, "layers", layers);
		json_array_foreach(json_object_get(m, "Layers"), j, l) {
			const char *lp = json_string_value(l);

			if (!lp || strstr(lp, "..") || lp[0] == '/') {
				hypr_err_set(e, HYPR_EXIT_INPUT, "%s: bad Layers entry", dir);
				goto out;
			}
			snprintf(path, sizeof(path), "%s/%s", dir, lp);
			if (hypr_blob_put_file(&f->root, path, ld, &lsize, e) < 0)
				goto out;
			/* a docker-save layer is the uncompressed tar: its digest
			 * must be the config's diff_id */
			if (strcmp(ld, json_string_value(json_array_get(diffs, j)) ?
			    json_string_value(json_array_get(diffs, j)) : "") != 0) {
				hypr_err_set(e, HYPR_EXIT_INPUT,
				    "%s: layer %s does not match diff_id %zu", dir, lp, j);
				goto out;
			}
			json_array_append_new(layers, json_pack("{s:s,s:s,s:I}", "mediaType",
			    "application/vnd.oci.image.layer.v1.tar", "digest", ld,
			    "size", (json_int_t)lsize));
		}
		s = json_dumps(man, JSON_COMPACT);
		if (!s || hypr_blob_put_buf(&f->root, s, strlen(s), md, e) < 0) {
			free(s);
			goto out;
		}
		free(s);
		if (name && i == 0) {
			if (record(f, name, md, HYPR_MT_OCI_MANIFEST, e) < 0)
				goto out;
		} else if (!name && json_array_size(json_object_get(m, "RepoTags")) > 0) {
			json_t *t;
			size_t k;

			json_array_foreach(json_object_get(m, "RepoTags"), k, t)
				if (json_is_string(t) && record(f, json_string_value(t), md,
				    HYPR_MT_OCI_MANIFEST, e) < 0)
					goto out;
		} else if (!name) {
			printf("Loaded image: %s (no name: use --name)\n", md);
		}
		json_decref(cfg);
		json_decref(man);
		cfg = man = NULL;
	}
	r = 0;
out:
	json_decref(cfg);
	json_decref(man);
	json_decref(list);
	return r;
}

/* Unpack a tar safely (no .., no absolute paths, no symlink escapes);
 * path "-" is stdin. */
static int
untar(const char *path, const char *dir, struct hypr_err *e)
{
	struct archive *a = archive_read_new(), *w = archive_write_disk_new();
	struct archive_entry *ent;
	const char *tarpath = strcmp(path, "-") ? path : "stdin";
	int r, rc = -1;

	archive_read_support_format_tar(a);
	archive_read_support_filter_all(a);
	/* names are checked below (they get dir prefixed, so libarchive's
	 * absolute-path check cannot be used) */
	archive_write_disk_set_options(w, ARCHIVE_EXTRACT_SECURE_NODOTDOT |
	    ARCHIVE_EXTRACT_SECURE_SYMLINKS);
	if ((strcmp(path, "-") ? archive_read_open_filename(a, path, 1 << 16) :
	    archive_read_open_fd(a, 0, 1 << 16)) != ARCHIVE_OK) {
		hypr_err_set(e, HYPR_EXIT_INPUT, "%s: %s", tarpath, archive_error_string(a));
		goto out;
	}
	while ((r = archive_read_next_header(a, &ent)) == ARCHIVE_OK) {
		char p[HYPR_PATH_BUF + 128];
		const char *n = archive_entry_pathname(ent);
		mode_t type = archive_entry_filetype(ent);

		if (type != AE_IFREG && type != AE_IFDIR)
			continue;	/* layouts hold only files and directories */
		if (n == NULL || n[0] == '/' || !strcmp(n, "..") || !strncmp(n, "../", 3) ||
		    strstr(n, "/../") || (strlen(n) >= 3 && !strcmp(n + strlen(n) - 3, "/.."))) {
			hypr_err_set(e, HYPR_EXIT_INPUT, "%s: unsafe member name '%s'",
			    tarpath, n ? n : "");
			goto out;
		}
		if (snprintf(p, sizeof(p), "%s/%s", dir, n) >= (int)sizeof(p)) {
			hypr_err_set(e, HYPR_EXIT_INPUT, "%s: name too long", tarpath);
			goto out;
		}
		archive_entry_set_pathname(ent, p);
		archive_entry_set_perm(ent, type == AE_IFDIR ? 0755 : 0644);
		if (archive_write_header(w, ent) != ARCHIVE_OK) {
			hypr_err_set(e, HYPR_EXIT_INPUT, "%s: %s: %s", tarpath, n,
			    archive_error_string(w));
			goto out;
		}
		if (type == AE_IFREG) {
			const void *buf;
			size_t len;
			la_int64_t off;

			while ((r = archive_read_data_block(a, &buf, &len, &off)) == ARCHIVE_OK)
				if (archive_write_data_block(w, buf, len, off) != ARCHIVE_OK) {
					hypr_err_set(e, HYPR_EXIT_SYSTEM, "%s: %s", n,
					    archive_error_string(w));
					goto out;
				}
			if (r != ARCHIVE_EOF) {
				hypr_err_set(e, HYPR_EXIT_INPUT, "%s: %s", tarpath,
				    archive_error_string(a));
				goto out;
			}
		}
		archive_write_finish_entry(w);
	}
	if (r != ARCHIVE_EOF) {
		hypr_err_set(e, HYPR_EXIT_INPUT, "%s: %s", tarpath, archive_error_string(a));
		goto out;
	}
	rc = 0;
out:
	archive_read_free(a);
	archive_write_free(w);
	return rc;
}

/* An OCI layout (it has an index.json) or an unpacked docker save. */
static int
load_dir(struct fetch *f, const char *dir, const char *name, struct hypr_err *e)
{
	char p[HYPR_PATH_BUF + 128];

	snprintf(p, sizeof(p), "%s/index.json", dir);
	return access(p, F_OK) == 0 ? load_layout(f, dir, name, e) :
	    load_docker(f, dir, name, e);
}

int
fetch_load(struct fetch *f, const char *path, const char *name, struct hypr_err *e)
{
	struct stat st;
	char tmp[HYPR_PATH_BUF];
	int r;

	if (!strcmp(path, "-")) {
		if (isatty(0))
			return hypr_err_set(e, HYPR_EXIT_USAGE, "load: stdin is a terminal: "
			    "give -i FILE, or the archive on stdin");
	} else if (stat(path, &st) < 0) {
		return hypr_err_errno(e, HYPR_EXIT_INPUT, "load %s", path);
	} else if (S_ISDIR(st.st_mode)) {
		return load_dir(f, path, name, e) < 0 ? hypr_err_prefix(e, "load") : 0;
	}
	if (hypr_root_tmp(&f->root, tmp, sizeof(tmp), e, "load.XXXXXX") < 0)
		return -1;
	if (mkdtemp(tmp) == NULL)
		return hypr_err_errno(e, HYPR_EXIT_SYSTEM, "creating a directory in the store");
	r = untar(path, tmp, e);
	if (r == 0)
		r = load_dir(f, tmp, name, e);
	hypr_rm_rf(tmp, NULL);
	return r < 0 ? hypr_err_prefix(e, "load %s", strcmp(path, "-") ? path : "stdin") : 0;
}
