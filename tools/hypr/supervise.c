/* supervise.c - a container's supervisor: the process that owns its VM
 * (QEMU dies with it), its lock, its squashfs lock, its log and state, and
 * serves its control socket (stop, kill, exec). `hypr run` is the
 * supervisor of its container; `hypr run -d` forks one in a session of its
 * own and returns once the image's process runs.
 *
 * One poll loop per boot: the VM's events (output to the log and, when
 * attached, the terminal; exits), the terminal's input (sent within a
 * window the guest acknowledges), signals (forwarded as docker run's
 * sig-proxy does), clients, and timers: the start deadline, the stop
 * timeout (then SIGKILL, then QEMU itself), health checks. One file over
 * 1000 lines because that loop and the state it keeps are one thing. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "ctr.h"
#include "fsutil.h"
#include "hypr.h"
#include "clock.h"
#include "tool.h"
#include "volume.h"
#include "vm.h"
#include "vm_proto.h"

#define WINDOW (256u << 10)	/* stdin bytes in flight to the guest */
#define MAXCL 32
#define MAXX 32
#define MAIN_ID 1u

struct client {
	int fd;			/* -1: free */
	struct hypr_ctr_reader rd;
	uint32_t xid;		/* its exec, 0 none */
	int attached;		/* hypr attach: the image's process */
};

struct xproc {
	uint32_t id;		/* 0: free */
	int client;		/* -1: nobody (detached, health, client gone) */
	int health;		/* a health check */
	int ignore;		/* timed out: its EXIT no longer counts */
};

struct sup {
	const struct hypr_root *root;
	struct hypr_ctr *c;
	json_t *cfg;
	int fg, tty, interactive;
	int notify;		/* -d: the parent waits on this pipe; -1 once told */
	int logfd;
	off_t logsize;
	uint64_t logmax;
	int lfd;
	struct client cl[MAXCL];
	struct xproc xp[MAXX];
	uint32_t next_id;
	int sigfd;
	struct hypr_vm *vm;
	int out_ok[3];		/* our stdout/stderr still take writes */
	/* this boot */
	int started, done, status, vmfail;
	double start_deadline;
	size_t inflight;
	int stdin_on;
	int raw;
	struct termios saved;
	int stopping, user_stopped;
	double kill_at, abandon_at;
	int64_t started_ns;
	/* health */
	json_t *hc;
	double h_next, h_deadline;
	uint32_t h_id;
	int h_streak;
	char h_out[4096];
	size_t h_outlen;
	int64_t h_start_ns;
	char err[1100];
	char early[4096];	/* stderr before the process ran, for -d's parent */
	size_t earlylen;
	/* CTR_HOLD: output kept until the first attach, the terminal's size */
	int hold;
	char *held;
	size_t heldlen;
	unsigned rows0, cols0;
};



static const char *
jstr(json_t *o, const char *k)
{
	return json_string_value(json_object_get(o, k));
}

/* ---- state ---- */

static void
save_state(struct sup *s)
{
	struct hypr_err e = { 0 };

	if (hypr_ctr_save_state(s->c, &e) < 0 && s->fg)
		hypr_warn("%s", e.msg);
}

static void
set_status(struct sup *s, const char *st)
{
	json_object_set_new(s->c->state, "status", json_string(st));
	json_object_set_new(s->c->state, "pid", json_integer(getpid()));
	save_state(s);
}

/* ---- output ---- */

