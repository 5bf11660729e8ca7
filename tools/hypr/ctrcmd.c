/* ctrcmd.c - the container commands: ps, logs, stop, kill, rm, exec,
 * port, container inspect|prune|ls, and the helper QEMU runs for a
 * compose service's name (__proxy). Each talks to a container's
 * supervisor over its control socket, or reads its directory. Kept as one
 * file (over 1000 lines): the commands share the client side of the
 * control socket and the state reading, and each is short. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "ctr.h"
#include "fsutil.h"
#include "hypr.h"
#include "clock.h"
#include "strbuf.h"
#include "template.h"
#include "tool.h"
#include "volume.h"
#include "vm_proto.h"


static const char *
jstr(json_t *o, const char *k)
{
	return json_string_value(json_object_get(o, k));
}

static void
open_root(struct hypr_root *r)
{
	struct hypr_err e = { 0 };

	if (hypr_root_open(r, NULL, &e) < 0)
		hypr_die_err(&e);
}

/* ---- small helpers ---- */

int64_t
ctr_duration(const char *s)
{
	static const struct { const char *u; double ns; } units[] = {
		{ "ns", 1 }, { "us", 1e3 }, { "\xc2\xb5s", 1e3 }, { "ms", 1e6 },
		{ "s", 1e9 }, { "m", 60e9 }, { "h", 3600e9 },
	};
	double total = 0;

	if (!s || !*s)
		return -1;
	if (!strcmp(s, "0"))
		return 0;
	while (*s) {
		char *end;
		double v = strtod(s, &end);
		size_t best = 0;
		int k = -1;
		if (end == s || v < 0)
			return -1;
		for (int i = 0; i < (int)(sizeof units / sizeof *units); i++) {
			size_t l = strlen(units[i].u);
			if (!strncmp(end, units[i].u, l) && l > best) {
				best = l;
				k = i;
			}
		}
		if (k < 0)
			return -1;
		total += v * units[k].ns;
		s = end + best;
	}
	return total > 9e18 ? -1 : (int64_t)total;
}

int
ctr_signal(const char *s)
{
	static const struct { const char *n; int v; } sigs[] = {
		{ "HUP", SIGHUP }, { "INT", SIGINT }, { "QUIT", SIGQUIT }, { "ILL", SIGILL },
		{ "TRAP", SIGTRAP }, { "ABRT", SIGABRT }, { "BUS", SIGBUS }, { "FPE", SIGFPE },
		{ "KILL", SIGKILL }, { "USR1", SIGUSR1 }, { "SEGV", SIGSEGV }, { "USR2", SIGUSR2 },
		{ "PIPE", SIGPIPE }, { "ALRM", SIGALRM }, { "TERM", SIGTERM }, { "STKFLT", SIGSTKFLT },
		{ "CHLD", SIGCHLD }, { "CONT", SIGCONT }, { "STOP", SIGSTOP }, { "TSTP", SIGTSTP },
		{ "TTIN", SIGTTIN }, { "TTOU", SIGTTOU }, { "URG", SIGURG }, { "XCPU", SIGXCPU },
		{ "XFSZ", SIGXFSZ }, { "VTALRM", SIGVTALRM }, { "PROF", SIGPROF },
		{ "WINCH", SIGWINCH }, { "IO", SIGIO }, { "PWR", SIGPWR }, { "SYS", SIGSYS },
	};
	char *end;
	long v;

	if (!s || !*s)
		return -1;
	v = strtol(s, &end, 10);
	if (!*end)
		return v > 0 && v < 65 ? (int)v : -1;
	if (!strncasecmp(s, "SIG", 3))
		s += 3;
	for (size_t i = 0; i < sizeof sigs / sizeof *sigs; i++)
		if (!strcasecmp(s, sigs[i].n))
			return sigs[i].v;
	if (!strncasecmp(s, "RTMIN+", 6) && (v = strtol(s + 6, &end, 10)) >= 0 && !*end &&
	    SIGRTMIN + v <= SIGRTMAX)
		return SIGRTMIN + (int)v;
	return -1;
}

int
ctr_should_restart(json_t *restart, int status, int count)
{
	const char *n = jstr(restart, "name");
	json_int_t max = json_integer_value(json_object_get(restart, "max"));

	if (!n || !strcmp(n, "no"))
		return 0;
	if (!strcmp(n, "on-failure"))
		return status != 0 && (max == 0 || count < max);
	return 1;	/* always, unless-stopped */
}

/* Docker's units.HumanDuration. */
void
ctr_human(int64_t ns, char *buf, size_t n)
{
	int64_t s = ns / 1000000000, m = s / 60, h = m / 60;

	if (s < 1)
		snprintf(buf, n, "Less than a second");
	else if (s == 1)
		snprintf(buf, n, "1 second");
	else if (s < 60)
		snprintf(buf, n, "%lld seconds", (long long)s);
	else if (m == 1)
		snprintf(buf, n, "About a minute");
	else if (m < 60)
		snprintf(buf, n, "%lld minutes", (long long)m);
	else if (h == 1)
		snprintf(buf, n, "About an hour");
	else if (h < 48)
		snprintf(buf, n, "%lld hours", (long long)h);
	else if (h < 24 * 7 * 2)
		snprintf(buf, n, "%lld days", (long long)(h / 24));
	else if (h < 24 * 30 * 2)
		snprintf(buf, n, "%lld weeks", (long long)(h / 24 / 7));
	else if (h < 24 * 365 * 2)
		snprintf(buf, n, "%lld months", (long long)(h / 24 / 30));
	else
		snprintf(buf, n, "%lld years", (long long)(h / 24 / 365));
}

