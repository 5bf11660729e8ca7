/* compose.c - `hypr compose build|up|down|ps|logs|stop|config`: the
 * project's files, .env and profiles; one `hypr build` per active service
 * with a build: section, tagged as its image: or <project>-<service>; then
 * one container per service (`hypr run -d` with the service's keys),
 * started in depends_on order, named
 * <project>-<service>-1 and labelled as Compose labels them.
 *
 * Service names: every VM of a project gets /etc/hosts lines naming each
 * service at 10.0.2.(100+k) (k its place in the file), and QEMU forwards
 * a connection to such an address and one of the service's ports (its
 * ports:, expose: and the image's EXPOSE) to that service's hidden host
 * forward on the host's loopback (guestfwd, through `hypr __proxy`). TCP
 * only; QEMU user networking has no shared segment between VMs.
 * Over 1000 lines as one file: every command works on the same project
 * (services in depends_on order, their containers, their names); the file
 * format itself is lib/compose.c's. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <poll.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/signalfd.h>
#include <sys/socket.h>

#include "compose.h"
#include "ctr.h"
#include "digest.h"
#include "store.h"
#include "fsutil.h"
#include "hypr.h"
#include "clock.h"
#include "tool.h"
#include "volume.h"

static void
compose_usage(FILE *f, int code)
{
	fputs("usage: hypr compose [-f FILE]... [-p NAME] [--project-directory DIR]\n"
	    "                    [--env-file FILE]... [--profile NAME]... COMMAND\n"
	    "\n"
	    "Commands:\n"
	    "  build [--no-cache] [--pull] [-q] [--build-arg K=V] [-n] [SERVICE...]\n"
	    "        build every service that has a build: section (or those named)\n"
	    "  up [--build] [--no-build] [-d] [--wait] [--force-recreate] [--no-deps] [SERVICE...]\n"
	    "        build what needs building, start every service (and what it depends on)\n"
	    "  down [-t SECS] [-v]   stop and remove the project's containers (-v: volumes)\n"
	    "  ps [-a] [-q] [SERVICE...]    the project's containers\n"
	    "  logs [-f] [-t] [-n N] [--since T] [--until T] [SERVICE...]\n"
	    "  stop [-t SECS] [SERVICE...]\n"
	    "  push [--ignore-push-failures] [-q] [SERVICE...]\n"
	    "        push the image: (and build: tags:) of every service built here\n"
	    "  config [--commands] [SERVICE...]\n"
	    "        print the resolved project as YAML (--commands: one `hypr build`\n"
	    "        command per service to build)\n"
	    "\n"
	    "The compose files: each -f (merged in order; - is stdin), else $COMPOSE_FILE,\n"
	    "else compose.yaml (or compose.yml, docker-compose.yml) and\n"
	    "compose.override.yaml in the project directory, with what they include:;\n"
	    "${VAR} from the environment, else .env (or each\n"
	    "--env-file). Project name: -p, $COMPOSE_PROJECT_NAME, name:, or the\n"
	    "directory's name. Profiles: --profile, else $COMPOSE_PROFILES.\n"
	    "See hypr-compose(1).\n", f);
	exit(code);
}

static char *
join(const char *dir, const char *p)
{
	char *s;

	if (p[0] == '/')
		return strdup(p);
	if (!strcmp(p, "."))
		return strdup(dir);
	if (asprintf(&s, "%s/%s", dir, p[0] == '.' && p[1] == '/' ? p + 2 : p) < 0)
		return NULL;
	return s;
}

/* One line a shell can run; an inline Dockerfile is piped to -f -. */
static void
print_cmd(FILE *f, char **v, const char *input)
{
	size_t i;

	if (input) {
		fputs("printf '%s\\n' ", f);
		shquote(f, input);
		fputs(" | ", f);
	}
	for (i = 0; v[i]; i++) {
		if (i)
			fputc(' ', f);
		shquote(f, v[i]);
	}
	fputc('\n', f);
}

static int
run_build(char **v, const char *input)
{
	int p[2] = { -1, -1 };

	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
	pid_t pid;
	int st;

	fflush(stdout);
	fflush(stderr);
	if (n <= 0)
		hypr_die_errno("/proc/self/exe");
	self[n] = 0;
	if (input && pipe2(p, O_CLOEXEC) < 0)
		hypr_die_errno("pipe");
	if ((pid = fork()) < 0)
		hypr_die_errno("fork");
	if (pid == 0) {
		if (input && dup2(p[0], 0) < 0)
			_exit(HYPR_EXIT_SYSTEM);
		execv(self, v);
		fprintf(stderr, "hypr: compose: %s: %s\n", self, strerror(errno));
		_exit(HYPR_EXIT_SYSTEM);
	}
	if (input) {
		void (*old)(int) = signal(SIGPIPE, SIG_IGN);

		close(p[0]);
		if (hypr_write_all(p[1], input, strlen(input)) < 0 ||
		    hypr_write_all(p[1], "\n", 1) < 0)
			hypr_warn("compose: writing the inline Dockerfile: %s", strerror(errno));
		close(p[1]);
		signal(SIGPIPE, old);
	}
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			hypr_die_errno("waitpid");
	if (WIFEXITED(st))
		return WEXITSTATUS(st);
	return 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
}



struct proj {
	struct hypr_compose c;
	char project[256];
	struct hypr_root root;
	char self[PATH_MAX];		/* this hypr, for QEMU's guestfwd command */
};

static size_t
svc_index(struct proj *p, const char *name)
{
	for (size_t s = 0; s < p->c.nservices; s++)
		if (!strcmp(p->c.services[s].name, name))
			return s;
	return (size_t)-1;
}

static void
image_name(struct proj *p, struct hypr_compose_service *sv, char *buf, size_t n)
{
	if (sv->image)
		snprintf(buf, n, "%s", sv->image);
	else
		snprintf(buf, n, "%s-%s", p->project, sv->name);
}

static void
ctr_name(struct proj *p, struct hypr_compose_service *sv, char *buf, size_t n)
{
	if (sv->container_name)
		snprintf(buf, n, "%s", sv->container_name);
	else
		snprintf(buf, n, "%s-%s-1", p->project, sv->name);
}

/* Services in depends_on order (each after what it depends on), only
 * those in want (plus, with deps, what they depend on). Exits 3 on a
 * cycle or an unknown dependency. */
static size_t *
order(struct proj *p, const int *want, int deps, size_t *nout)
{
	size_t n = p->c.nservices, k = 0;
	size_t *out = calloc(n + 1, sizeof *out);
	int *state = calloc(n + 1, sizeof *state);	/* 0 new, 1 visiting, 2 done */
	size_t *stack = calloc(n + 1, sizeof *stack), *pos = calloc(n + 1, sizeof *pos);
	const struct hypr_compose_service *bad = NULL;
	const char *bad_dep = NULL;
	int undefined = 0;

	if (!out || !state || !stack || !pos)
		hypr_die(HYPR_EXIT_SYSTEM, "out of memory");
	for (size_t s = 0; s < n; s++) {
		size_t top = 0;
		if (!want[s] || state[s])
			continue;
		stack[top] = s;
		pos[top++] = 0;
		state[s] = 1;
		while (top) {
			size_t cur = stack[top - 1];
			struct hypr_compose_service *sv = &p->c.services[cur];
			if (pos[top - 1] < sv->ndepends_on) {
				const char *dn = sv->depends_on[pos[top - 1]++].key;
				size_t d = svc_index(p, dn);
				if (d == (size_t)-1 || (state[d] == 1 && (deps || want[d]))) {
					bad = sv;
					bad_dep = dn;
					undefined = d == (size_t)-1;
					goto out;
				}
				if (!deps && !want[d])
					continue;
				if (state[d] == 0) {
					state[d] = 1;
					stack[top] = d;
					pos[top++] = 0;
				}
				continue;
			}
			state[cur] = 2;
			out[k++] = cur;
			top--;
		}
	}
out:
	/* freed before exiting, which a leak checker would otherwise report */
	free(state);
	free(stack);
	free(pos);
	if (bad) {
		free(out);
		if (undefined)
			hypr_die(HYPR_EXIT_INPUT, "compose: %s:%ld: service %s depends on undefined "
			    "service %s", bad->file, bad->line, bad->name, bad_dep);
		hypr_die(HYPR_EXIT_INPUT, "compose: %s:%ld: dependency cycle: %s and %s",
		    bad->file, bad->line, bad->name, bad_dep);
	}
	*nout = k;
	return out;
}

