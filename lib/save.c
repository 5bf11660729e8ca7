/* save.c - stored images out as one tar (save.h). */
#include "save.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "child.h"
#include "image.h"
#include "push.h"
#include "record.h"
#include "store.h"
#include "stream.h"

#define MT_MANIFEST "application/vnd.oci.image.manifest.v1+json"
#define MT_INDEX "application/vnd.oci.image.index.v1+json"
#define MT_CONFIG "application/vnd.oci.image.config.v1+json"

struct save {
	const struct hypr_root *root;
	struct archive *a;
	struct archive_entry *ent;
	int64_t mtime;
	json_t *written;	/* member names already in the tar */
};

static int
tar_err(struct save *s, const char *what, struct hypr_err *e)
{
	return hypr_err_set(e, HYPR_EXIT_SYSTEM, "save: writing %s: %s", what,
	    archive_error_string(s->a));
}

static int
header(struct save *s, const char *name, uint64_t size, struct hypr_err *e)
{
	archive_entry_clear(s->ent);
	archive_entry_set_pathname(s->ent, name);
	archive_entry_set_filetype(s->ent, AE_IFREG);
	archive_entry_set_perm(s->ent, 0644);
	archive_entry_set_uid(s->ent, 0);
	archive_entry_set_gid(s->ent, 0);
	archive_entry_set_mtime(s->ent, s->mtime, 0);
	archive_entry_set_size(s->ent, (la_int64_t)size);
	if (archive_write_header(s->a, s->ent) != ARCHIVE_OK)
		return tar_err(s, name, e);
	json_object_set_new(s->written, name, json_true());
	return 0;
}

static int
add_buf(struct save *s, const char *name, const char *buf, size_t len, struct hypr_err *e)
{
	if (header(s, name, len, e) < 0)
		return -1;
	if (len && archive_write_data(s->a, buf, len) != (la_ssize_t)len)
		return tar_err(s, name, e);
	return 0;
}

/* A stored file as member name, its size as it is now. */
static int
add_file(struct save *s, const char *name, const char *path, struct hypr_err *e)
{
	char buf[1 << 16];
	struct stat st;
	uint64_t left;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0 || fstat(fd, &st) < 0) {
		if (fd >= 0)
			close(fd);
		return hypr_err_errno(e, HYPR_EXIT_INPUT, "save: %s", path);
	}
	if (header(s, name, (uint64_t)st.st_size, e) < 0) {
		close(fd);
		return -1;
	}
	for (left = (uint64_t)st.st_size; left > 0;) {
		ssize_t r = read(fd, buf, left < sizeof(buf) ? (size_t)left : sizeof(buf));

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			close(fd);
			return hypr_err_errno(e, HYPR_EXIT_SYSTEM, "save: reading %s", path);
		}
		if (archive_write_data(s->a, buf, (size_t)r) != r) {
			close(fd);
			return tar_err(s, name, e);
		}
		left -= (uint64_t)r;
	}
	close(fd);
	return 0;
}

/* The decompressor for a blob's first bytes, or NULL for a plain tar. */
static const char *
decompressor(const char *path)
{
	unsigned char m[6] = { 0 };
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return NULL;
	if (read(fd, m, sizeof(m)) < 4)
		m[0] = 0;
	close(fd);
	if (m[0] == 0x1f && m[1] == 0x8b)
		return "gzip";
	if (m[0] == 0x28 && m[1] == 0xb5 && m[2] == 0x2f && m[3] == 0xfd)
		return "zstd";
	if (m[0] == 0xfd && !memcmp(m + 1, "7zXZ", 4))
		return "xz";
	if (m[0] == 'B' && m[1] == 'Z' && m[2] == 'h')
		return "bzip2";
	return NULL;
}

/* Decompress blob src with prog into a temp file (out); its digest must be
 * diff_id. */
static int
decompress(struct save *s, const char *prog, const char *src, const char *diff_id,
    char *out, size_t n, struct hypr_err *e)
{
	char got[HYPR_DIGEST_LEN + 1], what[HYPR_PATH_BUF + 32];
	char *argv[] = { (char *)prog, "-dc", NULL };
	int fd;

	if (hypr_root_tmp(s->root, out, n, e, "save.XXXXXX") < 0)
		return -1;
	if ((fd = mkstemp(out)) < 0)
		return hypr_err_errno(e, HYPR_EXIT_SYSTEM, "%s", out);
	close(fd);
	snprintf(what, sizeof(what), "save: %s -dc of %s", prog, src);
	if (hypr_child_filter(argv, src, out, what, e) < 0)
		return -1;
	if (hypr_digest_file(out, got, NULL, e) < 0) {
		unlink(out);
		return -1;
	}
	if (strcmp(got, diff_id) != 0) {
		unlink(out);
		return hypr_err_set(e, HYPR_EXIT_INPUT, "save: layer %s decompresses to %s, "
		    "not its diff_id %s", src, got, diff_id);
	}
	return 0;
}

