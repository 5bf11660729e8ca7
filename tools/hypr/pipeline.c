/* pipeline.c - the pipeline `hypr build` runs: the stage programs (and with
 * --keep a `tee` after each, saving its stream) joined by the kernel's
 * pipes, as `hypr build -n` prints it; one description makes both. The
 * driver only starts the processes, watches each one's standard error and
 * each stage's event channel (hypr-events(5)), has them shown (progress.c),
 * and names the upstream-most process that failed. No stream byte passes
 * through the driver; the last stage's standard output (the image ID) is
 * the one it reads. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cas.h"
#include "events.h"
#include "fsutil.h"
#include "hypr.h"
#include "progress.h"
#include "tool.h"

/* A line longer than this (of a stage's stderr or event channel) is
 * clipped: its first MAXLINE bytes, then " [line clipped: N bytes]" with N
 * the whole line's length. hypr-exec clips RUN output at 64 KiB already;
 * this bounds the driver whatever a stage prints. */
#define MAXLINE (1 << 20)
/* The stages, and a tee after each but the last. */
#define MAXPROCS (2 * NSTAGES)

/* A line splitter: fn gets each line (no newline, NUL bytes kept, len
 * bytes; line[len] is a NUL for parsers). */
typedef void line_fn(void *arg, const char *line, size_t len);

struct lines {
	char *p;
	size_t n, cap;
	unsigned long long whole;	/* the unfinished line's whole length */
};

static void
lines_end(struct lines *l, line_fn *fn, void *arg)
{
	if (l->whole > l->n)
		l->n += (size_t)snprintf(l->p + l->n, l->cap - l->n,
		    " [line clipped: %llu bytes]", l->whole);
	l->p[l->n] = 0;
	fn(arg, l->p, l->n);
	l->n = 0;
	l->whole = 0;
}

static void
lines_feed(struct lines *l, const char *buf, size_t n, line_fn *fn, void *arg)
{
	while (n > 0) {
		const char *nl = memchr(buf, '\n', n);
		size_t k = nl ? (size_t)(nl - buf) : n;
		size_t keep = l->n < MAXLINE ? MAXLINE - l->n : 0;

		if (keep > k)
			keep = k;
		/* room for the kept bytes, the clip note and a NUL */
		if (l->n + keep + 64 > l->cap) {
			size_t cap = l->cap ? l->cap : 4096;

			while (cap < l->n + keep + 64)
				cap *= 2;
			if (!(l->p = realloc(l->p, cap)))
				hypr_die(HYPR_EXIT_SYSTEM, "out of memory");
			l->cap = cap;
		}
		memcpy(l->p + l->n, buf, keep);
		l->n += keep;
		l->whole += k;
		if (nl) {
			lines_end(l, fn, arg);
			k++;
		}
		buf += k;
		n -= k;
	}
}

static void
lines_flush(struct lines *l, line_fn *fn, void *arg)
{
	if (l->whole)
		lines_end(l, fn, arg);
	free(l->p);
	memset(l, 0, sizeof *l);
}

/* A stderr line or an event, held while an upstream process runs. */
struct msg {
	char *s;		/* a stderr line (NULL for an event) */
	size_t n;
	struct hypr_event ev;
};

/* One process of the pipeline. */
struct proc {
	int stage;		/* the stage it is, or (a tee) whose stream it saves */
	int tee;
	const char *name;	/* "hypr-exec", "tee" */
	char **args;		/* argv; args[0] is replaced when exec'd */
	struct argv own;	/* a tee's argv */
	pid_t pid;
	int status, reaped;
	int errfd, evfd;	/* read ends of its stderr and event channel; -1 at EOF */
	struct lines errl, evl;
	struct msg *held;	/* what it said while an upstream process ran */
	size_t nheld;
	size_t errlines;
	char *lasterr;		/* last stderr line that names it, else the last */
	size_t lasterr_len;
	int lasterr_named;
	char *error;		/* the error it sent as an event, as a line */
	size_t error_len;
	FILE *keeperr, *keepev;	/* --keep: DIR/NAME.err, DIR/NAME.events */
};

