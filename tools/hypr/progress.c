/* progress.c - the build's progress: live view (tty), BuildKit plain lines,
 * the full log, and the error footer with the Dockerfile snippet. What the
 * stages do comes as events (hypr-events(5)); their plain lines are the
 * events' human lines (events.c), as a stage run by hand prints them. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "events.h"
#include "progress.h"
#include "tool.h"

#define TAIL 6		/* output lines of the running step shown live */
#define KEEP 12		/* lines kept for an error footer */

/* A line as a stage wrote it: any bytes, NULs too (s[n] is a NUL). */
struct line {
	char *s;
	size_t n;
};

/* A step as hypr-exec's events tell it: "#N [stage k/n] INSTRUCTION", then
 * "#N output...", then "#N CACHED" or "#N DONE 1.2s". */
struct step {
	int num;
	char *label;		/* "[stage k/n] INSTRUCTION" */
	int done, cached;
	double t0;		/* when it began */
	double secs;		/* how long it ran (done) */
	struct line tail[KEEP];	/* last output lines (freed once the step is done) */
	int ntail;
};

static struct {
	int mode;		/* PROGRESS_PLAIN, _TTY or _QUIET */
	int color;
	int esc;		/* stderr is a terminal: escape what stages print */
	FILE *log;
	unsigned long long log_max;	/* HYPR_LOG_MAX: 0 = no limit */
	unsigned long long logged;	/* bytes written to the log */
	unsigned long long unlogged;	/* bytes of lines past the cut */
	int cut;			/* the log reached log_max */
	const struct build_opts *o;
	double t0;
	struct step *sp;
	int nsp;
	int running;		/* index into sp of the running step, or -1 */
	int ninstr;		/* steps in the build (hypr-exec's plan event) */
	int ndone;
	int maxnum;		/* highest #N seen */
	int live_lines;		/* lines of the live area on screen */
	double last_draw;
	const char *stage_running;	/* for the live header before steps */
	struct line errtail[NSTAGES][KEEP];	/* last stderr lines of each stage */
	int nerr[NSTAGES];
	double closed[NSTAGES];	/* when each stage closed its stderr (exited) */
	struct line held;	/* a "hypr-X: ..." line not yet on screen: if it is
				 * the error, the footer says it (once) */
} P = { .running = -1 };


static void
ring_add(struct line *ring, int *n, const char *line, size_t len)
{
	if (*n == KEEP) {
		free(ring[0].s);
		memmove(ring, ring + 1, (KEEP - 1) * sizeof *ring);
		(*n)--;
	}
	if (!(ring[*n].s = malloc(len + 1)))
		hypr_die(HYPR_EXIT_SYSTEM, "out of memory");
	memcpy(ring[*n].s, line, len);
	ring[*n].s[len] = 0;
	ring[(*n)++].n = len;
}

static void
ring_free(struct line *ring, int *n)
{
	for (int i = 0; i < *n; i++)
		free(ring[i].s);
	*n = 0;
}

static const char *
col(const char *c)
{
	return P.color ? c : "";
}