static const char *
oci_type(const char *mt, const char *path)
{
	const char *c = mt && strstr(mt, "zstd") ? "zstd" : mt && strstr(mt, "gzip") ?
	    "gzip" : decompressor(path);

	if (c == NULL)
		return HYPR_MEDIA_LAYER_TAR;
	if (!strcmp(c, "gzip"))
		return HYPR_MEDIA_LAYER_GZIP;
	if (!strcmp(c, "zstd"))
		return "application/vnd.oci.image.layer.v1.tar+zstd";
	return NULL;	/* xz, bzip2: no OCI media type */
}

/* One image: its config and layers into the tar; its docker manifest.json
 * entry or OCI descriptor appended to list. */
static int
save_one(struct save *s, const struct hypr_save_image *im, enum hypr_save_format fmt,
    json_t *list, json_t *dlist, struct hypr_err *e)
{
	json_t *cfg, *layers = json_array(), *paths = json_array(), *l, *man = NULL;
	char *cs = NULL, *ms = NULL, cd[HYPR_DIGEST_LEN + 1], md[HYPR_DIGEST_LEN + 1];
	char name[128], blob[HYPR_PATH_BUF], tmp[HYPR_PATH_BUF];
	size_t i;
	int rv = -1;

	if ((cfg = hypr_push_config(im->m, e)) == NULL)
		goto out;
	cs = json_dumps(cfg, JSON_COMPACT | JSON_SORT_KEYS);
	if (cs == NULL || hypr_digest_buf(cs, strlen(cs), cd, e) < 0)
		goto out;
	snprintf(name, sizeof(name), "blobs/sha256/%s", hypr_digest_hex(cd));
	if (!json_object_get(s->written, name) && add_buf(s, name, cs, strlen(cs), e) < 0)
		goto out;
	json_array_foreach(json_object_get(im->m, "layers"), i, l) {
		const char *d = hypr_json_str(l, "digest"), *di = hypr_json_str(l, "diff_id");
		const char *prog, *mt;
		struct stat st;

		if (!hypr_digest_valid(d) || !hypr_digest_valid(di)) {
			hypr_err_set(e, HYPR_EXIT_INPUT, "image %s: layer %zu has no digest",
			    hypr_json_str(im->m, "id"), i);
			goto out;
		}
		if (hypr_blob_path(s->root, d, blob, sizeof(blob), e) < 0)
			goto out;
		if (stat(blob, &st) != 0) {
			hypr_err_errno(e, HYPR_EXIT_INPUT, "save: layer %s is not in the store", d);
			goto out;
		}
		if (fmt == HYPR_SAVE_DOCKER) {
			/* docker save's layers are the uncompressed tars */
			snprintf(name, sizeof(name), "blobs/sha256/%s", hypr_digest_hex(di));
			json_array_append_new(paths, json_string(name));
			if (json_object_get(s->written, name))
				continue;
			if ((prog = decompressor(blob)) == NULL) {
				if (add_file(s, name, blob, e) < 0)
					goto out;
				continue;
			}
			if (decompress(s, prog, blob, di, tmp, sizeof(tmp), e) < 0)
				goto out;
			rv = add_file(s, name, tmp, e);
			unlink(tmp);
			if (rv < 0)
				goto out;
			rv = -1;
			continue;
		}
		if ((mt = oci_type(hypr_json_str(l, "media_type"), blob)) == NULL) {
			hypr_err_set(e, HYPR_EXIT_INPUT, "save: layer %s: no OCI media type for "
			    "its compression", d);
			goto out;
		}
		json_array_append_new(layers, json_pack("{s:s,s:s,s:I}", "mediaType", mt,
		    "digest", d, "size", (json_int_t)st.st_size));
		snprintf(name, sizeof(name), "blobs/sha256/%s", hypr_digest_hex(d));
		json_array_append_new(paths, json_string(name));
		if (!json_object_get(s->written, name) && add_file(s, name, blob, e) < 0)
			goto out;
	}
	{
		/* docker's manifest.json; in an OCI layout too, as docker 25
		 * writes it, so an older docker loads that as well (it
		 * decompresses the layers it finds) */
		char fam[600];

		hypr_store_familiar(im->tag ? im->tag : "", fam, sizeof(fam));
		snprintf(name, sizeof(name), "blobs/sha256/%s", hypr_digest_hex(cd));
		json_array_append_new(fmt == HYPR_SAVE_DOCKER ? list : dlist,
		    json_pack("{s:s,s:o,s:O}", "Config", name,
		    "RepoTags", im->tag ? json_pack("[s]", fam) : json_null(), "Layers", paths));
	}
	if (fmt == HYPR_SAVE_DOCKER) {
		rv = 0;
		goto out;
	}
	man = json_pack("{s:i,s:s,s:{s:s,s:s,s:I},s:O}", "schemaVersion", 2,
	    "mediaType", MT_MANIFEST, "config", "mediaType", MT_CONFIG, "digest", cd,
	    "size", (json_int_t)strlen(cs), "layers", layers);
	ms = json_dumps(man, JSON_COMPACT | JSON_SORT_KEYS);
	if (ms == NULL || hypr_digest_buf(ms, strlen(ms), md, e) < 0)
		goto out;
	snprintf(name, sizeof(name), "blobs/sha256/%s", hypr_digest_hex(md));
	if (!json_object_get(s->written, name) && add_buf(s, name, ms, strlen(ms), e) < 0)
		goto out;
	{
		json_t *d = json_pack("{s:s,s:s,s:I}", "mediaType", MT_MANIFEST, "digest", md,
		    "size", (json_int_t)strlen(ms));

		if (im->tag) {
			const char *colon = strrchr(im->tag, ':');

			json_object_set_new(d, "annotations", json_pack("{s:s,s:s}",
			    "io.containerd.image.name", im->tag,
			    "org.opencontainers.image.ref.name", colon ? colon + 1 : "latest"));
		}
		json_array_append_new(list, d);
	}
	rv = 0;
out:
	if (rv < 0 && e && !e->code)
		hypr_err_set(e, HYPR_EXIT_SYSTEM, "out of memory");
	json_decref(cfg);
	json_decref(layers);
	json_decref(paths);
	json_decref(man);
	free(cs);
	free(ms);
	return rv;
}

