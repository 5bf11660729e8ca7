/* vm_int.h - private to the build VM's host side (vm.c launches and stops,
 * vm_frames.c speaks the control port and QMP, vm_steps.c runs steps and
 * moves layers, vm_proc.c runs hypr run's processes). */
#ifndef HYPR_VM_INT_H
#define HYPR_VM_INT_H

#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "err.h"
#include "vm.h"
#include "vm_proto.h"

#define DISK_SIZE (64ull << 30)	/* sparse in region; default build disk limit */
#define DISK_MIN (64ull << 20)	/* smallest build disk worth booting */

#define VM_MAXARGS (72 + 4 * HYPR_VM_MAX_CACHES + 4 * HYPR_VM_MAX_SHARES)
/* QEMU's fds: the control port, QMP, a snapshot's state (VM_RESTORE) */
#define VM_FD_CTL "3"
#define VM_FD_QMP "4"
#define VM_FD_STATE "5"

enum vm_mode { VM_COLD, VM_SAVE, VM_RESTORE };
enum vm_snap { VM_SNAP_NONE, VM_SNAP_RESTORING, VM_SNAP_RESTORED };

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
	uint64_t in_used;	/* [in_base, +in_used): squashfs layers the guest
				 * has mounted for the VM's life */
	int scratch;		/* layers on an ext4 disk (else guest tmpfs): 1 this
				 * VM's own, 2 a runtime VM's writable layer
				 * kept across boots (opts.rwdisk) */
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
	char *args[VM_MAXARGS];	/* QEMU's command line (spawn), NULL-terminated */
	int nargs;
	int snap_args;		/* it has hypr.snap=1 and RAM backend "mem" */
	long mem_mb;
	double boot_timeout;
	enum vm_snap snap;
	int snap_saved;		/* this VM saved the snapshot it was restored from */
	int snap_base;		/* vm->args have hypr.snapbase=1: the base's own snapshot */
	int snap_shared;	/* HYPR_VM_SNAPSHOT=shared: never the base's own */
	char *snapdir;		/* the snapshot restored (VM_SNAP_RESTORING/ED) */
	char *qreply;		/* the last QMP reply with an "id" (vm_snap.c) */
	char warning[512];	/* one line for the caller to print, or "" */
	int warned;		/* hypr_vm_warning gave it */
	int sqfs_refused;	/* the guest cannot mount a squashfs layer */
};

/* Run QEMU with vm->args, plus what mode adds (vm.c). */
int vm_exec(struct hypr_vm *vm, enum vm_mode mode, const char *dir, struct hypr_err *e);
void vm_args_free(struct hypr_vm *vm);
/* $HYPR_ROOT (or its default) */
const char *vm_hypr_root(char *buf, size_t cap);

/* vm_disk.c: the disks on the host, in vm->dir */
/* A sparse raw disk NAME.raw of size bytes, open in *fd. */
int vm_make_disk(struct hypr_vm *vm, const char *name, uint64_t size, int *fd,
    struct hypr_err *e);
/* The scratch disk's size as the guest sees it (the same for every build:
 * a snapshot's guest saw it so). */
uint64_t vm_dev_size(const struct hypr_vm *vm);
/* A build's scratch disk (vm->scratch 1): a copy of from (a snapshot's),
 * or a new file system; made for each QEMU start (vm_exec). */
int vm_make_scratch(struct hypr_vm *vm, const char *from, struct hypr_err *e);
/* Copy [off, +len) of from to to, at *at (advanced) or to's offset when
 * at is NULL; fname and tname name them in errors. */
int vm_copy_range(int from, const char *fname, off_t off, uint64_t len, int to,
    const char *tname, loff_t *at, struct hypr_err *e);
/* to as a copy of the file from, holes kept. */
int vm_copy_sparse(const char *from, const char *to, struct hypr_err *e);
/* A container's kept writable layer at path as the scratch disk
 * (vm->scratch 2), made when missing. */
int vm_use_rwdisk(struct hypr_vm *vm, const char *path, struct hypr_err *e);
/* vm->disk and vm->out_size: the build's disk limit, checked against the
 * free space. */
int vm_disk_limit(struct hypr_vm *vm, const struct hypr_vm_opts *o, struct hypr_err *e);

/* ---- snapshots (vm_snap.c, hypr-guest(7)) ---- */
/* Whether a VM of these options may come from a snapshot. */
int vm_snap_eligible(struct hypr_vm *vm, const struct hypr_vm_opts *o, const char *accel);
/* Start vm->args from the snapshot of its shape, saving it first if there
 * is none. -1: no snapshot (vm->warning may say why); boot cold. */
int vm_snap_start(struct hypr_vm *vm, const struct hypr_vm_opts *o, struct hypr_err *e);
/* A restore failed before READY (QEMU killed): the snapshot is removed
 * and vm->warning says so. */
void vm_snap_discard(struct hypr_vm *vm, const char *why);
/* A GO frame with fresh entropy (hypr-guest(7)). */
int vm_snap_go(struct hypr_vm *vm, struct hypr_err *e);

/* The guest's READY after spawn: the boot is over. */
int vm_wait_ready(struct hypr_vm *vm, struct hypr_err *e);
/* Next frame, waiting until the absolute deadline (0 = none). Returns 0,
 * or -1 with the VM killed. *payload points into vm->rbuf until the next call. */
int vm_recv_frame(struct hypr_vm *vm, double deadline, int *type, unsigned char **payload,
    uint32_t *len, struct hypr_err *e, const char *what);
/* QEMU is gone without a word from the guest: a crash. One line that says
 * so, with the kernel's panic reason or else the last console line. */
int vm_exited(struct hypr_vm *vm, struct hypr_err *e, const char *what);
void vm_qmp_send(struct hypr_vm *vm, const char *cmd);
int vm_send_frame(struct hypr_vm *vm, int type, const void *p, size_t n, struct hypr_err *e);
/* Drop the frame recv_frame returned. */
void vm_consume(struct hypr_vm *vm);
void vm_reap(struct hypr_vm *vm, int kill_it);
void vm_qmp_read(struct hypr_vm *vm);
/* Why QEMU is gone (or must go): fills e and kills it. */
int vm_fail(struct hypr_vm *vm, struct hypr_err *e, int code, const char *what);
/* ERROR frame -> hypr_err; anything unexpected -> protocol error (VM killed). */
int vm_unexpected(struct hypr_vm *vm, int type, const unsigned char *p, uint32_t n,
    struct hypr_err *e, const char *what);
int vm_tlv(unsigned char **buf, size_t *len, size_t *cap, int tag, const char *s);
/* The TLV payload of a RUN or START request (hypr-guest(7)). */
int vm_run_payload(const struct hypr_vm_run *r, unsigned char **bufp, size_t *lenp,
    struct hypr_err *e);

#endif