/* The project's containers (label com.docker.compose.project). */
static void
project_ctrs(struct proj *p, struct hypr_ctr **v, size_t *n)
{
	struct hypr_err e = { 0 };
	struct hypr_ctr *all;
	size_t na, k = 0;

	if (hypr_ctr_list(&p->root, &all, &na, &e) < 0)
		hypr_die_err(&e);
	for (size_t i = 0; i < na; i++) {
		const char *pr = json_string_value(json_object_get(json_object_get(all[i].config,
		    "labels"), "com.docker.compose.project"));
		if (pr && !strcmp(pr, p->project))
			all[k++] = all[i];
		else
			hypr_ctr_free(&all[i]);
	}
	*v = all;
	*n = k;
}

static const char *
ctr_service(struct hypr_ctr *c)
{
	return json_string_value(json_object_get(json_object_get(c->config, "labels"),
	    "com.docker.compose.service"));
}

/* Service names reach TCP ports only: QEMU's guestfwd has no UDP. */
static void
udp_warn(const struct hypr_compose_service *sv, const char *port, int published)
{
	hypr_warn("compose: service %s: %s: the other services cannot reach a UDP port by the "
	    "service's name (QEMU forwards TCP only)%s", sv->name, port, published ?
	    "; they can at 10.0.2.2 and its published host port" : "");
}

/* The TCP ports of a service the others reach: its ports: and expose:
 * container ports, and its image's EXPOSE. */
static json_t *
service_ports(struct proj *p, struct hypr_compose_service *sv, struct hypr_store *st)
{
	json_t *out = json_array();
	char img[600];
	struct hypr_image *im = NULL;
	struct hypr_err e = { 0 };

#define ADDP(v) do { unsigned _p = (v); size_t _i; json_t *_x; int _have = 0; \
	json_array_foreach(out, _i, _x) _have |= (unsigned)json_integer_value(_x) == _p; \
	if (_p && _p < 65536 && !_have) json_array_append_new(out, json_integer(_p)); } while (0)
	for (size_t i = 0; i < sv->nports; i++) {
		const char *s = sv->ports[i], *c = strrchr(s, ':');
		const char *g = c ? c + 1 : s;
		unsigned a = (unsigned)atoi(g), b = a;
		const char *dash = strchr(g, '-');
		if (strstr(s, "/udp")) {
			udp_warn(sv, s, 1);
			continue;
		}
		if (dash)
			b = (unsigned)atoi(dash + 1);
		for (unsigned q = a; q <= b && b - a < 1000; q++)
			ADDP(q);
	}
	for (size_t i = 0; i < sv->nexpose; i++)
		if (!strstr(sv->expose[i], "/udp"))
			ADDP((unsigned)atoi(sv->expose[i]));
		else
			udp_warn(sv, sv->expose[i], 0);
	image_name(p, sv, img, sizeof img);
	if (hypr_store_find(st, img, &im, NULL, 0, &e) == 0 && im && im->m) {
		size_t i;
		json_t *x;
		json_array_foreach(json_object_get(im->m, "exposed_ports"), i, x) {
			const char *ep = json_string_value(x);
			if (ep && !strstr(ep, "/udp"))
				ADDP((unsigned)atoi(ep));
		}
	}
#undef ADDP
	return out;
}

static json_t *
strv_json(char **v, size_t n)
{
	json_t *a = json_array();

	for (size_t i = 0; i < n; i++)
		json_array_append_new(a, json_string(v[i]));
	return a;
}

/* What a service's container is made from (hypr run's spec). */
static json_t *
service_spec(struct proj *p, struct hypr_compose_service *sv)
{
	json_t *spec = json_object(), *a, *labels = json_object(), *h;
	char name[600], img[600];

	ctr_name(p, sv, name, sizeof name);
	image_name(p, sv, img, sizeof img);
	json_object_set_new(spec, "name", json_string(name));
	json_object_set_new(spec, "image", json_string(img));
	if (sv->has_command)
		json_object_set_new(spec, "command", strv_json(sv->command, sv->ncommand));
	if (sv->has_entrypoint)
		json_object_set_new(spec, "entrypoint", strv_json(sv->entrypoint, sv->nentrypoint));
	json_object_set_new(spec, "ports", strv_json(sv->ports, sv->nports));
	/* a named volume is the project's: <project>_NAME, as compose names it */
	a = json_array();
	for (size_t i = 0; i < sv->nvolumes; i++) {
		char vb[PATH_MAX + 700];
		if (sv->volumes[i][0] != '/' && strchr(sv->volumes[i], ':'))
			snprintf(vb, sizeof vb, "%s_%s", p->project, sv->volumes[i]);
		else
			snprintf(vb, sizeof vb, "%s", sv->volumes[i]);
		json_array_append_new(a, json_string(vb));
	}
	json_object_set_new(spec, "volumes", a);
	json_object_set_new(spec, "add_hosts", strv_json(sv->extra_hosts, sv->nextra_hosts));
	a = json_array();
	for (size_t i = 0; i < sv->nenvironment; i++) {
		char *kv;
		if (asprintf(&kv, "%s%s%s", sv->environment[i].key, sv->environment[i].value ? "=" : "",
		    sv->environment[i].value ? sv->environment[i].value : "") < 0)
			hypr_die(HYPR_EXIT_SYSTEM, "out of memory");
		json_array_append_new(a, json_string(kv));
		free(kv);
	}
	json_object_set_new(spec, "env", a);
	a = json_array();
	for (size_t i = 0; i < sv->nenv_files; i++) {
		if (access(sv->env_files[i].key, R_OK) < 0) {
			if (sv->env_files[i].value)
				hypr_die(HYPR_EXIT_INPUT, "compose: %s:%ld: services.%s.env_file: %s: %s",
				    sv->file, sv->line, sv->name, sv->env_files[i].key, strerror(errno));
			continue;
		}
		json_array_append_new(a, json_string(sv->env_files[i].key));
	}
	json_object_set_new(spec, "env_files", a);
#define OPT(key, v) do { if (v) json_object_set_new(spec, key, json_string(v)); } while (0)
	OPT("user", sv->user);
	OPT("workdir", sv->working_dir);
	OPT("hostname", sv->hostname);
	OPT("restart", sv->restart);
	OPT("stop_signal", sv->stop_signal);
	OPT("memory", sv->mem_limit);
	OPT("cpus", sv->cpus);
#undef OPT
	if (sv->stop_grace_period) {
		int64_t ns = ctr_duration(sv->stop_grace_period);
		char t[32];
		if (ns < 0)
			hypr_die(HYPR_EXIT_INPUT, "compose: %s:%ld: services.%s.stop_grace_period %s: not a "
			    "duration", sv->file, sv->line, sv->name, sv->stop_grace_period);
		snprintf(t, sizeof t, "%lld", (long long)((ns + 999999999) / 1000000000));
		json_object_set_new(spec, "stop_timeout", json_string(t));
	}
	json_object_set_new(spec, "tty", json_boolean(sv->tty));
	json_object_set_new(spec, "interactive", json_boolean(sv->stdin_open));
	json_object_set_new(spec, "detach", json_true());
	json_object_set_new(spec, "network", json_string(sv->network_mode &&
	    !strcmp(sv->network_mode, "none") ? "none" : "default"));
	if (sv->has_healthcheck) {
		h = json_object();
		if (sv->hc_disable)
			json_object_set_new(h, "disable", json_true());
		if (sv->hc_test)
			json_object_set_new(h, "cmd", json_string(sv->hc_test));
		if (sv->nhc_argv) {
			a = json_array();
			for (size_t i = 0; i < sv->nhc_argv; i++)
				json_array_append_new(a, json_string(sv->hc_argv[i]));
			json_object_set_new(h, "argv", a);
		}
		if (sv->hc_interval)
			json_object_set_new(h, "interval", json_string(sv->hc_interval));
		if (sv->hc_timeout)
			json_object_set_new(h, "timeout", json_string(sv->hc_timeout));
		if (sv->hc_start_period)
			json_object_set_new(h, "start_period", json_string(sv->hc_start_period));
		if (sv->hc_retries)
			json_object_set_new(h, "retries", json_string(sv->hc_retries));
		json_object_set_new(spec, "health", h);
	}
	for (size_t i = 0; i < sv->nrun_labels; i++)
		json_object_set_new(labels, sv->run_labels[i].key,
		    json_string(sv->run_labels[i].value ? sv->run_labels[i].value : ""));
	json_object_set_new(labels, "com.docker.compose.project", json_string(p->project));
	json_object_set_new(labels, "com.docker.compose.service", json_string(sv->name));
	json_object_set_new(labels, "com.docker.compose.container-number", json_string("1"));
	{	/* every file of the project, comma-separated, as compose labels it */
		size_t len = 1;
		char *files;

		for (size_t i = 0; i < p->c.nfiles; i++)
			len += strlen(p->c.paths[i]) + 1;
		if (!(files = calloc(1, len)))
			hypr_die(HYPR_EXIT_SYSTEM, "out of memory");
		for (size_t i = 0; i < p->c.nfiles; i++) {
			if (i)
				strcat(files, ",");
			strcat(files, p->c.paths[i]);
		}
		json_object_set_new(labels, "com.docker.compose.project.config_files",
		    json_string(files));
		free(files);
	}
	json_object_set_new(spec, "labels", labels);
	return spec;
}

