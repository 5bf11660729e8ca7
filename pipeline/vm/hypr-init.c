/* hypr-init - PID 1 of the hypr build VM (static; see hypr-guest(7)).
 *
 * Finds its disks by virtio serial and its control port by name, mounts the
 * base squashfs and the layers' disk, configures the network when the VM
 * has one, then serves RUN, DIFF, IMPORT, MOUNTDATA and QUIT frames on the
 * port. Layer n lives in /L/n; a step (step.c) mounts an overlay at /R with
 * lowers n-1..1, the init layer "i" and the base "b". */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <linux/fs.h>
#include <linux/loop.h>
#include <arpa/inet.h>
#include <net/if.h>
#include <net/route.h>
#include <netinet/in.h>
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

#include "clock.h"
#include "guest.h"
#include "vm_proto.h"

#define VERSION "1"
#define MAX_CACHES 32		/* cache mount disks: serial cache0.. */

extern char **environ;

int ctl = -1;			/* the hypr.ctl port */
static int iodisk = -1;		/* diffs out, imports in (hypr-guest(7)) */
static char basedev[512], scratchdev[512], cachedev[MAX_CACHES][512];
static unsigned nlayers;
static int scratch_early;	/* hypr.snapfs=1: scratch mounted before the snapshot point */
static int snapbase;		/* hypr.snapbase=1: the snapshot point is after the base */
static uint64_t limit_blocks;	/* the build's limit on it (GO), in f_bsize blocks; 0 none */
int debug;

void
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

void
poweroff(void)
{
	sync();
	reboot(RB_AUTOBOOT);	/* with -no-reboot QEMU exits */
	for (;;)
		pause();
}

void
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

int
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

int
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

void
send_frame(int type, uint32_t step, const void *p, size_t n)
{
	unsigned char h[HYPR_PROTO_HDR];

	hypr_proto_put32(h, (uint32_t)n);
	h[4] = (unsigned char)type;
	hypr_proto_put32(h + 5, step);
	if (write_all(ctl, h, sizeof h) < 0 || (n && write_all(ctl, p, n) < 0))
		fatal("control port: write: %s", strerror(errno));
}

void
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

int
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

void
guest_seterr(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}


/* ---- boot ---- */

static void
find_port(void)
{
	double t0 = hypr_now();

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
		if (hypr_now() - t0 > 20)
			fatal("no virtio port named %s", HYPR_PROTO_PORT);
		usleep(2000);
	}
}

/* Disks by virtio serial; wait until the host's count (hypr.disks=N) shows. */
static void
find_disks(int want)
{
	double t0 = hypr_now();

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
			else if (!strcmp(serial, "io") && iodisk < 0)
				iodisk = open(p, O_RDWR | O_DIRECT | O_CLOEXEC);
			else if (!strncmp(serial, "cache", 5) && atoi(serial + 5) < MAX_CACHES)
				snprintf(cachedev[atoi(serial + 5)], sizeof cachedev[0], "%s", p);
		}
		if (d)
			closedir(d);
		if (found >= want)
			return;
		if (hypr_now() - t0 > 20)
			fatal("found %d of %d disks", found, want);
		if (iodisk >= 0)
			close(iodisk);
		iodisk = -1;
		basedev[0] = scratchdev[0] = 0;
		memset(cachedev, 0, sizeof cachedev);
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

void
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

static int
set_addr(int s, unsigned long req, const char *ifn, const char *ip)
{
	struct ifreq ifr = { 0 };
	struct sockaddr_in *sin = (struct sockaddr_in *)&ifr.ifr_addr;

	snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "%s", ifn);
	sin->sin_family = AF_INET;
	if (inet_pton(AF_INET, ip, &sin->sin_addr) != 1)
		return -1;
	return ioctl(s, req, &ifr);
}

/* The VM's network, when the host gave it one (a step asked for it): QEMU
 * user networking's address, route and DNS (10.0.2.15, .2, .3). Steps
 * without the network never see it: they get a namespace of their own. */
static void
net_up(void)
{
	struct ifreq ifr = { 0 };
	struct rtentry rt = { 0 };
	struct sockaddr_in *a;
	int s;

	if (access("/sys/class/net/eth0", F_OK) < 0)
		return;
	if ((s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0)) < 0)
		fatal("network: socket: %s", strerror(errno));
	snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "eth0");
	if (set_addr(s, SIOCSIFADDR, "eth0", GUEST_IP) < 0 ||
	    set_addr(s, SIOCSIFNETMASK, "eth0", "255.255.255.0") < 0 ||
	    ioctl(s, SIOCGIFFLAGS, &ifr) < 0)
		fatal("network: eth0: %s", strerror(errno));
	ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
	if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0)
		fatal("network: eth0 up: %s", strerror(errno));
	a = (struct sockaddr_in *)&rt.rt_gateway;
	a->sin_family = AF_INET;
	inet_pton(AF_INET, GUEST_GW, &a->sin_addr);
	((struct sockaddr_in *)&rt.rt_dst)->sin_family = AF_INET;
	((struct sockaddr_in *)&rt.rt_genmask)->sin_family = AF_INET;
	rt.rt_flags = RTF_UP | RTF_GATEWAY;
	if (ioctl(s, SIOCADDRT, &rt) < 0)
		fatal("network: default route: %s", strerror(errno));
	close(s);
	if (debug)
		logmsg("eth0 %s via %s", GUEST_IP, GUEST_GW);
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

