/* vm.h - the build VM, host side: QEMU microvm + the hypr-init guest agent.
 *
 * One VM serves one build stage. Each RUN gets a fresh overlay whose upper
 * dir is exactly that step's layer; earlier uppers (and imported layers)
 * are its lowers, over the base squashfs. Guest protocol: hypr-guest(7). */
#ifndef HYPR_VM_H
#define HYPR_VM_H

#include <stddef.h>
#include <stdint.h>
#include <poll.h>
#include <sys/types.h>
#include "err.h"

struct hypr_vm;

/* A cache mount's disk: an ext4 image the caller made and holds a lock
 * on; the guest mounts it at boot (hypr-guest(7)). */
struct hypr_vm_cache {
	const char *image;
};
#define HYPR_VM_MAX_CACHES 32

/* QEMU's microvm without ACPI has 8 virtio-mmio transports: the control
 * port, every disk, every shared directory and the network take one each. */
#define HYPR_VM_TRANSPORTS 8
/* How many cache disks a build VM can take beside its control port, io
 * disk, scratch disk, base disk (has_base) and network (net). */
int hypr_vm_cache_room(int has_base, int net);

/* A host port forwarded to the guest (hypr run -p): QEMU user networking. */
struct hypr_vm_fwd {
	int udp;
	const char *host_ip;	/* NULL = 127.0.0.1 */
	unsigned host_port, guest_port;
};

/* A host directory the guest mounts over 9p (hypr run -v); tag names it
 * to the guest (hypr-guest(7)). */
struct hypr_vm_share {
	const char *path;
	const char *tag;
	int ro;
};
#define HYPR_VM_MAX_SHARES 32

struct hypr_vm_opts {
	const char *base;	/* base rootfs squashfs; NULL = empty (FROM scratch) */
	const char *tmpdir;	/* where scratch/out/in disks live (deleted on stop) */
	const char *accel;	/* "kvm", "tcg" or NULL = auto (HYPR_ACCEL, then probe) */
	int mem_mb;		/* 0 = default */
	int cpus;		/* 0 = HYPR_VM_CPUS, else the host's CPUs (at most
				 * 16); a runtime VM under TCG: 1 */
	double boot_timeout;	/* seconds to READY; 0 = default */
	uint64_t disk;		/* bytes a build's layers may take (the scratch
				 * disk); 0 = HYPR_BUILD_DISK, else 64 GiB or
				 * 90% of the free space, whichever is smaller.
				 * One given is checked against the free space. */
	int net;		/* a network device (QEMU user networking) */
	const struct hypr_vm_cache *caches;	/* disks cache0.. */
	size_t ncaches;
	int watch_fd;		/* > 0: every wait (boot, RUN, diff, import) fails
				 * at once, VM killed, when this fd reports POLLERR
				 * or POLLHUP: pass STDOUT_FILENO so a gone stream
				 * reader stops the build. 0 = none. */
	/* A runtime VM (hypr run): base is the image; no build disks (the
	 * writable layer lives in guest memory or on rwdisk); processes are driven with
	 * hypr_vm_proc_* and hypr_vm_next_event. */
	int runtime;
	const char *rwdisk;	/* a runtime VM's writable layer on this ext4
				 * disk file, made when missing and kept across
				 * boots (a container's, until it is removed);
				 * NULL: in guest memory, gone with the VM */
	const struct hypr_vm_fwd *fwds;	/* host forwards; any gives a network */
	size_t nfwds;
	const struct hypr_vm_share *shares;	/* 9p shares */
	size_t nshares;
	char *const *guestfwds;	/* QEMU guestfwd rules ("tcp:IP:PORT-cmd:..."),
				 * NULL-terminated; any gives a network */
};

/* Called with live output of a RUN: fd is 1 (stdout) or 2 (stderr). */
typedef void hypr_vm_output_fn(void *arg, int fd, const char *buf, size_t len);

/* A RUN --mount (hypr-guest(7)). */
struct hypr_vm_mount {
	char type;		/* 'b' bind, 'c' cache, 't' tmpfs, 's' secret,
				 * 'p' a 9p share (hypr_vm_opts.shares; source is
				 * its tag, ro read-only) */
	const char *target;	/* absolute path in the step root */
	const char *source;	/* bind: a name given to hypr_vm_mount_data, with
				 * an optional "/sub/path"; cache: the cache
				 * disk's index as a decimal string */
	int rw, ro;		/* bind rw (writes thrown away); cache ro */
	long mode, uid, gid;	/* -1 unset (cache: set on a new one; secret) */
	uint64_t size;		/* tmpfs size in bytes, 0 = default */
	const void *data;	/* secret bytes: they travel on the control
				 * port only, never through a disk */
	size_t dlen;
};

