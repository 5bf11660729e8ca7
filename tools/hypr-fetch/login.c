/* login.c - hypr-fetch login: the credentials checked against the registry,
 * then stored (lib/auth.c); the password from stdin, never argv. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "fetch.h"
#include "ref.h"
#include "registry.h"
#include "tool.h"

static char *
read_password(void)
{
	char *line = NULL;
	size_t cap = 0;
	ssize_t n = getline(&line, &cap, stdin);

	if (n < 0) {
		free(line);
		return NULL;
	}
	while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
		line[--n] = '\0';
	return line;
}

int
fetch_login(struct fetch *f, const char *server, const char *user, const char *password,
    int pwstdin, struct hypr_err *e)
{
	struct hypr_ref r;
	struct hypr_registry g;
	char *pw, probe[600];
	int rc;

	if (password)
		hypr_warn("--password on the command line is visible to other users; "
		    "use --password-stdin");
	if (!user)
		hypr_die(HYPR_EXIT_USAGE, "login: -u USER is required");
	pw = password ? strdup(password) : pwstdin ? read_password() : NULL;
	if (!pw || !*pw) {
		hypr_secret_free(pw);
		hypr_die(HYPR_EXIT_USAGE, "login: give the password with --password-stdin");
	}
	/* Check the credentials against the registry before saving them. */
	snprintf(probe, sizeof(probe), "%s/hypr-login-probe", server);
	if (hypr_ref_parse(strchr(server, '.') || strchr(server, ':') ||
	    !strcmp(server, "localhost") ? probe : "docker.io/library/x", &r, e) < 0) {
		hypr_secret_free(pw);
		return hypr_err_prefix(e, "login");
	}
	if (hypr_registry_open(&g, &f->root, &r, f->insecure, e) < 0) {
		hypr_secret_free(pw);
		return -1;
	}
	hypr_secret_free(g.basic);
	hypr_secret_free(g.refresh);
	g.refresh = NULL;
	if (asprintf(&g.basic, "%s:%s", user, pw) < 0)
		g.basic = NULL;
	rc = hypr_registry_ping(&g, e);
	hypr_registry_close(&g);
	if (rc == 0)
		rc = hypr_auth_store(r.domain, user, pw, e);
	hypr_secret_free(pw);
	if (rc == 0 && !f->quiet)
		printf("Login Succeeded\n");
	return rc;
}

