/* Unit tests for lib/err, lib/stream, lib/digest, lib/cas and lib/fsutil. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cas.h"
#include "check.h"
#include "digest.h"
#include "fsutil.h"
#include "stream.h"

static FILE *
mem(const char *s)
{
	return fmemopen((void *)s, strlen(s), "r");
}

static int
read_all(const char *text, size_t *n, struct hypr_err *e)
{
	struct hypr_stream_in s;
	const char *known[] = { "heredoc", NULL };
	json_t *r;
	int k;
	FILE *f = mem(text);

	*n = 0;
	if (hypr_stream_open(&s, f, "t", "plan", 1, known, e) < 0) {
		fclose(f);
		return -1;
	}
	while ((k = hypr_stream_next(&s, &r, e)) > 0) {
		json_decref(r);
		(*n)++;
	}
	hypr_stream_close(&s);
	fclose(f);
	return k;
}

static void
test_stream(void)
{
	struct hypr_err e = { 0 };
	size_t n;
	char *buf = NULL;
	size_t len = 0;
	FILE *o = open_memstream(&buf, &len);
	struct hypr_stream_out out;
	json_t *rec = json_pack("{s:s,s:i}", "type", "x", "n", 1);

	CHECK(hypr_stream_begin(&out, o, "plan", 1, NULL, &e) == 0);
	CHECK(hypr_stream_put(&out, rec, &e) == 0);
	CHECK(hypr_stream_put(&out, rec, &e) == 0);
	CHECK(hypr_stream_end(&out, &e) == 0);
	fclose(o);
	json_decref(rec);
	CHECK(strcmp(buf, "{\"hypr\":\"plan\",\"version\":1}\n"
	    "{\"type\":\"x\",\"n\":1}\n{\"type\":\"x\",\"n\":1}\n"
	    "{\"end\":true,\"records\":2}\n") == 0);
	CHECK(read_all(buf, &n, &e) == 0 && n == 2);
	free(buf);

	/* truncated: no end record */
	memset(&e, 0, sizeof(e));
	CHECK(read_all("{\"hypr\":\"plan\",\"version\":1}\n{\"a\":1}\n", &n, &e) < 0);
	CHECK(e.code == HYPR_EXIT_INPUT && strstr(e.msg, "truncated"));
	/* wrong count */
	memset(&e, 0, sizeof(e));
	CHECK(read_all("{\"hypr\":\"plan\",\"version\":1}\n{\"end\":true,\"records\":3}\n",
	    &n, &e) < 0 && e.code == HYPR_EXIT_INPUT);
	/* wrong format, future version, unknown needs */
	CHECK(read_all("{\"hypr\":\"image\",\"version\":1}\n", &n, &e) < 0);
	CHECK(strcmp(e.msg, "t:1: not a plan stream (header says image)") == 0);
	CHECK(read_all("{\"hypr\":\"plan\",\"version\":2}\n", &n, &e) < 0);
	CHECK(read_all("{\"hypr\":\"plan\",\"version\":1,\"needs\":[\"zz\"]}\n"
	    "{\"end\":true,\"records\":0}\n", &n, &e) < 0);
	CHECK(read_all("{\"hypr\":\"plan\",\"version\":1,\"needs\":[\"heredoc\"]}\n"
	    "{\"end\":true,\"records\":0}\n", &n, &e) == 0);
	/* bad JSON, non-object, empty */
	CHECK(read_all("{\"hypr\":\"plan\",\"version\":1}\n{oops\n", &n, &e) < 0);
	CHECK(strstr(e.msg, "t:2: bad JSON") != NULL);
	CHECK(read_all("{\"hypr\":\"plan\",\"version\":1}\n[1]\n", &n, &e) < 0);
	CHECK(read_all("", &n, &e) < 0 && e.code == HYPR_EXIT_INPUT);
}

static void
test_digest(void)
{
	char d[HYPR_DIGEST_LEN + 1];
	struct hypr_err e = { 0 };

	CHECK(hypr_digest_buf("abc", 3, d, &e) == 0);
	CHECK(strcmp(d, "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad") == 0);
	CHECK(hypr_digest_valid(d));
	CHECK(!hypr_digest_valid("sha256:BA7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"));
	CHECK(!hypr_digest_valid("sha256:../../etc/passwd"));
	CHECK(!hypr_digest_valid("md5:abc"));
	CHECK(!hypr_digest_valid(NULL));
}

