/* libFuzzer target: compose files (lib/compose.c, libyaml) as hypr compose
 * reads them, and Compose interpolation of the input as one scalar. Beyond
 * "no crash", it checks:
 * - a refused file is bad input and its message starts with the file's name;
 * - every service has a name; one with a build section has a context that
 *   is not a URL (remote contexts are refused); args and labels have keys;
 * - the warnings are one line each, naming the file;
 * - the file merged with itself (compose.override.yaml's path) reads too,
 *   with the input as its .env when that reads (else a refusal names it);
 * - what `hypr compose config` prints of a project reads back;
 * - an input without '$' interpolates to itself, "$$" to "$". */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "compose.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char path[64], envpath[64], outpath[64];

static void
check_project(const struct hypr_compose *c)
{
	for (size_t i = 0; i < c->nservices; i++) {
		const struct hypr_compose_service *s = &c->services[i];

		if (s->name == NULL || !*s->name)
			__builtin_trap();
		if (s->has_build && (s->context == NULL || strstr(s->context, "://")))
			__builtin_trap();
		for (size_t k = 0; k < s->nargs; k++)
			if (s->args[k].key == NULL)
				__builtin_trap();
		for (size_t k = 0; k < s->nlabels; k++)	/* a bare key has no value */
			if (s->labels[k].key == NULL)
				__builtin_trap();
		for (size_t k = 0; k < s->ntags; k++)
			if (s->tags[k] == NULL)
				__builtin_trap();
	}
	for (size_t i = 0; i < c->nwarnings; i++)
		if (strchr(c->warnings[i], '\n') || strncmp(c->warnings[i], "compose.yaml:", 13))
			__builtin_trap();
}

/* The same file twice: every key merged into itself. */
static void
check_merged(const uint8_t *data, size_t size)
{
	const char *files[2] = { path, path };
	struct hypr_compose_opts o = { files, 2, NULL, 0 };
	struct hypr_compose_kv *env = NULL;
	struct hypr_compose c, back;
	struct hypr_err e = { 0 };
	FILE *f;

	if ((f = fopen(envpath, "w")) == NULL)
		return;
	fwrite(data, 1, size, f);
	fclose(f);
	if (hypr_compose_dotenv(envpath, 1, &env, &o.nenv, &e) < 0) {
		if (e.code != HYPR_EXIT_INPUT || strncmp(e.msg, envpath, strlen(envpath)) != 0)
			__builtin_trap();
		hypr_compose_kv_free(env, o.nenv);
		env = NULL;
		o.nenv = 0;
	}
	o.env = env;
	if (hypr_compose_load_opts(&c, &o, &e) < 0) {
		if (e.code != HYPR_EXIT_INPUT || strncmp(e.msg, "compose.yaml", 12) != 0)
			__builtin_trap();
		hypr_compose_kv_free(env, o.nenv);
		return;
	}
	hypr_compose_kv_free(env, o.nenv);
	check_project(&c);
	if ((f = fopen(outpath, "w")) == NULL) {
		hypr_compose_free(&c);
		return;
	}
	if (hypr_compose_write_yaml(f, &c, "p", NULL, &e) < 0)
		__builtin_trap();
	fclose(f);
	hypr_compose_free(&c);
	if (hypr_compose_load(&back, outpath, &e) < 0)
		__builtin_trap();
	hypr_compose_free(&back);
}

static void
check_file(const uint8_t *data, size_t size)
{
	struct hypr_compose c;
	struct hypr_err e = { 0 };
	FILE *f;

	if ((f = fopen(path, "w")) == NULL)
		return;
	fwrite(data, 1, size, f);
	fclose(f);
	if (hypr_compose_load(&c, path, &e) < 0) {
		if (e.code != HYPR_EXIT_INPUT || strncmp(e.msg, "compose.yaml", 12) != 0)
			__builtin_trap();
		return;
	}
	check_project(&c);
	hypr_compose_free(&c);
}

static void
check_interpolate(const uint8_t *data, size_t size)
{
	struct hypr_err e = { 0 };
	char *in = strndup((const char *)data, size), *out = NULL;

	if (in == NULL)
		return;
	if (hypr_compose_interpolate(in, &out, &e) < 0) {
		if (e.code != HYPR_EXIT_INPUT)
			__builtin_trap();
	} else if (!strchr(in, '$') && strcmp(in, out) != 0) {
		__builtin_trap();
	}
	free(out);
	free(in);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!path[0]) {
		char dir[] = "/tmp/hypr-fuzz-compose.XXXXXX";

		if (mkdtemp(dir) == NULL)
			return 0;
		snprintf(path, sizeof(path), "%s/compose.yaml", dir);
		snprintf(envpath, sizeof(envpath), "%s/.env", dir);
		snprintf(outpath, sizeof(outpath), "%s/config.yaml", dir);
		setenv("HYPR_FUZZ_SET", "value", 1);
		setenv("HYPR_FUZZ_EMPTY", "", 1);
	}
	if (size > 65536)
		return 0;
	check_file(data, size);
	check_merged(data, size);
	check_interpolate(data, size);
	return 0;
}
