/* container.c - lib/container: creating and finding containers, unique
 * names, the log's records (split reads, rotation, damage) and the control
 * frames. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "check.h"
#include "container.h"
#include "fsutil.h"

static int
next(struct hypr_ctr_log *l, int *s, const char **d, size_t *n)
{
	struct hypr_err e = { 0 };
	int64_t ns;

	return hypr_ctr_log_next(l, s, &ns, d, n, &e);
}

int
main(void)
{
	char tmpl[] = "/tmp/hypr-unit-ctr.XXXXXX", p[4400];
	struct hypr_root r;
	struct hypr_err e = { 0 };
	struct hypr_ctr a, b, f;
	struct hypr_ctr_log l;
	json_t *cfg;
	const char *d;
	size_t n;
	int s, fd, lockfd, sv[2];

	if (!mkdtemp(tmpl) || hypr_root_open(&r, tmpl, &e) < 0)
		return 1;

	/* names: given, unique; made up when absent */
	cfg = json_pack("{s:s}", "name", "web");
	CHECK(hypr_ctr_create(&r, cfg, &a, &e) == 0);
	json_decref(cfg);
	cfg = json_pack("{s:s}", "name", "web");
	CHECK(hypr_ctr_create(&r, cfg, &b, &e) < 0);
	CHECK(e.code == HYPR_EXIT_INPUT && strstr(e.msg, "The container name \"/web\" is already in use"));
	json_decref(cfg);
	cfg = json_object();
	CHECK(hypr_ctr_create(&r, cfg, &b, &e) == 0);
	CHECK(strchr(json_string_value(json_object_get(b.config, "name")), '_') != NULL);
	json_decref(cfg);
	CHECK(strlen(a.id) == 64);

	/* found by name, ID and prefix; alive only while locked */
	CHECK(hypr_ctr_find(&r, "web", &f, &e) == 0 && !strcmp(f.id, a.id) && !f.alive);
	hypr_ctr_free(&f);
	hypr_ctr_short(b.id, p);
	CHECK(hypr_ctr_find(&r, p, &f, &e) == 0 && !strcmp(f.id, b.id));
	hypr_ctr_free(&f);
	CHECK(hypr_ctr_find(&r, "nope", &f, &e) < 0 && e.code == HYPR_EXIT_INPUT);
	CHECK(hypr_ctr_lock(&a, &lockfd, &e) == 0);
	CHECK(hypr_ctr_find(&r, a.id, &f, &e) == 0 && f.alive);
	CHECK(hypr_ctr_lock(&f, &fd, &e) < 0);
	hypr_ctr_free(&f);
	close(lockfd);
	CHECK(hypr_ctr_find(&r, a.id, &f, &e) == 0 && !f.alive);
	hypr_ctr_free(&f);

	/* the log: records whole across reads, then a rotation */
	snprintf(p, sizeof p, "%s/log", a.dir);
	fd = open(p, O_WRONLY | O_CREAT | O_APPEND, 0600);
	CHECK(hypr_ctr_log_append(fd, 1, 5, "one\n", 4) == 0);
	CHECK(hypr_ctr_log_append(fd, 2, 6, "two\nlines\n", 10) == 0);
	CHECK(hypr_ctr_log_append(fd, 1, 7, "", 0) == 0);
	hypr_ctr_log_open(&l, &a, &e);
	CHECK(next(&l, &s, &d, &n) == 1 && s == 1 && n == 4 && !memcmp(d, "one\n", 4));
	CHECK(next(&l, &s, &d, &n) == 1 && s == 2 && n == 10 && !memcmp(d, "two\nlines\n", 10));
	CHECK(next(&l, &s, &d, &n) == 1 && s == 1 && n == 0);
	CHECK(next(&l, &s, &d, &n) == 0);
	/* a record written in two pieces is read once whole */
	CHECK(write(fd, "1 8 5\nha", 8) == 8);
	CHECK(next(&l, &s, &d, &n) == 0);
	CHECK(write(fd, "lf\n", 3) == 3);
	CHECK(next(&l, &s, &d, &n) == 1 && n == 5 && !memcmp(d, "half\n", 5));
	/* rotated: the follower reads on into the new file */
	snprintf(p + strlen(p), 8, ".1");
	{
		char cur[4400];
		snprintf(cur, sizeof cur, "%s/log", a.dir);
		CHECK(rename(cur, p) == 0);
		close(fd);
		fd = open(cur, O_WRONLY | O_CREAT | O_APPEND, 0600);
	}
	CHECK(hypr_ctr_log_append(fd, 1, 9, "new\n", 4) == 0);
	CHECK(next(&l, &s, &d, &n) == 1 && n == 4 && !memcmp(d, "new\n", 4));
	hypr_ctr_log_close(&l);
	/* a reader from the start takes log.1, then log */
	hypr_ctr_log_open(&l, &a, &e);
	CHECK(next(&l, &s, &d, &n) == 1 && !memcmp(d, "one\n", 4));
	for (int k = 0; k < 3; k++)
		CHECK(next(&l, &s, &d, &n) == 1);
	CHECK(next(&l, &s, &d, &n) == 1 && !memcmp(d, "new\n", 4));
	CHECK(next(&l, &s, &d, &n) == 0);
	/* damage is reported, not skipped */
	CHECK(write(fd, "9 x y\n", 6) == 6);
	CHECK(next(&l, &s, &d, &n) == -1);
	hypr_ctr_log_close(&l);
	close(fd);

	/* control frames through a socketpair, in pieces */
	CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
	{
		struct hypr_ctr_reader rd = { 0 };
		const unsigned char *fp;
		uint32_t id, fn;
		int type;
		CHECK(hypr_ctr_send(sv[0], HYPR_CTR_STDOUT, 7, "abc", 3) == 0);
		CHECK(hypr_ctr_send(sv[0], HYPR_CTR_EXIT, 7, "\x05\0\0\0", 4) == 0);
		CHECK(hypr_ctr_read(&rd, sv[1]) == 0);
		CHECK(hypr_ctr_frame(&rd, &type, &id, &fp, &fn) == 1 && type == '1' && id == 7 &&
		    fn == 3 && !memcmp(fp, "abc", 3));
		CHECK(hypr_ctr_frame(&rd, &type, &id, &fp, &fn) == 1 && type == 'X' && fp[0] == 5);
		CHECK(hypr_ctr_frame(&rd, &type, &id, &fp, &fn) == 0);
		close(sv[0]);
		CHECK(hypr_ctr_read(&rd, sv[1]) == -1);
		hypr_ctr_reader_free(&rd);
		close(sv[1]);
	}

	CHECK(hypr_ctr_remove(&a, &e) == 0 && access(a.dir, F_OK) < 0);
	CHECK(hypr_ctr_find(&r, "web", &f, &e) < 0);
	hypr_ctr_free(&a);
	hypr_ctr_free(&b);
	hypr_rm_rf(tmpl, &e);
	CHECK_DONE();
}
