/* guest.h - pieces of hypr-init, the build VM's PID 1 (guest side only). */
#ifndef HYPR_GUEST_H
#define HYPR_GUEST_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define GUEST_BUF (1u << 20)	/* O_DIRECT transfer unit, 4 KiB aligned */
#define L "/L"			/* layers: L/1..n, the init layer L/i, the base L/b */
#define R "/R"			/* the step root (an overlay) */
#define GUEST_IP "10.0.2.15"	/* QEMU user networking's defaults */
#define GUEST_GW "10.0.2.2"
#define GUEST_DNS "10.0.2.3"

/* A growable string: paths have no length limit (a tree may be deeper than
 * PATH_MAX; every file operation is relative to a directory fd). */
struct sbuf {
	char *s;
	size_t len, cap;
};

/* ---- hypr-init.c ---- */
extern int debug;
extern int ctl;			/* the hypr.ctl port */
extern int sigfd;		/* SIGCHLD (blocked) as a signalfd */
void logmsg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int write_file(const char *path, const char *s);
/* Format an error message into err (errlen bytes). */
void guest_seterr(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Bring lo up in the current network namespace. */
void lo_up(void);
/* One frame to the host (fatal if the port is gone). */
void send_frame(int type, uint32_t step, const void *p, size_t n);
void send_error(uint32_t step, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int read_all(int fd, void *p, size_t n);
int write_all(int fd, const void *p, size_t n);
__attribute__((noreturn)) void poweroff(void);
/* Log "fatal: ..." and power off. */
__attribute__((noreturn, format(printf, 1, 2))) void fatal(const char *fmt, ...);

/* ---- guest-snap.c: the snapshot point (hypr-guest(7)) ---- */

/* The layers' fs (L) written out: a snapshot's copy of the scratch disk
 * is what its guest knows. */
void sync_layers(void);
/* Stop for the host's snapshot (PAUSED) and go on at its GO: reseed the
 * CRNG, drop the cached blocks of devs (n names, "" skipped). The build's
 * disk limit GO carries, or 0. */
uint64_t snapshot_point(const char *const *devs, size_t n);
/* hypr.snapbase=1: the warm-up step run first (warm), everything it left
 * killed, the layers synced, then snapshot_point. */
uint64_t snapshot_base(const char *const *devs, size_t n, int warm);

/* ---- step.c: one RUN ---- */

/* A mount of a step (hypr-guest(7), the RUN request's m records). */
struct mnt {
	char type;		/* 'b' bind, 'c' cache, 't' tmpfs, 's' secret,
				 * 'p' a 9p share of the host (hypr run -v) */
	char *target;		/* absolute, in the step root */
	char *source;		/* bind, cache: a guest path; 9p: its mount tag */
	int rw;			/* bind: writes allowed (and thrown away) */
	int ro;			/* cache, 9p: read-only */
	long mode, uid, gid;	/* -1: unset */
	uint64_t size;		/* tmpfs: bytes, 0 = default */
	char *data;		/* secret: its bytes (never on a disk) */
	size_t dlen;
	char *canon;		/* target after the image's symlinks (step_root) */
	int isfile;		/* the mount point is a file */
};

struct run {
	char **argv, **env;
	size_t nargv, nenv;
	char *cwd, *user, *hostname;
	long long time_ns;
	int net;		/* the step has the VM's network (else lo only) */
	char **hosts;		/* extra /etc/hosts lines ("IP NAME") */
	size_t nhosts;
	struct mnt *mounts;
	size_t nmounts;
	/* a runtime process (START) */
	int tty;		/* a terminal */
	int stdin_open;		/* stdin from STDIN frames */
	int exec;		/* join the main process */
	unsigned rows, cols;	/* the terminal's size */
};

/* A step's or a runtime process's stdio and how it starts. */
struct child_io {
	int in;			/* stdin, or -1: /dev/null */
	int out, err;		/* with tty: out is the terminal's slave, on 0, 1, 2 */
	int tty;
	int status;		/* -1, or a close-on-exec pipe: a byte there means
				 * the process could not start (else EOF) */
	pid_t join;		/* > 0: enter this process's namespaces and root
				 * instead of new ones (hypr exec) */
};

/* Decode a RUN request's TLV payload; 0, or -1 (malformed). */
int run_parse(unsigned char *p, size_t n, struct run *r);
void run_free(struct run *r);
/* The upper layers outlive the VM (a runtime VM's writable layer on a
 * disk the host keeps): overlays are mounted without "volatile", which
 * would refuse the next boot's mount after an unclean stop. */
extern int durable_upper;
/* Mount step n's root at R: an overlay whose upper is layer n, with a
 * layer of mount points on top of the lowers when the step has mounts,
 * then /proc, /dev and the agent's /etc files. 0, or -1 with err. */
int step_root(unsigned n, struct run *r, char *err, size_t errlen);
/* Detach R and whatever is mounted under it; wipe secrets. */
void step_unmount(void);
/* Under TCG a guest's first step pays for QEMU translating every kernel
 * and shell path it takes. Started at READY, this step pays for it instead,
 * on the other vCPU while the host imports the first layers: `/bin/sh -c :`
 * as a RUN runs it, in a read-only view of the base (mount namespace of
 * its own: its mounts die with it), output discarded. Its pid; a RUN reaps
 * it, or kills it if it is still there when the RUN ends. */
pid_t step_warm(void);
/* In the forked child: namespaces, mounts, root, user; exec the command. */
__attribute__((noreturn)) void step_child(struct run *r, const struct child_io *io);

/* ---- runtime.c: hypr run ---- */

/* Serve a runtime VM from its first START frame (the image's process,
 * step = its id) on: never returns (QUIT powers off). */
__attribute__((noreturn)) void runtime(uint32_t id, unsigned char *p, size_t n);

/* ---- guest-diff.c ---- */

/* Write layerdir as an OCI layer tar at byte off of the raw disk outfd
 * (opened O_DIRECT), never at or past byte end: whiteouts as .wh.NAME, opaque dirs as .wh..wh..opq,
 * trusted.overlay.* dropped, other xattrs as PAX SCHILY.xattr, hard links,
 * names sorted, mtimes clamped to epoch when epoch >= 0. */
int guest_diff(const char *layerdir, int outfd, uint64_t off, uint64_t end, int64_t epoch,
    uint64_t *len, char *err, size_t errlen);

/* ---- guest-import.c ---- */
/* Extract the tar at [off, off+len) of the raw disk infd (O_DIRECT) into
 * layerdir, turning .wh.NAME into overlay whiteouts (char 0:0) and
 * .wh..wh..opq into trusted.overlay.opaque. Runs chrooted in a child. */
int guest_import(int infd, uint64_t off, uint64_t len, const char *layerdir,
    char *err, size_t errlen);

/* rm -rf path, not following symlinks. */
void guest_rm_rf(const char *path);

#endif
