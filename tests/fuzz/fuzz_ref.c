/* libFuzzer target: image references and platforms (lib/ref.c). The input
 * is a reference, a NUL, then a platform. Beyond "no crash", it checks
 * what the store and the registry client rely on:
 * - a refused reference or platform is bad input;
 * - the canonical form parses again to itself (normalisation is idempotent);
 * - a parsed name is fit for a path under refs/: no "." or ".." component,
 *   no upper case in the repository, a tag never starting with '.';
 * - a digest is a valid digest; the name fits in 255 bytes. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "ref.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_ref(const char *s)
{
	struct hypr_ref r, again;
	struct hypr_err e = { 0 };
	char canon[1024], canon2[1024], name[600];

	if (hypr_ref_parse(s, &r, &e) < 0) {
		if (e.code != HYPR_EXIT_INPUT)
			__builtin_trap();
		return;
	}
	if (!r.domain[0] || !r.path[0] || (!r.tag[0] && !r.digest[0]))
		__builtin_trap();
	if (r.digest[0] && !hypr_digest_valid(r.digest))
		__builtin_trap();
	if (r.tag[0] == '.' || strlen(r.tag) > 128)
		__builtin_trap();
	for (const char *p = r.path; *p; p++)
		if (*p >= 'A' && *p <= 'Z')
			__builtin_trap();
	/* every component of domain/path is a real name */
	if (hypr_ref_name(&r, name, sizeof(name)) < 0 || strlen(name) > 255)
		__builtin_trap();
	for (char *c = name, *save = NULL; (c = strtok_r(c, "/", &save)); c = NULL)
		if (!strcmp(c, ".") || !strcmp(c, ".."))
			__builtin_trap();
	if (hypr_ref_string(&r, canon, sizeof(canon)) < 0)
		__builtin_trap();
	if (hypr_ref_parse(canon, &again, &e) < 0)
		__builtin_trap();
	if (hypr_ref_string(&again, canon2, sizeof(canon2)) < 0 || strcmp(canon, canon2) != 0)
		__builtin_trap();
	(void)hypr_ref_api_host(&r);
	(void)hypr_host_is_loopback(r.domain);
}

static void
check_platform(const char *s)
{
	struct hypr_platform p, again;
	struct hypr_err e = { 0 };
	char str[128], str2[128];

	if (hypr_platform_parse(s, &p, &e) < 0) {
		if (e.code != HYPR_EXIT_INPUT)
			__builtin_trap();
		return;
	}
	if (!p.os[0] || !p.arch[0] || hypr_platform_string(&p, str, sizeof(str)) < 0)
		__builtin_trap();
	/* a platform matches itself, and its string parses to the same */
	if (!hypr_platform_match(&p, p.os, p.arch, p.variant[0] ? p.variant : NULL))
		__builtin_trap();
	if (hypr_platform_parse(str, &again, &e) < 0 ||
	    hypr_platform_string(&again, str2, sizeof(str2)) < 0 || strcmp(str, str2) != 0)
		__builtin_trap();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *buf = malloc(size + 2);
	size_t n;

	if (buf == NULL)
		return 0;
	memcpy(buf, data, size);
	buf[size] = buf[size + 1] = '\0';
	n = strlen(buf);
	check_ref(buf);
	check_platform(n < size ? buf + n + 1 : buf);
	free(buf);
	return 0;
}
