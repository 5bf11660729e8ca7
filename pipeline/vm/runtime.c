/* runtime.c - hypr-init as the init of a runtime VM (hypr run; see
 * hypr-guest(7), "RUNTIME").
 *
 * The first START frame mounts the image's root (the base squashfs under a
 * writable layer in guest memory) and starts the image's process; later
 * STARTs exec a process next to it in its namespaces (hypr exec, health
 * checks). Each process's stdout and stderr (or its terminal) go to the
 * host as frames tagged with its id; STDIN frames feed it, acknowledged
 * as it reads them, so the host never sends more than it can take; SIGNAL
 * and WINSIZE frames reach it. As PID 1, this reaps every orphan. When the
 * image's process exits, everything else is killed, and its EXIT frame is
 * the last word until QUIT. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "guest.h"
#include "vm_proto.h"

#define MAXPROC 64
#define IN_MAX (1u << 20)	/* stdin bytes held for a process (the host's
				 * window is smaller) */

struct proc {
	int used;
	uint32_t id;
	pid_t pid;
	int fd[2];		/* stdout, stderr readers; a terminal: fd[0] is
				 * its master and fd[1] is -1 */
	int in;			/* stdin writer (a terminal: a dup of the master) */
	unsigned char *ibuf;
	size_t ilen;
	int close_in;		/* close stdin once ibuf is written */
	int tty;
	int reaped, status;
};

static struct proc procs[MAXPROC];
static struct proc *mainp;
static int main_over;

static struct proc *
find(uint32_t id)
{
	for (int i = 0; i < MAXPROC; i++)
		if (procs[i].used && procs[i].id == id)
			return &procs[i];
	return NULL;
}

static void
close_in(struct proc *p)
{
	if (p->in >= 0)
		close(p->in);
	p->in = -1;
	free(p->ibuf);
	p->ibuf = NULL;
	p->ilen = 0;
	p->close_in = 0;
}

/* Read what a process wrote and send it; -1 at EOF (or EIO: a terminal
 * whose every slave is closed). */
static int
pump(struct proc *p, int k)
{
	static char buf[65536];
	ssize_t n = read(p->fd[k], buf, sizeof buf);

	if (n > 0) {
		send_frame(k ? HYPR_MSG_STDERR : HYPR_MSG_STDOUT, p->id, buf, (size_t)n);
		return 1;
	}
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return 0;
	close(p->fd[k]);
	p->fd[k] = -1;
	return -1;
}

/* What is left in a finished process's pipes; with wait, until EOF. */
static void
drain(struct proc *p, int wait)
{
	for (int k = 0; k < 2; k++) {
		if (p->fd[k] < 0)
			continue;
		if (wait)
			fcntl(p->fd[k], F_SETFL, fcntl(p->fd[k], F_GETFL) & ~O_NONBLOCK);
		while (p->fd[k] >= 0 && pump(p, k) > 0)
			;
		if (p->fd[k] >= 0) {
			close(p->fd[k]);
			p->fd[k] = -1;
		}
	}
}

static void
send_exit(struct proc *p)
{
	unsigned char st[8];

	hypr_proto_put32(st, (uint32_t)p->status);
	hypr_proto_put32(st + 4, 0);
	send_frame(HYPR_MSG_EXIT, p->id, st, 8);
	close_in(p);
	for (int k = 0; k < 2; k++)
		if (p->fd[k] >= 0)
			close(p->fd[k]);
	if (p == mainp)
		mainp = NULL;
	memset(p, 0, sizeof *p);
}

static void
reap(void)
{
	struct signalfd_siginfo si;
	pid_t w;
	int s;

	while (read(sigfd, &si, sizeof si) > 0)
		;
	while ((w = waitpid(-1, &s, WNOHANG)) > 0) {
		for (int i = 0; i < MAXPROC; i++)
			if (procs[i].used && procs[i].pid == w && !procs[i].reaped) {
				procs[i].reaped = 1;
				procs[i].status = WIFEXITED(s) ? WEXITSTATUS(s) : 128 + WTERMSIG(s);
			}
		/* anything else: an orphan, reaped as an init must */
	}
}

