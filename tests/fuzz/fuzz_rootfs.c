/* libFuzzer target: layer flattening and whiteouts (lib/rootfs.c,
 * hypr_rootfs_flatten_fds). The input is a small program that writes up to
 * four layer tars: files, directories, symlinks, hard links, whiteouts
 * (.wh.NAME), opaque markers (.wh..wh..opq) and raw names (absolute,
 * "..", "./a//b"), names drawn from a small alphabet so that layers
 * collide. The flattened tar goes to a memory file and is read back.
 * Beyond "no crash", it checks what the rootfs contract says:
 * - a refused chain is bad input;
 * - the result has no whiteout, no absolute or ".." name, no name twice,
 *   parents before children, and every hard link names an earlier entry. */
#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include "map.h"
#include "rootfs.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAXLAYERS 4

/* HYPR_FUZZ_VERBOSE=1: print the layers and the result (for a reproducer) */
static int verbose;

struct in {
	const uint8_t *p;
	size_t n;
};

static int
byte(struct in *in)
{
	if (in->n == 0)
		return -1;
	in->n--;
	return *in->p++;
}

/* A name: bytes mapped onto "ab./" and a few more, so that names repeat;
 * a leading 0xff takes the next bytes as they are. */
static void
name(struct in *in, char *buf, size_t cap)
{
	static const char alpha[] = "ab/./c..-";
	int raw = in->n && in->p[0] == 0xff, c;
	size_t k = 0;

	if (raw)
		byte(in);
	while (k + 1 < cap && (c = byte(in)) > 0 && c != 0xfe)
		buf[k++] = raw ? (char)c : alpha[c % (sizeof(alpha) - 1)];
	buf[k] = '\0';
	if (k == 0)
		snprintf(buf, cap, "a");
}

static void
add(struct archive *a, const char *path, mode_t type, int mode, const char *link,
    int hard, const char *data, size_t len)
{
	struct archive_entry *e = archive_entry_new();

	if (verbose)
		fprintf(stderr, "  %06o %s%s%s\n", (unsigned)(type | ((mode_t)mode & 07777)), path,
		    link ? (hard ? " => " : " -> ") : "", link ? link : "");
	archive_entry_set_pathname(e, path);
	archive_entry_set_filetype(e, type);
	archive_entry_set_perm(e, (mode_t)mode & 07777);
	archive_entry_set_mtime(e, 1000, 0);
	if (hard)
		archive_entry_set_hardlink(e, link);
	else if (link)
		archive_entry_set_symlink(e, link);
	archive_entry_set_size(e, type == AE_IFREG && !hard ? (la_int64_t)len : 0);
	if (archive_write_header(a, e) == ARCHIVE_OK && len && type == AE_IFREG && !hard)
		archive_write_data(a, data, len);
	archive_entry_free(e);
}

static struct archive *
layer_open(int fd, int gz)
{
	struct archive *a = archive_write_new();

	archive_write_set_format_pax_restricted(a);
	if (gz)
		archive_write_add_filter_gzip(a);
	if (archive_write_open_fd(a, fd) != ARCHIVE_OK) {
		archive_write_free(a);
		return NULL;
	}
	return a;
}

