/* cache.c - the build caches under $HYPR_ROOT. See cache.h. */
#include "cache.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "digest.h"
#include "fsutil.h"

#define ENTRY_MAX (1 << 20)	/* a cache entry is small; a bigger one is junk */

/* ---- instruction entries ---- */

static int
entry_path(const struct hypr_root *r, const char *sub, const char *key, char *p, size_t n,
    struct hypr_err *e)
{
	if (!hypr_digest_valid(key))
		return hypr_err_set(e, HYPR_EXIT_INPUT, "cache: bad key %.80s", key);
	if (hypr_root_path(r, p, n, "%s%s.json", sub, hypr_digest_hex(key)) < 0)
		return hypr_err_set(e, HYPR_EXIT_SYSTEM, "store path too long");
	return 0;
}

/* tmp + rename, no fsync: an entry is a hint (see cache.h) */
/* Instruction entries are fsynced one by one, then their directory, up to
 * this many in a process; past it hypr_cache_sync syncs the file system
 * once (10 000 ENV lines made 10 000 fsyncs). A syncfs also writes out
 * whatever else is dirty there, such as the build VM's disks in tmp/
 * (0.13-0.2 s of the disk's time on the files build of bench/cold.sh,
 * which the image's own fsync then waited behind). */
#define SYNC_EACH_MAX 64
static unsigned nput;	/* entries hypr_cache_put wrote since the last sync */

/* Write j to path (temp name, rename); with sync, fsync before the rename. */
static int
write_entry(const char *path, json_t *j, int sync, struct hypr_err *e)
{
	char tmp[HYPR_PATH_BUF], *text = json_dumps(j, JSON_COMPACT);
	int fd, rc = -1;

	if (text == NULL)
		return hypr_err_set(e, HYPR_EXIT_SYSTEM, "out of memory");
	snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)) < 0) {
		hypr_err_errno(e, HYPR_EXIT_SYSTEM, "creating %s", tmp);
	} else if (hypr_write_all(fd, text, strlen(text)) < 0 || (sync && fsync(fd) < 0) ||
	    close(fd) < 0) {
		hypr_err_errno(e, HYPR_EXIT_SYSTEM, "writing %s", tmp);
		unlink(tmp);
	} else if (rename(tmp, path) < 0) {
		hypr_err_errno(e, HYPR_EXIT_SYSTEM, "renaming %s", tmp);
		unlink(tmp);
	} else {
		rc = 0;
	}
	free(text);
	return rc;
}

static json_t *
read_entry(const char *path)
{
	char *text = NULL;
	size_t len;
	json_t *j;

	if (hypr_read_file(path, ENTRY_MAX, &text, &len, NULL) < 0)
		return NULL;
	j = json_loadb(text, len, 0, NULL);
	free(text);
	if (!json_is_object(j)) {
		json_decref(j);
		return NULL;
	}
	return j;
}

int
hypr_cache_put(const struct hypr_root *r, const char *key, const char *op,
    const char *created_by, const struct hypr_layer *layer, const char *created,
    struct hypr_err *e)
{
	char path[HYPR_PATH_BUF];
	json_t *j, *l;
	int rc;

	if (entry_path(r, "cache/", key, path, sizeof path, e) < 0)
		return -1;
	if ((l = layer ? hypr_layer_json(layer, HYPR_MEDIA_LAYER_TAR) : json_null()) == NULL)
		return hypr_err_set(e, HYPR_EXIT_SYSTEM, "out of memory");
	/* no config: a hit recomputes it from the instructions (its key
	 * covers them), and a config per entry was N-squared for N ENVs */
	j = json_pack("{s:s, s:i, s:s, s:s, s:s, s:o, s:b, s:s}", "hypr", "cache", "version", 1,
	    "key", key, "op", op ? op : "", "created_by", created_by ? created_by : "",
	    "layer", l, "empty_layer", layer == NULL,
	    "created", created ? created : "");
	if (j == NULL)
		return hypr_err_set(e, HYPR_EXIT_SYSTEM, "out of memory");
	rc = write_entry(path, j, ++nput <= SYNC_EACH_MAX, e);
	json_decref(j);
	return rc;
}