int
hypr_save_write(const struct hypr_root *root, const struct hypr_save_image *im,
    size_t n, enum hypr_save_format fmt, int fd, struct hypr_err *e)
{
	struct save s = { .root = root };
	json_t *list = json_array(), *dlist = json_array(), *top = NULL;
	char *text = NULL;
	int64_t epoch = hypr_image_epoch(e);
	int rv = -1;

	if (epoch < -1)
		return -1;
	s.mtime = epoch < 0 ? 0 : epoch;
	s.written = json_object();
	s.a = archive_write_new();
	s.ent = archive_entry_new();
	archive_write_set_format_pax_restricted(s.a);
	archive_write_set_bytes_per_block(s.a, 10240);
	/* the same bytes to a file or a pipe: the last block is not padded */
	archive_write_set_bytes_in_last_block(s.a, 1);
	if (archive_write_open_fd(s.a, fd) != ARCHIVE_OK) {
		tar_err(&s, "the archive", e);
		goto out;
	}
	if (fmt == HYPR_SAVE_OCI &&
	    add_buf(&s, "oci-layout", "{\"imageLayoutVersion\":\"1.0.0\"}", 30, e) < 0)
		goto out;
	for (size_t i = 0; i < n; i++)
		if (save_one(&s, &im[i], fmt, list, dlist, e) < 0)
			goto out;
	if (fmt == HYPR_SAVE_OCI) {
		top = json_pack("{s:i,s:s,s:O}", "schemaVersion", 2, "mediaType", MT_INDEX,
		    "manifests", list);
		text = json_dumps(top, JSON_COMPACT | JSON_SORT_KEYS);
	} else {
		text = json_dumps(list, JSON_COMPACT);
	}
	if (text == NULL) {
		hypr_err_set(e, HYPR_EXIT_SYSTEM, "out of memory");
		goto out;
	}
	if (add_buf(&s, fmt == HYPR_SAVE_OCI ? "index.json" : "manifest.json", text,
	    strlen(text), e) < 0)
		goto out;
	if (fmt == HYPR_SAVE_OCI) {
		free(text);
		if ((text = json_dumps(dlist, JSON_COMPACT)) == NULL) {
			hypr_err_set(e, HYPR_EXIT_SYSTEM, "out of memory");
			goto out;
		}
		if (add_buf(&s, "manifest.json", text, strlen(text), e) < 0)
			goto out;
	}
	if (archive_write_close(s.a) != ARCHIVE_OK) {
		tar_err(&s, "the archive", e);
		goto out;
	}
	rv = 0;
out:
	archive_write_free(s.a);
	archive_entry_free(s.ent);
	json_decref(s.written);
	json_decref(list);
	json_decref(dlist);
	json_decref(top);
	free(text);
	return rv;
}
