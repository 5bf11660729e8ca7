#include "cas.h"
#include "auth.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <jansson.h>

#include "child.h"
#include "fsutil.h"
#include "stream.h"

void
hypr_secret_free(char *s)
{
	if (s) {
		explicit_bzero(s, strlen(s));
		free(s);
	}
}

/* Reduce a config key ("https://index.docker.io/v1/", "host:5000/ns") to a
 * host[/path] without scheme or trailing slash; Docker Hub's forms become
 * "docker.io". */
static void
key_norm(const char *k, char *out, size_t n)
{
	const char *p = k;
	size_t len;

	if (!strncmp(p, "https://", 8))
		p += 8;
	else if (!strncmp(p, "http://", 7))
		p += 7;
	snprintf(out, n, "%s", p);
	len = strlen(out);
	while (len > 0 && out[len - 1] == '/')
		out[--len] = '\0';
	if (!strcmp(out, "index.docker.io/v1") || !strcmp(out, "index.docker.io") ||
	    !strcmp(out, "registry-1.docker.io"))
		snprintf(out, n, "docker.io");
	else if (len > 3 && !strcmp(out + len - 3, "/v1"))
		out[len - 3] = '\0';
	else if (len > 3 && !strcmp(out + len - 3, "/v2"))
		out[len - 3] = '\0';
}

static int
split_userpass(const char *up, size_t n, char **user, char **secret)
{
	const char *c = memchr(up, ':', n);

	if (!c)
		return 0;
	*user = strndup(up, (size_t)(c - up));
	*secret = strndup(c + 1, n - (size_t)(c - up) - 1);
	return *user && *secret ? 1 : -1;
}

static int
from_entry(json_t *ent, char **user, char **secret, const char *file,
    struct hypr_err *e)
{
	const char *a = hypr_json_str(ent, "auth");
	const char *u = hypr_json_str(ent, "username");
	const char *p = hypr_json_str(ent, "password");
	const char *it = hypr_json_str(ent, "identitytoken");

	if (it && *it) {
		/* an identity token wins over "auth", as in Docker */
		*user = strdup("<token>");
		*secret = strdup(it);
		return *user && *secret ? 1 : -1;
	}

	if (a && *a) {
		size_t n = strlen(a), m;
		unsigned char *buf = malloc(n + 4);
		int r, k;

		if (!buf)
			return hypr_err_set(e, HYPR_EXIT_SYSTEM, "out of memory");
		k = EVP_DecodeBlock(buf, (const unsigned char *)a, (int)n);
		if (k < 0) {
			free(buf);
			return hypr_err_set(e, HYPR_EXIT_INPUT,
			    "%s: an \"auth\" entry is not base64", file);
		}
		m = (size_t)k;
		/* EVP_DecodeBlock counts padding as zero bytes */
		while (n > 0 && a[n - 1] == '=' && m > 0) {
			n--;
			m--;
		}
		r = split_userpass((char *)buf, m, user, secret);
		explicit_bzero(buf, m);
		free(buf);
		if (r == 0)
			return hypr_err_set(e, HYPR_EXIT_INPUT,
			    "%s: an \"auth\" entry is not user:password", file);
		return r < 0 ? hypr_err_set(e, HYPR_EXIT_SYSTEM, "out of memory") : 1;
	}
	if (u && p) {
		*user = strdup(u);
		*secret = strdup(p);
		return 1;
	}
	return 0;
}

/* docker-credential-NAME get, server on stdin, JSON on stdout. */
static int
helper_get(const char *name, const char *server, char **user, char **secret,
    struct hypr_err *e)
{
	char exe[300], out[65536];
	char *argv[] = { exe, "get", NULL };
	int to, from, st;
	pid_t pid;
	ssize_t n;
	json_t *j;
	json_error_t je;

