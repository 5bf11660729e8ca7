/* Unit tests for lib/ref: Docker's reference normalisation and platforms. */
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "ref.h"

static const struct {
	const char *in, *out;	/* out NULL: must fail with HYPR_EXIT_INPUT */
} cases[] = {
	{ "alpine", "docker.io/library/alpine:latest" },
	{ "alpine:3.20", "docker.io/library/alpine:3.20" },
	{ "library/alpine", "docker.io/library/alpine:latest" },
	{ "user/app", "docker.io/user/app:latest" },
	{ "index.docker.io/user/app:v1", "docker.io/user/app:v1" },
	{ "docker.io/alpine", "docker.io/library/alpine:latest" },
	{ "localhost/app", "localhost/app:latest" },
	{ "localhost:5000/a/b/c:t", "localhost:5000/a/b/c:t" },
	{ "127.0.0.1:5000/busybox", "127.0.0.1:5000/busybox:latest" },
	{ "[::1]:5000/busybox:1", "[::1]:5000/busybox:1" },
	{ "Foo/bar", "Foo/bar:latest" },
	{ "quay.io/a-b__c.d/e--f:T_1.x-y", "quay.io/a-b__c.d/e--f:T_1.x-y" },
	{ "busybox@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
	  "docker.io/library/busybox@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef" },
	{ "busybox:1@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
	  "docker.io/library/busybox:1@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef" },
	{ "", NULL },
	{ "Alpine", NULL },
	{ "user/App", NULL },
	{ "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", NULL },
	{ "alpine:", NULL },
	{ "alpine:-x", NULL },
	{ "a//b", NULL },
	{ "a/", NULL },
	{ "-a", NULL },
	{ "a_", NULL },
	{ "a..b", NULL },
	{ "a___b", NULL },
	{ "host:port/x", NULL },
	{ "x.io/a:b/c", NULL },
	{ "busybox@sha256:abc", NULL },
	{ "busybox@md5:0123456789abcdef0123456789abcdef", NULL },
	{ "a/b@", NULL },
	{ "a b", NULL },
	{ "../etc", NULL },
};

int
main(void)
{
	struct hypr_ref r;
	struct hypr_err e;
	struct hypr_platform p, h;
	char buf[1024];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		memset(&e, 0, sizeof(e));
		int rc = hypr_ref_parse(cases[i].in, &r, &e);

		if (cases[i].out == NULL) {
			if (rc != -1 || e.code != HYPR_EXIT_INPUT)
				fprintf(stderr, "accepted bad ref '%s'\n", cases[i].in);
			CHECK(rc == -1 && e.code == HYPR_EXIT_INPUT);
			continue;
		}
		if (rc != 0)
			fprintf(stderr, "'%s': %s\n", cases[i].in, e.msg);
		CHECK(rc == 0);
		CHECK(hypr_ref_string(&r, buf, sizeof(buf)) == 0);
		if (strcmp(buf, cases[i].out) != 0)
			fprintf(stderr, "'%s' -> '%s', want '%s'\n", cases[i].in, buf,
			    cases[i].out);
		CHECK(strcmp(buf, cases[i].out) == 0);
	}
	memset(&e, 0, sizeof(e));
	CHECK(hypr_ref_parse("Alpine", &r, &e) == -1 && strstr(e.msg, "must be lowercase"));
	CHECK(hypr_ref_parse("alpine", &r, &e) == 0);
	CHECK(strcmp(hypr_ref_api_host(&r), "registry-1.docker.io") == 0);
	CHECK(hypr_host_is_loopback("127.0.0.1:5000"));
	CHECK(hypr_host_is_loopback("localhost"));
	CHECK(hypr_host_is_loopback("[::1]:80"));
	CHECK(!hypr_host_is_loopback("example.com:5000"));
	CHECK(!hypr_host_is_loopback("127example.com"));

	CHECK(hypr_platform_parse("linux/x86_64", &p, &e) == 0);
	CHECK(hypr_platform_string(&p, buf, sizeof(buf)) == 0 && !strcmp(buf, "linux/amd64"));
	CHECK(hypr_platform_parse("linux/aarch64/v8", &p, &e) == 0);
	CHECK(hypr_platform_string(&p, buf, sizeof(buf)) == 0 && !strcmp(buf, "linux/arm64"));
	CHECK(hypr_platform_match(&p, "linux", "arm64", "v8"));
	CHECK(!hypr_platform_match(&p, "linux", "amd64", NULL));
	CHECK(hypr_platform_parse("linux/arm", &p, &e) == 0);
	CHECK(hypr_platform_string(&p, buf, sizeof(buf)) == 0 && !strcmp(buf, "linux/arm/v7"));
	CHECK(hypr_platform_match(&p, "linux", "arm", NULL));
	CHECK(!hypr_platform_match(&p, "unknown", "unknown", NULL));
	CHECK(hypr_platform_parse("linux/", &p, &e) == -1);
	CHECK(hypr_platform_parse("linux/a/b/c", &p, &e) == -1);
	CHECK(hypr_platform_parse("lin ux/amd64", &p, &e) == -1);
	hypr_platform_host(&h);
	CHECK(h.os[0] && h.arch[0]);
	CHECK_DONE();
}
