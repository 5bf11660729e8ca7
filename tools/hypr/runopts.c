/* runopts.c - `hypr run`: docker run's options as a spec, and a spec made
 * into a container: the image resolved under the store's lock, its config
 * (entrypoint, cmd, env, user, workdir, healthcheck, stop signal) merged
 * with the options as Docker merges them, ports and shares checked. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ctr.h"
#include "fsutil.h"
#include "hypr.h"
#include "store.h"
#include "volume.h"
#include "tool.h"

/* "run", or "create" (the same options, not started) */
static const char *run_cmd = "run";

static void
run_usage(FILE *f, int code)
{
	fprintf(f, "usage: hypr %s [OPTIONS] IMAGE [COMMAND [ARG...]]\n", run_cmd);
	fputs("\n"
	    "Boot IMAGE in a microVM and run its ENTRYPOINT + CMD (or COMMAND).\n"
	    "\n"
	    "  -d, --detach               run in the background, print the container ID\n"
	    "      --rm                   remove the container when it exits\n"
	    "      --name NAME            name the container\n"
	    "  -e, --env K=V|K            set an environment variable (repeatable)\n"
	    "      --env-file FILE        read K=V lines (repeatable)\n"
	    "  -u, --user USER[:GROUP]    run as this user\n"
	    "  -w, --workdir DIR          working directory\n"
	    "      --entrypoint CMD       override the image's ENTRYPOINT (\"\" clears it)\n"
	    "  -i, --interactive          keep stdin open\n"
	    "  -t, --tty                  a terminal for the process\n"
	    "      --detach-keys KEYS     with -it: the keys that detach (default ctrl-p,ctrl-q)\n"
	    "  -p, --publish [IP:][HOST:]PORT[/udp]  forward a host port (IP 127.0.0.1)\n"
	    "  -P, --publish-all          forward every exposed port to a free host port\n"
	    "      --network none|default no network device (default without -p), or\n"
	    "                             QEMU user networking\n"
	    "  -v, --volume HOSTPATH:PATH[:ro]  share a host directory or file (9p);\n"
	    "                             NAME:PATH a named volume, PATH an anonymous one\n"
	    "      --mount type=bind,source=HOSTPATH,target=PATH[,readonly]\n"
	    "  -m, --memory SIZE          guest memory (default 2g)\n"
	    "      --cpus N               vCPUs\n"
	    "  -h, --hostname NAME        the guest's hostname\n"
	    "      --add-host NAME:IP     an /etc/hosts line\n"
	    "  -l, --label K=V            a label\n"
	    "      --restart no|on-failure[:N]|always|unless-stopped\n"
	    "      --stop-signal SIG      signal for hypr stop (default: the image's, SIGTERM)\n"
	    "      --stop-timeout SECS    seconds before SIGKILL (default 10)\n"
	    "      --health-cmd CMD, --health-interval D, --health-timeout D,\n"
	    "      --health-start-period D, --health-retries N, --no-healthcheck\n"
	    "      --init                 accepted: hypr-init is always the guest's PID 1\n"
	    "\n"
	    "The exit status is the command's; hypr's own failures 125. See hypr-run(1).\n"
	    "(hypr create: the container is made, not started: hypr start runs it.)\n", f);
	exit(code);
}

static void
spec_push(json_t *spec, const char *key, const char *v)
{
	json_t *a = json_object_get(spec, key);

	if (!json_is_array(a))
		json_object_set_new(spec, key, a = json_array());
	json_array_append_new(a, json_string(v));
}

/* Parse `hypr run` (or `create`) flags into a spec; *cmd_at gets the index
 * of IMAGE. */