/* The definition's digest, with the image's ID: a change recreates. */
static void
spec_hash(json_t *spec, const char *image_id, char out[HYPR_DIGEST_LEN + 1])
{
	struct hypr_sha256 h;
	struct hypr_err e = { 0 };
	char *s = json_dumps(spec, JSON_COMPACT | JSON_SORT_KEYS);

	if (!s || hypr_sha256_init(&h, &e) < 0)
		hypr_die(HYPR_EXIT_SYSTEM, "out of memory");
	hypr_sha256_update(&h, s, strlen(s));
	hypr_sha256_update(&h, image_id ? image_id : "", image_id ? strlen(image_id) : 0);
	hypr_sha256_final(&h, out);
	free(s);
}

static int
alive_running(struct hypr_ctr *c)
{
	return c->alive && !strcmp(ctr_state(c), "running");
}

/* Wait until a dependency meets its condition; exits 1 if it never will. */
static void
wait_dep(struct proj *p, const char *who, const char *dep, const char *cond, double secs)
{
	struct hypr_ctr c;
	struct hypr_err e = { 0 };
	char name[600];
	size_t d = svc_index(p, dep);
	double deadline = hypr_now() + secs;

	ctr_name(p, &p->c.services[d], name, sizeof name);
	for (;;) {
		const char *st, *hs;
		if (hypr_ctr_find(&p->root, name, &c, &e) < 0)
			hypr_die(HYPR_EXIT_STEP, "compose: service %s: dependency %s has no container", who, dep);
		st = ctr_state(&c);
		hs = json_string_value(json_object_get(json_object_get(c.state, "health"), "status"));
		if (!strcmp(cond, "service_completed_successfully")) {
			if (!c.alive && !strcmp(st, "exited")) {
				json_int_t code = json_integer_value(json_object_get(c.state, "exit_code"));
				hypr_ctr_free(&c);
				if (code)
					hypr_die(HYPR_EXIT_STEP, "compose: service %s: dependency %s did not complete "
					    "successfully: exit %lld", who, dep, (long long)code);
				return;
			}
		} else if (!c.alive || strcmp(st, "running")) {
			if (!c.alive) {
				hypr_ctr_free(&c);
				hypr_die(HYPR_EXIT_STEP, "compose: service %s: dependency %s exited", who, dep);
			}
		} else if (!strcmp(cond, "service_started")) {
			hypr_ctr_free(&c);
			return;
		} else if (!json_is_object(json_object_get(c.config, "health"))) {
			hypr_ctr_free(&c);
			hypr_die(HYPR_EXIT_INPUT, "compose: service %s: dependency %s has no healthcheck "
			    "(condition: service_healthy)", who, dep);
		} else if (hs && !strcmp(hs, "healthy")) {
			hypr_ctr_free(&c);
			return;
		} else if (hs && !strcmp(hs, "unhealthy")) {
			hypr_ctr_free(&c);
			hypr_die(HYPR_EXIT_STEP, "compose: dependency failed to start: container %s is unhealthy",
			    name);
		}
		hypr_ctr_free(&c);
		if (hypr_now() > deadline)
			hypr_die(HYPR_EXIT_STEP, "compose: service %s: dependency %s not %s after %gs "
			    "(HYPR_COMPOSE_TIMEOUT)", who, dep, cond + 8, secs);
		usleep(100000);
	}
}


/* A compose file's shell-quoted argument for QEMU's guestfwd command. */
static void
shq(char *out, size_t n, const char *s)
{
	size_t o = 0;

	out[o++] = '\'';
	for (; *s && o + 6 < n; s++) {
		if (*s == '\'') {
			memcpy(out + o, "'\\''", 4);
			o += 4;
		} else {
			out[o++] = *s;
		}
	}
	out[o++] = '\'';
	out[o] = 0;
}

/* ---- log following with prefixes ---- */

struct follow {
	struct hypr_ctr c;
	struct hypr_ctr_log l;
	char prefix[256];
	char *line;		/* a partial line */
	size_t len;
	unsigned long long skip;	/* --tail: lines still to pass over */
	struct ctr_window win;	/* --since, --until: the records shown */
	int ts;			/* -t: each line after its record's time */
	int done;
};

/* Add a record's bytes to f's lines; print each whole one (both streams
 * go to standard output, as docker compose logs prints them). */
static void
follow_print(struct follow *f, int64_t ns, const char *d, size_t n, int flush)
{
	if (n && (ns < f->win.since || ns > f->win.until))
		return;
	ctr_skip_lines(&f->skip, &d, &n);
	while (n > 0) {
		const char *nl = memchr(d, '\n', n);
		size_t k = nl ? (size_t)(nl - d) + 1 : n;
		char t[64] = "";
		size_t tl;
		char *b;

		if (f->ts && f->len == 0) {
			ctr_log_time(ns, t, sizeof t - 1);
			strcat(t, " ");
		}
		tl = strlen(t);
		if (!(b = realloc(f->line, f->len + tl + k + 1)))
			hypr_die(HYPR_EXIT_SYSTEM, "out of memory");
		f->line = b;
		memcpy(f->line + f->len, t, tl);
		memcpy(f->line + f->len + tl, d, k);
		f->len += tl + k;
		if (nl) {
			printf("%s", f->prefix);
			fwrite(f->line, 1, f->len, stdout);
			f->len = 0;
		}
		d += k;
		n -= k;
	}
	if (flush && f->len) {
		printf("%s", f->prefix);
		fwrite(f->line, 1, f->len, stdout);
		putchar('\n');
		f->len = 0;
	}
}

/* Print what each container wrote (compose's "name  | line"); with follow,
 * until every one has stopped or a signal in mask comes (1), else 0. */