struct pipeline {
	struct proc p[MAXPROCS];
	int n;
	char input[HYPR_PATH_BUF];	/* --from: the first stage's stdin, else "" */
};

/* The processes and their command lines: what runs and what -n prints. */
static void
plan(struct pipeline *pl, const struct build_opts *o, struct argv cmds[NSTAGES])
{
	int i;

	memset(pl, 0, sizeof *pl);
	if (o->from != ST_PARSE)
		snprintf(pl->input, sizeof pl->input, "%s/%s", o->from_dir,
		    stage_outputs[o->from - 1]);
	for (i = o->from; i < NSTAGES; i++) {
		struct proc *p = &pl->p[pl->n++];

		p->stage = i;
		p->name = stage_progs[i];
		p->args = cmds[i].v;
		if (!o->keep && i == ST_EXEC && o->cache_steps[0]) {
			/* --cache-to: the steps stream names every key */
			p = &pl->p[pl->n++];
			p->stage = i;
			p->tee = 1;
			p->name = "tee";
			argv_add(&p->own, "tee");
			argv_add(&p->own, o->cache_steps);
			p->args = p->own.v;
		}
		if (!o->keep || i + 1 == NSTAGES)
			continue;
		p = &pl->p[pl->n++];
		p->stage = i;
		p->tee = 1;
		p->name = "tee";
		argv_add(&p->own, "tee");
		argv_addf(&p->own, "%s/%s", o->keep, stage_outputs[i]);
		p->args = p->own.v;
	}
	for (i = 0; i < pl->n; i++)
		pl->p[i].errfd = pl->p[i].evfd = -1;
}

static void
write_pipeline(FILE *f, const struct pipeline *pl)
{
	int k;
	size_t j;

	for (k = 0; k < pl->n; k++) {
		const struct proc *p = &pl->p[k];
		const char *ov = p->tee ? NULL : prog_override(p->name);

		if (k > 0)
			fputs(" |\n  ", f);
		shquote(f, ov ? ov : p->name);
		for (j = 1; p->args[j]; j++) {
			fputc(' ', f);
			shquote(f, p->args[j]);
		}
		if (k == 0 && pl->input[0]) {
			fputs(" < ", f);
			shquote(f, pl->input);
		}
	}
	fputc('\n', f);
}

static void
free_pipeline(struct pipeline *pl)
{
	int k;

	for (k = 0; k < pl->n; k++) {
		argv_free(&pl->p[k].own);
		free(pl->p[k].lasterr);
		free(pl->p[k].error);
	}
}

void
print_pipeline(const struct build_opts *o, struct argv cmds[NSTAGES])
{
	struct pipeline pl;

	plan(&pl, o, cmds);
	write_pipeline(stdout, &pl);
	free_pipeline(&pl);
	for (size_t i = 0; i < o->cache_to.n; i++) {
		fputs("hypr-fetch cache-export --to ", stdout);
		shquote(stdout, o->cache_to.v[i]);
		if (o->quiet)
			fputs(" -q", stdout);
		fputs(" < ", stdout);
		shquote(stdout, o->cache_steps);
		fputc('\n', stdout);
	}
}

/* Where the steps stream of a --cache-to build is saved: --keep's copy, a
 * --from directory's, else a file in this build's temp directory. */
void
cache_steps_path(struct build_opts *o, const struct hypr_root *root)
{
	struct hypr_err e = { 0 };

	if (o->cache_to.n == 0)
		return;
	if (o->keep)
		snprintf(o->cache_steps, sizeof o->cache_steps, "%s/%s", o->keep,
		    stage_outputs[ST_EXEC]);
	else if (o->from > ST_EXEC)
		snprintf(o->cache_steps, sizeof o->cache_steps, "%s/%s", o->from_dir,
		    stage_outputs[ST_EXEC]);
	else if (root == NULL)
		snprintf(o->cache_steps, sizeof o->cache_steps, "/tmp/hypr-cache-%s",
		    stage_outputs[ST_EXEC]);
	else if (hypr_root_tmp(root, o->cache_steps, sizeof o->cache_steps, &e, "%s",
	    stage_outputs[ST_EXEC]) < 0)
		hypr_die(HYPR_EXIT_SYSTEM, "build: %s", e.msg);
}

