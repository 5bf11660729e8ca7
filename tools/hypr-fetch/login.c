/* login.c - hypr-fetch login: the credentials checked against the registry,
 * then stored (lib/auth.c); the password from stdin, never argv. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

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

static struct termios saved_tty;

/* ^C at the password prompt: the terminal echoes again, then the signal. */
static void
restore_tty(int sig)
{
	tcsetattr(0, TCSANOW, &saved_tty);
	signal(sig, SIG_DFL);
	raise(sig);
}

/* Ask on the terminal (stdin) for what is missing, as docker login does: the
 * user name if none was given, then the password, not echoed. */
static char *
ask(const char *server, const char **user, char **ubuf)
{
	struct sigaction sa = { .sa_handler = restore_tty }, oint, oterm, ohup;
	struct termios t;
	char *pw;

	if (!isatty(0))
		hypr_die(HYPR_EXIT_USAGE, "login: Cannot perform an interactive login from a "
		    "non TTY device (give -u USER and --password-stdin)");
	if (!*user) {
		fprintf(stderr, "Username for %s: ", server);
		fflush(stderr);
		if (!(*ubuf = read_password()) || !**ubuf)
			hypr_die(HYPR_EXIT_USAGE, "login: a user name is needed");
		*user = *ubuf;
	}
	fprintf(stderr, "Password: ");
	fflush(stderr);
	if (tcgetattr(0, &t) < 0)
		hypr_die(HYPR_EXIT_SYSTEM, "login: the terminal: %s", strerror(errno));
	saved_tty = t;
	sigaction(SIGINT, &sa, &oint);
	sigaction(SIGTERM, &sa, &oterm);
	sigaction(SIGHUP, &sa, &ohup);
	t.c_lflag &= ~(tcflag_t)ECHO;
	t.c_lflag |= ECHONL;
	tcsetattr(0, TCSANOW, &t);
	pw = read_password();
	tcsetattr(0, TCSANOW, &saved_tty);
	sigaction(SIGINT, &oint, NULL);
	sigaction(SIGTERM, &oterm, NULL);
	sigaction(SIGHUP, &ohup, NULL);
	return pw;
}

int
fetch_login(struct fetch *f, const char *server, const char *user, const char *password,
    int pwstdin, struct hypr_err *e)
{
	struct hypr_ref r;
	struct hypr_registry g;
	char *pw, *ubuf = NULL, probe[600];
	int rc;

	if (password)
		hypr_warn("--password on the command line is visible to other users; "
		    "use --password-stdin");
	if (!user && (pwstdin || password))
		hypr_die(HYPR_EXIT_USAGE, "login: %s needs -u USER",
		    pwstdin ? "--password-stdin" : "--password");
	pw = password ? strdup(password) : pwstdin ? read_password() : ask(server, &user, &ubuf);
	if (!pw || !*pw) {
		hypr_secret_free(pw);
		hypr_die(HYPR_EXIT_USAGE, "login: no password given");
	}
	/* Check the credentials against the registry before saving them. */
	snprintf(probe, sizeof(probe), "%s/hypr-login-probe", server);
	if (hypr_ref_parse(strchr(server, '.') || strchr(server, ':') ||
	    !strcmp(server, "localhost") ? probe : "docker.io/library/x", &r, e) < 0) {
		hypr_secret_free(pw);
		free(ubuf);
		return hypr_err_prefix(e, "login");
	}
	if (hypr_registry_open(&g, &f->root, &r, f->insecure, e) < 0) {
		hypr_secret_free(pw);
		free(ubuf);
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
	free(ubuf);
	if (rc == 0 && !f->quiet)
		printf("Login Succeeded\n");
	return rc;
}

