/* ref.h - image references parsed and normalised as Docker does
 * (distribution/reference: ParseNormalizedNamed + TagNameOnly), and
 * platform strings normalised as containerd does. */
#ifndef HYPR_REF_H
#define HYPR_REF_H

#include <stddef.h>
#include "digest.h"
#include "err.h"

struct hypr_ref {
	char domain[256];	/* "docker.io", "localhost:5000", "[::1]:5000" */
	char path[256];		/* "library/busybox" */
	char tag[129];		/* "latest" unless only a digest was given; may be "" */
	char digest[HYPR_DIGEST_LEN + 1];	/* "" or "sha256:<hex>" */
};

/* Parse s into r; `alpine` -> docker.io/library/alpine:latest. Errors are
 * HYPR_EXIT_INPUT with Docker's wording ("repository name must be lowercase"). */
int hypr_ref_parse(const char *s, struct hypr_ref *r, struct hypr_err *e);
/* Canonical string: domain/path[:tag][@digest]. */
int hypr_ref_string(const struct hypr_ref *r, char *buf, size_t n);
/* Repository name: domain/path. */
int hypr_ref_name(const struct hypr_ref *r, char *buf, size_t n);
/* Host to contact: registry-1.docker.io for docker.io, else the domain. */
const char *hypr_ref_api_host(const struct hypr_ref *r);
/* 1 if a domain (host[:port]) is a loopback address or localhost. */
int hypr_host_is_loopback(const char *domain);

struct hypr_platform {
	char os[32];
	char arch[32];
	char variant[32];	/* "" when none */
};

/* Parse "os/arch[/variant]" (or "arch"), normalising x86_64->amd64,
 * aarch64->arm64 (variant v8 dropped), armhf->arm/v7. */
int hypr_platform_parse(const char *s, struct hypr_platform *p, struct hypr_err *e);
/* The host's platform (from uname). */
void hypr_platform_host(struct hypr_platform *p);
/* "os/arch[/variant]". */
int hypr_platform_string(const struct hypr_platform *p, char *buf, size_t n);
/* 1 if an index entry's platform (os, arch, variant may be NULL) matches want. */
int hypr_platform_match(const struct hypr_platform *want, const char *os,
    const char *arch, const char *variant);

#endif
