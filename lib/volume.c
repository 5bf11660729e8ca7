/* volume.c - the named volumes of hypr run (see volume.h). */
#include "volume.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "container.h"
#include "fsutil.h"

int
hypr_vol_name_ok(const char *name)
{
	size_t n = strlen(name);

	if (n < 2 || n > 255)
		return 0;
	for (const char *p = name; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		    (*p >= '0' && *p <= '9') || (p > name && strchr("_.-", *p))))
			return 0;
	return 1;
}

static int
vol_dir(const struct hypr_root *r, char *buf, size_t n, const char *name, const char *sub,
    struct hypr_err *e)
{
	if (hypr_root_path(r, buf, n, "volumes%s%s%s%s", name ? "/" : "", name ? name : "",
	    sub ? "/" : "", sub ? sub : "") < 0)
		return hypr_err_set(e, HYPR_EXIT_USAGE, "HYPR_ROOT too long");
	return 0;
}

int
hypr_vol_lock(const struct hypr_root *r, int *fd, struct hypr_err *e)
{
	char p[4400];

	if (vol_dir(r, p, sizeof p, NULL, NULL, e) < 0 || hypr_mkdir_p(p, 0700, e) < 0 ||
	    vol_dir(r, p, sizeof p, ".lock", NULL, e) < 0)
		return -1;
	if ((*fd = open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0600)) < 0)
		return hypr_err_errno(e, HYPR_EXIT_SYSTEM, "%s", p);
	while (flock(*fd, LOCK_EX) < 0)
		if (errno != EINTR) {
			close(*fd);
			*fd = -1;
			return hypr_err_errno(e, HYPR_EXIT_SYSTEM, "locking %s", p);
		}
	return 0;
}

int
hypr_vol_get(const struct hypr_root *r, const char *name, int create, json_t *labels,
    int anonymous, char *data, size_t n, int *made, struct hypr_err *e)
{
	char dir[4400], top[4400], tmp[4700], p[4800];
	struct stat st;
	json_t *meta;
	char *text;
	int rc;

	if (made)
		*made = 0;
	if (!hypr_vol_name_ok(name))
		return hypr_err_set(e, HYPR_EXIT_USAGE, "%s: invalid volume name: only "
		    "[a-zA-Z0-9][a-zA-Z0-9_.-] are allowed, two characters at least", name);
	if (vol_dir(r, dir, sizeof dir, name, NULL, e) < 0 ||
	    vol_dir(r, data, n, name, "_data", e) < 0)
		return -1;
	if (stat(data, &st) == 0 && S_ISDIR(st.st_mode))
		return 0;
	if (!create)
		return hypr_err_set(e, HYPR_EXIT_INPUT, "no such volume: %s", name);
	/* whole under a temporary name, then renamed: never half made */
	if (vol_dir(r, top, sizeof top, NULL, NULL, e) < 0)
		return -1;
	snprintf(tmp, sizeof tmp, "%s/.new-%s.%ld", top, name, (long)getpid());
	hypr_rm_rf(tmp, e);
	snprintf(p, sizeof p, "%s/_data", tmp);
	if (hypr_mkdir_p(p, 0755, e) < 0)
		return -1;
	meta = json_pack("{s:s,s:I,s:o,s:b}", "name", name, "created",
	    (json_int_t)hypr_ctr_now_ns(), "labels", labels ? json_incref(labels) : json_object(),
	    "anonymous", anonymous);
	text = json_dumps(meta, JSON_SORT_KEYS | JSON_COMPACT);
	json_decref(meta);
	snprintf(p, sizeof p, "%s/meta.json", tmp);
	rc = text ? hypr_write_atomic(p, text, strlen(text), 0644, e) :
	    hypr_err_set(e, HYPR_EXIT_SYSTEM, "out of memory");
	free(text);
	if (rc < 0 || rename(tmp, dir) < 0) {
		int saved = errno;
		struct hypr_err ign = { 0 };
		hypr_rm_rf(tmp, &ign);
		if (rc < 0)
			return -1;
		errno = saved;
		return hypr_err_errno(e, HYPR_EXIT_SYSTEM, "%s", dir);
	}
	if (made)
		*made = 1;
	return 0;
}

