/* vm_proc.c - hypr run's processes in a runtime VM: started, fed, signalled,
 * resized, and their output and exits as events. */
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
	if (vm_run_payload(r, &buf, &len, e) < 0)
		return -1;
	cap = len;
	if (p->tty)
		rc = vm_tlv(&buf, &len, &cap, HYPR_TAG_TTY, "1");
	if (rc == 0 && p->stdin_open)
		rc = vm_tlv(&buf, &len, &cap, HYPR_TAG_STDIN, "1");
	if (rc == 0 && p->rows && p->cols) {
		snprintf(ws, sizeof ws, "%u %u", p->rows, p->cols);
		rc = vm_tlv(&buf, &len, &cap, HYPR_TAG_WINSIZE, ws);
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
		vm_consume(vm);
		vm->held = 0;
	}
	if (vm->dead)
		return hypr_err_set(e, HYPR_EXIT_SYSTEM, "VM: not running");
	if (flush_out(vm, e) < 0)
		return -1;
	if (vm->qmp >= 0) {
		vm_qmp_read(vm);
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
