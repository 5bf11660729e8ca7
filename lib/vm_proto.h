/* vm_proto.h - the hypr-init control protocol (guest and host share it).
 *
 * One virtio-serial port named "hypr.ctl". Every message is a frame:
 *	u32 len (payload bytes, little endian), u8 type, u32 step, payload.
 * Strings travel as TLV records inside a payload: u8 tag, u32 len, bytes.
 * Integers are little endian. Documented in hypr-guest(7). */
#ifndef HYPR_VM_PROTO_H
#define HYPR_VM_PROTO_H

#include <stdint.h>

#define HYPR_PROTO_VERSION	1
#define HYPR_PROTO_PORT		"hypr.ctl"
#define HYPR_PROTO_HDR		9
#define HYPR_PROTO_MAX		(16u << 20)	/* largest payload accepted */
#define HYPR_PROTO_MAX_LAYERS	499		/* overlayfs stacks 500 lowers */

enum hypr_proto_type {
	/* host -> guest */
	HYPR_MSG_RUN = 'R',	/* TLV: argv*, env*, cwd, user, host, time, net, hosts*, mounts* */
	HYPR_MSG_DIFF = 'D',	/* i64 epoch (-1 none), u64 io-disk offset, u64 end */
	HYPR_MSG_IMPORT = 'I',	/* u64 io-disk offset, u64 length[, u32 flags] */
	HYPR_MSG_MOUNTDATA = 'M',	/* u64 io-disk offset, u64 length, name */
	HYPR_MSG_QUIT = 'Q',	/* empty */
	/* host -> guest, a runtime VM (hypr run); step = the process id */
	HYPR_MSG_START = 'S',	/* TLV as RUN, plus tty, stdin, winsize, exec */
	HYPR_MSG_STDIN = '0',	/* raw bytes for the process; empty: close its stdin */
	HYPR_MSG_SIGNAL = 'K',	/* u32 signal number */
	HYPR_MSG_WINSIZE = 'W',	/* u32 rows, u32 columns */
	HYPR_MSG_GO = 'G',	/* 32 random bytes: a restored guest goes on */
	/* guest -> host */
	HYPR_MSG_READY = 'Y',	/* text: "hypr-init VERSION" */
	HYPR_MSG_STDOUT = '1',	/* raw bytes */
	HYPR_MSG_STDERR = '2',	/* raw bytes */
	HYPR_MSG_EXIT = 'X',	/* i32 status: exit code or 128+signal; u32 flags */
	HYPR_MSG_DIFFDONE = 'd',	/* u64 tar length written at the offset */
	HYPR_MSG_IMPORTED = 'i',	/* empty: the layer is stacked */
	HYPR_MSG_ERROR = 'E',	/* text */
	HYPR_MSG_BYE = 'q',	/* empty: about to reboot (power off) */
	HYPR_MSG_STARTED = 's',	/* u32 guest pid: the process runs (exec worked) */
	HYPR_MSG_ACK = 'a',	/* u32 stdin bytes the process has taken */
	HYPR_MSG_PAUSED = 'P',	/* empty: hypr.snap=1, save the guest now (GO next) */
	HYPR_MSG_RESUMED = 'g',	/* empty: GO taken (a restore came back) */
};

/* flags of an IMPORT frame */
#define HYPR_IMPORT_SQUASHFS	1u	/* a squashfs image, mounted where it is (loop) */

/* flags of an EXIT frame */
#define HYPR_EXIT_DISK_FULL	1u	/* the build disk has (almost) no space left */

enum hypr_proto_tag {
	HYPR_TAG_ARGV = 'a',
	HYPR_TAG_ENV = 'e',
	HYPR_TAG_CWD = 'c',
	HYPR_TAG_USER = 'u',
	HYPR_TAG_HOSTNAME = 'h',
	HYPR_TAG_TIME = 't',	/* decimal CLOCK_REALTIME nanoseconds */
	HYPR_TAG_NET = 'n',	/* "1": the step has the VM's network */
	HYPR_TAG_HOST = 'H',	/* an extra /etc/hosts line, "IP NAME" */
	HYPR_TAG_MOUNT = 'm',	/* type, target, source, flags, mode, uid, gid,
				 * size (NUL-terminated), then the data */
	HYPR_TAG_TTY = 'T',	/* "1": a terminal (pty) for the process */
	HYPR_TAG_STDIN = 'i',	/* "1": stdin open (STDIN frames), else /dev/null */
	HYPR_TAG_WINSIZE = 'w',	/* "ROWS COLS" of the terminal */
	HYPR_TAG_EXEC = 'x',	/* "1": join the main process's namespaces */
};

static inline void
hypr_proto_put32(unsigned char *p, uint32_t v)
{
	p[0] = v & 0xff; p[1] = (v >> 8) & 0xff;
	p[2] = (v >> 16) & 0xff; p[3] = (v >> 24) & 0xff;
}

static inline uint32_t
hypr_proto_get32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	    (uint32_t)p[3] << 24;
}

static inline void
hypr_proto_put64(unsigned char *p, uint64_t v)
{
	hypr_proto_put32(p, (uint32_t)v);
	hypr_proto_put32(p + 4, (uint32_t)(v >> 32));
}

static inline uint64_t
hypr_proto_get64(const unsigned char *p)
{
	return (uint64_t)hypr_proto_get32(p) | (uint64_t)hypr_proto_get32(p + 4) << 32;
}

#endif