/* --cache-to: hypr-fetch cache-export for each, reading the saved steps. */
static int
export_cache(const struct build_opts *o)
{
	for (size_t i = 0; i < o->cache_to.n; i++) {
		char *args[] = { "hypr-fetch", "cache-export", "--to", o->cache_to.v[i],
			o->quiet ? "-q" : NULL, NULL };
		int status, code;
		pid_t pid = fork();

		if (pid < 0)
			hypr_die_errno("build: fork");
		if (pid == 0) {
			int fd = open(o->cache_steps, O_RDONLY | O_CLOEXEC);

			if (fd < 0 || dup2(fd, 0) < 0) {
				fprintf(stderr, "hypr: --cache-to: %s: %s\n", o->cache_steps,
				    strerror(errno));
				_exit(HYPR_EXIT_SYSTEM);
			}
			unsetenv("HYPR_EVENTS_FD");
			exec_prog("hypr-fetch", args);
		}
		while (waitpid(pid, &status, 0) < 0)
			if (errno != EINTR)
				hypr_die_errno("build: waitpid");
		code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
		if (code != 0)	/* hypr-fetch said why, in one line */
			return code;
	}
	return 0;
}

static volatile sig_atomic_t interrupted;
static pid_t children[MAXPROCS];
static struct pipeline *run;	/* the running pipeline, for the callbacks */

/* Pass the signal on (a SIGTERM sent to hypr alone must stop the stages too);
 * the pipeline then collapses and is reported as interrupted. */
static void
on_signal(int sig)
{
	int i;

	interrupted = sig;
	for (i = 0; i < MAXPROCS; i++)
		if (children[i] > 0)
			kill(children[i], sig);
}

/* Remove logs/build.PID.log files whose build is gone (killed with SIGKILL). */
static void
remove_stale_logs(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;

	if (d == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		char *end;
		long pid;

		if (strncmp(de->d_name, "build.", 6) != 0)
			continue;
		pid = strtol(de->d_name + 6, &end, 10);
		if (end == de->d_name + 6 || strcmp(end, ".log") != 0 || pid <= 0)
			continue;
		if (kill((pid_t)pid, 0) < 0 && errno == ESRCH)
			unlinkat(dirfd(d), de->d_name, 0);
	}
	closedir(d);
}

/* Exit status as the table has it: code, or 128+signal. */
static int
proc_code(const struct proc *p)
{
	if (WIFEXITED(p->status))
		return WEXITSTATUS(p->status);
	if (WIFSIGNALED(p->status))
		return 128 + WTERMSIG(p->status);
	return HYPR_EXIT_SYSTEM;
}

/* A failure that only echoes another: killed by SIGPIPE because a later
 * process went away, or a silent exit 4 (close_stdout on EPIPE). */
static int
is_symptom(const struct proc *p)
{
	if (WIFSIGNALED(p->status) && WTERMSIG(p->status) == SIGPIPE)
		return 1;
	return WIFEXITED(p->status) && WEXITSTATUS(p->status) == HYPR_EXIT_SYSTEM &&
	    p->errlines == 0 && p->error == NULL;
}

/* Upstream of process k: 0 all exited well, 1 one still runs, 2 one failed
 * (not as a symptom). What a process says is shown once its upstream is
 * done: after an upstream failure it is a symptom, for the log only. */
static int
upstream(int k)
{
	int j, r = 0;

	for (j = 0; j < k; j++) {
		if (!run->p[j].reaped)
			r = 1;
		else if (proc_code(&run->p[j]) != 0 && !is_symptom(&run->p[j]))
			return 2;
	}
	return r;
}