/* created, running, restarting, exited, dead (docker's .State) */
const char *
ctr_state(const struct hypr_ctr *c)
{
	const char *st = jstr(c->state, "status");

	if (!st)
		st = "created";
	if (c->alive)
		return !strcmp(st, "exited") ? "running" : st;
	if (!strcmp(st, "running") || !strcmp(st, "restarting"))
		return "dead";	/* its supervisor was killed */
	if (!strcmp(st, "created") && json_object_get(c->state, "pid"))
		return "dead";
	return st;
}

void
ctr_status(const struct hypr_ctr *c, char *buf, size_t n)
{
	const char *st = ctr_state(c);
	int64_t t = hypr_ctr_now_ns();
	char h[64];

	if (!strcmp(st, "running")) {
		const char *hs = jstr(json_object_get(c->state, "health"), "status");
		int64_t since = json_integer_value(json_object_get(c->state, "started_at"));
		ctr_human(since ? t - since : 0, h, sizeof h);
		snprintf(buf, n, "Up %s%s%s%s", h, hs ? (strcmp(hs, "starting") ? " (" : " (health: ") : "",
		    hs ? hs : "", hs ? ")" : "");
	} else if (!strcmp(st, "restarting") || !strcmp(st, "exited")) {
		ctr_human(t - json_integer_value(json_object_get(c->state, "finished_at")), h, sizeof h);
		snprintf(buf, n, "%s (%lld) %s ago", !strcmp(st, "exited") ? "Exited" : "Restarting",
		    (long long)json_integer_value(json_object_get(c->state, "exit_code")), h);
	} else if (!strcmp(st, "dead")) {
		snprintf(buf, n, "Dead");
	} else {
		snprintf(buf, n, "Created");
	}
}

void
ctr_ports_text(const struct hypr_ctr *c, char *buf, size_t n)
{
	json_t *p;
	size_t i, used = 0;

	buf[0] = 0;
	json_array_foreach(json_object_get(c->config, "ports"), i, p) {
		if (json_is_true(json_object_get(p, "internal")))
			continue;
		used += (size_t)snprintf(buf + used, used < n ? n - used : 0, "%s%s:%lld->%lld/%s",
		    used ? ", " : "", jstr(p, "host_ip"),
		    (long long)json_integer_value(json_object_get(p, "host_port")),
		    (long long)json_integer_value(json_object_get(p, "guest_port")), jstr(p, "proto"));
		if (used >= n)
			break;
	}
}

/* docker ps's COMMAND: the command cut to 20 characters (19 and an
 * ellipsis), then quoted as Go's strconv.Quote does. */
void
ctr_command_text(const struct hypr_ctr *c, int trunc, char *buf, size_t n)
{
	char cmd[4096] = "";
	size_t used = 0, i, o = 0, chars = 0;
	json_t *a;

	json_array_foreach(json_object_get(c->config, "argv"), i, a)
		used += (size_t)snprintf(cmd + used, used < sizeof cmd ? sizeof cmd - used : 0, "%s%s",
		    i ? " " : "", json_string_value(a));
	for (const char *p = cmd; *p; p++)
		chars += ((unsigned char)*p & 0xc0) != 0x80;
	if (trunc && chars > 20) {
		size_t k = 0, seen = 0;
		while (cmd[k] && (seen < 19 || ((unsigned char)cmd[k] & 0xc0) == 0x80)) {
			seen += ((unsigned char)cmd[k] & 0xc0) != 0x80;
			k++;
		}
		snprintf(cmd + k, sizeof cmd - k, "\xe2\x80\xa6");
	}
	buf[o++] = '"';
	for (const char *p = cmd; *p && o + 5 < n; p++) {
		if (*p == '"' || *p == '\\') {
			buf[o++] = '\\';
			buf[o++] = *p;
		} else if ((unsigned char)*p < 0x20) {
			o += (size_t)snprintf(buf + o, n - o, "\\x%02x", (unsigned char)*p);
		} else {
			buf[o++] = *p;
		}
	}
	buf[o++] = '"';
	buf[o] = 0;
}

/* ---- ps ---- */

struct row {
	char f[7][512];
};

static int
matches(const struct hypr_ctr *c, json_t *filters)
{
	size_t i;
	json_t *v;

	json_array_foreach(filters, i, v) {
		const char *f = json_string_value(v), *eq = strchr(f, '=');
		const char *val = eq + 1;
		if (!strncmp(f, "label=", 6)) {
			const char *k = f + 6, *e2 = strchr(k, '=');
			json_t *l = json_object_get(c->config, "labels");
			const char *have;
			char key[256];
			snprintf(key, sizeof key, "%.*s", e2 ? (int)(e2 - k) : (int)strlen(k), k);
			have = jstr(l, key);
			if (!have || (e2 && strcmp(have, e2 + 1)))
				return 0;
		} else if (!strncmp(f, "name=", 5)) {
			if (!strstr(jstr(c->config, "name"), val))
				return 0;
		} else if (!strncmp(f, "status=", 7)) {
			if (strcmp(ctr_state(c), val))
				return 0;
		} else if (!strncmp(f, "id=", 3)) {
			if (strncmp(c->id, val, strlen(val)))
				return 0;
		}
	}
	return 1;
}

/* The fields of a ps row (docker's names); with header, the column titles
 * (a table's first line is the template run over them). .Label is the
 * labels as a map, for {{.Label "k"}}; .Labels is docker's "k=v,k=v". */
