#include "ref.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <sys/utsname.h>

static int
is_alnum_lower(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

/* path-component: [a-z0-9]+((\.|_|__|-+)[a-z0-9]+)* */
static int
valid_component(const char *s, size_t n)
{
	size_t i = 0;

	if (n == 0 || !is_alnum_lower(s[0]) || !is_alnum_lower(s[n - 1]))
		return 0;
	while (i < n) {
		if (is_alnum_lower(s[i])) {
			i++;
			continue;
		}
		/* a separator run, then an alphanumeric must follow */
		if (s[i] == '.') {
			i++;
		} else if (s[i] == '_') {
			i += (i + 1 < n && s[i + 1] == '_') ? 2 : 1;
		} else if (s[i] == '-') {
			while (i < n && s[i] == '-')
				i++;
		} else {
			return 0;
		}
		if (i >= n || !is_alnum_lower(s[i]))
			return 0;
	}
	return 1;
}

static int
valid_path(const char *s)
{
	const char *p = s, *slash;

	for (;;) {
		slash = strchr(p, '/');
		if (!valid_component(p, slash ? (size_t)(slash - p) : strlen(p)))
			return 0;
		if (!slash)
			return 1;
		p = slash + 1;
	}
}

/* host: component(.component)* or [ipv6]; optional :port (digits). */
static int
valid_domain(const char *s)
{
	const char *p = s, *port = NULL;

	if (*p == '[') {
		const char *end = strchr(p, ']');

		if (!end || end == p + 1)
			return 0;
		for (const char *q = p + 1; q < end; q++)
			if (!isxdigit((unsigned char)*q) && *q != ':' && *q != '.')
				return 0;
		p = end + 1;
		if (*p == ':')
			port = p + 1;
		else if (*p)
			return 0;
	} else {
		for (;;) {
			const char *c = p;

			if (!isalnum((unsigned char)*c))
				return 0;
			while (isalnum((unsigned char)*c) || *c == '-')
				c++;
			if (c[-1] == '-')
				return 0;
			if (*c == '.') {
				p = c + 1;
				continue;
			}
			if (*c == ':') {
				port = c + 1;
				break;
			}
			if (*c)
				return 0;
			break;
		}
	}
	if (port) {
		if (!*port)
			return 0;
		for (const char *q = port; *q; q++)
			if (!isdigit((unsigned char)*q))
				return 0;
	}
	return 1;
}

static int
valid_tag(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 128)
		return 0;
	if (!isalnum((unsigned char)s[0]) && s[0] != '_')
		return 0;
	for (size_t i = 1; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '_' && s[i] != '.' &&
		    s[i] != '-')
			return 0;
	return 1;
}

static int
bad(struct hypr_err *e, const char *s, const char *why)
{
	return hypr_err_set(e, HYPR_EXIT_INPUT, "invalid reference '%s': %s", s, why);
}