static json_t *
parse_run(int argc, char **argv, int *cmd_at)
{
	enum { O_RM = 256, O_NAME, O_ENVFILE, O_ENTRY, O_NET, O_CPUS, O_INIT,
		O_HCMD, O_HINT, O_HTO, O_HSP, O_HRET, O_NOHC, O_RESTART, O_STOPSIG,
		O_STOPTO, O_ADDHOST, O_PLATFORM, O_PULL, O_MOUNT, O_DKEYS };
	static const struct option lo[] = {
		{ "detach", no_argument, NULL, 'd' },
		{ "rm", no_argument, NULL, O_RM },
		{ "name", required_argument, NULL, O_NAME },
		{ "env", required_argument, NULL, 'e' },
		{ "env-file", required_argument, NULL, O_ENVFILE },
		{ "user", required_argument, NULL, 'u' },
		{ "workdir", required_argument, NULL, 'w' },
		{ "entrypoint", required_argument, NULL, O_ENTRY },
		{ "interactive", no_argument, NULL, 'i' },
		{ "tty", no_argument, NULL, 't' },
		{ "publish", required_argument, NULL, 'p' },
		{ "publish-all", no_argument, NULL, 'P' },
		{ "network", required_argument, NULL, O_NET },
		{ "net", required_argument, NULL, O_NET },
		{ "volume", required_argument, NULL, 'v' },
		{ "mount", required_argument, NULL, O_MOUNT },
		{ "memory", required_argument, NULL, 'm' },
		{ "cpus", required_argument, NULL, O_CPUS },
		{ "hostname", required_argument, NULL, 'h' },
		{ "add-host", required_argument, NULL, O_ADDHOST },
		{ "label", required_argument, NULL, 'l' },
		{ "restart", required_argument, NULL, O_RESTART },
		{ "stop-signal", required_argument, NULL, O_STOPSIG },
		{ "stop-timeout", required_argument, NULL, O_STOPTO },
		{ "health-cmd", required_argument, NULL, O_HCMD },
		{ "health-interval", required_argument, NULL, O_HINT },
		{ "health-timeout", required_argument, NULL, O_HTO },
		{ "health-start-period", required_argument, NULL, O_HSP },
		{ "health-retries", required_argument, NULL, O_HRET },
		{ "no-healthcheck", no_argument, NULL, O_NOHC },
		{ "init", no_argument, NULL, O_INIT },
		{ "detach-keys", required_argument, NULL, O_DKEYS },
		{ "platform", required_argument, NULL, O_PLATFORM },
		{ "pull", required_argument, NULL, O_PULL },
		{ "help", no_argument, NULL, 'H' },
		{ NULL, 0, NULL, 0 },
	};
	json_t *spec = json_object(), *health = json_object(), *labels = json_object();
	int ch;

	optind = 1;
	opterr = 1;
	while ((ch = getopt_long(argc, argv, "+de:u:w:itp:Pv:m:h:l:", lo, NULL)) != -1) {
		switch (ch) {
		case 'd': json_object_set_new(spec, "detach", json_true()); break;
		case O_RM: json_object_set_new(spec, "rm", json_true()); break;
		case O_NAME: json_object_set_new(spec, "name", json_string(optarg)); break;
		case 'e': spec_push(spec, "env", optarg); break;
		case O_ENVFILE: spec_push(spec, "env_files", optarg); break;
		case 'u': json_object_set_new(spec, "user", json_string(optarg)); break;
		case 'w': json_object_set_new(spec, "workdir", json_string(optarg)); break;
		case O_ENTRY:
			json_object_set_new(spec, "entrypoint", *optarg ?
			    json_pack("[s]", optarg) : json_array());
			break;
		case 'i': json_object_set_new(spec, "interactive", json_true()); break;
		case 't': json_object_set_new(spec, "tty", json_true()); break;
		case 'p': spec_push(spec, "ports", optarg); break;
		case 'P': json_object_set_new(spec, "publish_all", json_true()); break;
		case O_NET: json_object_set_new(spec, "network", json_string(optarg)); break;
		case 'v': spec_push(spec, "volumes", optarg); break;
		case O_MOUNT: spec_push(spec, "mounts", optarg); break;
		case 'm': json_object_set_new(spec, "memory", json_string(optarg)); break;
		case O_CPUS: json_object_set_new(spec, "cpus", json_string(optarg)); break;
		case 'h': json_object_set_new(spec, "hostname", json_string(optarg)); break;
		case O_ADDHOST: spec_push(spec, "add_hosts", optarg); break;
		case 'l': {
			const char *eq = strchr(optarg, '=');
			json_object_setn_new(labels, optarg, eq ? (size_t)(eq - optarg) : strlen(optarg),
			    json_string(eq ? eq + 1 : ""));
			break;
		}
		case O_RESTART: json_object_set_new(spec, "restart", json_string(optarg)); break;
		case O_STOPSIG: json_object_set_new(spec, "stop_signal", json_string(optarg)); break;
		case O_STOPTO: json_object_set_new(spec, "stop_timeout", json_string(optarg)); break;
		case O_HCMD: json_object_set_new(health, "cmd", json_string(optarg)); break;
		case O_HINT: json_object_set_new(health, "interval", json_string(optarg)); break;
		case O_HTO: json_object_set_new(health, "timeout", json_string(optarg)); break;
		case O_HSP: json_object_set_new(health, "start_period", json_string(optarg)); break;
		case O_HRET: json_object_set_new(health, "retries", json_string(optarg)); break;
		case O_NOHC: json_object_set_new(health, "disable", json_true()); break;
		case O_INIT: break;
		case O_DKEYS: {
			unsigned char k[16];
			ctr_detach_keys(optarg, k, sizeof k);	/* dies when bad */
			json_object_set_new(spec, "detach_keys", json_string(optarg));
			break;
		}
		case O_PLATFORM:
			if (strcmp(optarg, "linux/amd64") && strcmp(optarg, "linux/x86_64"))
				hypr_die(HYPR_EXIT_USAGE, "run: --platform %s: hypr runs linux/amd64 images only",
				    optarg);
			break;
		case O_PULL:
			if (strcmp(optarg, "never") && strcmp(optarg, "missing"))
				hypr_die(HYPR_EXIT_USAGE, "run: --pull %s: hypr runs stored images "
				    "(hypr build, hypr pull + hypr build)", optarg);
			break;
		case 'H': run_usage(stdout, 0); break;
		default: run_usage(stderr, hypr_die_status ? hypr_die_status : HYPR_EXIT_USAGE);
		}
	}
	if (json_object_size(health))
		json_object_set(spec, "health", health);
	if (json_object_size(labels))
		json_object_set(spec, "labels", labels);
	json_decref(health);
	json_decref(labels);
	if (optind >= argc)
		hypr_die(HYPR_EXIT_USAGE, "run: an IMAGE is needed (see hypr run --help)");
	json_object_set_new(spec, "image", json_string(argv[optind]));
	if (optind + 1 < argc) {
		json_t *cmd = json_array();
		for (int i = optind + 1; i < argc; i++)
			json_array_append_new(cmd, json_string(argv[i]));
		json_object_set_new(spec, "command", cmd);
	}
	*cmd_at = optind;
	return spec;
}

/* ---- spec -> config ---- */

static const char *
jstr(json_t *o, const char *k)
{
	return json_string_value(json_object_get(o, k));
}

/* K=V into env (a later key replaces an earlier one); bare K takes the
 * host's value, or nothing when unset (Docker). */
