/* run.c - start the stage programs, pump the streams between them (teeing
 * them into --keep files and reading the plan and steps records for the
 * progress view), show progress, and name the upstream-most stage that failed. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "cas.h"
#include "fsutil.h"
#include "hypr.h"
#include "progress.h"
#include "tool.h"

#define BUFSZ 65536
/* A line longer than this (a stage's stderr, a stream record on a tap) is
 * clipped: its first MAXLINE bytes, then " [line clipped: N bytes]" with N
 * the whole line's length. hypr-exec clips RUN output at 64 KiB already;
 * this bounds the driver whatever a stage prints. */
#define MAXLINE (1 << 20)

/* A line splitter for taps and stderr: fn gets each line (no newline, NUL
 * bytes kept, len bytes; line[len] is a NUL for parsers). */
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

/* A copy of a line held back. */
struct held {
	char *s;
	size_t n;
};

struct stage {
	int id;
	pid_t pid;
	int status, reaped;
	int closed;		/* its stderr reached EOF */
	struct held *held;	/* stderr lines held while an upstream stage runs */
	size_t nheld;
	int errfd;		/* its stderr, read by us */
	struct lines errl;
	size_t errlines;
	char *lasterr;		/* last stderr line that names the stage, else the last */
	size_t lasterr_len;
	int lasterr_named;
	FILE *keeplog;		/* --keep: DIR/NAME.err */
};

/* A link: from a stage's stdout (or a saved file) to the next stage's stdin. */
struct link {
	int in, out;		/* -1 when closed */
	char buf[BUFSZ];
	size_t off, len;
	int eof;
	FILE *keep;		/* --keep copy */
	int tap;		/* feed records to the progress view */
	struct lines tapl;
};

static volatile sig_atomic_t interrupted;
static pid_t children[NSTAGES];

/* Pass the signal on (a SIGTERM sent to hypr alone must stop the stages too);
 * the pipeline then collapses and is reported as interrupted. */
static void
on_signal(int sig)
{
	int i;

	interrupted = sig;
	for (i = 0; i < NSTAGES; i++)
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

static int
cloexec_pipe(int p[2])
{
	return pipe2(p, O_CLOEXEC);
}

static void
set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl >= 0)
		fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

static int stage_code(const struct stage *s);
static int is_symptom(const struct stage *s);
static struct stage *all;	/* the run's stages, for the callbacks */
static int first;		/* the first stage run */

/* Upstream of stage i: 0 all exited well, 1 one still runs, 2 one failed
 * (not as a symptom). A stage's words are shown once its upstream is done:
 * after an upstream failure they are symptoms and go to the log only. */
static int
upstream(int i)
{
	int j, r = 0;

	for (j = first; j < i; j++) {
		if (!all[j].reaped)
			r = 1;
		else if (stage_code(&all[j]) != 0 && !is_symptom(&all[j]))
			return 2;
	}
	return r;
}

