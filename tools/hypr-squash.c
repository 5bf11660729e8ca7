/* hypr-squash - image stream -> image stream with a squashfs blob; or, alone,
 * a rootfs tar on stdin -> a squashfs image. See hypr-squash(1). */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cas.h"
#include "fsutil.h"
#include "image.h"
#include "imagestream.h"
#include "rootfs.h"
#include "squash.h"
#include "stream.h"
#include "tool.h"

struct opts {
	const char *root;
	const char *output;
	struct hypr_squash_opts sq;
};

static void
usage(FILE *f, int code)
{
	fprintf(f,
	    "usage: hypr-squash [OPTIONS] < image > image\n"
	    "       hypr-squash [OPTIONS] [-o FILE] < rootfs.tar > image.sqfs\n"
	    "Build the squashfs of an image's layer chain (cached by chain), or of\n"
	    "a rootfs tar (plain, gzip, xz or zstd). Mode is chosen by the input.\n"
	    "  -c, --comp NAME        zstd (default), gzip, xz or lz4\n"
	    "  -l, --level N          compression level (zstd 1-22, default 1;\n"
	    "                         gzip 1-9; xz 0-9; lz4: 1 = high compression)\n"
	    "  -b, --block-size N     squashfs block size, power of two, 4K-1M\n"
	    "                         (default 128K; K and M suffixes)\n"
	    "  -o, --output FILE      tar mode: write FILE instead of stdout\n"
	    "  -r, --root DIR         the hypr store (default $HYPR_ROOT)\n"
	    "      --verify           re-digest a cached chain squashfs (full read)\n"
	    "                         and rebuild it if damaged (HYPR_SQUASH_VERIFY=1)\n"
	    "  -h, --help             this help\n"
	    "SOURCE_DATE_EPOCH clamps mtimes and makes the output reproducible.\n");
	exit(code);
}

static long long
num_arg(const char *s, const char *what)
{
	char *end;
	long long v;

	errno = 0;
	v = strtoll(s, &end, 10);
	if (*end == 'K' || *end == 'k') {
		v *= 1024;
		end++;
	} else if (*end == 'M' || *end == 'm') {
		v *= 1024 * 1024;
		end++;
	}
	if (errno || end == s || *end || v < 0 || v > (1LL << 31))
		hypr_die(HYPR_EXIT_USAGE, "%s: bad number '%s'", what, s);
	return v;
}