static void
env_set(json_t *env, const char *kv)
{
	const char *eq = strchr(kv, '=');
	size_t k = eq ? (size_t)(eq - kv) : strlen(kv);
	char *line = NULL;
	size_t i;
	json_t *v;

	if (k == 0)
		hypr_die(HYPR_EXIT_USAGE, "run: -e '%s': no variable name", kv);
	if (!eq) {
		const char *hv = getenv(kv);
		if (!hv)
			return;
		if (asprintf(&line, "%s=%s", kv, hv) < 0)
			hypr_die(HYPR_EXIT_SYSTEM, "out of memory");
		kv = line;
	}
	json_array_foreach(env, i, v) {
		const char *s = json_string_value(v);
		if (s && !strncmp(s, kv, k) && s[k] == '=') {
			json_array_set_new(env, i, json_string(kv));
			free(line);
			return;
		}
	}
	json_array_append_new(env, json_string(kv));
	free(line);
}

/* docker's --env-file: K=V lines, # comments, blank lines; a bare K takes
 * the host's value; no quoting. */
static void
env_file(json_t *env, const char *path)
{
	char *buf, *line, *save = NULL;
	size_t len;
	struct hypr_err e = { 0 };

	if (hypr_read_file(path, 16u << 20, &buf, &len, &e) < 0)
		hypr_die(HYPR_EXIT_USAGE, "--env-file %s: %s", path, e.msg);
	for (line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *s = line;
		size_t n = strlen(s);
		if (n && s[n - 1] == '\r')
			s[--n] = 0;
		while (*s == ' ' || *s == '\t')
			s++;
		if (!*s || *s == '#')
			continue;
		env_set(env, s);
	}
	free(buf);
}

static int
port_free(int udp, const char *ip, unsigned port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	int fd, one = 1, ok;

	if (inet_pton(AF_INET, ip, &sa.sin_addr) != 1)
		return 1;	/* QEMU will say */
	if ((fd = socket(AF_INET, (udp ? SOCK_DGRAM : SOCK_STREAM) | SOCK_CLOEXEC, 0)) < 0)
		return 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);	/* as QEMU binds */
	ok = bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0;
	close(fd);
	return ok;
}

int
ctr_port_free(int udp, const char *ip, unsigned port)
{
	return port_free(udp, ip, port);
}

/* A free port on ip, as the kernel picks one. */
static unsigned
port_pick(int udp, const char *ip)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t sl = sizeof sa;
	int fd;
	unsigned p = 0;

	if (inet_pton(AF_INET, ip, &sa.sin_addr) != 1)
		hypr_die(HYPR_EXIT_USAGE, "-p: %s: not an IPv4 address (QEMU's forwards are IPv4)", ip);
	if ((fd = socket(AF_INET, (udp ? SOCK_DGRAM : SOCK_STREAM) | SOCK_CLOEXEC, 0)) < 0)
		hypr_die_errno("socket");
	if (bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0 &&
	    getsockname(fd, (struct sockaddr *)&sa, &sl) == 0)
		p = ntohs(sa.sin_port);
	close(fd);
	if (!p)
		hypr_die(HYPR_EXIT_SYSTEM, "-p: no free port on %s", ip);
	return p;
}

static unsigned
parse_port(const char *s, size_t n, const char *whole)
{
	char buf[16];
	char *end;
	unsigned long v;

	if (n == 0 || n >= sizeof buf)
		hypr_die(HYPR_EXIT_USAGE, "-p %s: bad port", whole);
	memcpy(buf, s, n);
	buf[n] = 0;
	v = strtoul(buf, &end, 10);
	if (*end || v == 0 || v > 65535)
		hypr_die(HYPR_EXIT_USAGE, "-p %s: bad port '%s'", whole, buf);
	return (unsigned)v;
}

static void
add_port(json_t *ports, const char *ip, unsigned hp, unsigned gp, int udp, int internal)
{
	size_t i;
	json_t *p;

	json_array_foreach(ports, i, p)
		if ((unsigned)json_integer_value(json_object_get(p, "host_port")) == hp &&
		    !strcmp(jstr(p, "proto"), udp ? "udp" : "tcp") && !strcmp(jstr(p, "host_ip"), ip))
			hypr_die(HYPR_EXIT_USAGE, "-p: host port %s:%u/%s given twice", ip, hp,
			    udp ? "udp" : "tcp");
	json_array_append_new(ports, json_pack("{s:s,s:i,s:i,s:s,s:b}", "host_ip", ip,
	    "host_port", (json_int_t)hp, "guest_port", (json_int_t)gp, "proto", udp ? "udp" : "tcp",
	    "internal", internal));
}

/* -p [IP:][HOST:]GUEST[/proto], ranges HOST-HOST:GUEST-GUEST, IPv4 only
 * (QEMU's hostfwd); no IP is 127.0.0.1, no HOST a free port. */