static json_t *
ps_row_json(const struct hypr_ctr *c, int trunc, int header, json_t **label_map)
{
	char id[65], st[128], ports[1024], cmd[512], h[64], at[64];
	json_t *labels = json_object_get(c->config, "labels"), *v, *j;
	struct hypr_strbuf lt = { 0 };
	const char *k;
	int64_t created = json_integer_value(json_object_get(c->config, "created"));
	time_t secs = (time_t)(created / 1000000000);
	struct tm tm;

	if (header) {
		j = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:{}}",
		    "ID", "CONTAINER ID", "Image", "IMAGE", "Command", "COMMAND",
		    "CreatedAt", "CREATED AT", "RunningFor", "CREATED", "Ports", "PORTS",
		    "State", "STATE", "Status", "STATUS", "Names", "NAMES", "Labels", "LABELS",
		    "Label");
		*label_map = json_object_get(j, "Label");
		return j;
	}
	if (trunc)
		hypr_ctr_short(c->id, id);
	else
		snprintf(id, sizeof id, "%s", c->id);
	ctr_status(c, st, sizeof st);
	ctr_ports_text(c, ports, sizeof ports);
	ctr_command_text(c, trunc, cmd, sizeof cmd);
	ctr_human(hypr_ctr_now_ns() - created, h, sizeof h);
	gmtime_r(&secs, &tm);
	strftime(at, sizeof at, "%Y-%m-%d %H:%M:%S +0000 UTC", &tm);
	json_object_foreach(labels, k, v) {
		if (lt.n)
			hypr_strbuf_addc(&lt, ',');
		hypr_strbuf_add(&lt, k);
		hypr_strbuf_addc(&lt, '=');
		hypr_strbuf_add(&lt, json_string_value(v) ? json_string_value(v) : "");
	}
	j = json_pack("{s:s, s:s, s:s, s:s, s:s+, s:s, s:s, s:s, s:s, s:s, s:o}",
	    "ID", id, "Image", jstr(c->config, "image") ? jstr(c->config, "image") : "",
	    "Command", cmd, "CreatedAt", at, "RunningFor", h, " ago", "Ports", ports,
	    "State", ctr_state(c), "Status", st,
	    "Names", jstr(c->config, "name") ? jstr(c->config, "name") : "",
	    "Labels", hypr_strbuf_str(&lt),
	    "Label", json_is_object(labels) ? json_deep_copy(labels) : json_object());
	free(lt.s);
	*label_map = json_object_get(j, "Label");
	return j;
}

/* The template over one row (or the titles); dies naming what failed. */
static char *
ps_render(const struct hypr_tmpl *t, const struct hypr_ctr *c, int trunc, int header)
{
	struct hypr_err e = { 0 };
	struct hypr_strbuf b = { 0 };
	json_t *map, *j = ps_row_json(c, trunc, header, &map);
	struct hypr_tmpl_data d = { .dot = j, .maps = &map, .nmaps = 1 };
	int rc;

	if (j == NULL)
		hypr_die(HYPR_EXIT_SYSTEM, "ps: out of memory");
	rc = hypr_tmpl_exec(t, &d, &b, &e);
	json_decref(j);
	if (rc < 0 || b.oom) {
		free(b.s);
		if (rc == 0)
			hypr_err_set(&e, HYPR_EXIT_SYSTEM, "out of memory");
		hypr_die(e.code, "ps: --format: %s", e.msg);
	}
	return hypr_strbuf_take(&b);
}

int
cmd_ps(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "all", no_argument, NULL, 'a' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "no-trunc", no_argument, NULL, 'T' },
		{ "filter", required_argument, NULL, 'f' },
		{ "format", required_argument, NULL, 'F' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct hypr_root root;
	struct hypr_err e = { 0 };
	struct hypr_ctr *v;
	size_t n, nr = 0;
	int ch, all = 0, quiet = 0, trunc = 1;
	const char *fmt = NULL;
	struct hypr_tmpl *tmpl = NULL;
	struct hypr_table tab = { 0 };
	int table = 0;
	json_t *filters = json_array();
	struct row *rows;
	size_t w[7] = { 0 };
	static const char *const head[7] = { "CONTAINER ID", "IMAGE", "COMMAND", "CREATED",
		"STATUS", "PORTS", "NAMES" };

	optind = 1;
	while ((ch = getopt_long(argc, argv, "aqf:h", lo, NULL)) != -1) {
		switch (ch) {
		case 'a': all = 1; break;
		case 'q': quiet = 1; break;
		case 'T': trunc = 0; break;
		case 'f':
			if (!strchr(optarg, '='))
				hypr_die(HYPR_EXIT_USAGE, "ps: --filter %s: want KEY=VALUE (label, name, status, id)",
				    optarg);
			json_array_append_new(filters, json_string(optarg));
			break;
		case 'F': fmt = optarg; break;
		case 'h':
			printf("usage: hypr ps [-a] [-q] [--no-trunc] [--filter K=V] [--format TEMPLATE]\n");
			exit(0);
		default:
			hypr_die(HYPR_EXIT_USAGE, "usage: hypr ps [-a] [-q] [--no-trunc] [--filter K=V] [--format T]");
		}
	}
	if (optind != argc)
		hypr_die(HYPR_EXIT_USAGE, "ps: no arguments expected");
	if (fmt && !strcmp(fmt, "table"))
		fmt = NULL;
	if (fmt && !strncmp(fmt, "table ", 6)) {
		fmt += 6;
		table = 1;
	} else if (fmt && !strcmp(fmt, "json")) {
		fmt = "{{json .}}";
	}
	if (fmt && !quiet) {
		struct hypr_ctr none = { .id = "" };
		char *line;

		if (hypr_tmpl_parse(fmt, &tmpl, &e) < 0)
			hypr_die(e.code, "ps: --format: %s", e.msg);
		/* the titles have every field: an unknown one fails with no rows too */
		line = ps_render(tmpl, &none, trunc, 1);
		if (table)
			hypr_table_add(&tab, line);
		free(line);
	}
	open_root(&root);
	if (hypr_ctr_list(&root, &v, &n, &e) < 0)
		hypr_die_err(&e);
	if (!(rows = calloc(n + 1, sizeof *rows)))
		hypr_die(HYPR_EXIT_SYSTEM, "out of memory");
	for (int k = 0; k < 7; k++) {
		snprintf(rows[0].f[k], sizeof rows[0].f[k], "%s", head[k]);
		w[k] = strlen(head[k]);
	}
	nr = 1;
	for (size_t i = 0; i < n; i++) {
		struct hypr_ctr *c = &v[i];
		char h[64];
		if ((!all && strcmp(ctr_state(c), "running") && strcmp(ctr_state(c), "restarting")) ||
		    !matches(c, filters))
			continue;
		if (quiet) {
			char id[13];
			hypr_ctr_short(c->id, id);
			printf("%s\n", trunc ? id : c->id);
			continue;
		}
		if (tmpl) {
			char *line = ps_render(tmpl, c, trunc, 0);

			if (table)
				hypr_table_add(&tab, line);
			else
				printf("%s\n", line);
			free(line);
			continue;
		}
		if (trunc)
			hypr_ctr_short(c->id, rows[nr].f[0]);
		else
			snprintf(rows[nr].f[0], sizeof rows[nr].f[0], "%s", c->id);
		snprintf(rows[nr].f[1], sizeof rows[nr].f[1], "%s", jstr(c->config, "image"));
		ctr_command_text(c, trunc, rows[nr].f[2], sizeof rows[nr].f[2]);
		ctr_human(hypr_ctr_now_ns() - json_integer_value(json_object_get(c->config, "created")),
		    h, sizeof h);
		snprintf(rows[nr].f[3], sizeof rows[nr].f[3], "%s ago", h);
		ctr_status(c, rows[nr].f[4], sizeof rows[nr].f[4]);
		ctr_ports_text(c, rows[nr].f[5], sizeof rows[nr].f[5]);
		snprintf(rows[nr].f[6], sizeof rows[nr].f[6], "%s", jstr(c->config, "name"));
		for (int k = 0; k < 7; k++) {
			/* columns count characters, not bytes (the ellipsis) */
			size_t len = 0;
			for (const char *p = rows[nr].f[k]; *p; p++)
				len += ((unsigned char)*p & 0xc0) != 0x80;
			if (len > w[k])
				w[k] = len;
		}
		nr++;
	}
	if (table)
		hypr_table_print(&tab, stdout);
	hypr_tmpl_free(tmpl);
	if (!quiet && !fmt)
		for (size_t r = 0; r < nr; r++) {
			for (int k = 0; k < 7; k++) {
				size_t len = 0;
				for (const char *p = rows[r].f[k]; *p; p++)
					len += ((unsigned char)*p & 0xc0) != 0x80;
				fputs(rows[r].f[k], stdout);
				if (k < 6)
					printf("%*s", (int)(w[k] - len + 3), "");
			}
			putchar('\n');
		}
	free(rows);
	json_decref(filters);
	hypr_ctr_list_free(v, n);
	return hypr_close_stdout();
}

