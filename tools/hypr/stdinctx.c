/* stdinctx.c - `hypr build -`: as docker build, stdin is either a tar of
 * the context (plain or compressed: its first bytes tell) or a Dockerfile
 * with no context at all. Either is spooled into this build's temp
 * directory in the store, which goes when the build ends. */
#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cas.h"
#include "fsutil.h"
#include "hypr.h"
#include "tool.h"

static int
is_tar(const unsigned char *b, size_t n)
{
	static const struct {
		const char *magic;
		size_t off, len;
	} m[] = {
		{ "ustar", 257, 5 },		/* POSIX and GNU tar */
		{ "\x1f\x8b", 0, 2 },		/* gzip */
		{ "BZh", 0, 3 },		/* bzip2 */
		{ "\xfd" "7zXZ", 0, 5 },	/* xz */
		{ "\x28\xb5\x2f\xfd", 0, 4 },	/* zstd */
	};
	size_t i;

	for (i = 0; i < sizeof m / sizeof m[0]; i++)
		if (n >= m[i].off + m[i].len && !memcmp(b + m[i].off, m[i].magic, m[i].len))
			return 1;
	return 0;
}

/* head (n bytes already read) and the rest of stdin into path. */
static void
spool(const char *path, const unsigned char *head, size_t n)
{
	char buf[65536];
	ssize_t r;
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);

	if (fd < 0 || hypr_write_all(fd, head, n) < 0)
		hypr_die(HYPR_EXIT_SYSTEM, "build: %s: %s", path, strerror(errno));
	while ((r = read(0, buf, sizeof buf)) != 0) {
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			hypr_die(HYPR_EXIT_SYSTEM, "build: reading stdin: %s", strerror(errno));
		if (hypr_write_all(fd, buf, (size_t)r) < 0)
			hypr_die(HYPR_EXIT_SYSTEM, "build: %s: %s", path, strerror(errno));
	}
	if (close(fd) < 0)
		hypr_die(HYPR_EXIT_SYSTEM, "build: %s: %s", path, strerror(errno));
}

static int
unsafe_name(const char *n)
{
	size_t l;

	if (!n || !*n || n[0] == '/')
		return 1;
	l = strlen(n);
	return !strcmp(n, "..") || !strncmp(n, "../", 3) || strstr(n, "/../") ||
	    (l >= 3 && !strcmp(n + l - 3, "/.."));
}

/* Unpack the context tar into dir: regular files, directories, symlinks
 * and hard links, with their modes; no name outside dir, nothing written
 * through a symlink. Dies with one line naming the member. */
static void
untar(const char *tarpath, const char *dir)
{
	struct archive *a = archive_read_new(), *w = archive_write_disk_new();
	struct archive_entry *ent;
	int r;

	archive_read_support_format_all(a);
	archive_read_support_filter_all(a);
	archive_write_disk_set_options(w, ARCHIVE_EXTRACT_SECURE_NODOTDOT |
	    ARCHIVE_EXTRACT_SECURE_SYMLINKS | ARCHIVE_EXTRACT_PERM | ARCHIVE_EXTRACT_TIME);
	if (archive_read_open_filename(a, tarpath, 1 << 16) != ARCHIVE_OK)
		hypr_die(HYPR_EXIT_INPUT, "build: the context on stdin: %s",
		    archive_error_string(a));
	while ((r = archive_read_next_header(a, &ent)) == ARCHIVE_OK) {
		char p[HYPR_PATH_BUF + 128], l[HYPR_PATH_BUF + 128], name[HYPR_PATH_BUF];
		const char *n = archive_entry_pathname(ent), *hl = archive_entry_hardlink(ent);
		mode_t type = archive_entry_filetype(ent);

		if (type != AE_IFREG && type != AE_IFDIR && type != AE_IFLNK)
			continue;	/* devices and fifos have no place in a context */
		while (n && n[0] == '.' && n[1] == '/')
			n += 2;
		if (n && (!strcmp(n, ".") || !*n))
			continue;
		if (unsafe_name(n) || (hl && unsafe_name(hl)))
			hypr_die(HYPR_EXIT_INPUT, "build: the context on stdin: unsafe member name '%s'",
			    hl && !unsafe_name(n) ? hl : n ? n : "");
		if (snprintf(p, sizeof p, "%s/%s", dir, n) >= (int)sizeof p ||
		    (hl && snprintf(l, sizeof l, "%s/%s", dir, hl) >= (int)sizeof l))
			hypr_die(HYPR_EXIT_INPUT, "build: the context on stdin: %s: name too long", n);
		/* n is the entry's: kept for the messages below */
		snprintf(name, sizeof name, "%s", n);
		n = name;
		archive_entry_set_pathname(ent, p);
		if (hl)
			archive_entry_set_hardlink(ent, l);
		archive_entry_set_uid(ent, getuid());
		archive_entry_set_gid(ent, getgid());
		if (archive_write_header(w, ent) != ARCHIVE_OK)
			hypr_die(HYPR_EXIT_INPUT, "build: the context on stdin: %s: %s", n,
			    archive_error_string(w));
		if (type == AE_IFREG && archive_entry_size(ent) > 0) {
			const void *buf;
			size_t len;
			la_int64_t off;

			while ((r = archive_read_data_block(a, &buf, &len, &off)) == ARCHIVE_OK)
				if (archive_write_data_block(w, buf, len, off) != ARCHIVE_OK)
					hypr_die(HYPR_EXIT_SYSTEM, "build: the context on stdin: %s: %s",
					    n, archive_error_string(w));
			if (r != ARCHIVE_EOF)
				hypr_die(HYPR_EXIT_INPUT, "build: the context on stdin: %s: %s", n,
				    archive_error_string(a));
		}
		if (archive_write_finish_entry(w) != ARCHIVE_OK)
			hypr_die(HYPR_EXIT_SYSTEM, "build: the context on stdin: %s: %s", n,
			    archive_error_string(w));
	}
	if (r != ARCHIVE_EOF)
		hypr_die(HYPR_EXIT_INPUT, "build: the context on stdin: %s", archive_error_string(a));
	archive_read_free(a);
	archive_write_free(w);
}

