/* startcmd.c - hypr start, restart and attach: a container that does not run
 * boots again from its config (a fresh VM over the container's kept
 * writable layer), under a supervisor as hypr run's. */
#include <errno.h>
#include <signal.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "clock.h"
#include "ctr.h"
#include "hypr.h"
#include "store.h"
#include "tool.h"
#include "vm_proto.h"

static const char *
jstr(json_t *o, const char *k)
{
	return json_string_value(json_object_get(o, k));
}

/* Start c (not running): its lock, its image's squashfs locked shared
 * under the store's lock (the image cannot go meanwhile), its host ports
 * checked. attach: this process supervises it and returns its status;
 * else 0 once it runs. -1 with e when it cannot start. */
static int
start_one(const struct hypr_root *root, struct hypr_ctr *c, int attach, int in,
    struct hypr_err *e)
{
	struct hypr_store s;
	const char *sq = jstr(c->config, "squashfs");
	json_t *v;
	size_t i;
	int lockfd, sqfd, rc;

	/* a supervisor just stopped may hold the lock a moment longer */
	for (double end = hypr_now() + 5; hypr_ctr_lock(c, &lockfd, e) < 0;) {
		if (hypr_now() >= end)
			return -1;	/* started by another meanwhile */
		usleep(20000);
	}
	if (hypr_store_open(&s, root->path, 1, e) < 0) {
		close(lockfd);
		return -1;
	}
	if (!sq || (sqfd = open(sq, O_RDONLY | O_CLOEXEC)) < 0) {
		hypr_store_close(&s);
		close(lockfd);
		return hypr_err_set(e, HYPR_EXIT_INPUT, "container %.12s: its image %s (%s) is gone",
		    c->id, jstr(c->config, "image") ? jstr(c->config, "image") : "?",
		    jstr(c->config, "image_id") ? jstr(c->config, "image_id") : "?");
	}
	while (flock(sqfd, LOCK_SH) < 0 && errno == EINTR)
		;
	hypr_store_close(&s);
	json_array_foreach(json_object_get(c->config, "ports"), i, v) {
		const char *ip = jstr(v, "host_ip");
		unsigned hp = (unsigned)json_integer_value(json_object_get(v, "host_port"));
		int udp = jstr(v, "proto") && !strcmp(jstr(v, "proto"), "udp");
		if (ip && !ctr_port_free(udp, ip, hp)) {
			close(sqfd);
			close(lockfd);
			return hypr_err_set(e, HYPR_EXIT_SYSTEM, "container %.12s: %s:%u is already in use",
			    c->id, ip, hp);
		}
	}
	/* what the last run left: its error, its health */
	json_object_del(c->state, "error");
	json_object_del(c->state, "health");
	if (in)
		json_object_set_new(c->config, "interactive", json_true());
	else if (attach)
		json_object_set_new(c->config, "interactive", json_false());	/* -a alone */
	rc = ctr_start(root, c, sqfd, lockfd, attach, 1);
	if (attach) {
		close(sqfd);
		close(lockfd);
		return rc;
	}
	if (rc != 0)
		return hypr_err_set(e, rc, "container %.12s: it did not start (see hypr logs %s)",
		    c->id, jstr(c->config, "name") ? jstr(c->config, "name") : c->id);
	return 0;
}

static void
start_usage(FILE *f, int code)
{
	fputs("usage: hypr start [-a] [-i] CONTAINER...\n"
	    "\n"
	    "Start stopped containers again (a fresh VM from the same image and config).\n"
	    "\n"
	    "  -a, --attach         attach its output and exit with its status (one container)\n"
	    "  -i, --interactive    attach its stdin too\n"
	    "\n"
	    "See hypr-container(1).\n", f);
	exit(code);
}

/* docker: starting a running container is a no-op */
static int
act_start(const struct hypr_root *r, struct hypr_ctr *c, const char *name, void *arg,
    struct hypr_err *e)
{
	(void)name;
	(void)arg;
	return c->alive ? 0 : start_one(r, c, 0, 0, e);
}