static void
parse_args(int argc, char *argv[], struct opts *o)
{
	static const struct option lo[] = {
		{ "comp", required_argument, NULL, 'c' },
		{ "level", required_argument, NULL, 'l' },
		{ "block-size", required_argument, NULL, 'b' },
		{ "output", required_argument, NULL, 'o' },
		{ "root", required_argument, NULL, 'r' },
		{ "help", no_argument, NULL, 'h' },
		{ "verify", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	struct hypr_err e = { 0 };
	int c;

	o->sq.comp = getenv("HYPR_SQUASH_COMP") && *getenv("HYPR_SQUASH_COMP") ?
	    getenv("HYPR_SQUASH_COMP") : "zstd";
	o->sq.verify = getenv("HYPR_SQUASH_VERIFY") && !strcmp(getenv("HYPR_SQUASH_VERIFY"), "1");
	while ((c = getopt_long(argc, argv, "c:l:b:o:r:h", lo, NULL)) != -1) {
		switch (c) {
		case 'c': o->sq.comp = optarg; break;
		case 'l': o->sq.level = (int)num_arg(optarg, "--level"); break;
		case 'b': o->sq.block_size = (unsigned)num_arg(optarg, "--block-size"); break;
		case 'o': o->output = optarg; break;
		case 'r': o->root = optarg; break;
		case 'h': usage(stdout, 0); break;
		case 'V': o->sq.verify = 1; break;
		default: usage(stderr, HYPR_EXIT_USAGE);
		}
	}
	if (optind != argc)
		usage(stderr, HYPR_EXIT_USAGE);
	if (hypr_squash_opts_check(&o->sq, &e) < 0)
		hypr_die_err(&e);
	if ((o->sq.epoch = hypr_image_epoch(&e)) < -1)
		hypr_die_err(&e);
}

/* First byte of stdin without consuming it: -1 on empty input. */
static int
peek_stdin(void)
{
	struct stat st;
	unsigned char c;
	int p[2];
	ssize_t n;

	if (fstat(STDIN_FILENO, &st) < 0)
		hypr_die_errno("standard input");
	if (S_ISREG(st.st_mode)) {
		off_t off = lseek(STDIN_FILENO, 0, SEEK_CUR);

		if ((n = pread(STDIN_FILENO, &c, 1, off < 0 ? 0 : off)) < 0)
			hypr_die_errno("reading standard input");
		return n == 0 ? -1 : c;
	}
	if (!S_ISFIFO(st.st_mode))
		hypr_die(HYPR_EXIT_USAGE, "standard input must be a file or a pipe");
	/* tee copies pipe data without consuming it */
	if (pipe2(p, O_CLOEXEC) < 0)
		hypr_die_errno("pipe");
	do
		n = tee(STDIN_FILENO, p[1], 1, 0);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		hypr_die_errno("peeking at standard input");
	if (n == 0) {
		close(p[0]);
		close(p[1]);
		return -1;
	}
	if (read(p[0], &c, 1) != 1)
		hypr_die_errno("peeking at standard input");
	close(p[0]);
	close(p[1]);
	return c;
}

static int
copy_to_stdout(const char *path)
{
	static char buf[1 << 18];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -1;
	fflush(stdout);
	while ((n = read(fd, buf, sizeof(buf))) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 || hypr_write_all(STDOUT_FILENO, buf, (size_t)n) < 0) {
			close(fd);
			return -1;
		}
	}
	close(fd);
	return 0;
}

static int
tar_mode(struct opts *o)
{
	struct hypr_err e = { 0 };
	const char *tmpdir = getenv("TMPDIR"), *name = "stdin";
	char tmp[HYPR_PATH_BUF];
	int fd = STDIN_FILENO;

	if (!tmpdir || !*tmpdir)
		tmpdir = "/tmp";
	if (o->output) {
		if (hypr_rootfs_squash_fds(&fd, &name, 1, tmpdir, o->output, &o->sq, &e) < 0)
			hypr_die_err(&e);
		return hypr_close_stdout();
	}
	if (isatty(STDOUT_FILENO))
		hypr_die(HYPR_EXIT_USAGE, "refusing to write a squashfs to a terminal (use -o FILE)");
	/* tar2sqfs seeks in its output, so a pipe gets a copy of a temp file */
	snprintf(tmp, sizeof(tmp), "%s/hypr-squash.%ld.sqfs", tmpdir, (long)getpid());
	if (hypr_rootfs_squash_fds(&fd, &name, 1, tmpdir, tmp, &o->sq, &e) < 0)
		hypr_die_err(&e);
	if (copy_to_stdout(tmp) < 0) {
		int saved = errno;

		unlink(tmp);
		errno = saved;
		hypr_die_errno("writing standard output");
	}
	unlink(tmp);
	return hypr_close_stdout();
}

static int
stream_mode(struct opts *o)
{
	static const char *const known[] = { NULL };
	struct hypr_err e = { 0 };
	struct hypr_root r;
	struct hypr_stream_in in;
	struct hypr_stream_out out;
	json_t *rec, *extra;
	int rv;

	if (hypr_root_open(&r, o->root, &e) < 0)
		hypr_die_err(&e);
	if (hypr_stream_open(&in, stdin, "image", "image", HYPR_IMAGE_VERSION, known, &e) < 0)
		hypr_die_err(&e);
	if ((extra = hypr_stream_header_rest(&in)) == NULL)
		hypr_die(HYPR_EXIT_SYSTEM, "out of memory");
	if (hypr_stream_begin(&out, stdout, "image", HYPR_IMAGE_VERSION, extra, &e) < 0)
		hypr_die_err(&e);
	json_decref(extra);
	while ((rv = hypr_stream_next(&in, &rec, &e)) == 1) {
		if (hypr_image_rec_is(rec)) {
			struct hypr_image_rec img;
			struct hypr_image_squashfs sq = { .compression = o->sq.comp };
			char d[HYPR_DIGEST_LEN + 1];
			uint64_t size = 0;
			const char **ds;
			int built;

			if (hypr_image_rec_decode(rec, in.name, in.line, &img, &e) < 0)
				hypr_die_err(&e);
			if ((ds = hypr_layers_digests(img.layers, img.nlayers)) == NULL)
				hypr_die_errno("squash");
			if (hypr_rootfs_squashfs_blob(&r, ds, img.nlayers, &o->sq, d, &size, &built,
			    &e) < 0)
				hypr_die_err(&e);
			free(ds);
			hypr_image_rec_free(&img);
			sq.digest = d;
			sq.size = (int64_t)size;
			if (hypr_image_rec_set_squashfs(rec, &sq, &e) < 0)
				hypr_die_err(&e);
		}
		if (hypr_stream_put(&out, rec, &e) < 0)
			hypr_die_err(&e);
		json_decref(rec);
	}
	if (rv < 0)
		hypr_die_err(&e);
	if (hypr_stream_end(&out, &e) < 0)
		hypr_die_err(&e);
	hypr_stream_close(&in);
	return hypr_close_stdout();
}

int
main(int argc, char *argv[])
{
	struct opts o = { 0 };
	int c;

	hypr_prog = "hypr-squash";
	hypr_tool_events();	/* HYPR_EVENTS_FD: warnings and errors as records */
	hypr_remove_tmp_on_signals();
	parse_args(argc, argv, &o);
	hypr_refuse_tty_stdin("an image stream or a tar");
	if ((c = peek_stdin()) < 0)
		hypr_die(HYPR_EXIT_INPUT, "empty input (expected an image stream or a tar)");
	if (c == '{')
		return stream_mode(&o);
	return tar_mode(&o);
}