static void
publish(json_t *ports, const char *spec)
{
	char buf[256], *proto, *parts[3], *s;
	int np = 0, udp = 0;
	const char *ip = "127.0.0.1";
	unsigned g0, g1, h0 = 0, h1 = 0;
	const char *dash;

	if (snprintf(buf, sizeof buf, "%s", spec) >= (int)sizeof buf)
		hypr_die(HYPR_EXIT_USAGE, "-p %s: too long", spec);
	if ((proto = strchr(buf, '/'))) {
		*proto++ = 0;
		if (!strcmp(proto, "udp"))
			udp = 1;
		else if (strcmp(proto, "tcp"))
			hypr_die(HYPR_EXIT_USAGE, "-p %s: protocol %s: tcp or udp (QEMU user networking)",
			    spec, proto);
	}
	if (buf[0] == '[')
		hypr_die(HYPR_EXIT_USAGE, "-p %s: IPv6 host addresses are not supported by QEMU's forwards",
		    spec);
	for (s = buf; np < 3; np++) {
		parts[np] = s;
		if (!(s = strchr(s, ':')))
			break;
		*s++ = 0;
	}
	if (np == 3 || (s && *s))
		hypr_die(HYPR_EXIT_USAGE, "-p %s: want [IP:][HOST:]PORT[/udp]", spec);
	np++;
	/* parts: GUEST | HOST:GUEST | IP:HOST:GUEST */
	{
		const char *g = parts[np - 1], *h = np >= 2 ? parts[np - 2] : "";
		if (np == 3 && *parts[0])
			ip = parts[0];
		if ((dash = strchr(g, '-'))) {
			g0 = parse_port(g, (size_t)(dash - g), spec);
			g1 = parse_port(dash + 1, strlen(dash + 1), spec);
		} else {
			g0 = g1 = parse_port(g, strlen(g), spec);
		}
		if (g1 < g0)
			hypr_die(HYPR_EXIT_USAGE, "-p %s: bad range", spec);
		if (*h) {
			if ((dash = strchr(h, '-'))) {
				h0 = parse_port(h, (size_t)(dash - h), spec);
				h1 = parse_port(dash + 1, strlen(dash + 1), spec);
			} else {
				h0 = h1 = parse_port(h, strlen(h), spec);
			}
			if (h1 - h0 != g1 - g0)
				hypr_die(HYPR_EXIT_USAGE, "-p %s: the host and guest ranges differ in length",
				    spec);
		}
	}
	{
		struct in_addr a;
		if (inet_pton(AF_INET, ip, &a) != 1)
			hypr_die(HYPR_EXIT_USAGE, "-p %s: %s is not an IPv4 address", spec, ip);
	}
	for (unsigned k = 0; k <= g1 - g0; k++) {
		unsigned hp = h0 ? h0 + k : port_pick(udp, ip);
		if (h0 && !port_free(udp, ip, hp))
			hypr_die(HYPR_EXIT_SYSTEM, "-p %s: %s:%u is already in use", spec, ip, hp);
		add_port(ports, ip, hp, g0 + k, udp, 0);
	}
}

/* A share: the host's src at guest; a missing src is made a directory
 * (docker -v) or refused (--mount). A file is shared as its directory with
 * the file alone bound onto guest ("file"). */
static void
share(json_t *vols, const char *what, const char *src, const char *guest, int ro, int make)
{
	char real[PATH_MAX];
	struct stat st;
	struct hypr_err e = { 0 };

	if (src[0] != '/')
		hypr_die(HYPR_EXIT_USAGE, "%s: the host path must be absolute", what);
	if (guest[0] != '/')
		hypr_die(HYPR_EXIT_USAGE, "%s: the guest path must be absolute", what);
	if (!strcmp(guest, "/"))
		hypr_die(HYPR_EXIT_USAGE, "%s: cannot mount over the root", what);
	if (stat(src, &st) < 0) {
		if (!make)
			hypr_die(HYPR_EXIT_USAGE, "%s: bind source path does not exist: %s", what, src);
		/* as docker -v: a missing host directory is made */
		if (errno != ENOENT || hypr_mkdir_p(src, 0755, &e) < 0)
			hypr_die(HYPR_EXIT_USAGE, "%s: %s", what, e.msg[0] ? e.msg : strerror(errno));
		if (stat(src, &st) < 0)
			hypr_die_errno("%s", what);
	}
	if (!S_ISDIR(st.st_mode) && !S_ISREG(st.st_mode))
		hypr_die(HYPR_EXIT_USAGE, "%s: not a directory or a regular file (9p shares them)", what);
	if (!realpath(src, real))
		hypr_die(HYPR_EXIT_USAGE, "%s: %s", what, strerror(errno));
	if (S_ISDIR(st.st_mode)) {
		json_array_append_new(vols, json_pack("{s:s,s:s,s:b}", "source", real, "target", guest,
		    "ro", ro));
	} else {
		char *slash = strrchr(real, '/');
		*slash = 0;
		json_array_append_new(vols, json_pack("{s:s,s:s,s:s,s:b}", "source",
		    real[0] ? real : "/", "file", slash + 1, "target", guest, "ro", ro));
	}
}

/* volumes/.lock, held from a named volume's use until the container that
 * names it exists (ctr_create) */
static int vol_lockfd = -1;

/* A named volume: its _data shared; made when missing, as docker's, once
 * the image is found (volumes_resolve). */
static void
named(json_t *vols, const char *what, const char *name, const char *guest, int ro, int anon)
{

	if (guest[0] != '/')
		hypr_die(HYPR_EXIT_USAGE, "%s: the guest path must be absolute", what);
	if (!strcmp(guest, "/"))
		hypr_die(HYPR_EXIT_USAGE, "%s: cannot mount over the root", what);
	if (!hypr_vol_name_ok(name))
		hypr_die(HYPR_EXIT_USAGE, "%s: \"%s\" includes invalid characters for a local volume "
		    "name, only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed; a host path must be absolute",
		    what, name);
	json_array_append_new(vols, json_pack("{s:s,s:b,s:s,s:b}", "target", guest, "ro", ro,
	    "volume", name, "anonymous", anon));
}

/* The named volumes' directories, made when missing, under volumes/.lock
 * (held until the container that names them exists). */
static void
volumes_resolve(const struct hypr_root *root, json_t *vols)
{
	struct hypr_err e = { 0 };
	json_t *v;
	size_t i;

	json_array_foreach(vols, i, v) {
		char data[4400];
		const char *name = jstr(v, "volume");
		if (!name)
			continue;
		if (vol_lockfd < 0 && hypr_vol_lock(root, &vol_lockfd, &e) < 0)
			hypr_die_err(&e);
		if (hypr_vol_get(root, name, 1, NULL, json_is_true(json_object_get(v, "anonymous")),
		    data, sizeof data, NULL, &e) < 0)
			hypr_die_err(&e);
		json_object_set_new(v, "source", json_string(data));
	}
}