static int
follow_logs(struct follow *f, size_t n, int follow, int sigfd, int quiet_exit)
{
	struct hypr_err e = { 0 };
	size_t left = n;

	while (left) {
		for (size_t i = 0; i < n; i++) {
			int stream, r;
			int64_t ns;
			const char *data;
			size_t len;
			if (f[i].done)
				continue;
			while ((r = hypr_ctr_log_next(&f[i].l, &stream, &ns, &data, &len, &e)) == 1)
				follow_print(&f[i], ns, data, len, 0);
			if (!follow) {
				follow_print(&f[i], 0, "", 0, 1);
				f[i].done = 1;
				left--;
				continue;
			}
			hypr_ctr_reload(&f[i].c, &e);
			if (!f[i].c.alive || access(f[i].c.dir, F_OK) < 0) {
				while (hypr_ctr_log_next(&f[i].l, &stream, &ns, &data, &len, &e) == 1)
					follow_print(&f[i], ns, data, len, 0);
				follow_print(&f[i], 0, "", 0, 1);
				if (!quiet_exit)
					printf("%.*s exited with code %lld\n", (int)strcspn(f[i].prefix, " "),
					    f[i].prefix, (long long)json_integer_value(json_object_get(f[i].c.state,
					    "exit_code")));
				f[i].done = 1;
				left--;
			}
		}
		fflush(stdout);
		if (!left || !follow)
			break;
		if (sigfd >= 0) {
			struct pollfd pf = { .fd = sigfd, .events = POLLIN };
			if (poll(&pf, 1, 100) > 0)
				return 1;
		} else {
			usleep(100000);
		}
	}
	return 0;
}

/* Follow c's log (taken over): the records of w, of those only the last
 * tail lines when tail >= 0. */
static void
follow_setup(struct follow *f, struct hypr_ctr *c, size_t width, long tail,
    struct ctr_window w, int ts)
{
	struct hypr_err e = { 0 };
	const char *name = json_string_value(json_object_get(c->config, "name"));

	memset(f, 0, sizeof *f);
	f->c = *c;
	f->skip = ctr_log_skip(c, tail, w);
	f->win = w;
	f->ts = ts;
	snprintf(f->prefix, sizeof f->prefix, "%-*s | ", (int)width, name);
	hypr_ctr_log_open(&f->l, &f->c, &e);
}

static void
follow_free(struct follow *f, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		hypr_ctr_log_close(&f[i].l);
		hypr_ctr_free(&f[i].c);
		free(f[i].line);
	}
	free(f);
}

/* ---- the runtime subcommands ---- */