static int
term_width(void)
{
	struct winsize ws;

	if (ioctl(2, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 20)
		return ws.ws_col;
	return 80;
}

/* The terminal's rows: the live view stays below them, so redrawing it
 * never reaches lines already scrolled out (the scrollback keeps one copy). */
static int
term_rows(void)
{
	struct winsize ws;

	if (ioctl(2, TIOCGWINSZ, &ws) == 0 && ws.ws_row > 0)
		return ws.ws_row;
	return 24;
}

/* Erase the live view, line by line, the cursor left where it began. Not
 * by "erase below" (ESC [J): from the screen's top row that clears the
 * whole screen, which a terminal such as tmux (scroll-on-clear) first
 * scrolls into its scrollback, a copy per redraw. */
static void
clear_live(void)
{
	int i;

	if (P.mode == PROGRESS_TTY && P.live_lines) {
		fprintf(stderr, "\033[%dA", P.live_lines);
		for (i = 0; i < P.live_lines; i++)
			fputs(i + 1 < P.live_lines ? "\033[2K\033[B" : "\033[2K", stderr);
		if (P.live_lines > 1)
			fprintf(stderr, "\033[%dA", P.live_lines - 1);
		P.live_lines = 0;
	}
}

/* One line into the log, byte for byte. Lines the stages print stop at
 * HYPR_LOG_MAX (a line there says so); the driver's own lines (stage
 * exits, the error footer) always go in: there are a few dozen at most. */
static void
log_line(const char *s, size_t n, int own)
{
	if (!P.log)
		return;
	if (!own && P.log_max && P.logged + n + 1 > P.log_max) {
		if (!P.cut) {
			P.cut = 1;
			fprintf(P.log, "# hypr: log cut here: it reached HYPR_LOG_MAX=%llu bytes; "
			    "the rest of the build's output is not logged\n", P.log_max);
		}
		P.unlogged += n + 1;
		return;
	}
	fwrite(s, 1, n, P.log);
	fputc('\n', P.log);
	P.logged += n + 1;
}

/* One line on stderr, in plain mode or above the live area: as it is for a
 * file or a pipe, escaped for a terminal (a RUN's ESC sequences, OSC 52
 * clipboard writes, window titles never reach it). */
static void put_line(const char *color, const char *s, size_t n);

/* The held line to the screen, before anything else goes there. */
static void
flush_held(void)
{
	char *h = P.held.s;

	if (!h)
		return;
	P.held.s = NULL;
	put_line("", h, P.held.n);
	free(h);
}

static void
screen_line(const char *color, const char *s, size_t n)
{
	if (P.mode == PROGRESS_QUIET)
		return;
	flush_held();
	put_line(color, s, n);
}

static void
put_line(const char *color, const char *s, size_t n)
{
	clear_live();
	fputs(col(color), stderr);
	if (P.esc)
		hypr_fput_escaped(stderr, s, n);
	else
		fwrite(s, 1, n, stderr);
	fputs(col("\033[0m"), stderr);
	fputc('\n', stderr);
}

/* A line of the driver's own: the log, and stderr if to_screen. */
static void
emit(int to_screen, const char *color, const char *fmt, ...)
{
	va_list ap;
	char *s = NULL;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&s, fmt, ap);
	va_end(ap);
	if (n < 0)
		hypr_die(HYPR_EXIT_SYSTEM, "out of memory");
	log_line(s, (size_t)n, 1);
	if (to_screen)
		screen_line(color, s, (size_t)n);
	free(s);
}

/* A line a stage printed: the log (up to HYPR_LOG_MAX), stderr if to_screen. */
static void
relay(int to_screen, const char *s, size_t n)
{
	log_line(s, n, 0);
	if (to_screen)
		screen_line("", s, n);
}

void
progress_begin(const struct build_opts *o, FILE *log)
{
	const char *nc = getenv("NO_COLOR");

	P.o = o;
	P.log = log;
	P.mode = o->progress;
	if (P.mode == PROGRESS_AUTO)
		P.mode = isatty(2) ? PROGRESS_TTY : PROGRESS_PLAIN;
	P.color = P.mode == PROGRESS_TTY && isatty(2) && !(nc && *nc);
	P.esc = isatty(2);
	P.log_max = o->log_max;
	P.t0 = P.last_draw = hypr_now();
	P.stage_running = stage_progs[o->from];
	emit(0, "", "# hypr build %s (started at %ld)", o->context, (long)time(NULL));
}

int
progress_interval(void)
{
	return P.mode == PROGRESS_TTY ? 100 : -1;
}

/* A line for the live area: what a terminal would show after a \r,
 * escaped (no control byte may break the line count), cut to width. */
