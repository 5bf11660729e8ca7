/* vm.c - the build VM, host side: QEMU microvm launch, accel choice, protocol.
 *
 * QEMU gets one end of a socketpair as its control chardev (no filesystem
 * sockets, no connect race), one raw sparse file as the io disk,
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
#include "vm_int.h"

#ifndef HYPR_LIBEXECDIR
#define HYPR_LIBEXECDIR "/usr/local/lib/hypr"
#endif

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

const char *
vm_hypr_root(char *buf, size_t cap)
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
	if (snprintf(out, cap, "%s/vm/%s-%s", vm_hypr_root(root, sizeof root), what, bid) >= (int)cap)
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

/* ---- start ---- */

#define MAXARGS VM_MAXARGS

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
	char kernel[PATH_MAX], initrd[PATH_MAX], append[1024], machine[96];
	char drive[HYPR_VM_MAX_CACHES][2 * PATH_MAX + 128], cdev[HYPR_VM_MAX_CACHES][96];
	char smp[32], mem[32];
	char fsdev[HYPR_VM_MAX_SHARES][2 * PATH_MAX + 96], fsdevice[HYPR_VM_MAX_SHARES][160];
	char *argv[MAXARGS], *netdev = NULL;
	const char *qemu = getenv("HYPR_QEMU") ? getenv("HYPR_QEMU") : "qemu-system-x86_64";
	int ndisks = 0, a = 0, snap;
	long cpus = o->cpus > 0 ? o->cpus : (long)hypr_env_seconds("HYPR_VM_CPUS", 0);
	long mb = o->mem_mb > 0 ? o->mem_mb : (long)hypr_env_seconds("HYPR_VM_MEM", 2048);
	int debug = getenv("HYPR_VM_DEBUG") && *getenv("HYPR_VM_DEBUG") == '1';
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
	ndisks = (o->runtime ? 0 : 1) + (o->base != NULL) + (vm->scratch != 0) + (int)o->ncaches;
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
	/* under TCG a build VM warms QEMU's translations at READY (step_warm
	 * in pipeline/vm/step.c); HYPR_VM_WARM=0 turns it off (bench) */
	if (strcmp(accel, "kvm") && !o->runtime && o->base &&
	    !(getenv("HYPR_VM_WARM") && !strcmp(getenv("HYPR_VM_WARM"), "0")))
		strcat(append, " hypr.warm=1");
	snap = vm->snap_args = !distro && vm_snap_eligible(vm, o, accel);
	if (snap)
		strcat(append, vm->scratch == 1 ? " hypr.snap=1 hypr.snapfs=1" : " hypr.snap=1");
	snprintf(machine, sizeof machine, "microvm,acpi=%s,x-option-roms=off%s",
	    distro ? "on" : "off", snap ? ",memory-backend=mem" : "");
	vm->mem_mb = mb;

	argv[a++] = (char *)qemu;
	argv[a++] = "-M";
	argv[a++] = machine;
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
	argv[a++] = "file:console.log";
	argv[a++] = "-kernel";
	argv[a++] = kernel;
	argv[a++] = "-initrd";
	argv[a++] = initrd;
	argv[a++] = "-append";
	argv[a++] = append;
	int d = 0;
	char qp[2 * PATH_MAX + 32];

	if (snap) {
		argv[a++] = "-global";
		argv[a++] = "migration.store-global-state=off";
	}
	/* QEMU runs in vm->dir: its own disks by relative names, the base
	 * through the link "base" there, so that the command line is the same
	 * for every VM of one shape (a snapshot's key, vm_snap.c) */
	if (o->base) {
		char lp[PATH_MAX];
		snprintf(lp, sizeof lp, "%s/base", vm->dir);
		if (symlink(o->base, lp) < 0 && errno != EEXIST)
			return hypr_err_errno(e, HYPR_EXIT_SYSTEM, "build VM: %s", lp);
		argv[a++] = "-drive";
		argv[a++] = "id=base,file=base,format=raw,if=none,readonly=on,rerror=report";
		argv[a++] = "-device";
		argv[a++] = "virtio-blk-device,drive=base,serial=base";
	}
	if (vm->scratch) {
		argv[a++] = "-drive";
		argv[a++] = "id=scratch,file=scratch.ext4,format=raw,if=none,cache=unsafe,"
		    "aio=threads,werror=report,rerror=report";
		argv[a++] = "-device";
		argv[a++] = "virtio-blk-device,drive=scratch,serial=scratch";
	}
	if (!o->runtime) {
		argv[a++] = "-drive";
		argv[a++] = "id=io,file=io.raw,format=raw,if=none,cache=unsafe,werror=report,rerror=report";
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
	argv[a++] = "socket,id=ctl,fd=" VM_FD_CTL;
	argv[a++] = "-device";
	argv[a++] = "virtserialport,chardev=ctl,name=" HYPR_PROTO_PORT;
	argv[a++] = "-chardev";
	argv[a++] = "socket,id=qmp,fd=" VM_FD_QMP;
	argv[a++] = "-mon";
	argv[a++] = "chardev=qmp,mode=control";
	argv[a] = NULL;

	vm_args_free(vm);
	for (int k = 0; k < a; k++)
		if (!(vm->args[k] = strdup(argv[k]))) {
			free(netdev);
			return hypr_err_set(e, HYPR_EXIT_SYSTEM, "VM: out of memory");
		}
	vm->nargs = a;
	free(netdev);
	snprintf(vm->accel, sizeof vm->accel, "%s", accel);
	vm->boot_timeout = boot_timeout;
	if (snap) {
		struct hypr_err se = { 0 };
		if (vm_snap_start(vm, o, &se) == 0)
			return 0;
		if (!vm->warning[0] && se.msg[0])
			snprintf(vm->warning, sizeof vm->warning, "build VM: no snapshot (%.400s): booting cold",
			    se.msg);
	}
	return vm_exec(vm, VM_COLD, NULL, e);
toolong:
	free(netdev);
	return hypr_err_set(e, HYPR_EXIT_SYSTEM, "VM: a disk or shared path, a port or a forward is too long for QEMU");
}