/* Read the flattened tar back and check it. */
static void
check_output(int fd)
{
	struct archive *a = archive_read_new();
	struct archive_entry *e;
	struct hypr_map seen = { 0 };	/* name -> its position, from 1 */
	char **names = NULL;
	size_t n = 0;

	lseek(fd, 0, SEEK_SET);
	archive_read_support_format_tar(a);
	archive_read_set_options(a, "hdrcharset=BINARY");
	if (archive_read_open_fd(a, fd, 65536) != ARCHIVE_OK)
		__builtin_trap();
	while (archive_read_next_header(a, &e) == ARCHIVE_OK) {
		const char *p = archive_entry_pathname(e), *h = archive_entry_hardlink(e);
		char **nv;

		if (verbose)
			fprintf(stderr, "out %s%s%s\n", p ? p : "(null)", h ? " => " : "", h ? h : "");
		if (p == NULL || p[0] == '/' || !strcmp(p, "..") || !strncmp(p, "../", 3) ||
		    strstr(p, "/../") || (strlen(p) >= 3 && !strcmp(p + strlen(p) - 3, "/..")))
			__builtin_trap();
		/* no component is a whiteout's name, last or not */
		if (!strncmp(p, ".wh.", 4) || strstr(p, "/.wh."))
			__builtin_trap();
		if (hypr_map_get(&seen, p))
			__builtin_trap();
		if (h && !hypr_map_get(&seen, h))
			__builtin_trap();
		if ((nv = realloc(names, (n + 1) * sizeof(*nv))) == NULL)
			break;
		names = nv;
		names[n++] = strdup(p);
		hypr_map_set(&seen, p, (void *)(uintptr_t)n, NULL);
		archive_read_data_skip(a);
	}
	archive_read_free(a);
	/* a parent that is there comes before its children */
	for (size_t i = 0; i < n; i++) {
		char parent[4096];
		uintptr_t at;

		snprintf(parent, sizeof(parent), "%s", names[i] ? names[i] : "");
		if (parent[0] && parent[strlen(parent) - 1] == '/')
			parent[strlen(parent) - 1] = '\0';
		if (strrchr(parent, '/') == NULL)
			continue;
		*strrchr(parent, '/') = '\0';
		if ((at = (uintptr_t)hypr_map_get(&seen, parent)) != 0 && at > i + 1)
			__builtin_trap();
		strcat(parent, "/");
		if ((at = (uintptr_t)hypr_map_get(&seen, parent)) != 0 && at > i + 1)
			__builtin_trap();
	}
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	hypr_map_free(&seen, NULL);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct in in = { data, size };
	int fds[MAXLAYERS], out, nl = 0, c;
	const char *names[MAXLAYERS] = { "l0", "l1", "l2", "l3" };
	struct archive *a = NULL;
	struct hypr_err e = { 0 };

	if (size > 4096)
		return 0;
	verbose = getenv("HYPR_FUZZ_VERBOSE") != NULL;
	while ((c = byte(&in)) >= 0) {
		char n1[128], n2[128], buf[300];
		int mode = byte(&in);

		if (a == NULL || c % 8 == 0) {
			if (a) {
				archive_write_close(a);
				archive_write_free(a);
				a = NULL;
			}
			if (nl == MAXLAYERS)
				break;
			if (verbose)
				fprintf(stderr, "layer %d\n", nl);
			if ((fds[nl] = memfd_create("layer", MFD_CLOEXEC)) < 0)
				goto out;
			if ((a = layer_open(fds[nl], c & 0x80)) == NULL) {
				close(fds[nl]);
				goto out;
			}
			nl++;
			if (c % 8 == 0)
				continue;
		}
		name(&in, n1, sizeof(n1));
		switch (c % 8) {
		case 1:
			add(a, n1, AE_IFREG, mode < 0 ? 0644 : mode, NULL, 0, n1, strlen(n1));
			break;
		case 2:
			add(a, n1, AE_IFDIR, 0755, NULL, 0, NULL, 0);
			break;
		case 3:
			name(&in, n2, sizeof(n2));
			add(a, n1, AE_IFLNK, 0777, n2, 0, NULL, 0);
			break;
		case 4:
			name(&in, n2, sizeof(n2));
			add(a, n1, AE_IFREG, 0644, n2, 1, NULL, 0);
			break;
		case 5: {
			char *s = strrchr(n1, '/');

			if (s)
				snprintf(buf, sizeof(buf), "%.*s/.wh.%s", (int)(s - n1), n1, s + 1);
			else
				snprintf(buf, sizeof(buf), ".wh.%s", n1);
			add(a, buf, AE_IFREG, 0644, NULL, 0, NULL, 0);
			break;
		}
		case 6:
			snprintf(buf, sizeof(buf), "%s/.wh..wh..opq", n1);
			add(a, buf, AE_IFREG, 0644, NULL, 0, NULL, 0);
			break;
		default:
			add(a, n1, AE_IFREG, 0600, NULL, 0, "x", 1);
			break;
		}
	}
	if (a) {
		archive_write_close(a);
		archive_write_free(a);
	}
	if (nl == 0)
		return 0;
	for (int i = 0; i < nl; i++)
		lseek(fds[i], 0, SEEK_SET);
	if ((out = memfd_create("flat", MFD_CLOEXEC)) < 0)
		goto out;
	if (hypr_rootfs_flatten_fds(fds, names, (size_t)nl, out, 1000, "/tmp", &e) < 0) {
		if (verbose)
			fprintf(stderr, "error %d: %s\n", e.code, e.msg);
		if (e.code != HYPR_EXIT_INPUT)
			__builtin_trap();
	} else {
		check_output(out);
	}
	close(out);
out:
	for (int i = 0; i < nl; i++)
		close(fds[i]);
	return 0;
}
