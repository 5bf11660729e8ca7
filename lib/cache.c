/* cache.c - the build caches under $HYPR_ROOT. See cache.h. */
#include "cache.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "digest.h"

int
hypr_cachemount_path(const struct hypr_root *r, const char *id, char *buf, size_t n,
    struct hypr_err *e)
{
	char d[HYPR_DIGEST_LEN + 1];

	/* the id is the user's text: only its digest names a file */
	if (hypr_digest_buf(id, strlen(id), d, e) < 0)
		return -1;
	if (hypr_root_path(r, buf, n, "cachemounts/%.32s.ext4", d + 7) < 0)
		return hypr_err_set(e, HYPR_EXIT_SYSTEM, "store path too long");
	return 0;
}

int
hypr_cachemount_scan(const struct hypr_root *r, int reclaim,
    void (*each)(void *arg, const char *name, int live, uint64_t bytes, int removed),
    void *arg, struct hypr_cachemount_usage *u, struct hypr_err *e)
{
	char dir[4300], p[4600];
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
