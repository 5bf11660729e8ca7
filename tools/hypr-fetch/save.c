/* save.c - hypr-fetch save: stored images out as one tar (lib/save.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fetch.h"
#include "save.h"
#include "store.h"
#include "tool.h"

int
fetch_save(struct fetch *f, const char *root, const char *out, const char *format,
    char *const *names, size_t n, struct hypr_err *e)
{
	struct hypr_store s;
	struct hypr_save_image *im;
	enum hypr_save_format fmt;
	char (*tags)[600], tmp[HYPR_PATH_BUF + 32];
	int fd = 1, rv = -1;

	(void)f;
	if (format == NULL || !strcmp(format, "docker") || !strcmp(format, "docker-archive"))
		fmt = HYPR_SAVE_DOCKER;
	else if (!strcmp(format, "oci") || !strcmp(format, "oci-archive"))
		fmt = HYPR_SAVE_OCI;
	else
		return hypr_err_set(e, HYPR_EXIT_USAGE,
		    "save: --format %s: docker or oci", format);
	if (out == NULL && isatty(1))
		return hypr_err_set(e, HYPR_EXIT_USAGE, "save: cowardly refusing to write an "
		    "archive to a terminal: use -o FILE or redirect");
	if (hypr_store_open(&s, root, 0, e) < 0)
		return -1;
	im = calloc(n, sizeof(*im));
	tags = calloc(n, sizeof(*tags));
	if (im == NULL || tags == NULL) {
		hypr_err_set(e, HYPR_EXIT_SYSTEM, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		struct hypr_image *img;

		if (hypr_store_find(&s, names[i], &img, tags[i], sizeof(tags[i]), e) < 0)
			goto out;
		if (img == NULL || img->m == NULL || img->problem) {
			hypr_err_set(e, HYPR_EXIT_INPUT, "save: image %s%s%s", names[i],
			    img && img->problem ? ": " : " is gone",
			    img && img->problem ? img->problem : "");
			goto out;
		}
		im[i].m = img->m;
		im[i].tag = tags[i][0] ? tags[i] : NULL;
	}
	if (out) {
		snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", out, (long)getpid());
		if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)) < 0) {
			hypr_err_errno(e, HYPR_EXIT_SYSTEM, "save: %s", tmp);
			goto out;
		}
	}
	if (hypr_save_write(&s.root, im, n, fmt, fd, e) < 0)
		goto out;
	if (out) {
		if (fsync(fd) < 0 || close(fd) < 0) {
			fd = -1;
			hypr_err_errno(e, HYPR_EXIT_SYSTEM, "save: %s", out);
			goto out;
		}
		fd = -1;
		if (rename(tmp, out) < 0) {
			hypr_err_errno(e, HYPR_EXIT_SYSTEM, "save: %s", out);
			goto out;
		}
	}
	rv = 0;
out:
	if (out && fd >= 0)
		close(fd);
	if (out && rv < 0)
		unlink(tmp);
	free(im);
	free(tags);
	hypr_store_close(&s);
	return rv;
}