static int
put_clean(const char *s, size_t n, int width)
{
	const char *cr = memrchr(s, '\r', n);
	char buf[1024];
	int cols = 0;

	if (cr && (size_t)(cr - s) + 1 < n) {
		n -= (size_t)(cr + 1 - s);
		s = cr + 1;
	}
	if (width < 1)
		width = 1;
	/* bytes, not columns: a wide character may still cut it short */
	hypr_escape(s, n, buf, (size_t)width + 1 < sizeof buf ? (size_t)width + 1 : sizeof buf);
	for (char *c = buf; *c; c++) {
		if (*c == '\t')	/* a tab's width depends on the column */
			*c = ' ';
		if (((unsigned char)*c & 0xc0) != 0x80)
			cols++;
	}
	fputs(buf, stderr);
	return cols;
}

/* A step's line of the TTY view, cut to width, its time right-aligned:
 * " => [2/3] RUN make                    1.3s". */
static void
step_line(const char *label, int cached, double t, int width)
{
	char tm[32];
	int tn, room, used;

	tn = snprintf(tm, sizeof tm, "%.1fs", t);
	room = width - 4 - tn - 1 - (cached ? 7 : 0);
	fputs(" => ", stderr);
	if (cached)
		fputs("CACHED ", stderr);
	used = put_clean(label, strlen(label), room > 1 ? room : 1);
	fprintf(stderr, "%*s%s%s%s\n", room - used + 1 > 1 ? room - used + 1 : 1, "",
	    col("\033[33m"), tm, col("\033[0m"));
}

static struct step *
running(void)
{
	return P.running >= 0 ? &P.sp[P.running] : NULL;
}

/* The TTY view, as BuildKit's: the header first, each step (finished ones
 * with their time, the running one with its clock and last lines), every
 * line cut to the width. It is redrawn in place, so it never grows past
 * the terminal's rows: the steps that do not fit are the oldest, shown
 * again when the build ends (final). */
static void
draw_view(int final)
{
	struct step *r = running();
	int w = term_width() - 1, rows = term_rows() - 1, i, first = 0, ntail = 0, budget;
	double t = hypr_now();

	clear_live();
	fprintf(stderr, "%s[+] Building %.1fs (%d/%d)%s%s", col("\033[34m"),
	    t - P.t0, P.ndone, P.ninstr, final == 1 ? " FINISHED" : "", col("\033[0m"));
	if (!final && !r && w > 40) {
		fputc(' ', stderr);
		put_clean(P.stage_running, strlen(P.stage_running), w - 40);
	}
	fputc('\n', stderr);
	P.live_lines = 1;
	if (r)
		ntail = r->ntail > TAIL ? TAIL : r->ntail;
	if (!final) {	/* what fits: the running step first, then its tail */
		budget = rows - 1 - (r ? 1 : 0);
		if (budget < 0)
			budget = 0;
		if (ntail > budget)
			ntail = budget;
		budget -= ntail;
		for (i = P.nsp - 1; i >= 0 && budget > 0; i--)
			if (P.sp[i].done)
				budget--;
		first = i + 1;
	}
	for (i = first; i < P.nsp; i++) {
		if (!P.sp[i].done)
			continue;
		step_line(P.sp[i].label ? P.sp[i].label : "", P.sp[i].cached,
		    P.sp[i].cached ? 0.0 : P.sp[i].secs, w);
		P.live_lines++;
	}
	if (r && (final || rows > 1)) {
		step_line(r->label ? r->label : "", 0, t - r->t0, w);
		P.live_lines++;
		for (i = r->ntail - ntail; i < r->ntail; i++) {
			fprintf(stderr, "%s => => # ", col("\033[2m"));
			put_clean(r->tail[i].s, r->tail[i].n, w > 20 ? w - 10 : 10);
			fprintf(stderr, "%s\n", col("\033[0m"));
			P.live_lines++;
		}
	}
	if (final)
		P.live_lines = 0;	/* it stays: the scrollback's one copy */
	fflush(stderr);
	P.last_draw = t;
}