static void
log_out(struct sup *s, int stream, const void *p, size_t n)
{
	if (s->logfd < 0)
		return;
	if (s->logmax && s->logsize > 0 && (uint64_t)s->logsize + n > s->logmax) {
		/* one old log kept: log.1 */
		char a[4400], b[4400];
		snprintf(a, sizeof a, "%s/log", s->c->dir);
		snprintf(b, sizeof b, "%s/log.1", s->c->dir);
		if (rename(a, b) == 0) {
			close(s->logfd);
			s->logfd = open(a, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
			s->logsize = 0;
		}
	}
	if (s->logfd >= 0 && hypr_ctr_log_append(s->logfd, stream, hypr_ctr_now_ns(), p, n) == 0)
		s->logsize += (off_t)(n + 24);
}

static void
term_out(struct sup *s, int fd, const void *p, size_t n)
{
	struct hypr_err e = { 0 };

	if (!s->fg || !s->out_ok[fd])
		return;
	if (hypr_write_all(fd, p, n) < 0) {
		/* the log still has it; a reader gone (`hypr run img yes |
		 * head -1`) is the process's broken pipe: SIGPIPE, as if it
		 * had written to that pipe itself */
		s->out_ok[fd] = 0;
		if (errno == EPIPE && s->vm && s->started && !s->done)
			hypr_vm_proc_signal(s->vm, MAIN_ID, SIGPIPE, &e);
	}
}

/* ---- the terminal ---- */

static void
raw_on(struct sup *s)
{
	struct termios t;

	if (tcgetattr(0, &s->saved) < 0)
		return;
	t = s->saved;
	cfmakeraw(&t);
	if (tcsetattr(0, TCSADRAIN, &t) == 0)
		s->raw = 1;
}

static void
raw_off(struct sup *s)
{
	if (s->raw)
		tcsetattr(0, TCSADRAIN, &s->saved);
	s->raw = 0;
}

static void
winsize(unsigned *rows, unsigned *cols)
{
	struct winsize ws;

	*rows = *cols = 0;
	if (ioctl(1, TIOCGWINSZ, &ws) == 0 || ioctl(0, TIOCGWINSZ, &ws) == 0) {
		*rows = ws.ws_row;
		*cols = ws.ws_col;
	}
}

/* ---- the -d parent ---- */

static void
notify(struct sup *s, int ok, int code, const char *text)
{
	char buf[5200];
	int n;

	if (s->notify < 0)
		return;
	if (ok)
		n = snprintf(buf, sizeof buf, "ok\n");
	else
		n = snprintf(buf, sizeof buf, "fail %d\n%s", code, text);
	if (n > (int)sizeof buf - 1)
		n = (int)sizeof buf - 1;
	(void)!hypr_write_all(s->notify, buf, (size_t)n);
	close(s->notify);
	s->notify = -1;
}

/* ---- processes ---- */

/* char * arrays over JSON strings (valid while the JSON is). */
static char **
strv(json_t *a)
{
	size_t n = json_array_size(a), i;
	char **v = calloc(n + 1, sizeof *v);

	if (!v)
		hypr_die(HYPR_EXIT_SYSTEM, "out of memory");
	for (i = 0; i < n; i++)
		v[i] = (char *)json_string_value(json_array_get(a, i));
	v[n] = NULL;
	return v;
}

/* env with over's K=V replacing or adding (execvp's getenv takes the first). */
static json_t *
env_merge(json_t *env, json_t *over)
{
	json_t *out = json_deep_copy(env), *v, *w;
	size_t i, j;

	json_array_foreach(over, i, v) {
		const char *kv = json_string_value(v), *eq;
		int done = 0;
		if (!kv || !(eq = strchr(kv, '=')))
			continue;
		json_array_foreach(out, j, w) {
			const char *o = json_string_value(w);
			if (o && !strncmp(o, kv, (size_t)(eq - kv) + 1)) {
				json_array_set(out, j, v);
				done = 1;
				break;
			}
		}
		if (!done)
			json_array_append(out, v);
	}
	return out;
}

static const char *
hostname_of(struct sup *s)
{
	static char shortid[13];
	const char *h = jstr(s->cfg, "hostname");

	if (h && *h)
		return h;
	hypr_ctr_short(s->c->id, shortid);
	return shortid;
}

/* Start a process: the image's (id 1) or an exec'd one. */
static int
start_proc(struct sup *s, uint32_t id, json_t *argv, json_t *env, const char *user,
    const char *cwd, int tty, int in, unsigned rows, unsigned cols, struct hypr_err *e)
{
	struct hypr_vm_run r = { 0 };
	struct hypr_vm_proc p = { .tty = tty, .stdin_open = in, .rows = rows, .cols = cols };
	struct hypr_vm_mount mnt[HYPR_VM_MAX_SHARES];
	char tags[HYPR_VM_MAX_SHARES][16 + 256];
	char **av = strv(argv), **ev = strv(env), **hv = strv(json_object_get(s->cfg, "hosts"));
	json_t *vols = json_object_get(s->cfg, "volumes"), *v;
	size_t i;
	int rc;

	r.argv = av;
	r.env = ev;
	r.cwd = cwd;
	r.user = user && *user ? user : NULL;
	r.hostname = hostname_of(s);
	r.net = 1;	/* the VM's own network (none without a device) */
	r.hosts = hv;
	if (id == MAIN_ID) {
		json_array_foreach(vols, i, v) {
			if (i >= HYPR_VM_MAX_SHARES)
				break;
			/* a file: TAG/NAME, its directory shared (hypr-guest(7)) */
			snprintf(tags[i], sizeof tags[i], "hyprv%zu%s%.255s", i,
			    jstr(v, "file") ? "/" : "", jstr(v, "file") ? jstr(v, "file") : "");
			mnt[i] = (struct hypr_vm_mount){ .type = 'p', .target = jstr(v, "target"),
			    .source = tags[i], .ro = json_is_true(json_object_get(v, "ro")),
			    .mode = -1, .uid = -1, .gid = -1 };
		}
		r.mounts = mnt;
		r.nmounts = json_array_size(vols);
	}
	rc = hypr_vm_proc_start(s->vm, id, &r, &p, e);
	free(av);
	free(ev);
	free(hv);
	return rc;
}

static struct xproc *
xfind(struct sup *s, uint32_t id)
{
	for (int i = 0; i < MAXX; i++)
		if (s->xp[i].id == id)
			return &s->xp[i];
	return NULL;
}

static struct xproc *
xnew(struct sup *s)
{
	struct xproc *x = xfind(s, 0);

	if (!x)
		return NULL;
	memset(x, 0, sizeof *x);
	x->id = ++s->next_id;
	x->client = -1;
	return x;
}

/* ---- health checks, as Docker runs them ---- */

static void
health_result(struct sup *s, int status, const char *out, size_t outlen)
{
	json_t *h = json_object_get(s->c->state, "health"), *log;
	int64_t t = hypr_ctr_now_ns();
	int64_t sp = json_integer_value(json_object_get(s->hc, "start_period"));
	int retries = (int)json_integer_value(json_object_get(s->hc, "retries"));
	const char *st = jstr(h, "status");

	if (status == 0) {
		s->h_streak = 0;
		st = "healthy";
	} else if (!(t - s->started_ns < sp && st && !strcmp(st, "starting"))) {
		/* failures in the start period do not count, until one success */
		if (++s->h_streak >= retries)
			st = "unhealthy";
	}
	json_object_set_new(h, "status", json_string(st));
	json_object_set_new(h, "failing_streak", json_integer(s->h_streak));
	if (!json_is_array(log = json_object_get(h, "log")))
		json_object_set_new(h, "log", log = json_array());
	json_array_append_new(log, json_pack("{s:I,s:I,s:i,s:s%}", "start", (json_int_t)s->h_start_ns,
	    "end", (json_int_t)t, "exit_code", status, "output", out, outlen));
	while (json_array_size(log) > 5)
		json_array_remove(log, 0);
	if (!json_object_get(json_array_get(log, json_array_size(log) - 1), "output"))
		json_object_set_new(json_array_get(log, json_array_size(log) - 1), "output",
		    json_string("(output not UTF-8)"));
	save_state(s);
	s->h_id = 0;
	s->h_next = hypr_now() + (double)json_integer_value(json_object_get(s->hc, "interval")) / 1e9;
}

static void
health_start(struct sup *s)
{
	struct hypr_err e = { 0 };
	struct xproc *x = xnew(s);

	s->h_next = 0;
	if (!x)
		return;
	x->health = 1;
	s->h_outlen = 0;
	s->h_start_ns = hypr_ctr_now_ns();
	if (start_proc(s, x->id, json_object_get(s->hc, "test"), json_object_get(s->cfg, "env"),
	    jstr(s->cfg, "user"), jstr(s->cfg, "workdir"), 0, 0, 0, 0, &e) < 0) {
		x->id = 0;
		health_result(s, -1, e.msg, strlen(e.msg));
		return;
	}
	s->h_id = x->id;
	s->h_deadline = hypr_now() + (double)json_integer_value(json_object_get(s->hc, "timeout")) / 1e9;
}

/* ---- stop ---- */

static void
stop_main(struct sup *s, long timeout)
{
	struct hypr_err e = { 0 };
	int sig = (int)json_integer_value(json_object_get(s->cfg, "stop_signal"));

	s->user_stopped = 1;
	if (!s->vm || s->done || s->stopping)
		return;
	if (timeout < 0)
		timeout = (long)json_integer_value(json_object_get(s->cfg, "stop_timeout"));
	s->stopping = 1;
	if (!s->started) {
		/* not running yet: nothing to ask politely */
		s->kill_at = hypr_now();
		return;
	}
	if (timeout == 0 || hypr_vm_proc_signal(s->vm, MAIN_ID, sig ? sig : SIGTERM, &e) < 0)
		s->kill_at = hypr_now();
	else
		s->kill_at = hypr_now() + (double)timeout;
}

/* ---- clients ---- */

static void
client_close(struct sup *s, int k)
{
	struct client *c = &s->cl[k];

	if (c->fd < 0)
		return;
	for (int i = 0; i < MAXX; i++)
		if (s->xp[i].id && s->xp[i].client == k)
			s->xp[i].client = -1;	/* it runs on, unheard (docker exec) */
	close(c->fd);
	hypr_ctr_reader_free(&c->rd);
	c->fd = -1;
	c->xid = 0;
	c->attached = 0;
}


static void
client_send(struct sup *s, int k, int type, uint32_t id, const void *p, size_t n)
{
	if (k < 0 || s->cl[k].fd < 0)
		return;
	if (hypr_ctr_send(s->cl[k].fd, type, id, p, n) < 0)
		client_close(s, k);
}

/* A frame of the image's process to every attached client. */
static void
attached_send(struct sup *s, int type, const void *p, size_t n)
{
	for (int k = 0; k < MAXCL; k++)
		if (s->cl[k].fd >= 0 && s->cl[k].attached)
			client_send(s, k, type, MAIN_ID, p, n);
}

static void
client_error(struct sup *s, int k, const char *msg)
{
	client_send(s, k, HYPR_CTR_ERROR, 0, msg, strlen(msg));
}

static void
client_exec(struct sup *s, int k, const unsigned char *p, uint32_t n)
{
	json_t *req = json_loadb((const char *)p, n, 0, NULL), *env;
	struct hypr_err e = { 0 };
	struct xproc *x;
	const char *user, *wd;
	int detach;
	char msg[256];

	if (!json_is_object(req) || !json_array_size(json_object_get(req, "argv"))) {
		client_error(s, k, "exec: a command is needed");
		json_decref(req);
		return;
	}
	if (!s->started || s->done || !s->vm) {
		snprintf(msg, sizeof msg, "container %.12s is not running", s->c->id);
		client_error(s, k, msg);
		json_decref(req);
		return;
	}
	if (s->cl[k].xid || !(x = xnew(s))) {
		client_error(s, k, "exec: too many processes");
		json_decref(req);
		return;
	}
	detach = json_is_true(json_object_get(req, "detach"));
	user = jstr(req, "user");
	wd = jstr(req, "workdir");
	env = env_merge(json_object_get(s->cfg, "env"), json_object_get(req, "env"));
	if (start_proc(s, x->id, json_object_get(req, "argv"), env,
	    user && *user ? user : jstr(s->cfg, "user"), wd && *wd ? wd : jstr(s->cfg, "workdir"),
	    json_is_true(json_object_get(req, "tty")),
	    !detach && json_is_true(json_object_get(req, "stdin")),
	    (unsigned)json_integer_value(json_object_get(req, "rows")),
	    (unsigned)json_integer_value(json_object_get(req, "cols")), &e) < 0) {
		x->id = 0;
		client_error(s, k, e.msg);
	} else if (detach) {
		client_send(s, k, HYPR_CTR_OK, x->id, NULL, 0);
	} else {
		x->client = k;
		s->cl[k].xid = x->id;
	}
	json_decref(env);
	json_decref(req);
}

/* An attach: OK (with whether its stdin is open), then the process's
 * output. With CTR_HOLD, the first gets what came before it, and when the
 * process has already exited (hypr run -it of a quick one), its status. */
static void
client_attach(struct sup *s, int k)
{
	struct client *c = &s->cl[k];
	unsigned char b[4];
	int held_exit = s->hold && s->done && !s->vmfail;

	if (!held_exit && (!s->started || s->done || !s->vm || c->xid)) {
		char msg[128];
		snprintf(msg, sizeof msg, "container %.12s is not running", s->c->id);
		client_error(s, k, msg);
		return;
	}
	c->attached = !held_exit;
	hypr_proto_put32(b, s->interactive && !s->fg && !held_exit);
	client_send(s, k, HYPR_CTR_OK, MAIN_ID, b, 4);
	for (size_t o = 0; s->hold && o < s->heldlen; o += 65536)
		client_send(s, k, HYPR_CTR_STDOUT, MAIN_ID, s->held + o,
		    s->heldlen - o < 65536 ? s->heldlen - o : 65536);
	if (held_exit) {
		hypr_proto_put32(b, (uint32_t)s->status);
		client_send(s, k, HYPR_CTR_EXIT, MAIN_ID, b, 4);
	}
	s->hold = 0;
	free(s->held);
	s->held = NULL;
	s->heldlen = 0;
}

static void
client_frames(struct sup *s, int k)
{
	struct client *c = &s->cl[k];
	const unsigned char *p;
	uint32_t id, n;
	int type, r;
	struct hypr_err e = { 0 };

	if (hypr_ctr_read(&c->rd, c->fd) < 0) {
		client_close(s, k);
		return;
	}
	while (c->fd >= 0 && (r = hypr_ctr_frame(&c->rd, &type, &id, &p, &n)) == 1) {
		switch (type) {
		case HYPR_CTR_STOP:
			stop_main(s, n >= 4 && hypr_proto_get32(p) != ~0u ? (long)hypr_proto_get32(p) : -1);
			break;
		case HYPR_CTR_KILL:
			if (n >= 4 && s->vm && s->started && !s->done) {
				s->user_stopped = 1;
				hypr_vm_proc_signal(s->vm, MAIN_ID, (int)hypr_proto_get32(p), &e);
				client_send(s, k, HYPR_CTR_OK, 0, NULL, 0);
			} else {
				char msg[128];
				snprintf(msg, sizeof msg, "container %.12s is not running", s->c->id);
				client_error(s, k, msg);
			}
			break;
		case HYPR_CTR_EXEC:
			client_exec(s, k, p, n);
			break;
		case HYPR_CTR_ATTACH:
			client_attach(s, k);
			break;
		case HYPR_CTR_STDIN:
			if (c->xid && s->vm && !s->done)
				hypr_vm_proc_stdin(s->vm, c->xid, p, n, &e);
			else if (c->attached && n && s->interactive && !s->fg && s->vm && !s->done)
				/* an attach's end of input is not the process's (docker's
				 * StdinOnce false): the next attach types on */
				hypr_vm_proc_stdin(s->vm, MAIN_ID, p, n, &e);
			break;
		case HYPR_CTR_WINSIZE:
			if ((c->xid || (c->attached && s->tty)) && n >= 8 && s->vm && !s->done)
				hypr_vm_proc_winsize(s->vm, c->xid ? c->xid : MAIN_ID,
				    hypr_proto_get32(p), hypr_proto_get32(p + 4), &e);
			break;
		default:
			client_error(s, k, "unknown request");
		}
	}
	if (c->fd >= 0 && r < 0)
		client_close(s, k);
}

static void
accept_clients(struct sup *s)
{
	int fd;

	while ((fd = accept4(s->lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK)) >= 0) {
		int k;
		struct timeval tv = { 5, 0 };
		for (k = 0; k < MAXCL && s->cl[k].fd >= 0; k++)
			;
		if (k == MAXCL) {
			close(fd);
			continue;
		}
		/* a client that stops reading is dropped, not waited for */
		setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
		memset(&s->cl[k], 0, sizeof s->cl[k]);
		s->cl[k].fd = fd;
	}
}

/* ---- the VM's events ---- */

static void
vm_event(struct sup *s, const struct hypr_vm_event *ev)
{
	struct xproc *x = ev->id == MAIN_ID ? NULL : xfind(s, ev->id);

	if (ev->id == MAIN_ID) {
		switch (ev->type) {
		case HYPR_VM_EV_STARTED:
			s->started = 1;
			s->started_ns = hypr_ctr_now_ns();
			json_object_set_new(s->c->state, "started_at", json_integer(s->started_ns));
			json_object_del(s->c->state, "finished_at");
			json_object_del(s->c->state, "exit_code");
			json_object_del(s->c->state, "error");
			json_object_set_new(s->c->state, "accel", json_string(hypr_vm_accel(s->vm)));
			json_object_set_new(s->c->state, "boot_seconds",
			    json_real((double)(long long)(hypr_vm_boot_seconds(s->vm) * 1000 + 0.5) / 1000));
			if (s->hc) {
				json_object_set_new(s->c->state, "health", json_pack("{s:s,s:i,s:[]}",
				    "status", "starting", "failing_streak", 0, "log"));
				s->h_next = hypr_now() + (double)json_integer_value(
				    json_object_get(s->hc, "interval")) / 1e9;
			}
			set_status(s, "running");
			notify(s, 1, 0, NULL);
			break;
		case HYPR_VM_EV_STDOUT:
		case HYPR_VM_EV_STDERR:
			log_out(s, ev->type == HYPR_VM_EV_STDOUT ? 1 : 2, ev->data, ev->len);
			if (s->hold && s->heldlen + ev->len <= (1u << 20)) {
				char *h = realloc(s->held, s->heldlen + ev->len);
				if (h) {
					memcpy(h + s->heldlen, ev->data, ev->len);
					s->held = h;
					s->heldlen += ev->len;
				}
			}
			term_out(s, ev->type == HYPR_VM_EV_STDOUT || s->tty ? 1 : 2, ev->data, ev->len);
			attached_send(s, ev->type == HYPR_VM_EV_STDOUT || s->tty ? HYPR_CTR_STDOUT :
			    HYPR_CTR_STDERR, ev->data, ev->len);
			if (!s->started && ev->type == HYPR_VM_EV_STDERR) {
				size_t k = sizeof s->early - 1 - s->earlylen;
				if (k > ev->len)
					k = ev->len;
				memcpy(s->early + s->earlylen, ev->data, k);
				s->earlylen += k;
			}
			break;
		case HYPR_VM_EV_ACK: {
			unsigned char b[4];
			s->inflight = (size_t)ev->value > s->inflight ? 0 : s->inflight - (size_t)ev->value;
			hypr_proto_put32(b, (uint32_t)ev->value);
			attached_send(s, HYPR_CTR_ACK, b, 4);
			break;
		}
		case HYPR_VM_EV_EXIT: {
			unsigned char b[4];
			s->done = 1;
			s->status = ev->value;
			hypr_proto_put32(b, (uint32_t)ev->value);
			attached_send(s, HYPR_CTR_EXIT, b, 4);
			for (int k = 0; k < MAXCL; k++)
				s->cl[k].attached = 0;	/* a restart is not theirs */
			break;
		}
		case HYPR_VM_EV_ERROR:
			snprintf(s->err, sizeof s->err, "%.*s", (int)ev->len, (const char *)ev->data);
			s->done = 1;
			s->vmfail = 1;
			break;
		}
		return;
	}
	if (!x)
		return;
	if (x->health) {
		if ((ev->type == HYPR_VM_EV_STDOUT || ev->type == HYPR_VM_EV_STDERR) && !x->ignore) {
			size_t k = sizeof s->h_out - s->h_outlen;
			if (k > ev->len)
				k = ev->len;
			memcpy(s->h_out + s->h_outlen, ev->data, k);
			s->h_outlen += k;
		} else if (ev->type == HYPR_VM_EV_EXIT || ev->type == HYPR_VM_EV_ERROR) {
			if (!x->ignore)
				health_result(s, ev->type == HYPR_VM_EV_EXIT ? ev->value : -1,
				    ev->type == HYPR_VM_EV_EXIT ? s->h_out : (const char *)ev->data,
				    ev->type == HYPR_VM_EV_EXIT ? s->h_outlen : ev->len);
			x->id = 0;
		}
		return;
	}
	switch (ev->type) {
	case HYPR_VM_EV_STDOUT:
		client_send(s, x->client, HYPR_CTR_STDOUT, x->id, ev->data, ev->len);
		break;
	case HYPR_VM_EV_STDERR:
		client_send(s, x->client, HYPR_CTR_STDERR, x->id, ev->data, ev->len);
		break;
	case HYPR_VM_EV_ACK: {
		unsigned char b[4];
		hypr_proto_put32(b, (uint32_t)ev->value);
		client_send(s, x->client, HYPR_CTR_ACK, x->id, b, 4);
		break;
	}
	case HYPR_VM_EV_EXIT: {
		unsigned char b[4];
		hypr_proto_put32(b, (uint32_t)ev->value);
		client_send(s, x->client, HYPR_CTR_EXIT, x->id, b, 4);
		if (x->client >= 0)
			s->cl[x->client].xid = 0;
		x->id = 0;
		break;
	}
	case HYPR_VM_EV_ERROR:
		client_send(s, x->client, HYPR_CTR_ERROR, x->id, ev->data, ev->len);
		if (x->client >= 0)
			s->cl[x->client].xid = 0;
		x->id = 0;
		break;
	}
}

/* ---- signals ---- */

static void
on_signal(struct sup *s, int sig)
{
	struct hypr_err e = { 0 };

	if (sig == SIGWINCH) {
		unsigned r, c;
		winsize(&r, &c);
		if (s->vm && s->tty && s->started && !s->done && r && c)
			hypr_vm_proc_winsize(s->vm, MAIN_ID, r, c, &e);
		return;
	}
	if (!s->fg) {
		/* a detached supervisor: SIGTERM (shutdown) stops the container */
		if (sig == SIGTERM)
			stop_main(s, -1);
		return;
	}
	/* attached: docker run's sig-proxy, to the image's process */
	if (s->vm && s->started && !s->done)
		hypr_vm_proc_signal(s->vm, MAIN_ID, sig, &e);
	else if (sig == SIGINT || sig == SIGTERM || sig == SIGHUP)
		stop_main(s, 0);	/* still booting: give up */
}

/* ---- one boot ---- */

static int
poll_common(struct sup *s, struct pollfd *pf, int np)
{
	pf[np++] = (struct pollfd){ .fd = s->sigfd, .events = POLLIN };
	pf[np++] = (struct pollfd){ .fd = s->lfd, .events = POLLIN };
	for (int k = 0; k < MAXCL; k++)
		pf[np++] = (struct pollfd){ .fd = s->cl[k].fd, .events = POLLIN };
	return np;
}

/* After poll: signals, new clients, client requests. */
static void
serve_common(struct sup *s, struct pollfd *pf)
{
	if (pf[0].revents & POLLIN) {
		struct signalfd_siginfo si;
		while (read(s->sigfd, &si, sizeof si) == (ssize_t)sizeof si)
			on_signal(s, (int)si.ssi_signo);
	}
	if (pf[1].revents & POLLIN)
		accept_clients(s);
	for (int k = 0; k < MAXCL; k++)
		if (pf[2 + k].fd >= 0 && pf[2 + k].fd == s->cl[k].fd && pf[2 + k].revents)
			client_frames(s, k);
}

static void
vm_options(struct sup *s, struct hypr_vm_opts *o, struct hypr_vm_fwd *fw, size_t *nfw,
    struct hypr_vm_share *sh, char ***gf)
{
	json_t *v;
	size_t i;

	memset(o, 0, sizeof *o);
	o->runtime = 1;
	o->base = jstr(s->cfg, "squashfs");
	o->tmpdir = s->c->dir;
	/* the writable layer is the container's, kept across its starts
	 * until hypr rm; with --rm nothing outlives the run: guest memory */
	if (!json_is_true(json_object_get(s->cfg, "rm"))) {
		static char rw[HYPR_PATH_BUF];
		snprintf(rw, sizeof rw, "%s/rw.ext4", s->c->dir);
		o->rwdisk = rw;
	}
	o->mem_mb = (int)json_integer_value(json_object_get(s->cfg, "memory_mb"));
	o->cpus = (int)json_integer_value(json_object_get(s->cfg, "cpus"));
	o->net = json_is_true(json_object_get(s->cfg, "network"));
	*nfw = 0;
	json_array_foreach(json_object_get(s->cfg, "ports"), i, v) {
		fw[*nfw] = (struct hypr_vm_fwd){ .udp = !strcmp(jstr(v, "proto"), "udp"),
		    .host_ip = jstr(v, "host_ip"),
		    .host_port = (unsigned)json_integer_value(json_object_get(v, "host_port")),
		    .guest_port = (unsigned)json_integer_value(json_object_get(v, "guest_port")) };
		if (++*nfw == 256)
			break;
	}
	o->fwds = fw;
	o->nfwds = *nfw;
	json_array_foreach(json_object_get(s->cfg, "volumes"), i, v) {
		static char tags[HYPR_VM_MAX_SHARES][16];
		if (i >= HYPR_VM_MAX_SHARES)
			break;
		snprintf(tags[i], sizeof tags[i], "hyprv%zu", i);
		sh[i] = (struct hypr_vm_share){ .path = jstr(v, "source"), .tag = tags[i],
		    .ro = json_is_true(json_object_get(v, "ro")) };
		o->nshares = i + 1;
	}
	o->shares = sh;
	*gf = strv(json_object_get(s->cfg, "guestfwds"));
	o->guestfwds = *gf;
}

/* Boot, run the image's process to its end, shut down. 0, or -1 when the
 * VM failed (s->err says why). */
static int
one_boot(struct sup *s)
{
	struct hypr_vm_opts o;
	struct hypr_vm_fwd fw[256];
	struct hypr_vm_share sh[HYPR_VM_MAX_SHARES];
	char **gf;
	size_t nfw;
	struct hypr_err e = { 0 };
	unsigned rows = 0, cols = 0;
	double boot_t0 = hypr_now();

	s->started = s->done = s->vmfail = s->stopping = 0;
	s->status = 0;
	s->kill_at = s->abandon_at = 0;
	s->inflight = 0;
	s->h_id = 0;
	s->h_next = 0;
	s->h_streak = 0;
	s->earlylen = 0;
	s->err[0] = 0;
	for (int i = 0; i < MAXX; i++)
		s->xp[i].id = 0;
	s->next_id = MAIN_ID;
	vm_options(s, &o, fw, &nfw, sh, &gf);
	if (hypr_vm_start(&s->vm, &o, &e) < 0) {
		free(gf);
		snprintf(s->err, sizeof s->err, "%s", e.msg);
		s->vm = NULL;
		return -1;
	}
	free(gf);
	if (s->tty)
		winsize(&rows, &cols);
	if (!rows && !cols) {
		rows = s->rows0;
		cols = s->cols0;
	}
	if (start_proc(s, MAIN_ID, json_object_get(s->cfg, "argv"), json_object_get(s->cfg, "env"),
	    jstr(s->cfg, "user"), jstr(s->cfg, "workdir"), s->tty, s->interactive, rows, cols,
	    &e) < 0) {
		snprintf(s->err, sizeof s->err, "%s", e.msg);
		hypr_vm_kill(s->vm);
		s->vm = NULL;
		return -1;
	}
	s->stdin_on = s->fg && s->interactive;
	s->start_deadline = hypr_now() + hypr_env_seconds("HYPR_START_TIMEOUT", 30);
	if (s->user_stopped)
		stop_main(s, 0);	/* a stop came while it booted */
	(void)boot_t0;
	while (!s->done) {
		struct pollfd pf[HYPR_VM_NPOLL + 3 + MAXCL];
		struct hypr_vm_event ev;
		double t = hypr_now(), next = 0;
		int np, ms, r, in_at = -1;

		/* timers */
		if (!s->started && s->start_deadline && t >= s->start_deadline) {
			snprintf(s->err, sizeof s->err, "the process did not start within %gs "
			    "(HYPR_START_TIMEOUT; VM killed)", hypr_env_seconds("HYPR_START_TIMEOUT", 30));
			s->vmfail = 1;
			break;
		}
		if (s->kill_at && t >= s->kill_at) {
			s->kill_at = 0;
			if (!s->started || hypr_vm_proc_signal(s->vm, MAIN_ID, SIGKILL, &e) < 0)
				s->abandon_at = t;
			else
				s->abandon_at = t + hypr_env_seconds("HYPR_SHUTDOWN_TIMEOUT", 10);
		}
		if (s->abandon_at && t >= s->abandon_at) {
			/* the guest does not answer: QEMU goes */
			s->status = 128 + SIGKILL;
			s->done = 1;
			hypr_vm_kill(s->vm);
			s->vm = NULL;
			return 0;
		}
		if (s->hc && s->started && s->h_id && t >= s->h_deadline) {
			struct xproc *x = xfind(s, s->h_id);
			char msg[128];
			int64_t to = json_integer_value(json_object_get(s->hc, "timeout"));
			if (x)
				x->ignore = 1;
			hypr_vm_proc_signal(s->vm, s->h_id, SIGKILL, &e);
			snprintf(msg, sizeof msg, "Health check exceeded timeout (%gs)", (double)to / 1e9);
			health_result(s, -1, msg, strlen(msg));
		}
		if (s->hc && s->started && !s->h_id && s->h_next && t >= s->h_next)
			health_start(s);
		if (!s->started && s->start_deadline)
			next = s->start_deadline;
		if (s->kill_at && (!next || s->kill_at < next))
			next = s->kill_at;
		if (s->abandon_at && (!next || s->abandon_at < next))
			next = s->abandon_at;
		if (s->hc && s->started && s->h_id && (!next || s->h_deadline < next))
			next = s->h_deadline;
		if (s->hc && s->started && !s->h_id && s->h_next && (!next || s->h_next < next))
			next = s->h_next;
		ms = next ? (int)((next - hypr_now()) * 1000) + 1 : -1;
		if (next && ms < 0)
			ms = 0;

		np = poll_common(s, pf, 0);
		hypr_vm_pollfds(s->vm, pf + np);
		np += HYPR_VM_NPOLL;
		if (s->stdin_on && s->started && s->inflight < WINDOW) {
			in_at = np;
			pf[np++] = (struct pollfd){ .fd = 0, .events = POLLIN };
		}
		if ((r = poll(pf, (nfds_t)np, ms)) < 0 && errno != EINTR) {
			snprintf(s->err, sizeof s->err, "poll: %s", strerror(errno));
			s->vmfail = 1;
			break;
		}
		serve_common(s, pf);
		if (in_at >= 0 && pf[in_at].revents) {
			char buf[65536];
			size_t want = WINDOW - s->inflight < sizeof buf ? WINDOW - s->inflight : sizeof buf;
			ssize_t n = read(0, buf, want);
			if (n > 0) {
				s->inflight += (size_t)n;
				hypr_vm_proc_stdin(s->vm, MAIN_ID, buf, (size_t)n, &e);
			} else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
				s->stdin_on = 0;
				hypr_vm_proc_stdin(s->vm, MAIN_ID, NULL, 0, &e);
			}
		}
		while (!s->done && (r = hypr_vm_next_event(s->vm, &ev, &e)) > 0)
			vm_event(s, &ev);
		if (r < 0 && !s->done) {
			snprintf(s->err, sizeof s->err, "%s", e.msg);
			s->vmfail = 1;
			hypr_vm_kill(s->vm);
			s->vm = NULL;
			return -1;
		}
	}
	if (s->vmfail) {
		hypr_vm_kill(s->vm);
		s->vm = NULL;
		return -1;
	}
	/* hypr run -it attaches right after the start: a process that was
	 * quicker keeps its output and status for that attach (10 s) */
	for (double until = hypr_now() + 10; s->hold && hypr_now() < until;) {
		struct pollfd pf[3 + MAXCL];
		int np = poll_common(s, pf, 0);

		if (poll(pf, (nfds_t)np, (int)((until - hypr_now()) * 1000) + 1) < 0 &&
		    errno != EINTR)
			break;
		serve_common(s, pf);
	}
	if (hypr_vm_stop(s->vm, &e) < 0 && s->fg && getenv("HYPR_VM_DEBUG"))
		hypr_warn("%s", e.msg);
	s->vm = NULL;
	return 0;
}