static int
compose_up(struct proj *p, int *want, int detach, int wait, int force, int deps,
    int timeout)
{
	struct hypr_err e = { 0 };
	struct hypr_store st;
	size_t n, *ord = order(p, want, deps, &n), width = 0;
	size_t ns = p->c.nservices;
	json_t **ports = calloc(ns, sizeof *ports), **specs = calloc(ns, sizeof *specs);
	json_t *hosts = json_array(), *gfwd = json_array();
	char (*hash)[HYPR_DIGEST_LEN + 1] = calloc(ns, sizeof *hash);
	int *keep = calloc(ns, sizeof *keep), *inorder = calloc(ns, sizeof *inorder);
	struct hypr_ctr *have;
	size_t nhave;
	struct follow *fl;
	int rc = 0;

	if (!ports || !specs || !hash || !keep || !inorder)
		hypr_die(HYPR_EXIT_SYSTEM, "out of memory");
	if (ns > 150)
		hypr_die(HYPR_EXIT_USAGE, "compose: at most 150 services (10.0.2.100-249)");
	for (size_t i = 0; i < n; i++)
		inorder[ord[i]] = 1;
	if (hypr_store_open(&st, p->root.path, 0, &e) < 0)
		hypr_die_err(&e);
	project_ctrs(p, &have, &nhave);
	/* the project's names and every service's reachable ports */
	for (size_t s = 0; s < ns; s++) {
		struct hypr_compose_service *sv = &p->c.services[s];
		char line[1400], name[600];
		ctr_name(p, sv, name, sizeof name);
		snprintf(line, sizeof line, "10.0.2.%zu %s %s", 100 + s, sv->name, name);
		json_array_append_new(hosts, json_string(line));
		ports[s] = service_ports(p, sv, &st);
		if (strlen(name) > width)
			width = strlen(name);
	}
	/* which containers stay: running, same definition, same image */
	for (size_t s = 0; s < ns; s++) {
		struct hypr_compose_service *sv = &p->c.services[s];
		struct hypr_image *im = NULL;
		char img[600];
		image_name(p, sv, img, sizeof img);
		if (!inorder[s])
			continue;
		specs[s] = service_spec(p, sv);
		if (hypr_store_find(&st, img, &im, NULL, 0, &e) < 0 || !im)
			hypr_die(HYPR_EXIT_INPUT, "compose: %s:%ld: service %s: image %s is not in hypr's "
			    "store%s", sv->file, sv->line, sv->name, img, sv->has_build ? "" :
			    " and the service has no build: section (hypr runs images it built)");
		spec_hash(specs[s], im->id, hash[s]);
		for (size_t k = 0; k < nhave; k++) {
			const char *svc = ctr_service(&have[k]);
			const char *hh = json_string_value(json_object_get(json_object_get(
			    have[k].config, "labels"), "com.docker.compose.config-hash"));
			if (svc && !strcmp(svc, sv->name) && !force && alive_running(&have[k]) && hh &&
			    !strcmp(hh, hash[s]))
				keep[s] = 1;
		}
	}
	/* each service's hidden forwards: kept from its container, else new */
	for (size_t s = 0; s < ns; s++) {
		json_t *pairs = json_array(), *x;
		size_t i;
		json_array_foreach(ports[s], i, x) {
			unsigned gp = (unsigned)json_integer_value(x), hp = 0;
			for (size_t k = 0; k < nhave; k++) {
				const char *svc = ctr_service(&have[k]);
				json_t *pp;
				size_t j;
				if (!svc || strcmp(svc, p->c.services[s].name))
					continue;
				json_array_foreach(json_object_get(have[k].config, "ports"), j, pp)
					if (json_is_true(json_object_get(pp, "internal")) &&
					    (unsigned)json_integer_value(json_object_get(pp, "guest_port")) == gp)
						hp = (unsigned)json_integer_value(json_object_get(pp, "host_port"));
			}
			if (!hp) {
				struct sockaddr_in sa = { .sin_family = AF_INET,
				    .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
				socklen_t sl = sizeof sa;
				int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
				if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0 ||
				    getsockname(fd, (struct sockaddr *)&sa, &sl) < 0)
					hypr_die_errno("compose: a free port");
				hp = ntohs(sa.sin_port);
				close(fd);
			}
			json_array_append_new(pairs, json_pack("[i,i]", (json_int_t)gp, (json_int_t)hp));
			{
				char rule[2 * PATH_MAX], q[PATH_MAX + 64];
				shq(q, sizeof q, p->self);
				snprintf(rule, sizeof rule, "tcp:10.0.2.%zu:%u-cmd:%s __proxy 127.0.0.1 %u",
				    100 + s, gp, q, hp);
				json_array_append_new(gfwd, json_string(rule));
			}
		}
		json_decref(ports[s]);
		ports[s] = pairs;
	}
	for (size_t s = 0; s < ns; s++) {
		if (!specs[s])
			continue;
		json_object_set(specs[s], "hosts", hosts);
		if (!(p->c.services[s].network_mode && !strcmp(p->c.services[s].network_mode, "none")))
			json_object_set(specs[s], "guestfwds", gfwd);
		json_object_set(specs[s], "expose", ports[s]);
		json_object_set_new(json_object_get(specs[s], "labels"), "com.docker.compose.config-hash",
		    json_string(hash[s]));
		/* a kept container whose forwards went stale is made again */
		for (size_t k = 0; keep[s] && k < nhave; k++) {
			const char *svc = ctr_service(&have[k]);
			if (svc && !strcmp(svc, p->c.services[s].name) &&
			    !json_equal(json_object_get(have[k].config, "guestfwds"), gfwd))
				keep[s] = 0;
		}
	}
	hypr_store_close(&st);
	/* start in order, each once what it depends on is ready */
	for (size_t i = 0; i < n; i++) {
		size_t s = ord[i];
		struct hypr_compose_service *sv = &p->c.services[s];
		char name[600];
		struct hypr_ctr c;
		int sqfd, lockfd;

		ctr_name(p, sv, name, sizeof name);
		if (keep[s]) {
			fprintf(stderr, "Container %s  Running\n", name);
			continue;
		}
		for (size_t d = 0; d < sv->ndepends_on; d++)
			if (inorder[svc_index(p, sv->depends_on[d].key)])
				wait_dep(p, sv->name, sv->depends_on[d].key, sv->depends_on[d].value,
				    hypr_env_seconds("HYPR_COMPOSE_TIMEOUT", 300));
		for (size_t k = 0; k < nhave; k++) {
			const char *svc = ctr_service(&have[k]);
			const char *cn = json_string_value(json_object_get(have[k].config, "name"));
			if ((svc && !strcmp(svc, sv->name)) || (cn && !strcmp(cn, name))) {
				if (ctr_stop(&have[k], timeout, &e) < 0 || hypr_ctr_remove(&have[k], &e) < 0)
					hypr_die_err(&e);
				fprintf(stderr, "Container %s  Recreated\n", name);
			}
		}
		fprintf(stderr, "Container %s  Creating\n", name);
		ctr_create(&p->root, specs[s], &c, &sqfd, &lockfd);
		if ((rc = ctr_start(&p->root, &c, sqfd, lockfd, 0, 1)) != 0) {
			fprintf(stderr, "hypr: compose: service %s failed to start (exit %d)\n", sv->name, rc);
			hypr_ctr_free(&c);
			break;
		}
		fprintf(stderr, "Container %s  Started\n", name);
		hypr_ctr_free(&c);
	}
	/* --wait: running, and healthy where there is a healthcheck */
	for (size_t i = 0; !rc && wait && i < n; i++) {
		struct hypr_compose_service *sv = &p->c.services[ord[i]];
		struct hypr_ctr c;
		char name[600];
		double deadline = hypr_now() + hypr_env_seconds("HYPR_COMPOSE_TIMEOUT", 300);
		ctr_name(p, sv, name, sizeof name);
		for (;;) {
			const char *hs;
			if (hypr_ctr_find(&p->root, name, &c, &e) < 0)
				hypr_die_err(&e);
			hs = json_string_value(json_object_get(json_object_get(c.state, "health"), "status"));
			if (!c.alive) {
				hypr_ctr_free(&c);
				hypr_die(HYPR_EXIT_STEP, "compose: container %s exited", name);
			}
			if (hs && !strcmp(hs, "unhealthy")) {
				hypr_ctr_free(&c);
				hypr_die(HYPR_EXIT_STEP, "compose: container %s is unhealthy", name);
			}
			if (alive_running(&c) && (!hs || !strcmp(hs, "healthy"))) {
				hypr_ctr_free(&c);
				break;
			}
			hypr_ctr_free(&c);
			if (hypr_now() > deadline)
				hypr_die(HYPR_EXIT_STEP, "compose: container %s not ready after %gs", name,
				    hypr_env_seconds("HYPR_COMPOSE_TIMEOUT", 300));
			usleep(100000);
		}
		fprintf(stderr, "Container %s  Healthy\n", name);
	}
	hypr_ctr_list_free(have, nhave);
	if (!rc && !detach) {
		/* attached: everyone's output until all have stopped; ^C stops them */
		sigset_t mask;
		int sfd, got;
		size_t k = 0;
		if (!(fl = calloc(n, sizeof *fl)))
			hypr_die(HYPR_EXIT_SYSTEM, "out of memory");
		fprintf(stderr, "Attaching to");
		for (size_t i = 0; i < n; i++) {
			struct hypr_ctr c;
			char name[600];
			ctr_name(p, &p->c.services[ord[i]], name, sizeof name);
			if (hypr_ctr_find(&p->root, name, &c, &e) < 0)
				continue;
			fprintf(stderr, "%s %s", k ? "," : "", name);
			follow_setup(&fl[k++], &c, width, -1, CTR_WINDOW_ALL, 0);
		}
		fprintf(stderr, "\n");
		sigemptyset(&mask);
		sigaddset(&mask, SIGINT);
		sigaddset(&mask, SIGTERM);
		sigaddset(&mask, SIGHUP);
		sigprocmask(SIG_BLOCK, &mask, NULL);
		sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
		got = follow_logs(fl, k, 1, sfd, 0);
		if (got) {
			struct signalfd_siginfo si;
			int force_now = 0;
			fprintf(stderr, "Gracefully stopping... (press Ctrl+C again to force)\n");
			while (read(sfd, &si, sizeof si) > 0)
				;
			for (size_t i = k; i-- > 0;) {
				/* a second ^C: the rest are killed at once */
				while (read(sfd, &si, sizeof si) > 0)
					force_now = 1;
				hypr_ctr_reload(&fl[i].c, &e);
				if (!fl[i].c.alive)
					continue;
				if (ctr_stop(&fl[i].c, force_now ? 0 : timeout, &e) < 0)
					hypr_say_err(&e);
				else
					fprintf(stderr, "Container %s  Stopped\n",
					    json_string_value(json_object_get(fl[i].c.config, "name")));
			}
			rc = 130;
		}
		follow_free(fl, k);
	}
	for (size_t s = 0; s < ns; s++) {
		json_decref(ports[s]);
		json_decref(specs[s]);
	}
	json_decref(hosts);
	json_decref(gfwd);
	free(ports);
	free(specs);
	free(hash);
	free(keep);
	free(inorder);
	free(ord);
	return rc;
}

/* down and stop: the project's containers, dependents first. */
static int
compose_down(struct proj *p, const int *want, int all, int rm, int timeout, int vols)
{
	struct hypr_ctr *v;
	json_t *gone = json_array();
	size_t n, nord;
	int *every = calloc(p->c.nservices + 1, sizeof *every), rc = 0;
	size_t *ord;

	for (size_t s = 0; s < p->c.nservices; s++)
		every[s] = 1;
	ord = order(p, every, 1, &nord);
	project_ctrs(p, &v, &n);
	/* containers of services no longer in the file first, then the file's
	 * services in reverse dependency order */
	for (size_t pass = 0; pass <= nord; pass++) {
		const char *svcname = pass == 0 ? NULL : p->c.services[ord[nord - pass]].name;
		for (size_t k = 0; k < n; k++) {
			struct hypr_err e = { 0 };
			const char *svc = ctr_service(&v[k]);
			size_t si = svc ? svc_index(p, svc) : (size_t)-1;
			const char *name = json_string_value(json_object_get(v[k].config, "name"));
			if (pass == 0 ? si != (size_t)-1 : (!svc || strcmp(svc, svcname)))
				continue;
			if (!all && (si == (size_t)-1 || !want[si]))
				continue;
			if (v[k].alive) {
				fprintf(stderr, "Container %s  Stopping\n", name);
				if (ctr_stop(&v[k], timeout, &e) < 0) {
					hypr_say_err(&e);
					rc = e.code;
					continue;
				}
				fprintf(stderr, "Container %s  Stopped\n", name);
			}
			if (rm) {
				json_t *m;
				size_t i;
				if (access(v[k].dir, F_OK) == 0 && hypr_ctr_remove(&v[k], &e) < 0) {
					hypr_say_err(&e);
					rc = e.code;
					continue;
				}
				fprintf(stderr, "Container %s  Removed\n", name);
				json_array_foreach(json_object_get(v[k].config, "volumes"), i, m)
					if (json_string_value(json_object_get(m, "volume")))
						json_array_append(gone, json_object_get(m, "volume"));
			}
		}
	}
	if (vols && json_array_size(gone)) {
		/* down -v: the volumes of the containers it removed, when no
		 * other container names them */
		struct hypr_err e = { 0 };
		json_t *m;
		size_t i;
		int fd;
		if (hypr_vol_lock(&p->root, &fd, &e) < 0)
			hypr_die_err(&e);
		json_array_foreach(gone, i, m) {
			const char *vn = json_string_value(m);
			json_t *ids = NULL;
			if (hypr_vol_users(&p->root, vn, &ids, &e) == 0 && !json_array_size(ids) &&
			    hypr_vol_remove(&p->root, vn, NULL, &e) == 0)
				fprintf(stderr, "Volume %s  Removed\n", vn);
			json_decref(ids);
		}
		close(fd);
	}
	json_decref(gone);
	hypr_ctr_list_free(v, n);
	free(ord);
	free(every);
	return rc;
}