int
hypr_ref_parse(const char *s, struct hypr_ref *r, struct hypr_err *e)
{
	char buf[1024], *rem, *at, *colon, *slash;
	size_t n = strlen(s), i;

	memset(r, 0, sizeof(*r));
	if (n == 0)
		return bad(e, s, "empty");
	if (n >= sizeof(buf))
		return bad(e, "(too long)", "longer than 1023 bytes");
	memcpy(buf, s, n + 1);
	for (i = 0; i < n && isxdigit((unsigned char)s[i]) && !isupper((unsigned char)s[i]); i++)
		;
	if (n == 64 && i == 64)
		return bad(e, s, "cannot specify 64-byte hexadecimal strings");
	/* splitDockerDomain */
	slash = strchr(buf, '/');
	if (slash == NULL) {
		rem = buf;
		snprintf(r->domain, sizeof(r->domain), "docker.io");
	} else {
		int isdom = 0;

		*slash = '\0';
		isdom = strpbrk(buf, ".:") != NULL || strcmp(buf, "localhost") == 0;
		for (char *q = buf; *q; q++)
			isdom |= isupper((unsigned char)*q) != 0;
		if (isdom) {
			if (strlen(buf) >= sizeof(r->domain) || !valid_domain(buf))
				return bad(e, s, "invalid registry host");
			snprintf(r->domain, sizeof(r->domain), "%s", buf);
			rem = slash + 1;
		} else {
			*slash = '/';
			rem = buf;
			snprintf(r->domain, sizeof(r->domain), "docker.io");
		}
	}
	if (strcmp(r->domain, "index.docker.io") == 0)
		snprintf(r->domain, sizeof(r->domain), "docker.io");
	if ((at = strchr(rem, '@')) != NULL) {
		const char *d = at + 1;

		*at = '\0';
		if (strncmp(d, "sha256:", 7) != 0) {
			const char *c = strchr(d, ':');

			if (c && c != d && strlen(c + 1) >= 32)
				return bad(e, s, "unsupported digest algorithm");
			return bad(e, s, "invalid digest");
		}
		if (!hypr_digest_valid(d))
			return bad(e, s, "invalid digest");
		snprintf(r->digest, sizeof(r->digest), "%s", d);
	}
	colon = strrchr(rem, ':');
	if (colon && strchr(colon, '/') == NULL) {
		*colon = '\0';
		if (!valid_tag(colon + 1))
			return bad(e, s, "invalid tag");
		snprintf(r->tag, sizeof(r->tag), "%s", colon + 1);
	}
	for (char *q = rem; *q; q++)
		if (isupper((unsigned char)*q))
			return hypr_err_set(e, HYPR_EXIT_INPUT,
			    "invalid reference '%s': repository name (%s) must be lowercase",
			    s, rem);
	if (strcmp(r->domain, "docker.io") == 0 && strchr(rem, '/') == NULL) {
		if (snprintf(r->path, sizeof(r->path), "library/%s", rem) >=
		    (int)sizeof(r->path))
			return bad(e, s, "repository name must not be more than 255 characters");
	} else if (snprintf(r->path, sizeof(r->path), "%s", rem) >=
	    (int)sizeof(r->path)) {
		return bad(e, s, "repository name must not be more than 255 characters");
	}
	if (!valid_path(r->path))
		return bad(e, s, "invalid repository name");
	if (strlen(r->domain) + 1 + strlen(r->path) > 255)
		return bad(e, s, "repository name must not be more than 255 characters");
	if (!r->tag[0] && !r->digest[0])
		snprintf(r->tag, sizeof(r->tag), "latest");
	return 0;
}

int
hypr_ref_name(const struct hypr_ref *r, char *buf, size_t n)
{
	int k = snprintf(buf, n, "%s/%s", r->domain, r->path);

	return k < 0 || (size_t)k >= n ? -1 : 0;
}

int
hypr_ref_string(const struct hypr_ref *r, char *buf, size_t n)
{
	int k = snprintf(buf, n, "%s/%s%s%s%s%s", r->domain, r->path,
	    r->tag[0] ? ":" : "", r->tag, r->digest[0] ? "@" : "", r->digest);

	return k < 0 || (size_t)k >= n ? -1 : 0;
}

const char *
hypr_ref_api_host(const struct hypr_ref *r)
{
	return strcmp(r->domain, "docker.io") == 0 ? "registry-1.docker.io" : r->domain;
}

int
hypr_host_is_loopback(const char *domain)
{
	char h[256];
	const char *c;
	size_t n;

	if (domain[0] == '[') {
		c = strchr(domain, ']');
		n = c ? (size_t)(c - domain - 1) : 0;
		return n == 3 && strncmp(domain + 1, "::1", 3) == 0;
	}
	c = strchr(domain, ':');
	n = c ? (size_t)(c - domain) : strlen(domain);
	if (n >= sizeof(h))
		return 0;
	memcpy(h, domain, n);
	h[n] = '\0';
	return strcmp(h, "localhost") == 0 || strncmp(h, "127.", 4) == 0;
}

static void
copy_lower(char *dst, size_t n, const char *s, size_t len)
{
	size_t i;

	for (i = 0; i + 1 < n && i < len; i++)
		dst[i] = (char)tolower((unsigned char)s[i]);
	dst[i] = '\0';
}

