/* Unit tests for lib/net.c: limits from the environment, sizes in
 * messages, deadlines, and the diff_id of a layer (lib/oci.c). */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "net.h"
#include "oci.h"

static int
env(const char *v, int size, uint64_t *out)
{
	struct hypr_err e = { 0 };

	if (v)
		setenv("HYPR_TEST_LIMIT", v, 1);
	else
		unsetenv("HYPR_TEST_LIMIT");
	return hypr_env_uint("HYPR_TEST_LIMIT", 7, size, 0, out, &e);
}

int
main(void)
{
	struct hypr_net n;
	struct hypr_err e = { 0 };
	struct hypr_diffid *d;
	uint64_t v;
	char buf[64], out[HYPR_DIGEST_LEN + 1];

	CHECK(env(NULL, 1, &v) == 0 && v == 7);
	CHECK(env("", 1, &v) == 0 && v == 7);
	CHECK(env("1000", 1, &v) == 0 && v == 1000);
	CHECK(env("64K", 1, &v) == 0 && v == 65536);
	CHECK(env("1MiB", 1, &v) == 0 && v == 1048576);
	CHECK(env("8G", 1, &v) == 0 && v == (uint64_t)8 << 30);
	CHECK(env("2t", 1, &v) == 0 && v == (uint64_t)2 << 40);
	CHECK(env("64K", 0, &v) < 0);		/* no suffix for seconds */
	CHECK(env("0", 1, &v) < 0);
	CHECK(env("-1", 1, &v) < 0);
	CHECK(env("12x", 1, &v) < 0);
	CHECK(env("99999999999999999999", 1, &v) < 0);
	CHECK(env("17179869184T", 1, &v) < 0);	/* 2^64 bytes: overflow */

	hypr_net_size_text(16u << 20, buf, sizeof(buf));
	CHECK(strcmp(buf, "16 MiB") == 0);
	hypr_net_size_text(1000, buf, sizeof(buf));
	CHECK(strcmp(buf, "1000 bytes") == 0);
	hypr_net_size_text((uint64_t)64 << 30, buf, sizeof(buf));
	CHECK(strcmp(buf, "64 GiB") == 0);

	unsetenv("HYPR_NET_TIMEOUT");
	unsetenv("HYPR_NET_MIN_RATE");
	CHECK(hypr_net_init(&n, &e) == 0);
	CHECK(n.connect_timeout == 15 && n.speed_limit == 1024 && n.speed_time == 20);
	CHECK(hypr_net_deadline(&n, 0) == 61);
	CHECK(hypr_net_deadline(&n, 64u << 20) == 60 + 1024 + 1);
	CHECK(hypr_net_deadline(&n, UINT64_MAX) > 0);	/* saturates */
	setenv("HYPR_NET_RETRIES", "none", 1);
	CHECK(hypr_net_init(&n, &e) < 0 && e.code == HYPR_EXIT_USAGE);
	unsetenv("HYPR_NET_RETRIES");

	/* an uncompressed layer's diff_id is its digest; fed in pieces */
	CHECK(hypr_diffid_start(&d, 1 << 20, &e) == 0);
	CHECK(hypr_diffid_feed(d, "hello ", 6, &e) == 0);
	CHECK(hypr_diffid_feed(d, "world\n", 6, &e) == 0);
	CHECK(hypr_diffid_finish(d, out, &e) == 0);
	CHECK(strcmp(out, "sha256:a948904f2f0f479b8f8197694b30184b0d2ed1c1cd2a1ec0fb85d299a192a447") == 0);
	/* the same bytes gzipped, one byte at a time */
	{
		static const char gz[] = "\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\x03\xcb"
		    "\x48\xcd\xc9\xc9\x57\x28\xcf\x2f\xca\x49\xe1\x02\x00\x2d\x3b\x08"
		    "\xaf\x0c\x00\x00\x00";

		CHECK(hypr_diffid_start(&d, 1 << 20, &e) == 0);
		for (size_t i = 0; i < sizeof(gz) - 1; i++)
			CHECK(hypr_diffid_feed(d, gz + i, 1, &e) == 0);
		CHECK(hypr_diffid_finish(d, out, &e) == 0);
		CHECK(strcmp(out, "sha256:a948904f2f0f479b8f8197694b30184b0d2ed1c1cd2a1ec0fb85d299a192a447") == 0);
		/* cut short: not a layer */
		CHECK(hypr_diffid_start(&d, 1 << 20, &e) == 0);
		CHECK(hypr_diffid_feed(d, gz, 20, &e) == 0);
		CHECK(hypr_diffid_finish(d, out, &e) < 0 && e.code == HYPR_EXIT_INPUT);
	}
	/* more than the limit once decompressed */
	CHECK(hypr_diffid_start(&d, 4, &e) == 0);
	CHECK(hypr_diffid_feed(d, "hello world\n", 12, &e) == 0);
	CHECK(hypr_diffid_finish(d, out, &e) < 0 && e.code == HYPR_EXIT_INPUT);
	CHECK(strstr(e.msg, "decompresses to more than 4 bytes") != NULL);
	/* dropped half-way: nothing blocks */
	CHECK(hypr_diffid_start(&d, 1 << 20, &e) == 0);
	CHECK(hypr_diffid_feed(d, "\x1f\x8b", 2, &e) == 0);
	hypr_diffid_abort(d);
	CHECK_DONE();
}