/* Docker's restart delay: 100 ms doubling, reset after 10 s of running. */
static void
backoff(struct sup *s, double secs)
{
	double until = hypr_now() + secs;

	while (!s->user_stopped && hypr_now() < until) {
		struct pollfd pf[2 + MAXCL];
		int ms = (int)((until - hypr_now()) * 1000) + 1;
		int np = poll_common(s, pf, 0);
		if (poll(pf, (nfds_t)np, ms) > 0)
			serve_common(s, pf);
	}
}

static int
supervise(struct sup *s)
{
	struct hypr_err e = { 0 };
	sigset_t mask;
	int restarts = 0, rc;
	double delay = 0.1;
	char logp[4400];

	s->cfg = s->c->config;
	s->tty = json_is_true(json_object_get(s->cfg, "tty"));
	s->interactive = json_is_true(json_object_get(s->cfg, "interactive"));
	s->hc = json_is_object(json_object_get(s->cfg, "health")) ?
	    json_object_get(s->cfg, "health") : NULL;
	s->out_ok[1] = s->out_ok[2] = 1;
	for (int k = 0; k < MAXCL; k++)
		s->cl[k].fd = -1;
	{
		const char *lm = getenv("HYPR_CTR_LOG_MAX");
		uint64_t v = 64ull << 20;
		if (lm && *lm && hypr_size_parse(lm, &v) < 0)
			v = 64ull << 20;
		s->logmax = v;
	}
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&mask);
	for (int sig = 1; sig < 32; sig++)
		if (sig != SIGKILL && sig != SIGSTOP && sig != SIGCHLD && sig != SIGPIPE &&
		    sig != SIGSEGV && sig != SIGBUS && sig != SIGFPE && sig != SIGILL &&
		    sig != SIGABRT && sig != SIGTRAP && sig != SIGTSTP && sig != SIGCONT &&
		    sig != SIGTTIN && sig != SIGTTOU && sig != SIGURG && sig != SIGALRM &&
		    sig != SIGPROF && sig != SIGVTALRM && sig != SIGSYS && sig != SIGXCPU &&
		    sig != SIGXFSZ)
			sigaddset(&mask, sig);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	if ((s->sigfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC)) < 0)
		hypr_die_errno("signalfd");
	snprintf(logp, sizeof logp, "%s/log", s->c->dir);
	s->logfd = open(logp, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	if (hypr_ctr_listen(s->c, &s->lfd, &e) < 0) {
		notify(s, 0, HYPR_EXIT_SYSTEM, e.msg);
		if (s->fg)
			hypr_die_err(&e);
		return HYPR_EXIT_SYSTEM;
	}
	if (s->fg && s->tty && s->interactive && isatty(0))
		raw_on(s);
	for (;;) {
		double t0 = hypr_now();

		rc = one_boot(s);
		raw_off(s);
		json_object_set_new(s->c->state, "finished_at", json_integer(hypr_ctr_now_ns()));
		if (rc < 0) {
			json_object_set_new(s->c->state, "error", json_string(s->err));
			json_object_set_new(s->c->state, "exit_code", json_integer(HYPR_EXIT_SYSTEM));
		} else {
			json_object_set_new(s->c->state, "exit_code", json_integer(s->status));
		}
		json_object_set_new(s->c->state, "restart_count", json_integer(restarts));
		if (rc == 0 && !s->started) {
			/* it never ran: exec failed (125-127), as docker run -d says */
			char text[4200];
			snprintf(text, sizeof text, "%.*s", (int)s->earlylen, s->early);
			notify(s, 0, s->status, text);
		} else if (rc < 0) {
			char text[1200];
			snprintf(text, sizeof text, "hypr: %s\n", s->err);
			notify(s, 0, HYPR_EXIT_SYSTEM, text);
		}
		if (rc < 0 && !s->started)
			break;	/* it cannot boot: a restart would not either */
		if (s->user_stopped || !ctr_should_restart(json_object_get(s->cfg, "restart"),
		    rc < 0 ? 128 + SIGKILL : s->status, restarts))
			break;
		restarts++;
		if (hypr_now() - t0 >= 10)
			delay = 0.1;
		set_status(s, "restarting");
		backoff(s, delay);
		delay = delay * 2 > 60 ? 60 : delay * 2;
		if (s->user_stopped)
			break;
	}
	set_status(s, "exited");
	if (json_is_true(json_object_get(s->cfg, "rm"))) {
		struct hypr_err ign = { 0 };
		if (hypr_ctr_remove(s->c, &ign) == 0)
			hypr_vol_drop_anonymous(s->root, s->cfg, &ign);	/* docker --rm's */
	}
	/* a stop's client learns it is done when its socket closes */
	for (int k = 0; k < MAXCL; k++)
		client_close(s, k);
	if (rc < 0) {
		if (s->fg)
			hypr_die(HYPR_EXIT_SYSTEM, "%s", s->err);
		return HYPR_EXIT_SYSTEM;
	}
	return s->status;
}

