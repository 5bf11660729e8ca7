/* Unit tests for lib/image.c: docker's size and age wording, times, chain ids. */
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "image.h"

static int
size_is(uint64_t n, const char *want)
{
	char buf[32];

	hypr_image_human_size(n, buf, sizeof(buf));
	if (strcmp(buf, want) != 0)
		fprintf(stderr, "size %llu: got %s, want %s\n", (unsigned long long)n, buf, want);
	return strcmp(buf, want) == 0;
}

static int
age_is(int64_t s, const char *want)
{
	char buf[64];

	hypr_image_human_age(s, buf, sizeof(buf));
	if (strcmp(buf, want) != 0)
		fprintf(stderr, "age %lld: got %s, want %s\n", (long long)s, buf, want);
	return strcmp(buf, want) == 0;
}

int
main(void)
{
	struct hypr_err e = { 0 };
	char t[40], d[HYPR_DIGEST_LEN + 1];
	struct hypr_layer layers[2];

	/* go-units HumanSizeWithPrecision(size, 3) */
	CHECK(size_is(0, "0B"));
	CHECK(size_is(999, "999B"));
	CHECK(size_is(1000, "1kB"));
	CHECK(size_is(1200, "1.2kB"));
	CHECK(size_is(4096, "4.1kB"));
	CHECK(size_is(77900000, "77.9MB"));
	CHECK(size_is(123456789, "123MB"));
	CHECK(size_is(1999999999, "2GB"));
	/* go-units HumanDuration + " ago" */
	CHECK(age_is(0, "Less than a second ago"));
	CHECK(age_is(1, "1 second ago"));
	CHECK(age_is(59, "59 seconds ago"));
	CHECK(age_is(60, "About a minute ago"));
	CHECK(age_is(45 * 60, "45 minutes ago"));
	CHECK(age_is(3600, "About an hour ago"));
	CHECK(age_is(5 * 3600, "5 hours ago"));
	CHECK(age_is(3 * 86400, "3 days ago"));
	CHECK(age_is(20 * 86400, "2 weeks ago"));
	CHECK(age_is(90 * 86400, "3 months ago"));
	CHECK(age_is(3 * 365 * 86400LL, "3 years ago"));

	hypr_image_time(86400, t, sizeof(t));
	CHECK(strcmp(t, "1970-01-02T00:00:00Z") == 0);
	CHECK(hypr_image_parse_time("1970-01-02T00:00:00Z") == 86400);
	CHECK(hypr_image_parse_time("1970-01-02T01:00:00.123+01:00") == 86400);
	CHECK(hypr_image_parse_time("yesterday") == -1);

	/* chain id: one layer is its diff_id; two hash "a b" */
	memset(layers, 0, sizeof(layers));
	snprintf(layers[0].diff_id, sizeof(layers[0].diff_id), "%s",
	    "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
	snprintf(layers[1].diff_id, sizeof(layers[1].diff_id), "%s",
	    "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb");
	CHECK(hypr_image_chain_id(layers, 2, d, &e) == 0);
	{
		char want[HYPR_DIGEST_LEN + 1];
		const char *s = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa "
		    "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

		CHECK(hypr_digest_buf(s, strlen(s), want, &e) == 0);
		CHECK(strcmp(d, want) == 0);
	}
	CHECK(hypr_image_chain_id(layers, 1, d, &e) == 0);
	CHECK(strcmp(d, "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa") == 0);
	snprintf(layers[1].diff_id, sizeof(layers[1].diff_id), "%s", "nope");
	CHECK(hypr_image_chain_id(layers, 2, d, &e) < 0 && e.code == HYPR_EXIT_INPUT);
	CHECK_DONE();
}