	snprintf(exe, sizeof(exe), "docker-credential-%s", name);
	if (hypr_child_spawn(exe, argv, &pid, &to, &from, e) < 0)
		return -1;
	hypr_write_all(to, server, strlen(server));
	close(to);
	n = hypr_read_full(from, out, sizeof(out) - 1);
	close(from);
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	if (n < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		explicit_bzero(out, sizeof(out));
		/* "credentials not found" is not an error: anonymous pull */
		return 0;
	}
	out[n] = '\0';
	j = json_loads(out, 0, &je);
	explicit_bzero(out, sizeof(out));
	if (!j)
		return hypr_err_set(e, HYPR_EXIT_SYSTEM, "%s: bad JSON answer", exe);
	if (hypr_json_str(j, "Username") && hypr_json_str(j, "Secret")) {
		*user = strdup(hypr_json_str(j, "Username"));
		*secret = strdup(hypr_json_str(j, "Secret"));
		st = 1;
	} else {
		st = 0;
	}
	json_decref(j);
	return st;
}

static int
lookup_file(const char *file, const char *domain, const char *repo, char **user,
    char **secret, struct hypr_err *e)
{
	json_t *j, *auths, *helpers, *v, *best = NULL;
	json_error_t je;
	const char *k, *store;
	char nk[512];
	size_t bestlen = 0, dl = strlen(domain);
	char full[600];
	int r = 0;

	snprintf(full, sizeof(full), "%s%s%s", domain, repo ? "/" : "", repo ? repo : "");

	if (access(file, F_OK) != 0)
		return 0;
	if ((j = json_load_file(file, 0, &je)) == NULL)
		return hypr_err_set(e, HYPR_EXIT_INPUT, "%s: bad JSON: %s", file, je.text);
	helpers = json_object_get(j, "credHelpers");
	json_object_foreach(helpers, k, v) {
		key_norm(k, nk, sizeof(nk));
		if (!strcmp(nk, domain) && json_is_string(v)) {
			r = helper_get(json_string_value(v),
			    strcmp(domain, "docker.io") ? domain :
			    "https://index.docker.io/v1/", user, secret, e);
			json_decref(j);
			return r;
		}
	}
	/* containers allow host/namespace keys: the longest key that is
	 * host[/path prefix] of host/repo wins */
	auths = json_object_get(j, "auths");
	json_object_foreach(auths, k, v) {
		size_t kl;

		key_norm(k, nk, sizeof(nk));
		kl = strlen(nk);
		if (kl < dl || strncmp(nk, full, kl) != 0 ||
		    (full[kl] != '\0' && full[kl] != '/'))
			continue;
		if (!best || kl > bestlen) {
			best = v;
			bestlen = kl;
		}
	}
	if (best)
		r = from_entry(best, user, secret, file, e);
	if (r == 0 && (store = hypr_json_str(j, "credsStore")) != NULL && *store)
		r = helper_get(store, strcmp(domain, "docker.io") ? domain :
		    "https://index.docker.io/v1/", user, secret, e);
	json_decref(j);
	return r;
}

static int
docker_config(char *buf, size_t n)
{
	const char *d = getenv("DOCKER_CONFIG"), *h = getenv("HOME");
	int k;

	if (d && *d)
		k = snprintf(buf, n, "%s/config.json", d);
	else if (h && *h)
		k = snprintf(buf, n, "%s/.docker/config.json", h);
	else
		return -1;
	return k < 0 || (size_t)k >= n ? -1 : 0;
}

int
hypr_auth_lookup(const char *domain, const char *repo, char **user,
    char **secret, struct hypr_err *e)
{
	char path[HYPR_PATH_BUF];
	const char *f = getenv("REGISTRY_AUTH_FILE"), *x = getenv("XDG_RUNTIME_DIR");
	int r;

	*user = *secret = NULL;
	if (f && *f && (r = lookup_file(f, domain, repo, user, secret, e)) != 0)
		return r;
	if (docker_config(path, sizeof(path)) == 0 &&
	    (r = lookup_file(path, domain, repo, user, secret, e)) != 0)
		return r;
	if (x && *x) {
		snprintf(path, sizeof(path), "%s/containers/auth.json", x);
		if ((r = lookup_file(path, domain, repo, user, secret, e)) != 0)
			return r;
	}
	return 0;
}