int
hypr_cache_sync(const struct hypr_root *r, struct hypr_err *e)
{
	char dir[HYPR_PATH_BUF];
	int fd;

	if (hypr_root_path(r, dir, sizeof dir, "cache") < 0)
		return hypr_err_set(e, HYPR_EXIT_SYSTEM, "store path too long");
	if (nput == 0 || (fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
		return 0;
	/* the entries are on disk: their names; or all of it at once */
	if ((nput <= SYNC_EACH_MAX ? fsync(fd) : syncfs(fd)) < 0) {
		close(fd);
		return hypr_err_errno(e, HYPR_EXIT_SYSTEM, "syncing %s", dir);
	}
	close(fd);
	nput = 0;
	return 0;
}

int
hypr_cache_get(const struct hypr_root *r, const char *key, struct hypr_layer *layer,
    int *has_layer)
{
	struct hypr_rec_at at = { .stream = "cache", .what = "cache" };
	struct hypr_err ignore = { 0 };
	char path[HYPR_PATH_BUF];
	json_t *j, *l;
	const char *k;
	int hit = 0;

	*has_layer = 0;
	if (entry_path(r, "cache/", key, path, sizeof path, NULL) < 0 ||
	    (j = read_entry(path)) == NULL)
		return 0;
	k = json_string_value(json_object_get(j, "key"));
	l = json_object_get(j, "layer");
	if (k == NULL || strcmp(k, key) != 0) {
		hit = 0;
	} else if (l == NULL || json_is_null(l)) {
		hit = 1;
	} else if (hypr_layer_decode(&at, l, layer, &ignore) == 0 &&
	    hypr_blob_has(r, layer->digest)) {
		if (!layer->diff_id[0])
			memcpy(layer->diff_id, layer->digest, sizeof(layer->diff_id));
		if (!layer->media_type[0])
			snprintf(layer->media_type, sizeof(layer->media_type), "%s",
			    HYPR_MEDIA_LAYER_TAR);
		hit = *has_layer = 1;
	}
	json_decref(j);
	return hit;
}

/* ---- chain squashfs entries ---- */

int
hypr_cache_squashfs_get(const struct hypr_root *r, const char *key,
    char digest[HYPR_DIGEST_LEN + 1], uint64_t *size)
{
	char path[HYPR_PATH_BUF];
	json_t *j, *sq;
	const char *d;
	int found = 0;

	if (entry_path(r, "cache/squashfs/", key, path, sizeof path, NULL) < 0 ||
	    (j = read_entry(path)) == NULL)
		return 0;
	sq = json_object_get(j, "squashfs");
	d = json_string_value(json_object_get(sq, "digest"));
	if (d && hypr_digest_valid(d)) {
		memcpy(digest, d, HYPR_DIGEST_LEN + 1);
		*size = (uint64_t)json_integer_value(json_object_get(sq, "size"));
		found = 1;
	}
	json_decref(j);
	return found;
}

int
hypr_cache_squashfs_put(const struct hypr_root *r, const char *key,
    const char *const *layers, size_t n, const char *digest, uint64_t size,
    json_t *opts, struct hypr_err *e)
{
	char path[HYPR_PATH_BUF], dir[HYPR_PATH_BUF];
	json_t *jl = json_array(), *j;
	int rc;

	if (entry_path(r, "cache/squashfs/", key, path, sizeof path, e) < 0 ||
	    hypr_root_path(r, dir, sizeof dir, "cache/squashfs") < 0 ||
	    hypr_mkdir_p(dir, 0755, e) < 0) {
		json_decref(jl);
		return -1;
	}
	for (size_t i = 0; i < n; i++)
		json_array_append_new(jl, json_string(layers[i]));
	j = json_pack("{s:s, s:o, s:{s:s, s:I}}", "key", key, "layers", jl,
	    "squashfs", "digest", digest, "size", (json_int_t)size);
	if (j == NULL)
		return hypr_err_set(e, HYPR_EXIT_SYSTEM, "out of memory");
	if (opts)
		json_object_update(json_object_get(j, "squashfs"), opts);
	rc = write_entry(path, j, 0, e);
	json_decref(j);
	return rc;
}

/* ---- both ---- */

static void
each_in(const struct hypr_root *r, const char *sub,
    void (*fn)(void *, const char *, const char *const *, int), void *arg)
{
	char dir[HYPR_PATH_BUF], p[HYPR_PATH_BUF + 256];
	struct dirent *de;
	DIR *d;

	if (hypr_root_path(r, dir, sizeof dir, "%s", sub) < 0 || (d = opendir(dir)) == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		size_t n = strlen(de->d_name), k = 0, nl;
		const char **blobs;
		json_t *j, *layers, *x;
		int broken;

		if (n < 6 || strcmp(de->d_name + n - 5, ".json") != 0)
			continue;
		snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
		j = read_entry(p);
		broken = j == NULL;
		/* an instruction's layer; a chain's squashfs and its layers */
		layers = json_object_get(j, "layers");
		nl = json_array_size(layers);
		if ((blobs = calloc(nl + 3, sizeof *blobs)) == NULL) {
			json_decref(j);
			break;
		}
		if ((blobs[k] = json_string_value(json_object_get(json_object_get(j, "layer"),
		    "digest"))))
			k++;
		if ((blobs[k] = json_string_value(json_object_get(json_object_get(j, "squashfs"),
		    "digest"))))
			k++;
		/* a chain's layers are kept with it, not checked: the squashfs serves alone */
		for (size_t i = 0; i < k; i++)
			broken |= !hypr_digest_valid(blobs[i]) || !hypr_blob_has(r, blobs[i]);
		for (size_t i = 0; i < nl; i++)
			if ((x = json_array_get(layers, i)) && json_is_string(x))
				blobs[k++] = json_string_value(x);
		blobs[k] = NULL;
		fn(arg, p, blobs, broken);
		free(blobs);
		json_decref(j);
	}
	closedir(d);
}

void
hypr_cache_each(const struct hypr_root *r,
    void (*fn)(void *arg, const char *path, const char *const *blobs, int broken),
    void *arg)
{
	each_in(r, "cache", fn, arg);
	each_in(r, "cache/squashfs", fn, arg);
}

int
hypr_cachemount_path(const struct hypr_root *r, const char *id, char *buf, size_t n,
    struct hypr_err *e)
{
	char d[HYPR_DIGEST_LEN + 1];

	/* the id is the user's text: only its digest names a file */
	if (hypr_digest_buf(id, strlen(id), d, e) < 0)
		return -1;
	if (hypr_root_path(r, buf, n, "cachemounts/%.32s.ext4", hypr_digest_hex(d)) < 0)
		return hypr_err_set(e, HYPR_EXIT_SYSTEM, "store path too long");
	return 0;
}

int
hypr_cachemount_scan(const struct hypr_root *r, int reclaim,
    void (*each)(void *arg, const char *name, int live, uint64_t bytes, int removed),
    void *arg, struct hypr_cachemount_usage *u, struct hypr_err *e)
{
	char dir[HYPR_PATH_BUF], p[HYPR_PATH_BUF + 256];
	struct dirent *de;
	DIR *d;

	memset(u, 0, sizeof *u);
	if (hypr_root_path(r, dir, sizeof dir, "cachemounts") < 0)
		return hypr_err_set(e, HYPR_EXIT_SYSTEM, "store path too long");
	if ((d = opendir(dir)) == NULL)
		return errno == ENOENT ? 0 : hypr_err_errno(e, HYPR_EXIT_SYSTEM, "%s", dir);
	while ((de = readdir(d)) != NULL) {
		struct stat st;
		int fd, live, removed = 0;
		uint64_t bytes;

		if (de->d_name[0] == '.')
			continue;
		snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
		if ((fd = open(p, O_RDONLY | O_CLOEXEC)) < 0 || fstat(fd, &st) < 0) {
			if (fd >= 0)
				close(fd);
			continue;
		}
		bytes = (uint64_t)st.st_blocks * 512;
		live = flock(fd, LOCK_EX | LOCK_NB) < 0;
		if (reclaim && !live && unlink(p) == 0) {
			removed = 1;
			u->freed += bytes;
		}
		close(fd);
		u->n++;
		u->bytes += bytes;
		u->live += live != 0;
		if (each)
			each(arg, de->d_name, live, bytes, removed);
	}
	closedir(d);
	return 0;
}
