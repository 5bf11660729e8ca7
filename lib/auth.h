/* auth.h - registry credentials from Docker's and containers' files.
 *
 * Lookup order: $REGISTRY_AUTH_FILE; $DOCKER_CONFIG/config.json (default
 * ~/.docker/config.json); $XDG_RUNTIME_DIR/containers/auth.json. In each file
 * credHelpers[host] beats auths[host] beats credsStore; a helper is
 * `docker-credential-NAME get` with the server on stdin. Keys may be written
 * as URLs ("https://index.docker.io/v1/"); docker.io matches Docker Hub's
 * legacy key. Secrets are never printed. */
#ifndef HYPR_AUTH_H
#define HYPR_AUTH_H

#include <stddef.h>
#include "err.h"

/* 1 and malloc'd *user, *secret when found; 0 when none; -1 on a broken file.
 * repo (may be NULL) lets "host/namespace" keys match, longest first, as in
 * containers-auth.json(5). */
int hypr_auth_lookup(const char *domain, const char *repo, char **user,
    char **secret, struct hypr_err *e);
/* The file `login` writes: $REGISTRY_AUTH_FILE, else $DOCKER_CONFIG/config.json
 * or ~/.docker/config.json. */
int hypr_auth_file(char *buf, size_t n, struct hypr_err *e);
/* Record user:secret for domain (base64 "auth", mode 0600, atomic). */
int hypr_auth_store(const char *domain, const char *user, const char *secret,
    struct hypr_err *e);
/* Remove domain's entry; 1 if one was removed, 0 if none. */
int hypr_auth_erase(const char *domain, struct hypr_err *e);
/* Overwrite and free a secret. */
void hypr_secret_free(char *s);

#endif