/* ---- stop, kill, rm ---- */

/* Wait until the supervisor has gone (its socket closes). */
static int
wait_gone(struct hypr_ctr *c, int fd, double secs, struct hypr_err *e)
{
	double deadline = hypr_now() + secs;
	char buf[4096];

	for (;;) {
		struct pollfd pf = { .fd = fd, .events = POLLIN };
		int ms = (int)((deadline - hypr_now()) * 1000);
		ssize_t n;
		if (ms <= 0)
			return hypr_err_set(e, HYPR_EXIT_SYSTEM,
			    "container %.12s: still running after %gs", c->id, secs);
		if (poll(&pf, 1, ms) <= 0)
			continue;
		n = read(fd, buf, sizeof buf);
		if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN))
			return 0;
	}
}

int
ctr_stop(struct hypr_ctr *c, int timeout, struct hypr_err *e)
{
	unsigned char b[4];
	int fd, rc;
	long t = timeout >= 0 ? timeout :
	    (long)json_integer_value(json_object_get(c->config, "stop_timeout"));

	hypr_ctr_reload(c, e);
	if (!c->alive)
		return 0;
	if (hypr_ctr_connect(c, &fd, e) < 0) {
		hypr_ctr_reload(c, e);
		return c->alive ? -1 : 0;
	}
	hypr_proto_put32(b, timeout >= 0 ? (uint32_t)timeout : ~0u);
	if (hypr_ctr_send(fd, HYPR_CTR_STOP, 0, b, 4) < 0) {
		close(fd);
		return 0;	/* it went meanwhile */
	}
	/* its timeout, then SIGKILL and the guest's shutdown, and a boot in
	 * progress when the stop came */
	rc = wait_gone(c, fd, (double)t + 60, e);
	close(fd);
	return rc;
}

int
ctr_each(char **argv, int first, int argc, ctr_act *act, void *arg)
{
	struct hypr_root root;
	int rc = 0;

	open_root(&root);
	for (int i = first; i < argc; i++) {
		struct hypr_ctr c;
		struct hypr_err e = { 0 };
		int r;

		if (hypr_ctr_find(&root, argv[i], &c, &e) < 0) {
			hypr_say_err(&e);
			rc = e.code ? e.code : HYPR_EXIT_SYSTEM;
			continue;
		}
		r = act(&root, &c, argv[i], arg, &e);
		if (r == 0) {
			printf("%s\n", argv[i]);
			fflush(stdout);
		} else if (r == CTR_SAID) {
			rc = HYPR_EXIT_INPUT;
		} else {
			hypr_say_err(&e);
			rc = e.code ? e.code : HYPR_EXIT_SYSTEM;
		}
		hypr_ctr_free(&c);
	}
	hypr_close_stdout();
	return rc;
}

static int
act_stop(const struct hypr_root *r, struct hypr_ctr *c, const char *name, void *timeout,
    struct hypr_err *e)
{
	(void)r;
	(void)name;
	return ctr_stop(c, *(int *)timeout, e);
}