static void
draw_live(void)
{
	draw_view(0);
}

void
progress_tick(void)
{
	if (P.mode == PROGRESS_TTY && hypr_now() - P.last_draw >= 0.1)
		draw_live();
}

static struct step *
step_num(int num, int create)
{
	int i;

	for (i = P.nsp - 1; i >= 0; i--)
		if (P.sp[i].num == num)
			return &P.sp[i];
	if (!create)
		return NULL;
	if (!(P.sp = realloc(P.sp, (size_t)(P.nsp + 1) * sizeof *P.sp)))
		hypr_die(HYPR_EXIT_SYSTEM, "out of memory");
	memset(&P.sp[P.nsp], 0, sizeof *P.sp);
	P.sp[P.nsp].num = num;
	return &P.sp[P.nsp++];
}

void
progress_stderr(int stage, const char *line, size_t len, int show)
{
	size_t pn = strlen(stage_progs[stage]);

	ring_add(P.errtail[stage], &P.nerr[stage], line, len);
	if (show && P.mode != PROGRESS_QUIET && !P.o->debug && len > pn + 1 &&
	    !strncmp(line, stage_progs[stage], pn) && line[pn] == ':') {
		/* the stage's own line, maybe its error: shown by the next
		 * line, or by the footer unless it is the footer's message */
		flush_held();
		log_line(line, len, 0);
		if (!(P.held.s = strndup(line, len)))
			hypr_die(HYPR_EXIT_SYSTEM, "out of memory");
		P.held.n = len;
		return;
	}
	relay(show, line, len);
	if (show && P.mode == PROGRESS_TTY)
		draw_live();
}

/* What a step event's human line says after its "#N ". */
static const char *
after_num(const char *h, size_t *len)
{
	const char *sp = memchr(h, ' ', *len);

	if (!sp)
		return h + *len;
	*len -= (size_t)(sp + 1 - h);
	return sp + 1;
}

void
progress_event(int stage, const struct hypr_event *x, int show)
{
	struct hypr_strbuf hb = { 0 };
	struct step *s;
	const char *h, *rest;
	size_t len, rlen;

	if (x->type == HYPR_EV_PLAN) {
		if (show)
			P.ninstr = x->steps;
		return;
	}
	if (!hypr_event_human(x, stage_progs[stage], 0, &hb) || hb.oom) {
		free(hb.s);
		return;
	}
	h = hb.s;
	len = hb.n;
	ring_add(P.errtail[stage], &P.nerr[stage], h, len);
	if (!show) {		/* a symptom: the log only */
		relay(0, h, len);
		goto out;
	}
	if (x->n > P.maxnum)
		P.maxnum = x->n;
	rlen = len;
	rest = after_num(h, &rlen);
	switch (x->type) {
	case HYPR_EV_STEP:
		relay(P.mode == PROGRESS_PLAIN, h, len);
		s = step_num(x->n, 1);
		free(s->label);
		s->label = strndup(rest, rlen);
		s->t0 = hypr_now();
		P.running = (int)(s - P.sp);
		P.stage_running = stage_progs[stage];
		break;
	case HYPR_EV_CACHED:
	case HYPR_EV_DONE:
		relay(P.mode == PROGRESS_PLAIN, h, len);
		if (!(s = step_num(x->n, 0)))
			break;
		s->done = 1;
		s->cached = x->type == HYPR_EV_CACHED;
		s->secs = x->seconds;
		P.ndone++;
		if (P.running == (int)(s - P.sp))
			P.running = -1;
		ring_free(s->tail, &s->ntail);
		break;
	case HYPR_EV_OUTPUT:
	case HYPR_EV_INFO:
		if (x->n > 0) {	/* about a step: its tail in the live view */
			s = step_num(x->n, 0);
			if (x->type == HYPR_EV_OUTPUT && s) {
				/* BuildKit's plain output line: the time since
				 * the step began, after its number */
				char pre[64], *t;
				int pn = snprintf(pre, sizeof pre, "#%d %.3f ", x->n,
				    hypr_now() - s->t0);

				/* the text as it came, NULs too */
				if (pn < 0 || !(t = malloc((size_t)pn + rlen + 1)))
					hypr_die(HYPR_EXIT_SYSTEM, "out of memory");
				memcpy(t, pre, (size_t)pn);
				memcpy(t + pn, rest, rlen);
				t[(size_t)pn + rlen] = 0;
				relay(P.mode == PROGRESS_PLAIN, t, (size_t)pn + rlen);
				free(t);
			} else {
				relay(P.mode == PROGRESS_PLAIN, h, len);
			}
			if (s && !s->done)
				ring_add(s->tail, &s->ntail, rest, rlen);
			break;
		}
		/* a note of the stage's own */
		relay(1, h, len);
		break;
	default:
		relay(1, h, len);
		break;
	}
	if (P.mode == PROGRESS_TTY)
		draw_live();
out:
	free(hb.s);
}