/* docker's anonymous volume: a new one with a random name, removed with
 * its container by --rm and hypr rm -v */
static void
anonymous(json_t *vols, const char *what, const char *guest, int ro)
{
	unsigned char rnd[32];
	char name[65];

	if (getentropy(rnd, sizeof rnd) < 0)
		hypr_die_errno("getentropy");
	for (int i = 0; i < 32; i++)
		snprintf(name + 2 * i, 3, "%02x", rnd[i]);
	named(vols, what, name, guest, ro, 1);
}

/* -v HOSTPATH:DIR[:ro|rw], -v NAME:DIR[:ro|rw], -v DIR (anonymous) */
static void
volume(json_t *vols, const char *spec)
{
	char buf[PATH_MAX * 2 + 8], *guest, *opt, what[PATH_MAX * 2 + 16];
	int ro = 0;

	snprintf(what, sizeof what, "-v %s", spec);
	if (snprintf(buf, sizeof buf, "%s", spec) >= (int)sizeof buf)
		hypr_die(HYPR_EXIT_USAGE, "-v %s: too long", spec);
	if (!(guest = strchr(buf, ':'))) {
		anonymous(vols, what, buf, 0);
		return;
	}
	*guest++ = 0;
	if ((opt = strchr(guest, ':'))) {
		*opt++ = 0;
		for (char *o = strtok(opt, ","); o; o = strtok(NULL, ","))
			if (!strcmp(o, "ro"))
				ro = 1;
			else if (strcmp(o, "rw") && strcmp(o, "z") && strcmp(o, "Z"))
				hypr_die(HYPR_EXIT_USAGE, "-v %s: option %s: ro or rw", spec, o);
	}
	if (buf[0] != '/') {
		named(vols, what, buf, guest, ro, 0);
		return;
	}
	share(vols, what, buf, guest, ro, 1);
}

/* --mount type=bind,source=PATH,target=DIR[,readonly]: docker's keys
 * (src, dst, destination, ro, readonly=true|false); the source must exist. */
static void
mount_opt(json_t *vols, const char *spec)
{
	char buf[PATH_MAX * 2 + 64], what[PATH_MAX * 2 + 80];
	const char *type = NULL, *src = NULL, *dst = NULL;
	int ro = 0;

	snprintf(what, sizeof what, "--mount %s", spec);
	if (snprintf(buf, sizeof buf, "%s", spec) >= (int)sizeof buf)
		hypr_die(HYPR_EXIT_USAGE, "--mount %s: too long", spec);
	for (char *save = NULL, *kv = strtok_r(buf, ",", &save); kv; kv = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(kv, '=');
		const char *v = eq ? eq + 1 : NULL;
		if (eq)
			*eq = 0;
		if (!strcmp(kv, "type") && v)
			type = v;
		else if ((!strcmp(kv, "source") || !strcmp(kv, "src")) && v)
			src = v;
		else if ((!strcmp(kv, "target") || !strcmp(kv, "destination") || !strcmp(kv, "dst")) && v)
			dst = v;
		else if (!strcmp(kv, "readonly") || !strcmp(kv, "ro")) {
			if (!v || !strcmp(v, "true") || !strcmp(v, "1"))
				ro = 1;
			else if (strcmp(v, "false") && strcmp(v, "0"))
				hypr_die(HYPR_EXIT_USAGE, "--mount %s: %s=%s: true or false", spec, kv, v);
		} else if (!strcmp(kv, "consistency") || !strcmp(kv, "bind-propagation"))
			;	/* nothing to choose over 9p */
		else
			hypr_die(HYPR_EXIT_USAGE, "--mount %s: unknown key '%s'", spec, kv);
	}
	if (!type)
		type = "volume";	/* docker's default */
	if (strcmp(type, "bind") && strcmp(type, "volume"))
		hypr_die(HYPR_EXIT_USAGE, "--mount %s: type=%s is not supported (bind or volume)", spec,
		    type);
	if (!dst || (!src && !strcmp(type, "bind")))
		hypr_die(HYPR_EXIT_USAGE, "--mount %s: want type=bind,source=PATH,target=PATH or "
		    "type=volume[,source=NAME],target=PATH", spec);
	if (!strcmp(type, "bind")) {
		share(vols, what, src, dst, ro, 0);
	} else if (src) {
		named(vols, what, src, dst, ro, 0);
	} else {
		anonymous(vols, what, dst, ro);
	}
}