static void
normalise(struct hypr_platform *p)
{
	if (!strcmp(p->arch, "x86_64") || !strcmp(p->arch, "x86-64"))
		snprintf(p->arch, sizeof(p->arch), "amd64");
	else if (!strcmp(p->arch, "aarch64"))
		snprintf(p->arch, sizeof(p->arch), "arm64");
	else if (!strcmp(p->arch, "i386") || !strcmp(p->arch, "i686"))
		snprintf(p->arch, sizeof(p->arch), "386");
	else if (!strcmp(p->arch, "armhf")) {
		snprintf(p->arch, sizeof(p->arch), "arm");
		snprintf(p->variant, sizeof(p->variant), "v7");
	} else if (!strcmp(p->arch, "armel")) {
		snprintf(p->arch, sizeof(p->arch), "arm");
		snprintf(p->variant, sizeof(p->variant), "v6");
	}
	if (!strcmp(p->arch, "arm64") && !strcmp(p->variant, "v8"))
		p->variant[0] = '\0';
	if (!strcmp(p->arch, "arm") && !p->variant[0])
		snprintf(p->variant, sizeof(p->variant), "v7");
}

int
hypr_platform_parse(const char *s, struct hypr_platform *p, struct hypr_err *e)
{
	const char *a, *b;

	memset(p, 0, sizeof(*p));
	if (s == NULL || !*s)
		return hypr_err_set(e, HYPR_EXIT_INPUT, "empty platform");
	a = strchr(s, '/');
	if (a == NULL) {
		snprintf(p->os, sizeof(p->os), "linux");
		copy_lower(p->arch, sizeof(p->arch), s, strlen(s));
	} else {
		copy_lower(p->os, sizeof(p->os), s, (size_t)(a - s));
		b = strchr(a + 1, '/');
		copy_lower(p->arch, sizeof(p->arch), a + 1,
		    b ? (size_t)(b - a - 1) : strlen(a + 1));
		if (b)
			copy_lower(p->variant, sizeof(p->variant), b + 1, strlen(b + 1));
		if (b && (strchr(b + 1, '/') || !b[1]))
			return hypr_err_set(e, HYPR_EXIT_INPUT, "invalid platform '%s'", s);
	}
	if (!p->os[0] || !p->arch[0])
		return hypr_err_set(e, HYPR_EXIT_INPUT, "invalid platform '%s'", s);
	for (const char *q = s; *q; q++)
		if ((!isalnum((unsigned char)*q) && !strchr("/_-.", *q)) ||
		    (*q == '.' && (q == s || q[-1] == '/')))
			/* a component never starts with a dot: no "..", "." */
			return hypr_err_set(e, HYPR_EXIT_INPUT, "invalid platform '%s'", s);
	normalise(p);
	return 0;
}

void
hypr_platform_host(struct hypr_platform *p)
{
	struct utsname u;

	memset(p, 0, sizeof(*p));
	snprintf(p->os, sizeof(p->os), "linux");
	if (uname(&u) == 0)
		copy_lower(p->arch, sizeof(p->arch), u.machine, strlen(u.machine));
	else
		snprintf(p->arch, sizeof(p->arch), "amd64");
	if (!strncmp(p->arch, "armv7", 5))
		snprintf(p->arch, sizeof(p->arch), "armhf");
	normalise(p);
}

int
hypr_platform_string(const struct hypr_platform *p, char *buf, size_t n)
{
	int k = snprintf(buf, n, "%s/%s%s%s", p->os, p->arch, p->variant[0] ? "/" : "",
	    p->variant);

	return k < 0 || (size_t)k >= n ? -1 : 0;
}

int
hypr_platform_match(const struct hypr_platform *want, const char *os,
    const char *arch, const char *variant)
{
	struct hypr_platform got;

	if (!os || !arch)
		return 0;
	memset(&got, 0, sizeof(got));
	copy_lower(got.os, sizeof(got.os), os, strlen(os));
	copy_lower(got.arch, sizeof(got.arch), arch, strlen(arch));
	if (variant)
		copy_lower(got.variant, sizeof(got.variant), variant, strlen(variant));
	normalise(&got);
	return !strcmp(got.os, want->os) && !strcmp(got.arch, want->arch) &&
	    !strcmp(got.variant, want->variant);
}