void
progress_stage_closed(int stage)
{
	P.closed[stage] = hypr_now() - P.t0;
	if (stage + 1 < NSTAGES && stage >= ST_EXEC)
		P.stage_running = stage_progs[stage + 1];
}

void
progress_stage_done(int stage, const char *progname, int code)
{
	emit(0, "", "# %s exited %d, done at %.3fs", progname, code,
	    stage >= 0 && P.closed[stage] > 0 ? P.closed[stage] : hypr_now() - P.t0);
}

/* The Dockerfile lines around [l0,l1], the failing ones marked ">>>". */
static void
snippet(const char *name, long l0, long l1)
{
	const struct build_opts *o = P.o;
	char path[4096], *buf = NULL;
	size_t cap = 0;
	FILE *f;
	long n = 0;
	ssize_t len;

	if (o->file && !strcmp(o->file, "-"))
		return;
	if (o->file)
		snprintf(path, sizeof path, "%s", o->file);
	else
		snprintf(path, sizeof path, "%s/Dockerfile", o->context);
	if (!(f = fopen(path, "re")))
		return;
	emit(1, "", "%s:%ld", name, l0);
	emit(1, "", "--------------------");
	while ((len = getline(&buf, &cap, f)) >= 0) {
		n++;
		if (len && buf[len - 1] == '\n')
			buf[len - 1] = 0;
		if (n < l0 - 2 || n > l1 + 2)
			continue;
		if (n >= l0 && n <= l1)
			emit(1, "\033[31m", " %3ld | >>> %s", n, buf);
		else
			emit(1, "", " %3ld |     %s", n, buf);
	}
	emit(1, "", "--------------------");
	free(buf);
	fclose(f);
}

/* "hypr-parse: Dockerfile:12: ..." -> 12 for that Dockerfile name. */
static long
line_in_msg(const char *msg, const char *name)
{
	const char *p = msg;
	size_t n = strlen(name);

	while (msg && (p = strstr(p, name))) {
		p += n;
		if (*p == ':' && p[1] >= '0' && p[1] <= '9')
			return strtol(p + 1, NULL, 10);
	}
	return 0;
}