static json_t *
health_config(json_t *spec, json_t *image_hc)
{
	json_t *h = json_object_get(spec, "health"), *test = NULL, *out;
	int64_t iv = 0, to = 0, sp = 0;
	long retries = 0;
	const char *s;

	if (json_is_true(json_object_get(h, "disable")))
		return json_null();
	if ((s = jstr(h, "cmd"))) {
		test = json_pack("[s,s,s]", "/bin/sh", "-c", s);
	} else if (json_array_size(json_object_get(h, "argv"))) {
		test = json_deep_copy(json_object_get(h, "argv"));
	} else if (json_is_object(image_hc) && json_is_array(json_object_get(image_hc, "Test"))) {
		json_t *t = json_object_get(image_hc, "Test");
		const char *kind = json_string_value(json_array_get(t, 0));
		if (!kind || !strcmp(kind, "NONE"))
			return json_null();
		if (!strcmp(kind, "CMD-SHELL"))
			test = json_pack("[s,s,O]", "/bin/sh", "-c", json_array_get(t, 1));
		else if (!strcmp(kind, "CMD"))
			test = json_array();
		else
			return json_null();
		if (!strcmp(kind, "CMD"))
			for (size_t i = 1; i < json_array_size(t); i++)
				json_array_append(test, json_array_get(t, i));
		iv = json_integer_value(json_object_get(image_hc, "Interval"));
		to = json_integer_value(json_object_get(image_hc, "Timeout"));
		sp = json_integer_value(json_object_get(image_hc, "StartPeriod"));
		retries = (long)json_integer_value(json_object_get(image_hc, "Retries"));
	} else {
		return json_null();
	}
	if ((s = jstr(h, "interval")) && (iv = ctr_duration(s)) < 0)
		hypr_die(HYPR_EXIT_USAGE, "--health-interval %s: not a duration (e.g. 5s)", s);
	if ((s = jstr(h, "timeout")) && (to = ctr_duration(s)) < 0)
		hypr_die(HYPR_EXIT_USAGE, "--health-timeout %s: not a duration (e.g. 5s)", s);
	if ((s = jstr(h, "start_period")) && (sp = ctr_duration(s)) < 0)
		hypr_die(HYPR_EXIT_USAGE, "--health-start-period %s: not a duration (e.g. 5s)", s);
	if ((s = jstr(h, "retries"))) {
		char *end;
		retries = strtol(s, &end, 10);
		if (*end || retries < 0)
			hypr_die(HYPR_EXIT_USAGE, "--health-retries %s: not a count", s);
	}
	out = json_pack("{s:o,s:I,s:I,s:I,s:i}", "test", test,
	    "interval", (json_int_t)(iv > 0 ? iv : 30000000000LL),
	    "timeout", (json_int_t)(to > 0 ? to : 30000000000LL),
	    "start_period", (json_int_t)(sp > 0 ? sp : 0),
	    "retries", (json_int_t)(retries > 0 ? retries : 3));
	return out;
}

static json_t *
restart_config(const char *s)
{
	long max = 0;
	char *end;

	if (!s || !*s || !strcmp(s, "no"))
		return json_pack("{s:s,s:i}", "name", "no", "max", 0);
	if (!strncmp(s, "on-failure", 10) && (s[10] == 0 || s[10] == ':')) {
		if (s[10] == ':' && ((max = strtol(s + 11, &end, 10)) < 0 || *end || end == s + 11))
			hypr_die(HYPR_EXIT_USAGE, "--restart %s: want on-failure[:N]", s);
		return json_pack("{s:s,s:i}", "name", "on-failure", "max", (json_int_t)max);
	}
	if (!strcmp(s, "always") || !strcmp(s, "unless-stopped"))
		return json_pack("{s:s,s:i}", "name", s, "max", 0);
	hypr_die(HYPR_EXIT_USAGE, "--restart %s: no, on-failure[:N], always or unless-stopped", s);
}

