/* libFuzzer target: the Dockerfile parser on arbitrary bytes, in both the
 * staged and the --parse-only mode, with a build arg and a target. */
#include <stddef.h>
#include <stdint.h>
#include "dockerfile.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct hypr_vars args = { 0 };
	struct hypr_err e = { 0 };
	json_t *h = NULL, *r = NULL;

	hypr_vars_set(&args, "TAG", "1.0");
	for (int mode = 0; mode < 3; mode++) {
		struct hypr_dockerfile_opts o = {
			.build_args = &args,
			.platform = "linux/amd64",
			.parse_only = mode == 1,
			.target = mode == 2 ? "build" : NULL,
		};

		if (hypr_dockerfile_plan((const char *)data, size, &o, &h, &r, &e) == 0) {
			char *s = json_dumps(r, JSON_COMPACT);	/* output must encode */

			if (s == NULL)
				__builtin_trap();
			free(s);
			json_decref(h);
			json_decref(r);
		} else if (e.code != HYPR_EXIT_INPUT && e.code != HYPR_EXIT_USAGE)
			__builtin_trap();
	}
	hypr_vars_free(&args);
	return 0;
}