static void
deliver(struct proc *p, struct msg *m, int show)
{
	if (m->s)
		progress_stderr(p->stage, m->s, m->n, show);
	else
		progress_event(p->stage, &m->ev, show);
}

static void
release_held(void)
{
	int k;
	size_t i;

	for (k = 0; k < run->n; k++) {
		struct proc *p = &run->p[k];
		int u = upstream(k);

		if (u == 1 || !p->nheld)
			continue;
		for (i = 0; i < p->nheld; i++) {
			deliver(p, &p->held[i], u == 0);
			free(p->held[i].s);
			hypr_event_free(&p->held[i].ev);
		}
		free(p->held);
		p->held = NULL;
		p->nheld = 0;
	}
}

static char *
memdup0(const char *s, size_t n)
{
	char *p = malloc(n + 1);

	if (!p)
		hypr_die(HYPR_EXIT_SYSTEM, "out of memory");
	memcpy(p, s, n);
	p[n] = 0;
	return p;
}

/* Show m now, or hold it while an upstream process runs; m is taken. */
static void
say(struct proc *p, struct msg *m)
{
	int u = upstream((int)(p - run->p));

	if (u == 1) {
		struct msg *h = realloc(p->held, (p->nheld + 1) * sizeof *h);

		if (!h)
			hypr_die(HYPR_EXIT_SYSTEM, "out of memory");
		p->held = h;
		h[p->nheld++] = *m;
		return;
	}
	deliver(p, m, u == 0);
	free(m->s);
	hypr_event_free(&m->ev);
}

static void
keep_line(FILE *f, const char *line, size_t len)
{
	if (f) {
		fwrite(line, 1, len, f);
		fputc('\n', f);
	}
}

static void
on_stderr(void *arg, const char *line, size_t len)
{
	struct proc *p = arg;
	size_t n = strlen(p->name);
	int named = len > n && !strncmp(line, p->name, n) && line[n] == ':';
	struct msg m = { 0 };

	p->errlines++;
	if (named || !p->lasterr_named) {
		free(p->lasterr);
		p->lasterr = memdup0(line, len);
		p->lasterr_len = len;
		p->lasterr_named = named;
	}
	keep_line(p->keeperr, line, len);
	m.s = memdup0(line, len);
	m.n = len;
	say(p, &m);
}

static void
on_event(void *arg, const char *line, size_t len)
{
	struct proc *p = arg;
	struct msg m = { 0 };
	struct hypr_strbuf h = { 0 };
	int r;

	keep_line(p->keepev, line, len);
	if ((r = hypr_event_parse(line, len, &m.ev)) == 0)
		return;
	if (r < 0) {	/* not a record: words all the same */
		on_stderr(p, line, len);
		return;
	}
	if (m.ev.type == HYPR_EV_ERROR) {
		/* the footer's message, not scraped from stderr (where the
		 * stage prints its line too, for the screen and the log) */
		hypr_event_human(&m.ev, p->name, 0, &h);
		free(p->error);
		p->error = hypr_strbuf_take(&h);
		p->error_len = p->error ? strlen(p->error) : 0;
		hypr_event_free(&m.ev);
		return;
	}
	/* NAME.err: what the stage would have printed by hand */
	if (p->keeperr && hypr_event_human(&m.ev, p->name, 0, &h))
		keep_line(p->keeperr, h.s, h.n);
	free(h.s);
	say(p, &m);
}

/* Reap the processes whose stderr and event channel are closed. */
static int
reap_closed(void)
{
	int k, waiting = 0, changed = 0;

	for (k = 0; k < run->n; k++) {
		struct proc *p = &run->p[k];
		pid_t r;

		if (p->errfd >= 0 || p->evfd >= 0 || p->reaped)
			continue;
		r = waitpid(p->pid, &p->status, WNOHANG);
		if (r == p->pid) {
			p->reaped = 1;
			children[k] = 0;
			changed = 1;
		} else {
			waiting = 1;
		}
	}
	if (changed)
		release_held();
	return waiting;
}