static int
act_kill(const struct hypr_root *r, struct hypr_ctr *c, const char *name, void *sigp,
    struct hypr_err *e)
{
	struct hypr_ctr_reader rd = { 0 };
	int sig = *(int *)sigp, fd = -1, type = 0, ok = 0;
	uint32_t id, n;
	const unsigned char *p;
	unsigned char b[4];

	(void)r;
	if (!c->alive || hypr_ctr_connect(c, &fd, e) < 0) {
		fprintf(stderr, "hypr: cannot kill container: %s: container %.12s is not running\n",
		    name, c->id);
		return CTR_SAID;
	}
	hypr_proto_put32(b, (uint32_t)sig);
	if (hypr_ctr_send(fd, HYPR_CTR_KILL, 0, b, 4) == 0) {
		double deadline = hypr_now() + 10;
		fcntl(fd, F_SETFL, O_NONBLOCK);
		while (!ok && hypr_now() < deadline) {
			struct pollfd pf = { .fd = fd, .events = POLLIN };
			if (poll(&pf, 1, 100) <= 0)
				continue;
			if (hypr_ctr_read(&rd, fd) < 0)
				break;
			if (hypr_ctr_frame(&rd, &type, &id, &p, &n) == 1)
				ok = 1;
		}
	}
	/* SIGKILL: wait until it is down, so ps -a shows it exited */
	if (ok && type == HYPR_CTR_OK && sig == SIGKILL)
		wait_gone(c, fd, 30, e);
	hypr_ctr_reader_free(&rd);
	close(fd);
	if (ok && type == HYPR_CTR_OK)
		return 0;
	fprintf(stderr, "hypr: cannot kill container: %s: %s\n", name,
	    ok && type == HYPR_CTR_ERROR ? "not running" : "no answer");
	return CTR_SAID;
}

struct rm_opts {
	int force, vols;
};

static int
act_rm(const struct hypr_root *r, struct hypr_ctr *c, const char *name, void *arg,
    struct hypr_err *e)
{
	const struct rm_opts *o = arg;

	(void)name;
	if (c->alive && !o->force) {
		fprintf(stderr, "hypr: cannot remove container \"/%s\": container is running: "
		    "stop the container before removing or force remove\n",
		    jstr(c->config, "name"));
		return CTR_SAID;
	}
	if ((c->alive && ctr_stop(c, 0, e) < 0) ||
	    (access(c->dir, F_OK) == 0 && hypr_ctr_remove(c, e) < 0))
		return -1;
	/* a failure here: the container went, a volume stayed */
	return o->vols ? hypr_vol_drop_anonymous(r, c->config, e) : 0;
}

int
cmd_stop(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "time", required_argument, NULL, 't' },
		{ "timeout", required_argument, NULL, 't' },
		{ "signal", required_argument, NULL, 's' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int ch, timeout = -1;

	optind = 1;
	while ((ch = getopt_long(argc, argv, "t:s:h", lo, NULL)) != -1) {
		switch (ch) {
		case 't': {
			char *end;
			long t = strtol(optarg, &end, 10);
			if (*end || end == optarg || t < 0 || t > 1000000)
				hypr_die(HYPR_EXIT_USAGE, "stop: -t %s: seconds", optarg);
			timeout = (int)t;
			break;
		}
		case 's':
			hypr_die(HYPR_EXIT_USAGE, "stop: -s: use the container's --stop-signal, or hypr kill -s");
		case 'h': printf("usage: hypr stop [-t SECONDS] CONTAINER...\n"); exit(0);
		default: hypr_die(HYPR_EXIT_USAGE, "usage: hypr stop [-t SECONDS] CONTAINER...");
		}
	}
	if (optind == argc)
		hypr_die(HYPR_EXIT_USAGE, "stop: at least one CONTAINER");
	return ctr_each(argv, optind, argc, act_stop, &timeout);
}

int
cmd_kill(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "signal", required_argument, NULL, 's' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int ch, sig = SIGKILL;

	optind = 1;
	while ((ch = getopt_long(argc, argv, "s:h", lo, NULL)) != -1) {
		switch (ch) {
		case 's':
			if ((sig = ctr_signal(optarg)) <= 0)
				hypr_die(HYPR_EXIT_USAGE, "kill: -s %s: unknown signal", optarg);
			break;
		case 'h': printf("usage: hypr kill [-s SIGNAL] CONTAINER...\n"); exit(0);
		default: hypr_die(HYPR_EXIT_USAGE, "usage: hypr kill [-s SIGNAL] CONTAINER...");
		}
	}
	if (optind == argc)
		hypr_die(HYPR_EXIT_USAGE, "kill: at least one CONTAINER");
	return ctr_each(argv, optind, argc, act_kill, &sig);
}

int
cmd_rm(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "force", no_argument, NULL, 'f' },
		{ "volumes", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct rm_opts o = { 0 };
	int ch;

	optind = 1;
	while ((ch = getopt_long(argc, argv, "fvh", lo, NULL)) != -1) {
		switch (ch) {
		case 'f': o.force = 1; break;
		case 'v': o.vols = 1; break;
		case 'h': printf("usage: hypr rm [-fv] CONTAINER...\n"); exit(0);
		default: hypr_die(HYPR_EXIT_USAGE, "usage: hypr rm [-fv] CONTAINER...");
		}
	}
	if (optind == argc)
		hypr_die(HYPR_EXIT_USAGE, "rm: at least one CONTAINER");
	return ctr_each(argv, optind, argc, act_rm, &o);
}

/* ---- exec ---- */

