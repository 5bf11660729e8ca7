/* vm.c - the build VM, host side: QEMU microvm launch, accel choice, protocol.
 *
 * QEMU gets one end of a socketpair as its control chardev (no filesystem
 * sockets, no connect race), raw sparse files as the "out" and "in" disks,
 * and is killed by PR_SET_PDEATHSIG if this process dies. Every wait has a
 * deadline; on any error QEMU is killed. Guest side: pipeline/vm/hypr-init.c,
 * protocol: hypr-guest(7). */
#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/kvm.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <x86intrin.h>

#include <jansson.h>

#include "clock.h"
#include "fsutil.h"
#include "vm.h"
#include "vm_proto.h"

#ifndef HYPR_LIBEXECDIR
#define HYPR_LIBEXECDIR "/usr/local/lib/hypr"
#endif

#define DISK_SIZE (64ull << 30)	/* sparse in disk; default build disk limit */
#define DISK_MIN (64ull << 20)	/* smallest build disk worth booting */

struct hypr_vm {
	pid_t pid;
	int pidfd;
	int sock;
	int qmp;		/* QEMU's monitor (QMP): events, query-status */
	char *qbuf;		/* partial QMP line */
	size_t qlen;
	char ioerr[256];	/* first disk error QEMU reported, or "" */
	int paused;		/* QEMU stopped the guest (STOP event) */
	char pause_why[64];
	char *dir;		/* private temp dir: disks, logs */
	int iofd;		/* io disk: [0, in_base) diffs out, [in_base, +DISK_SIZE) in */
	uint64_t in_base;
	int scratch;		/* layers on an ext4 disk (else guest tmpfs) */
	char accel[4];
	int canary;		/* KVM canary boot: 0 none, 1 passed, -1 failed */
	uint64_t disk;		/* scratch (build) disk size */
	uint64_t out_size;	/* out region: a diff of a full build disk fits */
	int disk_full;		/* the last RUN left the build disk full */
	uint32_t step;
	int dead;
	unsigned char *rbuf;	/* frame reader */
	size_t rlen, rcap;
	double boot_secs;
	int booting;		/* launched, READY not yet read (hypr_vm_ready) */
	double t0, boot_deadline;
	int watch_fd;		/* hypr_vm_opts.watch_fd, or -1 */
	int cur_watch;		/* the fd the current wait watches, or -1 */
	int runtime;		/* hypr run's VM: no build disks */
	unsigned char *obuf;	/* runtime requests not yet sent */
	size_t olen, ocap;
	int held;		/* hypr_vm_next_event's frame is still in rbuf */
};


/* ---- files ---- */

static int
exists(const char *p)
{
	return access(p, R_OK) == 0;
}

/* Guest file lookup: $ENV, next to the running binary (build/bin/X ->
 * build/vm/NAME; build/vm/X -> build/vm/NAME), then HYPR_LIBEXECDIR. */
static int
find_guest_file(const char *env, const char *name, char *out, size_t cap,
    struct hypr_err *e)
{
	const char *v = getenv(env);
	char exe[PATH_MAX];
	ssize_t n;

	if (v && *v) {
		if (!exists(v))
			return hypr_err_errno(e, HYPR_EXIT_SYSTEM, "%s=%s", env, v);
		snprintf(out, cap, "%s", v);
		return 0;
	}
	n = readlink("/proc/self/exe", exe, sizeof exe - 1);
	if (n > 0) {
		char *slash;
		exe[n] = 0;
		if ((slash = strrchr(exe, '/'))) {
			*slash = 0;
			if (snprintf(out, cap, "%s/../vm/%s", exe, name) < (int)cap && exists(out))
				return 0;
		}
	}
	snprintf(out, cap, "%s/%s", HYPR_LIBEXECDIR, name);
	if (exists(out))
		return 0;
	return hypr_err_set(e, HYPR_EXIT_SYSTEM,
	    "build VM: %s not found (set %s, or run `make kernel guest`)", name, env);
}

/* The kernel, then its initramfs: HYPR_INITRD, else hypr-init.cpio next to
 * the kernel, else the usual search. Without the project's kernel, a
 * distribution kernel prepared by `make distro-kernel` (a "distro/" dir in
 * the same places) is the fallback. A kernel with a "<kernel>.distro" file
 * beside it boots in distro mode (ACPI, modules). */
static int
find_kernel(char *kernel, size_t kcap, char *initrd, size_t icap, int *distro,
    struct hypr_err *e)
{
	char marker[PATH_MAX + 16], *slash;
	struct hypr_err ignore = { 0 };

	if (find_guest_file("HYPR_KERNEL", "vmlinux", kernel, kcap, e) < 0) {
		if (getenv("HYPR_KERNEL") && *getenv("HYPR_KERNEL"))
			return -1;
		if (find_guest_file("HYPR_KERNEL", "distro/vmlinux", kernel, kcap, &ignore) < 0)
			return -1;	/* e holds the first, clearer message */
	}
	snprintf(marker, sizeof marker, "%s.distro", kernel);
	*distro = access(marker, F_OK) == 0;
	if (getenv("HYPR_INITRD") && *getenv("HYPR_INITRD"))
		return find_guest_file("HYPR_INITRD", "hypr-init.cpio", initrd, icap, e);
	snprintf(initrd, icap, "%s", kernel);
	if ((slash = strrchr(initrd, '/')) && (size_t)(slash - initrd) + 16 < icap) {
		strcpy(slash + 1, "hypr-init.cpio");
		if (exists(initrd))
			return 0;
	}
	return find_guest_file("HYPR_INITRD", "hypr-init.cpio", initrd, icap, e);
}

static const char *
hypr_root(char *buf, size_t cap)
{
	const char *r = getenv("HYPR_ROOT");
	const char *x;

	if (r && *r)
		return r;
	if (geteuid() == 0)
		return "/var/lib/hypr";
	if ((x = getenv("XDG_DATA_HOME")) && *x)
		snprintf(buf, cap, "%s/hypr", x);
	else
		snprintf(buf, cap, "%s/.local/share/hypr", getenv("HOME") ? getenv("HOME") : "/tmp");
	return buf;
}

/* $HYPR_ROOT/vm/host-<boot_id>: facts valid until the host reboots. */
static void
host_fact_path(char *out, size_t cap, const char *what)
{
	char root[PATH_MAX], bid[64] = "unknown";
	int fd = open("/proc/sys/kernel/random/boot_id", O_RDONLY | O_CLOEXEC);

	if (fd >= 0) {
		ssize_t n = read(fd, bid, sizeof bid - 1);
		bid[n > 0 ? n : 0] = 0;
		bid[strcspn(bid, "\n")] = 0;
		close(fd);
	}
	if (snprintf(out, cap, "%s/vm/%s-%s", hypr_root(root, sizeof root), what, bid) >= (int)cap)
		snprintf(out, cap, "/nonexistent");
}