/* Start p with in, out and err as its stdin, stdout and stderr and ev (or
 * -1) as its event channel. It dies with the driver (PR_SET_PDEATHSIG): a
 * SIGKILLed hypr leaves no stage running. */
static pid_t
spawn(const struct proc *p, int in, int out, int err, int ev)
{
	pid_t parent = getpid(), pid = fork();

	if (pid < 0)
		hypr_die_errno("fork");
	if (pid == 0) {
		signal(SIGPIPE, SIG_DFL);
		signal(SIGINT, SIG_DFL);
		signal(SIGTERM, SIG_DFL);
		signal(SIGHUP, SIG_DFL);
		if (prctl(PR_SET_PDEATHSIG, SIGTERM) < 0 || getppid() != parent)
			_exit(128 + SIGTERM);
		if (dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(err, 2) < 0)
			_exit(HYPR_EXIT_SYSTEM);
		/* the channel is fd 3, after the three standard ones: a shell
		 * script stage can write to it (dash knows fds 0-9 only) */
		if (ev >= 0) {
			if ((ev == 3 ? fcntl(3, F_SETFD, 0) : dup2(ev, 3)) < 0 ||
			    setenv("HYPR_EVENTS_FD", "3", 1) < 0)
				_exit(HYPR_EXIT_SYSTEM);
		} else {
			unsetenv("HYPR_EVENTS_FD");
		}
		hypr_prog = p->name;
		if (!p->tee)
			exec_prog(p->name, p->args);
		execvp("tee", p->args);
		fprintf(stderr, "tee: cannot run tee: %s\n", strerror(errno));
		_exit(HYPR_EXIT_SYSTEM);
	}
	return pid;
}

static FILE *
open_keep(const char *dir, const char *name)
{
	char path[HYPR_PATH_BUF];
	FILE *f;

	snprintf(path, sizeof path, "%s/%s", dir, name);
	if (!(f = fopen(path, "we")))
		hypr_die_errno("--keep: %s", path);
	return f;
}

static void
cloexec_pipe(int p[2])
{
	if (pipe2(p, O_CLOEXEC) < 0)
		hypr_die_errno("pipe");
}

/* Read what fd has; at its end, flush the line splitter and close fd. */
static void
drain(int *fd, struct lines *l, line_fn *fn, void *arg)
{
	char buf[65536];
	ssize_t r = read(*fd, buf, sizeof buf);

	if (r > 0) {
		lines_feed(l, buf, (size_t)r, fn, arg);
	} else if (r == 0 || (errno != EINTR && errno != EAGAIN)) {
		lines_flush(l, fn, arg);
		close(*fd);
		*fd = -1;
	}
}

/* Start every process, joined stdout to stdin by pipes; idfd gets the last
 * one's stdout. */
static void
start(struct pipeline *pl, const struct build_opts *o, int *idfd)
{
	int k, in, nullfd;

	if ((nullfd = open("/dev/null", O_RDONLY | O_CLOEXEC)) < 0)
		hypr_die_errno("/dev/null");
	if (pl->input[0]) {
		if ((in = open(pl->input, O_RDONLY | O_CLOEXEC)) < 0)
			hypr_die(HYPR_EXIT_USAGE, "build: --from %s: %s: %s", stage_names[o->from],
			    pl->input, strerror(errno));
	} else {
		in = o->file && !strcmp(o->file, "-") ? 0 : nullfd;
	}
	for (k = 0; k < pl->n && o->keep; k++) {
		struct proc *p = &pl->p[k];
		char name[64];

		if (p->tee)
			continue;
		snprintf(name, sizeof name, "%s.err", stage_names[p->stage]);
		p->keeperr = open_keep(o->keep, name);
		snprintf(name, sizeof name, "%s.events", stage_names[p->stage]);
		p->keepev = open_keep(o->keep, name);
	}
	for (k = 0; k < pl->n; k++) {
		struct proc *p = &pl->p[k];
		int outp[2], errp[2], evp[2] = { -1, -1 };

		cloexec_pipe(outp);
		cloexec_pipe(errp);
		if (!p->tee)
			cloexec_pipe(evp);
		p->pid = spawn(p, in, outp[1], errp[1], evp[1]);
		children[k] = p->pid;
		if (in != 0 && in != nullfd)
			close(in);
		close(outp[1]);
		close(errp[1]);
		if (evp[1] >= 0)
			close(evp[1]);
		in = outp[0];
		p->errfd = errp[0];
		p->evfd = evp[0];
	}
	*idfd = in;
	close(nullfd);
}