int
ctr_client_loop(struct hypr_ctr *c, int fd, struct hypr_ctr_reader *rd0, int tty, int stdin_on,
    const unsigned char *keys, size_t nkeys)
{
	struct hypr_ctr_reader own = { 0 }, *rd = rd0 ? rd0 : &own;
	int status = -1, raw = 0, detached = 0, first = rd0 != NULL;
	struct termios saved;
	size_t inflight = 0, match = 0;
	sigset_t mask;
	int sfd = -1;

	signal(SIGPIPE, SIG_IGN);
	fcntl(fd, F_SETFL, O_NONBLOCK);
	if (tty && stdin_on && isatty(0) && tcgetattr(0, &saved) == 0) {
		struct termios t = saved;
		cfmakeraw(&t);
		raw = tcsetattr(0, TCSADRAIN, &t) == 0;
	}
	sigemptyset(&mask);
	sigaddset(&mask, SIGWINCH);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	while (status < 0) {
		struct pollfd pf[3] = {
			{ .fd = fd, .events = POLLIN },
			{ .fd = sfd, .events = POLLIN },
			{ .fd = stdin_on && inflight < (256u << 10) ? 0 : -1, .events = POLLIN },
		};
		const unsigned char *p;
		uint32_t id, n;
		int type, r;

		/* first, what the caller's reader already holds */
		if (!first && poll(pf, 3, -1) < 0 && errno != EINTR)
			break;
		first = 0;
		if (pf[1].revents & POLLIN) {
			struct signalfd_siginfo si;
			struct winsize ws;
			while (read(sfd, &si, sizeof si) > 0)
				;
			if (tty && (ioctl(1, TIOCGWINSZ, &ws) == 0 || ioctl(0, TIOCGWINSZ, &ws) == 0)) {
				unsigned char b[8];
				hypr_proto_put32(b, ws.ws_row);
				hypr_proto_put32(b + 4, ws.ws_col);
				hypr_ctr_send(fd, HYPR_CTR_WINSIZE, 0, b, 8);
			}
		}
		if (pf[2].revents) {
			char buf[65536];
			ssize_t k = read(0, buf, sizeof buf);
			if (k > 0 && nkeys) {
				/* the detach keys: held while they match, else sent */
				char out[65536 + 16];
				size_t o = 0;
				for (ssize_t j = 0; j < k && !detached; j++) {
					unsigned char b = (unsigned char)buf[j];
					if (b == keys[match]) {
						if (++match == nkeys)
							detached = 1;
						continue;
					}
					memcpy(out + o, keys, match);
					o += match;
					match = 0;
					if (b == keys[0]) {
						match = 1;
						continue;
					}
					out[o++] = (char)b;
				}
				if (o) {
					inflight += o;
					hypr_ctr_send(fd, HYPR_CTR_STDIN, 0, out, o);
				}
				if (detached)
					break;
			} else if (k > 0) {
				inflight += (size_t)k;
				hypr_ctr_send(fd, HYPR_CTR_STDIN, 0, buf, (size_t)k);
			} else if (k == 0 || (errno != EINTR && errno != EAGAIN)) {
				stdin_on = 0;
				hypr_ctr_send(fd, HYPR_CTR_STDIN, 0, NULL, 0);
			}
		}
		r = pf[0].revents ? hypr_ctr_read(rd, fd) : 0;
		while (status < 0 && hypr_ctr_frame(rd, &type, &id, &p, &n) == 1) {
			switch (type) {
			case HYPR_CTR_STDOUT: hypr_write_all(1, p, n); break;
			case HYPR_CTR_STDERR: hypr_write_all(2, p, n); break;
			case HYPR_CTR_ACK:
				if (n >= 4) {
					uint32_t k = hypr_proto_get32(p);
					inflight = k > inflight ? 0 : inflight - k;
				}
				break;
			case HYPR_CTR_EXIT:
				status = n >= 4 ? (int)hypr_proto_get32(p) : 1;
				break;
			case HYPR_CTR_OK:
				status = 0;	/* -d: it runs */
				break;
			case HYPR_CTR_ERROR:
				if (raw)
					tcsetattr(0, TCSADRAIN, &saved);
				hypr_die(HYPR_EXIT_INPUT, "%.*s", (int)n, (const char *)p);
			}
		}
		if (r < 0 && status < 0) {
			if (raw)
				tcsetattr(0, TCSADRAIN, &saved);
			hypr_die(HYPR_EXIT_SYSTEM, "container %.12s: the connection to its supervisor was lost",
			    c->id);
		}
	}
	if (raw)
		tcsetattr(0, TCSADRAIN, &saved);
	hypr_ctr_reader_free(rd);
	if (sfd >= 0)
		close(sfd);
	if (detached)
		return 0;
	return status < 0 ? HYPR_EXIT_SYSTEM : status;
}