/* The layers' file system: the ext4 scratch disk if the host gave one
 * (user.* xattrs, no RAM bound), else tmpfs (6.1 tmpfs has trusted.* but
 * no user.*). */
static void
mount_scratch(void)
{
	if (scratchdev[0]) {
		if (mount(scratchdev, L, "ext4", MS_NOATIME, "noinit_itable") < 0)
			fatal("mount scratch %s: %s", scratchdev, strerror(errno));
	} else if (mount("tmpfs", L, "tmpfs", 0, "mode=0755,size=90%") < 0)
		fatal("mount " L ": %s", strerror(errno));
}

/* Leave limit bytes free on L: ext4 keeps its reserved clusters (sysfs)
 * from every writer, as it keeps them for its own metadata; statfs leaves
 * them out of what is available. Allocating the rest to a file took 0.25 s
 * for 50 GiB under TCG; this takes none. */
static void
set_limit(uint64_t limit)
{
	struct statfs sf;
	uint64_t avail, resv;
	char p[sizeof scratchdev + 64], v[32];
	const char *dev = strrchr(scratchdev, '/');

	if (statfs(L, &sf) < 0)
		fatal("statfs " L ": %s", strerror(errno));
	avail = (uint64_t)sf.f_bavail * (uint64_t)sf.f_bsize;
	limit_blocks = limit / (uint64_t)sf.f_bsize;
	if (avail <= limit)
		return;
	snprintf(p, sizeof p, "/sys/fs/ext4/%s/reserved_clusters", dev ? dev + 1 : scratchdev);
	if (read_line(p, v, sizeof v) < 0)
		fatal("%s: %s", p, strerror(errno));
	resv = strtoull(v, NULL, 10) + (avail - limit) / (uint64_t)sf.f_bsize;
	snprintf(v, sizeof v, "%llu", (unsigned long long)resv);
	if (write_file(p, v) < 0)
		fatal("setting the build's disk limit (%s = %s): %s", p, v, strerror(errno));
}

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
	const char *devs[2 + MAX_CACHES];
	uint64_t limit = 0;
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
	if (mount("tmpfs", "/run", "tmpfs", 0, "mode=0755,size=1m") < 0)
		fatal("mount /run: %s", strerror(errno));
	if (mknodes() < 0)
		fatal("/run/dev: %s", strerror(errno));
	mkdir("/w", 0700);	/* a step's own tmpfs (secrets, rw binds) */
	mkdir("/C", 0755);
	lo_up();
	/* a snapshot's guest has the scratch fs mounted (80 ms under TCG),
	 * written out, so that a copy of the disk is what it knows */
	scratch_early = cmdline_int("hypr.snapfs", 0) && scratchdev[0];
	if (scratch_early) {
		mount_scratch();
		sync_layers();
	}
	snapbase = cmdline_int("hypr.snapbase", 0) && basedev[0];
	for (int k = 0; k < MAX_CACHES; k++)
		devs[2 + k] = cachedev[k];
	/* mounted: the scratch disk's cache is the copy's contents; the base
	 * is the very one it was saved with */
	devs[0] = snapbase ? "" : basedev;
	devs[1] = scratch_early ? "" : scratchdev;
	if (cmdline_int("hypr.snap", 0) && !snapbase)
		limit = snapshot_point(devs, sizeof devs / sizeof *devs);
	if (!scratch_early)
		mount_scratch();
	mkdir(L "/b", 0755);
	mkdir(L "/w", 0755);
	if (basedev[0] && mount(basedev, L "/b", "squashfs", MS_RDONLY, NULL) < 0)
		fatal("mount base %s: %s", basedev, strerror(errno));
	make_init_layer();
	if (snapbase)
		limit = snapshot_base(devs, sizeof devs / sizeof *devs,
		    cmdline_int("hypr.warm", 0));
	if (scratch_early && limit)
		set_limit(limit);
	mkdir(L "/M", 0755);	/* RUN --mount=type=bind sources */
	for (int k = 0; k < MAX_CACHES; k++) {
		char c[32];
		if (!cachedev[k][0])
			continue;
		snprintf(c, sizeof c, "/C/%d", k);
		mkdir(c, 0755);
		if (mount(cachedev[k], c, "ext4", MS_NOATIME | MS_NODEV | MS_NOSUID, "noinit_itable") < 0)
			fatal("mount cache %s: %s", cachedev[k], strerror(errno));
	}
	net_up();
	if (debug)
		logmsg("ready: base=%s io=%d", basedev[0] ? basedev : "none", iodisk);
	send_frame(HYPR_MSG_READY, 0, "hypr-init " VERSION, strlen("hypr-init " VERSION));
	/* TCG: on the other vCPU, while the host imports (the fork alone
	 * costs 30 to 45 ms under TCG: after READY, the host's work goes on) */
	if (cmdline_int("hypr.warm", 0) && basedev[0])
		step_warm();
}
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

