/* libFuzzer target: the Dockerfile parser on arbitrary bytes, in both the
 * staged and the --parse-only mode, with a build arg and a target. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
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
			json_t *seen = json_object(), *rec;
			size_t i;

			if (s == NULL)
				__builtin_trap();
			free(s);
			/* a stage is written before any stage or instruction that
			 * needs it (hypr-exec runs them in this order) */
			json_array_foreach(r, i, rec) {
				json_t *bs = json_object_get(rec, "base_stage");
				json_t *fs = json_object_get(rec, "from_stage");
				json_t *ix = json_object_get(rec, "index");
				char k[32];

				if (json_is_integer(bs) || json_is_integer(fs)) {
					snprintf(k, sizeof(k), "%lld", (long long)json_integer_value(
					    json_is_integer(bs) ? bs : fs));
					if (json_object_get(seen, k) == NULL)
						__builtin_trap();
				}
				if (json_is_integer(ix)) {
					snprintf(k, sizeof(k), "%lld", (long long)json_integer_value(ix));
					json_object_set_new(seen, k, json_true());
				}
			}
			json_decref(seen);
			json_decref(h);
			json_decref(r);
		} else if (e.code != HYPR_EXIT_INPUT && e.code != HYPR_EXIT_USAGE)
			__builtin_trap();
	}
	hypr_vars_free(&args);
	return 0;
}