static int
act_restart(const struct hypr_root *r, struct hypr_ctr *c, const char *name, void *timeout,
    struct hypr_err *e)
{
	if (json_is_true(json_object_get(c->config, "rm")) && c->alive) {
		/* it would be removed once stopped: docker refuses too */
		fprintf(stderr, "hypr: restart: %s: a --rm container goes when it stops\n", name);
		return CTR_SAID;
	}
	if (ctr_stop(c, *(int *)timeout, e) < 0 || hypr_ctr_reload(c, e) < 0)
		return -1;
	return start_one(r, c, 0, 0, e) < 0 ? -1 : 0;
}

int
cmd_start(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "attach", no_argument, NULL, 'a' },
		{ "interactive", no_argument, NULL, 'i' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct hypr_root root;
	struct hypr_err e = { 0 };
	struct hypr_ctr c;
	int ch, attach = 0, in = 0, r;

	optind = 1;
	while ((ch = getopt_long(argc, argv, "+aih", lo, NULL)) != -1) {
		switch (ch) {
		case 'a': attach = 1; break;
		case 'i': in = 1; break;
		case 'h': start_usage(stdout, 0); break;
		default: start_usage(stderr, HYPR_EXIT_USAGE);
		}
	}
	if (optind == argc)
		hypr_die(HYPR_EXIT_USAGE, "start: at least one CONTAINER");
	if ((attach || in) && argc - optind > 1)
		hypr_die(HYPR_EXIT_USAGE, "start: -a and -i attach one container");
	if (!attach && !in)
		return ctr_each(argv, optind, argc, act_start, NULL);
	/* one container, this process its supervisor: its exit status */
	if (hypr_root_open(&root, NULL, &e) < 0 || hypr_ctr_find(&root, argv[optind], &c, &e) < 0)
		hypr_die_err(&e);
	r = c.alive ? 0 : start_one(&root, &c, 1, in, &e);
	hypr_ctr_free(&c);
	if (r < 0)
		hypr_die_err(&e);
	hypr_close_stdout();
	return r;
}

int
cmd_restart(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "time", required_argument, NULL, 't' },
		{ "timeout", required_argument, NULL, 't' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int ch, timeout = -1;

	optind = 1;
	while ((ch = getopt_long(argc, argv, "t:h", lo, NULL)) != -1) {
		switch (ch) {
		case 't': {
			char *end;
			long t = strtol(optarg, &end, 10);
			if (*end || end == optarg || t < 0 || t > 1000000)
				hypr_die(HYPR_EXIT_USAGE, "restart: -t %s: seconds", optarg);
			timeout = (int)t;
			break;
		}
		case 'h': printf("usage: hypr restart [-t SECONDS] CONTAINER...\n"); exit(0);
		default: hypr_die(HYPR_EXIT_USAGE, "usage: hypr restart [-t SECONDS] CONTAINER...");
		}
	}
	if (optind == argc)
		hypr_die(HYPR_EXIT_USAGE, "restart: at least one CONTAINER");
	return ctr_each(argv, optind, argc, act_restart, &timeout);
}

size_t
ctr_detach_keys(const char *spec, unsigned char *keys, size_t cap)
{
	char buf[128], *save = NULL;
	size_t n = 0;

	if (snprintf(buf, sizeof buf, "%s", spec) >= (int)sizeof buf)
		hypr_die(HYPR_EXIT_USAGE, "--detach-keys %s: too long", spec);
	for (char *k = strtok_r(buf, ",", &save); k; k = strtok_r(NULL, ",", &save)) {
		if (n == cap)
			hypr_die(HYPR_EXIT_USAGE, "--detach-keys %s: at most %zu keys", spec, cap);
		if (!strncmp(k, "ctrl-", 5) && k[5] && !k[6] &&
		    ((k[5] >= 'a' && k[5] <= 'z') || strchr("@[\\]^_", k[5])))
			keys[n++] = (unsigned char)(k[5] & 0x1f);
		else if (k[0] && !k[1])
			keys[n++] = (unsigned char)k[0];
		else
			hypr_die(HYPR_EXIT_USAGE, "--detach-keys %s: '%s' is not a key "
			    "(a letter, or ctrl-<value> with <value> a-z, @, [, \\, ], ^ or _)", spec, k);
	}
	if (!n)
		hypr_die(HYPR_EXIT_USAGE, "--detach-keys: no key");
	return n;
}

