/* vm_frames.c - the control port's frames and QEMU's monitor (QMP), host
 * side: a frame read with a deadline, the guest's death or panic named
 * from its console, disk errors and pauses as QEMU reports them. */
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
#include "vm_int.h"

/* ---- frames ---- */

int
vm_send_frame(struct hypr_vm *vm, int type, const void *p, size_t n, struct hypr_err *e)
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
		char *last = strrchr(buf, '\n'), *fatal = NULL, *line = last ? last + 1 : buf;
		/* the agent's own last words beat the kernel's "reboot:" */
		for (char *q = buf; (q = strstr(q, "hypr-init: fatal: ")); q++)
			fatal = q;
		if (fatal) {
			fatal[strcspn(fatal, "\n")] = 0;
			line = fatal;
		}
		if (snprintf(out, cap, "%s", line) >= (int)cap)
			out[cap - 1] = 0;
		for (char *s = out; *s; s++)
			if (*s == '\r' || *s == '\n')
				*s = ' ';
	}
}

void
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
int
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

void
vm_qmp_send(struct hypr_vm *vm, const char *cmd)
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
	if (json_object_get(j, "id")) {
		/* a reply vm_snap.c waits for */
		free(vm->qreply);
		vm->qreply = strdup(line);
		json_decref(j);
		return;
	}
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
		vm_qmp_send(vm, "{\"execute\":\"query-status\"}\n");
	} else if ((st = json_string_value(json_object_get(json_object_get(j, "return"),
	    "status"))) && strcmp(st, "running") && strcmp(st, "prelaunch") &&
	    strcmp(st, "shutdown")) {
		vm->paused = 1;
		snprintf(vm->pause_why, sizeof vm->pause_why, "%s", st);
	}
	json_decref(j);
}

void
vm_qmp_read(struct hypr_vm *vm)
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
int
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
int
vm_recv_frame(struct hypr_vm *vm, double deadline, int *type, unsigned char **payload,
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
			vm_qmp_read(vm);
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
void
vm_consume(struct hypr_vm *vm)
{
	size_t n = HYPR_PROTO_HDR + hypr_proto_get32(vm->rbuf);

	memmove(vm->rbuf, vm->rbuf + n, vm->rlen - n);
	vm->rlen -= n;
}

/* ERROR frame -> hypr_err; anything unexpected -> protocol error (VM killed). */
int
vm_unexpected(struct hypr_vm *vm, int type, const unsigned char *p, uint32_t n,
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
			vm_qmp_read(vm);
		if (vm->ioerr[0])
			hypr_err_set(e, HYPR_EXIT_SYSTEM, "build VM: %s: %.*s: %s", what, (int)n,
			    (const char *)p, vm->ioerr);
		else
			hypr_err_set(e, HYPR_EXIT_SYSTEM, "build VM: %s: %.*s", what, (int)n,
			    (const char *)p);
		vm_consume(vm);
		return -1;
	}
	char msg[128];
	snprintf(msg, sizeof msg, "%s: unexpected frame type %d", what, type);
	return vm_fail(vm, e, HYPR_EXIT_SYSTEM, msg);
}