int sigfd = -1;

/* Under 1% (of the limit, if any) or 4 MiB free on the layers'
 * filesystem: a failed step most likely ran out of space there. */
static int
disk_full(void)
{
	struct statfs sf;

	if (statfs(L, &sf) < 0)
		return 0;
	return (uint64_t)sf.f_bavail * (uint64_t)sf.f_bsize < (4ull << 20) ||
	    sf.f_bavail < (limit_blocks ? limit_blocks : sf.f_blocks) / 100;
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
	double t0 = hypr_now(), t1, t2;

	if (run_parse(p, n, &r) < 0) {
		run_free(&r);
		send_error(step, "RUN: malformed request");
		return;
	}
	if (layer > HYPR_PROTO_MAX_LAYERS) {
		send_error(step, "RUN: more than %d layers", HYPR_PROTO_MAX_LAYERS);
		run_free(&r);
		return;
	}
	if (r.time_ns > 0) {
		struct timespec ts = { r.time_ns / 1000000000LL, r.time_ns % 1000000000LL };
		clock_settime(CLOCK_REALTIME, &ts);
	}
	if (step_root(layer, &r, err, sizeof err) < 0) {
		umount2(R, MNT_DETACH);
		send_error(step, "RUN: %s", err);
		run_free(&r);
		return;
	}
	nlayers = layer;
	t1 = hypr_now();
	if (pipe2(po, O_CLOEXEC) < 0 || pipe2(pe, O_CLOEXEC) < 0)
		fatal("pipe: %s", strerror(errno));
	pid = fork();
	if (pid < 0)
		fatal("fork: %s", strerror(errno));
	if (pid == 0) {
		struct child_io io = { .in = -1, .out = po[1], .err = pe[1], .status = -1 };
		step_child(&r, &io);
	}
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
	t2 = hypr_now();
	kill(-1, SIGKILL);
	while (waitpid(-1, NULL, 0) > 0 || errno == EINTR)
		;
	{
		struct signalfd_siginfo si;
		while (read(sigfd, &si, sizeof si) > 0)
			;
	}
	step_unmount();
	run_free(&r);
	if (debug)
		logmsg("step %u: setup %.1f ms, command %.1f ms, teardown %.1f ms", layer,
		    (t1 - t0) * 1e3, (t2 - t1) * 1e3, (hypr_now() - t2) * 1e3);
	hypr_proto_put32(st, (uint32_t)status);
	hypr_proto_put32(st + 4, status && disk_full() ? HYPR_EXIT_DISK_FULL : 0);
	send_frame(HYPR_MSG_EXIT, step, st, 8);
}

/* ---- DIFF, IMPORT ---- */