int
cmd_exec(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "detach", no_argument, NULL, 'd' },
		{ "interactive", no_argument, NULL, 'i' },
		{ "tty", no_argument, NULL, 't' },
		{ "env", required_argument, NULL, 'e' },
		{ "user", required_argument, NULL, 'u' },
		{ "workdir", required_argument, NULL, 'w' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct hypr_root root;
	struct hypr_err e = { 0 };
	struct hypr_ctr c;
	json_t *req = json_object(), *av = json_array(), *env = json_array();
	int ch, fd, tty = 0, in = 0, detach = 0, status;
	char *s;

	optind = 1;
	while ((ch = getopt_long(argc, argv, "+dite:u:w:h", lo, NULL)) != -1) {
		switch (ch) {
		case 'd': detach = 1; break;
		case 'i': in = 1; break;
		case 't': tty = 1; break;
		case 'e':
			if (!strchr(optarg, '=')) {
				const char *hv = getenv(optarg);
				char *kv;
				if (!hv)
					break;
				if (asprintf(&kv, "%s=%s", optarg, hv) < 0)
					hypr_die(HYPR_EXIT_SYSTEM, "out of memory");
				json_array_append_new(env, json_string(kv));
				free(kv);
			} else {
				json_array_append_new(env, json_string(optarg));
			}
			break;
		case 'u': json_object_set_new(req, "user", json_string(optarg)); break;
		case 'w': json_object_set_new(req, "workdir", json_string(optarg)); break;
		case 'h': printf("usage: hypr exec [-d] [-i] [-t] [-e K=V] [-u USER] [-w DIR] CONTAINER COMMAND [ARG...]\n"); exit(0);
		default: hypr_die(HYPR_EXIT_USAGE, "usage: hypr exec [-d] [-i] [-t] [-e K=V] [-u USER] [-w DIR] CONTAINER COMMAND [ARG...]");
		}
	}
	if (optind + 2 > argc)
		hypr_die(HYPR_EXIT_USAGE, "exec: a CONTAINER and a COMMAND are needed");
	for (int i = optind + 1; i < argc; i++)
		json_array_append_new(av, json_string(argv[i]));
	if (tty) {
		struct winsize ws;
		json_array_append_new(env, json_string("TERM=xterm"));
		if (ioctl(1, TIOCGWINSZ, &ws) == 0 || ioctl(0, TIOCGWINSZ, &ws) == 0) {
			json_object_set_new(req, "rows", json_integer(ws.ws_row));
			json_object_set_new(req, "cols", json_integer(ws.ws_col));
		}
	}
	json_object_set_new(req, "argv", av);
	json_object_set_new(req, "env", env);
	json_object_set_new(req, "tty", json_boolean(tty));
	json_object_set_new(req, "stdin", json_boolean(in));
	json_object_set_new(req, "detach", json_boolean(detach));
	open_root(&root);
	if (hypr_ctr_find(&root, argv[optind], &c, &e) < 0)
		hypr_die_err(&e);
	if (!c.alive || hypr_ctr_connect(&c, &fd, &e) < 0)
		hypr_die(HYPR_EXIT_INPUT, "container %.12s is not running", c.id);
	s = json_dumps(req, JSON_COMPACT);
	signal(SIGPIPE, SIG_IGN);
	if (!s || hypr_ctr_send(fd, HYPR_CTR_EXEC, 0, s, strlen(s)) < 0)
		hypr_die(HYPR_EXIT_SYSTEM, "container %.12s: its supervisor is gone", c.id);
	free(s);
	json_decref(req);
	status = ctr_client_loop(&c, fd, NULL, tty, in && !detach, NULL, 0);
	close(fd);
	hypr_ctr_free(&c);
	return status;
}

/* ---- inspect, port, prune ---- */

static int
inspect(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "format", required_argument, NULL, 'f' },
		{ "type", required_argument, NULL, 'T' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct hypr_root root;
	struct hypr_tmpl *tmpl = NULL;
	struct hypr_err te = { 0 };
	const char *fmt = NULL;
	json_t *out = json_array();
	int ch, rc = 0;
	char *s;

	optind = 1;
	while ((ch = getopt_long(argc, argv, "f:h", lo, NULL)) != -1) {
		switch (ch) {
		case 'f': fmt = optarg; break;
		case 'T': break;	/* the driver sent a container here */
		case 'h':
			printf("usage: hypr container inspect [-f FORMAT] CONTAINER...\n");
			exit(0);
		default:
			hypr_die(HYPR_EXIT_USAGE, "usage: hypr container inspect [-f FORMAT] CONTAINER...");
		}
	}
	if (optind == argc)
		hypr_die(HYPR_EXIT_USAGE, "usage: hypr container inspect [-f FORMAT] CONTAINER...");
	if (fmt && !strcmp(fmt, "json"))
		fmt = "{{json .}}";
	if (fmt && hypr_tmpl_parse(fmt, &tmpl, &te) < 0)
		hypr_die(te.code, "inspect: --format: %s", te.msg);
	open_root(&root);
	for (int i = optind; i < argc; i++) {
		struct hypr_ctr c;
		struct hypr_err e = { 0 };
		struct hypr_strbuf b = { 0 };
		char st[128];
		json_t *o, *map;
		struct hypr_tmpl_data d = { .maps = &map, .nmaps = 1 };

		if (hypr_ctr_find(&root, argv[i], &c, &e) < 0) {
			hypr_say_err(&e);
			rc = e.code;
			continue;
		}
		ctr_status(&c, st, sizeof st);
		json_object_set_new(c.state, "running", json_boolean(c.alive));
		json_object_set_new(c.state, "state", json_string(ctr_state(&c)));
		json_object_set_new(c.state, "text", json_string(st));
		o = json_pack("{s:s,s:s,s:O,s:O}", "id", c.id, "name",
		    jstr(c.config, "name"), "config", c.config, "state", c.state);
		hypr_ctr_free(&c);
		if (!tmpl) {
			json_array_append_new(out, o);
			continue;
		}
		map = json_object_get(json_object_get(o, "config"), "labels");
		d.dot = o;
		if (hypr_tmpl_exec(tmpl, &d, &b, &e) < 0) {
			free(b.s);
			json_decref(o);
			json_decref(out);
			hypr_tmpl_free(tmpl);
			hypr_die(e.code, "inspect: --format: %s", e.msg);
		}
		printf("%s\n", hypr_strbuf_str(&b));
		free(b.s);
		json_decref(o);
	}
	if (!tmpl) {
		s = json_dumps(out, JSON_INDENT(4));
		puts(s ? s : "[]");
		free(s);
	}
	json_decref(out);
	hypr_tmpl_free(tmpl);
	hypr_close_stdout();
	return rc;
}