/* The image's process is gone: so is everything else (as when a
 * container's PID 1 exits); each exec'd process gets its EXIT, then the
 * image's process gets the last one. */
static void
main_exited(void)
{
	struct proc *m = mainp;
	int s;

	kill(-1, SIGKILL);
	while (waitpid(-1, &s, 0) > 0 || errno == EINTR)
		;
	drain(m, 1);
	for (int i = 0; i < MAXPROC; i++) {
		struct proc *p = &procs[i];
		if (!p->used || p == m)
			continue;
		drain(p, 1);
		if (!p->reaped)
			p->status = 128 + SIGKILL;
		send_exit(p);
	}
	reap();
	if (debug)
		logmsg("main process exited: %d", m->status);
	send_exit(m);
	main_over = 1;
}

/* A terminal: the master, and its slave for the child. */
static int
open_pty(unsigned rows, unsigned cols, int *master, int *slave)
{
	int unlock = 0;
	struct winsize ws = { .ws_row = (unsigned short)rows, .ws_col = (unsigned short)cols };

	*master = open("/run/dev/pts/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (*master < 0)
		return -1;
	if (ioctl(*master, TIOCSPTLCK, &unlock) < 0 ||
	    (*slave = ioctl(*master, TIOCGPTPEER, O_RDWR | O_NOCTTY)) < 0) {
		close(*master);
		return -1;
	}
	if (rows && cols)
		ioctl(*master, TIOCSWINSZ, &ws);
	return 0;
}

static void
start(uint32_t id, unsigned char *p, size_t n)
{
	struct run r;
	struct proc *pr = NULL;
	char err[1024], why[1200];
	int po[2] = { -1, -1 }, pe[2] = { -1, -1 }, pi[2] = { -1, -1 }, ps[2];
	int master = -1, slave = -1, first = !mainp && !main_over;
	ssize_t k;
	pid_t pid;

	if (run_parse(p, n, &r) < 0) {
		run_free(&r);
		send_error(id, "START: malformed request");
		return;
	}
	for (int i = 0; i < MAXPROC && !pr; i++)
		if (!procs[i].used)
			pr = &procs[i];
	if (find(id) || !pr) {
		send_error(id, "START: %s", pr ? "process id in use" : "too many processes");
		run_free(&r);
		return;
	}
	if (!first && !mainp) {
		send_error(id, "START: the container is not running");
		run_free(&r);
		return;
	}
	if (first) {
		if (r.time_ns > 0) {
			struct timespec ts = { r.time_ns / 1000000000LL, r.time_ns % 1000000000LL };
			clock_settime(CLOCK_REALTIME, &ts);
		}
		if (step_root(1, &r, err, sizeof err) < 0) {
			send_error(id, "START: %s", err);
			run_free(&r);
			main_over = 1;
			return;
		}
	}
	if (r.tty ? open_pty(r.rows, r.cols, &master, &slave) < 0 :
	    (pipe2(po, O_CLOEXEC) < 0 || pipe2(pe, O_CLOEXEC) < 0 ||
	    (r.stdin_open && pipe2(pi, O_CLOEXEC) < 0))) {
		send_error(id, "START: %s: %s", r.tty ? "terminal" : "pipe", strerror(errno));
		goto fail;
	}
	if (pipe2(ps, O_CLOEXEC) < 0) {
		send_error(id, "START: pipe: %s", strerror(errno));
		goto fail;
	}
	if ((pid = fork()) < 0) {
		send_error(id, "START: fork: %s", strerror(errno));
		close(ps[0]);
		close(ps[1]);
		goto fail;
	}
	if (pid == 0) {
		struct child_io io = {
			.in = r.tty ? -1 : pi[0],
			.out = r.tty ? slave : po[1],
			.err = r.tty ? slave : pe[1],
			.tty = r.tty,
			.status = ps[1],
			.join = first ? 0 : mainp->pid,
		};
		step_child(&r, &io);
	}
	close(ps[1]);
	memset(pr, 0, sizeof *pr);
	pr->used = 1;
	pr->id = id;
	pr->pid = pid;
	pr->tty = r.tty;
	if (r.tty) {
		close(slave);
		pr->fd[0] = master;
		pr->fd[1] = -1;
		pr->in = r.stdin_open ? dup(master) : -1;
	} else {
		close(po[1]);
		close(pe[1]);
		if (pi[0] >= 0)
			close(pi[0]);
		pr->fd[0] = po[0];
		pr->fd[1] = pe[0];
		pr->in = pi[1];
	}
	for (int i = 0; i < 2; i++)
		if (pr->fd[i] >= 0)
			fcntl(pr->fd[i], F_SETFL, O_NONBLOCK);
	if (pr->in >= 0)
		fcntl(pr->in, F_SETFL, O_NONBLOCK);
	if (first)
		mainp = pr;
	/* EOF: exec worked; a message: it did not, and the process exits
	 * 125-127 with that message on its stderr (as Docker's runtime) */
	while ((k = read(ps[0], why, sizeof why)) < 0 && errno == EINTR)
		;
	close(ps[0]);
	if (k == 0) {
		unsigned char b[4];
		hypr_proto_put32(b, (uint32_t)pid);
		send_frame(HYPR_MSG_STARTED, id, b, 4);
	}
	if (debug)
		logmsg("process %u: pid %d%s", id, (int)pid, k == 0 ? "" : " (did not start)");
	run_free(&r);
	return;
fail:
	for (int i = 0; i < 2; i++) {
		if (po[i] >= 0)
			close(po[i]);
		if (pe[i] >= 0)
			close(pe[i]);
		if (pi[i] >= 0)
			close(pi[i]);
	}
	if (master >= 0)
		close(master);
	if (slave >= 0)
		close(slave);
	if (first)
		main_over = 1;
	run_free(&r);
}

static void
stdin_data(uint32_t id, const unsigned char *p, size_t n)
{
	struct proc *pr = find(id);

	if (!pr || pr->in < 0) {
		unsigned char b[4];
		/* nobody reads it: taken all the same, the host's window moves */
		hypr_proto_put32(b, (uint32_t)n);
		if (n)
			send_frame(HYPR_MSG_ACK, id, b, 4);
		return;
	}
	if (n == 0) {
		if (!pr->tty)
			pr->close_in = 1;
		if (!pr->ilen && pr->close_in)
			close_in(pr);
		return;
	}
	if (pr->ilen + n > IN_MAX) {
		n = IN_MAX - pr->ilen;	/* the host broke its window */
		if (!n)
			return;
	}
	unsigned char *b = realloc(pr->ibuf, pr->ilen + n);
	if (!b)
		return;
	memcpy(b + pr->ilen, p, n);
	pr->ibuf = b;
	pr->ilen += n;
}

static void
stdin_write(struct proc *pr)
{
	ssize_t w = write(pr->in, pr->ibuf, pr->ilen);
	unsigned char b[4];
	int gone = 0;

	if (w < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (w < 0) {	/* EPIPE: it closed its stdin; what is left is taken */
		w = (ssize_t)pr->ilen;
		gone = 1;
	}
	hypr_proto_put32(b, (uint32_t)w);
	send_frame(HYPR_MSG_ACK, pr->id, b, 4);
	memmove(pr->ibuf, pr->ibuf + w, pr->ilen - (size_t)w);
	pr->ilen -= (size_t)w;
	if (gone || (pr->ilen == 0 && pr->close_in))
		close_in(pr);
}

static void
control(void)
{
	unsigned char h[HYPR_PROTO_HDR], *p = NULL;
	uint32_t len, id;
	struct proc *pr;

	if (read_all(ctl, h, sizeof h) < 0) {
		logmsg("control port closed");
		poweroff();
	}
	len = hypr_proto_get32(h);
	id = hypr_proto_get32(h + 5);
	if (len > HYPR_PROTO_MAX || (len && (!(p = malloc(len)) || read_all(ctl, p, len) < 0))) {
		logmsg("control port: bad frame");
		poweroff();
	}
	switch (h[4]) {
	case HYPR_MSG_START:
		start(id, p, len);
		break;
	case HYPR_MSG_STDIN:
		stdin_data(id, p, len);
		break;
	case HYPR_MSG_SIGNAL:
		if (len >= 4 && (pr = find(id)) && !pr->reaped)
			kill(pr->pid, (int)hypr_proto_get32(p));
		break;
	case HYPR_MSG_WINSIZE:
		if (len >= 8 && (pr = find(id)) && pr->tty && pr->fd[0] >= 0) {
			struct winsize ws = {
				.ws_row = (unsigned short)hypr_proto_get32(p),
				.ws_col = (unsigned short)hypr_proto_get32(p + 4),
			};
			ioctl(pr->fd[0], TIOCSWINSZ, &ws);
		}
		break;
	case HYPR_MSG_QUIT:
		kill(-1, SIGKILL);
		while (waitpid(-1, NULL, 0) > 0 || errno == EINTR)
			;
		sync();
		send_frame(HYPR_MSG_BYE, id, NULL, 0);
		poweroff();
	default:
		send_error(id, "unknown frame type %d in a runtime VM", h[4]);
	}
	free(p);
}

void
runtime(uint32_t id, unsigned char *p, size_t n)
{
	signal(SIGPIPE, SIG_IGN);
	start(id, p, n);
	free(p);
	for (;;) {
		struct pollfd pf[2 + 3 * MAXPROC];
		struct proc *who[2 + 3 * MAXPROC];
		int what[2 + 3 * MAXPROC], np = 2;

		pf[0] = (struct pollfd){ .fd = ctl, .events = POLLIN };
		pf[1] = (struct pollfd){ .fd = sigfd, .events = POLLIN };
		for (int i = 0; i < MAXPROC; i++) {
			struct proc *pr = &procs[i];
			if (!pr->used)
				continue;
			for (int k = 0; k < 2; k++)
				if (pr->fd[k] >= 0) {
					pf[np] = (struct pollfd){ .fd = pr->fd[k], .events = POLLIN };
					who[np] = pr;
					what[np++] = k;
				}
			if (pr->in >= 0 && pr->ilen) {
				pf[np] = (struct pollfd){ .fd = pr->in, .events = POLLOUT };
				who[np] = pr;
				what[np++] = 2;
			}
		}
		if (poll(pf, (nfds_t)np, -1) < 0) {
			if (errno == EINTR)
				continue;
			logmsg("poll: %s", strerror(errno));
			poweroff();
		}
		for (int i = 2; i < np; i++) {
			if (!pf[i].revents || !who[i]->used)
				continue;
			if (what[i] == 2)
				stdin_write(who[i]);
			else if (who[i]->fd[what[i]] == pf[i].fd)
				pump(who[i], what[i]);
		}
		if (pf[1].revents & POLLIN)
			reap();
		/* finished processes: the image's takes everything with it */
		if (mainp && mainp->reaped) {
			main_exited();
		} else {
			for (int i = 0; i < MAXPROC; i++)
				if (procs[i].used && procs[i].reaped && &procs[i] != mainp) {
					drain(&procs[i], 0);
					send_exit(&procs[i]);
				}
		}
		if (pf[0].revents & (POLLIN | POLLHUP | POLLERR))
			control();
	}
}