/* Watch until every stderr, event channel and the ID's pipe are closed. */
static void
watch(struct pipeline *pl, int idfd, char *id, size_t idsize)
{
	for (;;) {
		struct pollfd pf[2 * MAXPROCS + 1];
		int who[2 * MAXPROCS + 1];
		int n = 0, k, i;

		for (k = 0; k < pl->n; k++) {
			/* events before stderr: a step, then what it printed */
			if (pl->p[k].evfd >= 0) {
				pf[n] = (struct pollfd){ pl->p[k].evfd, POLLIN, 0 };
				who[n++] = k;
			}
			if (pl->p[k].errfd >= 0) {
				pf[n] = (struct pollfd){ pl->p[k].errfd, POLLIN, 0 };
				who[n++] = k;
			}
		}
		if (idfd >= 0) {
			pf[n] = (struct pollfd){ idfd, POLLIN, 0 };
			who[n++] = -1;
		}
		if (n == 0)
			break;
		if (poll(pf, (nfds_t)n, reap_closed() ? 20 : progress_interval()) < 0) {
			if (errno == EINTR)
				continue;
			hypr_die_errno("poll");
		}
		progress_tick();
		for (i = 0; i < n; i++) {
			struct proc *p;

			if (!pf[i].revents)
				continue;
			if (who[i] < 0) {	/* the last stage's stdout: the ID */
				char buf[4096];
				ssize_t r = read(idfd, buf, sizeof buf);
				size_t have = strlen(id);

				if (r > 0) {	/* more than an ID fits: not kept */
					size_t cp = (size_t)r < idsize - 1 - have ? (size_t)r :
					    idsize - 1 - have;

					memcpy(id + have, buf, cp);
					id[have + cp] = 0;
				} else if (r == 0 || (errno != EINTR && errno != EAGAIN)) {
					close(idfd);
					idfd = -1;
				}
				continue;
			}
			p = &pl->p[who[i]];
			if (pf[i].fd == p->evfd)
				drain(&p->evfd, &p->evl, on_event, p);
			else if (pf[i].fd == p->errfd)
				drain(&p->errfd, &p->errl, on_stderr, p);
			if (p->evfd < 0 && p->errfd < 0 && !p->tee)
				progress_stage_closed(p->stage);
		}
	}
}