/* `hypr push` each image a wanted service builds and names (image:, then
 * its build tags), in file order; one without image: has no name to push
 * to, one without build: is someone else's image. */
static int
compose_push(struct proj *p, const int *want, int quiet, int dry, int ignore)
{
	int rc = 0;

	for (size_t s = 0; s < p->c.nservices; s++) {
		struct hypr_compose_service *sv = &p->c.services[s];

		if (!want[s] || !sv->has_build)
			continue;	/* as docker compose: only what it builds */
		if (!sv->image) {
			if (!quiet)
				fprintf(stderr, "hypr compose: %s: no image: to push to, skipped\n",
				    sv->name);
			continue;
		}
		for (size_t j = 0; j <= sv->ntags; j++) {
			struct argv a = { 0 };
			int r;

			argv_add(&a, "hypr");
			argv_add(&a, "push");
			if (quiet)
				argv_add(&a, "-q");
			argv_add(&a, j == 0 ? sv->image : sv->tags[j - 1]);
			if (dry) {
				print_cmd(stdout, a.v, NULL);
				argv_free(&a);
				continue;
			}
			if (!quiet)
				fprintf(stderr, "hypr compose: pushing %s (%s)\n", sv->name, a.v[a.n - 1]);
			r = run_build(a.v, NULL);
			if (r) {
				fprintf(stderr, "hypr: compose: service %s: push of %s failed (exit %d)%s\n",
				    sv->name, a.v[a.n - 1], r, ignore ? ", ignored" : "");
				if (!ignore && !rc)
					rc = r;
			}
			argv_free(&a);
			if (rc)
				return rc;
		}
	}
	return rc;
}

static int
compose_ps(struct proj *p, const int *want, int all, int quiet, int services)
{
	struct hypr_ctr *v;
	size_t n, w[7] = { 4, 5, 7, 7, 7, 6, 5 };
	static const char *const head[7] = { "NAME", "IMAGE", "COMMAND", "SERVICE", "CREATED",
		"STATUS", "PORTS" };
	char (*cells)[7][512];
	size_t nr = 0;

	project_ctrs(p, &v, &n);
	if (!(cells = calloc(n + 1, sizeof *cells)))
		hypr_die(HYPR_EXIT_SYSTEM, "out of memory");
	for (int k = 0; k < 7; k++)
		snprintf(cells[0][k], sizeof cells[0][k], "%s", head[k]);
	nr = 1;
	for (size_t i = 0; i < n; i++) {
		const char *svc = ctr_service(&v[i]);
		size_t si = svc ? svc_index(p, svc) : (size_t)-1;
		char h[64];
		if (si != (size_t)-1 && !want[si])
			continue;
		if (!all && !v[i].alive)
			continue;
		if (quiet) {
			printf("%s\n", v[i].id);
			continue;
		}
		if (services) {
			printf("%s\n", svc ? svc : "");
			continue;
		}
		snprintf(cells[nr][0], sizeof cells[nr][0], "%s",
		    json_string_value(json_object_get(v[i].config, "name")));
		snprintf(cells[nr][1], sizeof cells[nr][1], "%s",
		    json_string_value(json_object_get(v[i].config, "image")));
		ctr_command_text(&v[i], 1, cells[nr][2], sizeof cells[nr][2]);
		snprintf(cells[nr][3], sizeof cells[nr][3], "%s", svc ? svc : "");
		ctr_human(hypr_ctr_now_ns() - json_integer_value(json_object_get(v[i].config, "created")),
		    h, sizeof h);
		snprintf(cells[nr][4], sizeof cells[nr][4], "%s ago", h);
		ctr_status(&v[i], cells[nr][5], sizeof cells[nr][5]);
		ctr_ports_text(&v[i], cells[nr][6], sizeof cells[nr][6]);
		nr++;
	}
	for (size_t r = 0; r < nr && !quiet && !services; r++)
		for (int k = 0; k < 7; k++) {
			size_t len = 0;
			for (const char *c = cells[r][k]; *c; c++)
				len += ((unsigned char)*c & 0xc0) != 0x80;
			if (len > w[k])
				w[k] = len;
		}
	for (size_t r = 0; r < nr && !quiet && !services; r++) {
		for (int k = 0; k < 7; k++) {
			size_t len = 0;
			for (const char *c = cells[r][k]; *c; c++)
				len += ((unsigned char)*c & 0xc0) != 0x80;
			fputs(cells[r][k], stdout);
			if (k < 6)
				printf("%*s", (int)(w[k] - len + 3), "");
		}
		putchar('\n');
	}
	free(cells);
	hypr_ctr_list_free(v, n);
	return 0;
}

static int
compose_logs(struct proj *p, const int *want, const struct ctr_logs_opts *o)
{
	struct hypr_ctr *v;
	size_t n, k = 0, width = 0;
	struct follow *fl;

	project_ctrs(p, &v, &n);
	if (!(fl = calloc(n + 1, sizeof *fl)))
		hypr_die(HYPR_EXIT_SYSTEM, "out of memory");
	for (size_t i = 0; i < n; i++) {
		size_t l = strlen(json_string_value(json_object_get(v[i].config, "name")));
		if (l > width)
			width = l;
	}
	for (size_t i = n; i-- > 0;) {	/* oldest first */
		const char *svc = ctr_service(&v[i]);
		size_t si = svc ? svc_index(p, svc) : (size_t)-1;
		if (si != (size_t)-1 && !want[si]) {
			hypr_ctr_free(&v[i]);
			continue;
		}
		follow_setup(&fl[k++], &v[i], width, o->tail, o->w, o->ts);
	}
	free(v);
	follow_logs(fl, k, o->follow, -1, 1);
	follow_free(fl, k);
	return 0;
}

/* What the options and .env hold, freed before an exit (a leak checker
 * would report what a die() leaves). */
static void
opts_free(struct hypr_compose_kv *env, size_t nenv, struct argv *files, struct argv *env_files,
    struct argv *profiles, struct argv *extra)
{
	hypr_compose_kv_free(env, nenv);
	argv_free(files);
	argv_free(env_files);
	argv_free(profiles);
	argv_free(extra);
}

/* A COMPOSE_* setting: the environment's, else the .env file's. */
static const char *
compose_var(const char *name, const struct hypr_compose_kv *env, size_t nenv)
{
	const char *v = getenv(name);

	for (size_t i = nenv; !v && i-- > 0;)
		if (!strcmp(env[i].key, name))
			v = env[i].value ? env[i].value : "";
	return v;
}

/* The override file Compose reads beside the default one, if any. */
static int
compose_override(const char *dir, char *out, size_t n)
{
	static const char *const names[] = { "compose.override.yml", "compose.override.yaml",
		"docker-compose.override.yml", "docker-compose.override.yaml", NULL };

	for (const char *const *nm = names; *nm; nm++)
		if ((size_t)snprintf(out, n, "%s/%s", dir, *nm) < n && access(out, F_OK) == 0)
			return 1;
	return 0;
}

/* A service without profiles: is always active; else one of its profiles
 * must be (--profile, COMPOSE_PROFILES; "*" activates every one). */