void
ctr_create(const struct hypr_root *root, json_t *spec, struct hypr_ctr *c, int *sqfd,
    int *lockfd)
{
	struct hypr_store s;
	struct hypr_image *img;
	struct hypr_err e = { 0 };
	json_t *m, *cfg = json_object(), *argv = json_array(), *env = json_array(), *v;
	json_t *ports = json_array(), *vols = json_array(), *hosts = json_array();
	const char *image = jstr(spec, "image"), *str, *netw = jstr(spec, "network");
	char sq[4400], tag[600];
	size_t i;
	int net = 0;

	/* the options first: a bad one fails before any lock is taken */
	/* network: -p or --network=default gives one; none refuses -p */
	if (netw && strcmp(netw, "none") && strcmp(netw, "default") && strcmp(netw, "bridge"))
		hypr_die(HYPR_EXIT_USAGE, "run: --network %s: none or default (QEMU user networking)", netw);
	json_array_foreach(json_object_get(spec, "ports"), i, v)
		publish(ports, json_string_value(v));
	/* compose: a service's ports the other services reach, on hidden
	 * forwards: [guest, host] (host 0: any free port) */
	json_array_foreach(json_object_get(spec, "expose"), i, v) {
		unsigned gp = (unsigned)json_integer_value(json_array_get(v, 0));
		unsigned hp = (unsigned)json_integer_value(json_array_get(v, 1));
		if (!hp || !port_free(0, "127.0.0.1", hp))
			hp = port_pick(0, "127.0.0.1");
		add_port(ports, "127.0.0.1", hp, gp, 0, 1);
	}
	json_array_foreach(json_object_get(spec, "volumes"), i, v)
		volume(vols, json_string_value(v));
	json_array_foreach(json_object_get(spec, "mounts"), i, v)
		mount_opt(vols, json_string_value(v));
	if (json_array_size(vols) > 32)
		hypr_die(HYPR_EXIT_USAGE, "run: at most 32 volumes");
	json_array_foreach(json_object_get(spec, "add_hosts"), i, v) {
		const char *h = json_string_value(v), *colon = h ? strchr(h, ':') : NULL;
		char *line;
		if (!colon || colon == h || !colon[1])
			hypr_die(HYPR_EXIT_USAGE, "run: --add-host %s: want NAME:IP", h ? h : "");
		if (asprintf(&line, "%s %.*s", colon + 1, (int)(colon - h), h) < 0)
			hypr_die(HYPR_EXIT_SYSTEM, "out of memory");
		json_array_append_new(hosts, json_string(line));
		free(line);
	}
	json_array_extend(hosts, json_object_get(spec, "hosts"));

	if ((str = jstr(spec, "name"))) {
		for (const char *p = str; *p; p++)
			if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
			    (*p >= '0' && *p <= '9') || (p > str && strchr("_.-", *p))))
				hypr_die(HYPR_EXIT_USAGE, "run: --name %s: Invalid container name, only "
				    "[a-zA-Z0-9][a-zA-Z0-9_.-] are allowed", str);
		json_object_set_new(cfg, "name", json_string(str));
	}
	if ((str = jstr(spec, "memory"))) {
		uint64_t b;
		if (hypr_size_parse(str, &b) < 0 || b < (64ull << 20) || b > (1ull << 40))
			hypr_die(HYPR_EXIT_USAGE, "run: --memory %s: a size of at least 64m (e.g. 512m)", str);
	}
	json_decref(restart_config(jstr(spec, "restart")));
	if (json_is_true(json_object_get(spec, "rm")) && jstr(spec, "restart") &&
	    strcmp(jstr(spec, "restart"), "no"))
		hypr_die(HYPR_EXIT_USAGE, "run: --restart and --rm are exclusive");

	/* the store's lock: the image cannot go while we lock its squashfs */
	if (hypr_store_open(&s, root->path, 1, &e) < 0)
		hypr_die_err(&e);
	if (hypr_store_find(&s, image, &img, tag, sizeof tag, &e) < 0)
		hypr_die_err(&e);
	if (!img || !(m = img->m))
		hypr_die(HYPR_EXIT_INPUT, "No such image: %s (build it with hypr build -t %s)", image, image);
	if (img->problem)
		hypr_die(HYPR_EXIT_INPUT, "image %s: %s", image, img->problem);
	hypr_root_path(root, sq, sizeof sq, "images/%s.squashfs", img->hex);
	if ((*sqfd = open(sq, O_RDONLY | O_CLOEXEC)) < 0)
		hypr_die_errno("image %s: %s", image, sq);
	while (flock(*sqfd, LOCK_SH) < 0)
		if (errno != EINTR)
			hypr_die_errno("locking %s", sq);

	volumes_resolve(root, vols);
	if (json_is_true(json_object_get(spec, "publish_all")))
		json_array_foreach(json_object_get(m, "exposed_ports"), i, v) {
			const char *ep = json_string_value(v);
			unsigned gp = (unsigned)atoi(ep ? ep : "0");
			int udp = ep && strstr(ep, "/udp") != NULL;
			if (gp > 0 && gp < 65536)
				add_port(ports, "127.0.0.1", port_pick(udp, "127.0.0.1"), gp, udp, 0);
		}
	net = (netw && strcmp(netw, "none")) || json_array_size(ports) ||
	    json_array_size(json_object_get(spec, "guestfwds"));
	if (netw && !strcmp(netw, "none") && json_array_size(ports))
		hypr_die(HYPR_EXIT_USAGE, "run: -p needs a network (not --network none)");
	/* the command: ENTRYPOINT + CMD; --entrypoint resets the image's CMD */
	{
		json_t *ep = json_object_get(spec, "entrypoint"), *cmd = json_object_get(spec, "command");
		if (!ep)
			ep = json_object_get(m, "entrypoint");
		else if (!cmd)
			cmd = json_null();
		if (!cmd)
			cmd = json_object_get(m, "cmd");
		json_array_extend(argv, json_is_array(ep) ? ep : NULL);
		if (json_is_array(cmd))
			json_array_extend(argv, cmd);
		if (!json_array_size(argv))
			hypr_die(HYPR_EXIT_USAGE, "run: %s: no command specified (the image has no "
			    "ENTRYPOINT or CMD)", image);
	}
	json_array_foreach(json_object_get(m, "env"), i, v)
		if (json_string_value(v))
			env_set(env, json_string_value(v));
	json_array_foreach(json_object_get(spec, "env_files"), i, v)
		env_file(env, json_string_value(v));
	json_array_foreach(json_object_get(spec, "env"), i, v)
		env_set(env, json_string_value(v));
	if (json_is_true(json_object_get(spec, "tty")))
		env_set(env, getenv("HYPR_TERM_DEFAULT") ? getenv("HYPR_TERM_DEFAULT") : "TERM=xterm");

	json_object_set_new(cfg, "hypr", json_string("container"));
	json_object_set_new(cfg, "version", json_integer(1));
	json_object_set_new(cfg, "image", json_string(image));
	json_object_set_new(cfg, "image_id", json_string(img->id));
	json_object_set_new(cfg, "squashfs", json_string(sq));
	json_object_set_new(cfg, "argv", argv);
	json_object_set_new(cfg, "env", env);
	str = jstr(spec, "user");
	json_object_set_new(cfg, "user", json_string(str ? str : jstr(m, "user") ? jstr(m, "user") : ""));
	str = jstr(spec, "workdir");
	if (str && str[0] != '/')
		hypr_die(HYPR_EXIT_USAGE, "run: -w %s: the working directory must be absolute", str);
	if (!str || !*str)
		str = jstr(m, "working_dir");
	json_object_set_new(cfg, "workdir", json_string(str && *str ? str : "/"));
	if ((str = jstr(spec, "hostname")))
		json_object_set_new(cfg, "hostname", json_string(str));
	json_object_set_new(cfg, "tty", json_boolean(json_is_true(json_object_get(spec, "tty"))));
	json_object_set_new(cfg, "interactive",
	    json_boolean(json_is_true(json_object_get(spec, "interactive"))));
	json_object_set_new(cfg, "rm", json_boolean(json_is_true(json_object_get(spec, "rm"))));
	json_object_set_new(cfg, "network", json_boolean(net));
	json_object_set_new(cfg, "ports", ports);
	json_object_set_new(cfg, "volumes", vols);
	json_object_set_new(cfg, "hosts", hosts);
	json_object_set_new(cfg, "guestfwds", json_is_array(json_object_get(spec, "guestfwds")) ?
	    json_incref(json_object_get(spec, "guestfwds")) : json_array());
	if ((str = jstr(spec, "memory"))) {
		uint64_t b;
		if (hypr_size_parse(str, &b) < 0 || b < (64ull << 20) || b > (1ull << 40))
			hypr_die(HYPR_EXIT_USAGE, "run: --memory %s: a size of at least 64m (e.g. 512m)", str);
		json_object_set_new(cfg, "memory_mb", json_integer((json_int_t)(b >> 20)));
	}
	if ((str = jstr(spec, "cpus"))) {
		char *end;
		double d = strtod(str, &end);
		if (*end || !(d > 0) || d > 16)
			hypr_die(HYPR_EXIT_USAGE, "run: --cpus %s: a number from 0.01 to 16", str);
		json_object_set_new(cfg, "cpus", json_integer((json_int_t)d + ((double)(json_int_t)d < d)));
	}
	json_object_set_new(cfg, "health", health_config(spec, json_object_get(m, "healthcheck")));
	json_object_set_new(cfg, "restart", restart_config(jstr(spec, "restart")));
	if (json_is_true(json_object_get(spec, "rm")) &&
	    strcmp(jstr(json_object_get(cfg, "restart"), "name"), "no"))
		hypr_die(HYPR_EXIT_USAGE, "run: --restart and --rm are exclusive");
	{
		const char *sig = jstr(spec, "stop_signal");
		int n;
		if (!sig)
			sig = jstr(m, "stop_signal");
		if (!sig)
			sig = "SIGTERM";
		if ((n = ctr_signal(sig)) <= 0)
			hypr_die(HYPR_EXIT_USAGE, "run: stop signal %s: unknown", sig);
		json_object_set_new(cfg, "stop_signal", json_integer(n));
	}
	{
		const char *to = jstr(spec, "stop_timeout");
		long t = 10;
		char *end;
		if (to && ((t = strtol(to, &end, 10)) < 0 || *end || end == to))
			hypr_die(HYPR_EXIT_USAGE, "run: --stop-timeout %s: seconds", to);
		json_object_set_new(cfg, "stop_timeout", json_integer(t));
	}
	json_object_set_new(cfg, "labels", json_is_object(json_object_get(spec, "labels")) ?
	    json_incref(json_object_get(spec, "labels")) : json_object());
	/* -di: stdin stays open for hypr attach, as docker run -di's */

	if (hypr_ctr_create(root, cfg, c, &e) < 0)
		hypr_die_err(&e);
	json_decref(cfg);
	if (vol_lockfd >= 0) {
		/* the container names its volumes now: hypr volume rm sees it */
		close(vol_lockfd);
		vol_lockfd = -1;
	}
	if (hypr_ctr_lock(c, lockfd, &e) < 0)
		hypr_die_err(&e);
	hypr_store_close(&s);
}