struct hypr_vm_run {
	char *const *argv;	/* full argv: shell form is already SHELL + cmd */
	char *const *env;	/* "K=V" strings, NULL-terminated */
	const char *cwd;	/* absolute; created if missing */
	const char *user;	/* "name", "uid", "name:group", "uid:gid"; NULL = root.
				 * Resolved in the guest against the step root's
				 * /etc/passwd and /etc/group. */
	const char *hostname;	/* NULL = "hypr" */
	double timeout;		/* seconds; 0 = none (HYPR_STEP_TIMEOUT) */
	int64_t epoch;		/* SOURCE_DATE_EPOCH or -1 */
	hypr_vm_output_fn *output;
	void *output_arg;
	int watch_fd;		/* > 0: as hypr_vm_opts.watch_fd, for this step
				 * only (overrides it); 0 = the VM's watch_fd */
	int net;		/* the step has the VM's network (opts.net) */
	char *const *hosts;	/* extra /etc/hosts lines "IP NAME", NULL-terminated */
	const struct hypr_vm_mount *mounts;
	size_t nmounts;
};

/* A sparse file of dev bytes at path with an ext4 file system of fs bytes
 * (0: all of it) whose root uid:gid owns (-1: 0), a journal when it
 * outlives one VM; lazy init, so a TCG guest never zeroes inode tables.
 * -1 with e naming path. */
int hypr_vm_mkfs(const char *path, uint64_t dev, uint64_t fs, int journal, long uid, long gid,
    struct hypr_err *e);

/* Boot a VM (kernel and initramfs found as hypr-guest(7) says); waits for READY. */
int hypr_vm_start(struct hypr_vm **vm, const struct hypr_vm_opts *o,
    struct hypr_err *e);
/* The same in two halves, to overlap the boot with other work: launch
 * returns once QEMU runs (a KVM canary boot still waits); ready waits for
 * READY, and so does the first call that needs the guest. After a failed
 * ready the VM is dead: hypr_vm_stop or hypr_vm_kill frees it. Stopping a
 * VM that is still booting kills it. */
int hypr_vm_launch(struct hypr_vm **vm, const struct hypr_vm_opts *o, struct hypr_err *e);
int hypr_vm_ready(struct hypr_vm *vm, struct hypr_err *e);
/* Run one step in a new overlay layer. *status gets the exit code, or
 * 128+signal; a timeout is an error (HYPR_EXIT_STEP) with the VM killed;
 * so is a watched fd's POLLERR/POLLHUP (HYPR_EXIT_SYSTEM, "reader gone"). */
int hypr_vm_run(struct hypr_vm *vm, const struct hypr_vm_run *r, int *status,
    struct hypr_err *e);
/* Write the last step's upper dir as an uncompressed OCI layer tar to out_fd
 * (whiteouts .wh.NAME, opaque dirs .wh..wh..opq, sorted, xattrs as PAX,
 * mtimes clamped to epoch when epoch >= 0). */
int hypr_vm_diff(struct hypr_vm *vm, int64_t epoch, int out_fd, uint64_t *len,
    struct hypr_err *e);
/* Stack a layer tar (any compression libarchive reads) as the next lower, as
 * if a step had produced it (cached steps, COPY/ADD layers). */
int hypr_vm_import(struct hypr_vm *vm, const char *tar_path, struct hypr_err *e);
/* Extract a tar (any compression) for RUN --mount: name "cacheK" seeds
 * cache disk K's root, any other name becomes a bind source. */
int hypr_vm_mount_data(struct hypr_vm *vm, const char *tar_path, const char *name,
    struct hypr_err *e);
/* Clean shutdown (QUIT, wait, reap) and free. */
int hypr_vm_stop(struct hypr_vm *vm, struct hypr_err *e);
/* Kill QEMU at once and free (error paths). After any failed call the VM
 * is dead: hypr_vm_stop or hypr_vm_kill still frees it. QEMU also dies
 * by itself if this process dies (PR_SET_PDEATHSIG). */
void hypr_vm_kill(struct hypr_vm *vm);
/* QEMU's pid, or -1: a signal handler may kill(pid, SIGKILL) it (async-safe),
 * then exit; the private temp dir is then left behind. */