static int
profile_active(const struct hypr_compose_service *sv, const struct argv *profiles)
{
	if (!sv->nprofiles)
		return 1;
	for (size_t i = 0; i < profiles->n; i++) {
		if (!strcmp(profiles->v[i], "*"))
			return 1;
		for (size_t k = 0; k < sv->nprofiles; k++)
			if (!strcmp(sv->profiles[k], profiles->v[i]))
				return 1;
	}
	return 0;
}

int
cmd_compose(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "file", required_argument, NULL, 'f' },
		{ "project-name", required_argument, NULL, 'p' },
		{ "project-directory", required_argument, NULL, 'D' },
		{ "env-file", required_argument, NULL, 'E' },
		{ "profile", required_argument, NULL, 'P' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	static const struct option blo[] = {
		{ "no-cache", no_argument, NULL, 'N' },
		{ "pull", no_argument, NULL, 'P' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "build-arg", required_argument, NULL, 'a' },
		{ "build", no_argument, NULL, 'b' },
		{ "no-build", no_argument, NULL, 'B' },
		{ "dry-run", no_argument, NULL, 'n' },
		{ "detach", no_argument, NULL, 'd' },
		{ "progress", required_argument, NULL, 'g' },
		{ "wait", no_argument, NULL, 'W' },
		{ "force-recreate", no_argument, NULL, 'R' },
		{ "no-deps", no_argument, NULL, 'X' },
		{ "timeout", required_argument, NULL, 't' },
		{ "remove-orphans", no_argument, NULL, 'O' },
		{ "volumes", no_argument, NULL, 'v' },
		{ "all", no_argument, NULL, 'A' },
		{ "services", no_argument, NULL, 'S' },
		{ "commands", no_argument, NULL, 'C' },
		{ "ignore-push-failures", no_argument, NULL, 'I' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	const char *pname = NULL, *pdir = NULL, *sub, *progress = NULL, *cf;
	char path[PATH_MAX], over[PATH_MAX], dirbuf[PATH_MAX];
	struct argv files = { 0 }, env_files = { 0 }, profiles = { 0 };
	struct hypr_compose_kv *env = NULL;
	size_t nenv = 0;
	struct hypr_compose_opts co = { 0 };
	int commands = 0;
	struct proj pj;
	struct hypr_compose *cp = &pj.c;
	struct hypr_err e = { 0 };
	struct argv extra_args = { 0 };
	int down_vols = 0;
	int ch, no_cache = 0, pull = 0, quiet = 0, dry = 0, up, built = 0, nobuild = 0;
	int ignore_push = 0;
	int build_flag = 0, detach = 0, wait = 0, force = 0, nodeps = 0, timeout = -1;
	int all = 0, services = 0;
	struct ctr_logs_opts lo_opts = CTR_LOGS_OPTS_INIT;
	int i, rc = 0, *want = NULL;
	size_t s, j;
	ssize_t sl;

	optind = 1;
	while ((ch = getopt_long(argc, argv, "+f:p:h", lo, NULL)) != -1) {
		switch (ch) {
		case 'f':
			/* -f -: the file on stdin (never waited for on a terminal) */
			if (!strcmp(optarg, "-") && isatty(0))
				hypr_die(HYPR_EXIT_USAGE, "compose: -f -: standard input is a terminal");
			argv_add(&files, optarg);
			break;
		case 'E':
			argv_add(&env_files, optarg);
			break;
		case 'P':
			argv_add(&profiles, optarg);
			break;
		case 'p':
			pname = optarg;
			break;
		case 'D':
			pdir = optarg;
			break;
		case 'h':
			compose_usage(stdout, 0);
			break;
		default:
			compose_usage(stderr, HYPR_EXIT_USAGE);
		}
	}
	if (optind >= argc)
		compose_usage(stderr, HYPR_EXIT_USAGE);
	sub = argv[optind];
	up = !strcmp(sub, "up");
	if (strcmp(sub, "build") && !up && strcmp(sub, "config") && strcmp(sub, "down") &&
	    strcmp(sub, "ps") && strcmp(sub, "logs") && strcmp(sub, "stop") &&
	    strcmp(sub, "push"))
		hypr_die(HYPR_EXIT_USAGE,
		    "compose %s: not supported (build, up, down, ps, logs, stop, push, config)", sub);
	argc -= optind;
	argv += optind;
	optind = 1;
	if (!strcmp(sub, "logs"))
		ctr_logs_parse(argc, argv, "compose logs", &lo_opts, compose_usage);
	while (strcmp(sub, "logs") && (ch = getopt_long(argc, argv, "qndt:av", blo, NULL)) != -1) {
		switch (ch) {
		case 'N': no_cache = 1; break;
		case 'P': pull = 1; break;
		case 'q': quiet = 1; break;
		case 'a':
			if (!strcmp(sub, "ps")) {
				all = 1;
				break;
			}
			argv_add(&extra_args, optarg);
			break;
		case 'b': build_flag = 1; break;
		case 'd': detach = 1; break;
		case 'B': nobuild = 1; break;
		case 'n': dry = 1; break;
		case 'g': progress = optarg; break;
		case 'W': wait = 1; detach = 1; break;
		case 'R': force = 1; break;
		case 'X': nodeps = 1; break;
		case 't': {
			char *end;
			long t = strtol(optarg, &end, 10);
			if (*end || end == optarg || t < 0 || t > 1000000)
				hypr_die(HYPR_EXIT_USAGE, "compose: -t %s: seconds", optarg);
			timeout = (int)t;
			break;
		}
		case 'v': down_vols = 1; break;
		case 'O': break;
		case 'A': all = 1; break;
		case 'S': services = 1; break;
		case 'C': commands = 1; break;
		case 'I': ignore_push = 1; break;
		case 'h': compose_usage(stdout, 0); break;
		default: compose_usage(stderr, HYPR_EXIT_USAGE);
		}
	}
	if (!strcmp(sub, "config"))
		dry = 1;
	if (commands && strcmp(sub, "config"))
		hypr_die(HYPR_EXIT_USAGE, "compose %s: --commands is an option of config", sub);

	/* the project directory: given, else the first file's, else here */
	if (!pdir && files.n) {
		const char *slash = strrchr(files.v[0], '/');

		if (!slash)
			snprintf(dirbuf, sizeof dirbuf, ".");
		else
			snprintf(dirbuf, sizeof dirbuf, "%.*s", slash == files.v[0] ? 1 :
			    (int)(slash - files.v[0]), files.v[0]);
		pdir = dirbuf;
	}
	if (!pdir)
		pdir = ".";
	/* .env there, or the --env-file files instead; the environment wins */
	for (j = 0; j < env_files.n; j++)
		if (hypr_compose_dotenv(env_files.v[j], 1, &env, &nenv, &e) < 0)
			goto env_fail;
	if (!env_files.n) {
		if ((size_t)snprintf(path, sizeof path, "%s/.env", pdir) >= sizeof path)
			hypr_die(HYPR_EXIT_USAGE, "compose: %s: path too long", pdir);
		if (hypr_compose_dotenv(path, 0, &env, &nenv, &e) < 0)
			goto env_fail;
	}
	if (!files.n && (cf = compose_var("COMPOSE_FILE", env, nenv)) && *cf) {
		const char *sep = compose_var("COMPOSE_PATH_SEPARATOR", env, nenv);
		char *list = strdup(cf), *tok, *save = NULL;

		if (!list)
			hypr_die(HYPR_EXIT_SYSTEM, "out of memory");
		for (tok = strtok_r(list, sep && *sep ? sep : ":", &save); tok;
		    tok = strtok_r(NULL, sep && *sep ? sep : ":", &save))
			argv_add(&files, tok);
		free(list);
	}
	if (!files.n) {
		if (hypr_compose_find(pdir, path, sizeof path, &e) < 0)
			goto env_fail;
		argv_add(&files, path);
		if (compose_override(pdir, over, sizeof over))
			argv_add(&files, over);
	}
	co.files = (const char *const *)files.v;
	co.nfiles = files.n;
	co.env = env;
	co.nenv = nenv;
	if (hypr_compose_load_opts(cp, &co, &e) < 0) {
env_fail:
		opts_free(env, nenv, &files, &env_files, &profiles, &extra_args);
		hypr_die(e.code, "compose: %s", e.msg);
	}
	for (j = 0; j < cp->nwarnings; j++)
		hypr_warn("compose: %s", cp->warnings[j]);
	if (!pname)
		pname = compose_var("COMPOSE_PROJECT_NAME", env, nenv);
	if (!pname || !*pname)
		pname = cp->name;
	if (!pname || !*pname) {
		pname = strrchr(cp->dir, '/');
		pname = pname && pname[1] ? pname + 1 : cp->dir;
	}
	if (hypr_compose_project_name(pname, pj.project, sizeof pj.project) < 0) {
		char bad[256];

		snprintf(bad, sizeof bad, "%s", pname);
		opts_free(env, nenv, &files, &env_files, &profiles, &extra_args);
		hypr_compose_free(cp);
		hypr_die(HYPR_EXIT_USAGE, "compose: project name '%s' has no valid characters (use -p)",
		    bad);
	}
	if (!profiles.n && (cf = compose_var("COMPOSE_PROFILES", env, nenv)) && *cf) {
		char *list = strdup(cf), *tok, *save = NULL;

		if (!list)
			hypr_die(HYPR_EXIT_SYSTEM, "out of memory");
		for (tok = strtok_r(list, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
			argv_add(&profiles, tok);
		free(list);
	}
	if (!(want = calloc(cp->nservices + 1, sizeof *want)))
		hypr_die(HYPR_EXIT_SYSTEM, "out of memory");
	for (i = optind; i < argc; i++) {
		for (s = 0; s < cp->nservices; s++)
			if (!strcmp(cp->services[s].name, argv[i]))
				break;
		if (s == cp->nservices) {
			opts_free(env, nenv, &files, &env_files, &profiles, &extra_args);
			free(want);
			hypr_compose_free(cp);
			hypr_die(HYPR_EXIT_USAGE, "compose: no such service: %s", argv[i]);
		}
		want[s] = 1;
	}
	for (s = 0; s < cp->nservices; s++)
		if (optind >= argc)
			want[s] = profile_active(&cp->services[s], &profiles);
	if (strcmp(sub, "build") && strcmp(sub, "config")) {
		if (hypr_root_open(&pj.root, NULL, &e) < 0)
			hypr_die_err(&e);
		sl = readlink("/proc/self/exe", pj.self, sizeof pj.self - 1);
		if (sl <= 0)
			hypr_die_errno("/proc/self/exe");
		pj.self[sl] = 0;
	}
	if (!strcmp(sub, "down")) {
		rc = compose_down(&pj, want, optind >= argc, 1, timeout, down_vols);
		goto done;
	}
	if (!strcmp(sub, "stop")) {
		rc = compose_down(&pj, want, optind >= argc, 0, timeout, 0);
		goto done;
	}
	if (!strcmp(sub, "ps")) {
		rc = compose_ps(&pj, want, all, quiet, services);
		goto done;
	}
	if (!strcmp(sub, "logs")) {
		rc = compose_logs(&pj, want, &lo_opts);
		goto done;
	}
	if (!strcmp(sub, "push")) {
		rc = compose_push(&pj, want, quiet, dry, ignore_push);
		goto done;
	}
	if (!strcmp(sub, "config") && !commands) {
		if (hypr_compose_write_yaml(stdout, cp, pj.project, want, &e) < 0) {
			hypr_warn("compose: %s", e.msg);
			rc = e.code;
		}
		goto done;
	}
	if (up && !nodeps) {
		/* what the named services depend on is started too */
		size_t n, *ord = order(&pj, want, 1, &n);
		for (size_t k = 0; k < n; k++)
			want[ord[k]] = 1;
		free(ord);
	}

	for (s = 0; s < cp->nservices && !rc; s++) {
		struct hypr_compose_service *sv = &cp->services[s];
		struct argv a = { 0 };
		char *ctx, *df = NULL, img[600];
		int wanted = want[s];

		if (!wanted)
			continue;
		if (!sv->has_build) {
			if (optind < argc && !up)
				fprintf(stderr, "hypr compose: %s: no build: section, nothing to build\n",
				    sv->name);
			continue;
		}
		if (nobuild)
			continue;
		if (up && !build_flag && !dry) {
			/* up builds only what is missing, unless --build */
			struct hypr_store st;
			struct hypr_image *im = NULL;
			int have;
			image_name(&pj, sv, img, sizeof img);
			if (hypr_store_open(&st, pj.root.path, 0, &e) < 0)
				hypr_die_err(&e);
			have = hypr_store_find(&st, img, &im, NULL, 0, &e) == 0 && im;
			hypr_store_close(&st);
			if (have)
				continue;
		}
		if (!(ctx = join(cp->dir, sv->context)))
			hypr_die(HYPR_EXIT_SYSTEM, "out of memory");
		if (sv->dockerfile && !(df = join(ctx, sv->dockerfile)))
			hypr_die(HYPR_EXIT_SYSTEM, "out of memory");
		argv_add(&a, "hypr");
		argv_add(&a, "build");
		argv_add(&a, "-t");
		image_name(&pj, sv, img, sizeof img);
		argv_add(&a, img);
		for (j = 0; j < sv->ntags; j++) {
			argv_add(&a, "-t");
			argv_add(&a, sv->tags[j]);
		}
		if (sv->dockerfile_inline) {
			argv_add(&a, "-f");
			argv_add(&a, "-");
		} else if (df) {
			argv_add(&a, "-f");
			argv_add(&a, df);
		}
		for (j = 0; j < sv->nargs; j++)
			if (sv->args[j].value)
				argv_addf(&a, "--build-arg=%s=%s", sv->args[j].key,
				    sv->args[j].value);
			else
				argv_addf(&a, "--build-arg=%s", sv->args[j].key);
		for (j = 0; j < extra_args.n; j++)
			argv_addf(&a, "--build-arg=%s", extra_args.v[j]);
		if (sv->target)
			argv_addf(&a, "--target=%s", sv->target);
		for (j = 0; j < sv->nlabels; j++)
			argv_addf(&a, "--label=%s=%s", sv->labels[j].key,
			    sv->labels[j].value ? sv->labels[j].value : "");
		for (j = 0; j < sv->ncache_from; j++)
			argv_addf(&a, "--cache-from=%s", sv->cache_from[j]);
		for (j = 0; j < sv->ncache_to; j++)
			argv_addf(&a, "--cache-to=%s", sv->cache_to[j]);
		if (no_cache || sv->no_cache)
			argv_add(&a, "--no-cache");
		if (pull || sv->pull)
			argv_add(&a, "--pull=always");
		if (quiet)
			argv_add(&a, "--progress=quiet");
		else if (progress)
			argv_addf(&a, "--progress=%s", progress);
		argv_add(&a, ctx);
		if (dry) {
			print_cmd(stdout, a.v, sv->dockerfile_inline);
		} else {
			if (!quiet)
				fprintf(stderr, "hypr compose: building %s\n", sv->name);
			rc = run_build(a.v, sv->dockerfile_inline);
			if (rc)
				fprintf(stderr, "hypr: compose: service %s failed to build (exit %d)\n",
				    sv->name, rc);
			else
				built++;
		}
		argv_free(&a);
		free(ctx);
		free(df);
	}
	if (up && !rc && !dry)
		rc = compose_up(&pj, want, detach, wait, force, !nodeps, timeout);
done:
	opts_free(env, nenv, &files, &env_files, &profiles, &extra_args);
	free(want);
	hypr_compose_free(cp);
	if (rc == 0)
		hypr_close_stdout();
	return rc;
}