static int
fact_read(const char *what, char *buf, size_t cap)
{
	char p[PATH_MAX];
	int fd;
	ssize_t n;

	host_fact_path(p, sizeof p, what);
	if ((fd = open(p, O_RDONLY | O_CLOEXEC)) < 0)
		return -1;
	n = read(fd, buf, cap - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = 0;
	buf[strcspn(buf, "\n")] = 0;
	return 0;
}

static void
fact_write(const char *what, const char *val)
{
	char p[PATH_MAX], dir[PATH_MAX], *s;
	struct hypr_err e = { 0 };

	host_fact_path(p, sizeof p, what);
	snprintf(dir, sizeof dir, "%s", p);
	if ((s = strrchr(dir, '/')))
		*s = 0;
	if (hypr_mkdir_p(dir, 0755, &e) == 0)
		hypr_write_atomic(p, val, strlen(val), 0644, &e);	/* best effort */
}

/* ---- host facts: TSC rate, accelerator ---- */

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* Under TCG the guest's RDTSC returns host TSC ticks, so the guest must be
 * told the host rate or its clock runs fast (microvm.md §6). */
static uint64_t
tsc_khz(void)
{
	char buf[64];
	uint64_t k[3];

	if (fact_read("tsc-khz", buf, sizeof buf) == 0 && strtoull(buf, NULL, 10) > 0)
		return strtoull(buf, NULL, 10);
	for (int i = 0; i < 3; i++) {
		struct timespec a, b, d = { 0, 20000000 };
		uint64_t t0, t1;
		double ns;
		clock_gettime(CLOCK_MONOTONIC_RAW, &a);
		t0 = __rdtsc();
		nanosleep(&d, NULL);
		t1 = __rdtsc();
		clock_gettime(CLOCK_MONOTONIC_RAW, &b);
		ns = (double)(b.tv_sec - a.tv_sec) * 1e9 + (double)(b.tv_nsec - a.tv_nsec);
		k[i] = (uint64_t)((double)(t1 - t0) / ns * 1e6);
	}
	qsort(k, 3, sizeof *k, cmp_u64);
	snprintf(buf, sizeof buf, "%llu\n", (unsigned long long)k[1]);
	fact_write("tsc-khz", buf);
	return k[1];
}

/* The cheap part of the KVM cascade (microvm.md §7, steps 2-4). */
static int
kvm_plausible(void)
{
	pid_t pid;
	int st;

	if (access("/dev/kvm", R_OK | W_OK) < 0)
		return 0;
	if (access("/sys/module/kvm_pvm", F_OK) == 0)
		return 0;
	if (access("/sys/module/kvm_intel", F_OK) < 0 && access("/sys/module/kvm_amd", F_OK) < 0)
		return 0;
	pid = fork();
	if (pid < 0)
		return 0;
	if (pid == 0) {
		int fd, vm, cpu;
		alarm(1);
		fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
		if (fd < 0 || ioctl(fd, KVM_GET_API_VERSION, 0) != KVM_API_VERSION)
			_exit(1);
		vm = ioctl(fd, KVM_CREATE_VM, 0);
		if (vm < 0)
			_exit(1);
		cpu = ioctl(vm, KVM_CREATE_VCPU, 0);
		_exit(cpu < 0);
	}
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	return WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

/* ---- frames ---- */

static int
send_frame(struct hypr_vm *vm, int type, const void *p, size_t n, struct hypr_err *e)
{
	unsigned char h[HYPR_PROTO_HDR];

	hypr_proto_put32(h, (uint32_t)n);
	h[4] = (unsigned char)type;
	hypr_proto_put32(h + 5, vm->step);
	if (hypr_write_all(vm->sock, h, sizeof h) < 0 ||
	    (n && hypr_write_all(vm->sock, p, n) < 0))
		return hypr_err_errno(e, HYPR_EXIT_SYSTEM, "build VM: control port");
	return 0;
}

static void
console_tail(struct hypr_vm *vm, char *out, size_t cap)
{
	char p[PATH_MAX], buf[4096];
	const char *files[] = { "console.log", "qemu.log" };

	out[0] = 0;
	for (int f = 0; f < 2 && !out[0]; f++) {
		int fd;
		ssize_t n;
		off_t sz;
		snprintf(p, sizeof p, "%s/%s", vm->dir, files[f]);
		if ((fd = open(p, O_RDONLY | O_CLOEXEC)) < 0)
			continue;
		sz = lseek(fd, 0, SEEK_END);
		n = pread(fd, buf, sizeof buf - 1, sz > (off_t)sizeof buf - 1 ? sz - (off_t)sizeof buf + 1 : 0);
		close(fd);
		if (n <= 0)
			continue;
		buf[n] = 0;
		while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
			buf[--n] = 0;
		char *last = strrchr(buf, '\n');
		if (snprintf(out, cap, "%s", last ? last + 1 : buf) >= (int)cap)
			out[cap - 1] = 0;
		for (char *s = out; *s; s++)
			if (*s == '\r' || *s == '\n')
				*s = ' ';
	}
}

static void
vm_reap(struct hypr_vm *vm, int kill_it)
{
	if (vm->pid > 0) {
		if (kill_it)
			kill(vm->pid, SIGKILL);
		while (waitpid(vm->pid, NULL, 0) < 0 && errno == EINTR)
			;
		vm->pid = -1;
	}
	vm->dead = 1;
}

/* What to call it in errors: a build's VM or hypr run's. */
static const char *
vm_name(const struct hypr_vm *vm)
{
	return vm->runtime ? "VM" : "build VM";
}

/* Why QEMU is gone (or must go): fills e and kills it. */
static int
vm_fail(struct hypr_vm *vm, struct hypr_err *e, int code, const char *what)
{
	char tail[512];

	vm_reap(vm, 1);
	if (vm->ioerr[0])
		return hypr_err_set(e, code, "%s: %s: %s", vm_name(vm), what, vm->ioerr);
	console_tail(vm, tail, sizeof tail);
	if (tail[0])
		return hypr_err_set(e, code, "%s: %s (last output: %s)", vm_name(vm), what, tail);
	return hypr_err_set(e, code, "%s: %s", vm_name(vm), what);
}

/* ---- QMP: the guest's disk errors and pauses, as QEMU sees them ---- */

static void
qmp_send(struct hypr_vm *vm, const char *cmd)
{
	if (vm->qmp >= 0)
		(void)!write(vm->qmp, cmd, strlen(cmd));
}

static void
qmp_line(struct hypr_vm *vm, const char *line)
{
	json_t *j = json_loads(line, 0, NULL), *d;
	const char *ev, *st;

	if (!j)
		return;
	ev = json_string_value(json_object_get(j, "event"));
	d = json_object_get(j, "data");
	if (ev && !strcmp(ev, "BLOCK_IO_ERROR") && !vm->ioerr[0]) {
		const char *dev = json_string_value(json_object_get(d, "device"));
		const char *why = json_string_value(json_object_get(d, "reason"));
		if (!dev || !*dev)
			dev = json_string_value(json_object_get(d, "node-name"));
		/* "nospace" comes only where QEMU tracks io-status */
		if (json_is_true(json_object_get(d, "nospace")) ||
		    (why && strstr(why, "No space left")))
			snprintf(vm->ioerr, sizeof vm->ioerr,
			    "the host disk is full (writing the build's %s disk in %s)",
			    dev ? dev : "?", vm->dir ? vm->dir : "?");
		else
			snprintf(vm->ioerr, sizeof vm->ioerr, "I/O error on the build's %s disk: %s",
			    dev ? dev : "?", why ? why : "?");
	} else if (ev && !strcmp(ev, "STOP")) {
		qmp_send(vm, "{\"execute\":\"query-status\"}\n");
	} else if ((st = json_string_value(json_object_get(json_object_get(j, "return"),
	    "status"))) && strcmp(st, "running") && strcmp(st, "prelaunch") &&
	    strcmp(st, "shutdown")) {
		vm->paused = 1;
		snprintf(vm->pause_why, sizeof vm->pause_why, "%s", st);
	}
	json_decref(j);
}

static void
qmp_read(struct hypr_vm *vm)
{
	char buf[4096];
	ssize_t n;

	while ((n = read(vm->qmp, buf, sizeof buf)) > 0) {
		char *nb = realloc(vm->qbuf, vm->qlen + (size_t)n + 1), *nl, *start;
		if (!nb)
			return;
		vm->qbuf = nb;
		memcpy(vm->qbuf + vm->qlen, buf, (size_t)n);
		vm->qlen += (size_t)n;
		vm->qbuf[vm->qlen] = 0;
		start = vm->qbuf;
		while ((nl = memchr(start, '\n', vm->qlen - (size_t)(start - vm->qbuf)))) {
			*nl = 0;
			qmp_line(vm, start);
			start = nl + 1;
		}
		vm->qlen -= (size_t)(start - vm->qbuf);
		memmove(vm->qbuf, start, vm->qlen);
		if (vm->qlen > 1 << 20)
			vm->qlen = 0;	/* a runaway line: drop it */
	}
	if (n == 0) {
		close(vm->qmp);
		vm->qmp = -1;
	}
}

/* The kernel's panic line in the console log, if the guest panicked
 * ("Kernel panic - not syncing: ..."), with what an init exit code means. */
static int
console_panic(struct hypr_vm *vm, char *out, size_t cap)
{
	char p[PATH_MAX], *buf, *k, *nl;
	const char *tag = "Kernel panic - not syncing: ";
	size_t bufsz = 65536;
	ssize_t n;
	off_t sz;
	int fd;
	unsigned code;

	out[0] = 0;
	snprintf(p, sizeof p, "%s/console.log", vm->dir);
	if ((fd = open(p, O_RDONLY | O_CLOEXEC)) < 0)
		return 0;
	if (!(buf = malloc(bufsz))) {
		close(fd);
		return 0;
	}
	sz = lseek(fd, 0, SEEK_END);
	n = pread(fd, buf, bufsz - 1, sz > (off_t)bufsz - 1 ? sz - (off_t)bufsz + 1 : 0);
	close(fd);
	if (n <= 0) {
		free(buf);
		return 0;
	}
	buf[n] = 0;
	for (char *s = buf; (s = memchr(s, 0, (size_t)(buf + n - s))); )
		*s = ' ';	/* NUL bytes in the log: keep searching past them */
	if (!(k = strstr(buf, tag))) {
		free(buf);
		return 0;
	}
	for (char *x; (x = strstr(k + 1, tag));)
		k = x;
	k += strlen(tag);
	if ((nl = strpbrk(k, "\r\n")))
		*nl = 0;
	if (sscanf(k, "Attempted to kill init! exitcode=%x", &code) == 1) {
		if (WIFSIGNALED(code))
			snprintf(out, cap, "the guest init (hypr-init) died of %s (%s)",
			    strsignal(WTERMSIG(code)), k);
		else
			snprintf(out, cap, "the guest init (hypr-init) exited with status %d (%s)",
			    WEXITSTATUS(code), k);
	} else {
		snprintf(out, cap, "kernel panic: %s", k);
	}
	free(buf);
	return 1;
}

/* QEMU is gone without a word from the guest: a crash. One line that says
 * so, with the kernel's panic reason or else the last console line. */
static int
vm_exited(struct hypr_vm *vm, struct hypr_err *e, const char *what)
{
	char why[512], tail[512];

	vm_reap(vm, 1);
	if (console_panic(vm, why, sizeof why))
		return hypr_err_set(e, HYPR_EXIT_SYSTEM, "%s crashed (%s): %s", vm_name(vm), what, why);
	console_tail(vm, tail, sizeof tail);
	if (tail[0])
		return hypr_err_set(e, HYPR_EXIT_SYSTEM,
		    "%s crashed (%s): QEMU exited (last output: %s)", vm_name(vm), what, tail);
	return hypr_err_set(e, HYPR_EXIT_SYSTEM, "%s crashed (%s): QEMU exited", vm_name(vm), what);
}

/* Next frame, waiting until the absolute deadline (0 = none). Returns 0,
 * or -1 with the VM killed. *payload points into vm->rbuf until the next call. */
static int
recv_frame(struct hypr_vm *vm, double deadline, int *type, unsigned char **payload,
    uint32_t *len, struct hypr_err *e, const char *what)
{
	for (;;) {
		if (vm->rlen >= HYPR_PROTO_HDR) {
			uint32_t n = hypr_proto_get32(vm->rbuf);
			if (n > HYPR_PROTO_MAX)
				return vm_fail(vm, e, HYPR_EXIT_SYSTEM, "oversized frame from the guest");
			if (vm->rlen >= HYPR_PROTO_HDR + (size_t)n) {
				*type = vm->rbuf[4];
				*len = n;
				*payload = vm->rbuf + HYPR_PROTO_HDR;
				return 0;
			}
			if (vm->rcap < HYPR_PROTO_HDR + (size_t)n) {
				size_t c = HYPR_PROTO_HDR + (size_t)n;
				unsigned char *b = realloc(vm->rbuf, c);
				if (!b)
					return vm_fail(vm, e, HYPR_EXIT_SYSTEM, "out of memory");
				vm->rbuf = b;
				vm->rcap = c;
			}
		}
		/* negative fds are ignored by poll; events 0 on the watched
		 * fd: only POLLERR (pipe reader gone) and POLLHUP come back */
		struct pollfd pf[4] = {
			{ .fd = vm->sock, .events = POLLIN },
			{ .fd = vm->pidfd, .events = POLLIN },
			{ .fd = vm->cur_watch, .events = 0 },
			{ .fd = vm->qmp, .events = POLLIN },
		};
		int ms = -1;
		if (deadline > 0) {
			double left = deadline - hypr_now();
			if (left <= 0) {
				char msg[256];
				snprintf(msg, sizeof msg, "%s: timed out", what);
				return vm_fail(vm, e, HYPR_EXIT_SYSTEM, msg);
			}
			ms = (int)(left * 1000) + 1;
		}
		int r = poll(pf, 4, ms);
		if (r < 0 && errno != EINTR)
			return vm_fail(vm, e, HYPR_EXIT_SYSTEM, "poll failed");
		if (r <= 0)
			continue;
		if (pf[3].revents & (POLLIN | POLLHUP | POLLERR)) {
			qmp_read(vm);
			if (vm->paused) {
				char msg[512];
				snprintf(msg, sizeof msg, "%s: the guest was paused by QEMU (%s)",
				    what, vm->pause_why);
				return vm_fail(vm, e, HYPR_EXIT_SYSTEM, msg);
			}
		}
		if (pf[2].revents & (POLLERR | POLLHUP | POLLNVAL)) {
			vm_reap(vm, 1);
			return hypr_err_set(e, HYPR_EXIT_SYSTEM,
			    "build VM: %s: the reader of fd %d is gone (VM killed)", what, pf[2].fd);
		}
		if (pf[0].revents & (POLLIN | POLLHUP | POLLERR)) {
			ssize_t n = recv(vm->sock, vm->rbuf + vm->rlen, vm->rcap - vm->rlen, MSG_DONTWAIT);
			if (n > 0) {
				vm->rlen += (size_t)n;
				continue;
			}
			if (n == 0 || (errno != EAGAIN && errno != EINTR))
				return vm_exited(vm, e, what);
		}
		if (pf[1].revents & POLLIN) {
			/* drain what QEMU wrote before it died, then report */
			ssize_t n;
			while (vm->rlen < vm->rcap &&
			    (n = recv(vm->sock, vm->rbuf + vm->rlen, vm->rcap - vm->rlen, MSG_DONTWAIT)) > 0)
				vm->rlen += (size_t)n;
			if (vm->rlen >= HYPR_PROTO_HDR &&
			    vm->rlen >= HYPR_PROTO_HDR + (size_t)hypr_proto_get32(vm->rbuf))
				continue;
			return vm_exited(vm, e, what);
		}
	}
}

/* Drop the frame recv_frame returned. */
static void
consume(struct hypr_vm *vm)
{
	size_t n = HYPR_PROTO_HDR + hypr_proto_get32(vm->rbuf);

	memmove(vm->rbuf, vm->rbuf + n, vm->rlen - n);
	vm->rlen -= n;
}

/* ERROR frame -> hypr_err; anything unexpected -> protocol error (VM killed). */
static int
unexpected(struct hypr_vm *vm, int type, const unsigned char *p, uint32_t n,
    struct hypr_err *e, const char *what)
{
	if (type == HYPR_MSG_ERROR) {
		uint32_t k = 0;

		/* "DIFF: why": what failed is already in what */
		while (k < n && p[k] >= 'A' && p[k] <= 'Z')
			k++;
		if (k > 0 && k + 2 <= n && p[k] == ':' && p[k + 1] == ' ') {
			p += k + 2;
			n -= k + 2;
		}
		/* QEMU reports a disk error on QMP before the guest sees it */
		if (vm->qmp >= 0)
			qmp_read(vm);
		if (vm->ioerr[0])
			hypr_err_set(e, HYPR_EXIT_SYSTEM, "build VM: %s: %.*s: %s", what, (int)n,
			    (const char *)p, vm->ioerr);
		else
			hypr_err_set(e, HYPR_EXIT_SYSTEM, "build VM: %s: %.*s", what, (int)n,
			    (const char *)p);
		consume(vm);
		return -1;
	}
	char msg[128];
	snprintf(msg, sizeof msg, "%s: unexpected frame type %d", what, type);
	return vm_fail(vm, e, HYPR_EXIT_SYSTEM, msg);
}

/* ---- start ---- */

static int
make_disk(struct hypr_vm *vm, const char *name, uint64_t size, int *fd, struct hypr_err *e)
{
	char p[PATH_MAX];

	snprintf(p, sizeof p, "%s/%s.raw", vm->dir, name);
	*fd = open(p, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (*fd < 0 || ftruncate(*fd, (off_t)size) < 0)
		return hypr_err_errno(e, HYPR_EXIT_SYSTEM, "build VM: %s", p);
	return 0;
}

/* A sparse ext4 scratch disk for the layers: tmpfs in 6.1 has no user.*
 * xattrs and is bounded by guest RAM. No journal (nothing survives the VM),
 * lazy init so the guest never zeroes inode tables under TCG. */
static int
make_scratch(struct hypr_vm *vm, struct hypr_err *e)
{
	char p[PATH_MAX];
	int fd, st;
	pid_t pid;

	snprintf(p, sizeof p, "%s/scratch.ext4", vm->dir);
	fd = open(p, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || ftruncate(fd, (off_t)vm->disk) < 0) {
		if (fd >= 0)
			close(fd);
		return hypr_err_errno(e, HYPR_EXIT_SYSTEM, "build VM: %s", p);
	}
	close(fd);
	pid = fork();
	if (pid < 0)
		return hypr_err_errno(e, HYPR_EXIT_SYSTEM, "build VM: fork");
	if (pid == 0) {
		int nul = open("/dev/null", O_RDWR | O_CLOEXEC);
		if (nul >= 0) {
			dup2(nul, 0);
			dup2(nul, 1);
		}
		execlp("mke2fs", "mke2fs", "-t", "ext4", "-q", "-F", "-O", "^has_journal",
		    "-E", "lazy_itable_init=1,lazy_journal_init=1,root_owner=0:0", "-m", "0",
		    p, (char *)NULL);
		dprintf(2, "mke2fs: %s\n", strerror(errno));
		_exit(127);
	}
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		return hypr_err_set(e, HYPR_EXIT_SYSTEM, "build VM: mke2fs %s failed (e2fsprogs installed?)", p);
	vm->scratch = 1;
	return 0;
}

static void
human(uint64_t b, char *buf, size_t n)
{
	if (b >= 1ull << 30)
		snprintf(buf, n, "%.1f GiB", (double)b / (double)(1ull << 30));
	else
		snprintf(buf, n, "%.1f MiB", (double)b / (double)(1ull << 20));
}

/* The build disk limit: given (checked against the free space, so a build
 * fails up front, not half way) or the default. The scratch and out disks
 * are sparse: only what the build writes takes space. */
static int
disk_limit(struct hypr_vm *vm, const struct hypr_vm_opts *o, struct hypr_err *e)
{
	const char *env = getenv("HYPR_BUILD_DISK");
	uint64_t want = o->disk, avail;
	struct statvfs sv;
	char h1[32], h2[32];

	if (!want && env && *env && hypr_size_parse(env, &want) < 0)
		return hypr_err_set(e, HYPR_EXIT_USAGE,
		    "HYPR_BUILD_DISK=%s: not a size (e.g. 20g)", env);
	if (statvfs(vm->dir, &sv) < 0)
		return hypr_err_errno(e, HYPR_EXIT_SYSTEM, "build VM: %s", vm->dir);
	avail = (uint64_t)sv.f_bavail * sv.f_frsize;
	human(avail, h2, sizeof h2);
	if (want) {
		human(want, h1, sizeof h1);
		if (want < DISK_MIN)
			return hypr_err_set(e, HYPR_EXIT_USAGE,
			    "build disk limit %s: at least 64 MiB", h1);
		if (want > avail)
			return hypr_err_set(e, HYPR_EXIT_SYSTEM,
			    "build disk limit %s: only %s free in %s", h1, h2, vm->dir);
		vm->disk = want;
	} else {
		vm->disk = avail / 10 * 9 < DISK_SIZE ? avail / 10 * 9 : DISK_SIZE;
		if (vm->disk < DISK_MIN)
			return hypr_err_set(e, HYPR_EXIT_SYSTEM,
			    "build VM: only %s free in %s (a build needs 64 MiB at least)", h2, vm->dir);
	}
	vm->disk &= ~(uint64_t)0xfffff;	/* whole MiB */
	/* a tar of a full build disk: data plus headers */
	vm->out_size = vm->disk + vm->disk / 8 + (64ull << 20);
	return 0;
}

static double
env_double(const char *name, double def)
{
	const char *v = getenv(name);
	char *end;
	double d;

	if (!v || !*v)
		return def;
	d = strtod(v, &end);
	return (*end || d < 0) ? def : d;
}

#define MAXARGS (64 + 4 * HYPR_VM_MAX_CACHES + 4 * HYPR_VM_MAX_SHARES)

/* A path as a QemuOpts value: every ',' doubled, else a comma in a path
 * (HYPR_ROOT, TMPDIR) would end the value and start another option.
 * -kernel, -initrd and -serial file: take their value literally (7.2). */
static int
qemu_path(char *out, size_t cap, const char *path, const char *suffix)
{
	size_t o = 0;

	for (int part = 0; part < 2; part++) {
		const char *s = part ? suffix : path;
		for (; s && *s; s++) {
			if (o + 3 > cap)
				return -1;
			if (*s == ',')
				out[o++] = ',';
			out[o++] = *s;
		}
	}
	out[o] = 0;
	return 0;
}

/* -netdev user,... with a hostfwd per port and the guestfwd rules; NULL
 * if a value cannot be passed (a comma in an address). */
static char *
netdev_opts(const struct hypr_vm_opts *o)
{
	char *s = strdup("user,id=net0"), *n;

	for (size_t k = 0; s && k < o->nfwds; k++) {
		const struct hypr_vm_fwd *f = &o->fwds[k];
		const char *ip = f->host_ip && *f->host_ip ? f->host_ip : "127.0.0.1";
		if (strchr(ip, ',') || asprintf(&n, "%s,hostfwd=%s:%s:%u-:%u", s,
		    f->udp ? "udp" : "tcp", ip, f->host_port, f->guest_port) < 0) {
			free(s);
			return NULL;
		}
		free(s);
		s = n;
	}
	for (char *const *g = o->guestfwds; s && g && *g; g++) {
		char esc[8192];
		if (qemu_path(esc, sizeof esc, *g, NULL) < 0 ||
		    asprintf(&n, "%s,guestfwd=%s", s, esc) < 0) {
			free(s);
			return NULL;
		}
		free(s);
		s = n;
	}
	return s;
}

static int
spawn(struct hypr_vm *vm, const struct hypr_vm_opts *o, const char *accel,
    double boot_timeout, struct hypr_err *e)
{
	char kernel[PATH_MAX], initrd[PATH_MAX], append[1024], serial[PATH_MAX + 16];
	char drive[5 + HYPR_VM_MAX_CACHES][2 * PATH_MAX + 128], cdev[HYPR_VM_MAX_CACHES][96];
	char chardev[64], qchardev[64], smp[32], mem[32], qlog[PATH_MAX];
	char fsdev[HYPR_VM_MAX_SHARES][2 * PATH_MAX + 96], fsdevice[HYPR_VM_MAX_SHARES][160];
	char *argv[MAXARGS], *netdev = NULL;
	const char *qemu = getenv("HYPR_QEMU") ? getenv("HYPR_QEMU") : "qemu-system-x86_64";
	int sv[2], qv[2], ndisks = 0, a = 0;
	long cpus = o->cpus > 0 ? o->cpus : (long)env_double("HYPR_VM_CPUS", 0);
	long mb = o->mem_mb > 0 ? o->mem_mb : (long)env_double("HYPR_VM_MEM", 2048);
	int debug = getenv("HYPR_VM_DEBUG") && *getenv("HYPR_VM_DEBUG") == '1';
	double t0 = hypr_now();
	int distro = 0;

	if (find_kernel(kernel, sizeof kernel, initrd, sizeof initrd, &distro, e) < 0)
		return -1;
	/* a runtime VM under TCG: one vCPU unless asked, as bringing up a
	 * second costs ~0.45 s of a ~1.4 s boot (bench/run.sh) */
	if (cpus <= 0 && o->runtime && strcmp(accel, "kvm"))
		cpus = 1;
	if (cpus <= 0)
		cpus = sysconf(_SC_NPROCESSORS_ONLN) > 0 ? sysconf(_SC_NPROCESSORS_ONLN) : 1;
	if (cpus > 16)
		cpus = 16;
	snprintf(smp, sizeof smp, "%ld", cpus);
	snprintf(mem, sizeof mem, "%ld", mb);

	if (o->ncaches > HYPR_VM_MAX_CACHES)
		return hypr_err_set(e, HYPR_EXIT_INPUT, "build VM: more than %d cache mounts",
		    HYPR_VM_MAX_CACHES);
	ndisks = (o->runtime ? 0 : 1) + (o->base != NULL) + vm->scratch + (int)o->ncaches;
	{
		int used = ndisks + (o->net || o->nfwds || (o->guestfwds && o->guestfwds[0])) +
		    (int)o->nshares + 1;	/* + the control port */

		if (!distro && used > HYPR_VM_TRANSPORTS)
			return hypr_err_set(e, HYPR_EXIT_INPUT, "%s VM: %d virtio devices wanted, "
			    "QEMU's microvm has %d (%zu cache disks, %zu shared directories)",
			    o->runtime ? "runtime" : "build", used, HYPR_VM_TRANSPORTS,
			    o->ncaches, o->nshares);
	}
	/* A distribution kernel finds virtio-mmio devices only through ACPI,
	 * hangs with noapictimer, and spends 0.3 s in crypto self-tests. */
	if (!strcmp(accel, "kvm"))
		snprintf(append, sizeof append,
		    "console=ttyS0 %sreboot=t panic=-1 %shypr.disks=%d%s",
		    debug ? "" : "quiet ", distro ? "cryptomgr.notests " : "", ndisks,
		    debug ? " hypr.debug=1 printk.time=1" : "");
	else
		snprintf(append, sizeof append,
		    "console=ttyS0 %sreboot=t panic=-1 tsc=reliable tsc_early_khz=%llu no_timer_check "
		    "%srandom.trust_cpu=on hypr.disks=%d%s",
		    debug ? "" : "quiet ", (unsigned long long)tsc_khz(),
		    distro ? "cryptomgr.notests " : "noapictimer ", ndisks,
		    debug ? " hypr.debug=1 printk.time=1" : "");

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return hypr_err_errno(e, HYPR_EXIT_SYSTEM, "build VM: socketpair");
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, qv) < 0) {
		close(sv[0]);
		close(sv[1]);
		return hypr_err_errno(e, HYPR_EXIT_SYSTEM, "build VM: socketpair");
	}
	snprintf(chardev, sizeof chardev, "socket,id=ctl,fd=%d", sv[1]);
	snprintf(qchardev, sizeof qchardev, "socket,id=qmp,fd=%d", qv[1]);
	snprintf(serial, sizeof serial, "file:%s/console.log", vm->dir);
	snprintf(qlog, sizeof qlog, "%s/qemu.log", vm->dir);

	argv[a++] = (char *)qemu;
	argv[a++] = "-M";
	argv[a++] = distro ? "microvm,acpi=on,x-option-roms=off" : "microvm,acpi=off,x-option-roms=off";
	argv[a++] = "-accel";
	argv[a++] = (char *)accel;
	argv[a++] = "-cpu";
	argv[a++] = !strcmp(accel, "kvm") ? "host" : "max";
	argv[a++] = "-smp";
	argv[a++] = smp;
	argv[a++] = "-m";
	argv[a++] = mem;
	argv[a++] = "-nodefaults";
	argv[a++] = "-no-user-config";
	argv[a++] = "-display";
	argv[a++] = "none";
	argv[a++] = "-no-reboot";
	argv[a++] = "-serial";
	argv[a++] = serial;
	argv[a++] = "-kernel";
	argv[a++] = kernel;
	argv[a++] = "-initrd";
	argv[a++] = initrd;
	argv[a++] = "-append";
	argv[a++] = append;
	int d = 0;
	char qp[2 * PATH_MAX + 32];
	if (o->base) {
		if (qemu_path(qp, sizeof qp, o->base, NULL) < 0 ||
		    snprintf(drive[d], sizeof drive[d], "id=base,file=%s,format=raw,if=none,readonly=on,rerror=report", qp) >= (int)sizeof drive[d])
			goto toolong;
		argv[a++] = "-drive";
		argv[a++] = drive[d++];
		argv[a++] = "-device";
		argv[a++] = "virtio-blk-device,drive=base,serial=base";
	}
	if (vm->scratch) {
		if (qemu_path(qp, sizeof qp, vm->dir, "/scratch.ext4") < 0 ||
		    snprintf(drive[d], sizeof drive[d],
		    "id=scratch,file=%s,format=raw,if=none,cache=unsafe,aio=threads,werror=report,rerror=report", qp) >= (int)sizeof drive[d])
			goto toolong;
		argv[a++] = "-drive";
		argv[a++] = drive[d++];
		argv[a++] = "-device";
		argv[a++] = "virtio-blk-device,drive=scratch,serial=scratch";
	}
	if (!o->runtime) {
		if (qemu_path(qp, sizeof qp, vm->dir, "/io.raw") < 0 ||
		    snprintf(drive[d], sizeof drive[d], "id=io,file=%s,format=raw,if=none,cache=unsafe,werror=report,rerror=report", qp) >= (int)sizeof drive[d])
			goto toolong;
		argv[a++] = "-drive";
		argv[a++] = drive[d++];
		argv[a++] = "-device";
		argv[a++] = "virtio-blk-device,drive=io,serial=io";
	}
	for (size_t k = 0; k < o->ncaches; k++) {
		if (qemu_path(qp, sizeof qp, o->caches[k].image, NULL) < 0 ||
		    snprintf(drive[d], sizeof drive[d],
		    "id=cache%zu,file=%s,format=raw,if=none,cache=unsafe,aio=threads,"
		    "werror=report,rerror=report", k, qp) >= (int)sizeof drive[d])
			goto toolong;
		snprintf(cdev[k], sizeof cdev[k], "virtio-blk-device,drive=cache%zu,serial=cache%zu", k, k);
		argv[a++] = "-drive";
		argv[a++] = drive[d++];
		argv[a++] = "-device";
		argv[a++] = cdev[k];
	}
	if (o->net || o->nfwds || (o->guestfwds && o->guestfwds[0])) {
		/* QEMU user networking: no root, no bridge, no host setup; the
		 * host's loopback is 10.0.2.2 to the guest */
		if (!(netdev = netdev_opts(o)))
			goto toolong;
		argv[a++] = "-netdev";
		argv[a++] = netdev;
		argv[a++] = "-device";
		argv[a++] = "virtio-net-device,netdev=net0";
	}
	for (size_t k = 0; k < o->nshares; k++) {
		/* security_model=none: files keep the guest's owners where the
		 * host lets QEMU set them (as root), as a Docker bind mount */
		if (qemu_path(qp, sizeof qp, o->shares[k].path, NULL) < 0 ||
		    strchr(o->shares[k].tag, ',') ||
		    snprintf(fsdev[k], sizeof fsdev[k], "local,id=fs%zu,path=%s,security_model=none%s",
		    k, qp, o->shares[k].ro ? ",readonly=on" : "") >= (int)sizeof fsdev[k])
			goto toolong;
		snprintf(fsdevice[k], sizeof fsdevice[k], "virtio-9p-device,fsdev=fs%zu,mount_tag=%s",
		    k, o->shares[k].tag);
		argv[a++] = "-fsdev";
		argv[a++] = fsdev[k];
		argv[a++] = "-device";
		argv[a++] = fsdevice[k];
	}
	argv[a++] = "-device";
	argv[a++] = "virtio-serial-device";
	argv[a++] = "-chardev";
	argv[a++] = chardev;
	argv[a++] = "-device";
	argv[a++] = "virtserialport,chardev=ctl,name=" HYPR_PROTO_PORT;
	argv[a++] = "-chardev";
	argv[a++] = qchardev;
	argv[a++] = "-mon";
	argv[a++] = "chardev=qmp,mode=control";
	argv[a] = NULL;

	pid_t parent = getpid();
	t0 = hypr_now();	/* boot time = QEMU spawn to READY */
	vm->pid = fork();
	if (vm->pid < 0) {
		free(netdev);
		close(sv[0]);
		close(sv[1]);
		close(qv[0]);
		close(qv[1]);
		return hypr_err_errno(e, HYPR_EXIT_SYSTEM, "build VM: fork");
	}
	if (vm->pid == 0) {
		/* QEMU must not outlive us, whatever kills us. */
		int lf;
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(127);
		fcntl(sv[1], F_SETFD, 0);
		fcntl(qv[1], F_SETFD, 0);
		lf = open(qlog, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		int nul = open("/dev/null", O_RDONLY | O_CLOEXEC);
		if (nul >= 0)
			dup2(nul, 0);
		if (lf >= 0) {
			dup2(lf, 1);
			dup2(lf, 2);
		}
		/* a terminal ^C goes to the caller, which kills us in order */
		setpgid(0, 0);
		execvp(argv[0], argv);
		dprintf(2, "exec %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	free(netdev);
	close(sv[1]);
	close(qv[1]);
	vm->sock = sv[0];
	if (vm->qmp >= 0)
		close(vm->qmp);
	vm->qmp = qv[0];
	vm->qlen = 0;
	vm->paused = 0;
	vm->ioerr[0] = 0;
	fcntl(vm->qmp, F_SETFL, O_NONBLOCK);
	/* events come only in command mode; QEMU reads this after its greeting */
	qmp_send(vm, "{\"execute\":\"qmp_capabilities\"}\n");
	vm->dead = 0;
	vm->pidfd = (int)syscall(SYS_pidfd_open, vm->pid, 0);
	snprintf(vm->accel, sizeof vm->accel, "%s", accel);

	vm->t0 = t0;
	vm->boot_deadline = t0 + boot_timeout;
	vm->booting = 1;
	return 0;
toolong:
	free(netdev);
	close(sv[0]);
	close(sv[1]);
	close(qv[0]);
	close(qv[1]);
	return hypr_err_set(e, HYPR_EXIT_SYSTEM, "VM: a disk or shared path, a port or a forward is too long for QEMU");
}

/* The guest's READY after spawn: the boot is over. */
static int
wait_ready(struct hypr_vm *vm, struct hypr_err *e)
{
	unsigned char *p;
	uint32_t n;
	int type;

	if (!vm->booting)
		return 0;
	vm->booting = 0;
	/* launched long ago (work overlapped the boot): a READY that came in
	 * time is in the socket, read at once */
	if (vm->boot_deadline < hypr_now() + 0.1)
		vm->boot_deadline = hypr_now() + 0.1;
	if (recv_frame(vm, vm->boot_deadline, &type, &p, &n, e, "waiting for the guest (boot)") < 0)
		return -1;
	if (type != HYPR_MSG_READY)
		return unexpected(vm, type, p, n, e, "boot");
	consume(vm);
	vm->boot_secs = hypr_now() - vm->t0;
	return 0;
}

static void
vm_cleanup_files(struct hypr_vm *vm)
{
	struct hypr_err e = { 0 };

	if (vm->dir) {
		if (!getenv("HYPR_VM_KEEP"))
			hypr_rm_rf(vm->dir, &e);
		free(vm->dir);
		vm->dir = NULL;
	}
}

static void
vm_free(struct hypr_vm *vm)
{
	free(vm->obuf);
	if (vm->qmp >= 0)
		close(vm->qmp);
	free(vm->qbuf);
	if (vm->sock >= 0)
		close(vm->sock);
	if (vm->pidfd >= 0)
		close(vm->pidfd);
	if (vm->iofd >= 0)
		close(vm->iofd);
	vm_cleanup_files(vm);
	free(vm->rbuf);
	free(vm);
}

int
hypr_vm_cache_room(int has_base, int net)
{
	return HYPR_VM_TRANSPORTS - 3 - (has_base != 0) - (net != 0);
}

int
hypr_vm_launch(struct hypr_vm **out, const struct hypr_vm_opts *o, struct hypr_err *e)
{
	struct hypr_vm *vm = calloc(1, sizeof *vm);
	const char *accel = getenv("HYPR_ACCEL");
	char tmpl[PATH_MAX], root[PATH_MAX], verdict[16];
	double boot_timeout = o->boot_timeout > 0 ? o->boot_timeout : env_double("HYPR_BOOT_TIMEOUT", 30);
	int canary = 0;

	*out = NULL;
	if (!vm)
		return hypr_err_set(e, HYPR_EXIT_SYSTEM, "build VM: out of memory");
	vm->pid = -1;
	vm->sock = vm->pidfd = vm->iofd = vm->qmp = -1;
	vm->watch_fd = vm->cur_watch = o->watch_fd > 0 ? o->watch_fd : -1;
	vm->rcap = 1 << 16;
	if (!(vm->rbuf = malloc(vm->rcap))) {
		free(vm);
		return hypr_err_set(e, HYPR_EXIT_SYSTEM, "build VM: out of memory");
	}
	if (o->base && access(o->base, R_OK) < 0) {
		hypr_err_errno(e, HYPR_EXIT_SYSTEM, "build VM: base %s", o->base);
		vm_free(vm);
		return -1;
	}
	if (o->tmpdir)
		snprintf(tmpl, sizeof tmpl, "%s/hypr-vm-XXXXXX", o->tmpdir);
	else
		snprintf(tmpl, sizeof tmpl, "%s/hypr-vm-XXXXXX",
		    getenv("TMPDIR") && *getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	if (o->tmpdir && hypr_mkdir_p(o->tmpdir, 0755, e) < 0) {
		vm_free(vm);
		return -1;
	}
	if (!mkdtemp(tmpl) || !(vm->dir = strdup(tmpl))) {
		hypr_err_errno(e, HYPR_EXIT_SYSTEM, "build VM: mkdtemp %s", tmpl);
		vm_free(vm);
		return -1;
	}
	vm->runtime = o->runtime;
	/* one io disk (a virtio transport is scarce: hypr_vm_cache_room):
	 * diffs come out at its start, tars go in after the out region */
	if (!o->runtime) {
		if (disk_limit(vm, o, e) < 0) {
			vm_free(vm);
			return -1;
		}
		vm->in_base = (vm->out_size + (1u << 20) - 1) & ~(uint64_t)((1u << 20) - 1);
		if (make_disk(vm, "io", vm->in_base + DISK_SIZE, &vm->iofd, e) < 0) {
			vm_free(vm);
			return -1;
		}
	}
	(void)root;
	if (o->nshares > HYPR_VM_MAX_SHARES) {
		hypr_err_set(e, HYPR_EXIT_USAGE, "VM: more than %d shared directories",
		    HYPR_VM_MAX_SHARES);
		vm_free(vm);
		return -1;
	}
	{
		/* a runtime VM's writable layer is in guest memory */
		const char *sm = getenv("HYPR_VM_SCRATCH");
		if (!o->runtime && (!sm || strcmp(sm, "tmpfs")) && make_scratch(vm, e) < 0) {
			vm_free(vm);
			return -1;
		}
	}
	if (!accel || !*accel)
		accel = o->accel;
	if (accel && *accel) {
		if (strcmp(accel, "kvm") && strcmp(accel, "tcg")) {
			hypr_err_set(e, HYPR_EXIT_USAGE, "HYPR_ACCEL=%s: want kvm or tcg", accel);
			vm_free(vm);
			return -1;
		}
	} else if (fact_read("accel", verdict, sizeof verdict) == 0 &&
	    (!strcmp(verdict, "kvm") || !strcmp(verdict, "tcg"))) {
		accel = !strcmp(verdict, "kvm") ? "kvm" : "tcg";
	} else if (kvm_plausible() || (getenv("HYPR_KVM_CANARY") && !strcmp(getenv("HYPR_KVM_CANARY"), "force"))) {
		accel = "kvm";
		canary = 1;
	} else {
		accel = "tcg";
		fact_write("accel", "tcg\n");
	}
	if (canary) {
		/* The nested KVM here passes ioctl probes yet dies on a real
		 * kernel: only a real boot within a short deadline counts. */
		struct hypr_err ce = { 0 };
		if (spawn(vm, o, "kvm", env_double("HYPR_KVM_CANARY_TIMEOUT", 3), &ce) == 0 &&
		    wait_ready(vm, &ce) == 0) {
			fact_write("accel", "kvm\n");
			vm->canary = 1;
			*out = vm;
			return 0;
		}
		vm_reap(vm, 1);
		close(vm->sock);
		vm->sock = -1;
		if (vm->pidfd >= 0)
			close(vm->pidfd);
		vm->pidfd = -1;
		vm->rlen = 0;
		fact_write("accel", "tcg\n");
		accel = "tcg";
		vm->canary = -1;
		/* the failed guest may have touched the scratch fs */
		if (vm->scratch && make_scratch(vm, e) < 0) {
			vm_free(vm);
			return -1;
		}
	}
	if (spawn(vm, o, accel, boot_timeout, e) < 0) {
		vm_reap(vm, 1);
		vm_free(vm);
		return -1;
	}
	*out = vm;
	return 0;
}

int
hypr_vm_ready(struct hypr_vm *vm, struct hypr_err *e)
{
	return wait_ready(vm, e);
}

int
hypr_vm_start(struct hypr_vm **out, const struct hypr_vm_opts *o, struct hypr_err *e)
{
	if (hypr_vm_launch(out, o, e) < 0)
		return -1;
	if (wait_ready(*out, e) < 0) {
		hypr_vm_kill(*out);
		*out = NULL;
		return -1;
	}
	return 0;
}

/* ---- run ---- */

static int
tlv_bin(unsigned char **buf, size_t *len, size_t *cap, int tag, const void *s, size_t n)
{
	size_t need;

	if (hypr_size_add(*len, 5 + n, &need) < 0 || need > HYPR_PROTO_MAX)
		return -1;
	if (need > *cap) {
		size_t c = need * 2;
		unsigned char *b = realloc(*buf, c);
		if (!b)
			return -1;
		*buf = b;
		*cap = c;
	}
	(*buf)[*len] = (unsigned char)tag;
	hypr_proto_put32(*buf + *len + 1, (uint32_t)n);
	if (n)
		memcpy(*buf + *len + 5, s, n);
	*len = need;
	return 0;
}

static int
tlv(unsigned char **buf, size_t *len, size_t *cap, int tag, const char *s)
{
	return tlv_bin(buf, len, cap, tag, s, strlen(s));
}

/* type, target, source, flags, mode, uid, gid, size: NUL-terminated
 * fields; then the data (hypr-guest(7)) */
static int
mount_tlv(unsigned char **buf, size_t *len, size_t *cap, const struct hypr_vm_mount *m)
{
	char num[4][32], type[2] = { m->type, 0 }, src[PATH_MAX];
	const char *f[8];
	size_t n = 0, o = 0;
	unsigned char *v;
	int rc;

	if (m->mode >= 0)
		snprintf(num[0], sizeof num[0], "%lo", (unsigned long)m->mode);
	else
		num[0][0] = 0;
	snprintf(num[1], sizeof num[1], m->uid >= 0 ? "%ld" : "", m->uid);
	snprintf(num[2], sizeof num[2], m->gid >= 0 ? "%ld" : "", m->gid);
	snprintf(num[3], sizeof num[3], m->size ? "%llu" : "", (unsigned long long)m->size);
	f[0] = type;
	f[1] = m->target;
	/* guest paths: bind sources in /L/M, cache disks at /C/K */
	src[0] = 0;
	if ((m->type == 'b' || m->type == 'c') &&
	    snprintf(src, sizeof src, m->type == 'b' ? "/L/M/%s" : "/C/%s",
	    m->source ? m->source : "") >= (int)sizeof src)
		return -1;
	if (m->type == 'p' && snprintf(src, sizeof src, "%s", m->source ? m->source : "") >=
	    (int)sizeof src)
		return -1;	/* a 9p share: its mount tag */
	f[2] = src;
	f[3] = m->rw ? "rw" : m->ro ? "ro" : "";
	f[4] = num[0];
	f[5] = num[1];
	f[6] = num[2];
	f[7] = num[3];
	for (int i = 0; i < 8; i++)
		n += strlen(f[i] ? f[i] : "") + 1;
	if (!(v = malloc(n + m->dlen)))
		return -1;
	for (int i = 0; i < 8; i++) {
		size_t k = strlen(f[i] ? f[i] : "") + 1;
		memcpy(v + o, f[i] ? f[i] : "", k);
		o += k;
	}
	if (m->dlen)
		memcpy(v + o, m->data, m->dlen);
	rc = tlv_bin(buf, len, cap, HYPR_TAG_MOUNT, v, n + m->dlen);
	explicit_bzero(v, n + m->dlen);	/* a secret leaves no copy behind */
	free(v);
	return rc;
}

static void
default_output(void *arg, int fd, const char *buf, size_t len)
{
	(void)arg;
	hypr_write_all(fd == 1 ? 1 : 2, buf, len);
}

/* The TLV payload of a RUN or START request (hypr-guest(7)). */
static int
run_payload(const struct hypr_vm_run *r, unsigned char **bufp, size_t *lenp,
    struct hypr_err *e)
{
	unsigned char *buf = NULL;
	size_t len = 0, cap = 0;
	struct timespec ts;
	char tbuf[32];
	int rc = 0;

	clock_gettime(CLOCK_REALTIME, &ts);
	snprintf(tbuf, sizeof tbuf, "%lld", (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec);
	for (char *const *a = r->argv; *a && rc == 0; a++)
		rc = tlv(&buf, &len, &cap, HYPR_TAG_ARGV, *a);
	for (char *const *v = r->env; v && *v && rc == 0; v++)
		rc = tlv(&buf, &len, &cap, HYPR_TAG_ENV, *v);
	if (rc == 0 && r->cwd)
		rc = tlv(&buf, &len, &cap, HYPR_TAG_CWD, r->cwd);
	if (rc == 0 && r->user)
		rc = tlv(&buf, &len, &cap, HYPR_TAG_USER, r->user);
	if (rc == 0)
		rc = tlv(&buf, &len, &cap, HYPR_TAG_HOSTNAME, r->hostname ? r->hostname : "hypr");
	if (rc == 0)
		rc = tlv(&buf, &len, &cap, HYPR_TAG_TIME, tbuf);
	if (rc == 0 && r->net)
		rc = tlv(&buf, &len, &cap, HYPR_TAG_NET, "1");
	for (char *const *h = r->hosts; h && *h && rc == 0; h++)
		rc = tlv(&buf, &len, &cap, HYPR_TAG_HOST, *h);
	for (size_t k = 0; k < r->nmounts && rc == 0; k++)
		rc = mount_tlv(&buf, &len, &cap, &r->mounts[k]);
	if (rc < 0) {
		free(buf);
		return hypr_err_set(e, HYPR_EXIT_INPUT, "build VM: RUN request too large");
	}
	*bufp = buf;
	*lenp = len;
	return 0;
}

int
hypr_vm_run(struct hypr_vm *vm, const struct hypr_vm_run *r, int *status, struct hypr_err *e)
{
	unsigned char *buf = NULL, *p;
	size_t len = 0;
	int rc = 0, type;
	uint32_t n;
	double timeout = r->timeout > 0 ? r->timeout : env_double("HYPR_STEP_TIMEOUT", 0);
	double deadline;
	hypr_vm_output_fn *out = r->output ? r->output : default_output;

	if (wait_ready(vm, e) < 0)
		return -1;
	if (vm->dead)
		return hypr_err_set(e, HYPR_EXIT_SYSTEM, "build VM: not running");
	if (!r->argv || !r->argv[0])
		return hypr_err_set(e, HYPR_EXIT_INPUT, "build VM: RUN: empty argv");
	if (run_payload(r, &buf, &len, e) < 0)
		return -1;
	vm->step++;
	rc = send_frame(vm, HYPR_MSG_RUN, buf, len, e);
	explicit_bzero(buf, len);	/* it may hold a secret */
	free(buf);
	if (rc < 0) {
		vm_reap(vm, 1);
		return -1;
	}
	deadline = timeout > 0 ? hypr_now() + timeout : 0;
	for (;;) {
		char what[64];
		snprintf(what, sizeof what, "step %u", vm->step);
		vm->cur_watch = r->watch_fd > 0 ? r->watch_fd : vm->watch_fd;
		rc = recv_frame(vm, deadline, &type, &p, &n, e, what);
		vm->cur_watch = vm->watch_fd;
		if (rc < 0) {
			if (deadline > 0 && hypr_now() >= deadline)
				hypr_err_set(e, HYPR_EXIT_STEP, "build VM: step timed out after %gs (VM killed)", timeout);
			return -1;
		}
		switch (type) {
		case HYPR_MSG_STDOUT:
		case HYPR_MSG_STDERR:
			out(r->output_arg, type == HYPR_MSG_STDOUT ? 1 : 2, (const char *)p, n);
			consume(vm);
			continue;
		case HYPR_MSG_EXIT:
			if (n < 4)
				return unexpected(vm, -1, p, n, e, what);
			*status = (int)hypr_proto_get32(p);
			vm->disk_full = n >= 8 && (hypr_proto_get32(p + 4) & HYPR_EXIT_DISK_FULL);
			consume(vm);
			if (*status && vm->qmp >= 0)
				qmp_read(vm);	/* a disk error may be why */
			return 0;
		default:
			return unexpected(vm, type, p, n, e, what);
		}
	}
}

/* ---- diff / import ---- */

static int
copy_range(int from, off_t off, uint64_t len, int to, struct hypr_err *e)
{
	static char buf[1 << 20];
	uint64_t left = len;
	loff_t in = off;

	/* copy_file_range first (reflink/fast path for regular files) */
	while (left > 0) {
		ssize_t c = copy_file_range(from, &in, to, NULL, left > (1u << 30) ? (1u << 30) : left, 0);
		if (c <= 0)
			break;
		left -= (uint64_t)c;
	}
	while (left > 0) {
		size_t want = left > sizeof buf ? sizeof buf : (size_t)left;
		ssize_t r = pread(from, buf, want, in);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return hypr_err_errno(e, HYPR_EXIT_SYSTEM, "build VM: reading the out disk");
		if (hypr_write_all(to, buf, (size_t)r) < 0)
			return hypr_err_errno(e, HYPR_EXIT_SYSTEM, "build VM: writing the layer");
		in += r;
		left -= (uint64_t)r;
	}
	return 0;
}

int
hypr_vm_diff(struct hypr_vm *vm, int64_t epoch, int out_fd, uint64_t *len, struct hypr_err *e)
{
	unsigned char req[24], *p;
	uint32_t n;
	int type;
	uint64_t l;
	double timeout = env_double("HYPR_DIFF_TIMEOUT", 3600);

	if (wait_ready(vm, e) < 0)
		return -1;
	if (vm->dead)
		return hypr_err_set(e, HYPR_EXIT_SYSTEM, "build VM: not running");
	hypr_proto_put64(req, (uint64_t)epoch);
	hypr_proto_put64(req + 8, 0);
	hypr_proto_put64(req + 16, vm->out_size);
	if (send_frame(vm, HYPR_MSG_DIFF, req, sizeof req, e) < 0) {
		vm_reap(vm, 1);
		return -1;
	}
	if (recv_frame(vm, hypr_now() + timeout, &type, &p, &n, e, "diff") < 0)
		return -1;
	if (type != HYPR_MSG_DIFFDONE || n < 8) {
		unexpected(vm, type, p, n, e, "diff");
		/* the guest refused what the step made (not a dead VM or disk) */
		if (type == HYPR_MSG_ERROR && !vm->dead && !vm->ioerr[0])
			e->code = HYPR_EXIT_STEP;
		return -1;
	}
	l = hypr_proto_get64(p);
	consume(vm);
	if (l > vm->out_size)
		return vm_fail(vm, e, HYPR_EXIT_SYSTEM, "diff: bad length from the guest");
	if (copy_range(vm->iofd, 0, l, out_fd, e) < 0)
		return -1;
	/* give the space back; the next diff rewrites from offset 0 */
	fallocate(vm->iofd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, (off_t)((l + 4095) & ~4095ull));
	*len = l;
	return 0;
}

/* Decompress a tar (any filter libarchive reads) into the io disk's in
 * region; *total gets its length. */
static int
fill_in_disk(struct hypr_vm *vm, const char *tar_path, uint64_t *total, struct hypr_err *e)
{
	struct archive *a;
	const void *blk;
	size_t sz;
	la_int64_t off;
	struct archive_entry *ent;
	int r;

	*total = 0;
	a = archive_read_new();
	archive_read_support_filter_all(a);
	archive_read_support_format_raw(a);
	if (archive_read_open_filename(a, tar_path, 1 << 20) != ARCHIVE_OK ||
	    archive_read_next_header(a, &ent) != ARCHIVE_OK) {
		hypr_err_set(e, HYPR_EXIT_INPUT, "%s: %s", tar_path, archive_error_string(a));
		archive_read_free(a);
		return -1;
	}
	while ((r = archive_read_data_block(a, &blk, &sz, &off)) == ARCHIVE_OK) {
		if ((uint64_t)off + sz > DISK_SIZE) {
			archive_read_free(a);
			return hypr_err_set(e, HYPR_EXIT_INPUT, "%s: larger than the in disk", tar_path);
		}
		if (pwrite(vm->iofd, blk, sz, (off_t)(vm->in_base + (uint64_t)off)) != (ssize_t)sz) {
			hypr_err_errno(e, HYPR_EXIT_SYSTEM, "build VM: writing the in disk");
			archive_read_free(a);
			return -1;
		}
		if ((uint64_t)off + sz > *total)
			*total = (uint64_t)off + sz;
	}
	if (r != ARCHIVE_EOF) {
		hypr_err_set(e, HYPR_EXIT_INPUT, "%s: %s", tar_path, archive_error_string(a));
		archive_read_free(a);
		return -1;
	}
	archive_read_free(a);
	return 0;
}

/* Send a request naming [0, total) of the in region; wait for IMPORTED. */
static int
in_disk_request(struct hypr_vm *vm, int type, uint64_t total, const char *name,
    const char *tar_path, const char *what, struct hypr_err *e)
{
	unsigned char req[16 + 64], *p;
	size_t nl = name ? strlen(name) : 0;
	uint32_t n;
	int t;

	if (nl > 63)
		return hypr_err_set(e, HYPR_EXIT_INPUT, "build VM: %s: name too long", what);
	vm->step++;
	hypr_proto_put64(req, vm->in_base);
	hypr_proto_put64(req + 8, total);
	if (nl)
		memcpy(req + 16, name, nl);
	if (send_frame(vm, type, req, 16 + nl, e) < 0) {
		vm_reap(vm, 1);
		return -1;
	}
	if (recv_frame(vm, hypr_now() + env_double("HYPR_DIFF_TIMEOUT", 3600), &t, &p, &n, e, what) < 0)
		return -1;
	if (t != HYPR_MSG_IMPORTED) {
		unexpected(vm, t, p, n, e, what);
		if (!vm->dead)
			e->code = HYPR_EXIT_INPUT;	/* the guest refused the tar */
		return hypr_err_prefix(e, "%s", tar_path);
	}
	consume(vm);
	fallocate(vm->iofd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)vm->in_base,
	    (off_t)((total + 4095) & ~4095ull));
	return 0;
}

int
hypr_vm_import(struct hypr_vm *vm, const char *tar_path, struct hypr_err *e)
{
	uint64_t total;

	if (wait_ready(vm, e) < 0)
		return -1;
	if (vm->dead)
		return hypr_err_set(e, HYPR_EXIT_SYSTEM, "build VM: not running");
	if (fill_in_disk(vm, tar_path, &total, e) < 0)
		return -1;
	return in_disk_request(vm, HYPR_MSG_IMPORT, total, NULL, tar_path, "import", e);
}

int
hypr_vm_mount_data(struct hypr_vm *vm, const char *tar_path, const char *name,
    struct hypr_err *e)
{
	uint64_t total;

	if (wait_ready(vm, e) < 0)
		return -1;
	if (vm->dead)
		return hypr_err_set(e, HYPR_EXIT_SYSTEM, "build VM: not running");
	if (!name || !*name || strchr(name, '/') || name[0] == '.')
		return hypr_err_set(e, HYPR_EXIT_INPUT, "build VM: mount data: bad name");
	if (fill_in_disk(vm, tar_path, &total, e) < 0)
		return -1;
	return in_disk_request(vm, HYPR_MSG_MOUNTDATA, total, name, tar_path, "mount data", e);
}

/* ---- stop ---- */

int
hypr_vm_stop(struct hypr_vm *vm, struct hypr_err *e)
{
	int rc = 0, type;
	unsigned char *p;
	uint32_t n;

	if (!vm)
		return 0;
	if (vm->booting) {
		/* nothing in it yet: no clean shutdown to wait for */
		hypr_vm_kill(vm);
		return 0;
	}
	if (vm->held) {
		consume(vm);
		vm->held = 0;
	}
	if (!vm->dead && vm->olen && hypr_write_all(vm->sock, vm->obuf, vm->olen) < 0) {
		vm_reap(vm, 1);
		vm_free(vm);
		return hypr_err_errno(e, HYPR_EXIT_SYSTEM, "VM: control port");
	}
	vm->olen = 0;
	if (!vm->dead) {
		double deadline = hypr_now() + env_double("HYPR_SHUTDOWN_TIMEOUT", 10);
		/* not watched: the reader may rightly be gone once the caller's
		 * output is complete, and QEMU is going anyway */
		vm->cur_watch = -1;
		if (send_frame(vm, HYPR_MSG_QUIT, NULL, 0, e) < 0) {
			rc = -1;
		} else if (recv_frame(vm, deadline, &type, &p, &n, e, "shutdown") < 0) {
			rc = -1;
		} else {
			/* BYE: QEMU exits by itself (-no-reboot); wait for it */
			while (vm->pidfd >= 0) {
				struct pollfd pf = { .fd = vm->pidfd, .events = POLLIN };
				double left = deadline - hypr_now();
				if (left <= 0 || poll(&pf, 1, (int)(left * 1000) + 1) > 0 || left <= 0)
					break;
			}
		}
		vm_reap(vm, 1);
	}
	vm_free(vm);
	return rc;
}

void
hypr_vm_kill(struct hypr_vm *vm)
{
	if (!vm)
		return;
	vm_reap(vm, 1);
	vm_free(vm);
}

const char *
hypr_vm_accel(const struct hypr_vm *vm)
{
	return vm->accel;
}

int
hypr_vm_canary(const struct hypr_vm *vm)
{
	return vm->canary;
}

int
hypr_vm_disk_full(const struct hypr_vm *vm)
{
	return vm && vm->disk_full;
}

uint64_t
hypr_vm_disk_size(const struct hypr_vm *vm)
{
	return vm ? vm->disk : 0;
}

const char *
hypr_vm_io_error(const struct hypr_vm *vm)
{
	return vm && vm->ioerr[0] ? vm->ioerr : NULL;
}

pid_t
hypr_vm_pid(const struct hypr_vm *vm)
{
	return vm ? vm->pid : -1;
}

double
hypr_vm_boot_seconds(const struct hypr_vm *vm)
{
	return vm->boot_secs;
}

/* ---- runtime: the processes of hypr run ---- */

/* Send what is queued, as far as the socket takes it now. */
static int
flush_out(struct hypr_vm *vm, struct hypr_err *e)
{
	while (vm->olen) {
		ssize_t w = send(vm->sock, vm->obuf, vm->olen, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return 0;
		if (w < 0)
			return vm_exited(vm, e, "control port");
		memmove(vm->obuf, vm->obuf + w, vm->olen - (size_t)w);
		vm->olen -= (size_t)w;
	}
	return 0;
}

static int
queue_frame(struct hypr_vm *vm, int type, uint32_t id, const void *p, size_t n,
    struct hypr_err *e)
{
	size_t need;

	if (vm->dead)
		return hypr_err_set(e, HYPR_EXIT_SYSTEM, "VM: not running");
	if (n > HYPR_PROTO_MAX || hypr_size_add(vm->olen, HYPR_PROTO_HDR + n, &need) < 0)
		return hypr_err_set(e, HYPR_EXIT_INPUT, "VM: request too large");
	if (need > vm->ocap) {
		size_t c = need < 4096 ? 4096 : need * 2;
		unsigned char *b = realloc(vm->obuf, c);
		if (!b)
			return hypr_err_set(e, HYPR_EXIT_SYSTEM, "VM: out of memory");
		vm->obuf = b;
		vm->ocap = c;
	}
	hypr_proto_put32(vm->obuf + vm->olen, (uint32_t)n);
	vm->obuf[vm->olen + 4] = (unsigned char)type;
	hypr_proto_put32(vm->obuf + vm->olen + 5, id);
	if (n)
		memcpy(vm->obuf + vm->olen + HYPR_PROTO_HDR, p, n);
	vm->olen = need;
	return flush_out(vm, e);
}

int
hypr_vm_proc_start(struct hypr_vm *vm, uint32_t id, const struct hypr_vm_run *r,
    const struct hypr_vm_proc *p, struct hypr_err *e)
{
	unsigned char *buf = NULL;
	size_t len = 0, cap;
	char ws[32];
	int rc = 0;

	if (!r->argv || !r->argv[0])
		return hypr_err_set(e, HYPR_EXIT_USAGE, "VM: no command to start");
	if (run_payload(r, &buf, &len, e) < 0)
		return -1;
	cap = len;
	if (p->tty)
		rc = tlv(&buf, &len, &cap, HYPR_TAG_TTY, "1");
	if (rc == 0 && p->stdin_open)
		rc = tlv(&buf, &len, &cap, HYPR_TAG_STDIN, "1");
	if (rc == 0 && p->rows && p->cols) {
		snprintf(ws, sizeof ws, "%u %u", p->rows, p->cols);
		rc = tlv(&buf, &len, &cap, HYPR_TAG_WINSIZE, ws);
	}
	if (rc < 0) {
		free(buf);
		return hypr_err_set(e, HYPR_EXIT_INPUT, "VM: request too large");
	}
	rc = queue_frame(vm, HYPR_MSG_START, id, buf, len, e);
	free(buf);
	return rc;
}

int
hypr_vm_proc_stdin(struct hypr_vm *vm, uint32_t id, const void *buf, size_t len,
    struct hypr_err *e)
{
	return queue_frame(vm, HYPR_MSG_STDIN, id, buf, len, e);
}

int
hypr_vm_proc_signal(struct hypr_vm *vm, uint32_t id, int sig, struct hypr_err *e)
{
	unsigned char b[4];

	hypr_proto_put32(b, (uint32_t)sig);
	return queue_frame(vm, HYPR_MSG_SIGNAL, id, b, 4, e);
}

int
hypr_vm_proc_winsize(struct hypr_vm *vm, uint32_t id, unsigned rows, unsigned cols,
    struct hypr_err *e)
{
	unsigned char b[8];

	hypr_proto_put32(b, rows);
	hypr_proto_put32(b + 4, cols);
	return queue_frame(vm, HYPR_MSG_WINSIZE, id, b, 8, e);
}

void
hypr_vm_pollfds(const struct hypr_vm *vm, struct pollfd *pf)
{
	pf[0] = (struct pollfd){ .fd = vm->dead ? -1 : vm->sock,
	    .events = POLLIN | (vm->olen ? POLLOUT : 0) };
	pf[1] = (struct pollfd){ .fd = vm->dead ? -1 : vm->pidfd, .events = POLLIN };
	pf[2] = (struct pollfd){ .fd = vm->dead ? -1 : vm->qmp, .events = POLLIN };
}

/* A whole frame at the start of rbuf? Grows rbuf for a big one. */
static int
frame_ready(struct hypr_vm *vm, struct hypr_err *e)
{
	uint32_t n;

	if (vm->rlen < HYPR_PROTO_HDR)
		return 0;
	n = hypr_proto_get32(vm->rbuf);
	if (n > HYPR_PROTO_MAX)
		return vm_fail(vm, e, HYPR_EXIT_SYSTEM, "oversized frame from the guest");
	if (vm->rlen >= HYPR_PROTO_HDR + (size_t)n)
		return 1;
	if (vm->rcap < HYPR_PROTO_HDR + (size_t)n) {
		unsigned char *b = realloc(vm->rbuf, HYPR_PROTO_HDR + (size_t)n);
		if (!b)
			return vm_fail(vm, e, HYPR_EXIT_SYSTEM, "out of memory");
		vm->rbuf = b;
		vm->rcap = HYPR_PROTO_HDR + (size_t)n;
	}
	return 0;
}

int
hypr_vm_next_event(struct hypr_vm *vm, struct hypr_vm_event *ev, struct hypr_err *e)
{
	int r;
	uint32_t n;

	if (vm->held) {
		consume(vm);
		vm->held = 0;
	}
	if (vm->dead)
		return hypr_err_set(e, HYPR_EXIT_SYSTEM, "VM: not running");
	if (flush_out(vm, e) < 0)
		return -1;
	if (vm->qmp >= 0) {
		qmp_read(vm);
		if (vm->paused) {
			char msg[128];
			snprintf(msg, sizeof msg, "the guest was paused by QEMU (%s)", vm->pause_why);
			return vm_fail(vm, e, HYPR_EXIT_SYSTEM, msg);
		}
	}
	while ((r = frame_ready(vm, e)) == 0) {
		ssize_t got = recv(vm->sock, vm->rbuf + vm->rlen, vm->rcap - vm->rlen, MSG_DONTWAIT);
		if (got > 0) {
			vm->rlen += (size_t)got;
			continue;
		}
		if (got < 0 && errno == EINTR)
			continue;
		if (got == 0 || (errno != EAGAIN && errno != EWOULDBLOCK))
			return vm_exited(vm, e, "running");
		/* nothing more now: is QEMU still there? */
		struct pollfd pf = { .fd = vm->pidfd, .events = POLLIN };
		if (vm->pidfd >= 0 && poll(&pf, 1, 0) > 0)
			return vm_exited(vm, e, "running");
		return 0;
	}
	if (r < 0)
		return -1;
	n = hypr_proto_get32(vm->rbuf);
	memset(ev, 0, sizeof *ev);
	ev->type = vm->rbuf[4];
	ev->id = hypr_proto_get32(vm->rbuf + 5);
	ev->data = vm->rbuf + HYPR_PROTO_HDR;
	ev->len = n;
	vm->held = 1;
	switch (ev->type) {
	case HYPR_MSG_STDOUT:
	case HYPR_MSG_STDERR:
	case HYPR_MSG_ERROR:
		return 1;
	case HYPR_MSG_STARTED:
	case HYPR_MSG_ACK:
	case HYPR_MSG_EXIT:
		if (n < 4)
			break;
		ev->value = (int)hypr_proto_get32(ev->data);
		return 1;
	}
	{
		char msg[64];
		snprintf(msg, sizeof msg, "unexpected frame type %d", ev->type);
		vm->held = 0;
		return vm_fail(vm, e, HYPR_EXIT_SYSTEM, msg);
	}
}