static void
do_diff(uint32_t step, unsigned char *p, size_t n)
{
	char dir[64], err[1024];
	uint64_t len = 0, off, end;
	int64_t epoch;
	unsigned char rep[8];

	if (n < 24) {
		send_error(step, "DIFF: malformed request");
		return;
	}
	epoch = (int64_t)hypr_proto_get64(p);
	off = hypr_proto_get64(p + 8);
	end = hypr_proto_get64(p + 16);
	if (iodisk < 0) {
		send_error(step, "DIFF: no io disk");
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
	double t0 = hypr_now();
	if (guest_diff(dir, iodisk, off, end, epoch, &len, err, sizeof err) < 0) {
		send_error(step, "DIFF: %s", err);
		return;
	}
	if (debug)
		logmsg("diff of layer %u: %llu bytes in %.1f ms", nlayers, (unsigned long long)len,
		    (hypr_now() - t0) * 1e3);
	hypr_proto_put64(rep, len);
	send_frame(HYPR_MSG_DIFFDONE, step, rep, 8);
}

/* A squashfs image at [off, +len) of the io disk mounted read-only at dir
 * through a loop device over that range (autoclear: gone with the mount).
 * The host keeps the range for the VM's life. */
static int
mount_squashfs(uint64_t off, uint64_t len, const char *dir, char *err, size_t errlen)
{
	struct loop_config lc = { .fd = (uint32_t)iodisk };
	char dev[32];
	int cfd, lfd, n;

	if ((cfd = open("/dev/loop-control", O_RDWR | O_CLOEXEC)) < 0) {
		guest_seterr(err, errlen, "/dev/loop-control: %s", strerror(errno));
		return -1;
	}
	n = ioctl(cfd, LOOP_CTL_GET_FREE);
	close(cfd);
	if (n < 0) {
		guest_seterr(err, errlen, "no free loop device: %s", strerror(errno));
		return -1;
	}
	snprintf(dev, sizeof dev, "/dev/loop%d", n);
	if ((lfd = open(dev, O_RDONLY | O_CLOEXEC)) < 0) {
		guest_seterr(err, errlen, "%s: %s", dev, strerror(errno));
		return -1;
	}
	lc.info.lo_offset = off;
	lc.info.lo_sizelimit = len;
	lc.info.lo_flags = LO_FLAGS_READ_ONLY | LO_FLAGS_AUTOCLEAR;
	if (ioctl(lfd, LOOP_CONFIGURE, &lc) < 0) {
		guest_seterr(err, errlen, "%s: LOOP_CONFIGURE: %s", dev, strerror(errno));
		close(lfd);
		return -1;
	}
	if (mount(dev, dir, "squashfs", MS_RDONLY | MS_NODEV, NULL) < 0) {
		guest_seterr(err, errlen, "mount squashfs layer: %s", strerror(errno));
		ioctl(lfd, LOOP_CLR_FD);
		close(lfd);
		return -1;
	}
	close(lfd);	/* the mount holds it */
	return 0;
}

static void
do_import(uint32_t step, unsigned char *p, size_t n)
{
	char dir[64], err[1024];
	uint64_t off, len;
	uint32_t flags;
	unsigned layer = nlayers + 1;
	int rc;
	double t0 = hypr_now();

	if (n < 16) {
		send_error(step, "IMPORT: malformed request");
		return;
	}
	off = hypr_proto_get64(p);
	len = hypr_proto_get64(p + 8);
	flags = n >= 20 ? hypr_proto_get32(p + 16) : 0;
	if (iodisk < 0) {
		send_error(step, "IMPORT: no io disk");
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
	if (flags & HYPR_IMPORT_SQUASHFS)
		rc = mount_squashfs(off, len, dir, err, sizeof err);
	else
		rc = guest_import(iodisk, off, len, dir, err, sizeof err);
	if (rc < 0) {
		/* the half-extracted layer must not become a lower */
		guest_rm_rf(dir);
		send_error(step, "IMPORT: %s", err);
		return;
	}
	if (debug)
		logmsg("import of layer %u (%s): %llu bytes in %.1f ms", layer,
		    flags & HYPR_IMPORT_SQUASHFS ? "squashfs" : "tar", (unsigned long long)len,
		    (hypr_now() - t0) * 1e3);
	nlayers = layer;
	send_frame(HYPR_MSG_IMPORTED, step, NULL, 0);
}

/* RUN --mount data: a tar from the io disk extracted into /L/M/NAME (a
 * bind source) or into cache disk K's root (seeding a new cache). */
static void
do_mountdata(uint32_t step, unsigned char *p, size_t n)
{
	char dir[96], err[1024], name[64];
	uint64_t off, len;

	if (n < 17 || n - 16 >= sizeof name) {
		send_error(step, "MOUNTDATA: malformed request");
		return;
	}
	off = hypr_proto_get64(p);
	len = hypr_proto_get64(p + 8);
	memcpy(name, p + 16, n - 16);
	name[n - 16] = 0;
	if (strchr(name, '/') || name[0] == '.' || !name[0]) {
		send_error(step, "MOUNTDATA: bad name");
		return;
	}
	if (!strncmp(name, "cache", 5))
		snprintf(dir, sizeof dir, "/C/%d", atoi(name + 5));
	else
		snprintf(dir, sizeof dir, L "/M/%s", name);
	mkdir(dir, 0755);
	err[0] = 0;
	if (iodisk < 0 || guest_import(iodisk, off, len, dir, err, sizeof err) < 0) {
		if (strncmp(name, "cache", 5))
			guest_rm_rf(dir);
		send_error(step, "MOUNTDATA: %s", iodisk < 0 ? "no io disk" : err);
		return;
	}
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
		case HYPR_MSG_MOUNTDATA: do_mountdata(step, p, len); break;
		case HYPR_MSG_START:	/* hypr run: for good */
			/* a runtime VM has a scratch disk only to keep its
			 * writable layer */
			durable_upper = scratchdev[0] != 0;
			runtime(step, p, len);
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