int
hypr_auth_file(char *buf, size_t n, struct hypr_err *e)
{
	const char *f = getenv("REGISTRY_AUTH_FILE");

	if (f && *f) {
		if ((size_t)snprintf(buf, n, "%s", f) >= n)
			return hypr_err_set(e, HYPR_EXIT_USAGE, "REGISTRY_AUTH_FILE too long");
		return 0;
	}
	if (docker_config(buf, n) < 0)
		return hypr_err_set(e, HYPR_EXIT_USAGE,
		    "no credentials file: set DOCKER_CONFIG or HOME");
	return 0;
}

static int
load_for_update(const char *file, json_t **out, struct hypr_err *e)
{
	json_error_t je;

	if (access(file, F_OK) != 0) {
		*out = json_object();
		return 0;
	}
	if ((*out = json_load_file(file, 0, &je)) == NULL || !json_is_object(*out)) {
		json_decref(*out);
		return hypr_err_set(e, HYPR_EXIT_INPUT, "%s: bad JSON: %s", file, je.text);
	}
	return 0;
}

static int
save(const char *file, json_t *j, struct hypr_err *e)
{
	char dir[HYPR_PATH_BUF], *s, *slash;
	int r;

	snprintf(dir, sizeof(dir), "%s", file);
	if ((slash = strrchr(dir, '/')) != NULL && slash != dir) {
		*slash = '\0';
		if (hypr_mkdir_p(dir, 0700, e) < 0)
			return -1;
	}
	if ((s = json_dumps(j, JSON_INDENT(1))) == NULL)
		return hypr_err_set(e, HYPR_EXIT_SYSTEM, "out of memory");
	r = hypr_write_atomic(file, s, strlen(s), 0600, e);
	explicit_bzero(s, strlen(s));
	free(s);
	return r;
}

static const char *
store_key(const char *domain)
{
	return strcmp(domain, "docker.io") ? domain : "https://index.docker.io/v1/";
}

int
hypr_auth_store(const char *domain, const char *user, const char *secret,
    struct hypr_err *e)
{
	char file[HYPR_PATH_BUF], *up, *b64;
	json_t *j, *auths;
	size_t n;
	int r;

	if (hypr_auth_file(file, sizeof(file), e) < 0 || load_for_update(file, &j, e) < 0)
		return -1;
	if (strchr(user, ':'))
		return json_decref(j), hypr_err_set(e, HYPR_EXIT_USAGE,
		    "a user name cannot contain ':'");
	n = strlen(user) + strlen(secret) + 2;
	up = malloc(n);
	b64 = malloc(4 * (n / 3 + 2) + 1);
	if (!up || !b64) {
		free(up);
		free(b64);
		json_decref(j);
		return hypr_err_set(e, HYPR_EXIT_SYSTEM, "out of memory");
	}
	snprintf(up, n, "%s:%s", user, secret);
	EVP_EncodeBlock((unsigned char *)b64, (unsigned char *)up, (int)strlen(up));
	explicit_bzero(up, n);
	free(up);
	if (!json_is_object(auths = json_object_get(j, "auths"))) {
		auths = json_object();
		json_object_set_new(j, "auths", auths);
	}
	json_object_set_new(auths, store_key(domain), json_pack("{s:s}", "auth", b64));
	explicit_bzero(b64, strlen(b64));
	free(b64);
	r = save(file, j, e);
	json_decref(j);
	return r;
}

int
hypr_auth_erase(const char *domain, struct hypr_err *e)
{
	char file[HYPR_PATH_BUF], nk[512];
	json_t *j, *auths, *v, *tmp;
	const char *k;
	int found = 0;

	if (hypr_auth_file(file, sizeof(file), e) < 0)
		return -1;
	if (access(file, F_OK) != 0)
		return 0;
	if (load_for_update(file, &j, e) < 0)
		return -1;
	auths = json_object_get(j, "auths");
	json_object_foreach_safe(auths, tmp, k, v) {
		key_norm(k, nk, sizeof(nk));
		if (!strcmp(nk, domain)) {
			json_object_del(auths, k);
			found = 1;
		}
	}
	if (found && save(file, j, e) < 0)
		found = -1;
	json_decref(j);
	return found;
}