json_t *
hypr_vol_meta(const struct hypr_root *r, const char *name, struct hypr_err *e)
{
	char p[4400], data[4400], *buf;
	size_t len;
	json_t *j;

	if (hypr_vol_get(r, name, 0, NULL, 0, data, sizeof data, NULL, e) < 0 ||
	    vol_dir(r, p, sizeof p, name, "meta.json", e) < 0)
		return NULL;
	if (hypr_read_file(p, 1u << 20, &buf, &len, e) < 0)
		return NULL;
	j = json_loadb(buf, len, 0, NULL);
	free(buf);
	if (!json_is_object(j)) {
		json_decref(j);
		hypr_err_set(e, HYPR_EXIT_INPUT, "%s: not a volume's meta.json", p);
		return NULL;
	}
	json_object_set_new(j, "mountpoint", json_string(data));
	return j;
}

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int
hypr_vol_list(const struct hypr_root *r, json_t **names, struct hypr_err *e)
{
	char dir[4400];
	DIR *d;
	struct dirent *de;
	char **v = NULL;
	size_t n = 0, cap = 0;

	*names = json_array();
	if (vol_dir(r, dir, sizeof dir, NULL, NULL, e) < 0)
		return -1;
	if (!(d = opendir(dir)))
		return errno == ENOENT ? 0 : hypr_err_errno(e, HYPR_EXIT_SYSTEM, "%s", dir);
	while ((de = readdir(d))) {
		if (!hypr_vol_name_ok(de->d_name))
			continue;	/* ., .., .lock, .new-* */
		if (n == cap) {
			char **nv = realloc(v, (cap = cap ? cap * 2 : 16) * sizeof *nv);
			if (!nv)
				break;
			v = nv;
		}
		if (!(v[n] = strdup(de->d_name)))
			break;
		n++;
	}
	closedir(d);
	if (n)
		qsort(v, n, sizeof *v, cmp_str);
	for (size_t i = 0; i < n; i++) {
		json_array_append_new(*names, json_string(v[i]));
		free(v[i]);
	}
	free(v);
	return 0;
}

int
hypr_vol_users(const struct hypr_root *r, const char *name, json_t **ids, struct hypr_err *e)
{
	struct hypr_ctr *v;
	size_t n;

	*ids = json_array();
	if (hypr_ctr_list(r, &v, &n, e) < 0)
		return -1;
	for (size_t i = 0; i < n; i++) {
		json_t *m;
		size_t k;

		json_array_foreach(json_object_get(v[i].config, "volumes"), k, m) {
			const char *vn = json_string_value(json_object_get(m, "volume"));
			if (vn && !strcmp(vn, name)) {
				json_array_append_new(*ids, json_string(v[i].id));
				break;
			}
		}
	}
	hypr_ctr_list_free(v, n);
	return 0;
}

int
hypr_vol_remove(const struct hypr_root *r, const char *name, uint64_t *freed,
    struct hypr_err *e)
{
	char dir[4400], top[4400], gone[4500];

	if (!hypr_vol_name_ok(name) || vol_dir(r, dir, sizeof dir, name, NULL, e) < 0 ||
	    access(dir, F_OK) < 0)
		return hypr_err_set(e, HYPR_EXIT_INPUT, "no such volume: %s", name);
	if (vol_dir(r, top, sizeof top, NULL, NULL, e) < 0)
		return -1;
	if (freed)
		*freed += hypr_disk_usage(dir);
	/* out of the list at once, then its files */
	snprintf(gone, sizeof gone, "%s/.gone-%s.%ld", top, name, (long)getpid());
	if (rename(dir, gone) < 0)
		return hypr_err_errno(e, HYPR_EXIT_SYSTEM, "%s", dir);
	return hypr_rm_rf(gone, e);
}

int
hypr_vol_drop_anonymous(const struct hypr_root *r, json_t *config, struct hypr_err *e)
{
	json_t *m;
	size_t k;
	int fd = -1, rc = 0;

	json_array_foreach(json_object_get(config, "volumes"), k, m) {
		const char *vn = json_string_value(json_object_get(m, "volume"));
		json_t *ids;

		if (!vn || !json_is_true(json_object_get(m, "anonymous")))
			continue;
		if (fd < 0 && hypr_vol_lock(r, &fd, e) < 0)
			return -1;
		if (hypr_vol_users(r, vn, &ids, e) < 0) {
			rc = -1;
			break;
		}
		if (!json_array_size(ids) && hypr_vol_remove(r, vn, NULL, e) < 0 &&
		    e->code != HYPR_EXIT_INPUT)
			rc = -1;
		json_decref(ids);
	}
	if (fd >= 0)
		close(fd);
	return rc;
}