void
stdin_context(struct build_opts *o, char *ctx, size_t ctxn, char *df, size_t dfn)
{
	struct hypr_root root;
	struct hypr_err e = { 0 };
	unsigned char head[512];
	char dir[HYPR_PATH_BUF], path[HYPR_PATH_BUF + 32];
	size_t n = 0;
	ssize_t r;

	if (o->file && !strcmp(o->file, "-"))
		hypr_die(HYPR_EXIT_USAGE, "build: -f - and CONTEXT - both want stdin");
	if (isatty(0))
		hypr_die(HYPR_EXIT_USAGE, "build: CONTEXT -: stdin is a terminal (give a Dockerfile "
		    "or a tar of the context on stdin)");
	if (hypr_root_open(&root, NULL, &e) < 0 ||
	    hypr_root_tmp(&root, dir, sizeof dir, &e, "stdin.XXXXXX") < 0)
		hypr_die(HYPR_EXIT_SYSTEM, "build: %s", e.msg);
	if (!mkdtemp(dir))
		hypr_die(HYPR_EXIT_SYSTEM, "build: %s: %s", dir, strerror(errno));
	while (n < sizeof head && (r = read(0, head + n, sizeof head - n)) != 0) {
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			hypr_die(HYPR_EXIT_SYSTEM, "build: reading stdin: %s", strerror(errno));
		n += (size_t)r;
	}
	snprintf(ctx, ctxn, "%s/context", dir);
	if (mkdir(ctx, 0755) < 0)
		hypr_die(HYPR_EXIT_SYSTEM, "build: %s: %s", ctx, strerror(errno));
	if (!is_tar(head, n)) {
		/* a Dockerfile alone: the context is empty */
		if (o->file)
			hypr_die(HYPR_EXIT_USAGE, "build: -f %s: the Dockerfile is on stdin "
			    "(CONTEXT -); -f names one inside a context tar", o->file);
		int fd;

		snprintf(df, dfn, "%s/Dockerfile", dir);
		spool(df, head, n);
		/* hypr-parse reads it on stdin, as with -f -: its lines are
		 * Dockerfile:N, not a temp path */
		if ((fd = open(df, O_RDONLY | O_CLOEXEC)) < 0 || dup2(fd, 0) < 0)
			hypr_die(HYPR_EXIT_SYSTEM, "build: %s: %s", df, strerror(errno));
		close(fd);
		o->file = "-";
		o->context = ctx;
		return;
	}
	snprintf(path, sizeof path, "%s/context.tar", dir);
	spool(path, head, n);
	untar(path, ctx);
	unlink(path);
	/* -f names a file in the tar, as docker's does */
	if (o->file && o->file[0] != '/') {
		if (snprintf(df, dfn, "%s/%s", ctx, o->file) >= (int)dfn)
			hypr_die(HYPR_EXIT_USAGE, "build: -f %s: name too long", o->file);
		o->file = df;
	} else if (!o->file) {
		snprintf(df, dfn, "%s/Dockerfile", ctx);
		if (access(df, F_OK) < 0)
			hypr_die(HYPR_EXIT_USAGE, "build: the context on stdin has no Dockerfile "
			    "(name another with -f)");
		o->file = df;
	}
	o->context = ctx;
}