static void
release_held(void)
{
	int i;
	size_t k;

	for (i = first; i < NSTAGES; i++) {
		int u = upstream(i);

		if (u == 1 || !all[i].nheld)
			continue;
		for (k = 0; k < all[i].nheld; k++) {
			progress_stderr(i, all[i].held[k].s, all[i].held[k].n, u == 0);
			free(all[i].held[k].s);
		}
		free(all[i].held);
		all[i].held = NULL;
		all[i].nheld = 0;
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

static void
stage_errline(void *arg, const char *line, size_t len)
{
	struct stage *s = arg;
	int u;

	size_t n = strlen(stage_progs[s->id]);
	int named = len > n && !strncmp(line, stage_progs[s->id], n) && line[n] == ':';

	s->errlines++;
	if (named || !s->lasterr_named) {
		free(s->lasterr);
		s->lasterr = memdup0(line, len);
		s->lasterr_len = len;
		s->lasterr_named = named;
	}
	if (s->keeplog) {
		fwrite(line, 1, len, s->keeplog);
		fputc('\n', s->keeplog);
	}
	if ((u = upstream(s->id)) == 1) {
		struct held *h = realloc(s->held, (s->nheld + 1) * sizeof *h);

		if (!h)
			hypr_die(HYPR_EXIT_SYSTEM, "out of memory");
		s->held = h;
		h[s->nheld].s = memdup0(line, len);
		h[s->nheld++].n = len;
		return;
	}
	progress_stderr(s->id, line, len, u == 0);
}

/* Reap the stages that closed their stderr and have exited. */
static int
reap_closed(void)
{
	int i, waiting = 0, changed = 0;

	for (i = first; i < NSTAGES; i++) {
		pid_t r;

		if (!all[i].closed || all[i].reaped)
			continue;
		r = waitpid(all[i].pid, &all[i].status, WNOHANG);
		if (r == all[i].pid) {
			all[i].reaped = 1;
			children[i] = 0;
			changed = 1;
		} else {
			waiting = 1;
		}
	}
	if (changed)
		release_held();
	return waiting;
}

static void
tap_line(void *arg, const char *line, size_t len)
{
	int *which = arg;

	progress_record(*which, line, len);
}

static void
write_pipeline(FILE *f, const struct build_opts *o, struct argv cmds[NSTAGES])
{
	int i;
	size_t j;

	for (i = o->from; i < NSTAGES; i++) {
		const char *ov = prog_override(stage_progs[i]);

		if (i > o->from)
			fputs(" |\n  ", f);
		shquote(f, ov ? ov : stage_progs[i]);
		for (j = 1; j < cmds[i].n; j++) {
			fputc(' ', f);
			shquote(f, cmds[i].v[j]);
		}
		if (i == o->from && i != ST_PARSE) {
			char path[4096];

			snprintf(path, sizeof path, "%s/%s", o->from_dir, stage_outputs[i - 1]);
			fputs(" < ", f);
			shquote(f, path);
		}
		if (o->keep && i + 1 < NSTAGES) {
			char path[4096];

			snprintf(path, sizeof path, "%s/%s", o->keep, stage_outputs[i]);
			fputs(" |\n  tee ", f);
			shquote(f, path);
		}
	}
	fputc('\n', f);
}

void
print_pipeline(const struct build_opts *o, struct argv cmds[NSTAGES])
{
	write_pipeline(stdout, o, cmds);
}

static pid_t
spawn(const char *progname, char **args, int in, int out, int err)
{
	pid_t pid = fork();

	if (pid < 0)
		hypr_die_errno("fork");
	if (pid == 0) {
		signal(SIGPIPE, SIG_DFL);
		signal(SIGINT, SIG_DFL);
		signal(SIGTERM, SIG_DFL);
		signal(SIGHUP, SIG_DFL);
		if (dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(err, 2) < 0)
			_exit(HYPR_EXIT_SYSTEM);
		hypr_prog = progname;
		exec_prog(progname, args);
	}
	return pid;
}

/* Exit status of a stage as the table has it: code, or 128+signal. */
static int
stage_code(const struct stage *s)
{
	if (WIFEXITED(s->status))
		return WEXITSTATUS(s->status);
	if (WIFSIGNALED(s->status))
		return 128 + WTERMSIG(s->status);
	return HYPR_EXIT_SYSTEM;
}

/* A failure that only echoes another: killed by SIGPIPE because a later stage
 * went away, or a silent exit 4 (close_stdout on EPIPE). */
static int
is_symptom(const struct stage *s)
{
	if (WIFSIGNALED(s->status) && WTERMSIG(s->status) == SIGPIPE)
		return 1;
	return WIFEXITED(s->status) && WEXITSTATUS(s->status) == HYPR_EXIT_SYSTEM &&
	    s->errlines == 0;
}

static FILE *
open_keep(const char *dir, const char *name)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof path, "%s/%s", dir, name);
	if (!(f = fopen(path, "we")))
		hypr_die_errno("--keep: %s", path);
	return f;
}