void
progress_fail(int stage, const char *progname, int code, const char *msg, size_t msglen,
    const char *logpath, int interrupted)
{
	const struct build_opts *o = P.o;
	struct step *r = NULL;
	const char *name;
	char what[1024];
	int i, saved = P.mode;
	long line;

	if (stage == ST_EXEC && !strcmp(progname, stage_progs[ST_EXEC]))
		r = running();
	/* the stage's error line is the footer's message: said once, below */
	if (P.held.s && msg && P.held.n == msglen && !memcmp(P.held.s, msg, msglen)) {
		free(P.held.s);
		P.held.s = NULL;
	}
	flush_held();
	if (P.mode == PROGRESS_TTY && !interrupted)
		draw_view(2);	/* where it stopped, once */
	clear_live();
	if (interrupted) {
		fprintf(stderr, "hypr: build interrupted\n");
		return;
	}
	/* The footer always shows, whatever the mode. */
	P.mode = PROGRESS_PLAIN;
	if (saved == PROGRESS_QUIET)	/* the stage's words were not on screen */
		for (i = 0; i < P.nerr[stage]; i++)	/* (already in the log) */
			if (o->debug || !msg || P.errtail[stage][i].n != msglen ||
			    memcmp(P.errtail[stage][i].s, msg, msglen))
				screen_line("", P.errtail[stage][i].s, P.errtail[stage][i].n);
	if (r) {
		emit(1, "", "------");
		emit(1, "", " > %s:", r->label ? r->label : "?");
		for (i = 0; i < r->ntail; i++) {
			log_line(r->tail[i].s, r->tail[i].n, 1);
			screen_line("", r->tail[i].s, r->tail[i].n);
		}
		emit(1, "", "------");
	}
	name = o->file && strcmp(o->file, "-") ? strrchr(o->file, '/') : NULL;
	name = name ? name + 1 : (o->file && strcmp(o->file, "-") ? o->file : "Dockerfile");
	line = line_in_msg(msg, name);
	if (line > 0)
		snippet(name, line, line);
	/* an error line is one line of text, on a terminal or not */
	if (o->debug || !msg) {
		hypr_escape(msg ? msg : "no message", msg ? msglen : 10, what, sizeof what);
		emit(1, "\033[31m", "ERROR: %s failed (exit %d): %s", progname, code, what);
	} else {
		/* in the user's words: what failed and why, not which stage */
		size_t pn = strlen(progname);

		if (msglen > pn + 2 && !strncmp(msg, progname, pn) && msg[pn] == ':' &&
		    msg[pn + 1] == ' ') {
			msg += pn + 2;
			msglen -= pn + 2;
		}
		hypr_escape(msg, msglen, what, sizeof what);
		emit(1, "\033[31m", "ERROR: %s", what);
	}
	if (logpath)
		emit(1, "", "full log: %s", logpath);
	P.mode = saved;
}

void
progress_done(const char *id, const struct argv *tags)
{
	size_t i;
	int num = ++P.maxnum;

	flush_held();
	if (P.mode == PROGRESS_TTY) {
		int w = term_width() - 1;
		char line[1024];

		P.running = -1;
		draw_view(1);
		snprintf(line, sizeof line, "writing image %s", id);
		step_line(line, 0, 0.0, w);
		for (i = 0; i < tags->n; i++) {
			snprintf(line, sizeof line, "naming to %s", tags->v[i]);
			step_line(line, 0, 0.0, w);
		}
		emit(0, "", "#%d writing image %s done", num, id);
	} else {
		emit(1, "", "#%d writing image %s done", num, id);
		for (i = 0; i < tags->n; i++)
			emit(1, "", "#%d naming to %s done", num, tags->v[i]);
		emit(1, "", "#%d DONE %.1fs", num, hypr_now() - P.t0);
	}
}

void
progress_end(void)
{
	int i;

	flush_held();
	if (P.cut)
		emit(0, "", "# hypr: %llu bytes of output after the cut were not logged "
		    "(HYPR_LOG_MAX=%llu)", P.unlogged, P.log_max);
	if (P.mode == PROGRESS_TTY)
		P.live_lines = 0;
	fflush(stderr);
	for (i = 0; i < P.nsp; i++) {
		free(P.sp[i].label);
		ring_free(P.sp[i].tail, &P.sp[i].ntail);
	}
	free(P.sp);
	for (i = 0; i < NSTAGES; i++)
		ring_free(P.errtail[i], &P.nerr[i]);
}