int
run_pipeline(struct build_opts *o, struct argv cmds[NSTAGES])
{
	struct pipeline pl;
	struct hypr_root root;
	struct hypr_err e = { 0 };
	char logpath[HYPR_PATH_BUF] = "", lastlog[HYPR_PATH_BUF] = "", id[256] = "";
	struct sigaction sa = { 0 };
	int k, idfd, rc = 0, cause = -1, have_root;
	FILE *log = NULL;

	have_root = hypr_root_open(&root, NULL, &e) == 0;
	cache_steps_path(o, have_root ? &root : NULL);
	plan(&pl, o, cmds);
	run = &pl;
	signal(SIGPIPE, SIG_IGN);
	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);	/* a closed terminal stops the build too */

	if (have_root) {
		struct hypr_tmp_usage u;
		char mine[HYPR_PATH_BUF + 128];

		/* Temp dirs of builds that are gone (SIGKILL), as with the logs
		 * below; a download's .part stays for a resume. */
		hypr_root_tmp_scan(&root, 2, NULL, NULL, &u, &e);
		/* This build's temp dir, locked while it runs: a prune keeps
		 * every blob made since it began (hypr-store(1)). */
		if (hypr_root_tmp(&root, mine, sizeof mine, &e, ".") < 0)
			hypr_die(HYPR_EXIT_SYSTEM, "build: %s", e.msg);
	}
	if (have_root && hypr_root_path(&root, lastlog, sizeof lastlog, "logs") == 0 &&
	    hypr_mkdir_p(lastlog, 0755, &e) == 0) {
		remove_stale_logs(lastlog);
		hypr_root_path(&root, logpath, sizeof logpath, "logs/build.%ld.log",
		    (long)getpid());
		hypr_root_path(&root, lastlog, sizeof lastlog, "logs/last.log");
		log = fopen(logpath, "we");
	}
	if (o->keep) {
		FILE *f;

		if (hypr_mkdir_p(o->keep, 0755, &e) < 0)
			hypr_die(HYPR_EXIT_SYSTEM, "--keep: %s", e.msg);
		f = open_keep(o->keep, "pipeline.sh");
		fputs("#!/bin/sh\n# The pipeline `hypr build` ran (hypr build -n prints it).\n", f);
		write_pipeline(f, &pl);
		fclose(f);
	}
	progress_begin(o, log);
	start(&pl, o, &idfd);
	watch(&pl, idfd, id, sizeof id);

	for (k = 0; k < pl.n; k++) {
		struct proc *p = &pl.p[k];

		if (!p->reaped)
			while (waitpid(p->pid, &p->status, 0) < 0 && errno == EINTR)
				;
		p->reaped = 1;
		children[k] = 0;
		release_held();
		progress_stage_done(p->tee ? -1 : p->stage, p->name, proc_code(p));
		if (p->keeperr)
			fclose(p->keeperr);
		if (p->keepev)
			fclose(p->keepev);
	}
	for (k = 0; k < pl.n && cause < 0; k++)
		if (proc_code(&pl.p[k]) != 0 && !is_symptom(&pl.p[k]))
			cause = k;
	for (k = 0; k < pl.n && cause < 0; k++)
		if (proc_code(&pl.p[k]) != 0)
			cause = k;
	id[strcspn(id, "\r\n")] = 0;
	if (cause >= 0) {
		struct proc *p = &pl.p[cause];

		rc = proc_code(p);
		/* a --keep copy that failed (a full disk) is the system's fault */
		if (p->tee && !WIFSIGNALED(p->status))
			rc = HYPR_EXIT_SYSTEM;
		if (interrupted)
			rc = 128 + interrupted;
		progress_fail(p->stage, p->name, rc, p->error ? p->error : p->lasterr,
		    p->error ? p->error_len : p->lasterr_len, log ? lastlog : NULL,
		    interrupted);
	} else if (!id[0]) {
		rc = HYPR_EXIT_SYSTEM;
		progress_fail(ST_STORE, stage_progs[ST_STORE], rc, "printed no image ID",
		    strlen("printed no image ID"), log ? lastlog : NULL, 0);
	} else {
		progress_done(id, &o->tags);
		if (o->iidfile && hypr_write_atomic(o->iidfile, id, strlen(id), 0644, &e) < 0)
			hypr_die(HYPR_EXIT_SYSTEM, "--iidfile: %s", e.msg);
		if (o->keep) {
			FILE *f = open_keep(o->keep, "id");

			fprintf(f, "%s\n", id);
			fclose(f);
		}
		if (o->quiet)
			printf("%s\n", id);
	}
	progress_end();
	if (rc == 0 && o->cache_to.n)
		rc = export_cache(o);
	if (log) {
		fclose(log);
		if (rename(logpath, lastlog) < 0)
			hypr_warn("%s: %s", lastlog, strerror(errno));
	}
	free_pipeline(&pl);
	if (rc == 0)
		hypr_close_stdout();
	return rc;
}