int
cmd_run(int argc, char **argv)
{
	struct hypr_root root;
	struct hypr_err e = { 0 };
	struct hypr_ctr c;
	int at, sqfd, lockfd, detach, attach, rc;
	unsigned char keys[16] = { 0x10, 0x11 };	/* ctrl-p, ctrl-q */
	size_t nkeys = 2;
	json_t *spec;

	/* as docker run: 125 when hypr fails (a bad option, no such image, a
	 * VM that does not boot), 126/127 when the command cannot run */
	hypr_die_status = HYPR_EXIT_RUN;
	spec = parse_run(argc, argv, &at);
	detach = json_is_true(json_object_get(spec, "detach"));
	if (json_is_string(json_object_get(spec, "detach_keys")))
		nkeys = ctr_detach_keys(json_string_value(json_object_get(spec, "detach_keys")),
		    keys, sizeof keys);
	/* -it at a terminal: a supervisor of its own, as -d's, with this
	 * terminal attached, so that the detach keys leave it running */
	attach = !detach && json_is_true(json_object_get(spec, "tty")) &&
	    json_is_true(json_object_get(spec, "interactive")) && isatty(0);
	if (hypr_root_open(&root, NULL, &e) < 0)
		hypr_die_err(&e);
	ctr_create(&root, spec, &c, &sqfd, &lockfd);
	json_decref(spec);
	rc = ctr_start(&root, &c, sqfd, lockfd, !detach && !attach,
	    attach ? CTR_QUIET | CTR_HOLD : 0);
	if ((detach || attach) && rc == HYPR_EXIT_SYSTEM) {
		rc = HYPR_EXIT_RUN;	/* its VM failed, not the process */
	} else if (attach && rc == 0) {
		c.alive = 1;
		rc = ctr_attach(&c, 0, keys, nkeys);
	}
	hypr_ctr_free(&c);
	if (detach && rc == 0)
		return hypr_close_stdout();
	return rc;
}

/* docker create: the container made (its state "created"), not started;
 * hypr start runs it. Prints its ID. Errors exit 125, as hypr run's. */
int
cmd_create(int argc, char **argv)
{
	struct hypr_root root;
	struct hypr_err e = { 0 };
	struct hypr_ctr c;
	int at, sqfd, lockfd;
	json_t *spec;

	hypr_die_status = HYPR_EXIT_RUN;
	run_cmd = "create";
	spec = parse_run(argc, argv, &at);
	if (json_is_true(json_object_get(spec, "detach")))
		hypr_die(HYPR_EXIT_USAGE, "create: -d is hypr run's (hypr start detaches)");
	if (hypr_root_open(&root, NULL, &e) < 0)
		hypr_die_err(&e);
	ctr_create(&root, spec, &c, &sqfd, &lockfd);
	json_decref(spec);
	printf("%s\n", c.id);
	close(lockfd);
	close(sqfd);
	hypr_ctr_free(&c);
	return hypr_close_stdout();
}