int
ctr_start(const struct hypr_root *root, struct hypr_ctr *c, int sqfd, int lockfd, int fg,
    int flags)
{
	struct sup s;
	int p[2];
	pid_t pid;

	memset(&s, 0, sizeof s);
	s.root = root;
	s.c = c;
	s.fg = fg;
	s.notify = -1;
	s.lfd = s.sigfd = s.logfd = -1;
	if (fg) {
		int rc = supervise(&s);
		(void)sqfd;
		(void)lockfd;
		fflush(stdout);
		return rc;
	}
	if (flags & CTR_HOLD) {
		s.hold = 1;
		winsize(&s.rows0, &s.cols0);
	}
	if (pipe2(p, O_CLOEXEC) < 0)
		hypr_die_errno("pipe");
	fflush(stdout);
	fflush(stderr);
	if ((pid = fork()) < 0)
		hypr_die_errno("fork");
	if (pid == 0) {
		int nul = open("/dev/null", O_RDWR | O_CLOEXEC);
		close(p[0]);
		setsid();
		if (nul >= 0) {
			dup2(nul, 0);
			dup2(nul, 1);
			dup2(nul, 2);
		}
		s.notify = p[1];
		_exit(supervise(&s) & 0xff);
	}
	close(p[1]);
	close(sqfd);
	close(lockfd);
	{
		char buf[5200];
		size_t len = 0;
		double deadline = hypr_now() + hypr_env_seconds("HYPR_BOOT_TIMEOUT", 30) +
		    hypr_env_seconds("HYPR_START_TIMEOUT", 30) + 30;
		for (;;) {
			struct pollfd pf = { .fd = p[0], .events = POLLIN };
			int ms = (int)((deadline - hypr_now()) * 1000);
			ssize_t n;
			if (ms <= 0)
				hypr_die(HYPR_EXIT_SYSTEM, "container %.12s: no word from its supervisor "
				    "(pid %d) in time", c->id, (int)pid);
			if (poll(&pf, 1, ms) <= 0)
				continue;
			n = read(p[0], buf + len, sizeof buf - 1 - len);
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0)
				break;
			len += (size_t)n;
			if (len == sizeof buf - 1)
				break;
		}
		buf[len] = 0;
		if (!strncmp(buf, "ok\n", 3)) {
			if (!(flags & CTR_QUIET))
				printf("%s\n", c->id);
			fflush(stdout);
			return 0;
		}
		if (!strncmp(buf, "fail ", 5)) {
			int code = atoi(buf + 5);
			char *nl = strchr(buf, '\n');
			fputs(nl ? nl + 1 : "", stderr);
			/* it is ending: once gone, its locks (the container's, the
			 * image's) are too, so what runs next sees it stopped */
			while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
				;
			return code ? code : HYPR_EXIT_SYSTEM;
		}
		hypr_die(HYPR_EXIT_SYSTEM, "container %.12s: its supervisor died before the process ran",
		    c->id);
	}
}
