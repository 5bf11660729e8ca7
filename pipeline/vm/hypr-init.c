/* hypr-init - PID 1 of the hypr build VM (static; see hypr-guest(7)).
 *
 * Finds its disks by virtio serial and its control port by name, mounts the
 * base squashfs and a tmpfs for the layers, then serves RUN, DIFF, IMPORT
 * and QUIT frames on the port. Layer n lives in /L/n; step n mounts an
 * overlay at /R with lowers n-1..1, the init layer "i" and the base "b". */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <net/if.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/reboot.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "guest.h"
#include "vm_proto.h"

#define VERSION "1"
#define L "/L"
#define R "/R"

extern char **environ;

static int ctl = -1;		/* the hypr.ctl port */
static int outdisk = -1, indisk = -1;
static char basedev[512], scratchdev[512];
static unsigned nlayers;
static int debug;

static void
logmsg(const char *fmt, ...)
{
	va_list ap;

	struct timespec ts;

	clock_gettime(CLOCK_BOOTTIME, &ts);
	va_start(ap, fmt);
	fprintf(stderr, "[%5ld.%06ld] hypr-init: ", (long)ts.tv_sec, ts.tv_nsec / 1000);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

static __attribute__((noreturn)) void
poweroff(void)
{
	sync();
	reboot(RB_AUTOBOOT);	/* with -no-reboot QEMU exits */
	for (;;)
		pause();
}

static __attribute__((noreturn, format(printf, 1, 2))) void
fatal(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fputs("hypr-init: fatal: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	poweroff();
}

static int
write_all(int fd, const void *p, size_t n)
{
	const char *s = p;

	while (n > 0) {
		ssize_t w = write(fd, s, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		s += w;
		n -= (size_t)w;
	}
	return 0;
}

static int
read_all(int fd, void *p, size_t n)
{
	char *s = p;

	while (n > 0) {
		ssize_t r = read(fd, s, n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		s += r;
		n -= (size_t)r;
	}
	return 0;
}

static void
send_frame(int type, uint32_t step, const void *p, size_t n)
{
	unsigned char h[HYPR_PROTO_HDR];

	hypr_proto_put32(h, (uint32_t)n);
	h[4] = (unsigned char)type;
	hypr_proto_put32(h + 5, step);
	if (write_all(ctl, h, sizeof h) < 0 || (n && write_all(ctl, p, n) < 0))
		fatal("control port: write: %s", strerror(errno));
}

static __attribute__((format(printf, 2, 3))) void
send_error(uint32_t step, const char *fmt, ...)
{
	char msg[2048];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	if (debug)
		logmsg("error: %s", msg);
	send_frame(HYPR_MSG_ERROR, step, msg, strlen(msg));
}

static int
read_line(const char *path, char *buf, size_t n)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t r;

	if (fd < 0)
		return -1;
	r = read(fd, buf, n - 1);
	close(fd);
	if (r < 0)
		return -1;
	buf[r] = 0;
	buf[strcspn(buf, "\n")] = 0;
	return 0;
}

static int
write_file(const char *path, const char *s)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	int rc;

	if (fd < 0)
		return -1;
	rc = write_all(fd, s, strlen(s));
	close(fd);
	return rc;
}

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- boot ---- */

static void
find_port(void)
{
	double t0 = now();

	for (;;) {
		DIR *d = opendir("/sys/class/virtio-ports");
		struct dirent *de;
		char p[512], name[128];

		while (d && (de = readdir(d))) {
			if (de->d_name[0] == '.')
				continue;
			snprintf(p, sizeof p, "/sys/class/virtio-ports/%s/name", de->d_name);
			if (read_line(p, name, sizeof name) == 0 && !strcmp(name, HYPR_PROTO_PORT)) {
				snprintf(p, sizeof p, "/dev/%s", de->d_name);
				ctl = open(p, O_RDWR | O_CLOEXEC);
				if (ctl < 0)
					fatal("%s: %s", p, strerror(errno));
				closedir(d);
				return;
			}
		}
		if (d)
			closedir(d);
		if (now() - t0 > 20)
			fatal("no virtio port named %s", HYPR_PROTO_PORT);
		usleep(2000);
	}
}

/* Disks by virtio serial; wait until the host's count (hypr.disks=N) shows. */
static void
find_disks(int want)
{
	double t0 = now();

	for (;;) {
		DIR *d = opendir("/sys/block");
		struct dirent *de;
		int found = 0;

		while (d && (de = readdir(d))) {
			char p[512], serial[64];
			if (strncmp(de->d_name, "vd", 2))
				continue;
			snprintf(p, sizeof p, "/sys/block/%s/serial", de->d_name);
			if (read_line(p, serial, sizeof serial) < 0)
				continue;
			found++;
			snprintf(p, sizeof p, "/dev/%s", de->d_name);
			if (!strcmp(serial, "base"))
				snprintf(basedev, sizeof basedev, "%s", p);
			else if (!strcmp(serial, "scratch"))
				snprintf(scratchdev, sizeof scratchdev, "%s", p);
			else if (!strcmp(serial, "out") && outdisk < 0)
				outdisk = open(p, O_RDWR | O_DIRECT | O_CLOEXEC);
			else if (!strcmp(serial, "in") && indisk < 0)
				indisk = open(p, O_RDONLY | O_DIRECT | O_CLOEXEC);
		}
		if (d)
			closedir(d);
		if (found >= want)
			return;
		if (now() - t0 > 20)
			fatal("found %d of %d disks", found, want);
		outdisk = indisk = -1;
		basedev[0] = scratchdev[0] = 0;
		usleep(2000);
	}
}

static int
cmdline_int(const char *key, int def)
{
	char buf[4096], *p;
	size_t k = strlen(key);

	if (read_line("/proc/cmdline", buf, sizeof buf) < 0)
		return def;
	for (p = buf; (p = strstr(p, key)); p += k)
		if ((p == buf || p[-1] == ' ') && p[k] == '=')
			return atoi(p + k + 1);
	return def;
}

static void
lo_up(void)
{
	struct ifreq ifr = { 0 };
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	if (s < 0)
		return;
	snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "lo");
	if (ioctl(s, SIOCGIFFLAGS, &ifr) == 0) {
		ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
		ioctl(s, SIOCSIFFLAGS, &ifr);
	}
	close(s);
}

/* The init layer holds only what the base lacks: mount points and the
 * files the agent bind-mounts. Shadowing existing base dirs would change
 * their mode (e.g. /tmp 1777). */
static void
make_init_layer(void)
{
	static const char *dirs[] = { "proc", "sys", "dev", "etc" };
	static const char *files[] = { "etc/hosts", "etc/resolv.conf", "etc/hostname" };
	char b[512], i[512];
	struct stat st;

	mkdir(L "/i", 0755);
	for (size_t k = 0; k < sizeof dirs / sizeof *dirs; k++) {
		snprintf(b, sizeof b, L "/b/%s", dirs[k]);
		snprintf(i, sizeof i, L "/i/%s", dirs[k]);
		if (lstat(b, &st) < 0)
			mkdir(i, 0755);
	}
	for (size_t k = 0; k < sizeof files / sizeof *files; k++) {
		snprintf(b, sizeof b, L "/b/%s", files[k]);
		snprintf(i, sizeof i, L "/i/%s", files[k]);
		if (lstat(b, &st) < 0) {
			snprintf(b, sizeof b, L "/b/etc");
			if (lstat(b, &st) == 0 && !S_ISDIR(st.st_mode))
				continue;	/* /etc is a symlink or file: leave it */
			mkdir(L "/i/etc", 0755);
			write_file(i, "");
		}
	}
}

static int mknodes(void);

static int
cmpstr(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Distribution-kernel mode (pipeline/vm/distro-kernel.sh): the drivers are
 * modules in the initramfs, named NN-name.ko in load order. */
static void
load_modules(void)
{
	DIR *d = opendir("/lib/modules/hypr");
	struct dirent *de;
	char *names[64], p[512];
	size_t n = 0;

	if (!d)
		return;
	while ((de = readdir(d)) && n < 64)
		if (de->d_name[0] != '.')
			names[n++] = strdup(de->d_name);
	closedir(d);
	qsort(names, n, sizeof *names, cmpstr);
	for (size_t i = 0; i < n; i++) {
		int fd;
		snprintf(p, sizeof p, "/lib/modules/hypr/%s", names[i]);
		fd = open(p, O_RDONLY | O_CLOEXEC);
		if (fd < 0 || (syscall(SYS_finit_module, fd, "", 0) < 0 && errno != EEXIST))
			logmsg("module %s: %s", names[i], strerror(errno));
		if (fd >= 0)
			close(fd);
		free(names[i]);
	}
	if (debug)
		logmsg("%zu modules loaded", n);
}

static void
boot(void)
{
	int ndisks;

	mkdir("/proc", 0755);
	mkdir("/sys", 0755);
	mkdir("/dev", 0755);
	mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
	mount("sysfs", "/sys", "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
	mount("devtmpfs", "/dev", "devtmpfs", MS_NOSUID, "mode=0755");
	{
		int fd = open("/dev/console", O_RDWR | O_CLOEXEC);
		if (fd >= 0) {
			dup2(fd, 0);
			dup2(fd, 1);
			dup2(fd, 2);
			close(fd);
		}
	}
	debug = cmdline_int("hypr.debug", 0);
	setvbuf(stderr, NULL, _IONBF, 0);
	ndisks = cmdline_int("hypr.disks", 0);
	if (debug)
		logmsg("init started");
	load_modules();
	find_port();
	if (debug)
		logmsg("port found");
	find_disks(ndisks);

	mkdir(L, 0755);
	mkdir(R, 0755);
	mkdir("/run", 0755);
	/* layers: the ext4 scratch disk if the host gave one (user.* xattrs,
	 * no RAM bound), else tmpfs (6.1 tmpfs has trusted.* but no user.*) */
	if (scratchdev[0]) {
		if (mount(scratchdev, L, "ext4", MS_NOATIME, "noinit_itable") < 0)
			fatal("mount scratch %s: %s", scratchdev, strerror(errno));
	} else if (mount("tmpfs", L, "tmpfs", 0, "mode=0755,size=90%") < 0)
		fatal("mount " L ": %s", strerror(errno));
	mkdir(L "/b", 0755);
	mkdir(L "/w", 0755);
	if (basedev[0] && mount(basedev, L "/b", "squashfs", MS_RDONLY, NULL) < 0)
		fatal("mount base %s: %s", basedev, strerror(errno));
	make_init_layer();
	if (mount("tmpfs", "/run", "tmpfs", 0, "mode=0755,size=1m") < 0)
		fatal("mount /run: %s", strerror(errno));
	if (mknodes() < 0)
		fatal("/run/dev: %s", strerror(errno));
	lo_up();
	if (debug)
		logmsg("ready: base=%s out=%d in=%d", basedev[0] ? basedev : "none", outdisk, indisk);
	send_frame(HYPR_MSG_READY, 0, "hypr-init " VERSION, strlen("hypr-init " VERSION));
}

/* ---- RUN ---- */

struct run {
	char **argv, **env;
	size_t nargv, nenv;
	char *cwd, *user, *hostname;
	long long time_ns;
	int net;		/* the step has the VM's network (else its own, lo only) */
};

static int
push(char ***v, size_t *n, char *s)
{
	char **nv = realloc(*v, (*n + 2) * sizeof **v);

	if (!nv)
		return -1;
	nv[(*n)++] = s;
	nv[*n] = NULL;
	*v = nv;
	return 0;
}

/* TLV payload -> struct run; strings point into p (NUL-terminated in place
 * by shifting: each value is copied into its own allocation). */
static int
parse_run(unsigned char *p, size_t n, struct run *r)
{
	size_t i = 0;

	memset(r, 0, sizeof *r);
	while (i < n) {
		uint32_t len;
		unsigned char tag;
		char *s;

		if (n - i < 5)
			return -1;
		tag = p[i];
		len = hypr_proto_get32(p + i + 1);
		i += 5;
		if (len > n - i)
			return -1;
		if (!(s = malloc(len + 1)))
			return -1;
		memcpy(s, p + i, len);
		s[len] = 0;
		i += len;
		switch (tag) {
		case HYPR_TAG_ARGV:
			if (push(&r->argv, &r->nargv, s) < 0)
				return -1;
			break;
		case HYPR_TAG_ENV:
			if (push(&r->env, &r->nenv, s) < 0)
				return -1;
			break;
		case HYPR_TAG_CWD: free(r->cwd); r->cwd = s; break;
		case HYPR_TAG_USER: free(r->user); r->user = s; break;
		case HYPR_TAG_HOSTNAME: free(r->hostname); r->hostname = s; break;
		case HYPR_TAG_TIME: r->time_ns = atoll(s); free(s); break;
		default: free(s); break;
		}
	}
	if (r->nargv == 0)
		return -1;
	if (!r->env)
		push(&r->env, &r->nenv, NULL), r->nenv = 0;
	return 0;
}

static void
free_run(struct run *r)
{
	for (size_t i = 0; i < r->nargv; i++)
		free(r->argv[i]);
	for (size_t i = 0; i < r->nenv; i++)
		free(r->env[i]);
	free(r->argv);
	free(r->env);
	free(r->cwd);
	free(r->user);
	free(r->hostname);
}

/* lowerdir for a new layer on top of layers 1..n-1, relative to L */
static int
lowerdir(unsigned n, char *buf, size_t cap)
{
	size_t used = 0;

	for (unsigned k = n - 1; k >= 1; k--) {
		int w = snprintf(buf + used, cap - used, "%u:", k);
		if (w < 0 || (size_t)w >= cap - used)
			return -1;
		used += (size_t)w;
	}
	if (snprintf(buf + used, cap - used, "i:b") >= (int)(cap - used))
		return -1;
	return 0;
}

/* The steps' minimal /dev, made once at boot and bind-mounted into every
 * step root. Not devtmpfs: that would show the build's own disks. The tmpfs
 * is nodev, so a node a step makes there (it has CAP_MKNOD, as under
 * Docker) cannot be opened; the usable nodes are bind mounts of the
 * devtmpfs ones, each its own mount that allows devices. */
static int
mknodes(void)
{
	static const char *const nodes[] = { "null", "zero", "full", "random", "urandom", "tty" };
	char p[128], src[128];

	mkdir("/run/dev", 0755);
	if (mount("tmpfs", "/run/dev", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
	    "mode=0755,size=64k") < 0)
		return -1;
	for (size_t i = 0; i < sizeof nodes / sizeof *nodes; i++) {
		int fd;
		snprintf(p, sizeof p, "/run/dev/%s", nodes[i]);
		snprintf(src, sizeof src, "/dev/%s", nodes[i]);
		if ((fd = open(p, O_WRONLY | O_CREAT | O_CLOEXEC, 0666)) < 0)
			return -1;
		close(fd);
		chmod(src, 0666);
		if (mount(src, p, NULL, MS_BIND, NULL) < 0 ||
		    mount(NULL, p, NULL, MS_BIND | MS_REMOUNT | MS_NOSUID | MS_NOEXEC, NULL) < 0)
			return -1;
	}
	mkdir("/run/dev/pts", 0755);
	mkdir("/run/dev/shm", 01777);
	chmod("/run/dev/shm", 01777);
	if (mount("devpts", "/run/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC,
	    "newinstance,ptmxmode=0666,mode=0620,gid=5") < 0)
		return -1;
	if (mount("shm", "/run/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777") < 0)
		return -1;
	symlink("pts/ptmx", "/run/dev/ptmx");
	symlink("/proc/self/fd", "/run/dev/fd");
	symlink("/proc/self/fd/0", "/run/dev/stdin");
	symlink("/proc/self/fd/1", "/run/dev/stdout");
	symlink("/proc/self/fd/2", "/run/dev/stderr");
	return 0;
}

static void
bind_etc(const char *name, const char *content, int changed)
{
	char src[128], dst[128];
	struct stat st;

	snprintf(src, sizeof src, "/run/%s", name);
	snprintf(dst, sizeof dst, R "/etc/%s", name);
	if (changed)
		write_file(src, content);
	/* only onto a real file: a symlink target could lead anywhere */
	if (lstat(dst, &st) == 0 && S_ISREG(st.st_mode))
		mount(src, dst, NULL, MS_BIND, NULL);
}

static int
step_root(unsigned n, const struct run *r, char *err, size_t errlen)
{
	char opts[4096 + 256], lower[4096], hosts[1024];
	const char *hn = r->hostname && *r->hostname ? r->hostname : "hypr";
	struct stat st;

	snprintf(opts, sizeof opts, L "/%u", n);
	mkdir(opts, 0755);
	snprintf(opts, sizeof opts, L "/w/%u", n);
	mkdir(opts, 0755);
	if (lowerdir(n, lower, sizeof lower) < 0) {
		snprintf(err, errlen, "too many layers for one overlay (%u)", n);
		return -1;
	}
	snprintf(opts, sizeof opts,
	    "lowerdir=%s,upperdir=%u,workdir=w/%u,redirect_dir=off,index=off,metacopy=off,volatile",
	    lower, n, n);
	/* nodev: a block node a step makes for the build's disks stays dead */
	if (chdir(L) < 0 || mount("overlay", R, "overlay", MS_NODEV, opts) < 0) {
		snprintf(err, errlen, "overlay mount: %s", strerror(errno));
		chdir("/");
		return -1;
	}
	chdir("/");
	if (lstat(R "/proc", &st) == 0 && S_ISDIR(st.st_mode) &&
	    mount("proc", R "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) == 0) {
		/* as Docker: the kernel's knobs are read-only to a step */
		static const char *const ro[] = { R "/proc/sys", R "/proc/sysrq-trigger" };
		for (size_t i = 0; i < sizeof ro / sizeof *ro; i++)
			if (mount(ro[i], ro[i], NULL, MS_BIND, NULL) == 0)
				mount(NULL, ro[i], NULL, MS_BIND | MS_REMOUNT | MS_RDONLY |
				    MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
	}
	if (lstat(R "/dev", &st) == 0 && S_ISDIR(st.st_mode) &&
	    mount("/run/dev", R "/dev", NULL, MS_BIND | MS_REC, NULL) < 0) {
		snprintf(err, errlen, "/dev: %s", strerror(errno));
		return -1;
	}
	static char last[256];
	int changed = strcmp(last, hn) != 0;
	if (changed)
		snprintf(last, sizeof last, "%s", hn);
	snprintf(hosts, sizeof hosts, "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
	    "127.0.1.1\t%s\n", hn);
	bind_etc("hosts", hosts, changed);
	snprintf(hosts, sizeof hosts, "%s\n", hn);
	bind_etc("hostname", hosts, changed);
	bind_etc("resolv.conf", "", changed);
	return 0;
}

/* ---- user resolution, in the child after chroot ---- */

static int
all_digits(const char *s)
{
	if (!*s)
		return 0;
	for (; *s; s++)
		if (!isdigit((unsigned char)*s))
			return 0;
	return 1;
}

/* Field k (0-based) of a colon-separated line, copied into out. */
static const char *
field(const char *line, int k, char *out, size_t cap)
{
	const char *s = line;
	size_t n;

	for (int i = 0; i < k; i++) {
		s = strchr(s, ':');
		if (!s)
			return NULL;
		s++;
	}
	n = strcspn(s, ":\n");
	if (n >= cap)
		n = cap - 1;
	memcpy(out, s, n);
	out[n] = 0;
	return out;
}

struct who {
	uid_t uid;
	gid_t gid;
	gid_t groups[64];
	int ngroups;
	char home[512];
};

static int
resolve_user(const char *spec, struct who *w, char *err, size_t errlen)
{
	char user[256], group[256] = "", line[4096], f0[256], f2[64], f3[64], f5[512];
	char uname[256] = "";
	const char *colon;
	int have_group = 0, found = 0;
	FILE *f;

	memset(w, 0, sizeof *w);
	snprintf(w->home, sizeof w->home, "/");
	if (!spec || !*spec)
		spec = "0";
	colon = strchr(spec, ':');
	snprintf(user, sizeof user, "%.*s", colon ? (int)(colon - spec) : (int)strlen(spec), spec);
	if (colon) {
		snprintf(group, sizeof group, "%s", colon + 1);
		have_group = 1;
	}
	if ((f = fopen("/etc/passwd", "re"))) {
		while (fgets(line, sizeof line, f)) {
			if (!field(line, 0, f0, sizeof f0) || !field(line, 2, f2, sizeof f2) ||
			    !field(line, 3, f3, sizeof f3))
				continue;
			if (!strcmp(f0, user) || (all_digits(user) && !strcmp(f2, user))) {
				w->uid = (uid_t)strtoul(f2, NULL, 10);
				w->gid = (gid_t)strtoul(f3, NULL, 10);
				if (field(line, 5, f5, sizeof f5) && *f5)
					snprintf(w->home, sizeof w->home, "%s", f5);
				snprintf(uname, sizeof uname, "%s", f0);
				found = 1;
				break;
			}
		}
		fclose(f);
	}
	if (!found) {
		if (!all_digits(user)) {
			snprintf(err, errlen, "unable to find user %s: no matching entries in passwd file", user);
			return -1;
		}
		w->uid = (uid_t)strtoul(user, NULL, 10);
		w->gid = 0;
	}
	if (have_group) {
		int gfound = 0;
		if ((f = fopen("/etc/group", "re"))) {
			while (fgets(line, sizeof line, f)) {
				if (!field(line, 0, f0, sizeof f0) || !field(line, 2, f2, sizeof f2))
					continue;
				if (!strcmp(f0, group) || (all_digits(group) && !strcmp(f2, group))) {
					w->gid = (gid_t)strtoul(f2, NULL, 10);
					gfound = 1;
					break;
				}
			}
			fclose(f);
		}
		if (!gfound) {
			if (!all_digits(group)) {
				snprintf(err, errlen, "unable to find group %s: no matching entries in group file", group);
				return -1;
			}
			w->gid = (gid_t)strtoul(group, NULL, 10);
		}
		w->groups[0] = w->gid;
		w->ngroups = 1;
		return 0;
	}
	/* no explicit group: primary plus every group listing the user */
	w->groups[0] = w->gid;
	w->ngroups = 1;
	if (uname[0] && (f = fopen("/etc/group", "re"))) {
		char members[4096];
		while (fgets(line, sizeof line, f) && w->ngroups < 64) {
			if (!field(line, 2, f2, sizeof f2) || !field(line, 3, members, sizeof members))
				continue;
			for (char *tok = strtok(members, ","); tok; tok = strtok(NULL, ",")) {
				if (!strcmp(tok, uname)) {
					gid_t g = (gid_t)strtoul(f2, NULL, 10);
					int dup = 0;
					for (int i = 0; i < w->ngroups; i++)
						dup |= w->groups[i] == g;
					if (!dup)
						w->groups[w->ngroups++] = g;
					break;
				}
			}
		}
		fclose(f);
	}
	return 0;
}

static int
has_env(char **env, const char *key)
{
	size_t k = strlen(key);

	for (; env && *env; env++)
		if (!strncmp(*env, key, k) && (*env)[k] == '=')
			return 1;
	return 0;
}

/* Docker's default capability set: RUN gets what it gets under Docker (no
 * mount, no reboot, no module loading, no raw disk access beyond mknod). */
#define DOCKER_CAPS ((1ull << CAP_CHOWN) | (1ull << CAP_DAC_OVERRIDE) | \
	(1ull << CAP_FOWNER) | (1ull << CAP_FSETID) | (1ull << CAP_KILL) | \
	(1ull << CAP_SETGID) | (1ull << CAP_SETUID) | (1ull << CAP_SETPCAP) | \
	(1ull << CAP_NET_BIND_SERVICE) | (1ull << CAP_NET_RAW) | \
	(1ull << CAP_SYS_CHROOT) | (1ull << CAP_MKNOD) | (1ull << CAP_AUDIT_WRITE) | \
	(1ull << CAP_SETFCAP))

static int
drop_bounding_caps(void)
{
	for (int c = 0; c < 64; c++) {
		if (DOCKER_CAPS & (1ull << c))
			continue;
		if (prctl(PR_CAPBSET_DROP, c, 0, 0, 0) < 0) {
			if (errno == EINVAL)
				break;	/* past the kernel's last cap */
			return -1;
		}
	}
	return 0;
}

static int
set_root_caps(void)
{
	struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct d[2] = { { 0 } };

	d[0].effective = d[0].permitted = (uint32_t)DOCKER_CAPS;
	d[1].effective = d[1].permitted = (uint32_t)(DOCKER_CAPS >> 32);
	return (int)syscall(SYS_capset, &h, d);
}

/* The step's own namespaces: mounts (the agent's are detached, so no
 * chroot trick or leftover mount reaches /dev, the layers or the disks),
 * hostname, IPC, and unless the step has the network, a network of its own
 * with loopback only. The step root is moved onto / (pivot_root cannot
 * leave an initramfs) and becomes the process root. */
static int
enter_root(const struct run *r)
{
	static const char *const agent[] = { "/dev", "/sys", "/proc", "/run", L };
	const char *hn = r->hostname && *r->hostname ? r->hostname : "hypr";
	struct stat st;

	if (unshare(CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | (r->net ? 0 : CLONE_NEWNET)) < 0 ||
	    mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		return -1;
	if (!r->net)
		lo_up();
	if (sethostname(hn, strlen(hn)) < 0)
		return -1;
	/* sysfs shows the network namespace that mounts it: this one */
	if (lstat(R "/sys", &st) == 0 && S_ISDIR(st.st_mode))
		mount("sysfs", R "/sys", "sysfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
	for (size_t i = 0; i < sizeof agent / sizeof *agent; i++)
		if (umount2(agent[i], MNT_DETACH) < 0 && errno != EINVAL)
			return -1;
	if (chdir(R) < 0 || mount(".", "/", NULL, MS_MOVE, NULL) < 0 ||
	    chroot(".") < 0 || chdir("/") < 0)
		return -1;
	return 0;
}

static __attribute__((noreturn)) void
child(struct run *r, int out, int errfd)
{
	char err[1024];
	struct who w;
	sigset_t none;
	int fd;

	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	for (int s = 1; s < NSIG; s++)
		signal(s, SIG_DFL);
	setsid();
	dup2(out, 1);
	dup2(errfd, 2);
	if (enter_root(r) < 0) {
		dprintf(2, "hypr-init: step root: %s\n", strerror(errno));
		_exit(125);
	}
	fd = open("/dev/null", O_RDONLY);
	if (fd < 0)
		fd = open("/", O_RDONLY | O_DIRECTORY);	/* any fd 0 rather than none */
	dup2(fd, 0);
	if (fd > 2)
		close(fd);
	if (resolve_user(r->user, &w, err, sizeof err) < 0) {
		dprintf(2, "%s\n", err);
		_exit(125);
	}
	if (r->cwd && *r->cwd) {
		char p[4096];
		snprintf(p, sizeof p, "%s", r->cwd);
		for (char *s = p + 1; *s; s++)
			if (*s == '/') {
				*s = 0;
				mkdir(p, 0755);
				*s = '/';
			}
		mkdir(p, 0755);
		if (chdir(p) < 0) {
			dprintf(2, "hypr-init: workdir %s: %s\n", p, strerror(errno));
			_exit(125);
		}
	}
	if (drop_bounding_caps() < 0) {
		dprintf(2, "hypr-init: capabilities: %s\n", strerror(errno));
		_exit(125);
	}
	if (setgroups((size_t)w.ngroups, w.groups) < 0 || setgid(w.gid) < 0 || setuid(w.uid) < 0) {
		dprintf(2, "hypr-init: user %s: %s\n", r->user ? r->user : "0", strerror(errno));
		_exit(125);
	}
	if (w.uid == 0 && set_root_caps() < 0) {
		dprintf(2, "hypr-init: capabilities: %s\n", strerror(errno));
		_exit(125);
	}
	if (!has_env(r->env, "PATH"))
		push(&r->env, &r->nenv, strdup("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"));
	if (!has_env(r->env, "HOME")) {
		char h[600];
		snprintf(h, sizeof h, "HOME=%s", w.home);
		push(&r->env, &r->nenv, strdup(h));
	}
	if (!has_env(r->env, "HOSTNAME") && r->hostname) {
		char h[600];
		snprintf(h, sizeof h, "HOSTNAME=%s", r->hostname);
		push(&r->env, &r->nenv, strdup(h));
	}
	environ = r->env;
	execvp(r->argv[0], r->argv);
	dprintf(2, "hypr-init: exec %s: %s\n", r->argv[0], strerror(errno));
	_exit(errno == ENOENT ? 127 : 126);
}

static int sigfd = -1;

/* Under 1% or 4 MiB free on the layers' filesystem: a failed step most
 * likely ran out of space there. */
static int
disk_full(void)
{
	struct statfs sf;

	if (statfs(L, &sf) < 0)
		return 0;
	return (uint64_t)sf.f_bavail * (uint64_t)sf.f_bsize < (4ull << 20) ||
	    sf.f_bavail < sf.f_blocks / 100;
}

static int
pump(int fd, int type, uint32_t step, char *buf, size_t cap)
{
	ssize_t n = read(fd, buf, cap);

	if (n > 0) {
		send_frame(type, step, buf, (size_t)n);
		return 1;
	}
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return 0;
	return -1;	/* EOF */
}

static void
do_run(uint32_t step, unsigned char *p, size_t n)
{
	static char buf[65536];
	struct run r;
	char err[1024];
	int po[2], pe[2], status = 0, done = 0;
	unsigned layer = nlayers + 1;
	pid_t pid;
	struct pollfd pf[3];
	unsigned char st[8];
	double t0 = now(), t1, t2;

	if (parse_run(p, n, &r) < 0) {
		send_error(step, "RUN: malformed request");
		return;
	}
	if (layer > HYPR_PROTO_MAX_LAYERS) {
		send_error(step, "RUN: more than %d layers", HYPR_PROTO_MAX_LAYERS);
		free_run(&r);
		return;
	}
	if (r.time_ns > 0) {
		struct timespec ts = { r.time_ns / 1000000000LL, r.time_ns % 1000000000LL };
		clock_settime(CLOCK_REALTIME, &ts);
	}
	if (step_root(layer, &r, err, sizeof err) < 0) {
		umount2(R, MNT_DETACH);
		send_error(step, "RUN: %s", err);
		free_run(&r);
		return;
	}
	nlayers = layer;
	t1 = now();
	if (pipe2(po, O_CLOEXEC) < 0 || pipe2(pe, O_CLOEXEC) < 0)
		fatal("pipe: %s", strerror(errno));
	pid = fork();
	if (pid < 0)
		fatal("fork: %s", strerror(errno));
	if (pid == 0)
		child(&r, po[1], pe[1]);
	close(po[1]);
	close(pe[1]);
	fcntl(po[0], F_SETFL, O_NONBLOCK);
	fcntl(pe[0], F_SETFL, O_NONBLOCK);
	pf[0] = (struct pollfd){ .fd = po[0], .events = POLLIN };
	pf[1] = (struct pollfd){ .fd = pe[0], .events = POLLIN };
	pf[2] = (struct pollfd){ .fd = sigfd, .events = POLLIN };
	while (!done || pf[0].fd >= 0 || pf[1].fd >= 0) {
		if (poll(pf, 3, -1) < 0 && errno != EINTR)
			fatal("poll: %s", strerror(errno));
		for (int i = 0; i < 2; i++)
			if (pf[i].fd >= 0 && (pf[i].revents & (POLLIN | POLLHUP | POLLERR))) {
				if (pump(pf[i].fd, i ? HYPR_MSG_STDERR : HYPR_MSG_STDOUT, step, buf, sizeof buf) < 0) {
					close(pf[i].fd);
					pf[i].fd = -1;
				}
			}
		if (pf[2].revents & POLLIN) {
			struct signalfd_siginfo si;
			pid_t w;
			int s;
			(void)!read(sigfd, &si, sizeof si);
			while ((w = waitpid(-1, &s, WNOHANG)) > 0)
				if (w == pid) {
					done = 1;
					status = WIFEXITED(s) ? WEXITSTATUS(s) : 128 + WTERMSIG(s);
				}
		}
		if (done && (pf[0].fd >= 0 || pf[1].fd >= 0)) {
			/* The step is over: whatever it left behind dies now; drain
			 * what they wrote (EOF comes once every writer is gone). */
			kill(-1, SIGKILL);
			for (int i = 0; i < 2; i++) {
				if (pf[i].fd < 0)
					continue;
				fcntl(pf[i].fd, F_SETFL, 0);
				while (pump(pf[i].fd, i ? HYPR_MSG_STDERR : HYPR_MSG_STDOUT, step, buf, sizeof buf) > 0)
					;
				close(pf[i].fd);
				pf[i].fd = -1;
			}
		}
	}
	t2 = now();
	kill(-1, SIGKILL);
	while (waitpid(-1, NULL, 0) > 0 || errno == EINTR)
		;
	{
		struct signalfd_siginfo si;
		while (read(sigfd, &si, sizeof si) > 0)
			;
	}
	if (umount2(R, MNT_DETACH) < 0)
		logmsg("umount %s: %s", R, strerror(errno));
	free_run(&r);
	if (debug)
		logmsg("step %u: setup %.1f ms, command %.1f ms, teardown %.1f ms", layer,
		    (t1 - t0) * 1e3, (t2 - t1) * 1e3, (now() - t2) * 1e3);
	hypr_proto_put32(st, (uint32_t)status);
	hypr_proto_put32(st + 4, status && disk_full() ? HYPR_EXIT_DISK_FULL : 0);
	send_frame(HYPR_MSG_EXIT, step, st, 8);
}

/* ---- DIFF, IMPORT ---- */

static void
do_diff(uint32_t step, unsigned char *p, size_t n)
{
	char dir[64], err[1024];
	uint64_t len = 0, off;
	int64_t epoch;
	unsigned char rep[8];

	if (n < 16) {
		send_error(step, "DIFF: malformed request");
		return;
	}
	epoch = (int64_t)hypr_proto_get64(p);
	off = hypr_proto_get64(p + 8);
	if (outdisk < 0) {
		send_error(step, "DIFF: no out disk");
		return;
	}
	if (nlayers == 0) {
		send_error(step, "DIFF: no layer yet");
		return;
	}
	if (off % 4096) {
		send_error(step, "DIFF: offset %llu not 4096-aligned", (unsigned long long)off);
		return;
	}
	snprintf(dir, sizeof dir, L "/%u", nlayers);
	double t0 = now();
	if (guest_diff(dir, outdisk, off, epoch, &len, err, sizeof err) < 0) {
		send_error(step, "DIFF: %s", err);
		return;
	}
	if (debug)
		logmsg("diff of layer %u: %llu bytes in %.1f ms", nlayers, (unsigned long long)len,
		    (now() - t0) * 1e3);
	hypr_proto_put64(rep, len);
	send_frame(HYPR_MSG_DIFFDONE, step, rep, 8);
}

static void
do_import(uint32_t step, unsigned char *p, size_t n)
{
	char dir[64], err[1024];
	uint64_t off, len;
	unsigned layer = nlayers + 1;

	if (n < 16) {
		send_error(step, "IMPORT: malformed request");
		return;
	}
	off = hypr_proto_get64(p);
	len = hypr_proto_get64(p + 8);
	if (indisk < 0) {
		send_error(step, "IMPORT: no in disk");
		return;
	}
	if (layer > HYPR_PROTO_MAX_LAYERS) {
		send_error(step, "IMPORT: more than %d layers", HYPR_PROTO_MAX_LAYERS);
		return;
	}
	snprintf(dir, sizeof dir, L "/%u", layer);
	mkdir(dir, 0755);
	snprintf(err, sizeof err, L "/w/%u", layer);
	mkdir(err, 0755);
	err[0] = 0;
	if (guest_import(indisk, off, len, dir, err, sizeof err) < 0) {
		/* the half-extracted layer must not become a lower */
		guest_rm_rf(dir);
		send_error(step, "IMPORT: %s", err);
		return;
	}
	nlayers = layer;
	send_frame(HYPR_MSG_IMPORTED, step, NULL, 0);
}

int
main(int argc, char *argv[])
{
	sigset_t mask;

	(void)argc;
	(void)argv;
	if (getpid() != 1) {
		fprintf(stderr, "hypr-init: must run as PID 1 of the build VM\n");
		return 2;
	}
	umask(022);
	sigemptyset(&mask);
	sigaddset(&mask, SIGCHLD);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	sigfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
	boot();
	for (;;) {
		unsigned char h[HYPR_PROTO_HDR], *p = NULL;
		uint32_t len, step;
		int type;

		if (read_all(ctl, h, sizeof h) < 0)
			fatal("control port closed");
		len = hypr_proto_get32(h);
		type = h[4];
		step = hypr_proto_get32(h + 5);
		if (len > HYPR_PROTO_MAX)
			fatal("frame of %u bytes", len);
		if (len && (!(p = malloc(len)) || read_all(ctl, p, len) < 0))
			fatal("control port: short frame");
		switch (type) {
		case HYPR_MSG_RUN: do_run(step, p, len); break;
		case HYPR_MSG_DIFF: do_diff(step, p, len); break;
		case HYPR_MSG_IMPORT: do_import(step, p, len); break;
		case HYPR_MSG_QUIT:
			free(p);
			sync();
			send_frame(HYPR_MSG_BYE, step, NULL, 0);
			poweroff();
		default:
			send_error(step, "unknown frame type %d", type);
		}
		free(p);
	}
}