static void
test_cas(void)
{
	char dir[] = "/tmp/hypr-unit.XXXXXX", d[HYPR_DIGEST_LEN + 1], p[4300];
	struct hypr_root r;
	struct hypr_err e = { 0 };
	struct hypr_blob_writer w;
	char *buf;
	size_t len;
	uint64_t size;

	CHECK(mkdtemp(dir) != NULL);
	CHECK(hypr_root_open(&r, dir, &e) == 0);
	CHECK(hypr_blob_put_buf(&r, "abc", 3, d, &e) == 0);
	CHECK(hypr_blob_has(&r, d));
	CHECK(hypr_blob_read(&r, d, 100, &buf, &len, &e) == 0 && len == 3);
	free(buf);
	/* a mismatching expected digest stores nothing */
	CHECK(hypr_blob_begin(&w, &r, &e) == 0);
	CHECK(hypr_blob_write(&w, "abd", 3, &e) == 0);
	CHECK(hypr_blob_commit(&w, d, NULL, &size, &e) < 0 && e.code == HYPR_EXIT_INPUT);
	CHECK(strstr(e.msg, "digest mismatch") != NULL);
	/* a corrupted blob is detected on read */
	CHECK(hypr_blob_path(&r, d, p, sizeof(p), &e) == 0);
	CHECK(hypr_write_atomic(p, "xyz", 3, 0644, &e) == 0);
	CHECK(hypr_blob_read(&r, d, 100, &buf, &len, &e) < 0 && strstr(e.msg, "corrupt"));
	CHECK(hypr_blob_path(&r, "sha256:../x", p, sizeof(p), &e) < 0);
	/* the temp files were in this process's temp dir, held and live */
	{
		struct hypr_tmp_usage u;
		char t[4300], dead[4400];

		CHECK(hypr_root_tmp(&r, t, sizeof(t), &e, "x") == 0);
		CHECK(strstr(t, "/tmp/foundation.") != NULL);
		/* a dead program's dir, a stray file */
		CHECK(hypr_root_path(&r, dead, sizeof(dead), "tmp/x.1700000000.1.abcdef") == 0 &&
		    mkdir(dead, 0755) == 0);
		CHECK(hypr_root_path(&r, dead, sizeof(dead), "tmp/stray") == 0 &&
		    hypr_write_atomic(dead, "s", 1, 0644, &e) == 0);
		CHECK(hypr_root_tmp_scan(&r, 0, NULL, NULL, &u, &e) == 0);
		CHECK(u.n == 3 && u.live == 1 && u.live_since > 1700000000 && u.freed == 0);
		/* 2: only dead temp dirs; 1: every entry nothing holds */
		CHECK(hypr_root_tmp_scan(&r, 2, NULL, NULL, &u, &e) == 0 && u.n == 3);
		CHECK(hypr_root_tmp_scan(&r, 0, NULL, NULL, &u, &e) == 0 && u.n == 2);
		CHECK(hypr_root_tmp_scan(&r, 1, NULL, NULL, &u, &e) == 0 && u.freed > 0);
		CHECK(hypr_root_tmp_scan(&r, 0, NULL, NULL, &u, &e) == 0 && u.n == 1 && u.live == 1);
		hypr_root_tmp_remove();
	}
	/* tmp/ is left empty */
	CHECK(hypr_root_path(&r, p, sizeof(p), "tmp") == 0 && rmdir(p) == 0);
	CHECK(hypr_rm_rf(dir, &e) == 0 && access(dir, F_OK) < 0);
}

static void
test_err(void)
{
	struct hypr_err e = { 0 };

	CHECK(hypr_err_set(&e, HYPR_EXIT_INPUT, "line %d", 3) == -1);
	CHECK(hypr_err_prefix(&e, "Dockerfile") == -1);
	CHECK(strcmp(e.msg, "Dockerfile: line 3") == 0 && e.code == HYPR_EXIT_INPUT);
	memset(e.msg, 'x', sizeof(e.msg) - 1);
	e.msg[sizeof(e.msg) - 1] = '\0';
	hypr_err_prefix(&e, "w");
	CHECK(strncmp(e.msg, "w: xxx", 6) == 0 && strlen(e.msg) == sizeof(e.msg) - 1);
}

static void
test_escape(void)
{
	char out[64];
	/* NUL, ESC, newline, DEL, C1 CSI (U+009B), a lone 0xff; tab and UTF-8 stay */
	static const char in[] = "a\0b\033]52;c;x\a\n\t\x7f\xc2\x9b\xff\xc3\xa9\\";

	CHECK(hypr_escape(in, sizeof(in) - 1, out, sizeof(out)) == sizeof(in) - 1);
	CHECK(strcmp(out, "a\\x00b\\x1b]52;c;x\\x07\\x0a\t\\x7f\\xc2\\x9b\\xff\xc3\xa9\\") == 0);
	/* twice: no change */
	{
		char again[64];

		hypr_escape(out, strlen(out), again, sizeof(again));
		CHECK(strcmp(again, out) == 0);
	}
	/* a sequence is never split; out is always terminated */
	CHECK(hypr_escape("\033x", 2, out, 4) == 0 && out[0] == '\0');
	CHECK(hypr_escape("ab\xc3\xa9", 4, out, 4) == 2 && strcmp(out, "ab") == 0);
	CHECK(hypr_escape("abc", 3, out, 0) == 0);
}

static void
test_sizes(void)
{
	size_t o;

	CHECK(hypr_size_add(1, 2, &o) == 0 && o == 3);
	CHECK(hypr_size_add(SIZE_MAX, 1, &o) < 0);
	CHECK(hypr_size_mul(SIZE_MAX / 2, 3, &o) < 0);
}

int
main(void)
{
	test_stream();
	test_digest();
	test_cas();
	test_sizes();
	test_err();
	test_escape();
	CHECK_DONE();
}