int
run_pipeline(struct build_opts *o, struct argv cmds[NSTAGES])
{
	struct stage st[NSTAGES] = { 0 };
	struct link lk[NSTAGES + 1];	/* lk[i] feeds stage i; lk[NSTAGES] = store's stdout */
	struct hypr_root root;
	struct hypr_err e = { 0 };
	char logpath[HYPR_PATH_BUF] = "", lastlog[HYPR_PATH_BUF] = "", id[256] = "";
	struct sigaction sa = { 0 };
	int i, nullfd, rc = 0, cause = -1, have_root;
	FILE *log = NULL;

	memset(lk, 0, sizeof lk);
	all = st;
	first = o->from;
	for (i = 0; i <= NSTAGES; i++)
		lk[i].in = lk[i].out = -1;
	signal(SIGPIPE, SIG_IGN);
	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);	/* a closed terminal stops the build too */

	have_root = hypr_root_open(&root, NULL, &e) == 0;
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
		if (hypr_mkdir_p(o->keep, 0755, &e) < 0)
			hypr_die(HYPR_EXIT_SYSTEM, "--keep: %s", e.msg);
		FILE *f = open_keep(o->keep, "pipeline.sh");

		fputs("#!/bin/sh\n# The pipeline `hypr build` ran (hypr build -n prints it).\n", f);
		write_pipeline(f, o, cmds);
		fclose(f);
	}
	progress_begin(o, log);

	if ((nullfd = open("/dev/null", O_RDWR | O_CLOEXEC)) < 0)
		hypr_die_errno("/dev/null");

	/* Input of the first stage. */
	if (o->from == ST_PARSE) {
		lk[ST_PARSE].in = -1;
	} else {
		char path[4096];

		snprintf(path, sizeof path, "%s/%s", o->from_dir, stage_outputs[o->from - 1]);
		if ((lk[o->from].in = open(path, O_RDONLY | O_CLOEXEC)) < 0)
			hypr_die(HYPR_EXIT_USAGE, "build: --from %s: %s: %s", stage_names[o->from],
			    path, strerror(errno));
	}

	for (i = o->from; i < NSTAGES; i++) {
		int inp[2] = { -1, -1 }, outp[2], errp[2];
		int child_in;

		if (i == ST_PARSE) {
			child_in = (o->file && !strcmp(o->file, "-")) ? 0 : nullfd;
		} else {
			if (cloexec_pipe(inp) < 0)
				hypr_die_errno("pipe");
			child_in = inp[0];
			lk[i].out = inp[1];
			set_nonblock(lk[i].out);
		}
		if (cloexec_pipe(outp) < 0 || cloexec_pipe(errp) < 0)
			hypr_die_errno("pipe");
		st[i].id = i;
		st[i].pid = spawn(stage_progs[i], cmds[i].v, child_in, outp[1], errp[1]);
		children[i] = st[i].pid;
		if (inp[0] >= 0)
			close(inp[0]);
		close(outp[1]);
		close(errp[1]);
		st[i].errfd = errp[0];
		lk[i + 1].in = outp[0];
		if (o->keep) {
			char name[64];

			snprintf(name, sizeof name, "%s.err", stage_names[i]);
			st[i].keeplog = open_keep(o->keep, name);
			if (i + 1 < NSTAGES)
				lk[i + 1].keep = open_keep(o->keep, stage_outputs[i]);
		}
	}
	close(nullfd);
	/* The instructions hypr-exec reads: the view's step count. */
	if (ST_EXEC >= o->from)
		lk[ST_EXEC].tap = 1;

	for (;;) {
		struct pollfd pf[3 * NSTAGES + 2];
		int map[3 * NSTAGES + 2], kind[3 * NSTAGES + 2];
		int n = 0, k;

		/* Streams before stderr: a step's record then its successor's output. */
		for (i = o->from; i <= NSTAGES; i++) {
			struct link *l = &lk[i];

			if (l->in >= 0 && !l->eof && l->len == 0) {
				pf[n] = (struct pollfd){ l->in, POLLIN, 0 };
				map[n] = i;
				kind[n++] = 1;
			}
			if (l->out >= 0 && l->len > 0) {
				pf[n] = (struct pollfd){ l->out, POLLOUT, 0 };
				map[n] = i;
				kind[n++] = 2;
			}
		}
		for (i = o->from; i < NSTAGES; i++)
			if (st[i].errfd >= 0) {
				pf[n] = (struct pollfd){ st[i].errfd, POLLIN, 0 };
				map[n] = i;
				kind[n++] = 0;
			}
		if (n == 0)
			break;
		if (poll(pf, (nfds_t)n, reap_closed() ? 20 : progress_interval()) < 0) {
			if (errno == EINTR)
				continue;
			hypr_die_errno("poll");
		}
		progress_tick();
		for (k = 0; k < n; k++) {
			char buf[BUFSZ];
			ssize_t r;

			if (!pf[k].revents)
				continue;
			i = map[k];
			if (kind[k] == 0) {
				r = read(st[i].errfd, buf, sizeof buf);
				if (r > 0) {
					lines_feed(&st[i].errl, buf, (size_t)r, stage_errline, &st[i]);
				} else if (r == 0 || (errno != EINTR && errno != EAGAIN)) {
					lines_flush(&st[i].errl, stage_errline, &st[i]);
					progress_stage_closed(i);
					st[i].closed = 1;
					close(st[i].errfd);
					st[i].errfd = -1;
				}
			} else if (kind[k] == 1) {
				struct link *l = &lk[i];

				r = read(l->in, l->buf, sizeof l->buf);
				if (r > 0) {
					l->off = 0;
					l->len = (size_t)r;
					if (l->keep)
						fwrite(l->buf, 1, (size_t)r, l->keep);
					if (l->tap)
						lines_feed(&l->tapl, l->buf, (size_t)r, tap_line,
						    &l->tap);
					if (i == NSTAGES) {	/* store's stdout: the ID */
						size_t have = strlen(id);
						size_t cp = (size_t)r < sizeof id - 1 - have ?
						    (size_t)r : sizeof id - 1 - have;

						memcpy(id + have, l->buf, cp);
						id[have + cp] = 0;
						l->len = 0;
					}
				} else if (r == 0 || (errno != EINTR && errno != EAGAIN)) {
					l->eof = 1;
					close(l->in);
					l->in = -1;
					if (l->tap)
						lines_flush(&l->tapl, tap_line, &l->tap);
					if (l->out >= 0 && l->len == 0) {
						close(l->out);
						l->out = -1;
					}
				}
			} else {
				struct link *l = &lk[i];

				r = write(l->out, l->buf + l->off, l->len);
				if (r > 0) {
					l->off += (size_t)r;
					l->len -= (size_t)r;
				} else if (r < 0 && errno != EAGAIN && errno != EINTR) {
					/* The reader died: stop reading its feed so the
					 * writer gets SIGPIPE, as in a shell pipeline. */
					close(l->out);
					l->out = -1;
					l->len = 0;
					if (l->in >= 0) {
						close(l->in);
						l->in = -1;
					}
					l->eof = 1;
				}
				if (l->len == 0 && l->eof && l->out >= 0) {
					close(l->out);
					l->out = -1;
				}
			}
		}
		/* Links whose source ended while their buffer was already empty. */
		for (i = o->from; i <= NSTAGES; i++)
			if (lk[i].eof && lk[i].len == 0 && lk[i].out >= 0) {
				close(lk[i].out);
				lk[i].out = -1;
			}
	}
	for (i = o->from; i < NSTAGES; i++) {
		if (!st[i].reaped)
			while (waitpid(st[i].pid, &st[i].status, 0) < 0 && errno == EINTR)
				;
		st[i].reaped = 1;
		children[i] = 0;
		release_held();
		progress_stage_done(i, stage_code(&st[i]));
		if (st[i].keeplog)
			fclose(st[i].keeplog);
		if (lk[i + 1].keep)
			fclose(lk[i + 1].keep);
	}
	for (i = o->from; i < NSTAGES; i++)
		if (stage_code(&st[i]) != 0 && !is_symptom(&st[i])) {
			cause = i;
			break;
		}
	if (cause < 0)
		for (i = o->from; i < NSTAGES; i++)
			if (stage_code(&st[i]) != 0) {
				cause = i;
				break;
			}
	id[strcspn(id, "\r\n")] = 0;
	if (cause >= 0) {
		rc = stage_code(&st[cause]);
		if (interrupted)
			rc = 128 + interrupted;
		progress_fail(stage_progs[cause], rc, st[cause].lasterr,
		    st[cause].lasterr_len, log ? lastlog : NULL, interrupted);
	} else if (!id[0]) {
		rc = HYPR_EXIT_SYSTEM;
		progress_fail(stage_progs[ST_STORE], rc, "printed no image ID",
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
	if (log) {
		fclose(log);
		if (rename(logpath, lastlog) < 0)
			hypr_warn("%s: %s", lastlog, strerror(errno));
	}
	for (i = 0; i < NSTAGES; i++)
		free(st[i].lasterr);
	if (rc == 0)
		hypr_close_stdout();
	return rc;
}