pid_t hypr_vm_pid(const struct hypr_vm *vm);
/* Seconds from QEMU spawn to the guest's READY. */
double hypr_vm_boot_seconds(const struct hypr_vm *vm);
/* Whether the VM came from a snapshot (hypr-guest(7)): "restored",
 * "saved" (it made the snapshot, then was restored from it), each with
 * " (base)" when the snapshot is its base's own, or "none". */
const char *hypr_vm_snapshot(const struct hypr_vm *vm);
/* The build VM snapshots kept for the store at root (HYPR_SNAPSHOT_DIR,
 * else root/vm: hypr-guest(7)): how many, and the disk they take; with
 * remove, they go (the next VM of each shape saves its own again). */
int hypr_vm_snapshots(const char *root, int remove, size_t *n, uint64_t *bytes,
    struct hypr_err *e);
/* One line the caller should print as a warning (a snapshot that could not
 * be used, so the VM booted cold), once; else NULL. */
const char *hypr_vm_warning(struct hypr_vm *vm);
/* Which accelerator the VM runs on: "kvm" or "tcg". */
const char *hypr_vm_accel(const struct hypr_vm *vm);
/* Whether this start booted a KVM canary: 0 no (HYPR_ACCEL or the host
 * boot's verdict decided), 1 it reached READY, -1 it failed (then TCG). */
int hypr_vm_canary(const struct hypr_vm *vm);
/* The first disk error QEMU reported for this VM ("the host disk is full
 * (...)"), or NULL. The guest sees it as EIO and the step fails; this
 * names the real cause. */
const char *hypr_vm_io_error(const struct hypr_vm *vm);
/* After a RUN: whether the guest found its build disk full (then a failed
 * step is most likely out of space). */
int hypr_vm_disk_full(const struct hypr_vm *vm);
/* The build disk's size in bytes (the limit chosen at start). */
uint64_t hypr_vm_disk_size(const struct hypr_vm *vm);

/* ---- a runtime VM: processes (hypr run, hypr exec) ----
 * The caller owns the event loop: it polls hypr_vm_pollfds with its own
 * fds, then takes hypr_vm_next_event until it returns 0. Requests are
 * queued and never block. Process ids are the caller's; the first process
 * started is the image's (its exit ends every other). */
struct hypr_vm_proc {
	int tty;		/* a terminal (pty) in the guest */
	int stdin_open;		/* stdin comes from hypr_vm_proc_stdin */
	unsigned rows, cols;	/* the terminal's size, 0 = the guest's default */
};
enum hypr_vm_ev {
	HYPR_VM_EV_STARTED = 's',	/* the process runs (value: its guest pid) */
	HYPR_VM_EV_STDOUT = '1',	/* data, len */
	HYPR_VM_EV_STDERR = '2',
	HYPR_VM_EV_ACK = 'a',	/* value: stdin bytes it has taken */
	HYPR_VM_EV_EXIT = 'X',	/* value: exit status, or 128 + signal */
	HYPR_VM_EV_ERROR = 'E',	/* data: why a START failed (no EXIT follows) */
};
struct hypr_vm_event {
	int type;		/* enum hypr_vm_ev */
	uint32_t id;		/* the process */
	const unsigned char *data;	/* valid until the next call */
	size_t len;
	int value;
};
/* Start a process in a runtime VM: the first is the image's (its root is
 * set up then); later ones join it (hypr exec). r->timeout, output and
 * watch_fd are unused. */
int hypr_vm_proc_start(struct hypr_vm *vm, uint32_t id, const struct hypr_vm_run *r,
    const struct hypr_vm_proc *p, struct hypr_err *e);
/* Bytes for its stdin (len 0: close it); the caller keeps what is not yet
 * acknowledged (HYPR_VM_EV_ACK) small (the guest holds 1 MiB). */
int hypr_vm_proc_stdin(struct hypr_vm *vm, uint32_t id, const void *buf, size_t len,
    struct hypr_err *e);
int hypr_vm_proc_signal(struct hypr_vm *vm, uint32_t id, int sig, struct hypr_err *e);
int hypr_vm_proc_winsize(struct hypr_vm *vm, uint32_t id, unsigned rows, unsigned cols,
    struct hypr_err *e);
#define HYPR_VM_NPOLL 3
/* Fill pf[0..HYPR_VM_NPOLL) with what to poll for this VM. */
void hypr_vm_pollfds(const struct hypr_vm *vm, struct pollfd *pf);
/* The next event, without waiting: 1 (*ev filled), 0 none yet, -1 the VM
 * is gone or broke the protocol (QEMU killed; e says why). */
int hypr_vm_next_event(struct hypr_vm *vm, struct hypr_vm_event *ev, struct hypr_err *e);

#endif