static int
port(int argc, char **argv)
{
	struct hypr_root root;
	struct hypr_err e = { 0 };
	struct hypr_ctr c;
	json_t *p;
	size_t i;

	if (argc < 2 || argc > 3)
		hypr_die(HYPR_EXIT_USAGE, "usage: hypr port CONTAINER [PORT[/PROTO]]");
	open_root(&root);
	if (hypr_ctr_find(&root, argv[1], &c, &e) < 0)
		hypr_die_err(&e);
	json_array_foreach(json_object_get(c.config, "ports"), i, p) {
		char key[32];
		if (json_is_true(json_object_get(p, "internal")))
			continue;
		snprintf(key, sizeof key, "%lld/%s",
		    (long long)json_integer_value(json_object_get(p, "guest_port")), jstr(p, "proto"));
		if (argc == 3 && strcmp(argv[2], key) &&
		    !(strchr(argv[2], '/') == NULL && !strncmp(key, argv[2], strlen(argv[2])) &&
		    key[strlen(argv[2])] == '/'))
			continue;
		if (argc == 3)
			printf("%s:%lld\n", jstr(p, "host_ip"),
			    (long long)json_integer_value(json_object_get(p, "host_port")));
		else
			printf("%s -> %s:%lld\n", key, jstr(p, "host_ip"),
			    (long long)json_integer_value(json_object_get(p, "host_port")));
	}
	hypr_ctr_free(&c);
	return hypr_close_stdout();
}

static int
prune(int argc, char **argv)
{
	struct hypr_root root;
	struct hypr_err e = { 0 };
	struct hypr_ctr *v;
	size_t n, any = 0;
	int force = argc > 1 && (!strcmp(argv[1], "-f") || !strcmp(argv[1], "--force"));
	uint64_t freed = 0;

	if (!force) {
		char line[16];
		fprintf(stderr, "WARNING! This will remove all stopped containers.\n"
		    "Are you sure you want to continue? [y/N] ");
		if (!fgets(line, sizeof line, stdin) || (line[0] != 'y' && line[0] != 'Y'))
			return 0;
	}
	open_root(&root);
	if (hypr_ctr_list(&root, &v, &n, &e) < 0)
		hypr_die_err(&e);
	for (size_t i = 0; i < n; i++) {
		if (v[i].alive)
			continue;
		freed += hypr_disk_usage(v[i].dir);
		if (hypr_ctr_remove(&v[i], &e) < 0) {
			hypr_say_err(&e);
			continue;
		}
		if (!any++)
			printf("Deleted Containers:\n");
		printf("%s\n", v[i].id);
	}
	if (any)
		printf("\n");
	printf("Total reclaimed space: %.4gkB\n", (double)freed / 1000);
	hypr_ctr_list_free(v, n);
	return hypr_close_stdout();
}

int
cmd_container(int argc, char **argv)
{
	const char *sub = argc > 1 ? argv[1] : "";

	if (!strcmp(sub, "ls") || !strcmp(sub, "list") || !strcmp(sub, "ps"))
		return cmd_ps(argc - 1, argv + 1);
	if (!strcmp(sub, "run"))
		return cmd_run(argc - 1, argv + 1);
	if (!strcmp(sub, "create"))
		return cmd_create(argc - 1, argv + 1);
	if (!strcmp(sub, "start"))
		return cmd_start(argc - 1, argv + 1);
	if (!strcmp(sub, "restart"))
		return cmd_restart(argc - 1, argv + 1);
	if (!strcmp(sub, "attach"))
		return cmd_attach(argc - 1, argv + 1);
	if (!strcmp(sub, "logs"))
		return cmd_logs(argc - 1, argv + 1);
	if (!strcmp(sub, "stop"))
		return cmd_stop(argc - 1, argv + 1);
	if (!strcmp(sub, "kill"))
		return cmd_kill(argc - 1, argv + 1);
	if (!strcmp(sub, "rm") || !strcmp(sub, "remove"))
		return cmd_rm(argc - 1, argv + 1);
	if (!strcmp(sub, "exec"))
		return cmd_exec(argc - 1, argv + 1);
	if (!strcmp(sub, "inspect"))
		return inspect(argc - 1, argv + 1);
	if (!strcmp(sub, "port"))
		return port(argc - 1, argv + 1);
	if (!strcmp(sub, "prune"))
		return prune(argc - 1, argv + 1);
	hypr_die(HYPR_EXIT_USAGE, "container: unknown command '%s' (ls, run, create, start, restart, "
	    "attach, logs, stop, kill, rm, exec, inspect, port, prune)", sub);
}

/* ---- __proxy HOST PORT: QEMU's guestfwd command for a compose service:
 * the guest's connection on stdin/stdout, relayed to HOST:PORT ---- */

int
cmd_proxy(int argc, char **argv)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	int fd, up = 1, down = 1;
	char buf[65536];

	if (argc != 3 || inet_pton(AF_INET, argv[1], &sa.sin_addr) != 1)
		return HYPR_EXIT_USAGE;
	sa.sin_port = htons((uint16_t)atoi(argv[2]));
	signal(SIGPIPE, SIG_IGN);
	if ((fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0 ||
	    connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0)
		return HYPR_EXIT_SYSTEM;	/* the guest sees its connection closed */
	while (up || down) {
		struct pollfd pf[2] = {
			{ .fd = up ? 0 : -1, .events = POLLIN },
			{ .fd = down ? fd : -1, .events = POLLIN },
		};
		ssize_t n;
		if (poll(pf, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (pf[0].revents) {
			n = read(0, buf, sizeof buf);
			if (n <= 0 || hypr_write_all(fd, buf, (size_t)n) < 0) {
				up = 0;
				shutdown(fd, SHUT_WR);
			}
		}
		if (pf[1].revents) {
			n = read(fd, buf, sizeof buf);
			if (n <= 0 || hypr_write_all(1, buf, (size_t)n) < 0) {
				down = 0;
				shutdown(1, SHUT_WR);
			}
		}
	}
	return 0;
}
