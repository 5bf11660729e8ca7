/* Unit tests for lib/gzip.c: what it writes is gzip (GNU gzip reads it
 * back to the same bytes), the same bytes on any number of threads and
 * through the stream, and random data goes in stored blocks. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "../../lib/gzip.h"

static char dir[] = "/tmp/hypr-gzip-test.XXXXXX";

static void
path(char *out, size_t n, const char *name)
{
	snprintf(out, n, "%s/%s", dir, name);
}

/* A file of size bytes: text, runs of zeros and random data in turn. */
static void
make_file(const char *name, size_t size, int kind)
{
	char p[256];
	FILE *f;
	uint32_t x = 2463534242u;

	path(p, sizeof(p), name);
	f = fopen(p, "w");
	for (size_t i = 0; i < size; i++) {
		int c;

		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		if (kind == 0)
			c = (int)(x & 0xff);
		else if ((i >> 19) % 3 == 0)
			c = "hypr gzip slices\n"[i % 17];
		else if ((i >> 19) % 3 == 1)
			c = 0;
		else
			c = (int)(x & 0xff);
		fputc(c, f);
	}
	fclose(f);
}

static off_t
size_of(const char *p)
{
	struct stat st;

	return stat(p, &st) == 0 ? st.st_size : -1;
}

static int
same_files(const char *a, const char *b)
{
	char cmd[600];

	snprintf(cmd, sizeof(cmd), "cmp -s %s %s", a, b);
	return system(cmd) == 0;
}

static void
roundtrip(const char *name)
{
	char in[256], out[300], out1[300], cmd[1000];
	struct hypr_err e = { 0 };

	path(in, sizeof(in), name);
	snprintf(out, sizeof(out), "%s.gz", in);
	snprintf(out1, sizeof(out1), "%s.1.gz", in);
	CHECK(hypr_gzip_file(in, out, 0, &e) == 0);
	CHECK(hypr_gzip_file(in, out1, 1, &e) == 0);
	CHECK(same_files(out, out1));
	CHECK(hypr_gzip_file(in, out1, 5, &e) == 0);
	CHECK(same_files(out, out1));
	snprintf(cmd, sizeof(cmd), "gzip -t %s && gzip -dc %s | cmp -s - %s", out, out, in);
	CHECK(system(cmd) == 0);
	{
		/* the stream is the file's bytes */
		struct hypr_gzip *g;
		int fd;
		FILE *f;
		char buf[65536];
		ssize_t k;

		CHECK(hypr_gzip_start(in, &g, &fd, &e) == 0);
		f = fopen(out1, "w");
		while ((k = read(fd, buf, sizeof(buf))) > 0)
			fwrite(buf, 1, (size_t)k, f);
		fclose(f);
		close(fd);
		CHECK(hypr_gzip_finish(g, &e) == 0);
		CHECK(same_files(out, out1));
	}
}

int
main(void)
{
	char p[256], q[256];
	struct hypr_err e = { 0 };

	if (mkdtemp(dir) == NULL)
		return 1;
	make_file("empty", 0, 1);
	make_file("small", 1000, 1);
	make_file("mixed", (5u << 20) + 12345, 1);
	make_file("random", 3u << 20, 0);
	roundtrip("empty");
	roundtrip("small");
	roundtrip("mixed");
	roundtrip("random");
	/* text and zeros shrink, random data is stored: 5 bytes in 65535 */
	path(p, sizeof(p), "mixed.gz");
	CHECK(size_of(p) < (5 << 20) / 2);
	path(p, sizeof(p), "random.gz");
	CHECK(size_of(p) > (3 << 20) && size_of(p) < (3 << 20) + (3 << 20) / 8000 + 200);
	/* a reader that stops early: the workers stop, finish says so */
	{
		struct hypr_gzip *g;
		int fd;
		char buf[100];

		path(p, sizeof(p), "random");
		CHECK(hypr_gzip_start(p, &g, &fd, &e) == 0);
		CHECK(read(fd, buf, sizeof(buf)) > 0);
		close(fd);
		CHECK(hypr_gzip_finish(g, &e) < 0);
		CHECK(strstr(e.msg, "gzip") != NULL);
	}
	/* a missing file: an error naming it, no output left */
	path(p, sizeof(p), "missing");
	path(q, sizeof(q), "missing.gz");
	CHECK(hypr_gzip_file(p, q, 0, &e) < 0 && strstr(e.msg, "missing") != NULL);
	CHECK(access(q, F_OK) != 0);
	{
		char cmd[300];

		snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
		if (system(cmd) != 0)
			return 1;
	}
	CHECK_DONE();
}