int
cmd_attach(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "no-stdin", no_argument, NULL, 'n' },
		{ "detach-keys", required_argument, NULL, 'k' },
		{ "sig-proxy", required_argument, NULL, 's' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct hypr_root root;
	struct hypr_err e = { 0 };
	struct hypr_ctr c;
	unsigned char keys[16] = { 0x10, 0x11 };	/* ctrl-p, ctrl-q */
	size_t nkeys = 2;
	int ch, nostdin = 0, rc;

	optind = 1;
	while ((ch = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		switch (ch) {
		case 'n': nostdin = 1; break;
		case 'k': nkeys = ctr_detach_keys(optarg, keys, sizeof keys); break;
		case 's': break;	/* signals: hypr kill */
		case 'h':
			printf("usage: hypr attach [--no-stdin] [--detach-keys KEYS] CONTAINER\n");
			exit(0);
		default:
			hypr_die(HYPR_EXIT_USAGE, "usage: hypr attach [--no-stdin] [--detach-keys KEYS] "
			    "CONTAINER");
		}
	}
	if (optind + 1 != argc)
		hypr_die(HYPR_EXIT_USAGE, "attach: one CONTAINER");
	if (hypr_root_open(&root, NULL, &e) < 0 || hypr_ctr_find(&root, argv[optind], &c, &e) < 0)
		hypr_die_err(&e);
	rc = ctr_attach(&c, nostdin, keys, nkeys);
	hypr_ctr_free(&c);
	return rc;
}

int
ctr_attach(struct hypr_ctr *c, int nostdin, const unsigned char *keys, size_t nkeys)
{
	struct hypr_err e = { 0 };
	struct hypr_ctr_reader rd = { 0 };
	int fd, in = 0, got = 0;

	if (!c->alive || hypr_ctr_connect(c, &fd, &e) < 0)
		hypr_die(HYPR_EXIT_INPUT, "You cannot attach to a stopped container, start it first");
	signal(SIGPIPE, SIG_IGN);
	if (hypr_ctr_send(fd, HYPR_CTR_ATTACH, 0, NULL, 0) < 0)
		hypr_die(HYPR_EXIT_SYSTEM, "container %.12s: its supervisor is gone", c->id);
	/* its answer first: OK with whether its stdin is open (run -i) */
	while (!got) {
		const unsigned char *p;
		uint32_t id, n;
		int type;

		if (hypr_ctr_read(&rd, fd) < 0)
			hypr_die(HYPR_EXIT_INPUT, "You cannot attach to a stopped container, start it first");
		while (!got && hypr_ctr_frame(&rd, &type, &id, &p, &n) == 1) {
			if (type == HYPR_CTR_ERROR)
				hypr_die(HYPR_EXIT_INPUT, "%.*s", (int)n, (const char *)p);
			if (type == HYPR_CTR_OK) {
				in = n >= 4 && hypr_proto_get32(p);
				got = 1;
			}
		}
	}
	in = in && !nostdin;
	{
		int tty = json_is_true(json_object_get(c->config, "tty"));
		int rc;

		if (tty) {
			/* the window's size now, as docker attach sends it */
			struct winsize ws;
			if (ioctl(1, TIOCGWINSZ, &ws) == 0 || ioctl(0, TIOCGWINSZ, &ws) == 0) {
				unsigned char b[8];
				hypr_proto_put32(b, ws.ws_row);
				hypr_proto_put32(b + 4, ws.ws_col);
				hypr_ctr_send(fd, HYPR_CTR_WINSIZE, 0, b, 8);
			}
		}
		/* rd may hold what followed the OK (hypr run -it's held output) */
		rc = ctr_client_loop(c, fd, &rd, tty, in, keys, in ? nkeys : 0);
		close(fd);
		return rc;
	}
}