/* Run QEMU with the command line spawn made, plus what the mode adds: a
 * snapshot's file-backed RAM (dir), saved from (VM_SAVE) or restored
 * (VM_RESTORE, the state file on fd VM_FD_STATE). The control port and
 * QMP are socketpairs on fds VM_FD_CTL and VM_FD_QMP; QEMU runs in vm->dir. */
int
vm_exec(struct hypr_vm *vm, enum vm_mode mode, const char *dir, struct hypr_err *e)
{
	char *argv[MAXARGS + 8], memobj[2 * PATH_MAX + 128], qlog[PATH_MAX], qp[2 * PATH_MAX];
	char pidfile[PATH_MAX];
	int sv[2], qv[2], state = -1, a = 0;
	pid_t parent = getpid();

	for (int k = 0; k < vm->nargs; k++)
		argv[a++] = vm->args[k];
	/* the VM's directory on QEMU's command line (not in vm->args, the
	 * snapshot key): ps and pgrep tell which build or container it is */
	snprintf(pidfile, sizeof pidfile, "%s/qemu.pid", vm->dir);
	argv[a++] = "-pidfile";
	argv[a++] = pidfile;
	if (mode == VM_COLD && vm->snap_args) {
		snprintf(memobj, sizeof memobj, "memory-backend-ram,id=mem,size=%ldM", vm->mem_mb);
		argv[a++] = "-object";
		argv[a++] = memobj;
	} else if (mode != VM_COLD) {
		if (qemu_path(qp, sizeof qp, dir, "/ram") < 0)
			return hypr_err_set(e, HYPR_EXIT_SYSTEM, "VM snapshot: %s: path too long", dir);
		snprintf(memobj, sizeof memobj, "memory-backend-file,id=mem,size=%ldM,mem-path=%s,share=%s",
		    vm->mem_mb, qp, mode == VM_SAVE ? "on" : "off");
		argv[a++] = "-object";
		argv[a++] = memobj;
	}
	/* each guest its own scratch disk (one that failed may have written
	 * it): a restored one a copy of the snapshot's, which it has mounted */
	if (vm->scratch == 1) {
		char sp[PATH_MAX];
		snprintf(sp, sizeof sp, "%s/scratch.ext4", dir ? dir : "");
		if (vm_make_scratch(vm, mode == VM_RESTORE ? sp : NULL, e) < 0)
			return -1;
	}
	if (mode == VM_RESTORE) {
		char sp[PATH_MAX];
		snprintf(sp, sizeof sp, "%s/state", dir);
		if ((state = open(sp, O_RDONLY | O_CLOEXEC)) < 0)
			return hypr_err_errno(e, HYPR_EXIT_SYSTEM, "VM snapshot: %s", sp);
		argv[a++] = "-incoming";
		argv[a++] = "defer";
	}
	argv[a] = NULL;
	snprintf(qlog, sizeof qlog, "%s/qemu.log", vm->dir);
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
		if (state >= 0)
			close(state);
		return hypr_err_errno(e, HYPR_EXIT_SYSTEM, "build VM: socketpair");
	}
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, qv) < 0) {
		close(sv[0]);
		close(sv[1]);
		if (state >= 0)
			close(state);
		return hypr_err_errno(e, HYPR_EXIT_SYSTEM, "build VM: socketpair");
	}
	vm->t0 = hypr_now();	/* boot time = QEMU spawn to READY */
	vm->pid = fork();
	if (vm->pid < 0) {
		close(sv[0]);
		close(sv[1]);
		close(qv[0]);
		close(qv[1]);
		if (state >= 0)
			close(state);
		return hypr_err_errno(e, HYPR_EXIT_SYSTEM, "build VM: fork");
	}
	if (vm->pid == 0) {
		/* QEMU must not outlive us, whatever kills us. */
		int lf, c, q, st = -1;
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(127);
		/* above the fixed numbers first, then onto them (dup2 clears
		 * FD_CLOEXEC) */
		c = fcntl(sv[1], F_DUPFD_CLOEXEC, 10);
		q = fcntl(qv[1], F_DUPFD_CLOEXEC, 10);
		if (state >= 0)
			st = fcntl(state, F_DUPFD_CLOEXEC, 10);
		if (c < 0 || q < 0 || dup2(c, atoi(VM_FD_CTL)) < 0 || dup2(q, atoi(VM_FD_QMP)) < 0 ||
		    (state >= 0 && (st < 0 || dup2(st, atoi(VM_FD_STATE)) < 0)))
			_exit(127);
		lf = open(qlog, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		int nul = open("/dev/null", O_RDONLY | O_CLOEXEC);
		if (nul >= 0)
			dup2(nul, 0);
		if (lf >= 0) {
			dup2(lf, 1);
			dup2(lf, 2);
		}
		if (chdir(vm->dir) < 0)
			_exit(127);
		/* a terminal ^C goes to the caller, which kills us in order */
		setpgid(0, 0);
		execvp(argv[0], argv);
		dprintf(2, "exec %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	if (state >= 0)
		close(state);
	close(sv[1]);
	close(qv[1]);
	if (vm->sock >= 0)
		close(vm->sock);
	vm->sock = sv[0];
	if (vm->qmp >= 0)
		close(vm->qmp);
	vm->qmp = qv[0];
	vm->qlen = 0;
	vm->rlen = 0;
	vm->paused = 0;
	vm->ioerr[0] = 0;
	fcntl(vm->qmp, F_SETFL, O_NONBLOCK);
	/* events come only in command mode; QEMU reads this after its greeting */
	vm_qmp_send(vm, "{\"execute\":\"qmp_capabilities\"}\n");
	vm->dead = 0;
	if (vm->pidfd >= 0)
		close(vm->pidfd);
	vm->pidfd = (int)syscall(SYS_pidfd_open, vm->pid, 0);
	vm->boot_deadline = vm->t0 + vm->boot_timeout;
	vm->booting = 1;
	/* the guest waits for GO at its snapshot point: a cold boot has it
	 * at once, a restore when QEMU has loaded the state */
	if (mode != VM_SAVE && vm->snap_args)
		return vm_snap_go(vm, e);
	return 0;
}

void
vm_args_free(struct hypr_vm *vm)
{
	for (int k = 0; k < vm->nargs; k++)
		free(vm->args[k]);
	vm->nargs = 0;
	vm->args[0] = NULL;
}

static int boot_cold(struct hypr_vm *vm, struct hypr_err *e);

/* The guest's READY after spawn: the boot is over. */
int
vm_wait_ready(struct hypr_vm *vm, struct hypr_err *e)
{
	unsigned char *p;
	uint32_t n;
	int type;

	if (!vm->booting)
		return 0;
	vm->booting = 0;
	/* launched long ago (work overlapped the boot): what the guest sent
	 * in time is in the socket, read at once; nothing there is late */
	if (vm->boot_deadline < hypr_now() + 0.1) {
		struct pollfd pf = { .fd = vm->sock, .events = POLLIN };
		if (vm->rlen > 0 || poll(&pf, 1, 0) > 0)
			vm->boot_deadline = hypr_now() + 0.1;
	}
	do {
		if (vm_recv_frame(vm, vm->boot_deadline, &type, &p, &n, e,
		    "waiting for the guest (boot)") < 0)
			return vm->snap == VM_SNAP_RESTORING ? boot_cold(vm, e) : -1;
		/* a cold boot's guest stops at the snapshot point too; its
		 * GO was sent with the launch. Once the guest has taken GO a
		 * restore has worked: what fails later (a bad base) is this
		 * VM's, the snapshot stays, and READY has a cold boot's time
		 * (HYPR_SNAPSHOT_TIMEOUT bounds the restore alone). */
		if (type == HYPR_MSG_RESUMED && vm->snap == VM_SNAP_RESTORING) {
			vm->snap = VM_SNAP_RESTORED;
			vm->boot_deadline = vm->t0 + vm->boot_timeout;
		}
		if (type == HYPR_MSG_PAUSED || type == HYPR_MSG_RESUMED)
			vm_consume(vm);
	} while (type == HYPR_MSG_PAUSED || type == HYPR_MSG_RESUMED);
	if (type != HYPR_MSG_READY) {
		if (vm->snap == VM_SNAP_RESTORING) {
			vm_unexpected(vm, type, p, n, e, "boot");
			return boot_cold(vm, e);
		}
		return vm_unexpected(vm, type, p, n, e, "boot");
	}
	vm_consume(vm);
	vm->boot_secs = hypr_now() - vm->t0;
	if (vm->snap == VM_SNAP_RESTORING)
		vm->snap = VM_SNAP_RESTORED;
	return 0;
}

/* A snapshot did not come back (QEMU refused its state, the guest hung or
 * failed before READY): it goes, with one warning, and this VM boots cold. */
static int
boot_cold(struct hypr_vm *vm, struct hypr_err *e)
{
	vm_reap(vm, 1);
	vm_snap_discard(vm, e->msg);
	memset(e, 0, sizeof *e);
	/* a new scratch fs (vm_exec); a kept writable layer is the
	 * container's: its journal recovers what the failed guest did */
	if (vm_exec(vm, VM_COLD, NULL, e) < 0)
		return -1;
	return vm_wait_ready(vm, e);
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
	vm_args_free(vm);
	free(vm->snapdir);
	free(vm->qreply);
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

/* o with every path absolute: QEMU runs in vm->dir. */
struct abs_opts {
	struct hypr_vm_opts o;
	struct hypr_vm_cache caches[HYPR_VM_MAX_CACHES];
	struct hypr_vm_share shares[HYPR_VM_MAX_SHARES];
	char *paths[2 + HYPR_VM_MAX_CACHES + HYPR_VM_MAX_SHARES];
	size_t npaths;
};

static const char *
abs_path(struct abs_opts *a, const char *p, struct hypr_err *e)
{
	char cwd[PATH_MAX], *s;

	if (!p || p[0] == '/')
		return p;
	if (!getcwd(cwd, sizeof cwd)) {
		hypr_err_errno(e, HYPR_EXIT_SYSTEM, "VM: getcwd");
		return NULL;
	}
	if (asprintf(&s, "%s/%s", cwd, p) < 0) {
		hypr_err_set(e, HYPR_EXIT_SYSTEM, "VM: out of memory");
		return NULL;
	}
	return a->paths[a->npaths++] = s;
}

static void
abs_free(struct abs_opts *a)
{
	for (size_t k = 0; k < a->npaths; k++)
		free(a->paths[k]);
	free(a);
}

static int launch_abs(struct hypr_vm **out, const struct hypr_vm_opts *o, struct hypr_err *e);

int
hypr_vm_launch(struct hypr_vm **out, const struct hypr_vm_opts *o, struct hypr_err *e)
{
	struct abs_opts *a = calloc(1, sizeof *a);
	int rc = -1;

	*out = NULL;
	if (!a)
		return hypr_err_set(e, HYPR_EXIT_SYSTEM, "VM: out of memory");
	a->o = *o;
	if (o->ncaches > HYPR_VM_MAX_CACHES || o->nshares > HYPR_VM_MAX_SHARES) {
		hypr_err_set(e, HYPR_EXIT_USAGE, "VM: more than %d %s", HYPR_VM_MAX_SHARES,
		    o->nshares > HYPR_VM_MAX_SHARES ? "shared directories" : "cache disks");
		goto out;
	}
	if ((o->base && !(a->o.base = abs_path(a, o->base, e))) ||
	    (o->rwdisk && !(a->o.rwdisk = abs_path(a, o->rwdisk, e))))
		goto out;
	for (size_t k = 0; k < o->ncaches; k++) {
		a->caches[k] = o->caches[k];
		if (!(a->caches[k].image = abs_path(a, o->caches[k].image, e)))
			goto out;
	}
	for (size_t k = 0; k < o->nshares; k++) {
		a->shares[k] = o->shares[k];
		if (!(a->shares[k].path = abs_path(a, o->shares[k].path, e)))
			goto out;
	}
	a->o.caches = a->caches;
	a->o.shares = a->shares;
	rc = launch_abs(out, &a->o, e);
out:
	abs_free(a);
	return rc;
}

static int
launch_abs(struct hypr_vm **out, const struct hypr_vm_opts *o, struct hypr_err *e)
{
	struct hypr_vm *vm = calloc(1, sizeof *vm);
	const char *accel = getenv("HYPR_ACCEL");
	char tmpl[PATH_MAX], root[PATH_MAX], verdict[16];
	double boot_timeout = o->boot_timeout > 0 ? o->boot_timeout : hypr_env_seconds("HYPR_BOOT_TIMEOUT", 30);
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
	{
		struct stat bst;
		if (o->base && (stat(o->base, &bst) < 0 || !S_ISREG(bst.st_mode))) {
			hypr_err_set(e, HYPR_EXIT_SYSTEM, "build VM: base %s: not a file", o->base);
			vm_free(vm);
			return -1;
		}
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
	if (!mkdtemp(tmpl)) {
		hypr_err_errno(e, HYPR_EXIT_SYSTEM, "build VM: mkdtemp %s", tmpl);
		vm_free(vm);
		return -1;
	}
	if (!(vm->dir = realpath(tmpl, NULL))) {
		hypr_err_errno(e, HYPR_EXIT_SYSTEM, "build VM: %s", tmpl);
		rmdir(tmpl);
		vm_free(vm);
		return -1;
	}
	vm->runtime = o->runtime;
	/* one io disk (a virtio transport is scarce: hypr_vm_cache_room):
	 * diffs come out at its start, tars go in after the out region */
	if (!o->runtime) {
		if (vm_disk_limit(vm, o, e) < 0) {
			vm_free(vm);
			return -1;
		}
		/* where the in region starts does not depend on the limit
		 * (a snapshot's guest saw the disk's size) */
		uint64_t out_max = vm_dev_size(vm) + vm_dev_size(vm) / 8 + (64ull << 20);
		vm->in_base = (out_max + (1u << 20) - 1) & ~(uint64_t)((1u << 20) - 1);
		if (vm_make_disk(vm, "io", vm->in_base + DISK_SIZE, &vm->iofd, e) < 0) {
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
		/* a runtime VM's writable layer is on rwdisk or in guest memory */
		const char *sm = getenv("HYPR_VM_SCRATCH");
		if (o->runtime && o->rwdisk && vm_use_rwdisk(vm, o->rwdisk, e) < 0) {
			vm_free(vm);
			return -1;
		}
		/* a build's is made by vm_exec, once the snapshot is known */
		if (!o->runtime && (!sm || strcmp(sm, "tmpfs")))
			vm->scratch = 1;
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
		if (spawn(vm, o, "kvm", hypr_env_seconds("HYPR_KVM_CANARY_TIMEOUT", 3), &ce) == 0 &&
		    vm_wait_ready(vm, &ce) == 0) {
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
	return vm_wait_ready(vm, e);
}

int
hypr_vm_start(struct hypr_vm **out, const struct hypr_vm_opts *o, struct hypr_err *e)
{
	if (hypr_vm_launch(out, o, e) < 0)
		return -1;
	if (vm_wait_ready(*out, e) < 0) {
		hypr_vm_kill(*out);
		*out = NULL;
		return -1;
	}
	return 0;
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
		vm_consume(vm);
		vm->held = 0;
	}
	if (!vm->dead && vm->olen && hypr_write_all(vm->sock, vm->obuf, vm->olen) < 0) {
		vm_reap(vm, 1);
		vm_free(vm);
		return hypr_err_errno(e, HYPR_EXIT_SYSTEM, "VM: control port");
	}
	vm->olen = 0;
	if (!vm->dead) {
		double deadline = hypr_now() + hypr_env_seconds("HYPR_SHUTDOWN_TIMEOUT", 10);
		/* not watched: the reader may rightly be gone once the caller's
		 * output is complete, and QEMU is going anyway */
		vm->cur_watch = -1;
		if (vm_send_frame(vm, HYPR_MSG_QUIT, NULL, 0, e) < 0) {
			rc = -1;
		} else if (vm_recv_frame(vm, deadline, &type, &p, &n, e, "shutdown") < 0) {
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
hypr_vm_warning(struct hypr_vm *vm)
{
	if (!vm || !vm->warning[0] || vm->warned)
		return NULL;
	vm->warned = 1;
	return vm->warning;
}

const char *
hypr_vm_snapshot(const struct hypr_vm *vm)
{
	if (!vm || vm->snap != VM_SNAP_RESTORED)
		return "none";
	if (vm->snap_base)
		return vm->snap_saved ? "saved (base)" : "restored (base)";
	return vm->snap_saved ? "saved" : "restored";
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
